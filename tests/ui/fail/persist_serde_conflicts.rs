#![allow(unused_imports, dead_code)]
use kinesis::Persist;
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize, Persist)]
pub struct Settings {
    #[persist]
    #[serde(skip)]
    a: String,
    #[persist(encrypt)]
    #[serde(skip_serializing)]
    b: String,
    #[persist]
    #[serde(default, skip_deserializing)]
    c: String,
    #[persist]
    #[serde(rename(serialize = "dee", deserialize = "d"))]
    d: String,
}

fn main() {}
