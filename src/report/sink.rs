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

/// How many bytes `value`'s JSON takes, counted as it serializes: a large report is not
/// written out only to be measured.
fn json_len(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// The report's JSON when it fits in `limit` bytes.
fn json_within(report: &RunReport, limit: usize) -> Option<String> {
    match fits(report, limit) {
        true => serde_json::to_string(report).ok(),
        false => None,
    }
}

/// Whether the report's JSON fits in `limit` bytes (else a sink sends its summary).
pub fn fits(report: &RunReport, limit: usize) -> bool {
    json_len(report) <= limit
}

/// Logs what the response cannot hold. At INFO the logs keep to one line per repository
/// and the summary, except when the Lambda response had to leave its image lists out
/// (`response_whole` false): then the expired images are logged in `expired images` lines
/// of [`EXPIRED_PER_LOG_LINE`], so that every deleted digest is on record somewhere. At
/// DEBUG the whole report is logged too, as one `run report` line (its summary when too big
/// for CloudWatch, after the expired images).
pub fn log(report: &RunReport, response_whole: bool) {
    let debug = tracing::enabled!(tracing::Level::DEBUG);
    let whole = if debug {
        json_within(report, MAX_LOG_LINE_BYTES)
    } else {
        None
    };
    if !response_whole || (debug && whole.is_none()) {
        log_expired(report);
    }
    if debug {
        let json =
            whole.unwrap_or_else(|| serde_json::to_string(&report.summary()).unwrap_or_default());
        tracing::debug!(report = %json, "run report");
    }
}

fn log_expired(report: &RunReport) {
    for repo in &report.repositories {
        for (i, chunk) in repo.expired.chunks(EXPIRED_PER_LOG_LINE).enumerate() {
            let images = serde_json::to_string(chunk).unwrap_or_default();
            tracing::info!(repository = %repo.name, part = i + 1, expired = %images, "expired images");
        }
    }
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
        assert!(fits(&report, size), "fits: returned whole");
        assert!(!fits(&report, size - 1));
        let small = report.summary();
        assert!(small.image_lists_omitted);
        assert_eq!(small.totals, report.totals);
        assert_eq!(small.repositories[0].deleted, 7);
    }
}
