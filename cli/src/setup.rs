//! `orglink setup zendesk`: creates what orglink needs in Zendesk, idempotently — the
//! organization fields the mapping mirrors into, and the webhook that tells intake about
//! organization changes — and says what it did. Running it again changes nothing.
//!
//! The webhook's signing secret is never printed: with `--intake-secret-id` it is stored in
//! intake's secret (`zendesk_webhook.current`), otherwise the operator is told how to store it.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::context::{self, Common, OpsError};

/// The webhook's name (how orglink recognizes its own on a rerun, with the endpoint).
pub const WEBHOOK_NAME: &str = "orglink organization events";
/// The organization events intake acts on (docs/intake.md).
pub const WEBHOOK_EVENTS: [&str; 4] = [
    "zen:event-type:organization.created",
    "zen:event-type:organization.deleted",
    "zen:event-type:organization.external_id_changed",
    "zen:event-type:organization.name_changed",
];

#[derive(Subcommand, Debug)]
pub enum SetupCommand {
    /// Creates orglink's organization fields and its webhook in Zendesk (idempotent).
    #[command(after_help = "Examples:
  orglink setup zendesk --intake-url https://abc.lambda-url.eu-west-1.on.aws
  orglink setup zendesk --intake-url https://... --intake-secret-id orglink/intake
  orglink setup zendesk --fields-only

The webhook posts to <intake URL>/zendesk. Its signing secret goes into intake's secret
(zendesk_webhook.current); it is never printed.")]
    Zendesk(SetupZendeskArgs),
}

#[derive(Args, Debug)]
pub struct SetupZendeskArgs {
    #[command(flatten)]
    pub common: Common,
    /// intake's function URL (the stack output IntakeUrl); the webhook posts to <URL>/zendesk.
    #[arg(long, required_unless_present = "fields_only")]
    pub intake_url: Option<String>,
    /// Store the webhook's signing secret in this Secrets Manager secret (intake's), keeping
    /// its other keys.
    #[arg(long)]
    pub intake_secret_id: Option<String>,
    /// Only the organization fields, no webhook.
    #[arg(long)]
    pub fields_only: bool,
}

pub fn run(command: SetupCommand) -> ExitCode {
    let SetupCommand::Zendesk(args) = command;
    context::run(async move {
        let (config, clients) = context::connect(&args.common).await?;
        let zd = &clients.zendesk;

        let existing: Vec<String> = zd
            .organization_fields()
            .await?
            .iter()
            .filter_map(|f| f["key"].as_str().map(str::to_string))
            .collect();
        for key in config.mapping().organization_fields().keys() {
            let key = key.as_str();
            if existing.iter().any(|k| k == key) {
                println!("organization field {key}: already present");
                continue;
            }
            let field = json!({
                "key": key,
                "title": title(key),
                "type": "text",
                "description": "Mirrored from Salesforce by orglink; edits here are overwritten.",
            });
            zd.create_organization_field(&field).await?;
            println!("organization field {key}: created");
        }

        if args.fields_only {
            return Ok(ExitCode::SUCCESS);
        }
        let intake_url = args.intake_url.as_deref().unwrap_or_default();
        let endpoint = webhook_endpoint(intake_url)?;
        let hooks = zd.webhooks().await?;
        let mine = hooks
            .iter()
            .find(|h| h["endpoint"].as_str() == Some(endpoint.as_str()));
        let id = match mine {
            Some(h) => {
                let id = h["id"].as_str().map(str::to_string).unwrap_or_default();
                println!("webhook {id}: already posts to {endpoint}");
                id
            }
            None => {
                let hook = json!({
                    "name": WEBHOOK_NAME,
                    "endpoint": endpoint,
                    "http_method": "POST",
                    "request_format": "json",
                    "status": "active",
                    "subscriptions": WEBHOOK_EVENTS,
                });
                let created = zd.create_webhook(&hook).await?;
                let id = created["id"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_default();
                println!(
                    "webhook {id}: created, posting {} event types to {endpoint}",
                    WEBHOOK_EVENTS.len()
                );
                id
            }
        };
        if id.is_empty() {
            return Err(OpsError::Usage(
                "Zendesk returned a webhook without an id".into(),
            ));
        }
        let secret = zd.webhook_signing_secret(&id).await?;
        match &args.intake_secret_id {
            Some(secret_id) => {
                store_signing_secret(secret_id, secret.expose()).await?;
                println!(
                    "signing secret: stored in {secret_id} as zendesk_webhook.current (not shown); intake reads it at its next cold start"
                );
            }
            None => println!(
                "signing secret: not stored. Run again with --intake-secret-id <intake secret> to store it as zendesk_webhook.current (it is never printed)"
            ),
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `<intake URL>/zendesk`, refusing anything but https (http only on loopback, for the sandbox).
pub fn webhook_endpoint(intake_url: &str) -> Result<String, OpsError> {
    let base = intake_url.trim().trim_end_matches('/');
    let local = base.starts_with("http://127.0.0.1") || base.starts_with("http://localhost");
    if !(base.starts_with("https://") || local) {
        return Err(OpsError::Usage(format!(
            "--intake-url {intake_url:?} must be https (the stack output IntakeUrl)"
        )));
    }
    Ok(format!("{base}/zendesk"))
}

/// A readable title for a field key: `salesforce_owner_email` → `Salesforce owner email`.
fn title(key: &str) -> String {
    let words = key.replace('_', " ");
    let mut c = words.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => words,
    }
}

/// Puts the signing secret into intake's secret JSON, keeping what else it holds.
async fn store_signing_secret(secret_id: &str, signing: &str) -> Result<(), OpsError> {
    let sdk = context::aws_sdk().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let failed =
        |what: &str, e: String| OpsError::Usage(format!("cannot {what} secret {secret_id}: {e}"));
    let current = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            failed(
                "read",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            )
        })?;
    let mut doc: Value = current
        .secret_string()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| json!({}));
    if !doc.is_object() {
        doc = json!({});
    }
    let previous = doc["zendesk_webhook"]["current"]
        .as_str()
        .map(str::to_string);
    let mut pair = json!({"current": signing});
    // Keep the old secret as `previous` so requests signed during the switch still verify.
    if let Some(p) = previous.filter(|p| p != signing) {
        pair["previous"] = json!(p);
    }
    doc["zendesk_webhook"] = pair;
    client
        .put_secret_value()
        .secret_id(secret_id)
        .secret_string(doc.to_string())
        .send()
        .await
        .map_err(|e| {
            failed(
                "update",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            )
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_and_titles() {
        assert_eq!(
            webhook_endpoint("https://x.lambda-url.eu-west-1.on.aws/").unwrap(),
            "https://x.lambda-url.eu-west-1.on.aws/zendesk"
        );
        assert!(webhook_endpoint("http://example.com").is_err());
        assert!(webhook_endpoint("http://127.0.0.1:9000").is_ok());
        assert_eq!(title("salesforce_owner_email"), "Salesforce owner email");
    }
}
