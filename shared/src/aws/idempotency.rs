//! Idempotency records with AWS Lambda Powertools' semantics (reference/aws-lambda-rust.md §4),
//! so a message delivered twice runs its handler once:
//!
//! 1. `begin` writes an INPROGRESS record with one conditional put — allowed when no record
//!    exists, the record has expired (`expiration`, epoch seconds), or it is an INPROGRESS
//!    record whose invocation deadline (`in_progress_expiration`, epoch ms) has passed. On a
//!    failed condition the existing record comes back with the error (ALL_OLD), no extra read.
//! 2. The existing record decides: a different payload hash → [`Begin::PayloadMismatch`]; a live
//!    INPROGRESS → [`Begin::InProgress`] (the duplicate is retried later); COMPLETED →
//!    [`Begin::Completed`] with the stored outcome, without running the handler again.
//! 3. Success → `complete` stores the outcome and a fresh TTL; failure → `abandon` deletes the
//!    record so a retry can run.
//!
//! DynamoDB's TTL deletes expired items lazily (and moto never does), so every read treats an
//! expired record as absent.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::error::StoreError;

/// The record key: the function name and a hash of the message's idempotent part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// `"{function}#{sha256(payload) hex}"`, like Powertools' `{function}#{hash}`.
    pub fn new(function: &str, payload: &[u8]) -> Self {
        IdempotencyKey(format!(
            "{function}#{}",
            hex::encode(Sha256::digest(payload))
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A hash of the part of the payload that must match for a stored outcome to be reused.
pub fn payload_hash(payload: &[u8]) -> String {
    hex::encode(&Sha256::digest(payload)[..16])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordStatus {
    InProgress,
    Completed,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::InProgress => "INPROGRESS",
            RecordStatus::Completed => "COMPLETED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(RecordStatus::InProgress),
            "COMPLETED" => Some(RecordStatus::Completed),
            _ => None,
        }
    }
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub status: RecordStatus,
    /// Epoch seconds after which the record is gone (the table's TTL attribute).
    pub expiration_s: i64,
    /// Epoch milliseconds after which an INPROGRESS record's invocation is over.
    pub in_progress_expiration_ms: Option<i64>,
    /// The handler's outcome (COMPLETED only), serialized by the caller.
    pub data: Option<String>,
    pub validation: Option<String>,
}

impl IdempotencyRecord {
    fn expired(&self, now_ms: i64) -> bool {
        self.expiration_s < now_ms.div_euclid(1000)
    }

    /// Powertools' condition, verbatim: the new INPROGRESS record may replace this one.
    fn may_be_replaced(&self, now_ms: i64) -> bool {
        self.expired(now_ms)
            || (self.status == RecordStatus::InProgress
                && self.in_progress_expiration_ms.is_some_and(|t| t < now_ms))
    }
}

/// What `begin` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The record is ours: run the handler, then `complete` or `abandon`.
    Started,
    /// Another invocation is processing the same message until this deadline (epoch ms):
    /// report the message as failed so it is retried later.
    InProgress { until_ms: Option<i64> },
    /// Already processed: reuse this outcome without running the handler.
    Completed { data: Option<String> },
    /// The same key arrived with a different payload: a bug upstream, not a duplicate.
    PayloadMismatch,
}

/// Settings (Powertools' defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// How long a completed record is kept (and an in-progress one at most).
    pub expires_after_secs: i64,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            expires_after_secs: 3600,
        }
    }
}

pub trait IdempotencyStore: Send + Sync {
    /// Claims the key for this invocation; `deadline_ms` is the Lambda context's deadline.
    fn begin(
        &self,
        key: &IdempotencyKey,
        validation: Option<&str>,
        now_ms: i64,
        deadline_ms: i64,
    ) -> impl Future<Output = Result<Begin, StoreError>> + Send;

