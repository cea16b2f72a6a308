//! The field mapping: which Salesforce facts orglink mirrors onto a Zendesk organization, and
//! the minimal update that brings an organization in line with them.
//!
//! The mapping is configuration (the `[mapping]` section of the TOML, see
//! [`crate::contract::Config`]), but its shape makes the contract's refusals unrepresentable:
//! - `external_id` can only ever be the 18-character Account Id;
//! - arrays (`domain_names`, `tags`) have no "set" or "replace" option: the only thing the
//!   mapping can say is what to *add*, and tags must carry orglink's own prefix;
//! - an [`OrgUpdate`] can only be built here, from the organization as read, so it always
//!   sends back every element the organization already had.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::contract::sub_key;
use crate::domain::Domain;
use crate::ids::AccountId;
use crate::model::{Account, OrgKey, Organization};

/// The characters Zendesk refuses in an organization name ("the organization won't be
/// created" with a pipe, per Zendesk's help centre).
const REFUSED_NAME_CHARS: &[char] = &['|'];

/// The placeholder the name suffix template must contain.
const ACCOUNT_ID_PLACEHOLDER: &str = "{account_id}";

/// The `[mapping]` section: how an account becomes an organization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    external_id: ExternalIdSource,
    name: NameMapping,
    domain_names: DomainNamesMapping,
    tags: TagMapping,
    /// Zendesk organization field key → the Salesforce fact it mirrors.
    organization_fields: BTreeMap<FieldKey, MirrorSource>,
}

/// What `external_id` holds. There is exactly one answer, so any other value in the TOML is
/// refused by the parser ("unknown variant").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalIdSource {
    /// The 18-character Account Id (Zendesk compares external_id case-insensitively, so the
    /// case-sensitive 15-character form could collide).
    AccountId,
}

/// What the organization name is made from (only the account name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameSource {
    AccountName,
}

/// A Salesforce fact that can be mirrored into an organization field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MirrorSource {
    /// The account owner's e-mail (`Owner.Email`).
    OwnerEmail,
    /// `Type` (e.g. `Customer - Direct`).
    AccountType,
    /// `Name`.
    AccountName,
    /// The 18-character Account Id.
    AccountId,
    /// The reviewed domain (`Zendesk_Domain__c`, after the provenance rule).
    ReviewedDomain,
}

impl MirrorSource {
    fn value(self, account: &Account, reviewed_domain: Option<&Domain>) -> Value {
        let text = match self {
            MirrorSource::OwnerEmail => account.owner_email.as_deref().map(str::trim),
            MirrorSource::AccountType => account.account_type.as_deref().map(str::trim),
            MirrorSource::AccountName => Some(account.name.trim()),
            MirrorSource::AccountId => Some(account.id.as_str()),
            MirrorSource::ReviewedDomain => reviewed_domain.map(Domain::as_str),
        };
        match text {
            Some(t) if !t.is_empty() => Value::String(t.to_string()),
            _ => Value::Null,
        }
    }
}

/// The `[mapping.name]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawNameMapping", into = "RawNameMapping")]
pub struct NameMapping {
    source: NameSource,
    max_chars: usize,
    suffix_template: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNameMapping {
    source: NameSource,
    max_chars: usize,
    suffix_template: String,
}

impl TryFrom<RawNameMapping> for NameMapping {
    type Error = String;
    fn try_from(raw: RawNameMapping) -> Result<Self, String> {
        let t = &raw.suffix_template;
        if t.matches(ACCOUNT_ID_PLACEHOLDER).count() != 1 {
            return Err(sub_key(
                "suffix_template",
                format!(
                    "{t:?} must contain {ACCOUNT_ID_PLACEHOLDER} exactly once, \
                     so the suffixed name is unique to the account"
                ),
            ));
        }
        let rest = t.replace(ACCOUNT_ID_PLACEHOLDER, "");
        if rest.contains(['{', '}']) {
            return Err(sub_key(
                "suffix_template",
                format!("{t:?} has a placeholder other than {ACCOUNT_ID_PLACEHOLDER}"),
            ));
        }
        if t.contains(REFUSED_NAME_CHARS) {
            return Err(sub_key(
                "suffix_template",
                format!("{t:?} contains '|', which Zendesk refuses in names"),
            ));
        }
        if t.trim().is_empty() || t.chars().any(char::is_control) {
            return Err(sub_key(
                "suffix_template",
                format!("{t:?} must be printable text around {ACCOUNT_ID_PLACEHOLDER}"),
            ));
        }
        // The suffix with an 18-character id must leave room for some of the account name.
        let suffix_chars = rest.chars().count() + 18;
        if raw.max_chars <= suffix_chars {
            return Err(sub_key(
                "max_chars",
                format!(
                    "{} leaves no room for the account name before the {suffix_chars}-character suffix",
                    raw.max_chars
                ),
            ));
        }
        Ok(NameMapping {
            source: raw.source,
            max_chars: raw.max_chars,
            suffix_template: raw.suffix_template,
        })
    }
}

impl From<NameMapping> for RawNameMapping {
    fn from(n: NameMapping) -> Self {
        RawNameMapping {
            source: n.source,
            max_chars: n.max_chars,
            suffix_template: n.suffix_template,
        }
    }
}

/// The `[mapping.domain_names]` section. There is deliberately no way to set the array: orglink
/// only adds the reviewed domain, and never removes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainNamesMapping {
    add_reviewed_domain: bool,
}

