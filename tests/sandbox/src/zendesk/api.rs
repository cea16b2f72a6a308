//! The Zendesk API endpoints orglink uses, under `/api/v2/` (with and without `.json`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use base64::Engine;
use serde_json::{Value, json};

use super::gate::{ApiError, base_url};
use super::store::{FieldChange, Org, OrgError, OrgInput, format_time, parse_time};
use super::webhooks::{Webhook, events_for_update, ulid};
use super::{JOBS_KEPT, Job, JobFailureShape, UpsertStatus, Zd, now_unix};

type Z = State<Arc<Zd>>;
type Params = Query<HashMap<String, String>>;
type ApiResult = Result<Response, ApiError>;

/// Most list endpoints return at most 100 records per page.
const MAX_PAGE: usize = 100;
/// Offset pagination refuses to go past the first 10,000 records.
const OFFSET_LIMIT: usize = 10_000;
/// show_many and the bulk endpoints take up to 100 items.
const MAX_MANY: usize = 100;

pub(crate) fn router(_zd: Arc<Zd>) -> Router<Arc<Zd>> {
    let mut r = Router::new();
    // Both `/x` and `/x.json` (clients use both); `{id}` captures a `.json` suffix itself.
    let mut both = |path: &str, m: MethodRouter<Arc<Zd>>| {
        r = std::mem::take(&mut r).route(path, m.clone());
        if !path.ends_with('}') {
            r = std::mem::take(&mut r).route(&format!("{path}.json"), m);
        }
    };
    both("/api/v2/organizations", get(org_list).post(org_create));
    both("/api/v2/organizations/show_many", get(org_show_many));
    both("/api/v2/organizations/search", get(org_search));
    both("/api/v2/organizations/count", get(org_count));
    both(
        "/api/v2/organizations/create_or_update",
        post(org_create_or_update),
    );
    both("/api/v2/organizations/create_many", post(org_create_many));
    both("/api/v2/organizations/update_many", put(org_update_many));
    both(
        "/api/v2/organizations/{id}",
        get(org_show).put(org_update).delete(org_delete),
    );
    both(
        "/api/v2/organizations/{id}/organization_memberships",
        get(org_memberships),
    );
    both("/api/v2/organizations/{id}/users", get(org_users));
    both("/api/v2/organizations/{id}/tickets", get(org_tickets));
    both("/api/v2/job_statuses/{id}", get(job_show));
    both("/api/v2/incremental/organizations", get(org_incremental));
    both(
        "/api/v2/incremental/tickets/cursor",
        get(ticket_incremental),
    );
    both(
        "/api/v2/organization_fields",
        get(field_list).post(field_create),
    );
    both("/api/v2/webhooks", get(webhook_list).post(webhook_create));
    both(
        "/api/v2/webhooks/{id}",
        get(webhook_show).delete(webhook_delete),
    );
    both("/api/v2/webhooks/{id}/signing_secret", get(webhook_secret));
    both("/api/v2/users", get(user_list));
    both("/api/v2/users/show_many", get(user_show_many));
    both("/api/v2/users/{id}", get(user_show));
    both(
        "/api/v2/users/{id}/organization_memberships",
        get(user_memberships),
    );
    both("/api/v2/organization_memberships", get(membership_list));
    both("/api/v2/tickets", get(ticket_list));
    both("/api/v2/tickets/{id}", get(ticket_show));
    both("/api/v2/account", get(super::account::show));
    r
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn path_id(raw: &str) -> Result<u64, ApiError> {
    raw.trim_end_matches(".json")
        .parse()
        .map_err(|_| ApiError::NotFound)
}

fn body_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "InvalidJSON",
            format!("The request body is not valid JSON: {e}"),
        )
    })
}

/// The object under `key` in the body (`{"organization":{...}}`).
fn wrapped<'a>(body: &'a Value, key: &str) -> Result<&'a Value, ApiError> {
    body.get(key).filter(|v| v.is_object()).ok_or_else(|| {
        ApiError::bad_request(
            "InvalidParameter",
            format!("the body must hold an object under \"{key}\""),
        )
    })
}

fn json_ok(status: StatusCode, v: Value) -> ApiResult {
    Ok((status, axum::Json(v)).into_response())
}

fn comma_list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn unb64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// Opaque cursor for "after/before record id".
fn cursor_of(id: u64) -> String {
    b64(&format!("id:{id}"))
}

