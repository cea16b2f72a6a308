//! The sync worker Lambda function: JSON logs, the AWS wiring once per cold start, then one
//! handler per SQS batch (partial batch failures).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};

use orglink_shared::http::CallLog;
use orglink_sync_worker::aws::{WorkerEnv, from_aws};
use orglink_sync_worker::logging::{filter_from_env, json_subscriber};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing::subscriber::set_global_default(json_subscriber(std::io::stdout, &filter_from_env()))?;
    let env = WorkerEnv::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "sync worker cannot start"))?;
    if env.default_config {
        tracing::warn!(
            "no configuration given (ORGLINK_CONFIG_FILE / ORGLINK_CONFIG_TOML): using the embedded default binding"
        );
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let worker = from_aws(&sdk, &env, CallLog::new())
        .await
        .inspect_err(|e| tracing::error!(error = %e, "sync worker cannot start"))?;
    tracing::info!(
        salesforce_org = worker.config.binding().salesforce_org_id().as_str(),
        zendesk_subdomain = worker.config.binding().zendesk_subdomain().as_str(),
        "sync worker ready"
    );
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline_ms = event.context.deadline as i64;
        worker
            .handle_batch(event.payload, deadline_ms)
            .await
            .map_err(lambda_runtime::Error::from)
            .map(|r: SqsBatchResponse| r)
    }))
    .await
}
