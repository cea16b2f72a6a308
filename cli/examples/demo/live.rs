//! The live-events stage: people change accounts and opportunities in Salesforce (through its
//! REST API, as a user would), the notifier's signed batches reach intake's handler as function
//! URL requests (some delivered twice, as HTTP retries do), intake puts one message per account
//! on the SQS FIFO queue on moto; two agents edit organizations by hand in Zendesk and the
//! webhook's signed events reach intake too; and several workers drain the queue through the
//! local runner, each built by the worker's production wiring (`from_aws`) — as they drain the
//! reconcile's repairs later ([`drain`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::StreamExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::format_description;

use orglink_harness::{AwsEnv, LocalStack, Sandbox};
use orglink_intake::Environment;
use orglink_intake::aws::AwsIntake;
use orglink_intake::settings::INTAKE_SECRET_ENV;
use orglink_intake::zendesk::{
    SIGNATURE_HEADER as WEBHOOK_SIGNATURE, TIMESTAMP_HEADER as WEBHOOK_TIMESTAMP, sign_webhook,
};
use orglink_sandbox::generate::{Expected, Truth};
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::contract::EventKind;
use orglink_shared::contract::SalesforceOrgId;
use orglink_shared::credentials::Secret;
use orglink_shared::http::{CallLog, RetryPolicy};
use orglink_shared::ids::AccountId;
use orglink_shared::salesforce::SalesforceConfig;
use orglink_shared::signature::{EventId, IntakeBatch, IntakeEvent, SIGNATURE_HEADER, sign};
use orglink_shared::zendesk::ZendeskConfig;
use orglink_sync_worker::WorkerSettings;
use orglink_sync_worker::aws::{WorkerEnv, from_aws};
use orglink_sync_worker::batch::MessageFate;
use orglink_sync_worker::runner::{RunnerConfig, run};
use orglink_sync_worker::settings::SETTINGS_ENV;

/// Events a notifier batch carries here (the real notifier batches per transaction).
const BATCH: usize = 25;
/// Every n-th batch is delivered twice.
const DUPLICATE_EVERY: usize = 8;

/// One change a person makes, and the event the notifier sends for it.
#[derive(Debug, Clone)]
pub struct Change {
    pub account: String,
    pub kind: EventKind,
    /// `Account` or `Opportunity`, and its id.
    pub object: &'static str,
    pub record: String,
    pub fields: Value,
}

/// What to run the stage with.
pub struct Setup<'a> {
    pub aws: &'a AwsEnv,
    pub stack: &'a LocalStack,
    pub sandbox: &'a Sandbox,
    pub org_id: &'a str,
    pub sf_client_id: &'a str,
    pub sf_client_secret: &'a str,
    pub signing_secret: &'a str,
    /// The Zendesk webhook's signing secret, and an agent's API credentials.
    pub webhook_secret: &'a str,
    pub zd_email: &'a str,
    pub zd_token: &'a str,
    /// Rate limits the demo's simulator and budgets use (requests a minute).
    pub zendesk_per_minute: u32,
    pub salesforce_per_minute: u32,
}

/// What happened.
#[derive(Debug, Default)]
pub struct LiveReport {
    pub events: usize,
    pub requests: usize,
    /// Intake's outcomes over every request (a twice-delivered batch counts twice).
    pub intake: BTreeMap<String, u64>,
    /// The Zendesk webhooks (agents' edits by hand): what intake made of each.
    pub webhooks: Vec<String>,
    pub intake_time: Duration,
    pub workers: Drained,
}

/// What the workers did draining the queue.
#[derive(Debug, Default)]
pub struct Drained {
    pub workers: usize,
    /// The workers' final outcome per message (`succeeded`, `coalesced`, ...).
    pub outcomes: BTreeMap<String, u64>,
    /// The kinds of the `exception` outcomes.
    pub exception_kinds: BTreeMap<String, u64>,
    pub retries: u64,
    pub requeued: u64,
    pub poison: u64,
    pub invocations: u64,
    pub crashes: u64,
    pub dead_letters: u64,
    pub drained: bool,
    pub time: Duration,
}

