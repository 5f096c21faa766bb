//! [`Caller`]: who made a request that reached a component through a remote
//! surface, as that surface authenticated it.
//!
//! The HTTP add-on runs each request inside [`Caller::scope`]; calls by
//! name, batches and JSON writes made inside the scope carry the caller to
//! the component, whose handler reads it with
//! [`Context::caller`](crate::Context::caller). Typed calls (`ask`, `tell`)
//! from in-process code carry none.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static CURRENT: Arc<Caller>;
}

/// The subject and grants of a remote caller.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use kinesis::Caller;
///
/// let alice = Arc::new(Caller::new("alice", vec!["write:/root/**".into()]));
/// let seen = Caller::scope(alice, async { Caller::current().map(|c| c.subject().to_owned()) }).await;
/// assert_eq!(seen.as_deref(), Some("alice"));
/// assert!(Caller::current().is_none());
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    subject: String,
    grants: Vec<String>,
}

impl Caller {
    /// A caller named `subject` holding `grants` (such as `write:/root/**`).
    pub fn new(subject: impl Into<String>, grants: Vec<String>) -> Caller {
        Caller { subject: subject.into(), grants }
    }

    /// Who: the JWT `sub`, the API token's name, or `anonymous`.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// What the caller may do, as `VERB:PATTERN` grants.
    pub fn grants(&self) -> &[String] {
        &self.grants
    }

    /// Runs `f` on behalf of `caller`: calls by name made inside carry it.
    pub async fn scope<F: Future>(caller: Arc<Caller>, f: F) -> F::Output {
        CURRENT.scope(caller, f).await
    }

    /// The caller of the current [`scope`](Caller::scope), if any.
    pub fn current() -> Option<Arc<Caller>> {
        CURRENT.try_with(Arc::clone).ok()
    }
}
