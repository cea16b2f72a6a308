//! Tests for the domain normalizer. The main table is data (`shared/data/website_cases.txt`)
//! so a reviewer reads it as a list of inputs and outcomes.

use super::*;
use proptest::prelude::*;

const CASES: &str = include_str!("../../data/website_cases.txt");

/// One row of the case table.
struct Case {
    line: usize,
    input: String,
    expected: Result<String, UnusableReason>,
    suffix_type: Option<SuffixType>,
    host: Option<String>,
}

fn reason_named(name: &str) -> UnusableReason {
    UnusableReason::ALL
        .into_iter()
        .find(|r| r.as_str() == name)
        .unwrap_or_else(|| panic!("unknown reason {name:?} in the case table"))
}

fn parse_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (index, raw) in CASES.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let (left, right) = raw
            .rsplit_once(" => ")
            .unwrap_or_else(|| panic!("line {line}: no \" => \" in {raw:?}"));
        let left = left.trim();
        let input = if left.starts_with('"') {
            serde_json::from_str::<String>(left)
                .unwrap_or_else(|e| panic!("line {line}: bad JSON string {left:?}: {e}"))
        } else {
            left.to_owned()
        };
        let mut words = right.split_whitespace();
        let first = words
            .next()
            .unwrap_or_else(|| panic!("line {line}: no expectation"));
        let expected = match first.strip_prefix('!') {
            Some(reason) => Err(reason_named(reason)),
            None => Ok(first.to_owned()),
        };
        let mut case = Case {
            line,
            input,
            expected,
            suffix_type: None,
            host: None,
        };
        for word in words {
            match word {
                "icann" => case.suffix_type = Some(SuffixType::Icann),
                "private" => case.suffix_type = Some(SuffixType::Private),
                _ => match word.strip_prefix("host=") {
                    Some(host) => case.host = Some(host.to_owned()),
                    None => panic!("line {line}: unknown annotation {word:?}"),
                },
            }
        }
        cases.push(case);
    }
    cases
}

