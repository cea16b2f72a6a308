use std::path::PathBuf;

/// Why the local stand-ins could not be set up; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("moto_server not found at {}: run `make venv` (it installs moto[server] into .venv)", .0.display())]
    MotoMissing(PathBuf),
    #[error("moto_server did not start: {0}")]
    MotoStart(String),
    #[error("sandbox binary not found at {}: run `cargo build -p orglink-sandbox` (or set ORGLINK_SANDBOX_BIN)", .0.display())]
    SandboxMissing(PathBuf),
    #[error("sandbox did not start: {0}")]
    SandboxStart(String),
    #[error("cannot read template {}: {source}", .path.display())]
    ReadTemplate {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("template is not valid YAML: {0}")]
    ParseTemplate(#[from] serde_yaml::Error),
    /// The template uses something the local stack does not create or resolve: extend
    /// tests/harness/src/template.rs or stack.rs rather than hand-writing a second copy.
    #[error("template: {0}")]
    Unsupported(String),
    #[error("creating {resource} on moto failed: {detail}")]
    Create { resource: String, detail: String },
}
