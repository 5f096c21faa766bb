//! The command line of the bench binary: the parent that runs every case
//! in fresh child processes, round after round, and the child that measures
//! one case.
//!
//! ```text
//! compare [run] [--runs N] [--seconds S] [--only KEY,…] [--out FILE]
//! compare child WORKLOAD VARIANT SECONDS
//! ```
//!
//! The parent interleaves the variants: round 1 measures every case once,
//! then round 2, and so on, so slow drifts of the machine's load spread over
//! all variants alike, and each round gives one paired ratio to the
//! baseline. A child prints its figures as `METRICS [[name, value], …]`
//! lines on stdout (the last one counts); a child that overruns its time
//! limit is killed, keeps the figures it printed, and its case is not run
//! again.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::frameworks::{self, Framework};
use crate::measure::Metrics;
use crate::report::{self, Outcome, Sample};
use crate::{ask, http, idle, persist, snapshot};

/// What a case measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Ask round trips.
    Ask(ask::Scenario),
    /// Spawning and stopping idle actors.
    Idle,
    /// Snapshot reads under writes.
    Snapshot,
    /// HTTP load.
    Http(http::Op),
    /// Persisted writes with this many writers.
    Persist(usize),
    /// Start-up time and disk space of a large file store.
    PersistStartup,
}

impl Workload {
    /// Every workload, in report order.
    pub fn all() -> Vec<Workload> {
        let mut all: Vec<Workload> = ask::Scenario::ALL.into_iter().map(Workload::Ask).collect();
        all.push(Workload::Idle);
        all.push(Workload::Snapshot);
        all.extend(http::Op::ALL.into_iter().map(Workload::Http));
        all.extend(persist::WRITERS.into_iter().map(Workload::Persist));
        all.push(Workload::PersistStartup);
        all
    }

    /// The command-line key, such as `ask-seq` or `persist-64`.
    pub fn key(self) -> String {
        match self {
            Workload::Ask(s) => format!("ask-{}", s.name()),
            Workload::Idle => "idle".to_owned(),
            Workload::Snapshot => "snapshot".to_owned(),
            Workload::Http(op) => format!("http-{}", op.name()),
            Workload::Persist(n) => format!("persist-{n}"),
            Workload::PersistStartup => "persist-startup".to_owned(),
        }
    }

    /// The workload called `key`.
    pub fn parse(key: &str) -> Option<Workload> {
        Workload::all().into_iter().find(|w| w.key() == key)
    }

    /// The variants measured, baseline first.
    pub fn variants(self) -> Vec<&'static str> {
        match self {
            Workload::Ask(_) => frameworks::ALL.to_vec(),
            // How handles ask changes nothing for these two.
            Workload::Idle | Workload::Snapshot => frameworks::ALL
                .into_iter()
                .filter(|f| {
                    *f != frameworks::KinesisReadOnly::NAME
                        && *f != frameworks::KinesisNoTimeout::NAME
                })
                .collect(),
            Workload::Http(_) => http::SERVERS.to_vec(),
            Workload::Persist(_) => persist::STORES.to_vec(),
            Workload::PersistStartup => vec!["filedb"],
        }
    }

    /// The longest a child may take.
    fn time_limit(self, seconds: f64) -> Duration {
        match self {
            Workload::Idle => Duration::from_secs(30),
            Workload::PersistStartup => Duration::from_secs(180),
            _ => Duration::from_secs_f64(30.0 + 10.0 * seconds),
        }
    }
}

/// Options of a parent run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Rounds (samples per case).
    pub runs: usize,
    /// Measured seconds per timed run.
    pub seconds: f64,
    /// Only workloads whose key starts with one of these.
    pub only: Vec<String>,
    /// Where the Markdown goes (stdout when `None`).
    pub out: Option<std::path::PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options { runs: 5, seconds: 1.0, only: Vec::new(), out: None }
    }
}

/// The bench binary's `main`.
pub fn main() {
    // `cargo bench` adds `--bench`; it means nothing here.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("child") => child(&args[1..]),
        Some("run") => parent(parse_options(&args[1..])),
        Some("--help" | "-h") => {
            println!("usage: compare [run] [--runs N] [--seconds S] [--only KEY,…] [--out FILE]");
            println!(
                "keys: {}",
                Workload::all().iter().map(|w| w.key()).collect::<Vec<_>>().join(" ")
            );
        }
        _ => parent(parse_options(&args)),
    }
}

fn parse_options(args: &[String]) -> Options {
    let mut options = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value")).clone();
        match arg.as_str() {
            "--runs" => options.runs = value().parse().expect("--runs N"),
            "--seconds" => options.seconds = value().parse().expect("--seconds S"),
            "--only" => options.only = value().split(',').map(str::to_owned).collect(),
            "--out" => options.out = Some(value().into()),
            other => panic!("unknown argument `{other}` (try --help)"),
        }
    }
    assert!(options.runs >= 1, "--runs must be at least 1");
    options
}

