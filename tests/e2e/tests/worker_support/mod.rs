//! What the sync worker's end-to-end suites share: a stack on moto (from the template) with
//! the credentials secret pointing at the sandbox, the worker built by the production wiring
//! (`from_aws`), the sandbox process, enqueueing through the real SQS adapter, and the local
//! runner around the real handler.
#![allow(dead_code)]

use orglink_sandbox::admin::Admin;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use time::OffsetDateTime;

use orglink_harness::{AwsEnv, LocalStack, Sandbox, moto_stack};
use orglink_shared::aws::mirror::MirroredOrg;
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::aws::{OrgMirror, QueueMessage, ReceivedMessage, WorkQueue};
use orglink_shared::contract::EventKind;
use orglink_shared::http::{CallLog, RetryPolicy};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::salesforce::SalesforceConfig;
use orglink_shared::sync_request::{RequestSource, SyncRequest};
use orglink_shared::zendesk::ZendeskConfig;
use orglink_sync_worker::WorkerSettings;
use orglink_sync_worker::aws::{AwsWorker, WorkerEnv, from_aws};
use orglink_sync_worker::batch::MessageFate;
use orglink_sync_worker::runner::{RunReport, RunnerConfig, run};
use orglink_sync_worker::settings::SETTINGS_ENV;

/// The embedded default configuration's binding.
pub const BOUND_ORG: &str = "00D000000000001EAA";
pub const SF_CLIENT_SECRET: &str = "orglink-sandbox-consumer-secret";
pub const ZD_TOKEN: &str = "sandbox-zendesk-token";

/// An 18-character account id `001SB…` numbered `n` (valid checksum).
pub fn account(n: u64) -> String {
    let id15 = format!("001SB{n:010}");
    AccountId::parse(&id15).unwrap().as_str().to_string()
}

pub fn customer(id: &str, name: &str, website: &str) -> Value {
    json!({"Id": id, "Name": name, "Website": website, "Type": "Customer - Direct"})
}

/// Retry settings scaled to seconds (docs/worker.md, "Scaling the retry schedule in tests").
pub fn fast_settings() -> WorkerSettings {
    WorkerSettings {
        max_attempts: 40,
        failing_after_secs: 300,
        backoff_base_secs: 1,
        backoff_max_secs: 2,
        requeue_at_receive_count: 4,
        poison_visibility_secs: 1,
        zendesk: ZendeskConfig {
            retry: RetryPolicy::fast(),
            ..ZendeskConfig::default()
        },
        salesforce: SalesforceConfig {
            retry: RetryPolicy::fast(),
            ..SalesforceConfig::default()
        },
        ..WorkerSettings::default()
    }
}

pub struct World {
    pub aws: AwsEnv,
    pub stack: LocalStack,
    pub sandbox: Sandbox,
    pub worker: Arc<AwsWorker>,
    pub queue: Arc<SqsQueue>,
    pub calls: CallLog,
    /// The simulators' admin API.
    pub admin: Admin,
    _scenario: TempFile,
}

