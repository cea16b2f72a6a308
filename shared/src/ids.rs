//! Identifiers: Salesforce Account ids and Zendesk organization ids, built only by parsing.
//!
//! An [`AccountId`] always holds the canonical 18-character form with a verified checksum and
//! the Account key prefix `001`, so code that holds one never has to re-check it.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// The alphabet Salesforce uses for the three case-safe suffix characters.
const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// Key prefix of the Account object.
pub const ACCOUNT_KEY_PREFIX: &str = "001";

/// Why a string is not a usable Salesforce Account id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountIdError {
    #[error("account id is empty")]
    Empty,
    #[error("account id must be 15 or 18 characters, got {len}")]
    WrongLength { len: usize },
    #[error("account id has {found:?} at position {position}; only letters and digits are allowed")]
    InvalidCharacter { found: char, position: usize },
    #[error("id starts with {prefix:?}, which is not an Account (Account ids start with \"001\")")]
    NotAnAccount { prefix: String },
    #[error(
        "checksum suffix {found:?} does not match the id (expected {expected:?}); the id was probably mistyped or truncated"
    )]
    ChecksumMismatch { expected: String, found: String },
    #[error("checksum suffix {found:?} is not a valid case-safe suffix")]
    InvalidSuffix { found: String },
}

/// A Salesforce Account id in its canonical, case-safe 18-character form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; 18]);

impl AccountId {
    /// Parses a 15- or 18-character Account id exactly as Salesforce issues it.
    ///
    /// A 15-character id is case-sensitive and is taken as given. An 18-character id must carry
    /// the checksum computed from its first 15 characters (the suffix itself compares
    /// case-insensitively, as Salesforce accepts).
    pub fn parse(input: &str) -> Result<Self, AccountIdError> {
        let raw = check_shape(input)?;
        let id15: [u8; 15] = raw[..15].try_into().expect("shape checked");
        let expected = suffix_of(&id15);
        if raw.len() == 18 {
            let found = &raw[15..];
            if !found.eq_ignore_ascii_case(&expected) {
                return Err(AccountIdError::ChecksumMismatch {
                    expected: String::from_utf8_lossy(&expected).into_owned(),
                    found: String::from_utf8_lossy(found).into_owned(),
                });
            }
        }
        Self::from_id15(id15)
    }

    /// Parses a key as Zendesk stores it in `external_id`, which compares case-insensitively.
    ///
    /// An 18-character key whose case was lost (`001d000000irfmaiah`) is repaired from its
    /// suffix, which records which of the first 15 characters are upper case. A 15-character
    /// key cannot be repaired and is taken as given.
    pub fn parse_key(input: &str) -> Result<Self, AccountIdError> {
        let raw = check_shape(input)?;
        if raw.len() == 15 {
            return Self::parse(input);
        }
        let mut id15: [u8; 15] = raw[..15].try_into().expect("shape checked");
        for (chunk, &c) in raw[15..].iter().enumerate() {
            let bits = SUFFIX_ALPHABET
                .iter()
                .position(|&a| a == c.to_ascii_uppercase())
                .ok_or_else(|| AccountIdError::InvalidSuffix {
                    found: String::from_utf8_lossy(&raw[15..]).into_owned(),
                })?;
            for i in 0..5 {
                let b = &mut id15[chunk * 5 + i];
                let upper = bits & (1 << i) != 0;
                if upper && b.is_ascii_digit() {
                    return Err(AccountIdError::InvalidSuffix {
                        found: String::from_utf8_lossy(&raw[15..]).into_owned(),
                    });
                }
                *b = if upper {
                    b.to_ascii_uppercase()
                } else {
                    b.to_ascii_lowercase()
                };
            }
        }
        Self::from_id15(id15)
    }

    fn from_id15(id15: [u8; 15]) -> Result<Self, AccountIdError> {
        if &id15[..3] != ACCOUNT_KEY_PREFIX.as_bytes() {
            return Err(AccountIdError::NotAnAccount {
                prefix: String::from_utf8_lossy(&id15[..3]).into_owned(),
            });
        }
        let mut full = [0u8; 18];
        full[..15].copy_from_slice(&id15);
        full[15..].copy_from_slice(&suffix_of(&id15));
        Ok(Self(full))
    }

    /// The canonical 18-character form.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ids hold ASCII only")
    }

    /// The case-sensitive 15-character form (how legacy keys were sometimes written).
    pub fn id15(&self) -> &str {
        &self.as_str()[..15]
    }

    /// Whether a Zendesk `external_id` names this account: the 18-character form in any case
    /// (its suffix restores the case), or the exact 15-character form. A 15-character key in
    /// another case is another record, since 15-character ids are case-sensitive.
    pub fn is_key(&self, external_id: &str) -> bool {
        AccountId::parse_key(external_id).is_ok_and(|id| id == *self)
    }
}