fn id_of_cursor(c: &str) -> Result<u64, ApiError> {
    unb64(c)
        .and_then(|s| s.strip_prefix("id:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| ApiError::bad_request("InvalidPaginationParameter", "invalid cursor"))
}

fn page_size(q: &HashMap<String, String>) -> Result<usize, ApiError> {
    match q.get("page[size]").or_else(|| q.get("per_page")) {
        None => Ok(MAX_PAGE),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_request(
                "InvalidPaginationParameter",
                format!("page size must be between 1 and {MAX_PAGE}"),
            )),
        },
    }
}

fn is_cursor_request(q: &HashMap<String, String>) -> bool {
    q.keys().any(|k| k.starts_with("page["))
}

/// A cursor page over records ordered by id: `{key:[...], meta, links}`.
fn cursor_page(
    key: &str,
    items: Vec<Value>,
    first_id: Option<u64>,
    last_id: Option<u64>,
    has_more: bool,
    list_url: &str,
    size: usize,
) -> Value {
    let link = |dir: &str, id: Option<u64>| {
        id.map(|id| {
            format!(
                "{list_url}?page%5B{dir}%5D={}&page%5Bsize%5D={size}",
                cursor_of(id)
            )
        })
    };
    json!({
        key: items,
        "meta": {
            "has_more": has_more,
            "after_cursor": last_id.map(cursor_of),
            "before_cursor": first_id.map(cursor_of),
        },
        "links": {"next": link("after", last_id), "prev": link("before", first_id)},
    })
}

/// Cursor listing over plain records (users, tickets, memberships) filtered by `keep`.
fn list_records<'a>(
    key: &str,
    records: impl DoubleEndedIterator<Item = (&'a u64, &'a Value)>,
    q: &HashMap<String, String>,
    base: &str,
    path: &str,
) -> ApiResult {
    let size = page_size(q)?;
    let after = q.get("page[after]").map(|c| id_of_cursor(c)).transpose()?;
    let mut it = records.filter(|(id, _)| after.is_none_or(|a| **id > a));
    let page: Vec<(&u64, &Value)> = it.by_ref().take(size).collect();
    let more = it.next().is_some();
    let first = page.first().map(|(id, _)| **id);
    let last = page.last().map(|(id, _)| **id);
    let items = page.into_iter().map(|(_, v)| v.clone()).collect();
    json_ok(
        StatusCode::OK,
        cursor_page(
            key,
            items,
            first,
            last,
            more,
            &format!("{base}{path}"),
            size,
        ),
    )
}

fn org_response(status: StatusCode, org: &Org, base: &str) -> ApiResult {
    json_ok(status, json!({"organization": org.to_json(base)}))
}

fn orgs_response(orgs: &[&Org], base: &str) -> ApiResult {
    let list: Vec<Value> = orgs.iter().map(|o| o.to_json(base)).collect();
    json_ok(
        StatusCode::OK,
        json!({"organizations": list, "count": list.len(), "next_page": null, "previous_page": null}),
    )
}

fn changes_json(changes: &[FieldChange]) -> Vec<Value> {
    changes
        .iter()
        .map(|c| json!({"field": c.field, "old": c.old, "new": c.new}))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Writes, shared by the single endpoints and the bulk jobs.

impl Zd {
    fn create_org(self: &Arc<Self>, input: &OrgInput) -> Result<Org, OrgError> {
        let rules = self.switches().rules();
        let org = self
            .world
            .write()
            .expect("world lock")
            .orgs
            .create(input, now_unix(), rules)?;
        self.after_create(&org);
        Ok(org)
    }

    fn after_create(self: &Arc<Self>, org: &Org) {
        self.reindex(org.id, Some(org));
        let fields = org
            .to_json("")
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !matches!(k.as_str(), "url" | "id" | "created_at" | "updated_at"))
            .map(|(k, v)| json!({"field": k, "old": null, "new": v}))
            .collect();
        self.log_write(format!("organization/{}", org.id), "create", fields);
        self.emit(
            org,
            vec![("zen:event-type:organization.created".into(), json!({}))],
        );
    }

    fn update_org(self: &Arc<Self>, id: u64, input: &OrgInput) -> Result<Org, OrgError> {
        let rules = self.switches().rules();
        let (org, changes) =
            self.world
                .write()
                .expect("world lock")
                .orgs
                .update(id, input, now_unix(), rules)?;
        if !changes.is_empty() {
            self.reindex(id, Some(&org));
            self.log_write(
                format!("organization/{id}"),
                "update",
                changes_json(&changes),
            );
            self.emit(&org, events_for_update(&changes));
        }
        Ok(org)
    }

    /// Returns the record and whether it was created.
    fn upsert_org(self: &Arc<Self>, input: &OrgInput) -> Result<(Org, bool), OrgError> {
        let target = self
            .world
            .read()
            .expect("world lock")
            .orgs
            .upsert_target(input);
        match target {
            Some(id) => self.update_org(id, input).map(|o| (o, false)),
            None => self.create_org(input).map(|o| (o, true)),
        }
    }

    fn delete_org(self: &Arc<Self>, id: u64) -> Result<Org, OrgError> {
        let org = self
            .world
            .write()
            .expect("world lock")
            .orgs
            .delete(id, now_unix())?;
        self.reindex(id, None);
        self.log_write(format!("organization/{id}"), "delete", Vec::new());
        self.emit(
            &org,
            vec![("zen:event-type:organization.deleted".into(), json!({}))],
        );
        Ok(org)
    }
}

