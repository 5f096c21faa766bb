#![allow(unused_imports, dead_code)]
use kinesis::{Component, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Counter {
    count: u64,
}
impl Component for Counter {}

#[kinesis::handlers]
impl Counter {
    pub fn add<T: Into<u64>>(&mut self, by: T) -> u64 {
        self.count += by.into();
        self.count
    }
}

fn main() {}
