//! What the operator decided, and what the operator is told: a manual request naming an
//! organization (review's "link to this organization"), the review library's lists (shared
//! domains, ignored accounts), the `RateBudgetExhausted` metric, and an invocation that never
//! runs into its deadline.

mod support;

use orglink_shared::aws::ReceivedMessage;
use orglink_shared::aws::mirror::MirroredOrg;
use orglink_shared::aws::{LinkStore, OrgMirror, ReviewLists};
use orglink_shared::contract::EventKind;
use orglink_shared::domain::Domain;
use orglink_shared::http::System;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::sync_request::{RequestSource, SyncRequest};
use orglink_sync_worker::batch::MessageFate;
use orglink_sync_worker::runner::sqs_event;
use orglink_sync_worker::sync::{MessageResult, now_ms};
use orglink_sync_worker::{Action, Outcome};
use serde_json::json;
use support::*;

const A: &str = "001SB0000000001YAA";
const B: &str = "001SB0000000002YAA";

fn done(r: MessageResult) -> Outcome {
    match r {
        MessageResult::Done(o) => o,
        other => panic!("expected a finished message, got {other:?}"),
    }
}

/// What `Review::resolve` queues for "link to this organization".
fn operator_link(account: &str, org: u64, event_id: &str) -> SyncRequest {
    SyncRequest {
        source: RequestSource::Operator,
        org_id: Some(OrgId::new(org).unwrap()),
        note: Some("ana resolved exception x: link to organization".into()),
        ..request(account, EventKind::Manual, event_id)
    }
}

