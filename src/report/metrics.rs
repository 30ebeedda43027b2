//! A run's numbers as CloudWatch metrics, for dashboards and alarms, at no API cost: one log
//! line in the Embedded Metric Format (EMF), which CloudWatch Logs turns into metrics.
//!
//! Namespace [`NAMESPACE`], dimensions `FunctionName` and `DryRun` (`"true"`/`"false"`), one
//! value per run of each metric: `ImagesScanned`, `ImagesExpired`, `ImagesDeleted`,
//! `DeleteFailures` (images ECR refused to delete), `BytesFreed` (Bytes), `RepositoriesSwept`
//! (repositories swept to the end, neither skipped nor failed), `RepositoryErrors`,
//! `IncompleteRuns` (1 when the deadline left repositories unvisited or the deletion brake
//! deferred images, else 0), `InUseProtected` (images kept because ECS or Lambda uses them),
//! `ImagesDeferred` and `SafetyStops` (1 when a failed in-use lookup kept the run from
//! deleting); all `Count` unless stated. The metric's timestamp is the run's end.
//!
//! The line must reach CloudWatch Logs as it is: print it on its own line (the run prints it
//! on stderr, which Lambda sends to CloudWatch Logs like stdout), not through `tracing`
//! (which would wrap it). Lambda gives a JSON line without a `level` the level INFO, so the
//! function's application log level must stay INFO or lower for the metrics to arrive.

use serde_json::{json, Map, Value};

use super::{Outcome, RunReport};

/// The CloudWatch namespace of the janitor's metrics.
pub const NAMESPACE: &str = "ECRJanitor";

const COUNT: &str = "Count";
const BYTES: &str = "Bytes";

/// The run's metrics as (name, unit, value).
fn metrics(report: &RunReport) -> [(&'static str, &'static str, Value); 11] {
    let t = &report.totals;
    let swept = report
        .repositories
        .iter()
        .filter(|r| matches!(r.outcome, Outcome::Swept))
        .count();
    [
        ("ImagesScanned", COUNT, t.images_scanned.into()),
        ("ImagesExpired", COUNT, t.expired.into()),
        ("ImagesDeleted", COUNT, t.deleted.into()),
        ("DeleteFailures", COUNT, t.failed.into()),
        ("BytesFreed", BYTES, t.bytes_freed.into()),
        ("RepositoriesSwept", COUNT, swept.into()),
        ("RepositoryErrors", COUNT, t.repository_errors.into()),
        ("IncompleteRuns", COUNT, u8::from(!report.complete).into()),
        ("InUseProtected", COUNT, t.protected_in_use.into()),
        ("ImagesDeferred", COUNT, t.deferred.into()),
        (
            "SafetyStops",
            COUNT,
            u8::from(report.safety_stop.is_some()).into(),
        ),
    ]
}

