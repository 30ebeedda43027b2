//! Lambda's logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON` gives one JSON object per line
//! (the function's `LoggingConfig`), and `AWS_LAMBDA_LOG_LEVEL` the level.

use tracing_subscriber::EnvFilter;

/// Lambda's logging controls, where `lambda_runtime::tracing::init_default_subscriber` falls
/// short: its JSON lines have no timestamp, and Lambda then counts every line as INFO (so
/// `DEBUG` lines pass an INFO filter); it nests the message under `fields`; it colours text
/// for a terminal; and it takes `FATAL`, a level Lambda sets, for unknown (so INFO).
pub fn init_lambda() {
    let var = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (filter, unknown) = log_filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
    );
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .with_target(false)
        .with_env_filter(filter);
    let json = var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        // The invocation's span (with its requestId) on every line, once.
        logs.json().flatten_event(true).with_span_list(false).init();
    } else {
        // Lambda stamps each text line itself.
        logs.without_time().init();
    }
    if let Some(level) = unknown {
        tracing::warn!(level, "unknown AWS_LAMBDA_LOG_LEVEL, logging at INFO");
    }
}

/// The filter for `AWS_LAMBDA_LOG_LEVEL` (Lambda's `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR`,
/// `FATAL`), else `RUST_LOG` (any filter directives), else INFO; with the level given when
/// Lambda's was not one of those.
fn log_filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> (EnvFilter, Option<String>) {
    let info = || EnvFilter::new("info");
    match lambda_level {
        Some(level) => match level.to_ascii_lowercase().as_str() {
            "fatal" => (EnvFilter::new("error"), None),
            known @ ("trace" | "debug" | "info" | "warn" | "error") => {
                (EnvFilter::new(known), None)
            }
            _ => (info(), Some(level.to_owned())),
        },
        None => (
            rust_log
                .and_then(|directives| EnvFilter::try_new(directives).ok())
                .unwrap_or_else(info),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(lambda_level: Option<&str>, rust_log: Option<&str>) -> (String, Option<String>) {
        let (filter, unknown) = log_filter(lambda_level, rust_log);
        (filter.to_string(), unknown)
    }

    #[test]
    fn lambdas_log_level_wins_and_fatal_means_error() {
        assert_eq!(filter(Some("DEBUG"), Some("trace")), ("debug".into(), None));
        assert_eq!(filter(Some("WARN"), None), ("warn".into(), None));
        assert_eq!(filter(Some("FATAL"), None), ("error".into(), None));
    }

    #[test]
    fn an_unknown_lambda_level_logs_at_info_and_is_reported() {
        assert_eq!(
            filter(Some("VERBOSE"), Some("debug")),
            ("info".into(), Some("VERBOSE".into()))
        );
    }

    #[test]
    fn without_lambdas_level_rust_log_applies_else_info() {
        assert_eq!(
            filter(None, Some("ecr_janitor=debug")),
            ("ecr_janitor=debug".into(), None)
        );
        assert_eq!(filter(None, None), ("info".into(), None));
    }
}
