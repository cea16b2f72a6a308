//! Salesforce REST API simulator: what orglink uses, behaving as `reference/salesforce-api.md`
//! documents it, unpleasant parts included.
//!
//! API (`vXX.X` = v20.0 … v68.0):
//! - `POST /services/oauth2/token`: client credentials (form or HTTP Basic) and JWT bearer.
//! - `GET /services/data/vXX.X/query?q=`, `queryAll?q=`, and their `nextRecordsUrl` pages
//!   (`Sforce-Query-Options: batchSize=N`, 200–2000).
//! - `GET|PATCH /services/data/vXX.X/sobjects/{Account|Opportunity|User}/{id}`. A write of an
//!   opportunity's `StageName` sets `IsClosed`/`IsWon` from the `opportunity_stages` switch;
//!   writing those two answers `INVALID_FIELD_FOR_INSERT_UPDATE`. A write that changes the
//!   stage and leaves out `Probability` sets it to the stage's default probability
//!   (`opportunity_probability_follows_stage`).
//! - `PATCH /services/data/vXX.X/composite/sobjects` (sObject Collections update, ≤ 200).
//! - `GET /services/data/` (versions) and `GET /services/data/vXX.X/limits` (only with
//!   `integration_user_view_setup`: otherwise 403 `INSUFFICIENT_ACCESS`, as the resource needs
//!   View Setup and Configuration).
//! - `GET /services/data/vXX.X/sobjects/{Account|Opportunity|User}/describe`: the object's
//!   fields as the running user sees them (`updateable` from its field-level security).
//! - The setup objects an admin tool reads through `query`: `PermissionSet`,
//!   `PermissionSetAssignment`, `ObjectPermissions`, `FieldPermissions`, filled with the
//!   integration user's rights (the `integration_user_*` switches; by default what
//!   infra/salesforce's `Orglink_Integration` permission set grants). Readable only with
//!   `integration_user_view_setup` (off by default, as for a real integration user).
//!
//! Every `/services/data/vXX.X/` response carries `Sforce-Limit-Info: api-usage=N/M`.
//! Endpoint names (call counts, fault plans): `sf.token`, `sf.versions`, `sf.limits`,
//! `sf.query`, `sf.query_all`, `sf.query_more`, `sf.sobject_get`, `sf.sobject_patch`,
//! `sf.composite`, `sf.describe`.
//!
//! Admin API under `/_sandbox/`: `scenario`, `reset`, `state`, `calls`, `writes`, `faults`,
//! `faults/report`, `switches` (see [`Switches`]).
//!
//! Seeding (`salesforce.accounts|opportunities|users`, real API field names): 15-character ids
//! become 18; a record without `Id` gets `001SB…`/`006SB…`/`005SB…`; `attributes` and nested
//! relationship objects are dropped; `IsDeleted` defaults to false (true when `MasterRecordId`
//! is set), the three timestamps to load time. Any field a record holds is queryable.
//! Duplicate `Zendesk_Org_ID__c` values load (history holds them); only new writes are refused.
//! `salesforce.switches` sets the scenario's switches.

pub mod auth;
pub mod ids;
pub mod schema;
pub mod soql;
pub mod store;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::faults::{Fault, FaultPlan, Faults, dropped_connection};
use crate::scenario::{SalesforceSeed, Scenario};
use schema::Object;
pub use soql::{decode_like_pattern, decode_string_literal};
use store::{ApiError, QueryResult, World, WriteRules};

/// A credential given as a flag: usable, but never printed by `Debug`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

/// The Salesforce simulator's flags.
#[derive(clap::Args, Clone, Debug)]
pub struct SalesforceOptions {
    /// Consumer key (OAuth client_id) the token endpoint accepts; also the JWT `iss`.
    #[arg(
        long = "salesforce-client-id",
        default_value = "orglink-sandbox-consumer-key"
    )]
    pub client_id: String,
    /// Consumer secret the client-credentials flow accepts.
    #[arg(
        long = "salesforce-client-secret",
        default_value = "orglink-sandbox-consumer-secret"
    )]
    pub client_secret: Secret,
    /// Integration user's username: the JWT `sub`.
    #[arg(
        long = "salesforce-username",
        default_value = "integration@orglink.sandbox"
    )]
    pub username: String,
    /// PEM RSA public key JWT bearer assertions are verified against (RS256); without it the
    /// JWT flow answers invalid_grant.
    #[arg(long = "salesforce-jwt-public-key", value_name = "PEM_FILE")]
    pub jwt_public_key: Option<PathBuf>,
    /// The `aud` a JWT assertion must carry (https://test.salesforce.com for a sandbox org).
    #[arg(
        long = "salesforce-jwt-audience",
        default_value = "https://login.salesforce.com"
    )]
    pub jwt_audience: String,
    /// Organization id (15 or 18 characters) named in the token response's `id` URL.
    #[arg(long = "salesforce-org-id", default_value = "00DSB0000000001")]
    pub org_id: String,
    /// Integration user id named in the token response's `id` URL; stamped as LastModifiedById.
    #[arg(long = "salesforce-user-id", default_value = "005SB0000000001")]
    pub user_id: String,
    /// Daily API request allocation; REQUEST_LIMIT_EXCEEDED once spent.
    #[arg(long = "salesforce-daily-api-limit", default_value_t = 100_000)]
    pub daily_api_limit: u64,
    /// Allowed Zendesk_Sync_Status__c values (comma-separated). Default: accept any, since
    /// orglink defines the picklist.
    #[arg(long = "salesforce-sync-status-values", value_delimiter = ',')]
    pub sync_status_values: Vec<String>,
    /// instance_url the token endpoint returns. Default: http:// plus the request's Host.
    #[arg(long = "salesforce-instance-url")]
    pub instance_url: Option<String>,
    /// Seed of the fault-injection generator (set by the binary from `--seed`).
    #[arg(skip)]
    pub fault_seed: u64,
}