/// The `[mapping.tags]` section: orglink's prefix, and the tags (each carrying it) orglink
/// adds to every organization it links. Tags are add-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawTagMapping", into = "RawTagMapping")]
pub struct TagMapping {
    prefix: String,
    add: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTagMapping {
    prefix: String,
    add: Vec<String>,
}

/// Zendesk tags are single lowercase words; these are the characters orglink allows in its own.
fn is_tag_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'
}

impl TryFrom<RawTagMapping> for TagMapping {
    type Error = String;
    fn try_from(raw: RawTagMapping) -> Result<Self, String> {
        let prefix = raw.prefix;
        if prefix.chars().count() < 2 || !prefix.chars().all(is_tag_char) {
            return Err(sub_key(
                "prefix",
                format!(
                    "{prefix:?} must be at least 2 characters of a-z, 0-9, '_' or '-', \
                     so orglink's tags never overlap support's"
                ),
            ));
        }
        for (i, tag) in raw.add.iter().enumerate() {
            if !tag.chars().all(is_tag_char) {
                return Err(sub_key(
                    &format!("add[{i}]"),
                    format!(
                        "{tag:?} may only hold a-z, 0-9, '_' or '-' (Zendesk tags are single lowercase words)"
                    ),
                ));
            }
            if !tag.starts_with(&prefix) || tag.len() == prefix.len() {
                return Err(sub_key(
                    &format!("add[{i}]"),
                    format!(
                        "{tag:?} does not carry orglink's prefix {prefix:?}; \
                         orglink manages only its own tags"
                    ),
                ));
            }
            if raw.add[..i].contains(tag) {
                return Err(sub_key(
                    &format!("add[{i}]"),
                    format!("{tag:?} is listed twice"),
                ));
            }
        }
        Ok(TagMapping {
            prefix,
            add: raw.add,
        })
    }
}

impl From<TagMapping> for RawTagMapping {
    fn from(t: TagMapping) -> Self {
        RawTagMapping {
            prefix: t.prefix,
            add: t.add,
        }
    }
}

/// A Zendesk organization field key: letters, digits and underscores, not only digits
/// (Zendesk's rule for custom field keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FieldKey(String);

impl FieldKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FieldKey {
    type Error = String;
    fn try_from(key: String) -> Result<Self, String> {
        if key.is_empty()
            || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            || key.chars().all(|c| c.is_ascii_digit())
        {
            return Err(format!(
                "organization field key {key:?} must be letters, digits and underscores (not only digits)"
            ));
        }
        // A custom field named like a system field reads as if it wrote that field.
        if ["external_id", "name", "domain_names", "tags", "id"].contains(&key.as_str()) {
            return Err(format!(
                "organization field key {key:?} would be mistaken for the organization's own {key:?}; \
                 that field is not configurable here"
            ));
        }
        Ok(FieldKey(key))
    }
}

impl From<FieldKey> for String {
    fn from(k: FieldKey) -> String {
        k.0
    }
}

/// Which name the organization gets (resolution decides; the mapping spells it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameChoice {
    /// The account name, cleaned.
    Plain,
    /// The account name with the configured suffix: another account's org holds the plain one.
    Suffixed,
}

