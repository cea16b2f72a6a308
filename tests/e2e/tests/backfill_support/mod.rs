//! What the backfill suites share: clients on the deployment's shared budget, the stack's
//! stores, and the end state checked against the generated world's truth.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use orglink_sandbox::generate::{Expected, Truth};
use orglink_shared::aws::budget::DynamoBudget;
use orglink_shared::aws::claims::DynamoClaims;
use orglink_shared::aws::exceptions::DynamoExceptions;
use orglink_shared::aws::links::DynamoLinks;
use orglink_shared::aws::mirror::DynamoMirror;
use orglink_shared::aws::{ExceptionRow, ResourceNames, SharedRateBudget};
use orglink_shared::backfill::snapshot::Snapshot;
use orglink_shared::backfill::{Backfill, Progress, Settings};
use orglink_shared::contract::Config;
use orglink_shared::credentials::{
    SalesforceCredentials, SalesforceFlow, Secret, ZendeskCredentials,
};
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::{BudgetConfig, CallLog};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig};

/// Both clients against the sandbox, drawing from the deployment's shared budget table.
pub async fn clients(
    db: &aws_sdk_dynamodb::Client,
    names: &ResourceNames,
    sandbox: &orglink_harness::Sandbox,
    config: &Config,
) -> (SalesforceClient, ZendeskClient, CallLog) {
    let calls = CallLog::new();
    // As the CLI does: short budget waits are sat out (docs/backfill.md).
    let budget = Arc::new(orglink_shared::backfill::PatientBudget::new(
        Arc::new(SharedRateBudget::new(
            Arc::new(DynamoBudget::new(db.clone(), &names.rate_budget_table)),
            BudgetConfig::salesforce(6000, 0),
            BudgetConfig::zendesk(6000, 100),
        )),
        orglink_shared::backfill::DEFAULT_MAX_BUDGET_WAIT,
    ));
    let sf = SalesforceClient::connect(
        SalesforceConfig::default(),
        SalesforceCredentials {
            my_domain_url: sandbox.salesforce.clone(),
            client_id: "orglink-sandbox-consumer-key".into(),
            flow: SalesforceFlow::ClientCredentials {
                client_secret: Secret::new("orglink-sandbox-consumer-secret"),
            },
        },
        config.binding(),
        budget.clone(),
        calls.clone(),
    )
    .await
    .expect("Salesforce connects");
    let zd = ZendeskClient::connect(
        ZendeskConfig {
            base_url: Some(sandbox.zendesk.clone()),
            job_poll_ms: 100,
            ..ZendeskConfig::default()
        },
        ZendeskCredentials::ApiToken {
            email: "admin@example.com".into(),
            api_token: Secret::new("sandbox-zendesk-token"),
        },
        config.binding(),
        budget,
        calls.clone(),
    )
    .await
    .expect("Zendesk connects");
    (sf, zd, calls)
}

/// DynamoDB requests by operation (`PutItem`, `Query`, ...), counted as they are sent — how
/// the per-account cost of a backfill on moto is measured (docs/backfill.md, "Cost").
#[derive(Debug, Clone, Default)]
pub struct DbRequests(Arc<Mutex<BTreeMap<String, u64>>>);

impl DbRequests {
    /// A client on `sdk` whose every request (retries included) is counted here.
    pub fn client(&self, aws: &orglink_harness::AwsEnv) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(aws.sdk_config())
            .interceptor(self.clone())
            .build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    /// The counts since the last take, and starts over.
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.0.lock().expect("request counts"))
    }

    /// `PutItem 120, Query 4 (total 124)`.
    pub fn show(counts: &BTreeMap<String, u64>) -> String {
        let mut parts: Vec<String> = counts.iter().map(|(op, n)| format!("{op} {n}")).collect();
        parts.push(format!("(total {})", counts.values().sum::<u64>()));
        parts.join(", ")
    }
}

impl aws_sdk_dynamodb::config::Intercept for DbRequests {
    fn name(&self) -> &'static str {
        "DbRequests"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        // `X-Amz-Target: DynamoDB_20120810.PutItem`.
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_string();
        *self
            .0
            .lock()
            .expect("request counts")
            .entry(op)
            .or_default() += 1;
        Ok(())
    }
}

pub fn stores(db: &aws_sdk_dynamodb::Client, names: &ResourceNames) -> Stores {
    Stores {
        claims: DynamoClaims::new(db.clone(), &names.claims_table),
        links: DynamoLinks::new(db.clone(), &names.links_table),
        exceptions: DynamoExceptions::new(db.clone(), &names.exceptions_table),
        mirror: DynamoMirror::new(db.clone(), &names.org_mirror_table),
    }
}

