//! What a run tells ops: one typed value, per repository and in total, as camelCase JSON.
//!
//! The Lambda returns it and logs it, the CLI prints it; [`sink`] fits it to each place's
//! size limit. `plan` prints the per-image part ([`PlanReport`]) in the same shape.

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::aws::AwsError;
use crate::decide::brakes::TaggedBrake;
use crate::decide::graph::Unreadable;
use crate::decide::scope::{Position, Refusal, Shard, SkipReason};
use crate::model::ImageFailure;

pub mod event;
mod images;
pub mod metrics;
pub mod sink;
mod table;

pub use images::{ExpiredImage, ImageEntry, KeptImage, PlanReport};

/// ECR storage price used for the saving estimate, in USD per GB-month.
pub const USD_PER_GB_MONTH: f64 = 0.10;
const BYTES_PER_GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Why a repository could not be swept (or stopped part-way).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RepositoryError {
    /// An AWS call failed after retries.
    #[error(transparent)]
    Call(#[from] AwsError),
    /// The repository's tags make sweeping it unsafe.
    #[error("{0}")]
    Refused(Refusal),
    /// An index manifest could not be read, so no untagged image was deleted.
    #[error(
        "the manifest of index {} could not be read ({}); nothing untagged was deleted in \
         this repository", .0.index, .0.why
    )]
    ManifestUnreadable(Unreadable),
    /// The plan would delete too large a share of the repository's tagged images.
    #[error("{0}")]
    TaggedBrake(TaggedBrake),
}

impl RepositoryError {
    /// A stable code for metrics, events and alarms: the AWS error code, or the refusal's.
    pub fn code(&self) -> &str {
        match self {
            RepositoryError::Call(e) => e.code.as_deref().unwrap_or("CallFailed"),
            RepositoryError::Refused(r) => r.code(),
            RepositoryError::ManifestUnreadable(_) => "ManifestUnreadable",
            RepositoryError::TaggedBrake(_) => "TaggedDeleteBrake",
        }
    }
}

/// How one repository's sweep ended. In JSON: nothing when swept, `skipped` with the reason,
/// or `error` with `errorCode`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Outcome {
    /// Swept (per-image failures, if any, are listed separately).
    #[default]
    Swept,
    /// Left alone on purpose.
    Skipped(SkipReason),
    /// Not swept, or not to the end.
    Failed(RepositoryError),
}

impl Serialize for Outcome {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            Outcome::Swept => {}
            Outcome::Skipped(reason) => map.serialize_entry("skipped", &reason.to_string())?,
            Outcome::Failed(error) => {
                map.serialize_entry("error", &error.to_string())?;
                map.serialize_entry("errorCode", error.code())?;
            }
        }
        map.end()
    }
}

/// What happened in one repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryReport {
    /// Repository name.
    pub name: String,
    /// The region it is in.
    pub region: String,
    /// Images listed (all of them, or only untagged ones when no rule selects tagged images).
    pub images_scanned: u64,
    /// Untagged images among them.
    pub untagged_scanned: u64,
    /// Images the plan expired (deleted unless dry run or a failure says otherwise).
    pub expired: Vec<ExpiredImage>,
    /// Images kept and why; only in dry-run reports, where it is the preview.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<Vec<KeptImage>>,
    /// Images this run deleted, as ECR's responses list them.
    pub deleted: u64,
    /// Expired images ECR no longer had (`ImageNotFound`): someone else deleted them.
    pub already_gone: u64,
    /// Images ECR refused to delete.
    pub failures: Vec<ImageFailure>,
    /// Planned deletions not carried out, and why: tagged since planned, listed by an index
    /// pushed meanwhile, following an image that was not deleted, or a failed call. Not in
    /// `expired`. Live runs only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub held_back: Vec<KeptImage>,
    /// Expired images left for a later run by `MAX_DELETIONS_PER_RUN`. Not in `expired`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<ExpiredImage>,
    /// Images kept because an ECS task or service, or a Lambda function, uses them.
    pub protected_in_use: u64,
    /// Size of the expired images.
    pub bytes_expired: i64,
    /// Size of the images this run deleted.
    pub bytes_freed: i64,
    /// Skipped, failed, or neither.
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl RepositoryReport {
    /// An empty report for the repository called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..Self::default()
        }
    }

    /// Whether the repository ended in an error.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }
}

