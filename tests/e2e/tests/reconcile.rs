//! Reconcile end to end on moto and the sandbox, through the production wiring
//! (`orglink_reconcile::aws::from_aws`: DynamoDB mirror with listing stamps, exceptions, runs
//! and their items (misattributed tickets), SQS repairs, the shared rate budget, the
//! credentials secret; started by `orglink_e2e::start_reconcile`):
//!
//! - a hand-built linked world with one of each injected drift (a ticket on the wrong
//!   organization among them) gives exactly one row of the right kind per drift (or the safe
//!   repair, where the contract says orglink fixes it), and nothing for the clean account;
//! - a second run changes nothing; fixing a cause auto-resolves its row on the next full run;
//!   a run stopped by the Salesforce reserve auto-resolves nothing;
//! - the review flow: resolving needs who, why and an offered action; the action flows back as
//!   an operator sync request or a shared domain that later runs honour;
//! - a small generated world cut into many invocations ends exactly like an uninterrupted run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};

use orglink_e2e::start_reconcile;
use orglink_harness::{AwsEnv, LocalStack, Sandbox, moto_stack};
use orglink_reconcile::aws::AwsReconciler;
use orglink_reconcile::review::{Decision, FollowUp, Review, ReviewError, ReviewLists};
use orglink_reconcile::{Limits, Mode, ReconcileEvent, RunOutcome, RunState, StopReason};
use orglink_shared::aws::{
    ExceptionFilter, ExceptionRow, ExceptionStatus, ExceptionStore, LinkRecord, LinkStore,
    RunStore, WorkQueue,
};
use orglink_shared::exceptions::{Action, ExceptionKind};
use orglink_shared::http::CallLog;
use orglink_shared::sync_request::SyncRequest;

/// The embedded default configuration's Salesforce org (the sandbox is started as it).
const BOUND_ORG: &str = "00D000000000001EAA";

fn id(n: u64) -> String {
    orglink_sandbox::salesforce::ids::generate("001", n)
}

fn account(n: u64, name: &str, website: &str, reviewed: Option<&str>, org: Option<u64>) -> Value {
    json!({
        "Id": id(n), "Name": name, "Website": website, "Type": "Customer - Direct",
        "Zendesk_Domain__c": reviewed, "Zendesk_Org_ID__c": org.map(|o| o.to_string()),
        "Zendesk_Sync_Status__c": org.map(|_| "Linked"),
    })
}

fn org(id_: u64, name: &str, key: Option<String>, domains: &[&str]) -> Value {
    json!({"id": id_, "name": name, "external_id": key, "domain_names": domains,
           "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"})
}

/// A ticket updated `days_ago` days before now (the run reads the last 90 days of tickets).
fn ticket(id_: u64, org: u64, requester: u64, days_ago: i64) -> Value {
    let at = time::OffsetDateTime::now_utc() - time::Duration::days(days_ago);
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    json!({"id": id_, "subject": "Help", "status": "open", "requester_id": requester,
           "submitter_id": requester, "organization_id": org, "created_at": at, "updated_at": at})
}

fn user(id_: u64, email: &str, org: u64) -> Value {
    json!({"id": id_, "name": email, "email": email, "role": "end-user", "organization_id": org})
}

