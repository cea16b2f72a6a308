//! What intake reads at a cold start: resource names and the configuration from the
//! environment, the signing secrets from Secrets Manager (once).

use serde::Deserialize;
use thiserror::Error;

use orglink_shared::aws::ResourceNames;
use orglink_shared::aws::names::MissingNames;
use orglink_shared::contract::{Config, ConfigError};
use orglink_shared::credentials::Secret;
use orglink_shared::signature::SigningSecrets;

/// The environment variable naming intake's own secret (ARN or name): the signing secrets
/// only, so intake never holds the Salesforce or Zendesk API credentials.
pub const INTAKE_SECRET_ENV: &str = "ORGLINK_INTAKE_SECRET_ID";
/// A path to the deployment's configuration TOML.
pub const CONFIG_FILE_ENV: &str = "ORGLINK_CONFIG_FILE";
/// The configuration TOML itself (used when no file is named).
pub const CONFIG_TOML_ENV: &str = "ORGLINK_CONFIG_TOML";

/// Why intake cannot start. Each says what to set; none carries a secret value.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    MissingNames(#[from] MissingNames),
    #[error(
        "environment variable {INTAKE_SECRET_ENV} is not set: set it to the intake secret's ARN (docs/intake.md)"
    )]
    NoSecretId,
    #[error("the configuration named by {CONFIG_FILE_ENV} cannot be read: {0}")]
    ConfigFile(String),
    #[error("the configuration is invalid: {0}")]
    Config(#[from] ConfigError),
    #[error("the intake secret cannot be read: {0}")]
    Secret(String),
}

/// The environment intake runs in.
#[derive(Debug, Clone)]
pub struct Environment {
    pub names: ResourceNames,
    pub intake_secret_id: String,
    pub config: Config,
    /// Whether the configuration is the embedded default (worth a warning in production).
    pub default_config: bool,
}

impl Environment {
    pub fn from_env() -> Result<Environment, StartError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Environment, StartError> {
        let names = ResourceNames::from_lookup(&lookup)?;
        let intake_secret_id = lookup(INTAKE_SECRET_ENV)
            .filter(|v| !v.trim().is_empty())
            .ok_or(StartError::NoSecretId)?;
        let (config, default_config) = match (lookup(CONFIG_FILE_ENV), lookup(CONFIG_TOML_ENV)) {
            (Some(path), _) if !path.trim().is_empty() => {
                let text = std::fs::read_to_string(path.trim())
                    .map_err(|e| StartError::ConfigFile(format!("{path}: {e}")))?;
                (Config::from_toml(&text)?, false)
            }
            (_, Some(text)) if !text.trim().is_empty() => (Config::from_toml(&text)?, false),
            _ => (Config::embedded_default(), true),
        };
        Ok(Environment {
            names,
            intake_secret_id,
            config,
            default_config,
        })
    }
}

/// The intake secret's JSON (`docs/intake.md`):
/// `{"salesforce": {"current": "…", "previous": "…"}, "zendesk_webhook": {"current": "…"}}`.
/// `previous` is optional on both (a rotation in progress); `zendesk_webhook` is optional
/// (without it every Zendesk webhook is refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeSecrets {
    pub salesforce: SigningSecrets,
    pub zendesk_webhook: Option<SigningSecrets>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    salesforce: RawPair,
    #[serde(default)]
    zendesk_webhook: Option<RawPair>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    current: Secret,
    #[serde(default)]
    previous: Option<Secret>,
}

impl RawPair {
    fn into_secrets(self, at: &str) -> Result<SigningSecrets, String> {
        if self.current.expose().trim().is_empty() {
            return Err(format!("{at}.current is empty"));
        }
        printable(&self.current, &format!("{at}.current"))?;
        let previous = self.previous.filter(|p| !p.expose().trim().is_empty());
        if let Some(p) = &previous {
            printable(p, &format!("{at}.previous"))?;
        }
        Ok(SigningSecrets::new(self.current, previous))
    }
}

/// A signing secret is printable text without surrounding whitespace. A secret pasted with its
/// newline would make every signature fail (the sender signs without it), and HMAC pads keys
/// with NUL bytes, so `"k"` and `"k\0"` would be one key (found by fuzzing,
/// docs/reliability.md). The error names the key and the problem, never the value.
fn printable(secret: &Secret, at: &str) -> Result<(), String> {
    let value = secret.expose();
    if value.chars().any(char::is_control) {
        return Err(format!(
            "{at} contains a control character (a newline, tab or NUL?); store the secret as printable text, e.g. from `openssl rand -hex 32`"
        ));
    }
    if value.trim() != value {
        return Err(format!(
            "{at} starts or ends with a space; store the secret without it"
        ));
    }
    Ok(())
}

