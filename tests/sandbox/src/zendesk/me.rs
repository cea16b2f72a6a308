//! `GET /api/v2/users/me`: the user the request authenticates as, with its role — what a tool
//! reads to tell whether a token may manage organizations.
//!
//! An API token acts as the user whose e-mail it is sent with: a seeded user with that e-mail
//! (its `role` as seeded, `end-user` when absent), else the account's admin
//! (`--zendesk-email`). An OAuth token acts as the admin.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::Zd;

/// The e-mail of a `{email}/token:{token}` basic credential (the gate has checked it).
fn token_email(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = auth.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split_once("/token:")?.0.to_string())
}

pub(crate) async fn show(State(zd): State<Arc<Zd>>, headers: HeaderMap) -> Response {
    let email = token_email(&headers).unwrap_or_else(|| zd.opts.email.clone());
    let seeded = zd
        .world
        .read()
        .expect("world lock")
        .users
        .values()
        .find(|u| {
            u.get("email")
                .and_then(Value::as_str)
                .is_some_and(|e| e.eq_ignore_ascii_case(&email))
        })
        .cloned();
    let user = match seeded {
        Some(mut u) => {
            if u.get("role").and_then(Value::as_str).is_none() {
                u["role"] = json!("end-user");
            }
            u
        }
        None => json!({
            "id": 1, "name": "Sandbox Admin", "email": zd.opts.email, "role": "admin",
            "role_type": 4, "custom_role_id": null, "restricted_agent": false,
            "active": true, "verified": true,
        }),
    };
    axum::Json(json!({"user": user})).into_response()
}
