//! The exception table: one row per distinct problem, keyed by the finding's fingerprint, so a
//! nightly run updates a row instead of adding one.
//!
//! A sighting refreshes `last_seen`, `times_seen`, the evidence and its hash; `first_seen`
//! stays. Status rules (decided by the pure [`merge_sighting`], shared by both stores):
//! - `open` stays open;
//! - `resolved` (a person said it is fixed) and `dismissed` (a person said it is not a problem)
//!   stay so while the evidence hash is unchanged, and reopen when it changes — new evidence
//!   is a new question for the person;
//! - `auto_resolved` (reconcile no longer saw it) reopens on any sighting: the problem came back.
//!
//! Every status change records who made it, why and when.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use crate::exceptions::{ExceptionKind, Finding, Fingerprint, Severity};

/// Who made automatic status changes.
pub const ORGLINK: &str = "orglink";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStatus {
    Open,
    Resolved,
    Dismissed,
    AutoResolved,
}

impl ExceptionStatus {
    pub const ALL: [ExceptionStatus; 4] = [
        ExceptionStatus::Open,
        ExceptionStatus::Resolved,
        ExceptionStatus::Dismissed,
        ExceptionStatus::AutoResolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ExceptionStatus::Open => "open",
            ExceptionStatus::Resolved => "resolved",
            ExceptionStatus::Dismissed => "dismissed",
            ExceptionStatus::AutoResolved => "auto_resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The last status change: who, why, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub by: String,
    pub reason: String,
    pub at_ms: i64,
}

/// One row of the review queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRow {
    pub fingerprint: Fingerprint,
    pub finding: Finding,
    pub evidence_hash: String,
    /// Display names of the ids involved (account or org id → name), for the reviewer.
    pub names: BTreeMap<String, String>,
    pub status: ExceptionStatus,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub times_seen: u32,
    pub status_change: Option<StatusChange>,
    /// Optimistic-concurrency version, bumped by every write.
    pub version: u64,
}

impl ExceptionRow {
    pub fn kind(&self) -> ExceptionKind {
        self.finding.kind
    }

    pub fn severity(&self) -> Severity {
        self.finding.severity
    }

    /// What the reviewer is told to do, in plain words.
    pub fn recommended_action(&self) -> &'static str {
        self.finding.kind.recommended_action()
    }
}

/// The row after one more sighting of `finding` (pure; see the module docs for the rules).
pub fn merge_sighting(
    existing: Option<&ExceptionRow>,
    finding: &Finding,
    names: &BTreeMap<String, String>,
    now_ms: i64,
) -> ExceptionRow {
    let hash = finding.evidence_hash();
    let Some(old) = existing else {
        return ExceptionRow {
            fingerprint: finding.fingerprint(),
            finding: finding.clone(),
            evidence_hash: hash,
            names: names.clone(),
            status: ExceptionStatus::Open,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            times_seen: 1,
            status_change: None,
            version: 1,
        };
    };
    let reopen_reason = match old.status {
        ExceptionStatus::Open => None,
        ExceptionStatus::Resolved | ExceptionStatus::Dismissed if old.evidence_hash != hash => {
            Some("the evidence changed")
        }
        ExceptionStatus::Resolved | ExceptionStatus::Dismissed => None,
        ExceptionStatus::AutoResolved => Some("the problem was seen again"),
    };
    let mut row = old.clone();
    row.finding = finding.clone();
    row.evidence_hash = hash;
    row.names
        .extend(names.iter().map(|(k, v)| (k.clone(), v.clone())));
    row.last_seen_ms = row.last_seen_ms.max(now_ms);
    row.times_seen = old.times_seen.saturating_add(1);
    row.version = old.version + 1;
    if let Some(reason) = reopen_reason {
        row.status = ExceptionStatus::Open;
        row.status_change = Some(StatusChange {
            by: ORGLINK.into(),
            reason: reason.into(),
            at_ms: now_ms,
        });
    }
    row
}

/// Which rows to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionFilter {
    pub status: ExceptionStatus,
    pub kind: Option<ExceptionKind>,
    pub severity: Option<Severity>,
    pub limit: Option<usize>,
}

