//! Link records: per account, the organization linked, what orglink last wrote to each side,
//! the Salesforce `SystemModstamp` last synced (so older events are coalesced away), the
//! transient-failure streak, and the last decision with its rule and evidence (for `trace`).
//!
//! Saving is conditional on the stored modstamp not being newer than the record's, so a slow
//! worker holding an older read can never overwrite what a newer sync recorded.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::exceptions::Evidence;
use crate::ids::{AccountId, OrgId};
use crate::resolution::{Decision, Rule};

/// What orglink last wrote to the organization (so it changes only its own values and can
/// tell a person's edit from its own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenOrg {
    pub name: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// The current streak of transient failures (reset by a successful sync).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureStreak {
    pub count: u32,
    /// Epoch ms of the first failure of the streak.
    pub first_at_ms: Option<i64>,
    pub last_at_ms: Option<i64>,
    /// The last error, already free of secrets (the caller's error types guarantee it).
    pub last_error: Option<String>,
}

/// The last decision, as `trace` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    pub decision: Decision,
    pub rule: Rule,
    pub evidence: Evidence,
    pub at_ms: i64,
}

/// One account's link record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRecord {
    pub account: AccountId,
    pub org: Option<OrgId>,
    /// Salesforce link fields orglink last wrote (API name → value).
    pub written_salesforce: BTreeMap<String, String>,
    pub written_zendesk: WrittenOrg,
    /// `SystemModstamp` of the account read for the last sync, as epoch ms.
    pub synced_modstamp_ms: Option<i64>,
    pub failures: FailureStreak,
    pub last_decision: Option<DecisionRecord>,
    pub updated_at_ms: i64,
}

impl LinkRecord {
    /// An empty record for an account never synced.
    pub fn new(account: AccountId) -> Self {
        LinkRecord {
            account,
            org: None,
            written_salesforce: BTreeMap::new(),
            written_zendesk: WrittenOrg::default(),
            synced_modstamp_ms: None,
            failures: FailureStreak::default(),
            last_decision: None,
            updated_at_ms: 0,
        }
    }

