//! The backfill plan: every account's decision, made by [`resolve`] against one snapshot of
//! both systems, with its rule, its evidence and the exact bodies `apply` will send. Pure.
//!
//! Each entry carries a fingerprint of the state it was decided on (the account's facts and
//! every candidate organization as read). `apply` reads both systems again and acts only on
//! entries whose fingerprint still matches; the rest are skipped with the reason.
//!
//! Decisions that depend on each other are settled here, in account order, so the plan is
//! executable as a whole:
//! - two accounts reaching for one keyless organization: the stored link outranks the domain
//!   match, and claimants of equal rank all become findings (as the reconcile diff settles it);
//! - two new organizations wanting one name: the later takes the configured suffix (the earlier
//!   one will be keyed to another account, which is the suffix rule), so a `create_many` batch
//!   never refuses its own names;
//! - two new organizations wanting one domain: only the first adds it (a domain on two orgs
//!   maps users to whichever sorts first).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::index::{OrgIndex, name_key};
use crate::contract::{
    Config, DesiredLink, DomainDecision, Eligibility, EligibleBecause, EventKind, Intent,
    LinkAction, LinkField, NotEligibleBecause, SyncStatus, reviewed_domain_decision,
};
use crate::domain::{Domain, DomainPolicy};
use crate::exceptions::{Action, Evidence, ExceptionKind, Finding};
use crate::ids::{AccountId, OrgId};
use crate::mapping::{DomainAvailability, NameChoice};
use crate::model::{Account, Organization};
use crate::resolution::{
    Decision, KeyChange, Resolution, ResolutionInput, Rule, StoredLink, resolve,
};

/// The plan file's format name.
pub const PLAN_FORMAT: &str = "orglink-backfill-plan/1";

/// What the backfill will do for one account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum PlannedAction {
    /// Create an organization with this body (`create_many`), key set at creation.
    Create { body: Value },
    /// Link to an existing organization; `update` is the `update_many` item (with its `id`)
    /// when the organization changes (key set, mirrors, added domain or tags).
    Link {
        org: OrgId,
        key_change: Option<KeyChange>,
        update: Option<Value>,
    },
    /// A person must decide: one open row in the review queue, no link.
    Exception { finding: Finding },
    /// Not eligible: nothing is created, linked or written.
    NotEligible { because: NotEligibleBecause },
    /// Eligible, but the configuration does not let an operator action do this.
    Refused { reason: String },
}

impl PlannedAction {
    pub fn name(&self) -> &'static str {
        match self {
            PlannedAction::Create { .. } => "create",
            PlannedAction::Link { .. } => "link",
            PlannedAction::Exception { .. } => "exception",
            PlannedAction::NotEligible { .. } => "not_eligible",
            PlannedAction::Refused { .. } => "refused",
        }
    }
}

/// One account's line in the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanEntry {
    pub account: AccountId,
    pub account_name: String,
    #[serde(flatten)]
    pub action: PlannedAction,
    /// The resolution rule that decided (none for accounts that are not eligible).
    pub rule: Option<Rule>,
    pub evidence: Evidence,
    /// The link fields written back to the account, as reviewed (`Last_Zendesk_Sync_At__c` is
    /// stamped at apply time; the org id of a new organization is known only then).
    pub write_back: BTreeMap<String, Option<String>>,
    /// Hash of the state the decision was made on.
    pub fingerprint: String,
}

/// Counts for the review.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlanTotals {
    pub accounts: usize,
    /// By action name (`create`, `link`, `exception`, `not_eligible`, `refused`).
    pub actions: BTreeMap<String, usize>,
    /// By rule, for the accounts resolution decided.
    pub rules: BTreeMap<String, usize>,
    pub exceptions: BTreeMap<String, usize>,
    /// Links that change the organization (an `update_many` item).
    pub org_updates: usize,
    /// Accounts whose link fields change.
    pub write_backs: usize,
}

/// The plan as reviewed; its hash is over exactly this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format: String,
    /// `salesforce_org_id` and `zendesk_subdomain` the plan was made against.
    pub binding: BTreeMap<String, String>,
    /// SHA-256 of the configuration (TOML): apply refuses another configuration.
    pub config_sha256: String,
    pub created_at: String,
    pub organizations_read: usize,
    pub totals: PlanTotals,
    pub accounts: Vec<PlanEntry>,
}