// ---------------------------------------------------------------------------------------------
// Organizations

async fn org_list(State(zd): Z, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let base = base_url(&headers);
    let size = page_size(&q)?;
    let w = zd.world.read().expect("world lock");
    if is_cursor_request(&q) {
        let (page, more) = if let Some(b) = q.get("page[before]") {
            w.orgs.page_before(id_of_cursor(b)?, size)
        } else {
            let after = q.get("page[after]").map(|c| id_of_cursor(c)).transpose()?;
            w.orgs.page_after(after, size)
        };
        let items = page.iter().map(|o| o.to_json(&base)).collect();
        let (first, last) = (page.first().map(|o| o.id), page.last().map(|o| o.id));
        return json_ok(
            StatusCode::OK,
            cursor_page(
                "organizations",
                items,
                first,
                last,
                more,
                &format!("{base}/api/v2/organizations.json"),
                size,
            ),
        );
    }
    // Offset form: `page` and `per_page`; refused past the first 10,000 records.
    let page: usize = match q.get("page") {
        None => 1,
        Some(p) => p.parse().ok().filter(|p| *p >= 1).ok_or_else(|| {
            ApiError::bad_request(
                "InvalidPaginationParameter",
                "page must be a positive integer",
            )
        })?,
    };
    if (page - 1) * size >= OFFSET_LIMIT {
        return Err(ApiError::bad_request(
            "InvalidPaginationParameter",
            "Offset pagination is limited to the first 10000 records. Use cursor pagination instead.",
        ));
    }
    let orgs = w.orgs.page_offset(page, size);
    let total = w.orgs.len();
    let url = |p: usize| format!("{base}/api/v2/organizations.json?page={p}&per_page={size}");
    let next = (page * size < total && page * size < OFFSET_LIMIT).then(|| url(page + 1));
    let prev = (page > 1).then(|| url(page - 1));
    let list: Vec<Value> = orgs.iter().map(|o| o.to_json(&base)).collect();
    json_ok(
        StatusCode::OK,
        json!({"organizations": list, "count": total, "next_page": next, "previous_page": prev}),
    )
}

async fn org_show(State(zd): Z, Path(id): Path<String>, headers: HeaderMap) -> ApiResult {
    let id = path_id(&id)?;
    let w = zd.world.read().expect("world lock");
    let org = w.orgs.get(id).ok_or(ApiError::NotFound)?;
    org_response(StatusCode::OK, org, &base_url(&headers))
}

async fn org_create(State(zd): Z, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = body_json(&body)?;
    let input = OrgInput::parse(wrapped(&body, "organization")?)?;
    let org = zd.create_org(&input)?;
    org_response(StatusCode::CREATED, &org, &base_url(&headers))
}

async fn org_update(
    State(zd): Z,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let id = path_id(&id)?;
    let body = body_json(&body)?;
    let input = OrgInput::parse(wrapped(&body, "organization")?)?;
    let org = zd.update_org(id, &input)?;
    org_response(StatusCode::OK, &org, &base_url(&headers))
}

