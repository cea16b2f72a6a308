//! The contract between Salesforce and Zendesk, as configuration and pure rules.
//!
//! - [`Config`]: the deployment's TOML (binding, mapping, write-back, eligibility, event kinds),
//!   parsed strictly: unknown keys are refused and every error names the dotted key.
//! - The write-back rule ([`WriteBack::account_write`]): only the four link fields exist in the
//!   types, and only fields whose value changes are written, so orglink's own writes never
//!   start a loop.
//! - The provenance rule for `Zendesk_Domain__c` ([`reviewed_domain_decision`]).
//! - Eligibility ([`EligibilityRule::evaluate`]) and which event kinds may create or relink
//!   ([`Config::permits`]).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::domain::Domain;
use crate::ids::{AccountId, OrgId};
use crate::mapping::Mapping;
use crate::model::Account;

/// The documented default configuration (bound to the local sandbox's org id and subdomain;
/// a deployment copies it and sets `[binding]`).
pub const DEFAULT_CONFIG_TOML: &str = include_str!("../config/orglink.default.toml");

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The whole configuration of one deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    binding: Binding,
    mapping: Mapping,
    write_back: WriteBack,
    eligibility: EligibilityRule,
    events: EventTable,
}

/// Why a configuration was refused. Each names the key to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("the configuration is not valid TOML{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Syntax {
        line: Option<usize>,
        message: String,
    },
    #[error("configuration key `{path}`: {reason}")]
    Invalid { path: String, reason: String },
}

impl ConfigError {
    /// The dotted key the error is about (`None` for a syntax error).
    pub fn path(&self) -> Option<&str> {
        match self {
            ConfigError::Syntax { .. } => None,
            ConfigError::Invalid { path, .. } => Some(path),
        }
    }
}

impl Config {
    /// Parses and validates a complete configuration.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let de = toml::de::Deserializer::parse(text).map_err(|e| ConfigError::Syntax {
            line: e.span().map(|s| line_of(text, s.start)),
            message: e.message().trim().to_string(),
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| {
            let mut path = e.path().to_string();
            let message = e.inner().message().trim().to_string();
            let mut reason = message.clone();
            // serde reports a missing key at its parent, and a section's own checks name the
            // key inside it in their message (see `sub_key`): name the key itself.
            let key = quoted_key(&message, "missing field `").or_else(|| {
                let (key, rest) = message.strip_prefix('`')?.split_once("`: ")?;
                reason = rest.to_string();
                Some(key)
            });
            if let Some(key) = key {
                path = if path == "." {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
            }
            ConfigError::Invalid {
                path: if path == "." {
                    "(top level)".into()
                } else {
                    path
                },
                reason,
            }
        })
    }

    /// The embedded default ([`DEFAULT_CONFIG_TOML`]).
    pub fn embedded_default() -> Config {
        Config::from_toml(DEFAULT_CONFIG_TOML).expect("the embedded default configuration is valid")
    }

    /// The configuration as TOML (what `orglink config check` prints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a configuration serializes")
    }

    pub fn binding(&self) -> &Binding {
        &self.binding
    }
    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }
    pub fn write_back(&self) -> &WriteBack {
        &self.write_back
    }
    pub fn eligibility(&self) -> &EligibilityRule {
        &self.eligibility
    }
    pub fn events(&self) -> &EventTable {
        &self.events
    }

    /// Whether an event of `kind` may take `action` for an account with `eligibility`.
    ///
    /// A not-eligible account never gets a new organization and is never relinked; its
    /// existing link is kept (mirrors still updated) and reported.
    pub fn permits(
        &self,
        kind: EventKind,
        eligibility: &Eligibility,
        action: LinkAction,
    ) -> Result<(), Ignored> {
        let allowed = self.events.permissions(kind);
        let refused = |reason| Err(Ignored { reason });
        match action {
            LinkAction::Update => Ok(()),
            LinkAction::Create | LinkAction::Relink => {
                if let Eligibility::NotEligible { because } = eligibility {
                    return refused(IgnoreReason::NotEligible {
                        action,
                        because: because.clone(),
                    });
                }
                let may = match action {
                    LinkAction::Create => allowed.may_create,
                    _ => allowed.may_relink,
                };
                if may {
                    Ok(())
                } else {
                    refused(IgnoreReason::KindMayNot { kind, action })
                }
            }
        }
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// A section's validation message about one key inside it; [`Config::from_toml`] lifts the
/// key into the error's path.
pub(crate) fn sub_key(key: &str, reason: impl fmt::Display) -> String {
    format!("`{key}`: {reason}")
}

fn quoted_key<'a>(message: &'a str, lead: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(lead)?;
    rest.split('`').next()
}

// ---------------------------------------------------------------------------------------------
// Binding
// ---------------------------------------------------------------------------------------------

/// The one Salesforce org and one Zendesk account this deployment serves. Checked at start,
/// so a full-copy sandbox holding production ids can never write to production Zendesk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    salesforce_org_id: SalesforceOrgId,
    zendesk_subdomain: ZendeskSubdomain,
}

/// The running systems are not the ones this deployment is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BindingMismatch {
    #[error(
        "connected to Salesforce org {actual}, but this deployment is bound to {configured}; refusing to run (a sandbox copy must have its own deployment)"
    )]
    SalesforceOrg { configured: String, actual: String },
    #[error(
        "connected to Zendesk subdomain {actual:?}, but this deployment is bound to {configured:?}; refusing to run"
    )]
    ZendeskSubdomain { configured: String, actual: String },
}

impl Binding {
    pub fn salesforce_org_id(&self) -> &SalesforceOrgId {
        &self.salesforce_org_id
    }
    pub fn zendesk_subdomain(&self) -> &ZendeskSubdomain {
        &self.zendesk_subdomain
    }

    /// Compares the org id Salesforce reports (`/userinfo` `organization_id`, 15 or 18
    /// characters) and the subdomain the Zendesk client talks to with the binding.
    pub fn check(
        &self,
        salesforce_org_id: &str,
        zendesk_subdomain: &str,
    ) -> Result<(), BindingMismatch> {
        if !self.salesforce_org_id.matches(salesforce_org_id) {
            return Err(BindingMismatch::SalesforceOrg {
                configured: self.salesforce_org_id.0.clone(),
                actual: salesforce_org_id.trim().to_string(),
            });
        }
        if !zendesk_subdomain
            .trim()
            .eq_ignore_ascii_case(&self.zendesk_subdomain.0)
        {
            return Err(BindingMismatch::ZendeskSubdomain {
                configured: self.zendesk_subdomain.0.clone(),
                actual: zendesk_subdomain.trim().to_string(),
            });
        }
        Ok(())
    }
}

/// A Salesforce organization id (`00D…`, 15 or 18 characters). Compared on its
/// case-sensitive 15-character form, so either length matches the same org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SalesforceOrgId(String);

impl SalesforceOrgId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    fn matches(&self, other: &str) -> bool {
        let other = other.trim();
        (other.len() == 15 || other.len() == 18)
            && other.is_char_boundary(15)
            && other[..15] == self.0[..15]
    }
}

impl TryFrom<String> for SalesforceOrgId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim();
        if !(t.len() == 15 || t.len() == 18) || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "{s:?} is not a Salesforce org id (15 or 18 letters and digits)"
            ));
        }
        if !t.starts_with("00D") {
            return Err(format!(
                "{s:?} is not a Salesforce org id (org ids start with \"00D\")"
            ));
        }
        Ok(SalesforceOrgId(t.to_string()))
    }
}

impl From<SalesforceOrgId> for String {
    fn from(id: SalesforceOrgId) -> String {
        id.0
    }
}

/// A Zendesk subdomain (`acme` in `acme.zendesk.com`), lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ZendeskSubdomain(String);

