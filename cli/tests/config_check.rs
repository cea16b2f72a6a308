//! `orglink config check` reads the integration user's rights as a real org lets it: edit
//! rights and the link fields from `describe` of Account (the running user's own field-level
//! security; no setup permission needed), View All from its permission sets
//! (PermissionSetAssignment → PermissionSet / ObjectPermissions) only where the session may
//! read them — the integration user has no View Setup and Configuration, so by default the
//! simulator refuses those queries as a real org does and View All is a WARN (exit 3), never a
//! false failure. An admin's run (`--integration-user`) reads the named user's permission sets.
//! Zendesk: the token's role (`users/me`). Against the sandbox: each missing right fails with a
//! message saying what to grant.

mod support;

use orglink_harness::Sandbox;
use serde_json::{Value, json};
use support::*;

/// Sets Salesforce simulator switches (the defaults first, so each case starts from a user
/// with every right infra/salesforce grants and, like a real integration user, no View Setup).
fn salesforce_switches(sandbox: &Sandbox, patch: Value) {
    let mut body = json!({
        "integration_user_view_all": true,
        "integration_user_view_all_data": false,
        "integration_user_account_edit": true,
        "integration_user_uneditable_fields": [],
        "integration_user_view_setup": false,
        "integration_user_hidden_fields": [],
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

/// The check lines that failed.
fn failures(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("FAIL")).collect()
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

    const LINK_FIELDS: [&str; 4] = [
        "Zendesk_Org_ID__c",
        "Zendesk_Domain__c",
        "Last_Zendesk_Sync_At__c",
        "Zendesk_Sync_Status__c",
    ];

    // The real integration user: everything infra/salesforce grants, no View Setup. Edit
    // rights come from describe; View All cannot be read, which is a warning, not a failure.
    let (code, out, err) = check(&env);
    assert_eq!(code, Some(3), "{out}{err}");
    assert!(failures(&out).is_empty(), "{out}");
    let fields = line(&out, "Salesforce link fields editable").expect("field check");
    assert!(
        fields.starts_with("ok") && fields.contains("describe"),
        "{fields}"
    );
    for field in LINK_FIELDS {
        assert!(fields.contains(field), "{fields}");
    }
    assert!(
        line(&out, "Salesforce may edit accounts").is_some_and(|l| l.starts_with("ok")),
        "{out}"
    );
    let view_all = line(&out, "Salesforce sees every account").expect("view-all check");
    assert!(view_all.starts_with("WARN"), "{out}");
    assert!(
        view_all.contains("View Setup and Configuration")
            && view_all.contains("INVALID_TYPE")
            && view_all.contains("orglink config check --integration-user 005"),
        "names the refusal and the remedy: {view_all}"
    );
    assert!(out.contains("could not be verified"), "{out}");
    assert!(
        line(&out, "Zendesk token's user may manage organizations")
            .is_some_and(|l| l.starts_with("ok") && l.contains("admin")),
        "{out}"
    );

    // One link field read-only: caught through describe, without View Setup.
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
    assert_eq!(failures(&out).len(), 1, "{out}");
    assert!(out.contains("1 check(s) failed"), "{out}");

    // A link field missing from the org (or hidden from the user): deploy infra/salesforce.
    salesforce_switches(
        &sandbox,
        json!({"integration_user_hidden_fields": ["Last_Zendesk_Sync_At__c"]}),
    );
    let (code, out, _) = check(&env);
    assert_eq!(code, Some(1), "{out}");
    let failed = line(&out, "Salesforce link field Last_Zendesk_Sync_At__c").expect("missing");
    assert!(
        failed.starts_with("FAIL") && failed.contains("deploy infra/salesforce"),
        "{failed}"
    );
    assert_eq!(failures(&out).len(), 1, "{out}");

    // With View Setup (an admin-like integration user): every check passes, View All read
    // from the Orglink_Integration permission set.
    salesforce_switches(&sandbox, json!({"integration_user_view_setup": true}));
    let (code, out, err) = check(&env);
    assert_eq!(code, Some(0), "{out}{err}");
    let view_all = line(&out, "Salesforce sees every account").expect("view-all check");
    assert!(view_all.starts_with("ok"), "{out}");
    assert!(view_all.contains("Orglink_Integration"), "{view_all}");
    assert!(out.contains("all checks passed"), "{out}");

    // With View Setup and no View All: the user sees a sharing-filtered subset.
    salesforce_switches(
        &sandbox,
        json!({"integration_user_view_setup": true, "integration_user_view_all": false}),
    );
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
        json!({"integration_user_view_setup": true, "integration_user_view_all": false,
            "integration_user_view_all_data": true}),
    );
    let (code, out, _) = check(&env);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        line(&out, "Salesforce sees every account")
            .is_some_and(|l| l.starts_with("ok") && l.contains("View All Data")),
        "{out}"
    );

    // An admin's run for another user: that user's permission sets decide, not describe
    // (which speaks for the signed-in user). A user with nothing assigned fails each right.
    let other = "005SB0000000099";
    let o = orglink(&["config", "check", "--integration-user", other], &env);
    let (code, out) = (o.status.code(), stdout(&o));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains(&format!("integration user {other}; assigned: nothing")),
        "{out}"
    );
    for what in [
        "Salesforce sees every account",
        "Salesforce may edit accounts",
        "Salesforce may edit Zendesk_Org_ID__c",
    ] {
        assert!(
            line(&out, what).is_some_and(|l| l.starts_with("FAIL") && l.contains(other)),
            "{what}: {out}"
        );
    }
    assert!(
        line(&out, "Salesforce link fields deployed").is_some_and(|l| l.starts_with("ok")),
        "{out}"
    );
    let o = orglink(
        &["config", "check", "--integration-user", "001SB0000000001"],
        &env,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("is not a Salesforce user id"),
        "{}",
        stdout(&o)
    );

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
