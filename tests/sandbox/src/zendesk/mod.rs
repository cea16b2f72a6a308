//! Zendesk Support API simulator: organizations (with a lagging search index, cursor and offset
//! listing, the incremental export, bulk jobs), organization fields, webhooks that sign their
//! deliveries as Zendesk does, users, memberships and tickets for the attribution audit, API-token
//! and OAuth authentication, the account rate limit and the per-endpoint limits, fault injection,
//! and the `/_sandbox/` admin API. Behaviour the reference marks UNVERIFIED is a switch
//! (`docs/assumptions.md`).

mod account;
mod admin;
mod api;
mod gate;
mod me;
pub mod store;
mod webhooks;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::faults::{FaultPlan, Faults};
use crate::scenario::ZendeskSeed;
use store::{Directory, Org, SearchIndex};

pub use webhooks::{sign as sign_webhook, verify as verify_webhook};

/// The Zendesk simulator's flags.
#[derive(clap::Args, Clone, Debug)]
pub struct ZendeskOptions {
    /// E-mail accepted with the API token (`{email}/token:{token}` basic auth). Any seeded
    /// user's e-mail is accepted too: Zendesk API tokens are account-wide.
    #[arg(long = "zendesk-email", default_value = "admin@example.com")]
    pub email: String,
    /// The API token accepted.
    #[arg(long = "zendesk-token", default_value = "sandbox-zendesk-token")]
    pub token: String,
    /// The OAuth access token accepted as `Authorization: Bearer ...`.
    #[arg(
        long = "zendesk-oauth-token",
        default_value = "sandbox-zendesk-oauth-token"
    )]
    pub oauth_token: String,
    /// The account's subdomain (reported by `/_sandbox/state` and `/api/v2/account`).
    #[arg(long = "zendesk-subdomain", default_value = "orglink-sandbox")]
    pub subdomain: String,
    /// The numeric account id sent in webhook deliveries.
    #[arg(long = "zendesk-account-id", default_value_t = 10_973_248)]
    pub account_id: u64,
    /// The plan's requests-per-minute limit (Suite Enterprise: 700).
    #[arg(long = "zendesk-rate-limit", default_value_t = 700)]
    pub rate_limit_per_minute: u32,
    /// How long a write takes to reach the organization search index, in milliseconds.
    #[arg(long = "zendesk-search-lag-ms", default_value_t = 2_000)]
    pub search_lag_ms: u64,
    /// How long a bulk job stays queued before it runs, in milliseconds.
    #[arg(long = "zendesk-job-delay-ms", default_value_t = 500)]
    pub job_delay_ms: u64,
    /// Also deliver every organization event to this URL (besides registered webhooks).
    #[arg(long = "zendesk-webhook-url")]
    pub webhook_url: Option<String>,
    /// Signing secret for deliveries to `--zendesk-webhook-url`.
    #[arg(
        long = "zendesk-webhook-secret",
        default_value = "sandbox-webhook-secret"
    )]
    pub webhook_secret: String,
    /// Set by the binary from `--seed`; not a flag of its own.
    #[arg(skip)]
    pub fault_seed: u64,
}

impl Default for ZendeskOptions {
    fn default() -> Self {
        Self {
            email: "admin@example.com".into(),
            token: "sandbox-zendesk-token".into(),
            oauth_token: "sandbox-zendesk-oauth-token".into(),
            subdomain: "orglink-sandbox".into(),
            account_id: 10_973_248,
            rate_limit_per_minute: 700,
            search_lag_ms: 2_000,
            job_delay_ms: 500,
            webhook_url: None,
            webhook_secret: "sandbox-webhook-secret".into(),
            fault_seed: 0,
        }
    }
}

/// `create_or_update`'s status codes: the reference documents 200 and 201 without saying which
/// means what (UNVERIFIED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpsertStatus {
    /// 201 when it created, 200 when it updated (the conventional reading).
    #[serde(rename = "created_201_updated_200")]
    Created201Updated200,
    #[serde(rename = "always_200")]
    Always200,
    #[serde(rename = "always_201")]
    Always201,
}