/// The file: the plan and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub hash: String,
    pub plan: Plan,
}

impl Plan {
    /// SHA-256 (hex) of the plan's canonical JSON.
    pub fn hash(&self) -> String {
        let bytes = serde_json::to_vec(self).expect("a plan serializes");
        hex::encode(Sha256::digest(bytes))
    }

    pub fn into_file(self) -> PlanFile {
        PlanFile {
            hash: self.hash(),
            plan: self,
        }
    }
}

/// SHA-256 of a configuration's canonical TOML.
pub fn config_sha256(config: &Config) -> String {
    hex::encode(Sha256::digest(config.to_toml().as_bytes()))
}

/// What deciding needs besides the snapshot.
pub struct Rules<'a> {
    pub config: &'a Config,
    pub policy: &'a DomainPolicy,
    /// The reviewed domain orglink last wrote per account (link records), for the provenance
    /// rule of `Zendesk_Domain__c`. Only accounts holding a value that differs from their
    /// Website's domain need it ([`needs_last_written`]).
    pub last_written: &'a HashMap<AccountId, Domain>,
}

/// Whether the account's decision depends on what orglink last wrote to `Zendesk_Domain__c`
/// (so the caller reads only those link records).
pub fn needs_last_written(policy: &DomainPolicy, account: &Account) -> bool {
    let Some(current) = account
        .reviewed_domain
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    else {
        return false;
    };
    let website = account
        .website
        .as_deref()
        .and_then(|w| policy.check_website(w).outcome.ok());
    Domain::parse(current).ok() != website
}

/// Accounts merged into each survivor (`MasterRecordId`), sorted.
pub fn merged_losers(accounts: &[Account]) -> HashMap<AccountId, Vec<AccountId>> {
    let mut merged: HashMap<AccountId, Vec<AccountId>> = HashMap::new();
    for a in accounts {
        if let Some(master) = &a.master_record_id {
            merged.entry(master.clone()).or_default().push(a.id.clone());
        }
    }
    for losers in merged.values_mut() {
        losers.sort();
    }
    merged
}

/// One account's decision, alone (no settling against other accounts' decisions). `apply`
/// uses it to re-check an account against the current state.
pub fn decide_account(
    rules: &Rules<'_>,
    index: &OrgIndex,
    account: &Account,
    merged: &[AccountId],
) -> PlanEntry {
    let config = rules.config;
    let mapping = config.mapping();
    let eligibility = config.eligibility().evaluate(account);
    let website = account
        .website
        .as_deref()
        .map(|w| rules.policy.check_website(w));
    let website_domain = website.as_ref().and_then(|w| w.domain().cloned());
    let last_written = rules.last_written.get(&account.id);
    let domain_decision = reviewed_domain_decision(
        account.reviewed_domain.as_deref(),
        last_written,
        website_domain.as_ref(),
    );
    // The reviewed domain after the provenance rule, if the policy lets it link.
    let domain = domain_decision
        .effective(account.reviewed_domain.as_deref())
        .filter(|d| rules.policy.parse_domain(d.as_str()).is_ok());

    let input = ResolutionInput {
        account: account.id.clone(),
        merged_accounts: merged.to_vec(),
        name: mapping.org_name(account),
        suffixed_name: mapping.suffixed_org_name(account),
        domain: domain.clone(),
        stored: stored_link(index, account),
        candidates: gather(
            index,
            account,
            merged,
            domain.as_ref(),
            &mapping.org_name(account),
        ),
    };
    let fingerprint = fingerprint(account, merged, last_written, &input);

    let mut entry = PlanEntry {
        account: account.id.clone(),
        account_name: account.name.clone(),
        action: PlannedAction::Refused {
            reason: String::new(),
        },
        rule: None,
        evidence: Evidence::new(),
        write_back: BTreeMap::new(),
        fingerprint,
    };
    if let Some(unusable) = website.as_ref().and_then(|w| w.unusable()) {
        entry
            .evidence
            .add("website_unusable", [unusable.reason.as_str()]);
    }
    if let DomainDecision::Drift { reviewed, website } = &domain_decision {
        entry
            .evidence
            .add("domain_drift", [reviewed.as_str(), website.as_str()]);
    }
    let because = match &eligibility {
        Eligibility::NotEligible { because } => {
            entry.action = PlannedAction::NotEligible {
                because: because.clone(),
            };
            return entry;
        }
        Eligibility::Eligible { because } => because,
    };
    entry
        .evidence
        .add("eligible_because", because.iter().map(eligible_name));

    let resolution = resolve(&input);
    entry.rule = Some(resolution.rule);
    for (k, v) in resolution.evidence.iter() {
        entry.evidence.add(k, v.iter());
    }
    let link_action = match &resolution.decision {
        Decision::Create { .. } => Some(LinkAction::Create),
        Decision::Link { org, .. } if account.stored_org() == Some(*org) => {
            Some(LinkAction::Update)
        }
        Decision::Link { .. } => Some(LinkAction::Relink),
        Decision::Exception { .. } => None,
    };
    if let Some(a) = link_action
        && let Err(ignored) = config.permits(EventKind::Manual, &eligibility, a)
    {
        entry.action = PlannedAction::Refused {
            reason: ignored.reason.to_string(),
        };
        return entry;
    }

    entry.action = match &resolution.decision {
        Decision::Create { .. } => {
            let choice = name_choice(&resolution);
            let free = domain
                .as_ref()
                .is_none_or(|d| index.carrying(d.as_str()).next().is_none());
            PlannedAction::Create {
                body: create_body(rules, account, domain.as_ref(), free, choice, merged),
            }
        }
        Decision::Link { org, key_change } => {
            match link_update(rules, index, account, domain.as_ref(), merged, *org) {
                Ok(update) => PlannedAction::Link {
                    org: *org,
                    key_change: key_change.clone(),
                    update,
                },
                Err(reason) => PlannedAction::Refused { reason },
            }
        }
        Decision::Exception { .. } => PlannedAction::Exception {
            finding: resolution
                .finding(&input)
                .expect("an exception decision has a finding"),
        },
    };
    entry.write_back = planned_write_back(rules, account, &entry.action);
    entry
}

