//! Find kinesis runtimes by name.
//!
//! A runtime started with `KINESIS_INSTANCE=orders` is an *instance* called
//! `orders`. Other processes (code, or the command line with `--instance`)
//! reach it by that name instead of by address, two ways:
//!
//! * **over NATS** (feature `nats`, on by default): with `KINESIS_EVENTS_URL`
//!   set to a NATS server, each instance announces itself there following
//!   the NATS micro-services protocol — a service called `kinesis` whose
//!   metadata carries the instance's name and URLs — and answers
//!   `$SRV.PING`, `$SRV.INFO`, `$SRV.STATS` and a question of its own,
//!   "which components do you hold". A lookup asks every instance at once
//!   and takes the answers that come within a short window, so an instance
//!   that stopped, or was killed, is not found: it leaves the list at once.
//!   (Any NATS tool lists them too: `nats micro ls kinesis`.)
//! * **statically**: `KINESIS_PEERS=orders=http://10.0.0.5:8080,billing=unix:/run/billing.sock`
//!   names instances and their URLs, for when there is no NATS.
//!
//! [`Directory`] looks names up and hands out clients and remote handles;
//! [`announce`] starts the announcing add-on in a runtime.

#[cfg(feature = "nats")]
mod announce;
mod config;
mod directory;
mod instance;
#[cfg(feature = "nats")]
pub mod nats;
mod peers;

#[cfg(feature = "nats")]
pub use announce::{announce, Announcer};
pub use config::InstanceConfig;
pub use directory::{Directory, DEFAULT_WINDOW};
pub use instance::{validate_instance_name, Instance, Source, MAX_NAME_LEN};
pub use peers::parse_peers;

/// The environment variables this crate reads, for `kinesis --help`.
pub const VARIABLES: &[(&str, &str)] = &[
    (
        "KINESIS_INSTANCE",
        "this process's instance name (letters, digits, - and _): announced over NATS when KINESIS_EVENTS_URL is set",
    ),
    (
        "KINESIS_INSTANCE_URL",
        "the URL other processes reach this instance at (default: the HTTP add-on's address; required when it listens on 0.0.0.0 or ::)",
    ),
    (
        "KINESIS_EVENTS_URL",
        "NATS server (nats://host:port) where instances announce themselves and are found",
    ),
    ("KINESIS_PEERS", "static instances, name=url,… (for when there is no NATS)"),
];
