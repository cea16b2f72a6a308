//! The worker's tunables: the retry schedule for transient failures, when a failing account
//! becomes a `sync_failing` exception, the queue guard against the dead-letter queue, the rate
//! budget shares, and the clients' settings. Read once per cold start from
//! `ORGLINK_WORKER_SETTINGS` (JSON; every key optional, unknown keys refused).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use orglink_shared::http::BudgetConfig;
use orglink_shared::salesforce::SalesforceConfig;
use orglink_shared::zendesk::ZendeskConfig;

/// The environment variable holding [`WorkerSettings`] as JSON.
pub const SETTINGS_ENV: &str = "ORGLINK_WORKER_SETTINGS";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// A failing account becomes a `sync_failing` exception only once it has failed at least
    /// this many times in a row…
    pub max_attempts: u32,
    /// …and its first failure of the streak is at least this old. Both must hold, so a burst
    /// of quick failures cannot give up before an outage of the expected length is over.
    pub failing_after_secs: u64,
    /// Backoff before the next attempt after the n-th failure: `base * 2^(n-1)`, capped, and
    /// never shorter than the API's own `Retry-After`.
    pub backoff_base_secs: u32,
    pub backoff_max_secs: u32,
    /// A message that must be retried and has been received this many times is sent again as
    /// a fresh message (receive count 0) and the old one deleted, so retries never count
    /// towards the queue's `maxReceiveCount`. Must be at least 5 below `maxReceiveCount`
    /// (template parameter `MaxReceiveCount`, default 10; infra/check_template.py): every
    /// receive from this one to that count must end unanswered (a crashed, timed-out or
    /// throttled invocation, a lost delete) before a retried message is dead-lettered.
    pub requeue_at_receive_count: u32,
    /// How soon a poison message (a body that is not a sync request) is offered again; it goes
    /// to the dead-letter queue after `maxReceiveCount` receives.
    pub poison_visibility_secs: u32,
    /// The part of the invocation kept back for reporting the batch (at most a quarter of
    /// it): a message is started only while more than this is left before the deadline, and
    /// one still running this close to the deadline is cut short and retried (as a crash of that message alone) — so
    /// a slow store or a long wait for the rate budget never times the whole invocation out,
    /// which would return the batch whole and walk it towards the dead-letter queue.
    pub deadline_reserve_ms: u64,
    /// How long the operator's lists (shared domains, ignored accounts; kept in the exception
    /// table by review decisions) are reused before they are read again.
    pub lists_refresh_secs: u64,
    /// A claim on an organization that is still keyless, held by an account whose link record
    /// does not point to it (the key write failed, then its decision changed), may be taken
    /// over once it is this old. Longer than any claim-then-key write (a backfill's apply),
    /// so a holder still on its way is never overtaken.
    pub stale_claim_after_secs: u64,
    /// Zendesk plan limit per minute (Suite Enterprise: 700) and this deployment's share.
    pub zendesk_plan_per_minute: u32,
    pub zendesk_share_percent: u32,
    /// Salesforce calls per minute (smoothing only) and the daily reserve left for others.
    pub salesforce_per_minute: u32,
    pub salesforce_daily_reserve: u64,
    pub zendesk: ZendeskConfig,
    pub salesforce: SalesforceConfig,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            max_attempts: 8,
            failing_after_secs: 6 * 3600,
            backoff_base_secs: 30,
            backoff_max_secs: 1800,
            requeue_at_receive_count: 4,
            poison_visibility_secs: 1,
            deadline_reserve_ms: 5_000,
            lists_refresh_secs: 60,
            stale_claim_after_secs: 24 * 3600,
            zendesk_plan_per_minute: 700,
            zendesk_share_percent: 50,
            salesforce_per_minute: 600,
            salesforce_daily_reserve: 5000,
            zendesk: ZendeskConfig::default(),
            salesforce: SalesforceConfig::default(),
        }
    }
}

/// Why the settings were refused (the message names the key; never a value of a secret —
/// these settings hold none).
#[derive(Debug, thiserror::Error)]
#[error("{SETTINGS_ENV} is invalid: {0}")]
pub struct SettingsError(pub String);

impl WorkerSettings {
    /// Reads the JSON text (empty = defaults).
    pub fn from_json(text: &str) -> Result<WorkerSettings, SettingsError> {
        let s: WorkerSettings = orglink_shared::aws::deployment::settings_from_json(text)
            .map_err(|e| SettingsError(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    pub fn from_env() -> Result<WorkerSettings, SettingsError> {
        Self::from_json(&std::env::var(SETTINGS_ENV).unwrap_or_default())
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let bad = |m: &str| Err(SettingsError(m.to_string()));
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if self.backoff_base_secs == 0 || self.backoff_max_secs < self.backoff_base_secs {
            return bad("backoff_base_secs must be at least 1 and at most backoff_max_secs");
        }
        // SQS caps a visibility timeout at 12 hours.
        if self.backoff_max_secs > 43_200 {
            return bad("backoff_max_secs must be at most 43200 (SQS's visibility limit)");
        }
        if self.requeue_at_receive_count == 0 {
            return bad("requeue_at_receive_count must be at least 1");
        }
        Ok(())
    }

    /// The wait before the next attempt after `failures` failures in a row, at least
    /// `retry_after` (what the API asked for), within SQS's visibility limit.
    pub fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> u32 {
        let exp = u64::from(self.backoff_base_secs)
            .saturating_mul(1u64 << failures.saturating_sub(1).min(20));
        let secs = exp.min(u64::from(self.backoff_max_secs));
        let asked = retry_after.map_or(0, |d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        secs.max(asked).min(43_200) as u32
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
    fn backoff_doubles_caps_and_honours_retry_after() {
        let s = WorkerSettings {
            backoff_base_secs: 2,
            backoff_max_secs: 20,
            ..WorkerSettings::default()
        };
        assert_eq!(s.backoff(1, None), 2);
        assert_eq!(s.backoff(2, None), 4);
        assert_eq!(s.backoff(4, None), 16);
        assert_eq!(s.backoff(9, None), 20);
        assert_eq!(s.backoff(1, Some(Duration::from_millis(7500))), 8);
        assert_eq!(s.backoff(200, Some(Duration::from_secs(99_999))), 43_200);
    }

    #[test]
    fn settings_parse_with_defaults_and_refuse_unknown_keys() {
        assert_eq!(
            WorkerSettings::from_json("").unwrap(),
            WorkerSettings::default()
        );
        let s =
            WorkerSettings::from_json(r#"{"max_attempts": 3, "backoff_base_secs": 1}"#).unwrap();
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.backoff_max_secs, 1800);
        let e = WorkerSettings::from_json(r#"{"max_atempts": 3}"#).unwrap_err();
        assert!(e.to_string().contains("max_atempts"), "{e}");
        assert!(WorkerSettings::from_json(r#"{"max_attempts": 0}"#).is_err());
        assert!(WorkerSettings::from_json(r#"{"backoff_max_secs": 99999}"#).is_err());
    }
}