/// Whether the 5-per-minute Update Organization limit counts per organization or per account
/// (UNVERIFIED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateLimitScope {
    PerOrganization,
    Account,
}

/// The shape of a failed item in a bulk job's results (UNVERIFIED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobFailureShape {
    /// `{"index":n,"id":..,"error":"...","details":"..."}`
    ErrorDetails,
    /// `{"index":n,"id":..,"action":"update","success":false,"status":"Failed","error":"..."}`
    SuccessFalse,
}

/// What the time-based organization export does with a full page whose records all changed in
/// `start_time`'s second (undocumented: UNVERIFIED). Otherwise a page ends at its last record's
/// second and the next page starts there, repeating that second's records (documented
/// duplicates).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncrementalFullSecond {
    /// The page holds every record of that second, past the page size, and `end_time` is the
    /// next second: nothing is lost and nothing repeats forever.
    ExtendPage,
    /// `end_time` is `start_time` again (reported for the older ticket export,
    /// zendesk_api_client_rb #168): a client that follows it never gets past that second.
    RepeatStart,
}

/// UNVERIFIED behaviours and tunables, read and set at `/_sandbox/switches`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    pub search_lag_ms: u64,
    /// `show_many?external_ids=` reads the lagging search index instead of the database.
    pub show_many_uses_search_index: bool,
    pub job_delay_ms: u64,
    pub create_or_update_status: UpsertStatus,
    /// Send 429s without `Retry-After` (seen on some per-user limits).
    pub omit_retry_after: bool,
    pub rate_limit_per_minute: u32,
    /// Length of a rate-limit window (60,000 in production; shorter in tests).
    pub rate_window_ms: u64,
    pub update_org_limit_per_minute: u32,
    pub update_org_limit_scope: UpdateLimitScope,
    pub incremental_limit_per_minute: u32,
    pub incremental_page_size: usize,
    /// `start_time` must be at least this old, and the newest seconds are held back.
    pub incremental_min_age_secs: i64,
    /// Deleted organizations appear in the incremental export, with `deleted_at` (UNVERIFIED).
    pub incremental_includes_deleted: bool,
    /// A full export page of one second (UNVERIFIED): see [`IncrementalFullSecond`].
    pub incremental_full_second: IncrementalFullSecond,
    /// Organization names are unique ignoring case (UNVERIFIED).
    pub name_unique_case_insensitive: bool,
    pub job_failure_shape: JobFailureShape,
    /// `GET /api/v2/account` answers with the account's subdomain (undocumented: UNVERIFIED);
    /// off, it is the 404 of an unknown endpoint.
    pub account_endpoint: bool,
    pub webhook_url: Option<String>,
    pub webhook_secret: String,
    /// Failed webhook deliveries (5xx, 429, timeout, no connection) are retried, once after
    /// each of `webhook_retry_delays_ms` (Zendesk's retry codes and counts: UNVERIFIED); off,
    /// every delivery is one attempt.
    pub webhook_retries: bool,
    pub webhook_retry_delays_ms: Vec<u64>,
    /// How long a delivery waits for the answer (Zendesk: 10 s).
    pub webhook_timeout_ms: u64,
}

impl Default for Switches {
    fn default() -> Self {
        Self::from_options(&ZendeskOptions::default())
    }
}

impl Switches {
    pub fn from_options(o: &ZendeskOptions) -> Self {
        Self {
            search_lag_ms: o.search_lag_ms,
            show_many_uses_search_index: false,
            job_delay_ms: o.job_delay_ms,
            create_or_update_status: UpsertStatus::Created201Updated200,
            omit_retry_after: false,
            rate_limit_per_minute: o.rate_limit_per_minute,
            rate_window_ms: 60_000,
            update_org_limit_per_minute: 5,
            update_org_limit_scope: UpdateLimitScope::PerOrganization,
            incremental_limit_per_minute: 10,
            incremental_page_size: 1000,
            incremental_min_age_secs: 60,
            incremental_includes_deleted: false,
            incremental_full_second: IncrementalFullSecond::ExtendPage,
            name_unique_case_insensitive: true,
            job_failure_shape: JobFailureShape::ErrorDetails,
            account_endpoint: false,
            webhook_url: o.webhook_url.clone(),
            webhook_secret: o.webhook_secret.clone(),
            webhook_retries: false,
            webhook_retry_delays_ms: vec![10_000, 60_000, 300_000],
            webhook_timeout_ms: 10_000,
        }
    }

