//! What the intake end-to-end suites share: a stack on moto with the intake secret set,
//! intake built by the production wiring, and the payloads Lambda delivers.
#![allow(dead_code)]

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use orglink_harness::{AwsEnv, LocalStack, moto_stack};
use orglink_intake::Environment;
use orglink_intake::aws::{AwsIntake, from_aws};
use orglink_intake::settings::INTAKE_SECRET_ENV;
use orglink_intake::zendesk::{self, sign_webhook};
use orglink_shared::aws::{LinkRecord, LinkStore, WorkQueue};
use orglink_shared::credentials::Secret;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::signature::{SIGNATURE_HEADER, sign};
use orglink_shared::sync_request::SyncRequest;

/// The embedded default configuration's binding.
pub const BOUND_ORG: &str = "00D000000000001EAA";
pub const A: &str = "001D000000IRFmaIAH";
pub const B: &str = "001D000000IomazIAB";
pub const C: &str = "001D000000IqhSLIAZ";
pub const ZD_ORG: u64 = 6_607_619_104_125;

pub struct Fixture {
    pub _aws: AwsEnv,
    pub _stack: LocalStack,
    pub intake: AwsIntake,
    pub sf_secret: String,
    pub zd_secret: String,
}

/// A stack on moto, its intake secret set, and intake built by the production wiring.
pub async fn fixture(label: &str) -> Fixture {
    let (prepared, env) = prepare(label).await;
    start(prepared, &env).await
}

/// The stack and the secret, before intake's cold start.
pub async fn prepare(label: &str) -> (Fixture0, Environment) {
    let (aws, stack) = moto_stack(label).await;
    let sf_secret = format!("sf-signing-{}-7f3a9c", stack.parameters["Prefix"]);
    let zd_secret = format!("zd-webhook-{}-41be02", stack.parameters["Prefix"]);
    let secret_id = stack
        .outputs
        .get("IntakeSecretArn")
        .cloned()
        .expect("the template has an IntakeSecretArn output (the intake secret)");
    aws.secrets()
        .put_secret_value()
        .secret_id(&secret_id)
        .secret_string(
            json!({"salesforce": {"current": sf_secret}, "zendesk_webhook": {"current": zd_secret}})
                .to_string(),
        )
        .send()
        .await
        .expect("put the intake secret");
    let mut env: BTreeMap<String, String> = stack
        .names()
        .expect("the stack's names")
        .to_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.insert(INTAKE_SECRET_ENV.into(), secret_id);
    let env = Environment::from_lookup(|k| env.get(k).cloned()).expect("intake's environment");
    (
        Fixture0 {
            aws,
            stack,
            sf_secret,
            zd_secret,
        },
        env,
    )
}

pub struct Fixture0 {
    pub aws: AwsEnv,
    pub stack: LocalStack,
    pub sf_secret: String,
    pub zd_secret: String,
}

/// Intake's cold start: the production wiring reads the secret from Secrets Manager.
pub async fn start(p: Fixture0, env: &Environment) -> Fixture {
    let intake = from_aws(p.aws.sdk_config(), env)
        .await
        .expect("intake starts");
    Fixture {
        _aws: p.aws,
        _stack: p.stack,
        intake,
        sf_secret: p.sf_secret,
        zd_secret: p.zd_secret,
    }
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The JSON Lambda delivers for a function URL request (API Gateway v2 format).
pub fn function_url(path: &str, headers: &[(&str, String)], body: &[u8]) -> Value {
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), Value::String(v.clone())))
        .chain([("content-type".to_string(), json!("application/json"))])
        .collect();
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous", "apiId": "abc123", "domainName": "abc123.lambda-url.us-east-1.on.aws",
            "domainPrefix": "abc123", "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "SFDC-Callout/62.0"}, "requestId": "r-1",
            "routeKey": "$default", "stage": "$default", "time": "24/Nov/2026:07:00:00 +0000",
            "timeEpoch": 1_795_000_000_000i64
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

/// A function URL invocation's answer: status and parsed body.
pub async fn call(f: &Fixture, payload: Value) -> (u16, Value) {
    let out = f
        .intake
        .handle_invocation(payload)
        .await
        .expect("a function URL answer");
    let status = out["statusCode"].as_u64().unwrap() as u16;
    let body = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    (status, body)
}

