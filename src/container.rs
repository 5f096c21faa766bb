//! [`Container`]: a component that holds named children.
//!
//! * `add(name, component)` runs the child through its lifecycle to
//!   `Started` and returns its [`Handle`]. Additions are activated one at a
//!   time, in the order they were made; a child may add siblings from its
//!   `pre_start` (they are activated right away, within its activation).
//! * Names are unique within a container and use only RFC 3986 unreserved
//!   characters ([`validate_name`](crate::validate_name)). A component's URI
//!   is its path from the root: `/root/app/counter`.
//! * Children are kept in the order they reached `Started`. Stopping a
//!   container stops its children in reverse order (LIFO), then itself. A
//!   sibling added from `pre_start` is started first and so stopped last.
//! * A stopped child is gone from its container.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::cell::{Parent, ACTIVATING};
use crate::dynamic::DynComponent;
use crate::persist::Persistence;
use crate::{Component, Context, Error, Handle, Result};

/// How many escalated failures a container remembers.
const FAILURE_HISTORY: usize = 100;

/// A component that holds named children; cheap to clone (clones share the
/// same children).
///
/// ```
/// use kinesis::{Component, Container};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Probe;
/// impl Component for Probe {}
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let root = Container::root().await?;
/// let app = root.add_container("app").await?;
/// let probe = app.add("probe", Probe).await?;
/// assert_eq!(probe.uri(), "/root/app/probe");
/// assert!(root.lookup("/root/app/probe").is_ok());
/// root.shutdown().await?; // stops probe, then app, then root
/// assert!(root.lookup("/root/app/probe").is_err());
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Container {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    binding: OnceLock<Binding>,
    children: Mutex<Children>,
    activation: tokio::sync::Mutex<()>,
    failures: Mutex<Vec<Failure>>,
    closing: AtomicBool,
}

struct Binding {
    uri: String,
    persistence: Option<Persistence>,
    handle: OnceLock<Handle<Container>>,
    /// The fencing token of a singleton container (or one inside it): its
    /// children get it, and `persistence` is fenced with it.
    fence: Option<crate::lease::FencingToken>,
}

/// The children of a container: in start order, and by name.
#[derive(Default)]
struct Children {
    order: Vec<Arc<dyn DynComponent>>,
    /// Every name in use; `None` while the child is not started yet.
    by_name: HashMap<String, Option<Arc<dyn DynComponent>>>,
}

impl Children {
    fn release(&mut self, name: &str) {
        self.by_name.remove(name);
    }
}

/// A component created in a container but not started yet; see
/// [`Container::prepare`].
pub struct Prepared<C: Component> {
    container: Container,
    /// Its name is the last segment of its URI.
    handle: Handle<C>,
    cell: Option<crate::cell::PreparedCell<C>>,
}

impl<C: Component> Prepared<C> {
    /// The component's handle; it works before the component starts
    /// (messages wait in the mailbox until it is started).
    pub fn handle(&self) -> Handle<C> {
        self.handle.clone()
    }

    /// Runs the component to `Started`, after the additions made before it.
    pub async fn start(mut self) -> Result<Handle<C>> {
        let Some(cell) = self.cell.take() else {
            return Err(Error::Invalid("component already started".into()));
        };
        let container = self.container.clone();
        let nested =
            ACTIVATING.try_with(|set| set.contains(&container.inner.id())).unwrap_or(false);
        let _turn = if nested { None } else { Some(container.inner.activation.lock().await) };
        let result = cell.launch().await;
        match &result {
            // Listed once started, so children stay in start order.
            Ok(handle) => container.child_started(Arc::new(handle.clone())),
            Err(_) => container.children().release(self.handle.name()),
        }
        result
    }
}

impl<C: Component> Drop for Prepared<C> {
    fn drop(&mut self) {
        if self.cell.is_some() {
            self.container.children().release(self.handle.name());
        }
    }
}

/// A child failure that exhausted its restart policy and escalated here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The failed child's URI.
    pub uri: String,
    /// What went wrong.
    pub error: String,
    /// When, RFC 3339.
    pub at: String,
}

impl std::fmt::Debug for Container {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Container")
            .field("uri", &self.uri())
            .field("children", &self.names())
            .finish()
    }
}

