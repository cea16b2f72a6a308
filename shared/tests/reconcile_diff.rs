//! The reconciliation diff over hand-built worlds: a clean world reports nothing, one injected
//! drift gives exactly one finding of its kind (or exactly its repair or report line), and over
//! random worlds the outcome does not depend on page order, page size or the consistent-account
//! shortcut, and every repair is something resolution would do without a person.

use std::collections::BTreeSet;

use orglink_shared::domain::Domain;
use orglink_shared::exceptions::{ExceptionKind, Finding, ReportKind};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::model::Organization;
use orglink_shared::reconcile::{
    AccountFacts, DiffBuilder, DiffConfig, DiffOutcome, RepairReason, TicketFacts,
};
use orglink_shared::resolution::{Decision, ResolutionInput, StoredLink, resolve};
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn acct(n: u32) -> AccountId {
    AccountId::parse(&format!("001{n:012}")).unwrap()
}

fn oid(n: u64) -> OrgId {
    OrgId::new(n).unwrap()
}

fn org(id: u64, name: &str, key: Option<&str>, domains: &[&str]) -> Organization {
    Organization {
        id: oid(id),
        name: name.into(),
        external_id: key.map(Into::into),
        domain_names: domains.iter().map(|d| d.to_string()).collect(),
        tags: vec![],
        organization_fields: Default::default(),
        updated_at: None,
    }
}

fn facts(n: u32, stored: Option<u64>) -> AccountFacts {
    let name = format!("Company {n}");
    AccountFacts {
        id: acct(n),
        is_deleted: false,
        master_record_id: None,
        eligible: true,
        suffixed_name: format!("{name} (Salesforce)"),
        name,
        domain: Some(Domain::parse(&format!("company{n}.com")).unwrap()),
        website_disagrees: None,
        unusable_website: None,
        stored_org_id: stored.map(|s| s.to_string()),
    }
}

#[derive(Debug, Clone)]
struct World {
    orgs: Vec<Organization>,
    accounts: Vec<AccountFacts>,
    tickets: Vec<TicketFacts>,
}

impl World {
    /// Accounts 1..=3, each linked to org 100+n that carries its key, name and domain.
    fn clean() -> Self {
        let mut w = World {
            orgs: vec![],
            accounts: vec![],
            tickets: vec![],
        };
        for n in 1..=3u32 {
            let id = acct(n);
            w.orgs.push(org(
                100 + u64::from(n),
                &format!("Company {n}"),
                Some(id.as_str()),
                &[&format!("company{n}.com")],
            ));
            w.accounts.push(facts(n, Some(100 + u64::from(n))));
        }
        w
    }

    fn account(&mut self, n: u32) -> &mut AccountFacts {
        let id = acct(n);
        if let Some(i) = self.accounts.iter().position(|a| a.id == id) {
            &mut self.accounts[i]
        } else {
            self.accounts.push(facts(n, None));
            self.accounts.last_mut().unwrap()
        }
    }

    fn org(&mut self, id: u64) -> &mut Organization {
        let i = self.orgs.iter().position(|o| o.id == oid(id)).unwrap();
        &mut self.orgs[i]
    }

    fn run(&self) -> DiffOutcome {
        run_with(self, DiffConfig::default(), 100, 2000)
    }
}

fn run_with(w: &World, config: DiffConfig, org_page: usize, account_page: usize) -> DiffOutcome {
    let mut orgs = DiffBuilder::new(config);
    for page in w.orgs.chunks(org_page.max(1)) {
        orgs.add_orgs(page);
    }
    let mut diff = orgs.accounts();
    for page in w.accounts.chunks(account_page.max(1)) {
        diff.add_accounts(page.to_vec());
    }
    diff.add_tickets(&w.tickets);
    diff.finish()
}

#[track_caller]
fn only_finding(out: &DiffOutcome, kind: ExceptionKind) -> &Finding {
    assert_eq!(out.findings.len(), 1, "{:#?}", out.findings);
    assert_eq!(out.findings[0].kind, kind, "{:#?}", out.findings);
    &out.findings[0]
}