impl ZendeskSubdomain {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ZendeskSubdomain {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let t = s.trim().to_ascii_lowercase();
        if t.contains('.') || t.contains('/') {
            return Err(format!(
                "{s:?}: give only the subdomain (\"acme\", not \"acme.zendesk.com\")"
            ));
        }
        let ok = !t.is_empty()
            && t.len() <= 63
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !t.starts_with('-')
            && !t.ends_with('-');
        if !ok {
            return Err(format!(
                "{s:?} is not a Zendesk subdomain (letters, digits and inner hyphens)"
            ));
        }
        Ok(ZendeskSubdomain(t))
    }
}

impl From<ZendeskSubdomain> for String {
    fn from(s: ZendeskSubdomain) -> String {
        s.0
    }
}

// ---------------------------------------------------------------------------------------------
// Write-back: the four link fields
// ---------------------------------------------------------------------------------------------

/// The only Salesforce fields orglink ever writes. There is no other variant, so no
/// configuration or code path can name another field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LinkField {
    #[serde(rename = "Zendesk_Org_ID__c")]
    ZendeskOrgId,
    #[serde(rename = "Zendesk_Domain__c")]
    ZendeskDomain,
    #[serde(rename = "Last_Zendesk_Sync_At__c")]
    LastZendeskSyncAt,
    #[serde(rename = "Zendesk_Sync_Status__c")]
    ZendeskSyncStatus,
}

impl LinkField {
    pub const ALL: [LinkField; 4] = [
        LinkField::ZendeskOrgId,
        LinkField::ZendeskDomain,
        LinkField::LastZendeskSyncAt,
        LinkField::ZendeskSyncStatus,
    ];

    /// The field's API name on Account.
    pub fn api_name(self) -> &'static str {
        match self {
            LinkField::ZendeskOrgId => "Zendesk_Org_ID__c",
            LinkField::ZendeskDomain => "Zendesk_Domain__c",
            LinkField::LastZendeskSyncAt => "Last_Zendesk_Sync_At__c",
            LinkField::ZendeskSyncStatus => "Zendesk_Sync_Status__c",
        }
    }

    /// Reads an API name as Salesforce reports it in change events (API names compare
    /// case-insensitively in Salesforce).
    pub fn from_api_name(name: &str) -> Option<LinkField> {
        LinkField::ALL
            .into_iter()
            .find(|f| f.api_name().eq_ignore_ascii_case(name.trim()))
    }

    /// Whether a change touching `changed_fields` touched link fields only — the shape of an
    /// echo of orglink's own write-back, which intake drops. An empty list is not an echo.
    pub fn only_link_fields<'a>(changed_fields: impl IntoIterator<Item = &'a str>) -> bool {
        let mut any = false;
        for f in changed_fields {
            // Salesforce bumps these on every write, orglink's included.
            if ["LastModifiedDate", "SystemModstamp", "LastModifiedById"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(f.trim()))
            {
                continue;
            }
            if LinkField::from_api_name(f).is_none() {
                return false;
            }
            any = true;
        }
        any
    }
}

impl fmt::Display for LinkField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

/// The values orglink writes to the restricted picklist `Zendesk_Sync_Status__c`. The
/// Salesforce field metadata is generated from [`SyncStatus::all`], so the two cannot drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SyncStatus {
    /// Linked to an organization, and in sync.
    #[serde(rename = "Linked")]
    Linked,
    /// Waiting on a person: an exception in the review queue blocks the link.
    #[serde(rename = "Pending Review")]
    PendingReview,
    /// Does not qualify for an organization (written only where orglink had written a status
    /// before, so prospects are never mass-updated).
    #[serde(rename = "Not Eligible")]
    NotEligible,
    /// Zendesk or Salesforce kept failing past the retry limit.
    #[serde(rename = "Sync Failing")]
    SyncFailing,
    /// Salesforce refused part of the write-back (validation rule, lock, permission).
    #[serde(rename = "Write-back Blocked")]
    WriteBackBlocked,
}

impl SyncStatus {
    /// Every value, in picklist order.
    pub fn all() -> [SyncStatus; 5] {
        [
            SyncStatus::Linked,
            SyncStatus::PendingReview,
            SyncStatus::NotEligible,
            SyncStatus::SyncFailing,
            SyncStatus::WriteBackBlocked,
        ]
    }

    /// The picklist value's API name (`fullName`), which is what the API reads and writes.
    pub fn api_value(self) -> &'static str {
        match self {
            SyncStatus::Linked => "Linked",
            SyncStatus::PendingReview => "Pending Review",
            SyncStatus::NotEligible => "Not Eligible",
            SyncStatus::SyncFailing => "Sync Failing",
            SyncStatus::WriteBackBlocked => "Write-back Blocked",
        }
    }

    /// The label admins see; identical to the API value on purpose.
    pub fn label(self) -> &'static str {
        self.api_value()
    }

    pub fn from_api_value(value: &str) -> Option<SyncStatus> {
        SyncStatus::all()
            .into_iter()
            .find(|s| s.api_value() == value.trim())
    }
}

impl fmt::Display for SyncStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_value())
    }
}

/// The `[write_back]` section: which of the four link fields this deployment writes
/// (an admin may leave out a field they did not install; `Zendesk_Org_ID__c` is the link
/// itself and is required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawWriteBack", into = "RawWriteBack")]
pub struct WriteBack {
    fields: Vec<LinkField>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWriteBack {
    fields: Vec<LinkField>,
}

impl TryFrom<RawWriteBack> for WriteBack {
    type Error = String;
    fn try_from(raw: RawWriteBack) -> Result<Self, String> {
        if !raw.fields.contains(&LinkField::ZendeskOrgId) {
            return Err(sub_key(
                "fields",
                "must include \"Zendesk_Org_ID__c\": it is the link itself",
            ));
        }
        for (i, f) in raw.fields.iter().enumerate() {
            if raw.fields[..i].contains(f) {
                return Err(sub_key(
                    &format!("fields[{i}]"),
                    format!("{f} is listed twice"),
                ));
            }
        }
        Ok(WriteBack { fields: raw.fields })
    }
}

impl From<WriteBack> for RawWriteBack {
    fn from(w: WriteBack) -> Self {
        RawWriteBack { fields: w.fields }
    }
}

/// What orglink wants a field to become.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "intent", content = "value", rename_all = "snake_case")]
pub enum Intent<T> {
    /// No opinion: never written.
    Leave,
    Set(T),
    /// Empty the field.
    Clear,
}

/// The link fields' desired values, as the worker decided them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredLink {
    pub org_id: Intent<OrgId>,
    /// Usually [`DomainDecision::intent`].
    pub reviewed_domain: Intent<Domain>,
    pub status: Intent<SyncStatus>,
}

/// The fields to PATCH on one Account: only link fields (the map's key type allows nothing
/// else), only those that change. `None` clears the field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountWrite {
    changes: std::collections::BTreeMap<LinkField, Option<String>>,
}

impl AccountWrite {
    pub fn changes(&self) -> &std::collections::BTreeMap<LinkField, Option<String>> {
        &self.changes
    }

    /// The PATCH body for `/sobjects/Account/{id}`: `{"Zendesk_Org_ID__c": "123", …}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.changes
                .iter()
                .map(|(f, v)| {
                    let v = v
                        .clone()
                        .map(serde_json::Value::String)
                        .unwrap_or(serde_json::Value::Null);
                    (f.api_name().to_string(), v)
                })
                .collect(),
        )
    }

    /// What the Account holds after the write (the sandbox and tests use this).
    /// `Last_Zendesk_Sync_At__c` is not part of [`Account`].
    pub fn apply_to(&self, account: &mut Account) {
        for (field, value) in &self.changes {
            match field {
                LinkField::ZendeskOrgId => account.stored_org_id = value.clone(),
                LinkField::ZendeskDomain => account.reviewed_domain = value.clone(),
                LinkField::ZendeskSyncStatus => account.sync_status = value.clone(),
                LinkField::LastZendeskSyncAt => {}
            }
        }
    }
}

