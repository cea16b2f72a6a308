//! A Zendesk webhook that intake could not take, under both settings of the sandbox's
//! `webhook_retries` switch (whether Zendesk retries a failed delivery is UNVERIFIED:
//! reference §5, docs/assumptions.md).
//!
//! The parts are real: the simulator binary deletes a linked organization when a person asks it
//! to and delivers the signed `organization.deleted` event over loopback; intake is built by the
//! production wiring on moto (`from_aws`) and answers through its Lambda entry point; a small
//! HTTP front plays the function URL (HTTP in, the function URL payload to
//! `handle_invocation`, its status and body out). The transient failure is real too: the org
//! mirror table is deleted, so intake's first read fails and it answers 503 "retry"; the
//! outage ends (the table is recreated from `infra/template.yaml`'s own definition) as soon as
//! that first answer is given, before any retry can arrive.
//!
//! - On: the retry is taken, the deletion's repair is enqueued once (2 attempts); a second
//!   deletion whose answer comes back later than the delivery timeout is delivered twice and
//!   still enqueued once (SQS FIFO deduplication by event and account).
//! - Off: one attempt, nothing enqueued by the webhook; orglink's fallback is the next full
//!   reconcile, which finds the account's stored organization gone and enqueues its repair.

mod intake_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};

use intake_support::{Fixture0, function_url, prepare};
use orglink_e2e::start_reconcile;
use orglink_harness::{AwsEnv, LocalStack, Sandbox, Template};
use orglink_intake::aws::{AwsIntake, from_aws};
use orglink_reconcile::{Limits, Mode, ReconcileEvent, RunState};
use orglink_shared::aws::WorkQueue;
use orglink_shared::contract::EventKind;
use orglink_shared::http::CallLog;
use orglink_shared::sync_request::{RequestSource, SyncRequest};

/// The embedded default configuration's Salesforce org (the sandbox is started as it).
const BOUND_ORG: &str = "00D000000000001EAA";
const EMAIL: &str = "admin@example.com";
const TOKEN: &str = "sandbox-zendesk-token";
/// Linked accounts `id(n)` on organizations `ORG_BASE + n`.
const ORG_BASE: u64 = 700;

fn id(n: u64) -> String {
    orglink_sandbox::salesforce::ids::generate("001", n)
}

/// Accounts 1 and 2, each linked to its organization (key set, link written back).
fn linked_world() -> Value {
    let account = |n: u64, name: &str| {
        json!({"Id": id(n), "Name": name, "Website": format!("{}.com", name.to_lowercase()),
               "Type": "Customer - Direct", "Zendesk_Domain__c": format!("{}.com", name.to_lowercase()),
               "Zendesk_Org_ID__c": (ORG_BASE + n).to_string(), "Zendesk_Sync_Status__c": "Linked"})
    };
    let org = |n: u64, name: &str| {
        json!({"id": ORG_BASE + n, "name": name, "external_id": id(n),
               "domain_names": [format!("{}.com", name.to_lowercase())],
               "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"})
    };
    json!({
        "salesforce": {"accounts": [account(1, "Alpha"), account(2, "Bravo")]},
        "zendesk": {"organizations": [org(1, "Alpha"), org(2, "Bravo")]}
    })
}

/// The function URL in front of intake, with the test's outage and slowness knobs.
struct Front {
    intake: AwsIntake,
    aws: AwsEnv,
    prefix: String,
    /// Set while the org mirror table is gone: the first answer given ends the outage.
    outage: AtomicBool,
    /// Answer this much later than intake does (once), as a slow network would.
    late_once: std::sync::Mutex<Option<Duration>>,
}

async fn function_url_front(
    State(front): State<Arc<Front>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let headers: Vec<(&str, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?.to_string())))
        .collect();
    let out = front
        .intake
        .handle_invocation(function_url(uri.path(), &headers, &body))
        .await
        .expect("a function URL answer");
    if front.outage.swap(false, Ordering::SeqCst) {
        restore_mirror_table(&front.aws, &front.prefix).await;
    }
    let late = front.late_once.lock().unwrap().take();
    if let Some(late) = late {
        tokio::time::sleep(late).await;
    }
    let status = out["statusCode"].as_u64().expect("a status") as u16;
    (
        StatusCode::from_u16(status).expect("an HTTP status"),
        out["body"].as_str().unwrap_or_default().to_string(),
    )
}

