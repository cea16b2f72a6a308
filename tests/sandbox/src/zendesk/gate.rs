//! What every API request passes before its handler: fault injection, authentication, the
//! account rate limit and per-endpoint limits; afterwards the rate headers and the call count.
//! Also the error bodies Zendesk sends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::store::{Invalid, OrgError};
use super::{UpdateLimitScope, Zd};
use crate::faults::{Fault, dropped_connection};

/// Fixed windows per key (account, per-endpoint).
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    windows: HashMap<String, (Instant, u32)>,
}

impl RateLimiter {
    /// Takes one request from `key`'s budget: Ok(remaining) or Err(time until the window resets).
    pub fn take(
        &mut self,
        key: &str,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Result<u32, Duration> {
        let w = self.windows.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(w.0) >= window {
            *w = (now, 0);
        }
        if w.1 >= limit {
            return Err(window.saturating_sub(now.duration_since(w.0)));
        }
        w.1 += 1;
        Ok(limit - w.1)
    }

    pub fn clear(&mut self) {
        self.windows.clear();
    }
}

/// An error answer in one of Zendesk's two envelopes.
#[derive(Debug)]
pub(crate) enum ApiError {
    NotFound,
    Invalid(Vec<Invalid>),
    /// `{"error": code, "description": ..}` with the given status.
    Legacy(StatusCode, &'static str, String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, description: impl Into<String>) -> Self {
        Self::Legacy(StatusCode::BAD_REQUEST, code, description.into())
    }
}

impl From<OrgError> for ApiError {
    fn from(e: OrgError) -> Self {
        match e {
            OrgError::NotFound => ApiError::NotFound,
            OrgError::Invalid(v) => ApiError::Invalid(v),
            OrgError::BadRequest(d) => ApiError::bad_request("InvalidParameter", d),
        }
    }
}

/// The 422 body: `{"error":"RecordInvalid","description":"Record validation errors","details":{..}}`.
pub(crate) fn invalid_body(problems: &[Invalid]) -> Value {
    let mut details = serde_json::Map::new();
    for p in problems {
        let entry = details
            .entry(p.field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(a) = entry {
            // Older validations answer `{"type":"blank"}` (documented), newer ones `{"error":..}`.
            if p.error == "blank" {
                a.push(json!({"description": p.description, "type": p.error}));
            } else {
                a.push(json!({"description": p.description, "error": p.error}));
            }
        }
    }
    json!({"error": "RecordInvalid", "description": "Record validation errors", "details": details})
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"error": "RecordNotFound", "description": "Not found"})),
            )
                .into_response(),
            ApiError::Invalid(p) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(invalid_body(&p)),
            )
                .into_response(),
            ApiError::Legacy(status, code, description) => (
                status,
                axum::Json(json!({"error": code, "description": description})),
            )
                .into_response(),
        }
    }
}

