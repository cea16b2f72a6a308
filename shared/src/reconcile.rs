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

mod index;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

use crate::domain::Domain;
use crate::exceptions::{Action, Evidence, ExceptionKind, Finding, ReportKind, ReportLine};
use crate::ids::{AccountId, OrgId};
use crate::model::Organization;
use crate::resolution::{Decision, KeyChange, ResolutionInput, Rule, StoredLink, resolve};

use index::{FxBuild, FxMap, Key, OrgIndex, domain_key};

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

/// One ticket's attribution: the org it sits on and the orgs its requester belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketFacts {
    pub ticket: u64,
    pub org: OrgId,
    pub requester: u64,
    pub requester_orgs: Vec<OrgId>,
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
}

impl Default for DiffConfig {
    fn default() -> Self {
        Self {
            shared_domains: BTreeSet::new(),
            evidence_sample: 20,
            fast_path: true,
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
            config,
            index: OrgIndex::default(),
        }
    }

    /// Ingests one page of organizations (any page size, any order).
    pub fn add_orgs<'a>(&mut self, page: impl IntoIterator<Item = &'a Organization>) {
        for org in page {
            self.index.add(org);
        }
    }

    /// Ends the organization phase: accounts may be judged against every org from now on.
    pub fn accounts(self) -> AccountDiff {
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
            deferred: Vec::new(),
            gone: Vec::new(),
            tickets: FxMap::default(),
            out: Outputs {
                claimed: vec![false; orgs],
                ..Outputs::default()
            },
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

/// Which side saw a finding; on a tie the account side's (richer) evidence is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Account,
    Org,
}

#[derive(Debug, Default)]
struct Outputs {
    findings: Vec<(Finding, Side)>,
    report: Vec<ReportLine>,
    repairs: Vec<Repair>,
    /// Orgs an active account links to (or will, once its repair runs): not orphans.
    claimed: Vec<bool>,
}

/// Second phase: accounts (and tickets), then [`AccountDiff::finish`].
#[derive(Debug)]
pub struct AccountDiff {
    config: DiffConfig,
    index: OrgIndex,
    seen: HashSet<AccountId, FxBuild>,
    /// Active accounts whose decision needs `resolve`, which needs to know every merge first
    /// (a merged-away account may come after its survivor).
    deferred: Vec<AccountFacts>,
    gone: Vec<GoneAccount>,
    tickets: FxMap<OrgId, Misattributed>,
    out: Outputs,
    counts: DiffCounts,
}

/// How the stored link compares with the org decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoredState {
    Same,
    Empty,
    Other,
    Gone(OrgId),
    Unreadable,
}

impl StoredState {
    fn of(stored: &StoredLink, linked: Option<OrgId>) -> Self {
        match stored {
            StoredLink::None => StoredState::Empty,
            StoredLink::Found(o) if Some(o.id) == linked => StoredState::Same,
            StoredLink::Found(_) => StoredState::Other,
            StoredLink::Gone(id) => StoredState::Gone(*id),
            StoredLink::Unreadable(_) => StoredState::Unreadable,
        }
    }

    fn reason(self) -> Option<RepairReason> {
        match self {
            StoredState::Same => None,
            StoredState::Empty | StoredState::Other => Some(RepairReason::WriteBackLink),
            StoredState::Gone(org) => Some(RepairReason::StoredOrgGone { org }),
            StoredState::Unreadable => Some(RepairReason::StoredIdUnreadable),
        }
    }
}

/// Where the reviewed domain stands on a linked org.
enum DomainGap {
    /// Carried, or nothing to carry.
    None,
    /// Missing and free: orglink adds it.
    Free,
    /// Missing and on orgs keyed to other accounts (or systems).
    OnOtherAccountsOrgs(Vec<u32>),
    /// Missing and on keyless orgs: a person decides.
    OnKeylessOrgs(Vec<u32>),
}

impl AccountDiff {
    /// Ingests one page of accounts (any page size, any order). A repeated id keeps the first.
    pub fn add_accounts(&mut self, page: impl IntoIterator<Item = AccountFacts>) {
        for facts in page {
            self.add_account(facts);
        }
    }

