//! The Salesforce REST client: sign-in (client credentials or JWT bearer, cached, refreshed
//! once on `INVALID_SESSION_ID`), the org-id binding check, SOQL streams across pages, account
//! reads, link-field write-back through sObject Collections, and the daily API allocation.
//!
//! Every request goes through the shared executor (`crate::http`): rate budget, retry
//! discipline, failure classification and call counts are the same as Zendesk's.

pub mod access;
mod auth;
pub(crate) mod records;
pub mod soql;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{self, Stream, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use thiserror::Error;

use crate::contract::{AccountWrite, Binding, BindingMismatch, LinkField};
use crate::credentials::SalesforceCredentials;
use crate::http::failure::{ApiProblem, Disposition, Verdict, classify_salesforce_code};
use crate::http::transport::{Failure, Replay, Reply, Transport, http_client};
use crate::http::{BudgetRefusal, CallLog, CallSpec, DailyUsage, RateBudget, RetryPolicy, System};
use crate::ids::AccountId;
use crate::model::Account;
use auth::Token;
use soql::{Cond, Select, SoqlError};

/// The default REST API version: Spring '26 (reference: "early/mid 2026 ⇒ v66.0").
pub const DEFAULT_API_VERSION: &str = "v66.0";
/// sObject Collections take at most 200 records per call.
pub const COLLECTION_LIMIT: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceConfig {
    /// `vNN.0`, pinned so a Salesforce release cannot change what orglink reads.
    pub api_version: String,
    /// `Sforce-Query-Options: batchSize` (200–2,000; Salesforce may return fewer).
    pub batch_size: u32,
    /// Longest query URL orglink sends. The hard limit is 16,384 bytes for URI and headers
    /// together (414/431 beyond); 8,000 leaves room for headers.
    pub max_query_url_bytes: usize,
    /// The link fields installed in this org (reads skip the others).
    pub link_fields: Vec<LinkField>,
    pub retry: RetryPolicy,
    /// Per-request timeout, in seconds.
    pub timeout_secs: u64,
}

impl Default for SalesforceConfig {
    fn default() -> Self {
        SalesforceConfig {
            api_version: DEFAULT_API_VERSION.to_string(),
            batch_size: 2000,
            max_query_url_bytes: 8000,
            link_fields: LinkField::ALL.to_vec(),
            retry: RetryPolicy::default(),
            timeout_secs: 120,
        }
    }
}

/// What went wrong talking to Salesforce, and what the caller should do ([`Self::disposition`]).
#[derive(Debug, Error)]
pub enum SalesforceError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("signing in to Salesforce failed: {reason}")]
    SignIn { reason: String, verdict: Verdict },
    #[error(transparent)]
    WrongOrg(#[from] BindingMismatch),
    #[error(
        "Salesforce refused orglink's session again right after signing in; check the integration user and the app's session policy"
    )]
    SessionRefused,
    #[error(transparent)]
    Budget(#[from] BudgetRefusal),
    #[error("Salesforce {endpoint} failed after {attempts} attempt(s): {reason}")]
    Api {
        endpoint: &'static str,
        verdict: Verdict,
        reason: String,
        problem: Option<Box<ApiProblem>>,
        attempts: u32,
    },
    #[error("Salesforce sent an answer orglink cannot use ({endpoint}): {detail}")]
    Protocol {
        endpoint: &'static str,
        detail: String,
    },
    #[error(transparent)]
    Query(#[from] SoqlError),
}

impl SalesforceError {
    pub fn disposition(&self) -> Disposition {
        match self {
            SalesforceError::Config(r) => Disposition::Review { reason: r.clone() },
            SalesforceError::SignIn { verdict, .. } => verdict.disposition(),
            SalesforceError::WrongOrg(m) => Disposition::Review {
                reason: m.to_string(),
            },
            SalesforceError::SessionRefused => Verdict::Reauthenticate.disposition(),
            SalesforceError::Budget(BudgetRefusal::DailyReserve { .. }) => Disposition::Retry {
                after: Some(crate::http::failure::DAILY_LIMIT_BACKOFF),
            },
            SalesforceError::Budget(BudgetRefusal::Busy { retry_after, .. }) => {
                Disposition::Retry {
                    after: Some(*retry_after),
                }
            }
            SalesforceError::Api { verdict, .. } => verdict.disposition(),
            // A truncated or odd page is most likely transient; running again re-reads it.
            SalesforceError::Protocol { .. } => Disposition::Retry { after: None },
            SalesforceError::Query(e) => Disposition::GiveUp {
                reason: e.to_string(),
            },
        }
    }

    /// The API's error code, when the failure was an error answer.
    pub fn code(&self) -> Option<&str> {
        match self {
            SalesforceError::Api {
                problem: Some(p), ..
            } => p.code.as_deref(),
            _ => None,
        }
    }
}

/// One record's result in a link-field update.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriteOutcome {
    pub account: AccountId,
    /// `Ok`: written.
    pub result: Result<(), RecordError>,
}

