//! The same counter actor written for each framework, behind one interface
//! the workloads drive.
//!
//! Every framework runs with two threads: tokio-based ones (raw tokio,
//! kinesis, ractor, kameo) on a multi-thread runtime with 2 workers; actix on
//! its `System` (the system arbiter, on the thread that runs the benchmark)
//! plus one more `Arbiter`, each a single-threaded runtime. Actix actors and
//! the tasks that call them are placed round robin on those two arbiters,
//! the way actix itself spreads work (actix-web gives each worker its own
//! arbiter): actor `i` and caller `i` live on arbiter `i % 2`.

use std::future::Future;

mod actix;
mod kameo;
mod kinesis;
mod ractor;
mod raw;

pub use self::actix::Actix;
pub use self::kameo::Kameo;
pub use self::kinesis::{Kinesis, KinesisNoTimeout, KinesisReadOnly, KinesisWith};
pub use self::ractor::Ractor;
pub use self::raw::Raw;

/// A reference to one counter actor.
pub trait Counter: Clone + Send + Sync + 'static {
    /// Asks the actor to add one; answers the new count.
    fn inc(&self) -> impl Future<Output = u64> + Send;

    /// Reads the current count the cheapest way the framework offers: a
    /// published snapshot where there is one (kinesis `Handle::snapshot`,
    /// an `ArcSwap` for raw tokio), else an ask.
    fn read(&self) -> impl Future<Output = u64> + Send;
}

/// One framework: its runtime, how it spawns tasks and counter actors, and
/// how it stops them.
pub trait Framework: Sized + Send + Sync + 'static {
    /// The name used on the command line and in the report.
    const NAME: &'static str;

    /// A reference to a counter actor.
    type Ref: Counter;

    /// Runs `fut` to completion inside this framework's 2-thread runtime.
    /// `fut` itself runs on the calling thread; work goes to
    /// [`spawn`](Framework::spawn).
    fn block_on<F: Future>(fut: F) -> F::Output;

    /// Sets the framework up; called inside [`block_on`](Framework::block_on).
    fn setup() -> impl Future<Output = Self>;

    /// Spawns `fut` on the runtime (for actix: on arbiter `worker % 2`) and
    /// answers a future of its output. The task starts at once, whether or
    /// not the answer is awaited.
    fn spawn<F>(&self, worker: usize, fut: F) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Starts counter actor number `index` and waits until it accepts
    /// messages. With `publish`, the actor also publishes its count for
    /// [`Counter::read`] after every change (only raw tokio distinguishes).
    fn start(&self, index: usize, publish: bool) -> impl Future<Output = Self::Ref> + Send;

    /// Stops every actor in `refs` and waits until all are gone.
    fn stop_all(&self, refs: Vec<Self::Ref>) -> impl Future<Output = ()> + Send;
}

/// The frameworks of the ask, idle and snapshot workloads, baseline first.
pub const ALL: [&str; 7] = [
    Raw::NAME,
    Kinesis::NAME,
    KinesisNoTimeout::NAME,
    KinesisReadOnly::NAME,
    Ractor::NAME,
    Kameo::NAME,
    Actix::NAME,
];

/// Runs `$body` with the type alias `$F` set to the framework called `$name`.
#[macro_export]
macro_rules! with_framework {
    ($name:expr, $F:ident => $body:expr) => {{
        use $crate::frameworks::Framework as _;
        match $name {
            n if n == $crate::frameworks::Raw::NAME => {
                type $F = $crate::frameworks::Raw;
                $body
            }
            n if n == $crate::frameworks::Kinesis::NAME => {
                type $F = $crate::frameworks::Kinesis;
                $body
            }
            n if n == $crate::frameworks::KinesisNoTimeout::NAME => {
                type $F = $crate::frameworks::KinesisNoTimeout;
                $body
            }
            n if n == $crate::frameworks::KinesisReadOnly::NAME => {
                type $F = $crate::frameworks::KinesisReadOnly;
                $body
            }
            n if n == $crate::frameworks::Ractor::NAME => {
                type $F = $crate::frameworks::Ractor;
                $body
            }
            n if n == $crate::frameworks::Kameo::NAME => {
                type $F = $crate::frameworks::Kameo;
                $body
            }
            n if n == $crate::frameworks::Actix::NAME => {
                type $F = $crate::frameworks::Actix;
                $body
            }
            other => panic!("unknown framework `{other}`"),
        }
    }};
}
