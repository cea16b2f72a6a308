//! The sync work queue (SQS FIFO): one message per account, the account id as message group
//! (so one account's events are processed in order and never concurrently), and a
//! deduplication id derived from the event id and the account id (so a retried intake never
//! enqueues an event twice, while one event naming several accounts yields one message each).
//!
//! Receive, delete and change-visibility exist for the local runner, which plays Lambda's
//! event source mapping; the DLQ helpers back `orglink dlq list` / `dlq redrive`.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::error::StoreError;
use crate::ids::AccountId;

/// SQS's maximum entries per batch call.
pub const BATCH_SIZE: usize = 10;

/// A message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMessage {
    pub account: AccountId,
    /// The id of the event (or operator action) that caused it.
    pub event_id: String,
    pub body: String,
}

impl QueueMessage {
    pub fn group_id(&self) -> &str {
        self.account.as_str()
    }

    /// `sha256(event_id, account)` in hex: within SQS's 128-character limit and alphabet
    /// whatever the event id looks like.
    pub fn dedup_id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.event_id.as_bytes());
        h.update(b"\x1f");
        h.update(self.account.as_str().as_bytes());
        hex::encode(h.finalize())
    }
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub group_id: Option<String>,
    pub dedup_id: Option<String>,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// One entry of a batch send that SQS refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// Index into the slice given to `send_batch`.
    pub index: usize,
    pub reason: String,
    /// Whether resending it can succeed.
    pub transient: bool,
}

