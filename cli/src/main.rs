//! `orglink`: the operator CLI.
//!
//! Each subcommand is a small function over the shared library; more commands (audit, backfill,
//! trace, exceptions review...) join the `Command` enum as they are built.

use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use orglink_shared::domain::{DomainPolicy, WebsiteCheck};

mod backfill;

mod audit;
mod config_check;
mod context;
mod dlq;
mod exceptions;
mod html;
mod setup;
mod sync;
mod trace;

#[derive(Parser)]
#[command(
    name = "orglink",
    version,
    about = "Keeps one trustworthy link between each Salesforce Account and one Zendesk Organization"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Shows what orglink makes of website values: the domain it would use, or why it cannot.
    ///
    /// A report: it always exits 0 once the values are read. Pipe a CSV column in to review a
    /// whole export: `cut -d, -f3 accounts.csv | orglink check-website --json`.
    CheckWebsite(CheckWebsiteArgs),
    /// Compares Salesforce and Zendesk now, read-only (no AWS needed): coverage, findings,
    /// data fixes. Exit code 1 when critical findings exist.
    Audit(audit::AuditArgs),
    /// Asks the sync worker to re-sync one account now (enqueues a sync request).
    Sync(sync::SyncArgs),
    /// Shows why an account is linked as it is: last decision, rule, evidence, claims,
    /// exceptions; `--live` also resolves now.
    Trace(trace::TraceArgs),
    /// Reviews the exception queue: list, show, resolve, dismiss.
    Exceptions(exceptions::ExceptionsArgs),
    /// The sync queue's dead letters: list, redrive.
    Dlq(dlq::DlqArgs),
    /// Checks the configuration, the credentials and both systems.
    #[command(subcommand)]
    Config(config_check::ConfigCommand),
    /// Creates orglink's organization fields and webhook in Zendesk.
    #[command(subcommand)]
    Setup(setup::SetupCommand),
    /// Links every eligible account from history: `plan` (a dry run that writes a plan file
    /// with its hash), then `apply` the reviewed plan (docs/backfill.md).
    #[command(subcommand)]
    Backfill(backfill::BackfillCommand),
}

#[derive(Args)]
struct CheckWebsiteArgs {
    /// Website values to check. With none, one value per line is read from standard input.
    values: Vec<String>,

    /// Print one JSON object per value per line: input, host, domain, suffix_type, reason,
    /// detail (domain is null when the value cannot be used, reason null when it can).
    #[arg(long)]
    json: bool,

    /// A TOML file with domain overrides (allow, extra_consumer, extra_shared), either at the
    /// top level or in a [domains] table of the orglink configuration.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::CheckWebsite(args) => check_website(args),
        Command::Audit(args) => return audit::run(args),
        Command::Sync(args) => return sync::run(args),
        Command::Trace(args) => return trace::run(args),
        Command::Exceptions(args) => return exceptions::run(args),
        Command::Dlq(args) => return dlq::run(args),
        Command::Config(command) => return config_check::run(command),
        Command::Setup(command) => return setup::run(command),
        Command::Backfill(command) => return backfill::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orglink: {e}");
            ExitCode::from(2)
        }
    }
}

/// What stops a command before it has done its job; each says what to fix.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("cannot read the policy file {path}: {source}")]
    PolicyRead { path: PathBuf, source: io::Error },
    #[error("the policy file {path} is not valid: {message}")]
    PolicyInvalid { path: PathBuf, message: String },
    #[error("cannot read values from standard input: {0}")]
    Input(io::Error),
    #[error("cannot write the report: {0}")]
    Output(io::Error),
}

fn check_website(args: CheckWebsiteArgs) -> Result<(), CliError> {
    let policy = match &args.policy {
        Some(path) => load_policy(path)?,
        None => DomainPolicy::default(),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut report = Report::default();

    if args.values.is_empty() {
        // Read as bytes so one badly encoded line in an export does not stop the report.
        for line in io::stdin().lock().split(b'\n') {
            let line = line.map_err(CliError::Input)?;
            let text = String::from_utf8_lossy(&line);
            let value = text.strip_suffix('\r').unwrap_or(&text);
            report.write(&mut out, &policy.check_website(value), args.json)?;
        }
    } else {
        for value in &args.values {
            report.write(&mut out, &policy.check_website(value), args.json)?;
        }
    }
    if !args.json {
        report.summary(&mut out)?;
    }
    out.flush().map_err(CliError::Output)
}

/// Reads a [`DomainPolicy`] from the `[domains]` table of a configuration file, or from a file
/// that holds only the policy's keys.
fn load_policy(path: &Path) -> Result<DomainPolicy, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::PolicyRead {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |message: String| CliError::PolicyInvalid {
        path: path.to_owned(),
        message,
    };
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let policy_keys = ["allow", "extra_consumer", "extra_shared"];
    let section = match table.remove("domains") {
        Some(section) => section,
        // A whole configuration without a [domains] table simply has no overrides.
        None if table.keys().any(|k| !policy_keys.contains(&k.as_str())) => {
            eprintln!(
                "orglink: {} has no [domains] table: using the curated lists only",
                path.display()
            );
            return Ok(DomainPolicy::default());
        }
        None => toml::Value::Table(table),
    };
    section
        .try_into()
        .map_err(|e: toml::de::Error| invalid(e.to_string()))
}

/// Counts for the closing line of the text report.
#[derive(Default)]
struct Report {
    usable: usize,
    unusable: usize,
}

impl Report {
    fn write(
        &mut self,
        out: &mut impl Write,
        check: &WebsiteCheck,
        json: bool,
    ) -> Result<(), CliError> {
        match &check.outcome {
            Ok(_) => self.usable += 1,
            Err(_) => self.unusable += 1,
        }
        if json {
            let line = serde_json::to_string(check).expect("a WebsiteCheck always serializes");
            return writeln!(out, "{line}").map_err(CliError::Output);
        }
        let evidence = match (&check.host, check.suffix_type) {
            (Some(host), Some(suffix)) => format!(" (host {host}, {} suffix)", suffix.as_str()),
            (Some(host), None) => format!(" (host {host})"),
            _ => String::new(),
        };
        let verdict = match &check.outcome {
            Ok(domain) => match domain.to_unicode() {
                unicode if unicode != domain.as_str() => {
                    format!("domain {domain} ({unicode}){evidence}")
                }
                _ => format!("domain {domain}{evidence}"),
            },
            Err(unusable) => format!(
                "cannot be used: {} [{}]{evidence}\n    {}",
                unusable.reason,
                unusable.reason.as_str(),
                unusable.detail
            ),
        };
        writeln!(out, "{:?}\n    {verdict}", check.input).map_err(CliError::Output)
    }

    fn summary(&self, out: &mut impl Write) -> Result<(), CliError> {
        writeln!(
            out,
            "{} value(s): {} usable, {} cannot be used",
            self.usable + self.unusable,
            self.usable,
            self.unusable
        )
        .map_err(CliError::Output)
    }
}
