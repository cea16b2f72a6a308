//! What the operator commands share: the configuration (file or environment), the
//! credentials (environment or the deployment's secret), the two API clients, and the AWS
//! state (resource names from the environment, as the functions read them).
//!
//! Everything an operator must set is named in `docs/configuration.md`; every error here says
//! which variable or file to fix, never a secret's value.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use orglink_shared::aws::deployment::{SecretCredentialsError, credentials_from_secret};
use orglink_shared::aws::exceptions::DynamoExceptions;
use orglink_shared::aws::links::DynamoLinks;
use orglink_shared::aws::names::MissingNames;
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::aws::{Deployment, ResourceNames, StoreError};
use orglink_shared::contract::{Config, ConfigError};
use orglink_shared::credentials::{Credentials, CredentialsError};
use orglink_shared::http::{BudgetConfig, CallLog, LocalBudget, System};
use orglink_shared::salesforce::{SalesforceClient, SalesforceConfig, SalesforceError};
use orglink_shared::zendesk::{ZendeskClient, ZendeskConfig, ZendeskError};

/// A path to the deployment's configuration TOML (the functions read the same variable).
pub const CONFIG_FILE_ENV: &str = "ORGLINK_CONFIG_FILE";
/// The configuration TOML itself, when no file is named.
pub const CONFIG_TOML_ENV: &str = "ORGLINK_CONFIG_TOML";
/// Local only: the Zendesk base URL (the sandbox's `http://127.0.0.1:PORT`). In production
/// leave it unset: the URL is `https://{subdomain}.zendesk.com` from `[binding]`.
pub const ZENDESK_URL_ENV: &str = "ORGLINK_ZD_BASE_URL";
/// The credentials secret (the same variable the functions read).
pub const SECRET_ID_ENV: &str = "ORGLINK_SECRET_ID";

/// Options every operator command takes.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// The deployment's configuration TOML. Default: $ORGLINK_CONFIG_FILE, then
    /// $ORGLINK_CONFIG_TOML, then the embedded default (bound to the local sandbox).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// What stops an operator command; each says what to do next.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(
        "cannot read the configuration file {path}: {source} (set --config or {CONFIG_FILE_ENV})"
    )]
    ConfigRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the configuration {origin} is invalid: {source}")]
    Config { origin: String, source: ConfigError },
    #[error(
        "no credentials: {0}. Set ORGLINK_CREDENTIALS_JSON or the ORGLINK_SF_*/ORGLINK_ZD_* variables, or {SECRET_ID_ENV} to read the deployment's secret (docs/configuration.md)"
    )]
    Credentials(CredentialsError),
    #[error("the credentials secret {secret_id} cannot be read: {source}")]
    Secret {
        secret_id: String,
        source: StoreError,
    },
    #[error("Salesforce: {0}")]
    Salesforce(#[from] SalesforceError),
    #[error("Zendesk: {0}")]
    Zendesk(#[from] ZendeskError),
    #[error("{0} (these commands read orglink's DynamoDB tables and SQS queues)")]
    Names(#[from] MissingNames),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Review(#[from] orglink_reconcile::review::ReviewError),
    #[error("cannot write {what}: {source}")]
    Write {
        what: String,
        source: std::io::Error,
    },
}

impl OpsError {
    pub fn write(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OpsError {
        let what = what.into();
        move |source| OpsError::Write { what, source }
    }
}

/// Runs an async command on a fresh runtime and turns its result into the process's exit
/// code: the command's own code, or 2 with the error on standard error.
pub fn run<F>(command: F) -> ExitCode
where
    F: std::future::Future<Output = Result<ExitCode, OpsError>>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("orglink: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(command) {
        Ok(code) => code,
        Err(OpsError::Write { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("orglink: {e}");
            ExitCode::from(2)
        }
    }
}

/// Where the configuration came from, for `config check` and messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    File(PathBuf),
    Environment,
    EmbeddedDefault,
}

impl std::fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigOrigin::File(p) => write!(f, "file {}", p.display()),
            ConfigOrigin::Environment => write!(f, "${CONFIG_TOML_ENV}"),
            ConfigOrigin::EmbeddedDefault => f.write_str("embedded default"),
        }
    }
}

/// Reads the configuration: `--config`, else `$ORGLINK_CONFIG_FILE`, else
/// `$ORGLINK_CONFIG_TOML`, else the embedded default.
pub fn load_config(flag: Option<&Path>) -> Result<(Config, ConfigOrigin), OpsError> {
    let env_file = std::env::var_os(CONFIG_FILE_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(path) = flag.map(Path::to_path_buf).or(env_file) {
        let text = std::fs::read_to_string(&path).map_err(|source| OpsError::ConfigRead {
            path: path.clone(),
            source,
        })?;
        let origin = ConfigOrigin::File(path);
        return Config::from_toml(&text)
            .map(|c| (c, origin.clone()))
            .map_err(|source| OpsError::Config {
                origin: origin.to_string(),
                source,
            });
    }
    if let Some(text) = std::env::var(CONFIG_TOML_ENV)
        .ok()
        .filter(|t| !t.trim().is_empty())
    {
        return Config::from_toml(&text)
            .map(|c| (c, ConfigOrigin::Environment))
            .map_err(|source| OpsError::Config {
                origin: ConfigOrigin::Environment.to_string(),
                source,
            });
    }
    Ok((Config::embedded_default(), ConfigOrigin::EmbeddedDefault))
}

/// Where the credentials came from (never what they are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsOrigin {
    Environment,
    Secret(String),
}

