//! No secret reaches a log line, an error message or a `Debug` rendering: the clients run their
//! sign-ins, refreshes, retries and failures with every `tracing` event captured (all targets,
//! TRACE level, JSON), and the capture is searched for every secret involved.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use futures_util::TryStreamExt;
use orglink_shared::credentials::{Credentials, Secret, ZendeskCredentials};
use orglink_shared::http::CallLog;
use orglink_shared::ids::OrgId;
use orglink_shared::salesforce::SalesforceClient;
use orglink_shared::zendesk::ZendeskClient;
use serde_json::json;
use support::*;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every form a secret could leak in: as is, and the Basic credential Zendesk gets.
fn secrets() -> Vec<String> {
    let pem = std::fs::read_to_string(fixture("jwt_test_key.pem")).unwrap();
    let key_line = pem.lines().nth(1).unwrap().to_string();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{ZD_EMAIL}/token:{ZD_TOKEN}"));
    vec![
        SF_CLIENT_SECRET.to_string(),
        key_line,
        ZD_TOKEN.to_string(),
        basic,
        "scripted-access-token".to_string(),
        "wrong-secret-value".to_string(),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for s in secrets() {
        assert!(
            !text.contains(&s),
            "{what} leaks a secret ({}…): {text}",
            &s[..6.min(s.len())]
        );
    }
    assert!(
        !text.to_ascii_lowercase().contains("authorization: "),
        "{what} shows an Authorization header"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_logs_errors_or_debug() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(capture.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut errors = Vec::new();

    let sb = Sandbox::start(json!({"salesforce": {"accounts": accounts(3000)}, "zendesk": {"organizations": organizations(300)}})).await;

    // Salesforce: both flows, a session that expires mid-query, injected failures.
    let sf = sb.salesforce(roomy_budget(), CallLog::new()).await.unwrap();
    sb.admin
        .sf_post("switches", json!({"session_max_calls": 1}))
        .await;
    sb.admin
        .sf_post(
            "faults",
            json!({"seed": 2, "default": {"error_5xx": 0.2, "drop": 0.1}}),
        )
        .await;
    let n = sf
        .query("SELECT Id FROM Account")
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len();
    assert_eq!(n, 3000);
    let jwt = SalesforceClient::connect(
        sf_config(),
        sb.sf_jwt_credentials(),
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap();
    errors.push(format!("{jwt:?} {sf:?}"));
    let mut bad = sb.sf_client_credentials();
    bad.flow = orglink_shared::credentials::SalesforceFlow::ClientCredentials {
        client_secret: Secret::new("wrong-secret-value"),
    };
    sb.admin.sf_post("faults", json!({})).await;
    let e = SalesforceClient::connect(
        sf_config(),
        bad.clone(),
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap_err();
    errors.push(format!("{e} {e:?}"));
    errors.push(format!("{bad:?}"));

    // A Salesforce that refuses every session: the refresh path and its error.
    let (url, _) = scripted(|_| {
        (
            401,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
        )
    })
    .await;
    let scripted_sf = SalesforceClient::connect(
        sf_config(),
        scripted_creds(&url),
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap();
    let e = scripted_sf
        .query("SELECT Id FROM Account")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    errors.push(format!("{e} {e:?}"));

    // Zendesk: retries on 429 and 5xx, then wrong credentials.
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    sb.admin
        .zd_post("switches", json!({"omit_retry_after": true}))
        .await;
    sb.admin
        .zd_post(
            "faults",
            json!({"seed": 4, "default": {"rate_limit_429": 0.3, "error_5xx": 0.2}}),
        )
        .await;
    assert_eq!(zd.list().try_collect::<Vec<_>>().await.unwrap().len(), 300);
    errors.push(format!("{zd:?}"));
    sb.admin.zd_post("faults", json!({})).await;
    let wrong = ZendeskCredentials::ApiToken {
        email: ZD_EMAIL.into(),
        api_token: Secret::new("wrong-secret-value"),
    };
    let zd_bad = ZendeskClient::connect(
        sb.zd_config(),
        wrong.clone(),
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap();
    let e = zd_bad.show(OrgId::new(1001).unwrap()).await.unwrap_err();
    errors.push(format!("{e} {e:?} {wrong:?}"));

    // The secret's JSON form, valid and mistyped.
    let json_text = format!(
        r#"{{"salesforce": {{"my_domain_url": "https://acme.my.salesforce.com", "client_id": "k", "flow": "client_credentials", "client_secret": "{SF_CLIENT_SECRET}"}},
            "zendesk": {{"auth": "api_token", "email": "{ZD_EMAIL}", "api_token": {ZD_TOKEN:?}}}}}"#
    );
    let creds = Credentials::from_secret_json(&json_text).unwrap();
    errors.push(format!("{creds:?} {creds:#?}"));
    let mistyped = json_text.replace("\"client_credentials\"", &format!("{SF_CLIENT_SECRET:?}"));
    let e = Credentials::from_secret_json(&mistyped).unwrap_err();
    errors.push(format!("{e} {e:?}"));

    drop(_guard);
    let log = capture.text();
    // The capture saw the interesting paths (so a clean log means something).
    for expected in [
        "signed in",
        "session expired; signing in again",
        "retrying",
        "\"endpoint\":\"zd.org_list\"",
    ] {
        assert!(log.contains(expected), "the log lacks {expected:?}");
    }
    assert_clean("the log", &log);
    for e in &errors {
        assert_clean("an error or Debug rendering", e);
    }
}
