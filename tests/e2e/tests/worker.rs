//! The sync worker end to end: the real handler and AWS adapters on moto (stack from the
//! template), the sandbox's simulators, messages through the real SQS FIFO queue, and the local
//! runner playing Lambda's event source mapping with several workers at once.

mod worker_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use orglink_shared::aws::LinkStore;
use orglink_shared::aws::budget::{BucketConfig, BudgetStore, DynamoBudget, Take};
use orglink_shared::contract::EventKind;
use orglink_shared::ids::AccountId;
use orglink_sync_worker::batch::MessageFate;
use orglink_sync_worker::sync::now_ms;
use orglink_sync_worker::{CrashPoint, WorkerSettings};
use worker_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_kind_links_end_to_end_and_every_message_is_accounted_for() {
    let kinds = EventKind::ALL;
    let ids: Vec<String> = (1..=kinds.len() as u64).map(account).collect();
    let prospect = account(20);
    let mut accounts: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            customer(
                id,
                &format!("Customer {i}"),
                &format!("https://www.customer{i}-widgets.com"),
            )
        })
        .collect();
    accounts.push(json!({"Id": prospect, "Name": "Prospect", "Website": "prospect-widgets.com", "Type": "Prospect"}));
    let w = World::start(
        "worker-kinds",
        json!({"salesforce": {"accounts": accounts}}),
    )
    .await;
    // As a first reconcile leaves it (without it, creates are held).
    w.fill_mirror().await;

    let mut sent = 0;
    for (id, kind) in ids.iter().zip(kinds) {
        w.enqueue(&request(id, kind, &format!("ev-{kind}"))).await;
        sent += 1;
    }
    // A duplicate delivery: the same request again (a retried intake past SQS's dedup window
    // looks like this: same body, new deduplication id).
    let dup = request(&ids[0], EventKind::ClosedWon, "ev-dup");
    w.enqueue(&dup).await;
    let mut again = dup.to_message();
    again.event_id = "ev-dup-redelivered".into();
    orglink_shared::aws::WorkQueue::send(&*w.queue, &again)
        .await
        .unwrap();
    sent += 2;
    // Not eligible: ignored with a reason. Poison: a body that is not a sync request.
    w.enqueue(&request(&prospect, EventKind::NameChanged, "ev-prospect"))
        .await;
    w.enqueue_poison(&ids[1], "{\"this is\": \"not a sync request\"}")
        .await;
    sent += 2;

    let report = w
        .run_until(2, Duration::from_secs(60), || async {
            let linked = w
                .accounts()
                .await
                .iter()
                .filter(|a| a["Zendesk_Sync_Status__c"] == "Linked")
                .count();
            linked == ids.len() && w.dlq_depth().await == 1 && w.queue_depth().await == (0, 0)
        })
        .await;
    assert!(report.finished, "did not settle: {report:?}");

    // One org per account, keyed with the 18-character id; the link written back.
    let orgs = w.admin.orgs().await;
    assert_eq!(orgs.len(), ids.len());
    for id in &ids {
        let k = keyed(&orgs, id);
        assert_eq!(k.len(), 1, "{id}");
        let acc = w.account(id).await;
        assert_eq!(acc["Zendesk_Org_ID__c"], k[0]["id"].to_string());
    }
    assert!(w.account(&prospect).await["Zendesk_Sync_Status__c"].is_null());

    // Conservation: every message ended as succeeded, coalesced, deduplicated, ignored,
    // exception, or dead letter (the poison one).
    let fates = last_fates(&report.fates);
    let mut by: BTreeMap<&str, usize> = BTreeMap::new();
    for f in fates.values() {
        let k = match f {
            MessageFate::Done { outcome, .. } => *outcome,
            MessageFate::Poison { .. } => "poison",
            other => panic!("a message did not finish: {other:?}"),
        };
        *by.entry(k).or_default() += 1;
    }
    assert_eq!(fates.len(), sent, "{by:?}");
    assert_eq!(by.get("poison"), Some(&1), "{by:?}");
    assert_eq!(by.get("ignored"), Some(&1), "{by:?}");
    // The duplicate pair: one ran, the other was deduplicated (or coalesced if it came after).
    assert_eq!(
        by.get("succeeded").copied().unwrap_or(0)
            + by.get("deduplicated").copied().unwrap_or(0)
            + by.get("coalesced").copied().unwrap_or(0),
        ids.len() + 2,
        "{by:?}"
    );
    assert!(by.contains_key("deduplicated"), "{by:?}");
    let dead = w.dead_letters().await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body.contains("not a sync request"));
    assert_only_link_fields_written(&w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_events_for_one_new_account_across_workers_give_one_org() {
    let a = account(1);
    let w = World::start(
        "worker-fifty",
        json!({"salesforce": {"accounts": [customer(&a, "Fifty", "fifty-widgets.com")]}}),
    )
    .await;
    // As a first reconcile leaves it (without it, creates are held).
    w.fill_mirror().await;
    for i in 0..50 {
        w.enqueue(&request(&a, EventKind::ClosedWon, &format!("ev-{i}")))
            .await;
    }
    // Beside the queue (which serializes one account's messages), the handler itself, called
    // concurrently with distinct messages, as a visibility timeout running out would do.
    let direct: Vec<_> = (0..6)
        .map(|i| {
            let worker = w.worker.clone();
            let req = request(&a, EventKind::ClosedWon, &format!("direct-{i}"));
            tokio::spawn(async move {
                let body = serde_json::to_string(&req).unwrap();
                worker.handle_request(&req, &body, now_ms() + 30_000).await
            })
        })
        .collect();
    let report = w
        .run_until(4, Duration::from_secs(60), || async {
            w.queue_depth().await == (0, 0)
        })
        .await;
    for d in direct {
        d.await.unwrap();
    }
    assert!(report.finished, "{report:?}");
    let orgs = w.admin.orgs().await;
    assert_eq!(orgs.len(), 1, "{orgs:?}");
    assert_eq!(keyed(&orgs, &a).len(), 1);
    assert_eq!(
        w.account(&a).await["Zendesk_Org_ID__c"],
        orgs[0]["id"].to_string()
    );
    assert_eq!(w.dlq_depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_zendesk_create_and_the_write_back_reruns_to_one_org() {
    let a = account(1);
    let mut w = World::start(
        "worker-crash",
        json!({"salesforce": {"accounts": [customer(&a, "Crashy", "crashy-widgets.com")]}}),
    )
    .await;
    // As a first reconcile leaves it (without it, creates are held).
    w.fill_mirror().await;
    let once = Arc::new(AtomicBool::new(true));
    let flag = once.clone();
    Arc::get_mut(&mut w.worker)
        .expect("not shared yet")
        .crash_hook = Some(Arc::new(move |p, _| {
        p == CrashPoint::AfterZendeskWrite && flag.swap(false, Ordering::SeqCst)
    }));
    w.enqueue(&request(&a, EventKind::ClosedWon, "ev-1")).await;
    let ids = [a.clone()];
    let report = w.run_until_linked(2, &ids, Duration::from_secs(40)).await;
    assert!(report.finished, "{report:?}");
    assert_eq!(report.crashes, 1);
    let orgs = w.admin.orgs().await;
    assert_eq!(orgs.len(), 1);
    let acc = w.account(&a).await;
    assert_eq!(acc["Zendesk_Org_ID__c"], orgs[0]["id"].to_string());
    assert_eq!(acc["Zendesk_Sync_Status__c"], "Linked");
    let record = w
        .worker
        .stores
        .links
        .get(&AccountId::parse(&a).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.org.map(|o| o.to_string()),
        Some(orgs[0]["id"].to_string())
    );
    assert_eq!(w.dlq_depth().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_storm_and_a_zendesk_outage_longer_than_any_retry_end_linked_with_an_empty_dlq() {
    let ids: Vec<String> = (1..=4).map(account).collect();
    let accounts: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            customer(
                id,
                &format!("Stormy {i}"),
                &format!("stormy{i}-widgets.com"),
            )
        })
        .collect();
    // Re-send a message before it nears the redrive count (MaxReceiveCount in the template, 10).
    let settings = WorkerSettings {
        requeue_at_receive_count: 2,
        ..fast_settings()
    };
    let w = World::start_with(
        "worker-storm",
        json!({"salesforce": {"accounts": accounts}}),
        settings,
    )
    .await;
    // As a first reconcile leaves it (without it, creates are held).
    w.fill_mirror().await;
    // The outage (every Zendesk call 503) lasts longer than any single backoff (1–2 s here,
    // minutes in production: docs/worker.md), then 429s keep coming at random.
    w.admin
        .zd_post(
            "faults",
            json!({"seed": 7, "outage_ms": 8000, "default": {"rate_limit_429": 0.3}}),
        )
        .await;
    for (i, id) in ids.iter().enumerate() {
        w.enqueue(&request(id, EventKind::ClosedWon, &format!("ev-{i}")))
            .await;
    }
    let report = w.run_until_linked(2, &ids, Duration::from_secs(90)).await;
    assert!(report.finished, "{report:?}");
    let retried = report
        .fates
        .iter()
        .filter(|f| matches!(f, MessageFate::RetryLater { .. }))
        .count();
    let requeued = report
        .fates
        .iter()
        .filter(|f| matches!(f, MessageFate::Requeued { .. }))
        .count();
    assert!(retried > 0, "the outage caused retries");
    assert!(
        requeued > 0,
        "long-retried messages were sent again fresh: {report:?}"
    );
    let orgs = w.admin.orgs().await;
    assert_eq!(orgs.len(), ids.len());
    for id in &ids {
        assert_eq!(keyed(&orgs, id).len(), 1);
        assert_eq!(w.account(id).await["Zendesk_Sync_Status__c"], "Linked");
    }
    assert_eq!(
        w.dlq_depth().await,
        0,
        "an outage never fills the dead-letter queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failures_and_a_blocked_write_back_end_as_exceptions() {
    let blocked = account(1);
    let refused = account(2);
    let w = World::start(
        "worker-permanent",
        json!({"salesforce": {
            "accounts": [customer(&blocked, "Blocked", "blocked-widgets.com"), customer(&refused, "Refused", "refused-widgets.com")],
            "switches": {"validation_rules": {blocked.clone(): "Accounts under legal review cannot be edited"}}
        }}),
    )
    .await;
    // As a first reconcile leaves it (without it, creates are held).
    w.fill_mirror().await;
    // A picklist without orglink's values: Salesforce refuses the status for good.
    w.admin
        .sf_post(
            "switches",
            json!({"sync_status_values": ["Something Else"]}),
        )
        .await;
    w.enqueue(&request(&blocked, EventKind::ClosedWon, "ev-b"))
        .await;
    w.enqueue(&request(&refused, EventKind::ClosedWon, "ev-r"))
        .await;
    let report = w
        .run_until(2, Duration::from_secs(40), || async {
            w.queue_depth().await == (0, 0)
        })
        .await;
    assert!(report.finished, "{report:?}");
    use orglink_shared::aws::{ExceptionFilter, ExceptionStatus, ExceptionStore};
    use orglink_shared::exceptions::ExceptionKind;
    let rows = w
        .worker
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    for id in [&blocked, &refused] {
        let row = rows
            .iter()
            .find(|r| r.finding.accounts.iter().any(|a| a.as_str() == id.as_str()))
            .unwrap_or_else(|| panic!("no exception for {id}: {rows:?}"));
        assert_eq!(row.kind(), ExceptionKind::WriteBackBlocked);
    }
    assert_eq!(w.dlq_depth().await, 0);
    // Zendesk holds the keyed orgs, so fixing Salesforce and syncing again links them.
    assert_eq!(w.admin.orgs().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_whose_domains_sit_on_one_legacy_org_never_both_take_it() {
    let a = account(1);
    let b = account(2);
    let w = World::start(
        "worker-legacy",
        json!({
            "salesforce": {"accounts": [customer(&a, "Legacy A", "legacy-widgets.com"), customer(&b, "Legacy B", "https://shop.legacy-widgets.com")]},
            "zendesk": {"organizations": [{"id": 500, "name": "Legacy Widgets", "external_id": null, "domain_names": ["legacy-widgets.com"]}]}
        }),
    )
    .await;
    // As a first reconcile leaves it (without it, creates are held).
    w.fill_mirror().await;
    use orglink_shared::aws::OrgMirror;
    use orglink_shared::aws::mirror::MirroredOrg;
    let legacy = orglink_shared::ids::OrgId::new(500).unwrap();
    w.worker
        .stores
        .mirror
        .upsert(&MirroredOrg::new(
            legacy,
            "Legacy Widgets",
            None,
            ["legacy-widgets.com"],
            None,
        ))
        .await
        .unwrap();
    // Two groups: the two accounts run on two workers at once.
    w.enqueue(&request(&a, EventKind::ClosedWon, "ev-a")).await;
    w.enqueue(&request(&b, EventKind::ClosedWon, "ev-b")).await;
    let ids = [a.clone(), b.clone()];
    let report = w.run_until_linked(2, &ids, Duration::from_secs(40)).await;
    assert!(report.finished, "{report:?}");
    let orgs = w.admin.orgs().await;
    assert_eq!(orgs.len(), 1, "nothing created: {orgs:?}");
    let key = orgs[0]["external_id"]
        .as_str()
        .expect("the legacy org was keyed")
        .to_string();
    assert!(key == a || key == b);
    let (winner, loser) = if key == a { (&a, &b) } else { (&b, &a) };
    assert_eq!(w.account(winner).await["Zendesk_Org_ID__c"], "500");
    let l = w.account(loser).await;
    assert!(l["Zendesk_Org_ID__c"].is_null());
    assert_eq!(l["Zendesk_Sync_Status__c"], "Pending Review");
    use orglink_shared::aws::{ExceptionFilter, ExceptionStatus, ExceptionStore};
    let rows = w
        .worker
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        rows[0].kind(),
        orglink_shared::exceptions::ExceptionKind::DomainCollision
    );
    assert!(
        rows[0]
            .finding
            .accounts
            .iter()
            .any(|x| x.as_str() == loser.as_str())
    );
}

/// Two workers' processes, each with its own `DynamoBudget` (and so its own memory of the
/// buckets' last state, which spares the read before each take): a take computed from a
/// stale memory must never be granted.
#[tokio::test]
async fn separate_dynamodb_budgets_never_spend_the_same_tokens() {
    let (aws, stack) = orglink_harness::moto_stack("budgetmemory").await;
    let names = stack.names().unwrap();
    let a = DynamoBudget::new(aws.dynamodb(), names.rate_budget_table.clone());
    let b = DynamoBudget::new(aws.dynamodb(), names.rate_budget_table);
    let cfg = BucketConfig::new(10, 1.0).unwrap();
    // Each remembers the bucket after its first take; every later take by one finds the
    // other's write first. At one instant (no refill) exactly the capacity is granted.
    let mut granted = 0;
    for i in 0..20 {
        let who = if i % 2 == 0 { &a } else { &b };
        if let Take::Granted { remaining } = who.take("zendesk", 1, &cfg, 7_000).await.unwrap() {
            granted += 1;
            assert_eq!(remaining, 10 - granted, "take {i} saw the other's spending");
        }
    }
    assert_eq!(granted, 10);
    // A 429 recorded by one pauses the other, whose memory predates it.
    assert!(matches!(
        b.take("salesforce", 1, &cfg, 7_000).await.unwrap(),
        Take::Granted { remaining: 9 }
    ));
    a.restrict("salesforce", &cfg, 0, Some(37_000), 7_000)
        .await
        .unwrap();
    match b.take("salesforce", 1, &cfg, 8_000).await.unwrap() {
        Take::Wait { ms } => assert!(ms >= 29_000, "paused until 37 s, waited {ms} ms"),
        other => panic!("granted through another process's pause: {other:?}"),
    }
}

/// A keyless org carrying a domain that another account names in `Zendesk_Org_ID__c` (a legacy
/// link, not yet synced, so not claimed) is never linked by domain, whichever account runs
/// first: Legacy-first on one org, domain-first on another, on DynamoDB claims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_link_in_salesforce_keeps_its_org_from_a_domain_link_in_either_order() {
    // Pair 1 (org 500): the domain account runs first. Pair 2 (org 600): the legacy one does.
    let (legacy1, domain1, legacy2, domain2) = (account(1), account(2), account(3), account(4));
    let stored = |id: &str, name: &str, website: &str, org: &str| json!({"Id": id, "Name": name, "Website": website, "Type": "Customer - Direct", "Zendesk_Org_ID__c": org});
    let w = World::start(
        "worker-legacy-stored",
        json!({
            "salesforce": {"accounts": [
                stored(&legacy1, "Acme", "acme-widgets.com", "500"),
                customer(&domain1, "Acme Europe", "https://acme-widgets.com/eu"),
                stored(&legacy2, "Beta", "beta-widgets.com", "600"),
                customer(&domain2, "Beta Europe", "https://beta-widgets.com/eu"),
            ]},
            "zendesk": {"organizations": [
                {"id": 500, "name": "Acme legacy", "external_id": null, "domain_names": ["acme-widgets.com"]},
                {"id": 600, "name": "Beta legacy", "external_id": null, "domain_names": ["beta-widgets.com"]}
            ]}
        }),
    )
    .await;
    w.fill_mirror().await;
    w.enqueue(&request(&domain1, EventKind::ClosedWon, "ev-d1"))
        .await;
    w.enqueue(&request(&legacy2, EventKind::ClosedWon, "ev-l2"))
        .await;
    let first = [domain1.clone(), legacy2.clone()];
    let report = w.run_until_linked(2, &first, Duration::from_secs(40)).await;
    assert!(report.finished, "{report:?}");
    w.enqueue(&request(&legacy1, EventKind::ClosedWon, "ev-l1"))
        .await;
    w.enqueue(&request(&domain2, EventKind::ClosedWon, "ev-d2"))
        .await;
    let all = [
        domain1.clone(),
        legacy2.clone(),
        legacy1.clone(),
        domain2.clone(),
    ];
    let report = w.run_until_linked(2, &all, Duration::from_secs(40)).await;
    assert!(report.finished, "{report:?}");

    let orgs = w.admin.orgs().await;
    assert_eq!(orgs.len(), 2, "nothing created: {orgs:?}");
    use orglink_shared::aws::{ExceptionFilter, ExceptionStatus, ExceptionStore};
    let rows = w
        .worker
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    for (legacy, domain, org) in [(&legacy1, &domain1, 500), (&legacy2, &domain2, 600)] {
        let o = orgs.iter().find(|o| o["id"] == org).unwrap();
        assert_eq!(o["external_id"], legacy.as_str(), "org {org}");
        let l = w.account(legacy).await;
        assert_eq!(l["Zendesk_Org_ID__c"], org.to_string());
        assert_eq!(l["Zendesk_Sync_Status__c"], "Linked");
        let d = w.account(domain).await;
        assert!(d["Zendesk_Org_ID__c"].is_null(), "org {org}: {d}");
        assert_eq!(d["Zendesk_Sync_Status__c"], "Pending Review");
        let row = rows
            .iter()
            .find(|r| r.finding.accounts.iter().any(|a| a.as_str() == domain))
            .unwrap_or_else(|| panic!("no exception for {domain}: {rows:?}"));
        assert_eq!(
            row.kind(),
            orglink_shared::exceptions::ExceptionKind::DomainCollision
        );
    }
    // Not two accounts naming one org in Salesforce.
    let named: Vec<String> = w
        .accounts()
        .await
        .iter()
        .filter_map(|a| a["Zendesk_Org_ID__c"].as_str().map(str::to_string))
        .collect();
    assert_eq!(named.len(), 2, "{named:?}");
    assert_eq!(w.dlq_depth().await, 0);
}

/// The loser of a Salesforce merge synced before it and holds the claim on its org (DynamoDB):
/// the winner's sync moves the claim over and rekeys the org, never a key conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_held_by_a_merged_away_account_moves_to_the_winner_on_dynamodb() {
    let (winner, loser) = (account(1), account(2));
    let w = World::start(
        "worker-merged-claim",
        json!({
            "salesforce": {"accounts": [
                customer(&winner, "Acme", "acme-merged.com"),
                {"Id": loser, "Name": "Acme (old)", "Type": "Customer", "MasterRecordId": winner}
            ]},
            "zendesk": {"organizations": [{"id": 700, "name": "Acme (old)", "external_id": loser, "domain_names": []}]}
        }),
    )
    .await;
    w.fill_mirror().await;
    use orglink_shared::aws::ClaimStore;
    let org = orglink_shared::ids::OrgId::new(700).unwrap();
    w.worker
        .stores
        .claims
        .claim(org, &AccountId::parse(&loser).unwrap(), now_ms())
        .await
        .unwrap();
    w.enqueue(&request(&winner, EventKind::Manual, "ev-w"))
        .await;
    let report = w
        .run_until_linked(1, std::slice::from_ref(&winner), Duration::from_secs(40))
        .await;
    assert!(report.finished, "{report:?}");
    let orgs = w.admin.orgs().await;
    assert_eq!(orgs.len(), 1, "no second org");
    assert_eq!(orgs[0]["external_id"], winner.as_str());
    let acc = w.account(&winner).await;
    assert_eq!(acc["Zendesk_Sync_Status__c"], "Linked", "{acc}");
    assert_eq!(acc["Zendesk_Org_ID__c"], "700");
    let held = w.worker.stores.claims.holder(org).await.unwrap().unwrap();
    assert_eq!(held.account.as_str(), winner);
}

/// A day-old claim for another account on a keyless org, whose link record points elsewhere
/// (its key write failed, then its decision moved on), is taken over on DynamoDB (conditional
/// on that very claim) instead of blocking the org forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_claim_on_a_keyless_org_is_taken_over_on_dynamodb() {
    let (a, b) = (account(1), account(2));
    let w = World::start(
        "worker-stale-claim",
        json!({
            "salesforce": {"accounts": [customer(&a, "Stale A", "stale-widgets.com")]},
            "zendesk": {"organizations": [{"id": 500, "name": "Stale legacy", "external_id": null, "domain_names": ["stale-widgets.com"]}]}
        }),
    )
    .await;
    w.fill_mirror().await;
    use orglink_shared::aws::ClaimStore;
    use orglink_shared::aws::links::LinkRecord;
    let org = orglink_shared::ids::OrgId::new(500).unwrap();
    let holder = AccountId::parse(&b).unwrap();
    w.worker
        .stores
        .claims
        .claim(org, &holder, now_ms() - 25 * 3600 * 1000)
        .await
        .unwrap();
    let mut record = LinkRecord::new(holder);
    record.org = Some(orglink_shared::ids::OrgId::new(900).unwrap());
    w.worker.stores.links.save(&record).await.unwrap();
    w.enqueue(&request(&a, EventKind::ClosedWon, "ev-a")).await;
    let report = w
        .run_until_linked(1, std::slice::from_ref(&a), Duration::from_secs(40))
        .await;
    assert!(report.finished, "{report:?}");
    assert_eq!(w.admin.orgs().await[0]["external_id"], a.as_str());
    let acc = w.account(&a).await;
    assert_eq!(acc["Zendesk_Org_ID__c"], "500", "{acc}");
    let held = w.worker.stores.claims.holder(org).await.unwrap().unwrap();
    assert_eq!(held.account.as_str(), a);
}