/// A deterministic spread of `n` items from `pool` (every k-th), so each run picks the same.
fn spread<T: Clone>(pool: &[T], n: usize) -> Vec<T> {
    if pool.is_empty() || n == 0 {
        return Vec::new();
    }
    let step = (pool.len() / n).max(1);
    pool.iter().step_by(step).take(n).cloned().collect()
}

fn slug(name: &str) -> String {
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(2)
        .map(str::to_ascii_lowercase)
        .collect();
    words.join("-")
}

/// The changes: `per_kind` accounts for each event kind. Opportunity moves, Closed Won and
/// "became customer" go to accounts nobody linked (not eligible, no organization); name and
/// domain changes go to accounts the truth links.
pub fn choose(scenario: &Value, truth: &Truth, per_kind: usize) -> Vec<Change> {
    let accounts: BTreeMap<&str, &Value> = scenario["salesforce"]["accounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["IsDeleted"] != true && a["MasterRecordId"].is_null())
                .filter_map(|a| a["Id"].as_str().map(|id| (id, a)))
                .collect()
        })
        .unwrap_or_default();
    let mut open_opportunity: BTreeMap<&str, &str> = BTreeMap::new();
    for o in scenario["salesforce"]["opportunities"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if o["IsClosed"] == false
            && o["IsDeleted"] != true
            && o["Probability"].as_u64().is_some_and(|p| p < 75)
            && let (Some(a), Some(id)) = (o["AccountId"].as_str(), o["Id"].as_str())
        {
            open_opportunity.entry(a).or_insert(id);
        }
    }
    let switch_dependent: Vec<&str> = truth
        .switch_dependent
        .iter()
        .map(|s| s.account.as_str())
        .collect();
    let unlinked: Vec<&str> = truth
        .accounts
        .iter()
        .filter(|t| !t.eligible && t.expected == Expected::Nothing)
        .map(|t| t.account_id.as_str())
        .filter(|id| {
            accounts
                .get(id)
                .is_some_and(|a| a["Zendesk_Org_ID__c"].is_null())
        })
        .collect();
    let (with_opportunity, without): (Vec<&str>, Vec<&str>) = unlinked
        .iter()
        .partition(|id| open_opportunity.contains_key(*id));
    let linked: Vec<&str> = truth
        .accounts
        .iter()
        .filter(|t| t.eligible && matches!(t.expected, Expected::Link(_) | Expected::LinkNew))
        .map(|t| t.account_id.as_str())
        .filter(|id| accounts.contains_key(id) && !switch_dependent.contains(id))
        .collect();

    let mut out = Vec::new();
    let opportunity_accounts = spread(&with_opportunity, 2 * per_kind);
    for (i, account) in opportunity_accounts.iter().enumerate() {
        let (kind, fields) = if i % 2 == 0 {
            (
                EventKind::LateStageOpportunity,
                json!({"StageName": "Negotiation/Review", "Probability": 80}),
            )
        } else {
            (
                EventKind::ClosedWon,
                json!({"StageName": "Closed Won", "Probability": 100}),
            )
        };
        out.push(Change {
            account: account.to_string(),
            kind,
            object: "Opportunity",
            record: open_opportunity[account].to_string(),
            fields,
        });
    }
    for account in spread(&without, per_kind) {
        out.push(Change {
            account: account.to_string(),
            kind: EventKind::BecameCustomer,
            object: "Account",
            record: account.to_string(),
            fields: json!({"Type": "Customer - Direct"}),
        });
    }
    for (i, account) in spread(&linked, 2 * per_kind).into_iter().enumerate() {
        let name = accounts[account]["Name"].as_str().unwrap_or("Account");
        let (kind, fields) = if i % 2 == 0 {
            (
                EventKind::NameChanged,
                json!({"Name": format!("{name} Holdings")}),
            )
        } else {
            (
                EventKind::DomainChanged,
                json!({"Website": format!("https://www.{}-global.com", slug(name))}),
            )
        };
        out.push(Change {
            account: account.to_string(),
            kind,
            object: "Account",
            record: account.to_string(),
            fields,
        });
    }
    out
}

