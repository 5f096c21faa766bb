//! kinesis: event-driven services built from components.
#![doc = include_str!("../docs/overview.md")]

pub mod error;
pub mod persist;

pub use error::{Error, ErrorKind, Result};
pub use kinesis_fsm::{IllegalTransition, Stage, State};
