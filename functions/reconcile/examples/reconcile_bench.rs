//! `make bench-reconcile`: a full reconcile of a generated world (100,000 accounts and about as
//! many organizations by default) against the in-process simulators, once uninterrupted and
//! once forced through checkpoints (a page limit per invocation standing in for a short Lambda
//! deadline), over the in-memory stores. Prints both runs' API calls by endpoint against the
//! floor (listing pages and query pages), the invocations, the largest checkpoint handed over
//! and the run items kept, the account stream's attempts and repeated pages, and checks that
//! both runs end with the same rows, report and repairs and that every checkpoint stayed
//! under 4 KB.
//!
//! The generated world dates its tickets before mid-2025, so the ticket horizon is a century
//! (as in the tests), and the export's 10-a-minute limit is lifted in the simulator and the
//! budget: calls are counted, not paced.
//!
//! `cargo run --release -p orglink-reconcile --example reconcile_bench -- [ACCOUNTS] [PAGES]`
//! (PAGES per invocation must hold the account stream, 2,000 accounts a page, or the run
//! stops after `account_attempts`.)

use std::sync::Arc;
use std::time::Instant;

use orglink_reconcile::summary::MetricsConfig;
use orglink_reconcile::{
    Limits, MemoryPorts, Mode, ReconcileEvent, ReconcileSettings, Reconciler, RunOutcome, Step,
    Stores,
};
use orglink_sandbox::salesforce::SalesforceOptions;
use orglink_sandbox::scenario::Scenario;
use orglink_sandbox::zendesk::ZendeskOptions;
use orglink_shared::aws::{ExceptionFilter, ExceptionStatus, ExceptionStore, OrgMirror, RunStore};
use orglink_shared::contract::{Binding, Config};
use orglink_shared::credentials::{
    SalesforceCredentials, SalesforceFlow, Secret, ZendeskCredentials,
};
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::{BudgetConfig, CallLog, LocalBudget, RateBudget, RetryPolicy};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig};

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn binding() -> Binding {
    serde_json::from_value(serde_json::json!({
        "salesforce_org_id": "00DSB0000000001", "zendesk_subdomain": "orglink-sandbox"
    }))
    .unwrap()
}

async fn reconciler(sf_url: &str, zd_url: &str) -> Reconciler<MemoryPorts> {
    let mut zendesk_budget = BudgetConfig::zendesk(10_000_000, 100);
    zendesk_budget.endpoints.clear();
    let budget: Arc<dyn RateBudget> = Arc::new(LocalBudget::new(
        BudgetConfig::salesforce(10_000_000, 0),
        zendesk_budget,
    ));
    let calls = CallLog::new();
    let salesforce = SalesforceClient::connect(
        SalesforceConfig {
            retry: RetryPolicy::fast(),
            ..SalesforceConfig::default()
        },
        SalesforceCredentials {
            my_domain_url: sf_url.to_string(),
            client_id: "orglink-sandbox-consumer-key".into(),
            flow: SalesforceFlow::ClientCredentials {
                client_secret: Secret::new("orglink-sandbox-consumer-secret"),
            },
        },
        &binding(),
        budget.clone(),
        calls.clone(),
    )
    .await
    .unwrap();
    let zendesk = ZendeskClient::connect(
        ZendeskConfig {
            base_url: Some(zd_url.to_string()),
            retry: RetryPolicy::fast(),
            ..ZendeskConfig::default()
        },
        ZendeskCredentials::ApiToken {
            email: "admin@example.com".into(),
            api_token: Secret::new("sandbox-zendesk-token"),
        },
        &binding(),
        budget,
        calls.clone(),
    )
    .await
    .unwrap();
    Reconciler {
        config: Config::embedded_default(),
        policy: DomainPolicy::default(),
        settings: ReconcileSettings {
            ticket_horizon_days: 36_500,
            ..ReconcileSettings::default()
        },
        metrics: MetricsConfig::default(),
        salesforce,
        zendesk,
        calls,
        stores: Stores::memory(),
    }
}

fn print_run(label: &str, o: &RunOutcome, secs: f64) {
    let s = &o.summary;
    println!(
        "{label}: {:.1} s, {} invocation(s); orgs {} (mirror writes {}), tickets {} ({} misattributed), accounts read {} / judged {} / looked up {}, account stream attempts {} ({} query pages and {} Salesforce calls repeated); findings {}, report lines {}, repairs {}",
        secs,
        s.invocations,
        s.orgs.seen,
        s.orgs.written,
        s.tickets.read,
        s.tickets.misattributed,
        s.accounts.read,
        s.accounts.judged,
        s.accounts.looked_up,
        s.accounts.attempts,
        s.accounts.pages_repeated,
        s.accounts.calls_repeated,
        s.rows.findings,
        o.report.len(),
        s.repairs.enqueued
    );
    for (endpoint, n) in &s.api_calls_by_endpoint {
        println!("    {endpoint:<32} {n:>8}");
    }
}

