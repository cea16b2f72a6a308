//! The production wiring: DynamoDB and SQS adapters, the credentials secret read once per cold
//! start, and both clients drawing from the shared rate budget in DynamoDB. `main` and the
//! end-to-end tests build the worker through [`from_aws`], so the tests run the deployed wiring.

use std::sync::Arc;

use aws_config::SdkConfig;

use orglink_shared::aws::claims::DynamoClaims;
use orglink_shared::aws::deployment::{
    EnvConfigError, config_from_lookup, credentials_from_secret,
};
use orglink_shared::aws::exceptions::DynamoExceptions;
use orglink_shared::aws::idempotency::{DynamoIdempotency, IdempotencyConfig};
use orglink_shared::aws::links::DynamoLinks;
use orglink_shared::aws::lists::DynamoLists;
use orglink_shared::aws::mirror::DynamoMirror;
use orglink_shared::aws::names::MissingNames;
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::aws::{Deployment, ResourceNames};
use orglink_shared::contract::{Config, ConfigError};
use orglink_shared::http::{CallLog, RateBudget};
use orglink_shared::metrics::MetricsConfig;
use orglink_shared::salesforce::SalesforceClient;
use orglink_shared::zendesk::ZendeskClient;

use crate::metrics::Metrics;
use crate::settings::{SettingsError, WorkerSettings};
use crate::{Ports, Stores, Worker};

pub use orglink_shared::aws::deployment::{CONFIG_FILE_ENV, CONFIG_TOML_ENV};

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

/// Why the worker cannot start. Each says what to fix; none carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    MissingNames(#[from] MissingNames),
    #[error("the configuration named by {CONFIG_FILE_ENV} cannot be read: {0}")]
    ConfigFile(String),
    #[error("the configuration is invalid: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("the credentials secret cannot be read: {0}")]
    Secret(String),
    #[error("cannot connect to Salesforce: {0}")]
    Salesforce(String),
    #[error("cannot connect to Zendesk: {0}")]
    Zendesk(String),
}

impl From<EnvConfigError> for StartError {
    fn from(e: EnvConfigError) -> Self {
        match e {
            EnvConfigError::File(detail) => StartError::ConfigFile(detail),
            EnvConfigError::Invalid(e) => StartError::Config(e),
        }
    }
}

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
    let creds = credentials_from_secret(sdk, &env.names.secret_id)
        .await
        .map_err(|e| StartError::Secret(e.to_string()))?;
    let deployment = Deployment::new(sdk, env.names.clone());
    // EMF on stdout, where CloudWatch Logs reads it.
    let metrics = Metrics::new(env.metrics.clone(), Arc::new(|line| println!("{line}")));
    let budget: Arc<dyn RateBudget> = Arc::new(deployment.rate_budget(
        env.settings.salesforce_budget(),
        env.settings.zendesk_budget(),
    ));
    let budget = metrics.counting(budget);
    let binding = env.config.binding();
    let salesforce = SalesforceClient::connect(
        env.settings.salesforce.clone(),
        creds.salesforce,
        binding,
        budget.clone(),
        calls.clone(),
    )
    .await
    .map_err(|e| StartError::Salesforce(e.to_string()))?;
    let zendesk = ZendeskClient::connect(
        env.settings.zendesk.clone(),
        creds.zendesk,
        binding,
        budget,
        calls,
    )
    .await
    .map_err(|e| StartError::Zendesk(e.to_string()))?;
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
