//! What the Salesforce and Zendesk clients share: one failure classification
//! ([`failure`]), one retry discipline ([`retry`]), one rate budget per system ([`budget`]) and
//! one call count ([`calls`]). The clients send every request through one executor
//! (`transport`), so no call can skip the budget, the count or the classification.

pub mod budget;
pub mod calls;
pub mod failure;
pub mod retry;
pub(crate) mod transport;

use std::fmt;

use serde::Serialize;

pub use budget::{
    BoxFuture, BudgetConfig, BudgetRefusal, CallSpec, DailyUsage, EndpointLimit, LocalBudget,
    RateBudget, RateSignal,
};
pub use calls::{CallKey, CallLog};
pub use failure::{ApiProblem, Disposition, Verdict};
pub use retry::RetryPolicy;

/// The two systems orglink calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum System {
    Salesforce,
    Zendesk,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Salesforce => "salesforce",
            System::Zendesk => "zendesk",
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
