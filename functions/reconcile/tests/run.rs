//! A run against the simulators with in-memory stores: a generated world's findings come out
//! as its truth says (tickets on the wrong organization included, read at the API call floor),
//! a run cut into many invocations ends exactly like an uninterrupted one, and a second run
//! changes nothing.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use orglink_reconcile::{Limits, MemoryPorts, Mode, ReconcileEvent, Reconciler, RunState, Stores};
use orglink_shared::aws::{ExceptionFilter, ExceptionRow, ExceptionStatus, ExceptionStore};

use support::{World, generated, roomy_budget};

async fn open_rows(r: &Reconciler<MemoryPorts>) -> Vec<ExceptionRow> {
    let mut rows = r
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    rows.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
    rows
}

fn by_kind(rows: &[ExceptionRow]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r.kind().as_str().to_string()).or_default() += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_world_gives_its_truth_and_checkpoints_change_nothing() {
    let (scenario, truth) = generated(900, 11);
    let ticket_floor = TicketFloor::of(&scenario.zendesk);
    let world = World::serve(scenario).await;

    let whole = world.reconciler(Stores::memory(), roomy_budget()).await;
    let one = whole
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    assert_eq!(one.summary.state, RunState::Complete);
    assert_eq!(one.summary.invocations, 1);

    // Every account the truth says ends as a review row has exactly one row of that kind.
    let rows = open_rows(&whole).await;
    for account in &truth.accounts {
        let Some(kind) = account.expected.exception_kind() else {
            continue;
        };
        let naming: Vec<&ExceptionRow> = rows
            .iter()
            .filter(|r| r.kind().as_str() == kind)
            .filter(|r| {
                r.finding
                    .accounts
                    .iter()
                    .any(|a| a.as_str() == account.account_id)
            })
            .collect();
        assert_eq!(
            naming.len(),
            1,
            "{} ({kind}): {naming:#?}",
            account.account_id
        );
    }
    // And the rows by kind are the truth's, except what only the worker reports.
    let mut expected = truth.totals.findings.clone();
    expected.remove("write_back_blocked");
    expected.retain(|_, n| *n > 0);
    assert!(
        expected
            .get("ticket_attribution_drift")
            .is_some_and(|n| *n > 0)
    );
    assert_eq!(by_kind(&rows), expected.into_iter().collect());

    // Each org with tickets on it from outside: its row counts and names them as the truth does.
    for t in &truth.ticket_attribution {
        let row = rows
            .iter()
            .find(|r| {
                r.kind().as_str() == "ticket_attribution_drift"
                    && r.finding.orgs.iter().any(|o| o.get() == t.org)
            })
            .unwrap_or_else(|| panic!("no ticket row for org {}", t.org));
        let evidence = |k: &str| {
            row.finding
                .evidence
                .get(k)
                .map(<[String]>::to_vec)
                .unwrap_or_default()
        };
        assert_eq!(
            evidence("misattributed_tickets"),
            vec![t.misattributed_tickets.to_string()]
        );
        let mut tickets: Vec<String> = t.tickets.iter().map(u64::to_string).collect();
        tickets.sort();
        let mut seen = evidence("tickets");
        seen.sort();
        assert_eq!(seen, tickets);
        assert_eq!(
            row.finding.accounts.first().map(|a| a.to_string()),
            t.account.clone()
        );
    }
    // The tickets cost the floor: one export page per 1,000 tickets, and one membership
    // listing per requester whose default organization is not the ticket's.
    let calls = |s: &orglink_reconcile::RunSummary, e: &str| {
        s.api_calls_by_endpoint.get(e).copied().unwrap_or(0)
    };
    assert_eq!(one.summary.tickets.read, ticket_floor.tickets);
    assert_eq!(
        calls(&one.summary, "zendesk/zd.ticket_export"),
        ticket_floor.export_pages
    );
    assert_eq!(
        calls(&one.summary, "zendesk/zd.user_memberships"),
        ticket_floor.requesters_to_look_up
    );
    assert_eq!(calls(&one.summary, "zendesk/zd.user_show_many"), 0);
    assert_eq!(
        one.summary.tickets.misattributed,
        truth
            .ticket_attribution
            .iter()
            .map(|t| t.misattributed_tickets)
            .sum::<u64>()
    );

    // The same run cut into one page per invocation ends the same.
    let cut = world.reconciler(Stores::memory(), roomy_budget()).await;
    let two = cut
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::pages(1))
        .await
        .unwrap();
    assert!(two.summary.invocations > 3, "{}", two.summary.invocations);
    let cut_rows = open_rows(&cut).await;
    let key = |rows: &[ExceptionRow]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (r.fingerprint.to_string(), r.evidence_hash.clone()))
            .collect()
    };
    assert_eq!(key(&rows), key(&cut_rows));
    assert_eq!(one.report, two.report);
    assert_eq!(one.summary.repairs, two.summary.repairs);
    assert_eq!(one.summary.findings_by_kind, two.summary.findings_by_kind);
    assert_eq!(one.summary.accounts, two.summary.accounts);
    assert_eq!(one.summary.tickets, two.summary.tickets);
    assert_eq!(one.summary.orgs.seen, two.summary.orgs.seen);
    assert_eq!(one.summary.orgs.judged, two.summary.orgs.judged);
    // Nothing is read twice: the same listing pages; the account query costs at most one
    // more request per hand-over (the resumed `Id > last` query's first page).
    let pages = |s: &orglink_reconcile::RunSummary, e: &str| {
        s.api_calls_by_endpoint.get(e).copied().unwrap_or(0)
    };
    assert_eq!(
        pages(&one.summary, "zendesk/zd.org_list"),
        pages(&two.summary, "zendesk/zd.org_list")
    );
    let queries = |s: &orglink_reconcile::RunSummary| {
        pages(s, "salesforce/sf.query_all") + pages(s, "salesforce/sf.query_more")
    };
    assert!(queries(&two.summary) <= queries(&one.summary) + u64::from(two.summary.invocations));
    assert!(queries(&two.summary) >= queries(&one.summary));

    // A second run changes nothing.
    let again = whole
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    assert_eq!(again.summary.rows.new, 0);
    assert_eq!(again.summary.rows.reopened, 0);
    assert_eq!(again.summary.rows.auto_resolved, 0);
    assert_eq!(again.summary.orgs.written, 0, "the mirror is current");
    let rows_again = open_rows(&whole).await;
    assert_eq!(key(&rows), key(&rows_again));
    assert!(rows_again.iter().all(|r| r.times_seen == 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_reads_changes_since_the_last_run_and_never_auto_resolves() {
    let (scenario, _) = generated(300, 3);
    let world = World::serve(scenario).await;
    let r = world.reconciler(Stores::memory(), roomy_budget()).await;
    let full = r
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    let open_before = open_rows(&r).await;
    assert!(!open_before.is_empty());

    // The export serves the last minute too (the simulator's switch), so no test waits.
    let switched = reqwest::Client::new()
        .post(format!("{}/_sandbox/switches", world.zd_url))
        .json(&serde_json::json!({"incremental_min_age_secs": 0}))
        .send()
        .await
        .unwrap();
    assert!(switched.status().is_success());
    // A person adds a domain to one organization in Zendesk.
    let org = orglink_shared::aws::OrgMirror::all(&r.stores.mirror)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let mut domains = org.domains.clone();
    domains.push("added-by-hand.example.com".to_string());
    r.zendesk
        .update(org.id, &serde_json::json!({"domain_names": domains}))
        .await
        .unwrap();

    let delta = r
        .run_to_end(ReconcileEvent::new(Mode::Delta), &Limits::none())
        .await
        .unwrap();
    assert_eq!(delta.summary.state, RunState::Complete);
    assert!(delta.summary.orgs.written >= 1, "{:?}", delta.summary.orgs);
    assert!(delta.summary.orgs.seen < full.summary.orgs.seen);
    let mirrored = orglink_shared::aws::OrgMirror::get(&r.stores.mirror, org.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        mirrored
            .domains
            .contains(&"added-by-hand.example.com".to_string())
    );
    // No account changed since the full run; nothing is auto-resolved by a delta.
    assert_eq!(delta.summary.accounts.read, 0);
    assert_eq!(delta.summary.rows.auto_resolved, 0);
    // Rows about accounts the delta did not read keep the evidence full runs record.
    let hashes = |rows: &[ExceptionRow]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (r.fingerprint.to_string(), r.evidence_hash.clone()))
            .collect()
    };
    assert_eq!(hashes(&open_rows(&r).await), hashes(&open_before));
    assert!(
        open_before
            .iter()
            .any(|r| r.kind() == orglink_shared::exceptions::ExceptionKind::DuplicateExternalId)
    );
    assert!(
        delta.metrics[0].contains("\"Mode\":\"delta\"")
            && delta.metrics[0].contains("\"ReconcileCompleted\":1")
    );
}

