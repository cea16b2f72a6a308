//! The simulated org's records with their indexes, the SOQL executor (binding field names and
//! literals against the records, then evaluating) and the write path with Salesforce's checks.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Map, Value, json};
use time::{Date, Duration, OffsetDateTime};

use super::ids;
use super::schema::{FieldDef, FieldType, ORG_ID_FIELD, Object, SYNC_STATUS_FIELD, type_of_value};
use super::soql::{self, CmpOp, Expr, FieldRef, LikePart, Literal, Select};
use crate::scenario::SalesforceSeed;

pub type Row = Arc<Map<String, Value>>;

/// A seed Salesforce itself could never have produced; says which record and what to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeedError {
    #[error("salesforce.{list}[{index}] is not a JSON object")]
    NotAnObject { list: &'static str, index: usize },
    #[error(
        "salesforce.{list}[{index}]: {field} {value:?} is not a Salesforce id (15 or 18 characters with a matching suffix)"
    )]
    BadId {
        list: &'static str,
        index: usize,
        field: String,
        value: String,
    },
    #[error(
        "salesforce.{list}[{index}]: Id {id} does not start with the {object} key prefix {prefix}"
    )]
    WrongPrefix {
        list: &'static str,
        index: usize,
        id: String,
        object: &'static str,
        prefix: &'static str,
    },
    #[error("salesforce.switches.opportunity_stages: {0}")]
    BadStages(String),
    #[error("salesforce.{list}: Id {id} appears twice")]
    DuplicateId { list: &'static str, id: String },
    #[error("salesforce.{list}[{index}]: {field} {value:?} is not a {expected}")]
    BadValue {
        list: &'static str,
        index: usize,
        field: String,
        value: String,
        expected: &'static str,
    },
}

/// The scenario's opportunity stages (`salesforce.switches.opportunity_stages`), or a new
/// org's.
fn seed_stages(seed: &SalesforceSeed) -> Result<Vec<OpportunityStage>, SeedError> {
    match seed
        .switches
        .as_ref()
        .and_then(|s| s.get("opportunity_stages"))
    {
        None => Ok(OpportunityStage::standard()),
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|e| SeedError::BadStages(e.to_string()))
        }
    }
}

/// An error Salesforce reports for one request or one record: HTTP status for the single-record
/// endpoints, `errorCode`/`statusCode`, message and the fields involved.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Tables

/// Field whose values are indexed: for lookups by `=`/`IN` and uniqueness.
struct Index {
    field: &'static str,
    map: HashMap<String, BTreeSet<String>>,
}

fn index_key(ty: FieldType, v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(match ty {
            FieldType::Id | FieldType::Reference => s.clone(),
            _ => s.to_lowercase(),
        }),
        _ => None,
    }
}

pub struct Table {
    pub object: Object,
    pub rows: BTreeMap<String, Row>,
    /// Seeded fields outside the known list: lowercased name → (name as seeded, type).
    extra: HashMap<String, (String, FieldType)>,
    indexes: Vec<Index>,
}

impl Table {
    fn new(object: Object) -> Self {
        let indexed: &[&'static str] = match object {
            Object::Account => &[ORG_ID_FIELD, "Name"],
            Object::Opportunity => &["AccountId"],
            Object::User
            | Object::PermissionSet
            | Object::PermissionSetAssignment
            | Object::ObjectPermissions
            | Object::FieldPermissions => &[],
        };
        Self {
            object,
            rows: BTreeMap::new(),
            extra: HashMap::new(),
            indexes: indexed
                .iter()
                .map(|f| Index {
                    field: f,
                    map: HashMap::new(),
                })
                .collect(),
        }
    }

    /// The field's canonical name and type, looked up case-insensitively.
    pub fn field(&self, name: &str) -> Option<(String, FieldType)> {
        if let Some(def) = self.def(name) {
            return Some((def.name.to_string(), def.ty));
        }
        self.extra.get(&name.to_lowercase()).cloned()
    }

    fn def(&self, name: &str) -> Option<&'static FieldDef> {
        self.object
            .fields()
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }

    /// Every field name a full record read returns: the known ones, then seeded extras.
    pub fn all_fields(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .object
            .fields()
            .iter()
            .map(|d| d.name.to_string())
            .collect();
        let mut extra: Vec<String> = self.extra.values().map(|(n, _)| n.clone()).collect();
        extra.sort();
        names.extend(extra);
        names
    }

    /// Inserts or replaces a row, keeping the indexes in step.
    pub fn put(&mut self, id: String, row: Row) {
        let old = self.rows.insert(id.clone(), row.clone());
        for ix in &mut self.indexes {
            let ty = self
                .object
                .fields()
                .iter()
                .find(|d| d.name == ix.field)
                .map_or(FieldType::String, |d| d.ty);
            let old_key = old
                .as_ref()
                .and_then(|o| o.get(ix.field))
                .and_then(|v| index_key(ty, v));
            let new_key = row.get(ix.field).and_then(|v| index_key(ty, v));
            if old_key == new_key {
                continue;
            }
            if let Some(k) = old_key
                && let Some(set) = ix.map.get_mut(&k)
            {
                set.remove(&id);
                if set.is_empty() {
                    ix.map.remove(&k);
                }
            }
            if let Some(k) = new_key {
                ix.map.entry(k).or_default().insert(id.clone());
            }
        }
    }

    fn index(&self, field: &str) -> Option<&HashMap<String, BTreeSet<String>>> {
        self.indexes
            .iter()
            .find(|i| i.field == field)
            .map(|i| &i.map)
    }
}

/// The describe `type` of a field type (Salesforce's names).
fn describe_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Id => "id",
        FieldType::Reference => "reference",
        FieldType::String => "string",
        FieldType::Picklist => "picklist",
        FieldType::Boolean => "boolean",
        FieldType::Number => "double",
        FieldType::Date => "date",
        FieldType::DateTime => "datetime",
    }
}

fn is_deleted(row: &Map<String, Value>) -> bool {
    row.get("IsDeleted")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------------------
// World

/// What the integration user may do, as the setup objects report it (switches
/// `integration_user_*`; the default is what infra/salesforce grants).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationRights {
    /// View All on Account (the `Orglink_Integration` permission set).
    pub account_view_all: bool,
    /// Edit on Account.
    pub account_edit: bool,
    /// View All Data on the profile (an admin-like integration user).
    pub view_all_data: bool,
    /// Link fields whose field permission is read-only.
    pub uneditable_fields: Vec<String>,
    /// View Setup and Configuration: without it the setup objects are not queryable.
    pub view_setup: bool,
    /// Account fields the user cannot see (not deployed, or no read access).
    pub hidden_fields: Vec<String>,
}

pub struct World {
    pub accounts: Table,
    pub opportunities: Table,
    pub users: Table,
    /// The setup objects: what the integration user may do ([`World::grant_integration_user`]).
    pub permission_sets: Table,
    pub permission_set_assignments: Table,
    pub object_permissions: Table,
    pub field_permissions: Table,
    /// Whether the running user may query the setup objects (View Setup and Configuration).
    setup_readable: bool,
    /// Account fields the running user cannot see: absent from describe and queries.
    hidden_account_fields: Vec<String>,
    /// Account fields the running user may read but not edit (describe's `updateable`).
    uneditable_account_fields: Vec<String>,
    next_id: u64,
    last_stamp: OffsetDateTime,
}

impl World {
    pub fn empty() -> Self {
        Self {
            accounts: Table::new(Object::Account),
            opportunities: Table::new(Object::Opportunity),
            users: Table::new(Object::User),
            permission_sets: Table::new(Object::PermissionSet),
            permission_set_assignments: Table::new(Object::PermissionSetAssignment),
            object_permissions: Table::new(Object::ObjectPermissions),
            field_permissions: Table::new(Object::FieldPermissions),
            setup_readable: false,
            hidden_account_fields: Vec::new(),
            uneditable_account_fields: Vec::new(),
            next_id: 1,
            last_stamp: OffsetDateTime::UNIX_EPOCH,
        }
    }

    pub fn table(&self, object: Object) -> &Table {
        match object {
            Object::Account => &self.accounts,
            Object::Opportunity => &self.opportunities,
            Object::User => &self.users,
            Object::PermissionSet => &self.permission_sets,
            Object::PermissionSetAssignment => &self.permission_set_assignments,
            Object::ObjectPermissions => &self.object_permissions,
            Object::FieldPermissions => &self.field_permissions,
        }
    }

