//! Every call counted by system, endpoint and outcome, for metrics and benchmarks. Endpoint
//! names match the sandbox's (`sf.query`, `zd.org_show_many`, ...) so counts compare directly.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::System;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CallKey {
    pub system: System,
    pub endpoint: String,
    /// The HTTP status (`"200"`, `"429"`), `"network"` or `"timeout"`, or `"refused"` when the
    /// rate budget stopped the call before it was sent.
    pub outcome: String,
}

/// A shared, cheap-to-clone call counter.
#[derive(Debug, Clone, Default)]
pub struct CallLog(Arc<Mutex<BTreeMap<CallKey, u64>>>);

impl CallLog {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn record(&self, system: System, endpoint: &str, outcome: &str) {
        let key = CallKey {
            system,
            endpoint: endpoint.to_string(),
            outcome: outcome.to_string(),
        };
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    pub fn snapshot(&self) -> BTreeMap<CallKey, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Calls to `endpoint` with `outcome` (`None`: any outcome).
    pub fn count(&self, system: System, endpoint: &str, outcome: Option<&str>) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| {
                k.system == system
                    && k.endpoint == endpoint
                    && outcome.is_none_or(|o| k.outcome == o)
            })
            .map(|(_, n)| n)
            .sum()
    }

    /// Every call to `system` that was sent (refusals by the budget excluded).
    pub fn sent(&self, system: System) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(k, _)| k.system == system && k.outcome != "refused")
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_endpoint_and_outcome() {
        let log = CallLog::new();
        log.record(System::Zendesk, "zd.org_show", "200");
        log.record(System::Zendesk, "zd.org_show", "200");
        log.record(System::Zendesk, "zd.org_show", "429");
        log.record(System::Zendesk, "zd.org_list", "refused");
        log.record(System::Salesforce, "sf.query", "200");
        assert_eq!(log.count(System::Zendesk, "zd.org_show", Some("200")), 2);
        assert_eq!(log.count(System::Zendesk, "zd.org_show", None), 3);
        assert_eq!(log.sent(System::Zendesk), 3);
        assert_eq!(log.sent(System::Salesforce), 1);
    }
}
