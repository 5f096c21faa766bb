#![allow(unused_imports, dead_code)]
use kinesis::Persist;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Persist)]
pub struct Settings {
    #[persist(compress)]
    a: String,
    #[persist(encrypt, encrypt)]
    b: String,
    #[persist = "yes"]
    c: String,
    #[persist]
    #[persist(encrypt)]
    d: String,
    #[persist(encrypt = true)]
    e: String,
}

fn main() {}
