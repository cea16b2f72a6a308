//! The intake signature check: `verify` accepts exactly what `sign` produced (for the current
//! or the previous secret, within the window), refuses any one-byte change to a signed header,
//! and on an arbitrary header never panics and never accepts a value `sign` did not make.
//! No error text carries a secret.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use orglink_shared::credentials::Secret;
use orglink_shared::signature::{
    DEFAULT_TOLERANCE, SecretUsed, SignatureError, SigningSecrets, sign, sign_with_all, verify,
};

#[derive(Debug, Arbitrary)]
struct Input {
    current: String,
    previous: Option<String>,
    /// Unix seconds, kept within what the notifier can send (12 digits at most).
    timestamp: u32,
    /// How far intake's clock is from the sender's.
    skew: i32,
    body: Vec<u8>,
    /// A one-byte change to the signed header: position and new byte.
    change: (u16, u8),
    /// A header as an attacker writes it.
    header: String,
}

/// Secrets carry this prefix so that a leak check cannot match an error's own wording by
/// chance (a fuzzed secret "header is malformed" would).
const MARK: &str = "\u{1f511}secret:";

fn leaks(text: &str, secret: &str) -> bool {
    text.contains(secret)
}

fuzz_target!(|input: Input| {
    let Input {
        current,
        previous,
        timestamp,
        skew,
        body,
        change,
        header,
    } = input;
    let current = format!("{MARK}{current}");
    let previous = previous.map(|p| format!("{MARK}{p}"));
    let t = i64::from(timestamp);
    let now = t + i64::from(skew);
    let secrets = SigningSecrets::new(
        Secret::new(current.clone()),
        previous.clone().map(Secret::new),
    );
    let within = i64::from(skew).unsigned_abs() <= DEFAULT_TOLERANCE.as_secs();
    let check_error = |e: &SignatureError| {
        let text = e.to_string();
        assert!(
            !leaks(&text, &current),
            "an error shows the current secret: {text}"
        );
        assert!(
            !previous.as_deref().is_some_and(|p| leaks(&text, p)),
            "an error shows the previous secret"
        );
    };

    // 1. What sign produced verifies, naming the secret used, exactly when within the window.
    let signed = sign(&Secret::new(current.clone()), t, &body);
    match verify(Some(&signed), &body, now, &secrets, DEFAULT_TOLERANCE) {
        Ok(v) => {
            assert!(within, "verified {skew} s away from the sender's clock");
            assert_eq!(v.timestamp, t);
            assert_eq!(v.secret, SecretUsed::Current);
        }
        Err(e) => {
            check_error(&e);
            assert!(!within, "a fresh signature was refused: {e}");
            assert!(
                matches!(
                    e,
                    SignatureError::Stale { .. } | SignatureError::FromFuture { .. }
                ),
                "{e}"
            );
        }
    }
    if let Some(p) = &previous {
        let old = sign(&Secret::new(p.clone()), t, &body);
        let v = verify(Some(&old), &body, t, &secrets, DEFAULT_TOLERANCE)
            .expect("the previous secret verifies");
        // HMAC pads short keys with zero bytes, so secrets differing only by trailing NULs
        // are one key (found by this target; real secrets are hex): then current matches.
        let expected = if old == signed {
            SecretUsed::Current
        } else {
            SecretUsed::Previous
        };
        assert_eq!(v.secret, expected);
        // A sender mid-rotation signs with both; the current one is named.
        let both = sign_with_all(
            &[&Secret::new(p.clone()), &Secret::new(current.clone())],
            t,
            &body,
        );
        let v = verify(Some(&both), &body, t, &secrets, DEFAULT_TOLERANCE)
            .expect("both signatures verify");
        assert_eq!(v.secret, SecretUsed::Current);
    }

    // 2. Any one-byte change to a signed header is refused, whatever the window.
    let wide = Duration::from_secs(u64::from(u32::MAX));
    let mut bytes = signed.clone().into_bytes();
    let at = usize::from(change.0) % bytes.len();
    if bytes[at] != change.1 {
        bytes[at] = change.1;
        if let Ok(changed) = String::from_utf8(bytes) {
            let r = verify(Some(&changed), &body, t, &secrets, wide);
            assert!(r.is_err(), "{changed:?} verified after changing {signed:?}");
        }
    }
    // ... and so is the same header over another body.
    let mut other = body.clone();
    other.push(b' ');
    assert_eq!(
        verify(Some(&signed), &other, t, &secrets, wide),
        Err(SignatureError::Mismatch)
    );

    // 3. An arbitrary header: accepted only if it carries, as one of its v1 items, the
    //    signature sign makes for this body with a configured secret at its timestamp.
    match verify(Some(&header), &body, now, &secrets, DEFAULT_TOLERANCE) {
        Ok(v) => {
            let secret = match v.secret {
                SecretUsed::Current => current.clone(),
                SecretUsed::Previous => previous.clone().expect("previous was used"),
            };
            let expected = sign(&Secret::new(secret), v.timestamp, &body);
            let v1 = expected.split_once(",v1=").expect("sign writes v1").1;
            assert!(
                header
                    .split(',')
                    .any(|item| item.trim() == format!("v1={v1}")),
                "{header:?} verified without the signature sign makes"
            );
            assert!((now - v.timestamp).abs() <= DEFAULT_TOLERANCE.as_secs() as i64);
        }
        Err(e) => check_error(&e),
    }
    assert_eq!(
        verify(None, &body, now, &secrets, DEFAULT_TOLERANCE),
        Err(SignatureError::Missing)
    );
});
