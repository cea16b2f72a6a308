//! The reconciliation diff: every account that should be linked or holds a link, against every
//! organization, producing the review-queue findings, the report lines and the safe repairs.
//!
//! Pure: no I/O, no clock. The caller streams pages in, in this order (the types enforce it):
//!
//! 1. organizations, page by page ([`DiffBuilder::add_orgs`]), kept compactly (ids, keys,
//!    interned domains, names in one arena; never whole API records);
//! 2. accounts as [`AccountFacts`] ([`AccountDiff::add_accounts`]): the eligible ones and every
//!    account holding a link, deleted and merged ones included, plus, optionally, tickets
//!    ([`AccountDiff::add_tickets`]);
//! 3. the accounts that orgs are keyed to but the stream never showed
//!    ([`AccountDiff::accounts_to_look_up`]), looked up by the caller (`queryAll`) and fed in
//!    too ([`AccountFacts::purged`] for an id Salesforce no longer knows at all);
//! 4. [`AccountDiff::finish`] → [`DiffOutcome`].
//!
//! Every linking decision comes from [`resolve`], the one decision function. The one shortcut
//! is the overwhelmingly common consistent account (its stored org exists and is the only org
//! carrying its 18-character key): for it `resolve` can only answer "link the stored org,
//! rule key_match", whatever else is gathered, so the diff takes that answer without gathering
//! (a test checks the two agree). Each problem is reported once, even when both the account
//! side and the org side see it: findings are deduplicated by their identity (kind, accounts,
//! orgs, domain: what the fingerprint hashes), the account side's richer evidence kept.

mod account;
mod facts;
mod index;
mod org_side;
mod tickets;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::domain::Domain;
use crate::exceptions::{ExceptionKind, Finding, ReportKind, ReportLine};
use crate::ids::{AccountId, OrgId};
use crate::model::Organization;

pub use tickets::{DEFAULT_TICKET_HORIZON_DAYS, TicketCounts, horizon_start, latest_copies};

use account::{Outputs, consistent_link, decide, quiet, settle_keyless_links};
use index::{FxBuild, FxMap, OrgIndex, account_key};

/// What the diff needs to know about one account. The caller computes it from the Account
/// with the contract and the mapping (eligibility, the name orglink would use, the usable
/// reviewed domain), so the diff itself holds no configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountFacts {
    pub id: AccountId,
    pub is_deleted: bool,
    /// Set on the losers of a Salesforce merge: the account they were merged into.
    pub master_record_id: Option<AccountId>,
    /// Whether the account should have a linked organization (the contract's eligibility).
    pub eligible: bool,
    /// The organization name orglink would use (already cleaned by the mapping).
    pub name: String,
    /// The same name with the configured suffix, for when another account's org holds it.
    pub suffixed_name: String,
    /// The usable reviewed domain, if any (a consumer or shared-hosting domain is not usable).
    pub domain: Option<Domain>,
    /// The Website's domain, when a person set the reviewed domain and Website now disagrees
    /// with it (domain drift: reported, never an overwrite of the person's value).
    pub website_disagrees: Option<String>,
    /// Why the Website cannot be used (consumer mail, social, unparseable...): a data fix.
    pub unusable_website: Option<String>,
    /// `Zendesk_Org_ID__c` exactly as stored.
    pub stored_org_id: Option<String>,
}

impl AccountFacts {
    /// An account id an organization is keyed to that Salesforce no longer knows at all (a
    /// deleted account purged from the recycle bin): its organization is orphaned.
    pub fn purged(id: AccountId) -> Self {
        Self {
            id,
            is_deleted: true,
            master_record_id: None,
            eligible: false,
            name: String::new(),
            suffixed_name: String::new(),
            domain: None,
            website_disagrees: None,
            unusable_website: None,
            stored_org_id: None,
        }
    }

    /// Not deleted and not merged into another account.
    fn is_active(&self) -> bool {
        !self.is_deleted && self.master_record_id.is_none()
    }
}

/// One ticket's attribution: the org it sits on and the orgs its requester belongs to (at
/// least enough of them to settle the rule: a reader may stop at the ticket's own org).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketFacts {
    pub ticket: u64,
    pub org: OrgId,
    pub requester: u64,
    pub requester_orgs: Vec<OrgId>,
}

