//! Salesforce simulator (stub until the Salesforce engineer replaces it).

#[derive(clap::Args, Clone, Debug, Default)]
pub struct SalesforceOptions {}

pub fn app(_: SalesforceOptions, _: crate::scenario::SalesforceSeed) -> axum::Router {
    axum::Router::new()
}
