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
    pub fn _control(&mut self) {}

    pub fn _watch(&self) {}

    pub fn _internal(&self) {}

    pub fn restart(&mut self) -> Result<()> {
        Ok(())
    }

    pub fn name(&self) -> String {
        String::new()
    }
}

fn main() {}
