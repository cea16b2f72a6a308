//! `orglink trace ACCOUNT_ID`: the evidence chain behind one account's link — the last
//! decision with its rule and evidence (from the link record), what orglink last wrote to each
//! side, the claims on the organizations involved, the transient-failure streak, and the
//! exceptions that name the account. `--live` also re-runs resolution against the APIs now and
//! shows what it would decide (read-only: nothing is written or claimed).

use std::collections::BTreeSet;
use std::process::ExitCode;

use clap::Args;
use serde_json::{Value, json};

use orglink_shared::aws::exceptions::ExceptionFilter;
use orglink_shared::aws::mirror::OrgMirror;
use orglink_shared::aws::{ClaimStore, ExceptionStatus, ExceptionStore, LinkStore};
use orglink_shared::contract::{Config, LinkField};
use orglink_shared::domain::{Domain, DomainPolicy};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::resolution::{ResolutionInput, StoredLink};
use orglink_shared::zendesk::candidates;

use crate::context::{self, Clients, Common, OpsError, State, format_ms};
use crate::sync::parse_account;

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  orglink trace 001D000000IRFmaIAH           what orglink decided last time, and why
  orglink trace 001D000000IRFma --live       ...and what it would decide now
  orglink trace 001D000000IRFmaIAH --json")]
