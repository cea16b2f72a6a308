//! Apply beside a nearly spent shared rate budget: short waits are sat out through
//! `PatientBudget`, a wait beyond its bound stops apply with the budget's reason.
//! Simulators in-process over loopback; stores and budget in memory.
#![cfg(feature = "aws")]

use std::sync::Arc;
use std::time::Duration;

use orglink_sandbox::generate::{Options, generate};
use orglink_sandbox::salesforce::SalesforceOptions;
use orglink_sandbox::scenario::{SalesforceSeed, ZendeskSeed};
use orglink_sandbox::zendesk::ZendeskOptions;
use orglink_shared::aws::SharedRateBudget;
use orglink_shared::aws::budget::MemoryBudget;
use orglink_shared::aws::claims::MemoryClaims;
use orglink_shared::aws::exceptions::MemoryExceptions;
use orglink_shared::aws::links::MemoryLinks;
use orglink_shared::aws::mirror::MemoryMirror;
use orglink_shared::backfill::journal::Journal;
use orglink_shared::backfill::{Backfill, BackfillError, PatientBudget, Progress, Settings};
use orglink_shared::contract::Config;
use orglink_shared::credentials::{
    SalesforceCredentials, SalesforceFlow, Secret, ZendeskCredentials,
};
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::{BudgetConfig, BudgetRefusal, CallLog, RateBudget, RetryPolicy};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig, ZendeskError};
use serde_json::Value;

const BOUND_ORG: &str = "00D000000000001EAA";

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
    format!("http://{addr}")
}

/// Both simulators with a small generated world.
async fn world(accounts: usize) -> (String, String) {
    let world = generate(&Options { accounts, seed: 5 });
    let scenario: Value = serde_json::from_slice(&world.scenario_bytes()).expect("scenario");
    let sf_seed: SalesforceSeed = serde_json::from_value(scenario["salesforce"].clone()).unwrap();
    let zd_seed: ZendeskSeed = serde_json::from_value(scenario["zendesk"].clone()).unwrap();
    let sf = serve(orglink_sandbox::salesforce::app(
        SalesforceOptions {
            org_id: BOUND_ORG.into(),
            daily_api_limit: 10_000_000,
            ..SalesforceOptions::default()
        },
        sf_seed,
    ))
    .await;
    let zd = serve(orglink_sandbox::zendesk::app(
        ZendeskOptions::default(),
        zd_seed,
    ))
    .await;
    (sf, zd)
}

/// A shared budget whose Zendesk side is nearly spent all the time: a burst of one token
/// and 600 a minute, so once a token is taken the next is due in about 100 ms.
fn nearly_spent() -> Arc<dyn RateBudget> {
    let zendesk = BudgetConfig {
        burst: 1,
        ..BudgetConfig::zendesk(600, 100)
    };
    Arc::new(SharedRateBudget::new(
        Arc::new(MemoryBudget::default()),
        BudgetConfig::salesforce(100_000, 0),
        zendesk,
    ))
}

/// Clients that never wait inside a call for the budget themselves (`max_wait` zero), as a
/// client whose own wait ran out under contention: every wait is the patient budget's.
async fn clients(
    urls: &(String, String),
    config: &Config,
    budget: Arc<dyn RateBudget>,
) -> (SalesforceClient, ZendeskClient) {
    let retry = RetryPolicy {
        max_wait: Duration::ZERO,
        ..RetryPolicy::fast()
    };
    let calls = CallLog::new();
    let sf = SalesforceClient::connect(
        SalesforceConfig {
            retry: retry.clone(),
            ..SalesforceConfig::default()
        },
        SalesforceCredentials {
            my_domain_url: urls.0.clone(),
            client_id: "orglink-sandbox-consumer-key".into(),
            flow: SalesforceFlow::ClientCredentials {
                client_secret: Secret::new("orglink-sandbox-consumer-secret"),
            },
        },
        config.binding(),
        budget.clone(),
        calls.clone(),
    )
    .await
    .expect("Salesforce");
    let zd = ZendeskClient::connect(
        ZendeskConfig {
            base_url: Some(urls.1.clone()),
            retry,
            job_poll_ms: 20,
            ..ZendeskConfig::default()
        },
        ZendeskCredentials::ApiToken {
            email: "admin@example.com".into(),
            api_token: Secret::new("sandbox-zendesk-token"),
        },
        config.binding(),
        budget,
        calls,
    )
    .await
    .expect("Zendesk");
    (sf, zd)
}

