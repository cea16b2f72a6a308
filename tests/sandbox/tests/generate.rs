//! `orglink-sandbox generate`: determinism, pattern coverage, the truth's internal consistency,
//! that nothing in the world touches an account unless its truth says so, and that the
//! scenario loads into both simulators.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use orglink_sandbox::generate::{self, AccountTruth, Expected, Options, Pattern, Truth};
use orglink_sandbox::salesforce::{self, SalesforceOptions, ids};
use orglink_sandbox::scenario::{SalesforceSeed, Scenario, ZendeskSeed};
use orglink_sandbox::zendesk::{self, ZendeskOptions};
use reqwest::Client;
use serde_json::Value;

/// orglink's `ExceptionKind::as_str` names (DESIGN.md "Exceptions").
const KINDS: [&str; 12] = [
    "duplicate_external_id",
    "stored_link_key_disagree",
    "key_conflict",
    "domain_collision",
    "ambiguous_domain",
    "possible_legacy_org",
    "orphaned_org",
    "write_back_blocked",
    "sync_failing",
    "name_drift",
    "domain_drift",
    "ticket_attribution_drift",
];
const REPORT_KINDS: [&str; 3] = ["data_fix", "churned_customer", "missing_link"];

struct World {
    scenario: Scenario,
    truth: Truth,
    scenario_bytes: Vec<u8>,
}

fn world(accounts: usize, seed: u64) -> World {
    let g = generate::generate(&Options { accounts, seed });
    let scenario_bytes = g.scenario_bytes();
    let truth_bytes = g.truth_bytes();
    let scenario = Scenario::from_json(std::str::from_utf8(&scenario_bytes).unwrap())
        .expect("the scenario parses as a scenario");
    let truth: Truth = serde_json::from_slice(&truth_bytes).expect("the truth file parses");
    assert_eq!(&truth, g.truth(), "truth.json holds exactly the truth");
    World {
        scenario,
        truth,
        scenario_bytes,
    }
}

fn text<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn id_of(v: &Value) -> u64 {
    v["id"].as_u64().expect("numeric id")
}

/// The account an external_id names, if it names one of `accounts`: an 18-character key in any
/// letter case (its suffix records the case), or the exact 15-character form.
fn keyed_account(
    key: &str,
    by_lower18: &HashMap<String, String>,
    by15: &HashMap<String, String>,
) -> Option<String> {
    let key = key.trim();
    match key.len() {
        18 => by_lower18.get(&key.to_lowercase()).cloned(),
        15 => by15.get(key).cloned(),
        _ => None,
    }
}

/// Host-like tokens in a Website or domain value, lowercase.
fn hosts(value: &str) -> Vec<String> {
    value
        .to_lowercase()
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
        .map(|t| t.trim_matches('.').to_string())
        .filter(|t| t.contains('.'))
        .collect()
}

/// A domain_names entry as a comparable domain: lowercase, no trailing dot, no `www.`.
fn entry_domain(entry: &str) -> String {
    let e = entry.trim().trim_end_matches('.').to_lowercase();
    e.strip_prefix("www.").map(str::to_string).unwrap_or(e)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = generate::generate(&Options {
        accounts: 2_000,
        seed: 11,
    });
    let b = generate::generate(&Options {
        accounts: 2_000,
        seed: 11,
    });
    let c = generate::generate(&Options {
        accounts: 2_000,
        seed: 12,
    });
    assert!(a.scenario_bytes() == b.scenario_bytes());
    assert!(a.truth_bytes() == b.truth_bytes());
    assert!(a.scenario_bytes() != c.scenario_bytes());
    assert!(a.truth_bytes() != c.truth_bytes());
}

