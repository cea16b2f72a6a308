//! A legacy organization's domain as a person typed it in Zendesk (a trailing dot, capitals,
//! spaces) is the account's domain all the same: the worker finds it through the filled org
//! mirror and links it. The chaos run's 20 wrong links (docs/reliability.md, "Chaos") were
//! accounts whose legacy org carried `domain.tld.`: the mirror kept the dot, the worker's
//! lookup by `domain.tld` found nothing, and it created a second organization.

mod support;

use orglink_shared::aws::OrgMirror;
use orglink_shared::aws::mirror::MirroredOrg;
use orglink_shared::contract::EventKind;
use orglink_shared::http::System;
use orglink_shared::ids::OrgId;
use orglink_shared::resolution::Rule;
use orglink_sync_worker::sync::MessageResult;
use orglink_sync_worker::{Action, Outcome};
use serde_json::json;
use support::*;

/// (account, its website, the legacy org's id and its `domain_names` as typed in Zendesk).
const CASES: [(&str, &str, u64, &str); 3] = [
    (
        "001SB0000000001YAA",
        "https://acmewidgets.com",
        501,
        "acmewidgets.com.",
    ),
    (
        "001SB0000000002YAA",
        "https://www.globex-corp.io/about",
        502,
        "GLOBEX-CORP.IO.",
    ),
    (
        "001SB0000000003YAA",
        "https://initech.co.jp",
        503,
        " Initech.co.jp ",
    ),
];

#[tokio::test]
async fn a_legacy_org_whose_domain_is_typed_with_a_trailing_dot_is_linked_not_duplicated() {
    let accounts: Vec<_> = CASES
        .iter()
        .enumerate()
        .map(|(n, (id, web, _, _))| customer(id, &format!("Customer {n}"), web))
        .collect();
    // Names unlike the accounts': only the domain can find these organizations.
    let orgs: Vec<_> = CASES
        .iter()
        .map(|(_, _, org, typed)| {
            json!({"id": org, "name": format!("Legacy {org}"), "external_id": null, "domain_names": [typed]})
        })
        .collect();
    let env = Env::start(json!({
        "salesforce": {"accounts": accounts},
        "zendesk": {"organizations": orgs}
    }))
    .await;
    // The mirror as a full listing leaves it (the marker is set by `Env::start`).
    for o in env.admin.orgs().await {
        let typed: Vec<String> = serde_json::from_value(o["domain_names"].clone()).unwrap();
        let org = MirroredOrg::new(
            OrgId::new(o["id"].as_u64().unwrap()).unwrap(),
            o["name"].as_str().unwrap(),
            None,
            typed,
            None,
        );
        env.worker.stores.mirror.upsert(&org).await.unwrap();
    }

    for (n, (account, _, org, typed)) in CASES.iter().enumerate() {
        let out = match env
            .sync(&request(account, EventKind::ClosedWon, &format!("e-{n}")))
            .await
        {
            MessageResult::Done(o) => o,
            other => panic!("{typed:?}: expected a finished message, got {other:?}"),
        };
        assert!(
            matches!(out, Outcome::Succeeded { org: o, rule: Rule::UniqueKeylessDomain, action: Action::Linked, .. } if o.get() == *org),
            "{typed:?}: {out:?}"
        );
        assert_eq!(
            env.account(account).await["Zendesk_Org_ID__c"],
            org.to_string(),
            "{typed:?}"
        );
    }
    let orgs = env.admin.orgs().await;
    assert_eq!(orgs.len(), CASES.len(), "no organization created: {orgs:?}");
    for (account, _, org, _) in CASES {
        let o = orgs.iter().find(|o| o["id"] == org).expect("still there");
        assert_eq!(o["external_id"], account);
    }
    assert_eq!(env.count(System::Zendesk, "zd.org_create_or_update"), 0);
}
