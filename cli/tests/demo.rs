//! The demo's canary scan (`cli/examples/demo/scan.rs`) can fail: a planted canary is found
//! as itself and base64-encoded inside the values real requests carry, and a clean text is not
//! flagged.

#[path = "../examples/demo/scan.rs"]
mod scan;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use scan::{Canary, Scanner, forms};

fn canaries() -> Vec<Canary> {
    vec![
        Canary::new(
            "zendesk-api-token",
            0x1234_5678_9abc_def0_0fed_cba9_8765_4321,
        ),
        Canary::new("salesforce-client-secret", u128::MAX / 3),
    ]
}

#[test]
fn a_clean_log_has_no_hits_and_counts_its_lines() {
    let scanner = Scanner::new(&canaries());
    let text = "{\"level\":\"DEBUG\",\"message\":\"POST /api/v2/organizations\"}\n\
                {\"level\":\"INFO\",\"message\":\"secret: <redacted>\"}\nplain line\n";
    let report = scanner.scan("logs.jsonl", text);
    assert_eq!(report.lines, 3);
    assert!(report.hits.is_empty(), "{:?}", report.hits);
}

#[test]
fn a_planted_canary_is_found_as_is_and_names_where() {
    let c = canaries();
    let scanner = Scanner::new(&c);
    let text = format!(
        "line one\n{{\"error\":\"token {} refused\"}}\nline three\n",
        c[1].value
    );
    let mut report = scanner.scan("logs.jsonl", "clean\n");
    report.add(scanner.scan("demo output", &text));
    assert_eq!(report.lines, 4);
    assert_eq!(report.hits.len(), 1, "{:?}", report.hits);
    assert_eq!(report.hits[0].line, 2);
    assert_eq!(report.hits[0].canary, "salesforce-client-secret");
    assert_eq!(report.hits[0].source, "demo output");
}

#[test]
fn a_canary_inside_basic_auth_is_found_at_every_alignment() {
    let c = canaries();
    let scanner = Scanner::new(&c);
    // The e-mail's length shifts where the token starts inside the encoded credentials.
    for email in ["a@x.io", "ab@x.io", "abc@x.io"] {
        let header = format!(
            "authorization: Basic {}",
            STANDARD.encode(format!("{email}/token:{}", c[0].value))
        );
        let report = scanner.scan("logs.jsonl", &header);
        assert_eq!(
            report.hits.iter().map(|h| h.canary).collect::<Vec<_>>(),
            vec!["zendesk-api-token"],
            "{email}: {header}"
        );
    }
    // URL-safe base64 (as in a JWT) too.
    let jwt_part = URL_SAFE_NO_PAD.encode(format!("{{\"secret\":\"{}\"}}", c[1].value));
    assert_eq!(scanner.scan("x", &jwt_part).hits.len(), 1, "{jwt_part}");
}

#[test]
fn forms_are_long_enough_not_to_match_by_chance_and_debug_hides_the_value() {
    let c = canaries();
    for f in forms(&c[0].value) {
        assert!(f.len() >= 40, "{f}");
    }
    let shown = format!("{:?}", c[0]);
    assert!(!shown.contains(&c[0].value), "{shown}");
    assert!(shown.contains("zendesk-api-token"), "{shown}");
    // Two runs never share a canary.
    assert_ne!(
        Canary::new("x", rand_like(1)).value,
        Canary::new("x", rand_like(2)).value
    );
}

fn rand_like(n: u128) -> u128 {
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
}

/// A PEM-shaped private key: `lines` full body lines of base64 (64 characters) and a short
/// last one, from bytes derived from `seed`.
fn fake_pem(seed: u128, lines: usize) -> String {
    let bytes: Vec<u8> = (0..(lines * 48 + 9) as u128)
        .map(|i| (rand_like(seed ^ i) >> 64) as u8)
        .collect();
    let body = STANDARD.encode(bytes);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in body.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

#[test]
fn a_pem_key_canary_is_found_by_any_body_line_escaped_or_encoded() {
    let pem = fake_pem(5, 20);
    let key = Canary::pem("salesforce-jwt-private-key", pem.clone());
    let scanner = Scanner::new(&[key]);
    // The whole key in a JSON log line, its line breaks escaped.
    let logged = serde_json::json!({"message": "secret", "value": pem}).to_string();
    assert!(!logged.contains('\n'));
    assert_eq!(scanner.scan("logs.jsonl", &logged).hits.len(), 1);
    // One body line alone (a truncated dump), and one base64-encoded again.
    let third = pem.lines().nth(3).unwrap();
    assert_eq!(scanner.scan("x", &format!("..{third}..")).hits.len(), 1);
    let encoded = STANDARD.encode(format!("key={third}"));
    assert_eq!(scanner.scan("x", &encoded).hits.len(), 1, "{encoded}");
    // The armour lines, the short last line and another key are no hits.
    let last = pem.lines().rev().nth(1).unwrap();
    assert!(last.len() < 40, "{last}");
    let other = fake_pem(6, 20);
    let clean = format!("-----BEGIN PRIVATE KEY-----\n{last}\n{other}");
    let report = scanner.scan("x", &clean);
    assert!(report.hits.is_empty(), "{:?}", report.hits);
    assert_eq!(report.lines, clean.lines().count());
}