impl WriteBack {
    pub fn fields(&self) -> &[LinkField] {
        &self.fields
    }

    /// The write-back for `account`: only the enabled link fields whose value changes.
    /// `Last_Zendesk_Sync_At__c` moves (to `now`, ISO-8601 UTC from the caller's clock) only
    /// when orglink changed something — another link field here, or the organization in
    /// Zendesk (`zendesk_changed`) — so it reads "when orglink last changed this link", and a
    /// sync that finds everything in order writes nothing at all. `None`: no API call.
    pub fn account_write(
        &self,
        account: &Account,
        desired: &DesiredLink,
        zendesk_changed: bool,
        now: &str,
    ) -> Option<AccountWrite> {
        let mut changes = std::collections::BTreeMap::new();
        let enabled = |f: LinkField| self.fields.contains(&f);

        let org_id = desired.org_id.as_ref().map(OrgId::to_string);
        if let Some(v) = change(account.stored_org_id.as_deref(), org_id, |cur, want| {
            cur.trim() == want
        }) {
            changes.insert(LinkField::ZendeskOrgId, v);
        }
        let domain = desired
            .reviewed_domain
            .as_ref()
            .map(|d| d.as_str().to_string());
        if let Some(v) = change(account.reviewed_domain.as_deref(), domain, |cur, want| {
            Domain::parse(cur).is_ok_and(|d| d.as_str() == want)
        }) {
            changes.insert(LinkField::ZendeskDomain, v);
        }
        let status = desired.status.as_ref().map(|s| s.api_value().to_string());
        if let Some(v) = change(account.sync_status.as_deref(), status, |cur, want| {
            cur == want
        }) {
            changes.insert(LinkField::ZendeskSyncStatus, v);
        }
        // An account orglink never touched does not learn it is "Not Eligible": that would
        // write to every prospect in the org.
        if desired.status == Intent::Set(SyncStatus::NotEligible)
            && account
                .sync_status
                .as_deref()
                .is_none_or(|s| s.trim().is_empty())
        {
            changes.remove(&LinkField::ZendeskSyncStatus);
        }
        changes.retain(|f, _| enabled(*f));

        if (!changes.is_empty() || zendesk_changed) && enabled(LinkField::LastZendeskSyncAt) {
            changes.insert(LinkField::LastZendeskSyncAt, Some(now.to_string()));
        }
        (!changes.is_empty()).then_some(AccountWrite { changes })
    }
}

impl<T> Intent<T> {
    fn as_ref(&self) -> Intent<&T> {
        match self {
            Intent::Leave => Intent::Leave,
            Intent::Set(v) => Intent::Set(v),
            Intent::Clear => Intent::Clear,
        }
    }
}

impl<T> Intent<&T> {
    fn map(self, f: impl FnOnce(&T) -> String) -> Intent<String> {
        match self {
            Intent::Leave => Intent::Leave,
            Intent::Set(v) => Intent::Set(f(v)),
            Intent::Clear => Intent::Clear,
        }
    }
}

/// The value to write for one field, if it changes (`Some(None)` clears it).
fn change(
    current: Option<&str>,
    want: Intent<String>,
    same: impl Fn(&str, &str) -> bool,
) -> Option<Option<String>> {
    let current = current.filter(|c| !c.trim().is_empty());
    match (want, current) {
        (Intent::Leave, _) | (Intent::Clear, None) => None,
        (Intent::Clear, Some(_)) => Some(None),
        (Intent::Set(w), Some(c)) if same(c, &w) => None,
        (Intent::Set(w), _) => Some(Some(w)),
    }
}

// ---------------------------------------------------------------------------------------------
// Provenance of Zendesk_Domain__c
// ---------------------------------------------------------------------------------------------

