//! What the integration user may do with accounts, read two ways:
//!
//! - **as itself**, through `GET sobjects/Account/describe`: the object's `updateable` is the
//!   running user's Edit on Account, each field's `updateable` its field-level security, and a
//!   field it cannot see (not deployed, or no read access) is absent. Any API user may describe;
//!   no setup permission is needed ([`ObjectDescribe`]).
//! - **as a Salesforce admin tool reads it**, through the setup objects: the user's permission
//!   set assignments (the profile's own set included: `IsOwnedByProfile`), those sets' system
//!   permissions (`PermissionsViewAllData`), object permissions on Account
//!   (`PermissionsViewAllRecords`, `PermissionsEdit`) and field permissions on the link fields
//!   ([`UserAccess`]). Only this shows View All, which describe does not report.
//!
//! Since Summer '20 (API 49.0) only users with "View Setup and Configuration" (or Assign
//! Permission Sets / Manage Users for the assignments) may query those setup objects; a real
//! org answers a user without it `INVALID_TYPE` ("sObject type 'PermissionSetAssignment' is not
//! supported"), as if the object did not exist. orglink's integration user has no such right,
//! so [`SalesforceClient::user_access`] reports that refusal as [`SetupAccess::Refused`] for the
//! caller to call the check unverifiable, never as a missing right.

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::soql::{Cond, Select};
use super::{SalesforceClient, SalesforceError};

/// One permission set assigned to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssignedSet {
    pub id: String,
    /// API name (a profile's own set has a generated `X00e…` name).
    pub name: String,
    pub label: String,
    pub owned_by_profile: bool,
    pub view_all_data: bool,
    pub modify_all_data: bool,
}

impl AssignedSet {
    /// How a person finds it in Setup.
    pub fn describe(&self) -> String {
        if self.owned_by_profile {
            format!("profile {:?}", self.label)
        } else {
            format!("permission set {} ({:?})", self.name, self.label)
        }
    }
}

/// Account object permissions of one set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectGrant {
    pub set: String,
    pub read: bool,
    pub edit: bool,
    pub view_all_records: bool,
    pub modify_all_records: bool,
}

/// One field permission of one set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldGrant {
    pub set: String,
    /// `Account.Zendesk_Org_ID__c`.
    pub field: String,
    pub read: bool,
    pub edit: bool,
}

/// Everything the user's permission sets grant on Account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserAccess {
    pub user_id: String,
    pub sets: Vec<AssignedSet>,
    pub account: Vec<ObjectGrant>,
    pub fields: Vec<FieldGrant>,
}

impl UserAccess {
    fn set(&self, id: &str) -> Option<&AssignedSet> {
        self.sets.iter().find(|s| s.id == id)
    }

    /// What lets the user see every account regardless of sharing, if anything: View All Data
    /// or Modify All Data, or View All / Modify All on Account.
    pub fn sees_all_accounts(&self) -> Option<String> {
        if let Some(s) = self
            .sets
            .iter()
            .find(|s| s.view_all_data || s.modify_all_data)
        {
            return Some(format!("View All Data through {}", s.describe()));
        }
        self.account
            .iter()
            .find(|g| g.view_all_records || g.modify_all_records)
            .map(|g| {
                format!(
                    "View All on Account through {}",
                    self.set(&g.set)
                        .map_or(g.set.clone(), AssignedSet::describe)
                )
            })
    }

    /// What lets the user edit accounts (object permission), if anything.
    pub fn edits_accounts(&self) -> Option<String> {
        if let Some(s) = self.sets.iter().find(|s| s.modify_all_data) {
            return Some(format!("Modify All Data through {}", s.describe()));
        }
        self.account
            .iter()
            .find(|g| g.edit || g.modify_all_records)
            .map(|g| {
                format!(
                    "Edit on Account through {}",
                    self.set(&g.set)
                        .map_or(g.set.clone(), AssignedSet::describe)
                )
            })
    }

    /// What lets the user edit `Account.{field}`, if anything (field-level security applies to
    /// every user, Modify All Data included).
    pub fn edits_field(&self, field: &str) -> Option<String> {
        let qualified = format!("Account.{field}");
        self.fields
            .iter()
            .find(|g| g.edit && g.field.eq_ignore_ascii_case(&qualified))
            .map(|g| {
                self.set(&g.set)
                    .map_or(g.set.clone(), AssignedSet::describe)
            })
    }
}

/// One field of a describe, as the running user sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldDescribe {
    pub name: String,
    #[serde(default)]
    pub updateable: bool,
    #[serde(default, rename = "type")]
    pub field_type: String,
}

/// `GET sobjects/{object}/describe`: the object as the running user sees it (the part orglink
/// reads of Salesforce's DescribeSObjectResult).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDescribe {
    pub name: String,
    /// The running user's Edit on the object.
    #[serde(default)]
    pub updateable: bool,
    /// Only the fields the running user can see (field-level security read, and deployed).
    #[serde(default)]
    pub fields: Vec<FieldDescribe>,
}

/// What describe says the running user may do with one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FieldAccess {
    /// Absent from the describe: not deployed in this org, or hidden by field-level security.
    Missing,
    ReadOnly,
    Editable,
}

