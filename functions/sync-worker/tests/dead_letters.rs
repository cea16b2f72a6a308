//! Which delivery histories put a message in the sync queue's dead-letter queue.
//!
//! The real handler over the in-memory FIFO queue, which dead-letters a message on the receive
//! after its `MaxReceiveCount`-th (as SQS and moto do), with the count taken from
//! infra/template.yaml. Zendesk answers every call with a 5xx, so each handled receive is a
//! retry. A scripted runner decides what each receive becomes: handled (the runner deletes what
//! the worker did not report failed), crashed (the invocation crashed or timed out: nothing is
//! deleted), or handled with its delete lost. Between receives, time is skipped by making the
//! message visible again, so no test waits for a backoff.

mod support;

use orglink_shared::aws::WorkQueue;
use orglink_shared::contract::EventKind;
use orglink_sync_worker::WorkerSettings;
use orglink_sync_worker::batch::MessageFate;
use orglink_sync_worker::runner::sqs_event;
use orglink_sync_worker::sync::now_ms;
use serde_json::json;
use support::*;

const A: &str = "001SB0000000001YAA";

/// Receives in a row that end without the worker's answer reaching the queue (a crashed or
/// timed-out invocation, a throttled one, a lost delete) that a retried message must survive
/// even when they fall at its worst moment. AWS asks for a redrive count of at least 5 on a
/// queue behind Lambda because throttled invocations return messages unprocessed; crashes of
/// another message of the batch and lost deletes come on top.
const LOST_RECEIVES_TOLERATED: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Receive {
    /// The worker answers; the runner deletes what it did not report failed.
    Handled,
    /// The invocation crashed or timed out: nothing is deleted, the batch comes back whole.
    Crashed,
    /// The worker answers, but the runner's delete is lost.
    DeleteLost,
}
use Receive::*;

/// Retries forever at the queue level: the streak never becomes an exception here.
fn never_giving_up() -> WorkerSettings {
    WorkerSettings {
        max_attempts: 1_000_000,
        failing_after_secs: 1_000_000,
        ..settings()
    }
}

async fn failing_zendesk() -> Env {
    let env = Env::start_with(
        json!({"salesforce": {"accounts": [customer(A, "Acme", "acmewidgets.com")]}}),
        never_giving_up(),
    )
    .await;
    env.admin
        .zd_post("faults", json!({"default": {"error_5xx": 1.0}}))
        .await;
    env
}

/// What a history did: the fates the worker gave, and how many messages are dead letters.
#[derive(Debug)]
struct Played {
    fates: Vec<&'static str>,
    dead_letters: usize,
    /// Messages of the event still on the queue after the history.
    queued: usize,
}

fn fate_name(f: &MessageFate) -> &'static str {
    match f {
        MessageFate::Done { outcome, .. } => outcome,
        MessageFate::RetryLater { .. } => "retry_later",
        MessageFate::Requeued { .. } => "requeued",
        MessageFate::Poison { .. } => "poison",
    }
}

/// Enqueues one message with `body` and plays `history`, one receive per step.
async fn play(env: &Env, body: String, history: &[Receive]) -> Played {
    let queue = &env.worker.stores.queue;
    let mut message = request(A, EventKind::ClosedWon, "e-1").to_message();
    message.body = body;
    queue.send(&message).await.unwrap();
    let mut fates = Vec::new();
    for step in history {
        let got = queue.receive(10, Some(30)).await.unwrap();
        if got.is_empty() {
            break;
        }
        if *step != Crashed {
            let (response, given) = env
                .worker
                .handle_batch_with_fates(sqs_event(&got), now_ms() + 30_000)
                .await
                .expect("the worker does not crash on a transient failure");
            fates.extend(given.iter().map(fate_name));
            if *step == Handled {
                let failed: Vec<&str> = response
                    .batch_item_failures
                    .iter()
                    .map(|f| f.item_identifier.as_str())
                    .collect();
                for m in got.iter().filter(|m| !failed.contains(&&*m.message_id)) {
                    queue.delete(&m.receipt_handle).await.unwrap();
                }
            }
        }
        // Time passes: whatever is still on the queue is visible again.
        for m in &got {
            queue.change_visibility(&m.receipt_handle, 0).await.unwrap();
        }
    }
    // One more receive: SQS moves a message past its count on the receive after the last.
    let rest = queue.receive(10, Some(30)).await.unwrap();
    Played {
        fates,
        dead_letters: queue.dead_letters(10).await.unwrap().len(),
        queued: rest.len(),
    }
}

