//! The Markdown report: every figure as the median of the runs with min–max,
//! the ratio to the workload's baseline, and the targets of issue 11.
//!
//! Ratios are paired: each round measured every variant once, so each round
//! gives one ratio variant / baseline, and the report shows the median of
//! those ratios. That cancels most of the drift of a shared machine.

use std::fmt::Write as _;

use crate::cli::{Options, Workload};
use crate::frameworks::{self, Framework};
use crate::{ask, http, idle, persist};

/// What one child run gave.
#[derive(Clone, Debug)]
pub enum Sample {
    /// It finished; its figures.
    Done(crate::measure::Metrics),
    /// It failed or was killed; what it printed before.
    Failed {
        /// Figures printed before the end.
        partial: crate::measure::Metrics,
        /// Why it ended.
        reason: String,
    },
}

impl Sample {
    fn metrics(&self) -> &crate::measure::Metrics {
        match self {
            Sample::Done(m) | Sample::Failed { partial: m, .. } => m,
        }
    }

    /// A metric, if this run has it.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.metrics().iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// One line for the progress log.
    pub fn describe(&self) -> String {
        let figures: Vec<String> =
            self.metrics().iter().map(|(n, v)| format!("{n}={}", compact(*v))).collect();
        match self {
            Sample::Done(_) => figures.join(" "),
            Sample::Failed { reason, .. } => format!("FAILED: {reason} {}", figures.join(" ")),
        }
    }
}

/// Every run of one case (workload × variant).
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The workload's key.
    pub workload: String,
    /// The framework, server or store.
    pub variant: &'static str,
    /// One sample per round, in order.
    pub samples: Vec<Sample>,
    /// Why the case was not run again, if it was given up.
    pub given_up: Option<String>,
}

impl Outcome {
    /// No runs yet.
    pub fn new(workload: String, variant: &'static str) -> Outcome {
        Outcome { workload, variant, samples: Vec::new(), given_up: None }
    }

    /// Records a run; a failed run gives the case up.
    pub fn push(&mut self, sample: Sample) {
        if let Sample::Failed { reason, .. } = &sample {
            self.given_up = Some(reason.clone());
        }
        self.samples.push(sample);
    }

    fn values(&self, metric: &str) -> Vec<f64> {
        self.samples.iter().filter_map(|s| s.get(metric)).collect()
    }

    fn stats(&self, metric: &str) -> Option<Stats> {
        Stats::of(self.values(metric))
    }
}

/// Median, min and max of a set of values.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Stats {
    /// `None` for no values.
    pub fn of(mut values: Vec<f64>) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median =
            if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 };
        Some(Stats { median, min: values[0], max: values[n - 1], n })
    }
}

/// How a variant is named in the report.
pub fn label(variant: &str) -> &str {
    match variant {
        "raw-tokio" => "raw tokio (mpsc + oneshot)",
        "kinesis" => "**kinesis**",
        "kinesis-nt" => "**kinesis**, handle without timeout",
        "kinesis-ro" => "**kinesis**, read-only message",
        "kinesis-jwt" => "**kinesis**, JWT bearer token (HS256)",
        "bare-axum" => "bare axum",
        "sqlite" => "SQLite (sqlx, WAL)",
        "filedb" => "**kinesis-filedb** (fsync)",
        other => other,
    }
}

/// A number in a short form: `1.23 M`, `456.7 k`, `812`.
fn compact(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v.abs() >= 1e4 {
        format!("{:.1} k", v / 1e3)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A metric's figure: `median (min–max)`.
fn figure(stats: Option<Stats>, format: fn(f64) -> String) -> String {
    match stats {
        Some(s) => format!("{} ({}–{})", format(s.median), format(s.min), format(s.max)),
        None => "—".to_owned(),
    }
}

fn rate(v: f64) -> String {
    compact(v)
}

fn secs(v: f64) -> String {
    format!("{v:.3} s")
}

fn bytes(v: f64) -> String {
    format!("{v:.0} B")
}

/// The outcomes of one workload, baseline first.
fn cases<'a>(outcomes: &'a [Outcome], workload: &str) -> Vec<&'a Outcome> {
    outcomes.iter().filter(|o| o.workload == workload).collect()
}

