use super::account::{consistent_link, gather};
use super::index::OrgIndex;
use super::*;
use crate::resolution::{Decision, Rule, StoredLink, resolve};

fn acct(n: u32) -> AccountId {
    AccountId::parse(&format!("001{n:012}")).unwrap()
}

fn org(id: u64, name: &str, key: Option<String>, domains: &[&str]) -> Organization {
    Organization {
        id: OrgId::new(id).unwrap(),
        name: name.into(),
        external_id: key,
        domain_names: domains.iter().map(|d| d.to_string()).collect(),
        tags: vec![],
        organization_fields: Default::default(),
        updated_at: None,
    }
}

fn facts(id: AccountId, name: &str, domain: Option<&str>, stored: Option<u64>) -> AccountFacts {
    AccountFacts {
        id,
        is_deleted: false,
        master_record_id: None,
        eligible: true,
        name: name.into(),
        suffixed_name: format!("{name} (2)"),
        domain: domain.map(|d| Domain::parse(d).unwrap()),
        website_disagrees: None,
        unusable_website: None,
        stored_org_id: stored.map(|s| s.to_string()),
    }
}

/// The shortcut's answer must be `resolve`'s answer, with every kind of extra candidate
/// around: orgs on the domain (keyed elsewhere, keyless), name holders, merged accounts' orgs.
#[test]
fn consistent_link_agrees_with_resolve() {
    let a = acct(1);
    let other = acct(2);
    let merged = acct(3);
    let mut ix = OrgIndex::default();
    for o in [
        org(10, "Acme", Some(a.as_str().into()), &["acme.com"]),
        org(11, "Acme Legacy", None, &["acme.com"]),
        org(12, "Acme", Some(other.as_str().into()), &["acme.com"]),
        org(13, "Acme (2)", None, &[]),
        org(14, "Merged Co", Some(merged.as_str().into()), &["acme.com"]),
        // Not consistent: a legacy key, two keyed orgs, a keyless stored org.
        org(20, "Beta", Some(acct(20).id15().into()), &[]),
        org(21, "Gamma", Some(acct(21).as_str().into()), &[]),
        org(22, "Gamma 2", Some(acct(21).id15().into()), &[]),
        org(23, "Delta", None, &[]),
    ] {
        ix.add(&o);
    }
    ix.seal();
    let cases = [
        (facts(a.clone(), "Acme", Some("acme.com"), Some(10)), true),
        (facts(a.clone(), "Acme Corp", None, Some(10)), true),
        (facts(acct(20), "Beta", None, Some(20)), false),
        (facts(acct(21), "Gamma", None, Some(21)), false),
        (facts(acct(23), "Delta", None, Some(23)), false),
        (facts(a.clone(), "Acme", Some("acme.com"), Some(11)), false),
        (facts(a.clone(), "Acme", Some("acme.com"), None), false),
        (facts(a.clone(), "Acme", Some("acme.com"), Some(999)), false),
    ];
    let mut checked = 0;
    for (f, expect_fast) in &cases {
        for losers in [vec![], vec![merged.clone()]] {
            let fast = consistent_link(&ix, f);
            assert_eq!(fast.is_some(), *expect_fast, "{f:?}");
            let Some(idx) = fast else { continue };
            let resolution = resolve(&gather(&ix, f, &losers));
            assert_eq!(
                resolution.decision,
                Decision::Link {
                    org: ix.org(idx).id,
                    key_change: None
                },
                "{f:?} merged {losers:?}"
            );
            assert_eq!(resolution.rule, Rule::KeyMatch);
            checked += 1;
        }
    }
    assert_eq!(checked, 4);
}

#[test]
fn gather_reports_the_stored_link_as_resolution_expects() {
    let mut ix = OrgIndex::default();
    ix.add(&org(10, "Acme", None, &[]));
    ix.seal();
    let input = |stored: Option<&str>| {
        let mut f = facts(acct(1), "Zeta", None, None);
        f.stored_org_id = stored.map(Into::into);
        gather(&ix, &f, &[]).stored
    };
    assert_eq!(input(None), StoredLink::None);
    assert_eq!(input(Some("  ")), StoredLink::None);
    assert!(matches!(input(Some(" 10 ")), StoredLink::Found(o) if o.id.get() == 10));
    assert_eq!(input(Some("11")), StoredLink::Gone(OrgId::new(11).unwrap()));
    assert_eq!(
        input(Some("see ticket 4")),
        StoredLink::Unreadable("see ticket 4".into())
    );
}

#[test]
fn keep_smallest_is_order_independent() {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for v in [9, 3, 7, 3, 1, 8] {
        keep_smallest(&mut a, v, 3);
    }
    for v in [8, 1, 3, 7, 9, 3] {
        keep_smallest(&mut b, v, 3);
    }
    assert_eq!(a, [1, 3, 7]);
    assert_eq!(a, b);
}

#[test]
fn pending_accounts_are_sorted_in_place_by_id() {
    for order in [
        vec![3u32, 1, 2],
        vec![5, 4, 3, 2, 1],
        vec![2, 1, 4, 3, 6, 5],
        vec![1],
    ] {
        let pending: Vec<Pending> = order
            .iter()
            .map(|&n| Pending {
                facts: facts(acct(n), &format!("n{n}"), None, None),
                consistent: Some(n),
            })
            .collect();
        let sorted = sorted_by_account(pending);
        let ids: Vec<u32> = sorted.iter().map(|p| p.consistent.unwrap()).collect();
        let mut expected = order.clone();
        expected.sort();
        assert_eq!(ids, expected);
        assert!(
            sorted
                .iter()
                .all(|p| p.facts.id == acct(p.consistent.unwrap()))
        );
    }
}
