//! kinesis errors as gRPC statuses, in one table ([`code_of`]), and back
//! ([`error_of`]).
//!
//! A status carries the error's text (its `Display`) as its message, the
//! kind's wire name ([`ErrorKind::name`]) in the `kinesis-error-kind`
//! metadata and, for a conflict, the current ETag (hex) in
//! `kinesis-current-etag`, so a client rebuilds the very error with
//! [`Error::from_remote`].

use kinesis::{ETag, Error, ErrorKind};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

/// The metadata key of the error kind.
pub const ERROR_KIND: &str = "kinesis-error-kind";
/// The metadata key of a conflict's current ETag.
pub const CURRENT_ETAG: &str = "kinesis-current-etag";

/// The gRPC code of each error kind: the one table.
///
/// | kind | code |
/// | --- | --- |
/// | `NotFound` | `NOT_FOUND` |
/// | `Conflict` | `FAILED_PRECONDITION` |
/// | `NotStarted`, `Stopping`, `Store`, `Unreachable` | `UNAVAILABLE` |
/// | `Overloaded` | `RESOURCE_EXHAUSTED` |
/// | `Timeout` | `DEADLINE_EXCEEDED` |
/// | `Invalid` | `INVALID_ARGUMENT` |
/// | `Handler` | `UNKNOWN` |
/// | `Panicked`, `Crypto`, `Config` | `INTERNAL` |
/// | `Unauthenticated` | `UNAUTHENTICATED` |
/// | `Forbidden` | `PERMISSION_DENIED` |
/// | `Fenced` | `ABORTED` (a newer lease holder wrote: this process lost the lease) |
pub fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Conflict => Code::FailedPrecondition,
        ErrorKind::NotStarted | ErrorKind::Stopping | ErrorKind::Store | ErrorKind::Unreachable => {
            Code::Unavailable
        }
        ErrorKind::Overloaded => Code::ResourceExhausted,
        ErrorKind::Timeout => Code::DeadlineExceeded,
        ErrorKind::Invalid => Code::InvalidArgument,
        ErrorKind::Handler => Code::Unknown,
        ErrorKind::Panicked | ErrorKind::Crypto | ErrorKind::Config => Code::Internal,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::Forbidden => Code::PermissionDenied,
        ErrorKind::Fenced => Code::Aborted,
    }
}

/// The status of `error`: its code, its text, its kind and current ETag in
/// the metadata.
pub fn status_of(error: &Error) -> Status {
    let kind = error.kind();
    let mut status = Status::new(code_of(kind), error.to_string());
    let metadata = status.metadata_mut();
    metadata.insert(ERROR_KIND, MetadataValue::from_static(kind.name()));
    if let Error::Conflict { current } = error {
        if let Ok(tag) = current.to_hex().parse() {
            metadata.insert(CURRENT_ETAG, tag);
        }
    }
    status
}

/// The error a status stands for: the kind the server named, else one by
/// its code (a status from something that is not a kinesis runtime).
pub fn error_of(status: &Status) -> Error {
    let metadata = status.metadata();
    let named =
        metadata.get(ERROR_KIND).and_then(|v| v.to_str().ok()).and_then(ErrorKind::from_name);
    let current: Option<ETag> =
        metadata.get(CURRENT_ETAG).and_then(|v| v.to_str().ok()).and_then(|t| t.parse().ok());
    let kind = named.unwrap_or_else(|| kind_of_code(status.code()));
    Error::from_remote(kind, status.message(), current)
}

/// The kind of a status without a kinesis kind.
fn kind_of_code(code: Code) -> ErrorKind {
    match code {
        Code::NotFound => ErrorKind::NotFound,
        Code::FailedPrecondition | Code::Aborted => ErrorKind::Conflict,
        Code::Unavailable => ErrorKind::Unreachable,
        Code::ResourceExhausted => ErrorKind::Overloaded,
        Code::DeadlineExceeded | Code::Cancelled => ErrorKind::Timeout,
        Code::Unauthenticated => ErrorKind::Unauthenticated,
        Code::PermissionDenied => ErrorKind::Forbidden,
        Code::Internal | Code::Unknown | Code::DataLoss => ErrorKind::Handler,
        _ => ErrorKind::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_goes_there_and_back() {
        let tag = ETag::of(b"{}", None);
        let errors = [
            Error::NotFound("component /root/x".into()),
            Error::Conflict { current: tag },
            Error::NotStarted("/root/x".into()),
            Error::Stopping("/root/x".into()),
            Error::Overloaded("/root/x".into()),
            Error::Invalid("bad".into()),
            Error::Handler("failed".into()),
            Error::Panicked("boom".into()),
            Error::Store("down".into()),
            Error::Unauthenticated("who".into()),
            Error::Forbidden("no".into()),
        ];
        for error in errors {
            let status = status_of(&error);
            assert_eq!(status.code(), code_of(error.kind()));
            assert_eq!(error_of(&status), error);
        }
        let status = status_of(&Error::Conflict { current: tag });
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.metadata().get(CURRENT_ETAG).unwrap().to_str().unwrap(), tag.to_hex());
    }
}
