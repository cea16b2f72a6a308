//! One reconcile run, across as many invocations as it needs.
//!
//! Between invocations only a small checkpoint travels (the run record's cursor: cursors and
//! counters, a few hundred bytes whatever the world's size); every phase persists as it goes
//! into the stores that exist anyway:
//!
//! 1. **Organizations.** A full run lists every organization by cursor, writes the ones that
//!    changed into the mirror and stamps every listed one with the run id
//!    (`OrgMirror::stamp_listed`); after the last page, what the mirror holds unstamped by
//!    this run (and unchanged since the run began) is gone from Zendesk and removed, and the
//!    mirror is marked filled (the worker creates nothing by domain before that marker
//!    exists). A delta reads the incremental export since the last run; when the export
//!    stalls (a full page of one second: `ZendeskError::ExportStalled`) the delta lists every
//!    organization instead, as a full run does, and otherwise stays a delta. Progress: the
//!    listing cursor (or the export's `end_time`).
//! 2. **Tickets.** The incremental ticket export (cursor-based, requesters sideloaded): a full
//!    run from the configured horizon (`ticket_horizon_days` before it started), a delta from
//!    where the last run left the export. Each ticket's organization is checked against its
//!    requester's memberships; each misattributed one becomes a small run item
//!    (`RunStore::put_item`), the rest is counted and dropped. Progress: the export's cursor
//!    and the number of items kept.
//! 3. **Accounts.** The diff's compact organization index is rebuilt from the mirror (a scan:
//!    no API calls), the misattributed tickets are read back, then the accounts stream in `Id`
//!    order through `queryAll` (deleted and merged ones included) to the end, in one
//!    invocation: the diff must see every account to decide orphans, merges and duplicates.
//!    An invocation that must hand over before the end discards what it read and the next one
//!    starts the stream again (Salesforce query pages are cheap against the daily budget);
//!    after `account_attempts` starts the run stops, saying so. The invocation that reaches the
//!    end upserts the rows, auto-resolves (complete full runs only), enqueues repairs and
//!    writes the summary.
//!
//! One run at a time: a run takes the runs table's `reconcile` lease when it starts (a run
//! that finds another holding it ends at once, saying so), renews it whenever it saves
//! progress and before it removes mirror rows or resolves anything, and releases it when it
//! ends. Two runs listing at once would each take the other's stamps for organizations gone.
//! A lease not renewed for `lease_stale_secs` is taken over; its old holder, if it ever
//! resumes, finds it cannot renew and stops, removing nothing.
//!
//! Before the Lambda deadline (or a page limit, in tests) an invocation commits its progress
//! and answers [`Step::Continue`]: the caller starts a new invocation with that event (the
//! Lambda main invokes itself asynchronously; the local runner loops). A budget refusal stops
//! the run cleanly: its summary says why and nothing is auto-resolved.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;

use orglink_shared::aws::exceptions::ORGLINK;
use orglink_shared::aws::{
    ExceptionFilter, ExceptionStatus, ExceptionStore, LeaseTake, LinkStore, OrgMirror, RunStatus,
    RunStore, StoreError, WorkQueue,
    mirror::{MirroredOrg, UpsertOutcome},
};
use orglink_shared::contract::{Config, EventKind};
use orglink_shared::domain::DomainPolicy;
use orglink_shared::exceptions::{ExceptionKind, Finding, Fingerprint, ReportLine, Severity};
use orglink_shared::http::{BudgetRefusal, CallLog, System};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::model::{Account, Organization};
use orglink_shared::reconcile::{
    AccountFacts, DiffBuilder, DiffConfig, Repair, RepairReason, TicketFacts, horizon_start,
    latest_copies,
};
use orglink_shared::salesforce::soql::{Cond, Lit, Op};
use orglink_shared::salesforce::{SalesforceClient, SalesforceError};
use orglink_shared::sync_request::{RequestSource, SyncRequest};
use orglink_shared::zendesk::{TicketExportFrom, ZendeskClient, ZendeskError};

use crate::event::{Mode, ReconcileEvent};
use crate::facts::written_domain;
use crate::review::ReviewLists;
use crate::settings::ReconcileSettings;
use crate::summary::{
    AccountCounts, MetricsConfig, OrgCounts, RepairCounts, RowCounts, RunState, RunSummary,
    StopReason, TicketCounts,
};

/// Who the mirror's completeness marker names after a full refresh.
pub const MIRROR_FILLED_BY: &str = "reconcile";

/// The mirror checkpoint holding where the next delta's incremental export starts (Unix s).
pub const INCREMENTAL_CHECKPOINT: &str = "reconcile-incremental-export";

/// The mirror checkpoint holding the ticket export's cursor where the last run left it.
pub const TICKET_CHECKPOINT: &str = "reconcile-ticket-export";

/// The run store's lease every reconcile run holds while it acts (one run at a time).
pub const RUN_LEASE: &str = "reconcile";

/// The state and messaging edges reconcile uses, as one bundle of types.
pub trait Ports: Send + Sync + 'static {
    type Mirror: OrgMirror + 'static;
    type Exceptions: ExceptionStore + 'static;
    type Runs: RunStore + 'static;
    type Queue: WorkQueue + 'static;
    type Links: LinkStore + 'static;
    type Lists: ReviewLists + 'static;
}

pub struct Stores<P: Ports> {
    pub mirror: P::Mirror,
    pub exceptions: P::Exceptions,
    pub runs: P::Runs,
    /// The sync queue: repairs go through the worker like every other change.
    pub queue: P::Queue,
    pub links: P::Links,
    pub lists: P::Lists,
}

/// When an invocation must hand over to the next one.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    /// The Lambda deadline.
    pub deadline: Option<Instant>,
    /// Hand over when less than this is left before the deadline.
    pub reserve: Duration,
    /// Hand over after this many API pages (listing, export or account pages) in one
    /// invocation: the deterministic stand-in for a short deadline, for tests and benchmarks.
    pub max_pages: Option<u32>,
}

impl Limits {
    /// No limit: the run finishes in one invocation.
    pub fn none() -> Self {
        Limits::default()
    }

    pub fn deadline(deadline: Instant, reserve: Duration) -> Self {
        Limits {
            deadline: Some(deadline),
            reserve,
            max_pages: None,
        }
    }

    pub fn pages(max_pages: u32) -> Self {
        Limits {
            max_pages: Some(max_pages.max(1)),
            ..Limits::default()
        }
    }

    /// Whether to hand over after `pages` pages in this invocation. Never before the first
    /// page: every invocation makes progress, whatever the deadline.
    fn must_yield(&self, pages: u32) -> bool {
        pages > 0 && self.must_yield_now(pages)
    }

