//! The sync worker: turns queued account events into linked organizations.
//!
//! - [`batch`]: the Lambda handler for an SQS batch with partial-batch failure reporting (a
//!   failed message fails the later messages of its group; a poison message fails alone).
//! - [`sync`]: one message end to end — idempotency, coalescing, a fresh read of the account,
//!   candidates, resolution, claim, the Zendesk write, the write-back, the link record — and
//!   what a failure means (retry later, or an exception).
//! - [`runner`]: the local stand-in for Lambda's SQS event source mapping, around the same
//!   handler, with several workers at once and a crash hook.
//! - [`aws`]: the production wiring (DynamoDB, SQS, Secrets Manager, the shared rate budget).
//! - [`metrics`]: the `RateBudgetExhausted` metric (EMF) the template's alarm watches.
//!
//! Design and the retry policy: `docs/worker.md`.

pub mod aws;
pub mod batch;
pub mod logging;
pub mod metrics;
pub mod outcome;
pub mod runner;
pub mod settings;
pub mod sync;

use std::sync::Arc;

use tokio::sync::Mutex;

use orglink_shared::aws::claims::MemoryClaims;
use orglink_shared::aws::exceptions::MemoryExceptions;
use orglink_shared::aws::idempotency::MemoryIdempotency;
use orglink_shared::aws::links::MemoryLinks;
use orglink_shared::aws::lists::MemoryLists;
use orglink_shared::aws::mirror::MemoryMirror;
use orglink_shared::aws::queue::MemoryQueue;
use orglink_shared::aws::{
    ClaimStore, ExceptionStore, IdempotencyStore, LinkStore, OperatorLists, OrgMirror, ReviewLists,
    WorkQueue,
};
use orglink_shared::contract::Config;
use orglink_shared::domain::DomainPolicy;
use orglink_shared::ids::AccountId;
use orglink_shared::salesforce::SalesforceClient;
use orglink_shared::zendesk::ZendeskClient;

pub use outcome::{Action, Outcome};
pub use settings::WorkerSettings;

/// The name idempotency keys are scoped by (Powertools uses the function name).
pub const FUNCTION_NAME: &str = "orglink-sync-worker";

/// The state and messaging edges the worker uses, as one bundle of types.
pub trait Ports: Send + Sync + 'static {
    type Idempotency: IdempotencyStore + 'static;
    type Links: LinkStore + 'static;
    type Claims: ClaimStore + 'static;
    type Mirror: OrgMirror + 'static;
    type Exceptions: ExceptionStore + 'static;
    type Queue: WorkQueue + 'static;
    type Lists: ReviewLists + 'static;
}

/// The in-memory twins (unit tests).
pub struct MemoryPorts;

impl Ports for MemoryPorts {
    type Idempotency = MemoryIdempotency;
    type Links = MemoryLinks;
    type Claims = MemoryClaims;
    type Mirror = MemoryMirror;
    type Exceptions = MemoryExceptions;
    type Queue = MemoryQueue;
    type Lists = MemoryLists;
}

/// The stores themselves.
pub struct Stores<P: Ports> {
    pub idempotency: P::Idempotency,
    pub links: P::Links,
    pub claims: P::Claims,
    pub mirror: P::Mirror,
    pub exceptions: P::Exceptions,
    /// The sync queue: visibility changes for backoff, and fresh copies of long-retried messages.
    pub queue: P::Queue,
    /// The operator's lists (shared domains, ignored accounts) in the exception table.
    pub lists: P::Lists,
}

/// Where a test can make the worker "crash" (fault injection; never set in production).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Zendesk was written (created or updated); Salesforce not yet.
    AfterZendeskWrite,
}

/// Returns `true` to crash at that point for that account.
pub type CrashHook = Arc<dyn Fn(CrashPoint, &AccountId) -> bool + Send + Sync>;

/// One worker: configuration, clients and stores, built once per cold start.
pub struct Worker<P: Ports> {
    pub config: Config,
    pub policy: DomainPolicy,
    pub settings: WorkerSettings,
    pub salesforce: SalesforceClient,
    pub zendesk: ZendeskClient,
    pub stores: Stores<P>,
    pub crash_hook: Option<CrashHook>,
    /// Where the `RateBudgetExhausted` metric goes, and the count of refused calls.
    pub metrics: metrics::Metrics,
    /// The operator's lists as last read, with when (epoch ms).
    lists_cache: Mutex<Option<(i64, Arc<OperatorLists>)>>,
    /// When the org mirror's completeness marker was last seen (epoch ms); absence is never
    /// cached, so the first message after a full listing sees it.
    mirror_filled_seen: Mutex<Option<i64>>,
}

impl<P: Ports> Worker<P> {
    pub fn new(
        config: Config,
        settings: WorkerSettings,
        salesforce: SalesforceClient,
        zendesk: ZendeskClient,
        stores: Stores<P>,
    ) -> Self {
        Worker {
            config,
            policy: DomainPolicy::default(),
            settings,
            salesforce,
            zendesk,
            stores,
            crash_hook: None,
            metrics: metrics::Metrics::default(),
            lists_cache: Mutex::new(None),
            mirror_filled_seen: Mutex::new(None),
        }
    }

    /// Metrics whose counter the clients' budget was wrapped with ([`metrics::Metrics::counting`]).
    pub fn with_metrics(mut self, metrics: metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn with_crash_hook(mut self, hook: CrashHook) -> Self {
        self.crash_hook = Some(hook);
        self
    }

    /// The operator's lists, read again once `lists_refresh_secs` old: a review decision
    /// takes effect within that time, at two reads per refresh rather than per message.
    pub async fn operator_lists(
        &self,
        now_ms: i64,
    ) -> Result<Arc<OperatorLists>, orglink_shared::aws::StoreError> {
        let mut cache = self.lists_cache.lock().await;
        let fresh_ms = (self.settings.lists_refresh_secs as i64).saturating_mul(1000);
        if let Some((at, lists)) = cache.as_ref()
            && now_ms - at < fresh_ms
        {
            return Ok(lists.clone());
        }
        let lists = Arc::new(self.stores.lists.load().await?);
        *cache = Some((now_ms, lists.clone()));
        Ok(lists)
    }

    /// Whether a full listing of Zendesk's organizations has been read into the mirror (its
    /// completeness marker), so that no mirror row for a domain means no organization carries
    /// it. A marker seen is trusted for `lists_refresh_secs` (a table restored empty loses
    /// it); its absence is read again every time.
    pub async fn mirror_filled(
        &self,
        now_ms: i64,
    ) -> Result<bool, orglink_shared::aws::StoreError> {
        let mut seen = self.mirror_filled_seen.lock().await;
        let fresh_ms = (self.settings.lists_refresh_secs as i64).saturating_mul(1000);
        if let Some(at) = *seen
            && now_ms - at < fresh_ms
        {
            return Ok(true);
        }
        let filled = self.stores.mirror.filled().await?.is_some();
        *seen = filled.then_some(now_ms);
        Ok(filled)
    }
}