#[track_caller]
fn no_repairs_or_lines(out: &DiffOutcome) {
    assert!(out.repairs.is_empty(), "{:#?}", out.repairs);
    assert!(out.report.is_empty(), "{:#?}", out.report);
}

fn ids(accounts: &[u32]) -> Vec<AccountId> {
    accounts.iter().map(|&n| acct(n)).collect()
}

fn orgs(ids: &[u64]) -> Vec<OrgId> {
    ids.iter().map(|&n| oid(n)).collect()
}

#[test]
fn clean_world_has_nothing_to_report() {
    let out = World::clean().run();
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    no_repairs_or_lines(&out);
    assert!(out.unseen_accounts.is_empty());
    assert_eq!(out.counts.orgs, 3);
    assert_eq!(out.counts.accounts, 3);
    assert_eq!(out.counts.fast_path, 3);
    assert_eq!(out.counts.resolved, 0);
}

#[test]
fn duplicate_key_is_one_finding_though_both_sides_see_it() {
    let mut w = World::clean();
    w.orgs
        .push(org(200, "Company 1 EMEA", Some(acct(1).id15()), &[]));
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::DuplicateExternalId);
    assert_eq!(f.accounts, ids(&[1]));
    assert_eq!(f.orgs, orgs(&[101, 200]));
    // The account side's evidence (resolution's rule and stored org) is the one kept.
    assert_eq!(f.evidence.get("stored_org").unwrap(), ["101"]);
    no_repairs_or_lines(&out);
}

#[test]
fn duplicate_key_without_any_account_is_found_org_to_org() {
    let mut w = World::clean();
    let ghost = acct(9);
    w.orgs.push(org(600, "Ghost A", Some(ghost.as_str()), &[]));
    w.orgs.push(org(601, "Ghost B", Some(ghost.id15()), &[]));
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::DuplicateExternalId);
    assert_eq!(f.accounts, ids(&[9]));
    assert_eq!(f.orgs, orgs(&[600, 601]));
    assert_eq!(out.unseen_accounts, ids(&[9]));
    no_repairs_or_lines(&out);
}

#[test]
fn stored_link_and_key_disagree() {
    let mut w = World::clean();
    w.orgs.push(org(300, "Old Company 1", None, &[]));
    w.account(1).stored_org_id = Some("300".into());
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::StoredLinkKeyDisagree);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[1]), orgs(&[101, 300]))
    );
    no_repairs_or_lines(&out);
}

#[test]
fn stored_org_keyed_to_another_account_is_a_key_conflict() {
    let mut w = World::clean();
    let a4 = w.account(4);
    a4.stored_org_id = Some("102".into());
    a4.domain = None;
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::KeyConflict);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[4]), orgs(&[102]))
    );
    no_repairs_or_lines(&out);
}

#[test]
fn domain_on_another_accounts_org_is_a_collision() {
    let mut w = World::clean();
    w.account(4).domain = Some(Domain::parse("company2.com").unwrap());
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::DomainCollision);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[4]), orgs(&[102]))
    );
    assert_eq!(f.domain.as_ref().unwrap().as_str(), "company2.com");
    no_repairs_or_lines(&out);
}

#[test]
fn linked_account_whose_domain_sits_on_another_accounts_org_is_a_collision() {
    let mut w = World::clean();
    w.account(1).domain = Some(Domain::parse("company2.com").unwrap());
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::DomainCollision);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[1]), orgs(&[102]))
    );
    assert_eq!(f.evidence.get("linked_org").unwrap(), ["101"]);
    no_repairs_or_lines(&out);
}

#[test]
fn domain_on_orgs_keyed_to_different_accounts_is_found_org_to_org() {
    let mut w = World::clean();
    w.org(101).domain_names.push("Company2.com".into());
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::DomainCollision);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[1, 2]), orgs(&[101, 102]))
    );
    assert_eq!(f.domain.as_ref().unwrap().as_str(), "company2.com");
    no_repairs_or_lines(&out);

    // A domain configured as shared is not a collision.
    let config = DiffConfig {
        shared_domains: ["company2.com".to_string()].into(),
        ..DiffConfig::default()
    };
    assert!(run_with(&w, config, 100, 100).findings.is_empty());
}

