//! The run summary (stored with the run record, logged at the end) and the CloudWatch metrics
//! in embedded metric format (EMF), per `docs/deploy.md` "Metrics the functions emit".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use orglink_shared::exceptions::{ExceptionKind, ReportKind, ReportLine};

use crate::event::Mode;

/// Why a run stopped before the end. A stopped run auto-resolves nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum StopReason {
    /// What is left of Salesforce's daily allocation is the reserve kept for others.
    SalesforceReserve { detail: String },
    /// Zendesk calls would exceed this deployment's share of the plan's rate limit.
    ZendeskShare { detail: String },
    /// The account stream did not fit in one invocation, attempt after attempt (it starts
    /// over in each, since nothing but cursors and counters travels between invocations):
    /// raise the function's timeout.
    AccountStreamTooLong { detail: String },
    /// Another reconcile run held the lease (one run at a time): this one did not start, and
    /// stamped, removed and resolved nothing.
    AnotherRunInProgress { run_id: String, detail: String },
    /// Another run took the lease over while this one was away (its lease had gone stale):
    /// this one stopped where it was, removing and resolving nothing.
    LeaseLost { detail: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Complete,
    Stopped,
}

/// How the organization side went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgCounts {
    /// Listing (full) or export (delta) pages read.
    pub pages: u64,
    /// Organizations seen in them.
    pub seen: u64,
    /// Mirror items written because they changed.
    pub written: u64,
    /// Mirror items removed: the organization is gone from Zendesk.
    pub deleted: u64,
    /// Organizations the diff judged (the mirror after refresh).
    pub judged: u64,
    /// A delta only: the incremental export stalled at this second (Unix s; more
    /// organizations changed in it than a page holds), so the run listed every organization
    /// instead. The run stays a delta: it reads changed accounts and auto-resolves nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_stalled_at: Option<i64>,
}

/// How the ticket phase went: the tally `orglink audit` keeps too.
pub use orglink_shared::reconcile::TicketCounts;

/// How the account side went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCounts {
    /// Account query pages read by the attempt that finished the stream.
    pub pages: u64,
    /// Accounts read from Salesforce (deleted and merged included).
    pub read: u64,
    /// Accounts the diff took in (should be linked, hold a link, deleted or merged).
    pub judged: u64,
    /// Accounts organizations are keyed to, read separately by id.
    pub looked_up: u64,
    /// Accounts organizations are keyed to that the run did not read (a delta reads only the
    /// accounts changed since the last run); their organizations were not judged.
    pub unseen: u64,
    /// Times the account stream was started: it starts over when an invocation must hand
    /// over before its end.
    #[serde(default)]
    pub attempts: u64,
    /// Query pages read by attempts that handed over.
    #[serde(default)]
    pub pages_repeated: u64,
    /// Salesforce calls those attempts made (account pages and their opportunity queries):
    /// what starting over cost, included in `api_calls`.
    #[serde(default)]
    pub calls_repeated: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairCounts {
    pub enqueued: u64,
    /// Mirror-only repairs held back by `mirror_repairs_per_run` (the next run finds them).
    pub deferred: u64,
    /// By reason (a repair may have several).
    pub by_reason: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Findings of this run (one per problem).
    pub findings: u64,
    pub new: u64,
    /// Rows that were resolved, dismissed or auto-resolved and are open again.
    pub reopened: u64,
    /// Open rows this complete full run no longer saw.
    pub auto_resolved: u64,
    /// Findings left out because they name only ignored accounts.
    pub ignored: u64,
    /// Findings a delta left to full runs: they name only accounts it did not read.
    #[serde(default)]
    pub left_to_full_runs: u64,
    /// Open rows of severity critical after the run.
    pub open_critical: u64,
}

/// A run's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    pub run_id: String,
    pub mode: Mode,
    pub state: RunState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopReason>,
    pub started_at_ms: i64,
    pub finished_at_ms: i64,
    pub duration_ms: i64,
    /// Invocations the run took (continuations + 1).
    pub invocations: u32,
    pub orgs: OrgCounts,
    #[serde(default)]
    pub tickets: TicketCounts,
    pub accounts: AccountCounts,
    pub findings_by_kind: BTreeMap<ExceptionKind, u64>,
    pub rows: RowCounts,
    pub report_by_kind: BTreeMap<ReportKind, u64>,
    /// The first report lines (all are logged).
    pub report_sample: Vec<ReportLine>,
    pub repairs: RepairCounts,
    /// API calls by system (`salesforce`, `zendesk`), over every invocation.
    pub api_calls: BTreeMap<String, u64>,
    /// API calls by endpoint (`sf.query`, `zd.org_list`...).
    pub api_calls_by_endpoint: BTreeMap<String, u64>,
}

/// Where metrics go (one definition, shared with the worker).
pub use orglink_shared::metrics::MetricsConfig;
use orglink_shared::metrics::emf;

