//! Runs the built `orglink check-website` binary as an admin would and reads its output.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn orglink(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_orglink"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the orglink binary starts");
    {
        // Dropping stdin closes it, so a command reading it sees the end.
        let mut pipe = child.stdin.take().expect("stdin is piped");
        if let Some(bytes) = stdin {
            pipe.write_all(bytes).expect("stdin accepts the values");
        }
    }
    child.wait_with_output().expect("orglink finishes")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .expect("output is UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn json_reports_one_object_per_value_in_order() {
    let output = orglink(
        &[
            "check-website",
            "--json",
            "https://www.Acme.com/contact?ref=x",
            "jane.doe@gmail.com",
            "acme.herokuapp.com",
            "acme.com; acme.io",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 4);

    assert_eq!(lines[0]["input"], "https://www.Acme.com/contact?ref=x");
    assert_eq!(lines[0]["domain"], "acme.com");
    assert_eq!(lines[0]["host"], "www.acme.com");
    assert_eq!(lines[0]["suffix_type"], "icann");
    assert_eq!(lines[0]["reason"], Value::Null);

    assert_eq!(lines[1]["domain"], Value::Null);
    assert_eq!(lines[1]["reason"], "consumer_mail");
    assert_eq!(lines[1]["host"], "gmail.com");
    let detail = lines[1]["detail"].as_str().expect("a reason has a detail");
    assert!(detail.contains("Zendesk_Domain__c"), "{detail}");

    assert_eq!(lines[2]["domain"], "acme.herokuapp.com");
    assert_eq!(lines[2]["suffix_type"], "private");

    assert_eq!(lines[3]["reason"], "ambiguous");
    assert_eq!(lines[3]["domain"], Value::Null);
}

#[test]
fn every_json_line_has_the_documented_keys() {
    let output = orglink(
        &["check-website", "--json", "acme.com", "", "10.0.0.1"],
        None,
    );
    for line in json_lines(&output) {
        for key in ["input", "host", "domain", "suffix_type", "reason", "detail"] {
            assert!(line.get(key).is_some(), "{key} missing from {line}");
        }
        // Exactly one of domain and reason is set.
        assert_ne!(line["domain"].is_null(), line["reason"].is_null(), "{line}");
    }
}

#[test]
fn values_come_from_stdin_one_per_line_when_no_arguments() {
    // A CSV column as exported: a header, Windows line ends, a blank cell, a badly encoded cell.
    let input =
        b"Website\r\nhttps://acme.com\r\n\r\nsales@globex.co.uk\n\xffbad\nbu\xcc\x88cher.de\n";
    let output = orglink(&["check-website", "--json"], Some(input));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = json_lines(&output);
    let got: Vec<(&str, &Value, &Value)> = lines
        .iter()
        .map(|l| (l["input"].as_str().unwrap(), &l["domain"], &l["reason"]))
        .collect();
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(got[0].2, "not_a_domain");
    assert_eq!(
        (got[1].0, got[1].1),
        ("https://acme.com", &Value::from("acme.com"))
    );
    assert_eq!(got[2].2, "empty");
    assert_eq!(got[3].1, "globex.co.uk");
    assert_eq!(got[4].2, "not_a_domain");
    // Decomposed "ü" (u + combining diaeresis) normalizes to the same punycode domain.
    assert_eq!(got[5].1, "xn--bcher-kva.de");
}

#[test]
fn text_report_says_what_to_do_and_exits_zero() {
    let output = orglink(
        &[
            "check-website",
            "www.bücher.de",
            "linkedin.com/company/acme",
            "n/a",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("domain xn--bcher-kva.de (bücher.de)"),
        "{text}"
    );
    assert!(text.contains("[social_profile]"), "{text}");
    assert!(
        text.contains("\"n/a\" is not a website or domain"),
        "{text}"
    );
    assert!(
        text.contains("3 value(s): 1 usable, 2 cannot be used"),
        "{text}"
    );
}

#[test]
fn a_policy_file_overrides_the_lists() {
    let dir = std::env::temp_dir().join(format!("orglink-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // The [domains] table of a full configuration...
    let config = dir.join("orglink.toml");
    std::fs::write(
        &config,
        "[binding]\nzendesk_subdomain = \"x\"\n\n[domains]\nallow = [\"yahoo.com\"]\nextra_shared = [\"acmegroup.com\"]\n",
    )
    .unwrap();
    let output = orglink(
        &[
            "check-website",
            "--json",
            "--policy",
            config.to_str().unwrap(),
            "yahoo.com",
            "www.acmegroup.com",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines[0]["domain"], "yahoo.com");
    assert_eq!(lines[1]["reason"], "shared_hosting");

    // ...or a file holding only the policy.
    let policy = dir.join("domains.toml");
    std::fs::write(&policy, "extra_consumer = [\"freemail.*\"]\n").unwrap();
    let output = orglink(
        &[
            "check-website",
            "--json",
            "--policy",
            policy.to_str().unwrap(),
            "bob@freemail.fr",
        ],
        None,
    );
    assert_eq!(json_lines(&output)[0]["reason"], "consumer_mail");

    // Without it, the defaults apply.
    let output = orglink(
        &["check-website", "--json", "yahoo.com", "acmegroup.com"],
        None,
    );
    let lines = json_lines(&output);
    assert_eq!(lines[0]["reason"], "consumer_mail");
    assert_eq!(lines[1]["domain"], "acmegroup.com");

    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bad_policy_file_is_refused_with_the_reason() {
    let dir = std::env::temp_dir().join(format!("orglink-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("domains.toml");
    std::fs::write(&policy, "[domains]\nallow = [\"co.uk\"]\n").unwrap();
    let output = orglink(
        &[
            "check-website",
            "--policy",
            policy.to_str().unwrap(),
            "acme.com",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("public suffix"),
        "{}",
        stderr(&output)
    );
    assert!(output.stdout.is_empty());

    let missing = dir.join("missing.toml");
    let output = orglink(
        &[
            "check-website",
            "--policy",
            missing.to_str().unwrap(),
            "acme.com",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("cannot read the policy file"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
