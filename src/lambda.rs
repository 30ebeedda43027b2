//! The Lambda entry point: event → options → run → response.
//!
//! The payload's overrides are resolved before any AWS call; the report is logged whole (in
//! chunks when large) and returned whole when it fits Lambda's response limit, else as its
//! summary.

use std::time::SystemTime;

use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use tokio::time::Instant;

use crate::aws::cursor::CursorStore;
use crate::aws::ecr::Registry;
use crate::aws::ecs::Ecs;
use crate::aws::eventbridge::Events;
use crate::aws::functions::Functions;
use crate::aws::AwsError;
use crate::report::{sink, RunReport};
use crate::run::deadline::stop_starting_at;
use crate::run::{InputError, Janitor, Overrides};

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// The payload was refused; nothing was done.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The registry could not be listed.
    #[error(transparent)]
    Registry(#[from] AwsError),
    /// The run deleted nothing because it could not know what is safe (the report, with the
    /// reason, is in the logs).
    #[error("safety stop, nothing was deleted: {0}")]
    SafetyStop(String),
}

impl From<LambdaError> for Diagnostic {
    fn from(e: LambdaError) -> Self {
        let error_type = match e {
            LambdaError::Input(_) => "InvalidInput",
            LambdaError::Registry(_) => "RegistryError",
            LambdaError::SafetyStop(_) => "SafetyStop",
        };
        Self {
            error_type: error_type.into(),
            error_message: e.to_string(),
        }
    }
}

/// Handles one invocation. A safety stop is an error, so that the function's error alarm
/// fires; its report is in the logs. The run keeps its cursor on the function it was
/// invoked as.
pub async fn handle<R: Registry, E: Ecs, F: Functions, V: Events, C: CursorStore>(
    janitor: &Janitor<R, E, F, V, C>,
    event: LambdaEvent<Value>,
) -> Result<RunReport, LambdaError> {
    let (payload, context) = event.into_parts();
    let options = janitor.options(Overrides::from_event(&payload)?)?;
    let totals_only = options.totals_only();
    let stop = stop_starting_at(context.deadline(), SystemTime::now(), Instant::now());
    let invoked = context.invoked_function_arn.as_str();
    let report = janitor.run(options, stop, Some(invoked)).await?;
    if let Some(why) = &report.safety_stop {
        sink::log(&report, false);
        return Err(LambdaError::SafetyStop(why.clone()));
    }
    let whole = sink::fits(&report, sink::MAX_RESPONSE_BYTES) && !totals_only;
    sink::log(&report, whole);
    Ok(match (whole, totals_only) {
        (true, _) => report,
        (false, true) => report.totals_only(),
        (false, false) => report.summary(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{images, FakeCompute, FakeCursor, FakeEvents, FakeRegistry};
    use lambda_runtime::Context;
    use serde_json::json;

    const SCHEDULED: &str = include_str!("../events/scheduled.json");

    type Fake = Janitor<FakeRegistry, FakeCompute, FakeCompute, FakeEvents, FakeCursor>;

    fn janitor(vars: &[(&str, &str)], registry: FakeRegistry) -> Fake {
        crate::testing::janitor(vars, registry, FakeCompute::default())
    }

    async fn invoke(janitor: &Fake, payload: Value) -> Result<RunReport, Diagnostic> {
        handle(janitor, LambdaEvent::new(payload, Context::default()))
            .await
            .map_err(Diagnostic::from)
    }

    fn two_repositories() -> FakeRegistry {
        FakeRegistry::with(vec![
            ("a", images("a", 2, 30, None)),
            ("b", images("b", 1, 30, None)),
        ])
    }

    #[tokio::test]
    async fn a_scheduled_event_sweeps_every_repository() {
        let janitor = janitor(&[("DRY_RUN", "false")], two_repositories());
        let event: Value = serde_json::from_str(SCHEDULED).expect("events/scheduled.json");
        let report = invoke(&janitor, event).await.expect("runs");
        assert!(!report.dry_run && report.complete);
        assert_eq!(report.totals.deleted, 3);
        assert_eq!(janitor.regions[0].services.registry.deleted().len(), 3);
    }

    #[tokio::test]
    async fn an_override_narrows_the_run_and_forces_a_dry_run() {
        let janitor = janitor(&[("DRY_RUN", "false")], two_repositories());
        let report = invoke(&janitor, json!({"dryRun": true, "repositories": ["b"]}))
            .await
            .expect("runs");
        assert!(report.dry_run);
        let names: Vec<&str> = report
            .repositories
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(names, ["b"]);
        assert_eq!(report.totals.expired, 1);
        assert!(janitor.regions[0]
            .services
            .registry
            .calls("delete")
            .is_empty());
    }

    #[tokio::test]
    async fn a_refused_payload_is_an_invalid_input_error_and_touches_nothing() {
        let janitor = janitor(&[], two_repositories());
        let error = invoke(&janitor, json!({"dryRun": false}))
            .await
            .expect_err("refused");
        assert_eq!(error.error_type, "InvalidInput");
        assert!(
            error.error_message.contains("cannot turn off DRY_RUN=true"),
            "{}",
            error.error_message
        );
        assert!(janitor.regions[0]
            .services
            .registry
            .calls("images")
            .is_empty());
    }

    #[tokio::test]
    async fn a_failed_in_use_lookup_is_a_safety_stop_error_and_deletes_nothing() {
        let denied = FakeCompute {
            denied: true,
            ..FakeCompute::default()
        };
        let janitor = crate::testing::janitor(&[("DRY_RUN", "false")], two_repositories(), denied);
        let error = invoke(&janitor, Value::Null)
            .await
            .expect_err("safety stop");
        assert_eq!(error.error_type, "SafetyStop");
        assert!(
            error.error_message.contains("ecs:ListClusters"),
            "{}",
            error.error_message
        );
        assert!(janitor.regions[0]
            .services
            .registry
            .calls("delete")
            .is_empty());
    }

    #[tokio::test]
    async fn a_shard_asking_for_totals_only_gets_no_repository_entries() {
        let janitor = janitor(&[("DRY_RUN", "false")], two_repositories());
        let payload = json!({"shard": {"index": 0, "count": 1}, "totalsOnly": true});
        let report = invoke(&janitor, payload).await.expect("runs");
        assert!(report.repositories.is_empty());
        assert_eq!((report.repositories_omitted, report.totals.deleted), (2, 3));
    }

    #[tokio::test]
    async fn a_report_too_big_for_the_response_comes_back_as_its_summary() {
        // 40,000 expired entries of ~190 bytes each make a report over 5 MB.
        let registry = FakeRegistry::with(vec![("big", images("x", 40_000, 30, None))]);
        let janitor = janitor(&[("MAX_DELETIONS_PER_RUN", "off")], registry);
        let report = invoke(&janitor, Value::Null).await.expect("runs");
        assert!(report.image_lists_omitted);
        assert!(report.repositories[0].expired.is_empty());
        assert_eq!(report.totals.expired, 40_000);
        let size = serde_json::to_vec(&report).expect("json").len();
        assert!(size < sink::MAX_RESPONSE_BYTES, "{size}");
    }
}