/// The median over rounds of `case / baseline` for `metric`.
fn paired_ratio(case: &Outcome, baseline: &Outcome, metric: &str) -> Option<f64> {
    let ratios: Vec<f64> = case
        .samples
        .iter()
        .zip(&baseline.samples)
        .filter_map(|(c, b)| Some(c.get(metric)? / b.get(metric)?))
        .filter(|r| r.is_finite())
        .collect();
    Stats::of(ratios).map(|s| s.median)
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or("—".to_owned(), |r| format!("{r:.2}×"))
}

fn note(case: &Outcome) -> String {
    match &case.given_up {
        Some(reason) => format!(" ⚠ {reason}"),
        None => String::new(),
    }
}

/// The whole report (without the machine header, which `scripts/bench` writes).
///
/// `scaling` holds the single runs of the idle scaling probe, by count.
pub fn markdown(outcomes: &[Outcome], scaling: &[(usize, Outcome)], options: &Options) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Each figure: median of {} runs (min–max), each run in a fresh process; timed runs last {} s after a warm-up. \
         Ratios: median over runs of the paired ratio to the baseline measured in the same round.\n",
        options.runs, options.seconds
    );
    ask_section(&mut md, outcomes);
    idle_section(&mut md, outcomes);
    scaling_section(&mut md, scaling);
    snapshot_section(&mut md, outcomes);
    http_section(&mut md, outcomes);
    persist_section(&mut md, outcomes);
    targets_section(&mut md, outcomes);
    md
}

/// One table of a higher-is-better metric: `| scenario | variant | figure | ratio |`.
fn rate_table(
    md: &mut String,
    outcomes: &[Outcome],
    rows: &[(String, String)],
    metric: &str,
    unit: &str,
    baseline: &str,
) {
    let _ = writeln!(md, "| scenario | variant | {unit}: median (min–max) | × {baseline} |");
    let _ = writeln!(md, "| --- | --- | ---: | ---: |");
    for (key, title) in rows {
        let group = cases(outcomes, key);
        let Some(base) = group.first() else { continue };
        for case in &group {
            let _ = writeln!(
                md,
                "| {title} | {} | {} | {}{} |",
                label(case.variant),
                figure(case.stats(metric), rate),
                ratio_text(paired_ratio(case, base, metric)),
                note(case)
            );
        }
    }
    md.push('\n');
}

fn ask_section(md: &mut String, outcomes: &[Outcome]) {
    let rows: Vec<(String, String)> = ask::Scenario::ALL
        .iter()
        .map(|s| (Workload::Ask(*s).key(), s.title().to_owned()))
        .filter(|(k, _)| outcomes.iter().any(|o| &o.workload == k))
        .collect();
    if rows.is_empty() {
        return;
    }
    md.push_str(
        "## Ask round trips\n\nRound trips per second (higher is better), 2 worker threads.\n\n",
    );
    rate_table(md, outcomes, &rows, "asks_per_s", "asks/s", "raw tokio");
}

fn idle_section(md: &mut String, outcomes: &[Outcome]) {
    let group = cases(outcomes, &Workload::Idle.key());
    let Some(base) = group.first() else { return };
    let _ = writeln!(
        md,
        "## {} idle actors: spawn, then stop all\n\nTime and resident memory per actor (lower is better). \
         Memory is the RSS growth from `/proc/self/statm` over the spawn, divided by the count.\n",
        thousands(idle::COUNT)
    );
    md.push_str("| framework | spawn + stop | × raw tokio | spawn | stop | memory per actor | × raw tokio |\n");
    md.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    for case in &group {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {}{} |",
            label(case.variant),
            figure(case.stats("total_s"), secs),
            ratio_text(paired_ratio(case, base, "total_s")),
            figure(case.stats("spawn_s"), secs),
            figure(case.stats("stop_s"), secs),
            figure(case.stats("bytes_per_actor"), bytes),
            ratio_text(paired_ratio(case, base, "bytes_per_actor")),
            note(case)
        );
    }
    md.push('\n');
}

