//! CloudWatch metrics as embedded metric format (EMF) log lines: the functions print them to
//! stdout and CloudWatch Logs turns them into metrics, so no `cloudwatch:PutMetricData`
//! permission is needed. The namespace and the `Deployment` dimension are the ones the
//! template's alarms select on (`docs/deploy.md`, "Metrics the functions emit").

use serde_json::{Value, json};

/// Where metrics go: the namespace and the `Deployment` dimension the alarms select on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub namespace: String,
    pub deployment: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            namespace: "orglink".into(),
            deployment: "orglink".into(),
        }
    }
}

impl MetricsConfig {
    /// `ORGLINK_METRICS_NAMESPACE` and `ORGLINK_DEPLOYMENT` (the template sets both).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let d = MetricsConfig::default();
        MetricsConfig {
            namespace: lookup("ORGLINK_METRICS_NAMESPACE")
                .filter(|s| !s.is_empty())
                .unwrap_or(d.namespace),
            deployment: lookup("ORGLINK_DEPLOYMENT")
                .filter(|s| !s.is_empty())
                .unwrap_or(d.deployment),
        }
    }
}

/// One EMF line: `metrics` (unit Count) under exactly the dimension set `dims` (an alarm
/// matches one exact set).
pub fn emf(
    config: &MetricsConfig,
    at_ms: i64,
    dims: &[(&str, &str)],
    metrics: &[(&str, u64)],
) -> String {
    let mut line = json!({
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": config.namespace,
                "Dimensions": [dims.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }]
        }
    });
    let obj = line.as_object_mut().expect("an object");
    for (k, v) in dims {
        obj.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    for (name, v) in metrics {
        obj.insert((*name).to_string(), json!(v));
    }
    line.to_string()
}

/// The name of the metric the rate-budget alarm watches (`infra/template.yaml`,
/// `RateBudgetExhaustedAlarm`: namespace `orglink`, dimension set `Deployment`, Sum).
pub const RATE_BUDGET_EXHAUSTED: &str = "RateBudgetExhausted";

/// The `RateBudgetExhausted` line for `refused` calls refused by the shared budget.
pub fn rate_budget_exhausted(config: &MetricsConfig, at_ms: i64, refused: u64) -> String {
    emf(
        config,
        at_ms,
        &[("Deployment", config.deployment.as_str())],
        &[(RATE_BUDGET_EXHAUSTED, refused)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_budget_line_is_what_the_alarm_selects() {
        let config = MetricsConfig::from_lookup(|k| match k {
            "ORGLINK_DEPLOYMENT" => Some("prod".into()),
            _ => None,
        });
        let line: Value =
            serde_json::from_str(&rate_budget_exhausted(&config, 1_767_225_600_000, 3)).unwrap();
        let m = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(m["Namespace"], "orglink");
        assert_eq!(m["Dimensions"], json!([["Deployment"]]));
        assert_eq!(
            m["Metrics"],
            json!([{"Name": "RateBudgetExhausted", "Unit": "Count"}])
        );
        assert_eq!(line["Deployment"], "prod");
        assert_eq!(line["RateBudgetExhausted"], 3);
        assert_eq!(line["_aws"]["Timestamp"], 1_767_225_600_000_i64);
    }
}