/// Sums across the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Totals {
    /// Repositories visited.
    pub repositories: u64,
    /// Images listed.
    pub images_scanned: u64,
    /// Untagged images listed.
    pub untagged_scanned: u64,
    /// Images expired by the plan.
    pub expired: u64,
    /// Images deleted.
    pub deleted: u64,
    /// Expired images that were already gone.
    pub already_gone: u64,
    /// Images ECR refused to delete.
    pub failed: u64,
    /// Planned deletions held back at delete time.
    pub held_back: u64,
    /// Expired images left for a later run by the deletion brake.
    pub deferred: u64,
    /// Images kept because they are in use.
    pub protected_in_use: u64,
    /// Repositories that reported an error.
    pub repository_errors: u64,
    /// Size of the expired images.
    pub bytes_expired: i64,
    /// Size of the deleted images.
    pub bytes_freed: i64,
    /// Storage saving per month: of the deleted images, or in a dry run of the expired ones.
    /// An upper bound: ECR's image size counts layers that other images may share.
    pub estimated_monthly_saving_usd: f64,
}

impl Totals {
    fn of(repositories: &[RepositoryReport], dry_run: bool) -> Self {
        let mut t = Totals {
            repositories: repositories.len() as u64,
            ..Totals::default()
        };
        for r in repositories {
            t.images_scanned += r.images_scanned;
            t.untagged_scanned += r.untagged_scanned;
            t.expired += r.expired.len() as u64;
            t.deleted += r.deleted;
            t.already_gone += r.already_gone;
            t.failed += r.failures.len() as u64;
            t.held_back += r.held_back.len() as u64;
            t.deferred += r.deferred.len() as u64;
            t.protected_in_use += r.protected_in_use;
            t.repository_errors += u64::from(r.failed());
            t.bytes_expired += r.bytes_expired;
            t.bytes_freed += r.bytes_freed;
        }
        let saved = if dry_run {
            t.bytes_expired
        } else {
            t.bytes_freed
        };
        t.estimated_monthly_saving_usd =
            (saved as f64 / BYTES_PER_GB * USD_PER_GB_MONTH * 10_000.0).round() / 10_000.0;
        t
    }
}

/// For `skip_serializing_if`: a count of 0 is not shown.
fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What the in-use lookup covered.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InUseReport {
    /// Whether ECS tasks and services were looked up.
    pub ecs: bool,
    /// Whether Lambda functions were looked up.
    pub lambda: bool,
    /// Image references found that point into ECR.
    pub references: u64,
}

/// The brakes, as configured, and what tripped.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrakesReport {
    /// `MAX_DELETIONS_PER_RUN`; null when off.
    pub max_deletions_per_run: Option<u64>,
    /// Whether it left expired images for a later run (`deferred`).
    pub max_deletions_per_run_tripped: bool,
    /// `MAX_TAGGED_DELETE_PERCENT`; null when off.
    pub max_tagged_delete_percent: Option<u32>,
    /// Repositories it left untouched.
    pub max_tagged_delete_percent_tripped: Vec<String>,
}