    fn table_mut(&mut self, object: Object) -> &mut Table {
        match object {
            Object::Account => &mut self.accounts,
            Object::Opportunity => &mut self.opportunities,
            Object::User => &mut self.users,
            Object::PermissionSet => &mut self.permission_sets,
            Object::PermissionSetAssignment => &mut self.permission_set_assignments,
            Object::ObjectPermissions => &mut self.object_permissions,
            Object::FieldPermissions => &mut self.field_permissions,
        }
    }

    /// A modification time: now to the millisecond, and always after the previous one so
    /// every write visibly advances `SystemModstamp`.
    pub fn next_stamp(&mut self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        let now = now
            .replace_nanosecond(now.millisecond() as u32 * 1_000_000)
            .unwrap_or(now);
        let stamp = if now > self.last_stamp {
            now
        } else {
            self.last_stamp + Duration::milliseconds(1)
        };
        self.last_stamp = stamp;
        stamp
    }

    /// Builds the world from a scenario. Seeds may hold what the live API would refuse
    /// (duplicate link values), because real historical data does.
    pub fn load(seed: &SalesforceSeed) -> Result<World, SeedError> {
        let mut world = World::empty();
        let stamp = soql::format_datetime(world.next_stamp());
        let stages = seed_stages(seed)?;
        for (object, list, records) in [
            (Object::User, "users", &seed.users),
            (Object::Account, "accounts", &seed.accounts),
            (Object::Opportunity, "opportunities", &seed.opportunities),
        ] {
            for (index, record) in records.iter().enumerate() {
                let row = world.seed_row(object, list, index, record, &stamp, &stages)?;
                let id = row["Id"].as_str().expect("seeded id").to_string();
                let table = world.table_mut(object);
                if table.rows.contains_key(&id) {
                    return Err(SeedError::DuplicateId { list, id });
                }
                table.put(id, Arc::new(row));
            }
        }
        Ok(world)
    }