/// Why Salesforce refused one record (`statusCode` in a Collections result).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordError {
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl RecordError {
    pub fn verdict(&self) -> Verdict {
        classify_salesforce_code(&self.code, &format!("{}: {}", self.code, self.message))
    }
    pub fn disposition(&self) -> Disposition {
        self.verdict().disposition()
    }
}

/// The query response page.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryPage {
    done: bool,
    next_records_url: Option<String>,
    #[serde(default)]
    records: Vec<Value>,
    #[serde(default)]
    total_size: u64,
}

/// A page of query results.
#[derive(Debug, Clone)]
pub struct RecordPage {
    pub records: Vec<Value>,
    pub total_size: u64,
}

struct Inner {
    transport: Transport,
    creds: SalesforceCredentials,
    config: SalesforceConfig,
    binding: Binding,
    token: tokio::sync::RwLock<Option<Arc<Token>>>,
    sign_in: tokio::sync::Mutex<()>,
    daily: Mutex<Option<DailyUsage>>,
}

/// A connected Salesforce client. Cheap to clone.
#[derive(Clone)]
pub struct SalesforceClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SalesforceClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceClient")
            .field("my_domain_url", &self.inner.creds.my_domain_url)
            .field("api_version", &self.inner.config.api_version)
            .finish_non_exhaustive()
    }
}

enum Next {
    Start { soql: String, all_rows: bool },
    More(String),
    Done,
}

