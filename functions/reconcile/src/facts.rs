//! What the diff needs to know about one account, decided with the contract and the mapping.
//!
//! The reviewed-domain rule needs what orglink last wrote to `Zendesk_Domain__c` (the link
//! record) to tell its own value from a person's. Reading a link record per account would cost a
//! DynamoDB read for each of a million accounts, so the facts are first computed without it and
//! only an account whose reviewed domain then disagrees with Website (rare) has its link record
//! read: if orglink wrote that value, Website wins (a repair), otherwise it is domain drift.

use orglink_shared::contract::{Config, DomainDecision, LinkField, reviewed_domain_decision};
use orglink_shared::domain::{Domain, DomainPolicy};
use orglink_shared::model::Account;
use orglink_shared::reconcile::AccountFacts;

/// The facts of `account`, with `last_written` the reviewed domain orglink last wrote, if known.
pub fn account_facts(
    config: &Config,
    policy: &DomainPolicy,
    account: &Account,
    last_written: Option<&Domain>,
) -> AccountFacts {
    let website = account
        .website
        .as_deref()
        .filter(|w| !w.trim().is_empty())
        .map(|w| policy.check_website(w));
    let website_domain = website.as_ref().and_then(|c| c.domain().cloned());
    let decision = reviewed_domain_decision(
        account.reviewed_domain.as_deref(),
        last_written,
        website_domain.as_ref(),
    );
    let mapping = config.mapping();
    AccountFacts {
        id: account.id.clone(),
        is_deleted: account.is_deleted,
        master_record_id: account.master_record_id.clone(),
        eligible: config.eligibility().evaluate(account).is_eligible(),
        name: mapping.org_name(account),
        suffixed_name: mapping.suffixed_org_name(account),
        domain: decision.effective(account.reviewed_domain.as_deref()),
        website_disagrees: match &decision {
            DomainDecision::Drift { website, .. } => Some(website.to_string()),
            _ => None,
        },
        unusable_website: website.as_ref().and_then(|c| c.unusable()).map(|u| {
            format!(
                "Website {:?}: {u}",
                account.website.as_deref().unwrap_or("")
            )
        }),
        stored_org_id: account.stored_org_id.clone(),
    }
}

/// The reviewed domain a link record says orglink wrote, if it is a domain.
pub fn written_domain(
    written_salesforce: &std::collections::BTreeMap<String, String>,
) -> Option<Domain> {
    written_salesforce
        .get(LinkField::ZendeskDomain.api_name())
        .and_then(|d| Domain::parse(d).ok())
}

/// Whether the diff needs this account: it should be linked, holds a link, or is deleted or
/// merged (its organizations may be orphaned, and a merge tells the survivor which keys are its
/// own).
pub fn matters(facts: &AccountFacts) -> bool {
    facts.eligible
        || facts.is_deleted
        || facts.master_record_id.is_some()
        || facts
            .stored_org_id
            .as_deref()
            .is_some_and(|s| !s.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use orglink_shared::ids::AccountId;

    fn account() -> Account {
        Account {
            id: AccountId::parse("001D000000IRFmaIAH").unwrap(),
            name: "Acme | Corp".into(),
            website: Some("https://www.acme.com/x".into()),
            reviewed_domain: Some("acme-old.com".into()),
            stored_org_id: Some("42".into()),
            sync_status: None,
            account_type: Some("Customer - Direct".into()),
            owner_email: None,
            is_deleted: false,
            master_record_id: None,
            has_closed_won: false,
            open_opportunities: vec![],
            system_modstamp: None,
        }
    }

    #[test]
    fn a_persons_reviewed_domain_is_drift_and_orglinks_own_follows_website() {
        let config = Config::embedded_default();
        let policy = DomainPolicy::default();
        let a = account();
        let persons = account_facts(&config, &policy, &a, None);
        assert!(persons.eligible && matters(&persons));
        assert!(!persons.name.contains('|'));
        assert_eq!(persons.domain.as_ref().unwrap().as_str(), "acme-old.com");
        assert_eq!(persons.website_disagrees.as_deref(), Some("acme.com"));

        let written = Domain::parse("acme-old.com").unwrap();
        let own = account_facts(&config, &policy, &a, Some(&written));
        assert_eq!(own.domain.as_ref().unwrap().as_str(), "acme.com");
        assert_eq!(own.website_disagrees, None);

        let map = std::collections::BTreeMap::from([(
            "Zendesk_Domain__c".to_string(),
            "acme-old.com".to_string(),
        )]);
        assert_eq!(written_domain(&map), Some(written));
    }

    #[test]
    fn prospects_without_a_link_do_not_matter() {
        let config = Config::embedded_default();
        let mut a = account();
        a.account_type = Some("Prospect".into());
        a.stored_org_id = None;
        let f = account_facts(&config, &DomainPolicy::default(), &a, None);
        assert!(!matters(&f));
        a.is_deleted = true;
        assert!(matters(&account_facts(
            &config,
            &DomainPolicy::default(),
            &a,
            None
        )));
    }
}
