//! [`Identity`]: who made a request, and what they may do.

use std::sync::Arc;

use super::grants::{Grants, Verb};

/// How a caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// No authentication is configured: every request is anonymous, with
    /// every grant (loopback, or `KINESIS_HTTP_ALLOW_ANONYMOUS=true`).
    Anonymous,
    /// A JWT bearer token.
    Jwt,
    /// A static API token from `KINESIS_AUTH_TOKENS_FILE`.
    Token,
}

/// The caller of a request: its subject and grants. The router puts one in
/// every request's extensions (an `Arc<Identity>`), so handlers of your own
/// routes can read it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The JWT `sub`, the token's name, or `anonymous`.
    pub subject: String,
    /// What the caller may do.
    pub grants: Grants,
    /// How the caller authenticated.
    pub method: AuthMethod,
    /// The same, as the core's [`kinesis::Caller`] that handlers see.
    caller: Arc<kinesis::Caller>,
}

impl Identity {
    /// An identity; `grants` also reach handlers through [`kinesis::Caller`].
    pub fn new(subject: String, grants: Grants, method: AuthMethod) -> Identity {
        let caller = Arc::new(kinesis::Caller::new(
            subject.clone(),
            grants.iter().map(|g| g.to_string()).collect(),
        ));
        Identity { subject, grants, method, caller }
    }

    /// The identity of every request when no authentication is configured.
    pub fn anonymous() -> Arc<Identity> {
        static ANONYMOUS: std::sync::OnceLock<Arc<Identity>> = std::sync::OnceLock::new();
        Arc::clone(ANONYMOUS.get_or_init(|| {
            Arc::new(Identity::new("anonymous".to_owned(), Grants::admin(), AuthMethod::Anonymous))
        }))
    }

    /// The identity of a request to an open route (`/_kinesis/health`,
    /// `/_kinesis/ready`), which is not authenticated: no grants.
    pub fn anonymous_without_grants() -> Arc<Identity> {
        static OPEN: std::sync::OnceLock<Arc<Identity>> = std::sync::OnceLock::new();
        Arc::clone(OPEN.get_or_init(|| {
            Arc::new(Identity::new(
                "anonymous".to_owned(),
                Grants::default(),
                AuthMethod::Anonymous,
            ))
        }))
    }

    /// Whether the caller may do `verb` on the component at `uri`.
    pub fn allows(&self, verb: Verb, uri: &str) -> bool {
        self.grants.allows(verb, uri)
    }

    /// The identity as the core's [`kinesis::Caller`], for handlers.
    pub fn caller(&self) -> &Arc<kinesis::Caller> {
        &self.caller
    }
}
