//! Where a report goes, each place with its own size limit: the Lambda response and
//! CloudWatch Logs. A report that does not fit goes out as its [`RunReport::summary`], and
//! the log keeps every expired digest in chunks first.

use super::RunReport;

/// Largest report the Lambda returns whole: Lambda caps a response at 6 MB.
pub const MAX_RESPONSE_BYTES: usize = 5 * 1024 * 1024;
/// Largest report logged in one line: CloudWatch Logs caps an event at 256 KB.
pub const MAX_LOG_LINE_BYTES: usize = 200 * 1024;
/// Expired images per `expired images` log line when the report is too big for one line.
const EXPIRED_PER_LOG_LINE: usize = 500;

/// The report's JSON when it fits in `limit` bytes.
fn json_within(report: &RunReport, limit: usize) -> Option<String> {
    serde_json::to_string(report)
        .ok()
        .filter(|json| json.len() <= limit)
}

/// The report if its JSON fits in `limit` bytes, else its summary.
pub fn fit(report: RunReport, limit: usize) -> RunReport {
    match json_within(&report, limit) {
        Some(_) => report,
        None => report.summary(),
    }
}

/// Logs the report at DEBUG in one `run report` line; when that line would be too long for
/// CloudWatch, the expired images go first in `expired images` lines of
/// [`EXPIRED_PER_LOG_LINE`], and the `run report` line carries the summary. At INFO the logs
/// keep to one line per repository and the summary: no per-image lines.
pub fn log(report: &RunReport) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let json = json_within(report, MAX_LOG_LINE_BYTES).unwrap_or_else(|| {
        for repo in &report.repositories {
            for (i, chunk) in repo.expired.chunks(EXPIRED_PER_LOG_LINE).enumerate() {
                let images = serde_json::to_string(chunk).unwrap_or_default();
                tracing::debug!(repository = %repo.name, part = i + 1, expired = %images, "expired images");
            }
        }
        serde_json::to_string(&report.summary()).unwrap_or_default()
    });
    tracing::debug!(report = %json, "run report");
}

/// Logs the run's totals in one line: what the CLI logs, and what every run ends with.
pub fn log_summary(report: &RunReport) {
    let t = &report.totals;
    tracing::info!(
        dry_run = report.dry_run,
        complete = report.complete,
        repositories = t.repositories,
        scanned = t.images_scanned,
        expired = t.expired,
        deleted = t.deleted,
        failed = t.failed,
        repository_errors = t.repository_errors,
        bytes_freed = t.bytes_freed,
        "run finished"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::RepositoryReport;
    use chrono::{DateTime, Utc};

    #[test]
    fn reports_too_big_for_the_limit_become_summaries() {
        let started = DateTime::<Utc>::from_timestamp(0, 0).expect("epoch");
        let repo = RepositoryReport {
            deleted: 7,
            kept: Some(Vec::new()),
            ..RepositoryReport::new("a")
        };
        let report = RunReport::new(true, started, 1, vec![repo], vec![], vec![]);
        let size = serde_json::to_vec(&report).expect("json").len();
        assert_eq!(fit(report.clone(), size), report, "fits: returned whole");
        let small = fit(report.clone(), size - 1);
        assert!(small.image_lists_omitted);
        assert_eq!(small.totals, report.totals);
        assert_eq!(small.repositories[0].deleted, 7);
    }
}