async fn org_delete(State(zd): Z, Path(id): Path<String>) -> ApiResult {
    zd.delete_org(path_id(&id)?)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn org_create_or_update(State(zd): Z, headers: HeaderMap, body: Bytes) -> ApiResult {
    let body = body_json(&body)?;
    let input = OrgInput::parse(wrapped(&body, "organization")?)?;
    let (org, created) = zd.upsert_org(&input)?;
    let status = match (zd.switches().create_or_update_status, created) {
        (UpsertStatus::Created201Updated200, true) | (UpsertStatus::Always201, _) => {
            StatusCode::CREATED
        }
        _ => StatusCode::OK,
    };
    org_response(status, &org, &base_url(&headers))
}

async fn org_show_many(State(zd): Z, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let base = base_url(&headers);
    let (ids, ext) = (q.get("ids"), q.get("external_ids"));
    let values = comma_list(ids.or(ext).ok_or_else(|| {
        ApiError::bad_request("InvalidParameter", "ids or external_ids is required")
    })?);
    if values.len() > MAX_MANY {
        return Err(ApiError::bad_request(
            "TooManyValues",
            format!("You can only request up to {MAX_MANY} records"),
        ));
    }
    let use_search = ext.is_some() && ids.is_none() && zd.switches().show_many_uses_search_index;
    let w = zd.world.read().expect("world lock");
    let mut found: Vec<&Org> = Vec::new();
    for v in &values {
        let matches: Vec<&Org> = if ids.is_some() {
            v.parse()
                .ok()
                .and_then(|id| w.orgs.get(id))
                .into_iter()
                .collect()
        } else if use_search {
            let hits = zd
                .search
                .lock()
                .expect("search lock")
                .external_id(Instant::now(), v);
            hits.into_iter().filter_map(|id| w.orgs.get(id)).collect()
        } else {
            w.orgs.with_external_id(v)
        };
        for o in matches {
            if !found.iter().any(|f| f.id == o.id) {
                found.push(o);
            }
        }
    }
    orgs_response(&found, &base)
}

async fn org_search(State(zd): Z, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let base = base_url(&headers);
    let hits = match (q.get("external_id"), q.get("name")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                "Search by external_id or name, but not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                "external_id or name is required",
            ));
        }
        (Some(e), None) => zd
            .search
            .lock()
            .expect("search lock")
            .external_id(Instant::now(), e),
        (None, Some(n)) => zd
            .search
            .lock()
            .expect("search lock")
            .name(Instant::now(), n),
    };
    let w = zd.world.read().expect("world lock");
    let found: Vec<&Org> = hits.into_iter().filter_map(|id| w.orgs.get(id)).collect();
    orgs_response(&found, &base)
}

async fn org_count(State(zd): Z) -> ApiResult {
    let n = zd.world.read().expect("world lock").orgs.len();
    json_ok(
        StatusCode::OK,
        json!({"count": {"value": n, "refreshed_at": format_time(now_unix())}}),
    )
}

async fn org_incremental(State(zd): Z, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let base = base_url(&headers);
    let sw = zd.switches();
    let start: i64 = q
        .get("start_time")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ApiError::bad_request(
                "InvalidValue",
                "start_time is required and must be a Unix time in seconds",
            )
        })?;
    let now = now_unix();
    let newest = now - sw.incremental_min_age_secs;
    if start > newest {
        return Err(ApiError::bad_request(
            "InvalidValue",
            format!(
                "Too recent start_time. Use a start_time older than {} seconds",
                sw.incremental_min_age_secs
            ),
        ));
    }
    let w = zd.world.read().expect("world lock");
    let page = w.orgs.export_page(
        start,
        newest,
        sw.incremental_page_size,
        sw.incremental_includes_deleted,
        sw.incremental_full_second,
    );
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|(o, deleted)| {
            let mut v = o.to_json(&base);
            if let Some(at) = deleted {
                v["deleted_at"] = json!(format_time(*at));
                v["updated_at"] = json!(format_time(*at));
            }
            v
        })
        .collect();
    json_ok(
        StatusCode::OK,
        json!({
            "organizations": items,
            "count": items.len(),
            "end_of_stream": page.end_of_stream,
            "end_time": page.end_time,
            "next_page": format!("{base}/api/v2/incremental/organizations.json?start_time={}", page.end_time),
        }),
    )
}

// ---------------------------------------------------------------------------------------------
// Bulk jobs

