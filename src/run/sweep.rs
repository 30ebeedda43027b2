//! One run over the registry: repositories with bounded concurrency, under a deadline.
//!
//! For each repository: ask [`crate::decide`] whether and how to sweep it (reading its tags
//! when tag overrides are on), list every image, read the image indexes' manifests, decide,
//! and delete the expired ones in waves of batches when the run deletes. An error in one repository is reported for that repository; the
//! others still run. When the deadline nears, no new repository is started and the report
//! says which were not visited.

use std::collections::HashSet;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::bounded::Bounded;
use super::delete::delete;
use super::RunOptions;
use crate::aws::ecr::Registry;
use crate::aws::AwsError;
use crate::config::Settings;
use crate::decide::brakes::tagged_brake;
use crate::decide::decide;
use crate::decide::graph::{self, Manifests};
use crate::decide::plan::{Decided, Plan, Reason};
use crate::decide::policy::Policy;
use crate::decide::protect::{arn_location, InUse};
use crate::decide::scope::{self, Policies, Position, Verdict};
use crate::model::{Digest, Repository};
use crate::report::{
    BrakesReport, ExpiredImage, KeptImage, Outcome, RepositoryError, RepositoryReport, RunReport,
};

enum Visit {
    Swept(Box<RepositoryReport>),
    NotVisited(Position),
}

/// What the repositories of one run share: the in-use images and the deletion budget.
struct Shared<'a> {
    in_use: &'a InUse,
    /// Deletions `MAX_DELETIONS_PER_RUN` still allows; None when off.
    budget: Mutex<Option<u64>>,
}

impl Shared<'_> {
    /// Takes up to `wanted` deletions from the budget; returns how many may go ahead.
    fn take(&self, wanted: usize) -> usize {
        let mut budget = self
            .budget
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match budget.as_mut() {
            None => wanted,
            Some(left) => {
                let granted = (*left).min(wanted as u64);
                *left -= granted;
                granted as usize
            }
        }
    }
}

/// Runs one sweep. `now` is the run's start time (used for ages and the report);
/// `stop_starting_at` is when to stop starting repositories (None: no deadline); `cursor`
/// is where to start (None: the stateless rotation of `now`).
/// Fails only when the repositories cannot be listed.
pub(super) async fn run<R: Registry>(
    registries: &[(&str, &R)],
    settings: &Settings,
    options: &RunOptions,
    in_use: &InUse,
    now: DateTime<Utc>,
    stop_starting_at: Option<Instant>,
    cursor: Option<&Position>,
) -> Result<RunReport, AwsError> {
    let clock = Instant::now();
    // Every ECR call of the run takes one of these permits.
    let permits = Semaphore::new(settings.max_concurrency);
    let bounded: Vec<(&str, Bounded<R>)> = registries
        .iter()
        .map(|&(region, registry)| (region, Bounded::new(registry, &permits)))
        .collect();
    let bounded: Vec<(&str, &Bounded<R>)> = bounded.iter().map(|(r, b)| (*r, b)).collect();
    let mut repositories = in_scope(&bounded, settings, options).await?;
    let requested_not_found = scope::not_found(
        options.repositories(),
        repositories.iter().map(|(_, _, r)| r.name.as_str()),
    );
    let order = visiting_order(&mut repositories, cursor, now);
    let shared = Shared {
        in_use,
        budget: Mutex::new(settings.brakes.max_deletions_per_run),
    };
    let shared = &shared;
    let visits: Vec<Visit> = stream::iter(repositories)
        .map(|(region, registry, repo)| async move {
            if stop_starting_at.is_some_and(|t| Instant::now() >= t) {
                return Visit::NotVisited(Position::new(&repo.name, region));
            }
            let mut report =
                sweep_repository(registry, settings, options, shared, &repo, now).await;
            report.region = region.to_owned();
            log_repository(&report);
            Visit::Swept(Box::new(report))
        })
        .buffer_unordered(settings.max_concurrency)
        .collect()
        .await;
    let elapsed = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut report = build_report(
        visits,
        &order,
        registries.len() > 1,
        options.dry_run(),
        now,
        elapsed,
    );
    report.requested_not_found = requested_not_found;
    report.brakes = brakes_report(settings, &report);
    report.shard = options.shard();
    Ok(report)
}

