//! The named patterns. Each builds its accounts and organizations and records, in the same
//! breath, the end state DESIGN.md's rules mandate for them (docs/generator.md gives each
//! rationale). Nothing here asks orglink what it would do.

use super::names::{self, Unusable};
use super::truth::{DataFix, Expected, OrphanedOrg, SwitchDependent, TicketAttribution};
use super::world::{Account, Lifecycle, Org, World};

/// Exception kind names, as orglink's `ExceptionKind::as_str` spells them.
pub(crate) mod kind {
    pub const DUPLICATE_EXTERNAL_ID: &str = "duplicate_external_id";
    pub const STORED_LINK_KEY_DISAGREE: &str = "stored_link_key_disagree";
    pub const KEY_CONFLICT: &str = "key_conflict";
    pub const DOMAIN_COLLISION: &str = "domain_collision";
    pub const AMBIGUOUS_DOMAIN: &str = "ambiguous_domain";
    pub const POSSIBLE_LEGACY_ORG: &str = "possible_legacy_org";
    pub const ORPHANED_ORG: &str = "orphaned_org";
    pub const WRITE_BACK_BLOCKED: &str = "write_back_blocked";
    pub const DOMAIN_DRIFT: &str = "domain_drift";
    pub const TICKET_ATTRIBUTION_DRIFT: &str = "ticket_attribution_drift";
}

/// Report line kinds (orglink's `ReportKind`, snake_case).
pub(crate) mod report {
    pub const DATA_FIX: &str = "data_fix";
    pub const CHURNED_CUSTOMER: &str = "churned_customer";
}

macro_rules! patterns {
    ($($variant:ident => $name:literal, accounts $accounts:literal, weight $weight:literal, $expected:literal;)+) => {
        /// A named way an account (or a few) can look in a real, messy pair of systems.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Pattern { $($variant,)+ }

        impl Pattern {
            pub const ALL: &'static [Pattern] = &[$(Pattern::$variant,)+];

            /// The name used in `truth.json` and `docs/generator.md`.
            pub fn name(self) -> &'static str {
                match self { $(Pattern::$variant => $name,)+ }
            }

            /// Accounts one instance writes.
            pub fn accounts(self) -> usize {
                match self { $(Pattern::$variant => $accounts,)+ }
            }

            /// Relative share of the world.
            pub fn weight(self) -> usize {
                match self { $(Pattern::$variant => $weight,)+ }
            }

            /// The expected outcome in a few words.
            pub fn expected(self) -> &'static str {
                match self { $(Pattern::$variant => $expected,)+ }
            }
        }
    };
}