#[test]
fn the_binary_writes_the_same_files_for_the_same_seed() {
    let dir = std::env::temp_dir().join(format!("orglink-generate-{}", std::process::id()));
    let run = |sub: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_orglink-sandbox"))
            .args(["generate", "--accounts", "300", "--seed", "5", "--out-dir"])
            .arg(dir.join(sub))
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
        assert_eq!(summary["accounts"], 300);
        (
            std::fs::read(dir.join(sub).join("scenario.json")).unwrap(),
            std::fs::read(dir.join(sub).join("truth.json")).unwrap(),
        )
    };
    let first = run("a");
    let second = run("b");
    assert!(first == second, "same seed, same bytes");
    let in_memory = generate::generate(&Options {
        accounts: 300,
        seed: 5,
    });
    assert!(first.0 == in_memory.scenario_bytes());
    // Without a destination it refuses and says what to give.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_orglink-sandbox"))
        .args(["generate", "--accounts", "10"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out-dir"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_plan_gives_exactly_the_accounts_asked_for() {
    for n in [0, 1, 7, 33, 2_000, 12_345] {
        let planned: usize = generate::plan(n)
            .iter()
            .map(|(p, count)| p.accounts() * count)
            .sum();
        assert_eq!(planned, n);
    }
    for n in [0, 1, 7, 33] {
        let w = world(n, 1);
        assert_eq!(w.scenario.salesforce.accounts.len(), n);
        assert_eq!(w.truth.accounts.len(), n);
    }
}

#[test]
fn two_thousand_accounts_exercise_every_pattern_many_times() {
    let w = world(2_000, 7);
    assert_eq!(w.scenario.salesforce.accounts.len(), 2_000);
    assert_eq!(w.truth.counts.accounts, 2_000);
    for p in Pattern::ALL {
        let c = &w.truth.patterns[p.name()];
        assert!(c.instances >= 15, "{} only {} times", p.name(), c.instances);
        assert_eq!(c.accounts, c.instances * p.accounts(), "{}", p.name());
        let in_truth = w
            .truth
            .accounts
            .iter()
            .filter(|a| a.pattern == p.name())
            .count();
        assert_eq!(in_truth, c.accounts, "{}", p.name());
    }
    // Every outcome the rules allow shows up.
    let t = &w.truth.totals;
    assert!(t.link_existing > 0 && t.link_new > 0 && t.nothing > 0);
    for kind in [
        "duplicate_external_id",
        "stored_link_key_disagree",
        "key_conflict",
        "domain_collision",
        "ambiguous_domain",
        "possible_legacy_org",
        "orphaned_org",
    ] {
        assert!(t.exceptions[kind] >= 15, "{kind}");
    }
    assert!(t.findings["domain_drift"] > 0 && t.findings["ticket_attribution_drift"] > 0);
    assert!(t.report["data_fix"] > 0 && t.report["churned_customer"] > 0);
    assert!(!w.truth.switch_dependent.is_empty());
    assert!(w.truth.orphaned_orgs.iter().any(|o| o.why == "purged"));
}

/// Checks of the truth against itself and the scenario; returns nothing, panics on a breach.
fn check_consistency(w: &World) {
    let sf = &w.scenario.salesforce;
    let zd = &w.scenario.zendesk;
    let t = &w.truth;

    let orgs: HashMap<u64, &Value> = zd.organizations.iter().map(|o| (id_of(o), o)).collect();
    assert_eq!(
        orgs.len(),
        zd.organizations.len(),
        "organization ids are unique"
    );
    assert_eq!(orgs.len(), t.counts.organizations);
    let accounts: HashMap<&str, &Value> = sf
        .accounts
        .iter()
        .map(|a| (text(a, "Id").unwrap(), a))
        .collect();
    assert_eq!(accounts.len(), sf.accounts.len(), "account ids are unique");

    // One truth per account, and the reverse.
    let truths: HashMap<&str, &AccountTruth> = t
        .accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a))
        .collect();
    assert_eq!(truths.len(), t.accounts.len());
    assert_eq!(
        truths.keys().collect::<BTreeSet<_>>(),
        accounts.keys().collect::<BTreeSet<_>>()
    );

    let mut linked_orgs = HashSet::new();
    let mut recount = generate::Totals::default();
    for a in &t.accounts {
        let record = accounts[a.account_id.as_str()];
        let deleted = record["IsDeleted"].as_bool().unwrap();
        assert!(
            !(deleted && a.eligible),
            "{}: a deleted account is never eligible",
            a.account_id
        );
        for org in &a.orgs {
            assert!(
                orgs.contains_key(org),
                "{}: org {org} is not in the scenario",
                a.account_id
            );
        }
        match &a.expected {
            Expected::Link(org) => {
                assert!(
                    orgs.contains_key(org),
                    "{}: expects missing org {org}",
                    a.account_id
                );
                assert_eq!(a.orgs, vec![*org]);
                assert!(
                    linked_orgs.insert(*org),
                    "org {org} is expected by two accounts"
                );
                if !a.eligible {
                    assert_eq!(
                        a.report,
                        vec!["churned_customer"],
                        "{}: only a kept link",
                        a.account_id
                    );
                }
                recount.link_existing += 1;
            }
            Expected::LinkNew => {
                assert!(
                    a.eligible,
                    "{}: only eligible accounts get a new org",
                    a.account_id
                );
                assert!(a.orgs.is_empty());
                recount.link_new += 1;
            }
            Expected::Exception(kind) => {
                assert!(KINDS.contains(&kind.as_str()), "{kind}");
                assert!(
                    !a.orgs.is_empty(),
                    "{}: the row names its orgs",
                    a.account_id
                );
                // A deleted or merged account's only problem is its orphaned org.
                assert!(
                    a.eligible || kind == "orphaned_org",
                    "{}: {kind} on an account that is not eligible",
                    a.account_id
                );
                *recount.exceptions.entry(kind.clone()).or_default() += 1;
                *recount.findings.entry(kind.clone()).or_default() += 1;
            }
            Expected::Nothing => {
                assert!(
                    !a.eligible,
                    "{}: an eligible account never gets nothing",
                    a.account_id
                );
                assert!(a.orgs.is_empty() && a.findings.is_empty() && a.report.is_empty());
                recount.nothing += 1;
            }
        }
        for f in &a.findings {
            assert!(KINDS.contains(&f.as_str()), "{f}");
            *recount.findings.entry(f.clone()).or_default() += 1;
        }
        for r in &a.report {
            assert!(REPORT_KINDS.contains(&r.as_str()), "{r}");
            *recount.report.entry(r.clone()).or_default() += 1;
        }
        recount.eligible += usize::from(a.eligible);
    }
    let purged = t.orphaned_orgs.iter().filter(|o| o.why == "purged").count();
    *recount.findings.entry("orphaned_org".into()).or_default() += purged;
    assert_eq!(recount, t.totals);

    // Keys resolve to accounts as orglink reads them.
    let by_lower18: HashMap<String, String> = accounts
        .keys()
        .map(|id| (id.to_lowercase(), id.to_string()))
        .collect();
    let by15: HashMap<String, String> = accounts
        .keys()
        .map(|id| (id[..15].to_string(), id.to_string()))
        .collect();

    for o in &t.orphaned_orgs {
        let org = orgs[&o.org];
        let key = text(org, "external_id").unwrap();
        assert_eq!(ids::normalize(key).as_deref(), Some(o.account.as_str()));
        assert_eq!(accounts.contains_key(o.account.as_str()), o.why != "purged");
        if o.why != "purged" {
            assert_eq!(
                truths[o.account.as_str()].expected,
                Expected::exception("orphaned_org")
            );
        }
    }
    for d in &t.data_fixes {
        assert!(
            truths[d.account.as_str()]
                .report
                .contains(&"data_fix".to_string())
        );
        assert_eq!(
            text(accounts[d.account.as_str()], "Website"),
            Some(d.website.as_str())
        );
    }
    assert_eq!(
        t.data_fixes.len(),
        t.totals.report.get("data_fix").copied().unwrap_or(0)
    );
    for s in &t.switch_dependent {
        assert!(truths[s.account.as_str()].expected.linked_org().is_some());
    }

    // Tickets: exactly the listed ones sit on an org their requester does not belong to.
    let mut members: HashSet<(u64, u64)> = HashSet::new();
    for m in &zd.organization_memberships {
        members.insert((
            m["user_id"].as_u64().unwrap(),
            m["organization_id"].as_u64().unwrap(),
        ));
    }
    let users: HashSet<u64> = zd.users.iter().map(id_of).collect();
    let mut misattributed: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for ticket in &zd.tickets {
        let org = ticket["organization_id"]
            .as_u64()
            .expect("every ticket has an org");
        let requester = ticket["requester_id"].as_u64().unwrap();
        assert!(orgs.contains_key(&org) && users.contains(&requester));
        if !members.contains(&(requester, org)) {
            misattributed.entry(org).or_default().insert(id_of(ticket));
        }
    }
    let expected: BTreeMap<u64, BTreeSet<u64>> = t
        .ticket_attribution
        .iter()
        .map(|a| (a.org, a.tickets.iter().copied().collect()))
        .collect();
    assert_eq!(misattributed, expected);
    for a in &t.ticket_attribution {
        assert_eq!(a.misattributed_tickets as usize, a.tickets.len());
        let owner = a.account.as_deref().unwrap();
        assert_eq!(
            keyed_account(
                text(orgs[&a.org], "external_id").unwrap(),
                &by_lower18,
                &by15
            )
            .as_deref(),
            Some(owner)
        );
        assert!(
            truths[owner]
                .findings
                .contains(&"ticket_attribution_drift".to_string())
        );
    }
}

