//! The Zendesk account's organizations: records, their uniqueness rules and the indexes that
//! serve lookups. Pure: no I/O, the caller passes the time in.
//!
//! Seeding may hold what the live API refuses (duplicate names or external ids from history),
//! so every index is a multi-map and lookups return every match.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::IncrementalFullSecond;

/// One organization as Zendesk stores it (the fields orglink reads or writes; unknown seed
/// fields are dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    pub id: u64,
    pub name: String,
    pub external_id: Option<String>,
    pub domain_names: Vec<String>,
    pub details: Option<String>,
    pub notes: Option<String>,
    pub group_id: Option<u64>,
    pub shared_tickets: bool,
    pub shared_comments: bool,
    pub tags: Vec<String>,
    pub organization_fields: Map<String, Value>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// A field whose value a write changed (for the write log and webhook events).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    pub field: String,
    pub old: Value,
    pub new: Value,
}

/// One validation failure, in the shape of Zendesk's `details` entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub field: &'static str,
    pub description: String,
    pub error: &'static str,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrgError {
    #[error("organization not found")]
    NotFound,
    #[error("record invalid")]
    Invalid(Vec<Invalid>),
    #[error("bad request: {0}")]
    BadRequest(String),
}

/// Rules that are UNVERIFIED in the reference and so switchable.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub name_unique_case_insensitive: bool,
}

/// The writable fields of an organization as a request body gives them (`None` = not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrgInput {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub external_id: Option<Option<String>>,
    pub domain_names: Option<Vec<String>>,
    pub details: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub group_id: Option<Option<u64>>,
    pub shared_tickets: Option<bool>,
    pub shared_comments: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub organization_fields: Option<Map<String, Value>>,
}

impl OrgInput {
    /// Reads `{"name":..,...}` (the object inside `{"organization":{...}}`).
    pub fn parse(v: &Value) -> Result<Self, OrgError> {
        let obj = v
            .as_object()
            .ok_or_else(|| OrgError::BadRequest("organization must be an object".into()))?;
        let bad = |f: &str| OrgError::BadRequest(format!("{f} has the wrong type"));
        let mut input = OrgInput::default();
        for (k, val) in obj {
            match k.as_str() {
                "id" => input.id = Some(id_value(val).ok_or_else(|| bad("id"))?),
                "name" => input.name = Some(string_value(val).ok_or_else(|| bad("name"))?),
                "external_id" => {
                    input.external_id =
                        Some(nullable_id_string(val).ok_or_else(|| bad("external_id"))?)
                }
                "domain_names" => {
                    input.domain_names = Some(string_list(val).ok_or_else(|| bad("domain_names"))?)
                }
                "details" => {
                    input.details = Some(nullable_string(val).ok_or_else(|| bad("details"))?)
                }
                "notes" => input.notes = Some(nullable_string(val).ok_or_else(|| bad("notes"))?),
                "group_id" => {
                    input.group_id = Some(if val.is_null() {
                        None
                    } else {
                        Some(id_value(val).ok_or_else(|| bad("group_id"))?)
                    })
                }
                "shared_tickets" => {
                    input.shared_tickets = Some(val.as_bool().ok_or_else(|| bad("shared_tickets"))?)
                }
                "shared_comments" => {
                    input.shared_comments =
                        Some(val.as_bool().ok_or_else(|| bad("shared_comments"))?)
                }
                "tags" => input.tags = Some(string_list(val).ok_or_else(|| bad("tags"))?),
                "organization_fields" => {
                    input.organization_fields = Some(match val {
                        Value::Null => Map::new(),
                        Value::Object(m) => m.clone(),
                        _ => return Err(bad("organization_fields")),
                    })
                }
                // Read-only or unknown fields are ignored, as the API does.
                _ => {}
            }
        }
        Ok(input)
    }
}

fn string_value(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn nullable_string(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        _ => None,
    }
}

