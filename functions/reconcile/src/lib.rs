//! orglink reconcile: the nightly full and daytime delta comparison of Salesforce and Zendesk.
//!
//! - [`run`]: one run across as many invocations as it needs — mirror refresh (resumable
//!   listing or incremental export), the account stream (whole, in one invocation), the pure diff from
//!   `orglink_shared::reconcile`, exception upserts by fingerprint, auto-resolve after a
//!   complete full run, safe repairs as sync requests, the run summary and EMF metrics.
//! - [`review`]: the exception table's review flow (list, show, resolve, dismiss) the CLI calls.
//! - [`aws`]: the production wiring and the Lambda continuation (an asynchronous invoke of
//!   itself); [`run::Reconciler::run_to_end`] is the local runner's stand-in for it.
//!
//! Design: `docs/reconcile.md` (the diff), `docs/exceptions.md` (the review queue).

pub mod aws;
pub mod event;
pub mod facts;
pub mod review;
pub mod run;
pub mod settings;
pub mod summary;

use orglink_shared::aws::exceptions::MemoryExceptions;
use orglink_shared::aws::links::MemoryLinks;
use orglink_shared::aws::mirror::MemoryMirror;
use orglink_shared::aws::queue::MemoryQueue;
use orglink_shared::aws::runs::MemoryRuns;

pub use event::{Mode, ReconcileEvent};
pub use run::{Limits, Ports, Reconciler, RunError, RunOutcome, Step, Stores};
pub use settings::ReconcileSettings;
pub use summary::{RunState, RunSummary, StopReason, TicketCounts};

/// The in-memory twins (tests, benchmarks, the local demo without moto).
pub struct MemoryPorts;

impl Ports for MemoryPorts {
    type Mirror = MemoryMirror;
    type Exceptions = MemoryExceptions;
    type Runs = MemoryRuns;
    type Queue = MemoryQueue;
    type Links = MemoryLinks;
    type Lists = review::MemoryLists;
}

impl Stores<MemoryPorts> {
    /// Empty in-memory stores.
    pub fn memory() -> Self {
        Stores {
            mirror: MemoryMirror::default(),
            exceptions: MemoryExceptions::default(),
            runs: MemoryRuns::default(),
            queue: MemoryQueue::new(30, 5),
            links: MemoryLinks::default(),
            lists: review::MemoryLists::default(),
        }
    }
}
