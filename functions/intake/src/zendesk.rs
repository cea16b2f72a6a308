//! `POST /zendesk`: Zendesk organization webhooks.
//!
//! Signature (Zendesk's scheme): `X-Zendesk-Webhook-Signature` =
//! base64(HMAC-SHA256(signing secret, `X-Zendesk-Webhook-Signature-Timestamp` + raw body)),
//! the timestamp an ISO-8601 string. Zendesk prescribes no window; intake applies the same
//! 5 minutes as for Salesforce.
//!
//! Every organization event updates the org mirror (the payload carries name and
//! external_id, not domains: the mirror keeps the domains it had). Then:
//! - a deletion becomes a sync request for the account named by the org's key (or the
//!   mirror's copy of it): its link is gone and the worker re-resolves it;
//! - a hand-made key change becomes a sync request for the account that lost the key and the
//!   one that gained it — or an exception when a linked org's key was replaced by a value
//!   that is no Account id (never ours to overwrite silently);
//! - a change matching what orglink itself wrote (the link record names this org for the
//!   key's account; the name orglink last wrote) is an echo and is dropped;
//! - anything else (renames by hand, tags, custom fields, other event types) is ignored with
//!   the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use orglink_shared::aws::{
    ExceptionStore, LinkStore, MirroredOrg, OrgMirror, StoreError, UpsertOutcome, WorkQueue,
};
use orglink_shared::contract::EventKind;
use orglink_shared::credentials::Secret;
use orglink_shared::exceptions::{Action, Evidence, ExceptionKind, Finding};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::model::{OrgKey, classify_key};
use orglink_shared::signature::{EventId, MAX_BODY_BYTES, SecretUsed, SigningSecrets};
use orglink_shared::sync_request::{RequestSource, SyncRequest};

use crate::http::{HttpRequest, HttpResponse, refused};
use crate::{EventResult, Intake, Outcome, Summary, epoch_ms};

pub const SIGNATURE_HEADER: &str = "X-Zendesk-Webhook-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Zendesk-Webhook-Signature-Timestamp";

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook's signature was refused (401). None carries the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebhookSignatureError {
    #[error(
        "intake has no Zendesk webhook signing secret configured: set zendesk_webhook in the intake secret"
    )]
    NotConfigured,
    #[error("the request has no {0} header: only the orglink Zendesk webhook may call /zendesk")]
    Missing(&'static str),
    #[error("the {TIMESTAMP_HEADER} header is not an ISO-8601 timestamp")]
    BadTimestamp,
    #[error("the {SIGNATURE_HEADER} header is not base64 of a 32-byte HMAC-SHA256")]
    Malformed,
    #[error(
        "the signature matches no configured webhook secret: the webhook's signing secret differs from intake's, or the body was altered"
    )]
    Mismatch,
    #[error(
        "the webhook was signed {age_seconds} s ago, beyond the {tolerance_seconds} s tolerance: a replay, or a late retry"
    )]
    Stale {
        age_seconds: i64,
        tolerance_seconds: u64,
    },
    #[error(
        "the webhook is dated {ahead_seconds} s in the future, beyond the {tolerance_seconds} s tolerance"
    )]
    FromFuture {
        ahead_seconds: i64,
        tolerance_seconds: u64,
    },
}

fn mac(secret: &Secret, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // The signing secret string is the key, verbatim (Zendesk's own examples do so).
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.as_bytes());
    mac.update(body);
    mac
}

/// The signature header Zendesk sends for `body` at `timestamp` (the header's raw text).
pub fn sign_webhook(secret: &Secret, timestamp: &str, body: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(mac(secret, timestamp, body).finalize().into_bytes())
}

/// Checks a webhook's signature and then its timestamp against `now`.
pub fn verify_webhook(
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
    secrets: Option<&SigningSecrets>,
    tolerance: Duration,
) -> Result<SecretUsed, WebhookSignatureError> {
    let secrets = secrets.ok_or(WebhookSignatureError::NotConfigured)?;
    let signature = signature.ok_or(WebhookSignatureError::Missing(SIGNATURE_HEADER))?;
    let timestamp = timestamp.ok_or(WebhookSignatureError::Missing(TIMESTAMP_HEADER))?;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| WebhookSignatureError::Malformed)?;
    if sig.len() != 32 {
        return Err(WebhookSignatureError::Malformed);
    }
    let candidates = [
        Some((&secrets.current, SecretUsed::Current)),
        secrets.previous.as_ref().map(|s| (s, SecretUsed::Previous)),
    ];
    let used = candidates
        .into_iter()
        .flatten()
        // verify_slice compares in constant time.
        .find(|(secret, _)| mac(secret, timestamp, body).verify_slice(&sig).is_ok())
        .map(|(_, used)| used)
        .ok_or(WebhookSignatureError::Mismatch)?;
    let signed_at = OffsetDateTime::parse(timestamp.trim(), &Rfc3339)
        .map_err(|_| WebhookSignatureError::BadTimestamp)?;
    let tolerance_seconds = tolerance.as_secs();
    let tol = i64::try_from(tolerance_seconds).unwrap_or(i64::MAX);
    let age = (now - signed_at).whole_seconds();
    if age > tol {
        return Err(WebhookSignatureError::Stale {
            age_seconds: age,
            tolerance_seconds,
        });
    }
    if age < -tol {
        return Err(WebhookSignatureError::FromFuture {
            ahead_seconds: -age,
            tolerance_seconds,
        });
    }
    Ok(used)
}

