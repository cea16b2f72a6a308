//! The Zendesk webhook path of intake (`POST /zendesk`, through the function URL handler, on
//! the in-memory stores): a request signed with the webhook secret is never refused as
//! unsigned and never crashes the handler; an unsigned or wrongly signed one is refused (401)
//! before it changes anything; what a request enqueues is well-formed; and a redelivery of the
//! same signed request (Zendesk retries) enqueues nothing new. No answer shows the secret.
#![no_main]

use std::sync::{Arc, LazyLock};

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use orglink_intake::zendesk::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook};
use orglink_intake::{HttpRequest, Intake, IntakeSecrets, http::handle_http};
use orglink_shared::aws::exceptions::MemoryExceptions;
use orglink_shared::aws::links::{LinkRecord, LinkStore, MemoryLinks};
use orglink_shared::aws::mirror::{MemoryMirror, MirroredOrg, OrgMirror};
use orglink_shared::aws::queue::{MemoryQueue, WorkQueue};
use orglink_shared::contract::Config;
use orglink_shared::credentials::Secret;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::signature::SigningSecrets;
use orglink_shared::sync_request::SyncRequest;

const NOW: i64 = 1_767_225_600;
const SECRET: &str = "zd-webhook-secret-for-fuzzing";
const ACCOUNTS: [&str; 2] = ["001D000000IRFmaIAH", "001D000000IomazIAB"];

static CONFIG: LazyLock<Config> = LazyLock::new(Config::embedded_default);
static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime")
});

type MemIntake = Intake<MemoryQueue, MemoryLinks, MemoryMirror, MemoryExceptions>;

/// An `external_id` as people and orglink write them.
#[derive(Debug, Arbitrary)]
enum Key {
    Account18(bool),
    Account15(bool),
    Lowercase(bool),
    Other(String),
}

impl Key {
    fn text(&self) -> String {
        let id = |second: &bool| ACCOUNTS[usize::from(*second)];
        match self {
            Key::Account18(b) => id(b).to_string(),
            Key::Account15(b) => id(b)[..15].to_string(),
            Key::Lowercase(b) => id(b).to_ascii_lowercase(),
            Key::Other(s) => s.clone(),
        }
    }
}

/// A body shaped like Zendesk's organization events, or anything at all.
#[derive(Debug, Arbitrary)]
enum Body {
    Raw(Vec<u8>),
    Shaped {
        /// 0..=4 picks an organization event, others a free type.
        kind: u8,
        free_type: String,
        id: String,
        org: u8,
        detail_id_text: Option<String>,
        name: Option<String>,
        key: Option<Key>,
        previous: Option<Option<Key>>,
        current: Option<Option<Key>>,
        updated_at: Option<String>,
    },
}

