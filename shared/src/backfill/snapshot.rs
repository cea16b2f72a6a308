//! Reading both systems once, at the API call floor: every organization through the cursor
//! listing (100 a page), every account through one `queryAll` (deleted and merged ones too,
//! for merges), and every opportunity eligibility looks at through one query — pages of up to
//! 2,000 records each, joined in memory, instead of an opportunity query per page of accounts.

use std::time::Duration;

use futures_util::TryStreamExt;
use serde_json::Value;

use super::BackfillError;
use super::progress::Progress;
use crate::ids::AccountId;
use crate::model::{Account, Organization};
use crate::salesforce::SalesforceClient;
use crate::salesforce::records::{
    OPPORTUNITY_FIELDS, account_fields, account_from_record, group_opportunities,
};
use crate::salesforce::soql::{Cond, Select};
use crate::zendesk::ZendeskClient;

/// Both systems as read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub orgs: Vec<Organization>,
    /// Every account, deleted and merged ones included, with its opportunity facts.
    pub accounts: Vec<Account>,
    pub read_time: Duration,
}

/// Every organization, page by page; `on_page` sees each page (the mirror is fed from it).
pub async fn read_orgs(
    zendesk: &ZendeskClient,
    progress: &Progress,
    mut on_page: impl FnMut(&[Organization]),
) -> Result<Vec<Organization>, BackfillError> {
    progress.phase("listing organizations", 0);
    let mut orgs = Vec::new();
    let mut pages = std::pin::pin!(zendesk.list_pages(None));
    while let Some(page) = pages.try_next().await? {
        on_page(&page.organizations);
        progress.advance(page.organizations.len() as u64);
        orgs.extend(page.organizations);
    }
    progress.finish_line();
    Ok(orgs)
}

/// Every account with its opportunity facts, in two queries.
pub async fn read_accounts(
    salesforce: &SalesforceClient,
    link_fields: &[crate::contract::LinkField],
    progress: &Progress,
) -> Result<Vec<Account>, BackfillError> {
    progress.phase("reading accounts", 0);
    let soql = Select::new("Account", account_fields(link_fields))
        .build()
        .map_err(crate::salesforce::SalesforceError::from)?;
    let mut records: Vec<Value> = Vec::new();
    let mut pages = std::pin::pin!(salesforce.query_pages(soql, true));
    while let Some(page) = pages.try_next().await? {
        progress.advance(page.records.len() as u64);
        records.extend(page.records);
    }
    progress.finish_line();

    progress.phase("reading opportunities", 0);
    // Only what eligibility reads: won, or still open.
    let soql = Select::new("Opportunity", OPPORTUNITY_FIELDS)
        .filter(Cond::or([
            Cond::eq("IsWon", true),
            Cond::eq("IsClosed", false),
        ]))
        .build()
        .map_err(crate::salesforce::SalesforceError::from)?;
    let mut opps: Vec<Value> = Vec::new();
    let mut pages = std::pin::pin!(salesforce.query_pages(soql, false));
    while let Some(page) = pages.try_next().await? {
        progress.advance(page.records.len() as u64);
        opps.extend(page.records);
    }
    progress.finish_line();

    let grouped = group_opportunities(&opps);
    drop(opps);
    records
        .iter()
        .map(|r| {
            let id = r
                .get("Id")
                .and_then(Value::as_str)
                .and_then(|s| AccountId::parse(s).ok());
            account_from_record(r, id.as_ref().and_then(|id| grouped.get(id))).map_err(|detail| {
                BackfillError::Salesforce(crate::salesforce::SalesforceError::Protocol {
                    endpoint: "sf.query_all",
                    detail,
                })
            })
        })
        .collect()
}

/// Both systems.
pub async fn read(
    salesforce: &SalesforceClient,
    zendesk: &ZendeskClient,
    link_fields: &[crate::contract::LinkField],
    progress: &Progress,
    on_org_page: impl FnMut(&[Organization]),
) -> Result<Snapshot, BackfillError> {
    let started = std::time::Instant::now();
    let orgs = read_orgs(zendesk, progress, on_org_page).await?;
    let accounts = read_accounts(salesforce, link_fields, progress).await?;
    Ok(Snapshot {
        orgs,
        accounts,
        read_time: started.elapsed(),
    })
}
