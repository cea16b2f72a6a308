//! `backfill plan` and `backfill apply`: the I/O around the pure plan.
//!
//! Apply, in order (each phase batched at the bulk endpoints' sizes):
//! 1. check the plan (its hash, the confirmed hash, the deployment and configuration);
//! 2. read both systems again (the org listing also refreshes the organization mirror) and
//!    re-decide each planned account: acted on only when its fingerprint is the plan's, else
//!    skipped with the reason; accounts an earlier, interrupted run started on are finished
//!    from where they are while their decision is still the planned one, else skipped and
//!    their claims from that run released ([`super::journal`]);
//! 3. review rows for the planned exceptions;
//! 4. claims (the live worker's [`ClaimStore`]: an org another account holds is a finding, never
//!    a second link), then `update_many` for orgs that change;
//! 5. `create_many` for new orgs, then the in-doubt ones (lookup by external id, else
//!    `create_or_update`);
//! 6. write-back through sObject Collections, link records, and `done` in the journal;
//!    then the rest of the listing into the mirror, and the mirror's completeness marker.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::BackfillError;
use super::index::OrgIndex;
use super::journal::{BatchKind, InFlight, Journal, JournalEvent, JournalState};
use super::plan::{
    self, PLAN_FORMAT, Plan, PlanEntry, PlanFile, PlannedAction, Rules, config_sha256,
    decide_account, merged_losers, needs_last_written,
};
use super::progress::Progress;
use super::snapshot;
use crate::aws::links::{DecisionRecord, WrittenOrg};
use crate::aws::{
    ClaimOutcome, ClaimStore, ExceptionStore, LinkRecord, LinkStore, MirroredOrg, OrgMirror,
};
use crate::contract::{AccountWrite, Config, LinkField};
use crate::domain::{Domain, DomainPolicy};
use crate::exceptions::{Evidence, ExceptionKind, Finding};
use crate::ids::{AccountId, OrgId};
use crate::model::{Account, Organization};
use crate::resolution::{Decision, Rule};
use crate::salesforce::SalesforceClient;
use crate::zendesk::{MANY_LIMIT, ZendeskClient};

/// Where a test stops an apply as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPoint {
    /// After the `submitting` line of batch number `n` (1-based), before it is sent.
    BeforeSubmit(usize),
    /// After batch `n` ran in Zendesk, before its results reach the journal.
    AfterSubmit(usize),
}

/// How hard to push.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Zendesk jobs in flight at once (Zendesk allows 30 queued or running per account).
    pub jobs: usize,
    /// State-store calls (claims, link records, mirror rows) in flight at once.
    pub store_concurrency: usize,
    pub fail_point: Option<FailPoint>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            jobs: 4,
            store_concurrency: 16,
            fail_point: None,
        }
    }
}

/// Everything a backfill talks to.
pub struct Backfill<'a, C, L, E, M> {
    pub salesforce: &'a SalesforceClient,
    pub zendesk: &'a ZendeskClient,
    pub claims: &'a C,
    pub links: &'a L,
    pub exceptions: &'a E,
    pub mirror: &'a M,
    pub config: &'a Config,
    pub policy: &'a DomainPolicy,
    pub progress: &'a Progress,
    pub settings: Settings,
}

/// An account apply did not act on, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub account: AccountId,
    pub reason: String,
}

/// What apply did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ApplyReport {
    pub plan_hash: String,
    pub created: usize,
    pub linked: usize,
    /// Orgs changed by `update_many` (key set, mirrors, domains, tags).
    pub updated: usize,
    pub exceptions: usize,
    pub write_backs: usize,
    /// Finished by this run after an earlier run was interrupted.
    pub resumed: usize,
    /// Finished by an earlier run of this plan.
    pub already_applied: usize,
    /// Not eligible or refused by configuration: nothing to do.
    pub nothing_to_do: usize,
    /// State changed since the plan, or another account holds the org: not acted on.
    pub skipped: Vec<Skipped>,
    /// Acted on, but a system refused a step (the reason says which).
    pub failed: Vec<Skipped>,
}

/// A linked account on its way to the write-back.
struct Linked {
    account: AccountId,
    org: Organization,
    zendesk_changed: bool,
    decision: Decision,
    rule: Rule,
    evidence: Evidence,
}

/// An exception on its way to the review queue and the write-back.
struct Review {
    account: AccountId,
    finding: Finding,
    rule: Option<Rule>,
}

/// What the read phase found for the planned accounts.
#[derive(Default)]
struct Work {
    reviews: Vec<Review>,
    /// Links to act on: the entry as re-decided now (its update body is current).
    links: Vec<PlanEntry>,
    creates: Vec<PlanEntry>,
    /// Creates an earlier run may have sent: never `create_many` again.
    in_doubt: Vec<PlanEntry>,
    /// Creates whose org an earlier run reported.
    created_before: Vec<(PlanEntry, OrgId)>,
}