impl Default for SalesforceOptions {
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            options: SalesforceOptions,
        }
        <Defaults as clap::Parser>::parse_from(["orglink-sandbox"]).options
    }
}

/// The behaviours the reference marks UNVERIFIED (or only secondary-sourced), plus tunables.
/// `POST /_sandbox/switches` merges the given keys into the current switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    /// Each access token dies after this many API calls (0 = never): the next call answers
    /// 401 INVALID_SESSION_ID.
    pub session_max_calls: u64,
    /// One-shot: posting `true` invalidates every token issued so far.
    pub expire_sessions_now: bool,
    /// One-shot: posting `true` invalidates every open query cursor (INVALID_QUERY_LOCATOR).
    pub expire_query_locators_now: bool,
    pub daily_api_limit: u64,
    /// API requests counted so far today (settable, to start near the limit).
    pub api_usage: u64,
    /// UNVERIFIED: whether OAuth token requests count against the daily limit.
    pub token_requests_count: bool,
    /// UNVERIFIED: whether the token response carries `api_instance_url`.
    pub token_includes_api_instance_url: bool,
    /// Allowed Zendesk_Sync_Status__c values; empty accepts any.
    pub sync_status_values: Vec<String>,
    /// Account id → message of a validation rule that refuses every write to it.
    pub validation_rules: BTreeMap<String, String>,
    /// Account id → how many of its next writes fail with UNABLE_TO_LOCK_ROW.
    pub row_locks: BTreeMap<String, u64>,
    /// UNVERIFIED: errorCode of a unique-field violation on Zendesk_Org_ID__c.
    pub duplicate_value_error_code: String,
    /// UNVERIFIED: whether deleted (recycle-bin) records still hold their unique values.
    pub unique_includes_deleted: bool,
    /// [S]: HTTP status of ENTITY_IS_DELETED on the single-record endpoints.
    pub deleted_record_status: u16,
    /// UNVERIFIED: body of a 503 — "json" (error array) or "html" (maintenance page).
    pub unavailable_body: String,
    /// [S]: how far ahead a JWT assertion's `exp` may be, in seconds ("within 3 minutes").
    pub jwt_max_lifetime_secs: u64,
    /// Pages hold at most this many records whatever batchSize asks (0 = no cap): Salesforce
    /// documents that "the returned batch can include fewer records" than requested.
    pub query_page_cap: u64,
    /// The integration user has View All on Account (infra/salesforce's permission set); off,
    /// the setup objects show a user that sees a sharing-filtered subset.
    pub integration_user_view_all: bool,
    /// The integration user's profile has View All Data (an admin-like user).
    pub integration_user_view_all_data: bool,
    /// The integration user has Edit on Account.
    pub integration_user_account_edit: bool,
    /// Link fields the integration user may read but not edit (field permissions).
    pub integration_user_uneditable_fields: Vec<String>,
    /// The integration user has View Setup and Configuration. Off (the default, like a real
    /// integration user), queries of the setup objects answer `INVALID_TYPE` as a real org
    /// does for a user without it.
    pub integration_user_view_setup: bool,
    /// Account fields absent for the integration user: not deployed, or hidden by field-level
    /// security. Describe omits them and queries naming them answer `INVALID_FIELD`.
    pub integration_user_hidden_fields: Vec<String>,
    /// The org's opportunity stages (Setup → Opportunity Stages; default: a new org's): a
    /// write of `StageName` sets the read-only `IsClosed` and `IsWon` from it, and a seeded
    /// opportunity without them gets them the same way.
    pub opportunity_stages: Vec<store::OpportunityStage>,
    /// UNVERIFIED for the API (documented for the app): a write that changes an
    /// opportunity's `StageName` and leaves out `Probability` sets it to the new stage's
    /// default probability (`opportunity_stages[].probability`). Off, `Probability` only
    /// changes when written.
    pub opportunity_probability_follows_stage: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Self {
            session_max_calls: 0,
            expire_sessions_now: false,
            expire_query_locators_now: false,
            daily_api_limit: 100_000,
            api_usage: 0,
            token_requests_count: false,
            token_includes_api_instance_url: false,
            sync_status_values: Vec::new(),
            validation_rules: BTreeMap::new(),
            row_locks: BTreeMap::new(),
            duplicate_value_error_code: "DUPLICATE_VALUE".into(),
            unique_includes_deleted: true,
            deleted_record_status: 404,
            unavailable_body: "json".into(),
            jwt_max_lifetime_secs: 180,
            query_page_cap: 0,
            integration_user_view_all: true,
            integration_user_view_all_data: false,
            integration_user_account_edit: true,
            integration_user_uneditable_fields: Vec::new(),
            integration_user_view_setup: false,
            integration_user_hidden_fields: Vec::new(),
            opportunity_stages: store::OpportunityStage::standard(),
            opportunity_probability_follows_stage: true,
        }
    }
}

/// Why the simulator could not be built from its flags and seed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("salesforce scenario: {0}")]
    Seed(#[from] store::SeedError),
    #[error("salesforce scenario switches: {0}")]
    Switches(String),
    #[error("--salesforce-jwt-public-key {path}: {reason}")]
    JwtKey { path: PathBuf, reason: String },
    #[error("--salesforce-{flag} {value:?} is not a valid {what} id")]
    BadId {
        flag: &'static str,
        value: String,
        what: &'static str,
    },
}

