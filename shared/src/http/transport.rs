//! The one executor every Salesforce and Zendesk request goes through: budget token, send,
//! count, correct the budget from the headers, classify, retry per the policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;

use super::System;
use super::budget::{BudgetRefusal, CallSpec, DailyUsage, RateBudget, RateSignal};
use super::calls::CallLog;
use super::failure::{ApiProblem, Verdict, classify, classify_transport};
use super::retry::RetryPolicy;

/// Whether a request may be sent again after an answer that might mean it was processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Reads, and writes of absolute values (Salesforce PATCH, Zendesk PUT and
    /// create_or_update keyed on external_id): sending twice has the effect of sending once.
    Safe,
    /// Creates: retried only when the API surely did not act (429, 503, connection refused).
    UnlessProcessed,
}

/// A successful answer (status below 400).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Sforce-Limit-Info`, when sent.
    pub daily: Option<DailyUsage>,
}

/// Why a request ended without a successful answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The rate budget stopped it before it was sent.
    Refused(BudgetRefusal),
    /// The last attempt's verdict; `problem` is the API's error body when there was one.
    Failed {
        verdict: Verdict,
        problem: Option<Box<ApiProblem>>,
        attempts: u32,
    },
}

pub(crate) struct Transport {
    pub system: System,
    pub http: reqwest::Client,
    pub budget: Arc<dyn RateBudget>,
    pub retry: RetryPolicy,
    pub calls: CallLog,
}

pub(crate) fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("orglink/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with static settings")
}

