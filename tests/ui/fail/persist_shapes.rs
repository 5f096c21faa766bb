#![allow(unused_imports, dead_code)]
use kinesis::Persist;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Persist)]
pub enum Mode {
    On,
    Off,
}

#[derive(Serialize, Deserialize, Persist)]
pub struct Pair(#[persist] u64, u64);

#[derive(Serialize, Deserialize, Persist)]
pub struct Unit;

fn main() {}
