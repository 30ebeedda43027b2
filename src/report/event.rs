//! A run as one EventBridge event: what other systems subscribe to (chat notifications,
//! tickets, dashboards) without reading logs.
//!
//! The detail-type says how the run ended, so a rule can match on it alone:
//!
//! - [`RUN_FAILED`] (`ECR Janitor Run Failed`) when the run did not do all it was asked to: a
//!   repository ended in an error (`totals.repositoryErrors > 0`), the deadline left
//!   repositories unvisited (`complete: false`), or a safety stop held deletions back
//!   (`safetyStop: true`). Dry runs can fail too.
//! - [`RUN_COMPLETED`] (`ECR Janitor Run Completed`) otherwise. Images ECR refused to delete
//!   (e.g. `ImageReferencedByManifestList`) do not fail a run: they are counted in
//!   `totals.failed` and per repository, and retried by the next run.
//!
//! The detail is the report's summary with the report's own field names: `dryRun`,
//! `complete`, `safetyStop`, `startedAt`, `durationMs`, `totals`, and per repository its
//! `name`, counts (`expired` and `failed` as numbers, as in `totals`), and `error` +
//! `errorCode` or `skipped`; then `repositoriesOmitted`. No per-image lists. A repository's
//! `expired` count is absent when the report given had its image lists omitted already.
//!
//! EventBridge refuses entries of 256 KB or more. A detail that would not fit keeps only the
//! repositories with something to act on (deletions, expired images, failures or an error),
//! as many as fit in name order, and `repositoriesOmitted` says how many were left out.
//! `events/run-completed.json` and `events/run-failed.json` are samples of the whole event
//! (the other files of `events/` are invocation events).

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Outcome, RepositoryReport, RunReport, Totals};
use crate::aws::eventbridge::SOURCE;

/// Detail-type of a run that did everything it was asked to.
pub const RUN_COMPLETED: &str = "ECR Janitor Run Completed";
/// Detail-type of a run that left work undone: see the module documentation.
pub const RUN_FAILED: &str = "ECR Janitor Run Failed";
/// EventBridge's limit on one PutEvents entry (source, detail-type and detail); an entry must
/// be smaller.
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// The detail-type and detail of a run's event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    /// [`RUN_COMPLETED`] or [`RUN_FAILED`].
    pub detail_type: &'static str,
    /// The detail, a JSON object, under [`MAX_ENTRY_BYTES`] with the source and detail-type.
    pub detail: String,
}

impl RunEvent {
    /// The event for `report`; `safety_stop` says a safety limit held deletions back.
    pub fn new(report: &RunReport, safety_stop: bool) -> Result<Self, serde_json::Error> {
        let detail_type = detail_type(report, safety_stop);
        let budget = MAX_ENTRY_BYTES - 1 - SOURCE.len() - detail_type.len();
        let detail = detail_within(report, safety_stop, budget)?;
        Ok(Self {
            detail_type,
            detail,
        })
    }
}

/// [`RUN_FAILED`] when a repository errored, the run is incomplete or a safety stop held
/// deletions back; else [`RUN_COMPLETED`].
pub fn detail_type(report: &RunReport, safety_stop: bool) -> &'static str {
    if report.totals.repository_errors > 0 || !report.complete || safety_stop {
        RUN_FAILED
    } else {
        RUN_COMPLETED
    }
}

/// The event's detail.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Detail<'a> {
    dry_run: bool,
    complete: bool,
    safety_stop: bool,
    started_at: DateTime<Utc>,
    duration_ms: u64,
    totals: &'a Totals,
    repositories: Vec<RepositorySummary<'a>>,
    repositories_omitted: usize,
}

/// One repository in the detail: its counts and how it ended, no image lists.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RepositorySummary<'a> {
    name: &'a str,
    region: &'a str,
    images_scanned: u64,
    untagged_scanned: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired: Option<u64>,
    deleted: u64,
    already_gone: u64,
    failed: u64,
    held_back: u64,
    deferred: u64,
    protected_in_use: u64,
    bytes_expired: i64,
    bytes_freed: i64,
    #[serde(flatten)]
    outcome: &'a Outcome,
}

impl<'a> RepositorySummary<'a> {
    fn of(r: &'a RepositoryReport, lists_omitted: bool) -> Self {
        Self {
            name: &r.name,
            region: &r.region,
            images_scanned: r.images_scanned,
            untagged_scanned: r.untagged_scanned,
            expired: (!lists_omitted).then_some(r.expired.len() as u64),
            deleted: r.deleted,
            already_gone: r.already_gone,
            failed: r.failures.len() as u64,
            held_back: r.held_back.len() as u64,
            deferred: r.deferred.len() as u64,
            protected_in_use: r.protected_in_use,
            bytes_expired: r.bytes_expired,
            bytes_freed: r.bytes_freed,
            outcome: &r.outcome,
        }
    }

    /// Whether ops may need to act on it: something was (or would be) deleted, or went wrong.
    fn noteworthy(&self) -> bool {
        let expired = self.expired.map_or(self.bytes_expired > 0, |n| n > 0);
        expired || self.deleted > 0 || self.failed > 0 || matches!(self.outcome, Outcome::Failed(_))
    }
}

