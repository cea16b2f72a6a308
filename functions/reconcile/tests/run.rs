//! A run against the simulators with in-memory stores: a generated world's findings come out
//! as its truth says (tickets on the wrong organization included, read at the API call floor),
//! a run cut into many invocations ends exactly like an uninterrupted one with nothing but a
//! small checkpoint between invocations (organizations gone from Zendesk found by the
//! listing's stamps; an account stream cut short started over, within a bound), and a second
//! run changes nothing.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use orglink_reconcile::{
    Limits, MemoryPorts, Mode, ReconcileEvent, Reconciler, RunOutcome, RunState, RunSummary, Step,
    StopReason, Stores,
};
use orglink_shared::aws::mirror::MirroredOrg;
use orglink_shared::aws::{
    ExceptionFilter, ExceptionRow, ExceptionStatus, ExceptionStore, OrgMirror, RunStore,
};
use orglink_shared::ids::OrgId;

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

/// The largest checkpoint a run may carry between invocations: cursors and counters only.
const CHECKPOINT_BOUND: usize = 4096;

/// Runs `event` to the end, one invocation after another, and returns the outcome with the
/// largest checkpoint any invocation handed over.
async fn run_watching_checkpoints(
    r: &Reconciler<MemoryPorts>,
    event: ReconcileEvent,
    limits: &Limits,
) -> (RunOutcome, usize) {
    let mut event = event;
    let mut largest = 0;
    loop {
        match r.invoke(&event, limits).await.unwrap() {
            Step::Continue(next) => {
                let run_id = next.run_id.clone().expect("a continuation names its run");
                let record = r.stores.runs.get(&run_id, 0).await.unwrap().unwrap();
                largest = largest.max(record.cursor.map_or(0, |c| c.len()));
                event = next;
            }
            Step::Finished(outcome) => return (*outcome, largest),
        }
    }
}

/// Account query requests of a run (the first page and the ones after it).
fn account_queries(s: &RunSummary) -> u64 {
    let calls = |e: &str| s.api_calls_by_endpoint.get(e).copied().unwrap_or(0);
    calls("salesforce/sf.query_all") + calls("salesforce/sf.query_more")
}

