//! OAuth 2.0 token endpoint (client credentials and JWT bearer) and the sessions it issues.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::Rng;
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Value, json};
use sha2::Sha256;

/// An OAuth error as Salesforce's token endpoint reports it (HTTP 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"error": self.error, "error_description": self.description})
    }
}

/// Reads the PEM public key (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`) JWT assertions are
/// checked against.
pub fn load_public_key(pem: &str) -> Result<RsaPublicKey, String> {
    RsaPublicKey::from_public_key_pem(pem.trim())
        .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
        .map_err(|e| format!("not an RSA public key in PEM form: {e}"))
}

/// Leeway between the client's clock and ours when checking `exp`.
pub const CLOCK_SKEW_SECS: i64 = 10;

/// What the JWT bearer flow must see in an assertion.
pub struct JwtExpectations<'a> {
    pub key: Option<&'a RsaPublicKey>,
    pub consumer_key: &'a str,
    pub username: &'a str,
    pub audience: &'a str,
    pub now_secs: i64,
    pub max_lifetime_secs: i64,
}

/// Checks an RS256 assertion: signature, `iss` = consumer key, `sub` (or legacy `prn`) = the
/// integration username, `aud` = the login URL, `exp` in the future and within the window.
pub fn verify_assertion(assertion: &str, want: &JwtExpectations<'_>) -> Result<(), OAuthError> {
    let invalid = |why: &str| OAuthError::new("invalid_grant", format!("invalid assertion: {why}"));
    let Some(key) = want.key else {
        return Err(OAuthError::new(
            "invalid_grant",
            "the JWT bearer flow is not configured (start the sandbox with --salesforce-jwt-public-key)",
        ));
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else {
        return Err(invalid("not a signed JWT"));
    };
    let decode_json = |part: &str| -> Option<Value> {
        let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    };
    let header = decode_json(header).ok_or_else(|| invalid("unreadable header"))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid("only RS256 is supported"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature.trim_end_matches('='))
        .ok()
        .and_then(|s| Signature::try_from(s.as_slice()).ok())
        .ok_or_else(|| invalid("unreadable signature"))?;
    let signed = &assertion[..assertion.rfind('.').expect("three parts")];
    VerifyingKey::<Sha256>::new(key.clone())
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| invalid("signature does not verify"))?;
    let claims = decode_json(claims).ok_or_else(|| invalid("unreadable claims"))?;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if claim("iss") != Some(want.consumer_key) {
        return Err(OAuthError::new(
            "invalid_client_id",
            "client identifier invalid",
        ));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == want.audience,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(want.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(OAuthError::new("invalid_grant", "audience is invalid"));
    }
    if claim("sub").or_else(|| claim("prn")) != Some(want.username) {
        return Err(OAuthError::new(
            "invalid_grant",
            "user hasn't approved this consumer",
        ));
    }
    // simple-salesforce sends `exp` as a string of digits, and Salesforce accepts it.
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| invalid("exp is missing or not a NumericDate"))?;
    if exp <= want.now_secs {
        return Err(OAuthError::new(
            "invalid_grant",
            "invalid assertion: expired",
        ));
    }
    // Clients put exp at exactly now + 3 minutes, rounded (simple-salesforce) on a clock of
    // their own, so a few seconds over is the same assertion.
    if exp > want.now_secs + want.max_lifetime_secs + CLOCK_SKEW_SECS {
        return Err(invalid("exp is further ahead than the allowed window"));
    }
    Ok(())
}

/// `client_id:client_secret` from an `Authorization: Basic` header.
pub fn basic_credentials(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// `signature` of a token response: Base64(HMAC-SHA256(consumer secret, id + issued_at)).
pub fn response_signature(secret: &str, id_url: &str, issued_at: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(id_url.as_bytes());
    mac.update(issued_at.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Issued access tokens and how many API calls each has made.
#[derive(Default)]
pub struct Sessions {
    calls: HashMap<String, u64>,
}

impl Sessions {
    /// A new opaque token in Salesforce's shape: the 15-character org id, `!`, random text.
    pub fn issue(&mut self, org_id: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";
        let mut rng = rand::rng();
        let tail: String = (0..96)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect();
        let token = format!("{}!{tail}", &org_id[..15]);
        self.calls.insert(token.clone(), 0);
        token
    }

    /// Counts one call on the token; false when it is unknown or has used up `max_calls`
    /// (0 = unlimited), in which case it is forgotten.
    pub fn use_token(&mut self, token: &str, max_calls: u64) -> bool {
        let Some(calls) = self.calls.get_mut(token) else {
            return false;
        };
        if max_calls > 0 && *calls >= max_calls {
            self.calls.remove(token);
            return false;
        }
        *calls += 1;
        true
    }

    pub fn expire_all(&mut self) {
        self.calls.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_after_their_calls() {
        let mut s = Sessions::default();
        let t = s.issue("00DSB0000000001AAA");
        assert!(t.starts_with("00DSB0000000001!"));
        assert!(s.use_token(&t, 2));
        assert!(s.use_token(&t, 2));
        assert!(!s.use_token(&t, 2));
        // Gone for good, even with the limit lifted.
        assert!(!s.use_token(&t, 0));
        let t2 = s.issue("00DSB0000000001AAA");
        s.expire_all();
        assert!(!s.use_token(&t2, 0));
        assert!(!s.use_token("made-up", 0));
    }

    #[test]
    fn basic_header_and_signature() {
        let header = format!("Basic {}", STANDARD.encode("key:se:cret"));
        assert_eq!(
            basic_credentials(&header),
            Some(("key".into(), "se:cret".into()))
        );
        assert_eq!(basic_credentials("Bearer x"), None);
        let a = response_signature("s", "https://login.salesforce.com/id/1/2", "100");
        assert_ne!(
            a,
            response_signature("t", "https://login.salesforce.com/id/1/2", "100")
        );
        assert_eq!(STANDARD.decode(a).unwrap().len(), 32);
    }

    #[test]
    fn missing_key_refuses_jwt() {
        let want = JwtExpectations {
            key: None,
            consumer_key: "k",
            username: "u",
            audience: "https://login.salesforce.com",
            now_secs: 0,
            max_lifetime_secs: 180,
        };
        assert_eq!(
            verify_assertion("a.b.c", &want).unwrap_err().error,
            "invalid_grant"
        );
    }
}
