//! Create-or-link resolution: one pure function that every path (live worker, reconcile,
//! backfill, the CLI's trace) uses to decide which organization an account links to.
//!
//! The caller gathers every candidate: the org behind the stored id, orgs whose external_id
//! is this account (either id form) or an account merged into it, orgs carrying the reviewed
//! domain, and the org holding the name orglink would use. Then, in this order:
//!
//! 1. Contradictions decide first, as exceptions:
//!    - two or more orgs carry this account's key → `duplicate_external_id`;
//!    - the stored id and the key point at different orgs → `stored_link_key_disagree`;
//!    - the stored org carries another account's (or another system's) key → `key_conflict`.
//! 2. Otherwise the first of:
//!    - the org carrying the key → link (a 15-character key is upgraded to 18);
//!    - the org carrying the key of an account Salesforce merged into this one → relink and
//!      rewrite the key (several such orgs → `duplicate_external_id`);
//!    - the stored org, keyless → link and set its key;
//!    - orgs carrying the reviewed domain: exactly one, keyless → link and set its key; any
//!      keyed to another account → `domain_collision`; several keyless → `ambiguous_domain`;
//!    - nothing found → create with the key set. The name orglink would use held by an org
//!      keyed to another account → create with the configured suffix; held by a keyless org →
//!      `possible_legacy_org`.
//!
//! A stored id whose org is gone (or that does not parse) falls through and is kept as
//! evidence. A consumer or shared-hosting domain never reaches this function: the caller
//! passes only a usable [`Domain`]. Every outcome carries the rule that decided it and its
//! evidence, so `trace` can show it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::Domain;
use crate::exceptions::{Action, Evidence, ExceptionKind, Finding};
use crate::ids::{AccountId, OrgId};
use crate::model::{OrgKey, Organization};

/// What Salesforce's `Zendesk_Org_ID__c` said, once the caller looked it up.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredLink {
    /// The field is empty.
    None,
    /// The org it names exists (read live).
    Found(Organization),
    /// The org it names is gone from Zendesk.
    Gone(OrgId),
    /// The field holds text that is not an organization id.
    Unreadable(String),
}

/// Everything the decision needs, gathered by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolutionInput {
    pub account: AccountId,
    /// Accounts Salesforce merged into this one (their `MasterRecordId` is this account).
    pub merged_accounts: Vec<AccountId>,
    /// The organization name orglink would use (already cleaned by the mapping).
    pub name: String,
    /// The same name with the configured suffix, for when another account's org holds it.
    pub suffixed_name: String,
    /// The usable reviewed domain, if any.
    pub domain: Option<Domain>,
    pub stored: StoredLink,
    /// Orgs found by key, by domain and by name; duplicates and order do not matter.
    pub candidates: Vec<Organization>,
}

impl ResolutionInput {
    /// Every organization resolution was given, as read for this sync: the candidates and
    /// the stored link's org (an org may appear twice).
    pub fn organizations(&self) -> impl Iterator<Item = &Organization> {
        let stored = match &self.stored {
            StoredLink::Found(o) => Some(o),
            _ => None,
        };
        self.candidates.iter().chain(stored)
    }
}

/// How the org's external_id must change when linking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum KeyChange {
    /// The org has no key: set it.
    Set,
    /// The org carries the 15-character form: rewrite it as 18 characters.
    UpgradeLegacy,
    /// The org carries the key of an account merged into this one: rewrite it.
    FromMergedAccount { merged: AccountId },
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Link to this org, changing its key if needed.
    Link {
        org: OrgId,
        key_change: Option<KeyChange>,
    },
    /// Create an org with this name and the key set at creation.
    Create { name: String },
    /// A person must decide.
    Exception {
        kind: ExceptionKind,
        orgs: Vec<OrgId>,
    },
}

/// The rule that decided, named for `trace` and the audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    DuplicateKey,
    StoredAndKeyDisagree,
    StoredOrgKeyedElsewhere,
    KeyMatch,
    LegacyKeyMatch,
    MergedAccountKey,
    DuplicateMergedKeys,
    StoredOrgKeyless,
    UniqueKeylessDomain,
    DomainOnOtherAccountsOrg,
    SeveralKeylessDomainOrgs,
    CreateNew,
    CreateWithSuffixedName,
    NameHeldByKeylessOrg,
}

