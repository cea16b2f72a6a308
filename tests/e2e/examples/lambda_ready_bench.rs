//! Lambda cold start of the three release binaries: time from process start to ready (the
//! first `GET /2018-06-01/runtime/invocation/next`) and to the first response for one
//! realistic event, peak memory, and the binaries' sizes (docs/benchmarks.md, issue 10).
//!
//! Each function's release binary (`cargo build --release -p orglink-intake -p
//! orglink-sync-worker -p orglink-reconcile`, x86_64) is started as Lambda starts a `bootstrap`:
//! a clean environment holding what the template gives it (`infra/template.yaml`: the Globals'
//! and the function's variables, resolved against the stack created from the same template on
//! moto), the variables Lambda itself sets (`AWS_LAMBDA_FUNCTION_NAME`, memory, log level...),
//! `AWS_LAMBDA_RUNTIME_API` pointing at a local stand-in for the Runtime API, and
//! `AWS_ENDPOINT_URL` pointing at moto; so the cold start's secret reads and SDK clients are
//! real. Salesforce and Zendesk are the sandbox binary on loopback.
//!
//! Events: intake gets a signed Salesforce batch of two events through the function URL's
//! event shape; the sync worker an SQS batch of one message, sent to and received from the
//! stack's queue on moto (a new customer each run: a create); reconcile `{"mode":"delta"}`.
//! The stand-in fails the run loudly if a function posts an init or an invocation error, asks
//! for anything else, or exits before answering.
//!
//! `cargo run -p orglink-e2e --example lambda_ready_bench [-- RUNS]` (default 10 runs per
//! function; `make bench-lambda` builds what it needs first). `ORGLINK_LAMBDA_BIN_DIR`: where
//! the binaries are (default `target/release`). Each run's function output goes to
//! `target/tmp/lambda-ready-bench/`.

#[path = "../tests/intake_support/mod.rs"]
mod intake_support;
#[path = "../tests/worker_support/mod.rs"]
mod worker_support;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use orglink_harness::template::{Lookup, Resolver};
use orglink_harness::{AwsEnv, LocalStack, Moto, Sandbox, Template, repo_root, unique_prefix};
use orglink_shared::aws::WorkQueue;
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::contract::EventKind;

const REGION: &str = "us-east-1";
const ACCOUNT_ID: &str = "123456789012";
/// How long one cold start plus its first invocation may take before the run fails.
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// Reconcile runs start at least this far apart. A delta makes two incremental export calls
/// (organizations, tickets) and Zendesk allows 10 a minute (the sandbox enforces it): back to
/// back, the fifth run would wait out a 429's Retry-After (about a minute), which measures the
/// limit, not the cold start. Deltas are scheduled minutes apart in production.
const RECONCILE_SPACING: Duration = Duration::from_secs(15);

// ------------------------------------------------------------------------------------------
// The Runtime API stand-in.

/// What the function did, in the order the stand-in saw it.
#[derive(Debug)]
enum Seen {
    Poll(Instant),
    Response {
        id: String,
        body: Bytes,
        at: Instant,
    },
    InvocationError {
        id: String,
        body: Bytes,
    },
    InitError {
        body: Bytes,
    },
    Unexpected {
        what: String,
    },
}

/// One invocation waiting to be handed out.
struct Invocation {
    request_id: String,
    deadline_ms: u64,
    function_arn: String,
    event: Value,
}

struct RuntimeApi {
    pending: Mutex<VecDeque<Invocation>>,
    seen: mpsc::UnboundedSender<Seen>,
}

async fn next(State(api): State<Arc<RuntimeApi>>) -> Response {
    let at = Instant::now();
    let _ = api.seen.send(Seen::Poll(at));
    let invocation = api.pending.lock().expect("runtime api lock").pop_front();
    let Some(inv) = invocation else {
        // No more events: the long poll stays open, as on Lambda, until the process is stopped.
        std::future::pending::<()>().await;
        unreachable!("a pending future never completes")
    };
    let headers = [
        ("Lambda-Runtime-Aws-Request-Id", inv.request_id.clone()),
        ("Lambda-Runtime-Deadline-Ms", inv.deadline_ms.to_string()),
        ("Lambda-Runtime-Invoked-Function-Arn", inv.function_arn),
        (
            "Lambda-Runtime-Trace-Id",
            format!(
                "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                inv.deadline_ms / 1000,
                inv.deadline_ms,
                inv.deadline_ms
            ),
        ),
        ("Content-Type", "application/json".into()),
    ];
    (StatusCode::OK, headers, inv.event.to_string()).into_response()
}

