//! The Salesforce client against the Salesforce simulator (served in-process over loopback).

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::TryStreamExt;
use orglink_sandbox::salesforce::soql::{Expr, Literal, parse};
use orglink_sandbox::salesforce::{SalesforceOptions, decode_like_pattern, decode_string_literal};
use orglink_sandbox::zendesk::ZendeskOptions;
use orglink_shared::contract::Config;
use orglink_shared::http::{
    BudgetConfig, BudgetRefusal, CallLog, Disposition, LocalBudget, System,
};
use orglink_shared::ids::{AccountId, OrgId};
use orglink_shared::salesforce::soql::{quote, quote_like};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig, SalesforceError};
use proptest::prelude::*;
use serde_json::json;
use support::*;

fn id(n: u64) -> AccountId {
    AccountId::parse(&account_id(n)).unwrap()
}

#[tokio::test]
async fn reads_an_account_with_owner_and_opportunities() {
    let owner = "005SB0000000009";
    let scenario = json!({"salesforce": {
        "users": [{"Id": owner, "Username": "owner@acme.example", "Email": "owner@acme.example", "Name": "Owner"}],
        "accounts": [
            {"Id": account_id(1), "Name": "Acme", "Website": "https://www.acme.example", "Type": "Prospect", "OwnerId": owner,
             "Zendesk_Org_ID__c": "1001", "Zendesk_Sync_Status__c": "Linked"},
            {"Id": account_id(2), "Name": "Gone", "IsDeleted": true, "MasterRecordId": account_id(1)},
        ],
        "opportunities": [
            {"Id": orglink_sandbox::salesforce::ids::generate("006", 1), "AccountId": account_id(1), "Name": "Deal", "StageName": "Negotiation/Review", "Probability": 80, "IsClosed": false, "IsWon": false, "CloseDate": "2026-01-31"},
            {"Id": orglink_sandbox::salesforce::ids::generate("006", 2), "AccountId": account_id(1), "Name": "Old", "StageName": "Closed Lost", "Probability": 0, "IsClosed": true, "IsWon": false, "CloseDate": "2025-01-31"},
        ]
    }});
    let sb = Sandbox::start(scenario).await;
    let sf = sb.salesforce(roomy_budget(), CallLog::new()).await.unwrap();
    assert_eq!(
        sf.org_id().await.as_deref().map(|o| &o[..15]),
        Some(SF_ORG_ID)
    );
    let a = sf.read_account(&id(1)).await.unwrap().expect("account 1");
    assert_eq!(a.name, "Acme");
    assert_eq!(a.owner_email.as_deref(), Some("owner@acme.example"));
    assert_eq!(a.stored_org(), Some(OrgId::new(1001).unwrap()));
    assert_eq!(a.sync_status.as_deref(), Some("Linked"));
    assert!(!a.has_closed_won);
    assert_eq!(a.open_opportunities.len(), 1);
    assert_eq!(a.open_opportunities[0].probability, Some(80.0));
    // Deleted and merged accounts are read through queryAll.
    let gone = sf
        .read_account(&id(2))
        .await
        .unwrap()
        .expect("deleted account");
    assert!(gone.is_deleted);
    assert_eq!(gone.master_record_id, Some(id(1)));
    assert!(sf.read_account(&id(3)).await.unwrap().is_none());
    assert!(
        sf.daily_usage()
            .is_some_and(|d| d.used > 0 && d.limit == 100_000)
    );
}

