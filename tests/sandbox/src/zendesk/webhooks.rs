//! Organization events sent to webhooks, shaped and signed as Zendesk does
//! (`X-Zendesk-Webhook-Signature` = base64(HMAC-SHA256(secret, timestamp + body)), with the
//! ISO-8601 timestamp in `X-Zendesk-Webhook-Signature-Timestamp`). Zendesk has no event for
//! `domain_names` changes, so none is sent. A failed delivery never fails the API call.
//!
//! Whether and how often Zendesk retries a failed delivery is UNVERIFIED (reference §5:
//! "certain HTTP response codes"), so it is the `webhook_retries` switch: off, one attempt;
//! on, a 5xx, a 429, a timeout or a failed connection is retried after each of
//! `webhook_retry_delays_ms`. A retry sends the same body (same event id) under the same
//! invocation id, signed afresh with a new timestamp. Every attempt is logged
//! (`/_sandbox/webhook_deliveries`).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::store::{FieldChange, Org, format_time};
use super::{Zd, now_unix};

/// A webhook registered through `/api/v2/webhooks`.
#[derive(Debug, Clone)]
pub(crate) struct Webhook {
    pub record: Value,
    pub secret: String,
}

impl Webhook {
    fn endpoint(&self) -> Option<&str> {
        self.record.get("endpoint").and_then(Value::as_str)
    }
    fn active(&self) -> bool {
        self.record.get("status").and_then(Value::as_str) != Some("inactive")
    }
    fn subscribed(&self, event_type: &str) -> bool {
        self.record
            .get("subscriptions")
            .and_then(Value::as_array)
            .is_some_and(|s| {
                s.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|x| x == event_type || x == "zen:event-type:organization.*")
                })
            })
    }
}

/// base64(HMAC-SHA256(secret, timestamp + body)), the secret string used verbatim as the key.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Checks a delivery's signature the way Zendesk documents it.
pub fn verify(secret: &str, timestamp: &str, body: &[u8], signature: &str) -> bool {
    let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

/// A 26-character ULID-like id (Crockford base32 of time and a counter).
pub(crate) fn ulid(counter: u64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let millis = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u128;
    let mut n: u128 = (millis << 80) | (counter as u128 & ((1 << 80) - 1));
    let mut out = [b'0'; 26];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n & 31) as usize];
        n >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("ascii")
}

fn detail(org: &Org) -> Value {
    json!({
        "created_at": format_time(org.created_at),
        "external_id": org.external_id,
        "group_id": org.group_id.map(|g| g.to_string()),
        "id": org.id.to_string(),
        "name": org.name,
        "shared_comments": org.shared_comments,
        "shared_tickets": org.shared_tickets,
        "updated_at": format_time(org.updated_at),
    })
}

/// The events one write produces, as (type, event) pairs.
pub(crate) fn events_for_update(changes: &[FieldChange]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for c in changes {
        let kind = match c.field.as_str() {
            "name" => "name_changed",
            "external_id" => "external_id_changed",
            "tags" => "tags_changed",
            f if f.starts_with("organization_fields.") => {
                // One event per changed custom field.
                let key = f.trim_start_matches("organization_fields.");
                out.push((
                    "zen:event-type:organization.custom_field_changed".to_string(),
                    json!({"current": c.new, "previous": c.old, "custom_field": {"key": key}}),
                ));
                continue;
            }
            _ => continue,
        };
        out.push((
            format!("zen:event-type:organization.{kind}"),
            json!({"current": c.new, "previous": c.old}),
        ));
    }
    out
}

