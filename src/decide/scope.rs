//! Which repositories a run sweeps, and with which policy.
//!
//! Two steps, both pure: [`select`] narrows the registry's repositories to the configured
//! include/exclude globs and to the repositories an invocation asked for; then, per
//! repository, [`Policies::verdict`] reads its resource tags (when tag overrides are on) and
//! says whether to sweep it, and with which policy.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use globset::GlobSet;

use super::policy::Policy;
use crate::model::Repository;

/// Repository tag that makes the janitor leave a repository alone (`true`).
pub const SKIP_TAG: &str = "ecr-janitor:skip";
/// Repository tag that picks a named policy from `LIFECYCLE_POLICIES`.
pub const POLICY_TAG: &str = "ecr-janitor:policy";

/// Include/exclude glob patterns over repository names; exclude wins.
#[derive(Debug, Clone)]
pub struct RepositoryFilter {
    include: GlobSet,
    exclude: GlobSet,
}

impl RepositoryFilter {
    /// A filter from compiled `INCLUDE_REPOSITORIES` and `EXCLUDE_REPOSITORIES` globs.
    pub fn new(include: GlobSet, exclude: GlobSet) -> Self {
        Self { include, exclude }
    }

    /// Whether a repository of this name is swept.
    pub fn matches(&self, name: &str) -> bool {
        self.include.is_match(name) && !self.exclude.is_match(name)
    }
}

/// One of `count` disjoint parts of the registry: the repositories whose stable hash of the
/// name, modulo `count`, is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl Shard {
    /// Whether the repository called `name` falls in this shard. The hash (64-bit FNV-1a of
    /// the name) is the same on every machine and in every release, so `count` invocations
    /// cover every repository exactly once.
    pub fn contains(&self, name: &str) -> bool {
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        hash % u64::from(self.count.max(1)) == u64::from(self.index)
    }
}

/// Narrows `repositories` to those the filter matches and, when an invocation named some or
/// a shard, to those it named and to that shard.
pub fn select(
    repositories: Vec<Repository>,
    filter: &RepositoryFilter,
    requested: Option<&BTreeSet<String>>,
    shard: Option<Shard>,
) -> Vec<Repository> {
    repositories
        .into_iter()
        .filter(|r| filter.matches(&r.name))
        .filter(|r| shard.is_none_or(|s| s.contains(&r.name)))
        .filter(|r| requested.is_none_or(|wanted| wanted.contains(&r.name)))
        .collect()
}

/// The names an invocation asked for that no region has in scope (they do not exist, or
/// the filter excludes them), sorted.
pub fn not_found<'a>(
    requested: Option<&BTreeSet<String>>,
    found: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let found: BTreeSet<&str> = found.into_iter().collect();
    requested
        .into_iter()
        .flatten()
        .filter(|w| !found.contains(w.as_str()))
        .cloned()
        .collect()
}

/// Puts `repositories` (sorted) in the order a run visits them: rotated to start at a point
/// that moves with `now`, so that runs cut short by the deadline or the deletion
/// brake do not always favour the same repositories. The start is the fractional part of
/// `minutes since the epoch × the golden ratio`: whatever the schedule's period, successive
/// starting points spread evenly over the list, with no state kept between runs.
pub fn rotate<T>(repositories: &mut [T], now: DateTime<Utc>) {
    if repositories.is_empty() {
        return;
    }
    let minutes = now.timestamp().div_euclid(60) as f64;
    let spread = (minutes * GOLDEN_RATIO_FRACTION).fract();
    let start = (spread * repositories.len() as f64) as usize;
    repositories.rotate_left(start.min(repositories.len() - 1));
}

/// φ − 1: the step whose multiples modulo 1 spread most evenly.
const GOLDEN_RATIO_FRACTION: f64 = 0.618_033_988_749_894_8;

/// The configured policies: one for every repository, and named ones that repository tags
/// may pick.
#[derive(Debug, Clone)]
pub struct Policies {
    /// Applied to every repository unless its tags pick a named policy.
    pub default: Policy,
    /// Picked by a repository's `ecr-janitor:policy=<name>` tag.
    pub named: BTreeMap<String, Policy>,
    /// Whether repository resource tags are read at all (one extra call per repository).
    pub tag_overrides: bool,
}

