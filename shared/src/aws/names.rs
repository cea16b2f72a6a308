//! Where the state lives: the physical names of the template's resources. Functions read them
//! from environment variables the SAM template sets; the local harness builds them from the
//! stack it created from the same template.

use std::collections::BTreeMap;

/// The physical names (tables), URLs (queues) and id (secret) of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceNames {
    pub idempotency_table: String,
    pub links_table: String,
    pub claims_table: String,
    pub org_mirror_table: String,
    pub rate_budget_table: String,
    pub exceptions_table: String,
    pub runs_table: String,
    pub sync_queue_url: String,
    pub sync_dlq_url: String,
    pub secret_id: String,
}

/// Each field's environment variable, in field order.
pub const ENV_VARS: [&str; 10] = [
    "ORGLINK_IDEMPOTENCY_TABLE",
    "ORGLINK_LINKS_TABLE",
    "ORGLINK_CLAIMS_TABLE",
    "ORGLINK_ORG_MIRROR_TABLE",
    "ORGLINK_RATE_BUDGET_TABLE",
    "ORGLINK_EXCEPTIONS_TABLE",
    "ORGLINK_RUNS_TABLE",
    "ORGLINK_SYNC_QUEUE_URL",
    "ORGLINK_SYNC_DLQ_URL",
    "ORGLINK_SECRET_ID",
];

/// Which variables were missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "missing environment variables {0:?}: set them (the SAM template does) or run through the local harness"
)]
pub struct MissingNames(pub Vec<&'static str>);

impl ResourceNames {
    /// Reads every name from the environment.
    pub fn from_env() -> Result<Self, MissingNames> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MissingNames> {
        let mut missing = Vec::new();
        let mut values: Vec<String> = ENV_VARS
            .iter()
            .map(|k| {
                lookup(k).filter(|v| !v.is_empty()).unwrap_or_else(|| {
                    missing.push(*k);
                    String::new()
                })
            })
            .collect();
        if !missing.is_empty() {
            return Err(MissingNames(missing));
        }
        let mut next = || values.remove(0);
        Ok(ResourceNames {
            idempotency_table: next(),
            links_table: next(),
            claims_table: next(),
            org_mirror_table: next(),
            rate_budget_table: next(),
            exceptions_table: next(),
            runs_table: next(),
            sync_queue_url: next(),
            sync_dlq_url: next(),
            secret_id: next(),
        })
    }

    /// The same names as environment variables (for spawning a function or the CLI locally).
    pub fn to_env(&self) -> BTreeMap<&'static str, String> {
        let values = [
            &self.idempotency_table,
            &self.links_table,
            &self.claims_table,
            &self.org_mirror_table,
            &self.rate_budget_table,
            &self.exceptions_table,
            &self.runs_table,
            &self.sync_queue_url,
            &self.sync_dlq_url,
            &self.secret_id,
        ];
        ENV_VARS
            .iter()
            .zip(values)
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_round_trip_and_missing_names() {
        let env: BTreeMap<String, String> = ENV_VARS
            .iter()
            .map(|k| (k.to_string(), format!("v-{k}")))
            .collect();
        let names = ResourceNames::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert_eq!(names.links_table, "v-ORGLINK_LINKS_TABLE");
        assert_eq!(names.secret_id, "v-ORGLINK_SECRET_ID");
        let back = names.to_env();
        assert_eq!(back.len(), ENV_VARS.len());
        for (k, v) in back {
            assert_eq!(env[k], v);
        }
        let err =
            ResourceNames::from_lookup(|k| (k != "ORGLINK_CLAIMS_TABLE").then(|| "x".to_string()))
                .unwrap_err();
        assert_eq!(err.0, vec!["ORGLINK_CLAIMS_TABLE"]);
    }
}
