//! The reconcile Lambda function: JSON logs, the AWS wiring once per cold start, then per
//! invocation one step of the run; a step that hands over invokes the function again
//! (asynchronously) with the continuation event, and a finished run prints its EMF metrics.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lambda_runtime::{LambdaEvent, service_fn};
use orglink_shared::logging::{filter_from_env, json_subscriber};
use serde_json::{Value, json};

use orglink_reconcile::aws::{self, FUNCTION_NAME_ENV, ReconcileEnv};
use orglink_reconcile::{Limits, ReconcileEvent, Step};
use orglink_shared::http::CallLog;

/// Converts Lambda's deadline (epoch ms) into an `Instant`.
fn deadline_instant(deadline_ms: u64) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing::subscriber::set_global_default(json_subscriber(std::io::stdout, &filter_from_env()))?;
    let env = ReconcileEnv::from_env()
        .inspect_err(|e| tracing::error!(error = %e, "reconcile cannot start"))?;
    if env.default_config {
        tracing::warn!(
            "no configuration given (ORGLINK_CONFIG_FILE / ORGLINK_CONFIG_TOML): using the embedded default binding"
        );
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let reconciler = aws::from_aws(&sdk, &env, CallLog::new())
        .await
        .inspect_err(|e| tracing::error!(error = %e, "reconcile cannot start"))?;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let function_name = std::env::var(FUNCTION_NAME_ENV).unwrap_or_default();
    let reserve = Duration::from_secs(env.settings.reserve_secs);
    let (reconciler, lambda, function_name) = (&reconciler, &lambda, function_name.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let input = ReconcileEvent::from_json(&event.payload)?;
        let deadline = deadline_instant(event.context.deadline);
        // A short function timeout still leaves most of each invocation for work.
        let reserve = reserve.min(deadline.saturating_duration_since(Instant::now()) / 3);
        let limits = Limits::deadline(deadline, reserve);
        match reconciler.invoke(&input, &limits).await? {
            Step::Continue(next) => {
                aws::continue_in_new_invocation(lambda, function_name, &next).await?;
                Ok::<Value, lambda_runtime::Error>(json!({"continued": next}))
            }
            Step::Finished(outcome) => {
                // EMF lines go to stdout, one JSON document per line (CloudWatch reads them).
                for line in &outcome.metrics {
                    println!("{line}");
                }
                if let Some(next) = &outcome.then {
                    // A full run was refused while this one held the lease: start it now.
                    aws::continue_in_new_invocation(lambda, function_name, next).await?;
                }
                Ok(serde_json::to_value(&outcome.summary)?)
            }
        }
    }))
    .await
}
