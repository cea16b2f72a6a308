//! The shared rate budget primitive: one token bucket per system (Zendesk, Salesforce, or a
//! per-endpoint bucket), stored in DynamoDB so every worker, reconcile and the CLI draw from
//! the same budget. A take refills the bucket by the time elapsed since the last take, then
//! either takes `n` tokens or says how long to wait. The write is conditional on the version
//! read, so concurrent takers never spend the same tokens twice: over any period, the tokens
//! granted never exceed the capacity plus the refill.
//!
//! Tokens are kept in thousandths so fractional refill rates add up exactly.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use super::error::StoreError;

const MILLI: i64 = 1000;

/// Size and speed of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketConfig {
    capacity: u32,
    refill_per_sec: f64,
}

/// Why a bucket configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("rate budget: {0}")]
pub struct BucketConfigError(&'static str);

impl BucketConfig {
    /// `capacity` tokens at most, refilled at `refill_per_sec` (e.g. a 700/min plan at a 50 %
    /// share: capacity 350, refill 350/60).
    pub fn new(capacity: u32, refill_per_sec: f64) -> Result<Self, BucketConfigError> {
        if capacity == 0 {
            return Err(BucketConfigError("capacity must be at least 1"));
        }
        if !(refill_per_sec.is_finite() && refill_per_sec > 0.0) {
            return Err(BucketConfigError(
                "refill rate must be a positive number per second",
            ));
        }
        Ok(BucketConfig {
            capacity,
            refill_per_sec,
        })
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn refill_per_sec(&self) -> f64 {
        self.refill_per_sec
    }
}

/// The answer to a take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The tokens are yours; `remaining` whole tokens are left.
    Granted { remaining: u32 },
    /// Not enough tokens: try again after this many milliseconds.
    Wait { ms: u64 },
}

/// A bucket's stored state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BucketState {
    tokens_milli: i64,
    updated_ms: i64,
}

impl BucketState {
    /// The state as of `now_ms` (a bucket never written starts full), and its tokens after
    /// refilling by the elapsed time, capped at the capacity. A clock behind the last writer's
    /// refills nothing rather than going back in time.
    fn refilled(state: Option<BucketState>, config: &BucketConfig, now_ms: i64) -> (Self, i64) {
        let cap = i64::from(config.capacity) * MILLI;
        let state = state.unwrap_or(BucketState {
            tokens_milli: cap,
            updated_ms: now_ms,
        });
        let elapsed = (now_ms - state.updated_ms).max(0);
        let refill = (elapsed as f64 * config.refill_per_sec) as i64; // ms × tokens/s = milli-tokens
        (state, state.tokens_milli.saturating_add(refill).min(cap))
    }
}

/// The pure step: refill by elapsed time, then take `n` or compute the wait. Returns the new
/// state to write when granted.
fn take_from(
    state: Option<BucketState>,
    n: u32,
    config: &BucketConfig,
    now_ms: i64,
) -> (Take, Option<BucketState>) {
    let (state, tokens) = BucketState::refilled(state, config, now_ms);
    let want = i64::from(n) * MILLI;
    let refill_ms =
        || (((want - tokens).max(0) as f64 / config.refill_per_sec).ceil() as u64).max(1);
    // A bucket paused by a 429 (or written by a clock ahead of ours) carries an `updated_ms`
    // in the future: nothing before that.
    if state.updated_ms > now_ms {
        let pause = (state.updated_ms - now_ms) as u64;
        return (
            Take::Wait {
                ms: pause + refill_ms(),
            },
            None,
        );
    }
    if tokens >= want {
        let left = tokens - want;
        let next = BucketState {
            tokens_milli: left,
            updated_ms: now_ms,
        };
        let remaining = (left / MILLI) as u32;
        (Take::Granted { remaining }, Some(next))
    } else {
        (Take::Wait { ms: refill_ms() }, None)
    }
}