pub trait WorkQueue: Send + Sync {
    fn send(&self, message: &QueueMessage) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Sends in batches of 10; returns the entries that failed (the rest were accepted).
    fn send_batch(
        &self,
        messages: &[QueueMessage],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, StoreError>> + Send;

    /// Up to `max` (1–10) messages, hidden for `visibility_secs` (the queue's default if None).
    fn receive(
        &self,
        max: usize,
        visibility_secs: Option<u32>,
    ) -> impl Future<Output = Result<Vec<ReceivedMessage>, StoreError>> + Send;

    fn delete(&self, receipt_handle: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes several messages (SQS: 10 per request, as Lambda's event source mapping
    /// does); returns the entries that failed, by index into `receipt_handles`.
    fn delete_batch(
        &self,
        receipt_handles: &[String],
    ) -> impl Future<Output = Result<Vec<BatchFailure>, StoreError>> + Send {
        async move {
            let mut failures = Vec::new();
            for (index, r) in receipt_handles.iter().enumerate() {
                if let Err(e) = self.delete(r).await {
                    failures.push(BatchFailure {
                        index,
                        transient: e.is_transient(),
                        reason: e.to_string(),
                    });
                }
            }
            Ok(failures)
        }
    }

    fn change_visibility(
        &self,
        receipt_handle: &str,
        visibility_secs: u32,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `max` dead letters, made visible again right away (a look, not a take).
    fn dead_letters(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<ReceivedMessage>, StoreError>> + Send;

    /// Moves up to `max` dead letters back onto the work queue (same group, a fresh
    /// deduplication id so SQS does not drop them as repeats); returns how many moved.
    fn redrive(&self, max: usize) -> impl Future<Output = Result<usize, StoreError>> + Send;
}

/// The deduplication id of a redriven message: new, so SQS's 5-minute window does not drop it.
fn redrive_dedup_id(message_id: &str) -> String {
    hex::encode(Sha256::digest(format!("redrive\x1f{message_id}")))
}

fn check_max(max: usize) -> Result<i32, StoreError> {
    if (1..=BATCH_SIZE).contains(&max) {
        Ok(max as i32)
    } else {
        Err(StoreError::Rejected {
            service: "SQS",
            detail: format!("can receive 1 to 10 messages at a time, not {max}"),
        })
    }
}

#[derive(Debug, Clone)]
struct MemoryMessage {
    id: String,
    receipt: String,
    group: String,
    dedup: String,
    body: String,
    receive_count: u32,
    hidden_until: Option<Instant>,
}

#[derive(Debug, Default)]
struct MemoryQueueState {
    work: Vec<MemoryMessage>,
    dead: Vec<MemoryMessage>,
    /// Deduplication ids seen (SQS forgets them after 5 minutes; the twin never does).
    seen: HashSet<String>,
    next: u64,
}

/// The in-memory twin of a FIFO queue with its dead-letter queue: groups are delivered in
/// order and blocked while one of their messages is in flight; a message received more than
/// `max_receive_count` times moves to the dead-letter queue.
#[derive(Debug)]
pub struct MemoryQueue {
    visibility: Duration,
    max_receive_count: u32,
    state: Mutex<MemoryQueueState>,
}

impl MemoryQueue {
    pub fn new(default_visibility_secs: u32, max_receive_count: u32) -> Self {
        MemoryQueue {
            visibility: Duration::from_secs(default_visibility_secs.into()),
            max_receive_count,
            state: Mutex::default(),
        }
    }

    fn push(state: &mut MemoryQueueState, group: &str, dedup: String, body: &str) {
        if !state.seen.insert(dedup.clone()) {
            return;
        }
        state.next += 1;
        let id = format!("m-{}", state.next);
        state.work.push(MemoryMessage {
            receipt: format!("{id}-r0"),
            id,
            group: group.to_string(),
            dedup,
            body: body.to_string(),
            receive_count: 0,
            hidden_until: None,
        });
    }

    fn take(
        messages: &mut [MemoryMessage],
        max: usize,
        hide_for: Duration,
        blocking_groups: bool,
    ) -> Vec<ReceivedMessage> {
        let now = Instant::now();
        let in_flight: HashSet<String> = messages
            .iter()
            .filter(|m| m.hidden_until.is_some_and(|t| t > now))
            .map(|m| m.group.clone())
            .collect();
        let mut out = Vec::new();
        for m in messages.iter_mut() {
            if out.len() == max {
                break;
            }
            let hidden = m.hidden_until.is_some_and(|t| t > now);
            if hidden || (blocking_groups && in_flight.contains(&m.group)) {
                continue;
            }
            m.receive_count += 1;
            m.receipt = format!("{}-r{}", m.id, m.receive_count);
            m.hidden_until = Some(now + hide_for);
            out.push(ReceivedMessage {
                message_id: m.id.clone(),
                receipt_handle: m.receipt.clone(),
                body: m.body.clone(),
                group_id: Some(m.group.clone()),
                dedup_id: Some(m.dedup.clone()),
                receive_count: m.receive_count,
            });
        }
        out
    }
}

impl WorkQueue for MemoryQueue {
    async fn send(&self, message: &QueueMessage) -> Result<(), StoreError> {
        let mut state = self.state.lock().expect("queue lock");
        Self::push(
            &mut state,
            message.group_id(),
            message.dedup_id(),
            &message.body,
        );
        Ok(())
    }

    async fn send_batch(&self, messages: &[QueueMessage]) -> Result<Vec<BatchFailure>, StoreError> {
        for m in messages {
            self.send(m).await?;
        }
        Ok(Vec::new())
    }

    async fn receive(
        &self,
        max: usize,
        visibility_secs: Option<u32>,
    ) -> Result<Vec<ReceivedMessage>, StoreError> {
        check_max(max)?;
        let hide_for = visibility_secs.map_or(self.visibility, |s| Duration::from_secs(s.into()));
        let mut state = self.state.lock().expect("queue lock");
        // Messages already received max_receive_count times go to the DLQ instead (SQS's
        // redrive happens on the receive that would exceed the count).
        let now = Instant::now();
        let limit = self.max_receive_count;
        let (dead, live): (Vec<_>, Vec<_>) = std::mem::take(&mut state.work)
            .into_iter()
            .partition(|m| m.receive_count >= limit && m.hidden_until.is_none_or(|t| t <= now));
        state.work = live;
        state.dead.extend(dead.into_iter().map(|mut m| {
            m.receive_count = 0;
            m.hidden_until = None;
            m
        }));
        Ok(Self::take(&mut state.work, max, hide_for, true))
    }

    async fn delete(&self, receipt_handle: &str) -> Result<(), StoreError> {
        let mut state = self.state.lock().expect("queue lock");
        state.work.retain(|m| m.receipt != receipt_handle);
        state.dead.retain(|m| m.receipt != receipt_handle);
        Ok(())
    }

    async fn change_visibility(
        &self,
        receipt_handle: &str,
        visibility_secs: u32,
    ) -> Result<(), StoreError> {
        let mut guard = self.state.lock().expect("queue lock");
        let state = &mut *guard;
        let until = Instant::now() + Duration::from_secs(visibility_secs.into());
        for m in state.work.iter_mut().chain(state.dead.iter_mut()) {
            if m.receipt == receipt_handle {
                m.hidden_until = Some(until);
            }
        }
        Ok(())
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<ReceivedMessage>, StoreError> {
        check_max(max)?;
        let mut state = self.state.lock().expect("queue lock");
        let mut seen = Self::take(&mut state.dead, max, Duration::ZERO, false);
        for m in state.dead.iter_mut() {
            m.hidden_until = None;
        }
        for r in &mut seen {
            r.receipt_handle.clear();
        }
        Ok(seen)
    }

    async fn redrive(&self, max: usize) -> Result<usize, StoreError> {
        let mut state = self.state.lock().expect("queue lock");
        let n = max.min(state.dead.len());
        let moved: Vec<MemoryMessage> = state.dead.drain(..n).collect();
        for m in &moved {
            Self::push(&mut state, &m.group, redrive_dedup_id(&m.id), &m.body);
        }
        Ok(moved.len())
    }
}

#[cfg(feature = "aws")]
pub use self::sqs_impl::SqsQueue;

#[cfg(feature = "aws")]
mod sqs_impl {
    use aws_sdk_sqs::Client;
    use aws_sdk_sqs::types::{
        BatchResultErrorEntry, DeleteMessageBatchRequestEntry, MessageSystemAttributeName,
        SendMessageBatchRequestEntry,
    };

    use super::*;
    use crate::aws::error::classify;

    const SERVICE: &str = "SQS";

    /// The failed entries of one batch call (send or delete), indexed into the
    /// caller's whole slice: entry ids are positions within chunk `chunk_no`.
    fn batch_failures(
        chunk_no: usize,
        failed: &[BatchResultErrorEntry],
    ) -> impl Iterator<Item = BatchFailure> + '_ {
        failed.iter().map(move |f| BatchFailure {
            index: chunk_no * BATCH_SIZE + f.id().parse::<usize>().unwrap_or(0),
            reason: format!("{}: {}", f.code(), f.message().unwrap_or("")),
            transient: !f.sender_fault(),
        })
    }

    /// The work queue and its dead-letter queue, by URL.
    #[derive(Debug, Clone)]
    pub struct SqsQueue {
        client: Client,
        queue_url: String,
        dlq_url: String,
    }

    impl SqsQueue {
        pub fn new(
            client: Client,
            queue_url: impl Into<String>,
            dlq_url: impl Into<String>,
        ) -> Self {
            SqsQueue {
                client,
                queue_url: queue_url.into(),
                dlq_url: dlq_url.into(),
            }
        }

        async fn receive_from(
            &self,
            url: &str,
            max: usize,
            visibility_secs: Option<u32>,
        ) -> Result<Vec<ReceivedMessage>, StoreError> {
            let out = self
                .client
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(check_max(max)?)
                .set_visibility_timeout(visibility_secs.map(|s| s as i32))
                .wait_time_seconds(0)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(out
                .messages()
                .iter()
                .map(|m| {
                    let attr = |name: MessageSystemAttributeName| {
                        m.attributes().and_then(|a| a.get(&name)).cloned()
                    };
                    ReceivedMessage {
                        message_id: m.message_id().unwrap_or_default().to_string(),
                        receipt_handle: m.receipt_handle().unwrap_or_default().to_string(),
                        body: m.body().unwrap_or_default().to_string(),
                        group_id: attr(MessageSystemAttributeName::MessageGroupId),
                        dedup_id: attr(MessageSystemAttributeName::MessageDeduplicationId),
                        receive_count: attr(MessageSystemAttributeName::ApproximateReceiveCount)
                            .and_then(|c| c.parse().ok())
                            .unwrap_or(1),
                    }
                })
                .collect())
        }

        async fn send_raw(&self, group: &str, dedup: &str, body: &str) -> Result<(), StoreError> {
            self.client
                .send_message()
                .queue_url(&self.queue_url)
                .message_group_id(group)
                .message_deduplication_id(dedup)
                .message_body(body)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }

        async fn delete_from(&self, url: &str, receipt_handle: &str) -> Result<(), StoreError> {
            self.client
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt_handle)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }
    }

    impl WorkQueue for SqsQueue {
        async fn send(&self, message: &QueueMessage) -> Result<(), StoreError> {
            self.send_raw(message.group_id(), &message.dedup_id(), &message.body)
                .await
        }

        async fn send_batch(
            &self,
            messages: &[QueueMessage],
        ) -> Result<Vec<BatchFailure>, StoreError> {
            let mut failures = Vec::new();
            for (chunk_no, chunk) in messages.chunks(BATCH_SIZE).enumerate() {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, m)| {
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_group_id(m.group_id())
                            .message_deduplication_id(m.dedup_id())
                            .message_body(&m.body)
                            .build()
                            .expect("id and body are set")
                    })
                    .collect();
                let out = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| classify(SERVICE, e))?;
                failures.extend(batch_failures(chunk_no, out.failed()));
            }
            Ok(failures)
        }

        async fn receive(
            &self,
            max: usize,
            visibility_secs: Option<u32>,
        ) -> Result<Vec<ReceivedMessage>, StoreError> {
            self.receive_from(&self.queue_url, max, visibility_secs)
                .await
        }

        async fn delete(&self, receipt_handle: &str) -> Result<(), StoreError> {
            self.delete_from(&self.queue_url, receipt_handle).await
        }

        async fn delete_batch(
            &self,
            receipt_handles: &[String],
        ) -> Result<Vec<BatchFailure>, StoreError> {
            let mut failures = Vec::new();
            for (chunk_no, chunk) in receipt_handles.chunks(BATCH_SIZE).enumerate() {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(r)
                            .build()
                            .expect("id and receipt handle are set")
                    })
                    .collect();
                let out = self
                    .client
                    .delete_message_batch()
                    .queue_url(&self.queue_url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                    .map_err(|e| classify(SERVICE, e))?;
                failures.extend(batch_failures(chunk_no, out.failed()));
            }
            Ok(failures)
        }

        async fn change_visibility(
            &self,
            receipt_handle: &str,
            visibility_secs: u32,
        ) -> Result<(), StoreError> {
            self.client
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(receipt_handle)
                .visibility_timeout(visibility_secs as i32)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }

        async fn dead_letters(&self, max: usize) -> Result<Vec<ReceivedMessage>, StoreError> {
            // A zero visibility timeout leaves them in place for the next look or redrive.
            let mut seen = self.receive_from(&self.dlq_url, max, Some(0)).await?;
            for m in &mut seen {
                m.receipt_handle.clear();
            }
            Ok(seen)
        }

        async fn redrive(&self, max: usize) -> Result<usize, StoreError> {
            let mut moved = 0;
            while moved < max {
                let batch = self
                    .receive_from(&self.dlq_url, (max - moved).min(BATCH_SIZE), Some(30))
                    .await?;
                if batch.is_empty() {
                    break;
                }
                for m in batch {
                    let group = m.group_id.clone().unwrap_or_else(|| m.message_id.clone());
                    self.send_raw(&group, &redrive_dedup_id(&m.message_id), &m.body)
                        .await?;
                    // Sent before deleted: a crash in between duplicates a message (which
                    // idempotency absorbs) rather than losing one.
                    self.delete_from(&self.dlq_url, &m.receipt_handle).await?;
                    moved += 1;
                }
            }
            Ok(moved)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_ids_depend_on_event_and_account() {
        let a = AccountId::parse("001D000000IRFmaIAH").unwrap();
        let b = AccountId::parse("001D000000IomazIAB").unwrap();
        let m = |acct: &AccountId, ev: &str| QueueMessage {
            account: acct.clone(),
            event_id: ev.into(),
            body: "{}".into(),
        };
        assert_eq!(m(&a, "e1").dedup_id(), m(&a, "e1").dedup_id());
        assert_ne!(m(&a, "e1").dedup_id(), m(&b, "e1").dedup_id());
        assert_ne!(m(&a, "e1").dedup_id(), m(&a, "e2").dedup_id());
        assert_eq!(m(&a, "e1").dedup_id().len(), 64);
        assert_eq!(m(&a, "e1").group_id(), "001D000000IRFmaIAH");
    }
}
