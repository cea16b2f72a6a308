//! What the integration user may do with accounts, read as a Salesforce admin tool reads it:
//! the user named by the sign-in's identity URL, its permission set assignments (the profile's
//! own permission set included: `IsOwnedByProfile`), and those sets' system permissions
//! (`PermissionsViewAllData`), object permissions on Account (`PermissionsViewAllRecords`,
//! `PermissionsEdit`) and field permissions on the link fields (`PermissionsEdit`).
//!
//! Reading these setup objects needs "View Setup and Configuration" (FieldPermissions since API
//! 49.0); without it Salesforce refuses the query and [`UserAccess`] cannot be built — the
//! caller says so rather than guessing.

use futures_util::TryStreamExt;
use serde::Serialize;
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
    /// The permissions `user_id` holds on Account: four queries of the setup objects.
    pub async fn user_access(&self, user_id: &str) -> Result<UserAccess, SalesforceError> {
        let soql = Select::new("PermissionSetAssignment", ["PermissionSetId"])
            .filter(Cond::eq("AssigneeId", user_id))
            .build()?;
        let assigned: Vec<String> = self
            .query(soql)
            .try_collect::<Vec<Value>>()
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
        let soql = Select::new(
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
        .filter(Cond::in_list("Id", assigned.iter().map(String::as_str)))
        .build()?;
        let sets = self
            .query(soql)
            .try_collect::<Vec<Value>>()
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
        let soql = Select::new(
            "ObjectPermissions",
            [
                "ParentId",
                "PermissionsRead",
                "PermissionsEdit",
                "PermissionsViewAllRecords",
                "PermissionsModifyAllRecords",
            ],
        )
        .filter(Cond::and([Cond::eq("SobjectType", "Account"), ids()]))
        .build()?;
        let account = self
            .query(soql)
            .try_collect::<Vec<Value>>()
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
        let soql = Select::new(
            "FieldPermissions",
            ["ParentId", "Field", "PermissionsRead", "PermissionsEdit"],
        )
        .filter(Cond::and([Cond::eq("SobjectType", "Account"), ids()]))
        .build()?;
        let fields = self
            .query(soql)
            .try_collect::<Vec<Value>>()
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