/// The parts of a Zendesk event payload intake reads.
#[derive(Debug, Clone, PartialEq)]
struct Webhook {
    event_type: String,
    event_id: EventId,
    detail: Value,
    event: Value,
}

fn parse_webhook(body: &[u8]) -> Result<Webhook, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let obj = value.as_object().ok_or("the body must be a JSON object")?;
    let text = |field: &str| -> Result<String, String> {
        match obj.get(field) {
            None | Some(Value::Null) => Err(format!("field `{field}` is missing")),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(format!("field `{field}` must be a string")),
        }
    };
    let event_type = text("type")?;
    let id = text("id")?;
    let event_id =
        EventId::parse(&format!("zd:{id}")).map_err(|reason| format!("field `id` {reason}"))?;
    Ok(Webhook {
        event_type,
        event_id,
        detail: obj.get("detail").cloned().unwrap_or(Value::Null),
        event: obj.get("event").cloned().unwrap_or(Value::Null),
    })
}

/// A string field that may be absent or null.
fn opt_str(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

const ORG_EVENT_PREFIX: &str = "zen:event-type:organization.";

pub async fn handle<Q, L, M, E>(request: &HttpRequest, intake: &Intake<Q, L, M, E>) -> HttpResponse
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    if request.body.len() > MAX_BODY_BYTES {
        return refused(
            400,
            format!(
                "the body is {} bytes, over the {MAX_BODY_BYTES}-byte limit",
                request.body.len()
            ),
        );
    }
    let now = intake.now();
    if let Err(e) = verify_webhook(
        request.get_header(SIGNATURE_HEADER),
        request.get_header(TIMESTAMP_HEADER),
        &request.body,
        now,
        intake.secrets.zendesk_webhook.as_ref(),
        intake.tolerance,
    ) {
        return refused(401, e.to_string());
    }
    let webhook = match parse_webhook(&request.body) {
        Ok(w) => w,
        Err(e) => return refused(400, e),
    };
    let Some(change) = webhook.event_type.strip_prefix(ORG_EVENT_PREFIX) else {
        let result = EventResult::new(webhook.event_id.as_str(), Outcome::Ignored).reason(format!(
            "{} is not an organization event",
            webhook.event_type
        ));
        let summary = Summary::new(RequestSource::ZendeskWebhook, vec![result]);
        summary.log();
        return HttpResponse::json(202, json!(summary));
    };
    let org_text = opt_str(&webhook.detail, "/id").unwrap_or_default();
    let org = match OrgId::parse(&org_text) {
        Ok(o) => o,
        Err(e) => return refused(400, format!("field `detail.id`: {e}")),
    };
    let store_failed = |e: StoreError| {
        // Zendesk may retry a failed delivery; the sends, exception upserts and the mirror
        // write are idempotent.
        tracing::error!(error = %e, outcome = "failed", "state store failed");
        HttpResponse::error(503, format!("a state store failed ({e}); retry"))
    };
    let (planned, mut done, mirror_change) =
        match organization_event(intake, &webhook, change, org, now).await {
            Ok(decided) => decided,
            Err(e) => return store_failed(e),
        };
    let results = match intake.enqueue(planned).await {
        Ok(results) => results,
        Err(e) => {
            tracing::error!(error = %e, outcome = "failed", "enqueue failed");
            return HttpResponse::error(503, e.to_string());
        }
    };
    // The mirror changes last: a retried delivery after a failure above must still find the
    // organization's previous key there (a deleted org's account, the account a key change
    // took the key from), or the retry would find nothing to do and the event would be lost.
    let mirror = match apply_mirror_change(intake, mirror_change).await {
        Ok(m) => m,
        Err(e) => return store_failed(e),
    };
    done.extend(results);
    let mut summary = Summary::new(RequestSource::ZendeskWebhook, done);
    summary.mirror = Some(mirror);
    summary.log();
    HttpResponse::json(202, json!(summary))
}

