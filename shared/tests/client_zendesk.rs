//! The Zendesk client against the Zendesk simulator (served in-process over loopback).

mod support;

use std::collections::HashSet;

use futures_util::TryStreamExt;
use orglink_sandbox::salesforce::SalesforceOptions;
use orglink_sandbox::zendesk::ZendeskOptions;
use orglink_shared::http::{CallLog, Disposition, System};
use orglink_shared::ids::OrgId;
use orglink_shared::zendesk::{DuplicateField, ZendeskClient, ZendeskConfig, ZendeskError};
use serde_json::json;
use support::*;

fn org(n: u64) -> OrgId {
    OrgId::new(n).unwrap()
}

#[tokio::test]
async fn shows_searches_and_reports_missing_records() {
    let scenario = json!({"zendesk": {"organizations": [
        {"id": 1001, "name": "Acme", "external_id": account_id(1), "domain_names": ["acme.example"], "organization_fields": null},
        {"id": 1002, "name": "Beta", "external_id": null},
        {"id": 1003, "name": "Legacy", "external_id": account_id(3).to_lowercase()},
    ]}});
    let sb = Sandbox::start(scenario).await;
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    let acme = zd.show(org(1001)).await.unwrap();
    assert_eq!(acme.name, "Acme");
    assert_eq!(acme.domain_names, vec!["acme.example".to_string()]);
    let err = zd.show(org(9999)).await.unwrap_err();
    assert!(matches!(err, ZendeskError::RecordNotFound { .. }), "{err}");
    assert!(matches!(err.disposition(), Disposition::GiveUp { .. }));

    let many = zd
        .show_many(&[org(1001), org(1002), org(9999)])
        .await
        .unwrap();
    assert_eq!(
        many.iter().map(|o| o.id.get()).collect::<HashSet<_>>(),
        HashSet::from([1001, 1002])
    );
    // external_id matches case-insensitively.
    let keyed = zd
        .show_many_by_external_ids(&[account_id(1), account_id(3)])
        .await
        .unwrap();
    assert_eq!(
        keyed.iter().map(|o| o.id.get()).collect::<HashSet<_>>(),
        HashSet::from([1001, 1003])
    );
    let found = zd.search_by_external_id(&account_id(1)).await.unwrap();
    assert_eq!(found.len(), 1);
    let found = zd.search_by_name("beta").await.unwrap();
    assert_eq!(
        found.iter().map(|o| o.id.get()).collect::<Vec<_>>(),
        vec![1002]
    );
}

#[tokio::test]
async fn show_many_goes_in_chunks_of_100() {
    let sb = Sandbox::start(json!({"zendesk": {"organizations": organizations(250)}})).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();
    let ids: Vec<OrgId> = (1001..=1250).map(org).collect();
    assert_eq!(zd.show_many(&ids).await.unwrap().len(), 250);
    assert_eq!(
        calls.count(System::Zendesk, "zd.org_show_many", Some("200")),
        3
    );
}

#[tokio::test]
async fn lists_25000_organizations_by_cursor() {
    let sb = Sandbox::start(json!({"zendesk": {"organizations": organizations(25_000)}})).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();
    let ids: Vec<u64> = zd
        .list()
        .map_ok(|o| o.id.get())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(ids.len(), 25_000);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 25_000);
    assert_eq!(
        calls.count(System::Zendesk, "zd.org_list", Some("200")),
        250
    );
    // Resuming from a page's cursor continues after it.
    let mut pages = std::pin::pin!(zd.list_pages(None));
    let first = pages.try_next().await.unwrap().unwrap();
    assert!(first.has_more);
    let resumed: Vec<_> = zd
        .list_pages(first.after_cursor.clone())
        .try_collect()
        .await
        .unwrap();
    let resumed_ids: Vec<u64> = resumed
        .iter()
        .flat_map(|p| p.organizations.iter().map(|o| o.id.get()))
        .collect();
    assert_eq!(resumed_ids.len(), 24_900);
    assert_eq!(resumed_ids[0], ids[100]);
}

