//! The `RateBudgetExhausted` metric the template's alarm watches (`infra/template.yaml`,
//! `RateBudgetExhaustedAlarm`; `docs/deploy.md`, "Metrics the functions emit"): the clients'
//! budget is wrapped in [`CountingBudget`], which counts every call the shared budget refuses,
//! and each invocation ends with one EMF line carrying how many were refused (none: no line).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use orglink_shared::http::{BoxFuture, BudgetRefusal, CallSpec, RateBudget, RateSignal};
use orglink_shared::metrics::{MetricsConfig, rate_budget_exhausted};

/// Where a metric line goes (stdout in Lambda, where CloudWatch Logs reads EMF).
pub type MetricSink = Arc<dyn Fn(&str) + Send + Sync>;

/// The worker's metrics: the namespace and deployment, the refused-call count, the sink.
#[derive(Clone)]
pub struct Metrics {
    pub config: MetricsConfig,
    refused: Arc<AtomicU64>,
    sink: MetricSink,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("config", &self.config)
            .field("refused", &self.refused.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new(
            MetricsConfig::default(),
            Arc::new(|line| println!("{line}")),
        )
    }
}

impl Metrics {
    pub fn new(config: MetricsConfig, sink: MetricSink) -> Self {
        Metrics {
            config,
            refused: Arc::new(AtomicU64::new(0)),
            sink,
        }
    }

    /// `budget`, counting its refusals into these metrics. The clients are built with it.
    pub fn counting(&self, budget: Arc<dyn RateBudget>) -> Arc<dyn RateBudget> {
        Arc::new(CountingBudget {
            inner: budget,
            refused: self.refused.clone(),
        })
    }

    /// Emits the refusals counted since the last flush (one line, or none when there were
    /// none) and returns their number. Called once per invocation.
    pub fn flush(&self, at_ms: i64) -> u64 {
        let refused = self.refused.swap(0, Ordering::SeqCst);
        if refused > 0 {
            (self.sink)(&rate_budget_exhausted(&self.config, at_ms, refused));
        }
        refused
    }
}

/// A [`RateBudget`] that counts the calls its inner budget refuses.
pub struct CountingBudget {
    inner: Arc<dyn RateBudget>,
    refused: Arc<AtomicU64>,
}

impl RateBudget for CountingBudget {
    fn take<'a>(
        &'a self,
        call: CallSpec<'a>,
        max_wait: Duration,
    ) -> BoxFuture<'a, Result<(), BudgetRefusal>> {
        Box::pin(async move {
            let r = self.inner.take(call, max_wait).await;
            if r.is_err() {
                self.refused.fetch_add(1, Ordering::SeqCst);
            }
            r
        })
    }

    fn observe<'a>(&'a self, call: CallSpec<'a>, signal: &'a RateSignal) -> BoxFuture<'a, ()> {
        self.inner.observe(call, signal)
    }
}