impl TicketFacts {
    /// The rule: a ticket is misattributed when its requester does not belong to its org.
    /// Callers that park tickets between invocations keep only these.
    pub fn misattributed(&self) -> bool {
        !self.requester_orgs.contains(&self.org)
    }
}

/// Settings of the diff itself (the contract's settings reach it through [`AccountFacts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffConfig {
    /// Domains treated as shared (lowercase): several orgs carrying one is not a collision.
    pub shared_domains: BTreeSet<String>,
    /// At most this many ticket and requester ids are kept as evidence per organization.
    pub evidence_sample: usize,
    /// Take the consistent-account shortcut. Off only to check that it changes nothing.
    pub fast_path: bool,
    /// Threads deciding accounts at `finish` (the outcome is the same for any number).
    pub threads: usize,
    /// About how many organizations will be fed in (last night's count, say), so the
    /// indexes are sized once instead of growing; 0 when unknown. Only speed depends on it.
    pub expected_orgs: usize,
}

impl Default for DiffConfig {
    fn default() -> Self {
        Self {
            shared_domains: BTreeSet::new(),
            evidence_sample: 20,
            fast_path: true,
            threads: 1,
            expected_orgs: 0,
        }
    }
}

/// Why a repair was queued. Each is something resolution (or the mirror rules) would do
/// without a person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RepairReason {
    /// No org matches: resolution creates one, with the key set at creation.
    CreateOrg,
    /// Salesforce holds no link (or a different one) while the org is linkable: write it back.
    WriteBackLink,
    /// The stored org is gone from Zendesk; resolution found a replacement or creates one.
    StoredOrgGone { org: OrgId },
    /// The stored id is not an organization id; resolution found or creates the org.
    StoredIdUnreadable,
    /// The org has no key: set it.
    SetKey,
    /// The org carries the 15-character key: rewrite it as 18 characters.
    UpgradeLegacyKey,
    /// The org belongs to an account merged into this one: relink it to the survivor.
    RelinkMergedOrg { merged: AccountId },
    /// The org's name is a stale mirror of the account's, and the new name is free.
    RenameOrg,
    /// The org lacks the reviewed domain, and no other org holds it.
    AddDomain,
}

/// A sync request for one account (the worker re-resolves it live).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repair {
    pub account: AccountId,
    /// The org resolution links; `None` when it creates one.
    pub org: Option<OrgId>,
    pub reasons: Vec<RepairReason>,
}

/// How much the diff saw and produced, for the run summary and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffCounts {
    pub orgs: usize,
    /// Org records that repeated an id (the first was kept).
    pub repeated_orgs: usize,
    pub accounts: usize,
    /// Account records that repeated an id (the first was kept).
    pub repeated_accounts: usize,
    /// Deleted or merged accounts (their orgs are checked for orphans).
    pub gone_accounts: usize,
    /// Accounts decided by the consistent-account shortcut.
    pub fast_path: usize,
    /// Accounts decided by gathering candidates and calling `resolve`.
    pub resolved: usize,
    pub tickets: usize,
    pub findings: BTreeMap<ExceptionKind, usize>,
    pub report: BTreeMap<ReportKind, usize>,
    pub repairs: usize,
    pub unseen_accounts: usize,
}

/// What the diff found besides the findings, when they are streamed
/// ([`AccountDiff::finish_into`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffSummary {
    /// Informational lines (data fixes, churned customers, missing links), sorted.
    pub report: Vec<ReportLine>,
    /// Safe repairs to enqueue, sorted by account.
    pub repairs: Vec<Repair>,
    /// Accounts organizations are keyed to that were never fed in; their orgs were not judged.
    pub unseen_accounts: Vec<AccountId>,
    pub counts: DiffCounts,
}

/// What the diff found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffOutcome {
    /// Review-queue findings, one per problem, sorted by kind, accounts, orgs and domain.
    pub findings: Vec<Finding>,
    /// Informational lines (data fixes, churned customers, missing links), sorted.
    pub report: Vec<ReportLine>,
    /// Safe repairs to enqueue, sorted by account.
    pub repairs: Vec<Repair>,
    /// Accounts organizations are keyed to that were never fed in; their orgs were not judged.
    pub unseen_accounts: Vec<AccountId>,
    pub counts: DiffCounts,
}