impl Serialize for Container {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        s.serialize_map(Some(0))?.end()
    }
}

impl<'de> Deserialize<'de> for Container {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> std::result::Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "a container's state cannot be replaced; add or stop its children instead",
        ))
    }
}

impl Component for Container {
    async fn init(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        if self.inner.binding.get().is_none() {
            let parent = ctx.container();
            let mut persistence = parent.as_ref().and_then(|c| c.persistence().cloned());
            let fence = ctx.fencing_token();
            // A singleton container: its children write through a store
            // fenced with its token (a container inside one inherits the
            // parent's, fenced already).
            if let (Some(p), Some(token)) = (persistence.as_mut(), fence) {
                if parent.as_ref().and_then(Container::fence).is_none() {
                    p.store = Arc::new(crate::persist::FencedStore::new(p.store.clone(), token));
                }
            }
            self.bind_fenced(ctx.uri().to_owned(), persistence, fence);
        }
        if let Some(b) = self.inner.binding.get() {
            let _ = b.handle.set(ctx.handle().clone());
        }
        Ok(())
    }

    async fn start(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        self.inner.closing.store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn stop(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        self.stop_children().await;
        Ok(())
    }
}

impl Container {
    /// A new, empty container, to be added to another one with
    /// [`add`](Container::add) (or use [`add_container`](Container::add_container)).
    pub fn new() -> Self {
        Container::default()
    }

    /// Starts a root container at `/root` without persistence.
    pub async fn root() -> Result<Container> {
        Container::root_with(None).await
    }

    /// Starts a root container at `/root` whose components persist to `persistence`.
    pub async fn root_with(persistence: Option<Persistence>) -> Result<Container> {
        let root = Container::new();
        root.bind("/root".to_owned(), persistence);
        crate::cell::spawn_component("root", "/root".to_owned(), root.clone(), None, None).await?;
        Ok(root)
    }

    pub(crate) fn bind_root(&self, uri: &str, persistence: Option<Persistence>) {
        self.bind(uri.to_owned(), persistence);
    }

    fn bind(&self, uri: String, persistence: Option<Persistence>) {
        self.bind_fenced(uri, persistence, None);
    }

    fn bind_fenced(
        &self,
        uri: String,
        persistence: Option<Persistence>,
        fence: Option<crate::lease::FencingToken>,
    ) {
        let _ =
            self.inner.binding.set(Binding { uri, persistence, handle: OnceLock::new(), fence });
    }

    /// The container's URI; empty until it was started.
    pub fn uri(&self) -> &str {
        self.inner.binding.get().map_or("", |b| b.uri.as_str())
    }

    /// The persistence its components use.
    pub fn persistence(&self) -> Option<&Persistence> {
        self.inner.binding.get().and_then(|b| b.persistence.as_ref())
    }

    /// The fencing token its children run under, in a singleton container.
    fn fence(&self) -> Option<crate::lease::FencingToken> {
        self.inner.binding.get().and_then(|b| b.fence)
    }

    /// Whether the container is stopping its children (or stopped them).
    pub(crate) fn is_closing(&self) -> bool {
        self.inner.closing.load(Ordering::SeqCst)
    }

    /// The container's own handle, once started.
    pub fn handle(&self) -> Option<Handle<Container>> {
        self.inner.binding.get().and_then(|b| b.handle.get().cloned())
    }

    fn children(&self) -> std::sync::MutexGuard<'_, Children> {
        self.inner.children()
    }

    /// Adds `component` under `name` and runs it to `Started`. Fails with
    /// [`Error::Invalid`] for a bad or taken name, with the error of a failed
    /// hook, or with [`Error::Stopping`] when this container is stopping.
    pub async fn add<C: Component>(&self, name: &str, component: C) -> Result<Handle<C>> {
        self.prepare(name, component)?.start().await
    }

    /// Reserves `name` and creates the component without starting it, so its
    /// handle can be subscribed to before the first stage change. Dropping
    /// the result without [`Prepared::start`] frees the name.
    pub fn prepare<C: Component>(&self, name: &str, component: C) -> Result<Prepared<C>> {
        self.prepare_with(name, component, None)
    }

