//! The worker's JSON logs: the subscriber every function installs (`orglink_shared::logging`).
//! The worker logs account ids, event ids, message ids, outcomes and the deciding rule; no
//! request or response body.

pub use orglink_shared::logging::{filter_from_env, json_subscriber};
