//! Backfill benchmark: a generated world served by the simulators in this process (release),
//! `plan` then `apply` with in-memory state (the DynamoDB tables are not what is measured), and
//! the API calls by system against the floor:
//!
//! - Zendesk: listing pages + ceil(creates/100) + ceil(updates/100) + the jobs' status polls;
//! - Salesforce: query pages of accounts and of opportunities + ceil(write-backs/200).
//!
//! `cargo run --release -p orglink-shared --example backfill_bench -- ACCOUNTS [ZENDESK_RPM]`
//! (default 100000, no Zendesk limit). With `ZENDESK_RPM` the simulator enforces that limit and
//! the clients' budget is sized to it, so the wall time is the real one at that rate.

use std::sync::Arc;
use std::time::Instant;

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
use orglink_shared::backfill::{Backfill, Progress, Settings};
use orglink_shared::contract::Config;
use orglink_shared::credentials::{
    SalesforceCredentials, SalesforceFlow, Secret, ZendeskCredentials,
};
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::{BudgetConfig, CallLog, System};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig};
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

fn count(calls: &CallLog, system: System, endpoint: &str) -> u64 {
    calls.count(system, endpoint, None)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let accounts: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rpm: Option<u32> = args.get(2).and_then(|a| a.parse().ok()).filter(|r| *r > 0);

    let t = Instant::now();
    let world = generate(&Options { accounts, seed: 3 });
    let scenario: Value = serde_json::from_slice(&world.scenario_bytes()).expect("scenario");
    let opportunities = scenario["salesforce"]["opportunities"]
        .as_array()
        .map_or(0, Vec::len);
    let sf_seed: SalesforceSeed = serde_json::from_value(scenario["salesforce"].clone()).unwrap();
    let zd_seed: ZendeskSeed = serde_json::from_value(scenario["zendesk"].clone()).unwrap();
    drop(scenario);
    let sf_opts = SalesforceOptions {
        org_id: BOUND_ORG.into(),
        daily_api_limit: 10_000_000,
        ..SalesforceOptions::default()
    };
    let zd_opts = ZendeskOptions {
        rate_limit_per_minute: rpm.unwrap_or(1_000_000),
        ..ZendeskOptions::default()
    };
    let sf_url = serve(orglink_sandbox::salesforce::app(sf_opts, sf_seed)).await;
    let zd_url = serve(orglink_sandbox::zendesk::app(zd_opts, zd_seed)).await;
    eprintln!(
        "world of {accounts} accounts generated and served in {:.1?}",
        t.elapsed()
    );

    let config = Config::embedded_default();
    let calls = CallLog::new();
    // At a real limit the budget takes the whole of it (this process is alone here).
    let zd_budget = match rpm {
        Some(r) => BudgetConfig::zendesk(r, 100),
        None => BudgetConfig::zendesk(1_000_000, 100),
    };
    let budget = Arc::new(SharedRateBudget::new(
        Arc::new(MemoryBudget::default()),
        BudgetConfig::salesforce(100_000, 0),
        zd_budget,
    ));
    let sf = SalesforceClient::connect(
        SalesforceConfig::default(),
        SalesforceCredentials {
            my_domain_url: sf_url,
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
            base_url: Some(zd_url),
            ..ZendeskConfig::default()
        },
        ZendeskCredentials::ApiToken {
            email: "admin@example.com".into(),
            api_token: Secret::new("sandbox-zendesk-token"),
        },
        config.binding(),
        budget,
        calls.clone(),
    )
    .await
    .expect("Zendesk");
    let (claims, links, exceptions, mirror) = (
        MemoryClaims::default(),
        MemoryLinks::default(),
        MemoryExceptions::default(),
        MemoryMirror::default(),
    );
    let policy = DomainPolicy::default();
    let progress = Progress::stderr();
    let bf = Backfill {
        salesforce: &sf,
        zendesk: &zd,
        claims: &claims,
        links: &links,
        exceptions: &exceptions,
        mirror: &mirror,
        config: &config,
        policy: &policy,
        progress: &progress,
        settings: Settings::default(),
    };

    let before = (calls.sent(System::Salesforce), calls.sent(System::Zendesk));
    let t = Instant::now();
    let plan = bf.plan().await.expect("plan").into_file();
    let plan_time = t.elapsed();
    let plan_calls = (
        calls.sent(System::Salesforce) - before.0,
        calls.sent(System::Zendesk) - before.1,
    );
    let path = std::env::temp_dir().join(format!(
        "orglink-backfill-bench-{}.json",
        std::process::id()
    ));
    let journal = orglink_shared::backfill::journal::Journal::path_for(&path);
    let _ = std::fs::remove_file(&journal);

    let snapshot_calls = calls.snapshot();
    let t = Instant::now();
    let report = bf.apply(&plan, &plan.hash, &journal).await.expect("apply");
    let apply_time = t.elapsed();
    let _ = std::fs::remove_file(&journal);
    progress.finish_line();
    let delta = |system: System, endpoint: &str| {
        let before: u64 = snapshot_calls
            .iter()
            .filter(|(k, _)| k.system == system && k.endpoint == endpoint && k.outcome != "refused")
            .map(|(_, n)| n)
            .sum();
        count(&calls, system, endpoint) - before
    };

    let orgs = plan.plan.organizations_read as u64;
    let creates = report.created as u64;
    let updates = report.updated as u64;
    let write_backs = report.write_backs as u64 + report.failed.len() as u64;
    let zd_list = delta(System::Zendesk, "zd.org_list");
    let zd_create = delta(System::Zendesk, "zd.org_create_many");
    let zd_update = delta(System::Zendesk, "zd.org_update_many");
    let zd_polls = delta(System::Zendesk, "zd.job_status");
    let zd_show_many = delta(System::Zendesk, "zd.org_show_many");
    let zd_upsert = delta(System::Zendesk, "zd.org_create_or_update");
    let zd_total = zd_list + zd_create + zd_update + zd_polls + zd_show_many + zd_upsert;
    let zd_floor = orgs.div_ceil(100) + creates.div_ceil(100) + updates.div_ceil(100) + zd_polls;
    let sf_query = delta(System::Salesforce, "sf.query_all")
        + delta(System::Salesforce, "sf.query")
        + delta(System::Salesforce, "sf.query_more");
    let sf_write = delta(System::Salesforce, "sf.composite");
    let sf_total = sf_query + sf_write;
    let sf_floor = (accounts as u64).div_ceil(2000)
        + (opportunities as u64).div_ceil(2000)
        + write_backs.div_ceil(200);

    println!(
        "## backfill of {accounts} accounts ({orgs} organizations, {opportunities} opportunities){}",
        rpm.map(|r| format!(", Zendesk limited to {r}/min"))
            .unwrap_or_default()
    );
    println!();
    println!(
        "plan: {plan_time:.1?}, {} Salesforce + {} Zendesk calls (1 sign-in, 1 account check included)",
        plan_calls.0, plan_calls.1
    );
    println!(
        "apply: {apply_time:.1?}; created {creates}, linked {}, organizations updated {updates}, exceptions {}, write-backs {} (+{} refused), skipped {}",
        report.linked,
        report.exceptions,
        report.write_backs,
        report.failed.len(),
        report.skipped.len()
    );
    println!();
    println!("| apply | calls | floor | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| Zendesk: {zd_list} listing + {zd_create} create_many + {zd_update} update_many + {zd_polls} job polls + {zd_show_many} show_many + {zd_upsert} create_or_update | {zd_total} | {zd_floor} | {:.3} |",
        zd_total as f64 / zd_floor.max(1) as f64
    );
    println!(
        "| Salesforce: {sf_query} query pages + {sf_write} collection writes | {sf_total} | {sf_floor} | {:.3} |",
        sf_total as f64 / sf_floor.max(1) as f64
    );
    let minutes_at_700 = zd_total as f64 / 700.0;
    println!();
    println!(
        "Zendesk time at 700 requests/minute, computed from the calls: {zd_total}/700 = {minutes_at_700:.1} min (apply); plan adds {:.1} min",
        plan_calls.1 as f64 / 700.0
    );
    println!(
        "{}",
        serde_json::json!({"accounts": accounts, "orgs": orgs, "opportunities": opportunities,
            "plan_secs": plan_time.as_secs_f64(), "apply_secs": apply_time.as_secs_f64(),
            "zendesk": {"calls": zd_total, "floor": zd_floor, "list": zd_list, "create_many": zd_create,
                        "update_many": zd_update, "polls": zd_polls, "show_many": zd_show_many, "create_or_update": zd_upsert},
            "salesforce": {"calls": sf_total, "floor": sf_floor, "queries": sf_query, "writes": sf_write},
            "plan_calls": {"salesforce": plan_calls.0, "zendesk": plan_calls.1}})
    );
}
