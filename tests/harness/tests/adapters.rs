//! Every state and messaging adapter, run through one test body per contract against both its
//! in-memory twin and its AWS implementation on moto (through the real SDK), so the twins the
//! worker's unit tests use behave like the real thing — conditional paths included.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use orglink_harness::moto_stack;
use orglink_shared::aws::budget::{DynamoBudget, MemoryBudget};
use orglink_shared::aws::claims::{DynamoClaims, MemoryClaims};
use orglink_shared::aws::exceptions::{DynamoExceptions, MemoryExceptions};
use orglink_shared::aws::idempotency::{
    DynamoIdempotency, IdempotencyConfig, MemoryIdempotency, RecordStatus,
};
use orglink_shared::aws::links::{DecisionRecord, DynamoLinks, MemoryLinks, WrittenOrg};
use orglink_shared::aws::mirror::{DynamoMirror, MemoryMirror};
use orglink_shared::aws::queue::{MemoryQueue, SqsQueue};
use orglink_shared::aws::runs::{DynamoRuns, MemoryRuns};
use orglink_shared::aws::secrets::{SecretsManagerSecret, StaticSecret};
use orglink_shared::aws::*;
use orglink_shared::exceptions::{Evidence, ExceptionKind, Finding, Severity};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::resolution::{Decision, Rule};

fn account(n: u32) -> AccountId {
    AccountId::parse(&format!("001000000000{n:03}")).unwrap()
}

fn org(n: u64) -> OrgId {
    OrgId::new(n).unwrap()
}

/// Runs `body` against the in-memory twin and the moto-backed implementation.
macro_rules! both {
    ($memory:ident, $moto:ident, $body:ident, $mem:expr, |$aws:ident, $names:ident| $real:expr) => {
        #[tokio::test]
        async fn $memory() {
            $body(Arc::new($mem)).await;
        }
        #[tokio::test]
        async fn $moto() {
            let ($aws, stack) = moto_stack(stringify!($body)).await;
            let $names = stack.names().unwrap();
            $body(Arc::new($real)).await;
        }
    };
}

// ---------------------------------------------------------------- idempotency

const NOW: i64 = 1_700_000_000_000;

async fn idempotency_contract<S: IdempotencyStore>(store: Arc<S>) {
    let key = IdempotencyKey::new("sync-worker", b"{\"account\":1}");
    let deadline = NOW + 30_000;
    // First delivery starts; a concurrent duplicate sees it in progress.
    assert_eq!(
        store.begin(&key, Some("h1"), NOW, deadline).await.unwrap(),
        Begin::Started
    );
    assert_eq!(
        store
            .begin(&key, Some("h1"), NOW + 1, deadline)
            .await
            .unwrap(),
        Begin::InProgress {
            until_ms: Some(deadline)
        }
    );
    // The same key with another payload is a mismatch, not a duplicate.
    assert_eq!(
        store
            .begin(&key, Some("h2"), NOW + 1, deadline)
            .await
            .unwrap(),
        Begin::PayloadMismatch
    );
    // Completed: duplicates get the stored outcome.
    store
        .complete(&key, "{\"ok\":true}", Some("h1"), NOW + 10)
        .await
        .unwrap();
    assert_eq!(
        store
            .begin(&key, Some("h1"), NOW + 20, NOW + 50_000)
            .await
            .unwrap(),
        Begin::Completed {
            data: Some("{\"ok\":true}".into())
        }
    );
    let rec = store.get(&key, NOW + 20).await.unwrap().unwrap();
    assert_eq!(rec.status, RecordStatus::Completed);
    assert_eq!(rec.expiration_s, (NOW + 10) / 1000 + 3600);
    // Expired (TTL passed but the item is still there): absent, and a new delivery starts.
    let later = (rec.expiration_s + 1) * 1000;
    assert_eq!(store.get(&key, later).await.unwrap(), None);
    // An expired record is replaced whatever payload it had (the write's condition decides
    // before any payload comparison).
    assert_eq!(
        store
            .begin(&key, Some("h-other"), later, later + 30_000)
            .await
            .unwrap(),
        Begin::Started
    );
    store.abandon(&key).await.unwrap();
    assert_eq!(
        store
            .begin(&key, Some("h1"), later, later + 30_000)
            .await
            .unwrap(),
        Begin::Started
    );
    // An in-progress record whose invocation deadline passed can be taken over.
    assert_eq!(
        store
            .begin(&key, Some("h1"), later + 30_001, later + 60_000)
            .await
            .unwrap(),
        Begin::Started
    );
    // Handler failure: the record is deleted so a retry can run.
    store.abandon(&key).await.unwrap();
    assert_eq!(store.get(&key, later + 30_002).await.unwrap(), None);
    assert_eq!(
        store
            .begin(&key, Some("h1"), later + 30_003, later + 60_000)
            .await
            .unwrap(),
        Begin::Started
    );
}

both!(
    idempotency_memory,
    idempotency_dynamodb,
    idempotency_contract,
    MemoryIdempotency::new(IdempotencyConfig::default()),
    |aws, names| DynamoIdempotency::new(
        aws.dynamodb(),
        names.idempotency_table,
        IdempotencyConfig::default()
    )
);

// ---------------------------------------------------------------- link records