/// First phase: organizations.
#[derive(Debug)]
pub struct DiffBuilder {
    config: DiffConfig,
    index: OrgIndex,
}

impl DiffBuilder {
    pub fn new(config: DiffConfig) -> Self {
        Self {
            index: OrgIndex::with_capacity(config.expected_orgs),
            config,
        }
    }

    /// Ingests one page of organizations (any page size, any order).
    pub fn add_orgs<'a>(&mut self, page: impl IntoIterator<Item = &'a Organization>) {
        for org in page {
            self.index.add(org);
        }
    }

    /// Ends the organization phase: accounts may be judged against every org from now on.
    pub fn accounts(mut self) -> AccountDiff {
        self.index.seal();
        self.index.shrink_to_fit();
        let orgs = self.index.orgs.len();
        let counts = DiffCounts {
            orgs,
            repeated_orgs: self.index.repeated,
            ..DiffCounts::default()
        };
        AccountDiff {
            config: self.config,
            index: self.index,
            seen: HashSet::default(),
            pending: Vec::new(),
            gone: Vec::new(),
            tickets: FxMap::default(),
            claimed: vec![false; orgs],
            counts,
        }
    }
}

/// A deleted or merged account: only its orgs matter.
#[derive(Debug)]
struct GoneAccount {
    id: AccountId,
    stored: Option<OrgId>,
    merged_into: Option<AccountId>,
}

/// Tickets on one org whose requester does not belong to it.
#[derive(Debug, Default)]
struct Misattributed {
    count: u64,
    /// The smallest ids seen, so the sample does not depend on page order.
    tickets: Vec<u64>,
    requesters: Vec<u64>,
}

/// An active account decided at `finish`, with the org the shortcut found, if it applied.
#[derive(Debug)]
struct Pending {
    facts: AccountFacts,
    consistent: Option<u32>,
}

/// Accounts decided per thread per round: small enough to keep few findings in flight.
const BLOCK: usize = 4096;

/// Second phase: accounts (and tickets), then [`AccountDiff::finish`].
#[derive(Debug)]
pub struct AccountDiff {
    config: DiffConfig,
    index: OrgIndex,
    /// Accounts fed in so far, as [`account_key`]s.
    seen: HashSet<u128, FxBuild>,
    /// Active accounts with something to decide or say. They are decided at `finish`, once
    /// every merge is known (a merged-away account may come after its survivor), in account
    /// order, so findings stream out in an order that does not depend on the pages.
    pending: Vec<Pending>,
    gone: Vec<GoneAccount>,
    tickets: FxMap<OrgId, Misattributed>,
    /// Orgs an active account links to (or will, once its repair runs): not orphans.
    claimed: Vec<bool>,
    counts: DiffCounts,
}

impl AccountDiff {
    /// Ingests one page of accounts (any page size, any order). A repeated id keeps the first.
    pub fn add_accounts(&mut self, page: impl IntoIterator<Item = AccountFacts>) {
        for facts in page {
            self.add_account(facts);
        }
    }

    pub fn add_account(&mut self, facts: AccountFacts) {
        if !self.seen.insert(account_key(&facts.id)) {
            self.counts.repeated_accounts += 1;
            return;
        }
        self.counts.accounts += 1;
        if !facts.is_active() {
            self.counts.gone_accounts += 1;
            self.gone.push(GoneAccount {
                stored: facts
                    .stored_org_id
                    .as_deref()
                    .and_then(|s| OrgId::parse(s).ok()),
                id: facts.id,
                merged_into: facts.master_record_id,
            });
            return;
        }
        let consistent = if self.config.fast_path {
            consistent_link(&self.index, &facts)
        } else {
            None
        };
        if let Some(org) = consistent {
            self.counts.fast_path += 1;
            if quiet(&self.index, &facts, org) {
                self.claimed[org as usize] = true;
                return;
            }
        }
        self.pending.push(Pending { facts, consistent });
    }

