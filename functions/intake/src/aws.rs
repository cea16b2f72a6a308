//! The production wiring: the real SQS and DynamoDB adapters, and the intake secret read from
//! Secrets Manager once per cold start. `main` and the end-to-end tests both build intake
//! through [`from_aws`], so the tests run the deployed wiring.

use aws_config::SdkConfig;

use orglink_shared::aws::exceptions::DynamoExceptions;
use orglink_shared::aws::links::DynamoLinks;
use orglink_shared::aws::mirror::DynamoMirror;
use orglink_shared::aws::queue::SqsQueue;
use orglink_shared::aws::secrets::SecretsManagerSecret;
use orglink_shared::aws::{Deployment, SecretSource};

use crate::{Environment, Intake, IntakeSecrets, StartError};

/// Intake over the AWS adapters.
pub type AwsIntake = Intake<SqsQueue, DynamoLinks, DynamoMirror, DynamoExceptions>;

pub async fn from_aws(sdk: &SdkConfig, env: &Environment) -> Result<AwsIntake, StartError> {
    let secret = SecretsManagerSecret::new(
        aws_sdk_secretsmanager::Client::new(sdk),
        env.intake_secret_id.clone(),
    )
    .fetch()
    .await
    .map_err(|e| StartError::Secret(e.to_string()))?;
    let secrets = IntakeSecrets::from_json(secret.expose())?;
    let deployment = Deployment::new(sdk, env.names.clone());
    Ok(Intake::new(
        deployment.queue(),
        deployment.links(),
        deployment.mirror(),
        deployment.exceptions(),
        env.config.clone(),
        secrets,
    ))
}
