//! The narrow slice of ECR the janitor needs, as a trait, and its `aws-sdk-ecr` implementation.
//!
//! The sweep is written against [`Registry`] so that it can be tested without the SDK; the
//! adapter ([`EcrRegistry`]) is tested with `aws-smithy-mocks`. Per-image delete failures are
//! data ([`DeleteOutcome::failures`]); only a failed call is an error.

use std::future::Future;

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageDetail, ImageIdentifier, TagStatus};
use chrono::{DateTime, Utc};

use crate::plan::Image;

/// ECR's page size limit for DescribeRepositories and DescribeImages.
pub const PAGE_SIZE: i32 = 1000;
/// ECR's limit of image ids per BatchDeleteImage call.
pub const BATCH_DELETE_LIMIT: usize = 100;
/// SDK attempts per call: enough to ride out ECR throttling with the SDK's backoff.
pub const MAX_ATTEMPTS: u32 = 10;

/// A repository the sweep may visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Repository name, e.g. `team-a/web`.
    pub name: String,
    /// Repository ARN, used to read its resource tags.
    pub arn: String,
}

/// Which images to list: untagged-only runs let ECR filter server-side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageScope {
    /// Only untagged images (`tagStatus=UNTAGGED`).
    Untagged,
    /// Every image, tagged or not.
    All,
}

/// One image ECR refused to delete, as ECR reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteFailure {
    /// The image's digest.
    pub digest: String,
    /// ECR's failure code, e.g. `ImageNotFound`, `ImageReferencedByManifestList`.
    pub code: String,
    /// ECR's explanation.
    pub reason: String,
}

/// What one BatchDeleteImage call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Digests that were requested and not reported as failures.
    pub deleted: Vec<String>,
    /// Per-image failures.
    pub failures: Vec<DeleteFailure>,
}

/// A call to ECR that failed after the SDK's retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct RegistryError {
    /// The ECR operation, e.g. `DescribeImages`.
    pub operation: &'static str,
    /// The service's error code, when it gave one (e.g. `AccessDeniedException`).
    pub code: Option<String>,
    /// Everything the SDK knows about the failure.
    pub message: String,
}

/// The ECR operations the janitor uses.
pub trait Registry: Sync {
    /// Every repository of the registry (all pages).
    fn repositories(&self) -> impl Future<Output = Result<Vec<Repository>, RegistryError>> + Send;

    /// Every image of a repository in `scope` (all pages).
    fn images(
        &self,
        repository: &str,
        scope: ImageScope,
    ) -> impl Future<Output = Result<Vec<Image>, RegistryError>> + Send;

    /// The repository's resource tags as (key, value) pairs.
    fn repository_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, RegistryError>> + Send;

    /// Deletes up to [`BATCH_DELETE_LIMIT`] images by digest in one call.
    fn delete_images(
        &self,
        repository: &str,
        digests: &[String],
    ) -> impl Future<Output = Result<DeleteOutcome, RegistryError>> + Send;
}

/// [`Registry`] over `aws-sdk-ecr`.
#[derive(Debug, Clone)]
pub struct EcrRegistry {
    client: aws_sdk_ecr::Client,
}

impl EcrRegistry {
    /// Wraps a configured client (tests pass a mocked one).
    pub fn new(client: aws_sdk_ecr::Client) -> Self {
        Self { client }
    }

    /// A client from the standard AWS environment (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`), retrying throttling and 5xx with the SDK's standard backoff.
    pub async fn from_env() -> Self {
        let shared = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .load()
            .await;
        Self::new(aws_sdk_ecr::Client::new(&shared))
    }
}

fn call_error<E>(operation: &'static str, err: SdkError<E>) -> RegistryError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    RegistryError {
        operation,
        code: err.code().map(str::to_owned),
        message: DisplayErrorContext(&err).to_string(),
    }
}

/// Maps ECR's image detail to the planner's image. Images without a digest cannot be deleted
/// and are left out; an image without a push time counts as newest, so age never expires it.
/// Push times are rounded to the millisecond: ECR sends fractional epoch seconds, and finer
/// digits are float noise.
fn to_image(detail: ImageDetail) -> Option<Image> {
    let pushed_at = detail
        .image_pushed_at()
        .and_then(|t| {
            let millis = (i64::from(t.subsec_nanos()) + 500_000) / 1_000_000;
            DateTime::<Utc>::from_timestamp_millis(t.secs().checked_mul(1000)?.checked_add(millis)?)
        })
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    Some(Image {
        digest: detail.image_digest?,
        tags: detail.image_tags.unwrap_or_default(),
        pushed_at,
        size_bytes: detail.image_size_in_bytes,
    })
}

impl Registry for EcrRegistry {
    async fn repositories(&self) -> Result<Vec<Repository>, RegistryError> {
        let mut pages = self
            .client
            .describe_repositories()
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_error("DescribeRepositories", e))?;
            out.extend(
                page.repositories
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|r| {
                        Some(Repository {
                            name: r.repository_name?,
                            arn: r.repository_arn.unwrap_or_default(),
                        })
                    }),
            );
        }
        Ok(out)
    }

    async fn images(
        &self,
        repository: &str,
        scope: ImageScope,
    ) -> Result<Vec<Image>, RegistryError> {
        let mut request = self
            .client
            .describe_images()
            .repository_name(repository)
            .max_results(PAGE_SIZE);
        if scope == ImageScope::Untagged {
            request = request.filter(
                DescribeImagesFilter::builder()
                    .tag_status(TagStatus::Untagged)
                    .build(),
            );
        }
        let mut pages = request.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| call_error("DescribeImages", e))?;
            out.extend(
                page.image_details
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(to_image),
            );
        }
        Ok(out)
    }

    async fn repository_tags(&self, arn: &str) -> Result<Vec<(String, String)>, RegistryError> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| call_error("ListTagsForResource", e))?;
        Ok(out
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect())
    }

    async fn delete_images(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<DeleteOutcome, RegistryError> {
        debug_assert!(digests.len() <= BATCH_DELETE_LIMIT);
        let ids = digests
            .iter()
            .map(|d| ImageIdentifier::builder().image_digest(d).build())
            .collect();
        let out = self
            .client
            .batch_delete_image()
            .repository_name(repository)
            .set_image_ids(Some(ids))
            .send()
            .await
            .map_err(|e| call_error("BatchDeleteImage", e))?;
        let failures: Vec<DeleteFailure> = out
            .failures
            .unwrap_or_default()
            .into_iter()
            .map(|f| {
                let id = f.image_id;
                DeleteFailure {
                    digest: id
                        .as_ref()
                        .and_then(|i| i.image_digest.clone())
                        .or_else(|| id.and_then(|i| i.image_tag))
                        .unwrap_or_default(),
                    code: f
                        .failure_code
                        .map(|c| c.as_str().to_owned())
                        .unwrap_or_default(),
                    reason: f.failure_reason.unwrap_or_default(),
                }
            })
            .collect();
        let deleted = digests
            .iter()
            .filter(|d| !failures.iter().any(|f| &f.digest == *d))
            .cloned()
            .collect();
        Ok(DeleteOutcome { deleted, failures })
    }
}