fn failure(
    shape: JobFailureShape,
    index: usize,
    id: Option<u64>,
    action: &str,
    e: &OrgError,
) -> Value {
    let (error, details) = match e {
        OrgError::NotFound => ("RecordNotFound".to_string(), "Not found".to_string()),
        OrgError::Invalid(p) => (
            p.first().map_or("RecordInvalid", |p| p.error).to_string(),
            p.iter()
                .map(|p| p.description.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        OrgError::BadRequest(d) => ("InvalidParameter".to_string(), d.clone()),
    };
    match shape {
        JobFailureShape::ErrorDetails => {
            json!({"index": index, "id": id, "error": error, "details": details})
        }
        JobFailureShape::SuccessFalse => json!({
            "index": index, "id": id, "action": action, "success": false, "status": "Failed",
            "error": error, "details": details,
        }),
    }
}

/// One item of a bulk update: which organization and which fields.
enum UpdateTarget {
    Id(u64),
    ExternalId(String),
}

fn job_json(job: &Job) -> Value {
    json!({
        "id": job.id, "url": job.url, "job_type": job.job_type, "status": job.status,
        "total": job.total, "progress": job.progress, "message": job.message, "results": job.results,
    })
}

impl Zd {
    fn enqueue_job(self: &Arc<Self>, job_type: &'static str, total: usize, base: &str) -> Job {
        let n = self.next_counter();
        let id = format!("{:016x}{:016x}", now_unix() as u64, n);
        let job = Job {
            url: format!("{base}/api/v2/job_statuses/{id}.json"),
            id,
            job_type,
            status: "queued",
            total,
            progress: 0,
            message: None,
            results: Value::Null,
            created: Instant::now(),
        };
        let mut jobs = self.jobs.lock().expect("jobs lock");
        while jobs.len() >= JOBS_KEPT {
            jobs.pop_front();
        }
        jobs.push_back(job.clone());
        job
    }

    fn set_job(&self, id: &str, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self
            .jobs
            .lock()
            .expect("jobs lock")
            .iter_mut()
            .find(|j| j.id == id)
        {
            f(j);
        }
    }

    /// Runs `work` after the configured delay, recording its results on the job.
    fn run_job(
        self: &Arc<Self>,
        id: String,
        work: impl FnOnce(&Arc<Zd>) -> Vec<Value> + Send + 'static,
    ) {
        let zd = self.clone();
        let delay = Duration::from_millis(self.switches().job_delay_ms);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            zd.set_job(&id, |j| j.status = "working");
            let results = work(&zd);
            let message = format!(
                "Completed at {}",
                format_time(now_unix())
                    .replace('T', " ")
                    .replace('Z', " +0000")
            );
            zd.set_job(&id, |j| {
                j.progress = results.len();
                j.results = Value::Array(results);
                j.status = "completed";
                j.message = Some(message);
            });
        });
    }
}

async fn org_create_many(State(zd): Z, headers: HeaderMap, body: Bytes) -> ApiResult {
    let base = base_url(&headers);
    let body = body_json(&body)?;
    let list = body
        .get("organizations")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ApiError::bad_request("InvalidParameter", "organizations must be an array")
        })?;
    if list.len() > MAX_MANY {
        return Err(ApiError::bad_request(
            "TooManyValues",
            format!("You can only create up to {MAX_MANY} records at once"),
        ));
    }
    let inputs = list
        .iter()
        .map(OrgInput::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let job = zd.enqueue_job("bulk_create_organizations", inputs.len(), &base);
    let shape = zd.switches().job_failure_shape;
    zd.run_job(job.id.clone(), move |zd| {
        inputs
            .iter()
            .enumerate()
            .map(|(i, input)| match zd.create_org(input) {
                Ok(o) => json!({"id": o.id, "index": i}),
                Err(e) => failure(shape, i, None, "create", &e),
            })
            .collect()
    });
    json_ok(StatusCode::OK, json!({"job_status": job_json(&job)}))
}

async fn org_update_many(
    State(zd): Z,
    Query(q): Params,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let base = base_url(&headers);
    let body = body_json(&body)?;
    let mut items: Vec<(UpdateTarget, OrgInput)> = Vec::new();
    if let Some(list) = body.get("organizations").and_then(Value::as_array) {
        // Batch form: each item names its organization by id (or external_id).
        for v in list {
            let input = OrgInput::parse(v)?;
            let target = match (input.id, v.get("external_id").and_then(Value::as_str)) {
                (Some(id), _) => UpdateTarget::Id(id),
                (None, Some(e)) => UpdateTarget::ExternalId(e.to_string()),
                (None, None) => {
                    return Err(ApiError::bad_request(
                        "InvalidParameter",
                        "each organization needs an id or external_id",
                    ));
                }
            };
            items.push((target, input));
        }
    } else {
        // Bulk form: the same change to `?ids=` or `?external_ids=`.
        let input = OrgInput::parse(wrapped(&body, "organization")?)?;
        if let Some(ids) = q.get("ids") {
            for id in comma_list(ids) {
                let id = id.parse().map_err(|_| {
                    ApiError::bad_request("InvalidParameter", "ids must be numbers")
                })?;
                items.push((UpdateTarget::Id(id), input.clone()));
            }
        } else if let Some(ext) = q.get("external_ids") {
            for e in comma_list(ext) {
                items.push((UpdateTarget::ExternalId(e), input.clone()));
            }
        } else {
            return Err(ApiError::bad_request(
                "InvalidParameter",
                "ids, external_ids or organizations is required",
            ));
        }
    }
    if items.len() > MAX_MANY {
        return Err(ApiError::bad_request(
            "TooManyValues",
            format!("You can only update up to {MAX_MANY} records at once"),
        ));
    }
    let job = zd.enqueue_job("bulk_update_organizations", items.len(), &base);
    let shape = zd.switches().job_failure_shape;
    zd.run_job(job.id.clone(), move |zd| {
        items
            .iter()
            .enumerate()
            .map(|(i, (target, input))| {
                let id = match target {
                    UpdateTarget::Id(id) => Some(*id),
                    UpdateTarget::ExternalId(e) => zd
                        .world
                        .read()
                        .expect("world lock")
                        .orgs
                        .with_external_id(e)
                        .first()
                        .map(|o| o.id),
                };
                let Some(id) = id else {
                    return failure(shape, i, None, "update", &OrgError::NotFound);
                };
                // The batch item's own external_id names the target; don't treat it as a change.
                let mut input = input.clone();
                input.id = None;
                if matches!(target, UpdateTarget::ExternalId(_)) {
                    input.external_id = None;
                }
                match zd.update_org(id, &input) {
                    Ok(_) => {
                        json!({"id": id, "action": "update", "success": true, "status": "Updated"})
                    }
                    Err(e) => failure(shape, i, Some(id), "update", &e),
                }
            })
            .collect()
    });
    json_ok(StatusCode::OK, json!({"job_status": job_json(&job)}))
}