/// What an organization event does to the org mirror, applied once everything else the event
/// does has been stored.
enum MirrorChange {
    Delete(OrgId),
    Upsert(MirroredOrg),
}

async fn apply_mirror_change<Q, L, M, E>(
    intake: &Intake<Q, L, M, E>,
    change: MirrorChange,
) -> Result<&'static str, StoreError>
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    Ok(match change {
        MirrorChange::Delete(org) => {
            intake.mirror.delete(org).await?;
            "deleted"
        }
        MirrorChange::Upsert(row) => match intake.mirror.upsert(&row).await? {
            UpsertOutcome::Written => "written",
            UpsertOutcome::Stale => "stale",
        },
    })
}

type Planned = Vec<(SyncRequest, EventResult)>;

/// Decides what one organization event does; returns the sync requests to send, the results
/// already final (ignored, echoes, exceptions; their exception rows already written) and the
/// change to make to the mirror once the requests are sent.
async fn organization_event<Q, L, M, E>(
    intake: &Intake<Q, L, M, E>,
    webhook: &Webhook,
    change: &str,
    org: OrgId,
    now: OffsetDateTime,
) -> Result<(Planned, Vec<EventResult>, MirrorChange), StoreError>
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    let event_id = webhook.event_id.as_str();
    let base = || EventResult::new(event_id, Outcome::Ignored).org(org);
    let request = |account: &AccountId, kind: EventKind, note: String| {
        let req = SyncRequest {
            account_id: account.clone(),
            event_id: event_id.to_string(),
            kind,
            source: RequestSource::ZendeskWebhook,
            occurred_at: now,
            account_modstamp: None,
            org_id: Some(org),
            note: Some(note.clone()),
        };
        let result = EventResult {
            outcome: Outcome::Enqueued,
            ..base()
        }
        .account(account)
        .reason(note);
        (req, result)
    };
    let detail_key = opt_str(&webhook.detail, "/external_id");
    let existing = intake.mirror.get(org).await?;

    if change == "deleted" {
        let mut accounts: Vec<AccountId> = Vec::new();
        for key in [
            detail_key.as_deref(),
            existing.as_ref().and_then(|e| e.external_id.as_deref()),
        ] {
            if let Some(a) = classify_key(key).account()
                && !accounts.contains(a)
            {
                accounts.push(a.clone());
            }
        }
        if accounts.is_empty() {
            return Ok((vec![], vec![base().reason(format!(
                "organization {org} was deleted, but it carried no account key: no account is linked to it"
            ))], MirrorChange::Delete(org)));
        }
        let planned = accounts
            .iter()
            .map(|a| {
                request(
                    a,
                    EventKind::ReconcileRepair,
                    format!("organization {org} was deleted in Zendesk"),
                )
            })
            .collect();
        return Ok((planned, vec![], MirrorChange::Delete(org)));
    }

    // Every other organization event.
    let current_key = if change == "external_id_changed" {
        match webhook.event.get("current") {
            // The change payload's shape is UNVERIFIED for organizations: fall back on detail.
            Some(v) if v.is_string() || v.is_null() => v.as_str().map(str::to_string),
            _ => detail_key.clone(),
        }
    } else if change != "created" && webhook.detail.get("external_id").is_none() {
        // A payload that leaves the key out says nothing about it: keep the mirrored one
        // (an explicit null does clear it).
        existing.as_ref().and_then(|e| e.external_id.clone())
    } else {
        detail_key.clone()
    };
    let name = opt_str(&webhook.detail, "/name")
        .or_else(|| existing.as_ref().map(|e| e.name.clone()))
        .unwrap_or_default();
    let domains = existing
        .as_ref()
        .map(|e| e.domains.clone())
        .unwrap_or_default();
    let mirrored = MirroredOrg::new(
        org,
        name.clone(),
        current_key.clone(),
        domains,
        opt_str(&webhook.detail, "/updated_at"),
    );
    let mirror = MirrorChange::Upsert(mirrored);
    let linked_here = |account: AccountId| async move {
        intake
            .links
            .get(&account)
            .await
            .map(|r| r.filter(|r| r.org == Some(org)))
    };

    match change {
        "created" | "external_id_changed" => {
            let previous_key = if change == "external_id_changed" {
                webhook
                    .event
                    .get("previous")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| existing.as_ref().and_then(|e| e.external_id.clone()))
            } else {
                None
            };
            let current = classify_key(current_key.as_deref());
            let previous = classify_key(previous_key.as_deref());
            if let Some(c) = current.account()
                && linked_here(c.clone()).await?.is_some()
            {
                return Ok((vec![], vec![EventResult { outcome: Outcome::EchoDropped, ..base() }
                    .account(c)
                    .reason(format!("orglink set this key: the link record of {c} names organization {org}"))], mirror));
            }
            let gained = current.account().cloned();
            let lost = previous.account().filter(|p| Some(*p) != gained.as_ref()).cloned();
            if let (Some(p), OrgKey::Foreign(value)) = (&lost, &current)
                && linked_here(p.clone()).await?.is_some()
            {
                let evidence = Evidence::new()
                    .with("previous_external_id", previous_key.clone().unwrap_or_default())
                    .with("current_external_id", value)
                    .with("zendesk_event", event_id);
                let finding = Finding::new(ExceptionKind::KeyConflict, [p.clone()], [org])
                    .with_evidence(evidence)
                    .with_actions(vec![Action::CreateNewOrg { account: p.clone() }, Action::FixByHand]);
                let names = BTreeMap::from([(org.to_string(), name.clone())]);
                let row = intake.exceptions.upsert(&finding, &names, epoch_ms(now)).await?;
                return Ok((vec![], vec![EventResult { outcome: Outcome::Exception, ..base() }
                    .account(p)
                    .reason(format!(
                        "a person replaced the key of organization {org} (linked to {p}) with {value:?}, which is no Account id: exception {}",
                        row.fingerprint
                    ))], mirror));
            }
            let mut planned = Vec::new();
            if let Some(p) = &lost {
                planned.push(request(p, EventKind::ReconcileRepair, format!(
                    "organization {org} lost this account's key in Zendesk (now {:?})", current_key.as_deref().unwrap_or("")
                )));
            }
            if let Some(c) = &gained {
                planned.push(request(c, EventKind::Manual, format!(
                    "organization {org} was given this account's key by hand in Zendesk"
                )));
            }
            if planned.is_empty() {
                let why = if change == "created" {
                    "a new organization without an account key: nothing to sync".to_string()
                } else {
                    "neither the old nor the new external_id is an Account id".to_string()
                };
                return Ok((vec![], vec![base().reason(why)], mirror));
            }
            Ok((planned, vec![], mirror))
        }
        "name_changed" => {
            if let Some(a) = classify_key(current_key.as_deref()).account()
                && let Some(record) = linked_here(a.clone()).await?
                && record.written_zendesk.name.as_deref() == Some(name.as_str())
            {
                return Ok((vec![], vec![EventResult { outcome: Outcome::EchoDropped, ..base() }
                    .account(a)
                    .reason("orglink wrote this name")], mirror));
            }
            Ok((vec![], vec![base().reason(
                "a rename in Zendesk: the name mirrors the account's, so the next sync renames it back and reconcile reports the drift",
            )], mirror))
        }
        "tags_changed" | "custom_field_changed" => Ok((vec![], vec![base().reason(
            "tags and custom fields are not mirrored: orglink only adds its own and never removes support's",
        )], mirror)),
        other => Ok((vec![], vec![base().reason(format!("organization.{other} is not an event orglink acts on"))], mirror)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use orglink_shared::aws::ExceptionFilter;
    use orglink_shared::aws::LinkRecord;
    use orglink_shared::aws::exceptions::ExceptionStatus;

    const A: &str = "001D000000IRFmaIAH";
    const B: &str = "001D000000IomazIAB";
    const ORG: u64 = 6_607_619_104_125;

    fn stamp(t: i64) -> String {
        OffsetDateTime::from_unix_timestamp(t)
            .unwrap()
            .format(&Rfc3339)
            .unwrap()
    }

    fn webhook(kind: &str, id: &str, detail: Value, event: Value) -> String {
        json!({
            "type": format!("zen:event-type:organization.{kind}"), "account_id": 10973248,
            "subject": format!("zen:organization:{ORG}"), "id": id, "time": "2026-01-01T00:00:00Z",
            "zendesk_event_version": "2022-06-20", "detail": detail, "event": event,
        })
        .to_string()
    }

    fn detail(key: Option<&str>, name: &str) -> Value {
        json!({"id": ORG.to_string(), "external_id": key, "name": name, "group_id": null,
               "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
               "shared_comments": false, "shared_tickets": false})
    }

    fn signed(body: &str, t: i64, secret: &str) -> HttpRequest {
        let ts = stamp(t);
        HttpRequest::post("/zendesk", body)
            .header(
                SIGNATURE_HEADER,
                sign_webhook(&Secret::new(secret), &ts, body.as_bytes()),
            )
            .header(TIMESTAMP_HEADER, ts)
    }

    async fn send(intake: &MemIntake, body: &str) -> HttpResponse {
        crate::http::handle_http(signed(body, NOW, ZD_SECRET), intake).await
    }

    async fn link(intake: &MemIntake, account: &str, name: &str) {
        let mut r = LinkRecord::new(AccountId::parse(account).unwrap());
        r.org = Some(OrgId::new(ORG).unwrap());
        r.written_zendesk.name = Some(name.into());
        r.synced_modstamp_ms = Some(1);
        intake.links.save(&r).await.unwrap();
    }

    #[test]
    fn zendesk_signature_scheme() {
        // An independent computation: base64(HMAC-SHA256(secret, timestamp + body)).
        let mut m = HmacSha256::new_from_slice(b"s3cret").unwrap();
        m.update(b"2021-03-25T05:09:27Z{\"a\":1}");
        let expected = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
        assert_eq!(
            sign_webhook(&Secret::new("s3cret"), "2021-03-25T05:09:27Z", b"{\"a\":1}"),
            expected
        );
        let secrets = SigningSecrets::new(Secret::new("s3cret"), Some(Secret::new("old")));
        let at = OffsetDateTime::parse("2021-03-25T05:09:27Z", &Rfc3339).unwrap();
        let tol = Duration::from_secs(300);
        let ok = |sig: &str, ts: &str, body: &[u8], now| {
            verify_webhook(Some(sig), Some(ts), body, now, Some(&secrets), tol)
        };
        assert_eq!(
            ok(&expected, "2021-03-25T05:09:27Z", b"{\"a\":1}", at),
            Ok(SecretUsed::Current)
        );
        let by_old = sign_webhook(&Secret::new("old"), "2021-03-25T05:09:27Z", b"x");
        assert_eq!(
            ok(&by_old, "2021-03-25T05:09:27Z", b"x", at),
            Ok(SecretUsed::Previous)
        );
        assert_eq!(
            ok(&expected, "2021-03-25T05:09:27Z", b"{\"a\":2}", at),
            Err(WebhookSignatureError::Mismatch)
        );
        // The timestamp is signed: moving it breaks the signature before the window is looked at.
        assert_eq!(
            ok(&expected, "2021-03-25T05:09:28Z", b"{\"a\":1}", at),
            Err(WebhookSignatureError::Mismatch)
        );
        assert!(matches!(
            ok(
                &expected,
                "2021-03-25T05:09:27Z",
                b"{\"a\":1}",
                at + time::Duration::seconds(301)
            ),
            Err(WebhookSignatureError::Stale {
                age_seconds: 301,
                ..
            })
        ));
        assert!(matches!(
            ok(
                &expected,
                "2021-03-25T05:09:27Z",
                b"{\"a\":1}",
                at - time::Duration::seconds(301)
            ),
            Err(WebhookSignatureError::FromFuture {
                ahead_seconds: 301,
                ..
            })
        ));
        assert_eq!(
            ok("not base64!", "t", b"", at),
            Err(WebhookSignatureError::Malformed)
        );
        assert_eq!(
            verify_webhook(None, Some("t"), b"", at, Some(&secrets), tol),
            Err(WebhookSignatureError::Missing(SIGNATURE_HEADER))
        );
        assert_eq!(
            verify_webhook(Some(&expected), None, b"", at, Some(&secrets), tol),
            Err(WebhookSignatureError::Missing(TIMESTAMP_HEADER))
        );
        assert_eq!(
            verify_webhook(Some(&expected), Some("t"), b"", at, None, tol),
            Err(WebhookSignatureError::NotConfigured)
        );
        let unix_ts = sign_webhook(&Secret::new("s3cret"), "1616649000", b"x");
        assert_eq!(
            ok(&unix_ts, "1616649000", b"x", at),
            Err(WebhookSignatureError::BadTimestamp)
        );
    }

    #[tokio::test]
    async fn a_deletion_becomes_a_sync_request_for_the_linked_account() {
        let intake = intake();
        link(&intake, A, "Acme").await;
        intake
            .mirror
            .upsert(&MirroredOrg::new(
                OrgId::new(ORG).unwrap(),
                "Acme",
                Some(A.into()),
                ["acme.com"],
                None,
            ))
            .await
            .unwrap();
        // The deletion payload may lack the key: the mirror's copy names the account.
        let r = send(
            &intake,
            &webhook("deleted", "d-1", detail(None, "Acme"), json!({})),
        )
        .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(r.body["enqueued"], 1);
        assert_eq!(r.body["mirror"], "deleted");
        assert!(
            intake
                .mirror
                .get(OrgId::new(ORG).unwrap())
                .await
                .unwrap()
                .is_none()
        );
        let q = drain(&intake).await;
        assert_eq!(q.len(), 1);
        assert_eq!(q[0].0.account_id.as_str(), A);
        assert_eq!(q[0].0.kind, EventKind::ReconcileRepair);
        assert_eq!(q[0].0.event_id, "zd:d-1");
        assert_eq!(q[0].0.org_id, Some(OrgId::new(ORG).unwrap()));
        // An org nobody's key named: ignored, with the reason.
        let r = send(
            &intake,
            &webhook("deleted", "d-2", detail(Some("legacy-7"), "Old"), json!({})),
        )
        .await;
        assert_eq!(r.body["ignored"], 1);
        assert!(
            r.body["results"][0]["reason"]
                .as_str()
                .unwrap()
                .contains("no account key")
        );
        assert!(drain(&intake).await.is_empty());
    }

    #[tokio::test]
    async fn key_changes_echoes_and_exceptions() {
        let intake = intake();
        // orglink keyed the org to A (the link record says so): an echo.
        link(&intake, A, "Acme").await;
        let r = send(
            &intake,
            &webhook(
                "external_id_changed",
                "k-1",
                detail(Some(A), "Acme"),
                json!({"previous": null, "current": A}),
            ),
        )
        .await;
        assert_eq!(r.body["echoes_dropped"], 1, "{:?}", r.body);
        assert_eq!(
            intake
                .mirror
                .get(OrgId::new(ORG).unwrap())
                .await
                .unwrap()
                .unwrap()
                .external_id
                .as_deref(),
            Some(A)
        );
        // A person moves the key to B: both accounts re-sync.
        let r = send(
            &intake,
            &webhook(
                "external_id_changed",
                "k-2",
                detail(Some(B), "Acme"),
                json!({"previous": A, "current": B}),
            ),
        )
        .await;
        assert_eq!(r.body["enqueued"], 2, "{:?}", r.body);
        let q = drain(&intake).await;
        let accounts: Vec<_> = q
            .iter()
            .map(|m| (m.0.account_id.as_str().to_string(), m.0.kind))
            .collect();
        assert_eq!(
            accounts,
            vec![
                (A.to_string(), EventKind::ReconcileRepair),
                (B.to_string(), EventKind::Manual)
            ]
        );
        // A person replaces A's key on its linked org with something foreign: an exception.
        let r = send(
            &intake,
            &webhook(
                "external_id_changed",
                "k-3",
                detail(Some("crm-42"), "Acme"),
                json!({"previous": A, "current": "crm-42"}),
            ),
        )
        .await;
        assert_eq!(r.body["exceptions"], 1, "{:?}", r.body);
        assert!(drain(&intake).await.is_empty());
        let rows = intake
            .exceptions
            .list(&ExceptionFilter::status(ExceptionStatus::Open))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kind(), ExceptionKind::KeyConflict);
        assert_eq!(
            rows[0].finding.evidence.get("current_external_id").unwrap(),
            ["crm-42"]
        );
        // A change between two foreign values concerns no account.
        let r = send(
            &intake,
            &webhook(
                "external_id_changed",
                "k-4",
                detail(Some("x"), "Acme"),
                json!({"previous": "y", "current": "x"}),
            ),
        )
        .await;
        assert_eq!(r.body["ignored"], 1);
    }

    #[tokio::test]
    async fn renames_creations_and_other_events() {
        let intake = intake();
        link(&intake, A, "Acme Corp").await;
        intake
            .mirror
            .upsert(&MirroredOrg::new(
                OrgId::new(ORG).unwrap(),
                "Old",
                Some(A.into()),
                ["acme.com"],
                None,
            ))
            .await
            .unwrap();
        let r = send(
            &intake,
            &webhook(
                "name_changed",
                "n-1",
                detail(Some(A), "Acme Corp"),
                json!({"previous": "Old", "current": "Acme Corp"}),
            ),
        )
        .await;
        assert_eq!(r.body["echoes_dropped"], 1, "{:?}", r.body);
        let m = intake
            .mirror
            .get(OrgId::new(ORG).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(m.name, "Acme Corp");
        assert_eq!(
            m.domains,
            vec!["acme.com"],
            "the webhook carries no domains: the mirror keeps its own"
        );
        let r = send(
            &intake,
            &webhook(
                "name_changed",
                "n-2",
                detail(Some(A), "Hand Made"),
                json!({}),
            ),
        )
        .await;
        assert_eq!(r.body["ignored"], 1);
        // Created by hand with B's key: B re-syncs (a person linked it).
        let r = send(
            &intake,
            &webhook("created", "c-1", detail(Some(B), "Beta"), json!({})),
        )
        .await;
        assert_eq!(r.body["enqueued"], 1, "{:?}", r.body);
        assert_eq!(drain(&intake).await[0].0.account_id.as_str(), B);
        for (kind, id) in [("tags_changed", "t-1"), ("custom_field_changed", "f-1")] {
            let r = send(
                &intake,
                &webhook(kind, id, detail(Some(A), "Acme Corp"), json!({})),
            )
            .await;
            assert_eq!(r.body["ignored"], 1, "{kind}");
        }
        let user = json!({"type": "zen:event-type:user.active_changed", "id": "u-1", "detail": {"id": "5"}}).to_string();
        let r = send(&intake, &user).await;
        assert_eq!(r.body["ignored"], 1);
        assert!(drain(&intake).await.is_empty());
    }

    #[tokio::test]
    async fn bad_webhooks_are_refused() {
        let intake = intake();
        let good = webhook("deleted", "d-1", detail(Some(A), "Acme"), json!({}));
        let cases = [
            (signed(&good, NOW, "forged"), 401, "matches no configured"),
            (signed(&good, NOW - 301, ZD_SECRET), 401, "beyond the 300 s"),
            (signed(&good, NOW + 301, ZD_SECRET), 401, "in the future"),
            (
                HttpRequest::post("/zendesk", good.clone()),
                401,
                "no X-Zendesk-Webhook-Signature",
            ),
            (signed("[1]", NOW, ZD_SECRET), 400, "must be a JSON object"),
            (signed("{", NOW, ZD_SECRET), 400, "not JSON"),
            (
                signed(&good.replace("\"id\":\"d-1\",", ""), NOW, ZD_SECRET),
                400,
                "field `id` is missing",
            ),
            (
                signed(
                    &webhook("deleted", "d-1", json!({"id": "x"}), json!({})),
                    NOW,
                    ZD_SECRET,
                ),
                400,
                "detail.id",
            ),
            (
                signed(&" ".repeat(MAX_BODY_BYTES + 1), NOW, ZD_SECRET),
                400,
                "over the",
            ),
        ];
        for (request, status, says) in cases {
            let r = crate::http::handle_http(request, &intake).await;
            assert_eq!(r.status, status, "{says}: {:?}", r.body);
            assert!(
                r.error_message().unwrap().contains(says),
                "{:?} lacks {says}",
                r.body
            );
        }
        assert!(drain(&intake).await.is_empty());
        let mut unconfigured = crate::testing::intake();
        unconfigured.secrets.zendesk_webhook = None;
        let r = crate::http::handle_http(signed(&good, NOW, ZD_SECRET), &unconfigured).await;
        assert_eq!(r.status, 401);
    }

    /// The in-memory queue, refusing every send while `refuse` is set (SQS unavailable).
    struct RefusingQueue {
        inner: orglink_shared::aws::queue::MemoryQueue,
        refuse: std::sync::atomic::AtomicBool,
    }

    impl RefusingQueue {
        fn check(&self) -> Result<(), StoreError> {
            if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Transient {
                    service: "SQS",
                    detail: "refused by the test".into(),
                });
            }
            Ok(())
        }
    }

    impl WorkQueue for RefusingQueue {
        async fn send(&self, m: &orglink_shared::aws::QueueMessage) -> Result<(), StoreError> {
            self.check()?;
            self.inner.send(m).await
        }
        async fn send_batch(
            &self,
            m: &[orglink_shared::aws::QueueMessage],
        ) -> Result<Vec<orglink_shared::aws::queue::BatchFailure>, StoreError> {
            self.check()?;
            self.inner.send_batch(m).await
        }
        async fn receive(
            &self,
            max: usize,
            visibility: Option<u32>,
        ) -> Result<Vec<orglink_shared::aws::ReceivedMessage>, StoreError> {
            self.inner.receive(max, visibility).await
        }
        async fn delete(&self, receipt: &str) -> Result<(), StoreError> {
            self.inner.delete(receipt).await
        }
        async fn change_visibility(&self, receipt: &str, secs: u32) -> Result<(), StoreError> {
            self.inner.change_visibility(receipt, secs).await
        }
        async fn dead_letters(
            &self,
            max: usize,
        ) -> Result<Vec<orglink_shared::aws::ReceivedMessage>, StoreError> {
            self.inner.dead_letters(max).await
        }
        async fn redrive(&self, max: usize) -> Result<usize, StoreError> {
            self.inner.redrive(max).await
        }
    }

    type RefusingIntake = TestIntake<RefusingQueue>;

    /// The test intake, its queue refusing sends until told otherwise, the org mirrored with
    /// key A and linked to A.
    async fn refusing_intake() -> RefusingIntake {
        let intake = intake_with(RefusingQueue {
            inner: orglink_shared::aws::queue::MemoryQueue::new(30, 5),
            refuse: std::sync::atomic::AtomicBool::new(true),
        });
        let mut r = LinkRecord::new(AccountId::parse(A).unwrap());
        r.org = Some(OrgId::new(ORG).unwrap());
        intake.links.save(&r).await.unwrap();
        intake
            .mirror
            .upsert(&MirroredOrg::new(
                OrgId::new(ORG).unwrap(),
                "Acme",
                Some(A.into()),
                ["acme.com"],
                None,
            ))
            .await
            .unwrap();
        intake
    }

    /// Delivers `body` while the queue refuses (503), then again once it accepts (Zendesk's
    /// retry); returns the second answer and the sync requests queued.
    async fn delivered_after_a_refusal(
        intake: &RefusingIntake,
        body: &str,
    ) -> (HttpResponse, Vec<SyncRequest>) {
        let first = crate::http::handle_http(signed(body, NOW, ZD_SECRET), intake).await;
        assert_eq!(first.status, 503, "{:?}", first.body);
        intake
            .queue
            .refuse
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let second = crate::http::handle_http(signed(body, NOW, ZD_SECRET), intake).await;
        let mut queued = Vec::new();
        loop {
            let got = intake.queue.receive(10, Some(600)).await.unwrap();
            if got.is_empty() {
                break;
            }
            for m in got {
                queued.push(SyncRequest::from_body(&m.body).unwrap());
            }
        }
        (second, queued)
    }

    #[tokio::test]
    async fn a_deletion_retried_after_a_failed_send_still_reaches_the_account() {
        let intake = refusing_intake().await;
        // The deletion payload without the key: only the mirror names the account, so the
        // failed attempt must leave the mirror as it was.
        let body = webhook("deleted", "d-9", detail(None, "Acme"), json!({}));
        let (r, queued) = delivered_after_a_refusal(&intake, &body).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(r.body["enqueued"], 1, "{:?}", r.body);
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].account_id.as_str(), A);
        assert_eq!(queued[0].kind, EventKind::ReconcileRepair);
        let org = OrgId::new(ORG).unwrap();
        assert!(
            intake.mirror.get(org).await.unwrap().is_none(),
            "deleted last"
        );
    }

    #[tokio::test]
    async fn a_key_change_retried_after_a_failed_send_still_repairs_the_account_that_lost_it() {
        let intake = refusing_intake().await;
        // A person moves the key from A to B; the payload does not carry the previous key.
        let body = webhook(
            "external_id_changed",
            "k-9",
            detail(Some(B), "Acme"),
            json!({"current": B}),
        );
        let (r, queued) = delivered_after_a_refusal(&intake, &body).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let by_account: BTreeMap<&str, EventKind> = queued
            .iter()
            .map(|q| (q.account_id.as_str(), q.kind))
            .collect();
        assert_eq!(
            by_account.get(A),
            Some(&EventKind::ReconcileRepair),
            "{queued:?}"
        );
        assert_eq!(by_account.get(B), Some(&EventKind::Manual), "{queued:?}");
        let row = intake
            .mirror
            .get(OrgId::new(ORG).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.external_id.as_deref(), Some(B));
    }

    #[tokio::test]
    async fn an_event_without_the_key_keeps_the_mirrored_key() {
        let intake = intake();
        let org = OrgId::new(ORG).unwrap();
        intake
            .mirror
            .upsert(&MirroredOrg::new(
                org,
                "Acme",
                Some(A.into()),
                ["acme.com"],
                None,
            ))
            .await
            .unwrap();
        let mut no_key = detail(None, "Acme Renamed");
        no_key.as_object_mut().unwrap().remove("external_id");
        let r = send(&intake, &webhook("name_changed", "n-9", no_key, json!({}))).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        let row = intake.mirror.get(org).await.unwrap().unwrap();
        assert_eq!(row.external_id.as_deref(), Some(A));
        assert_eq!(row.name, "Acme Renamed");
        // An explicit null does clear it.
        let r = send(
            &intake,
            &webhook(
                "name_changed",
                "n-10",
                detail(None, "Acme Renamed"),
                json!({}),
            ),
        )
        .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(
            intake.mirror.get(org).await.unwrap().unwrap().external_id,
            None
        );
    }
}
