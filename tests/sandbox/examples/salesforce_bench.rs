//! Load figures for the Salesforce simulator on loopback (recorded in docs/benchmarks.md):
//! seeds a world of 200,000 accounts, then drives each endpoint orglink uses with concurrent
//! clients for a bounded number of requests and a bounded time, and prints requests per second.
//!
//! `cargo run --release -p orglink-sandbox --example salesforce_bench [-- ACCOUNTS [CONCURRENCY]]`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use orglink_sandbox::salesforce::{self, SalesforceOptions};
use orglink_sandbox::scenario::SalesforceSeed;
use serde_json::{Value, json};

const MAX_REQUESTS: usize = 20_000;
const MAX_TIME: Duration = Duration::from_secs(10);
const V: &str = "/services/data/v62.0";

fn world(accounts: usize) -> Value {
    let users: Vec<Value> = (0..100)
        .map(|i| json!({"Id": format!("005SB{i:010}"), "Email": format!("owner{i}@example.com")}))
        .collect();
    let accounts: Vec<Value> = (0..accounts)
        .map(|i| {
            json!({"Id": format!("001SB{i:010}"), "Name": format!("Customer {i}"),
                "Type": if i % 3 == 0 { "Prospect" } else { "Customer - Direct" },
                "Website": format!("https://www.customer{i}.example"),
                "OwnerId": format!("005SB{:010}", i % 100),
                "Zendesk_Org_ID__c": (i % 2 == 0).then(|| (360_000_000_000u64 + i as u64).to_string()),
                "IsDeleted": i % 50 == 49})
        })
        .collect();
    let opportunities: Vec<Value> = (0..accounts.len() / 4)
        .map(|i| {
            json!({"AccountId": format!("001SB{:010}", i * 4), "StageName": "Negotiation",
                "Probability": (i % 10) * 10, "IsClosed": false, "IsWon": false})
        })
        .collect();
    json!({"users": users, "accounts": accounts, "opportunities": opportunities})
}

struct Run {
    name: &'static str,
    requests: usize,
    elapsed: Duration,
}