impl ExceptionFilter {
    pub fn status(status: ExceptionStatus) -> Self {
        ExceptionFilter {
            status,
            kind: None,
            severity: None,
            limit: None,
        }
    }

    fn matches(&self, row: &ExceptionRow) -> bool {
        row.status == self.status
            && self.kind.is_none_or(|k| k == row.kind())
            && self.severity.is_none_or(|s| s == row.severity())
    }
}

pub trait ExceptionStore: Send + Sync {
    /// Records a sighting (insert, or refresh per [`merge_sighting`]) and returns the row.
    fn upsert(
        &self,
        finding: &Finding,
        names: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> impl Future<Output = Result<ExceptionRow, StoreError>> + Send;

    fn get(
        &self,
        fingerprint: &Fingerprint,
    ) -> impl Future<Output = Result<Option<ExceptionRow>, StoreError>> + Send;

    /// Rows matching the filter, most recently seen first.
    fn list(
        &self,
        filter: &ExceptionFilter,
    ) -> impl Future<Output = Result<Vec<ExceptionRow>, StoreError>> + Send;

    /// A person (or orglink) changes a row's status; `None` when there is no such row.
    fn set_status(
        &self,
        fingerprint: &Fingerprint,
        status: ExceptionStatus,
        by: &str,
        reason: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Option<ExceptionRow>, StoreError>> + Send;

    /// After a complete full reconcile: every open row whose kind is in `kinds`, that the run
    /// did not see and that was last seen before `before_ms` (the run's snapshot of the world:
    /// a row opened after it is about something the run could not see) becomes
    /// `auto_resolved`. Returns the fingerprints it resolved.
    fn auto_resolve(
        &self,
        seen: &BTreeSet<Fingerprint>,
        kinds: &BTreeSet<ExceptionKind>,
        before_ms: i64,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<Fingerprint>, StoreError>> + Send;
}

fn with_status(
    row: &ExceptionRow,
    status: ExceptionStatus,
    by: &str,
    reason: &str,
    now_ms: i64,
) -> ExceptionRow {
    let mut row = row.clone();
    row.status = status;
    row.status_change = Some(StatusChange {
        by: by.into(),
        reason: reason.into(),
        at_ms: now_ms,
    });
    row.version += 1;
    row
}

const AUTO_RESOLVE_REASON: &str = "not seen by a complete reconcile run";

/// The in-memory twin.
#[derive(Debug, Default)]
pub struct MemoryExceptions {
    rows: Mutex<HashMap<Fingerprint, ExceptionRow>>,
}

impl ExceptionStore for MemoryExceptions {
    async fn upsert(
        &self,
        finding: &Finding,
        names: &BTreeMap<String, String>,
        now_ms: i64,
    ) -> Result<ExceptionRow, StoreError> {
        let mut rows = self.rows.lock().expect("exceptions lock");
        let fp = finding.fingerprint();
        let row = merge_sighting(rows.get(&fp), finding, names, now_ms);
        rows.insert(fp, row.clone());
        Ok(row)
    }

    async fn get(&self, fingerprint: &Fingerprint) -> Result<Option<ExceptionRow>, StoreError> {
        Ok(self
            .rows
            .lock()
            .expect("exceptions lock")
            .get(fingerprint)
            .cloned())
    }

    async fn list(&self, filter: &ExceptionFilter) -> Result<Vec<ExceptionRow>, StoreError> {
        let rows = self.rows.lock().expect("exceptions lock");
        let mut out: Vec<ExceptionRow> = rows
            .values()
            .filter(|r| filter.matches(r))
            .cloned()
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.last_seen_ms));
        out.truncate(filter.limit.unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn set_status(
        &self,
        fingerprint: &Fingerprint,
        status: ExceptionStatus,
        by: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Option<ExceptionRow>, StoreError> {
        let mut rows = self.rows.lock().expect("exceptions lock");
        let Some(row) = rows.get(fingerprint) else {
            return Ok(None);
        };
        let row = with_status(row, status, by, reason, now_ms);
        rows.insert(fingerprint.clone(), row.clone());
        Ok(Some(row))
    }

    async fn auto_resolve(
        &self,
        seen: &BTreeSet<Fingerprint>,
        kinds: &BTreeSet<ExceptionKind>,
        before_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<Fingerprint>, StoreError> {
        let mut rows = self.rows.lock().expect("exceptions lock");
        let mut resolved = Vec::new();
        for row in rows.values_mut() {
            if row.status == ExceptionStatus::Open
                && row.last_seen_ms < before_ms
                && kinds.contains(&row.kind())
                && !seen.contains(&row.fingerprint)
            {
                *row = with_status(
                    row,
                    ExceptionStatus::AutoResolved,
                    ORGLINK,
                    AUTO_RESOLVE_REASON,
                    now_ms,
                );
                resolved.push(row.fingerprint.clone());
            }
        }
        resolved.sort();
        Ok(resolved)
    }
}

#[cfg(feature = "aws")]
pub use self::dynamo_impl::DynamoExceptions;

#[cfg(feature = "aws")]
mod dynamo_impl {
    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;

    use super::*;
    use crate::aws::dynamo::{Item, SERVICE, from_json, json, n, req_n, req_s, s};
    use crate::aws::error::classify;

    /// Read-modify-write attempts before reporting contention.
    const ATTEMPTS: usize = 8;

    /// Exception rows in the `{prefix}-exceptions` table (PK `fingerprint`; GSIs `by_status`
    /// and `by_status_kind`, sorted by `last_seen`).
    #[derive(Debug, Clone)]
    pub struct DynamoExceptions {
        client: Client,
        table: String,
    }

    fn status_kind(status: ExceptionStatus, kind: ExceptionKind) -> String {
        format!("{}#{}", status.as_str(), kind.as_str())
    }

    impl DynamoExceptions {
        pub fn new(client: Client, table: impl Into<String>) -> Self {
            DynamoExceptions {
                client,
                table: table.into(),
            }
        }

        fn to_item(row: &ExceptionRow) -> Item {
            Item::from([
                ("fingerprint".into(), s(row.fingerprint.as_str())),
                ("status".into(), s(row.status.as_str())),
                ("status_kind".into(), s(status_kind(row.status, row.kind()))),
                ("kind".into(), s(row.kind().as_str())),
                ("severity".into(), json(&row.severity())),
                ("last_seen".into(), n(row.last_seen_ms)),
                ("first_seen".into(), n(row.first_seen_ms)),
                ("times_seen".into(), n(row.times_seen)),
                ("evidence_hash".into(), s(&row.evidence_hash)),
                ("finding".into(), json(&row.finding)),
                ("names".into(), json(&row.names)),
                ("status_change".into(), json(&row.status_change)),
                ("version".into(), n(row.version)),
            ])
        }

        fn read_item(&self, item: &Item) -> Result<ExceptionRow, StoreError> {
            let t = &self.table;
            let key = req_s(item, "fingerprint", t, "?")?;
            let finding: Finding = from_json(item, "finding", t, &key)?
                .ok_or_else(|| StoreError::corrupt(t, &key, "missing `finding`"))?;
            let status = req_s(item, "status", t, &key)?;
            Ok(ExceptionRow {
                // The stored key, not a recomputed one: a row stays addressable by its key
                // even if the fingerprint recipe changes in a later version.
                fingerprint: serde_json::from_value(serde_json::Value::String(key.clone()))
                    .expect("a fingerprint is a string"),
                evidence_hash: req_s(item, "evidence_hash", t, &key)?,
                names: from_json(item, "names", t, &key)?.unwrap_or_default(),
                status: ExceptionStatus::parse(&status)
                    .ok_or_else(|| StoreError::corrupt(t, &key, format!("status {status}")))?,
                first_seen_ms: req_n(item, "first_seen", t, &key)?,
                last_seen_ms: req_n(item, "last_seen", t, &key)?,
                times_seen: req_n(item, "times_seen", t, &key)?,
                status_change: from_json(item, "status_change", t, &key)?.flatten(),
                version: req_n(item, "version", t, &key)?,
                finding,
            })
        }

        /// Writes `row` if the stored version is still `row.version - 1` (or absent for
        /// version 1); `false` when another writer got there first.
        async fn put_if_unchanged(&self, row: &ExceptionRow) -> Result<bool, StoreError> {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::to_item(row)));
            put = if row.version <= 1 {
                put.condition_expression("attribute_not_exists(fingerprint)")
            } else {
                put.condition_expression("version = :v")
                    .expression_attribute_values(":v", n(row.version - 1))
            };
            match put.send().await {
                Ok(_) => Ok(true),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(_)) => Ok(false),
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        async fn modify(
            &self,
            fingerprint: &Fingerprint,
            change: impl Fn(Option<&ExceptionRow>) -> Option<ExceptionRow>,
        ) -> Result<Option<ExceptionRow>, StoreError> {
            for _ in 0..ATTEMPTS {
                let current = self.get(fingerprint).await?;
                let Some(next) = change(current.as_ref()) else {
                    return Ok(None);
                };
                if self.put_if_unchanged(&next).await? {
                    return Ok(Some(next));
                }
            }
            Err(StoreError::Contended {
                store: self.table.clone(),
                key: fingerprint.to_string(),
            })
        }
    }

    impl ExceptionStore for DynamoExceptions {
        async fn upsert(
            &self,
            finding: &Finding,
            names: &BTreeMap<String, String>,
            now_ms: i64,
        ) -> Result<ExceptionRow, StoreError> {
            let fp = finding.fingerprint();
            self.modify(&fp, |current| {
                Some(merge_sighting(current, finding, names, now_ms))
            })
            .await
            .map(|row| row.expect("upsert always writes"))
        }

        async fn get(&self, fingerprint: &Fingerprint) -> Result<Option<ExceptionRow>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("fingerprint", s(fingerprint.as_str()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            out.item().map(|i| self.read_item(i)).transpose()
        }

        async fn list(&self, filter: &ExceptionFilter) -> Result<Vec<ExceptionRow>, StoreError> {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .scan_index_forward(false);
            query = match filter.kind {
                Some(kind) => query
                    .index_name("by_status_kind")
                    .key_condition_expression("status_kind = :k")
                    .expression_attribute_values(":k", s(status_kind(filter.status, kind))),
                None => query
                    .index_name("by_status")
                    .key_condition_expression("#s = :s")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":s", s(filter.status.as_str())),
            };
            if let Some(sev) = filter.severity {
                query = query
                    .filter_expression("severity = :sev")
                    .expression_attribute_values(":sev", json(&sev));
            }
            let limit = filter.limit.unwrap_or(usize::MAX);
            let mut pages = query.into_paginator().items().send();
            let mut rows = Vec::new();
            while rows.len() < limit {
                match pages.next().await {
                    None => break,
                    Some(item) => {
                        let item = item.map_err(|e| classify(SERVICE, e))?;
                        rows.push(self.read_item(&item)?);
                    }
                }
            }
            Ok(rows)
        }

        async fn set_status(
            &self,
            fingerprint: &Fingerprint,
            status: ExceptionStatus,
            by: &str,
            reason: &str,
            now_ms: i64,
        ) -> Result<Option<ExceptionRow>, StoreError> {
            self.modify(fingerprint, |current| {
                current.map(|row| with_status(row, status, by, reason, now_ms))
            })
            .await
        }

        async fn auto_resolve(
            &self,
            seen: &BTreeSet<Fingerprint>,
            kinds: &BTreeSet<ExceptionKind>,
            before_ms: i64,
            now_ms: i64,
        ) -> Result<Vec<Fingerprint>, StoreError> {
            let open = self
                .list(&ExceptionFilter::status(ExceptionStatus::Open))
                .await?;
            let mut resolved = Vec::new();
            for row in open {
                if !kinds.contains(&row.kind())
                    || seen.contains(&row.fingerprint)
                    || row.last_seen_ms >= before_ms
                {
                    continue;
                }
                // Re-checked under the version condition: a row reopened or seen meanwhile
                // (after the run's snapshot) is left alone.
                let changed = self
                    .modify(&row.fingerprint, |current| {
                        current
                            .filter(|c| {
                                c.status == ExceptionStatus::Open && c.last_seen_ms < before_ms
                            })
                            .map(|c| {
                                with_status(
                                    c,
                                    ExceptionStatus::AutoResolved,
                                    ORGLINK,
                                    AUTO_RESOLVE_REASON,
                                    now_ms,
                                )
                            })
                    })
                    .await?;
                if changed.is_some() {
                    resolved.push(row.fingerprint);
                }
            }
            resolved.sort();
            Ok(resolved)
        }
    }
}
