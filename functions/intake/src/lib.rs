//! orglink intake: turns outside events into sync requests on the SQS FIFO queue, one message
//! per account (group = account id, deduplication id from event id and account id).
//!
//! Three inputs reach one Lambda function (docs/intake.md says why one):
//! - the function URL, `POST /`: a signed batch from the Salesforce notifier ([`salesforce`]);
//! - the function URL, `POST /zendesk`: a Zendesk organization webhook ([`zendesk`]);
//! - EventBridge: Account change events from Salesforce Event Relay ([`relay`]).
//!
//! [`Intake::handle_invocation`] dispatches on the invocation's JSON shape. The handlers are
//! plain async functions over narrow traits (queue, link records, org mirror, exceptions), so
//! unit tests run them on the in-memory twins and the end-to-end tests on moto.

pub mod aws;
pub mod http;
pub mod logging;
pub mod outcome;
pub mod relay;
pub mod salesforce;
pub mod settings;
pub mod zendesk;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use thiserror::Error;
use time::OffsetDateTime;

use orglink_shared::aws::{ExceptionStore, LinkStore, OrgMirror, StoreError, WorkQueue};
use orglink_shared::contract::Config;
use orglink_shared::signature::DEFAULT_TOLERANCE;
use orglink_shared::sync_request::SyncRequest;

pub use http::{HttpRequest, HttpResponse};
pub use outcome::{EventResult, Outcome, Summary};
pub use settings::{Environment, IntakeSecrets, StartError};

/// The clock intake reads (tests pass a fixed one).
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(OffsetDateTime::now_utc)
}

/// Intake's dependencies: built once per cold start, shared by every invocation.
pub struct Intake<Q, L, M, E> {
    pub queue: Q,
    pub links: L,
    pub mirror: M,
    pub exceptions: E,
    pub config: Config,
    pub secrets: IntakeSecrets,
    /// How far a signed timestamp may be from `clock`, either way.
    pub tolerance: Duration,
    pub clock: Clock,
}

impl<Q, L, M, E> Intake<Q, L, M, E>
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    pub fn new(
        queue: Q,
        links: L,
        mirror: M,
        exceptions: E,
        config: Config,
        secrets: IntakeSecrets,
    ) -> Self {
        Intake {
            queue,
            links,
            mirror,
            exceptions,
            config,
            secrets,
            tolerance: DEFAULT_TOLERANCE,
            clock: system_clock(),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// One Lambda invocation, whatever its source: a function URL request (it has
    /// `requestContext.http`) or an EventBridge event (it has `detail-type`).
    pub async fn handle_invocation(&self, payload: Value) -> Result<Value, InvocationError> {
        if payload.pointer("/requestContext/http").is_some() {
            let request = HttpRequest::from_function_url(payload)
                .map_err(|e| InvocationError::Unrecognized(e.to_string()))?;
            let response = http::handle_http(request, self).await;
            return Ok(response.into_function_url());
        }
        if payload.get("detail-type").is_some() {
            let summary = relay::handle_event_relay(&payload, self).await?;
            return Ok(serde_json::to_value(summary).expect("a summary serializes"));
        }
        Err(InvocationError::Unrecognized(
            "neither a function URL request (requestContext.http) nor an EventBridge event (detail-type)".into(),
        ))
    }

    /// Sends the requests (one message per account), in order; a request whose deduplication
    /// id already appeared earlier in this call is counted as deduplicated and not sent.
    /// All messages are sent or the call fails: resending the whole request is then safe,
    /// because SQS drops the ones that did go through by their deduplication ids.
    pub(crate) async fn enqueue(
        &self,
        planned: Vec<(SyncRequest, EventResult)>,
    ) -> Result<Vec<EventResult>, EnqueueError> {
        let mut seen = HashSet::new();
        let mut messages = Vec::new();
        let mut results = Vec::new();
        for (request, result) in planned {
            let message = request.to_message();
            if seen.insert(message.dedup_id()) {
                messages.push(message);
                results.push(result);
            } else {
                results.push(EventResult {
                    outcome: Outcome::Deduplicated,
                    reason: Some(
                        "the same event for the same account appeared earlier in this request"
                            .into(),
                    ),
                    ..result
                });
            }
        }
        if !messages.is_empty() {
            let failures = self.queue.send_batch(&messages).await?;
            if let Some(first) = failures.first() {
                return Err(EnqueueError::Refused {
                    failed: failures.len(),
                    of: messages.len(),
                    transient: failures.iter().all(|f| f.transient),
                    first: first.reason.clone(),
                });
            }
        }
        Ok(results)
    }
}

/// The queue did not take every message.
#[derive(Debug, Error)]
pub enum EnqueueError {
    #[error("the sync queue failed: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the sync queue refused {failed} of {of} messages (first: {first}); resending the whole request is safe"
    )]
    Refused {
        failed: usize,
        of: usize,
        transient: bool,
        first: String,
    },
}