#[test]
fn the_truth_is_internally_consistent() {
    check_consistency(&world(2_000, 7));
    check_consistency(&world(500, 99));
}

/// Every relation between an account and an organization the scenario holds (a key naming
/// the account, its stored id, a domain in its Website or reviewed domain, its name) must be
/// one its truth names: the org is among its expected orgs or named in its notes. So patterns
/// never meet by accident, and a clean new customer touches no organization at all.
fn check_every_relation_is_explained(w: &World) {
    let sf = &w.scenario.salesforce;
    let zd = &w.scenario.zendesk;
    let truths: HashMap<&str, &AccountTruth> = w
        .truth
        .accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a))
        .collect();
    let explained = |account: &str, org: u64, why: &str| {
        let t = truths[account];
        assert!(
            t.orgs.contains(&org) || t.notes.contains(&org.to_string()),
            "{account} ({}) is related to org {org} by {why}, which its truth does not name",
            t.pattern
        );
    };
    let ids: Vec<&str> = sf.accounts.iter().map(|a| text(a, "Id").unwrap()).collect();
    let by_lower18: HashMap<String, String> = ids
        .iter()
        .map(|id| (id.to_lowercase(), id.to_string()))
        .collect();
    let by15: HashMap<String, String> = ids
        .iter()
        .map(|id| (id[..15].to_string(), id.to_string()))
        .collect();
    let purged: HashSet<u64> = w
        .truth
        .orphaned_orgs
        .iter()
        .filter(|o| o.why == "purged")
        .map(|o| o.org)
        .collect();

    let mut by_domain: HashMap<String, Vec<u64>> = HashMap::new();
    let mut by_name: HashMap<String, Vec<u64>> = HashMap::new();
    for o in &zd.organizations {
        let id = id_of(o);
        for d in o["domain_names"].as_array().unwrap() {
            by_domain
                .entry(entry_domain(d.as_str().unwrap()))
                .or_default()
                .push(id);
        }
        by_name
            .entry(text(o, "name").unwrap().trim().to_lowercase())
            .or_default()
            .push(id);
        if let Some(key) = text(o, "external_id") {
            match keyed_account(key, &by_lower18, &by15) {
                Some(account) => explained(&account, id, "its key"),
                None => {
                    // Another system's key, or an account Salesforce no longer knows.
                    let foreign = ids::normalize(key.trim()).is_none();
                    assert!(
                        foreign || purged.contains(&id),
                        "org {id} keyed to unknown {key}"
                    );
                }
            }
        }
    }
    let mut related = 0;
    for a in &sf.accounts {
        let id = text(a, "Id").unwrap();
        if let Some(stored) = text(a, "Zendesk_Org_ID__c") {
            let org: u64 = stored.parse().expect("stored ids are org ids");
            explained(id, org, "Zendesk_Org_ID__c");
            related += 1;
        }
        // An unusable Website (a data fix) gives orglink no domain, so nothing relates
        // through it (the platform in `acme.wordpress.com` is on many orgs by design).
        let unusable_website = truths[id].report.iter().any(|r| r == "data_fix");
        for field in ["Website", "Zendesk_Domain__c"] {
            if field == "Website" && unusable_website {
                continue;
            }
            for host in text(a, field).map(hosts).unwrap_or_default() {
                // The host itself and every parent domain of it.
                let suffixes = std::iter::once(host.as_str())
                    .chain(host.match_indices('.').map(|(i, _)| &host[i + 1..]));
                for domain in suffixes {
                    for &org in by_domain.get(domain).map(Vec::as_slice).unwrap_or(&[]) {
                        explained(id, org, &format!("the domain {domain} in {field}"));
                        related += 1;
                    }
                }
            }
        }
        let name = text(a, "Name").unwrap().trim().to_lowercase();
        for &org in by_name.get(&name).map(Vec::as_slice).unwrap_or(&[]) {
            explained(id, org, "its name");
        }
    }
    assert!(related > 0, "the check looked at something");
}