async fn response(
    State(api): State<Arc<RuntimeApi>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let at = Instant::now();
    let _ = api.seen.send(Seen::Response { id, body, at });
    StatusCode::ACCEPTED
}

async fn invocation_error(
    State(api): State<Arc<RuntimeApi>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    let _ = api.seen.send(Seen::InvocationError { id, body });
    StatusCode::ACCEPTED
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> StatusCode {
    let _ = api.seen.send(Seen::InitError { body });
    StatusCode::ACCEPTED
}

async fn unexpected(
    State(api): State<Arc<RuntimeApi>>,
    uri: Uri,
    headers: HeaderMap,
) -> StatusCode {
    let what = format!("{uri} ({} headers)", headers.len());
    let _ = api.seen.send(Seen::Unexpected { what });
    StatusCode::NOT_FOUND
}

/// A Runtime API on a free loopback port holding one invocation. Returns its `host:port` and
/// what the function does; the server stops when the task is aborted.
async fn runtime_api(
    invocation: Invocation,
) -> (
    String,
    mpsc::UnboundedReceiver<Seen>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let api = Arc::new(RuntimeApi {
        pending: Mutex::new(VecDeque::from([invocation])),
        seen: tx,
    });
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(invocation_error),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .fallback(unexpected)
        .with_state(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the runtime api stand-in");
    let addr = listener.local_addr().expect("its address").to_string();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .await
            .expect("the stand-in serves");
    });
    (addr, rx, server)
}

// ------------------------------------------------------------------------------------------
// The environment the template gives each function.

struct StackLookup<'a>(&'a LocalStack);

impl Lookup for StackLookup<'_> {
    fn reference(&self, id: &str) -> Option<String> {
        self.0.resources.get(id).map(|p| p.reference.clone())
    }
    fn attribute(&self, id: &str, attr: &str) -> Option<String> {
        self.0
            .resources
            .get(id)
            .and_then(|p| p.attributes.get(attr).cloned())
    }
    fn defined(&self, id: &str) -> bool {
        self.0.resources.contains_key(id) || self.0.skipped.contains_key(id)
    }
}

/// One function as the template defines it, resolved against the local stack.
struct Function {
    /// The binary's name (`BuildProperties.Binary`).
    binary: String,
    name: String,
    memory_mb: u64,
    timeout_secs: u64,
    /// The template's variables (Globals, then the function's own) and what Lambda sets.
    env: BTreeMap<String, String>,
}

fn resolve_text(resolver: &Resolver<'_, StackLookup<'_>>, v: &serde_yaml::Value) -> String {
    match resolver.resolve(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(e) => panic!("cannot resolve {v:?} against the local stack: {e:?}"),
    }
}