#[tokio::test]
async fn a_429_storm_with_retry_after_is_sat_out() {
    let sb = Sandbox::start(json!({"zendesk": {"organizations": organizations(5)}})).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();
    sb.admin
        .zd_post(
            "faults",
            json!({"seed": 3, "endpoints": {"zd.org_show": {"rate_limit_429": 0.4}}}),
        )
        .await;
    for i in 0..8 {
        let o = zd.show(org(1001 + i % 5)).await.unwrap();
        assert_eq!(o.id.get(), 1001 + i % 5);
    }
    let limited = calls.count(System::Zendesk, "zd.org_show", Some("429"));
    assert!(limited > 0, "{:?}", calls.snapshot());
    assert_eq!(calls.count(System::Zendesk, "zd.org_show", Some("200")), 8);
}

#[tokio::test]
async fn a_429_storm_without_retry_after_backs_off_with_jitter() {
    let sb = Sandbox::start(json!({"zendesk": {"organizations": organizations(5)}})).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();
    sb.admin
        .zd_post("switches", json!({"omit_retry_after": true}))
        .await;
    sb.admin
        .zd_post(
            "faults",
            json!({"seed": 11, "default": {"rate_limit_429": 0.5}}),
        )
        .await;
    let ids: Vec<OrgId> = (1001..=1005).map(org).collect();
    for _ in 0..20 {
        assert_eq!(zd.show_many(&ids).await.unwrap().len(), 5);
    }
    assert!(
        calls.count(System::Zendesk, "zd.org_show_many", Some("429")) >= 5,
        "{:?}",
        calls.snapshot()
    );
}

