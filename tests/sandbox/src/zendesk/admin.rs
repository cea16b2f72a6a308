//! The admin API under `/_sandbox/` (never subject to faults, auth or rate limits).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::store::format_time;
use super::{Switches, Zd};
use crate::faults::FaultPlan;
use crate::scenario::{Scenario, ZendeskSeed};

type Z = State<Arc<Zd>>;

pub(crate) fn router(_zd: Arc<Zd>) -> Router<Arc<Zd>> {
    Router::new()
        .route("/_sandbox/scenario", post(load_scenario))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/state", get(state))
        .route("/_sandbox/calls", get(calls))
        .route("/_sandbox/writes", get(writes))
        .route("/_sandbox/faults", get(get_faults).post(set_faults))
        .route("/_sandbox/faults/report", get(fault_report))
        .route("/_sandbox/switches", get(get_switches).post(set_switches))
        .route("/_sandbox/webhook_deliveries", get(deliveries))
        // A 200,000-organization scenario is far beyond axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::disable())
}

fn bad(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({"error": msg}))).into_response()
}

/// Body: a whole scenario (`{"zendesk":{...}}`) or just its Zendesk part.
async fn load_scenario(State(zd): Z, body: Bytes) -> Response {
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return bad(format!("not JSON: {e}")),
    };
    let seed: Result<ZendeskSeed, _> =
        if value.get("zendesk").is_some() || value.get("salesforce").is_some() {
            serde_json::from_value::<Scenario>(value).map(|s| s.zendesk)
        } else {
            serde_json::from_value(value)
        };
    let seed = match seed {
        Ok(s) => s,
        Err(e) => return bad(format!("not a scenario: {e}")),
    };
    match zd.load(&seed) {
        Ok(()) => {
            let n = zd.world.read().expect("world lock").orgs.len();
            axum::Json(json!({"loaded": {"organizations": n}})).into_response()
        }
        Err(e) => bad(e),
    }
}

/// Back to the startup scenario, default switches and no faults; logs cleared.
async fn reset(State(zd): Z) -> Response {
    if let Err(e) = zd.load(&zd.seed.clone()) {
        return bad(e);
    }
    *zd.switches.write().expect("switches lock") = Switches::from_options(&zd.opts);
    zd.faults.set_plan(FaultPlan {
        seed: zd.opts.fault_seed,
        ..Default::default()
    });
    zd.limits.lock().expect("limits lock").clear();
    zd.calls.lock().expect("calls lock").clear();
    zd.writes.lock().expect("writes lock").clear();
    zd.deliveries.lock().expect("deliveries lock").clear();
    StatusCode::NO_CONTENT.into_response()
}

/// The whole Zendesk side in the scenario format (deleted organizations under
/// `deleted_organizations`, webhooks with their secrets under `webhooks`).
async fn state(State(zd): Z) -> Response {
    let w = zd.world.read().expect("world lock");
    let orgs: Vec<Value> = w.orgs.all().map(|o| o.to_json("")).map(strip_url).collect();
    let deleted: Vec<Value> = w
        .orgs
        .deleted()
        .map(|(o, at)| {
            let mut v = strip_url(o.to_json(""));
            v["deleted_at"] = json!(format_time(at));
            v
        })
        .collect();
    let webhooks: Vec<Value> = w
        .webhooks
        .values()
        .map(|h| json!({"webhook": h.record, "signing_secret": h.secret}))
        .collect();
    axum::Json(json!({
        "zendesk": {
            "subdomain": zd.opts.subdomain,
            "organizations": orgs,
            "users": w.users.values().collect::<Vec<_>>(),
            "tickets": w.tickets.values().collect::<Vec<_>>(),
            "organization_memberships": w.memberships.values().collect::<Vec<_>>(),
            "organization_fields": w.org_fields.values().collect::<Vec<_>>(),
            "deleted_organizations": deleted,
            "webhooks": webhooks,
        }
    }))
    .into_response()
}

fn strip_url(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.remove("url");
    }
    v
}

/// `{"zd.org_show": {"200": 3, "404": 1}, ...}`
async fn calls(State(zd): Z) -> Response {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for ((endpoint, status), n) in zd.calls.lock().expect("calls lock").iter() {
        out.entry(endpoint.clone())
            .or_default()
            .insert(status.to_string(), *n);
    }
    axum::Json(out).into_response()
}

async fn writes(State(zd): Z) -> Response {
    let w = zd.writes.lock().expect("writes lock");
    axum::Json(json!({"writes": w.iter().collect::<Vec<_>>()})).into_response()
}

async fn get_faults(State(zd): Z) -> Response {
    axum::Json(zd.faults.plan()).into_response()
}

/// Faults injected by kind and requests per second (`faults::FaultReport`).
async fn fault_report(State(zd): Z) -> Response {
    axum::Json(zd.faults.report()).into_response()
}

async fn set_faults(State(zd): Z, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultPlan>(&body) {
        Ok(plan) => {
            zd.faults.set_plan(plan.clone());
            axum::Json(plan).into_response()
        }
        Err(e) => bad(format!("not a fault plan: {e}")),
    }
}

async fn get_switches(State(zd): Z) -> Response {
    axum::Json(zd.switches()).into_response()
}

/// Body: any subset of the switches; the rest keep their values.
async fn set_switches(State(zd): Z, body: Bytes) -> Response {
    let patch: Value = match serde_json::from_slice(&body) {
        Ok(Value::Object(m)) => Value::Object(m),
        Ok(_) => return bad("switches must be a JSON object".into()),
        Err(e) => return bad(format!("not JSON: {e}")),
    };
    let mut current = serde_json::to_value(zd.switches()).expect("switches serialize");
    for (k, v) in patch.as_object().expect("object") {
        current[k] = v.clone();
    }
    match serde_json::from_value::<Switches>(current) {
        Ok(s) => {
            *zd.switches.write().expect("switches lock") = s.clone();
            axum::Json(s).into_response()
        }
        Err(e) => bad(format!("invalid switches: {e}")),
    }
}

async fn deliveries(State(zd): Z) -> Response {
    let d = zd.deliveries.lock().expect("deliveries lock");
    axum::Json(json!({"deliveries": *d})).into_response()
}
