//! Requests per second of the Zendesk simulator on loopback (docs/benchmarks.md).
//!
//! `cargo run --release -p orglink-sandbox --example zendesk_load`
//! Loads 200,000 organizations through the admin API, then runs a bounded number of requests
//! (at most 30 s per phase) with 32 concurrent clients and prints requests per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orglink_sandbox::scenario::ZendeskSeed;
use orglink_sandbox::zendesk::{self, ZendeskOptions};
use serde_json::json;

const ORGS: usize = 200_000;
const CLIENTS: usize = 32;
const PHASE_LIMIT: Duration = Duration::from_secs(30);

#[tokio::main]
async fn main() {
    let app = zendesk::app(ZendeskOptions::default(), ZendeskSeed::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::new();
    http.post(format!("{base}/_sandbox/switches"))
        .json(&json!({"rate_limit_per_minute": u32::MAX, "search_lag_ms": 0, "update_org_limit_per_minute": u32::MAX}))
        .send()
        .await
        .unwrap();

    let orgs: Vec<_> = (1..=ORGS)
        .map(|i| json!({"id": i, "name": format!("Org {i}"), "external_id": format!("0015g0000{i:09}AAA"),
                        "domain_names": [format!("org{i}.example")]}))
        .collect();
    let body = serde_json::to_vec(&json!({"zendesk": {"organizations": orgs}})).unwrap();
    let t = Instant::now();
    let r = http
        .post(format!("{base}/_sandbox/scenario"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    println!(
        "load {ORGS} organizations via /_sandbox/scenario: {:.2} s",
        t.elapsed().as_secs_f64()
    );

    phase(&http, &base, "GET show", 40_000, |i| {
        (
            reqwest::Method::GET,
            format!("/api/v2/organizations/{}.json", i % ORGS + 1),
            None,
        )
    })
    .await;
    phase(&http, &base, "GET search?external_id", 40_000, |i| {
        (
            reqwest::Method::GET,
            format!(
                "/api/v2/organizations/search.json?external_id=0015G0000{:09}AAA",
                i % ORGS + 1
            ),
            None,
        )
    })
    .await;
    phase(&http, &base, "GET show_many (100 ids)", 5_000, |i| {
        let ids: Vec<String> = (0..100)
            .map(|k| ((i * 100 + k) % ORGS + 1).to_string())
            .collect();
        (
            reqwest::Method::GET,
            format!("/api/v2/organizations/show_many.json?ids={}", ids.join(",")),
            None,
        )
    })
    .await;
    phase(&http, &base, "GET list page[size]=100", 5_000, |_| {
        (
            reqwest::Method::GET,
            "/api/v2/organizations.json?page[size]=100".to_string(),
            None,
        )
    })
    .await;
    phase(&http, &base, "POST create_or_update (new)", 20_000, |i| {
        (
            reqwest::Method::POST,
            "/api/v2/organizations/create_or_update.json".to_string(),
            Some(json!({"organization": {"name": format!("New {i}"), "external_id": format!("new-{i}")}})),
        )
    })
    .await;
    phase(&http, &base, "PUT update", 20_000, |i| {
        (
            reqwest::Method::PUT,
            format!("/api/v2/organizations/{}.json", i % ORGS + 1),
            Some(json!({"organization": {"notes": format!("n{i}")}})),
        )
    })
    .await;
}

type Req = (reqwest::Method, String, Option<serde_json::Value>);

async fn phase(
    http: &reqwest::Client,
    base: &str,
    name: &str,
    count: usize,
    make: impl Fn(usize) -> Req + Send + Sync + 'static,
) {
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, make, next, failures) = (
            http.clone(),
            base.to_string(),
            make.clone(),
            next.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || start.elapsed() > PHASE_LIMIT {
                    break;
                }
                let (method, path, body) = make(i);
                let mut rb = http
                    .request(method, format!("{base}{path}"))
                    .basic_auth("admin@example.com/token", Some("sandbox-zendesk-token"));
                if let Some(b) = body {
                    rb = rb.json(&b);
                }
                match rb.send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let done = next.load(Ordering::Relaxed).min(count);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{name:<32} {done:>6} requests in {secs:>6.2} s = {:>8.0} req/s ({} failed)",
        done as f64 / secs,
        failures.load(Ordering::Relaxed)
    );
}