/// A Salesforce user's session: the client-credentials flow, as any API client signs in.
async fn sign_in(http: &reqwest::Client, s: &Setup<'_>) -> Result<(String, String), String> {
    let url = format!("{}/services/oauth2/token", s.sandbox.salesforce);
    let body: Value = http
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", s.sf_client_id),
            ("client_secret", s.sf_client_secret),
        ])
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("Salesforce sign-in: {}", e.without_url()))?
        .json()
        .await
        .map_err(|e| format!("Salesforce sign-in: {e}"))?;
    let field = |k: &str| {
        body[k]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("Salesforce sign-in: no {k} in the answer"))
    };
    Ok((field("access_token")?, field("instance_url")?))
}

/// Makes the people's changes in Salesforce, eight at a time.
pub async fn make_changes(
    http: &reqwest::Client,
    s: &Setup<'_>,
    changes: &[Change],
) -> Result<(), String> {
    let (token, instance) = sign_in(http, s).await?;
    let version = SalesforceConfig::default().api_version;
    let results: Vec<Result<(), String>> = futures_util::stream::iter(changes)
        .map(|c| {
            let url = format!(
                "{instance}/services/data/{version}/sobjects/{}/{}",
                c.object, c.record
            );
            let token = token.clone();
            async move {
                let r = http
                    .patch(&url)
                    .bearer_auth(token)
                    .json(&c.fields)
                    .send()
                    .await
                    .map_err(|e| format!("PATCH {}: {}", c.record, e.without_url()))?;
                if r.status().is_success() {
                    Ok(())
                } else {
                    Err(format!(
                        "PATCH {} {}: {} {}",
                        c.object,
                        c.record,
                        r.status(),
                        r.text().await.unwrap_or_default()
                    ))
                }
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Each account's `SystemModstamp` now (the notifier sends it with the event).
async fn modstamps(
    http: &reqwest::Client,
    sandbox: &Sandbox,
) -> Result<BTreeMap<String, OffsetDateTime>, String> {
    let url = format!("{}/_sandbox/state", sandbox.salesforce);
    let state: Value = http
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let format = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory][offset_minute]"
    );
    Ok(state["salesforce"]["accounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let id = a["Id"].as_str()?;
            let stamp = OffsetDateTime::parse(a["SystemModstamp"].as_str()?, format).ok()?;
            Some((id.to_string(), stamp))
        })
        .collect())
}

/// The JSON Lambda hands the function for a function URL request (payload format 2.0).
fn function_url_request(path: &str, signature: &str, body: &str) -> Value {
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"content-type": "application/json", SIGNATURE_HEADER.to_ascii_lowercase(): signature,
                    "user-agent": "SFDC-Callout/66.0"},
        "requestContext": {
            "accountId": "anonymous", "apiId": "demo", "domainName": "demo.lambda-url.us-east-1.on.aws",
            "domainPrefix": "demo", "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.9", "userAgent": "SFDC-Callout/66.0"}, "requestId": "demo",
            "routeKey": "$default", "stage": "$default", "time": "24/Nov/2026:07:00:00 +0000",
            "timeEpoch": OffsetDateTime::now_utc().unix_timestamp() * 1000
        },
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "isBase64Encoded": true
    })
}

fn env_map(stack: &LocalStack) -> Result<BTreeMap<String, String>, String> {
    Ok(stack
        .names()
        .map_err(|e| e.to_string())?
        .to_env()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect())
}

