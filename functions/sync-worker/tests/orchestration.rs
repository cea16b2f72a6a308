//! The worker's orchestration over the in-memory twins, against the simulators in-process:
//! each decision end to end, with the exact API calls it costs.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use orglink_shared::aws::ReceivedMessage;
use orglink_shared::aws::mirror::MirroredOrg;
use orglink_shared::aws::{ExceptionStore, LinkStore, OrgMirror};
use orglink_shared::contract::EventKind;
use orglink_shared::exceptions::ExceptionKind;
use orglink_shared::http::System;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::resolution::Rule;
use orglink_sync_worker::runner::sqs_event;
use orglink_sync_worker::sync::{MessageResult, now_ms};
use orglink_sync_worker::{Action, CrashPoint, Outcome};
use serde_json::json;
use support::*;

const A: &str = "001SB0000000001YAA";
const B: &str = "001SB0000000002YAA";

/// Calls per endpoint made by `f`.
struct Counts(std::collections::BTreeMap<(System, &'static str), u64>);

const ENDPOINTS: [(System, &str); 8] = [
    (System::Salesforce, "sf.query_all"),
    (System::Salesforce, "sf.query"),
    (System::Salesforce, "sf.composite"),
    (System::Zendesk, "zd.org_show_many"),
    (System::Zendesk, "zd.org_show"),
    (System::Zendesk, "zd.org_search"),
    (System::Zendesk, "zd.org_create_or_update"),
    (System::Zendesk, "zd.org_update"),
];

fn counts(env: &Env) -> Counts {
    Counts(
        ENDPOINTS
            .iter()
            .map(|&(s, e)| ((s, e), env.count(s, e)))
            .collect(),
    )
}

fn delta(before: &Counts, after: &Counts) -> Vec<(&'static str, u64)> {
    ENDPOINTS
        .iter()
        .map(|&(s, e)| (e, after.0[&(s, e)] - before.0[&(s, e)]))
        .filter(|(_, n)| *n > 0)
        .collect()
}

fn done(r: MessageResult) -> Outcome {
    match r {
        MessageResult::Done(o) => o,
        other => panic!("expected a finished message, got {other:?}"),
    }
}

fn keyed_orgs(orgs: &[serde_json::Value], account: &str) -> Vec<serde_json::Value> {
    orgs.iter()
        .filter(|o| o["external_id"].as_str() == Some(account))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_new_customer_gets_one_org_with_its_key_in_exactly_seven_calls() {
    let env = Env::start(json!({"salesforce": {"accounts": [customer(A, "Acme | Corp", "https://www.AcmeWidgets.com/about")]}})).await;
    let before = counts(&env);
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    let after = counts(&env);
    let Outcome::Succeeded {
        org,
        rule,
        action,
        zendesk_written,
        salesforce_written,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(
        (rule, action, zendesk_written, salesforce_written),
        (Rule::CreateNew, Action::Created, true, true)
    );
    assert_eq!(
        delta(&before, &after),
        vec![
            ("sf.query_all", 1),
            ("sf.query", 1),
            ("sf.composite", 1),
            ("zd.org_show_many", 1),
            ("zd.org_search", 1),
            ("zd.org_create_or_update", 1),
            ("zd.org_update", 1),
        ]
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["external_id"], A);
    assert_eq!(orgs[0]["name"], "Acme Corp");
    assert_eq!(orgs[0]["domain_names"], json!(["acmewidgets.com"]));
    assert_eq!(orgs[0]["tags"], json!(["orglink_customer"]));
    let acc = env.account(A).await;
    assert_eq!(acc["Zendesk_Org_ID__c"], org.to_string());
    assert_eq!(acc["Zendesk_Sync_Status__c"], "Linked");
    assert_eq!(acc["Zendesk_Domain__c"], "acmewidgets.com");
    assert!(acc["Last_Zendesk_Sync_At__c"].is_string());
    // The link record and the mirror know it.
    let record = env
        .worker
        .stores
        .links
        .get(&AccountId::parse(A).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.org, Some(org));
    assert_eq!(
        record.written_salesforce["Zendesk_Domain__c"],
        "acmewidgets.com"
    );
    assert!(record.synced_modstamp_ms.is_some());
    assert_eq!(
        env.worker
            .stores
            .mirror
            .by_domain("acmewidgets.com")
            .await
            .unwrap()
            .len(),
        1
    );

    // Already linked and unchanged: three reads, no write at all.
    let before = counts(&env);
    let out = done(env.sync(&request(A, EventKind::NameChanged, "e-2")).await);
    assert!(
        matches!(
            out,
            Outcome::Succeeded {
                action: Action::Updated,
                zendesk_written: false,
                salesforce_written: false,
                rule: Rule::KeyMatch,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(
        delta(&before, &counts(&env)),
        vec![
            ("sf.query_all", 1),
            ("sf.query", 1),
            ("zd.org_show_many", 1)
        ]
    );

    // The mirror is not written when its row is Zendesk's org exactly, but a row that
    // differs (an older copy) is corrected by the next sync.
    let mirror = &env.worker.stores.mirror;
    let fresh = mirror.get(org).await.unwrap().expect("mirrored");
    let mut older = fresh.clone();
    older.name = "Acme (old copy)".into();
    mirror.delete(org).await.unwrap();
    mirror.upsert(&older).await.unwrap();
    done(env.sync(&request(A, EventKind::NameChanged, "e-3")).await);
    assert_eq!(mirror.get(org).await.unwrap(), Some(fresh));
}

#[tokio::test]
async fn an_existing_keyless_org_carrying_the_domain_is_linked_and_keyed_in_eight_calls() {
    let env = Env::start(json!({
        "salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]},
        "zendesk": {"organizations": [{"id": 500, "name": "ACME legacy", "external_id": null, "domain_names": ["acmewidgets.com"], "tags": ["vip"]}]}
    }))
    .await;
    let legacy = OrgId::new(500).unwrap();
    env.worker
        .stores
        .mirror
        .upsert(&MirroredOrg::new(
            legacy,
            "ACME legacy",
            None,
            ["acmewidgets.com"],
            None,
        ))
        .await
        .unwrap();
    let before = counts(&env);
    let out = done(
        env.sync(&request(A, EventKind::BecameCustomer, "e-1"))
            .await,
    );
    assert!(
        matches!(out, Outcome::Succeeded { org, rule: Rule::UniqueKeylessDomain, action: Action::Linked, .. } if org == legacy),
        "{out:?}"
    );
    // The second query asks whether another account's Zendesk_Org_ID__c names the org.
    assert_eq!(
        delta(&before, &counts(&env)),
        vec![
            ("sf.query_all", 1),
            ("sf.query", 2),
            ("sf.composite", 1),
            ("zd.org_show_many", 2),
            ("zd.org_update", 1),
        ]
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1, "no second org");
    assert_eq!(orgs[0]["external_id"], A);
    // Add-only: support's tag stays, orglink's is added; the name mirrors the account.
    let tags: Vec<&str> = orgs[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"vip") && tags.contains(&"orglink_customer"),
        "{tags:?}"
    );
    assert_eq!(orgs[0]["name"], "Acme");
    assert_eq!(env.account(A).await["Zendesk_Org_ID__c"], "500");
}

#[tokio::test]
async fn two_accounts_whose_domain_sits_on_one_legacy_org_never_both_take_it() {
    let env = Env::start(json!({
        "salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com"), customer(B, "Acme Europe", "https://acmewidgets.com/eu")]},
        "zendesk": {"organizations": [{"id": 500, "name": "Acme legacy", "external_id": null, "domain_names": ["acmewidgets.com"]}]}
    }))
    .await;
    env.worker
        .stores
        .mirror
        .upsert(&MirroredOrg::new(
            OrgId::new(500).unwrap(),
            "Acme legacy",
            None,
            ["acmewidgets.com"],
            None,
        ))
        .await
        .unwrap();
    let a = done(env.sync(&request(A, EventKind::ClosedWon, "e-a")).await);
    let b = done(env.sync(&request(B, EventKind::ClosedWon, "e-b")).await);
    assert!(matches!(a, Outcome::Succeeded { .. }), "{a:?}");
    assert!(
        matches!(
            b,
            Outcome::Exception {
                kind: ExceptionKind::DomainCollision,
                ..
            }
        ),
        "{b:?}"
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["external_id"], A);
    let b_acc = env.account(B).await;
    assert!(b_acc["Zendesk_Org_ID__c"].is_null());
    assert_eq!(b_acc["Zendesk_Sync_Status__c"], "Pending Review");
    // Upserted by fingerprint: a second sighting updates the same row.
    let b2 = done(env.sync(&request(B, EventKind::Manual, "e-b2")).await);
    let (
        Outcome::Exception {
            fingerprint: f1, ..
        },
        Outcome::Exception {
            fingerprint: f2, ..
        },
    ) = (&b, &b2)
    else {
        panic!("{b2:?}")
    };
    assert_eq!(f1, f2);
    let row = env.worker.stores.exceptions.get(f1).await.unwrap().unwrap();
    assert_eq!(row.times_seen, 2);
}

#[tokio::test]
async fn the_claim_stops_a_second_account_taking_an_org_zendesk_does_not_yet_show_as_keyed() {
    // A backfill (or another worker) claimed the legacy org for B before keying it in Zendesk.
    let env = Env::start(json!({
        "salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]},
        "zendesk": {"organizations": [{"id": 500, "name": "Acme legacy", "external_id": null, "domain_names": ["acmewidgets.com"]}]}
    }))
    .await;
    let org = OrgId::new(500).unwrap();
    env.worker
        .stores
        .mirror
        .upsert(&MirroredOrg::new(
            org,
            "Acme legacy",
            None,
            ["acmewidgets.com"],
            None,
        ))
        .await
        .unwrap();
    use orglink_shared::aws::ClaimStore;
    env.worker
        .stores
        .claims
        .claim(org, &AccountId::parse(B).unwrap(), now_ms())
        .await
        .unwrap();
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    assert!(
        matches!(
            out,
            Outcome::Exception {
                kind: ExceptionKind::DomainCollision,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(
        env.admin.orgs().await[0]["external_id"].is_null(),
        "the org was not keyed"
    );
    assert_eq!(env.count(System::Zendesk, "zd.org_update"), 0);
}

#[tokio::test]
async fn not_eligible_accounts_are_ignored_with_the_reason_and_nothing_is_written() {
    let env = Env::start(json!({"salesforce": {"accounts": [
        {"Id": A, "Name": "Prospect Inc", "Website": "prospectinc.com", "Type": "Prospect"}
    ]}}))
    .await;
    let out = done(env.sync(&request(A, EventKind::NameChanged, "e-1")).await);
    let Outcome::Ignored { reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("not a customer"), "{reason}");
    assert!(env.admin.orgs().await.is_empty());
    assert_eq!(env.count(System::Salesforce, "sf.composite"), 0);
    assert_eq!(env.count(System::Zendesk, "zd.org_create_or_update"), 0);
}

#[tokio::test]
async fn duplicates_are_deduplicated_and_covered_events_coalesced() {
    let env =
        Env::start(json!({"salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]}}))
            .await;
    let req = request(A, EventKind::ClosedWon, "e-1");
    assert!(matches!(
        done(env.sync(&req).await),
        Outcome::Succeeded { .. }
    ));
    let before = counts(&env);
    assert_eq!(done(env.sync(&req).await), Outcome::Deduplicated);
    assert!(
        delta(&before, &counts(&env)).is_empty(),
        "a duplicate costs no API call"
    );

    let mut old = request(A, EventKind::NameChanged, "e-0");
    old.account_modstamp = Some(time::OffsetDateTime::now_utc() - time::Duration::days(400));
    assert!(matches!(
        done(env.sync(&old).await),
        Outcome::Coalesced { .. }
    ));
    assert!(
        delta(&before, &counts(&env)).is_empty(),
        "a covered event costs no API call"
    );
}

#[tokio::test]
async fn a_crash_after_the_zendesk_create_reruns_to_one_org_and_a_correct_link() {
    let mut env =
        Env::start(json!({"salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]}}))
            .await;
    let crash_once = Arc::new(AtomicBool::new(true));
    let flag = crash_once.clone();
    env.worker.crash_hook = Some(Arc::new(move |point, _| {
        point == CrashPoint::AfterZendeskWrite && flag.swap(false, Ordering::SeqCst)
    }));
    let req = request(A, EventKind::ClosedWon, "e-1");
    let body = serde_json::to_string(&req).unwrap();
    let r = env.worker.handle_request(&req, &body, now_ms() + 150).await;
    assert!(matches!(r, MessageResult::Crash { .. }), "{r:?}");
    assert_eq!(env.admin.orgs().await.len(), 1);
    assert!(
        env.account(A).await["Zendesk_Org_ID__c"].is_null(),
        "the crash came before the write-back"
    );
    // The redelivery, once the crashed invocation's deadline passed.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let out = done(
        env.worker
            .handle_request(&req, &body, now_ms() + 30_000)
            .await,
    );
    assert!(
        matches!(
            out,
            Outcome::Succeeded {
                rule: Rule::KeyMatch,
                ..
            }
        ),
        "{out:?}"
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(keyed_orgs(&orgs, A).len(), 1);
    assert_eq!(orgs.len(), 1);
    assert_eq!(
        env.account(A).await["Zendesk_Org_ID__c"],
        orgs[0]["id"].to_string()
    );
}

#[tokio::test]
async fn a_validation_rule_blocking_the_write_back_is_a_write_back_blocked_exception() {
    let env = Env::start(json!({"salesforce": {
        "accounts": [customer(A, "Acme", "acmewidgets.com")],
        "switches": {"validation_rules": {A: "Accounts in review cannot be edited"}}
    }}))
    .await;
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    let Outcome::Exception {
        kind, fingerprint, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(kind, ExceptionKind::WriteBackBlocked);
    let row = env
        .worker
        .stores
        .exceptions
        .get(&fingerprint)
        .await
        .unwrap()
        .unwrap();
    assert!(
        format!("{:?}", row.finding.evidence).contains("FIELD_CUSTOM_VALIDATION_EXCEPTION"),
        "{row:?}"
    );
    // Zendesk has the org (keyed, so the next sync links it once the rule is fixed).
    assert_eq!(keyed_orgs(&env.admin.orgs().await, A).len(), 1);
}

#[tokio::test]
async fn transient_failures_retry_with_backoff_then_become_sync_failing() {
    let env =
        Env::start(json!({"salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]}}))
            .await;
    env.admin
        .zd_post("faults", json!({"default": {"error_5xx": 1.0}}))
        .await;
    let id = AccountId::parse(A).unwrap();
    for (i, want_wait) in [(1, 1), (2, 2)] {
        let r = env
            .sync(&request(A, EventKind::ClosedWon, &format!("e-{i}")))
            .await;
        let MessageResult::Retry { after_secs, .. } = r else {
            panic!("{r:?}")
        };
        assert_eq!(after_secs, want_wait);
        let record = env.worker.stores.links.get(&id).await.unwrap().unwrap();
        assert_eq!(record.failures.count, i);
    }
    // The third attempt is past max_attempts (3) and failing_after_secs (0).
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-3")).await);
    assert!(
        matches!(
            out,
            Outcome::Exception {
                kind: ExceptionKind::SyncFailing,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(
        env.account(A).await["Zendesk_Sync_Status__c"],
        "Sync Failing"
    );
    // Once Zendesk is back, a sync links and clears the streak.
    env.admin.zd_post("faults", json!({})).await;
    let out = done(env.sync(&request(A, EventKind::Manual, "e-4")).await);
    assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
    let record = env.worker.stores.links.get(&id).await.unwrap().unwrap();
    assert_eq!(record.failures.count, 0);
    assert_eq!(env.account(A).await["Zendesk_Sync_Status__c"], "Linked");
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

#[tokio::test]
async fn a_batch_fails_the_rest_of_a_failed_group_and_a_poison_message_alone() {
    let env = Env::start(json!({"salesforce": {
        "accounts": [customer(A, "Acme", "acmewidgets.com"), customer(B, "Beta", "betaparts.com")],
        "switches": {"row_locks": {A: 1000}}
    }}))
    .await;
    let body =
        |acc: &str, e: &str| serde_json::to_string(&request(acc, EventKind::ClosedWon, e)).unwrap();
    let event = sqs_event(&[
        received("m1", A, "{not json".into()),
        received("m2", A, body(A, "a-1")),
        received("m3", B, body(B, "b-1")),
        received("m4", A, body(A, "a-2")),
    ]);
    let resp = env
        .worker
        .handle_batch(event, now_ms() + 30_000)
        .await
        .unwrap();
    let failed: Vec<&str> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    // m1: poison, alone. m2: A's write-back is locked (transient). m4: after m2 in A's group.
    assert_eq!(failed, vec!["m1", "m2", "m4"]);
    assert_eq!(env.account(B).await["Zendesk_Sync_Status__c"], "Linked");
    assert!(env.account(A).await["Zendesk_Org_ID__c"].is_null());
}

#[tokio::test]
async fn an_org_keyed_to_a_merged_away_account_is_relinked_and_rekeyed() {
    let loser = "001SB0000000003YAA";
    let env = Env::start(json!({
        "salesforce": {"accounts": [
            customer(A, "Acme", "acmewidgets.com"),
            {"Id": loser, "Name": "Acme (old)", "Type": "Customer", "MasterRecordId": A}
        ]},
        "zendesk": {"organizations": [{"id": 700, "name": "Acme (old)", "external_id": loser, "domain_names": []}]}
    }))
    .await;
    let out = done(env.sync(&request(A, EventKind::Manual, "e-1")).await);
    assert!(
        matches!(out, Outcome::Succeeded { org, rule: Rule::MergedAccountKey, action: Action::Linked, .. } if org == OrgId::new(700).unwrap()),
        "{out:?}"
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1, "no second org");
    assert_eq!(orgs[0]["external_id"], A);
    assert_eq!(env.account(A).await["Zendesk_Org_ID__c"], "700");
}

#[tokio::test]
async fn a_claim_held_by_a_merged_away_account_moves_to_the_winner() {
    // The loser synced before the merge: it holds the claim on its org.
    let loser = "001SB0000000003YAA";
    let env = Env::start(json!({
        "salesforce": {"accounts": [
            customer(A, "Acme", "acmewidgets.com"),
            {"Id": loser, "Name": "Acme (old)", "Type": "Customer", "MasterRecordId": A}
        ]},
        "zendesk": {"organizations": [{"id": 700, "name": "Acme (old)", "external_id": loser, "domain_names": []}]}
    }))
    .await;
    let org = OrgId::new(700).unwrap();
    use orglink_shared::aws::ClaimStore;
    let claims = &env.worker.stores.claims;
    claims
        .claim(org, &AccountId::parse(loser).unwrap(), now_ms())
        .await
        .unwrap();
    let out = done(env.sync(&request(A, EventKind::Manual, "e-1")).await);
    assert!(
        matches!(out, Outcome::Succeeded { org: o, rule: Rule::MergedAccountKey, action: Action::Linked, .. } if o == org),
        "{out:?}"
    );
    assert_eq!(env.admin.orgs().await[0]["external_id"], A);
    assert_eq!(env.account(A).await["Zendesk_Org_ID__c"], "700");
    assert_eq!(
        claims.holder(org).await.unwrap().unwrap().account.as_str(),
        A
    );
}

/// A keyless org carrying the domain that another account names in `Zendesk_Org_ID__c` (a
/// legacy link, not yet synced, so not claimed) is never linked by domain, whichever account
/// syncs first: the legacy account keeps it, the other gets a domain collision.
#[tokio::test]
async fn a_keyless_org_another_account_names_in_salesforce_is_never_linked_by_domain() {
    for legacy_first in [false, true] {
        let env = Env::start(json!({
            "salesforce": {"accounts": [
                {"Id": A, "Name": "Acme", "Website": "acmewidgets.com", "Type": "Customer - Direct", "Zendesk_Org_ID__c": "500"},
                customer(B, "Acme Europe", "https://acmewidgets.com/eu")
            ]},
            "zendesk": {"organizations": [{"id": 500, "name": "Acme legacy", "external_id": null, "domain_names": ["acmewidgets.com"]}]}
        }))
        .await;
        let legacy = OrgId::new(500).unwrap();
        env.worker
            .stores
            .mirror
            .upsert(&MirroredOrg::new(
                legacy,
                "Acme legacy",
                None,
                ["acmewidgets.com"],
                None,
            ))
            .await
            .unwrap();
        let order = if legacy_first { [A, B] } else { [B, A] };
        let mut outs = std::collections::BTreeMap::new();
        for (i, id) in order.into_iter().enumerate() {
            let out = done(
                env.sync(&request(id, EventKind::ClosedWon, &format!("e-{i}")))
                    .await,
            );
            outs.insert(id, out);
        }
        let ctx = format!("legacy account first: {legacy_first}");
        assert!(
            matches!(outs[A], Outcome::Succeeded { org, rule: Rule::StoredOrgKeyless, .. } if org == legacy),
            "{ctx}: {:?}",
            outs[A]
        );
        let Outcome::Exception {
            kind: ExceptionKind::DomainCollision,
            fingerprint,
            ..
        } = &outs[B]
        else {
            panic!("{ctx}: {:?}", outs[B]);
        };
        let row = env
            .worker
            .stores
            .exceptions
            .get(fingerprint)
            .await
            .unwrap()
            .unwrap();
        let named: Vec<&str> = row.finding.accounts.iter().map(|a| a.as_str()).collect();
        assert!(named.contains(&B), "{ctx}: {named:?}");
        if !legacy_first {
            // Raised before the link: it names the account whose stored id holds the org.
            assert!(named.contains(&A), "{ctx}: {named:?}");
            assert_eq!(
                row.finding.evidence.get("stored_by"),
                Some(&[A.to_string()][..]),
                "{ctx}"
            );
        }
        let orgs = env.admin.orgs().await;
        assert_eq!(orgs.len(), 1, "{ctx}: nothing created");
        assert_eq!(orgs[0]["external_id"], A, "{ctx}");
        assert_eq!(env.account(A).await["Zendesk_Org_ID__c"], "500", "{ctx}");
        let b = env.account(B).await;
        assert!(b["Zendesk_Org_ID__c"].is_null(), "{ctx}");
        assert_eq!(b["Zendesk_Sync_Status__c"], "Pending Review", "{ctx}");
    }
}

#[tokio::test]
async fn a_linked_account_that_stops_being_eligible_keeps_its_link() {
    let env =
        Env::start(json!({"salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]}}))
            .await;
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    let Outcome::Succeeded { org, .. } = out else {
        panic!("{out:?}")
    };
    // Churned: the type changes; the next event may not create or relink, but the link stays.
    let mut acc = env.account(A).await;
    acc["Type"] = json!("Former Customer");
    env.admin
        .sf_post("scenario", json!({"salesforce": {"accounts": [acc]}}))
        .await;
    let out = done(env.sync(&request(A, EventKind::NameChanged, "e-2")).await);
    assert!(
        matches!(out, Outcome::Succeeded { org: o, action: Action::Updated, .. } if o == org),
        "{out:?}"
    );
    assert_eq!(env.admin.orgs().await.len(), 1);
    assert_eq!(
        env.account(A).await["Zendesk_Sync_Status__c"],
        "Not Eligible"
    );
}

#[tokio::test]
async fn a_create_that_meets_an_existing_keyed_org_never_replaces_its_domains_or_tags() {
    // show_many by external_ids reading a lagging index (UNVERIFIED): the org keyed to A is
    // not seen, so the worker decides to create; create_or_update matches it in the database.
    let env = Env::start(json!({
        "salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]},
        "zendesk": {"organizations": [{"id": 800, "name": "Acme legacy", "external_id": null,
            "domain_names": ["acme-support.net"], "tags": ["vip"]}]}
    }))
    .await;
    env.admin
        .zd_post(
            "switches",
            json!({"show_many_uses_search_index": true, "search_lag_ms": 600000}),
        )
        .await;
    // Keyed to A (say, by a link whose write-back has not happened yet); the index lags.
    env.worker
        .zendesk
        .update(OrgId::new(800).unwrap(), &json!({"external_id": A}))
        .await
        .unwrap();
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    assert!(
        matches!(
            out,
            Outcome::Succeeded {
                rule: Rule::CreateNew,
                ..
            }
        ),
        "the lagging index hid the keyed org: {out:?}"
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1, "no second org");
    let domains: Vec<&str> = orgs[0]["domain_names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    let tags: Vec<&str> = orgs[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        domains.contains(&"acme-support.net") && domains.contains(&"acmewidgets.com"),
        "{domains:?}"
    );
    assert!(
        tags.contains(&"vip") && tags.contains(&"orglink_customer"),
        "{tags:?}"
    );
    assert_eq!(env.account(A).await["Zendesk_Org_ID__c"], "800");
}

#[tokio::test]
async fn a_prospect_whose_domain_collides_is_ignored_not_queued_for_review() {
    let env = Env::start(json!({
        "salesforce": {"accounts": [
            customer(A, "Acme", "acmewidgets.com"),
            {"Id": B, "Name": "Acme reseller", "Website": "acmewidgets.com", "Type": "Prospect"}
        ]}
    }))
    .await;
    assert!(matches!(
        done(env.sync(&request(A, EventKind::ClosedWon, "e-a")).await),
        Outcome::Succeeded { .. }
    ));
    let out = done(env.sync(&request(B, EventKind::DomainChanged, "e-b")).await);
    let Outcome::Ignored { reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("domain_collision not raised"), "{reason}");
    use orglink_shared::aws::{ExceptionFilter, ExceptionStatus};
    let open = env
        .worker
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
    assert!(env.account(B).await["Zendesk_Sync_Status__c"].is_null());
}

/// A claim taken for B whose key write never landed and whose decision then moved on (its link
/// record points elsewhere) would hold the keyless org forever: once older than
/// `stale_claim_after_secs` another account may take it over. A fresh claim, or one backing
/// B's link record, still stops it.
#[tokio::test]
async fn a_stale_claim_on_a_keyless_org_is_taken_over_only_when_old_and_unlinked() {
    use orglink_shared::aws::ClaimStore;
    use orglink_shared::aws::links::LinkRecord;
    let day_ago = now_ms() - 25 * 3600 * 1000;
    // (claimed at, B's link record points at the org, A may take it)
    for (claimed_at, b_linked, taken) in [
        (day_ago, false, true),
        (now_ms(), false, false),
        (day_ago, true, false),
    ] {
        let ctx = format!(
            "claimed {}s ago, B linked: {b_linked}",
            (now_ms() - claimed_at) / 1000
        );
        let env = Env::start(json!({
            "salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]},
            "zendesk": {"organizations": [{"id": 500, "name": "Acme legacy", "external_id": null, "domain_names": ["acmewidgets.com"]}]}
        }))
        .await;
        let org = OrgId::new(500).unwrap();
        env.worker
            .stores
            .mirror
            .upsert(&MirroredOrg::new(
                org,
                "Acme legacy",
                None,
                ["acmewidgets.com"],
                None,
            ))
            .await
            .unwrap();
        let b = AccountId::parse(B).unwrap();
        let claims = &env.worker.stores.claims;
        claims.claim(org, &b, claimed_at).await.unwrap();
        let mut record = LinkRecord::new(b.clone());
        record.org = Some(if b_linked {
            org
        } else {
            OrgId::new(900).unwrap()
        });
        env.worker.stores.links.save(&record).await.unwrap();
        let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
        let holder = claims.holder(org).await.unwrap().unwrap().account;
        if taken {
            assert!(
                matches!(out, Outcome::Succeeded { org: o, rule: Rule::UniqueKeylessDomain, .. } if o == org),
                "{ctx}: {out:?}"
            );
            assert_eq!(env.admin.orgs().await[0]["external_id"], A, "{ctx}");
            assert_eq!(holder.as_str(), A, "{ctx}");
        } else {
            assert!(
                matches!(
                    out,
                    Outcome::Exception {
                        kind: ExceptionKind::DomainCollision,
                        ..
                    }
                ),
                "{ctx}: {out:?}"
            );
            assert!(env.admin.orgs().await[0]["external_id"].is_null(), "{ctx}");
            assert_eq!(holder, b, "{ctx}");
        }
    }
}
