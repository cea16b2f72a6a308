//! `POST /`: a signed batch from the Salesforce notifier. In order: size (400), signature with
//! the current or previous secret and the 5-minute window (401), the body, all or nothing
//! (400), the sending org against the deployment's binding (403); then one message per
//! account. Nothing is enqueued for a refused request.

use serde_json::json;

use orglink_shared::aws::{ExceptionStore, LinkStore, OrgMirror, WorkQueue};
use orglink_shared::signature::{
    MAX_BODY_BYTES, SIGNATURE_HEADER, SecretUsed, parse_batch, verify,
};
use orglink_shared::sync_request::{RequestSource, SyncRequest};

use crate::http::{HttpRequest, HttpResponse, refused};
use crate::{EventResult, Intake, Outcome, Summary};

pub async fn handle<Q, L, M, E>(request: &HttpRequest, intake: &Intake<Q, L, M, E>) -> HttpResponse
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    // Checked first so an oversized body is never hashed.
    if request.body.len() > MAX_BODY_BYTES {
        return refused(
            400,
            format!(
                "the body is {} bytes, over the {MAX_BODY_BYTES}-byte limit: the notifier must split it",
                request.body.len()
            ),
        );
    }
    let now = intake.now();
    let verified = match verify(
        request.get_header(SIGNATURE_HEADER),
        &request.body,
        now.unix_timestamp(),
        &intake.secrets.salesforce,
        intake.tolerance,
    ) {
        Ok(v) => v,
        Err(e) => return refused(401, e.to_string()),
    };
    if verified.secret == SecretUsed::Previous {
        // Rotation in progress: the previous secret cannot be retired while this appears.
        tracing::warn!(
            secret = "previous",
            "request signed with the previous secret"
        );
    }
    let batch = match parse_batch(&request.body) {
        Ok(b) => b,
        Err(e) => return refused(400, e.to_string()),
    };
    let binding = intake.config.binding();
    if let Err(e) = binding.check(batch.org_id.as_str(), binding.zendesk_subdomain().as_str()) {
        return refused(403, e.to_string());
    }
    let planned = batch
        .events
        .iter()
        .map(|event| {
            let request = SyncRequest {
                account_id: event.account_id.clone(),
                event_id: event.event_id.as_str().to_string(),
                kind: event.kind,
                source: RequestSource::SalesforceNotifier,
                occurred_at: event.occurred_at,
                account_modstamp: Some(event.account_modstamp),
                org_id: None,
                note: None,
            };
            let result = EventResult::new(event.event_id.as_str(), Outcome::Enqueued)
                .account(&event.account_id)
                .reason(event.kind.as_str());
            (request, result)
        })
        .collect();
    match intake.enqueue(planned).await {
        Ok(results) => {
            let summary = Summary::new(RequestSource::SalesforceNotifier, results);
            summary.log();
            HttpResponse::json(202, json!(summary))
        }
        Err(e) => {
            // 503 makes the notifier retry the whole batch, which deduplication makes safe.
            let status = if e.is_transient() { 503 } else { 500 };
            tracing::error!(status, error = %e, outcome = "failed", "enqueue failed");
            HttpResponse::error(status, e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use orglink_shared::credentials::Secret;
    use orglink_shared::signature::sign;

    const ORG: &str = "00D000000000001EAA";
    const A: &str = "001D000000IRFmaIAH";
    const B: &str = "001D000000IomazIAB";

    fn event(account: &str, kind: &str, id: &str) -> String {
        format!(
            r#"{{"account_id":"{account}","kind":"{kind}","event_id":"{id}","occurred_at":"2026-01-01T00:00:00Z","account_modstamp":"2025-12-31T23:59:58Z"}}"#
        )
    }

    fn batch(org: &str, events: &[String]) -> String {
        format!(r#"{{"org_id":"{org}","events":[{}]}}"#, events.join(","))
    }

    fn signed(body: &str, t: i64) -> HttpRequest {
        HttpRequest::post("/", body).header(
            SIGNATURE_HEADER,
            sign(&Secret::new(SF_SECRET), t, body.as_bytes()),
        )
    }

    #[tokio::test]
    async fn a_batch_becomes_one_message_per_account() {
        let intake = intake();
        let body = batch(
            ORG,
            &[
                event(A, "closed_won", "e-1"),
                event(B, "name_changed", "e-2"),
                event(A, "closed_won", "e-1"),
            ],
        );
        let r = crate::http::handle_http(signed(&body, NOW), &intake).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(r.body["received"], 3);
        assert_eq!(r.body["enqueued"], 2);
        assert_eq!(r.body["deduplicated"], 1);
        let queued = drain(&intake).await;
        assert_eq!(queued.len(), 2);
        let (first, group, dedup) = &queued[0];
        assert_eq!(first.account_id.as_str(), A);
        assert_eq!(group, A);
        assert_eq!(dedup, &first.to_message().dedup_id());
        assert_eq!(first.source, RequestSource::SalesforceNotifier);
        assert_eq!(
            first.account_modstamp.unwrap().unix_timestamp(),
            1_767_225_598
        );
        assert_eq!(queued[1].0.kind.as_str(), "name_changed");
    }

    #[tokio::test]
    async fn refusals_enqueue_nothing_and_say_why() {
        let intake = intake();
        let good = batch(ORG, &[event(A, "closed_won", "e-1")]);
        let cases: Vec<(HttpRequest, u16, &str)> = vec![
            (
                HttpRequest::post("/", good.clone()),
                401,
                "no X-Orglink-Signature",
            ),
            (
                HttpRequest::post("/", good.clone()).header(
                    SIGNATURE_HEADER,
                    sign(&Secret::new("forged"), NOW, good.as_bytes()),
                ),
                401,
                "matches no configured secret",
            ),
            (signed(&good, NOW - 301), 401, "beyond the 300 s tolerance"),
            (signed(&good, NOW + 301), 401, "in the future"),
            (signed("{", NOW), 400, "not JSON"),
            (
                signed(&batch(ORG, &[event(A, "reconcile_repair", "e-1")]), NOW),
                400,
                "events[0]: field `kind`",
            ),
            (
                signed(
                    &batch(ORG, &[event("001D000000IRFmaIAX", "closed_won", "e-1")]),
                    NOW,
                ),
                400,
                "field `account_id`",
            ),
            (
                signed(&good.replace(r#""event_id":"e-1","#, ""), NOW),
                400,
                "field `event_id` is missing",
            ),
            (
                signed(
                    &batch("00D000000000002EAA", &[event(A, "closed_won", "e-1")]),
                    NOW,
                ),
                403,
                "bound to",
            ),
            (
                signed(&" ".repeat(MAX_BODY_BYTES + 1), NOW),
                400,
                "over the 262144-byte limit",
            ),
            (
                HttpRequest {
                    method: "GET".into(),
                    ..signed(&good, NOW)
                },
                405,
                "use POST",
            ),
            (
                HttpRequest::post("/elsewhere", good.clone()),
                404,
                "no such path",
            ),
        ];
        for (request, status, says) in cases {
            let r = crate::http::handle_http(request, &intake).await;
            assert_eq!(r.status, status, "{says}: {:?}", r.body);
            let msg = r.error_message().unwrap();
            assert!(msg.contains(says), "{msg:?} lacks {says:?}");
        }
        assert!(drain(&intake).await.is_empty());
    }

    #[tokio::test]
    async fn one_bad_event_refuses_the_whole_batch() {
        let intake = intake();
        let body = batch(
            ORG,
            &[event(A, "closed_won", "e-1"), event(B, "bogus", "e-2")],
        );
        let r = crate::http::handle_http(signed(&body, NOW), &intake).await;
        assert_eq!(r.status, 400);
        assert!(r.error_message().unwrap().contains("events[1]"));
        assert!(drain(&intake).await.is_empty());
    }

    #[tokio::test]
    async fn the_previous_secret_is_accepted_during_a_rotation() {
        let mut intake = intake();
        intake.secrets.salesforce.previous = Some(Secret::new("old-secret"));
        let body = batch(ORG, &[event(A, "manual", "e-9")]);
        let request = HttpRequest::post("/", body.clone()).header(
            SIGNATURE_HEADER,
            sign(&Secret::new("old-secret"), NOW, body.as_bytes()),
        );
        let r = crate::http::handle_http(request, &intake).await;
        assert_eq!(r.status, 202, "{:?}", r.body);
        assert_eq!(drain(&intake).await.len(), 1);
    }
}
