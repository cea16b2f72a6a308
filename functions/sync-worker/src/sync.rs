//! One sync request, end to end.
//!
//! 1. Idempotency (Powertools semantics): a completed record means the message was handled
//!    (deduplicated); a live in-progress one means another invocation holds it (retry later).
//! 2. Coalescing: an event at or before the link record's synced `SystemModstamp` is covered.
//! 3. A fresh read of the account (the event is only a hint) and, in the same query, of the
//!    accounts Salesforce merged into it.
//! 4. Eligibility and the reviewed domain (provenance rule).
//! 5. Candidates, live from Zendesk: the stored id and the key (`show_many` by external ids,
//!    both id forms and the merged accounts' ids, read from Zendesk's database, never the
//!    lagging search index); the domain from the org mirror, confirmed with `show_many` by ids;
//!    the name by search, only when the decision would otherwise be to create.
//!    Until the mirror's completeness marker exists (a full listing was read into it), its
//!    silence proves nothing: a decision that rests on no organization carrying the domain
//!    (create, or link the one keyless org the mirror knows) is held — retried later, an
//!    exception `mirror_not_filled` once the streak is past the give-up window — and no
//!    domain is added to a linked org.
//! 6. [`resolve`], then: an exception is upserted by fingerprint; a link by domain first
//!    checks that no other account's `Zendesk_Org_ID__c` names the org (one query); a link
//!    claims the org (conditional write; a merged-away account's claim moves over) and
//!    updates only what changed; a create goes through
//!    `create_or_update` keyed on external_id, so a retried or crashed create finds its org,
//!    and adds the domain and tags add-only afterwards.
//! 7. The write-back (only link fields whose value changes), the mirror, the link record.
//!
//! A failure is transient (retry later, counted in the link record, an exception once the
//! streak is past the configured attempts and time) or permanent (an exception now).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use orglink_shared::aws::links::{DecisionRecord, WrittenOrg};
use orglink_shared::aws::mirror::MirroredOrg;
use orglink_shared::aws::{
    Begin, ClaimOutcome, ClaimStore, ExceptionStore, IdempotencyKey, IdempotencyStore, LinkRecord,
    LinkStore, OrgMirror, StoreError,
};
use orglink_shared::contract::{
    AccountWrite, DesiredLink, DomainDecision, Eligibility, EventKind, Intent, LinkField,
    SyncStatus,
};
use orglink_shared::domain::Domain;
use orglink_shared::exceptions::{Action as ReviewAction, Evidence, ExceptionKind, Finding};
use orglink_shared::http::Disposition;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::mapping::{DomainAvailability, NameChoice};
use orglink_shared::model::{Account, OrgKey, Organization};
use orglink_shared::resolution::{
    Decision, Resolution, ResolutionInput, Rule, StoredLink, resolve,
};
use orglink_shared::salesforce::SalesforceError;
use orglink_shared::sync_request::{RequestSource, SyncRequest};
use orglink_shared::zendesk::{ZendeskError, candidates};

use crate::outcome::{Action, Outcome};
use crate::{CrashPoint, FUNCTION_NAME, Ports, Worker};

/// What one message comes to, for the batch handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageResult {
    /// Finished: delete the message.
    Done(Outcome),
    /// Try again later: keep the message, hidden for `after_secs`.
    Retry { after_secs: u32, reason: String },
    /// The invocation must fail as a crash would (an injected crash, or a store refusing a
    /// request: a deployment defect). Repeated crashes take the message to the dead-letter queue.
    Crash { reason: String },
}

/// Why a sync step failed. Each variant's [`SyncError::failure`] says what happens next.
#[derive(Debug, Error)]
pub enum SyncError {
    #[error(transparent)]
    Zendesk(#[from] ZendeskError),
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Salesforce refused this account's link fields (validation rule, lock, permission).
    #[error("Salesforce refused the link fields ({code}): {message}")]
    WriteBack {
        code: String,
        message: String,
        transient: bool,
    },
    #[error("injected crash at {0:?}")]
    Crash(CrashPoint),
    /// The decision rests on the org mirror showing no (other) organization with the domain,
    /// and no full listing has ever been read into it: creating now could duplicate a legacy
    /// organization. Retried; an exception once the give-up window has passed.
    #[error(
        "organization mirror not yet filled: run a full reconcile or backfill (the account's domain {domain} cannot be looked up yet; nothing was created)"
    )]
    MirrorNotFilled { domain: String },
}

/// What a failure means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Transient {
        after: Option<Duration>,
        reason: String,
    },
    Permanent {
        kind: ExceptionKind,
        reason: String,
    },
    Crash {
        reason: String,
    },
}

