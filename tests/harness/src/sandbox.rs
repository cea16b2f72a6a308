use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::{HarnessError, repo_root};

/// The Salesforce and Zendesk simulators (`orglink-sandbox serve`) on loopback ports.
/// Dropping it stops the process.
#[derive(Debug)]
pub struct Sandbox {
    child: Child,
    /// Held open: the sandbox runs with `--exit-on-stdin-eof`, so it also stops if we die.
    _lifeline: Option<ChildStdin>,
    pub salesforce: String,
    pub zendesk: String,
}

impl Sandbox {
    /// `ORGLINK_SANDBOX_BIN`, else `<repo>/target/debug/orglink-sandbox`.
    pub fn binary() -> PathBuf {
        std::env::var_os("ORGLINK_SANDBOX_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/debug/orglink-sandbox"))
    }

    /// Starts the simulators, seeded from a scenario file if given.
    pub fn start(scenario: Option<&Path>) -> Result<Sandbox, HarnessError> {
        Self::start_with(scenario, &[])
    }

    /// Same, with extra `serve` flags (fault switches, UNVERIFIED-behaviour toggles).
    pub fn start_with(scenario: Option<&Path>, extra: &[&str]) -> Result<Sandbox, HarnessError> {
        Self::start_with_stderr(scenario, extra, Stdio::inherit())
    }

    /// Same, with the simulators' stderr (their logs and warnings) sent to `stderr`, e.g. a
    /// file to read afterwards.
    pub fn start_with_stderr(
        scenario: Option<&Path>,
        extra: &[&str],
        stderr: Stdio,
    ) -> Result<Sandbox, HarnessError> {
        let bin = Self::binary();
        if !bin.exists() {
            return Err(HarnessError::SandboxMissing(bin));
        }
        let mut cmd = Command::new(&bin);
        cmd.args([
            "serve",
            "--salesforce-port",
            "0",
            "--zendesk-port",
            "0",
            "--exit-on-stdin-eof",
        ]);
        if let Some(s) = scenario {
            cmd.arg("--scenario").arg(s);
        }
        cmd.args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = cmd.spawn().map_err(|e| {
            HarnessError::SandboxStart(format!("cannot run {}: {e}", bin.display()))
        })?;
        let lifeline = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout is piped");
        // The first line is `{"salesforce": URL, "zendesk": URL}`.
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line);
        let urls: Result<(String, String), String> = match read {
            Ok(0) => Err("it exited before printing its URLs".into()),
            Err(e) => Err(format!("cannot read its output: {e}")),
            Ok(_) => serde_json::from_str::<serde_json::Value>(&line)
                .map_err(|e| format!("first line is not JSON ({e}): {line:?}"))
                .and_then(|v| {
                    let url = |k: &str| {
                        v.get(k)
                            .and_then(|u| u.as_str())
                            .map(str::to_string)
                            .ok_or_else(|| format!("first line lacks {k}: {line:?}"))
                    };
                    Ok((url("salesforce")?, url("zendesk")?))
                }),
        };
        match urls {
            Ok((salesforce, zendesk)) => Ok(Sandbox {
                child,
                _lifeline: lifeline,
                salesforce,
                zendesk,
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(HarnessError::SandboxStart(e))
            }
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