/// One EMF log line (no newline) for `report`, with `function_name` (the Lambda's
/// `AWS_LAMBDA_FUNCTION_NAME`) as the `FunctionName` dimension.
pub fn emf_line(report: &RunReport, function_name: &str) -> String {
    let duration = i64::try_from(report.duration_ms).unwrap_or(i64::MAX);
    let ended_ms = report
        .started_at
        .timestamp_millis()
        .saturating_add(duration);
    let metrics = metrics(report);
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": ended_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["FunctionName", "DryRun"]],
                "Metrics": definitions,
            }],
        }),
    );
    root.insert("FunctionName".into(), function_name.into());
    root.insert("DryRun".into(), report.dry_run.to_string().into());
    for (name, _, value) in metrics {
        root.insert(name.into(), value);
    }
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::aws::AwsError;
    use crate::report::{RepositoryError, RepositoryReport};

    /// The units the EMF specification allows (CloudWatch's `StandardUnit`).
    const UNITS: &[&str] = &[
        "Seconds",
        "Microseconds",
        "Milliseconds",
        "Bytes",
        "Kilobytes",
        "Megabytes",
        "Gigabytes",
        "Terabytes",
        "Bits",
        "Kilobits",
        "Megabits",
        "Gigabits",
        "Terabits",
        "Percent",
        "Count",
        "Bytes/Second",
        "Kilobytes/Second",
        "Megabytes/Second",
        "Gigabytes/Second",
        "Terabytes/Second",
        "Bits/Second",
        "Kilobits/Second",
        "Megabits/Second",
        "Gigabits/Second",
        "Terabits/Second",
        "Count/Second",
        "None",
    ];

    fn run(dry_run: bool, not_visited: Vec<String>) -> RunReport {
        let swept = RepositoryReport {
            images_scanned: 40,
            deleted: 7,
            bytes_freed: 7 * 1024,
            ..RepositoryReport::new("a")
        };
        let failed = RepositoryReport {
            images_scanned: 2,
            outcome: Outcome::Failed(RepositoryError::Call(AwsError {
                operation: "BatchDeleteImage",
                code: Some("ThrottlingException".into()),
                message: "slow down".into(),
            })),
            ..RepositoryReport::new("b")
        };
        let started = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).expect("valid time");
        RunReport::new(
            dry_run,
            started,
            1500,
            vec![swept, failed],
            not_visited,
            vec![],
        )
    }

    /// Checks `line` against the EMF specification's required structure and returns the root.
    fn check_emf(line: &str) -> Map<String, Value> {
        assert!(!line.contains('\n'), "one line");
        let root = match serde_json::from_str(line).expect("JSON") {
            Value::Object(root) => root,
            other => panic!("the root must be an object: {other}"),
        };
        let meta = root["_aws"].as_object().expect("_aws is an object");
        assert!(meta["Timestamp"].is_u64(), "Timestamp: epoch milliseconds");
        let directives = meta["CloudWatchMetrics"].as_array().expect("an array");
        assert!(!directives.is_empty());
        for directive in directives {
            assert!(directive["Namespace"]
                .as_str()
                .is_some_and(|n| !n.is_empty()));
            let sets = directive["Dimensions"].as_array().expect("an array");
            for set in sets {
                let set = set.as_array().expect("an array of arrays");
                assert!(set.len() <= 30, "at most 30 dimensions per set");
                for dimension in set {
                    let name = dimension.as_str().expect("dimension names are strings");
                    assert!(
                        root[name].is_string(),
                        "dimension {name}: a top-level string"
                    );
                }
            }
            let metrics = directive["Metrics"].as_array().expect("an array");
            assert!(metrics.len() <= 100, "at most 100 metrics per directive");
            for metric in metrics {
                let name = metric["Name"].as_str().expect("Name is a string");
                let unit = metric["Unit"].as_str().expect("Unit is a string");
                assert!(UNITS.contains(&unit), "{name}: unit {unit}");
                assert!(root[name].is_number(), "metric {name}: a top-level number");
            }
        }
        root
    }

    #[test]
    fn the_line_has_the_emf_structure_and_the_runs_numbers() {
        let report = run(false, vec!["c".into()]);
        let root = check_emf(&emf_line(&report, "ecr-janitor-JanitorFunction-abc"));
        assert_eq!(
            root["_aws"]["Timestamp"], 1_790_000_001_500_u64,
            "the run's end"
        );
        let directive = &root["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "ECRJanitor");
        assert_eq!(directive["Dimensions"], json!([["FunctionName", "DryRun"]]));
        assert_eq!(root["FunctionName"], "ecr-janitor-JanitorFunction-abc");
        assert_eq!(root["DryRun"], "false");
        let expected = [
            ("ImagesScanned", 42, "Count"),
            ("ImagesExpired", 0, "Count"),
            ("ImagesDeleted", 7, "Count"),
            ("DeleteFailures", 0, "Count"),
            ("BytesFreed", 7 * 1024, "Bytes"),
            ("RepositoriesSwept", 1, "Count"),
            ("RepositoryErrors", 1, "Count"),
            ("IncompleteRuns", 1, "Count"),
            ("InUseProtected", 0, "Count"),
            ("ImagesDeferred", 0, "Count"),
            ("SafetyStops", 0, "Count"),
        ];
        let defined: Vec<(&str, &str)> = directive["Metrics"]
            .as_array()
            .expect("list")
            .iter()
            .filter_map(|m| Some((m["Name"].as_str()?, m["Unit"].as_str()?)))
            .collect();
        for (i, (name, value, unit)) in expected.into_iter().enumerate() {
            assert_eq!(defined[i], (name, unit));
            assert_eq!(root[name], value, "{name}");
        }
        assert_eq!(defined.len(), expected.len());
    }

    #[test]
    fn a_complete_dry_run_is_its_own_dimension_value_and_no_incomplete_run() {
        let root = check_emf(&emf_line(&run(true, vec![]), "f"));
        assert_eq!(root["DryRun"], "true");
        assert_eq!(root["IncompleteRuns"], 0);
    }
}
