//! The local stand-in for Lambda's SQS event source mapping (moto does not poll SQS into
//! Lambda). Several workers at once, each a loop that: receives up to `batch_size` messages
//! hidden for `visibility_secs`; builds the SQS event Lambda would deliver (message id, receipt
//! handle, body, `MessageGroupId`, `ApproximateReceiveCount`); invokes the real handler with a
//! deadline `timeout_ms` ahead; then deletes every message not reported failed. A crash or a
//! timeout deletes nothing, so the whole batch comes back after the visibility timeout, as on
//! Lambda. The redrive count is the queue's own (moto applies the template's RedrivePolicy).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::json;

use orglink_shared::aws::{ReceivedMessage, WorkQueue};

use crate::batch::MessageFate;
use crate::sync::now_ms;
use crate::{Ports, Worker};

/// How the event source mapping behaves.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Concurrent workers (Lambda instances).
    pub workers: usize,
    /// Messages per invocation (1–10 for FIFO).
    pub batch_size: usize,
    /// Visibility timeout applied at receive (the function timeout's multiple, as on AWS).
    pub visibility_secs: u32,
    /// The function timeout: the invocation's deadline, and when the runner gives up on it.
    pub timeout_ms: u64,
    /// Pause after an empty receive.
    pub idle_poll_ms: u64,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            workers: 2,
            batch_size: 10,
            visibility_secs: 6,
            timeout_ms: 5000,
            idle_poll_ms: 100,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub invocations: u64,
    /// Invocations that crashed or timed out (their batch is retried whole).
    pub crashes: u64,
    /// Every message's fate in every invocation that returned (a message can appear more than
    /// once: retried, or redelivered after a crash).
    pub fates: Vec<MessageFate>,
    /// Whether `until` held before the time limit.
    pub finished: bool,
    pub elapsed: Duration,
}

/// The SQS event Lambda delivers for these messages.
pub fn sqs_event(messages: &[ReceivedMessage]) -> SqsEvent {
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|m| {
            let mut attributes = serde_json::Map::new();
            attributes.insert(
                "ApproximateReceiveCount".into(),
                json!(m.receive_count.to_string()),
            );
            if let Some(g) = &m.group_id {
                attributes.insert("MessageGroupId".into(), json!(g));
            }
            if let Some(d) = &m.dedup_id {
                attributes.insert("MessageDeduplicationId".into(), json!(d));
            }
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": attributes,
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event deserializes")
}

struct Shared {
    stop: AtomicBool,
    invocations: AtomicU64,
    crashes: AtomicU64,
    fates: std::sync::Mutex<Vec<MessageFate>>,
}

/// Runs `workers` (one per Lambda instance; they may share one `Worker`) against `queue` until
/// `until` holds or `max` has passed.
pub async fn run<P, Q, F, Fut>(
    workers: Vec<Arc<Worker<P>>>,
    queue: Arc<Q>,
    config: RunnerConfig,
    until: F,
    max: Duration,
) -> RunReport
where
    P: Ports,
    Q: WorkQueue + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        invocations: AtomicU64::new(0),
        crashes: AtomicU64::new(0),
        fates: std::sync::Mutex::new(Vec::new()),
    });
    let mut tasks = Vec::new();
    for (i, worker) in workers.into_iter().enumerate() {
        let queue = queue.clone();
        let shared = shared.clone();
        let config = config.clone();
        tasks.push(tokio::spawn(async move {
            worker_loop(i, worker, queue, config, shared).await;
        }));
    }
    let mut finished = false;
    while started.elapsed() < max {
        if until().await {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    shared.stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = t.await;
    }
    let fates = shared.fates.lock().expect("fates lock").clone();
    RunReport {
        invocations: shared.invocations.load(Ordering::SeqCst),
        crashes: shared.crashes.load(Ordering::SeqCst),
        fates,
        finished,
        elapsed: started.elapsed(),
    }
}

async fn worker_loop<P: Ports, Q: WorkQueue>(
    index: usize,
    worker: Arc<Worker<P>>,
    queue: Arc<Q>,
    config: RunnerConfig,
    shared: Arc<Shared>,
) {
    while !shared.stop.load(Ordering::SeqCst) {
        let messages = match queue
            .receive(config.batch_size, Some(config.visibility_secs))
            .await
        {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(worker = index, error = %e, "receive failed");
                tokio::time::sleep(Duration::from_millis(config.idle_poll_ms)).await;
                continue;
            }
        };
        if messages.is_empty() {
            tokio::time::sleep(Duration::from_millis(config.idle_poll_ms)).await;
            continue;
        }
        shared.invocations.fetch_add(1, Ordering::SeqCst);
        let deadline_ms = now_ms() + config.timeout_ms as i64;
        let event = sqs_event(&messages);
        let invocation = tokio::time::timeout(
            Duration::from_millis(config.timeout_ms),
            worker.handle_batch_with_fates(event, deadline_ms),
        )
        .await;
        match invocation {
            Ok(Ok((response, fates))) => {
                let failed: std::collections::HashSet<&str> = response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.as_str())
                    .collect();
                // One DeleteMessageBatch, as the event source mapping deletes.
                let done: Vec<String> = messages
                    .iter()
                    .filter(|m| !failed.contains(m.message_id.as_str()))
                    .map(|m| m.receipt_handle.clone())
                    .collect();
                match queue.delete_batch(&done).await {
                    Ok(failures) => {
                        for f in failures {
                            tracing::warn!(worker = index, reason = %f.reason, "delete failed");
                        }
                    }
                    Err(e) => tracing::warn!(worker = index, error = %e, "delete failed"),
                }
                shared.fates.lock().expect("fates lock").extend(fates);
            }
            Ok(Err(crashed)) => {
                tracing::warn!(worker = index, reason = %crashed.reason, "invocation crashed");
                shared.crashes.fetch_add(1, Ordering::SeqCst);
            }
            Err(_) => {
                tracing::warn!(worker = index, "invocation timed out");
                shared.crashes.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
