//! The body of a message on the sync work queue: "re-sync this account, because of this
//! event". Intake, reconcile and the CLI write it; the sync worker reads it. It is a hint —
//! the worker reads the account fresh — so it carries only what the worker needs to decide
//! whether the event is already covered (the modstamp) and what the event may do (its kind).
//!
//! One message per account: the account id is the message group, and the deduplication id
//! comes from the event id and the account id ([`QueueMessage::dedup_id`]).

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::aws::QueueMessage;
use crate::contract::EventKind;
use crate::ids::{AccountId, OrgId};

/// Where a sync request came from (for the audit and `trace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestSource {
    /// A signed batch from the Salesforce notifier (intake's function URL).
    SalesforceNotifier,
    /// An Account change event relayed by Salesforce Event Relay through EventBridge.
    EventRelay,
    /// A Zendesk organization webhook (a deletion or a hand-made key change).
    ZendeskWebhook,
    /// An operator (`orglink sync`, backfill apply).
    Operator,
    /// The nightly reconcile's repair.
    Reconcile,
}

/// One sync request, as queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    pub account_id: AccountId,
    /// The causing event's id (1–64 of `A-Z a-z 0-9 . _ : -`).
    pub event_id: String,
    pub kind: EventKind,
    pub source: RequestSource,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The account's `SystemModstamp` when the event was raised, when the source knows it;
    /// an event at or before the link record's synced modstamp is coalesced away.
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub account_modstamp: Option<OffsetDateTime>,
    /// The organization the event was about (a Zendesk webhook's org).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<OrgId>,
    /// Why it was raised, in words (e.g. "organization 123 was deleted in Zendesk").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl SyncRequest {
    /// The queue message: grouped by account, deduplicated by event id and account.
    pub fn to_message(&self) -> QueueMessage {
        QueueMessage {
            account: self.account_id.clone(),
            event_id: self.event_id.clone(),
            body: serde_json::to_string(self).expect("a sync request serializes"),
        }
    }

    /// Reads a message body; an error means a poison message.
    pub fn from_body(body: &str) -> Result<SyncRequest, serde_json::Error> {
        serde_json::from_str(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_queue_message() {
        let request = SyncRequest {
            account_id: AccountId::parse("001D000000IRFma").unwrap(),
            event_id: "e-1".into(),
            kind: EventKind::ClosedWon,
            source: RequestSource::SalesforceNotifier,
            occurred_at: OffsetDateTime::from_unix_timestamp(1_767_225_600).unwrap(),
            account_modstamp: None,
            org_id: Some(OrgId::new(42).unwrap()),
            note: None,
        };
        let message = request.to_message();
        assert_eq!(message.group_id(), "001D000000IRFmaIAH");
        assert_eq!(message.event_id, "e-1");
        assert!(message.body.contains(r#""source":"salesforce_notifier""#));
        assert!(!message.body.contains("account_modstamp"));
        assert_eq!(SyncRequest::from_body(&message.body).unwrap(), request);
        assert!(SyncRequest::from_body(r#"{"account_id":"001D000000IRFmaIAH"}"#).is_err());
    }
}