async fn links_contract<S: LinkStore>(store: Arc<S>) {
    let a = account(1);
    assert_eq!(store.get(&a).await.unwrap(), None);
    let mut rec = LinkRecord::new(a.clone());
    rec.org = Some(org(42));
    rec.written_salesforce = BTreeMap::from([("Zendesk_Org_ID__c".into(), "42".into())]);
    rec.written_zendesk = WrittenOrg {
        name: Some("Acme".into()),
        domains: vec!["acme.com".into()],
        tags: vec!["orglink_customer".into()],
        fields: BTreeMap::from([("owner".into(), serde_json::json!("ana@x.com"))]),
    };
    rec.synced_modstamp_ms = Some(2_000);
    rec.last_decision = Some(DecisionRecord {
        decision: Decision::Link {
            org: org(42),
            key_change: None,
        },
        rule: Rule::KeyMatch,
        evidence: Evidence::new().with("key", a.as_str()),
        at_ms: 5,
    });
    rec.updated_at_ms = 5;
    assert_eq!(store.save(&rec).await.unwrap(), SaveOutcome::Saved);
    let stored = store.get(&a).await.unwrap().unwrap();
    assert_eq!(stored, rec);
    assert!(stored.covers(2_000) && stored.covers(1_999) && !stored.covers(2_001));
    // An older sync never overwrites a newer one; the same modstamp may be saved again.
    let mut older = rec.clone();
    older.synced_modstamp_ms = Some(1_000);
    older.org = Some(org(7));
    assert_eq!(
        store.save(&older).await.unwrap(),
        SaveOutcome::Superseded {
            stored_modstamp_ms: 2_000
        }
    );
    assert_eq!(store.get(&a).await.unwrap().unwrap().org, Some(org(42)));
    assert_eq!(store.save(&rec).await.unwrap(), SaveOutcome::Saved);
    // Transient failures count up atomically, keeping the streak's first time.
    let f1 = store.record_failure(&a, "zendesk 503", 10).await.unwrap();
    let f2 = store.record_failure(&a, "zendesk 429", 20).await.unwrap();
    assert_eq!((f1.count, f2.count), (1, 2));
    assert_eq!(f2.first_at_ms, Some(10));
    assert_eq!(f2.last_at_ms, Some(20));
    assert_eq!(f2.last_error.as_deref(), Some("zendesk 429"));
    let kept = store.get(&a).await.unwrap().unwrap();
    assert_eq!(kept.failures, f2);
    assert_eq!(kept.org, Some(org(42)), "counting failures keeps the link");
    // A failure on an account never synced creates its record.
    let b = account(2);
    assert_eq!(
        store.record_failure(&b, "timeout", 30).await.unwrap().count,
        1
    );
    assert_eq!(store.get(&b).await.unwrap().unwrap().org, None);
    // In bulk: the records that exist, each as `get` reads it (past one request's 100 keys;
    // a key asked twice is read once).
    let mut asked = vec![a.clone(), b.clone(), account(3), a.clone()];
    for n in 10..130 {
        let mut r = LinkRecord::new(account(n));
        r.org = Some(org(u64::from(n)));
        r.synced_modstamp_ms = Some(i64::from(n));
        store.save(&r).await.unwrap();
        asked.push(account(n));
    }
    let many = store.get_many(&asked).await.unwrap();
    assert_eq!(many.len(), 2 + 120, "account 3 has no record");
    assert_eq!(many[&a], store.get(&a).await.unwrap().unwrap());
    assert_eq!(many[&account(129)].org, Some(org(129)));
    assert!(!many.contains_key(&account(3)));
    assert!(store.get_many(&[]).await.unwrap().is_empty());
    // A successful sync resets the streak.
    let mut fresh = kept.clone();
    fresh.failures = Default::default();
    fresh.synced_modstamp_ms = Some(3_000);
    assert_eq!(store.save(&fresh).await.unwrap(), SaveOutcome::Saved);
    assert_eq!(store.get(&a).await.unwrap().unwrap().failures.count, 0);
}

both!(
    links_memory,
    links_dynamodb,
    links_contract,
    MemoryLinks::default(),
    |aws, names| DynamoLinks::new(aws.dynamodb(), names.links_table)
);

// ---------------------------------------------------------------- claims