#[test]
fn nothing_relates_an_account_to_an_org_unless_its_truth_says_so() {
    check_every_relation_is_explained(&world(2_000, 7));
    check_every_relation_is_explained(&world(800, 3));
}

#[test]
fn records_carry_valid_ids_and_references() {
    let w = world(2_000, 21);
    let sf = &w.scenario.salesforce;
    let check = |v: &Value, prefix: &str| {
        let id = text(v, "Id").unwrap();
        assert_eq!(id.len(), 18);
        assert!(id.starts_with(prefix), "{id}");
        assert_eq!(
            ids::normalize(&id[..15]).as_deref(),
            Some(id),
            "{id} has a valid checksum"
        );
        id.to_string()
    };
    let users: HashSet<String> = sf.users.iter().map(|u| check(u, "005")).collect();
    let accounts: HashMap<String, &Value> =
        sf.accounts.iter().map(|a| (check(a, "001"), a)).collect();
    for u in &sf.users {
        assert!(text(u, "Email").unwrap().contains('@'));
    }
    for a in &sf.accounts {
        assert!(users.contains(text(a, "OwnerId").unwrap()));
        assert!(!text(a, "Name").unwrap().contains('|'));
        for f in ["CreatedDate", "SystemModstamp"] {
            assert!(text(a, f).unwrap().ends_with(".000+0000"), "{f}");
        }
        if let Some(master) = text(a, "MasterRecordId") {
            assert_eq!(a["IsDeleted"], true, "a merged loser is deleted");
            let winner = accounts[master];
            assert_eq!(winner["IsDeleted"], false);
            assert!(winner["MasterRecordId"].is_null());
        }
    }
    for o in &sf.opportunities {
        check(o, "006");
        assert!(accounts.contains_key(text(o, "AccountId").unwrap()));
        let (closed, won) = (
            o["IsClosed"].as_bool().unwrap(),
            o["IsWon"].as_bool().unwrap(),
        );
        let stage = text(o, "StageName").unwrap();
        assert_eq!(won, stage == "Closed Won");
        assert_eq!(closed, stage.starts_with("Closed"));
        assert_eq!(text(o, "CloseDate").unwrap().len(), 10);
    }
    for o in &w.scenario.zendesk.organizations {
        assert!(
            id_of(o) < 360_000_000_000,
            "below the ids the simulator gives new orgs"
        );
        assert!(text(o, "created_at").unwrap().ends_with('Z'));
    }
}

