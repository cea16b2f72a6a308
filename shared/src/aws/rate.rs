//! The clients' [`RateBudget`] port over a shared [`BudgetStore`]: every worker, reconcile and
//! the CLI draw from the same buckets (DynamoDB in production), instead of each process
//! believing it owns the whole plan.
//!
//! Buckets: one per system (`zendesk`, `salesforce`: capacity = burst, refill = per-minute
//! share), and one per configured endpoint limit (`zendesk/zd.org_update/<record>` when the
//! limit counts per record). The endpoint bucket is taken first: it is the scarcer one, and a
//! token spent there while the account bucket waits only makes the budget stricter.
//!
//! Salesforce's daily allocation is tracked per process from `Sforce-Limit-Info` (every
//! response carries it, so each process sees the org-wide figure on its next call).
//! If the store itself fails, the call is refused as busy for a second rather than sent
//! unbudgeted: the caller retries, and a store outage cannot turn into an API rate storm.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::budget::{BucketConfig, BudgetStore, Take};
use crate::http::System;
use crate::http::budget::{
    BoxFuture, BudgetConfig, BudgetRefusal, CallSpec, DailyUsage, RateBudget, RateSignal,
};

/// How long a call is held off when the budget store itself is failing.
const STORE_FAILURE_BACKOFF: Duration = Duration::from_secs(1);

/// [`RateBudget`] backed by a shared [`BudgetStore`].
pub struct SharedRateBudget<S> {
    store: Arc<S>,
    configs: HashMap<System, BudgetConfig>,
    daily: Mutex<HashMap<System, DailyUsage>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn bucket_config(per_minute: u32, burst: u32) -> BucketConfig {
    BucketConfig::new(burst.max(1), f64::from(per_minute.max(1)) / 60.0)
        .expect("capacity and rate are at least 1")
}

impl<S: BudgetStore> SharedRateBudget<S> {
    pub fn new(store: Arc<S>, salesforce: BudgetConfig, zendesk: BudgetConfig) -> Self {
        SharedRateBudget {
            store,
            configs: HashMap::from([(System::Salesforce, salesforce), (System::Zendesk, zendesk)]),
            daily: Mutex::default(),
        }
    }

    /// The buckets a call draws from, scarcest first: (bucket name, its configuration).
    fn buckets(&self, call: &CallSpec<'_>) -> Vec<(String, BucketConfig)> {
        let config = &self.configs[&call.system];
        let system = call.system.as_str();
        let mut out = Vec::new();
        if let Some(limit) = config.endpoints.get(call.endpoint) {
            let name = match (limit.per_record, call.record) {
                (true, Some(r)) => format!("{system}/{}/{r}", call.endpoint),
                _ => format!("{system}/{}", call.endpoint),
            };
            out.push((
                name,
                bucket_config(limit.per_minute, limit.per_minute.min(5)),
            ));
        }
        out.push((
            system.to_string(),
            bucket_config(config.per_minute, config.burst),
        ));
        out
    }

    fn daily_reserve_refusal(&self, system: System) -> Option<BudgetRefusal> {
        let reserve = self.configs[&system].daily_reserve;
        let daily = self
            .daily
            .lock()
            .expect("daily lock")
            .get(&system)
            .copied()?;
        (reserve > 0 && daily.remaining() <= reserve).then_some(BudgetRefusal::DailyReserve {
            remaining: daily.remaining(),
            reserve,
        })
    }

