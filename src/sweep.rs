//! One run over the registry: repositories with bounded concurrency, under a deadline.
//!
//! For each repository: pick its policy (repository tags may skip it or name another
//! policy), list its images, plan, and delete the expired ones in batches. An error in one
//! repository is reported for that repository; the others still run. When the deadline
//! nears, no new repository is started and the report says which were not visited.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tokio::time::Instant;

use crate::config::{parse_bool, Config};
use crate::plan::plan;
use crate::policy::Policy;
use crate::registry::{ImageScope, Registry, RegistryError, Repository, BATCH_DELETE_LIMIT};
use crate::report::{ExpiredImage, FailureEntry, KeptImage, RepositoryReport, RunReport};

/// Repository tag that makes the janitor leave a repository alone (`true`).
pub const SKIP_TAG: &str = "ecr-janitor:skip";
/// Repository tag that picks a named policy from `LIFECYCLE_POLICIES`.
pub const POLICY_TAG: &str = "ecr-janitor:policy";
/// ECR's failure code for an image that is no longer there.
const IMAGE_NOT_FOUND: &str = "ImageNotFound";

/// What one invocation asks for, on top of the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Delete nothing.
    pub dry_run: bool,
    /// Sweep only these repositories (still subject to include/exclude).
    pub repositories: Option<BTreeSet<String>>,
}

enum Visit {
    Swept(RepositoryReport),
    NotVisited(String),
}

/// Runs one sweep. `now` is the run's start time (used for ages and the report);
/// `stop_starting_at` is when to stop starting repositories (None: no deadline).
/// Fails only when the repositories cannot be listed.
pub async fn run<R: Registry>(
    registry: &R,
    config: &Config,
    options: &RunOptions,
    now: DateTime<Utc>,
    stop_starting_at: Option<Instant>,
) -> Result<RunReport, RegistryError> {
    let clock = Instant::now();
    let mut repositories: Vec<Repository> = registry
        .repositories()
        .await?
        .into_iter()
        .filter(|r| config.repositories.matches(&r.name))
        .collect();
    let mut requested_not_found = Vec::new();
    if let Some(wanted) = &options.repositories {
        repositories.retain(|r| wanted.contains(&r.name));
        let found: BTreeSet<&str> = repositories.iter().map(|r| r.name.as_str()).collect();
        requested_not_found = wanted
            .iter()
            .filter(|w| !found.contains(w.as_str()))
            .cloned()
            .collect();
    }
    repositories.sort_by(|a, b| a.name.cmp(&b.name));

    let visits: Vec<Visit> = stream::iter(repositories)
        .map(|repo| async move {
            if stop_starting_at.is_some_and(|t| Instant::now() >= t) {
                return Visit::NotVisited(repo.name);
            }
            let report = sweep_repository(registry, config, options.dry_run, &repo, now).await;
            tracing::info!(
                repository = %report.name,
                scanned = report.images_scanned,
                expired = report.expired.len(),
                deleted = report.deleted,
                failures = report.failures.len(),
                skipped = report.skipped.as_deref(),
                error = report.error.as_deref(),
                "repository swept"
            );
            Visit::Swept(report)
        })
        .buffer_unordered(config.max_concurrency)
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
        options.dry_run,
        now,
        elapsed,
        swept,
        not_visited,
        requested_not_found,
    ))
}

/// The policy for a repository, or why it is skipped (`Ok(Err(reason))`).
async fn choose_policy<'c, R: Registry>(
    registry: &R,
    config: &'c Config,
    repo: &Repository,
) -> Result<Result<&'c Policy, String>, String> {
    if !config.repository_tag_overrides {
        return Ok(Ok(&config.policy));
    }
    let tags = registry
        .repository_tags(&repo.arn)
        .await
        .map_err(|e| e.to_string())?;
    let tag = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if let Some(value) = tag(SKIP_TAG) {
        match parse_bool(value) {
            Some(true) => return Ok(Err(format!("repository tag {SKIP_TAG}={value}"))),
            Some(false) => {}
            None => {
                return Err(format!(
                    "repository tag {SKIP_TAG}={value:?} is not true or false; nothing deleted"
                ))
            }
        }
    }
    match tag(POLICY_TAG) {
        None => Ok(Ok(&config.policy)),
        Some(name) => config.named_policies.get(name).map(Ok).ok_or_else(|| {
            let known: Vec<&str> = config.named_policies.keys().map(String::as_str).collect();
            format!(
                "repository tag {POLICY_TAG}={name:?} names no policy in LIFECYCLE_POLICIES \
                 (known: {known:?}); nothing deleted"
            )
        }),
    }
}