    /// Ingests one page of ticket attributions.
    pub fn add_tickets<'a>(&mut self, page: impl IntoIterator<Item = &'a TicketFacts>) {
        let limit = self.config.evidence_sample;
        for t in page {
            self.counts.tickets += 1;
            if !t.misattributed() {
                continue;
            }
            let m = self.tickets.entry(t.org).or_default();
            m.count += 1;
            keep_smallest(&mut m.tickets, t.ticket, limit);
            keep_smallest(&mut m.requesters, t.requester, limit);
        }
    }

    /// Accounts organizations are keyed to that the stream has not shown yet, sorted. The
    /// caller looks them up (`queryAll`, so deleted ones come back) and feeds them in before
    /// [`AccountDiff::finish`].
    pub fn accounts_to_look_up(&self) -> Vec<AccountId> {
        let mut ids: Vec<AccountId> = self
            .index
            .keys
            .iter()
            .filter(|k| !self.seen.contains(&account_key(&k.account)))
            .map(|k| k.account.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Decides every account still open, runs the org-side checks and returns everything,
    /// findings sorted by kind, accounts, orgs and domain.
    pub fn finish(self) -> DiffOutcome {
        let mut findings = Vec::new();
        let summary = self.finish_into(&mut |f| findings.push(f));
        findings.sort_by(|a, b| {
            (a.kind, &a.accounts, &a.orgs, &a.domain)
                .cmp(&(b.kind, &b.accounts, &b.orgs, &b.domain))
                .then_with(|| a.evidence.iter().cmp(b.evidence.iter()))
        });
        DiffOutcome {
            findings,
            report: summary.report,
            repairs: summary.repairs,
            unseen_accounts: summary.unseen_accounts,
            counts: summary.counts,
        }
    }

    /// Like [`AccountDiff::finish`], but hands each finding to `emit` as soon as it is made
    /// instead of holding them all (a night with half a million findings would hold about a
    /// gigabyte). They come in a fixed order: account-side findings by account, then orphaned
    /// orgs, shared keys, shared domains and misattributed tickets.
    pub fn finish_into(mut self, emit: &mut dyn FnMut(Finding)) -> DiffSummary {
        let mut sink = Collected {
            emit,
            finding_counts: BTreeMap::new(),
            report: Vec::new(),
            repairs: Vec::new(),
            keyless: Vec::new(),
        };

        let gone_ids: HashSet<u128, FxBuild> =
            self.gone.iter().map(|g| account_key(&g.id)).collect();
        // Key slots of accounts decided here: their shared keys are `resolve`'s finding.
        let mut decided_slots = Vec::with_capacity(self.index.keys.len());
        let mut unseen_accounts = Vec::new();
        for k in &self.index.keys {
            let key = account_key(&k.account);
            let seen = self.seen.contains(&key);
            if !seen {
                unseen_accounts.push(k.account.clone());
            }
            decided_slots.push(seen && !gone_ids.contains(&key));
        }
        unseen_accounts.sort();
        drop(gone_ids);
        self.seen = HashSet::default();

        let mut merged: FxMap<u128, Vec<AccountId>> = FxMap::default();
        for g in &self.gone {
            if let Some(winner) = &g.merged_into {
                merged
                    .entry(account_key(winner))
                    .or_default()
                    .push(g.id.clone());
            }
        }
        for losers in merged.values_mut() {
            losers.sort();
        }

        let pending = sorted_by_account(std::mem::take(&mut self.pending));
        let threads = self.config.threads.max(1);
        let no_losers: &[AccountId] = &[];
        // One output buffer per thread, drained after each round and reused: dropping and
        // regrowing them every round made the allocator consolidate its free lists each time.
        let mut outs: Vec<Outputs> = (0..threads).map(|_| Outputs::default()).collect();
        let decide_block =
            |index: &OrgIndex, start: usize, block: &[Pending], out: &mut Outputs| {
                for (i, p) in block.iter().enumerate() {
                    let losers = if merged.is_empty() {
                        no_losers
                    } else {
                        merged
                            .get(&account_key(&p.facts.id))
                            .map_or(no_losers, Vec::as_slice)
                    };
                    decide(index, &p.facts, start + i, p.consistent, losers, out);
                }
            };
        for (round, accounts) in pending.chunks(BLOCK * threads).enumerate() {
            let start = round * BLOCK * threads;
            if threads == 1 {
                decide_block(&self.index, start, accounts, &mut outs[0]);
                sink.absorb(&mut outs[0], &mut self.claimed, &mut self.counts);
                continue;
            }
            let index = &self.index;
            let decide_block = &decide_block;
            let per_thread = accounts.len().div_ceil(threads);
            std::thread::scope(|s| {
                for ((k, block), out) in accounts.chunks(per_thread).enumerate().zip(&mut outs) {
                    s.spawn(move || decide_block(index, start + k * per_thread, block, out));
                }
            });
            for out in &mut outs {
                sink.absorb(out, &mut self.claimed, &mut self.counts);
            }
        }
        drop(outs);
        let accounts: Vec<AccountFacts> = pending.into_iter().map(|p| p.facts).collect();
        let mut out = Outputs::default();
        let keyless = std::mem::take(&mut sink.keyless);
        settle_keyless_links(&self.index, &accounts, keyless, &mut out);
        sink.absorb(&mut out, &mut self.claimed, &mut self.counts);
        drop(accounts);

        let mut emit = |f: Finding| sink.emit(f);
        self.gone.sort_by(|a, b| a.id.cmp(&b.id));
        org_side::orphaned_orgs(&self.index, &self.gone, &self.claimed, &mut emit);
        let decided = |account: &AccountId| {
            self.index
                .key_slot_of(account)
                .is_some_and(|s| decided_slots[s as usize])
        };
        org_side::shared_keys(&self.index, &decided, &mut emit);
        org_side::shared_domains(&self.index, &self.config, &mut emit);
        let tickets = std::mem::take(&mut self.tickets);
        org_side::misattributed_tickets(&self.index, tickets, &mut emit);

        let Collected {
            finding_counts,
            mut report,
            mut repairs,
            ..
        } = sink;
        report.sort_by(|a, b| {
            (a.kind, &a.account, a.org, &a.detail).cmp(&(b.kind, &b.account, b.org, &b.detail))
        });
        repairs.sort_by(|a, b| a.account.cmp(&b.account));
        let mut counts = self.counts;
        counts.findings = finding_counts;
        for r in &report {
            *counts.report.entry(r.kind).or_default() += 1;
        }
        counts.repairs = repairs.len();
        counts.unseen_accounts = unseen_accounts.len();
        DiffSummary {
            report,
            repairs,
            unseen_accounts,
            counts,
        }
    }
}

/// Where decided accounts' outputs go, in account order.
struct Collected<'e> {
    emit: &'e mut dyn FnMut(Finding),
    finding_counts: BTreeMap<ExceptionKind, usize>,
    report: Vec<ReportLine>,
    repairs: Vec<Repair>,
    keyless: Vec<account::KeylessLink>,
}