/// Posts the events to intake and drains the queue with the workers.
pub async fn run_stage(s: &Setup<'_>, changes: &[Change]) -> Result<LiveReport, String> {
    let http = reqwest::Client::new();
    let mut report = LiveReport::default();
    let stamps = modstamps(&http, s.sandbox).await?;

    // Intake, as its Lambda cold start builds it.
    let mut env = env_map(s.stack)?;
    let intake_secret = s
        .stack
        .outputs
        .get("IntakeSecretArn")
        .cloned()
        .ok_or("the template has no IntakeSecretArn output")?;
    env.insert(INTAKE_SECRET_ENV.into(), intake_secret);
    let intake_env =
        Environment::from_lookup(|k| env.get(k).cloned()).map_err(|e| e.to_string())?;
    let intake = orglink_intake::aws::from_aws(s.aws.sdk_config(), &intake_env)
        .await
        .map_err(|e| format!("intake does not start: {e}"))?;

    let org =
        SalesforceOrgId::try_from(s.org_id.to_string()).map_err(|e| format!("org id: {e}"))?;
    let now = OffsetDateTime::now_utc();
    let events: Vec<IntakeEvent> = changes
        .iter()
        .enumerate()
        .map(|(n, c)| {
            Ok(IntakeEvent {
                account_id: AccountId::parse(&c.account).map_err(|e| e.to_string())?,
                kind: c.kind,
                event_id: EventId::parse(&format!("demo-{n}")).map_err(str::to_string)?,
                occurred_at: now,
                account_modstamp: *stamps
                    .get(&c.account)
                    .ok_or_else(|| format!("{} is not in Salesforce", c.account))?,
            })
        })
        .collect::<Result<_, String>>()?;
    report.events = events.len();
    let secret = Secret::new(s.signing_secret);
    let started = Instant::now();
    for (i, chunk) in events.chunks(BATCH).enumerate() {
        let body = IntakeBatch {
            org_id: org.clone(),
            events: chunk.to_vec(),
        }
        .to_json();
        let deliveries = if i % DUPLICATE_EVERY == DUPLICATE_EVERY - 1 {
            2
        } else {
            1
        };
        for _ in 0..deliveries {
            let t = OffsetDateTime::now_utc().unix_timestamp();
            let request = function_url_request("/", &sign(&secret, t, body.as_bytes()), &body);
            let summary = call_intake(&intake, request).await?;
            report.requests += 1;
            for key in [
                "enqueued",
                "deduplicated",
                "ignored",
                "echoes_dropped",
                "exceptions",
            ] {
                *report.intake.entry(key.to_string()).or_default() +=
                    summary[key].as_u64().unwrap_or(0);
            }
        }
    }
    report.webhooks = agents_edit_in_zendesk(&http, s, &intake, changes).await?;
    report.intake_time = started.elapsed();
    report.workers = drain(s).await?;
    Ok(report)
}

