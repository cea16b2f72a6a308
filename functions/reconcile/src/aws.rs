//! The production wiring: DynamoDB and SQS adapters, the credentials secret read once per cold
//! start, both clients drawing from the shared rate budget, and the continuation.
//!
//! **Continuation.** The Scheduler fires once; when an invocation nears its deadline it saves
//! its progress and the function invokes *itself* asynchronously (`InvocationType=Event`) with
//! `{"mode": …, "run_id": …}`. Chosen over a message on a queue because no queue feeds this
//! function (the sync queue is the worker's) and an async invoke needs nothing new but one IAM
//! permission (`lambda:InvokeFunction` on the function's own ARN). With reserved concurrency 1
//! the new invocation waits in Lambda's asynchronous queue until this one returns; a failed
//! continuation is retried by Lambda (once) and then lands in the delivery dead-letter queue,
//! and the `reconcile-not-completed` alarm fires as for any run that never completes.

use std::sync::Arc;

use aws_config::SdkConfig;

use orglink_shared::aws::deployment::{config_from_lookup, connect_clients};
use orglink_shared::aws::exceptions::DynamoExceptions;
use orglink_shared::aws::links::DynamoLinks;
use orglink_shared::aws::mirror::DynamoMirror;
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::aws::runs::DynamoRuns;
use orglink_shared::aws::{Deployment, ResourceNames};
use orglink_shared::contract::Config;
use orglink_shared::domain::DomainPolicy;
use orglink_shared::http::{CallLog, RateBudget};

use crate::event::ReconcileEvent;
use crate::review::DynamoLists;
use crate::run::{Ports, Reconciler, Stores};
use crate::settings::{ReconcileSettings, SettingsError};
use crate::summary::MetricsConfig;

pub use orglink_shared::aws::deployment::{CONFIG_FILE_ENV, CONFIG_TOML_ENV, StartError};
/// Set by Lambda: the function to invoke for a continuation.
pub const FUNCTION_NAME_ENV: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// The AWS adapters.
pub struct AwsPorts;

impl Ports for AwsPorts {
    type Mirror = DynamoMirror;
    type Exceptions = DynamoExceptions;
    type Runs = DynamoRuns;
    type Queue = SqsQueue;
    type Links = DynamoLinks;
    type Lists = DynamoLists;
}

pub type AwsReconciler = Reconciler<AwsPorts>;

/// The environment reconcile runs in.
#[derive(Debug, Clone)]
pub struct ReconcileEnv {
    pub names: ResourceNames,
    pub config: Config,
    pub settings: ReconcileSettings,
    pub metrics: MetricsConfig,
    pub default_config: bool,
}

impl ReconcileEnv {
    pub fn from_env() -> Result<Self, StartError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, StartError> {
        let names = ResourceNames::from_lookup(&lookup)?;
        let (config, default_config) = config_from_lookup(&lookup)?;
        let settings = ReconcileSettings::from_json(
            &lookup(crate::settings::SETTINGS_ENV).unwrap_or_default(),
        )?;
        Ok(ReconcileEnv {
            names,
            config,
            settings,
            metrics: MetricsConfig::from_lookup(&lookup),
            default_config,
        })
    }
}

/// The stores over DynamoDB and SQS.
pub fn stores(sdk: &SdkConfig, names: &ResourceNames) -> Stores<AwsPorts> {
    stores_of(&Deployment::new(sdk, names.clone()))
}

/// The stores over these clients (a test counts the requests of a client it built).
pub fn stores_on(
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    names: &ResourceNames,
) -> Stores<AwsPorts> {
    stores_of(&Deployment::on(dynamodb, sqs, names.clone()))
}

/// The stores of this deployment.
pub fn stores_of(deployment: &Deployment) -> Stores<AwsPorts> {
    Stores {
        mirror: deployment.mirror(),
        exceptions: deployment.exceptions(),
        runs: deployment.runs(),
        queue: deployment.queue(),
        links: deployment.links(),
        lists: deployment.lists(),
    }
}

/// Reconcile over the AWS adapters; `calls` counts every Salesforce and Zendesk call.
pub async fn from_aws(
    sdk: &SdkConfig,
    env: &ReconcileEnv,
    calls: CallLog,
) -> Result<AwsReconciler, StartError> {
    let deployment = Deployment::new(sdk, env.names.clone());
    let budget: Arc<dyn RateBudget> = Arc::new(deployment.rate_budget(
        env.settings.salesforce_budget(),
        env.settings.zendesk_budget(),
    ));
    let (salesforce, zendesk) = connect_clients(
        sdk,
        &env.names,
        env.config.binding(),
        (
            env.settings.salesforce.clone(),
            env.settings.zendesk.clone(),
        ),
        budget,
        calls.clone(),
    )
    .await?;
    Ok(Reconciler {
        config: env.config.clone(),
        policy: DomainPolicy::default(),
        settings: env.settings.clone(),
        metrics: env.metrics.clone(),
        salesforce,
        zendesk,
        calls,
        stores: stores_of(&deployment),
    })
}

/// Starts the next invocation of this function with `event`, asynchronously.
pub async fn continue_in_new_invocation(
    lambda: &aws_sdk_lambda::Client,
    function_name: &str,
    event: &ReconcileEvent,
) -> Result<(), String> {
    let payload = serde_json::to_vec(event).expect("an event serializes");
    lambda
        .invoke()
        .function_name(function_name)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .map_err(|e| format!("{}", aws_sdk_lambda::error::DisplayErrorContext(e)))?;
    Ok(())
}

impl From<SettingsError> for StartError {
    fn from(e: SettingsError) -> Self {
        StartError::Settings(e.to_string())
    }
}