    fn seed_row(
        &mut self,
        object: Object,
        list: &'static str,
        index: usize,
        record: &Value,
        stamp: &str,
        stages: &[OpportunityStage],
    ) -> Result<Map<String, Value>, SeedError> {
        let Value::Object(fields) = record else {
            return Err(SeedError::NotAnObject { list, index });
        };
        let mut row = Map::new();
        for (name, value) in fields {
            // `attributes` and nested relationship results are response decoration, not data.
            if name == "attributes"
                || matches!(value, Value::Object(o) if o.contains_key("attributes"))
            {
                continue;
            }
            let table = self.table(object);
            let (canonical, ty) = match table.def(name) {
                Some(d) => (d.name.to_string(), d.ty),
                None => {
                    let ty = match value {
                        Value::String(s) if soql::parse_datetime(s, false).is_some() => {
                            FieldType::DateTime
                        }
                        Value::String(s)
                            if s.len() == 10 && soql::parse_date_literal(s).is_some() =>
                        {
                            FieldType::Date
                        }
                        other => type_of_value(other),
                    };
                    let table = self.table_mut(object);
                    let entry = table
                        .extra
                        .entry(name.to_lowercase())
                        .or_insert_with(|| (name.clone(), ty));
                    // A field first seen as null takes the type of its first real value.
                    if !value.is_null() && entry.1 == FieldType::String && ty != FieldType::String {
                        entry.1 = ty;
                    }
                    (entry.0.clone(), entry.1)
                }
            };
            let value = match (ty, value) {
                (FieldType::Id | FieldType::Reference, Value::String(s)) => {
                    Value::String(ids::normalize(s).ok_or_else(|| SeedError::BadId {
                        list,
                        index,
                        field: canonical.clone(),
                        value: s.clone(),
                    })?)
                }
                (FieldType::DateTime, Value::String(s)) => Value::String(
                    soql::parse_datetime(s, false)
                        .map(soql::format_datetime)
                        .ok_or_else(|| SeedError::BadValue {
                            list,
                            index,
                            field: canonical.clone(),
                            value: s.clone(),
                            expected: "datetime like 2025-11-01T10:20:30.000+0000",
                        })?,
                ),
                (_, v) => v.clone(),
            };
            row.insert(canonical, value);
        }
        let id = match row.get("Id").and_then(Value::as_str) {
            Some(id) => {
                if !id.starts_with(object.key_prefix()) {
                    return Err(SeedError::WrongPrefix {
                        list,
                        index,
                        id: id.to_string(),
                        object: object.name(),
                        prefix: object.key_prefix(),
                    });
                }
                id.to_string()
            }
            None => {
                let id = ids::generate(object.key_prefix(), self.next_id);
                self.next_id += 1;
                id
            }
        };
        row.insert("Id".into(), Value::String(id));
        // Only a merge's losers carry MasterRecordId, and they are deleted: a seed that names
        // the master but says nothing of IsDeleted means a merged-away record.
        let merged = row.get("MasterRecordId").is_some_and(Value::is_string);
        row.entry("IsDeleted").or_insert(Value::Bool(merged));
        for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            row.entry(f)
                .or_insert_with(|| Value::String(stamp.to_string()));
        }
        if object == Object::Opportunity {
            // A seed that leaves them out gets what its stage means.
            let (closed, won) =
                OpportunityStage::flags(stages, row.get("StageName").and_then(Value::as_str));
            row.entry("IsClosed").or_insert(Value::Bool(closed));
            row.entry("IsWon").or_insert(Value::Bool(won));
        }
        Ok(row)
    }

    /// Replaces the setup objects with the integration user's rights as an org set up per
    /// infra/salesforce has them: its profile's permission set (no View All Data) and the
    /// `Orglink_Integration` permission set (View All and Edit on Account, Read and Edit on the
    /// four link fields) — less what `rights` takes away.
    pub fn grant_integration_user(&mut self, user_id: &str, rights: &IntegrationRights) {
        let stamp = soql::format_datetime(self.next_stamp());
        self.setup_readable = rights.view_setup;
        self.hidden_account_fields = rights.hidden_fields.clone();
        self.uneditable_account_fields = rights.uneditable_fields.clone();
        for object in [
            Object::PermissionSet,
            Object::PermissionSetAssignment,
            Object::ObjectPermissions,
            Object::FieldPermissions,
        ] {
            *self.table_mut(object) = Table::new(object);
        }
        let mut counter = 0u64;
        let mut put = |world: &mut World, object: Object, fields: Value| -> String {
            counter += 1;
            let id = ids::generate(object.key_prefix(), counter);
            let Value::Object(mut row) = fields else {
                unreachable!("setup rows are objects")
            };
            row.insert("Id".into(), json!(id));
            row.insert("SystemModstamp".into(), json!(stamp));
            world.table_mut(object).put(id.clone(), Arc::new(row));
            id
        };
        let profile = put(
            self,
            Object::PermissionSet,
            json!({"Name": "X00eSB0000000001", "Label": "Minimum Access - API Only Integrations",
                "IsOwnedByProfile": true, "ProfileId": ids::generate("00e", 1),
                "PermissionsApiEnabled": true, "PermissionsViewAllData": rights.view_all_data,
                "PermissionsModifyAllData": false, "PermissionsViewSetup": rights.view_setup}),
        );
        let orglink = put(
            self,
            Object::PermissionSet,
            json!({"Name": "Orglink_Integration", "Label": "orglink Integration",
                "IsOwnedByProfile": false, "ProfileId": null, "PermissionsApiEnabled": true,
                "PermissionsViewAllData": false, "PermissionsModifyAllData": false,
                "PermissionsViewSetup": false}),
        );
        for set in [&profile, &orglink] {
            put(
                self,
                Object::PermissionSetAssignment,
                json!({"AssigneeId": user_id, "PermissionSetId": set, "IsActive": true}),
            );
        }
        for (object, edit, view_all) in [
            ("Account", rights.account_edit, rights.account_view_all),
            ("Opportunity", false, true),
        ] {
            put(
                self,
                Object::ObjectPermissions,
                json!({"ParentId": orglink, "SobjectType": object, "PermissionsRead": true,
                    "PermissionsCreate": false, "PermissionsEdit": edit,
                    "PermissionsDelete": false, "PermissionsViewAllRecords": view_all,
                    "PermissionsModifyAllRecords": false}),
            );
        }
        let link_fields = [
            ORG_ID_FIELD,
            "Zendesk_Domain__c",
            "Last_Zendesk_Sync_At__c",
            SYNC_STATUS_FIELD,
        ];
        for field in link_fields {
            let edit = !rights
                .uneditable_fields
                .iter()
                .any(|f| f.eq_ignore_ascii_case(field));
            put(
                self,
                Object::FieldPermissions,
                json!({"ParentId": orglink, "SobjectType": "Account",
                    "Field": format!("Account.{field}"), "PermissionsRead": true,
                    "PermissionsEdit": edit}),
            );
        }
        for (object, field) in [
            ("Account", "Website"),
            ("Account", "Type"),
            ("Opportunity", "Probability"),
        ] {
            put(
                self,
                Object::FieldPermissions,
                json!({"ParentId": orglink, "SobjectType": object,
                    "Field": format!("{object}.{field}"), "PermissionsRead": true,
                    "PermissionsEdit": false}),
            );
        }
    }

    /// The whole state in the scenario format, records ordered by id.
    pub fn dump(&self) -> Value {
        let list = |t: &Table| -> Vec<Value> {
            t.rows
                .values()
                .map(|r| Value::Object((**r).clone()))
                .collect()
        };
        json!({
            "accounts": list(&self.accounts),
            "opportunities": list(&self.opportunities),
            "users": list(&self.users),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Query

/// A field as the executor reads it: optionally through one relationship.
#[derive(Debug, Clone)]
struct Bound {
    via: Option<(String, &'static str, Object)>,
    name: String,
    ty: FieldType,
}

#[derive(Debug, Clone)]
enum Val {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Date(Date),
    Time(OffsetDateTime),
}

#[derive(Debug)]
enum BExpr {
    And(Vec<BExpr>),
    Or(Vec<BExpr>),
    Not(Box<BExpr>),
    Cmp(Bound, CmpOp, Val),
    In(Bound, bool, Vec<Val>),
    InSet(Bound, bool, HashSet<String>),
    Like(Bound, Vec<LikePart>),
}

/// What a query returns: the rows it matched (a snapshot) and how to render each.
pub struct QueryResult {
    pub object: Object,
    pub count_only: bool,
    projection: Vec<Bound>,
    pub rows: Vec<Row>,
}

fn malformed(query: &str, offset: usize, message: &str) -> ApiError {
    ApiError::new(
        400,
        "MALFORMED_QUERY",
        soql::describe_error(query, offset, message),
    )
}

impl World {
    /// Runs a SOQL query. `all_rows` is `queryAll`: deleted and merged records included.
    pub fn query(&self, text: &str, all_rows: bool) -> Result<QueryResult, ApiError> {
        let q = soql::parse(text).map_err(|e| malformed(text, e.offset, &e.message))?;
        self.run(text, &q, all_rows)
    }

    /// Whether the running user sees `object` at all: a real org answers a query of a setup
    /// object from a user without View Setup and Configuration as if the type did not exist.
    fn visible(&self, object: Object) -> bool {
        self.setup_readable || !object.is_setup()
    }

    /// Whether the running user sees `object.field` (field-level security, or not deployed).
    fn field_visible(&self, object: Object, field: &str) -> bool {
        object != Object::Account
            || !self
                .hidden_account_fields
                .iter()
                .any(|h| h.eq_ignore_ascii_case(field))
    }

    /// `GET sobjects/{object}/describe` as the running user sees it: fields it cannot see are
    /// absent; `updateable` is its field-level security (the link fields named
    /// read-only are not), the object's `updateable` its Edit permission.
    pub fn describe(&self, object: Object, version: &str, object_edit: bool) -> Value {
        let table = self.table(object);
        let uneditable = |name: &str| {
            object == Object::Account
                && self
                    .uneditable_account_fields
                    .iter()
                    .any(|u| u.eq_ignore_ascii_case(name))
        };
        let fields: Vec<Value> = table
            .all_fields()
            .into_iter()
            .filter(|name| self.field_visible(object, name))
            .filter_map(|name| {
                let (_, ty) = table.field(&name)?;
                let def = table.def(&name);
                let read_only = def.is_some_and(|d| d.read_only);
                let max_len = def.and_then(|d| d.max_len);
                Some((name, ty, read_only, max_len))
            })
            .map(|(name, ty, read_only, max_len)| {
                let name = name.as_str();
                let custom = name.ends_with("__c");
                json!({
                    "name": name,
                    "label": name.trim_end_matches("__c").replace('_', " "),
                    "type": describe_type(ty),
                    "length": max_len.unwrap_or(0),
                    "custom": custom,
                    "nillable": !matches!(ty, FieldType::Id | FieldType::Boolean),
                    "createable": !read_only,
                    "updateable": !read_only && !uneditable(name),
                    "externalId": name == ORG_ID_FIELD,
                    "unique": name == ORG_ID_FIELD,
                    "permissionable": custom,
                })
            })
            .collect();
        let name = object.name();
        json!({
            "name": name,
            "label": name,
            "keyPrefix": object.key_prefix(),
            "custom": false,
            "queryable": true,
            "retrieveable": true,
            "createable": object_edit && object == Object::Account,
            "updateable": object_edit && object == Object::Account,
            "deletable": false,
            "fields": fields,
            "urls": {
                "sobject": format!("/services/data/{version}/sobjects/{name}"),
                "describe": format!("/services/data/{version}/sobjects/{name}/describe"),
                "rowTemplate": format!("/services/data/{version}/sobjects/{name}/{{ID}}"),
            },
        })
    }

    fn run(&self, text: &str, q: &soql::Query, all_rows: bool) -> Result<QueryResult, ApiError> {
        let object = Object::parse(&q.from).filter(|o| self.visible(*o)).ok_or_else(|| {
            let offset = text.to_lowercase().find(&q.from.to_lowercase()).unwrap_or(0);
            ApiError::new(
                400,
                "INVALID_TYPE",
                soql::describe_error(
                    text,
                    offset,
                    &format!(
                        "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                        q.from
                    ),
                ),
            )
        })?;
        let (count_only, projection) = match &q.select {
            Select::Count => (true, Vec::new()),
            Select::Fields(fields) => {
                let mut seen = HashSet::new();
                let mut out = Vec::new();
                for f in fields {
                    let b = self.bind_field(text, object, f)?;
                    let key = f.dotted().to_lowercase();
                    if !seen.insert(key) {
                        return Err(malformed(
                            text,
                            f.offset,
                            &format!("duplicate field selected: {}", f.dotted()),
                        ));
                    }
                    out.push(b);
                }
                (false, out)
            }
        };
        let filter = match &q.filter {
            Some(e) => Some(self.bind_expr(text, object, e)?),
            None => None,
        };
        let order: Vec<(Bound, bool, bool)> = q
            .order_by
            .iter()
            .map(|o| {
                Ok((
                    self.bind_field(text, object, &o.field)?,
                    o.descending,
                    o.nulls_last,
                ))
            })
            .collect::<Result<_, ApiError>>()?;

        let table = self.table(object);
        let candidates: Box<dyn Iterator<Item = &Row>> = match filter
            .as_ref()
            .and_then(|f| self.index_candidates(table, f))
        {
            Some(ids) => Box::new(ids.into_iter().filter_map(|id| table.rows.get(&id))),
            None => Box::new(table.rows.values()),
        };
        let mut rows: Vec<Row> = candidates
            .filter(|r| all_rows || !is_deleted(r))
            .filter(|r| filter.as_ref().is_none_or(|f| self.eval(f, r)))
            .cloned()
            .collect();
        if !order.is_empty() {
            let mut keyed: Vec<(Vec<Val>, Row)> = rows
                .into_iter()
                .map(|r| (order.iter().map(|(b, _, _)| self.value(b, &r)).collect(), r))
                .collect();
            keyed.sort_by(|a, b| {
                for (i, (_, desc, nulls_last)) in order.iter().enumerate() {
                    let ord = compare_for_sort(&a.0[i], &b.0[i], *desc, *nulls_last);
                    if ord != Ordering::Equal {
                        return ord;
                    }
                }
                Ordering::Equal
            });
            rows = keyed.into_iter().map(|(_, r)| r).collect();
        }
        if let Some(limit) = q.limit {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        Ok(QueryResult {
            object,
            count_only,
            projection,
            rows,
        })
    }

    fn bind_field(&self, text: &str, object: Object, f: &FieldRef) -> Result<Bound, ApiError> {
        let invalid = |entity: &str, name: &str| {
            ApiError::new(
                400,
                "INVALID_FIELD",
                soql::describe_error(
                    text,
                    f.offset,
                    &format!(
                        "No such column '{name}' on entity '{entity}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                ),
            )
        };
        match f.path.as_slice() {
            [name] => {
                let (name, ty) = self
                    .table(object)
                    .field(name)
                    .filter(|(n, _)| self.field_visible(object, n))
                    .ok_or_else(|| invalid(object.name(), name))?;
                Ok(Bound {
                    via: None,
                    name,
                    ty,
                })
            }
            [rel, name] => {
                let (ref_field, target) = object.relationship(rel).ok_or_else(|| {
                    ApiError::new(
                        400,
                        "INVALID_FIELD",
                        soql::describe_error(
                            text,
                            f.offset,
                            &format!(
                                "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                            ),
                        ),
                    )
                })?;
                let (name, ty) = self
                    .table(target)
                    .field(name)
                    .filter(|(n, _)| self.field_visible(target, n))
                    .ok_or_else(|| invalid(target.name(), name))?;
                let rel_name = ref_field.trim_end_matches("Id").to_string();
                Ok(Bound {
                    via: Some((rel_name, ref_field, target)),
                    name,
                    ty,
                })
            }
            _ => Err(malformed(
                text,
                f.offset,
                "relationship paths deeper than one level are not supported by the sandbox",
            )),
        }
    }

    fn bind_value(
        &self,
        text: &str,
        field: &Bound,
        lit: &Literal,
        offset: usize,
    ) -> Result<Val, ApiError> {
        let filter_error = |msg: String| {
            ApiError::new(
                400,
                "INVALID_QUERY_FILTER_OPERATOR",
                soql::describe_error(text, offset, &msg),
            )
        };
        let want = |kind: &str| {
            filter_error(format!(
                "value of filter criterion for field '{}' must be of type {kind}",
                field.name
            ))
        };
        Ok(match (field.ty, lit) {
            (_, Literal::Null) => Val::Null,
            (FieldType::Id | FieldType::Reference, Literal::String(s)) => Val::Str(
                ids::normalize(s).ok_or_else(|| filter_error(format!("invalid ID field: {s}")))?,
            ),
            (FieldType::String | FieldType::Picklist, Literal::String(s)) => {
                Val::Str(s.to_lowercase())
            }
            (FieldType::Boolean, Literal::Bool(b)) => Val::Bool(*b),
            (FieldType::Number, Literal::Number(n)) => Val::Num(*n),
            (FieldType::Date, Literal::Date(d)) => Val::Date(*d),
            (FieldType::DateTime, Literal::DateTime(t)) => Val::Time(*t),
            (FieldType::Id | FieldType::Reference | FieldType::String | FieldType::Picklist, _) => {
                return Err(want("string and should be enclosed in quotes"));
            }
            (FieldType::Boolean, _) => {
                return Err(want("boolean and should not be enclosed in quotes"));
            }
            (FieldType::Number, _) => {
                return Err(want("double and should not be enclosed in quotes"));
            }
            (FieldType::Date, _) => return Err(want("date and should not be enclosed in quotes")),
            (FieldType::DateTime, _) => {
                return Err(want("dateTime and should not be enclosed in quotes"));
            }
        })
    }

    fn bind_expr(&self, text: &str, object: Object, e: &Expr) -> Result<BExpr, ApiError> {
        Ok(match e {
            Expr::And(items) => BExpr::And(
                items
                    .iter()
                    .map(|i| self.bind_expr(text, object, i))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(items) => BExpr::Or(
                items
                    .iter()
                    .map(|i| self.bind_expr(text, object, i))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(inner) => BExpr::Not(Box::new(self.bind_expr(text, object, inner)?)),
            Expr::Compare {
                field,
                op,
                value,
                value_offset,
            } => {
                let b = self.bind_field(text, object, field)?;
                let ordered = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                if ordered && b.ty == FieldType::Boolean {
                    return Err(ApiError::new(
                        400,
                        "INVALID_QUERY_FILTER_OPERATOR",
                        soql::describe_error(
                            text,
                            *value_offset,
                            &format!("invalid operator on boolean field: {}", b.name),
                        ),
                    ));
                }
                let v = self.bind_value(text, &b, value, *value_offset)?;
                BExpr::Cmp(b, *op, v)
            }
            Expr::In {
                field,
                negated,
                values,
            } => {
                let b = self.bind_field(text, object, field)?;
                let vals = values
                    .iter()
                    .map(|(l, at)| self.bind_value(text, &b, l, *at))
                    .collect::<Result<_, _>>()?;
                BExpr::In(b, *negated, vals)
            }
            Expr::InQuery {
                field,
                negated,
                query,
            } => {
                let b = self.bind_field(text, object, field)?;
                let single_id = matches!(&query.select, Select::Fields(f) if f.len() == 1);
                if !matches!(b.ty, FieldType::Id | FieldType::Reference) || !single_id {
                    return Err(malformed(
                        text,
                        field.offset,
                        "semi-join sub-selects must select one Id or reference field, filtered by an Id or reference field",
                    ));
                }
                let inner = self.run(text, query, false)?;
                let sub = &inner.projection[0];
                if !matches!(sub.ty, FieldType::Id | FieldType::Reference) || sub.via.is_some() {
                    return Err(malformed(
                        text,
                        field.offset,
                        "semi-join sub-selects must select an Id or reference field",
                    ));
                }
                let set = inner
                    .rows
                    .iter()
                    .filter_map(|r| r.get(&sub.name).and_then(Value::as_str).map(str::to_string))
                    .collect();
                BExpr::InSet(b, *negated, set)
            }
            Expr::Like { field, pattern } => {
                let b = self.bind_field(text, object, field)?;
                if !matches!(b.ty, FieldType::String | FieldType::Picklist) {
                    return Err(ApiError::new(
                        400,
                        "INVALID_QUERY_FILTER_OPERATOR",
                        soql::describe_error(
                            text,
                            field.offset,
                            &format!("invalid operator on {:?} field: {}", b.ty, b.name),
                        ),
                    ));
                }
                BExpr::Like(b, pattern.clone())
            }
        })
    }

    /// Ids to examine when the filter pins an indexed field (`Id`, the org id, the name, an
    /// opportunity's account) with `=` or `IN`, at the top level or in a top-level `AND`.
    fn index_candidates(&self, table: &Table, filter: &BExpr) -> Option<Vec<String>> {
        let conjuncts: Vec<&BExpr> = match filter {
            BExpr::And(items) => items.iter().collect(),
            other => vec![other],
        };
        for c in conjuncts {
            let (field, values): (&Bound, Vec<&Val>) = match c {
                BExpr::Cmp(b, CmpOp::Eq, v) => (b, vec![v]),
                BExpr::In(b, false, vs) => (b, vs.iter().collect()),
                _ => continue,
            };
            // `= null` finds rows without the value, which no index holds.
            if field.via.is_some() || !values.iter().all(|v| matches!(v, Val::Str(_))) {
                continue;
            }
            let keys = values.iter().filter_map(|v| match v {
                Val::Str(s) => Some(s.clone()),
                _ => None,
            });
            if field.name == "Id" {
                let mut ids: Vec<String> = keys.filter(|k| table.rows.contains_key(k)).collect();
                ids.sort();
                ids.dedup();
                return Some(ids);
            }
            if let Some(ix) = table.index(&field.name) {
                let mut ids: Vec<String> = keys
                    .filter_map(|k| ix.get(&k))
                    .flat_map(|set| set.iter().cloned())
                    .collect();
                ids.sort();
                ids.dedup();
                return Some(ids);
            }
        }
        None
    }

    fn raw<'a>(&'a self, b: &Bound, row: &'a Map<String, Value>) -> Option<&'a Value> {
        match &b.via {
            None => row.get(&b.name),
            Some((_, ref_field, target)) => {
                let id = row.get(*ref_field)?.as_str()?;
                self.table(*target).rows.get(id)?.get(&b.name)
            }
        }
    }

    fn value(&self, b: &Bound, row: &Map<String, Value>) -> Val {
        let Some(v) = self.raw(b, row) else {
            return Val::Null;
        };
        match (b.ty, v) {
            (_, Value::Null) => Val::Null,
            (FieldType::Id | FieldType::Reference, Value::String(s)) => Val::Str(s.clone()),
            (FieldType::DateTime, Value::String(s)) => {
                soql::parse_datetime(s, false).map_or(Val::Null, Val::Time)
            }
            (FieldType::Date, Value::String(s)) => match soql::parse_date_literal(s) {
                Some(Literal::Date(d)) => Val::Date(d),
                _ => Val::Null,
            },
            (FieldType::Number, v) => v
                .as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .map_or(Val::Null, Val::Num),
            (FieldType::Boolean, Value::Bool(x)) => Val::Bool(*x),
            (_, Value::String(s)) => Val::Str(s.to_lowercase()),
            (_, Value::Bool(x)) => Val::Bool(*x),
            (_, Value::Number(n)) => n.as_f64().map_or(Val::Null, Val::Num),
            _ => Val::Null,
        }
    }

    fn eval(&self, e: &BExpr, row: &Map<String, Value>) -> bool {
        match e {
            BExpr::And(items) => items.iter().all(|i| self.eval(i, row)),
            BExpr::Or(items) => items.iter().any(|i| self.eval(i, row)),
            BExpr::Not(inner) => !self.eval(inner, row),
            BExpr::Cmp(b, op, lit) => {
                let v = self.value(b, row);
                match (op, &v, lit) {
                    (CmpOp::Eq, Val::Null, Val::Null) => true,
                    (CmpOp::Ne, Val::Null, Val::Null) => false,
                    (CmpOp::Eq, _, _) => compare(&v, lit) == Some(Ordering::Equal),
                    (CmpOp::Ne, _, _) => compare(&v, lit) != Some(Ordering::Equal),
                    (CmpOp::Lt, _, _) => compare(&v, lit) == Some(Ordering::Less),
                    (CmpOp::Le, _, _) => {
                        matches!(compare(&v, lit), Some(Ordering::Less | Ordering::Equal))
                    }
                    (CmpOp::Gt, _, _) => compare(&v, lit) == Some(Ordering::Greater),
                    (CmpOp::Ge, _, _) => {
                        matches!(compare(&v, lit), Some(Ordering::Greater | Ordering::Equal))
                    }
                }
            }
            BExpr::In(b, negated, lits) => {
                let v = self.value(b, row);
                let hit = lits.iter().any(|l| match (&v, l) {
                    (Val::Null, Val::Null) => true,
                    _ => compare(&v, l) == Some(Ordering::Equal),
                });
                hit != *negated
            }
            BExpr::InSet(b, negated, set) => {
                let hit = matches!(self.value(b, row), Val::Str(s) if set.contains(&s));
                hit != *negated
            }
            BExpr::Like(b, pattern) => match self.raw(b, row) {
                Some(Value::String(s)) => soql::like_matches(pattern, s),
                _ => false,
            },
        }
    }

    /// One record as a query returns it: `attributes`, the selected fields, relationship
    /// fields nested under the relationship name (`null` when the reference is empty).
    pub fn render(&self, result: &QueryResult, row: &Map<String, Value>, version: &str) -> Value {
        let mut out = Map::new();
        out.insert("attributes".into(), attributes(result.object, row, version));
        for b in &result.projection {
            match &b.via {
                None => {
                    out.insert(
                        b.name.clone(),
                        row.get(&b.name).cloned().unwrap_or(Value::Null),
                    );
                }
                Some((rel, ref_field, target)) => {
                    let parent = row
                        .get(*ref_field)
                        .and_then(Value::as_str)
                        .and_then(|id| self.table(*target).rows.get(id));
                    let slot = out.entry(rel.clone()).or_insert(Value::Null);
                    if let Some(parent) = parent {
                        if slot.is_null() {
                            let mut nested = Map::new();
                            nested
                                .insert("attributes".into(), attributes(*target, parent, version));
                            *slot = Value::Object(nested);
                        }
                        if let Value::Object(nested) = slot {
                            nested.insert(
                                b.name.clone(),
                                parent.get(&b.name).cloned().unwrap_or(Value::Null),
                            );
                        }
                    }
                }
            }
        }
        Value::Object(out)
    }

    /// A full record read: every known field (null when unset) plus seeded extras, or only
    /// the named ones.
    pub fn read(
        &self,
        object: Object,
        row: &Map<String, Value>,
        fields: Option<&[String]>,
        version: &str,
    ) -> Result<Value, ApiError> {
        let table = self.table(object);
        let names: Vec<String> = match fields {
            None => table.all_fields(),
            Some(list) => list
                .iter()
                .map(|n| {
                    table.field(n).map(|f| f.0).ok_or_else(|| {
                        ApiError::new(
                            400,
                            "INVALID_FIELD",
                            format!("No such column '{n}' on sobject of type {}", object.name()),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let mut out = Map::new();
        out.insert("attributes".into(), attributes(object, row, version));
        for n in names {
            let v = row.get(&n).cloned().unwrap_or(Value::Null);
            out.insert(n, v);
        }
        Ok(Value::Object(out))
    }
}

pub fn attributes(object: Object, row: &Map<String, Value>, version: &str) -> Value {
    let id = row.get("Id").and_then(Value::as_str).unwrap_or_default();
    json!({
        "type": object.name(),
        "url": format!("/services/data/{version}/sobjects/{}/{id}", object.name()),
    })
}

fn compare(a: &Val, b: &Val) -> Option<Ordering> {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => Some(x.cmp(y)),
        (Val::Num(x), Val::Num(y)) => x.partial_cmp(y),
        (Val::Bool(x), Val::Bool(y)) => Some(x.cmp(y)),
        (Val::Date(x), Val::Date(y)) => Some(x.cmp(y)),
        (Val::Time(x), Val::Time(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare_for_sort(a: &Val, b: &Val, descending: bool, nulls_last: bool) -> Ordering {
    match (a, b) {
        (Val::Null, Val::Null) => Ordering::Equal,
        (Val::Null, _) => {
            if nulls_last {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (_, Val::Null) => {
            if nulls_last {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        _ => {
            let o = compare(a, b).unwrap_or(Ordering::Equal);
            if descending { o.reverse() } else { o }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Writes

/// What the org is configured to refuse, from the switches.
pub struct WriteRules<'a> {
    /// Allowed `Zendesk_Sync_Status__c` values; empty accepts any.
    pub sync_status_values: &'a [String],
    /// Account id → validation rule error message.
    pub validation_rules: &'a BTreeMap<String, String>,
    /// Account id → how many more writes fail with `UNABLE_TO_LOCK_ROW`.
    pub row_locks: &'a mut BTreeMap<String, u64>,
    pub duplicate_value_code: &'a str,
    pub unique_includes_deleted: bool,
    pub deleted_status: u16,
    /// Stamped into `LastModifiedById`.
    pub user_id: &'a str,
    /// The org's opportunity stages: a write of `StageName` sets `IsClosed` and `IsWon`.
    pub stages: &'a [OpportunityStage],
    /// A write that changes `StageName` and leaves out `Probability` sets it to the new
    /// stage's default probability.
    pub probability_follows_stage: bool,
}

/// One value of the org's opportunity stage picklist and what it means (the setup object
/// `OpportunityStage`: `IsClosed`, `IsWon`, `DefaultProbability`). An opportunity's
/// `IsClosed` and `IsWon` are read-only, "directly controlled by StageName"; its
/// `Probability` takes the stage's default when the stage changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpportunityStage {
    pub name: String,
    #[serde(default)]
    pub closed: bool,
    #[serde(default)]
    pub won: bool,
    /// The stage's default probability, 0–100. Absent (scenarios written before it
    /// existed), a change to this stage leaves `Probability` as it was.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "percent"
    )]
    pub probability: Option<u8>,
}

/// A whole percentage, 0–100, as Setup accepts for a stage's probability.
fn percent<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    use serde::Deserialize as _;
    let p = Option::<u8>::deserialize(d)?;
    match p {
        Some(p) if p > 100 => Err(serde::de::Error::custom(format!(
            "probability {p} is over 100"
        ))),
        _ => Ok(p),
    }
}

impl OpportunityStage {
    /// A new org's stages (Setup → Opportunity Stages) with their default probabilities,
    /// open ones first.
    pub fn standard() -> Vec<OpportunityStage> {
        let open = [
            ("Prospecting", 10),
            ("Qualification", 10),
            ("Needs Analysis", 20),
            ("Value Proposition", 50),
            ("Id. Decision Makers", 60),
            ("Perception Analysis", 70),
            ("Proposal/Price Quote", 75),
            ("Negotiation/Review", 90),
        ];
        let stage = |name: &str, probability, closed, won| OpportunityStage {
            name: name.to_string(),
            closed,
            won,
            probability: Some(probability),
        };
        open.iter()
            .map(|&(n, p)| stage(n, p, false, false))
            .chain([
                stage("Closed Won", 100, true, true),
                stage("Closed Lost", 0, true, false),
            ])
            .collect()
    }

    /// The stage named `stage_name`: exactly, else ignoring ASCII case.
    fn find<'s>(stages: &'s [OpportunityStage], stage_name: Option<&str>) -> Option<&'s Self> {
        let name = stage_name?;
        stages
            .iter()
            .find(|s| s.name == name)
            .or_else(|| stages.iter().find(|s| s.name.eq_ignore_ascii_case(name)))
    }

    /// `(IsClosed, IsWon)` of an opportunity at `stage_name`. A value outside the list is an
    /// open stage (Salesforce's answer to one is not documented; orglink never writes stages).
    pub fn flags(stages: &[OpportunityStage], stage_name: Option<&str>) -> (bool, bool) {
        Self::find(stages, stage_name).map_or((false, false), |s| (s.closed, s.won))
    }

    /// The default probability of `stage_name`; none for a stage outside the list or one
    /// without a probability.
    pub fn default_probability(
        stages: &[OpportunityStage],
        stage_name: Option<&str>,
    ) -> Option<u8> {
        Self::find(stages, stage_name).and_then(|s| s.probability)
    }
}

/// One field a write set, with its value before and after.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FieldChange {
    pub old: Value,
    pub new: Value,
}

/// A committed write, for the write log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriteRecord {
    pub object: &'static str,
    pub id: String,
    pub fields: BTreeMap<String, FieldChange>,
    #[serde(rename = "SystemModstamp")]
    pub system_modstamp: String,
}

pub fn malformed_id(object: Object, id: &str) -> ApiError {
    ApiError::new(
        400,
        "MALFORMED_ID",
        format!("{} ID: id value of incorrect type: {id}", object.name()),
    )
    .with_fields(vec!["Id".into()])
}

/// The 18-character id of a record of `object`, or `MALFORMED_ID`.
pub fn parse_record_id(object: Object, id: &str) -> Result<String, ApiError> {
    ids::normalize(id)
        .filter(|n| n.starts_with(object.key_prefix()))
        .ok_or_else(|| malformed_id(object, id))
}

impl World {
    /// Applies one record's update with Salesforce's checks, in the order the platform runs
    /// them: field names and values, the record itself, row lock, validation rules, unique
    /// index. Returns what changed; `undo` receives the previous row for a rollback.
    pub fn update(
        &mut self,
        object: Object,
        id: &str,
        body: &Map<String, Value>,
        rules: &mut WriteRules<'_>,
        undo: &mut Vec<(Object, String, Row)>,
    ) -> Result<WriteRecord, ApiError> {
        let id = parse_record_id(object, id)?;
        let table = self.table(object);
        let Some(current) = table.rows.get(&id).cloned() else {
            return Err(ApiError::new(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
            ));
        };
        let mut changes: Vec<(String, Value)> = Vec::new();
        for (name, value) in body {
            if name == "attributes" {
                continue;
            }
            let Some(def) = table.def(name) else {
                if let Some((canonical, ty)) = table.extra.get(&name.to_lowercase()) {
                    changes.push((canonical.clone(), check_value(canonical, *ty, value)?));
                    continue;
                }
                return Err(ApiError::new(
                    400,
                    "INVALID_FIELD",
                    format!(
                        "No such column '{name}' on sobject of type {}",
                        object.name()
                    ),
                )
                .with_fields(vec![name.clone()]));
            };
            if def.read_only {
                return Err(ApiError::new(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    format!(
                        "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                        def.name
                    ),
                )
                .with_fields(vec![def.name.into()]));
            }
            let value = check_value(def.name, def.ty, value)?;
            if let (Some(max), Value::String(s)) = (def.max_len, &value)
                && s.chars().count() > max
            {
                return Err(ApiError::new(
                    400,
                    "STRING_TOO_LONG",
                    format!("{}: data value too large: {s} (max length={max})", def.name),
                )
                .with_fields(vec![def.name.into()]));
            }
            if def.name == SYNC_STATUS_FIELD
                && !rules.sync_status_values.is_empty()
                && let Value::String(s) = &value
                && !rules.sync_status_values.contains(s)
            {
                return Err(ApiError::new(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("Zendesk Sync Status: bad value for restricted picklist field: {s}"),
                )
                .with_fields(vec![def.name.into()]));
            }
            changes.push((def.name.to_string(), value));
        }
        if is_deleted(&current) {
            return Err(ApiError::new(
                rules.deleted_status,
                "ENTITY_IS_DELETED",
                "entity is deleted",
            ));
        }
        if let Some(left) = rules.row_locks.get_mut(&id)
            && *left > 0
        {
            *left -= 1;
            return Err(ApiError::new(
                400,
                "UNABLE_TO_LOCK_ROW",
                format!("unable to obtain exclusive access to this record or 1 records: {id}"),
            ));
        }
        if let Some(message) = rules.validation_rules.get(&id) {
            return Err(ApiError::new(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                message.clone(),
            ));
        }
        if object == Object::Account
            && let Some((_, Value::String(new))) = changes.iter().find(|(n, _)| n == ORG_ID_FIELD)
            && !new.is_empty()
            && let Some(holders) = table
                .index(ORG_ID_FIELD)
                .and_then(|ix| ix.get(&new.to_lowercase()))
            && let Some(other) = holders.iter().find(|h| {
                *h != &id
                    && (rules.unique_includes_deleted
                        || table.rows.get(*h).is_some_and(|r| !is_deleted(r)))
            })
        {
            return Err(ApiError::new(
                400,
                rules.duplicate_value_code,
                format!(
                    "duplicate value found: {ORG_ID_FIELD} duplicates value on record with id: {other}"
                ),
            )
            .with_fields(vec![ORG_ID_FIELD.into()]));
        }

        // A seed may stamp a record in the future; a write still moves its stamp forward.
        let mut at = self.next_stamp();
        if let Some(previous) = current
            .get("SystemModstamp")
            .and_then(Value::as_str)
            .and_then(|s| soql::parse_datetime(s, false))
            && at <= previous
        {
            at = previous + Duration::milliseconds(1);
            self.last_stamp = at;
        }
        // Fields Salesforce sets from the stage follow the written ones; the write log shows
        // them only when they change.
        let written = changes.len();
        if object == Object::Opportunity
            && let Some((_, stage)) = changes.iter().find(|(n, _)| n == "StageName").cloned()
        {
            let (closed, won) = OpportunityStage::flags(rules.stages, stage.as_str());
            changes.push(("IsClosed".into(), Value::Bool(closed)));
            changes.push(("IsWon".into(), Value::Bool(won)));
            // A new stage brings its default probability unless the same write sets one.
            if rules.probability_follows_stage
                && current.get("StageName") != Some(&stage)
                && !changes.iter().any(|(n, _)| n == "Probability")
                && let Some(p) = OpportunityStage::default_probability(rules.stages, stage.as_str())
            {
                changes.push(("Probability".into(), Value::from(p)));
            }
        }
        let stamp = soql::format_datetime(at);
        let mut row = (*current).clone();
        let mut fields = BTreeMap::new();
        for (i, (name, new)) in changes.into_iter().enumerate() {
            let old = row.insert(name.clone(), new.clone()).unwrap_or(Value::Null);
            if old != new || i < written {
                fields.insert(name, FieldChange { old, new });
            }
        }
        row.insert("SystemModstamp".into(), Value::String(stamp.clone()));
        row.insert("LastModifiedDate".into(), Value::String(stamp.clone()));
        if object == Object::Account {
            row.insert(
                "LastModifiedById".into(),
                Value::String(rules.user_id.to_string()),
            );
        }
        undo.push((object, id.clone(), current));
        self.table_mut(object).put(id.clone(), Arc::new(row));
        Ok(WriteRecord {
            object: object.name(),
            id,
            fields,
            system_modstamp: stamp,
        })
    }

    /// Puts back rows saved by `update` (newest first), for `allOrNone` rollbacks.
    pub fn undo(&mut self, mut undo: Vec<(Object, String, Row)>) {
        while let Some((object, id, row)) = undo.pop() {
            self.table_mut(object).put(id, row);
        }
    }
}

/// A written value in the field's type, in Salesforce's canonical rendering.
fn check_value(name: &str, ty: FieldType, value: &Value) -> Result<Value, ApiError> {
    let bad = |kind: &str| {
        ApiError::new(
            400,
            "JSON_PARSER_ERROR",
            format!("Cannot deserialize instance of {kind} from {value} for field {name}"),
        )
        .with_fields(vec![name.to_string()])
    };
    Ok(match (ty, value) {
        (_, Value::Null) => Value::Null,
        (FieldType::String | FieldType::Picklist, Value::String(_)) => value.clone(),
        (FieldType::String | FieldType::Picklist, _) => return Err(bad("string")),
        (FieldType::Boolean, Value::Bool(_)) => value.clone(),
        (FieldType::Boolean, _) => return Err(bad("boolean")),
        (FieldType::Number, Value::Number(_)) => value.clone(),
        (FieldType::Number, _) => return Err(bad("double")),
        (FieldType::DateTime, Value::String(s)) => Value::String(soql::format_datetime(
            soql::parse_datetime(s, false).ok_or_else(|| bad("datetime"))?,
        )),
        (FieldType::DateTime, _) => return Err(bad("datetime")),
        (FieldType::Date, Value::String(s)) => match soql::parse_date_literal(s) {
            Some(Literal::Date(d)) => Value::String(soql::format_date(d)),
            _ => return Err(bad("date")),
        },
        (FieldType::Date, _) => return Err(bad("date")),
        (FieldType::Id | FieldType::Reference, Value::String(s)) => {
            Value::String(ids::normalize(s).ok_or_else(|| bad("reference"))?)
        }
        (FieldType::Id | FieldType::Reference, _) => return Err(bad("reference")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The integration user's rights as the switches' defaults give them, patched by `f`.
    fn rights(f: impl FnOnce(&mut IntegrationRights)) -> IntegrationRights {
        let mut r = IntegrationRights {
            account_view_all: true,
            account_edit: true,
            view_all_data: false,
            uneditable_fields: Vec::new(),
            view_setup: false,
            hidden_fields: Vec::new(),
        };
        f(&mut r);
        r
    }

    #[test]
    fn setup_objects_need_view_setup_and_describe_reports_field_security() {
        let mut w = world();
        let user = "005SB0000000001";
        w.grant_integration_user(
            user,
            &rights(|r| {
                r.uneditable_fields = vec!["zendesk_domain__c".into()];
                r.hidden_fields = vec!["Last_Zendesk_Sync_At__c".into()];
            }),
        );
        for object in [
            "PermissionSet",
            "PermissionSetAssignment",
            "FieldPermissions",
        ] {
            let Err(e) = w.query(&format!("SELECT Id FROM {object}"), false) else {
                panic!("{object} answered without View Setup");
            };
            assert_eq!(
                (e.status, e.code.as_str()),
                (400, "INVALID_TYPE"),
                "{object}"
            );
            assert!(e.message.contains("is not supported"), "{}", e.message);
        }
        let d = w.describe(Object::Account, "v66.0", true);
        let field = |name: &str| {
            d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == name)
                .cloned()
        };
        assert_eq!(field("Zendesk_Org_ID__c").unwrap()["updateable"], true);
        assert_eq!(field("Zendesk_Domain__c").unwrap()["updateable"], false);
        assert_eq!(field("Id").unwrap()["updateable"], false);
        assert_eq!(field("Last_Zendesk_Sync_At__c"), None);
        assert_eq!(d["updateable"], true);
        let Err(e) = w.query("SELECT Id, Last_Zendesk_Sync_At__c FROM Account", false) else {
            panic!("a hidden field answered");
        };
        assert_eq!(e.code, "INVALID_FIELD");
        assert!(
            w.query("SELECT Id, Zendesk_Domain__c FROM Account", false)
                .is_ok()
        );

        w.grant_integration_user(user, &rights(|r| r.view_setup = true));
        let sets = w
            .query(
                "SELECT Name, PermissionsViewSetup FROM PermissionSet",
                false,
            )
            .expect("readable with View Setup");
        assert_eq!(sets.rows.len(), 2);
        assert!(
            w.query("SELECT Id, Last_Zendesk_Sync_At__c FROM Account", false)
                .is_ok()
        );
    }

    fn world() -> World {
        let seed: SalesforceSeed = serde_json::from_value(json!({
            "users": [{"Id": "005D000000AAAAA", "Email": "owner@example.com", "Name": "Olive Owner"}],
            "accounts": [
                {"Id": "001D000000IRFma", "Name": "Acme", "Type": "Customer - Direct",
                 "OwnerId": "005D000000AAAAA", "Zendesk_Org_ID__c": "42",
                 "SystemModstamp": "2025-11-01T10:00:00.000+0000", "Tier__c": "Gold"},
                {"Id": "001D000000IomazIAB", "Name": "Globex", "Type": "Prospect"},
                {"Id": "001D000000IqhSL", "Name": "Old Acme", "IsDeleted": true,
                 "MasterRecordId": "001D000000IRFma", "Zendesk_Org_ID__c": "7"}
            ],
            "opportunities": [
                {"AccountId": "001D000000IomazIAB", "StageName": "Negotiation", "Probability": 80,
                 "CloseDate": "2026-01-31"}
            ]
        }))
        .unwrap();
        World::load(&seed).unwrap()
    }

    fn ids_of(w: &World, q: &str, all: bool) -> Vec<String> {
        w.query(q, all)
            .unwrap()
            .rows
            .iter()
            .map(|r| r["Id"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn seeding_normalizes_ids_and_fills_defaults() {
        let w = world();
        let acme = &w.accounts.rows["001D000000IRFmaIAH"];
        assert_eq!(acme["OwnerId"], "005D000000AAAAAIA5");
        assert_eq!(acme["IsDeleted"], false);
        let seed: SalesforceSeed = serde_json::from_value(json!({"accounts": [
            {"Id": "001D000000IomazIAB", "MasterRecordId": "001D000000IRFma"}
        ]}))
        .unwrap();
        let merged = World::load(&seed).unwrap();
        assert_eq!(
            merged.accounts.rows["001D000000IomazIAB"]["IsDeleted"],
            true
        );
        let opp = w.opportunities.rows.values().next().unwrap();
        assert!(opp["Id"].as_str().unwrap().starts_with("006SB"));
        assert_eq!(opp["AccountId"], "001D000000IomazIAB");
    }

    #[test]
    fn bad_seeds_say_what_is_wrong() {
        let seed: SalesforceSeed =
            serde_json::from_value(json!({"accounts": [{"Id": "001D000000IRFmaZZZ"}]})).unwrap();
        assert!(matches!(
            World::load(&seed),
            Err(SeedError::BadId { index: 0, .. })
        ));
        let seed: SalesforceSeed =
            serde_json::from_value(json!({"accounts": [{"Id": "003G000001SUbc4IAD"}]})).unwrap();
        assert!(matches!(
            World::load(&seed),
            Err(SeedError::WrongPrefix { .. })
        ));
        let seed: SalesforceSeed = serde_json::from_value(
            json!({"accounts": [{"Id": "001D000000IRFma"}, {"Id": "001D000000IRFmaIAH"}]}),
        )
        .unwrap();
        assert!(matches!(
            World::load(&seed),
            Err(SeedError::DuplicateId { .. })
        ));
    }

    #[test]
    fn query_hides_deleted_rows_and_query_all_shows_them() {
        let w = world();
        let q = "SELECT Id, MasterRecordId FROM Account WHERE Name LIKE '%acme%'";
        assert_eq!(ids_of(&w, q, false), vec!["001D000000IRFmaIAH"]);
        assert_eq!(
            ids_of(&w, q, true),
            vec!["001D000000IRFmaIAH", "001D000000IqhSLIAZ"]
        );
    }

    #[test]
    fn filters_by_type() {
        let w = world();
        assert_eq!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE Id = '001D000000IRFma'",
                false
            ),
            vec!["001D000000IRFmaIAH"]
        );
        assert_eq!(
            ids_of(&w, "SELECT Id FROM Account WHERE name = 'ACME'", false),
            vec!["001D000000IRFmaIAH"]
        );
        assert_eq!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE SystemModstamp < 2025-11-01T10:00:00.001Z",
                false
            ),
            vec!["001D000000IRFmaIAH"]
        );
        assert_eq!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE Zendesk_Org_ID__c != null",
                true
            )
            .len(),
            2
        );
        assert_eq!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE NOT Type LIKE 'Customer%'",
                false
            ),
            vec!["001D000000IomazIAB"]
        );
        assert_eq!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE Tier__c IN ('gold')",
                false
            ),
            vec!["001D000000IRFmaIAH"]
        );
        assert_eq!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Opportunity WHERE Probability >= 75)",
                false
            ),
            vec!["001D000000IomazIAB"]
        );
        assert_eq!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE Owner.Email = 'OWNER@example.com'",
                false
            ),
            vec!["001D000000IRFmaIAH"]
        );
    }

    #[test]
    fn refuses_unknown_fields_and_mistyped_literals() {
        let w = world();
        let code = |q: &str| w.query(q, false).err().map(|e| e.code);
        assert_eq!(
            code("SELECT Nope__c FROM Account").as_deref(),
            Some("INVALID_FIELD")
        );
        assert_eq!(
            code("SELECT Owner.Nope FROM Account").as_deref(),
            Some("INVALID_FIELD")
        );
        assert_eq!(
            code("SELECT Boss.Email FROM Account").as_deref(),
            Some("INVALID_FIELD")
        );
        assert_eq!(
            code("SELECT Id FROM Contact").as_deref(),
            Some("INVALID_TYPE")
        );
        assert_eq!(
            code("SELECT Id FROM Account WHERE SystemModstamp > '2025-01-01T00:00:00Z'").as_deref(),
            Some("INVALID_QUERY_FILTER_OPERATOR")
        );
        assert_eq!(
            code("SELECT Id FROM Account WHERE Id = 'abc'").as_deref(),
            Some("INVALID_QUERY_FILTER_OPERATOR")
        );
        assert_eq!(
            code("SELECT Id, id FROM Account").as_deref(),
            Some("MALFORMED_QUERY")
        );
    }

    #[test]
    fn orders_with_nulls_and_limits() {
        let w = world();
        let q = "SELECT Id FROM Account ORDER BY Zendesk_Org_ID__c DESC NULLS LAST LIMIT 2";
        assert_eq!(
            ids_of(&w, q, true),
            vec!["001D000000IqhSLIAZ", "001D000000IRFmaIAH"]
        );
        let q = "SELECT Id FROM Account ORDER BY Zendesk_Org_ID__c";
        assert_eq!(ids_of(&w, q, true)[0], "001D000000IomazIAB");
    }

    #[test]
    fn renders_relationships_nested() {
        let w = world();
        let r = w
            .query(
                "SELECT Name, Owner.Email, Owner.Name FROM Account ORDER BY Name",
                false,
            )
            .unwrap();
        let acme = w.render(&r, &r.rows[0], "v62.0");
        assert_eq!(acme["Owner"]["Email"], "owner@example.com");
        assert_eq!(acme["Owner"]["Name"], "Olive Owner");
        assert_eq!(acme["Owner"]["attributes"]["type"], "User");
        assert_eq!(
            acme["attributes"]["url"],
            "/services/data/v62.0/sobjects/Account/001D000000IRFmaIAH"
        );
        let globex = w.render(&r, &r.rows[1], "v62.0");
        assert_eq!(globex["Owner"], Value::Null);
    }

    static STAGES: std::sync::OnceLock<Vec<OpportunityStage>> = std::sync::OnceLock::new();

    fn rules<'a>(
        locks: &'a mut BTreeMap<String, u64>,
        validation: &'a BTreeMap<String, String>,
        values: &'a [String],
    ) -> WriteRules<'a> {
        WriteRules {
            sync_status_values: values,
            validation_rules: validation,
            row_locks: locks,
            duplicate_value_code: "DUPLICATE_VALUE",
            unique_includes_deleted: true,
            deleted_status: 404,
            user_id: "005SB0000000001AAA",
            stages: STAGES.get_or_init(OpportunityStage::standard),
            probability_follows_stage: true,
        }
    }

    #[test]
    fn writes_check_fields_uniqueness_and_stamp() {
        let mut w = world();
        let (mut locks, validation) = (BTreeMap::new(), BTreeMap::new());
        let values = vec!["Linked".to_string()];
        let mut r = rules(&mut locks, &validation, &values);
        let mut undo = Vec::new();
        let body = |v: Value| v.as_object().unwrap().clone();
        let globex = "001D000000IomazIAB";
        let err = |w: &mut World, r: &mut WriteRules, b: Value| {
            w.update(Object::Account, globex, &body(b), r, &mut Vec::new())
                .unwrap_err()
                .code
        };
        assert_eq!(err(&mut w, &mut r, json!({"Nope__c": 1})), "INVALID_FIELD");
        assert_eq!(
            err(&mut w, &mut r, json!({"SystemModstamp": "x"})),
            "INVALID_FIELD_FOR_INSERT_UPDATE"
        );
        assert_eq!(
            err(&mut w, &mut r, json!({"Zendesk_Sync_Status__c": "Bogus"})),
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
        );
        assert_eq!(
            err(&mut w, &mut r, json!({"Zendesk_Org_ID__c": "42"})),
            "DUPLICATE_VALUE"
        );
        // The deleted loser still holds "7" in the unique index.
        assert_eq!(
            err(&mut w, &mut r, json!({"Zendesk_Org_ID__c": "7"})),
            "DUPLICATE_VALUE"
        );
        assert_eq!(
            err(&mut w, &mut r, json!({"Zendesk_Org_ID__c": "x".repeat(31)})),
            "STRING_TOO_LONG"
        );
        assert_eq!(
            err(
                &mut w,
                &mut r,
                json!({"Last_Zendesk_Sync_At__c": "yesterday"})
            ),
            "JSON_PARSER_ERROR"
        );

        let before = w.accounts.rows[globex]["SystemModstamp"].clone();
        let done = w
            .update(
                Object::Account,
                &globex[..15],
                &body(
                    json!({"Zendesk_Org_ID__c": "99", "zendesk_sync_status__c": "Linked",
                    "Last_Zendesk_Sync_At__c": "2026-01-01T00:00:00Z"}),
                ),
                &mut r,
                &mut undo,
            )
            .unwrap();
        assert_eq!(done.fields["Zendesk_Org_ID__c"].old, Value::Null);
        assert_eq!(done.fields["Zendesk_Sync_Status__c"].new, "Linked");
        assert_eq!(
            done.fields["Last_Zendesk_Sync_At__c"].new,
            "2026-01-01T00:00:00.000+0000"
        );
        let row = &w.accounts.rows[globex];
        assert_ne!(row["SystemModstamp"], before);
        assert_eq!(row["SystemModstamp"], row["LastModifiedDate"]);
        assert_eq!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE Zendesk_Org_ID__c = '99'",
                false
            ),
            vec![globex]
        );
        w.undo(undo);
        assert!(
            ids_of(
                &w,
                "SELECT Id FROM Account WHERE Zendesk_Org_ID__c = '99'",
                false
            )
            .is_empty()
        );
        assert_eq!(w.accounts.rows[globex]["SystemModstamp"], before);
    }

    #[test]
    fn a_write_advances_even_a_future_modstamp() {
        let seed: SalesforceSeed = serde_json::from_value(json!({"accounts": [
            {"Id": "001D000000IRFma", "SystemModstamp": "2999-01-01T00:00:00.000+0000"}
        ]}))
        .unwrap();
        let mut w = World::load(&seed).unwrap();
        let (mut locks, validation) = (BTreeMap::new(), BTreeMap::new());
        let mut r = rules(&mut locks, &validation, &[]);
        let body = json!({"Zendesk_Domain__c": "acme.com"})
            .as_object()
            .unwrap()
            .clone();
        let done = w
            .update(
                Object::Account,
                "001D000000IRFma",
                &body,
                &mut r,
                &mut Vec::new(),
            )
            .unwrap();
        assert_eq!(done.system_modstamp, "2999-01-01T00:00:00.001+0000");
    }

    #[test]
    fn deleted_locked_and_validated_records_refuse_writes() {
        let mut w = world();
        let acme = "001D000000IRFmaIAH".to_string();
        let mut locks = BTreeMap::from([(acme.clone(), 1)]);
        let validation = BTreeMap::from([(
            "001D000000IomazIAB".to_string(),
            "Website is required".to_string(),
        )]);
        let mut r = rules(&mut locks, &validation, &[]);
        let b = json!({"Zendesk_Domain__c": "acme.com"})
            .as_object()
            .unwrap()
            .clone();
        let mut undo = Vec::new();
        let e = w
            .update(Object::Account, &acme, &b, &mut r, &mut undo)
            .unwrap_err();
        assert_eq!(e.code, "UNABLE_TO_LOCK_ROW");
        // The lock was for one write only.
        assert!(
            w.update(Object::Account, &acme, &b, &mut r, &mut undo)
                .is_ok()
        );
        let e = w
            .update(Object::Account, "001D000000IomazIAB", &b, &mut r, &mut undo)
            .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Website is required")
        );
        let e = w
            .update(Object::Account, "001D000000IqhSLIAZ", &b, &mut r, &mut undo)
            .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (404, "ENTITY_IS_DELETED"));
        let e = w
            .update(Object::Account, "006D000000IqhSL", &b, &mut r, &mut undo)
            .unwrap_err();
        assert_eq!(e.code, "MALFORMED_ID");
    }
}
