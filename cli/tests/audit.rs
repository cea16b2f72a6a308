//! `orglink audit` against the sandbox seeded with a generated messy world: the exit code
//! follows the critical findings, and the table, JSON, CSV and HTML agree with each other.

mod support;

use orglink_harness::Sandbox;
use serde_json::Value;
use support::*;

/// The number an HTML report shows for `data-total="<key>"`.
fn html_total(html: &str, key: &str) -> String {
    let marker = format!("data-total=\"{key}\">");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {key} in the report"))
        + marker.len();
    html[start..].split('<').next().unwrap().to_string()
}

#[test]
fn audit_of_a_messy_world_reports_consistently_and_fails_on_critical_findings() {
    let dir = scratch("audit");
    let scenario = generate(&dir, 400, 11);
    let sandbox = Sandbox::start(Some(&scenario)).unwrap_or_else(|e| panic!("{e}"));
    let env = sandbox_env(&sandbox, &sandbox_config(&dir));
    let html_path = dir.join("audit.html");

    let json_run = orglink(
        &[
            "audit",
            "--format",
            "json",
            "--html",
            html_path.to_str().unwrap(),
        ],
        &env,
    );
    let report: Value = serde_json::from_slice(&json_run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&json_run)));
    let totals = &report["totals"];
    let critical = totals["critical"].as_u64().unwrap();
    // The generator plants duplicate keys and key conflicts: critical findings exist.
    assert!(critical > 0, "{totals}");
    assert_eq!(json_run.status.code(), Some(1), "critical findings exit 1");
    assert_eq!(totals["accounts"], 400);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(
        totals["findings"].as_u64().unwrap() as usize,
        findings.len()
    );
    let counted_critical = findings
        .iter()
        .filter(|f| f["severity"] == "critical")
        .count();
    assert_eq!(counted_critical as u64, critical);
    assert!(totals["linked"].as_u64().unwrap() <= totals["eligible"].as_u64().unwrap());
    assert!(
        stderr(&json_run).contains("HTML report written"),
        "{}",
        stderr(&json_run)
    );

    // The HTML report carries the same totals, and one block per finding.
    let html = std::fs::read_to_string(&html_path).expect("HTML written");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "self-contained, no scripts");
    for key in [
        "accounts",
        "eligible",
        "linked",
        "organizations",
        "findings",
        "critical",
        "data_fixes",
    ] {
        assert_eq!(html_total(&html, key), totals[key].to_string(), "{key}");
    }
    assert_eq!(
        html.matches("<div class=\"finding\"").count(),
        findings.len()
    );
    assert_eq!(
        html.matches("<dd class=\"action\">").count(),
        findings.len(),
        "every finding says what to do"
    );

    // CSV: a header, then one row per finding and report line.
    let csv_run = orglink(&["audit", "--format", "csv"], &env);
    assert_eq!(csv_run.status.code(), Some(1));
    let csv = stdout(&csv_run);
    assert!(csv.starts_with("type,kind,severity,"), "{csv}");
    let finding_rows = csv.lines().filter(|l| l.starts_with("finding,")).count();
    let report_rows = csv.lines().filter(|l| l.starts_with("report,")).count();
    assert_eq!(finding_rows, findings.len());
    assert_eq!(report_rows, report["report"].as_array().unwrap().len());

    // The table names the same totals.
    let table_run = orglink(&["audit"], &env);
    assert_eq!(table_run.status.code(), Some(1));
    let table = stdout(&table_run);
    assert!(table.contains(&format!("({critical} critical,")), "{table}");
}

/// Generated worlds date their tickets before mid-2025: a window of a century sees them all.
const EVERY_TICKET_DAYS: &str = "36500";

/// Zendesk calls by endpoint so far (the sandbox's count, all statuses).
fn zendesk_calls(sandbox: &Sandbox) -> Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        reqwest::get(format!("{}/_sandbox/calls", sandbox.zendesk))
            .await
            .expect("the sandbox answers")
            .json()
            .await
            .expect("JSON")
    })
}

fn calls_to(calls: &Value, endpoint: &str) -> u64 {
    calls[endpoint].as_object().map_or(0, |by_status| {
        by_status.values().filter_map(Value::as_u64).sum()
    })
}

