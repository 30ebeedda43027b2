//! One run over the registry: repositories with bounded concurrency, under a deadline.
//!
//! For each repository: ask [`crate::decide`] whether and how to sweep it (reading its tags
//! when tag overrides are on), list its images, plan, and delete the expired ones in batches
//! when the run deletes. An error in one repository is reported for that repository; the
//! others still run. When the deadline nears, no new repository is started and the report
//! says which were not visited.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tokio::time::Instant;

use super::RunOptions;
use crate::aws::ecr::{Registry, BATCH_DELETE_LIMIT};
use crate::aws::AwsError;
use crate::config::Settings;
use crate::decide::plan::{plan, Decision};
use crate::decide::scope::{self, Policies, Verdict};
use crate::model::Repository;
use crate::report::{
    ExpiredImage, KeptImage, Outcome, RepositoryError, RepositoryReport, RunReport,
};

/// ECR's failure code for an image that is no longer there.
const IMAGE_NOT_FOUND: &str = "ImageNotFound";

enum Visit {
    Swept(RepositoryReport),
    NotVisited(String),
}

/// Runs one sweep. `now` is the run's start time (used for ages and the report);
/// `stop_starting_at` is when to stop starting repositories (None: no deadline).
/// Fails only when the repositories cannot be listed.
pub(super) async fn run<R: Registry>(
    registry: &R,
    settings: &Settings,
    options: &RunOptions,
    now: DateTime<Utc>,
    stop_starting_at: Option<Instant>,
) -> Result<RunReport, AwsError> {
    let clock = Instant::now();
    let selected = scope::select(
        registry.repositories().await?,
        &settings.repositories,
        options.repositories(),
    );
    let visits: Vec<Visit> = stream::iter(selected.repositories)
        .map(|repo| async move {
            if stop_starting_at.is_some_and(|t| Instant::now() >= t) {
                return Visit::NotVisited(repo.name);
            }
            let report = sweep_repository(registry, settings, options, &repo, now).await;
            log_repository(&report);
            Visit::Swept(report)
        })
        .buffer_unordered(settings.max_concurrency)
        .collect()
        .await;

    let mut swept = Vec::new();
    let mut not_visited = Vec::new();
    for visit in visits {
        match visit {
            Visit::Swept(r) => swept.push(r),
            Visit::NotVisited(name) => not_visited.push(name),
        }
    }
    let elapsed = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(RunReport::new(
        !options.deletes(),
        now,
        elapsed,
        swept,
        not_visited,
        selected.requested_not_found,
    ))
}

fn log_repository(report: &RepositoryReport) {
    let (skipped, error) = match &report.outcome {
        Outcome::Swept => (None, None),
        Outcome::Skipped(reason) => (Some(reason.to_string()), None),
        Outcome::Failed(e) => (None, Some(e.to_string())),
    };
    tracing::info!(
        repository = %report.name,
        scanned = report.images_scanned,
        expired = report.expired.len(),
        deleted = report.deleted,
        failures = report.failures.len(),
        skipped,
        error,
        "repository swept"
    );
}

/// The repository's verdict, reading its tags only when tag overrides are on.
async fn verdict<'p, R: Registry>(
    registry: &R,
    policies: &'p Policies,
    repo: &Repository,
) -> Result<Verdict<'p>, AwsError> {
    if !policies.tag_overrides {
        return Ok(policies.verdict(&[]));
    }
    let tags = registry.repository_tags(&repo.arn).await?;
    Ok(policies.verdict(&tags))
}

async fn sweep_repository<R: Registry>(
    registry: &R,
    settings: &Settings,
    options: &RunOptions,
    repo: &Repository,
    now: DateTime<Utc>,
) -> RepositoryReport {
    let mut report = RepositoryReport::new(&repo.name);
    let (policy, listing) = match verdict(registry, &settings.policies, repo).await {
        Ok(Verdict::Sweep { policy, listing }) => (policy, listing),
        Ok(Verdict::Skip(reason)) => {
            report.outcome = Outcome::Skipped(reason);
            return report;
        }
        Ok(Verdict::Refuse(refusal)) => {
            report.outcome = Outcome::Failed(RepositoryError::Refused(refusal));
            return report;
        }
        Err(e) => {
            report.outcome = Outcome::Failed(e.into());
            return report;
        }
    };
    let images = match registry.images(&repo.name, listing).await {
        Ok(images) => images,
        Err(e) => {
            report.outcome = Outcome::Failed(e.into());
            return report;
        }
    };
    report.images_scanned = images.len() as u64;
    report.untagged_scanned = images.iter().filter(|i| i.tags.is_empty()).count() as u64;

    let plan = plan(images, policy, now);
    report.expired = plan.expired.iter().map(ExpiredImage::from).collect();
    report.bytes_expired = plan.expired.iter().filter_map(|d| d.image.size_bytes).sum();
    if options.deletes() {
        delete(registry, &repo.name, &plan.expired, &mut report).await;
    } else {
        report.kept = Some(plan.kept.iter().map(KeptImage::from).collect());
    }
    report
}

