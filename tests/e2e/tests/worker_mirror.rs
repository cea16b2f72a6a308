//! The chaos run's finding, end to end (docs/reliability.md, "an empty organization mirror"):
//! workers started on an EMPTY org mirror, never pre-filled, before any reconcile. Accounts
//! whose organization would be found (or refused) by domain are held — nothing created, the
//! reason in the link record — while a key match links. A full reconcile (the real function on
//! moto, against the sandbox) fills the mirror and marks it; the held accounts then end as
//! resolution says: legacy orgs linked, ambiguity and collision as rows, one new org for the
//! new customer, and no organization duplicated.

mod worker_support;

use std::time::Duration;

use serde_json::{Value, json};

use orglink_e2e::start_reconcile;
use orglink_reconcile::{Limits, Mode, ReconcileEvent, RunState};
use orglink_shared::aws::{ExceptionFilter, ExceptionStatus, ExceptionStore, LinkStore, OrgMirror};
use orglink_shared::contract::EventKind;
use orglink_shared::http::CallLog;
use orglink_shared::ids::AccountId;
use worker_support::*;

fn linked(id: &str, name: &str, website: &str, org: u64) -> Value {
    let mut a = customer(id, name, website);
    a["Zendesk_Org_ID__c"] = json!(org.to_string());
    a
}

fn org(id: u64, name: &str, key: Option<&str>, domains: &[&str]) -> Value {
    json!({"id": id, "name": name, "external_id": key, "domain_names": domains})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_mirror_holds_domain_decisions_until_a_full_reconcile_fills_it() {
    let legacy = account(1); // its keyless legacy org carries its domain
    let gone = account(2); // stored id of a deleted org; a keyless org carries its domain
    let ambiguous = account(3); // two keyless orgs carry its domain
    let collision = account(4); // its domain is on another account's org
    let other = account(5); // that other account, linked
    let new = account(6); // nothing in Zendesk
    let key_holder = account(7); // an org already carries its key
    let w = World::start(
        "worker-mirror",
        json!({
            "salesforce": {"accounts": [
                customer(&legacy, "Legacy Buyer", "https://www.legacy-buyer.com"),
                linked(&gone, "Gone Buyer", "gone-buyer.com", 999),
                customer(&ambiguous, "Ambiguous Buyer", "ambiguous-buyer.com"),
                customer(&collision, "Colliding Buyer", "shared-buyer.com"),
                linked(&other, "Other Buyer", "shared-buyer.com", 504),
                customer(&new, "New Buyer", "new-buyer.com"),
                customer(&key_holder, "Keyed Buyer", "keyed-buyer.com")
            ]},
            "zendesk": {"organizations": [
                org(500, "Legacy Buyer (old)", None, &["legacy-buyer.com"]),
                org(501, "Gone Buyer (old)", None, &["gone-buyer.com"]),
                org(502, "Ambiguous East", None, &["ambiguous-buyer.com"]),
                org(503, "Ambiguous West", None, &["ambiguous-buyer.com"]),
                org(504, "Other Buyer", Some(&other), &["shared-buyer.com"]),
                org(505, "Keyed Buyer", Some(&key_holder), &[])
            ]}
        }),
    )
    .await;
    let before = w.admin.orgs().await.len();
    assert_eq!(w.worker.stores.mirror.filled().await.unwrap(), None);
    assert!(w.worker.stores.mirror.all().await.unwrap().is_empty());

    let held = [&legacy, &gone, &ambiguous, &collision, &new];
    for (n, id) in held.iter().chain([&&key_holder]).enumerate() {
        w.enqueue(&request(id, EventKind::ClosedWon, &format!("ev-{n}")))
            .await;
    }
    let failures = |id: &str| {
        let links = &w.worker.stores.links;
        let id = AccountId::parse(id).unwrap();
        async move {
            links
                .get(&id)
                .await
                .unwrap()
                .map(|r| r.failures)
                .unwrap_or_default()
        }
    };
    // Until the key match is linked and every held account has been retried at least once.
    let report = w
        .run_until(2, Duration::from_secs(60), || async {
            let mut all = w.account(&key_holder).await["Zendesk_Org_ID__c"] == "505";
            for id in held {
                all &= failures(id).await.count >= 2;
            }
            all
        })
        .await;
    assert!(report.finished, "{report:?}");

    // Nothing created, nothing keyed by a guess; the reason is on record for each.
    let orgs = w.admin.orgs().await;
    assert_eq!(orgs.len(), before, "no organization created: {orgs:#?}");
    for id in held {
        assert!(keyed(&orgs, id).is_empty(), "{id} keyed an org: {orgs:#?}");
        let f = failures(id).await;
        assert!(
            f.last_error
                .as_deref()
                .is_some_and(|e| e.contains("organization mirror not yet filled")),
            "{id}: {f:?}"
        );
    }
    assert_eq!(
        w.account(&key_holder).await["Zendesk_Sync_Status__c"],
        "Linked"
    );

    // The first full reconcile: the real function over the stack's tables and queue.
    let run = start_reconcile(
        &w.aws,
        &w.stack.names().unwrap(),
        &w.sandbox,
        json!({}),
        CallLog::new(),
    )
    .await
    .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
    .await
    .expect("the reconcile run");
    assert_eq!(run.summary.state, RunState::Complete);
    assert!(w.worker.stores.mirror.filled().await.unwrap().is_some());

    // The held messages (and reconcile's repairs) now resolve against the full mirror.
    let report = w
        .run_until(2, Duration::from_secs(90), || async {
            w.queue_depth().await == (0, 0)
        })
        .await;
    assert!(report.finished, "{report:?}");
    assert_eq!(w.dlq_depth().await, 0);
    let orgs = w.admin.orgs().await;
    let org_of = |id: &str| {
        let k = keyed(&orgs, id);
        assert!(k.len() <= 1, "{id} has {} orgs", k.len());
        k.first().map(|o| o["id"].as_u64().unwrap())
    };
    assert_eq!(org_of(&legacy), Some(500));
    assert_eq!(org_of(&gone), Some(501));
    assert_eq!(org_of(&key_holder), Some(505));
    assert_eq!(org_of(&ambiguous), None);
    assert_eq!(org_of(&collision), None);
    let created = org_of(&new).expect("the new customer's org");
    assert_eq!(orgs.len(), before + 1, "one new org only: {orgs:#?}");
    for (id, want) in [(&legacy, 500), (&gone, 501), (&new, created)] {
        assert_eq!(w.account(id).await["Zendesk_Org_ID__c"], want.to_string());
    }
    let rows = w
        .worker
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    let kinds_for = |id: &str| -> Vec<&str> {
        rows.iter()
            .filter(|r| r.finding.accounts.iter().any(|a| a.as_str() == id))
            .map(|r| r.kind().as_str())
            .collect()
    };
    assert_eq!(kinds_for(&ambiguous), ["ambiguous_domain"]);
    assert_eq!(kinds_for(&collision), ["domain_collision"]);
    assert!(
        rows.iter()
            .all(|r| r.kind().as_str() != "mirror_not_filled"),
        "{rows:#?}"
    );
}