fn salesforce_calls(s: &RunSummary) -> u64 {
    s.api_calls.get("salesforce").copied().unwrap_or(0)
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
    let (two, largest) =
        run_watching_checkpoints(&cut, ReconcileEvent::new(Mode::Full), &Limits::pages(1)).await;
    assert!(two.summary.invocations > 3, "{}", two.summary.invocations);
    assert!(largest > 0 && largest < CHECKPOINT_BOUND, "{largest}");
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
    // Nothing is read twice: the same listing pages; the account stream (one page here) fits
    // in the invocation that starts it, so it is read once too.
    let pages = |s: &orglink_reconcile::RunSummary, e: &str| {
        s.api_calls_by_endpoint.get(e).copied().unwrap_or(0)
    };
    assert_eq!(
        pages(&one.summary, "zendesk/zd.org_list"),
        pages(&two.summary, "zendesk/zd.org_list")
    );
    assert_eq!(two.summary.accounts.attempts, 1);
    assert_eq!(account_queries(&two.summary), account_queries(&one.summary));

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
    world
        .zendesk_switches(serde_json::json!({"incremental_min_age_secs": 0}))
        .await;
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

/// A delta whose incremental export stalls (a full page of one second, under the simulator's
/// `incremental_full_second: repeat_start`: Zendesk's behaviour there is UNVERIFIED) lists
/// every organization instead, in the same run: the edits and a deletion the export never
/// showed reach the mirror, and the run stays a delta (changed accounts only, nothing
/// auto-resolved). Under the default (`extend_page`) the next delta reads its changes from the
/// export alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_whose_export_stalls_lists_every_organization_instead() {
    let (scenario, _) = generated(300, 3);
    let world = World::serve(scenario).await;
    let r = world.reconciler(Stores::memory(), roomy_budget()).await;
    let full = r
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    assert!(full.summary.orgs.pages >= 2, "{:?}", full.summary.orgs);
    // Pages of 2, and eight organizations edited in one bulk update (one second, or two):
    // some second holds a full page.
    world
        .zendesk_switches(serde_json::json!({"incremental_min_age_secs": 0,
            "incremental_page_size": 2, "incremental_full_second": "repeat_start"}))
        .await;
    let orgs = r.stores.mirror.all().await.unwrap();
    let (edited, rest) = orgs.split_at(8);
    let add_domain = |o: &MirroredOrg, domain: &str| {
        let mut domains = o.domains.clone();
        domains.push(domain.to_string());
        serde_json::json!({"id": o.id.get(), "domain_names": domains})
    };
    let edits: Vec<serde_json::Value> = edited
        .iter()
        .map(|o| add_domain(o, "stalled.example.com"))
        .collect();
    let items = r.zendesk.update_many(&edits).await.unwrap();
    assert!(items.iter().all(|i| i.result.is_ok()), "{items:?}");
    // Deleted in Zendesk: the export (without tombstones) never says so; a listing does.
    let gone = rest[0].id;
    let deleted = reqwest::Client::new()
        .delete(format!("{}/api/v2/organizations/{gone}", world.zd_url))
        .basic_auth("admin@example.com/token", Some("sandbox-zendesk-token"))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{deleted:?}");

    let delta = r
        .run_to_end(ReconcileEvent::new(Mode::Delta), &Limits::none())
        .await
        .unwrap();
    assert_eq!(
        delta.summary.state,
        RunState::Complete,
        "{:?}",
        delta.summary
    );
    assert_eq!(delta.summary.mode, Mode::Delta);
    assert!(
        delta.summary.orgs.export_stalled_at.is_some(),
        "{:?}",
        delta.summary.orgs
    );
    // The export's pages before the stall, then the listing's.
    assert!(
        delta.summary.orgs.pages >= full.summary.orgs.pages,
        "{:?}",
        delta.summary.orgs
    );
    for o in edited {
        let m = r.stores.mirror.get(o.id).await.unwrap().unwrap();
        assert!(
            m.domains.contains(&"stalled.example.com".to_string()),
            "{m:?}"
        );
    }
    assert_eq!(r.stores.mirror.get(gone).await.unwrap(), None);
    assert_eq!(delta.summary.orgs.deleted, 1, "{:?}", delta.summary.orgs);
    assert_eq!(
        delta.summary.accounts.read, 0,
        "still a delta: no account changed"
    );
    assert_eq!(delta.summary.rows.auto_resolved, 0);

    // The default: a full second extends the page; the export alone reads the next edit.
    world
        .zendesk_switches(serde_json::json!({"incremental_full_second": "extend_page"}))
        .await;
    let next = &rest[1];
    r.zendesk
        .update(next.id, &add_domain(next, "extended.example.com"))
        .await
        .unwrap();
    let again = r
        .run_to_end(ReconcileEvent::new(Mode::Delta), &Limits::none())
        .await
        .unwrap();
    assert_eq!(again.summary.state, RunState::Complete);
    assert_eq!(
        again.summary.orgs.export_stalled_at, None,
        "{:?}",
        again.summary.orgs
    );
    assert!(
        again.summary.orgs.seen < full.summary.orgs.seen,
        "the export, not a listing: {:?}",
        again.summary.orgs
    );
    let m = r.stores.mirror.get(next.id).await.unwrap().unwrap();
    assert!(
        m.domains.contains(&"extended.example.com".to_string()),
        "{m:?}"
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
    // The organization page and the first ticket page, then one ticket page each; the
    // one-page account stream fits after the last.
    assert!(two.summary.invocations >= 3, "{}", two.summary.invocations);
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

/// A full listing spanning invocations finds what Zendesk no longer lists by the stamps it
/// leaves on the mirror's rows, not by keeping the ids it saw: a row no stamp of this run
/// names is removed, unless it changed after the run began (the worker wrote it behind the
/// listing's back: the next full run judges it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_gone_from_zendesk_are_found_by_the_listings_stamps() {
    let (scenario, _) = generated(300, 5);
    let listed: Vec<u64> = scenario
        .zendesk
        .organizations
        .iter()
        .filter_map(|o| o.get("id").and_then(serde_json::Value::as_u64))
        .collect();
    assert!(listed.len() > 100, "the listing spans pages");
    let world = World::serve(scenario).await;
    let r = world.reconciler(Stores::memory(), roomy_budget()).await;
    let org = |id: u64, updated_at: &str| {
        MirroredOrg::new(
            OrgId::new(id).unwrap(),
            format!("Org {id}"),
            None,
            [format!("org-{id}.example.com")],
            Some(updated_at.to_string()),
        )
    };
    // Gone from Zendesk, listed by an earlier run: stale.
    let gone = org(990_000_001, "2020-01-01T00:00:00Z");
    // Not listed either, but written after this run began (a far-future stamp stands for it).
    let fresh = org(990_000_002, "2999-01-01T00:00:00Z");
    // Listed, with a stale copy in the mirror: kept and rewritten.
    let stale_copy = org(listed[0], "2000-01-01T00:00:00Z");
    for o in [&gone, &fresh, &stale_copy] {
        r.stores.mirror.upsert(o).await.unwrap();
    }
    r.stores
        .mirror
        .stamp_listed(&[gone.id, stale_copy.id], "full-earlier")
        .await
        .unwrap();

    let (out, largest) =
        run_watching_checkpoints(&r, ReconcileEvent::new(Mode::Full), &Limits::pages(1)).await;
    assert_eq!(out.summary.state, RunState::Complete);
    assert!(out.summary.orgs.pages >= 2, "{:?}", out.summary.orgs);
    assert!(largest > 0 && largest < CHECKPOINT_BOUND, "{largest}");
    assert_eq!(out.summary.orgs.deleted, 1, "{:?}", out.summary.orgs);
    let mirror = &r.stores.mirror;
    assert_eq!(mirror.get(gone.id).await.unwrap(), None);
    assert_eq!(mirror.get(fresh.id).await.unwrap(), Some(fresh.clone()));
    let rewritten = mirror.get(stale_copy.id).await.unwrap().unwrap();
    assert_ne!(rewritten, stale_copy);
    // Every organization Zendesk lists is mirrored and stamped by this run; only the fresh
    // row is not.
    let mut ids: Vec<u64> = mirror
        .all()
        .await
        .unwrap()
        .iter()
        .map(|o| o.id.get())
        .collect();
    ids.sort();
    let mut want = listed.clone();
    want.push(fresh.id.get());
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(
        mirror.not_listed(&out.summary.run_id).await.unwrap(),
        vec![fresh]
    );
}

/// The diff needs every account at once, and nothing but a checkpoint travels between
/// invocations: an account stream an invocation cannot finish is started over by the next
/// one (the pages read in vain are counted in the summary), and the run ends exactly like an
/// uninterrupted one. A stream that never fits stops the run after `account_attempts` starts,
/// saying so, and auto-resolves nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_stream_cut_short_starts_over_within_a_bound() {
    let (scenario, _) = generated(300, 5);
    let world = World::serve(scenario).await;
    // 200 accounts a query page: the stream spans several pages.
    let batch = 200;
    let whole = world
        .reconciler_paged(Stores::memory(), roomy_budget(), batch)
        .await;
    let one = whole
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    let stream_pages = one.summary.accounts.pages;
    assert!(stream_pages >= 2, "{:?}", one.summary.accounts);
    assert_eq!(
        (
            one.summary.accounts.attempts,
            one.summary.accounts.pages_repeated
        ),
        (1, 0)
    );

    // As many pages per invocation as the stream has: the invocation that ends the ticket
    // phase starts the stream with pages already spent and must hand over; the next one,
    // fresh, reads it to the end.
    let cut = world
        .reconciler_paged(Stores::memory(), roomy_budget(), batch)
        .await;
    let limit = u32::try_from(stream_pages).unwrap();
    let (two, largest) =
        run_watching_checkpoints(&cut, ReconcileEvent::new(Mode::Full), &Limits::pages(limit))
            .await;
    assert_eq!(two.summary.state, RunState::Complete);
    assert!(largest > 0 && largest < CHECKPOINT_BOUND, "{largest}");
    let (a1, a2) = (&one.summary.accounts, &two.summary.accounts);
    assert_eq!(a2.attempts, 2, "{a2:?}");
    assert!(a2.pages_repeated >= 1, "{a2:?}");
    assert_eq!(
        (a1.pages, a1.read, a1.judged, a1.looked_up, a1.unseen),
        (a2.pages, a2.read, a2.judged, a2.looked_up, a2.unseen)
    );
    // Starting over is the only extra Salesforce cost, and the summary counts it.
    assert!(a2.calls_repeated >= a2.pages_repeated, "{a2:?}");
    assert_eq!(
        salesforce_calls(&two.summary),
        salesforce_calls(&one.summary) + a2.calls_repeated
    );
    let key = |rows: &[ExceptionRow]| -> Vec<(String, String)> {
        rows.iter()
            .map(|r| (r.fingerprint.to_string(), r.evidence_hash.clone()))
            .collect()
    };
    let rows = open_rows(&whole).await;
    assert!(!rows.is_empty());
    assert_eq!(key(&rows), key(&open_rows(&cut).await));
    assert_eq!(one.report, two.report);
    assert_eq!(one.summary.repairs, two.summary.repairs);
    assert_eq!(one.summary.findings_by_kind, two.summary.findings_by_kind);
    assert_eq!(one.summary.rows.findings, two.summary.rows.findings);

    // One page fewer than the stream: no invocation can finish it. The run stops after the
    // bound with the reason, having auto-resolved nothing on stores whose rows a complete
    // run would have resolved (they name problems this world does not have).
    let never = world
        .reconciler_paged(Stores::memory(), roomy_budget(), batch)
        .await;
    let limit = u32::try_from(stream_pages - 1).unwrap();
    let stale = orglink_shared::exceptions::Finding::new(
        orglink_shared::exceptions::ExceptionKind::NameDrift,
        [
            orglink_shared::ids::AccountId::parse(&orglink_sandbox::salesforce::ids::generate(
                "001", 999_999,
            ))
            .unwrap(),
        ],
        [OrgId::new(990_000_009).unwrap()],
    );
    never
        .stores
        .exceptions
        .upsert(&stale, &BTreeMap::new(), 1)
        .await
        .unwrap();
    let three = never
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::pages(limit))
        .await
        .unwrap();
    assert_eq!(three.summary.state, RunState::Stopped);
    assert!(
        matches!(
            three.summary.stop,
            Some(StopReason::AccountStreamTooLong { .. })
        ),
        "{:?}",
        three.summary.stop
    );
    let attempts = u64::from(never.settings.account_attempts);
    assert_eq!(three.summary.accounts.attempts, attempts);
    // A fresh invocation reads the whole limit and the peek past it; the first attempt may
    // start with pages already spent. Every Salesforce call of the stopped run was spent on
    // the attempts, and the summary says so.
    let repeated = &three.summary.accounts;
    assert!(
        repeated.pages_repeated >= (attempts - 1) * stream_pages,
        "{repeated:?}"
    );
    assert_eq!(salesforce_calls(&three.summary), repeated.calls_repeated);
    assert_eq!(three.summary.rows.auto_resolved, 0);
    let open = open_rows(&never).await;
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0].fingerprint, stale.fingerprint());
    assert!(three.metrics[0].contains("\"ReconcileStopped\":1"));
}

