//! The retry discipline both clients follow: a bounded number of attempts, the server's
//! `Retry-After` when it sends one, otherwise exponential backoff with jitter so a fleet of
//! workers does not retry in lockstep.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// Backoff before the second attempt (doubled each time, jittered).
    #[serde(with = "millis")]
    pub base_delay: Duration,
    /// Cap on one backoff.
    #[serde(with = "millis")]
    pub max_delay: Duration,
    /// Longest wait orglink sits out inside one call (a `Retry-After` or an empty budget).
    /// Longer waits end the call with a retry-later error instead, so a Lambda does not
    /// sleep through its timeout.
    #[serde(with = "millis")]
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Short delays for tests and the local demo (still bounded and jittered).
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            max_wait: Duration::from_secs(5),
        }
    }

    /// The backoff before attempt `attempt + 1` (attempt counts from 1) when the server gave
    /// no `Retry-After`: "equal jitter", half fixed and half random, so it is never zero.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.base_delay.saturating_mul(
            1u32.checked_shl(attempt.saturating_sub(1))
                .unwrap_or(u32::MAX),
        );
        let ceiling = exp.min(self.max_delay);
        let half = ceiling / 2;
        let jitter = rand::rng().random_range(0..=half.as_micros().max(1) as u64);
        half + Duration::from_micros(jitter)
    }

    /// How long to wait before trying again after failed attempt `attempt`, or `None` when
    /// this call should stop (attempts spent, or the server asks for a longer wait than
    /// [`RetryPolicy::max_wait`]).
    pub fn next_delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        match retry_after {
            Some(wait) if wait > self.max_wait => None,
            Some(wait) => Some(wait),
            None => Some(self.backoff(attempt)),
        }
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_never_zero() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_wait: Duration::from_secs(60),
        };
        for attempt in 1..=20 {
            let ceiling =
                (Duration::from_millis(100) * 2u32.pow(attempt.min(12) - 1)).min(p.max_delay);
            for _ in 0..50 {
                let d = p.backoff(attempt);
                assert!(
                    d >= ceiling / 2 && d <= ceiling,
                    "attempt {attempt}: {d:?} vs {ceiling:?}"
                );
            }
        }
        // Jitter: 50 draws at the cap are not all the same.
        let draws: std::collections::HashSet<_> = (0..50).map(|_| p.backoff(8)).collect();
        assert!(draws.len() > 1);
    }

    #[test]
    fn retry_after_is_honoured_up_to_max_wait() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3))
        );
        assert_eq!(p.next_delay(1, Some(Duration::from_secs(3600))), None);
        assert_eq!(p.next_delay(p.max_attempts, None), None);
        assert!(p.next_delay(1, None).is_some());
    }
}
