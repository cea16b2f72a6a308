//! Test support: the Salesforce and Zendesk simulators served in-process on loopback ports,
//! clients for them, and a reconciler over the in-memory stores.
#![allow(dead_code)]

use std::sync::Arc;

use orglink_reconcile::summary::MetricsConfig;
use orglink_reconcile::{MemoryPorts, ReconcileSettings, Reconciler, Stores};
use orglink_sandbox::salesforce::SalesforceOptions;
use orglink_sandbox::scenario::Scenario;
use orglink_sandbox::zendesk::ZendeskOptions;
use orglink_shared::contract::{Binding, Config};
use orglink_shared::credentials::{
    SalesforceCredentials, SalesforceFlow, Secret, ZendeskCredentials,
};
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::{BudgetConfig, CallLog, LocalBudget, RateBudget, RetryPolicy};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig};

pub struct World {
    pub sf_url: String,
    pub zd_url: String,
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(listener, router).await.expect("sandbox serves");
    });
    format!("http://{addr}")
}

impl World {
    pub async fn serve(scenario: Scenario) -> World {
        let sf_url = serve(orglink_sandbox::salesforce::app(
            SalesforceOptions::default(),
            scenario.salesforce,
        ))
        .await;
        let zd_url = serve(orglink_sandbox::zendesk::app(
            ZendeskOptions::default(),
            scenario.zendesk,
        ))
        .await;
        World { sf_url, zd_url }
    }

    pub async fn clients(
        &self,
        budget: Arc<dyn RateBudget>,
        calls: CallLog,
    ) -> (SalesforceClient, ZendeskClient) {
        self.clients_paged(budget, calls, SalesforceConfig::default().batch_size)
            .await
    }

    /// Clients whose Salesforce queries ask for `batch_size` records a page (200-2,000).
    pub async fn clients_paged(
        &self,
        budget: Arc<dyn RateBudget>,
        calls: CallLog,
        batch_size: u32,
    ) -> (SalesforceClient, ZendeskClient) {
        let sf = SalesforceClient::connect(
            SalesforceConfig {
                retry: RetryPolicy::fast(),
                batch_size,
                ..SalesforceConfig::default()
            },
            SalesforceCredentials {
                my_domain_url: self.sf_url.clone(),
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
        .expect("Salesforce connects");
        let zd = ZendeskClient::connect(
            ZendeskConfig {
                base_url: Some(self.zd_url.clone()),
                retry: RetryPolicy::fast(),
                ..ZendeskConfig::default()
            },
            ZendeskCredentials::ApiToken {
                email: "admin@example.com".into(),
                api_token: Secret::new("sandbox-zendesk-token"),
            },
            &binding(),
            budget,
            calls,
        )
        .await
        .expect("Zendesk connects");
        (sf, zd)
    }

    /// Sets the Zendesk simulator's switches (`/_sandbox/switches`; docs/assumptions.md).
    pub async fn zendesk_switches(&self, switches: serde_json::Value) {
        let answer = reqwest::Client::new()
            .post(format!("{}/_sandbox/switches", self.zd_url))
            .json(&switches)
            .send()
            .await
            .expect("the simulator answers");
        assert!(answer.status().is_success(), "{answer:?}");
    }

    /// A reconciler over these simulators and `stores`.
    pub async fn reconciler(
        &self,
        stores: Stores<MemoryPorts>,
        budget: Arc<dyn RateBudget>,
    ) -> Reconciler<MemoryPorts> {
        self.reconciler_paged(stores, budget, SalesforceConfig::default().batch_size)
            .await
    }

    /// A reconciler whose account stream reads `batch_size` accounts a query page.
    pub async fn reconciler_paged(
        &self,
        stores: Stores<MemoryPorts>,
        budget: Arc<dyn RateBudget>,
        batch_size: u32,
    ) -> Reconciler<MemoryPorts> {
        let calls = CallLog::new();
        let (salesforce, zendesk) = self.clients_paged(budget, calls.clone(), batch_size).await;
        Reconciler {
            config: Config::embedded_default(),
            policy: DomainPolicy::default(),
            settings: ReconcileSettings {
                commit_every_pages: 3,
                // Generated worlds date their tickets before a fixed day: read them all.
                ticket_horizon_days: 36_500,
                ..ReconcileSettings::default()
            },
            metrics: MetricsConfig::default(),
            salesforce,
            zendesk,
            calls,
            stores,
        }
    }
}

pub fn binding() -> Binding {
    serde_json::from_value(serde_json::json!({
        "salesforce_org_id": "00DSB0000000001",
        "zendesk_subdomain": "orglink-sandbox",
    }))
    .expect("binding")
}

/// A budget that never gets in the way.
pub fn roomy_budget() -> Arc<dyn RateBudget> {
    Arc::new(LocalBudget::new(
        BudgetConfig::salesforce(1_000_000, 0),
        BudgetConfig::zendesk(1_000_000, 100),
    ))
}

/// A generated world as a scenario, with its truth.
pub fn generated(accounts: usize, seed: u64) -> (Scenario, orglink_sandbox::generate::Truth) {
    let g =
        orglink_sandbox::generate::generate(&orglink_sandbox::generate::Options { accounts, seed });
    let scenario = Scenario::from_json(std::str::from_utf8(&g.scenario_bytes()).unwrap())
        .expect("the generated scenario reads");
    (scenario, g.truth().clone())
}