/// The detail's JSON, at most `budget` bytes when the report allows (see the module docs).
fn detail_within(
    report: &RunReport,
    safety_stop: bool,
    budget: usize,
) -> Result<String, serde_json::Error> {
    let repositories: Vec<RepositorySummary> = report
        .repositories
        .iter()
        .map(|r| RepositorySummary::of(r, report.image_lists_omitted))
        .collect();
    let total = repositories.len();
    let mut detail = Detail {
        dry_run: report.dry_run,
        complete: report.complete,
        safety_stop,
        started_at: report.started_at,
        duration_ms: report.duration_ms,
        totals: &report.totals,
        repositories,
        repositories_omitted: 0,
    };
    let json = serde_json::to_string(&detail)?;
    if json.len() <= budget {
        return Ok(json);
    }
    let candidates = std::mem::take(&mut detail.repositories);
    // Measured with every repository omitted: the final count has no more digits.
    detail.repositories_omitted = total;
    let mut used = serde_json::to_string(&detail)?.len();
    for summary in candidates.into_iter().filter(RepositorySummary::noteworthy) {
        // One byte more than the entry: the comma before the next one.
        let size = serde_json::to_string(&summary)?.len() + 1;
        if used + size <= budget {
            used += size;
            detail.repositories.push(summary);
        }
    }
    detail.repositories_omitted = total - detail.repositories.len();
    serde_json::to_string(&detail)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::aws::AwsError;
    use crate::decide::scope::SkipReason;
    use crate::model::ImageFailure;
    use crate::report::{ExpiredImage, ImageEntry, RepositoryError};

    const SAMPLE_COMPLETED: &str = include_str!("../../events/run-completed.json");
    const SAMPLE_FAILED: &str = include_str!("../../events/run-failed.json");

    fn started() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T06:00:00Z")
            .expect("valid time")
            .to_utc()
    }

    fn expired(n: usize) -> Vec<ExpiredImage> {
        (0..n)
            .map(|i| ExpiredImage {
                image: ImageEntry {
                    image_digest: format!("sha256:{i:064}"),
                    image_tags: vec![],
                    image_pushed_at: started(),
                    image_size_in_bytes: Some(1000),
                    reason: "rule 1: untagged, pushed 30 days ago (limit 14 days)".into(),
                },
                applied_rule_priority: Some(1),
            })
            .collect()
    }

    fn swept(name: &str, expired_images: usize, deleted: u64) -> RepositoryReport {
        RepositoryReport {
            images_scanned: 10,
            untagged_scanned: 4,
            expired: expired(expired_images),
            deleted,
            bytes_expired: 1000 * expired_images as i64,
            bytes_freed: 1000 * deleted as i64,
            ..RepositoryReport::new(name)
        }
    }

    fn denied(name: &str) -> RepositoryReport {
        RepositoryReport {
            outcome: Outcome::Failed(RepositoryError::Call(AwsError {
                operation: "DescribeImages",
                code: Some("AccessDeniedException".into()),
                message: "not authorized to perform: ecr:DescribeImages".into(),
            })),
            ..RepositoryReport::new(name)
        }
    }

    fn skipped(name: &str) -> RepositoryReport {
        RepositoryReport {
            outcome: Outcome::Skipped(SkipReason::SkipTag {
                value: "true".into(),
            }),
            ..RepositoryReport::new(name)
        }
    }

    fn report(repositories: Vec<RepositoryReport>, not_visited: Vec<String>) -> RunReport {
        RunReport::new(false, started(), 5321, repositories, not_visited, vec![])
    }

    fn detail(event: &RunEvent) -> Value {
        serde_json::from_str(&event.detail).expect("detail is JSON")
    }

    #[test]
    fn a_clean_run_completes_and_anything_left_undone_fails_it() {
        let clean = report(vec![swept("a", 2, 2), skipped("b")], vec![]);
        assert_eq!(detail_type(&clean, false), RUN_COMPLETED);
        assert_eq!(detail_type(&clean, true), RUN_FAILED, "safety stop");
        let errored = report(vec![swept("a", 2, 2), denied("b")], vec![]);
        assert_eq!(detail_type(&errored, false), RUN_FAILED);
        let incomplete = report(vec![swept("a", 2, 2)], vec!["z".into()]);
        assert_eq!(detail_type(&incomplete, false), RUN_FAILED);
        let mut refused_images = swept("a", 2, 1);
        refused_images.failures = vec![ImageFailure {
            image_digest: Some("sha256:b".into()),
            failure_code: "ImageReferencedByManifestList".into(),
            failure_reason: "referenced".into(),
        }];
        let refused = report(vec![refused_images], vec![]);
        assert_eq!(
            detail_type(&refused, false),
            RUN_COMPLETED,
            "per-image refusals are counted, not a failed run"
        );
    }

    #[test]
    fn the_detail_is_the_summary_with_the_reports_field_names() {
        let run = report(vec![swept("a", 3, 2), denied("b"), skipped("c")], vec![]);
        let event = RunEvent::new(&run, false).expect("serializes");
        assert_eq!(event.detail_type, RUN_FAILED);
        let d = detail(&event);
        assert_eq!(d["dryRun"], false);
        assert_eq!(d["complete"], true);
        assert_eq!(d["safetyStop"], false);
        assert_eq!(d["startedAt"], "2026-11-30T06:00:00Z");
        assert_eq!(d["durationMs"], 5321);
        assert_eq!(
            d["totals"],
            serde_json::to_value(&run.totals).expect("json")
        );
        assert_eq!(d["repositoriesOmitted"], 0);
        let repos = d["repositories"].as_array().expect("list");
        assert_eq!(repos.len(), 3);
        assert_eq!(repos[0]["name"], "a");
        assert_eq!(repos[0]["expired"], 3, "a count, not the image list");
        assert_eq!(repos[0]["deleted"], 2);
        assert_eq!(repos[0]["bytesFreed"], 2000);
        assert!(repos[0].get("kept").is_none() && repos[0].get("error").is_none());
        assert_eq!(repos[1]["errorCode"], "AccessDeniedException");
        assert!(repos[1]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("DescribeImages failed")));
        assert_eq!(repos[2]["skipped"], "repository tag ecr-janitor:skip=true");
        assert!(!event.detail.contains("sha256:"), "no per-image data");
    }

    #[test]
    fn a_summary_report_has_no_per_repository_expired_count() {
        let run = report(vec![swept("a", 3, 2)], vec![]).summary();
        let d = detail(&RunEvent::new(&run, false).expect("serializes"));
        assert!(d["repositories"][0].get("expired").is_none());
        assert_eq!(d["totals"]["expired"], 3, "the total stays");
    }

    /// `n` repositories with long names; every `every`th one has deletions, the 7th an error.
    fn many(n: usize, every: usize) -> RunReport {
        let repos = (0..n)
            .map(|i| {
                let name = format!("team-{i:05}/{}", "service-with-a-long-name-".repeat(6));
                match i {
                    7 => denied(&name),
                    _ if i % every == 0 => swept(&name, 1, 1),
                    _ => swept(&name, 0, 0),
                }
            })
            .collect();
        report(repos, vec![])
    }

    fn entry_size(event: &RunEvent) -> usize {
        SOURCE.len() + event.detail_type.len() + event.detail.len()
    }

    #[test]
    fn a_detail_too_big_keeps_the_repositories_to_act_on() {
        // 3,000 repositories of ~330 bytes each: about 1 MB in full.
        let run = many(3000, 10);
        let event = RunEvent::new(&run, false).expect("serializes");
        assert!(
            entry_size(&event) < MAX_ENTRY_BYTES,
            "{}",
            entry_size(&event)
        );
        let d = detail(&event);
        let listed = d["repositories"].as_array().expect("list");
        assert_eq!(listed.len(), 300 + 1, "every 10th, plus the errored one");
        assert!(listed
            .iter()
            .all(|r| r["deleted"] == 1 || r["errorCode"] == "AccessDeniedException"));
        assert_eq!(d["repositoriesOmitted"], 3000 - 301);
        assert_eq!(d["totals"]["repositories"], 3000, "totals stay whole");
    }

    #[test]
    fn when_even_those_do_not_fit_as_many_as_fit_are_kept() {
        let run = many(3000, 1);
        let event = RunEvent::new(&run, false).expect("serializes");
        let size = entry_size(&event);
        assert!(size < MAX_ENTRY_BYTES, "{size}");
        assert!(size > MAX_ENTRY_BYTES - 1000, "the budget is used: {size}");
        let d = detail(&event);
        let listed = d["repositories"].as_array().expect("list").len();
        assert!(listed > 500, "{listed}");
        assert_eq!(d["repositoriesOmitted"], 3000 - listed);
    }

    /// The JSON's shape: every object's keys, recursively, with the values left out.
    fn shape(v: &Value) -> Value {
        match v {
            Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), shape(v))).collect(),
            Value::Array(items) => items.iter().map(shape).collect(),
            _ => Value::Null,
        }
    }

    fn check_sample(sample: &str, run: &RunReport) {
        let sample: Value = serde_json::from_str(sample).expect("sample is JSON");
        let event = RunEvent::new(run, false).expect("serializes");
        assert_eq!(sample["source"], SOURCE);
        assert_eq!(sample["detail-type"], event.detail_type);
        assert_eq!(shape(&sample["detail"]), shape(&detail(&event)));
    }

    #[test]
    fn the_samples_have_the_keys_of_a_generated_detail() {
        check_sample(
            SAMPLE_COMPLETED,
            &report(
                vec![swept("api/orders", 3, 3), skipped("legacy/batch")],
                vec![],
            ),
        );
        check_sample(
            SAMPLE_FAILED,
            &report(
                vec![swept("api/orders", 3, 3), denied("team-b/private")],
                vec!["web/frontend".into()],
            ),
        );
    }
}
