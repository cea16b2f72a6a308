//! The worker over the in-memory twins, with the Salesforce and Zendesk simulators served
//! in-process on loopback (real HTTP), and their admin APIs.
#![allow(dead_code)]

use orglink_sandbox::admin::Admin;
use std::sync::{Arc, Mutex};

use orglink_sandbox::salesforce::SalesforceOptions;
use orglink_sandbox::scenario::{SalesforceSeed, ZendeskSeed};
use orglink_sandbox::zendesk::ZendeskOptions;
use orglink_shared::aws::OrgMirror;
use orglink_shared::aws::idempotency::{IdempotencyConfig, MemoryIdempotency};
use orglink_shared::aws::queue::MemoryQueue;
use orglink_shared::contract::{Config, EventKind};
use orglink_shared::credentials::{
    SalesforceCredentials, SalesforceFlow, Secret, ZendeskCredentials,
};
use orglink_shared::http::RateBudget;
use orglink_shared::http::{BudgetConfig, CallLog, LocalBudget, RetryPolicy, System};
use orglink_shared::ids::AccountId;
use orglink_shared::metrics::MetricsConfig;
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig};
use orglink_shared::sync_request::{RequestSource, SyncRequest};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig};
use orglink_sync_worker::metrics::Metrics;
use orglink_sync_worker::{MemoryPorts, Stores, Worker, WorkerSettings};
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The embedded default configuration's binding.
pub const BOUND_ORG: &str = "00D000000000001EAA";

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

pub struct Env {
    pub sf_url: String,
    pub zd_url: String,
    pub calls: CallLog,
    pub worker: Worker<MemoryPorts>,
    /// The EMF lines the worker emitted.
    pub metric_lines: Arc<Mutex<Vec<String>>>,
    /// The simulators' admin API.
    pub admin: Admin,
}

/// The sync queue's redrive count as the template deploys it, so the in-memory queue
/// dead-letters where SQS would.
pub fn template_max_receive_count() -> u32 {
    orglink_harness::Template::max_receive_count()
}

pub fn settings() -> WorkerSettings {
    WorkerSettings {
        backoff_base_secs: 1,
        backoff_max_secs: 2,
        max_attempts: 3,
        failing_after_secs: 0,
        ..WorkerSettings::default()
    }
}

impl Env {
    /// The org mirror carries its completeness marker (a full listing ran); each test puts
    /// the mirror rows it needs in itself.
    pub async fn start(scenario: Value) -> Env {
        Self::start_with(scenario, settings()).await
    }

    /// A fresh deployment: no full listing has ever been read into the org mirror.
    pub async fn start_unfilled(scenario: Value) -> Env {
        Self::start_unfilled_with(scenario, settings()).await
    }

    pub async fn start_unfilled_with(scenario: Value, settings: WorkerSettings) -> Env {
        Self::build(scenario, settings, 1_000_000, 1_000_000, false).await
    }

    pub async fn start_with(scenario: Value, settings: WorkerSettings) -> Env {
        Self::start_with_budget(scenario, settings, 1_000_000, 1_000_000).await
    }

    /// With each system's budget at so many calls a minute (a small one refuses calls).
    pub async fn start_with_budget(
        scenario: Value,
        settings: WorkerSettings,
        salesforce_per_minute: u32,
        zendesk_per_minute: u32,
    ) -> Env {
        Self::build(
            scenario,
            settings,
            salesforce_per_minute,
            zendesk_per_minute,
            true,
        )
        .await
    }

    async fn build(
        scenario: Value,
        settings: WorkerSettings,
        salesforce_per_minute: u32,
        zendesk_per_minute: u32,
        mirror_filled: bool,
    ) -> Env {
        let sf_opts = SalesforceOptions {
            org_id: BOUND_ORG.into(),
            ..SalesforceOptions::default()
        };
        let sf_seed: SalesforceSeed =
            serde_json::from_value(scenario["salesforce"].clone()).unwrap_or_default();
        let zd_seed: ZendeskSeed =
            serde_json::from_value(scenario["zendesk"].clone()).unwrap_or_default();
        let sf_url = serve(orglink_sandbox::salesforce::app(sf_opts.clone(), sf_seed)).await;
        let zd_url = serve(orglink_sandbox::zendesk::app(
            ZendeskOptions::default(),
            zd_seed,
        ))
        .await;
        let config = Config::embedded_default();
        let metric_lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = metric_lines.clone();
        let metrics = Metrics::new(
            MetricsConfig::default(),
            Arc::new(move |line| sink.lock().unwrap().push(line.to_string())),
        );
        let budget = metrics.counting(Arc::new(LocalBudget::new(
            BudgetConfig::salesforce(salesforce_per_minute, 0),
            BudgetConfig::zendesk(zendesk_per_minute, 100),
        )) as Arc<dyn RateBudget>);
        let calls = CallLog::new();
        let salesforce = SalesforceClient::connect(
            SalesforceConfig {
                retry: RetryPolicy::fast(),
                ..SalesforceConfig::default()
            },
            SalesforceCredentials {
                my_domain_url: sf_url.clone(),
                client_id: sf_opts.client_id.clone(),
                flow: SalesforceFlow::ClientCredentials {
                    client_secret: Secret::new("orglink-sandbox-consumer-secret"),
                },
            },
            config.binding(),
            budget.clone(),
            calls.clone(),
        )
        .await
        .expect("salesforce connects");
        let zendesk = ZendeskClient::connect(
            ZendeskConfig {
                base_url: Some(zd_url.clone()),
                retry: RetryPolicy::fast(),
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
        .expect("zendesk connects");
        let stores = Stores::<MemoryPorts> {
            idempotency: MemoryIdempotency::new(IdempotencyConfig::default()),
            links: Default::default(),
            claims: Default::default(),
            mirror: Default::default(),
            exceptions: Default::default(),
            queue: MemoryQueue::new(30, template_max_receive_count()),
            lists: Default::default(),
        };
        if mirror_filled {
            stores
                .mirror
                .mark_filled("test", 0)
                .await
                .expect("mark the mirror filled");
        }
        let worker =
            Worker::new(config, settings, salesforce, zendesk, stores).with_metrics(metrics);
        Env {
            admin: Admin::new(sf_url.clone(), zd_url.clone()),
            sf_url,
            zd_url,
            calls,
            worker,
            metric_lines,
        }
    }

    /// One account as the sandbox holds it.
    pub async fn account(&self, id: &str) -> Value {
        self.admin.sf_get("state").await["salesforce"]["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["Id"] == id)
            .cloned()
            .expect("account in the sandbox")
    }

    /// Calls by endpoint since the last `reset_calls`, successes and failures alike.
    pub fn count(&self, system: System, endpoint: &str) -> u64 {
        self.calls.count(system, endpoint, None)
    }

    pub async fn sync(&self, req: &SyncRequest) -> orglink_sync_worker::sync::MessageResult {
        let body = serde_json::to_string(req).unwrap();
        self.worker
            .handle_request(req, &body, orglink_sync_worker::sync::now_ms() + 30_000)
            .await
    }
}

pub fn request(account: &str, kind: EventKind, event_id: &str) -> SyncRequest {
    SyncRequest {
        account_id: AccountId::parse(account).unwrap(),
        event_id: event_id.into(),
        kind,
        source: RequestSource::SalesforceNotifier,
        occurred_at: OffsetDateTime::now_utc(),
        account_modstamp: None,
        org_id: None,
        note: None,
    }
}

pub fn customer(id: &str, name: &str, website: &str) -> Value {
    json!({"Id": id, "Name": name, "Website": website, "Type": "Customer - Direct"})
}
