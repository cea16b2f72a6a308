//! The org mirror's completeness marker: until a full listing of Zendesk's organizations has
//! been read into the mirror, its silence about a domain proves nothing, so the worker holds
//! what rests on it (a create, a link by domain) instead of guessing — the chaos run's
//! finding (docs/reliability.md, "an empty organization mirror").

mod support;

use orglink_shared::aws::mirror::MirroredOrg;
use orglink_shared::aws::{ExceptionFilter, ExceptionStatus, ExceptionStore, LinkStore, OrgMirror};
use orglink_shared::contract::EventKind;
use orglink_shared::exceptions::ExceptionKind;
use orglink_shared::http::System;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::resolution::Rule;
use orglink_sync_worker::sync::MessageResult;
use orglink_sync_worker::{Action, Outcome, WorkerSettings};
use serde_json::{Value, json};
use support::*;

const A: &str = "001SB0000000001YAA";
const LEGACY: u64 = 500;

/// Retries that never give up within a test.
fn patient() -> WorkerSettings {
    WorkerSettings {
        max_attempts: 1_000,
        ..settings()
    }
}

fn legacy_world() -> Value {
    json!({
        "salesforce": {"accounts": [customer(A, "Acme", "https://acmewidgets.com")]},
        "zendesk": {"organizations": [{"id": LEGACY, "name": "ACME legacy", "external_id": null, "domain_names": ["acmewidgets.com"]}]}
    })
}

/// The reason of a held message (panics on anything else).
fn held(r: MessageResult) -> String {
    match r {
        MessageResult::Retry { reason, .. } => reason,
        other => panic!("expected the message held for a retry, got {other:?}"),
    }
}

fn done(r: MessageResult) -> Outcome {
    match r {
        MessageResult::Done(o) => o,
        other => panic!("expected a finished message, got {other:?}"),
    }
}

/// A full listing read into the mirror, as reconcile's refresh ends.
async fn fill(env: &Env, orgs: &[Value]) {
    for o in orgs {
        let domains: Vec<String> = o["domain_names"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        env.worker
            .stores
            .mirror
            .upsert(&MirroredOrg::new(
                OrgId::new(o["id"].as_u64().unwrap()).unwrap(),
                o["name"].as_str().unwrap(),
                o["external_id"].as_str().map(str::to_string),
                domains,
                None,
            ))
            .await
            .unwrap();
    }
    env.worker
        .stores
        .mirror
        .mark_filled("reconcile", 1)
        .await
        .unwrap();
}

#[tokio::test]
async fn without_the_marker_a_legacy_org_found_by_domain_is_never_duplicated() {
    let env = Env::start_unfilled_with(legacy_world(), patient()).await;
    // Held twice, visibly: nothing created, no name search or write, the streak records why.
    for n in 1..=2 {
        let reason = held(
            env.sync(&request(A, EventKind::ClosedWon, &format!("e-{n}")))
                .await,
        );
        assert!(
            reason.contains("organization mirror not yet filled")
                && reason.contains("run a full reconcile or backfill")
                && reason.contains("acmewidgets.com"),
            "{reason}"
        );
    }
    assert_eq!(env.admin.orgs().await.len(), 1);
    assert_eq!(env.count(System::Zendesk, "zd.org_create_or_update"), 0);
    assert_eq!(env.count(System::Zendesk, "zd.org_search"), 0);
    assert_eq!(env.count(System::Zendesk, "zd.org_update"), 0);
    assert_eq!(env.count(System::Salesforce, "sf.composite"), 0);
    let id = AccountId::parse(A).unwrap();
    let record = env.worker.stores.links.get(&id).await.unwrap().unwrap();
    assert_eq!(record.failures.count, 2);
    assert!(
        record
            .failures
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("organization mirror not yet filled")),
        "{:?}",
        record.failures
    );
    assert_eq!(record.org, None);

    // A full listing fills the mirror: the held account links its legacy org by domain.
    fill(&env, &env.admin.orgs().await).await;
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-3")).await);
    assert!(
        matches!(out, Outcome::Succeeded { org, rule: Rule::UniqueKeylessDomain, action: Action::Linked, .. } if org.get() == LEGACY),
        "{out:?}"
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1, "no second organization: {orgs:?}");
    assert_eq!(orgs[0]["external_id"], A);
    assert_eq!(
        env.account(A).await["Zendesk_Org_ID__c"],
        LEGACY.to_string()
    );
    let record = env.worker.stores.links.get(&id).await.unwrap().unwrap();
    assert_eq!(record.failures.count, 0);
}

