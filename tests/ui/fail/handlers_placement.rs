#![allow(unused_imports, dead_code)]
use kinesis::{Component, Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Counter {
    count: u64,
}
impl Component for Counter {}

pub struct Wrapper<T>(T);

#[kinesis::handlers]
impl<T> Wrapper<T> {
    pub fn get(&self) -> u64 {
        0
    }
}

#[kinesis::handlers(trait_name = Counters)]
impl Counter {
    pub fn get(&self) -> u64 {
        self.count
    }
}

pub trait Named {
    fn named(&self) -> String;
}

#[kinesis::handlers]
impl Named for Counter {
    fn named(&self) -> String {
        String::new()
    }
}

fn main() {}
