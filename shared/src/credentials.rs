//! The secrets orglink needs to call Salesforce and Zendesk: one Secrets Manager secret (JSON,
//! schema in `docs/credentials.md`) in production, environment variables for local use.
//!
//! Every secret value is a [`Secret`], which prints as `<redacted>` in `Debug` and `Display`,
//! so a credential can sit in a struct that is logged or put in an error without leaking.

use std::fmt;

use serde::Deserialize;
use thiserror::Error;

/// A secret string. Reading it takes an explicit [`Secret::expose`], which is only called where
/// the value goes on the wire.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Both systems' credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub salesforce: SalesforceCredentials,
    pub zendesk: ZendeskCredentials,
}

/// How orglink signs in to Salesforce. Both flows post to the My Domain token endpoint (the
/// client-credentials flow refuses login.salesforce.com).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSalesforce")]
pub struct SalesforceCredentials {
    /// `https://acme.my.salesforce.com` (a sandbox: `https://acme--uat.sandbox.my.salesforce.com`).
    pub my_domain_url: String,
    /// The External Client App's consumer key.
    pub client_id: String,
    pub flow: SalesforceFlow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SalesforceFlow {
    /// Client credentials: the app's consumer secret; Salesforce runs calls as the app's
    /// execution user.
    ClientCredentials { client_secret: Secret },
    /// JWT bearer: an RS256 assertion signed with the app's certificate key, for `username`.
    JwtBearer {
        username: String,
        /// PKCS#8 or PKCS#1 PEM of the RSA private key.
        private_key_pem: Secret,
        /// `aud` claim; `None` derives it from the My Domain URL (`https://test.salesforce.com`
        /// for a `.sandbox.my.salesforce.com` host, else `https://login.salesforce.com`).
        audience: Option<String>,
    },
}

/// The secret's `salesforce` object as written (flat, `flow` names the variant).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSalesforce {
    my_domain_url: String,
    client_id: String,
    flow: RawFlow,
    client_secret: Option<Secret>,
    username: Option<String>,
    private_key_pem: Option<Secret>,
    audience: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RawFlow {
    ClientCredentials,
    JwtBearer,
}

impl TryFrom<RawSalesforce> for SalesforceCredentials {
    type Error = String;
    fn try_from(raw: RawSalesforce) -> Result<Self, String> {
        let flow = match raw.flow {
            RawFlow::ClientCredentials => {
                if raw.username.is_some() || raw.private_key_pem.is_some() {
                    return Err("flow \"client_credentials\" takes client_secret, not username/private_key_pem".into());
                }
                SalesforceFlow::ClientCredentials {
                    client_secret: raw
                        .client_secret
                        .ok_or("flow \"client_credentials\" needs client_secret")?,
                }
            }
            RawFlow::JwtBearer => {
                if raw.client_secret.is_some() {
                    return Err(
                        "flow \"jwt_bearer\" takes username and private_key_pem, not client_secret"
                            .into(),
                    );
                }
                SalesforceFlow::JwtBearer {
                    username: raw.username.ok_or("flow \"jwt_bearer\" needs username")?,
                    private_key_pem: raw
                        .private_key_pem
                        .ok_or("flow \"jwt_bearer\" needs private_key_pem")?,
                    audience: raw.audience,
                }
            }
        };
        Ok(SalesforceCredentials {
            my_domain_url: raw.my_domain_url,
            client_id: raw.client_id,
            flow,
        })
    }
}

/// How orglink signs in to Zendesk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "auth", rename_all = "snake_case", deny_unknown_fields)]
pub enum ZendeskCredentials {
    /// `Authorization: Basic base64("{email}/token:{api_token}")`.
    ApiToken { email: String, api_token: Secret },
    /// `Authorization: Bearer {oauth_token}`.
    Oauth { oauth_token: Secret },
}

/// Why credentials could not be read. Says which key is wrong, never what it held.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CredentialsError {
    #[error("the credentials secret is not valid: {0} (see docs/credentials.md)")]
    Invalid(String),
    #[error("environment variable {0} is not set (see docs/credentials.md)")]
    MissingEnv(&'static str),
    #[error("environment variable {0} is set but empty")]
    EmptyEnv(&'static str),
    #[error("could not read the file named by {var}: {reason}")]
    File { var: &'static str, reason: String },
}

impl Credentials {
    /// Reads the Secrets Manager secret's JSON text (schema: `docs/credentials.md`).
    pub fn from_secret_json(text: &str) -> Result<Credentials, CredentialsError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let creds: Result<Credentials, String> =
            serde_path_to_error::deserialize(de).map_err(|e| {
                // serde_json's message can quote the offending value; keep only the path and the
                // kind of problem so no secret ends up in a log line.
                let path = e.path().to_string();
                let inner = e.into_inner();
                let what = if inner.is_syntax() || inner.is_eof() {
                    format!(
                        "not JSON (line {}, column {})",
                        inner.line(),
                        inner.column()
                    )
                } else {
                    redact_serde_message(&inner.to_string())
                };
                if path.is_empty() || path == "." {
                    what
                } else {
                    format!("at {path}: {what}")
                }
            });
        let creds = creds.map_err(CredentialsError::Invalid)?;
        creds.validate()?;
        Ok(creds)
    }

    /// Reads credentials from the process environment (local use). Variables are listed in
    /// `docs/credentials.md`.
    pub fn from_env() -> Result<Credentials, CredentialsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Credentials::from_env`] over any lookup (tests pass a map).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, CredentialsError> {
        if let Some(json) = lookup("ORGLINK_CREDENTIALS_JSON") {
            return Self::from_secret_json(&json);
        }
        let required = |name: &'static str| -> Result<String, CredentialsError> {
            match lookup(name) {
                None => Err(CredentialsError::MissingEnv(name)),
                Some(v) if v.trim().is_empty() => Err(CredentialsError::EmptyEnv(name)),
                Some(v) => Ok(v),
            }
        };
        let optional = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let flow = if let Some(secret) = optional("ORGLINK_SF_CLIENT_SECRET") {
            SalesforceFlow::ClientCredentials {
                client_secret: Secret(secret),
            }
        } else {
            let pem = match optional("ORGLINK_SF_PRIVATE_KEY_PEM") {
                Some(pem) => pem,
                None => {
                    let var = "ORGLINK_SF_PRIVATE_KEY_FILE";
                    let path = lookup(var).ok_or(CredentialsError::MissingEnv(
                        "ORGLINK_SF_CLIENT_SECRET (or ORGLINK_SF_PRIVATE_KEY_PEM / ORGLINK_SF_PRIVATE_KEY_FILE)",
                    ))?;
                    std::fs::read_to_string(&path).map_err(|e| CredentialsError::File {
                        var,
                        reason: e.kind().to_string(),
                    })?
                }
            };
            SalesforceFlow::JwtBearer {
                username: required("ORGLINK_SF_USERNAME")?,
                private_key_pem: Secret(pem),
                audience: optional("ORGLINK_SF_JWT_AUDIENCE"),
            }
        };
        let salesforce = SalesforceCredentials {
            my_domain_url: required("ORGLINK_SF_MY_DOMAIN_URL")?,
            client_id: required("ORGLINK_SF_CLIENT_ID")?,
            flow,
        };
        let zendesk = if let Some(token) = optional("ORGLINK_ZD_OAUTH_TOKEN") {
            ZendeskCredentials::Oauth {
                oauth_token: Secret(token),
            }
        } else {
            ZendeskCredentials::ApiToken {
                email: required("ORGLINK_ZD_EMAIL")?,
                api_token: Secret(required("ORGLINK_ZD_API_TOKEN")?),
            }
        };
        let creds = Credentials {
            salesforce,
            zendesk,
        };
        creds.validate()?;
        Ok(creds)
    }

    fn validate(&self) -> Result<(), CredentialsError> {
        let bad = |m: &str| Err(CredentialsError::Invalid(m.to_string()));
        let sf = &self.salesforce;
        let url = sf.my_domain_url.trim();
        if !(url.starts_with("https://")
            || url.starts_with("http://127.0.0.1")
            || url.starts_with("http://localhost"))
        {
            return bad(
                "salesforce.my_domain_url must be an https:// My Domain URL (http only on loopback)",
            );
        }
        if sf.client_id.trim().is_empty() {
            return bad("salesforce.client_id is empty");
        }
        match &sf.flow {
            SalesforceFlow::ClientCredentials { client_secret } if client_secret.is_blank() => {
                return bad("salesforce.client_secret is empty");
            }
            SalesforceFlow::JwtBearer {
                username,
                private_key_pem,
                ..
            } => {
                if username.trim().is_empty() {
                    return bad("salesforce.username is empty");
                }
                if !private_key_pem.expose().contains("PRIVATE KEY-----") {
                    return bad("salesforce.private_key_pem is not a PEM private key");
                }
            }
            SalesforceFlow::ClientCredentials { .. } => {}
        }
        match &self.zendesk {
            ZendeskCredentials::ApiToken { email, api_token } => {
                if !email.contains('@') {
                    return bad("zendesk.email is not an e-mail address");
                }
                if api_token.is_blank() {
                    return bad("zendesk.api_token is empty");
                }
            }
            ZendeskCredentials::Oauth { oauth_token } if oauth_token.is_blank() => {
                return bad("zendesk.oauth_token is empty");
            }
            ZendeskCredentials::Oauth { .. } => {}
        }
        Ok(())
    }
}

/// serde's messages quote unexpected values (`invalid type: string "hunter2"`); drop quoted
/// parts so a mistyped secret never reaches a log.
fn redact_serde_message(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut in_quotes = false;
    for c in message.chars() {
        match c {
            '"' if !in_quotes => {
                in_quotes = true;
                out.push_str("\"…");
            }
            '"' => {
                in_quotes = false;
                out.push('"');
            }
            _ if in_quotes => {}
            c => out.push(c),
        }
    }
    // Expected-variant lists use backticks (`client_credentials`): those are schema, kept;
    // the unknown value itself is dropped.
    if let Some(rest) = out.strip_prefix("unknown variant `")
        && let Some((_, tail)) = rest.split_once('`')
    {
        out = format!("unknown variant `…`{tail}");
    }
    out.split(" at line ").next().unwrap_or(&out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CC: &str = r#"{
        "salesforce": {"my_domain_url": "https://acme.my.salesforce.com", "client_id": "key",
                       "flow": "client_credentials", "client_secret": "s3cr3t-sf"},
        "zendesk": {"auth": "api_token", "email": "ops@acme.com", "api_token": "s3cr3t-zd"}
    }"#;

    #[test]
    fn reads_the_secret_json() {
        let c = Credentials::from_secret_json(CC).unwrap();
        assert_eq!(c.salesforce.client_id, "key");
        match &c.salesforce.flow {
            SalesforceFlow::ClientCredentials { client_secret } => {
                assert_eq!(client_secret.expose(), "s3cr3t-sf")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.zendesk, ZendeskCredentials::ApiToken { .. }));
    }

    #[test]
    fn debug_and_display_never_show_a_secret() {
        let c = Credentials::from_secret_json(CC).unwrap();
        let shown = format!("{c:?} {c:#?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(Secret::new("x").to_string(), "<redacted>");
    }

    #[test]
    fn errors_name_the_key_but_not_the_value() {
        let text = CC.replace(
            "\"flow\": \"client_credentials\"",
            "\"flow\": \"s3cr3t-typo\"",
        );
        let e = Credentials::from_secret_json(&text)
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(e.contains("salesforce"), "{e}");
        let text = CC.replace("\"api_token\": \"s3cr3t-zd\"", "\"api_token\": 42");
        let e = Credentials::from_secret_json(&text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("zendesk"), "{e}");
        let e = Credentials::from_secret_json("{\"salesforce\": s3cr3t")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
        let text = CC.replace("s3cr3t-zd", " ");
        assert_eq!(
            Credentials::from_secret_json(&text).unwrap_err(),
            CredentialsError::Invalid("zendesk.api_token is empty".into())
        );
    }

    #[test]
    fn reads_the_environment() {
        let env: HashMap<&str, &str> = [
            ("ORGLINK_SF_MY_DOMAIN_URL", "https://acme.my.salesforce.com"),
            ("ORGLINK_SF_CLIENT_ID", "key"),
            ("ORGLINK_SF_USERNAME", "int@acme.com"),
            (
                "ORGLINK_SF_PRIVATE_KEY_PEM",
                "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----",
            ),
            ("ORGLINK_ZD_OAUTH_TOKEN", "tok"),
        ]
        .into_iter()
        .collect();
        let c = Credentials::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert!(matches!(
            c.salesforce.flow,
            SalesforceFlow::JwtBearer { .. }
        ));
        assert!(matches!(c.zendesk, ZendeskCredentials::Oauth { .. }));
        let mut partial = env.clone();
        partial.remove("ORGLINK_SF_CLIENT_ID");
        assert_eq!(
            Credentials::from_lookup(|k| partial.get(k).map(|v| v.to_string())).unwrap_err(),
            CredentialsError::MissingEnv("ORGLINK_SF_CLIENT_ID")
        );
    }
}