async fn job_show(State(zd): Z, Path(id): Path<String>) -> ApiResult {
    let id = id.trim_end_matches(".json");
    let jobs = zd.jobs.lock().expect("jobs lock");
    // Job data is kept for an hour.
    let job = jobs
        .iter()
        .find(|j| j.id == id && j.created.elapsed() < Duration::from_secs(3600))
        .ok_or(ApiError::NotFound)?;
    json_ok(StatusCode::OK, json!({"job_status": job_json(job)}))
}

// ---------------------------------------------------------------------------------------------
// Organization fields

async fn field_list(State(zd): Z) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    let list: Vec<&Value> = w.org_fields.values().collect();
    json_ok(
        StatusCode::OK,
        json!({"organization_fields": list, "count": list.len(), "next_page": null, "previous_page": null}),
    )
}

async fn field_create(State(zd): Z, headers: HeaderMap, body: Bytes) -> ApiResult {
    let base = base_url(&headers);
    let body = body_json(&body)?;
    let f = wrapped(&body, "organization_field")?;
    let key = f
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let title = f
        .get("title")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let type_ = f
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut problems = Vec::new();
    for (field, v) in [("key", &key), ("title", &title), ("type", &type_)] {
        if v.is_empty() {
            problems.push(super::store::Invalid {
                field,
                description: format!("{}: cannot be blank", capitalize(field)),
                error: "BlankValue",
            });
        }
    }
    let mut w = zd.world.write().expect("world lock");
    if w.org_fields
        .values()
        .any(|v| v.get("key").and_then(Value::as_str) == Some(&key))
    {
        problems.push(super::store::Invalid {
            field: "key",
            description: format!("Key: {key} has already been taken"),
            error: "DuplicateValue",
        });
    }
    if !problems.is_empty() {
        return Err(ApiError::Invalid(problems));
    }
    let id = w.next_id;
    w.next_id += 1;
    let now = format_time(now_unix());
    let mut record = f.clone();
    let position = w.org_fields.len();
    let extra = json!({
        "id": id, "url": format!("{base}/api/v2/organization_fields/{id}.json"), "active": true,
        "position": position, "system": false, "created_at": now, "updated_at": now,
        "description": f.get("description").cloned().unwrap_or(json!("")),
    });
    for (k, v) in extra.as_object().expect("object") {
        record[k] = v.clone();
    }
    w.org_fields.insert(id, record.clone());
    drop(w);
    zd.log_write(
        format!("organization_field/{id}"),
        "create",
        vec![json!({"field": "key", "old": null, "new": key})],
    );
    json_ok(StatusCode::CREATED, json!({"organization_field": record}))
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Webhooks

async fn webhook_create(State(zd): Z, body: Bytes) -> ApiResult {
    let body = body_json(&body)?;
    let h = wrapped(&body, "webhook")?;
    let mut problems = Vec::new();
    for field in [
        "name",
        "endpoint",
        "http_method",
        "request_format",
        "status",
    ] {
        if h.get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            problems.push(json!({"code": "InvalidInput", "title": format!("{field} is required")}));
        }
    }
    if !problems.is_empty() {
        return json_ok(StatusCode::BAD_REQUEST, json!({"errors": problems}));
    }
    let id = ulid(zd.next_counter());
    let now = format_time(now_unix());
    let mut record = h.clone();
    record["id"] = json!(id);
    record["created_at"] = json!(now);
    record["created_by"] = json!(zd.opts.email);
    record["updated_at"] = json!(now);
    if record.get("subscriptions").is_none() {
        record["subscriptions"] = json!([]);
    }
    // A fresh random-looking secret per webhook (deterministic per id: the sandbox needs no RNG here).
    let secret =
        base64::engine::general_purpose::STANDARD.encode(format!("orglink-sandbox-secret-{id}"));
    zd.world.write().expect("world lock").webhooks.insert(
        id.clone(),
        Webhook {
            record: record.clone(),
            secret,
        },
    );
    zd.log_write(
        format!("webhook/{id}"),
        "create",
        vec![json!({"field": "endpoint", "old": null, "new": record["endpoint"]})],
    );
    json_ok(StatusCode::CREATED, json!({"webhook": record}))
}

