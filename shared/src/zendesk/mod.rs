//! The Zendesk Support client for organizations: show, show_many (ids and external_ids),
//! search, cursor listing, the incremental export, create / create_or_update / update, bulk
//! jobs with per-item results, and the organization fields and webhooks setup needs; the
//! incremental ticket export and requesters' memberships for ticket attribution (`tickets`).
//!
//! Every request goes through the shared executor (`crate::http`): rate budget (account limit
//! and the per-endpoint limits), retry discipline, failure classification and call counts.

pub mod candidates;
mod jobs;
mod orgs;
mod tickets;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

use crate::contract::{Binding, BindingMismatch};
use crate::credentials::{Secret, ZendeskCredentials};
use crate::http::failure::{ApiProblem, Disposition, Verdict};
use crate::http::transport::{Failure, Replay, Reply, Transport, http_client};
use crate::http::{BudgetRefusal, CallLog, CallSpec, RateBudget, RetryPolicy, System};
use crate::ids::OrgId;
use crate::model::Organization;

pub use jobs::{JobItem, JobItemError, JobOutcome};
pub use orgs::org_from_json;
pub use tickets::{TicketExportFrom, TicketPage, TicketRecord};

/// show_many, create_many and update_many take at most 100 items.
pub const MANY_LIMIT: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZendeskConfig {
    /// Local only: the base URL to call (the sandbox). In production leave it out: the base URL
    /// is `https://{subdomain}.zendesk.com`, derived from the subdomain.
    pub base_url: Option<String>,
    /// The subdomain this client talks to; defaults to the binding's. Must equal the binding's.
    pub subdomain: Option<String>,
    /// Cursor page size (at most 100).
    pub page_size: u32,
    pub retry: RetryPolicy,
    pub timeout_secs: u64,
    /// How often a bulk job's status is polled, in milliseconds.
    pub job_poll_ms: u64,
    /// How long a bulk job may take before orglink stops waiting, in seconds (job data is
    /// kept for an hour).
    pub job_timeout_secs: u64,
}

impl Default for ZendeskConfig {
    fn default() -> Self {
        ZendeskConfig {
            base_url: None,
            subdomain: None,
            page_size: 100,
            retry: RetryPolicy::default(),
            timeout_secs: 60,
            job_poll_ms: 1000,
            job_timeout_secs: 600,
        }
    }
}

/// Which unique value Zendesk found taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DuplicateField {
    Name,
    ExternalId,
}

/// What went wrong talking to Zendesk, and what the caller should do ([`Self::disposition`]).
#[derive(Debug, Error)]
pub enum ZendeskError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    WrongSubdomain(#[from] BindingMismatch),
    #[error(transparent)]
    Budget(#[from] BudgetRefusal),
    /// 404 `RecordNotFound`: the organization (or job, webhook) does not exist.
    #[error("Zendesk has no such record ({endpoint})")]
    RecordNotFound { endpoint: &'static str },
    /// 422 with `DuplicateValue` on `name` or `external_id`.
    #[error("Zendesk refused a duplicate {field:?}: {description}")]
    DuplicateValue {
        field: DuplicateField,
        description: String,
    },
    #[error("Zendesk {endpoint} failed after {attempts} attempt(s): {reason}")]
    Api {
        endpoint: &'static str,
        verdict: Verdict,
        reason: String,
        problem: Option<Box<ApiProblem>>,
        attempts: u32,
    },
    #[error("Zendesk sent an answer orglink cannot use ({endpoint}): {detail}")]
    Protocol {
        endpoint: &'static str,
        detail: String,
    },
    /// A full page of the time-based export whose `end_time` did not move past `start_time`:
    /// more organizations changed in that second than a page holds, and following the export
    /// would ask for the same page forever. A full listing reads them.
    #[error(
        "the Zendesk organization export does not move past second {start_time} (a full page changed in that second); run a full reconcile, which lists every organization"
    )]
    ExportStalled { start_time: i64 },
    #[error("Zendesk job {job_id} ended {status}: {message}")]
    JobFailed {
        job_id: String,
        status: String,
        message: String,
    },
    #[error("Zendesk job {job_id} did not finish within {waited:?}")]
    JobTimeout { job_id: String, waited: Duration },
}

