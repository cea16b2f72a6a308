//! Zendesk Support API simulator (being written).

#[derive(clap::Args, Clone, Debug, Default)]
pub struct ZendeskOptions {
    /// Set by the binary from `--seed`; not a flag of its own.
    #[arg(skip)]
    pub fault_seed: u64,
}

pub fn app(_: ZendeskOptions, _: crate::scenario::ZendeskSeed) -> axum::Router {
    axum::Router::new()
}