#[test]
fn several_keyless_orgs_on_the_domain_are_ambiguous() {
    let mut w = World::clean();
    w.account(4);
    w.orgs.push(org(401, "Four A", None, &["company4.com"]));
    w.orgs.push(org(402, "Four B", None, &["company4.com"]));
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::AmbiguousDomain);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[4]), orgs(&[401, 402]))
    );
    no_repairs_or_lines(&out);
}

#[test]
fn name_held_by_a_keyless_org_is_a_possible_legacy_org() {
    let mut w = World::clean();
    w.account(4);
    w.orgs.push(org(401, "company 4", None, &[]));
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::PossibleLegacyOrg);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[4]), orgs(&[401]))
    );
    no_repairs_or_lines(&out);
}

#[test]
fn deleted_accounts_org_is_orphaned() {
    let mut w = World::clean();
    w.account(3).is_deleted = true;
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::OrphanedOrg);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[3]), orgs(&[103]))
    );
    assert_eq!(f.evidence.get("account_deleted").unwrap(), ["true"]);
    no_repairs_or_lines(&out);
}

#[test]
fn merged_away_accounts_org_is_orphaned_when_the_survivor_has_its_own() {
    let mut w = World::clean();
    let a3 = w.account(3);
    a3.is_deleted = true;
    a3.master_record_id = Some(acct(1));
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::OrphanedOrg);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[3]), orgs(&[103]))
    );
    assert_eq!(
        f.evidence.get("account_merged_into").unwrap(),
        [acct(1).to_string()]
    );
    no_repairs_or_lines(&out);
}

#[test]
fn merged_away_accounts_org_is_relinked_to_a_survivor_without_one() {
    // The survivor comes first in the stream, its merged-away account after it.
    let mut w = World::clean();
    let mut survivor = facts(4, None);
    survivor.name = "Company 3".into();
    survivor.domain = Some(Domain::parse("company3.com").unwrap());
    w.accounts.insert(0, survivor);
    let a3 = w.account(3);
    a3.is_deleted = true;
    a3.master_record_id = Some(acct(4));
    let out = w.run();
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert_eq!(out.repairs.len(), 1);
    let r = &out.repairs[0];
    assert_eq!((r.account.clone(), r.org), (acct(4), Some(oid(103))));
    assert_eq!(
        r.reasons,
        [
            RepairReason::WriteBackLink,
            RepairReason::RelinkMergedOrg { merged: acct(3) }
        ]
    );
}

#[test]
fn account_no_longer_eligible_is_a_churned_customer_line_not_a_row() {
    let mut w = World::clean();
    w.account(2).eligible = false;
    let out = w.run();
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert!(out.repairs.is_empty());
    assert_eq!(out.report.len(), 1);
    assert_eq!(out.report[0].kind, ReportKind::ChurnedCustomer);
    assert_eq!(
        (out.report[0].account.clone(), out.report[0].org),
        (acct(2), Some(oid(102)))
    );
}

#[test]
fn name_drift_with_the_name_held_elsewhere_is_a_finding_and_a_free_name_a_repair() {
    let mut w = World::clean();
    w.org(101).name = "Company 1 (old)".into();
    let free = w.run();
    assert!(free.findings.is_empty());
    assert_eq!(free.repairs.len(), 1);
    assert_eq!(free.repairs[0].reasons, [RepairReason::RenameOrg]);

    w.orgs.push(org(500, "Company 1", None, &[]));
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::NameDrift);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[1]), orgs(&[101]))
    );
    assert_eq!(f.evidence.get("name_held_by").unwrap(), ["500"]);
    no_repairs_or_lines(&out);
}

#[test]
fn name_held_by_another_accounts_org_means_the_suffixed_name() {
    let mut w = World::clean();
    w.orgs
        .push(org(700, "Company 1", Some(acct(7).as_str()), &[]));
    w.accounts.push(AccountFacts {
        name: "Company 1".into(),
        domain: None,
        ..facts(7, Some(700))
    });
    // Org 101 already carries the suffixed name: nothing to do.
    w.org(101).name = "Company 1 (Salesforce)".into();
    let out = w.run();
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    no_repairs_or_lines(&out);
    // Any other name is renamed to the suffixed one.
    w.org(101).name = "Company One".into();
    let out = w.run();
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    assert_eq!(out.repairs.len(), 1);
    assert_eq!(out.repairs[0].reasons, [RepairReason::RenameOrg]);
}

