//! Backfill end to end: a generated world (`orglink_sandbox::generate`) served by the sandbox,
//! state in the stack built on moto from `infra/template.yaml`, the shared rate budget in its
//! DynamoDB table, the live path's claims, links, exceptions and mirror tables.
//!
//! - plan, apply, then the reconcile function: every account ends as its truth says (linked to
//!   the right org, one org keyed to each new account, exactly one open row for each expected
//!   exception and no link, nothing for accounts that are not eligible), with zero wrong links
//!   and zero duplicate orgs;
//! - an apply stopped before a create batch is sent, and again after one ran but before its
//!   results were journaled, then run to the end: no duplicate organization, same end state;
//! - an apply stopped before a create batch is sent, then accounts in flight change (no longer
//!   eligible, or pointed at a legacy org by an admin): the rerun skips them with the reason,
//!   creates and writes back nothing for them, and releases the claim it took for one.

mod backfill_support;

use std::collections::HashSet;
use std::path::PathBuf;

use serde_json::{Value, json};

use backfill_support as support;
use backfill_support::{DbRequests, Stores, assert_matches_truth, backfill, key_of, world_size};
use orglink_e2e::start_reconcile;
use orglink_harness::{AwsEnv, LocalStack, Sandbox, moto_stack};
use orglink_reconcile::aws::stores_on;
use orglink_reconcile::{Limits, Mode, ReconcileEvent};
use orglink_sandbox::admin::Admin;
use orglink_sandbox::generate::{self, Options, Truth};
use orglink_shared::aws::mirror::DynamoMirror;
use orglink_shared::aws::{
    ClaimStore, ExceptionFilter, ExceptionRow, ExceptionStatus, ExceptionStore, OrgMirror,
};
use orglink_shared::backfill::snapshot::{self, Snapshot};
use orglink_shared::backfill::{
    ApplyReport, BackfillError, FailPoint, PlanFile, PlannedAction, Progress, Settings,
};
use orglink_shared::contract::Config;
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::CallLog;
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::salesforce::SalesforceClient;
use orglink_shared::zendesk::ZendeskClient;

/// The embedded default configuration's Salesforce org (the sandbox is started as it).
const BOUND_ORG: &str = "00D000000000001EAA";

struct World {
    aws: AwsEnv,
    stack: LocalStack,
    sandbox: Sandbox,
    dir: PathBuf,
    truth: Truth,
    config: Config,
    db: aws_sdk_dynamodb::Client,
    /// The requests `db` sent, by operation.
    requests: DbRequests,
}

