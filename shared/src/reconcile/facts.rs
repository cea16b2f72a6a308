//! [`AccountFacts`] from an Account, decided with the contract and the mapping: the one builder
//! the nightly reconcile and `orglink audit` share.
//!
//! The reviewed-domain rule needs what orglink last wrote to `Zendesk_Domain__c` (its link
//! record) to tell its own value from a person's. A caller without link records (the audit)
//! passes `None`: every reviewed domain that disagrees with Website then reads as a person's.

use crate::contract::{Config, DomainDecision, reviewed_domain_decision};
use crate::domain::{Domain, DomainPolicy};
use crate::model::Account;

use super::AccountFacts;

impl AccountFacts {
    /// The facts of `account`, with `last_written` the reviewed domain orglink last wrote, if
    /// known.
    pub fn from_account(
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

    /// Whether the diff needs this account: it should be linked, holds a link, or is deleted
    /// or merged (its organizations may be orphaned, and a merge tells the survivor which keys
    /// are its own).
    pub fn matters(&self) -> bool {
        self.eligible
            || self.is_deleted
            || self.master_record_id.is_some()
            || self
                .stored_org_id
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AccountId;

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
        let persons = AccountFacts::from_account(&config, &policy, &a, None);
        assert!(persons.eligible && persons.matters());
        assert!(!persons.name.contains('|'));
        assert_eq!(persons.domain.as_ref().unwrap().as_str(), "acme-old.com");
        assert_eq!(persons.website_disagrees.as_deref(), Some("acme.com"));

        let written = Domain::parse("acme-old.com").unwrap();
        let own = AccountFacts::from_account(&config, &policy, &a, Some(&written));
        assert_eq!(own.domain.as_ref().unwrap().as_str(), "acme.com");
        assert_eq!(own.website_disagrees, None);
    }

    #[test]
    fn prospects_without_a_link_do_not_matter() {
        let config = Config::embedded_default();
        let policy = DomainPolicy::default();
        let mut a = account();
        a.account_type = Some("Prospect".into());
        a.stored_org_id = None;
        assert!(!AccountFacts::from_account(&config, &policy, &a, None).matters());
        a.is_deleted = true;
        assert!(AccountFacts::from_account(&config, &policy, &a, None).matters());
        let mut unusable = account();
        unusable.website = Some("https://gmail.com".into());
        let f = AccountFacts::from_account(&config, &policy, &unusable, None);
        assert!(f.unusable_website.is_some(), "{f:?}");
    }
}
