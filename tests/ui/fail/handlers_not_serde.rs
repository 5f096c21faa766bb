#![allow(unused_imports, dead_code)]
use kinesis::{Component, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Counter {
    count: u64,
}
impl Component for Counter {}

pub struct Opaque;

#[kinesis::handlers]
impl Counter {
    pub fn take(&mut self, value: Opaque) {
        let _ = value;
    }

    pub fn give(&self) -> Opaque {
        Opaque
    }

    pub fn try_give(&mut self) -> Result<Opaque> {
        Ok(Opaque)
    }
}

fn main() {}