async fn claims_contract<S: ClaimStore + 'static>(store: Arc<S>) {
    let o = org(500);
    assert_eq!(store.holder(o).await.unwrap(), None);
    assert_eq!(
        store.claim(o, &account(1), 1).await.unwrap(),
        ClaimOutcome::Claimed
    );
    // Claiming again for the same account is fine; another account is refused.
    assert_eq!(
        store.claim(o, &account(1), 2).await.unwrap(),
        ClaimOutcome::Claimed
    );
    match store.claim(o, &account(2), 3).await.unwrap() {
        ClaimOutcome::HeldBy(c) => assert_eq!((c.org, c.account), (o, account(1))),
        other => panic!("expected HeldBy, got {other:?}"),
    }
    // Only the holder releases.
    assert!(!store.release(o, &account(2)).await.unwrap());
    assert!(store.release(o, &account(1)).await.unwrap());
    assert_eq!(store.holder(o).await.unwrap(), None);

    // Concurrent claimers of one org: exactly one winner, everyone else sees the winner.
    let contested = org(501);
    let tasks: Vec<_> = (10..18)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { (n, store.claim(contested, &account(n), 9).await.unwrap()) })
        })
        .collect();
    let mut winners = Vec::new();
    let mut held_by = BTreeSet::new();
    for t in tasks {
        match t.await.unwrap() {
            (n, ClaimOutcome::Claimed) => winners.push(account(n)),
            (_, ClaimOutcome::HeldBy(c)) => {
                held_by.insert(c.account);
            }
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claimer wins");
    assert!(
        held_by.iter().all(|h| h == &winners[0]),
        "losers see the winner"
    );
    assert_eq!(
        store.holder(contested).await.unwrap().unwrap().account,
        winners[0]
    );
}

both!(
    claims_memory,
    claims_dynamodb,
    claims_contract,
    MemoryClaims::default(),
    |aws, names| DynamoClaims::new(aws.dynamodb(), names.claims_table)
);

// ---------------------------------------------------------------- org mirror

async fn mirror_contract<S: OrgMirror>(store: Arc<S>) {
    let acme = MirroredOrg::new(
        org(1),
        "Acme",
        Some("001000000000001AAA".into()),
        ["acme.com", "acme.io"],
        Some("2024-01-01T00:00:00Z".into()),
    );
    let acme_eu = MirroredOrg::new(org(2), "Acme EU", None, ["ACME.com"], None);
    let other = MirroredOrg::new(
        org(3),
        "Globex",
        Some("GLOBEX-1".into()),
        ["globex.com"],
        None,
    );
    for o in [&acme, &acme_eu, &other] {
        assert_eq!(store.upsert(o).await.unwrap(), UpsertOutcome::Written);
    }
    assert_eq!(store.get(org(1)).await.unwrap().unwrap(), acme);
    // One domain, several orgs; any case.
    let ids = |v: Vec<MirroredOrg>| v.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.by_domain("Acme.COM").await.unwrap()),
        vec![org(1), org(2)]
    );
    assert_eq!(ids(store.by_domain("acme.io").await.unwrap()), vec![org(1)]);
    assert!(store.by_domain("nobody.com").await.unwrap().is_empty());
    // A domain typed with a trailing dot (or spaces) is the same domain, as resolution
    // compares it (the chaos run's wrong links: the worker looks up `dotted.example`).
    let dotted = MirroredOrg::new(org(4), "Dotted", None, [" Dotted.Example. "], None);
    assert_eq!(dotted.domains, vec!["dotted.example".to_string()]);
    store.upsert(&dotted).await.unwrap();
    assert_eq!(
        ids(store.by_domain("dotted.example").await.unwrap()),
        vec![org(4)]
    );
    assert_eq!(
        ids(store.by_domain("DOTTED.example.").await.unwrap()),
        vec![org(4)]
    );
    store.delete(org(4)).await.unwrap();
    // external_id compares case-insensitively, like Zendesk.
    assert_eq!(
        ids(store.by_external_id("001000000000001aaa").await.unwrap()),
        vec![org(1)]
    );
    assert_eq!(
        ids(store.by_external_id("globex-1").await.unwrap()),
        vec![org(3)]
    );
    // An update moves the domain lookups with it.
    let moved = MirroredOrg::new(
        org(1),
        "Acme Inc",
        Some("001000000000001AAA".into()),
        ["acme.io", "acme.net"],
        Some("2024-02-01T00:00:00Z".into()),
    );
    assert_eq!(store.upsert(&moved).await.unwrap(), UpsertOutcome::Written);
    assert_eq!(
        ids(store.by_domain("acme.com").await.unwrap()),
        vec![org(2)]
    );
    assert_eq!(
        ids(store.by_domain("acme.net").await.unwrap()),
        vec![org(1)]
    );
    assert_eq!(store.get(org(1)).await.unwrap().unwrap().name, "Acme Inc");
    // An older copy (a late webhook) is dropped.
    assert_eq!(store.upsert(&acme).await.unwrap(), UpsertOutcome::Stale);
    assert_eq!(store.get(org(1)).await.unwrap().unwrap(), moved);
    // Delete removes the org and its lookups.
    store.delete(org(1)).await.unwrap();
    assert_eq!(store.get(org(1)).await.unwrap(), None);
    assert!(store.by_domain("acme.io").await.unwrap().is_empty());
    assert!(
        store
            .by_external_id("001000000000001AAA")
            .await
            .unwrap()
            .is_empty()
    );
    // Many at once (a listing's page): as one upsert each, past one bulk read's 100 orgs.
    let stamp = |m: u8| Some(format!("2024-{m:02}-01T00:00:00Z"));
    let many: Vec<MirroredOrg> = (100..250)
        .map(|n| {
            MirroredOrg::new(
                org(n),
                format!("Org {n}"),
                None,
                [format!("d{n}.example")],
                stamp(3),
            )
        })
        .collect();
    let outcomes = store.upsert_many(&many).await.unwrap();
    assert_eq!(outcomes, vec![UpsertOutcome::Written; many.len()]);
    assert_eq!(
        ids(store.by_domain("d249.example").await.unwrap()),
        vec![org(249)]
    );
    // Again: one moved to another domain, one older copy, the rest as they are.
    let mut again = many.clone();
    again[0] = MirroredOrg::new(org(100), "Org 100", None, ["moved.example"], stamp(4));
    again[1] = MirroredOrg::new(org(101), "Old name", None, ["old.example"], stamp(1));
    let outcomes = store.upsert_many(&again).await.unwrap();
    assert_eq!(outcomes.len(), again.len());
    assert_eq!(
        (&outcomes[0], &outcomes[1], &outcomes[2]),
        (
            &UpsertOutcome::Written,
            &UpsertOutcome::Stale,
            &UpsertOutcome::Written
        )
    );
    assert!(store.by_domain("d100.example").await.unwrap().is_empty());
    assert_eq!(
        ids(store.by_domain("moved.example").await.unwrap()),
        vec![org(100)]
    );
    assert!(store.by_domain("old.example").await.unwrap().is_empty());
    assert_eq!(store.get(org(101)).await.unwrap().unwrap(), many[1]);
    assert_eq!(store.get(org(180)).await.unwrap().unwrap(), many[80]);
    assert!(store.upsert_many(&[]).await.unwrap().is_empty());
    for o in &many {
        store.delete(o.id).await.unwrap();
    }
    assert!(store.by_domain("moved.example").await.unwrap().is_empty());
    // Checkpoints for a resumable listing.
    assert_eq!(store.checkpoint("orgs").await.unwrap(), None);
    store
        .save_checkpoint("orgs", Some("cursor-2"), 1)
        .await
        .unwrap();
    assert_eq!(
        store.checkpoint("orgs").await.unwrap().as_deref(),
        Some("cursor-2")
    );
    store.save_checkpoint("orgs", None, 2).await.unwrap();
    assert_eq!(store.checkpoint("orgs").await.unwrap(), None);
    // The completeness marker: absent while only rows were written; once a full listing
    // marks it, it is read back, and it is never taken for an organization.
    assert_eq!(store.filled().await.unwrap(), None);
    let orgs_before = store.all().await.unwrap();
    store
        .mark_filled("reconcile", 1_700_000_000_000)
        .await
        .unwrap();
    let filled = store.filled().await.unwrap().expect("marked");
    assert_eq!(
        (filled.by.as_str(), filled.at_ms),
        ("reconcile", 1_700_000_000_000)
    );
    assert_eq!(store.all().await.unwrap(), orgs_before);
}