fn check_shape(input: &str) -> Result<&[u8], AccountIdError> {
    let raw = input.trim().as_bytes();
    if raw.is_empty() {
        return Err(AccountIdError::Empty);
    }
    if let Some((position, found)) = input
        .trim()
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
    {
        return Err(AccountIdError::InvalidCharacter { found, position });
    }
    if raw.len() != 15 && raw.len() != 18 {
        return Err(AccountIdError::WrongLength { len: raw.len() });
    }
    Ok(raw)
}

/// The three case-safe suffix characters of a 15-character id.
fn suffix_of(id15: &[u8; 15]) -> [u8; 3] {
    let mut suffix = [0u8; 3];
    for (chunk, out) in suffix.iter_mut().enumerate() {
        let bits = (0..5).fold(0usize, |bits, i| {
            if id15[chunk * 5 + i].is_ascii_uppercase() {
                bits | (1 << i)
            } else {
                bits
            }
        });
        *out = SUFFIX_ALPHABET[bits];
    }
    suffix
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.as_str())
    }
}

impl std::str::FromStr for AccountId {
    type Err = AccountIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for AccountId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Why a string is not a Zendesk organization id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrgIdError {
    #[error("organization id is empty")]
    Empty,
    #[error("organization id {found:?} is not a positive whole number")]
    NotANumber { found: String },
}

/// A Zendesk organization id. Zendesk ids overflow a Salesforce Number field, so Salesforce
/// stores them as text (`Zendesk_Org_ID__c`) and this type parses that text.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(u64);

impl OrgId {
    pub fn new(id: u64) -> Result<Self, OrgIdError> {
        if id == 0 {
            return Err(OrgIdError::NotANumber { found: "0".into() });
        }
        Ok(Self(id))
    }