pub struct Stores {
    pub claims: DynamoClaims,
    pub links: DynamoLinks,
    pub exceptions: DynamoExceptions,
    pub mirror: DynamoMirror,
}

pub fn backfill<'a>(
    config: &'a Config,
    sf: &'a SalesforceClient,
    zd: &'a ZendeskClient,
    s: &'a Stores,
    policy: &'a DomainPolicy,
    progress: &'a Progress,
    settings: Settings,
) -> Backfill<'a, DynamoClaims, DynamoLinks, DynamoExceptions, DynamoMirror> {
    Backfill {
        salesforce: sf,
        zendesk: zd,
        claims: &s.claims,
        links: &s.links,
        exceptions: &s.exceptions,
        mirror: &s.mirror,
        config,
        policy,
        progress,
        settings,
    }
}

pub fn key_of(external_id: &Option<String>) -> Option<String> {
    external_id
        .as_deref()
        .map(|k| k.trim().to_ascii_lowercase())
        .filter(|k| !k.is_empty())
}

/// Every way the end state differs from the truth (empty: it matches).
pub fn violations(
    truth: &Truth,
    before: &Snapshot,
    after: &Snapshot,
    rows: &[ExceptionRow],
) -> Vec<String> {
    let mut out = Vec::new();
    let accounts: HashMap<String, &orglink_shared::model::Account> = after
        .accounts
        .iter()
        .map(|a| (a.id.as_str().to_ascii_lowercase(), a))
        .collect();
    let accounts_before: HashMap<String, &orglink_shared::model::Account> = before
        .accounts
        .iter()
        .map(|a| (a.id.as_str().to_ascii_lowercase(), a))
        .collect();
    // Orgs by key (18-character ids lowercased; 15-character keys count for their account).
    let mut keyed: HashMap<String, Vec<u64>> = HashMap::new();
    for o in &after.orgs {
        if let Some(a) = o.key().account() {
            keyed
                .entry(a.as_str().to_ascii_lowercase())
                .or_default()
                .push(o.id.get());
        }
    }
    let keyed_before: HashSet<(u64, Option<String>)> = before
        .orgs
        .iter()
        .map(|o| (o.id.get(), key_of(&o.external_id)))
        .collect();
    let orgs_before: HashSet<u64> = before.orgs.iter().map(|o| o.id.get()).collect();
    let rows_naming = |id: &str| -> Vec<&ExceptionRow> {
        rows.iter()
            .filter(|r| {
                r.finding
                    .accounts
                    .iter()
                    .any(|a| a.as_str().eq_ignore_ascii_case(id))
            })
            .collect()
    };
    let switch_rows: HashSet<String> = truth
        .switch_dependent
        .iter()
        .map(|s| s.account.to_ascii_lowercase())
        .collect();

    for t in &truth.accounts {
        let id = t.account_id.to_ascii_lowercase();
        let Some(a) = accounts.get(&id) else {
            out.push(format!("{}: missing from Salesforce", t.account_id));
            continue;
        };
        let before_a = accounts_before[&id];
        let stored = a.stored_org().map(|o| o.get());
        let mine = keyed.get(&id).cloned().unwrap_or_default();
        let what = format!("{} ({} {:?})", t.account_id, t.pattern, t.expected);
        match &t.expected {
            Expected::Link(org) => {
                // switch_dependent: Salesforce refuses the winner's write-back (the deleted
                // loser still holds the id); Zendesk is linked either way.
                if stored != Some(*org) && !switch_rows.contains(&id) {
                    out.push(format!("{what}: stored org {stored:?}"));
                }
                if !mine.contains(org) {
                    out.push(format!(
                        "{what}: org {org} is not keyed to it (keyed: {mine:?})"
                    ));
                }
            }
            Expected::LinkNew => {
                let new: Vec<u64> = mine
                    .iter()
                    .copied()
                    .filter(|o| !orgs_before.contains(o))
                    .collect();
                if new.len() != 1 || mine.len() != 1 {
                    out.push(format!("{what}: orgs keyed to it {mine:?} (new {new:?})"));
                } else if stored != Some(new[0]) {
                    out.push(format!(
                        "{what}: stored org {stored:?}, its new org is {}",
                        new[0]
                    ));
                }
            }
            Expected::Exception(kind) => {
                let of_kind: Vec<_> = rows_naming(&id)
                    .into_iter()
                    .filter(|r| r.kind().as_str() == kind)
                    .collect();
                if of_kind.len() != 1 {
                    out.push(format!("{what}: {} open {kind} rows", of_kind.len()));
                }
                if a.stored_org_id != before_a.stored_org_id {
                    out.push(format!("{what}: its link changed to {:?}", a.stored_org_id));
                }
                let untouched = |o: &u64| {
                    after.orgs.iter().any(|x| {
                        x.id.get() == *o && keyed_before.contains(&(*o, key_of(&x.external_id)))
                    })
                };
                if !mine.iter().all(untouched) {
                    out.push(format!("{what}: an org was keyed to it: {mine:?}"));
                }
            }
            Expected::Nothing => {
                let new: Vec<&u64> = mine.iter().filter(|o| !orgs_before.contains(o)).collect();
                if !new.is_empty() {
                    out.push(format!("{what}: new orgs {new:?}"));
                }
                if a.stored_org_id != before_a.stored_org_id {
                    out.push(format!("{what}: its link changed to {:?}", a.stored_org_id));
                }
            }
        }
        if !t.eligible
            && (a.stored_org_id != before_a.stored_org_id || a.sync_status != before_a.sync_status)
        {
            out.push(format!(
                "{what}: not eligible, but its link fields were written"
            ));
        }
        // The reconcile function does not read tickets yet: ticket attribution is not checked.
        for f in t
            .findings
            .iter()
            .filter(|f| *f != "ticket_attribution_drift")
        {
            if !rows_naming(&id).iter().any(|r| r.kind().as_str() == f) {
                out.push(format!("{what}: no open {f} row"));
            }
        }
        if switch_rows.contains(&id)
            && !rows_naming(&id)
                .iter()
                .any(|r| r.kind().as_str() == "write_back_blocked")
        {
            out.push(format!(
                "{what}: no write_back_blocked row (switch_dependent)"
            ));
        }
    }
    // Zero duplicate orgs: no key on two orgs unless the scenario already had it so.
    let mut by_key: HashMap<String, Vec<u64>> = HashMap::new();
    for o in &after.orgs {
        if let Some(k) = key_of(&o.external_id) {
            by_key.entry(k).or_default().push(o.id.get());
        }
    }
    for (k, orgs) in &by_key {
        let new = orgs.iter().filter(|o| !orgs_before.contains(o)).count();
        if orgs.len() > 1 && new > 0 {
            out.push(format!("duplicate orgs for key {k}: {orgs:?}"));
        }
    }
    // Zero wrong links: every org newly keyed to an account is that account's by the truth.
    let linkable: HashSet<String> = truth
        .accounts
        .iter()
        .filter(|t| matches!(t.expected, Expected::Link(_) | Expected::LinkNew))
        .map(|t| t.account_id.to_ascii_lowercase())
        .collect();
    for o in &after.orgs {
        let key = key_of(&o.external_id);
        if keyed_before.contains(&(o.id.get(), key.clone())) {
            continue;
        }
        match o.key().account() {
            Some(a) if linkable.contains(&a.as_str().to_ascii_lowercase()) => {}
            _ => out.push(format!(
                "org {} was keyed to {:?}, which the truth does not link",
                o.id, o.external_id
            )),
        }
    }
    out
}