async fn sweep_repository<R: Registry>(
    registry: &R,
    config: &Config,
    dry_run: bool,
    repo: &Repository,
    now: DateTime<Utc>,
) -> RepositoryReport {
    let mut report = RepositoryReport {
        name: repo.name.clone(),
        ..RepositoryReport::default()
    };
    let policy = match choose_policy(registry, config, repo).await {
        Ok(Ok(policy)) => policy,
        Ok(Err(reason)) => {
            report.skipped = Some(reason);
            return report;
        }
        Err(error) => {
            report.error = Some(error);
            return report;
        }
    };
    let scope = if policy.selects_tagged() {
        ImageScope::All
    } else {
        ImageScope::Untagged
    };
    let images = match registry.images(&repo.name, scope).await {
        Ok(images) => images,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    report.images_scanned = images.len() as u64;
    report.untagged_scanned = images.iter().filter(|i| i.tags.is_empty()).count() as u64;

    let plan = plan(images, policy, now);
    report.expired = plan.expired.iter().map(ExpiredImage::from).collect();
    report.bytes_expired = plan.expired.iter().filter_map(|d| d.image.size_bytes).sum();
    if dry_run {
        report.kept = Some(plan.kept.iter().map(KeptImage::from).collect());
        return report;
    }

    let sizes: HashMap<&str, i64> = plan
        .expired
        .iter()
        .map(|d| (d.image.digest.as_str(), d.image.size_bytes.unwrap_or(0)))
        .collect();
    let digests: Vec<String> = plan
        .expired
        .iter()
        .map(|d| d.image.digest.clone())
        .collect();
    for batch in digests.chunks(BATCH_DELETE_LIMIT) {
        let outcome = match registry.delete_images(&repo.name, batch).await {
            Ok(outcome) => outcome,
            Err(e) => {
                report.error = Some(e.to_string());
                break;
            }
        };
        report.deleted += outcome.deleted.len() as u64;
        report.bytes_freed += outcome
            .deleted
            .iter()
            .filter_map(|d| sizes.get(d.as_str()))
            .sum::<i64>();
        for f in outcome.failures {
            if f.code == IMAGE_NOT_FOUND {
                report.already_gone += 1;
            } else {
                report.failures.push(FailureEntry {
                    image_digest: f.digest,
                    failure_code: f.code,
                    failure_reason: f.reason,
                });
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::time::Duration;

    use chrono::TimeZone;

    use super::*;
    use crate::plan::Image;
    use crate::registry::{DeleteFailure, DeleteOutcome};

    /// An in-memory registry that records its calls.
    #[derive(Default)]
    struct Fake {
        images: Vec<(String, Vec<Image>)>,
        tags: Vec<(String, Vec<(String, String)>)>,
        broken: HashSet<String>,
        delete_failures: Vec<(String, String)>,
        delay: Duration,
        calls: Mutex<Vec<String>>,
        deleted: Mutex<Vec<String>>,
    }

    impl Fake {
        fn log(&self, call: String) {
            self.calls.lock().expect("lock").push(call);
        }
        fn calls(&self, prefix: &str) -> Vec<String> {
            let calls = self.calls.lock().expect("lock");
            calls
                .iter()
                .filter(|c| c.starts_with(prefix))
                .cloned()
                .collect()
        }
    }

    impl Registry for Fake {
        async fn repositories(&self) -> Result<Vec<Repository>, RegistryError> {
            Ok(self
                .images
                .iter()
                .map(|(name, _)| Repository {
                    name: name.clone(),
                    arn: format!("arn:{name}"),
                })
                .collect())
        }
        async fn images(&self, repo: &str, scope: ImageScope) -> Result<Vec<Image>, RegistryError> {
            self.log(format!("images {repo} {scope:?}"));
            tokio::time::sleep(self.delay).await;
            if self.broken.contains(repo) {
                return Err(RegistryError {
                    operation: "DescribeImages",
                    code: Some("AccessDeniedException".into()),
                    message: "denied".into(),
                });
            }
            let all = self
                .images
                .iter()
                .find(|(n, _)| n == repo)
                .map(|(_, i)| i.clone());
            Ok(all
                .unwrap_or_default()
                .into_iter()
                .filter(|i| scope == ImageScope::All || i.tags.is_empty())
                .collect())
        }
        async fn repository_tags(&self, arn: &str) -> Result<Vec<(String, String)>, RegistryError> {
            self.log(format!("tags {arn}"));
            let name = arn.trim_start_matches("arn:");
            Ok(self
                .tags
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.clone())
                .unwrap_or_default())
        }
        async fn delete_images(
            &self,
            repo: &str,
            digests: &[String],
        ) -> Result<DeleteOutcome, RegistryError> {
            self.log(format!("delete {repo} {}", digests.len()));
            assert!(digests.len() <= BATCH_DELETE_LIMIT);
            let mut outcome = DeleteOutcome::default();
            for d in digests {
                match self.delete_failures.iter().find(|(f, _)| f == d) {
                    Some((_, code)) => outcome.failures.push(DeleteFailure {
                        digest: d.clone(),
                        code: code.clone(),
                        reason: "fake".into(),
                    }),
                    None => outcome.deleted.push(d.clone()),
                }
            }
            self.deleted
                .lock()
                .expect("lock")
                .extend(outcome.deleted.clone());
            Ok(outcome)
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
            .single()
            .expect("valid time")
    }

    /// `n` images `days_old` days old, untagged unless `tag` is given.
    fn images(prefix: &str, n: usize, days_old: i64, tag: Option<&str>) -> Vec<Image> {
        (0..n)
            .map(|i| Image {
                digest: format!("sha256:{prefix}{i:04}"),
                tags: tag.map(|t| vec![format!("{t}{i}")]).unwrap_or_default(),
                pushed_at: now()
                    - chrono::Duration::days(days_old)
                    - chrono::Duration::seconds(i as i64),
                size_bytes: Some(1000),
            })
            .collect()
    }

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
            .expect("valid config")
    }

    fn live() -> RunOptions {
        RunOptions {
            dry_run: false,
            repositories: None,
        }
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
        let report = run(&fake, &config(&[]), &live(), now(), None)
            .await
            .expect("runs");

        assert_eq!(
            fake.calls("images"),
            ["images web Untagged"],
            "server-side untagged filter"
        );
        assert_eq!(fake.calls("delete"), ["delete web 100", "delete web 50"]);
        let deleted = fake.deleted.lock().expect("lock").clone();
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
        let options = RunOptions {
            dry_run: true,
            repositories: None,
        };
        let report = run(&fake, &config(&[]), &options, now(), None)
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
        let report = run(&fake, &config(&[]), &live(), now(), None)
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
        let report = run(&fake, &config(&[]), &live(), now(), None)
            .await
            .expect("runs");
        let names: Vec<_> = report
            .repositories
            .iter()
            .map(|r| (r.name.as_str(), r.deleted, r.error.is_some()))
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
        let cfg = config(&[
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

        let only = RunOptions {
            dry_run: false,
            repositories: Some(
                ["team/b", "team/c", "nope"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
        };
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
        let cfg = config(&[("MAX_CONCURRENCY", "1")]);
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
        let cfg = config(&[
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
        assert!(by_name("skipped").skipped.is_some());
        assert_eq!(by_name("skipped").deleted, 0);
        assert_eq!(
            by_name("strict").deleted,
            2,
            "releases policy keeps one v* image"
        );
        assert_eq!(by_name("strict").untagged_scanned, 1);
        assert!(by_name("typo")
            .error
            .as_deref()
            .is_some_and(|e| e.contains("relaeses")));
        assert_eq!(by_name("typo").deleted, 0);
        assert!(fake.calls("images skipped").is_empty() && fake.calls("images typo").is_empty());

        let quiet = Fake {
            images: vec![("plain".into(), images("p", 1, 30, None))],
            ..Fake::default()
        };
        run(&quiet, &config(&[]), &live(), now(), None)
            .await
            .expect("runs");
        assert!(
            quiet.calls("tags").is_empty(),
            "tags are only read when overrides are enabled"
        );
    }
}
