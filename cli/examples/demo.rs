//! `make demo`: orglink end to end on a generated messy world, locally.
//!
//! 1. generate about 2,000 accounts with ground truth (`orglink-sandbox generate`), start moto
//!    (`tests/harness/moto/moto_server`: moto with exact shortcuts in its DynamoDB comparisons, and request
//!    counts by operation) with the template's tables, queues and secrets (tests/harness), and
//!    the Salesforce and Zendesk simulators seeded with the world; a throwaway RSA key for the
//!    operator's JWT bearer sign-in, its public half given to the Salesforce simulator;
//! 2. `orglink config check` and 3. `orglink audit` with its HTML report (the world before
//!    orglink), both signed in with the JWT bearer flow;
//! 4. `orglink backfill plan`, then `apply` of the plan's hash, state in the stack's tables;
//! 5. live events: people's changes in Salesforce, signed notifier batches through intake's
//!    handler onto the SQS FIFO queue; two agents' edits by hand in Zendesk, their webhooks
//!    signed with the webhook's signing secret through intake; four workers drain the queue
//!    through the local runner;
//! 6. a full reconcile run (`run_to_end`) filling the exceptions table and enqueueing safe
//!    repairs; 7. the workers drain those repairs;
//! 8. the result: links and coverage (before and after the repairs), organizations created,
//!    events by outcome, exceptions by kind with their actions, data fixes, API calls against
//!    the floor and AWS requests to moto by stage, the HTML reports;
//! 9. the canary scan: the run's secrets (and the JWT private key's PEM body) are values
//!    generated for it; every log line the in-process components wrote (JSON,
//!    `target/demo/logs.jsonl`), every line the demo and the `orglink` commands printed and
//!    every file under `target/demo/` (moto's log and the simulators' stderr among them) is
//!    searched for them (and their base64 forms). Any hit fails the demo.
//!
//! Everything it starts stops when it ends, on error too: moto and the sandbox are dropped (and
//! exit by themselves if this process dies, through their stdin lifelines). Run it with
//! `make demo`, which builds `orglink` and `orglink-sandbox` first.

#[path = "demo/calls.rs"]
mod calls;
#[path = "demo/jwt.rs"]
mod jwt;
#[path = "demo/live.rs"]
mod live;
#[path = "demo/logs.rs"]
mod logs;
#[path = "demo/scan.rs"]
mod scan;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use orglink_harness::{AwsEnv, LocalStack, Moto, Sandbox, repo_root};
use orglink_reconcile::aws::{ReconcileEnv, from_aws};
use orglink_reconcile::{Limits, Mode, ReconcileEvent};
use orglink_sandbox::generate::Truth;
use orglink_shared::aws::{ExceptionFilter, ExceptionStatus, ExceptionStore};
use orglink_shared::contract::Config;
use orglink_shared::exceptions::ExceptionKind;
use orglink_shared::http::CallLog;

use calls::Snapshot;
use scan::{Canary, Scanner};

const ACCOUNTS: &str = "2000";
const SEED: &str = "42";
/// Accounts changed per event kind in the live stage (five kinds).
const PER_KIND: usize = 40;
/// The simulator's Zendesk limit and every budget, raised from a plan's 700 a minute so the
/// demo takes a minute or two; the calls against the floor show what a real plan would spend.
const ZENDESK_PER_MINUTE: u32 = 6000;
const SALESFORCE_PER_MINUTE: u32 = 6000;
const SF_CLIENT_ID: &str = "orglink-sandbox-consumer-key";
/// Generated worlds date their tickets before mid-2025, so the audits (`--ticket-days`) and the
/// reconcile (`ticket_horizon_days`) look back a century to see the planted ticket drift; the
/// README's quote of the audit is checked with the same window (cli/tests/audit.rs).
const TICKET_DAYS: &str = "36500";
const ZD_EMAIL: &str = "admin@example.com";
/// The integration user the operator's JWT bearer sign-in names (the sandbox's `sub`).
const SF_USERNAME: &str = "integration@orglink.sandbox";

