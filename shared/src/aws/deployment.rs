//! One deployment's AWS wiring, built once and shared by the worker, reconcile and the CLI:
//! every DynamoDB / SQS adapter over the deployment's [`ResourceNames`], the shared rate
//! budget in its table, the credentials from its secret, and the configuration TOML the
//! functions read from their environment. Each caller used to repeat this wiring.

use std::sync::Arc;

use aws_config::SdkConfig;

use super::budget::DynamoBudget;
use super::claims::DynamoClaims;
use super::exceptions::DynamoExceptions;
use super::idempotency::{DynamoIdempotency, IdempotencyConfig};
use super::links::DynamoLinks;
use super::lists::DynamoLists;
use super::mirror::DynamoMirror;
use super::names::MissingNames;
use super::queue::SqsQueue;
use super::runs::DynamoRuns;
use super::secrets::SecretsManagerSecret;
use super::{ResourceNames, SecretSource, SharedRateBudget, StoreError};
use crate::contract::{Binding, Config, ConfigError};
use crate::credentials::{Credentials, CredentialsError};
use crate::http::{BudgetConfig, CallLog, RateBudget};
use crate::salesforce::{SalesforceClient, SalesforceConfig};
use crate::zendesk::{ZendeskClient, ZendeskConfig};

/// A path to the deployment's configuration TOML.
pub const CONFIG_FILE_ENV: &str = "ORGLINK_CONFIG_FILE";
/// The configuration TOML itself (used when no file is named).
pub const CONFIG_TOML_ENV: &str = "ORGLINK_CONFIG_TOML";

/// Why the configuration named by the environment cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EnvConfigError {
    #[error("the configuration named by {CONFIG_FILE_ENV} cannot be read: {0}")]
    File(String),
    #[error("the configuration is invalid: {0}")]
    Invalid(#[from] ConfigError),
}

/// The configuration `$ORGLINK_CONFIG_FILE` names, else `$ORGLINK_CONFIG_TOML`, else the
/// embedded default; the flag says whether it is the default (worth a warning in production).
pub fn config_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Config, bool), EnvConfigError> {
    match (lookup(CONFIG_FILE_ENV), lookup(CONFIG_TOML_ENV)) {
        (Some(path), _) if !path.trim().is_empty() => {
            let text = std::fs::read_to_string(path.trim())
                .map_err(|e| EnvConfigError::File(format!("{path}: {e}")))?;
            Ok((Config::from_toml(&text)?, false))
        }
        (_, Some(text)) if !text.trim().is_empty() => Ok((Config::from_toml(&text)?, false)),
        _ => Ok((Config::embedded_default(), true)),
    }
}

/// Why a function (the worker, reconcile) cannot start. Each says what to fix; none carries a
/// secret value.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    MissingNames(#[from] MissingNames),
    #[error("the configuration named by {CONFIG_FILE_ENV} cannot be read: {0}")]
    ConfigFile(String),
    #[error("the configuration is invalid: {0}")]
    Config(#[from] ConfigError),
    /// The function's settings variable is invalid (the text names the variable and the key).
    #[error("{0}")]
    Settings(String),
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

/// Both clients of a function: the credentials read from the deployment's secret, each client
/// connected and checked against the binding, both drawing from `budget`, every call counted
/// in `calls`.
pub async fn connect_clients(
    sdk: &SdkConfig,
    names: &ResourceNames,
    binding: &Binding,
    (salesforce, zendesk): (SalesforceConfig, ZendeskConfig),
    budget: Arc<dyn RateBudget>,
    calls: CallLog,
) -> Result<(SalesforceClient, ZendeskClient), StartError> {
    let creds = credentials_from_secret(sdk, &names.secret_id)
        .await
        .map_err(|e| StartError::Secret(e.to_string()))?;
    let salesforce = SalesforceClient::connect(
        salesforce,
        creds.salesforce,
        binding,
        budget.clone(),
        calls.clone(),
    )
    .await
    .map_err(|e| StartError::Salesforce(e.to_string()))?;
    let zendesk = ZendeskClient::connect(zendesk, creds.zendesk, binding, budget, calls)
        .await
        .map_err(|e| StartError::Zendesk(e.to_string()))?;
    Ok((salesforce, zendesk))
}

/// Why the credentials secret gives no credentials. Neither carries the secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretCredentialsError {
    /// Secrets Manager refused or failed (retry, or fix the secret id / permission).
    #[error(transparent)]
    Read(StoreError),
    /// The secret's JSON is not orglink's credentials shape (fix the secret).
    #[error(transparent)]
    Shape(CredentialsError),
}