impl SyncError {
    pub fn failure(&self) -> Failure {
        let reason = self.to_string();
        let from = |d: Disposition, kind| match d {
            Disposition::Retry { after } => Failure::Transient {
                after,
                reason: reason.clone(),
            },
            Disposition::Review { .. } | Disposition::GiveUp { .. } => Failure::Permanent {
                kind,
                reason: reason.clone(),
            },
        };
        match self {
            // The org vanished between the read and the write: the next attempt resolves again.
            SyncError::Zendesk(ZendeskError::RecordNotFound { .. }) => Failure::Transient {
                after: None,
                reason,
            },
            // A name taken meanwhile (the search index lags): the next attempt sees the holder.
            SyncError::Zendesk(ZendeskError::DuplicateValue { .. }) => Failure::Transient {
                after: None,
                reason,
            },
            SyncError::Zendesk(e) => from(e.disposition(), ExceptionKind::SyncFailing),
            SyncError::Salesforce(e) => from(e.disposition(), ExceptionKind::SyncFailing),
            SyncError::Store(e) if e.is_transient() => Failure::Transient {
                after: None,
                reason,
            },
            SyncError::Store(_) | SyncError::Crash(_) => Failure::Crash { reason },
            SyncError::MirrorNotFilled { .. } => Failure::Transient {
                after: None,
                reason,
            },
            SyncError::WriteBack { transient, .. } => {
                if *transient {
                    Failure::Transient {
                        after: None,
                        reason,
                    }
                } else {
                    Failure::Permanent {
                        kind: ExceptionKind::WriteBackBlocked,
                        reason,
                    }
                }
            }
        }
    }

