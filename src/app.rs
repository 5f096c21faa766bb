//! [`App`]: the components of an application by name, each with the
//! components it depends on, so that a process can run all of them or a
//! subset (`KINESIS_ONLY=counter,notes`, [`Config::only`](crate::Config::only)).
//!
//! * [`App::component`] declares a component: its name in the root
//!   container and a function that makes it. [`App::depends_on`] says which
//!   other components of the app the one declared last needs.
//! * [`App::resolve`] picks the components to start: all of them, or the
//!   subset asked for together with everything it depends on, directly or
//!   not. They start in declaration order, except that a component's
//!   dependencies start before it (and so stop after it).
//! * A name in the subset that the app does not have is an
//!   [`Error::Config`] listing the names it has; a dependency on a name the
//!   app does not have, or a cycle of dependencies, is an
//!   [`Error::Invalid`] (a mistake in the app, not in its configuration).
//!
//! Two processes with disjoint subsets can share one store: each component
//! is persisted under its own URI, so neither process touches the records
//! of the other's components.

use std::collections::BTreeSet;

use futures::future::BoxFuture;

use crate::lease::{LeaseConfig, SingletonOptions};
use crate::{Component, Container, Error, Result};

/// Adds one component to a container.
type AddFn = Box<dyn Fn(Container) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Runs one component of a container as a singleton, until it stops.
type RunFn = Box<dyn Fn(Container, SingletonOptions) -> BoxFuture<'static, ()> + Send + Sync>;

/// The components of an application; see the [module docs](self).
///
/// ```
/// use kinesis::{App, Component, Container};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Store;
/// impl Component for Store {}
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Orders;
/// impl Component for Orders {}
/// #[derive(Clone, Default, Serialize, Deserialize)]
/// struct Mailer;
/// impl Component for Mailer {}
///
/// let app = App::new()
///     .component("mailer", Mailer::default)
///     .component("store", Store::default)
///     .component("orders", Orders::default)
///     .depends_on(&["store"]);
/// assert_eq!(app.resolve(None).unwrap(), ["mailer", "store", "orders"]);
/// assert_eq!(app.resolve(Some(&["orders".to_owned()])).unwrap(), ["store", "orders"]);
/// let err = app.resolve(Some(&["billing".to_owned()])).unwrap_err();
/// assert!(err.to_string().contains("mailer, store, orders"), "{err}");
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let root = Container::root().await?;
/// app.install(&root, Some(&["orders".to_owned()])).await?;
/// assert_eq!(root.names(), ["store", "orders"]);
/// root.shutdown().await?;
/// # Ok::<(), kinesis::Error>(()) }).unwrap();
/// ```
#[derive(Default)]
pub struct App {
    parts: Vec<Part>,
    leases: Option<LeaseConfig>,
}

struct Part {
    name: String,
    depends_on: Vec<String>,
    add: AddFn,
    run_singleton: RunFn,
    singleton: bool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_map();
        for part in &self.parts {
            list.entry(&part.name, &part.depends_on);
        }
        list.finish()
    }
}

impl App {
    /// An app without components.
    pub fn new() -> App {
        App::default()
    }

    /// Declares the component `name`, made by `make` when it is installed.
    ///
    /// # Panics
    ///
    /// If `name` is not a valid component name
    /// ([`validate_name`](crate::validate_name)) or is declared twice.
    pub fn component<C, F>(mut self, name: &str, make: F) -> App
    where
        C: Component,
        F: Fn() -> C + Send + Sync + 'static,
    {
        if let Err(e) = crate::validate_name(name) {
            panic!("App::component: {e}");
        }
        assert!(self.part(name).is_none(), "App::component: `{name}` is declared twice");
        let make = std::sync::Arc::new(make);
        let (owned, maker) = (name.to_owned(), make.clone());
        let add: AddFn = Box::new(move |root: Container| {
            let (name, component) = (owned.clone(), maker());
            Box::pin(async move { root.add(&name, component).await.map(drop) })
        });
        let owned = name.to_owned();
        let run_singleton: RunFn = Box::new(move |root: Container, options| {
            let (name, make) = (owned.clone(), make.clone());
            Box::pin(crate::lease::run_singleton(root, name, move || make(), options))
        });
        self.parts.push(Part {
            name: name.to_owned(),
            depends_on: Vec::new(),
            add,
            run_singleton,
            singleton: false,
        });
        self
    }

    /// Makes the component declared last a singleton: of all the processes
    /// that install it, only the one holding its lease (named after its
    /// URI) runs it at a time; see [`lease`](crate::lease). Needs
    /// [`App::leases`] before [`App::install`]. A [`Container`] can be a
    /// singleton too: everything added to it runs under its lease, with its
    /// fencing token, writing through its fenced store.
    ///
    /// # Panics
    ///
    /// If no component was declared yet.
    pub fn singleton(mut self) -> App {
        let last = self.parts.last_mut().expect("App::singleton: declare a component first");
        last.singleton = true;
        self
    }

