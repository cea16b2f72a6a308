//! One rate budget per system. Every call takes a token first; the budget knows this
//! deployment's share of the plan's per-minute limit, the per-endpoint limits, and Salesforce's
//! daily allocation, and is corrected by what responses say (`X-Rate-Limit-Remaining`,
//! `Retry-After`, `Sforce-Limit-Info`).
//!
//! [`RateBudget`] is the port: small, object-safe, async through boxed futures. [`LocalBudget`]
//! is the process-local implementation; the shared one (DynamoDB, one bucket per system for
//! every worker, reconcile and the CLI) implements the same trait.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::System;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The call about to be made, as the budget sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallSpec<'a> {
    pub system: System,
    /// The endpoint name (`zd.org_update`, `sf.query`).
    pub endpoint: &'a str,
    /// The record the call is about, for limits counted per record (Zendesk's 5 updates per
    /// minute per organization).
    pub record: Option<&'a str>,
}

/// What a response said about the budget.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateSignal {
    /// The API said "too many requests" (Zendesk 429, Salesforce concurrency limit).
    pub rate_limited: bool,
    /// The limit hit was the endpoint's own, not the account's (a Zendesk 429 while
    /// `X-Rate-Limit-Remaining` is still above zero).
    pub endpoint_scoped: bool,
    pub retry_after: Option<Duration>,
    /// `X-Rate-Limit` / `X-Rate-Limit-Remaining`: the account's per-minute limit and what is left.
    pub limit_per_minute: Option<u64>,
    pub remaining_this_minute: Option<u64>,
    /// `Sforce-Limit-Info: api-usage=used/limit`.
    pub daily: Option<DailyUsage>,
}

/// Salesforce's rolling 24-hour API allocation, as `Sforce-Limit-Info` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsage {
    pub used: u64,
    pub limit: u64,
}

impl DailyUsage {
    pub fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Reads `api-usage=10018/100000` out of a `Sforce-Limit-Info` value (other parts, such as
    /// `api-bursts=1/750` or `per-app-api-usage=…`, are ignored).
    pub fn parse_limit_info(header: &str) -> Option<DailyUsage> {
        header.split([';', ',']).find_map(|part| {
            let (key, value) = part.trim().split_once('=')?;
            if key.trim() != "api-usage" {
                return None;
            }
            let (used, limit) = value.trim().split_once('/')?;
            Some(DailyUsage {
                used: used.trim().parse().ok()?,
                limit: limit.trim().parse().ok()?,
            })
        })
    }
}

/// Why the budget will not give a token now.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BudgetRefusal {
    /// Salesforce: what is left of the daily allocation is the reserve kept for people and
    /// other integrations in the org. The run stops cleanly.
    #[error(
        "the Salesforce org has {remaining} API calls left today, within the {reserve} reserved for others; stopping"
    )]
    DailyReserve { remaining: u64, reserve: u64 },
    /// The next token is further away than the caller is willing to wait.
    #[error(
        "the {system} rate budget is spent for now; the next call is possible in {retry_after:?}"
    )]
    Busy {
        system: System,
        retry_after: Duration,
    },
}

/// The port every client calls through. Object-safe: held as `Arc<dyn RateBudget>`.
pub trait RateBudget: Send + Sync {
    /// Takes one token for `call`, waiting at most `max_wait` for one.
    fn take<'a>(
        &'a self,
        call: CallSpec<'a>,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<(), BudgetRefusal>>;

    /// Corrects the budget with what a response to `call` said.
    fn observe<'a>(&'a self, call: CallSpec<'a>, signal: &'a RateSignal) -> BoxFuture<'a, ()>;
}

/// One system's budget settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Calls per minute this deployment may spend: a share of the plan's limit, leaving room for
    /// other integrations.
    pub per_minute: u32,
    /// Calls that may go out at once after a quiet spell.
    pub burst: u32,
    /// Per-endpoint limits (endpoint name → limit).
    #[serde(default)]
    pub endpoints: BTreeMap<String, EndpointLimit>,
    /// Salesforce: stop when this many daily calls or fewer remain.
    #[serde(default)]
    pub daily_reserve: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointLimit {
    pub per_minute: u32,
    /// Counted per record (each organization its own budget) rather than per account.
    #[serde(default)]
    pub per_record: bool,
}

