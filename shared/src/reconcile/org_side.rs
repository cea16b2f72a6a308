//! Org-side checks, run once every account is decided: orphaned orgs, keys and domains shared
//! by several orgs, misattributed tickets. Each emits in a fixed order (by account, domain or
//! org id), never in hash or stream order.

use std::collections::BTreeSet;

use crate::domain::Domain;
use crate::exceptions::{Action, Evidence, ExceptionKind, Finding};
use crate::ids::{AccountId, OrgId};
use crate::resolution::Rule;

use super::index::{FxMap, Key, OrgIndex};
use super::{DiffConfig, GoneAccount, Misattributed};

/// Orgs keyed to (or, keyless, stored on) deleted and merged-away accounts that no active
/// account links to. `gone` must be sorted by account id.
pub(super) fn orphaned_orgs(
    index: &OrgIndex,
    gone: &[GoneAccount],
    claimed: &[bool],
    emit: &mut dyn FnMut(Finding),
) {
    for g in gone {
        let mut orgs: Vec<u32> = index.keyed_to(&g.id).collect();
        if let Some(stored) = g.stored.and_then(|s| index.org_idx(s)) {
            let key = index.org(stored).key;
            if key == Key::None || index.key_account(stored) == Some(&g.id) {
                orgs.push(stored);
            }
        }
        orgs.sort_unstable();
        orgs.dedup();
        for idx in orgs {
            if claimed[idx as usize] {
                continue;
            }
            let org = index.org(idx).id;
            let mut evidence = Evidence::new();
            evidence.add("org_name", [index.name(idx)]);
            if let Some(key) = index.external_id(idx) {
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
            emit(
                Finding::new(ExceptionKind::OrphanedOrg, [g.id.clone()], [org])
                    .with_evidence(evidence)
                    .with_actions(actions),
            );
        }
    }
}

/// Several orgs carrying one account's key, whether or not any account holds a link. An active
/// account that was fed in already produced this finding through `resolve` (two keyed orgs
/// are its first contradiction), so `decided` accounts are skipped: one row per problem.
pub(super) fn shared_keys(
    index: &OrgIndex,
    decided: &dyn Fn(&AccountId) -> bool,
    emit: &mut dyn FnMut(Finding),
) {
    let mut slots: Vec<u32> = (0..index.keys.len() as u32)
        .filter(|&s| index.keys[s as usize].count >= 2)
        .filter(|&s| !decided(&index.keys[s as usize].account))
        .collect();
    slots.sort_by(|a, b| {
        index.keys[*a as usize]
            .account
            .cmp(&index.keys[*b as usize].account)
    });
    for slot in slots {
        let account = index.keys[slot as usize].account.clone();
        let mut orgs: Vec<OrgId> = index.keyed(slot).map(|i| index.org(i).id).collect();
        orgs.sort();
        let mut evidence = Evidence::new();
        evidence
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
        emit(
            Finding::new(ExceptionKind::DuplicateExternalId, [account], orgs)
                .with_evidence(evidence)
                .with_actions(actions),
        );
    }
}

/// A domain on several orgs keyed to different accounts.
pub(super) fn shared_domains(index: &OrgIndex, config: &DiffConfig, emit: &mut dyn FnMut(Finding)) {
    let mut domains: Vec<u32> = (0..index.domain_count() as u32)
        .filter(|&d| index.carrier_count(d) >= 2)
        .filter(|&d| !config.shared_domains.contains(index.domain_str(d)))
        .collect();
    domains.sort_by(|a, b| index.domain_str(*a).cmp(index.domain_str(*b)));
    for domain in domains {
        let text = index.domain_str(domain);
        let mut keyed: Vec<(AccountId, OrgId)> = Vec::new();
        let mut keyless: Vec<OrgId> = Vec::new();
        for idx in index.carriers(domain) {
            let org = index.org(idx).id;
            match index.key_account(idx) {
                Some(a) => keyed.push((a.clone(), org)),
                None => keyless.push(org),
            }
        }
        let accounts: BTreeSet<&AccountId> = keyed.iter().map(|(a, _)| a).collect();
        if accounts.len() < 2 {
            continue;
        }
        // The finding names the domain only when the org's entry is already in the form
        // orglink uses (an entry like `www.acme.com` stays evidence only).
        let domain = Domain::parse(text).ok().filter(|d| d.as_str() == text);
        let mut evidence = Evidence::new();
        if domain.is_none() {
            evidence.add("domain_entry", [text]);
        }
        if !keyless.is_empty() {
            evidence.add("keyless_domain_orgs", keyless.iter());
        }
        let mut actions = Vec::new();
        if let Some(d) = &domain {
            actions.push(Action::TreatDomainAsShared { domain: d.clone() });
        }
        actions.push(Action::FixByHand);
        emit(
            Finding::new(
                ExceptionKind::DomainCollision,
                keyed.iter().map(|(a, _)| a.clone()),
                keyed.iter().map(|(_, o)| *o),
            )
            .with_domain(domain)
            .with_evidence(evidence)
            .with_actions(actions),
        );
    }
}

/// One finding per org with tickets whose requester does not belong to it.
pub(super) fn misattributed_tickets(
    index: &OrgIndex,
    tickets: FxMap<OrgId, Misattributed>,
    emit: &mut dyn FnMut(Finding),
) {
    let mut tickets: Vec<(OrgId, Misattributed)> = tickets.into_iter().collect();
    tickets.sort_by_key(|(org, _)| *org);
    for (org, m) in tickets {
        let idx = index.org_idx(org);
        let account = idx.and_then(|i| index.key_account(i)).cloned();
        let mut evidence = Evidence::new();
        evidence
            .add("misattributed_tickets", [m.count])
            .add("tickets", m.tickets.iter())
            .add("requesters", m.requesters.iter());
        match idx {
            Some(i) => evidence.add("org_name", [index.name(i)]),
            None => evidence.add("org_missing", [true]),
        };
        emit(
            Finding::new(ExceptionKind::TicketAttributionDrift, account, [org])
                .with_evidence(evidence)
                .with_actions(vec![Action::FixByHand]),
        );
    }
}