/// What reading a world's tickets must cost at least, from the scenario itself.
struct TicketFloor {
    tickets: u64,
    export_pages: u64,
    requesters_to_look_up: u64,
}

impl TicketFloor {
    fn of(zendesk: &orglink_sandbox::scenario::ZendeskSeed) -> TicketFloor {
        let id = |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_u64);
        let default_org: HashMap<u64, Option<u64>> = zendesk
            .users
            .iter()
            .filter_map(|u| Some((id(u, "id")?, id(u, "organization_id"))))
            .collect();
        let mut look_up = BTreeSet::new();
        for t in &zendesk.tickets {
            if let (Some(org), Some(requester)) = (id(t, "organization_id"), id(t, "requester_id"))
                && default_org.get(&requester).copied().flatten() != Some(org)
            {
                look_up.insert(requester);
            }
        }
        let tickets = zendesk.tickets.len() as u64;
        TicketFloor {
            tickets,
            export_pages: tickets.div_ceil(1000).max(1),
            requesters_to_look_up: look_up.len() as u64,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_export_cut_into_invocations_ends_like_an_uninterrupted_one() {
    // One linked account; 2,100 tickets on its org (three export pages), 7 of them raised by a
    // requester in no organization.
    let account = orglink_sandbox::salesforce::ids::generate("001", 1);
    let ticket = |id: u64, requester: u64| {
        serde_json::json!({"id": id, "status": "open", "requester_id": requester,
            "organization_id": 500, "created_at": "2025-01-01T00:00:00Z",
            "updated_at": format!("2025-01-{:02}T00:00:00Z", 1 + id % 28)})
    };
    let tickets: Vec<serde_json::Value> = (1..=2100u64)
        .map(|i| ticket(i, if i % 300 == 0 { 61 } else { 60 }))
        .collect();
    let scenario: orglink_sandbox::scenario::Scenario = serde_json::from_value(serde_json::json!({
        "salesforce": {"accounts": [{"Id": account, "Name": "Acme", "Website": "acme.com",
            "Type": "Customer - Direct", "Zendesk_Domain__c": "acme.com",
            "Zendesk_Org_ID__c": "500", "Zendesk_Sync_Status__c": "Linked"}]},
        "zendesk": {
            "organizations": [{"id": 500, "name": "Acme", "external_id": account,
                               "domain_names": ["acme.com"]}],
            "users": [{"id": 60, "name": "In", "email": "in@acme.com", "organization_id": 500},
                      {"id": 61, "name": "Out", "email": "out@else.com", "organization_id": null}],
            "tickets": tickets}
    }))
    .unwrap();
    let world = World::serve(scenario).await;
    let whole = world.reconciler(Stores::memory(), roomy_budget()).await;
    let one = whole
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    let cut = world.reconciler(Stores::memory(), roomy_budget()).await;
    let two = cut
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::pages(1))
        .await
        .unwrap();
    assert_eq!(one.summary.tickets.pages, 3);
    assert_eq!(one.summary.tickets.misattributed, 7);
    assert!(two.summary.invocations >= 4, "{}", two.summary.invocations);
    // Memberships are remembered within an invocation only: a requester seen again after a
    // hand-over is looked up again (at most once per invocation).
    let (t1, t2) = (&one.summary.tickets, &two.summary.tickets);
    assert_eq!(
        (t1.pages, t1.read, t1.attributed, t1.misattributed),
        (t2.pages, t2.read, t2.attributed, t2.misattributed)
    );
    assert_eq!(t1.requesters_looked_up, 1);
    assert!(
        (1..=u64::from(two.summary.invocations)).contains(&t2.requesters_looked_up),
        "{t2:?}"
    );
    let (a, b) = (open_rows(&whole).await, open_rows(&cut).await);
    assert_eq!(a.len(), 1, "{a:#?}");
    assert_eq!(
        a[0].finding.evidence.get("misattributed_tickets"),
        Some(&["7".to_string()][..])
    );
    assert_eq!(
        a.iter()
            .map(|r| (&r.fingerprint, &r.evidence_hash))
            .collect::<Vec<_>>(),
        b.iter()
            .map(|r| (&r.fingerprint, &r.evidence_hash))
            .collect::<Vec<_>>()
    );
}

/// The mirror's completeness marker (the worker creates nothing by domain without it) is
/// written only when a full listing has been read to its last page: not by a listing the
/// budget stopped, not by an invocation that handed the listing over, not by a delta.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_complete_full_listing_marks_the_mirror_filled() {
    use orglink_reconcile::Step;
    use orglink_reconcile::run::MIRROR_FILLED_BY;
    use orglink_shared::aws::OrgMirror;
    use orglink_shared::http::{BudgetConfig, LocalBudget};

