//! Compact organization state for the reconciliation diff.
//!
//! A nightly run holds every organization of the Zendesk account at once (a million is the
//! design target), so each is kept as a few integers into shared arenas: its id, where its name
//! sits in one text arena, its key as an index into a table of account ids, and its domains as
//! interned ids. Lookups by id, key, domain and name are hash indexes over those integers, with
//! the orgs that share a key, domain or name chained through `next_*` fields instead of one
//! small vector each.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use crate::ids::{AccountId, OrgId};
use crate::model::{OrgKey, Organization, classify_key};

/// End of a chain.
pub(super) const END: u32 = u32::MAX;

/// A small, fast, deterministic hasher (the Fx mixing step with a final avalanche).
///
/// The keys are Salesforce account ids, Zendesk org ids and hashes of names and domains:
/// none is chosen by an outsider to collide, and SipHash's cost would be a third of the
/// diff's time budget at a million records.
#[derive(Default, Clone, Copy)]
pub(super) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // murmur3's fmix64: hashbrown takes its bucket from the low bits and its tag from the
        // top seven, and a bare multiply leaves the low bits weak.
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub(super) type FxBuild = BuildHasherDefault<FxHasher>;
pub(super) type FxMap<K, V> = HashMap<K, V, FxBuild>;

/// An account id packed into one integer for the diff's own maps, sets and sorts: its 18
/// ASCII characters at 7 bits each, first character highest, so integers compare as the ids
/// do. Hashing and comparing two words instead of 18 bytes is a tenth of the diff's time at
/// a million accounts.
pub(super) fn account_key(id: &AccountId) -> u128 {
    id.as_str()
        .bytes()
        .fold(0u128, |k, b| (k << 7) | u128::from(b & 0x7f))
}

/// A hash table filled in the order of its buckets: each insert lands next to the previous
/// one instead of on a random cache line. The table's bucket count is hashbrown's for the
/// entry count (a power of two, at most 7/8 full); were it another, the inserts would only
/// be less local.
fn bucket_ordered<K: std::hash::Hash + Eq + Copy>(
    entries: impl ExactSizeIterator<Item = (K, u32)>,
) -> FxMap<K, u32> {
    let n = entries.len();
    let hasher = FxBuild::default();
    let mask = (n.max(4) * 8 / 7).next_power_of_two() as u64 - 1;
    let mut ordered: Vec<(u64, K, u32)> = entries
        .map(|(k, v)| (hasher.hash_one(k) & mask, k, v))
        .collect();
    ordered.sort_unstable_by_key(|e| e.0);
    let mut map = FxMap::with_capacity_and_hasher(n, hasher);
    for (_, k, v) in ordered {
        map.insert(k, v);
    }
    map
}

/// Hash of a string's bytes.
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = FxHasher::default();
    h.write(bytes);
    h.finish()
}

/// Hash of a name as resolution compares names: trimmed and lower-cased (Unicode).
/// ASCII names, nearly all of them, are lower-cased on the fly without allocating; the hash
/// is over the lower-cased bytes either way, so both paths agree.
pub(super) fn name_hash(name: &str) -> u64 {
    let name = name.trim();
    if name.is_ascii() {
        let mut h = FxHasher::default();
        let bytes = name.as_bytes();
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut buf = [0u8; 8];
            for (b, c) in buf.iter_mut().zip(chunk) {
                *b = c.to_ascii_lowercase();
            }
            h.write(&buf);
        }
        let rest = chunks.remainder();
        let mut buf = [0u8; 8];
        for (b, c) in buf.iter_mut().zip(rest) {
            *b = c.to_ascii_lowercase();
        }
        h.write(&buf[..rest.len()]);
        h.finish()
    } else {
        hash_bytes(name.to_lowercase().as_bytes())
    }
}

/// Names compare as resolution compares them (see `resolution::same_name`).
pub(super) fn same_name(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// A domain as resolution compares `domain_names` entries: trimmed, without a trailing dot,
/// ASCII case folded. `None` for an empty entry.
pub(super) fn domain_key(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    let d = raw.trim().trim_end_matches('.');
    if d.is_empty() {
        None
    } else if d.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(std::borrow::Cow::Owned(d.to_ascii_lowercase()))
    } else {
        Some(std::borrow::Cow::Borrowed(d))
    }
}

/// An organization's external_id, compactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    None,
    /// An account id (index into `keys`); `legacy` when written in the 15-character form.
    Account {
        slot: u32,
        legacy: bool,
    },
    /// Another system's key (index into `foreign`).
    Foreign(u32),
}

