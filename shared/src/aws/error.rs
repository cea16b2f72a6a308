//! The one error of the state and messaging boundary. Expected outcomes (a claim held by
//! another account, a stale write, a duplicate in progress) are not errors: each operation
//! returns them as values. What remains says what the caller can do about it.

/// Why a store or queue call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttled, unreachable, timed out or a 5xx: retry later (the worker counts it as a
    /// transient failure in the link record).
    #[error("{service} is unavailable or throttling ({detail}); retry later")]
    Transient {
        service: &'static str,
        detail: String,
    },
    /// The request itself was refused (missing table or queue, access denied, invalid
    /// request): retrying will not help; fix the deployment or configuration.
    #[error("{service} refused the request ({detail}); check the resource names and permissions")]
    Rejected {
        service: &'static str,
        detail: String,
    },
    /// A stored item does not have the shape this version expects: inspect or delete it.
    #[error("item {key} in {store} is malformed ({detail}); inspect or delete it")]
    Corrupt {
        store: String,
        key: String,
        detail: String,
    },
    /// Optimistic concurrency kept losing to other writers; retry later.
    #[error("{store} item {key} kept changing under concurrent writers; retry later")]
    Contended { store: String, key: String },
}

impl StoreError {
    /// Whether retrying later can succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Transient { .. } | StoreError::Contended { .. }
        )
    }

    // Used by the in-memory run store too, so not behind the `aws` feature.
    pub(crate) fn corrupt(store: &str, key: &str, detail: impl ToString) -> Self {
        StoreError::Corrupt {
            store: store.to_string(),
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }
}

/// Error codes AWS documents as retryable for DynamoDB, SQS and Secrets Manager.
#[cfg(feature = "aws")]
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalFailure",
    "InternalServiceError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
    "RequestThrottled",
    "KMSThrottlingException",
];

/// Classifies an SDK error once, in one place (retry or not). The detail carries the error
/// code and message only: AWS error messages never echo request payloads or secret values.
#[cfg(feature = "aws")]
pub(crate) fn classify<E>(
    service: &'static str,
    err: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
    let status = err.raw_response().map(|r| r.status().as_u16());
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Transient {
                service,
                detail: format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err)),
            }
        }
        _ => {
            let code = err.code().unwrap_or("unknown").to_string();
            let message = err.message().unwrap_or("").to_string();
            let detail = match status {
                Some(s) => format!("{code} (HTTP {s}): {message}"),
                None => format!("{code}: {message}"),
            };
            if TRANSIENT_CODES.contains(&code.as_str()) || status.is_some_and(|s| s >= 500) {
                StoreError::Transient { service, detail }
            } else {
                StoreError::Rejected { service, detail }
            }
        }
    }
}