/// Whether the reviewed domain may be added to the organization's `domain_names`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainAvailability {
    /// No other organization holds it, and it is a usable company domain.
    Free,
    /// Another organization holds it: Zendesk would map users to whichever sorts first.
    HeldByAnotherOrg,
    /// A consumer mail, social or shared-hosting domain: mapping it would pull in strangers.
    NotUsable,
}

/// The organization an account should have, as far as the mapping decides it. Built only by
/// [`Mapping::desired_org`], so what it adds always comes from the validated mapping.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DesiredOrg {
    name: String,
    external_id: AccountId,
    /// The reviewed domain to add, when the mapping adds it and it is free.
    add_domain: Option<Domain>,
    /// orglink's tags to add.
    add_tags: Vec<String>,
    /// Mirror fields, `null` where Salesforce holds nothing.
    organization_fields: BTreeMap<String, Value>,
    /// Accounts Salesforce merged into this one: an org keyed to one of them may be rekeyed.
    merged_accounts: Vec<AccountId>,
}

impl DesiredOrg {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn external_id(&self) -> &AccountId {
        &self.external_id
    }
    pub fn add_domain(&self) -> Option<&Domain> {
        self.add_domain.as_ref()
    }
    pub fn add_tags(&self) -> &[String] {
        &self.add_tags
    }
    pub fn organization_fields(&self) -> &BTreeMap<String, Value> {
        &self.organization_fields
    }

    /// The body of a `create_or_update` call (keyed on `external_id`), without the
    /// `{"organization": …}` wrapper. Null mirrors are left out of a new organization.
    pub fn create_body(&self) -> Value {
        let mut org = serde_json::Map::new();
        org.insert("name".into(), Value::String(self.name.clone()));
        org.insert(
            "external_id".into(),
            Value::String(self.external_id.as_str().to_string()),
        );
        if let Some(d) = &self.add_domain {
            org.insert("domain_names".into(), serde_json::json!([d.as_str()]));
        }
        if !self.add_tags.is_empty() {
            org.insert("tags".into(), serde_json::json!(self.add_tags));
        }
        let fields: serde_json::Map<String, Value> = self
            .organization_fields
            .iter()
            .filter(|(_, v)| !is_empty_value(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !fields.is_empty() {
            org.insert("organization_fields".into(), Value::Object(fields));
        }
        Value::Object(org)
    }
}

/// The minimal change to an existing organization. Built only by [`Mapping::org_update`]:
/// arrays hold everything the organization had plus what orglink adds (Zendesk's update
/// overwrites arrays wholesale, so sending less would delete support's values).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrgUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_names: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    organization_fields: BTreeMap<String, Value>,
    #[serde(skip)]
    added_domains: Vec<String>,
    #[serde(skip)]
    added_tags: Vec<String>,
}

impl OrgUpdate {
    /// The body of `PUT /api/v2/organizations/{id}`, without the `{"organization": …}` wrapper.
    pub fn body(&self) -> Value {
        serde_json::to_value(self).expect("an update serializes")
    }
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    pub fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }
    /// The full `domain_names` to send, when it changes.
    pub fn domain_names(&self) -> Option<&[String]> {
        self.domain_names.as_deref()
    }
    /// The full `tags` to send, when they change.
    pub fn tags(&self) -> Option<&[String]> {
        self.tags.as_deref()
    }
    pub fn organization_fields(&self) -> &BTreeMap<String, Value> {
        &self.organization_fields
    }
    /// Domains this update adds (for the audit).
    pub fn added_domains(&self) -> &[String] {
        &self.added_domains
    }
    /// Tags this update adds (for the audit; a client may send them through Zendesk's additive
    /// tags endpoint instead, which cannot lose a tag support added meanwhile).
    pub fn added_tags(&self) -> &[String] {
        &self.added_tags
    }

    /// What Zendesk holds after the update (the sandbox and tests use this).
    pub fn apply_to(&self, org: &mut Organization) {
        if let Some(n) = &self.name {
            org.name = n.clone();
        }
        if let Some(k) = &self.external_id {
            org.external_id = Some(k.clone());
        }
        if let Some(d) = &self.domain_names {
            org.domain_names = d.clone();
        }
        if let Some(t) = &self.tags {
            org.tags = t.clone();
        }
        for (k, v) in &self.organization_fields {
            org.organization_fields.insert(k.clone(), v.clone());
        }
    }
}