/// The whole plan's entries, in account order, settled against each other (see the module
/// docs). Every account is listed, eligible or not.
pub fn decide_all(rules: &Rules<'_>, index: &OrgIndex, accounts: &[Account]) -> Vec<PlanEntry> {
    let merged = merged_losers(accounts);
    let none: Vec<AccountId> = Vec::new();
    let mut sorted: Vec<&Account> = accounts.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted.dedup_by(|a, b| a.id == b.id);
    let mut entries: Vec<PlanEntry> = sorted
        .iter()
        .map(|a| decide_account(rules, index, a, merged.get(&a.id).unwrap_or(&none)))
        .collect();
    let by_id: HashMap<&AccountId, &Account> = sorted.iter().map(|a| (&a.id, *a)).collect();
    settle_keyless_links(&mut entries, index);
    settle_new_orgs(rules, index, &mut entries, &by_id, &merged);
    entries
}

/// Builds the plan from the entries.
pub fn plan(
    config: &Config,
    created_at: &str,
    organizations_read: usize,
    accounts: Vec<PlanEntry>,
) -> Plan {
    let mut totals = PlanTotals {
        accounts: accounts.len(),
        ..PlanTotals::default()
    };
    for e in &accounts {
        *totals.actions.entry(e.action.name().into()).or_default() += 1;
        if let Some(rule) = e.rule {
            *totals.rules.entry(rule.to_string()).or_default() += 1;
        }
        match &e.action {
            PlannedAction::Exception { finding } => {
                *totals
                    .exceptions
                    .entry(finding.kind.as_str().into())
                    .or_default() += 1;
            }
            PlannedAction::Link {
                update: Some(_), ..
            } => totals.org_updates += 1,
            _ => {}
        }
        if !e.write_back.is_empty() {
            totals.write_backs += 1;
        }
    }
    let binding = config.binding();
    Plan {
        format: PLAN_FORMAT.into(),
        binding: BTreeMap::from([
            (
                "salesforce_org_id".into(),
                binding.salesforce_org_id().as_str().into(),
            ),
            (
                "zendesk_subdomain".into(),
                binding.zendesk_subdomain().as_str().into(),
            ),
        ]),
        config_sha256: config_sha256(config),
        created_at: created_at.into(),
        organizations_read,
        totals,
        accounts,
    }
}