/// Reads and parses the credentials secret `secret_id`.
pub async fn credentials_from_secret(
    sdk: &SdkConfig,
    secret_id: &str,
) -> Result<Credentials, SecretCredentialsError> {
    let secret = SecretsManagerSecret::new(aws_sdk_secretsmanager::Client::new(sdk), secret_id)
        .fetch()
        .await
        .map_err(SecretCredentialsError::Read)?;
    Credentials::from_secret_json(secret.expose()).map_err(SecretCredentialsError::Shape)
}

/// The adapters of one deployment over one DynamoDB and one SQS client.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub names: ResourceNames,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Deployment {
    pub fn new(sdk: &SdkConfig, names: ResourceNames) -> Self {
        Self::on(
            aws_sdk_dynamodb::Client::new(sdk),
            aws_sdk_sqs::Client::new(sdk),
            names,
        )
    }

    /// Over these clients (a test counts the requests of a client it built).
    pub fn on(
        dynamodb: aws_sdk_dynamodb::Client,
        sqs: aws_sdk_sqs::Client,
        names: ResourceNames,
    ) -> Self {
        Deployment {
            names,
            dynamodb,
            sqs,
        }
    }

    pub fn idempotency(&self, config: IdempotencyConfig) -> DynamoIdempotency {
        DynamoIdempotency::new(
            self.dynamodb.clone(),
            self.names.idempotency_table.clone(),
            config,
        )
    }

    pub fn links(&self) -> DynamoLinks {
        DynamoLinks::new(self.dynamodb.clone(), self.names.links_table.clone())
    }

    pub fn claims(&self) -> DynamoClaims {
        DynamoClaims::new(self.dynamodb.clone(), self.names.claims_table.clone())
    }

    pub fn mirror(&self) -> DynamoMirror {
        DynamoMirror::new(self.dynamodb.clone(), self.names.org_mirror_table.clone())
    }

    pub fn exceptions(&self) -> DynamoExceptions {
        DynamoExceptions::new(self.dynamodb.clone(), self.names.exceptions_table.clone())
    }

    /// The operator lists (shared domains, ignored accounts), kept beside the exception rows.
    pub fn lists(&self) -> DynamoLists {
        DynamoLists::new(self.dynamodb.clone(), self.names.exceptions_table.clone())
    }

    pub fn runs(&self) -> DynamoRuns {
        DynamoRuns::new(self.dynamodb.clone(), self.names.runs_table.clone())
    }

    pub fn queue(&self) -> SqsQueue {
        SqsQueue::new(
            self.sqs.clone(),
            self.names.sync_queue_url.clone(),
            self.names.sync_dlq_url.clone(),
        )
    }

    /// The rate budget every deployed function shares, in the rate budget table.
    pub fn rate_budget(
        &self,
        salesforce: BudgetConfig,
        zendesk: BudgetConfig,
    ) -> SharedRateBudget<DynamoBudget> {
        SharedRateBudget::new(
            Arc::new(DynamoBudget::new(
                self.dynamodb.clone(),
                self.names.rate_budget_table.clone(),
            )),
            salesforce,
            zendesk,
        )
    }
}

/// A function's tunables from its settings variable's JSON text: every key optional (the
/// type's `#[serde(default)]`), empty text meaning the defaults. Each function validates after.
pub fn settings_from_json<T: Default + serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, serde_json::Error> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    serde_json::from_str(text)
}