/// What to do with one repository.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict<'p> {
    /// Sweep it with this policy.
    Sweep(&'p Policy),
    /// Leave it alone, as asked.
    Skip(SkipReason),
    /// Leave it alone because its tags are wrong; this is reported as an error.
    Refuse(Refusal),
}

/// Why a repository was skipped on purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Its `ecr-janitor:skip` tag is true.
    SkipTag {
        /// The tag's value as written.
        value: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::SkipTag { value } => write!(f, "repository tag {SKIP_TAG}={value}"),
        }
    }
}

/// Why a repository's tags make it unsafe to sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `ecr-janitor:skip` is neither true nor false.
    BadSkipTag {
        /// The tag's value as written.
        value: String,
    },
    /// `ecr-janitor:policy` names no policy in `LIFECYCLE_POLICIES`.
    UnknownPolicy {
        /// The name the tag gives.
        name: String,
        /// The names that exist.
        known: Vec<String>,
    },
}

impl Refusal {
    /// A stable code for metrics and alarms.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BadSkipTag { .. } => "InvalidSkipTag",
            Refusal::UnknownPolicy { .. } => "UnknownPolicy",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadSkipTag { value } => write!(
                f,
                "repository tag {SKIP_TAG}={value:?} is not true or false; nothing deleted"
            ),
            Refusal::UnknownPolicy { name, known } => write!(
                f,
                "repository tag {POLICY_TAG}={name:?} names no policy in LIFECYCLE_POLICIES \
                 (known: {known:?}); nothing deleted"
            ),
        }
    }
}

impl Policies {
    /// The verdict for a repository with these resource tags (empty when tags are not read).
    pub fn verdict(&self, tags: &[(String, String)]) -> Verdict<'_> {
        let tag = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        if let Some(value) = tag(SKIP_TAG) {
            let value = value.to_owned();
            match parse_bool(&value) {
                Some(true) => return Verdict::Skip(SkipReason::SkipTag { value }),
                Some(false) => {}
                None => return Verdict::Refuse(Refusal::BadSkipTag { value }),
            }
        }
        let policy = match tag(POLICY_TAG) {
            None => &self.default,
            Some(name) => match self.named.get(name) {
                Some(policy) => policy,
                None => {
                    return Verdict::Refuse(Refusal::UnknownPolicy {
                        name: name.to_owned(),
                        known: self.named.keys().cloned().collect(),
                    })
                }
            },
        };
        Verdict::Sweep(policy)
    }
}

/// The spellings of true and false ops are likely to type.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::now;

    #[test]
    fn shards_partition_the_registry() {
        let names: Vec<String> = (0..2000)
            .map(|i| format!("team-{}/svc-{i}", i % 7))
            .collect();
        for count in [1, 2, 7, 64] {
            let mut sizes = vec![0usize; count as usize];
            for name in &names {
                let owners: Vec<u32> = (0..count)
                    .filter(|&index| Shard { index, count }.contains(name))
                    .collect();
                assert_eq!(owners.len(), 1, "{name} in {count} shards: {owners:?}");
                sizes[owners[0] as usize] += 1;
            }
            let fair = names.len() / count as usize;
            assert!(sizes.iter().all(|&s| s * 2 > fair), "{count}: {sizes:?}");
        }
        // Stable across machines and releases: FNV-1a("api/orders") = 5175204143404434233.
        assert!(Shard { index: 1, count: 4 }.contains("api/orders"));
        assert!(Shard {
            index: 233,
            count: 1000
        }
        .contains("api/orders"));
    }

    #[test]
    fn successive_daily_runs_start_from_every_repository() {
        let names: Vec<Repository> = (0..24)
            .map(|i| Repository {
                name: format!("r{i:02}"),
                arn: String::new(),
            })
            .collect();
        let mut starts = BTreeSet::new();
        for day in 0..72 {
            let mut order = names.clone();
            rotate(&mut order, now() + chrono::Duration::days(day));
            let mut sorted = order.clone();
            sorted.sort_by(|a, b| a.name.cmp(&b.name));
            assert_eq!(sorted, names, "a rotation, nothing lost");
            starts.insert(order[0].name.clone());
        }
        // A daily schedule over 24 repositories: a fixed hour-based offset would start from
        // the same one every day; this one starts from all of them within 72 days.
        assert_eq!(starts.len(), 24);
    }
}