    fn rules(&self) -> store::Rules {
        store::Rules {
            name_unique_case_insensitive: self.name_unique_case_insensitive,
        }
    }
}

/// Everything but the organizations' search index (which has its own lock so a search can
/// catch it up under a read lock of the rest).
#[derive(Default)]
pub(crate) struct World {
    pub orgs: Directory,
    pub users: BTreeMap<u64, Value>,
    pub tickets: BTreeMap<u64, Value>,
    pub memberships: BTreeMap<u64, Value>,
    pub org_fields: BTreeMap<u64, Value>,
    pub webhooks: BTreeMap<String, webhooks::Webhook>,
    /// Ids for records other than organizations.
    pub next_id: u64,
}

/// One write, for `/_sandbox/writes`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WriteEntry {
    pub time: String,
    pub record: String,
    pub action: &'static str,
    pub fields: Vec<Value>,
}

/// A bulk job (`/api/v2/job_statuses/{id}`).
#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub id: String,
    pub job_type: &'static str,
    pub status: &'static str,
    pub total: usize,
    pub progress: usize,
    pub message: Option<String>,
    pub results: Value,
    pub url: String,
    pub created: Instant,
}

/// Oldest jobs beyond this are forgotten ("Zendesk only logs the last 100 jobs").
const JOBS_KEPT: usize = 100;
/// The write log keeps this many recent entries.
const WRITES_KEPT: usize = 200_000;

pub(crate) struct Zd {
    pub opts: ZendeskOptions,
    pub seed: ZendeskSeed,
    pub world: RwLock<World>,
    pub search: Mutex<SearchIndex>,
    pub switches: RwLock<Switches>,
    pub faults: Faults,
    pub limits: Mutex<gate::RateLimiter>,
    pub calls: Mutex<HashMap<(String, u16), u64>>,
    pub writes: Mutex<VecDeque<WriteEntry>>,
    pub jobs: Mutex<VecDeque<Job>>,
    pub deliveries: Mutex<Vec<Value>>,
    pub http: reqwest::Client,
    pub job_counter: Mutex<u64>,
}

impl Zd {
    fn new(opts: ZendeskOptions, seed: ZendeskSeed) -> Result<Self, String> {
        let world = build_world(&seed)?;
        let mut search = SearchIndex::default();
        for o in world.orgs.all() {
            search.put_now(o.id, Some(SearchIndex::doc(o)));
        }
        Ok(Self {
            switches: RwLock::new(Switches::from_options(&opts)),
            faults: Faults::new(FaultPlan {
                seed: opts.fault_seed,
                ..Default::default()
            }),
            opts,
            seed,
            world: RwLock::new(world),
            search: Mutex::new(search),
            limits: Mutex::new(gate::RateLimiter::default()),
            calls: Mutex::new(HashMap::new()),
            writes: Mutex::new(VecDeque::new()),
            jobs: Mutex::new(VecDeque::new()),
            deliveries: Mutex::new(Vec::new()),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
            job_counter: Mutex::new(0),
        })
    }

    pub fn switches(&self) -> Switches {
        self.switches.read().expect("switches lock").clone()
    }

    /// Replaces all organization-side state with `seed`'s.
    pub fn load(&self, seed: &ZendeskSeed) -> Result<(), String> {
        let world = build_world(seed)?;
        let mut search = SearchIndex::default();
        for o in world.orgs.all() {
            search.put_now(o.id, Some(SearchIndex::doc(o)));
        }
        let mut w = self.world.write().expect("world lock");
        *w = world;
        *self.search.lock().expect("search lock") = search;
        self.jobs.lock().expect("jobs lock").clear();
        Ok(())
    }