    /// Records the handler's outcome.
    fn complete(
        &self,
        key: &IdempotencyKey,
        data: &str,
        validation: Option<&str>,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The handler failed: forget the record so a retry can run it.
    fn abandon(&self, key: &IdempotencyKey) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The live record, if any (expired records are absent).
    fn get(
        &self,
        key: &IdempotencyKey,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
}

/// What an existing record means for a new invocation, or `None` when it looked replaceable
/// (then the failed write raced with another writer and `begin` tries again).
fn judge_existing(
    existing: &IdempotencyRecord,
    validation: Option<&str>,
    now_ms: i64,
) -> Option<Begin> {
    if let (Some(want), Some(have)) = (validation, existing.validation.as_deref())
        && want != have
    {
        return Some(Begin::PayloadMismatch);
    }
    if existing.may_be_replaced(now_ms) {
        return None;
    }
    Some(match existing.status {
        RecordStatus::InProgress => Begin::InProgress {
            until_ms: existing.in_progress_expiration_ms,
        },
        RecordStatus::Completed => Begin::Completed {
            data: existing.data.clone(),
        },
    })
}

fn in_progress_record(
    config: &IdempotencyConfig,
    validation: Option<&str>,
    now_ms: i64,
    deadline_ms: i64,
) -> IdempotencyRecord {
    IdempotencyRecord {
        status: RecordStatus::InProgress,
        expiration_s: now_ms.div_euclid(1000) + config.expires_after_secs,
        in_progress_expiration_ms: Some(deadline_ms),
        data: None,
        validation: validation.map(str::to_string),
    }
}

/// The in-memory twin.
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    config: IdempotencyConfig,
    records: Mutex<HashMap<IdempotencyKey, IdempotencyRecord>>,
}

impl MemoryIdempotency {
    pub fn new(config: IdempotencyConfig) -> Self {
        MemoryIdempotency {
            config,
            records: Mutex::default(),
        }
    }
}

impl IdempotencyStore for MemoryIdempotency {
    async fn begin(
        &self,
        key: &IdempotencyKey,
        validation: Option<&str>,
        now_ms: i64,
        deadline_ms: i64,
    ) -> Result<Begin, StoreError> {
        let mut records = self.records.lock().expect("idempotency lock");
        // The write's condition first (a replaceable record is replaced whatever its payload),
        // then, under one lock with no race possible, the existing record decides.
        if let Some(found) = records
            .get(key)
            .filter(|existing| !existing.may_be_replaced(now_ms))
            .and_then(|existing| judge_existing(existing, validation, now_ms))
        {
            return Ok(found);
        }
        records.insert(
            key.clone(),
            in_progress_record(&self.config, validation, now_ms, deadline_ms),
        );
        Ok(Begin::Started)
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        data: &str,
        validation: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut records = self.records.lock().expect("idempotency lock");
        records.insert(
            key.clone(),
            IdempotencyRecord {
                status: RecordStatus::Completed,
                expiration_s: now_ms.div_euclid(1000) + self.config.expires_after_secs,
                in_progress_expiration_ms: None,
                data: Some(data.to_string()),
                validation: validation.map(str::to_string),
            },
        );
        Ok(())
    }

    async fn abandon(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        self.records.lock().expect("idempotency lock").remove(key);
        Ok(())
    }

    async fn get(
        &self,
        key: &IdempotencyKey,
        now_ms: i64,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let records = self.records.lock().expect("idempotency lock");
        Ok(records.get(key).filter(|r| !r.expired(now_ms)).cloned())
    }
}

#[cfg(feature = "aws")]
pub use self::dynamo_impl::DynamoIdempotency;

#[cfg(feature = "aws")]
mod dynamo_impl {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;

    use super::*;
    use crate::aws::dynamo::{Item, SERVICE, n, opt_n, opt_s, req_n, req_s, s};
    use crate::aws::error::classify;

    /// How many times `begin` retries when a record looked expired but the write still lost
    /// (a concurrent writer got there first); Powertools uses the same bound.
    const MAX_INCONSISTENT_RETRIES: usize = 2;

    /// Powertools' exact condition for writing an INPROGRESS record.
    const BEGIN_CONDITION: &str = "attribute_not_exists(#id) OR #expiry < :now OR \
        (#status = :inprogress AND attribute_exists(#in_progress_expiry) AND #in_progress_expiry < :now_in_millis)";

    /// Idempotency records in the `{prefix}-idempotency` table (PK `id`, TTL `expiration`).
    #[derive(Debug, Clone)]
    pub struct DynamoIdempotency {
        client: Client,
        table: String,
        config: IdempotencyConfig,
    }

    impl DynamoIdempotency {
        pub fn new(client: Client, table: impl Into<String>, config: IdempotencyConfig) -> Self {
            DynamoIdempotency {
                client,
                table: table.into(),
                config,
            }
        }

        fn to_record(&self, key: &str, item: &Item) -> Result<IdempotencyRecord, StoreError> {
            let status = req_s(item, "status", &self.table, key)?;
            Ok(IdempotencyRecord {
                status: RecordStatus::parse(&status).ok_or_else(|| {
                    StoreError::corrupt(&self.table, key, format!("unknown status {status}"))
                })?,
                expiration_s: req_n(item, "expiration", &self.table, key)?,
                in_progress_expiration_ms: opt_n(item, "in_progress_expiration", &self.table, key)?,
                data: opt_s(item, "data"),
                validation: opt_s(item, "validation"),
            })
        }
    }