impl ObjectDescribe {
    /// The running user's access to `field` (API names compare case-insensitively).
    pub fn field_access(&self, field: &str) -> FieldAccess {
        match self
            .fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(field))
        {
            None => FieldAccess::Missing,
            Some(f) if f.updateable => FieldAccess::Editable,
            Some(_) => FieldAccess::ReadOnly,
        }
    }
}

/// Salesforce would not let the signed-in user read a setup object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetupRefusal {
    /// The object whose query was refused (`PermissionSetAssignment`, …).
    pub object: &'static str,
    /// `INVALID_TYPE` (what a real org answers without View Setup) or `INSUFFICIENT_ACCESS`.
    pub code: String,
}

/// The permission sets of a user, or why they cannot be read from this session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SetupAccess {
    Read(UserAccess),
    Refused(SetupRefusal),
}

/// The error codes of a setup-object query refused for lack of View Setup and Configuration.
/// `INVALID_TYPE` is what orgs answer (the object is hidden, not forbidden); the access codes
/// are accepted too, since which one an org sends is not documented.
fn refused_for_setup(e: &SalesforceError) -> Option<String> {
    e.code()
        .filter(|c| {
            matches!(
                *c,
                "INVALID_TYPE" | "INSUFFICIENT_ACCESS" | "INSUFFICIENT_ACCESS_OR_READONLY"
            )
        })
        .map(str::to_string)
}

/// `005…` of 15 or 18 letters and digits: a user id as Setup shows it.
pub fn parse_user_id(input: &str) -> Option<String> {
    let id = input.trim();
    (id.starts_with("005")
        && (id.len() == 15 || id.len() == 18)
        && id.chars().all(|c| c.is_ascii_alphanumeric()))
    .then(|| id.to_string())
}

