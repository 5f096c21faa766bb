//! Group commit: one thread takes every waiting save and delete, checks
//! each against the latest versions, writes them as one frame, syncs once,
//! updates the index and only then answers them all.
//!
//! Requests are handled in the order they were queued. The compare-and-set
//! of a request sees the requests before it in the same group, so two saves
//! of one record in one group behave as if they came one after the other.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kinesis::persist::{StoreError, StoreResult};
use tokio::sync::oneshot;

use crate::engine::Shared;
use crate::index::{Entry, Location};
use crate::log::active::{ActiveLog, AppendError};
use crate::log::format::{self, DELETE, PUT};

/// One thing for the commit thread to do.
#[derive(Debug)]
pub(crate) enum Request {
    /// Compare-and-set `data` (the record as JSON) under `uri`.
    Save {
        /// The record's URI.
        uri: String,
        /// The record's version, `expected + 1`.
        version: u64,
        /// The version that must be stored now (0: none).
        expected: u64,
        /// The record as JSON.
        data: Vec<u8>,
        /// Where the outcome goes.
        reply: oneshot::Sender<StoreResult<()>>,
    },
    /// Delete the record of `uri`.
    Delete {
        /// The record's URI.
        uri: String,
        /// Where the outcome goes: whether there was a record.
        reply: oneshot::Sender<StoreResult<bool>>,
    },
    /// Seal the active segment (if it holds anything) so that compaction
    /// can take all data.
    Roll {
        /// Where the outcome goes.
        reply: oneshot::Sender<StoreResult<()>>,
    },
}

/// The most bytes of records one group commit takes (more wait for the
/// next): bounds the size of a frame and the memory of a commit.
pub(crate) const GROUP_BYTES: usize = 16 * 1024 * 1024;

impl Request {
    /// Bytes of record data this request writes.
    fn bytes(&self) -> usize {
        match self {
            Request::Save { uri, data, .. } => uri.len() + data.len(),
            Request::Delete { uri, .. } => uri.len(),
            Request::Roll { .. } => 0,
        }
    }

    /// Answers with an error saying why nothing was done.
    fn fail(self, why: &str) {
        match self {
            Request::Save { uri, reply, .. } => {
                let _ = reply.send(Err(StoreError::Backend(format!(
                    "cannot save record {}: {why}",
                    crate::name::shorten(&uri)
                ))));
            }
            Request::Delete { uri, reply } => {
                let _ = reply.send(Err(StoreError::Backend(format!(
                    "cannot delete record {}: {why}",
                    crate::name::shorten(&uri)
                ))));
            }
            Request::Roll { reply } => {
                let _ = reply.send(Err(StoreError::Backend(format!("cannot compact: {why}"))));
            }
        }
    }
}

/// How long the commit thread looks for the next request before it goes to
/// sleep. With one writer the next save arrives a few microseconds after
/// the last answer, and waking a sleeping thread costs more than that.
const SPIN: Duration = Duration::from_micros(50);

/// The requests waiting for the commit thread.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    wake: Condvar,
    /// Whether `state.requests` may hold something: read while spinning,
    /// without the lock.
    ready: AtomicBool,
}

#[derive(Debug, Default)]
struct QueueState {
    requests: Vec<Request>,
    closed: bool,
}