    async fn take_one(&self, call: CallSpec<'_>, max_wait: Duration) -> Result<(), BudgetRefusal> {
        if let Some(refusal) = self.daily_reserve_refusal(call.system) {
            return Err(refusal);
        }
        let busy = |retry_after| BudgetRefusal::Busy {
            system: call.system,
            retry_after,
        };
        let deadline = tokio::time::Instant::now() + max_wait;
        for (bucket, config) in self.buckets(&call) {
            loop {
                match self.store.take(&bucket, 1, &config, now_ms()).await {
                    Ok(Take::Granted { .. }) => break,
                    Ok(Take::Wait { ms }) => {
                        let wait = Duration::from_millis(ms);
                        if tokio::time::Instant::now() + wait > deadline {
                            return Err(busy(wait));
                        }
                        tokio::time::sleep(wait).await;
                    }
                    Err(e) => {
                        tracing::warn!(bucket = %bucket, error = %e, "rate budget store failed; holding the call");
                        return Err(busy(STORE_FAILURE_BACKOFF));
                    }
                }
            }
        }
        Ok(())
    }

    async fn observe_one(&self, call: CallSpec<'_>, signal: &RateSignal) {
        if let Some(d) = signal.daily {
            self.daily
                .lock()
                .expect("daily lock")
                .insert(call.system, d);
        }
        let buckets = self.buckets(&call);
        let now = now_ms();
        let resume = signal
            .retry_after
            .map(|d| now.saturating_add(d.as_millis() as i64));
        let mut corrections = Vec::new();
        let (account, account_cfg) = buckets.last().cloned().expect("a system bucket");
        if signal.rate_limited {
            // An endpoint's own 429 pauses that endpoint; otherwise the whole system.
            let target = if signal.endpoint_scoped && buckets.len() > 1 {
                buckets[0].clone()
            } else {
                (account.clone(), account_cfg)
            };
            corrections.push((target.0, target.1, 0, resume));
        } else if let Some(remaining) = signal.remaining_this_minute
            // A bucket never holds more than its capacity, so a figure at or above it would
            // change nothing: most responses say so, and the write is saved.
            && remaining < u64::from(account_cfg.capacity())
        {
            corrections.push((
                account,
                account_cfg,
                remaining.min(u64::from(u32::MAX)) as u32,
                None,
            ));
        }
        for (bucket, config, at_most, resume_at) in corrections {
            if let Err(e) = self
                .store
                .restrict(&bucket, &config, at_most, resume_at, now)
                .await
            {
                tracing::warn!(bucket = %bucket, error = %e, "could not record a rate-limit signal");
            }
        }
    }
}

impl<S: BudgetStore> RateBudget for SharedRateBudget<S> {
    fn take<'a>(
        &'a self,
        call: CallSpec<'a>,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<(), BudgetRefusal>> {
        Box::pin(self.take_one(call, max_wait))
    }

