#![allow(unused_imports, dead_code)]
use kinesis::Persist;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Persist)]
pub struct Boxed<T> {
    #[persist]
    value: T,
}

fn main() {}