impl EnqueueError {
    pub fn is_transient(&self) -> bool {
        match self {
            EnqueueError::Store(e) => e.is_transient(),
            EnqueueError::Refused { transient, .. } => *transient,
        }
    }
}

/// Why an invocation failed as a whole (Lambda reports it; EventBridge retries).
#[derive(Debug, Error)]
pub enum InvocationError {
    #[error("intake cannot handle this invocation: {0}")]
    Unrecognized(String),
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    #[error("a state store failed: {0}")]
    Store(#[from] StoreError),
}

/// Epoch milliseconds (the stores' time unit).
pub(crate) fn epoch_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
pub(crate) mod testing {
    //! An intake over the in-memory twins, with a fixed clock.
    use super::*;
    use orglink_shared::aws::exceptions::MemoryExceptions;
    use orglink_shared::aws::links::MemoryLinks;
    use orglink_shared::aws::mirror::MemoryMirror;
    use orglink_shared::aws::queue::MemoryQueue;
    use orglink_shared::credentials::Secret;
    use orglink_shared::signature::SigningSecrets;

    pub const NOW: i64 = 1_767_225_600;
    pub const SF_SECRET: &str = "sf-signing-secret-for-tests";
    pub const ZD_SECRET: &str = "zd-webhook-secret-for-tests";

    /// Intake over the in-memory stores and the queue `Q`.
    pub type TestIntake<Q> = Intake<Q, MemoryLinks, MemoryMirror, MemoryExceptions>;
    pub type MemIntake = TestIntake<MemoryQueue>;

    pub fn intake() -> MemIntake {
        intake_with(MemoryQueue::new(30, 5))
    }

    /// The test intake over `queue` (a queue that fails on purpose).
    pub fn intake_with<Q: WorkQueue>(queue: Q) -> TestIntake<Q> {
        let secrets = IntakeSecrets {
            salesforce: SigningSecrets::new(Secret::new(SF_SECRET), None),
            zendesk_webhook: Some(SigningSecrets::new(Secret::new(ZD_SECRET), None)),
        };
        Intake::new(
            queue,
            MemoryLinks::default(),
            MemoryMirror::default(),
            MemoryExceptions::default(),
            Config::embedded_default(),
            secrets,
        )
        .with_clock(Arc::new(|| {
            OffsetDateTime::from_unix_timestamp(NOW).unwrap()
        }))
    }

    /// Every message on the queue, as sync requests with their group and dedup ids.
    pub async fn drain(intake: &MemIntake) -> Vec<(SyncRequest, String, String)> {
        let mut out = Vec::new();
        loop {
            let got = intake.queue.receive(10, Some(600)).await.unwrap();
            if got.is_empty() {
                return out;
            }
            for m in got {
                // Deleted so the next message of the same group becomes receivable.
                intake.queue.delete(&m.receipt_handle).await.unwrap();
                out.push((
                    SyncRequest::from_body(&m.body).unwrap(),
                    m.group_id.unwrap(),
                    m.dedup_id.unwrap(),
                ));
            }
        }
    }
}
