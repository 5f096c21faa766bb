//! Everything `#[derive(Persist)]` accepts, in a crate that denies warnings,
//! missing docs and unsafe code.
#![forbid(unsafe_code)]
#![deny(warnings, missing_docs, unreachable_pub)]

use kinesis::persist::{schema_of, PersistField};
use kinesis::Persist;
use serde::{Deserialize, Serialize};

/// Renamed and encrypted fields.
#[derive(Clone, Default, Serialize, Deserialize, Persist)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub struct Settings {
    /// Stored as is.
    #[persist]
    pub base_url: String,
    /// Stored encrypted, under `token`.
    #[persist(encrypt)]
    #[serde(rename = "token", alias = "tok", default)]
    pub api_token: String,
    /// Stored under `r#type` → `TYPE`.
    #[persist()]
    #[serde(skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// Not persisted, not serialised.
    #[serde(skip)]
    pub cache: Vec<u8>,
}

/// No persisted field.
#[derive(Serialize, Deserialize, Persist)]
pub struct Nothing {
    /// Plain state.
    pub count: u64,
}

mod inner {
    use super::*;

    /// Private to a module.
    #[derive(Serialize, Deserialize, Persist)]
    pub(crate) struct Hidden {
        #[persist(encrypt)]
        pub(crate) secret: String,
    }
}

fn main() {
    assert_eq!(
        schema_of::<Settings>().unwrap().fields,
        &[
            PersistField {
                name: "BASE_URL",
                encrypt: false
            },
            PersistField {
                name: "token",
                encrypt: true
            },
            PersistField {
                name: "TYPE",
                encrypt: false
            },
        ]
    );
    assert!(schema_of::<Nothing>().unwrap().fields.is_empty());
    assert_eq!(
        schema_of::<inner::Hidden>().unwrap().fields,
        &[PersistField {
            name: "secret",
            encrypt: true
        }]
    );
    assert_eq!(
        schema_of::<inner::Hidden>().unwrap().type_name,
        std::any::type_name::<inner::Hidden>()
    );
}
