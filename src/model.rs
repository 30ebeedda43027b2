//! The domain: repositories and images as the janitor sees them, free of any SDK type.
//!
//! The AWS adapters build these; the pure core ([`crate::decide`]) decides on them; the report
//! shows them.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

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
    pub digest: Digest,
    /// Empty for an untagged image.
    pub tags: Vec<String>,
    /// What age and count limits measure.
    pub pushed_at: DateTime<Utc>,
    /// For reports of space reclaimed; not used in the decision.
    pub size_bytes: Option<i64>,
    /// `imageManifestMediaType`: tells an image index (whose children must be read) from a
    /// single manifest.
    pub manifest_media_type: Option<MediaType>,
    /// `subjectManifestDigest`: the image an OCI referrer (signature, SBOM) describes. Boxed:
    /// most images have none, and every image pays for the field.
    pub subject: Option<Box<Digest>>,
}

impl Image {
    /// An image with no media types or subject: a plain single-manifest image.
    pub fn plain(digest: &str, tags: Vec<String>, pushed_at: DateTime<Utc>) -> Self {
        Self {
            digest: Digest::from(digest),
            tags,
            pushed_at,
            size_bytes: None,
            manifest_media_type: None,
            subject: None,
        }
    }
}

/// An image digest. ECR's `sha256:` and 64 hex digits are kept as their 32 bytes, inline:
/// a repository's digests are most of what the janitor holds in memory, and a string each
/// would cost three times as much. Anything else is kept as given. Displays, orders and
/// serializes as the text ECR sent.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Digest {
    /// `sha256:<64 lowercase hex digits>`, as bytes.
    Sha256([u8; 32]),
    /// Any other digest text (tests, other algorithms), as given.
    Other(Box<str>),
}

impl Digest {
    /// The 32 bytes of `sha256:<64 lowercase hex>`; None for any other text, so that the
    /// digest displays exactly as given.
    fn sha256(text: &str) -> Option<[u8; 32]> {
        let hex = text.strip_prefix("sha256:")?.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let nibble = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
        }
        Some(bytes)
    }
}

impl From<&str> for Digest {
    fn from(text: &str) -> Self {
        match Self::sha256(text) {
            Some(bytes) => Digest::Sha256(bytes),
            None => Digest::Other(text.into()),
        }
    }
}

impl From<String> for Digest {
    fn from(text: String) -> Self {
        match Self::sha256(&text) {
            Some(bytes) => Digest::Sha256(bytes),
            None => Digest::Other(text.into_boxed_str()),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Digest::Sha256(bytes) => {
                // One write of the whole text: a `{:02x}` per byte made formatting a third
                // of a large sweep's delete phase (each id is written as text for ECR and
                // the report).
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let mut text =
                    *b"sha256:0000000000000000000000000000000000000000000000000000000000000000";
                for (pair, byte) in text[7..].chunks_exact_mut(2).zip(bytes) {
                    pair[0] = HEX[usize::from(byte >> 4)];
                    pair[1] = HEX[usize::from(byte & 0xf)];
                }
                // Only ASCII was written.
                f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
            }
            Digest::Other(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl Ord for Digest {
    /// The order of the text: for two sha256 digests, that of their bytes.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Digest::Sha256(a), Digest::Sha256(b)) => a.cmp(b),
            (Digest::Other(a), Digest::Other(b)) => a.cmp(b),
            _ => self.to_string().cmp(&other.to_string()),
        }
    }
}

impl PartialOrd for Digest {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq<str> for Digest {
    fn eq(&self, other: &str) -> bool {
        match self {
            Digest::Sha256(bytes) => Self::sha256(other).as_ref() == Some(bytes),
            Digest::Other(text) => &**text == other,
        }
    }
}

impl PartialEq<&str> for Digest {
    fn eq(&self, other: &&str) -> bool {
        self == *other
    }
}

impl PartialEq<String> for Digest {
    fn eq(&self, other: &String) -> bool {
        self == other.as_str()
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A manifest media type. The few types ECR stores are shared constants rather than one
/// string per image: a repository of 100,000 images would otherwise hold 100,000 copies.
pub type MediaType = Cow<'static, str>;

/// An OCI image index (multi-platform image, buildx output), whose children must be read.
pub const OCI_IMAGE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// A Docker manifest list, the older form of an image index.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifest media types ECR stores, shared by every image that has one of them.
const KNOWN_MEDIA_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    OCI_IMAGE_INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    DOCKER_MANIFEST_LIST,
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
    fn sha256_digests_are_bytes_that_read_back_as_given() {
        // Every hex digit in both halves of a byte.
        for hex in ["0123456789abcdef", "fedcba9876543210"] {
            let text = format!("sha256:{}", hex.repeat(4));
            let digest = Digest::from(text.as_str());
            assert!(matches!(digest, Digest::Sha256(_)));
            assert_eq!(digest.to_string(), text);
            assert_eq!(
                serde_json::to_string(&digest).unwrap(),
                format!("\"{text}\"")
            );
            assert_eq!(digest, text.as_str());
        }
        for other in [
            "sha256:abc",
            "sha512:00",
            &format!("sha256:{}", "0123456789ABCDEF".repeat(4)),
            &format!("sha256:{}g", "0".repeat(63)),
        ] {
            let digest = Digest::from(other);
            assert!(matches!(digest, Digest::Other(_)), "{other}");
            assert_eq!(digest.to_string(), other);
        }
    }

    #[test]
    fn digests_order_as_their_text() {
        let texts = [
            format!("sha256:{}", "0".repeat(64)),
            format!("sha256:{}", "f".repeat(64)),
            format!("sha256:{}1", "0".repeat(63)),
            "sha256:beef".to_owned(),
            "sha1:00".to_owned(),
        ];
        for a in &texts {
            for b in &texts {
                let (x, y) = (Digest::from(a.as_str()), Digest::from(b.as_str()));
                assert_eq!(x.cmp(&y), a.cmp(b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn known_media_types_are_shared_and_others_kept_as_given() {
        let oci = "application/vnd.oci.image.index.v1+json";
        assert!(matches!(media_type(oci.to_owned()), Cow::Borrowed(t) if t == oci));
        let other = "application/vnd.example+json";
        assert!(matches!(media_type(other.to_owned()), Cow::Owned(t) if t == other));
    }
}
