//! The chaos run (`make chaos`, issue 10; docs/reliability.md "Chaos"): a generated world on
//! the sandbox; events signed as Salesforce's notifier signs them, through intake's handler onto
//! the sync queue on moto; four workers (the local runner around the real handler) beside a
//! backfill (plan + apply); faults in the simulators (429s with and without `Retry-After`, 5xx,
//! dropped connections, a Zendesk outage, a lagging search index, expiring Salesforce sessions)
//! and in the worker's delivery (a crash between the Zendesk write and the write-back, messages
//! delivered twice); then a reconcile, and the repairs it enqueues worked off. Everything is
//! checked against the generator's truth and reported; [`Report::violations`] lists what failed.
//!
//! Time can run faster than real time (`speedup`): the search lag, the outage, the bulk-job
//! delay and the Zendesk plan's window shrink by that factor and the per-minute budgets grow
//! by it, so each scaled minute holds what a real one would (docs/worker.md explains the
//! retry schedule's scaling; `fast_settings` is used at every speed).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use orglink_reconcile::aws::ReconcileEnv;
use orglink_reconcile::{Limits, Mode, ReconcileEvent};
use orglink_sandbox::faults::FaultReport;
use orglink_sandbox::generate::{Expected, Options, generate};
use orglink_shared::aws::budget::DynamoBudget;
use orglink_shared::aws::mirror::MirroredOrg;
use orglink_shared::aws::queue::{BatchFailure, SqsQueue};
use orglink_shared::aws::{
    ExceptionFilter, ExceptionStatus, ExceptionStore, OrgMirror, QueueMessage, ReceivedMessage,
    SharedRateBudget, StoreError, WorkQueue,
};
use orglink_shared::backfill::{Progress, Settings, snapshot};
use orglink_shared::contract::{Config, SyncStatus};
use orglink_shared::credentials::{
    SalesforceCredentials, SalesforceFlow, Secret, ZendeskCredentials,
};
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::{CallLog, System};
use orglink_shared::ids::AccountId;
use orglink_shared::salesforce::SalesforceClient;
use orglink_shared::signature::{SIGNATURE_HEADER, sign};
use orglink_shared::sync_request::SyncRequest;
use orglink_shared::zendesk::ZendeskClient;
use orglink_sync_worker::batch::MessageFate;
use orglink_sync_worker::runner::{self, RunReport, RunnerConfig};
use orglink_sync_worker::{CrashHook, CrashPoint, WorkerSettings};

use crate::backfill_support;
use crate::worker_support::{self, LINK_FIELDS, SF_CLIENT_SECRET, World, ZD_TOKEN};

/// Real durations the run scales (issue 10).
const SEARCH_LAG: Duration = Duration::from_secs(120);
const OUTAGE: Duration = Duration::from_secs(300);
/// Zendesk Suite Enterprise's plan limit and orglink's share of it (the production defaults).
const ZENDESK_PLAN_PER_MINUTE: u32 = 700;
const ZENDESK_SHARE_PERCENT: u32 = 50;
const SALESFORCE_PER_MINUTE: u32 = 600;
/// Event kinds the Salesforce notifier sends.
const KINDS: [&str; 5] = [
    "late_stage_opportunity",
    "closed_won",
    "became_customer",
    "name_changed",
    "domain_changed",
];

/// What to run.
#[derive(Debug, Clone)]
pub struct Chaos {
    pub label: &'static str,
    pub accounts: usize,
    pub events: usize,
    pub seed: u64,
    pub workers: usize,
    /// How many times faster than real time the scaled durations and budgets run.
    pub speedup: f64,
    /// Events per notifier request (one signed batch).
    pub events_per_request: usize,
    /// The notifier waits while the sync queue holds more messages than this: moto scans the
    /// whole FIFO queue on each receive, so a deep backlog slows every worker (first full run:
    /// 1,400 queued messages, under one message handled a second).
    pub max_backlog: u64,
    /// Fault rates, per request to either simulator.
    pub rate_limit_429: f64,
    pub omit_retry_after: f64,
    pub error_5xx: f64,
    pub drop: f64,
    /// Per Zendesk write: the worker crashes before the write-back.
    pub crash: f64,
    /// Share of handled messages whose delete is lost, so SQS delivers them again.
    pub duplicate: f64,
    /// Share of notifier requests sent twice (a notifier retry).
    pub resend: f64,
    /// Each Salesforce access token dies after this many API calls.
    pub session_max_calls: u64,
    /// Give up (and report) if the queue has not emptied by then.
    pub max_wall: Duration,
    /// Fill the organization mirror from Zendesk before events flow, as a first reconcile
    /// would. Without it the worker cannot find legacy orgs by domain until the backfill's
    /// listing has refreshed the mirror (docs/reliability.md, "Chaos").
    pub fill_mirror: bool,
    /// The local runner's function timeout: moto answers a few dozen requests a second, so a
    /// batch of ten under faults needs far more than a Lambda-like few seconds here.
    pub timeout_ms: u64,
}

