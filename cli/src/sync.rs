//! `orglink sync ACCOUNT_ID`: asks the sync worker to re-sync one account now. Like every
//! writer outside the worker and the backfill, the CLI only enqueues a sync request; the worker
//! reads the account fresh, resolves and writes.

use std::process::ExitCode;

use clap::Args;
use orglink_shared::aws::WorkQueue;
use orglink_shared::contract::EventKind;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::sync_request::{RequestSource, SyncRequest};

use crate::context::{self, OpsError, State};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  orglink sync 001D000000IRFmaIAH
  orglink sync 001D000000IRFma --note \"customer asked for a fresh link\"

Needs the deployment's resource names in the environment (ORGLINK_SYNC_QUEUE_URL...; see
docs/configuration.md). The request is deduplicated per account for SQS's 5-minute window
only when the same event id is given again.")]
pub struct SyncArgs {
    /// The Salesforce Account id (15 or 18 characters).
    pub account: String,
    /// Why, in words (kept with the request; `trace` shows it).
    #[arg(long)]
    pub note: Option<String>,
    /// A stable event id, so a retried command cannot queue the same request twice.
    #[arg(long)]
    pub event_id: Option<String>,
}

/// Parses an account id, saying what is wrong with it.
pub fn parse_account(raw: &str) -> Result<AccountId, OpsError> {
    AccountId::parse(raw.trim()).map_err(|e| {
        OpsError::Usage(format!(
            "{raw:?} is not a Salesforce Account id: {e} (give the 15- or 18-character Id from the account's URL)"
        ))
    })
}

/// An operator's sync request for `account`.
pub fn operator_request(
    account: AccountId,
    event_id: Option<String>,
    org: Option<OrgId>,
    note: Option<String>,
) -> SyncRequest {
    let now = time::OffsetDateTime::now_utc();
    let event_id = event_id.unwrap_or_else(|| {
        format!(
            "operator:{}:{}",
            account.as_str(),
            now.unix_timestamp_nanos() / 1_000_000
        )
    });
    SyncRequest {
        account_id: account,
        event_id,
        kind: EventKind::Manual,
        source: RequestSource::Operator,
        occurred_at: now,
        account_modstamp: None,
        org_id: org,
        note,
    }
}

/// Checks an event id against the queue's alphabet (1–64 of `A-Z a-z 0-9 . _ : -`).
fn check_event_id(id: &str) -> Result<(), OpsError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-'));
    if ok {
        Ok(())
    } else {
        Err(OpsError::Usage(format!(
            "--event-id {id:?}: use 1 to 64 letters, digits and . _ : -"
        )))
    }
}

pub fn run(args: SyncArgs) -> ExitCode {
    context::run(async move {
        let account = parse_account(&args.account)?;
        if let Some(id) = &args.event_id {
            check_event_id(id)?;
        }
        let state = State::from_env().await?;
        let request = operator_request(account, args.event_id, None, args.note);
        state.queue().send(&request.to_message()).await?;
        println!(
            "queued a sync of account {} (event {}); the sync worker picks it up next",
            request.account_id, request.event_id
        );
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_manual_operator_events_with_valid_ids() {
        let account = parse_account("001D000000IRFma").unwrap();
        let r = operator_request(account.clone(), None, None, Some("why".into()));
        assert_eq!(r.account_id.as_str(), "001D000000IRFmaIAH");
        assert_eq!(r.kind, EventKind::Manual);
        assert_eq!(r.source, RequestSource::Operator);
        check_event_id(&r.event_id).unwrap();
        assert!(check_event_id("has space").is_err());
        assert!(check_event_id(&"x".repeat(65)).is_err());
        let e = parse_account("not-an-id").unwrap_err().to_string();
        assert!(e.contains("not-an-id"), "{e}");
    }
}