/// The base URL the client used (`http://127.0.0.1:PORT`), for `url`, `next_page` and links.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// The endpoint name used by call counts and fault plans.
pub(crate) fn endpoint_name(method: &Method, path: &str) -> String {
    let p = path.trim_end_matches(".json");
    let name = match (method.as_str(), p) {
        ("GET", "/api/v2/organizations") => "zd.org_list",
        ("POST", "/api/v2/organizations") => "zd.org_create",
        ("GET", "/api/v2/organizations/{id}") => "zd.org_show",
        ("PUT", "/api/v2/organizations/{id}") => "zd.org_update",
        ("DELETE", "/api/v2/organizations/{id}") => "zd.org_delete",
        ("GET", "/api/v2/organizations/show_many") => "zd.org_show_many",
        ("GET", "/api/v2/organizations/search") => "zd.org_search",
        ("POST", "/api/v2/organizations/create_or_update") => "zd.org_create_or_update",
        ("POST", "/api/v2/organizations/create_many") => "zd.org_create_many",
        ("PUT", "/api/v2/organizations/update_many") => "zd.org_update_many",
        ("GET", "/api/v2/organizations/count") => "zd.org_count",
        ("GET", "/api/v2/job_statuses/{id}") => "zd.job_status",
        ("GET", "/api/v2/incremental/organizations") => "zd.incremental",
        ("GET", "/api/v2/incremental/tickets/cursor") => "zd.incremental_tickets",
        ("GET", "/api/v2/organization_fields") => "zd.org_fields_list",
        ("POST", "/api/v2/organization_fields") => "zd.org_fields_create",
        ("GET", "/api/v2/webhooks") => "zd.webhook_list",
        ("POST", "/api/v2/webhooks") => "zd.webhook_create",
        ("GET", "/api/v2/webhooks/{id}") => "zd.webhook_show",
        ("DELETE", "/api/v2/webhooks/{id}") => "zd.webhook_delete",
        ("GET", "/api/v2/webhooks/{id}/signing_secret") => "zd.webhook_secret",
        ("GET", "/api/v2/users") => "zd.user_list",
        ("GET", "/api/v2/users/show_many") => "zd.user_show_many",
        ("GET", "/api/v2/users/{id}") => "zd.user_show",
        ("GET", "/api/v2/users/{id}/organization_memberships") => "zd.user_memberships",
        ("GET", "/api/v2/organization_memberships") => "zd.membership_list",
        ("GET", "/api/v2/organizations/{id}/organization_memberships") => "zd.org_memberships",
        ("GET", "/api/v2/organizations/{id}/users") => "zd.org_users",
        ("GET", "/api/v2/organizations/{id}/tickets") => "zd.org_tickets",
        ("GET", "/api/v2/tickets") => "zd.ticket_list",
        ("GET", "/api/v2/tickets/{id}") => "zd.ticket_show",
        ("GET", "/api/v2/account") => "zd.account",
        _ => return format!("zd.other {} {}", method, p),
    };
    name.to_string()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"Web Password\"")],
        axum::Json(json!({"error": "Couldn't authenticate you"})),
    )
        .into_response()
}

fn authenticated(zd: &Zd, headers: &HeaderMap) -> bool {
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    if let Some(token) = auth.strip_prefix("Bearer ") {
        return token.trim() == zd.opts.oauth_token;
    }
    let Some(encoded) = auth.strip_prefix("Basic ") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(text) = String::from_utf8(decoded) else {
        return false;
    };
    // `{email}/token:{token}`; password basic auth is off (the default for new accounts).
    let Some((email, token)) = text.split_once("/token:") else {
        return false;
    };
    if token != zd.opts.token {
        return false;
    }
    // API tokens are account-wide: any known user's e-mail works with them.
    email.eq_ignore_ascii_case(&zd.opts.email)
        || zd
            .world
            .read()
            .expect("world lock")
            .users
            .values()
            .any(|u| {
                u.get("email")
                    .and_then(Value::as_str)
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
}

fn too_many(retry_after: Option<Duration>, body: Value) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Some(d) = retry_after {
        // Whole seconds, rounded up, at least 1.
        let secs = d.as_millis().div_ceil(1000).max(1);
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs.to_string()).expect("digits"),
        );
    }
    r
}

/// The organization id in `/api/v2/organizations/{id}[.json]`.
fn org_id_in_path(path: &str) -> Option<u64> {
    let rest = path.strip_prefix("/api/v2/organizations/")?;
    rest.split('/')
        .next()?
        .trim_end_matches(".json")
        .parse()
        .ok()
}

pub(crate) async fn gate(
    State(zd): State<Arc<Zd>>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let pattern = matched
        .as_ref()
        .map_or(req.uri().path(), |m| m.as_str())
        .to_string();
    let endpoint = endpoint_name(req.method(), &pattern);
    let response = admit(&zd, &endpoint, req, next).await;
    *zd.calls
        .lock()
        .expect("calls lock")
        .entry((endpoint, response.status().as_u16()))
        .or_default() += 1;
    response
}