pub fn event(account: &str, kind: &str, id: &str) -> String {
    format!(
        r#"{{"account_id":"{account}","kind":"{kind}","event_id":"{id}","occurred_at":"2026-11-24T07:00:00.000Z","account_modstamp":"2026-11-24T06:59:59.000Z"}}"#
    )
}

pub fn batch(org: &str, events: &[String]) -> String {
    format!(r#"{{"org_id":"{org}","events":[{}]}}"#, events.join(","))
}

pub fn salesforce(secret: &str, t: i64, body: &str) -> Value {
    let header = sign(&Secret::new(secret), t, body.as_bytes());
    function_url("/", &[(SIGNATURE_HEADER, header)], body.as_bytes())
}

pub fn webhook_body(kind: &str, id: &str, key: Option<&str>, event: Value) -> String {
    json!({
        "type": format!("zen:event-type:organization.{kind}"), "account_id": 10973248,
        "subject": format!("zen:organization:{ZD_ORG}"), "id": id, "time": "2026-11-24T07:00:00Z",
        "zendesk_event_version": "2022-06-20",
        "detail": {"id": ZD_ORG.to_string(), "external_id": key, "name": "Acme", "group_id": null,
                   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-11-24T07:00:00Z",
                   "shared_comments": false, "shared_tickets": false},
        "event": event
    })
    .to_string()
}

pub fn zendesk_call(secret: &str, t: i64, body: &str) -> Value {
    let ts = OffsetDateTime::from_unix_timestamp(t)
        .unwrap()
        .format(&Rfc3339)
        .unwrap();
    let sig = sign_webhook(&Secret::new(secret), &ts, body.as_bytes());
    function_url(
        "/zendesk",
        &[
            (zendesk::SIGNATURE_HEADER, sig),
            (zendesk::TIMESTAMP_HEADER, ts),
        ],
        body.as_bytes(),
    )
}

pub fn relay(org: &str, tx: &str, ids: &[&str], changed: &[&str], fields: Value) -> Value {
    let mut payload = json!({
        "ChangeEventHeader": {
            "entityName": "Account", "recordIds": ids, "changeType": "UPDATE", "changedFields": changed,
            "changeOrigin": "com/salesforce/api/rest/62.0", "transactionKey": tx, "sequenceNumber": 1,
            "commitTimestamp": 1_795_000_000_000i64, "commitNumber": 11, "commitUser": "005000000000001AAA"
        },
        "LastModifiedDate": "2026-11-24T07:00:00.000Z", "SystemModstamp": "2026-11-24T07:00:00.000Z"
    });
    for (k, v) in fields.as_object().unwrap() {
        payload[k] = v.clone();
    }
    json!({
        "version": "0", "id": format!("eb-{tx}"), "detail-type": "AccountChangeEvent",
        "source": format!("aws.partner/salesforce.com/{org}/0YLRM0000004Dfg4AE"),
        "account": "123456789012", "time": "2026-11-24T07:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {"payload": payload, "schemaId": "s-1", "id": "d-1"}
    })
}

/// Every message on the queue (deleted as read), with its group and deduplication ids.
pub async fn drain(f: &Fixture) -> Vec<(SyncRequest, String, String)> {
    let mut out = Vec::new();
    loop {
        let got = f
            .intake
            .queue
            .receive(10, Some(120))
            .await
            .expect("receive");
        if got.is_empty() {
            return out;
        }
        for m in got {
            f.intake
                .queue
                .delete(&m.receipt_handle)
                .await
                .expect("delete");
            out.push((
                SyncRequest::from_body(&m.body).expect("a sync request body"),
                m.group_id.expect("a FIFO group"),
                m.dedup_id.expect("a deduplication id"),
            ));
        }
    }
}

pub async fn link(f: &Fixture, account: &str, written: &[(&str, &str)]) {
    let mut record = LinkRecord::new(AccountId::parse(account).unwrap());
    record.org = Some(OrgId::new(ZD_ORG).unwrap());
    record.written_zendesk.name = Some("Acme".into());
    for (k, v) in written {
        record
            .written_salesforce
            .insert(k.to_string(), v.to_string());
    }
    record.synced_modstamp_ms = Some(1);
    f.intake
        .links
        .save(&record)
        .await
        .expect("save link record");
}
