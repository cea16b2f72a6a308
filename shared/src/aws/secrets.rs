//! The credentials secret: fetched as one string and kept in a type whose `Debug` and
//! `Display` never show it, so it cannot reach a log line or an error by accident.

use std::fmt;
use std::future::Future;

use super::error::StoreError;

/// A secret value. Read it with [`SecretString::expose`], only where it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

pub trait SecretSource: Send + Sync {
    fn fetch(&self) -> impl Future<Output = Result<SecretString, StoreError>> + Send;
}

/// The in-memory twin: a fixed value.
#[derive(Debug, Clone)]
pub struct StaticSecret(pub SecretString);

impl SecretSource for StaticSecret {
    async fn fetch(&self) -> Result<SecretString, StoreError> {
        Ok(self.0.clone())
    }
}

#[cfg(feature = "aws")]
pub use self::aws_impl::SecretsManagerSecret;

#[cfg(feature = "aws")]
mod aws_impl {
    use aws_sdk_secretsmanager::Client;

    use super::*;

    const SERVICE: &str = "Secrets Manager";

    /// One secret in Secrets Manager, by name or ARN.
    #[derive(Debug, Clone)]
    pub struct SecretsManagerSecret {
        client: Client,
        secret_id: String,
    }

    impl SecretsManagerSecret {
        pub fn new(client: Client, secret_id: impl Into<String>) -> Self {
            SecretsManagerSecret {
                client,
                secret_id: secret_id.into(),
            }
        }
    }

    impl SecretSource for SecretsManagerSecret {
        async fn fetch(&self) -> Result<SecretString, StoreError> {
            let out = self
                .client
                .get_secret_value()
                .secret_id(&self.secret_id)
                .send()
                .await
                .map_err(|e| crate::aws::error::classify(SERVICE, e))?;
            out.secret_string()
                .map(SecretString::new)
                .ok_or_else(|| StoreError::Rejected {
                    service: SERVICE,
                    detail: format!(
                        "secret {} has no string value; store the credentials JSON as SecretString",
                        self.secret_id
                    ),
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = SecretString::new("hunter2-token");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert!(!format!("{:?}", StaticSecret(s.clone())).contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-token");
    }
}
