//! The organization mirror: a compact copy of every Zendesk organization (id, name,
//! external_id, domains, updated_at) with lookups by domain and by external_id. Zendesk's own
//! search covers only external_id and name, so the domain step of resolution reads the mirror
//! and then confirms the candidates live (`show_many?ids`); a stale mirror can cost a lookup,
//! never a wrong link. Domains are kept and looked up as resolution compares `domain_names`
//! (trimmed, without a trailing dot, any case): a legacy org's `acme.com.` is found for
//! `acme.com`, or the worker would create beside it (the chaos run's 20 wrong links).
//!
//! DynamoDB layout (docs/state.md): one table, items keyed `pk`/`sk`:
//! - org item `org#{id}` / `org`, with `external_id_lc` for the `by_external_id` index;
//! - one domain item per (domain, org) `org#{id}` / `domain#{domain}`, with `domain` for the
//!   `by_domain` index — a GSI key holds one value, so one item per domain is what lets a
//!   domain point at several organizations;
//! - checkpoint items `checkpoint#{name}` / `checkpoint` for resumable listings;
//! - one listing stamp per organization `org#{id}` / `listed` (`listing` = the full
//!   reconcile run that last listed it): what lets a listing spanning invocations find the
//!   organizations Zendesk no longer lists;
//! - the completeness marker `marker#filled` / `marker`: a full listing of Zendesk's
//!   organizations has been read in. Until it exists the mirror's silence proves nothing (a
//!   fresh deployment, a table restored empty), so the worker creates no organization on it.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use super::error::StoreError;
use crate::backfill::index::domain_key;
use crate::ids::OrgId;
use crate::model::Organization;

/// One mirrored organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirroredOrg {
    pub id: OrgId,
    pub name: String,
    pub external_id: Option<String>,
    /// As resolution compares them (trimmed, no trailing dot, lowercased), sorted, unique.
    pub domains: Vec<String>,
    /// Zendesk's `updated_at` (ISO-8601 UTC, so later values sort later as text).
    pub updated_at: Option<String>,
}

impl MirroredOrg {
    pub fn new(
        id: OrgId,
        name: impl Into<String>,
        external_id: Option<String>,
        domains: impl IntoIterator<Item = impl AsRef<str>>,
        updated_at: Option<String>,
    ) -> Self {
        let mut domains: Vec<String> = domains
            .into_iter()
            .map(|d| domain_key(d.as_ref()))
            .filter(|d| !d.is_empty())
            .collect();
        domains.sort();
        domains.dedup();
        MirroredOrg {
            id,
            name: name.into(),
            external_id: external_id.filter(|e| !e.trim().is_empty()),
            domains,
            updated_at,
        }
    }

    /// As a resolution candidate (tags and fields are not mirrored; the worker reads the org
    /// live before it writes).
    pub fn to_organization(&self) -> Organization {
        Organization {
            id: self.id,
            name: self.name.clone(),
            external_id: self.external_id.clone(),
            domain_names: self.domains.clone(),
            tags: Vec::new(),
            organization_fields: BTreeMap::new(),
            updated_at: self.updated_at.clone(),
        }
    }
}

impl From<&Organization> for MirroredOrg {
    fn from(org: &Organization) -> Self {
        MirroredOrg::new(
            org.id,
            org.name.clone(),
            org.external_id.clone(),
            &org.domain_names,
            org.updated_at.clone(),
        )
    }
}

/// Zendesk compares external ids case-insensitively; so does the mirror.
fn external_key(external_id: &str) -> String {
    external_id.trim().to_lowercase()
}

/// Whether an update stamped `new` may replace what is stored (stamped `old`): older
/// copies (a slow webhook after a newer listing) are dropped.
fn newer_or_same(old: Option<&str>, new: Option<&str>) -> bool {
    match (old, new) {
        (Some(old), Some(new)) => new >= old,
        _ => true,
    }
}

