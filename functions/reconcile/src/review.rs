//! The exception table's review flow, as a library the CLI calls (`orglink exceptions
//! list|show|resolve|dismiss`): rows by status, kind and severity through the table's index,
//! newest first; validated status changes that record who and why; and the chosen action
//! flowing back — as an operator sync request on the work queue (link to this organization,
//! create a new one, retry) or as configuration (a shared domain, an ignored account) kept in
//! the exception table beside the rows (`docs/exceptions.md`).
//!
//! A resolved or dismissed row reopens only when its evidence changes (the store's rule); an
//! action's follow-up is done before the status changes, so a failure leaves the row open and
//! the person can simply run the command again.

use serde::Serialize;
use thiserror::Error;
use time::OffsetDateTime;

use orglink_shared::aws::exceptions::ExceptionStatus;
use orglink_shared::aws::{ExceptionFilter, ExceptionRow, ExceptionStore, StoreError, WorkQueue};
use orglink_shared::contract::EventKind;
use orglink_shared::exceptions::{Action, Fingerprint};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::sync_request::{RequestSource, SyncRequest};

// The lists live in shared (`orglink_shared::aws::lists`): the sync worker reads them too.
pub use orglink_shared::aws::lists::{DynamoLists, MemoryLists, OperatorLists, ReviewLists};

/// Why a review command was refused. Each says what to do instead.
#[derive(Debug, Error)]
pub enum ReviewError {
    #[error("no exception row {0}; list them with `orglink exceptions list`")]
    NotFound(String),
    #[error("say who you are (--by): every status change records who made it")]
    NoReviewer,
    #[error("say why (--reason): every status change records why")]
    NoReason,
    #[error("row {fingerprint} is {status}, not open; only open rows can be resolved or dismissed")]
    NotOpen {
        fingerprint: String,
        status: &'static str,
    },
    #[error("that action is not one this row offers; choose one of: {offered}")]
    ActionNotOffered { offered: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a resolution set in motion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "follow_up", rename_all = "snake_case")]
pub enum FollowUp {
    /// Nothing outside the row (fixed by hand).
    None,
    /// An operator sync request was queued for the account (the worker re-resolves it).
    SyncRequested {
        account: AccountId,
        event_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        org: Option<OrgId>,
    },
    /// The domain is now on the shared list.
    SharedDomain { domain: String },
    /// The account is now on the ignored list.
    IgnoredAccount { account: AccountId },
}

/// A person's decision on a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Who decides (an e-mail or user name).
    pub by: String,
    /// Why, in words.
    pub reason: String,
    /// The action chosen among the row's offered ones; `None`: fixed outside orglink.
    pub action: Option<Action>,
}

/// The review API over the exception store, the work queue and the operator lists.
pub struct Review<'a, E, Q, L> {
    pub exceptions: &'a E,
    pub queue: &'a Q,
    pub lists: &'a L,
}

fn describe(action: &Action) -> String {
    match action {
        Action::LinkToOrg { account, org } => {
            format!("link account {account} to organization {org}")
        }
        Action::CreateNewOrg { account } => {
            format!("create a new organization for account {account}")
        }
        Action::TreatDomainAsShared { domain } => format!("treat {domain} as a shared domain"),
        Action::IgnoreAccount { account } => format!("ignore account {account}"),
        Action::Retry { account } => format!("retry account {account}"),
        Action::FixByHand => "fixed by hand".into(),
    }
}

