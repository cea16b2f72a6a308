//! Requests from the Salesforce notifier to intake: the signature header and the batch body.
//!
//! Pure: no clock, no I/O. Intake passes the header, the raw body and `now`; the Apex notifier
//! (`infra/salesforce/`) builds the same header, checked against the shared vector in
//! `tests/vectors/intake_signature.json`. The format is documented in `docs/intake-signature.md`.
//!
//! Header: `X-Orglink-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
//! A header may carry several `v1` values (a sender mid-rotation signs with both secrets);
//! one matching value is enough. Unknown keys are ignored so a later scheme (`v2`) can be
//! added beside `v1` without breaking a receiver.

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::contract::{EventKind, SalesforceOrgId};
use crate::credentials::Secret;
use crate::ids::{AccountId, AccountIdError};

type HmacSha256 = Hmac<Sha256>;

/// The HTTP header carrying the signature (HTTP header names compare case-insensitively).
pub const SIGNATURE_HEADER: &str = "X-Orglink-Signature";

/// How far a request's timestamp may be from intake's clock, either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The largest body intake reads (a 200-record save makes about 40 KB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The event kinds Salesforce may send. `reconcile_repair` is orglink's own and is refused
/// from outside.
pub const SALESFORCE_EVENT_KINDS: [EventKind; 6] = [
    EventKind::LateStageOpportunity,
    EventKind::ClosedWon,
    EventKind::BecameCustomer,
    EventKind::NameChanged,
    EventKind::DomainChanged,
    EventKind::Manual,
];

// ---------------------------------------------------------------------------------------------
// Signing
// ---------------------------------------------------------------------------------------------

/// The secrets intake accepts: the current one and, while the sender is being switched to it,
/// the previous one (rotation procedure: `docs/intake-signature.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecrets {
    pub current: Secret,
    pub previous: Option<Secret>,
}

impl SigningSecrets {
    pub fn new(current: Secret, previous: Option<Secret>) -> Self {
        SigningSecrets { current, previous }
    }
}

/// Which secret a verified request was signed with: `Previous` means the sender has not
/// switched to the current secret yet, so the previous one cannot be retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretUsed {
    Current,
    Previous,
}

/// An authentic request within the time window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The sender's timestamp (unix seconds).
    pub timestamp: i64,
    pub secret: SecretUsed,
}

/// Why a request's signature was refused. Intake answers 401 to each; none of them carries
/// the expected signature or a secret, so logging them is safe.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    #[error(
        "the request has no {SIGNATURE_HEADER} header: only the orglink notifier may call intake"
    )]
    Missing,
    #[error(
        "the {SIGNATURE_HEADER} header is malformed ({reason}); expected t=<unix seconds>,v1=<64 lowercase hex>"
    )]
    Malformed { reason: &'static str },
    #[error(
        "the signature matches no configured secret: the sender's secret differs from intake's (check the rotation state) or the body was altered"
    )]
    Mismatch,
    #[error(
        "the request was signed {age_seconds} s ago, beyond the {tolerance_seconds} s tolerance: a replay, or the sender was delayed"
    )]
    Stale {
        age_seconds: i64,
        tolerance_seconds: u64,
    },
    #[error(
        "the request is dated {ahead_seconds} s in the future, beyond the {tolerance_seconds} s tolerance: the sender's clock is wrong"
    )]
    FromFuture {
        ahead_seconds: i64,
        tolerance_seconds: u64,
    },
}

/// The header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    sign_with_all(&[secret], timestamp, body)
}

/// A header carrying one `v1` per secret, for a sender that holds both secrets during a
/// rotation.
pub fn sign_with_all(secrets: &[&Secret], timestamp: i64, body: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for secret in secrets {
        header.push_str(",v1=");
        header.push_str(&hex::encode(
            mac(secret, timestamp, body).finalize().into_bytes(),
        ));
    }
    header
}