/// Two support agents edit linked organizations by hand in Zendesk (through its API, as the
/// agents' browser does): one renames an organization, one types over its external_id. Zendesk
/// sends orglink's webhook for each, signed with the webhook's signing secret; intake's
/// handler takes them as a function URL request on `/zendesk`. Returns what intake made of
/// each (`name_changed: ignored (reason)`).
async fn agents_edit_in_zendesk(
    http: &reqwest::Client,
    s: &Setup<'_>,
    intake: &AwsIntake,
    changes: &[Change],
) -> Result<Vec<String>, String> {
    // Two linked organizations of accounts nobody else changes in this stage.
    let url = format!(
        "{}/api/v2/organizations.json?per_page=100",
        s.sandbox.zendesk
    );
    let page: Value = zendesk_call(s, http.get(&url)).await?;
    let orgs: Vec<&Value> = page["organizations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| {
            o["external_id"].as_str().is_some_and(|k| {
                AccountId::parse(k).is_ok() && !changes.iter().any(|c| c.account == k)
            })
        })
        .take(2)
        .collect();
    let [renamed, rekeyed] = orgs.as_slice() else {
        return Err("no two linked organizations for the agents to edit".into());
    };
    let edits = [
        (
            *renamed,
            "name_changed",
            "name",
            json!(format!(
                "{} (EMEA)",
                renamed["name"].as_str().unwrap_or("Org")
            )),
        ),
        (
            *rekeyed,
            "external_id_changed",
            "external_id",
            json!("SFDC-LEGACY-0042"),
        ),
    ];
    let secret = Secret::new(s.webhook_secret);
    let mut out = Vec::new();
    for (n, (org, kind, field, value)) in edits.into_iter().enumerate() {
        let id = org["id"].as_u64().ok_or("an organization without an id")?;
        let url = format!("{}/api/v2/organizations/{id}.json", s.sandbox.zendesk);
        let answer: Value = zendesk_call(
            s,
            http.put(&url)
                .json(&json!({"organization": {field: value.clone()}})),
        )
        .await?;
        let o = &answer["organization"];
        // The payload Zendesk's organization events carry (docs/reference: webhooks).
        let body = json!({
            "type": format!("zen:event-type:organization.{kind}"),
            "account_id": 10973248,
            "subject": format!("zen:organization:{id}"),
            "id": format!("01demo-agent-edit-{n}"),
            "time": o["updated_at"],
            "zendesk_event_version": "2022-06-20",
            "detail": {"id": id.to_string(), "external_id": o["external_id"], "name": o["name"],
                       "group_id": null, "created_at": o["created_at"], "updated_at": o["updated_at"],
                       "shared_comments": false, "shared_tickets": false},
            "event": {"current": value, "previous": org[field]},
        })
        .to_string();
        let ts = OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| e.to_string())?;
        let signature = sign_webhook(&secret, &ts, body.as_bytes());
        let mut request = function_url_request("/zendesk", "", &body);
        let headers = request["headers"].as_object_mut().ok_or("headers")?;
        headers.remove(&SIGNATURE_HEADER.to_ascii_lowercase());
        headers.insert(WEBHOOK_SIGNATURE.to_ascii_lowercase(), json!(signature));
        headers.insert(WEBHOOK_TIMESTAMP.to_ascii_lowercase(), json!(ts));
        headers.insert("user-agent".into(), json!("Zendesk Webhook"));
        let summary = call_intake(intake, request).await?;
        let results = summary["results"].as_array().cloned().unwrap_or_default();
        let said: Vec<String> = results
            .iter()
            .map(|r| {
                let outcome = r["outcome"].as_str().unwrap_or("?");
                match r["reason"].as_str() {
                    Some(why) => format!("{outcome} ({why})"),
                    None => outcome.to_string(),
                }
            })
            .collect();
        out.push(format!("{kind}: {}", said.join(", ")));
    }
    Ok(out)
}

/// One function URL request through intake's handler; its summary (the 2xx body), or why not.
async fn call_intake(intake: &AwsIntake, request: Value) -> Result<Value, String> {
    let answer = intake
        .handle_invocation(request)
        .await
        .map_err(|e| format!("intake: {e}"))?;
    let status = answer["statusCode"].as_u64().unwrap_or(0);
    let summary: Value = answer["body"]
        .as_str()
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        Ok(summary)
    } else {
        Err(format!("intake answered {status}: {summary}"))
    }
}

/// A call to the Zendesk API as an agent (the demo's API token).
async fn zendesk_call(s: &Setup<'_>, request: reqwest::RequestBuilder) -> Result<Value, String> {
    let r = request
        .basic_auth(format!("{}/token", s.zd_email), Some(s.zd_token))
        .send()
        .await
        .map_err(|e| format!("Zendesk: {}", e.without_url()))?;
    let status = r.status();
    if !status.is_success() {
        return Err(format!("Zendesk answered {status}"));
    }
    r.json().await.map_err(|e| format!("Zendesk: {e}"))
}

