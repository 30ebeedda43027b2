//! The domain: repositories and images as the janitor sees them, free of any SDK type.
//!
//! The AWS adapters build these; the pure core ([`crate::decide`]) decides on them; the report
//! shows them.

use chrono::{DateTime, Utc};

/// A repository the janitor may visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    /// Repository name, e.g. `team-a/web`.
    pub name: String,
    /// Repository ARN, used to read its resource tags.
    pub arn: String,
}

/// One image in a repository: what the decision needs, and what the report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Identifies the image; unique within a repository.
    pub digest: String,
    /// Empty for an untagged image.
    pub tags: Vec<String>,
    /// What age and count limits measure.
    pub pushed_at: DateTime<Utc>,
    /// For reports of space reclaimed; not used in the decision.
    pub size_bytes: Option<i64>,
    /// `imageManifestMediaType`: tells an image index (whose children must be read) from a
    /// single manifest.
    pub manifest_media_type: Option<String>,
    /// `artifactMediaType`: what the manifest carries (an image config, a signature, an SBOM).
    pub artifact_media_type: Option<String>,
    /// `subjectManifestDigest`: the image an OCI referrer (signature, SBOM) describes.
    pub subject: Option<String>,
}

impl Image {
    /// An image with no media types or subject: a plain single-manifest image.
    pub fn plain(digest: &str, tags: Vec<String>, pushed_at: DateTime<Utc>) -> Self {
        Self {
            digest: digest.to_owned(),
            tags,
            pushed_at,
            size_bytes: None,
            manifest_media_type: None,
            artifact_media_type: None,
            subject: None,
        }
    }
}

/// One image ECR refused to delete, as ECR reported it: data, not an error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageFailure {
    /// The image's digest; None only when ECR's failure names no digest (the janitor always
    /// deletes by digest, so ECR echoes it back).
    pub image_digest: Option<String>,
    /// ECR's failure code, e.g. `ImageReferencedByManifestList`.
    pub failure_code: String,
    /// ECR's explanation.
    pub failure_reason: String,
}
