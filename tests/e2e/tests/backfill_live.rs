//! Backfill while live events flow: the sync worker (its production wiring and the local
//! runner, four workers) works through 500 events for the same generated world while `apply`
//! runs. They share the claim table and the rate budget. Shown:
//!
//! - every one of the 500 events is accounted for: it ended succeeded, coalesced,
//!   deduplicated, ignored (with its reason) or as an exception — none in the dead-letter
//!   queue (contention is waited out, not failed);
//! - the end state is the truth's: each account linked to its truth's organization, one new
//!   organization per new customer, zero wrong links, zero duplicate organizations.
//!
//! The world's size: `ORGLINK_E2E_BACKFILL_ACCOUNTS` (default 300, so the suite stays near a
//! minute and a half on moto; `make e2e-5000` runs 5,000).

mod backfill_support;
mod worker_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use orglink_sandbox::generate::{Expected, Options, generate};
use orglink_shared::aws::WorkQueue;
use orglink_shared::backfill::snapshot;
use orglink_shared::backfill::{Progress, Settings};
use orglink_shared::contract::{Config, EventKind};
use orglink_shared::domain::DomainPolicy;
use orglink_sync_worker::Outcome;
use orglink_sync_worker::batch::MessageFate;
use orglink_sync_worker::runner::RunnerConfig;