/// A user moving an opportunity to a late stage sends only `StageName`; Salesforce brings the
/// stage's default probability (the sandbox's `opportunity_probability_follows_stage`), which
/// is what the default late-stage rule reads.
#[tokio::test]
async fn a_stage_change_alone_makes_an_account_eligible() {
    let opportunity = orglink_sandbox::salesforce::ids::generate("006", 1);
    let scenario = json!({"salesforce": {
        "accounts": [{"Id": account_id(1), "Name": "Acme", "Type": "Prospect"}],
        "opportunities": [{"Id": opportunity, "AccountId": account_id(1), "Name": "Deal",
            "StageName": "Perception Analysis", "Probability": 70, "CloseDate": "2026-01-31"}],
    }});
    let sb = Sandbox::start(scenario).await;
    let sf = sb.salesforce(roomy_budget(), CallLog::new()).await.unwrap();
    let config = Config::embedded_default();
    let rule = config.eligibility();
    let before = sf.read_account(&id(1)).await.unwrap().unwrap();
    assert!(!rule.evaluate(&before).is_eligible(), "{before:?}");

    // The user's edit, through the REST API as any other client makes it.
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/services/oauth2/token", sb.sf_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={SF_CLIENT_ID}&client_secret={SF_CLIENT_SECRET}"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let edit = http
        .patch(format!(
            "{}/services/data/{}/sobjects/Opportunity/{opportunity}",
            sb.sf_url,
            sf_config().api_version
        ))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .json(&json!({"StageName": "Proposal/Price Quote"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edit.status().as_u16(), 204);

    let after = sf.read_account(&id(1)).await.unwrap().unwrap();
    assert_eq!(after.open_opportunities[0].probability, Some(75.0));
    assert_eq!(
        rule.evaluate(&after),
        orglink_shared::contract::Eligibility::Eligible {
            because: vec![
                orglink_shared::contract::EligibleBecause::LateStageOpportunity {
                    stage_name: "Proposal/Price Quote".into(),
                    probability: Some(75.0),
                }
            ]
        }
    );
}

#[tokio::test]
async fn jwt_bearer_signs_in() {
    let sb = Sandbox::start(json!({"salesforce": {"accounts": accounts(3)}})).await;
    let sf = SalesforceClient::connect(
        sf_config(),
        sb.sf_jwt_credentials(),
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap();
    let n = sf
        .query("SELECT Id FROM Account")
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn a_wrong_org_id_or_bad_credentials_are_refused() {
    let sb = Sandbox::start(json!({})).await;
    let other = binding_for("00DSB0000000002", ZD_SUBDOMAIN);
    let err = SalesforceClient::connect(
        sf_config(),
        sb.sf_client_credentials(),
        &other,
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SalesforceError::WrongOrg(_)), "{err}");
    assert!(matches!(err.disposition(), Disposition::Review { .. }));
    assert!(err.to_string().contains("refusing to run"), "{err}");

    let mut creds = sb.sf_client_credentials();
    creds.flow = orglink_shared::credentials::SalesforceFlow::ClientCredentials {
        client_secret: orglink_shared::credentials::Secret::new("wrong-secret"),
    };
    let err = SalesforceClient::connect(
        sf_config(),
        creds,
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SalesforceError::SignIn { .. }), "{err}");
    assert!(matches!(err.disposition(), Disposition::Review { .. }));
    assert!(!err.to_string().contains("wrong-secret"));
}

#[tokio::test]
async fn a_token_expiring_in_the_middle_of_a_10000_record_query() {
    let sb = Sandbox::start(json!({"salesforce": {"accounts": accounts(10_000)}})).await;
    let calls = CallLog::new();
    let sf = sb.salesforce(roomy_budget(), calls.clone()).await.unwrap();
    // Each token dies after 2 API calls: the 5 pages need at least two refreshes.
    sb.admin
        .sf_post("switches", json!({"session_max_calls": 2}))
        .await;
    let ids: Vec<String> = sf
        .query("SELECT Id, Name FROM Account ORDER BY Id")
        .map_ok(|r| r["Id"].as_str().unwrap().to_string())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 10_000);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        10_000,
        "no record twice"
    );
    assert!(
        calls.count(System::Salesforce, "sf.token", Some("200")) >= 3,
        "{:?}",
        calls.snapshot()
    );
    assert!(calls.count(System::Salesforce, "sf.query_more", Some("401")) >= 1);
    assert_eq!(
        calls.count(System::Salesforce, "sf.query_more", Some("200")),
        4
    );
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried() {
    let sb = Sandbox::start(json!({"salesforce": {"accounts": accounts(1000)}})).await;
    let calls = CallLog::new();
    let mut config = sf_config();
    config.batch_size = 200;
    let sf = SalesforceClient::connect(
        config,
        sb.sf_client_credentials(),
        &binding(),
        roomy_budget(),
        calls.clone(),
    )
    .await
    .unwrap();
    sb.admin
        .sf_post(
            "faults",
            json!({"seed": 7, "default": {"error_5xx": 0.2, "drop": 0.15, "rate_limit_429": 0.15}}),
        )
        .await;
    let n = sf
        .query("SELECT Id FROM Account")
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len();
    assert_eq!(n, 1000);
    let snapshot = calls.snapshot();
    let count = |outcome: &str| {
        snapshot
            .iter()
            .filter(|(k, _)| k.outcome == outcome)
            .map(|(_, n)| n)
            .sum::<u64>()
    };
    assert!(
        count("503") > 0 && count("network") > 0,
        "no faults happened: {snapshot:?}"
    );
    // Salesforce throttles with 403 REQUEST_LIMIT_EXCEEDED (concurrency): retried too.
    assert!(count("403") > 0, "{snapshot:?}");
    // The sandbox saw the same failures.
    let seen = sb.admin.sf_get("calls").await;
    let failures: u64 = ["sf.query", "sf.query_more"]
        .iter()
        .flat_map(|e| ["503", "dropped", "403"].map(|s| seen[e][s].as_u64().unwrap_or(0)))
        .sum();
    assert_eq!(failures, count("503") + count("network") + count("403"));
}

#[tokio::test]
async fn collections_update_reports_validation_rules_and_retries_locks() {
    let sb = Sandbox::start(json!({"salesforce": {"accounts": accounts(250)}})).await;
    let calls = CallLog::new();
    let sf = sb.salesforce(roomy_budget(), calls.clone()).await.unwrap();
    sb.admin
        .sf_post(
            "switches",
            json!({"validation_rules": {account_id(2): "Website must be set before Zendesk sync"},
               "row_locks": {account_id(3): 2}}),
        )
        .await;
    let config = Config::embedded_default();
    let write_back = config.write_back();
    let mut writes = Vec::new();
    for i in 1..=250u64 {
        let mut account = sf.read_account(&id(i)).await.unwrap().unwrap();
        if i == 5 {
            // Already holds what orglink would write: nothing to send.
            account.stored_org_id = Some("1005".into());
        }
        let desired = orglink_shared::contract::DesiredLink {
            org_id: orglink_shared::contract::Intent::Set(OrgId::new(1000 + i).unwrap()),
            reviewed_domain: orglink_shared::contract::Intent::Leave,
            status: orglink_shared::contract::Intent::Leave,
        };
        // Account 5 already holds what orglink would write: no write at all.
        if let Some(write) =
            write_back.account_write(&account, &desired, false, "2026-01-01T00:00:00Z")
        {
            writes.push((id(i), write));
        }
    }
    assert_eq!(writes.len(), 249);
    let outcomes = sf.update_links(&writes).await.unwrap();
    assert_eq!(outcomes.len(), 249);
    assert_eq!(outcomes[0].account, id(1));
    assert_eq!(outcomes[0].result, Ok(()));
    let rule = outcomes[1].result.clone().unwrap_err();
    assert_eq!(rule.code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert!(rule.message.contains("Website must be set"), "{rule:?}");
    assert!(matches!(rule.disposition(), Disposition::Review { .. }));
    assert_eq!(outcomes[2].result, Ok(()), "the lock was retried");
    assert_eq!(outcomes[4].account, id(6));
    assert!(outcomes[3..].iter().all(|o| o.result == Ok(())));
    // 250 records: two collection calls, plus two resends of the locked record.
    assert_eq!(
        calls.count(System::Salesforce, "sf.composite", Some("200")),
        4
    );
    let a3 = sf.read_account(&id(3)).await.unwrap().unwrap();
    assert_eq!(a3.stored_org_id.as_deref(), Some("1003"));
    let a2 = sf.read_account(&id(2)).await.unwrap().unwrap();
    assert_eq!(a2.stored_org_id, None);
}

#[tokio::test]
async fn the_daily_reserve_stops_a_run_cleanly() {
    let sb = Sandbox::start(json!({"salesforce": {"accounts": accounts(10_000)}})).await;
    sb.admin
        .sf_post(
            "switches",
            json!({"daily_api_limit": 1000, "api_usage": 900}),
        )
        .await;
    let budget = Arc::new(LocalBudget::new(
        BudgetConfig::salesforce(1_000_000, 60),
        BudgetConfig::zendesk(700, 100),
    ));
    let mut config = sf_config();
    config.batch_size = 200;
    let sf = SalesforceClient::connect(
        config,
        sb.sf_client_credentials(),
        &binding(),
        budget,
        CallLog::new(),
    )
    .await
    .unwrap();
    let mut seen = 0usize;
    let mut pages = std::pin::pin!(sf.query_pages("SELECT Id FROM Account".into(), false));
    let err = loop {
        match pages.try_next().await {
            Ok(Some(p)) => seen += p.records.len(),
            Ok(None) => panic!("the query finished without meeting the reserve"),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            SalesforceError::Budget(BudgetRefusal::DailyReserve { reserve: 60, .. })
        ),
        "{err}"
    );
    assert!(matches!(
        err.disposition(),
        Disposition::Retry { after: Some(_) }
    ));
    assert!(seen > 0 && seen < 10_000);
    let usage = sb.admin.sf_get("switches").await["api_usage"]
        .as_u64()
        .unwrap();
    assert!(usage <= 940, "the run spent into the reserve: {usage}");
    // 40 pages of 200 fit between 900 used and the reserve of 60.
    assert_eq!(seen, 8000);
    assert_eq!(sf.daily_usage().map(|d| d.remaining()), Some(1000 - usage));
}

#[tokio::test]
async fn reads_in_chunks_that_respect_the_url_limit() {
    let sb = Sandbox::start(json!({"salesforce": {"accounts": accounts(600)}})).await;
    let calls = CallLog::new();
    let config = SalesforceConfig {
        max_query_url_bytes: 4000,
        ..sf_config()
    };
    let sf = SalesforceClient::connect(
        config,
        sb.sf_client_credentials(),
        &binding(),
        roomy_budget(),
        calls.clone(),
    )
    .await
    .unwrap();
    let ids: Vec<AccountId> = (1..=600).map(id).collect();
    let accounts = sf.read_accounts(&ids).await.unwrap();
    assert_eq!(accounts.len(), 600);
    let chunks = calls.count(System::Salesforce, "sf.query_all", Some("200"));
    assert!(chunks >= 5, "{chunks} queries for 600 ids under 4000 bytes");
    assert_eq!(
        calls.count(System::Salesforce, "sf.query_all", Some("414")),
        0
    );
}

#[tokio::test]
async fn the_eligible_accounts_stream_page_by_page() {
    use orglink_shared::salesforce::soql::Cond;
    let sb = Sandbox::start(json!({"salesforce": {"accounts": accounts(500)}})).await;
    let sf = sb.salesforce(roomy_budget(), CallLog::new()).await.unwrap();
    let pages: Vec<_> = sf
        .accounts(Some(Cond::like_prefix("Type", "Customer")), false)
        .try_collect()
        .await
        .unwrap();
    let all: Vec<_> = pages.into_iter().flatten().collect();
    assert_eq!(all.len(), 50);
    assert!(
        all.iter()
            .all(|a| a.account_type.as_deref() == Some("Customer - Direct"))
    );
}

// ---------------------------------------------------------------------------------------------
// Against a scripted server: behaviour the simulator does not produce on purpose.

#[tokio::test]
async fn a_refused_refresh_does_not_loop() {
    let (url, tokens) = scripted(|_| {
        (
            401,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
        )
    })
    .await;
    let sf = SalesforceClient::connect(
        sf_config(),
        scripted_creds(&url),
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap();
    let err = sf
        .query("SELECT Id FROM Account")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, SalesforceError::SessionRefused), "{err}");
    assert!(matches!(err.disposition(), Disposition::Review { .. }));
    // The first sign-in and exactly one refresh.
    assert_eq!(tokens.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn done_false_without_next_records_url_is_an_error() {
    let (url, _) = scripted(|_| {
        (
            200,
            json!({"totalSize": 5000, "done": false, "records": [{"Id": account_id(1)}]}),
        )
    })
    .await;
    let sf = SalesforceClient::connect(
        sf_config(),
        scripted_creds(&url),
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap();
    let err = sf
        .query("SELECT Id FROM Account")
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, SalesforceError::Protocol { .. }), "{err}");
    assert!(err.to_string().contains("nextRecordsUrl"));
}

#[tokio::test]
async fn the_simulators_can_be_started_with_other_flags() {
    // A sandbox org with another id: the same credentials, a different org → refused.
    let sf = SalesforceOptions {
        org_id: "00DSB0000000777".into(),
        ..SalesforceOptions::default()
    };
    let sb = Sandbox::start_with(json!({}), sf, ZendeskOptions::default()).await;
    let err = sb
        .salesforce(roomy_budget(), CallLog::new())
        .await
        .unwrap_err();
    assert!(matches!(err, SalesforceError::WrongOrg(_)), "{err}");
}

// ---------------------------------------------------------------------------------------------
// SOQL literals: any string round-trips through the simulator's parser and never changes the query.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_string_is_one_literal(s in any::<String>()) {
        let q = quote(&s);
        prop_assert_eq!(decode_string_literal(&q).unwrap(), s.clone());
        let soql = format!("SELECT Id FROM Account WHERE Name = {q} AND Type = 'x'");
        let parsed = parse(&soql).unwrap();
        let Some(Expr::And(parts)) = parsed.filter else { panic!("{soql}") };
        prop_assert_eq!(parts.len(), 2);
        match &parts[0] {
            Expr::Compare { value: Literal::String(v), .. } => prop_assert_eq!(v, &s),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn any_string_is_one_literal_like_pattern(s in any::<String>()) {
        let q = quote_like(&s);
        let decoded: String = decode_like_pattern(&q).unwrap().iter().map(|p| match p {
            orglink_sandbox::salesforce::soql::LikePart::Char(c) => *c,
            other => panic!("a wildcard leaked: {other:?}"),
        }).collect();
        prop_assert_eq!(decoded, s);
    }

    #[test]
    fn strings_with_quotes_and_backslashes(s in "[a-z'\\\\\"%_\n\r\t]{0,30}") {
        let q = quote(&s);
        prop_assert_eq!(decode_string_literal(&q).unwrap(), s);
    }
}
