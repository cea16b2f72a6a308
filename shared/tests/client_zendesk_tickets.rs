//! The Zendesk client's ticket reads (incremental ticket export, requesters' memberships and
//! the attribution they give) against the Zendesk simulator over loopback.

mod support;

use std::collections::{HashMap, HashSet};

use futures_util::TryStreamExt;
use orglink_shared::http::{CallLog, System};
use orglink_shared::ids::OrgId;
use orglink_shared::zendesk::TicketExportFrom;
use serde_json::{Value, json};
use support::*;

fn org(n: u64) -> OrgId {
    OrgId::new(n).unwrap()
}

fn ticket(id: u64, org: u64, requester: u64, status: &str) -> Value {
    json!({"id": id, "subject": "Help", "status": status, "requester_id": requester,
           "submitter_id": requester, "organization_id": org,
           "created_at": "2024-01-01T00:00:00Z",
           "updated_at": format!("2024-02-{:02}T00:00:00Z", 1 + id % 28)})
}

/// 2,500 tickets on org 1 by its member 10; ticket 1 is deleted; on org 2: one by 20 (member
/// of 1 and 2, default 1), one by 30 (member of 1 only), one by 40 (in no organization).
fn scenario() -> Value {
    let mut tickets: Vec<Value> = (1..=2500u64)
        .map(|i| ticket(i, 1, 10, if i == 1 { "deleted" } else { "open" }))
        .collect();
    tickets.extend([
        ticket(3001, 2, 20, "open"),
        ticket(3002, 2, 30, "solved"),
        ticket(3003, 2, 40, "closed"),
    ]);
    json!({"zendesk": {
        "organizations": [{"id": 1, "name": "One"}, {"id": 2, "name": "Two"}],
        "users": [
            {"id": 10, "name": "A", "email": "a@one.com", "organization_id": 1},
            {"id": 20, "name": "B", "email": "b@one.com", "organization_id": 1},
            {"id": 30, "name": "C", "email": "c@one.com", "organization_id": 1},
            {"id": 40, "name": "D", "email": "d@elsewhere.com", "organization_id": null}
        ],
        "organization_memberships": [
            {"id": 100, "user_id": 10, "organization_id": 1, "default": true},
            {"id": 101, "user_id": 20, "organization_id": 1, "default": true},
            {"id": 102, "user_id": 20, "organization_id": 2, "default": false},
            {"id": 103, "user_id": 30, "organization_id": 1, "default": true}
        ],
        "tickets": tickets
    }})
}

#[tokio::test]
async fn the_ticket_export_pages_resumes_and_attributes_at_the_call_floor() {
    let sb = Sandbox::start(scenario()).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();

    let pages: Vec<_> = zd
        .ticket_export(TicketExportFrom::StartTime(1_700_000_000))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3, "1,000 tickets a page");
    assert!(pages.last().unwrap().end_of_stream);
    assert!(pages[..2].iter().all(|p| !p.end_of_stream));
    let ids: HashSet<u64> = pages
        .iter()
        .flat_map(|p| p.tickets.iter().map(|t| t.id))
        .collect();
    assert_eq!(
        ids.len(),
        2502,
        "every ticket once, the deleted one left out"
    );
    assert!(!ids.contains(&1));
    // The requesters come sideloaded with their default organization.
    assert_eq!(pages[0].users.get(&10), Some(&Some(org(1))));

    // Resuming from the first page's cursor reads the rest, nothing twice.
    let rest: Vec<_> = zd
        .ticket_export(TicketExportFrom::Cursor(
            pages[0].after_cursor.clone().unwrap(),
        ))
        .try_collect()
        .await
        .unwrap();
    let rest_ids: HashSet<u64> = rest
        .iter()
        .flat_map(|p| p.tickets.iter().map(|t| t.id))
        .collect();
    let first: HashSet<u64> = pages[0].tickets.iter().map(|t| t.id).collect();
    assert!(rest_ids.is_disjoint(&first));
    assert_eq!(rest_ids.len() + first.len(), 2502);

    // Attribution: only requesters whose default org is not the ticket's are looked up.
    let mut memberships = HashMap::new();
    let mut facts = Vec::new();
    for page in &pages {
        facts.extend(
            zd.ticket_attributions(page, &mut memberships)
                .await
                .unwrap(),
        );
    }
    assert_eq!(facts.len(), 2502);
    let wrong: Vec<(u64, u64)> = facts
        .iter()
        .filter(|f| f.misattributed())
        .map(|f| (f.ticket, f.requester))
        .collect();
    assert_eq!(wrong, [(3002, 30), (3003, 40)]);
    let lookups = calls.count(System::Zendesk, "zd.user_memberships", None);
    assert_eq!(lookups, 3, "requesters 20, 30 and 40, once each");
    assert_eq!(calls.count(System::Zendesk, "zd.user_show_many", None), 0);
    assert_eq!(memberships[&20], vec![org(1), org(2)]);
}

#[tokio::test]
async fn requesters_missing_from_the_page_are_read_in_bulk() {
    let sb = Sandbox::start(scenario()).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();
    let export = zd.ticket_export(TicketExportFrom::StartTime(1_700_000_000));
    futures_util::pin_mut!(export);
    let mut page = export.try_next().await.unwrap().unwrap();
    let wrong = |facts: &[orglink_shared::reconcile::TicketFacts]| -> Vec<u64> {
        facts
            .iter()
            .filter(|f| f.misattributed())
            .map(|f| f.ticket)
            .collect()
    };
    let sideloaded = zd
        .ticket_attributions(&page, &mut HashMap::new())
        .await
        .unwrap();
    assert_eq!(calls.count(System::Zendesk, "zd.user_show_many", None), 0);
    // As if Zendesk had not sideloaded the users: the same answer, one bulk read more.
    page.users.clear();
    let facts = zd
        .ticket_attributions(&page, &mut HashMap::new())
        .await
        .unwrap();
    assert_eq!(facts, sideloaded);
    assert_eq!(facts.len(), page.tickets.len());
    assert!(wrong(&facts).iter().all(|t| [3002, 3003].contains(t)));
    assert_eq!(calls.count(System::Zendesk, "zd.user_show_many", None), 1);
}