    impl IdempotencyStore for DynamoIdempotency {
        async fn begin(
            &self,
            key: &IdempotencyKey,
            validation: Option<&str>,
            now_ms: i64,
            deadline_ms: i64,
        ) -> Result<Begin, StoreError> {
            let record = in_progress_record(&self.config, validation, now_ms, deadline_ms);
            for _ in 0..=MAX_INCONSISTENT_RETRIES {
                let mut put = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .item("id", s(key.as_str()))
                    .item("status", s(record.status.as_str()))
                    .item("expiration", n(record.expiration_s))
                    .item("in_progress_expiration", n(deadline_ms))
                    .condition_expression(BEGIN_CONDITION)
                    .expression_attribute_names("#id", "id")
                    .expression_attribute_names("#expiry", "expiration")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_names("#in_progress_expiry", "in_progress_expiration")
                    .expression_attribute_values(":now", n(now_ms.div_euclid(1000)))
                    .expression_attribute_values(":now_in_millis", n(now_ms))
                    .expression_attribute_values(
                        ":inprogress",
                        s(RecordStatus::InProgress.as_str()),
                    )
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    );
                if let Some(v) = validation {
                    put = put.item("validation", s(v));
                }
                match put.send().await {
                    Ok(_) => return Ok(Begin::Started),
                    Err(err) => {
                        let old = match err.as_service_error() {
                            Some(PutItemError::ConditionalCheckFailedException(e)) => {
                                e.item().cloned()
                            }
                            _ => return Err(classify(SERVICE, err)),
                        };
                        // The record vanished between the condition and ALL_OLD: try again.
                        let Some(old) = old else { continue };
                        let existing = self.to_record(key.as_str(), &old)?;
                        if let Some(found) = judge_existing(&existing, validation, now_ms) {
                            return Ok(found);
                        }
                    }
                }
            }
            Err(StoreError::Contended {
                store: self.table.clone(),
                key: key.as_str().to_string(),
            })
        }

        async fn complete(
            &self,
            key: &IdempotencyKey,
            data: &str,
            validation: Option<&str>,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            let mut update = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("id", s(key.as_str()))
                .update_expression(
                    "SET #status = :completed, #expiry = :expiry, #data = :data REMOVE #in_progress_expiry",
                )
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#expiry", "expiration")
                .expression_attribute_names("#data", "data")
                .expression_attribute_names("#in_progress_expiry", "in_progress_expiration")
                .expression_attribute_values(":completed", s(RecordStatus::Completed.as_str()))
                .expression_attribute_values(
                    ":expiry",
                    n(now_ms.div_euclid(1000) + self.config.expires_after_secs),
                )
                .expression_attribute_values(":data", s(data));
            if let Some(v) = validation {
                update = update
                    .update_expression(
                        "SET #status = :completed, #expiry = :expiry, #data = :data, #validation = :validation REMOVE #in_progress_expiry",
                    )
                    .expression_attribute_names("#validation", "validation")
                    .expression_attribute_values(":validation", s(v));
            }
            update.send().await.map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }

        async fn abandon(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("id", s(key.as_str()))
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }

        async fn get(
            &self,
            key: &IdempotencyKey,
            now_ms: i64,
        ) -> Result<Option<IdempotencyRecord>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("id", s(key.as_str()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            match out.item() {
                None => Ok(None),
                Some(item) => {
                    let record = self.to_record(key.as_str(), item)?;
                    Ok((!record.expired(now_ms)).then_some(record))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: RecordStatus, exp_s: i64, ip_ms: Option<i64>) -> IdempotencyRecord {
        IdempotencyRecord {
            status,
            expiration_s: exp_s,
            in_progress_expiration_ms: ip_ms,
            data: Some("out".into()),
            validation: Some("h1".into()),
        }
    }

    #[test]
    fn existing_records_are_judged_like_powertools() {
        let now = 1_000_000;
        let live = rec(RecordStatus::InProgress, 2_000, Some(now + 5));
        assert_eq!(
            judge_existing(&live, Some("h1"), now),
            Some(Begin::InProgress {
                until_ms: Some(now + 5)
            })
        );
        assert_eq!(
            judge_existing(&live, Some("h2"), now),
            Some(Begin::PayloadMismatch)
        );
        // A past invocation deadline or a past expiration makes the record replaceable.
        let stale = rec(RecordStatus::InProgress, 2_000, Some(now - 1));
        assert_eq!(judge_existing(&stale, None, now), None);
        let expired = rec(RecordStatus::Completed, now / 1000 - 1, None);
        assert_eq!(judge_existing(&expired, None, now), None);
        let done = rec(RecordStatus::Completed, now / 1000, None);
        assert_eq!(
            judge_existing(&done, None, now),
            Some(Begin::Completed {
                data: Some("out".into())
            })
        );
        // An INPROGRESS record without a deadline never looks stale (Powertools' condition).
        let no_deadline = rec(RecordStatus::InProgress, 2_000, None);
        assert!(!no_deadline.may_be_replaced(now));
    }

    #[test]
    fn keys_hash_the_payload() {
        let a = IdempotencyKey::new("sync-worker", b"{\"a\":1}");
        let b = IdempotencyKey::new("sync-worker", b"{\"a\":2}");
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("sync-worker#"));
        assert_eq!(a.as_str().len(), "sync-worker#".len() + 64);
    }
}