fn function(
    doc: &serde_yaml::Value,
    stack: &LocalStack,
    logical_id: &str,
    moto: &AwsEnv,
) -> Function {
    let pseudo = BTreeMap::from([
        ("AWS::Region", REGION.to_string()),
        ("AWS::AccountId", ACCOUNT_ID.to_string()),
        ("AWS::StackName", stack.parameters["Prefix"].clone()),
        ("AWS::Partition", "aws".to_string()),
        ("AWS::URLSuffix", "amazonaws.com".to_string()),
    ]);
    let lookup = StackLookup(stack);
    let resolver = Resolver {
        parameters: &stack.parameters,
        pseudo,
        resources: &lookup,
    };
    let def = &doc["Resources"][logical_id];
    let props = &def["Properties"];
    let binary = def["Metadata"]["BuildProperties"]["Binary"]
        .as_str()
        .unwrap_or_else(|| panic!("{logical_id} names no Binary"))
        .to_string();
    let name = resolve_text(&resolver, &props["FunctionName"]);
    let memory_mb: u64 = resolve_text(&resolver, &props["MemorySize"])
        .parse()
        .expect("MemorySize is a number");
    let timeout_secs: u64 = resolve_text(&resolver, &props["Timeout"])
        .parse()
        .expect("Timeout is a number");
    let mut env = BTreeMap::new();
    for vars in [
        &doc["Globals"]["Function"]["Environment"]["Variables"],
        &props["Environment"]["Variables"],
    ] {
        for (k, v) in vars.as_mapping().into_iter().flatten() {
            let k = k.as_str().expect("variable names are strings").to_string();
            env.insert(k, resolve_text(&resolver, v));
        }
    }
    // The template's variables must name this stack's resources as the harness does.
    for (k, v) in stack.names().expect("the stack's names").to_env() {
        assert_eq!(env.get(k), Some(&v), "{logical_id}: {k} from the template");
    }
    // What Lambda sets (provided.al2023, JSON log format from LoggingConfig).
    let logging = &props["LoggingConfig"];
    let lambda = [
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/11/24/[$LATEST]bench".into(),
        ),
        (
            "AWS_LAMBDA_LOG_FORMAT",
            resolve_text(&resolver, &logging["LogFormat"]),
        ),
        (
            "AWS_LAMBDA_LOG_LEVEL",
            resolve_text(&resolver, &logging["ApplicationLogLevel"]),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".into()),
        ("AWS_DEFAULT_REGION", REGION.into()),
        ("LAMBDA_TASK_ROOT", "/var/task".into()),
        ("TZ", ":UTC".into()),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin".into()),
    ];
    for (k, v) in lambda.into_iter().chain(moto.env_vars()) {
        env.insert(k.to_string(), v);
    }
    Function {
        binary,
        name,
        memory_mb,
        timeout_secs,
        env,
    }
}

// ------------------------------------------------------------------------------------------
// One cold start.

struct Sample {
    ready: Duration,
    first_response: Duration,
    /// Peak resident memory (VmHWM) after the first response, in KiB.
    peak_kib: u64,
    answer: Value,
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

struct Stop(Child);
impl Drop for Stop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary against a fresh stand-in holding `event`, and waits for its answer.
/// `run` names the run in the request id and the log file.
async fn cold_start(f: &Function, bin: &Path, run: &str, event: Value, logs: &Path) -> Sample {
    let request_id = format!("bench-{}-{run}-{}", f.binary, epoch_ms());
    let (addr, mut seen, server) = runtime_api(Invocation {
        request_id: request_id.clone(),
        deadline_ms: epoch_ms() + f.timeout_secs * 1000,
        function_arn: format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}", f.name),
        event,
    })
    .await;
    let log = logs.join(format!("{}-{run}.log", f.binary));
    let out = std::fs::File::create(&log).expect("the run's log file");
    let err = out.try_clone().expect("the log file again");
    let started = Instant::now();
    let child = Command::new(bin)
        .env_clear()
        .envs(&f.env)
        .env("AWS_LAMBDA_RUNTIME_API", &addr)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let mut child = Stop(child);
    let pid = child.0.id();
    let fail = |why: String| -> ! {
        panic!(
            "{} run {run}: {why}\n--- its output ({}), last lines:\n{}",
            f.binary,
            log.display(),
            tail(&log)
        )
    };
    let mut ready = None;
    let answer = loop {
        if started.elapsed() > RUN_LIMIT {
            fail(format!("no answer within {RUN_LIMIT:?}"));
        }
        let next = tokio::time::timeout(Duration::from_millis(20), seen.recv()).await;
        match next {
            Ok(Some(Seen::Poll(at))) => {
                ready.get_or_insert(at.duration_since(started));
            }
            Ok(Some(Seen::Response { id, body, at })) if id == request_id => {
                break (at.duration_since(started), body);
            }
            Ok(Some(Seen::Response { id, .. })) => fail(format!("answered an unknown id {id}")),
            Ok(Some(Seen::InvocationError { id, body })) => fail(format!(
                "invocation error for {id}: {}",
                String::from_utf8_lossy(&body)
            )),
            Ok(Some(Seen::InitError { body })) => {
                fail(format!("init error: {}", String::from_utf8_lossy(&body)))
            }
            Ok(Some(Seen::Unexpected { what })) => {
                fail(format!("asked the runtime api for {what}"))
            }
            Ok(None) => fail("the stand-in stopped".into()),
            Err(_) => {
                if let Ok(Some(status)) = child.0.try_wait() {
                    fail(format!("exited ({status}) before answering"));
                }
            }
        }
    };
    let peak_kib = vm_hwm_kib(pid).unwrap_or_else(|| fail("no /proc status".into()));
    drop(child);
    server.abort();
    let (first_response, body) = answer;
    let answer: Value =
        serde_json::from_slice(&body).unwrap_or_else(|e| fail(format!("answer is not JSON ({e})")));
    Sample {
        ready: ready.expect("a response comes after a poll"),
        first_response,
        peak_kib,
        answer,
    }
}