impl ZendeskError {
    pub fn disposition(&self) -> Disposition {
        match self {
            ZendeskError::Config(r) => Disposition::Review { reason: r.clone() },
            ZendeskError::WrongSubdomain(m) => Disposition::Review {
                reason: m.to_string(),
            },
            ZendeskError::Budget(BudgetRefusal::Busy { retry_after, .. }) => Disposition::Retry {
                after: Some(*retry_after),
            },
            ZendeskError::Budget(BudgetRefusal::DailyReserve { .. }) => Disposition::Retry {
                after: Some(crate::http::failure::DAILY_LIMIT_BACKOFF),
            },
            ZendeskError::RecordNotFound { .. } => Disposition::GiveUp {
                reason: self.to_string(),
            },
            ZendeskError::DuplicateValue { .. } | ZendeskError::ExportStalled { .. } => {
                Disposition::Review {
                    reason: self.to_string(),
                }
            }
            ZendeskError::Api { verdict, .. } => verdict.disposition(),
            ZendeskError::Protocol { .. } | ZendeskError::JobTimeout { .. } => {
                Disposition::Retry { after: None }
            }
            ZendeskError::JobFailed { .. } => Disposition::Retry { after: None },
        }
    }
}

/// `create_or_update`'s answer. Zendesk documents both 200 and 201 without saying which means
/// created (UNVERIFIED), so the status is reported as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    pub organization: Organization,
    pub status: u16,
}

/// A page of the cursor listing. Resume a listing from `after_cursor`.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgPage {
    pub organizations: Vec<Organization>,
    pub after_cursor: Option<String>,
    pub has_more: bool,
}

/// A page of the incremental export. Pages can repeat records: dedupe by id and updated_at.
#[derive(Debug, Clone, PartialEq)]
pub struct IncrementalPage {
    pub organizations: Vec<Organization>,
    /// Organizations reported deleted (only when the export carries `deleted_at`, UNVERIFIED).
    pub deleted: Vec<OrgId>,
    /// Start the next export here (persist it).
    pub end_time: i64,
    pub end_of_stream: bool,
}

/// What a page reported, by id: an organization as sent, or `None` for a deletion.
type Exported = HashMap<OrgId, Option<Organization>>;

/// `page` without the records `previous` already reported exactly as they are now (a change
/// made again within the same second differs, and is kept), and what `page` reported (what the
/// next page may repeat).
fn dedupe(mut page: IncrementalPage, previous: &Exported) -> (IncrementalPage, Exported) {
    let reported: Exported = page
        .organizations
        .iter()
        .map(|o| (o.id, Some(o.clone())))
        .chain(page.deleted.iter().map(|id| (*id, None)))
        .collect();
    page.organizations
        .retain(|o| previous.get(&o.id).is_none_or(|p| p.as_ref() != Some(o)));
    page.deleted
        .retain(|id| previous.get(id).is_none_or(Option::is_some));
    (page, reported)
}

struct Inner {
    transport: Transport,
    base_url: String,
    creds: ZendeskCredentials,
    config: ZendeskConfig,
}

/// A Zendesk client bound to one subdomain. Cheap to clone.
#[derive(Clone)]
pub struct ZendeskClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ZendeskClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZendeskClient")
            .field("base_url", &self.inner.base_url)
            .finish_non_exhaustive()
    }
}

