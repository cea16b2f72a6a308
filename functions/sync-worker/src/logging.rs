//! JSON logs, one object per line with the event's fields at the top level. The worker logs
//! account ids, event ids, message ids, outcomes and the deciding rule; secrets are held in
//! types that print `<redacted>`, and no request or response body is logged.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The subscriber `main` installs, writing to `writer` (stdout in Lambda; a buffer in the
/// tests that check what reaches the log). `filter` is an `EnvFilter` directive (`info`).
pub fn json_subscriber<W>(writer: W, filter: &str) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_target(false)
        .with_env_filter(EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(writer)
        .finish()
}

/// The level Lambda asks for (`AWS_LAMBDA_LOG_LEVEL`), else `RUST_LOG`, else `info`.
pub fn filter_from_env() -> String {
    std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|_| "info".into())
}