/// Runs every selected case `runs` times, each in a child, and writes the report.
fn parent(options: Options) {
    let workloads: Vec<Workload> = Workload::all()
        .into_iter()
        .filter(|w| {
            options.only.is_empty() || options.only.iter().any(|o| w.key().starts_with(o.as_str()))
        })
        .collect();
    let cases: Vec<(Workload, &'static str)> =
        workloads.iter().flat_map(|w| w.variants().into_iter().map(move |v| (*w, v))).collect();
    let mut outcomes: Vec<Outcome> = cases.iter().map(|(w, v)| Outcome::new(w.key(), v)).collect();
    let exe = std::env::current_exe().expect("own executable");
    let started = Instant::now();
    for round in 1..=options.runs {
        for ((workload, variant), outcome) in cases.iter().zip(outcomes.iter_mut()) {
            if outcome.given_up.is_some() {
                continue;
            }
            let sample = run_child(&exe, *workload, variant, options.seconds);
            eprintln!(
                "[{:>4.0} s] round {round}/{}: {:<12} {:<11} {}",
                started.elapsed().as_secs_f64(),
                options.runs,
                workload.key(),
                variant,
                sample.describe()
            );
            outcome.push(sample);
        }
    }
    let scaling = if workloads.contains(&Workload::Idle) { idle_scaling(&exe) } else { Vec::new() };
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
    let markdown = report::markdown(&outcomes, &scaling, &options);
    match &options.out {
        Some(path) => std::fs::write(path, markdown).expect("write the report"),
        None => print!("{markdown}"),
    }
}

/// Counts of the idle scaling probe.
pub const SCALING_COUNTS: [usize; 3] = [2_500, 5_000, 10_000];

/// One run of the idle workload per count of [`SCALING_COUNTS`], for raw
/// tokio and kinesis: how spawn and stop times grow with the count.
fn idle_scaling(exe: &std::path::Path) -> Vec<(usize, Outcome)> {
    let mut out = Vec::new();
    for count in SCALING_COUNTS {
        for variant in [frameworks::Raw::NAME, frameworks::Kinesis::NAME] {
            let env = (idle::COUNT_ENV, count.to_string());
            let sample = run_child_with(exe, Workload::Idle, variant, 1.0, Some(env));
            eprintln!("scaling: {count:>6} {variant:<11} {}", sample.describe());
            let mut outcome = Outcome::new(Workload::Idle.key(), variant);
            outcome.push(sample);
            out.push((count, outcome));
        }
    }
    out
}

/// Runs one case in a child process under its time limit.
fn run_child(exe: &std::path::Path, workload: Workload, variant: &str, seconds: f64) -> Sample {
    run_child_with(exe, workload, variant, seconds, None)
}

/// [`run_child`] with an extra environment variable.
fn run_child_with(
    exe: &std::path::Path,
    workload: Workload,
    variant: &str,
    seconds: f64,
    env: Option<(&str, String)>,
) -> Sample {
    let limit = workload.time_limit(seconds);
    let mut command = Command::new(exe);
    if let Some((name, value)) = env {
        command.env(name, value);
    }
    let mut child = command
        .args(["child", &workload.key(), variant, &seconds.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start a child");
    let stdout = child.stdout.take().expect("child stdout");
    let reader = std::thread::spawn(move || {
        let mut last = None;
        for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
            if let Some(json) = line.strip_prefix("METRICS ") {
                last = serde_json::from_str::<Metrics>(json).ok();
            }
        }
        last
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("child status") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let metrics = reader.join().expect("reader thread").unwrap_or_default();
    match status {
        Some(s) if s.success() => Sample::Done(metrics),
        Some(s) => Sample::Failed { partial: metrics, reason: format!("child failed ({s})") },
        None => Sample::Failed {
            partial: metrics,
            reason: format!("did not finish within {} s", limit.as_secs()),
        },
    }
}

fn print_metrics(metrics: &Metrics) {
    println!("METRICS {}", serde_json::to_string(metrics).expect("metrics serialise"));
}

/// Measures one case in this process and prints its figures.
fn child(args: &[String]) {
    let [key, variant, seconds] = args else {
        panic!("usage: compare child WORKLOAD VARIANT SECONDS");
    };
    let workload = Workload::parse(key).unwrap_or_else(|| panic!("unknown workload `{key}`"));
    let seconds: f64 = seconds.parse().expect("seconds");
    let metrics = match workload {
        Workload::Ask(scenario) => {
            crate::with_framework!(variant.as_str(), F => ask::run::<F>(scenario, seconds))
        }
        Workload::Idle => {
            let count = idle::count_from_env();
            crate::with_framework!(variant.as_str(), F => idle::run::<F>(count, print_metrics))
        }
        Workload::Snapshot => {
            crate::with_framework!(variant.as_str(), F => snapshot::run::<F>(seconds))
        }
        Workload::Http(op) => http::run(op, variant, seconds),
        Workload::Persist(writers) => persist::run(variant, writers, seconds),
        Workload::PersistStartup => persist::run_startup(variant),
    };
    print_metrics(&metrics);
}
