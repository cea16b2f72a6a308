//! orglink's shared library.
//!
//! The modules below `core` are pure: no I/O, no clock, no AWS types. Every function and the
//! CLI decide through them, so the same rules hold on the live path, in reconcile and in backfill.

pub mod aws;
pub mod backfill;
pub mod contract;
pub mod credentials;
pub mod domain;
pub mod exceptions;
pub mod http;
pub mod ids;
#[cfg(feature = "aws")]
pub mod logging;
pub mod mapping;
pub mod metrics;
pub mod model;
pub mod reconcile;
pub mod resolution;
pub mod salesforce;
pub mod signature;
pub mod sync_request;
pub mod zendesk;
