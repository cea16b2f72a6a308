//! The function URL side: a small request/response pair the handlers work on (so tests build
//! requests without the `#[non_exhaustive]` Lambda event types), its conversion from and to
//! the function URL payloads, and the routing.

use std::collections::BTreeMap;

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use base64::Engine;
use serde_json::{Value, json};

use orglink_shared::aws::{ExceptionStore, LinkStore, OrgMirror, WorkQueue};

use crate::{Intake, salesforce, zendesk};

/// One HTTP request as intake sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    /// Header names lowercased (function URLs deliver them so; HTTP names are case-blind).
    pub headers: BTreeMap<String, String>,
    /// The raw body bytes, exactly as signed.
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn post(path: &str, body: impl Into<Vec<u8>>) -> Self {
        HttpRequest {
            method: "POST".into(),
            path: path.into(),
            headers: BTreeMap::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }

    pub fn get_header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Reads a function URL invocation payload (API Gateway v2 format).
    pub fn from_function_url(payload: Value) -> Result<HttpRequest, String> {
        let raw: LambdaFunctionUrlRequest = serde_json::from_value(payload)
            .map_err(|e| format!("not a function URL request: {e}"))?;
        let mut headers = BTreeMap::new();
        for (name, value) in raw.headers.iter() {
            if let Ok(v) = value.to_str() {
                headers
                    .entry(name.as_str().to_ascii_lowercase())
                    .and_modify(|old: &mut String| {
                        old.push(',');
                        old.push_str(v);
                    })
                    .or_insert_with(|| v.to_string());
            }
        }
        let body = match raw.body {
            None => Vec::new(),
            Some(b) if raw.is_base64_encoded => base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|_| "the body is marked base64 but is not".to_string())?,
            Some(b) => b.into_bytes(),
        };
        Ok(HttpRequest {
            method: raw
                .request_context
                .http
                .method
                .unwrap_or_default()
                .to_ascii_uppercase(),
            path: raw.raw_path.unwrap_or_else(|| "/".into()),
            headers,
            body,
        })
    }
}

/// One HTTP answer: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub body: Value,
}

impl HttpResponse {
    pub fn json(status: u16, body: Value) -> Self {
        HttpResponse { status, body }
    }

    /// An error answer: `{"error": message}`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        HttpResponse {
            status,
            body: json!({ "error": message.into() }),
        }
    }

    pub fn error_message(&self) -> Option<&str> {
        self.body.get("error").and_then(Value::as_str)
    }

    /// The function URL response payload.
    pub fn into_function_url(self) -> Value {
        let mut response = LambdaFunctionUrlResponse::default();
        response.status_code = i64::from(self.status);
        response.headers.insert(
            "content-type",
            "application/json".parse().expect("a valid header value"),
        );
        response.body = Some(self.body.to_string());
        serde_json::to_value(response).expect("a response serializes")
    }
}

/// Routes a function URL request: `POST /` (or `/salesforce`) is the Salesforce notifier,
/// `POST /zendesk` a Zendesk webhook.
pub async fn handle_http<Q, L, M, E>(
    request: HttpRequest,
    intake: &Intake<Q, L, M, E>,
) -> HttpResponse
where
    Q: WorkQueue,
    L: LinkStore,
    M: OrgMirror,
    E: ExceptionStore,
{
    let path = request.path.trim_end_matches('/');
    let route = match path {
        "" | "/salesforce" => Route::Salesforce,
        "/zendesk" => Route::Zendesk,
        _ => {
            return refused(
                404,
                format!(
                    "no such path {:?}: the Salesforce notifier posts to /, Zendesk webhooks to /zendesk",
                    request.path
                ),
            );
        }
    };
    if request.method != "POST" {
        return refused(
            405,
            format!("method {} is not allowed: use POST", request.method),
        );
    }
    match route {
        Route::Salesforce => salesforce::handle(&request, intake).await,
        Route::Zendesk => zendesk::handle(&request, intake).await,
    }
}

enum Route {
    Salesforce,
    Zendesk,
}

/// A refused request: logged (nothing was enqueued) and answered with the error.
pub(crate) fn refused(status: u16, message: impl Into<String>) -> HttpResponse {
    let message = message.into();
    tracing::warn!(status, error = %message, outcome = "refused", "request refused");
    HttpResponse::error(status, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_function_url_payload() {
        let body = r#"{"a":1}"#;
        let payload = json!({
            "version": "2.0", "routeKey": "$default", "rawPath": "/zendesk", "rawQueryString": "",
            "headers": {"content-type": "application/json", "x-zendesk-webhook-signature": "abc"},
            "requestContext": {"accountId": "anonymous", "apiId": "x", "domainName": "x.lambda-url.us-east-1.on.aws",
                "domainPrefix": "x", "http": {"method": "POST", "path": "/zendesk", "protocol": "HTTP/1.1",
                "sourceIp": "1.2.3.4", "userAgent": "Zendesk Webhook"}, "requestId": "r", "routeKey": "$default",
                "stage": "$default", "time": "24/Nov/2026:07:00:00 +0000", "timeEpoch": 1795000000000i64},
            "body": base64::engine::general_purpose::STANDARD.encode(body), "isBase64Encoded": true
        });
        let r = HttpRequest::from_function_url(payload).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/zendesk");
        assert_eq!(r.body, body.as_bytes());
        assert_eq!(r.get_header("X-Zendesk-Webhook-Signature"), Some("abc"));
        let out = HttpResponse::error(400, "bad").into_function_url();
        assert_eq!(out["statusCode"], 400);
        assert_eq!(out["body"], r#"{"error":"bad"}"#);
        assert_eq!(out["headers"]["content-type"], "application/json");
    }
}