/// One run at a time. A full run hands over between invocations, and another run (a scheduled
/// delta, a manual full run) may be invoked in between: it must not list, stamp or remove
/// anything, or the first run's stamps of its earlier pages look stale and valid mirror rows
/// are removed. It ends at once, saying which run is in progress, and the first run ends as
/// if alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_while_another_is_in_progress_does_not_start() {
    use orglink_reconcile::run::RUN_LEASE;

    let (scenario, _) = generated(300, 5);
    let world = World::serve(scenario).await;
    let r = world.reconciler(Stores::memory(), roomy_budget()).await;
    let Step::Continue(next) = r
        .invoke(&ReconcileEvent::new(Mode::Full), &Limits::pages(1))
        .await
        .unwrap()
    else {
        panic!("a 300-account world lists more than one page of organizations")
    };
    let first = next.run_id.clone().unwrap();
    let mirrored = r.stores.mirror.all().await.unwrap().len();
    assert!(mirrored > 0);

    for mode in [Mode::Full, Mode::Delta] {
        let other = r
            .run_to_end(ReconcileEvent::new(mode), &Limits::none())
            .await
            .unwrap();
        assert_eq!(
            other.summary.state,
            RunState::Stopped,
            "{:?}",
            other.summary.stop
        );
        match &other.summary.stop {
            Some(StopReason::AnotherRunInProgress { run_id, detail }) => {
                assert_eq!(run_id, &first);
                assert!(detail.contains("did not start"), "{detail}");
                // A full run is not skipped: it waits behind the holder; a delta is.
                assert_eq!(
                    detail.contains("a full run starts when it ends"),
                    mode == Mode::Full,
                    "{detail}"
                );
            }
            stop => panic!("{stop:?}"),
        }
        assert!(other.then.is_none());
        assert_eq!(other.summary.orgs.pages, 0, "{:?}", other.summary.orgs);
        assert_eq!(other.summary.rows.auto_resolved, 0);
        // Nothing stamped by it: every mirrored row is one it did not list.
        assert_eq!(
            r.stores
                .mirror
                .not_listed(&other.summary.run_id)
                .await
                .unwrap()
                .len(),
            mirrored
        );
        let record = r
            .stores
            .runs
            .get(&other.summary.run_id, 0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.status, orglink_shared::aws::RunStatus::Incomplete);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(r.stores.mirror.filled().await.unwrap(), None);

    let done = r.run_to_end(next, &Limits::pages(1)).await.unwrap();
    assert_eq!(
        done.summary.state,
        RunState::Complete,
        "{:?}",
        done.summary.stop
    );
    assert_eq!(done.summary.orgs.deleted, 0, "{:?}", done.summary.orgs);
    // The refused full run is started by the holder as it ends.
    assert_eq!(done.then.as_ref().map(|e| e.mode), Some(Mode::Full));
    assert_eq!(done.then.as_ref().and_then(|e| e.run_id.clone()), None);
    assert!(r.stores.mirror.not_listed(&first).await.unwrap().is_empty());
    assert!(r.stores.mirror.filled().await.unwrap().is_some());
    // Released: the next run starts.
    assert_eq!(r.stores.runs.lease(RUN_LEASE).await.unwrap(), None);
    let after = r
        .run_to_end(ReconcileEvent::new(Mode::Delta), &Limits::none())
        .await
        .unwrap();
    assert_eq!(
        after.summary.state,
        RunState::Complete,
        "{:?}",
        after.summary.stop
    );
}

