//! The demo application: what `kinesis` runs when started.
//!
//! * `/root/kinesis`: like the original Go program, it remembers how often it
//!   was executed and when (`previous_executions`, `last_executed`, persisted)
//!   and keeps an API key it generates on its first run (`api_key`, persisted
//!   encrypted, shown as `"***"`).
//! * `/root/counter`: a counter with `increment`, `reset` and `total`.
//! * `/root/notes`: a small key-value notes store with `put`, `get`,
//!   `remove` and `list`, and `recount`, which starts a slow task whose
//!   progress shows at `/_kinesis/tasks`.
//!
//! [`app`] declares them as a [`kinesis::App`], so a process can run a
//! subset (`KINESIS_ONLY=counter,notes`): [`install`] takes it. The three
//! depend on none of each other, and each is persisted under its own URI,
//! so processes running disjoint subsets can share one store.

use std::collections::BTreeMap;

use kinesis::{App, Component, Container, Context, Error, Persist, Result};
use serde::{Deserialize, Serialize};

/// The application component at `/root/kinesis`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Persist)]
pub struct Kinesis {
    /// How many times the program ran before this run.
    #[persist]
    pub previous_executions: u64,
    /// When the program last started, RFC 3339.
    #[persist]
    pub last_executed: Option<String>,
    /// A key generated on the first run; stored encrypted, never shown.
    #[persist(encrypt)]
    pub api_key: String,
}

impl Component for Kinesis {
    async fn init(&mut self, _ctx: &mut Context<Self>) -> Result<()> {
        match &self.last_executed {
            Some(at) => tracing::info!("last executed {at}"),
            None => tracing::info!("last executed never: this is the first run"),
        }
        tracing::info!("number of times executed {}", self.previous_executions);
        self.previous_executions += 1;
        self.last_executed = Some(kinesis::persist::now_rfc3339());
        if self.api_key.is_empty() {
            self.api_key = uuid::Uuid::new_v4().simple().to_string();
        }
        Ok(())
    }

    async fn stop(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        tracing::info!(uri = ctx.uri(), "stopping");
        Ok(())
    }
}

#[kinesis::handlers]
impl Kinesis {
    /// How many times the program has run, this run included.
    pub fn executions(&self) -> u64 {
        self.previous_executions
    }

    /// Whether `key` is the API key, without revealing it.
    pub fn check_key(&self, key: String) -> bool {
        !self.api_key.is_empty() && key == self.api_key
    }
}

/// A counter at `/root/counter`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Persist)]
pub struct Counter {
    /// The count.
    #[persist]
    pub count: u64,
}

impl Component for Counter {
    async fn stop(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        tracing::info!(uri = ctx.uri(), count = self.count, "stopping");
        Ok(())
    }
}

#[kinesis::handlers]
impl Counter {
    /// Adds `by` (default 1) and returns the new count.
    pub fn increment(&mut self, by: Option<u64>) -> Result<u64> {
        let by = by.unwrap_or(1);
        self.count = self
            .count
            .checked_add(by)
            .ok_or_else(|| Error::invalid(format!("adding {by} would overflow the counter")))?;
        Ok(self.count)
    }

    /// Waits `ms` milliseconds (at most a minute) inside the mailbox, then
    /// adds `by` (default 1): a write that is in flight for a while, as a
    /// singleton's job would be when its process is paused. Logs
    /// `increment_after waiting` (info) with the singleton's fencing token
    /// when it begins.
    pub async fn increment_after(
        &mut self,
        ms: u64,
        by: Option<u64>,
        ctx: &mut Context<Self>,
    ) -> Result<u64> {
        if ms > 60_000 {
            return Err(Error::invalid("wait at most 60000 ms"));
        }
        let token = ctx.fencing_token();
        tracing::info!(ms, fencing_token = ?token, "increment_after waiting");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        self.increment(by)
    }

    /// Sets the count back to zero.
    pub fn reset(&mut self) -> u64 {
        std::mem::take(&mut self.count)
    }

    /// The current count.
    pub fn total(&self) -> u64 {
        self.count
    }

    /// Waits `ms` milliseconds (at most a minute), then answers the count:
    /// simulates slow work. Read-only, so it does not hold up the mailbox.
    /// Logs `sleep started` (debug) when it begins.
    pub async fn sleep(&self, ms: u64) -> Result<u64> {
        if ms > 60_000 {
            return Err(Error::invalid("sleep at most 60000 ms"));
        }
        tracing::debug!(ms, "sleep started");
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        Ok(self.count)
    }
}

