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
