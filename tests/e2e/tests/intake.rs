//! Intake end to end: the function's Lambda entry point (`handle_invocation`, fed the JSON
//! Lambda delivers for a function URL request or an EventBridge event) over the real SQS and
//! DynamoDB adapters and the intake secret in Secrets Manager, on moto with the stack built
//! from `infra/template.yaml`. Each test gets its own stack (a unique prefix) on the shared moto.

mod intake_support;

use serde_json::{Value, json};

use intake_support::*;
use orglink_shared::aws::{
    ExceptionFilter, ExceptionStatus, ExceptionStore, MirroredOrg, OrgMirror,
};
use orglink_shared::contract::EventKind;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::signature::MAX_BODY_BYTES;
use orglink_shared::sync_request::RequestSource;

#[tokio::test]
async fn each_source_enqueues_one_message_per_account_with_its_group_and_dedup_id() {
    let f = fixture("sources").await;

    // Salesforce notifier: two accounts in one batch.
    let body = batch(
        BOUND_ORG,
        &[
            event(A, "closed_won", "sf-1"),
            event(B, "late_stage_opportunity", "sf-2"),
        ],
    );
    let (status, answer) = call(&f, salesforce(&f.sf_secret, now(), &body)).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["enqueued"], 2);
    let q = drain(&f).await;
    assert_eq!(q.len(), 2);
    for (request, group, dedup) in &q {
        assert_eq!(group, request.account_id.as_str());
        assert_eq!(dedup, &request.to_message().dedup_id());
        assert_eq!(request.source, RequestSource::SalesforceNotifier);
    }
    let kinds: Vec<_> = q
        .iter()
        .map(|m| (m.0.account_id.as_str(), m.0.kind, m.0.event_id.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (A, EventKind::ClosedWon, "sf-1"),
            (B, EventKind::LateStageOpportunity, "sf-2")
        ]
    );

    // Event Relay: one change naming two accounts.
    let (_, answer) = (
        0,
        f.intake
            .handle_invocation(relay(
                BOUND_ORG,
                "tx-1",
                &[A, C],
                &["Name", "LastModifiedDate"],
                json!({"Name": "Acme"}),
            ))
            .await
            .unwrap(),
    );
    assert_eq!(answer["enqueued"], 2, "{answer}");
    let q = drain(&f).await;
    assert_eq!(q.len(), 2);
    assert_eq!(q[0].0.event_id, q[1].0.event_id);
    assert_ne!(
        q[0].2, q[1].2,
        "one event, two accounts: two deduplication ids"
    );
    for (request, group, dedup) in &q {
        assert_eq!(request.kind, EventKind::NameChanged);
        assert_eq!(group, request.account_id.as_str());
        assert_eq!(dedup, &request.to_message().dedup_id());
    }

    // Zendesk: the linked organization is deleted; the mirror knew its key.
    link(&f, A, &[]).await;
    f.intake
        .mirror
        .upsert(&MirroredOrg::new(
            OrgId::new(ZD_ORG).unwrap(),
            "Acme",
            Some(A.into()),
            ["acme.com"],
            None,
        ))
        .await
        .unwrap();
    let (status, answer) = call(
        &f,
        zendesk_call(
            &f.zd_secret,
            now(),
            &webhook_body("deleted", "del-1", None, json!({})),
        ),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["enqueued"], 1);
    assert_eq!(answer["mirror"], "deleted");
    assert!(
        f.intake
            .mirror
            .get(OrgId::new(ZD_ORG).unwrap())
            .await
            .unwrap()
            .is_none()
    );
    let q = drain(&f).await;
    assert_eq!(q.len(), 1);
    let (request, group, _) = &q[0];
    assert_eq!((request.account_id.as_str(), group.as_str()), (A, A));
    assert_eq!(request.kind, EventKind::ReconcileRepair);
    assert_eq!(request.source, RequestSource::ZendeskWebhook);
    assert_eq!(request.org_id, Some(OrgId::new(ZD_ORG).unwrap()));
}

