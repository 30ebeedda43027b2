//! The ECR calls of one run, at most `MAX_CONCURRENCY` in flight at once.
//!
//! Repositories are swept several at a time, and within a repository the delete batches of
//! a wave run concurrently too; every ECR call of the sweep takes one permit of a shared
//! semaphore, so that however the work is spread, ECR never sees more than
//! `MAX_CONCURRENCY` of the run's calls at once. Permits are handed out first come, first
//! served, and only held for the duration of one call.

use tokio::sync::Semaphore;

use crate::aws::ecr::{DeleteOutcome, ManifestRead, Recheck, Registry};
use crate::aws::AwsError;
use crate::model::{Image, Repository};

/// A [`Registry`] whose calls share one semaphore's permits.
pub(super) struct Bounded<'a, R> {
    registry: &'a R,
    permits: &'a Semaphore,
}

impl<'a, R: Registry> Bounded<'a, R> {
    /// `registry`'s calls, each made while holding one of `permits`.
    pub(super) fn new(registry: &'a R, permits: &'a Semaphore) -> Self {
        Self { registry, permits }
    }

    /// Runs `call` with a permit held. The semaphore is never closed, so acquiring cannot
    /// fail; if it ever did, the call goes on without one rather than not at all.
    async fn bounded<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        let _permit = self.permits.acquire().await.ok();
        call.await
    }
}

impl<R: Registry> Registry for Bounded<'_, R> {
    async fn repositories(&self) -> Result<Vec<Repository>, AwsError> {
        self.bounded(self.registry.repositories()).await
    }

    async fn images(&self, repository: &str) -> Result<Vec<Image>, AwsError> {
        self.bounded(self.registry.images(repository)).await
    }

    async fn manifests(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<ManifestRead>, AwsError> {
        self.bounded(self.registry.manifests(repository, digests))
            .await
    }

    async fn recheck(&self, repository: &str, digests: &[String]) -> Result<Recheck, AwsError> {
        self.bounded(self.registry.recheck(repository, digests))
            .await
    }

    async fn repository_tags(&self, arn: &str) -> Result<Vec<(String, String)>, AwsError> {
        self.bounded(self.registry.repository_tags(arn)).await
    }

    async fn delete_images(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<DeleteOutcome, AwsError> {
        self.bounded(self.registry.delete_images(repository, digests))
            .await
    }
}
