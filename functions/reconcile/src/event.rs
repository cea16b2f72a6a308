//! What starts or continues a run: the EventBridge Scheduler's input (`{"mode": "full"}` or
//! `{"mode": "delta"}`, delivered as the whole event), or a continuation naming the run.

use serde::{Deserialize, Serialize};

/// Which kind of run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Lists every organization, streams every account that matters, and (when it completes)
    /// auto-resolves the open rows it no longer sees.
    Full,
    /// Reads the organizations changed since the last run (incremental export) and the
    /// accounts Salesforce changed since then; never auto-resolves.
    Delta,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Delta => "delta",
        }
    }
}

/// The function's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileEvent {
    pub mode: Mode,
    /// Set on a continuation: the run to resume from its checkpoint. Absent: a new run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
}

impl ReconcileEvent {
    pub fn new(mode: Mode) -> Self {
        ReconcileEvent { mode, run_id: None }
    }

    pub fn continuation(mode: Mode, run_id: impl Into<String>) -> Self {
        ReconcileEvent {
            mode,
            run_id: Some(run_id.into()),
        }
    }

    /// Reads an invocation's payload; the error says what a valid one looks like.
    pub fn from_json(payload: &serde_json::Value) -> Result<Self, BadEvent> {
        serde_json::from_value(payload.clone()).map_err(|e| BadEvent(e.to_string()))
    }
}

/// An input that is not a reconcile event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the reconcile input must be {{\"mode\": \"full\"}} or {{\"mode\": \"delta\"}} (a continuation adds \"run_id\"): {0}"
)]
pub struct BadEvent(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_scheduler_inputs_and_continuations() {
        assert_eq!(
            ReconcileEvent::from_json(&json!({"mode": "full"})).unwrap(),
            ReconcileEvent::new(Mode::Full)
        );
        assert_eq!(
            ReconcileEvent::from_json(&json!({"mode": "delta", "run_id": "r1"})).unwrap(),
            ReconcileEvent::continuation(Mode::Delta, "r1")
        );
        for bad in [
            json!({}),
            json!({"mode": "weekly"}),
            json!({"mode": "full", "extra": 1}),
        ] {
            let err = ReconcileEvent::from_json(&bad).unwrap_err();
            assert!(err.to_string().contains("\"mode\": \"full\""), "{err}");
        }
        let round = serde_json::to_value(ReconcileEvent::continuation(Mode::Full, "x")).unwrap();
        assert_eq!(round, json!({"mode": "full", "run_id": "x"}));
        assert_eq!(
            serde_json::to_value(ReconcileEvent::new(Mode::Delta)).unwrap(),
            json!({"mode": "delta"})
        );
    }
}