    fn observe<'a>(&'a self, call: CallSpec<'a>, signal: &'a RateSignal) -> BoxFuture<'a, ()> {
        Box::pin(self.observe_one(call, signal))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::budget::{BucketConfig, MemoryBudget, Take};

    fn zd(endpoint: &'static str, record: Option<&'static str>) -> CallSpec<'static> {
        CallSpec {
            system: System::Zendesk,
            endpoint,
            record,
        }
    }

    fn budget() -> SharedRateBudget<MemoryBudget> {
        SharedRateBudget::new(
            Arc::new(MemoryBudget::default()),
            BudgetConfig::salesforce(600, 1_000),
            BudgetConfig::zendesk(60, 100),
        )
    }

    #[tokio::test]
    async fn the_burst_is_shared_then_calls_wait() {
        let b = budget();
        // zendesk(60, 100%): 60/min, burst 10.
        for _ in 0..10 {
            b.take(zd("zd.show", None), Duration::ZERO).await.unwrap();
        }
        let refused = b
            .take(zd("zd.show", None), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(
            refused,
            BudgetRefusal::Busy {
                system: System::Zendesk,
                ..
            }
        ));
        // Salesforce has its own bucket.
        let sf = CallSpec {
            system: System::Salesforce,
            endpoint: "sf.query",
            record: None,
        };
        b.take(sf, Duration::ZERO).await.unwrap();
    }

    /// Counts the corrections written to the store.
    #[derive(Default)]
    struct CountingStore {
        inner: MemoryBudget,
        restricts: std::sync::atomic::AtomicUsize,
    }

    impl BudgetStore for CountingStore {
        async fn take(
            &self,
            bucket: &str,
            n: u32,
            config: &BucketConfig,
            now_ms: i64,
        ) -> Result<Take, crate::aws::StoreError> {
            self.inner.take(bucket, n, config, now_ms).await
        }

        async fn restrict(
            &self,
            bucket: &str,
            config: &BucketConfig,
            at_most: u32,
            resume_at_ms: Option<i64>,
            now_ms: i64,
        ) -> Result<(), crate::aws::StoreError> {
            self.restricts
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            self.inner
                .restrict(bucket, config, at_most, resume_at_ms, now_ms)
                .await
        }
    }

    #[tokio::test]
    async fn a_remaining_figure_at_or_above_the_capacity_writes_nothing() {
        let store = Arc::new(CountingStore::default());
        let b = SharedRateBudget::new(
            store.clone(),
            BudgetConfig::salesforce(600, 0),
            BudgetConfig::zendesk(60, 100),
        );
        let restricts = || store.restricts.load(std::sync::atomic::Ordering::SeqCst);
        let remaining = |n| RateSignal {
            remaining_this_minute: Some(n),
            ..Default::default()
        };
        // zendesk(60, 100%): capacity (burst) 10.
        b.observe(zd("zd.show", None), &remaining(10)).await;
        b.observe(zd("zd.show", None), &remaining(500)).await;
        assert_eq!(
            restricts(),
            0,
            "a figure the bucket cannot exceed is no news"
        );
        for _ in 0..10 {
            b.take(zd("zd.show", None), Duration::ZERO).await.unwrap();
        }
        assert!(b.take(zd("zd.show", None), Duration::ZERO).await.is_err());

        // Below the capacity it is written, and caps what is granted.
        let b = SharedRateBudget::new(
            store.clone(),
            BudgetConfig::salesforce(600, 0),
            BudgetConfig::zendesk(60, 100),
        );
        b.observe(zd("zd.list", None), &remaining(9)).await;
        assert_eq!(restricts(), 1);
    }

    #[tokio::test]
    async fn per_record_endpoint_limits_and_signals() {
        let b = budget();
        // Update Organization: 5 per minute per organization.
        for _ in 0..5 {
            b.take(zd("zd.org_update", Some("1")), Duration::ZERO)
                .await
                .unwrap();
        }
        assert!(
            b.take(zd("zd.org_update", Some("1")), Duration::ZERO)
                .await
                .is_err()
        );
        b.take(zd("zd.org_update", Some("2")), Duration::ZERO)
            .await
            .unwrap();
        // A 429 on the account pauses every Zendesk call for Retry-After.
        let signal = RateSignal {
            rate_limited: true,
            retry_after: Some(Duration::from_secs(30)),
            ..Default::default()
        };
        b.observe(zd("zd.show", None), &signal).await;
        match b
            .take(zd("zd.show", None), Duration::ZERO)
            .await
            .unwrap_err()
        {
            BudgetRefusal::Busy { retry_after, .. } => {
                assert!(retry_after >= Duration::from_secs(29))
            }
            other => panic!("{other:?}"),
        }
        // Salesforce's daily reserve stops calls once a response says it is reached.
        let sf = CallSpec {
            system: System::Salesforce,
            endpoint: "sf.query",
            record: None,
        };
        let daily = RateSignal {
            daily: Some(DailyUsage {
                used: 99_500,
                limit: 100_000,
            }),
            ..Default::default()
        };
        b.observe(sf, &daily).await;
        assert!(matches!(
            b.take(sf, Duration::ZERO).await.unwrap_err(),
            BudgetRefusal::DailyReserve {
                remaining: 500,
                reserve: 1_000
            }
        ));
    }
}
