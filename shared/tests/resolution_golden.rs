//! Runs the hand-written golden cases in `tests/golden/resolution.toml` through `resolve`.
//!
//! Every case is also resolved with its candidates reversed, each candidate duplicated and the
//! stored org added to the candidates; all must give the identical resolution. Mismatches are
//! collected and printed with the case's name and why, so one run shows every failure.

use std::collections::{BTreeMap, BTreeSet};

use orglink_shared::domain::Domain;
use orglink_shared::exceptions::{Action, ExceptionKind};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::model::{OrgKey, Organization, classify_key};
use orglink_shared::resolution::{
    Decision, KeyChange, Resolution, ResolutionInput, Rule, StoredLink, resolve,
};
use serde::Deserialize;

const GOLDEN: &str = include_str!("golden/resolution.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoldenFile {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    why: String,
    input: InputSpec,
    expect: ExpectSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputSpec {
    account: String,
    #[serde(default)]
    merged_accounts: Vec<String>,
    name: String,
    suffixed_name: String,
    domain: Option<String>,
    #[serde(default)]
    stored: StoredSpec,
    #[serde(default)]
    orgs: Vec<OrgSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum StoredSpec {
    #[default]
    None,
    /// The org with this id in `orgs`, read live.
    Found(u64),
    Gone(u64),
    Unreadable(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgSpec {
    id: u64,
    name: String,
    external_id: Option<String>,
    #[serde(default)]
    domain_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectSpec {
    rule: Rule,
    link: Option<u64>,
    key_change: Option<KeyChangeSpec>,
    create: Option<String>,
    exception: Option<ExceptionKind>,
    orgs: Option<Vec<u64>>,
    #[serde(default)]
    evidence: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum KeyChangeSpec {
    None,
    Set,
    UpgradeLegacy,
    FromMergedAccount(String),
}

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap_or_else(|e| panic!("golden file holds a bad account id {s:?}: {e}"))
}

fn org_id(n: u64) -> OrgId {
    OrgId::new(n).unwrap_or_else(|e| panic!("golden file holds a bad org id {n}: {e}"))
}

fn organization(spec: &OrgSpec) -> Organization {
    Organization {
        id: org_id(spec.id),
        name: spec.name.clone(),
        external_id: spec.external_id.clone(),
        domain_names: spec.domain_names.clone(),
        tags: Vec::new(),
        organization_fields: BTreeMap::new(),
        updated_at: None,
    }
}

impl Case {
    /// The input as a caller would build it: a found stored org is passed as the stored link
    /// only (the variants add it to the candidates too).
    fn input(&self) -> ResolutionInput {
        let spec = &self.input;
        let stored = match &spec.stored {
            StoredSpec::None => StoredLink::None,
            StoredSpec::Found(id) => {
                let org = spec.orgs.iter().find(|o| o.id == *id).unwrap_or_else(|| {
                    panic!("case {}: stored org {id} is not among its orgs", self.name)
                });
                StoredLink::Found(organization(org))
            }
            StoredSpec::Gone(id) => StoredLink::Gone(org_id(*id)),
            StoredSpec::Unreadable(text) => StoredLink::Unreadable(text.clone()),
        };
        let stored_id = match &spec.stored {
            StoredSpec::Found(id) => Some(*id),
            _ => None,
        };
        ResolutionInput {
            account: account(&spec.account),
            merged_accounts: spec.merged_accounts.iter().map(|m| account(m)).collect(),
            name: spec.name.clone(),
            suffixed_name: spec.suffixed_name.clone(),
            domain: spec
                .domain
                .as_deref()
                .map(|d| Domain::parse(d).unwrap_or_else(|e| panic!("case {}: {e:?}", self.name))),
            stored,
            candidates: spec
                .orgs
                .iter()
                .filter(|o| Some(o.id) != stored_id)
                .map(organization)
                .collect(),
        }
    }

    /// The expected decision, checked for a consistent shape.
    fn expected_decision(&self) -> Result<Decision, String> {
        let e = &self.expect;
        match (&e.link, &e.create, &e.exception) {
            (Some(org), None, None) => {
                if e.orgs.is_some() {
                    return Err("a link expects no `orgs`".into());
                }
                let key_change = match e.key_change.as_ref().ok_or("a link needs `key_change`")? {
                    KeyChangeSpec::None => None,
                    KeyChangeSpec::Set => Some(KeyChange::Set),
                    KeyChangeSpec::UpgradeLegacy => Some(KeyChange::UpgradeLegacy),
                    KeyChangeSpec::FromMergedAccount(m) => {
                        Some(KeyChange::FromMergedAccount { merged: account(m) })
                    }
                };
                Ok(Decision::Link {
                    org: org_id(*org),
                    key_change,
                })
            }
            (None, Some(name), None) => {
                if e.key_change.is_some() || e.orgs.is_some() {
                    return Err("a create expects no `key_change` or `orgs`".into());
                }
                Ok(Decision::Create { name: name.clone() })
            }
            (None, None, Some(kind)) => {
                if e.key_change.is_some() {
                    return Err("an exception expects no `key_change`".into());
                }
                let orgs = e.orgs.as_ref().ok_or("an exception needs `orgs`")?;
                Ok(Decision::Exception {
                    kind: *kind,
                    orgs: orgs.iter().map(|&o| org_id(o)).collect(),
                })
            }
            _ => Err("expect exactly one of `link`, `create`, `exception`".into()),
        }
    }

    /// The candidate orderings that must not change the answer.
    fn variants(&self) -> Vec<(&'static str, ResolutionInput)> {
        let base = self.input();
        let mut out = Vec::new();
        let mut reversed = base.clone();
        reversed.candidates.reverse();
        out.push(("candidates reversed", reversed));
        let mut doubled = base.clone();
        doubled.candidates = base
            .candidates
            .iter()
            .flat_map(|o| [o.clone(), o.clone()])
            .collect();
        out.push(("each candidate duplicated", doubled));
        if let StoredLink::Found(org) = &base.stored {
            let mut with_stored = base.clone();
            with_stored.candidates.insert(0, org.clone());
            with_stored.candidates.push(org.clone());
            out.push(("stored org also among the candidates", with_stored));
        }
        out
    }
}

/// Exception orgs compare as a set: their order carries no meaning.
fn normalized(decision: &Decision) -> Decision {
    match decision {
        Decision::Exception { kind, orgs } => {
            let mut orgs = orgs.clone();
            orgs.sort();
            Decision::Exception { kind: *kind, orgs }
        }
        other => other.clone(),
    }
}

fn load() -> Vec<Case> {
    let file: GoldenFile = toml::from_str(GOLDEN).expect("golden/resolution.toml parses");
    file.case
}

/// Checks one case; returns what went wrong, if anything.
fn check(case: &Case) -> Vec<String> {
    let mut problems = Vec::new();
    let expected = match case.expected_decision() {
        Ok(d) => d,
        Err(e) => return vec![format!("malformed expectation: {e}")],
    };
    let input = case.input();
    let actual = resolve(&input);
    if normalized(&actual.decision) != normalized(&expected) || actual.rule != case.expect.rule {
        problems.push(format!(
            "expected {:?} by rule {}\n    actual   {:?} by rule {}\n    evidence {:?}",
            expected, case.expect.rule, actual.decision, actual.rule, actual.evidence
        ));
    }
    for (name, values) in &case.expect.evidence {
        let mut want = values.clone();
        want.sort();
        match actual.evidence.get(name) {
            Some(got) if got == want.as_slice() => {}
            got => problems.push(format!("evidence {name}: expected {want:?}, got {got:?}")),
        }
    }
    for (label, variant) in case.variants() {
        let other = resolve(&variant);
        if other != actual {
            problems.push(format!(
                "{label} changed the answer:\n    base    {actual:?}\n    variant {other:?}"
            ));
        }
    }
    problems.extend(check_finding(&input, &actual));
    problems
}

/// The review-queue finding must match the decision: one for every exception, none otherwise,
/// with a link action per candidate org, then create, shared domain (domain kinds), ignore.
fn check_finding(input: &ResolutionInput, resolution: &Resolution) -> Vec<String> {
    let finding = resolution.finding(input);
    let Decision::Exception { kind, orgs } = &resolution.decision else {
        return match finding {
            None => vec![],
            Some(f) => vec![format!("a non-exception produced a finding: {f:?}")],
        };
    };
    let Some(f) = finding else {
        return vec!["an exception produced no finding".into()];
    };
    let mut problems = Vec::new();
    let mut sorted_orgs = orgs.clone();
    sorted_orgs.sort();
    sorted_orgs.dedup();
    if f.kind != *kind || f.severity != kind.severity() {
        problems.push(format!(
            "finding kind/severity {:?}/{:?}",
            f.kind, f.severity
        ));
    }
    if f.accounts != [input.account.clone()] || f.orgs != sorted_orgs {
        problems.push(format!("finding ids {:?} {:?}", f.accounts, f.orgs));
    }
    let domain_kind = matches!(
        kind,
        ExceptionKind::DomainCollision | ExceptionKind::AmbiguousDomain
    );
    let expected_domain = input.domain.clone().filter(|_| domain_kind);
    if f.domain != expected_domain {
        problems.push(format!("finding domain {:?}", f.domain));
    }
    // Links are offered only to orgs the account may take: keyless, or keyed to this account
    // or to one merged into it — never another account's or system's org.
    let linkable = |id: &OrgId| {
        input
            .candidates
            .iter()
            .chain(match &input.stored {
                StoredLink::Found(org) => Some(org),
                _ => None,
            })
            .filter(|o| o.id == *id)
            .all(|o| match classify_key(o.external_id.as_deref()) {
                OrgKey::None => true,
                key => key
                    .account()
                    .is_some_and(|a| *a == input.account || input.merged_accounts.contains(a)),
            })
    };
    let mut want: Vec<Action> = orgs
        .iter()
        .filter(|id| linkable(id))
        .map(|&org| Action::LinkToOrg {
            account: input.account.clone(),
            org,
        })
        .collect();
    want.push(Action::CreateNewOrg {
        account: input.account.clone(),
    });
    if let Some(domain) = expected_domain {
        want.push(Action::TreatDomainAsShared { domain });
    }
    want.push(Action::IgnoreAccount {
        account: input.account.clone(),
    });
    let as_set = |a: &[Action]| a.iter().cloned().collect::<BTreeSet<_>>();
    if as_set(&f.actions) != as_set(&want) || f.actions.len() != want.len() {
        problems.push(format!(
            "finding actions {:?}, expected {want:?}",
            f.actions
        ));
    }
    let rule = resolution.rule.to_string();
    if f.evidence.get("rule") != Some(std::slice::from_ref(&rule)) {
        problems.push(format!(
            "finding evidence lacks rule {rule}: {:?}",
            f.evidence
        ));
    }
    problems
}

#[test]
fn golden_cases_resolve_as_reviewed() {
    let cases = load();
    let mut report = String::new();
    let mut failed = 0;
    for case in &cases {
        let problems = check(case);
        if !problems.is_empty() {
            failed += 1;
            report.push_str(&format!("\n--- {}\n    why: {}\n", case.name, case.why));
            for p in problems {
                report.push_str(&format!("    {p}\n"));
            }
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} golden cases failed:{report}",
        cases.len()
    );
}

#[test]
fn golden_file_is_complete_and_reviewable() {
    let cases = load();
    assert!(
        cases.len() >= 40,
        "only {} golden cases; at least 40 are required",
        cases.len()
    );
    let mut names = BTreeSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name.as_str()),
            "duplicate case name {}",
            case.name
        );
        assert!(
            case.why.split_whitespace().count() >= 8,
            "case {} needs a why a reviewer can check",
            case.name
        );
    }
    // Every rule is shown at least once.
    let covered: BTreeSet<Rule> = cases.iter().map(|c| c.expect.rule).collect();
    let missing: Vec<Rule> = ALL_RULES
        .iter()
        .copied()
        .filter(|r| !covered.contains(r))
        .collect();
    assert!(missing.is_empty(), "rules with no golden case: {missing:?}");
    // Every exception kind resolution can raise is shown.
    let kinds: BTreeSet<ExceptionKind> = cases.iter().filter_map(|c| c.expect.exception).collect();
    for kind in [
        ExceptionKind::DuplicateExternalId,
        ExceptionKind::StoredLinkKeyDisagree,
        ExceptionKind::KeyConflict,
        ExceptionKind::DomainCollision,
        ExceptionKind::AmbiguousDomain,
        ExceptionKind::PossibleLegacyOrg,
    ] {
        assert!(kinds.contains(&kind), "no golden case raises {kind}");
    }
    // Every kind of stored link and every key change appears.
    let stored = |f: fn(&StoredSpec) -> bool| cases.iter().any(|c| f(&c.input.stored));
    assert!(stored(|s| matches!(s, StoredSpec::None)));
    assert!(stored(|s| matches!(s, StoredSpec::Found(_))));
    assert!(stored(|s| matches!(s, StoredSpec::Gone(_))));
    assert!(stored(|s| matches!(s, StoredSpec::Unreadable(_))));
    let change = |f: fn(&KeyChangeSpec) -> bool| {
        cases
            .iter()
            .any(|c| c.expect.key_change.as_ref().is_some_and(f))
    };
    assert!(change(|k| matches!(k, KeyChangeSpec::None)));
    assert!(change(|k| matches!(k, KeyChangeSpec::Set)));
    assert!(change(|k| matches!(k, KeyChangeSpec::UpgradeLegacy)));
    assert!(change(|k| matches!(k, KeyChangeSpec::FromMergedAccount(_))));
}

/// Every rule; `rule_list_is_exhaustive` stops this list going stale when a rule is added.
const ALL_RULES: [Rule; 14] = [
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

#[test]
fn rule_list_is_exhaustive() {
    // A new Rule variant fails to compile here until it joins ALL_RULES (and gets a case).
    fn position(rule: Rule) -> usize {
        match rule {
            Rule::DuplicateKey => 0,
            Rule::StoredAndKeyDisagree => 1,
            Rule::StoredOrgKeyedElsewhere => 2,
            Rule::KeyMatch => 3,
            Rule::LegacyKeyMatch => 4,
            Rule::MergedAccountKey => 5,
            Rule::DuplicateMergedKeys => 6,
            Rule::StoredOrgKeyless => 7,
            Rule::UniqueKeylessDomain => 8,
            Rule::DomainOnOtherAccountsOrg => 9,
            Rule::SeveralKeylessDomainOrgs => 10,
            Rule::CreateNew => 11,
            Rule::CreateWithSuffixedName => 12,
            Rule::NameHeldByKeylessOrg => 13,
        }
    }
    for (i, rule) in ALL_RULES.iter().enumerate() {
        assert_eq!(position(*rule), i, "{rule} is out of place in ALL_RULES");
        // Display and serde agree, so the golden file's names are the ones trace shows.
        let parsed: Rule = serde_json::from_value(serde_json::json!(rule.to_string())).unwrap();
        assert_eq!(parsed, *rule);
        assert!(!rule.describe().is_empty());
    }
}

#[test]
fn a_mismatch_is_reported_with_name_and_why() {
    // The runner must fail a wrong expectation, not just pass everything.
    let mut cases = load();
    let case = cases
        .iter_mut()
        .find(|c| c.name == "key_match_18")
        .expect("case exists");
    case.expect.rule = Rule::CreateNew;
    case.expect.link = None;
    case.expect.key_change = None;
    case.expect.create = Some("Acme Corp".into());
    let problems = check(case);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("create_new") && problems[0].contains("key_match"));
}