    pub fn add_account(&mut self, facts: AccountFacts) {
        if self.seen.contains(&facts.id) {
            self.counts.repeated_accounts += 1;
            return;
        }
        self.seen.insert(facts.id.clone());
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
        if self.config.fast_path
            && let Some(org) = consistent_link(&self.index, &facts)
        {
            self.counts.fast_path += 1;
            let gap = self.out.linked(
                &self.index,
                &facts,
                org,
                None,
                StoredState::Same,
                Rule::KeyMatch,
            );
            self.out.account_lines(&self.index, &facts, Some(org), gap);
            return;
        }
        self.deferred.push(facts);
    }

    /// Ingests one page of ticket attributions.
    pub fn add_tickets<'a>(&mut self, page: impl IntoIterator<Item = &'a TicketFacts>) {
        let limit = self.config.evidence_sample;
        for t in page {
            self.counts.tickets += 1;
            if t.requester_orgs.contains(&t.org) {
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
            .filter(|k| !self.seen.contains(&k.account))
            .map(|k| k.account.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Decides every account still open and runs the org-side checks.
    pub fn finish(mut self) -> DiffOutcome {
        let mut merged: FxMap<AccountId, Vec<AccountId>> = FxMap::default();
        for g in &self.gone {
            if let Some(winner) = &g.merged_into {
                merged.entry(winner.clone()).or_default().push(g.id.clone());
            }
        }
        for losers in merged.values_mut() {
            losers.sort();
        }

        let mut deferred = std::mem::take(&mut self.deferred);
        deferred.sort_by(|a, b| a.id.cmp(&b.id));
        // Links that set the key of a keyless org wait until every account is decided: two
        // accounts reaching for one keyless org is not safe for either.
        let mut keyless_links: Vec<KeylessLink> = Vec::new();
        for (i, facts) in deferred.iter().enumerate() {
            let losers = merged.get(&facts.id).map(Vec::as_slice).unwrap_or(&[]);
            let input = gather(&self.index, facts, losers);
            let resolution = resolve(&input);
            self.counts.resolved += 1;
            match &resolution.decision {
                Decision::Link { org, .. }
                    if !facts.eligible
                        && StoredState::of(&input.stored, Some(*org)) != StoredState::Same
                        && !matches!(resolution.rule, Rule::KeyMatch | Rule::LegacyKeyMatch) =>
                {
                    // Not eligible: it never gets a new link, and holds none to this org.
                    self.out
                        .account_lines(&self.index, facts, None, DomainGap::None);
                }
                Decision::Link {
                    org,
                    key_change: Some(KeyChange::Set),
                } => keyless_links.push(KeylessLink {
                    account: i,
                    org: self
                        .index
                        .org_idx(*org)
                        .expect("candidates come from the index"),
                    rule: resolution.rule,
                    stored: StoredState::of(&input.stored, Some(*org)),
                }),
                Decision::Link { org, key_change } => {
                    let idx = self
                        .index
                        .org_idx(*org)
                        .expect("candidates come from the index");
                    let gap = self.out.linked(
                        &self.index,
                        facts,
                        idx,
                        key_change.as_ref(),
                        StoredState::of(&input.stored, Some(*org)),
                        resolution.rule,
                    );
                    self.out.account_lines(&self.index, facts, Some(idx), gap);
                }
                Decision::Create { .. } => {
                    if facts.eligible {
                        let stored = StoredState::of(&input.stored, None);
                        self.out.will_create(facts, stored, resolution.rule);
                    }
                    self.out
                        .account_lines(&self.index, facts, None, DomainGap::None);
                }
                Decision::Exception { kind, .. } => {
                    // An account that is not eligible never gets a new org, so only the
                    // contradictions in links that already exist are its problems.
                    let contradiction = matches!(
                        kind,
                        ExceptionKind::DuplicateExternalId
                            | ExceptionKind::StoredLinkKeyDisagree
                            | ExceptionKind::KeyConflict
                    );
                    if (facts.eligible || contradiction)
                        && let Some(finding) = resolution.finding(&input)
                    {
                        self.out.findings.push((finding, Side::Account));
                    }
                    self.out
                        .account_lines(&self.index, facts, None, DomainGap::None);
                }
            }
        }
        self.settle_keyless_links(&deferred, keyless_links);
        drop(deferred);

        self.orphaned_orgs();
        self.shared_keys();
        self.shared_domains();
        self.misattributed_tickets();

        let unseen_accounts = self.accounts_to_look_up();
        let Outputs {
            mut findings,
            mut report,
            mut repairs,
            ..
        } = self.out;
        findings.sort_by(|(a, sa), (b, sb)| {
            same_problem(a, b)
                .then(sa.cmp(sb))
                .then_with(|| a.evidence.iter().cmp(b.evidence.iter()))
        });
        findings.dedup_by(|(b, _), (a, _)| same_problem(a, b) == Ordering::Equal);
        let findings: Vec<Finding> = findings.into_iter().map(|(f, _)| f).collect();
        report.sort_by(|a, b| {
            (a.kind, &a.account, a.org, &a.detail).cmp(&(b.kind, &b.account, b.org, &b.detail))
        });
        repairs.sort_by(|a, b| a.account.cmp(&b.account));

        let mut counts = self.counts;
        for f in &findings {
            *counts.findings.entry(f.kind).or_default() += 1;
        }
        for r in &report {
            *counts.report.entry(r.kind).or_default() += 1;
        }
        counts.repairs = repairs.len();
        counts.unseen_accounts = unseen_accounts.len();
        DiffOutcome {
            findings,
            report,
            repairs,
            unseen_accounts,
            counts,
        }
    }

    /// Decides the links that set a keyless org's key. One claimant per org links; when
    /// several reach for one org, the stored link outranks the domain match (resolution's own
    /// order), and claimants of equal rank all become findings.
    fn settle_keyless_links(&mut self, deferred: &[AccountFacts], mut links: Vec<KeylessLink>) {
        let rank = |rule: Rule| u8::from(rule != Rule::StoredOrgKeyless);
        links.sort_by_key(|l| (l.org, rank(l.rule), l.account));
        for group in links.chunk_by(|a, b| a.org == b.org) {
            let top = rank(group[0].rule);
            let winners = group.iter().filter(|l| rank(l.rule) == top).count();
            for (n, link) in group.iter().enumerate() {
                let facts = &deferred[link.account];
                if winners == 1 && n == 0 {
                    let gap = self.out.linked(
                        &self.index,
                        facts,
                        link.org,
                        Some(&KeyChange::Set),
                        link.stored,
                        link.rule,
                    );
                    self.out
                        .account_lines(&self.index, facts, Some(link.org), gap);
                    continue;
                }
                let others = group
                    .iter()
                    .filter(|o| o.account != link.account)
                    .map(|o| deferred[o.account].id.as_str());
                let org = self.index.org(link.org).id;
                let mut evidence = Evidence::new();
                evidence
                    .add("account", [facts.id.as_str()])
                    .add("org", [org])
                    .add("also_claimed_by", others)
                    .add("rule", [link.rule]);
                let finding = if link.rule == Rule::StoredOrgKeyless {
                    Finding::new(ExceptionKind::KeyConflict, [facts.id.clone()], [org])
                } else {
                    Finding::new(ExceptionKind::DomainCollision, [facts.id.clone()], [org])
                        .with_domain(facts.domain.clone())
                };
                let mut actions = vec![
                    Action::LinkToOrg {
                        account: facts.id.clone(),
                        org,
                    },
                    Action::CreateNewOrg {
                        account: facts.id.clone(),
                    },
                ];
                if let (ExceptionKind::DomainCollision, Some(d)) = (finding.kind, &facts.domain) {
                    actions.push(Action::TreatDomainAsShared { domain: d.clone() });
                }
                let finding = finding.with_evidence(evidence).with_actions(actions);
                if facts.eligible || finding.kind == ExceptionKind::KeyConflict {
                    self.out.findings.push((finding, Side::Account));
                }
                self.out
                    .account_lines(&self.index, facts, None, DomainGap::None);
            }
        }
    }

    /// Orgs of deleted and merged-away accounts that no active account links to.
    fn orphaned_orgs(&mut self) {
        let mut gone = std::mem::take(&mut self.gone);
        gone.sort_by(|a, b| a.id.cmp(&b.id));
        for g in &gone {
            let mut orgs: Vec<u32> = self.index.keyed_to(&g.id).collect();
            if let Some(stored) = g.stored.and_then(|s| self.index.org_idx(s)) {
                let key = self.index.org(stored).key;
                if key == Key::None || self.index.key_account(stored) == Some(&g.id) {
                    orgs.push(stored);
                }
            }
            orgs.sort_unstable();
            orgs.dedup();
            for idx in orgs {
                if self.out.claimed[idx as usize] {
                    continue;
                }
                let org = self.index.org(idx).id;
                let mut evidence = Evidence::new();
                evidence
                    .add("account", [g.id.as_str()])
                    .add("org", [org])
                    .add("org_name", [self.index.name(idx)]);
                if let Some(key) = self.index.external_id(idx) {
                    evidence.add("org_key", [key]);
                }
                if g.stored == Some(org) {
                    evidence.add("stored_on_account", [true]);
                }
                let mut actions = Vec::new();
                match &g.merged_into {
                    Some(winner) => {
                        evidence.add("account_merged_into", [winner.as_str()]);
                        actions.push(Action::LinkToOrg {
                            account: winner.clone(),
                            org,
                        });
                    }
                    None => {
                        evidence.add("account_deleted", [true]);
                    }
                }
                actions.push(Action::FixByHand);
                let finding = Finding::new(ExceptionKind::OrphanedOrg, [g.id.clone()], [org])
                    .with_evidence(evidence)
                    .with_actions(actions);
                self.out.findings.push((finding, Side::Org));
            }
        }
    }

    /// Org to org: several orgs carrying one account's key, whether or not any account holds
    /// a link.
    fn shared_keys(&mut self) {
        for slot in 0..self.index.keys.len() as u32 {
            let k = &self.index.keys[slot as usize];
            if k.count < 2 {
                continue;
            }
            let account = k.account.clone();
            let mut orgs: Vec<OrgId> = self
                .index
                .keyed(slot)
                .map(|i| self.index.org(i).id)
                .collect();
            orgs.sort();
            let mut evidence = Evidence::new();
            evidence
                .add("account", [account.as_str()])
                .add("keyed_orgs", orgs.iter())
                .add("rule", [Rule::DuplicateKey]);
            let mut actions: Vec<Action> = orgs
                .iter()
                .map(|&org| Action::LinkToOrg {
                    account: account.clone(),
                    org,
                })
                .collect();
            actions.push(Action::FixByHand);
            let finding = Finding::new(ExceptionKind::DuplicateExternalId, [account], orgs)
                .with_evidence(evidence)
                .with_actions(actions);
            self.out.findings.push((finding, Side::Org));
        }
    }

    /// Org to org: a domain on several orgs keyed to different accounts.
    fn shared_domains(&mut self) {
        for domain in 0..self.index.domain_count() as u32 {
            if self.index.carrier_count(domain) < 2 {
                continue;
            }
            let text = self.index.domain_str(domain);
            if self.config.shared_domains.contains(text) {
                continue;
            }
            let mut keyed: Vec<(AccountId, OrgId)> = Vec::new();
            let mut keyless: Vec<OrgId> = Vec::new();
            for idx in self.index.carriers(domain) {
                let org = self.index.org(idx).id;
                match self.index.key_account(idx) {
                    Some(a) => keyed.push((a.clone(), org)),
                    None => keyless.push(org),
                }
            }
            let accounts: BTreeSet<&AccountId> = keyed.iter().map(|(a, _)| a).collect();
            if accounts.len() < 2 {
                continue;
            }
            let mut evidence = Evidence::new();
            evidence
                .add("domain", [text])
                .add("domain_orgs", keyed.iter().map(|(_, o)| o))
                .add("domain_org_keys", accounts.iter());
            if !keyless.is_empty() {
                evidence.add("keyless_domain_orgs", keyless.iter());
            }
            // The finding names the domain only when the org's entry is already in the form
            // orglink uses (an entry like `www.acme.com` stays evidence only).
            let domain = Domain::parse(text).ok().filter(|d| d.as_str() == text);
            let mut actions = Vec::new();
            if let Some(d) = &domain {
                actions.push(Action::TreatDomainAsShared { domain: d.clone() });
            }
            actions.push(Action::FixByHand);
            let finding = Finding::new(
                ExceptionKind::DomainCollision,
                keyed.iter().map(|(a, _)| a.clone()),
                keyed.iter().map(|(_, o)| *o),
            )
            .with_domain(domain)
            .with_evidence(evidence)
            .with_actions(actions);
            self.out.findings.push((finding, Side::Org));
        }
    }

    /// One finding per org with tickets whose requester does not belong to it.
    fn misattributed_tickets(&mut self) {
        for (org, m) in std::mem::take(&mut self.tickets) {
            let idx = self.index.org_idx(org);
            let account = idx.and_then(|i| self.index.key_account(i)).cloned();
            let mut evidence = Evidence::new();
            evidence
                .add("org", [org])
                .add("misattributed_tickets", [m.count])
                .add("tickets", m.tickets.iter())
                .add("requesters", m.requesters.iter());
            if let Some(i) = idx {
                evidence.add("org_name", [self.index.name(i)]);
            } else {
                evidence.add("org_missing", [true]);
            }
            let finding = Finding::new(ExceptionKind::TicketAttributionDrift, account, [org])
                .with_evidence(evidence)
                .with_actions(vec![Action::FixByHand]);
            self.out.findings.push((finding, Side::Org));
        }
    }
}

struct KeylessLink {
    /// Index into the sorted deferred accounts.
    account: usize,
    org: u32,
    rule: Rule,
    stored: StoredState,
}

impl Outputs {
    /// An active account linked to `org`: claims it, and (for an eligible account) queues
    /// what resolution and the mirror rules would change, or reports what they cannot.
    fn linked(
        &mut self,
        index: &OrgIndex,
        facts: &AccountFacts,
        org: u32,
        key_change: Option<&KeyChange>,
        stored: StoredState,
        rule: Rule,
    ) -> DomainGap {
        self.claimed[org as usize] = true;
        let org_id = index.org(org).id;
        if !facts.eligible {
            self.report.push(ReportLine {
                kind: ReportKind::ChurnedCustomer,
                account: facts.id.clone(),
                org: Some(org_id),
                detail: "no longer eligible; the link is kept".into(),
            });
            return DomainGap::None;
        }
        let mut reasons: Vec<RepairReason> = stored.reason().into_iter().collect();
        let missing = !reasons.is_empty() && stored != StoredState::Other;
        reasons.extend(key_change.map(|k| match k {
            KeyChange::Set => RepairReason::SetKey,
            KeyChange::UpgradeLegacy => RepairReason::UpgradeLegacyKey,
            KeyChange::FromMergedAccount { merged } => RepairReason::RelinkMergedOrg {
                merged: merged.clone(),
            },
        }));
        match name_check(index, facts, org) {
            NameCheck::Matches => {}
            NameCheck::Rename => reasons.push(RepairReason::RenameOrg),
            NameCheck::Held(holders) => {
                let mut evidence = Evidence::new();
                evidence
                    .add("account", [facts.id.as_str()])
                    .add("org", [org_id])
                    .add("org_name", [index.name(org)])
                    .add("account_name", [facts.name.as_str()])
                    .add("name_held_by", holders.iter().map(|&h| index.org(h).id));
                let finding = Finding::new(ExceptionKind::NameDrift, [facts.id.clone()], [org_id])
                    .with_evidence(evidence)
                    .with_actions(vec![Action::FixByHand]);
                self.findings.push((finding, Side::Account));
            }
        }
        let gap = domain_gap(index, facts, org);
        match &gap {
            DomainGap::Free => reasons.push(RepairReason::AddDomain),
            DomainGap::OnOtherAccountsOrgs(holders) => {
                let mut evidence = Evidence::new();
                evidence
                    .add("account", [facts.id.as_str()])
                    .add("linked_org", [org_id])
                    .add("domain_orgs", holders.iter().map(|&h| index.org(h).id))
                    .add(
                        "domain_org_keys",
                        holders.iter().filter_map(|&h| index.external_id(h)),
                    );
                let mut actions = Vec::new();
                if let Some(d) = &facts.domain {
                    actions.push(Action::TreatDomainAsShared { domain: d.clone() });
                }
                actions.push(Action::FixByHand);
                let finding = Finding::new(
                    ExceptionKind::DomainCollision,
                    [facts.id.clone()],
                    holders.iter().map(|&h| index.org(h).id),
                )
                .with_domain(facts.domain.clone())
                .with_evidence(evidence)
                .with_actions(actions);
                self.findings.push((finding, Side::Account));
            }
            DomainGap::None | DomainGap::OnKeylessOrgs(_) => {}
        }
        if missing {
            self.report.push(ReportLine {
                kind: ReportKind::MissingLink,
                account: facts.id.clone(),
                org: Some(org_id),
                detail: rule.describe().into(),
            });
        }
        if !reasons.is_empty() {
            reasons.sort();
            self.repairs.push(Repair {
                account: facts.id.clone(),
                org: Some(org_id),
                reasons,
            });
        }
        gap
    }

    /// An eligible account resolution would create an org for.
    fn will_create(&mut self, facts: &AccountFacts, stored: StoredState, rule: Rule) {
        let mut reasons = vec![RepairReason::CreateOrg];
        if let Some(r @ (RepairReason::StoredOrgGone { .. } | RepairReason::StoredIdUnreadable)) =
            stored.reason()
        {
            reasons.push(r);
        }
        reasons.sort();
        self.report.push(ReportLine {
            kind: ReportKind::MissingLink,
            account: facts.id.clone(),
            org: None,
            detail: rule.describe().into(),
        });
        self.repairs.push(Repair {
            account: facts.id.clone(),
            org: None,
            reasons,
        });
    }

    /// What every active account contributes whatever its decision: domain drift (eligible
    /// accounts) and data fixes.
    fn account_lines(
        &mut self,
        index: &OrgIndex,
        facts: &AccountFacts,
        linked: Option<u32>,
        gap: DomainGap,
    ) {
        let org_id = linked.map(|i| index.org(i).id);
        if facts.eligible {
            let mut evidence = Evidence::new();
            if let Some(website) = &facts.website_disagrees {
                evidence.add("website_domain", [website]);
            }
            if let DomainGap::OnKeylessOrgs(holders) = &gap {
                evidence
                    .add("org_lacks_domain", [true])
                    .add("domain_held_by", holders.iter().map(|&h| index.org(h).id));
            }
            if !evidence.is_empty() {
                evidence.add("account", [facts.id.as_str()]);
                if let Some(d) = &facts.domain {
                    evidence.add("reviewed_domain", [d.as_str()]);
                }
                if let Some(o) = org_id {
                    evidence.add("org", [o]);
                }
                let finding = Finding::new(ExceptionKind::DomainDrift, [facts.id.clone()], org_id)
                    .with_domain(facts.domain.clone())
                    .with_evidence(evidence)
                    .with_actions(vec![Action::FixByHand]);
                self.findings.push((finding, Side::Account));
            }
        }
        if let Some(note) = &facts.unusable_website {
            self.report.push(ReportLine {
                kind: ReportKind::DataFix,
                account: facts.id.clone(),
                org: org_id,
                detail: note.clone(),
            });
        }
    }
}

/// The consistent account: its stored org exists and is the only org carrying its key, in
/// the 18-character form. For it `resolve` answers `Link { stored org, no key change }` by
/// rule `key_match` whatever else is gathered: exactly one keyed org and it is the stored one,
/// so no contradiction fires, and a keyed org decides before merged keys, domain or name.
fn consistent_link(index: &OrgIndex, facts: &AccountFacts) -> Option<u32> {
    let stored = OrgId::parse(facts.stored_org_id.as_deref()?).ok()?;
    let idx = index.org_idx(stored)?;
    match index.org(idx).key {
        Key::Account {
            slot,
            legacy: false,
        } => {
            let k = &index.keys[slot as usize];
            (k.count == 1 && k.account == facts.id).then_some(idx)
        }
        _ => None,
    }
}

/// Every candidate resolution asks for, from the compact state.
fn gather(index: &OrgIndex, facts: &AccountFacts, merged: &[AccountId]) -> ResolutionInput {
    let mut idxs: Vec<u32> = index.keyed_to(&facts.id).collect();
    for m in merged {
        idxs.extend(index.keyed_to(m));
    }
    if let Some(d) = facts.domain.as_ref().and_then(|d| domain_key(d.as_str()))
        && let Some(id) = index.domain_id(&d)
    {
        idxs.extend(index.carriers(id));
    }
    idxs.extend(index.named(&facts.name));
    idxs.sort_unstable();
    idxs.dedup();
    let stored = match facts.stored_org_id.as_deref().map(str::trim) {
        None | Some("") => StoredLink::None,
        Some(text) => match OrgId::parse(text) {
            Ok(id) => match index.org_idx(id) {
                Some(idx) => StoredLink::Found(index.materialize(idx)),
                None => StoredLink::Gone(id),
            },
            Err(_) => StoredLink::Unreadable(text.to_string()),
        },
    };
    ResolutionInput {
        account: facts.id.clone(),
        merged_accounts: merged.to_vec(),
        name: facts.name.clone(),
        suffixed_name: facts.suffixed_name.clone(),
        domain: facts.domain.clone(),
        stored,
        candidates: idxs.into_iter().map(|i| index.materialize(i)).collect(),
    }
}

enum NameCheck {
    Matches,
    /// The name orglink would use is free: rename.
    Rename,
    /// Held by other orgs in a way that needs a person.
    Held(Vec<u32>),
}

/// Compares a linked org's name with the name orglink would use, as creation would pick it:
/// the plain name, or the suffixed one when orgs keyed to other accounts hold the plain name;
/// a keyless org holding it may be the same customer, which a person decides.
fn name_check(index: &OrgIndex, facts: &AccountFacts, org: u32) -> NameCheck {
    let current = index.name(org).trim();
    let wanted = facts.name.trim();
    if wanted.is_empty() || current == wanted {
        return NameCheck::Matches;
    }
    let holders: Vec<u32> = index.named(wanted).filter(|&h| h != org).collect();
    if holders.is_empty() {
        return NameCheck::Rename;
    }
    if holders.iter().any(|&h| index.org(h).key == Key::None) {
        return NameCheck::Held(holders);
    }
    let suffixed = facts.suffixed_name.trim();
    if current == suffixed {
        return NameCheck::Matches;
    }
    let suffix_holders: Vec<u32> = index.named(suffixed).filter(|&h| h != org).collect();
    if suffix_holders.is_empty() {
        NameCheck::Rename
    } else {
        NameCheck::Held(suffix_holders)
    }
}

/// Whether a linked org carries the reviewed domain, and who holds it if not. Arrays are
/// add-only and a domain another org holds is never added.
fn domain_gap(index: &OrgIndex, facts: &AccountFacts, org: u32) -> DomainGap {
    let Some(d) = facts.domain.as_ref().and_then(|d| domain_key(d.as_str())) else {
        return DomainGap::None;
    };
    let Some(id) = index.domain_id(&d) else {
        return DomainGap::Free;
    };
    if index.carries(org, id) {
        return DomainGap::None;
    }
    let holders: Vec<u32> = index.carriers(id).collect();
    if holders.iter().any(|&h| index.org(h).key != Key::None) {
        DomainGap::OnOtherAccountsOrgs(holders)
    } else {
        DomainGap::OnKeylessOrgs(holders)
    }
}

/// Identity of a problem: what `Finding::fingerprint` hashes.
fn same_problem(a: &Finding, b: &Finding) -> Ordering {
    (a.kind, &a.accounts, &a.orgs, &a.domain).cmp(&(b.kind, &b.accounts, &b.orgs, &b.domain))
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
