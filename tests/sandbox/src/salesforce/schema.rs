//! The sObjects the simulator serves and their known fields (API names and types): the data
//! (Account, Opportunity, User) and the setup objects an admin tool reads to see what the
//! integration user may do (PermissionSet, PermissionSetAssignment, ObjectPermissions,
//! FieldPermissions).
//! Any other field a seeded record holds is queryable too, with its type taken from its value.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    Account,
    Opportunity,
    User,
    PermissionSet,
    PermissionSetAssignment,
    ObjectPermissions,
    FieldPermissions,
}

impl Object {
    pub const ALL: [Object; 7] = [
        Object::Account,
        Object::Opportunity,
        Object::User,
        Object::PermissionSet,
        Object::PermissionSetAssignment,
        Object::ObjectPermissions,
        Object::FieldPermissions,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Object::Account => "Account",
            Object::Opportunity => "Opportunity",
            Object::User => "User",
            Object::PermissionSet => "PermissionSet",
            Object::PermissionSetAssignment => "PermissionSetAssignment",
            Object::ObjectPermissions => "ObjectPermissions",
            Object::FieldPermissions => "FieldPermissions",
        }
    }

    pub fn key_prefix(self) -> &'static str {
        match self {
            Object::Account => "001",
            Object::Opportunity => "006",
            Object::User => "005",
            Object::PermissionSet => "0PS",
            Object::PermissionSetAssignment => "0Pa",
            Object::ObjectPermissions => "110",
            Object::FieldPermissions => "01k",
        }
    }

    /// The setup objects: queryable only with View Setup and Configuration (Summer '20).
    pub fn is_setup(self) -> bool {
        matches!(
            self,
            Object::PermissionSet
                | Object::PermissionSetAssignment
                | Object::ObjectPermissions
                | Object::FieldPermissions
        )
    }

    /// SOQL and URLs name objects case-insensitively.
    pub fn parse(name: &str) -> Option<Object> {
        Object::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(name))
    }

    pub fn fields(self) -> &'static [FieldDef] {
        match self {
            Object::Account => ACCOUNT,
            Object::Opportunity => OPPORTUNITY,
            Object::User => USER,
            Object::PermissionSet => PERMISSION_SET,
            Object::PermissionSetAssignment => PERMISSION_SET_ASSIGNMENT,
            Object::ObjectPermissions => OBJECT_PERMISSIONS,
            Object::FieldPermissions => FIELD_PERMISSIONS,
        }
    }

    /// Relationship name → (reference field, target object).
    pub fn relationship(self, name: &str) -> Option<(&'static str, Object)> {
        let rels: &[(&str, &str, Object)] = match self {
            Object::Account => &[
                ("Owner", "OwnerId", Object::User),
                ("Parent", "ParentId", Object::Account),
                ("MasterRecord", "MasterRecordId", Object::Account),
            ],
            Object::Opportunity => &[
                ("Owner", "OwnerId", Object::User),
                ("Account", "AccountId", Object::Account),
            ],
            Object::User | Object::PermissionSet => &[],
            Object::PermissionSetAssignment => &[
                ("PermissionSet", "PermissionSetId", Object::PermissionSet),
                ("Assignee", "AssigneeId", Object::User),
            ],
            Object::ObjectPermissions | Object::FieldPermissions => {
                &[("Parent", "ParentId", Object::PermissionSet)]
            }
        };
        rels.iter()
            .find(|(rel, _, _)| rel.eq_ignore_ascii_case(name))
            .map(|(_, field, target)| (*field, *target))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// The record's own id.
    Id,
    /// An id of another record (15 or 18 characters accepted, compared in 18).
    Reference,
    String,
    Picklist,
    Boolean,
    Number,
    Date,
    DateTime,
}

#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    pub name: &'static str,
    pub ty: FieldType,
    /// Maintained by Salesforce; a write naming it is refused.
    pub read_only: bool,
    /// Text length limit (`STRING_TOO_LONG` above it).
    pub max_len: Option<usize>,
}

const fn f(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef {
        name,
        ty,
        read_only: false,
        max_len: None,
    }
}

const fn ro(name: &'static str, ty: FieldType) -> FieldDef {
    FieldDef {
        name,
        ty,
        read_only: true,
        max_len: None,
    }
}

const fn text(name: &'static str, max_len: usize) -> FieldDef {
    FieldDef {
        name,
        ty: FieldType::String,
        read_only: false,
        max_len: Some(max_len),
    }
}

use FieldType as T;

pub const ORG_ID_FIELD: &str = "Zendesk_Org_ID__c";
pub const SYNC_STATUS_FIELD: &str = "Zendesk_Sync_Status__c";