both!(
    mirror_memory,
    mirror_dynamodb,
    mirror_contract,
    MemoryMirror::default(),
    |aws, names| DynamoMirror::new(aws.dynamodb(), names.org_mirror_table)
);

// ---------------------------------------------------------------- exceptions

fn finding(kind: ExceptionKind, acct: u32, evidence: &str) -> Finding {
    Finding::new(kind, [account(acct)], [org(u64::from(acct) + 100)])
        .with_evidence(Evidence::new().with("seen", evidence))
}

async fn exceptions_contract<S: ExceptionStore>(store: Arc<S>) {
    let names = BTreeMap::from([(account(1).to_string(), "Acme".to_string())]);
    let collision = finding(ExceptionKind::DomainCollision, 1, "e1");
    let row = store.upsert(&collision, &names, 100).await.unwrap();
    assert_eq!(row.status, ExceptionStatus::Open);
    assert_eq!(
        (row.first_seen_ms, row.last_seen_ms, row.times_seen),
        (100, 100, 1)
    );
    assert_eq!(row.names, names);
    // Seen again: same row, refreshed.
    let row = store
        .upsert(&collision, &BTreeMap::new(), 200)
        .await
        .unwrap();
    assert_eq!(
        (row.first_seen_ms, row.last_seen_ms, row.times_seen),
        (100, 200, 2)
    );
    assert_eq!(
        store.get(&collision.fingerprint()).await.unwrap().unwrap(),
        row
    );

    // Resolved by a person: stays resolved while the evidence is the same...
    let resolved = store
        .set_status(
            &collision.fingerprint(),
            ExceptionStatus::Resolved,
            "ana",
            "linked by hand",
            250,
        )
        .await
        .unwrap()
        .unwrap();
    let change = resolved.status_change.clone().unwrap();
    assert_eq!(
        (change.by.as_str(), change.reason.as_str(), change.at_ms),
        ("ana", "linked by hand", 250)
    );
    let row = store
        .upsert(&collision, &BTreeMap::new(), 300)
        .await
        .unwrap();
    assert_eq!(row.status, ExceptionStatus::Resolved);
    // ...and reopens when it changes.
    let changed = finding(ExceptionKind::DomainCollision, 1, "e2");
    assert_eq!(changed.fingerprint(), collision.fingerprint());
    let row = store.upsert(&changed, &BTreeMap::new(), 400).await.unwrap();
    assert_eq!(row.status, ExceptionStatus::Open);
    assert_eq!(row.status_change.unwrap().by, "orglink");
    assert_eq!(row.times_seen, 4);
    // Dismissed behaves the same way.
    store
        .set_status(
            &collision.fingerprint(),
            ExceptionStatus::Dismissed,
            "bo",
            "shared domain",
            450,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .upsert(&changed, &BTreeMap::new(), 460)
            .await
            .unwrap()
            .status,
        ExceptionStatus::Dismissed
    );
    assert_eq!(
        store
            .set_status(
                &finding(ExceptionKind::NameDrift, 99, "x").fingerprint(),
                ExceptionStatus::Resolved,
                "a",
                "b",
                1
            )
            .await
            .unwrap(),
        None
    );

    // The review queue: by status, kind and severity, newest first.
    let legacy = finding(ExceptionKind::PossibleLegacyOrg, 2, "e");
    let dup = finding(ExceptionKind::DuplicateExternalId, 3, "e");
    let drift = finding(ExceptionKind::NameDrift, 4, "e");
    store.upsert(&legacy, &BTreeMap::new(), 500).await.unwrap();
    store.upsert(&dup, &BTreeMap::new(), 700).await.unwrap();
    store.upsert(&drift, &BTreeMap::new(), 600).await.unwrap();
    let fps = |rows: Vec<ExceptionRow>| rows.into_iter().map(|r| r.fingerprint).collect::<Vec<_>>();
    let open = store
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    assert_eq!(
        fps(open),
        vec![dup.fingerprint(), drift.fingerprint(), legacy.fingerprint()]
    );
    let mut f = ExceptionFilter::status(ExceptionStatus::Open);
    f.kind = Some(ExceptionKind::NameDrift);
    assert_eq!(
        fps(store.list(&f).await.unwrap()),
        vec![drift.fingerprint()]
    );
    let mut f = ExceptionFilter::status(ExceptionStatus::Open);
    f.severity = Some(Severity::Critical);
    assert_eq!(fps(store.list(&f).await.unwrap()), vec![dup.fingerprint()]);
    let mut f = ExceptionFilter::status(ExceptionStatus::Open);
    f.limit = Some(2);
    assert_eq!(
        fps(store.list(&f).await.unwrap()),
        vec![dup.fingerprint(), drift.fingerprint()]
    );
    let dismissed = store
        .list(&ExceptionFilter::status(ExceptionStatus::Dismissed))
        .await
        .unwrap();
    assert_eq!(fps(dismissed), vec![collision.fingerprint()]);

    // Auto-resolve: open rows of the run's kinds that it did not see, last seen before the
    // run's snapshot; others untouched. A row opened after the snapshot (750) survives.
    let kinds = BTreeSet::from([ExceptionKind::PossibleLegacyOrg, ExceptionKind::NameDrift]);
    let late = finding(ExceptionKind::NameDrift, 5, "opened after the snapshot");
    store.upsert(&late, &BTreeMap::new(), 760).await.unwrap();
    let seen = BTreeSet::from([drift.fingerprint()]);
    let gone = store.auto_resolve(&seen, &kinds, 750, 800).await.unwrap();
    assert_eq!(gone, vec![legacy.fingerprint()]);
    assert_eq!(
        store
            .get(&late.fingerprint())
            .await
            .unwrap()
            .unwrap()
            .status,
        ExceptionStatus::Open
    );
    let row = store.get(&legacy.fingerprint()).await.unwrap().unwrap();
    assert_eq!(row.status, ExceptionStatus::AutoResolved);
    assert_eq!(
        store.get(&dup.fingerprint()).await.unwrap().unwrap().status,
        ExceptionStatus::Open
    );
    // An auto-resolved problem that comes back reopens, even with the same evidence.
    assert_eq!(
        store
            .upsert(&legacy, &BTreeMap::new(), 900)
            .await
            .unwrap()
            .status,
        ExceptionStatus::Open
    );
}

