//! The Lambda run's cursor: read before the sweep, saved after it. Neither can fail the run
//! or hold up a deletion: a failure is logged and reported, and the run starts from the
//! stateless rotation instead.

use crate::aws::cursor::{function_arn, CursorStore};
use crate::decide::scope::{cursor_key, Position, Shard};
use crate::report::{CursorReport, RunReport};

/// Where the run of the function invoked as `invoked` (its ARN) starts, for `shard`, and the
/// report's cursor so far. None: start from the rotation.
pub(super) async fn load<C: CursorStore>(
    store: &C,
    invoked: &str,
    shard: Option<Shard>,
) -> (Option<Position>, CursorReport) {
    let mut report = CursorReport {
        key: cursor_key(shard),
        ..CursorReport::default()
    };
    let Some(function) = function_arn(invoked) else {
        let why = format!("{invoked:?} is not a Lambda function ARN; the cursor is not kept");
        return (None, failed(report, why));
    };
    match store.load(function, &report.key).await {
        Ok(None) => (None, report),
        Ok(Some(value)) => match Position::from_tag_value(&value) {
            Some(position) => {
                report.started_at = Some(value);
                (Some(position), report)
            }
            None => {
                let why = format!("tag {}={value:?} is not <region>:<name>", report.key);
                (None, failed(report, why))
            }
        },
        Err(e) => (None, failed(report, format!("reading the cursor: {e}"))),
    }
}

/// Saves where the next run starts ([`RunReport::resume_at`]) when this run deletes and left
/// something unfinished. A run that finished saves nothing: the next one starts where this
/// one did. Dry runs and safety stops save nothing: they deleted nothing, so the next run
/// must cover the same repositories.
pub(super) async fn save<C: CursorStore>(
    store: &C,
    invoked: &str,
    deletes: bool,
    report: &mut RunReport,
) {
    let (Some(cursor), Some(next), Some(function)) = (
        report.cursor.as_mut(),
        report.resume_at.as_ref(),
        function_arn(invoked),
    ) else {
        return;
    };
    if !deletes {
        return;
    }
    let value = next.to_tag_value();
    match store.save(function, &cursor.key, &value).await {
        Ok(()) => cursor.next = Some(value),
        Err(e) => {
            let why = format!("saving the cursor {value:?}: {e}");
            tracing::warn!(error = %why, "cursor not saved; the next run starts from the rotation or the last saved cursor");
            cursor.error = Some(match cursor.error.take() {
                Some(earlier) => format!("{earlier}; {why}"),
                None => why,
            });
        }
    }
}