impl Chaos {
    /// Issue 10's rates.
    pub fn issue_10(label: &'static str, accounts: usize, events: usize, speedup: f64) -> Chaos {
        Chaos {
            label,
            accounts,
            events,
            seed: 10,
            workers: 4,
            speedup,
            events_per_request: 10,
            max_backlog: 200,
            rate_limit_429: 0.10,
            omit_retry_after: 0.5,
            error_5xx: 0.05,
            drop: 0.02,
            crash: 0.01,
            duplicate: 0.20,
            resend: 0.05,
            session_max_calls: 300,
            max_wall: Duration::from_secs(3600),
            fill_mirror: true,
            timeout_ms: 20_000,
        }
    }

    fn scaled(&self, d: Duration) -> Duration {
        d.div_f64(self.speedup)
    }

    fn per_minute(&self, n: u32) -> u32 {
        (f64::from(n) * self.speedup).round() as u32
    }

    /// The worker's settings: the scaled budgets, and a failure streak that outlasts the outage
    /// before it may become a `sync_failing` exception.
    fn worker_settings(&self) -> WorkerSettings {
        let mut s = worker_support::fast_settings();
        s.zendesk_plan_per_minute = self.per_minute(ZENDESK_PLAN_PER_MINUTE);
        s.zendesk_share_percent = ZENDESK_SHARE_PERCENT;
        s.salesforce_per_minute = self.per_minute(SALESFORCE_PER_MINUTE);
        s.failing_after_secs = 60 + 2 * self.scaled(OUTAGE).as_secs();
        s
    }

    fn fault_plan(&self, seed: u64, outage: Option<Duration>) -> Value {
        json!({
            "seed": seed,
            "default": {
                "error_5xx": self.error_5xx,
                "rate_limit_429": self.rate_limit_429,
                "omit_retry_after": self.omit_retry_after,
                "drop": self.drop,
            },
            "outage_ms": outage.map_or(0, |d| d.as_millis() as u64),
        })
    }
}

/// A small deterministic generator (splitmix64): the run repeats for a seed.
struct Dice(Mutex<u64>);