async fn mirror(env: &Env, id: u64, name: &str, domain: &str) {
    env.worker
        .stores
        .mirror
        .upsert(&MirroredOrg::new(
            OrgId::new(id).unwrap(),
            name,
            None,
            [domain],
            None,
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_manual_request_links_the_organization_the_operator_chose() {
    let env = Env::start(json!({
        "salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]},
        "zendesk": {"organizations": [
            {"id": 500, "name": "Acme old", "external_id": null, "domain_names": ["acmewidgets.com"]},
            {"id": 501, "name": "Acme support", "external_id": null, "domain_names": ["acmewidgets.com"]}
        ]}
    }))
    .await;
    mirror(&env, 500, "Acme old", "acmewidgets.com").await;
    mirror(&env, 501, "Acme support", "acmewidgets.com").await;
    // Left to the rules, two keyless orgs on the domain are a person's decision.
    let first = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    assert!(matches!(first, Outcome::Exception { .. }), "{first:?}");
    assert!(env.account(A).await["Zendesk_Org_ID__c"].is_null());

    let out = done(env.sync(&operator_link(A, 501, "review:1")).await);
    assert!(
        matches!(out, Outcome::Succeeded { org, action: Action::Linked, .. } if org.get() == 501),
        "{out:?}"
    );
    let orgs = env.admin.orgs().await;
    let by_id = |id: u64| orgs.iter().find(|o| o["id"] == id).unwrap().clone();
    assert_eq!(by_id(501)["external_id"], A);
    assert!(by_id(500)["external_id"].is_null(), "the other org is left");
    assert_eq!(env.account(A).await["Zendesk_Org_ID__c"], "501");
    // The decision says the operator chose it.
    let record = env
        .worker
        .stores
        .links
        .get(&AccountId::parse(A).unwrap())
        .await
        .unwrap()
        .unwrap();
    let decision = record.last_decision.expect("a decision");
    assert_eq!(
        decision.evidence.get("operator_chose"),
        Some(&["501".to_string()][..])
    );
}

#[tokio::test]
async fn the_operator_cannot_take_another_accounts_organization() {
    let env = Env::start(json!({
        "salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com"), customer(B, "Beta", "betaparts.com")]},
        "zendesk": {"organizations": [
            {"id": 600, "name": "Beta", "external_id": B, "domain_names": ["betaparts.com"]}
        ]}
    }))
    .await;
    let out = done(env.sync(&operator_link(A, 600, "review:2")).await);
    assert!(matches!(out, Outcome::Exception { .. }), "{out:?}");
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1, "nothing created");
    assert_eq!(orgs[0]["external_id"], B, "B keeps its organization");
    assert_ne!(env.account(A).await["Zendesk_Org_ID__c"], "600");

    // An organization gone from Zendesk: ignored, with the reason.
    let gone = done(env.sync(&operator_link(A, 999, "review:3")).await);
    let Outcome::Ignored { reason } = gone else {
        panic!("{gone:?}")
    };
    assert!(
        reason.contains("999") && reason.contains("gone"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_account_on_the_ignored_list_is_ignored_without_a_call() {
    let env =
        Env::start(json!({"salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]}}))
            .await;
    env.worker
        .stores
        .lists
        .add_ignored_account(&AccountId::parse(A).unwrap())
        .await
        .unwrap();
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    let Outcome::Ignored { reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("ignored list"), "{reason}");
    assert_eq!(env.count(System::Salesforce, "sf.query_all"), 0);
    assert!(env.admin.orgs().await.is_empty());
}

#[tokio::test]
async fn a_shared_domain_is_no_reason_to_link() {
    let env = Env::start(json!({
        "salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]},
        "zendesk": {"organizations": [
            {"id": 500, "name": "Hosting customers", "external_id": null, "domain_names": ["acmewidgets.com"]}
        ]}
    }))
    .await;
    mirror(&env, 500, "Hosting customers", "acmewidgets.com").await;
    env.worker
        .stores
        .lists
        .add_shared_domain(&Domain::parse("acmewidgets.com").unwrap())
        .await
        .unwrap();
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    let Outcome::Succeeded { org, action, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(action, Action::Created, "not linked by the shared domain");
    assert_ne!(org.get(), 500);
    let orgs = env.admin.orgs().await;
    let created = orgs.iter().find(|o| o["id"] == org.get()).unwrap();
    assert_eq!(created["external_id"], A);
    assert!(
        !created["domain_names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "acmewidgets.com"),
        "the shared domain goes onto no organization: {created}"
    );
    assert!(orgs.iter().find(|o| o["id"] == 500).unwrap()["external_id"].is_null());
}

fn received(id: &str, group: &str, body: String) -> ReceivedMessage {
    ReceivedMessage {
        message_id: id.into(),
        receipt_handle: format!("rh-{id}"),
        body,
        group_id: Some(group.into()),
        dedup_id: None,
        receive_count: 1,
    }
}

fn body(account: &str, event: &str) -> String {
    serde_json::to_string(&request(account, EventKind::ClosedWon, event)).unwrap()
}

#[tokio::test]
async fn calls_the_budget_refuses_are_counted_in_the_rate_budget_metric() {
    // Zendesk at 6 calls a minute: one token, the next ten seconds away, longer than the
    // clients wait, so the sync's second Zendesk call is refused and the message retried.
    let env = Env::start_with_budget(
        json!({"salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]}}),
        settings(),
        1_000_000,
        6,
    )
    .await;
    let resp = env
        .worker
        .handle_batch(
            sqs_event(&[received("m1", A, body(A, "e-1"))]),
            now_ms() + 30_000,
        )
        .await
        .unwrap();
    assert_eq!(resp.batch_item_failures.len(), 1, "retried later");
    let lines = env.metric_lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 1, "one line per invocation: {lines:?}");
    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Namespace"], "orglink");
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Deployment"]])
    );
    assert!(line["RateBudgetExhausted"].as_u64().unwrap() >= 1, "{line}");

    // An invocation the budget refused nothing: no line.
    env.metric_lines.lock().unwrap().clear();
    env.worker
        .handle_batch(sqs_event(&[]), now_ms() + 30_000)
        .await
        .unwrap();
    assert!(env.metric_lines.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_invocation_near_its_deadline_leaves_messages_for_later_instead_of_timing_out() {
    // Zendesk at 15 calls a minute: a burst of two, then four seconds a token — a wait the
    // client accepts, longer than what is left of this invocation.
    let env = Env::start_with_budget(
        json!({"salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com"), customer(B, "Beta", "betaparts.com")]}}),
        settings(),
        1_000_000,
        15,
    )
    .await;
    let event = sqs_event(&[
        received("m1", A, body(A, "a-1")),
        received("m2", B, body(B, "b-1")),
    ]);
    let (resp, fates) = env
        .worker
        .handle_batch_with_fates(event, now_ms() + 3_000)
        .await
        .expect("no crash: the invocation returned before its deadline");
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["m1", "m2"], "{fates:?}");
    assert!(
        fates
            .iter()
            .all(|f| matches!(f, MessageFate::RetryLater { .. })),
        "{fates:?}"
    );
    assert!(env.admin.orgs().await.is_empty());

    // Already past the point of starting: nothing is started, no call is made.
    let before = env.count(System::Salesforce, "sf.query_all");
    let (resp, _) = env
        .worker
        .handle_batch_with_fates(sqs_event(&[received("m3", B, body(B, "b-2"))]), now_ms())
        .await
        .unwrap();
    assert_eq!(resp.batch_item_failures.len(), 1);
    assert_eq!(env.count(System::Salesforce, "sf.query_all"), before);
}
