//! The intake Lambda function: JSON logs, the AWS wiring once per cold start, then one
//! handler for every invocation (function URL requests and EventBridge events alike).

use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

use orglink_intake::logging::{filter_from_env, json_subscriber};
use orglink_intake::{Environment, aws};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing::subscriber::set_global_default(json_subscriber(std::io::stdout, &filter_from_env()))?;
    let env = Environment::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "intake cannot start"))?;
    if env.default_config {
        tracing::warn!(
            "no configuration given (ORGLINK_CONFIG_FILE / ORGLINK_CONFIG_TOML): using the embedded default binding"
        );
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let intake = aws::from_aws(&sdk, &env)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "intake cannot start"))?;
    tracing::info!(
        salesforce_org = intake.config.binding().salesforce_org_id().as_str(),
        zendesk_webhooks = intake.secrets.zendesk_webhook.is_some(),
        "intake ready"
    );
    let intake = &intake;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        intake
            .handle_invocation(event.payload)
            .await
            .map_err(lambda_runtime::Error::from)
    }))
    .await
}
