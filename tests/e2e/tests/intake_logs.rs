//! Intake's logs, end to end, in a process of its own (a `tracing` subscriber scoped to one
//! test thread misses events when other tests in the same process race it for callsite
//! registration): every request is accounted for, and no secret or signature is logged.

mod intake_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use intake_support::*;
use orglink_intake::logging::json_subscriber;
use orglink_shared::credentials::Secret;
use orglink_shared::signature::{SIGNATURE_HEADER, sign};

/// A `Write` into a shared buffer, so the test reads what the JSON subscriber wrote.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn every_request_is_accounted_for_and_no_secret_reaches_the_log() {
    let (prepared, env) = prepare("logs").await;
    // Captured from the cold start on (the secret read included), at every level.
    let captured = Captured::default();
    let writer = captured.clone();
    let _guard = tracing::subscriber::set_default(json_subscriber(move || writer.clone(), "trace"));
    let f = start(prepared, &env).await;
    let t = now();
    link(&f, B, &[("Zendesk_Domain__c", "beta.example")]).await;
    let good = batch(
        BOUND_ORG,
        &[
            event(A, "closed_won", "c-1"),
            event(A, "closed_won", "c-1"),
            event(C, "name_changed", "c-2"),
        ],
    );
    let forged_header = sign(&Secret::new("forged"), t, good.as_bytes());
    let payloads = vec![
        salesforce(&f.sf_secret, t, &good),
        salesforce(&f.sf_secret, t, &good),
        function_url(
            "/",
            &[(SIGNATURE_HEADER, forged_header.clone())],
            good.as_bytes(),
        ),
        salesforce(&f.sf_secret, t - 900, &good),
        relay(BOUND_ORG, "tx-log", &[A, B, "001*"], &["Phone"], json!({})),
        relay(
            BOUND_ORG,
            "tx-log2",
            &[B],
            &["Zendesk_Sync_Status__c"],
            json!({}),
        ),
        zendesk_call(
            &f.zd_secret,
            t,
            &webhook_body("deleted", "z-1", Some(C), json!({})),
        ),
        zendesk_call(
            &f.zd_secret,
            t,
            &webhook_body("tags_changed", "z-2", Some(C), json!({})),
        ),
    ];
    // What each answer says: (received, enqueued + deduplicated + ignored + echoes + exceptions).
    let mut refused = 0;
    let mut totals = BTreeMap::<&str, u64>::new();
    for payload in payloads {
        let out = f.intake.handle_invocation(payload).await.unwrap();
        let body: Value = match out.get("body").and_then(Value::as_str) {
            Some(b) => serde_json::from_str(b).unwrap(),
            None => out.clone(),
        };
        if body.get("error").is_some() {
            refused += 1;
            continue;
        }
        let parts: u64 = [
            "enqueued",
            "deduplicated",
            "ignored",
            "echoes_dropped",
            "exceptions",
        ]
        .iter()
        .map(|k| body[k].as_u64().unwrap())
        .sum();
        assert_eq!(
            body["received"].as_u64().unwrap(),
            parts,
            "every event ends somewhere: {body}"
        );
        for k in [
            "received",
            "enqueued",
            "deduplicated",
            "ignored",
            "echoes_dropped",
            "exceptions",
        ] {
            *totals.entry(k).or_default() += body[k].as_u64().unwrap();
        }
    }
    assert_eq!(refused, 2, "the forged and the stale request");
    // 3 + 3 (batch twice) + 3 (relay: A, B, wildcard) + 1 + 1 + 1.
    assert_eq!(totals["received"], 12);
    assert_eq!(
        totals["deduplicated"], 2,
        "the repeated event inside each batch"
    );
    assert_eq!(totals["echoes_dropped"], 1);
    let queued = drain(&f).await;
    // A/c-1, C/c-2 (the second delivery deduplicated by SQS), C/zd:z-1.
    assert_eq!(queued.len(), 3, "{queued:?}");
    assert_eq!(
        totals["enqueued"], 5,
        "two of them SQS dropped as duplicates"
    );

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    let events: Vec<&Value> = lines.iter().filter(|l| l["message"] == "event").collect();
    assert_eq!(
        events.len() as u64,
        totals["received"],
        "one log line per event"
    );
    assert!(
        events
            .iter()
            .any(|l| l["account_id"] == A && l["event_id"] == "c-1" && l["outcome"] == "enqueued")
    );
    assert!(
        events.iter().any(|l| l["event_id"] == "zd:z-1"
            && l["org_id"].as_str() == Some(ZD_ORG.to_string().as_str()))
    );
    let refusals = lines.iter().filter(|l| l["outcome"] == "refused").count();
    assert_eq!(refusals, 2);
    for secret in [&f.sf_secret, &f.zd_secret] {
        assert!(!log.contains(secret.as_str()), "a secret reached the log");
    }
    let forged_mac = forged_header.split("v1=").nth(1).unwrap();
    assert!(!log.contains(forged_mac), "a signature reached the log");
    assert!(
        !log.contains("\"org_id\":\"00D"),
        "request bodies stay out of the log"
    );
}
