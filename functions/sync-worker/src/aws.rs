//! The production wiring: DynamoDB and SQS adapters, the credentials secret read once per cold
//! start, and both clients drawing from the shared rate budget in DynamoDB. `main` and the
//! end-to-end tests build the worker through [`from_aws`], so the tests run the deployed wiring.

use std::sync::Arc;

use aws_config::SdkConfig;

use orglink_shared::aws::claims::DynamoClaims;
use orglink_shared::aws::deployment::{config_from_lookup, connect_clients};
use orglink_shared::aws::exceptions::DynamoExceptions;
use orglink_shared::aws::idempotency::{DynamoIdempotency, IdempotencyConfig};
use orglink_shared::aws::links::DynamoLinks;
use orglink_shared::aws::lists::DynamoLists;
use orglink_shared::aws::mirror::DynamoMirror;
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::aws::{Deployment, ResourceNames};
use orglink_shared::contract::Config;
use orglink_shared::http::{CallLog, RateBudget};
use orglink_shared::metrics::MetricsConfig;

use crate::metrics::Metrics;
use crate::settings::{SettingsError, WorkerSettings};
use crate::{Ports, Stores, Worker};

pub use orglink_shared::aws::deployment::{CONFIG_FILE_ENV, CONFIG_TOML_ENV, StartError};

/// The AWS adapters.
pub struct AwsPorts;

impl Ports for AwsPorts {
    type Idempotency = DynamoIdempotency;
    type Links = DynamoLinks;
    type Claims = DynamoClaims;
    type Mirror = DynamoMirror;
    type Exceptions = DynamoExceptions;
    type Queue = SqsQueue;
    type Lists = DynamoLists;
}

pub type AwsWorker = Worker<AwsPorts>;

/// The environment the worker runs in.
#[derive(Debug, Clone)]
pub struct WorkerEnv {
    pub names: ResourceNames,
    pub config: Config,
    pub settings: WorkerSettings,
    /// `ORGLINK_METRICS_NAMESPACE`, `ORGLINK_DEPLOYMENT`.
    pub metrics: MetricsConfig,
    /// Whether the configuration is the embedded default (worth a warning in production).
    pub default_config: bool,
}

impl WorkerEnv {
    pub fn from_env() -> Result<WorkerEnv, StartError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<WorkerEnv, StartError> {
        let names = ResourceNames::from_lookup(&lookup)?;
        let (config, default_config) = config_from_lookup(&lookup)?;
        let settings =
            WorkerSettings::from_json(&lookup(crate::settings::SETTINGS_ENV).unwrap_or_default())?;
        Ok(WorkerEnv {
            names,
            config,
            settings,
            metrics: MetricsConfig::from_lookup(&lookup),
            default_config,
        })
    }
}

/// The worker over the AWS adapters; `calls` counts every Salesforce and Zendesk call.
pub async fn from_aws(
    sdk: &SdkConfig,
    env: &WorkerEnv,
    calls: CallLog,
) -> Result<AwsWorker, StartError> {
    let deployment = Deployment::new(sdk, env.names.clone());
    // EMF on stdout, where CloudWatch Logs reads it.
    let metrics = Metrics::new(env.metrics.clone(), Arc::new(|line| println!("{line}")));
    let budget: Arc<dyn RateBudget> = Arc::new(deployment.rate_budget(
        env.settings.salesforce_budget(),
        env.settings.zendesk_budget(),
    ));
    let budget = metrics.counting(budget);
    let (salesforce, zendesk) = connect_clients(
        sdk,
        &env.names,
        env.config.binding(),
        (
            env.settings.salesforce.clone(),
            env.settings.zendesk.clone(),
        ),
        budget,
        calls,
    )
    .await?;
    let stores = Stores::<AwsPorts> {
        idempotency: deployment.idempotency(IdempotencyConfig::default()),
        links: deployment.links(),
        claims: deployment.claims(),
        mirror: deployment.mirror(),
        exceptions: deployment.exceptions(),
        lists: deployment.lists(),
        queue: deployment.queue(),
    };
    Ok(Worker::new(
        env.config.clone(),
        env.settings.clone(),
        salesforce,
        zendesk,
        stores,
    )
    .with_metrics(metrics))
}

impl From<SettingsError> for StartError {
    fn from(e: SettingsError) -> Self {
        StartError::Settings(e.to_string())
    }
}
