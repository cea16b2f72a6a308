//! `GET /api/v2/account`: the account's own record, with the subdomain it answers for.
//!
//! Neither `reference/zendesk-api.md` nor the OpenAPI spec documents this endpoint (the spec has
//! `/api/v2/account/settings`, which carries no subdomain), so whether Zendesk answers it is
//! UNVERIFIED: the `account_endpoint` switch serves it, and by default it is absent (the 404 an
//! unknown endpoint gets), as the reference supports. orglink's client checks the reported
//! subdomain where it answers and tolerates the 404 (docs/assumptions.md).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Zd;

/// The account: `subdomain` and `url` (`https://{subdomain}.zendesk.com`), the two fields a
/// client can read the subdomain from.
pub(crate) async fn show(State(zd): State<Arc<Zd>>) -> Response {
    let subdomain = &zd.opts.subdomain;
    axum::Json(json!({"account": {
        "url": format!("https://{subdomain}.zendesk.com"),
        "subdomain": subdomain,
        "name": subdomain,
        "sandbox": false,
        "time_zone": "UTC",
    }}))
    .into_response()
}

/// What the endpoint answers while the switch is off: the body of any unknown endpoint, before
/// authentication or rate limits.
pub(crate) fn absent() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "InvalidEndpoint", "description": "Not found"})),
    )
        .into_response()
}