impl Dice {
    fn new(seed: u64) -> Dice {
        Dice(Mutex::new(seed ^ 0x9e37_79b9_7f4a_7c15))
    }
    fn next(&self) -> u64 {
        let mut s = self.0.lock().expect("dice");
        *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn chance(&self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    fn below(&self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// An event: its account (lowercase 18 characters) and id.
type EventKey = (String, String);

fn key_of(request: &SyncRequest) -> EventKey {
    (
        request.account_id.as_str().to_ascii_lowercase(),
        request.event_id.clone(),
    )
}

/// The sync queue as the runner sees it, with at-least-once delivery made visible: a share of
/// deletes is "lost" (each message at most once), so SQS delivers the message again after its
/// visibility timeout. Also remembers which event each received message carries.
pub struct DuplicatingQueue {
    inner: Arc<SqsQueue>,
    dice: Dice,
    rate: f64,
    /// Receipt handle → message id, and message id → its event.
    receipts: Mutex<HashMap<String, String>>,
    events: Mutex<HashMap<String, EventKey>>,
    duplicated: Mutex<HashSet<String>>,
    /// Message id → how often the runner received it (crashed invocations included).
    received: Mutex<HashMap<String, u32>>,
}

impl DuplicatingQueue {
    fn new(inner: Arc<SqsQueue>, rate: f64, seed: u64) -> Self {
        DuplicatingQueue {
            inner,
            dice: Dice::new(seed),
            rate,
            receipts: Mutex::default(),
            events: Mutex::default(),
            duplicated: Mutex::default(),
            received: Mutex::default(),
        }
    }
    /// Whether this delete is "lost" (at most once per message).
    fn loses(&self, receipt_handle: &str) -> bool {
        let id = self
            .receipts
            .lock()
            .expect("receipts")
            .remove(receipt_handle);
        id.is_some_and(|id| {
            self.dice.chance(self.rate) && self.duplicated.lock().expect("duplicated").insert(id)
        })
    }
    fn lost_deletes(&self) -> u64 {
        self.duplicated.lock().expect("duplicated").len() as u64
    }
}

impl WorkQueue for DuplicatingQueue {
    async fn send(&self, message: &QueueMessage) -> Result<(), StoreError> {
        self.inner.send(message).await
    }
    async fn send_batch(&self, messages: &[QueueMessage]) -> Result<Vec<BatchFailure>, StoreError> {
        self.inner.send_batch(messages).await
    }
    async fn receive(
        &self,
        max: usize,
        visibility_secs: Option<u32>,
    ) -> Result<Vec<ReceivedMessage>, StoreError> {
        let got = self.inner.receive(max, visibility_secs).await?;
        let mut receipts = self.receipts.lock().expect("receipts");
        let mut events = self.events.lock().expect("events");
        let mut received = self.received.lock().expect("received");
        for m in &got {
            *received.entry(m.message_id.clone()).or_insert(0) += 1;
            receipts.insert(m.receipt_handle.clone(), m.message_id.clone());
            if let Ok(r) = SyncRequest::from_body(&m.body) {
                events.insert(m.message_id.clone(), key_of(&r));
            }
        }
        Ok(got)
    }
    async fn delete(&self, receipt_handle: &str) -> Result<(), StoreError> {
        if self.loses(receipt_handle) {
            return Ok(());
        }
        self.inner.delete(receipt_handle).await
    }
    async fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> Result<Vec<BatchFailure>, StoreError> {
        // The lost ones are left out; the indexes of failures refer to the caller's slice.
        let (kept, at): (Vec<String>, Vec<usize>) = receipt_handles
            .iter()
            .enumerate()
            .filter(|(_, r)| !self.loses(r))
            .map(|(i, r)| (r.clone(), i))
            .unzip();
        let mut failures = self.inner.delete_batch(&kept).await?;
        for f in &mut failures {
            f.index = at[f.index];
        }
        Ok(failures)
    }
    async fn change_visibility(
        &self,
        receipt_handle: &str,
        visibility_secs: u32,
    ) -> Result<(), StoreError> {
        self.inner
            .change_visibility(receipt_handle, visibility_secs)
            .await
    }
    async fn dead_letters(&self, max: usize) -> Result<Vec<ReceivedMessage>, StoreError> {
        self.inner.dead_letters(max).await
    }
    async fn redrive(&self, max: usize) -> Result<usize, StoreError> {
        self.inner.redrive(max).await
    }
}

/// What the run measured and what failed.
#[derive(Debug, Default)]
pub struct Report {
    pub options: String,
    /// Intake's answer per event, by outcome (`enqueued`, `ignored`, ...).
    pub intake: BTreeMap<String, u64>,
    pub notifier_requests: u64,
    pub notifier_resends: u64,
    /// Each event's final outcome at the worker, by outcome; `unaccounted` must be absent.
    pub events: BTreeMap<String, u64>,
    /// Every message fate the runner saw (duplicates included), by fate.
    pub deliveries: BTreeMap<String, u64>,
    /// Fates of the reconcile's repairs, worked off afterwards.
    pub repairs: BTreeMap<String, u64>,
    pub invocations: u64,
    pub crashed_invocations: u64,
    pub injected_crashes: u64,
    pub duplicate_deliveries: u64,
    pub zendesk_faults: BTreeMap<String, u64>,
    pub salesforce_faults: BTreeMap<String, u64>,
    pub session_expiries: u64,
    /// API calls as the simulators counted them, and as orglink's clients did.
    pub zendesk_requests: u64,
    pub salesforce_requests: u64,
    pub client_calls: BTreeMap<String, u64>,
    /// (peak in any 60 s, the budget's ceiling per 60 s).
    pub zendesk_peak_minute: (u64, u64),
    pub salesforce_peak_minute: (u64, u64),
    pub backfill: String,
    pub reconcile: String,
    pub open_exceptions: BTreeMap<String, u64>,
    pub dlq: u64,
    pub phases: Vec<(String, Duration)>,
    pub violations: Vec<String>,
}

impl Report {
    pub fn print(&self) {
        let line = |k: &str, v: String| println!("  {k:<28} {v}");
        println!("== chaos run: {}", self.options);
        println!("events");
        line(
            "notifier requests",
            format!(
                "{} ({} sent twice)",
                self.notifier_requests, self.notifier_resends
            ),
        );
        line("intake", format!("{:?}", self.intake));
        line("worker, per event", format!("{:?}", self.events));
        line("deliveries (all fates)", format!("{:?}", self.deliveries));
        line("reconcile repairs", format!("{:?}", self.repairs));
        line("dead-letter queue", self.dlq.to_string());
        line("open exceptions", format!("{:?}", self.open_exceptions));
        println!("faults injected");
        line("zendesk", format!("{:?}", self.zendesk_faults));
        line("salesforce", format!("{:?}", self.salesforce_faults));
        line(
            "salesforce sessions expired",
            self.session_expiries.to_string(),
        );
        line(
            "worker crashes",
            format!(
                "{} injected; {} invocations crashed or timed out of {}",
                self.injected_crashes, self.crashed_invocations, self.invocations
            ),
        );
        line(
            "duplicate deliveries",
            self.duplicate_deliveries.to_string(),
        );
        println!("API calls");
        line(
            "received by the simulators",
            format!(
                "zendesk {}, salesforce {}",
                self.zendesk_requests, self.salesforce_requests
            ),
        );
        line(
            "sent by orglink's clients",
            format!("{:?}", self.client_calls),
        );
        line(
            "zendesk busiest minute",
            format!(
                "{} (budget {})",
                self.zendesk_peak_minute.0, self.zendesk_peak_minute.1
            ),
        );
        line(
            "salesforce busiest minute",
            format!(
                "{} (budget {})",
                self.salesforce_peak_minute.0, self.salesforce_peak_minute.1
            ),
        );
        line("backfill", self.backfill.clone());
        line("reconcile", self.reconcile.clone());
        println!("wall time");
        for (phase, d) in &self.phases {
            line(phase, format!("{:.1} s", d.as_secs_f64()));
        }
        if self.violations.is_empty() {
            println!("== no violation");
        } else {
            println!("== {} VIOLATIONS:", self.violations.len());
            for v in self.violations.iter().take(50) {
                println!("  {v}");
            }
        }
    }
}

/// Both clients on the deployment's shared budget (the worker's configuration), for the
/// backfill, drawing through `PatientBudget` as the CLI's do.
async fn backfill_clients(
    w: &World,
    settings: &WorkerSettings,
    config: &Config,
    calls: &CallLog,
) -> (SalesforceClient, ZendeskClient) {
    let names = w.stack.names().expect("names");
    let db = aws_sdk_dynamodb::Client::new(w.aws.sdk_config());
    // As `orglink backfill` draws: short waits the shared budget names are waited out.
    let budget = Arc::new(orglink_shared::backfill::PatientBudget::new(
        Arc::new(SharedRateBudget::new(
            Arc::new(DynamoBudget::new(db, &names.rate_budget_table)),
            settings.salesforce_budget(),
            settings.zendesk_budget(),
        )),
        orglink_shared::backfill::DEFAULT_MAX_BUDGET_WAIT,
    ));
    let sf = SalesforceClient::connect(
        settings.salesforce.clone(),
        SalesforceCredentials {
            my_domain_url: w.sandbox.salesforce.clone(),
            client_id: "orglink-sandbox-consumer-key".into(),
            flow: SalesforceFlow::ClientCredentials {
                client_secret: Secret::new(SF_CLIENT_SECRET),
            },
        },
        config.binding(),
        budget.clone(),
        calls.clone(),
    )
    .await
    .expect("Salesforce connects");
    let mut zendesk = settings.zendesk.clone();
    zendesk.job_poll_ms = 100;
    let zd = ZendeskClient::connect(
        zendesk,
        ZendeskCredentials::ApiToken {
            email: "admin@example.com".into(),
            api_token: Secret::new(ZD_TOKEN),
        },
        config.binding(),
        budget,
        calls.clone(),
    )
    .await
    .expect("Zendesk connects");
    (sf, zd)
}

/// Intake built by its production wiring on the same stack, its signing secret set.
async fn intake(w: &World) -> (orglink_intake::aws::AwsIntake, String) {
    let secret_id = w
        .stack
        .outputs
        .get("IntakeSecretArn")
        .cloned()
        .expect("the template's IntakeSecretArn output");
    let signing = format!("sf-signing-{}-chaos", w.stack.parameters["Prefix"]);
    w.aws
        .secrets()
        .put_secret_value()
        .secret_id(&secret_id)
        .secret_string(
            json!({"salesforce": {"current": signing}, "zendesk_webhook": {"current": "unused-webhook-secret"}})
                .to_string(),
        )
        .send()
        .await
        .expect("put the intake secret");
    let env = orglink_e2e::function_env(
        &w.stack.names().expect("names"),
        [(orglink_intake::settings::INTAKE_SECRET_ENV, secret_id)],
    );
    let env = orglink_intake::Environment::from_lookup(|k| env.get(k).cloned())
        .expect("intake's environment");
    let intake = orglink_intake::aws::from_aws(w.aws.sdk_config(), &env)
        .await
        .expect("intake starts");
    (intake, signing)
}

/// The function URL request Lambda delivers for a notifier POST.
fn notifier_request(secret: &str, body: &str) -> Value {
    use base64::Engine;
    let t = OffsetDateTime::now_utc().unix_timestamp();
    let header = sign(&Secret::new(secret), t, body.as_bytes());
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "",
        "headers": {SIGNATURE_HEADER.to_ascii_lowercase(): header, "content-type": "application/json"},
        "requestContext": {
            "accountId": "anonymous", "apiId": "chaos", "domainName": "chaos.lambda-url.us-east-1.on.aws",
            "domainPrefix": "chaos", "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "SFDC-Callout/62.0"}, "requestId": "chaos",
            "routeKey": "$default", "stage": "$default", "time": "24/Nov/2026:07:00:00 +0000",
            "timeEpoch": t * 1000
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

fn count(map: &mut BTreeMap<String, u64>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

fn fate_name(f: &MessageFate) -> (&str, &'static str) {
    match f {
        MessageFate::Done {
            message_id,
            outcome,
            ..
        } => (message_id, outcome),
        MessageFate::RetryLater { message_id } => (message_id, "retry_later"),
        MessageFate::Requeued { message_id } => (message_id, "requeued"),
        MessageFate::Poison { message_id } => (message_id, "poison"),
    }
}

async fn fault_report(w: &World, salesforce: bool) -> FaultReport {
    let v = if salesforce {
        w.admin.sf_get("faults/report").await
    } else {
        w.admin.zd_get("faults/report").await
    };
    serde_json::from_value(v).expect("a fault report")
}

/// Runs the whole chaos run and reports; never panics on a violation (the caller decides).
pub async fn run(c: &Chaos) -> Report {
    let started = Instant::now();
    let mut phase = Instant::now();
    let mut report = Report {
        options: format!(
            "{} accounts, {} events, {} workers, time x{} (search lag {:.1?}, outage {:.1?}), seed {}",
            c.accounts,
            c.events,
            c.workers,
            c.speedup,
            c.scaled(SEARCH_LAG),
            c.scaled(OUTAGE),
            c.seed
        ),
        ..Report::default()
    };
    let generated = generate(&Options {
        accounts: c.accounts,
        seed: c.seed,
    });
    let truth = generated.truth().clone();
    let scenario: Value = serde_json::from_slice(&generated.scenario_bytes()).expect("scenario");
    let mut settings = c.worker_settings();
    let mut w = World::start_with(c.label, scenario, settings.clone()).await;
    settings.zendesk.base_url = Some(w.sandbox.zendesk.clone());
    let crashes = Arc::new(AtomicU64::new(0));
    {
        let dice = Arc::new(Dice::new(c.seed + 1));
        let (rate, crashes) = (c.crash, crashes.clone());
        let hook: CrashHook = Arc::new(move |point: CrashPoint, _: &AccountId| {
            let crash = point == CrashPoint::AfterZendeskWrite && dice.chance(rate);
            if crash {
                crashes.fetch_add(1, Ordering::SeqCst);
            }
            crash
        });
        Arc::get_mut(&mut w.worker)
            .expect("the worker is not shared yet")
            .crash_hook = Some(hook);
    }
    let zd_scale = json!({
        "search_lag_ms": c.scaled(SEARCH_LAG).as_millis() as u64,
        "rate_limit_per_minute": c.per_minute(ZENDESK_PLAN_PER_MINUTE),
        "job_delay_ms": (c.scaled(Duration::from_millis(500)).as_millis() as u64).max(20),
    });
    w.admin.zd_post("switches", zd_scale).await;
    w.admin
        .sf_post(
            "switches",
            json!({"session_max_calls": c.session_max_calls}),
        )
        .await;
    let (intake, signing) = intake(&w).await;
    let config = Config::embedded_default();
    let calls = w.calls.clone();
    let (sf, zd) = backfill_clients(&w, &settings, &config, &calls).await;
    let progress = Progress::hidden();
    let before = snapshot::read(&sf, &zd, config.write_back().fields(), &progress, |_| {})
        .await
        .expect("read both systems before");
    // Each live account's modstamp as the notifier sends it (RFC 3339; Salesforce's JSON
    // writes `+0000`).
    let modstamps: BTreeMap<String, String> = w
        .accounts()
        .await
        .iter()
        .filter(|a| a["IsDeleted"] != true)
        .filter_map(|a| {
            let stamp = a["SystemModstamp"].as_str()?;
            Some((
                a["Id"].as_str()?.to_string(),
                stamp
                    .strip_suffix("+0000")
                    .map_or(stamp.to_string(), |s| format!("{s}Z")),
            ))
        })
        .collect();
    let stores = backfill_support::stores(
        &aws_sdk_dynamodb::Client::new(w.aws.sdk_config()),
        &w.stack.names().unwrap(),
    );
    if c.fill_mirror {
        for org in &before.orgs {
            stores
                .mirror
                .upsert(&MirroredOrg::from(org))
                .await
                .expect("fill the organization mirror");
        }
        // A full listing was read in: the worker may rely on the mirror's silence.
        let now_ms = (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        stores
            .mirror
            .mark_filled("chaos setup (full listing)", now_ms)
            .await
            .expect("mark the organization mirror filled");
    }
    report.phases.push(("setup".into(), phase.elapsed()));
    phase = Instant::now();

    // The storm.
    w.admin.zd_post("faults", c.fault_plan(c.seed, None)).await;
    w.admin
        .sf_post("faults", c.fault_plan(c.seed + 2, None))
        .await;
    let policy = DomainPolicy::default();
    let bf = backfill_support::backfill(
        &config,
        &sf,
        &zd,
        &stores,
        &policy,
        &progress,
        Settings::default(),
    );
    let journal =
        std::env::temp_dir().join(format!("{}-chaos.journal", w.stack.parameters["Prefix"]));
    let fed = AtomicBool::new(false);
    let backfilled = AtomicBool::new(false);
    let dice = Dice::new(c.seed + 3);
    let accounts: Vec<&String> = modstamps.keys().collect();
    let intake_outcomes = Mutex::new(BTreeMap::<String, u64>::new());
    let mut enqueued: HashSet<EventKey> = HashSet::new();
    let feed = async {
        let mut requests = 0;
        let mut resends = 0;
        let mut n = 0;
        let mut keys = Vec::new();
        let mut refused = Vec::new();
        while n < c.events {
            loop {
                let (visible, in_flight) = w.queue_depth().await;
                if visible + in_flight <= c.max_backlog {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let mut events = Vec::new();
            for _ in 0..c.events_per_request.min(c.events - n) {
                let account = accounts[dice.below(accounts.len())];
                let modstamp = &modstamps[account];
                let now = OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
                events.push(json!({
                    "account_id": account, "kind": KINDS[dice.below(KINDS.len())],
                    "event_id": format!("chaos-{n}"), "occurred_at": now, "account_modstamp": modstamp,
                }));
                n += 1;
            }
            let body = json!({"org_id": worker_support::BOUND_ORG, "events": events}).to_string();
            let times = if dice.chance(c.resend) { 2 } else { 1 };
            for time in 0..times {
                // A notifier retries a request that failed (5xx), whole; a refusal is final.
                let answer = loop {
                    match intake
                        .handle_invocation(notifier_request(&signing, &body))
                        .await
                    {
                        Ok(a) if a["statusCode"].as_u64().is_some_and(|s| s < 500) => break a,
                        Ok(a) => tracing::warn!(answer = %a, "intake failed; the notifier retries"),
                        Err(e) => tracing::warn!(error = %e, "intake failed; the notifier retries"),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                };
                if answer["statusCode"] != 202 {
                    refused.push(format!("intake refused a notifier request: {answer}"));
                    continue;
                }
                requests += 1;
                resends += time;
                let answer: Value =
                    serde_json::from_str(answer["body"].as_str().unwrap_or("{}")).unwrap();
                for r in answer["results"].as_array().cloned().unwrap_or_default() {
                    let outcome = r["outcome"].as_str().unwrap_or("?").to_string();
                    if time == 0 {
                        count(&mut intake_outcomes.lock().unwrap(), &outcome);
                    }
                    if outcome == "enqueued" {
                        keys.push((
                            r["account_id"]
                                .as_str()
                                .unwrap_or_default()
                                .to_ascii_lowercase(),
                            r["event_id"].as_str().unwrap_or_default().to_string(),
                        ));
                    }
                }
            }
        }
        fed.store(true, Ordering::SeqCst);
        (requests, resends, keys, refused, Instant::now())
    };
    // When the Zendesk outage (below) is over: an apply it stops is rerun without counting
    // against the operator's patience.
    let outage_over = Instant::now() + c.scaled(Duration::from_secs(120)) + c.scaled(OUTAGE);
    let backfill = async {
        let plan = bf.plan().await;
        let out = match plan {
            Ok(plan) => {
                let plan = plan.into_file();
                // An operator reruns an apply that stopped (the journal resumes it): through
                // the outage, and then up to five times more.
                let mut stops = Vec::new();
                let mut after_outage = 0;
                let applied = loop {
                    match bf.apply(&plan, &plan.hash, &journal).await {
                        Err(e) if after_outage < 5 => {
                            if Instant::now() >= outage_over {
                                after_outage += 1;
                            }
                            stops.push(e.to_string());
                            // The operator looks, waits a (scaled) minute, and reruns.
                            tokio::time::sleep(c.scaled(Duration::from_secs(60))).await;
                        }
                        other => break other,
                    }
                };
                applied
                    .map(|r| {
                        format!(
                            "created {}, linked {}, updated {}, exceptions {}, write-backs {}, skipped {}, failed {}",
                            r.created,
                            r.linked,
                            r.updated,
                            r.exceptions,
                            r.write_backs,
                            r.skipped.len(),
                            r.failed.len()
                        ) + &format!("; stopped and rerun {} times {stops:?}", stops.len())
                    })
                    .map_err(|e| format!("apply: {e} (after {} reruns: {stops:?})", stops.len()))
            }
            Err(e) => Err(format!("plan: {e}")),
        };
        backfilled.store(true, Ordering::SeqCst);
        (out, Instant::now())
    };
    // The Zendesk outage starts a few scaled minutes in, while events and the backfill run.
    let outage = async {
        tokio::time::sleep(c.scaled(Duration::from_secs(120))).await;
        w.admin
            .zd_post("faults", c.fault_plan(c.seed + 4, Some(c.scaled(OUTAGE))))
            .await;
    };
    let queue = Arc::new(DuplicatingQueue::new(
        w.queue.clone(),
        c.duplicate,
        c.seed + 5,
    ));
    let config_runner = RunnerConfig {
        workers: c.workers,
        batch_size: 10,
        visibility_secs: (c.timeout_ms / 1000 + 10) as u32,
        timeout_ms: c.timeout_ms,
        idle_poll_ms: 100,
    };
    let workers = || vec![w.worker.clone(); c.workers];
    let (fed_ref, backfilled_ref, w_ref) = (&fed, &backfilled, &w);
    let drained = move || async move {
        fed_ref.load(Ordering::SeqCst)
            && backfilled_ref.load(Ordering::SeqCst)
            && w_ref.queue_depth().await == (0, 0)
    };
    let live = runner::run(
        workers(),
        queue.clone(),
        config_runner.clone(),
        drained,
        c.max_wall,
    );
    let ((requests, resends, keys, refused, fed_at), (backfill_out, backfilled_at), (), live) =
        tokio::join!(feed, backfill, outage, live);
    report.violations.extend(refused);
    report.notifier_requests = requests;
    report.notifier_resends = resends;
    report.intake = intake_outcomes.into_inner().unwrap();
    enqueued.extend(keys);
    report.backfill = match &backfill_out {
        Ok(s) => format!(
            "{s}; finished {:.1} s into the storm",
            (backfilled_at - phase).as_secs_f64()
        ),
        Err(e) => {
            report.violations.push(format!("backfill failed: {e}"));
            e.clone()
        }
    };
    report
        .phases
        .push(("events fed (intake)".into(), fed_at - phase));
    report
        .phases
        .push(("storm (events, backfill, workers)".into(), phase.elapsed()));
    if !live.finished {
        report.violations.push(format!(
            "the queue did not empty within {:?}: {:?} left",
            c.max_wall,
            w.queue_depth().await
        ));
    }
    phase = Instant::now();

    // The reconcile, faults still on (not the outage), then its repairs worked off.
    let reconcile = reconcile(&w, &settings, &calls).await;
    report.reconcile = match reconcile {
        Ok(s) => s,
        Err(e) => {
            report.violations.push(format!("reconcile failed: {e}"));
            e
        }
    };
    report.phases.push(("reconcile".into(), phase.elapsed()));
    phase = Instant::now();
    let repairs = runner::run(
        workers(),
        queue.clone(),
        config_runner,
        move || async move { w_ref.queue_depth().await == (0, 0) },
        c.max_wall,
    )
    .await;
    report.phases.push(("repairs".into(), phase.elapsed()));
    w.admin.zd_post("faults", json!({})).await;
    w.admin.sf_post("faults", json!({})).await;

    // Accounting: every enqueued event's final outcome.
    account_events(&mut report, &queue, &live, &repairs, &enqueued);
    report.injected_crashes = crashes.load(Ordering::SeqCst);
    report.duplicate_deliveries = queue.lost_deletes();
    report.dlq = w.dlq_depth().await;
    if report.dlq > 0 {
        report
            .violations
            .push(format!("{} messages in the dead-letter queue", report.dlq));
        // What each dead letter went through, to find why it was not acknowledged.
        for m in w.dead_letters().await {
            report
                .violations
                .push(dead_letter_history(&m, &queue, &live, &repairs));
        }
    }

    // The end state against the truth.
    let after = snapshot::read(&sf, &zd, config.write_back().fields(), &progress, |_| {})
        .await
        .expect("read both systems after");
    let rows = stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .expect("open exceptions");
    for r in &rows {
        count(&mut report.open_exceptions, r.kind().as_str());
    }
    // A churned account orglink had linked keeps its org and reads "Not Eligible" (written
    // only where orglink wrote a status before): by design, not a write to an ineligible one.
    let status_only = |id: &str| {
        let find = |s: &snapshot::Snapshot| {
            s.accounts
                .iter()
                .find(|a| a.id.as_str() == id)
                .map(|a| (a.stored_org_id.clone(), a.sync_status.clone()))
        };
        match (find(&before), find(&after)) {
            (Some((org_before, Some(_))), Some((org_after, Some(status)))) => {
                org_before == org_after && status == SyncStatus::NotEligible.api_value()
            }
            _ => false,
        }
    };
    report.violations.extend(
        backfill_support::violations(&truth, &before, &after, &rows)
            .into_iter()
            .filter(|v| {
                !(v.ends_with("not eligible, but its link fields were written")
                    && v.split(' ').next().is_some_and(status_only))
            }),
    );
    let eligible_unlinked = truth
        .accounts
        .iter()
        .filter(|t| t.eligible && matches!(t.expected, Expected::Link(_) | Expected::LinkNew))
        .count();
    report.options += &format!(
        "; truth: {eligible_unlinked} eligible unambiguous accounts to link, {} switch-dependent",
        truth.switch_dependent.len()
    );
    for (id, fields) in w.salesforce_writes().await {
        for f in fields {
            let bookkeeping =
                ["LastModifiedDate", "SystemModstamp", "LastModifiedById"].contains(&f.as_str());
            if !LINK_FIELDS.contains(&f.as_str()) && !bookkeeping {
                report.violations.push(format!(
                    "Salesforce write outside the link fields: {f} on {id}"
                ));
            }
        }
    }

    // API calls and the rate budget, as the simulators counted them.
    let zd_faults = fault_report(&w, false).await;
    let sf_faults = fault_report(&w, true).await;
    report.zendesk_faults = zd_faults.injected.clone();
    report.salesforce_faults = sf_faults.injected.clone();
    report.zendesk_requests = zd_faults
        .requests_per_second
        .iter()
        .map(|n| u64::from(*n))
        .sum();
    report.salesforce_requests = sf_faults
        .requests_per_second
        .iter()
        .map(|n| u64::from(*n))
        .sum();
    let ceiling = |b: orglink_shared::http::BudgetConfig| u64::from(b.per_minute + b.burst);
    report.zendesk_peak_minute = (zd_faults.peak(60), ceiling(settings.zendesk_budget()));
    report.salesforce_peak_minute = (sf_faults.peak(60), ceiling(settings.salesforce_budget()));
    for (system, (peak, budget)) in [
        ("Zendesk", report.zendesk_peak_minute),
        ("Salesforce", report.salesforce_peak_minute),
    ] {
        if peak > budget {
            report.violations.push(format!(
                "{system}: {peak} requests in one minute, over the budget's {budget}"
            ));
        }
    }
    let sf_calls = w.admin.sf_get("calls").await;
    report.session_expiries = sf_calls
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|by_status| by_status.get("401").and_then(Value::as_u64))
                .sum()
        })
        .unwrap_or(0);
    for (system, name) in [
        (System::Zendesk, "zendesk"),
        (System::Salesforce, "salesforce"),
    ] {
        report
            .client_calls
            .insert(name.to_string(), calls.sent(system));
    }
    report.phases.push(("checks".into(), phase.elapsed()));
    report.phases.push(("total".into(), started.elapsed()));
    report
}

/// Each enqueued event's final outcome: the first one a worker reached other than
/// One dead letter: its event, how often the runner received it, and every fate a worker
/// reported for it (a receive without a fate was in an invocation that crashed).
fn dead_letter_history(
    m: &ReceivedMessage,
    queue: &DuplicatingQueue,
    live: &RunReport,
    repairs: &RunReport,
) -> String {
    let received = queue
        .received
        .lock()
        .expect("received")
        .get(&m.message_id)
        .copied()
        .unwrap_or(0);
    let fates: Vec<String> = live
        .fates
        .iter()
        .chain(&repairs.fates)
        .filter(|f| fate_name(f).0 == m.message_id)
        .map(|f| match f {
            MessageFate::Done { detail, .. } => format!("done {detail:?}"),
            other => fate_name(other).1.to_string(),
        })
        .collect();
    let event = SyncRequest::from_body(&m.body)
        .map(|r| format!("{} {} {}", r.account_id, r.kind, r.event_id))
        .unwrap_or_else(|_| "not a sync request".into());
    format!(
        "dead letter {} ({event}; dedup id {:?}): received {received} times by the runner, {} in the DLQ; fates {fates:?}",
        m.message_id, m.dedup_id, m.receive_count
    )
}

/// `deduplicated` (a redelivery), else `deduplicated` (handled in an invocation that crashed
/// afterwards, and found complete on redelivery); `unaccounted` when no worker finished it.
fn account_events(
    report: &mut Report,
    queue: &DuplicatingQueue,
    live: &RunReport,
    repairs: &RunReport,
    enqueued: &HashSet<EventKey>,
) {
    let events = queue.events.lock().expect("events");
    let mut finals: HashMap<&EventKey, &'static str> = HashMap::new();
    for (fates, into) in [
        (&live.fates, &mut report.deliveries),
        (&repairs.fates, &mut report.repairs),
    ] {
        for f in fates {
            let (id, name) = fate_name(f);
            count(into, name);
            if !matches!(f, MessageFate::Done { .. }) {
                continue;
            }
            if let Some(key) = events.get(id) {
                let slot = finals.entry(key).or_insert(name);
                if *slot == "deduplicated" {
                    *slot = name;
                }
            }
        }
    }
    report.invocations = live.invocations + repairs.invocations;
    report.crashed_invocations = live.crashes + repairs.crashes;
    let mut unaccounted = Vec::new();
    for key in enqueued {
        match finals.get(key) {
            Some(outcome) => count(&mut report.events, outcome),
            None => {
                count(&mut report.events, "unaccounted");
                unaccounted.push(format!("{} {}", key.0, key.1));
            }
        }
    }
    if !unaccounted.is_empty() {
        unaccounted.sort();
        report.violations.push(format!(
            "{} enqueued events never finished by a worker, e.g. {:?}",
            unaccounted.len(),
            &unaccounted[..unaccounted.len().min(5)]
        ));
    }
}

/// One full run of the reconcile function (production wiring), on the scaled budgets.
async fn reconcile(w: &World, s: &WorkerSettings, calls: &CallLog) -> Result<String, String> {
    let names = w.stack.names().unwrap();
    let env = orglink_e2e::function_env(
        &names,
        [
            (
                orglink_reconcile::settings::SETTINGS_ENV,
                json!({
                    "zendesk": s.zendesk, "salesforce": s.salesforce,
                    "zendesk_plan_per_minute": s.zendesk_plan_per_minute,
                    "zendesk_share_percent": s.zendesk_share_percent,
                    "salesforce_per_minute": s.salesforce_per_minute,
                })
                .to_string(),
            ),
            ("ORGLINK_DEPLOYMENT", "chaos".into()),
        ],
    );
    let env = ReconcileEnv::from_lookup(|k| env.get(k).cloned()).map_err(|e| e.to_string())?;
    let reconciler = orglink_reconcile::aws::from_aws(w.aws.sdk_config(), &env, calls.clone())
        .await
        .map_err(|e| e.to_string())?;
    let outcome = reconciler
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .map_err(|e| e.to_string())?;
    let s = &outcome.summary;
    let text = format!(
        "{:?} in {} invocations; findings {:?}; repairs {:?}; API calls {:?}",
        s.state, s.invocations, s.findings_by_kind, s.repairs, s.api_calls
    );
    match &s.stop {
        None => Ok(text),
        Some(stop) => Err(format!("stopped early ({stop:?}): {text}")),
    }
}
