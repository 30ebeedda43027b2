//! Carrying out a plan's deletions, in waves: an index before its children, a subject
//! before its referrers, each in a later `BatchDeleteImage` call. The batches of one wave
//! run concurrently; a wave starts only when every call of the previous one has answered.
//! Each batch is re-read just before it is deleted; an image whose tags changed since it
//! was planned, whose parent was not deleted, or that ECR says an index still lists, is
//! held back, not deleted.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use futures::stream::{self, StreamExt};

use crate::aws::ecr::{DeleteOutcome, Recheck, Registry, BATCH_LIMIT};
use crate::aws::AwsError;
use crate::decide::plan::Decided;
use crate::model::{Digest, Image};
use crate::report::{KeptImage, RepositoryReport};

/// ECR's failure code for an image that is no longer there.
const IMAGE_NOT_FOUND: &str = "ImageNotFound";
/// ECR's failure code for a manifest an image index still lists.
const REFERENCED_BY_INDEX: &str = "ImageReferencedByManifestList";

/// Deletion state of one repository.
struct Deleter<'a, R> {
    registry: &'a R,
    repository: &'a str,
    /// Every expired digest: a parent outside this set is absent or kept.
    expired: HashSet<&'a Digest>,
    /// Digests that are gone now: deleted by this run, or already gone.
    gone: HashSet<Digest>,
    /// Batches of one wave in flight at once.
    concurrency: usize,
    report: &'a mut RepositoryReport,
}