pub struct TraceArgs {
    #[command(flatten)]
    pub common: Common,
    /// The Salesforce Account id (15 or 18 characters).
    pub account: String,
    /// Also resolve now against Salesforce and Zendesk (read-only).
    #[arg(long)]
    pub live: bool,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: TraceArgs) -> ExitCode {
    context::run(async move {
        let account = parse_account(&args.account)?;
        let state = State::from_env().await?;
        let mut out = stored_trace(&state, &account).await?;
        if args.live {
            let (config, clients) = context::connect(&args.common).await?;
            out["live"] = live(&config, &clients, &state, &account).await?;
        }
        if args.json {
            println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        } else {
            print_trace(&out);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Everything the stores know about the account.
async fn stored_trace(state: &State, account: &AccountId) -> Result<Value, OpsError> {
    let record = state.links().get(account).await?;
    let mut orgs: BTreeSet<OrgId> = BTreeSet::new();
    if let Some(r) = &record {
        orgs.extend(r.org);
        if let Some(d) = &r.last_decision {
            orgs.extend(decision_orgs(
                &serde_json::to_value(&d.decision).expect("JSON"),
            ));
        }
    }
    let claims = state.claims();
    let mut claim_rows = Vec::new();
    for org in &orgs {
        if let Some(c) = claims.holder(*org).await? {
            claim_rows.push(json!({
                "org": c.org.to_string(),
                "account": c.account.to_string(),
                "this_account": &c.account == account,
                "claimed_at": format_ms(c.claimed_at_ms),
            }));
        } else {
            claim_rows.push(json!({"org": org.to_string(), "account": null}));
        }
    }
    let store = state.exceptions();
    let mut exceptions = Vec::new();
    for status in [
        ExceptionStatus::Open,
        ExceptionStatus::Resolved,
        ExceptionStatus::Dismissed,
    ] {
        for row in store.list(&ExceptionFilter::status(status)).await? {
            if row.finding.accounts.contains(account) {
                exceptions.push(json!({
                    "fingerprint": row.fingerprint,
                    "status": row.status.as_str(),
                    "kind": row.finding.kind.as_str(),
                    "severity": row.finding.severity,
                    "summary": row.finding.kind.summary(),
                    "orgs": row.finding.orgs,
                    "last_seen": format_ms(row.last_seen_ms),
                    "status_change": row.status_change,
                }));
            }
        }
    }
    let link = record.as_ref().map(|r| {
        json!({
            "org": r.org.map(|o| o.to_string()),
            "last_decision": r.last_decision.as_ref().map(|d| json!({
                "decision": d.decision,
                "rule": d.rule,
                "rule_means": d.rule.describe(),
                "evidence": d.evidence,
                "at": format_ms(d.at_ms),
            })),
            "written_salesforce": r.written_salesforce,
            "written_zendesk": r.written_zendesk,
            "synced_modstamp": r.synced_modstamp_ms.map(format_ms),
            "failures": r.failures,
            "updated_at": format_ms(r.updated_at_ms),
        })
    });
    Ok(json!({
        "account": account.to_string(),
        "link_record": link,
        "claims": claim_rows,
        "exceptions": exceptions,
    }))
}

fn decision_orgs(decision: &Value) -> Vec<OrgId> {
    let mut ids = Vec::new();
    if let Some(o) = decision.get("org").and_then(Value::as_u64) {
        ids.push(o);
    }
    if let Some(list) = decision.get("orgs").and_then(Value::as_array) {
        ids.extend(list.iter().filter_map(Value::as_u64));
    }
    ids.into_iter().filter_map(|n| OrgId::new(n).ok()).collect()
}

/// Resolution now, gathered exactly as the sync worker gathers it (`orglink_shared::zendesk::
/// candidates`): the account and the accounts merged into it read fresh, the reviewed domain
/// rule over what orglink last wrote, the key holders and the stored organization and the
/// mirror's domain candidates confirmed live, the name by search only when it would create;
/// then the one decision function. Read-only: the mirror keeps what Zendesk no longer has.
async fn live(
    config: &Config,
    clients: &Clients,
    state: &State,
    account_id: &AccountId,
) -> Result<Value, OpsError> {
    let Some((account, merged)) = clients.salesforce.account_with_merged(account_id).await? else {
        return Ok(json!({"error": "Salesforce does not know this account (purged?)"}));
    };
    let last_written = state
        .links()
        .get(account_id)
        .await?
        .and_then(|r| {
            r.written_salesforce
                .get(LinkField::ZendeskDomain.api_name())
                .cloned()
        })
        .and_then(|d| Domain::parse(&d).ok());
    let (domain_decision, domain) =
        candidates::lookup_domain(&DomainPolicy::default(), &account, last_written.as_ref());
    let domain_orgs: Vec<OrgId> = match &domain {
        Some(d) => state
            .mirror()
            .by_domain(d.as_str())
            .await?
            .iter()
            .map(|m| m.id)
            .collect(),
        None => Vec::new(),
    };
    let found = candidates::gather(
        &clients.zendesk,
        &candidates::CandidateKeys {
            account: &account.id,
            merged: &merged,
            stored_org_id: account.stored_org_id.as_deref(),
            domain_orgs: &domain_orgs,
        },
    )
    .await?;
    let mapping = config.mapping();
    let mut input = ResolutionInput {
        account: account.id.clone(),
        merged_accounts: merged,
        name: mapping.org_name(&account),
        suffixed_name: mapping.suffixed_org_name(&account),
        domain: domain.clone(),
        stored: found.stored,
        candidates: found.organizations,
    };
    let resolution = candidates::resolve_with_name_search(&clients.zendesk, &mut input).await?;
    let eligibility = config.eligibility().evaluate(&account);
    let stored = match &input.stored {
        StoredLink::None => json!({"state": "none"}),
        StoredLink::Found(o) => json!({"state": "found", "org": o.id.to_string()}),
        StoredLink::Gone(id) => json!({"state": "gone", "org": id.to_string()}),
        StoredLink::Unreadable(t) => json!({"state": "unreadable", "text": t}),
    };
    Ok(json!({
        "account_name": account.name,
        "eligible": eligibility.is_eligible(),
        "eligibility": eligibility,
        "merged_accounts": input.merged_accounts.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "stored_link": stored,
        "domain_decision": domain_decision,
        "reviewed_domain": domain,
        "mirror_domain_orgs": domain_orgs.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        "gone_from_mirror": found.gone_from_mirror.iter().map(|o| o.to_string()).collect::<Vec<_>>(),
        "candidates": input.candidates.iter().map(|o| json!({
            "id": o.id.to_string(), "name": o.name, "external_id": o.external_id,
            "domain_names": o.domain_names,
        })).collect::<Vec<_>>(),
        "decision": resolution.decision,
        "rule": resolution.rule,
        "rule_means": resolution.rule.describe(),
        "evidence": resolution.evidence,
    }))
}

fn print_trace(t: &Value) {
    println!("account {}", t["account"].as_str().unwrap_or("?"));
    match t["link_record"].as_object() {
        None => println!("  no link record: orglink has never synced this account"),
        Some(r) => {
            println!(
                "  linked organization: {}",
                r["org"].as_str().unwrap_or("none")
            );
            if let Some(d) = r["last_decision"].as_object() {
                println!(
                    "  last decision ({}): {}",
                    d["at"].as_str().unwrap_or("?"),
                    d["decision"]
                );
                println!(
                    "  rule: {} — {}",
                    d["rule"].as_str().unwrap_or("?"),
                    d["rule_means"].as_str().unwrap_or("")
                );
                print_evidence("  ", &d["evidence"]);
            }
            println!(
                "  last synced modstamp: {}",
                r["synced_modstamp"].as_str().unwrap_or("never")
            );
            println!("  wrote to Salesforce: {}", r["written_salesforce"]);
            println!("  wrote to Zendesk: {}", r["written_zendesk"]);
            let f = &r["failures"];
            if f["count"].as_u64().unwrap_or(0) > 0 {
                println!(
                    "  failing: {} time(s) in a row, last error: {}",
                    f["count"],
                    f["last_error"].as_str().unwrap_or("?")
                );
            }
        }
    }
    for c in t["claims"].as_array().into_iter().flatten() {
        match c["account"].as_str() {
            Some(a) => println!(
                "  claim: organization {} held by {a}{} since {}",
                c["org"].as_str().unwrap_or("?"),
                if c["this_account"] == true {
                    " (this account)"
                } else {
                    " (ANOTHER account)"
                },
                c["claimed_at"].as_str().unwrap_or("?")
            ),
            None => println!(
                "  claim: organization {} is not claimed",
                c["org"].as_str().unwrap_or("?")
            ),
        }
    }
    let exceptions = t["exceptions"].as_array().cloned().unwrap_or_default();
    if exceptions.is_empty() {
        println!("  exceptions: none");
    }
    for e in exceptions {
        println!(
            "  exception {} [{}] {}: {}",
            e["fingerprint"].as_str().unwrap_or("?"),
            e["status"].as_str().unwrap_or("?"),
            e["kind"].as_str().unwrap_or("?"),
            e["summary"].as_str().unwrap_or("")
        );
    }
    if let Some(l) = t.get("live") {
        println!("now (live, nothing written):");
        if let Some(e) = l["error"].as_str() {
            println!("  {e}");
            return;
        }
        println!(
            "  {} — eligible: {}; reviewed domain: {}",
            l["account_name"].as_str().unwrap_or("?"),
            l["eligible"],
            l["reviewed_domain"].as_str().unwrap_or("none")
        );
        for c in l["candidates"].as_array().into_iter().flatten() {
            println!(
                "  candidate {} {:?} key {} domains {}",
                c["id"].as_str().unwrap_or("?"),
                c["name"].as_str().unwrap_or(""),
                c["external_id"].as_str().unwrap_or("none"),
                c["domain_names"]
            );
        }
        println!("  would decide: {}", l["decision"]);
        println!(
            "  rule: {} — {}",
            l["rule"].as_str().unwrap_or("?"),
            l["rule_means"].as_str().unwrap_or("")
        );
        print_evidence("  ", &l["evidence"]);
    }
}

fn print_evidence(indent: &str, evidence: &Value) {
    if let Some(map) = evidence.as_object() {
        for (k, v) in map {
            let values: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    x.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| x.to_string())
                })
                .collect();
            println!("{indent}  {k}: {}", values.join(", "));
        }
    }
}