/// Everything the demo printed, for the canary scan.
static TRANSCRIPT: Mutex<String> = Mutex::new(String::new());

fn record(line: &str) {
    let mut t = TRANSCRIPT.lock().unwrap_or_else(|p| p.into_inner());
    t.push_str(line);
    t.push('\n');
}

macro_rules! say {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        record(&line);
    }};
}

macro_rules! complain {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        eprintln!("{line}");
        record(&line);
    }};
}

fn orglink_bin() -> PathBuf {
    repo_root().join("target/debug/orglink")
}

fn stage(n: u32, title: &str) {
    say!("\n== stage {n}: {title}");
}

/// The run's secrets: each a fresh canary (and, once made, the JWT key: `jwt_key`).
struct Canaries {
    sf_client_secret: Canary,
    zd_token: Canary,
    sf_signing: Canary,
    zd_webhook: Canary,
}

impl Canaries {
    fn new() -> Canaries {
        Canaries {
            sf_client_secret: Canary::new("salesforce-client-secret", rand::random()),
            zd_token: Canary::new("zendesk-api-token", rand::random()),
            sf_signing: Canary::new("intake-signing-secret", rand::random()),
            zd_webhook: Canary::new("zendesk-webhook-secret", rand::random()),
        }
    }
    fn all(&self) -> Vec<Canary> {
        vec![
            self.sf_client_secret.clone(),
            self.zd_token.clone(),
            self.sf_signing.clone(),
            self.zd_webhook.clone(),
        ]
    }
}

