//! Run scratch: what a run has already read and must not read again when it continues in a new
//! invocation. The checkpoint itself (in the run record) stays small — a cursor, counters and
//! the number of scratch parts — while the data behind it (the account facts the diff already
//! took in, the organization ids the listing already saw) is parked here in parts under
//! DynamoDB's item limit, with a TTL, so a continuation replays it from DynamoDB instead of
//! spending Salesforce or Zendesk calls on it again.
//!
//! In DynamoDB the parts live in the runs table (`run_id` = `scratch#{run}#{part}`, attribute
//! `data`, TTL `expiration`): no other item shape uses that prefix, and the table already has a
//! TTL for run records. They are never deleted, only expire (the role needs no DeleteItem).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use orglink_shared::aws::StoreError;

/// How long scratch parts live: a run never spans more than this.
pub const SCRATCH_TTL_SECS: i64 = 2 * 24 * 3600;
/// Parts are cut below DynamoDB's 400 KB item limit.
pub const PART_BYTES: usize = 300 * 1024;

pub trait Scratch: Send + Sync {
    fn put(
        &self,
        run_id: &str,
        part: &str,
        data: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get(
        &self,
        run_id: &str,
        part: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Serializes `items` as JSON arrays of at most [`PART_BYTES`] each (at least one item each).
pub fn split_parts<T: serde::Serialize>(items: &[T]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for item in items {
        let json = serde_json::to_string(item).expect("scratch items serialize");
        if !current.is_empty() && size + json.len() + 1 > PART_BYTES {
            parts.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += json.len() + 1;
        current.push(json);
    }
    if !current.is_empty() {
        parts.push(format!("[{}]", current.join(",")));
    }
    parts
}

/// The in-memory twin.
#[derive(Debug, Default)]
pub struct MemoryScratch {
    parts: Mutex<HashMap<String, String>>,
}

impl MemoryScratch {
    /// Bytes held (the benchmark reports it).
    pub fn bytes(&self) -> usize {
        self.parts
            .lock()
            .expect("scratch lock")
            .values()
            .map(String::len)
            .sum()
    }
}

fn key(run_id: &str, part: &str) -> String {
    format!("scratch#{run_id}#{part}")
}

impl Scratch for MemoryScratch {
    async fn put(
        &self,
        run_id: &str,
        part: &str,
        data: &str,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        self.parts
            .lock()
            .expect("scratch lock")
            .insert(key(run_id, part), data.to_string());
        Ok(())
    }

    async fn get(&self, run_id: &str, part: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .parts
            .lock()
            .expect("scratch lock")
            .get(&key(run_id, part))
            .cloned())
    }
}

/// Scratch parts in the runs table.
#[derive(Debug, Clone)]
pub struct DynamoScratch {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoScratch {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoScratch {
            client,
            table: table.into(),
        }
    }
}

fn dynamo_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Transient {
        service: "DynamoDB",
        detail: format!("run scratch: {e}"),
    }
}

impl Scratch for DynamoScratch {
    async fn put(
        &self,
        run_id: &str,
        part: &str,
        data: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as V;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("run_id", V::S(key(run_id, part)))
            .item("data", V::S(data.to_string()))
            .item(
                "expiration",
                V::N((now_ms.div_euclid(1000) + SCRATCH_TTL_SECS).to_string()),
            )
            .send()
            .await
            .map_err(|e| dynamo_error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(())
    }

    async fn get(&self, run_id: &str, part: &str) -> Result<Option<String>, StoreError> {
        use aws_sdk_dynamodb::types::AttributeValue as V;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("run_id", V::S(key(run_id, part)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamo_error(aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        Ok(out
            .item()
            .and_then(|i| i.get("data"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_under_the_item_limit_and_keep_every_item() {
        let items: Vec<String> = (0..5000).map(|i| format!("{i:0>200}")).collect();
        let parts = split_parts(&items);
        assert!(parts.len() > 1);
        let mut back: Vec<String> = Vec::new();
        for p in &parts {
            assert!(p.len() <= PART_BYTES, "{}", p.len());
            back.extend(serde_json::from_str::<Vec<String>>(p).unwrap());
        }
        assert_eq!(back, items);
        assert!(split_parts::<u8>(&[]).is_empty());
    }
}
