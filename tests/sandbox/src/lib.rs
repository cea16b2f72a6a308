//! orglink-sandbox: simulators of the Salesforce REST API and the Zendesk Support API that
//! behave like the real services as `../shared/reference/` documents them, unpleasant parts
//! included, and nothing more than orglink needs.
//!
//! Each API is served on its own loopback port with an admin API under `/_sandbox/`.

pub mod admin;
pub mod faults;
pub mod generate;
pub mod salesforce;
pub mod scenario;
pub mod zendesk;
