//! The append-only log on disk: its byte format, its segment files and the
//! segment being appended to.

pub(crate) mod active;
pub(crate) mod format;
pub(crate) mod segment;