/// Where a Lambda run started and where the next one will (README: "Runs that cannot finish").
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CursorReport {
    /// The function tag that keeps it (`ecr-janitor:cursor`, or one per shard).
    pub key: String,
    /// The cursor this run started from (`<region>:<name>`); null when there was none, or it
    /// could not be read, and the run started from the stateless rotation.
    pub started_at: Option<String>,
    /// The cursor this run saved for the next: the first repository it did not visit or
    /// deferred deletions in. Null when it saved none: the run finished (the next one starts
    /// where this one did), was a dry run, deleted nothing because of a safety stop, or the
    /// save failed.
    pub next: Option<String>,
    /// Why the cursor could not be read or saved; the run went on without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Whether deletes were suppressed.
    pub dry_run: bool,
    /// False when the deadline stopped the run before every repository was visited, or the
    /// deletion brake deferred expired images to a later run.
    pub complete: bool,
    /// Why nothing was deleted although the run was not a dry run (e.g. the in-use lookup
    /// failed). A run with a safety stop is a failed run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub safety_stop: Option<String>,
    /// The Lambda run's cursor; absent for the CLI, which starts from the rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<CursorReport>,
    /// Where a later run should start to finish what this one left: the first repository, in
    /// this run's order, that it did not visit or deferred deletions in. Not reported as is:
    /// the cursor saves it.
    #[serde(skip)]
    pub resume_at: Option<Position>,
    /// The shard this run covered, when it was one of several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// What the in-use lookup covered.
    pub in_use: InUseReport,
    /// The brakes and what tripped.
    pub brakes: BrakesReport,
    /// Whether the run event reached EventBridge; absent when `EVENT_BUS_NAME` is unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_published: Option<bool>,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// Sums across `repositories`.
    pub totals: Totals,
    /// One entry per repository visited, sorted by name (then region).
    pub repositories: Vec<RepositoryReport>,
    /// Repositories in scope that the deadline left unvisited, sorted (as `name@region` when
    /// the run covers several regions).
    pub not_visited: Vec<String>,
    /// Repositories an invocation asked for that do not exist or are excluded by config.
    pub requested_not_found: Vec<String>,
    /// True when per-image lists were left out to fit a size limit (see [`RunReport::summary`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub image_lists_omitted: bool,
    /// Repositories left out of `repositories` ([`RunReport::totals_only`]); 0 is not shown.
    #[serde(skip_serializing_if = "is_zero")]
    pub repositories_omitted: usize,
}

impl RunReport {
    /// Builds the report; totals are derived from the repositories so they always agree.
    pub fn new(
        dry_run: bool,
        started_at: DateTime<Utc>,
        duration_ms: u64,
        mut repositories: Vec<RepositoryReport>,
        mut not_visited: Vec<String>,
        requested_not_found: Vec<String>,
    ) -> Self {
        repositories.sort_by(|a, b| (&a.name, &a.region).cmp(&(&b.name, &b.region)));
        not_visited.sort();
        let totals = Totals::of(&repositories, dry_run);
        Self {
            dry_run,
            complete: not_visited.is_empty() && totals.deferred == 0,
            safety_stop: None,
            cursor: None,
            resume_at: None,
            shard: None,
            in_use: InUseReport::default(),
            brakes: BrakesReport::default(),
            event_published: None,
            started_at,
            duration_ms,
            totals,
            repositories,
            not_visited,
            requested_not_found,
            image_lists_omitted: false,
            repositories_omitted: 0,
        }
    }

    /// The report without per-image lists (`expired`, `kept`, `heldBack`, `deferred`), for places with a size limit
    /// (Lambda's response, a CloudWatch log event). Every count and total stays.
    pub fn summary(&self) -> RunReport {
        let mut summary = self.clone();
        for r in &mut summary.repositories {
            r.expired = Vec::new();
            r.kept = None;
            r.held_back = Vec::new();
            r.deferred = Vec::new();
        }
        summary.image_lists_omitted = true;
        summary
    }