both!(
    exceptions_memory,
    exceptions_dynamodb,
    exceptions_contract,
    MemoryExceptions::default(),
    |aws, names| DynamoExceptions::new(aws.dynamodb(), names.exceptions_table)
);

// ---------------------------------------------------------------- rate budget

async fn budget_contract<S: BudgetStore + 'static>(store: Arc<S>) {
    let cfg = BucketConfig::new(10, 2.0).unwrap();
    assert_eq!(
        store.take("zendesk", 4, &cfg, 1_000).await.unwrap(),
        Take::Granted { remaining: 6 }
    );
    assert_eq!(
        store.take("zendesk", 6, &cfg, 1_000).await.unwrap(),
        Take::Granted { remaining: 0 }
    );
    assert_eq!(
        store.take("zendesk", 1, &cfg, 1_000).await.unwrap(),
        Take::Wait { ms: 500 }
    );
    assert_eq!(
        store.take("zendesk", 1, &cfg, 1_500).await.unwrap(),
        Take::Granted { remaining: 0 }
    );
    // Buckets are independent; a take larger than the bucket is refused.
    assert_eq!(
        store.take("salesforce", 1, &cfg, 1_000).await.unwrap(),
        Take::Granted { remaining: 9 }
    );
    assert!(
        !store
            .take("salesforce", 11, &cfg, 1_000)
            .await
            .unwrap_err()
            .is_transient()
    );

    // Several takers at once, at one instant (no refill): exactly the capacity is granted,
    // never more (no double spend) and never less (no lost update).
    let cap = 25;
    let cfg = BucketConfig::new(cap, 1.0).unwrap();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut granted = 0u32;
                while let Take::Granted { .. } =
                    store.take("shared", 1, &cfg, 50_000).await.unwrap()
                {
                    granted += 1;
                }
                granted
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, cap);
    // Three seconds later three tokens are back.
    let mut more = 0;
    while let Take::Granted { .. } = store.take("shared", 1, &cfg, 53_000).await.unwrap() {
        more += 1;
    }
    assert_eq!(more, 3);

    // What an API says corrects the bucket: a cap on what is left, and a pause.
    let cfg = BucketConfig::new(10, 1.0).unwrap();
    store.restrict("corrected", &cfg, 2, None, 0).await.unwrap();
    assert_eq!(
        store.take("corrected", 2, &cfg, 0).await.unwrap(),
        Take::Granted { remaining: 0 }
    );
    store
        .restrict("corrected", &cfg, 0, Some(5_000), 0)
        .await
        .unwrap();
    assert_eq!(
        store.take("corrected", 1, &cfg, 1_000).await.unwrap(),
        Take::Wait { ms: 5_000 }
    );
    assert_eq!(
        store.take("corrected", 1, &cfg, 6_000).await.unwrap(),
        Take::Granted { remaining: 0 }
    );
}