fn scaling_section(md: &mut String, scaling: &[(usize, Outcome)]) {
    if scaling.is_empty() {
        return;
    }
    md.push_str(
        "Idle actors by count (one run each, a diagnostic of how the times grow; not a median):\n\n\
         | count | framework | spawn | stop | memory per actor |\n| ---: | --- | ---: | ---: | ---: |\n",
    );
    for (count, case) in scaling {
        let one = |metric: &str, format: fn(f64) -> String| {
            case.stats(metric).map_or("—".to_owned(), |s| format(s.median))
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {}{} |",
            thousands(*count),
            label(case.variant),
            one("spawn_s", secs),
            one("stop_s", secs),
            one("bytes_per_actor", bytes),
            note(case)
        );
    }
    md.push('\n');
}

fn snapshot_section(md: &mut String, outcomes: &[Outcome]) {
    let group = cases(outcomes, &Workload::Snapshot.key());
    let Some(base) = group.first() else { return };
    md.push_str(
        "## Snapshot reads while another task writes\n\nOne reader task and one writer task for the same time (higher is better). \
         kinesis: `Handle::snapshot()`; raw tokio: an `ArcSwap` the actor stores after each change; \
         ractor, kameo, actix: an ask of the state.\n\n",
    );
    md.push_str("| framework | reads/s: median (min–max) | × raw tokio | concurrent writes/s |\n");
    md.push_str("| --- | ---: | ---: | ---: |\n");
    for case in &group {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {}{} |",
            label(case.variant),
            figure(case.stats("reads_per_s"), rate),
            ratio_text(paired_ratio(case, base, "reads_per_s")),
            figure(case.stats("writes_per_s"), rate),
            note(case)
        );
    }
    md.push('\n');
}

fn http_section(md: &mut String, outcomes: &[Outcome]) {
    let rows: Vec<(String, String)> = http::Op::ALL
        .iter()
        .map(|o| (Workload::Http(*o).key(), o.title().to_owned()))
        .filter(|(k, _)| outcomes.iter().any(|o| &o.workload == k))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## HTTP on 127.0.0.1\n\n{} keep-alive connections, requests back to back (higher is better); \
         server and load generator each on a 2-worker runtime in one process.\n",
        http::CONNECTIONS
    );
    rate_table(md, outcomes, &rows, "req_per_s", "requests/s", "bare axum");
    md.push_str("Targets (issue 12), both ways of reading the runs: the ratio of the medians, and the median of the paired ratios.\n\n| request | target | ratio of medians | paired ratio | verdict |\n| --- | --- | ---: | ---: | --- |\n");
    for (op, goal) in [(http::Op::Get, 0.95), (http::Op::Post, 0.9), (http::Op::Put, 0.9)] {
        let key = Workload::Http(op).key();
        let kinesis = median_of(outcomes, &key, "kinesis", "req_per_s");
        let bare = median_of(outcomes, &key, "bare-axum", "req_per_s");
        let of_medians = kinesis.zip(bare).map(|(k, b)| k / b);
        let paired = ratio_of(outcomes, &key, "kinesis", "bare-axum", "req_per_s");
        let _ = writeln!(
            md,
            "| {} | ≥ {goal:.2}× | {} | {} | {} |",
            op.title(),
            ratio_text(of_medians),
            ratio_text(paired),
            verdict(of_medians.zip(paired).map(|(m, p)| m >= goal && p >= goal))
        );
    }
    let jwt = Workload::Http(http::Op::Get).key();
    let with = median_of(outcomes, &jwt, "kinesis-jwt", "req_per_s");
    let without = median_of(outcomes, &jwt, "kinesis", "req_per_s");
    if with.is_some() {
        let of_medians = with.zip(without).map(|(w, o)| w / o);
        let paired = ratio_of(outcomes, &jwt, "kinesis-jwt", "kinesis", "req_per_s");
        let _ = writeln!(
            md,
            "\nTarget (issue 13): a GET with a valid JWT against the same GET without authentication.\n\n\
             | request | target | ratio of medians | paired ratio | verdict |\n| --- | --- | ---: | ---: | --- |\n\
             | GET with a JWT | ≥ 0.90× | {} | {} | {} |",
            ratio_text(of_medians),
            ratio_text(paired),
            verdict(of_medians.zip(paired).map(|(m, p)| m >= 0.9 && p >= 0.9))
        );
    }
    md.push('\n');
}

