//! Which repositories a run sweeps, and with which policy.
//!
//! Two steps, both pure: [`select`] narrows the registry's repositories to the configured
//! include/exclude globs and to the repositories an invocation asked for; then, per
//! repository, [`Policies::verdict`] reads its resource tags (when tag overrides are on) and
//! says whether to sweep it, and with which policy. The order a run visits them in starts at
//! the cursor ([`start_from`], [`resume_at`]) or, without one, at a rotation ([`rotate`]).

use std::collections::{BTreeMap, BTreeSet, HashSet};
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

/// Puts `repositories` (sorted) in the order a run without a cursor (the CLI, or a Lambda
/// whose cursor cannot be read) visits them: rotated to start at a point that moves with
/// `now`, so that runs cut short by the deadline or the deletion brake do not always favour
/// the same repositories. The start is the fractional part of
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

/// The tag key that keeps a run's cursor: one per shard, so that shards do not move each
/// other's starting point.
pub fn cursor_key(shard: Option<Shard>) -> String {
    match shard {
        None => "ecr-janitor:cursor".to_owned(),
        Some(s) => format!("ecr-janitor:cursor:{}/{}", s.index, s.count),
    }
}

/// A repository's place in the order runs visit the registry (by name, then region); the
/// cursor names the place the next run starts from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The repository's name (compared first).
    pub name: String,
    /// Its region.
    pub region: String,
}

/// The longest tag value Lambda accepts.
const MAX_TAG_VALUE_CHARS: usize = 256;

impl Position {
    /// The repository `name` in `region`.
    pub fn new(name: &str, region: &str) -> Self {
        Self {
            name: name.to_owned(),
            region: region.to_owned(),
        }
    }

    /// As a tag value, `<region>:<name>`, cut to 256 characters. A cut name is a prefix of
    /// the name, which sorts before it: a run started there revisits, never skips.
    pub fn to_tag_value(&self) -> String {
        format!("{}:{}", self.region, self.name)
            .chars()
            .take(MAX_TAG_VALUE_CHARS)
            .collect()
    }

    /// From a tag value written by [`Position::to_tag_value`]; None when it is not one.
    pub fn from_tag_value(value: &str) -> Option<Self> {
        let (region, name) = value.split_once(':')?;
        (!region.is_empty() && !name.is_empty()).then(|| Self::new(name, region))
    }
}

/// Puts `repositories` (sorted by position, which `place` gives as (name, region)) in the
/// order a run visits them: from the first at or after `cursor`, wrapping around. The
/// cursor's repository need not exist any more.
pub fn start_from<T>(
    repositories: &mut [T],
    cursor: &Position,
    place: impl Fn(&T) -> (&str, &str),
) {
    let cursor = (cursor.name.as_str(), cursor.region.as_str());
    let start = repositories.partition_point(|r| place(r) < cursor);
    repositories.rotate_left(start % repositories.len().max(1));
}

