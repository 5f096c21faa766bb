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
    pub fn greet(&mut self, name: &str) -> String {
        format!("{name}{}", self.count)
    }

    pub fn label(&self) -> &str {
        "label"
    }

    pub fn nested(&mut self, names: Vec<std::borrow::Cow<'_, str>>) -> usize {
        names.len()
    }

    pub fn show(&self, value: impl std::fmt::Display) -> String {
        value.to_string()
    }

    pub fn iter(&self) -> impl Iterator<Item = u64> {
        std::iter::once(self.count)
    }

    pub fn pattern(&mut self, (a, b): (u64, u64)) -> u64 {
        a + b
    }
}

fn main() {}
