//! What a run tells ops: per repository and in total, as camelCase JSON.
//!
//! The Lambda returns it, logs it, and the CLI prints it; `plan` prints the per-image
//! part ([`PlanReport`]) in the same shape.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::plan::{Decision, Plan};

/// ECR storage price used for the saving estimate, in USD per GB-month.
pub const USD_PER_GB_MONTH: f64 = 0.10;
const BYTES_PER_GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// An image and why the plan decided as it did; the part expired and kept entries share.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    /// Image digest (`sha256:…`).
    pub image_digest: String,
    /// Tags the image had when planned.
    pub image_tags: Vec<String>,
    /// When it was pushed.
    pub image_pushed_at: DateTime<Utc>,
    /// ECR's reported size, when known.
    pub image_size_in_bytes: Option<i64>,
    /// Human-readable reason.
    pub reason: String,
}

impl From<&Decision> for ImageEntry {
    fn from(d: &Decision) -> Self {
        Self {
            image_digest: d.image.digest.clone(),
            image_tags: d.image.tags.clone(),
            image_pushed_at: d.image.pushed_at,
            image_size_in_bytes: d.image.size_bytes,
            reason: d.reason.to_string(),
        }
    }
}

/// An image the plan expires, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredImage {
    /// The image and the reason.
    #[serde(flatten)]
    pub image: ImageEntry,
    /// The rule that expired it, as in ECR's lifecycle preview.
    pub applied_rule_priority: Option<u32>,
}

/// An image the plan keeps, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptImage {
    /// The image and the reason.
    #[serde(flatten)]
    pub image: ImageEntry,
    /// The rule that claimed it, or null when no rule selected it.
    pub rule_priority: Option<u32>,
}

impl From<&Decision> for ExpiredImage {
    fn from(d: &Decision) -> Self {
        Self {
            image: d.into(),
            applied_rule_priority: d.rule_priority,
        }
    }
}

impl From<&Decision> for KeptImage {
    fn from(d: &Decision) -> Self {
        Self {
            image: d.into(),
            rule_priority: d.rule_priority,
        }
    }
}

/// A plan, per image, as `ecr-janitor plan` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReport {
    /// Images that expire, oldest first.
    pub expired: Vec<ExpiredImage>,
    /// Images that stay, oldest first.
    pub kept: Vec<KeptImage>,
}

impl From<&Plan> for PlanReport {
    fn from(plan: &Plan) -> Self {
        Self {
            expired: plan.expired.iter().map(ExpiredImage::from).collect(),
            kept: plan.kept.iter().map(KeptImage::from).collect(),
        }
    }
}

impl PlanReport {
    /// A fixed-width table for people: one line per image, expired first.
    pub fn to_table(&self) -> String {
        let mut rows: Vec<[String; 6]> = vec![[
            "ACTION".into(),
            "RULE".into(),
            "PUSHED".into(),
            "DIGEST".into(),
            "TAGS".into(),
            "REASON".into(),
        ]];
        let row = |action: &str, rule: Option<u32>, e: &ImageEntry| {
            [
                action.to_owned(),
                rule.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                e.image_pushed_at.format("%Y-%m-%d %H:%M").to_string(),
                short_digest(&e.image_digest).to_owned(),
                if e.image_tags.is_empty() {
                    "<untagged>".to_owned()
                } else {
                    e.image_tags.join(",")
                },
                e.reason.clone(),
            ]
        };
        for e in &self.expired {
            rows.push(row("expire", e.applied_rule_priority, &e.image));
        }
        for k in &self.kept {
            rows.push(row("keep", k.rule_priority, &k.image));
        }
        let mut widths = [0usize; 6];
        for r in &rows {
            for (w, cell) in widths.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            out.push_str(line.join("  ").trim_end());
            out.push('\n');
        }
        out.push_str(&format!(
            "{} expired, {} kept\n",
            self.expired.len(),
            self.kept.len()
        ));
        out
    }
}

/// `sha256:0123456789ab…` → the first 12 hex digits, as `docker images` shows them.
fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

/// One image ECR refused to delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureEntry {
    /// Image digest.
    pub image_digest: String,
    /// ECR's failure code.
    pub failure_code: String,
    /// ECR's explanation.
    pub failure_reason: String,
}

/// What happened in one repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepositoryReport {
    /// Repository name.
    pub name: String,
    /// Images listed (all of them, or only untagged ones when no rule selects tagged images).
    pub images_scanned: u64,
    /// Untagged images among them.
    pub untagged_scanned: u64,
    /// Images the plan expired (deleted unless dry run or a failure says otherwise).
    pub expired: Vec<ExpiredImage>,
    /// Images kept and why; only in dry-run reports, where it is the preview.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<Vec<KeptImage>>,
    /// Images this run deleted.
    pub deleted: u64,
    /// Expired images ECR no longer had (`ImageNotFound`): someone else deleted them.
    pub already_gone: u64,
    /// Images ECR refused to delete.
    pub failures: Vec<FailureEntry>,
    /// Size of the expired images.
    pub bytes_expired: i64,
    /// Size of the images this run deleted.
    pub bytes_freed: i64,
    /// Why the repository was skipped (e.g. its `ecr-janitor:skip` tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Why the repository could not be swept (or finished early).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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

/// The result of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// Whether deletes were suppressed.
    pub dry_run: bool,
    /// False when the deadline stopped the run before every repository was visited.
    pub complete: bool,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
    /// Sums across `repositories`.
    pub totals: Totals,
    /// One entry per repository visited, sorted by name.
    pub repositories: Vec<RepositoryReport>,
    /// Repositories in scope that the deadline left unvisited, sorted.
    pub not_visited: Vec<String>,
    /// Repositories an invocation asked for that do not exist or are excluded by config.
    pub requested_not_found: Vec<String>,
    /// True when per-image lists were left out to fit a size limit (see [`RunReport::summary`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub image_lists_omitted: bool,
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
        repositories.sort_by(|a, b| a.name.cmp(&b.name));
        not_visited.sort();
        let mut t = Totals {
            repositories: repositories.len() as u64,
            ..Totals::default()
        };
        for r in &repositories {
            t.images_scanned += r.images_scanned;
            t.untagged_scanned += r.untagged_scanned;
            t.expired += r.expired.len() as u64;
            t.deleted += r.deleted;
            t.already_gone += r.already_gone;
            t.failed += r.failures.len() as u64;
            t.repository_errors += u64::from(r.error.is_some());
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
        Self {
            dry_run,
            complete: not_visited.is_empty(),
            started_at,
            duration_ms,
            totals: t,
            repositories,
            not_visited,
            requested_not_found,
            image_lists_omitted: false,
        }
    }

    /// The report without per-image lists (`expired`, `kept`), for places with a size limit
    /// (Lambda's response, a CloudWatch log event). Every count and total stays.
    pub fn summary(&self) -> RunReport {
        let mut summary = self.clone();
        for r in &mut summary.repositories {
            r.expired = Vec::new();
            r.kept = None;
        }
        summary.image_lists_omitted = true;
        summary
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
            error: error.then(|| "DescribeImages failed".into()),
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
    fn short_digests() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
    }
}
