//! The scenario format (DESIGN.md "Scenario files"): one JSON document whose records use the
//! real APIs' own field names, so a record copied from a real response loads as it is.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Scenario {
    #[serde(default)]
    pub salesforce: SalesforceSeed,
    #[serde(default)]
    pub zendesk: ZendeskSeed,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SalesforceSeed {
    #[serde(default)]
    pub accounts: Vec<Value>,
    #[serde(default)]
    pub opportunities: Vec<Value>,
    #[serde(default)]
    pub users: Vec<Value>,
    /// Salesforce simulator switches the scenario starts with, over the defaults (e.g.
    /// `{"validation_rules": {"001…": "message"}, "row_locks": {"001…": 2}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub switches: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ZendeskSeed {
    #[serde(default)]
    pub organizations: Vec<Value>,
    /// A user's `organization_id` also makes a default membership, unless one is listed in
    /// `organization_memberships`.
    #[serde(default)]
    pub users: Vec<Value>,
    #[serde(default)]
    pub tickets: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organization_memberships: Vec<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organization_fields: Vec<Value>,
}

impl Scenario {
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}
