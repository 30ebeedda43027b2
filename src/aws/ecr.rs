//! The narrow slice of ECR the janitor needs, as a trait, and its `aws-sdk-ecr` implementation.
//!
//! The run is written against [`Registry`] so that it can be tested without the SDK; the
//! adapter ([`EcrRegistry`]) is tested with `aws-smithy-mocks`. Per-image delete failures are
//! data ([`DeleteOutcome::failures`]); only a failed call is an error.

use std::collections::BTreeSet;
use std::future::Future;

use aws_config::SdkConfig;
use aws_sdk_ecr::error::ProvideErrorMetadata;
use aws_sdk_ecr::types::{ImageDetail, ImageIdentifier};
use chrono::{DateTime, Utc};

use super::AwsError;
use crate::decide::graph::INDEX_MEDIA_TYPES;
use crate::model::{media_type, Digest, Image, ImageFailure, Repository};

/// ECR's page size limit for DescribeRepositories and DescribeImages.
pub const PAGE_SIZE: i32 = 1000;
/// ECR's limit of image ids per BatchDeleteImage, BatchGetImage and DescribeImages-by-id call.
pub const BATCH_LIMIT: usize = 100;

/// The manifest media types the janitor reads: index manifests, which list their children.
const ACCEPTED_MEDIA_TYPES: [&str; 4] = [
    INDEX_MEDIA_TYPES[0],
    INDEX_MEDIA_TYPES[1],
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// One index manifest as read: its digest, and its text or why ECR could not return it.
pub type ManifestRead = (String, Result<String, String>);

/// The images of one re-check: as they are now, and those ECR no longer has.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recheck {
    /// The images still there, as ECR describes them now.
    pub present: Vec<Image>,
    /// Digests ECR answered `ImageNotFoundException` for.
    pub gone: Vec<String>,
}

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

    /// Every image of a repository, tagged and untagged (all pages).
    fn images(&self, repository: &str)
        -> impl Future<Output = Result<Vec<Image>, AwsError>> + Send;

    /// The manifests of these images (any number; read [`BATCH_LIMIT`] per call): digest →
    /// manifest text, or why ECR could not return it.
    fn manifests(
        &self,
        repository: &str,
        digests: &[String],
    ) -> impl Future<Output = Result<Vec<ManifestRead>, AwsError>> + Send;

    /// Re-reads up to [`BATCH_LIMIT`] images just before they are deleted.
    fn recheck(
        &self,
        repository: &str,
        digests: &[String],
    ) -> impl Future<Output = Result<Recheck, AwsError>> + Send;

    /// The repository's resource tags as (key, value) pairs.
    fn repository_tags(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<(String, String)>, AwsError>> + Send;

    /// Deletes up to [`BATCH_LIMIT`] images by digest in one call.
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

    /// A client from a shared AWS configuration ([`super::shared_config`]).
    pub fn from_shared(shared: &SdkConfig) -> Self {
        Self::new(aws_sdk_ecr::Client::new(shared))
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
    let mut tags = detail.image_tags.unwrap_or_default();
    // The SDK leaves room for more tags; a repository's images keep theirs for the run.
    tags.shrink_to_fit();
    Some(Image {
        digest: detail.image_digest?.into(),
        tags,
        pushed_at,
        size_bytes: detail.image_size_in_bytes,
        manifest_media_type: detail.image_manifest_media_type.map(media_type),
        subject: detail
            .subject_manifest_digest
            .map(|s| Box::new(Digest::from(s))),
    })
}

fn digest_ids(digests: &[String]) -> Vec<ImageIdentifier> {
    digests
        .iter()
        .map(|d| ImageIdentifier::builder().image_digest(d).build())
        .collect()
}

/// The digest an `ImageNotFoundException` names (`…imageId {imageDigest:'sha256:…', …`).
fn missing_digest(message: &str) -> Option<&str> {
    let start = message.find("imageDigest:'")? + "imageDigest:'".len();
    let rest = &message[start..];
    rest.get(..rest.find('\'')?)
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

    async fn images(&self, repository: &str) -> Result<Vec<Image>, AwsError> {
        let mut pages = self
            .client
            .describe_images()
            .repository_name(repository)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
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
        // Grown by doubling: up to a third of a large listing would be spare room.
        out.shrink_to_fit();
        Ok(out)
    }

    async fn manifests(
        &self,
        repository: &str,
        digests: &[String],
    ) -> Result<Vec<ManifestRead>, AwsError> {
        let mut out = Vec::new();
        for batch in digests.chunks(BATCH_LIMIT) {
            let page = self
                .client
                .batch_get_image()
                .repository_name(repository)
                .set_image_ids(Some(digest_ids(batch)))
                .set_accepted_media_types(Some(ACCEPTED_MEDIA_TYPES.map(String::from).to_vec()))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("BatchGetImage", e))?;
            for image in page.images.unwrap_or_default() {
                let digest = image.image_id.and_then(|id| id.image_digest);
                if let Some(digest) = digest {
                    let manifest = image.image_manifest.ok_or("ECR returned no manifest");
                    out.push((digest, manifest.map_err(String::from)));
                }
            }
            for failure in page.failures.unwrap_or_default() {
                if let Some(digest) = failure.image_id.and_then(|id| id.image_digest) {
                    let code = failure.failure_code.map(|c| c.as_str().to_owned());
                    let why = format!(
                        "BatchGetImage failed for it: {} {}",
                        code.unwrap_or_default(),
                        failure.failure_reason.unwrap_or_default()
                    );
                    out.push((digest, Err(why)));
                }
            }
        }
        Ok(out)
    }

    async fn recheck(&self, repository: &str, digests: &[String]) -> Result<Recheck, AwsError> {
        debug_assert!(digests.len() <= BATCH_LIMIT);
        let mut asked: Vec<String> = digests.to_vec();
        let mut gone = Vec::new();
        // One call, unless ECR says an id is gone: then that id is dropped and the rest
        // re-read, once per missing image.
        while !asked.is_empty() {
            let result = self
                .client
                .describe_images()
                .repository_name(repository)
                .set_image_ids(Some(digest_ids(&asked)))
                .send()
                .await;
            match result {
                Ok(out) => {
                    let present = out.image_details.unwrap_or_default();
                    let present = present.into_iter().filter_map(to_image).collect();
                    return Ok(Recheck { present, gone });
                }
                Err(e) if e.code() == Some("ImageNotFoundException") => {
                    let missing = e.message().and_then(missing_digest).map(str::to_owned);
                    match missing.and_then(|m| asked.iter().position(|a| *a == m)) {
                        Some(at) => gone.push(asked.remove(at)),
                        None => return Err(AwsError::from_sdk("DescribeImages", e)),
                    }
                }
                Err(e) => return Err(AwsError::from_sdk("DescribeImages", e)),
            }
        }
        Ok(Recheck {
            present: Vec::new(),
            gone,
        })
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
        debug_assert!(digests.len() <= BATCH_LIMIT);
        let ids = digest_ids(digests);
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