/// A run that stopped renewing its lease (its invocations stopped coming) is taken over by
/// the next run; if it ever resumes, it finds it lost the lease and stops where it is,
/// removing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_stale_lease_was_taken_over_stops_and_removes_nothing() {
    let (scenario, _) = generated(300, 5);
    let world = World::serve(scenario).await;
    let mut r = world.reconciler(Stores::memory(), roomy_budget()).await;
    r.settings.lease_stale_secs = 1;
    let Step::Continue(next) = r
        .invoke(&ReconcileEvent::new(Mode::Full), &Limits::pages(1))
        .await
        .unwrap()
    else {
        panic!("a 300-account world lists more than one page of organizations")
    };
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let taker = r
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    assert_eq!(
        taker.summary.state,
        RunState::Complete,
        "{:?}",
        taker.summary.stop
    );
    let mirrored = r.stores.mirror.all().await.unwrap();
    assert!(!mirrored.is_empty());
    let exceptions_before = open_rows(&r).await;

    let old = r.run_to_end(next, &Limits::pages(1)).await.unwrap();
    assert_eq!(
        old.summary.state,
        RunState::Stopped,
        "{:?}",
        old.summary.orgs
    );
    assert!(
        matches!(old.summary.stop, Some(StopReason::LeaseLost { .. })),
        "{:?}",
        old.summary.stop
    );
    assert_eq!(old.summary.orgs.deleted, 0);
    assert_eq!(old.summary.rows.auto_resolved, 0);
    assert_eq!(r.stores.mirror.all().await.unwrap(), mirrored);
    assert_eq!(open_rows(&r).await, exceptions_before);
}