/// The completeness marker: who last read a full listing of Zendesk's organizations into
/// the mirror, and when. Written only when such a listing ended (reconcile's full refresh,
/// backfill apply), never by the worker or webhooks, which see one organization at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorFilled {
    /// What read the listing (`reconcile`, `backfill`).
    pub by: String,
    /// Epoch ms.
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpsertOutcome {
    Written,
    /// The mirror already holds a newer copy of this organization.
    Stale,
}

pub trait OrgMirror: Send + Sync {
    fn upsert(
        &self,
        org: &MirroredOrg,
    ) -> impl Future<Output = Result<UpsertOutcome, StoreError>> + Send;
    /// Several organizations, each as `upsert` would write it; the outcomes in the order
    /// given. What the mirror already holds exactly as given is not written again.
    fn upsert_many(
        &self,
        orgs: &[MirroredOrg],
    ) -> impl Future<Output = Result<Vec<UpsertOutcome>, StoreError>> + Send;
    fn delete(&self, id: OrgId) -> impl Future<Output = Result<(), StoreError>> + Send;
    fn get(
        &self,
        id: OrgId,
    ) -> impl Future<Output = Result<Option<MirroredOrg>, StoreError>> + Send;
    /// Organizations carrying this domain (any case), by id.
    fn by_domain(
        &self,
        domain: &str,
    ) -> impl Future<Output = Result<Vec<MirroredOrg>, StoreError>> + Send;
    /// Organizations whose external_id equals this one, case-insensitively, by id.
    fn by_external_id(
        &self,
        external_id: &str,
    ) -> impl Future<Output = Result<Vec<MirroredOrg>, StoreError>> + Send;
    /// Every mirrored organization, by id (a scan: reconcile rebuilds its index from it when a
    /// run continues in a new invocation).
    fn all(&self) -> impl Future<Output = Result<Vec<MirroredOrg>, StoreError>> + Send;
    /// Where a resumable listing stopped (an opaque cursor), if it did.
    fn checkpoint(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
    /// Saves the cursor; `None` clears it (the listing completed).
    fn save_checkpoint(
        &self,
        name: &str,
        cursor: Option<&str>,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// The completeness marker, if a full listing was ever read in.
    fn filled(&self) -> impl Future<Output = Result<Option<MirrorFilled>, StoreError>> + Send;
    /// Records that a full listing of Zendesk's organizations has just been read in. Call it
    /// only after the listing's last page (and the removal of what it no longer showed).
    fn mark_filled(
        &self,
        by: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Stamps these organizations as shown by the full listing `listing` (reconcile's run id),
    /// so the listing's end can tell what Zendesk no longer lists without keeping the ids it
    /// saw. The stamp is its own item beside the org item: an upsert, which replaces the org
    /// item, keeps it; deleting the organization deletes it.
    fn stamp_listed(
        &self,
        ids: &[OrgId],
        listing: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Every mirrored organization the listing `listing` did not stamp (a scan), by id.
    fn not_listed(
        &self,
        listing: &str,
    ) -> impl Future<Output = Result<Vec<MirroredOrg>, StoreError>> + Send;
}

/// The in-memory twin.
#[derive(Debug, Default)]
pub struct MemoryMirror {
    orgs: Mutex<BTreeMap<OrgId, MirroredOrg>>,
    checkpoints: Mutex<HashMap<String, String>>,
    filled: Mutex<Option<MirrorFilled>>,
    /// The listing that last stamped each organization (ids are never reused, so a stamp
    /// left by a deleted organization names nothing).
    listed: Mutex<HashMap<OrgId, String>>,
}

impl OrgMirror for MemoryMirror {
    async fn upsert(&self, org: &MirroredOrg) -> Result<UpsertOutcome, StoreError> {
        let mut orgs = self.orgs.lock().expect("mirror lock");
        let old = orgs.get(&org.id).and_then(|o| o.updated_at.as_deref());
        if !newer_or_same(old, org.updated_at.as_deref()) {
            return Ok(UpsertOutcome::Stale);
        }
        orgs.insert(org.id, org.clone());
        Ok(UpsertOutcome::Written)
    }

    async fn upsert_many(&self, orgs: &[MirroredOrg]) -> Result<Vec<UpsertOutcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(orgs.len());
        for org in orgs {
            outcomes.push(self.upsert(org).await?);
        }
        Ok(outcomes)
    }

    async fn delete(&self, id: OrgId) -> Result<(), StoreError> {
        self.orgs.lock().expect("mirror lock").remove(&id);
        Ok(())
    }

    async fn get(&self, id: OrgId) -> Result<Option<MirroredOrg>, StoreError> {
        Ok(self.orgs.lock().expect("mirror lock").get(&id).cloned())
    }

    async fn by_domain(&self, domain: &str) -> Result<Vec<MirroredOrg>, StoreError> {
        let domain = domain_key(domain);
        let orgs = self.orgs.lock().expect("mirror lock");
        Ok(orgs
            .values()
            .filter(|o| o.domains.contains(&domain))
            .cloned()
            .collect())
    }

    async fn by_external_id(&self, external_id: &str) -> Result<Vec<MirroredOrg>, StoreError> {
        let want = external_key(external_id);
        let orgs = self.orgs.lock().expect("mirror lock");
        Ok(orgs
            .values()
            .filter(|o| o.external_id.as_deref().map(external_key) == Some(want.clone()))
            .cloned()
            .collect())
    }

    async fn all(&self) -> Result<Vec<MirroredOrg>, StoreError> {
        Ok(self
            .orgs
            .lock()
            .expect("mirror lock")
            .values()
            .cloned()
            .collect())
    }

    async fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .checkpoints
            .lock()
            .expect("mirror lock")
            .get(name)
            .cloned())
    }

    async fn save_checkpoint(
        &self,
        name: &str,
        cursor: Option<&str>,
        _now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut checkpoints = self.checkpoints.lock().expect("mirror lock");
        match cursor {
            Some(c) => checkpoints.insert(name.to_string(), c.to_string()),
            None => checkpoints.remove(name),
        };
        Ok(())
    }

    async fn filled(&self) -> Result<Option<MirrorFilled>, StoreError> {
        Ok(self.filled.lock().expect("mirror lock").clone())
    }

    async fn mark_filled(&self, by: &str, now_ms: i64) -> Result<(), StoreError> {
        *self.filled.lock().expect("mirror lock") = Some(MirrorFilled {
            by: by.to_string(),
            at_ms: now_ms,
        });
        Ok(())
    }

    async fn stamp_listed(&self, ids: &[OrgId], listing: &str) -> Result<(), StoreError> {
        let mut listed = self.listed.lock().expect("mirror lock");
        for id in ids {
            listed.insert(*id, listing.to_string());
        }
        Ok(())
    }

    async fn not_listed(&self, listing: &str) -> Result<Vec<MirroredOrg>, StoreError> {
        let listed = self.listed.lock().expect("mirror lock");
        let orgs = self.orgs.lock().expect("mirror lock");
        Ok(orgs
            .values()
            .filter(|o| listed.get(&o.id).map(String::as_str) != Some(listing))
            .cloned()
            .collect())
    }
}

#[cfg(feature = "aws")]
pub use self::dynamo_impl::DynamoMirror;

#[cfg(feature = "aws")]
mod dynamo_impl {
    use std::collections::BTreeSet;

    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
    use futures_util::{StreamExt, TryStreamExt, stream};

    use super::*;
    use crate::aws::dynamo::{self, Item, SERVICE, n, opt_s, req_s, s};
    use crate::aws::error::classify;

    const ORG_SK: &str = "org";
    const CHECKPOINT_SK: &str = "checkpoint";
    const FILLED_PK: &str = "marker#filled";
    const MARKER_SK: &str = "marker";
    /// The listing stamp beside an org item (`listing` = the run id that last listed it).
    const LISTED_SK: &str = "listed";
    /// Org items written at once by one `upsert_many` (each is a conditional PutItem).
    const PUT_CONCURRENCY: usize = 8;

    fn org_pk(id: OrgId) -> String {
        format!("org#{id}")
    }

    fn domain_put(org: OrgId, domain: &str) -> WriteRequest {
        let item = Item::from([
            ("pk".into(), s(org_pk(org))),
            ("sk".into(), s(format!("domain#{domain}"))),
            ("domain".into(), s(domain)),
            ("org_id".into(), s(org.to_string())),
        ]);
        put_write(item)
    }

    fn domain_delete(org: OrgId, domain: &str) -> WriteRequest {
        delete_write(Item::from([
            ("pk".into(), s(org_pk(org))),
            ("sk".into(), s(format!("domain#{domain}"))),
        ]))
    }

    /// One BatchWriteItem put of `item`.
    fn put_write(item: Item) -> WriteRequest {
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .expect("item set");
        WriteRequest::builder().put_request(put).build()
    }

    /// One BatchWriteItem delete of the item at `key`.
    fn delete_write(key: Item) -> WriteRequest {
        let del = DeleteRequest::builder()
            .set_key(Some(key))
            .build()
            .expect("key set");
        WriteRequest::builder().delete_request(del).build()
    }

    #[derive(Debug, Clone)]
    pub struct DynamoMirror {
        client: Client,
        table: String,
    }

    impl DynamoMirror {
        pub fn new(client: Client, table: impl Into<String>) -> Self {
            DynamoMirror {
                client,
                table: table.into(),
            }
        }

        fn org_item(org: &MirroredOrg) -> Item {
            let mut item = Item::new();
            item.insert("pk".into(), s(org_pk(org.id)));
            item.insert("sk".into(), s(ORG_SK));
            item.insert("org_id".into(), s(org.id.to_string()));
            item.insert("name".into(), s(&org.name));
            if let Some(e) = &org.external_id {
                item.insert("external_id".into(), s(e));
                item.insert("external_id_lc".into(), s(external_key(e)));
            }
            if !org.domains.is_empty() {
                item.insert("domains".into(), AttributeValue::Ss(org.domains.clone()));
            }
            if let Some(u) = &org.updated_at {
                item.insert("updated_at".into(), s(u));
            }
            item
        }

        fn read_item(&self, item: &Item) -> Result<MirroredOrg, StoreError> {
            let pk = req_s(item, "pk", &self.table, "?")?;
            let id = req_s(item, "org_id", &self.table, &pk)?;
            let id = OrgId::parse(&id).map_err(|e| StoreError::corrupt(&self.table, &pk, e))?;
            let domains = match item.get("domains") {
                Some(AttributeValue::Ss(d)) => d.clone(),
                _ => Vec::new(),
            };
            Ok(MirroredOrg::new(
                id,
                req_s(item, "name", &self.table, &pk)?,
                opt_s(item, "external_id"),
                domains,
                opt_s(item, "updated_at"),
            ))
        }

        async fn batch_write(&self, writes: Vec<WriteRequest>) -> Result<(), StoreError> {
            dynamo::batch_write(&self.client, &self.table, writes).await
        }

        /// Writes the org item unless the mirror holds a newer copy.
        async fn put_org(&self, org: &MirroredOrg) -> Result<UpsertOutcome, StoreError> {
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(Self::org_item(org)));
            if let Some(u) = &org.updated_at {
                put = put
                    .condition_expression(
                        "attribute_not_exists(pk) OR attribute_not_exists(updated_at) OR updated_at <= :u",
                    )
                    .expression_attribute_values(":u", s(u));
            }
            match put.send().await {
                Ok(_) => Ok(UpsertOutcome::Written),
                Err(err) => match err.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(_)) => {
                        Ok(UpsertOutcome::Stale)
                    }
                    _ => Err(classify(SERVICE, err)),
                },
            }
        }

