//! The three sObjects the simulator serves and their known fields (API names and types).
//! Any other field a seeded record holds is queryable too, with its type taken from its value.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    Account,
    Opportunity,
    User,
}

impl Object {
    pub const ALL: [Object; 3] = [Object::Account, Object::Opportunity, Object::User];

    pub fn name(self) -> &'static str {
        match self {
            Object::Account => "Account",
            Object::Opportunity => "Opportunity",
            Object::User => "User",
        }
    }

    pub fn key_prefix(self) -> &'static str {
        match self {
            Object::Account => "001",
            Object::Opportunity => "006",
            Object::User => "005",
        }
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
            Object::User => &[],
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