/// A linked world with one drift each (see the module docs). Returns the scenario.
fn drift_world() -> Value {
    let mut loser = account(
        9,
        "Hotel Old",
        "hotel-old.com",
        Some("hotel-old.com"),
        Some(109),
    );
    loser["IsDeleted"] = json!(true);
    loser["MasterRecordId"] = json!(id(8));
    json!({
        "salesforce": {"accounts": [
            // 1: clean.
            account(1, "Alpha Corp", "alpha.com", Some("alpha.com"), Some(101)),
            // 2: renamed in Salesforce (the org still has the old name, which is free).
            account(2, "Bravo Holdings", "bravo.com", Some("bravo.com"), Some(102)),
            // 3: Website changed; orglink wrote the reviewed domain (link record below).
            account(3, "Charlie Ltd", "charlie-new.com", Some("charlie.com"), Some(103)),
            // 4: a person changed the reviewed domain; Website disagrees.
            account(4, "Delta GmbH", "delta.com", Some("delta-group.com"), Some(104)),
            // 5: its org was deleted in Zendesk.
            account(5, "Echo SA", "echo.com", Some("echo.com"), Some(105)),
            // 6, 7: 6's org was merged into 7's in Zendesk (deleted; its domain moved).
            account(6, "Foxtrot AB", "foxtrot.com", Some("foxtrot.com"), Some(106)),
            account(7, "Golf Oy", "golf.com", Some("golf.com"), Some(107)),
            // 8, 9: 9 was merged into 8 in Salesforce; both had orgs.
            account(8, "Hotel Group", "hotel.com", Some("hotel.com"), Some(108)),
            loser,
            // 10: a hand-made org carries its key too.
            account(10, "India Corp", "india.com", Some("india.com"), Some(110)),
            // 11, 12: a person added 11's domain to 12's org.
            account(11, "Juliet BV", "juliet.com", Some("juliet.com"), Some(112)),
            account(12, "Kilo NV", "kilo.com", Some("kilo.com"), Some(113)),
            // 13: a ticket on its org was raised by a member of Alpha's org only.
            account(13, "Lima Corp", "lima.com", Some("lima.com"), Some(114)),
        ]},
        "zendesk": {"organizations": [
            org(101, "Alpha Corp", Some(id(1)), &["alpha.com"]),
            org(102, "Bravo Inc", Some(id(2)), &["bravo.com"]),
            org(103, "Charlie Ltd", Some(id(3)), &["charlie.com"]),
            org(104, "Delta GmbH", Some(id(4)), &["delta.com"]),
            org(107, "Golf Oy", Some(id(7)), &["golf.com", "foxtrot.com"]),
            org(108, "Hotel Group", Some(id(8)), &["hotel.com"]),
            org(109, "Hotel Old", Some(id(9)), &["hotel-old.com"]),
            org(110, "India Corp", Some(id(10)), &["india.com"]),
            org(111, "India Corp (copy)", Some(id(10)), &[]),
            org(112, "Juliet BV", Some(id(11)), &["juliet.com"]),
            org(113, "Kilo NV", Some(id(12)), &["kilo.com", "juliet.com"]),
            org(114, "Lima Corp", Some(id(13)), &["lima.com"]),
        ],
        "users": [user(501, "ann@alpha.com", 101), user(502, "lee@lima.com", 114)],
        "tickets": [ticket(9001, 114, 502, 3), ticket(9002, 114, 501, 2), ticket(9003, 101, 501, 2)]}
    })
}

struct Fixture {
    aws: AwsEnv,
    stack: LocalStack,
    sandbox: Option<Sandbox>,
    dir: PathBuf,
}

impl Fixture {
    async fn new(label: &str) -> Fixture {
        let (aws, stack) = moto_stack(label).await;
        let dir = std::env::temp_dir().join(format!("orglink-e2e-{}", stack.parameters["Prefix"]));
        std::fs::create_dir_all(&dir).unwrap();
        Fixture {
            aws,
            stack,
            sandbox: None,
            dir,
        }
    }

    /// (Re)starts the sandbox on `scenario`, as the bound Salesforce org.
    async fn serve(&mut self, scenario: &Value) {
        self.sandbox = None;
        let path = self.dir.join("scenario.json");
        std::fs::write(&path, serde_json::to_vec(scenario).unwrap()).unwrap();
        let sandbox = Sandbox::start_with(Some(&path), &["--salesforce-org-id", BOUND_ORG])
            .unwrap_or_else(|e| panic!("{e}"));
        self.sandbox = Some(sandbox);
    }

