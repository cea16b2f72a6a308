//! orglink's end-to-end suites live in `tests/`: each starts what it needs (moto, the local
//! stack from `infra/template.yaml`, the sandbox) through `orglink-harness` and drives the
//! functions' real handlers over the real AWS adapters. `tests/intake*.rs`: the intake
//! function; `tests/worker*.rs`: the sync worker. The library holds what several suites share.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use orglink_harness::{AwsEnv, Sandbox};
use orglink_reconcile::aws::{AwsReconciler, ReconcileEnv, from_aws};
use orglink_shared::aws::ResourceNames;
use orglink_shared::http::CallLog;

/// The credentials the sandbox accepts, shaped as the deployment's secret holds them.
pub fn sandbox_credentials(sandbox: &Sandbox) -> Value {
    json!({
        "salesforce": {"my_domain_url": sandbox.salesforce, "client_id": "orglink-sandbox-consumer-key",
                       "flow": "client_credentials", "client_secret": "orglink-sandbox-consumer-secret"},
        "zendesk": {"auth": "api_token", "email": "admin@example.com", "api_token": "sandbox-zendesk-token"}
    })
}

/// Writes the sandbox's credentials into the deployment's credentials secret (the worker and
/// reconcile read it at a cold start).
pub async fn put_sandbox_credentials(aws: &AwsEnv, names: &ResourceNames, sandbox: &Sandbox) {
    aws.secrets()
        .put_secret_value()
        .secret_id(&names.secret_id)
        .secret_string(sandbox_credentials(sandbox).to_string())
        .send()
        .await
        .expect("put the credentials secret");
}

/// A function's environment on this stack: every resource name (as the template sets them),
/// then `extra` variables.
pub fn function_env<'a>(
    names: &ResourceNames,
    extra: impl IntoIterator<Item = (&'a str, String)>,
) -> BTreeMap<String, String> {
    names
        .to_env()
        .into_iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// A cold start of the reconcile function through its production wiring (`from_aws`) on this
/// stack, against this sandbox: the credentials secret is written first (the function reads it
/// at start), and `settings` (`ORGLINK_RECONCILE_SETTINGS`, an object) get the sandbox's Zendesk
/// base URL. `calls` counts every Salesforce and Zendesk call.
pub async fn start_reconcile(
    aws: &AwsEnv,
    names: &ResourceNames,
    sandbox: &Sandbox,
    settings: Value,
    calls: CallLog,
) -> AwsReconciler {
    put_sandbox_credentials(aws, names, sandbox).await;
    let mut settings = settings;
    settings["zendesk"]["base_url"] = json!(sandbox.zendesk);
    let env = function_env(
        names,
        [
            (
                orglink_reconcile::settings::SETTINGS_ENV,
                settings.to_string(),
            ),
            ("ORGLINK_DEPLOYMENT", "e2e".into()),
        ],
    );
    let env = ReconcileEnv::from_lookup(|k| env.get(k).cloned()).expect("reconcile's environment");
    from_aws(aws.sdk_config(), &env, calls)
        .await
        .unwrap_or_else(|e| panic!("reconcile starts: {e}"))
}