// ------------------------------------------------------------------------------------------
// Figures.

fn median_max(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    (xs[0], median, xs[n - 1])
}

fn report(f: &Function, samples: &[Sample]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let ready = median_max(samples.iter().map(|s| ms(s.ready)).collect());
    let first = median_max(samples.iter().map(|s| ms(s.first_response)).collect());
    let handler = median_max(
        samples
            .iter()
            .map(|s| ms(s.first_response - s.ready))
            .collect(),
    );
    let peak = median_max(samples.iter().map(|s| s.peak_kib as f64 / 1024.0).collect());
    println!(
        "  {:<12} ({} MB, {} s) {} runs: ready median {:.0} ms, max {:.0} ms (min {:.0}); first response median {:.0} ms, max {:.0} ms (min {:.0}); ready→response median {:.0} ms, max {:.0} ms; peak RSS median {:.1} MiB, max {:.1} MiB",
        f.binary,
        f.memory_mb,
        f.timeout_secs,
        samples.len(),
        ready.1,
        ready.2,
        ready.0,
        first.1,
        first.2,
        first.0,
        handler.1,
        handler.2,
        peak.1,
        peak.2
    );
    let each: Vec<String> = samples
        .iter()
        .map(|s| format!("{:.0}/{:.0}", ms(s.ready), ms(s.first_response)))
        .collect();
    println!(
        "  {:<12} each run, ready/response ms: {}",
        "",
        each.join(" ")
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

// ------------------------------------------------------------------------------------------
// The world: sandbox, stack, secrets.

/// New customers for the worker (one create per run) and linked account/org pairs for the
/// reconcile to read.
fn scenario(runs: usize) -> Value {
    let mut accounts = Vec::new();
    let mut orgs = Vec::new();
    for n in 0..runs {
        accounts.push(worker_support::customer(
            &worker_support::account(900_000 + n as u64),
            &format!("Cold Start Customer {n}"),
            &format!("https://cold-start-{n}.com"),
        ));
    }
    for n in 0..100u64 {
        let id = worker_support::account(800_000 + n);
        let org = 7_000_000 + n;
        let domain = format!("linked-{n}.com");
        accounts.push(json!({
            "Id": id, "Name": format!("Linked Customer {n}"), "Website": domain,
            "Type": "Customer - Direct", "Zendesk_Domain__c": domain,
            "Zendesk_Org_ID__c": org.to_string(), "Zendesk_Sync_Status__c": "Linked",
        }));
        orgs.push(json!({
            "id": org, "name": format!("Linked Customer {n}"), "external_id": id,
            "domain_names": [domain], "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        }));
    }
    json!({"salesforce": {"accounts": accounts}, "zendesk": {"organizations": orgs}})
}

async fn put_secret(aws: &AwsEnv, id: &str, value: Value) {
    aws.secrets()
        .put_secret_value()
        .secret_id(id)
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put secret {id}: {e}"));
}

/// Takes every message off the queue; returns how many there were.
async fn drain(queue: &SqsQueue) -> usize {
    let mut n = 0;
    for _ in 0..1000 {
        let batch = queue.receive(10, Some(60)).await.expect("receive");
        if batch.is_empty() {
            return n;
        }
        for m in batch {
            queue.delete(&m.receipt_handle).await.expect("delete");
            n += 1;
        }
    }
    n
}

/// The size of `binary` packed as Lambda takes it (`bootstrap` in a zip, deflate at zip's
/// default level, as cargo lambda packs it), by the `zip` tool.
fn zipped(binary: &Path, dir: &Path) -> String {
    std::fs::create_dir_all(dir).expect("the zip directory");
    let bootstrap = dir.join("bootstrap");
    let zip = dir.join("bootstrap.zip");
    let _ = std::fs::remove_file(&zip);
    std::fs::copy(binary, &bootstrap).expect("copy the binary");
    let made = Command::new("zip")
        .args(["-q", "-j", "-X"])
        .arg(&zip)
        .arg(&bootstrap)
        .status();
    let size = match made {
        Ok(s) if s.success() => std::fs::metadata(&zip).map(|m| bytes(m.len())).ok(),
        _ => None,
    };
    let _ = std::fs::remove_file(&bootstrap);
    size.unwrap_or_else(|| "not measured (no `zip` tool)".into())
}

fn bytes(n: u64) -> String {
    format!("{:.2} MB ({n} B)", n as f64 / 1e6)
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("RUNS is a whole number"))
        .unwrap_or(10);
    assert!(runs > 0, "RUNS must be at least 1");
    let root = repo_root();
    let bin_dir = std::env::var_os("ORGLINK_LAMBDA_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/release"));
    let logs = root.join("target/tmp/lambda-ready-bench");
    std::fs::create_dir_all(&logs).expect("the log directory");
    println!(
        "lambda ready bench: {runs} cold starts per function, binaries from {} (load average {})",
        bin_dir.display(),
        load_average()
    );

    // The sandbox first: the functions' settings name its Zendesk URL.
    let scenario_path = logs.join("scenario.json");
    std::fs::write(&scenario_path, scenario(runs).to_string()).expect("write the scenario");
    let sandbox = Sandbox::start_with(
        Some(&scenario_path),
        &["--salesforce-org-id", worker_support::BOUND_ORG],
    )
    .unwrap_or_else(|e| panic!("{e} (build it: cargo build -p orglink-sandbox)"));
    let zendesk = json!({"zendesk": {"base_url": sandbox.zendesk}}).to_string();
    let moto = Moto::shared().unwrap_or_else(|e| panic!("{e}"));
    let aws = AwsEnv::for_moto(moto).await;
    let template = Template::project().expect("infra/template.yaml");
    let overrides = BTreeMap::from([
        ("Prefix".to_string(), unique_prefix("lambdaready")),
        ("WorkerSettings".to_string(), zendesk.clone()),
        ("ReconcileSettings".to_string(), zendesk),
    ]);
    let stack = LocalStack::create_from(&aws, &template, &overrides)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let names = stack.names().expect("the stack's names");
    let sf_secret = format!("sf-signing-{}-bench", stack.parameters["Prefix"]);
    put_secret(
        &aws,
        &stack.outputs["IntakeSecretArn"],
        json!({"salesforce": {"current": sf_secret}}),
    )
    .await;
    put_secret(
        &aws,
        &names.secret_id,
        json!({
            "salesforce": {"my_domain_url": sandbox.salesforce, "client_id": "orglink-sandbox-consumer-key",
                           "flow": "client_credentials", "client_secret": worker_support::SF_CLIENT_SECRET},
            "zendesk": {"auth": "api_token", "email": "admin@example.com", "api_token": worker_support::ZD_TOKEN}
        }),
    )
    .await;
    let doc: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("infra/template.yaml")).expect("read the template"),
    )
    .expect("the template is YAML");
    let queue = SqsQueue::new(
        aws.sqs(),
        names.sync_queue_url.clone(),
        names.sync_dlq_url.clone(),
    );
    let admin = reqwest::Client::new();

    println!("binaries:");
    let functions: Vec<Function> = ["IntakeFunction", "SyncWorkerFunction", "ReconcileFunction"]
        .iter()
        .map(|id| function(&doc, &stack, id, &aws))
        .collect();
    for f in &functions {
        let path = bin_dir.join(&f.binary);
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (build it: cargo build --release -p orglink-intake -p orglink-sync-worker -p orglink-reconcile)",
                    path.display()
                )
            })
            .len();
        println!(
            "  {:<12} {}; as bootstrap.zip {}",
            f.binary,
            bytes(size),
            zipped(&path, &logs.join(&f.binary))
        );
    }

    // A deployed stack has had its first full reconcile (or a backfill): it fills the
    // organization mirror the worker looks domains up in, and starts the delta's checkpoint.
    let reconcile = functions
        .iter()
        .find(|f| f.binary == "reconcile")
        .expect("the template has the reconcile function");
    let mut last_reconcile = Instant::now();
    let full = cold_start(
        reconcile,
        &bin_dir.join(&reconcile.binary),
        "full",
        json!({"mode": "full"}),
        &logs,
    )
    .await;
    assert_eq!(
        full.answer["state"], "complete",
        "full reconcile: {}",
        full.answer
    );
    // Its repairs (if any) are not the worker's benchmark: off the queue.
    let repairs = drain(&queue).await;
    println!(
        "preparation: one full reconcile (same binary, same stand-in): ready {:.0} ms, answered after {:.1} s; API calls {}; {repairs} repair messages taken off the queue",
        full.ready.as_secs_f64() * 1000.0,
        full.first_response.as_secs_f64(),
        full.answer["api_calls"]
    );

    println!("cold starts (process start → first invocation/next = ready; → first response):");
    for f in &functions {
        let bin = bin_dir.join(&f.binary);
        let mut samples = Vec::new();
        for run in 0..runs {
            let mut receipt = None;
            let event = match f.binary.as_str() {
                "intake" => {
                    let body = intake_support::batch(
                        intake_support::BOUND_ORG,
                        &[
                            intake_support::event(
                                intake_support::A,
                                "closed_won",
                                &format!("cold-{run}-a"),
                            ),
                            intake_support::event(
                                intake_support::B,
                                "late_stage_opportunity",
                                &format!("cold-{run}-b"),
                            ),
                        ],
                    );
                    intake_support::salesforce(&sf_secret, intake_support::now(), &body)
                }
                "sync-worker" => {
                    let id = worker_support::account(900_000 + run as u64);
                    let req =
                        worker_support::request(&id, EventKind::ClosedWon, &format!("cold-{run}"));
                    queue.send(&req.to_message()).await.expect("enqueue");
                    let got = queue.receive(1, Some(600)).await.expect("receive");
                    assert_eq!(got.len(), 1, "the message just sent is on the queue");
                    receipt = Some(got[0].receipt_handle.clone());
                    serde_json::to_value(orglink_sync_worker::runner::sqs_event(&got))
                        .expect("an SQS event serializes")
                }
                "reconcile" => {
                    let wait = RECONCILE_SPACING.saturating_sub(last_reconcile.elapsed());
                    tokio::time::sleep(wait).await;
                    last_reconcile = Instant::now();
                    json!({"mode": "delta"})
                }
                other => panic!("no event for {other}"),
            };
            let s = cold_start(f, &bin, &run.to_string(), event, &logs).await;
            // Each answer must be the real thing, not merely an answer.
            match f.binary.as_str() {
                "intake" => {
                    assert_eq!(s.answer["statusCode"], 202, "intake: {}", s.answer);
                    let body: Value =
                        serde_json::from_str(s.answer["body"].as_str().unwrap_or("null"))
                            .unwrap_or(Value::Null);
                    assert_eq!(body["enqueued"], 2, "intake: {}", s.answer);
                }
                "sync-worker" => {
                    assert_eq!(
                        s.answer["batchItemFailures"],
                        json!([]),
                        "sync worker: {}",
                        s.answer
                    );
                    let id = worker_support::account(900_000 + run as u64);
                    let state: Value = admin
                        .get(format!("{}/_sandbox/state", sandbox.salesforce))
                        .send()
                        .await
                        .expect("sandbox state")
                        .json()
                        .await
                        .expect("sandbox state is JSON");
                    let linked = state["salesforce"]["accounts"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|a| a["Id"] == id.as_str() && a["Zendesk_Org_ID__c"].is_string());
                    assert!(
                        linked,
                        "sync worker: account {id} is not linked after run {run}"
                    );
                    // Lambda's event source mapping deletes a batch that succeeded.
                    let handle = receipt.take().expect("the worker's message was received");
                    queue.delete(&handle).await.expect("delete the message");
                }
                "reconcile" => {
                    assert_eq!(s.answer["state"], "complete", "reconcile: {}", s.answer);
                    assert_eq!(s.answer["mode"], "delta", "reconcile: {}", s.answer);
                }
                _ => {}
            }
            samples.push(s);
        }
        report(f, &samples);
        if f.binary == "intake" {
            // What intake enqueued is real: take it off, so the worker's runs find only theirs.
            let drained = drain(&queue).await;
            assert_eq!(drained, 2 * runs, "intake enqueued two messages a run");
        }
        if f.binary == "reconcile" {
            let last = &samples[samples.len() - 1].answer;
            println!(
                "  {:<12} last run: API calls {}, accounts {}, run duration {} ms",
                "", last["api_calls_by_endpoint"], last["accounts"], last["duration_ms"]
            );
        }
    }
    println!("load average at the end {}", load_average());
}