impl IntakeSecrets {
    /// Reads the secret's JSON text. Errors name the key or position, never a value.
    pub fn from_json(text: &str) -> Result<IntakeSecrets, StartError> {
        let raw: RawSecrets = serde_json::from_str(text).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => {
                    // serde's data messages can quote the value; keep only quoted field names.
                    let msg = e.to_string();
                    if msg.starts_with("missing field") || msg.starts_with("unknown field") {
                        msg.split(", expected").next().unwrap_or("").to_string()
                    } else {
                        "a value has the wrong type".to_string()
                    }
                }
                _ => "not JSON".to_string(),
            };
            StartError::Secret(format!(
                "{what} (line {}, column {}); expected {{\"salesforce\": {{\"current\": …, \"previous\": …}}, \"zendesk_webhook\": {{\"current\": …}}}}",
                e.line(),
                e.column()
            ))
        })?;
        Ok(IntakeSecrets {
            salesforce: raw
                .salesforce
                .into_secrets("salesforce")
                .map_err(StartError::Secret)?,
            zendesk_webhook: raw
                .zendesk_webhook
                .map(|p| p.into_secrets("zendesk_webhook"))
                .transpose()
                .map_err(StartError::Secret)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn secrets_parse_and_errors_never_show_values() {
        let s = IntakeSecrets::from_json(
            r#"{"salesforce":{"current":"sf-now","previous":"sf-old"},"zendesk_webhook":{"current":"zd-now"}}"#,
        )
        .unwrap();
        assert_eq!(s.salesforce.current.expose(), "sf-now");
        assert_eq!(s.salesforce.previous.as_ref().unwrap().expose(), "sf-old");
        assert_eq!(
            s.zendesk_webhook.as_ref().unwrap().current.expose(),
            "zd-now"
        );
        assert!(s.zendesk_webhook.unwrap().previous.is_none());
        let only_sf = IntakeSecrets::from_json(r#"{"salesforce":{"current":"a"}}"#).unwrap();
        assert!(only_sf.zendesk_webhook.is_none());

        for (bad, says) in [
            (r#"{"salesforce":{"current":42}}"#, "wrong type"),
            (
                r#"{"salesforce":{"current":"hunter2","extra":"hunter2"}}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"zendesk_webhook":{"current":"hunter2"}}"#,
                "missing field `salesforce`",
            ),
            (
                r#"{"salesforce":{"current":"  "}}"#,
                "salesforce.current is empty",
            ),
            (r#"{"salesforce":"hunter2"}"#, "wrong type"),
            (
                r#"{"salesforce":{"current":"hunter2\n"}}"#,
                "salesforce.current contains a control character",
            ),
            (
                r#"{"salesforce":{"current":"ok","previous":"hunter2\u0000"}}"#,
                "salesforce.previous contains a control character",
            ),
            (
                r#"{"salesforce":{"current":"ok"},"zendesk_webhook":{"current":"\thunter2"}}"#,
                "zendesk_webhook.current contains a control character",
            ),
            (
                r#"{"salesforce":{"current":" hunter2"}}"#,
                "salesforce.current starts or ends with a space",
            ),
            ("hunter2", "not JSON"),
        ] {
            let e = IntakeSecrets::from_json(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn environment_reads_names_secret_id_and_config() {
        let mut env: BTreeMap<String, String> = orglink_shared::aws::names::ENV_VARS
            .iter()
            .map(|k| (k.to_string(), format!("v-{k}")))
            .collect();
        assert!(matches!(
            Environment::from_lookup(|k| env.get(k).cloned()),
            Err(StartError::NoSecretId)
        ));
        env.insert(INTAKE_SECRET_ENV.into(), "arn:intake".into());
        let e = Environment::from_lookup(|k| env.get(k).cloned()).unwrap();
        assert!(e.default_config);
        assert_eq!(e.intake_secret_id, "arn:intake");
        assert_eq!(e.names.sync_queue_url, "v-ORGLINK_SYNC_QUEUE_URL");
        env.insert(CONFIG_TOML_ENV.into(), "[binding]\n".into());
        let err = Environment::from_lookup(|k| env.get(k).cloned()).unwrap_err();
        assert!(matches!(err, StartError::Config(_)), "{err}");
        env.remove("ORGLINK_LINKS_TABLE");
        assert!(matches!(
            Environment::from_lookup(|k| env.get(k).cloned()),
            Err(StartError::MissingNames(_))
        ));
    }
}
