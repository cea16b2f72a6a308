//! The Zendesk simulator driven over loopback HTTP, as orglink's client will drive it.

use std::time::{Duration, Instant};

use base64::Engine;
use hmac::{Hmac, Mac};
use orglink_sandbox::scenario::ZendeskSeed;
use orglink_sandbox::zendesk::{self, ZendeskOptions};
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

struct Sandbox {
    base: String,
    http: Client,
}

const EMAIL: &str = "admin@example.com";
const TOKEN: &str = "sandbox-zendesk-token";

async fn start(seed: ZendeskSeed) -> Sandbox {
    let opts = ZendeskOptions {
        search_lag_ms: 0,
        job_delay_ms: 50,
        ..Default::default()
    };
    let app = zendesk::app(opts, seed);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let s = Sandbox {
        base: format!("http://{addr}"),
        http: Client::new(),
    };
    // Tests that don't exercise it turn the one-minute holdback of the export off.
    s.switches(json!({"incremental_min_age_secs": 0})).await;
    s
}

fn orgs(n: usize) -> ZendeskSeed {
    ZendeskSeed {
        organizations: (1..=n)
            .map(|i| json!({"id": i, "name": format!("Org {i}"), "external_id": format!("ext-{i}"),
                            "domain_names": [format!("org{i}.example")], "created_at": "2020-01-01T00:00:00Z",
                            "updated_at": "2020-01-01T00:00:00Z"}))
            .collect(),
        ..Default::default()
    }
}

impl Sandbox {
    fn api(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(format!("{EMAIL}/token"), Some(TOKEN))
    }
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.api(reqwest::Method::GET, path)).await
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.api(reqwest::Method::POST, path).json(&body)).await
    }
    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.api(reqwest::Method::PUT, path).json(&body)).await
    }
    async fn admin(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap_or(Value::Null)
    }
    async fn switches(&self, body: Value) -> Value {
        self.admin("/_sandbox/switches", body).await
    }
    async fn admin_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    async fn create(&self, org: Value) -> Value {
        let (s, b) = self
            .post("/api/v2/organizations.json", json!({"organization": org}))
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        b["organization"].clone()
    }
}