/// Deletes the expired images in batches of [`BATCH_DELETE_LIMIT`], counting what ECR says
/// it deleted. A failed call stops the repository and is its error.
async fn delete<R: Registry>(
    registry: &R,
    repository: &str,
    expired: &[Decision],
    report: &mut RepositoryReport,
) {
    let sizes: HashMap<&str, i64> = expired
        .iter()
        .map(|d| (d.image.digest.as_str(), d.image.size_bytes.unwrap_or(0)))
        .collect();
    for batch in expired.chunks(BATCH_DELETE_LIMIT) {
        let digests: Vec<String> = batch.iter().map(|d| d.image.digest.clone()).collect();
        let outcome = match registry.delete_images(repository, &digests).await {
            Ok(outcome) => outcome,
            Err(e) => {
                report.outcome = Outcome::Failed(e.into());
                return;
            }
        };
        report.deleted += outcome.deleted.len() as u64;
        report.bytes_freed += outcome
            .deleted
            .iter()
            .filter_map(|d| sizes.get(d.as_str()))
            .sum::<i64>();
        for failure in outcome.failures {
            if failure.failure_code == IMAGE_NOT_FOUND {
                report.already_gone += 1;
            } else {
                report.failures.push(failure);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::decide::scope::{POLICY_TAG, SKIP_TAG};
    use crate::run::Overrides;
    use crate::testing::{config, images, now, FakeRegistry as Fake, Vars};

    fn settings(vars: Vars) -> Settings {
        config(vars).sweep
    }

    fn live() -> RunOptions {
        RunOptions::resolve(false, Overrides::default()).expect("valid")
    }

    #[tokio::test]
    async fn deletes_expired_untagged_in_batches_and_keeps_the_rest() {
        let mut web = images("old", 150, 30, None);
        web.extend(images("new", 3, 1, None));
        web.extend(images("tagged", 2, 90, Some("v")));
        let fake = Fake {
            images: vec![("web".into(), web)],
            ..Fake::default()
        };
        let report = run(&fake, &settings(&[]), &live(), now(), None)
            .await
            .expect("runs");

        assert_eq!(
            fake.calls("images"),
            ["images web Untagged"],
            "server-side untagged filter"
        );
        assert_eq!(fake.calls("delete"), ["delete web 100", "delete web 50"]);
        let deleted = fake.deleted();
        assert_eq!(deleted.len(), 150);
        assert!(deleted.iter().all(|d| d.starts_with("sha256:old")));
        let r = &report.repositories[0];
        assert_eq!(
            (r.images_scanned, r.untagged_scanned, r.deleted),
            (153, 153, 150)
        );
        assert_eq!(r.bytes_freed, 150_000);
        assert_eq!(report.totals.deleted, 150);
        assert!(report.complete);
        assert!(r.kept.is_none(), "kept images are listed in dry runs only");
    }

    #[tokio::test]
    async fn dry_run_deletes_nothing_and_explains_every_image() {
        let mut web = images("old", 2, 30, None);
        web.extend(images("new", 1, 1, None));
        let fake = Fake {
            images: vec![("web".into(), web)],
            ..Fake::default()
        };
        let options = RunOptions::resolve(true, Overrides::default()).expect("valid");
        let report = run(&fake, &settings(&[]), &options, now(), None)
            .await
            .expect("runs");
        assert!(fake.calls("delete").is_empty());
        let r = &report.repositories[0];
        assert_eq!((r.expired.len(), r.deleted), (2, 0));
        assert_eq!(r.kept.as_ref().map(Vec::len), Some(1));
        assert!(report.dry_run);
        assert_eq!(report.totals.bytes_expired, 2000);
    }

    #[tokio::test]
    async fn per_image_failures_are_data_and_not_found_is_already_gone() {
        let fake = Fake {
            images: vec![("web".into(), images("old", 3, 30, None))],
            delete_failures: vec![
                ("sha256:old0000".into(), "ImageNotFound".into()),
                (
                    "sha256:old0001".into(),
                    "ImageReferencedByManifestList".into(),
                ),
            ],
            ..Fake::default()
        };
        let report = run(&fake, &settings(&[]), &live(), now(), None)
            .await
            .expect("runs");
        let r = &report.repositories[0];
        assert_eq!((r.deleted, r.already_gone), (1, 1));
        assert_eq!(r.failures.len(), 1);
        assert_eq!(r.failures[0].failure_code, "ImageReferencedByManifestList");
        assert_eq!(r.bytes_freed, 1000);
        assert_eq!(report.totals.failed, 1);
    }

    #[tokio::test]
    async fn an_error_in_one_repository_does_not_stop_the_others() {
        let fake = Fake {
            images: vec![
                ("a".into(), images("a", 1, 30, None)),
                ("b".into(), images("b", 1, 30, None)),
                ("c".into(), images("c", 1, 30, None)),
            ],
            broken: HashSet::from(["b".to_owned()]),
            ..Fake::default()
        };
        let report = run(&fake, &settings(&[]), &live(), now(), None)
            .await
            .expect("runs");
        let names: Vec<_> = report
            .repositories
            .iter()
            .map(|r| (r.name.as_str(), r.deleted, r.failed()))
            .collect();
        assert_eq!(names, [("a", 1, false), ("b", 0, true), ("c", 1, false)]);
        assert_eq!(report.totals.repository_errors, 1);
        assert!(report.complete);
    }

    #[tokio::test]
    async fn include_exclude_and_requested_repositories() {
        let fake = Fake {
            images: ["team/a", "team/b", "team/c", "other"]
                .iter()
                .map(|n| (n.to_string(), images("x", 1, 30, None)))
                .collect(),
            ..Fake::default()
        };
        let cfg = settings(&[
            ("INCLUDE_REPOSITORIES", "team/*"),
            ("EXCLUDE_REPOSITORIES", "team/c"),
        ]);
        let report = run(&fake, &cfg, &live(), now(), None).await.expect("runs");
        let swept: Vec<_> = report
            .repositories
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(swept, ["team/a", "team/b"]);

        let narrow = serde_json::json!({"repositories": ["team/b", "team/c", "nope"]});
        let only = RunOptions::resolve(false, Overrides::from_event(&narrow).expect("valid"))
            .expect("valid");
        let report = run(&fake, &cfg, &only, now(), None).await.expect("runs");
        let swept: Vec<_> = report
            .repositories
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(swept, ["team/b"]);
        assert_eq!(report.requested_not_found, ["nope", "team/c"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_new_repositories_and_lets_in_flight_ones_finish() {
        let fake = Fake {
            images: ["a", "b", "c", "d"]
                .iter()
                .map(|n| (n.to_string(), images(n, 1, 30, None)))
                .collect(),
            delay: Duration::from_secs(10),
            ..Fake::default()
        };
        let cfg = settings(&[("MAX_CONCURRENCY", "1")]);
        let stop = Instant::now() + Duration::from_secs(15);
        let report = run(&fake, &cfg, &live(), now(), Some(stop))
            .await
            .expect("runs");
        let swept: Vec<_> = report
            .repositories
            .iter()
            .map(|r| (r.name.as_str(), r.deleted))
            .collect();
        assert_eq!(
            swept,
            [("a", 1), ("b", 1)],
            "b started before the stop time and finished"
        );
        assert_eq!(report.not_visited, ["c", "d"]);
        assert!(!report.complete);
    }

    const RELEASES: &str = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["v"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#;

    #[tokio::test]
    async fn repository_tags_skip_or_pick_a_named_policy() {
        let fake = Fake {
            images: ["plain", "skipped", "strict", "typo"]
                .iter()
                .map(|n| {
                    (
                        n.to_string(),
                        [images(n, 1, 30, None), images(n, 3, 30, Some("v"))].concat(),
                    )
                })
                .collect(),
            tags: vec![
                ("skipped".into(), vec![(SKIP_TAG.into(), "true".into())]),
                (
                    "strict".into(),
                    vec![
                        (POLICY_TAG.into(), "releases".into()),
                        (SKIP_TAG.into(), "false".into()),
                    ],
                ),
                ("typo".into(), vec![(POLICY_TAG.into(), "relaeses".into())]),
            ],
            ..Fake::default()
        };
        let policies = format!(r#"{{"releases": {RELEASES}}}"#);
        let cfg = settings(&[
            ("REPOSITORY_TAG_OVERRIDES", "true"),
            ("LIFECYCLE_POLICIES", &policies),
        ]);
        let report = run(&fake, &cfg, &live(), now(), None).await.expect("runs");
        let by_name = |n: &str| {
            report
                .repositories
                .iter()
                .find(|r| r.name == n)
                .expect("present")
        };
        assert_eq!(
            by_name("plain").deleted,
            1,
            "default policy: the untagged image"
        );
        assert_eq!(
            by_name("skipped").outcome,
            Outcome::Skipped(crate::decide::scope::SkipReason::SkipTag {
                value: "true".into()
            })
        );
        assert_eq!(by_name("skipped").deleted, 0);
        assert_eq!(
            by_name("strict").deleted,
            2,
            "releases policy keeps one v* image"
        );
        assert_eq!(by_name("strict").untagged_scanned, 1);
        match &by_name("typo").outcome {
            Outcome::Failed(e) => {
                assert_eq!(e.code(), "UnknownPolicy");
                assert!(e.to_string().contains("relaeses"), "{e}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(by_name("typo").deleted, 0);
        assert!(fake.calls("images skipped").is_empty() && fake.calls("images typo").is_empty());

        let quiet = Fake {
            images: vec![("plain".into(), images("p", 1, 30, None))],
            ..Fake::default()
        };
        run(&quiet, &settings(&[]), &live(), now(), None)
            .await
            .expect("runs");
        assert!(
            quiet.calls("tags").is_empty(),
            "tags are only read when overrides are enabled"
        );
    }
}
