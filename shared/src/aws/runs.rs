//! Reconcile run state: one record per run (started, checkpoint cursor, finished with a
//! summary), plus the last complete run of each kind, so auto-resolve and the mirror refresh
//! can tell a complete full run from an interrupted one. Run records expire after a retention
//! period (TTL, treated as absent once past); the "last complete" pointer never expires.
//!
//! Beside them, a run's *items*: small things a run found and must still act on when it
//! continues in a new invocation (a misattributed ticket), one item each under a sequence
//! number the checkpoint counts, never a data set. They expire after [`RUN_ITEM_TTL_SECS`].
//!
//! And a *lease* per kind of work (`reconcile`): the one run allowed to act at a time. A run
//! takes it with a conditional write when it starts, renews it as it goes, releases it when it
//! ends; a lease not renewed for long (its holder died) may be taken over, and the old holder
//! then finds it cannot renew. Two runs acting at once would judge each other's stamps.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::StoreError;

/// How long run records are kept.
pub const RUN_RETENTION_SECS: i64 = 90 * 24 * 3600;

/// How long a run's items live: a run never spans more than this.
pub const RUN_ITEM_TTL_SECS: i64 = 2 * 24 * 3600;

/// The largest run item: one finding-in-waiting, never a data set.
pub const RUN_ITEM_MAX_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Complete,
    /// Stopped before the end (error, timeout, budget): its findings are partial.
    Incomplete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    /// What ran (`full`, `delta`, `backfill`...).
    pub kind: String,
    pub status: RunStatus,
    pub started_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    /// Where a resumable run stopped.
    pub cursor: Option<String>,
    /// The run summary (counts, metrics), as the caller shapes it.
    pub summary: Option<serde_json::Value>,
    /// Epoch seconds after which the record is gone.
    pub expiration_s: i64,
}

impl RunRecord {
    fn expired(&self, now_ms: i64) -> bool {
        self.expiration_s < now_ms.div_euclid(1000)
    }
}

/// Who holds a lease, and when they last renewed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub holder: String,
    pub renewed_at_ms: i64,
}

/// What taking a lease came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseTake {
    /// Taken; `from` is the holder whose lease had gone stale, if any.
    Taken { from: Option<Lease> },
    /// Another run holds it and renewed it recently.
    Busy(Lease),
}

