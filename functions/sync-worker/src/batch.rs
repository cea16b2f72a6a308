//! The Lambda handler: one SQS FIFO batch with `ReportBatchItemFailures`.
//!
//! Messages are handled in order. A message that must be retried is reported failed, hidden
//! for its backoff (ChangeMessageVisibility), and fails the later messages of its group in
//! this batch (FIFO order). A poison message — a body that is not a sync request — is
//! reported failed alone; after the queue's `maxReceiveCount` receives it is in the DLQ.
//!
//! Retries never walk a message into the DLQ: a message to be retried that has already been
//! received `requeue_at_receive_count` times is sent again as a fresh message and the old one
//! is acknowledged (docs/worker.md, "Retries and the dead-letter queue"); the queue's redrive
//! count sits at least 5 receives above that, for receives that end unanswered (crashed or
//! timed-out invocations, lost deletes). When to stop retrying is decided by the link
//! record's failure streak, never by the receive count.
//!
//! The invocation never runs into its deadline: a message is started only while more than
//! `deadline_reserve_ms` is left, and one still running that close to the deadline is cut
//! short and retried. Contention — a slow store, a long wait for the shared rate budget while
//! a backfill draws from it — thus delays messages instead of timing the invocation out, which
//! would return the whole batch and count a receive against every message in it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::future::join_all;
use tracing::Instrument;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};

use orglink_shared::aws::{QueueMessage, WorkQueue};
use orglink_shared::sync_request::SyncRequest;

use crate::outcome::Outcome;
use crate::sync::{MessageResult, now_ms};
use crate::{Ports, Worker};

/// The invocation crashed (an injected crash, or a deployment defect): Lambda retries the
/// whole batch after the visibility timeout, as it does when a function errors.
#[derive(Debug, thiserror::Error)]
#[error("the sync worker crashed: {reason}")]
pub struct Crashed {
    pub reason: String,
}

/// What happened to each message of a batch (for the runner's conservation count).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageFate {
    Done {
        message_id: String,
        /// The sync request's event id (a re-sent copy keeps it).
        event_id: String,
        outcome: &'static str,
        /// The outcome itself (the reason of an ignored message, the kind of an exception).
        detail: Outcome,
    },
    RetryLater {
        message_id: String,
    },
    /// Retried too often to keep: sent again as a fresh message, this one acknowledged.
    Requeued {
        message_id: String,
    },
    Poison {
        message_id: String,
    },
}

/// The groups already failed in this batch (FIFO order), with how long their failed message
/// is hidden, so later messages of the group are hidden as long.
struct Blocked<'a> {
    group: &'a str,
    failed_groups: &'a mut HashSet<String>,
    group_wait: &'a mut HashMap<String, u32>,
}

/// A message kept for later is reported failed, so Lambda leaves it on the queue.
fn report(fate: MessageFate, response: &mut SqsBatchResponse) -> MessageFate {
    if let MessageFate::RetryLater { message_id } = &fate {
        response.add_failure(message_id.clone());
    }
    fate
}

fn attr<'a>(m: &'a SqsMessage, name: &str) -> Option<&'a str> {
    m.attributes.get(name).map(String::as_str)
}

impl<P: Ports> Worker<P> {
    /// Handles a batch; the response lists the messages to keep.
    pub async fn handle_batch(
        &self,
        event: SqsEvent,
        deadline_ms: i64,
    ) -> Result<SqsBatchResponse, Crashed> {
        self.handle_batch_with_fates(event, deadline_ms)
            .await
            .map(|(r, _)| r)
    }

    pub async fn handle_batch_with_fates(
        &self,
        event: SqsEvent,
        deadline_ms: i64,
    ) -> Result<(SqsBatchResponse, Vec<MessageFate>), Crashed> {
        let result = self.batch(event, deadline_ms).await;
        // Once per invocation, crashed or not: the calls the shared rate budget refused.
        self.metrics.flush(now_ms());
        result
    }

