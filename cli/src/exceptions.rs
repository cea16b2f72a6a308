//! `orglink exceptions list|show|resolve|dismiss`: the review queue in DynamoDB.
//!
//! A thin front over reconcile's review library (`orglink_reconcile::review`), so the rules
//! live in one place: resolving takes one of the row's machine-readable actions, a note and
//! who; link, create and retry flow back as operator sync requests for the worker, a shared
//! domain or an ignored account onto the operator lists beside the rows. Only open rows can be
//! resolved or dismissed; a resolved or dismissed row reopens when its evidence changes.

use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use orglink_reconcile::review::{Decision, FollowUp, Review};
use orglink_shared::aws::exceptions::ExceptionFilter;
use orglink_shared::aws::{ExceptionRow, ExceptionStatus};
use orglink_shared::exceptions::{Action, ExceptionKind, Severity};

use crate::context::{self, OpsError, State, format_ms, now_ms};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  orglink exceptions list                                  open rows, most recently seen first
  orglink exceptions list --severity critical --kind key_conflict --json
  orglink exceptions show domain_collision:3f2a...         evidence and numbered actions
  orglink exceptions resolve domain_collision:3f2a... --action 1 --note \"checked with the AM\"
  orglink exceptions dismiss name_drift:9c1b... --note \"rename is intended\"")]
pub struct ExceptionsArgs {
    #[command(subcommand)]
    pub command: ExceptionsCommand,
}