async fn send(r: RequestBuilder) -> (StatusCode, Value) {
    let resp = r.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Polls until `f` holds (bounded); these are eventual behaviours, not timings.
async fn eventually<F, Fut>(mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

#[tokio::test]
async fn authentication_accepts_token_and_oauth_and_refuses_the_rest() {
    let s = start(orgs(1)).await;
    let url = format!("{}/api/v2/organizations/1.json", s.base);
    let (status, body) = send(s.http.get(&url)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, json!({"error": "Couldn't authenticate you"}));
    let (status, _) = send(
        s.http
            .get(&url)
            .basic_auth(format!("{EMAIL}/token"), Some("wrong")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Password basic auth is off.
    let (status, _) = send(s.http.get(&url).basic_auth(EMAIL, Some(TOKEN))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = send(s.http.get(&url).bearer_auth("sandbox-zendesk-oauth-token")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["organization"]["name"], "Org 1");
    let (status, _) = s.get("/api/v2/organizations/1").await;
    assert_eq!(status, StatusCode::OK, "the .json suffix is optional");
}

#[tokio::test]
async fn rate_limit_headers_count_down_and_429_carries_retry_after() {
    let s = start(orgs(1)).await;
    s.switches(json!({"rate_limit_per_minute": 3})).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = s
            .api(reqwest::Method::GET, "/api/v2/organizations/1.json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["x-rate-limit"], "3");
        remaining.push(
            r.headers()["x-rate-limit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(remaining, vec!["2", "1", "0"]);
    let r = s
        .api(reqwest::Method::GET, "/api/v2/organizations/1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    s.switches(json!({"omit_retry_after": true})).await;
    let r = s
        .api(reqwest::Method::GET, "/api/v2/organizations/1.json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_none());
    // The admin API is never limited.
    assert_eq!(
        s.admin_get("/_sandbox/calls").await["zd.org_show"]["429"],
        2
    );
}

#[tokio::test]
async fn update_organization_is_limited_per_organization_by_default() {
    let s = start(orgs(2)).await;
    for i in 0..5 {
        let (st, _) = s
            .put(
                "/api/v2/organizations/1.json",
                json!({"organization": {"notes": format!("n{i}")}}),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, body) = s
        .put(
            "/api/v2/organizations/1.json",
            json!({"organization": {"notes": "x"}}),
        )
        .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        body,
        json!({"errors": [{"code": "TooManyRequests", "title": "Too many requests to update"}]})
    );
    let (st, _) = s
        .put(
            "/api/v2/organizations/2.json",
            json!({"organization": {"notes": "x"}}),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "another organization has its own budget"
    );
    s.switches(json!({"update_org_limit_scope": "account"}))
        .await;
    for _ in 0..5 {
        s.put(
            "/api/v2/organizations/2.json",
            json!({"organization": {"notes": "y"}}),
        )
        .await;
    }
    let (st, _) = s
        .put(
            "/api/v2/organizations/2.json",
            json!({"organization": {"notes": "z"}}),
        )
        .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "account-wide scope");
}

#[tokio::test]
async fn search_reads_a_lagging_index_while_show_many_reads_the_database() {
    let s = start(ZendeskSeed::default()).await;
    s.switches(json!({"search_lag_ms": 600_000})).await;
    let org = s
        .create(json!({"name": "Lagging", "external_id": "0015g00000AbCdEAAZ"}))
        .await;
    let (_, found) = s
        .get("/api/v2/organizations/search.json?external_id=0015g00000abcdeaaz")
        .await;
    assert_eq!(found["organizations"], json!([]), "not indexed yet");
    let (_, many) = s
        .get("/api/v2/organizations/show_many.json?external_ids=0015G00000ABCDEAAZ")
        .await;
    assert_eq!(
        many["organizations"][0]["id"], org["id"],
        "show_many matches case-insensitively in the database"
    );
    // The UNVERIFIED alternative: show_many by external id also lags.
    s.switches(json!({"show_many_uses_search_index": true}))
        .await;
    let (_, many) = s
        .get("/api/v2/organizations/show_many.json?external_ids=0015G00000ABCDEAAZ")
        .await;
    assert_eq!(many["organizations"], json!([]));

    s.switches(json!({"search_lag_ms": 100, "show_many_uses_search_index": false}))
        .await;
    let other = s
        .create(json!({"name": "Soon Visible", "external_id": "k-2"}))
        .await;
    assert!(
        eventually(|| async {
            let (_, f) = s
                .get("/api/v2/organizations/search?name=soon%20visible")
                .await;
            f["organizations"]
                .as_array()
                .is_some_and(|a| a.len() == 1 && a[0]["id"] == other["id"])
        })
        .await
    );
    let (st, _) = s
        .get("/api/v2/organizations/search?name=a&external_id=b")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "external_id or name, not both");
}

#[tokio::test]
async fn cursor_listing_walks_25000_organizations_once_each() {
    let s = start(orgs(25_000)).await;
    s.switches(json!({"rate_limit_per_minute": 100_000})).await;
    let mut url = format!("{}/api/v2/organizations.json?page[size]=100", s.base);
    let mut seen = std::collections::HashSet::new();
    let mut pages = 0;
    loop {
        let (st, body) = send(
            s.http
                .get(&url)
                .basic_auth(format!("{EMAIL}/token"), Some(TOKEN)),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        for o in body["organizations"].as_array().unwrap() {
            assert!(
                seen.insert(o["id"].as_u64().unwrap()),
                "duplicate {}",
                o["id"]
            );
        }
        pages += 1;
        if !body["meta"]["has_more"].as_bool().unwrap() {
            break;
        }
        url = body["links"]["next"].as_str().unwrap().to_string();
    }
    assert_eq!(seen.len(), 25_000);
    assert_eq!(pages, 250);
    let (st, _) = s.get("/api/v2/organizations.json?page[size]=101").await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // Offset pagination stops at 10,000 records.
    let (st, body) = s
        .get("/api/v2/organizations.json?page=100&per_page=100")
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["count"], 25_000);
    assert!(body["next_page"].is_null());
    let (st, _) = s
        .get("/api/v2/organizations.json?page=101&per_page=100")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn create_or_update_matches_on_id_or_external_id_never_name() {
    let s = start(ZendeskSeed::default()).await;
    let (st, created) = s
        .post(
            "/api/v2/organizations/create_or_update.json",
            json!({"organization": {"name": "Acme", "external_id": "0015g00000XyZAAAA1"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let id = created["organization"]["id"].clone();
    let (st, updated) = s
        .post(
            "/api/v2/organizations/create_or_update",
            json!({"organization": {"external_id": "0015G00000XYZAAAA1", "notes": "hi"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(updated["organization"]["id"], id);
    assert_eq!(updated["organization"]["notes"], "hi");
    let (st, _) = s
        .post(
            "/api/v2/organizations/create_or_update",
            json!({"organization": {"id": id, "notes": "by id"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Name is not a matching criterion: the same name without a key is a duplicate.
    let (st, body) = s
        .post(
            "/api/v2/organizations/create_or_update",
            json!({"organization": {"name": "Acme"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["name"][0]["error"], "DuplicateValue");
    s.switches(json!({"create_or_update_status": "always_200"}))
        .await;
    let (st, _) = s
        .post(
            "/api/v2/organizations/create_or_update",
            json!({"organization": {"name": "Beta", "external_id": "b"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test]
async fn validation_and_not_found_bodies_are_the_documented_ones() {
    let s = start(ZendeskSeed::default()).await;
    s.create(json!({"name": "Lorem Ipsum", "external_id": "k1"}))
        .await;
    let (st, body) = s
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Lorem Ipsum"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body,
        json!({"error": "RecordInvalid", "description": "Record validation errors",
               "details": {"name": [{"description": "Name: Lorem Ipsum has already been taken", "error": "DuplicateValue"}]}})
    );
    let (st, body) = s
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "Other", "external_id": "K1"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["external_id"][0]["error"], "DuplicateValue");
    let (st, _) = s
        .post(
            "/api/v2/organizations",
            json!({"organization": {"name": "A | B"}}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, body) = s.get("/api/v2/organizations/999.json").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"error": "RecordNotFound", "description": "Not found"})
    );
}

#[tokio::test]
async fn update_overwrites_domain_names_and_delete_answers_204() {
    let s = start(ZendeskSeed::default()).await;
    let org = s
        .create(json!({"name": "D", "domain_names": ["a.com", "b.com"]}))
        .await;
    let path = format!("/api/v2/organizations/{}.json", org["id"]);
    let (_, body) = s
        .put(&path, json!({"organization": {"domain_names": ["c.com"]}}))
        .await;
    assert_eq!(body["organization"]["domain_names"], json!(["c.com"]));
    let (st, _) = send(s.api(reqwest::Method::DELETE, &path)).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    assert_eq!(s.get(&path).await.0, StatusCode::NOT_FOUND);
    let writes = s.admin_get("/_sandbox/writes").await;
    let actions: Vec<&str> = writes["writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["create", "update", "delete"]);
    let upd = &writes["writes"][1]["fields"][0];
    assert_eq!(
        (&upd["field"], &upd["old"], &upd["new"]),
        (
            &json!("domain_names"),
            &json!(["a.com", "b.com"]),
            &json!(["c.com"])
        )
    );
}

#[tokio::test]
async fn bulk_jobs_finish_later_and_report_each_item() {
    let s = start(ZendeskSeed::default()).await;
    s.switches(json!({"job_delay_ms": 200})).await;
    s.create(json!({"name": "Taken"})).await;
    let (st, body) = s
        .post("/api/v2/organizations/create_many.json", json!({"organizations": [{"name": "J1", "external_id": "j1"}, {"name": "Taken"}, {"name": "J3"}]}))
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["job_status"]["status"], "queued");
    let job_url = body["job_status"]["url"].as_str().unwrap().to_string();
    let poll = || async {
        let (_, b) = send(
            s.http
                .get(&job_url)
                .basic_auth(format!("{EMAIL}/token"), Some(TOKEN)),
        )
        .await;
        b
    };
    assert!(eventually(|| async { poll().await["job_status"]["status"] == "completed" }).await);
    let job = poll().await["job_status"].clone();
    assert_eq!(job["total"], 3);
    assert_eq!(job["progress"], 3);
    let results = job["results"].as_array().unwrap();
    assert_eq!(results[0]["index"], 0);
    assert!(results[0]["id"].as_u64().is_some());
    assert_eq!(results[1]["error"], "DuplicateValue");
    assert_eq!(results[1]["index"], 1);
    assert_eq!(results[2]["index"], 2);

    // update_many by external ids: one change to several organizations.
    let (_, body) = s
        .put(
            "/api/v2/organizations/update_many.json?external_ids=J1,missing",
            json!({"organization": {"notes": "bulk"}}),
        )
        .await;
    let url = body["job_status"]["url"].as_str().unwrap().to_string();
    let poll = || async {
        send(
            s.http
                .get(&url)
                .basic_auth(format!("{EMAIL}/token"), Some(TOKEN)),
        )
        .await
        .1
    };
    assert!(eventually(|| async { poll().await["job_status"]["status"] == "completed" }).await);
    let results = poll().await["job_status"]["results"].clone();
    assert_eq!(results[0]["action"], "update");
    assert_eq!(results[0]["success"], true);
    assert_eq!(results[0]["status"], "Updated");
    assert_eq!(results[1]["error"], "RecordNotFound");
    let (_, found) = s
        .get("/api/v2/organizations/show_many?external_ids=j1")
        .await;
    assert_eq!(found["organizations"][0]["notes"], "bulk");
    let (st, _) = s.get("/api/v2/job_statuses/nope.json").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn incremental_export_pages_by_time_until_end_of_stream() {
    let s = start(orgs(5)).await;
    s.switches(json!({"incremental_page_size": 2})).await;
    let mut url = format!(
        "{}/api/v2/incremental/organizations.json?start_time=0",
        s.base
    );
    let mut ids = std::collections::BTreeSet::new();
    for _ in 0..10 {
        let (st, body) = send(
            s.http
                .get(&url)
                .basic_auth(format!("{EMAIL}/token"), Some(TOKEN)),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{body}");
        for o in body["organizations"].as_array().unwrap() {
            ids.insert(o["id"].as_u64().unwrap());
        }
        assert!(body["end_time"].is_i64());
        if body["end_of_stream"] == true {
            break;
        }
        url = body["next_page"].as_str().unwrap().to_string();
    }
    // Five records sharing one timestamp with two per page: the page holding that second
    // carries all five (incremental_full_second "extend_page"), so none is skipped.
    assert_eq!(ids.len(), 5, "{ids:?}");
    // The other setting: end_time stays at start_time, two records, more to come.
    s.switches(json!({"incremental_full_second": "repeat_start"}))
        .await;
    let first = format!(
        "{}/api/v2/incremental/organizations.json?start_time=0",
        s.base
    );
    let (_, body) = send(
        s.http
            .get(&first)
            .basic_auth(format!("{EMAIL}/token"), Some(TOKEN)),
    )
    .await;
    let second = body["end_time"].as_i64().unwrap();
    let (_, body) = send(
        s.http
            .get(format!(
                "{}/api/v2/incremental/organizations.json?start_time={second}",
                s.base
            ))
            .basic_auth(format!("{EMAIL}/token"), Some(TOKEN)),
    )
    .await;
    assert_eq!(body["count"], 2, "{body}");
    assert_eq!(body["end_time"], second, "{body}");
    assert_eq!(body["end_of_stream"], false);
    s.switches(
        json!({"incremental_page_size": 1000, "incremental_min_age_secs": 60,
        "incremental_full_second": "extend_page"}),
    )
    .await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (st, _) = s
        .get(&format!(
            "/api/v2/incremental/organizations.json?start_time={now}"
        ))
        .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "start_time must be a minute old"
    );
    let (st, body) = s
        .get("/api/v2/incremental/organizations.json?start_time=0")
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(body["count"], 5);
    assert_eq!(body["end_of_stream"], true);
}

#[tokio::test]
async fn incremental_export_is_limited_to_ten_a_minute() {
    let s = start(orgs(1)).await;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(
            s.get("/api/v2/incremental/organizations.json?start_time=0")
                .await
                .0,
        );
    }
    assert!(statuses[..10].iter().all(|s| *s == StatusCode::OK));
    assert_eq!(statuses[10], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn faults_hit_api_endpoints_but_never_the_admin_api() {
    let s = start(orgs(1)).await;
    s.admin(
        "/_sandbox/faults",
        json!({"endpoints": {"zd.org_show": {"error_5xx": 1.0}}}),
    )
    .await;
    assert_eq!(
        s.get("/api/v2/organizations/1.json").await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        s.get("/api/v2/organizations/show_many?ids=1").await.0,
        StatusCode::OK
    );
    s.admin(
        "/_sandbox/faults",
        json!({"endpoints": {"zd.org_search": {"rate_limit_429": 1.0}}}),
    )
    .await;
    let r = s
        .api(reqwest::Method::GET, "/api/v2/organizations/search?name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().get("retry-after").is_some());
    s.admin("/_sandbox/faults", json!({"outage_ms": 60_000}))
        .await;
    assert_eq!(
        s.get("/api/v2/organizations/1.json").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(s.admin_get("/_sandbox/state").await["zendesk"]["organizations"].is_array());
    let calls = s.admin_get("/_sandbox/calls").await;
    assert_eq!(calls["zd.org_show"]["500"], 1);
    assert_eq!(calls["zd.org_show"]["503"], 1);
}

#[tokio::test]
async fn webhook_deliveries_are_signed_as_zendesk_documents() {
    use std::sync::{Arc, Mutex};
    type Seen = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    sink.lock().unwrap().push((headers, body.to_vec()));
                    "ok"
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    let s = start(ZendeskSeed::default()).await;
    let (st, hook) = s
        .post(
            "/api/v2/webhooks",
            json!({"webhook": {"name": "orglink", "endpoint": hook_url, "http_method": "POST", "request_format": "json",
                "status": "active", "subscriptions": ["zen:event-type:organization.created", "zen:event-type:organization.name_changed"]}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{hook}");
    let hook_id = hook["webhook"]["id"].as_str().unwrap().to_string();
    let (_, secret) = s
        .get(&format!("/api/v2/webhooks/{hook_id}/signing_secret"))
        .await;
    let secret = secret["signing_secret"]["secret"]
        .as_str()
        .unwrap()
        .to_string();

    let org = s
        .create(json!({"name": "Hooked", "external_id": "h1"}))
        .await;
    s.put(
        &format!("/api/v2/organizations/{}.json", org["id"]),
        json!({"organization": {"name": "Hooked 2", "domain_names": ["x.com"]}}),
    )
    .await;
    assert!(eventually(|| async { seen.lock().unwrap().len() >= 2 }).await);
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "no event for domain_names");
    for (headers, body) in &got {
        let ts = headers["x-zendesk-webhook-signature-timestamp"]
            .to_str()
            .unwrap();
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok()
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(ts.as_bytes());
        mac.update(body);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(
            headers["x-zendesk-webhook-signature"].to_str().unwrap(),
            expected
        );
        assert_eq!(headers["x-zendesk-webhook-id"].to_str().unwrap(), hook_id);
    }
    let events: Vec<Value> = got
        .iter()
        .map(|(_, b)| serde_json::from_slice(b).unwrap())
        .collect();
    let created = events
        .iter()
        .find(|e| e["type"] == "zen:event-type:organization.created")
        .unwrap();
    assert_eq!(
        created["detail"]["id"],
        org["id"].to_string(),
        "detail.id is a string"
    );
    assert_eq!(
        created["subject"],
        format!("zen:organization:{}", org["id"])
    );
    let renamed = events
        .iter()
        .find(|e| e["type"] == "zen:event-type:organization.name_changed")
        .unwrap();
    assert_eq!(
        renamed["event"],
        json!({"current": "Hooked 2", "previous": "Hooked"})
    );
}

#[tokio::test]
async fn a_delivery_failure_does_not_fail_the_write() {
    let s = start(ZendeskSeed::default()).await;
    s.switches(json!({"webhook_url": "http://127.0.0.1:9/nowhere"}))
        .await;
    let org = s.create(json!({"name": "Still Created"})).await;
    assert!(org["id"].as_u64().is_some());
    assert!(
        eventually(|| async {
            s.admin_get("/_sandbox/webhook_deliveries").await["deliveries"][0]["outcome"]["error"]
                .is_string()
        })
        .await
    );
}

#[tokio::test]
async fn seeds_with_legacy_duplicates_load_and_lookups_return_every_match() {
    let seed = ZendeskSeed {
        organizations: vec![
            json!({"id": 10, "name": "Acme", "external_id": "K"}),
            json!({"id": 11, "name": "Acme", "external_id": "k"}),
        ],
        ..Default::default()
    };
    let s = start(seed).await;
    let (_, found) = s.get("/api/v2/organizations/search?external_id=K").await;
    assert_eq!(found["organizations"].as_array().unwrap().len(), 2);
    let (_, found) = s.get("/api/v2/organizations/search?name=acme").await;
    assert_eq!(found["count"], 2);
    let (_, many) = s
        .get("/api/v2/organizations/show_many?external_ids=k")
        .await;
    assert_eq!(many["organizations"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn users_memberships_and_tickets_serve_the_attribution_audit() {
    let seed = ZendeskSeed {
        organizations: vec![json!({"id": 1, "name": "A"}), json!({"id": 2, "name": "B"})],
        users: vec![json!({"id": 7, "name": "Req", "email": "req@a.com", "organization_id": 1})],
        tickets: vec![
            json!({"id": 100, "requester_id": 7, "organization_id": 2, "updated_at": "2024-01-01T00:00:00Z"}),
            json!({"id": 101, "requester_id": 7, "organization_id": 1, "updated_at": "2024-01-02T00:00:00Z"}),
        ],
        ..Default::default()
    };
    let s = start(seed).await;
    let (_, t) = s.get("/api/v2/tickets/100.json").await;
    assert_eq!(
        (
            t["ticket"]["organization_id"].clone(),
            t["ticket"]["requester_id"].clone()
        ),
        (json!(2), json!(7))
    );
    let (_, m) = s.get("/api/v2/users/7/organization_memberships.json").await;
    assert_eq!(m["organization_memberships"][0]["organization_id"], 1);
    assert_eq!(m["organization_memberships"][0]["default"], true);
    let (_, inc) = s
        .get("/api/v2/incremental/tickets/cursor.json?start_time=0")
        .await;
    assert_eq!(inc["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(inc["end_of_stream"], true);
    let (_, users) = s.get("/api/v2/organizations/1/users.json").await;
    assert_eq!(users["users"][0]["id"], 7);
    // Any known user's e-mail works with the account's API token.
    let r = s
        .http
        .get(format!("{}/api/v2/users/7", s.base))
        .basic_auth("req@a.com/token", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn organization_fields_are_listed_and_created_once_per_key() {
    let s = start(ZendeskSeed::default()).await;
    let field = json!({"organization_field": {"key": "salesforce_account_id", "title": "Salesforce Account", "type": "text"}});
    let (st, body) = s
        .post("/api/v2/organization_fields.json", field.clone())
        .await;
    assert_eq!(st, StatusCode::CREATED);
    assert_eq!(body["organization_field"]["active"], true);
    let (st, body) = s.post("/api/v2/organization_fields.json", field).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["details"]["key"][0]["error"], "DuplicateValue");
    let (_, list) = s.get("/api/v2/organization_fields.json").await;
    assert_eq!(list["count"], 1);
}

#[tokio::test]
async fn admin_api_loads_dumps_and_resets_state() {
    let s = start(orgs(2)).await;
    let loaded = s
        .admin(
            "/_sandbox/scenario",
            json!({"zendesk": {"organizations": [{"id": 5, "name": "Only"}]}}),
        )
        .await;
    assert_eq!(loaded["loaded"]["organizations"], 1);
    let state = s.admin_get("/_sandbox/state").await;
    assert_eq!(state["zendesk"]["organizations"][0]["name"], "Only");
    assert!(state["zendesk"]["organizations"][0].get("url").is_none());
    // The dump loads back as a scenario.
    s.admin("/_sandbox/scenario", state.clone()).await;
    assert_eq!(
        s.admin_get("/_sandbox/state").await["zendesk"]["organizations"],
        state["zendesk"]["organizations"]
    );
    s.switches(json!({"search_lag_ms": 1})).await;
    let r = s
        .http
        .post(format!("{}/_sandbox/switches", s.base))
        .json(&json!({"no_such": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    s.admin("/_sandbox/reset", json!({})).await;
    assert_eq!(
        s.admin_get("/_sandbox/state").await["zendesk"]["organizations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.admin_get("/_sandbox/switches").await["search_lag_ms"], 0);
}

#[tokio::test]
async fn two_hundred_thousand_organizations_load_and_serve() {
    let s = start(ZendeskSeed::default()).await;
    let seed = orgs(200_000);
    let loaded = s
        .admin("/_sandbox/scenario", json!({"zendesk": seed}))
        .await;
    assert_eq!(loaded["loaded"]["organizations"], 200_000);
    let (_, found) = s
        .get("/api/v2/organizations/search?external_id=EXT-199999")
        .await;
    assert_eq!(found["organizations"][0]["id"], 199_999);
    let (_, many) = s
        .get("/api/v2/organizations/show_many?ids=1,100000,200000")
        .await;
    assert_eq!(many["organizations"].as_array().unwrap().len(), 3);
    let (_, page) = s.get("/api/v2/organizations?page[size]=100").await;
    assert_eq!(page["organizations"].as_array().unwrap().len(), 100);
    let (_, count) = s.get("/api/v2/organizations/count.json").await;
    assert_eq!(count["count"]["value"], 200_000);
}