/// Puts the repositories in the order the run starts them: by name, then region, from the
/// cursor (or the stateless rotation of `now`), wrapping around; returns that order.
fn visiting_order<R>(
    repositories: &mut [(&str, R, Repository)],
    cursor: Option<&Position>,
    now: DateTime<Utc>,
) -> Vec<Position> {
    repositories.sort_by(|a, b| (&a.2.name, a.0).cmp(&(&b.2.name, b.0)));
    match cursor {
        Some(cursor) => scope::start_from(repositories, cursor, |r| (&r.2.name, r.0)),
        None => scope::rotate(repositories, now),
    }
    repositories
        .iter()
        .map(|(region, _, r)| Position::new(&r.name, region))
        .collect()
}

/// Every region's repositories in the run's scope, with their region and registry.
async fn in_scope<'r, R: Registry>(
    registries: &[(&'r str, &'r R)],
    settings: &Settings,
    options: &RunOptions,
) -> Result<Vec<(&'r str, &'r R, Repository)>, AwsError> {
    let mut repositories = Vec::new();
    for &(region, registry) in registries {
        let in_scope = scope::select(
            registry.repositories().await?,
            &settings.repositories,
            options.repositories(),
            options.shard(),
        );
        repositories.extend(in_scope.into_iter().map(|r| (region, registry, r)));
    }
    Ok(repositories)
}

/// The run's report from its visits; `order` is the order the run started repositories in.
fn build_report(
    visits: Vec<Visit>,
    order: &[Position],
    several_regions: bool,
    dry_run: bool,
    now: DateTime<Utc>,
    elapsed: u64,
) -> RunReport {
    let mut swept = Vec::new();
    let mut not_visited = Vec::new();
    let mut unfinished = HashSet::new();
    for visit in visits {
        match visit {
            Visit::Swept(r) => {
                if !r.deferred.is_empty() {
                    unfinished.insert(Position::new(&r.name, &r.region));
                }
                swept.push(*r);
            }
            Visit::NotVisited(position) => {
                not_visited.push(match several_regions {
                    true => format!("{}@{}", position.name, position.region),
                    false => position.name.clone(),
                });
                unfinished.insert(position);
            }
        }
    }
    let mut report = RunReport::new(dry_run, now, elapsed, swept, not_visited, Vec::new());
    report.resume_at = scope::resume_at(order, &unfinished).cloned();
    report
}

fn brakes_report(settings: &Settings, report: &RunReport) -> BrakesReport {
    let tagged_tripped = report
        .repositories
        .iter()
        .filter(|r| matches!(&r.outcome, Outcome::Failed(RepositoryError::TaggedBrake(_))));
    BrakesReport {
        max_deletions_per_run: settings.brakes.max_deletions_per_run,
        max_deletions_per_run_tripped: report.totals.deferred > 0,
        max_tagged_delete_percent: settings.brakes.max_tagged_delete_percent,
        max_tagged_delete_percent_tripped: tagged_tripped.map(|r| r.name.clone()).collect(),
    }
}