    /// Parses the text Salesforce holds in `Zendesk_Org_ID__c`.
    pub fn parse(input: &str) -> Result<Self, OrgIdError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(OrgIdError::Empty);
        }
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OrgIdError::NotANumber { found: t.into() });
        }
        t.parse::<u64>()
            .ok()
            .and_then(|n| Self::new(n).ok())
            .ok_or_else(|| OrgIdError::NotANumber { found: t.into() })
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Test vectors from the Salesforce fact sheet (official doc examples).
    #[test]
    fn documented_vectors_round_trip() {
        for id18 in [
            "001D000000IRFmaIAH",
            "001D000000IomazIAB",
            "001D000000IqhSLIAZ",
        ] {
            let from15 = AccountId::parse(&id18[..15]).unwrap();
            assert_eq!(from15.as_str(), id18);
            let from18 = AccountId::parse(id18).unwrap();
            assert_eq!(from18, from15);
            assert_eq!(from18.id15(), &id18[..15]);
        }
    }

    #[test]
    fn checksum_is_computed_for_other_prefixes_but_they_are_not_accounts() {
        // The checksum vectors for User, Contact, Campaign and custom objects are correct,
        // and the error names the prefix, not the checksum.
        for id in [
            "00558000001N0KeAAK",
            "003G000001SUbc4IAD",
            "70130000001tcyIAAQ",
            "a0BA0000000L2ZCMA0",
        ] {
            assert_eq!(
                AccountId::parse(id),
                Err(AccountIdError::NotAnAccount {
                    prefix: id[..3].into()
                })
            );
        }
    }

    #[test]
    fn suffix_compares_case_insensitively() {
        assert!(AccountId::parse("001D000000IRFmaiah").is_ok());
    }

    #[test]
    fn bad_inputs_say_what_is_wrong() {
        assert_eq!(AccountId::parse(""), Err(AccountIdError::Empty));
        assert_eq!(AccountId::parse("   "), Err(AccountIdError::Empty));
        assert_eq!(
            AccountId::parse("001D000000IRFm"),
            Err(AccountIdError::WrongLength { len: 14 })
        );
        assert_eq!(
            AccountId::parse("001D000000IRFmaIA"),
            Err(AccountIdError::WrongLength { len: 17 })
        );
        assert_eq!(
            AccountId::parse("001D000000IR-maIAH"),
            Err(AccountIdError::InvalidCharacter {
                found: '-',
                position: 12
            })
        );
        assert_eq!(
            AccountId::parse("001D000000IRFmaIAA"),
            Err(AccountIdError::ChecksumMismatch {
                expected: "IAH".into(),
                found: "IAA".into()
            })
        );
        // A lower-cased 18-character id fails the strict parse: its checksum no longer matches.
        assert!(matches!(
            AccountId::parse("001d000000irfmaiah"),
            Err(AccountIdError::ChecksumMismatch { .. })
        ));
        let msg = AccountId::parse("001D000000IRFmaIAA")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("IAH") && msg.contains("IAA"), "{msg}");
    }

    #[test]
    fn keys_repair_lost_case() {
        let id = AccountId::parse("001D000000IRFmaIAH").unwrap();
        assert_eq!(AccountId::parse_key("001d000000irfmaiah").unwrap(), id);
        assert_eq!(AccountId::parse_key("001D000000IRFMAIAH").unwrap(), id);
        assert_eq!(AccountId::parse_key("001D000000IRFma").unwrap(), id);
        // A suffix that marks a digit as upper case cannot come from any real id.
        assert!(matches!(
            AccountId::parse_key("001D000000IRFma555"),
            Err(AccountIdError::InvalidSuffix { .. })
        ));
    }

    #[test]
    fn is_key_accepts_both_forms_any_case() {
        let id = AccountId::parse("001D000000IRFmaIAH").unwrap();
        assert!(id.is_key("001D000000IRFmaIAH"));
        assert!(id.is_key("001d000000irfmaiah"));
        assert!(id.is_key("001D000000IRFma"));
        assert!(id.is_key(" 001D000000IRFma "));
        // 15-character ids are case-sensitive: this one names another record.
        assert!(!id.is_key("001D000000IRFMA"));
        assert!(!id.is_key("001D000000IomazIAB"));
        assert!(!id.is_key(""));
    }

    #[test]
    fn serde_round_trip_and_rejects_bad_ids() {
        let id: AccountId = serde_json::from_str("\"001D000000IRFma\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"001D000000IRFmaIAH\""
        );
        let err = serde_json::from_str::<AccountId>("\"003G000001SUbc4IAD\"").unwrap_err();
        assert!(err.to_string().contains("not an Account"), "{err}");
    }

    #[test]
    fn org_ids_parse_text() {
        assert_eq!(OrgId::parse(" 360001234567 ").unwrap().get(), 360001234567);
        assert_eq!(OrgId::parse(""), Err(OrgIdError::Empty));
        assert!(matches!(
            OrgId::parse("12a"),
            Err(OrgIdError::NotANumber { .. })
        ));
        assert!(matches!(
            OrgId::parse("-5"),
            Err(OrgIdError::NotANumber { .. })
        ));
        assert!(matches!(
            OrgId::parse("0"),
            Err(OrgIdError::NotANumber { .. })
        ));
        assert!(matches!(
            OrgId::parse("99999999999999999999999"),
            Err(OrgIdError::NotANumber { .. })
        ));
    }

    fn arb_id15() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]{12}".prop_map(|tail| format!("001{tail}"))
    }

    proptest! {
        #[test]
        fn any_15_char_account_id_round_trips(id15 in arb_id15()) {
            let id = AccountId::parse(&id15).unwrap();
            prop_assert_eq!(id.id15(), id15.as_str());
            prop_assert_eq!(AccountId::parse(id.as_str()).unwrap(), id.clone());
            // Zendesk may hand the key back in any case: the 18-character form survives that.
            prop_assert_eq!(AccountId::parse_key(&id.as_str().to_ascii_lowercase()).unwrap(), id.clone());
            prop_assert_eq!(AccountId::parse_key(&id.as_str().to_ascii_uppercase()).unwrap(), id);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = AccountId::parse(&s);
            let _ = AccountId::parse_key(&s);
            let _ = OrgId::parse(&s);
        }

        #[test]
        fn changing_one_case_breaks_the_checksum(id15 in arb_id15(), pos in 3usize..15) {
            let id = AccountId::parse(&id15).unwrap();
            let mut bytes = id.as_str().as_bytes().to_vec();
            prop_assume!(bytes[pos].is_ascii_alphabetic());
            bytes[pos] = if bytes[pos].is_ascii_uppercase() { bytes[pos].to_ascii_lowercase() } else { bytes[pos].to_ascii_uppercase() };
            let flipped = String::from_utf8(bytes).unwrap();
            let is_checksum_mismatch = matches!(AccountId::parse(&flipped), Err(AccountIdError::ChecksumMismatch { .. }));
            prop_assert!(is_checksum_mismatch);
        }
    }
}