#[tokio::test]
async fn with_the_marker_a_new_customer_gets_its_org() {
    let world =
        json!({"salesforce": {"accounts": [customer(A, "Acme", "https://acmewidgets.com")]}});
    // Unfilled: even with nothing in Zendesk, the worker cannot know that yet.
    let env = Env::start_unfilled(world.clone()).await;
    held(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    assert!(env.admin.orgs().await.is_empty());
    // A full listing of an empty Zendesk marks it: now the create goes ahead.
    fill(&env, &[]).await;
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-2")).await);
    assert!(
        matches!(
            out,
            Outcome::Succeeded {
                rule: Rule::CreateNew,
                action: Action::Created,
                ..
            }
        ),
        "{out:?}"
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["external_id"], A);
    assert_eq!(orgs[0]["domain_names"], json!(["acmewidgets.com"]));
}

#[tokio::test]
async fn key_matches_link_without_the_marker_but_add_no_domain() {
    // The org carries this account's key: the domain step never decides, so it links now. The
    // domain is not added while the mirror cannot say whether another org carries it.
    let env = Env::start_unfilled(json!({
        "salesforce": {"accounts": [customer(A, "Acme", "https://acmewidgets.com")]},
        "zendesk": {"organizations": [{"id": 600, "name": "Acme", "external_id": A, "domain_names": []}]}
    }))
    .await;
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    assert!(
        matches!(out, Outcome::Succeeded { org, rule: Rule::KeyMatch, .. } if org.get() == 600),
        "{out:?}"
    );
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["domain_names"], json!([]));
    assert_eq!(env.account(A).await["Zendesk_Org_ID__c"], "600");
}

#[tokio::test]
async fn an_account_without_a_usable_domain_or_not_eligible_is_not_held() {
    // A consumer mail domain is no domain candidate at all: the mirror cannot matter.
    let env = Env::start_unfilled(json!({
        "salesforce": {"accounts": [
            customer(A, "Acme", "acme@gmail.com"),
            {"Id": "001SB0000000002YAA", "Name": "Prospect Co", "Website": "prospect.io", "Type": "Prospect"}
        ]}
    }))
    .await;
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-1")).await);
    assert!(
        matches!(
            out,
            Outcome::Succeeded {
                action: Action::Created,
                ..
            }
        ),
        "{out:?}"
    );
    // A prospect would never get an organization: ignored as usual, not held for a retry.
    let out = done(
        env.sync(&request(
            "001SB0000000002YAA",
            EventKind::NameChanged,
            "e-2",
        ))
        .await,
    );
    assert!(matches!(out, Outcome::Ignored { .. }), "{out:?}");
    assert_eq!(env.admin.orgs().await.len(), 1);
}

#[tokio::test]
async fn held_past_the_give_up_window_it_becomes_a_mirror_not_filled_row() {
    // max_attempts 3, failing_after_secs 0: the third hold gives up.
    let env = Env::start_unfilled(legacy_world()).await;
    for n in 1..=2 {
        held(
            env.sync(&request(A, EventKind::ClosedWon, &format!("e-{n}")))
                .await,
        );
    }
    let out = done(env.sync(&request(A, EventKind::ClosedWon, "e-3")).await);
    let Outcome::Exception {
        kind, fingerprint, ..
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(kind, ExceptionKind::MirrorNotFilled);
    let row = env
        .worker
        .stores
        .exceptions
        .get(&fingerprint)
        .await
        .unwrap()
        .expect("the row");
    assert!(
        format!("{:?}", row.finding.evidence).contains("run a full reconcile or backfill"),
        "{row:?}"
    );
    assert!(
        ExceptionKind::MirrorNotFilled
            .recommended_action()
            .contains("full reconcile")
    );
    let open = env
        .worker
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    // Nothing created; Salesforce says a person is needed.
    assert_eq!(env.admin.orgs().await.len(), 1);
    assert_eq!(
        env.account(A).await["Zendesk_Sync_Status__c"],
        "Pending Review"
    );
}