/// Two processes' clients drawing from one DynamoDB budget: what one spends, the other sees.
#[tokio::test]
async fn rate_budget_is_shared_across_processes_on_dynamodb() {
    use std::time::Duration;

    use orglink_shared::http::System;
    use orglink_shared::http::budget::{BudgetConfig, BudgetRefusal, CallSpec, RateBudget};

    let (aws, stack) = moto_stack("sharedbudget").await;
    let names = stack.names().unwrap();
    let store = Arc::new(DynamoBudget::new(aws.dynamodb(), names.rate_budget_table));
    let process = || {
        SharedRateBudget::new(
            store.clone(),
            BudgetConfig::salesforce(600, 0),
            BudgetConfig::zendesk(60, 100),
        )
    };
    let (worker, reconcile) = (process(), process());
    let call = CallSpec {
        system: System::Zendesk,
        endpoint: "zd.show",
        record: None,
    };
    // zendesk(60, 100%) has a burst of 10, shared by both.
    for i in 0..10 {
        let who = if i % 2 == 0 { &worker } else { &reconcile };
        who.take(call, Duration::ZERO).await.unwrap();
    }
    for who in [&worker, &reconcile] {
        assert!(matches!(
            who.take(call, Duration::ZERO).await.unwrap_err(),
            BudgetRefusal::Busy {
                system: System::Zendesk,
                ..
            }
        ));
    }
}

both!(
    budget_memory,
    budget_dynamodb,
    budget_contract,
    MemoryBudget::default(),
    |aws, names| DynamoBudget::new(aws.dynamodb(), names.rate_budget_table)
);

// ---------------------------------------------------------------- work queue

fn message(acct: u32, event: &str) -> QueueMessage {
    QueueMessage {
        account: account(acct),
        event_id: event.into(),
        body: format!(
            "{{\"account\":\"{}\",\"event\":\"{event}\"}}",
            account(acct)
        ),
    }
}

