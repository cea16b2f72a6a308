//! Property tests of create-or-link resolution over small random worlds: a pool of 2–4
//! accounts (the first is the one resolved, some of the rest merged into it), up to six orgs
//! whose keys, names and domains are drawn from small pools so that collisions are common.
//!
//! The safety properties (from the issue): resolution never links an org keyed to another
//! account, never creates while any org carries this account's key, and answers the same
//! whatever the order or duplication of the candidates. Also: a link or an exception only
//! ever names orgs from the input, and the review finding matches the decision.

use std::collections::{BTreeMap, BTreeSet};

use orglink_shared::domain::Domain;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::model::{OrgKey, Organization};
use orglink_shared::resolution::{
    Decision, KeyChange, Resolution, ResolutionInput, Rule, StoredLink, resolve,
};
use proptest::prelude::*;

/// Real-shaped account ids (18-character forms of valid 15-character ids).
const ACCOUNTS: [&str; 4] = [
    "001D000000IRFmaIAH",
    "001D000000IomazIAB",
    "001D000000IqhSLIAZ",
    "0015g00000XyZ12AAF",
];
/// External ids that are not any pool account: another system's keys, and Acme's 15-character
/// id in other letter case, which is a different Salesforce record.
const FOREIGN_KEYS: [&str; 3] = ["hubspot-88231", "legacy-crm:4471", "001D000000IRFMA"];
const NAMES: [&str; 5] = [
    "Acme Corp",
    "ACME CORP ",
    "Globex",
    "Acme Corp (SF)",
    "Acme Holdings",
];
const DOMAINS: [&str; 5] = [
    "acme.com",
    "ACME.COM.",
    "globex.com",
    "gmail.com",
    "support.acme.com",
];
const NAME: &str = "Acme Corp";
const SUFFIXED: &str = "Acme Corp (SF)";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).expect("pool ids are valid")
}