fn persist_section(md: &mut String, outcomes: &[Outcome]) {
    let rows: Vec<(String, String)> = persist::WRITERS
        .iter()
        .map(|n| {
            let title = if *n == 1 {
                "1 writer".to_owned()
            } else {
                format!("{n} writers, {n} components")
            };
            (Workload::Persist(*n).key(), title)
        })
        .filter(|(k, _)| outcomes.iter().any(|o| &o.workload == k))
        .collect();
    let startup = outcomes.iter().any(|o| o.workload == Workload::PersistStartup.key());
    if rows.is_empty() && !startup {
        return;
    }
    md.push_str(
        "## Persisted writes\n\nA kinesis component with a `#[persist]` field, each ask acknowledged once the store \
         confirmed the write (higher is better).\n\n",
    );
    rate_table(md, outcomes, &rows, "writes_per_s", "writes/s", "SQLite");
    startup_table(md, outcomes);
}

/// Start-up and disk space of the file store, and the targets of issue 17.
fn startup_table(md: &mut String, outcomes: &[Outcome]) {
    let key = Workload::PersistStartup.key();
    let startup = outcomes.iter().find(|o| o.workload == key);
    let ratio = |writers: usize| {
        ratio_of(outcomes, &Workload::Persist(writers).key(), "filedb", "sqlite", "writes_per_s")
    };
    let times = |v: f64| format!("{v:.2}×");
    let stat = |metric: &str| startup.and_then(|o| o.stats(metric));
    if let Some(case) = startup {
        let _ = writeln!(
            md,
            "The file store with {} records (a small component each, saved twice), opened again \
             (read the log, build the index, load one record), then compacted{}:\n",
            persist::STARTUP_RECORDS,
            note(case)
        );
        md.push_str("| figure | median (min–max) |\n| --- | ---: |\n");
        let rows = [
            ("start-up", "startup_s", secs as fn(f64) -> String),
            ("log files ÷ live data, before compaction", "disk_ratio_before", times),
            ("log files ÷ live data, after compaction", "disk_ratio_after", times),
            ("live data", "live_bytes", bytes),
        ];
        for (title, metric, format) in rows {
            let _ = writeln!(md, "| {title} | {} |", figure(stat(metric), format));
        }
        md.push('\n');
    }
    md.push_str("Targets (issue 17):\n\n| target | measured | verdict |\n| --- | --- | --- |\n");
    for (writers, goal) in [(1, 1.5), (64, 3.0)] {
        let r = ratio(writers);
        let who = if writers == 1 { "1 writer".to_owned() } else { format!("{writers} writers") };
        let _ = writeln!(
            md,
            "| persisted writes, {who}: ≥ {goal:.1}× SQLite | {} | {} |",
            ratio_text(r),
            verdict(r.map(|r| r >= goal))
        );
    }
    let s = stat("startup_s").map(|s| s.median);
    let _ = writeln!(
        md,
        "| start-up with {} records: ≤ 1 s | {} | {} |",
        persist::STARTUP_RECORDS,
        s.map_or("—".to_owned(), secs),
        verdict(s.map(|s| s <= 1.0))
    );
    let d = stat("disk_ratio_after").map(|s| s.median);
    let _ = writeln!(
        md,
        "| disk space after compaction: ≤ 2× the live data | {} | {} |",
        d.map_or("—".to_owned(), times),
        verdict(d.map(|d| d <= 2.0))
    );
    md.push('\n');
}

