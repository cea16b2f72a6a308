//! Candidate gathering for [`crate::resolution::resolve`], done one way by everyone who asks
//! Zendesk what an account could link to: the sync worker and `orglink trace --live`.
//!
//! - the account's key, in both id forms, and the keys of the accounts merged into it:
//!   `show_many` by external ids (Zendesk's database, never the lagging search index);
//! - the stored organization id and the organizations the mirror holds for the reviewed domain,
//!   confirmed live in one `show_many` by ids (only the ones the first call did not return);
//! - the name, by search, only when the decision would otherwise be to create
//!   ([`resolve_with_name_search`]).
//!
//! The domain the mirror is asked about is [`lookup_domain`]'s: the reviewed domain rule
//! (`contract::reviewed_domain_decision`) over the account's website and what orglink last wrote.

use crate::contract::{DomainDecision, reviewed_domain_decision};
use crate::domain::{Domain, DomainPolicy};
use crate::ids::{AccountId, OrgId};
use crate::model::{Account, Organization};
use crate::resolution::{Decision, Resolution, ResolutionInput, StoredLink, resolve};

use super::{ZendeskClient, ZendeskError};

/// What the candidates are looked up by.
#[derive(Debug, Clone, Copy)]
pub struct CandidateKeys<'a> {
    pub account: &'a AccountId,
    /// Accounts Salesforce merged into this one (their keys may be on an organization).
    pub merged: &'a [AccountId],
    /// `Zendesk_Org_ID__c` as Salesforce holds it.
    pub stored_org_id: Option<&'a str>,
    /// The organizations the mirror holds for the account's domain.
    pub domain_orgs: &'a [OrgId],
}

/// The candidates, live from Zendesk.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    pub stored: StoredLink,
    pub organizations: Vec<Organization>,
    /// Mirrored domain candidates Zendesk no longer has: the caller's mirror forgets them.
    pub gone_from_mirror: Vec<OrgId>,
}

/// The domain decision for `account` and the domain candidates are looked up by: the reviewed
/// domain (or the website's, when orglink sets it), unless the policy says it must never link.
pub fn lookup_domain(
    policy: &DomainPolicy,
    account: &Account,
    last_written: Option<&Domain>,
) -> (DomainDecision, Option<Domain>) {
    let website = account
        .website
        .as_deref()
        .and_then(|w| policy.check_website(w).domain().cloned());
    let decision = reviewed_domain_decision(
        account.reviewed_domain.as_deref(),
        last_written,
        website.as_ref(),
    );
    // A person's reviewed domain may still be one that must never link (consumer mail).
    let domain = decision
        .effective(account.reviewed_domain.as_deref())
        .filter(|d| policy.parse_domain(d.as_str()).is_ok());
    (decision, domain)
}

/// The stored organization, the key holders and the domain's organizations, in at most two
/// Zendesk calls.
pub async fn gather(
    zendesk: &ZendeskClient,
    keys: &CandidateKeys<'_>,
) -> Result<Candidates, ZendeskError> {
    let mut external_ids = Vec::new();
    for a in std::iter::once(keys.account).chain(keys.merged.iter()) {
        external_ids.push(a.as_str().to_string());
        external_ids.push(a.id15().to_string());
    }
    let mut live = zendesk.show_many_by_external_ids(&external_ids).await?;

    let stored_text = keys.stored_org_id.map(str::trim).filter(|t| !t.is_empty());
    let stored_id = stored_text.and_then(|t| OrgId::parse(t).ok());
    let mut to_show: Vec<OrgId> = Vec::new();
    if let Some(sid) = stored_id
        && !live.iter().any(|o| o.id == sid)
    {
        to_show.push(sid);
    }
    for &m in keys.domain_orgs {
        if !live.iter().any(|o| o.id == m) && !to_show.contains(&m) {
            to_show.push(m);
        }
    }
    if !to_show.is_empty() {
        live.extend(zendesk.show_many(&to_show).await?);
    }
    let gone_from_mirror: Vec<OrgId> = keys
        .domain_orgs
        .iter()
        .copied()
        .filter(|m| !live.iter().any(|o| o.id == *m))
        .collect();
    let stored = match (stored_text, stored_id) {
        (None, _) => StoredLink::None,
        (Some(t), None) => StoredLink::Unreadable(t.to_string()),
        (Some(_), Some(sid)) => match live.iter().find(|o| o.id == sid) {
            Some(o) => StoredLink::Found(o.clone()),
            None => StoredLink::Gone(sid),
        },
    };
    Ok(Candidates {
        stored,
        organizations: live,
        gone_from_mirror,
    })
}

/// [`resolve`], and when that would create, the name's holders by search added to the
/// candidates and resolved again (search reads a lagging index, so it is asked last and only
/// when a create is on the table).
pub async fn resolve_with_name_search(
    zendesk: &ZendeskClient,
    input: &mut ResolutionInput,
) -> Result<Resolution, ZendeskError> {
    let resolution = resolve(input);
    if !matches!(resolution.decision, Decision::Create { .. }) {
        return Ok(resolution);
    }
    let holders = zendesk.search_by_name(&input.name).await?;
    if holders.is_empty() {
        return Ok(resolution);
    }
    input.candidates.extend(holders);
    Ok(resolve(input))
}