struct Stores {
    claims: MemoryClaims,
    links: MemoryLinks,
    exceptions: MemoryExceptions,
    mirror: MemoryMirror,
}

fn backfill<'a>(
    sf: &'a SalesforceClient,
    zd: &'a ZendeskClient,
    s: &'a Stores,
    config: &'a Config,
    policy: &'a DomainPolicy,
    progress: &'a Progress,
) -> Backfill<'a, MemoryClaims, MemoryLinks, MemoryExceptions, MemoryMirror> {
    Backfill {
        salesforce: sf,
        zendesk: zd,
        claims: &s.claims,
        links: &s.links,
        exceptions: &s.exceptions,
        mirror: &s.mirror,
        config,
        policy,
        progress,
        settings: Settings::default(),
    }
}

fn stores() -> Stores {
    Stores {
        claims: MemoryClaims::default(),
        links: MemoryLinks::default(),
        exceptions: MemoryExceptions::default(),
        mirror: MemoryMirror::default(),
    }
}

fn journal_path(name: &str) -> std::path::PathBuf {
    let plan = std::env::temp_dir().join(format!(
        "orglink-backfill-budget-{name}-{}.json",
        std::process::id()
    ));
    let journal = Journal::path_for(&plan);
    let _ = std::fs::remove_file(&journal);
    journal
}

#[tokio::test]
async fn apply_waits_out_short_budget_waits_and_completes() {
    let urls = world(12).await;
    let config = Config::embedded_default();
    let (policy, progress, s) = (DomainPolicy::default(), Progress::hidden(), stores());
    let inner = nearly_spent();
    // Each refill is ~100 ms away: well within a 2 s bound.
    let patient: Arc<dyn RateBudget> =
        Arc::new(PatientBudget::new(inner.clone(), Duration::from_secs(2)));
    let (sf, zd) = clients(&urls, &config, patient).await;
    let bf = backfill(&sf, &zd, &s, &config, &policy, &progress);
    let plan = bf.plan().await.expect("plan").into_file();
    let journal = journal_path("waits");
    let report = bf
        .apply(&plan, &plan.hash, &journal)
        .await
        .expect("apply completes through the budget's waits");
    let _ = std::fs::remove_file(&journal);
    assert!(
        report.created + report.linked > 0,
        "the world has accounts to link: {report:?}"
    );
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(report.skipped.is_empty(), "{report:?}");
    // The budget really was spent throughout: a caller unwilling to wait is refused.
    assert!(matches!(
        inner
            .take(
                orglink_shared::http::CallSpec {
                    system: orglink_shared::http::System::Zendesk,
                    endpoint: "zd.show",
                    record: None,
                },
                Duration::ZERO
            )
            .await,
        Err(BudgetRefusal::Busy { .. })
    ));
}

#[tokio::test]
async fn apply_stops_with_the_budget_reason_when_the_wait_exceeds_the_bound() {
    let urls = world(12).await;
    let config = Config::embedded_default();
    let (policy, progress, s) = (DomainPolicy::default(), Progress::hidden(), stores());
    let inner = nearly_spent();
    let plan = {
        let patient: Arc<dyn RateBudget> =
            Arc::new(PatientBudget::new(inner.clone(), Duration::from_secs(2)));
        let (sf, zd) = clients(&urls, &config, patient).await;
        backfill(&sf, &zd, &s, &config, &policy, &progress)
            .plan()
            .await
            .expect("plan")
            .into_file()
    };
    // A 10 ms bound against ~100 ms refills: the first Zendesk call that finds the bucket
    // empty stops apply. The bucket refills its one token first, for the client's own
    // account check when it connects.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let impatient: Arc<dyn RateBudget> =
        Arc::new(PatientBudget::new(inner.clone(), Duration::from_millis(10)));
    let (sf, zd) = clients(&urls, &config, impatient).await;
    let bf = backfill(&sf, &zd, &s, &config, &policy, &progress);
    let journal = journal_path("stops");
    let err = bf
        .apply(&plan, &plan.hash, &journal)
        .await
        .expect_err("apply stops on a wait beyond its bound");
    let _ = std::fs::remove_file(&journal);
    match &err {
        BackfillError::Zendesk(ZendeskError::Budget(BudgetRefusal::Busy {
            retry_after, ..
        })) => {
            assert!(*retry_after > Duration::from_millis(10), "{retry_after:?}")
        }
        other => panic!("expected the Zendesk budget's refusal, got {other:?}"),
    }
    assert!(
        err.to_string().contains("zendesk rate budget is spent"),
        "{err}"
    );
}
