//! Fault injection shared by both simulators: per-endpoint rates of 5xx, 429, slow answers
//! and dropped connections, plus an outage window. Decisions come from a seeded RNG so a run
//! with the same seed and the same request order repeats.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Rates (0.0–1.0) of each fault for one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultRates {
    pub error_5xx: f64,
    pub rate_limit_429: f64,
    /// Share of injected 429s sent without `Retry-After`.
    pub omit_retry_after: f64,
    pub slow: f64,
    pub slow_ms: u64,
    pub drop: f64,
}

/// What an admin posts to `/_sandbox/faults`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultPlan {
    pub seed: u64,
    /// Applies to every endpoint without an entry of its own.
    pub default: FaultRates,
    /// Keyed by the simulator's endpoint name (as listed in its call counts).
    pub endpoints: BTreeMap<String, FaultRates>,
    /// Every request answers 503 for this many milliseconds from when the plan is posted.
    pub outage_ms: u64,
}

/// One injected fault.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    ServerError,
    RateLimited { retry_after_secs: Option<u64> },
    Slow(Duration),
    Drop,
    Outage,
}

pub struct Faults {
    state: Mutex<State>,
}

struct State {
    plan: FaultPlan,
    rng: StdRng,
    outage_until: Option<Instant>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::new(FaultPlan::default())
    }
}

impl Faults {
    pub fn new(plan: FaultPlan) -> Self {
        Self {
            state: Mutex::new(State::from_plan(plan)),
        }
    }

    pub fn set_plan(&self, plan: FaultPlan) {
        *self.state.lock().expect("fault state poisoned") = State::from_plan(plan);
    }

    pub fn plan(&self) -> FaultPlan {
        self.state
            .lock()
            .expect("fault state poisoned")
            .plan
            .clone()
    }

    /// Decides whether the next request to `endpoint` fails, and how.
    pub fn decide(&self, endpoint: &str) -> Option<Fault> {
        let mut s = self.state.lock().expect("fault state poisoned");
        if let Some(until) = s.outage_until {
            if Instant::now() < until {
                return Some(Fault::Outage);
            }
            s.outage_until = None;
        }
        let rates = s
            .plan
            .endpoints
            .get(endpoint)
            .cloned()
            .unwrap_or_else(|| s.plan.default.clone());
        let roll: f64 = s.rng.random();
        let mut edge = rates.drop;
        if roll < edge {
            return Some(Fault::Drop);
        }
        edge += rates.error_5xx;
        if roll < edge {
            return Some(Fault::ServerError);
        }
        edge += rates.rate_limit_429;
        if roll < edge {
            let omit = s.rng.random::<f64>() < rates.omit_retry_after;
            return Some(Fault::RateLimited {
                retry_after_secs: (!omit).then_some(1),
            });
        }
        edge += rates.slow;
        if roll < edge {
            return Some(Fault::Slow(Duration::from_millis(rates.slow_ms)));
        }
        None
    }
}

impl State {
    fn from_plan(plan: FaultPlan) -> Self {
        Self {
            rng: StdRng::seed_from_u64(plan.seed),
            outage_until: (plan.outage_ms > 0)
                .then(|| Instant::now() + Duration::from_millis(plan.outage_ms)),
            plan,
        }
    }
}

/// A response whose body fails after the headers are sent: hyper then closes the connection
/// mid-message, which the client sees as a dropped connection.
pub fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sandbox dropped the connection",
        ))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from_stream(failing))
        .expect("static response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let plan = FaultPlan {
            seed: 7,
            default: FaultRates {
                error_5xx: 0.1,
                rate_limit_429: 0.1,
                omit_retry_after: 0.5,
                drop: 0.05,
                ..Default::default()
            },
            ..Default::default()
        };
        let a = Faults::new(plan.clone());
        let b = Faults::new(plan);
        let run = |f: &Faults| (0..500).map(|_| f.decide("x")).collect::<Vec<_>>();
        let (ra, rb) = (run(&a), run(&b));
        assert_eq!(ra, rb);
        let errors = ra.iter().filter(|f| f.is_some()).count();
        assert!((80..=170).contains(&errors), "{errors} faults out of 500");
        assert!(ra.contains(&Some(Fault::RateLimited {
            retry_after_secs: None
        })));
        assert!(ra.contains(&Some(Fault::RateLimited {
            retry_after_secs: Some(1)
        })));
    }

    #[test]
    fn endpoint_rates_override_the_default() {
        let mut endpoints = BTreeMap::new();
        endpoints.insert(
            "org.show".to_string(),
            FaultRates {
                error_5xx: 1.0,
                ..Default::default()
            },
        );
        let f = Faults::new(FaultPlan {
            endpoints,
            ..Default::default()
        });
        assert_eq!(f.decide("org.show"), Some(Fault::ServerError));
        assert_eq!(f.decide("org.list"), None);
    }

    #[test]
    fn outage_answers_every_request() {
        let f = Faults::new(FaultPlan {
            outage_ms: 60_000,
            ..Default::default()
        });
        assert_eq!(f.decide("anything"), Some(Fault::Outage));
    }
}