impl Queue {
    /// Queues `request`; gives it back when the store is closing.
    pub(crate) fn push(&self, request: Request) -> Result<(), Request> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.closed {
            return Err(request);
        }
        state.requests.push(request);
        self.ready.store(true, Ordering::Release);
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    /// Lets the commit thread finish what is queued and stop.
    pub(crate) fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
        self.wake.notify_all();
    }

    /// The next group: what is queued, in order, up to [`GROUP_BYTES`] of
    /// records (at least one request), waiting for something; `None` once
    /// closed and drained.
    fn take(&self) -> Option<Vec<Request>> {
        let spin_until = Instant::now() + SPIN;
        while !self.ready.load(Ordering::Acquire) && Instant::now() < spin_until {
            std::thread::yield_now();
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if !state.requests.is_empty() {
                let mut bytes = 0;
                let count = state
                    .requests
                    .iter()
                    .take_while(|r| {
                        bytes += r.bytes();
                        bytes <= GROUP_BYTES
                    })
                    .count()
                    .max(1);
                let rest = state.requests.split_off(count);
                self.ready.store(!rest.is_empty(), Ordering::Release);
                return Some(std::mem::replace(&mut state.requests, rest));
            }
            if state.closed {
                return None;
            }
            state = self.wake.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// What the commit decided for one request before the frame is written.
enum Plan {
    /// A save that expected another version: the one found.
    Conflict(Option<u64>),
    /// Nothing to write: a delete of no record, a roll request.
    Nothing,
    /// The entry at `rel` (from the frame start) of `len` bytes.
    Write { rel: usize, len: u32 },
}

/// The commit thread's state.
pub(crate) struct Committer {
    shared: Arc<Shared>,
    log: ActiveLog,
    /// Set after a failed sync: every later request fails with this.
    poisoned: Option<String>,
    /// Tells the compaction thread a segment was sealed.
    compactor: mpsc::Sender<()>,
}

impl Committer {
    /// A committer appending to `log`.
    pub(crate) fn new(shared: Arc<Shared>, log: ActiveLog, compactor: mpsc::Sender<()>) -> Self {
        Committer { shared, log, poisoned: None, compactor }
    }

    /// Commits groups until the queue is closed.
    pub(crate) fn run(mut self) {
        while let Some(group) = self.shared.queue.take() {
            self.commit(group);
        }
    }

    fn commit(&mut self, group: Vec<Request>) {
        let refusal = match &self.poisoned {
            Some(why) => Some(why.clone()),
            None => self.shared.check_dir().err(),
        };
        if let Some(why) = refusal {
            group.into_iter().for_each(|r| r.fail(&why));
            return;
        }

        let mut frame = Vec::new();
        let start = format::begin_frame(&mut frame);
        let mut plans = Vec::with_capacity(group.len());
        let mut rolls = Vec::new();
        {
            let index = self.shared.index();
            // Versions as the requests before in this group leave them.
            let mut pending: HashMap<&str, Option<u64>> = HashMap::new();
            for request in &group {
                let plan = match request {
                    Request::Save { uri, version, expected, data, .. } => {
                        let current = match pending.get(uri.as_str()) {
                            Some(v) => *v,
                            None => index.get(uri).map(|e| e.version),
                        };
                        if current.unwrap_or(0) != *expected {
                            Plan::Conflict(current)
                        } else {
                            let rel = frame.len();
                            let len = format::encode_entry(&mut frame, PUT, *version, uri, data);
                            pending.insert(uri, Some(*version));
                            Plan::Write { rel, len }
                        }
                    }
                    Request::Delete { uri, .. } => {
                        let current = match pending.get(uri.as_str()) {
                            Some(v) => *v,
                            None => index.get(uri).map(|e| e.version),
                        };
                        match current {
                            None => Plan::Nothing,
                            Some(version) => {
                                let rel = frame.len();
                                let len =
                                    format::encode_entry(&mut frame, DELETE, version, uri, &[]);
                                pending.insert(uri, None);
                                Plan::Write { rel, len }
                            }
                        }
                    }
                    Request::Roll { .. } => Plan::Nothing,
                };
                plans.push(plan);
            }
        }

        let written = plans.iter().any(|p| matches!(p, Plan::Write { .. }));
        let appended = if written {
            format::finish_frame(&mut frame, start);
            match self.log.append(&self.shared, &frame) {
                Ok(appended) => Some(appended),
                Err(e) => {
                    let why = e.describe();
                    if matches!(e, AppendError::Sync(..)) {
                        tracing::error!(dir = %self.shared.dir.display(), "file store: {why}");
                        self.poisoned = Some(why.clone());
                    }
                    group.into_iter().for_each(|r| r.fail(&why));
                    return;
                }
            }
        } else {
            None
        };

        // Durable: make it visible, then answer.
        let mut answers = Vec::with_capacity(group.len());
        {
            let mut index = self.shared.index_mut();
            for (request, plan) in group.into_iter().zip(plans) {
                match (request, plan) {
                    (Request::Save { uri, version, reply, .. }, Plan::Write { rel, len }) => {
                        if let Some(appended) = &appended {
                            let at = Location {
                                segment: Arc::clone(&appended.segment),
                                offset: appended.offset + rel as u64,
                                len,
                            };
                            index.put(&uri, Entry { version, at });
                        }
                        answers.push(Answer::Saved(reply, Ok(())));
                    }
                    (Request::Save { uri, expected, reply, .. }, plan) => {
                        let found = match plan {
                            Plan::Conflict(found) => found,
                            _ => None,
                        };
                        let conflict = StoreError::Conflict { uri, expected, found };
                        answers.push(Answer::Saved(reply, Err(conflict)));
                    }
                    (Request::Delete { uri, reply }, Plan::Write { .. }) => {
                        index.remove(&uri);
                        answers.push(Answer::Deleted(reply, true));
                    }
                    (Request::Delete { reply, .. }, _) => {
                        answers.push(Answer::Deleted(reply, false));
                    }
                    (Request::Roll { reply }, _) => rolls.push(reply),
                }
            }
        }
        answers.into_iter().for_each(Answer::send);

        let mut rolled = appended.is_some_and(|a| a.rolled);
        if !rolls.is_empty() {
            let outcome = if self.log.is_empty() {
                Ok(())
            } else {
                rolled = true;
                self.log.roll(&self.shared).map_err(|e| {
                    crate::fsutil::io_failure("cannot start a new segment in", &self.shared.dir, &e)
                })
            };
            for reply in rolls {
                let _ = reply.send(outcome.clone());
            }
        }
        if rolled {
            let _ = self.compactor.send(());
        }
    }
}

/// An answer waiting for the index update to finish.
enum Answer {
    Saved(oneshot::Sender<StoreResult<()>>, StoreResult<()>),
    Deleted(oneshot::Sender<StoreResult<bool>>, bool),
}

impl Answer {
    fn send(self) {
        match self {
            Answer::Saved(reply, outcome) => {
                let _ = reply.send(outcome);
            }
            Answer::Deleted(reply, existed) => {
                let _ = reply.send(Ok(existed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(bytes: usize) -> Request {
        let (reply, _) = oneshot::channel();
        Request::Save { uri: "/x".into(), version: 1, expected: 0, data: vec![0; bytes], reply }
    }

    #[test]
    fn a_group_takes_at_most_group_bytes_but_always_one_request() {
        let queue = Queue::default();
        for bytes in [10, 20, GROUP_BYTES / 2, GROUP_BYTES / 2, GROUP_BYTES * 2, 5] {
            queue.push(save(bytes)).unwrap();
        }
        let sizes = |group: Vec<Request>| group.iter().map(Request::bytes).collect::<Vec<_>>();
        let half = GROUP_BYTES / 2 + 2;
        assert_eq!(sizes(queue.take().unwrap()), vec![12, 22, half]);
        assert_eq!(sizes(queue.take().unwrap()), vec![half]);
        assert_eq!(sizes(queue.take().unwrap()), vec![GROUP_BYTES * 2 + 2]);
        assert_eq!(sizes(queue.take().unwrap()), vec![7]);
        queue.close();
        assert!(queue.take().is_none());
        assert!(queue.push(save(1)).is_err());
    }
}