const EVENTS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_and_500_live_events_end_as_the_truth() {
    // What went wrong in a worker, if anything, on stderr (crashes, timeouts, retries).
    let _ = tracing::subscriber::set_global_default(orglink_sync_worker::logging::json_subscriber(
        std::io::stderr,
        "orglink_sync_worker=warn",
    ));
    let accounts = backfill_support::world_size(300);
    let generated = generate(&Options { accounts, seed: 21 });
    let truth = generated.truth().clone();
    let scenario: serde_json::Value =
        serde_json::from_slice(&generated.scenario_bytes()).expect("scenario");
    // One generous shared budget for the worker and the backfill alike (the same bucket
    // configuration, as in a deployment), and a simulator that does not throttle below it.
    let mut settings = worker_support::fast_settings();
    settings.zendesk_plan_per_minute = 6000;
    settings.zendesk_share_percent = 100;
    settings.salesforce_per_minute = 6000;
    let w = worker_support::World::start_with("bflive", scenario, settings).await;
    w.admin
        .zd_post(
            "switches",
            serde_json::json!({"rate_limit_per_minute": 100_000, "job_delay_ms": 50}),
        )
        .await;
    let config = Config::embedded_default();
    let db = aws_sdk_dynamodb::Client::new(w.aws.sdk_config());
    let names = w.stack.names().unwrap();
    let (sf, zd, _) = backfill_support::clients(&db, &names, &w.sandbox, &config).await;
    let stores = backfill_support::stores(&db, &names);
    let policy = DomainPolicy::default();
    let progress = Progress::hidden();
    let bf = backfill_support::backfill(
        &config,
        &sf,
        &zd,
        &stores,
        &policy,
        &progress,
        Settings::default(),
    );
    let before = snapshot::read(&sf, &zd, config.write_back().fields(), &progress, |_| {})
        .await
        .unwrap();
    let plan = bf.plan().await.expect("plan").into_file();

    // 500 events about eligible accounts, the ones the backfill links or creates for.
    let eligible: Vec<&str> = truth
        .accounts
        .iter()
        .filter(|t| t.eligible && matches!(t.expected, Expected::Link(_) | Expected::LinkNew))
        .map(|t| t.account_id.as_str())
        .collect();
    let kinds = [
        EventKind::ClosedWon,
        EventKind::BecameCustomer,
        EventKind::NameChanged,
    ];
    let mut sends = tokio::task::JoinSet::new();
    for n in 0..EVENTS {
        let account = eligible[n % eligible.len()];
        let message =
            worker_support::request(account, kinds[n % kinds.len()], &format!("live-{n}"))
                .to_message();
        let queue = w.queue.clone();
        sends.spawn(async move { queue.send(&message).await });
    }
    for sent in sends.join_all().await {
        sent.expect("enqueue");
    }

    let applied = AtomicBool::new(false);
    let journal =
        std::env::temp_dir().join(format!("{}-live.journal", w.stack.parameters["Prefix"]));
    let apply = async {
        let r = bf.apply(&plan, &plan.hash, &journal).await;
        applied.store(true, Ordering::SeqCst);
        r
    };
    // The deployed shape: a function timeout with the queue's visibility at six times it.
    let runner = RunnerConfig {
        workers: 4,
        batch_size: 10,
        visibility_secs: 60,
        timeout_ms: 10_000,
        idle_poll_ms: 100,
    };
    let live = w.run_with(runner, Duration::from_secs(600), || async {
        applied.load(Ordering::SeqCst) && w.queue_depth().await == (0, 0)
    });
    let (report, run) = tokio::join!(apply, live);
    let report = report.expect("apply");
    eprintln!(
        "apply: {} created, {} linked, {} skipped, {} failed; live: {} invocations in {:.1?}",
        report.created,
        report.linked,
        report.skipped.len(),
        report.failed.len(),
        run.invocations,
        run.elapsed
    );
    assert!(run.finished, "the queue did not drain: {run:?}");
    // Accounts the worker linked first are skipped by the fingerprint; none fail.
    assert!(
        report.failed.len() <= truth.switch_dependent.len(),
        "{:?}",
        report.failed
    );

    // Contention was waited out: nothing reached the dead-letter queue. (Messages the worker
    // cut short near a deadline are among the retries; an invocation that still timed out on
    // an overloaded machine is logged and counted here, and its batch came back.)
    eprintln!("{} invocations crashed or timed out", run.crashes);
    assert_eq!(w.dlq_depth().await, 0);

    // Every event accounted for: its message (or the fresh copy it was re-sent as) finished.
    let mut finished: HashMap<&str, Vec<&Outcome>> = HashMap::new();
    let (mut retried, mut requeued) = (0, 0);
    for f in &run.fates {
        match f {
            MessageFate::Done {
                event_id, detail, ..
            } => finished.entry(event_id.as_str()).or_default().push(detail),
            MessageFate::RetryLater { .. } => retried += 1,
            MessageFate::Requeued { .. } => requeued += 1,
            MessageFate::Poison { message_id } => panic!("poison {message_id}"),
        }
    }
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for n in 0..EVENTS {
        let id = format!("live-{n}");
        let outcomes = finished
            .get(id.as_str())
            .unwrap_or_else(|| panic!("event {id} never finished"));
        // A message finished in an invocation that later failed is redelivered and then
        // deduplicated: what counts is the first outcome.
        let outcome = outcomes[0];
        if let Outcome::Ignored { reason } = outcome {
            assert!(!reason.is_empty(), "{id}: ignored without a reason");
        }
        let key = match outcome {
            Outcome::Exception { kind, .. } => format!("exception:{}", kind.as_str()),
            other => other.category().to_string(),
        };
        *by.entry(key).or_default() += 1;
    }
    eprintln!("events: {by:?}; {retried} retries, {requeued} re-sent");
    assert_eq!(by.values().sum::<usize>(), EVENTS);
    // Only the accounts Salesforce refuses the write-back for (the truth's switch_dependent)
    // may end as exceptions; the rest are linked.
    for (k, n) in &by {
        assert!(
            !k.starts_with("exception:") || k == "exception:write_back_blocked",
            "{n} events ended as {k}"
        );
    }

    let after = snapshot::read(&sf, &zd, config.write_back().fields(), &progress, |_| {})
        .await
        .unwrap();
    // Links: each eligible account on its truth's org, one org per new account, nothing else.
    // (Review rows are the reconcile's to complete: tests/backfill.rs checks them.)
    let v: Vec<String> = backfill_support::violations(&truth, &before, &after, &[])
        .into_iter()
        .filter(|v| !v.contains(" open ") && !v.contains(" row"))
        .collect();
    assert!(
        v.is_empty(),
        "{} differences from the truth:\n{}",
        v.len(),
        v.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
    assert_eq!(
        backfill_support::duplicate_new_orgs(&before, &after),
        Vec::<String>::new(),
        "duplicate organizations"
    );
}
