//! Per-account decisions: gather the candidates, ask `resolve` (or take the consistent-account
//! shortcut), and turn the answer into findings, repairs and report lines.

use crate::exceptions::{Action, Evidence, ExceptionKind, Finding, ReportKind, ReportLine};
use crate::ids::{AccountId, OrgId};
use crate::resolution::{Decision, KeyChange, ResolutionInput, Rule, StoredLink, resolve};

use super::index::{Key, OrgIndex, domain_key};
use super::{AccountFacts, Repair, RepairReason};

/// What deciding some accounts produced. Several can be filled at once (one per thread) and
/// absorbed in account order, so the outcome does not depend on how the work was split.
#[derive(Debug, Default)]
pub(super) struct Outputs {
    pub findings: Vec<Finding>,
    pub report: Vec<ReportLine>,
    pub repairs: Vec<Repair>,
    /// Orgs an active account links to (or will, once its repair runs): not orphans.
    pub claimed: Vec<u32>,
    /// Links that set a keyless org's key, settled once every account is decided.
    pub keyless: Vec<KeylessLink>,
    /// Accounts decided through `resolve`.
    pub resolved: usize,
}

/// A link that would set a keyless org's key: safe only if no other account reaches for the
/// same org.
#[derive(Debug, Clone, Copy)]
pub(super) struct KeylessLink {
    /// Position of the account among the decided accounts.
    pub account: usize,
    pub org: u32,
    pub rule: Rule,
    pub stored: StoredState,
}

/// How the stored link compares with the org decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StoredState {
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
pub(super) enum DomainGap {
    /// Carried, or nothing to carry.
    None,
    /// Missing and free: orglink adds it.
    Free,
    /// Missing and on orgs keyed to other accounts (or systems).
    OnOtherAccountsOrgs(Vec<u32>),
    /// Missing and on keyless orgs: a person decides.
    OnKeylessOrgs(Vec<u32>),
}