/// Recreates the org mirror table from the template's own definition (only that resource).
async fn restore_mirror_table(aws: &AwsEnv, prefix: &str) {
    let text = std::fs::read_to_string(orglink_harness::repo_root().join("infra/template.yaml"))
        .expect("read infra/template.yaml");
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("the template is YAML");
    let table = doc["Resources"]["OrgMirrorTable"].clone();
    assert!(!table.is_null(), "the template defines OrgMirrorTable");
    let mut resources = serde_yaml::Mapping::new();
    resources.insert("OrgMirrorTable".into(), table);
    doc["Resources"] = serde_yaml::Value::Mapping(resources);
    if let Some(m) = doc.as_mapping_mut() {
        m.remove("Outputs");
    }
    let template = Template::parse(&serde_yaml::to_string(&doc).unwrap()).unwrap();
    let overrides = BTreeMap::from([("Prefix".to_string(), prefix.to_string())]);
    LocalStack::create_from(aws, &template, &overrides)
        .await
        .unwrap_or_else(|e| panic!("recreate the org mirror table: {e}"));
}

struct World {
    p: Fixture0,
    front: Arc<Front>,
    sandbox: Sandbox,
    http: reqwest::Client,
}

impl World {
    /// A stack on moto, intake behind its function URL front, and the simulator delivering
    /// every organization event there, signed with intake's webhook secret.
    async fn start(label: &str, retries: Value) -> World {
        let (p, env) = prepare(label).await;
        let intake = from_aws(p.aws.sdk_config(), &env)
            .await
            .expect("intake starts");
        let front = Arc::new(Front {
            intake,
            aws: p.aws.clone(),
            prefix: p.stack.parameters["Prefix"].clone(),
            outage: AtomicBool::new(false),
            late_once: std::sync::Mutex::new(None),
        });
        let app = axum::Router::new()
            .route("/zendesk", axum::routing::post(function_url_front))
            .with_state(front.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/zendesk", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let dir = std::env::temp_dir().join(format!("orglink-e2e-{}", front.prefix));
        std::fs::create_dir_all(&dir).unwrap();
        let scenario = dir.join("scenario.json");
        std::fs::write(&scenario, serde_json::to_vec(&linked_world()).unwrap()).unwrap();
        let sandbox = Sandbox::start_with(
            Some(&scenario),
            &[
                "--salesforce-org-id",
                BOUND_ORG,
                "--zendesk-webhook-url",
                &url,
                "--zendesk-webhook-secret",
                &p.zd_secret,
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let w = World {
            p,
            front,
            sandbox,
            http: reqwest::Client::new(),
        };
        w.switches(retries).await;
        w
    }

    async fn switches(&self, patch: Value) {
        let r = self
            .http
            .post(format!("{}/_sandbox/switches", self.sandbox.zendesk))
            .json(&patch)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    /// Takes the org mirror table away; the front's first answer brings it back.
    async fn mirror_outage(&self) {
        let table = self.p.stack.names().unwrap().org_mirror_table;
        self.p
            .aws
            .dynamodb()
            .delete_table()
            .table_name(&table)
            .send()
            .await
            .expect("delete the org mirror table");
        self.front.outage.store(true, Ordering::SeqCst);
    }

    /// A person deletes account `n`'s organization in Zendesk.
    async fn delete_org(&self, n: u64) {
        let r = self
            .http
            .delete(format!(
                "{}/api/v2/organizations/{}.json",
                self.sandbox.zendesk,
                ORG_BASE + n
            ))
            .basic_auth(format!("{EMAIL}/token"), Some(TOKEN))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    }

    /// The delivery attempts logged so far, once `settled` holds of them (the simulator's
    /// log says when an invocation is over: its last attempt has no `retry_in_ms`).
    async fn attempts(&self, settled: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut last = Vec::new();
        for _ in 0..300 {
            let log: Value = self
                .http
                .get(format!(
                    "{}/_sandbox/webhook_deliveries",
                    self.sandbox.zendesk
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            last = log["deliveries"].as_array().cloned().unwrap_or_default();
            if settled(&last) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the deliveries never settled: {last:#?}");
    }

    /// Every message on the sync queue, taken off it.
    async fn drain(&self) -> Vec<SyncRequest> {
        let queue = &self.front.intake.queue;
        let mut out = Vec::new();
        loop {
            let got = queue.receive(10, Some(120)).await.expect("receive");
            if got.is_empty() {
                return out;
            }
            for m in got {
                queue.delete(&m.receipt_handle).await.expect("delete");
                out.push(SyncRequest::from_body(&m.body).expect("a sync request body"));
            }
        }
    }

    /// One full reconcile run to the end, through the production wiring.
    async fn full_reconcile(&self) -> RunState {
        start_reconcile(
            &self.p.aws,
            &self.p.stack.names().unwrap(),
            &self.sandbox,
            json!({}),
            CallLog::new(),
        )
        .await
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .expect("the run")
        .summary
        .state
    }
}

fn statuses(attempts: &[Value]) -> Vec<Value> {
    attempts
        .iter()
        .map(|a| a["outcome"]["status"].clone())
        .collect()
}

/// The invocation is over: some attempt was its last.
fn over(n: usize) -> impl Fn(&[Value]) -> bool {
    move |log: &[Value]| log.iter().filter(|a| a["retry_in_ms"].is_null()).count() >= n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_deliveries_are_taken_once_when_zendesk_retries() {
    let w = World::start(
        "webhook-retries-on",
        json!({"webhook_retries": true, "webhook_retry_delays_ms": [300, 300, 300]}),
    )
    .await;

    // 1. The org mirror is down when the deletion arrives: 503, then the retry is taken.
    w.mirror_outage().await;
    w.delete_org(1).await;
    let log = w.attempts(over(1)).await;
    assert_eq!(statuses(&log), [json!(503), json!(202)], "{log:#?}");
    assert_eq!(
        log[0]["invocation_id"], log[1]["invocation_id"],
        "one invocation"
    );
    assert_eq!(log[0]["event_id"], log[1]["event_id"], "the same event");
    assert_eq!(log[0]["type"], "zen:event-type:organization.deleted");
    let queued = w.drain().await;
    assert_eq!(queued.len(), 1, "{queued:#?}");
    let repair = &queued[0];
    assert_eq!(repair.account_id.as_str(), id(1));
    assert_eq!(repair.kind, EventKind::ReconcileRepair);
    assert_eq!(repair.source, RequestSource::ZendeskWebhook);
    assert_eq!(repair.org_id.map(|o| o.get()), Some(ORG_BASE + 1));
    assert_eq!(
        repair.event_id,
        format!("zd:{}", log[0]["event_id"].as_str().unwrap()),
        "the retry carries the event's own id"
    );

    // 2. Intake takes the next deletion, but its answer comes back after the delivery
    // timeout: Zendesk sees a failure and delivers it again. Still one message.
    w.switches(json!({"webhook_timeout_ms": 2_000})).await;
    *w.front.late_once.lock().unwrap() = Some(Duration::from_millis(3_000));
    w.delete_org(2).await;
    let log = w.attempts(over(2)).await;
    let second: Vec<Value> = log[2..].to_vec();
    assert_eq!(second[0]["outcome"]["timed_out"], true, "{second:#?}");
    assert_eq!(
        second.last().unwrap()["outcome"]["status"],
        202,
        "{second:#?}"
    );
    assert!(
        second
            .iter()
            .all(|a| a["event_id"] == second[0]["event_id"])
    );
    let queued = w.drain().await;
    assert_eq!(
        queued
            .iter()
            .map(|q| (q.account_id.to_string(), q.event_id.clone()))
            .collect::<Vec<_>>(),
        [(
            id(2),
            format!("zd:{}", second[0]["event_id"].as_str().unwrap())
        )],
        "delivered {} times, enqueued once",
        second.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deletion_waits_for_the_next_full_reconcile_when_zendesk_does_not_retry() {
    let w = World::start(
        "webhook-retries-off",
        json!({"webhook_retries": false, "webhook_retry_delays_ms": [300, 300, 300]}),
    )
    .await;
    w.mirror_outage().await;
    w.delete_org(1).await;
    let log = w.attempts(over(1)).await;
    assert_eq!(statuses(&log), [json!(503)], "{log:#?}");
    assert_eq!(log[0]["retry_in_ms"], Value::Null, "not retried");
    assert!(
        w.drain().await.is_empty(),
        "the webhook's event is lost: nothing was enqueued"
    );
    // Later deliveries are taken again: the outage is over.
    assert!(!w.front.outage.load(Ordering::SeqCst));

    // The nightly full run sees account 1's stored organization gone and queues the repair.
    assert_eq!(w.full_reconcile().await, RunState::Complete);
    let queued = w.drain().await;
    let repairs: Vec<&SyncRequest> = queued
        .iter()
        .filter(|q| q.account_id.as_str() == id(1))
        .collect();
    assert_eq!(repairs.len(), 1, "{queued:#?}");
    assert_eq!(repairs[0].kind, EventKind::ReconcileRepair);
    assert_eq!(repairs[0].source, RequestSource::Reconcile);
    let note = repairs[0].note.clone().unwrap_or_default();
    assert!(note.contains("stored_org_gone"), "{note}");
    assert!(
        queued.iter().all(|q| q.account_id.as_str() != id(2)),
        "account 2's link is intact: {queued:#?}"
    );
}
