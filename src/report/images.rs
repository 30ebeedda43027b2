//! Per-image entries of a report: what was expired or kept, and why.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::table;
use crate::decide::plan::{Decided, Plan};

/// An image and why the plan decided as it did; the part expired and kept entries share.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    /// Image digest (`sha256:…`).
    pub image_digest: String,
    /// Tags the image had when planned.
    pub image_tags: Vec<String>,
    /// When it was pushed.
    pub image_pushed_at: DateTime<Utc>,
    /// ECR's reported size, when known.
    pub image_size_in_bytes: Option<i64>,
    /// Human-readable reason.
    pub reason: String,
}

impl From<Decided<'_>> for ImageEntry {
    fn from(d: Decided<'_>) -> Self {
        Self {
            image_digest: d.image.digest.to_string(),
            image_tags: d.image.tags.clone(),
            image_pushed_at: d.image.pushed_at,
            image_size_in_bytes: d.image.size_bytes,
            reason: d.reason.to_string(),
        }
    }
}

/// An image the plan expires, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiredImage {
    /// The image and the reason.
    #[serde(flatten)]
    pub image: ImageEntry,
    /// The rule that expired it, as in ECR's lifecycle preview.
    pub applied_rule_priority: Option<u32>,
}

/// An image the plan keeps, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptImage {
    /// The image and the reason.
    #[serde(flatten)]
    pub image: ImageEntry,
    /// The rule that claimed it, or null when no rule selected it.
    pub rule_priority: Option<u32>,
}

impl From<Decided<'_>> for ExpiredImage {
    fn from(d: Decided<'_>) -> Self {
        Self {
            image: d.into(),
            applied_rule_priority: d.rule_priority(),
        }
    }
}

impl From<Decided<'_>> for KeptImage {
    fn from(d: Decided<'_>) -> Self {
        Self {
            image: d.into(),
            rule_priority: d.rule_priority(),
        }
    }
}

impl KeptImage {
    /// An image the plan expires that the run did not delete after all, and `why`.
    pub fn held_back(d: Decided<'_>, why: &str) -> Self {
        let mut kept = Self::from(d);
        kept.image.reason = format!("held back: {why}");
        kept
    }
}

/// A plan, per image, as `ecr-janitor plan` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanReport {
    /// Images that expire, oldest first.
    pub expired: Vec<ExpiredImage>,
    /// Images that stay, oldest first.
    pub kept: Vec<KeptImage>,
    /// What a sweep would do differently (e.g. a brake that would hold the repository back).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl From<&Plan> for PlanReport {
    fn from(plan: &Plan) -> Self {
        Self {
            expired: plan
                .with_images(&plan.expired)
                .map(ExpiredImage::from)
                .collect(),
            kept: plan.with_images(&plan.kept).map(KeptImage::from).collect(),
            notes: Vec::new(),
        }
    }
}

impl PlanReport {
    /// A fixed-width table for people: one line per image, expired first.
    pub fn to_table(&self) -> String {
        let header = ["ACTION", "RULE", "PUSHED", "DIGEST", "TAGS", "REASON"];
        let row = |action: &str, rule: Option<u32>, e: &ImageEntry| {
            vec![
                action.to_owned(),
                rule.map_or_else(|| "-".to_owned(), |r| r.to_string()),
                e.image_pushed_at.format("%Y-%m-%d %H:%M").to_string(),
                short_digest(&e.image_digest).to_owned(),
                if e.image_tags.is_empty() {
                    "<untagged>".to_owned()
                } else {
                    e.image_tags.join(",")
                },
                e.reason.clone(),
            ]
        };
        let rows = self
            .expired
            .iter()
            .map(|e| row("expire", e.applied_rule_priority, &e.image))
            .chain(
                self.kept
                    .iter()
                    .map(|k| row("keep", k.rule_priority, &k.image)),
            );
        let mut out = table::render(&header, rows);
        out.push_str(&format!(
            "{} expired, {} kept\n",
            self.expired.len(),
            self.kept.len()
        ));
        for note in &self.notes {
            out.push_str(&format!("note: {note}\n"));
        }
        out
    }
}

/// `sha256:0123456789ab…` → the first 12 hex digits, as `docker images` shows them.
fn short_digest(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    hex.get(..12).unwrap_or(hex)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_digests() {
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short_digest("abc"), "abc");
    }
}