#[tokio::test]
async fn a_storm_that_outlasts_the_retries_is_a_retry_later_error() {
    let sb = Sandbox::start(json!({"zendesk": {"organizations": organizations(5)}})).await;
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    sb.admin
        .zd_post("switches", json!({"omit_retry_after": true}))
        .await;
    sb.admin
        .zd_post("faults", json!({"default": {"rate_limit_429": 1.0}}))
        .await;
    let err = zd.show(org(1001)).await.unwrap_err();
    assert!(
        matches!(err.disposition(), Disposition::Retry { .. }),
        "{err}"
    );
    match err {
        ZendeskError::Api { attempts, .. } => {
            assert_eq!(attempts, sb.zd_config().retry.max_attempts)
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn the_account_rate_limit_429s_are_waited_out() {
    let sb = Sandbox::start(json!({"zendesk": {"organizations": organizations(5)}})).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();
    // 15 requests per 1-second window: 40 calls must wait for windows to reset.
    sb.admin
        .zd_post(
            "switches",
            json!({"rate_limit_per_minute": 15, "rate_window_ms": 1000}),
        )
        .await;
    for _ in 0..40 {
        zd.show(org(1001)).await.unwrap();
    }
    assert_eq!(calls.count(System::Zendesk, "zd.org_show", Some("200")), 40);
    // The real limiter answered 429 with Retry-After at each window's end; each was sat out.
    assert!(calls.count(System::Zendesk, "zd.org_show", Some("429")) >= 1);
}

#[tokio::test]
async fn server_errors_and_dropped_connections_are_retried() {
    let sb = Sandbox::start(json!({"zendesk": {"organizations": organizations(3000)}})).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();
    sb.admin
        .zd_post(
            "faults",
            json!({"seed": 5, "default": {"error_5xx": 0.2, "drop": 0.15}}),
        )
        .await;
    let n = zd.list().try_collect::<Vec<_>>().await.unwrap().len();
    assert_eq!(n, 3000);
    let snapshot = calls.snapshot();
    let failed: u64 = snapshot
        .iter()
        .filter(|(k, _)| k.outcome == "500" || k.outcome == "network")
        .map(|(_, n)| n)
        .sum();
    assert!(failed > 0, "{snapshot:?}");
}

#[tokio::test]
async fn writes_and_the_typed_errors_resolution_acts_on() {
    let scenario = json!({"zendesk": {"organizations": [
        {"id": 1001, "name": "Acme", "external_id": account_id(1)},
    ]}});
    let sb = Sandbox::start(scenario).await;
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    let created = zd
        .create(&json!({"name": "Beta", "external_id": account_id(2), "domain_names": ["beta.example"]}))
        .await
        .unwrap();
    assert_eq!(created.external_id.as_deref(), Some(account_id(2).as_str()));
    let err = zd.create(&json!({"name": "acme"})).await.unwrap_err();
    assert!(
        matches!(
            err,
            ZendeskError::DuplicateValue {
                field: DuplicateField::Name,
                ..
            }
        ),
        "{err}"
    );
    assert!(matches!(err.disposition(), Disposition::Review { .. }));
    let err = zd
        .create(&json!({"name": "Other", "external_id": account_id(1)}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ZendeskError::DuplicateValue {
                field: DuplicateField::ExternalId,
                ..
            }
        ),
        "{err}"
    );

    // create_or_update keyed on external_id: a retried create updates instead of duplicating.
    let body = json!({"name": "Gamma", "external_id": account_id(3), "tags": ["orglink_customer"]});
    let first = zd.create_or_update(&body).await.unwrap();
    let again = zd.create_or_update(&body).await.unwrap();
    assert_eq!(first.organization.id, again.organization.id);
    assert_eq!((first.status, again.status), (201, 200));
    assert!(matches!(
        zd.create_or_update(&json!({"name": "No key"})).await,
        Err(ZendeskError::Config(_))
    ));

    let updated = zd
        .update(
            created.id,
            &json!({"domain_names": ["beta.example", "beta.test"]}),
        )
        .await
        .unwrap();
    assert_eq!(updated.domain_names.len(), 2);
    let err = zd
        .update(org(424242), &json!({"notes": "x"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ZendeskError::RecordNotFound { .. }), "{err}");
}

#[tokio::test]
async fn the_budget_knows_the_update_organization_limit() {
    let sb = Sandbox::start(json!({"zendesk": {"organizations": organizations(2)}})).await;
    let calls = CallLog::new();
    let zd = sb.zendesk(roomy_budget(), calls.clone()).await.unwrap();
    // Update Organization: 5 per minute per organization. The sixth would wait ~12 s, longer
    // than the call may wait, so the budget stops it before Zendesk has to.
    for i in 0..5 {
        zd.update(org(1001), &json!({"notes": format!("n{i}")}))
            .await
            .unwrap();
    }
    let err = zd
        .update(org(1001), &json!({"notes": "n5"}))
        .await
        .unwrap_err();
    match err.disposition() {
        Disposition::Retry { after: Some(after) } => {
            assert!(after > std::time::Duration::from_secs(5), "{after:?}")
        }
        other => panic!("{other:?}"),
    }
    // Another organization has its own budget.
    zd.update(org(1002), &json!({"notes": "x"})).await.unwrap();
    assert_eq!(
        calls.count(System::Zendesk, "zd.org_update", Some("200")),
        6
    );
    assert_eq!(
        calls.count(System::Zendesk, "zd.org_update", Some("refused")),
        1
    );
    assert_eq!(
        calls.count(System::Zendesk, "zd.org_update", Some("429")),
        0
    );
}

#[tokio::test]
async fn create_many_reports_per_item_results() {
    let scenario = json!({"zendesk": {"organizations": [{"id": 1001, "name": "Taken"}]}});
    let sb = Sandbox::start(scenario).await;
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    let mut bodies: Vec<_> = (0..150)
        .map(|i| json!({"name": format!("New {i}"), "external_id": format!("k{i}")}))
        .collect();
    bodies[3] = json!({"name": "Taken"});
    bodies[120] = json!({"name": "New 7"});
    let items = zd.create_many(&bodies).await.unwrap();
    assert_eq!(items.len(), 150);
    assert!(items.iter().enumerate().all(|(i, it)| it.index == i));
    let failed: Vec<usize> = items
        .iter()
        .filter(|i| i.result.is_err())
        .map(|i| i.index)
        .collect();
    assert_eq!(failed, vec![3, 120]);
    let e = items[3].result.clone().unwrap_err();
    assert_eq!(e.error, "DuplicateValue");
    assert!(matches!(e.disposition(), Disposition::Review { .. }));
    let created = zd.show(items[0].result.clone().unwrap()).await.unwrap();
    assert_eq!(created.name, "New 0");

    // update_many with the other failure shape.
    sb.admin
        .zd_post("switches", json!({"job_failure_shape": "success_false"}))
        .await;
    let updates = vec![
        json!({"id": 1001, "notes": "a"}),
        json!({"id": 424242, "notes": "b"}),
        json!({"id": items[0].result.clone().unwrap().get(), "name": "Taken"}),
    ];
    let items = zd.update_many(&updates).await.unwrap();
    assert_eq!(items[0].result, Ok(org(1001)));
    assert_eq!(items[1].result.clone().unwrap_err().error, "RecordNotFound");
    assert!(matches!(
        items[1].result.clone().unwrap_err().disposition(),
        Disposition::GiveUp { .. }
    ));
    assert_eq!(items[2].result.clone().unwrap_err().error, "DuplicateValue");
}

#[tokio::test]
async fn the_incremental_export_runs_to_the_end_of_the_stream() {
    let orgs: Vec<_> = (1..=2500u64)
        .map(|i| {
            json!({"id": 1000 + i, "name": format!("Org {i}"), "created_at": "2024-01-01T00:00:00Z",
                        "updated_at": format!("2024-01-{:02}T00:00:00Z", 1 + i % 28)})
        })
        .collect();
    let sb = Sandbox::start(json!({"zendesk": {"organizations": orgs}})).await;
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    let pages: Vec<_> = zd.incremental(1_700_000_000).try_collect().await.unwrap();
    assert!(pages.len() >= 3, "{} pages", pages.len());
    assert!(pages.last().unwrap().end_of_stream);
    let ids: HashSet<u64> = pages
        .iter()
        .flat_map(|p| p.organizations.iter().map(|o| o.id.get()))
        .collect();
    assert_eq!(ids.len(), 2500);
    // A start_time less than a minute ago is refused by Zendesk: a permanent error, not a loop.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let err = zd
        .incremental(now)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err.disposition(), Disposition::GiveUp { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_incremental_export_with_small_pages_reads_every_change_once() {
    // Seven organizations changed in one second, three in the next, two four seconds later:
    // pages of two end inside a second again and again.
    let seconds = [(0, 7), (1, 3), (5, 2)];
    let mut orgs = Vec::new();
    for (second, count) in seconds {
        for _ in 0..count {
            let id = 2001 + orgs.len() as u64;
            orgs.push(json!({"id": id, "name": format!("Org {id}"),
                "updated_at": format!("2024-02-01T00:00:{second:02}Z")}));
        }
    }
    let sb = Sandbox::start(json!({"zendesk": {"organizations": orgs}})).await;
    sb.admin
        .zd_post(
            "switches",
            json!({"incremental_page_size": 2, "incremental_limit_per_minute": 100}),
        )
        .await;
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    let pages: Vec<_> = zd.incremental(1_700_000_000).try_collect().await.unwrap();
    assert!(pages.last().unwrap().end_of_stream);
    assert!(pages.len() >= 4, "{} pages", pages.len());
    let mut reported: Vec<u64> = pages
        .iter()
        .flat_map(|p| p.organizations.iter().map(|o| o.id.get()))
        .collect();
    reported.sort_unstable();
    // Every organization, each once: the pages Zendesk repeats are dropped by the client.
    assert_eq!(reported, (2001..=2012).collect::<Vec<_>>());

    // Where Zendesk's end_time stays on a second a page cannot hold (the other setting of
    // the simulator's switch), the export ends with an error that asks for a full run
    // instead of asking for the same page forever.
    sb.admin
        .zd_post(
            "switches",
            json!({"incremental_full_second": "repeat_start"}),
        )
        .await;
    // A fresh client: its budget paces the export's 10 calls a minute.
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    let err = zd
        .incremental(1_700_000_000)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(
        matches!(err, ZendeskError::ExportStalled { start_time } if start_time == 1_706_745_600),
        "{err}"
    );
    assert!(
        matches!(err.disposition(), Disposition::Review { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_wrong_subdomain_is_refused() {
    let sb = Sandbox::start(json!({})).await;
    let config = ZendeskConfig {
        subdomain: Some("acme-production".into()),
        ..sb.zd_config()
    };
    let err = ZendeskClient::connect(
        config,
        sb.zd_credentials(),
        &binding(),
        roomy_budget(),
        CallLog::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ZendeskError::WrongSubdomain(_)), "{err}");
    assert!(matches!(err.disposition(), Disposition::Review { .. }));
}

/// `GET /api/v2/account` is undocumented (the simulator's `account_endpoint` switch): where it
/// answers, the subdomain it reports must be the binding's; where it is a 404, the subdomain is
/// checked from configuration alone.
#[tokio::test]
async fn the_subdomain_zendesk_reports_is_checked_where_the_account_endpoint_answers() {
    let zd_opts = ZendeskOptions {
        subdomain: "acme-production".into(),
        ..ZendeskOptions::default()
    };
    let sb = Sandbox::start_with(json!({}), SalesforceOptions::default(), zd_opts).await;

    // Absent (the default): the client connects, having asked once.
    let calls = CallLog::new();
    sb.zendesk(roomy_budget(), calls.clone())
        .await
        .expect("a 404 on the account endpoint is tolerated");
    assert_eq!(calls.count(System::Zendesk, "zd.account", None), 1);

    // Served, reporting another subdomain than the binding's: refused, for review.
    sb.admin
        .zd_post("switches", json!({"account_endpoint": true}))
        .await;
    let err = sb
        .zendesk(roomy_budget(), CallLog::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ZendeskError::WrongSubdomain(_)), "{err}");
    assert!(matches!(err.disposition(), Disposition::Review { .. }));
    assert!(err.to_string().contains("acme-production"), "{err}");

    // Served, reporting the binding's own subdomain: accepted.
    let own = Sandbox::start_with(
        json!({}),
        SalesforceOptions::default(),
        ZendeskOptions {
            subdomain: binding().zendesk_subdomain().as_str().to_string(),
            ..ZendeskOptions::default()
        },
    )
    .await;
    own.admin
        .zd_post("switches", json!({"account_endpoint": true}))
        .await;
    own.zendesk(roomy_budget(), CallLog::new())
        .await
        .expect("the reported subdomain is the binding's");
    // The simulator answered the account endpoint (it did not fall back to the 404).
    assert_eq!(own.admin.zd_get("calls").await["zd.account"]["200"], 1);
}

#[tokio::test]
async fn bad_credentials_are_a_review_not_a_retry() {
    let sb = Sandbox::start(json!({})).await;
    let creds = orglink_shared::credentials::ZendeskCredentials::ApiToken {
        email: ZD_EMAIL.into(),
        api_token: orglink_shared::credentials::Secret::new("not-the-token"),
    };
    let calls = CallLog::new();
    let zd = ZendeskClient::connect(
        sb.zd_config(),
        creds,
        &binding(),
        roomy_budget(),
        calls.clone(),
    )
    .await
    .unwrap();
    let err = zd.show(org(1)).await.unwrap_err();
    assert!(
        matches!(err.disposition(), Disposition::Review { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("not-the-token"));
    assert_eq!(
        calls.count(System::Zendesk, "zd.org_show", None),
        1,
        "a 401 is not retried"
    );
}

#[tokio::test]
async fn organization_fields_and_webhooks_for_setup() {
    let sb = Sandbox::start(json!({})).await;
    let zd = sb.zendesk(roomy_budget(), CallLog::new()).await.unwrap();
    assert!(zd.organization_fields().await.unwrap().is_empty());
    let f = zd
        .create_organization_field(
            &json!({"key": "salesforce_owner_email", "title": "Salesforce owner", "type": "text"}),
        )
        .await
        .unwrap();
    assert_eq!(f["key"], "salesforce_owner_email");
    assert_eq!(zd.organization_fields().await.unwrap().len(), 1);
    let hook = zd
        .create_webhook(&json!({"name": "orglink", "endpoint": "https://intake.example/zendesk", "http_method": "POST",
            "request_format": "json", "status": "active", "subscriptions": ["zen:event-type:organization.created"]}))
        .await
        .unwrap();
    let id = hook["id"].as_str().unwrap();
    let secret = zd.webhook_signing_secret(id).await.unwrap();
    assert!(!secret.expose().is_empty());
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(zd.webhooks().await.unwrap().len(), 1);
    zd.delete_webhook(id).await.unwrap();
    assert!(zd.webhooks().await.unwrap().is_empty());
}