async fn open_rows(r: &Reconciler<MemoryPorts>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = r
        .stores
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.fingerprint.to_string(), r.evidence_hash))
        .collect();
    v.sort();
    v
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let accounts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let pages: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(400);

    let t = Instant::now();
    let g = orglink_sandbox::generate::generate(&orglink_sandbox::generate::Options {
        accounts,
        seed: 2026,
    });
    let mut scenario =
        Scenario::from_json(std::str::from_utf8(&g.scenario_bytes()).unwrap()).unwrap();
    // The generated world has about 0.6 organizations per account: pad it with unrelated
    // keyless organizations (their own names and domains) to as many organizations as
    // accounts, so both sides are at full size.
    let have = scenario.zendesk.organizations.len();
    for i in have..accounts {
        scenario.zendesk.organizations.push(serde_json::json!({
            "id": 900_000_000 + i as u64,
            "name": format!("Unrelated Support Org {i}"),
            "domain_names": [format!("unrelated-support-{i}.net")],
            "created_at": "2023-01-01T00:00:00Z", "updated_at": "2023-01-01T00:00:00Z",
        }));
    }
    let orgs = scenario.zendesk.organizations.len();
    let sf_accounts = scenario.salesforce.accounts.len();
    let sf_url = serve(orglink_sandbox::salesforce::app(
        SalesforceOptions::default(),
        scenario.salesforce,
    ))
    .await;
    let tickets = scenario.zendesk.tickets.len();
    // The simulator's plan limit is lifted: the run's calls are counted, not paced.
    let zd_url = serve(orglink_sandbox::zendesk::app(
        ZendeskOptions {
            rate_limit_per_minute: 10_000_000,
            ..ZendeskOptions::default()
        },
        scenario.zendesk,
    ))
    .await;
    let switched = reqwest::Client::new()
        .post(format!("{zd_url}/_sandbox/switches"))
        .json(&serde_json::json!({"incremental_limit_per_minute": 10_000_000}))
        .send()
        .await
        .unwrap();
    assert!(switched.status().is_success(), "the export limit is lifted");
    println!(
        "world: {sf_accounts} accounts, {orgs} organizations (generated and served in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    println!(
        "floor: {} listing pages (100 per page), {} account query pages (2,000 per page), {} ticket export pages (1,000 per page; {tickets} tickets)",
        orgs.div_ceil(100),
        sf_accounts.div_ceil(2000),
        tickets.div_ceil(1000).max(1)
    );

    let whole = reconciler(&sf_url, &zd_url).await;
    let t = Instant::now();
    let one = whole
        .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
        .await
        .expect("the uninterrupted run");
    print_run("uninterrupted", &one, t.elapsed().as_secs_f64());

    let cut = reconciler(&sf_url, &zd_url).await;
    let t = Instant::now();
    let limits = Limits::pages(pages);
    let mut event = ReconcileEvent::new(Mode::Full);
    let mut largest = 0;
    let two = loop {
        match cut.invoke(&event, &limits).await.expect("an invocation") {
            Step::Continue(next) => {
                let run_id = next.run_id.clone().expect("a continuation names its run");
                let record = cut.stores.runs.get(&run_id, 0).await.unwrap().unwrap();
                largest = largest.max(record.cursor.map_or(0, |c| c.len()));
                event = next;
            }
            Step::Finished(outcome) => break *outcome,
        }
    };
    print_run(
        &format!("checkpointed ({pages} pages per invocation)"),
        &two,
        t.elapsed().as_secs_f64(),
    );
    println!(
        "    between invocations: largest checkpoint {largest} bytes; run items (misattributed tickets) {:.1} KB",
        cut.stores.runs.item_bytes() as f64 / 1e3
    );

    // What a continuation spends rebuilding the organization index from the mirror.
    let t = Instant::now();
    let mirrored = cut.stores.mirror.all().await.unwrap();
    let mut builder = orglink_shared::reconcile::DiffBuilder::new(Default::default());
    let organizations: Vec<_> = mirrored.iter().map(|o| o.to_organization()).collect();
    builder.add_orgs(&organizations);
    let _diff = builder.accounts();
    println!(
        "index rebuild from the mirror (in-memory scan of {} orgs + index): {:.2} s",
        mirrored.len(),
        t.elapsed().as_secs_f64()
    );

    let same = open_rows(&whole).await == open_rows(&cut).await
        && one.report == two.report
        && one.summary.repairs == two.summary.repairs;
    println!("same rows, report and repairs: {same}");
    assert!(
        same,
        "a checkpointed run must end like an uninterrupted one"
    );
    assert!(
        two.summary.invocations > 1,
        "the run went through a checkpoint"
    );
    assert!(largest < 4096, "a checkpoint of {largest} bytes");
}
