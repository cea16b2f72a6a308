//! Runs the built `orglink backfill plan` / `apply` as an operator would, against the sandbox
//! (state in memory: this checks the command, not the tables).

use std::process::{Command, Output};

use orglink_harness::Sandbox;
use orglink_sandbox::generate::{Options, generate};

fn orglink(sandbox: &Sandbox, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orglink"))
        .args(args)
        .env("ORGLINK_SF_MY_DOMAIN_URL", &sandbox.salesforce)
        .env("ORGLINK_SF_CLIENT_ID", "orglink-sandbox-consumer-key")
        .env(
            "ORGLINK_SF_CLIENT_SECRET",
            "orglink-sandbox-consumer-secret",
        )
        .env("ORGLINK_ZD_EMAIL", "admin@example.com")
        .env("ORGLINK_ZD_API_TOKEN", "sandbox-zendesk-token")
        .env("ORGLINK_ZD_BASE_URL", &sandbox.zendesk)
        .env_remove("ORGLINK_CONFIG_FILE")
        .env_remove("ORGLINK_CONFIG_TOML")
        .env_remove("ORGLINK_CREDENTIALS_JSON")
        .output()
        .expect("orglink runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn plan_then_apply_only_the_confirmed_hash() {
    let dir = std::env::temp_dir().join(format!("orglink-cli-backfill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = dir.join("scenario.json");
    let world = generate(&Options {
        accounts: 300,
        seed: 9,
    });
    std::fs::write(&scenario, world.scenario_bytes()).unwrap();
    let sandbox = Sandbox::start_with(
        Some(&scenario),
        &[
            "--salesforce-org-id",
            "00D000000000001EAA",
            "--zendesk-job-delay-ms",
            "50",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let plan = dir.join("plan.json");
    let plan_s = plan.to_str().unwrap();

    let out = orglink(
        &sandbox,
        &["backfill", "plan", "--out", plan_s, "--state", "memory"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    let hash = file["hash"].as_str().unwrap().to_string();
    assert!(stdout.contains(&format!("plan hash: {hash}")), "{stdout}");
    assert_eq!(file["plan"]["totals"]["accounts"], 300);

    // Another hash is refused, and nothing is written.
    let wrong = "0".repeat(64);
    let out = orglink(
        &sandbox,
        &[
            "backfill",
            "apply",
            "--plan",
            plan_s,
            "--confirm-plan-hash",
            &wrong,
            "--state",
            "memory",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not this plan's hash"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.join("plan.json.journal").exists());

    let out = orglink(
        &sandbox,
        &[
            "backfill",
            "apply",
            "--plan",
            plan_s,
            "--confirm-plan-hash",
            &hash,
            "--state",
            "memory",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let creates = file["plan"]["totals"]["actions"]["create"]
        .as_u64()
        .unwrap();
    assert!(stdout.contains(&format!("created {creates},")), "{stdout}");
    assert!(dir.join("plan.json.journal").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