/// The router, or a panic naming what is wrong with the flags or seed (see [`try_app`]).
pub fn app(opts: SalesforceOptions, seed: SalesforceSeed) -> Router {
    try_app(opts, seed).unwrap_or_else(|e| panic!("cannot start the Salesforce simulator: {e}"))
}

pub fn try_app(opts: SalesforceOptions, seed: SalesforceSeed) -> Result<Router, StartError> {
    let sim = Sim::new(opts, seed)?;
    Ok(router(Arc::new(sim)))
}

const MAX_CURSORS: usize = 1000;

struct Cursor {
    result: Arc<QueryResult>,
    all_rows: bool,
    /// The batch size the query was opened with: later pages keep it unless they ask again.
    batch: usize,
}

struct Sim {
    opts: SalesforceOptions,
    org_id: String,
    user_id: String,
    jwt_key: Option<rsa::RsaPublicKey>,
    initial: SalesforceSeed,
    world: RwLock<World>,
    switches: Mutex<Switches>,
    sessions: Mutex<auth::Sessions>,
    cursors: Mutex<BTreeMap<u64, Cursor>>,
    next_cursor: AtomicU64,
    calls: Mutex<BTreeMap<String, BTreeMap<String, u64>>>,
    writes: Mutex<Vec<Value>>,
    faults: Faults,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sim {
    fn new(opts: SalesforceOptions, seed: SalesforceSeed) -> Result<Self, StartError> {
        let world = World::load(&seed)?;
        let switches = Self::scenario_switches(&opts, &seed).map_err(StartError::Switches)?;
        let id = |flag, value: &str, object: Object, what| {
            ids::normalize(value)
                .filter(|i| i.starts_with(object.key_prefix()) || flag == "org-id")
                .ok_or(StartError::BadId {
                    flag,
                    value: value.to_string(),
                    what,
                })
        };
        let org_id = id("org-id", &opts.org_id, Object::User, "organization")?;
        if !org_id.starts_with("00D") {
            return Err(StartError::BadId {
                flag: "org-id",
                value: opts.org_id.clone(),
                what: "organization (00D...)",
            });
        }
        let user_id = id("user-id", &opts.user_id, Object::User, "user (005...)")?;
        let jwt_key = match &opts.jwt_public_key {
            None => None,
            Some(path) => {
                let pem = std::fs::read_to_string(path).map_err(|e| StartError::JwtKey {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                Some(
                    auth::load_public_key(&pem).map_err(|reason| StartError::JwtKey {
                        path: path.clone(),
                        reason,
                    })?,
                )
            }
        };
        let sim = Sim {
            switches: Mutex::new(switches),
            faults: Faults::new(FaultPlan {
                seed: opts.fault_seed,
                ..Default::default()
            }),
            opts,
            org_id,
            user_id,
            jwt_key,
            initial: seed,
            world: RwLock::new(world),
            sessions: Mutex::new(auth::Sessions::default()),
            cursors: Mutex::new(BTreeMap::new()),
            next_cursor: AtomicU64::new(1),
            calls: Mutex::new(BTreeMap::new()),
            writes: Mutex::new(Vec::new()),
        };
        let switches = lock(&sim.switches).clone();
        sim.grant(&mut sim.write(), &switches);
        Ok(sim)
    }

    fn default_switches(opts: &SalesforceOptions) -> Switches {
        Switches {
            daily_api_limit: opts.daily_api_limit,
            sync_status_values: opts.sync_status_values.clone(),
            ..Switches::default()
        }
    }

    /// The switches a scenario starts with: the flags' defaults under its own `switches`.
    fn scenario_switches(
        opts: &SalesforceOptions,
        seed: &SalesforceSeed,
    ) -> Result<Switches, String> {
        let defaults = Self::default_switches(opts);
        match &seed.switches {
            None => Ok(defaults),
            Some(patch) => merge_switches(&defaults, patch),
        }
    }

    /// Fills the setup objects with the integration user's rights as `s` has them.
    fn grant(&self, world: &mut World, s: &Switches) {
        world.grant_integration_user(
            &self.user_id,
            &store::IntegrationRights {
                account_view_all: s.integration_user_view_all,
                account_edit: s.integration_user_account_edit,
                view_all_data: s.integration_user_view_all_data,
                uneditable_fields: s.integration_user_uneditable_fields.clone(),
                view_setup: s.integration_user_view_setup,
                hidden_fields: s.integration_user_hidden_fields.clone(),
            },
        );
    }

    fn read(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(|p| p.into_inner())
    }

    fn count_call(&self, endpoint: &str, status: &str) {
        *lock(&self.calls)
            .entry(endpoint.to_string())
            .or_default()
            .entry(status.to_string())
            .or_default() += 1;
    }

    fn limit_info(&self) -> String {
        let s = lock(&self.switches);
        format!("api-usage={}/{}", s.api_usage, s.daily_api_limit)
    }

    /// The fault plan's verdict for this request: `Some(response)` to answer with instead.
    /// A dropped connection is counted under the status `dropped`.
    async fn injected_fault(&self, endpoint: &str) -> Option<Response> {
        let response = match self.faults.decide(endpoint)? {
            Fault::Slow(d) => {
                tokio::time::sleep(d).await;
                return None;
            }
            Fault::Drop => {
                self.count_call(endpoint, "dropped");
                return Some(dropped_connection());
            }
            Fault::ServerError | Fault::Outage => self.unavailable(),
            // Salesforce has no 429: concurrency throttling is a 403 REQUEST_LIMIT_EXCEEDED.
            Fault::RateLimited { .. } => error_response(&ApiError::new(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            )),
        };
        self.count_call(endpoint, &response.status().as_u16().to_string());
        Some(response)
    }

    fn unavailable(&self) -> Response {
        if lock(&self.switches).unavailable_body == "html" {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><head><title>Maintenance</title></head><body>Salesforce is down for maintenance.</body></html>",
            )
                .into_response();
        }
        error_response(&ApiError::new(
            503,
            "SERVER_UNAVAILABLE",
            "Service temporarily unavailable, please retry later",
        ))
    }

    /// Runs one REST API request: faults, then the session, then the daily budget, then
    /// `handler`; counts the call and stamps `Sforce-Limit-Info`.
    async fn api(
        &self,
        endpoint: &'static str,
        headers: &HeaderMap,
        version: &str,
        handler: impl FnOnce(&Sim) -> Response,
    ) -> Response {
        let mut response = match self.injected_fault(endpoint).await {
            Some(r) => r,
            None => {
                let r = self
                    .authorized(headers, version)
                    .unwrap_or_else(|| handler(self));
                self.count_call(endpoint, &r.status().as_u16().to_string());
                r
            }
        };
        if let Ok(v) = HeaderValue::from_str(&self.limit_info()) {
            response.headers_mut().insert("Sforce-Limit-Info", v);
        }
        response
    }

    /// `Some(error)` unless the request carries a live session, the version exists and the
    /// daily budget has room (the call is then counted against it).
    fn authorized(&self, headers: &HeaderMap, version: &str) -> Option<Response> {
        if !valid_version(version) {
            return Some(not_found());
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("OAuth "))
            })
            .map(str::trim);
        let mut switches = lock(&self.switches);
        let live =
            token.is_some_and(|t| lock(&self.sessions).use_token(t, switches.session_max_calls));
        if !live {
            return Some(error_response(&ApiError::new(
                401,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            )));
        }
        if switches.api_usage >= switches.daily_api_limit {
            return Some(error_response(&ApiError::new(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )));
        }
        switches.api_usage += 1;
        None
    }