impl BudgetConfig {
    /// Zendesk: `share_percent` of the plan's per-minute limit (Suite Enterprise: 700), plus the
    /// documented endpoint limits: Update Organization 5 per minute (UNVERIFIED whether per
    /// organization or per account: counted per organization here; a 429 with account room
    /// left pauses the endpoint), incremental exports 10 per minute.
    pub fn zendesk(plan_per_minute: u32, share_percent: u32) -> Self {
        let per_minute =
            (plan_per_minute as u64 * share_percent.min(100) as u64 / 100).max(1) as u32;
        let mut endpoints = BTreeMap::new();
        endpoints.insert(
            "zd.org_update".to_string(),
            EndpointLimit {
                per_minute: 5,
                per_record: true,
            },
        );
        // Each export its own bucket (whether the 10 are per export or shared is UNVERIFIED: a
        // 429 from Zendesk then pauses the endpoint).
        for export in ["zd.incremental", "zd.ticket_export"] {
            endpoints.insert(
                export.to_string(),
                EndpointLimit {
                    per_minute: 10,
                    per_record: false,
                },
            );
        }
        BudgetConfig {
            per_minute,
            burst: (per_minute / 6).clamp(1, 100),
            endpoints,
            daily_reserve: 0,
        }
    }

    /// Salesforce: no per-minute limit exists (only concurrency on long calls), so `per_minute`
    /// just smooths bursts; the daily reserve is what protects the org.
    pub fn salesforce(per_minute: u32, daily_reserve: u64) -> Self {
        BudgetConfig {
            per_minute: per_minute.max(1),
            burst: (per_minute / 6).clamp(1, 200),
            endpoints: BTreeMap::new(),
            daily_reserve,
        }
    }
}

/// Process-local token buckets, one per system, with per-endpoint buckets beside them.
pub struct LocalBudget {
    configs: HashMap<System, BudgetConfig>,
    state: Mutex<HashMap<System, SystemState>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    capacity: f64,
    per_sec: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

impl Bucket {
    fn new(per_minute: u32, burst: u32, now: Instant) -> Self {
        Bucket {
            tokens: burst.max(1) as f64,
            capacity: burst.max(1) as f64,
            per_sec: per_minute.max(1) as f64 / 60.0,
            last: now,
            paused_until: None,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        self.last = now;
    }

    /// Time until a token is free.
    fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        let paused = self
            .paused_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let refill = if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_sec)
        };
        paused.max(refill)
    }

    fn pause(&mut self, now: Instant, for_: Duration) {
        let until = now + for_;
        self.paused_until = Some(self.paused_until.map_or(until, |t| t.max(until)));
    }

    fn is_idle(&self, now: Instant) -> bool {
        self.paused_until.is_none_or(|t| t <= now)
            && self.tokens + now.saturating_duration_since(self.last).as_secs_f64() * self.per_sec
                >= self.capacity
    }
}

#[derive(Debug)]
struct SystemState {
    account: Bucket,
    endpoints: HashMap<String, Bucket>,
    daily: Option<DailyUsage>,
}

/// Per-record buckets are dropped once idle beyond this many, so the map stays small.
const MAX_IDLE_BUCKETS: usize = 10_000;

impl LocalBudget {
    pub fn new(salesforce: BudgetConfig, zendesk: BudgetConfig) -> Self {
        let configs = HashMap::from([(System::Salesforce, salesforce), (System::Zendesk, zendesk)]);
        LocalBudget {
            configs,
            state: Mutex::new(HashMap::new()),
        }
    }

