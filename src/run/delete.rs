//! Carrying out a plan's deletions, in waves: an index before its children, a subject
//! before its referrers, each in a later `BatchDeleteImage` call. Each batch is re-read just
//! before it is deleted; an image whose tags changed since it was planned, whose parent was
//! not deleted, or that ECR says an index still lists, is held back, not deleted.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::aws::ecr::{Registry, BATCH_LIMIT};
use crate::aws::AwsError;
use crate::decide::plan::Decision;
use crate::model::{Digest, Image};
use crate::report::{ImageEntry, KeptImage, RepositoryReport};

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
    report: &'a mut RepositoryReport,
}

/// Deletes `expired` (in the plan's delete order), counting into `report`. Images that are
/// not deleted after all go to `report.held_back`, with the reason; a failed call stops the
/// repository, holds back the rest, and is returned.
pub(super) async fn delete<R: Registry>(
    registry: &R,
    repository: &str,
    expired: &[Decision],
    report: &mut RepositoryReport,
) -> Result<(), AwsError> {
    let mut deleter = Deleter {
        registry,
        repository,
        expired: expired.iter().map(|d| &d.image.digest).collect(),
        gone: HashSet::new(),
        report,
    };
    let mut waves: Vec<&[Decision]> = expired.chunk_by(|a, b| a.wave == b.wave).collect();
    waves.reverse();
    while let Some(wave) = waves.pop() {
        if let Err(e) = deleter.wave(wave).await {
            for d in waves.into_iter().flatten() {
                deleter.hold(d, format!("not attempted: {e}"));
            }
            return Err(e);
        }
    }
    Ok(())
}

impl<R: Registry> Deleter<'_, R> {
    async fn wave(&mut self, wave: &[Decision]) -> Result<(), AwsError> {
        let mut ready = Vec::new();
        for d in wave {
            let waiting = d
                .follows
                .iter()
                .find(|p| self.expired.contains(p) && !self.gone.contains(*p));
            match waiting {
                Some(parent) => {
                    self.hold(d, format!("{parent}, which it follows, was not deleted"))
                }
                None => ready.push(d),
            }
        }
        let mut batches = ready.chunks(BATCH_LIMIT);
        while let Some(batch) = batches.next() {
            if let Err(e) = self.batch(batch).await {
                for d in batches.flatten() {
                    self.hold(d, format!("not attempted: {e}"));
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// Re-reads one batch, then deletes what is unchanged.
    async fn batch(&mut self, batch: &[&Decision]) -> Result<(), AwsError> {
        let digests: Vec<String> = batch.iter().map(|d| d.image.digest.to_string()).collect();
        let recheck = match self.registry.recheck(self.repository, &digests).await {
            Ok(recheck) => recheck,
            Err(e) => {
                batch
                    .iter()
                    .for_each(|d| self.hold(d, format!("not re-read: {e}")));
                return Err(e);
            }
        };
        let now: HashMap<&Digest, &Image> =
            recheck.present.iter().map(|i| (&i.digest, i)).collect();
        let mut unchanged = Vec::new();
        for d in batch {
            let digest = &d.image.digest;
            match now.get(digest) {
                None => self.already_gone(digest),
                Some(image) if tag_set(image) != tag_set(&d.image) => {
                    let tags = image.tags.join(", ");
                    self.hold(d, format!("tagged since it was planned (now: {tags})"));
                }
                Some(_) => unchanged.push(*d),
            }
        }
        if unchanged.is_empty() {
            return Ok(());
        }
        self.delete(&unchanged).await
    }

    async fn delete(&mut self, batch: &[&Decision]) -> Result<(), AwsError> {
        let digests: Vec<String> = batch.iter().map(|d| d.image.digest.to_string()).collect();
        let outcome = match self.registry.delete_images(self.repository, &digests).await {
            Ok(outcome) => outcome,
            Err(e) => {
                batch
                    .iter()
                    .for_each(|d| self.hold(d, format!("not deleted: {e}")));
                return Err(e);
            }
        };
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
                    self.hold(d, why);
                }
                _ => self.report.failures.push(failure),
            }
        }
        Ok(())
    }

    fn already_gone(&mut self, digest: &Digest) {
        self.report.already_gone += 1;
        self.gone.insert(digest.clone());
    }

    fn hold(&mut self, decision: &Decision, why: String) {
        let mut entry = ImageEntry::from(decision);
        entry.reason = format!("held back: {why}");
        self.report.held_back.push(KeptImage {
            image: entry,
            rule_priority: decision.rule_priority,
        });
    }
}

fn tag_set(image: &Image) -> BTreeSet<&str> {
    image.tags.iter().map(String::as_str).collect()
}
