//! `orglink audit`: a read-only comparison of Salesforce and Zendesk as they are now, through
//! the two clients and the pure reconciliation diff. It needs no AWS: it reads every
//! organization, the accounts that should be linked or hold a link, and reports what the
//! nightly reconcile would find, without writing anything anywhere. Tickets updated within
//! `--ticket-days` are checked for attribution as reconcile checks them (the same export, the
//! same tally, the same diff).
//!
//! Output: a summary table (default), `--format json|csv`, and `--html FILE`, a self-contained
//! report for a support lead. Exit code 1 when critical findings exist (cron and CI can act on
//! it), 0 otherwise, 2 when the audit could not run.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use futures_util::TryStreamExt;
use serde::Serialize;

use orglink_shared::contract::Config;
use orglink_shared::domain::DomainPolicy;
use orglink_shared::exceptions::{ExceptionKind, Finding, ReportKind, ReportLine, Severity};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::model::Account;
use orglink_shared::reconcile::{
    AccountFacts, DEFAULT_TICKET_HORIZON_DAYS, DiffBuilder, DiffConfig, Repair, TicketCounts,
    horizon_start, latest_copies,
};
use orglink_shared::zendesk::TicketExportFrom;

use crate::context::{self, Clients, Common, OpsError};
use crate::html;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  orglink audit                              summary table; exit 1 if critical findings exist
  orglink audit --format json > audit.json   everything, machine-readable
  orglink audit --format csv > findings.csv  one row per finding and report line
  orglink audit --html audit.html            a report a support lead can open
  orglink audit --ticket-days 365            check tickets updated in the last year
  orglink audit --ticket-days 0              organizations and accounts only

Exit codes: 0 no critical findings, 1 critical findings exist, 2 the audit could not run.")]
pub struct AuditArgs {
    #[command(flatten)]
    pub common: Common,
    /// What to print on standard output.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Also write a self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Check the attribution of tickets updated in the last N days, as a full reconcile does
    /// (its `ticket_horizon_days`); 0: tickets are not read.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_TICKET_HORIZON_DAYS)]
    pub ticket_days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Everything the audit found, with the names a person needs to read it.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub totals: Totals,
    pub findings: Vec<Finding>,
    pub report: Vec<ReportLine>,
    pub repairs: Vec<Repair>,
    /// Account id → name, org id → name, for the accounts and orgs mentioned.
    pub names: BTreeMap<String, String>,
}

/// The headline numbers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Accounts read from Salesforce (deleted and merged included).
    pub accounts: usize,
    /// Accounts that should have a linked organization.
    pub eligible: usize,
    /// Eligible accounts whose stored organization exists and carries their key.
    pub linked: usize,
    /// `linked / eligible`, in percent (100 when nothing is eligible).
    pub coverage_percent: f64,
    pub organizations: usize,
    pub findings: usize,
    pub critical: usize,
    pub warning: usize,
    pub info: usize,
    pub findings_by_kind: BTreeMap<ExceptionKind, usize>,
    pub data_fixes: usize,
    pub churned_customers: usize,
    pub missing_links: usize,
    /// Safe repairs reconcile would enqueue.
    pub repairs: usize,
    pub salesforce_calls: u64,
    pub zendesk_calls: u64,
    /// Tickets were read if they were updated in the last `ticket_days` days (0: not read)...
    pub ticket_days: u32,
    /// ...that is since this time (RFC 3339; `None` when tickets were not read).
    pub tickets_since: Option<String>,
    /// What the ticket read found, counted as reconcile's run summary counts it.
    pub tickets: TicketCounts,
}

impl Totals {
    /// The ticket window in words, `the last 90 days, since 2026-08-26` (`None`: tickets
    /// were not read).
    pub fn ticket_window(&self) -> Option<String> {
        self.tickets_since.as_ref().map(|since| {
            format!(
                "the last {} days, since {}",
                self.ticket_days,
                since.split('T').next().unwrap_or(since)
            )
        })
    }
}

