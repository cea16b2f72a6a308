//! The operator's lists, kept by review decisions (`orglink exceptions resolve`): domains
//! several customers share (never a linking signal, never a collision) and accounts orglink
//! leaves alone. Reconcile reads them every run and the sync worker before each sync; the
//! review library adds to them. In DynamoDB they are two items of the exception table
//! (`fingerprint` = `list#shared_domains`, `list#ignored_accounts`; a string set `entries`),
//! without a `status`, so the table's indexes (and every listing of rows) never see them
//! (`docs/exceptions.md`).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::domain::Domain;
use crate::ids::AccountId;

/// What review decisions have put on the lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorLists {
    /// Domains as [`Domain::as_str`] gives them (lowercase, no `www.`).
    pub shared_domains: BTreeSet<String>,
    pub ignored_accounts: BTreeSet<AccountId>,
}

impl OperatorLists {
    pub fn is_shared(&self, domain: &Domain) -> bool {
        self.shared_domains.contains(domain.as_str())
    }

    pub fn is_ignored(&self, account: &AccountId) -> bool {
        self.ignored_accounts.contains(account)
    }
}

/// Where [`OperatorLists`] are kept.
pub trait ReviewLists: Send + Sync {
    fn load(&self) -> impl Future<Output = Result<OperatorLists, StoreError>> + Send;
    fn add_shared_domain(
        &self,
        domain: &Domain,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn add_ignored_account(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The in-memory twin.
#[derive(Debug, Default)]
pub struct MemoryLists(Mutex<OperatorLists>);

impl ReviewLists for MemoryLists {
    async fn load(&self) -> Result<OperatorLists, StoreError> {
        Ok(self.0.lock().expect("lists lock").clone())
    }

    async fn add_shared_domain(&self, domain: &Domain) -> Result<(), StoreError> {
        self.0
            .lock()
            .expect("lists lock")
            .shared_domains
            .insert(domain.as_str().to_string());
        Ok(())
    }

    async fn add_ignored_account(&self, account: &AccountId) -> Result<(), StoreError> {
        self.0
            .lock()
            .expect("lists lock")
            .ignored_accounts
            .insert(account.clone());
        Ok(())
    }
}

#[cfg(feature = "aws")]
pub use self::dynamo_impl::DynamoLists;

#[cfg(feature = "aws")]
mod dynamo_impl {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::types::AttributeValue as V;

    use super::*;
    use crate::aws::dynamo::{SERVICE, s};
    use crate::aws::error::classify;

    const SHARED_DOMAINS: &str = "list#shared_domains";
    const IGNORED_ACCOUNTS: &str = "list#ignored_accounts";

    /// The lists as two items of the exception table.
    #[derive(Debug, Clone)]
    pub struct DynamoLists {
        client: Client,
        table: String,
    }

    impl DynamoLists {
        pub fn new(client: Client, table: impl Into<String>) -> Self {
            DynamoLists {
                client,
                table: table.into(),
            }
        }

        async fn entries(&self, key: &str) -> Result<Vec<String>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("fingerprint", s(key))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(out
                .item()
                .and_then(|i| i.get("entries"))
                .and_then(|v| v.as_ss().ok())
                .cloned()
                .unwrap_or_default())
        }

        async fn add(&self, key: &str, value: &str) -> Result<(), StoreError> {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("fingerprint", s(key))
                .update_expression("ADD entries :v")
                .expression_attribute_values(":v", V::Ss(vec![value.to_string()]))
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }
    }

    impl ReviewLists for DynamoLists {
        async fn load(&self) -> Result<OperatorLists, StoreError> {
            let shared_domains = self.entries(SHARED_DOMAINS).await?.into_iter().collect();
            let ignored_accounts = self
                .entries(IGNORED_ACCOUNTS)
                .await?
                .iter()
                .filter_map(|a| AccountId::parse(a).ok())
                .collect();
            Ok(OperatorLists {
                shared_domains,
                ignored_accounts,
            })
        }

        async fn add_shared_domain(&self, domain: &Domain) -> Result<(), StoreError> {
            self.add(SHARED_DOMAINS, domain.as_str()).await
        }

        async fn add_ignored_account(&self, account: &AccountId) -> Result<(), StoreError> {
            self.add(IGNORED_ACCOUNTS, account.as_str()).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_lists_keep_what_review_adds() {
        let lists = MemoryLists::default();
        let domain = Domain::parse("shared-host.co.uk").unwrap();
        let account = AccountId::parse("001SB0000000001").unwrap();
        assert!(!lists.load().await.unwrap().is_shared(&domain));
        lists.add_shared_domain(&domain).await.unwrap();
        lists.add_ignored_account(&account).await.unwrap();
        let loaded = lists.load().await.unwrap();
        assert!(loaded.is_shared(&domain));
        assert!(loaded.is_ignored(&account));
        assert!(!loaded.is_ignored(&AccountId::parse("001SB0000000002").unwrap()));
    }
}
