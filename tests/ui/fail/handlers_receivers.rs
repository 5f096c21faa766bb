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
    pub fn consume(self) -> u64 {
        self.count
    }

    pub fn boxed(self: Box<Self>) -> u64 {
        self.count
    }

    pub fn new() -> Self {
        Counter::default()
    }

    fn private_constructor() -> Self {
        Counter::default()
    }
}

fn main() {}