/// Auto-resolve closes only rows last seen before the run's snapshot of the mirror: a row the
/// worker opened after it (a far-future sighting stands for it) is about something the run
/// could not see, and stays open after a complete full run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_opened_after_the_runs_snapshot_is_not_auto_resolved() {
    use orglink_shared::exceptions::{Evidence, ExceptionKind, Finding};
    use orglink_shared::ids::AccountId;

    let (scenario, _) = generated(50, 7);
    let world = World::serve(scenario).await;
    let r = world.reconciler(Stores::memory(), roomy_budget()).await;
    let account = AccountId::parse("001SB00000ZZZZZYA5").unwrap();
    let org = OrgId::new(990_000_009).unwrap();
    let finding = |what: &str| {
        Finding::new(ExceptionKind::NameDrift, [account.clone()], [org])
            .with_evidence(Evidence::new().with("seen", what))
    };
    let before = finding("before the run");
    let after = Finding::new(ExceptionKind::DomainDrift, [account.clone()], [org])
        .with_evidence(Evidence::new().with("seen", "after the snapshot"));
    let ex = &r.stores.exceptions;
    ex.upsert(&before, &BTreeMap::new(), 1_000).await.unwrap();
    ex.upsert(&after, &BTreeMap::new(), i64::MAX / 2)
        .await
        .unwrap();

    let out = r
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .unwrap();
    assert_eq!(
        out.summary.state,
        RunState::Complete,
        "{:?}",
        out.summary.stop
    );
    let status = |f: &Finding| {
        let fp = f.fingerprint();
        async move { ex.get(&fp).await.unwrap().unwrap().status }
    };
    assert_eq!(status(&before).await, ExceptionStatus::AutoResolved);
    assert_eq!(status(&after).await, ExceptionStatus::Open);
}
