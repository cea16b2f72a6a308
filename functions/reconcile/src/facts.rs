//! Account facts for the diff. They are built by `AccountFacts::from_account` (shared with
//! `orglink audit`); what is reconcile's own is where the last-written reviewed domain comes
//! from.
//!
//! The reviewed-domain rule needs what orglink last wrote to `Zendesk_Domain__c` (the link
//! record) to tell its own value from a person's. Reading a link record per account would cost a
//! DynamoDB read for each of a million accounts, so the facts are first computed without it and
//! only an account whose reviewed domain then disagrees with Website (rare) has its link record
//! read: if orglink wrote that value, Website wins (a repair), otherwise it is domain drift.

use orglink_shared::contract::LinkField;
use orglink_shared::domain::Domain;

/// The reviewed domain a link record says orglink wrote, if it is a domain.
pub fn written_domain(
    written_salesforce: &std::collections::BTreeMap<String, String>,
) -> Option<Domain> {
    written_salesforce
        .get(LinkField::ZendeskDomain.api_name())
        .and_then(|d| Domain::parse(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_reviewed_domain_is_read_from_the_link_record() {
        let map = std::collections::BTreeMap::from([(
            "Zendesk_Domain__c".to_string(),
            "acme-old.com".to_string(),
        )]);
        assert_eq!(written_domain(&map), Domain::parse("acme-old.com").ok());
        let junk = std::collections::BTreeMap::from([(
            "Zendesk_Domain__c".to_string(),
            "not a domain".to_string(),
        )]);
        assert_eq!(written_domain(&junk), None);
    }
}