async fn webhook_list(State(zd): Z) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    let list: Vec<&Value> = w.webhooks.values().map(|h| &h.record).collect();
    json_ok(
        StatusCode::OK,
        json!({"webhooks": list, "meta": {"has_more": false, "after_cursor": null, "before_cursor": null},
               "links": {"next": null, "prev": null}}),
    )
}

async fn webhook_show(State(zd): Z, Path(id): Path<String>) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    let h = w
        .webhooks
        .get(id.trim_end_matches(".json"))
        .ok_or(ApiError::NotFound)?;
    json_ok(StatusCode::OK, json!({"webhook": h.record}))
}

async fn webhook_delete(State(zd): Z, Path(id): Path<String>) -> ApiResult {
    let id = id.trim_end_matches(".json").to_string();
    zd.world
        .write()
        .expect("world lock")
        .webhooks
        .remove(&id)
        .ok_or(ApiError::NotFound)?;
    zd.log_write(format!("webhook/{id}"), "delete", Vec::new());
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn webhook_secret(State(zd): Z, Path(id): Path<String>) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    let h = w
        .webhooks
        .get(id.trim_end_matches(".json"))
        .ok_or(ApiError::NotFound)?;
    json_ok(
        StatusCode::OK,
        json!({"signing_secret": {"algorithm": "SHA256", "secret": h.secret}}),
    )
}

// ---------------------------------------------------------------------------------------------
// Users, memberships, tickets (for the ticket-attribution audit)

fn field_u64(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

async fn user_list(State(zd): Z, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    list_records(
        "users",
        w.users.iter(),
        &q,
        &base_url(&headers),
        "/api/v2/users.json",
    )
}

async fn user_show(State(zd): Z, Path(id): Path<String>) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    let u = w.users.get(&path_id(&id)?).ok_or(ApiError::NotFound)?;
    json_ok(StatusCode::OK, json!({"user": u}))
}

async fn user_show_many(State(zd): Z, Query(q): Params) -> ApiResult {
    let ids = comma_list(q.get("ids").map_or("", String::as_str));
    if ids.len() > MAX_MANY {
        return Err(ApiError::bad_request(
            "TooManyValues",
            format!("You can only request up to {MAX_MANY} records"),
        ));
    }
    let w = zd.world.read().expect("world lock");
    let list: Vec<&Value> = ids
        .iter()
        .filter_map(|i| i.parse().ok())
        .filter_map(|i: u64| w.users.get(&i))
        .collect();
    json_ok(
        StatusCode::OK,
        json!({"users": list, "count": list.len(), "next_page": null, "previous_page": null}),
    )
}

