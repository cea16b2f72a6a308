//! `orglink backfill plan` and `orglink backfill apply`: link every eligible account from
//! history through the bulk endpoints (docs/backfill.md). The work is in
//! `orglink_shared::backfill`; this is the wiring: configuration, credentials, clients, the
//! deployment's state tables and the shared rate budget.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use orglink_shared::aws::budget::MemoryBudget;
use orglink_shared::aws::claims::{DynamoClaims, MemoryClaims};
use orglink_shared::aws::exceptions::{DynamoExceptions, MemoryExceptions};
use orglink_shared::aws::links::{DynamoLinks, MemoryLinks};
use orglink_shared::aws::mirror::{DynamoMirror, MemoryMirror};
use orglink_shared::aws::{ClaimStore, ExceptionStore, LinkStore, OrgMirror, SharedRateBudget};
use orglink_shared::backfill::{
    ApplyReport, Backfill, BackfillError, DEFAULT_MAX_BUDGET_WAIT, FailPoint, PatientBudget,
    PlanFile, Progress, Settings, journal::Journal,
};
use orglink_shared::contract::Config;
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::{BudgetConfig, CallLog, RateBudget, System};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig};

use crate::context;

#[derive(Subcommand)]
pub enum BackfillCommand {
    /// Dry run: reads both systems, decides every account and writes the plan file (each
    /// account's decision with its rule and evidence, totals, and the hash to confirm).
    Plan(PlanArgs),
    /// Applies a reviewed plan: re-checks each account against the current state first and
    /// skips, with the reason, any whose state changed. Run it again to finish an interrupted
    /// apply (the journal beside the plan remembers what was done).
    Apply(ApplyArgs),
}

#[derive(Args)]
pub struct Common {
    /// The orglink configuration (TOML). Default: $ORGLINK_CONFIG_FILE, then
    /// $ORGLINK_CONFIG_TOML, then the embedded default.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where state lives: the deployment's DynamoDB tables (names from the ORGLINK_*_TABLE
    /// variables), or this process's memory (local sandboxes and benchmarks only: claims do
    /// not reach live workers).
    #[arg(long, value_enum, default_value_t = StateKind::Dynamodb)]
    state: StateKind,
    /// Zendesk plan limit, requests a minute (Suite Enterprise: 700).
    #[arg(long, default_value_t = 700)]
    zendesk_plan_limit: u32,
    /// Share of the Zendesk limit this process and everything sharing the budget may use.
    #[arg(long, default_value_t = 80)]
    zendesk_share_percent: u32,
    /// Salesforce calls a minute (smoothing only; the daily allocation is the real limit).
    #[arg(long, default_value_t = 1000)]
    salesforce_per_minute: u32,
    /// Stop when this many Salesforce daily calls or fewer remain.
    #[arg(long, default_value_t = 5000)]
    salesforce_daily_reserve: u64,
    /// Seconds one call may wait, beyond the client's own wait, for the shared rate budget
    /// before the run stops with the budget's reason (live workers share it). 0: stop at the
    /// first refusal.
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_MAX_BUDGET_WAIT.as_secs())]
    max_budget_wait: u64,
    /// No progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    quiet: bool,
    /// Print the API calls made, by system and endpoint, as JSON on stderr at the end.
    #[arg(long)]
    calls: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateKind {
    Dynamodb,
    Memory,
}

#[derive(Args)]
pub struct PlanArgs {
    /// Where to write the plan.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// The plan file `backfill plan` wrote.
    #[arg(long, value_name = "FILE")]
    plan: PathBuf,
    /// The plan's hash, as reviewed: apply refuses any other plan.
    #[arg(long, value_name = "HASH")]
    confirm_plan_hash: String,
    /// The journal (default: the plan's path with `.journal` appended).
    #[arg(long, value_name = "FILE")]
    journal: Option<PathBuf>,
    /// Zendesk bulk jobs in flight at once (Zendesk allows 30 queued or running).
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Testing only: stop as a crash would after N Zendesk batches (the journal stays).
    #[arg(long, hide = true, value_name = "N")]
    crash_after_batches: Option<usize>,
    #[command(flatten)]
    common: Common,
}