    fn log_write(&self, via: &str, record: store::WriteRecord) {
        let mut writes = lock(&self.writes);
        let seq = writes.len() + 1;
        let mut entry = serde_json::to_value(record).expect("write record serializes");
        entry["seq"] = json!(seq);
        entry["via"] = json!(via);
        entry["time"] = entry["SystemModstamp"].clone();
        writes.push(entry);
    }

    fn write_rules<'a>(&'a self, s: &'a mut Switches) -> WriteRules<'a> {
        WriteRules {
            sync_status_values: &s.sync_status_values,
            validation_rules: &s.validation_rules,
            row_locks: &mut s.row_locks,
            duplicate_value_code: &s.duplicate_value_error_code,
            unique_includes_deleted: s.unique_includes_deleted,
            deleted_status: s.deleted_record_status,
            user_id: &self.user_id,
            stages: &s.opportunity_stages,
            probability_follows_stage: s.opportunity_probability_follows_stage,
        }
    }
}

fn valid_version(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|n| n.strip_suffix(".0"))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| (20..=68).contains(&n))
}

fn error_response(e: &ApiError) -> Response {
    let mut item = json!({"message": e.message, "errorCode": e.code});
    if !e.fields.is_empty() {
        item["fields"] = json!(e.fields);
    }
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(json!([item]))).into_response()
}

