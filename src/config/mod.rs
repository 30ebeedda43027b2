//! Environment variables → typed, validated configuration.
//!
//! Read once at cold start. Every bad variable is collected and named in one
//! [`ConfigError`], so ops fix them all in one deploy; an invalid configuration
//! stops the run before any ECR call. Tests pass a lookup closure instead of
//! touching the process environment.

use std::collections::BTreeMap;
use std::fmt;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::aws::functions::LambdaVersions;
use crate::decide::policy::Policy;
use crate::decide::scope::{Policies, RepositoryFilter};

mod env;

use env::Env;

/// Default for `UNTAGGED_MAX_AGE_DAYS`.
pub const DEFAULT_UNTAGGED_MAX_AGE_DAYS: u32 = 14;
/// Default for `MAX_CONCURRENCY`.
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;
/// Upper bound for `MAX_CONCURRENCY`: beyond this ECR throttles more than it helps.
pub const MAX_MAX_CONCURRENCY: usize = 64;
/// Default for `MAX_DELETIONS_PER_RUN`.
pub const DEFAULT_MAX_DELETIONS_PER_RUN: u64 = 10_000;
/// Default for `MAX_TAGGED_DELETE_PERCENT`.
pub const DEFAULT_MAX_TAGGED_DELETE_PERCENT: u32 = 50;

/// The janitor's settings, as ops set them through environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// `DRY_RUN`: read only by [`crate::run::RunOptions::resolve`], the one place that decides
    /// whether a run deletes.
    pub dry_run: bool,
    /// `REGIONS`: the regions to sweep; empty means the function's own region.
    pub regions: Vec<String>,
    /// Everything else a sweep needs.
    pub sweep: Settings,
}

/// What a sweep needs from the configuration. It has no dry-run flag: whether a run deletes
/// is the run options' to say.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The default and named policies, and whether repository tags pick them.
    pub policies: Policies,
    /// Which repositories are swept at all.
    pub repositories: RepositoryFilter,
    /// Repositories processed at once.
    pub max_concurrency: usize,
    /// Which users of images are looked up, so their images are never deleted.
    pub in_use: InUseLookup,
    /// Limits on how much one run may delete.
    pub brakes: Brakes,
}

/// `PROTECT_IN_USE` and `PROTECT_LAMBDA_VERSIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InUseLookup {
    /// Running and about-to-run ECS tasks, and the task definitions of service deployments.
    pub ecs: bool,
    /// Lambda functions packaged as images.
    pub lambda: bool,
    /// Every published version (`all`), or only `$LATEST` and the versions aliases point to.
    pub lambda_versions: LambdaVersions,
}

/// `MAX_DELETIONS_PER_RUN` and `MAX_TAGGED_DELETE_PERCENT`; None is `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brakes {
    /// Once a run has sent this many images for deletion, the rest wait for the next run.
    pub max_deletions_per_run: Option<u64>,
    /// A repository whose plan would delete more than this share of its tagged images is
    /// left untouched.
    pub max_tagged_delete_percent: Option<u32>,
}

/// One bad variable and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The environment variable at fault.
    pub variable: &'static str,
    /// What is wrong and what the variable accepts.
    pub message: String,
}

