//! Running the built `orglink` binary against the sandbox and moto, as an operator would.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use orglink_harness::{AwsEnv, LocalStack, Sandbox};

/// The sandbox's Salesforce org id (`orglink-sandbox serve`'s default).
pub const SANDBOX_ORG_ID: &str = "00DSB0000000001";

/// A scratch directory for one test.
pub fn scratch(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("orglink-cli-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

/// The default configuration bound to the sandbox, written to `dir/orglink.toml`.
pub fn sandbox_config(dir: &Path) -> PathBuf {
    let text =
        orglink_shared::contract::DEFAULT_CONFIG_TOML.replace("00D000000000001EAA", SANDBOX_ORG_ID);
    let path = dir.join("orglink.toml");
    std::fs::write(&path, text).expect("config written");
    path
}

/// A generated messy world (`orglink-sandbox generate`), returning the scenario path.
pub fn generate(dir: &Path, accounts: u32, seed: u64) -> PathBuf {
    let out = Command::new(Sandbox::binary())
        .args([
            "generate",
            "--accounts",
            &accounts.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .arg("--out-dir")
        .arg(dir)
        .output()
        .expect("orglink-sandbox generate runs (cargo build -p orglink-sandbox)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("scenario.json")
}

/// The variables pointing the CLI at the sandbox.
pub fn sandbox_env(sandbox: &Sandbox, config: &Path) -> Vec<(String, String)> {
    vec![
        (
            "ORGLINK_SF_MY_DOMAIN_URL".into(),
            sandbox.salesforce.clone(),
        ),
        (
            "ORGLINK_SF_CLIENT_ID".into(),
            "orglink-sandbox-consumer-key".into(),
        ),
        (
            "ORGLINK_SF_CLIENT_SECRET".into(),
            "orglink-sandbox-consumer-secret".into(),
        ),
        ("ORGLINK_ZD_EMAIL".into(), "admin@example.com".into()),
        (
            "ORGLINK_ZD_API_TOKEN".into(),
            "sandbox-zendesk-token".into(),
        ),
        ("ORGLINK_ZD_BASE_URL".into(), sandbox.zendesk.clone()),
        ("ORGLINK_CONFIG_FILE".into(), config.display().to_string()),
    ]
}

/// The variables pointing the CLI at a local stack on moto.
pub fn aws_env(aws: &AwsEnv, stack: &LocalStack) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = aws
        .env_vars()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    env.extend(
        stack
            .names()
            .expect("stack names")
            .to_env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v)),
    );
    env
}

/// Runs `orglink` with exactly these variables (plus PATH/HOME), so nothing from the
/// developer's shell leaks in.
pub fn orglink(args: &[&str], env: &[(String, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orglink"));
    cmd.args(args).env_clear();
    for k in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("USER", "test-operator");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("orglink runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