impl ZendeskClient {
    /// Builds the client and checks the subdomain: the one it talks to must be the binding's,
    /// and so must the one Zendesk reports (`GET /api/v2/account`, when the account answers it).
    pub async fn connect(
        config: ZendeskConfig,
        creds: ZendeskCredentials,
        binding: &Binding,
        budget: Arc<dyn RateBudget>,
        calls: CallLog,
    ) -> Result<ZendeskClient, ZendeskError> {
        let subdomain = config
            .subdomain
            .clone()
            .unwrap_or_else(|| binding.zendesk_subdomain().as_str().to_string());
        binding.check(binding.salesforce_org_id().as_str(), &subdomain)?;
        let base_url = match &config.base_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => format!("https://{subdomain}.zendesk.com"),
        };
        if !(base_url.starts_with("https://")
            || base_url.starts_with("http://127.0.0.1")
            || base_url.starts_with("http://localhost"))
        {
            return Err(ZendeskError::Config(format!(
                "base_url {base_url:?} must be https (http only on loopback)"
            )));
        }
        if !(1..=100).contains(&config.page_size) {
            return Err(ZendeskError::Config(
                "page_size must be between 1 and 100".into(),
            ));
        }
        let transport = Transport {
            system: System::Zendesk,
            http: http_client(Duration::from_secs(config.timeout_secs.max(1))),
            budget,
            retry: config.retry.clone(),
            calls,
        };
        let client = ZendeskClient {
            inner: Arc::new(Inner {
                transport,
                base_url,
                creds,
                config,
            }),
        };
        match client.reported_subdomain().await {
            Ok(Some(reported)) => binding.check(binding.salesforce_org_id().as_str(), &reported)?,
            Ok(None) => {}
            // The account endpoint is undocumented; the subdomain check above stands alone then.
            Err(ZendeskError::RecordNotFound { .. }) => {
                tracing::info!(
                    system = "zendesk",
                    "GET /api/v2/account is not answered; the subdomain is checked from configuration only"
                );
            }
            Err(ZendeskError::Api {
                problem: Some(p), ..
            }) if p.status == 404 => {
                tracing::info!(
                    system = "zendesk",
                    "GET /api/v2/account is not answered; the subdomain is checked from configuration only"
                );
            }
            Err(e) => return Err(e),
        }
        Ok(client)
    }

    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The subdomain Zendesk reports for the account (`account.subdomain`, or the host of
    /// `account.url`).
    async fn reported_subdomain(&self) -> Result<Option<String>, ZendeskError> {
        let v = self.get_json("zd.account", "/api/v2/account", &[]).await?;
        let account = &v["account"];
        if let Some(s) = account["subdomain"].as_str() {
            return Ok(Some(s.to_string()));
        }
        Ok(account["url"]
            .as_str()
            .and_then(|u| u.split_once("://"))
            .and_then(|(_, host)| host.split(['.', '/', ':']).next())
            .map(str::to_string))
    }

    // -----------------------------------------------------------------------------------------
    // Plumbing

    fn authorized(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let rb = rb.header("Accept", "application/json");
        match &self.inner.creds {
            ZendeskCredentials::ApiToken { email, api_token } => {
                rb.basic_auth(format!("{email}/token"), Some(api_token.expose()))
            }
            ZendeskCredentials::Oauth { oauth_token } => rb.bearer_auth(oauth_token.expose()),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.inner.base_url)
    }

    async fn send(
        &self,
        endpoint: &'static str,
        record: Option<&str>,
        replay: Replay,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync,
    ) -> Result<Reply, ZendeskError> {
        let call = CallSpec {
            system: System::Zendesk,
            endpoint,
            record,
        };
        let http = &self.inner.transport.http;
        let b = || self.authorized(build(http));
        match self.inner.transport.send(call, replay, &b).await {
            Ok(r) => Ok(r),
            Err(Failure::Refused(r)) => Err(r.into()),
            Err(Failure::Failed {
                verdict,
                problem,
                attempts,
            }) => Err(typed_error(endpoint, verdict, problem, attempts)),
        }
    }

    async fn get_json(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, ZendeskError> {
        let url = self.url(path);
        let reply = self
            .send(endpoint, None, Replay::Safe, |http| {
                http.get(&url).query(query)
            })
            .await?;
        parse_json(endpoint, &reply.body)
    }

    // -----------------------------------------------------------------------------------------
    // Reads

    /// `GET /organizations/{id}`; [`ZendeskError::RecordNotFound`] when it does not exist.
    pub async fn show(&self, id: OrgId) -> Result<Organization, ZendeskError> {
        let v = self
            .get_json("zd.org_show", &format!("/api/v2/organizations/{id}"), &[])
            .await?;
        orgs::single("zd.org_show", &v)
    }

    /// `show_many?ids=`, in chunks of 100. Ids that do not exist are simply absent.
    pub async fn show_many(&self, ids: &[OrgId]) -> Result<Vec<Organization>, ZendeskError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(MANY_LIMIT) {
            let list = chunk
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",");
            let v = self
                .get_json(
                    "zd.org_show_many",
                    "/api/v2/organizations/show_many",
                    &[("ids", list)],
                )
                .await?;
            out.extend(orgs::list("zd.org_show_many", &v)?);
        }
        Ok(out)
    }

    /// `show_many?external_ids=`, in chunks of 100 (matches in Zendesk's database, case-
    /// insensitively). Several organizations may carry one external_id in legacy data: all
    /// are returned.
    pub async fn show_many_by_external_ids(
        &self,
        external_ids: &[String],
    ) -> Result<Vec<Organization>, ZendeskError> {
        let mut out = Vec::new();
        for chunk in external_ids.chunks(MANY_LIMIT) {
            // A comma inside a value would split it: such a value cannot be one of ours.
            let list = chunk
                .iter()
                .filter(|e| !e.contains(','))
                .cloned()
                .collect::<Vec<_>>()
                .join(",");
            if list.is_empty() {
                continue;
            }
            let v = self
                .get_json(
                    "zd.org_show_many",
                    "/api/v2/organizations/show_many",
                    &[("external_ids", list)],
                )
                .await?;
            out.extend(orgs::list("zd.org_show_many", &v)?);
        }
        Ok(out)
    }

    /// `search?external_id=` (exact, case-insensitive; reads the search index, which lags).
    pub async fn search_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Vec<Organization>, ZendeskError> {
        let v = self
            .get_json(
                "zd.org_search",
                "/api/v2/organizations/search",
                &[("external_id", external_id.to_string())],
            )
            .await?;
        orgs::list("zd.org_search", &v)
    }

    /// `search?name=` (exact, case-insensitive; reads the search index, which lags).
    pub async fn search_by_name(&self, name: &str) -> Result<Vec<Organization>, ZendeskError> {
        let v = self
            .get_json(
                "zd.org_search",
                "/api/v2/organizations/search",
                &[("name", name.to_string())],
            )
            .await?;
        orgs::list("zd.org_search", &v)
    }

    /// Every organization, by cursor pagination, page by page from `after_cursor` (`None`: the
    /// start), so a listing can resume where it stopped.
    pub fn list_pages(
        &self,
        after_cursor: Option<String>,
    ) -> impl Stream<Item = Result<OrgPage, ZendeskError>> + Send + '_ {
        let size = self.inner.config.page_size.to_string();
        stream::try_unfold(Some(after_cursor), move |state| {
            let size = size.clone();
            async move {
                let Some(after) = state else {
                    return Ok(None);
                };
                let mut query = vec![("page[size]", size)];
                if let Some(c) = &after {
                    query.push(("page[after]", c.clone()));
                }
                let v = self
                    .get_json("zd.org_list", "/api/v2/organizations", &query)
                    .await?;
                let organizations = orgs::list("zd.org_list", &v)?;
                let has_more = v["meta"]["has_more"].as_bool().unwrap_or(false);
                let after_cursor = v["meta"]["after_cursor"].as_str().map(str::to_string);
                let next = match (has_more, &after_cursor) {
                    (false, _) => None,
                    (true, Some(c)) => Some(Some(c.clone())),
                    (true, None) => {
                        return Err(ZendeskError::Protocol {
                            endpoint: "zd.org_list",
                            detail: "has_more without after_cursor: the listing would be silently truncated".into(),
                        });
                    }
                };
                Ok(Some((
                    OrgPage {
                        organizations,
                        after_cursor,
                        has_more,
                    },
                    next,
                )))
            }
        })
    }

    /// Every organization, one by one.
    pub fn list(&self) -> impl Stream<Item = Result<Organization, ZendeskError>> + Send + '_ {
        self.list_pages(None)
            .map_ok(|p| stream::iter(p.organizations.into_iter().map(Ok)))
            .try_flatten()
    }

    /// The incremental export from `start_time` (Unix seconds, at least a minute ago), page by
    /// page until `end_of_stream`. Time-based: a page starts at the previous page's last
    /// second, so its records can come again; those the previous page held exactly as they are
    /// are dropped here. A page whose `end_time` does not move past its
    /// `start_time` ends the stream with [`ZendeskError::ExportStalled`] instead of looping.
    pub fn incremental(
        &self,
        start_time: i64,
    ) -> impl Stream<Item = Result<IncrementalPage, ZendeskError>> + Send + '_ {
        let first = Some((start_time, Exported::new()));
        stream::try_unfold(first, move |state| async move {
            let Some((start, previous)) = state else {
                return Ok(None);
            };
            let v = self
                .get_json(
                    "zd.incremental",
                    "/api/v2/incremental/organizations",
                    &[("start_time", start.to_string())],
                )
                .await?;
            let page = orgs::incremental_page("zd.incremental", &v)?;
            if page.end_of_stream {
                return Ok(Some((dedupe(page, &previous).0, None)));
            }
            if page.end_time <= start {
                return Err(ZendeskError::ExportStalled { start_time: start });
            }
            let next = page.end_time;
            let (page, reported) = dedupe(page, &previous);
            Ok(Some((page, Some((next, reported)))))
        })
    }

    // -----------------------------------------------------------------------------------------
    // Writes (bodies without the `{"organization": …}` wrapper, as `mapping` builds them)

    /// `POST /organizations` (201). Not retried once Zendesk may have acted on it.
    pub async fn create(&self, organization: &Value) -> Result<Organization, ZendeskError> {
        let url = self.url("/api/v2/organizations");
        let body = json!({"organization": organization});
        let reply = self
            .send("zd.org_create", None, Replay::UnlessProcessed, |http| {
                http.post(&url).json(&body)
            })
            .await?;
        orgs::single("zd.org_create", &parse_json("zd.org_create", &reply.body)?)
    }

    /// `POST /organizations/create_or_update`, keyed on the body's `external_id` (or `id`):
    /// matched in Zendesk's database, so a retry never duplicates.
    pub async fn create_or_update(&self, organization: &Value) -> Result<Upserted, ZendeskError> {
        if organization.get("external_id").is_none_or(Value::is_null)
            && organization.get("id").is_none_or(Value::is_null)
        {
            return Err(ZendeskError::Config(
                "create_or_update needs an external_id or id: Zendesk does not match on name"
                    .into(),
            ));
        }
        let url = self.url("/api/v2/organizations/create_or_update");
        let body = json!({"organization": organization});
        let reply = self
            .send("zd.org_create_or_update", None, Replay::Safe, |http| {
                http.post(&url).json(&body)
            })
            .await?;
        let org = orgs::single(
            "zd.org_create_or_update",
            &parse_json("zd.org_create_or_update", &reply.body)?,
        )?;
        Ok(Upserted {
            organization: org,
            status: reply.status,
        })
    }

    /// `PUT /organizations/{id}` (5 per minute, per organization: the budget paces it).
    pub async fn update(&self, id: OrgId, changes: &Value) -> Result<Organization, ZendeskError> {
        let url = self.url(&format!("/api/v2/organizations/{id}"));
        let body = json!({"organization": changes});
        let record = id.to_string();
        let reply = self
            .send("zd.org_update", Some(&record), Replay::Safe, |http| {
                http.put(&url).json(&body)
            })
            .await?;
        orgs::single("zd.org_update", &parse_json("zd.org_update", &reply.body)?)
    }

    /// `create_many` in jobs of 100, each polled to its end; one result per input, in order.
    pub async fn create_many(&self, organizations: &[Value]) -> Result<Vec<JobItem>, ZendeskError> {
        let mut out = Vec::with_capacity(organizations.len());
        for (n, chunk) in organizations.chunks(MANY_LIMIT).enumerate() {
            let url = self.url("/api/v2/organizations/create_many");
            let body = json!({"organizations": chunk});
            let reply = self
                .send(
                    "zd.org_create_many",
                    None,
                    Replay::UnlessProcessed,
                    |http| http.post(&url).json(&body),
                )
                .await?;
            let outcome = self.wait_for_job("zd.org_create_many", &reply.body).await?;
            out.extend(jobs::items(&outcome, chunk.len(), n * MANY_LIMIT));
        }
        Ok(out)
    }

    /// `update_many` (batch form: each body carries its `id`) in jobs of 100, each polled to its
    /// end; one result per input, in order.
    pub async fn update_many(&self, organizations: &[Value]) -> Result<Vec<JobItem>, ZendeskError> {
        if organizations
            .iter()
            .any(|o| o.get("id").is_none_or(Value::is_null))
        {
            return Err(ZendeskError::Config(
                "update_many needs each organization's id".into(),
            ));
        }
        let mut out = Vec::with_capacity(organizations.len());
        for (n, chunk) in organizations.chunks(MANY_LIMIT).enumerate() {
            let url = self.url("/api/v2/organizations/update_many");
            let body = json!({"organizations": chunk});
            let reply = self
                .send("zd.org_update_many", None, Replay::Safe, |http| {
                    http.put(&url).json(&body)
                })
                .await?;
            let outcome = self.wait_for_job("zd.org_update_many", &reply.body).await?;
            out.extend(jobs::items(&outcome, chunk.len(), n * MANY_LIMIT));
        }
        Ok(out)
    }

    async fn wait_for_job(
        &self,
        endpoint: &'static str,
        submitted: &[u8],
    ) -> Result<JobOutcome, ZendeskError> {
        let mut job = jobs::parse(endpoint, &parse_json(endpoint, submitted)?)?;
        let poll = Duration::from_millis(self.inner.config.job_poll_ms.max(1));
        let limit = Duration::from_secs(self.inner.config.job_timeout_secs);
        let started = std::time::Instant::now();
        loop {
            match job.status.as_str() {
                "completed" => return Ok(job),
                "failed" | "killed" => {
                    return Err(ZendeskError::JobFailed {
                        job_id: job.id,
                        status: job.status,
                        message: job.message.unwrap_or_default(),
                    });
                }
                _ => {}
            }
            if started.elapsed() >= limit {
                return Err(ZendeskError::JobTimeout {
                    job_id: job.id,
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(poll).await;
            let v = self
                .get_json(
                    "zd.job_status",
                    &format!("/api/v2/job_statuses/{}", job.id),
                    &[],
                )
                .await?;
            job = jobs::parse("zd.job_status", &v)?;
        }
    }

    // -----------------------------------------------------------------------------------------
    // Setup: organization fields and webhooks

    pub async fn organization_fields(&self) -> Result<Vec<Value>, ZendeskError> {
        let v = self
            .get_json("zd.org_fields_list", "/api/v2/organization_fields", &[])
            .await?;
        Ok(v["organization_fields"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Creates an organization field (`{"key","title","type"}`).
    pub async fn create_organization_field(&self, field: &Value) -> Result<Value, ZendeskError> {
        let url = self.url("/api/v2/organization_fields");
        let body = json!({"organization_field": field});
        let reply = self
            .send(
                "zd.org_fields_create",
                None,
                Replay::UnlessProcessed,
                |http| http.post(&url).json(&body),
            )
            .await?;
        Ok(parse_json("zd.org_fields_create", &reply.body)?["organization_field"].clone())
    }

    /// `GET /users/me`: the user this token acts as (`role`, `custom_role_id`), for checking
    /// that it may manage organizations.
    pub async fn current_user(&self) -> Result<Value, ZendeskError> {
        let v = self.get_json("zd.user_me", "/api/v2/users/me", &[]).await?;
        Ok(v["user"].clone())
    }

    /// `GET /custom_roles/{id}` (Enterprise; admins and agents with `manage_roles`): what an
    /// agent's custom role allows (`configuration.organization_editing`, ...).
    pub async fn custom_role(&self, id: u64) -> Result<Value, ZendeskError> {
        let v = self
            .get_json("zd.custom_role", &format!("/api/v2/custom_roles/{id}"), &[])
            .await?;
        Ok(v["custom_role"].clone())
    }

    pub async fn webhooks(&self) -> Result<Vec<Value>, ZendeskError> {
        let v = self
            .get_json("zd.webhook_list", "/api/v2/webhooks", &[])
            .await?;
        Ok(v["webhooks"].as_array().cloned().unwrap_or_default())
    }

    pub async fn create_webhook(&self, webhook: &Value) -> Result<Value, ZendeskError> {
        let url = self.url("/api/v2/webhooks");
        let body = json!({"webhook": webhook});
        let reply = self
            .send("zd.webhook_create", None, Replay::UnlessProcessed, |http| {
                http.post(&url).json(&body)
            })
            .await?;
        Ok(parse_json("zd.webhook_create", &reply.body)?["webhook"].clone())
    }

    /// The webhook's signing secret (returned as a [`Secret`]: never logged).
    pub async fn webhook_signing_secret(&self, webhook_id: &str) -> Result<Secret, ZendeskError> {
        let v = self
            .get_json(
                "zd.webhook_secret",
                &format!("/api/v2/webhooks/{webhook_id}/signing_secret"),
                &[],
            )
            .await?;
        v["signing_secret"]["secret"]
            .as_str()
            .map(Secret::new)
            .ok_or(ZendeskError::Protocol {
                endpoint: "zd.webhook_secret",
                detail: "no signing_secret.secret".into(),
            })
    }

    pub async fn delete_webhook(&self, webhook_id: &str) -> Result<(), ZendeskError> {
        let url = self.url(&format!("/api/v2/webhooks/{webhook_id}"));
        self.send("zd.webhook_delete", None, Replay::Safe, |http| {
            http.delete(&url)
        })
        .await
        .map(|_| ())
    }
}

fn parse_json(endpoint: &'static str, body: &[u8]) -> Result<Value, ZendeskError> {
    serde_json::from_slice(body).map_err(|e| ZendeskError::Protocol {
        endpoint,
        detail: format!("not JSON: {e}"),
    })
}

/// The typed errors resolution acts on, else the classified failure.
fn typed_error(
    endpoint: &'static str,
    verdict: Verdict,
    problem: Option<Box<ApiProblem>>,
    attempts: u32,
) -> ZendeskError {
    if let Some(p) = &problem {
        if p.status == 404 && p.code.as_deref().is_none_or(|c| c == "RecordNotFound") {
            return ZendeskError::RecordNotFound { endpoint };
        }
        if p.status == 422 {
            for (key, field) in [
                ("external_id", DuplicateField::ExternalId),
                ("name", DuplicateField::Name),
            ] {
                if let Some(("DuplicateValue", description)) = p.detail_error(key) {
                    return ZendeskError::DuplicateValue {
                        field,
                        description: description.to_string(),
                    };
                }
            }
        }
    }
    let reason = match &verdict {
        Verdict::RetryLater { reason, .. } | Verdict::Permanent { reason, .. } => reason.clone(),
        Verdict::Reauthenticate => "authentication failed".into(),
    };
    ZendeskError::Api {
        endpoint,
        verdict,
        reason,
        problem,
        attempts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_export_record_is_dropped_unless_it_changed_again() {
        let org = |id: u64, notes: &str| Organization {
            id: OrgId::new(id).unwrap(),
            name: format!("Org {id}"),
            external_id: None,
            domain_names: vec![],
            tags: vec![],
            organization_fields: [("notes".to_string(), json!(notes))].into(),
            updated_at: Some("2024-02-01T00:00:00Z".into()),
        };
        let page = |organizations: Vec<Organization>, deleted: Vec<u64>| IncrementalPage {
            organizations,
            deleted: deleted
                .into_iter()
                .map(|d| OrgId::new(d).unwrap())
                .collect(),
            end_time: 1_706_745_600,
            end_of_stream: false,
        };
        let (first, reported) = dedupe(
            page(vec![org(1, "a"), org(2, "a")], vec![9]),
            &Exported::new(),
        );
        assert_eq!(first.organizations.len(), 2);
        // Org 1 again as it was, org 2 edited again within the same second, 9 deleted again,
        // 3 new.
        let (second, _) = dedupe(
            page(vec![org(1, "a"), org(2, "b"), org(3, "a")], vec![9]),
            &reported,
        );
        let ids: Vec<u64> = second.organizations.iter().map(|o| o.id.get()).collect();
        assert_eq!(ids, vec![2, 3]);
        assert!(second.deleted.is_empty());
    }

    #[test]
    fn duplicate_and_not_found_become_typed_errors() {
        let dup = ApiProblem::parse(
            System::Zendesk,
            422,
            br#"{"error":"RecordInvalid","description":"Record validation errors","details":{"name":[{"description":"Name: Acme has already been taken","error":"DuplicateValue"}]}}"#,
        );
        let verdict = crate::http::failure::classify(System::Zendesk, &dup, None);
        let e = typed_error("zd.org_create", verdict, Some(Box::new(dup)), 1);
        assert!(
            matches!(
                e,
                ZendeskError::DuplicateValue {
                    field: DuplicateField::Name,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(matches!(e.disposition(), Disposition::Review { .. }));
        let nf = ApiProblem::parse(
            System::Zendesk,
            404,
            br#"{"error":"RecordNotFound","description":"Not found"}"#,
        );
        let verdict = crate::http::failure::classify(System::Zendesk, &nf, None);
        assert!(matches!(
            typed_error("zd.org_show", verdict, Some(Box::new(nf)), 1),
            ZendeskError::RecordNotFound { .. }
        ));
        let other = ApiProblem::parse(
            System::Zendesk,
            404,
            br#"{"error":"InvalidEndpoint","description":"Not found"}"#,
        );
        let verdict = crate::http::failure::classify(System::Zendesk, &other, None);
        assert!(matches!(
            typed_error("zd.account", verdict, Some(Box::new(other)), 1),
            ZendeskError::Api { .. }
        ));
    }
}