impl RunSummary {
    /// The EMF lines of this run: `ReconcileCompleted` (1, only when complete) with the run's
    /// counts under `Deployment, Mode`; `OpenCriticalExceptions` under `Deployment` alone (the
    /// alarm's exact dimension set); and the findings of each kind under `Deployment, Kind`.
    pub fn metrics(&self, config: &MetricsConfig) -> Vec<String> {
        let at = self.finished_at_ms;
        let deployment = config.deployment.as_str();
        let mode = self.mode.as_str();
        let mut run: Vec<(&str, u64)> = vec![
            (
                "ReconcileStopped",
                u64::from(self.state == RunState::Stopped),
            ),
            ("FindingsTotal", self.rows.findings),
            ("RowsNew", self.rows.new),
            ("RowsReopened", self.rows.reopened),
            ("RowsAutoResolved", self.rows.auto_resolved),
            ("RepairsEnqueued", self.repairs.enqueued),
            ("RepairsDeferred", self.repairs.deferred),
            ("DurationMs", self.duration_ms.max(0) as u64),
            ("Invocations", u64::from(self.invocations)),
            (
                "SalesforceCalls",
                self.api_calls.get("salesforce").copied().unwrap_or(0),
            ),
            (
                "ZendeskCalls",
                self.api_calls.get("zendesk").copied().unwrap_or(0),
            ),
        ];
        if self.state == RunState::Complete {
            run.insert(0, ("ReconcileCompleted", 1));
        }
        let mut lines = vec![
            emf(
                config,
                at,
                &[("Deployment", deployment), ("Mode", mode)],
                &run,
            ),
            emf(
                config,
                at,
                &[("Deployment", deployment)],
                &[("OpenCriticalExceptions", self.rows.open_critical)],
            ),
        ];
        for kind in ExceptionKind::ALL {
            let n = self.findings_by_kind.get(&kind).copied().unwrap_or(0);
            lines.push(emf(
                config,
                at,
                &[("Deployment", deployment), ("Kind", kind.as_str())],
                &[("Findings", n)],
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn summary(state: RunState) -> RunSummary {
        RunSummary {
            run_id: "r".into(),
            mode: Mode::Full,
            state,
            stop: None,
            started_at_ms: 1,
            finished_at_ms: 1_767_225_600_000,
            duration_ms: 5,
            invocations: 2,
            orgs: OrgCounts::default(),
            tickets: TicketCounts::default(),
            accounts: AccountCounts::default(),
            findings_by_kind: BTreeMap::from([(ExceptionKind::KeyConflict, 3)]),
            rows: RowCounts {
                open_critical: 7,
                ..RowCounts::default()
            },
            report_by_kind: BTreeMap::new(),
            report_sample: vec![],
            repairs: RepairCounts::default(),
            api_calls: BTreeMap::from([("zendesk".to_string(), 9)]),
            api_calls_by_endpoint: BTreeMap::new(),
        }
    }

    #[test]
    fn emf_lines_match_the_alarms_dimension_sets() {
        let config = MetricsConfig {
            namespace: "orglink".into(),
            deployment: "prod".into(),
        };
        let lines: Vec<Value> = summary(RunState::Complete)
            .metrics(&config)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let run = &lines[0];
        assert_eq!(run["ReconcileCompleted"], 1);
        assert_eq!(run["Deployment"], "prod");
        assert_eq!(run["Mode"], "full");
        assert_eq!(run["ZendeskCalls"], 9);
        let cw = &run["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "orglink");
        assert_eq!(cw["Dimensions"], json!([["Deployment", "Mode"]]));
        assert_eq!(
            cw["Metrics"][0],
            json!({"Name": "ReconcileCompleted", "Unit": "Count"})
        );
        assert_eq!(run["_aws"]["Timestamp"], 1_767_225_600_000i64);

        let critical = &lines[1];
        assert_eq!(critical["OpenCriticalExceptions"], 7);
        assert_eq!(
            critical["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Deployment"]])
        );
        let kinds: Vec<&Value> = lines[2..].iter().collect();
        assert_eq!(kinds.len(), ExceptionKind::ALL.len());
        let kc = kinds.iter().find(|l| l["Kind"] == "key_conflict").unwrap();
        assert_eq!(kc["Findings"], 3);

        // The whole line, as CloudWatch reads it (unchanged since reconcile's own builder gave
        // way to `orglink_shared::metrics::emf`).
        assert_eq!(
            lines[1],
            json!({
                "_aws": {
                    "Timestamp": 1_767_225_600_000i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "orglink",
                        "Dimensions": [["Deployment"]],
                        "Metrics": [{"Name": "OpenCriticalExceptions", "Unit": "Count"}],
                    }]
                },
                "Deployment": "prod",
                "OpenCriticalExceptions": 7,
            })
        );
        let names: Vec<&str> = cw["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "ReconcileCompleted",
                "ReconcileStopped",
                "FindingsTotal",
                "RowsNew",
                "RowsReopened",
                "RowsAutoResolved",
                "RepairsEnqueued",
                "RepairsDeferred",
                "DurationMs",
                "Invocations",
                "SalesforceCalls",
                "ZendeskCalls"
            ]
        );
        for name in &names {
            assert!(run.get(*name).is_some_and(Value::is_u64), "{name}");
        }

        // Only a complete run says it completed.
        let stopped: Value =
            serde_json::from_str(&summary(RunState::Stopped).metrics(&config)[0]).unwrap();
        assert!(stopped.get("ReconcileCompleted").is_none());
        assert_eq!(stopped["ReconcileStopped"], 1);
    }
}
