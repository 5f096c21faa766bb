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
    pub fn add(&mut self, by: u64) -> u64 {
        self.count += by;
        self.count
    }

    pub fn add(&self) -> u64 {
        self.count
    }

    pub fn add_one(&mut self) {}

    pub fn add__one(&mut self) {}
}

fn main() {}