impl World {
    async fn new(label: &str, accounts: usize, seed: u64) -> World {
        let (aws, stack) = moto_stack(label).await;
        let dir = std::env::temp_dir().join(format!("orglink-e2e-{}", stack.parameters["Prefix"]));
        std::fs::create_dir_all(&dir).unwrap();
        let generated = generate::generate(&Options { accounts, seed });
        let scenario = dir.join("scenario.json");
        std::fs::write(&scenario, generated.scenario_bytes()).unwrap();
        let sandbox = Sandbox::start_with(
            Some(&scenario),
            &[
                "--salesforce-org-id",
                BOUND_ORG,
                // Jobs finish quickly so the suite stays short; polling still happens.
                "--zendesk-job-delay-ms",
                "50",
            ],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let requests = DbRequests::default();
        let db = requests.client(&aws);
        World {
            truth: generated.truth().clone(),
            aws,
            stack,
            sandbox,
            dir,
            config: Config::embedded_default(),
            db,
            requests,
        }
    }

    async fn clients(&self) -> (SalesforceClient, ZendeskClient, CallLog) {
        support::clients(
            &self.db,
            &self.stack.names().unwrap(),
            &self.sandbox,
            &self.config,
        )
        .await
    }

    fn stores(&self) -> Stores {
        support::stores(&self.db, &self.stack.names().unwrap())
    }

    async fn plan(&self) -> PlanFile {
        let (sf, zd, _) = self.clients().await;
        let stores = self.stores();
        let policy = DomainPolicy::default();
        let progress = Progress::hidden();
        let bf = backfill(
            &self.config,
            &sf,
            &zd,
            &stores,
            &policy,
            &progress,
            Settings::default(),
        );
        bf.plan().await.expect("the plan").into_file()
    }

    async fn apply(
        &self,
        file: &PlanFile,
        fail_point: Option<FailPoint>,
    ) -> Result<ApplyReport, BackfillError> {
        let (sf, zd, _) = self.clients().await;
        let stores = self.stores();
        let policy = DomainPolicy::default();
        let progress = Progress::hidden();
        let settings = Settings {
            fail_point,
            ..Settings::default()
        };
        let bf = backfill(
            &self.config,
            &sf,
            &zd,
            &stores,
            &policy,
            &progress,
            settings,
        );
        bf.apply(file, &file.hash, &self.dir.join("plan.json.journal"))
            .await
    }

    /// Both systems as they are now, read through the APIs.
    async fn read(&self) -> Snapshot {
        let (sf, zd, _) = self.clients().await;
        snapshot::read(
            &sf,
            &zd,
            self.config.write_back().fields(),
            &Progress::hidden(),
            |_| {},
        )
        .await
        .expect("read both systems")
    }

    /// One full run of the reconcile function, through its production wiring, its stores on
    /// counted clients: the org mirror's DynamoDB requests apart from the other tables'.
    async fn reconcile(&self) {
        let names = self.stack.names().unwrap();
        let mut r =
            start_reconcile(&self.aws, &names, &self.sandbox, json!({}), CallLog::new()).await;
        let mirror_requests = DbRequests::default();
        r.stores = stores_on(self.db.clone(), self.aws.sqs(), &names);
        r.stores.mirror =
            DynamoMirror::new(mirror_requests.client(&self.aws), &names.org_mirror_table);
        self.requests.take();
        let out = r
            .run_to_end(ReconcileEvent::new(Mode::Full), &Limits::none())
            .await
            .expect("the reconcile run");
        eprintln!(
            "reconcile: {} organizations listed, {} written; DynamoDB requests: org mirror {}; other tables {}",
            out.summary.orgs.seen,
            out.summary.orgs.written,
            DbRequests::show(&mirror_requests.take()),
            DbRequests::show(&self.requests.take())
        );
    }

    fn admin(&self) -> Admin {
        Admin::new(
            self.sandbox.salesforce.clone(),
            self.sandbox.zendesk.clone(),
        )
    }

    /// Reloads Salesforce with its records as `change` leaves them (the scenario's switches
    /// kept): edits an admin or a sales rep makes between two applies.
    async fn change_accounts(&self, change: impl FnOnce(&mut Vec<Value>, &mut Vec<Value>)) {
        let admin = self.admin();
        let mut seed = admin.sf_get("state").await["salesforce"].take();
        let take = |v: &mut Value| v.as_array().cloned().unwrap_or_default();
        let (mut accounts, mut opportunities) = (
            take(&mut seed["accounts"]),
            take(&mut seed["opportunities"]),
        );
        change(&mut accounts, &mut opportunities);
        seed["accounts"] = Value::Array(accounts);
        seed["opportunities"] = Value::Array(opportunities);
        let scenario: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("scenario.json")).unwrap())
                .unwrap();
        if let Some(switches) = scenario["salesforce"].get("switches") {
            seed["switches"] = switches.clone();
        }
        admin
            .sf_post("scenario", json!({ "salesforce": seed }))
            .await;
    }

    /// The ids of the Salesforce records written through the API since the last reload.
    async fn salesforce_writes(&self) -> Vec<String> {
        self.admin()
            .sf_get("writes")
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|w| w["id"].as_str().map(str::to_string))
            .collect()
    }

    async fn open_rows(&self) -> Vec<ExceptionRow> {
        self.stores()
            .exceptions
            .list(&ExceptionFilter::status(ExceptionStatus::Open))
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_world_ends_as_its_truth_after_backfill_and_reconcile() {
    let w = World::new("backfill", world_size(1000), 11).await;
    let before = w.read().await;
    w.requests.take();

    let file = w.plan().await;
    let totals = &file.plan.totals;
    let t = &w.truth.totals;
    assert_eq!(
        totals.actions.get("create").copied(),
        Some(t.link_new),
        "plan creates"
    );
    assert_eq!(
        totals.exceptions.values().sum::<usize>(),
        t.exceptions
            .iter()
            .filter(|(k, _)| *k != "orphaned_org")
            .map(|(_, n)| n)
            .sum::<usize>()
    );
    // Nothing was written by planning.
    assert!(w.open_rows().await.is_empty());
    assert_eq!(w.stores().mirror.filled().await.unwrap(), None);

    eprintln!(
        "plan's DynamoDB requests: {}",
        DbRequests::show(&w.requests.take())
    );
    let clock = std::time::Instant::now();
    let report = w.apply(&file, None).await.expect("apply");
    eprintln!(
        "apply took {:.1?} ({} accounts); DynamoDB requests: {}",
        clock.elapsed(),
        file.plan.accounts.len(),
        DbRequests::show(&w.requests.take())
    );
    // The apply's full listing is in the mirror: the worker may now trust its silence.
    let filled = w.stores().mirror.filled().await.unwrap().expect("marked");
    assert_eq!(filled.by, orglink_shared::backfill::apply::MIRROR_FILLED_BY);
    assert_eq!(report.created, t.link_new);
    assert!(
        report.skipped.is_empty(),
        "{:?}",
        &report.skipped[..report.skipped.len().min(5)]
    );
    assert_eq!(
        report.failed.len(),
        w.truth.switch_dependent.len(),
        "{:?}",
        report.failed
    );

    let clock = std::time::Instant::now();
    w.reconcile().await;
    eprintln!("reconcile took {:.1?}", clock.elapsed());
    let after = w.read().await;
    assert_matches_truth(&w.truth, &before, &after, &w.open_rows().await);

    // A second apply of the same plan finds everything done.
    let again = w.apply(&file, None).await.expect("apply again");
    assert_eq!(
        again.created + again.linked + again.exceptions,
        0,
        "{again:?}"
    );
    assert!(again.already_applied > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_apply_finishes_on_a_rerun_without_a_duplicate_org() {
    let w = World::new("backfillcrash", world_size(800), 5).await;
    let before = w.read().await;
    let file = w.plan().await;
    let update_batches = file.plan.totals.org_updates.div_ceil(100);
    let creates = file
        .plan
        .accounts
        .iter()
        .filter(|e| matches!(e.action, PlannedAction::Create { .. }))
        .count();
    assert!(
        creates > 200,
        "the world needs several create batches ({creates})"
    );

    // Stop before the first create batch is sent, then after the next one ran in Zendesk but
    // before its results reached the journal: the worst moment for create_many.
    let first = w
        .apply(&file, Some(FailPoint::BeforeSubmit(update_batches + 1)))
        .await;
    assert!(
        matches!(first, Err(BackfillError::Interrupted { .. })),
        "{first:?}"
    );
    let second = w.apply(&file, Some(FailPoint::AfterSubmit(1))).await;
    assert!(
        matches!(second, Err(BackfillError::Interrupted { .. })),
        "{second:?}"
    );
    // Interrupted applies leave the mirror unmarked (their listing never all reached it).
    assert_eq!(w.stores().mirror.filled().await.unwrap(), None);
    let mid = w.read().await;
    let created_by_second: usize = mid.orgs.len() - before.orgs.len();
    assert!(
        created_by_second > 0,
        "the interrupted batch did create orgs in Zendesk"
    );

    let third = w.apply(&file, None).await.expect("the rerun finishes");
    assert!(w.stores().mirror.filled().await.unwrap().is_some());
    assert!(
        third.resumed >= created_by_second,
        "{} resumed",
        third.resumed
    );
    assert!(
        third.skipped.is_empty(),
        "{:?}",
        &third.skipped[..third.skipped.len().min(5)]
    );
    let after = w.read().await;
    assert_eq!(
        after.orgs.len() - before.orgs.len(),
        creates,
        "exactly one new org per planned create"
    );
    let mut keys = HashSet::new();
    for o in after
        .orgs
        .iter()
        .filter(|o| !before.orgs.iter().any(|b| b.id == o.id))
    {
        assert!(
            keys.insert(key_of(&o.external_id)),
            "duplicate org for {:?}",
            o.external_id
        );
    }
    // Every account the plan creates for is linked to its one new org.
    for e in file
        .plan
        .accounts
        .iter()
        .filter(|e| matches!(e.action, PlannedAction::Create { .. }))
    {
        let a = after.accounts.iter().find(|a| a.id == e.account).unwrap();
        let org = a.stored_org().expect("linked");
        let o = after
            .orgs
            .iter()
            .find(|o| o.id == org)
            .expect("its org exists");
        assert_eq!(o.key().account(), Some(&e.account));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_leaves_alone_interrupted_accounts_whose_state_changed() {
    let w = World::new("backfillchanged", world_size(300), 7).await;
    let before = w.read().await;
    let file = w.plan().await;
    let update_batches = file.plan.totals.org_updates.div_ceil(100);
    let creates: Vec<&AccountId> = file
        .plan
        .accounts
        .iter()
        .filter(|e| matches!(e.action, PlannedAction::Create { .. }))
        .map(|e| &e.account)
        .collect();
    // A link that changes its org: in an update batch, so in flight after the stop.
    let (l, l_org) = file
        .plan
        .accounts
        .iter()
        .find_map(|e| match &e.action {
            PlannedAction::Link {
                org,
                update: Some(_),
                ..
            } => Some((e.account.clone(), *org)),
            _ => None,
        })
        .expect("the world has a link that updates its org");
    let (a, b) = (creates[0].clone(), creates[1].clone());
    // A keyless legacy org nobody links to and the plan does not touch.
    let touched: HashSet<OrgId> = file
        .plan
        .accounts
        .iter()
        .flat_map(|e| match &e.action {
            PlannedAction::Link { org, .. } => vec![*org],
            PlannedAction::Exception { finding } => finding.orgs.clone(),
            _ => vec![],
        })
        .chain(before.accounts.iter().filter_map(|a| a.stored_org()))
        .collect();
    let y = before
        .orgs
        .iter()
        .find(|o| o.external_id.is_none() && !touched.contains(&o.id))
        .expect("the world has a keyless org nobody links to")
        .id;

    // The first create batch (A's and B's) is journaled as submitting, never sent; every
    // update batch ran, so L's org is claimed for it.
    let first = w
        .apply(&file, Some(FailPoint::BeforeSubmit(update_batches + 1)))
        .await;
    assert!(
        matches!(first, Err(BackfillError::Interrupted { .. })),
        "{first:?}"
    );
    let stores = w.stores();
    assert_eq!(
        stores
            .claims
            .holder(l_org)
            .await
            .unwrap()
            .map(|c| c.account),
        Some(l.clone())
    );

    // Meanwhile A and L stop being eligible, and an admin points B at the legacy org.
    w.change_accounts(|accounts, opportunities| {
        for acc in accounts.iter_mut() {
            let id = acc["Id"].as_str().unwrap_or_default();
            if id == a.as_str() || id == l.as_str() {
                acc["Type"] = json!("Prospect");
            } else if id == b.as_str() {
                acc["Zendesk_Org_ID__c"] = json!(y.to_string());
            }
        }
        opportunities.retain(|o| {
            let of = o["AccountId"].as_str().unwrap_or_default();
            of != a.as_str() && of != l.as_str()
        });
    })
    .await;

    let second = w.apply(&file, None).await.expect("the rerun finishes");
    for who in [&a, &b, &l] {
        let s = second
            .skipped
            .iter()
            .find(|s| &s.account == who)
            .unwrap_or_else(|| panic!("{who} is not skipped: {:?}", second.skipped));
        assert!(s.reason.contains("earlier apply"), "{}", s.reason);
    }
    assert!(
        second
            .skipped
            .iter()
            .any(|s| s.account == a && s.reason.contains("not eligible")),
        "{:?}",
        second.skipped
    );
    let after = w.read().await;
    for who in [&a, &b] {
        assert!(
            !after.orgs.iter().any(|o| o.key().account() == Some(who)),
            "no org was created for {who}"
        );
    }
    let stored = |id: &AccountId| {
        after
            .accounts
            .iter()
            .find(|x| &x.id == id)
            .and_then(|x| x.stored_org())
    };
    assert_eq!(stored(&b), Some(y), "B's link is the admin's");
    assert_eq!(stored(&a), None);
    let written: Vec<String> = w.salesforce_writes().await;
    for who in [&a, &b, &l] {
        assert!(
            !written.iter().any(|id| id == who.as_str()),
            "{who} was written back"
        );
    }
    // L's claim from the first run is released: it links nothing.
    assert_eq!(stores.claims.holder(l_org).await.unwrap(), None);
}