#[derive(Subcommand, Debug)]
pub enum ExceptionsCommand {
    /// Lists rows by status (default open), kind and severity.
    List {
        #[arg(long, value_enum, default_value_t = StatusArg::Open)]
        status: StatusArg,
        /// e.g. domain_collision, key_conflict (see docs/cli.md for every kind).
        #[arg(long, value_parser = parse_kind)]
        kind: Option<ExceptionKind>,
        #[arg(long, value_enum)]
        severity: Option<SeverityArg>,
        #[arg(long)]
        limit: Option<usize>,
        /// One JSON object per row per line.
        #[arg(long)]
        json: bool,
    },
    /// Shows one row: what is wrong, the evidence, and the actions to choose from.
    Show {
        fingerprint: String,
        #[arg(long)]
        json: bool,
    },
    /// Resolves an open row by taking one of its actions.
    Resolve {
        fingerprint: String,
        /// The action's number in `show`, or its name (link_to_org, create_new_org, retry,
        /// treat_domain_as_shared, ignore_account, fix_by_hand).
        #[arg(long)]
        action: String,
        /// Which organization, when the action is link_to_org and several are offered.
        #[arg(long)]
        org: Option<u64>,
        /// What you decided and why (kept on the row).
        #[arg(long)]
        note: String,
        /// Who you are (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Dismisses an open row: it is not a problem.
    Dismiss {
        fingerprint: String,
        #[arg(long)]
        note: String,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    Open,
    Resolved,
    Dismissed,
    AutoResolved,
}

impl From<StatusArg> for ExceptionStatus {
    fn from(s: StatusArg) -> Self {
        match s {
            StatusArg::Open => ExceptionStatus::Open,
            StatusArg::Resolved => ExceptionStatus::Resolved,
            StatusArg::Dismissed => ExceptionStatus::Dismissed,
            StatusArg::AutoResolved => ExceptionStatus::AutoResolved,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Critical,
    Warning,
    Info,
}

impl From<SeverityArg> for Severity {
    fn from(s: SeverityArg) -> Self {
        match s {
            SeverityArg::Critical => Severity::Critical,
            SeverityArg::Warning => Severity::Warning,
            SeverityArg::Info => Severity::Info,
        }
    }
}

fn parse_kind(raw: &str) -> Result<ExceptionKind, String> {
    ExceptionKind::ALL
        .into_iter()
        .find(|k| k.as_str() == raw.trim())
        .ok_or_else(|| {
            let all: Vec<&str> = ExceptionKind::ALL.iter().map(|k| k.as_str()).collect();
            format!("unknown kind; one of: {}", all.join(", "))
        })
}

/// Who decides: `--by`, else `$USER`; empty when neither is set, which the review library
/// refuses (every status change records who made it).
fn who(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .unwrap_or_default()
}

fn action_name(a: &Action) -> String {
    serde_json::to_value(a).expect("an action serializes")["action"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

/// An action in words.
pub fn describe(a: &Action) -> String {
    match a {
        Action::LinkToOrg { account, org } => {
            format!("link account {account} to organization {org}")
        }
        Action::CreateNewOrg { account } => format!("create a new organization for {account}"),
        Action::TreatDomainAsShared { domain } => {
            format!("treat {domain} as a shared domain (it never links an account again)")
        }
        Action::IgnoreAccount { account } => format!("leave account {account} out of orglink"),
        Action::Retry { account } => {
            format!("sync account {account} again (after fixing the cause)")
        }
        Action::FixByHand => "fix it by hand in Zendesk or Salesforce, then resolve".into(),
    }
}

/// The action an operator picked: by number (1-based, as `show` lists them) or by name.
/// `fix_by_hand` is always available.
pub fn choose_action(
    row: &ExceptionRow,
    choice: &str,
    org: Option<u64>,
) -> Result<Action, OpsError> {
    let actions = &row.finding.actions;
    let offered = || {
        let mut names: Vec<String> = actions
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{} {}", i + 1, action_name(a)))
            .collect();
        names.push("fix_by_hand".into());
        names.join(", ")
    };
    if let Ok(n) = choice.trim().parse::<usize>() {
        return actions.get(n.wrapping_sub(1)).cloned().ok_or_else(|| {
            OpsError::Usage(format!("no action {n}; this row offers: {}", offered()))
        });
    }
    let name = choice.trim();
    if name == "fix_by_hand" {
        return Ok(Action::FixByHand);
    }
    let matching: Vec<&Action> = actions
        .iter()
        .filter(|a| action_name(a) == name)
        .filter(|a| match (a, org) {
            (Action::LinkToOrg { org: o, .. }, Some(want)) => o.get() == want,
            _ => true,
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(OpsError::Usage(format!(
            "this row does not offer {name}{}; it offers: {}",
            org.map(|o| format!(" for organization {o}"))
                .unwrap_or_default(),
            offered()
        ))),
        _ => Err(OpsError::Usage(format!(
            "several {name} actions are offered; pick one by number or with --org: {}",
            offered()
        ))),
    }
}

pub fn run(args: ExceptionsArgs) -> ExitCode {
    context::run(async move {
        let state = State::from_env().await?;
        let store = state.exceptions();
        let queue = state.queue();
        let lists = state.review_lists();
        // Every read and status change goes through reconcile's review library: it checks who
        // and why, that the row is open and that the action is one the row offers, and sends
        // the action's follow-up (an operator sync request, a list entry) before the status.
        let review = Review {
            exceptions: &store,
            queue: &queue,
            lists: &lists,
        };
        match args.command {
            ExceptionsCommand::List {
                status,
                kind,
                severity,
                limit,
                json,
            } => {
                let filter = ExceptionFilter {
                    status: status.into(),
                    kind,
                    severity: severity.map(Into::into),
                    limit,
                };
                let rows = review.list(&filter).await?;
                if json {
                    for row in &rows {
                        println!("{}", serde_json::to_string(row).expect("a row serializes"));
                    }
                    return Ok(ExitCode::SUCCESS);
                }
                if rows.is_empty() {
                    println!("no {} exceptions match", filter.status.as_str());
                }
                for row in &rows {
                    let f = &row.finding;
                    println!(
                        "{}  [{:?}] {}  accounts {}  orgs {}  seen {}x, last {}",
                        row.fingerprint,
                        f.severity,
                        f.kind.as_str(),
                        list(f.accounts.iter().map(|a| a.to_string())),
                        list(f.orgs.iter().map(|o| o.to_string())),
                        row.times_seen,
                        format_ms(row.last_seen_ms)
                    );
                }
            }
            ExceptionsCommand::Show {
                fingerprint: fp,
                json,
            } => {
                let row = review.show(&fp).await?;
                if json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&row).expect("a row serializes")
                    );
                } else {
                    print_row(&row);
                }
            }
            ExceptionsCommand::Resolve {
                fingerprint: fp,
                action,
                org,
                note,
                by,
            } => {
                let row = review.show(&fp).await?;
                let action = choose_action(&row, &action, org)?;
                let decision = Decision {
                    by: who(by),
                    reason: note,
                    action: Some(action.clone()),
                };
                let (row, follow_up) = review.resolve(&fp, &decision, now_ms()).await?;
                println!(
                    "resolved {} by {}: {}",
                    row.fingerprint,
                    decision.by,
                    describe(&action)
                );
                println!("{}", follow_up_text(&follow_up));
            }
            ExceptionsCommand::Dismiss {
                fingerprint: fp,
                note,
                by,
            } => {
                let by = who(by);
                let row = review.dismiss(&fp, &by, &note, now_ms()).await?;
                println!(
                    "dismissed {} by {by}; it reopens if its evidence changes",
                    row.fingerprint
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn list(items: impl Iterator<Item = String>) -> String {
    let v: Vec<String> = items.collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(",")
    }
}

/// What a resolution set in motion, in words.
fn follow_up_text(f: &FollowUp) -> String {
    match f {
        FollowUp::None => "nothing queued: the fix is made by hand".into(),
        FollowUp::SyncRequested {
            account,
            event_id,
            org,
        } => format!(
            "queued a sync request for account {account}{} (event {event_id})",
            org.map(|o| format!(" to link organization {o}"))
                .unwrap_or_default()
        ),
        FollowUp::SharedDomain { domain } => format!(
            "{domain} is now on the shared-domain list: it never links or collides again (reconcile and the worker read the list)"
        ),
        FollowUp::IgnoredAccount { account } => format!(
            "account {account} is now on the ignored list: orglink leaves it alone and keeps any existing link"
        ),
    }
}

fn print_row(row: &ExceptionRow) {
    let f = &row.finding;
    let name = |id: String| match row.names.get(&id) {
        Some(n) => format!("{id} ({n})"),
        None => id,
    };
    println!("{}", row.fingerprint);
    println!(
        "  {} [{:?}], {}",
        f.kind.as_str(),
        f.severity,
        row.status.as_str()
    );
    println!("  {}", f.kind.summary());
    for a in &f.accounts {
        println!("  account       {}", name(a.to_string()));
    }
    for o in &f.orgs {
        println!("  organization  {}", name(o.to_string()));
    }
    if let Some(d) = &f.domain {
        println!("  domain        {d}");
    }
    println!(
        "  seen {} time(s), first {}, last {}",
        row.times_seen,
        format_ms(row.first_seen_ms),
        format_ms(row.last_seen_ms)
    );
    if let Some(c) = &row.status_change {
        println!(
            "  last change   by {} at {}: {}",
            c.by,
            format_ms(c.at_ms),
            c.reason
        );
    }
    println!("  evidence:");
    for (k, v) in f.evidence.iter() {
        println!("    {k}: {}", v.join(", "));
    }
    println!("  recommended: {}", f.kind.recommended_action());
    println!(
        "  actions (orglink exceptions resolve {} --action N --note ...):",
        row.fingerprint
    );
    for (i, a) in f.actions.iter().enumerate() {
        println!("    {}. {} — {}", i + 1, action_name(a), describe(a));
    }
    println!("    fix_by_hand — {}", describe(&Action::FixByHand));
}

#[cfg(test)]
mod tests {
    use super::*;
    use orglink_shared::exceptions::Finding;
    use orglink_shared::ids::{AccountId, OrgId};
    use std::collections::BTreeMap;

    #[test]
    fn actions_are_chosen_by_number_or_name() {
        let account = AccountId::parse("001D000000IRFmaIAH").unwrap();
        let org = |n| OrgId::new(n).unwrap();
        let finding = Finding::new(
            ExceptionKind::AmbiguousDomain,
            [account.clone()],
            [org(1), org(2)],
        )
        .with_actions(vec![
            Action::LinkToOrg {
                account: account.clone(),
                org: org(1),
            },
            Action::LinkToOrg {
                account: account.clone(),
                org: org(2),
            },
            Action::CreateNewOrg {
                account: account.clone(),
            },
        ]);
        let row =
            orglink_shared::aws::exceptions::merge_sighting(None, &finding, &BTreeMap::new(), 1);
        assert_eq!(
            choose_action(&row, "3", None).unwrap(),
            Action::CreateNewOrg {
                account: account.clone()
            }
        );
        assert_eq!(
            choose_action(&row, "link_to_org", Some(2)).unwrap(),
            Action::LinkToOrg {
                account: account.clone(),
                org: org(2)
            }
        );
        let e = choose_action(&row, "link_to_org", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("several"), "{e}");
        assert!(choose_action(&row, "9", None).is_err());
        assert!(choose_action(&row, "retry", None).is_err());
        assert_eq!(
            choose_action(&row, "fix_by_hand", None).unwrap(),
            Action::FixByHand
        );
    }
}