/// Deletes `expired` (in the plan's delete order), counting into `report`, with up to
/// `concurrency` batches of a wave at once (each batch re-read just before its delete; a
/// wave starts when the previous one has finished). Images that are not deleted after all
/// go to `report.held_back`, with the reason; a failed call stops the repository (batches
/// in flight finish, no new one starts), holds back the rest, and is returned.
pub(super) async fn delete<R: Registry>(
    registry: &R,
    repository: &str,
    expired: &[Decided<'_>],
    concurrency: usize,
    report: &mut RepositoryReport,
) -> Result<(), AwsError> {
    let mut deleter = Deleter {
        registry,
        repository,
        expired: expired.iter().map(|d| &d.image.digest).collect(),
        gone: HashSet::new(),
        concurrency: concurrency.max(1),
        report,
    };
    let mut waves: Vec<&[Decided]> = expired.chunk_by(|a, b| a.wave == b.wave).collect();
    waves.reverse();
    while let Some(wave) = waves.pop() {
        if let Err(e) = deleter.wave(wave).await {
            for d in waves.into_iter().flatten() {
                deleter.hold(*d, format!("not attempted: {e}"));
            }
            return Err(e);
        }
    }
    Ok(())
}

/// What became of one batch of a wave.
enum Attempt<'d> {
    /// Not sent: a call of the wave had failed before it started.
    NotAttempted(AwsError),
    /// The re-check failed: nothing of it was deleted.
    NotReread(AwsError),
    /// Re-read; what was unchanged was sent for deletion (None: nothing was).
    Reread(Checked<'d>, Option<Result<DeleteOutcome, AwsError>>),
}

/// One batch as its re-check found it.
struct Checked<'d> {
    /// No longer in the repository.
    gone: Vec<Decided<'d>>,
    /// Tagged since the plan, with its tags now.
    retagged: Vec<(Decided<'d>, String)>,
    /// As planned: these are deleted.
    unchanged: Vec<Decided<'d>>,
}

impl<'d> Checked<'d> {
    fn new(batch: &[Decided<'d>], recheck: &Recheck) -> Self {
        let now: HashMap<&Digest, &Image> =
            recheck.present.iter().map(|i| (&i.digest, i)).collect();
        let mut checked = Checked {
            gone: Vec::new(),
            retagged: Vec::new(),
            unchanged: Vec::new(),
        };
        for &d in batch {
            match now.get(&d.image.digest) {
                None => checked.gone.push(d),
                Some(image) if tag_set(image) != tag_set(d.image) => {
                    checked.retagged.push((d, image.tags.join(", ")));
                }
                Some(_) => checked.unchanged.push(d),
            }
        }
        checked
    }
}

/// The first failed call of a wave, shared by its batches in flight.
type FirstFailure = Mutex<Option<AwsError>>;

fn first_failure(failed: &FirstFailure) -> Option<AwsError> {
    let first = failed
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    first.clone()
}

fn record_failure(failed: &FirstFailure, e: &AwsError) {
    let mut first = failed
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    first.get_or_insert_with(|| e.clone());
}

/// Re-reads one batch, then deletes what is unchanged. Nothing is sent once a call of the
/// wave has failed; a failure of this batch's calls is recorded for the others.
async fn attempt<'d, R: Registry>(
    registry: &R,
    repository: &str,
    batch: &[Decided<'d>],
    failed: &FirstFailure,
) -> Attempt<'d> {
    if let Some(e) = first_failure(failed) {
        return Attempt::NotAttempted(e);
    }
    let digests: Vec<String> = batch.iter().map(|d| d.image.digest.to_string()).collect();
    let checked = match registry.recheck(repository, &digests).await {
        Ok(recheck) => Checked::new(batch, &recheck),
        Err(e) => {
            record_failure(failed, &e);
            return Attempt::NotReread(e);
        }
    };
    if checked.unchanged.is_empty() {
        return Attempt::Reread(checked, None);
    }
    let digests: Vec<String> = checked
        .unchanged
        .iter()
        .map(|d| d.image.digest.to_string())
        .collect();
    let outcome = registry.delete_images(repository, &digests).await;
    if let Err(e) = &outcome {
        record_failure(failed, e);
    }
    Attempt::Reread(checked, Some(outcome))
}

impl<R: Registry> Deleter<'_, R> {
    /// Holds back what follows a parent that is still there, then re-checks and deletes
    /// the rest in batches, `concurrency` at a time; their results are counted in batch
    /// order, so the report does not depend on which call answered first.
    async fn wave(&mut self, wave: &[Decided<'_>]) -> Result<(), AwsError> {
        let mut ready = Vec::new();
        for d in wave {
            let waiting = d
                .follows
                .iter()
                .find(|p| self.expired.contains(p) && !self.gone.contains(*p));
            match waiting {
                Some(parent) => {
                    self.hold(*d, format!("{parent}, which it follows, was not deleted"))
                }
                None => ready.push(*d),
            }
        }
        let failed = &FirstFailure::default();
        let (registry, repository) = (self.registry, self.repository);
        let mut attempts: Vec<_> = stream::iter(ready.chunks(BATCH_LIMIT).enumerate())
            .map(|(at, batch)| async move {
                let attempt = attempt(registry, repository, batch, failed).await;
                (at, batch, attempt)
            })
            // Unordered: a batch that has answered makes room for the next at once. In
            // order, it kept its place until every earlier batch had answered, so one slow
            // call held up the calls behind it.
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        attempts.sort_unstable_by_key(|&(at, _, _)| at);
        for (_, batch, attempt) in attempts {
            self.count(batch, attempt);
        }
        match first_failure(failed) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Counts one batch's attempt into the report.
    fn count(&mut self, batch: &[Decided], attempt: Attempt) {
        let (checked, outcome) = match attempt {
            Attempt::NotAttempted(e) => {
                batch
                    .iter()
                    .for_each(|d| self.hold(*d, format!("not attempted: {e}")));
                return;
            }
            Attempt::NotReread(e) => {
                batch
                    .iter()
                    .for_each(|d| self.hold(*d, format!("not re-read: {e}")));
                return;
            }
            Attempt::Reread(checked, outcome) => (checked, outcome),
        };
        for d in checked.gone {
            self.already_gone(&d.image.digest);
        }
        for (d, tags) in checked.retagged {
            self.hold(d, format!("tagged since it was planned (now: {tags})"));
        }
        match outcome {
            None => {}
            Some(Ok(outcome)) => self.deleted(&checked.unchanged, outcome),
            Some(Err(e)) => checked
                .unchanged
                .iter()
                .for_each(|d| self.hold(*d, format!("not deleted: {e}"))),
        }
    }

    /// Counts what one BatchDeleteImage call of `batch` did.
    fn deleted(&mut self, batch: &[Decided], outcome: DeleteOutcome) {
        let sizes: HashMap<&Digest, i64> = batch
            .iter()
            .map(|d| (&d.image.digest, d.image.size_bytes.unwrap_or(0)))
            .collect();
        for digest in outcome.deleted.into_iter().map(Digest::from) {
            self.report.deleted += 1;
            self.report.bytes_freed += sizes.get(&digest).copied().unwrap_or(0);
            self.gone.insert(digest);
        }
        for failure in outcome.failures {
            let decision = batch.iter().find(|d| {
                failure
                    .image_digest
                    .as_deref()
                    .is_some_and(|f| d.image.digest == f)
            });
            match (failure.failure_code.as_str(), decision) {
                (IMAGE_NOT_FOUND, Some(d)) => self.already_gone(&d.image.digest),
                (REFERENCED_BY_INDEX, Some(d)) => {
                    let why = format!("an image index lists it: {}", failure.failure_reason);
                    self.hold(*d, why);
                }
                _ => self.report.failures.push(failure),
            }
        }
    }

    fn already_gone(&mut self, digest: &Digest) {
        self.report.already_gone += 1;
        self.gone.insert(digest.clone());
    }

    fn hold(&mut self, decision: Decided, why: String) {
        let held = KeptImage::held_back(decision, &why);
        self.report.held_back.push(held);
    }
}

fn tag_set(image: &Image) -> BTreeSet<&str> {
    image.tags.iter().map(String::as_str).collect()
}