/// Why orglink will not update an organization.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UpdateRefused {
    /// The org's external_id names another account; rekeying it would steal it.
    #[error(
        "organization {org} is keyed to account {other}, not {account}; orglink does not rekey it (review the link)"
    )]
    KeyedToAnotherAccount {
        org: String,
        account: AccountId,
        other: AccountId,
    },
    /// The org's external_id is some other system's key.
    #[error(
        "organization {org} carries a foreign external_id {key:?}; orglink does not overwrite it (review the link)"
    )]
    ForeignKey { org: String, key: String },
}

impl Mapping {
    /// The configured name length limit (characters).
    pub fn name_max_chars(&self) -> usize {
        self.name.max_chars
    }

    /// The configured tag prefix (everything orglink may add carries it).
    pub fn tag_prefix(&self) -> &str {
        &self.tags.prefix
    }

    /// The tags orglink adds.
    pub fn tags(&self) -> &[String] {
        &self.tags.add
    }

    pub fn adds_reviewed_domain(&self) -> bool {
        self.domain_names.add_reviewed_domain
    }

    pub fn organization_fields(&self) -> &BTreeMap<FieldKey, MirrorSource> {
        &self.organization_fields
    }

    /// The organization name for an account: Zendesk-refused characters removed, whitespace
    /// collapsed and trimmed, cut to the length limit. A name with nothing left falls back to
    /// the suffix alone (e.g. `(Salesforce 001…)`), which still names the account uniquely.
    pub fn org_name(&self, account: &Account) -> String {
        self.name_for(&account.name, &account.id, NameChoice::Plain)
    }

    /// The organization name with the configured suffix, for when an organization keyed to
    /// another account already holds the plain name.
    pub fn suffixed_org_name(&self, account: &Account) -> String {
        self.name_for(&account.name, &account.id, NameChoice::Suffixed)
    }

    fn name_for(&self, raw: &str, id: &AccountId, choice: NameChoice) -> String {
        let base = clean_name(raw);
        let suffix = self
            .name
            .suffix_template
            .replace(ACCOUNT_ID_PLACEHOLDER, id.as_str());
        if base.is_empty() {
            return suffix.trim().to_string();
        }
        match choice {
            NameChoice::Plain => truncate(&base, self.name.max_chars),
            NameChoice::Suffixed => {
                let room = self.name.max_chars - suffix.chars().count();
                format!("{}{suffix}", truncate(&base, room))
            }
        }
    }

    /// What the organization for `account` should hold. `reviewed_domain` is the domain after
    /// the provenance rule ([`crate::contract::DomainDecision::effective`]).
    pub fn desired_org(
        &self,
        account: &Account,
        reviewed_domain: Option<&Domain>,
        domain: DomainAvailability,
        name: NameChoice,
        merged_accounts: &[AccountId],
    ) -> DesiredOrg {
        let add_domain = match (self.domain_names.add_reviewed_domain, domain) {
            (true, DomainAvailability::Free) => reviewed_domain.cloned(),
            _ => None,
        };
        DesiredOrg {
            name: self.name_for(&account.name, &account.id, name),
            external_id: account.id.clone(),
            add_domain,
            add_tags: self.tags.add.clone(),
            organization_fields: self
                .organization_fields
                .iter()
                .map(|(k, src)| (k.0.clone(), src.value(account, reviewed_domain)))
                .collect(),
            merged_accounts: merged_accounts.to_vec(),
        }
    }

