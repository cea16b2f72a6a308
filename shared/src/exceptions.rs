//! The exception model: what goes to the human review queue, how it is identified across
//! nightly runs, and what a support lead is told to do about it.
//!
//! A row is keyed by a fingerprint of the problem (its kind and the ids involved), so a
//! nightly run updates it instead of adding a new one; a separate evidence hash lets a
//! resolved row reopen only when its evidence changes. Both are independent of the order in
//! which ids and evidence were gathered.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::Domain;
use crate::ids::{AccountId, OrgId};

/// Every kind of problem that needs a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionKind {
    /// Two or more organizations carry the same account's key.
    DuplicateExternalId,
    /// The stored org id and the key point at different organizations.
    StoredLinkKeyDisagree,
    /// The organization the account points at carries another account's (or system's) key.
    KeyConflict,
    /// The account's domain sits on an organization keyed to another account.
    DomainCollision,
    /// Several organizations without a key carry the account's domain.
    AmbiguousDomain,
    /// The name orglink would use is held by an organization without a key.
    PossibleLegacyOrg,
    /// The organization's account was deleted, merged away or stopped being a customer.
    OrphanedOrg,
    /// Salesforce refused the link fields (validation rule, lock, permission).
    WriteBackBlocked,
    /// Transient failures kept recurring past the configured attempts.
    SyncFailing,
    /// The organization's name no longer matches the account's.
    NameDrift,
    /// Website disagrees with the reviewed domain a person set, or the org lacks the domain.
    DomainDrift,
    /// Tickets sit on an organization their requester does not belong to.
    TicketAttributionDrift,
    /// The worker would have created an organization (or linked one by domain) while the
    /// organization mirror had never been filled by a full listing, so it held the account.
    MirrorNotFilled,
}

impl ExceptionKind {
    pub const ALL: [ExceptionKind; 13] = [
        ExceptionKind::DuplicateExternalId,
        ExceptionKind::StoredLinkKeyDisagree,
        ExceptionKind::KeyConflict,
        ExceptionKind::DomainCollision,
        ExceptionKind::AmbiguousDomain,
        ExceptionKind::PossibleLegacyOrg,
        ExceptionKind::OrphanedOrg,
        ExceptionKind::WriteBackBlocked,
        ExceptionKind::SyncFailing,
        ExceptionKind::NameDrift,
        ExceptionKind::DomainDrift,
        ExceptionKind::TicketAttributionDrift,
        ExceptionKind::MirrorNotFilled,
    ];