#[test]
fn website_disagreeing_with_a_persons_domain_is_domain_drift() {
    let mut w = World::clean();
    w.account(1).website_disagrees = Some("company1-new.com".into());
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::DomainDrift);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[1]), orgs(&[101]))
    );
    assert_eq!(
        f.evidence.get("website_domain").unwrap(),
        ["company1-new.com"]
    );
    no_repairs_or_lines(&out);
}

#[test]
fn org_lacking_the_domain_is_a_repair_when_free_and_drift_when_a_keyless_org_holds_it() {
    let mut w = World::clean();
    w.org(101).domain_names.clear();
    let free = w.run();
    assert!(free.findings.is_empty());
    assert_eq!(free.repairs.len(), 1);
    assert_eq!(free.repairs[0].reasons, [RepairReason::AddDomain]);

    w.orgs
        .push(org(500, "Someone else", None, &["company1.com"]));
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::DomainDrift);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[1]), orgs(&[101]))
    );
    assert_eq!(f.evidence.get("domain_held_by").unwrap(), ["500"]);
    no_repairs_or_lines(&out);
}

#[test]
fn tickets_on_an_org_their_requester_is_not_in_give_one_finding_per_org() {
    let mut w = World::clean();
    let t = |ticket, org, requester, requester_orgs: &[u64]| TicketFacts {
        ticket,
        org: oid(org),
        requester,
        requester_orgs: orgs(requester_orgs),
    };
    w.tickets = vec![
        t(1, 101, 7, &[102]),
        t(2, 101, 8, &[]),
        t(3, 102, 9, &[102]),
        t(4, 103, 9, &[101, 103]),
    ];
    let out = w.run();
    let f = only_finding(&out, ExceptionKind::TicketAttributionDrift);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[1]), orgs(&[101]))
    );
    assert_eq!(f.evidence.get("misattributed_tickets").unwrap(), ["2"]);
    assert_eq!(f.evidence.get("tickets").unwrap(), ["1", "2"]);
    no_repairs_or_lines(&out);
}

#[test]
fn accounts_orgs_are_keyed_to_but_never_streamed_are_asked_for_then_judged() {
    let mut w = World::clean();
    w.orgs.push(org(600, "Ghost", Some(acct(9).as_str()), &[]));
    let mut builder = DiffBuilder::new(DiffConfig::default());
    builder.add_orgs(&w.orgs);
    let mut diff = builder.accounts();
    diff.add_accounts(w.accounts.clone());
    assert_eq!(diff.accounts_to_look_up(), ids(&[9]));
    // Salesforce no longer knows it at all.
    diff.add_account(AccountFacts::purged(acct(9)));
    assert!(diff.accounts_to_look_up().is_empty());
    let out = diff.finish();
    let f = only_finding(&out, ExceptionKind::OrphanedOrg);
    assert_eq!(
        (f.accounts.clone(), f.orgs.clone()),
        (ids(&[9]), orgs(&[600]))
    );
    assert!(out.unseen_accounts.is_empty());
}

#[test]
fn missing_links_are_repairs_and_report_lines() {
    let mut w = World::clean();
    w.account(4);
    w.account(5).stored_org_id = Some("999".into());
    w.account(6).stored_org_id = Some("n/a".into());
    w.account(1).stored_org_id = None;
    let out = w.run();
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    let repairs: Vec<_> = out
        .repairs
        .iter()
        .map(|r| (r.account.clone(), r.org, r.reasons.clone()))
        .collect();
    assert_eq!(
        repairs,
        [
            (acct(1), Some(oid(101)), vec![RepairReason::WriteBackLink]),
            (acct(4), None, vec![RepairReason::CreateOrg]),
            (
                acct(5),
                None,
                vec![
                    RepairReason::CreateOrg,
                    RepairReason::StoredOrgGone { org: oid(999) }
                ]
            ),
            (
                acct(6),
                None,
                vec![RepairReason::CreateOrg, RepairReason::StoredIdUnreadable]
            ),
        ]
    );
    assert_eq!(out.report.len(), 4);
    assert!(out.report.iter().all(|l| l.kind == ReportKind::MissingLink));
}