/// The MAC over `"<timestamp>.<body>"`, the string the Apex notifier signs.
fn mac(secret: &Secret, timestamp: i64, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Checks a request: the header (`None` when absent) against `body`, `now` (unix seconds) and
/// the secrets.
///
/// The signature is checked before the time window, so `Stale` and `FromFuture` describe
/// authentic requests (a replay, a delayed retry, a wrong clock), never forgeries.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    now: i64,
    secrets: &SigningSecrets,
    tolerance: Duration,
) -> Result<Verified, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let parsed = parse_header(header)?;
    let candidates = [
        Some((&secrets.current, SecretUsed::Current)),
        secrets.previous.as_ref().map(|s| (s, SecretUsed::Previous)),
    ];
    let mut matched = None;
    for (secret, used) in candidates.into_iter().flatten() {
        // verify_slice compares in constant time.
        if parsed.signatures.iter().any(|sig| {
            mac(secret, parsed.timestamp, body)
                .verify_slice(sig)
                .is_ok()
        }) {
            matched = Some(used);
            break;
        }
    }
    let secret = matched.ok_or(SignatureError::Mismatch)?;
    let tolerance_seconds = tolerance.as_secs();
    let tol = i64::try_from(tolerance_seconds).unwrap_or(i64::MAX);
    let age = now.saturating_sub(parsed.timestamp);
    if age > tol {
        return Err(SignatureError::Stale {
            age_seconds: age,
            tolerance_seconds,
        });
    }
    if age < -tol {
        return Err(SignatureError::FromFuture {
            ahead_seconds: age.saturating_neg(),
            tolerance_seconds,
        });
    }
    Ok(Verified {
        timestamp: parsed.timestamp,
        secret,
    })
}

struct ParsedHeader {
    timestamp: i64,
    signatures: Vec<[u8; 32]>,
}

/// Reads the header strictly (canonical digits, lowercase hex), so that no two different
/// header texts verify as the same signature.
fn parse_header(header: &str) -> Result<ParsedHeader, SignatureError> {
    let malformed = |reason| SignatureError::Malformed { reason };
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or(malformed("an item is not key=value"))?;
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(malformed("t appears twice"));
                }
                let canonical = !value.is_empty()
                    && value.len() <= 12
                    && value.bytes().all(|b| b.is_ascii_digit())
                    && (value == "0" || !value.starts_with('0'));
                if !canonical {
                    return Err(malformed("t is not unix seconds"));
                }
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| malformed("t is not unix seconds"))?,
                );
            }
            "v1" => {
                let lower_hex = value.len() == 64
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if !lower_hex {
                    return Err(malformed("v1 is not 64 lowercase hex digits"));
                }
                let mut sig = [0u8; 32];
                hex::decode_to_slice(value, &mut sig)
                    .map_err(|_| malformed("v1 is not 64 lowercase hex digits"))?;
                signatures.push(sig);
            }
            // Another scheme (v0, v2...): not ours to judge.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(malformed("no t"))?;
    if signatures.is_empty() {
        return Err(malformed("no v1"));
    }
    if signatures.len() > 4 {
        return Err(malformed("more than four v1 values"));
    }
    Ok(ParsedHeader {
        timestamp,
        signatures,
    })
}

// ---------------------------------------------------------------------------------------------
// The batch body
// ---------------------------------------------------------------------------------------------

/// One request's events, from one Salesforce org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntakeBatch {
    /// The sending org (`UserInfo.getOrganizationId()`): intake refuses a batch from any org
    /// but the one the deployment is bound to, so a sandbox copied from production (with
    /// the secret) cannot drive production Zendesk.
    pub org_id: SalesforceOrgId,
    pub events: Vec<IntakeEvent>,
}

/// One account that changed in a way that may create or relink its organization. A hint:
/// the worker reads the account fresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntakeEvent {
    pub account_id: AccountId,
    pub kind: EventKind,
    pub event_id: EventId,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    /// The account's `SystemModstamp` when the notifier saw it; older events are coalesced.
    #[serde(with = "time::serde::rfc3339")]
    pub account_modstamp: OffsetDateTime,
}

/// The sender's id for one event: 1–64 of `A-Z a-z 0-9 . _ : -`, so that with the account id
/// it fits an SQS deduplication id (128 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<EventId, &'static str> {
        if raw.is_empty() {
            return Err("is empty");
        }
        if raw.len() > Self::MAX_LEN {
            return Err("is longer than 64 characters");
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err("may hold only letters, digits and . _ : -");
        }
        Ok(EventId(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where in the body a problem is: the top level, or the event at `index` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Batch,
    Event(usize),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Batch => f.write_str("the batch"),
            Place::Event(i) => write!(f, "events[{i}]"),
        }
    }
}

