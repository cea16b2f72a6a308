//! Domains: website values normalized to a registrable domain, or a classified reason they
//! cannot be used. (Placeholder API: the full normalizer is being written; the public names
//! below are the interface other modules build on.)

use serde::{Deserialize, Serialize};

/// A registrable domain (eTLD+1 under the Public Suffix List, private suffixes included),
/// lowercase, ASCII (IDN in punycode). It can hold nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    /// Parses a value that should already be a domain (a reviewed domain, a configured one).
    pub fn parse(input: &str) -> Result<Domain, String> {
        let d = input.trim().trim_end_matches('.').to_ascii_lowercase();
        if d.contains('.') && !d.contains(' ') {
            Ok(Domain(d))
        } else {
            Err(format!("{input:?} is not a domain"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