async fn admit(zd: &Arc<Zd>, endpoint: &str, req: Request, next: Next) -> Response {
    let switches = zd.switches();
    if endpoint == "zd.account" && !switches.account_endpoint {
        return super::account::absent();
    }
    match zd.faults.decide(endpoint) {
        Some(Fault::Drop) => return dropped_connection(),
        Some(Fault::Outage) => {
            return (StatusCode::SERVICE_UNAVAILABLE, "Maintenance").into_response();
        }
        Some(Fault::ServerError) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(
                    json!({"error": "InternalServerError", "description": "Something went wrong"}),
                ),
            )
                .into_response();
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            let retry = retry_after_secs.filter(|_| !switches.omit_retry_after);
            return too_many(
                retry.map(Duration::from_secs),
                json!({"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per minute exceeded"}),
            );
        }
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    if !authenticated(zd, req.headers()) {
        return unauthorized();
    }
    let now = Instant::now();
    let window = Duration::from_millis(switches.rate_window_ms.max(1));
    let limit = switches.rate_limit_per_minute;
    let remaining = {
        let mut limits = zd.limits.lock().expect("limits lock");
        match limits.take("account", limit, window, now) {
            Ok(r) => r,
            Err(wait) => {
                drop(limits);
                let mut r = too_many(
                    (!switches.omit_retry_after).then_some(wait),
                    json!({"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per minute exceeded"}),
                );
                rate_headers(&mut r, limit, 0);
                return r;
            }
        }
    };
    // Endpoint limits, with the bodies the reference documents.
    let endpoint_limit = match endpoint {
        "zd.org_update" => {
            let key = match switches.update_org_limit_scope {
                UpdateLimitScope::PerOrganization => {
                    format!(
                        "update_org:{}",
                        org_id_in_path(req.uri().path()).unwrap_or(0)
                    )
                }
                UpdateLimitScope::Account => "update_org".to_string(),
            };
            Some((
                key,
                switches.update_org_limit_per_minute,
                json!({"errors": [{"code": "TooManyRequests", "title": "Too many requests to update"}]}),
            ))
        }
        "zd.incremental" | "zd.incremental_tickets" => Some((
            "incremental".to_string(),
            switches.incremental_limit_per_minute,
            json!({"error": "APIRateLimitExceeded", "description": "Number of allowed incremental export API requests per minute exceeded"}),
        )),
        _ => None,
    };
    if let Some((key, per_window, body)) = endpoint_limit {
        let taken = zd
            .limits
            .lock()
            .expect("limits lock")
            .take(&key, per_window, window, now);
        if let Err(wait) = taken {
            let mut r = too_many((!switches.omit_retry_after).then_some(wait), body);
            rate_headers(&mut r, limit, remaining);
            return r;
        }
    }
    let mut response = next.run(req).await;
    rate_headers(&mut response, limit, remaining);
    response
}

fn rate_headers(r: &mut Response, limit: u32, remaining: u32) {
    let h = r.headers_mut();
    h.insert("x-rate-limit", HeaderValue::from(limit));
    h.insert("x-rate-limit-remaining", HeaderValue::from(remaining));
}

pub(crate) async fn unknown_endpoint(State(zd): State<Arc<Zd>>, req: Request) -> Response {
    let endpoint = format!("zd.unknown {} {}", req.method(), req.uri().path());
    *zd.calls
        .lock()
        .expect("calls lock")
        .entry((endpoint, 404))
        .or_default() += 1;
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "InvalidEndpoint", "description": "Not found"})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_resets_with_the_window() {
        let mut rl = RateLimiter::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        assert_eq!(rl.take("a", 2, w, t0), Ok(1));
        assert_eq!(rl.take("a", 2, w, t0), Ok(0));
        let wait = rl
            .take("a", 2, w, t0 + Duration::from_secs(20))
            .unwrap_err();
        assert_eq!(wait, Duration::from_secs(40));
        assert_eq!(rl.take("a", 2, w, t0 + Duration::from_secs(60)), Ok(1));
        assert_eq!(rl.take("b", 2, w, t0), Ok(1));
    }

    #[test]
    fn endpoint_names_ignore_the_json_suffix() {
        assert_eq!(
            endpoint_name(&Method::GET, "/api/v2/organizations/show_many.json"),
            "zd.org_show_many"
        );
        assert_eq!(
            endpoint_name(&Method::PUT, "/api/v2/organizations/{id}"),
            "zd.org_update"
        );
    }

    #[test]
    fn org_id_is_read_from_either_path_form() {
        assert_eq!(org_id_in_path("/api/v2/organizations/42.json"), Some(42));
        assert_eq!(org_id_in_path("/api/v2/organizations/42"), Some(42));
        assert_eq!(org_id_in_path("/api/v2/organizations/show_many"), None);
    }

    #[test]
    fn invalid_body_matches_the_documented_duplicate_name_shape() {
        let body = invalid_body(&[Invalid {
            field: "name",
            description: "Name: Lorem Ipsum has already been taken".into(),
            error: "DuplicateValue",
        }]);
        assert_eq!(
            body,
            json!({"error":"RecordInvalid","description":"Record validation errors",
                "details":{"name":[{"description":"Name: Lorem Ipsum has already been taken","error":"DuplicateValue"}]}})
        );
    }
}