#[test]
fn audit_reports_the_planted_ticket_drift_over_its_window_and_skips_tickets_on_zero() {
    let dir = scratch("audit-tickets");
    let scenario = generate(&dir, 400, 11);
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    let planted = truth["totals"]["findings"]["ticket_attribution_drift"]
        .as_u64()
        .unwrap();
    let planted_tickets: u64 = truth["ticket_attribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["misattributed_tickets"].as_u64().unwrap())
        .sum();
    assert!(planted > 0, "the generator plants tickets on the wrong org");
    let sandbox = Sandbox::start(Some(&scenario)).unwrap_or_else(|e| panic!("{e}"));
    let env = sandbox_env(&sandbox, &sandbox_config(&dir));

    // --ticket-days 0: no ticket is read, no ticket call is made, no ticket finding.
    let skipped = orglink(&["audit", "--format", "json", "--ticket-days", "0"], &env);
    let report: Value = serde_json::from_slice(&skipped.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", stderr(&skipped)));
    let totals = &report["totals"];
    assert!(
        totals["findings_by_kind"]
            .get("ticket_attribution_drift")
            .is_none(),
        "{totals}"
    );
    assert_eq!(totals["tickets"]["read"], 0, "{totals}");
    assert_eq!(totals["tickets_since"], Value::Null);
    let calls = zendesk_calls(&sandbox);
    for endpoint in [
        "zd.incremental_tickets",
        "zd.user_memberships",
        "zd.user_show_many",
    ] {
        assert_eq!(calls_to(&calls, endpoint), 0, "{endpoint}: {calls}");
    }
    let table = stdout(&orglink(&["audit", "--ticket-days", "0"], &env));
    assert!(table.contains("tickets  "), "{table}");
    assert!(table.contains("not read (--ticket-days 0)"), "{table}");

    // A window over every ticket: one row per planted org, as the truth says.
    let html_path = dir.join("audit.html");
    let run = orglink(
        &[
            "audit",
            "--format",
            "json",
            "--ticket-days",
            EVERY_TICKET_DAYS,
            "--html",
            html_path.to_str().unwrap(),
        ],
        &env,
    );
    let report: Value =
        serde_json::from_slice(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&run)));
    let totals = &report["totals"];
    assert_eq!(
        totals["findings_by_kind"]["ticket_attribution_drift"], planted,
        "{totals}"
    );
    let rows: Vec<&Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "ticket_attribution_drift")
        .collect();
    assert_eq!(rows.len() as u64, planted);
    let tickets = &totals["tickets"];
    assert_eq!(tickets["read"], truth["counts"]["tickets"], "{totals}");
    assert_eq!(tickets["misattributed"], planted_tickets, "{totals}");
    assert_eq!(totals["ticket_days"], 36500);
    assert!(
        totals["tickets_since"]
            .as_str()
            .is_some_and(|s| s.starts_with("1970-01-01")),
        "{totals}"
    );
    let calls = zendesk_calls(&sandbox);
    assert_eq!(
        calls_to(&calls, "zd.incremental_tickets"),
        tickets["pages"].as_u64().unwrap(),
        "one export call per page: {calls}"
    );
    assert_eq!(
        calls_to(&calls, "zd.user_memberships"),
        tickets["requesters_looked_up"].as_u64().unwrap(),
        "memberships listed once per requester whose default org is not the ticket's"
    );
    let html = std::fs::read_to_string(&html_path).expect("HTML written");
    assert_eq!(
        html_total(&html, "tickets_read"),
        tickets["read"].to_string()
    );
    assert_eq!(
        html_total(&html, "tickets_misattributed"),
        tickets["misattributed"].to_string()
    );
    assert!(html.contains("the last 36500 days, since 1970-01-01"));

    // The table says how many tickets were read and over what window.
    let table = stdout(&orglink(
        &["audit", "--ticket-days", EVERY_TICKET_DAYS],
        &env,
    ));
    assert!(
        table.lines().any(|l| l.starts_with("  tickets read")
            && l.contains(&tickets["read"].to_string())
            && l.contains("(the last 36500 days, since 1970-01-01;")
            && l.contains(&format!("{planted_tickets} misattributed"))),
        "{table}"
    );
}