#[derive(Debug, Clone)]
pub(super) struct OrgRec {
    pub id: OrgId,
    name_start: u32,
    name_len: u32,
    domains_start: u32,
    domains_len: u32,
    pub key: Key,
    next_same_key: u32,
    next_same_name: u32,
}

/// One account id carried as a key, with the chain of orgs that carry it.
#[derive(Debug, Clone)]
pub(super) struct KeySlot {
    pub account: AccountId,
    head: u32,
    pub count: u32,
}

#[derive(Debug, Clone)]
struct DomainSlot {
    start: u32,
    len: u32,
    /// First entry in `org_domains` carrying this domain.
    head: u32,
    count: u32,
    /// Next domain whose text hashes the same (collisions are verified by text).
    next_same_hash: u32,
}

#[derive(Debug, Clone, Copy)]
struct DomainEntry {
    domain: u32,
    org: u32,
    /// Next entry carrying the same domain.
    next: u32,
    /// Low bits of the domain's hash, so "does this org carry it" needs no table lookup.
    hash: u32,
}

/// Every organization seen, compactly, with lookups by id, key, domain and name.
#[derive(Debug, Default)]
pub(super) struct OrgIndex {
    pub orgs: Vec<OrgRec>,
    by_id: FxMap<OrgId, u32>,
    names: String,
    name_heads: FxMap<u64, u32>,
    /// Sorted by account id once sealed.
    pub keys: Vec<KeySlot>,
    key_by_account: FxMap<u128, u32>,
    /// Account keys as orgs arrive (account key, org, its id's place in `staged_ids`): the
    /// key slots, their chains and the name chains are built at [`OrgIndex::seal`], in
    /// hash-bucket order. Inserting a million orgs one by one into those tables was a cache
    /// miss per insert, a third of the organization phase.
    staged_keys: Vec<(u128, u32, u32)>,
    staged_ids: Vec<AccountId>,
    sealed: bool,
    foreign: Vec<Box<str>>,
    domain_text: String,
    domains: Vec<DomainSlot>,
    domain_by_hash: FxMap<u64, u32>,
    org_domains: Vec<DomainEntry>,
    /// Org records that repeated an id already seen (the first one is kept).
    pub repeated: usize,
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).expect("reconcile state is limited to 4 billion entries")
}

impl OrgIndex {
    /// Room for `orgs` organizations, so a known-size listing never rehashes or regrows.
    pub fn with_capacity(orgs: usize) -> Self {
        Self {
            orgs: Vec::with_capacity(orgs),
            by_id: FxMap::with_capacity_and_hasher(orgs, Default::default()),
            names: String::with_capacity(orgs * 16),
            staged_keys: Vec::with_capacity(orgs),
            staged_ids: Vec::with_capacity(orgs),
            domain_text: String::with_capacity(orgs * 16),
            domains: Vec::with_capacity(orgs),
            domain_by_hash: FxMap::with_capacity_and_hasher(orgs, Default::default()),
            org_domains: Vec::with_capacity(orgs),
            ..Self::default()
        }
    }

    /// Adds one organization. A repeated id keeps the first record: a listing page seen twice
    /// must not count as two organizations.
    pub fn add(&mut self, org: &Organization) {
        let idx = to_u32(self.orgs.len());
        match self.by_id.entry(org.id) {
            Entry::Occupied(_) => {
                self.repeated += 1;
                return;
            }
            Entry::Vacant(slot) => {
                slot.insert(idx);
            }
        }

        self.sealed = false;
        let name_start = to_u32(self.names.len());
        self.names.push_str(&org.name);

        // An account key's slot is set at `seal`.
        let key = match classify_key(org.external_id.as_deref()) {
            OrgKey::None => Key::None,
            OrgKey::Foreign(text) => {
                self.foreign.push(text.into_boxed_str());
                Key::Foreign(to_u32(self.foreign.len() - 1))
            }
            OrgKey::Account(id) => self.stage_key(id, idx, false),
            OrgKey::LegacyAccount(id) => self.stage_key(id, idx, true),
        };

        let domains_start = to_u32(self.org_domains.len());
        for raw in &org.domain_names {
            let Some(d) = domain_key(raw) else { continue };
            let hash = hash_bytes(d.as_bytes());
            let domain = self.intern_domain(&d, hash);
            // An org listing a domain twice still carries it once.
            if self.org_domains[domains_start as usize..]
                .iter()
                .any(|e| e.domain == domain)
            {
                continue;
            }
            let slot = &mut self.domains[domain as usize];
            let next = std::mem::replace(&mut slot.head, to_u32(self.org_domains.len()));
            slot.count += 1;
            self.org_domains.push(DomainEntry {
                domain,
                org: idx,
                next,
                hash: hash as u32,
            });
        }
        let domains_len = to_u32(self.org_domains.len()) - domains_start;

        self.orgs.push(OrgRec {
            id: org.id,
            name_start,
            name_len: to_u32(org.name.len()),
            domains_start,
            domains_len,
            key,
            next_same_key: END,
            next_same_name: END,
        });
    }