/// How an org's external_id is written.
#[derive(Debug, Clone, Copy)]
enum Form {
    Full,
    Legacy15,
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
enum KeySpec {
    None,
    /// Account `ACCOUNTS[i % pool]`, written in `Form` (index 0 is the resolved account).
    Account(usize, Form),
    Foreign(usize),
}

fn write_key(spec: &KeySpec, pool: usize) -> Option<String> {
    match spec {
        KeySpec::None => None,
        KeySpec::Account(i, form) => {
            let id = ACCOUNTS[i % pool];
            Some(match form {
                Form::Full => id.to_string(),
                Form::Legacy15 => id[..15].to_string(),
                Form::Lower => id.to_ascii_lowercase(),
                Form::Upper => id.to_ascii_uppercase(),
            })
        }
        KeySpec::Foreign(i) => Some(FOREIGN_KEYS[*i].to_string()),
    }
}

fn arb_key() -> impl Strategy<Value = KeySpec> {
    let form = prop_oneof![
        Just(Form::Full),
        Just(Form::Legacy15),
        Just(Form::Lower),
        Just(Form::Upper)
    ];
    prop_oneof![
        4 => Just(KeySpec::None),
        // Often enough that the resolved account's key is present, and sometimes doubled.
        1 => form.clone().prop_map(|f| KeySpec::Account(0, f)),
        4 => (1usize..4, form).prop_map(|(i, f)| KeySpec::Account(i, f)),
        1 => (0usize..FOREIGN_KEYS.len()).prop_map(KeySpec::Foreign),
    ]
}

#[derive(Debug, Clone)]
struct OrgSpec {
    name: usize,
    key: KeySpec,
    domains: Vec<usize>,
}

fn arb_org() -> impl Strategy<Value = OrgSpec> {
    (
        0..NAMES.len(),
        arb_key(),
        proptest::collection::vec(0..DOMAINS.len(), 0..3),
    )
        .prop_map(|(name, key, domains)| OrgSpec { name, key, domains })
}

#[derive(Debug, Clone)]
enum StoredSpec {
    None,
    /// One of the world's orgs; `also_candidate` says whether the caller listed it again.
    Found {
        index: usize,
        also_candidate: bool,
    },
    /// An org only the stored id led to (not among the candidates).
    FoundAlone(OrgSpec),
    Gone,
    Unreadable,
}

#[derive(Debug, Clone)]
struct World {
    pool: usize,
    merged: Vec<bool>,
    domain: Option<usize>,
    orgs: Vec<OrgSpec>,
    stored: StoredSpec,
}

fn arb_world() -> impl Strategy<Value = World> {
    (
        2usize..=4,
        proptest::collection::vec(any::<bool>(), 3),
        // Mostly Acme's domain (the one orgs carry most), sometimes another or none.
        proptest::option::weighted(0.8, prop_oneof![4 => Just(0usize), 1 => Just(2usize)]),
        proptest::collection::vec(arb_org(), 0..=6),
    )
        .prop_flat_map(|(pool, merged, domain, orgs)| {
            let n = orgs.len();
            let mut stored = vec![
                Just(StoredSpec::None).boxed(),
                Just(StoredSpec::Gone).boxed(),
                Just(StoredSpec::Unreadable).boxed(),
                arb_org().prop_map(StoredSpec::FoundAlone).boxed(),
            ];
            if n > 0 {
                stored.push(
                    (0..n, any::<bool>())
                        .prop_map(|(index, also_candidate)| StoredSpec::Found {
                            index,
                            also_candidate,
                        })
                        .boxed(),
                );
            }
            (
                Just(pool),
                Just(merged),
                Just(domain),
                Just(orgs),
                proptest::strategy::Union::new(stored),
            )
        })
        .prop_map(|(pool, merged, domain, orgs, stored)| World {
            pool,
            merged,
            domain,
            orgs,
            stored,
        })
}

impl World {
    fn organization(&self, id: u64, spec: &OrgSpec) -> Organization {
        Organization {
            id: OrgId::new(id).unwrap(),
            name: NAMES[spec.name].to_string(),
            external_id: write_key(&spec.key, self.pool),
            domain_names: spec
                .domains
                .iter()
                .map(|&d| DOMAINS[d].to_string())
                .collect(),
            tags: Vec::new(),
            organization_fields: BTreeMap::new(),
            updated_at: None,
        }
    }

    fn merged_accounts(&self) -> Vec<AccountId> {
        (1..self.pool)
            .filter(|&i| self.merged[i - 1])
            .map(|i| account(ACCOUNTS[i]))
            .collect()
    }