    fn must_yield_now(&self, pages: u32) -> bool {
        self.max_pages.is_some_and(|m| pages >= m)
            || self
                .deadline
                .is_some_and(|d| d.saturating_duration_since(Instant::now()) < self.reserve)
    }
}

/// What an invocation came to.
#[derive(Debug)]
pub enum Step {
    /// Progress is saved; invoke again with this event.
    Continue(ReconcileEvent),
    /// The run is over (complete or stopped).
    Finished(Box<RunOutcome>),
}

/// A finished run: its summary, every report line, and the EMF metric lines to print.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub summary: RunSummary,
    pub report: Vec<ReportLine>,
    /// Empty when the run had finished before this invocation (a re-delivered event).
    pub metrics: Vec<String>,
    /// A run to start now: a full run that was refused while this one held the lease and
    /// waits behind it (the Lambda invokes it asynchronously, as a continuation).
    pub then: Option<ReconcileEvent>,
}

/// Why an invocation failed. A failed invocation is retried (Lambda retries an asynchronous
/// invocation once; a continuation resumes from the last saved progress).
#[derive(Debug, Error)]
pub enum RunError {
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error(transparent)]
    Zendesk(#[from] ZendeskError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("run {0} is unknown or expired; start a new run with {{\"mode\": \"full\"}}")]
    UnknownRun(String),
    #[error("run {run_id} cannot be resumed ({detail}); start a new run")]
    BadCheckpoint { run_id: String, detail: String },
    #[error("a run named {0} exists already; wait a millisecond and start again")]
    RunExists(String),
    /// Handled inside [`Reconciler::invoke`]: the run stops.
    #[error("run {run_id} no longer holds the reconcile lease (now held by {holder})")]
    LeaseLost { run_id: String, holder: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    #[default]
    Orgs,
    Tickets,
    Accounts,
}

/// The checkpoint's shape; a run saved under another one cannot be resumed.
const CHECKPOINT_VERSION: u32 = 2;

/// The run items holding the misattributed tickets.
const TICKET_ITEMS: &str = "ticket";

/// What a continuation needs: cursors and counters, never data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Checkpoint {
    #[serde(default)]
    version: u32,
    phase: Phase,
    /// Full: the listing's cursor after the last page taken in.
    org_cursor: Option<String>,
    /// Delta: where the incremental export continues (Unix seconds).
    export_from_s: Option<i64>,
    /// Delta: accounts changed after this instant (epoch ms).
    accounts_since_ms: Option<i64>,
    /// The ticket export's cursor after the last page taken in.
    #[serde(default)]
    ticket_cursor: Option<String>,
    /// Misattributed tickets kept so far: run items `ticket` `0..tickets_kept`.
    #[serde(default)]
    tickets_kept: u32,
    #[serde(default)]
    tickets: TicketCounts,
    invocations: u32,
    /// Invocations that began the last step (a retried last step skips rows already seen).
    finish_attempts: u32,
    orgs: OrgCounts,
    accounts: AccountCounts,
    /// API calls of the earlier invocations, by `system/endpoint`.
    calls: BTreeMap<String, u64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Calls sent (refusals by the budget are not calls), by `system/endpoint`.
fn sent_calls(log: &CallLog) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (k, n) in log.snapshot() {
        if k.outcome != "refused" {
            *out.entry(format!("{}/{}", k.system.as_str(), k.endpoint))
                .or_default() += n;
        }
    }
    out
}

/// Salesforce calls sent so far by this process.
fn salesforce_calls(log: &CallLog) -> u64 {
    sent_calls(log)
        .iter()
        .filter(|(k, _)| k.starts_with("salesforce/"))
        .map(|(_, n)| n)
        .sum()
}

/// The stop a budget refusal means, if the error is one.
fn budget_stop(err: &RunError) -> Option<StopReason> {
    let (system, refusal): (System, &BudgetRefusal) = match err {
        RunError::Salesforce(SalesforceError::Budget(r)) => (System::Salesforce, r),
        RunError::Zendesk(ZendeskError::Budget(r)) => (System::Zendesk, r),
        _ => return None,
    };
    let detail = refusal.to_string();
    Some(match (system, refusal) {
        (_, BudgetRefusal::DailyReserve { .. }) | (System::Salesforce, _) => {
            StopReason::SalesforceReserve { detail }
        }
        _ => StopReason::ZendeskShare { detail },
    })
}

/// Kinds the diff can report. The others (`write_back_blocked`, `sync_failing`) come from the
/// worker, so a reconcile run never auto-resolves them. `mirror_not_filled` also comes from
/// the worker, but it waits for exactly what a complete full run does (fill the mirror and
/// queue the account's repair), so such a run resolves it.
fn diff_kinds() -> BTreeSet<ExceptionKind> {
    ExceptionKind::ALL
        .into_iter()
        .filter(|k| {
            !matches!(
                k,
                ExceptionKind::WriteBackBlocked | ExceptionKind::SyncFailing
            )
        })
        .collect()
}

/// Repairs that only bring a linked org's mirrored fields up to date (held to a batch a run).
fn mirror_only(repair: &Repair) -> bool {
    repair
        .reasons
        .iter()
        .all(|r| matches!(r, RepairReason::RenameOrg | RepairReason::AddDomain))
}

fn reason_name(r: &RepairReason) -> String {
    serde_json::to_value(r)
        .ok()
        .and_then(|v| v.get("reason").and_then(|s| s.as_str()).map(str::to_string))
        .unwrap_or_else(|| format!("{r:?}"))
}

/// The reconciler: configuration, clients and stores, built once per cold start.
pub struct Reconciler<P: Ports> {
    pub config: Config,
    pub policy: DomainPolicy,
    pub settings: ReconcileSettings,
    pub metrics: MetricsConfig,
    pub salesforce: SalesforceClient,
    pub zendesk: ZendeskClient,
    /// Counts every Salesforce and Zendesk call (the same log the clients were built with).
    pub calls: CallLog,
    pub stores: Stores<P>,
}

enum Opened {
    Run {
        run_id: String,
        started_at_ms: i64,
        checkpoint: Box<Checkpoint>,
    },
    AlreadyOver(Box<RunOutcome>),
    /// Another run holds the lease: this one was recorded and ends at once.
    Refused {
        run_id: String,
        started_at_ms: i64,
        holder: String,
    },
}

impl<P: Ports> Reconciler<P> {
    /// Runs one invocation of `event`.
    pub async fn invoke(&self, event: &ReconcileEvent, limits: &Limits) -> Result<Step, RunError> {
        self.invoke_run(event, limits, &mut None).await
    }