#[test]
fn case_table_holds_what_the_policy_does() {
    let cases = parse_cases();
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let policy = DomainPolicy::default();
    let mut failures = Vec::new();
    for case in &cases {
        let check = policy.check_website(&case.input);
        let got = match &check.outcome {
            Ok(d) => Ok(d.as_str().to_owned()),
            Err(u) => Err(u.reason),
        };
        let mut wrong = Vec::new();
        if got != case.expected {
            wrong.push(format!(
                "outcome {:?} (expected {:?})",
                check.outcome, case.expected
            ));
        }
        if case.suffix_type.is_some() && check.suffix_type != case.suffix_type {
            wrong.push(format!("suffix type {:?}", check.suffix_type));
        }
        if case.host.is_some() && check.host != case.host {
            wrong.push(format!("host {:?}", check.host));
        }
        if check.input != case.input {
            wrong.push("the original input was not kept".to_owned());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "line {} {:?}: {}",
                case.line,
                case.input,
                wrong.join("; ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn case_table_covers_every_reason() {
    let cases = parse_cases();
    for reason in UnusableReason::ALL {
        assert!(
            cases.iter().any(|c| c.expected == Err(reason)),
            "no case for {reason:?}"
        );
    }
}

#[test]
fn every_reason_tells_the_admin_what_to_do() {
    let policy = DomainPolicy::default();
    for case in parse_cases() {
        if let Err(u) = policy.check_website(&case.input).outcome {
            assert!(
                u.detail.contains("Website") && u.detail.contains("Zendesk_Domain__c"),
                "line {}: {:?} does not say where to fix it",
                case.line,
                u.detail
            );
        }
    }
}

#[test]
fn consumer_reason_reads_as_documented() {
    let check = DomainPolicy::default().check_website("jane.doe@gmail.com");
    assert_eq!(
        check.unusable().map(|u| u.detail.as_str()),
        Some(
            "gmail.com is a consumer mail provider: put the company's own website in Website or \
             Zendesk_Domain__c"
        )
    );
    assert_eq!(check.suffix_type, Some(SuffixType::Icann));
}

#[test]
fn ambiguous_names_the_domains() {
    let check = DomainPolicy::default().check_website("acme.com; https://www.acme.io/x");
    let detail = &check.unusable().expect("ambiguous").detail;
    assert!(detail.contains("acme.com, acme.io"), "{detail}");
    assert_eq!(check.domain(), None);
}

#[test]
fn a_narrow_list_entry_is_named_in_the_reason() {
    let check = DomainPolicy::default().check_website("https://sites.google.com/view/acme");
    let detail = &check.unusable().expect("shared").detail;
    assert!(detail.starts_with("sites.google.com is shared"), "{detail}");
}

#[test]
fn very_long_values_are_answered_and_quoted_short() {
    let policy = DomainPolicy::default();

    let long_query = format!("https://www.acme.com/?q={}", "x".repeat(100_000));
    assert_eq!(
        policy.parse_domain(&long_query).unwrap().as_str(),
        "acme.com"
    );

    let long_words = "blah ".repeat(20_000);
    let check = policy.check_website(&long_words);
    let unusable = check.unusable().expect("words are not a domain");
    assert_eq!(unusable.reason, UnusableReason::NotADomain);
    assert!(
        unusable.detail.len() < 300,
        "{} chars",
        unusable.detail.len()
    );

    let long_label = format!("{}.com", "a".repeat(64));
    assert_eq!(
        policy.parse_domain(&long_label).unwrap_err().reason(),
        UnusableReason::NotADomain
    );
    let max_label = format!("{}.com", "a".repeat(63));
    assert_eq!(policy.parse_domain(&max_label).unwrap().as_str(), max_label);

    let long_host = format!("{}acme.com", "a.".repeat(130));
    assert_eq!(
        policy.parse_domain(&long_host).unwrap_err().reason(),
        UnusableReason::NotADomain
    );

    let many_domains: Vec<String> = (0..1000).map(|i| format!("acme{i}.com")).collect();
    let detail = policy
        .check_website(&many_domains.join(" "))
        .unusable()
        .unwrap()
        .detail
        .clone();
    assert!(detail.contains("and 996 more"), "{detail}");
}

// --- policy overrides ---

fn policy(toml_text: &str) -> DomainPolicy {
    toml::from_str(toml_text).expect("valid policy")
}

#[test]
fn allow_lets_a_listed_domain_be_used() {
    let p = policy(r#"allow = ["yahoo.com"]"#);
    assert_eq!(
        p.parse_domain("https://www.yahoo.com").unwrap().as_str(),
        "yahoo.com"
    );
    // Only what is allowed: the pattern's other members stay consumer mail.
    assert_eq!(
        p.parse_domain("yahoo.co.uk").unwrap_err().reason(),
        UnusableReason::ConsumerMail
    );
    assert_eq!(
        DomainPolicy::default()
            .parse_domain("yahoo.com")
            .unwrap_err()
            .reason(),
        UnusableReason::ConsumerMail
    );
}

#[test]
fn allow_does_not_lift_structural_rules() {
    let p = policy(r#"allow = ["acme.com"]"#);
    assert_eq!(
        p.parse_domain("10.0.0.1").unwrap_err().reason(),
        UnusableReason::IpAddress
    );
}

#[test]
fn extra_lists_add_to_the_curated_ones() {
    let p = policy(
        r#"
        extra_consumer = ["mymail.example.co.uk", "freemail.*"]
        extra_shared = ["acmegroup.com", "herokuapp.com"]
        "#,
    );
    assert_eq!(
        p.parse_domain("bob@freemail.fr").unwrap_err().reason(),
        UnusableReason::ConsumerMail
    );
    assert_eq!(
        p.parse_domain("freemail.com").unwrap_err().reason(),
        UnusableReason::ConsumerMail
    );
    assert_eq!(
        p.parse_domain("www.acmegroup.com").unwrap_err().reason(),
        UnusableReason::SharedHosting
    );
    // A private suffix in extra_shared covers all of its customers' subdomains.
    assert_eq!(
        p.parse_domain("acme.herokuapp.com").unwrap_err().reason(),
        UnusableReason::SharedHosting
    );
    // The curated lists still apply.
    assert_eq!(
        p.parse_domain("gmail.com").unwrap_err().reason(),
        UnusableReason::ConsumerMail
    );
    // And the default policy is unaffected.
    assert_eq!(
        DomainPolicy::default()
            .parse_domain("acmegroup.com")
            .unwrap()
            .as_str(),
        "acmegroup.com"
    );
}

#[test]
fn a_policy_with_a_bad_entry_or_a_typo_is_refused() {
    for bad in [
        r#"allow = ["not a domain"]"#,
        r#"extra_shared = ["co.uk"]"#,
        r#"extra_shared = ["com"]"#,
        r#"extra_consumer = ["acme.zzz"]"#,
        r#"extra_consumer = ["bad_label.*"]"#,
        r#"alow = ["acme.com"]"#,
    ] {
        assert!(
            toml::from_str::<DomainPolicy>(bad).is_err(),
            "accepted {bad}"
        );
    }
}

#[test]
fn policy_round_trips_through_serde() {
    let p = policy(
        r#"allow = ["Yahoo.com."]
extra_consumer = ["freemail.*", "bücher.de"]"#,
    );
    assert_eq!(p.allow, vec![DomainPattern::Host("yahoo.com".into())]);
    assert_eq!(
        p.extra_consumer[1],
        DomainPattern::Host("xn--bcher-kva.de".into())
    );
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<DomainPolicy>(&json).unwrap(), p);
    assert_eq!(
        toml::from_str::<DomainPolicy>("").unwrap(),
        DomainPolicy::default()
    );
}

#[test]
fn curated_lists_are_valid_and_never_public_suffixes() {
    // Forces the lazy parse (which panics on a bad line) and checks each entry against the PSL:
    // an entry that is a private suffix would contradict the PSL's own per-customer domains.
    let curated = &*CURATED;
    for list in [&curated.consumer, &curated.social, &curated.shared] {
        assert!(!list.is_empty());
        for entry in list {
            if let DomainPattern::Host(host) = entry {
                assert!(
                    psl::domain(host.as_bytes()).is_some(),
                    "{host} is a public suffix; drop it from the curated list"
                );
            }
        }
    }
}

// --- Domain ---

#[test]
fn domain_parse_normalizes_reviewed_values() {
    for input in [
        "acme.com",
        "https://acme.com/",
        " ACME.com. ",
        "www.acme.com",
        "sales@acme.com",
    ] {
        assert_eq!(
            Domain::parse(input).unwrap().as_str(),
            "acme.com",
            "{input}"
        );
    }
    assert_eq!(
        "acme.co.uk".parse::<Domain>().unwrap().to_string(),
        "acme.co.uk"
    );
}

#[test]
fn domain_parse_refuses_unusable_values_with_the_reason() {
    for (input, reason) in [
        ("gmail.com", UnusableReason::ConsumerMail),
        ("linkedin.com/company/acme", UnusableReason::SocialProfile),
        ("10.0.0.1", UnusableReason::IpAddress),
        ("n/a", UnusableReason::NotADomain),
        ("", UnusableReason::Empty),
        ("acme.com acme.io", UnusableReason::Ambiguous),
    ] {
        let err = Domain::parse(input).unwrap_err();
        assert_eq!(err.reason(), reason, "{input}");
        assert_eq!(err.to_string(), err.unusable().detail);
    }
}

#[test]
fn domain_serializes_as_a_plain_string_and_deserializing_validates() {
    let d = Domain::parse("acme.herokuapp.com").unwrap();
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#""acme.herokuapp.com""#
    );
    assert_eq!(
        serde_json::from_str::<Domain>(r#""acme.herokuapp.com""#).unwrap(),
        d
    );
    // Deserializing normalizes rather than trusting the stored text...
    assert_eq!(
        serde_json::from_str::<Domain>(r#""WWW.Acme.com""#)
            .unwrap()
            .as_str(),
        "acme.com"
    );
    // ...and refuses what can never be a domain.
    for bad in [
        r#""10.0.0.1""#,
        r#""n/a""#,
        r#""acme.test""#,
        r#""acme.zzz""#,
        r#""""#,
        r#""herokuapp.com""#,
    ] {
        assert!(
            serde_json::from_str::<Domain>(bad).is_err(),
            "accepted {bad}"
        );
    }
    // A domain accepted under an `allow` override must stay readable from storage.
    assert_eq!(
        serde_json::from_str::<Domain>(r#""yahoo.com""#)
            .unwrap()
            .as_str(),
        "yahoo.com"
    );
}

#[test]
fn website_check_serializes_flat() {
    let p = DomainPolicy::default();
    let ok = serde_json::to_value(p.check_website("https://www.acme.co.uk/x")).unwrap();
    assert_eq!(
        ok,
        serde_json::json!({"input": "https://www.acme.co.uk/x", "host": "www.acme.co.uk",
            "domain": "acme.co.uk", "suffix_type": "icann", "reason": null, "detail": null})
    );
    let bad = serde_json::to_value(p.check_website("n/a")).unwrap();
    assert_eq!(bad["domain"], serde_json::Value::Null);
    assert_eq!(bad["reason"], "not_a_domain");
}

#[test]
fn reasons_have_stable_names_matching_serde() {
    for reason in UnusableReason::ALL {
        assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        assert!(
            !reason.to_string().contains('_'),
            "{reason} reads like code"
        );
    }
}

// --- properties ---

/// Website-like values: optional scheme and www, labels, a suffix from a mix of ICANN,
/// private and unknown ones, optional port and path, random case.
fn website_like() -> impl Strategy<Value = String> {
    let scheme = prop_oneof![
        Just(""),
        Just("http://"),
        Just("https://"),
        Just("//"),
        Just("mailto:x@")
    ];
    let sub = prop_oneof![Just(""), Just("www."), Just("m."), Just("shop.eu.")];
    let label = "[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?";
    let suffix = prop_oneof![
        Just("com"),
        Just("co.uk"),
        Just("com.au"),
        Just("de"),
        Just("herokuapp.com"),
        Just("github.io"),
        Just("zzz"),
        Just("test"),
        Just("bücher.de"),
        Just("xn--p1ai"),
    ];
    let tail = prop_oneof![
        Just(""),
        Just(":8080"),
        Just("/about?x=1#y"),
        Just("."),
        Just("/")
    ];
    (scheme, sub, label, suffix, tail, any::<bool>()).prop_map(|(s, w, l, x, t, upper)| {
        let v = format!("{s}{w}{l}.{x}{t}");
        if upper { v.to_uppercase() } else { v }
    })
}

fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        website_like(),
        "[a-z.:/@ \\[\\]0-9-]{0,40}"
    ]
}

proptest! {
    #[test]
    fn never_panics_and_keeps_the_input(input in any_value()) {
        let check = DomainPolicy::default().check_website(&input);
        prop_assert_eq!(&check.input, &input);
        if let Err(u) = &check.outcome {
            prop_assert!(!u.detail.is_empty());
        }
    }

    #[test]
    fn normalizing_a_domain_gives_itself(input in any_value()) {
        let policy = DomainPolicy::default();
        if let Ok(domain) = policy.check_website(&input).outcome {
            let again = policy.check_website(domain.as_str());
            prop_assert_eq!(again.outcome.as_ref(), Ok(&domain));
            prop_assert_eq!(again.host.as_deref(), Some(domain.as_str()));
        }
    }

    #[test]
    fn a_domain_round_trips_through_parse_and_serde(input in website_like()) {
        if let Ok(domain) = DomainPolicy::default().check_website(&input).outcome {
            prop_assert_eq!(Domain::parse(domain.as_str()), Ok(domain.clone()));
            let json = serde_json::to_string(&domain).unwrap();
            prop_assert_eq!(serde_json::from_str::<Domain>(&json).unwrap(), domain.clone());
            prop_assert!(domain.as_str().is_ascii());
            prop_assert_eq!(domain.as_str().to_lowercase(), domain.as_str());
        }
    }
}

#[test]
fn unicode_form_is_for_reading_only() {
    let d = Domain::parse("www.bücher.de").unwrap();
    assert_eq!(d.as_str(), "xn--bcher-kva.de");
    assert_eq!(d.to_unicode(), "bücher.de");
    assert_eq!(Domain::parse("acme.com").unwrap().to_unicode(), "acme.com");
}

#[test]
fn a_plain_word_is_quoted_as_typed() {
    let check = DomainPolicy::default().check_website("n/a");
    assert!(
        check
            .unusable()
            .unwrap()
            .detail
            .starts_with("\"n/a\" is not"),
        "{:?}",
        check
    );
    assert_eq!(check.host, None);
}
