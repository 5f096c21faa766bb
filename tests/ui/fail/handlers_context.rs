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
    pub fn peek(&self, ctx: &mut Context<Self>) -> u64 {
        let _ = ctx;
        self.count
    }

    pub fn first(&mut self, ctx: &mut Context<Self>, by: u64) -> u64 {
        let _ = ctx;
        self.count + by
    }

    pub fn shared(&mut self, ctx: &Context<Self>) -> u64 {
        let _ = ctx;
        self.count
    }
}

fn main() {}
