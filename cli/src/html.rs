//! The audit's HTML report: one self-contained file (inline style, no scripts, no external
//! resources) a support lead can open or attach to a ticket. Totals first, then findings grouped
//! by account with their evidence and the recommended action, then data fixes and the other
//! report lines. Every number in the totals table carries `data-total="<name>"`, so tools (and
//! the tests) read it without scraping prose.

use std::collections::BTreeMap;
use std::fmt::Write;

use orglink_shared::exceptions::{Finding, ReportKind, Severity};

use crate::audit::{AuditReport, report_kind};

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.critical{color:#a00;font-weight:bold}.warning{color:#a60}.info{color:#066}\
section.account{border-left:4px solid #ccc;padding-left:1em;margin:1.5em 0}dl{margin:.3em 0}dt{font-weight:bold}\
dd{margin:0 0 .3em 1.5em;font-family:monospace}";

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// The whole report.
pub fn render(r: &AuditReport) -> String {
    let t = &r.totals;
    let name = |id: &str| -> String {
        match r.names.get(id) {
            Some(n) if !n.is_empty() => format!("{} ({})", escape(n), escape(id)),
            _ => escape(id),
        }
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>orglink audit</title><style>{STYLE}</style></head><body>\n<h1>orglink audit</h1>\n\
<p>A read-only comparison of Salesforce Accounts and Zendesk Organizations. Nothing was changed.</p>\n"
    );

    h.push_str("<h2>Totals</h2>\n<table id=\"totals\">\n");
    let tickets_read = match t.ticket_window() {
        Some(window) => format!("Tickets read (updated in {})", escape(&window)),
        None => "Tickets read (none: --ticket-days 0)".to_string(),
    };
    let rows: [(&str, &str, String); 17] = [
        ("accounts", "Accounts read", t.accounts.to_string()),
        (
            "eligible",
            "Accounts that should be linked",
            t.eligible.to_string(),
        ),
        ("linked", "Linked correctly", t.linked.to_string()),
        (
            "coverage_percent",
            "Coverage (%)",
            format!("{:.1}", t.coverage_percent),
        ),
        (
            "organizations",
            "Zendesk organizations",
            t.organizations.to_string(),
        ),
        ("findings", "Findings for review", t.findings.to_string()),
        ("critical", "Critical", t.critical.to_string()),
        ("warning", "Warning", t.warning.to_string()),
        ("info", "Info", t.info.to_string()),
        ("data_fixes", "Data fixes", t.data_fixes.to_string()),
        (
            "churned_customers",
            "Churned customers (link kept)",
            t.churned_customers.to_string(),
        ),
        (
            "missing_links",
            "Missing links (safe to repair)",
            t.missing_links.to_string(),
        ),
        (
            "repairs",
            "Safe repairs reconcile would queue",
            t.repairs.to_string(),
        ),
        ("tickets_read", &tickets_read, t.tickets.read.to_string()),
        (
            "tickets_misattributed",
            "Tickets on an organization their requester does not belong to",
            t.tickets.misattributed.to_string(),
        ),
        (
            "salesforce_calls",
            "Salesforce API calls",
            t.salesforce_calls.to_string(),
        ),
        (
            "zendesk_calls",
            "Zendesk API calls",
            t.zendesk_calls.to_string(),
        ),
    ];
    for (key, label, value) in rows {
        let _ = writeln!(
            h,
            "<tr><th>{label}</th><td data-total=\"{key}\">{value}</td></tr>"
        );
    }
    h.push_str("</table>\n");

    if !t.findings_by_kind.is_empty() {
        h.push_str("<h2>Findings by kind</h2>\n<table id=\"kinds\"><tr><th>kind</th><th>severity</th><th>count</th><th>what it means</th></tr>\n");
        for (kind, n) in &t.findings_by_kind {
            let sev = severity_name(kind.severity());
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td class=\"{sev}\">{sev}</td><td data-kind=\"{}\">{n}</td><td>{}</td></tr>",
                kind.as_str(),
                kind.as_str(),
                escape(kind.summary())
            );
        }
        h.push_str("</table>\n");
    }

    // Findings grouped by account (findings about organizations only come last).
    let mut by_account: BTreeMap<String, Vec<&Finding>> = BTreeMap::new();
    for f in &r.findings {
        let key = f
            .accounts
            .first()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "~".into());
        by_account.entry(key).or_default().push(f);
    }
    let _ = writeln!(h, "<h2>Findings by account ({})</h2>", r.findings.len());
    if r.findings.is_empty() {
        h.push_str("<p>None.</p>\n");
    }
    for (account, findings) in &by_account {
        let title = if account == "~" {
            "Organizations without a Salesforce account".to_string()
        } else {
            format!("Account {}", name(account))
        };
        let _ = writeln!(h, "<section class=\"account\"><h3>{title}</h3>");
        for f in findings {
            let sev = severity_name(f.severity);
            let _ = writeln!(
                h,
                "<div class=\"finding\" data-kind=\"{}\" data-fingerprint=\"{}\"><p><span class=\"{sev}\">[{sev}]</span> <b>{}</b>: {}</p>",
                f.kind.as_str(),
                escape(f.fingerprint().as_str()),
                f.kind.as_str(),
                escape(f.kind.summary())
            );
            h.push_str("<dl>");
            if f.accounts.len() > 1 {
                let all: Vec<String> = f.accounts.iter().map(|a| name(a.as_str())).collect();
                let _ = write!(h, "<dt>accounts</dt><dd>{}</dd>", all.join(", "));
            }
            if !f.orgs.is_empty() {
                let all: Vec<String> = f.orgs.iter().map(|o| name(&o.to_string())).collect();
                let _ = write!(h, "<dt>organizations</dt><dd>{}</dd>", all.join(", "));
            }
            if let Some(d) = &f.domain {
                let _ = write!(h, "<dt>domain</dt><dd>{}</dd>", escape(d.as_str()));
            }
            for (k, values) in f.evidence.iter() {
                let _ = write!(
                    h,
                    "<dt>{}</dt><dd>{}</dd>",
                    escape(k),
                    escape(&values.join(", "))
                );
            }
            let _ = write!(
                h,
                "<dt>recommended action</dt><dd class=\"action\">{}</dd>",
                escape(f.kind.recommended_action())
            );
            h.push_str("</dl></div>\n");
        }
        h.push_str("</section>\n");
    }

    for (kind, title) in [
        (
            ReportKind::DataFix,
            "Data fixes (Salesforce values orglink cannot use)",
        ),
        (
            ReportKind::MissingLink,
            "Missing links (reconcile repairs these)",
        ),
        (
            ReportKind::ChurnedCustomer,
            "Churned customers (link kept, reported)",
        ),
    ] {
        let lines: Vec<_> = r.report.iter().filter(|l| l.kind == kind).collect();
        let _ = writeln!(
            h,
            "<h2 id=\"{}\">{title} ({})</h2>",
            report_kind(kind),
            lines.len()
        );
        if lines.is_empty() {
            h.push_str("<p>None.</p>\n");
            continue;
        }
        h.push_str("<table><tr><th>account</th><th>organization</th><th>detail</th></tr>\n");
        for l in lines {
            let _ = writeln!(
                h,
                "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
                report_kind(kind),
                name(l.account.as_str()),
                l.org.map(|o| name(&o.to_string())).unwrap_or_default(),
                escape(&l.detail)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">O'Brien & Co</a>"),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Brien &amp; Co&lt;/a&gt;"
        );
    }
}