fn not_found() -> Response {
    error_response(&ApiError::new(
        404,
        "NOT_FOUND",
        "The requested resource does not exist",
    ))
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn query_params(raw: &Option<String>) -> Vec<(String, String)> {
    raw.as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn param(params: &[(String, String)], name: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

// ---------------------------------------------------------------------------------------------
// Router

fn router(sim: Arc<Sim>) -> Router {
    let data = "/services/data/{version}";
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route(&format!("{data}/limits"), get(limits))
        .route(&format!("{data}/limits/"), get(limits))
        .route(&format!("{data}/query"), get(query))
        .route(&format!("{data}/query/"), get(query))
        .route(&format!("{data}/queryAll"), get(query_all))
        .route(&format!("{data}/queryAll/"), get(query_all))
        .route(&format!("{data}/query/{{locator}}"), get(query_more))
        .route(&format!("{data}/queryAll/{{locator}}"), get(query_more))
        .route(
            &format!("{data}/sobjects/{{object}}/describe"),
            get(describe),
        )
        .route(
            &format!("{data}/sobjects/{{object}}/describe/"),
            get(describe),
        )
        .route(
            &format!("{data}/sobjects/{{object}}/{{id}}"),
            get(sobject_get).patch(sobject_patch).post(sobject_post),
        )
        .route(
            &format!("{data}/composite/sobjects"),
            axum::routing::patch(composite),
        )
        .route("/_sandbox/scenario", post(admin_scenario))
        .route("/_sandbox/reset", post(admin_reset))
        .route("/_sandbox/state", get(admin_state))
        .route("/_sandbox/calls", get(admin_calls))
        .route("/_sandbox/writes", get(admin_writes))
        .route(
            "/_sandbox/faults",
            get(admin_faults_get).post(admin_faults_post),
        )
        .route("/_sandbox/faults/report", get(admin_faults_report))
        .route(
            "/_sandbox/switches",
            get(admin_switches_get).post(admin_switches_post),
        )
        .fallback(|| async { not_found() })
        // Scenarios of 200,000 accounts are far above axum's 2 MB default.
        .layer(DefaultBodyLimit::max(1 << 30))
        .with_state(sim)
}

type Sh = State<Arc<Sim>>;

// ---------------------------------------------------------------------------------------------
// OAuth

async fn token(State(sim): Sh, headers: HeaderMap, body: Bytes) -> Response {
    let endpoint = "sf.token";
    if let Some(r) = sim.injected_fault(endpoint).await {
        return r;
    }
    let response = match issue_token(&sim, &headers, &body) {
        Ok(body) => {
            let mut s = lock(&sim.switches);
            if s.token_requests_count {
                s.api_usage += 1;
            }
            json_response(StatusCode::OK, body)
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, e.body()),
    };
    sim.count_call(endpoint, &response.status().as_u16().to_string());
    response
}

fn issue_token(sim: &Sim, headers: &HeaderMap, body: &[u8]) -> Result<Value, auth::OAuthError> {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| param(&form, name);
    let oauth = |error, description: &str| auth::OAuthError {
        error,
        description: description.to_string(),
    };
    match field("grant_type").as_deref() {
        Some("client_credentials") => {
            let basic = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(auth::basic_credentials);
            let (id, secret) = match (basic, field("client_id"), field("client_secret")) {
                (Some(pair), _, _) => pair,
                (None, Some(id), Some(secret)) => (id, secret),
                _ => return Err(oauth("invalid_client_id", "client identifier invalid")),
            };
            if id != sim.opts.client_id {
                return Err(oauth("invalid_client_id", "client identifier invalid"));
            }
            if secret != sim.opts.client_secret.expose() {
                return Err(oauth("invalid_client", "invalid client credentials"));
            }
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let assertion = field("assertion").unwrap_or_default();
            let max = i64::try_from(lock(&sim.switches).jwt_max_lifetime_secs).unwrap_or(i64::MAX);
            auth::verify_assertion(
                &assertion,
                &auth::JwtExpectations {
                    key: sim.jwt_key.as_ref(),
                    consumer_key: &sim.opts.client_id,
                    username: &sim.opts.username,
                    audience: &sim.opts.jwt_audience,
                    now_secs: time::OffsetDateTime::now_utc().unix_timestamp(),
                    max_lifetime_secs: max,
                },
            )?;
        }
        _ => return Err(oauth("unsupported_grant_type", "grant type not supported")),
    }
    let instance_url = sim.opts.instance_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        format!("http://{host}")
    });
    let access_token = lock(&sim.sessions).issue(&sim.org_id);
    let id_url = format!(
        "https://login.salesforce.com/id/{}/{}",
        sim.org_id, sim.user_id
    );
    let issued_at =
        (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).to_string();
    let mut body = json!({
        "access_token": access_token,
        "instance_url": instance_url,
        "id": id_url,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": auth::response_signature(sim.opts.client_secret.expose(), &id_url, &issued_at),
        "scope": "api",
    });
    if lock(&sim.switches).token_includes_api_instance_url {
        body["api_instance_url"] = json!(format!("{instance_url}/"));
    }
    Ok(body)
}

// ---------------------------------------------------------------------------------------------
// REST data endpoints

async fn versions(State(sim): Sh) -> Response {
    if let Some(r) = sim.injected_fault("sf.versions").await {
        return r;
    }
    sim.count_call("sf.versions", "200");
    let list: Vec<Value> = [(64, "Summer '25"), (65, "Winter '26"), (66, "Spring '26")]
        .iter()
        .map(|(n, label)| {
            json!({"label": label, "url": format!("/services/data/v{n}.0"), "version": format!("{n}.0")})
        })
        .collect();
    json_response(StatusCode::OK, Value::Array(list))
}

async fn limits(State(sim): Sh, Path(version): Path<String>, headers: HeaderMap) -> Response {
    sim.api("sf.limits", &headers, &version, |sim| {
        let s = lock(&sim.switches);
        // The resource needs View Setup and Configuration, which an integration user lacks;
        // the call still counts and still carries Sforce-Limit-Info.
        if !s.integration_user_view_setup {
            return error_response(&ApiError::new(
                403,
                "INSUFFICIENT_ACCESS",
                "You do not have the level of access necessary to perform the operation you requested. Please contact the owner of the record or your administrator if access is necessary.",
            ));
        }
        json_response(
            StatusCode::OK,
            json!({"DailyApiRequests": {"Max": s.daily_api_limit,
                "Remaining": s.daily_api_limit.saturating_sub(s.api_usage)}}),
        )
    })
    .await
}

async fn query(
    State(sim): Sh,
    Path(version): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    sim.api("sf.query", &headers, &version, |sim| {
        run_query(sim, &version, &headers, &raw, false)
    })
    .await
}

async fn query_all(
    State(sim): Sh,
    Path(version): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    sim.api("sf.query_all", &headers, &version, |sim| {
        run_query(sim, &version, &headers, &raw, true)
    })
    .await
}

/// `Sforce-Query-Options: batchSize=N`, clamped to 200–2000 (the default is 2000).
fn batch_size(headers: &HeaderMap) -> Option<usize> {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map(|n| n.clamp(200, 2000))
}

const DEFAULT_BATCH: usize = 2000;

fn run_query(
    sim: &Sim,
    version: &str,
    headers: &HeaderMap,
    raw: &Option<String>,
    all_rows: bool,
) -> Response {
    let params = query_params(raw);
    let Some(text) = param(&params, "q") else {
        return error_response(&ApiError::new(
            400,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        ));
    };
    let result = {
        let world = sim.read();
        match world.query(&text, all_rows) {
            Ok(r) => r,
            Err(e) => return error_response(&e),
        }
    };
    let result = Arc::new(result);
    let batch = batch_size(headers).unwrap_or(DEFAULT_BATCH);
    page(sim, version, result, 0, batch, all_rows, None)
}

/// One page of a query's rows from `offset`; opens a cursor when rows remain.
fn page(
    sim: &Sim,
    version: &str,
    result: Arc<QueryResult>,
    offset: usize,
    batch: usize,
    all_rows: bool,
    cursor_id: Option<u64>,
) -> Response {
    let total = result.rows.len();
    if result.count_only {
        return json_response(
            StatusCode::OK,
            json!({"totalSize": total, "done": true, "records": []}),
        );
    }
    let cap = usize::try_from(lock(&sim.switches).query_page_cap).unwrap_or(usize::MAX);
    let batch = if cap > 0 { batch.min(cap) } else { batch };
    let end = (offset + batch).min(total);
    let records: Vec<Value> = {
        let world = sim.read();
        result.rows[offset.min(end)..end]
            .iter()
            .map(|r| world.render(&result, r, version))
            .collect()
    };
    let mut body = json!({"totalSize": total, "done": end >= total, "records": records});
    if end < total {
        let id = cursor_id.unwrap_or_else(|| {
            let id = sim.next_cursor.fetch_add(1, Ordering::Relaxed);
            let mut cursors = lock(&sim.cursors);
            cursors.insert(
                id,
                Cursor {
                    result: result.clone(),
                    all_rows,
                    batch,
                },
            );
            while cursors.len() > MAX_CURSORS {
                cursors.pop_first();
            }
            id
        });
        // Documented: a queryAll's nextRecordsUrl says `query` too; the locator remembers.
        body["nextRecordsUrl"] = json!(format!(
            "/services/data/{version}/query/{}-{end}",
            ids::generate("01g", id)
        ));
    }
    json_response(StatusCode::OK, body)
}

async fn query_more(
    State(sim): Sh,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sim.api("sf.query_more", &headers, &version, |sim| {
        let invalid = || {
            error_response(&ApiError::new(
                400,
                "INVALID_QUERY_LOCATOR",
                "invalid query locator",
            ))
        };
        let Some((loc, offset)) = locator.rsplit_once('-') else {
            return invalid();
        };
        let (Some(id), Ok(offset)) = (cursor_number(loc), offset.parse::<usize>()) else {
            return invalid();
        };
        let Some((result, all_rows, opened_with)) = lock(&sim.cursors)
            .get(&id)
            .map(|c| (c.result.clone(), c.all_rows, c.batch))
        else {
            return invalid();
        };
        if offset > result.rows.len() {
            return invalid();
        }
        page(
            sim,
            &version,
            result,
            offset,
            batch_size(&headers).unwrap_or(opened_with),
            all_rows,
            Some(id),
        )
    })
    .await
}

/// The cursor number inside a `01gSB0000000042XXX` locator.
fn cursor_number(locator: &str) -> Option<u64> {
    let id = ids::normalize(locator)?;
    id.strip_prefix("01gSB")?.get(..10)?.parse().ok()
}

/// The object and 18-character id of an sObject URL, or the error Salesforce gives.
fn record_path(object: &str, id: &str) -> Result<(Object, String), ApiError> {
    let object = Object::parse(object)
        .ok_or_else(|| ApiError::new(404, "NOT_FOUND", "The requested resource does not exist"))?;
    if !(id.len() == 15 || id.len() == 18) {
        // Not id-shaped: Salesforce reads the segment as an external-id field name.
        return Err(ApiError::new(
            404,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {id}"),
        ));
    }
    Ok((object, store::parse_record_id(object, id)?))
}

/// `GET sobjects/{object}/describe`: what the running user may do with the object and its
/// fields (the subset of Salesforce's DescribeSObjectResult orglink reads, in its shape).
async fn describe(
    State(sim): Sh,
    Path((version, object)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    sim.api("sf.describe", &headers, &version, |sim| {
        let Some(object) = Object::parse(&object) else {
            return error_response(&ApiError::new(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
            ));
        };
        let edit = lock(&sim.switches).integration_user_account_edit;
        json_response(StatusCode::OK, sim.read().describe(object, &version, edit))
    })
    .await
}

async fn sobject_get(
    State(sim): Sh,
    Path((version, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    sim.api("sf.sobject_get", &headers, &version, |sim| {
        let (object, id) = match record_path(&object, &id) {
            Ok(x) => x,
            Err(e) => return error_response(&e),
        };
        let fields: Option<Vec<String>> = param(&query_params(&raw), "fields").map(|f| {
            f.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        });
        let deleted_status = lock(&sim.switches).deleted_record_status;
        let world = sim.read();
        let Some(row) = world.table(object).rows.get(&id) else {
            return not_found();
        };
        if row.get("IsDeleted").and_then(Value::as_bool) == Some(true) {
            return error_response(&ApiError::new(
                deleted_status,
                "ENTITY_IS_DELETED",
                "entity is deleted",
            ));
        }
        match world.read(object, row, fields.as_deref(), &version) {
            Ok(v) => json_response(StatusCode::OK, v),
            Err(e) => error_response(&e),
        }
    })
    .await
}

async fn sobject_patch(
    State(sim): Sh,
    Path((version, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.api("sf.sobject_patch", &headers, &version, |sim| {
        patch_record(sim, &object, &id, &body)
    })
    .await
}

/// `POST …?_HttpMethod=PATCH`: the documented tunnel for clients that cannot send PATCH.
async fn sobject_post(
    State(sim): Sh,
    Path((version, object, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Response {
    if param(&query_params(&raw), "_HttpMethod").as_deref() != Some("PATCH") {
        return error_response(&ApiError::new(
            405,
            "METHOD_NOT_ALLOWED",
            "HTTP Method 'POST' not allowed. Allowed are GET,PATCH,HEAD,DELETE",
        ));
    }
    sobject_patch(State(sim), Path((version, object, id)), headers, body).await
}

fn parse_json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(ApiError::new(
            400,
            "JSON_PARSER_ERROR",
            "The request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::new(
            400,
            "JSON_PARSER_ERROR",
            format!("Unexpected character in the request body: {e}"),
        )),
    }
}

fn patch_record(sim: &Sim, object: &str, id: &str, body: &[u8]) -> Response {
    let result = (|| {
        let (object, id) = record_path(object, id)?;
        let fields = parse_json_object(body)?;
        let mut switches = lock(&sim.switches);
        let mut rules = sim.write_rules(&mut switches);
        let mut world = sim.write();
        world.update(object, &id, &fields, &mut rules, &mut Vec::new())
    })();
    match result {
        Ok(record) => {
            sim.log_write("sobject", record);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error_response(&e),
    }
}

const COLLECTION_MAX: usize = 200;

async fn composite(
    State(sim): Sh,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sim.api("sf.composite", &headers, &version, |sim| {
        composite_update(sim, &body)
    })
    .await
}

fn composite_update(sim: &Sim, body: &[u8]) -> Response {
    let request = match parse_json_object(body) {
        Ok(r) => r,
        Err(e) => return error_response(&e),
    };
    let all_or_none = request
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(records) = request.get("records").and_then(Value::as_array) else {
        return error_response(&ApiError::new(
            400,
            "JSON_PARSER_ERROR",
            "The request body must hold a records array",
        ));
    };
    if records.len() > COLLECTION_MAX {
        return error_response(&ApiError::new(
            400,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    let mut switches = lock(&sim.switches);
    let mut rules = sim.write_rules(&mut switches);
    let mut world = sim.write();
    let mut undo = Vec::new();
    let mut outcomes: Vec<(Option<String>, Result<store::WriteRecord, ApiError>)> = Vec::new();
    for record in records {
        outcomes.push(composite_one(&mut world, record, &mut rules, &mut undo));
    }
    let failed = outcomes.iter().any(|(_, r)| r.is_err());
    if all_or_none && failed {
        world.undo(undo);
    }
    drop(world);
    drop(switches);
    let results: Vec<Value> = outcomes
        .into_iter()
        .map(|(id, outcome)| {
            let error = |code: &str, message: &str, fields: &[String]| {
                let mut v = json!({"success": false,
                    "errors": [{"statusCode": code, "message": message, "fields": fields}]});
                if let Some(id) = &id {
                    v["id"] = json!(id);
                }
                v
            };
            match outcome {
                Ok(_) if all_or_none && failed => error(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                    &[],
                ),
                Ok(record) => {
                    let id = record.id.clone();
                    sim.log_write("composite", record);
                    json!({"id": id, "success": true, "errors": []})
                }
                Err(e) => error(&e.code, &e.message, &e.fields),
            }
        })
        .collect();
    json_response(StatusCode::OK, Value::Array(results))
}

/// One record of a collection update: its id as echoed back (absent when malformed) and the
/// outcome. A missing record reads as `INVALID_CROSS_REFERENCE_KEY` here, as in Collections.
fn composite_one(
    world: &mut World,
    record: &Value,
    rules: &mut WriteRules<'_>,
    undo: &mut Vec<(Object, String, store::Row)>,
) -> (Option<String>, Result<store::WriteRecord, ApiError>) {
    let Some(fields) = record.as_object() else {
        return (
            None,
            Err(ApiError::new(
                400,
                "JSON_PARSER_ERROR",
                "each record must be a JSON object",
            )),
        );
    };
    let type_name = fields
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str);
    let Some(type_name) = type_name else {
        return (
            None,
            Err(ApiError::new(
                400,
                "INVALID_TYPE",
                "Must specify a type in attributes",
            )),
        );
    };
    let Some(object) = Object::parse(type_name) else {
        return (
            None,
            Err(ApiError::new(
                400,
                "INVALID_TYPE",
                format!("sObject type '{type_name}' is not supported."),
            )),
        );
    };
    let id = fields
        .get("id")
        .or_else(|| fields.get("Id"))
        .and_then(Value::as_str);
    let Some(id) = id else {
        return (
            None,
            Err(ApiError::new(
                400,
                "MISSING_ARGUMENT",
                "Id not specified in an update call",
            )),
        );
    };
    let echoed = store::parse_record_id(object, id).ok();
    let mut body = fields.clone();
    body.remove("id");
    body.remove("Id");
    let outcome = world.update(object, id, &body, rules, undo).map_err(|e| {
        if e.code == "NOT_FOUND" {
            ApiError::new(
                400,
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
            )
        } else {
            e
        }
    });
    (echoed, outcome)
}

// ---------------------------------------------------------------------------------------------
// Admin API

fn admin_error(message: impl Into<String>) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({"error": message.into()}))
}

async fn admin_scenario(State(sim): Sh, body: Bytes) -> Response {
    let scenario: Scenario = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return admin_error(format!("not a scenario: {e}")),
    };
    let world = match World::load(&scenario.salesforce) {
        Ok(w) => w,
        Err(e) => return admin_error(e.to_string()),
    };
    let switches = match Sim::scenario_switches(&sim.opts, &scenario.salesforce) {
        Ok(s) => s,
        Err(e) => return admin_error(format!("salesforce.switches: {e}")),
    };
    let counts = json!({
        "accounts": world.accounts.rows.len(),
        "opportunities": world.opportunities.rows.len(),
        "users": world.users.rows.len(),
    });
    // The switches carry the usage count on: a new scenario doesn't refill the budget.
    let mut current = lock(&sim.switches);
    let api_usage = current.api_usage;
    *current = Switches {
        api_usage,
        ..switches
    };
    let mut world = world;
    sim.grant(&mut world, &current);
    drop(current);
    *sim.write() = world;
    lock(&sim.cursors).clear();
    lock(&sim.writes).clear();
    json_response(StatusCode::OK, json!({"salesforce": counts}))
}

/// Back to the state at start: the startup seed and its switches, no faults, empty call
/// counts and write log. Issued tokens stay valid.
async fn admin_reset(State(sim): Sh) -> Response {
    let mut world = World::load(&sim.initial).expect("the startup seed loaded once already");
    let switches = Sim::scenario_switches(&sim.opts, &sim.initial).expect("checked at start");
    sim.grant(&mut world, &switches);
    *sim.write() = world;
    *lock(&sim.switches) = switches;
    sim.faults.set_plan(FaultPlan {
        seed: sim.opts.fault_seed,
        ..Default::default()
    });
    lock(&sim.cursors).clear();
    lock(&sim.calls).clear();
    lock(&sim.writes).clear();
    json_response(StatusCode::OK, json!({"reset": true}))
}

async fn admin_state(State(sim): Sh) -> Response {
    let dump = sim.read().dump();
    json_response(StatusCode::OK, json!({"salesforce": dump}))
}

async fn admin_calls(State(sim): Sh) -> Response {
    let calls = lock(&sim.calls).clone();
    json_response(StatusCode::OK, json!(calls))
}

async fn admin_writes(State(sim): Sh) -> Response {
    let writes = lock(&sim.writes).clone();
    json_response(StatusCode::OK, Value::Array(writes))
}

/// Faults injected by kind and requests per second (`faults::FaultReport`).
async fn admin_faults_report(State(sim): Sh) -> Response {
    axum::Json(sim.faults.report()).into_response()
}

async fn admin_faults_get(State(sim): Sh) -> Response {
    json_response(StatusCode::OK, json!(sim.faults.plan()))
}

async fn admin_faults_post(State(sim): Sh, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultPlan>(&body) {
        Ok(plan) => {
            sim.faults.set_plan(plan);
            json_response(StatusCode::OK, json!(sim.faults.plan()))
        }
        Err(e) => admin_error(format!("not a fault plan: {e}")),
    }
}

async fn admin_switches_get(State(sim): Sh) -> Response {
    json_response(StatusCode::OK, json!(*lock(&sim.switches)))
}

/// Merges the posted keys into the current switches. Account ids may be 15 or 18 characters.
async fn admin_switches_post(State(sim): Sh, body: Bytes) -> Response {
    let patch = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v,
        Err(e) => return admin_error(format!("switches must be a JSON object: {e}")),
    };
    let mut switches = lock(&sim.switches);
    let mut next = match merge_switches(&switches, &patch) {
        Ok(s) => s,
        Err(e) => return admin_error(e),
    };
    // One-shot actions happen now and read back as false.
    if std::mem::take(&mut next.expire_sessions_now) {
        lock(&sim.sessions).expire_all();
    }
    if std::mem::take(&mut next.expire_query_locators_now) {
        lock(&sim.cursors).clear();
    }
    sim.grant(&mut sim.write(), &next);
    *switches = next;
    json_response(StatusCode::OK, json!(*switches))
}

/// `current` with the keys of `patch` replaced; account ids may be 15 or 18 characters.
fn merge_switches(current: &Switches, patch: &Value) -> Result<Switches, String> {
    let Value::Object(patch) = patch else {
        return Err("switches must be a JSON object".into());
    };
    let mut merged = json!(current);
    for (k, v) in patch {
        merged[k] = v.clone();
    }
    let mut next: Switches =
        serde_json::from_value(merged).map_err(|e| format!("invalid switches: {e}"))?;
    if !matches!(next.unavailable_body.as_str(), "json" | "html") {
        return Err("unavailable_body must be \"json\" or \"html\"".into());
    }
    normalize_account_keys(&mut next.validation_rules)?;
    normalize_account_keys(&mut next.row_locks)?;
    Ok(next)
}

/// Re-keys a per-account switch by 18-character Account id.
fn normalize_account_keys<V>(map: &mut BTreeMap<String, V>) -> Result<(), String> {
    for (k, v) in std::mem::take(map) {
        let id = store::parse_record_id(Object::Account, &k)
            .map_err(|_| format!("{k:?} is not an Account id"))?;
        map.insert(id, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_batch_sizes() {
        assert!(valid_version("v62.0"));
        assert!(valid_version("v20.0"));
        assert!(!valid_version("v62"));
        assert!(!valid_version("62.0"));
        assert!(!valid_version("v99.0"));
        let mut h = HeaderMap::new();
        assert_eq!(batch_size(&h), None);
        for (given, used) in [
            ("batchSize=500", Some(500)),
            ("batchSize=10", Some(200)),
            ("batchSize=5000", Some(2000)),
            ("batchSize=x", None),
        ] {
            h.insert("sforce-query-options", HeaderValue::from_static(given));
            assert_eq!(batch_size(&h), used, "{given}");
        }
    }

    #[test]
    fn cursor_locators_round_trip() {
        let loc = ids::generate("01g", 42);
        assert_eq!(cursor_number(&loc), Some(42));
        assert_eq!(cursor_number("01gSB0000000042"), Some(42));
        assert_eq!(cursor_number("nonsense"), None);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let opts = SalesforceOptions::default();
        let shown = format!("{opts:?}");
        assert!(!shown.contains(opts.client_secret.expose()), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn bad_flags_are_refused() {
        let opts = SalesforceOptions {
            org_id: "001D000000IRFma".into(),
            ..Default::default()
        };
        assert!(matches!(
            try_app(opts, SalesforceSeed::default()),
            Err(StartError::BadId { .. })
        ));
        let opts = SalesforceOptions {
            jwt_public_key: Some("/nonexistent.pem".into()),
            ..Default::default()
        };
        assert!(matches!(
            try_app(opts, SalesforceSeed::default()),
            Err(StartError::JwtKey { .. })
        ));
    }
}
