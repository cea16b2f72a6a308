//! Backfill from history: link every eligible account at once, through the bulk endpoints.
//!
//! - [`plan`] (pure): every account's decision by [`crate::resolution::resolve`], with its rule,
//!   its evidence, the exact bodies to send and a fingerprint of the state it saw; the plan's
//!   hash is what an operator confirms.
//! - [`snapshot`]: both systems read at the API call floor (the org listing, one `queryAll` of
//!   accounts, one query of opportunities).
//! - [`apply`]: re-reads both systems, acts only where the state is what the plan saw, with the
//!   live path's claims and shared rate budget, `update_many` / `create_many` in hundreds and
//!   Salesforce collections in 200s.
//! - [`journal`]: the write-ahead journal that makes an interrupted apply finish on a rerun
//!   without a duplicate organization (the argument is in its module docs).
//!
//! `docs/backfill.md` is the operator's guide.

pub mod apply;
pub mod budget;
pub mod index;
pub mod journal;
pub mod plan;
pub mod progress;
pub mod snapshot;

use std::path::PathBuf;

use thiserror::Error;

use crate::aws::StoreError;
use crate::salesforce::SalesforceError;
use crate::zendesk::ZendeskError;

pub use apply::{ApplyReport, Backfill, FailPoint, Settings};
pub use budget::{DEFAULT_MAX_BUDGET_WAIT, PatientBudget};
pub use index::OrgIndex;
pub use plan::{Plan, PlanEntry, PlanFile, PlannedAction};
pub use progress::Progress;

/// Why a backfill stopped. Each says what to do; none holds a secret.
#[derive(Debug, Error)]
pub enum BackfillError {
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error(transparent)]
    Zendesk(#[from] ZendeskError),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the plan file was changed after it was written (its content hashes to {actual}, it says {recorded}): make a new plan"
    )]
    PlanAltered { recorded: String, actual: String },
    #[error(
        "--confirm-plan-hash {given} is not this plan's hash {actual}: review the plan and confirm its hash"
    )]
    HashNotConfirmed { given: String, actual: String },
    #[error("the plan was made for {planned}, this deployment is {current}: make a new plan")]
    WrongDeployment { planned: String, current: String },
    #[error(
        "the configuration changed since the plan was made: make a new plan with this configuration"
    )]
    ConfigChanged,
    #[error("the plan file format {0:?} is not one this orglink reads")]
    UnknownFormat(String),
    #[error("the journal {path} cannot be used: {reason}")]
    Journal { path: PathBuf, reason: String },
    /// A test's fail point: the process stops as a crash would (the journal stays).
    #[error(
        "interrupted after {batches} Zendesk batch(es) (fail point): run apply again to finish"
    )]
    Interrupted { batches: usize },
}