/// The write-back for a linked account (`org` known), as `apply` sends it.
pub fn link_write_back(
    rules: &Rules<'_>,
    account: &Account,
    org: OrgId,
    zendesk_changed: bool,
    now: &str,
) -> Option<crate::contract::AccountWrite> {
    let desired = DesiredLink {
        org_id: Intent::Set(org),
        reviewed_domain: domain_decision(rules, account).intent(),
        status: Intent::Set(SyncStatus::Linked),
    };
    rules
        .config
        .write_back()
        .account_write(account, &desired, zendesk_changed, now)
}

/// The write-back for an account left to a person: its status says so; the link is untouched.
pub fn pending_review_write_back(
    rules: &Rules<'_>,
    account: &Account,
    now: &str,
) -> Option<crate::contract::AccountWrite> {
    let desired = DesiredLink {
        org_id: Intent::Leave,
        reviewed_domain: Intent::Leave,
        status: Intent::Set(SyncStatus::PendingReview),
    };
    rules
        .config
        .write_back()
        .account_write(account, &desired, false, now)
}

fn domain_decision(rules: &Rules<'_>, account: &Account) -> DomainDecision {
    let website = account
        .website
        .as_deref()
        .and_then(|w| rules.policy.check_website(w).outcome.ok());
    reviewed_domain_decision(
        account.reviewed_domain.as_deref(),
        rules.last_written.get(&account.id),
        website.as_ref(),
    )
}