impl Collected<'_> {
    fn emit(&mut self, finding: Finding) {
        *self.finding_counts.entry(finding.kind).or_default() += 1;
        (self.emit)(finding);
    }

    /// Takes what `out` holds, leaving it empty (its buffers kept for the next round).
    fn absorb(&mut self, out: &mut Outputs, claimed: &mut [bool], counts: &mut DiffCounts) {
        for f in out.findings.drain(..) {
            self.emit(f);
        }
        self.report.append(&mut out.report);
        self.repairs.append(&mut out.repairs);
        self.keyless.append(&mut out.keyless);
        for org in out.claimed.drain(..) {
            claimed[org as usize] = true;
        }
        counts.resolved += std::mem::take(&mut out.resolved);
    }
}

/// Sorts by account id through a small key array, then moves each record once, in place:
/// moving the records around in the sort itself costs more than the comparisons.
fn sorted_by_account(mut pending: Vec<Pending>) -> Vec<Pending> {
    let mut order: Vec<(u128, u32)> = pending
        .iter()
        .enumerate()
        .map(|(i, p)| (account_key(&p.facts.id), i as u32))
        .collect();
    order.sort_unstable();
    // from[k]: where the record that belongs at position k is now.
    let mut from: Vec<u32> = order.into_iter().map(|(_, i)| i).collect();
    for start in 0..from.len() {
        let mut k = start;
        while from[k] as usize != k {
            let src = from[k] as usize;
            from[k] = k as u32;
            if src == start {
                break;
            }
            pending.swap(k, src);
            k = src;
        }
    }
    pending
}

/// Keeps the `limit` smallest distinct values, sorted.
fn keep_smallest(values: &mut Vec<u64>, v: u64, limit: usize) {
    if let Err(pos) = values.binary_search(&v)
        && pos < limit
    {
        values.insert(pos, v);
        values.truncate(limit);
    }
}

#[cfg(test)]
mod tests;