/// The report with `why` as its error, logged.
fn failed(mut report: CursorReport, why: String) -> CursorReport {
    tracing::warn!(error = %why, "no cursor; this run starts from the stateless rotation");
    report.error = Some(format!("{why}; started from the rotation"));
    report
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use tokio::time::Instant;

    use crate::report::RunReport;
    use crate::run::Overrides;
    use crate::testing::{images, janitor, FakeCompute, FakeCursor, FakeRegistry, Vars};

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:janitor";
    const KEY: &str = "ecr-janitor:cursor";
    /// How long listing one repository takes (tokio's paused time).
    const LISTING: Duration = Duration::from_secs(10);

    type Fake = crate::run::Janitor<
        FakeRegistry,
        FakeCompute,
        FakeCompute,
        crate::testing::FakeEvents,
        FakeCursor,
    >;

    /// `names`, each with `expired` images a default sweep expires, each listing `LISTING`.
    fn registry(names: &[String], expired: usize) -> FakeRegistry {
        FakeRegistry {
            images: names
                .iter()
                .map(|n| (n.clone(), images(n, expired, 30, None)))
                .collect(),
            delay: LISTING,
            ..FakeRegistry::default()
        }
    }

    /// Repositories `r0`, `r1`, … each with one image a default sweep expires.
    fn numbered(count: usize) -> FakeRegistry {
        let names: Vec<String> = (0..count).map(|i| format!("r{i}")).collect();
        registry(&names, 1)
    }

    /// The run read the cursor once and wrote nothing.
    fn assert_read_only(janitor: &Fake) {
        assert_eq!(
            janitor.cursor.calls(),
            [format!("load {ARN} {KEY}")],
            "no write"
        );
    }

    fn live(vars: Vars, registry: FakeRegistry) -> Fake {
        let vars = [&[("DRY_RUN", "false")][..], vars].concat();
        janitor(&vars, registry, FakeCompute::default())
    }

    /// One invocation as `invoked`, with time for `waves` listings in a row before the stop.
    async fn invoke(
        janitor: &Fake,
        invoked: &str,
        waves: u32,
        event: serde_json::Value,
    ) -> RunReport {
        let options = janitor
            .options(Overrides::from_event(&event).expect("overrides"))
            .expect("valid");
        let stop = (waves > 0).then(|| Instant::now() + LISTING * waves);
        janitor
            .run(options, stop, Some(invoked))
            .await
            .expect("runs")
    }

    fn visited(report: &RunReport) -> Vec<String> {
        report.repositories.iter().map(|r| r.name.clone()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_deadline_for_k_repositories_ceil_n_over_k_runs_visit_all_n() {
        // (n repositories, listings in a row before the deadline, MAX_CONCURRENCY): a run
        // visits k = waves × concurrency repositories.
        let cases = [
            (10, 1, 3),
            (10, 2, 2),
            (7, 1, 1),
            (12, 3, 4),
            (5, 1, 8),
            (9, 3, 3),
            (64, 2, 5),
        ];
        for (n, waves, concurrency) in cases {
            let names: Vec<String> = (0..n).map(|i| format!("svc-{i:03}")).collect();
            let concurrency_var = concurrency.to_string();
            let janitor = live(
                &[("MAX_CONCURRENCY", concurrency_var.as_str())],
                registry(&names, 1),
            );
            let k = waves as usize * concurrency;
            let mut seen = BTreeSet::new();
            let mut runs = 0;
            while seen.len() < n && runs < 3 * n {
                let report = invoke(&janitor, ARN, waves, serde_json::Value::Null).await;
                assert_eq!(
                    report.repositories.len(),
                    k.min(n),
                    "{n}/{waves}/{concurrency}: k per run"
                );
                seen.extend(visited(&report));
                runs += 1;
            }
            let all: BTreeSet<String> = names.iter().cloned().collect();
            assert_eq!(
                seen, all,
                "{n}/{waves}/{concurrency}: every repository visited"
            );
            assert_eq!(runs, n.div_ceil(k), "{n}/{waves}/{concurrency}: ⌈n/k⌉ runs");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_run_starts_at_the_repository_the_deletion_brake_deferred() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let vars = [("MAX_DELETIONS_PER_RUN", "6"), ("MAX_CONCURRENCY", "1")];
        let janitor = live(&vars, registry(&names, 4));
        janitor
            .cursor
            .tags
            .lock()
            .expect("lock")
            .push(((ARN.into(), KEY.into()), "us-east-1:a".into()));
        let cursor = |r: &RunReport| {
            let c = r.cursor.as_ref().expect("a cursor report");
            let deleted: Vec<u64> = r.repositories.iter().map(|r| r.deleted).collect();
            (c.started_at.clone(), c.next.clone(), deleted, r.complete)
        };
        let at = |name: &str| Some(format!("us-east-1:{name}"));

        // From a: a 4, b 2 of 4 (2 deferred), c and d all deferred.
        let first = invoke(&janitor, ARN, 0, serde_json::Value::Null).await;
        assert_eq!(cursor(&first), (at("a"), at("b"), vec![4, 2, 0, 0], false));
        // From b: b its last 2, c 4, d all deferred.
        let second = invoke(&janitor, ARN, 0, serde_json::Value::Null).await;
        assert_eq!(cursor(&second), (at("b"), at("d"), vec![0, 2, 4, 0], false));
        // From d: d 4; the run is complete and leaves the cursor where it started.
        let third = invoke(&janitor, ARN, 0, serde_json::Value::Null).await;
        assert_eq!(cursor(&third), (at("d"), None, vec![0, 0, 0, 4], true));
        assert_eq!(janitor.cursor.value(ARN, KEY), at("d"));
        assert_eq!(janitor.regions[0].services.registry.deleted().len(), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cursor_that_cannot_be_read_or_saved_never_fails_the_run_or_its_deletions() {
        let mut janitor = live(&[("MAX_CONCURRENCY", "1")], numbered(4));
        janitor.cursor.load_denied = true;
        janitor.cursor.save_denied = true;
        let report = invoke(&janitor, ARN, 2, serde_json::Value::Null).await;
        assert_eq!((report.totals.deleted, report.not_visited.len()), (2, 2));
        let cursor = report.cursor.expect("reported");
        let error = cursor.error.expect("an error");
        assert!(
            error.contains("ListTags") && error.contains("TagResource"),
            "{error}"
        );
        assert_eq!((cursor.started_at, cursor.next), (None, None));
        assert_eq!(
            janitor.cursor.calls().len(),
            2,
            "one read, one write attempt"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn dry_runs_read_the_cursor_and_never_move_it() {
        let janitor = live(&[("MAX_CONCURRENCY", "1")], numbered(4));
        janitor
            .cursor
            .tags
            .lock()
            .expect("lock")
            .push(((ARN.into(), KEY.into()), "us-east-1:r2".into()));
        let report = invoke(&janitor, ARN, 1, serde_json::json!({"dryRun": true})).await;
        assert_eq!(visited(&report), ["r2"], "started at the cursor");
        assert!(!report.complete);
        let cursor = report.cursor.expect("reported");
        assert_eq!(
            (cursor.started_at.as_deref(), cursor.next),
            (Some("us-east-1:r2"), None)
        );
        assert_read_only(&janitor);
    }

    #[tokio::test(start_paused = true)]
    async fn a_qualified_arn_keeps_the_functions_cursor_and_each_shard_its_own() {
        let janitor = live(&[("MAX_CONCURRENCY", "1")], numbered(4));
        let shard = serde_json::json!({"shard": {"index": 0, "count": 1}});
        let report = invoke(&janitor, &format!("{ARN}:live"), 1, shard).await;
        let next = report.cursor.and_then(|c| c.next).expect("saved");
        assert_eq!(
            janitor.cursor.value(ARN, "ecr-janitor:cursor:0/1"),
            Some(next)
        );
        assert_eq!(
            janitor.cursor.value(ARN, KEY),
            None,
            "the unsharded cursor is untouched"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_safety_stop_reads_the_cursor_and_never_moves_it() {
        let denied = FakeCompute {
            denied: true,
            ..FakeCompute::default()
        };
        let janitor = janitor(
            &[("DRY_RUN", "false"), ("MAX_CONCURRENCY", "1")],
            numbered(4),
            denied,
        );
        let report = invoke(&janitor, ARN, 1, serde_json::Value::Null).await;
        assert!(report.safety_stop.is_some() && !report.complete);
        assert_eq!(report.cursor.and_then(|c| c.next), None);
        assert_read_only(&janitor);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_function_arn_the_run_starts_from_the_rotation_and_says_why() {
        let janitor = live(&[], numbered(3));
        let report = invoke(&janitor, "function-arn", 0, serde_json::Value::Null).await;
        assert_eq!(report.totals.deleted, 3);
        let error = report.cursor.and_then(|c| c.error).expect("an error");
        assert!(error.contains("not a Lambda function ARN"), "{error}");
        assert!(janitor.cursor.calls().is_empty());
    }
}
