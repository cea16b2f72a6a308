//! The domain normalizer: any Website value gives an answer, and a domain it gives is a fixed
//! point (normalizing it again, reading it back from storage, or writing it as a URL gives the
//! same domain).
#![no_main]

use libfuzzer_sys::fuzz_target;
use orglink_shared::domain::{Domain, DomainPolicy};

/// The longest reason text a value may produce: inputs are quoted cut to 60 characters, and
/// at most four domains of 253 characters are named.
const MAX_DETAIL_CHARS: usize = 1_600;

fuzz_target!(|input: &str| {
    let policy = DomainPolicy::default();
    let check = policy.check_website(input);
    assert_eq!(check.input, input, "the original value is kept as evidence");
    assert_eq!(
        Domain::parse(input).map_err(|e| e.unusable().clone()),
        check.outcome,
        "Domain::parse is the default policy's check"
    );
    match &check.outcome {
        Ok(domain) => {
            let d = domain.as_str();
            assert!(d.len() <= 253, "{d:?} is longer than DNS allows");
            assert!(d.contains('.'), "{d:?} has no suffix");
            assert!(
                d.split('.').all(|l| !l.is_empty() && l.len() <= 63),
                "{d:?} has an empty or overlong label"
            );
            assert!(
                d.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
                "{d:?} is not lowercase ASCII letters, digits, '-' and '.'"
            );
            assert_eq!(
                Domain::parse(d).as_ref(),
                Ok(domain),
                "normalizing a domain again changes it"
            );
            let url = format!("https://{d}/contact");
            assert_eq!(
                policy.check_website(&url).outcome.as_ref(),
                Ok(domain),
                "{url:?} does not give {d:?}"
            );
            let stored: Domain = serde_json::from_value(serde_json::json!(d))
                .unwrap_or_else(|e| panic!("{d:?} cannot be read back from storage: {e}"));
            assert_eq!(&stored, domain, "reading a stored domain changes it");
            let _ = domain.to_unicode();
            assert!(check.host.is_some(), "a domain came from no host");
        }
        Err(unusable) => {
            assert!(
                !unusable.detail.is_empty(),
                "an unusable value without a reason"
            );
            assert!(
                unusable.detail.chars().count() <= MAX_DETAIL_CHARS,
                "a {}-character reason for a {}-character input",
                unusable.detail.chars().count(),
                input.chars().count()
            );
        }
    }
    // Reports serialize every check.
    let _ = serde_json::to_string(&check).expect("a website check serializes");
});