        /// Org items read into orgs, in id order.
        fn read_sorted<'a>(
            &self,
            items: impl Iterator<Item = &'a Item>,
        ) -> Result<Vec<MirroredOrg>, StoreError> {
            let mut orgs = items
                .map(|i| self.read_item(i))
                .collect::<Result<Vec<_>, _>>()?;
            orgs.sort_by_key(|o| o.id);
            Ok(orgs)
        }

        /// Every item of a secondary index whose key attribute equals `key`
        /// (eventually consistent: indexes do not offer consistent reads).
        async fn query_index(
            &self,
            index: &str,
            key_attr: &str,
            key: String,
        ) -> Result<Vec<Item>, StoreError> {
            // The name goes through a placeholder: `domain` is a reserved word.
            self.client
                .query()
                .table_name(&self.table)
                .index_name(index)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", key_attr)
                .expression_attribute_values(":k", s(key))
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| classify(SERVICE, e))
        }

        /// Every item whose sort key is one of `kinds`, read consistently.
        async fn scan_kinds(&self, kinds: &[&str]) -> Result<Vec<Item>, StoreError> {
            let filter = (0..kinds.len())
                .map(|i| format!("sk = :k{i}"))
                .collect::<Vec<_>>()
                .join(" OR ");
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(filter)
                .consistent_read(true);
            for (i, kind) in kinds.iter().enumerate() {
                scan = scan.expression_attribute_values(format!(":k{i}"), s(*kind));
            }
            scan.into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| classify(SERVICE, e))
        }

        /// Every item of one organization (its org item and its domain items).
        async fn org_items(&self, id: OrgId) -> Result<Vec<Item>, StoreError> {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(org_pk(id)))
                .consistent_read(true)
                .into_paginator()
                .items()
                .send()
                .collect::<Result<Vec<_>, _>>()
                .await
                .map_err(|e| classify(SERVICE, e))
        }

        async fn get_many(&self, ids: BTreeSet<OrgId>) -> Result<Vec<MirroredOrg>, StoreError> {
            let keys: Vec<Item> = ids
                .into_iter()
                .map(|id| Item::from([("pk".into(), s(org_pk(id))), ("sk".into(), s(ORG_SK))]))
                .collect();
            let mut found = dynamo::batch_get(&self.client, &self.table, keys)
                .await?
                .iter()
                .map(|item| self.read_item(item))
                .collect::<Result<Vec<_>, _>>()?;
            found.sort_by_key(|o| o.id);
            Ok(found)
        }
    }

    impl OrgMirror for DynamoMirror {
        async fn upsert(&self, org: &MirroredOrg) -> Result<UpsertOutcome, StoreError> {
            let mut outcomes = self.upsert_many(std::slice::from_ref(org)).await?;
            Ok(outcomes.pop().unwrap_or(UpsertOutcome::Written))
        }

        /// One BatchGetItem per 100 organizations reads what the mirror holds of them (a
        /// Query per organization would cost a request each, and on moto a pass over the whole
        /// table each); organizations held exactly as given are not written again.
        ///
        /// Domain items are written before the org item and stale ones deleted after it, so
        /// every domain an org item lists has its item whatever the moment of a crash (a
        /// lookup by domain never misses the org); a leftover item of an interrupted write
        /// names an org that does not carry the domain, and `by_domain` drops it.
        async fn upsert_many(
            &self,
            orgs: &[MirroredOrg],
        ) -> Result<Vec<UpsertOutcome>, StoreError> {
            let stored: HashMap<OrgId, MirroredOrg> = self
                .get_many(orgs.iter().map(|o| o.id).collect())
                .await?
                .into_iter()
                .map(|o| (o.id, o))
                .collect();
            let mut outcomes = vec![UpsertOutcome::Written; orgs.len()];
            let mut changed = Vec::new();
            let mut domain_puts = Vec::new();
            for (i, org) in orgs.iter().enumerate() {
                match stored.get(&org.id) {
                    Some(old)
                        if !newer_or_same(old.updated_at.as_deref(), org.updated_at.as_deref()) =>
                    {
                        outcomes[i] = UpsertOutcome::Stale;
                    }
                    Some(old) if old == org => {}
                    _ => {
                        changed.push(i);
                        // Every domain, not only the new ones: an item lost by an older
                        // writer's crash comes back with the org's next change.
                        domain_puts.extend(org.domains.iter().map(|d| domain_put(org.id, d)));
                    }
                }
            }
            self.batch_write(domain_puts).await?;
            let written: Vec<(usize, UpsertOutcome)> = stream::iter(changed)
                .map(|i| async move { Ok::<_, StoreError>((i, self.put_org(&orgs[i]).await?)) })
                .buffer_unordered(PUT_CONCURRENCY)
                .try_collect()
                .await?;
            let mut domain_deletes = Vec::new();
            for (i, outcome) in written {
                let org = &orgs[i];
                if outcome == UpsertOutcome::Written
                    && let Some(old) = stored.get(&org.id)
                {
                    domain_deletes.extend(
                        old.domains
                            .iter()
                            .filter(|d| !org.domains.contains(d))
                            .map(|d| domain_delete(org.id, d)),
                    );
                }
                outcomes[i] = outcome;
            }
            self.batch_write(domain_deletes).await?;
            Ok(outcomes)
        }

        async fn delete(&self, id: OrgId) -> Result<(), StoreError> {
            let writes = self
                .org_items(id)
                .await?
                .into_iter()
                .map(|item| {
                    let key = Item::from([
                        (
                            "pk".into(),
                            item.get("pk").cloned().unwrap_or(s(org_pk(id))),
                        ),
                        ("sk".into(), item.get("sk").cloned().unwrap_or(s(ORG_SK))),
                    ]);
                    delete_write(key)
                })
                .collect();
            self.batch_write(writes).await
        }

        async fn get(&self, id: OrgId) -> Result<Option<MirroredOrg>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(org_pk(id)))
                .key("sk", s(ORG_SK))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            out.item().map(|i| self.read_item(i)).transpose()
        }

        async fn by_domain(&self, domain: &str) -> Result<Vec<MirroredOrg>, StoreError> {
            let items = self
                .query_index("by_domain", "domain", domain_key(domain))
                .await?;
            let mut ids = BTreeSet::new();
            for item in &items {
                let id = req_s(item, "org_id", &self.table, "by_domain")?;
                ids.insert(
                    OrgId::parse(&id).map_err(|e| StoreError::corrupt(&self.table, &id, e))?,
                );
            }
            // The index is eventually consistent: keep only orgs that still carry the domain.
            let domain = domain_key(domain);
            Ok(self
                .get_many(ids)
                .await?
                .into_iter()
                .filter(|o| o.domains.contains(&domain))
                .collect())
        }

        async fn by_external_id(&self, external_id: &str) -> Result<Vec<MirroredOrg>, StoreError> {
            let items = self
                .query_index(
                    "by_external_id",
                    "external_id_lc",
                    external_key(external_id),
                )
                .await?;
            self.read_sorted(items.iter())
        }

        async fn all(&self) -> Result<Vec<MirroredOrg>, StoreError> {
            // Org items only (domain and checkpoint items share the table).
            let items = self.scan_kinds(&[ORG_SK]).await?;
            self.read_sorted(items.iter())
        }

        async fn checkpoint(&self, name: &str) -> Result<Option<String>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(format!("checkpoint#{name}")))
                .key("sk", s(CHECKPOINT_SK))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(out.item().and_then(|i| opt_s(i, "cursor")))
        }

        async fn save_checkpoint(
            &self,
            name: &str,
            cursor: Option<&str>,
            now_ms: i64,
        ) -> Result<(), StoreError> {
            let pk = s(format!("checkpoint#{name}"));
            match cursor {
                Some(c) => {
                    self.client
                        .put_item()
                        .table_name(&self.table)
                        .item("pk", pk)
                        .item("sk", s(CHECKPOINT_SK))
                        .item("cursor", s(c))
                        .item("saved_at", n(now_ms))
                        .send()
                        .await
                        .map_err(|e| classify(SERVICE, e))?;
                }
                None => {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .key("pk", pk)
                        .key("sk", s(CHECKPOINT_SK))
                        .send()
                        .await
                        .map_err(|e| classify(SERVICE, e))?;
                }
            }
            Ok(())
        }

        async fn filled(&self) -> Result<Option<MirrorFilled>, StoreError> {
            let out = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(FILLED_PK))
                .key("sk", s(MARKER_SK))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            let Some(item) = out.item() else {
                return Ok(None);
            };
            let at_ms = match item.get("at_ms") {
                Some(AttributeValue::N(v)) => v
                    .parse()
                    .map_err(|e| StoreError::corrupt(&self.table, FILLED_PK, e))?,
                _ => 0,
            };
            Ok(Some(MirrorFilled {
                by: opt_s(item, "by").unwrap_or_default(),
                at_ms,
            }))
        }

        async fn mark_filled(&self, by: &str, now_ms: i64) -> Result<(), StoreError> {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(FILLED_PK))
                .item("sk", s(MARKER_SK))
                .item("by", s(by))
                .item("at_ms", n(now_ms))
                .send()
                .await
                .map_err(|e| classify(SERVICE, e))?;
            Ok(())
        }

        /// One small put per organization, 25 a request (unconditional: a stamp of an
        /// organization deleted meanwhile names nothing and is never read).
        async fn stamp_listed(&self, ids: &[OrgId], listing: &str) -> Result<(), StoreError> {
            let writes = ids
                .iter()
                .map(|id| {
                    let item = Item::from([
                        ("pk".into(), s(org_pk(*id))),
                        ("sk".into(), s(LISTED_SK)),
                        ("listing".into(), s(listing)),
                    ]);
                    put_write(item)
                })
                .collect();
            self.batch_write(writes).await
        }

        async fn not_listed(&self, listing: &str) -> Result<Vec<MirroredOrg>, StoreError> {
            // Org items and stamps in one scan (domain and checkpoint items are skipped).
            let items = self.scan_kinds(&[ORG_SK, LISTED_SK]).await?;
            let stamped: BTreeSet<String> = items
                .iter()
                .filter(|i| opt_s(i, "sk").as_deref() == Some(LISTED_SK))
                .filter(|i| opt_s(i, "listing").as_deref() == Some(listing))
                .filter_map(|i| opt_s(i, "pk"))
                .collect();
            self.read_sorted(
                items
                    .iter()
                    .filter(|i| opt_s(i, "sk").as_deref() == Some(ORG_SK))
                    .filter(|i| opt_s(i, "pk").is_none_or(|pk| !stamped.contains(&pk))),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_copies_never_replace_newer_ones() {
        assert!(newer_or_same(None, Some("2024-01-01T00:00:00Z")));
        assert!(newer_or_same(Some("2024-01-01T00:00:00Z"), None));
        assert!(newer_or_same(
            Some("2024-01-01T00:00:00Z"),
            Some("2024-01-01T00:00:00Z")
        ));
        assert!(!newer_or_same(
            Some("2024-01-02T00:00:00Z"),
            Some("2024-01-01T00:00:00Z")
        ));
    }

    #[tokio::test]
    async fn the_marker_is_absent_until_a_full_listing_marks_it() {
        let mirror = MemoryMirror::default();
        // Rows alone (a webhook, the worker) say nothing about completeness.
        mirror
            .upsert(&MirroredOrg::new(
                OrgId::new(7).unwrap(),
                "Acme",
                None,
                ["acme.com"],
                None,
            ))
            .await
            .unwrap();
        assert_eq!(mirror.filled().await.unwrap(), None);
        mirror.mark_filled("reconcile", 42).await.unwrap();
        assert_eq!(
            mirror.filled().await.unwrap(),
            Some(MirrorFilled {
                by: "reconcile".into(),
                at_ms: 42
            })
        );
    }

    #[test]
    fn domains_are_normalized_for_lookup() {
        let org = MirroredOrg::new(
            OrgId::new(7).unwrap(),
            "Acme",
            Some(" ".into()),
            ["Acme.COM", "acme.com", " b.io "],
            None,
        );
        assert_eq!(org.domains, ["acme.com", "b.io"]);
        assert_eq!(org.external_id, None);
    }
}