#[tokio::test]
async fn duplicates_and_replays_inside_the_window_leave_one_message() {
    let f = fixture("dedup").await;
    let body = batch(BOUND_ORG, &[event(A, "closed_won", "dup-1")]);
    // The same signed request delivered three times (a retry, a replay within 5 minutes).
    let request = salesforce(&f.sf_secret, now() - 60, &body);
    for _ in 0..3 {
        let (status, answer) = call(&f, request.clone()).await;
        assert_eq!(status, 202, "{answer}");
    }
    // Re-signed later with the same event id: still the same event.
    let (status, _) = call(&f, salesforce(&f.sf_secret, now(), &body)).await;
    assert_eq!(status, 202);
    let relayed = relay(
        BOUND_ORG,
        "tx-dup",
        &[B],
        &["Website"],
        json!({"Website": "https://beta.example"}),
    );
    f.intake.handle_invocation(relayed.clone()).await.unwrap();
    f.intake.handle_invocation(relayed).await.unwrap();
    let webhook = zendesk_call(
        &f.zd_secret,
        now(),
        &webhook_body("deleted", "del-dup", Some(C), json!({})),
    );
    call(&f, webhook.clone()).await;
    call(&f, webhook).await;
    let q = drain(&f).await;
    let ids: Vec<_> = q
        .iter()
        .map(|m| (m.0.account_id.as_str().to_string(), m.0.event_id.clone()))
        .collect();
    assert_eq!(
        ids,
        vec![
            (A.to_string(), "dup-1".to_string()),
            (B.to_string(), "cdc:tx-dup:1".to_string()),
            (C.to_string(), "zd:del-dup".to_string())
        ],
        "SQS FIFO deduplication keeps one message per (event, account)"
    );
}

