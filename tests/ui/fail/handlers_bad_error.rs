#![allow(unused_imports, dead_code)]
use kinesis::{Component, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Counter {
    count: u64,
}
impl Component for Counter {}

pub struct NotAnError;

#[kinesis::handlers]
impl Counter {
    pub fn fail(&mut self) -> std::result::Result<u64, NotAnError> {
        Err(NotAnError)
    }
}

fn main() {}