    /// [`Self::invoke`], naming in `started` the run it opened (once it holds the lease).
    async fn invoke_run(
        &self,
        event: &ReconcileEvent,
        limits: &Limits,
        started: &mut Option<String>,
    ) -> Result<Step, RunError> {
        let calls_before = sent_calls(&self.calls);
        let (run_id, started_at_ms, mut cp, refused_by) = match self.open(event).await? {
            Opened::AlreadyOver(outcome) => return Ok(Step::Finished(outcome)),
            Opened::Refused {
                run_id,
                started_at_ms,
                holder,
            } => {
                let cp = Checkpoint {
                    version: CHECKPOINT_VERSION,
                    invocations: 1,
                    ..Checkpoint::default()
                };
                (run_id, started_at_ms, cp, Some(holder))
            }
            Opened::Run {
                run_id,
                started_at_ms,
                checkpoint,
            } => (run_id, started_at_ms, *checkpoint, None),
        };
        let mut ctx = Ctx {
            run_id: &run_id,
            mode: event.mode,
            started_at_ms,
            limits,
            pages: 0,
            calls_before,
        };
        if let Some(holder) = refused_by {
            // A full run is not skipped: the holder starts it when it ends. A delta is (the
            // next one comes within the hour).
            let queued = event.mode == Mode::Full
                && self
                    .stores
                    .runs
                    .wait_behind(RUN_LEASE, &holder, Mode::Full.as_str())
                    .await?;
            let detail = if queued {
                format!(
                    "another run {holder} is in progress; this one did not start, and a full run starts when it ends"
                )
            } else {
                format!("another run {holder} is in progress; this one did not start")
            };
            tracing::warn!(run_id = %run_id, holder = %holder, "{detail}");
            let stop = StopReason::AnotherRunInProgress {
                run_id: holder,
                detail,
            };
            let outcome = self.stopped(&ctx, &cp, stop).await?;
            return Ok(Step::Finished(Box::new(outcome)));
        }
        *started = Some(run_id.clone());
        match self.advance(&mut ctx, &mut cp).await {
            Ok(step) => Ok(step),
            Err(RunError::LeaseLost { holder, .. }) => {
                let detail = format!(
                    "run {holder} took the reconcile lease over while this run was away (it had not renewed it for lease_stale_secs); this run stopped where it was and removed nothing"
                );
                tracing::warn!(run_id = %run_id, %detail, "reconcile stopped");
                let outcome = self
                    .stopped(&ctx, &cp, StopReason::LeaseLost { detail })
                    .await?;
                Ok(Step::Finished(Box::new(outcome)))
            }
            Err(err) => match budget_stop(&err) {
                Some(stop) => {
                    tracing::warn!(run_id = %run_id, error = %err, "reconcile stopped by the rate budget");
                    let outcome = self.stopped(&ctx, &cp, stop).await?;
                    Ok(Step::Finished(Box::new(outcome)))
                }
                None => {
                    // Keep what this invocation spent, so the summary counts it after a retry.
                    cp.calls = ctx.calls_total(&self.calls, &cp);
                    let _ = self.save(&run_id, &cp).await;
                    Err(err)
                }
            },
        }
    }

    /// Runs `event` to the end, one invocation after another, in this process: the local
    /// runner's stand-in for the Lambda continuation. Returns the outcome and the number of
    /// invocations it took. A failed invocation gives the run up (nothing here retries it, as
    /// Lambda does): its lease is released, so the next run need not wait for it to go stale.
    pub async fn run_to_end(
        &self,
        event: ReconcileEvent,
        limits: &Limits,
    ) -> Result<RunOutcome, RunError> {
        let mut event = event;
        let mut run = None;
        loop {
            match self.invoke_run(&event, limits, &mut run).await {
                Ok(Step::Continue(next)) => event = next,
                Ok(Step::Finished(outcome)) => return Ok(*outcome),
                Err(err) => {
                    if let Some(run_id) = &run
                        && let Err(e) = self.stores.runs.release_lease(RUN_LEASE, run_id).await
                    {
                        tracing::warn!(run_id = %run_id, error = %e, "the failed run's lease could not be released; it goes stale after lease_stale_secs");
                    }
                    return Err(err);
                }
            }
        }
    }

