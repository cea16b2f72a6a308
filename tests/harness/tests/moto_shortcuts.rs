//! The moto every suite starts is patched for speed; this shows its answers are moto's.

/// The harness's moto (`moto/moto_server.py`, used by every suite and the demo) takes shortcuts
/// in moto's DynamoDB comparisons; `moto_server_check.py` asks moto the same queries and scans
/// with and without them (it is shown to catch a reversed order, a loosened equality and
/// numbers sorted as text) and must find the same answers.
#[test]
fn the_moto_shortcuts_leave_moto_answers_unchanged() {
    let root = orglink_harness::repo_root();
    let python = root.join(".venv/bin/python3");
    assert!(
        python.exists(),
        "{} is missing: run `make venv`",
        python.display()
    );
    let out = std::process::Command::new(&python)
        .arg(root.join("tests/harness/moto/moto_server_check.py"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("same "),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compared: usize = stdout["same ".len()..].trim().parse().expect("a count");
    assert!(compared > 1000, "{stdout}");
}