impl Rule {
    /// One sentence for `trace`.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::DuplicateKey => "two or more organizations carry this account's key",
            Rule::StoredAndKeyDisagree => {
                "the stored organization id and the organization carrying the key differ"
            }
            Rule::StoredOrgKeyedElsewhere => {
                "the stored organization carries another account's or system's key"
            }
            Rule::KeyMatch => "one organization carries this account's key",
            Rule::LegacyKeyMatch => {
                "one organization carries this account's 15-character key; it is upgraded to 18"
            }
            Rule::MergedAccountKey => {
                "the organization carries the key of an account merged into this one"
            }
            Rule::DuplicateMergedKeys => {
                "several organizations carry keys of accounts merged into this one"
            }
            Rule::StoredOrgKeyless => "the stored organization has no key; the key is set",
            Rule::UniqueKeylessDomain => {
                "exactly one organization without a key carries the reviewed domain"
            }
            Rule::DomainOnOtherAccountsOrg => {
                "the reviewed domain is on an organization keyed to another account"
            }
            Rule::SeveralKeylessDomainOrgs => {
                "several organizations without a key carry the reviewed domain"
            }
            Rule::CreateNew => "no organization matched; a new one is created with the key set",
            Rule::CreateWithSuffixedName => {
                "no organization matched and another account's organization holds the name; created with the name suffix"
            }
            Rule::NameHeldByKeylessOrg => {
                "no organization matched, but an organization without a key holds the name"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_value(self).expect("rule serializes");
        f.write_str(json.as_str().expect("rule is a string"))
    }
}

/// A decision with the rule that made it and the evidence it saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub decision: Decision,
    pub rule: Rule,
    pub evidence: Evidence,
}

impl Resolution {
    /// The review-queue finding for an exception decision, with the actions a person can take.
    pub fn finding(&self, input: &ResolutionInput) -> Option<Finding> {
        self.finding_with(input, self.evidence.clone())
    }

    /// Like [`Resolution::finding`], taking the resolution: its evidence moves into the finding
    /// instead of being copied (the reconciliation diff makes a quarter of a million a night).
    pub fn into_finding(mut self, input: &ResolutionInput) -> Option<Finding> {
        let evidence = std::mem::take(&mut self.evidence);
        self.finding_with(input, evidence)
    }

    fn finding_with(&self, input: &ResolutionInput, evidence: Evidence) -> Option<Finding> {
        let Decision::Exception { kind, orgs } = &self.decision else {
            return None;
        };
        let account = input.account.clone();
        // Offer a link only to orgs this account may take: never one keyed to another
        // account or system (that account keeps its organization).
        let linkable = |id: &OrgId| {
            input
                .candidates
                .iter()
                .chain(match &input.stored {
                    StoredLink::Found(org) => Some(org),
                    _ => None,
                })
                .filter(|o| o.id == *id)
                .all(|o| may_link(o, input))
        };
        let mut actions: Vec<Action> = orgs
            .iter()
            .filter(|id| linkable(id))
            .map(|&org| Action::LinkToOrg {
                account: account.clone(),
                org,
            })
            .collect();
        actions.push(Action::CreateNewOrg {
            account: account.clone(),
        });
        if let (ExceptionKind::DomainCollision | ExceptionKind::AmbiguousDomain, Some(d)) =
            (kind, &input.domain)
        {
            actions.push(Action::TreatDomainAsShared { domain: d.clone() });
        }
        actions.push(Action::IgnoreAccount {
            account: account.clone(),
        });
        let domain = matches!(
            kind,
            ExceptionKind::DomainCollision | ExceptionKind::AmbiguousDomain
        )
        .then(|| input.domain.clone())
        .flatten();
        Some(
            Finding::new(*kind, [account], orgs.iter().copied())
                .with_domain(domain)
                .with_evidence(evidence.with("rule", self.rule))
                .with_actions(actions),
        )
    }
}

/// Whether an org is keyless or keyed to this account or one merged into it.
fn may_link(org: &Organization, input: &ResolutionInput) -> bool {
    match org.key() {
        OrgKey::None => true,
        key => key
            .account()
            .is_some_and(|id| *id == input.account || input.merged_accounts.contains(id)),
    }
}

/// How a candidate org relates to the account being resolved.
enum Relation<'a> {
    Keyed { legacy: bool },
    KeyedToMerged(&'a AccountId),
    KeyedElsewhere,
    Keyless,
}