/// Drains the sync queue with the workers, each built as the worker's Lambda cold start
/// builds it, through the local runner with the template's event source mapping.
pub async fn drain(s: &Setup<'_>) -> Result<Drained, String> {
    let mut report = Drained::default();
    // The workers, as the worker's Lambda cold start builds them; retries scaled to seconds
    // (docs/worker.md, "Scaling the retry schedule in tests") so the demo stays short.
    let settings = WorkerSettings {
        max_attempts: 40,
        failing_after_secs: 300,
        backoff_base_secs: 1,
        backoff_max_secs: 4,
        zendesk_plan_per_minute: s.zendesk_per_minute,
        zendesk_share_percent: 100,
        salesforce_per_minute: s.salesforce_per_minute,
        zendesk: ZendeskConfig {
            base_url: Some(s.sandbox.zendesk.clone()),
            retry: RetryPolicy::fast(),
            ..ZendeskConfig::default()
        },
        salesforce: SalesforceConfig {
            retry: RetryPolicy::fast(),
            ..SalesforceConfig::default()
        },
        ..WorkerSettings::default()
    };
    let mut env = env_map(s.stack)?;
    env.insert(
        SETTINGS_ENV.into(),
        serde_json::to_string(&settings).map_err(|e| e.to_string())?,
    );
    let worker_env = WorkerEnv::from_lookup(|k| env.get(k).cloned()).map_err(|e| e.to_string())?;
    let worker = Arc::new(
        from_aws(s.aws.sdk_config(), &worker_env, CallLog::new())
            .await
            .map_err(|e| format!("the sync worker does not start: {e}"))?,
    );
    let names = s.stack.names().map_err(|e| e.to_string())?;
    let queue = Arc::new(SqsQueue::new(
        s.aws.sqs(),
        names.sync_queue_url.clone(),
        names.sync_dlq_url.clone(),
    ));
    let sqs = s.aws.sqs();
    let depth = |url: String| {
        let sqs = sqs.clone();
        async move {
            use aws_sdk_sqs::types::QueueAttributeName as N;
            let out = sqs
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(N::ApproximateNumberOfMessages)
                .attribute_names(N::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .ok()?;
            let get = |n: N| -> Option<u64> { out.attributes()?.get(&n)?.parse().ok() };
            Some(
                get(N::ApproximateNumberOfMessages)?
                    + get(N::ApproximateNumberOfMessagesNotVisible)?,
            )
        }
    };
    // The event source mapping as the template defines it: batch size, concurrency, the
    // function timeout and the queue's visibility timeout.
    let param = |k: &str, default: u64| {
        s.stack
            .parameters
            .get(k)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let workers = param("WorkerMaxConcurrency", 4) as usize;
    let config = RunnerConfig {
        workers,
        batch_size: param("WorkerBatchSize", 10) as usize,
        visibility_secs: param("QueueVisibilityTimeoutSeconds", 360) as u32,
        timeout_ms: param("WorkerTimeoutSeconds", 60) * 1000,
        idle_poll_ms: 100,
    };
    report.workers = workers;
    let queue_url = names.sync_queue_url.clone();
    let run_report = run(
        vec![worker; workers],
        queue,
        config,
        || {
            let d = depth(queue_url.clone());
            async move { d.await == Some(0) }
        },
        Duration::from_secs(240),
    )
    .await;
    report.time = run_report.elapsed;
    report.drained = run_report.finished;
    report.invocations = run_report.invocations;
    report.crashes = run_report.crashes;
    for fate in &run_report.fates {
        match fate {
            MessageFate::Done {
                outcome, detail, ..
            } => {
                *report.outcomes.entry(outcome.to_string()).or_default() += 1;
                if let orglink_sync_worker::Outcome::Exception { kind, .. } = detail {
                    *report
                        .exception_kinds
                        .entry(kind.as_str().to_string())
                        .or_default() += 1;
                }
            }
            MessageFate::RetryLater { .. } => report.retries += 1,
            MessageFate::Requeued { .. } => report.requeued += 1,
            MessageFate::Poison { .. } => report.poison += 1,
        }
    }
    report.dead_letters = depth(names.sync_dlq_url.clone()).await.unwrap_or(0);
    Ok(report)
}