fn log_repository(report: &RepositoryReport) {
    let (skipped, error) = match &report.outcome {
        Outcome::Swept => (None, None),
        Outcome::Skipped(reason) => (Some(reason.to_string()), None),
        Outcome::Failed(e) => (None, Some(e.to_string())),
    };
    tracing::info!(
        repository = %report.name,
        region = %report.region,
        scanned = report.images_scanned,
        expired = report.expired.len(),
        deleted = report.deleted,
        failures = report.failures.len(),
        held_back = report.held_back.len(),
        deferred = report.deferred.len(),
        protected_in_use = report.protected_in_use,
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
    shared: &Shared<'_>,
    repo: &Repository,
    now: DateTime<Utc>,
) -> RepositoryReport {
    let mut report = RepositoryReport::new(&repo.name);
    let policy = match verdict(registry, &settings.policies, repo).await {
        Ok(Verdict::Sweep(policy)) => policy,
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
    let swept = sweep(
        registry,
        settings,
        policy,
        options,
        shared,
        repo,
        now,
        &mut report,
    );
    if let Err(e) = swept.await {
        report.outcome = Outcome::Failed(e);
    }
    report
}

/// Lists, reads the index manifests, decides, applies the brakes, and deletes (or
/// previews) one repository.
#[allow(clippy::too_many_arguments)]
async fn sweep<R: Registry>(
    registry: &R,
    settings: &Settings,
    policy: &Policy,
    options: &RunOptions,
    shared: &Shared<'_>,
    repo: &Repository,
    now: DateTime<Utc>,
    report: &mut RepositoryReport,
) -> Result<(), RepositoryError> {
    let images = registry.images(&repo.name).await?;
    report.images_scanned = images.len() as u64;
    report.untagged_scanned = images.iter().filter(|i| i.tags.is_empty()).count() as u64;
    let manifests = read_manifests(registry, &repo.name, &images).await?;
    let (account, region) = arn_location(&repo.arn).unwrap_or_default();
    let in_use = shared
        .in_use
        .protected(account, region, &repo.name, &images);
    let mut plan = decide(images, &manifests, &in_use, policy, now);
    report.protected_in_use = plan
        .kept
        .iter()
        .filter(|d| matches!(d.reason, Reason::InUse { .. }))
        .count() as u64;
    if let Some(brake) = tagged_brake(&plan, settings.brakes.max_tagged_delete_percent) {
        hold_all(&mut plan, &brake.to_string(), options, report);
        return Err(RepositoryError::TaggedBrake(brake));
    }
    if !options.dry_run() {
        // Only a dry run reports what it keeps; a live run lets the kept images go now.
        plan.drop_kept();
    }
    let granted = shared.take(plan.expired.len());
    let deferred = plan.expired.split_off(granted);
    report.deferred = plan
        .with_images(&deferred)
        .map(ExpiredImage::from)
        .collect();
    let concurrency = settings.max_concurrency;
    let deleted = carry_out(registry, &repo.name, &plan, options, concurrency, report).await;
    let held: HashSet<Digest> = report
        .held_back
        .iter()
        .map(|h| Digest::from(h.image.image_digest.as_str()))
        .collect();
    let expired = plan
        .with_images(&plan.expired)
        .filter(|d| !held.contains(&d.image.digest));
    report.expired = expired.clone().map(ExpiredImage::from).collect();
    report.bytes_expired = expired.filter_map(|d| d.image.size_bytes).sum();
    deleted?;
    match plan.unreadable.into_iter().next() {
        Some(unreadable) => Err(RepositoryError::ManifestUnreadable(unreadable)),
        None => Ok(()),
    }
}

/// The manifests of the repository's image indexes (no call when there are none).
async fn read_manifests<R: Registry>(
    registry: &R,
    repository: &str,
    images: &[crate::model::Image],
) -> Result<Manifests, AwsError> {
    let indexes: Vec<String> = images
        .iter()
        .filter(|i| graph::is_index(i))
        .map(|i| i.digest.to_string())
        .collect();
    if indexes.is_empty() {
        return Ok(Manifests::new());
    }
    Ok(registry
        .manifests(repository, &indexes)
        .await?
        .into_iter()
        .collect())
}

/// Deletes the plan's expired images when the run deletes (up to `concurrency` batches of a
/// wave at once); previews them in a dry run; holds them back when a safety stop keeps a
/// live run from deleting.
async fn carry_out<R: Registry>(
    registry: &R,
    repository: &str,
    plan: &Plan,
    options: &RunOptions,
    concurrency: usize,
    report: &mut RepositoryReport,
) -> Result<(), AwsError> {
    if options.deletes() {
        let expired: Vec<_> = plan.with_images(&plan.expired).collect();
        return delete(registry, repository, &expired, concurrency, report).await;
    }
    if let Some(stop) = options.safety_stop() {
        let why = format!("safety stop: {stop}");
        report.held_back = held(plan.with_images(&plan.expired), &why);
    } else {
        report.kept = Some(plan.with_images(&plan.kept).map(KeptImage::from).collect());
    }
    Ok(())
}

/// A repository the tagged-delete brake holds back: nothing expires; a dry run shows each
/// image it would have expired as kept, with the brake as the reason.
fn hold_all(plan: &mut Plan, why: &str, options: &RunOptions, report: &mut RepositoryReport) {
    if options.dry_run() {
        let mut kept: Vec<KeptImage> = plan.with_images(&plan.kept).map(KeptImage::from).collect();
        kept.extend(held(plan.with_images(&plan.expired), why));
        report.kept = Some(kept);
    }
    plan.expired.clear();
}

/// Expired decisions reported as held back, for `why`.
fn held<'p>(expired: impl Iterator<Item = Decided<'p>>, why: &str) -> Vec<KeptImage> {
    expired
        .map(|d| KeptImage::held_back(d, &format!("{why} (planned: {})", d.reason)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::decide::scope::{POLICY_TAG, SKIP_TAG};
    use crate::model::{Image, ImageUse};
    use crate::run::Overrides;
    use crate::testing::{config, images, now, CallSpan, FakeRegistry as Fake, Vars};

    fn settings(vars: Vars) -> Settings {
        config(vars).sweep
    }

    fn live() -> RunOptions {
        RunOptions::resolve(false, Overrides::default()).expect("valid")
    }

    /// A live run over `fake` with the default configuration and nothing in use.
    /// Repositories `names`, each with `n` expired untagged images, listed in `delay`.
    fn repositories(names: &[&str], n: usize, delay: Duration) -> Fake {
        Fake {
            images: names
                .iter()
                .map(|name| (name.to_string(), images(name, n, 30, None)))
                .collect(),
            delay,
            ..Fake::default()
        }
    }

    async fn live_run(fake: &Fake) -> RunReport {
        run_one(fake, &settings(&[]), &live(), &InUse::default(), None, None).await
    }

    /// A run over `fake` alone (us-east-1), at [`now`].
    async fn run_one(
        fake: &Fake,
        settings: &Settings,
        options: &RunOptions,
        in_use: &InUse,
        stop: Option<Instant>,
        cursor: Option<&Position>,
    ) -> RunReport {
        let registries = [("us-east-1", fake)];
        run(&registries, settings, options, in_use, now(), stop, cursor)
            .await
            .expect("runs")
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
        let report = live_run(&fake).await;

        assert_eq!(
            fake.calls("images"),
            ["images web"],
            "one listing of every image"
        );
        assert_eq!(fake.calls("delete"), ["delete web 100", "delete web 50"]);
        let deleted = fake.deleted();
        assert_eq!(deleted.len(), 150);
        assert!(deleted.iter().all(|d| d.starts_with("sha256:old")));
        let r = &report.repositories[0];
        assert_eq!(
            (r.images_scanned, r.untagged_scanned, r.deleted),
            (155, 153, 150)
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
        let report = run_one(
            &fake,
            &settings(&[]),
            &options,
            &InUse::default(),
            None,
            None,
        )
        .await;
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
            images: vec![("web".into(), images("old", 4, 30, None))],
            delete_failures: vec![
                ("sha256:old0000".into(), "ImageNotFound".into()),
                ("sha256:old0001".into(), "KmsError".into()),
                (
                    "sha256:old0002".into(),
                    "ImageReferencedByManifestList".into(),
                ),
            ],
            ..Fake::default()
        };
        let report = live_run(&fake).await;
        let r = &report.repositories[0];
        assert_eq!((r.deleted, r.already_gone), (1, 1));
        let failed: Vec<_> = r.failures.iter().map(|f| f.failure_code.as_str()).collect();
        assert_eq!(failed, ["KmsError"]);
        assert_eq!(r.bytes_freed, 1000);
        assert_eq!(report.totals.failed, 1);
        // An index pushed since the plan lists it: kept for that reason, not a failure.
        let held: Vec<_> = r
            .held_back
            .iter()
            .map(|h| h.image.image_digest.as_str())
            .collect();
        assert_eq!(held, ["sha256:old0002"]);
        assert!(r.held_back[0]
            .image
            .reason
            .contains("an image index lists it"));
        assert_eq!(
            r.expired.len(),
            3,
            "held-back images are not reported as expired"
        );
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
        let report = live_run(&fake).await;
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
        let report = run_one(&fake, &cfg, &live(), &InUse::default(), None, None).await;
        let swept: Vec<_> = report
            .repositories
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(swept, ["team/a", "team/b"]);

        let narrow = serde_json::json!({"repositories": ["team/b", "team/c", "nope"]});
        let only = RunOptions::resolve(false, Overrides::from_event(&narrow).expect("valid"))
            .expect("valid");
        let report = run_one(&fake, &cfg, &only, &InUse::default(), None, None).await;
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
        let fake = repositories(&["a", "b", "c", "d"], 1, Duration::from_secs(10));
        let cfg = settings(&[("MAX_CONCURRENCY", "1")]);
        let stop = Instant::now() + Duration::from_secs(15);
        let report = run_one(&fake, &cfg, &live(), &InUse::default(), Some(stop), None).await;
        // The visiting order is the rotation for `now()`: b, c, d, a.
        let swept: Vec<_> = report
            .repositories
            .iter()
            .map(|r| (r.name.as_str(), r.deleted))
            .collect();
        assert_eq!(
            swept,
            [("b", 1), ("c", 1)],
            "c started before the stop time and finished"
        );
        assert_eq!(report.not_visited, ["a", "d"]);
        assert!(!report.complete);
    }

    #[tokio::test(start_paused = true)]
    async fn the_repositories_not_visited_are_the_end_of_the_run_order_and_the_next_run_starts_there(
    ) {
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        let fake = repositories(&names, 1, Duration::from_secs(10));
        let cfg = settings(&[("MAX_CONCURRENCY", "3")]);
        // Three at once from d: d e f at 0 s, g h i at 10 s, and nothing from 15 s on.
        let stop = Instant::now() + Duration::from_secs(15);
        let cursor = Position::new("d", "us-east-1");
        let report = run_one(
            &fake,
            &cfg,
            &live(),
            &InUse::default(),
            Some(stop),
            Some(&cursor),
        )
        .await;
        let swept: Vec<&str> = report
            .repositories
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(swept, ["d", "e", "f", "g", "h", "i"]);
        assert_eq!(
            report.not_visited,
            ["a", "b", "c"],
            "the end of the order d..i, a..c"
        );
        assert_eq!(report.resume_at, Some(Position::new("a", "us-east-1")));
    }

    #[tokio::test]
    async fn the_deletion_brake_defers_the_rest_of_the_plan_to_the_next_run() {
        let fake = repositories(&["a", "b", "c"], 4, Duration::ZERO);
        let cfg = settings(&[("MAX_DELETIONS_PER_RUN", "6"), ("MAX_CONCURRENCY", "1")]);
        let report = run_one(&fake, &cfg, &live(), &InUse::default(), None, None).await;
        assert_eq!(fake.deleted().len(), 6);
        assert_eq!((report.totals.deleted, report.totals.deferred), (6, 6));
        assert_eq!(
            report.totals.expired, 6,
            "deferred images are not in expired"
        );
        assert!(!report.complete);
        assert!(report.brakes.max_deletions_per_run_tripped);
        let deferred: Vec<_> = report
            .repositories
            .iter()
            .map(|r| r.deferred.len())
            .collect();
        // b first (the rotation), then c gets the last 2 of 6, a none.
        assert_eq!(deferred, [4, 0, 2]);
        assert_eq!(
            report.resume_at,
            Some(Position::new("c", "us-east-1")),
            "the first of b, c, a with deferred deletions"
        );
        // The oldest expired images of c go first; the rest wait.
        let c = &report.repositories[2];
        let granted: Vec<&str> = c
            .expired
            .iter()
            .map(|e| e.image.image_digest.as_str())
            .collect();
        assert_eq!(granted, ["sha256:c0003", "sha256:c0002"]);
    }

    #[tokio::test]
    async fn the_tagged_brake_leaves_a_repository_untouched_and_names_the_rule() {
        let all_tagged = images("v", 4, 30, Some("v"));
        let fake = Fake {
            images: vec![
                ("web".into(), all_tagged),
                ("api".into(), images("api", 1, 30, None)),
            ],
            ..Fake::default()
        };
        let policy = RELEASES;
        let cfg = settings(&[("LIFECYCLE_POLICY", policy)]);
        let report = run_one(&fake, &cfg, &live(), &InUse::default(), None, None).await;
        let web = &report.repositories[1];
        match &web.outcome {
            Outcome::Failed(e) => {
                assert_eq!(e.code(), "TaggedDeleteBrake");
                assert!(e.to_string().contains("3 of 4 tagged images (75%)"), "{e}");
                assert!(e.to_string().contains("rule 1"), "{e}");
            }
            other => panic!("expected the brake, got {other:?}"),
        }
        assert!(web.expired.is_empty() && fake.calls("delete web").is_empty());
        assert_eq!(report.brakes.max_tagged_delete_percent_tripped, ["web"]);
        let off = settings(&[
            ("LIFECYCLE_POLICY", policy),
            ("MAX_TAGGED_DELETE_PERCENT", "off"),
        ]);
        let report = run_one(&fake, &off, &live(), &InUse::default(), None, None).await;
        assert_eq!(
            report.repositories[1].deleted, 3,
            "off: the plan goes ahead"
        );
    }

    #[tokio::test]
    async fn an_image_in_use_is_kept_and_counted() {
        let registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
        let fake = Fake {
            images: vec![("web".into(), images("old", 3, 30, None))],
            ..Fake::default()
        };
        let uses = [ImageUse {
            reference: format!("{registry}/web:gone"),
            digest: Some("sha256:old0001".into()),
            user: "ECS task prod/1".into(),
        }];
        let in_use = InUse::new(&uses);
        let dry = RunOptions::resolve(true, Overrides::default()).expect("valid");
        // The fake's ARNs are not ECR ARNs: give the repository a real one.
        let fake = Fake {
            arns: vec![(
                "web".into(),
                "arn:aws:ecr:us-east-1:123456789012:repository/web".into(),
            )],
            ..fake
        };
        let report = run_one(&fake, &settings(&[]), &dry, &in_use, None, None).await;
        let r = &report.repositories[0];
        assert_eq!(r.protected_in_use, 1);
        assert_eq!(r.expired.len(), 2);
        let kept = r.kept.as_ref().expect("dry run");
        assert_eq!(kept[0].image.reason, "in use by ECS task prod/1");
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
                        [
                            images(n, 1, 30, None),
                            images(&format!("{n}-v"), 3, 30, Some("v")),
                        ]
                        .concat(),
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
            ("MAX_TAGGED_DELETE_PERCENT", "off"),
            ("LIFECYCLE_POLICIES", &policies),
        ]);
        let report = run_one(&fake, &cfg, &live(), &InUse::default(), None, None).await;
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
        run(
            &[("us-east-1", &quiet)],
            &settings(&[]),
            &live(),
            &InUse::default(),
            now(),
            None,
            None,
        )
        .await
        .expect("runs");
        assert!(
            quiet.calls("tags").is_empty(),
            "tags are only read when overrides are enabled"
        );
    }

    fn index_of(
        name: &str,
        tags: &[&str],
        children: &[&str],
    ) -> (Image, (String, Result<String, String>)) {
        let mut image = Image::plain(
            &format!("sha256:{name}"),
            tags.iter().map(|t| t.to_string()).collect(),
            now() - chrono::Duration::days(30),
        );
        image.manifest_media_type = Some(crate::decide::graph::INDEX_MEDIA_TYPES[0].into());
        let manifests: Vec<_> = children
            .iter()
            .map(|c| serde_json::json!({"digest": c}))
            .collect();
        let text = serde_json::json!({"manifests": manifests}).to_string();
        (image.clone(), (image.digest.to_string(), Ok(text)))
    }

    #[tokio::test]
    async fn an_index_is_deleted_before_its_children_in_separate_calls_each_rechecked() {
        let children = images("kid", 150, 30, None);
        let names: Vec<String> = children.iter().map(|i| i.digest.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (idx, manifest) = index_of("idx", &[], &names);
        let fake = Fake {
            images: vec![("web".into(), [vec![idx], children.clone()].concat())],
            manifests: vec![manifest],
            ..Fake::default()
        };
        let report = live_run(&fake).await;
        assert_eq!(fake.calls("manifests"), ["manifests web 1"]);
        assert_eq!(
            fake.calls("delete"),
            ["delete web 1", "delete web 100", "delete web 50"],
            "the index alone first, then its children"
        );
        assert_eq!(
            fake.calls("recheck").len(),
            3,
            "one re-check per delete batch"
        );
        assert_eq!(report.repositories[0].deleted, 151);
        assert_eq!(fake.deleted()[0], "sha256:idx");
    }

    /// A live run over `fake` with `MAX_CONCURRENCY` set to `concurrency`.
    async fn live_run_at(fake: &Fake, concurrency: &str) -> RunReport {
        let cfg = settings(&[("MAX_CONCURRENCY", concurrency)]);
        run_one(fake, &cfg, &live(), &InUse::default(), None, None).await
    }

    #[tokio::test(start_paused = true)]
    async fn delete_batches_run_concurrently_and_every_call_of_the_run_is_bounded() {
        let fake = Fake {
            images: vec![
                ("web".into(), images("web", 1000, 30, None)),
                ("api".into(), images("api", 500, 30, None)),
            ],
            call_delay: Duration::from_secs(1),
            ..Fake::default()
        };
        let started = Instant::now();
        let report = live_run_at(&fake, "3").await;

        assert_eq!(report.totals.deleted, 1500);
        assert_eq!(
            fake.max_in_flight(),
            3,
            "the bound is reached and never exceeded"
        );
        // 15 batches of 100, each a re-check then a delete (1 s each): 30 calls, 3 at a
        // time, take 10 s at best; web's 10 batches one after the other would take 20 s.
        let elapsed = started.elapsed();
        assert!(
            (Duration::from_secs(10)..=Duration::from_secs(12)).contains(&elapsed),
            "{elapsed:?}"
        );
        let deletes = fake.delete_spans.lock().expect("lock").clone();
        let rechecks = fake.recheck_spans.lock().expect("lock").clone();
        assert_eq!(deletes.len(), 15);
        assert!(deletes.iter().all(|d| d.digests.len() == 100));
        let unchecked: Vec<&CallSpan> = deletes
            .iter()
            .filter(|d| {
                !rechecks
                    .iter()
                    .any(|r| r.digests == d.digests && r.answered < d.started)
            })
            .collect();
        assert_eq!(
            unchecked,
            Vec::<&CallSpan>::new(),
            "each delete re-checked just before"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_batch_does_not_hold_up_the_batches_behind_it() {
        // Three batches, two at a time; the first one's re-check takes 10 s longer.
        let fake = Fake {
            images: vec![("web".into(), images("web", 300, 30, None))],
            call_delay: Duration::from_secs(1),
            slow_rechecks: vec![("sha256:web0299".into(), Duration::from_secs(10))],
            delete_failures: vec![
                ("sha256:web0000".into(), "InternalFailure".into()),
                ("sha256:web0299".into(), "InternalFailure".into()),
            ],
            ..Fake::default()
        };
        let started = Instant::now();
        let report = live_run_at(&fake, "2").await;

        assert_eq!(report.repositories[0].deleted, 298);
        // Counted in batch order, not in the order the batches answered.
        let failed = report.repositories[0].failures.iter();
        let failed: Vec<&str> = failed.filter_map(|f| f.image_digest.as_deref()).collect();
        assert_eq!(failed, ["sha256:web0299", "sha256:web0000"]);
        let rechecks = fake.recheck_spans.lock().expect("lock").clone();
        let span = |digest: &str| {
            let batch = rechecks
                .iter()
                .find(|r| r.digests.iter().any(|d| d == digest));
            batch.cloned().expect("a re-check of the batch")
        };
        let (slow, last) = (span("sha256:web0299"), span("sha256:web0000"));
        assert!(
            last.started < slow.answered,
            "the third batch's re-check started at tick {}, after the first's answered at {}",
            last.started,
            slow.answered
        );
        // The slow batch's 11 s re-check and 1 s delete: the others fit beside it.
        assert_eq!(started.elapsed().as_secs(), 12);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waves_stay_ordered_children_after_their_index_answered() {
        let mut all = Vec::new();
        let mut families = Vec::new();
        for i in 0..150 {
            let kids = images(&format!("k{i:03}-"), 2, 30, None);
            let names: Vec<String> = kids.iter().map(|k| k.digest.to_string()).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let (idx, manifest) = index_of(&format!("idx{i:03}"), &[], &names);
            families.push((idx.digest.clone(), names.join(" "), manifest));
            all.push(idx);
            all.extend(kids);
        }
        let fake = Fake {
            images: vec![("web".into(), all)],
            manifests: families.iter().map(|(_, _, m)| m.clone()).collect(),
            call_delay: Duration::from_secs(1),
            ..Fake::default()
        };
        let report = live_run_at(&fake, "4").await;

        assert_eq!(report.repositories[0].deleted, 450);
        // 150 indexes in 2 batches, then 300 children in 3.
        assert_eq!(
            fake.calls("delete"),
            [
                "delete web 100",
                "delete web 50",
                "delete web 100",
                "delete web 100",
                "delete web 100"
            ]
        );
        let mut early = Vec::new();
        for (idx, kids, _) in &families {
            let index_answered = fake.delete_span(&idx.to_string()).answered;
            for kid in kids.split(' ') {
                if fake.delete_span(kid).started < index_answered {
                    early.push(kid.to_owned());
                }
            }
        }
        assert_eq!(early, Vec::<String>::new(), "children deleted too early");
        let spans = fake.delete_spans.lock().expect("lock").clone();
        let last_index_answer = spans[..2].iter().map(|s| s.answered).max();
        let first_child_start = spans[2..].iter().map(|s| s.started).min();
        assert!(
            last_index_answer < first_child_start,
            "wave 2 starts after all of wave 1 answered: {spans:?}"
        );
        assert_eq!(fake.max_in_flight(), 3, "the 3 batches of wave 2 at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_delete_call_stops_new_batches_and_holds_back_the_rest() {
        let fake = Fake {
            images: vec![("web".into(), images("old", 1000, 30, None))],
            call_delay: Duration::from_secs(1),
            // The oldest image: in the first batch.
            refused: HashSet::from(["sha256:old0999".to_owned()]),
            ..Fake::default()
        };
        let report = live_run_at(&fake, "2").await;

        let web = &report.repositories[0];
        // Batch 1 is refused (at once); batch 2, in flight, completes; no other starts.
        assert_eq!(fake.calls("delete"), ["delete web 100", "delete web 100"]);
        assert_eq!((web.deleted, fake.deleted().len()), (100, 100));
        assert_eq!(web.held_back.len(), 900);
        let not_deleted = web
            .held_back
            .iter()
            .filter(|h| {
                h.image
                    .reason
                    .starts_with("held back: not deleted: BatchDeleteImage")
            })
            .count();
        let not_attempted = web
            .held_back
            .iter()
            .filter(|h| {
                h.image
                    .reason
                    .starts_with("held back: not attempted: BatchDeleteImage")
            })
            .count();
        assert_eq!((not_deleted, not_attempted), (100, 800));
        assert_eq!(web.held_back[0].image.image_digest, "sha256:old0999");
        match &web.outcome {
            Outcome::Failed(e) => assert_eq!(e.code(), "AccessDeniedException"),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn an_image_tagged_since_the_plan_survives_and_so_do_its_children() {
        let kids = images("kid", 2, 30, None);
        let names: Vec<String> = kids.iter().map(|i| i.digest.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let (idx, manifest) = index_of("idx", &[], &names);
        let loose = images("loose", 1, 30, None);
        let fake = Fake {
            images: vec![("web".into(), [vec![idx], kids, loose].concat())],
            manifests: vec![manifest],
            retagged: vec![("sha256:idx".into(), vec!["promoted".into()])],
            ..Fake::default()
        };
        let report = live_run(&fake).await;
        let r = &report.repositories[0];
        assert_eq!(fake.deleted(), ["sha256:loose0000"]);
        let held: Vec<(&str, &str)> = r
            .held_back
            .iter()
            .map(|h| (h.image.image_digest.as_str(), h.image.reason.as_str()))
            .collect();
        assert_eq!(
            held,
            [
                (
                    "sha256:idx",
                    "held back: tagged since it was planned (now: promoted)"
                ),
                // Oldest first: each of `images` is a second older than the one before.
                (
                    "sha256:kid0001",
                    "held back: sha256:idx, which it follows, was not deleted"
                ),
                (
                    "sha256:kid0000",
                    "held back: sha256:idx, which it follows, was not deleted"
                ),
            ]
        );
        assert_eq!((r.expired.len(), r.deleted), (1, 1));
        assert_eq!(report.totals.held_back, 3);
    }

    #[tokio::test]
    async fn an_unreadable_index_manifest_fails_the_repository_closed() {
        let (idx, _) = index_of("idx", &["v1"], &[]);
        let fake = Fake {
            images: vec![
                (
                    "web".into(),
                    [vec![idx], images("loose", 2, 30, None)].concat(),
                ),
                ("api".into(), images("api", 1, 30, None)),
            ],
            manifests: vec![("sha256:idx".into(), Err("KmsError".into()))],
            ..Fake::default()
        };
        let report = live_run(&fake).await;
        let web = &report.repositories[1];
        assert!(
            fake.calls("delete web").is_empty(),
            "nothing deleted in web"
        );
        match &web.outcome {
            Outcome::Failed(e) => assert_eq!(e.code(), "ManifestUnreadable"),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(report.repositories[0].deleted, 1, "api still swept");
    }
}