    pub fn log_write(&self, record: String, action: &'static str, fields: Vec<Value>) {
        let mut w = self.writes.lock().expect("writes lock");
        if w.len() >= WRITES_KEPT {
            w.pop_front();
        }
        w.push_back(WriteEntry {
            time: store::format_time(now_unix()),
            record,
            action,
            fields,
        });
    }

    /// Makes an organization's new look visible to search after the configured lag.
    pub fn reindex(&self, id: u64, org: Option<&Org>) {
        let lag = Duration::from_millis(self.switches().search_lag_ms);
        let mut s = self.search.lock().expect("search lock");
        let doc = org.map(SearchIndex::doc);
        if lag.is_zero() {
            s.put_now(id, doc);
        } else {
            s.record(Instant::now() + lag, id, doc);
        }
    }
}

pub(crate) fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn record_id(v: &Value) -> Option<u64> {
    match v.get("id")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn build_world(seed: &ZendeskSeed) -> Result<World, String> {
    let now = now_unix();
    let mut w = World {
        orgs: Directory::new(),
        next_id: 1_000_000_000,
        ..Default::default()
    };
    for v in &seed.organizations {
        w.orgs.seed(Org::from_seed(v, now)?);
    }
    let bump = |id: u64, next: &mut u64| *next = (*next).max(id + 1);
    for (kind, list, map) in [
        ("user", &seed.users, &mut w.users),
        ("ticket", &seed.tickets, &mut w.tickets),
        (
            "organization membership",
            &seed.organization_memberships,
            &mut w.memberships,
        ),
        (
            "organization field",
            &seed.organization_fields,
            &mut w.org_fields,
        ),
    ] {
        for v in list {
            let id = record_id(v).ok_or_else(|| format!("{kind} without a numeric id: {v}"))?;
            bump(id, &mut w.next_id);
            map.insert(id, v.clone());
        }
    }
    // A user's `organization_id` is a membership (its default) unless one is seeded already.
    let seeded: std::collections::HashSet<(u64, u64)> = w
        .memberships
        .values()
        .filter_map(|m| {
            Some((
                m.get("user_id")?.as_u64()?,
                m.get("organization_id")?.as_u64()?,
            ))
        })
        .collect();
    let derived: Vec<(u64, u64)> = w
        .users
        .iter()
        .filter_map(|(uid, u)| Some((*uid, u.get("organization_id")?.as_u64()?)))
        .filter(|pair| !seeded.contains(pair))
        .collect();
    let now_s = store::format_time(now);
    for (user_id, org_id) in derived {
        let id = w.next_id;
        w.next_id += 1;
        w.memberships.insert(
            id,
            serde_json::json!({
                "id": id, "user_id": user_id, "organization_id": org_id,
                "organization_name": w.orgs.get(org_id).map(|o| o.name.clone()),
                "default": true, "view_tickets": false,
                "created_at": now_s, "updated_at": now_s,
            }),
        );
    }
    Ok(w)
}

/// The Zendesk simulator's router (API and `/_sandbox/` admin API). Panics if `seed` holds a
/// record it cannot read (a bad scenario is a test-setup error).
pub fn app(opts: ZendeskOptions, seed: ZendeskSeed) -> axum::Router {
    let zd = Arc::new(Zd::new(opts, seed).unwrap_or_else(|e| panic!("zendesk scenario: {e}")));
    api::router(zd.clone())
        .route("/api/v2/users/me", axum::routing::get(me::show))
        .route("/api/v2/users/me.json", axum::routing::get(me::show))
        .route_layer(axum::middleware::from_fn_with_state(zd.clone(), gate::gate))
        .fallback(gate::unknown_endpoint)
        .merge(admin::router(zd.clone()))
        .with_state(zd)
}