#[test]
fn keys_to_set_or_upgrade_are_repairs() {
    let mut w = World::clean();
    w.org(101).external_id = None;
    w.org(102).external_id = Some(acct(2).id15().into());
    let out = w.run();
    assert!(out.findings.is_empty(), "{:#?}", out.findings);
    let reasons: Vec<_> = out.repairs.iter().map(|r| r.reasons.clone()).collect();
    assert_eq!(
        reasons,
        [
            vec![RepairReason::SetKey],
            vec![RepairReason::UpgradeLegacyKey]
        ]
    );
}

#[test]
fn two_accounts_reaching_for_one_keyless_org_get_no_repair() {
    let mut w = World::clean();
    let shared = Domain::parse("shared4.com").unwrap();
    w.account(4).domain = Some(shared.clone());
    w.account(5).domain = Some(shared.clone());
    w.orgs.push(org(400, "Shared Four", None, &["shared4.com"]));
    let out = w.run();
    assert!(out.repairs.is_empty(), "{:#?}", out.repairs);
    let kinds: Vec<_> = out
        .findings
        .iter()
        .map(|f| (f.kind, f.accounts.clone(), f.orgs.clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ExceptionKind::DomainCollision, ids(&[4]), orgs(&[400])),
            (ExceptionKind::DomainCollision, ids(&[5]), orgs(&[400])),
        ]
    );

    // The stored link outranks the domain match: that account links, the other is reported.
    w.account(6).stored_org_id = Some("400".into());
    w.account(6).domain = None;
    let out = w.run();
    assert_eq!(out.repairs.len(), 1);
    assert_eq!(out.repairs[0].account, acct(6));
    assert!(out.repairs[0].reasons.contains(&RepairReason::SetKey));
    assert_eq!(out.findings.len(), 2, "{:#?}", out.findings);
}