    /// The stable name used in storage, metrics and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::DuplicateExternalId => "duplicate_external_id",
            ExceptionKind::StoredLinkKeyDisagree => "stored_link_key_disagree",
            ExceptionKind::KeyConflict => "key_conflict",
            ExceptionKind::DomainCollision => "domain_collision",
            ExceptionKind::AmbiguousDomain => "ambiguous_domain",
            ExceptionKind::PossibleLegacyOrg => "possible_legacy_org",
            ExceptionKind::OrphanedOrg => "orphaned_org",
            ExceptionKind::WriteBackBlocked => "write_back_blocked",
            ExceptionKind::SyncFailing => "sync_failing",
            ExceptionKind::NameDrift => "name_drift",
            ExceptionKind::DomainDrift => "domain_drift",
            ExceptionKind::TicketAttributionDrift => "ticket_attribution_drift",
            ExceptionKind::MirrorNotFilled => "mirror_not_filled",
        }
    }

    /// How urgent it is by default. Critical: a wrong or duplicate link can happen or has
    /// happened. Warning: a link is missing or stale until someone decides. Info: cosmetic.
    pub fn severity(self) -> Severity {
        use ExceptionKind::*;
        match self {
            DuplicateExternalId | StoredLinkKeyDisagree | KeyConflict => Severity::Critical,
            DomainCollision | AmbiguousDomain | PossibleLegacyOrg | WriteBackBlocked
            | SyncFailing | OrphanedOrg | MirrorNotFilled => Severity::Warning,
            NameDrift | DomainDrift | TicketAttributionDrift => Severity::Info,
        }
    }

    /// One sentence a support lead reads first.
    pub fn summary(self) -> &'static str {
        use ExceptionKind::*;
        match self {
            DuplicateExternalId => {
                "Several Zendesk organizations claim to be this Salesforce account."
            }
            StoredLinkKeyDisagree => {
                "Salesforce points at one organization, but another organization carries the account's key."
            }
            KeyConflict => {
                "The organization this account points at belongs to a different account."
            }
            DomainCollision => {
                "The account's domain is already on an organization linked to a different account."
            }
            AmbiguousDomain => {
                "Several unlinked organizations carry the account's domain; orglink will not guess."
            }
            PossibleLegacyOrg => {
                "An unlinked organization already has this account's name; it may be the same customer."
            }
            OrphanedOrg => {
                "This organization's account was deleted, merged or is no longer a customer."
            }
            WriteBackBlocked => {
                "Salesforce refused orglink's update of the link fields on this account."
            }
            SyncFailing => "Syncing this account keeps failing.",
            NameDrift => "The organization's name no longer matches the account's name.",
            DomainDrift => {
                "The account's Website disagrees with the reviewed domain, or the organization lacks it."
            }
            TicketAttributionDrift => {
                "Tickets sit on an organization their requester does not belong to."
            }
            MirrorNotFilled => {
                "orglink has not yet read Zendesk's organizations, so it cannot tell whether this customer already has one; it created nothing."
            }
        }
    }

    /// What to do, in plain words.
    pub fn recommended_action(self) -> &'static str {
        use ExceptionKind::*;
        match self {
            DuplicateExternalId => {
                "Pick the organization that is the real customer and link it; clear the external ID on the others in Zendesk (orglink never deletes or merges organizations)."
            }
            StoredLinkKeyDisagree => {
                "Check which organization is right and link the account to it; orglink then corrects the other side."
            }
            KeyConflict => {
                "Link this account to the right organization, or create a new one; the other account keeps its organization."
            }
            DomainCollision => {
                "If both accounts are one customer, merge them in Salesforce; otherwise create a new organization for this account or mark the domain as shared."
            }
            AmbiguousDomain => {
                "Choose which organization belongs to this account and link it, or create a new one."
            }
            PossibleLegacyOrg => {
                "If it is the same customer, link the account to that organization; otherwise create a new organization (orglink adds a suffix to the name)."
            }
            OrphanedOrg => {
                "Nothing is removed automatically. Review the organization's open tickets, then ignore this row or link the organization to the surviving account."
            }
            WriteBackBlocked => {
                "Ask a Salesforce admin to let the integration user edit the four link fields (validation rule, record lock or permission), then retry."
            }
            SyncFailing => "Check the last error shown here; once the cause is fixed, retry.",
            NameDrift => {
                "No action needed unless the organization was renamed on purpose: orglink renames it on the next sync."
            }
            DomainDrift => {
                "Decide which domain is right: edit Zendesk Domain on the account, or fix Website."
            }
            TicketAttributionDrift => {
                "Move the tickets to the requester's organization, or add the requester to this organization."
            }
            MirrorNotFilled => {
                "Run a full reconcile (or a backfill apply): it reads every organization, re-queues this account and resolves this row."
            }
        }
    }
}

impl fmt::Display for ExceptionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// The machine-readable form of a recommended action: what the CLI's `exceptions resolve`
/// offers and what flows back as a sync request or a configuration change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Link this account to this organization (operator's choice among the candidates).
    LinkToOrg { account: AccountId, org: OrgId },
    /// Create a new organization for this account.
    CreateNewOrg { account: AccountId },
    /// Treat this domain as shared: it never links an account again.
    TreatDomainAsShared { domain: Domain },
    /// Leave this account out of orglink.
    IgnoreAccount { account: AccountId },
    /// Retry the sync once the cause is fixed.
    Retry { account: AccountId },
    /// Needs a change outside orglink (in Zendesk or Salesforce); resolve by hand.
    FixByHand,
}

/// Evidence: named facts, each a sorted set of values, so the same facts gathered in any
/// order hash the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Evidence(BTreeMap<String, Vec<String>>);

impl Evidence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds values under a name (kept sorted and unique).
    pub fn add<I, S>(&mut self, name: &str, values: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: ToString,
    {
        let entry = self.0.entry(name.to_string()).or_default();
        entry.extend(values.into_iter().map(|v| v.to_string()));
        entry.sort();
        entry.dedup();
        self
    }

    /// Adds one value under a name.
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.add(name, [value]);
        self
    }

    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.0.get(name).map(Vec::as_slice)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A stable identifier of a problem: the same kind over the same ids is the same row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One problem found, before it is stored as a row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: ExceptionKind,
    pub severity: Severity,
    /// The accounts involved, sorted.
    pub accounts: Vec<AccountId>,
    /// The organizations involved, sorted.
    pub orgs: Vec<OrgId>,
    pub domain: Option<Domain>,
    pub evidence: Evidence,
    /// The machine-readable actions a person may choose from, the recommended one first.
    pub actions: Vec<Action>,
}

impl Finding {
    /// A finding of `kind` with its default severity, ids sorted and unique.
    pub fn new(
        kind: ExceptionKind,
        accounts: impl IntoIterator<Item = AccountId>,
        orgs: impl IntoIterator<Item = OrgId>,
    ) -> Self {
        let mut accounts: Vec<_> = accounts.into_iter().collect();
        accounts.sort();
        accounts.dedup();
        let mut orgs: Vec<_> = orgs.into_iter().collect();
        orgs.sort();
        orgs.dedup();
        Self {
            kind,
            severity: kind.severity(),
            accounts,
            orgs,
            domain: None,
            evidence: Evidence::new(),
            actions: Vec::new(),
        }
    }