#[test]
fn a_clean_world_exits_zero_and_errors_exit_two() {
    let dir = scratch("audit-clean");
    let scenario = dir.join("empty.json");
    std::fs::write(
        &scenario,
        r#"{"salesforce":{"accounts":[]},"zendesk":{"organizations":[]}}"#,
    )
    .unwrap();
    let sandbox = Sandbox::start(Some(&scenario)).unwrap_or_else(|e| panic!("{e}"));
    let env = sandbox_env(&sandbox, &sandbox_config(&dir));
    let run = orglink(&["audit", "--format", "json"], &env);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let report: Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(report["totals"]["critical"], 0);
    assert_eq!(report["totals"]["coverage_percent"], 100.0);

    // Bound to another org: refused before reading anything, exit 2, says why.
    let other = dir.join("other.toml");
    std::fs::write(
        &other,
        orglink_shared::contract::DEFAULT_CONFIG_TOML
            .replace("00D000000000001EAA", "00D000000000009AAA"),
    )
    .unwrap();
    let wrong = orglink(&["audit", "--config", other.to_str().unwrap()], &env);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(stderr(&wrong).contains("bound to"), "{}", stderr(&wrong));

    // No credentials: exit 2 and the variables to set.
    let bare: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !k.starts_with("ORGLINK_SF_"))
        .cloned()
        .collect();
    let none = orglink(&["audit"], &bare);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        stderr(&none).contains("ORGLINK_CREDENTIALS_JSON"),
        "{}",
        stderr(&none)
    );
    assert!(
        !stderr(&none).contains("sandbox-zendesk-token"),
        "never a secret"
    );
}

#[test]
fn config_check_passes_on_the_sandbox_and_setup_zendesk_is_idempotent() {
    let dir = scratch("config-setup");
    let sandbox = Sandbox::start(None).unwrap_or_else(|e| panic!("{e}"));
    let env = sandbox_env(&sandbox, &sandbox_config(&dir));
    let check = orglink(&["config", "check"], &env);
    let out = stdout(&check);
    // 3: nothing failed; View All is unverifiable without View Setup and Configuration, which
    // the sandbox's integration user lacks like a real one (cli/tests/config_check.rs).
    assert_eq!(check.status.code(), Some(3), "{out}{}", stderr(&check));
    assert!(!out.contains("FAIL"), "{out}");
    assert!(out.contains("no check failed"), "{out}");
    assert!(
        !out.contains("sandbox-zendesk-token") && !out.contains("consumer-secret"),
        "{out}"
    );

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[binding]\nsalesforce_org_id = \"nope\"\n").unwrap();
    let failed = orglink(
        &["config", "check", "--config", bad.to_str().unwrap()],
        &env,
    );
    assert_eq!(failed.status.code(), Some(1));
    assert!(
        stdout(&failed).contains("FAIL  configuration"),
        "{}",
        stdout(&failed)
    );

    let url = "http://127.0.0.1:9/intake";
    let first = orglink(&["setup", "zendesk", "--intake-url", url], &env);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let first = stdout(&first);
    assert_eq!(
        first.matches(": created").count(),
        3,
        "two fields and the webhook: {first}"
    );
    let again = stdout(&orglink(&["setup", "zendesk", "--intake-url", url], &env));
    assert!(!again.contains("created"), "{again}");
    assert!(
        again.contains("already posts to http://127.0.0.1:9/intake/zendesk"),
        "{again}"
    );
}

/// The README quotes the demo's audit output: the quoted lines must be what the demo's world
/// (2,000 accounts, seed 42, as `make demo` generates it) really prints, with the demo's ticket
/// window (cli/examples/demo.rs `TICKET_DAYS`).
#[test]
fn the_readme_quotes_what_the_demo_prints() {
    let readme = std::fs::read_to_string(orglink_harness::repo_root().join("README.md")).unwrap();
    let section = readme
        .split("### What `make demo` shows")
        .nth(1)
        .expect("the README has the demo section");
    let quoted: Vec<&str> = section
        .split("```text\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the demo section quotes output")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert!(!quoted.is_empty());

    let dir = scratch("readme-demo");
    let scenario = generate(&dir, 2000, 42);
    let sandbox = Sandbox::start(Some(&scenario)).unwrap_or_else(|e| panic!("{e}"));
    let env = sandbox_env(&sandbox, &sandbox_config(&dir));
    let printed = stdout(&orglink(
        &["audit", "--ticket-days", EVERY_TICKET_DAYS],
        &env,
    ));
    for line in quoted {
        assert!(
            printed.lines().any(|p| p == line),
            "README line {line:?} is not in the demo's output:\n{printed}"
        );
    }
}