/// Eligibility as DESIGN.md states it, evaluated here from the records alone, agrees with the
/// truth's `eligible` on every account.
#[test]
fn eligible_in_the_truth_is_eligible_by_the_records() {
    let w = world(2_000, 8);
    let sf = &w.scenario.salesforce;
    let mut won = HashSet::new();
    let mut late = HashSet::new();
    for o in &sf.opportunities {
        let account = text(o, "AccountId").unwrap().to_string();
        if o["IsWon"] == true {
            won.insert(account.clone());
        }
        if o["IsClosed"] == false && o["Probability"].as_f64().unwrap() >= 75.0 {
            late.insert(account);
        }
    }
    let truths: HashMap<&str, bool> = w
        .truth
        .accounts
        .iter()
        .map(|a| (a.account_id.as_str(), a.eligible))
        .collect();
    for a in &sf.accounts {
        let id = text(a, "Id").unwrap();
        let customer = text(a, "Type").is_some_and(|t| t.to_lowercase().starts_with("customer"));
        let eligible =
            a["IsDeleted"] == false && (customer || won.contains(id) || late.contains(id));
        assert_eq!(truths[id], eligible, "{id}");
    }
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_scenario_loads_into_both_simulators() {
    let w = world(2_000, 7);
    let http = Client::new();
    let sf = serve(salesforce::app(
        SalesforceOptions::default(),
        SalesforceSeed::default(),
    ))
    .await;
    let zd = serve(zendesk::app(
        ZendeskOptions {
            search_lag_ms: 0,
            ..Default::default()
        },
        ZendeskSeed::default(),
    ))
    .await;
    for base in [&sf, &zd] {
        let r = http
            .post(format!("{base}/_sandbox/scenario"))
            .body(w.scenario_bytes.clone())
            .send()
            .await
            .unwrap();
        let status = r.status();
        assert!(
            status.is_success(),
            "{base}: {status} {}",
            r.text().await.unwrap()
        );
    }

    // Salesforce, through the API as orglink reads it.
    let token: Value = http
        .post(format!("{sf}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "orglink-sandbox-consumer-key"),
            ("client_secret", "orglink-sandbox-consumer-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let soql = |endpoint: &'static str, q: String| {
        let (http, sf, token) = (http.clone(), sf.clone(), token.clone());
        async move {
            let r = http
                .get(format!("{sf}/services/data/v62.0/{endpoint}"))
                .query(&[("q", q.as_str())])
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{q}: {}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let deleted = w
        .scenario
        .salesforce
        .accounts
        .iter()
        .filter(|a| a["IsDeleted"] == true)
        .count();
    assert!(deleted > 0);
    let all = soql("queryAll", "SELECT COUNT() FROM Account".into()).await;
    assert_eq!(all["totalSize"], w.truth.counts.accounts);
    let live = soql("query", "SELECT COUNT() FROM Account".into()).await;
    assert_eq!(live["totalSize"], w.truth.counts.accounts - deleted);
    let losers = w
        .truth
        .accounts
        .iter()
        .filter(|a| a.role == "merge_loser")
        .count();
    let merged = soql(
        "queryAll",
        "SELECT COUNT() FROM Account WHERE MasterRecordId != null".into(),
    )
    .await;
    assert_eq!(merged["totalSize"], losers);
    let opps = soql("query", "SELECT COUNT() FROM Opportunity".into()).await;
    assert_eq!(opps["totalSize"], w.truth.counts.opportunities);
    let linked = w
        .truth
        .accounts
        .iter()
        .find(|a| a.pattern == "already_linked")
        .unwrap();
    let row = soql(
        "query",
        format!(
            "SELECT Id, Owner.Email, Zendesk_Org_ID__c FROM Account WHERE Id = '{}'",
            linked.account_id
        ),
    )
    .await;
    let record = &row["records"][0];
    assert!(record["Owner"]["Email"].as_str().unwrap().contains('@'));
    assert_eq!(
        record["Zendesk_Org_ID__c"].as_str().unwrap(),
        linked.expected.linked_org().unwrap().to_string()
    );

    // Zendesk, through the API.
    let get = |path: String| {
        let (http, zd) = (http.clone(), zd.clone());
        async move {
            let r = http
                .get(format!("{zd}{path}"))
                .basic_auth("admin@example.com/token", Some("sandbox-zendesk-token"))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, count) = get("/api/v2/organizations/count.json".into()).await;
    assert_eq!(status, 200);
    assert_eq!(count["count"]["value"], w.truth.counts.organizations);
    // Every ticket, by cursor pages.
    let mut tickets = 0;
    let mut path = "/api/v2/tickets.json?page[size]=100".to_string();
    loop {
        let (status, page) = get(path).await;
        assert_eq!(status, 200);
        tickets += page["tickets"].as_array().unwrap().len();
        if page["meta"]["has_more"] != true {
            break;
        }
        let next = page["links"]["next"].as_str().unwrap();
        path = next.strip_prefix(zd.as_str()).unwrap().to_string();
    }
    assert_eq!(tickets, w.truth.counts.tickets);
    let (status, _) = get(format!(
        "/api/v2/organizations/{}.json",
        linked.expected.linked_org().unwrap()
    ))
    .await;
    assert_eq!(status, 200);
    // A stored id of a deleted org is absent.
    let gone = w
        .truth
        .accounts
        .iter()
        .find(|a| a.pattern == "stored_id_of_deleted_org")
        .unwrap();
    let stored = w
        .scenario
        .salesforce
        .accounts
        .iter()
        .find(|a| text(a, "Id") == Some(gone.account_id.as_str()))
        .and_then(|a| text(a, "Zendesk_Org_ID__c"))
        .unwrap()
        .to_string();
    let (status, _) = get(format!("/api/v2/organizations/{stored}.json")).await;
    assert_eq!(status, 404);
    // A misattribution is visible as orglink will read it: the tickets are on the org, and
    // their requester's memberships do not include it.
    let drift = &w.truth.ticket_attribution[0];
    let (status, on_org) = get(format!(
        "/api/v2/organizations/{}/tickets.json?page[size]=100",
        drift.org
    ))
    .await;
    assert_eq!(status, 200);
    let on_org: BTreeSet<u64> = on_org["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();
    assert!(drift.tickets.iter().all(|t| on_org.contains(t)));
    let (status, memberships) = get(format!(
        "/api/v2/users/{}/organization_memberships.json",
        drift.requesters[0]
    ))
    .await;
    assert_eq!(status, 200);
    assert!(
        memberships["organization_memberships"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["organization_id"].as_u64() != Some(drift.org))
    );
    // An org keyed with the 15-character id is found by that key.
    let legacy = w
        .truth
        .accounts
        .iter()
        .find(|a| a.pattern == "legacy_15_char_key")
        .unwrap();
    let (status, found) = get(format!(
        "/api/v2/organizations/search.json?external_id={}",
        &legacy.account_id[..15]
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        found["organizations"][0]["id"].as_u64(),
        legacy.expected.linked_org()
    );
}

/// 100,000 accounts: about 9 s in a debug build on the 2-core machine (about 1 s in release,
/// docs/benchmarks.md), so it is opt-in:
/// `cargo test -p orglink-sandbox --test generate -- --ignored`.
#[test]
#[ignore]
fn a_hundred_thousand_accounts() {
    let w = world(100_000, 2026);
    assert_eq!(w.scenario.salesforce.accounts.len(), 100_000);
    check_consistency(&w);
    for p in Pattern::ALL {
        assert!(w.truth.patterns[p.name()].instances >= 900, "{}", p.name());
    }
}