    /// The input as gathered: candidates in generation order, ids 101, 102, ...
    fn input(&self) -> ResolutionInput {
        let orgs: Vec<Organization> = self
            .orgs
            .iter()
            .enumerate()
            .map(|(i, spec)| self.organization(101 + i as u64, spec))
            .collect();
        let mut candidates = orgs.clone();
        let stored = match &self.stored {
            StoredSpec::None => StoredLink::None,
            StoredSpec::Gone => StoredLink::Gone(OrgId::new(999).unwrap()),
            StoredSpec::Unreadable => StoredLink::Unreadable("N/A".into()),
            StoredSpec::FoundAlone(spec) => StoredLink::Found(self.organization(900, spec)),
            StoredSpec::Found {
                index,
                also_candidate,
            } => {
                if !also_candidate {
                    candidates.remove(*index);
                }
                StoredLink::Found(orgs[*index].clone())
            }
        };
        ResolutionInput {
            account: account(ACCOUNTS[0]),
            merged_accounts: self.merged_accounts(),
            name: NAME.into(),
            suffixed_name: SUFFIXED.into(),
            domain: self.domain.map(|d| Domain::parse(DOMAINS[d]).unwrap()),
            stored,
            candidates,
        }
    }
}

/// Every org the input holds, by id: the candidates and the stored org.
fn input_orgs(input: &ResolutionInput) -> BTreeMap<OrgId, Organization> {
    let mut all: BTreeMap<OrgId, Organization> =
        input.candidates.iter().map(|o| (o.id, o.clone())).collect();
    if let StoredLink::Found(org) = &input.stored {
        all.insert(org.id, org.clone());
    }
    all
}

/// The account an external_id names: the 18-character form in any case (its suffix restores
/// the case), or the exact 15-character form. A 15-character id in other letter case is a
/// different Salesforce record, so it is not this account's key.
fn key_account(org: &Organization) -> Option<AccountId> {
    AccountId::parse_key(org.external_id.as_deref()?.trim()).ok()
}

/// Whether the org carries this account's own key, in either form.
fn carries_own_key(input: &ResolutionInput, org: &Organization) -> bool {
    key_account(org).as_ref() == Some(&input.account)
}

fn keyed_to_merged(input: &ResolutionInput, org: &Organization) -> Option<AccountId> {
    key_account(org).filter(|a| input.merged_accounts.contains(a))
}

fn arb_case() -> impl Strategy<Value = (World, Vec<usize>, Vec<bool>)> {
    arb_world().prop_flat_map(|world| {
        let n = world.input().candidates.len();
        let order: Vec<usize> = (0..n).collect();
        (
            Just(world),
            Just(order).prop_shuffle(),
            proptest::collection::vec(any::<bool>(), n),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_links_an_org_keyed_to_another_account(world in arb_world()) {
        let input = world.input();
        let r = resolve(&input);
        if let Decision::Link { org, key_change } = &r.decision {
            let all = input_orgs(&input);
            let target = all.get(org);
            prop_assert!(target.is_some(), "linked {org:?}, which is not in the input");
            let target = target.unwrap();
            let own = carries_own_key(&input, target);
            let merged = keyed_to_merged(&input, target);
            let keyless = target.external_id.as_deref().is_none_or(|k| k.trim().is_empty());
            prop_assert!(
                own || merged.is_some() || keyless,
                "linked {target:?}, keyed to another account or system, by {}", r.rule
            );
            // The key change says exactly how the org's key must move to this account's.
            let expected_change = match target.key() {
                OrgKey::None => Some(KeyChange::Set),
                OrgKey::Account(id) if id == input.account => None,
                OrgKey::LegacyAccount(id) if id == input.account => Some(KeyChange::UpgradeLegacy),
                _ => Some(KeyChange::FromMergedAccount { merged: merged.clone().unwrap() }),
            };
            prop_assert_eq!(key_change, &expected_change);
        }
    }

    #[test]
    fn never_creates_while_an_org_carries_this_accounts_key(world in arb_world()) {
        let input = world.input();
        let r = resolve(&input);
        let keyed: Vec<OrgId> = input_orgs(&input)
            .values()
            .filter(|o| carries_own_key(&input, o))
            .map(|o| o.id)
            .collect();
        if !keyed.is_empty() {
            prop_assert!(
                !matches!(r.decision, Decision::Create { .. }),
                "created although {keyed:?} carry the key: {r:?}"
            );
            // And the decision involves those orgs: a link to the only one, or an exception
            // naming at least one.
            match &r.decision {
                Decision::Link { org, .. } => prop_assert_eq!(keyed.as_slice(), &[*org]),
                Decision::Exception { orgs, .. } => {
                    prop_assert!(orgs.iter().any(|o| keyed.contains(o)), "{r:?}")
                }
                Decision::Create { .. } => unreachable!(),
            }
        }
    }

    #[test]
    fn same_answer_for_any_order_and_duplication((world, order, dup) in arb_case()) {
        let input = world.input();
        let base = resolve(&input);
        let mut shuffled = input.clone();
        shuffled.candidates = order
            .iter()
            .flat_map(|&i| {
                let org = input.candidates[i].clone();
                if dup[i] { vec![org.clone(), org] } else { vec![org] }
            })
            .collect();
        // The stored org listed again among the candidates changes nothing either.
        if let StoredLink::Found(org) = &input.stored
            && dup.first().copied().unwrap_or(false)
        {
            shuffled.candidates.push(org.clone());
        }
        let other = resolve(&shuffled);
        prop_assert_eq!(&other, &base, "order {:?} dup {:?}", order, dup);
    }

    #[test]
    fn outcomes_only_name_orgs_from_the_input(world in arb_world()) {
        let input = world.input();
        let all = input_orgs(&input);
        let r = resolve(&input);
        match &r.decision {
            Decision::Link { org, .. } => prop_assert!(all.contains_key(org)),
            Decision::Exception { orgs, .. } => {
                prop_assert!(!orgs.is_empty(), "an exception with no org: {r:?}");
                let unique: BTreeSet<_> = orgs.iter().collect();
                prop_assert_eq!(unique.len(), orgs.len(), "an org listed twice: {:?}", r);
                for org in orgs {
                    prop_assert!(all.contains_key(org), "{org:?} is not in the input: {r:?}");
                }
            }
            Decision::Create { name } => {
                prop_assert!(name == NAME || name == SUFFIXED, "created as {name:?}");
            }
        }
    }

    #[test]
    fn decision_matches_its_rule_and_finding(world in arb_world()) {
        let input = world.input();
        let r = resolve(&input);
        prop_assert!(shape_fits_rule(&r), "rule {} with {:?}", r.rule, r.decision);
        prop_assert_eq!(
            r.evidence.get("account"),
            Some(&[input.account.as_str().to_string()][..])
        );
        let finding = r.finding(&input);
        match &r.decision {
            Decision::Exception { kind, orgs } => {
                let f = finding.expect("an exception has a finding");
                let mut sorted = orgs.clone();
                sorted.sort();
                prop_assert_eq!(f.kind, *kind);
                prop_assert_eq!(f.orgs, sorted);
                prop_assert_eq!(f.accounts, vec![input.account.clone()]);
            }
            _ => prop_assert!(finding.is_none()),
        }
    }

    #[test]
    fn a_domain_links_only_when_given_and_carried(world in arb_world()) {
        let input = world.input();
        let r = resolve(&input);
        if r.rule == Rule::UniqueKeylessDomain {
            let domain = input.domain.as_ref().expect("a domain link needs a domain");
            let Decision::Link { org, .. } = r.decision else { unreachable!() };
            let target = &input_orgs(&input)[&org];
            let carried = target
                .domain_names
                .iter()
                .any(|d| d.trim().trim_end_matches('.').eq_ignore_ascii_case(domain.as_str()));
            prop_assert!(carried, "{target:?} does not carry {domain:?}");
        }
    }

    #[test]
    fn a_keyless_stored_org_is_never_bypassed_by_a_create(world in arb_world()) {
        let input = world.input();
        let r = resolve(&input);
        if let StoredLink::Found(org) = &input.stored
            && org.external_id.is_none()
        {
            prop_assert!(!matches!(r.decision, Decision::Create { .. }), "{r:?}");
        }
    }
}

/// Which decision each rule may produce.
fn shape_fits_rule(r: &Resolution) -> bool {
    use Rule::*;
    match (&r.decision, r.rule) {
        (Decision::Link { key_change, .. }, rule) => matches!(
            (rule, key_change),
            (KeyMatch, None)
                | (LegacyKeyMatch, Some(KeyChange::UpgradeLegacy))
                | (MergedAccountKey, Some(KeyChange::FromMergedAccount { .. }))
                | (StoredOrgKeyless | UniqueKeylessDomain, Some(KeyChange::Set))
        ),
        (Decision::Create { name }, CreateNew) => name == NAME,
        (Decision::Create { name }, CreateWithSuffixedName) => name == SUFFIXED,
        (Decision::Create { .. }, _) => false,
        (Decision::Exception { kind, .. }, rule) => {
            use orglink_shared::exceptions::ExceptionKind as K;
            matches!(
                (rule, kind),
                (DuplicateKey | DuplicateMergedKeys, K::DuplicateExternalId)
                    | (StoredAndKeyDisagree, K::StoredLinkKeyDisagree)
                    | (StoredOrgKeyedElsewhere, K::KeyConflict)
                    | (DomainOnOtherAccountsOrg, K::DomainCollision)
                    | (SeveralKeylessDomainOrgs, K::AmbiguousDomain)
                    | (NameHeldByKeylessOrg, K::PossibleLegacyOrg)
            )
        }
    }
}

/// The generator must reach every rule, or the properties above could pass vacuously.
#[test]
fn generated_worlds_reach_every_rule() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let mut seen = BTreeMap::new();
    for _ in 0..5000 {
        let world = arb_world().new_tree(&mut runner).unwrap().current();
        *seen.entry(resolve(&world.input()).rule).or_insert(0u32) += 1;
    }
    let all = [
        Rule::DuplicateKey,
        Rule::StoredAndKeyDisagree,
        Rule::StoredOrgKeyedElsewhere,
        Rule::KeyMatch,
        Rule::LegacyKeyMatch,
        Rule::MergedAccountKey,
        Rule::DuplicateMergedKeys,
        Rule::StoredOrgKeyless,
        Rule::UniqueKeylessDomain,
        Rule::DomainOnOtherAccountsOrg,
        Rule::SeveralKeylessDomainOrgs,
        Rule::CreateNew,
        Rule::CreateWithSuffixedName,
        Rule::NameHeldByKeylessOrg,
    ];
    for rule in all {
        assert!(
            seen.get(&rule).copied().unwrap_or(0) >= 10,
            "{rule} reached {:?} times in 5000 worlds: {seen:?}",
            seen.get(&rule)
        );
    }
}

/// An independent model of DESIGN.md "Create-or-link resolution", written from the brief
/// (not the code), with the points the brief leaves open settled as the golden file records:
/// contradictions are checked duplicate key → stored/key disagreement → stored org keyed
/// elsewhere; the merged account's key counts as this customer's key after the account's own;
/// a domain on any keyed org is a collision even beside one keyless org; a foreign key counts
/// as "keyed elsewhere" everywhere.
fn model(input: &ResolutionInput) -> (Decision, Rule) {
    use orglink_shared::exceptions::ExceptionKind as K;

    let orgs: Vec<Organization> = input_orgs(input).into_values().collect();
    let stored = match &input.stored {
        StoredLink::Found(org) => Some(org),
        _ => None,
    };
    let keyless = |o: &Organization| o.external_id.as_deref().is_none_or(|k| k.trim().is_empty());
    let ids = |v: &[&Organization]| v.iter().map(|o| o.id).collect::<Vec<_>>();
    let exception = |kind, orgs: Vec<OrgId>, rule| (Decision::Exception { kind, orgs }, rule);
    let link = |org: OrgId, key_change: Option<KeyChange>| {
        let rule = key_change_rule(&key_change);
        (Decision::Link { org, key_change }, rule)
    };

    let own: Vec<&Organization> = orgs.iter().filter(|o| carries_own_key(input, o)).collect();
    let merged: Vec<&Organization> = orgs
        .iter()
        .filter(|o| keyed_to_merged(input, o).is_some())
        .collect();

    // Contradictions first.
    if own.len() >= 2 {
        return exception(K::DuplicateExternalId, ids(&own), Rule::DuplicateKey);
    }
    if let (Some(s), [k]) = (stored, own.as_slice())
        && s.id != k.id
    {
        return exception(
            K::StoredLinkKeyDisagree,
            vec![s.id, k.id],
            Rule::StoredAndKeyDisagree,
        );
    }
    if let Some(s) = stored
        && !keyless(s)
        && !carries_own_key(input, s)
        && keyed_to_merged(input, s).is_none()
    {
        return exception(K::KeyConflict, vec![s.id], Rule::StoredOrgKeyedElsewhere);
    }
    // The key, then a merged account's key.
    if let [k] = own.as_slice() {
        let legacy = k
            .external_id
            .as_deref()
            .is_some_and(|x| x.trim().len() == 15);
        return if legacy {
            link(k.id, Some(KeyChange::UpgradeLegacy))
        } else {
            link(k.id, None)
        };
    }
    match merged.as_slice() {
        [] => {}
        [m] => {
            if let Some(s) = stored
                && s.id != m.id
            {
                return exception(
                    K::StoredLinkKeyDisagree,
                    vec![s.id, m.id],
                    Rule::StoredAndKeyDisagree,
                );
            }
            let from = keyed_to_merged(input, m).unwrap();
            return link(m.id, Some(KeyChange::FromMergedAccount { merged: from }));
        }
        several => {
            return exception(
                K::DuplicateExternalId,
                ids(several),
                Rule::DuplicateMergedKeys,
            );
        }
    }
    // The stored org, now known to be keyless.
    if let Some(s) = stored {
        return (
            Decision::Link {
                org: s.id,
                key_change: Some(KeyChange::Set),
            },
            Rule::StoredOrgKeyless,
        );
    }
    // The reviewed domain.
    if let Some(domain) = &input.domain {
        let carrying: Vec<&Organization> = orgs
            .iter()
            .filter(|o| {
                o.domain_names
                    .iter()
                    .any(|d| d.trim().trim_end_matches('.').to_ascii_lowercase() == domain.as_str())
            })
            .collect();
        if carrying.iter().any(|o| !keyless(o)) {
            return exception(
                K::DomainCollision,
                ids(&carrying),
                Rule::DomainOnOtherAccountsOrg,
            );
        }
        match carrying.as_slice() {
            [] => {}
            [one] => {
                return (
                    Decision::Link {
                        org: one.id,
                        key_change: Some(KeyChange::Set),
                    },
                    Rule::UniqueKeylessDomain,
                );
            }
            several => {
                return exception(
                    K::AmbiguousDomain,
                    ids(several),
                    Rule::SeveralKeylessDomainOrgs,
                );
            }
        }
    }
    // Create, minding the name.
    let wanted = input.name.trim().to_lowercase();
    let holders: Vec<&Organization> = orgs
        .iter()
        .filter(|o| o.name.trim().to_lowercase() == wanted)
        .collect();
    let keyless_holders: Vec<&Organization> =
        holders.iter().copied().filter(|o| keyless(o)).collect();
    if !keyless_holders.is_empty() {
        return exception(
            K::PossibleLegacyOrg,
            ids(&keyless_holders),
            Rule::NameHeldByKeylessOrg,
        );
    }
    if holders.is_empty() {
        (
            Decision::Create {
                name: input.name.clone(),
            },
            Rule::CreateNew,
        )
    } else {
        (
            Decision::Create {
                name: input.suffixed_name.clone(),
            },
            Rule::CreateWithSuffixedName,
        )
    }
}

fn key_change_rule(change: &Option<KeyChange>) -> Rule {
    match change {
        None => Rule::KeyMatch,
        Some(KeyChange::UpgradeLegacy) => Rule::LegacyKeyMatch,
        Some(KeyChange::FromMergedAccount { .. }) => Rule::MergedAccountKey,
        Some(KeyChange::Set) => unreachable!("a set key is decided by its own rule"),
    }
}

fn sorted_orgs(decision: Decision) -> Decision {
    match decision {
        Decision::Exception { kind, mut orgs } => {
            orgs.sort();
            Decision::Exception { kind, orgs }
        }
        other => other,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn resolve_agrees_with_the_design_model(world in arb_world()) {
        let input = world.input();
        let r = resolve(&input);
        let (decision, rule) = model(&input);
        prop_assert_eq!(
            (sorted_orgs(r.decision.clone()), r.rule),
            (sorted_orgs(decision), rule),
            "evidence {:?}", r.evidence
        );
    }
}