impl<E: ExceptionStore, Q: WorkQueue, L: ReviewLists> Review<'_, E, Q, L> {
    /// Rows with this status (and kind, severity), most recently seen first.
    pub async fn list(&self, filter: &ExceptionFilter) -> Result<Vec<ExceptionRow>, ReviewError> {
        Ok(self.exceptions.list(filter).await?)
    }

    /// One row, by its fingerprint.
    pub async fn show(&self, fingerprint: &str) -> Result<ExceptionRow, ReviewError> {
        let fp = parse_fingerprint(fingerprint);
        self.exceptions
            .get(&fp)
            .await?
            .ok_or_else(|| ReviewError::NotFound(fingerprint.to_string()))
    }

    async fn open_row(
        &self,
        fingerprint: &str,
        by: &str,
        reason: &str,
    ) -> Result<ExceptionRow, ReviewError> {
        if by.trim().is_empty() {
            return Err(ReviewError::NoReviewer);
        }
        if reason.trim().is_empty() {
            return Err(ReviewError::NoReason);
        }
        let row = self.show(fingerprint).await?;
        if row.status != ExceptionStatus::Open {
            return Err(ReviewError::NotOpen {
                fingerprint: fingerprint.to_string(),
                status: row.status.as_str(),
            });
        }
        Ok(row)
    }

    /// Resolves an open row with a decision; the chosen action flows back first.
    pub async fn resolve(
        &self,
        fingerprint: &str,
        decision: &Decision,
        now_ms: i64,
    ) -> Result<(ExceptionRow, FollowUp), ReviewError> {
        let row = self
            .open_row(fingerprint, &decision.by, &decision.reason)
            .await?;
        let action = decision.action.clone().unwrap_or(Action::FixByHand);
        if action != Action::FixByHand && !row.finding.actions.contains(&action) {
            let offered: Vec<String> = row
                .finding
                .actions
                .iter()
                .map(|a| serde_json::to_string(a).expect("actions serialize"))
                .collect();
            return Err(ReviewError::ActionNotOffered {
                offered: offered.join(", "),
            });
        }
        let follow_up = self.follow_up(&row, &action, &decision.by, now_ms).await?;
        let reason = format!("{} (action: {})", decision.reason.trim(), describe(&action));
        let row = self
            .exceptions
            .set_status(
                &row.fingerprint,
                ExceptionStatus::Resolved,
                decision.by.trim(),
                &reason,
                now_ms,
            )
            .await?
            .ok_or_else(|| ReviewError::NotFound(fingerprint.to_string()))?;
        Ok((row, follow_up))
    }

    /// Dismisses an open row: not a problem (it reopens only if its evidence changes).
    pub async fn dismiss(
        &self,
        fingerprint: &str,
        by: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<ExceptionRow, ReviewError> {
        let row = self.open_row(fingerprint, by, reason).await?;
        self.exceptions
            .set_status(
                &row.fingerprint,
                ExceptionStatus::Dismissed,
                by.trim(),
                reason.trim(),
                now_ms,
            )
            .await?
            .ok_or_else(|| ReviewError::NotFound(fingerprint.to_string()))
    }

    async fn follow_up(
        &self,
        row: &ExceptionRow,
        action: &Action,
        by: &str,
        now_ms: i64,
    ) -> Result<FollowUp, ReviewError> {
        let sync = |account: &AccountId, org: Option<OrgId>| {
            // Unique per decision (a later decision on the same row is a new request), within
            // the 64 characters a sync request's event id allows.
            let digest = row
                .fingerprint
                .as_str()
                .rsplit(':')
                .next()
                .unwrap_or_default();
            let event_id = format!("review:{digest}:{now_ms}");
            let request = SyncRequest {
                account_id: account.clone(),
                event_id: event_id.clone(),
                kind: EventKind::Manual,
                source: RequestSource::Operator,
                occurred_at: OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(now_ms) * 1_000_000,
                )
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                account_modstamp: None,
                org_id: org,
                note: Some(format!(
                    "{by} resolved exception {}: {}",
                    row.fingerprint,
                    describe(action)
                )),
            };
            (request, event_id)
        };
        let (request, event_id, org) = match action {
            Action::FixByHand => return Ok(FollowUp::None),
            Action::TreatDomainAsShared { domain } => {
                self.lists.add_shared_domain(domain).await?;
                return Ok(FollowUp::SharedDomain {
                    domain: domain.as_str().to_string(),
                });
            }
            Action::IgnoreAccount { account } => {
                self.lists.add_ignored_account(account).await?;
                return Ok(FollowUp::IgnoredAccount {
                    account: account.clone(),
                });
            }
            Action::LinkToOrg { account, org } => {
                let (r, e) = sync(account, Some(*org));
                (r, e, Some(*org))
            }
            Action::CreateNewOrg { account } | Action::Retry { account } => {
                let (r, e) = sync(account, None);
                (r, e, None)
            }
        };
        self.queue.send(&request.to_message()).await?;
        Ok(FollowUp::SyncRequested {
            account: request.account_id,
            event_id,
            org,
        })
    }
}

fn parse_fingerprint(s: &str) -> Fingerprint {
    serde_json::from_value(serde_json::Value::String(s.trim().to_string()))
        .expect("a fingerprint is a string")
}
