//! Path resolution against the live component tree.
//!
//! Nothing is registered ahead: every request walks the tree as it is now,
//! so a component's routes exist exactly while its container lists it (from
//! `Started` until it is torn down). The walk follows
//! [`Container::lookup`](kinesis::Container::lookup), segment by segment from
//! the root, and also checks [`exposed`](kinesis::DynComponent::exposed) on
//! every level: a hidden component, and everything below it, is 404.
//!
//! The full path is tried as a component URI first; if only its last segment
//! does not name a child, that segment names a member of the component: a
//! method, `_control` or `_watch`. Paths are compared as sent, never
//! percent-decoded or normalised: component names use only RFC 3986
//! unreserved characters, so `%2F`, `..` or `//` simply name nothing.

use std::sync::Arc;

use kinesis::dynamic::SharedDyn;
use kinesis::Container;

use crate::problem::Problem;

/// Longest path accepted, in bytes; longer ones get 414.
pub(crate) const MAX_PATH_LEN: usize = 4096;

/// What a path names.
pub(crate) enum Target<'p> {
    /// `/`: the component tree.
    Tree,
    /// A component.
    Resource(SharedDyn),
    /// `{uri}/{member}`: a method, `_control` or `_watch` of a component.
    Member(SharedDyn, &'p str),
}

/// Resolves `path` against the tree under `root`.
pub(crate) fn resolve<'p>(root: &Container, path: &'p str) -> Result<Target<'p>, Problem> {
    if path == "/" {
        return Ok(Target::Tree);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(Problem::uri_too_long(MAX_PATH_LEN));
    }
    let not_found = || Problem::not_found(&format!("no component or method at {path}"));
    let rest = path.strip_prefix(root.uri()).ok_or_else(not_found)?;
    let root_handle = root.handle().ok_or_else(not_found)?;
    let mut current: SharedDyn = Arc::new(root_handle);
    if !current.exposed() {
        return Err(not_found());
    }
    if rest.is_empty() {
        return Ok(Target::Resource(current));
    }
    let rest = rest.strip_prefix('/').ok_or_else(not_found)?;
    let mut segments = rest.split('/').peekable();
    while let Some(segment) = segments.next() {
        let is_last = segments.peek().is_none();
        let child = current.as_container().and_then(|c| c.get_dyn(segment).ok());
        match child {
            Some(child) if child.exposed() => current = child,
            None if is_last && !segment.is_empty() => return Ok(Target::Member(current, segment)),
            _ => return Err(not_found()),
        }
    }
    Ok(Target::Resource(current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kinesis::Component;
    use serde::{Deserialize, Serialize};

    #[derive(Clone, Default, Serialize, Deserialize)]
    struct Leaf;
    impl Component for Leaf {}

    #[derive(Clone, Default, Serialize, Deserialize)]
    struct Secret;
    impl Component for Secret {
        fn exposed(&self) -> bool {
            false
        }
    }

    fn uri_of(target: Result<Target<'_>, Problem>) -> String {
        match target {
            Ok(Target::Tree) => "tree".into(),
            Ok(Target::Resource(c)) => c.uri().to_owned(),
            Ok(Target::Member(c, m)) => format!("{} :: {m}", c.uri()),
            Err(p) => format!("error {}", p.status().as_u16()),
        }
    }

    #[tokio::test]
    async fn paths_resolve_against_the_live_tree() {
        let root = Container::root().await.unwrap();
        let app = root.add_container("app").await.unwrap();
        let leaf = app.add("leaf", Leaf).await.unwrap();
        root.add("secret", Secret).await.unwrap();
        let long = format!("/root/{}", "a".repeat(MAX_PATH_LEN));
        let cases = [
            ("/", "tree"),
            ("/root", "/root"),
            ("/root/app", "/root/app"),
            ("/root/app/leaf", "/root/app/leaf"),
            ("/root/app/leaf/total", "/root/app/leaf :: total"),
            ("/root/app/_watch", "/root/app :: _watch"),
            ("/root/app/leaf/total/x", "error 404"),
            ("/root/app/leaf/", "error 404"),
            ("/root/secret", "error 404"),
            ("/root/secret/_control", "error 404"),
            ("/rootx", "error 404"),
            ("/root/../root/app", "error 404"),
            ("/root%2Fapp", "error 404"),
            ("/addons", "error 404"),
            (long.as_str(), "error 414"),
        ];
        for (path, expected) in cases {
            assert_eq!(uri_of(resolve(&root, path)), expected, "{path}");
        }
        leaf.shutdown().await.unwrap();
        assert_eq!(uri_of(resolve(&root, "/root/app/leaf")), "/root/app :: leaf");
        root.shutdown().await.unwrap();
        // The root keeps its handle once torn down, but has no children.
        assert_eq!(uri_of(resolve(&root, "/root/app")), "/root :: app");
    }
}
