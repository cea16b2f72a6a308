//! The `orglink-sandbox` binary: prints its URLs first, serves the seeded scenario, stops cleanly.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn scenario_file() -> std::path::PathBuf {
    // Tests run in parallel threads of one process: each needs a file of its own.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "orglink-sandbox-binary-{}-{n}.json",
        std::process::id()
    ));
    let scenario =
        json!({"zendesk": {"organizations": [{"id": 42, "name": "Seeded", "external_id": "S-1"}]}});
    std::fs::File::create(&path)
        .unwrap()
        .write_all(scenario.to_string().as_bytes())
        .unwrap();
    path
}

fn start(extra: &[&str]) -> (std::process::Child, Value) {
    let scenario = scenario_file();
    let mut child = Command::new(env!("CARGO_BIN_EXE_orglink-sandbox"))
        .args([
            "--salesforce-port",
            "0",
            "--zendesk-port",
            "0",
            "--scenario",
        ])
        .arg(&scenario)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = std::fs::remove_file(scenario);
    (
        child,
        serde_json::from_str(&line).expect("first line is the JSON of URLs"),
    )
}

async fn seeded_org(zendesk: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{zendesk}/api/v2/organizations/42.json"))
        .basic_auth("admin@example.com/token", Some("sandbox-zendesk-token"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn prints_loopback_urls_serves_the_scenario_and_exits_0_on_sigterm() {
    let (mut child, urls) = start(&[]);
    for side in ["salesforce", "zendesk"] {
        let url = urls[side].as_str().unwrap();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }
    assert_eq!(
        seeded_org(urls["zendesk"].as_str().unwrap()).await["organization"]["name"],
        "Seeded"
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn exits_0_when_stdin_closes_if_asked() {
    let (mut child, urls) = start(&["--exit-on-stdin-eof"]);
    assert_eq!(
        seeded_org(urls["zendesk"].as_str().unwrap()).await["organization"]["id"],
        42
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

#[test]
fn an_unreadable_scenario_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_orglink-sandbox"))
        .args(["--scenario", "/nonexistent/scenario.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read scenario file"));
}