    async fn open(&self, event: &ReconcileEvent) -> Result<Opened, RunError> {
        let now = now_ms();
        let runs = &self.stores.runs;
        let Some(run_id) = &event.run_id else {
            let run_id = format!("{}-{now}", event.mode.as_str());
            if !runs.start(&run_id, event.mode.as_str(), now).await? {
                return Err(RunError::RunExists(run_id));
            }
            let stale_after_ms = i64::try_from(self.settings.lease_stale_secs)
                .unwrap_or(i64::MAX / 2000)
                .saturating_mul(1000);
            match runs
                .take_lease(RUN_LEASE, &run_id, now, stale_after_ms)
                .await?
            {
                LeaseTake::Busy(lease) => {
                    return Ok(Opened::Refused {
                        run_id,
                        started_at_ms: now,
                        holder: lease.holder,
                    });
                }
                LeaseTake::Taken { from: Some(old) } => tracing::warn!(
                    run_id = %run_id,
                    stale_holder = %old.holder,
                    renewed_at_ms = old.renewed_at_ms,
                    "took the reconcile lease over from a run that stopped renewing it; that run stops if it resumes"
                ),
                LeaseTake::Taken { from: None } => {}
            }
            let mut cp = Checkpoint {
                version: CHECKPOINT_VERSION,
                invocations: 1,
                ..Checkpoint::default()
            };
            if event.mode == Mode::Delta {
                let from = self.delta_start(now).await?;
                cp.export_from_s = Some(from);
                cp.accounts_since_ms = Some(from * 1000);
            }
            self.save(&run_id, &cp).await?;
            tracing::info!(run_id = %run_id, mode = event.mode.as_str(), "reconcile run started");
            return Ok(Opened::Run {
                run_id,
                started_at_ms: now,
                checkpoint: Box::new(cp),
            });
        };
        let record = runs
            .get(run_id, now)
            .await?
            .ok_or_else(|| RunError::UnknownRun(run_id.clone()))?;
        if record.status != RunStatus::Running {
            // A re-delivered continuation of a run that is over: nothing to do again.
            let summary: RunSummary = record
                .summary
                .clone()
                .and_then(|s| serde_json::from_value(s).ok())
                .ok_or_else(|| RunError::BadCheckpoint {
                    run_id: run_id.clone(),
                    detail: "it is over but has no readable summary".into(),
                })?;
            return Ok(Opened::AlreadyOver(Box::new(RunOutcome {
                summary,
                report: Vec::new(),
                metrics: Vec::new(),
                then: None,
            })));
        }
        let mut cp: Checkpoint = record
            .cursor
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| RunError::BadCheckpoint {
                run_id: run_id.clone(),
                detail: e.to_string(),
            })?
            .unwrap_or_default();
        if cp.version != CHECKPOINT_VERSION {
            return Err(RunError::BadCheckpoint {
                run_id: run_id.clone(),
                detail: format!(
                    "its checkpoint is of version {}, this is version {CHECKPOINT_VERSION}",
                    cp.version
                ),
            });
        }
        cp.invocations += 1;
        tracing::info!(run_id = %run_id, invocation = cp.invocations, "reconcile run continues");
        Ok(Opened::Run {
            run_id: run_id.clone(),
            started_at_ms: record.started_at_ms,
            checkpoint: Box::new(cp),
        })
    }

    /// Where a delta starts: where the last run left the incremental export, else a minute
    /// before the last complete full run started, else a day ago.
    async fn delta_start(&self, now: i64) -> Result<i64, RunError> {
        let saved = self
            .stores
            .mirror
            .checkpoint(INCREMENTAL_CHECKPOINT)
            .await?
            .and_then(|s| s.parse::<i64>().ok());
        let from = match saved {
            Some(s) => s,
            None => match self.stores.runs.last_complete(Mode::Full.as_str()).await? {
                Some(run) => run.started_at_ms / 1000 - 60,
                None => now / 1000 - 24 * 3600,
            },
        };
        // The export serves nothing from the last minute.
        Ok(from.min(now / 1000 - 60))
    }

    /// Saves progress, renewing the lease first: a run that lost it saves nothing more.
    async fn save(&self, run_id: &str, cp: &Checkpoint) -> Result<(), RunError> {
        self.hold_lease(run_id).await?;
        let text = serde_json::to_string(cp).expect("a checkpoint serializes");
        self.stores.runs.checkpoint(run_id, &text).await?;
        Ok(())
    }

    /// Renews the run's lease; [`RunError::LeaseLost`] when another run took it over.
    async fn hold_lease(&self, run_id: &str) -> Result<(), RunError> {
        let runs = &self.stores.runs;
        if runs.renew_lease(RUN_LEASE, run_id, now_ms()).await? {
            return Ok(());
        }
        let holder = runs
            .lease(RUN_LEASE)
            .await?
            .map_or_else(|| "none (released)".to_string(), |l| l.holder);
        Err(RunError::LeaseLost {
            run_id: run_id.to_string(),
            holder,
        })
    }

    async fn advance(&self, ctx: &mut Ctx<'_>, cp: &mut Checkpoint) -> Result<Step, RunError> {
        // Every invocation first makes sure the run still holds the lease.
        self.hold_lease(ctx.run_id).await?;
        if cp.phase == Phase::Orgs {
            let done = if ctx.mode == Mode::Full || cp.orgs.export_stalled_at.is_some() {
                self.list_orgs(ctx, cp).await?
            } else {
                match self.export_orgs(ctx, cp).await {
                    // More organizations changed in one second than an export page holds:
                    // only a full listing reads them. It is done here, in this run, so the
                    // mirror is whole again tonight; the run stays a delta (changed accounts
                    // only, nothing auto-resolved).
                    Err(RunError::Zendesk(ZendeskError::ExportStalled { start_time })) => {
                        tracing::warn!(
                            run_id = ctx.run_id,
                            start_time,
                            "the organization export does not move past a second; this delta lists every organization instead"
                        );
                        cp.orgs.export_stalled_at = Some(start_time);
                        cp.calls = ctx.calls_total(&self.calls, cp);
                        ctx.calls_before = sent_calls(&self.calls);
                        self.save(ctx.run_id, cp).await?;
                        self.list_orgs(ctx, cp).await?
                    }
                    other => other?,
                }
            };
            if !done {
                return self.hand_over(ctx, cp).await;
            }
            cp.phase = Phase::Tickets;
            cp.calls = ctx.calls_total(&self.calls, cp);
            ctx.calls_before = sent_calls(&self.calls);
            self.save(ctx.run_id, cp).await?;
        }
        if cp.phase == Phase::Tickets {
            if self.settings.ticket_horizon_days > 0 && !self.export_tickets(ctx, cp).await? {
                return self.hand_over(ctx, cp).await;
            }
            cp.phase = Phase::Accounts;
            cp.calls = ctx.calls_total(&self.calls, cp);
            ctx.calls_before = sent_calls(&self.calls);
            self.save(ctx.run_id, cp).await?;
        }
        self.accounts(ctx, cp).await
    }

    async fn hand_over(&self, ctx: &mut Ctx<'_>, cp: &mut Checkpoint) -> Result<Step, RunError> {
        cp.calls = ctx.calls_total(&self.calls, cp);
        self.save(ctx.run_id, cp).await?;
        tracing::info!(run_id = ctx.run_id, phase = ?cp.phase, "reconcile hands over to a new invocation");
        Ok(Step::Continue(ReconcileEvent::continuation(
            ctx.mode, ctx.run_id,
        )))
    }

    /// Writes one page's organizations into the mirror in one batch (`upsert_many`: what the
    /// mirror holds of them read 100 a request, domain items written 25 a request, rows held
    /// exactly as given not written again); returns how many were not stale.
    async fn write_mirror(&self, orgs: &[MirroredOrg]) -> Result<u64, RunError> {
        if orgs.is_empty() {
            return Ok(0);
        }
        let outcomes = self.stores.mirror.upsert_many(orgs).await?;
        Ok(outcomes
            .iter()
            .filter(|o| **o == UpsertOutcome::Written)
            .count() as u64)
    }

    /// Full refresh (a full run's, or a delta's whose export stalled): the cursor listing from
    /// the checkpoint; `false` when it handed over.
    async fn list_orgs(&self, ctx: &mut Ctx<'_>, cp: &mut Checkpoint) -> Result<bool, RunError> {
        // What the mirror holds, so that only changed organizations are written (a scan per
        // invocation costs no API call and spares the writes).
        let snapshot: HashMap<OrgId, MirroredOrg> = self
            .stores
            .mirror
            .all()
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
        let mut since_commit = 0;
        let pages = self.zendesk.list_pages(cp.org_cursor.clone());
        futures_util::pin_mut!(pages);
        while let Some(page) = pages.try_next().await? {
            let changed: Vec<MirroredOrg> = page
                .organizations
                .iter()
                .map(MirroredOrg::from)
                .filter(|m| snapshot.get(&m.id) != Some(m))
                .collect();
            cp.orgs.written += self.write_mirror(&changed).await?;
            let ids: Vec<OrgId> = page.organizations.iter().map(|o| o.id).collect();
            self.stores.mirror.stamp_listed(&ids, ctx.run_id).await?;
            cp.orgs.seen += page.organizations.len() as u64;
            cp.orgs.pages += 1;
            ctx.pages += 1;
            since_commit += 1;
            if !page.has_more {
                break;
            }
            cp.org_cursor = page.after_cursor.clone();
            if ctx.limits.must_yield(ctx.pages) {
                return Ok(false);
            }
            if since_commit >= self.settings.commit_every_pages {
                since_commit = 0;
                cp.calls = ctx.calls_total(&self.calls, cp);
                ctx.calls_before = sent_calls(&self.calls);
                self.save(ctx.run_id, cp).await?;
            }
        }
        // What the mirror holds that this listing never stamped is gone from Zendesk, unless
        // it changed after the run began (an organization the worker created or updated
        // behind the listing's back): the next full run judges that one. Only while this run
        // holds the lease: another run's stamps would make this one's look stale.
        self.hold_lease(ctx.run_id).await?;
        let began = iso_seconds(ctx.started_at_ms);
        let gone: Vec<OrgId> = self
            .stores
            .mirror
            .not_listed(ctx.run_id)
            .await?
            .into_iter()
            .filter(|o| o.updated_at.as_deref().is_none_or(|u| u < began.as_str()))
            .map(|o| o.id)
            .collect();
        let mirror = &self.stores.mirror;
        stream::iter(gone.iter().copied())
            .map(|id| async move { mirror.delete(id).await })
            .buffer_unordered(self.settings.store_concurrency)
            .try_collect::<Vec<_>>()
            .await?;
        cp.orgs.deleted += gone.len() as u64;
        cp.org_cursor = None;
        // Only here, after the last page and the removals: the mirror now holds every org.
        self.stores
            .mirror
            .mark_filled(MIRROR_FILLED_BY, now_ms())
            .await?;
        // The next delta starts a minute before this listing did.
        let from = ctx.started_at_ms / 1000 - 60;
        self.stores
            .mirror
            .save_checkpoint(INCREMENTAL_CHECKPOINT, Some(&from.to_string()), now_ms())
            .await?;
        Ok(true)
    }

    /// Delta refresh: the incremental export from the checkpoint; `false` when it handed over.
    async fn export_orgs(&self, ctx: &mut Ctx<'_>, cp: &mut Checkpoint) -> Result<bool, RunError> {
        let start = cp.export_from_s.unwrap_or(now_ms() / 1000 - 24 * 3600);
        let pages = self.zendesk.incremental(start);
        futures_util::pin_mut!(pages);
        while let Some(page) = pages.try_next().await? {
            // Time-based pages repeat records: the latest copy of each id wins.
            let mut latest: BTreeMap<OrgId, MirroredOrg> = BTreeMap::new();
            for org in &page.organizations {
                latest.insert(org.id, MirroredOrg::from(org));
            }
            cp.orgs.seen += page.organizations.len() as u64;
            let latest: Vec<MirroredOrg> = latest.into_values().collect();
            cp.orgs.written += self.write_mirror(&latest).await?;
            for id in &page.deleted {
                self.stores.mirror.delete(*id).await?;
            }
            cp.orgs.deleted += page.deleted.len() as u64;
            cp.orgs.pages += 1;
            cp.export_from_s = Some(page.end_time);
            ctx.pages += 1;
            if page.end_of_stream {
                break;
            }
            if ctx.limits.must_yield(ctx.pages) {
                return Ok(false);
            }
        }
        if let Some(from) = cp.export_from_s {
            self.stores
                .mirror
                .save_checkpoint(INCREMENTAL_CHECKPOINT, Some(&from.to_string()), now_ms())
                .await?;
        }
        Ok(true)
    }

    /// The ticket phase: the export from the checkpoint's cursor (or the start: the horizon
    /// for a full run, where the last run left the export for a delta), keeping the
    /// misattributed tickets; `false` when it handed over.
    async fn export_tickets(
        &self,
        ctx: &mut Ctx<'_>,
        cp: &mut Checkpoint,
    ) -> Result<bool, RunError> {
        let from = match &cp.ticket_cursor {
            Some(c) => TicketExportFrom::Cursor(c.clone()),
            None => self.ticket_start(ctx, cp).await?,
        };
        // Requesters whose memberships were listed in this invocation.
        let mut memberships = HashMap::new();
        let mut since_commit = 0;
        let pages = self.zendesk.ticket_export(from);
        futures_util::pin_mut!(pages);
        while let Some(page) = pages.try_next().await? {
            let kept = self
                .zendesk
                .misattributed_tickets(&page, &mut memberships, &mut cp.tickets)
                .await?;
            self.keep_tickets(ctx.run_id, &mut cp.tickets_kept, &kept)
                .await?;
            if page.after_cursor.is_some() {
                cp.ticket_cursor = page.after_cursor.clone();
            }
            ctx.pages += 1;
            since_commit += 1;
            if page.end_of_stream {
                break;
            }
            if ctx.limits.must_yield(ctx.pages) {
                return Ok(false);
            }
            if since_commit >= self.settings.commit_every_pages {
                since_commit = 0;
                cp.calls = ctx.calls_total(&self.calls, cp);
                ctx.calls_before = sent_calls(&self.calls);
                self.save(ctx.run_id, cp).await?;
            }
        }
        // The next delta reads the tickets changed after this export's end.
        if let Some(cursor) = &cp.ticket_cursor {
            self.stores
                .mirror
                .save_checkpoint(TICKET_CHECKPOINT, Some(cursor), now_ms())
                .await?;
        }
        Ok(true)
    }

    /// Where a run's ticket export starts without a cursor of its own: a full run at the
    /// horizon before it started; a delta where the last run left the export, else where its
    /// organization export started.
    async fn ticket_start(
        &self,
        ctx: &Ctx<'_>,
        cp: &Checkpoint,
    ) -> Result<TicketExportFrom, RunError> {
        // The export serves nothing from the last minute.
        let latest = now_ms() / 1000 - 60;
        if ctx.mode == Mode::Delta {
            if let Some(cursor) = self.stores.mirror.checkpoint(TICKET_CHECKPOINT).await? {
                return Ok(TicketExportFrom::Cursor(cursor));
            }
            if let Some(ms) = cp.accounts_since_ms {
                return Ok(TicketExportFrom::StartTime((ms / 1000).min(latest)));
            }
        }
        Ok(TicketExportFrom::StartTime(
            horizon_start(ctx.started_at_ms / 1000, self.settings.ticket_horizon_days).min(latest),
        ))
    }

    /// Keeps each misattributed ticket as its own run item, numbered after those kept before.
    async fn keep_tickets(
        &self,
        run_id: &str,
        kept: &mut u32,
        tickets: &[TicketFacts],
    ) -> Result<(), RunError> {
        for t in tickets {
            let data = serde_json::to_string(t).expect("ticket facts serialize");
            self.stores
                .runs
                .put_item(run_id, TICKET_ITEMS, *kept, &data, now_ms())
                .await?;
            *kept += 1;
        }
        Ok(())
    }

    /// The misattributed tickets the ticket phase kept, in the order it kept them.
    async fn kept_tickets(&self, run_id: &str, count: u32) -> Result<Vec<TicketFacts>, RunError> {
        self.stores
            .runs
            .items(run_id, TICKET_ITEMS, count)
            .await?
            .iter()
            .map(|text| serde_json::from_str(text))
            .collect::<Result<_, _>>()
            .map_err(|e| RunError::BadCheckpoint {
                run_id: run_id.to_string(),
                detail: format!("a kept ticket is unreadable: {e}"),
            })
    }

    /// Account facts; the link record is read only when the reviewed domain disagrees with
    /// Website (see `facts`).
    async fn facts(&self, account: &Account) -> Result<AccountFacts, RunError> {
        let facts = AccountFacts::from_account(&self.config, &self.policy, account, None);
        if facts.website_disagrees.is_none() {
            return Ok(facts);
        }
        let written = self
            .stores
            .links
            .get(&account.id)
            .await?
            .and_then(|r| written_domain(&r.written_salesforce));
        Ok(match written {
            Some(w) => AccountFacts::from_account(&self.config, &self.policy, account, Some(&w)),
            None => facts,
        })
    }

    async fn accounts(&self, ctx: &mut Ctx<'_>, cp: &mut Checkpoint) -> Result<Step, RunError> {
        if cp.accounts.attempts >= u64::from(self.settings.account_attempts) {
            return self.account_stream_too_long(ctx, cp).await;
        }
        // A new attempt: the stream starts over, and so do its counts. Saved first, so an
        // invocation that fails here counts against the bound too.
        cp.accounts.attempts += 1;
        cp.accounts.pages = 0;
        cp.accounts.read = 0;
        cp.accounts.judged = 0;
        cp.calls = ctx.calls_total(&self.calls, cp);
        ctx.calls_before = sent_calls(&self.calls);
        self.save(ctx.run_id, cp).await?;

        let lists = self.stores.lists.load().await?;
        // The organization side, from the mirror the first phase refreshed. Rows last seen
        // after this snapshot are about what the run cannot see: never auto-resolved.
        let snapshot_ms = now_ms();
        let mirrored = self.stores.mirror.all().await?;
        cp.orgs.judged = mirrored.len() as u64;
        let org_names: HashMap<OrgId, String> =
            mirrored.iter().map(|o| (o.id, o.name.clone())).collect();
        let organizations: Vec<Organization> =
            mirrored.iter().map(MirroredOrg::to_organization).collect();
        drop(mirrored);
        let mut builder = DiffBuilder::new(DiffConfig {
            shared_domains: lists.shared_domains.clone(),
            ..DiffConfig::default()
        });
        builder.add_orgs(&organizations);
        drop(organizations);
        let mut diff = builder.accounts();
        let mut names: HashMap<AccountId, String> = HashMap::new();

        // The misattributed tickets the ticket phase kept. A ticket changed while the export
        // ran can appear twice: the later copy wins.
        let tickets = self.kept_tickets(ctx.run_id, cp.tickets_kept).await?;
        diff.add_tickets(&latest_copies(tickets));

        let filter = cp.accounts_since_ms.map(|ms| {
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            Cond::cmp("SystemModstamp", Op::Gt, Lit::DateTime(at))
        });
        let calls_at_start = salesforce_calls(&self.calls);
        let pages = self
            .salesforce
            .accounts_after(None, filter, true)
            .peekable();
        futures_util::pin_mut!(pages);
        while let Some(page) = pages.try_next().await? {
            for account in &page {
                cp.accounts.read += 1;
                let facts = self.facts(account).await?;
                if facts.matters() {
                    cp.accounts.judged += 1;
                    names.insert(facts.id.clone(), facts.name.clone());
                    diff.add_account(facts);
                }
            }
            cp.accounts.pages += 1;
            ctx.pages += 1;
            // Only the stream knows which page is last: a query that is done ends it without
            // another call; otherwise this reads the next page, which continuing needs anyway.
            if pages.as_mut().peek().await.is_none() {
                break;
            }
            if ctx.limits.must_yield(ctx.pages) {
                // What this attempt read is dropped (never parked): the next one starts over.
                cp.accounts.pages_repeated += cp.accounts.pages + 1;
                cp.accounts.calls_repeated += salesforce_calls(&self.calls) - calls_at_start;
                if cp.accounts.attempts >= u64::from(self.settings.account_attempts) {
                    return self.account_stream_too_long(ctx, cp).await;
                }
                tracing::info!(
                    run_id = ctx.run_id,
                    attempt = cp.accounts.attempts,
                    pages = cp.accounts.pages,
                    "the account stream does not fit in this invocation; the next starts it over"
                );
                return self.hand_over(ctx, cp).await;
            }
        }
        cp.finish_attempts += 1;
        cp.calls = ctx.calls_total(&self.calls, cp);
        ctx.calls_before = sent_calls(&self.calls);
        self.save(ctx.run_id, cp).await?;

        // Organizations keyed to accounts the stream did not show (a full run reads them by
        // id: `queryAll` knows deleted ones; an id it does not know at all was purged). A delta
        // reads only changed accounts: the others' organizations are left unjudged.
        if ctx.mode == Mode::Full {
            let unseen = diff.accounts_to_look_up();
            if !unseen.is_empty() {
                let found = self.salesforce.read_accounts(&unseen).await?;
                let mut known = HashSet::new();
                for account in &found {
                    known.insert(account.id.clone());
                    let facts = self.facts(account).await?;
                    names.insert(facts.id.clone(), facts.name.clone());
                    diff.add_account(facts);
                }
                for id in unseen.iter().filter(|id| !known.contains(*id)) {
                    diff.add_account(AccountFacts::purged(id.clone()));
                }
                cp.accounts.looked_up = unseen.len() as u64;
            }
        }

        let mut findings: Vec<Finding> = Vec::new();
        let summary = diff.finish_into(&mut |f| findings.push(f));
        cp.accounts.unseen = summary.unseen_accounts.len() as u64;
        let ignored = |accounts: &[AccountId]| {
            !accounts.is_empty() && accounts.iter().all(|a| lists.ignored_accounts.contains(a))
        };
        let before = findings.len();
        findings.retain(|f| !ignored(&f.accounts));
        let not_ignored = findings.len();
        if ctx.mode == Mode::Delta {
            // A delta judges only the accounts it read. An org-side finding about accounts it
            // did not read (two orgs sharing an unread account's key) carries the org side's
            // evidence, not the account side's a full run records, and would flip the row's
            // evidence hash (reopening a dismissed row) at every delta: leave it to full runs.
            // Tickets: a delta sees only the tickets changed since the last run, so its evidence
            // is partial; it opens rows for new problems and leaves known ones to full runs.
            let mut kept = Vec::with_capacity(findings.len());
            for f in findings {
                let keep = if f.kind == ExceptionKind::TicketAttributionDrift {
                    self.stores
                        .exceptions
                        .get(&f.fingerprint())
                        .await?
                        .is_none()
                } else {
                    f.accounts.is_empty() || f.accounts.iter().any(|a| names.contains_key(a))
                };
                if keep {
                    kept.push(f);
                }
            }
            findings = kept;
        }
        let mut rows = RowCounts {
            findings: findings.len() as u64,
            ignored: (before - not_ignored) as u64,
            left_to_full_runs: (not_ignored - findings.len()) as u64,
            ..RowCounts::default()
        };
        let mut findings_by_kind: BTreeMap<ExceptionKind, u64> = BTreeMap::new();
        for f in &findings {
            *findings_by_kind.entry(f.kind).or_default() += 1;
        }

        self.hold_lease(ctx.run_id).await?;
        let now = now_ms();
        let seen = self
            .upsert_rows(&findings, &names, &org_names, ctx, cp, now, &mut rows)
            .await?;
        drop(findings);
        if ctx.mode == Mode::Full {
            rows.auto_resolved = self
                .stores
                .exceptions
                .auto_resolve(&seen, &diff_kinds(), snapshot_ms, now)
                .await?
                .len() as u64;
        }
        let repairs = self
            .enqueue_repairs(&summary.repairs, &lists.ignored_accounts, ctx, now)
            .await?;
        rows.open_critical = self.open_critical().await?;

        for line in &summary.report {
            tracing::info!(
                target: "orglink_reconcile::report",
                run_id = ctx.run_id,
                kind = ?line.kind,
                account = %line.account,
                org = ?line.org.map(|o| o.get()),
                detail = %line.detail,
                "report line"
            );
        }
        let mut report_by_kind = BTreeMap::new();
        for line in &summary.report {
            *report_by_kind.entry(line.kind).or_default() += 1;
        }
        let finished = now_ms();
        let run_summary = self.summary(
            ctx,
            cp,
            RunState::Complete,
            None,
            finished,
            findings_by_kind,
            rows,
            report_by_kind,
            summary
                .report
                .iter()
                .take(self.settings.report_sample)
                .cloned()
                .collect(),
            repairs,
        );
        let value = serde_json::to_value(&run_summary).expect("a summary serializes");
        self.stores
            .runs
            .finish(ctx.run_id, RunStatus::Complete, &value, finished)
            .await?;
        let waiting = self
            .stores
            .runs
            .release_lease(RUN_LEASE, ctx.run_id)
            .await?;
        tracing::info!(run_id = ctx.run_id, summary = %value, "reconcile run complete");
        let metrics = run_summary.metrics(&self.metrics);
        Ok(Step::Finished(Box::new(RunOutcome {
            summary: run_summary,
            report: summary.report,
            metrics,
            then: waiting_run(waiting),
        })))
    }

    #[allow(clippy::too_many_arguments)]
    async fn upsert_rows(
        &self,
        findings: &[Finding],
        names: &HashMap<AccountId, String>,
        org_names: &HashMap<OrgId, String>,
        ctx: &Ctx<'_>,
        cp: &Checkpoint,
        now: i64,
        rows: &mut RowCounts,
    ) -> Result<BTreeSet<Fingerprint>, RunError> {
        let exceptions = &self.stores.exceptions;
        // A retried last step must not count a sighting twice.
        let retried = cp.finish_attempts > 1;
        let started = ctx.started_at_ms;
        let results: Vec<Option<(bool, bool)>> = stream::iter(findings.iter())
            .map(|f| async move {
                let fp = f.fingerprint();
                if retried
                    && let Some(row) = exceptions.get(&fp).await?
                    && row.last_seen_ms >= started
                {
                    return Ok::<_, StoreError>(None);
                }
                let mut row_names = BTreeMap::new();
                for a in &f.accounts {
                    if let Some(n) = names.get(a) {
                        row_names.insert(a.to_string(), n.clone());
                    }
                }
                for o in &f.orgs {
                    if let Some(n) = org_names.get(o) {
                        row_names.insert(o.to_string(), n.clone());
                    }
                }
                let row = exceptions.upsert(f, &row_names, now).await?;
                let new = row.times_seen == 1;
                let reopened = !new
                    && row.status == ExceptionStatus::Open
                    && row
                        .status_change
                        .as_ref()
                        .is_some_and(|c| c.by == ORGLINK && c.at_ms == now);
                Ok(Some((new, reopened)))
            })
            .buffer_unordered(self.settings.store_concurrency)
            .try_collect()
            .await?;
        for (new, reopened) in results.into_iter().flatten() {
            rows.new += u64::from(new);
            rows.reopened += u64::from(reopened);
        }
        Ok(findings.iter().map(Finding::fingerprint).collect())
    }

    async fn enqueue_repairs(
        &self,
        repairs: &[Repair],
        ignored: &BTreeSet<AccountId>,
        ctx: &Ctx<'_>,
        now: i64,
    ) -> Result<RepairCounts, RunError> {
        let mut counts = RepairCounts::default();
        let mut mirror_room = self.settings.mirror_repairs_per_run;
        let occurred_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let event_id = format!("reconcile:{}", ctx.run_id);
        let mut messages = Vec::new();
        for r in repairs.iter().filter(|r| !ignored.contains(&r.account)) {
            if mirror_only(r) {
                if mirror_room == 0 {
                    counts.deferred += 1;
                    continue;
                }
                mirror_room -= 1;
            }
            let reasons: Vec<String> = r.reasons.iter().map(reason_name).collect();
            for reason in &reasons {
                *counts.by_reason.entry(reason.clone()).or_default() += 1;
            }
            let request = SyncRequest {
                account_id: r.account.clone(),
                event_id: event_id.clone(),
                kind: EventKind::ReconcileRepair,
                source: RequestSource::Reconcile,
                occurred_at,
                account_modstamp: None,
                org_id: r.org,
                note: Some(format!("reconcile {}: {}", ctx.run_id, reasons.join(", "))),
            };
            messages.push(request.to_message());
        }
        let failures = self.stores.queue.send_batch(&messages).await?;
        // Entries SQS refused for a passing reason get one more try; a repair that is still
        // not queued is found again by the next run.
        let again: Vec<_> = failures
            .iter()
            .filter(|f| f.transient)
            .filter_map(|f| messages.get(f.index).cloned())
            .collect();
        let mut failed = failures.iter().filter(|f| !f.transient).count();
        if !again.is_empty() {
            failed += self.stores.queue.send_batch(&again).await?.len();
        }
        if failed > 0 {
            tracing::warn!(
                run_id = ctx.run_id,
                failed,
                "some repairs could not be queued; the next run finds them again"
            );
        }
        counts.enqueued = (messages.len() - failed) as u64;
        Ok(counts)
    }

    async fn open_critical(&self) -> Result<u64, RunError> {
        let filter = ExceptionFilter {
            severity: Some(Severity::Critical),
            ..ExceptionFilter::status(ExceptionStatus::Open)
        };
        Ok(self.stores.exceptions.list(&filter).await?.len() as u64)
    }

    #[allow(clippy::too_many_arguments)]
    fn summary(
        &self,
        ctx: &Ctx<'_>,
        cp: &Checkpoint,
        state: RunState,
        stop: Option<StopReason>,
        finished: i64,
        findings_by_kind: BTreeMap<ExceptionKind, u64>,
        rows: RowCounts,
        report_by_kind: BTreeMap<orglink_shared::exceptions::ReportKind, u64>,
        report_sample: Vec<ReportLine>,
        repairs: RepairCounts,
    ) -> RunSummary {
        let by_endpoint = ctx.calls_total(&self.calls, cp);
        let mut api_calls: BTreeMap<String, u64> = BTreeMap::new();
        for (k, n) in &by_endpoint {
            let system = k.split('/').next().unwrap_or_default().to_string();
            *api_calls.entry(system).or_default() += n;
        }
        RunSummary {
            run_id: ctx.run_id.to_string(),
            mode: ctx.mode,
            state,
            stop,
            started_at_ms: ctx.started_at_ms,
            finished_at_ms: finished,
            duration_ms: finished - ctx.started_at_ms,
            invocations: cp.invocations,
            orgs: cp.orgs.clone(),
            tickets: cp.tickets.clone(),
            accounts: cp.accounts.clone(),
            findings_by_kind,
            rows,
            report_by_kind,
            report_sample,
            repairs,
            api_calls,
            api_calls_by_endpoint: by_endpoint,
        }
    }

    /// Ends a run whose account stream never fitted in an invocation.
    async fn account_stream_too_long(
        &self,
        ctx: &Ctx<'_>,
        cp: &Checkpoint,
    ) -> Result<Step, RunError> {
        let detail = format!(
            "the account stream was started {} times and never reached its end in one invocation ({} query pages read in vain); raise the function's timeout or account_attempts",
            cp.accounts.attempts, cp.accounts.pages_repeated
        );
        tracing::warn!(run_id = ctx.run_id, %detail, "reconcile stopped");
        let outcome = self
            .stopped(ctx, cp, StopReason::AccountStreamTooLong { detail })
            .await?;
        Ok(Step::Finished(Box::new(outcome)))
    }

    /// Ends a run the budget stopped: incomplete, with the reason; nothing auto-resolved,
    /// nothing upserted (the diff never saw the whole picture).
    async fn stopped(
        &self,
        ctx: &Ctx<'_>,
        cp: &Checkpoint,
        stop: StopReason,
    ) -> Result<RunOutcome, RunError> {
        let finished = now_ms();
        let rows = RowCounts {
            open_critical: self.open_critical().await?,
            ..RowCounts::default()
        };
        let summary = self.summary(
            ctx,
            cp,
            RunState::Stopped,
            Some(stop),
            finished,
            BTreeMap::new(),
            rows,
            BTreeMap::new(),
            Vec::new(),
            RepairCounts::default(),
        );
        let value = serde_json::to_value(&summary).expect("a summary serializes");
        self.stores
            .runs
            .finish(ctx.run_id, RunStatus::Incomplete, &value, finished)
            .await?;
        // A run refused the lease or that lost it holds nothing: this releases nothing then.
        let waiting = self
            .stores
            .runs
            .release_lease(RUN_LEASE, ctx.run_id)
            .await?;
        let metrics = summary.metrics(&self.metrics);
        Ok(RunOutcome {
            summary,
            report: Vec::new(),
            metrics,
            then: waiting_run(waiting),
        })
    }
}

