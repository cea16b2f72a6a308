//! A test's client for the simulators' admin API (`/_sandbox/…`: seed records, set switches and
//! faults, read state and call counts). It panics on a failed call, with the status and body:
//! it is for tests and benchmarks, where a failed admin call is a broken set-up.

use serde_json::Value;

/// The admin API of one Salesforce and one Zendesk simulator.
#[derive(Debug, Clone)]
pub struct Admin {
    pub salesforce: String,
    pub zendesk: String,
    http: reqwest::Client,
}

impl Admin {
    /// The simulators at these base URLs (`http://127.0.0.1:port`).
    pub fn new(salesforce: impl Into<String>, zendesk: impl Into<String>) -> Admin {
        Admin {
            salesforce: salesforce.into(),
            zendesk: zendesk.into(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, base: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{base}/_sandbox/{path}");
        let req = match body {
            Some(b) => self.http.post(url).json(&b),
            None => self.http.get(url),
        };
        let resp = req.send().await.expect("the sandbox's admin API answers");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "admin {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    pub async fn sf_post(&self, path: &str, body: Value) -> Value {
        self.call(&self.salesforce, path, Some(body)).await
    }

    pub async fn sf_get(&self, path: &str) -> Value {
        self.call(&self.salesforce, path, None).await
    }

    pub async fn zd_post(&self, path: &str, body: Value) -> Value {
        self.call(&self.zendesk, path, Some(body)).await
    }

    pub async fn zd_get(&self, path: &str) -> Value {
        self.call(&self.zendesk, path, None).await
    }

    /// The Zendesk organizations as the simulator holds them.
    pub async fn orgs(&self) -> Vec<Value> {
        self.zd_get("state").await["zendesk"]["organizations"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}
