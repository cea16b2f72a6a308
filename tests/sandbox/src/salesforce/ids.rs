//! Salesforce record ids: 15-character case-sensitive ids and their 18-character case-safe form.
//! Implemented here from the published checksum rule (reference §5), independently of orglink's
//! own `ids` module, so a bug there cannot be mirrored into the simulator.

const SUFFIX_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The 3-character suffix for a 15-character id: one character per 5-character chunk, whose
/// bit i is set when character i of the chunk is an uppercase letter.
fn suffix(id15: &[u8]) -> [u8; 3] {
    let mut out = [0u8; 3];
    for (chunk, slot) in out.iter_mut().enumerate() {
        let mut bits = 0usize;
        for i in 0..5 {
            if id15[chunk * 5 + i].is_ascii_uppercase() {
                bits |= 1 << i;
            }
        }
        *slot = SUFFIX_ALPHABET[bits];
    }
    out
}

/// The 18-character form of a 15- or 18-character id, or `None` when the text is not an id
/// (wrong length, a character outside `[A-Za-z0-9]`, or an 18-character id whose suffix does not
/// match its first 15 characters; the suffix itself is compared case-insensitively).
pub fn normalize(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    if !(bytes.len() == 15 || bytes.len() == 18) || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return None;
    }
    let expected = suffix(&bytes[..15]);
    if bytes.len() == 18 && !bytes[15..].eq_ignore_ascii_case(&expected) {
        return None;
    }
    let mut id = text[..15].to_string();
    id.push_str(std::str::from_utf8(&expected).expect("ascii"));
    Some(id)
}

/// A fresh 15-character id with the object's key prefix (`001`, `006`, `005`...): the prefix,
/// `SB` so sandbox-made ids are recognisable, then the counter in ten digits. Returned in 18.
pub fn generate(prefix: &str, counter: u64) -> String {
    let id15 = format!("{prefix}SB{counter:010}");
    normalize(&id15).expect("generated ids are well formed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples_checksum() {
        // The official examples listed in the reference sheet.
        for id18 in [
            "001D000000IRFmaIAH",
            "001D000000IomazIAB",
            "001D000000IqhSLIAZ",
            "00558000001N0KeAAK",
            "003G000001SUbc4IAD",
            "70130000001tcyIAAQ",
            "a0BA0000000L2ZCMA0",
        ] {
            assert_eq!(normalize(&id18[..15]).as_deref(), Some(id18));
            assert_eq!(normalize(id18).as_deref(), Some(id18));
        }
    }

    #[test]
    fn suffix_is_case_insensitive_but_body_is_not() {
        assert_eq!(
            normalize("001D000000IRFmaiah").as_deref(),
            Some("001D000000IRFmaIAH")
        );
        // Same 15 characters with one letter's case flipped is a different record: its
        // suffix no longer matches.
        assert_eq!(normalize("001d000000IRFmaIAH"), None);
        assert_ne!(normalize("001D000000IRFma"), normalize("001D000000IRFMA"));
    }

    #[test]
    fn rejects_what_is_not_an_id() {
        for bad in [
            "",
            "001",
            "001D000000IRFm",
            "001D000000IRFma!",
            "001D000000IRFmaIA",
            "001D000000IRFmaIAHX",
            "001D000000IRFmaZZZ",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = generate("001", 1);
        let b = generate("001", 2);
        assert_eq!(a.len(), 18);
        assert!(a.starts_with("001SB"));
        assert_ne!(a, b);
        assert_eq!(normalize(&a[..15]), Some(a));
    }
}