pub fn assert_matches_truth(
    truth: &Truth,
    before: &Snapshot,
    after: &Snapshot,
    rows: &[ExceptionRow],
) {
    let v = violations(truth, before, after, rows);
    assert!(
        v.is_empty(),
        "{} differences from the truth, first ones:\n{}",
        v.len(),
        v.iter().take(25).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The world's size: `ORGLINK_E2E_BACKFILL_ACCOUNTS` when set (moto answers a few hundred
/// requests a second at best, and a backfill writes a claim, a link record and a mirror row per
/// linked account), else `default`.
pub fn world_size(default: usize) -> usize {
    std::env::var("ORGLINK_E2E_BACKFILL_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Organizations made since `before` whose key another organization also carries.
pub fn duplicate_new_orgs(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let old: HashSet<u64> = before.orgs.iter().map(|o| o.id.get()).collect();
    let mut by_key: HashMap<String, Vec<u64>> = HashMap::new();
    for o in &after.orgs {
        if let Some(a) = o.key().account() {
            by_key
                .entry(a.as_str().to_ascii_lowercase())
                .or_default()
                .push(o.id.get());
        }
    }
    let mut out: Vec<String> = by_key
        .into_iter()
        .filter(|(_, orgs)| orgs.len() > 1 && orgs.iter().any(|o| !old.contains(o)))
        .map(|(key, orgs)| format!("{key}: orgs {orgs:?}"))
        .collect();
    out.sort();
    out
}