/// What to do with `Zendesk_Domain__c`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum DomainDecision {
    Keep {
        because: KeepBecause,
    },
    /// orglink writes the domain (and records it as what it last wrote).
    Set {
        domain: Domain,
        because: SetBecause,
    },
    /// A person's value disagrees with Website: a domain-drift finding; the field is kept.
    Drift {
        reviewed: String,
        website: Domain,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeepBecause {
    /// Website gives no usable domain (empty, or a value the normalizer rejected).
    NoWebsiteDomain,
    /// The field already holds the Website's domain.
    UpToDate,
    /// A person set the field and Website is empty or unusable: their value stands.
    PersonsValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SetBecause {
    /// The field was empty (never filled, or a person cleared it to hand it back to orglink).
    FillEmpty,
    /// The field still holds what orglink last wrote, and Website moved on.
    FollowWebsite,
}

/// The provenance rule. `current`: the field as Salesforce holds it; `last_written`: what
/// orglink last wrote there (link record); `website`: the normalized Website, if usable.
///
/// orglink fills an empty field and keeps it following Website while it still holds orglink's
/// last write. Any other value is a person's: it wins, and a Website that disagrees is drift.
pub fn reviewed_domain_decision(
    current: Option<&str>,
    last_written: Option<&Domain>,
    website: Option<&Domain>,
) -> DomainDecision {
    let current = current.map(str::trim).filter(|c| !c.is_empty());
    let parsed = current.and_then(|c| Domain::parse(c).ok());
    match (current, website) {
        (None, None) => DomainDecision::Keep {
            because: KeepBecause::NoWebsiteDomain,
        },
        (None, Some(w)) => DomainDecision::Set {
            domain: w.clone(),
            because: SetBecause::FillEmpty,
        },
        (Some(_), Some(w)) if parsed.as_ref() == Some(w) => DomainDecision::Keep {
            because: KeepBecause::UpToDate,
        },
        (Some(c), website) => {
            let orglinks = parsed.is_some() && parsed.as_ref() == last_written;
            match (orglinks, website) {
                (true, None) => DomainDecision::Keep {
                    because: KeepBecause::NoWebsiteDomain,
                },
                (true, Some(w)) => DomainDecision::Set {
                    domain: w.clone(),
                    because: SetBecause::FollowWebsite,
                },
                (false, None) => DomainDecision::Keep {
                    because: KeepBecause::PersonsValue,
                },
                (false, Some(w)) => DomainDecision::Drift {
                    reviewed: c.to_string(),
                    website: w.clone(),
                },
            }
        }
    }
}

impl DomainDecision {
    /// The reviewed domain orglink links with after this decision (`current` as passed to
    /// [`reviewed_domain_decision`]). A person's unparseable value yields none.
    pub fn effective(&self, current: Option<&str>) -> Option<Domain> {
        match self {
            DomainDecision::Set { domain, .. } => Some(domain.clone()),
            DomainDecision::Keep { .. } | DomainDecision::Drift { .. } => current
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .and_then(|c| Domain::parse(c).ok()),
        }
    }

    /// The write-back intent for `Zendesk_Domain__c`.
    pub fn intent(&self) -> Intent<Domain> {
        match self {
            DomainDecision::Set { domain, .. } => Intent::Set(domain.clone()),
            DomainDecision::Keep { .. } | DomainDecision::Drift { .. } => Intent::Leave,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Eligibility
// ---------------------------------------------------------------------------------------------

/// The `[eligibility]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawEligibility", into = "RawEligibility")]
pub struct EligibilityRule {
    customer_type_prefixes: Vec<String>,
    closed_won: bool,
    late_stage: LateStage,
}

/// When an open opportunity counts as late-stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LateStage {
    /// `Probability` at or above this (0–100).
    MinProbability(f64),
    /// `StageName` is one of these (compared ignoring case).
    StageNames(Vec<String>),
    /// Open opportunities never make an account eligible.
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEligibility {
    customer_type_prefixes: Vec<String>,
    closed_won: bool,
    late_stage: RawLateStage,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLateStage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_probability: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stage_names: Option<Vec<String>>,
}

impl TryFrom<RawEligibility> for EligibilityRule {
    type Error = String;
    fn try_from(raw: RawEligibility) -> Result<Self, String> {
        for (i, p) in raw.customer_type_prefixes.iter().enumerate() {
            if p.trim().is_empty() {
                return Err(sub_key(
                    &format!("customer_type_prefixes[{i}]"),
                    "is empty, which would make every account a customer",
                ));
            }
        }
        let late_stage = match (raw.late_stage.min_probability, raw.late_stage.stage_names) {
            (Some(_), Some(_)) => {
                return Err(sub_key(
                    "late_stage",
                    "set min_probability or stage_names, not both",
                ));
            }
            (Some(p), None) if !(0.0..=100.0).contains(&p) => {
                return Err(sub_key(
                    "late_stage.min_probability",
                    format!("{p} must be between 0 and 100"),
                ));
            }
            (Some(p), None) => LateStage::MinProbability(p),
            (None, Some(names)) => {
                if names.is_empty() {
                    return Err(sub_key(
                        "late_stage.stage_names",
                        "is empty; to switch the rule off, leave out both keys",
                    ));
                }
                if let Some(i) = names.iter().position(|n| n.trim().is_empty()) {
                    return Err(sub_key(&format!("late_stage.stage_names[{i}]"), "is empty"));
                }
                LateStage::StageNames(names)
            }
            (None, None) => LateStage::Off,
        };
        Ok(EligibilityRule {
            customer_type_prefixes: raw.customer_type_prefixes,
            closed_won: raw.closed_won,
            late_stage,
        })
    }
}

impl From<EligibilityRule> for RawEligibility {
    fn from(e: EligibilityRule) -> Self {
        let late_stage = match e.late_stage {
            LateStage::MinProbability(p) => RawLateStage {
                min_probability: Some(p),
                stage_names: None,
            },
            LateStage::StageNames(n) => RawLateStage {
                min_probability: None,
                stage_names: Some(n),
            },
            LateStage::Off => RawLateStage::default(),
        };
        RawEligibility {
            customer_type_prefixes: e.customer_type_prefixes,
            closed_won: e.closed_won,
            late_stage,
        }
    }
}

/// Whether an account should have a linked organization, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "eligibility", rename_all = "snake_case")]
pub enum Eligibility {
    /// Every rule that matched, in rule order (the first is the headline for the audit).
    Eligible {
        because: Vec<EligibleBecause>,
    },
    NotEligible {
        because: NotEligibleBecause,
    },
}

impl Eligibility {
    pub fn is_eligible(&self) -> bool {
        matches!(self, Eligibility::Eligible { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum EligibleBecause {
    CustomerType {
        account_type: String,
        prefix: String,
    },
    ClosedWon,
    LateStageOpportunity {
        stage_name: String,
        probability: Option<f64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum NotEligibleBecause {
    Deleted,
    MergedInto { master: AccountId },
    NoRuleMatched,
}

impl fmt::Display for NotEligibleBecause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotEligibleBecause::Deleted => f.write_str("the account is deleted"),
            NotEligibleBecause::MergedInto { master } => {
                write!(f, "the account was merged into {master}")
            }
            NotEligibleBecause::NoRuleMatched => f.write_str(
                "the account is not a customer, has no Closed Won and no late-stage opportunity",
            ),
        }
    }
}

impl EligibilityRule {
    pub fn customer_type_prefixes(&self) -> &[String] {
        &self.customer_type_prefixes
    }
    pub fn closed_won(&self) -> bool {
        self.closed_won
    }
    pub fn late_stage(&self) -> &LateStage {
        &self.late_stage
    }

    pub fn evaluate(&self, account: &Account) -> Eligibility {
        if account.is_deleted {
            let because = match &account.master_record_id {
                Some(master) => NotEligibleBecause::MergedInto {
                    master: master.clone(),
                },
                None => NotEligibleBecause::Deleted,
            };
            return Eligibility::NotEligible { because };
        }
        let mut because = Vec::new();
        if let Some(t) = account.account_type.as_deref().map(str::trim)
            && let Some(p) = self
                .customer_type_prefixes
                .iter()
                .find(|p| starts_with_ignore_case(t, p.trim()))
        {
            because.push(EligibleBecause::CustomerType {
                account_type: t.to_string(),
                prefix: p.clone(),
            });
        }
        if self.closed_won && account.has_closed_won {
            because.push(EligibleBecause::ClosedWon);
        }
        let late = account
            .open_opportunities
            .iter()
            .find(|o| match &self.late_stage {
                LateStage::MinProbability(min) => o.probability.is_some_and(|p| p >= *min),
                LateStage::StageNames(names) => names
                    .iter()
                    .any(|n| n.trim().eq_ignore_ascii_case(o.stage_name.trim())),
                LateStage::Off => false,
            });
        if let Some(o) = late {
            because.push(EligibleBecause::LateStageOpportunity {
                stage_name: o.stage_name.clone(),
                probability: o.probability,
            });
        }
        if because.is_empty() {
            Eligibility::NotEligible {
                because: NotEligibleBecause::NoRuleMatched,
            }
        } else {
            Eligibility::Eligible { because }
        }
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

// ---------------------------------------------------------------------------------------------
// Event kinds
// ---------------------------------------------------------------------------------------------

/// The events that may make orglink create or relink an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    LateStageOpportunity,
    ClosedWon,
    BecameCustomer,
    NameChanged,
    DomainChanged,
    /// An operator action (CLI `sync`, backfill apply).
    Manual,
    /// A repair the nightly reconcile enqueued.
    ReconcileRepair,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::LateStageOpportunity,
        EventKind::ClosedWon,
        EventKind::BecameCustomer,
        EventKind::NameChanged,
        EventKind::DomainChanged,
        EventKind::Manual,
        EventKind::ReconcileRepair,
    ];

    /// The snake_case name used in messages, the audit and the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::LateStageOpportunity => "late_stage_opportunity",
            EventKind::ClosedWon => "closed_won",
            EventKind::BecameCustomer => "became_customer",
            EventKind::NameChanged => "name_changed",
            EventKind::DomainChanged => "domain_changed",
            EventKind::Manual => "manual",
            EventKind::ReconcileRepair => "reconcile_repair",
        }
    }

    /// Reads an event kind; anything unknown is ignored, with the reason recorded.
    pub fn classify(raw: &str) -> Result<EventKind, Ignored> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == raw.trim())
            .ok_or_else(|| Ignored {
                reason: IgnoreReason::UnknownEventKind {
                    kind: raw.to_string(),
                },
            })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one event kind may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventPermissions {
    pub may_create: bool,
    pub may_relink: bool,
}

/// The `[events]` section: one entry per kind, all required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventTable {
    late_stage_opportunity: EventPermissions,
    closed_won: EventPermissions,
    became_customer: EventPermissions,
    name_changed: EventPermissions,
    domain_changed: EventPermissions,
    manual: EventPermissions,
    reconcile_repair: EventPermissions,
}

impl EventTable {
    pub fn permissions(&self, kind: EventKind) -> EventPermissions {
        match kind {
            EventKind::LateStageOpportunity => self.late_stage_opportunity,
            EventKind::ClosedWon => self.closed_won,
            EventKind::BecameCustomer => self.became_customer,
            EventKind::NameChanged => self.name_changed,
            EventKind::DomainChanged => self.domain_changed,
            EventKind::Manual => self.manual,
            EventKind::ReconcileRepair => self.reconcile_repair,
        }
    }
}

/// What a sync is about to do to the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    /// Create a new organization.
    Create,
    /// Link the account to an organization other than the one it is linked to (or to an
    /// existing organization when it had none).
    Relink,
    /// Update the mirrors of the organization it is already linked to.
    Update,
}

impl fmt::Display for LinkAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkAction::Create => "create an organization",
            LinkAction::Relink => "relink",
            LinkAction::Update => "update",
        })
    }
}