impl Transport {
    /// Sends the request `build` makes (called again for each attempt, so it can carry a fresh
    /// token), retrying per the policy. A `Reauthenticate` verdict is returned at once: the
    /// client signs in again and calls `send` once more.
    pub async fn send(
        &self,
        call: CallSpec<'_>,
        replay: Replay,
        build: &(dyn Fn() -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Reply, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            if let Err(refusal) = self.budget.take(call, self.retry.max_wait).await {
                self.calls.record(self.system, call.endpoint, "refused");
                tracing::warn!(system = %self.system, endpoint = call.endpoint, reason = %refusal, "call refused by the rate budget");
                return Err(Failure::Refused(refusal));
            }
            let started = Instant::now();
            let (verdict, problem, maybe_processed) = match self.attempt(call, build).await {
                Ok(Ok(reply)) => {
                    tracing::debug!(system = %self.system, endpoint = call.endpoint, attempt, status = reply.status,
                        elapsed_ms = started.elapsed().as_millis() as u64, "call");
                    return Ok(reply);
                }
                Ok(Err((status, problem, retry_after))) => {
                    let verdict = classify(self.system, &problem, retry_after);
                    // A 429, a 503 or a throttled Salesforce call was turned away unprocessed.
                    let turned_away = status == 429
                        || status == 503
                        || problem.code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED");
                    (verdict, Some(Box::new(problem)), !turned_away)
                }
                Err((verdict, connected)) => (verdict, None, connected),
            };
            let outcome_status = problem.as_ref().map(|p| p.status);
            let give_up = |verdict: Verdict, problem: Option<Box<ApiProblem>>| {
                Err(Failure::Failed {
                    verdict,
                    problem,
                    attempts: attempt,
                })
            };
            let after = match &verdict {
                Verdict::RetryLater { after, .. } => *after,
                _ => return give_up(verdict, problem),
            };
            if replay == Replay::UnlessProcessed && maybe_processed {
                return give_up(verdict, problem);
            }
            let Some(delay) = self.retry.next_delay(attempt, after) else {
                return give_up(verdict, problem);
            };
            if let Verdict::RetryLater { reason, .. } = &verdict {
                tracing::info!(system = %self.system, endpoint = call.endpoint, attempt, status = outcome_status,
                    delay_ms = delay.as_millis() as u64, reason = %reason, "retrying");
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt. `Ok(Ok)` success; `Ok(Err)` an error answer (status, body, Retry-After);
    /// `Err` no complete answer (verdict, whether the request may have reached the API).
    async fn attempt(
        &self,
        call: CallSpec<'_>,
        build: &(dyn Fn() -> reqwest::RequestBuilder + Send + Sync),
    ) -> Result<Result<Reply, (u16, ApiProblem, Option<Duration>)>, (Verdict, bool)> {
        let response = match build().send().await {
            Ok(r) => r,
            Err(e) => {
                let outcome = if e.is_timeout() { "timeout" } else { "network" };
                self.calls.record(self.system, call.endpoint, outcome);
                tracing::debug!(system = %self.system, endpoint = call.endpoint, outcome, "call failed");
                return Err((classify_transport(e.is_timeout()), !e.is_connect()));
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                // Headers arrived, the body did not: the connection dropped mid-answer.
                let outcome = if e.is_timeout() { "timeout" } else { "network" };
                self.calls.record(self.system, call.endpoint, outcome);
                return Err((classify_transport(e.is_timeout()), true));
            }
        };
        self.calls
            .record(self.system, call.endpoint, &status.to_string());
        let problem = (status >= 400).then(|| ApiProblem::parse(self.system, status, &body));
        let signal = rate_signal(self.system, status, &headers, problem.as_ref());
        self.budget.observe(call, &signal).await;
        match problem {
            None => Ok(Ok(Reply {
                status,
                body,
                daily: signal.daily,
            })),
            Some(p) => Ok(Err((status, p, signal.retry_after))),
        }
    }
}

/// What the response headers say about the rate budget.
fn rate_signal(
    system: System,
    status: u16,
    headers: &HeaderMap,
    problem: Option<&ApiProblem>,
) -> RateSignal {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let number = |name: &str| header(name).and_then(|v| v.trim().parse::<u64>().ok());
    // Retry-After in seconds (the form both APIs use); an HTTP date is ignored and the
    // jittered backoff applies instead.
    let retry_after = number("retry-after").map(Duration::from_secs);
    let remaining = number("x-rate-limit-remaining");
    let concurrency_limited = system == System::Salesforce
        && problem.is_some_and(|p| {
            p.code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED") && p.message.contains("Concurrent")
        });
    let rate_limited = status == 429 || concurrency_limited;
    RateSignal {
        rate_limited,
        endpoint_scoped: status == 429 && remaining.is_some_and(|r| r > 0),
        retry_after,
        limit_per_minute: number("x-rate-limit"),
        remaining_this_minute: remaining,
        daily: header("sforce-limit-info").and_then(DailyUsage::parse_limit_info),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn signals_are_read_from_headers() {
        let mut h = HeaderMap::new();
        h.insert("X-Rate-Limit", HeaderValue::from_static("700"));
        h.insert("X-Rate-Limit-Remaining", HeaderValue::from_static("12"));
        h.insert("Retry-After", HeaderValue::from_static("7"));
        let s = rate_signal(System::Zendesk, 429, &h, None);
        assert!(s.rate_limited && s.endpoint_scoped);
        assert_eq!(s.retry_after, Some(Duration::from_secs(7)));
        assert_eq!(
            (s.limit_per_minute, s.remaining_this_minute),
            (Some(700), Some(12))
        );
        let mut h = HeaderMap::new();
        h.insert(
            "Sforce-Limit-Info",
            HeaderValue::from_static("api-usage=5/15000"),
        );
        let s = rate_signal(System::Salesforce, 200, &h, None);
        assert_eq!(
            s.daily,
            Some(DailyUsage {
                used: 5,
                limit: 15000
            })
        );
        assert!(!s.rate_limited);
        let p = ApiProblem::parse(
            System::Salesforce,
            403,
            br#"[{"message":"ConcurrentRequests (Concurrent API Requests) Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert!(rate_signal(System::Salesforce, 403, &h, Some(&p)).rate_limited);
    }
}