    /// The minimal update bringing `current` in line with `desired`; `None` when nothing
    /// changes, so the caller makes no API call. Mirrors are set; arrays only grow; an org keyed
    /// to another account (other than one merged into this one) or to another system is refused.
    pub fn org_update(
        &self,
        current: &Organization,
        desired: &DesiredOrg,
    ) -> Result<Option<OrgUpdate>, UpdateRefused> {
        let account = &desired.external_id;
        let external_id = match current.key() {
            // Zendesk compares keys case-insensitively; a case-only difference is no change.
            OrgKey::Account(id) if &id == account => None,
            OrgKey::None => Some(account.as_str().to_string()),
            OrgKey::LegacyAccount(id) if &id == account => Some(account.as_str().to_string()),
            OrgKey::Account(id) | OrgKey::LegacyAccount(id)
                if desired.merged_accounts.contains(&id) =>
            {
                Some(account.as_str().to_string())
            }
            OrgKey::Account(other) | OrgKey::LegacyAccount(other) => {
                return Err(UpdateRefused::KeyedToAnotherAccount {
                    org: current.id.to_string(),
                    account: account.clone(),
                    other,
                });
            }
            OrgKey::Foreign(key) => {
                return Err(UpdateRefused::ForeignKey {
                    org: current.id.to_string(),
                    key,
                });
            }
        };

        let name = (current.name != desired.name).then(|| desired.name.clone());

        let added_domains: Vec<String> = desired
            .add_domain
            .iter()
            .map(|d| d.as_str().to_string())
            .filter(|d| !contains_ignore_case(&current.domain_names, d))
            .collect();
        let domain_names = (!added_domains.is_empty()).then(|| {
            let mut all = current.domain_names.clone();
            all.extend(added_domains.iter().cloned());
            all
        });

        let added_tags: Vec<String> = desired
            .add_tags
            .iter()
            .filter(|t| !contains_ignore_case(&current.tags, t))
            .cloned()
            .collect();
        let tags = (!added_tags.is_empty()).then(|| {
            let mut all = current.tags.clone();
            all.extend(added_tags.iter().cloned());
            all
        });

        let organization_fields: BTreeMap<String, Value> = desired
            .organization_fields
            .iter()
            .filter(|(k, want)| !same_mirror(current.organization_fields.get(*k), want))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();

        let update = OrgUpdate {
            name,
            external_id,
            domain_names,
            tags,
            organization_fields,
            added_domains,
            added_tags,
        };
        let unchanged = update.name.is_none()
            && update.external_id.is_none()
            && update.domain_names.is_none()
            && update.tags.is_none()
            && update.organization_fields.is_empty();
        Ok((!unchanged).then_some(update))
    }
}

/// Removes what Zendesk refuses and collapses whitespace (control characters count as space).
fn clean_name(raw: &str) -> String {
    raw.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .filter(|c| !REFUSED_NAME_CHARS.contains(c))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars()
        .take(max_chars)
        .collect::<String>()
        .trim_end()
        .to_string()
}

