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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ZendeskSeed {
    #[serde(default)]
    pub organizations: Vec<Value>,
    #[serde(default)]
    pub users: Vec<Value>,
    #[serde(default)]
    pub tickets: Vec<Value>,
}

impl Scenario {
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}
