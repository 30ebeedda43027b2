//! The Lambda entry point: event → overrides → sweep → report.
//!
//! An invocation may carry overrides, as a plain JSON object or in an EventBridge event's
//! `detail`: `{"dryRun": true, "repositories": ["a", "b/c"]}`. Overrides can only make a
//! run safer (force dry-run on, narrow the repositories); anything else is rejected before
//! any ECR call.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;

use crate::config::{Config, ConfigError};
use crate::registry::{EcrRegistry, Registry, RegistryError};
use crate::report::RunReport;
use crate::sweep::{self, RunOptions};

/// Most time kept back from the Lambda deadline for in-flight repositories to finish.
pub const DEADLINE_RESERVE: Duration = Duration::from_secs(30);
/// Largest report the Lambda returns whole: Lambda caps a response at 6 MB.
pub const MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;
/// Largest report logged in one line: CloudWatch Logs caps an event at 256 KB.
pub const MAX_LOG_LINE_BYTES: usize = 200 * 1024;
/// Expired images per `expired images` log line when the report is too big for one line.
const EXPIRED_PER_LOG_LINE: usize = 500;

/// The overrides an invocation may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overrides {
    /// `true` forces a dry run; `false` cannot turn a configured dry run off.
    pub dry_run: Option<bool>,
    /// Sweep only these repositories.
    pub repositories: Option<Vec<String>>,
}

/// An invocation payload the janitor will not act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid invocation input, nothing was done: {0}")]
pub struct InputError(pub String);

impl Overrides {
    /// Reads overrides from a payload: null, a plain object, or an EventBridge event
    /// (recognised by its `detail-type`) whose `detail` holds them.
    pub fn from_event(payload: &Value) -> Result<Self, InputError> {
        let bad = |e: serde_json::Error| InputError(e.to_string());
        match payload {
            Value::Null => Ok(Self::default()),
            Value::Object(map) if map.contains_key("detail-type") => {
                let mut event = payload.clone();
                // EventBridge Scheduler's default notification may carry `detail` as JSON text.
                if let Some(Value::String(text)) = event.get("detail") {
                    let detail = serde_json::from_str(text)
                        .map_err(|e| InputError(format!("EventBridge event detail: {e}")))?;
                    event["detail"] = detail;
                }
                serde_json::from_value::<EventBridgeEvent<Option<Overrides>>>(event)
                    .map(|event| event.detail.unwrap_or_default())
                    .map_err(|e| InputError(format!("EventBridge event: {e}")))
            }
            Value::Object(_) => serde_json::from_value(payload.clone()).map_err(bad),
            other => Err(InputError(format!(
                "expected a JSON object (overrides or an EventBridge event), got {other}"
            ))),
        }
    }