    /// [`prepare`](Container::prepare) for a singleton: the component
    /// persists through `lease`'s fenced persistence instead of the
    /// container's, and its context answers the lease's fencing token.
    pub(crate) fn prepare_with<C: Component>(
        &self,
        name: &str,
        component: C,
        lease: Option<(&Persistence, crate::lease::FencingToken)>,
    ) -> Result<Prepared<C>> {
        crate::validate_name(name)?;
        let Some(binding) = self.inner.binding.get() else {
            return Err(Error::NotStarted(format!("container for `{name}`")));
        };
        if self.inner.closing.load(Ordering::SeqCst) {
            return Err(Error::Stopping(binding.uri.clone()));
        }
        if let Some(placed) = (&component as &dyn Any).downcast_ref::<Container>() {
            // A container that was started has its place in the tree; adding
            // it again (to itself, below itself, or elsewhere) would make a
            // cycle or a second parent.
            if let Some(b) = placed.inner.binding.get() {
                return Err(Error::Invalid(format!(
                    "cannot add the container {} to {} as `{name}`: a container has one place in the tree (cycles are refused)",
                    b.uri, binding.uri
                )));
            }
        }
        {
            let mut children = self.children();
            if children.by_name.contains_key(name) {
                return Err(Error::Invalid(format!(
                    "a component named `{name}` already exists in {}",
                    binding.uri
                )));
            }
            children.by_name.insert(name.to_owned(), None);
        }
        // Not `format!`: its machinery costs more than the copy (5 % of
        // adding an idle component).
        let mut uri = String::with_capacity(binding.uri.len() + 1 + name.len());
        uri.push_str(&binding.uri);
        uri.push('/');
        uri.push_str(name);
        let parent: Arc<dyn Parent> = self.inner.clone();
        match crate::cell::prepare_component(
            name,
            uri,
            component,
            Some(parent),
            lease.map(|(p, _)| p).or(binding.persistence.as_ref()),
        ) {
            Ok(mut cell) => {
                if let Some(token) = lease.map(|(_, t)| t).or(binding.fence) {
                    cell.set_fencing_token(token);
                }
                Ok(Prepared {
                    container: self.clone(),
                    handle: cell.handle().clone(),
                    cell: Some(cell),
                })
            }
            Err(e) => {
                self.children().release(name);
                Err(e)
            }
        }
    }

    /// Adds a new child container and returns it.
    pub async fn add_container(&self, name: &str) -> Result<Container> {
        let c = Container::new();
        self.add(name, c.clone()).await?;
        Ok(c)
    }