fn planned_write_back(
    rules: &Rules<'_>,
    account: &Account,
    action: &PlannedAction,
) -> BTreeMap<String, Option<String>> {
    // A placeholder org id for a new organization: the review shows the field changes.
    let write = match action {
        PlannedAction::Link { org, update, .. } => {
            link_write_back(rules, account, *org, update.is_some(), "")
        }
        PlannedAction::Create { .. } => link_write_back(
            rules,
            account,
            OrgId::new(1).expect("a valid placeholder"),
            true,
            "",
        ),
        PlannedAction::Exception { .. } => pending_review_write_back(rules, account, ""),
        PlannedAction::NotEligible { .. } | PlannedAction::Refused { .. } => None,
    };
    write
        .map(|w| {
            w.changes()
                .iter()
                .filter(|(f, _)| **f != LinkField::LastZendeskSyncAt)
                .map(|(f, v)| {
                    let v = match (f, action) {
                        (LinkField::ZendeskOrgId, PlannedAction::Create { .. }) => {
                            Some("(the new organization's id)".to_string())
                        }
                        _ => v.clone(),
                    };
                    (f.api_name().to_string(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn eligible_name(b: &EligibleBecause) -> String {
    match b {
        EligibleBecause::CustomerType { account_type, .. } => format!("type {account_type}"),
        EligibleBecause::ClosedWon => "closed_won".into(),
        EligibleBecause::LateStageOpportunity {
            stage_name,
            probability,
        } => match probability {
            Some(p) => format!("late_stage {stage_name} ({p})"),
            None => format!("late_stage {stage_name}"),
        },
    }
}

fn name_choice(resolution: &Resolution) -> NameChoice {
    if resolution.rule == Rule::CreateWithSuffixedName {
        NameChoice::Suffixed
    } else {
        NameChoice::Plain
    }
}

fn stored_link(index: &OrgIndex, account: &Account) -> StoredLink {
    match account.stored_org_id.as_deref().map(str::trim) {
        None | Some("") => StoredLink::None,
        Some(text) => match OrgId::parse(text) {
            Ok(id) => match index.get(id) {
                Some(org) => StoredLink::Found(org.clone()),
                None => StoredLink::Gone(id),
            },
            Err(_) => StoredLink::Unreadable(text.to_string()),
        },
    }
}

/// Every candidate resolution asks for: orgs keyed to the account or one merged into it, orgs
/// carrying the reviewed domain, orgs holding the name orglink would use.
fn gather(
    index: &OrgIndex,
    account: &Account,
    merged: &[AccountId],
    domain: Option<&Domain>,
    name: &str,
) -> Vec<Organization> {
    let mut found: BTreeMap<OrgId, &Organization> = BTreeMap::new();
    let keyed = std::iter::once(&account.id)
        .chain(merged)
        .flat_map(|a| index.keyed_to(a));
    let by_domain = domain.into_iter().flat_map(|d| index.carrying(d.as_str()));
    for org in keyed.chain(by_domain).chain(index.named(name)) {
        found.insert(org.id, org);
    }
    found.into_values().cloned().collect()
}

fn create_body(
    rules: &Rules<'_>,
    account: &Account,
    domain: Option<&Domain>,
    domain_free: bool,
    choice: NameChoice,
    merged: &[AccountId],
) -> Value {
    let availability = if domain_free {
        DomainAvailability::Free
    } else {
        DomainAvailability::HeldByAnotherOrg
    };
    rules
        .config
        .mapping()
        .desired_org(account, domain, availability, choice, merged)
        .create_body()
}

/// The `update_many` item for linking `org`, or `None` when it already holds everything.
fn link_update(
    rules: &Rules<'_>,
    index: &OrgIndex,
    account: &Account,
    domain: Option<&Domain>,
    merged: &[AccountId],
    org: OrgId,
) -> Result<Option<Value>, String> {
    let current = index
        .get(org)
        .ok_or_else(|| format!("organization {org} is not in the listing"))?;
    let free = domain.is_none_or(|d| index.carrying(d.as_str()).all(|o| o.id == org));
    let availability = if free {
        DomainAvailability::Free
    } else {
        DomainAvailability::HeldByAnotherOrg
    };
    let mapping = rules.config.mapping();
    let desired = mapping.desired_org(account, domain, availability, NameChoice::Plain, merged);
    let update = mapping
        .org_update(current, &desired)
        .map_err(|e| e.to_string())?;
    let Some(update) = update else {
        return Ok(None);
    };
    let mut body = update.body();
    // Renaming onto a name another organization holds would be refused: keep the old name
    // (the reconcile reports the drift).
    if let Some(name) = update.name()
        && index.named(name).any(|o| o.id != org)
        && let Some(map) = body.as_object_mut()
    {
        map.remove("name");
        if map.is_empty() {
            return Ok(None);
        }
    }
    body["id"] = Value::from(org.get());
    Ok(Some(body))
}

/// Links that set a keyless org's key: one account per org. The stored link outranks a domain
/// match; of equal rank, all become findings (who is right is a person's call).
fn settle_keyless_links(entries: &mut [PlanEntry], index: &OrgIndex) {
    let mut by_org: BTreeMap<OrgId, Vec<usize>> = BTreeMap::new();
    for (i, e) in entries.iter().enumerate() {
        if let PlannedAction::Link {
            org,
            key_change: Some(KeyChange::Set),
            ..
        } = &e.action
        {
            by_org.entry(*org).or_default().push(i);
        }
    }
    let rank = |e: &PlanEntry| u8::from(e.rule != Some(Rule::StoredOrgKeyless));
    for (org, mut claimants) in by_org {
        if claimants.len() < 2 {
            continue;
        }
        claimants.sort_by_key(|&i| (rank(&entries[i]), entries[i].account.clone()));
        let top = rank(&entries[claimants[0]]);
        let winners = claimants
            .iter()
            .filter(|&&i| rank(&entries[i]) == top)
            .count();
        let all: Vec<AccountId> = claimants
            .iter()
            .map(|&i| entries[i].account.clone())
            .collect();
        for (n, &i) in claimants.iter().enumerate() {
            if winners == 1 && n == 0 {
                continue;
            }
            let e = &mut entries[i];
            e.action = PlannedAction::Exception {
                finding: contested(e, org, &all, index),
            };
            e.write_back.clear();
        }
    }
}

/// The finding for an account that may not take `org` because another account reaches for it.
pub fn contested(e: &PlanEntry, org: OrgId, claimants: &[AccountId], index: &OrgIndex) -> Finding {
    let stored = e.rule == Some(Rule::StoredOrgKeyless);
    let kind = if stored {
        ExceptionKind::KeyConflict
    } else {
        ExceptionKind::DomainCollision
    };
    let domain = (!stored)
        .then(|| {
            e.evidence
                .get("domain")
                .and_then(|d| d.first())
                .and_then(|d| Domain::parse(d).ok())
        })
        .flatten();
    let mut evidence = e.evidence.clone();
    evidence.add(
        "also_claimed_by",
        claimants
            .iter()
            .filter(|a| **a != e.account)
            .map(AccountId::as_str),
    );
    if let Some(r) = e.rule {
        evidence.add("rule", [r]);
    }
    if let Some(o) = index.get(org) {
        evidence.add("org_name", [o.name.as_str()]);
    }
    let mut actions = vec![
        Action::LinkToOrg {
            account: e.account.clone(),
            org,
        },
        Action::CreateNewOrg {
            account: e.account.clone(),
        },
    ];
    if let Some(d) = &domain {
        actions.push(Action::TreatDomainAsShared { domain: d.clone() });
    }
    Finding::new(kind, [e.account.clone()], [org])
        .with_domain(domain)
        .with_evidence(evidence)
        .with_actions(actions)
}

/// New organizations: unique names (case-insensitively, against the listing and each other)
/// and each domain added once.
fn settle_new_orgs(
    rules: &Rules<'_>,
    index: &OrgIndex,
    entries: &mut [PlanEntry],
    accounts: &HashMap<&AccountId, &Account>,
    merged: &HashMap<AccountId, Vec<AccountId>>,
) {
    // Domains linked orgs will hold after their updates.
    let mut domains_taken: HashSet<String> = HashSet::new();
    for e in entries.iter() {
        if let PlannedAction::Link {
            update: Some(u), ..
        } = &e.action
        {
            for d in u["domain_names"].as_array().into_iter().flatten() {
                if let Some(d) = d.as_str() {
                    domains_taken.insert(super::index::domain_key(d));
                }
            }
        }
    }
    let mut names_taken: HashSet<String> = HashSet::new();
    let none: Vec<AccountId> = Vec::new();
    for e in entries.iter_mut() {
        let PlannedAction::Create { body } = &e.action else {
            continue;
        };
        let name = body["name"].as_str().unwrap_or_default().to_string();
        let domain = body["domain_names"][0].as_str().map(str::to_string);
        let name_clash = names_taken.contains(&name_key(&name));
        let domain_clash = domain
            .as_deref()
            .is_some_and(|d| domains_taken.contains(&super::index::domain_key(d)));
        let mut body = body.clone();
        if name_clash || domain_clash {
            let account = accounts[&e.account];
            let merged = merged.get(&e.account).unwrap_or(&none);
            let choice = if name_clash || e.rule == Some(Rule::CreateWithSuffixedName) {
                NameChoice::Suffixed
            } else {
                NameChoice::Plain
            };
            let reviewed = domain.as_deref().and_then(|d| Domain::parse(d).ok());
            body = create_body(
                rules,
                account,
                reviewed.as_ref(),
                !domain_clash,
                choice,
                merged,
            );
            if name_clash {
                e.evidence.add("name_taken_in_plan", [name.as_str()]);
            }
            if domain_clash {
                e.evidence.add("domain_taken_in_plan", domain.as_deref());
            }
            let new_name = body["name"].as_str().unwrap_or_default();
            if names_taken.contains(&name_key(new_name)) || index.named(new_name).next().is_some() {
                e.action = PlannedAction::Refused {
                    reason: format!(
                        "the name {name:?} and its suffixed form are both taken; rename the account or link it by hand"
                    ),
                };
                e.write_back.clear();
                continue;
            }
        }
        names_taken.insert(name_key(body["name"].as_str().unwrap_or_default()));
        if let Some(d) = body["domain_names"][0].as_str() {
            domains_taken.insert(super::index::domain_key(d));
        }
        e.action = PlannedAction::Create { body };
    }
}

/// Hash of everything the decision read: the account's fields and, of each candidate org,
/// what resolution compares (id, name, key, domains). Tags and mirror fields are left out: the
/// update that links an org is rebuilt from the org as read at apply time, so a tag support
/// added meanwhile is kept rather than making the account "changed".
fn fingerprint(
    account: &Account,
    merged: &[AccountId],
    last_written: Option<&Domain>,
    input: &ResolutionInput,
) -> String {
    let org = |o: &Organization| serde_json::json!([o.id, o.name, o.external_id, o.domain_names]);
    let stored = match &input.stored {
        StoredLink::None => Value::Null,
        StoredLink::Found(o) => org(o),
        StoredLink::Gone(id) => Value::from(format!("gone:{id}")),
        StoredLink::Unreadable(t) => Value::from(format!("unreadable:{t}")),
    };
    let mut account = account.clone();
    // The modstamp moves on any edit, including fields orglink does not read.
    account.system_modstamp = None;
    let state = serde_json::json!({
        "account": account,
        "merged": merged,
        "last_written": last_written,
        "stored": stored,
        "candidates": input.candidates.iter().map(org).collect::<Vec<_>>(),
    });
    let digest = Sha256::digest(serde_json::to_vec(&state).expect("state serializes"));
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "001D000000IRFmaIAH";
    const B: &str = "001D000000IomazIAB";
    const C: &str = "001D000000IqhSLIAZ";

    fn account(id: &str, name: &str, website: Option<&str>) -> Account {
        Account {
            id: AccountId::parse(id).unwrap(),
            name: name.into(),
            website: website.map(str::to_string),
            reviewed_domain: None,
            stored_org_id: None,
            sync_status: None,
            account_type: Some("Customer - Direct".into()),
            owner_email: Some("owner@example.org".into()),
            is_deleted: false,
            master_record_id: None,
            has_closed_won: false,
            open_opportunities: vec![],
            system_modstamp: Some("2025-01-01T00:00:00.000+0000".into()),
        }
    }

    fn org(id: u64, name: &str, key: Option<&str>, domains: &[&str]) -> Organization {
        Organization {
            id: OrgId::new(id).unwrap(),
            name: name.into(),
            external_id: key.map(str::to_string),
            domain_names: domains.iter().map(|d| d.to_string()).collect(),
            tags: vec!["vip".into()],
            organization_fields: BTreeMap::new(),
            updated_at: Some("2025-01-01T00:00:00Z".into()),
        }
    }

    fn decide(accounts: &[Account], orgs: Vec<Organization>) -> Vec<PlanEntry> {
        let config = Config::embedded_default();
        let policy = DomainPolicy::default();
        let last_written = HashMap::new();
        let rules = Rules {
            config: &config,
            policy: &policy,
            last_written: &last_written,
        };
        decide_all(&rules, &OrgIndex::new(orgs), accounts)
    }

    fn entry<'e>(entries: &'e [PlanEntry], id: &str) -> &'e PlanEntry {
        entries.iter().find(|e| e.account.as_str() == id).unwrap()
    }

    #[test]
    fn each_decision_comes_with_its_rule_bodies_and_write_back() {
        let mut prospect = account(C, "Prospect Co", Some("prospect.example.net"));
        prospect.account_type = Some("Prospect".into());
        let entries = decide(
            &[
                account(A, "Acme", Some("https://www.acme-tools.com/")),
                account(B, "Bolt", Some("bolt-works.de")),
                prospect,
            ],
            vec![org(10, "Acme (legacy)", None, &["ACME-TOOLS.com."])],
        );
        let a = entry(&entries, A);
        assert_eq!(a.rule, Some(Rule::UniqueKeylessDomain));
        let PlannedAction::Link {
            org,
            key_change,
            update: Some(update),
        } = &a.action
        else {
            panic!("{a:?}")
        };
        assert_eq!((org.get(), key_change), (10, &Some(KeyChange::Set)));
        assert_eq!(update["id"], 10);
        assert_eq!(update["external_id"], A);
        assert_eq!(
            update["tags"],
            serde_json::json!(["vip", "orglink_customer"])
        );
        assert_eq!(a.write_back["Zendesk_Org_ID__c"].as_deref(), Some("10"));
        assert_eq!(
            a.write_back["Zendesk_Sync_Status__c"].as_deref(),
            Some("Linked")
        );

        let b = entry(&entries, B);
        assert_eq!(b.rule, Some(Rule::CreateNew));
        let PlannedAction::Create { body } = &b.action else {
            panic!("{b:?}")
        };
        assert_eq!(body["external_id"], B);
        assert_eq!(body["name"], "Bolt");
        assert_eq!(body["domain_names"], serde_json::json!(["bolt-works.de"]));

        let c = entry(&entries, C);
        assert!(
            matches!(c.action, PlannedAction::NotEligible { .. }),
            "{c:?}"
        );
        assert!(c.write_back.is_empty() && c.rule.is_none());
    }

    #[test]
    fn two_accounts_never_take_one_keyless_org_and_new_names_never_clash() {
        // A and B both find the one keyless org by domain: equal rank, so both are findings.
        // When C stores that org, the stored link outranks the domain matches: C links.
        let shared = org(20, "Shared Legacy", None, &["twin-co.com"]);
        let a = account(A, "Twin", Some("twin-co.com"));
        let b = account(B, "Twin", Some("www.twin-co.com"));
        let entries = decide(&[a.clone(), b.clone()], vec![shared.clone()]);
        for id in [A, B] {
            let PlannedAction::Exception { finding } = &entry(&entries, id).action else {
                panic!("{id} should be an exception")
            };
            assert_eq!(finding.kind, ExceptionKind::DomainCollision);
            assert!(
                !entry(&entries, id)
                    .write_back
                    .contains_key("Zendesk_Org_ID__c")
            );
        }
        let mut c = account(C, "Twin Holding", None);
        c.stored_org_id = Some("20".into());
        let entries = decide(&[a.clone(), b.clone(), c], vec![shared]);
        assert!(matches!(
            entry(&entries, C).action,
            PlannedAction::Link { .. }
        ));
        assert!(matches!(
            entry(&entries, A).action,
            PlannedAction::Exception { .. }
        ));

        // Two new orgs wanting one name: the second (in account order) is suffixed.
        let entries = decide(
            &[account(A, "Same Name", None), account(B, "same name", None)],
            vec![],
        );
        let name = |id| match &entry(&entries, id).action {
            PlannedAction::Create { body } => body["name"].as_str().unwrap().to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(name(A), "Same Name");
        assert_eq!(name(B), format!("same name (Salesforce {B})"));
        assert!(
            entry(&entries, B)
                .evidence
                .get("name_taken_in_plan")
                .is_some()
        );
    }

    #[test]
    fn the_fingerprint_moves_with_the_state_the_decision_read_and_nothing_else() {
        let a = account(A, "Acme", Some("acme-tools.com"));
        let base = decide(
            std::slice::from_ref(&a),
            vec![org(10, "Acme", None, &["acme-tools.com"])],
        );
        let same = decide(
            std::slice::from_ref(&a),
            vec![
                org(10, "Acme", None, &["acme-tools.com"]),
                org(11, "Unrelated", None, &["other.com"]),
            ],
        );
        assert_eq!(base[0].fingerprint, same[0].fingerprint);
        let keyed = org(10, "Acme", Some("hubspot-7"), &["acme-tools.com"]);
        let changed_org = decide(std::slice::from_ref(&a), vec![keyed]);
        assert_ne!(base[0].fingerprint, changed_org[0].fingerprint);
        // A tag support added is no change: the update is rebuilt at apply time and keeps it.
        let mut tagged = org(10, "Acme", None, &["acme-tools.com"]);
        tagged.tags.push("support-added".into());
        let tag_only = decide(std::slice::from_ref(&a), vec![tagged]);
        assert_eq!(base[0].fingerprint, tag_only[0].fingerprint);
        let mut renamed = a.clone();
        renamed.name = "Acme Tools".into();
        let changed_account = decide(&[renamed], vec![org(10, "Acme", None, &["acme-tools.com"])]);
        assert_ne!(base[0].fingerprint, changed_account[0].fingerprint);
        let mut touched = a;
        touched.system_modstamp = Some("2026-01-01T00:00:00.000+0000".into());
        let modstamp_only = decide(&[touched], vec![org(10, "Acme", None, &["acme-tools.com"])]);
        assert_eq!(base[0].fingerprint, modstamp_only[0].fingerprint);
    }

    #[test]
    fn the_hash_survives_the_file_and_changes_with_any_edit() {
        let config = Config::embedded_default();
        let entries = decide(&[account(A, "Acme", Some("acme-tools.com"))], vec![]);
        let file = plan(&config, "2026-01-01T00:00:00Z", 0, entries).into_file();
        let text = serde_json::to_string_pretty(&file).unwrap();
        let read: PlanFile = serde_json::from_str(&text).unwrap();
        assert_eq!(read.plan.hash(), file.hash);
        assert_eq!(read.plan.totals.actions["create"], 1);
        let edited: PlanFile =
            serde_json::from_str(&text.replace("\"Acme\"", "\"Acme2\"")).unwrap();
        assert_ne!(edited.plan.hash(), file.hash);
    }
}