    /// Applies the overrides to the configuration, refusing any that would make the run
    /// less safe than configured.
    pub fn resolve(self, config: &Config) -> Result<RunOptions, InputError> {
        if self.dry_run == Some(false) && config.dry_run {
            return Err(InputError(
                "dryRun: false cannot turn off DRY_RUN=true; overrides can only make a run \
                 safer (change the DRY_RUN variable instead)"
                    .into(),
            ));
        }
        let repositories = match self.repositories {
            None => None,
            Some(names) if names.is_empty() => {
                return Err(InputError(
                    "repositories is empty; name at least one repository or leave it out".into(),
                ))
            }
            Some(names) => {
                if names.iter().any(|n| n.trim().is_empty()) {
                    return Err(InputError("repositories has an empty name".into()));
                }
                Some(names.into_iter().collect::<BTreeSet<_>>())
            }
        };
        Ok(RunOptions {
            dry_run: config.dry_run || self.dry_run == Some(true),
            repositories,
        })
    }
}

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum JanitorError {
    /// The payload was refused; nothing was done.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The registry could not be listed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<JanitorError> for lambda_runtime::Diagnostic {
    fn from(e: JanitorError) -> Self {
        let error_type = match e {
            JanitorError::Input(_) => "InvalidInput",
            JanitorError::Registry(_) => "RegistryError",
        };
        Self {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// The janitor: configuration validated at cold start, and a registry.
#[derive(Debug)]
pub struct Janitor<R> {
    config: Config,
    registry: R,
}

impl Janitor<EcrRegistry> {
    /// Validates the environment first, so a bad configuration makes no ECR client at all.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Ok(Self::new(config, EcrRegistry::from_env().await))
    }
}

impl<R: Registry> Janitor<R> {
    /// A janitor over any registry (tests use fakes).
    pub fn new(config: Config, registry: R) -> Self {
        Self { config, registry }
    }

    /// The run options for an invocation payload.
    pub fn options(&self, payload: &Value) -> Result<RunOptions, InputError> {
        Overrides::from_event(payload)?.resolve(&self.config)
    }

    /// One sweep, logged. Shared by the Lambda and the CLI.
    pub async fn run(
        &self,
        options: &RunOptions,
        stop_starting_at: Option<Instant>,
    ) -> Result<RunReport, RegistryError> {
        tracing::info!(dry_run = options.dry_run, "run starting");
        let report = sweep::run(
            &self.registry,
            &self.config,
            options,
            Utc::now(),
            stop_starting_at,
        )
        .await?;
        log_report(&report);
        Ok(report)
    }

    /// The Lambda handler. A report too big for Lambda's response comes back as its
    /// [`RunReport::summary`]; the logs keep the expired images.
    pub async fn invoke(&self, event: LambdaEvent<Value>) -> Result<RunReport, JanitorError> {
        let options = self.options(&event.payload)?;
        let stop = stop_starting_at(event.context.deadline, SystemTime::now(), Instant::now());
        let report = self.run(&options, stop).await?;
        Ok(fit(report, MAX_RESPONSE_BYTES))
    }
}

fn json_len(report: &RunReport) -> usize {
    serde_json::to_vec(report).map_or(usize::MAX, |v| v.len())
}

/// The report if its JSON fits in `limit` bytes, else its summary.
fn fit(report: RunReport, limit: usize) -> RunReport {
    if json_len(&report) <= limit {
        report
    } else {
        report.summary()
    }
}

/// Logs the report in one `run report` line; when that line would be too long for CloudWatch,
/// the expired images go first in `expired images` lines of [`EXPIRED_PER_LOG_LINE`], and the
/// `run report` line carries the summary.
fn log_report(report: &RunReport) {
    let json = match serde_json::to_string(report) {
        Ok(json) if json.len() <= MAX_LOG_LINE_BYTES => json,
        Ok(_) => {
            for repo in &report.repositories {
                for (i, chunk) in repo.expired.chunks(EXPIRED_PER_LOG_LINE).enumerate() {
                    let images = serde_json::to_string(chunk).unwrap_or_default();
                    tracing::info!(repository = %repo.name, part = i + 1, expired = %images, "expired images");
                }
            }
            serde_json::to_string(&report.summary()).unwrap_or_default()
        }
        Err(e) => {
            tracing::warn!(error = %e, "run report could not be serialized");
            return;
        }
    };
    tracing::info!(report = %json, "run report");
}

/// Deadlines before this (2000-01-01, in ms since the epoch) are not real Lambda deadlines:
/// local emulators send 0 or a duration (cargo-lambda sends 600000) instead of a time.
const EARLIEST_REAL_DEADLINE_MS: u64 = 946_684_800_000;

/// When to stop starting repositories, given the Lambda deadline (ms since the epoch): the
/// deadline less a reserve of [`DEADLINE_RESERVE`] or a quarter of the time left, whichever
/// is smaller. None when the deadline is not a real one.
pub fn stop_starting_at(deadline_ms: u64, now: SystemTime, clock: Instant) -> Option<Instant> {
    if deadline_ms < EARLIEST_REAL_DEADLINE_MS {
        tracing::warn!(
            deadline_ms,
            "no usable Lambda deadline; running without one"
        );
        return None;
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline.duration_since(now).unwrap_or(Duration::ZERO);
    let reserve = DEADLINE_RESERVE.min(left / 4);
    Some(clock + (left - reserve))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(dry_run: bool) -> Config {
        let dry = dry_run.to_string();
        Config::from_lookup(|k| (k == "DRY_RUN").then(|| dry.clone())).expect("valid config")
    }

    fn names(list: &[&str]) -> Option<BTreeSet<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn payloads_that_are_accepted() {
        let scheduled = json!({
            "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event", "source": "aws.events",
            "account": "123456789012", "time": "2026-11-30T06:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/ecr-janitor"],
            "detail": {}
        });
        let mut in_detail = scheduled.clone();
        in_detail["detail"] = json!({"dryRun": true, "repositories": ["a", "b/c"]});
        let cases = [
            (Value::Null, false, None),
            (json!({}), false, None),
            (scheduled, false, None),
            (json!({"dryRun": true}), true, None),
            (json!({"dryRun": false}), false, None),
            (
                json!({"repositories": ["b/c", "a"]}),
                false,
                names(&["a", "b/c"]),
            ),
            (in_detail, true, names(&["a", "b/c"])),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": "{}"}),
                false,
                None,
            ),
        ];
        for (payload, dry_run, repositories) in cases {
            let options = Overrides::from_event(&payload)
                .and_then(|o| o.resolve(&config(false)))
                .unwrap_or_else(|e| panic!("{payload}: {e}"));
            assert_eq!(
                options,
                RunOptions {
                    dry_run,
                    repositories
                },
                "{payload}"
            );
        }
    }

    #[test]
    fn payloads_that_are_refused() {
        let cases = [
            (json!({"dryrun": true}), false),
            (json!({"dryRun": "yes"}), false),
            (json!({"repositories": "a"}), false),
            (json!({"repositories": []}), false),
            (json!({"repositories": [""]}), false),
            (json!(["a"]), false),
            (json!("run"), false),
            (
                json!({"detail-type": "Scheduled Event", "source": "aws.scheduler", "detail": {"force": true}}),
                false,
            ),
            (
                json!({"detail-type": "Scheduled Event", "detail": "{not json"}),
                false,
            ),
            (json!({"dryRun": false}), true),
        ];
        for (payload, configured_dry_run) in cases {
            let result = Overrides::from_event(&payload)
                .and_then(|o| o.resolve(&config(configured_dry_run)));
            assert!(
                result.is_err(),
                "{payload} should be refused, got {result:?}"
            );
        }
    }

    #[test]
    fn a_configured_dry_run_stays_on() {
        let options = Overrides::from_event(&json!({"repositories": ["a"]}))
            .and_then(|o| o.resolve(&config(true)))
            .expect("valid");
        assert!(options.dry_run);
    }

    #[test]
    fn reports_too_big_for_a_response_become_summaries() {
        let started = chrono::DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
        let repo = crate::report::RepositoryReport {
            name: "a".into(),
            deleted: 7,
            kept: Some(Vec::new()),
            ..Default::default()
        };
        let report = RunReport::new(true, started, 1, vec![repo], vec![], vec![]);
        let size = json_len(&report);
        assert_eq!(fit(report.clone(), size), report, "fits: returned whole");
        let small = fit(report.clone(), size - 1);
        assert!(small.image_lists_omitted);
        assert_eq!(small.totals, report.totals);
        assert_eq!(small.repositories[0].deleted, 7);
    }

    #[test]
    fn deadline_reserve() {
        let start_s = 1_764_482_400; // 2025-11-30T06:00:00Z
        let now = UNIX_EPOCH + Duration::from_secs(start_s);
        let clock = Instant::now();
        let at = |left_s: u64| {
            stop_starting_at((start_s + left_s) * 1000, now, clock).map(|t| t - clock)
        };
        assert_eq!(at(900), Some(Duration::from_secs(870)), "30 s reserve");
        let quarter = Some(Duration::from_secs(30));
        assert_eq!(at(40), quarter, "a quarter of a short budget");
        assert_eq!(stop_starting_at(0, now, clock), None, "no deadline");
        assert_eq!(
            stop_starting_at(600_000, now, clock),
            None,
            "cargo-lambda's duration is not a deadline"
        );
        assert_eq!(
            stop_starting_at((start_s - 5) * 1000, now, clock),
            Some(clock),
            "deadline already passed"
        );
    }
}
