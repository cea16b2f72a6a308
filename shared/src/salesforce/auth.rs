//! Signing in to Salesforce: the client-credentials and JWT bearer flows against the My Domain
//! token endpoint, and reading the org id out of the token response's identity URL.

use serde::Deserialize;
use serde_json::json;

use crate::credentials::{SalesforceCredentials, SalesforceFlow, Secret};

/// An access token and where to use it.
pub(crate) struct Token {
    pub access_token: Secret,
    /// REST base, from the token response (never hard-coded).
    pub instance_url: String,
    /// The org id from the identity URL (`…/id/{orgId}/{userId}`).
    pub org_id: String,
    /// The integration user's id, from the same URL.
    pub user_id: Option<String>,
    /// Bumped on every sign-in, so concurrent 401s refresh once (single flight).
    pub generation: u64,
}

#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub instance_url: String,
    pub id: String,
}

/// The form body of the token request.
pub(crate) fn token_form(
    creds: &SalesforceCredentials,
) -> Result<Vec<(&'static str, String)>, String> {
    Ok(match &creds.flow {
        SalesforceFlow::ClientCredentials { client_secret } => vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", creds.client_id.clone()),
            ("client_secret", client_secret.expose().to_string()),
        ],
        SalesforceFlow::JwtBearer {
            username,
            private_key_pem,
            audience,
        } => {
            let audience = audience
                .clone()
                .unwrap_or_else(|| default_audience(&creds.my_domain_url).to_string());
            let assertion = jwt_assertion(&creds.client_id, username, &audience, private_key_pem)?;
            vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_string(),
                ),
                ("assertion", assertion),
            ]
        }
    })
}

/// `aud` for the JWT: the test login host for a sandbox My Domain, else the production one.
pub(crate) fn default_audience(my_domain_url: &str) -> &'static str {
    if my_domain_url.contains(".sandbox.my.salesforce.com") {
        "https://test.salesforce.com"
    } else {
        "https://login.salesforce.com"
    }
}

/// An RS256 assertion valid for three minutes (Salesforce's window).
fn jwt_assertion(
    client_id: &str,
    username: &str,
    audience: &str,
    key_pem: &Secret,
) -> Result<String, String> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({"iss": client_id, "sub": username, "aud": audience, "exp": now + 170});
    // The error text of the key parser never includes key material, but keep it generic anyway.
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.expose().as_bytes())
        .map_err(|_| "the JWT private key is not an RSA key in PEM form".to_string())?;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|e| format!("could not sign the JWT assertion: {}", e.kind_name()))
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> &'static str {
        use jsonwebtoken::errors::ErrorKind;
        match self.kind() {
            ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => "invalid RSA key",
            _ => "signing failed",
        }
    }
}

/// The org id in an identity URL `https://login.salesforce.com/id/{orgId}/{userId}`.
pub(crate) fn org_id_from_identity_url(id_url: &str) -> Option<String> {
    let mut parts = id_url.trim_end_matches('/').rsplit('/');
    let _user = parts.next()?;
    let org = parts.next()?;
    (org.starts_with("00D") && (org.len() == 15 || org.len() == 18)).then(|| org.to_string())
}

/// The user id in an identity URL `https://login.salesforce.com/id/{orgId}/{userId}`.
pub(crate) fn user_id_from_identity_url(id_url: &str) -> Option<String> {
    let user = id_url.trim_end_matches('/').rsplit('/').next()?;
    (user.starts_with("005") && (user.len() == 15 || user.len() == 18)).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn org_id_is_read_from_the_identity_url() {
        assert_eq!(
            org_id_from_identity_url(
                "https://login.salesforce.com/id/00DRM000000Fxts2AC/005RM000001N0KeAAK"
            ),
            Some("00DRM000000Fxts2AC".into())
        );
        assert_eq!(
            org_id_from_identity_url("https://login.salesforce.com/id/005x/00Dx"),
            None
        );
        assert_eq!(org_id_from_identity_url(""), None);
        assert_eq!(
            user_id_from_identity_url(
                "https://login.salesforce.com/id/00DRM000000Fxts2AC/005RM000001N0KeAAK"
            ),
            Some("005RM000001N0KeAAK".into())
        );
        assert_eq!(
            user_id_from_identity_url("https://login.salesforce.com/id/00D/0PS"),
            None
        );
    }

    #[test]
    fn audience_follows_the_my_domain() {
        assert_eq!(
            default_audience("https://acme--uat.sandbox.my.salesforce.com"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            default_audience("https://acme.my.salesforce.com"),
            "https://login.salesforce.com"
        );
    }
}