    pub fn with_domain(mut self, domain: Option<Domain>) -> Self {
        self.domain = domain;
        self
    }

    pub fn with_evidence(mut self, evidence: Evidence) -> Self {
        self.evidence = evidence;
        self
    }

    pub fn with_actions(mut self, actions: Vec<Action>) -> Self {
        self.actions = actions;
        self
    }

    /// The problem's identity: kind, ids and domain. Evidence is deliberately left out, so
    /// a row keeps its identity while its evidence changes.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut h = Sha256::new();
        h.update(self.kind.as_str());
        for a in &self.accounts {
            h.update(b"|a:");
            h.update(a.as_str());
        }
        for o in &self.orgs {
            h.update(b"|o:");
            h.update(o.to_string());
        }
        if let Some(d) = &self.domain {
            h.update(b"|d:");
            h.update(d.as_str());
        }
        let digest = h.finalize();
        Fingerprint(format!(
            "{}:{}",
            self.kind.as_str(),
            hex::encode(&digest[..12])
        ))
    }

    /// A hash of the evidence, so a resolved row reopens only when what it shows changed.
    pub fn evidence_hash(&self) -> String {
        let mut h = Sha256::new();
        for (name, values) in self.evidence.iter() {
            h.update(name);
            h.update(b"=");
            for v in values {
                h.update(v);
                h.update(b"\x1f");
            }
            h.update(b"\x1e");
        }
        hex::encode(&h.finalize()[..12])
    }
}

/// Informational lines of a run report: not open rows, so the review queue stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportKind {
    /// A Website (or reviewed domain) that cannot be used, with the reason.
    DataFix,
    /// A linked account that is no longer eligible: the link is kept and reported.
    ChurnedCustomer,
    /// An eligible account without a link, queued as a repair.
    MissingLink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLine {
    pub kind: ReportKind,
    pub account: AccountId,
    pub org: Option<OrgId>,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(s: &str) -> AccountId {
        AccountId::parse(s).unwrap()
    }

    fn org(n: u64) -> OrgId {
        OrgId::new(n).unwrap()
    }

    #[test]
    fn fingerprint_ignores_order_and_evidence() {
        let a = acct("001D000000IRFmaIAH");
        let b = acct("001D000000IomazIAB");
        let f1 = Finding::new(
            ExceptionKind::DuplicateExternalId,
            [a.clone()],
            [org(2), org(1)],
        )
        .with_evidence(Evidence::new().with("seen", "x"));
        let f2 = Finding::new(
            ExceptionKind::DuplicateExternalId,
            [a.clone()],
            [org(1), org(2)],
        )
        .with_evidence(Evidence::new().with("seen", "y"));
        assert_eq!(f1.fingerprint(), f2.fingerprint());
        assert_ne!(f1.evidence_hash(), f2.evidence_hash());
        // Another kind, account or org is another problem.
        let f3 = Finding::new(ExceptionKind::KeyConflict, [a.clone()], [org(1), org(2)]);
        let f4 = Finding::new(ExceptionKind::DuplicateExternalId, [b], [org(1), org(2)]);
        let f5 = Finding::new(ExceptionKind::DuplicateExternalId, [a], [org(1), org(3)]);
        for other in [f3, f4, f5] {
            assert_ne!(f1.fingerprint(), other.fingerprint());
        }
        assert!(
            f1.fingerprint()
                .as_str()
                .starts_with("duplicate_external_id:")
        );
    }

    #[test]
    fn evidence_hash_ignores_gathering_order() {
        let mut e1 = Evidence::new();
        e1.add("candidates", ["3", "1"]).add("domain", ["acme.com"]);
        let mut e2 = Evidence::new();
        e2.add("domain", ["acme.com"])
            .add("candidates", ["1"])
            .add("candidates", ["3", "1"]);
        let f = |e: Evidence| {
            Finding::new(ExceptionKind::AmbiguousDomain, [], [org(1)]).with_evidence(e)
        };
        assert_eq!(f(e1.clone()).evidence_hash(), f(e2).evidence_hash());
        assert_eq!(e1.get("candidates").unwrap(), ["1", "3"]);
    }

    #[test]
    fn every_kind_has_words_and_a_stable_name() {
        for kind in ExceptionKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert!(kind.summary().ends_with('.'));
            assert!(kind.recommended_action().len() > 20);
        }
        let names: std::collections::BTreeSet<_> =
            ExceptionKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ExceptionKind::ALL.len());
    }

    #[test]
    fn actions_serialize_with_a_tag() {
        let a = Action::LinkToOrg {
            account: acct("001D000000IRFmaIAH"),
            org: org(42),
        };
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"action": "link_to_org", "account": "001D000000IRFmaIAH", "org": 42})
        );
    }
}