/// Decides which organization the account links to. Pure: same input, same answer, whatever
/// order the candidates came in.
pub fn resolve(input: &ResolutionInput) -> Resolution {
    // One entry per org id, ordered by id, so duplicates and gathering order cannot matter.
    // The stored org was read live, so it wins over another copy of itself; among other
    // copies (say a mirror row next to a live read) the newest wins, so order never matters.
    let mut orgs: BTreeMap<OrgId, &Organization> = BTreeMap::new();
    for org in &input.candidates {
        orgs.entry(org.id)
            .and_modify(|kept| {
                if newer(org, kept) {
                    *kept = org;
                }
            })
            .or_insert(org);
    }
    if let StoredLink::Found(org) = &input.stored {
        orgs.insert(org.id, org);
    }

    let relation = |org: &Organization| match org.key() {
        OrgKey::None => Relation::Keyless,
        OrgKey::Account(id) if id == input.account => Relation::Keyed { legacy: false },
        OrgKey::LegacyAccount(id) if id == input.account => Relation::Keyed { legacy: true },
        key => match key
            .account()
            .and_then(|id| input.merged_accounts.iter().find(|m| *m == id))
        {
            Some(merged) => Relation::KeyedToMerged(merged),
            None => Relation::KeyedElsewhere,
        },
    };

    let mut evidence = Evidence::new();
    evidence.add("account", [input.account.as_str()]);
    let mut keyed = Vec::new();
    let mut keyed_to_merged = Vec::new();
    for org in orgs.values() {
        match relation(org) {
            Relation::Keyed { legacy } => keyed.push((org.id, legacy)),
            Relation::KeyedToMerged(merged) => keyed_to_merged.push((org.id, merged.clone())),
            Relation::KeyedElsewhere | Relation::Keyless => {}
        }
    }
    if !keyed.is_empty() {
        evidence.add("keyed_orgs", keyed.iter().map(|(id, _)| id));
    }
    if !keyed_to_merged.is_empty() {
        evidence.add("merged_key_orgs", keyed_to_merged.iter().map(|(id, _)| id));
        evidence.add("merged_accounts", keyed_to_merged.iter().map(|(_, m)| m));
    }
    let stored_org = match &input.stored {
        StoredLink::None => None,
        StoredLink::Found(org) => {
            evidence.add("stored_org", [org.id]);
            Some(org)
        }
        StoredLink::Gone(id) => {
            evidence.add("stored_org_gone", [id]);
            None
        }
        StoredLink::Unreadable(text) => {
            evidence.add("stored_org_id_unreadable", [text]);
            None
        }
    };

    let done = |decision, rule, evidence| Resolution {
        decision,
        rule,
        evidence,
    };
    let exception = |kind, orgs: Vec<OrgId>, rule, evidence| {
        done(Decision::Exception { kind, orgs }, rule, evidence)
    };

    // 1. Contradictions.
    if keyed.len() >= 2 {
        let ids = keyed.iter().map(|(id, _)| *id).collect();
        return exception(
            ExceptionKind::DuplicateExternalId,
            ids,
            Rule::DuplicateKey,
            evidence,
        );
    }
    if let (Some(stored), Some(&(key_org, _))) = (stored_org, keyed.first())
        && stored.id != key_org
    {
        return exception(
            ExceptionKind::StoredLinkKeyDisagree,
            vec![stored.id, key_org],
            Rule::StoredAndKeyDisagree,
            evidence,
        );
    }
    if let Some(stored) = stored_org
        && matches!(relation(stored), Relation::KeyedElsewhere)
    {
        evidence.add("stored_org_key", stored.external_id.iter());
        return exception(
            ExceptionKind::KeyConflict,
            vec![stored.id],
            Rule::StoredOrgKeyedElsewhere,
            evidence,
        );
    }

    // 2. The order.
    if let Some(&(org, legacy)) = keyed.first() {
        let (key_change, rule) = if legacy {
            (Some(KeyChange::UpgradeLegacy), Rule::LegacyKeyMatch)
        } else {
            (None, Rule::KeyMatch)
        };
        return done(Decision::Link { org, key_change }, rule, evidence);
    }
    match keyed_to_merged.as_slice() {
        [] => {}
        [(org, merged)] => {
            // The stored org, if any, is keyless or this same org (contradictions ruled out
            // the rest); a keyless stored org that differs is a disagreement a person settles.
            if let Some(stored) = stored_org
                && stored.id != *org
            {
                return exception(
                    ExceptionKind::StoredLinkKeyDisagree,
                    vec![stored.id, *org],
                    Rule::StoredAndKeyDisagree,
                    evidence,
                );
            }
            let key_change = Some(KeyChange::FromMergedAccount {
                merged: merged.clone(),
            });
            return done(
                Decision::Link {
                    org: *org,
                    key_change,
                },
                Rule::MergedAccountKey,
                evidence,
            );
        }
        several => {
            let ids = several.iter().map(|(id, _)| *id).collect();
            return exception(
                ExceptionKind::DuplicateExternalId,
                ids,
                Rule::DuplicateMergedKeys,
                evidence,
            );
        }
    }
    if let Some(stored) = stored_org {
        // Only a keyless stored org reaches here.
        return done(
            Decision::Link {
                org: stored.id,
                key_change: Some(KeyChange::Set),
            },
            Rule::StoredOrgKeyless,
            evidence,
        );
    }
    if let Some(domain) = &input.domain {
        let carrying: Vec<&Organization> = orgs
            .values()
            .copied()
            .filter(|o| carries_domain(o, domain))
            .collect();
        if !carrying.is_empty() {
            evidence.add("domain", [domain.as_str()]);
            evidence.add("domain_orgs", carrying.iter().map(|o| o.id));
            let (keyless, elsewhere): (Vec<&Organization>, Vec<&Organization>) = carrying
                .iter()
                .partition(|o| matches!(relation(o), Relation::Keyless));
            if !elsewhere.is_empty() {
                evidence.add(
                    "domain_org_keys",
                    elsewhere.iter().filter_map(|o| o.external_id.as_deref()),
                );
                let ids = carrying.iter().map(|o| o.id).collect();
                return exception(
                    ExceptionKind::DomainCollision,
                    ids,
                    Rule::DomainOnOtherAccountsOrg,
                    evidence,
                );
            }
            if let [only] = keyless.as_slice() {
                return done(
                    Decision::Link {
                        org: only.id,
                        key_change: Some(KeyChange::Set),
                    },
                    Rule::UniqueKeylessDomain,
                    evidence,
                );
            }
            let ids = keyless.iter().map(|o| o.id).collect();
            return exception(
                ExceptionKind::AmbiguousDomain,
                ids,
                Rule::SeveralKeylessDomainOrgs,
                evidence,
            );
        }
    }

    // Nothing found: create, unless the name points at a likely legacy org.
    let holders: Vec<&Organization> = orgs
        .values()
        .copied()
        .filter(|o| same_name(&o.name, &input.name))
        .collect();
    if !holders.is_empty() {
        evidence.add("name_held_by", holders.iter().map(|o| o.id));
    }
    let keyless_holders: Vec<OrgId> = holders
        .iter()
        .filter(|o| matches!(relation(o), Relation::Keyless))
        .map(|o| o.id)
        .collect();
    if !keyless_holders.is_empty() {
        return exception(
            ExceptionKind::PossibleLegacyOrg,
            keyless_holders,
            Rule::NameHeldByKeylessOrg,
            evidence,
        );
    }
    if holders.is_empty() {
        let name = input.name.clone();
        done(Decision::Create { name }, Rule::CreateNew, evidence)
    } else {
        let name = input.suffixed_name.clone();
        done(
            Decision::Create { name },
            Rule::CreateWithSuffixedName,
            evidence,
        )
    }
}

/// Whether `a` is a newer copy than `b` of the same org: by `updated_at` (ISO-8601 in UTC
/// sorts as text), then by content, so the pick is total and deterministic.
fn newer(a: &Organization, b: &Organization) -> bool {
    let rank = |o: &Organization| {
        (
            o.updated_at.clone(),
            o.name.clone(),
            o.external_id.clone(),
            o.domain_names.clone(),
        )
    };
    rank(a) > rank(b)
}

/// Zendesk keeps `domain_names` as typed; compare as orglink normalizes.
fn carries_domain(org: &Organization, domain: &Domain) -> bool {
    org.domain_names.iter().any(|d| {
        d.trim()
            .trim_end_matches('.')
            .eq_ignore_ascii_case(domain.as_str())
    })
}

/// Zendesk's name search is case-insensitive, and so is our comparison.
fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}
