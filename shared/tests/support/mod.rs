//! Test support for the client tests: the Salesforce and Zendesk simulators served in-process
//! on loopback ports (real HTTP), their admin APIs, and client settings with short delays.
#![allow(dead_code)]

use orglink_sandbox::admin::Admin;
use std::path::PathBuf;
use std::sync::Arc;

use orglink_sandbox::salesforce::{SalesforceOptions, ids};
use orglink_sandbox::scenario::{SalesforceSeed, ZendeskSeed};
use orglink_sandbox::zendesk::ZendeskOptions;
use orglink_shared::contract::Binding;
use orglink_shared::credentials::{
    SalesforceCredentials, SalesforceFlow, Secret, ZendeskCredentials,
};
use orglink_shared::http::{BudgetConfig, CallLog, LocalBudget, RetryPolicy};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig, SalesforceError};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig, ZendeskError};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::routing::{get, post};
use serde_json::{Value, json};

pub const SF_CLIENT_ID: &str = "orglink-sandbox-consumer-key";
pub const SF_CLIENT_SECRET: &str = "orglink-sandbox-consumer-secret";
pub const SF_USERNAME: &str = "integration@orglink.sandbox";
pub const SF_ORG_ID: &str = "00DSB0000000001";
pub const ZD_EMAIL: &str = "admin@example.com";
pub const ZD_TOKEN: &str = "sandbox-zendesk-token";
pub const ZD_SUBDOMAIN: &str = "orglink-sandbox";

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(name)
}

/// An 18-character Account id, numbered.
pub fn account_id(n: u64) -> String {
    ids::generate("001", n)
}

/// Serves a router on 127.0.0.1:0 and returns its base URL.
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

pub struct Sandbox {
    pub sf_url: String,
    pub zd_url: String,
    /// The simulators' admin API.
    pub admin: Admin,
}

impl Sandbox {
    /// Both simulators, seeded from `scenario` (`{"salesforce": {...}, "zendesk": {...}}`).
    pub async fn start(scenario: Value) -> Sandbox {
        Self::start_with(
            scenario,
            SalesforceOptions::default(),
            ZendeskOptions::default(),
        )
        .await
    }

    pub async fn start_with(
        scenario: Value,
        mut sf: SalesforceOptions,
        zd: ZendeskOptions,
    ) -> Sandbox {
        sf.jwt_public_key = Some(fixture("jwt_test_key.pub.pem"));
        let sf_seed: SalesforceSeed =
            serde_json::from_value(scenario["salesforce"].clone()).unwrap_or_default();
        let zd_seed: ZendeskSeed =
            serde_json::from_value(scenario["zendesk"].clone()).unwrap_or_default();
        let sf_url = serve(orglink_sandbox::salesforce::app(sf, sf_seed)).await;
        let zd_url = serve(orglink_sandbox::zendesk::app(zd, zd_seed)).await;
        Sandbox {
            admin: Admin::new(sf_url.clone(), zd_url.clone()),
            sf_url,
            zd_url,
        }
    }

    /// Calls the sandbox counted for `endpoint`, by status (`{"200": n, ...}`).
    pub async fn sf_calls(&self, endpoint: &str) -> Value {
        self.admin.sf_get("calls").await[endpoint].clone()
    }

    pub fn sf_client_credentials(&self) -> SalesforceCredentials {
        SalesforceCredentials {
            my_domain_url: self.sf_url.clone(),
            client_id: SF_CLIENT_ID.into(),
            flow: SalesforceFlow::ClientCredentials {
                client_secret: Secret::new(SF_CLIENT_SECRET),
            },
        }
    }

    pub fn sf_jwt_credentials(&self) -> SalesforceCredentials {
        SalesforceCredentials {
            my_domain_url: self.sf_url.clone(),
            client_id: SF_CLIENT_ID.into(),
            flow: SalesforceFlow::JwtBearer {
                username: SF_USERNAME.into(),
                private_key_pem: Secret::new(
                    std::fs::read_to_string(fixture("jwt_test_key.pem")).expect("test key"),
                ),
                audience: Some("https://login.salesforce.com".into()),
            },
        }
    }

    pub fn zd_credentials(&self) -> ZendeskCredentials {
        ZendeskCredentials::ApiToken {
            email: ZD_EMAIL.into(),
            api_token: Secret::new(ZD_TOKEN),
        }
    }

