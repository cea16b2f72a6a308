//! Every organization of one listing, with the lookups resolution's candidate gathering needs:
//! by key (either Id form), by domain and by name, compared as `resolve` compares them.
//!
//! The backfill keeps whole records (not the reconcile diff's compact index): the update
//! bodies it plans must carry every tag and field the organization already has.

use std::collections::HashMap;

use crate::ids::{AccountId, OrgId};
use crate::model::Organization;

#[derive(Debug, Default)]
pub struct OrgIndex {
    orgs: Vec<Organization>,
    by_id: HashMap<OrgId, usize>,
    by_key: HashMap<AccountId, Vec<usize>>,
    by_domain: HashMap<String, Vec<usize>>,
    by_name: HashMap<String, Vec<usize>>,
}

/// How `resolve` compares a domain in `domain_names` (trimmed, no trailing dot, any case).
pub(crate) fn domain_key(raw: &str) -> String {
    raw.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// How `resolve` compares names (trimmed, any case).
pub(crate) fn name_key(raw: &str) -> String {
    raw.trim().to_lowercase()
}

impl OrgIndex {
    /// Indexes a listing. A repeated id keeps the newest copy (`updated_at`), as `resolve` does.
    pub fn new(orgs: impl IntoIterator<Item = Organization>) -> Self {
        let mut index = OrgIndex::default();
        for org in orgs {
            match index.by_id.get(&org.id) {
                Some(&at) if index.orgs[at].updated_at >= org.updated_at => {}
                Some(&at) => index.orgs[at] = org,
                None => {
                    index.by_id.insert(org.id, index.orgs.len());
                    index.orgs.push(org);
                }
            }
        }
        for (i, org) in index.orgs.iter().enumerate() {
            if let Some(account) = org.key().account() {
                index.by_key.entry(account.clone()).or_default().push(i);
            }
            for d in &org.domain_names {
                let key = domain_key(d);
                if !key.is_empty() {
                    let list = index.by_domain.entry(key).or_default();
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                }
            }
            index
                .by_name
                .entry(name_key(&org.name))
                .or_default()
                .push(i);
        }
        index
    }

    pub fn len(&self) -> usize {
        self.orgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
    }

    pub fn get(&self, id: OrgId) -> Option<&Organization> {
        self.by_id.get(&id).map(|&i| &self.orgs[i])
    }

    /// Orgs whose external_id names `account` (18 or 15 characters, any case).
    pub fn keyed_to<'a>(&'a self, account: &AccountId) -> impl Iterator<Item = &'a Organization> {
        self.lookup(&self.by_key, account)
    }

    /// Orgs carrying `domain` in `domain_names`.
    pub fn carrying<'a>(&'a self, domain: &str) -> impl Iterator<Item = &'a Organization> {
        self.lookup(&self.by_domain, &domain_key(domain))
    }

    /// Orgs holding `name`.
    pub fn named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Organization> {
        self.lookup(&self.by_name, &name_key(name))
    }

    fn lookup<'a, K: std::hash::Hash + Eq>(
        &'a self,
        map: &'a HashMap<K, Vec<usize>>,
        key: &K,
    ) -> impl Iterator<Item = &'a Organization> + use<'a, K> {
        let hits: &'a [usize] = map.get(key).map_or(&[], Vec::as_slice);
        hits.iter().map(move |&i| &self.orgs[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: u64, name: &str, key: Option<&str>, domains: &[&str], at: &str) -> Organization {
        Organization {
            id: OrgId::new(id).unwrap(),
            name: name.into(),
            external_id: key.map(str::to_string),
            domain_names: domains.iter().map(|d| d.to_string()).collect(),
            tags: vec![],
            organization_fields: Default::default(),
            updated_at: Some(at.into()),
        }
    }

    #[test]
    fn finds_orgs_by_key_domain_and_name_as_resolve_compares() {
        let a = AccountId::parse("001D000000IRFmaIAH").unwrap();
        let index = OrgIndex::new([
            org(
                1,
                "Acme",
                Some("001d000000irfmaiah"),
                &["ACME.com."],
                "2024",
            ),
            org(2, " acme ", Some("001D000000IRFma"), &[], "2024"),
            org(3, "Other", None, &["acme.com", "acme.com"], "2024"),
            org(3, "Other (old copy)", None, &[], "2023"),
        ]);
        assert_eq!(index.len(), 3);
        let ids = |it: &mut dyn Iterator<Item = &Organization>| {
            it.map(|o| o.id.get()).collect::<Vec<_>>()
        };
        assert_eq!(ids(&mut index.keyed_to(&a)), vec![1, 2]);
        assert_eq!(ids(&mut index.carrying("acme.com")), vec![1, 3]);
        assert_eq!(ids(&mut index.named("ACME")), vec![1, 2]);
        assert_eq!(index.get(OrgId::new(3).unwrap()).unwrap().name, "Other");
    }
}
