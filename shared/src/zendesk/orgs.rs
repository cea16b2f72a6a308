//! Reading organizations out of Zendesk's JSON, tolerant of the nulls the API sends
//! (`organization_fields: null`, `domain_names: null`) and of ids sent as strings.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{IncrementalPage, ZendeskError};
use crate::ids::OrgId;
use crate::model::Organization;

/// An [`Organization`] from one organization object. `Err` says what is missing.
pub fn org_from_json(v: &Value) -> Result<Organization, String> {
    let id = match v.get("id") {
        Some(Value::Number(n)) => n.as_u64().and_then(|n| OrgId::new(n).ok()),
        Some(Value::String(s)) => OrgId::parse(s).ok(),
        _ => None,
    }
    .ok_or("an organization without a usable id")?;
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("organization {id} without a name"))?
        .to_string();
    let strings = |k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let organization_fields: BTreeMap<String, Value> = v
        .get("organization_fields")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    Ok(Organization {
        id,
        name,
        external_id: v
            .get("external_id")
            .and_then(Value::as_str)
            .map(str::to_string),
        domain_names: strings("domain_names"),
        tags: strings("tags"),
        organization_fields,
        updated_at: v
            .get("updated_at")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn protocol(endpoint: &'static str, detail: String) -> ZendeskError {
    ZendeskError::Protocol { endpoint, detail }
}

/// `{"organization": {...}}`.
pub(crate) fn single(endpoint: &'static str, v: &Value) -> Result<Organization, ZendeskError> {
    let org = v
        .get("organization")
        .ok_or_else(|| protocol(endpoint, "no \"organization\" in the answer".into()))?;
    org_from_json(org).map_err(|d| protocol(endpoint, d))
}

/// `{"organizations": [...]}`.
pub(crate) fn list(endpoint: &'static str, v: &Value) -> Result<Vec<Organization>, ZendeskError> {
    v.get("organizations")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol(endpoint, "no \"organizations\" list in the answer".into()))?
        .iter()
        .map(|o| org_from_json(o).map_err(|d| protocol(endpoint, d)))
        .collect()
}

pub(crate) fn incremental_page(
    endpoint: &'static str,
    v: &Value,
) -> Result<IncrementalPage, ZendeskError> {
    let items = v
        .get("organizations")
        .and_then(Value::as_array)
        .ok_or_else(|| protocol(endpoint, "no \"organizations\" list in the export".into()))?;
    let mut organizations = Vec::new();
    let mut deleted = Vec::new();
    for item in items {
        let org = org_from_json(item).map_err(|d| protocol(endpoint, d))?;
        if item.get("deleted_at").is_some_and(|d| !d.is_null()) {
            deleted.push(org.id);
        } else {
            organizations.push(org);
        }
    }
    Ok(IncrementalPage {
        organizations,
        deleted,
        end_time: v
            .get("end_time")
            .and_then(Value::as_i64)
            .ok_or_else(|| protocol(endpoint, "no end_time in the export".into()))?,
        end_of_stream: v
            .get("end_of_stream")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_organizations_with_nulls_and_string_ids() {
        let o = org_from_json(
            &json!({"id": 35436, "name": "Acme", "external_id": null, "domain_names": null,
            "tags": ["a"], "organization_fields": null, "updated_at": "2009-07-20T22:55:29Z"}),
        )
        .unwrap();
        assert_eq!(o.id.get(), 35436);
        assert!(o.domain_names.is_empty() && o.organization_fields.is_empty());
        assert_eq!(o.tags, vec!["a".to_string()]);
        assert_eq!(
            org_from_json(&json!({"id": "6607619104125", "name": "X"}))
                .unwrap()
                .id
                .get(),
            6607619104125
        );
        assert!(org_from_json(&json!({"name": "X"})).is_err());
        let page = incremental_page(
            "zd.incremental",
            &json!({"organizations": [{"id": 1, "name": "A"}, {"id": 2, "name": "B", "deleted_at": "2025-01-01T00:00:00Z"}],
                    "end_time": 1700000000, "end_of_stream": true}),
        )
        .unwrap();
        assert_eq!(page.organizations.len(), 1);
        assert_eq!(page.deleted, vec![OrgId::new(2).unwrap()]);
    }
}