pub trait RunStore: Send + Sync {
    /// Records a new run; `false` if a run with this id exists already.
    fn start(
        &self,
        run_id: &str,
        kind: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Saves where a running run is.
    fn checkpoint(
        &self,
        run_id: &str,
        cursor: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends a run; a complete one becomes its kind's last complete run.
    fn finish(
        &self,
        run_id: &str,
        status: RunStatus,
        summary: &serde_json::Value,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<RunRecord>, StoreError>> + Send;

    fn get(
        &self,
        run_id: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<RunRecord>, StoreError>> + Send;

    fn last_complete(
        &self,
        kind: &str,
    ) -> impl Future<Output = Result<Option<RunRecord>, StoreError>> + Send;

    /// Keeps item `seq` of `kind` for a run (at most [`RUN_ITEM_MAX_BYTES`]). Writing the same
    /// `seq` again replaces it: an invocation retried from the last checkpoint rewrites what
    /// it had written.
    fn put_item(
        &self,
        run_id: &str,
        kind: &str,
        seq: u32,
        data: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Items `0..count` of `kind`, in order; a missing one (expired) is an error.
    fn items(
        &self,
        run_id: &str,
        kind: &str,
        count: u32,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Takes lease `name` for `run_id` unless another run holds it and renewed it less than
    /// `stale_after_ms` ago (one conditional write).
    fn take_lease(
        &self,
        name: &str,
        run_id: &str,
        now_ms: i64,
        stale_after_ms: i64,
    ) -> impl Future<Output = Result<LeaseTake, StoreError>> + Send;

    /// Renews lease `name` if `run_id` still holds it; `false` when it does not (taken over,
    /// or released): the run must stop without acting.
    fn renew_lease(
        &self,
        name: &str,
        run_id: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Releases lease `name` if `run_id` holds it (otherwise nothing); returns the kind of run
    /// that asked to start after it ([`Self::wait_behind`]), which the releasing run starts.
    fn release_lease(
        &self,
        name: &str,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Asks `holder`, while it holds lease `name`, to start a run of `kind` when it releases
    /// it (a refused run that must not be skipped: the nightly full run); `false` when `holder`
    /// no longer holds it. A later ask replaces an earlier one; a take-over drops it.
    fn wait_behind(
        &self,
        name: &str,
        holder: &str,
        kind: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Who holds lease `name`, if anyone.
    fn lease(&self, name: &str) -> impl Future<Output = Result<Option<Lease>, StoreError>> + Send;
}

#[cfg(feature = "aws")]
fn lease_key(name: &str) -> String {
    format!("lease#{name}")
}

fn item_key(run_id: &str, kind: &str, seq: u32) -> String {
    format!("item#{run_id}#{kind}#{seq}")
}

/// The key of item `seq`, or `Rejected` when `len` bytes are over the item limit
/// (both stores refuse before writing, so a caller sees the same error either way).
fn checked_item_key(run_id: &str, kind: &str, seq: u32, len: usize) -> Result<String, StoreError> {
    let key = item_key(run_id, kind, seq);
    if len > RUN_ITEM_MAX_BYTES {
        return Err(StoreError::Rejected {
            service: "run store",
            detail: format!("run item {key} is {len} bytes, over {RUN_ITEM_MAX_BYTES}"),
        });
    }
    Ok(key)
}

fn item_missing(store: &str, key: &str) -> StoreError {
    StoreError::corrupt(store, key, "missing (expired?): start a new run")
}

fn new_run(run_id: &str, kind: &str, now_ms: i64) -> RunRecord {
    RunRecord {
        run_id: run_id.to_string(),
        kind: kind.to_string(),
        status: RunStatus::Running,
        started_at_ms: now_ms,
        finished_at_ms: None,
        cursor: None,
        summary: None,
        expiration_s: now_ms.div_euclid(1000) + RUN_RETENTION_SECS,
    }
}

fn latest_key(kind: &str) -> String {
    format!("latest-complete#{kind}")
}

/// The in-memory twin.
#[derive(Debug, Default)]
pub struct MemoryRuns {
    runs: Mutex<HashMap<String, RunRecord>>,
    items: Mutex<HashMap<String, String>>,
    leases: Mutex<HashMap<String, Lease>>,
    /// Per lease, the kind of run waiting behind its holder.
    waiting: Mutex<HashMap<String, String>>,
}

impl MemoryRuns {
    /// Bytes held in run items (the benchmark reports it).
    pub fn item_bytes(&self) -> usize {
        self.items
            .lock()
            .expect("runs lock")
            .values()
            .map(String::len)
            .sum()
    }
}

impl RunStore for MemoryRuns {
    async fn start(&self, run_id: &str, kind: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut runs = self.runs.lock().expect("runs lock");
        if runs.get(run_id).is_some_and(|r| !r.expired(now_ms)) {
            return Ok(false);
        }
        runs.insert(run_id.to_string(), new_run(run_id, kind, now_ms));
        Ok(true)
    }

    async fn checkpoint(&self, run_id: &str, cursor: &str) -> Result<(), StoreError> {
        if let Some(r) = self.runs.lock().expect("runs lock").get_mut(run_id) {
            r.cursor = Some(cursor.to_string());
        }
        Ok(())
    }

    async fn finish(
        &self,
        run_id: &str,
        status: RunStatus,
        summary: &serde_json::Value,
        now_ms: i64,
    ) -> Result<Option<RunRecord>, StoreError> {
        let mut runs = self.runs.lock().expect("runs lock");
        let Some(run) = runs.get_mut(run_id) else {
            return Ok(None);
        };
        run.status = status;
        run.finished_at_ms = Some(now_ms);
        run.summary = Some(summary.clone());
        let run = run.clone();
        let key = latest_key(&run.kind);
        // Only a later run replaces the pointer (two runs finishing out of order).
        if status == RunStatus::Complete
            && runs
                .get(&key)
                .is_none_or(|latest| latest.started_at_ms <= run.started_at_ms)
        {
            runs.insert(key, run.clone());
        }
        Ok(Some(run))
    }

    async fn get(&self, run_id: &str, now_ms: i64) -> Result<Option<RunRecord>, StoreError> {
        let runs = self.runs.lock().expect("runs lock");
        Ok(runs.get(run_id).filter(|r| !r.expired(now_ms)).cloned())
    }

    async fn last_complete(&self, kind: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self
            .runs
            .lock()
            .expect("runs lock")
            .get(&latest_key(kind))
            .cloned())
    }

    async fn put_item(
        &self,
        run_id: &str,
        kind: &str,
        seq: u32,
        data: &str,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        let key = checked_item_key(run_id, kind, seq, data.len())?;
        self.items
            .lock()
            .expect("runs lock")
            .insert(key, data.to_string());
        Ok(())
    }

    async fn items(&self, run_id: &str, kind: &str, count: u32) -> Result<Vec<String>, StoreError> {
        let items = self.items.lock().expect("runs lock");
        (0..count)
            .map(|seq| {
                let key = item_key(run_id, kind, seq);
                items
                    .get(&key)
                    .cloned()
                    .ok_or_else(|| item_missing("runs", &key))
            })
            .collect()
    }

    async fn take_lease(
        &self,
        name: &str,
        run_id: &str,
        now_ms: i64,
        stale_after_ms: i64,
    ) -> Result<LeaseTake, StoreError> {
        let mut leases = self.leases.lock().expect("runs lock");
        let current = leases.get(name).cloned();
        if let Some(l) = &current
            && l.holder != run_id
            && l.renewed_at_ms >= now_ms - stale_after_ms
        {
            return Ok(LeaseTake::Busy(l.clone()));
        }
        if current.as_ref().is_some_and(|l| l.holder != run_id) {
            // A take-over replaces the lease, and with it who waited behind the old holder.
            self.waiting.lock().expect("runs lock").remove(name);
        }
        leases.insert(
            name.to_string(),
            Lease {
                holder: run_id.to_string(),
                renewed_at_ms: now_ms,
            },
        );
        Ok(LeaseTake::Taken {
            from: current.filter(|l| l.holder != run_id),
        })
    }

    async fn renew_lease(&self, name: &str, run_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut leases = self.leases.lock().expect("runs lock");
        match leases.get_mut(name) {
            Some(l) if l.holder == run_id => {
                l.renewed_at_ms = now_ms;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lease(&self, name: &str, run_id: &str) -> Result<Option<String>, StoreError> {
        let mut leases = self.leases.lock().expect("runs lock");
        if leases.get(name).is_none_or(|l| l.holder != run_id) {
            return Ok(None);
        }
        leases.remove(name);
        Ok(self.waiting.lock().expect("runs lock").remove(name))
    }

    async fn wait_behind(&self, name: &str, holder: &str, kind: &str) -> Result<bool, StoreError> {
        let leases = self.leases.lock().expect("runs lock");
        if leases.get(name).is_none_or(|l| l.holder != holder) {
            return Ok(false);
        }
        self.waiting
            .lock()
            .expect("runs lock")
            .insert(name.to_string(), kind.to_string());
        Ok(true)
    }

    async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
        Ok(self.leases.lock().expect("runs lock").get(name).cloned())
    }
}

#[cfg(feature = "aws")]
pub use self::dynamo_impl::DynamoRuns;

#[cfg(feature = "aws")]
mod dynamo_impl {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    use aws_sdk_dynamodb::types::ReturnValue;
    use futures_util::{StreamExt, TryStreamExt, stream};

    use super::*;
    use crate::aws::dynamo::{Item, SERVICE, from_json, json, n, s};
    use crate::aws::error::classify;

    /// Runs in the `{prefix}-runs` table (PK `run_id`, TTL `expiration`). The whole record is
    /// one JSON attribute beside the key and the TTL: nothing queries inside it.
    #[derive(Debug, Clone)]
    pub struct DynamoRuns {
        client: Client,
        table: String,
    }

    impl DynamoRuns {
        pub fn new(client: Client, table: impl Into<String>) -> Self {
            DynamoRuns {
                client,
                table: table.into(),
            }
        }

        fn item(key: &str, run: &RunRecord, ttl: bool) -> Item {
            let mut item = Item::from([("run_id".into(), s(key)), ("run".into(), json(run))]);
            if ttl {
                item.insert("expiration".into(), n(run.expiration_s));
            }
            item
        }

        async fn read(&self, key: &str) -> Result<Option<RunRecord>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("run_id", s(key))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            match out.item() {
                None => Ok(None),
                Some(item) => from_json(item, "run", &self.table, key),
            }
        }

        /// Applies `update` (one value, `:v`) to lease `name` while `holder` holds it;
        /// `false` when it does not.
        async fn update_while_held(
            &self,
            name: &str,
            holder: &str,
            update: &str,
            value: aws_sdk_dynamodb::types::AttributeValue,
        ) -> Result<bool, StoreError> {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("run_id", s(lease_key(name)))
                .update_expression(update)
                .condition_expression("holder = :holder")
                .expression_attribute_values(":holder", s(holder))
                .expression_attribute_values(":v", value)
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                Err(err) => match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }
    }

    impl RunStore for DynamoRuns {
        async fn start(&self, run_id: &str, kind: &str, now_ms: i64) -> Result<bool, StoreError> {
            let run = new_run(run_id, kind, now_ms);
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::item(run_id, &run, true)))
                // An expired record still present (TTL is lazy) counts as absent.
                .condition_expression("attribute_not_exists(run_id) OR expiration < :now")
                .expression_attribute_values(":now", n(now_ms.div_euclid(1000)))
                .send()
                .await;
            match result {
                Ok(_) => Ok(true),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        async fn checkpoint(&self, run_id: &str, cursor: &str) -> Result<(), StoreError> {
            let Some(mut run) = self.read(run_id).await? else {
                return Ok(());
            };
            run.cursor = Some(cursor.to_string());
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::item(run_id, &run, true)))
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }

        async fn finish(
            &self,
            run_id: &str,
            status: RunStatus,
            summary: &serde_json::Value,
            now_ms: i64,
        ) -> Result<Option<RunRecord>, StoreError> {
            let Some(mut run) = self.read(run_id).await? else {
                return Ok(None);
            };
            run.status = status;
            run.finished_at_ms = Some(now_ms);
            run.summary = Some(summary.clone());
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::item(run_id, &run, true)))
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            if status == RunStatus::Complete {
                // Only a later run replaces the pointer (two runs finishing out of order).
                let result = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("run_id", s(latest_key(&run.kind)))
                    .update_expression("SET #r = :run, started_at = :started")
                    .expression_attribute_names("#r", "run")
                    .condition_expression(
                        "attribute_not_exists(started_at) OR started_at <= :started",
                    )
                    .expression_attribute_values(":run", json(&run))
                    .expression_attribute_values(":started", n(run.started_at_ms))
                    .return_values(ReturnValue::None)
                    .send()
                    .await;
                if let Err(err) = result {
                    match err.as_service_error() {
                        Some(UpdateItemError::ConditionalCheckFailedException(_)) => {}
                        _ => return Err(classify(SERVICE, err)),
                    }
                }
            }
            Ok(Some(run))
        }

        async fn get(&self, run_id: &str, now_ms: i64) -> Result<Option<RunRecord>, StoreError> {
            Ok(self.read(run_id).await?.filter(|r| !r.expired(now_ms)))
        }

        async fn last_complete(&self, kind: &str) -> Result<Option<RunRecord>, StoreError> {
            self.read(&latest_key(kind)).await
        }

        /// One item `item#{run}#{kind}#{seq}` (attribute `data`, TTL `expiration`): no other
        /// item shape uses that prefix.
        async fn put_item(
            &self,
            run_id: &str,
            kind: &str,
            seq: u32,
            data: &str,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            let key = checked_item_key(run_id, kind, seq, data.len())?;
            self.client
                .put_item()
                .table_name(&self.table)
                .item("run_id", s(&key))
                .item("data", s(data))
                .item("expiration", n(now_ms.div_euclid(1000) + RUN_ITEM_TTL_SECS))
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }

        async fn items(
            &self,
            run_id: &str,
            kind: &str,
            count: u32,
        ) -> Result<Vec<String>, StoreError> {
            // A few items (GetItem each, several at once): no BatchGetItem permission needed.
            stream::iter(0..count)
                .map(|seq| async move {
                    let key = item_key(run_id, kind, seq);
                    let out = self
                        .client
                        .get_item()
                        .table_name(&self.table)
                        .key("run_id", s(&key))
                        .consistent_read(true)
                        .send()
                        .await
                        .map_err(|e| classify(SERVICE, e))?;
                    out.item()
                        .and_then(|i| i.get("data"))
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .ok_or_else(|| item_missing(&self.table, &key))
                })
                .buffered(16)
                .try_collect()
                .await
        }

        /// One item `lease#{name}` (attributes `holder`, `renewed_at`; no TTL: it must not
        /// vanish under its holder). Released by removing `holder`, so no DeleteItem right.
        async fn take_lease(
            &self,
            name: &str,
            run_id: &str,
            now_ms: i64,
            stale_after_ms: i64,
        ) -> Result<LeaseTake, StoreError> {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("run_id", s(lease_key(name)))
                .item("holder", s(run_id))
                .item("renewed_at", n(now_ms))
                .condition_expression(
                    "attribute_not_exists(holder) OR holder = :me OR renewed_at < :stale",
                )
                .expression_attribute_values(":me", s(run_id))
                .expression_attribute_values(":stale", n(now_ms - stale_after_ms))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match result {
                Ok(out) => Ok(LeaseTake::Taken {
                    from: out
                        .attributes()
                        .and_then(lease_of)
                        .filter(|l| l.holder != run_id),
                }),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(_)) => {
                        // Refused: someone holds it. Read who, for the refusal's message (a
                        // release in between reports the holder as unknown: try again later).
                        let holder = self.lease(name).await?.unwrap_or(Lease {
                            holder: "unknown (released meanwhile)".into(),
                            renewed_at_ms: now_ms,
                        });
                        Ok(LeaseTake::Busy(holder))
                    }
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        async fn renew_lease(
            &self,
            name: &str,
            run_id: &str,
            now_ms: i64,
        ) -> Result<bool, StoreError> {
            self.update_while_held(name, run_id, "SET renewed_at = :v", n(now_ms))
                .await
        }

        async fn release_lease(
            &self,
            name: &str,
            run_id: &str,
        ) -> Result<Option<String>, StoreError> {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("run_id", s(lease_key(name)))
                .update_expression("REMOVE holder, renewed_at, waiting")
                .condition_expression("holder = :me")
                .expression_attribute_values(":me", s(run_id))
                .return_values(ReturnValue::AllOld)
                .send()
                .await;
            match result {
                Ok(out) => Ok(out
                    .attributes()
                    .and_then(|a| a.get("waiting"))
                    .and_then(|w| w.as_s().ok())
                    .cloned()),
                Err(err) => match err.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(None),
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        /// The kind is an attribute `waiting` on the lease item: a take-over's PutItem
        /// replaces the item and drops it, a release removes and returns it.
        async fn wait_behind(
            &self,
            name: &str,
            holder: &str,
            kind: &str,
        ) -> Result<bool, StoreError> {
            self.update_while_held(name, holder, "SET waiting = :v", s(kind))
                .await
        }

        async fn lease(&self, name: &str) -> Result<Option<Lease>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("run_id", s(lease_key(name)))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(out.item().and_then(lease_of))
        }
    }

    /// The lease an item holds (none once released: no `holder`).
    fn lease_of(item: &Item) -> Option<Lease> {
        let holder = item.get("holder")?.as_s().ok()?.clone();
        let renewed_at_ms = item.get("renewed_at")?.as_n().ok()?.parse().ok()?;
        Some(Lease {
            holder,
            renewed_at_ms,
        })
    }
}