/// Why a backfill command could not run; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum BackfillCliError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a plan file: {reason}")]
    NotAPlan { path: PathBuf, reason: String },
    #[error(transparent)]
    Context(#[from] context::OpsError),
    #[error(transparent)]
    Backfill(#[from] BackfillError),
}

/// Runs a backfill command; exit 0 when it did its job, 2 with the reason otherwise.
pub fn run(command: BackfillCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orglink: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async {
        match command {
            BackfillCommand::Plan(args) => plan(args).await,
            BackfillCommand::Apply(args) => apply(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("orglink: {e}");
            ExitCode::from(2)
        }
    }
}

fn load_config(path: Option<&Path>) -> Result<Config, BackfillCliError> {
    Ok(context::load_config(path)?.0)
}

/// The clients, connected and checked against the binding.
struct Clients {
    salesforce: SalesforceClient,
    zendesk: ZendeskClient,
    calls: CallLog,
}

async fn connect(
    config: &Config,
    budget: Arc<dyn RateBudget>,
    max_budget_wait: Duration,
) -> Result<Clients, BackfillCliError> {
    // Beside live workers the shared budget often asks for a short wait: sit it out rather
    // than stop (docs/backfill.md, "Rate budget").
    let budget: Arc<dyn RateBudget> = Arc::new(PatientBudget::new(budget, max_budget_wait));
    let (creds, _) = context::load_credentials().await?;
    let calls = CallLog::new();
    let salesforce = SalesforceClient::connect(
        SalesforceConfig {
            link_fields: config.write_back().fields().to_vec(),
            ..SalesforceConfig::default()
        },
        creds.salesforce,
        config.binding(),
        budget.clone(),
        calls.clone(),
    )
    .await
    .map_err(BackfillError::from)?;
    let zendesk = ZendeskClient::connect(
        ZendeskConfig {
            base_url: std::env::var(context::ZENDESK_URL_ENV)
                .ok()
                .filter(|u| !u.is_empty()),
            ..ZendeskConfig::default()
        },
        creds.zendesk,
        config.binding(),
        budget,
        calls.clone(),
    )
    .await
    .map_err(BackfillError::from)?;
    Ok(Clients {
        salesforce,
        zendesk,
        calls,
    })
}

fn budgets(common: &Common) -> (BudgetConfig, BudgetConfig) {
    (
        BudgetConfig::salesforce(
            common.salesforce_per_minute,
            common.salesforce_daily_reserve,
        ),
        BudgetConfig::zendesk(common.zendesk_plan_limit, common.zendesk_share_percent),
    )
}

/// The state stores, in DynamoDB or in memory.
enum State {
    Dynamo {
        claims: DynamoClaims,
        links: DynamoLinks,
        exceptions: DynamoExceptions,
        mirror: DynamoMirror,
        budget: Arc<dyn RateBudget>,
    },
    Memory {
        claims: MemoryClaims,
        links: MemoryLinks,
        exceptions: MemoryExceptions,
        // Boxed: the in-memory mirror is several times the size of the DynamoDB variant.
        mirror: Box<MemoryMirror>,
        budget: Arc<dyn RateBudget>,
    },
}

async fn state(common: &Common) -> Result<State, BackfillCliError> {
    let (sf, zd) = budgets(common);
    Ok(match common.state {
        StateKind::Memory => State::Memory {
            claims: MemoryClaims::default(),
            links: MemoryLinks::default(),
            exceptions: MemoryExceptions::default(),
            mirror: Box::default(),
            budget: Arc::new(SharedRateBudget::new(
                Arc::new(MemoryBudget::default()),
                sf,
                zd,
            )),
        },
        StateKind::Dynamodb => {
            let deployment = context::State::from_env().await?;
            State::Dynamo {
                claims: deployment.claims(),
                links: deployment.links(),
                exceptions: deployment.exceptions(),
                mirror: deployment.mirror(),
                budget: Arc::new(deployment.rate_budget(sf, zd)),
            }
        }
    })
}

/// What to do once connected.
enum Job<'j> {
    Plan,
    Apply {
        file: &'j PlanFile,
        confirm: &'j str,
        journal: &'j Path,
    },
}

enum Outcome {
    Planned(Box<orglink_shared::backfill::Plan>),
    Applied(Box<ApplyReport>),
}

async fn execute(
    config: &Config,
    common: &Common,
    settings: Settings,
    job: Job<'_>,
) -> Result<Outcome, BackfillCliError> {
    match state(common).await? {
        State::Dynamo {
            claims,
            links,
            exceptions,
            mirror,
            budget,
        } => {
            let stores = (&claims, &links, &exceptions, &mirror);
            with(config, common, budget, stores, settings, job).await
        }
        State::Memory {
            claims,
            links,
            exceptions,
            mirror,
            budget,
        } => {
            let stores = (&claims, &links, &exceptions, &*mirror);
            with(config, common, budget, stores, settings, job).await
        }
    }
}

async fn plan(args: PlanArgs) -> Result<(), BackfillCliError> {
    let config = load_config(args.common.config.as_deref())?;
    let Outcome::Planned(plan) =
        execute(&config, &args.common, Settings::default(), Job::Plan).await?
    else {
        unreachable!("a plan job plans")
    };
    let file = plan.into_file();
    let text = serde_json::to_string_pretty(&file).expect("a plan serializes");
    std::fs::write(&args.out, text + "\n").map_err(|source| BackfillCliError::Write {
        path: args.out.clone(),
        source,
    })?;
    let t = &file.plan.totals;
    let count = |k: &str| t.actions.get(k).copied().unwrap_or(0);
    println!(
        "plan written to {}: {} accounts read, {} organizations read",
        args.out.display(),
        t.accounts,
        file.plan.organizations_read
    );
    println!(
        "  create {}, link {} ({} organizations change), exception {}, not eligible {}, refused {}; {} write-backs",
        count("create"),
        count("link"),
        t.org_updates,
        count("exception"),
        count("not_eligible"),
        count("refused"),
        t.write_backs
    );
    for (kind, n) in &t.exceptions {
        println!("  exception {kind}: {n}");
    }
    println!("plan hash: {}", file.hash);
    println!(
        "review it, then: orglink backfill apply --plan {} --confirm-plan-hash {}",
        args.out.display(),
        file.hash
    );
    Ok(())
}

async fn apply(args: ApplyArgs) -> Result<(), BackfillCliError> {
    let config = load_config(args.common.config.as_deref())?;
    let text = std::fs::read_to_string(&args.plan).map_err(|source| BackfillCliError::Read {
        path: args.plan.clone(),
        source,
    })?;
    let file: PlanFile = serde_json::from_str(&text).map_err(|e| BackfillCliError::NotAPlan {
        path: args.plan.clone(),
        reason: e.to_string(),
    })?;
    let journal = args
        .journal
        .clone()
        .unwrap_or_else(|| Journal::path_for(&args.plan));
    let settings = Settings {
        jobs: args.jobs.clamp(1, 30),
        fail_point: args.crash_after_batches.map(FailPoint::AfterSubmit),
        ..Settings::default()
    };
    let job = Job::Apply {
        file: &file,
        confirm: &args.confirm_plan_hash,
        journal: &journal,
    };
    let Outcome::Applied(report) = execute(&config, &args.common, settings, job).await? else {
        unreachable!("an apply job applies")
    };
    print_report(&report);
    Ok(())
}

async fn with<C, L, E, M>(
    config: &Config,
    common: &Common,
    budget: Arc<dyn RateBudget>,
    (claims, links, exceptions, mirror): (&C, &L, &E, &M),
    settings: Settings,
    job: Job<'_>,
) -> Result<Outcome, BackfillCliError>
where
    C: ClaimStore,
    L: LinkStore,
    E: ExceptionStore,
    M: OrgMirror,
{
    // Connecting checks both systems against the binding before anything is read.
    let clients = connect(config, budget, Duration::from_secs(common.max_budget_wait)).await?;
    let policy = DomainPolicy::default();
    let progress = if common.quiet {
        Progress::hidden()
    } else {
        Progress::stderr()
    };
    let bf = Backfill {
        salesforce: &clients.salesforce,
        zendesk: &clients.zendesk,
        claims,
        links,
        exceptions,
        mirror,
        config,
        policy: &policy,
        progress: &progress,
        settings,
    };
    let result = match job {
        Job::Plan => bf.plan().await.map(|p| Outcome::Planned(Box::new(p))),
        Job::Apply {
            file,
            confirm,
            journal,
        } => bf
            .apply(file, confirm, journal)
            .await
            .map(|r| Outcome::Applied(Box::new(r))),
    };
    if common.calls {
        let by: serde_json::Map<String, serde_json::Value> = clients
            .calls
            .snapshot()
            .into_iter()
            .map(|(k, n)| {
                (
                    format!("{}/{}/{}", k.system.as_str(), k.endpoint, k.outcome),
                    n.into(),
                )
            })
            .collect();
        eprintln!(
            "{}",
            serde_json::json!({
                "calls": by,
                "salesforce": clients.calls.sent(System::Salesforce),
                "zendesk": clients.calls.sent(System::Zendesk),
            })
        );
    }
    Ok(result?)
}

fn print_report(r: &ApplyReport) {
    println!("applied plan {}", r.plan_hash);
    println!(
        "  created {}, linked {} ({} organizations updated), exceptions {}, write-backs {}",
        r.created, r.linked, r.updated, r.exceptions, r.write_backs
    );
    println!(
        "  finished from an interrupted run {}, already applied {}, nothing to do {}",
        r.resumed, r.already_applied, r.nothing_to_do
    );
    println!("  skipped {}, failed {}", r.skipped.len(), r.failed.len());
    for s in &r.skipped {
        println!("  skipped {}: {}", s.account, s.reason);
    }
    for f in &r.failed {
        println!("  failed {}: {}", f.account, f.reason);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: BackfillCommand,
    }

    fn common(args: &[&str]) -> Common {
        let mut argv = vec!["backfill", "plan", "--out", "plan.json"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("arguments parse").command {
            BackfillCommand::Plan(p) => p.common,
            BackfillCommand::Apply(_) => unreachable!("a plan command"),
        }
    }

    #[test]
    fn the_budget_wait_bound_defaults_to_the_library_bound_and_can_be_set() {
        assert_eq!(
            Duration::from_secs(common(&[]).max_budget_wait),
            DEFAULT_MAX_BUDGET_WAIT
        );
        assert_eq!(common(&["--max-budget-wait", "300"]).max_budget_wait, 300);
        assert_eq!(common(&["--max-budget-wait", "0"]).max_budget_wait, 0);
        assert!(
            Cli::try_parse_from(["backfill", "plan", "--out", "p", "--max-budget-wait", "1m"])
                .is_err(),
            "seconds only"
        );
    }
}