/// The longest note key, in bytes.
pub const MAX_KEY_LEN: usize = 128;
/// The longest note, in bytes.
pub const MAX_NOTE_LEN: usize = 16 * 1024;
/// The most notes kept.
pub const MAX_NOTES: usize = 1000;

/// Key-value notes at `/root/notes`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, Persist)]
pub struct Notes {
    /// Note key to text.
    #[persist]
    pub notes: BTreeMap<String, String>,
}

impl Component for Notes {
    async fn stop(&mut self, ctx: &mut Context<Self>) -> Result<()> {
        tracing::info!(uri = ctx.uri(), notes = self.notes.len(), "stopping");
        Ok(())
    }
}

#[kinesis::handlers]
impl Notes {
    /// Stores `text` under `key`; returns the previous text, if any.
    pub fn put(&mut self, key: String, text: String) -> Result<Option<String>> {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(Error::invalid(format!("a note key has 1 to {MAX_KEY_LEN} bytes")));
        }
        if text.len() > MAX_NOTE_LEN {
            return Err(Error::invalid(format!("a note has at most {MAX_NOTE_LEN} bytes")));
        }
        if !self.notes.contains_key(&key) && self.notes.len() >= MAX_NOTES {
            return Err(Error::invalid(format!("at most {MAX_NOTES} notes are kept")));
        }
        Ok(self.notes.insert(key, text))
    }

    /// The text under `key`.
    pub fn get(&self, key: String) -> Result<String> {
        self.notes.get(&key).cloned().ok_or_else(|| Error::NotFound(format!("note `{key}`")))
    }

    /// Removes the note under `key`; returns its text, if it existed.
    pub fn remove(&mut self, key: String) -> Option<String> {
        self.notes.remove(&key)
    }

    /// The keys of all notes, sorted.
    pub fn list(&self) -> Vec<String> {
        self.notes.keys().cloned().collect()
    }

    /// Starts a slow re-count of the words in every note as a task of the
    /// task manager (`GET /_kinesis/tasks/{id}`, `…/_watch`, `DELETE` to
    /// cancel) and answers its id at once. The task takes `steps` steps
    /// (default 20, at most 1000) of `step_ms` milliseconds each (default
    /// 500, at most 10000), so that its progress can be watched.
    pub fn recount(
        &mut self,
        steps: Option<u64>,
        step_ms: Option<u64>,
        ctx: &mut Context<Self>,
    ) -> Result<u64> {
        let steps = steps.unwrap_or(20);
        let step_ms = step_ms.unwrap_or(500);
        if !(1..=1000).contains(&steps) || step_ms > 10_000 {
            return Err(Error::invalid("steps is 1 to 1000, step_ms at most 10000"));
        }
        let notes: Vec<String> = self.notes.values().cloned().collect();
        let task = ctx.tasks().spawn("notes.recount", move |progress| async move {
            let mut words = 0;
            progress.update(0, steps, "starting");
            for step in 1..=steps {
                tokio::time::sleep(std::time::Duration::from_millis(step_ms)).await;
                // Each step counts its share of the notes.
                let share = notes.iter().skip(step as usize - 1).step_by(steps as usize);
                words += share.map(|n| n.split_whitespace().count()).sum::<usize>();
                progress.update(step, steps, format!("{words} words so far"));
            }
            tracing::info!(words, "notes recounted");
            Ok(())
        });
        Ok(task.id())
    }
}

/// The demo application: `kinesis`, `counter` and `notes`, in that order.
pub fn app() -> App {
    App::new()
        .component("kinesis", Kinesis::default)
        .component("counter", Counter::default)
        .component("notes", Notes::default)
}

/// Adds the demo components to `root`: all of them (`only` = `None`), or
/// those named and what they depend on; answers the names started. A name
/// the demo does not have is an [`Error::Config`] listing the ones it has.
pub async fn install(root: &Container, only: Option<&[String]>) -> Result<Vec<String>> {
    install_app(&app(), root, only).await
}

/// [`install`] for the demo app with changes (singletons, leases).
pub async fn install_app(
    app: &App,
    root: &Container,
    only: Option<&[String]>,
) -> Result<Vec<String>> {
    let started = app.install(root, only).await?;
    if only.is_some() {
        tracing::info!(components = %started.join(","), "running a subset of the app (KINESIS_ONLY)");
    }
    Ok(started)
}
