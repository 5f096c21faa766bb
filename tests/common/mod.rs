//! Components shared by the integration tests.
#![allow(dead_code, missing_docs, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kinesis::{Component, Context, Error, Handler, RestartPolicy, Result};
use serde::{Deserialize, Serialize};

/// A log of events shared between a test and its components.
#[derive(Clone, Default, Debug)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    pub fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// A counter with handlers that succeed, fail, panic and sleep.
#[derive(Clone, Default, Debug, Serialize, Deserialize)]
pub struct Counter {
    pub count: u64,
    #[serde(skip)]
    pub policy: Option<RestartPolicy>,
    #[serde(skip)]
    pub log: Log,
}

impl Component for Counter {
    async fn start(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        self.log.push(format!("start {}", ctx.name()));
        Ok(())
    }
    async fn stop(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        self.log.push(format!("stop {}", ctx.name()));
        Ok(())
    }
    fn restart_policy(&self) -> RestartPolicy {
        self.policy.unwrap_or_default()
    }
}

pub struct Inc(pub u64);
impl Handler<Inc> for Counter {
    type Reply = u64;
    async fn handle(&mut self, Inc(n): Inc, _: &mut Context<Self>) -> Result<u64> {
        self.count += n;
        Ok(self.count)
    }
}

/// Adds, then fails: the addition must be rolled back.
pub struct IncThenFail(pub u64);
impl Handler<IncThenFail> for Counter {
    type Reply = ();
    async fn handle(&mut self, IncThenFail(n): IncThenFail, _: &mut Context<Self>) -> Result<()> {
        self.count += n;
        Err(Error::handler("refused"))
    }
}

/// Adds, then panics.
pub struct IncThenPanic(pub u64);
impl Handler<IncThenPanic> for Counter {
    type Reply = ();
    async fn handle(&mut self, IncThenPanic(n): IncThenPanic, _: &mut Context<Self>) -> Result<()> {
        self.count += n;
        panic!("boom at {}", self.count);
    }
}

pub struct Get;
impl Handler<Get> for Counter {
    type Reply = u64;
    const MUTATES: bool = false;
    async fn handle(&mut self, _: Get, _: &mut Context<Self>) -> Result<u64> {
        Ok(self.count)
    }
}

pub struct Sleep(pub Duration);
impl Handler<Sleep> for Counter {
    type Reply = ();
    const MUTATES: bool = false;
    async fn handle(&mut self, Sleep(d): Sleep, _: &mut Context<Self>) -> Result<()> {
        tokio::time::sleep(d).await;
        Ok(())
    }
}

pub fn counter(log: &Log) -> Counter {
    Counter { log: log.clone(), ..Counter::default() }
}