/// Why a body was refused. The whole batch is refused (intake answers 400 and enqueues
/// nothing), and each error names the event and the field, for the notifier's owner.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    #[error("the body is {size} bytes, over the {limit}-byte limit: the notifier must split it")]
    TooLarge { size: usize, limit: usize },
    #[error("the body is not JSON (line {line}, column {column}): {message}")]
    NotJson {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{place}: must be a JSON object")]
    NotAnObject { place: Place },
    #[error("{place}: field `{field}` is missing")]
    MissingField { place: Place, field: &'static str },
    #[error("{place}: field `{field}` is not part of the intake format")]
    UnknownField { place: Place, field: String },
    #[error("{place}: field `{field}` must be {expected}")]
    WrongType {
        place: Place,
        field: &'static str,
        expected: &'static str,
    },
    #[error("the batch has no events")]
    NoEvents,
    #[error("the batch: field `org_id`: {reason}")]
    BadOrgId { reason: String },
    #[error("{place}: field `account_id`: {source}")]
    BadAccountId {
        place: Place,
        #[source]
        source: AccountIdError,
    },
    #[error("{place}: field `kind`: {kind:?} is not an event kind Salesforce may send ({allowed})")]
    UnknownKind {
        place: Place,
        kind: String,
        allowed: String,
    },
    #[error("{place}: field `event_id` {reason}")]
    BadEventId { place: Place, reason: &'static str },
    #[error("{place}: field `{field}`: {value:?} is not an RFC 3339 timestamp")]
    BadTimestamp {
        place: Place,
        field: &'static str,
        value: String,
    },
}

impl BatchError {
    /// The event the error is about (`None` for the batch as a whole).
    pub fn event_index(&self) -> Option<usize> {
        let place = match self {
            BatchError::NotAnObject { place }
            | BatchError::MissingField { place, .. }
            | BatchError::UnknownField { place, .. }
            | BatchError::WrongType { place, .. }
            | BatchError::BadAccountId { place, .. }
            | BatchError::UnknownKind { place, .. }
            | BatchError::BadEventId { place, .. }
            | BatchError::BadTimestamp { place, .. } => *place,
            _ => Place::Batch,
        };
        match place {
            Place::Event(i) => Some(i),
            Place::Batch => None,
        }
    }
}

const BATCH_FIELDS: [&str; 2] = ["org_id", "events"];
const EVENT_FIELDS: [&str; 5] = [
    "account_id",
    "kind",
    "event_id",
    "occurred_at",
    "account_modstamp",
];

/// The wire names of the batch's and each event's fields (the Apex notifier's builder is
/// checked against these).
pub fn wire_fields() -> (&'static [&'static str], &'static [&'static str]) {
    (&BATCH_FIELDS, &EVENT_FIELDS)
}

/// Parses a body strictly, all or nothing: unknown fields, kinds Salesforce may not send and
/// ids with a wrong checksum are refused, each naming the event and field.
pub fn parse_batch(body: &[u8]) -> Result<IntakeBatch, BatchError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BatchError::TooLarge {
            size: body.len(),
            limit: MAX_BODY_BYTES,
        });
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BatchError::NotJson {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    let top = object(&value, Place::Batch)?;
    only_known(top, Place::Batch, &BATCH_FIELDS)?;
    let org_id = string(top, Place::Batch, "org_id")?;
    let org_id = SalesforceOrgId::try_from(org_id.to_string())
        .map_err(|reason| BatchError::BadOrgId { reason })?;
    let events = match top.get("events") {
        None => {
            return Err(BatchError::MissingField {
                place: Place::Batch,
                field: "events",
            });
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(BatchError::WrongType {
                place: Place::Batch,
                field: "events",
                expected: "an array of events",
            });
        }
    };
    if events.is_empty() {
        return Err(BatchError::NoEvents);
    }
    let events = events
        .iter()
        .enumerate()
        .map(|(i, v)| parse_event(v, Place::Event(i)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(IntakeBatch { org_id, events })
}

fn parse_event(value: &Value, place: Place) -> Result<IntakeEvent, BatchError> {
    let obj = object(value, place)?;
    only_known(obj, place, &EVENT_FIELDS)?;
    let account_id = AccountId::parse(string(obj, place, "account_id")?)
        .map_err(|source| BatchError::BadAccountId { place, source })?;
    let kind_raw = string(obj, place, "kind")?;
    let kind = SALESFORCE_EVENT_KINDS
        .into_iter()
        .find(|k| k.as_str() == kind_raw)
        .ok_or_else(|| BatchError::UnknownKind {
            place,
            kind: kind_raw.to_string(),
            allowed: SALESFORCE_EVENT_KINDS.map(|k| k.as_str()).join(", "),
        })?;
    let event_id = EventId::parse(string(obj, place, "event_id")?)
        .map_err(|reason| BatchError::BadEventId { place, reason })?;
    Ok(IntakeEvent {
        account_id,
        kind,
        event_id,
        occurred_at: timestamp(obj, place, "occurred_at")?,
        account_modstamp: timestamp(obj, place, "account_modstamp")?,
    })
}

fn object(value: &Value, place: Place) -> Result<&Map<String, Value>, BatchError> {
    value.as_object().ok_or(BatchError::NotAnObject { place })
}

fn only_known(obj: &Map<String, Value>, place: Place, known: &[&str]) -> Result<(), BatchError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(field) => Err(BatchError::UnknownField {
            place,
            field: field.clone(),
        }),
        None => Ok(()),
    }
}