fn handled(n: u32) -> Vec<Receive> {
    vec![Handled; n as usize]
}

#[tokio::test]
async fn a_retried_message_survives_the_tolerated_lost_receives_at_its_worst_moment() {
    let max = template_max_receive_count();
    let requeue_at = never_giving_up().requeue_at_receive_count;
    // From the receive at which the worker would re-send it fresh: the worst place, as every
    // receive from there on must be answered before the redrive count is reached.
    let mixes: [Vec<Receive>; 3] = [
        vec![Crashed; LOST_RECEIVES_TOLERATED as usize],
        [DeleteLost]
            .into_iter()
            .chain(std::iter::repeat_n(
                Crashed,
                LOST_RECEIVES_TOLERATED as usize - 1,
            ))
            .collect(),
        [Crashed; 1]
            .into_iter()
            .chain([DeleteLost])
            .chain(std::iter::repeat_n(
                Crashed,
                LOST_RECEIVES_TOLERATED as usize - 2,
            ))
            .collect(),
    ];
    for lost in mixes {
        let env = failing_zendesk().await;
        let mut history = handled(requeue_at - 1);
        history.extend(&lost);
        history.extend(handled(2));
        let body = serde_json::to_string(&request(A, EventKind::ClosedWon, "e-1")).unwrap();
        let played = play(&env, body, &history).await;
        assert_eq!(
            played.dead_letters, 0,
            "MaxReceiveCount {max}, requeue_at_receive_count {requeue_at}: {history:?} dead-lettered a retried message ({played:?})"
        );
        assert!(played.queued >= 1, "the event is still queued: {played:?}");
        assert_eq!(
            played.fates.last(),
            Some(&"retry_later"),
            "still retried after the history: {played:?}"
        );
        assert!(
            played.fates.contains(&"requeued"),
            "re-sent fresh on the way: {played:?}"
        );
    }
}

#[tokio::test]
async fn crashes_from_the_requeue_receive_to_the_redrive_count_dead_letter_and_one_fewer_does_not()
{
    let max = template_max_receive_count();
    let requeue_at = never_giving_up().requeue_at_receive_count;
    assert!(requeue_at < max, "the requeue must come before the redrive");
    let spare = max - requeue_at;
    let body = || serde_json::to_string(&request(A, EventKind::ClosedWon, "e-1")).unwrap();

    // Every receive from the requeue receive to the last one crashed: a dead letter (a crash
    // loop still reaches the DLQ).
    let env = failing_zendesk().await;
    let mut history = handled(requeue_at - 1);
    history.extend(vec![Crashed; spare as usize + 1]);
    let played = play(&env, body(), &history).await;
    assert_eq!(played.dead_letters, 1, "{history:?}: {played:?}");
    assert_eq!(played.queued, 0, "{played:?}");

    // One of them answered: re-sent fresh, nothing dead-lettered.
    let env = failing_zendesk().await;
    let mut history = handled(requeue_at - 1);
    history.extend(vec![Crashed; spare as usize]);
    history.push(Handled);
    let played = play(&env, body(), &history).await;
    assert_eq!(played.dead_letters, 0, "{history:?}: {played:?}");
    assert_eq!(played.fates.last(), Some(&"requeued"), "{played:?}");
    assert_eq!(played.queued, 1, "the fresh copy: {played:?}");
}

#[tokio::test]
async fn a_message_that_crashes_every_invocation_and_a_poison_message_reach_the_dlq_after_max_receives()
 {
    let max = template_max_receive_count();
    let body = serde_json::to_string(&request(A, EventKind::ClosedWon, "e-1")).unwrap();

    let env = failing_zendesk().await;
    let played = play(&env, body, &vec![Crashed; max as usize]).await;
    assert_eq!(played.dead_letters, 1, "crash loop: {played:?}");
    assert_eq!(played.queued, 0, "{played:?}");

    let env = failing_zendesk().await;
    let played = play(&env, "{not a sync request".into(), &handled(max)).await;
    assert_eq!(played.fates, vec!["poison"; max as usize], "{played:?}");
    assert_eq!(played.dead_letters, 1, "poison: {played:?}");
    assert_eq!(played.queued, 0, "{played:?}");
}