    /// Whether an event about a change at `modstamp_ms` is already covered by the last sync
    /// (same or older modstamp): such events are coalesced away.
    pub fn covers(&self, modstamp_ms: i64) -> bool {
        self.synced_modstamp_ms.is_some_and(|m| m >= modstamp_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    Saved,
    /// A newer sync was recorded meanwhile; nothing was written.
    Superseded {
        stored_modstamp_ms: i64,
    },
}

pub trait LinkStore: Send + Sync {
    fn get(
        &self,
        account: &AccountId,
    ) -> impl Future<Output = Result<Option<LinkRecord>, StoreError>> + Send;

    /// The records of these accounts (those that have one), read in bulk.
    fn get_many(
        &self,
        accounts: &[AccountId],
    ) -> impl Future<Output = Result<HashMap<AccountId, LinkRecord>, StoreError>> + Send;

    /// Writes the whole record unless the stored modstamp is newer than the record's.
    fn save(
        &self,
        record: &LinkRecord,
    ) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;

    /// Counts one transient failure (atomically, creating the record if needed) and returns
    /// the streak, so the caller can decide when it becomes a `sync_failing` exception.
    fn record_failure(
        &self,
        account: &AccountId,
        error: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<FailureStreak, StoreError>> + Send;
}

/// The in-memory twin.
#[derive(Debug, Default)]
pub struct MemoryLinks {
    records: Mutex<HashMap<AccountId, LinkRecord>>,
}

impl LinkStore for MemoryLinks {
    async fn get(&self, account: &AccountId) -> Result<Option<LinkRecord>, StoreError> {
        Ok(self
            .records
            .lock()
            .expect("links lock")
            .get(account)
            .cloned())
    }

    async fn get_many(
        &self,
        accounts: &[AccountId],
    ) -> Result<HashMap<AccountId, LinkRecord>, StoreError> {
        let records = self.records.lock().expect("links lock");
        Ok(accounts
            .iter()
            .filter_map(|a| records.get(a).map(|r| (a.clone(), r.clone())))
            .collect())
    }

    async fn save(&self, record: &LinkRecord) -> Result<SaveOutcome, StoreError> {
        let mut records = self.records.lock().expect("links lock");
        if let Some(stored) = records
            .get(&record.account)
            .and_then(|r| r.synced_modstamp_ms)
            && record.synced_modstamp_ms.is_none_or(|m| m < stored)
        {
            return Ok(SaveOutcome::Superseded {
                stored_modstamp_ms: stored,
            });
        }
        records.insert(record.account.clone(), record.clone());
        Ok(SaveOutcome::Saved)
    }

    async fn record_failure(
        &self,
        account: &AccountId,
        error: &str,
        now_ms: i64,
    ) -> Result<FailureStreak, StoreError> {
        let mut records = self.records.lock().expect("links lock");
        let record = records
            .entry(account.clone())
            .or_insert_with(|| LinkRecord::new(account.clone()));
        let f = &mut record.failures;
        f.count += 1;
        f.first_at_ms.get_or_insert(now_ms);
        f.last_at_ms = Some(now_ms);
        f.last_error = Some(error.to_string());
        record.updated_at_ms = now_ms;
        Ok(f.clone())
    }
}

#[cfg(feature = "aws")]
pub use self::dynamo_impl::DynamoLinks;

#[cfg(feature = "aws")]
mod dynamo_impl {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

    use super::*;
    use crate::aws::dynamo::{
        self, Item, SERVICE, from_json, json, n, opt_n, opt_s, req_n, req_s, s,
    };
    use crate::aws::error::classify;

    /// Link records in the `{prefix}-links` table (PK `account_id`). Scalars the conditions
    /// and updates touch are top-level attributes; nested shapes are JSON strings.
    #[derive(Debug, Clone)]
    pub struct DynamoLinks {
        client: Client,
        table: String,
    }

    impl DynamoLinks {
        pub fn new(client: Client, table: impl Into<String>) -> Self {
            DynamoLinks {
                client,
                table: table.into(),
            }
        }

        fn to_item(record: &LinkRecord) -> Item {
            let mut item = Item::new();
            item.insert("account_id".into(), s(record.account.as_str()));
            if let Some(org) = record.org {
                item.insert("org_id".into(), s(org.to_string()));
            }
            item.insert(
                "written_salesforce".into(),
                json(&record.written_salesforce),
            );
            item.insert("written_zendesk".into(), json(&record.written_zendesk));
            if let Some(m) = record.synced_modstamp_ms {
                item.insert("synced_modstamp".into(), n(m));
            }
            let f = &record.failures;
            item.insert("failure_count".into(), n(f.count));
            if let Some(t) = f.first_at_ms {
                item.insert("first_failure_at".into(), n(t));
            }
            if let Some(t) = f.last_at_ms {
                item.insert("last_failure_at".into(), n(t));
            }
            if let Some(e) = &f.last_error {
                item.insert("last_error".into(), s(e));
            }
            if let Some(d) = &record.last_decision {
                item.insert("last_decision".into(), json(d));
            }
            item.insert("updated_at".into(), n(record.updated_at_ms));
            item
        }

        fn read_item(&self, item: &Item) -> Result<LinkRecord, StoreError> {
            let key = req_s(item, "account_id", &self.table, "?")?;
            let t = &self.table;
            let account = AccountId::parse(&key)
                .map_err(|e| StoreError::corrupt(t, &key, format!("account_id: {e}")))?;
            let org = opt_s(item, "org_id")
                .map(|o| OrgId::parse(&o).map_err(|e| StoreError::corrupt(t, &key, e)))
                .transpose()?;
            Ok(LinkRecord {
                account,
                org,
                written_salesforce: from_json(item, "written_salesforce", t, &key)?
                    .unwrap_or_default(),
                written_zendesk: from_json(item, "written_zendesk", t, &key)?.unwrap_or_default(),
                synced_modstamp_ms: opt_n(item, "synced_modstamp", t, &key)?,
                failures: FailureStreak {
                    count: opt_n(item, "failure_count", t, &key)?.unwrap_or(0),
                    first_at_ms: opt_n(item, "first_failure_at", t, &key)?,
                    last_at_ms: opt_n(item, "last_failure_at", t, &key)?,
                    last_error: opt_s(item, "last_error"),
                },
                last_decision: from_json(item, "last_decision", t, &key)?,
                updated_at_ms: opt_n(item, "updated_at", t, &key)?.unwrap_or(0),
            })
        }
    }

    impl LinkStore for DynamoLinks {
        async fn get(&self, account: &AccountId) -> Result<Option<LinkRecord>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("account_id", s(account.as_str()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            out.item().map(|i| self.read_item(i)).transpose()
        }

        /// BatchGetItem, 100 accounts a request (strongly consistent, as `get`).
        async fn get_many(
            &self,
            accounts: &[AccountId],
        ) -> Result<HashMap<AccountId, LinkRecord>, StoreError> {
            let mut keys: Vec<&str> = accounts.iter().map(AccountId::as_str).collect();
            keys.sort_unstable();
            keys.dedup();
            let keys = keys
                .into_iter()
                .map(|a| Item::from([("account_id".into(), s(a))]))
                .collect();
            dynamo::batch_get(&self.client, &self.table, keys)
                .await?
                .iter()
                .map(|item| self.read_item(item).map(|r| (r.account.clone(), r)))
                .collect()
        }

        async fn save(&self, record: &LinkRecord) -> Result<SaveOutcome, StoreError> {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::to_item(record)))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            put = match record.synced_modstamp_ms {
                Some(m) => put
                    .condition_expression(
                        "attribute_not_exists(synced_modstamp) OR synced_modstamp <= :m",
                    )
                    .expression_attribute_values(":m", n(m)),
                None => put.condition_expression("attribute_not_exists(synced_modstamp)"),
            };
            match put.send().await {
                Ok(_) => Ok(SaveOutcome::Saved),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(e)) => {
                        let stored = e
                            .item()
                            .map(|i| {
                                req_n(i, "synced_modstamp", &self.table, record.account.as_str())
                            })
                            .transpose()?
                            .unwrap_or(i64::MAX);
                        Ok(SaveOutcome::Superseded {
                            stored_modstamp_ms: stored,
                        })
                    }
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        async fn record_failure(
            &self,
            account: &AccountId,
            error: &str,
            now_ms: i64,
        ) -> Result<FailureStreak, StoreError> {
            let out = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("account_id", s(account.as_str()))
                .update_expression(
                    "ADD failure_count :one \
                     SET first_failure_at = if_not_exists(first_failure_at, :now), \
                         last_failure_at = :now, last_error = :err, updated_at = :now",
                )
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":now", n(now_ms))
                .expression_attribute_values(":err", s(error))
                .return_values(ReturnValue::AllNew)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            let item = out.attributes().cloned().unwrap_or_default();
            let t = &self.table;
            let key = account.as_str();
            Ok(FailureStreak {
                count: req_n(&item, "failure_count", t, key)?,
                first_at_ms: opt_n(&item, "first_failure_at", t, key)?,
                last_at_ms: opt_n(&item, "last_failure_at", t, key)?,
                last_error: opt_s(&item, "last_error"),
            })
        }
    }
}