fn string<'a>(
    obj: &'a Map<String, Value>,
    place: Place,
    field: &'static str,
) -> Result<&'a str, BatchError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(BatchError::MissingField { place, field }),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(BatchError::WrongType {
            place,
            field,
            expected: "a string",
        }),
    }
}

fn timestamp(
    obj: &Map<String, Value>,
    place: Place,
    field: &'static str,
) -> Result<OffsetDateTime, BatchError> {
    let raw = string(obj, place, field)?;
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| BatchError::BadTimestamp {
        place,
        field,
        value: raw.to_string(),
    })
}

/// serde_json appends " at line L column C", which the error already carries as fields.
fn strip_position(message: &str) -> String {
    message
        .split(" at line ")
        .next()
        .unwrap_or(message)
        .to_string()
}

impl IntakeBatch {
    /// The body as the notifier sends it (compact JSON, the wire names above).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a batch serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "orglink-test-secret";
    const NOW: i64 = 1_767_225_600;
    const TOL: Duration = DEFAULT_TOLERANCE;

    fn secrets() -> SigningSecrets {
        SigningSecrets::new(Secret::new(SECRET), None)
    }

    fn event_json(account: &str, kind: &str) -> String {
        format!(
            r#"{{"account_id":"{account}","kind":"{kind}","event_id":"e-1","occurred_at":"2026-01-01T00:00:00.000Z","account_modstamp":"2026-01-01T00:00:00Z"}}"#
        )
    }

    fn body(events: &[String]) -> String {
        format!(
            r#"{{"org_id":"00D000000000001AAA","events":[{}]}}"#,
            events.join(",")
        )
    }

    #[test]
    fn sign_then_verify() {
        let h = sign(&Secret::new(SECRET), NOW, b"{}");
        assert!(h.starts_with(&format!("t={NOW},v1=")), "{h}");
        assert_eq!(h.len(), format!("t={NOW},v1=").len() + 64);
        let v = verify(Some(&h), b"{}", NOW, &secrets(), TOL).unwrap();
        assert_eq!(
            v,
            Verified {
                timestamp: NOW,
                secret: SecretUsed::Current
            }
        );
    }

    #[test]
    fn known_answer_matches_an_independent_hmac() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". Signing
        // t=0 with body "what…" would add "0." in front, so check the MAC helper directly.
        let mut m = HmacSha256::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(m.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // And sign() is HMAC over "<t>.<body>".
        let mut m = HmacSha256::new_from_slice(SECRET.as_bytes()).unwrap();
        m.update(format!("{NOW}.abc").as_bytes());
        let expected = format!("t={NOW},v1={}", hex::encode(m.finalize().into_bytes()));
        assert_eq!(sign(&Secret::new(SECRET), NOW, b"abc"), expected);
    }