    /// A cold start of reconcile over this stack and sandbox.
    async fn reconciler(&self, settings: Value) -> AwsReconciler {
        let sandbox = self.sandbox.as_ref().expect("serve first");
        start_reconcile(
            &self.aws,
            &self.stack.names().unwrap(),
            sandbox,
            settings,
            CallLog::new(),
        )
        .await
    }

    async fn full(&self) -> RunOutcome {
        self.reconciler(json!({}))
            .await
            .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
            .await
            .expect("the run")
    }
}

async fn open_rows(r: &AwsReconciler) -> Vec<ExceptionRow> {
    let mut rows = r
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    rows.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    rows
}

fn naming(rows: &[ExceptionRow], n: u64) -> Vec<ExceptionKind> {
    let a = id(n);
    rows.iter()
        .filter(|r| r.finding.accounts.iter().any(|x| x.as_str() == a))
        .map(|r| r.kind())
        .collect()
}

/// Every message on the sync queue, taken off it.
async fn drain(r: &AwsReconciler) -> Vec<SyncRequest> {
    let mut out = Vec::new();
    for _ in 0..50 {
        let batch = r.stores.queue.receive(10, Some(30)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            out.push(SyncRequest::from_body(&m.body).unwrap());
            r.stores.queue.delete(&m.receipt_handle).await.unwrap();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_drifts_are_found_once_and_fixed_causes_auto_resolve() {
    let mut fx = Fixture::new("reconcile-drift").await;
    let world = drift_world();
    fx.serve(&world).await;
    // orglink wrote account 3's reviewed domain (a Website change then is orglink's to follow).
    let r = fx.reconciler(json!({})).await;
    let mut record = LinkRecord::new(orglink_shared::ids::AccountId::parse(&id(3)).unwrap());
    record
        .written_salesforce
        .insert("Zendesk_Domain__c".into(), "charlie.com".into());
    r.stores.links.save(&record).await.unwrap();

    let first = r
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    assert_eq!(first.summary.state, RunState::Complete);
    let rows = open_rows(&r).await;
    use ExceptionKind::*;
    assert_eq!(naming(&rows, 1), [], "clean");
    assert_eq!(naming(&rows, 2), [], "a rename is a repair");
    assert_eq!(
        naming(&rows, 3),
        [],
        "orglink follows its own reviewed domain"
    );
    assert_eq!(
        naming(&rows, 4),
        [DomainDrift],
        "a person's reviewed domain"
    );
    assert_eq!(
        naming(&rows, 5),
        [],
        "a deleted org with nothing in its place: recreate"
    );
    assert_eq!(
        naming(&rows, 6),
        [DomainCollision],
        "merged in Zendesk: the domain moved"
    );
    assert_eq!(
        naming(&rows, 9),
        [OrphanedOrg],
        "merged in Salesforce, both had orgs"
    );
    assert_eq!(naming(&rows, 10), [DuplicateExternalId], "a hand-made copy");
    assert_eq!(
        naming(&rows, 11),
        [DomainCollision],
        "a domain added by hand"
    );
    assert_eq!(naming(&rows, 12), [DomainCollision]);
    assert_eq!(
        naming(&rows, 13),
        [TicketAttributionDrift],
        "a ticket on the wrong org"
    );
    assert_eq!(rows.len(), 6, "{rows:#?}");
    let tickets = rows
        .iter()
        .find(|r| r.kind() == TicketAttributionDrift)
        .unwrap();
    assert_eq!(
        tickets
            .finding
            .orgs
            .iter()
            .map(|o| o.get())
            .collect::<Vec<_>>(),
        [114]
    );
    for (name, value) in [
        ("misattributed_tickets", "1"),
        ("tickets", "9002"),
        ("requesters", "501"),
    ] {
        assert_eq!(
            tickets.finding.evidence.get(name),
            Some(&[value.to_string()][..]),
            "{name}"
        );
    }
    assert_eq!(first.summary.tickets.read, 3);
    assert_eq!(first.summary.tickets.requesters_looked_up, 1);
    let dup = rows
        .iter()
        .find(|r| r.kind() == DuplicateExternalId)
        .unwrap();
    assert_eq!(
        dup.finding.orgs.iter().map(|o| o.get()).collect::<Vec<_>>(),
        [110, 111]
    );
    assert_eq!(
        dup.names.get("111").map(String::as_str),
        Some("India Corp (copy)")
    );
    let orphan = rows.iter().find(|r| r.kind() == OrphanedOrg).unwrap();
    assert_eq!(
        orphan
            .finding
            .orgs
            .iter()
            .map(|o| o.get())
            .collect::<Vec<_>>(),
        [109]
    );

    // The safe repairs went to the sync queue, one per account, as the worker reads them.
    let repairs: BTreeMap<String, SyncRequest> = drain(&r)
        .await
        .into_iter()
        .map(|q| (q.account_id.to_string(), q))
        .collect();
    let note = |n: u64| {
        repairs
            .get(&id(n))
            .and_then(|q| q.note.clone())
            .unwrap_or_default()
    };
    assert!(note(2).contains("rename_org"), "{repairs:#?}");
    assert!(note(3).contains("add_domain"), "{}", note(3));
    assert!(
        note(5).contains("create_org") && note(5).contains("stored_org_gone"),
        "{}",
        note(5)
    );
    assert!(!repairs.contains_key(&id(1)));
    assert!(
        repairs
            .values()
            .all(|q| q.event_id == format!("reconcile:{}", first.summary.run_id))
    );
    assert_eq!(first.summary.repairs.enqueued as usize, repairs.len());
    assert!(
        first
            .metrics
            .iter()
            .any(|l| l.contains("\"ReconcileCompleted\":1"))
    );

    // A second run changes nothing.
    let second = fx.full().await;
    assert_eq!(
        (
            second.summary.rows.new,
            second.summary.rows.reopened,
            second.summary.rows.auto_resolved
        ),
        (0, 0, 0)
    );
    let again = open_rows(&r).await;
    assert_eq!(
        again
            .iter()
            .map(|r| (&r.fingerprint, &r.evidence_hash))
            .collect::<Vec<_>>(),
        rows.iter()
            .map(|r| (&r.fingerprint, &r.evidence_hash))
            .collect::<Vec<_>>()
    );
    assert!(again.iter().all(|r| r.times_seen == 2));

    // Fix three causes in Zendesk: the copy loses the key, the hand-added domain goes, the
    // ticket moves to its requester's organization.
    let mut fixed = world.clone();
    for o in fixed["zendesk"]["organizations"].as_array_mut().unwrap() {
        match o["id"].as_u64() {
            Some(111) => o["external_id"] = Value::Null,
            Some(113) => o["domain_names"] = json!(["kilo.com"]),
            _ => {}
        }
    }
    fixed["zendesk"]["tickets"][1] = ticket(9002, 101, 501, 1);
    fx.serve(&fixed).await;
    let third = fx.full().await;
    assert_eq!(third.summary.rows.auto_resolved, 3);
    let after = open_rows(&r).await;
    assert_eq!(naming(&after, 10), []);
    assert_eq!(naming(&after, 11), []);
    assert_eq!(naming(&after, 13), []);
    assert_eq!(naming(&after, 4), [DomainDrift]);
    let resolved = r
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::AutoResolved))
        .await
        .unwrap();
    assert_eq!(resolved.len(), 3);
    assert!(
        resolved
            .iter()
            .all(|r| r.status_change.as_ref().unwrap().by == "orglink")
    );

    // Fix account 4 too, but stop the run on the Salesforce reserve: nothing auto-resolves.
    let mut fixed4 = fixed.clone();
    fixed4["salesforce"]["accounts"][3]["Zendesk_Domain__c"] = json!("delta.com");
    fx.serve(&fixed4).await;
    let stopped = fx
        .reconciler(json!({"salesforce_daily_reserve": 1_000_000_000u64}))
        .await
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    assert_eq!(stopped.summary.state, RunState::Stopped);
    assert!(
        matches!(
            stopped.summary.stop,
            Some(StopReason::SalesforceReserve { .. })
        ),
        "{:?}",
        stopped.summary.stop
    );
    assert_eq!(stopped.summary.rows.auto_resolved, 0);
    assert_eq!(naming(&open_rows(&r).await, 4), [DomainDrift]);
    assert!(
        stopped
            .metrics
            .iter()
            .all(|l| !l.contains("ReconcileCompleted"))
    );
    let latest = r.stores.runs.last_complete("full").await.unwrap().unwrap();
    assert_eq!(
        latest.run_id, third.summary.run_id,
        "a stopped run is not the last complete one"
    );
    let record = r
        .stores
        .runs
        .get(&stopped.summary.run_id, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, orglink_shared::aws::RunStatus::Incomplete);

    // The next complete run does.
    let fifth = fx.full().await;
    assert_eq!(fifth.summary.rows.auto_resolved, 1);
    assert_eq!(naming(&open_rows(&r).await, 4), []);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_decisions_are_validated_and_flow_back() {
    let mut fx = Fixture::new("reconcile-review").await;
    fx.serve(&drift_world()).await;
    let r = fx.reconciler(json!({})).await;
    r.run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    drain(&r).await;
    let review = Review {
        exceptions: &r.stores.exceptions,
        queue: &r.stores.queue,
        lists: &r.stores.lists,
    };
    let collisions = review
        .list(&ExceptionFilter {
            kind: Some(ExceptionKind::DomainCollision),
            ..ExceptionFilter::status(ExceptionStatus::Open)
        })
        .await
        .unwrap();
    assert_eq!(collisions.len(), 2);
    let merged = collisions
        .iter()
        .find(|c| c.finding.accounts.len() == 1)
        .unwrap();
    let by_hand = collisions
        .iter()
        .find(|c| c.finding.accounts.len() == 2)
        .unwrap();
    let fp = merged.fingerprint.to_string();

    let decide = |by: &str, reason: &str, action: Option<Action>| Decision {
        by: by.into(),
        reason: reason.into(),
        action,
    };
    let now = 1_767_225_600_000;
    assert!(matches!(
        review.resolve(&fp, &decide("", "x", None), now).await,
        Err(ReviewError::NoReviewer)
    ));
    assert!(matches!(
        review.resolve(&fp, &decide("jane", " ", None), now).await,
        Err(ReviewError::NoReason)
    ));
    let foreign = Action::LinkToOrg {
        account: merged.finding.accounts[0].clone(),
        org: orglink_shared::ids::OrgId::new(101).unwrap(),
    };
    assert!(matches!(
        review
            .resolve(&fp, &decide("jane", "x", Some(foreign)), now)
            .await,
        Err(ReviewError::ActionNotOffered { .. })
    ));
    assert!(matches!(
        review.show("domain_collision:nope").await,
        Err(ReviewError::NotFound(_))
    ));

    // Create a new organization: an operator sync request for the account.
    let create = Action::CreateNewOrg {
        account: merged.finding.accounts[0].clone(),
    };
    let (row, follow) = review
        .resolve(
            &fp,
            &decide("jane@example.com", "Different customer", Some(create)),
            now,
        )
        .await
        .unwrap();
    assert_eq!(row.status, ExceptionStatus::Resolved);
    let change = row.status_change.unwrap();
    assert_eq!(change.by, "jane@example.com");
    assert!(
        change
            .reason
            .starts_with("Different customer (action: create a new organization")
    );
    let FollowUp::SyncRequested {
        account,
        event_id,
        org: None,
    } = follow
    else {
        panic!("{follow:?}")
    };
    let queued = drain(&r).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].account_id, account);
    assert_eq!(queued[0].event_id, event_id);
    assert_eq!(
        queued[0].source,
        orglink_shared::sync_request::RequestSource::Operator
    );
    assert!(matches!(
        review.dismiss(&fp, "jane", "again", now).await,
        Err(ReviewError::NotOpen { .. })
    ));

    // Treat the hand-added domain as shared: the list holds it, and the next run no longer
    // raises the collision (the resolved row stays resolved, no new row appears).
    let shared = by_hand
        .finding
        .actions
        .iter()
        .find(|a| matches!(a, Action::TreatDomainAsShared { .. }))
        .cloned()
        .expect("a collision over a domain offers to treat it as shared");
    let (_, follow) = review
        .resolve(
            &by_hand.fingerprint.to_string(),
            &decide("jane", "Group domain", Some(shared)),
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        follow,
        FollowUp::SharedDomain {
            domain: "juliet.com".into()
        }
    );
    assert!(
        r.stores
            .lists
            .load()
            .await
            .unwrap()
            .shared_domains
            .contains("juliet.com")
    );
    let next = fx.full().await;
    assert_eq!(next.summary.rows.new, 0);
    assert_eq!(naming(&open_rows(&r).await, 11), []);

    // Dismissing records who and why; same evidence keeps it dismissed.
    let dup = open_rows(&r)
        .await
        .into_iter()
        .find(|r| r.kind() == ExceptionKind::DuplicateExternalId)
        .unwrap();
    let row = review
        .dismiss(
            &dup.fingerprint.to_string(),
            "sam",
            "Known import copy",
            now,
        )
        .await
        .unwrap();
    assert_eq!(row.status, ExceptionStatus::Dismissed);
    fx.full().await;
    let kept = review.show(&dup.fingerprint.to_string()).await.unwrap();
    assert_eq!(kept.status, ExceptionStatus::Dismissed);
    assert_eq!(kept.status_change.unwrap().by, "sam");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_into_invocations_ends_like_an_uninterrupted_one() {
    let g = orglink_sandbox::generate::generate(&orglink_sandbox::generate::Options {
        accounts: 300,
        seed: 5,
    });
    let scenario: Value = serde_json::from_slice(&g.scenario_bytes()).unwrap();

    let mut whole = Fixture::new("reconcile-whole").await;
    whole.serve(&scenario).await;
    let one = whole.full().await;

    let mut cut = Fixture::new("reconcile-cut").await;
    cut.serve(&scenario).await;
    let r = cut.reconciler(json!({"commit_every_pages": 2})).await;
    let two = r
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::pages(1))
        .await
        .unwrap();
    // The listing's two pages are cut apart; tickets and the one-page account stream fit in
    // the second invocation (the account stream is never resumed mid-way: it starts over).
    assert!(two.summary.invocations >= 2, "{}", two.summary.invocations);
    assert_eq!(two.summary.accounts.attempts, 1);
    let key = |rows: Vec<ExceptionRow>| -> Vec<(String, String)> {
        rows.into_iter()
            .map(|r| (r.fingerprint.to_string(), r.evidence_hash))
            .collect()
    };
    let whole_r = whole.reconciler(json!({})).await;
    assert_eq!(key(open_rows(&whole_r).await), key(open_rows(&r).await));
    assert!(!open_rows(&r).await.is_empty());
    assert_eq!(one.report, two.report);
    assert_eq!(one.summary.repairs, two.summary.repairs);
    assert_eq!(one.summary.findings_by_kind, two.summary.findings_by_kind);
    let run = r
        .stores
        .runs
        .get(&two.summary.run_id, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, orglink_shared::aws::RunStatus::Complete);
    // The checkpoint is small: cursors and counters, never data.
    assert!(run.cursor.unwrap().len() < 4096);
}
