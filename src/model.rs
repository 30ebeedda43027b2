//! The domain: repositories and images as the janitor sees them, free of any SDK type.
//!
//! The AWS adapters build these; the pure core ([`crate::decide`]) decides on them; the report
//! shows them.

use std::borrow::Cow;

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
    pub manifest_media_type: Option<MediaType>,
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
            subject: None,
        }
    }
}

/// A manifest media type. The few types ECR stores are shared constants rather than one
/// string per image: a repository of 100,000 images would otherwise hold 100,000 copies.
pub type MediaType = Cow<'static, str>;

/// Manifest media types ECR stores, shared by every image that has one of them.
const KNOWN_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// `media_type` as a [`MediaType`]: a shared constant when it is a known one.
pub fn media_type(media_type: String) -> MediaType {
    match KNOWN_MEDIA_TYPES.iter().find(|known| **known == media_type) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(media_type),
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

/// An image something runs or is about to run (an ECS task or service, a Lambda function
/// version): the janitor protects it from deletion.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageUse {
    /// The image reference as the service gives it, e.g.
    /// `123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api:v3` or `…/team/api@sha256:…`.
    pub reference: String,
    /// The image's digest when the service resolved it or the reference pins it; None for a
    /// reference by tag, which protects whatever image holds the tag.
    pub digest: Option<String>,
    /// Who uses the image, for the report, e.g. `ECS task prod/0123abcd`,
    /// `ECS service prod/api`, `Lambda function worker:3`.
    pub user: String,
}

impl ImageUse {
    /// A use of `reference` by `user`. The digest is `resolved` when the service gave one,
    /// else the one a `…@sha256:…` reference pins, else None.
    pub fn new(reference: String, resolved: Option<String>, user: String) -> Self {
        let digest = resolved.or_else(|| Self::pinned_digest(&reference).map(str::to_owned));
        Self {
            reference,
            digest,
            user,
        }
    }

    /// The digest a `…@sha256:…` reference pins; None for a reference by tag.
    pub fn pinned_digest(reference: &str) -> Option<&str> {
        reference
            .rsplit_once('@')
            .map(|(_, digest)| digest)
            .filter(|digest| digest.starts_with("sha256:"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_media_types_are_shared_and_others_kept_as_given() {
        let oci = "application/vnd.oci.image.index.v1+json";
        assert!(matches!(media_type(oci.to_owned()), Cow::Borrowed(t) if t == oci));
        let other = "application/vnd.example+json";
        assert!(matches!(media_type(other.to_owned()), Cow::Owned(t) if t == other));
    }
}