static ACCOUNT: &[FieldDef] = &[
    ro("Id", T::Id),
    ro("IsDeleted", T::Boolean),
    ro("MasterRecordId", T::Reference),
    text("Name", 255),
    f("Type", T::Picklist),
    f("ParentId", T::Reference),
    FieldDef {
        name: "Website",
        ty: T::String,
        read_only: false,
        max_len: Some(255),
    },
    f("Industry", T::Picklist),
    text("Phone", 40),
    text("BillingCountry", 80),
    f("OwnerId", T::Reference),
    ro("CreatedDate", T::DateTime),
    ro("CreatedById", T::Reference),
    ro("LastModifiedDate", T::DateTime),
    ro("LastModifiedById", T::Reference),
    ro("SystemModstamp", T::DateTime),
    // The four link fields orglink owns (infra/salesforce): Text(30) External ID + Unique,
    // Text(255), DateTime, restricted picklist.
    text(ORG_ID_FIELD, 30),
    text("Zendesk_Domain__c", 255),
    f("Last_Zendesk_Sync_At__c", T::DateTime),
    f(SYNC_STATUS_FIELD, T::Picklist),
];

static OPPORTUNITY: &[FieldDef] = &[
    ro("Id", T::Id),
    ro("IsDeleted", T::Boolean),
    f("AccountId", T::Reference),
    text("Name", 120),
    f("StageName", T::Picklist),
    f("Probability", T::Number),
    ro("IsClosed", T::Boolean),
    ro("IsWon", T::Boolean),
    f("Amount", T::Number),
    f("CloseDate", T::Date),
    f("OwnerId", T::Reference),
    ro("CreatedDate", T::DateTime),
    ro("LastModifiedDate", T::DateTime),
    ro("SystemModstamp", T::DateTime),
];

static USER: &[FieldDef] = &[
    ro("Id", T::Id),
    text("Username", 80),
    text("Email", 128),
    text("Name", 121),
    text("FirstName", 40),
    text("LastName", 80),
    f("IsActive", T::Boolean),
    ro("CreatedDate", T::DateTime),
    ro("LastModifiedDate", T::DateTime),
    ro("SystemModstamp", T::DateTime),
];

// The setup objects, with the fields an admin tool reads (object reference, API 66.0). The
// simulator fills them for the integration user from its switches (`integration_user_*`).
static PERMISSION_SET: &[FieldDef] = &[
    ro("Id", T::Id),
    ro("Name", T::String),
    ro("Label", T::String),
    ro("IsOwnedByProfile", T::Boolean),
    ro("ProfileId", T::Reference),
    ro("PermissionsApiEnabled", T::Boolean),
    ro("PermissionsViewAllData", T::Boolean),
    ro("PermissionsModifyAllData", T::Boolean),
    ro("PermissionsViewSetup", T::Boolean),
    ro("SystemModstamp", T::DateTime),
];

static PERMISSION_SET_ASSIGNMENT: &[FieldDef] = &[
    ro("Id", T::Id),
    ro("AssigneeId", T::Reference),
    ro("PermissionSetId", T::Reference),
    ro("IsActive", T::Boolean),
    ro("SystemModstamp", T::DateTime),
];

static OBJECT_PERMISSIONS: &[FieldDef] = &[
    ro("Id", T::Id),
    ro("ParentId", T::Reference),
    ro("SobjectType", T::Picklist),
    ro("PermissionsRead", T::Boolean),
    ro("PermissionsCreate", T::Boolean),
    ro("PermissionsEdit", T::Boolean),
    ro("PermissionsDelete", T::Boolean),
    ro("PermissionsViewAllRecords", T::Boolean),
    ro("PermissionsModifyAllRecords", T::Boolean),
    ro("SystemModstamp", T::DateTime),
];

static FIELD_PERMISSIONS: &[FieldDef] = &[
    ro("Id", T::Id),
    ro("ParentId", T::Reference),
    ro("SobjectType", T::Picklist),
    ro("Field", T::Picklist),
    ro("PermissionsRead", T::Boolean),
    ro("PermissionsEdit", T::Boolean),
    ro("SystemModstamp", T::DateTime),
];

/// The type a seeded field outside the known list gets, from its value.
pub fn type_of_value(v: &Value) -> FieldType {
    match v {
        Value::Bool(_) => FieldType::Boolean,
        Value::Number(_) => FieldType::Number,
        _ => FieldType::String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_knows_the_four_link_fields() {
        let names: Vec<_> = Object::Account.fields().iter().map(|f| f.name).collect();
        for field in [
            "Zendesk_Org_ID__c",
            "Zendesk_Domain__c",
            "Last_Zendesk_Sync_At__c",
            "Zendesk_Sync_Status__c",
        ] {
            assert!(names.contains(&field), "{field}");
        }
        assert_eq!(Object::parse("account"), Some(Object::Account));
        assert_eq!(Object::parse("Contact"), None);
        assert_eq!(
            Object::Opportunity.relationship("account"),
            Some(("AccountId", Object::Account))
        );
    }
}