impl SalesforceClient {
    /// Signs in and checks that the org is the one `binding` names; refuses to run otherwise.
    pub async fn connect(
        config: SalesforceConfig,
        creds: SalesforceCredentials,
        binding: &Binding,
        budget: Arc<dyn RateBudget>,
        calls: CallLog,
    ) -> Result<SalesforceClient, SalesforceError> {
        let version_ok = config
            .api_version
            .strip_prefix('v')
            .and_then(|v| v.strip_suffix(".0"))
            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| (20..=99).contains(&n)));
        if !version_ok {
            return Err(SalesforceError::Config(format!(
                "api_version {:?} is not a Salesforce API version like \"v66.0\"",
                config.api_version
            )));
        }
        let transport = Transport {
            system: System::Salesforce,
            http: http_client(Duration::from_secs(config.timeout_secs.max(1))),
            budget,
            retry: config.retry.clone(),
            calls,
        };
        let client = SalesforceClient {
            inner: Arc::new(Inner {
                transport,
                creds,
                config,
                binding: binding.clone(),
                token: tokio::sync::RwLock::new(None),
                sign_in: tokio::sync::Mutex::new(()),
                daily: Mutex::new(None),
            }),
        };
        client.sign_in(0).await?;
        Ok(client)
    }

    /// The org id Salesforce reported at sign-in.
    pub async fn org_id(&self) -> Option<String> {
        self.inner
            .token
            .read()
            .await
            .as_ref()
            .map(|t| t.org_id.clone())
    }

    /// The integration user's id, from the sign-in's identity URL.
    pub async fn user_id(&self) -> Option<String> {
        self.inner
            .token
            .read()
            .await
            .as_ref()
            .and_then(|t| t.user_id.clone())
    }

    /// The daily API allocation as the last response reported it.
    pub fn daily_usage(&self) -> Option<DailyUsage> {
        *self.inner.daily.lock().unwrap_or_else(|p| p.into_inner())
    }

    // -----------------------------------------------------------------------------------------
    // Sign-in

    /// Signs in unless someone already replaced the token of generation `seen` (single flight:
    /// concurrent 401s refresh once).
    async fn sign_in(&self, seen: u64) -> Result<Arc<Token>, SalesforceError> {
        let _guard = self.inner.sign_in.lock().await;
        if let Some(t) = self.inner.token.read().await.as_ref()
            && t.generation != seen
        {
            return Ok(t.clone());
        }
        let creds = &self.inner.creds;
        let form = auth::token_form(creds).map_err(|reason| SalesforceError::SignIn {
            verdict: Verdict::Permanent {
                reason: reason.clone(),
                review: true,
            },
            reason,
        })?;
        let url = format!(
            "{}/services/oauth2/token",
            creds.my_domain_url.trim_end_matches('/')
        );
        let http = self.inner.transport.http.clone();
        let build = || http.post(&url).form(&form);
        let spec = CallSpec {
            system: System::Salesforce,
            endpoint: "sf.token",
            record: None,
        };
        let reply = match self.inner.transport.send(spec, Replay::Safe, &build).await {
            Ok(r) => r,
            Err(Failure::Refused(r)) => return Err(r.into()),
            Err(Failure::Failed {
                verdict, problem, ..
            }) => {
                let (reason, verdict) = match (&problem, verdict) {
                    // 400/401 from the token endpoint: the credentials or the app's setup.
                    (Some(p), v) if !v.is_retryable() => {
                        let reason = format!(
                            "{}: {} — check the consumer key/secret or certificate, the app's client-credentials or JWT settings and its execution user",
                            p.code.as_deref().unwrap_or("refused"),
                            p.message
                        );
                        (
                            reason.clone(),
                            Verdict::Permanent {
                                reason,
                                review: true,
                            },
                        )
                    }
                    (_, v) => (
                        match &v {
                            Verdict::RetryLater { reason, .. } => reason.clone(),
                            _ => "the token endpoint failed".to_string(),
                        },
                        v,
                    ),
                };
                return Err(SalesforceError::SignIn { reason, verdict });
            }
        };
        let parsed: auth::TokenResponse =
            serde_json::from_slice(&reply.body).map_err(|_| SalesforceError::Protocol {
                endpoint: "sf.token",
                detail: "the token response lacks access_token, instance_url or id".into(),
            })?;
        let org_id =
            auth::org_id_from_identity_url(&parsed.id).ok_or(SalesforceError::Protocol {
                endpoint: "sf.token",
                detail: "the token response's id URL names no org id".into(),
            })?;
        // Only `config check` needs the user; a URL without one does not stop the sync.
        let user_id = auth::user_id_from_identity_url(&parsed.id);
        // The binding check: a token for another org (a full-copy sandbox) is never used.
        let binding = &self.inner.binding;
        binding.check(&org_id, binding.zendesk_subdomain().as_str())?;
        let instance_url = parsed.instance_url.trim_end_matches('/').to_string();
        if !(instance_url.starts_with("https://") || is_loopback(&instance_url)) {
            return Err(SalesforceError::Protocol {
                endpoint: "sf.token",
                detail: "instance_url is not an https URL".into(),
            });
        }
        let token = Arc::new(Token {
            access_token: crate::credentials::Secret::new(parsed.access_token),
            instance_url,
            org_id,
            user_id,
            generation: seen.max(self.current_generation().await) + 1,
        });
        tracing::info!(system = "salesforce", org_id = %token.org_id, generation = token.generation, "signed in");
        *self.inner.token.write().await = Some(token.clone());
        Ok(token)
    }

    async fn current_generation(&self) -> u64 {
        self.inner
            .token
            .read()
            .await
            .as_ref()
            .map_or(0, |t| t.generation)
    }

    async fn token(&self) -> Result<Arc<Token>, SalesforceError> {
        if let Some(t) = self.inner.token.read().await.as_ref() {
            return Ok(t.clone());
        }
        self.sign_in(0).await
    }

    /// Sends a request built by `build` (given the current token); on `INVALID_SESSION_ID`
    /// signs in again and retries once. A second refusal is [`SalesforceError::SessionRefused`],
    /// never a loop.
    async fn call(
        &self,
        endpoint: &'static str,
        replay: Replay,
        build: impl Fn(&reqwest::Client, &Token) -> reqwest::RequestBuilder + Send + Sync,
    ) -> Result<Reply, SalesforceError> {
        let spec = CallSpec {
            system: System::Salesforce,
            endpoint,
            record: None,
        };
        let http = &self.inner.transport.http;
        let mut token = self.token().await?;
        for refreshed in [false, true] {
            let t = token.clone();
            let b = || build(http, &t);
            match self.inner.transport.send(spec, replay, &b).await {
                Ok(reply) => {
                    if let Some(d) = reply.daily {
                        *self.inner.daily.lock().unwrap_or_else(|p| p.into_inner()) = Some(d);
                    }
                    return Ok(reply);
                }
                Err(Failure::Failed {
                    verdict: Verdict::Reauthenticate,
                    ..
                }) if !refreshed => {
                    tracing::info!(
                        system = "salesforce",
                        endpoint,
                        "session expired; signing in again"
                    );
                    token = self.sign_in(token.generation).await?;
                }
                Err(Failure::Failed {
                    verdict: Verdict::Reauthenticate,
                    ..
                }) => return Err(SalesforceError::SessionRefused),
                Err(Failure::Refused(r)) => return Err(r.into()),
                Err(Failure::Failed {
                    verdict,
                    problem,
                    attempts,
                }) => {
                    let reason = match &verdict {
                        Verdict::RetryLater { reason, .. } | Verdict::Permanent { reason, .. } => {
                            reason.clone()
                        }
                        Verdict::Reauthenticate => "session expired".into(),
                    };
                    return Err(SalesforceError::Api {
                        endpoint,
                        verdict,
                        reason,
                        problem,
                        attempts,
                    });
                }
            }
        }
        Err(SalesforceError::SessionRefused)
    }

    fn data_url(&self, token: &Token, path: &str) -> String {
        format!(
            "{}/services/data/{}/{path}",
            token.instance_url, self.inner.config.api_version
        )
    }

    // -----------------------------------------------------------------------------------------
    // Queries

    /// The records of `soql`, across every page (`nextRecordsUrl`), as a stream.
    pub fn query(
        &self,
        soql: impl Into<String>,
    ) -> impl Stream<Item = Result<Value, SalesforceError>> + Send + '_ {
        flatten(self.query_pages(soql.into(), false))
    }

    /// Like [`Self::query`] through `queryAll`: deleted (recycle-bin) and merged records too.
    pub fn query_all(
        &self,
        soql: impl Into<String>,
    ) -> impl Stream<Item = Result<Value, SalesforceError>> + Send + '_ {
        flatten(self.query_pages(soql.into(), true))
    }

    /// The pages of a query. `done=false` without `nextRecordsUrl` is an error, not the end.
    pub fn query_pages(
        &self,
        soql: String,
        all_rows: bool,
    ) -> impl Stream<Item = Result<RecordPage, SalesforceError>> + Send + '_ {
        stream::try_unfold(Next::Start { soql, all_rows }, move |next| async move {
            let (endpoint, reply) = match next {
                Next::Done => return Ok(None),
                Next::Start { soql, all_rows } => {
                    let (endpoint, path) = if all_rows {
                        ("sf.query_all", "queryAll")
                    } else {
                        ("sf.query", "query")
                    };
                    let reply = self
                        .call(endpoint, Replay::Safe, |http, t| {
                            self.authorized(http.get(self.data_url(t, path)), t)
                                .query(&[("q", soql.as_str())])
                                .header("Sforce-Query-Options", self.batch_option())
                        })
                        .await?;
                    (endpoint, reply)
                }
                Next::More(path) => {
                    let reply = self
                        .call("sf.query_more", Replay::Safe, |http, t| {
                            self.authorized(http.get(format!("{}{path}", t.instance_url)), t)
                                .header("Sforce-Query-Options", self.batch_option())
                        })
                        .await?;
                    ("sf.query_more", reply)
                }
            };
            let page: QueryPage =
                serde_json::from_slice(&reply.body).map_err(|e| SalesforceError::Protocol {
                    endpoint,
                    detail: format!("unreadable query page: {e}"),
                })?;
            let next = match (page.done, page.next_records_url) {
                (true, _) => Next::Done,
                (false, Some(url)) => {
                    Next::More(
                        relative_path(&url).ok_or_else(|| SalesforceError::Protocol {
                            endpoint,
                            detail: "nextRecordsUrl points outside the instance's data API".into(),
                        })?,
                    )
                }
                (false, None) => {
                    return Err(SalesforceError::Protocol {
                        endpoint,
                        detail: "done=false without nextRecordsUrl: the result would be silently truncated".into(),
                    });
                }
            };
            Ok(Some((
                RecordPage {
                    records: page.records,
                    total_size: page.total_size,
                },
                next,
            )))
        })
    }

    fn authorized(&self, rb: reqwest::RequestBuilder, t: &Token) -> reqwest::RequestBuilder {
        rb.bearer_auth(t.access_token.expose())
            .header("Accept", "application/json")
    }

    fn batch_option(&self) -> String {
        format!(
            "batchSize={}",
            self.inner.config.batch_size.clamp(200, 2000)
        )
    }

    // -----------------------------------------------------------------------------------------
    // Accounts

    /// Accounts with their opportunity facts, by id, read through `queryAll` so deleted and
    /// merged accounts come back marked as such. Ids go in chunks that keep each query URL
    /// under the configured length. Ids Salesforce does not know are absent from the result.
    pub async fn read_accounts(&self, ids: &[AccountId]) -> Result<Vec<Account>, SalesforceError> {
        let mut out = Vec::with_capacity(ids.len());
        let fields = records::account_fields(&self.inner.config.link_fields);
        for chunk in self.id_chunks(&fields, ids)? {
            let soql = Select::new("Account", fields.clone())
                .filter(Cond::in_list("Id", chunk.iter().map(|id| id.as_str())))
                .build()?;
            let records: Vec<Value> = self.query_all(soql).try_collect().await?;
            out.extend(self.with_opportunities(records).await?);
        }
        Ok(out)
    }

    /// One account, `None` when Salesforce does not know the id.
    pub async fn read_account(&self, id: &AccountId) -> Result<Option<Account>, SalesforceError> {
        Ok(self
            .read_accounts(std::slice::from_ref(id))
            .await?
            .into_iter()
            .next())
    }

    /// Accounts matching `filter` (every account when `None`), page by page, each page with
    /// its opportunity facts. `include_deleted` reads through `queryAll`.
    pub fn accounts(
        &self,
        filter: Option<Cond>,
        include_deleted: bool,
    ) -> impl Stream<Item = Result<Vec<Account>, SalesforceError>> + Send + '_ {
        let fields = records::account_fields(&self.inner.config.link_fields);
        let mut select = Select::new("Account", fields);
        if let Some(f) = filter {
            select = select.filter(f);
        }
        let soql = select.build();
        stream::once(async move { soql.map_err(SalesforceError::from) })
            .map_ok(move |soql| self.query_pages(soql, include_deleted))
            .try_flatten()
            .and_then(move |page| async move { self.with_opportunities(page.records).await })
    }

    /// Like [`Self::accounts`], in `Id` order and only ids after `after`: a long stream can stop
    /// and resume (`Id > last seen`) in another process without a query locator.
    pub fn accounts_after(
        &self,
        after: Option<&AccountId>,
        filter: Option<Cond>,
        include_deleted: bool,
    ) -> impl Stream<Item = Result<Vec<Account>, SalesforceError>> + Send + '_ {
        let fields = records::account_fields(&self.inner.config.link_fields);
        let conds: Vec<Cond> = after
            .map(|a| Cond::cmp("Id", soql::Op::Gt, a.as_str()))
            .into_iter()
            .chain(filter)
            .collect();
        let mut select = Select::new("Account", fields).order_by("Id", false);
        if !conds.is_empty() {
            select = select.filter(Cond::and(conds));
        }
        let soql = select.build();
        stream::once(async move { soql.map_err(SalesforceError::from) })
            .map_ok(move |soql| self.query_pages(soql, include_deleted))
            .try_flatten()
            .and_then(move |page| async move { self.with_opportunities(page.records).await })
    }

    /// The account and the ids of the accounts Salesforce merged into it, in one `queryAll`
    /// (merge losers are deleted records). `None` when Salesforce does not know the account.
    pub async fn account_with_merged(
        &self,
        id: &AccountId,
    ) -> Result<Option<(Account, Vec<AccountId>)>, SalesforceError> {
        let filter = Cond::or([
            Cond::eq("Id", id.as_str()),
            Cond::eq("MasterRecordId", id.as_str()),
        ]);
        let pages: Vec<Vec<Account>> = self.accounts(Some(filter), true).try_collect().await?;
        let mut account = None;
        let mut merged = Vec::new();
        for a in pages.into_iter().flatten() {
            if &a.id == id {
                account = Some(a);
            } else if a.master_record_id.as_ref() == Some(id) {
                merged.push(a.id);
            }
        }
        merged.sort();
        merged.dedup();
        Ok(account.map(|a| (a, merged)))
    }

    /// A live account other than `except` whose `Zendesk_Org_ID__c` names `org`: one
    /// `query` (deleted and merged-away accounts link nothing). None, without a call, when the
    /// field is not installed. The field is Text, so the id is compared as orglink writes it
    /// (plain digits).
    pub async fn account_naming_org(
        &self,
        org: crate::ids::OrgId,
        except: &AccountId,
    ) -> Result<Option<AccountId>, SalesforceError> {
        let field = LinkField::ZendeskOrgId.api_name();
        if !self
            .inner
            .config
            .link_fields
            .contains(&LinkField::ZendeskOrgId)
        {
            return Ok(None);
        }
        let soql = Select::new("Account", ["Id"])
            .filter(Cond::and([
                Cond::cmp(field, soql::Op::Eq, org.to_string()),
                Cond::cmp("Id", soql::Op::Ne, except.as_str()),
            ]))
            .build()?;
        let records: Vec<Value> = self.query(soql).try_collect().await?;
        Ok(records
            .iter()
            .find_map(|r| AccountId::parse(r.get("Id")?.as_str()?).ok()))
    }

    async fn with_opportunities(
        &self,
        account_records: Vec<Value>,
    ) -> Result<Vec<Account>, SalesforceError> {
        let ids: Vec<AccountId> = account_records
            .iter()
            .filter_map(|r| r.get("Id").and_then(Value::as_str))
            .filter_map(|s| AccountId::parse(s).ok())
            .collect();
        let mut opps = Vec::new();
        if !ids.is_empty() {
            let fields: Vec<String> = records::OPPORTUNITY_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect();
            for chunk in self.id_chunks(&fields, &ids)? {
                let soql = Select::new("Opportunity", fields.clone())
                    .filter(Cond::and([
                        Cond::in_list("AccountId", chunk.iter().map(|id| id.as_str())),
                        Cond::or([Cond::eq("IsWon", true), Cond::eq("IsClosed", false)]),
                    ]))
                    .build()?;
                let page: Vec<Value> = self.query(soql).try_collect().await?;
                opps.extend(page);
            }
        }
        let grouped = records::group_opportunities(&opps);
        account_records
            .iter()
            .map(|r| {
                let id = r
                    .get("Id")
                    .and_then(Value::as_str)
                    .and_then(|s| AccountId::parse(s).ok());
                records::account_from_record(r, id.as_ref().and_then(|id| grouped.get(id))).map_err(
                    |detail| SalesforceError::Protocol {
                        endpoint: "sf.query",
                        detail,
                    },
                )
            })
            .collect()
    }

    /// Splits `ids` so that a query selecting `fields` with `Id IN (...)` stays under the URL
    /// limit once URL-encoded.
    fn id_chunks<'a>(
        &self,
        fields: &[String],
        ids: &'a [AccountId],
    ) -> Result<Vec<&'a [AccountId]>, SalesforceError> {
        // Fixed part: instance URL (up to ~100 bytes), path and the encoded SELECT/FROM/WHERE
        // text (fields are plain ASCII, commas and spaces encode to 3 bytes).
        let fixed = 200 + fields.iter().map(|f| f.len() + 6).sum::<usize>() + 120;
        // Per id: '...' plus ", " → 18 + 2 quotes (3 bytes each encoded) + separator (6).
        let per_id = 18 + 6 + 6;
        let room = self.inner.config.max_query_url_bytes.saturating_sub(fixed);
        let n = room / per_id;
        if n == 0 {
            return Err(SalesforceError::Config(format!(
                "max_query_url_bytes {} leaves no room for a single id",
                self.inner.config.max_query_url_bytes
            )));
        }
        Ok(ids.chunks(n).collect())
    }

    // -----------------------------------------------------------------------------------------
    // Write-back

    /// Writes link fields, up to 200 accounts per sObject Collections call (`allOrNone=false`),
    /// with one outcome per account in input order. Records refused with `UNABLE_TO_LOCK_ROW`
    /// are sent again (only those) per the retry policy; other refusals are final.
    pub async fn update_links(
        &self,
        writes: &[(AccountId, AccountWrite)],
    ) -> Result<Vec<WriteOutcome>, SalesforceError> {
        let mut outcomes: Vec<Option<WriteOutcome>> = vec![None; writes.len()];
        let mut pending: Vec<usize> = (0..writes.len()).collect();
        let policy = &self.inner.config.retry;
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let mut locked = Vec::new();
            for chunk in pending.chunks(COLLECTION_LIMIT) {
                let results = self.update_chunk(chunk.iter().map(|&i| &writes[i])).await?;
                for (&i, result) in chunk.iter().zip(results) {
                    let retry_lock = matches!(&result, Err(e) if e.code == "UNABLE_TO_LOCK_ROW");
                    if retry_lock && attempt < policy.max_attempts {
                        locked.push(i);
                    }
                    outcomes[i] = Some(WriteOutcome {
                        account: writes[i].0.clone(),
                        result,
                    });
                }
            }
            if !locked.is_empty() {
                let delay = policy.backoff(attempt);
                tracing::info!(
                    system = "salesforce",
                    records = locked.len(),
                    attempt,
                    delay_ms = delay.as_millis() as u64,
                    "records locked; writing them again"
                );
                tokio::time::sleep(delay).await;
            }
            pending = locked;
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every write has an outcome"))
            .collect())
    }

    async fn update_chunk<'a>(
        &self,
        chunk: impl Iterator<Item = &'a (AccountId, AccountWrite)>,
    ) -> Result<Vec<Result<(), RecordError>>, SalesforceError> {
        let records: Vec<Value> = chunk
            .map(|(id, write)| {
                let mut body = write.body();
                body["attributes"] = json!({"type": "Account"});
                body["id"] = json!(id.as_str());
                body
            })
            .collect();
        let n = records.len();
        let body = json!({"allOrNone": false, "records": records});
        // PATCH of absolute values: sending it twice writes the same values.
        let reply = self
            .call("sf.composite", Replay::Safe, |http, t| {
                self.authorized(http.patch(self.data_url(t, "composite/sobjects")), t)
                    .json(&body)
            })
            .await?;
        let results: Vec<Value> =
            serde_json::from_slice(&reply.body).map_err(|e| SalesforceError::Protocol {
                endpoint: "sf.composite",
                detail: format!("unreadable collection result: {e}"),
            })?;
        if results.len() != n {
            return Err(SalesforceError::Protocol {
                endpoint: "sf.composite",
                detail: format!("{} results for {n} records", results.len()),
            });
        }
        // Results come in request order; failed entries may omit `id`.
        Ok(results.iter().map(record_result).collect())
    }

    /// `GET /limits`: the daily allocation as Salesforce counts it now.
    pub async fn limits(&self) -> Result<DailyUsage, SalesforceError> {
        let reply = self
            .call("sf.limits", Replay::Safe, |http, t| {
                self.authorized(http.get(self.data_url(t, "limits")), t)
            })
            .await?;
        let v: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        let d = &v["DailyApiRequests"];
        match (d["Max"].as_u64(), d["Remaining"].as_u64()) {
            (Some(max), Some(remaining)) => Ok(DailyUsage {
                used: max.saturating_sub(remaining),
                limit: max,
            }),
            _ => Err(SalesforceError::Protocol {
                endpoint: "sf.limits",
                detail: "no DailyApiRequests in /limits".into(),
            }),
        }
    }
}