    #[test]
    fn each_problem_has_its_error() {
        let s = secrets();
        let h = sign(&Secret::new(SECRET), NOW, b"x");
        assert_eq!(
            verify(None, b"x", NOW, &s, TOL),
            Err(SignatureError::Missing)
        );
        for bad in [
            "",
            "t=1",
            "v1=00",
            &format!("t=01,v1={}", "0".repeat(64)),
            &format!("t=-5,v1={}", "0".repeat(64)),
            &format!("t=5,t=5,v1={}", "0".repeat(64)),
            &format!("t=5,v1={}", "A".repeat(64)),
            &format!("t=5,v1={}", "0".repeat(63)),
            "t=5;v1=00",
        ] {
            assert!(
                matches!(
                    verify(Some(bad), b"x", NOW, &s, TOL),
                    Err(SignatureError::Malformed { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            verify(Some(&h), b"y", NOW, &s, TOL),
            Err(SignatureError::Mismatch)
        );
        let other = SigningSecrets::new(Secret::new("other"), None);
        assert_eq!(
            verify(Some(&h), b"x", NOW, &other, TOL),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&h), b"x", NOW + 301, &s, TOL),
            Err(SignatureError::Stale {
                age_seconds: 301,
                tolerance_seconds: 300
            })
        );
        assert_eq!(
            verify(Some(&h), b"x", NOW - 301, &s, TOL),
            Err(SignatureError::FromFuture {
                ahead_seconds: 301,
                tolerance_seconds: 300
            })
        );
    }

    #[test]
    fn tolerance_edges_are_inclusive() {
        let s = secrets();
        let h = sign(&Secret::new(SECRET), NOW, b"x");
        assert!(verify(Some(&h), b"x", NOW + 300, &s, TOL).is_ok());
        assert!(verify(Some(&h), b"x", NOW - 300, &s, TOL).is_ok());
        assert!(verify(Some(&h), b"x", NOW + 301, &s, TOL).is_err());
        assert!(verify(Some(&h), b"x", NOW - 301, &s, TOL).is_err());
        assert!(verify(Some(&h), b"x", NOW + 1, &s, Duration::ZERO).is_err());
        assert!(verify(Some(&h), b"x", NOW, &s, Duration::ZERO).is_ok());
    }

    #[test]
    fn rotation_accepts_previous_and_says_so() {
        let old = Secret::new("old-secret");
        let new = Secret::new("new-secret");
        let rotating = SigningSecrets::new(new.clone(), Some(old.clone()));
        let by_old = sign(&old, NOW, b"x");
        let by_new = sign(&new, NOW, b"x");
        assert_eq!(
            verify(Some(&by_old), b"x", NOW, &rotating, TOL)
                .unwrap()
                .secret,
            SecretUsed::Previous
        );
        assert_eq!(
            verify(Some(&by_new), b"x", NOW, &rotating, TOL)
                .unwrap()
                .secret,
            SecretUsed::Current
        );
        // After the previous secret is retired, its signatures fail.
        let retired = SigningSecrets::new(new.clone(), None);
        assert_eq!(
            verify(Some(&by_old), b"x", NOW, &retired, TOL),
            Err(SignatureError::Mismatch)
        );
        // A sender holding both signs with both; either receiver state accepts it.
        let both = sign_with_all(&[&old, &new], NOW, b"x");
        assert_eq!(both.matches("v1=").count(), 2);
        assert!(verify(Some(&both), b"x", NOW, &retired, TOL).is_ok());
        let not_yet = SigningSecrets::new(old, None);
        assert!(verify(Some(&both), b"x", NOW, &not_yet, TOL).is_ok());
        // Unknown schemes are ignored, spaces after commas tolerated.
        let with_v0 = format!("v0=zzz, {by_new}");
        assert!(verify(Some(&with_v0), b"x", NOW, &rotating, TOL).is_ok());
    }

    #[test]
    fn errors_never_show_the_expected_signature_or_secret() {
        let s = secrets();
        let good = sign(&Secret::new(SECRET), NOW, b"x");
        let expected_hex = good.split("v1=").nth(1).unwrap().to_string();
        let forged = format!("t={NOW},v1={}", "0".repeat(64));
        let errors = [
            verify(Some(&forged), b"x", NOW, &s, TOL).unwrap_err(),
            verify(Some(&good), b"y", NOW, &s, TOL).unwrap_err(),
            verify(Some(&good), b"x", NOW + 999, &s, TOL).unwrap_err(),
            verify(Some("t=x"), b"x", NOW, &s, TOL).unwrap_err(),
        ];
        for e in errors {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(&expected_hex), "{shown}");
            assert!(!shown.contains(SECRET), "{shown}");
        }
        let shown = format!("{s:?}");
        assert!(
            !shown.contains(SECRET) && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn parses_a_batch() {
        let b = body(&[
            event_json("001D000000IRFmaIAH", "closed_won"),
            event_json("001D000000IRFma", "late_stage_opportunity"),
        ]);
        let batch = parse_batch(b.as_bytes()).unwrap();
        assert_eq!(batch.org_id.as_str(), "00D000000000001AAA");
        assert_eq!(batch.events.len(), 2);
        assert_eq!(batch.events[0].kind, EventKind::ClosedWon);
        assert_eq!(batch.events[1].account_id.as_str(), "001D000000IRFmaIAH");
        assert_eq!(batch.events[0].event_id.as_str(), "e-1");
        assert_eq!(batch.events[0].occurred_at.unix_timestamp(), NOW);
        // Serializing and parsing again gives the same batch.
        assert_eq!(parse_batch(batch.to_json().as_bytes()).unwrap(), batch);
    }

    fn err(b: &str) -> BatchError {
        parse_batch(b.as_bytes()).unwrap_err()
    }

    #[test]
    fn each_bad_body_names_the_event_and_field() {
        let ok = event_json("001D000000IRFmaIAH", "closed_won");
        assert!(matches!(err("{"), BatchError::NotJson { .. }));
        assert!(matches!(
            err("[]"),
            BatchError::NotAnObject {
                place: Place::Batch
            }
        ));
        assert_eq!(err(&body(&[])), BatchError::NoEvents);
        assert_eq!(
            err(r#"{"events":[]}"#),
            BatchError::MissingField {
                place: Place::Batch,
                field: "org_id"
            }
        );
        assert!(matches!(
            err(r#"{"org_id":"005000000000001","events":[]}"#),
            BatchError::BadOrgId { .. }
        ));
        assert_eq!(
            err(r#"{"org_id":"00D000000000001AAA"}"#),
            BatchError::MissingField {
                place: Place::Batch,
                field: "events"
            }
        );
        assert_eq!(
            err(r#"{"org_id":"00D000000000001AAA","events":{}}"#),
            BatchError::WrongType {
                place: Place::Batch,
                field: "events",
                expected: "an array of events"
            }
        );
        assert_eq!(
            err(r#"{"org_id":"00D000000000001AAA","events":[],"extra":1}"#),
            BatchError::UnknownField {
                place: Place::Batch,
                field: "extra".into()
            }
        );
        // Event problems name the index; a good first event does not save the batch.
        let unknown = err(&body(&[
            ok.clone(),
            event_json("001D000000IRFmaIAH", "reconcile_repair"),
        ]));
        assert!(
            matches!(&unknown, BatchError::UnknownKind { place: Place::Event(1), kind, .. } if kind == "reconcile_repair")
        );
        assert_eq!(unknown.event_index(), Some(1));
        assert!(unknown.to_string().contains("events[1]"), "{unknown}");
        let checksum = err(&body(&[
            ok.clone(),
            ok.clone(),
            event_json("001D000000IRFmaIAX", "closed_won"),
        ]));
        assert!(matches!(
            checksum,
            BatchError::BadAccountId {
                place: Place::Event(2),
                source: AccountIdError::ChecksumMismatch { .. }
            }
        ));
        let contact = err(&body(&[event_json("003G000001SUbc4IAD", "closed_won")]));
        assert!(matches!(
            contact,
            BatchError::BadAccountId {
                source: AccountIdError::NotAnAccount { .. },
                ..
            }
        ));
        let missing = ok.replace(r#""event_id":"e-1","#, "");
        assert_eq!(
            err(&body(&[missing])),
            BatchError::MissingField {
                place: Place::Event(0),
                field: "event_id"
            }
        );
        let null = ok.replace(r#""e-1""#, "null");
        assert_eq!(
            err(&body(&[null])),
            BatchError::MissingField {
                place: Place::Event(0),
                field: "event_id"
            }
        );
        let number = ok.replace(r#""closed_won""#, "7");
        assert_eq!(
            err(&body(&[number])),
            BatchError::WrongType {
                place: Place::Event(0),
                field: "kind",
                expected: "a string"
            }
        );
        let extra = ok.replace(r#""kind""#, r#""name":"Acme","kind""#);
        assert_eq!(
            err(&body(&[extra])),
            BatchError::UnknownField {
                place: Place::Event(0),
                field: "name".into()
            }
        );
        let stamp = ok.replace("2026-01-01T00:00:00Z", "yesterday");
        assert_eq!(
            err(&body(&[stamp])),
            BatchError::BadTimestamp {
                place: Place::Event(0),
                field: "account_modstamp",
                value: "yesterday".into()
            }
        );
        let spaces = ok.replace(r#""e-1""#, r#""e 1""#);
        assert!(matches!(
            err(&body(&[spaces])),
            BatchError::BadEventId {
                place: Place::Event(0),
                ..
            }
        ));
        let long = ok.replace(r#""e-1""#, &format!("\"{}\"", "e".repeat(65)));
        assert!(matches!(err(&body(&[long])), BatchError::BadEventId { .. }));
        assert!(matches!(
            err(&body(&["3".into()])),
            BatchError::NotAnObject {
                place: Place::Event(0)
            }
        ));
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            parse_batch(&big),
            Err(BatchError::TooLarge {
                size: MAX_BODY_BYTES + 1,
                limit: MAX_BODY_BYTES
            })
        );
        // At the limit it is read (and fails only for what it holds).
        let mut at_limit = body(&[event_json("001D000000IRFmaIAH", "manual")]).into_bytes();
        at_limit.resize(MAX_BODY_BYTES, b' ');
        assert!(parse_batch(&at_limit).is_ok());
    }

    #[test]
    fn every_kind_salesforce_may_send_parses() {
        for kind in SALESFORCE_EVENT_KINDS {
            let b = body(&[event_json("001D000000IRFmaIAH", kind.as_str())]);
            assert_eq!(parse_batch(b.as_bytes()).unwrap().events[0].kind, kind);
        }
        assert!(!SALESFORCE_EVENT_KINDS.contains(&EventKind::ReconcileRepair));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn secret() -> impl Strategy<Value = String> {
            "[ -~]{1,40}"
        }

        proptest! {
            #[test]
            fn round_trip(secret in secret(), t in 0i64..4_000_000_000, body in proptest::collection::vec(any::<u8>(), 0..300), skew in -300i64..=300) {
                let s = SigningSecrets::new(Secret::new(secret.clone()), None);
                let h = sign(&Secret::new(secret), t, &body);
                prop_assert_eq!(verify(Some(&h), &body, t + skew, &s, TOL).map(|v| v.timestamp), Ok(t));
            }

            #[test]
            fn any_body_byte_change_fails(secret in secret(), body in proptest::collection::vec(any::<u8>(), 1..200), pos in any::<prop::sample::Index>(), flip in 1u8..=255) {
                let s = SigningSecrets::new(Secret::new(secret.clone()), None);
                let h = sign(&Secret::new(secret), NOW, &body);
                let mut changed = body.clone();
                let i = pos.index(changed.len());
                changed[i] ^= flip;
                prop_assert_eq!(verify(Some(&h), &changed, NOW, &s, TOL), Err(SignatureError::Mismatch));
            }

            #[test]
            fn any_header_byte_change_fails(secret in secret(), body in proptest::collection::vec(any::<u8>(), 0..100), pos in any::<prop::sample::Index>(), to in 0x20u8..0x7f) {
                let s = SigningSecrets::new(Secret::new(secret.clone()), None);
                let h = sign(&Secret::new(secret), NOW, &body);
                let mut bytes = h.clone().into_bytes();
                let i = pos.index(bytes.len());
                prop_assume!(bytes[i] != to);
                bytes[i] = to;
                let changed = String::from_utf8(bytes).unwrap();
                // Moving t within the window still changes the signed text, so it must fail.
                prop_assert!(verify(Some(&changed), &body, NOW, &s, Duration::from_secs(u32::MAX as u64)).is_err(), "{} verified", changed);
            }

            #[test]
            fn outside_the_window_fails(t in 0i64..4_000_000_000, off in 301i64..100_000, future in any::<bool>()) {
                let s = secrets();
                let h = sign(&Secret::new(SECRET), t, b"b");
                let now = if future { t - off } else { t + off };
                let r = verify(Some(&h), b"b", now, &s, TOL);
                if future {
                    prop_assert_eq!(r, Err(SignatureError::FromFuture { ahead_seconds: off, tolerance_seconds: 300 }));
                } else {
                    prop_assert_eq!(r, Err(SignatureError::Stale { age_seconds: off, tolerance_seconds: 300 }));
                }
            }

            #[test]
            fn garbage_never_panics_and_never_verifies(header in "[ -~]{0,120}", body in proptest::collection::vec(any::<u8>(), 0..100)) {
                prop_assert!(verify(Some(&header), &body, NOW, &secrets(), TOL).is_err());
                let _ = parse_batch(&body);
            }
        }
    }
}