    /// Makes the component `name` a singleton (see [`App::singleton`]), for
    /// a choice made at run time (`KINESIS_SINGLETONS`). Errors with
    /// [`Error::Config`] listing the app's names if it has no `name`.
    pub fn make_singleton(mut self, name: &str) -> Result<App> {
        let names = self.names().join(", ");
        let Some(part) = self.parts.iter_mut().find(|p| p.name == name) else {
            return Err(Error::Config(format!(
                "KINESIS_SINGLETONS: this app has no component `{name}`; it has: {names}"
            )));
        };
        part.singleton = true;
        Ok(self)
    }

    /// Where the singletons of this app take their leases.
    pub fn leases(mut self, leases: LeaseConfig) -> App {
        self.leases = Some(leases);
        self
    }

    /// The names of the singletons, in declaration order.
    pub fn singletons(&self) -> Vec<&str> {
        self.parts.iter().filter(|p| p.singleton).map(|p| p.name.as_str()).collect()
    }

    /// Says that the component declared last needs the components `names`
    /// of this app: they are started whenever it is, before it.
    ///
    /// # Panics
    ///
    /// If no component was declared yet.
    pub fn depends_on(mut self, names: &[&str]) -> App {
        let last = self.parts.last_mut().expect("App::depends_on: declare a component first");
        last.depends_on.extend(names.iter().map(|n| (*n).to_owned()));
        self
    }

    /// The names of the components, in declaration order.
    pub fn names(&self) -> Vec<&str> {
        self.parts.iter().map(|p| p.name.as_str()).collect()
    }

    /// The components to start, in start order: all of them (`only` =
    /// `None`), or those in `only` and everything they depend on.
    ///
    /// Errors: [`Error::Config`] for a name in `only` that the app does not
    /// have, listing the ones it has; [`Error::Invalid`] for a dependency on
    /// a name the app does not have, or a cycle.
    pub fn resolve(&self, only: Option<&[String]>) -> Result<Vec<String>> {
        let wanted: Vec<&str> = match only {
            None => self.names(),
            Some(only) => {
                for name in only {
                    if self.part(name).is_none() {
                        return Err(Error::Config(format!(
                            "KINESIS_ONLY: this app has no component `{name}`; it has: {}",
                            self.names().join(", ")
                        )));
                    }
                }
                // Declaration order, whatever the order asked in.
                self.names().into_iter().filter(|n| only.iter().any(|o| o == n)).collect()
            }
        };
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        for name in wanted {
            self.visit(name, &mut Vec::new(), &mut done, &mut order)?;
        }
        Ok(order)
    }

    /// Adds the components [`resolve`](App::resolve) picks to `root`, one
    /// after the other, each running to `Started` before the next is made;
    /// answers their names. Stops at the first that fails, with its error;
    /// the ones started before it stay (stop `root` to stop them).
    ///
    /// A [singleton](App::singleton) is not waited for: a task competes for
    /// its lease and runs it while it holds it, until `root` stops. Without
    /// [`App::leases`], an app with a singleton to install is an
    /// [`Error::Config`].
    pub async fn install(&self, root: &Container, only: Option<&[String]>) -> Result<Vec<String>> {
        let order = self.resolve(only)?;
        let singletons: Vec<&str> =
            order.iter().map(String::as_str).filter(|n| self.singletons().contains(n)).collect();
        if !singletons.is_empty() && self.leases.is_none() {
            return Err(Error::Config(format!(
                "{} {} a singleton but no lease backend is configured (KINESIS_LOCK_URL)",
                singletons.join(", "),
                if singletons.len() == 1 { "is" } else { "are" }
            )));
        }
        for name in &order {
            let part = self.part(name).expect("resolved names are the app's");
            match &self.leases {
                Some(leases) if part.singleton => {
                    let options = SingletonOptions::new(leases.clone());
                    tokio::spawn((part.run_singleton)(root.clone(), options));
                }
                _ => (part.add)(root.clone()).await?,
            }
        }
        Ok(order)
    }

    fn part(&self, name: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// Depth first: `name`'s dependencies, then `name`.
    fn visit(
        &self,
        name: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        if done.contains(name) {
            return Ok(());
        }
        if path.iter().any(|p| p == name) {
            path.push(name.to_owned());
            return Err(Error::Invalid(format!(
                "the app's components depend on each other in a cycle: {}",
                path.join(" -> ")
            )));
        }
        let Some(part) = self.part(name) else {
            return Err(Error::Invalid(format!(
                "`{}` depends on `{name}`, which the app does not have; it has: {}",
                path.last().map_or("?", String::as_str),
                self.names().join(", ")
            )));
        };
        path.push(name.to_owned());
        for dep in &part.depends_on {
            self.visit(dep, path, done, order)?;
        }
        path.pop();
        done.insert(name.to_owned());
        order.push(name.to_owned());
        Ok(())
    }
}