    async fn batch(
        &self,
        event: SqsEvent,
        deadline_ms: i64,
    ) -> Result<(SqsBatchResponse, Vec<MessageFate>), Crashed> {
        let mut response = SqsBatchResponse::default();
        let mut fates = Vec::new();
        // Messages start, and a running one is cut short, before this: the reserve, or a
        // quarter of the invocation when that is shorter (short test timeouts).
        let reserve = (self.settings.deadline_reserve_ms as i64).min((deadline_ms - now_ms()) / 4);
        let cutoff_ms = deadline_ms - reserve.max(0);
        // Groups with a failed message in this batch, and how long that message is hidden.
        let mut failed_groups: HashSet<String> = HashSet::new();
        let mut group_wait: HashMap<String, u32> = HashMap::new();
        let mut unstarted = Vec::new();
        for m in event.records {
            let Some(message_id) = m.message_id.clone() else {
                tracing::error!("an SQS record without a message id; cannot report it");
                continue;
            };
            if now_ms() >= cutoff_ms {
                unstarted.push(m);
                continue;
            }
            let group = attr(&m, "MessageGroupId").unwrap_or("").to_string();
            let receives: u32 = attr(&m, "ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let receipt = m.receipt_handle.clone().unwrap_or_default();
            let body = m.body.clone().unwrap_or_default();

            let request = match SyncRequest::from_body(&body) {
                Ok(r) => r,
                Err(e) => {
                    // Reported alone: its group's later messages are valid requests.
                    tracing::error!(
                        message_id = %message_id,
                        group = %group,
                        receive_count = receives,
                        // Position and category only: serde's message can quote the body.
                        error_kind = ?e.classify(),
                        line = e.line(),
                        column = e.column(),
                        outcome = "poison",
                        "message body is not a sync request; it goes to the dead-letter queue after the queue's redrive count"
                    );
                    self.hide(&receipt, self.settings.poison_visibility_secs)
                        .await;
                    response.add_failure(message_id.clone());
                    fates.push(MessageFate::Poison { message_id });
                    continue;
                }
            };
            let span = tracing::info_span!(
                "message",
                message_id = %message_id,
                account = %request.account_id,
                event_id = %request.event_id,
                kind = %request.kind,
            );
            let step = self
                .one(
                    &m,
                    &request,
                    &body,
                    Blocked {
                        group: &group,
                        failed_groups: &mut failed_groups,
                        group_wait: &mut group_wait,
                    },
                    receives,
                    (cutoff_ms, deadline_ms),
                )
                .instrument(span)
                .await;
            match step {
                Ok(fate) => fates.push(report(fate, &mut response)),
                Err(c) => return Err(c),
            }
        }
        if !unstarted.is_empty() {
            // Kept for the next invocation, offered again at once; their queue calls go out
            // together, as little of the invocation is left.
            tracing::info!(
                messages = unstarted.len(),
                outcome = "retry_later",
                reason = "too little of the invocation is left to start them",
                "left for the next invocation"
            );
            let kept = join_all(unstarted.iter().map(|m| self.leave_for_later(m))).await;
            for fate in kept {
                fates.push(report(fate, &mut response));
            }
        }
        Ok((response, fates))
    }

    /// A message not started (the invocation's time is nearly up): offered again at once,
    /// or sent again fresh when it has been received often enough to near the redrive count.
    async fn leave_for_later(&self, m: &SqsMessage) -> MessageFate {
        let receipt = m.receipt_handle.clone().unwrap_or_default();
        let receives: u32 = attr(m, "ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        match SyncRequest::from_body(m.body.as_deref().unwrap_or_default()) {
            Ok(request) => self.retry_later(m, &request, &receipt, receives, 0).await,
            // Poison is reported when it is started; this one was not.
            Err(_) => MessageFate::RetryLater {
                message_id: m.message_id.clone().unwrap_or_default(),
            },
        }
    }

    /// One parsed message (inside its log span).
    #[allow(clippy::too_many_arguments)]
    async fn one(
        &self,
        m: &SqsMessage,
        request: &SyncRequest,
        body: &str,
        blocked: Blocked<'_>,
        receives: u32,
        (cutoff_ms, deadline_ms): (i64, i64),
    ) -> Result<MessageFate, Crashed> {
        let message_id = m.message_id.clone().unwrap_or_default();
        let receipt = m.receipt_handle.clone().unwrap_or_default();
        let group = blocked.group.to_string();
        if blocked.failed_groups.contains(&group) {
            let wait = blocked.group_wait.get(&group).copied().unwrap_or(1);
            tracing::info!(
                outcome = "retry_later",
                reason = "an earlier message of this account failed in this batch",
                "kept for FIFO order"
            );
            return Ok(self.retry_later(m, request, &receipt, receives, wait).await);
        }
        let left_ms = (cutoff_ms - now_ms()).max(1);
        let result = match tokio::time::timeout(
            Duration::from_millis(left_ms as u64),
            self.handle_request(request, body, deadline_ms),
        )
        .await
        {
            Ok(result) => result,
            // As a crash of this message alone: everything it wrote is safe to redo (a create
            // is keyed on external_id). Its idempotency record stays in progress until the
            // deadline, so it is hidden until then.
            Err(_) => MessageResult::Retry {
                after_secs: ((deadline_ms - now_ms()).max(0) / 1000 + 1) as u32,
                reason: "cut short: the invocation's deadline was near (waiting on a store or the rate budget)".into(),
            },
        };
        match result {
            MessageResult::Done(outcome) => {
                tracing::info!(
                    outcome = outcome.category(),
                    rule = outcome.rule().map(|r| r.to_string()),
                    detail = ?outcome,
                    "message done"
                );
                Ok(MessageFate::Done {
                    message_id,
                    event_id: request.event_id.clone(),
                    outcome: outcome.category(),
                    detail: outcome,
                })
            }
            MessageResult::Retry { after_secs, reason } => {
                tracing::warn!(
                    outcome = "retry_later",
                    after_secs,
                    reason = %reason,
                    receive_count = receives,
                    "transient failure; retrying later"
                );
                blocked.failed_groups.insert(group.clone());
                blocked.group_wait.insert(group, after_secs);
                Ok(self
                    .retry_later(m, request, &receipt, receives, after_secs)
                    .await)
            }
            MessageResult::Crash { reason } => {
                tracing::error!(outcome = "crash", reason = %reason, "worker crashed");
                Err(Crashed { reason })
            }
        }
    }

    /// Keeps a message for later: hidden for `wait` seconds — or, when it has been received
    /// often enough to near the redrive count, sent again fresh and acknowledged.
    async fn retry_later(
        &self,
        m: &SqsMessage,
        request: &SyncRequest,
        receipt: &str,
        receives: u32,
        wait: u32,
    ) -> MessageFate {
        let message_id = m.message_id.clone().unwrap_or_default();
        if receives >= self.settings.requeue_at_receive_count {
            let mut fresh = request.to_message();
            // A new deduplication id, so SQS does not drop the copy as a repeat.
            fresh.event_id = format!("{}~requeue~{message_id}", request.event_id);
            let fresh = QueueMessage {
                body: m.body.clone().unwrap_or(fresh.body),
                ..fresh
            };
            match self.stores.queue.send(&fresh).await {
                Ok(()) => {
                    tracing::info!(receive_count = receives, "sent again as a fresh message");
                    return MessageFate::Requeued { message_id };
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not send the message again; keeping it");
                }
            }
        }
        self.hide(receipt, wait).await;
        MessageFate::RetryLater { message_id }
    }

    async fn hide(&self, receipt: &str, secs: u32) {
        if receipt.is_empty() {
            return;
        }
        if let Err(e) = self.stores.queue.change_visibility(receipt, secs).await {
            // The queue's own visibility timeout then decides when it comes back.
            tracing::warn!(error = %e, "could not change the message's visibility");
        }
    }
}
