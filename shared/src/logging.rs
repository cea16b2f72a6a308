//! The functions' logs: JSON, one object per line, the event's fields at the top level (with
//! `LoggingConfig: LogFormat: JSON` in the template, CloudWatch Logs Insights reads them as
//! columns). Every function logs ids, outcomes and reasons only: secrets are held in types that
//! print `<redacted>`, and no handler logs a header or a body.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The subscriber each function's `main` installs, writing to `writer` (stdout in Lambda; a
/// buffer in the tests that check what reaches the log). `filter` is an `EnvFilter` directive
/// (`info`); one that does not parse means `info`.
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

/// The level Lambda asks for (`AWS_LAMBDA_LOG_LEVEL`, set from the template's
/// `LoggingConfig.ApplicationLogLevel`), else `RUST_LOG`, else `info`.
pub fn filter_from_env() -> String {
    filter_from_lookup(|k| std::env::var(k).ok())
}

fn filter_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> String {
    lookup("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|| lookup("RUST_LOG"))
        .map(|l| l.to_ascii_lowercase())
        .unwrap_or_else(|| "info".into())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_json_with_fields_at_the_top_level_and_the_level_filters() {
        let buf = Buffer::default();
        let writer = buf.clone();
        let subscriber = json_subscriber(move || writer.clone(), "warn");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(account_id = "001A", "dropped by the filter");
            tracing::warn!(account_id = "001B", outcome = "exception", "kept");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["account_id"], "001B");
        assert_eq!(lines[0]["outcome"], "exception");
        assert_eq!(lines[0]["message"], "kept");
        assert_eq!(lines[0]["level"], "WARN");
    }

    #[test]
    fn lambda_level_wins_then_rust_log_then_info() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            filter_from_lookup(env(&[
                ("AWS_LAMBDA_LOG_LEVEL", "DEBUG"),
                ("RUST_LOG", "warn")
            ])),
            "debug"
        );
        assert_eq!(filter_from_lookup(env(&[("RUST_LOG", "warn")])), "warn");
        assert_eq!(filter_from_lookup(env(&[])), "info");
    }
}