    fn stage_key(&mut self, account: AccountId, org: u32, legacy: bool) -> Key {
        let place = to_u32(self.staged_ids.len());
        self.staged_keys.push((account_key(&account), org, place));
        self.staged_ids.push(account);
        Key::Account { slot: END, legacy }
    }

    /// Builds the key slots and the name index once every org is in (lookups by key or name
    /// answer only after this). Sorting first and inserting in the tables' bucket order makes
    /// the inserts sequential in memory; the chains come out as inserting one by one left
    /// them (newest org first).
    pub fn seal(&mut self) {
        if self.sealed {
            return;
        }
        // Key slots, in account order (rebuilt whole: `add` after `seal` is allowed).
        let mut staged = std::mem::take(&mut self.staged_keys);
        let mut ids = std::mem::take(&mut self.staged_ids);
        for k in std::mem::take(&mut self.keys) {
            for org in self.keyed_unsealed(k.head) {
                staged.push((account_key(&k.account), org, to_u32(ids.len())));
                ids.push(k.account.clone());
            }
        }
        staged.sort_unstable_by_key(|&(key, org, _)| (key, org));
        for group in staged.chunk_by(|a, b| a.0 == b.0) {
            let slot = to_u32(self.keys.len());
            let mut next = END;
            for &(_, org, _) in group {
                let o = &mut self.orgs[org as usize];
                o.next_same_key = next;
                if let Key::Account { legacy, .. } = o.key {
                    o.key = Key::Account { slot, legacy };
                }
                next = org;
            }
            self.keys.push(KeySlot {
                account: ids[group[0].2 as usize].clone(),
                head: next,
                count: to_u32(group.len()),
            });
        }
        drop((staged, ids));
        let keys: Vec<u128> = self.keys.iter().map(|k| account_key(&k.account)).collect();
        self.key_by_account = bucket_ordered(
            keys.into_iter()
                .enumerate()
                .map(|(slot, key)| (key, to_u32(slot))),
        );

        // Names: every org's name hash, chained newest first.
        let mut named: Vec<(u64, u32)> = (0..to_u32(self.orgs.len()))
            .map(|idx| (name_hash(self.name(idx)), idx))
            .collect();
        named.sort_unstable();
        let mut heads = Vec::with_capacity(named.len());
        for group in named.chunk_by(|a, b| a.0 == b.0) {
            let mut next = END;
            for &(_, org) in group {
                self.orgs[org as usize].next_same_name = next;
                next = org;
            }
            heads.push((group[0].0, next));
        }
        drop(named);
        self.name_heads = bucket_ordered(heads.into_iter());
        self.sealed = true;
    }

    /// A key chain followed before the slots are rebuilt.
    fn keyed_unsealed(&self, head: u32) -> Vec<u32> {
        let mut orgs = Vec::new();
        let mut cur = head;
        while cur != END {
            orgs.push(cur);
            cur = self.orgs[cur as usize].next_same_key;
        }
        orgs
    }

    /// Gives back the growth slack of the arenas once every org is in.
    pub fn shrink_to_fit(&mut self) {
        self.orgs.shrink_to_fit();
        self.names.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.foreign.shrink_to_fit();
        self.domain_text.shrink_to_fit();
        self.domains.shrink_to_fit();
        self.org_domains.shrink_to_fit();
    }

    /// The id of a domain (`hash` is its [`hash_bytes`]), interning it if new.
    fn intern_domain(&mut self, d: &str, hash: u64) -> u32 {
        if let Some(id) = self.domain_id_hashed(d, hash) {
            return id;
        }
        let id = to_u32(self.domains.len());
        let start = to_u32(self.domain_text.len());
        self.domain_text.push_str(d);
        let next_same_hash = self.domain_by_hash.insert(hash, id).unwrap_or(END);
        self.domains.push(DomainSlot {
            start,
            len: to_u32(d.len()),
            head: END,
            count: 0,
            next_same_hash,
        });
        id
    }

