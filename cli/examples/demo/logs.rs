//! Everything the demo's in-process components log (intake, the workers, reconcile, the
//! clients, the HTTP stack), as JSON lines in one file, for the canary scan. Our crates log at
//! TRACE, the HTTP clients (hyper, reqwest) at DEBUG, everything else at INFO: the AWS SDK's
//! DEBUG output is about twenty lines per DynamoDB call (300,000 lines a run) and carries no
//! secret of ours, so it only slowed the demo. Nothing goes to the terminal.

use std::fs::File;
use std::path::Path;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

const FILTER: &str = "info,hyper=debug,hyper_util=debug,reqwest=debug,orglink_shared=trace,orglink_intake=trace,orglink_sync_worker=trace,orglink_reconcile=trace";

/// Installs the process's subscriber, writing to `path` (created or truncated).
pub fn install(path: &Path) -> Result<(), String> {
    let file = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(EnvFilter::new(FILTER))
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(Mutex::new(file))
        .try_init()
        .map_err(|e| format!("cannot install the log subscriber: {e}"))
}
