//! The sync worker's JSON log, captured: every line is JSON, the decisions carry the account
//! id, the event id and the deciding rule, and no secret appears anywhere (own process: the
//! subscriber is set for this test's thread only).

mod worker_support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use orglink_shared::contract::EventKind;
use orglink_sync_worker::logging::json_subscriber;
use worker_support::*;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_are_json_with_account_event_and_rule_and_never_a_secret() {
    let buffer = Buffer::default();
    let _guard = tracing::subscriber::set_default(json_subscriber(buffer.clone(), "debug"));
    let a = account(1);
    let b = account(2);
    let w = World::start(
        "worker-logs",
        json!({"salesforce": {"accounts": [
            customer(&a, "Loggy", "loggy-widgets.com"),
            customer(&b, "Blocked", "blocked-logs-widgets.com")
        ], "switches": {"validation_rules": {b.clone(): "Under review"}}}}),
    )
    .await;
    // As a first reconcile leaves it (without it, creates are held).
    w.fill_mirror().await;
    w.enqueue(&request(&a, EventKind::ClosedWon, "ev-log-1"))
        .await;
    w.enqueue(&request(&b, EventKind::ClosedWon, "ev-log-2"))
        .await;
    w.enqueue_poison(&a, "not json at all").await;
    let report = w
        .run_until(1, Duration::from_secs(40), || async {
            w.queue_depth().await == (0, 0)
        })
        .await;
    assert!(report.finished, "{report:?}");

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let field = |l: &Value, k: &str| {
        l.get(k)
            .or_else(|| l.get("span").and_then(|s| s.get(k)))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    // The decision line: account, event, rule.
    let linked = lines
        .iter()
        .find(|l| l["message"] == "linked")
        .expect("a 'linked' line");
    assert_eq!(field(linked, "account").as_deref(), Some(a.as_str()));
    assert_eq!(field(linked, "event_id").as_deref(), Some("ev-log-1"));
    assert_eq!(field(linked, "rule").as_deref(), Some("create_new"));
    // Each message's outcome, inside its span (account and event id).
    let done: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "message done")
        .collect();
    assert!(done.iter().any(|l| {
        field(l, "outcome").as_deref() == Some("succeeded")
            && field(l, "event_id").as_deref() == Some("ev-log-1")
            && field(l, "rule").as_deref() == Some("create_new")
    }));
    assert!(done.iter().any(|l| {
        field(l, "outcome").as_deref() == Some("exception")
            && field(l, "account").as_deref() == Some(b.as_str())
    }));
    assert!(
        lines
            .iter()
            .any(|l| field(l, "outcome").as_deref() == Some("poison")),
        "the poison message is logged"
    );
    for secret in [
        SF_CLIENT_SECRET,
        ZD_TOKEN,
        "Authorization",
        "Bearer ",
        "access_token",
    ] {
        assert!(!text.contains(secret), "the log holds {secret:?}");
    }
}
