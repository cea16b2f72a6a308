//! Intake's JSON logs: the subscriber every function installs (`orglink_shared::logging`).
//! Intake logs account ids, event ids, outcomes and reasons; no header or body.

pub use orglink_shared::logging::{filter_from_env, json_subscriber};