/// Runs `make(i)` requests from `concurrency` tasks until MAX_REQUESTS or MAX_TIME.
async fn drive<F, Fut>(name: &'static str, concurrency: usize, make: F) -> Run
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (make, next) = (make.clone(), next.clone());
            tokio::spawn(async move {
                let mut done = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= MAX_REQUESTS || start.elapsed() > MAX_TIME {
                        return done;
                    }
                    assert!(make(i).await, "{name}: request {i} failed");
                    done += 1;
                }
            })
        })
        .collect();
    let mut requests = 0;
    for t in tasks {
        requests += t.await.unwrap();
    }
    Run {
        name,
        requests,
        elapsed: start.elapsed(),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let accounts: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(16);

    let seed_json = world(accounts);
    let seed: SalesforceSeed = serde_json::from_value(seed_json.clone()).unwrap();
    let t = Instant::now();
    let app = salesforce::app(SalesforceOptions::default(), seed);
    let seed_load = t.elapsed();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();

    // The same world again through the admin API, as a harness would load it.
    let body = serde_json::to_vec(&json!({"salesforce": seed_json})).unwrap();
    let body_mb = body.len() as f64 / 1e6;
    let t = Instant::now();
    let r = http
        .post(format!("{base}/_sandbox/scenario"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let admin_load = t.elapsed();

    let token: Value = http
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "orglink-sandbox-consumer-key"),
            ("client_secret", "orglink-sandbox-consumer-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = Arc::new(token["access_token"].as_str().unwrap().to_string());
    // Enough budget for every run below.
    http.post(format!("{base}/_sandbox/switches"))
        .json(&json!({"daily_api_limit": u64::MAX}))
        .send()
        .await
        .unwrap();

    let id = move |i: usize| format!("001SB{:010}", (i * 7919) % accounts);
    let mut runs = Vec::new();

    let (h, b, tk) = (http.clone(), base.clone(), token.clone());
    runs.push(
        drive("GET sobjects/Account/{id}", concurrency, move |i| {
            let (h, b, tk) = (h.clone(), b.clone(), tk.clone());
            async move {
                let r = h
                    .get(format!("{b}{V}/sobjects/Account/{}", id(i)))
                    .bearer_auth(&*tk)
                    .send()
                    .await
                    .unwrap();
                matches!(r.status().as_u16(), 200 | 404) && r.bytes().await.is_ok()
            }
        })
        .await,
    );

    let (h, b, tk) = (http.clone(), base.clone(), token.clone());
    runs.push(
        drive("query WHERE Id IN (…50 ids) + Owner.Email", concurrency, move |i| {
            let (h, b, tk) = (h.clone(), b.clone(), tk.clone());
            async move {
                let list: Vec<String> = (0..50).map(|k| format!("'{}'", id(i * 50 + k))).collect();
                let q = format!(
                    "SELECT Id, Name, Website, Type, Owner.Email, Zendesk_Org_ID__c, SystemModstamp FROM Account WHERE Id IN ({})",
                    list.join(",")
                );
                let r = h.get(format!("{b}{V}/query")).query(&[("q", q)]).bearer_auth(&*tk).send().await.unwrap();
                r.status() == 200 && r.bytes().await.is_ok()
            }
        })
        .await,
    );

    let (h, b, tk) = (http.clone(), base.clone(), token.clone());
    runs.push(
        drive(
            "query WHERE Zendesk_Org_ID__c = '…'",
            concurrency,
            move |i| {
                let (h, b, tk) = (h.clone(), b.clone(), tk.clone());
                async move {
                    let q = format!(
                        "SELECT Id FROM Account WHERE Zendesk_Org_ID__c = '{}'",
                        360_000_000_000u64 + ((i * 2) % accounts) as u64
                    );
                    let r = h
                        .get(format!("{b}{V}/query"))
                        .query(&[("q", q)])
                        .bearer_auth(&*tk)
                        .send()
                        .await
                        .unwrap();
                    r.status() == 200 && r.bytes().await.is_ok()
                }
            },
        )
        .await,
    );

    let (h, b, tk) = (http.clone(), base.clone(), token.clone());
    runs.push(
        drive("PATCH sobjects/Account/{id}", concurrency, move |i| {
            let (h, b, tk) = (h.clone(), b.clone(), tk.clone());
            async move {
                let r = h
                    .patch(format!("{b}{V}/sobjects/Account/{}", id(i)))
                    .json(&json!({"Zendesk_Domain__c": format!("customer{i}.example"), "Zendesk_Sync_Status__c": "Linked"}))
                    .bearer_auth(&*tk)
                    .send()
                    .await
                    .unwrap();
                matches!(r.status().as_u16(), 204 | 404)
            }
        })
        .await,
    );

    // The reconcile pattern: stream every account holding a link through nextRecordsUrl.
    let t = Instant::now();
    let mut url = format!(
        "{base}{V}/queryAll?q=SELECT+Id,Name,Website,IsDeleted,MasterRecordId,Zendesk_Org_ID__c,SystemModstamp+FROM+Account+ORDER+BY+SystemModstamp,Id"
    );
    let (mut pages, mut rows) = (0, 0);
    loop {
        let page: Value = http
            .get(&url)
            .bearer_auth(&*token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        pages += 1;
        rows += page["records"].as_array().unwrap().len();
        match page["nextRecordsUrl"].as_str() {
            Some(next) => url = format!("{base}{next}"),
            None => break,
        }
    }
    let listing = t.elapsed();

    println!(
        "Salesforce simulator, {accounts} accounts, {concurrency} concurrent clients, loopback"
    );
    println!(
        "seed via app(): {:.2} s; via POST /_sandbox/scenario ({body_mb:.0} MB): {:.2} s",
        seed_load.as_secs_f64(),
        admin_load.as_secs_f64()
    );
    for r in &runs {
        println!(
            "{:<48} {:>7} requests in {:>5.2} s = {:>8.0} req/s",
            r.name,
            r.requests,
            r.elapsed.as_secs_f64(),
            r.requests as f64 / r.elapsed.as_secs_f64()
        );
    }
    println!(
        "queryAll full listing: {rows} rows in {pages} pages, {:.2} s = {:.0} rows/s",
        listing.as_secs_f64(),
        rows as f64 / listing.as_secs_f64()
    );
}