impl Body {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Body::Raw(b) => b.clone(),
            Body::Shaped {
                kind,
                free_type,
                id,
                org,
                detail_id_text,
                name,
                key,
                previous,
                current,
                updated_at,
            } => {
                let changes = [
                    "created",
                    "deleted",
                    "external_id_changed",
                    "name_changed",
                    "tags_changed",
                ];
                let event_type = match changes.get(usize::from(*kind)) {
                    Some(c) => format!("zen:event-type:organization.{c}"),
                    None => free_type.clone(),
                };
                let detail_id = detail_id_text
                    .clone()
                    .unwrap_or_else(|| (org % 3 + 1).to_string());
                let mut detail = json!({"id": detail_id});
                if let Some(n) = name {
                    detail["name"] = json!(n);
                }
                if let Some(k) = key {
                    detail["external_id"] = json!(k.text());
                }
                if let Some(u) = updated_at {
                    detail["updated_at"] = json!(u);
                }
                let mut event = json!({});
                if let Some(p) = previous {
                    event["previous"] = p.as_ref().map_or(Value::Null, |k| json!(k.text()));
                }
                if let Some(c) = current {
                    event["current"] = c.as_ref().map_or(Value::Null, |k| json!(k.text()));
                }
                json!({"type": event_type, "id": id, "account_id": 1, "time": "2026-01-01T00:00:00Z",
                       "zendesk_event_version": "2022-11-06", "subject": "zen:organization:1",
                       "detail": detail, "event": event})
                .to_string()
                .into_bytes()
            }
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input {
    body: Body,
    /// Seconds between the signature and intake's clock.
    age: i16,
    /// Organizations 1..=3 already mirrored, with a key.
    mirrored: [Option<Option<Key>>; 3],
    /// Accounts whose link record names organization 1..=3.
    linked: [Option<u8>; 2],
    /// A forged signature header.
    forged: String,
}

fn intake() -> MemIntake {
    let secrets = IntakeSecrets {
        salesforce: SigningSecrets::new(Secret::new("sf-secret-unused-here"), None),
        zendesk_webhook: Some(SigningSecrets::new(Secret::new(SECRET), None)),
    };
    Intake::new(
        MemoryQueue::new(30, 5),
        MemoryLinks::default(),
        MemoryMirror::default(),
        MemoryExceptions::default(),
        CONFIG.clone(),
        secrets,
    )
    .with_clock(Arc::new(|| {
        OffsetDateTime::from_unix_timestamp(NOW).expect("a time")
    }))
}

/// Everything on the queue (taken off it), as (group id, dedup id, request).
async fn drain(intake: &MemIntake) -> Vec<(String, String, SyncRequest)> {
    let mut out = Vec::new();
    loop {
        let got = intake
            .queue
            .receive(10, Some(600))
            .await
            .expect("memory queue");
        if got.is_empty() {
            return out;
        }
        for m in got {
            intake
                .queue
                .delete(&m.receipt_handle)
                .await
                .expect("memory queue");
            let request = SyncRequest::from_body(&m.body).unwrap_or_else(|e| {
                panic!(
                    "intake enqueued a body the worker cannot read: {e}\n{}",
                    m.body
                )
            });
            out.push((
                m.group_id.expect("FIFO group"),
                m.dedup_id.expect("dedup id"),
                request,
            ));
        }
    }
}

fn post(body: &[u8], signature: &str, timestamp: &str) -> HttpRequest {
    HttpRequest::post("/zendesk", body.to_vec())
        .header(SIGNATURE_HEADER, signature)
        .header(TIMESTAMP_HEADER, timestamp)
}

fn check_answer(answer: &Value) {
    let text = answer.to_string();
    assert!(
        !text.contains(SECRET),
        "an answer shows the webhook secret: {text}"
    );
}

fuzz_target!(|input: Input| {
    RUNTIME.block_on(async {
        let intake = intake();
        for (i, seeded) in input.mirrored.iter().enumerate() {
            if let Some(key) = seeded {
                let org = OrgId::new(i as u64 + 1).expect("positive");
                let m = MirroredOrg::new(
                    org,
                    format!("Org {i}"),
                    key.as_ref().map(Key::text),
                    ["acme.com"],
                    None,
                );
                intake.mirror.upsert(&m).await.expect("memory mirror");
            }
        }
        for (account, org) in ACCOUNTS.iter().zip(input.linked) {
            if let Some(o) = org {
                let mut record = LinkRecord::new(AccountId::parse(account).expect("valid"));
                record.org = Some(OrgId::new(u64::from(o % 3) + 1).expect("positive"));
                intake.links.save(&record).await.expect("memory links");
            }
        }

        let body = input.body.bytes();
        let signed_at =
            OffsetDateTime::from_unix_timestamp(NOW - i64::from(input.age)).expect("a time");
        let timestamp = signed_at.format(&Rfc3339).expect("formats");
        let signature = sign_webhook(&Secret::new(SECRET), &timestamp, &body);

        // A forged signature is refused before anything happens.
        if input.forged.trim() != signature {
            let r = handle_http(post(&body, &input.forged, &timestamp), &intake).await;
            check_answer(&r.body);
            assert_eq!(
                r.status, 401,
                "a forged signature got {}: {}",
                r.status, r.body
            );
            assert!(drain(&intake).await.is_empty(), "a forged request enqueued");
        }
        // Missing headers too.
        let bare = handle_http(HttpRequest::post("/zendesk", body.clone()), &intake).await;
        assert_eq!(bare.status, 401);

        let r = handle_http(post(&body, &signature, &timestamp), &intake).await;
        check_answer(&r.body);
        let within = i64::from(input.age).abs() <= 300;
        if !within {
            assert_eq!(
                r.status, 401,
                "a stale webhook got {}: {}",
                r.status, r.body
            );
            return;
        }
        assert!(
            matches!(r.status, 202 | 400),
            "a signed webhook got {}: {}",
            r.status,
            r.body
        );
        let first = drain(&intake).await;
        for (group, dedup, request) in &first {
            assert_eq!(
                group,
                request.account_id.as_str(),
                "the FIFO group is the account"
            );
            assert!(dedup.len() <= 128, "a dedup id SQS refuses: {dedup}");
            assert!(
                ACCOUNTS.contains(&request.account_id.as_str()),
                "an account from nowhere"
            );
        }

        // Zendesk redelivers on a timeout: the same request again enqueues nothing new.
        let again = handle_http(post(&body, &signature, &timestamp), &intake).await;
        check_answer(&again.body);
        assert_eq!(
            again.status, r.status,
            "a redelivery was answered differently: {}",
            again.body
        );
        let second = drain(&intake).await;
        assert!(
            second.is_empty(),
            "a redelivery enqueued {} more: {:?}\nfirst: {:?}",
            second.len(),
            second.iter().map(|(_, d, _)| d).collect::<Vec<_>>(),
            first.iter().map(|(_, d, _)| d).collect::<Vec<_>>()
        );
    });
});
