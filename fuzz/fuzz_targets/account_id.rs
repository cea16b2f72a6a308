//! The Account id parsers: every id they accept is canonical (18 characters, `001`, a correct
//! checksum), each of its written forms parses back to it, and a parsed id keeps what was
//! given. Zendesk organization ids ride along (the same inputs, a tiny parser).
#![no_main]

use libfuzzer_sys::fuzz_target;
use orglink_shared::ids::{AccountId, OrgId};

fn assert_canonical(id: &AccountId) {
    let s = id.as_str();
    assert_eq!(s.len(), 18, "{s:?} is not 18 characters");
    assert!(s.starts_with("001"), "{s:?} is not an Account id");
    assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()), "{s:?}");
    // Every written form names the same account.
    assert_eq!(AccountId::parse(s).as_ref(), Ok(id), "18-character form");
    assert_eq!(
        AccountId::parse(id.id15()).as_ref(),
        Ok(id),
        "15-character form"
    );
    assert_eq!(
        AccountId::parse_key(&s.to_ascii_lowercase()).as_ref(),
        Ok(id),
        "lowercase key"
    );
    assert_eq!(
        AccountId::parse_key(&s.to_ascii_uppercase()).as_ref(),
        Ok(id),
        "uppercase key"
    );
    assert!(id.is_key(s) && id.is_key(id.id15()) && id.is_key(&s.to_ascii_lowercase()));
    let json = serde_json::to_string(id).expect("an id serializes");
    assert_eq!(
        serde_json::from_str::<AccountId>(&json).ok().as_ref(),
        Some(id),
        "serde"
    );
}

fuzz_target!(|input: &str| {
    let given = input.trim();
    match AccountId::parse(input) {
        Ok(id) => {
            assert_canonical(&id);
            // The first 15 characters are case-sensitive and kept exactly; an 18-character
            // suffix was only checked (case-blind), then written canonically.
            assert_eq!(&given[..15], id.id15(), "the 15 characters given are kept");
            if given.len() == 18 {
                assert!(given[15..].eq_ignore_ascii_case(&id.as_str()[15..]));
                assert_eq!(
                    AccountId::parse_key(input).as_ref(),
                    Ok(&id),
                    "a valid id is a valid key"
                );
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match AccountId::parse_key(input) {
        Ok(id) => {
            assert_canonical(&id);
            if given.len() == 18 {
                // The key's case was restored from its suffix, so only case may differ.
                assert!(given.eq_ignore_ascii_case(id.as_str()), "{given:?} -> {id}");
            } else {
                assert_eq!(given, id.id15(), "a 15-character key is taken as given");
            }
            assert!(id.is_key(input));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    if let Ok(org) = OrgId::parse(input) {
        assert!(org.get() > 0);
        assert_eq!(OrgId::parse(&org.to_string()), Ok(org));
        assert_eq!(given.trim_start_matches('0'), org.to_string());
    }
});
