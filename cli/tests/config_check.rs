//! `orglink config check` reads the integration user's rights as a Salesforce admin tool does
//! (identity URL → PermissionSetAssignment → PermissionSet / ObjectPermissions /
//! FieldPermissions) and the Zendesk token's role (`users/me`), against the sandbox: every
//! check passes on a deployment set up per infra/salesforce, and each missing right fails with
//! a message saying what to grant.

mod support;

use orglink_harness::Sandbox;
use serde_json::{Value, json};
use support::*;

/// Sets Salesforce simulator switches (the defaults first, so each case starts from a user
/// with every right).
fn salesforce_switches(sandbox: &Sandbox, patch: Value) {
    let mut body = json!({
        "integration_user_view_all": true,
        "integration_user_view_all_data": false,
        "integration_user_account_edit": true,
        "integration_user_uneditable_fields": [],
    });
    for (k, v) in patch.as_object().expect("a patch object") {
        body[k] = v.clone();
    }
    let url = format!("{}/_sandbox/switches", sandbox.salesforce);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime
        .block_on(reqwest::Client::new().post(&url).json(&body).send())
        .expect("the sandbox answers")
        .status();
    assert_eq!(status.as_u16(), 200, "switches accepted");
}

/// The lines of one check, `ok` or `FAIL`, by its name.
fn line<'a>(out: &'a str, check: &str) -> Option<&'a str> {
    out.lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
}

#[test]
fn config_check_reads_the_integration_users_rights_and_the_tokens_role() {
    let dir = scratch("config-rights");
    let scenario = dir.join("scenario.json");
    // A Zendesk agent without a custom role, whose e-mail an API token can be sent with.
    std::fs::write(
        &scenario,
        json!({"zendesk": {"users": [
            {"id": 9001, "name": "Support Agent", "email": "agent@example.com", "role": "agent"}
        ]}})
        .to_string(),
    )
    .unwrap();
    let sandbox = Sandbox::start(Some(&scenario)).unwrap_or_else(|e| panic!("{e}"));
    let env = sandbox_env(&sandbox, &sandbox_config(&dir));
    let check = |env: &[(String, String)]| {
        let o = orglink(&["config", "check"], env);
        (o.status.code(), stdout(&o), stderr(&o))
    };

    // Everything granted (what infra/salesforce's permission set gives).
    let (code, out, err) = check(&env);
    assert_eq!(code, Some(0), "{out}{err}");
    let view_all = line(&out, "Salesforce sees every account").expect("view-all check");
    assert!(view_all.starts_with("ok"), "{out}");
    assert!(view_all.contains("Orglink_Integration"), "{view_all}");
    let fields = line(&out, "Salesforce link fields editable").expect("field check");
    for field in [
        "Zendesk_Org_ID__c",
        "Zendesk_Domain__c",
        "Last_Zendesk_Sync_At__c",
        "Zendesk_Sync_Status__c",
    ] {
        assert!(fields.contains(field), "{fields}");
    }
    assert!(
        line(&out, "Zendesk token's user may manage organizations")
            .is_some_and(|l| l.starts_with("ok") && l.contains("admin")),
        "{out}"
    );

    // No View All: the user sees a sharing-filtered subset.
    salesforce_switches(&sandbox, json!({"integration_user_view_all": false}));
    let (code, out, _) = check(&env);
    assert_eq!(code, Some(1), "{out}");
    let failed = line(&out, "Salesforce sees every account").expect("view-all check");
    assert!(failed.starts_with("FAIL"), "{out}");
    assert!(
        failed.contains("View All") && failed.contains("Orglink_Integration"),
        "says what to grant: {failed}"
    );
    assert!(out.contains("1 check(s) failed"), "{out}");

    // View All Data on the profile is enough on its own.
    salesforce_switches(
        &sandbox,
        json!({"integration_user_view_all": false, "integration_user_view_all_data": true}),
    );
    let (code, out, _) = check(&env);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        line(&out, "Salesforce sees every account")
            .is_some_and(|l| l.starts_with("ok") && l.contains("View All Data")),
        "{out}"
    );

    // One link field read-only.
    salesforce_switches(
        &sandbox,
        json!({"integration_user_uneditable_fields": ["Zendesk_Domain__c"]}),
    );
    let (code, out, _) = check(&env);
    assert_eq!(code, Some(1), "{out}");
    let failed = line(&out, "Salesforce may edit Zendesk_Domain__c").expect("field failure");
    assert!(failed.starts_with("FAIL"), "{out}");
    assert!(
        failed.contains("Account.Zendesk_Domain__c") && failed.contains("Orglink_Integration"),
        "{failed}"
    );
    assert!(
        line(&out, "Salesforce may edit Zendesk_Org_ID__c").is_none(),
        "{out}"
    );
    assert!(out.contains("1 check(s) failed"), "{out}");

    // Zendesk: the token sent with an agent's e-mail acts as that agent.
    salesforce_switches(&sandbox, json!({}));
    let agent: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "ORGLINK_ZD_EMAIL" => (k.clone(), "agent@example.com".to_string()),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    let (code, out, _) = check(&agent);
    assert_eq!(code, Some(1), "{out}");
    let failed = line(&out, "Zendesk token's user may manage organizations").expect("role check");
    assert!(failed.starts_with("FAIL"), "{out}");
    assert!(
        failed.contains("agent@example.com is an agent") && failed.contains("admin"),
        "{failed}"
    );
    assert!(
        !out.contains("sandbox-zendesk-token") && !out.contains("consumer-secret"),
        "{out}"
    );
}