    /// The interned id of a domain (already in `domain_key` form), if any org carries it.
    pub fn domain_id(&self, d: &str) -> Option<u32> {
        self.domain_id_hashed(d, hash_bytes(d.as_bytes()))
    }

    fn domain_id_hashed(&self, d: &str, hash: u64) -> Option<u32> {
        let mut cur = *self.domain_by_hash.get(&hash)?;
        while cur != END {
            if self.domain_str(cur) == d {
                return Some(cur);
            }
            cur = self.domains[cur as usize].next_same_hash;
        }
        None
    }

    pub fn domain_str(&self, domain: u32) -> &str {
        let s = &self.domains[domain as usize];
        &self.domain_text[s.start as usize..(s.start + s.len) as usize]
    }

    pub fn domain_count(&self) -> usize {
        self.domains.len()
    }

    /// How many orgs carry the domain.
    pub fn carrier_count(&self, domain: u32) -> u32 {
        self.domains[domain as usize].count
    }

    /// The orgs carrying a domain.
    pub fn carriers(&self, domain: u32) -> impl Iterator<Item = u32> + '_ {
        let mut cur = self.domains[domain as usize].head;
        std::iter::from_fn(move || {
            (cur != END).then(|| {
                let e = self.org_domains[cur as usize];
                cur = e.next;
                e.org
            })
        })
    }

    pub fn org_domains(&self, org: u32) -> impl Iterator<Item = u32> + '_ {
        let o = &self.orgs[org as usize];
        self.org_domains[o.domains_start as usize..(o.domains_start + o.domains_len) as usize]
            .iter()
            .map(|e| e.domain)
    }

    /// Whether an org carries a domain (in `domain_key` form), reading only its own entries.
    pub fn carries(&self, org: u32, domain: &str) -> bool {
        let hash = hash_bytes(domain.as_bytes()) as u32;
        let o = &self.orgs[org as usize];
        self.org_domains[o.domains_start as usize..(o.domains_start + o.domains_len) as usize]
            .iter()
            .any(|e| e.hash == hash && self.domain_str(e.domain) == domain)
    }

    pub fn org_idx(&self, id: OrgId) -> Option<u32> {
        self.by_id.get(&id).copied()
    }

    pub fn org(&self, idx: u32) -> &OrgRec {
        &self.orgs[idx as usize]
    }

    pub fn name(&self, idx: u32) -> &str {
        let o = &self.orgs[idx as usize];
        &self.names[o.name_start as usize..(o.name_start + o.name_len) as usize]
    }

    /// The account an org's key names, in either form.
    pub fn key_account(&self, idx: u32) -> Option<&AccountId> {
        match self.orgs[idx as usize].key {
            Key::Account { slot, .. } => Some(&self.keys[slot as usize].account),
            Key::None | Key::Foreign(_) => None,
        }
    }

    pub fn key_slot_of(&self, account: &AccountId) -> Option<u32> {
        self.key_slot_of_key(account_key(account))
    }

    /// [`OrgIndex::key_slot_of`] by an [`account_key`].
    pub fn key_slot_of_key(&self, account: u128) -> Option<u32> {
        debug_assert!(self.sealed, "key lookups answer once the index is sealed");
        self.key_by_account.get(&account).copied()
    }

    /// The orgs carrying a key slot's account id.
    pub fn keyed(&self, slot: u32) -> impl Iterator<Item = u32> + '_ {
        let mut cur = self.keys[slot as usize].head;
        std::iter::from_fn(move || {
            (cur != END).then(|| {
                let idx = cur;
                cur = self.orgs[idx as usize].next_same_key;
                idx
            })
        })
    }

    /// The orgs carrying an account's key, in either form.
    pub fn keyed_to(&self, account: &AccountId) -> impl Iterator<Item = u32> + '_ {
        let slot = self.key_slot_of(account);
        let mut inner = slot.map(|s| self.keyed(s));
        std::iter::from_fn(move || inner.as_mut().and_then(Iterator::next))
    }

    /// The orgs whose name equals `name` as resolution compares names.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        debug_assert!(self.sealed, "name lookups answer once the index is sealed");
        let mut cur = self
            .name_heads
            .get(&name_hash(name))
            .copied()
            .unwrap_or(END);
        std::iter::from_fn(move || {
            while cur != END {
                let idx = cur;
                cur = self.orgs[idx as usize].next_same_name;
                if same_name(self.name(idx), name) {
                    return Some(idx);
                }
            }
            None
        })
    }

    /// The external_id text an org carries, rebuilt from the compact key. An account key comes
    /// back in its canonical case (Zendesk compares keys case-insensitively).
    pub fn external_id(&self, idx: u32) -> Option<String> {
        match self.orgs[idx as usize].key {
            Key::None => None,
            Key::Foreign(f) => Some(self.foreign[f as usize].to_string()),
            Key::Account { slot, legacy } => {
                let id = &self.keys[slot as usize].account;
                Some(if legacy { id.id15() } else { id.as_str() }.to_string())
            }
        }
    }

    /// The organization as resolution sees it: id, name, key and domains (normalized).
    /// Tags and fields are not part of any decision and are not kept.
    pub fn materialize(&self, idx: u32) -> Organization {
        Organization {
            id: self.orgs[idx as usize].id,
            name: self.name(idx).to_string(),
            external_id: self.external_id(idx),
            domain_names: self
                .org_domains(idx)
                .map(|d| self.domain_str(d).to_string())
                .collect(),
            tags: Vec::new(),
            organization_fields: Default::default(),
            updated_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(id: u64, name: &str, key: Option<&str>, domains: &[&str]) -> Organization {
        Organization {
            id: OrgId::new(id).unwrap(),
            name: name.into(),
            external_id: key.map(Into::into),
            domain_names: domains.iter().map(|d| d.to_string()).collect(),
            tags: vec![],
            organization_fields: Default::default(),
            updated_at: None,
        }
    }

    #[test]
    fn lookups_find_every_org_by_key_domain_and_name() {
        let a = AccountId::parse("001D000000IRFmaIAH").unwrap();
        let mut ix = OrgIndex::default();
        ix.add(&org(
            1,
            "Acme",
            Some("001D000000IRFmaIAH"),
            &["Acme.com.", " acme.io"],
        ));
        ix.add(&org(
            2,
            " ACME ",
            Some("001D000000IRFma"),
            &["acme.com", "ACME.COM"],
        ));
        ix.add(&org(3, "Globex", Some("hubspot-1"), &[]));
        ix.add(&org(2, "repeat", None, &[]));
        ix.seal();

        assert_eq!(ix.orgs.len(), 3);
        assert_eq!(ix.repeated, 1);
        assert_eq!(ix.org_idx(OrgId::new(2).unwrap()), Some(1));
        let mut keyed: Vec<u32> = ix.keyed_to(&a).collect();
        keyed.sort();
        assert_eq!(keyed, [0, 1]);
        let d = ix.domain_id("acme.com").unwrap();
        assert_eq!(
            ix.carrier_count(d),
            2,
            "org 2 lists the domain twice but carries it once"
        );
        let mut named: Vec<u32> = ix.named("acme").collect();
        named.sort();
        assert_eq!(named, [0, 1]);
        assert_eq!(ix.named("globex").collect::<Vec<_>>(), [2]);
        assert_eq!(ix.domain_id("globex.com"), None);

        let m = ix.materialize(1);
        assert_eq!(m.external_id.as_deref(), Some("001D000000IRFma"));
        assert_eq!(m.domain_names, ["acme.com"]);
        assert_eq!(ix.materialize(2).external_id.as_deref(), Some("hubspot-1"));
        assert_eq!(ix.materialize(0).domain_names, ["acme.com", "acme.io"]);
    }

    #[test]
    fn account_keys_are_distinct_and_ordered_as_the_ids() {
        let mut ids: Vec<AccountId> = [
            "001D000000IRFmaIAH",
            "001D000000IRFma",
            "001d000000irfma",
            "001000000000001",
            "001000000000002",
            "001zzzzzzzzzzzz",
            "001ZZZZZZZZZZZZ",
            "0019000000AbCdE",
        ]
        .iter()
        .map(|s| AccountId::parse(s).unwrap())
        .collect();
        ids.sort();
        ids.dedup();
        for pair in ids.windows(2) {
            assert!(
                account_key(&pair[0]) < account_key(&pair[1]),
                "{} / {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn name_hash_agrees_with_resolution_comparison() {
        for (a, b) in [
            ("Acme Corp", " acme corp"),
            ("Ärzte GmbH", "ärzte gmbh"),
            ("\u{212A}elvin", "kelvin"),
        ] {
            assert!(same_name(a, b));
            assert_eq!(name_hash(a), name_hash(b), "{a} / {b}");
        }
        assert!(!same_name("Acme", "Acme Inc"));
    }
}