impl Zd {
    /// Sends each event to every subscribed webhook and the configured URL, in the background.
    pub(crate) fn emit(self: &Arc<Self>, org: &Org, events: Vec<(String, Value)>) {
        if events.is_empty() {
            return;
        }
        let switches = self.switches();
        let mut targets: Vec<(String, String, String, Vec<String>)> = Vec::new();
        {
            let w = self.world.read().expect("world lock");
            for (id, hook) in &w.webhooks {
                if let Some(url) = hook.endpoint()
                    && hook.active()
                {
                    let types = events
                        .iter()
                        .filter(|(t, _)| hook.subscribed(t))
                        .map(|(t, _)| t.clone())
                        .collect::<Vec<_>>();
                    if !types.is_empty() {
                        targets.push((id.clone(), url.to_string(), hook.secret.clone(), types));
                    }
                }
            }
        }
        if let Some(url) = switches.webhook_url.clone() {
            let all = events.iter().map(|(t, _)| t.clone()).collect();
            targets.push(("sandbox".into(), url, switches.webhook_secret.clone(), all));
        }
        let detail = detail(org);
        for (type_, event) in events {
            let event_id = self.next_counter();
            let body = json!({
                "type": type_,
                "account_id": self.opts.account_id,
                "subject": format!("zen:organization:{}", org.id),
                "id": format!("{:08x}-0000-4000-8000-{:012x}", event_id >> 16, event_id),
                "time": format_time(now_unix()),
                "zendesk_event_version": "2022-06-20",
                "detail": detail,
                "event": event,
            });
            let event_id = body["id"].as_str().unwrap_or_default().to_string();
            let body = serde_json::to_vec(&body).expect("json");
            for (hook_id, url, secret, types) in &targets {
                if !types.contains(&type_) {
                    continue;
                }
                let zd = self.clone();
                let delivery = Delivery {
                    hook_id: hook_id.clone(),
                    url: url.clone(),
                    secret: secret.clone(),
                    event_type: type_.clone(),
                    event_id: event_id.clone(),
                    body: body.clone(),
                };
                tokio::spawn(async move { zd.deliver(delivery).await });
            }
        }
    }

    pub(crate) fn next_counter(&self) -> u64 {
        let mut c = self.job_counter.lock().expect("counter lock");
        *c += 1;
        *c
    }

    /// One invocation: the first attempt and, with `webhook_retries` on, the retries a
    /// failure earns. The retry policy is read once, when the invocation starts.
    async fn deliver(&self, d: Delivery) {
        let switches = self.switches();
        let timeout = Duration::from_millis(switches.webhook_timeout_ms);
        let delays: &[u64] = if switches.webhook_retries {
            &switches.webhook_retry_delays_ms
        } else {
            &[]
        };
        let invocation = ulid(self.next_counter());
        for attempt in 1.. {
            // Signed afresh: a retry carries its own timestamp, so a receiver's replay window
            // counts from the attempt, not from the event.
            let timestamp = format_time(now_unix());
            let signature = sign(&d.secret, &timestamp, &d.body);
            let result = self
                .http
                .post(&d.url)
                .timeout(timeout)
                .header("content-type", "application/json")
                .header("x-zendesk-account-id", self.opts.account_id.to_string())
                .header("x-zendesk-webhook-id", &d.hook_id)
                .header("x-zendesk-webhook-invocation-id", &invocation)
                .header("x-zendesk-webhook-signature", &signature)
                .header("x-zendesk-webhook-signature-timestamp", &timestamp)
                .body(d.body.clone())
                .send()
                .await;
            let (outcome, failed) = match result {
                Ok(r) => {
                    let status = r.status();
                    (
                        json!({"status": status.as_u16()}),
                        status.is_server_error() || status.as_u16() == 429,
                    )
                }
                Err(e) => (
                    json!({"error": e.to_string(), "timed_out": e.is_timeout()}),
                    true,
                ),
            };
            let retry_in = if failed {
                delays.get(attempt - 1).copied()
            } else {
                None
            };
            self.deliveries
                .lock()
                .expect("deliveries lock")
                .push(json!({
                    "webhook_id": d.hook_id, "url": d.url, "type": d.event_type,
                    "event_id": d.event_id, "invocation_id": invocation, "attempt": attempt,
                    "timestamp": timestamp, "outcome": outcome, "retry_in_ms": retry_in,
                }));
            match retry_in {
                Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
                None => return,
            }
        }
    }
}