    pub fn zd_config(&self) -> ZendeskConfig {
        ZendeskConfig {
            base_url: Some(self.zd_url.clone()),
            retry: RetryPolicy::fast(),
            job_poll_ms: 20,
            job_timeout_secs: 30,
            ..ZendeskConfig::default()
        }
    }

    pub async fn salesforce(
        &self,
        budget: Arc<LocalBudget>,
        calls: CallLog,
    ) -> Result<SalesforceClient, SalesforceError> {
        SalesforceClient::connect(
            sf_config(),
            self.sf_client_credentials(),
            &binding(),
            budget,
            calls,
        )
        .await
    }

    pub async fn zendesk(
        &self,
        budget: Arc<LocalBudget>,
        calls: CallLog,
    ) -> Result<ZendeskClient, ZendeskError> {
        ZendeskClient::connect(
            self.zd_config(),
            self.zd_credentials(),
            &binding(),
            budget,
            calls,
        )
        .await
    }
}

pub fn sf_config() -> SalesforceConfig {
    SalesforceConfig {
        retry: RetryPolicy::fast(),
        ..SalesforceConfig::default()
    }
}

pub fn binding_for(org: &str, subdomain: &str) -> Binding {
    serde_json::from_value(json!({"salesforce_org_id": org, "zendesk_subdomain": subdomain}))
        .expect("binding")
}

pub fn binding() -> Binding {
    binding_for(SF_ORG_ID, ZD_SUBDOMAIN)
}

/// A budget that never gets in the way of a test unless the test says so.
pub fn roomy_budget() -> Arc<LocalBudget> {
    Arc::new(LocalBudget::new(
        BudgetConfig::salesforce(1_000_000, 0),
        BudgetConfig::zendesk(1_000_000, 100),
    ))
}

/// Accounts `1..=n` named `Account {i}`, every tenth a customer.
pub fn accounts(n: u64) -> Vec<Value> {
    (1..=n)
        .map(|i| {
            json!({"Id": account_id(i), "Name": format!("Account {i}"), "Website": format!("https://www.account{i}.example"),
                   "Type": if i % 10 == 0 { "Customer - Direct" } else { "Prospect" }})
        })
        .collect()
}

/// Organizations `1..=n` with ids from 1000.
pub fn organizations(n: u64) -> Vec<Value> {
    (1..=n)
        .map(|i| json!({"id": 1000 + i, "name": format!("Org {i}"), "external_id": null, "domain_names": [format!("org{i}.example")]}))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A scripted Salesforce: behaviour the simulator does not produce on purpose.

/// Serves a token endpoint and a query endpoint with scripted answers.
pub async fn scripted(query_answer: fn(u64) -> (u16, Value)) -> (String, Arc<AtomicU64>) {
    let tokens = Arc::new(AtomicU64::new(0));
    let t = tokens.clone();
    let queries = Arc::new(AtomicU64::new(0));
    let router = axum::Router::new()
        .route(
            "/services/oauth2/token",
            post(move |headers: axum::http::HeaderMap| {
                let t = t.clone();
                async move {
                    let n = t.fetch_add(1, Ordering::SeqCst);
                    let host = headers["host"].to_str().unwrap().to_string();
                    axum::Json(json!({"access_token": format!("scripted-access-token-{n}"), "instance_url": format!("http://{host}"),
                        "id": format!("https://login.salesforce.com/id/{SF_ORG_ID}/005SB0000000001"), "token_type": "Bearer"}))
                }
            }),
        )
        .route(
            "/services/data/{version}/query",
            get(move || {
                let q = queries.clone();
                async move {
                    let (status, body) = query_answer(q.fetch_add(1, Ordering::SeqCst));
                    (axum::http::StatusCode::from_u16(status).unwrap(), axum::Json(body))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (url, tokens)
}

pub fn scripted_creds(url: &str) -> orglink_shared::credentials::SalesforceCredentials {
    orglink_shared::credentials::SalesforceCredentials {
        my_domain_url: url.to_string(),
        client_id: "id".into(),
        flow: orglink_shared::credentials::SalesforceFlow::ClientCredentials {
            client_secret: orglink_shared::credentials::Secret::new("secret"),
        },
    }
}
