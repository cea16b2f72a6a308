//! Events per second through the local runner: the sync worker's real handler and AWS wiring
//! (`from_aws`) on the stack from the SAM template on moto, Salesforce and Zendesk served by
//! the sandbox binary over loopback, and the local SQS runner in front (docs/worker.md).
//!
//! For each worker count (1 and 4 by default) a fresh stack and sandbox hold N new customer
//! accounts; the bench enqueues one `closed_won` event per account (each a create: the
//! heaviest decision) and runs the workers until every account is linked, then enqueues one
//! `name_changed` event per account (already linked and unchanged: reads only) and runs them
//! until the queue is empty. It prints events per second for each phase and where the time
//! went: CPU seconds of moto, of the sandbox and of this process (our code: the worker, its
//! clients, the AWS SDK and the runner), read from /proc.
//!
//! Per phase it also counts moto's requests (DynamoDB and SQS) per event by operation and
//! table, from moto's request recorder (`/moto-api/recorder/`; the recording file, by default
//! `moto_recording` in this directory, is removed at the end). `WORKER_BENCH_KEEP=<dir>` keeps
//! each phase's requests there.
//!
//! `cargo run -p orglink-e2e --example worker_bench [-- EVENTS [WORKERS...]]` (a debug build,
//! like the e2e suites: our share of the CPU is an upper bound)
//! (default 200 events, workers 1 4; needs `.venv` with moto: `make venv`, and the sandbox
//! binary: `cargo build -p orglink-sandbox`).

#[path = "../tests/worker_support/mod.rs"]
mod worker_support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;

use orglink_shared::contract::EventKind;
use serde_json::json;
use worker_support::{World, account, customer, request};

/// CPU seconds (user + system) a process has used, from /proc/<pid>/stat.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The parent process id of `pid`.
fn parent_of(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1).map(str::to_string)
}

/// This process's descendants by command line: moto's server (started through a shell by
/// the harness) and the sandbox.
fn child_pids(name_part: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let pid = entry.file_name().to_string_lossy().to_string();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        // The shell wrapper's command line names moto too; only the server itself counts.
        if !cmdline.contains(name_part) || cmdline.starts_with("sh\0") {
            continue;
        }
        let mut cur = parent_of(&pid);
        for _ in 0..4 {
            match cur {
                Some(p) if p == me => {
                    pids.push(pid.clone());
                    break;
                }
                Some(p) if p != "0" && p != "1" => cur = parent_of(&p),
                _ => break,
            }
        }
    }
    pids
}

/// `WORKER_BENCH_PRODUCTION_BUDGET=1`: the default budgets (Zendesk 700/min at a 50 % share:
/// 350 calls a minute, so at most ~1.5 creates a second at 4 Zendesk calls each), which then
/// set the pace. Otherwise budgets far above what the machine reaches, so the figures say what
/// the worker, moto and the machine can do.
fn production_budget() -> bool {
    std::env::var("WORKER_BENCH_PRODUCTION_BUDGET").is_ok_and(|v| v == "1")
}

#[derive(Clone, Copy, Default)]
struct Cpu {
    moto: f64,
    sandbox: f64,
    ours: f64,
}