pub fn run(args: AuditArgs) -> ExitCode {
    context::run(async move {
        let (config, clients) = context::connect(&args.common).await?;
        let report = gather(
            &config,
            &DomainPolicy::default(),
            &clients,
            args.ticket_days,
        )
        .await?;
        if let Some(path) = &args.html {
            std::fs::write(path, html::render(&report)).map_err(OpsError::write(format!(
                "the HTML report {}",
                path.display()
            )))?;
            eprintln!("orglink audit: HTML report written to {}", path.display());
        }
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        match args.format {
            Format::Table => write_table(&mut out, &report),
            Format::Json => serde_json::to_writer_pretty(&mut out, &report)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(out)),
            Format::Csv => write_csv(&mut out, &report),
        }
        .and_then(|()| out.flush())
        .map_err(OpsError::write("the audit"))?;
        Ok(if report.totals.critical > 0 {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    })
}

/// What the diff needs to know about one account (the shared builder). Without a link record,
/// orglink's last write to `Zendesk_Domain__c` is unknown: a reviewed domain that differs from
/// Website is reported as drift (information only).
pub fn account_facts(config: &Config, policy: &DomainPolicy, account: &Account) -> AccountFacts {
    AccountFacts::from_account(config, policy, account, None)
}

/// Reads both systems (tickets updated in the last `ticket_days` days too, unless 0) and runs
/// the diff.
pub async fn gather(
    config: &Config,
    policy: &DomainPolicy,
    clients: &Clients,
    ticket_days: u32,
) -> Result<AuditReport, OpsError> {
    let mut names = BTreeMap::new();
    // Which account each organization's key names, to count consistent links.
    let mut org_keys: HashMap<OrgId, Option<AccountId>> = HashMap::new();
    let mut builder = DiffBuilder::new(DiffConfig::default());
    let pages = clients.zendesk.list_pages(None);
    futures_util::pin_mut!(pages);
    while let Some(page) = pages.try_next().await? {
        for org in &page.organizations {
            names.insert(org.id.to_string(), org.name.clone());
            org_keys.insert(org.id, org.key().account().cloned());
        }
        builder.add_orgs(&page.organizations);
    }
    let mut totals = Totals {
        organizations: org_keys.len(),
        ..Totals::default()
    };

    let mut diff = builder.accounts();
    if ticket_days > 0 {
        // As reconcile's ticket phase: each export page's requesters settled (memberships
        // listed once per requester), counted, and only the misattributed tickets kept.
        let start = horizon_start(context::now_ms() / 1000, ticket_days);
        totals.ticket_days = ticket_days;
        totals.tickets_since = Some(context::format_ms(start * 1000));
        let mut kept = Vec::new();
        let mut memberships = HashMap::new();
        let pages = clients
            .zendesk
            .ticket_export(TicketExportFrom::StartTime(start));
        futures_util::pin_mut!(pages);
        while let Some(page) = pages.try_next().await? {
            kept.extend(
                clients
                    .zendesk
                    .misattributed_tickets(&page, &mut memberships, &mut totals.tickets)
                    .await?,
            );
        }
        diff.add_tickets(&latest_copies(kept));
    }
    let accounts = clients.salesforce.accounts(None, true);
    futures_util::pin_mut!(accounts);
    while let Some(page) = accounts.try_next().await? {
        for account in page {
            totals.accounts += 1;
            let facts = account_facts(config, policy, &account);
            let holds_link = facts
                .stored_org_id
                .as_deref()
                .is_some_and(|s| !s.trim().is_empty());
            if facts.eligible && !facts.is_deleted && facts.master_record_id.is_none() {
                totals.eligible += 1;
                let consistent = account
                    .stored_org()
                    .and_then(|org| org_keys.get(&org))
                    .is_some_and(|key| key.as_ref() == Some(&account.id));
                if consistent {
                    totals.linked += 1;
                }
            }
            // Deleted and merged accounts matter too: their orgs may be orphaned, and a merge
            // tells the survivor which keys are its own.
            let gone = facts.is_deleted || facts.master_record_id.is_some();
            if facts.eligible || holds_link || gone {
                names.insert(account.id.to_string(), account.name.clone());
                diff.add_account(facts);
            }
        }
    }
    // Organizations keyed to accounts the stream did not include: look them up (queryAll
    // knows deleted ones; an id it does not know at all was purged).
    let unseen = diff.accounts_to_look_up();
    if !unseen.is_empty() {
        let found = clients.salesforce.read_accounts(&unseen).await?;
        let mut known = std::collections::HashSet::new();
        for account in &found {
            known.insert(account.id.clone());
            names.insert(account.id.to_string(), account.name.clone());
            diff.add_account(account_facts(config, policy, account));
        }
        for id in unseen.into_iter().filter(|id| !known.contains(id)) {
            diff.add_account(AccountFacts::purged(id));
        }
    }
    let outcome = diff.finish();

    totals.coverage_percent = if totals.eligible == 0 {
        100.0
    } else {
        (totals.linked as f64 * 1000.0 / totals.eligible as f64).round() / 10.0
    };
    totals.findings = outcome.findings.len();
    for f in &outcome.findings {
        match f.severity {
            Severity::Critical => totals.critical += 1,
            Severity::Warning => totals.warning += 1,
            Severity::Info => totals.info += 1,
        }
        *totals.findings_by_kind.entry(f.kind).or_default() += 1;
    }
    for line in &outcome.report {
        match line.kind {
            ReportKind::DataFix => totals.data_fixes += 1,
            ReportKind::ChurnedCustomer => totals.churned_customers += 1,
            ReportKind::MissingLink => totals.missing_links += 1,
        }
    }
    totals.repairs = outcome.repairs.len();
    (totals.salesforce_calls, totals.zendesk_calls) = clients.sent();

    // Keep only the names the report mentions.
    let mut mentioned = std::collections::HashSet::new();
    for f in &outcome.findings {
        mentioned.extend(f.accounts.iter().map(|a| a.to_string()));
        mentioned.extend(f.orgs.iter().map(|o| o.to_string()));
    }
    for l in &outcome.report {
        mentioned.insert(l.account.to_string());
        mentioned.extend(l.org.map(|o| o.to_string()));
    }
    names.retain(|k, _| mentioned.contains(k));

    Ok(AuditReport {
        totals,
        findings: outcome.findings,
        report: outcome.report,
        repairs: outcome.repairs,
        names,
    })
}

fn write_table(out: &mut impl Write, r: &AuditReport) -> std::io::Result<()> {
    let t = &r.totals;
    writeln!(out, "orglink audit (read-only)")?;
    writeln!(out, "  accounts read              {:>8}", t.accounts)?;
    writeln!(out, "  eligible accounts          {:>8}", t.eligible)?;
    writeln!(
        out,
        "  linked                     {:>8}  ({:.1}% coverage)",
        t.linked, t.coverage_percent
    )?;
    writeln!(out, "  organizations              {:>8}", t.organizations)?;
    writeln!(
        out,
        "  findings                   {:>8}  ({} critical, {} warning, {} info)",
        t.findings, t.critical, t.warning, t.info
    )?;
    for (kind, n) in &t.findings_by_kind {
        writeln!(
            out,
            "    {:<24} {:>8}  [{}]",
            kind.as_str(),
            n,
            severity(*kind)
        )?;
    }
    writeln!(out, "  data fixes                 {:>8}", t.data_fixes)?;
    writeln!(
        out,
        "  churned customers          {:>8}",
        t.churned_customers
    )?;
    writeln!(out, "  missing links              {:>8}", t.missing_links)?;
    writeln!(out, "  safe repairs               {:>8}", t.repairs)?;
    match t.ticket_window() {
        Some(window) => writeln!(
            out,
            "  tickets read               {:>8}  ({window}; {} misattributed)",
            t.tickets.read, t.tickets.misattributed
        )?,
        None => writeln!(
            out,
            "  tickets                    not read (--ticket-days 0)"
        )?,
    }
    writeln!(
        out,
        "  API calls                  {:>8}  (Salesforce {}, Zendesk {})",
        t.salesforce_calls + t.zendesk_calls,
        t.salesforce_calls,
        t.zendesk_calls
    )?;
    if t.critical > 0 {
        writeln!(
            out,
            "critical findings exist: see `orglink audit --html FILE` for evidence and actions"
        )?;
    }
    Ok(())
}

fn severity(kind: ExceptionKind) -> &'static str {
    match kind.severity() {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// One row per finding and per report line:
/// `type,kind,severity,accounts,orgs,domain,summary,recommended_action,detail`.
fn write_csv(out: &mut impl Write, r: &AuditReport) -> std::io::Result<()> {
    writeln!(
        out,
        "type,kind,severity,accounts,orgs,domain,summary,recommended_action,detail"
    )?;
    let join = |v: Vec<String>| v.join(" ");
    for f in &r.findings {
        let evidence: Vec<String> = f
            .evidence
            .iter()
            .map(|(k, v)| format!("{k}={}", v.join("|")))
            .collect();
        let row = [
            "finding".to_string(),
            f.kind.as_str().to_string(),
            severity(f.kind).to_string(),
            join(f.accounts.iter().map(|a| a.to_string()).collect()),
            join(f.orgs.iter().map(|o| o.to_string()).collect()),
            f.domain.as_ref().map(|d| d.to_string()).unwrap_or_default(),
            f.kind.summary().to_string(),
            f.kind.recommended_action().to_string(),
            evidence.join("; "),
        ];
        writeln!(out, "{}", csv_row(&row))?;
    }
    for l in &r.report {
        let row = [
            "report".to_string(),
            report_kind(l.kind).to_string(),
            String::new(),
            l.account.to_string(),
            l.org.map(|o| o.to_string()).unwrap_or_default(),
            String::new(),
            String::new(),
            String::new(),
            l.detail.clone(),
        ];
        writeln!(out, "{}", csv_row(&row))?;
    }
    Ok(())
}

pub fn report_kind(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::DataFix => "data_fix",
        ReportKind::ChurnedCustomer => "churned_customer",
        ReportKind::MissingLink => "missing_link",
    }
}

/// RFC 4180 quoting; a leading formula character is prefixed with `'` so a spreadsheet never
/// runs a cell from Salesforce data.
fn csv_row(fields: &[String]) -> String {
    fields
        .iter()
        .map(|f| {
            let f = if f.starts_with(['=', '+', '-', '@']) {
                format!("'{f}")
            } else {
                f.clone()
            };
            if f.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let row = csv_row(&[
            "plain".into(),
            "a,b".into(),
            "say \"hi\"".into(),
            "=HYPERLINK(1)".into(),
        ]);
        assert_eq!(row, "plain,\"a,b\",\"say \"\"hi\"\"\",'=HYPERLINK(1)");
    }

    #[test]
    fn facts_follow_the_contract() {
        let config = Config::embedded_default();
        let mut account = Account {
            id: AccountId::parse("001D000000IRFmaIAH").unwrap(),
            name: "Acme | Corp".into(),
            website: Some("jane@gmail.com".into()),
            reviewed_domain: None,
            stored_org_id: Some("42".into()),
            sync_status: None,
            account_type: Some("Customer - Direct".into()),
            owner_email: None,
            is_deleted: false,
            master_record_id: None,
            has_closed_won: false,
            open_opportunities: vec![],
            system_modstamp: None,
        };
        let facts = account_facts(&config, &DomainPolicy::default(), &account);
        assert!(facts.eligible);
        assert!(!facts.name.contains('|'), "{}", facts.name);
        assert!(facts.domain.is_none());
        let why = facts.unusable_website.expect("free mail is a data fix");
        assert!(why.contains("gmail.com"), "{why}");

        account.website = Some("https://www.acme.com/x".into());
        account.reviewed_domain = Some("acme.io".into());
        account.account_type = Some("Prospect".into());
        let facts = account_facts(&config, &DomainPolicy::default(), &account);
        assert!(!facts.eligible);
        assert_eq!(facts.domain.as_ref().map(|d| d.as_str()), Some("acme.io"));
        assert_eq!(facts.website_disagrees.as_deref(), Some("acme.com"));
    }
}