fn median_of(outcomes: &[Outcome], workload: &str, variant: &str, metric: &str) -> Option<f64> {
    outcomes
        .iter()
        .find(|o| o.workload == workload && o.variant == variant)
        .and_then(|o| o.stats(metric))
        .map(|s| s.median)
}

fn ratio_of(
    outcomes: &[Outcome],
    workload: &str,
    variant: &str,
    baseline: &str,
    metric: &str,
) -> Option<f64> {
    let case = outcomes.iter().find(|o| o.workload == workload && o.variant == variant)?;
    let base = outcomes.iter().find(|o| o.workload == workload && o.variant == baseline)?;
    paired_ratio(case, base, metric)
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "not measured",
    }
}

fn targets_section(md: &mut String, outcomes: &[Outcome]) {
    md.push_str("## Targets (issue 11)\n\n| target | measured | verdict |\n| --- | --- | --- |\n");
    let kinesis = frameworks::Kinesis::NAME;
    for scenario in ask::Scenario::ALL {
        let key = Workload::Ask(scenario).key();
        let ratio = ratio_of(outcomes, &key, kinesis, frameworks::Raw::NAME, "asks_per_s");
        // One caller: ≥ 0.6×; 64 callers (to one actor, to 1,000): ≥ 0.8×.
        let goal = if scenario == ask::Scenario::Sequential { 0.6 } else { 0.8 };
        let _ = writeln!(
            md,
            "| ask, {}: ≥ {goal:.2}× raw tokio | {} | {} |",
            scenario.title(),
            ratio_text(ratio),
            verdict(ratio.map(|r| r >= goal))
        );
        let ours = median_of(outcomes, &key, kinesis, "asks_per_s");
        let rivals = [frameworks::Ractor::NAME, frameworks::Kameo::NAME];
        let mut behind = Vec::new();
        let mut measured = ours.is_some();
        for rival in rivals {
            match (ours, median_of(outcomes, &key, rival, "asks_per_s")) {
                (Some(o), Some(r)) => {
                    if o <= r {
                        behind.push(format!("{rival} {}", compact(r)));
                    }
                }
                _ => measured = false,
            }
        }
        let text = match ours {
            Some(o) if behind.is_empty() => format!("kinesis {}/s, ahead of all", compact(o)),
            Some(o) => format!("kinesis {}/s; behind: {}", compact(o), behind.join(", ")),
            None => "—".to_owned(),
        };
        let _ = writeln!(
            md,
            "| ask, {}: ahead of ractor and kameo | {text} | {} |",
            scenario.title(),
            verdict(measured.then_some(behind.is_empty()))
        );
    }
    let idle_key = Workload::Idle.key();
    let per_actor = median_of(outcomes, &idle_key, kinesis, "bytes_per_actor");
    let _ = writeln!(
        md,
        "| memory: ≤ 1,500 B per idle component | {} | {} |",
        per_actor.map_or("—".to_owned(), |b| format!("{b:.0} B")),
        verdict(per_actor.map(|b| b <= 1500.0))
    );
    let total = ratio_of(outcomes, &idle_key, kinesis, frameworks::Raw::NAME, "total_s");
    let given_up = outcomes
        .iter()
        .any(|o| o.workload == idle_key && o.variant == kinesis && o.given_up.is_some());
    let _ = writeln!(
        md,
        "| spawn + stop of {} components ≤ 1.5× raw tokio | {} | {} |",
        thousands(idle::COUNT),
        match total {
            Some(t) => format!("{t:.2}×"),
            None if given_up => "did not finish".to_owned(),
            None => "—".to_owned(),
        },
        verdict(if given_up && total.is_none() { Some(false) } else { total.map(|t| t <= 1.5) })
    );
    let get =
        ratio_of(outcomes, &Workload::Http(http::Op::Get).key(), kinesis, "bare-axum", "req_per_s");
    let _ = writeln!(
        md,
        "| HTTP GET unchanged or better (0.85× bare axum before issue 11) | {} | {} |",
        ratio_text(get),
        verdict(get.map(|r| r >= 0.85))
    );
    md.push('\n');
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