    /// The lines under the repository table: totals, safety stop, deferrals, unvisited.
    fn table_footer(&self, mb: impl Fn(i64) -> String) -> String {
        let mut out = String::new();
        let t = &self.totals;
        out.push_str(&format!(
            "{} repositories, {} images scanned, {} expired, {} deleted, {} failed, {} MB freed \
             (~${:.2}/month){}\n",
            t.repositories,
            t.images_scanned,
            t.expired,
            t.deleted,
            t.failed,
            mb(t.bytes_freed),
            t.estimated_monthly_saving_usd,
            if self.dry_run {
                "; dry run, nothing deleted"
            } else {
                ""
            },
        ));
        if let Some(stop) = &self.safety_stop {
            out.push_str(&format!("SAFETY STOP, nothing deleted: {stop}\n"));
        }
        if t.deferred > 0 {
            out.push_str(&format!(
                "{} expired images deferred to the next run by MAX_DELETIONS_PER_RUN\n",
                t.deferred
            ));
        }
        for (label, names) in [
            ("not visited (deadline)", &self.not_visited),
            ("requested but not found", &self.requested_not_found),
        ] {
            if !names.is_empty() {
                out.push_str(&format!("{label}: {}\n", names.join(", ")));
            }
        }
        out
    }

    /// The report without its repositories (their count stays in `repositoriesOmitted`): what
    /// a Step Functions shard returns, under the 256 KB a state may hold.
    pub fn totals_only(&self) -> RunReport {
        let mut totals = self.summary();
        totals.repositories_omitted = totals.repositories.len();
        totals.repositories = Vec::new();
        totals
    }

    /// A fixed-width table for people: one line per repository, then the totals.
    pub fn to_table(&self) -> String {
        let header = [
            "REPOSITORY",
            "SCANNED",
            "EXPIRED",
            "DELETED",
            "GONE",
            "FAILED",
            "MB FREED",
            "NOTE",
        ];
        let mb = |bytes: i64| format!("{:.1}", bytes as f64 / (1024.0 * 1024.0));
        let rows = self.repositories.iter().map(|r| {
            let note = match &r.outcome {
                Outcome::Swept => String::new(),
                Outcome::Skipped(reason) => format!("skipped: {reason}"),
                Outcome::Failed(error) => format!("error: {error}"),
            };
            vec![
                r.name.clone(),
                r.images_scanned.to_string(),
                r.expired.len().to_string(),
                r.deleted.to_string(),
                r.already_gone.to_string(),
                r.failures.len().to_string(),
                mb(r.bytes_freed),
                note,
            ]
        });
        let mut out = table::render(&header, rows);
        out.push_str(&self.table_footer(mb));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str, freed: i64, expired_bytes: i64, error: bool) -> RepositoryReport {
        RepositoryReport {
            name: name.into(),
            images_scanned: 3,
            untagged_scanned: 2,
            deleted: 1,
            bytes_freed: freed,
            bytes_expired: expired_bytes,
            outcome: if error {
                Outcome::Failed(RepositoryError::Call(AwsError {
                    operation: "DescribeImages",
                    code: Some("AccessDeniedException".into()),
                    message: "denied".into(),
                }))
            } else {
                Outcome::Swept
            },
            ..RepositoryReport::default()
        }
    }

    #[test]
    fn totals_add_up_and_repositories_are_sorted() {
        let gb = 1024 * 1024 * 1024;
        let started = DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
        let r = RunReport::new(
            false,
            started,
            5,
            vec![
                repo("b", 5 * gb, 6 * gb, false),
                repo("a", 5 * gb, 5 * gb, true),
            ],
            vec!["z".into(), "c".into()],
            vec![],
        );
        assert_eq!(r.repositories[0].name, "a");
        assert_eq!(r.not_visited, ["c", "z"]);
        assert!(!r.complete);
        assert_eq!(r.totals.repositories, 2);
        assert_eq!(r.totals.images_scanned, 6);
        assert_eq!(r.totals.deleted, 2);
        assert_eq!(r.totals.repository_errors, 1);
        assert_eq!(r.totals.bytes_freed, 10 * gb);
        assert_eq!(r.totals.estimated_monthly_saving_usd, 1.0);

        let dry = RunReport::new(
            true,
            started,
            5,
            vec![repo("a", 0, 3 * gb, false)],
            vec![],
            vec![],
        );
        assert!(dry.complete);
        assert_eq!(dry.totals.estimated_monthly_saving_usd, 0.3);
    }

