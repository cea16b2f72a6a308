//! The two records the link core reasons about: a Salesforce Account and a Zendesk
//! Organization, as plain data already read from their APIs (the adapters build them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, OrgId};

/// An open opportunity, as much of it as eligibility needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenOpportunity {
    pub stage_name: String,
    /// Salesforce `Probability` (0–100); orgs can leave it empty.
    pub probability: Option<f64>,
}

/// A Salesforce Account with the facts the contract needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: AccountId,
    pub name: String,
    /// `Website` exactly as stored (messy; normalized by [`crate::domain`]).
    pub website: Option<String>,
    /// `Zendesk_Domain__c`: the reviewed domain, exactly as stored.
    pub reviewed_domain: Option<String>,
    /// `Zendesk_Org_ID__c` exactly as stored (text; may hold junk a person typed).
    pub stored_org_id: Option<String>,
    /// `Zendesk_Sync_Status__c` as stored.
    pub sync_status: Option<String>,
    /// `Type` (picklist; org-customizable values such as `Customer - Direct`).
    pub account_type: Option<String>,
    pub owner_email: Option<String>,
    pub is_deleted: bool,
    /// Set on the losers of a Salesforce merge: the account they were merged into.
    pub master_record_id: Option<AccountId>,
    pub has_closed_won: bool,
    pub open_opportunities: Vec<OpenOpportunity>,
    /// `SystemModstamp` as Salesforce sends it (ISO-8601); events older than the last synced
    /// one are coalesced away.
    pub system_modstamp: Option<String>,
}

impl Account {
    /// The stored org id, when it parses. Junk in the field is evidence, not a link.
    pub fn stored_org(&self) -> Option<OrgId> {
        self.stored_org_id
            .as_deref()
            .and_then(|s| OrgId::parse(s).ok())
    }
}

/// How an organization's `external_id` relates to Salesforce.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OrgKey {
    /// No external_id.
    None,
    /// An Account id in its 18-character form.
    Account(AccountId),
    /// An Account id in its legacy 15-character form: the same link, to be upgraded.
    LegacyAccount(AccountId),
    /// Something else (another system's key, a typo): never ours to overwrite silently.
    Foreign(String),
}

impl OrgKey {
    /// The account this key names, in either form.
    pub fn account(&self) -> Option<&AccountId> {
        match self {
            OrgKey::Account(id) | OrgKey::LegacyAccount(id) => Some(id),
            OrgKey::None | OrgKey::Foreign(_) => None,
        }
    }
}

/// A Zendesk Organization with the fields orglink reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    pub external_id: Option<String>,
    #[serde(default)]
    pub domain_names: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub organization_fields: BTreeMap<String, serde_json::Value>,
    pub updated_at: Option<String>,
}

impl Organization {
    /// Classifies `external_id`. Zendesk compares it case-insensitively, so an 18-character
    /// key is read through [`AccountId::parse_key`], which repairs lost case.
    pub fn key(&self) -> OrgKey {
        classify_key(self.external_id.as_deref())
    }
}

/// Classifies an `external_id` value (see [`Organization::key`]).
pub fn classify_key(external_id: Option<&str>) -> OrgKey {
    let Some(raw) = external_id.map(str::trim).filter(|s| !s.is_empty()) else {
        return OrgKey::None;
    };
    match AccountId::parse_key(raw) {
        Ok(id) if raw.len() == 15 => OrgKey::LegacyAccount(id),
        Ok(id) => OrgKey::Account(id),
        Err(_) => OrgKey::Foreign(raw.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_classified() {
        let id = AccountId::parse("001D000000IRFmaIAH").unwrap();
        assert_eq!(classify_key(None), OrgKey::None);
        assert_eq!(classify_key(Some("  ")), OrgKey::None);
        assert_eq!(
            classify_key(Some("001D000000IRFmaIAH")),
            OrgKey::Account(id.clone())
        );
        assert_eq!(
            classify_key(Some("001d000000irfmaiah")),
            OrgKey::Account(id.clone())
        );
        assert_eq!(
            classify_key(Some("001D000000IRFma")),
            OrgKey::LegacyAccount(id.clone())
        );
        assert_eq!(
            classify_key(Some("hubspot-123")),
            OrgKey::Foreign("hubspot-123".into())
        );
        assert_eq!(classify_key(Some("001D000000IRFma")).account(), Some(&id));
    }
}