/// The consistent account: its stored org exists and is the only org carrying its key, in
/// the 18-character form. For it `resolve` answers `Link { stored org, no key change }` by
/// rule `key_match` whatever else is gathered: exactly one keyed org and it is the stored one,
/// so no contradiction fires, and a keyed org decides before merged keys, domain or name.
pub(super) fn consistent_link(index: &OrgIndex, facts: &AccountFacts) -> Option<u32> {
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

/// A consistent account with nothing to say: eligible, its org's name and domain in place, no
/// website note. Most accounts on most nights; they need no further work.
pub(super) fn quiet(index: &OrgIndex, facts: &AccountFacts, org: u32) -> bool {
    facts.eligible
        && facts.website_disagrees.is_none()
        && facts.unusable_website.is_none()
        && (facts.name.trim().is_empty() || index.name(org).trim() == facts.name.trim())
        && matches!(domain_gap(index, facts, org), DomainGap::None)
}

/// Decides one active account. `consistent` is the org the shortcut already found.
pub(super) fn decide(
    index: &OrgIndex,
    facts: &AccountFacts,
    position: usize,
    consistent: Option<u32>,
    merged: &[AccountId],
    out: &mut Outputs,
) {
    if let Some(org) = consistent {
        let gap = out.linked(index, facts, org, None, StoredState::Same, Rule::KeyMatch);
        out.account_lines(index, facts, Some(org), gap);
        return;
    }
    let input = gather(index, facts, merged);
    let resolution = resolve(&input);
    out.resolved += 1;
    match &resolution.decision {
        Decision::Link { org, .. }
            if !facts.eligible
                && StoredState::of(&input.stored, Some(*org)) != StoredState::Same
                && !matches!(resolution.rule, Rule::KeyMatch | Rule::LegacyKeyMatch) =>
        {
            // Not eligible: it never gets a new link, and holds none to this org.
            out.account_lines(index, facts, None, DomainGap::None);
        }
        Decision::Link {
            org,
            key_change: Some(KeyChange::Set),
        } => out.keyless.push(KeylessLink {
            account: position,
            org: index.org_idx(*org).expect("candidates come from the index"),
            rule: resolution.rule,
            stored: StoredState::of(&input.stored, Some(*org)),
        }),
        Decision::Link { org, key_change } => {
            let idx = index.org_idx(*org).expect("candidates come from the index");
            let stored = StoredState::of(&input.stored, Some(*org));
            let gap = out.linked(
                index,
                facts,
                idx,
                key_change.as_ref(),
                stored,
                resolution.rule,
            );
            out.account_lines(index, facts, Some(idx), gap);
        }
        Decision::Create { .. } => {
            if facts.eligible {
                let stored = StoredState::of(&input.stored, None);
                out.will_create(facts, stored, resolution.rule);
            }
            out.account_lines(index, facts, None, DomainGap::None);
        }
        Decision::Exception { kind, .. } => {
            // An account that is not eligible never gets a new org, so only the
            // contradictions in links that already exist are its problems.
            if (facts.eligible || is_contradiction(*kind))
                && let Some(finding) = resolution.into_finding(&input)
            {
                out.findings.push(finding);
            }
            out.account_lines(index, facts, None, DomainGap::None);
        }
    }
}

pub(super) fn is_contradiction(kind: ExceptionKind) -> bool {
    matches!(
        kind,
        ExceptionKind::DuplicateExternalId
            | ExceptionKind::StoredLinkKeyDisagree
            | ExceptionKind::KeyConflict
    )
}

/// Decides the links that set a keyless org's key. One claimant per org links; when several
/// reach for one org, the stored link outranks the domain match (resolution's own order), and
/// claimants of equal rank all become findings.
pub(super) fn settle_keyless_links(
    index: &OrgIndex,
    accounts: &[AccountFacts],
    mut links: Vec<KeylessLink>,
    out: &mut Outputs,
) {
    let rank = |rule: Rule| u8::from(rule != Rule::StoredOrgKeyless);
    links.sort_by_key(|l| (l.org, rank(l.rule), l.account));
    for group in links.chunk_by(|a, b| a.org == b.org) {
        let top = rank(group[0].rule);
        let winners = group.iter().filter(|l| rank(l.rule) == top).count();
        for (n, link) in group.iter().enumerate() {
            let facts = &accounts[link.account];
            if winners == 1 && n == 0 {
                let gap = out.linked(
                    index,
                    facts,
                    link.org,
                    Some(&KeyChange::Set),
                    link.stored,
                    link.rule,
                );
                out.account_lines(index, facts, Some(link.org), gap);
                continue;
            }
            let others = group
                .iter()
                .filter(|o| o.account != link.account)
                .map(|o| accounts[o.account].id.as_str());
            let org = index.org(link.org).id;
            let mut evidence = Evidence::new();
            evidence
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
                out.findings.push(finding);
            }
            out.account_lines(index, facts, None, DomainGap::None);
        }
    }
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
        self.claimed.push(org);
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
                    .add("org_name", [index.name(org)])
                    .add("account_name", [facts.name.as_str()])
                    .add("name_held_by", holders.iter().map(|&h| index.org(h).id));
                let finding = Finding::new(ExceptionKind::NameDrift, [facts.id.clone()], [org_id])
                    .with_evidence(evidence)
                    .with_actions(vec![Action::FixByHand]);
                self.findings.push(finding);
            }
        }
        let gap = domain_gap(index, facts, org);
        match &gap {
            DomainGap::Free => reasons.push(RepairReason::AddDomain),
            DomainGap::OnOtherAccountsOrgs(holders) => {
                let mut evidence = Evidence::new();
                evidence.add("linked_org", [org_id]).add(
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
                self.findings.push(finding);
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
                let finding = Finding::new(ExceptionKind::DomainDrift, [facts.id.clone()], org_id)
                    .with_domain(facts.domain.clone())
                    .with_evidence(evidence)
                    .with_actions(vec![Action::FixByHand]);
                self.findings.push(finding);
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

/// Every candidate resolution asks for, from the compact state.
pub(super) fn gather(
    index: &OrgIndex,
    facts: &AccountFacts,
    merged: &[AccountId],
) -> ResolutionInput {
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
pub(super) fn domain_gap(index: &OrgIndex, facts: &AccountFacts, org: u32) -> DomainGap {
    let Some(d) = facts.domain.as_ref().and_then(|d| domain_key(d.as_str())) else {
        return DomainGap::None;
    };
    if index.carries(org, &d) {
        return DomainGap::None;
    }
    let Some(id) = index.domain_id(&d) else {
        return DomainGap::Free;
    };
    let holders: Vec<u32> = index.carriers(id).collect();
    if holders.iter().any(|&h| index.org(h).key != Key::None) {
        DomainGap::OnOtherAccountsOrgs(holders)
    } else {
        DomainGap::OnKeylessOrgs(holders)
    }
}