/// One event on its way to one webhook.
struct Delivery {
    hook_id: String,
    url: String,
    secret: String,
    event_type: String,
    /// The payload's `id`, the same on every attempt.
    event_id: String,
    body: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_then_body() {
        // Independent vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        // = f7bc83f4...; split across timestamp and body it must be the same MAC.
        let sig = sign("key", "The quick brown fox ", b"jumps over the lazy dog");
        assert_eq!(sig, "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg=");
        assert!(verify(
            "key",
            "The quick brown fox ",
            b"jumps over the lazy dog",
            &sig
        ));
        assert!(!verify(
            "other",
            "The quick brown fox ",
            b"jumps over the lazy dog",
            &sig
        ));
    }

    #[test]
    fn ulids_are_26_crockford_characters_and_distinct() {
        let (a, b) = (ulid(1), ulid(2));
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        );
    }

    use std::sync::Mutex;

    use axum::http::{HeaderMap, StatusCode};

    /// What a receiver does with each request, in turn (the last one repeats).
    #[derive(Clone, Copy)]
    enum Answer {
        Status(u16),
        /// Answers 200, but only after this many milliseconds.
        Late(u64),
    }

    type Seen = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

    /// A webhook receiver on loopback answering `script`, and what it was sent.
    async fn receiver(script: Vec<Answer>) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let sink = seen.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                let script = script.clone();
                async move {
                    let n = {
                        let mut s = sink.lock().unwrap();
                        s.push((headers, body.to_vec()));
                        s.len()
                    };
                    match script[(n - 1).min(script.len() - 1)] {
                        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
                        Answer::Late(ms) => {
                            tokio::time::sleep(Duration::from_millis(ms)).await;
                            StatusCode::OK
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    /// A simulator delivering every organization event to `url`, with `switches` merged in.
    fn simulator(url: &str, switches: Value) -> Arc<Zd> {
        let zd =
            Arc::new(Zd::new(super::super::ZendeskOptions::default(), Default::default()).unwrap());
        let mut s = serde_json::to_value(zd.switches()).unwrap();
        s["webhook_url"] = json!(url);
        for (k, v) in switches.as_object().unwrap() {
            s[k] = v.clone();
        }
        *zd.switches.write().unwrap() = serde_json::from_value(s).unwrap();
        zd
    }

    fn created(zd: &Arc<Zd>) {
        let org =
            Org::from_seed(&json!({"id": 42, "name": "Retried", "external_id": "k"}), 0).unwrap();
        zd.emit(
            &org,
            vec![("zen:event-type:organization.created".into(), json!({}))],
        );
    }

    /// The attempts logged once `n` of them are, in order.
    async fn attempts(zd: &Arc<Zd>, n: usize) -> Vec<Value> {
        for _ in 0..500 {
            let log = zd.deliveries.lock().unwrap().clone();
            if log.len() >= n {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "fewer than {n} attempts logged: {:?}",
            zd.deliveries.lock().unwrap()
        );
    }

    fn outcomes(log: &[Value]) -> Vec<Value> {
        log.iter().map(|a| a["outcome"].clone()).collect()
    }

    #[tokio::test]
    async fn a_failed_delivery_is_retried_with_the_same_event_signed_afresh_when_switched_on() {
        let (url, seen) = receiver(vec![
            Answer::Status(503),
            Answer::Status(429),
            Answer::Status(202),
        ])
        .await;
        let zd = simulator(
            &url,
            json!({"webhook_retries": true, "webhook_retry_delays_ms": [5, 5, 5]}),
        );
        created(&zd);
        let log = attempts(&zd, 3).await;
        assert_eq!(
            outcomes(&log),
            [
                json!({"status": 503}),
                json!({"status": 429}),
                json!({"status": 202})
            ]
        );
        assert_eq!(
            log.iter().map(|a| a["attempt"].clone()).collect::<Vec<_>>(),
            [json!(1), json!(2), json!(3)]
        );
        assert_eq!(
            log.iter()
                .map(|a| a["retry_in_ms"].clone())
                .collect::<Vec<_>>(),
            [json!(5), json!(5), Value::Null],
            "no retry after a success"
        );
        let got = seen.lock().unwrap().clone();
        assert_eq!(got.len(), 3);
        let secret = zd.switches().webhook_secret;
        for (i, (headers, body)) in got.iter().enumerate() {
            assert_eq!(body, &got[0].1, "every attempt sends the same body");
            assert_eq!(
                headers["x-zendesk-webhook-invocation-id"],
                got[0].0["x-zendesk-webhook-invocation-id"],
                "one invocation"
            );
            let ts = headers["x-zendesk-webhook-signature-timestamp"]
                .to_str()
                .unwrap();
            assert_eq!(ts, log[i]["timestamp"], "the attempt's own timestamp");
            assert!(verify(
                &secret,
                ts,
                body,
                headers["x-zendesk-webhook-signature"].to_str().unwrap()
            ));
        }
        let event: Value = serde_json::from_slice(&got[0].1).unwrap();
        assert!(log.iter().all(|a| a["event_id"] == event["id"]));
        // Nothing more arrives after the success.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(zd.deliveries.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn retries_stop_after_the_configured_delays_and_skip_other_client_errors() {
        let (url, seen) = receiver(vec![Answer::Status(500)]).await;
        let zd = simulator(
            &url,
            json!({"webhook_retries": true, "webhook_retry_delays_ms": [1, 1]}),
        );
        created(&zd);
        let log = attempts(&zd, 3).await;
        assert_eq!(outcomes(&log), vec![json!({"status": 500}); 3]);
        assert_eq!(log[2]["retry_in_ms"], Value::Null, "given up");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(seen.lock().unwrap().len(), 3);

        // A 4xx other than 429 is the receiver refusing the event: not retried.
        let (url, seen) = receiver(vec![Answer::Status(401)]).await;
        let zd = simulator(
            &url,
            json!({"webhook_retries": true, "webhook_retry_delays_ms": [1, 1]}),
        );
        created(&zd);
        let log = attempts(&zd, 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(outcomes(&log), [json!({"status": 401})]);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_timeout_or_a_refused_connection_is_retried_too() {
        let (url, seen) = receiver(vec![Answer::Late(2_000), Answer::Status(200)]).await;
        let zd = simulator(
            &url,
            json!({"webhook_retries": true, "webhook_retry_delays_ms": [1], "webhook_timeout_ms": 100}),
        );
        created(&zd);
        let log = attempts(&zd, 2).await;
        assert_eq!(log[0]["outcome"]["timed_out"], true, "{log:?}");
        assert_eq!(log[1]["outcome"], json!({"status": 200}));
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "the late answer's request arrived"
        );

        // Port 9 (discard) is closed on loopback: the connection is refused each time.
        let zd = simulator(
            "http://127.0.0.1:9/nowhere",
            json!({"webhook_retries": true, "webhook_retry_delays_ms": [1]}),
        );
        created(&zd);
        let log = attempts(&zd, 2).await;
        assert_eq!(log[0]["outcome"]["timed_out"], false);
        assert!(log.iter().all(|a| a["outcome"]["error"].is_string()));
        assert_eq!(log[1]["retry_in_ms"], Value::Null);
    }

    #[tokio::test]
    async fn switched_off_a_failed_delivery_is_one_attempt() {
        let (url, seen) = receiver(vec![Answer::Status(503)]).await;
        let zd = simulator(&url, json!({"webhook_retry_delays_ms": [1, 1]}));
        assert!(!zd.switches().webhook_retries, "off by default");
        created(&zd);
        let log = attempts(&zd, 1).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(outcomes(&log), [json!({"status": 503})]);
        assert_eq!(log[0]["retry_in_ms"], Value::Null);
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(zd.deliveries.lock().unwrap().len(), 1);
    }

    #[test]
    fn name_and_external_id_changes_become_events_but_domains_do_not() {
        let changes = vec![
            FieldChange {
                field: "name".into(),
                old: json!("A"),
                new: json!("B"),
            },
            FieldChange {
                field: "domain_names".into(),
                old: json!([]),
                new: json!(["a.com"]),
            },
            FieldChange {
                field: "external_id".into(),
                old: json!(null),
                new: json!("K"),
            },
        ];
        let ev = events_for_update(&changes);
        let types: Vec<_> = ev.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(
            types,
            vec![
                "zen:event-type:organization.name_changed",
                "zen:event-type:organization.external_id_changed"
            ]
        );
        assert_eq!(ev[0].1, json!({"current":"B","previous":"A"}));
    }
}
