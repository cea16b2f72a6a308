//! orglink's state and messaging edges: the narrow traits the worker, reconcile and the CLI
//! use (idempotency, link records, claims, the organization mirror, exceptions, the rate
//! budget, the work queue, the credentials secret), each with an in-memory twin and, with the
//! `aws` feature, a DynamoDB / SQS / Secrets Manager implementation.
//!
//! Both halves of every pair run the same test bodies (tests/harness/tests/adapters.rs): the
//! in-memory twin is not a mock but the same semantics without the network, so the worker's
//! logic can be unit-tested fast. Time is always passed in (epoch milliseconds) rather than
//! read from a clock, so expiry and refill are testable and both halves agree.
//!
//! Table and item shapes are documented in `docs/state.md`; the resources are defined in
//! `infra/template.yaml`.

pub mod budget;
pub mod claims;
#[cfg(feature = "aws")]
pub mod deployment;
pub mod error;
pub mod exceptions;
pub mod idempotency;
pub mod links;
pub mod lists;
pub mod mirror;
pub mod names;
pub mod queue;
pub mod rate;
pub mod runs;
pub mod secrets;

#[cfg(feature = "aws")]
mod dynamo;

pub use budget::{BucketConfig, BudgetStore, Take};
pub use claims::{Claim, ClaimOutcome, ClaimStore};
#[cfg(feature = "aws")]
pub use deployment::Deployment;
pub use error::StoreError;
pub use exceptions::{ExceptionFilter, ExceptionRow, ExceptionStatus, ExceptionStore};
pub use idempotency::{Begin, IdempotencyKey, IdempotencyStore};
pub use links::{LinkRecord, LinkStore, SaveOutcome};
pub use lists::{OperatorLists, ReviewLists};
pub use mirror::{MirrorFilled, MirroredOrg, OrgMirror, UpsertOutcome};
pub use names::ResourceNames;
pub use queue::{QueueMessage, ReceivedMessage, WorkQueue};
pub use rate::SharedRateBudget;
pub use runs::{Lease, LeaseTake, RunRecord, RunStatus, RunStore};
pub use secrets::{SecretSource, SecretString};
