//! Reconcile's tunables, read once per cold start from `ORGLINK_RECONCILE_SETTINGS` (JSON; every
//! key optional, unknown keys refused).

use serde::{Deserialize, Serialize};

use orglink_shared::http::BudgetConfig;
use orglink_shared::reconcile::DEFAULT_TICKET_HORIZON_DAYS;
use orglink_shared::salesforce::SalesforceConfig;
use orglink_shared::zendesk::ZendeskConfig;

pub const SETTINGS_ENV: &str = "ORGLINK_RECONCILE_SETTINGS";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileSettings {
    /// Checkpoint and continue in a new invocation when less than this is left before the
    /// Lambda deadline (the last step, upserting rows and enqueueing repairs, must fit in it).
    pub reserve_secs: u64,
    /// Save progress at least every this many pages, so a crash repeats little.
    pub commit_every_pages: u32,
    /// Mirror-only repairs (rename an org, add its reviewed domain) enqueued per run at most;
    /// the rest wait for the next run. Link repairs are never held back.
    pub mirror_repairs_per_run: usize,
    /// Tickets updated within this many days before a full run are checked for attribution
    /// (a delta reads those changed since the last run); 0: tickets are not read.
    pub ticket_horizon_days: u32,
    /// Times the account stream may be started (it starts over when an invocation hands over
    /// before its end); past it the run stops, saying so. At least 1.
    pub account_attempts: u32,
    /// Report lines kept in the run summary (all of them are logged).
    pub report_sample: usize,
    /// Organization mirror writes and exception upserts in flight at once.
    pub store_concurrency: usize,
    /// A run's lease (one run at a time) not renewed for this long may be taken over by a new
    /// run: its holder is taken for dead. At least twice the function's timeout, since a run
    /// renews it once per invocation at least.
    pub lease_stale_secs: u64,
    /// Zendesk plan limit per minute and this deployment's share of it (as the worker's).
    pub zendesk_plan_per_minute: u32,
    pub zendesk_share_percent: u32,
    /// Salesforce calls per minute (smoothing) and the daily reserve left for others.
    pub salesforce_per_minute: u32,
    pub salesforce_daily_reserve: u64,
    pub zendesk: ZendeskConfig,
    pub salesforce: SalesforceConfig,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            reserve_secs: 120,
            commit_every_pages: 50,
            mirror_repairs_per_run: 2000,
            ticket_horizon_days: DEFAULT_TICKET_HORIZON_DAYS,
            account_attempts: 3,
            report_sample: 200,
            store_concurrency: 16,
            // Twice the largest Lambda timeout (900 s).
            lease_stale_secs: 1800,
            zendesk_plan_per_minute: 700,
            zendesk_share_percent: 50,
            salesforce_per_minute: 600,
            salesforce_daily_reserve: 5000,
            zendesk: ZendeskConfig::default(),
            salesforce: SalesforceConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{SETTINGS_ENV} is invalid: {0}")]
pub struct SettingsError(pub String);

impl ReconcileSettings {
    /// Reads the JSON text (empty = defaults).
    pub fn from_json(text: &str) -> Result<Self, SettingsError> {
        let s: Self = orglink_shared::aws::deployment::settings_from_json(text)
            .map_err(|e| SettingsError(e.to_string()))?;
        if s.commit_every_pages == 0
            || s.store_concurrency == 0
            || s.account_attempts == 0
            || s.lease_stale_secs == 0
        {
            return Err(SettingsError(
                "commit_every_pages, store_concurrency, account_attempts and lease_stale_secs must be at least 1"
                    .into(),
            ));
        }
        Ok(s)
    }

    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_json(&std::env::var(SETTINGS_ENV).unwrap_or_default())
    }

    pub fn zendesk_budget(&self) -> BudgetConfig {
        BudgetConfig::zendesk(self.zendesk_plan_per_minute, self.zendesk_share_percent)
    }

    pub fn salesforce_budget(&self) -> BudgetConfig {
        BudgetConfig::salesforce(self.salesforce_per_minute, self.salesforce_daily_reserve)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_partial_json_and_refusals() {
        assert_eq!(
            ReconcileSettings::from_json("").unwrap(),
            ReconcileSettings::default()
        );
        let s = ReconcileSettings::from_json(r#"{"reserve_secs": 30}"#).unwrap();
        assert_eq!(s.reserve_secs, 30);
        assert_eq!(s.commit_every_pages, 50);
        assert!(ReconcileSettings::from_json(r#"{"reserve": 30}"#).is_err());
        assert!(ReconcileSettings::from_json(r#"{"commit_every_pages": 0}"#).is_err());
    }
}