fn record_result(v: &Value) -> Result<(), RecordError> {
    if v.get("success").and_then(Value::as_bool) == Some(true) {
        return Ok(());
    }
    let first = v
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|e| e.first());
    let text = |k: &str| {
        first
            .and_then(|e| e.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    // Per-record errors use `statusCode`; accept `errorCode` too.
    let code = Some(text("statusCode"))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| text("errorCode"));
    let message = text("message");
    let fields = first
        .and_then(|e| e.get("fields"))
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Err(RecordError {
        code,
        message,
        fields,
    })
}

/// The path of a `nextRecordsUrl` (relative to the instance URL). An absolute URL is reduced to
/// its path: the token is only ever sent to the instance URL.
fn relative_path(url: &str) -> Option<String> {
    let path = if url.starts_with('/') {
        url.to_string()
    } else {
        let rest = url.split_once("://")?.1;
        format!("/{}", rest.split_once('/')?.1)
    };
    path.starts_with("/services/data/").then_some(path)
}

fn is_loopback(url: &str) -> bool {
    url.starts_with("http://127.0.0.1")
        || url.starts_with("http://localhost")
        || url.starts_with("http://[::1]")
}

fn flatten<'a>(
    pages: impl Stream<Item = Result<RecordPage, SalesforceError>> + Send + 'a,
) -> impl Stream<Item = Result<Value, SalesforceError>> + Send + 'a {
    pages
        .map_ok(|p| stream::iter(p.records.into_iter().map(Ok)))
        .try_flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_records_url_is_kept_on_the_instance() {
        assert_eq!(
            relative_path("/services/data/v66.0/query/01gRO0000016PIAYA2-500").as_deref(),
            Some("/services/data/v66.0/query/01gRO0000016PIAYA2-500")
        );
        assert_eq!(
            relative_path("https://acme.my.salesforce.com/services/data/v66.0/query/01g-2000")
                .as_deref(),
            Some("/services/data/v66.0/query/01g-2000")
        );
        assert_eq!(relative_path("https://evil.example/steal"), None);
    }

    #[test]
    fn collection_results_are_read_per_record() {
        let ok = record_result(&json!({"id": "001", "success": true, "errors": []}));
        assert_eq!(ok, Ok(()));
        let rule = record_result(&json!({"success": false, "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Website required", "fields": []}]}))
            .unwrap_err();
        assert!(matches!(rule.disposition(), Disposition::Review { .. }));
        let lock = record_result(&json!({"id": "001", "success": false, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}]}))
            .unwrap_err();
        assert_eq!(lock.disposition(), Disposition::Retry { after: None });
    }
}