fn main() -> ExitCode {
    let started = Instant::now();
    let out = repo_root().join("target/demo");
    let _ = std::fs::remove_dir_all(&out);
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("demo: cannot create {}: {e}", out.display());
        return ExitCode::from(2);
    }
    let canaries = Canaries::new();
    // The operator's throwaway RSA key for the JWT bearer flow, made while the world is
    // generated and moto starts (a debug build takes a few seconds).
    let keygen = std::thread::spawn(jwt::generate_key);
    let jwt_key: OnceLock<Canary> = OnceLock::new();
    let log_file = out.join("logs.jsonl");
    if let Err(e) = logs::install(&log_file) {
        eprintln!("demo: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("demo: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    // Everything `run` starts is dropped (stopped) when it returns, error or not.
    let result = runtime.block_on(run(&out, &canaries, keygen, &jwt_key));
    drop(runtime);
    let failed = match &result {
        Ok(()) => false,
        Err(e) => {
            complain!("demo failed: {e}");
            true
        }
    };
    say!(
        "\nstopped moto and the sandbox; files are in {}",
        out.display()
    );

    stage(9, "secret scan");
    let transcript = TRANSCRIPT.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut all = canaries.all();
    all.extend(jwt_key.get().cloned());
    let hits = match scan_everything(&out, &log_file, &transcript, &all) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("demo: the secret scan could not run: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "\ndemo finished in {:.0} s{}",
        started.elapsed().as_secs_f64(),
        if failed { " (failed)" } else { "" }
    );
    if failed || hits > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Scans the logs, the transcript and every file the run left; prints the result line and
/// each hit (by canary name and place, never the value). Returns the number of hits.
fn scan_everything(
    out: &Path,
    log_file: &Path,
    transcript: &str,
    canaries: &[Canary],
) -> Result<usize, String> {
    let scanner = Scanner::new(canaries);
    let read = |p: &Path| {
        std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let logs = scanner.scan("logs.jsonl", &read(log_file)?);
    let mut other = scanner.scan("the demo's output", transcript);
    let mut files = Vec::new();
    let mut dirs = vec![out.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path != log_file {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for f in &files {
        let name = f.strip_prefix(out).unwrap_or(f).display().to_string();
        let report = scanner.scan(&name, &read(f)?);
        by_name.insert(name, report.lines);
        other.add(report);
    }
    let lines_of = |name: &str| by_name.get(name).copied().unwrap_or(0);
    let hits: Vec<_> = logs.hits.iter().chain(&other.hits).collect();
    println!(
        "secret scan: {} log lines, {} canary hits ({} more lines of printed output and files under {} scanned, among them moto's log, {} lines, and the simulators' stderr, {} lines)",
        logs.lines,
        hits.len(),
        other.lines,
        out.display(),
        lines_of("moto.log"),
        lines_of("sandbox-stderr.log")
    );
    for h in &hits {
        println!(
            "  canary {} found in {} line {}",
            h.canary, h.source, h.line
        );
    }
    Ok(hits.len())
}

/// The `orglink` binary with the sandbox's credentials and the stack's names and moto's
/// endpoint in its environment; its output is printed and kept for the scan.
struct Orglink {
    env: Vec<(String, String)>,
}

impl Orglink {
    fn run(&self, args: &[&str], echo: bool) -> Result<(i32, String), String> {
        let output = Command::new(orglink_bin())
            .args(args)
            .env_remove("ORGLINK_CONFIG_FILE")
            .env_remove("ORGLINK_CONFIG_TOML")
            .env_remove("ORGLINK_CREDENTIALS_JSON")
            .env_remove("ORGLINK_SECRET_ID")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .map_err(|e| format!("orglink: {e} (run `cargo build -p orglink-cli`)"))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        if echo {
            for line in stdout.lines() {
                say!("{line}");
            }
        } else {
            record(&stdout);
        }
        for line in stderr.lines() {
            complain!("{line}");
        }
        Ok((output.status.code().unwrap_or(2), stdout))
    }
}

/// Moto, with its log copied under `target/demo/` (for the scan) when it stops.
struct MotoKeepingLog {
    moto: Moto,
    to: PathBuf,
}

impl Drop for MotoKeepingLog {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.to, self.moto.log());
    }
}

async fn run(
    out: &Path,
    canaries: &Canaries,
    keygen: std::thread::JoinHandle<Result<jwt::Key, String>>,
    jwt_key: &OnceLock<Canary>,
) -> Result<(), String> {
    let t0 = Instant::now();
    stage(
        1,
        "a generated messy world; moto with the template's resources; the sandbox",
    );
    let generated = Command::new(Sandbox::binary())
        .args([
            "generate",
            "--accounts",
            ACCOUNTS,
            "--seed",
            SEED,
            "--out-dir",
        ])
        .arg(out)
        .output()
        .map_err(|e| {
            format!("orglink-sandbox generate: {e} (run `cargo build -p orglink-sandbox`)")
        })?;
    if !generated.status.success() {
        return Err(String::from_utf8_lossy(&generated.stderr).into_owned());
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&generated.stdout).map_err(|e| format!("generate summary: {e}"))?;
    say!(
        "generated {} accounts and {} organizations from {} messy patterns (seed {SEED}); ground truth in {}",
        summary["accounts"],
        summary["organizations"],
        summary["patterns"],
        out.join("truth.json").display()
    );
    let read_json = |name: &str| -> Result<serde_json::Value, String> {
        let p = out.join(name);
        serde_json::from_slice(&std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?)
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let scenario = read_json("scenario.json")?;
    let truth: Truth =
        serde_json::from_value(read_json("truth.json")?).map_err(|e| format!("truth.json: {e}"))?;

    // moto_server with exact shortcuts in its DynamoDB comparisons (the harness's
    // tests/harness/moto/moto_server.py, which also counts requests by operation).
    let moto = MotoKeepingLog {
        moto: Moto::start().map_err(|e| e.to_string())?,
        to: out.join("moto.log"),
    };
    let aws = AwsEnv::for_moto(&moto.moto).await;
    let stack = LocalStack::create(&aws, "orglink-demo")
        .await
        .map_err(|e| e.to_string())?;
    let names = stack.names().map_err(|e| e.to_string())?;
    say!(
        "moto on {}: {} tables, queues and secrets created from infra/template.yaml",
        aws.endpoint(),
        stack.resources.len()
    );

    let config = Config::embedded_default();
    let org_id = config.binding().salesforce_org_id().as_str().to_string();
    let rate = ZENDESK_PER_MINUTE.to_string();
    let key = keygen
        .join()
        .map_err(|_| "the RSA key generation panicked".to_string())??;
    let public_key = out.join("jwt-public-key.pem");
    std::fs::write(&public_key, &key.public_pem).map_err(|e| e.to_string())?;
    let private_key =
        jwt_key.get_or_init(|| Canary::pem("salesforce-jwt-private-key", key.private_pem.clone()));
    let public_key = public_key.display().to_string();
    let sandbox_stderr = out.join("sandbox-stderr.log");
    let sandbox = Sandbox::start_with_stderr(
        Some(&out.join("scenario.json")),
        &[
            "--salesforce-jwt-public-key",
            &public_key,
            "--salesforce-username",
            SF_USERNAME,
            "--salesforce-org-id",
            &org_id,
            "--salesforce-client-secret",
            &canaries.sf_client_secret.value,
            "--zendesk-token",
            &canaries.zd_token.value,
            "--zendesk-rate-limit",
            &rate,
            "--zendesk-job-delay-ms",
            "100",
        ],
        Stdio::from(
            std::fs::File::create(&sandbox_stderr)
                .map_err(|e| format!("{}: {e}", sandbox_stderr.display()))?,
        ),
    )
    .map_err(|e| e.to_string())?;
    say!(
        "Salesforce simulator {} (org {org_id}), Zendesk simulator {} (limit raised to {ZENDESK_PER_MINUTE} requests a minute for the demo; a Suite Enterprise plan allows 700)",
        sandbox.salesforce,
        sandbox.zendesk
    );
    // The deployment's secrets, as an operator stores them.
    let secrets = aws.secrets();
    let put = |id: String, value: serde_json::Value| {
        let secrets = secrets.clone();
        async move {
            secrets
                .put_secret_value()
                .secret_id(&id)
                .secret_string(value.to_string())
                .send()
                .await
                .map_err(|e| format!("put secret {id}: {e}"))
        }
    };
    put(
        names.secret_id.clone(),
        serde_json::json!({
            "salesforce": {"my_domain_url": sandbox.salesforce, "client_id": SF_CLIENT_ID,
                           "flow": "client_credentials", "client_secret": canaries.sf_client_secret.value},
            "zendesk": {"auth": "api_token", "email": ZD_EMAIL, "api_token": canaries.zd_token.value}
        }),
    )
    .await?;
    put(
        stack
            .outputs
            .get("IntakeSecretArn")
            .cloned()
            .ok_or("the template has no IntakeSecretArn output")?,
        serde_json::json!({"salesforce": {"current": canaries.sf_signing.value},
                           "zendesk_webhook": {"current": canaries.zd_webhook.value}}),
    )
    .await?;
    say!(
        "secrets: canary values generated for this run (scanned for at the end); the operator's JWT bearer key: a throwaway 2048-bit RSA key (made in {:.1} s), its public half given to the Salesforce simulator as a connected app's certificate  [{:.1} s]",
        key.took.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );

    let mut env: Vec<(String, String)> = vec![
        (
            "ORGLINK_SF_MY_DOMAIN_URL".into(),
            sandbox.salesforce.clone(),
        ),
        ("ORGLINK_SF_CLIENT_ID".into(), SF_CLIENT_ID.into()),
        (
            "ORGLINK_SF_CLIENT_SECRET".into(),
            canaries.sf_client_secret.value.clone(),
        ),
        ("ORGLINK_ZD_EMAIL".into(), ZD_EMAIL.into()),
        (
            "ORGLINK_ZD_API_TOKEN".into(),
            canaries.zd_token.value.clone(),
        ),
        ("ORGLINK_ZD_BASE_URL".into(), sandbox.zendesk.clone()),
    ];
    env.extend(aws.env_vars().into_iter().map(|(k, v)| (k.to_string(), v)));
    env.extend(names.to_env().into_iter().map(|(k, v)| (k.to_string(), v)));
    // The operator at the terminal signs in with the JWT bearer flow (username + the key);
    // the deployment's secret uses client credentials.
    let jwt_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "ORGLINK_SF_CLIENT_SECRET")
        .cloned()
        .chain([
            ("ORGLINK_SF_USERNAME".to_string(), SF_USERNAME.to_string()),
            (
                "ORGLINK_SF_PRIVATE_KEY_PEM".to_string(),
                private_key.value.clone(),
            ),
        ])
        .collect();
    let operator = Orglink { env: jwt_env };
    let orglink = Orglink { env };
    let http = reqwest::Client::new();
    let moto_url = aws.endpoint().to_string();
    let snap = || calls::snapshot(&http, &sandbox.salesforce, &sandbox.zendesk, &moto_url);
    let at_start = snap().await?;

    stage(
        2,
        "orglink config check (the operator signs in to Salesforce with the JWT bearer flow)",
    );
    let t = Instant::now();
    // 3: nothing failed, but View All cannot be read without View Setup and Configuration,
    // which the sandbox's integration user lacks as a real one does (docs/cli.md).
    if !matches!(operator.run(&["config", "check"], true)?.0, 0 | 3) {
        return Err("config check failed against the sandbox".into());
    }
    say!("[{:.1} s]", t.elapsed().as_secs_f64());

    stage(3, "orglink audit (read-only): the world before orglink ran");
    let t = Instant::now();
    let html = out.join("audit.html");
    let (code, before_table) = operator.run(
        &[
            "audit",
            "--ticket-days",
            TICKET_DAYS,
            "--html",
            &html.display().to_string(),
        ],
        true,
    )?;
    if code == 2 {
        return Err("the audit could not run".into());
    }
    say!("(exit code {code}: 1 means critical findings exist, as planted in this world)");
    say!("[{:.1} s]", t.elapsed().as_secs_f64());

    stage(4, "orglink backfill plan, then apply of the reviewed plan");
    let t = Instant::now();
    let before_backfill = snap().await?;
    let plan = out.join("backfill-plan.json");
    let plan_s = plan.display().to_string();
    let budget = [
        "--zendesk-plan-limit",
        &rate,
        "--zendesk-share-percent",
        "100",
        "--salesforce-per-minute",
        "6000",
        "--quiet",
    ];
    let mut args = vec!["backfill", "plan", "--out", &plan_s];
    args.extend(budget);
    if orglink.run(&args, true)?.0 != 0 {
        return Err("backfill plan failed".into());
    }
    let after_plan = snap().await?;
    let plan_file = read_json("backfill-plan.json")?;
    let hash = plan_file["hash"]
        .as_str()
        .ok_or("the plan file has no hash")?
        .to_string();
    let mut args = vec![
        "backfill",
        "apply",
        "--plan",
        &plan_s,
        "--confirm-plan-hash",
        &hash,
    ];
    args.extend(budget);
    if orglink.run(&args, true)?.0 != 0 {
        return Err("backfill apply failed".into());
    }
    let after_apply = snap().await?;
    say!("[{:.1} s]", t.elapsed().as_secs_f64());

    stage(
        5,
        "live events: Salesforce changes → intake → SQS FIFO → workers",
    );
    let t = Instant::now();
    let changes = live::choose(&scenario, &truth, PER_KIND);
    let setup = live::Setup {
        aws: &aws,
        stack: &stack,
        sandbox: &sandbox,
        org_id: &org_id,
        sf_client_id: SF_CLIENT_ID,
        sf_client_secret: &canaries.sf_client_secret.value,
        signing_secret: &canaries.sf_signing.value,
        webhook_secret: &canaries.zd_webhook.value,
        zd_email: ZD_EMAIL,
        zd_token: &canaries.zd_token.value,
        zendesk_per_minute: ZENDESK_PER_MINUTE,
        salesforce_per_minute: SALESFORCE_PER_MINUTE,
    };
    live::make_changes(&http, &setup, &changes).await?;
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &changes {
        *by_kind.entry(c.kind.as_str()).or_default() += 1;
    }
    say!(
        "people changed {} records in Salesforce: {}",
        changes.len(),
        by_kind
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let before_live = snap().await?;
    let live = live::run_stage(&setup, &changes).await?;
    let after_live = snap().await?;
    say!(
        "intake: {} signed requests ({} events, some batches delivered twice) in {:.1} s: {}",
        live.requests,
        live.events,
        live.intake_time.as_secs_f64(),
        join(&live.intake)
    );
    say!(
        "agents edited two linked organizations by hand in Zendesk; orglink's webhook, signed with its signing secret, through intake: {}",
        live.webhooks.join("; ")
    );
    say_drained("workers", &live.workers)?;
    say!("[{:.1} s]", t.elapsed().as_secs_f64());

    stage(6, "nightly reconcile (full run)");
    let t = Instant::now();
    let mut renv: BTreeMap<String, String> = names
        .to_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    renv.insert(
        orglink_reconcile::settings::SETTINGS_ENV.into(),
        serde_json::json!({
            "zendesk_plan_per_minute": ZENDESK_PER_MINUTE, "zendesk_share_percent": 100,
            "salesforce_per_minute": SALESFORCE_PER_MINUTE,
            "ticket_horizon_days": TICKET_DAYS.parse::<u32>().expect("a number of days"),
            "zendesk": {"base_url": sandbox.zendesk}
        })
        .to_string(),
    );
    renv.insert("ORGLINK_DEPLOYMENT".into(), "demo".into());
    let reconcile_env =
        ReconcileEnv::from_lookup(|k| renv.get(k).cloned()).map_err(|e| e.to_string())?;
    let reconciler = from_aws(aws.sdk_config(), &reconcile_env, CallLog::new())
        .await
        .map_err(|e| format!("reconcile does not start: {e}"))?;
    let outcome = reconciler
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .map_err(|e| format!("reconcile: {e}"))?;
    let after_reconcile = snap().await?;
    let s = &outcome.summary;
    say!(
        "run {}: {:?}, {} organizations and {} accounts read; {} findings ({} new rows), {} safe repairs enqueued",
        s.run_id,
        s.state,
        s.orgs.seen,
        s.accounts.read,
        s.rows.findings,
        s.rows.new,
        s.repairs.enqueued
    );
    say!(
        "tickets: {} read, {} on an organization their requester does not belong to",
        s.tickets.read,
        s.tickets.misattributed
    );
    say!("[{:.1} s]", t.elapsed().as_secs_f64());

    stage(7, "the reconcile's safe repairs: SQS FIFO → workers");
    let t = Instant::now();
    // Coverage as the reconcile left it, to show what its repairs change.
    let (_, json) = orglink.run(
        &["audit", "--format", "json", "--ticket-days", TICKET_DAYS],
        false,
    )?;
    let before_repairs: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("audit JSON: {e}"))?;
    let before_repair_calls = snap().await?;
    let repairs = live::drain(&setup).await?;
    let after_repairs = snap().await?;
    say_drained("workers", &repairs)?;
    say!("[{:.1} s]", t.elapsed().as_secs_f64());
    let rows = reconciler
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .map_err(|e| format!("exceptions table: {e}"))?;

    stage(8, "what happened");
    let after_html = out.join("audit-after.html");
    let (_, json) = orglink.run(
        &[
            "audit",
            "--format",
            "json",
            "--ticket-days",
            TICKET_DAYS,
            "--html",
            &after_html.display().to_string(),
        ],
        false,
    )?;
    std::fs::write(out.join("audit-after.json"), &json).map_err(|e| e.to_string())?;
    let after: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("audit JSON: {e}"))?;
    let before_audit: serde_json::Value = {
        // The world as generated: organizations before orglink ran.
        serde_json::json!({"organizations": scenario["zendesk"]["organizations"].as_array().map(|a| a.len()).unwrap_or(0)})
    };
    let totals = &after["totals"];
    let orgs_before = before_audit["organizations"].as_u64().unwrap_or(0);
    let orgs_after = totals["organizations"].as_u64().unwrap_or(0);
    let repaired = &before_repairs["totals"];
    say!(
        "accounts linked: {} of {} eligible ({}% coverage; before the reconcile's repairs: {} ({}%); the audit before orglink: {})",
        totals["linked"],
        totals["eligible"],
        totals["coverage_percent"],
        repaired["linked"],
        repaired["coverage_percent"],
        coverage_line(&before_table)
    );
    say!(
        "the reconcile's {} safe repairs, through the workers: {}{}",
        s.repairs.enqueued,
        join(&repairs.outcomes),
        if repairs.exception_kinds.is_empty() {
            String::new()
        } else {
            format!(" (exceptions: {})", join(&repairs.exception_kinds))
        }
    );
    say!(
        "organizations: {orgs_before} before, {orgs_after} after: {} created by orglink (it never deletes or merges one)",
        orgs_after.saturating_sub(orgs_before)
    );
    say!(
        "live events by outcome: {} (intake: {})",
        join(&live.workers.outcomes),
        join(&live.intake)
    );
    let mut by_kind: BTreeMap<ExceptionKind, usize> = BTreeMap::new();
    for r in &rows {
        *by_kind.entry(r.kind()).or_default() += 1;
    }
    say!(
        "open exceptions: {} in the exceptions table, by kind, with the recommended action:",
        rows.len()
    );
    for (kind, n) in &by_kind {
        say!(
            "  {:<26} {:>4}  {}",
            kind.as_str(),
            n,
            kind.recommended_action()
        );
    }
    say!(
        "report lines (not exceptions): {}",
        s.report_by_kind
            .iter()
            .map(|(k, n)| format!(
                "{} {n}",
                serde_json::to_value(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    say!(
        "data fixes found (Salesforce Website values to correct): {}",
        totals["data_fixes"]
    );
    let read = read_floor(&scenario, &plan_file);
    let apply = apply_floor(&plan_file, &after_apply.since(&after_plan), read);
    print_calls(&[
        (
            "config check + audit",
            &before_backfill.since(&at_start),
            None,
        ),
        (
            "backfill plan",
            &after_plan.since(&before_backfill),
            Some(read),
        ),
        (
            "backfill apply",
            &after_apply.since(&after_plan),
            Some(apply),
        ),
        ("live events", &after_live.since(&before_live), None),
        (
            "reconcile",
            &after_reconcile.since(&after_live),
            Some(with_tickets(read, &scenario)),
        ),
        (
            "reconcile's repairs",
            &after_repairs.since(&before_repair_calls),
            None,
        ),
    ]);
    say!(
        "  the whole run after setup: {}",
        after_repairs.since(&at_start).describe_aws(8)
    );
    let live_calls = after_live.since(&before_live);
    say!(
        "  per live event: {:.1} Salesforce + {:.1} Zendesk calls (docs/worker.md: already linked 2 + 1, link an existing organization by domain 4 + 3, create 3 + 4)",
        Snapshot::total(&live_calls.salesforce) as f64 / live.events.max(1) as f64,
        Snapshot::total(&live_calls.zendesk) as f64 / live.events.max(1) as f64
    );
    say!(
        "HTML reports: {} (before), {} (after)",
        html.display(),
        after_html.display()
    );
    drop(reconciler);
    drop(sandbox);
    drop(moto);
    say!(
        "moto's log and the simulators' stderr kept for the scan: {}, {}",
        out.join("moto.log").display(),
        sandbox_stderr.display()
    );
    Ok(())
}

/// The workers' line: messages by outcome, time, retries and dead letters. Fails when the
/// queue was not drained in time.
fn say_drained(who: &str, d: &live::Drained) -> Result<(), String> {
    let processed: u64 = d.outcomes.values().sum();
    say!(
        "{who}: {} messages done in {:.1} s by {} workers ({} invocations): {}",
        processed,
        d.time.as_secs_f64(),
        d.workers,
        d.invocations,
        join(&d.outcomes)
    );
    if !d.exception_kinds.is_empty() {
        say!("  exceptions by kind: {}", join(&d.exception_kinds));
    }
    say!(
        "  retried later {}, re-sent fresh {}, crashed invocations {}, poison {}, dead letters {}",
        d.retries,
        d.requeued,
        d.crashes,
        d.poison,
        d.dead_letters
    );
    if d.drained {
        Ok(())
    } else {
        Err("the workers did not drain the queue in time".into())
    }
}

fn join<K: std::fmt::Display, V: std::fmt::Display>(m: &BTreeMap<K, V>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `linked N (P% coverage)` from the audit's table.
fn coverage_line(table: &str) -> String {
    table
        .lines()
        .find(|l| l.contains("% coverage"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "not printed".into())
}

/// One read of both systems: organization pages (100 each), account and opportunity query
/// pages (2,000 each). Salesforce, Zendesk.
fn read_floor(scenario: &serde_json::Value, plan: &serde_json::Value) -> (u64, u64) {
    let n = |v: &serde_json::Value| v.as_array().map(|a| a.len() as u64).unwrap_or(0);
    let accounts = n(&scenario["salesforce"]["accounts"]);
    let opportunities = n(&scenario["salesforce"]["opportunities"]);
    let orgs = plan["plan"]["organizations_read"].as_u64().unwrap_or(0);
    (
        accounts.div_ceil(2000) + opportunities.div_ceil(2000),
        orgs.div_ceil(100),
    )
}

/// A read plus the ticket check's floor (docs/reconcile.md): one export page per 1,000 tickets
/// and one membership listing per requester whose default organization is not a ticket's.
fn with_tickets(read: (u64, u64), scenario: &serde_json::Value) -> (u64, u64) {
    let zd = &scenario["zendesk"];
    let default_org: BTreeMap<u64, u64> = zd["users"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| Some((u["id"].as_u64()?, u["organization_id"].as_u64()?)))
        .collect();
    let tickets = zd["tickets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut looked_up: Vec<u64> = tickets
        .iter()
        .filter_map(|t| Some((t["requester_id"].as_u64()?, t["organization_id"].as_u64()?)))
        .filter(|(requester, org)| default_org.get(requester) != Some(org))
        .map(|(requester, _)| requester)
        .collect();
    looked_up.sort_unstable();
    looked_up.dedup();
    let pages = (tickets.len() as u64).div_ceil(1000).max(1);
    (read.0, read.1 + pages + looked_up.len() as u64)
}

/// The apply's floor: one read of both systems (it re-checks every account against the
/// current state), `ceil(creates/100) + ceil(updates/100)` Zendesk jobs plus their status polls,
/// and `ceil(write-backs/200)` Salesforce collection calls. Salesforce, Zendesk.
fn apply_floor(plan: &serde_json::Value, calls: &Snapshot, read: (u64, u64)) -> (u64, u64) {
    let t = &plan["plan"]["totals"];
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let polls = calls.zendesk.get("zd.job_status").copied().unwrap_or(0);
    (
        read.0 + n(&t["write_backs"]).div_ceil(200),
        read.1
            + n(&t["actions"]["create"]).div_ceil(100)
            + n(&t["org_updates"]).div_ceil(100)
            + polls,
    )
}

/// Each stage's calls; the floor, where one is defined, excludes sign-in and the binding check.
/// A stage's name, its calls and its floor (Salesforce, Zendesk) where one is defined.
type StageCalls<'a> = (&'a str, &'a Snapshot, Option<(u64, u64)>);

fn print_calls(stages: &[StageCalls<'_>]) {
    say!(
        "API calls by stage, as the simulators counted them (Salesforce + Zendesk), and the stage's AWS requests to moto with the CPU time moto spent on them:"
    );
    for (name, s, floor) in stages {
        say!(
            "  {name}: {} + {}{}",
            Snapshot::total(&s.salesforce),
            Snapshot::total(&s.zendesk),
            floor
                .map(|(sf, zd)| format!(" (floor {sf} + {zd})"))
                .unwrap_or_default()
        );
        say!("      {}", Snapshot::describe(&s.salesforce));
        say!("      {}", Snapshot::describe(&s.zendesk));
        if !s.aws.is_empty() {
            say!("      {}", s.describe_aws(6));
        }
    }
}