/// The pure step of [`BudgetStore::restrict`]: at most `at_most` tokens left, and no refill
/// before `resume_at_ms`.
fn restrict_state(
    state: Option<BucketState>,
    config: &BucketConfig,
    at_most: u32,
    resume_at_ms: Option<i64>,
    now_ms: i64,
) -> BucketState {
    let (state, tokens) = BucketState::refilled(state, config, now_ms);
    BucketState {
        tokens_milli: tokens.min(i64::from(at_most) * MILLI),
        updated_ms: state
            .updated_ms
            .max(now_ms)
            .max(resume_at_ms.unwrap_or(i64::MIN)),
    }
}

fn too_large(n: u32, config: &BucketConfig) -> Option<StoreError> {
    (n > config.capacity).then(|| StoreError::Rejected {
        service: "rate budget",
        detail: format!(
            "{n} tokens can never be granted by a bucket of capacity {}",
            config.capacity
        ),
    })
}

pub trait BudgetStore: Send + Sync {
    /// Takes `n` tokens from `bucket` at `now_ms`, or says how long to wait.
    fn take(
        &self,
        bucket: &str,
        n: u32,
        config: &BucketConfig,
        now_ms: i64,
    ) -> impl Future<Output = Result<Take, StoreError>> + Send;

    /// Corrects the bucket with what an API said: at most `at_most` tokens are left (e.g.
    /// `X-Rate-Limit-Remaining`, or 0 after a 429), and nothing refills before
    /// `resume_at_ms` (`Retry-After`).
    fn restrict(
        &self,
        bucket: &str,
        config: &BucketConfig,
        at_most: u32,
        resume_at_ms: Option<i64>,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The in-memory twin (one process's buckets).
#[derive(Debug, Default)]
pub struct MemoryBudget {
    buckets: Mutex<HashMap<String, BucketState>>,
}

impl BudgetStore for MemoryBudget {
    async fn take(
        &self,
        bucket: &str,
        n: u32,
        config: &BucketConfig,
        now_ms: i64,
    ) -> Result<Take, StoreError> {
        if let Some(e) = too_large(n, config) {
            return Err(e);
        }
        let mut buckets = self.buckets.lock().expect("budget lock");
        let (take, next) = take_from(buckets.get(bucket).copied(), n, config, now_ms);
        if let Some(next) = next {
            buckets.insert(bucket.to_string(), next);
        }
        Ok(take)
    }

    async fn restrict(
        &self,
        bucket: &str,
        config: &BucketConfig,
        at_most: u32,
        resume_at_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut buckets = self.buckets.lock().expect("budget lock");
        let next = restrict_state(
            buckets.get(bucket).copied(),
            config,
            at_most,
            resume_at_ms,
            now_ms,
        );
        buckets.insert(bucket.to_string(), next);
        Ok(())
    }
}

#[cfg(feature = "aws")]
pub use self::dynamo_impl::DynamoBudget;

#[cfg(feature = "aws")]
mod dynamo_impl {
    use std::sync::Arc;

    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

    use super::*;
    use crate::aws::dynamo::{Item, SERVICE, n as num, opt_n, req_n, s};
    use crate::aws::error::classify;

    /// Optimistic attempts per take before reporting contention (each lost attempt means
    /// another taker succeeded, so the budget as a whole made progress).
    const ATTEMPTS: usize = 64;
    /// Buckets remembered at most (see [`DynamoBudget`]).
    const MEMORY_LIMIT: usize = 4096;

    /// A bucket as last seen by this process: its state and version (`None`: never written).
    type Seen = (Option<BucketState>, Option<u64>);

    /// Buckets in the `{prefix}-rate-budget` table (PK `bucket`).
    ///
    /// Each instance remembers the last state it saw of each bucket (written, or sent back by
    /// a write that lost), and computes its next take from that instead of reading first: one
    /// conditional write per take while no other process has written the bucket meanwhile
    /// (a bucket it has not seen yet is taken as never written). The write's condition is the
    /// whole state it was computed from (version, tokens, time; or absence), so a stale memory
    /// can never grant anything: the write fails, the item as it stands comes back with the
    /// failure (`ALL_OLD`), and the take is computed again from it — exactly the fresh read
    /// it replaces. Each version is written once (the condition), so the tokens granted are
    /// those of a fresh read: never more than capacity + refill over any period. A remembered
    /// state can only hold more tokens than the stored one (others only take or restrict), so
    /// a `Wait` computed from it is never longer than the true one: the caller comes back no
    /// later than it should, and is granted nothing without a write.
    #[derive(Debug, Clone)]
    pub struct DynamoBudget {
        client: Client,
        table: String,
        seen: Arc<Mutex<HashMap<String, Seen>>>,
        /// One turn at a time per bucket within the process: tasks of one process sharing
        /// a memory would otherwise compute from the same state and all but one lose their
        /// write (an efficiency measure only; the condition is what keeps the budget).
        turns: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    }

    impl DynamoBudget {
        pub fn new(client: Client, table: impl Into<String>) -> Self {
            DynamoBudget {
                client,
                table: table.into(),
                seen: Arc::default(),
                turns: Arc::default(),
            }
        }
    }

    /// What a conditional write came to.
    enum Write {
        Done,
        /// Another writer was first; the bucket as it now stands (`None`: it is absent).
        Lost(Option<Seen>),
    }

    impl DynamoBudget {
        fn parse(&self, bucket: &str, item: &Item) -> Result<Seen, StoreError> {
            Ok((
                Some(BucketState {
                    tokens_milli: req_n(item, "tokens_milli", &self.table, bucket)?,
                    updated_ms: req_n(item, "updated_at", &self.table, bucket)?,
                }),
                Some(opt_n::<u64>(item, "version", &self.table, bucket)?.unwrap_or(0)),
            ))
        }

        fn turn(&self, bucket: &str) -> Arc<tokio::sync::Mutex<()>> {
            let mut turns = self.turns.lock().expect("budget turns");
            if turns.len() >= MEMORY_LIMIT && !turns.contains_key(bucket) {
                turns.clear();
            }
            turns.entry(bucket.to_string()).or_default().clone()
        }

        fn remembered(&self, bucket: &str) -> Option<Seen> {
            self.seen
                .lock()
                .expect("budget memory")
                .get(bucket)
                .copied()
        }

        fn remember(&self, bucket: &str, seen: Seen) {
            let mut memory = self.seen.lock().expect("budget memory");
            // Per-record buckets (one per organization updated) would grow without end in a
            // long run; forgetting only costs one failed write per bucket.
            if memory.len() >= MEMORY_LIMIT && !memory.contains_key(bucket) {
                memory.clear();
            }
            memory.insert(bucket.to_string(), seen);
        }

        /// The state to compute from: what the last lost write sent back, else what this
        /// process last saw, else a bucket never written (if it exists after all, the write's
        /// condition fails and sends it back: no read is ever needed).
        fn current(&self, bucket: &str, lost: Option<Option<Seen>>) -> Seen {
            match lost {
                Some(Some(seen)) => seen,
                Some(None) => (None, None),
                None => self.remembered(bucket).unwrap_or((None, None)),
            }
        }

        /// Writes `next` if the bucket still holds exactly `from` (same version, tokens and
        /// time; absent when `from` is `None`).
        async fn write(
            &self,
            bucket: &str,
            next: BucketState,
            from: Seen,
        ) -> Result<Write, StoreError> {
            let (state, version) = from;
            let next_version = version.map_or(1, |v| v + 1);
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("bucket", s(bucket))
                .item("tokens_milli", num(next.tokens_milli))
                .item("updated_at", num(next.updated_ms))
                .item("version", num(next_version))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            put = match (state, version) {
                // `bucket` is a DynamoDB reserved word, hence the name placeholder.
                (None, _) | (_, None) => put
                    .condition_expression("attribute_not_exists(#b)")
                    .expression_attribute_names("#b", "bucket"),
                (Some(st), Some(v)) => put
                    .condition_expression("version = :v AND tokens_milli = :t AND updated_at = :u")
                    .expression_attribute_values(":v", num(v))
                    .expression_attribute_values(":t", num(st.tokens_milli))
                    .expression_attribute_values(":u", num(st.updated_ms)),
            };
            match put.send().await {
                Ok(_) => {
                    self.remember(bucket, (Some(next), Some(next_version)));
                    Ok(Write::Done)
                }
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => {
                        let now = match e.item() {
                            Some(item) => Some(self.parse(bucket, item)?),
                            None => None,
                        };
                        if let Some(seen) = now {
                            self.remember(bucket, seen);
                        }
                        Ok(Write::Lost(now))
                    }
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        fn contended(&self, bucket: &str) -> StoreError {
            StoreError::Contended {
                store: self.table.clone(),
                key: bucket.to_string(),
            }
        }
    }

    impl BudgetStore for DynamoBudget {
        async fn take(
            &self,
            bucket: &str,
            n: u32,
            config: &BucketConfig,
            now_ms: i64,
        ) -> Result<Take, StoreError> {
            if let Some(e) = too_large(n, config) {
                return Err(e);
            }
            let turn = self.turn(bucket);
            let _turn = turn.lock().await;
            let mut lost = None;
            for _ in 0..ATTEMPTS {
                let from = self.current(bucket, lost.take());
                let (take, next) = take_from(from.0, n, config, now_ms);
                let Some(next) = next else { return Ok(take) };
                match self.write(bucket, next, from).await? {
                    Write::Done => return Ok(take),
                    Write::Lost(now) => lost = Some(now),
                }
            }
            Err(self.contended(bucket))
        }

        async fn restrict(
            &self,
            bucket: &str,
            config: &BucketConfig,
            at_most: u32,
            resume_at_ms: Option<i64>,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            let turn = self.turn(bucket);
            let _turn = turn.lock().await;
            let mut lost = None;
            for _ in 0..ATTEMPTS {
                let from = self.current(bucket, lost.take());
                let next = restrict_state(from.0, config, at_most, resume_at_ms, now_ms);
                match self.write(bucket, next, from).await? {
                    Write::Done => return Ok(()),
                    Write::Lost(now) => lost = Some(now),
                }
            }
            Err(self.contended(bucket))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refill_take_and_wait() {
        let cfg = BucketConfig::new(10, 2.0).unwrap();
        let (t, s1) = take_from(None, 4, &cfg, 1_000);
        assert_eq!(t, Take::Granted { remaining: 6 });
        let (t, s2) = take_from(s1, 6, &cfg, 1_000);
        assert_eq!(t, Take::Granted { remaining: 0 });
        // Empty: one token at 2/s takes 500 ms.
        let (t, none) = take_from(s2, 1, &cfg, 1_000);
        assert_eq!((t, none), (Take::Wait { ms: 500 }, None));
        // 750 ms later 1.5 tokens are back: one is granted, half stays.
        let (t, s3) = take_from(s2, 1, &cfg, 1_750);
        assert_eq!(t, Take::Granted { remaining: 0 });
        assert_eq!(s3.unwrap().tokens_milli, 500);
        // Refill never exceeds the capacity.
        let (t, _) = take_from(s3, 1, &cfg, 1_000_000);
        assert_eq!(t, Take::Granted { remaining: 9 });
        // A clock behind the last write (skew, or a pause after a 429) waits until then,
        // then for the refill.
        let (t, _) = take_from(s2, 1, &cfg, 0);
        assert_eq!(t, Take::Wait { ms: 1_500 });
    }

    #[test]
    fn restrict_caps_tokens_and_pauses_refill() {
        let cfg = BucketConfig::new(10, 1.0).unwrap();
        // The API says 2 left: at most 2 are taken.
        let st = restrict_state(None, &cfg, 2, None, 0);
        let (t, st) = take_from(Some(st), 2, &cfg, 0);
        assert_eq!(t, Take::Granted { remaining: 0 });
        // A 429 with Retry-After 5 s: nothing before 5 s, then refill as usual.
        let paused = restrict_state(st, &cfg, 0, Some(5_000), 0);
        assert_eq!(
            take_from(Some(paused), 1, &cfg, 1_000).0,
            Take::Wait { ms: 5_000 }
        );
        assert_eq!(
            take_from(Some(paused), 1, &cfg, 6_000).0,
            Take::Granted { remaining: 0 }
        );
    }

    #[test]
    fn configs_are_validated() {
        assert!(BucketConfig::new(0, 1.0).is_err());
        assert!(BucketConfig::new(1, 0.0).is_err());
        assert!(BucketConfig::new(1, f64::NAN).is_err());
        assert!(BucketConfig::new(1, 0.1).is_ok());
    }
}