/// Every configuration problem found, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// One entry per problem, in a stable order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration, nothing was done:")?;
        for p in &self.problems {
            // Nested lists (a policy's problems) are indented under their variable.
            let message = p.message.replace('\n', "\n    ");
            write!(f, "\n  - {}: {message}", p.variable)?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup` (variable name → value). An empty value counts
    /// as unset, because SAM passes empty template parameters as empty variables.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let default = default_policy(&mut env);
        let dry_run = env.bool("DRY_RUN", true);
        let tag_overrides = env.bool("REPOSITORY_TAG_OVERRIDES", false);
        let named = named_policies(&mut env, tag_overrides);
        let repositories = repository_filter(&mut env);
        let max_concurrency = env.parse(
            "MAX_CONCURRENCY",
            DEFAULT_MAX_CONCURRENCY,
            DEFAULT_MAX_CONCURRENCY,
            parse_concurrency,
        );
        let in_use = in_use_lookup(&mut env);
        let brakes = brakes(&mut env);
        let regions = env.parse("REGIONS", Vec::new(), Vec::new(), parse_regions);
        let problems = env.into_problems();
        match default {
            Some(default) if problems.is_empty() => Ok(Config {
                dry_run,
                regions,
                sweep: Settings {
                    policies: Policies {
                        default,
                        named,
                        tag_overrides,
                    },
                    repositories,
                    max_concurrency,
                    in_use,
                    brakes,
                },
            }),
            _ => Err(ConfigError { problems }),
        }
    }
}

/// `LIFECYCLE_POLICY`, or the policy of the `UNTAGGED_*` shorthand; None when neither is usable.
fn default_policy<L: Fn(&str) -> Option<String>>(env: &mut Env<L>) -> Option<Policy> {
    let max_age = env.parse(
        "UNTAGGED_MAX_AGE_DAYS",
        Some(DEFAULT_UNTAGGED_MAX_AGE_DAYS),
        None,
        |v| {
            parse_limit(v, true).map_err(|e| {
                format!(
                    "{e}; expected a whole number of days ≥ 1, or 0/off to disable the age limit"
                )
            })
        },
    );
    let max_count = env.parse("UNTAGGED_MAX_COUNT", None, None, |v| {
        parse_limit(v, false).map_err(|e| {
            format!("{e}; expected a whole number of images ≥ 1, or off for no count limit")
        })
    });
    let shorthand_set =
        env.text("UNTAGGED_MAX_AGE_DAYS").is_some() || env.text("UNTAGGED_MAX_COUNT").is_some();
    let Some(text) = env.text("LIFECYCLE_POLICY") else {
        let policy = Policy::untagged(max_age, max_count);
        let limits_valid =
            !env.has_problem("UNTAGGED_MAX_AGE_DAYS") && !env.has_problem("UNTAGGED_MAX_COUNT");
        if policy.is_none() && limits_valid {
            env.problem(
                "UNTAGGED_MAX_AGE_DAYS",
                "the age limit is off and UNTAGGED_MAX_COUNT is unset: at least one limit \
                 must remain (or set LIFECYCLE_POLICY)",
            );
        }
        return policy;
    };
    if shorthand_set {
        env.problem(
            "LIFECYCLE_POLICY",
            "is set together with UNTAGGED_MAX_AGE_DAYS/UNTAGGED_MAX_COUNT; the policy \
             replaces them, so set one or the other",
        );
    }
    Policy::from_json(&text)
        .map_err(|e| env.problem("LIFECYCLE_POLICY", e.to_string()))
        .ok()
}

/// `LIFECYCLE_POLICIES`, which only repository tags can pick.
fn named_policies<L: Fn(&str) -> Option<String>>(
    env: &mut Env<L>,
    tag_overrides: bool,
) -> BTreeMap<String, Policy> {
    if env.text("LIFECYCLE_POLICIES").is_some() && !tag_overrides {
        env.problem(
            "LIFECYCLE_POLICIES",
            "named policies are picked by repository tags, which are only read when \
             REPOSITORY_TAG_OVERRIDES=true",
        );
    }
    env.parse(
        "LIFECYCLE_POLICIES",
        BTreeMap::new(),
        BTreeMap::new(),
        parse_named_policies,
    )
}

/// `INCLUDE_REPOSITORIES` (default `*`) and `EXCLUDE_REPOSITORIES`.
fn repository_filter<L: Fn(&str) -> Option<String>>(env: &mut Env<L>) -> RepositoryFilter {
    // `*` always compiles; were it not to, an empty set would sweep nothing.
    let everything = parse_globs("*").unwrap_or_else(|_| GlobSet::empty());
    let include = env.parse(
        "INCLUDE_REPOSITORIES",
        everything,
        GlobSet::empty(),
        parse_globs,
    );
    let exclude = env.parse(
        "EXCLUDE_REPOSITORIES",
        GlobSet::empty(),
        GlobSet::empty(),
        parse_globs,
    );
    RepositoryFilter::new(include, exclude)
}

/// `PROTECT_IN_USE` (a comma list of `ecs`, `lambda`, or `none`) and
/// `PROTECT_LAMBDA_VERSIONS` (`all` or `aliased`).
fn in_use_lookup<L: Fn(&str) -> Option<String>>(env: &mut Env<L>) -> InUseLookup {
    let everything = (true, true);
    let (ecs, lambda) = env.parse("PROTECT_IN_USE", everything, everything, |v| {
        let bad =
            || format!("{v:?} is not accepted; expected a comma list of ecs, lambda, or none");
        if v.eq_ignore_ascii_case("none") {
            return Ok((false, false));
        }
        let mut chosen = (false, false);
        for item in v.split(',').map(|i| i.trim().to_ascii_lowercase()) {
            match item.as_str() {
                "ecs" => chosen.0 = true,
                "lambda" => chosen.1 = true,
                _ => return Err(bad()),
            }
        }
        Ok(chosen)
    });
    let all = LambdaVersions::All;
    let lambda_versions = env.parse("PROTECT_LAMBDA_VERSIONS", all, all, |v| {
        match v.to_ascii_lowercase().as_str() {
            "all" => Ok(LambdaVersions::All),
            "aliased" => Ok(LambdaVersions::Aliased),
            _ => Err(format!("{v:?} is not accepted; expected all or aliased")),
        }
    });
    InUseLookup {
        ecs,
        lambda,
        lambda_versions,
    }
}

/// `MAX_DELETIONS_PER_RUN` (N ≥ 1 or `off`) and `MAX_TAGGED_DELETE_PERCENT` (0–100 or `off`).
fn brakes<L: Fn(&str) -> Option<String>>(env: &mut Env<L>) -> Brakes {
    let default = Some(DEFAULT_MAX_DELETIONS_PER_RUN);
    let max_deletions_per_run = env.parse("MAX_DELETIONS_PER_RUN", default, default, |v| {
        match v.parse::<u64>() {
            _ if v.eq_ignore_ascii_case("off") => Ok(None),
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(format!(
                "{v:?} is not accepted; expected a whole number of images ≥ 1, or off"
            )),
        }
    });
    let default = Some(DEFAULT_MAX_TAGGED_DELETE_PERCENT);
    let max_tagged_delete_percent = env.parse("MAX_TAGGED_DELETE_PERCENT", default, default, |v| {
        match v.parse::<u32>() {
            _ if v.eq_ignore_ascii_case("off") => Ok(None),
            Ok(n) if n <= 100 => Ok(Some(n)),
            _ => Err(format!(
                "{v:?} is not accepted; expected a whole percentage from 0 to 100, or off"
            )),
        }
    });
    Brakes {
        max_deletions_per_run,
        max_tagged_delete_percent,
    }
}

/// The AWS regions with ECR, by name: a misspelt region would otherwise be swept as an
/// empty registry, silently.
const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// `REGIONS`: a comma list of region names, each known, each once.
fn parse_regions(text: &str) -> Result<Vec<String>, String> {
    let mut regions: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim) {
        if !KNOWN_REGIONS.contains(&name) {
            return Err(format!(
                "{name:?} is not an AWS region with ECR; expected a comma list such as \
                 us-east-1,eu-west-1"
            ));
        }
        if !regions.iter().any(|r| r == name) {
            regions.push(name.to_owned());
        }
    }
    Ok(regions)
}

/// `MAX_CONCURRENCY`: 1 to [`MAX_MAX_CONCURRENCY`].
fn parse_concurrency(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if (1..=MAX_MAX_CONCURRENCY).contains(&n) => Ok(n),
        _ => Err(format!(
            "{v:?} is not accepted; expected a whole number from 1 to {MAX_MAX_CONCURRENCY}"
        )),
    }
}

/// `0`/`off` → no limit (only where `zero_disables`), `N ≥ 1` → `Some(N)`.
fn parse_limit(text: &str, zero_disables: bool) -> Result<Option<u32>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(0) if zero_disables => Ok(None),
        Ok(0) => Err(format!("{text:?} is not accepted")),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}

/// Comma-separated glob patterns; `*` matches any characters including `/`.
fn parse_globs(text: &str) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for (i, raw) in text.split(',').enumerate() {
        let pattern = raw.trim();
        if pattern.is_empty() {
            return Err(format!(
                "{text:?} has an empty pattern at position {}; expected comma-separated glob \
                 patterns such as team-a/*,base-images",
                i + 1
            ));
        }
        let glob = Glob::new(pattern)
            .map_err(|e| format!("pattern {pattern:?} is not a valid glob: {e}"))?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| format!("{text:?} could not be compiled: {e}"))
}

/// A JSON object of name → ECR lifecycle policy (as an object or as policy text).
fn parse_named_policies(text: &str) -> Result<BTreeMap<String, Policy>, String> {
    let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text).map_err(|e| {
        format!("is not a JSON object of policy name → lifecycle policy document: {e}")
    })?;
    if map.is_empty() {
        return Err("names no policy; expected at least one name → policy entry".into());
    }
    map.into_iter()
        .map(|(name, value)| {
            if name.trim().is_empty() {
                return Err("has an empty policy name".to_owned());
            }
            let text = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            Policy::from_json(&text)
                .map(|p| (name.clone(), p))
                .map_err(|e| format!("policy {name:?}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{load, Vars};

    fn bad_vars(vars: Vars) -> Vec<&'static str> {
        match load(vars) {
            Ok(_) => panic!("expected a configuration error for {vars:?}"),
            Err(e) => {
                let mut vars: Vec<_> = e.problems.iter().map(|p| p.variable).collect();
                vars.dedup();
                vars
            }
        }
    }

    #[test]
    fn defaults_are_safe() {
        let c = load(&[]).expect("defaults are valid");
        assert!(c.dry_run, "dry run is the default");
        assert_eq!(c.sweep.max_concurrency, 8);
        assert!(!c.sweep.policies.tag_overrides);
        assert_eq!(
            c.sweep.policies.default,
            Policy::untagged(Some(14), None).expect("policy")
        );
        assert!(c.sweep.repositories.matches("any/thing"));
    }

    #[test]
    fn valid_values() {
        let cases: &[(Vars, Option<u32>, Option<u32>, bool)] = &[
            (&[("UNTAGGED_MAX_AGE_DAYS", "30")], Some(30), None, true),
            (&[("UNTAGGED_MAX_AGE_DAYS", " 7 ")], Some(7), None, true),
            (
                &[("UNTAGGED_MAX_AGE_DAYS", "0"), ("UNTAGGED_MAX_COUNT", "5")],
                None,
                Some(5),
                true,
            ),
            (
                &[
                    ("UNTAGGED_MAX_AGE_DAYS", "OFF"),
                    ("UNTAGGED_MAX_COUNT", "1"),
                ],
                None,
                Some(1),
                true,
            ),
            (
                &[("UNTAGGED_MAX_COUNT", "3"), ("DRY_RUN", "false")],
                Some(14),
                Some(3),
                false,
            ),
            (
                &[("UNTAGGED_MAX_COUNT", "off"), ("DRY_RUN", "TRUE")],
                Some(14),
                None,
                true,
            ),
            (
                &[("UNTAGGED_MAX_COUNT", ""), ("DRY_RUN", "no")],
                Some(14),
                None,
                false,
            ),
            (&[("DRY_RUN", "")], Some(14), None, true),
        ];
        for (vars, age, count, dry_run) in cases {
            let c = load(vars).unwrap_or_else(|e| panic!("{vars:?}: {e}"));
            assert_eq!(
                c.sweep.policies.default,
                Policy::untagged(*age, *count).expect("policy"),
                "{vars:?}"
            );
            assert_eq!(c.dry_run, *dry_run, "{vars:?}");
        }
    }

    #[test]
    fn each_bad_value_is_named() {
        let cases: &[(Vars, &[&str])] = &[
            (
                &[("UNTAGGED_MAX_AGE_DAYS", "abc")],
                &["UNTAGGED_MAX_AGE_DAYS"],
            ),
            (
                &[("UNTAGGED_MAX_AGE_DAYS", "-1")],
                &["UNTAGGED_MAX_AGE_DAYS"],
            ),
            (
                &[("UNTAGGED_MAX_AGE_DAYS", "1.5")],
                &["UNTAGGED_MAX_AGE_DAYS"],
            ),
            (&[("UNTAGGED_MAX_COUNT", "0")], &["UNTAGGED_MAX_COUNT"]),
            (&[("UNTAGGED_MAX_COUNT", "many")], &["UNTAGGED_MAX_COUNT"]),
            (
                &[("UNTAGGED_MAX_AGE_DAYS", "off")],
                &["UNTAGGED_MAX_AGE_DAYS"],
            ),
            (
                &[
                    ("UNTAGGED_MAX_AGE_DAYS", "0"),
                    ("UNTAGGED_MAX_COUNT", "off"),
                ],
                &["UNTAGGED_MAX_AGE_DAYS"],
            ),
            (&[("DRY_RUN", "maybe")], &["DRY_RUN"]),
            (
                &[("INCLUDE_REPOSITORIES", "a,,b")],
                &["INCLUDE_REPOSITORIES"],
            ),
            (
                &[("INCLUDE_REPOSITORIES", "a, ")],
                &["INCLUDE_REPOSITORIES"],
            ),
            (&[("EXCLUDE_REPOSITORIES", ",")], &["EXCLUDE_REPOSITORIES"]),
            (&[("EXCLUDE_REPOSITORIES", "a[")], &["EXCLUDE_REPOSITORIES"]),
            (&[("MAX_CONCURRENCY", "0")], &["MAX_CONCURRENCY"]),
            (&[("MAX_CONCURRENCY", "65")], &["MAX_CONCURRENCY"]),
            (&[("MAX_CONCURRENCY", "x")], &["MAX_CONCURRENCY"]),
            (
                &[("REPOSITORY_TAG_OVERRIDES", "sometimes")],
                &["REPOSITORY_TAG_OVERRIDES"],
            ),
            (&[("LIFECYCLE_POLICY", "{not json")], &["LIFECYCLE_POLICY"]),
            (
                &[("LIFECYCLE_POLICY", r#"{"rules": []}"#)],
                &["LIFECYCLE_POLICY"],
            ),
            (
                &[
                    ("LIFECYCLE_POLICY", UNTAGGED_POLICY),
                    ("UNTAGGED_MAX_AGE_DAYS", "14"),
                ],
                &["LIFECYCLE_POLICY"],
            ),
            (&[("LIFECYCLE_POLICIES", "{}")], &["LIFECYCLE_POLICIES"]),
            (
                &[
                    ("LIFECYCLE_POLICIES", r#"{"a": {"rules": []}}"#),
                    ("REPOSITORY_TAG_OVERRIDES", "true"),
                ],
                &["LIFECYCLE_POLICIES"],
            ),
        ];
        for (vars, expected) in cases {
            assert_eq!(bad_vars(vars), *expected, "{vars:?}");
        }
    }

    #[test]
    fn in_use_protection_and_brakes() {
        let c = load(&[]).expect("defaults");
        let lookup = c.sweep.in_use;
        assert_eq!(
            (lookup.ecs, lookup.lambda),
            (true, true),
            "both on by default"
        );
        assert_eq!(lookup.lambda_versions, LambdaVersions::All);
        assert_eq!(
            c.sweep.brakes,
            Brakes {
                max_deletions_per_run: Some(10_000),
                max_tagged_delete_percent: Some(50),
            }
        );
        let c = load(&[
            ("PROTECT_IN_USE", "lambda"),
            ("PROTECT_LAMBDA_VERSIONS", "aliased"),
            ("MAX_DELETIONS_PER_RUN", "off"),
            ("MAX_TAGGED_DELETE_PERCENT", "0"),
        ])
        .expect("valid");
        let lookup = c.sweep.in_use;
        assert_eq!((lookup.ecs, lookup.lambda), (false, true));
        assert_eq!(lookup.lambda_versions, LambdaVersions::Aliased);
        assert_eq!(c.sweep.brakes.max_deletions_per_run, None);
        assert_eq!(c.sweep.brakes.max_tagged_delete_percent, Some(0));
        let none = load(&[("PROTECT_IN_USE", "none")])
            .expect("valid")
            .sweep
            .in_use;
        assert_eq!((none.ecs, none.lambda), (false, false));
        let both = load(&[("PROTECT_IN_USE", " ECS , lambda")])
            .expect("valid")
            .sweep
            .in_use;
        assert_eq!((both.ecs, both.lambda), (true, true));
        for (var, value) in [
            ("PROTECT_IN_USE", "ecs,eks"),
            ("PROTECT_IN_USE", "ecs,"),
            ("PROTECT_LAMBDA_VERSIONS", "latest"),
            ("MAX_DELETIONS_PER_RUN", "0"),
            ("MAX_DELETIONS_PER_RUN", "lots"),
            ("MAX_TAGGED_DELETE_PERCENT", "101"),
        ] {
            assert_eq!(bad_vars(&[(var, value)]), [var], "{var}={value}");
        }
    }

    #[test]
    fn regions_are_known_names_each_once() {
        assert!(
            load(&[]).expect("defaults").regions.is_empty(),
            "own region"
        );
        let c = load(&[("REGIONS", "us-east-1, eu-west-1,us-east-1")]).expect("valid");
        assert_eq!(c.regions, ["us-east-1", "eu-west-1"]);
        for bad in ["us-east-9", "eu-west-1,,us-east-1", "US-EAST-1", "useast1"] {
            assert_eq!(bad_vars(&[("REGIONS", bad)]), ["REGIONS"], "{bad}");
        }
    }

    #[test]
    fn several_bad_variables_are_reported_together() {
        let err = load(&[
            ("UNTAGGED_MAX_AGE_DAYS", "abc"),
            ("DRY_RUN", "maybe"),
            ("MAX_CONCURRENCY", "0"),
            ("INCLUDE_REPOSITORIES", "a,,b"),
        ])
        .expect_err("four bad variables");
        let text = err.to_string();
        for var in [
            "UNTAGGED_MAX_AGE_DAYS",
            "DRY_RUN",
            "MAX_CONCURRENCY",
            "INCLUDE_REPOSITORIES",
        ] {
            assert!(text.contains(var), "{var} missing from: {text}");
        }
        assert!(text.contains("\"abc\""), "the bad value is quoted: {text}");
    }

    #[test]
    fn include_and_exclude_globs() {
        let c = load(&[
            ("INCLUDE_REPOSITORIES", "team-a/*, base"),
            ("EXCLUDE_REPOSITORIES", "team-a/keep-*"),
        ])
        .expect("valid");
        let cases = [
            ("team-a/web", true),
            ("team-a/deep/nested", true),
            ("base", true),
            ("baseline", false),
            ("team-a/keep-me", false),
            ("team-b/web", false),
        ];
        for (name, swept) in cases {
            assert_eq!(c.sweep.repositories.matches(name), swept, "{name}");
        }
    }

    const UNTAGGED_POLICY: &str = r#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":3},"action":{"type":"expire"}}]}"#;

    #[test]
    fn lifecycle_policy_replaces_the_shorthand() {
        let c = load(&[("LIFECYCLE_POLICY", UNTAGGED_POLICY)]).expect("valid");
        assert_eq!(
            c.sweep.policies.default,
            Policy::from_json(UNTAGGED_POLICY).expect("policy")
        );
    }

    #[test]
    fn named_policies_as_objects_or_text() {
        let text = format!(
            r#"{{"strict": {UNTAGGED_POLICY}, "as-text": {}}}"#,
            serde_json::Value::String(UNTAGGED_POLICY.into())
        );
        let c = load(&[
            ("LIFECYCLE_POLICIES", &text),
            ("REPOSITORY_TAG_OVERRIDES", "true"),
        ])
        .expect("valid");
        assert_eq!(
            c.sweep.policies.named.keys().collect::<Vec<_>>(),
            ["as-text", "strict"]
        );
        assert_eq!(
            bad_vars(&[("LIFECYCLE_POLICIES", &text)]),
            ["LIFECYCLE_POLICIES"]
        );
    }
}