/// An event orglink deliberately did nothing with; the reason goes to the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[error("ignored: {reason}")]
pub struct Ignored {
    pub reason: IgnoreReason,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum IgnoreReason {
    UnknownEventKind {
        kind: String,
    },
    /// The configuration does not let this kind of event take this action.
    KindMayNot {
        kind: EventKind,
        action: LinkAction,
    },
    NotEligible {
        action: LinkAction,
        because: NotEligibleBecause,
    },
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IgnoreReason::UnknownEventKind { kind } => {
                write!(f, "event kind {kind:?} is not one orglink acts on")
            }
            IgnoreReason::KindMayNot { kind, action } => {
                write!(
                    f,
                    "a {kind} event may not {action} (see [events] in the configuration)"
                )
            }
            IgnoreReason::NotEligible { action, because } => {
                write!(f, "will not {action}: {because}")
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::OpenOpportunity;
    use proptest::prelude::*;

    fn account() -> Account {
        account_named("Acme Corp")
    }

    /// A live account with an owner and nothing else (the mapping's tests share it).
    pub(crate) fn account_named(name: &str) -> Account {
        Account {
            id: AccountId::parse("001D000000IRFma").unwrap(),
            name: name.into(),
            website: Some("https://www.acme.com".into()),
            reviewed_domain: None,
            stored_org_id: None,
            sync_status: None,
            account_type: None,
            owner_email: Some("owner@example.com".into()),
            is_deleted: false,
            master_record_id: None,
            has_closed_won: false,
            open_opportunities: vec![],
            system_modstamp: None,
        }
    }

    pub(crate) fn d(s: &str) -> Domain {
        Domain::parse(s).unwrap()
    }

    /// The default with one piece of text replaced (which must be there).
    pub(crate) fn default_with(from: &str, to: &str) -> String {
        assert!(DEFAULT_CONFIG_TOML.contains(from), "default lacks {from:?}");
        DEFAULT_CONFIG_TOML.replacen(from, to, 1)
    }

    // --- configuration -----------------------------------------------------------------------

    #[test]
    fn the_default_parses_and_round_trips() {
        let c = Config::embedded_default();
        assert_eq!(c.binding().zendesk_subdomain().as_str(), "orglink-sandbox");
        assert_eq!(c.write_back().fields(), &LinkField::ALL);
        assert_eq!(
            c.eligibility().late_stage(),
            &LateStage::MinProbability(75.0)
        );
        assert_eq!(c.mapping().tag_prefix(), "orglink_");
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn refusals_name_the_key() {
        // (what the default says, what the broken config says, the key named, words in the reason)
        let cases: &[(&str, &str, &str, &str)] = &[
            // A write to any Salesforce field but the four link fields.
            (
                "fields = [\n    \"Zendesk_Org_ID__c\",",
                "fields = [\n    \"Zendesk_Org_ID__c\", \"Description\",",
                "write_back.fields[1]",
                "unknown variant `Description`",
            ),
            (
                "[write_back]\n",
                "[write_back]\nDescription = \"x\"\n",
                "write_back.Description",
                "unknown field",
            ),
            (
                "[write_back]\n",
                "[salesforce.fields]\nDescription = \"name\"\n\n[write_back]\n",
                "salesforce",
                "unknown field",
            ),
            (
                "    \"Zendesk_Org_ID__c\",\n",
                "",
                "write_back.fields",
                "link itself",
            ),
            (
                "    \"Zendesk_Domain__c\",\n",
                "    \"Zendesk_Domain__c\",\n    \"Zendesk_Domain__c\",\n",
                "write_back.fields[2]",
                "twice",
            ),
            // external_id is the account id and nothing else.
            (
                "external_id = \"account_id\"",
                "external_id = \"account_name\"",
                "mapping.external_id",
                "expected `account_id`",
            ),
            (
                "salesforce_owner_email = \"owner_email\"",
                "external_id = \"account_name\"",
                "mapping.organization_fields.external_id",
                "not configurable",
            ),
            // Arrays are add-only, tags only with orglink's prefix.
            (
                "add_reviewed_domain = true",
                "add_reviewed_domain = true\nreplace = true",
                "mapping.domain_names.replace",
                "unknown field",
            ),
            (
                "add_reviewed_domain = true",
                "set = [\"acme.com\"]",
                "mapping.domain_names.set",
                "unknown field",
            ),
            (
                "add = [\"orglink_customer\"]",
                "add = [\"orglink_customer\", \"vip\"]",
                "mapping.tags.add[1]",
                "prefix",
            ),
            (
                "add = [\"orglink_customer\"]",
                "add = [\"orglink_\"]",
                "mapping.tags.add[0]",
                "prefix",
            ),
            (
                "add = [\"orglink_customer\"]",
                "add = [\"orglink_Customer Tier\"]",
                "mapping.tags.add[0]",
                "single lowercase words",
            ),
            (
                "prefix = \"orglink_\"",
                "prefix = \"\"",
                "mapping.tags.prefix",
                "at least 2",
            ),
            (
                "add = [\"orglink_customer\"]",
                "add = [\"orglink_customer\"]\nremove = [\"vip\"]",
                "mapping.tags.remove",
                "unknown field",
            ),
            // Mirrors: known sources, sane keys.
            (
                "= \"owner_email\"",
                "= \"owner_phone\"",
                "mapping.organization_fields.salesforce_owner_email",
                "unknown variant",
            ),
            (
                "salesforce_owner_email =",
                "\"owner email\" =",
                "mapping.organization_fields.owner email",
                "letters, digits and underscores",
            ),
            // Names.
            (
                "\" (Salesforce {account_id})\"",
                "\" (Salesforce)\"",
                "mapping.name.suffix_template",
                "exactly once",
            ),
            (
                "\" (Salesforce {account_id})\"",
                "\" | {account_id}\"",
                "mapping.name.suffix_template",
                "'|'",
            ),
            (
                "\" (Salesforce {account_id})\"",
                "\" ({owner} {account_id})\"",
                "mapping.name.suffix_template",
                "other than",
            ),
            (
                "max_chars = 255",
                "max_chars = 30",
                "mapping.name.max_chars",
                "no room",
            ),
            (
                "source = \"account_name\"",
                "source = \"website\"",
                "mapping.name.source",
                "unknown variant",
            ),
            // Eligibility.
            (
                "min_probability = 75",
                "min_probability = 75\nstage_names = [\"Negotiation\"]",
                "eligibility.late_stage",
                "not both",
            ),
            (
                "min_probability = 75",
                "min_probability = 150",
                "eligibility.late_stage.min_probability",
                "between 0 and 100",
            ),
            (
                "min_probability = 75",
                "stage_names = []",
                "eligibility.late_stage.stage_names",
                "is empty",
            ),
            (
                "customer_type_prefixes = [\"Customer\"]",
                "customer_type_prefixes = [\"Customer\", \" \"]",
                "eligibility.customer_type_prefixes[1]",
                "every account",
            ),
            (
                "closed_won = true\n\n",
                "\n",
                "eligibility.closed_won",
                "missing field",
            ),
            // Events.
            (
                "manual = { may_create = true, may_relink = true }",
                "owner_changed = { may_create = true, may_relink = true }",
                "events.owner_changed",
                "unknown field",
            ),
            (
                "manual = { may_create = true, may_relink = true }\n",
                "",
                "events.manual",
                "missing field",
            ),
            (
                "manual = { may_create = true, may_relink = true }",
                "manual = { may_create = true, may_relink = true, may_delete = true }",
                "events.manual.may_delete",
                "unknown field",
            ),
            // Binding.
            (
                "salesforce_org_id = \"00D000000000001EAA\"",
                "salesforce_org_id = \"001D000000IRFmaIAH\"",
                "binding.salesforce_org_id",
                "00D",
            ),
            (
                "zendesk_subdomain = \"orglink-sandbox\"",
                "zendesk_subdomain = \"acme.zendesk.com\"",
                "binding.zendesk_subdomain",
                "only the subdomain",
            ),
            (
                "zendesk_subdomain = \"orglink-sandbox\"\n",
                "",
                "binding.zendesk_subdomain",
                "missing field",
            ),
        ];
        for (from, to, path, words) in cases {
            let err = Config::from_toml(&default_with(from, to)).unwrap_err();
            assert_eq!(err.path(), Some(*path), "{to:?} gave {err}");
            assert!(err.to_string().contains(words), "{to:?} gave {err}");
            assert!(err.to_string().contains(path), "{err}");
        }
    }

    #[test]
    fn the_contract_document_shows_the_default_verbatim() {
        let doc = include_str!("../../docs/contract.md");
        assert!(
            doc.contains(DEFAULT_CONFIG_TOML),
            "docs/contract.md must quote shared/config/orglink.default.toml"
        );
        for s in SyncStatus::all() {
            assert!(doc.contains(&format!("| `{}` |", s.api_value())), "{s}");
        }
        for k in EventKind::ALL {
            assert!(doc.contains(&format!("| `{}` |", k.as_str())), "{k}");
        }
    }

    #[test]
    fn a_syntax_error_gives_the_line() {
        let err = Config::from_toml(&default_with("\n[binding]\n", "\n[binding\n")).unwrap_err();
        assert!(
            matches!(err, ConfigError::Syntax { line: Some(10), .. }),
            "{err:?}"
        );
        assert_eq!(err.path(), None);
    }

    #[test]
    fn stage_names_or_no_late_stage_rule_are_accepted() {
        let c = Config::from_toml(&default_with(
            "min_probability = 75",
            "stage_names = [\"Negotiation/Review\"]",
        ))
        .unwrap();
        assert_eq!(
            c.eligibility().late_stage(),
            &LateStage::StageNames(vec!["Negotiation/Review".into()])
        );
        let c = Config::from_toml(&default_with("min_probability = 75", "")).unwrap();
        assert_eq!(c.eligibility().late_stage(), &LateStage::Off);
        assert_eq!(Config::from_toml(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn binding_is_checked_against_the_live_systems() {
        let b = Config::embedded_default().binding().clone();
        assert_eq!(b.check("00D000000000001EAA", "orglink-sandbox"), Ok(()));
        assert_eq!(b.check("00D000000000001", "Orglink-Sandbox"), Ok(()));
        assert!(matches!(
            b.check("00D000000000002EAA", "orglink-sandbox"),
            Err(BindingMismatch::SalesforceOrg { .. })
        ));
        // 15-character ids are case-sensitive.
        assert!(b.check("00d000000000001", "orglink-sandbox").is_err());
        assert!(b.check("garbage", "orglink-sandbox").is_err());
        let err = b.check("00D000000000001EAA", "acme").unwrap_err();
        assert!(matches!(err, BindingMismatch::ZendeskSubdomain { .. }));
        assert!(err.to_string().contains("refusing to run"));
    }

    // --- provenance of Zendesk_Domain__c -----------------------------------------------------

    #[test]
    fn provenance_rule_table() {
        use DomainDecision::*;
        let acme = d("acme.com");
        let new = d("acme.io");
        // (current field, what orglink last wrote, website domain, decision)
        type Case<'a> = (
            Option<&'a str>,
            Option<&'a Domain>,
            Option<&'a Domain>,
            DomainDecision,
        );
        let cases: Vec<Case> = vec![
            // Empty field: filled from Website, whatever orglink wrote before.
            (
                None,
                None,
                Some(&acme),
                Set {
                    domain: acme.clone(),
                    because: SetBecause::FillEmpty,
                },
            ),
            (
                Some("  "),
                Some(&new),
                Some(&acme),
                Set {
                    domain: acme.clone(),
                    because: SetBecause::FillEmpty,
                },
            ),
            (
                None,
                None,
                None,
                Keep {
                    because: KeepBecause::NoWebsiteDomain,
                },
            ),
            // Already the Website's domain.
            (
                Some("acme.com"),
                None,
                Some(&acme),
                Keep {
                    because: KeepBecause::UpToDate,
                },
            ),
            (
                Some("ACME.com"),
                Some(&new),
                Some(&acme),
                Keep {
                    because: KeepBecause::UpToDate,
                },
            ),
            // Still what orglink wrote: follows Website.
            (
                Some("acme.com"),
                Some(&acme),
                Some(&new),
                Set {
                    domain: new.clone(),
                    because: SetBecause::FollowWebsite,
                },
            ),
            (
                Some("Acme.COM"),
                Some(&acme),
                Some(&new),
                Set {
                    domain: new.clone(),
                    because: SetBecause::FollowWebsite,
                },
            ),
            (
                Some("acme.com"),
                Some(&acme),
                None,
                Keep {
                    because: KeepBecause::NoWebsiteDomain,
                },
            ),
            // A person's value wins; a disagreeing Website is drift.
            (
                Some("acme.io"),
                Some(&acme),
                Some(&new),
                Keep {
                    because: KeepBecause::UpToDate,
                },
            ),
            (
                Some("acme-group.com"),
                Some(&acme),
                Some(&acme),
                Drift {
                    reviewed: "acme-group.com".into(),
                    website: acme.clone(),
                },
            ),
            (
                Some("acme-group.com"),
                None,
                Some(&acme),
                Drift {
                    reviewed: "acme-group.com".into(),
                    website: acme.clone(),
                },
            ),
            (
                Some("acme-group.com"),
                None,
                None,
                Keep {
                    because: KeepBecause::PersonsValue,
                },
            ),
            (
                Some("n/a"),
                Some(&acme),
                Some(&acme),
                Drift {
                    reviewed: "n/a".into(),
                    website: acme.clone(),
                },
            ),
        ];
        for (current, last, website, want) in cases {
            assert_eq!(
                reviewed_domain_decision(current, last, website),
                want,
                "current {current:?}, last written {last:?}, website {website:?}"
            );
        }
    }

    #[test]
    fn decision_gives_the_domain_to_link_with_and_the_write() {
        let acme = d("acme.com");
        let set = reviewed_domain_decision(None, None, Some(&acme));
        assert_eq!(set.effective(None), Some(acme.clone()));
        assert_eq!(set.intent(), Intent::Set(acme.clone()));
        let drift = reviewed_domain_decision(Some("Acme-Group.com"), None, Some(&acme));
        assert_eq!(
            drift.effective(Some("Acme-Group.com")),
            Some(d("acme-group.com"))
        );
        assert_eq!(drift.intent(), Intent::Leave);
        let junk = reviewed_domain_decision(Some("n/a"), None, None);
        assert_eq!(junk.effective(Some("n/a")), None);
    }

    // --- write-back --------------------------------------------------------------------------

    const NOW: &str = "2025-01-02T03:04:05Z";

    fn org(n: u64) -> OrgId {
        OrgId::new(n).unwrap()
    }

    fn linked(a: &Account) -> Account {
        Account {
            stored_org_id: Some("42".into()),
            reviewed_domain: Some("acme.com".into()),
            sync_status: Some("Linked".into()),
            ..a.clone()
        }
    }

    fn want(
        org_id: Intent<OrgId>,
        domain: Intent<Domain>,
        status: Intent<SyncStatus>,
    ) -> DesiredLink {
        DesiredLink {
            org_id,
            reviewed_domain: domain,
            status,
        }
    }

    #[test]
    fn write_back_table() {
        let wb = Config::embedded_default().write_back().clone();
        let a = linked(&account());
        let in_sync = want(
            Intent::Set(org(42)),
            Intent::Set(d("acme.com")),
            Intent::Set(SyncStatus::Linked),
        );
        // (account, desired, zendesk changed, expected body)
        let cases: Vec<(Account, DesiredLink, bool, Option<serde_json::Value>)> = vec![
            (a.clone(), in_sync.clone(), false, None),
            (
                a.clone(),
                want(Intent::Leave, Intent::Leave, Intent::Leave),
                false,
                None,
            ),
            // The org changed in Zendesk only: just the timestamp.
            (
                a.clone(),
                in_sync.clone(),
                true,
                Some(serde_json::json!({"Last_Zendesk_Sync_At__c": NOW})),
            ),
            // A new link.
            (
                account(),
                in_sync.clone(),
                true,
                Some(serde_json::json!({
                    "Zendesk_Org_ID__c": "42",
                    "Zendesk_Domain__c": "acme.com",
                    "Zendesk_Sync_Status__c": "Linked",
                    "Last_Zendesk_Sync_At__c": NOW,
                })),
            ),
            // Status only.
            (
                a.clone(),
                want(
                    Intent::Leave,
                    Intent::Leave,
                    Intent::Set(SyncStatus::PendingReview),
                ),
                false,
                Some(
                    serde_json::json!({"Zendesk_Sync_Status__c": "Pending Review", "Last_Zendesk_Sync_At__c": NOW}),
                ),
            ),
            // Same domain in another case, org id with stray spaces: no change.
            (
                Account {
                    reviewed_domain: Some("ACME.com".into()),
                    stored_org_id: Some(" 42 ".into()),
                    ..a.clone()
                },
                in_sync.clone(),
                false,
                None,
            ),
            // Clearing a stored id; clearing an empty field is no change.
            (
                a.clone(),
                want(Intent::Clear, Intent::Leave, Intent::Leave),
                false,
                Some(
                    serde_json::json!({"Zendesk_Org_ID__c": null, "Last_Zendesk_Sync_At__c": NOW}),
                ),
            ),
            (
                account(),
                want(Intent::Clear, Intent::Clear, Intent::Clear),
                false,
                None,
            ),
            // "Not Eligible" only replaces a status orglink wrote before.
            (
                account(),
                want(
                    Intent::Leave,
                    Intent::Leave,
                    Intent::Set(SyncStatus::NotEligible),
                ),
                false,
                None,
            ),
            (
                a.clone(),
                want(
                    Intent::Leave,
                    Intent::Leave,
                    Intent::Set(SyncStatus::NotEligible),
                ),
                false,
                Some(
                    serde_json::json!({"Zendesk_Sync_Status__c": "Not Eligible", "Last_Zendesk_Sync_At__c": NOW}),
                ),
            ),
            // A legacy picklist value is replaced.
            (
                Account {
                    sync_status: Some("Error".into()),
                    ..a.clone()
                },
                in_sync.clone(),
                false,
                Some(
                    serde_json::json!({"Zendesk_Sync_Status__c": "Linked", "Last_Zendesk_Sync_At__c": NOW}),
                ),
            ),
        ];
        for (i, (acct, desired, zd, expected)) in cases.into_iter().enumerate() {
            let got = wb.account_write(&acct, &desired, zd, NOW).map(|w| w.body());
            assert_eq!(got, expected, "case {i}");
        }
    }

    #[test]
    fn write_back_only_writes_enabled_fields() {
        let c = Config::from_toml(&default_with(
            "    \"Last_Zendesk_Sync_At__c\",\n    \"Zendesk_Sync_Status__c\",\n",
            "",
        ))
        .unwrap();
        let desired = want(
            Intent::Set(org(7)),
            Intent::Set(d("acme.com")),
            Intent::Set(SyncStatus::Linked),
        );
        let w = c
            .write_back()
            .account_write(&account(), &desired, true, NOW)
            .unwrap();
        assert_eq!(
            w.changes().keys().copied().collect::<Vec<_>>(),
            vec![LinkField::ZendeskOrgId, LinkField::ZendeskDomain]
        );
        // Nothing enabled changes, and no timestamp field: no call at all.
        let only_status = want(
            Intent::Leave,
            Intent::Leave,
            Intent::Set(SyncStatus::SyncFailing),
        );
        assert_eq!(
            c.write_back()
                .account_write(&account(), &only_status, true, NOW),
            None
        );
    }

    fn arb_intent<T: Clone + std::fmt::Debug + 'static>(
        values: Vec<T>,
    ) -> impl Strategy<Value = Intent<T>> {
        prop_oneof![
            Just(Intent::Leave),
            Just(Intent::Clear),
            proptest::sample::select(values).prop_map(Intent::Set),
        ]
    }

    fn arb_text(values: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
        proptest::option::of(proptest::sample::select(values).prop_map(String::from))
    }

    proptest! {
        #[test]
        fn write_back_touches_only_link_fields_and_settles(
            stored in arb_text(&["42", "7", " 42", "junk", ""]),
            reviewed in arb_text(&["acme.com", "ACME.COM", "other.io", "n/a", ""]),
            status in arb_text(&["Linked", "Error", "Pending Review", ""]),
            org_id in arb_intent(vec![org(42), org(7)]),
            domain in arb_intent(vec![d("acme.com"), d("other.io")]),
            sync in arb_intent(SyncStatus::all().to_vec()),
            zendesk_changed in any::<bool>(),
        ) {
            let wb = Config::embedded_default().write_back().clone();
            let mut a = Account { stored_org_id: stored, reviewed_domain: reviewed, sync_status: status, ..account() };
            let desired = want(org_id, domain, sync);
            if let Some(w) = wb.account_write(&a, &desired, zendesk_changed, NOW) {
                let body = w.body();
                let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
                for k in &keys {
                    prop_assert!(LinkField::ALL.iter().any(|f| f.api_name() == k.as_str()), "{k}");
                }
                // The timestamp never travels alone unless Zendesk changed.
                prop_assert!(zendesk_changed || keys.len() >= 2);
                w.apply_to(&mut a);
            }
            // Once written, the same decision writes nothing more: no loop.
            prop_assert_eq!(wb.account_write(&a, &desired, false, NOW), None);
        }
    }

    #[test]
    fn sync_status_values_are_the_picklist() {
        let values: Vec<&str> = SyncStatus::all().iter().map(|s| s.api_value()).collect();
        assert_eq!(
            values,
            [
                "Linked",
                "Pending Review",
                "Not Eligible",
                "Sync Failing",
                "Write-back Blocked"
            ]
        );
        for s in SyncStatus::all() {
            assert_eq!(serde_json::to_value(s).unwrap(), s.api_value());
            assert_eq!(SyncStatus::from_api_value(s.api_value()), Some(s));
            assert_eq!(s.label(), s.api_value());
            // Salesforce picklist values are at most 255 characters.
            assert!(s.api_value().len() <= 255);
        }
        assert_eq!(SyncStatus::from_api_value("Error"), None);
    }

    #[test]
    fn link_fields_and_echoes() {
        for f in LinkField::ALL {
            assert_eq!(serde_json::to_value(f).unwrap(), f.api_name());
            assert_eq!(
                LinkField::from_api_name(&f.api_name().to_lowercase()),
                Some(f)
            );
        }
        assert_eq!(LinkField::from_api_name("Name"), None);
        assert!(LinkField::only_link_fields([
            "Zendesk_Org_ID__c",
            "SystemModstamp"
        ]));
        assert!(LinkField::only_link_fields(["zendesk_sync_status__c"]));
        assert!(!LinkField::only_link_fields(["Zendesk_Org_ID__c", "Name"]));
        assert!(!LinkField::only_link_fields(["SystemModstamp"]));
        assert!(!LinkField::only_link_fields([]));
    }

    // --- eligibility -------------------------------------------------------------------------

    fn opp(stage: &str, p: Option<f64>) -> OpenOpportunity {
        OpenOpportunity {
            stage_name: stage.into(),
            probability: p,
        }
    }

    #[test]
    fn eligibility_table() {
        use EligibleBecause as E;
        let rule = Config::embedded_default().eligibility().clone();
        let a = account();
        let master = AccountId::parse("001D000000IRFmb").unwrap();
        let customer = |t: &str| E::CustomerType {
            account_type: t.into(),
            prefix: "Customer".into(),
        };
        let cases: Vec<(Account, Eligibility)> = vec![
            (
                a.clone(),
                Eligibility::NotEligible {
                    because: NotEligibleBecause::NoRuleMatched,
                },
            ),
            (
                Account {
                    account_type: Some("Customer - Direct".into()),
                    ..a.clone()
                },
                Eligibility::Eligible {
                    because: vec![customer("Customer - Direct")],
                },
            ),
            (
                Account {
                    account_type: Some(" customer - channel".into()),
                    ..a.clone()
                },
                Eligibility::Eligible {
                    because: vec![customer("customer - channel")],
                },
            ),
            (
                Account {
                    account_type: Some("Prospect".into()),
                    ..a.clone()
                },
                Eligibility::NotEligible {
                    because: NotEligibleBecause::NoRuleMatched,
                },
            ),
            (
                Account {
                    account_type: Some("Cust".into()),
                    ..a.clone()
                },
                Eligibility::NotEligible {
                    because: NotEligibleBecause::NoRuleMatched,
                },
            ),
            (
                Account {
                    has_closed_won: true,
                    ..a.clone()
                },
                Eligibility::Eligible {
                    because: vec![E::ClosedWon],
                },
            ),
            (
                Account {
                    open_opportunities: vec![
                        opp("Proposal", Some(74.9)),
                        opp("Negotiation", Some(75.0)),
                    ],
                    ..a.clone()
                },
                Eligibility::Eligible {
                    because: vec![E::LateStageOpportunity {
                        stage_name: "Negotiation".into(),
                        probability: Some(75.0),
                    }],
                },
            ),
            (
                Account {
                    open_opportunities: vec![opp("Proposal", Some(74.9)), opp("Negotiation", None)],
                    ..a.clone()
                },
                Eligibility::NotEligible {
                    because: NotEligibleBecause::NoRuleMatched,
                },
            ),
            (
                Account {
                    account_type: Some("Customer - Direct".into()),
                    has_closed_won: true,
                    open_opportunities: vec![opp("Negotiation", Some(90.0))],
                    ..a.clone()
                },
                Eligibility::Eligible {
                    because: vec![
                        customer("Customer - Direct"),
                        E::ClosedWon,
                        E::LateStageOpportunity {
                            stage_name: "Negotiation".into(),
                            probability: Some(90.0),
                        },
                    ],
                },
            ),
            // Deleted wins over every rule.
            (
                Account {
                    is_deleted: true,
                    has_closed_won: true,
                    ..a.clone()
                },
                Eligibility::NotEligible {
                    because: NotEligibleBecause::Deleted,
                },
            ),
            (
                Account {
                    is_deleted: true,
                    master_record_id: Some(master.clone()),
                    account_type: Some("Customer".into()),
                    ..a.clone()
                },
                Eligibility::NotEligible {
                    because: NotEligibleBecause::MergedInto { master },
                },
            ),
        ];
        for (i, (acct, expected)) in cases.into_iter().enumerate() {
            assert_eq!(rule.evaluate(&acct), expected, "case {i}");
        }
    }

    #[test]
    fn eligibility_rules_are_configurable() {
        let text = default_with(
            "customer_type_prefixes = [\"Customer\"]",
            "customer_type_prefixes = [\"Client\"]",
        )
        .replacen("closed_won = true", "closed_won = false", 1)
        .replacen(
            "min_probability = 75",
            "stage_names = [\"Negotiation/Review\"]",
            1,
        );
        let c = Config::from_toml(&text).unwrap();
        let rule = c.eligibility();
        let a = account();
        let no = Eligibility::NotEligible {
            because: NotEligibleBecause::NoRuleMatched,
        };
        assert_eq!(
            rule.evaluate(&Account {
                account_type: Some("Customer - Direct".into()),
                ..a.clone()
            }),
            no
        );
        assert!(
            rule.evaluate(&Account {
                account_type: Some("Client".into()),
                ..a.clone()
            })
            .is_eligible()
        );
        assert_eq!(
            rule.evaluate(&Account {
                has_closed_won: true,
                ..a.clone()
            }),
            no
        );
        assert_eq!(
            rule.evaluate(&Account {
                open_opportunities: vec![opp("Closing", Some(99.0))],
                ..a.clone()
            }),
            no
        );
        assert_eq!(
            rule.evaluate(&Account {
                open_opportunities: vec![opp(" negotiation/review ", Some(10.0))],
                ..a.clone()
            }),
            Eligibility::Eligible {
                because: vec![EligibleBecause::LateStageOpportunity {
                    stage_name: " negotiation/review ".into(),
                    probability: Some(10.0)
                }]
            }
        );
    }

    // --- event kinds -------------------------------------------------------------------------

    #[test]
    fn event_kinds_have_stable_names() {
        for k in EventKind::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
            assert_eq!(EventKind::classify(k.as_str()), Ok(k));
        }
        let err = EventKind::classify("owner_changed").unwrap_err();
        assert_eq!(
            err.reason,
            IgnoreReason::UnknownEventKind {
                kind: "owner_changed".into()
            }
        );
        assert!(err.to_string().contains("owner_changed"));
        assert!(EventKind::classify("ClosedWon").is_err());
    }

    #[test]
    fn permission_table() {
        let c = Config::from_toml(&default_with(
            "name_changed = { may_create = true, may_relink = true }",
            "name_changed = { may_create = false, may_relink = true }",
        ))
        .unwrap();
        let eligible = Eligibility::Eligible {
            because: vec![EligibleBecause::ClosedWon],
        };
        let not = Eligibility::NotEligible {
            because: NotEligibleBecause::NoRuleMatched,
        };
        use EventKind::*;
        use LinkAction::*;
        let cases: Vec<(
            EventKind,
            &Eligibility,
            LinkAction,
            Result<(), IgnoreReason>,
        )> = vec![
            (ClosedWon, &eligible, Create, Ok(())),
            (ClosedWon, &eligible, Relink, Ok(())),
            (
                NameChanged,
                &eligible,
                Create,
                Err(IgnoreReason::KindMayNot {
                    kind: NameChanged,
                    action: Create,
                }),
            ),
            (NameChanged, &eligible, Relink, Ok(())),
            (NameChanged, &eligible, Update, Ok(())),
            // Not eligible: never a new org, never a relink, even for an operator; the existing
            // link keeps its mirrors current.
            (
                Manual,
                &not,
                Create,
                Err(IgnoreReason::NotEligible {
                    action: Create,
                    because: NotEligibleBecause::NoRuleMatched,
                }),
            ),
            (
                ReconcileRepair,
                &not,
                Relink,
                Err(IgnoreReason::NotEligible {
                    action: Relink,
                    because: NotEligibleBecause::NoRuleMatched,
                }),
            ),
            (DomainChanged, &not, Update, Ok(())),
        ];
        for (kind, elig, action, expected) in cases {
            let got = c.permits(kind, elig, action).map_err(|i| i.reason);
            assert_eq!(got, expected, "{kind} {action}");
        }
        let words = c.permits(Manual, &not, Create).unwrap_err().to_string();
        assert!(words.contains("not a customer"), "{words}");
    }
}