/// The run a released lease's waiter asked for (only full runs wait).
fn waiting_run(kind: Option<String>) -> Option<ReconcileEvent> {
    (kind.as_deref() == Some(Mode::Full.as_str())).then(|| ReconcileEvent::new(Mode::Full))
}

/// A Zendesk-style timestamp (`2026-01-31T12:00:00Z`) of `ms`, to the second, so it compares
/// as text with the mirror's `updated_at`.
fn iso_seconds(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// One invocation's context.
struct Ctx<'a> {
    run_id: &'a str,
    mode: Mode,
    started_at_ms: i64,
    limits: &'a Limits,
    /// API pages read in this invocation.
    pages: u32,
    /// The call log when this invocation last saved its progress.
    calls_before: BTreeMap<String, u64>,
}

impl Ctx<'_> {
    /// The run's calls so far: the checkpoint's plus this invocation's since it last saved.
    fn calls_total(&self, log: &CallLog, cp: &Checkpoint) -> BTreeMap<String, u64> {
        let mut total = cp.calls.clone();
        for (k, n) in sent_calls(log) {
            let before = self.calls_before.get(&k).copied().unwrap_or(0);
            if n > before {
                *total.entry(k).or_default() += n - before;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number in `v` at a trillion: far past any world's counts.
    fn widest(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n) => *n = 1_000_000_000_000u64.into(),
            serde_json::Value::Array(a) => a.iter_mut().for_each(widest),
            serde_json::Value::Object(o) => o.values_mut().for_each(widest),
            _ => {}
        }
    }

    /// What travels between invocations is cursors and counters: with every counter at a
    /// trillion, long cursors and a call count for more endpoints than the clients have (32
    /// today), the checkpoint stays a small item, whatever the world's size.
    #[test]
    fn a_checkpoint_is_small_at_any_scale() {
        let cursor = "c".repeat(256);
        let cp = Checkpoint {
            version: CHECKPOINT_VERSION,
            phase: Phase::Accounts,
            org_cursor: Some(cursor.clone()),
            export_from_s: Some(i64::MAX),
            accounts_since_ms: Some(i64::MAX),
            ticket_cursor: Some(cursor),
            tickets_kept: u32::MAX,
            calls: (0..40)
                .map(|i| (format!("salesforce/sf.endpoint_name_{i:03}"), u64::MAX))
                .collect(),
            ..Checkpoint::default()
        };
        let mut value = serde_json::to_value(&cp).unwrap();
        widest(&mut value);
        let size = value.to_string().len();
        assert!(size < 4096, "{size} bytes: {value}");
        // And it reads back as what was saved.
        let back: Checkpoint = serde_json::from_str(&serde_json::to_string(&cp).unwrap()).unwrap();
        assert_eq!(back.org_cursor, cp.org_cursor);
        assert_eq!(back.tickets_kept, u32::MAX);
    }

    #[test]
    fn timestamps_compare_with_zendesks_as_text() {
        assert_eq!(iso_seconds(1_767_225_600_999), "2026-01-01T00:00:00Z");
        assert!("2025-12-31T23:59:59Z" < iso_seconds(1_767_225_600_000).as_str());
        assert!("2026-01-01T00:00:01Z" > iso_seconds(1_767_225_600_000).as_str());
    }
}
