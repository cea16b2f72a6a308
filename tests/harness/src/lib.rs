//! Local stand-ins for orglink's tests and demo (DESIGN.md "Local stand-ins for the cloud"):
//!
//! - [`Moto`]: a `moto_server` on a free loopback port (from the project's `.venv`), killed
//!   when dropped — or when the test process dies, because it watches a pipe from us;
//! - [`AwsEnv`]: SDK clients pointed at it with dummy credentials;
//! - [`LocalStack`]: the tables, queues and secret of `infra/template.yaml`, created through the
//!   SDK from the template's own definitions (moto cannot deploy a SAM template), under a
//!   prefix so tests sharing one moto never collide;
//! - [`Sandbox`]: the Salesforce and Zendesk simulators (`orglink-sandbox serve`).

mod error;
mod moto;
mod sandbox;
mod stack;
pub mod template;

use std::path::PathBuf;

pub use error::HarnessError;
pub use moto::{AwsEnv, Moto};
pub use sandbox::Sandbox;
pub use stack::{LocalStack, Physical};
pub use template::Template;

/// The repository root (this crate lives in `tests/harness`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the harness crate sits inside the repository")
}

/// A prefix no other stack in this process (or a concurrent test process) uses.
pub fn unique_prefix(label: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let label: String = label
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .take(12)
        .collect();
    format!("t{}-{label}-{n}", std::process::id())
}

/// The shared moto of this process, SDK clients for it, and a fresh stack under a unique
/// prefix: what an AWS adapter test needs. Panics with the fix (e.g. "run `make venv`") when
/// moto is missing — tests must fail, never skip, without it.
pub async fn moto_stack(label: &str) -> (AwsEnv, LocalStack) {
    let moto = Moto::shared().unwrap_or_else(|e| panic!("{e}"));
    let aws = AwsEnv::for_moto(moto).await;
    let stack = LocalStack::create(&aws, &unique_prefix(label))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (aws, stack)
}