fn contains_ignore_case(list: &[String], item: &str) -> bool {
    list.iter().any(|x| x.trim().eq_ignore_ascii_case(item))
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// A mirror already holds the wanted value; absent, null and "" are all "empty" in Zendesk.
fn same_mirror(current: Option<&Value>, want: &Value) -> bool {
    match current {
        None => is_empty_value(want),
        Some(c) if is_empty_value(c) => is_empty_value(want),
        Some(c) => c == want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Config;
    use crate::contract::tests::{account_named, d, default_with};
    use crate::ids::OrgId;
    use proptest::prelude::*;
    use serde_json::json;

    fn mapping() -> Mapping {
        Config::embedded_default().mapping().clone()
    }

    fn mapping_with(from: &str, to: &str) -> Mapping {
        Config::from_toml(&default_with(from, to))
            .unwrap()
            .mapping()
            .clone()
    }

    fn id() -> AccountId {
        AccountId::parse("001D000000IRFma").unwrap()
    }

    fn other_id() -> AccountId {
        AccountId::parse("001D000000IRFmb").unwrap()
    }

    fn account(name: &str) -> Account {
        Account {
            website: None,
            account_type: Some("Customer - Direct".into()),
            ..account_named(name)
        }
    }

    fn org(external_id: Option<&str>) -> Organization {
        Organization {
            id: OrgId::new(42).unwrap(),
            name: "Acme Corp".into(),
            external_id: external_id.map(String::from),
            domain_names: vec!["acme-support.com".into()],
            tags: vec!["vip".into()],
            organization_fields: BTreeMap::new(),
            updated_at: None,
        }
    }

    fn desired(m: &Mapping, a: &Account, domain: DomainAvailability) -> DesiredOrg {
        m.desired_org(a, Some(&d("acme.com")), domain, NameChoice::Plain, &[])
    }

    /// An org already holding everything the default mapping wants for `account("Acme Corp")`.
    fn in_sync_org() -> Organization {
        let mut o = org(Some(id().as_str()));
        o.domain_names.push("acme.com".into());
        o.tags.push("orglink_customer".into());
        o.organization_fields
            .insert("salesforce_owner_email".into(), json!("owner@example.com"));
        o.organization_fields
            .insert("salesforce_account_type".into(), json!("Customer - Direct"));
        o
    }

    #[test]
    fn names_lose_what_zendesk_refuses() {
        let m = mapping();
        let cases = [
            ("Acme Corp", "Acme Corp"),
            ("  Acme | Corp  ", "Acme Corp"),
            ("Acme\tCorp\n(EMEA)", "Acme Corp (EMEA)"),
            ("|Acme||", "Acme"),
            ("Zürich Versicherung", "Zürich Versicherung"),
        ];
        for (raw, want) in cases {
            assert_eq!(m.org_name(&account(raw)), want, "{raw:?}");
        }
        // Nothing usable left: the suffix alone still names the account.
        assert_eq!(
            m.org_name(&account(" | ")),
            format!("(Salesforce {})", id().as_str())
        );
    }

    #[test]
    fn names_respect_the_length_limit() {
        let m = mapping_with("max_chars = 255", "max_chars = 40");
        let long = "é".repeat(50);
        assert_eq!(m.org_name(&account(&long)), "é".repeat(40));
        let suffixed = m.suffixed_org_name(&account(&long));
        assert_eq!(suffixed.chars().count(), 40);
        assert!(suffixed.ends_with(&format!(" (Salesforce {})", id().as_str())));
        // The cut never leaves a trailing space before the suffix.
        let spaced = m.org_name(&account(&format!("{} tail", "a".repeat(39))));
        assert_eq!(spaced, "a".repeat(39));
        assert_eq!(
            mapping().suffixed_org_name(&account("Acme | Corp")),
            format!("Acme Corp (Salesforce {})", id().as_str())
        );
    }

    #[test]
    fn desired_org_follows_the_mapping() {
        let m = mapping();
        let a = account("Acme Corp");
        let want = desired(&m, &a, DomainAvailability::Free);
        assert_eq!(want.external_id, id());
        assert_eq!(want.add_domain, Some(d("acme.com")));
        assert_eq!(want.add_tags, vec!["orglink_customer".to_string()]);
        assert_eq!(
            want.organization_fields,
            BTreeMap::from([
                ("salesforce_account_type".into(), json!("Customer - Direct")),
                ("salesforce_owner_email".into(), json!("owner@example.com")),
            ])
        );
        for blocked in [
            DomainAvailability::HeldByAnotherOrg,
            DomainAvailability::NotUsable,
        ] {
            assert_eq!(desired(&m, &a, blocked).add_domain, None);
        }
        let off = mapping_with("add_reviewed_domain = true", "add_reviewed_domain = false");
        assert_eq!(desired(&off, &a, DomainAvailability::Free).add_domain, None);
        let no_owner = Account {
            owner_email: Some("  ".into()),
            ..a.clone()
        };
        assert_eq!(
            desired(&m, &no_owner, DomainAvailability::Free).organization_fields["salesforce_owner_email"],
            Value::Null
        );
    }

    #[test]
    fn other_mirror_sources() {
        let m = mapping_with(
            "salesforce_owner_email = \"owner_email\"",
            "sf_id = \"account_id\"\nsf_domain = \"reviewed_domain\"\nsf_name = \"account_name\"",
        );
        let want = desired(&m, &account(" Acme "), DomainAvailability::Free);
        assert_eq!(want.organization_fields["sf_id"], json!(id().as_str()));
        assert_eq!(want.organization_fields["sf_domain"], json!("acme.com"));
        assert_eq!(want.organization_fields["sf_name"], json!("Acme"));
        assert!(
            !want
                .organization_fields
                .contains_key("salesforce_owner_email")
        );
    }

    #[test]
    fn create_body_sets_the_key_at_creation() {
        let m = mapping();
        let a = Account {
            account_type: None,
            ..account("Acme Corp")
        };
        assert_eq!(
            desired(&m, &a, DomainAvailability::Free).create_body(),
            json!({
                "name": "Acme Corp",
                "external_id": id().as_str(),
                "domain_names": ["acme.com"],
                "tags": ["orglink_customer"],
                "organization_fields": {"salesforce_owner_email": "owner@example.com"},
            })
        );
    }

    #[test]
    fn org_update_table() {
        let m = mapping();
        let a = account("Acme Corp");
        let want = desired(&m, &a, DomainAvailability::Free);
        let with = |f: &dyn Fn(&mut Organization)| {
            let mut o = in_sync_org();
            f(&mut o);
            o
        };
        let cases: Vec<(&str, Organization, Option<Value>)> = vec![
            ("in sync", in_sync_org(), None),
            (
                "key case lost in Zendesk is the same key",
                with(&|o| o.external_id = Some(id().as_str().to_lowercase())),
                None,
            ),
            (
                "empty mirror equals null",
                with(&|o| {
                    o.organization_fields.insert("x".into(), Value::Null);
                }),
                None,
            ),
            (
                "keyless org gets the key",
                with(&|o| o.external_id = None),
                Some(json!({"external_id": id().as_str()})),
            ),
            (
                "15-character key is upgraded",
                with(&|o| o.external_id = Some(id().id15().into())),
                Some(json!({"external_id": id().as_str()})),
            ),
            (
                "name mirrors",
                with(&|o| o.name = "ACME".into()),
                Some(json!({"name": "Acme Corp"})),
            ),
            (
                "domain added, support's kept",
                with(&|o| o.domain_names.retain(|x| x != "acme.com")),
                Some(json!({"domain_names": ["acme-support.com", "acme.com"]})),
            ),
            (
                "domain present in another case",
                with(&|o| o.domain_names = vec!["ACME.COM".into()]),
                None,
            ),
            (
                "tag added, support's kept",
                with(&|o| o.tags = vec!["vip".into(), "orglink_old".into()]),
                Some(json!({"tags": ["vip", "orglink_old", "orglink_customer"]})),
            ),
            (
                "only the changed mirror",
                with(&|o| {
                    o.organization_fields
                        .insert("salesforce_owner_email".into(), json!("old@example.com"));
                    o.organization_fields
                        .insert("support_notes".into(), json!("keep me"));
                }),
                Some(
                    json!({"organization_fields": {"salesforce_owner_email": "owner@example.com"}}),
                ),
            ),
            (
                "mirror already current",
                with(&|o| {
                    o.organization_fields
                        .insert("salesforce_account_type".into(), json!("Customer - Direct"));
                }),
                None,
            ),
        ];
        for (what, current, expected) in cases {
            let got = m.org_update(&current, &want).unwrap().map(|u| u.body());
            assert_eq!(got, expected, "{what}");
        }
        let no_type = desired(
            &m,
            &Account {
                account_type: None,
                ..a.clone()
            },
            DomainAvailability::Free,
        );
        assert_eq!(
            m.org_update(&in_sync_org(), &no_type)
                .unwrap()
                .unwrap()
                .body(),
            json!({"organization_fields": {"salesforce_account_type": null}})
        );
        // A domain another org holds is not added.
        let mut o = in_sync_org();
        o.domain_names.clear();
        let held = desired(&m, &a, DomainAvailability::HeldByAnotherOrg);
        assert_eq!(m.org_update(&o, &held), Ok(None));
    }

    #[test]
    fn org_update_refuses_to_steal_a_key() {
        let m = mapping();
        let a = account("Acme Corp");
        let want = desired(&m, &a, DomainAvailability::Free);
        for key in [other_id().as_str(), other_id().id15()] {
            let err = m.org_update(&org(Some(key)), &want).unwrap_err();
            assert!(
                matches!(&err, UpdateRefused::KeyedToAnotherAccount { other, .. } if other == &other_id()),
                "{err:?}"
            );
        }
        let err = m.org_update(&org(Some("hubspot-17")), &want).unwrap_err();
        assert!(matches!(err, UpdateRefused::ForeignKey { .. }));
        assert!(err.to_string().contains("review"));
        // …unless Salesforce merged that account into this one.
        let merged = m.desired_org(
            &a,
            None,
            DomainAvailability::Free,
            NameChoice::Plain,
            &[other_id()],
        );
        let u = m
            .org_update(&org(Some(other_id().id15())), &merged)
            .unwrap()
            .unwrap();
        assert_eq!(u.external_id(), Some(id().as_str()));
    }

    #[test]
    fn update_reports_what_it_adds() {
        let m = mapping();
        let mut o = org(None);
        let u = m
            .org_update(
                &o,
                &desired(&m, &account("Acme Corp"), DomainAvailability::Free),
            )
            .unwrap()
            .unwrap();
        assert_eq!(u.added_domains(), ["acme.com"]);
        assert_eq!(u.added_tags(), ["orglink_customer"]);
        assert_eq!(u.domain_names().unwrap(), ["acme-support.com", "acme.com"]);
        assert_eq!(u.tags().unwrap(), ["vip", "orglink_customer"]);
        assert_eq!(u.name(), None);
        assert_eq!(u.organization_fields().len(), 2);
        u.apply_to(&mut o);
        assert_eq!(o, in_sync_org());
    }

    fn arb_list(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<String>> {
        proptest::sample::subsequence(pool, 0..=pool.len())
            .prop_map(|v| v.into_iter().map(String::from).collect())
    }

    fn arb_org() -> impl Strategy<Value = Organization> {
        let keys = prop_oneof![
            Just(None),
            Just(Some(id().as_str().to_string())),
            Just(Some(id().as_str().to_uppercase())),
            Just(Some(id().id15().to_string())),
        ];
        let field = proptest::option::of(prop_oneof![
            Just(Value::Null),
            Just(json!("")),
            Just(json!("owner@example.com")),
            Just(json!("someone@else.com")),
        ]);
        (
            keys,
            prop_oneof![Just("Acme Corp"), Just("Acme"), Just("")],
            arb_list(&["acme.com", "ACME.com", "support.io", "other.org"]),
            arb_list(&["vip", "orglink_customer", "ORGLINK_CUSTOMER", "orglink_x"]),
            field.clone(),
            field,
        )
            .prop_map(|(key, name, domains, tags, email, kind)| {
                let mut o = org(key.as_deref());
                o.name = name.into();
                o.domain_names = domains;
                o.tags = tags;
                if let Some(v) = email {
                    o.organization_fields
                        .insert("salesforce_owner_email".into(), v);
                }
                if let Some(v) = kind {
                    o.organization_fields
                        .insert("salesforce_account_type".into(), v);
                }
                o
            })
    }

    fn arb_account() -> impl Strategy<Value = Account> {
        (
            prop_oneof![Just("Acme Corp"), Just("Acme | Corp"), Just(" | ")],
            proptest::option::of(prop_oneof![Just("owner@example.com"), Just("")]),
            proptest::option::of(Just("Customer - Direct")),
        )
            .prop_map(|(name, email, kind)| Account {
                owner_email: email.map(String::from),
                account_type: kind.map(String::from),
                ..account(name)
            })
    }

    fn arb_availability() -> impl Strategy<Value = DomainAvailability> {
        prop_oneof![
            Just(DomainAvailability::Free),
            Just(DomainAvailability::HeldByAnotherOrg),
            Just(DomainAvailability::NotUsable),
        ]
    }

    proptest! {
        #[test]
        fn updates_settle_and_arrays_never_shrink(
            current in arb_org(),
            a in arb_account(),
            availability in arb_availability(),
            suffixed in any::<bool>(),
        ) {
            let m = mapping();
            let name = if suffixed { NameChoice::Suffixed } else { NameChoice::Plain };
            let want = m.desired_org(&a, Some(&d("acme.com")), availability, name, &[]);
            let mut o = current.clone();
            if let Some(u) = m.org_update(&o, &want).unwrap() {
                // Only mapped organization fields are sent.
                for k in u.organization_fields().keys() {
                    prop_assert!(m.organization_fields().keys().any(|f| f.as_str() == k));
                }
                u.apply_to(&mut o);
            }
            // Arrays only grow: every element support had is still there, in order.
            prop_assert!(o.domain_names.starts_with(&current.domain_names));
            prop_assert!(o.tags.starts_with(&current.tags));
            // What orglink added carries its prefix.
            for t in &o.tags[current.tags.len()..] {
                prop_assert!(t.starts_with(m.tag_prefix()));
            }
            // Untouched organization fields keep their values.
            for (k, v) in &current.organization_fields {
                if !m.organization_fields().keys().any(|f| f.as_str() == k) {
                    prop_assert_eq!(o.organization_fields.get(k), Some(v));
                }
            }
            // Applying the update once leaves nothing to do: a second sync makes no call.
            prop_assert_eq!(m.org_update(&o, &want).unwrap(), None);
        }
    }
}