struct TempFile(PathBuf);
impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl World {
    pub async fn start(label: &str, scenario: Value) -> World {
        Self::start_with(label, scenario, fast_settings()).await
    }

    pub async fn start_with(label: &str, scenario: Value, settings: WorkerSettings) -> World {
        let (aws, stack) = moto_stack(label).await;
        let path =
            std::env::temp_dir().join(format!("{}-scenario.json", stack.parameters["Prefix"]));
        std::fs::write(&path, scenario.to_string()).unwrap();
        let sandbox = Sandbox::start_with(Some(&path), &["--salesforce-org-id", BOUND_ORG])
            .unwrap_or_else(|e| panic!("{e} (build it: cargo build -p orglink-sandbox)"));
        let names = stack.names().expect("the stack's names");
        orglink_e2e::put_sandbox_credentials(&aws, &names, &sandbox).await;
        let mut settings = settings;
        settings.zendesk.base_url = Some(sandbox.zendesk.clone());
        let env = orglink_e2e::function_env(
            &names,
            [(SETTINGS_ENV, serde_json::to_string(&settings).unwrap())],
        );
        let env =
            WorkerEnv::from_lookup(|k| env.get(k).cloned()).expect("the worker's environment");
        let calls = CallLog::new();
        let worker = from_aws(aws.sdk_config(), &env, calls.clone())
            .await
            .expect("the worker starts");
        let queue = Arc::new(SqsQueue::new(
            aws.sqs(),
            names.sync_queue_url.clone(),
            names.sync_dlq_url.clone(),
        ));
        World {
            admin: Admin::new(sandbox.salesforce.clone(), sandbox.zendesk.clone()),
            aws,
            stack,
            sandbox,
            worker: Arc::new(worker),
            queue,
            calls,
            _scenario: TempFile(path),
        }
    }

    /// What a first full reconcile leaves in the org mirror: every organization the sandbox
    /// holds, and the completeness marker. Without the marker the worker holds every create
    /// (and link by domain) for an account with a domain (docs/worker.md).
    pub async fn fill_mirror(&self) {
        for o in self.admin.orgs().await {
            let domains: Vec<&str> = o["domain_names"]
                .as_array()
                .map(|d| d.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            self.worker
                .stores
                .mirror
                .upsert(&MirroredOrg::new(
                    OrgId::new(o["id"].as_u64().expect("an org id")).expect("an org id"),
                    o["name"].as_str().unwrap_or_default(),
                    o["external_id"].as_str().map(str::to_string),
                    domains,
                    o["updated_at"].as_str().map(str::to_string),
                ))
                .await
                .expect("fill the org mirror");
        }
        self.mark_mirror_filled().await;
    }

    /// The org mirror's completeness marker alone (the test put the rows in itself).
    pub async fn mark_mirror_filled(&self) {
        self.worker
            .stores
            .mirror
            .mark_filled("test: a full listing", orglink_sync_worker::sync::now_ms())
            .await
            .expect("mark the org mirror filled");
    }

    pub async fn accounts(&self) -> Vec<Value> {
        self.admin.sf_get("state").await["salesforce"]["accounts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub async fn account(&self, id: &str) -> Value {
        self.accounts()
            .await
            .into_iter()
            .find(|a| a["Id"] == id)
            .expect("account in the sandbox")
    }

    /// Enqueues through the real SQS adapter.
    pub async fn enqueue(&self, req: &SyncRequest) -> QueueMessage {
        let m = req.to_message();
        self.queue.send(&m).await.expect("enqueue");
        m
    }

    /// A message whose body is not a sync request.
    pub async fn enqueue_poison(&self, group: &str, body: &str) {
        let m = QueueMessage {
            account: AccountId::parse(group).unwrap(),
            event_id: "poison".into(),
            body: body.into(),
        };
        self.queue.send(&m).await.expect("enqueue");
    }

    /// Runs `workers` workers until every listed account has its link (and `extra` holds).
    pub async fn run_until_linked(
        &self,
        workers: usize,
        accounts: &[String],
        max: Duration,
    ) -> RunReport {
        self.run_until(workers, max, || async move {
            let all = self.accounts().await;
            accounts.iter().all(|id| {
                all.iter()
                    .any(|a| a["Id"] == id.as_str() && a["Zendesk_Sync_Status__c"].is_string())
            })
        })
        .await
    }

    pub async fn run_until<F, Fut>(&self, workers: usize, max: Duration, until: F) -> RunReport
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        let config = RunnerConfig {
            workers,
            batch_size: 10,
            visibility_secs: 6,
            timeout_ms: 5000,
            idle_poll_ms: 100,
        };
        self.run_with(config, max, until).await
    }

    /// As [`World::run_until`], with the event source mapping's settings given.
    pub async fn run_with<F, Fut>(&self, config: RunnerConfig, max: Duration, until: F) -> RunReport
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        run(
            vec![self.worker.clone(); config.workers],
            self.queue.clone(),
            config,
            until,
            max,
        )
        .await
    }

    /// Messages still on the queue, visible or in flight.
    pub async fn queue_depth(&self) -> (u64, u64) {
        self.depth(&self.stack.names().unwrap().sync_queue_url)
            .await
    }

    pub async fn dlq_depth(&self) -> u64 {
        let (v, f) = self.depth(&self.stack.names().unwrap().sync_dlq_url).await;
        v + f
    }

    async fn depth(&self, url: &str) -> (u64, u64) {
        use aws_sdk_sqs::types::QueueAttributeName as N;
        let out = self
            .aws
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(N::ApproximateNumberOfMessages)
            .attribute_names(N::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("queue attributes");
        let get = |n: N| {
            out.attributes()
                .and_then(|a| a.get(&n))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (
            get(N::ApproximateNumberOfMessages),
            get(N::ApproximateNumberOfMessagesNotVisible),
        )
    }

    pub async fn dead_letters(&self) -> Vec<ReceivedMessage> {
        self.queue.dead_letters(10).await.expect("dead letters")
    }

    /// Every Salesforce write in the sandbox's log, as (record id, field names).
    pub async fn salesforce_writes(&self) -> Vec<(String, Vec<String>)> {
        self.admin
            .sf_get("writes")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|w| {
                (
                    w["id"].as_str().unwrap_or_default().to_string(),
                    w["fields"]
                        .as_object()
                        .map(|f| f.keys().cloned().collect())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }
}

pub fn request(account: &str, kind: EventKind, event_id: &str) -> SyncRequest {
    SyncRequest {
        account_id: AccountId::parse(account).unwrap(),
        event_id: event_id.into(),
        kind,
        source: RequestSource::SalesforceNotifier,
        occurred_at: OffsetDateTime::now_utc(),
        account_modstamp: None,
        org_id: None,
        note: None,
    }
}

/// Orgs whose external_id is `account`.
pub fn keyed<'a>(orgs: &'a [Value], account: &str) -> Vec<&'a Value> {
    orgs.iter()
        .filter(|o| {
            o["external_id"]
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case(account))
        })
        .collect()
}

/// The link fields: the only Salesforce fields orglink may write.
pub const LINK_FIELDS: [&str; 4] = [
    "Zendesk_Org_ID__c",
    "Zendesk_Domain__c",
    "Last_Zendesk_Sync_At__c",
    "Zendesk_Sync_Status__c",
];

/// Asserts the sandbox's write log holds no Salesforce write outside the link fields.
pub async fn assert_only_link_fields_written(w: &World) {
    let writes = w.salesforce_writes().await;
    assert!(!writes.is_empty(), "expected some write-back");
    for (id, fields) in writes {
        for f in fields {
            let bookkeeping =
                ["LastModifiedDate", "SystemModstamp", "LastModifiedById"].contains(&f.as_str());
            assert!(
                LINK_FIELDS.contains(&f.as_str()) || bookkeeping,
                "orglink wrote {f} on {id}"
            );
        }
    }
}

/// The final fate of every message id the runner saw: its last one, except that Done stays.
pub fn last_fates(fates: &[MessageFate]) -> BTreeMap<String, MessageFate> {
    let mut out = BTreeMap::new();
    for f in fates {
        let id = match f {
            MessageFate::Done { message_id, .. }
            | MessageFate::RetryLater { message_id }
            | MessageFate::Requeued { message_id }
            | MessageFate::Poison { message_id } => message_id.clone(),
        };
        // Done is final: the message was deleted. A later fate for the same id is a stale
        // copy (received again after its visibility ran out, while the first was still being
        // handled), so it does not replace Done.
        if !matches!(out.get(&id), Some(MessageFate::Done { .. })) {
            out.insert(id, f.clone());
        }
    }
    out
}