/// Whether two user ids (15 or 18 characters) name the same user: the 15-character form is
/// the case-sensitive prefix of the 18-character one.
pub fn same_user(a: &str, b: &str) -> bool {
    a.get(..15).is_some_and(|p| Some(p) == b.get(..15))
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

impl SalesforceClient {
    /// `GET sobjects/{object}/describe`: the object and its fields as the signed-in user sees
    /// them.
    pub async fn describe(&self, object: &str) -> Result<ObjectDescribe, SalesforceError> {
        let api_name = !object.is_empty()
            && object
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !api_name {
            return Err(SalesforceError::Config(format!(
                "{object:?} is not an sObject API name"
            )));
        }
        let path = format!("sobjects/{object}/describe");
        let reply = self
            .call("sf.describe", super::Replay::Safe, |http, t| {
                self.authorized(http.get(self.data_url(t, &path)), t)
            })
            .await?;
        serde_json::from_slice(&reply.body).map_err(|e| SalesforceError::Protocol {
            endpoint: "sf.describe",
            detail: format!("the describe of {object} is not an object with fields: {e}"),
        })
    }

    /// The permissions `user_id` holds on Account, from the setup objects (up to four
    /// queries), or [`SetupAccess::Refused`] when this session may not read them.
    pub async fn user_access(&self, user_id: &str) -> Result<SetupAccess, SalesforceError> {
        match self.read_user_access(user_id).await {
            Ok(access) => Ok(SetupAccess::Read(access)),
            Err((object, e)) => match refused_for_setup(&e) {
                Some(code) => Ok(SetupAccess::Refused(SetupRefusal { object, code })),
                None => Err(e),
            },
        }
    }

    /// The records of one setup-object query; a failure names the object.
    async fn setup_rows(
        &self,
        object: &'static str,
        select: Select,
    ) -> Result<Vec<Value>, (&'static str, SalesforceError)> {
        let soql = select.build().map_err(|e| (object, e.into()))?;
        self.query(soql)
            .try_collect::<Vec<Value>>()
            .await
            .map_err(|e| (object, e))
    }

    async fn read_user_access(
        &self,
        user_id: &str,
    ) -> Result<UserAccess, (&'static str, SalesforceError)> {
        let assigned: Vec<String> = self
            .setup_rows(
                "PermissionSetAssignment",
                Select::new("PermissionSetAssignment", ["PermissionSetId"])
                    .filter(Cond::eq("AssigneeId", user_id)),
            )
            .await?
            .iter()
            .map(|r| text(r, "PermissionSetId"))
            .filter(|id| !id.is_empty())
            .collect();
        if assigned.is_empty() {
            return Ok(UserAccess {
                user_id: user_id.to_string(),
                sets: Vec::new(),
                account: Vec::new(),
                fields: Vec::new(),
            });
        }
        let ids = || Cond::in_list("ParentId", assigned.iter().map(String::as_str));
        let sets = self
            .setup_rows(
                "PermissionSet",
                Select::new(
                    "PermissionSet",
                    [
                        "Id",
                        "Name",
                        "Label",
                        "IsOwnedByProfile",
                        "PermissionsViewAllData",
                        "PermissionsModifyAllData",
                    ],
                )
                .filter(Cond::in_list("Id", assigned.iter().map(String::as_str))),
            )
            .await?
            .iter()
            .map(|r| AssignedSet {
                id: text(r, "Id"),
                name: text(r, "Name"),
                label: text(r, "Label"),
                owned_by_profile: flag(r, "IsOwnedByProfile"),
                view_all_data: flag(r, "PermissionsViewAllData"),
                modify_all_data: flag(r, "PermissionsModifyAllData"),
            })
            .collect();
        let account = self
            .setup_rows(
                "ObjectPermissions",
                Select::new(
                    "ObjectPermissions",
                    [
                        "ParentId",
                        "PermissionsRead",
                        "PermissionsEdit",
                        "PermissionsViewAllRecords",
                        "PermissionsModifyAllRecords",
                    ],
                )
                .filter(Cond::and([Cond::eq("SobjectType", "Account"), ids()])),
            )
            .await?
            .iter()
            .map(|r| ObjectGrant {
                set: text(r, "ParentId"),
                read: flag(r, "PermissionsRead"),
                edit: flag(r, "PermissionsEdit"),
                view_all_records: flag(r, "PermissionsViewAllRecords"),
                modify_all_records: flag(r, "PermissionsModifyAllRecords"),
            })
            .collect();
        let fields = self
            .setup_rows(
                "FieldPermissions",
                Select::new(
                    "FieldPermissions",
                    ["ParentId", "Field", "PermissionsRead", "PermissionsEdit"],
                )
                .filter(Cond::and([Cond::eq("SobjectType", "Account"), ids()])),
            )
            .await?
            .iter()
            .map(|r| FieldGrant {
                set: text(r, "ParentId"),
                field: text(r, "Field"),
                read: flag(r, "PermissionsRead"),
                edit: flag(r, "PermissionsEdit"),
            })
            .collect();
        Ok(UserAccess {
            user_id: user_id.to_string(),
            sets,
            account,
            fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(id: &str, name: &str, profile: bool, view_all_data: bool) -> AssignedSet {
        AssignedSet {
            id: id.into(),
            name: name.into(),
            label: name.into(),
            owned_by_profile: profile,
            view_all_data,
            modify_all_data: false,
        }
    }

    fn access() -> UserAccess {
        UserAccess {
            user_id: "005".into(),
            sets: vec![
                set("p", "X00e", true, false),
                set("o", "Orglink_Integration", false, false),
            ],
            account: vec![ObjectGrant {
                set: "o".into(),
                read: true,
                edit: true,
                view_all_records: true,
                modify_all_records: false,
            }],
            fields: vec![FieldGrant {
                set: "o".into(),
                field: "Account.Zendesk_Org_ID__c".into(),
                read: true,
                edit: true,
            }],
        }
    }

    #[test]
    fn view_all_comes_from_the_object_or_the_system_permission() {
        let a = access();
        assert!(
            a.sees_all_accounts()
                .unwrap()
                .contains("Orglink_Integration")
        );
        let mut filtered = a.clone();
        filtered.account[0].view_all_records = false;
        assert_eq!(filtered.sees_all_accounts(), None);
        filtered.sets[0].view_all_data = true;
        assert!(
            filtered
                .sees_all_accounts()
                .unwrap()
                .starts_with("View All Data through profile")
        );
    }

    #[test]
    fn describe_tells_missing_read_only_and_editable_fields_apart() {
        let d: ObjectDescribe = serde_json::from_value(serde_json::json!({
            "name": "Account", "updateable": true, "label": "Account",
            "fields": [
                {"name": "Id", "type": "id", "updateable": false},
                {"name": "Zendesk_Org_ID__c", "type": "string", "updateable": true},
                {"name": "Zendesk_Domain__c", "type": "string", "updateable": false}
            ]
        }))
        .unwrap();
        assert_eq!(d.field_access("zendesk_org_id__c"), FieldAccess::Editable);
        assert_eq!(d.field_access("Zendesk_Domain__c"), FieldAccess::ReadOnly);
        assert_eq!(
            d.field_access("Last_Zendesk_Sync_At__c"),
            FieldAccess::Missing
        );
        assert!(d.updateable);
    }

    #[test]
    fn user_ids_compare_in_either_length() {
        assert_eq!(
            parse_user_id(" 005SB0000000001 "),
            Some("005SB0000000001".into())
        );
        assert_eq!(parse_user_id("001SB0000000001"), None);
        assert_eq!(parse_user_id("005SB00000000"), None);
        assert!(same_user("005SB0000000001", "005SB0000000001AAA"));
        assert!(!same_user("005SB0000000001", "005sb0000000001"));
        assert!(!same_user("005", "005"));
    }

    #[test]
    fn field_edit_needs_a_field_permission() {
        let a = access();
        assert!(a.edits_field("Zendesk_Org_ID__c").is_some());
        assert!(a.edits_field("zendesk_org_id__c").is_some());
        assert_eq!(a.edits_field("Zendesk_Domain__c"), None);
        assert!(a.edits_accounts().is_some());
        let mut read_only = a.clone();
        read_only.account[0].edit = false;
        assert_eq!(read_only.edits_accounts(), None);
    }
}
