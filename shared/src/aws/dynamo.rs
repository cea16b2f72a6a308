//! Small helpers shared by the DynamoDB adapters: attribute values in and out, with
//! malformed items reported as [`StoreError::Corrupt`] rather than panics.

use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

use aws_sdk_dynamodb::types::AttributeValue;

use super::error::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

pub(crate) const SERVICE: &str = "DynamoDB";

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: impl Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub(crate) fn req_s(item: &Item, name: &str, store: &str, key: &str) -> Result<String, StoreError> {
    opt_s(item, name)
        .ok_or_else(|| StoreError::corrupt(store, key, format!("missing string `{name}`")))
}

pub(crate) fn opt_n<T: FromStr>(
    item: &Item,
    name: &str,
    store: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v
            .parse()
            .map(Some)
            .map_err(|_| StoreError::corrupt(store, key, format!("`{name}` is not a number"))),
        Some(_) => Err(StoreError::corrupt(
            store,
            key,
            format!("`{name}` is not a number attribute"),
        )),
    }
}

pub(crate) fn req_n<T: FromStr>(
    item: &Item,
    name: &str,
    store: &str,
    key: &str,
) -> Result<T, StoreError> {
    opt_n(item, name, store, key)?
        .ok_or_else(|| StoreError::corrupt(store, key, format!("missing number `{name}`")))
}

/// A JSON document kept in one string attribute (nested shapes the queries never look into).
pub(crate) fn json<T: serde::Serialize>(v: &T) -> AttributeValue {
    s(serde_json::to_string(v).expect("stored shapes serialize"))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    item: &Item,
    name: &str,
    store: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match opt_s(item, name) {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StoreError::corrupt(store, key, format!("`{name}`: {e}"))),
    }
}

/// BatchWriteItem's limit per call.
pub(crate) const WRITE_BATCH: usize = 25;
/// BatchGetItem's limit per call.
pub(crate) const GET_BATCH: usize = 100;
/// How often items a batch call left unprocessed are sent again before giving up as throttled.
const BATCH_ATTEMPTS: usize = 5;

/// Sends `request` and then what DynamoDB left unprocessed of it (`send` answers the items
/// read and the unprocessed rest, if any), at most [`BATCH_ATTEMPTS`] times; still unprocessed
/// after that is a transient error (throttled), `what` saying what was left.
async fn until_processed<P, Fut>(
    request: P,
    mut send: impl FnMut(P) -> Fut,
    what: impl FnOnce(&P) -> String,
) -> Result<Vec<Item>, StoreError>
where
    Fut: std::future::Future<Output = Result<(Vec<Item>, Option<P>), StoreError>>,
{
    let mut found = Vec::new();
    let mut pending = request;
    for _ in 0..BATCH_ATTEMPTS {
        let (items, rest) = send(pending).await?;
        found.extend(items);
        match rest {
            None => return Ok(found),
            Some(rest) => pending = rest,
        }
    }
    Err(StoreError::Transient {
        service: SERVICE,
        detail: what(&pending),
    })
}

/// Unconditional puts and deletes in batches of 25 (one request each instead of 25), sending
/// again what DynamoDB leaves unprocessed. Only for writes that need no condition.
pub(crate) async fn batch_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    writes: Vec<aws_sdk_dynamodb::types::WriteRequest>,
) -> Result<(), StoreError> {
    for chunk in writes.chunks(WRITE_BATCH) {
        until_processed(
            chunk.to_vec(),
            |pending| async move {
                let out = client
                    .batch_write_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| super::error::classify(SERVICE, e))?;
                let rest = out
                    .unprocessed_items()
                    .and_then(|u| u.get(table))
                    .filter(|w| !w.is_empty())
                    .cloned();
                Ok((Vec::new(), rest))
            },
            |pending| format!("{} writes to {table} left unprocessed", pending.len()),
        )
        .await?;
    }
    Ok(())
}

/// The items under these keys (those that exist, in no particular order), 100 keys a request,
/// strongly consistent.
pub(crate) async fn batch_get(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: Vec<Item>,
) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::new();
    for chunk in keys.chunks(GET_BATCH) {
        let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(chunk.to_vec()))
            .consistent_read(true)
            .build()
            .expect("keys are set");
        let items = until_processed(
            request,
            |pending| async move {
                let out = client
                    .batch_get_item()
                    .request_items(table, pending)
                    .send()
                    .await
                    .map_err(|e| super::error::classify(SERVICE, e))?;
                let items = out
                    .responses()
                    .and_then(|r| r.get(table))
                    .cloned()
                    .unwrap_or_default();
                let rest = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
                Ok((items, rest))
            },
            |_| format!("reads from {table} left unprocessed"),
        )
        .await?;
        found.extend(items);
    }
    Ok(found)
}