impl<C, L, E, M> Backfill<'_, C, L, E, M>
where
    C: ClaimStore,
    L: LinkStore,
    E: ExceptionStore,
    M: OrgMirror,
{
    /// Reads both systems and decides every account (a dry run: nothing is written).
    pub async fn plan(&self) -> Result<Plan, BackfillError> {
        let snap = snapshot::read(
            self.salesforce,
            self.zendesk,
            self.config.write_back().fields(),
            self.progress,
            |_| {},
        )
        .await?;
        let index = OrgIndex::new(snap.orgs);
        let last_written = self.last_written(snap.accounts.iter()).await?;
        let rules = self.rules(&last_written);
        self.progress.phase("deciding", snap.accounts.len() as u64);
        let entries = plan::decide_all(&rules, &index, &snap.accounts);
        self.progress.advance(snap.accounts.len() as u64);
        self.progress.finish_line();
        Ok(plan::plan(self.config, &now_iso(), index.len(), entries))
    }

    fn rules<'r>(&'r self, last_written: &'r HashMap<AccountId, Domain>) -> Rules<'r> {
        Rules {
            config: self.config,
            policy: self.policy,
            last_written,
        }
    }

    /// The reviewed domain orglink last wrote, for the accounts whose decision depends on it.
    async fn last_written<'x>(
        &self,
        accounts: impl Iterator<Item = &'x Account>,
    ) -> Result<HashMap<AccountId, Domain>, BackfillError> {
        let wanted: Vec<AccountId> = accounts
            .filter(|a| needs_last_written(self.policy, a))
            .map(|a| a.id.clone())
            .collect();
        // In bulk (BatchGetItem, 100 a request), not one read per account.
        let records: Vec<HashMap<AccountId, LinkRecord>> = stream::iter(wanted.chunks(LINK_READS))
            .map(|chunk| self.links.get_many(chunk))
            .buffer_unordered(self.settings.store_concurrency.max(1))
            .try_collect()
            .await?;
        Ok(records
            .into_iter()
            .flat_map(HashMap::into_values)
            .filter_map(|r| {
                let d = r
                    .written_salesforce
                    .get(LinkField::ZendeskDomain.api_name())
                    .and_then(|v| Domain::parse(v).ok())?;
                Some((r.account, d))
            })
            .collect())
    }

    /// Checks the plan against what the operator confirmed and this deployment.
    pub fn check(&self, file: &PlanFile, confirmed: &str) -> Result<(), BackfillError> {
        if file.plan.format != PLAN_FORMAT {
            return Err(BackfillError::UnknownFormat(file.plan.format.clone()));
        }
        let actual = file.plan.hash();
        if actual != file.hash {
            return Err(BackfillError::PlanAltered {
                recorded: file.hash.clone(),
                actual,
            });
        }
        if confirmed.trim() != file.hash {
            return Err(BackfillError::HashNotConfirmed {
                given: confirmed.trim().to_string(),
                actual: file.hash.clone(),
            });
        }
        let current = plan::plan(self.config, "", 0, Vec::new()).binding;
        if current != file.plan.binding {
            let show = |b: &BTreeMap<String, String>| {
                b.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(BackfillError::WrongDeployment {
                planned: show(&file.plan.binding),
                current: show(&current),
            });
        }
        if config_sha256(self.config) != file.plan.config_sha256 {
            return Err(BackfillError::ConfigChanged);
        }
        Ok(())
    }

    /// Applies a reviewed plan (see the module docs). `journal_path` holds the progress of
    /// this plan's applies; run again after an interruption to finish.
    pub async fn apply(
        &self,
        file: &PlanFile,
        confirmed: &str,
        journal_path: &Path,
    ) -> Result<ApplyReport, BackfillError> {
        self.check(file, confirmed)?;
        let (journal, prior) = Journal::open(journal_path, &file.hash, &now_iso())?;
        let journal = Mutex::new(journal);
        let mut report = ApplyReport {
            plan_hash: file.hash.clone(),
            ..ApplyReport::default()
        };

        // 2. Current state; the listing refreshes the mirror.
        let mut listed: Vec<MirroredOrg> = Vec::new();
        let snap = snapshot::read(
            self.salesforce,
            self.zendesk,
            self.config.write_back().fields(),
            self.progress,
            |page| listed.extend(page.iter().map(MirroredOrg::from)),
        )
        .await?;
        let index = OrgIndex::new(snap.orgs);
        let merged = merged_losers(&snap.accounts);
        let accounts: HashMap<AccountId, Account> = snap
            .accounts
            .into_iter()
            .map(|a| (a.id.clone(), a))
            .collect();
        let planned_accounts = file
            .plan
            .accounts
            .iter()
            .filter_map(|e| accounts.get(&e.account));
        let last_written = self.last_written(planned_accounts).await?;
        let rules = self.rules(&last_written);
        let work = sort_work(
            &file.plan,
            &prior,
            &rules,
            &index,
            &accounts,
            &merged,
            &mut report,
        );
        // What an earlier run claimed for an account it now skips would never expire: the
        // live worker releases only its link record's org.
        let stale: Vec<(AccountId, OrgId)> = report
            .skipped
            .iter()
            .filter_map(|s| Some((s.account.clone(), *prior.claimed.get(&s.account)?)))
            .collect();
        self.release_unlinked(stale).await?;

        let batches = AtomicUsize::new(0);
        let mirrored = Mutex::new(HashSet::new());
        let run = Run {
            bf: self,
            journal: &journal,
            batches: &batches,
            index: &index,
            accounts: &accounts,
            mirrored: &mirrored,
        };
        // 3. Exceptions.
        let mut reviews = work.reviews;
        // 4. Claims and org updates.
        let mut linked = run.link(work.links, &mut reviews, &mut report).await?;
        // 5. New orgs.
        linked.extend(
            run.create(
                work.creates,
                work.in_doubt,
                work.created_before,
                &mut reviews,
                &mut report,
            )
            .await?,
        );
        // 6. Rows, write-backs, link records, done.
        run.finish(&rules, linked, reviews, &mut report).await?;
        // The rest of the listing (the orgs written above are mirrored as written).
        let written = mirrored.into_inner().expect("mirror set lock");
        listed.retain(|o| !written.contains(&o.id));
        self.mirror_all(listed).await?;
        // The listing was read to its last page and is all in the mirror now: the live
        // worker may take the mirror's silence about a domain as "no such organization".
        self.mirror.mark_filled(MIRROR_FILLED_BY, now_ms()).await?;
        self.progress.finish_line();
        Ok(report)
    }

    /// Releases each account's claim on its org, only while the account holds it and its link
    /// record points elsewhere (a claim that backs a link stays).
    async fn release_unlinked(&self, claims: Vec<(AccountId, OrgId)>) -> Result<(), BackfillError> {
        if claims.is_empty() {
            return Ok(());
        }
        let accounts: Vec<AccountId> = claims.iter().map(|(a, _)| a.clone()).collect();
        let records: Vec<HashMap<AccountId, LinkRecord>> =
            stream::iter(accounts.chunks(LINK_READS))
                .map(|chunk| self.links.get_many(chunk))
                .buffer_unordered(self.settings.store_concurrency.max(1))
                .try_collect()
                .await?;
        let linked: HashMap<AccountId, Option<OrgId>> = records
            .into_iter()
            .flat_map(HashMap::into_values)
            .map(|r| (r.account, r.org))
            .collect();
        stream::iter(
            claims
                .iter()
                .filter(|(a, org)| linked.get(a).copied().flatten() != Some(*org)),
        )
        .map(|(a, org)| async move {
            self.claims.release(*org, a).await?;
            Ok::<_, BackfillError>(())
        })
        .buffer_unordered(self.settings.store_concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }

    /// Writes these orgs into the mirror, in chunks of [`MIRROR_WRITES`] (one bulk read of
    /// what the mirror holds of each chunk; only what changed is written).
    async fn mirror_all(&self, orgs: Vec<MirroredOrg>) -> Result<(), BackfillError> {
        self.progress
            .phase("refreshing the organization mirror", orgs.len() as u64);
        stream::iter(orgs.chunks(MIRROR_WRITES))
            .map(|chunk| async move {
                self.mirror.upsert_many(chunk).await?;
                self.progress.advance(chunk.len() as u64);
                Ok::<_, BackfillError>(())
            })
            .buffer_unordered(self.settings.store_concurrency.max(1).div_ceil(4))
            .try_collect::<Vec<()>>()
            .await?;
        self.progress.finish_line();
        Ok(())
    }
}

/// Link records read per bulk request (BatchGetItem's limit).
const LINK_READS: usize = 100;
/// Organizations per `OrgMirror::upsert_many` call (one BatchGetItem reads what the mirror
/// holds of them).
const MIRROR_WRITES: usize = 100;

/// Who the mirror's completeness marker names after an apply.
pub const MIRROR_FILLED_BY: &str = "backfill";

/// Sorts each planned account into what apply does with it now.
fn sort_work(
    plan: &Plan,
    prior: &JournalState,
    rules: &Rules<'_>,
    index: &OrgIndex,
    accounts: &HashMap<AccountId, Account>,
    merged: &HashMap<AccountId, Vec<AccountId>>,
    report: &mut ApplyReport,
) -> Work {
    let mut work = Work::default();
    let none: Vec<AccountId> = Vec::new();
    for entry in &plan.accounts {
        if matches!(
            entry.action,
            PlannedAction::NotEligible { .. } | PlannedAction::Refused { .. }
        ) {
            report.nothing_to_do += 1;
            continue;
        }
        if prior.done.contains(&entry.account) {
            report.already_applied += 1;
            continue;
        }
        let skip = |report: &mut ApplyReport, reason: String| {
            report.skipped.push(Skipped {
                account: entry.account.clone(),
                reason,
            })
        };
        let Some(account) = accounts.get(&entry.account) else {
            skip(report, "Salesforce no longer has the account".into());
            continue;
        };
        let current = decide_account(
            rules,
            index,
            account,
            merged.get(&entry.account).unwrap_or(&none),
        );
        if let Some(flight) = prior.in_flight.get(&entry.account) {
            report.resumed += 1;
            resume(entry, current, flight, index, &mut work, report);
            continue;
        }
        if current.fingerprint != entry.fingerprint {
            let reason = if current.action == entry.action {
                "its state changed since the plan (the decision would be the same: make a new plan to apply it)".to_string()
            } else {
                format!(
                    "its state changed since the plan: it was planned to {} and would now {}",
                    describe(&entry.action),
                    describe(&current.action)
                )
            };
            skip(report, reason);
            continue;
        }
        match &entry.action {
            PlannedAction::Exception { finding } => work.reviews.push(Review {
                account: entry.account.clone(),
                finding: finding.clone(),
                rule: entry.rule,
            }),
            PlannedAction::Link { org, .. } => {
                // The planned link, its update rebuilt from the org as read now: what orglink
                // adds is as reviewed, and anything support added since is kept.
                let mut link = entry.clone();
                if let (
                    PlannedAction::Link { update, .. },
                    PlannedAction::Link {
                        org: now,
                        update: current,
                        ..
                    },
                ) = (&mut link.action, &current.action)
                    && now == org
                {
                    update.clone_from(current);
                }
                work.links.push(link);
            }
            PlannedAction::Create { .. } => work.creates.push(entry.clone()),
            PlannedAction::NotEligible { .. } | PlannedAction::Refused { .. } => {}
        }
    }
    work
}

/// An account an earlier run started on: finish it from the current state.
fn resume(
    planned: &PlanEntry,
    current: PlanEntry,
    flight: &InFlight,
    index: &OrgIndex,
    work: &mut Work,
    report: &mut ApplyReport,
) {
    let keyed_to_it = |org: OrgId| {
        index
            .get(org)
            .is_some_and(|o| o.key().account() == Some(&planned.account))
    };
    match (&planned.action, &current.action, flight.kind) {
        // The org the earlier run created is in the listing: link it.
        (PlannedAction::Create { .. }, PlannedAction::Link { org, .. }, BatchKind::Create)
            if keyed_to_it(*org) =>
        {
            work.links.push(current);
        }
        // Only an account that would still get a new org is finished as a create: one that
        // is no longer eligible, or that a person or the worker linked or sent to review
        // meanwhile, keeps that state (the plan's body is stale for it).
        (PlannedAction::Create { .. }, PlannedAction::Create { .. }, BatchKind::Create) => {
            match flight.result {
                Some(Some(org)) if index.get(org).is_some() => {
                    work.created_before.push((planned.clone(), org));
                }
                // Not in the listing: look it up by key, else create keyed (never create_many).
                _ => work.in_doubt.push(planned.clone()),
            }
        }
        (
            PlannedAction::Link { org: want, .. },
            PlannedAction::Link { org, .. },
            BatchKind::Update,
        ) if want == org => work.links.push(current),
        _ => report.skipped.push(Skipped {
            account: planned.account.clone(),
            reason: format!(
                "an earlier apply started on it and it would now {}, not {} as planned",
                describe(&current.action),
                describe(&planned.action)
            ),
        }),
    }
}

fn describe(action: &PlannedAction) -> String {
    match action {
        PlannedAction::Create { body } => {
            format!("create {:?}", body["name"].as_str().unwrap_or_default())
        }
        PlannedAction::Link { org, .. } => format!("link organization {org}"),
        PlannedAction::Exception { finding } => format!("raise {}", finding.kind),
        PlannedAction::NotEligible { .. } => "do nothing (not eligible)".into(),
        PlannedAction::Refused { reason } => format!("do nothing ({reason})"),
    }
}

/// Batches as sent, with each item's organization (none when Zendesk refused it).
type Sent<T> = Vec<(Vec<T>, Vec<Option<OrgId>>)>;

/// One apply's shared state.
struct Run<'r, 'a, C, L, E, M> {
    bf: &'r Backfill<'a, C, L, E, M>,
    journal: &'r Mutex<Journal>,
    batches: &'r AtomicUsize,
    index: &'r OrgIndex,
    accounts: &'r HashMap<AccountId, Account>,
    /// Orgs already written to the mirror by this run.
    mirrored: &'r Mutex<HashSet<OrgId>>,
}

impl<C, L, E, M> Run<'_, '_, C, L, E, M>
where
    C: ClaimStore,
    L: LinkStore,
    E: ExceptionStore,
    M: OrgMirror,
{
    async fn mirror(&self, orgs: impl Iterator<Item = &Organization>) -> Result<(), BackfillError> {
        let rows: Vec<MirroredOrg> = orgs.map(MirroredOrg::from).collect();
        self.mirrored
            .lock()
            .expect("mirror set lock")
            .extend(rows.iter().map(|r| r.id));
        self.bf.mirror_all(rows).await
    }

    fn journal(&self, event: &JournalEvent) -> Result<(), BackfillError> {
        self.journal.lock().expect("journal lock").write(event)
    }

    /// Journals the claims about to be taken, so a rerun that skips one of these accounts can
    /// release them.
    fn journal_claims(
        &self,
        claims: impl Iterator<Item = (AccountId, OrgId)>,
    ) -> Result<(), BackfillError> {
        let claims: Vec<(AccountId, OrgId)> = claims.collect();
        for chunk in claims.chunks(500) {
            self.journal(&JournalEvent::Claiming {
                claims: chunk.to_vec(),
            })?;
        }
        Ok(())
    }

    /// Journals `submitting`, honours the fail points, runs `send`, journals the results.
    /// Results are matched to accounts by `index` (creates), or, given the orgs sent, by the
    /// `id` each result names (update successes carry no `index`: a position would be a guess).
    async fn batch<F, Fut>(
        &self,
        kind: BatchKind,
        accounts: Vec<AccountId>,
        sent: Option<Vec<OrgId>>,
        send: F,
    ) -> Result<Vec<Option<OrgId>>, BackfillError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Vec<crate::zendesk::JobItem>, BackfillError>>,
    {
        let n = self.batches.fetch_add(1, Ordering::SeqCst) + 1;
        let batch = format!(
            "{}{n}",
            match kind {
                BatchKind::Create => "c",
                BatchKind::Update => "u",
            }
        );
        self.journal(&JournalEvent::Submitting {
            batch: batch.clone(),
            kind,
            accounts: accounts.clone(),
        })?;
        if self.bf.settings.fail_point == Some(FailPoint::BeforeSubmit(n)) {
            return Err(BackfillError::Interrupted { batches: n - 1 });
        }
        let items = send().await?;
        if self.bf.settings.fail_point == Some(FailPoint::AfterSubmit(n)) {
            return Err(BackfillError::Interrupted { batches: n });
        }
        let results = match_results(items, accounts.len(), sent.as_deref());
        self.journal(&JournalEvent::Results {
            batch,
            orgs: accounts
                .iter()
                .cloned()
                .zip(results.iter().copied())
                .collect(),
        })?;
        self.bf.progress.advance(accounts.len() as u64);
        Ok(results)
    }

    /// Claims each org, then sends the updates. Returns the accounts now linked.
    async fn link(
        &self,
        entries: Vec<PlanEntry>,
        reviews: &mut Vec<Review>,
        report: &mut ApplyReport,
    ) -> Result<Vec<Linked>, BackfillError> {
        let bf = self.bf;
        bf.progress
            .phase("claiming organizations", entries.len() as u64);
        self.journal_claims(entries.iter().filter_map(|e| match &e.action {
            PlannedAction::Link { org, .. } => Some((e.account.clone(), *org)),
            _ => None,
        }))?;
        let now = now_ms();
        let outcomes: Vec<(PlanEntry, ClaimOutcome)> = stream::iter(entries)
            .map(|e| async move {
                let PlannedAction::Link { org, .. } = &e.action else {
                    unreachable!("only links are claimed")
                };
                let outcome = bf.claims.claim(*org, &e.account, now).await?;
                bf.progress.advance(1);
                Ok::<_, BackfillError>((e, outcome))
            })
            .buffer_unordered(bf.settings.store_concurrency.max(1))
            .try_collect()
            .await?;

        let mut ready = Vec::new();
        let mut updates: Vec<(PlanEntry, Value)> = Vec::new();
        for (e, outcome) in outcomes {
            let PlannedAction::Link { org, update, .. } = &e.action else {
                continue;
            };
            match outcome {
                ClaimOutcome::HeldBy(claim) => {
                    let finding = plan::contested(&e, *org, &[claim.account], self.index);
                    reviews.push(Review {
                        account: e.account.clone(),
                        finding,
                        rule: e.rule,
                    });
                }
                ClaimOutcome::Claimed => match update {
                    Some(body) => updates.push((e.clone(), body.clone())),
                    None => ready.push(self.linked(&e, *org, None)),
                },
            }
        }

        bf.progress
            .phase("updating organizations", updates.len() as u64);
        let chunks: Vec<Vec<(PlanEntry, Value)>> =
            updates.chunks(MANY_LIMIT).map(<[_]>::to_vec).collect();
        let done: Sent<(PlanEntry, Value)> = stream::iter(chunks)
            .map(|chunk| async move {
                let bodies: Vec<Value> = chunk.iter().map(|(_, b)| b.clone()).collect();
                let ids = chunk.iter().map(|(e, _)| e.account.clone()).collect();
                // Unique within the batch: each org was claimed for one account.
                let orgs = chunk
                    .iter()
                    .map(|(e, _)| match &e.action {
                        PlannedAction::Link { org, .. } => *org,
                        _ => unreachable!("only links are updated"),
                    })
                    .collect();
                let results = self
                    .batch(BatchKind::Update, ids, Some(orgs), || async move {
                        Ok(bf.zendesk.update_many(&bodies).await?)
                    })
                    .await?;
                Ok::<_, BackfillError>((chunk, results))
            })
            .buffer_unordered(bf.settings.jobs.max(1))
            .try_collect()
            .await?;
        let mut refused = Vec::new();
        for (chunk, results) in done {
            for ((e, body), result) in chunk.into_iter().zip(results) {
                let PlannedAction::Link { org, .. } = &e.action else {
                    continue;
                };
                if result.is_none() {
                    report.failed.push(Skipped {
                        account: e.account.clone(),
                        reason: format!("Zendesk refused the update of organization {org}"),
                    });
                    refused.push((e.account.clone(), *org));
                    continue;
                }
                report.updated += 1;
                ready.push(self.linked(&e, *org, Some(&body)));
            }
        }
        // An account already linked to the org keeps the claim that backs its link.
        bf.release_unlinked(refused).await?;
        self.mirror(ready.iter().map(|l| &l.org)).await?;
        Ok(ready)
    }

    fn linked(&self, e: &PlanEntry, org: OrgId, update: Option<&Value>) -> Linked {
        let mut current = self
            .index
            .get(org)
            .cloned()
            .unwrap_or_else(|| Organization {
                id: org,
                name: String::new(),
                external_id: Some(e.account.as_str().to_string()),
                domain_names: vec![],
                tags: vec![],
                organization_fields: BTreeMap::new(),
                updated_at: None,
            });
        if let Some(body) = update {
            apply_body(&mut current, body);
        }
        let key_change = match &e.action {
            PlannedAction::Link { key_change, .. } => key_change.clone(),
            _ => None,
        };
        Linked {
            account: e.account.clone(),
            org: current,
            zendesk_changed: update.is_some(),
            decision: Decision::Link { org, key_change },
            rule: e.rule.unwrap_or(Rule::KeyMatch),
            evidence: e.evidence.clone(),
        }
    }

    /// New organizations: `create_many` for the ones never sent, the in-doubt ones by lookup
    /// or keyed upsert.
    async fn create(
        &self,
        creates: Vec<PlanEntry>,
        mut in_doubt: Vec<PlanEntry>,
        created_before: Vec<(PlanEntry, OrgId)>,
        reviews: &mut Vec<Review>,
        report: &mut ApplyReport,
    ) -> Result<Vec<Linked>, BackfillError> {
        let bf = self.bf;
        let mut made: Vec<(PlanEntry, Organization)> = created_before
            .into_iter()
            .filter_map(|(e, org)| self.index.get(org).cloned().map(|o| (e, o)))
            .collect();
        bf.progress
            .phase("creating organizations", creates.len() as u64);
        let chunks: Vec<Vec<PlanEntry>> = creates.chunks(MANY_LIMIT).map(<[_]>::to_vec).collect();
        let done: Sent<PlanEntry> = stream::iter(chunks)
            .map(|chunk| async move {
                let bodies: Vec<Value> = chunk.iter().map(create_body).collect();
                let ids = chunk.iter().map(|e| e.account.clone()).collect();
                let results = self
                    .batch(BatchKind::Create, ids, None, || async move {
                        Ok(bf.zendesk.create_many(&bodies).await?)
                    })
                    .await?;
                Ok::<_, BackfillError>((chunk, results))
            })
            .buffer_unordered(bf.settings.jobs.max(1))
            .try_collect()
            .await?;
        for (chunk, results) in done {
            for (e, result) in chunk.into_iter().zip(results) {
                match result {
                    Some(id) => {
                        let mut org = Organization {
                            id,
                            name: String::new(),
                            external_id: None,
                            domain_names: vec![],
                            tags: vec![],
                            organization_fields: BTreeMap::new(),
                            updated_at: None,
                        };
                        apply_body(&mut org, &create_body(&e));
                        made.push((e, org));
                    }
                    // Most likely a live event created it meanwhile (duplicate external_id):
                    // look it up rather than guess.
                    None => in_doubt.push(e),
                }
            }
        }

        if !in_doubt.is_empty() {
            let keys: Vec<String> = in_doubt
                .iter()
                .map(|e| e.account.as_str().to_string())
                .collect();
            let found = bf.zendesk.show_many_by_external_ids(&keys).await?;
            for e in in_doubt {
                let keyed: Vec<&Organization> = found
                    .iter()
                    .filter(|o| o.key().account() == Some(&e.account))
                    .collect();
                match keyed.as_slice() {
                    [org] => made.push((e.clone(), (*org).clone())),
                    [] => match bf.zendesk.create_or_update(&create_body(&e)).await {
                        Ok(up) => made.push((e, up.organization)),
                        Err(err) => report.failed.push(Skipped {
                            account: e.account.clone(),
                            reason: format!("creating its organization failed: {err}"),
                        }),
                    },
                    several => {
                        let finding = Finding::new(
                            ExceptionKind::DuplicateExternalId,
                            [e.account.clone()],
                            several.iter().map(|o| o.id),
                        )
                        .with_evidence(e.evidence.clone().with("rule", Rule::DuplicateKey));
                        reviews.push(Review {
                            account: e.account.clone(),
                            finding,
                            rule: Some(Rule::DuplicateKey),
                        });
                    }
                }
            }
        }

        // The new orgs are this account's: claim them as the live path would.
        self.journal_claims(made.iter().map(|(e, org)| (e.account.clone(), org.id)))?;
        let now = now_ms();
        let claimed: Vec<(PlanEntry, Organization, ClaimOutcome)> = stream::iter(made)
            .map(|(e, org)| async move {
                let outcome = bf.claims.claim(org.id, &e.account, now).await?;
                Ok::<_, BackfillError>((e, org, outcome))
            })
            .buffer_unordered(bf.settings.store_concurrency.max(1))
            .try_collect()
            .await?;
        let mut linked = Vec::new();
        for (e, org, outcome) in claimed {
            if let ClaimOutcome::HeldBy(claim) = outcome {
                report.failed.push(Skipped {
                    account: e.account.clone(),
                    reason: format!(
                        "its new organization {} is claimed by account {}",
                        org.id, claim.account
                    ),
                });
                continue;
            }
            report.created += 1;
            linked.push(Linked {
                account: e.account.clone(),
                decision: Decision::Create {
                    name: org.name.clone(),
                },
                rule: e.rule.unwrap_or(Rule::CreateNew),
                evidence: e.evidence.clone(),
                zendesk_changed: true,
                org,
            });
        }
        let mirrored: Vec<MirroredOrg> = linked.iter().map(|l| MirroredOrg::from(&l.org)).collect();
        bf.mirror_all(mirrored).await?;
        Ok(linked)
    }

    /// Review rows, write-backs, link records, and `done` in the journal.
    async fn finish(
        &self,
        rules: &Rules<'_>,
        linked: Vec<Linked>,
        reviews: Vec<Review>,
        report: &mut ApplyReport,
    ) -> Result<(), BackfillError> {
        let bf = self.bf;
        let now = now_ms();
        let now_text = now_iso();

        bf.progress
            .phase("recording exceptions", reviews.len() as u64);
        let names = |f: &Finding| -> BTreeMap<String, String> {
            let mut names = BTreeMap::new();
            for a in &f.accounts {
                if let Some(acc) = self.accounts.get(a) {
                    names.insert(a.as_str().to_string(), acc.name.clone());
                }
            }
            for o in &f.orgs {
                if let Some(org) = self.index.get(*o) {
                    names.insert(o.to_string(), org.name.clone());
                }
            }
            names
        };
        stream::iter(&reviews)
            .map(|r| {
                let names = names(&r.finding);
                async move {
                    bf.exceptions.upsert(&r.finding, &names, now).await?;
                    bf.progress.advance(1);
                    Ok::<_, BackfillError>(())
                }
            })
            .buffer_unordered(bf.settings.store_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        report.exceptions += reviews.len();
        report.linked += linked
            .iter()
            .filter(|l| matches!(l.decision, Decision::Link { .. }))
            .count();

        // Write-backs, 200 to a call (the client chunks).
        let mut writes: Vec<(AccountId, AccountWrite)> = Vec::new();
        for l in &linked {
            if let Some(a) = self.accounts.get(&l.account)
                && let Some(w) =
                    plan::link_write_back(rules, a, l.org.id, l.zendesk_changed, &now_text)
            {
                writes.push((l.account.clone(), w));
            }
        }
        for r in &reviews {
            if let Some(a) = self.accounts.get(&r.account)
                && let Some(w) = plan::pending_review_write_back(rules, a, &now_text)
            {
                writes.push((r.account.clone(), w));
            }
        }
        bf.progress
            .phase("writing back to Salesforce", writes.len() as u64);
        let outcomes = bf.salesforce.update_links(&writes).await?;
        bf.progress.advance(writes.len() as u64);
        let mut written: HashMap<AccountId, &AccountWrite> = HashMap::new();
        let mut blocked = Vec::new();
        for ((id, write), outcome) in writes.iter().zip(&outcomes) {
            match &outcome.result {
                Ok(()) => {
                    written.insert(id.clone(), write);
                }
                Err(e) => {
                    let org = linked.iter().find(|l| &l.account == id).map(|l| l.org.id);
                    let mut evidence = Evidence::new();
                    evidence
                        .add("code", [e.code.as_str()])
                        .add("message", [e.message.as_str()])
                        .add("fields", e.fields.iter());
                    blocked.push(
                        Finding::new(ExceptionKind::WriteBackBlocked, [id.clone()], org)
                            .with_evidence(evidence),
                    );
                    report.failed.push(Skipped {
                        account: id.clone(),
                        reason: format!("Salesforce refused the write-back: {}", e.code),
                    });
                }
            }
        }
        report.write_backs += written.len();
        for f in &blocked {
            bf.exceptions.upsert(f, &names(f), now).await?;
        }

        // Link records, then done.
        bf.progress
            .phase("recording links", (linked.len() + reviews.len()) as u64);
        let records: Vec<LinkRecord> = linked
            .iter()
            .map(|l| {
                let mut r = self.record(&l.account, Some(l.org.id), written.get(&l.account), now);
                r.written_zendesk = WrittenOrg {
                    name: Some(l.org.name.clone()),
                    domains: l.org.domain_names.clone(),
                    tags: l.org.tags.clone(),
                    fields: l.org.organization_fields.clone(),
                };
                r.last_decision = Some(DecisionRecord {
                    decision: l.decision.clone(),
                    rule: l.rule,
                    evidence: l.evidence.clone(),
                    at_ms: now,
                });
                r
            })
            .chain(reviews.iter().map(|rv| {
                let mut r = self.record(&rv.account, None, written.get(&rv.account), now);
                r.last_decision = Some(DecisionRecord {
                    decision: Decision::Exception {
                        kind: rv.finding.kind,
                        orgs: rv.finding.orgs.clone(),
                    },
                    rule: rv.rule.unwrap_or(Rule::DuplicateKey),
                    evidence: rv.finding.evidence.clone(),
                    at_ms: now,
                });
                r
            }))
            .collect();
        stream::iter(&records)
            .map(|r| async move {
                bf.links.save(r).await?;
                bf.progress.advance(1);
                Ok::<_, BackfillError>(())
            })
            .buffer_unordered(bf.settings.store_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        for chunk in records.chunks(500) {
            self.journal(&JournalEvent::Done {
                accounts: chunk.iter().map(|r| r.account.clone()).collect(),
            })?;
        }
        Ok(())
    }

    fn record(
        &self,
        account: &AccountId,
        org: Option<OrgId>,
        written: Option<&&AccountWrite>,
        now: i64,
    ) -> LinkRecord {
        let mut r = LinkRecord::new(account.clone());
        r.org = org;
        r.synced_modstamp_ms = self
            .accounts
            .get(account)
            .and_then(|a| a.system_modstamp.as_deref())
            .and_then(modstamp_ms);
        if let Some(w) = written {
            r.written_salesforce = w
                .changes()
                .iter()
                .filter_map(|(f, v)| Some((f.api_name().to_string(), v.clone()?)))
                .collect();
        }
        r.updated_at_ms = now;
        r
    }
}

/// Each sent item's organization, none when Zendesk refused it or did not report it: by the
/// result's `index`, or, when the orgs sent are given (updates), by the `id` it names.
fn match_results(
    items: Vec<crate::zendesk::JobItem>,
    count: usize,
    sent: Option<&[OrgId]>,
) -> Vec<Option<OrgId>> {
    let mut results: Vec<Option<OrgId>> = vec![None; count];
    for item in items {
        let Ok(org) = item.result else { continue };
        let at = match sent {
            Some(orgs) => orgs.iter().position(|o| *o == org),
            None => Some(item.index),
        };
        if let Some(slot) = at.and_then(|i| results.get_mut(i)) {
            *slot = Some(org);
        }
    }
    results
}

fn create_body(e: &PlanEntry) -> Value {
    match &e.action {
        PlannedAction::Create { body } => body.clone(),
        _ => Value::Null,
    }
}

/// What an org holds after a create or update body (arrays are whole in both).
fn apply_body(org: &mut Organization, body: &Value) {
    if let Some(n) = body["name"].as_str() {
        org.name = n.to_string();
    }
    if let Some(k) = body["external_id"].as_str() {
        org.external_id = Some(k.to_string());
    }
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
    };
    if let Some(d) = strings(&body["domain_names"]) {
        org.domain_names = d;
    }
    if let Some(t) = strings(&body["tags"]) {
        org.tags = t;
    }
    if let Some(fields) = body["organization_fields"].as_object() {
        for (k, v) in fields {
            org.organization_fields.insert(k.clone(), v.clone());
        }
    }
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn now_iso() -> String {
    OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| OffsetDateTime::now_utc())
        .format(&Rfc3339)
        .expect("a timestamp formats")
}

/// `SystemModstamp` as epoch ms (`2024-03-05T10:20:30.000+0000`, or RFC 3339).
pub fn modstamp_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let fixed = match t.len().checked_sub(5).map(|i| t.split_at(i)) {
        Some((head, tail))
            if (tail.starts_with('+') || tail.starts_with('-'))
                && tail[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{head}{}:{}", &tail[..3], &tail[3..])
        }
        _ => t.to_string(),
    };
    OffsetDateTime::parse(&fixed, &Rfc3339)
        .ok()
        .map(|d| (d.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modstamps_read_in_salesforce_form_and_rfc3339() {
        assert_eq!(
            modstamp_ms("2024-03-05T10:20:30.000+0000"),
            Some(1_709_634_030_000)
        );
        assert_eq!(modstamp_ms("2024-03-05T10:20:30Z"), Some(1_709_634_030_000));
        assert_eq!(modstamp_ms("yesterday"), None);
    }

    #[test]
    fn update_results_are_matched_by_the_org_they_name() {
        use crate::zendesk::{JobItem, JobItemError};
        let org = |n| OrgId::new(n).unwrap();
        let ok = |index, n| JobItem {
            index,
            result: Ok(org(n)),
        };
        // Update successes carry no index: read by position, these would land on the wrong
        // accounts (the second one's result is missing, the third one's came second).
        let items = vec![
            ok(0, 11),
            ok(1, 33),
            JobItem {
                index: 2,
                result: Err(JobItemError {
                    error: "Missing".into(),
                    details: String::new(),
                    id: None,
                }),
            },
        ];
        let sent = [org(11), org(22), org(33)];
        assert_eq!(
            match_results(items.clone(), 3, Some(&sent)),
            [Some(org(11)), None, Some(org(33))]
        );
        // An id that was not sent is no account's result.
        assert_eq!(match_results(vec![ok(0, 99)], 1, Some(&sent[..1])), [None]);
        // Creates carry their index.
        assert_eq!(
            match_results(vec![ok(1, 7), ok(0, 5)], 2, None),
            [Some(org(5)), Some(org(7))]
        );
    }

    #[test]
    fn bodies_apply_as_zendesk_stores_them() {
        let mut org = Organization {
            id: OrgId::new(5).unwrap(),
            name: "Old".into(),
            external_id: None,
            domain_names: vec!["a.com".into()],
            tags: vec!["vip".into()],
            organization_fields: BTreeMap::new(),
            updated_at: None,
        };
        apply_body(
            &mut org,
            &serde_json::json!({"id": 5, "external_id": "001D000000IRFmaIAH",
                "domain_names": ["a.com", "b.com"], "organization_fields": {"x": "y"}}),
        );
        assert_eq!(org.name, "Old");
        assert_eq!(org.external_id.as_deref(), Some("001D000000IRFmaIAH"));
        assert_eq!(org.domain_names, ["a.com", "b.com"]);
        assert_eq!(org.tags, ["vip"]);
        assert_eq!(org.organization_fields["x"], "y");
    }
}
