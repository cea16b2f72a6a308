//! The commands over orglink's AWS state, run as an operator would against the local stack on
//! moto (built from infra/template.yaml): sync enqueues a sync request; exceptions list, show,
//! resolve and dismiss with status rules; dlq list and redrive; trace reads the stores.

mod support;

use std::collections::BTreeMap;

use orglink_harness::moto_stack;
use orglink_shared::aws::exceptions::DynamoExceptions;
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::aws::{ExceptionStatus, ExceptionStore, WorkQueue};
use orglink_shared::exceptions::{Action, ExceptionKind, Finding};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::sync_request::{RequestSource, SyncRequest};
use serde_json::Value;
use support::*;

const ACCOUNT: &str = "001D000000IRFmaIAH";

/// Everything on the work queue right now (taken, so the next look starts empty).
async fn drain(queue: &SqsQueue) -> Vec<SyncRequest> {
    let mut out = Vec::new();
    loop {
        let batch = queue.receive(10, Some(60)).await.expect("receive");
        if batch.is_empty() {
            return out;
        }
        for m in batch {
            out.push(SyncRequest::from_body(&m.body).expect("a sync request"));
            queue.delete(&m.receipt_handle).await.expect("delete");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_enqueues_one_operator_request_and_refuses_bad_ids() {
    let (aws, stack) = moto_stack("cli-sync").await;
    let env = aws_env(&aws, &stack);
    let names = stack.names().unwrap();
    let queue = SqsQueue::new(
        aws.sqs(),
        names.sync_queue_url.clone(),
        names.sync_dlq_url.clone(),
    );

    let run = orglink(
        &["sync", "001D000000IRFma", "--note", "asked by support"],
        &env,
    );
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let queued = drain(&queue).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        queued[0].account_id.as_str(),
        ACCOUNT,
        "15-character id upgraded"
    );
    assert_eq!(queued[0].source, RequestSource::Operator);
    assert_eq!(queued[0].note.as_deref(), Some("asked by support"));

    let bad = orglink(&["sync", "not-an-account"], &env);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("not a Salesforce Account id"),
        "{}",
        stderr(&bad)
    );
    assert!(drain(&queue).await.is_empty());

    // Without the deployment's names: exit 2, naming the variables.
    let bare: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "ORGLINK_SYNC_QUEUE_URL")
        .cloned()
        .collect();
    let missing = orglink(&["sync", ACCOUNT], &bare);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("ORGLINK_SYNC_QUEUE_URL"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn exceptions_are_listed_shown_resolved_and_dismissed_with_who_and_why() {
    let (aws, stack) = moto_stack("cli-exc").await;
    let env = aws_env(&aws, &stack);
    let names = stack.names().unwrap();
    let store = DynamoExceptions::new(aws.dynamodb(), names.exceptions_table.clone());
    let queue = SqsQueue::new(
        aws.sqs(),
        names.sync_queue_url.clone(),
        names.sync_dlq_url.clone(),
    );
    let account = AccountId::parse(ACCOUNT).unwrap();
    let org = |n| OrgId::new(n).unwrap();
    let ambiguous = Finding::new(
        ExceptionKind::AmbiguousDomain,
        [account.clone()],
        [org(11), org(12)],
    )
    .with_actions(vec![
        Action::LinkToOrg {
            account: account.clone(),
            org: org(11),
        },
        Action::LinkToOrg {
            account: account.clone(),
            org: org(12),
        },
        Action::CreateNewOrg {
            account: account.clone(),
        },
    ]);
    let drift = Finding::new(ExceptionKind::NameDrift, [account.clone()], [org(11)]);
    let names_map = BTreeMap::from([(ACCOUNT.to_string(), "Acme".to_string())]);
    let a = store.upsert(&ambiguous, &names_map, 1_000).await.unwrap();
    let d = store.upsert(&drift, &names_map, 2_000).await.unwrap();

    let listed = orglink(&["exceptions", "list", "--json"], &env);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let rows: Vec<Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    let warnings = stdout(&orglink(
        &["exceptions", "list", "--severity", "warning", "--json"],
        &env,
    ));
    assert_eq!(warnings.lines().count(), 1);
    assert!(warnings.contains("ambiguous_domain"));
    let kinds = stdout(&orglink(
        &["exceptions", "list", "--kind", "name_drift", "--json"],
        &env,
    ));
    assert_eq!(kinds.lines().count(), 1);

    let shown = stdout(&orglink(
        &["exceptions", "show", a.fingerprint.as_str()],
        &env,
    ));
    assert!(shown.contains("1. link_to_org"), "{shown}");
    assert!(
        shown.contains(ExceptionKind::AmbiguousDomain.recommended_action()),
        "{shown}"
    );

    // Resolve by choosing organization 12: the row records who and why, and a sync request
    // carrying the chosen organization is queued for the worker.
    let resolved = orglink(
        &[
            "exceptions",
            "resolve",
            a.fingerprint.as_str(),
            "--action",
            "2",
            "--note",
            "checked with the AM",
        ],
        &env,
    );
    assert_eq!(resolved.status.code(), Some(0), "{}", stderr(&resolved));
    let row = store.get(&a.fingerprint).await.unwrap().unwrap();
    assert_eq!(row.status, ExceptionStatus::Resolved);
    let change = row.status_change.unwrap();
    assert_eq!(change.by, "test-operator");
    assert!(
        change.reason.contains("organization 12") && change.reason.contains("checked with the AM"),
        "{}",
        change.reason
    );
    let queued = drain(&queue).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].org_id, Some(org(12)));

    // A resolved row cannot be resolved or dismissed again.
    let again = orglink(
        &[
            "exceptions",
            "dismiss",
            a.fingerprint.as_str(),
            "--note",
            "x",
        ],
        &env,
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("is resolved"), "{}", stderr(&again));
    // An action the row does not offer is refused, listing what it offers.
    let refused = orglink(
        &[
            "exceptions",
            "resolve",
            d.fingerprint.as_str(),
            "--action",
            "retry",
            "--note",
            "x",
        ],
        &env,
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("fix_by_hand"),
        "{}",
        stderr(&refused)
    );

    let dismissed = orglink(
        &[
            "exceptions",
            "dismiss",
            d.fingerprint.as_str(),
            "--note",
            "rename intended",
            "--by",
            "lead",
        ],
        &env,
    );
    assert_eq!(dismissed.status.code(), Some(0), "{}", stderr(&dismissed));
    let row = store.get(&d.fingerprint).await.unwrap().unwrap();
    assert_eq!(row.status, ExceptionStatus::Dismissed);
    assert_eq!(row.status_change.unwrap().by, "lead");
    assert!(
        stdout(&orglink(&["exceptions", "list", "--json"], &env))
            .trim()
            .is_empty()
    );
    assert!(drain(&queue).await.is_empty(), "dismissing queues nothing");

    // trace shows the exceptions naming the account.
    let traced = orglink(&["trace", ACCOUNT, "--json"], &env);
    assert_eq!(traced.status.code(), Some(0), "{}", stderr(&traced));
    let t: Value = serde_json::from_slice(&traced.stdout).unwrap();
    assert_eq!(t["link_record"], Value::Null);
    assert_eq!(t["exceptions"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_in_place_and_redriven() {
    let (aws, stack) = moto_stack("cli-dlq").await;
    let env = aws_env(&aws, &stack);
    let names = stack.names().unwrap();
    let sqs = aws.sqs();
    for (i, body) in ["this is not a sync request", "{\"also\": \"poison\"}"]
        .iter()
        .enumerate()
    {
        sqs.send_message()
            .queue_url(&names.sync_dlq_url)
            .message_body(*body)
            .message_group_id(format!("group-{i}"))
            .message_deduplication_id(format!("d{i}"))
            .send()
            .await
            .expect("seed the DLQ");
    }
    let listed = orglink(&["dlq", "list", "--json"], &env);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let lines: Vec<Value> = stdout(&listed)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["poison"] == true));
    // Looking takes nothing away.
    assert_eq!(
        stdout(&orglink(&["dlq", "list", "--json"], &env))
            .lines()
            .count(),
        2
    );

    let redriven = orglink(&["dlq", "redrive"], &env);
    assert_eq!(redriven.status.code(), Some(0), "{}", stderr(&redriven));
    assert!(
        stdout(&redriven).contains("moved 2"),
        "{}",
        stdout(&redriven)
    );
    assert!(stdout(&orglink(&["dlq", "list"], &env)).contains("empty"));
    let queue = SqsQueue::new(
        aws.sqs(),
        names.sync_queue_url.clone(),
        names.sync_dlq_url.clone(),
    );
    let back = queue.receive(10, Some(60)).await.unwrap();
    assert_eq!(back.len(), 2, "both are back on the work queue");
}

/// Zendesk calls by endpoint so far (the sandbox's count, all statuses).
async fn zendesk_calls(sandbox: &orglink_harness::Sandbox, endpoint: &str) -> u64 {
    let calls: Value = reqwest::get(format!("{}/_sandbox/calls", sandbox.zendesk))
        .await
        .expect("the sandbox answers")
        .json()
        .await
        .expect("JSON");
    calls[endpoint].as_object().map_or(0, |by_status| {
        by_status.values().filter_map(Value::as_u64).sum()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_live_gathers_candidates_as_the_worker_does_and_names_the_rule() {
    let (aws, stack) = moto_stack("cli-trace").await;
    let dir = scratch("trace-live");
    const MERGED: &str = "001D000000IomazIAB";
    const NEW: &str = "001D000000IqhSLIAZ";
    let scenario = dir.join("scenario.json");
    std::fs::write(
        &scenario,
        serde_json::json!({
            "salesforce": {"accounts": [
                {"Id": ACCOUNT, "Name": "Acme Rockets", "Type": "Customer - Direct",
                 "Website": "https://www.acme-rockets.com", "Zendesk_Org_ID__c": "11"},
                {"Id": MERGED, "Name": "Acme Rockets (old)", "Type": "Customer - Direct",
                 "MasterRecordId": ACCOUNT},
                {"Id": NEW, "Name": "Globex", "Type": "Customer - Direct"},
            ]},
            "zendesk": {"organizations": [
                {"id": 11, "name": "Acme Rockets", "external_id": ACCOUNT,
                 "domain_names": ["acme-rockets.com"]},
                {"id": 12, "name": "Initech"},
            ]},
        })
        .to_string(),
    )
    .unwrap();
    let sandbox =
        orglink_harness::Sandbox::start(Some(&scenario)).unwrap_or_else(|e| panic!("{e}"));
    let mut env = aws_env(&aws, &stack);
    env.extend(sandbox_env(&sandbox, &sandbox_config(&dir)));

    // The key decides: one lookup by external ids (both id forms, the merged account's too)
    // finds the stored organization, so nothing else is asked — no search by name.
    let searches = zendesk_calls(&sandbox, "zd.org_search").await;
    let shows = zendesk_calls(&sandbox, "zd.org_show_many").await;
    let traced = orglink(&["trace", ACCOUNT, "--live", "--json"], &env);
    assert_eq!(traced.status.code(), Some(0), "{}", stderr(&traced));
    let t: Value = serde_json::from_slice(&traced.stdout).unwrap();
    let live = &t["live"];
    assert_eq!(live["rule"], "key_match", "{live:#}");
    assert_eq!(live["decision"]["decision"], "link", "{live:#}");
    assert_eq!(live["stored_link"]["state"], "found");
    assert_eq!(live["merged_accounts"], serde_json::json!([MERGED]));
    assert_eq!(live["reviewed_domain"], "acme-rockets.com");
    let ids: Vec<&str> = live["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["11"], "{live:#}");
    assert_eq!(zendesk_calls(&sandbox, "zd.org_show_many").await, shows + 1);
    assert_eq!(zendesk_calls(&sandbox, "zd.org_search").await, searches);
    let text = stdout(&orglink(&["trace", ACCOUNT, "--live"], &env));
    assert!(text.contains("rule: key_match"), "{text}");
    assert!(text.contains("candidate 11"), "{text}");

    // No organization carries anything of this account: the decision would be to create, and
    // only then is the name searched for.
    let traced = orglink(&["trace", NEW, "--live", "--json"], &env);
    assert_eq!(traced.status.code(), Some(0), "{}", stderr(&traced));
    let t: Value = serde_json::from_slice(&traced.stdout).unwrap();
    assert_eq!(t["live"]["rule"], "create_new", "{:#}", t["live"]);
    assert_eq!(t["live"]["stored_link"]["state"], "none");
    assert_eq!(
        zendesk_calls(&sandbox, "zd.org_search").await,
        searches + 1,
        "the name is searched only when the decision would create"
    );
}
