//! The narrow slice of ECR the janitor needs, as a trait, and its `aws-sdk-ecr` implementation.
//!
//! The run is written against [`Registry`] so that it can be tested without the SDK; the
//! adapter ([`EcrRegistry`]) is tested with `aws-smithy-mocks`. Per-image delete failures are
//! data ([`DeleteOutcome::failures`]); only a failed call is an error.

use std::collections::BTreeSet;
use std::future::Future;

use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_ecr::types::{DescribeImagesFilter, ImageDetail, ImageIdentifier, TagStatus};
use chrono::{DateTime, Utc};

use super::{AwsError, MAX_ATTEMPTS};
use crate::model::{Image, ImageFailure, Listing, Repository};

/// ECR's page size limit for DescribeRepositories and DescribeImages.
pub const PAGE_SIZE: i32 = 1000;
/// ECR's limit of image ids per BatchDeleteImage call.
pub const BATCH_DELETE_LIMIT: usize = 100;

/// What one BatchDeleteImage call did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Digests ECR's response lists as deleted (`imageIds`), each once.
    pub deleted: Vec<String>,
    /// Per-image failures.
    pub failures: Vec<ImageFailure>,
}

/// The ECR operations the janitor uses.
pub trait Registry: Sync {
    /// Every repository of the registry (all pages).
    fn repositories(&self) -> impl Future<Output = Result<Vec<Repository>, AwsError>> + Send;

    /// Every image of a repository in `listing` (all pages).
    fn images(
        &self,
        repository: &str,
        listing: Listing,
    ) -> impl Future<Output = Result<Vec<Image>, AwsError>> + Send;

    /// The repository's resource tags as (key, value) pairs.
    fn repository_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, AwsError>> + Send;

    /// Deletes up to [`BATCH_DELETE_LIMIT`] images by digest in one call.
    fn delete_images(
        &self,
        repository: &str,
        digests: &[String],
    ) -> impl Future<Output = Result<DeleteOutcome, AwsError>> + Send;
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
    async fn repositories(&self) -> Result<Vec<Repository>, AwsError> {
        let mut pages = self
            .client
            .describe_repositories()
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("DescribeRepositories", e))?;
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

    async fn images(&self, repository: &str, listing: Listing) -> Result<Vec<Image>, AwsError> {
        let mut request = self
            .client
            .describe_images()
            .repository_name(repository)
            .max_results(PAGE_SIZE);
        if listing == Listing::Untagged {
            request = request.filter(
                DescribeImagesFilter::builder()
                    .tag_status(TagStatus::Untagged)
                    .build(),
            );
        }
        let mut pages = request.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("DescribeImages", e))?;
            out.extend(
                page.image_details
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(to_image),
            );
        }
        Ok(out)
    }

    async fn repository_tags(&self, arn: &str) -> Result<Vec<(String, String)>, AwsError> {
        let out = self
            .client
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListTagsForResource", e))?;
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
    ) -> Result<DeleteOutcome, AwsError> {
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
            .map_err(|e| AwsError::from_sdk("BatchDeleteImage", e))?;
        let failures = out
            .failures
            .unwrap_or_default()
            .into_iter()
            .map(|f| ImageFailure {
                image_digest: f.image_id.and_then(|id| id.image_digest),
                failure_code: f
                    .failure_code
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default(),
                failure_reason: f.failure_reason.unwrap_or_default(),
            })
            .collect();
        // A tagged image comes back once per tag: count digests.
        let deleted: BTreeSet<String> = out
            .image_ids
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| id.image_digest)
            .collect();
        let deleted = deleted.into_iter().collect();
        Ok(DeleteOutcome { deleted, failures })
    }
}