async fn user_memberships(
    State(zd): Z,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> ApiResult {
    let uid = path_id(&id)?;
    let w = zd.world.read().expect("world lock");
    let path = format!("/api/v2/users/{uid}/organization_memberships.json");
    let it = w
        .memberships
        .iter()
        .filter(|(_, m)| field_u64(m, "user_id") == Some(uid));
    list_records(
        "organization_memberships",
        it,
        &q,
        &base_url(&headers),
        &path,
    )
}

async fn org_memberships(
    State(zd): Z,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> ApiResult {
    let oid = path_id(&id)?;
    let w = zd.world.read().expect("world lock");
    let path = format!("/api/v2/organizations/{oid}/organization_memberships.json");
    let it = w
        .memberships
        .iter()
        .filter(|(_, m)| field_u64(m, "organization_id") == Some(oid));
    list_records(
        "organization_memberships",
        it,
        &q,
        &base_url(&headers),
        &path,
    )
}

async fn membership_list(State(zd): Z, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    let path = "/api/v2/organization_memberships.json";
    list_records(
        "organization_memberships",
        w.memberships.iter(),
        &q,
        &base_url(&headers),
        path,
    )
}

async fn org_users(
    State(zd): Z,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> ApiResult {
    let oid = path_id(&id)?;
    let w = zd.world.read().expect("world lock");
    let members: std::collections::HashSet<u64> = w
        .memberships
        .values()
        .filter(|m| field_u64(m, "organization_id") == Some(oid))
        .filter_map(|m| field_u64(m, "user_id"))
        .collect();
    let path = format!("/api/v2/organizations/{oid}/users.json");
    let it = w.users.iter().filter(|(id, _)| members.contains(id));
    list_records("users", it, &q, &base_url(&headers), &path)
}

async fn org_tickets(
    State(zd): Z,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> ApiResult {
    let oid = path_id(&id)?;
    let w = zd.world.read().expect("world lock");
    let path = format!("/api/v2/organizations/{oid}/tickets.json");
    let it = w
        .tickets
        .iter()
        .filter(|(_, t)| field_u64(t, "organization_id") == Some(oid));
    list_records("tickets", it, &q, &base_url(&headers), &path)
}

async fn ticket_list(State(zd): Z, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    list_records(
        "tickets",
        w.tickets.iter(),
        &q,
        &base_url(&headers),
        "/api/v2/tickets.json",
    )
}

async fn ticket_show(State(zd): Z, Path(id): Path<String>) -> ApiResult {
    let w = zd.world.read().expect("world lock");
    let t = w.tickets.get(&path_id(&id)?).ok_or(ApiError::NotFound)?;
    json_ok(StatusCode::OK, json!({"ticket": t}))
}

/// `/api/v2/incremental/tickets/cursor?start_time=` or `?cursor=`: tickets by (updated_at, id).
/// `include=users` sideloads the page's requesters and submitters; `exclude_deleted=true` leaves
/// out tickets with status `deleted`; a `start_time` within the last minute is refused (the
/// `incremental_min_age_secs` switch), as for the organization export.
async fn ticket_incremental(State(zd): Z, Query(q): Params, headers: HeaderMap) -> ApiResult {
    let base = base_url(&headers);
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let after: (i64, u64) = if let Some(c) = q.get("cursor") {
        unb64(c)
            .and_then(|s| {
                let (t, id) = s.strip_prefix("t:")?.split_once(':')?;
                Some((t.parse().ok()?, id.parse().ok()?))
            })
            .ok_or_else(|| ApiError::bad_request("InvalidValue", "invalid cursor"))?
    } else {
        let start: i64 = q
            .get("start_time")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                ApiError::bad_request("InvalidValue", "start_time or cursor is required")
            })?;
        let min_age = zd.switches().incremental_min_age_secs;
        if start > now_unix() - min_age {
            return Err(ApiError::bad_request(
                "InvalidValue",
                format!("Too recent start_time. Use a start_time older than {min_age} seconds"),
            ));
        }
        (start, 0)
    };
    let exclude_deleted = q.get("exclude_deleted").is_some_and(|v| v == "true");
    let w = zd.world.read().expect("world lock");
    let mut keyed: Vec<((i64, u64), &Value)> = w
        .tickets
        .iter()
        .map(|(id, t)| {
            let at = t
                .get("updated_at")
                .and_then(Value::as_str)
                .and_then(parse_time)
                .unwrap_or(0);
            ((at, *id), t)
        })
        .filter(|(_, t)| {
            !(exclude_deleted && t.get("status").and_then(Value::as_str) == Some("deleted"))
        })
        .filter(|(k, _)| {
            if q.contains_key("cursor") {
                *k > after
            } else {
                *k >= after
            }
        })
        .collect();
    keyed.sort_by_key(|(k, _)| *k);
    let more = keyed.len() > per_page;
    keyed.truncate(per_page);
    let last = keyed.last().map(|(k, _)| *k).unwrap_or(after);
    let cursor = b64(&format!("t:{}:{}", last.0, last.1));
    let tickets: Vec<&Value> = keyed.iter().map(|(_, t)| *t).collect();
    let sideloads_users = q
        .get("include")
        .is_some_and(|i| i.split(',').any(|s| s.trim() == "users"));
    let users: Option<Vec<&Value>> = sideloads_users.then(|| {
        let ids: std::collections::BTreeSet<u64> = tickets
            .iter()
            .flat_map(|t| [field_u64(t, "requester_id"), field_u64(t, "submitter_id")])
            .flatten()
            .collect();
        ids.iter().filter_map(|id| w.users.get(id)).collect()
    });
    let mut body = json!({
            "tickets": tickets,
            "after_cursor": cursor,
            "after_url": format!("{base}/api/v2/incremental/tickets/cursor.json?cursor={cursor}"),
            "before_cursor": null,
            "before_url": null,
            "end_of_stream": !more,
    });
    if let Some(users) = users {
        body["users"] = json!(users);
    }
    json_ok(StatusCode::OK, body)
}
