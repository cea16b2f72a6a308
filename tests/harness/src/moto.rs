use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use crate::{HarnessError, repo_root};

/// How long moto may take to listen (it imports every service's models at start).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The region and account moto answers for.
pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// A running `moto_server` on 127.0.0.1. Dropping it stops the server.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    /// Closing this pipe (drop, or our process dying) makes the wrapper kill moto.
    lifeline: Option<ChildStdin>,
    port: u16,
    log: PathBuf,
}

impl Moto {
    /// `<repo>/tests/harness/moto/moto_server`: the venv's moto (`<repo>/.venv`, `make venv`)
    /// with exact shortcuts in its DynamoDB comparisons (moto sorts and compares every item of
    /// a table in Python for each index Query; `moto_server.py` says what is patched and
    /// `tests/moto_shortcuts.rs` shows the answers unchanged). `ORGLINK_MOTO_AS_IS=1` runs it
    /// unpatched.
    pub fn binary() -> PathBuf {
        repo_root().join("tests/harness/moto/moto_server")
    }

    /// Starts a server on a free port and waits until it accepts connections.
    pub fn start() -> Result<Moto, HarnessError> {
        Self::start_program(&Self::binary())
    }

    /// Same, running `bin` in place of `moto_server` (it takes `-H HOST -p PORT` and writes
    /// its log to stdout/stderr, like `moto_server`): a wrapper that starts moto differently.
    pub fn start_program(bin: &std::path::Path) -> Result<Moto, HarnessError> {
        let bin = bin.to_path_buf();
        // The wrapper runs the venv's Python: without the venv, say so as for moto_server.
        let venv_python = repo_root().join(".venv/bin/python3");
        if !venv_python.exists() {
            return Err(HarnessError::MotoMissing(venv_python));
        }
        if !bin.exists() {
            return Err(HarnessError::MotoMissing(bin));
        }
        let mut last = String::new();
        // A port picked free can be taken before moto binds it: try a few.
        for _ in 0..3 {
            match Self::try_start(&bin) {
                Ok(m) => return Ok(m),
                Err(e) => last = e,
            }
        }
        Err(HarnessError::MotoStart(last))
    }

    /// One server shared by every test of this process (each test uses its own stack
    /// prefix). It stops when the process exits.
    pub fn shared() -> Result<&'static Moto, HarnessError> {
        static SHARED: OnceLock<Result<Moto, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| Moto::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| HarnessError::MotoStart(e.clone()))
    }

    fn try_start(bin: &PathBuf) -> Result<Moto, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let log =
            std::env::temp_dir().join(format!("orglink-moto-{}-{port}.log", std::process::id()));
        // The wrapper shell exits when moto does, and kills moto (and removes its log) when our
        // end of its stdin closes — so a test process that panics or is killed, or a shared
        // server that is never dropped, leaves nothing running behind.
        // (An asynchronous list's stdin is /dev/null unless redirected, hence fd 3.)
        let script = r#"exec 3<&0; trap '' INT; "$0" -H 127.0.0.1 -p "$1" >"$2" 2>&1 </dev/null & m=$!; (read _ <&3; kill $m 2>/dev/null; rm -f "$2") & wait $m"#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(bin)
            .arg(port.to_string())
            .arg(&log)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let lifeline = child.stdin.take();
        let mut moto = Moto {
            child,
            lifeline,
            port,
            log,
        };
        let started = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(moto);
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(format!(
                    "moto_server exited ({status}) on port {port}: {}",
                    moto.log_tail()
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "moto_server not listening on port {port} after {START_TIMEOUT:?}: {}",
                    moto.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Everything moto has written to its log so far (one line per request, and errors).
    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        let _ = std::fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        let start = text.len().saturating_sub(2000);
        text[text.floor_char_boundary(start)..].to_string()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        drop(self.lifeline.take());
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// AWS SDK configuration for a local endpoint: dummy credentials, fixed region.
#[derive(Debug, Clone)]
pub struct AwsEnv {
    endpoint: String,
    config: SdkConfig,
}

impl AwsEnv {
    pub async fn new(endpoint: impl Into<String>) -> AwsEnv {
        let endpoint = endpoint.into();
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "orglink-harness",
            ))
            .load()
            .await;
        AwsEnv { endpoint, config }
    }

    pub async fn for_moto(moto: &Moto) -> AwsEnv {
        AwsEnv::new(moto.endpoint()).await
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn sdk_config(&self) -> &SdkConfig {
        &self.config
    }

    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }

    /// The variables that point a spawned binary's default SDK config at the same endpoint
    /// (production code needs no emulator branch: the SDK honours `AWS_ENDPOINT_URL`).
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
        ]
    }
}
