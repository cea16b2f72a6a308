//! The ground truth file (`truth.json`): what each account must end as, fixed when its
//! pattern was generated. Later suites read it with [`Truth`] (or as plain JSON).

use std::collections::BTreeMap;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

/// The end state an account must reach after backfill and a reconcile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expected {
    /// Linked to this existing organization (`{"link": 123}`).
    Link(u64),
    /// Linked to an organization orglink creates (`{"link": "new"}`).
    LinkNew,
    /// No link, and exactly one open exception of this kind (`{"exception": "ambiguous_domain"}`),
    /// named as orglink's `ExceptionKind::as_str` names it.
    Exception(String),
    /// Nothing: no organization, no link, no exception (`"nothing"`).
    Nothing,
}

impl Expected {
    pub fn exception(kind: &str) -> Self {
        Expected::Exception(kind.to_string())
    }

    /// The existing organization the account must link to, if that is the truth.
    pub fn linked_org(&self) -> Option<u64> {
        match self {
            Expected::Link(id) => Some(*id),
            _ => None,
        }
    }

    pub fn exception_kind(&self) -> Option<&str> {
        match self {
            Expected::Exception(k) => Some(k),
            _ => None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Expected::Link(id) => json!({ "link": id }),
            Expected::LinkNew => json!({ "link": "new" }),
            Expected::Exception(kind) => json!({ "exception": kind }),
            Expected::Nothing => json!("nothing"),
        }
    }
}

impl Serialize for Expected {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Expected {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::String(s) if s == "nothing" => return Ok(Expected::Nothing),
            Value::Object(m) if m.len() == 1 => {
                if let Some(link) = m.get("link") {
                    if link.as_str() == Some("new") {
                        return Ok(Expected::LinkNew);
                    }
                    if let Some(id) = link.as_u64() {
                        return Ok(Expected::Link(id));
                    }
                }
                if let Some(kind) = m.get("exception").and_then(Value::as_str) {
                    return Ok(Expected::Exception(kind.to_string()));
                }
            }
            _ => {}
        }
        Err(D::Error::custom(format!(
            "expected {{\"link\": ORG_ID}}, {{\"link\": \"new\"}}, {{\"exception\": KIND}} or \"nothing\", found {v}"
        )))
    }
}

/// One account's truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountTruth {
    /// 18-character Account Id.
    pub account_id: String,
    /// The pattern that built it (see `docs/generator.md`).
    pub pattern: String,
    /// Its part in a pattern that builds several accounts (`subject` when it is the point).
    pub role: String,
    pub expected: Expected,
    /// Whether the account should have an organization (DESIGN "Eligibility").
    pub eligible: bool,
    /// The organizations the expectation names: the linked org, or the orgs of the exception
    /// row (its `orgs`, in any order).
    pub orgs: Vec<u64>,
    /// Other open review-queue rows that must name this account (e.g. `domain_drift`,
    /// `ticket_attribution_drift`), one of each kind listed.
    pub findings: Vec<String>,
    /// Report lines (not rows) that must name this account (`data_fix`, `churned_customer`).
    pub report: Vec<String>,
    /// Why, in words.
    pub notes: String,
}

/// Tickets sitting on an organization their requesters do not belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketAttribution {
    pub org: u64,
    /// The account the organization is keyed to.
    pub account: Option<String>,
    pub misattributed_tickets: u64,
    pub tickets: Vec<u64>,
    pub requesters: Vec<u64>,
}

/// A Website orglink cannot use, with the reason name (`UnusableReason`'s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataFix {
    pub account: String,
    pub website: String,
    pub reason: String,
}

/// An organization whose account was deleted, merged away or purged, that no active account
/// takes over: one open `orphaned_org` row naming `account` and `org`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrphanedOrg {
    pub org: u64,
    pub account: String,
    /// `deleted`, `merged_into:<winner id>` or `purged` (unknown to Salesforce).
    pub why: String,
}

/// An extra outcome that depends on a simulator switch documented as UNVERIFIED.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwitchDependent {
    pub account: String,
    /// `salesforce.unique_includes_deleted`.
    pub switch: String,
    pub when: Value,
    /// The extra open row expected then.
    pub finding: String,
    pub notes: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatternCount {
    pub instances: usize,
    pub accounts: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordCounts {
    pub accounts: usize,
    pub opportunities: usize,
    pub salesforce_users: usize,
    pub organizations: usize,
    /// Stored org ids that point at organizations deleted long ago (absent from the scenario).
    pub deleted_organization_ids: usize,
    pub zendesk_users: usize,
    pub tickets: usize,
    pub organization_memberships: usize,
}

/// Totals a suite can check at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    pub eligible: usize,
    pub link_existing: usize,
    pub link_new: usize,
    pub nothing: usize,
    /// Accounts whose truth is an exception, by kind.
    pub exceptions: BTreeMap<String, usize>,
    /// Every open review-queue row expected, by kind: the accounts' exceptions and findings,
    /// plus orphaned organizations of purged accounts.
    pub findings: BTreeMap<String, usize>,
    /// Report lines expected, by kind.
    pub report: BTreeMap<String, usize>,
}

/// The whole truth file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// `orglink-sandbox-truth/1`.
    pub format: String,
    pub seed: u64,
    pub accounts_requested: usize,
    pub counts: RecordCounts,
    pub patterns: BTreeMap<String, PatternCount>,
    pub totals: Totals,
    pub ticket_attribution: Vec<TicketAttribution>,
    pub data_fixes: Vec<DataFix>,
    pub orphaned_orgs: Vec<OrphanedOrg>,
    pub switch_dependent: Vec<SwitchDependent>,
    pub accounts: Vec<AccountTruth>,
}

pub const TRUTH_FORMAT: &str = "orglink-sandbox-truth/1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_round_trips_in_the_documented_shapes() {
        for (e, text) in [
            (Expected::Link(42), r#"{"link":42}"#),
            (Expected::LinkNew, r#"{"link":"new"}"#),
            (
                Expected::exception("ambiguous_domain"),
                r#"{"exception":"ambiguous_domain"}"#,
            ),
            (Expected::Nothing, r#""nothing""#),
        ] {
            assert_eq!(serde_json::to_string(&e).unwrap(), text);
            assert_eq!(serde_json::from_str::<Expected>(text).unwrap(), e);
        }
        assert!(serde_json::from_str::<Expected>(r#"{"link":"old"}"#).is_err());
        assert!(serde_json::from_str::<Expected>(r#""something""#).is_err());
    }
}
