//! The Lambda binary (`bootstrap`): validate the configuration at cold start, then serve.
//!
//! A bad configuration is printed as its message, one line per variable, and the process
//! exits non-zero before any AWS client exists.
//!
//! Logs follow Lambda's logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON` gives one JSON object
//! per line, and `AWS_LAMBDA_LOG_LEVEL` the level. After each run the function prints the
//! run's metrics (one EMF line) and, when `EVENT_BUS_NAME` is set, puts the run event on
//! that bus.

use std::process::ExitCode;

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use ecr_janitor::aws::eventbridge::{EventBridgeEvents, Events, PutOutcome};
use ecr_janitor::aws::MAX_ATTEMPTS;
use ecr_janitor::lambda::{self, LambdaError};
use ecr_janitor::report::event::RunEvent;
use ecr_janitor::report::{metrics, RunReport};
use ecr_janitor::run::Janitor;
use lambda_runtime::service_fn;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    init_logging();
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let janitor = Janitor::from_env().await?;
    let announcer = Announcer::from_env().await;
    let (janitor, announcer) = (&janitor, &announcer);
    lambda_runtime::run(service_fn(move |event| async move {
        let report = lambda::handle(janitor, event).await?;
        announcer.announce(&report).await;
        Ok::<RunReport, LambdaError>(report)
    }))
    .await
    .map_err(|e| anyhow::anyhow!(e))
}

/// Lambda's logging controls, where `lambda_runtime::tracing::init_default_subscriber` falls
/// short: its JSON lines have no timestamp, and Lambda then counts every line as INFO (so
/// `DEBUG` lines pass an INFO filter); it nests the message under `fields`; it colours text
/// for a terminal; and it takes `FATAL`, a level Lambda sets, for unknown (so INFO).
fn init_logging() {
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

/// What each run tells ops besides its report: the metrics, and the run event when a bus is
/// configured.
struct Announcer {
    function_name: String,
    bus: Option<(String, EventBridgeEvents)>,
}

impl Announcer {
    /// Reads `AWS_LAMBDA_FUNCTION_NAME` (Lambda sets it) and `EVENT_BUS_NAME` (a name or ARN;
    /// empty or unset: no events, and no EventBridge client).
    async fn from_env() -> Self {
        let function_name =
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "ecr-janitor".into());
        let bus = match std::env::var("EVENT_BUS_NAME") {
            Ok(bus) if !bus.trim().is_empty() => {
                let config = aws_config::defaults(BehaviorVersion::latest())
                    .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
                    .load()
                    .await;
                Some((bus.trim().to_owned(), EventBridgeEvents::from_conf(&config)))
            }
            _ => None,
        };
        Self { function_name, bus }
    }

    /// Prints the metrics line and puts the run event; a failure to publish is logged, not
    /// raised: the run itself is done and its report stands.
    async fn announce(&self, report: &RunReport) {
        println!("{}", metrics::emf_line(report, &self.function_name));
        let Some((bus, events)) = &self.bus else {
            return;
        };
        // The run reports no safety stop yet: pass its flag here once it does.
        let event = match RunEvent::new(report, false) {
            Ok(event) => event,
            Err(e) => {
                tracing::error!(error = %e, "run event not built");
                return;
            }
        };
        let detail_type = event.detail_type;
        match events.put_event(bus, detail_type, &event.detail).await {
            Ok(PutOutcome::Published) => tracing::info!(bus, detail_type, "run event published"),
            Ok(PutOutcome::Failed { code, message }) => {
                tracing::error!(bus, code, message, "run event refused by EventBridge");
            }
            Err(e) => tracing::error!(bus, error = %e, "run event not published"),
        }
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