    let (scenario, _) = generated(300, 5);
    let world = World::serve(scenario).await;

    // The budget refuses the listing's later pages: the run stops, part of the mirror written.
    let scant = std::sync::Arc::new(LocalBudget::new(
        BudgetConfig::salesforce(1_000_000, 0),
        // Room for the connection check and one page, then one call every 10 s: longer than
        // the client waits.
        BudgetConfig {
            per_minute: 6,
            burst: 2,
            endpoints: Default::default(),
            daily_reserve: 0,
        },
    ));
    let stopped = world.reconciler(Stores::memory(), scant).await;
    let out = stopped
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    assert_eq!(out.summary.state, RunState::Stopped, "{:?}", out.summary);
    assert!(out.summary.orgs.pages >= 1, "{:?}", out.summary.orgs);
    assert!(!stopped.stores.mirror.all().await.unwrap().is_empty());
    assert_eq!(stopped.stores.mirror.filled().await.unwrap(), None);

    // A delta reads changes only: never a marker.
    let delta = world.reconciler(Stores::memory(), roomy_budget()).await;
    delta
        .run_to_end(ReconcileEvent::new(Mode::Delta), &Limits::none())
        .await
        .unwrap();
    assert_eq!(delta.stores.mirror.filled().await.unwrap(), None);

    // One page per invocation: no marker while the listing is handed over; marked once the
    // last page is in.
    let cut = world.reconciler(Stores::memory(), roomy_budget()).await;
    let Step::Continue(next) = cut
        .invoke(&ReconcileEvent::new(Mode::Full), &Limits::pages(1))
        .await
        .unwrap()
    else {
        panic!("a 300-account world lists more than one page of organizations")
    };
    assert!(!cut.stores.mirror.all().await.unwrap().is_empty());
    assert_eq!(cut.stores.mirror.filled().await.unwrap(), None);
    let done = cut.run_to_end(next, &Limits::pages(1)).await.unwrap();
    assert_eq!(done.summary.state, RunState::Complete);
    let filled = cut.stores.mirror.filled().await.unwrap().expect("marked");
    assert_eq!(filled.by, MIRROR_FILLED_BY);
}
