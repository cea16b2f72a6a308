//! What became of each event: the answer's body and the log's conservation count.
//!
//! Every (event, account) pair intake considers ends as exactly one of: enqueued,
//! deduplicated (the same event for the same account earlier in the request), ignored with a
//! reason, an echo of orglink's own write dropped, or an exception recorded. A request that is
//! refused (400/401/403) enqueues nothing and answers with the error instead.

use serde::Serialize;

use orglink_shared::sync_request::RequestSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Enqueued,
    Deduplicated,
    Ignored,
    EchoDropped,
    Exception,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Enqueued => "enqueued",
            Outcome::Deduplicated => "deduplicated",
            Outcome::Ignored => "ignored",
            Outcome::EchoDropped => "echo_dropped",
            Outcome::Exception => "exception",
        }
    }
}

/// One considered (event, account) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventResult {
    pub event_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl EventResult {
    pub fn new(event_id: impl Into<String>, outcome: Outcome) -> Self {
        EventResult {
            event_id: event_id.into(),
            account_id: None,
            org_id: None,
            outcome,
            reason: None,
        }
    }
    pub fn account(mut self, account: impl ToString) -> Self {
        self.account_id = Some(account.to_string());
        self
    }
    pub fn org(mut self, org: impl ToString) -> Self {
        self.org_id = Some(org.to_string());
        self
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// The accepted request's summary (the 202 body; Event Relay's invocation result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub source: RequestSource,
    /// (event, account) pairs considered: the sum of the five counts below.
    pub received: usize,
    pub enqueued: usize,
    pub deduplicated: usize,
    pub ignored: usize,
    pub echoes_dropped: usize,
    pub exceptions: usize,
    /// Whether the organization mirror was written (`written`, `stale`, `deleted`), for webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<&'static str>,
    pub results: Vec<EventResult>,
}

impl Summary {
    pub fn new(source: RequestSource, results: Vec<EventResult>) -> Summary {
        let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
        Summary {
            source,
            received: results.len(),
            enqueued: count(Outcome::Enqueued),
            deduplicated: count(Outcome::Deduplicated),
            ignored: count(Outcome::Ignored),
            echoes_dropped: count(Outcome::EchoDropped),
            exceptions: count(Outcome::Exception),
            mirror: None,
            results,
        }
    }

    /// Logs one line per result and one for the whole (the conservation count).
    pub fn log(&self) {
        let source = format!("{:?}", self.source);
        for r in &self.results {
            tracing::info!(
                source = %source,
                event_id = %r.event_id,
                account_id = r.account_id.as_deref().unwrap_or(""),
                org_id = r.org_id.as_deref().unwrap_or(""),
                outcome = r.outcome.as_str(),
                reason = r.reason.as_deref().unwrap_or(""),
                "event"
            );
        }
        tracing::info!(
            source = %source,
            received = self.received,
            enqueued = self.enqueued,
            deduplicated = self.deduplicated,
            ignored = self.ignored,
            echoes_dropped = self.echoes_dropped,
            exceptions = self.exceptions,
            mirror = self.mirror.unwrap_or(""),
            "request accepted"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_to_received() {
        let results = vec![
            EventResult::new("a", Outcome::Enqueued),
            EventResult::new("a", Outcome::Deduplicated),
            EventResult::new("b", Outcome::Ignored).reason("why"),
            EventResult::new("c", Outcome::EchoDropped),
            EventResult::new("d", Outcome::Exception),
            EventResult::new("e", Outcome::Enqueued),
        ];
        let s = Summary::new(RequestSource::EventRelay, results);
        assert_eq!(s.received, 6);
        assert_eq!(s.enqueued, 2);
        assert_eq!(
            s.enqueued + s.deduplicated + s.ignored + s.echoes_dropped + s.exceptions,
            s.received
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["source"], "event_relay");
        assert_eq!(json["results"][2]["reason"], "why");
        assert_eq!(json["results"][3]["outcome"], "echo_dropped");
    }
}
