//! What became of each message. Every message ends as exactly one of these (the conservation
//! count the tests check): succeeded, coalesced, deduplicated, ignored with a reason, an
//! exception, or — for crashes and poison only — a dead letter after the queue's redrive count.

use serde::{Deserialize, Serialize};

use orglink_shared::contract::LinkAction;
use orglink_shared::exceptions::{ExceptionKind, Fingerprint};
use orglink_shared::ids::OrgId;
use orglink_shared::resolution::Rule;

/// The final outcome of one sync request (stored in its idempotency record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The account is linked to `org` and both sides hold what the contract says.
    Succeeded {
        org: OrgId,
        rule: Rule,
        action: Action,
        /// Whether Zendesk was written (create or update).
        zendesk_written: bool,
        /// Whether link fields were written back to Salesforce.
        salesforce_written: bool,
    },
    /// An event at or before the last synced `SystemModstamp`: already covered.
    Coalesced { synced_modstamp_ms: i64 },
    /// The same message was processed before (its idempotency record is complete).
    Deduplicated,
    /// Deliberately not acted on.
    Ignored { reason: String },
    /// A person must decide; the row is in the exception table.
    Exception {
        kind: ExceptionKind,
        fingerprint: Fingerprint,
        rule: Option<Rule>,
    },
}

/// What a successful sync did to the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Linked,
    Updated,
}

impl From<Action> for LinkAction {
    fn from(a: Action) -> LinkAction {
        match a {
            Action::Created => LinkAction::Create,
            Action::Linked => LinkAction::Relink,
            Action::Updated => LinkAction::Update,
        }
    }
}

impl Outcome {
    /// The conservation category, as logged (`outcome` field) and counted.
    pub fn category(&self) -> &'static str {
        match self {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Coalesced { .. } => "coalesced",
            Outcome::Deduplicated => "deduplicated",
            Outcome::Ignored { .. } => "ignored",
            Outcome::Exception { .. } => "exception",
        }
    }

    /// The rule that decided, when a resolution ran.
    pub fn rule(&self) -> Option<Rule> {
        match self {
            Outcome::Succeeded { rule, .. } => Some(*rule),
            Outcome::Exception { rule, .. } => *rule,
            _ => None,
        }
    }
}