/// Where the next run starts: the first repository, in this run's `order`, that the run left
/// `unfinished` (not visited, or with deletions deferred); None when it finished them all.
pub fn resume_at<'a>(
    order: &'a [Position],
    unfinished: &HashSet<Position>,
) -> Option<&'a Position> {
    order.iter().find(|p| unfinished.contains(*p))
}

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

    fn at(name: &str, region: &str) -> Position {
        Position::new(name, region)
    }

    #[test]
    fn a_run_starts_at_the_first_repository_at_or_after_the_cursor() {
        let sorted = [
            at("a", "eu-west-1"),
            at("a", "us-east-1"),
            at("b", "us-east-1"),
            at("c", "us-east-1"),
        ];
        let cases = [
            (at("a", "eu-west-1"), "a@eu-west-1", "exactly the first"),
            (
                at("b", "us-east-1"),
                "b@us-east-1",
                "exactly one in the middle",
            ),
            (
                at("a", "us-east-1"),
                "a@us-east-1",
                "same name, the later region",
            ),
            (
                at("a", "us-west-2"),
                "b@us-east-1",
                "between regions of one name",
            ),
            (at("ab", "us-east-1"), "b@us-east-1", "a deleted repository"),
            (
                at("0", "us-east-1"),
                "a@eu-west-1",
                "before every repository",
            ),
            (
                at("d", "us-east-1"),
                "a@eu-west-1",
                "after every one: wraps around",
            ),
        ];
        for (cursor, first, why) in cases {
            let mut order = sorted.clone();
            start_from(&mut order, &cursor, |p| {
                (p.name.as_str(), p.region.as_str())
            });
            let mut again = order.clone();
            again.sort();
            assert_eq!(again, sorted, "{why}: a rotation, nothing lost");
            let got = format!("{}@{}", order[0].name, order[0].region);
            assert_eq!(got, first, "{why}");
        }
        let mut none: Vec<Position> = Vec::new();
        start_from(&mut none, &at("a", "x"), |p| {
            (p.name.as_str(), p.region.as_str())
        });
        assert!(none.is_empty());
    }

    #[test]
    fn the_cursor_tag_value_round_trips_and_a_cut_one_starts_earlier() {
        let cases = [
            (at("api/orders", "us-east-1"), "us-east-1:api/orders"),
            (at("a.b_c-d", "eu-west-1"), "eu-west-1:a.b_c-d"),
        ];
        for (position, value) in cases {
            assert_eq!(position.to_tag_value(), value);
            assert_eq!(Position::from_tag_value(value), Some(position));
        }
        // ECR allows 256-character names; Lambda 256-character tag values.
        let long = at(&format!("team/{}", "x".repeat(251)), "ap-southeast-2");
        let value = long.to_tag_value();
        assert_eq!(value.chars().count(), 256);
        let cut = Position::from_tag_value(&value).expect("still a position");
        assert!(cut < long, "the cut cursor sorts before the repository");
        let sorted = vec![
            at("team/a", "ap-southeast-2"),
            long.clone(),
            at("zz", "ap-southeast-2"),
        ];
        let mut order = sorted.clone();
        start_from(&mut order, &cut, |p| (p.name.as_str(), p.region.as_str()));
        assert_eq!(
            order[0], long,
            "nothing between the cut value and the name is skipped"
        );
        for bad in ["", "us-east-1", ":name", "us-east-1:"] {
            assert_eq!(Position::from_tag_value(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn each_shard_has_its_own_cursor_key_within_lambdas_tag_rules() {
        let cases = [
            (None, "ecr-janitor:cursor"),
            (Some(Shard { index: 3, count: 8 }), "ecr-janitor:cursor:3/8"),
            (
                Some(Shard {
                    index: 999,
                    count: 1000,
                }),
                "ecr-janitor:cursor:999/1000",
            ),
        ];
        for (shard, key) in cases {
            assert_eq!(cursor_key(shard), key);
            assert!(key.len() <= 128);
            let allowed = |c: char| c.is_ascii_alphanumeric() || "_.:/=+-@ ".contains(c);
            assert!(key.chars().all(allowed), "{key}");
        }
    }

    #[test]
    fn the_next_run_resumes_at_the_first_unfinished_repository_of_this_runs_order() {
        let order = [at("c", "r"), at("d", "r"), at("a", "r"), at("b", "r")];
        let set =
            |names: &[&str]| -> HashSet<Position> { names.iter().map(|n| at(n, "r")).collect() };
        let cases = [
            (set(&[]), None),
            (set(&["a", "b"]), Some(at("a", "r"))),
            (set(&["b", "d"]), Some(at("d", "r"))),
            (set(&["c"]), Some(at("c", "r"))),
        ];
        for (unfinished, expected) in cases {
            assert_eq!(
                resume_at(&order, &unfinished),
                expected.as_ref(),
                "{unfinished:?}"
            );
        }
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