#[test]
fn data_fixes_are_report_lines() {
    let mut w = World::clean();
    w.account(1).unusable_website = Some("gmail.com is a consumer mail domain".into());
    w.account(3).eligible = false;
    w.account(3).unusable_website = Some("no website".into());
    let out = w.run();
    assert!(out.findings.is_empty());
    let lines: Vec<_> = out
        .report
        .iter()
        .map(|l| (l.kind, l.account.clone()))
        .collect();
    assert_eq!(
        lines,
        [
            (ReportKind::DataFix, acct(1)),
            (ReportKind::DataFix, acct(3)),
            (ReportKind::ChurnedCustomer, acct(3)),
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Random worlds
// ---------------------------------------------------------------------------------------------

const NAMES: [&str; 4] = ["Alpha", "Beta", "Alpha (2)", "ALPHA"];
const DOMAINS: [&str; 4] = ["alpha.com", "beta.com", "gamma.com", "delta.com"];

fn arb_world() -> impl Strategy<Value = World> {
    let raw_org = (
        1u64..=24,
        0usize..6,
        (0u8..4, 1u32..=8),
        proptest::collection::vec(0usize..4, 0..3),
    );
    let raw_account = (
        1u32..=8,
        0u8..10,
        1u32..=8,
        0usize..5,
        0usize..5,
        (0u8..4, 1u64..=24),
        (any::<bool>(), any::<bool>()),
    );
    let ticket = (
        1u64..40,
        1u64..=24,
        1u64..6,
        proptest::collection::vec(1u64..=24, 0..2),
    );
    (
        proptest::collection::vec(raw_org, 0..16),
        proptest::collection::vec(raw_account, 0..12),
        proptest::collection::vec(ticket, 0..6),
    )
        .prop_map(|(raw_orgs, raw_accounts, raw_tickets)| {
            let mut w = World {
                orgs: vec![],
                accounts: vec![],
                tickets: vec![],
            };
            for (id, name, (key_kind, key_who), domains) in raw_orgs {
                if w.orgs.iter().any(|o| o.id == oid(id)) {
                    continue;
                }
                let name = NAMES
                    .get(name)
                    .map_or(format!("Org {id}"), |n| n.to_string());
                let who = acct(key_who);
                let key = match key_kind {
                    0 => None,
                    1 => Some(who.as_str().to_string()),
                    2 => Some(who.id15().to_string()),
                    _ => Some("hubspot-7".to_string()),
                };
                let domains: BTreeSet<&str> = domains.iter().map(|&d| DOMAINS[d]).collect();
                w.orgs.push(Organization {
                    external_id: key,
                    ..org(id, &name, None, &domains.into_iter().collect::<Vec<_>>())
                });
            }
            for (n, life, master, name, domain, (stored_kind, stored), (drift, unusable)) in
                raw_accounts
            {
                if w.accounts.iter().any(|a| a.id == acct(n)) {
                    continue;
                }
                let name = ["Alpha", "Beta", "Gamma", "alpha"][name % 4].to_string();
                w.accounts.push(AccountFacts {
                    id: acct(n),
                    is_deleted: life <= 1,
                    master_record_id: (life == 1 && master != n).then(|| acct(master)),
                    eligible: life >= 4,
                    suffixed_name: format!("{name} (2)"),
                    name,
                    domain: DOMAINS.get(domain).map(|d| Domain::parse(d).unwrap()),
                    website_disagrees: drift.then(|| "elsewhere.com".into()),
                    unusable_website: unusable.then(|| "no website".into()),
                    stored_org_id: match stored_kind {
                        0 => None,
                        1 => Some("junk".into()),
                        2 => Some(stored.to_string()),
                        // Mostly the org carrying this account's key: consistent links.
                        _ => Some(
                            w.orgs
                                .iter()
                                .find(|o| acct(n).is_key(o.external_id.as_deref().unwrap_or("")))
                                .map_or(stored, |o| o.id.get())
                                .to_string(),
                        ),
                    },
                });
            }
            for (ticket, org, requester, requester_orgs) in raw_tickets {
                w.tickets.push(TicketFacts {
                    ticket,
                    org: oid(org),
                    requester,
                    requester_orgs: orgs(&requester_orgs),
                });
            }
            w
        })
}

/// A deterministic shuffle (the test must not depend on a random source of its own).
fn shuffled<T: Clone>(items: &[T], mut seed: u64) -> Vec<T> {
    let mut v = items.to_vec();
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    v
}

/// Resolution's answer for an account, gathered independently: every org is a candidate
/// (resolution itself picks the ones related by key, domain or name).
fn oracle(w: &World, a: &AccountFacts) -> Decision {
    let stored = match a.stored_org_id.as_deref().map(str::trim) {
        None | Some("") => StoredLink::None,
        Some(text) => match OrgId::parse(text) {
            Ok(id) => match w.orgs.iter().find(|o| o.id == id) {
                Some(o) => StoredLink::Found(o.clone()),
                None => StoredLink::Gone(id),
            },
            Err(_) => StoredLink::Unreadable(text.into()),
        },
    };
    let input = ResolutionInput {
        account: a.id.clone(),
        merged_accounts: w
            .accounts
            .iter()
            .filter(|m| m.master_record_id.as_ref() == Some(&a.id))
            .map(|m| m.id.clone())
            .collect(),
        name: a.name.clone(),
        suffixed_name: a.suffixed_name.clone(),
        domain: a.domain.clone(),
        stored,
        candidates: w.orgs.clone(),
    };
    resolve(&input).decision
}

fn comparable(out: &DiffOutcome) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        &out.findings,
        &out.report,
        &out.repairs,
        &out.unseen_accounts,
    )
}

/// The random worlds reach the shortcut, `resolve`, every finding kind the diff produces,
/// repairs and every report kind, so the properties below are about something.
#[test]
fn random_worlds_reach_every_outcome() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = arb_world();
    let mut kinds = BTreeSet::new();
    let mut report = BTreeSet::new();
    let (mut fast, mut resolved, mut repairs) = (0, 0, 0);
    for _ in 0..400 {
        let w = strategy.new_tree(&mut runner).unwrap().current();
        let out = w.run();
        kinds.extend(out.findings.iter().map(|f| f.kind));
        report.extend(out.report.iter().map(|l| l.kind));
        fast += out.counts.fast_path;
        resolved += out.counts.resolved;
        repairs += out.repairs.len();
    }
    // The worker's kinds (write-back, failing sync, an unfilled mirror) never come from the diff.
    let expected: BTreeSet<_> = ExceptionKind::ALL
        .into_iter()
        .filter(|k| {
            !matches!(
                k,
                ExceptionKind::WriteBackBlocked
                    | ExceptionKind::SyncFailing
                    | ExceptionKind::MirrorNotFilled
            )
        })
        .collect();
    assert_eq!(kinds, expected);
    assert_eq!(report.len(), 3, "{report:?}");
    assert!(
        fast > 0 && resolved > 0 && repairs > 0,
        "{fast} {resolved} {repairs}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn outcome_does_not_depend_on_page_order_size_or_the_shortcut(
        w in arb_world(),
        seed in 1u64..u64::MAX,
        org_page in 1usize..5,
        account_page in 1usize..5,
    ) {
        let base = run_with(&w, DiffConfig::default(), 1000, 1000);
        let reordered = World {
            orgs: shuffled(&w.orgs, seed),
            accounts: shuffled(&w.accounts, seed.rotate_left(17)),
            tickets: shuffled(&w.tickets, seed.rotate_left(29)),
        };
        let paged = run_with(&reordered, DiffConfig::default(), org_page, account_page);
        prop_assert_eq!(comparable(&base), comparable(&paged));
        prop_assert_eq!(&base.counts, &paged.counts);
        let threaded = run_with(&w, DiffConfig { threads: 3, ..DiffConfig::default() }, 2, 2);
        prop_assert_eq!(comparable(&base), comparable(&threaded));
        let slow = run_with(&w, DiffConfig { fast_path: false, ..DiffConfig::default() }, 3, 3);
        prop_assert_eq!(comparable(&base), comparable(&slow));
        prop_assert_eq!(slow.counts.fast_path, 0);
        prop_assert_eq!(base.counts.findings, slow.counts.findings);
    }

    #[test]
    fn each_problem_is_reported_once_and_repairs_are_only_safe(w in arb_world()) {
        let out = w.run();
        let fingerprints: BTreeSet<_> = out.findings.iter().map(Finding::fingerprint).collect();
        prop_assert_eq!(fingerprints.len(), out.findings.len());
        for kind in [ExceptionKind::WriteBackBlocked, ExceptionKind::SyncFailing] {
            prop_assert!(out.findings.iter().all(|f| f.kind != kind));
        }
        for r in &out.repairs {
            let a = w.accounts.iter().find(|a| a.id == r.account).unwrap();
            prop_assert!(a.eligible && !a.is_deleted && a.master_record_id.is_none());
            match (oracle(&w, a), r.org) {
                (Decision::Link { org, .. }, Some(repair_org)) => prop_assert_eq!(org, repair_org),
                (Decision::Create { .. }, None) => {}
                (decision, org) => prop_assert!(false, "repair {:?} for {:?} but resolution says {:?}", org, a.id, decision),
            }
        }
        // Every contradiction resolution sees on an active account is a finding.
        for a in w.accounts.iter().filter(|a| !a.is_deleted && a.master_record_id.is_none()) {
            if let Decision::Exception { kind, orgs } = oracle(&w, a)
                && (a.eligible || matches!(kind, ExceptionKind::DuplicateExternalId | ExceptionKind::StoredLinkKeyDisagree | ExceptionKind::KeyConflict))
            {
                let mut orgs = orgs;
                orgs.sort();
                let found = out.findings.iter().any(|f| f.kind == kind && f.accounts.contains(&a.id) && f.orgs == orgs);
                prop_assert!(found, "{:?} {:?} {:?} missing from {:#?}", kind, a.id, orgs, out.findings);
            }
        }
    }
}