    #[test]
    fn json_is_camel_case_and_omits_empty_optionals() {
        let started = DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
        let r = RunReport::new(
            true,
            started,
            1,
            vec![repo("a", 0, 0, false)],
            vec![],
            vec![],
        );
        let v = serde_json::to_value(&r).expect("serializes");
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["totals"]["estimatedMonthlySavingUsd"], 0.0);
        assert_eq!(v["repositories"][0]["untaggedScanned"], 2);
        assert!(v["repositories"][0].get("error").is_none());
        assert!(v["repositories"][0].get("errorCode").is_none());
        assert!(v["repositories"][0].get("kept").is_none());
        assert_eq!(v["notVisited"], serde_json::json!([]));
    }

    #[test]
    fn summary_keeps_counts_and_drops_image_lists() {
        let started = DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
        let mut r = repo("a", 1, 1, false);
        r.kept = Some(Vec::new());
        r.expired = vec![ExpiredImage {
            image: ImageEntry {
                image_digest: "sha256:aa".into(),
                image_tags: vec![],
                image_pushed_at: started,
                image_size_in_bytes: Some(1),
                reason: "old".into(),
            },
            applied_rule_priority: Some(1),
        }];
        let full = RunReport::new(true, started, 1, vec![r], vec![], vec![]);
        let summary = full.summary();
        assert_eq!(summary.totals, full.totals);
        assert!(summary.repositories[0].expired.is_empty());
        assert!(summary.repositories[0].kept.is_none());
        let v = serde_json::to_value(&summary).expect("serializes");
        assert_eq!(v["imageListsOmitted"], true);
        let v = serde_json::to_value(&full).expect("serializes");
        assert!(
            v.get("imageListsOmitted").is_none(),
            "absent when nothing was left out"
        );
    }

    #[test]
    fn outcomes_keep_the_error_code_and_the_json_shape() {
        let started = DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
        let mut skipped = repo("s", 0, 0, false);
        skipped.outcome = Outcome::Skipped(SkipReason::SkipTag {
            value: "true".into(),
        });
        let refused = RepositoryReport {
            outcome: Outcome::Failed(RepositoryError::Refused(Refusal::UnknownPolicy {
                name: "x".into(),
                known: vec!["y".into()],
            })),
            ..RepositoryReport::new("r")
        };
        let r = RunReport::new(
            false,
            started,
            1,
            vec![repo("a", 0, 0, true), skipped, refused],
            vec![],
            vec![],
        );
        let v = serde_json::to_value(&r).expect("serializes");
        let by_name = |n: &str| {
            let repos = v["repositories"].as_array().expect("list");
            repos
                .iter()
                .find(|r| r["name"] == n)
                .expect("present")
                .clone()
        };
        assert_eq!(by_name("a")["errorCode"], "AccessDeniedException");
        assert_eq!(by_name("a")["error"], "DescribeImages failed: denied");
        assert_eq!(
            by_name("s")["skipped"],
            "repository tag ecr-janitor:skip=true"
        );
        assert!(by_name("s").get("error").is_none());
        assert_eq!(by_name("r")["errorCode"], "UnknownPolicy");
        assert_eq!(r.totals.repository_errors, 2);
    }

    #[test]
    fn the_table_has_a_line_per_repository_and_the_totals() {
        let started = DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
        let r = RunReport::new(
            false,
            started,
            1,
            vec![repo("web", 1024 * 1024, 0, false), repo("api", 0, 0, true)],
            vec!["zz".into()],
            vec![],
        );
        let table = r.to_table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("REPOSITORY"), "{table}");
        assert!(lines[1].starts_with("api ") && lines[1].contains("error: DescribeImages failed"));
        assert!(
            lines[2].starts_with("web ") && lines[2].contains("1.0"),
            "{table}"
        );
        assert!(
            lines[3].starts_with("2 repositories, 6 images scanned"),
            "{table}"
        );
        assert_eq!(lines[4], "not visited (deadline): zz");
    }
}
