//! Building [`Account`]s from SOQL records (relationship fields nested, as the API sends them).

use std::collections::HashMap;

use serde_json::Value;

use crate::contract::LinkField;
use crate::ids::AccountId;
use crate::model::{Account, OpenOpportunity};

/// The Account fields orglink reads, with the installed link fields.
pub(crate) fn account_fields(link_fields: &[LinkField]) -> Vec<String> {
    let mut fields: Vec<String> = [
        "Id",
        "Name",
        "Website",
        "Type",
        "Owner.Email",
        "IsDeleted",
        "MasterRecordId",
        "SystemModstamp",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for f in [
        LinkField::ZendeskOrgId,
        LinkField::ZendeskDomain,
        LinkField::ZendeskSyncStatus,
    ] {
        if link_fields.contains(&f) {
            fields.push(f.api_name().to_string());
        }
    }
    fields
}

pub(crate) const OPPORTUNITY_FIELDS: [&str; 5] =
    ["AccountId", "StageName", "Probability", "IsClosed", "IsWon"];

/// What an account's opportunities say, as far as eligibility needs.
#[derive(Debug, Default, Clone)]
pub(crate) struct OpportunityFacts {
    pub has_closed_won: bool,
    pub open: Vec<OpenOpportunity>,
}

/// Groups Opportunity records (`IsWon = true OR IsClosed = false`) by account.
pub(crate) fn group_opportunities(records: &[Value]) -> HashMap<AccountId, OpportunityFacts> {
    let mut by_account: HashMap<AccountId, OpportunityFacts> = HashMap::new();
    for r in records {
        let Some(account) = r
            .get("AccountId")
            .and_then(Value::as_str)
            .and_then(|s| AccountId::parse(s).ok())
        else {
            continue;
        };
        let facts = by_account.entry(account).or_default();
        if r.get("IsWon").and_then(Value::as_bool) == Some(true) {
            facts.has_closed_won = true;
        } else if r.get("IsClosed").and_then(Value::as_bool) == Some(false) {
            facts.open.push(OpenOpportunity {
                stage_name: r
                    .get("StageName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                probability: r.get("Probability").and_then(Value::as_f64),
            });
        }
    }
    by_account
}

/// An [`Account`] from an Account record and its opportunity facts. `Err` names what is
/// missing or malformed.
pub(crate) fn account_from_record(
    record: &Value,
    opps: Option<&OpportunityFacts>,
) -> Result<Account, String> {
    let text = |k: &str| record.get(k).and_then(Value::as_str).map(str::to_string);
    let id_text = text("Id").ok_or("an Account record without Id")?;
    let id = AccountId::parse(&id_text).map_err(|e| format!("Account Id {id_text:?}: {e}"))?;
    let name = text("Name").ok_or_else(|| format!("Account {id} without Name"))?;
    let owner_email = record
        .get("Owner")
        .filter(|o| !o.is_null())
        .and_then(|o| o.get("Email"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let master_record_id = match text("MasterRecordId") {
        None => None,
        Some(m) => Some(AccountId::parse(&m).map_err(|e| format!("MasterRecordId {m:?}: {e}"))?),
    };
    let opps = opps.cloned().unwrap_or_default();
    Ok(Account {
        id,
        name,
        website: text("Website"),
        reviewed_domain: text(LinkField::ZendeskDomain.api_name()),
        stored_org_id: text(LinkField::ZendeskOrgId.api_name()),
        sync_status: text(LinkField::ZendeskSyncStatus.api_name()),
        account_type: text("Type"),
        owner_email,
        is_deleted: record
            .get("IsDeleted")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        master_record_id,
        has_closed_won: opps.has_closed_won,
        open_opportunities: opps.open,
        system_modstamp: text("SystemModstamp"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builds_an_account_with_nested_owner_and_opportunities() {
        let rec = json!({
            "attributes": {"type": "Account", "url": "/services/data/v66.0/sobjects/Account/001D000000IRFmaIAH"},
            "Id": "001D000000IRFmaIAH", "Name": "Acme", "Website": "https://www.acme.com", "Type": "Customer - Direct",
            "Owner": {"attributes": {"type": "User"}, "Email": "owner@acme.com"},
            "IsDeleted": false, "MasterRecordId": null, "SystemModstamp": "2025-11-01T00:00:00.000+0000",
            "Zendesk_Org_ID__c": "123", "Zendesk_Domain__c": null, "Zendesk_Sync_Status__c": "Linked"
        });
        let opps = group_opportunities(&[
            json!({"AccountId": "001D000000IRFmaIAH", "StageName": "Closed Won", "Probability": 100, "IsClosed": true, "IsWon": true}),
            json!({"AccountId": "001D000000IRFmaIAH", "StageName": "Negotiation", "Probability": 80.0, "IsClosed": false, "IsWon": false}),
        ]);
        let id = AccountId::parse("001D000000IRFmaIAH").unwrap();
        let a = account_from_record(&rec, opps.get(&id)).unwrap();
        assert_eq!(a.owner_email.as_deref(), Some("owner@acme.com"));
        assert_eq!(a.stored_org_id.as_deref(), Some("123"));
        assert_eq!(a.reviewed_domain, None);
        assert!(a.has_closed_won);
        assert_eq!(
            a.open_opportunities,
            vec![OpenOpportunity {
                stage_name: "Negotiation".into(),
                probability: Some(80.0)
            }]
        );
        let no_owner = json!({"Id": "001D000000IRFmaIAH", "Name": "Acme", "Owner": null});
        assert_eq!(
            account_from_record(&no_owner, None).unwrap().owner_email,
            None
        );
        assert!(account_from_record(&json!({"Name": "x"}), None).is_err());
    }
}