fn cpu_now() -> Cpu {
    let sum = |name: &str| {
        child_pids(name)
            .iter()
            .filter_map(|p| cpu_seconds(p))
            .sum::<f64>()
    };
    Cpu {
        moto: sum("moto_server"),
        sandbox: sum("orglink-sandbox"),
        ours: cpu_seconds("self").unwrap_or(f64::NAN),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// moto's request recorder (`/moto-api/recorder/`): every DynamoDB and SQS request moto
/// serves during a phase, counted by operation and table (or queue). moto appends each
/// request to a file (`MOTO_RECORDER_FILEPATH`, default `moto_recording` in its working
/// directory), emptied again after each phase.
struct Recorder {
    base: String,
    http: reqwest::Client,
}

impl Recorder {
    fn new(endpoint: &str) -> Recorder {
        Recorder {
            base: format!("{endpoint}/moto-api/recorder"),
            http: reqwest::Client::new(),
        }
    }

    async fn post(&self, what: &str) {
        let resp = self
            .http
            .post(format!("{}/{what}", self.base))
            .send()
            .await
            .expect("moto's recorder");
        assert!(
            resp.status().is_success(),
            "recorder {what}: {}",
            resp.status()
        );
    }

    async fn start(&self) {
        self.post("reset-recording").await;
        self.post("start-recording").await;
    }

    /// Stops recording and counts what was recorded: (operation, table or queue) → requests.
    /// With `WORKER_BENCH_KEEP=<dir>` the phase's requests are kept there as
    /// `<label>.jsonl`, moto's recording format.
    async fn stop(&self, label: &str) -> BTreeMap<(String, String), u64> {
        self.post("stop-recording").await;
        let text = self
            .http
            .get(format!("{}/download-recording", self.base))
            .send()
            .await
            .expect("moto's recording")
            .text()
            .await
            .expect("moto's recording");
        self.post("reset-recording").await;
        if let Ok(dir) = std::env::var("WORKER_BENCH_KEEP") {
            let path = std::path::Path::new(&dir).join(format!("{label}.jsonl"));
            std::fs::write(&path, &text).expect("keep the recording");
        }
        let mut counts = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let entry: serde_json::Value = serde_json::from_str(line).expect("a recorded request");
            let target = entry["headers"]
                .as_object()
                .and_then(|h| {
                    h.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
                        .and_then(|(_, v)| v.as_str())
                })
                .unwrap_or("?");
            let op = target.rsplit('.').next().unwrap_or(target).to_string();
            let raw = entry["body"].as_str().unwrap_or_default();
            let body = if entry["body_encoded"].as_bool() == Some(true) {
                base64::engine::general_purpose::STANDARD
                    .decode(raw)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .unwrap_or_default()
            } else {
                raw.to_string()
            };
            let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            // The table or queue without the stack's prefix.
            let on = body["TableName"]
                .as_str()
                .or(body["QueueUrl"].as_str())
                .map(|t| {
                    let t = t.rsplit('/').next().unwrap_or(t);
                    t.split_once('-').map_or(t, |(_, rest)| rest).to_string()
                })
                .unwrap_or_default();
            *counts.entry((op, on)).or_insert(0) += 1;
        }
        counts
    }
}

fn print_requests(counts: &BTreeMap<(String, String), u64>, events: usize) {
    let total: u64 = counts.values().sum();
    println!(
        "  {:<28} moto requests: {total} = {:.1} per event",
        "",
        total as f64 / events.max(1) as f64
    );
    for ((op, on), n) in counts {
        println!(
            "  {:<28}   {op:<24} {on:<28} {n:>6} = {:>5.2} per event",
            "",
            *n as f64 / events.max(1) as f64
        );
    }
}

struct Phase {
    events: usize,
    requests: BTreeMap<(String, String), u64>,
    elapsed: Duration,
    invocations: u64,
    calls: u64,
    cpu: Cpu,
    finished: bool,
}

impl Phase {
    fn print(&self, label: &str, workers: usize) {
        let secs = self.elapsed.as_secs_f64();
        let total = self.cpu.moto + self.cpu.sandbox + self.cpu.ours;
        let share = |x: f64| 100.0 * x / total.max(f64::EPSILON);
        println!(
            "  {label:<28} workers {workers}: {} events in {secs:.1} s = {:.1} events/s ({} invocations, {} API calls){}",
            self.events,
            self.events as f64 / secs,
            self.invocations,
            self.calls,
            if self.finished { "" } else { "  NOT FINISHED" }
        );
        println!(
            "  {:<28} CPU s: moto {:.1} ({:.0}%), sandbox {:.1} ({:.0}%), orglink + SDK + runner {:.1} ({:.0}%)",
            "",
            self.cpu.moto,
            share(self.cpu.moto),
            self.cpu.sandbox,
            share(self.cpu.sandbox),
            self.cpu.ours,
            share(self.cpu.ours),
        );
        print_requests(&self.requests, self.events);
    }
}

fn diff(after: Cpu, before: Cpu) -> Cpu {
    Cpu {
        moto: after.moto - before.moto,
        sandbox: after.sandbox - before.sandbox,
        ours: after.ours - before.ours,
    }
}

fn api_calls(w: &World) -> u64 {
    w.calls.snapshot().values().sum()
}

async fn bench(events: usize, workers: usize) -> (Phase, Phase) {
    let ids: Vec<String> = (0..events as u64).map(|n| account(900_000 + n)).collect();
    let accounts: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| {
            customer(
                id,
                &format!("Bench Customer {n}"),
                &format!("https://bench-customer-{n}.com"),
            )
        })
        .collect();
    let mut settings = worker_support::fast_settings();
    if !production_budget() {
        settings.zendesk_plan_per_minute = 60_000;
        settings.zendesk_share_percent = 100;
        settings.salesforce_per_minute = 60_000;
    }
    let w = World::start_with(
        &format!("wbench{workers}"),
        json!({"salesforce": {"accounts": accounts}}),
        settings,
    )
    .await;
    if !production_budget() {
        w.admin
            .zd_post("switches", json!({"rate_limit_per_minute": 1_000_000}))
            .await;
    }
    // As a first reconcile leaves it (without it, creates are held).
    w.fill_mirror().await;
    let recorder = Recorder::new(w.aws.endpoint());
    let max = Duration::from_secs(1800);

    // Creates.
    for (n, id) in ids.iter().enumerate() {
        w.enqueue(&request(id, EventKind::ClosedWon, &format!("create-{n}")))
            .await;
    }
    recorder.start().await;
    let (calls, cpu, t) = (api_calls(&w), cpu_now(), Instant::now());
    let report = w.run_until_linked(workers, &ids, max).await;
    let create = Phase {
        events,
        elapsed: t.elapsed(),
        invocations: report.invocations,
        calls: api_calls(&w) - calls,
        cpu: diff(cpu_now(), cpu),
        finished: report.finished,
        requests: recorder.stop(&format!("create-{workers}")).await,
    };

    // Already linked and unchanged.
    for (n, id) in ids.iter().enumerate() {
        w.enqueue(&request(id, EventKind::NameChanged, &format!("same-{n}")))
            .await;
    }
    recorder.start().await;
    let (calls, cpu, t) = (api_calls(&w), cpu_now(), Instant::now());
    let report = w
        .run_until(workers, max, || async { w.queue_depth().await == (0, 0) })
        .await;
    let unchanged = Phase {
        events,
        elapsed: t.elapsed(),
        invocations: report.invocations,
        calls: api_calls(&w) - calls,
        cpu: diff(cpu_now(), cpu),
        finished: report.finished,
        requests: recorder.stop(&format!("unchanged-{workers}")).await,
    };
    assert_eq!(w.dlq_depth().await, 0, "no event may reach the DLQ");
    (create, unchanged)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let events: usize = args
        .next()
        .map(|a| a.parse().expect("EVENTS is a whole number"))
        .unwrap_or(200);
    let mut workers: Vec<usize> = args
        .map(|a| a.parse().expect("WORKERS are whole numbers"))
        .collect();
    if workers.is_empty() {
        workers = vec![1, 4];
    }
    println!(
        "worker bench: {events} events per phase through the local runner on moto + sandbox, {} (load average {})",
        if production_budget() {
            "production budgets (Zendesk 350 calls/min)"
        } else {
            "budgets out of the way"
        },
        load_average()
    );
    for n in workers {
        let (create, unchanged) = bench(events, n).await;
        create.print("create (new customer)", n);
        unchanged.print("already linked, unchanged", n);
    }
    println!("  load average at the end {}", load_average());
    // moto (started from this directory) left its emptied recording file behind.
    let recording =
        std::env::var("MOTO_RECORDER_FILEPATH").unwrap_or_else(|_| "moto_recording".into());
    let _ = std::fs::remove_file(recording);
}