/// external_id is a string; Zendesk turns a number into its string form. Empty means none.
fn nullable_id_string(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Null => Some(None),
        Value::String(s) if s.trim().is_empty() => Some(None),
        Value::String(s) => Some(Some(s.clone())),
        Value::Number(n) => Some(Some(n.to_string())),
        _ => None,
    }
}

fn id_value(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Null => Some(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => None,
    }
}

/// Zendesk stores tags lowercased, with spaces turned into underscores.
fn normalize_tags(tags: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        for part in t.split_whitespace() {
            let tag = part.to_lowercase();
            if !out.contains(&tag) {
                out.push(tag);
            }
        }
    }
    out
}

pub fn format_time(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

pub fn parse_time(s: &str) -> Option<i64> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

impl Org {
    /// Builds a record from a seed (a record as the real API returns it). Lenient: a seed may
    /// hold history the live API would now refuse.
    pub fn from_seed(v: &Value, now: i64) -> Result<Self, String> {
        let id = v
            .get("id")
            .and_then(id_value)
            .ok_or("organization without a numeric id")?;
        let input = OrgInput::parse(v).map_err(|e| format!("organization {id}: {e}"))?;
        let time_of = |k: &str| v.get(k).and_then(Value::as_str).and_then(parse_time);
        let created_at = time_of("created_at").unwrap_or(now);
        Ok(Org {
            id,
            name: input
                .name
                .ok_or_else(|| format!("organization {id} has no name"))?,
            external_id: input.external_id.flatten(),
            domain_names: input.domain_names.unwrap_or_default(),
            details: input.details.flatten(),
            notes: input.notes.flatten(),
            group_id: input.group_id.flatten(),
            shared_tickets: input.shared_tickets.unwrap_or(false),
            shared_comments: input.shared_comments.unwrap_or(false),
            tags: input.tags.unwrap_or_default(),
            organization_fields: input.organization_fields.unwrap_or_default(),
            created_at,
            updated_at: time_of("updated_at").unwrap_or(created_at),
        })
    }

    /// The API representation; `base` is the scheme and host the client used.
    pub fn to_json(&self, base: &str) -> Value {
        json!({
            "url": format!("{base}/api/v2/organizations/{}.json", self.id),
            "id": self.id,
            "name": self.name,
            "shared_tickets": self.shared_tickets,
            "shared_comments": self.shared_comments,
            "external_id": self.external_id,
            "created_at": format_time(self.created_at),
            "updated_at": format_time(self.updated_at),
            "domain_names": self.domain_names,
            "details": self.details,
            "notes": self.notes,
            "group_id": self.group_id,
            "tags": self.tags,
            "organization_fields": self.organization_fields,
        })
    }

    /// Applies the given fields; returns what changed. Validation happens before.
    fn apply(&mut self, input: &OrgInput) -> Vec<FieldChange> {
        let mut changes = Vec::new();
        fn set<T: PartialEq + Clone + Into<Value>>(
            changes: &mut Vec<FieldChange>,
            field: &str,
            slot: &mut T,
            new: &Option<T>,
        ) {
            if let Some(new) = new
                && slot != new
            {
                changes.push(FieldChange {
                    field: field.to_string(),
                    old: slot.clone().into(),
                    new: new.clone().into(),
                });
                *slot = new.clone();
            }
        }
        set(&mut changes, "name", &mut self.name, &input.name);
        set(
            &mut changes,
            "external_id",
            &mut self.external_id,
            &input.external_id,
        );
        // domain_names: an update overwrites the whole array (documented).
        set(
            &mut changes,
            "domain_names",
            &mut self.domain_names,
            &input.domain_names,
        );
        set(&mut changes, "details", &mut self.details, &input.details);
        set(&mut changes, "notes", &mut self.notes, &input.notes);
        set(
            &mut changes,
            "group_id",
            &mut self.group_id,
            &input.group_id,
        );
        set(
            &mut changes,
            "shared_tickets",
            &mut self.shared_tickets,
            &input.shared_tickets,
        );
        set(
            &mut changes,
            "shared_comments",
            &mut self.shared_comments,
            &input.shared_comments,
        );
        let tags = input.tags.clone().map(normalize_tags);
        set(&mut changes, "tags", &mut self.tags, &tags);
        // Custom field values merge by key: a key not sent keeps its value.
        if let Some(fields) = &input.organization_fields {
            for (k, v) in fields {
                let old = self
                    .organization_fields
                    .get(k)
                    .cloned()
                    .unwrap_or(Value::Null);
                if &old != v {
                    changes.push(FieldChange {
                        field: format!("organization_fields.{k}"),
                        old,
                        new: v.clone(),
                    });
                    self.organization_fields.insert(k.clone(), v.clone());
                }
            }
        }
        changes
    }
}

/// A multi-map from a lowercased key to the organizations holding it.
#[derive(Debug, Default)]
struct MultiIndex(HashMap<String, BTreeSet<u64>>);

impl MultiIndex {
    fn insert(&mut self, key: &str, id: u64) {
        self.0.entry(key.to_lowercase()).or_default().insert(id);
    }
    fn remove(&mut self, key: &str, id: u64) {
        let k = key.to_lowercase();
        if let Some(set) = self.0.get_mut(&k) {
            set.remove(&id);
            if set.is_empty() {
                self.0.remove(&k);
            }
        }
    }
    fn get(&self, key: &str) -> Vec<u64> {
        self.0
            .get(&key.to_lowercase())
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// A page of the time-based organization export: the records (with `deleted_at` for a
/// tombstone), where the next page starts, and whether this one reached the newest change.
#[derive(Debug)]
pub struct ExportPage<'a> {
    pub items: Vec<(&'a Org, Option<i64>)>,
    pub end_time: i64,
    pub end_of_stream: bool,
}

/// The organizations of one Zendesk account, indexed.
#[derive(Debug, Default)]
pub struct Directory {
    orgs: BTreeMap<u64, Org>,
    by_external_id: MultiIndex,
    by_name: MultiIndex,
    /// (updated_at, id) of live and deleted organizations, for the incremental export.
    by_updated: BTreeSet<(i64, u64)>,
    /// Deleted organizations (the incremental export may list them: switch).
    deleted: BTreeMap<u64, (Org, i64)>,
    next_id: u64,
}

/// Ids Zendesk assigns are large (13 digits today); new ones start above this.
const FIRST_NEW_ID: u64 = 360_000_000_000;

impl Directory {
    pub fn new() -> Self {
        Self {
            next_id: FIRST_NEW_ID,
            ..Default::default()
        }
    }

    pub fn len(&self) -> usize {
        self.orgs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orgs.is_empty()
    }

    /// Loads a seeded record as it is (no uniqueness checks: seeds may hold legacy duplicates).
    pub fn seed(&mut self, org: Org) {
        if let Some(old) = self.orgs.remove(&org.id) {
            self.unindex(&old);
        }
        self.next_id = self.next_id.max(org.id + 1);
        self.index(&org);
        self.orgs.insert(org.id, org);
    }

    fn index(&mut self, org: &Org) {
        if let Some(e) = &org.external_id {
            self.by_external_id.insert(e, org.id);
        }
        self.by_name.insert(&org.name, org.id);
        self.by_updated.insert((org.updated_at, org.id));
    }

    fn unindex(&mut self, org: &Org) {
        if let Some(e) = &org.external_id {
            self.by_external_id.remove(e, org.id);
        }
        self.by_name.remove(&org.name, org.id);
        self.by_updated.remove(&(org.updated_at, org.id));
    }

    pub fn get(&self, id: u64) -> Option<&Org> {
        self.orgs.get(&id)
    }

    /// Every organization whose external_id equals `external_id`, ignoring case.
    pub fn with_external_id(&self, external_id: &str) -> Vec<&Org> {
        self.by_external_id
            .get(external_id)
            .into_iter()
            .filter_map(|id| self.orgs.get(&id))
            .collect()
    }

    /// Every organization whose name equals `name`, ignoring case.
    pub fn with_name(&self, name: &str) -> Vec<&Org> {
        self.by_name
            .get(name)
            .into_iter()
            .filter_map(|id| self.orgs.get(&id))
            .collect()
    }

    pub fn all(&self) -> impl Iterator<Item = &Org> {
        self.orgs.values()
    }

    /// Up to `size` organizations with ids above `after`, and whether more follow.
    pub fn page_after(&self, after: Option<u64>, size: usize) -> (Vec<&Org>, bool) {
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut it = self.orgs.range(start..).map(|(_, o)| o);
        let page: Vec<&Org> = it.by_ref().take(size).collect();
        let more = it.next().is_some();
        (page, more)
    }

    /// Up to `size` organizations with ids below `before` (in ascending order), and whether
    /// more precede them.
    pub fn page_before(&self, before: u64, size: usize) -> (Vec<&Org>, bool) {
        let mut it = self.orgs.range(..before).rev().map(|(_, o)| o);
        let mut page: Vec<&Org> = it.by_ref().take(size).collect();
        let more = it.next().is_some();
        page.reverse();
        (page, more)
    }

    /// The offset form: page `page` (1-based) of `per_page`.
    pub fn page_offset(&self, page: usize, per_page: usize) -> Vec<&Org> {
        self.orgs
            .values()
            .skip((page - 1) * per_page)
            .take(per_page)
            .collect()
    }

    /// Organizations (and, when asked, deleted ones with their deletion time) changed at or after
    /// `start` and before `until`, oldest first, at most `limit`.
    pub fn changed_since(
        &self,
        start: i64,
        until: i64,
        limit: usize,
        include_deleted: bool,
    ) -> Vec<(&Org, Option<i64>)> {
        self.by_updated
            .range((start, 0)..(until, 0))
            .filter_map(|(_, id)| match self.orgs.get(id) {
                Some(o) => Some((o, None)),
                None if include_deleted => self.deleted.get(id).map(|(o, at)| (o, Some(*at))),
                None => None,
            })
            .take(limit)
            .collect()
    }

    /// One page of the time-based export from `start` to `newest` (inclusive): up to `limit`
    /// records in (updated_at, id) order. A page that may have left records behind ends at its
    /// last record's second and the next page starts there, so that second's records come
    /// again (Zendesk documents duplicates). A full page all of `start`'s second would then
    /// come back unchanged forever; `full_second` says what happens instead (UNVERIFIED).
    pub fn export_page(
        &self,
        start: i64,
        newest: i64,
        limit: usize,
        include_deleted: bool,
        full_second: IncrementalFullSecond,
    ) -> ExportPage<'_> {
        let limit = limit.max(1);
        let items = self.changed_since(start, newest + 1, limit, include_deleted);
        if items.len() < limit {
            return ExportPage {
                items,
                end_time: newest.max(start),
                end_of_stream: true,
            };
        }
        let last = items
            .last()
            .map_or(start, |(o, at)| at.unwrap_or(o.updated_at));
        if last > start {
            return ExportPage {
                items,
                end_time: last,
                end_of_stream: false,
            };
        }
        match full_second {
            IncrementalFullSecond::ExtendPage => {
                let end_time = start + 1;
                ExportPage {
                    items: self.changed_since(start, end_time, usize::MAX, include_deleted),
                    end_time,
                    end_of_stream: end_time > newest
                        || self
                            .changed_since(end_time, newest + 1, 1, include_deleted)
                            .is_empty(),
                }
            }
            IncrementalFullSecond::RepeatStart => ExportPage {
                items,
                end_time: start,
                end_of_stream: false,
            },
        }
    }

    fn validate(&self, org: &Org, self_id: Option<u64>, rules: Rules) -> Result<(), OrgError> {
        let mut problems = Vec::new();
        let name = org.name.trim();
        if name.is_empty() {
            problems.push(Invalid {
                field: "name",
                description: "Name cannot be blank".into(),
                // The documented blank-name body uses the older `type` key (gate::invalid_body).
                error: "blank",
            });
        } else if name.contains('|') {
            // Help Center: "Don't include a pipe (|) character ... the organization won't be created."
            problems.push(Invalid {
                field: "name",
                description: format!("Name: {name} is invalid"),
                error: "InvalidValue",
            });
        } else {
            let clash = self.with_name(name).iter().any(|o| {
                Some(o.id) != self_id && (rules.name_unique_case_insensitive || o.name == name)
            });
            if clash {
                problems.push(Invalid {
                    field: "name",
                    description: format!("Name: {name} has already been taken"),
                    error: "DuplicateValue",
                });
            }
        }
        if let Some(ext) = &org.external_id
            && self
                .with_external_id(ext)
                .iter()
                .any(|o| Some(o.id) != self_id)
        {
            problems.push(Invalid {
                field: "external_id",
                description: format!("External: {ext} has already been taken"),
                error: "DuplicateValue",
            });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(OrgError::Invalid(problems))
        }
    }

    /// Creates an organization (the id in the input, if any, is ignored as the API does).
    pub fn create(&mut self, input: &OrgInput, now: i64, rules: Rules) -> Result<Org, OrgError> {
        let mut org = Org {
            id: self.next_id,
            name: String::new(),
            external_id: None,
            domain_names: Vec::new(),
            details: None,
            notes: None,
            group_id: None,
            shared_tickets: false,
            shared_comments: false,
            tags: Vec::new(),
            organization_fields: Map::new(),
            created_at: now,
            updated_at: now,
        };
        org.apply(input);
        org.name = org.name.trim().to_string();
        self.validate(&org, None, rules)?;
        self.next_id += 1;
        self.index(&org);
        self.orgs.insert(org.id, org.clone());
        Ok(org)
    }

    /// Updates organization `id` with the given fields; returns the record and what changed.
    pub fn update(
        &mut self,
        id: u64,
        input: &OrgInput,
        now: i64,
        rules: Rules,
    ) -> Result<(Org, Vec<FieldChange>), OrgError> {
        let current = self.orgs.get(&id).ok_or(OrgError::NotFound)?;
        let mut next = current.clone();
        let mut changes = next.apply(input);
        if changes.is_empty() {
            return Ok((next, changes));
        }
        next.name = next.name.trim().to_string();
        self.validate(&next, Some(id), rules)?;
        let old = self.orgs.remove(&id).expect("present");
        self.unindex(&old);
        next.updated_at = now;
        changes.retain(|c| c.old != c.new);
        self.index(&next);
        self.orgs.insert(id, next.clone());
        Ok((next, changes))
    }

    /// Which organization `create_or_update` would update: by id, else by external_id (never by
    /// name — documented). Legacy duplicates of the external id: the oldest (lowest id).
    pub fn upsert_target(&self, input: &OrgInput) -> Option<u64> {
        if let Some(id) = input.id
            && self.orgs.contains_key(&id)
        {
            return Some(id);
        }
        let ext = input.external_id.clone().flatten()?;
        self.with_external_id(&ext).first().map(|o| o.id)
    }

    pub fn delete(&mut self, id: u64, now: i64) -> Result<Org, OrgError> {
        let org = self.orgs.remove(&id).ok_or(OrgError::NotFound)?;
        self.unindex(&org);
        // The deletion counts as a change for the incremental export's tombstones.
        self.by_updated.insert((now, id));
        self.deleted.insert(id, (org.clone(), now));
        Ok(org)
    }

    /// Deleted organizations with their deletion time (for the state dump).
    pub fn deleted(&self) -> impl Iterator<Item = (&Org, i64)> {
        self.deleted.values().map(|(o, at)| (o, *at))
    }
}

/// What the search index knows of one organization.
type SearchDoc = (Option<String>, String);

/// Zendesk's organization search reads an index that lags the database. Changes become
/// visible `lag` after the write.
#[derive(Debug, Default)]
pub struct SearchIndex {
    by_external_id: MultiIndex,
    by_name: MultiIndex,
    docs: HashMap<u64, SearchDoc>,
    /// Changes not yet visible, by (due time, sequence) so a shorter lag set later still
    /// surfaces its changes on time.
    pending: BTreeMap<(Instant, u64), (u64, Option<SearchDoc>)>,
    seq: u64,
}

impl SearchIndex {
    pub fn doc(org: &Org) -> SearchDoc {
        (org.external_id.clone(), org.name.clone())
    }

    /// Records that organization `id` now looks like `doc` (None = deleted), visible from `due`.
    pub fn record(&mut self, due: Instant, id: u64, doc: Option<SearchDoc>) {
        self.seq += 1;
        self.pending.insert((due, self.seq), (id, doc));
    }

    /// Applies a change immediately (seeding).
    pub fn put_now(&mut self, id: u64, doc: Option<SearchDoc>) {
        if let Some((ext, name)) = self.docs.remove(&id) {
            if let Some(e) = ext {
                self.by_external_id.remove(&e, id);
            }
            self.by_name.remove(&name, id);
        }
        if let Some((ext, name)) = doc {
            if let Some(e) = &ext {
                self.by_external_id.insert(e, id);
            }
            self.by_name.insert(&name, id);
            self.docs.insert(id, (ext, name));
        }
    }

    fn catch_up(&mut self, now: Instant) {
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (id, doc) = entry.remove();
            self.put_now(id, doc);
        }
    }

    pub fn external_id(&mut self, now: Instant, external_id: &str) -> Vec<u64> {
        self.catch_up(now);
        self.by_external_id.get(external_id)
    }

    pub fn name(&mut self, now: Instant, name: &str) -> Vec<u64> {
        self.catch_up(now);
        self.by_name.get(name)
    }

    pub fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const RULES: Rules = Rules {
        name_unique_case_insensitive: true,
    };

    fn input(v: Value) -> OrgInput {
        OrgInput::parse(&v).unwrap()
    }

    fn seeded(id: u64, name: &str, ext: Option<&str>) -> Org {
        Org::from_seed(&json!({"id": id, "name": name, "external_id": ext}), 0).unwrap()
    }

    #[test]
    fn external_id_is_unique_ignoring_case() {
        let mut d = Directory::new();
        d.create(
            &input(json!({"name":"Acme","external_id":"001ABC"})),
            1,
            RULES,
        )
        .unwrap();
        let err = d
            .create(
                &input(json!({"name":"Other","external_id":"001abc"})),
                1,
                RULES,
            )
            .unwrap_err();
        let OrgError::Invalid(p) = err else {
            panic!("{err:?}")
        };
        assert_eq!(p[0].field, "external_id");
        assert_eq!(d.with_external_id("001AbC").len(), 1);
    }

    #[test]
    fn duplicate_name_is_refused_with_the_documented_description() {
        let mut d = Directory::new();
        d.create(&input(json!({"name":"Lorem Ipsum"})), 1, RULES)
            .unwrap();
        let err = d
            .create(&input(json!({"name":"Lorem Ipsum"})), 1, RULES)
            .unwrap_err();
        assert_eq!(
            err,
            OrgError::Invalid(vec![Invalid {
                field: "name",
                description: "Name: Lorem Ipsum has already been taken".into(),
                error: "DuplicateValue"
            }])
        );
        // Case-insensitive by default; the switch makes it case-sensitive.
        assert!(
            d.create(&input(json!({"name":"lorem ipsum"})), 1, RULES)
                .is_err()
        );
        let sensitive = Rules {
            name_unique_case_insensitive: false,
        };
        assert!(
            d.create(&input(json!({"name":"lorem ipsum"})), 1, sensitive)
                .is_ok()
        );
    }

    #[test]
    fn pipe_and_blank_names_are_refused() {
        let mut d = Directory::new();
        assert!(d.create(&input(json!({"name":"A|B"})), 1, RULES).is_err());
        assert!(d.create(&input(json!({"name":"  "})), 1, RULES).is_err());
        assert!(d.create(&input(json!({})), 1, RULES).is_err());
        assert!(d.is_empty());
    }

    #[test]
    fn seeds_may_hold_legacy_duplicates_and_lookups_return_all() {
        let mut d = Directory::new();
        d.seed(seeded(5, "Acme", Some("k1")));
        d.seed(seeded(6, "acme", Some("K1")));
        assert_eq!(d.with_external_id("k1").len(), 2);
        assert_eq!(d.with_name("ACME").len(), 2);
        // create_or_update picks the oldest of the duplicates.
        assert_eq!(
            d.upsert_target(&input(json!({"external_id":"k1"}))),
            Some(5)
        );
        // New ids never collide with seeded ones.
        let o = d.create(&input(json!({"name":"New"})), 1, RULES).unwrap();
        assert!(o.id > 6);
    }

    #[test]
    fn update_overwrites_domains_merges_custom_fields_and_reports_changes() {
        let mut d = Directory::new();
        let o = d
            .create(
                &input(json!({"name":"Acme","domain_names":["a.com","b.com"],
                    "organization_fields":{"tier":"gold","region":"eu"}})),
                10,
                RULES,
            )
            .unwrap();
        let (after, changes) = d
            .update(
                o.id,
                &input(
                    json!({"domain_names":["c.com"],"organization_fields":{"tier":"silver"},
                    "tags":["Big Customer"]}),
                ),
                20,
                RULES,
            )
            .unwrap();
        assert_eq!(after.domain_names, vec!["c.com"]);
        assert_eq!(after.organization_fields["region"], "eu");
        assert_eq!(after.organization_fields["tier"], "silver");
        assert_eq!(after.tags, vec!["big", "customer"]);
        assert_eq!(after.updated_at, 20);
        let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["domain_names", "tags", "organization_fields.tier"]
        );
        // A no-op update changes nothing, not even updated_at.
        let (same, none) = d
            .update(o.id, &input(json!({"name":"Acme"})), 30, RULES)
            .unwrap();
        assert!(none.is_empty());
        assert_eq!(same.updated_at, 20);
    }

    #[test]
    fn renaming_to_own_name_in_other_case_is_allowed() {
        let mut d = Directory::new();
        let o = d.create(&input(json!({"name":"Acme"})), 1, RULES).unwrap();
        assert!(
            d.update(o.id, &input(json!({"name":"ACME"})), 2, RULES)
                .is_ok()
        );
        assert_eq!(d.with_name("acme").len(), 1);
    }

    #[test]
    fn pages_cover_every_org_once() {
        let mut d = Directory::new();
        for i in 1..=250 {
            d.seed(seeded(i, &format!("Org {i}"), None));
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (page, more) = d.page_after(after, 100);
            seen.extend(page.iter().map(|o| o.id));
            after = page.last().map(|o| o.id);
            if !more {
                break;
            }
        }
        assert_eq!(seen, (1..=250).collect::<Vec<_>>());
        let (before, more) = d.page_before(101, 100);
        assert_eq!(before.first().unwrap().id, 1);
        assert!(!more);
    }

    #[test]
    fn incremental_lists_changes_in_time_order_and_tombstones_on_request() {
        let mut d = Directory::new();
        let a = d.create(&input(json!({"name":"A"})), 100, RULES).unwrap();
        let b = d.create(&input(json!({"name":"B"})), 200, RULES).unwrap();
        d.update(a.id, &input(json!({"notes":"x"})), 300, RULES)
            .unwrap();
        let ids: Vec<u64> = d
            .changed_since(150, 1000, 10, false)
            .iter()
            .map(|(o, _)| o.id)
            .collect();
        assert_eq!(ids, vec![b.id, a.id]);
        d.delete(b.id, 400).unwrap();
        assert_eq!(d.changed_since(350, 1000, 10, false).len(), 0);
        let tomb = d.changed_since(350, 1000, 10, true);
        assert_eq!((tomb[0].0.id, tomb[0].1), (b.id, Some(400)));
    }

    #[test]
    fn a_full_export_page_of_one_second_is_extended_or_repeated_as_switched() {
        let mut d = Directory::new();
        // Five organizations changed in second 100, two in 101, one in 105.
        for (n, at) in [100, 100, 100, 100, 100, 101, 101, 105]
            .into_iter()
            .enumerate()
        {
            d.create(&input(json!({"name": format!("Org {n}")})), at, RULES)
                .unwrap();
        }
        let ids = |p: &ExportPage| p.items.iter().map(|(o, _)| o.id).collect::<Vec<_>>();
        let extend = IncrementalFullSecond::ExtendPage;
        // Pages of 3 from 100: the whole second, past the page size, then on from 101.
        let first = d.export_page(100, 200, 3, false, extend);
        assert_eq!(first.items.len(), 5);
        assert_eq!((first.end_time, first.end_of_stream), (101, false));
        // A page ending inside a later second ends there: the next page repeats 101.
        let second = d.export_page(95, 200, 6, false, extend);
        assert_eq!((second.items.len(), second.end_time), (6, 101));
        let third = d.export_page(101, 200, 3, false, extend);
        assert_eq!((third.end_time, third.end_of_stream), (105, false));
        assert!(ids(&second).contains(&ids(&third)[0]), "101 comes twice");
        // Every organization is read, each at least once, and the walk ends.
        let (mut start, mut seen, mut pages) = (0, std::collections::BTreeSet::new(), 0);
        loop {
            let p = d.export_page(start, 200, 2, false, extend);
            seen.extend(ids(&p));
            pages += 1;
            assert!(pages < 20, "the export loops");
            if p.end_of_stream {
                break;
            }
            start = p.end_time;
        }
        assert_eq!(seen.len(), 8);
        // The other setting: end_time stays at start_time, and the page stays at 3.
        let repeat = d.export_page(100, 200, 3, false, IncrementalFullSecond::RepeatStart);
        assert_eq!(repeat.items.len(), 3);
        assert_eq!((repeat.end_time, repeat.end_of_stream), (100, false));
        // The newest second extended: nothing newer may be asked for, so the stream ends.
        let newest = d.export_page(100, 100, 3, false, extend);
        assert_eq!((newest.items.len(), newest.end_of_stream), (5, true));
    }

    #[test]
    fn search_index_lags_writes() {
        let mut s = SearchIndex::default();
        let t0 = Instant::now();
        let org = seeded(1, "Acme", Some("K"));
        s.record(t0 + Duration::from_secs(5), 1, Some(SearchIndex::doc(&org)));
        assert!(s.external_id(t0, "k").is_empty());
        assert_eq!(s.external_id(t0 + Duration::from_secs(5), "k"), vec![1]);
        s.record(t0 + Duration::from_secs(10), 1, None);
        assert_eq!(s.name(t0 + Duration::from_secs(9), "acme"), vec![1]);
        assert!(s.name(t0 + Duration::from_secs(10), "acme").is_empty());
    }

    #[test]
    fn times_are_iso8601_utc_seconds() {
        assert_eq!(format_time(1_248_130_529), "2009-07-20T22:55:29Z");
        assert_eq!(parse_time("2009-07-20T22:55:29Z"), Some(1_248_130_529));
    }
}
