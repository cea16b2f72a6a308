//! How apply treats the shared rate budget's "wait" answer.
//!
//! The clients already wait inside one call up to their retry policy's `max_wait`, but a
//! backfill shares the budget with live workers: under contention the budget can refuse after
//! that whole wait with a next token only milliseconds away (27-42 ms in the chaos runs), and a
//! refusal stops apply. [`PatientBudget`] sits between the clients and the shared budget and
//! waits such a refusal out, taking the token from the shared budget again afterwards, so it
//! never spends more than the budget grants. It gives up — and apply stops cleanly with the
//! budget's reason — only when the wait the budget names, or the waiting so far, would exceed
//! its bound, and at once on the Salesforce daily reserve.
//!
//! The worker has no such helper to reuse: a refused worker call leaves its message on the
//! queue for later (`Disposition::Retry`), which is right for a Lambda and wrong for an
//! operator's long-running apply.

use std::sync::Arc;
use std::time::Duration;

use crate::http::{BoxFuture, BudgetRefusal, CallSpec, RateBudget, RateSignal};

/// The default bound on the extra waiting one call does for the budget.
pub const DEFAULT_MAX_BUDGET_WAIT: Duration = Duration::from_secs(60);

/// A [`RateBudget`] that waits out the inner budget's `Busy` answers up to `max_budget_wait`
/// more per call. Wrap the budget the backfill's clients draw from in it.
pub struct PatientBudget {
    inner: Arc<dyn RateBudget>,
    max_budget_wait: Duration,
}

impl PatientBudget {
    pub fn new(inner: Arc<dyn RateBudget>, max_budget_wait: Duration) -> Self {
        PatientBudget {
            inner,
            max_budget_wait,
        }
    }
}

impl RateBudget for PatientBudget {
    fn take<'a>(
        &'a self,
        call: CallSpec<'a>,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<(), BudgetRefusal>> {
        Box::pin(async move {
            let mut waited = Duration::ZERO;
            loop {
                match self.inner.take(call, max_wait).await {
                    Err(BudgetRefusal::Busy {
                        system,
                        retry_after,
                    }) if waited + retry_after <= self.max_budget_wait => {
                        tracing::debug!(%system, endpoint = call.endpoint, ?retry_after,
                            "rate budget asks to wait; waiting it out");
                        tokio::time::sleep(retry_after).await;
                        waited += retry_after;
                    }
                    // A daily reserve, or a wait beyond the bound: the caller stops with it.
                    other => return other,
                }
            }
        })
    }

    fn observe<'a>(&'a self, call: CallSpec<'a>, signal: &'a RateSignal) -> BoxFuture<'a, ()> {
        self.inner.observe(call, signal)
    }
}

#[cfg(all(test, feature = "aws"))]
mod tests {
    use super::*;
    use crate::aws::SharedRateBudget;
    use crate::aws::budget::MemoryBudget;
    use crate::http::{BudgetConfig, DailyUsage, System};

    /// Zendesk at `per_minute` with a burst of one: once a token is spent the next is
    /// 60 s / `per_minute` away.
    fn shared(per_minute: u32) -> Arc<dyn RateBudget> {
        let zendesk = BudgetConfig {
            burst: 1,
            ..BudgetConfig::zendesk(per_minute, 100)
        };
        Arc::new(SharedRateBudget::new(
            Arc::new(MemoryBudget::default()),
            BudgetConfig::salesforce(600, 0),
            zendesk,
        ))
    }

    fn call() -> CallSpec<'static> {
        CallSpec {
            system: System::Zendesk,
            endpoint: "zd.show",
            record: None,
        }
    }

    #[tokio::test]
    async fn a_short_wait_is_waited_out_and_the_call_goes_ahead() {
        // 600 a minute with a burst of 1: the next token is 100 ms away once one is spent.
        let inner = shared(600);
        inner.take(call(), Duration::ZERO).await.unwrap();
        // Without patience a caller unwilling to wait is refused, naming the wait.
        let refused = inner.take(call(), Duration::ZERO).await.unwrap_err();
        assert!(
            matches!(refused, BudgetRefusal::Busy { retry_after, .. } if retry_after > Duration::ZERO && retry_after <= Duration::from_millis(100)),
            "{refused:?}"
        );
        let patient = PatientBudget::new(inner.clone(), Duration::from_secs(1));
        patient.take(call(), Duration::ZERO).await.unwrap();
        // And the token it took was the shared budget's: the next caller must wait again.
        assert!(inner.take(call(), Duration::ZERO).await.is_err());
    }

    #[tokio::test]
    async fn a_wait_beyond_the_bound_is_refused_with_the_budget_reason() {
        // 1 a minute: the next token is a minute away, past a 1 s bound.
        let inner = shared(1);
        inner.take(call(), Duration::ZERO).await.unwrap();
        let patient = PatientBudget::new(inner, Duration::from_secs(1));
        match patient.take(call(), Duration::ZERO).await {
            Err(BudgetRefusal::Busy {
                system,
                retry_after,
            }) => {
                assert_eq!(system, System::Zendesk);
                assert!(retry_after > Duration::from_secs(1), "{retry_after:?}");
            }
            other => panic!("expected a Busy refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_daily_reserve_is_never_waited_out() {
        let inner: Arc<dyn RateBudget> = Arc::new(SharedRateBudget::new(
            Arc::new(MemoryBudget::default()),
            BudgetConfig::salesforce(600, 100),
            BudgetConfig::zendesk(600, 10),
        ));
        let sf = CallSpec {
            system: System::Salesforce,
            endpoint: "sf.query",
            record: None,
        };
        let daily = RateSignal {
            daily: Some(DailyUsage {
                used: 950,
                limit: 1_000,
            }),
            ..RateSignal::default()
        };
        let patient = PatientBudget::new(inner, Duration::from_secs(60));
        patient.observe(sf, &daily).await;
        assert!(matches!(
            patient.take(sf, Duration::ZERO).await,
            Err(BudgetRefusal::DailyReserve { .. })
        ));
    }
}
