//! Fault injection shared by both simulators: per-endpoint rates of 5xx, 429, slow answers
//! and dropped connections, plus an outage window. Decisions come from a seeded RNG so a run
//! with the same seed and the same request order repeats.
//!
//! Every API request passes [`Faults::decide`] first, so it also keeps what a chaos run reports
//! and checks (`GET /_sandbox/faults/report`, [`FaultReport`]): the faults injected by kind, and
//! the requests received in each second since the simulator started (a rate budget is checked
//! against these, counted where the calls arrive rather than where they were sent).

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
    /// Kept across plans and resets: a run posts a new plan to start an outage mid-way.
    tally: Mutex<Tally>,
}

struct Tally {
    started: Instant,
    started_unix_ms: i64,
    injected: BTreeMap<&'static str, u64>,
    /// Requests per whole second since `started`.
    per_second: Vec<u32>,
}

/// What `GET /_sandbox/faults/report` answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultReport {
    /// Faults injected since the simulator started, by kind: `drop`, `error_5xx`,
    /// `rate_limit_429` (with `Retry-After`), `rate_limit_429_no_retry_after`, `slow`, `outage`.
    pub injected: BTreeMap<String, u64>,
    /// When second 0 of `requests_per_second` began (Unix milliseconds).
    pub started_unix_ms: i64,
    /// API requests received in each second since the start, faulted ones included.
    pub requests_per_second: Vec<u32>,
}

impl FaultReport {
    /// The most requests received in any `window_secs` consecutive seconds.
    pub fn peak(&self, window_secs: usize) -> u64 {
        let w = window_secs.max(1);
        let mut sum: u64 = 0;
        let mut peak = 0;
        for (i, n) in self.requests_per_second.iter().enumerate() {
            sum += u64::from(*n);
            if i >= w {
                sum -= u64::from(self.requests_per_second[i - w]);
            }
            peak = peak.max(sum);
        }
        peak
    }
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
            tally: Mutex::new(Tally {
                started: Instant::now(),
                started_unix_ms: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
                injected: BTreeMap::new(),
                per_second: Vec::new(),
            }),
        }
    }

    pub fn report(&self) -> FaultReport {
        let t = self.tally.lock().expect("fault tally poisoned");
        FaultReport {
            injected: t
                .injected
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            started_unix_ms: t.started_unix_ms,
            requests_per_second: t.per_second.clone(),
        }
    }

    /// Counts one request, and the fault it got.
    fn count(&self, fault: Option<&Fault>) -> Option<Fault> {
        let mut t = self.tally.lock().expect("fault tally poisoned");
        let second = t.started.elapsed().as_secs() as usize;
        if t.per_second.len() <= second {
            t.per_second.resize(second + 1, 0);
        }
        t.per_second[second] += 1;
        let kind = match fault? {
            Fault::Drop => "drop",
            Fault::ServerError => "error_5xx",
            Fault::RateLimited {
                retry_after_secs: Some(_),
            } => "rate_limit_429",
            Fault::RateLimited {
                retry_after_secs: None,
            } => "rate_limit_429_no_retry_after",
            Fault::Slow(_) => "slow",
            Fault::Outage => "outage",
        };
        *t.injected.entry(kind).or_default() += 1;
        fault.cloned()
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

    /// Decides whether the next request to `endpoint` fails, and how (and counts it).
    pub fn decide(&self, endpoint: &str) -> Option<Fault> {
        let fault = self.roll(endpoint);
        self.count(fault.as_ref())
    }

    fn roll(&self, endpoint: &str) -> Option<Fault> {
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
    fn the_report_counts_requests_and_faults_by_kind() {
        let f = Faults::new(FaultPlan {
            seed: 3,
            default: FaultRates {
                rate_limit_429: 0.5,
                omit_retry_after: 0.5,
                drop: 0.2,
                ..Default::default()
            },
            ..Default::default()
        });
        let decided: Vec<_> = (0..400).map(|_| f.decide("x")).collect();
        // A new plan (an outage) keeps what was counted so far.
        f.set_plan(FaultPlan {
            outage_ms: 60_000,
            ..Default::default()
        });
        f.decide("x");
        let r = f.report();
        let n = |k: &str| r.injected.get(k).copied().unwrap_or(0);
        let dropped = decided.iter().filter(|d| **d == Some(Fault::Drop)).count() as u64;
        assert!(dropped > 0);
        assert_eq!(n("drop"), dropped);
        assert!(n("rate_limit_429") > 0 && n("rate_limit_429_no_retry_after") > 0);
        assert_eq!(
            n("rate_limit_429") + n("rate_limit_429_no_retry_after") + n("drop"),
            decided.iter().filter(|d| d.is_some()).count() as u64
        );
        assert_eq!(n("outage"), 1);
        assert_eq!(r.requests_per_second.iter().sum::<u32>(), 401);
        assert_eq!(r.peak(60), 401);
    }

    #[test]
    fn peak_is_the_busiest_window() {
        let r = FaultReport {
            requests_per_second: vec![5, 1, 1, 9, 2, 0, 7],
            ..Default::default()
        };
        assert_eq!(r.peak(1), 9);
        assert_eq!(r.peak(2), 11);
        assert_eq!(r.peak(3), 12);
        assert_eq!(r.peak(100), 25);
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