/// Credentials from the environment, else from the secret `$ORGLINK_SECRET_ID` names.
pub async fn load_credentials() -> Result<(Credentials, CredentialsOrigin), OpsError> {
    match Credentials::from_env() {
        Ok(c) => Ok((c, CredentialsOrigin::Environment)),
        Err(env_error) => {
            let Some(secret_id) = std::env::var(SECRET_ID_ENV).ok().filter(|s| !s.is_empty())
            else {
                return Err(OpsError::Credentials(env_error));
            };
            let creds = credentials_from_secret(&aws_sdk().await, &secret_id)
                .await
                .map_err(|e| match e {
                    SecretCredentialsError::Read(source) => OpsError::Secret {
                        secret_id: secret_id.clone(),
                        source,
                    },
                    SecretCredentialsError::Shape(e) => OpsError::Credentials(e),
                })?;
            Ok((creds, CredentialsOrigin::Secret(secret_id)))
        }
    }
}

/// Both clients, connected and checked against `[binding]`, drawing from one process-local
/// budget, with one call log.
pub struct Clients {
    pub salesforce: SalesforceClient,
    pub zendesk: ZendeskClient,
    pub calls: CallLog,
}

impl Clients {
    pub async fn connect(config: &Config, creds: Credentials) -> Result<Clients, OpsError> {
        let calls = CallLog::new();
        // An operator command takes a modest share, leaving room for the deployed functions.
        let budget = Arc::new(LocalBudget::new(
            BudgetConfig::salesforce(600, 5000),
            BudgetConfig::zendesk(700, 30),
        ));
        let salesforce = SalesforceClient::connect(
            SalesforceConfig::default(),
            creds.salesforce,
            config.binding(),
            budget.clone(),
            calls.clone(),
        )
        .await?;
        let zendesk_config = ZendeskConfig {
            base_url: std::env::var(ZENDESK_URL_ENV)
                .ok()
                .filter(|u| !u.is_empty()),
            ..ZendeskConfig::default()
        };
        let zendesk = ZendeskClient::connect(
            zendesk_config,
            creds.zendesk,
            config.binding(),
            budget,
            calls.clone(),
        )
        .await?;
        Ok(Clients {
            salesforce,
            zendesk,
            calls,
        })
    }

    /// Calls sent to each system so far.
    pub fn sent(&self) -> (u64, u64) {
        (
            self.calls.sent(System::Salesforce),
            self.calls.sent(System::Zendesk),
        )
    }
}

/// Loads the configuration and credentials and connects both clients.
pub async fn connect(common: &Common) -> Result<(Config, Clients), OpsError> {
    let (config, _) = load_config(common.config.as_deref())?;
    let (creds, _) = load_credentials().await?;
    let clients = Clients::connect(&config, creds).await?;
    Ok((config, clients))
}

/// The AWS SDK configuration from the environment (`AWS_ENDPOINT_URL` reaches moto locally).
pub async fn aws_sdk() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// orglink's state: tables and queues named by the environment, as the functions have them.
pub struct State {
    deployment: Deployment,
}

impl State {
    pub async fn from_env() -> Result<State, OpsError> {
        let names = ResourceNames::from_env()?;
        Ok(State {
            deployment: Deployment::new(&aws_sdk().await, names),
        })
    }

    pub fn queue(&self) -> SqsQueue {
        self.deployment.queue()
    }

    pub fn exceptions(&self) -> DynamoExceptions {
        self.deployment.exceptions()
    }

    /// The operator lists (shared domains, ignored accounts) kept beside the exception rows.
    pub fn review_lists(&self) -> orglink_reconcile::review::DynamoLists {
        self.deployment.lists()
    }

    pub fn links(&self) -> DynamoLinks {
        self.deployment.links()
    }

    pub fn claims(&self) -> orglink_shared::aws::claims::DynamoClaims {
        self.deployment.claims()
    }

    pub fn mirror(&self) -> orglink_shared::aws::mirror::DynamoMirror {
        self.deployment.mirror()
    }

    /// The rate budget the deployed functions share, in its table.
    pub fn rate_budget(
        &self,
        salesforce: orglink_shared::http::BudgetConfig,
        zendesk: orglink_shared::http::BudgetConfig,
    ) -> orglink_shared::aws::SharedRateBudget<orglink_shared::aws::budget::DynamoBudget> {
        self.deployment.rate_budget(salesforce, zendesk)
    }
}

/// Now, in epoch milliseconds (the stores take time as an argument).
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// An epoch-millisecond time as RFC 3339 (UTC), for people.
pub fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}
