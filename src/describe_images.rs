//! Reads what `aws ecr describe-images` prints, for offline planning.
//!
//! AWS CLI v2 prints `imagePushedAt` as an ISO-8601 string, v1 as epoch seconds; both are
//! accepted. Fields the planner does not use are ignored.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::Image;

/// Why an images file could not be read.
#[derive(Debug, thiserror::Error)]
#[error("not the JSON of `aws ecr describe-images` ({{\"imageDetails\": [...]}}): {0}")]
pub struct DescribeImagesError(String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    image_details: Vec<Detail>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Detail {
    image_digest: String,
    #[serde(default)]
    image_tags: Vec<String>,
    image_pushed_at: PushedAt,
    image_size_in_bytes: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PushedAt {
    Text(String),
    Epoch(f64),
}

impl PushedAt {
    fn to_utc(&self, digest: &str) -> Result<DateTime<Utc>, DescribeImagesError> {
        let parsed = match self {
            PushedAt::Text(s) => DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok(),
            PushedAt::Epoch(secs) if secs.is_finite() => {
                let whole = secs.floor();
                let nanos = ((secs - whole) * 1e9).round().min(999_999_999.0) as u32;
                DateTime::<Utc>::from_timestamp(whole as i64, nanos)
            }
            PushedAt::Epoch(_) => None,
        };
        parsed.ok_or_else(|| {
            DescribeImagesError(format!(
                "image {digest}: imagePushedAt is neither an ISO-8601 time nor epoch seconds"
            ))
        })
    }
}

/// Parses the text of a describe-images output into images.
pub fn parse(text: &str) -> Result<Vec<Image>, DescribeImagesError> {
    let output: Output =
        serde_json::from_str(text).map_err(|e| DescribeImagesError(e.to_string()))?;
    output
        .image_details
        .into_iter()
        .map(|d| {
            Ok(Image {
                pushed_at: d.image_pushed_at.to_utc(&d.image_digest)?,
                digest: d.image_digest.into(),
                tags: d.image_tags,
                size_bytes: d.image_size_in_bytes,
                manifest_media_type: None,
                subject: None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_v2_and_v1_timestamps() {
        let text = r#"{"imageDetails": [
            {"registryId": "123456789012", "repositoryName": "web", "imageDigest": "sha256:aa",
             "imageTags": ["latest"], "imageSizeInBytes": 1024,
             "imagePushedAt": "2026-11-01T10:00:00.500000+01:00",
             "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"},
            {"imageDigest": "sha256:bb", "imagePushedAt": 1761991200.25}
        ]}"#;
        let images = parse(text).expect("valid");
        assert_eq!(images.len(), 2);
        assert_eq!(
            images[0].pushed_at.to_rfc3339(),
            "2026-11-01T09:00:00.500+00:00"
        );
        assert_eq!(images[0].tags, ["latest"]);
        assert_eq!(images[0].size_bytes, Some(1024));
        assert_eq!(
            images[1].pushed_at.to_rfc3339(),
            "2025-11-01T10:00:00.250+00:00"
        );
        assert!(images[1].tags.is_empty());
        assert_eq!(images[1].size_bytes, None);
    }

    #[test]
    fn bad_files_are_refused() {
        for text in [
            "",
            "[]",
            r#"{"images": []}"#,
            r#"{"imageDetails": [{"imageDigest": "sha256:aa"}]}"#,
            r#"{"imageDetails": [{"imageDigest": "sha256:aa", "imagePushedAt": "yesterday"}]}"#,
        ] {
            assert!(parse(text).is_err(), "{text:?} should be refused");
        }
    }
}