    /// The last daily usage a response reported.
    pub fn daily_usage(&self, system: System) -> Option<DailyUsage> {
        self.lock().get(&system).and_then(|s| s.daily)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<System, SystemState>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn endpoint_key(call: &CallSpec<'_>, limit: &EndpointLimit) -> String {
        match (limit.per_record, call.record) {
            (true, Some(r)) => format!("{}/{r}", call.endpoint),
            _ => call.endpoint.to_string(),
        }
    }

    /// One attempt: `Ok(Ok(()))` took a token, `Ok(Err(wait))` try again after `wait`.
    fn try_take(
        &self,
        call: &CallSpec<'_>,
        now: Instant,
    ) -> Result<Result<(), Duration>, BudgetRefusal> {
        let config = &self.configs[&call.system];
        let mut all = self.lock();
        let st = all.entry(call.system).or_insert_with(|| SystemState {
            account: Bucket::new(config.per_minute, config.burst, now),
            endpoints: HashMap::new(),
            daily: None,
        });
        if let Some(d) = st.daily
            && config.daily_reserve > 0
            && d.remaining() <= config.daily_reserve
        {
            return Err(BudgetRefusal::DailyReserve {
                remaining: d.remaining(),
                reserve: config.daily_reserve,
            });
        }
        let mut wait = st.account.wait(now);
        let endpoint = config.endpoints.get(call.endpoint).map(|limit| {
            let key = Self::endpoint_key(call, limit);
            (key, *limit)
        });
        if let Some((key, limit)) = &endpoint {
            if st.endpoints.len() > MAX_IDLE_BUCKETS {
                st.endpoints.retain(|_, b| !b.is_idle(now));
            }
            let bucket = st
                .endpoints
                .entry(key.clone())
                .or_insert_with(|| Bucket::new(limit.per_minute, limit.per_minute.min(5), now));
            wait = wait.max(bucket.wait(now));
        } else if let Some(b) = st.endpoints.get_mut(call.endpoint) {
            // An endpoint paused by a 429 without a configured limit of its own.
            wait = wait.max(b.wait(now));
        }
        if !wait.is_zero() {
            return Ok(Err(wait));
        }
        st.account.tokens -= 1.0;
        if let Some((key, _)) = endpoint
            && let Some(b) = st.endpoints.get_mut(&key)
        {
            b.tokens -= 1.0;
        }
        Ok(Ok(()))
    }

    fn apply(&self, call: &CallSpec<'_>, signal: &RateSignal, now: Instant) {
        let config = &self.configs[&call.system];
        let mut all = self.lock();
        let st = all.entry(call.system).or_insert_with(|| SystemState {
            account: Bucket::new(config.per_minute, config.burst, now),
            endpoints: HashMap::new(),
            daily: None,
        });
        if let Some(d) = signal.daily {
            st.daily = Some(d);
        }
        if let Some(remaining) = signal.remaining_this_minute {
            st.account.refill(now);
            st.account.tokens = st.account.tokens.min(remaining as f64);
        }
        if signal.rate_limited {
            if signal.endpoint_scoped {
                let key = config.endpoints.get(call.endpoint).map_or_else(
                    || call.endpoint.to_string(),
                    |l| Self::endpoint_key(call, l),
                );
                let bucket = st
                    .endpoints
                    .entry(key)
                    .or_insert_with(|| Bucket::new(config.per_minute, 1, now));
                bucket.refill(now);
                bucket.tokens = bucket.tokens.min(0.0);
                if let Some(after) = signal.retry_after {
                    bucket.pause(now, after);
                }
            } else {
                // Without Retry-After the bucket simply empties; the caller's jittered
                // backoff spaces the retries.
                st.account.refill(now);
                st.account.tokens = st.account.tokens.min(0.0);
                if let Some(after) = signal.retry_after {
                    st.account.pause(now, after);
                }
            }
        }
    }
}

impl RateBudget for LocalBudget {
    fn take<'a>(
        &'a self,
        call: CallSpec<'a>,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<(), BudgetRefusal>> {
        Box::pin(async move {
            let started = Instant::now();
            loop {
                let now = Instant::now();
                match self.try_take(&call, now)? {
                    Ok(()) => return Ok(()),
                    Err(wait) => {
                        if now.saturating_duration_since(started) + wait > max_wait {
                            return Err(BudgetRefusal::Busy {
                                system: call.system,
                                retry_after: wait,
                            });
                        }
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        })
    }

    fn observe<'a>(&'a self, call: CallSpec<'a>, signal: &'a RateSignal) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.apply(&call, signal, Instant::now()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zd(endpoint: &str) -> CallSpec<'_> {
        CallSpec {
            system: System::Zendesk,
            endpoint,
            record: None,
        }
    }

    #[test]
    fn limit_info_is_parsed() {
        assert_eq!(
            DailyUsage::parse_limit_info("api-usage=10018/100000"),
            Some(DailyUsage {
                used: 10018,
                limit: 100000
            })
        );
        assert_eq!(
            DailyUsage::parse_limit_info("api-usage=25/5000; api-bursts=1/750")
                .map(|d| d.remaining()),
            Some(4975)
        );
        assert_eq!(
            DailyUsage::parse_limit_info("per-app-api-usage=17/250(appName=sample-app)"),
            None
        );
        assert_eq!(DailyUsage::parse_limit_info("garbage"), None);
    }

    #[test]
    fn bucket_spends_burst_then_waits_for_refill() {
        let b = LocalBudget::new(
            BudgetConfig::salesforce(60, 0),
            BudgetConfig::zendesk(600, 100),
        );
        let now = Instant::now();
        // 600/min, burst 100.
        for _ in 0..100 {
            assert_eq!(b.try_take(&zd("zd.org_show"), now), Ok(Ok(())));
        }
        let wait = b.try_take(&zd("zd.org_show"), now).unwrap().unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert_eq!(
            b.try_take(&zd("zd.org_show"), now + Duration::from_millis(100)),
            Ok(Ok(()))
        );
    }

    #[test]
    fn endpoint_limits_count_per_record() {
        let b = LocalBudget::new(
            BudgetConfig::salesforce(60, 0),
            BudgetConfig::zendesk(700, 100),
        );
        let now = Instant::now();
        let update = |r| CallSpec {
            system: System::Zendesk,
            endpoint: "zd.org_update",
            record: Some(r),
        };
        for _ in 0..5 {
            assert_eq!(b.try_take(&update("1"), now), Ok(Ok(())));
        }
        assert!(b.try_take(&update("1"), now).unwrap().is_err());
        assert_eq!(b.try_take(&update("2"), now), Ok(Ok(())));
    }

    #[test]
    fn headers_correct_the_budget() {
        let b = LocalBudget::new(
            BudgetConfig::salesforce(60, 0),
            BudgetConfig::zendesk(700, 100),
        );
        let now = Instant::now();
        b.apply(
            &zd("zd.org_show"),
            &RateSignal {
                rate_limited: true,
                retry_after: Some(Duration::from_secs(30)),
                ..Default::default()
            },
            now,
        );
        let wait = b.try_take(&zd("zd.org_list"), now).unwrap().unwrap_err();
        assert!(wait > Duration::from_secs(29), "{wait:?}");
        // Another integration spent the minute: X-Rate-Limit-Remaining 0 empties our bucket.
        let b = LocalBudget::new(
            BudgetConfig::salesforce(60, 0),
            BudgetConfig::zendesk(700, 100),
        );
        b.apply(
            &zd("zd.org_show"),
            &RateSignal {
                remaining_this_minute: Some(0),
                ..Default::default()
            },
            now,
        );
        assert!(b.try_take(&zd("zd.org_show"), now).unwrap().is_err());
        // An endpoint-scoped 429 pauses that endpoint only.
        let b = LocalBudget::new(
            BudgetConfig::salesforce(60, 0),
            BudgetConfig::zendesk(700, 100),
        );
        b.apply(
            &zd("zd.incremental"),
            &RateSignal {
                rate_limited: true,
                endpoint_scoped: true,
                retry_after: Some(Duration::from_secs(20)),
                ..Default::default()
            },
            now,
        );
        assert!(b.try_take(&zd("zd.incremental"), now).unwrap().is_err());
        assert_eq!(b.try_take(&zd("zd.org_show"), now), Ok(Ok(())));
    }

    #[test]
    fn the_daily_reserve_stops_salesforce_calls() {
        let b = LocalBudget::new(
            BudgetConfig::salesforce(6000, 1000),
            BudgetConfig::zendesk(700, 100),
        );
        let now = Instant::now();
        let q = CallSpec {
            system: System::Salesforce,
            endpoint: "sf.query",
            record: None,
        };
        assert_eq!(b.try_take(&q, now), Ok(Ok(())));
        b.apply(
            &q,
            &RateSignal {
                daily: Some(DailyUsage {
                    used: 99_000,
                    limit: 100_000,
                }),
                ..Default::default()
            },
            now,
        );
        assert_eq!(
            b.try_take(&q, now),
            Err(BudgetRefusal::DailyReserve {
                remaining: 1000,
                reserve: 1000
            })
        );
        assert_eq!(
            b.daily_usage(System::Salesforce).map(|d| d.remaining()),
            Some(1000)
        );
    }

    #[tokio::test]
    async fn take_waits_within_max_wait_and_refuses_beyond() {
        let b = LocalBudget::new(
            BudgetConfig::salesforce(60, 0),
            BudgetConfig::zendesk(6000, 100),
        );
        // 100/s, burst 100: spend the burst, then one more must wait ~10ms.
        for _ in 0..100 {
            b.take(zd("zd.org_show"), Duration::ZERO).await.unwrap();
        }
        assert!(matches!(
            b.take(zd("zd.org_show"), Duration::ZERO).await,
            Err(BudgetRefusal::Busy {
                system: System::Zendesk,
                ..
            })
        ));
        b.take(zd("zd.org_show"), Duration::from_secs(1))
            .await
            .unwrap();
    }
}