patterns! {
    CleanNewCustomer => "clean_new_customer", accounts 1, weight 18, "new org";
    AlreadyLinked => "already_linked", accounts 1, weight 16, "link to its org";
    LegacyOrgByDomain => "legacy_org_by_domain", accounts 1, weight 5, "link to the keyless org carrying its domain";
    StoredIdOnly => "stored_id_only", accounts 1, weight 3, "link to the keyless stored org";
    StoredIdOfDeletedOrgDomainMatch => "stored_id_of_deleted_org_domain_match", accounts 1, weight 2, "link to the keyless org carrying its domain";
    StoredIdOfDeletedOrg => "stored_id_of_deleted_org", accounts 1, weight 2, "new org";
    LegacyFifteenCharKey => "legacy_15_char_key", accounts 1, weight 3, "link to the org keyed with the 15-character id";
    AmbiguousDomain => "ambiguous_domain", accounts 1, weight 2, "exception ambiguous_domain";
    SharedHostingWebsite => "shared_hosting_website", accounts 1, weight 2, "new org + data_fix";
    DomainOnOtherAccountsOrg => "domain_on_other_accounts_org", accounts 2, weight 2, "exception domain_collision (holder keeps its link)";
    ConsumerMailWebsite => "consumer_mail_website", accounts 1, weight 3, "new org + data_fix";
    JunkWebsite => "junk_website", accounts 1, weight 3, "new org + data_fix";
    ReviewedDomainDiffers => "reviewed_domain_differs", accounts 1, weight 2, "link by the reviewed domain (or new) + domain_drift";
    NameTakenByOtherAccount => "name_taken_by_other_account", accounts 2, weight 2, "new org with the name suffix (holder keeps its link)";
    NameHeldByKeylessOrg => "name_held_by_keyless_org", accounts 1, weight 2, "exception possible_legacy_org";
    MergedLoserOrgRelinked => "merged_loser_org_relinked", accounts 2, weight 2, "winner links the loser's org; loser nothing";
    MergedLoserStoredId => "merged_loser_stored_id", accounts 2, weight 1, "winner links the loser's org; loser nothing";
    MergedIntoProspect => "merged_into_prospect", accounts 2, weight 1, "loser exception orphaned_org; winner nothing";
    MergedBothLinked => "merged_both_linked", accounts 2, weight 1, "winner keeps its org; loser exception orphaned_org";
    DeletedAccountWithOrg => "deleted_account_with_org", accounts 1, weight 1, "exception orphaned_org";
    DeletedAccount => "deleted_account", accounts 1, weight 1, "nothing";
    DuplicateExternalId => "duplicate_external_id", accounts 1, weight 2, "exception duplicate_external_id";
    Prospect => "prospect", accounts 1, weight 8, "nothing";
    ClosedLost => "closed_lost", accounts 1, weight 3, "nothing";
    NotEligibleLegacyDomain => "not_eligible_legacy_domain", accounts 1, weight 2, "nothing (even though a keyless org carries its domain)";
    EligibleByClosedWon => "eligible_by_closed_won", accounts 1, weight 3, "new org";
    EligibleByLateStage => "eligible_by_late_stage", accounts 1, weight 3, "new org";
    ChurnedCustomer => "churned_customer", accounts 1, weight 2, "link kept + churned_customer";
    TicketsOnWrongOrg => "tickets_on_wrong_org", accounts 1, weight 2, "link to its org + ticket_attribution_drift";
    KeyConflictOtherSystem => "key_conflict_other_system", accounts 1, weight 1, "exception key_conflict";
    StoredLinkKeyDisagree => "stored_link_key_disagree", accounts 1, weight 1, "exception stored_link_key_disagree";
    OrgKeyedToPurgedAccount => "org_keyed_to_purged_account", accounts 0, weight 1, "orphaned_org (no account)";
}

/// Name decorations legacy organizations carry. Each is used at most once per identity, so
/// decorated names stay unique; the upper- and lower-case ones equal the account's name
/// ignoring case and are used only where that is the point or harmless.
#[derive(Clone, Copy)]
enum Dress {
    Legacy,
    Upper,
    Lower,
    Support,
    Emea,
    Old,
    Duplicate,
    Dot,
    Web,
    Blog,
}

fn dress(name: &str, d: Dress) -> String {
    match d {
        Dress::Legacy => format!("{name} (legacy)"),
        Dress::Upper => name.to_uppercase(),
        Dress::Lower => name.to_lowercase(),
        Dress::Support => format!("{name} - Support"),
        Dress::Emea => format!("{name} - EMEA"),
        Dress::Old => format!("{name} [old]"),
        Dress::Duplicate => format!("{name} (duplicate)"),
        Dress::Dot => format!("{name}."),
        Dress::Web => format!("{name} - Web"),
        Dress::Blog => format!("{name} Blog"),
    }
}

fn tags(w: &mut World, base: &[&str]) -> Vec<String> {
    let mut t: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    if w.rng.chance(25) {
        t.push(
            (*w.rng
                .pick(&["vip", "enterprise", "emea", "priority_support"]))
            .to_string(),
        );
    }
    t
}

/// An organization keyed to `a` (18 characters) as orglink links it: the account's name,
/// its domain, orglink's tag.
fn linked_org(w: &mut World, a: &Account) -> Org {
    let tags = tags(w, &["orglink_customer"]);
    Org {
        id: w.org_id(),
        name: a.name.clone(),
        external_id: Some(a.id.id18.clone()),
        domain_names: vec![a.ident.domain()],
        tags,
    }
}

fn keyless_org(w: &mut World, name: String, domain_names: Vec<String>) -> Org {
    let tags = tags(w, &["legacy"]);
    Org {
        id: w.org_id(),
        name,
        external_id: None,
        domain_names,
        tags,
    }
}

/// The domain as a legacy org may have typed it: as is, upper case, with a trailing dot, or
/// next to other entries. Every form is the same domain under orglink's comparison.
fn typed_domains(w: &mut World, domain: &str, other: String) -> Vec<String> {
    match w.rng.below(5) {
        0 => vec![domain.to_uppercase()],
        1 => vec![format!("{domain}.")],
        2 => vec![format!("www.{domain}"), domain.to_string()],
        3 => vec![domain.to_string(), other],
        _ => vec![domain.to_string()],
    }
}