    /// Children whose failures escalated to this container, oldest first.
    pub fn failures(&self) -> Vec<Failure> {
        self.inner.failures.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The names of the started children, in start order.
    pub fn names(&self) -> Vec<String> {
        self.children().order.iter().map(|c| c.name().to_owned()).collect()
    }

    /// The URIs of the children being added: their name is taken, they are
    /// not started yet (still in their lifecycle, or prepared and not
    /// started). Readiness fails while there are any.
    pub fn starting(&self) -> Vec<String> {
        let uri = self.uri();
        let mut out: Vec<String> = self
            .children()
            .by_name
            .iter()
            .filter(|(_, child)| child.is_none())
            .map(|(name, _)| format!("{uri}/{name}"))
            .collect();
        out.sort();
        out
    }

    /// The started children, in start order.
    pub fn list(&self) -> Vec<Arc<dyn DynComponent>> {
        self.children().order.clone()
    }

    /// Every component below this container, depth first, in start order.
    pub fn walk(&self) -> Vec<Arc<dyn DynComponent>> {
        let mut out = Vec::new();
        for child in self.list() {
            let nested = child.as_container();
            out.push(child);
            if let Some(c) = nested {
                out.extend(c.walk());
            }
        }
        out
    }

    /// The type-erased child called `name`.
    pub fn get_dyn(&self, name: &str) -> Result<Arc<dyn DynComponent>> {
        self.children()
            .by_name
            .get(name)
            .and_then(Option::clone)
            .ok_or_else(|| Error::NotFound(format!("{}/{name}", self.uri())))
    }

    /// The typed handle of the child called `name`.
    pub fn get<C: Component>(&self, name: &str) -> Result<Handle<C>> {
        let child = self.get_dyn(name)?;
        child.as_any().downcast_ref::<Handle<C>>().cloned().ok_or_else(|| {
            Error::Invalid(format!(
                "{} is a {}, not a {}",
                child.uri(),
                child.type_name(),
                std::any::type_name::<C>()
            ))
        })
    }

    /// The component at `uri` (such as `/root/app/counter`), this container's
    /// own URI included.
    pub fn lookup(&self, uri: &str) -> Result<Arc<dyn DynComponent>> {
        let not_found = || Error::NotFound(uri.to_owned());
        let rest = uri.strip_prefix(self.uri()).ok_or_else(not_found)?;
        if rest.is_empty() {
            return self
                .handle()
                .map(|h| Arc::new(h) as Arc<dyn DynComponent>)
                .ok_or_else(not_found);
        }
        let rest = rest.strip_prefix('/').ok_or_else(not_found)?;
        let mut segments = rest.split('/');
        let mut current = self.get_dyn(segments.next().ok_or_else(not_found)?)?;
        for seg in segments {
            let c = current.as_container().ok_or_else(not_found)?;
            current = c.get_dyn(seg).map_err(|_| not_found())?;
        }
        Ok(current)
    }

    /// Stops every child, newest first, and waits for each.
    pub async fn stop_children(&self) {
        self.inner.closing.store(true, Ordering::SeqCst);
        loop {
            let last = self.children().order.last().cloned();
            let Some(child) = last else { break };
            if let Err(e) = child.control(crate::Control::Shutdown).await {
                tracing::warn!(child = child.uri(), error = %e, "child did not stop cleanly");
            }
            child.wait_for_stage(crate::Stage::TornDown).await;
            // The child deregisters itself when torn down; only a child that
            // is somehow still listed is removed here.
            let mut children = self.children();
            if children.order.last().is_some_and(|c| Arc::ptr_eq(c, &child)) {
                children.order.pop();
                children.release(child.name());
            }
        }
    }

    /// Stops this container: its children in reverse order, then itself.
    pub async fn shutdown(&self) -> Result<()> {
        match self.handle() {
            Some(h) => h.shutdown().await,
            None => {
                self.stop_children().await;
                Ok(())
            }
        }
    }
}

impl Container {
    /// Lists a child that reached `Started`, unless it is gone already (it
    /// stopped before its `add` returned, which freed its name).
    fn child_started(&self, child: Arc<dyn DynComponent>) {
        let mut children = self.children();
        match children.by_name.get_mut(child.name()) {
            Some(slot @ None) => *slot = Some(Arc::clone(&child)),
            _ => return,
        }
        children.order.push(child);
    }
}

impl Inner {
    fn children(&self) -> std::sync::MutexGuard<'_, Children> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn uri(&self) -> &str {
        self.binding.get().map_or("", |b| b.uri.as_str())
    }
}

/// The container's side of its children's cells. Implemented by the shared
/// part, so handing it to a child costs no allocation.
impl Parent for Inner {
    fn id(&self) -> usize {
        self as *const Inner as usize
    }

    fn child_gone(&self, name: &str, uri: &str) {
        let mut children = self.children();
        // Children stop newest first, so search from the end: O(1) per stop.
        if let Some(pos) = children.order.iter().rposition(|c| c.uri() == uri) {
            children.order.remove(pos);
        }
        children.release(name);
    }

    fn child_failed(&self, uri: &str, error: &Error) {
        tracing::error!(container = self.uri(), child = uri, %error, "child failed for good");
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if failures.len() >= FAILURE_HISTORY {
            failures.remove(0);
        }
        failures.push(Failure {
            uri: uri.to_owned(),
            error: error.to_string(),
            at: crate::persist::now_rfc3339(),
        });
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl<C: Component> Context<C> {
    /// The container this component lives in (`None` only for the roots).
    pub fn container(&self) -> Option<Container> {
        let inner = self.parent.clone()?.into_any().downcast::<Inner>().ok()?;
        Some(Container { inner })
    }
}