    /// The exception a transient streak ending in this failure becomes.
    fn streak_kind(&self) -> ExceptionKind {
        match self {
            SyncError::WriteBack { .. } => ExceptionKind::WriteBackBlocked,
            SyncError::MirrorNotFilled { .. } => ExceptionKind::MirrorNotFilled,
            _ => ExceptionKind::SyncFailing,
        }
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn now_iso() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Salesforce datetimes come as `2026-11-24T07:00:00.000+0000` (no colon in the offset),
/// which RFC 3339 refuses; both shapes are read.
pub fn modstamp_ms(text: &str) -> Option<i64> {
    let t = text.trim();
    let parsed = OffsetDateTime::parse(t, &Rfc3339).ok().or_else(|| {
        let (head, offset) = t.split_at(t.len().checked_sub(5)?);
        let colon = format!("{head}{}:{}", &offset[..3], &offset[3..]);
        OffsetDateTime::parse(&colon, &Rfc3339).ok()
    })?;
    Some((parsed.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Everything gathered about one account for one sync.
struct Gathered {
    account: Account,
    merged: Vec<AccountId>,
    eligibility: Eligibility,
    domain_decision: DomainDecision,
    domain: Option<Domain>,
    input: ResolutionInput,
    /// Whether the domain's candidates are all known: no usable domain, or the org mirror
    /// carries its completeness marker.
    domain_candidates_complete: bool,
    /// The org mirror's rows for the domain, as read for this sync (still in Zendesk).
    mirrored: Vec<MirroredOrg>,
}

impl<P: Ports> Worker<P> {
    /// Handles one parsed sync request; `body` is the message body (the idempotency payload).
    pub async fn handle_request(
        &self,
        req: &SyncRequest,
        body: &str,
        deadline_ms: i64,
    ) -> MessageResult {
        let s = &self.stores;
        let key = IdempotencyKey::new(FUNCTION_NAME, body.as_bytes());
        let now = now_ms();
        match s.idempotency.begin(&key, None, now, deadline_ms).await {
            Err(e) => return self.store_trouble(e),
            Ok(Begin::Completed { .. }) => return MessageResult::Done(Outcome::Deduplicated),
            Ok(Begin::InProgress { until_ms }) => {
                let wait = until_ms.map_or(1, |u| ((u - now).max(0) / 1000 + 1) as u32);
                return MessageResult::Retry {
                    after_secs: wait,
                    reason: "another invocation is processing this message".into(),
                };
            }
            // The key is the whole body's hash, so a different payload cannot share it.
            Ok(Begin::PayloadMismatch) => {
                return MessageResult::Done(Outcome::Ignored {
                    reason: "idempotency record holds a different payload".into(),
                });
            }
            Ok(Begin::Started) => {}
        }
        let result = self.sync(req, now).await;
        let outcome = match result {
            Ok(outcome) => outcome,
            Err(e) => match e.failure() {
                Failure::Crash { reason } => {
                    // An injected crash leaves the record in progress, as a dead process would;
                    // a store refusal releases it so the redelivery can run.
                    if !matches!(e, SyncError::Crash(_)) {
                        let _ = s.idempotency.abandon(&key).await;
                    }
                    return MessageResult::Crash { reason };
                }
                Failure::Transient { after, reason } => {
                    match self.transient(req, &e, after, &reason).await {
                        Ok(Some(outcome)) => outcome,
                        Ok(None) | Err(_) => {
                            let _ = s.idempotency.abandon(&key).await;
                            return MessageResult::Retry {
                                after_secs: self.last_backoff(req, after).await,
                                reason,
                            };
                        }
                    }
                }
                Failure::Permanent { kind, reason } => {
                    match self.give_up(req, kind, &reason, None).await {
                        Ok(outcome) => outcome,
                        Err(e2) => {
                            let _ = s.idempotency.abandon(&key).await;
                            return MessageResult::Retry {
                                after_secs: self.settings.backoff(1, None),
                                reason: e2.to_string(),
                            };
                        }
                    }
                }
            },
        };
        let data = serde_json::to_string(&outcome).expect("an outcome serializes");
        if let Err(e) = s.idempotency.complete(&key, &data, None, now_ms()).await {
            // The work is done; a redelivery would find everything in place and change nothing.
            tracing::warn!(error = %e, "could not mark the message complete");
        }
        MessageResult::Done(outcome)
    }

    fn store_trouble(&self, e: StoreError) -> MessageResult {
        if e.is_transient() {
            MessageResult::Retry {
                after_secs: self.settings.backoff(1, None),
                reason: e.to_string(),
            }
        } else {
            MessageResult::Crash {
                reason: e.to_string(),
            }
        }
    }

    async fn last_backoff(&self, req: &SyncRequest, after: Option<Duration>) -> u32 {
        let count = match self.stores.links.get(&req.account_id).await {
            Ok(Some(r)) => r.failures.count.max(1),
            _ => 1,
        };
        self.settings.backoff(count, after)
    }

    /// Counts a transient failure. `Some(outcome)` when the streak is past the configured
    /// attempts and time, so it became an exception; `None` to retry later.
    async fn transient(
        &self,
        req: &SyncRequest,
        error: &SyncError,
        _after: Option<Duration>,
        reason: &str,
    ) -> Result<Option<Outcome>, SyncError> {
        let now = now_ms();
        let streak = self
            .stores
            .links
            .record_failure(&req.account_id, reason, now)
            .await?;
        let failing_for = now - streak.first_at_ms.unwrap_or(now);
        let past_time = failing_for >= (self.settings.failing_after_secs as i64) * 1000;
        if streak.count < self.settings.max_attempts || !past_time {
            return Ok(None);
        }
        let kind = error.streak_kind();
        let mut evidence = Evidence::new();
        evidence.add("attempts", [streak.count]);
        evidence.add("failing_for_secs", [failing_for / 1000]);
        self.give_up(req, kind, reason, Some(evidence))
            .await
            .map(Some)
    }

    /// Turns a failure into an exception row and tells Salesforce through the status field
    /// (best effort: the failure may be Salesforce itself).
    async fn give_up(
        &self,
        req: &SyncRequest,
        kind: ExceptionKind,
        reason: &str,
        extra: Option<Evidence>,
    ) -> Result<Outcome, SyncError> {
        let now = now_ms();
        let account = &req.account_id;
        let record = self.stores.links.get(account).await?;
        let mut evidence = extra.unwrap_or_default();
        evidence.add("error", [reason]);
        evidence.add("event_kind", [req.kind.as_str()]);
        let finding = Finding::new(kind, [account.clone()], record.as_ref().and_then(|r| r.org))
            .with_evidence(evidence)
            .with_actions(vec![
                ReviewAction::Retry {
                    account: account.clone(),
                },
                ReviewAction::FixByHand,
            ]);
        let row = self
            .stores
            .exceptions
            .upsert(&finding, &BTreeMap::new(), now)
            .await?;
        let status = match kind {
            ExceptionKind::WriteBackBlocked => SyncStatus::WriteBackBlocked,
            // Waiting on someone to run a full reconcile or backfill.
            ExceptionKind::MirrorNotFilled => SyncStatus::PendingReview,
            _ => SyncStatus::SyncFailing,
        };
        if let Err(e) = self.write_status_only(account, status).await {
            tracing::warn!(account = %account, error = %e, "could not write the sync status");
        }
        tracing::warn!(
            account = %account,
            exception = kind.as_str(),
            fingerprint = %row.fingerprint,
            error = reason,
            "sync gave up: exception raised"
        );
        Ok(Outcome::Exception {
            kind,
            fingerprint: row.fingerprint,
            rule: None,
        })
    }

    /// Writes only `Zendesk_Sync_Status__c` (when it changes), reading the account first.
    async fn write_status_only(
        &self,
        account: &AccountId,
        status: SyncStatus,
    ) -> Result<(), SyncError> {
        let Some(acc) = self.salesforce.read_account(account).await? else {
            return Ok(());
        };
        let desired = DesiredLink {
            org_id: Intent::Leave,
            reviewed_domain: Intent::Leave,
            status: Intent::Set(status),
        };
        if let Some(w) = self
            .config
            .write_back()
            .account_write(&acc, &desired, false, &now_iso())
        {
            self.write_back(account, &w).await?;
        }
        Ok(())
    }

    async fn write_back(&self, account: &AccountId, write: &AccountWrite) -> Result<(), SyncError> {
        let outcomes = self
            .salesforce
            .update_links(&[(account.clone(), write.clone())])
            .await?;
        for o in outcomes {
            if let Err(e) = o.result {
                let transient = matches!(e.disposition(), Disposition::Retry { .. });
                return Err(SyncError::WriteBack {
                    code: e.code,
                    message: e.message,
                    transient,
                });
            }
        }
        Ok(())
    }

    fn crash_point(&self, point: CrashPoint, account: &AccountId) -> Result<(), SyncError> {
        match &self.crash_hook {
            Some(hook) if hook(point, account) => Err(SyncError::Crash(point)),
            _ => Ok(()),
        }
    }

    /// The sync itself (steps 2–7).
    async fn sync(&self, req: &SyncRequest, now: i64) -> Result<Outcome, SyncError> {
        let s = &self.stores;
        let account_id = &req.account_id;
        let lists = self.operator_lists(now).await?;
        if lists.is_ignored(account_id) {
            return Ok(Outcome::Ignored {
                reason: format!("account {account_id} is on the operator's ignored list"),
            });
        }
        let record = s
            .links
            .get(account_id)
            .await?
            .unwrap_or_else(|| LinkRecord::new(account_id.clone()));
        if let Some(at) = req.account_modstamp {
            let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64;
            if record.covers(at_ms) {
                return Ok(Outcome::Coalesced {
                    synced_modstamp_ms: record.synced_modstamp_ms.unwrap_or(at_ms),
                });
            }
        }
        let Some(g) = self.gather(req, &record).await? else {
            return Ok(Outcome::Ignored {
                reason: format!("Salesforce does not know account {account_id}"),
            });
        };
        let mut g = g;
        // A domain review called shared is no linking signal (and goes onto no organization).
        if g.domain.as_ref().is_some_and(|d| lists.is_shared(d)) {
            g.domain = None;
            g.input.domain = None;
        }
        g.domain_candidates_complete = g.domain.is_none() || self.mirror_filled(now).await?;
        let chosen = match self.operator_choice(req, &mut g).await? {
            Ok(chosen) => chosen,
            Err(outcome) => return Ok(outcome),
        };
        self.hold_without_full_mirror(req, &g)?;
        // Only a create needs the name; search reads a lagging index, so it is asked last.
        let mut resolution =
            candidates::resolve_with_name_search(&self.zendesk, &mut g.input).await?;
        if let Some(org) = chosen {
            resolution.evidence = resolution.evidence.with("operator_chose", org);
        }
        tracing::info!(
            account = %account_id,
            event_id = %req.event_id,
            rule = %resolution.rule,
            decision = ?resolution.decision,
            "resolved"
        );
        match resolution.decision.clone() {
            Decision::Exception { kind, .. } => {
                // An account that may not get an organization and has none: its collisions are
                // report lines for reconcile, not rows in the review queue.
                if g.input.stored == StoredLink::None
                    && let Err(ignored) =
                        self.config
                            .permits(req.kind, &g.eligibility, Action::Linked.into())
                    && !g.eligibility.is_eligible()
                {
                    return Ok(Outcome::Ignored {
                        reason: format!("{} ({} not raised)", ignored.reason, kind.as_str()),
                    });
                }
                let finding = resolution
                    .finding(&g.input)
                    .expect("an exception decision has a finding");
                self.exception(req, &g, record, &resolution, finding, kind, now)
                    .await
            }
            Decision::Link { org, .. } => self.link(req, &g, record, &resolution, org, now).await,
            Decision::Create { .. } => self.create(req, &g, record, &resolution, now).await,
        }
    }

    /// Holds the account (a transient failure) when the org mirror was never filled and the
    /// decision rests on it: a create, or a link to the one keyless org that carries the
    /// domain — with the full mirror, another org carrying the domain could have made it a
    /// link, a collision or an ambiguity. Key matches and the stored org decide before the
    /// domain step and go ahead. A decision this event may not act on anyway (not eligible,
    /// its kind may not create or relink) is left to be ignored as usual.
    fn hold_without_full_mirror(&self, req: &SyncRequest, g: &Gathered) -> Result<(), SyncError> {
        if g.domain_candidates_complete {
            return Ok(());
        }
        let rests_on_mirror = match resolve(&g.input).rule {
            Rule::CreateNew | Rule::CreateWithSuffixedName | Rule::NameHeldByKeylessOrg => {
                [Action::Created, Action::Linked].into_iter().any(|a| {
                    self.config
                        .permits(req.kind, &g.eligibility, a.into())
                        .is_ok()
                })
            }
            Rule::UniqueKeylessDomain => self
                .config
                .permits(req.kind, &g.eligibility, Action::Linked.into())
                .is_ok(),
            _ => false,
        };
        match (&g.domain, rests_on_mirror) {
            (Some(d), true) => Err(SyncError::MirrorNotFilled {
                domain: d.as_str().to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// An operator's manual request naming an organization (`orglink exceptions resolve` with
    /// "link to this organization") makes that organization the account's stored link for
    /// this resolution: the rules then link it (setting the key) unless that would be unsafe —
    /// it carries another account's key, or another organization carries this account's —
    /// which stays an exception. `Ok(Err(outcome))` when the organization is gone.
    async fn operator_choice(
        &self,
        req: &SyncRequest,
        g: &mut Gathered,
    ) -> Result<Result<Option<OrgId>, Outcome>, SyncError> {
        let chosen = match req.org_id {
            Some(org) if req.source == RequestSource::Operator && req.kind == EventKind::Manual => {
                org
            }
            _ => return Ok(Ok(None)),
        };
        let known = g.input.organizations().find(|o| o.id == chosen).cloned();
        let org = match known {
            Some(o) => o,
            None => match self.zendesk.show_many(&[chosen]).await?.into_iter().next() {
                Some(o) => o,
                None => {
                    return Ok(Err(Outcome::Ignored {
                        reason: format!(
                            "organization {chosen}, chosen by the operator, is gone from Zendesk"
                        ),
                    }));
                }
            },
        };
        g.input.stored = StoredLink::Found(org);
        Ok(Ok(Some(chosen)))
    }

    /// Steps 3–5: the fresh read and the candidates.
    async fn gather(
        &self,
        req: &SyncRequest,
        record: &LinkRecord,
    ) -> Result<Option<Gathered>, SyncError> {
        let id = &req.account_id;
        // The account and every account merged into it, in one query.
        let Some((account, merged)) = self.salesforce.account_with_merged(id).await? else {
            return Ok(None);
        };

        let eligibility = self.config.eligibility().evaluate(&account);
        let last_written = record
            .written_salesforce
            .get(LinkField::ZendeskDomain.api_name())
            .and_then(|d| Domain::parse(d).ok());
        let (domain_decision, domain) =
            candidates::lookup_domain(&self.policy, &account, last_written.as_ref());

        // The candidates, gathered as `orglink trace --live` gathers them (shared).
        let mirrored = match &domain {
            Some(d) => self.stores.mirror.by_domain(d.as_str()).await?,
            None => Vec::new(),
        };
        let domain_orgs: Vec<OrgId> = mirrored.iter().map(|m| m.id).collect();
        let found = candidates::gather(
            &self.zendesk,
            &candidates::CandidateKeys {
                account: id,
                merged: &merged,
                stored_org_id: account.stored_org_id.as_deref(),
                domain_orgs: &domain_orgs,
            },
        )
        .await?;
        for gone in &found.gone_from_mirror {
            // Gone from Zendesk: the mirror forgets it.
            self.stores.mirror.delete(*gone).await?;
        }
        let mirrored = mirrored
            .into_iter()
            .filter(|m| !found.gone_from_mirror.contains(&m.id))
            .collect();
        let (stored, live) = (found.stored, found.organizations);
        let mapping = self.config.mapping();
        let input = ResolutionInput {
            account: id.clone(),
            merged_accounts: merged.clone(),
            name: mapping.org_name(&account),
            suffixed_name: mapping.suffixed_org_name(&account),
            domain: domain.clone(),
            stored,
            candidates: live,
        };
        Ok(Some(Gathered {
            account,
            merged,
            eligibility,
            domain_decision,
            domain,
            input,
            domain_candidates_complete: true,
            mirrored,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn exception(
        &self,
        req: &SyncRequest,
        g: &Gathered,
        mut record: LinkRecord,
        resolution: &Resolution,
        finding: Finding,
        kind: ExceptionKind,
        now: i64,
    ) -> Result<Outcome, SyncError> {
        let row = self
            .stores
            .exceptions
            .upsert(&finding, &names(g), now)
            .await?;
        let desired = DesiredLink {
            org_id: Intent::Leave,
            reviewed_domain: Intent::Leave,
            status: Intent::Set(SyncStatus::PendingReview),
        };
        let write = self
            .config
            .write_back()
            .account_write(&g.account, &desired, false, &now_iso());
        if let Some(w) = &write {
            self.write_back(&g.account.id, w).await?;
            remember_written(&mut record, w);
        }
        self.save(g, record, resolution, now).await?;
        tracing::warn!(
            account = %g.account.id,
            event_id = %req.event_id,
            rule = %resolution.rule,
            exception = kind.as_str(),
            fingerprint = %row.fingerprint,
            "exception raised"
        );
        Ok(Outcome::Exception {
            kind,
            fingerprint: row.fingerprint,
            rule: Some(resolution.rule),
        })
    }

    /// Claims `org` for the account; `Err(outcome)` when another account holds it. A claim
    /// held by an account Salesforce merged into this one is this account's: it moves over
    /// (conditional on the loser still holding it).
    async fn claim(
        &self,
        req: &SyncRequest,
        g: &Gathered,
        record: &LinkRecord,
        resolution: &Resolution,
        org: OrgId,
        now: i64,
    ) -> Result<Result<(), Outcome>, SyncError> {
        let claims = &self.stores.claims;
        let mut outcome = claims.claim(org, &g.account.id, now).await?;
        if let ClaimOutcome::HeldBy(held) = &outcome
            && g.merged.contains(&held.account)
        {
            let merged = held.account.clone();
            outcome = claims.transfer(org, &merged, &g.account.id, now).await?;
            if outcome == ClaimOutcome::Claimed {
                tracing::info!(account = %g.account.id, org = %org, merged = %merged, "claim moved from a merged-away account");
            }
        }
        if let ClaimOutcome::HeldBy(held) = &outcome
            && self.stale_claim(g, held, now).await?
        {
            let stale = held.clone();
            outcome = claims.take_over(&stale, &g.account.id, now).await?;
            if outcome == ClaimOutcome::Claimed {
                tracing::warn!(account = %g.account.id, org = %org, stale_holder = %stale.account, claimed_at_ms = stale.claimed_at_ms, "stale claim taken over");
            }
        }
        match outcome {
            ClaimOutcome::Claimed => Ok(Ok(())),
            // Zendesk has no compare-and-set: the claim is what keeps a second account off an
            // organization another account is linking (or linked).
            ClaimOutcome::HeldBy(other) => self
                .held_elsewhere(
                    req,
                    g,
                    record,
                    resolution,
                    org,
                    other.account,
                    "claimed_by",
                    now,
                )
                .await
                .map(Err),
        }
    }

    /// Whether `held` is a leftover: its org is still keyless (no key write landed), the
    /// holder's link record does not point to it (its decision moved on, or it never got
    /// that far), and it is older than `stale_claim_after_secs` (no holder still on its way).
    /// Otherwise nothing would ever release it.
    async fn stale_claim(
        &self,
        g: &Gathered,
        held: &orglink_shared::aws::claims::Claim,
        now: i64,
    ) -> Result<bool, SyncError> {
        let age_ms = now - held.claimed_at_ms;
        if age_ms < (self.settings.stale_claim_after_secs as i64).saturating_mul(1000) {
            return Ok(false);
        }
        // As read for this sync; an org it did not read is not known to be keyless.
        let copies: Vec<&Organization> = g
            .input
            .organizations()
            .filter(|o| o.id == held.org)
            .collect();
        if copies.is_empty() || copies.iter().any(|o| o.key() != OrgKey::None) {
            return Ok(false);
        }
        let linked = self.stores.links.get(&held.account).await?;
        Ok(linked.and_then(|r| r.org) != Some(held.org))
    }

    /// The collision exception for an org another account holds (its claim, or its
    /// `Zendesk_Org_ID__c`): `domain_collision` when the link was by domain, `key_conflict`
    /// otherwise. `why` names the evidence: `claimed_by` or `stored_by`.
    #[allow(clippy::too_many_arguments)]
    async fn held_elsewhere(
        &self,
        req: &SyncRequest,
        g: &Gathered,
        record: &LinkRecord,
        resolution: &Resolution,
        org: OrgId,
        other: AccountId,
        why: &str,
        now: i64,
    ) -> Result<Outcome, SyncError> {
        let kind = if resolution.rule == Rule::UniqueKeylessDomain {
            ExceptionKind::DomainCollision
        } else {
            ExceptionKind::KeyConflict
        };
        let evidence = resolution
            .evidence
            .clone()
            .with("rule", resolution.rule)
            .with(why, other.as_str());
        let finding = Finding::new(kind, [g.account.id.clone(), other], [org])
            .with_domain(
                (kind == ExceptionKind::DomainCollision)
                    .then(|| g.domain.clone())
                    .flatten(),
            )
            .with_evidence(evidence)
            .with_actions(vec![
                ReviewAction::CreateNewOrg {
                    account: g.account.id.clone(),
                },
                ReviewAction::IgnoreAccount {
                    account: g.account.id.clone(),
                },
            ]);
        self.exception(req, g, record.clone(), resolution, finding, kind, now)
            .await
    }

    async fn link(
        &self,
        req: &SyncRequest,
        g: &Gathered,
        record: LinkRecord,
        resolution: &Resolution,
        org: OrgId,
        now: i64,
    ) -> Result<Outcome, SyncError> {
        let current = g
            .input
            .organizations()
            .find(|o| o.id == org)
            .cloned()
            .expect("resolution links only to an org it was given");
        // The key already names this account (or the account already points here): keeping
        // the link is an update; anything else moves the link.
        let action = if matches!(resolution.rule, Rule::KeyMatch | Rule::LegacyKeyMatch)
            || g.account.stored_org() == Some(org)
        {
            Action::Updated
        } else {
            Action::Linked
        };
        if let Err(ignored) = self.config.permits(req.kind, &g.eligibility, action.into()) {
            return Ok(Outcome::Ignored {
                reason: ignored.reason.to_string(),
            });
        }
        // A keyless org carrying the domain may still be another account's legacy link: its
        // `Zendesk_Org_ID__c` names it, and that account may not have synced (so no claim)
        // yet. One query, only for a link by domain.
        if resolution.rule == Rule::UniqueKeylessDomain
            && let Some(other) = self
                .salesforce
                .account_naming_org(org, &g.account.id)
                .await?
        {
            return self
                .held_elsewhere(req, g, &record, resolution, org, other, "stored_by", now)
                .await;
        }
        if let Err(outcome) = self.claim(req, g, &record, resolution, org, now).await? {
            return Ok(outcome);
        }
        let mapping = self.config.mapping();
        let choice = if current.name == g.input.suffixed_name {
            NameChoice::Suffixed
        } else {
            NameChoice::Plain
        };
        let desired = mapping.desired_org(
            &g.account,
            g.domain.as_ref(),
            availability(g, Some(org)),
            choice,
            &g.merged,
        );
        let update = match mapping.org_update(&current, &desired) {
            Ok(u) => u,
            Err(refused) => {
                let evidence = resolution
                    .evidence
                    .clone()
                    .with("rule", resolution.rule)
                    .with("refused", refused.to_string());
                let finding =
                    Finding::new(ExceptionKind::KeyConflict, [g.account.id.clone()], [org])
                        .with_evidence(evidence)
                        .with_actions(vec![ReviewAction::FixByHand]);
                return self
                    .exception(
                        req,
                        g,
                        record,
                        resolution,
                        finding,
                        ExceptionKind::KeyConflict,
                        now,
                    )
                    .await;
            }
        };
        let (after, zendesk_written, written) = match &update {
            None => (current, false, None),
            Some(u) => {
                let after = self.zendesk.update(org, &u.body()).await?;
                let written = WrittenOrg {
                    name: u.name().map(str::to_string),
                    domains: u.added_domains().to_vec(),
                    tags: u.added_tags().to_vec(),
                    fields: u.organization_fields().clone(),
                };
                (after, true, Some(written))
            }
        };
        self.crash_point(CrashPoint::AfterZendeskWrite, &g.account.id)?;
        self.finish(
            req,
            g,
            record,
            resolution,
            action,
            after,
            zendesk_written,
            written,
            now,
        )
        .await
    }

    async fn create(
        &self,
        req: &SyncRequest,
        g: &Gathered,
        record: LinkRecord,
        resolution: &Resolution,
        now: i64,
    ) -> Result<Outcome, SyncError> {
        if let Err(ignored) = self
            .config
            .permits(req.kind, &g.eligibility, Action::Created.into())
        {
            return Ok(Outcome::Ignored {
                reason: ignored.reason.to_string(),
            });
        }
        let choice = if resolution.rule == Rule::CreateWithSuffixedName {
            NameChoice::Suffixed
        } else {
            NameChoice::Plain
        };
        let desired = self.config.mapping().desired_org(
            &g.account,
            g.domain.as_ref(),
            availability(g, None),
            choice,
            &g.merged,
        );
        // Keyed on external_id and matched in Zendesk's database: a retried or crashed create
        // finds the org it made instead of making a second one. The arrays are left out of
        // this call: should it match an existing org after all (`show_many` may read a lagging
        // index, UNVERIFIED), Zendesk would replace that org's domains and tags wholesale. They
        // are added next, add-only, to whatever the org holds.
        let mut body = desired.create_body();
        if let Some(o) = body.as_object_mut() {
            o.remove("domain_names");
            o.remove("tags");
        }
        let upserted = self.zendesk.create_or_update(&body).await?;
        let mut org = upserted.organization;
        // Record the org as this account's before anything else can take it.
        if let Err(outcome) = self.claim(req, g, &record, resolution, org.id, now).await? {
            return Ok(outcome);
        }
        let mut written = WrittenOrg {
            name: Some(desired.name().to_string()),
            domains: Vec::new(),
            tags: Vec::new(),
            fields: desired.organization_fields().clone(),
        };
        let mapping = self.config.mapping();
        match mapping.org_update(&org, &desired) {
            Ok(Some(u)) => {
                org = self.zendesk.update(org.id, &u.body()).await?;
                written.domains = u.added_domains().to_vec();
                written.tags = u.added_tags().to_vec();
            }
            Ok(None) => {}
            // Keyed at creation to this account: nothing else can be refused.
            Err(refused) => {
                tracing::warn!(account = %g.account.id, error = %refused, "created org refused its update");
            }
        }
        self.crash_point(CrashPoint::AfterZendeskWrite, &g.account.id)?;
        self.finish(
            req,
            g,
            record,
            resolution,
            Action::Created,
            org,
            true,
            Some(written),
            now,
        )
        .await
    }

    /// Step 7: write-back, mirror, claim bookkeeping, link record.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        req: &SyncRequest,
        g: &Gathered,
        mut record: LinkRecord,
        resolution: &Resolution,
        action: Action,
        org: Organization,
        zendesk_written: bool,
        written: Option<WrittenOrg>,
        now: i64,
    ) -> Result<Outcome, SyncError> {
        let status = if g.eligibility.is_eligible() {
            SyncStatus::Linked
        } else {
            SyncStatus::NotEligible
        };
        let desired = DesiredLink {
            org_id: Intent::Set(org.id),
            reviewed_domain: g.domain_decision.intent(),
            status: Intent::Set(status),
        };
        let write = self.config.write_back().account_write(
            &g.account,
            &desired,
            zendesk_written,
            &now_iso(),
        );
        if let Some(w) = &write {
            self.write_back(&g.account.id, w).await?;
            remember_written(&mut record, w);
        }
        // Already-linked accounts mostly find their org in the mirror exactly as Zendesk has
        // it (read a moment ago for the domain's candidates): no write, and no read to compare.
        let row = MirroredOrg::from(&org);
        if !g.mirrored.contains(&row) {
            self.stores.mirror.upsert(&row).await?;
        }
        if let Some(old) = record.org
            && old != org.id
        {
            self.stores.claims.release(old, &g.account.id).await?;
        }
        record.org = Some(org.id);
        if let Some(w) = written {
            merge_written(&mut record.written_zendesk, w);
        }
        self.save(g, record, resolution, now).await?;
        tracing::info!(
            account = %g.account.id,
            event_id = %req.event_id,
            rule = %resolution.rule,
            org = %org.id,
            action = ?action,
            zendesk_written,
            salesforce_written = write.is_some(),
            "linked"
        );
        Ok(Outcome::Succeeded {
            org: org.id,
            rule: resolution.rule,
            action,
            zendesk_written,
            salesforce_written: write.is_some(),
        })
    }

    /// Saves the link record: the decision, the synced modstamp, a cleared failure streak.
    async fn save(
        &self,
        g: &Gathered,
        mut record: LinkRecord,
        resolution: &Resolution,
        now: i64,
    ) -> Result<(), SyncError> {
        record.synced_modstamp_ms = g
            .account
            .system_modstamp
            .as_deref()
            .and_then(modstamp_ms)
            .or(record.synced_modstamp_ms);
        record.failures = Default::default();
        record.last_decision = Some(DecisionRecord {
            decision: resolution.decision.clone(),
            rule: resolution.rule,
            evidence: resolution.evidence.clone(),
            at_ms: now,
        });
        record.updated_at_ms = now;
        self.stores.links.save(&record).await?;
        Ok(())
    }
}

/// Whether the reviewed domain may go onto `org`: not when another live org carries it.
fn availability(g: &Gathered, org: Option<OrgId>) -> DomainAvailability {
    let Some(d) = &g.domain else {
        return DomainAvailability::NotUsable;
    };
    // Unknown while the mirror was never filled: another org may carry it, and Zendesk would
    // then map users to whichever sorts first. Reconcile's add-domain repair adds it later.
    if !g.domain_candidates_complete {
        return DomainAvailability::HeldByAnotherOrg;
    }
    let held = g
        .input
        .candidates
        .iter()
        .filter(|o| Some(o.id) != org)
        .any(|o| {
            o.domain_names
                .iter()
                .any(|x| x.trim().eq_ignore_ascii_case(d.as_str()))
        });
    if held {
        DomainAvailability::HeldByAnotherOrg
    } else {
        DomainAvailability::Free
    }
}

/// Display names of the ids involved, for the reviewer.
fn names(g: &Gathered) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(g.account.id.as_str().to_string(), g.account.name.clone());
    for o in &g.input.candidates {
        out.insert(o.id.to_string(), o.name.clone());
    }
    if let StoredLink::Found(o) = &g.input.stored {
        out.insert(o.id.to_string(), o.name.clone());
    }
    out
}

/// What orglink wrote to Salesforce becomes the record's memory of it (the provenance rule
/// for `Zendesk_Domain__c` reads it back).
fn remember_written(record: &mut LinkRecord, write: &AccountWrite) {
    for (field, value) in write.changes() {
        match value {
            Some(v) => {
                record
                    .written_salesforce
                    .insert(field.api_name().to_string(), v.clone());
            }
            None => {
                record.written_salesforce.remove(field.api_name());
            }
        }
    }
}

fn merge_written(into: &mut WrittenOrg, w: WrittenOrg) {
    if w.name.is_some() {
        into.name = w.name;
    }
    for d in w.domains {
        if !into.domains.contains(&d) {
            into.domains.push(d);
        }
    }
    for t in w.tags {
        if !into.tags.contains(&t) {
            into.tags.push(t);
        }
    }
    into.fields.extend(w.fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_and_rfc3339_modstamps_read_alike() {
        let a = modstamp_ms("2026-11-24T07:00:00.000+0000").unwrap();
        let b = modstamp_ms("2026-11-24T07:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            modstamp_ms("2026-11-24T08:00:00.250+0100").unwrap(),
            a + 250
        );
        assert!(modstamp_ms("yesterday").is_none());
        assert!(modstamp_ms("").is_none());
    }
}