/// Links `a` to a fresh org as an earlier sync left it: stored id, reviewed domain equal to
/// the Website's, status Linked.
fn make_linked(w: &mut World, a: &mut Account) -> Org {
    let org = linked_org(w, a);
    a.stored = Some(org.id.to_string());
    a.reviewed = Some(a.ident.domain());
    a.synced_before = true;
    org
}

/// Users who belong to `org` and tickets they raised on it (correctly attributed).
fn correct_tickets(w: &mut World, org: u64, mail_domain: &str) {
    for _ in 0..w.rng.between(1, 2) {
        let user = w.write_zd_user(mail_domain, &[org]);
        for _ in 0..w.rng.between(1, 3) {
            w.write_ticket(org, user);
        }
    }
}

pub(crate) fn build(w: &mut World, p: Pattern) {
    *w.pattern_instances.entry(p.name()).or_default() += 1;
    let name = p.name();
    match p {
        Pattern::CleanNewCustomer | Pattern::EligibleByClosedWon | Pattern::EligibleByLateStage => {
            let lifecycle = match p {
                Pattern::EligibleByClosedWon => Lifecycle::ClosedWon,
                Pattern::EligibleByLateStage => Lifecycle::LateStage,
                _ => w.eligible_lifecycle(),
            };
            let a = w.account(lifecycle);
            w.write_account(&a);
            let notes = format!(
                "eligible ({}); no organization carries its key, its domain {} or its name: create with the key set",
                lifecycle.describe(),
                a.ident.domain()
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::LinkNew,
                vec![],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::AlreadyLinked => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let mut org = make_linked(w, &mut a);
            let variant = match w.rng.below(20) {
                0..=11 => "the org carries its 18-character key",
                12 | 13 => {
                    org.external_id = org.external_id.map(|k| k.to_lowercase());
                    "the org carries its 18-character key in lower case (the suffix restores the case)"
                }
                14..=16 => {
                    org.name = dress(&a.name, Dress::Old);
                    "the org's name is a stale mirror; the account's name is free (a rename, not a finding)"
                }
                _ => {
                    org.domain_names.clear();
                    "the org lacks the reviewed domain, which no other org holds (orglink adds it)"
                }
            };
            w.write_org(&org);
            w.write_account(&a);
            if w.rng.chance(35) {
                correct_tickets(w, org.id, &a.ident.domain());
            }
            let notes = format!("stored id and key agree on org {}; {variant}", org.id);
            w.expect(
                &a,
                name,
                "subject",
                Expected::Link(org.id),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::LegacyOrgByDomain => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            // Some companies live on a platform subdomain that the Public Suffix List makes
            // a registrable domain of its own (a private suffix).
            let domain = if w.rng.chance(20) {
                let label = a.ident.label();
                let (website, domain) = if w.rng.chance(50) {
                    (
                        format!("https://www.{label}.herokuapp.com/login"),
                        format!("{label}.herokuapp.com"),
                    )
                } else {
                    (
                        format!("https://{label}.github.io/docs"),
                        format!("{label}.github.io"),
                    )
                };
                a.website = Some(website);
                domain
            } else {
                a.ident.domain()
            };
            let d = *w
                .rng
                .pick(&[Dress::Legacy, Dress::Upper, Dress::Support, Dress::Lower]);
            let other = a.ident.domain_with("old");
            let domains = typed_domains(w, &domain, other);
            let org = keyless_org(w, dress(&a.name, d), domains);
            w.write_org(&org);
            w.write_account(&a);
            let notes = format!(
                "exactly one keyless org ({}, named {:?}) carries the domain {domain}: link it and set its key",
                org.id, org.name
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::Link(org.id),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::StoredIdOnly => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let domains = if w.rng.chance(50) {
                vec![]
            } else {
                vec![a.ident.domain_with("old")]
            };
            let d = *w.rng.pick(&[Dress::Legacy, Dress::Support, Dress::Old]);
            let org = keyless_org(w, dress(&a.name, d), domains);
            a.stored = Some(org.id.to_string());
            w.write_org(&org);
            w.write_account(&a);
            let notes = format!(
                "Zendesk_Org_ID__c names org {}, which has no key and does not carry the account's domain: link it and set its key",
                org.id
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::Link(org.id),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::StoredIdOfDeletedOrgDomainMatch | Pattern::StoredIdOfDeletedOrg => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let gone = w.deleted_org_id();
            a.stored = Some(gone.to_string());
            if p == Pattern::StoredIdOfDeletedOrgDomainMatch {
                let other = a.ident.domain_with("old");
                let domains = typed_domains(w, &a.ident.domain(), other);
                let org = keyless_org(w, dress(&a.name, Dress::Legacy), domains);
                w.write_org(&org);
                w.write_account(&a);
                let notes = format!(
                    "stored org {gone} is gone (falls through, kept as evidence); one keyless org ({}) carries {}: link it",
                    org.id,
                    a.ident.domain()
                );
                w.expect(
                    &a,
                    name,
                    "subject",
                    Expected::Link(org.id),
                    vec![org.id],
                    vec![],
                    vec![],
                    notes,
                );
            } else {
                w.write_account(&a);
                let notes = format!(
                    "stored org {gone} is gone and nothing else matches: create with the key set"
                );
                w.expect(
                    &a,
                    name,
                    "subject",
                    Expected::LinkNew,
                    vec![],
                    vec![],
                    vec![],
                    notes,
                );
            }
        }

        Pattern::LegacyFifteenCharKey => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let stored = w.rng.chance(50);
            let domains = if w.rng.chance(70) {
                vec![a.ident.domain()]
            } else {
                vec![]
            };
            let tags = tags(w, &[]);
            let org = Org {
                id: w.org_id(),
                name: a.name.clone(),
                external_id: Some(a.id.id15.clone()),
                domain_names: domains,
                tags,
            };
            if stored {
                a.stored = Some(org.id.to_string());
            }
            w.write_org(&org);
            w.write_account(&a);
            let notes = format!(
                "org {} carries the 15-character form {} of the id: the same link, its key upgraded to 18 characters{}",
                org.id,
                a.id.id15,
                if stored { "; the stored id agrees" } else { "" }
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::Link(org.id),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::AmbiguousDomain => {
            let lifecycle = w.eligible_lifecycle();
            let a = w.account(lifecycle);
            let domain = a.ident.domain();
            let dresses = [Dress::Emea, Dress::Support, Dress::Legacy];
            let n = w.rng.between(2, 3) as usize;
            let mut ids = Vec::new();
            for d in &dresses[..n] {
                let typed = if w.rng.chance(30) {
                    domain.to_uppercase()
                } else {
                    domain.clone()
                };
                let org = keyless_org(w, dress(&a.name, *d), vec![typed]);
                w.write_org(&org);
                ids.push(org.id);
            }
            w.write_account(&a);
            let notes = format!("{n} keyless orgs {ids:?} carry {domain}: orglink will not guess");
            w.expect(
                &a,
                name,
                "subject",
                Expected::exception(kind::AMBIGUOUS_DOMAIN),
                ids,
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::SharedHostingWebsite => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let (website, platform) = names::shared_hosting_website(&mut w.rng, &a.ident.label());
            a.website = Some(website.clone());
            // Someone once put the platform's own domain on a legacy org.
            let org = keyless_org(w, dress(&a.name, Dress::Blog), vec![platform.to_string()]);
            w.write_org(&org);
            w.write_account(&a);
            w.data_fixes.push(DataFix {
                account: a.id.id18.clone(),
                website: website.clone(),
                reason: Unusable::SharedHosting.as_str().into(),
            });
            let notes = format!(
                "Website {website:?} reduces to the shared platform {platform}: never used to link (org {} carries {platform} and is left alone); create + data fix",
                org.id
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::LinkNew,
                vec![],
                vec![],
                vec![report::DATA_FIX],
                notes,
            );
        }

        Pattern::DomainOnOtherAccountsOrg => {
            let lifecycle = w.eligible_lifecycle();
            let mut holder = w.account(lifecycle);
            let lifecycle = w.eligible_lifecycle();
            let a = w.account(lifecycle);
            let mut org = make_linked(w, &mut holder);
            org.domain_names.push(a.ident.domain());
            w.write_org(&org);
            w.write_account(&holder);
            w.write_account(&a);
            let notes = format!(
                "its domain {} is on org {}, keyed to account {}: a collision, never a link",
                a.ident.domain(),
                org.id,
                holder.id.id18
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::exception(kind::DOMAIN_COLLISION),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
            let notes = format!(
                "linked to org {}, which also carries the domain of account {}",
                org.id, a.id.id18
            );
            w.expect(
                &holder,
                name,
                "domain_holder",
                Expected::Link(org.id),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::ConsumerMailWebsite | Pattern::JunkWebsite => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let (website, reason) = if p == Pattern::ConsumerMailWebsite {
                (
                    names::consumer_mail_website(&mut w.rng, &a.ident.label()),
                    Unusable::ConsumerMail,
                )
            } else {
                names::junk_website(&mut w.rng, &a.ident.label(), &a.name)
            };
            a.website = Some(website.clone());
            w.write_account(&a);
            w.data_fixes.push(DataFix {
                account: a.id.id18.clone(),
                website: website.clone(),
                reason: reason.as_str().into(),
            });
            let notes = format!(
                "Website {website:?} gives no usable domain ({}): no domain step; nothing else matches, so create + data fix",
                reason.as_str()
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::LinkNew,
                vec![],
                vec![],
                vec![report::DATA_FIX],
                notes,
            );
        }

        Pattern::ReviewedDomainDiffers => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let reviewed = a.ident.domain_with("group");
            let website_domain = a.ident.domain();
            // A person typed it; orglink has never written it (no link record), so it is theirs.
            a.reviewed = Some(match w.rng.below(3) {
                0 => reviewed.clone(),
                1 => format!("www.{reviewed}"),
                _ => format!("https://{reviewed}"),
            });
            if w.rng.chance(60) {
                let legacy = keyless_org(w, dress(&a.name, Dress::Legacy), vec![reviewed.clone()]);
                let decoy =
                    keyless_org(w, dress(&a.name, Dress::Web), vec![website_domain.clone()]);
                w.write_org(&legacy);
                w.write_org(&decoy);
                w.write_account(&a);
                let notes = format!(
                    "the reviewed domain {reviewed} (a person's) wins over Website's {website_domain}: link org {}, not org {} which carries the Website's domain; Website disagreeing is domain drift",
                    legacy.id, decoy.id
                );
                w.expect(
                    &a,
                    name,
                    "subject",
                    Expected::Link(legacy.id),
                    vec![legacy.id],
                    vec![kind::DOMAIN_DRIFT],
                    vec![],
                    notes,
                );
            } else {
                w.write_account(&a);
                let notes = format!(
                    "the reviewed domain {reviewed} (a person's) is kept though Website says {website_domain}: nothing matches, create; domain drift"
                );
                w.expect(
                    &a,
                    name,
                    "subject",
                    Expected::LinkNew,
                    vec![],
                    vec![kind::DOMAIN_DRIFT],
                    vec![],
                    notes,
                );
            }
        }

        Pattern::NameTakenByOtherAccount => {
            let lifecycle = w.eligible_lifecycle();
            let mut holder = w.account(lifecycle);
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            // Two accounts with one name (two offices of one brand); the subject keeps its own
            // domain.
            a.name = holder.name.clone();
            let own_domain = holder.ident.domain_with("emea");
            a.website = Some(names::messy_website(&mut w.rng, &own_domain));
            let org = make_linked(w, &mut holder);
            w.write_org(&org);
            w.write_account(&holder);
            w.write_account(&a);
            let notes = format!(
                "no org matches its key or domain {own_domain}; its name is held by org {}, keyed to account {}: create, named with the configured suffix",
                org.id, holder.id.id18
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::LinkNew,
                vec![],
                vec![],
                vec![],
                notes,
            );
            let notes = format!(
                "linked to org {}, whose name account {} also has",
                org.id, a.id.id18
            );
            w.expect(
                &holder,
                name,
                "name_holder",
                Expected::Link(org.id),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::NameHeldByKeylessOrg => {
            let lifecycle = w.eligible_lifecycle();
            let a = w.account(lifecycle);
            let domains = if w.rng.chance(50) {
                vec![]
            } else {
                vec![a.ident.domain_with("legacy")]
            };
            let d = *w.rng.pick(&[Dress::Upper, Dress::Lower]);
            let held = if w.rng.chance(50) {
                a.name.clone()
            } else {
                dress(&a.name, d)
            };
            let org = keyless_org(w, held, domains);
            w.write_org(&org);
            w.write_account(&a);
            let notes = format!(
                "nothing matches its key or domain {}, but keyless org {} holds its name ({:?}): maybe the same customer, a person decides",
                a.ident.domain(),
                org.id,
                org.name
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::exception(kind::POSSIBLE_LEGACY_ORG),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::MergedLoserOrgRelinked | Pattern::MergedLoserStoredId => {
            let lifecycle = w.eligible_lifecycle();
            let winner = w.account(lifecycle);
            let loser = merged_loser(w, &winner, &[Dress::Duplicate, Dress::Upper, Dress::Dot]);
            let org = Org {
                id: w.org_id(),
                name: loser.name.clone(),
                external_id: Some(loser.id.id18.clone()),
                domain_names: vec![winner.ident.domain()],
                tags: vec!["orglink_customer".into()],
            };
            let mut loser = loser;
            if p == Pattern::MergedLoserStoredId {
                loser.stored = Some(org.id.to_string());
                loser.synced_before = true;
            }
            w.write_org(&org);
            w.write_account(&winner);
            w.write_account(&loser);
            let notes = format!(
                "org {} is keyed to account {}, which Salesforce merged into this one: relink it and rewrite its key",
                org.id, loser.id.id18
            );
            w.expect(
                &winner,
                name,
                "merge_winner",
                Expected::Link(org.id),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
            let notes = format!(
                "merged into {}; its org {} passes to the winner, so it is not orphaned",
                winner.id.id18, org.id
            );
            w.expect(
                &loser,
                name,
                "merge_loser",
                Expected::Nothing,
                vec![],
                vec![],
                vec![],
                notes,
            );
            if p == Pattern::MergedLoserStoredId {
                w.switch_dependent.push(SwitchDependent {
                    account: winner.id.id18.clone(),
                    switch: "salesforce.unique_includes_deleted".into(),
                    when: serde_json::Value::Bool(true),
                    finding: kind::WRITE_BACK_BLOCKED.into(),
                    notes: format!(
                        "the deleted loser {} still holds Zendesk_Org_ID__c = {}; if deleted records keep unique values (UNVERIFIED), writing it on the winner is refused with DUPLICATE_VALUE",
                        loser.id.id18, org.id
                    ),
                });
            }
        }

        Pattern::MergedIntoProspect => {
            let lifecycle = w.not_eligible_lifecycle();
            let winner = w.account(lifecycle);
            let mut loser = merged_loser(w, &winner, &[Dress::Duplicate, Dress::Upper, Dress::Dot]);
            let org = Org {
                id: w.org_id(),
                name: loser.name.clone(),
                external_id: Some(loser.id.id18.clone()),
                domain_names: vec![winner.ident.domain()],
                tags: vec!["orglink_customer".into()],
            };
            loser.stored = Some(org.id.to_string());
            loser.synced_before = true;
            w.write_org(&org);
            w.write_account(&winner);
            w.write_account(&loser);
            w.orphaned_orgs.push(OrphanedOrg {
                org: org.id,
                account: loser.id.id18.clone(),
                why: format!("merged_into:{}", winner.id.id18),
            });
            let notes = format!(
                "merged into {}, which is not eligible ({}) so never takes org {} over: the org is orphaned",
                winner.id.id18,
                winner.lifecycle.describe(),
                org.id
            );
            w.expect(
                &loser,
                name,
                "merge_loser",
                Expected::exception(kind::ORPHANED_ORG),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
            let notes = format!(
                "not eligible ({}): gets nothing, not even its merged loser's org {}",
                winner.lifecycle.describe(),
                org.id
            );
            w.expect(
                &winner,
                name,
                "merge_winner",
                Expected::Nothing,
                vec![],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::MergedBothLinked => {
            let lifecycle = w.eligible_lifecycle();
            let mut winner = w.account(lifecycle);
            let mut loser = merged_loser(w, &winner, &[Dress::Duplicate, Dress::Dot]);
            let own = make_linked(w, &mut winner);
            let tags = tags(w, &["orglink_customer"]);
            let old = Org {
                id: w.org_id(),
                name: loser.name.clone(),
                external_id: Some(loser.id.id18.clone()),
                // Not the winner's domain: two orgs keyed to two accounts sharing one domain
                // would be a collision of its own.
                domain_names: vec![winner.ident.domain_with("old")],
                tags,
            };
            loser.stored = Some(old.id.to_string());
            loser.synced_before = true;
            w.write_org(&own);
            w.write_org(&old);
            w.write_account(&winner);
            w.write_account(&loser);
            w.orphaned_orgs.push(OrphanedOrg {
                org: old.id,
                account: loser.id.id18.clone(),
                why: format!("merged_into:{}", winner.id.id18),
            });
            let notes = format!(
                "its own org {} carries its key, which decides before the merged loser's org {}",
                own.id, old.id
            );
            w.expect(
                &winner,
                name,
                "merge_winner",
                Expected::Link(own.id),
                vec![own.id],
                vec![],
                vec![],
                notes,
            );
            let notes = format!(
                "merged into {}, which keeps its own org {}: org {} is orphaned",
                winner.id.id18, own.id, old.id
            );
            w.expect(
                &loser,
                name,
                "merge_loser",
                Expected::exception(kind::ORPHANED_ORG),
                vec![old.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::DeletedAccountWithOrg => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            a.deleted = true;
            let org = make_linked(w, &mut a);
            w.write_org(&org);
            w.write_account(&a);
            w.orphaned_orgs.push(OrphanedOrg {
                org: org.id,
                account: a.id.id18.clone(),
                why: "deleted".into(),
            });
            let notes = format!(
                "deleted (in the recycle bin); its org {} is orphaned (orglink never deletes it)",
                org.id
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::exception(kind::ORPHANED_ORG),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::DeletedAccount => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            a.deleted = true;
            w.write_account(&a);
            let notes = "deleted, without an org: not eligible, nothing to do".to_string();
            w.expect(
                &a,
                name,
                "subject",
                Expected::Nothing,
                vec![],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::DuplicateExternalId => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let first = linked_org(w, &a);
            let (key, how) = match w.rng.below(3) {
                0 => (a.id.id18.clone(), "the same 18-character key"),
                1 => (a.id.id15.clone(), "the 15-character form"),
                _ => (
                    a.id.id18.to_lowercase(),
                    "the 18-character key in lower case",
                ),
            };
            let domains = if w.rng.chance(50) {
                vec![]
            } else {
                vec![a.ident.domain()]
            };
            let tags = tags(w, &[]);
            let second = Org {
                id: w.org_id(),
                name: dress(&a.name, Dress::Duplicate),
                external_id: Some(key),
                domain_names: domains,
                tags,
            };
            if w.rng.chance(50) {
                a.stored = Some(first.id.to_string());
            }
            w.write_org(&first);
            w.write_org(&second);
            w.write_account(&a);
            let notes = format!(
                "orgs {} and {} both carry its key (the second as {how}), as legacy data allows: a person picks one",
                first.id, second.id
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::exception(kind::DUPLICATE_EXTERNAL_ID),
                vec![first.id, second.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::Prospect | Pattern::ClosedLost => {
            let lifecycle = if p == Pattern::ClosedLost {
                Lifecycle::ClosedLost
            } else {
                match w.rng.below(5) {
                    0 | 1 => Lifecycle::Prospect,
                    2 => Lifecycle::EarlyStage,
                    3 => Lifecycle::FormerCustomer,
                    _ => Lifecycle::Partner,
                }
            };
            let mut a = w.account(lifecycle);
            if w.rng.chance(15) {
                a.website = None;
            }
            w.write_account(&a);
            let notes = format!(
                "not eligible ({}): no org, no link, no row",
                lifecycle.describe()
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::Nothing,
                vec![],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::NotEligibleLegacyDomain => {
            let lifecycle = w.not_eligible_lifecycle();
            let a = w.account(lifecycle);
            let org = keyless_org(w, dress(&a.name, Dress::Legacy), vec![a.ident.domain()]);
            w.write_org(&org);
            w.write_account(&a);
            let notes = format!(
                "not eligible ({}): keyless org {} carries its domain, yet an account that is not eligible never gets a link",
                lifecycle.describe(),
                org.id
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::Nothing,
                vec![],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::ChurnedCustomer => {
            let lifecycle = *w.rng.pick(&[
                Lifecycle::FormerCustomer,
                Lifecycle::ClosedLost,
                Lifecycle::Prospect,
            ]);
            let mut a = w.account(lifecycle);
            let org = make_linked(w, &mut a);
            w.write_org(&org);
            w.write_account(&a);
            let notes = format!(
                "linked to org {} but no longer eligible ({}): the link is kept and reported",
                org.id,
                lifecycle.describe()
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::Link(org.id),
                vec![org.id],
                vec![],
                vec![report::CHURNED_CUSTOMER],
                notes,
            );
        }

        Pattern::TicketsOnWrongOrg => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let org = make_linked(w, &mut a);
            w.write_org(&org);
            w.write_account(&a);
            if w.rng.chance(50) {
                correct_tickets(w, org.id, &a.ident.domain());
            }
            let mut tickets = Vec::new();
            let mut requesters = Vec::new();
            let requester = if w.rng.chance(50) {
                // A reseller's agent, a member of the reseller's org only.
                let reseller = w.identity();
                let partner = keyless_org(w, format!("{} (reseller)", reseller.name()), vec![]);
                w.write_org(&partner);
                let user = w.write_zd_user(&reseller.domain(), &[partner.id]);
                w.write_ticket(partner.id, user);
                user
            } else {
                // An end user in no organization at all.
                let domain = w.identity().domain();
                w.write_zd_user(&domain, &[])
            };
            requesters.push(requester);
            for _ in 0..w.rng.between(1, 3) {
                tickets.push(w.write_ticket(org.id, requester));
            }
            w.ticket_attribution.push(TicketAttribution {
                org: org.id,
                account: Some(a.id.id18.clone()),
                misattributed_tickets: tickets.len() as u64,
                tickets: tickets.clone(),
                requesters: requesters.clone(),
            });
            let notes = format!(
                "linked to org {}; tickets {tickets:?} sit on it though requester {} does not belong to it",
                org.id, requester
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::Link(org.id),
                vec![org.id],
                vec![kind::TICKET_ATTRIBUTION_DRIFT],
                vec![],
                notes,
            );
        }

        Pattern::KeyConflictOtherSystem => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let key = w.foreign_key();
            let tags = tags(w, &[]);
            let org = Org {
                id: w.org_id(),
                name: dress(&a.name, Dress::Legacy),
                external_id: Some(key.clone()),
                domain_names: vec![],
                tags,
            };
            a.stored = Some(org.id.to_string());
            w.write_org(&org);
            w.write_account(&a);
            let notes = format!(
                "Zendesk_Org_ID__c names org {}, whose external_id {key:?} belongs to another system",
                org.id
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::exception(kind::KEY_CONFLICT),
                vec![org.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::StoredLinkKeyDisagree => {
            let lifecycle = w.eligible_lifecycle();
            let mut a = w.account(lifecycle);
            let stored = keyless_org(w, dress(&a.name, Dress::Legacy), vec![]);
            let mut keyed = linked_org(w, &a);
            keyed.domain_names.clear();
            a.stored = Some(stored.id.to_string());
            w.write_org(&stored);
            w.write_org(&keyed);
            w.write_account(&a);
            let notes = format!(
                "Zendesk_Org_ID__c names org {} but org {} carries the key",
                stored.id, keyed.id
            );
            w.expect(
                &a,
                name,
                "subject",
                Expected::exception(kind::STORED_LINK_KEY_DISAGREE),
                vec![stored.id, keyed.id],
                vec![],
                vec![],
                notes,
            );
        }

        Pattern::OrgKeyedToPurgedAccount => {
            // An account id Salesforce no longer knows at all (purged from the recycle bin).
            let purged = w.account_id();
            let ident = w.identity();
            let tags = tags(w, &["orglink_customer"]);
            let org = Org {
                id: w.org_id(),
                name: ident.name(),
                external_id: Some(purged.id18.clone()),
                domain_names: vec![ident.domain()],
                tags,
            };
            w.write_org(&org);
            w.orphaned_orgs.push(OrphanedOrg {
                org: org.id,
                account: purged.id18,
                why: "purged".into(),
            });
        }
    }
}

/// A duplicate of `winner` that Salesforce merged into it: deleted, `MasterRecordId` set, a
/// variant of the winner's name.
fn merged_loser(w: &mut World, winner: &Account, dresses: &[Dress]) -> Account {
    let mut loser = w.account(winner.lifecycle);
    loser.name = dress(&winner.name, *w.rng.pick(dresses));
    loser.website = if w.rng.chance(70) {
        Some(names::messy_website(&mut w.rng, &winner.ident.domain()))
    } else {
        None
    };
    loser.deleted = true;
    loser.master = Some(winner.id.id18.clone());
    loser
}