#[tokio::test]
async fn refused_requests_enqueue_nothing() {
    let f = fixture("refused").await;
    let t = now();
    let good = batch(
        BOUND_ORG,
        &[event(A, "closed_won", "r-1"), event(B, "manual", "r-2")],
    );
    let oversized = format!("{good}{}", " ".repeat(MAX_BODY_BYTES));
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "forged",
            salesforce("not-the-secret", t, &good),
            401,
            "matches no configured secret",
        ),
        (
            "unsigned",
            function_url("/", &[], good.as_bytes()),
            401,
            "no X-Orglink-Signature",
        ),
        (
            "stale",
            salesforce(&f.sf_secret, t - 600, &good),
            401,
            "beyond the 300 s tolerance",
        ),
        (
            "future-dated",
            salesforce(&f.sf_secret, t + 600, &good),
            401,
            "in the future",
        ),
        (
            "oversized",
            salesforce(&f.sf_secret, t, &oversized),
            400,
            "-byte limit",
        ),
        (
            "malformed",
            salesforce(&f.sf_secret, t, "{\"org_id\":"),
            400,
            "not JSON",
        ),
        (
            "unknown kind",
            salesforce(
                &f.sf_secret,
                t,
                &batch(
                    BOUND_ORG,
                    &[event(A, "closed_won", "r-1"), event(B, "upsell", "r-2")],
                ),
            ),
            400,
            "events[1]: field `kind`",
        ),
        (
            "bad checksum",
            salesforce(
                &f.sf_secret,
                t,
                &batch(
                    BOUND_ORG,
                    &[event("001D000000IRFmaIAA", "closed_won", "r-1")],
                ),
            ),
            400,
            "field `account_id`",
        ),
        (
            "missing field",
            salesforce(&f.sf_secret, t, &good.replace(r#""kind":"manual","#, "")),
            400,
            "events[1]: field `kind` is missing",
        ),
        (
            "other org",
            salesforce(
                &f.sf_secret,
                t,
                &batch("00D000000000009EAA", &[event(A, "closed_won", "r-1")]),
            ),
            403,
            "bound to",
        ),
        (
            "forged webhook",
            zendesk_call(
                "not-the-secret",
                t,
                &webhook_body("deleted", "w-1", Some(A), json!({})),
            ),
            401,
            "matches no configured webhook secret",
        ),
        (
            "stale webhook",
            zendesk_call(
                &f.zd_secret,
                t - 600,
                &webhook_body("deleted", "w-1", Some(A), json!({})),
            ),
            401,
            "beyond the 300 s",
        ),
    ];
    for (name, payload, status, says) in cases {
        let (got, answer) = call(&f, payload).await;
        assert_eq!(got, status, "{name}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{name}: {error:?} lacks {says:?}");
    }
    // A relayed change from another org is refused too (EventBridge would only retry an error).
    let foreign = f
        .intake
        .handle_invocation(relay(
            "00D000000000009EAA",
            "tx-f",
            &[A],
            &["Name"],
            json!({}),
        ))
        .await
        .unwrap();
    assert_eq!(foreign["enqueued"], 0);
    assert!(
        foreign["results"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("refused: "),
        "{foreign}"
    );
    assert!(
        drain(&f).await.is_empty(),
        "nothing may be enqueued for a refused request"
    );
}

#[tokio::test]
async fn echoes_of_orglinks_own_writes_are_dropped() {
    let f = fixture("echoes").await;
    link(
        &f,
        A,
        &[
            ("Zendesk_Org_ID__c", "6607619104125"),
            ("Zendesk_Domain__c", "acme.com"),
        ],
    )
    .await;
    // orglink's write-back, relayed: only link fields, holding what orglink wrote.
    let write_back = relay(
        BOUND_ORG,
        "tx-echo",
        &[A],
        &[
            "Zendesk_Org_ID__c",
            "Zendesk_Domain__c",
            "Zendesk_Sync_Status__c",
            "Last_Zendesk_Sync_At__c",
            "LastModifiedDate",
            "SystemModstamp",
        ],
        json!({"Zendesk_Org_ID__c": "6607619104125", "Zendesk_Domain__c": "acme.com", "Zendesk_Sync_Status__c": "Linked"}),
    );
    let out = f.intake.handle_invocation(write_back).await.unwrap();
    assert_eq!(
        (out["received"].as_u64(), out["echoes_dropped"].as_u64()),
        (Some(1), Some(1)),
        "{out}"
    );
    // orglink setting the key on the org it linked, seen through the Zendesk webhook.
    let key_set = webhook_body(
        "external_id_changed",
        "k-echo",
        Some(A),
        json!({"previous": null, "current": A}),
    );
    let (status, answer) = call(&f, zendesk_call(&f.zd_secret, now(), &key_set)).await;
    assert_eq!(status, 202);
    assert_eq!(answer["echoes_dropped"], 1, "{answer}");
    assert_eq!(answer["mirror"], "written");
    assert!(drain(&f).await.is_empty(), "echoes enqueue nothing");
    // A person's edit of the reviewed domain is not an echo.
    let edit = relay(
        BOUND_ORG,
        "tx-edit",
        &[A],
        &["Zendesk_Domain__c", "LastModifiedDate"],
        json!({"Zendesk_Domain__c": "acme.io"}),
    );
    f.intake.handle_invocation(edit).await.unwrap();
    let q = drain(&f).await;
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].0.kind, EventKind::DomainChanged);
    // A person replacing the key of the linked org with a foreign value: an exception row.
    let foreign = webhook_body(
        "external_id_changed",
        "k-foreign",
        Some("crm-42"),
        json!({"previous": A, "current": "crm-42"}),
    );
    let (_, answer) = call(&f, zendesk_call(&f.zd_secret, now(), &foreign)).await;
    assert_eq!(answer["exceptions"], 1, "{answer}");
    let rows = f
        .intake
        .exceptions
        .list(&ExceptionFilter::status(ExceptionStatus::Open))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].finding.accounts, vec![AccountId::parse(A).unwrap()]);
    assert!(drain(&f).await.is_empty());
}