async fn queue_contract<S: WorkQueue>(queue: Arc<S>) {
    let a1 = message(1, "e1");
    let a2 = message(1, "e2");
    let b1 = message(2, "e1");
    queue.send(&a1).await.unwrap();
    // The same event for the same account is deduplicated.
    queue.send(&a1).await.unwrap();
    assert!(
        queue
            .send_batch(&[a2.clone(), b1.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    // One group at a time: a1 in flight blocks a2; b1 is free.
    let got = queue.receive(1, Some(60)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, a1.body);
    assert_eq!(got[0].group_id.as_deref(), Some(account(1).as_str()));
    assert_eq!(got[0].dedup_id.as_deref(), Some(a1.dedup_id().as_str()));
    assert_eq!(got[0].receive_count, 1);
    let next = queue.receive(10, Some(60)).await.unwrap();
    assert_eq!(
        next.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        vec![b1.body.clone()]
    );
    queue.delete(&next[0].receipt_handle).await.unwrap();
    // Deleting a1 frees its group: a2 comes next.
    queue.delete(&got[0].receipt_handle).await.unwrap();
    let after = queue.receive(10, Some(60)).await.unwrap();
    assert_eq!(
        after.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        vec![a2.body.clone()]
    );
    queue.delete(&after[0].receipt_handle).await.unwrap();
    assert!(queue.receive(10, Some(60)).await.unwrap().is_empty());

    // Batches larger than 10 are split.
    let many: Vec<_> = (10..23).map(|n| message(n, "bulk")).collect();
    assert!(queue.send_batch(&many).await.unwrap().is_empty());
    let mut bodies = BTreeSet::new();
    loop {
        let got = queue.receive(10, Some(60)).await.unwrap();
        if got.is_empty() {
            break;
        }
        for m in got {
            bodies.insert(m.body.clone());
            queue.delete(&m.receipt_handle).await.unwrap();
        }
    }
    assert_eq!(bodies.len(), many.len());

    // A message received more than the maximum (the template's MaxReceiveCount) goes to
    // the DLQ; redrive brings it back.
    let max_receives = orglink_harness::Template::max_receive_count();
    let poison = message(3, "poison");
    queue.send(&poison).await.unwrap();
    for attempt in 1..=max_receives {
        let got = queue.receive(1, Some(60)).await.unwrap();
        assert_eq!(got.len(), 1, "attempt {attempt}");
        assert_eq!(got[0].receive_count, attempt);
        queue
            .change_visibility(&got[0].receipt_handle, 0)
            .await
            .unwrap();
    }
    assert!(
        queue.receive(1, Some(60)).await.unwrap().is_empty(),
        "moved to the DLQ"
    );
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(
        dead.iter().map(|m| m.body.clone()).collect::<Vec<_>>(),
        vec![poison.body.clone()]
    );
    assert_eq!(
        queue.dead_letters(10).await.unwrap().len(),
        1,
        "looking leaves it there"
    );
    assert_eq!(queue.redrive(10).await.unwrap(), 1);
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
    let back = queue.receive(1, Some(60)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body, poison.body);
    assert_eq!(back[0].group_id.as_deref(), Some(account(3).as_str()));
    assert!(
        queue.receive(0, None).await.is_err(),
        "0 messages is refused"
    );
}

both!(
    queue_memory,
    queue_sqs,
    queue_contract,
    MemoryQueue::new(360, orglink_harness::Template::max_receive_count()),
    |aws, names| SqsQueue::new(aws.sqs(), names.sync_queue_url, names.sync_dlq_url)
);

// ---------------------------------------------------------------- reconcile runs

async fn runs_contract<S: RunStore>(store: Arc<S>) {
    let day = 86_400_000;
    assert!(store.start("run-1", "full", NOW).await.unwrap());
    assert!(
        !store.start("run-1", "full", NOW + 1).await.unwrap(),
        "ids are unique"
    );
    store.checkpoint("run-1", "page-7").await.unwrap();
    let run = store.get("run-1", NOW + 2).await.unwrap().unwrap();
    assert_eq!(
        (run.status, run.cursor.as_deref()),
        (RunStatus::Running, Some("page-7"))
    );
    // An interrupted run is not the last complete one.
    let summary = serde_json::json!({"accounts": 120, "exceptions": 3});
    store
        .finish("run-1", RunStatus::Incomplete, &summary, NOW + 3)
        .await
        .unwrap();
    assert_eq!(store.last_complete("full").await.unwrap(), None);
    assert!(store.start("run-2", "full", NOW + day).await.unwrap());
    assert!(store.start("run-3", "full", NOW + 2 * day).await.unwrap());
    let done = store
        .finish("run-3", RunStatus::Complete, &summary, NOW + 2 * day + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.summary.as_ref(), Some(&summary));
    // run-2 started earlier and finishes later: it does not replace run-3 as the latest.
    store
        .finish("run-2", RunStatus::Complete, &summary, NOW + 2 * day + 9)
        .await
        .unwrap();
    let latest = store.last_complete("full").await.unwrap().unwrap();
    assert_eq!(
        (latest.run_id.as_str(), latest.status),
        ("run-3", RunStatus::Complete)
    );
    assert_eq!(store.last_complete("delta").await.unwrap(), None);
    assert_eq!(
        store
            .finish("nope", RunStatus::Complete, &summary, 0)
            .await
            .unwrap(),
        None
    );
    // Past retention a run is gone (even before TTL deletes it), and its id can be reused.
    let expired = (run.expiration_s + 1) * 1000;
    assert_eq!(store.get("run-1", expired).await.unwrap(), None);
    assert!(store.start("run-1", "full", expired).await.unwrap());

    // The lease: one holder at a time; a stale one is taken over, and its old holder can
    // neither renew nor release it.
    let stale = 1_000;
    assert_eq!(store.lease("reconcile").await.unwrap(), None);
    assert_eq!(
        store
            .take_lease("reconcile", "run-a", NOW, stale)
            .await
            .unwrap(),
        LeaseTake::Taken { from: None }
    );
    let held = Lease {
        holder: "run-a".into(),
        renewed_at_ms: NOW + 500,
    };
    assert!(
        store
            .renew_lease("reconcile", "run-a", NOW + 500)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .take_lease("reconcile", "run-b", NOW + 1_400, stale)
            .await
            .unwrap(),
        LeaseTake::Busy(held.clone())
    );
    assert!(
        !store
            .renew_lease("reconcile", "run-b", NOW + 1_400)
            .await
            .unwrap()
    );
    // Another lease name is another lease.
    assert_eq!(
        store
            .take_lease("other", "run-b", NOW + 1_400, stale)
            .await
            .unwrap(),
        LeaseTake::Taken { from: None }
    );
    // Not renewed for longer than `stale`: taken over.
    assert_eq!(
        store
            .take_lease("reconcile", "run-b", NOW + 1_600, stale)
            .await
            .unwrap(),
        LeaseTake::Taken { from: Some(held) }
    );
    assert!(
        !store
            .renew_lease("reconcile", "run-a", NOW + 1_700)
            .await
            .unwrap()
    );
    assert_eq!(
        store.release_lease("reconcile", "run-a").await.unwrap(),
        None
    );
    assert_eq!(
        store.lease("reconcile").await.unwrap().map(|l| l.holder),
        Some("run-b".to_string())
    );
    // A refused run waits behind the holder only while that holder holds the lease; the
    // holder's release hands it the waiter's kind, once.
    assert!(
        !store
            .wait_behind("reconcile", "run-a", "full")
            .await
            .unwrap()
    );
    assert!(
        store
            .wait_behind("reconcile", "run-b", "full")
            .await
            .unwrap()
    );
    // Released by its holder: free for the next run, and the old holder still cannot renew.
    assert_eq!(
        store.release_lease("reconcile", "run-b").await.unwrap(),
        Some("full".to_string())
    );
    assert_eq!(
        store.release_lease("reconcile", "run-b").await.unwrap(),
        None
    );
    assert_eq!(store.lease("reconcile").await.unwrap(), None);
    assert!(
        !store
            .renew_lease("reconcile", "run-b", NOW + 1_800)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .take_lease("reconcile", "run-c", NOW + 1_800, stale)
            .await
            .unwrap(),
        LeaseTake::Taken { from: None }
    );
    // A take-over drops whoever waited behind the stale holder (the new holder runs now).
    assert!(
        store
            .wait_behind("reconcile", "run-c", "full")
            .await
            .unwrap()
    );
    assert!(matches!(
        store
            .take_lease("reconcile", "run-d", NOW + 5_000, stale)
            .await
            .unwrap(),
        LeaseTake::Taken { from: Some(_) }
    ));
    assert_eq!(
        store.release_lease("reconcile", "run-d").await.unwrap(),
        None
    );
}

both!(
    runs_memory,
    runs_dynamodb,
    runs_contract,
    MemoryRuns::default(),
    |aws, names| DynamoRuns::new(aws.dynamodb(), names.runs_table)
);

// ---------------------------------------------------------------- listing stamps

/// A full listing stamps what it saw; what it did not stamp is what Zendesk no longer lists.
/// Upserts (which replace the org item) keep the stamp; deleting the org drops it.
async fn mirror_stamps_contract<S: OrgMirror>(store: Arc<S>) {
    let at = |id: u64| {
        MirroredOrg::new(
            org(id),
            format!("Org {id}"),
            None,
            [format!("org-{id}.example")],
            Some("2024-01-01T00:00:00Z".into()),
        )
    };
    // Past one BatchWriteItem's 25.
    let listed: Vec<OrgId> = (1..=30).map(org).collect();
    for id in 1..=32 {
        store.upsert(&at(id)).await.unwrap();
    }
    store.stamp_listed(&listed, "full-1").await.unwrap();
    let ids = |orgs: Vec<MirroredOrg>| orgs.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.not_listed("full-1").await.unwrap()),
        vec![org(31), org(32)]
    );
    // A newer copy written after the stamp keeps it.
    let mut renamed = at(5);
    renamed.name = "Renamed".into();
    renamed.updated_at = Some("2024-02-01T00:00:00Z".into());
    store.upsert(&renamed).await.unwrap();
    assert_eq!(
        ids(store.not_listed("full-1").await.unwrap()),
        vec![org(31), org(32)]
    );
    // Another listing's stamps are not this one's; a stamp names the listing that last saw
    // the org.
    store
        .stamp_listed(&[org(1), org(31)], "full-2")
        .await
        .unwrap();
    let unstamped = ids(store.not_listed("full-2").await.unwrap());
    assert_eq!(unstamped.len(), 30);
    assert!(!unstamped.contains(&org(1)) && !unstamped.contains(&org(31)));
    // A deleted org is nowhere, and stamping nothing is no call.
    store.delete(org(32)).await.unwrap();
    store.stamp_listed(&[], "full-1").await.unwrap();
    assert_eq!(
        ids(store.not_listed("full-1").await.unwrap()),
        vec![org(1), org(31)]
    );
    // Stamps are neither orgs nor lookups.
    assert_eq!(store.all().await.unwrap().len(), 31);
    assert_eq!(
        ids(store.by_domain("org-5.example").await.unwrap()),
        vec![org(5)]
    );
}

both!(
    mirror_stamps_memory,
    mirror_stamps_dynamodb,
    mirror_stamps_contract,
    MemoryMirror::default(),
    |aws, names| DynamoMirror::new(aws.dynamodb(), names.org_mirror_table)
);

// ---------------------------------------------------------------- reconcile run items

/// A run's small items: kept by sequence number, read back in order, replaced when written
/// again, refused past the size bound, and an error when one is missing.
async fn run_items_contract<S: RunStore>(store: Arc<S>) {
    assert!(store.start("run-9", "full", NOW).await.unwrap());
    for seq in 0..3 {
        let data = format!("{{\"ticket\":{seq}}}");
        store
            .put_item("run-9", "ticket", seq, &data, NOW)
            .await
            .unwrap();
    }
    store
        .put_item("run-9", "ticket", 1, "{\"ticket\":11}", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.items("run-9", "ticket", 3).await.unwrap(),
        ["{\"ticket\":0}", "{\"ticket\":11}", "{\"ticket\":2}"]
    );
    assert!(store.items("run-9", "ticket", 0).await.unwrap().is_empty());
    // Items are not the run: its record and checkpoint are untouched.
    store.checkpoint("run-9", "cp").await.unwrap();
    let run = store.get("run-9", NOW).await.unwrap().unwrap();
    assert_eq!(run.cursor.as_deref(), Some("cp"));
    // Another run's items, or one past the count, are not there.
    assert!(store.items("run-8", "ticket", 1).await.is_err());
    assert!(store.items("run-9", "ticket", 4).await.is_err());
    let big = "x".repeat(orglink_shared::aws::runs::RUN_ITEM_MAX_BYTES + 1);
    assert!(
        store
            .put_item("run-9", "ticket", 3, &big, NOW)
            .await
            .is_err()
    );
}

both!(
    run_items_memory,
    run_items_dynamodb,
    run_items_contract,
    MemoryRuns::default(),
    |aws, names| DynamoRuns::new(aws.dynamodb(), names.runs_table)
);

// ---------------------------------------------------------------- secrets

async fn secret_contract<S: SecretSource>(source: Arc<S>) {
    let secret = source.fetch().await.unwrap();
    assert!(secret.expose().contains("zd-token-123"));
    assert!(!format!("{secret:?} {secret}").contains("zd-token-123"));
}

#[tokio::test]
async fn secret_memory() {
    secret_contract(Arc::new(StaticSecret(SecretString::new(
        "{\"zendesk\":\"zd-token-123\"}",
    ))))
    .await;
}

#[tokio::test]
async fn secret_secrets_manager() {
    let (aws, stack) = moto_stack("secret").await;
    let names = stack.names().unwrap();
    aws.secrets()
        .put_secret_value()
        .secret_id(&names.secret_id)
        .secret_string("{\"zendesk\":\"zd-token-123\"}")
        .send()
        .await
        .unwrap();
    secret_contract(Arc::new(SecretsManagerSecret::new(
        aws.secrets(),
        names.secret_id,
    )))
    .await;
    // A secret that does not exist is a configuration problem, not a retry.
    let missing = SecretsManagerSecret::new(aws.secrets(), "nope/credentials");
    let err = missing.fetch().await.unwrap_err();
    assert!(!err.is_transient(), "{err}");
}
