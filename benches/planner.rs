//! The planner on one million images: `decide::plan::plan` and the whole `decide` (the image
//! graph around the plan) under the default untagged rule and under a five-rule lifecycle
//! policy. Target: under 0.2 s per million images.
//!
//! `make bench` runs it (`cargo bench --bench planner`); bench/run.py reads criterion's
//! estimates from target/criterion/ for its table. Each iteration gets its own copy of the
//! images (`plan` takes them by value); the copy is made outside the timed part.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ecr_janitor::decide::decide;
use ecr_janitor::decide::graph::Manifests;
use ecr_janitor::decide::plan::plan;
use ecr_janitor::decide::policy::Policy;
use ecr_janitor::model::{Digest, Image};

const IMAGES: usize = 1_000_000;
/// Under `cargo test --all-targets` (part of `make test`) criterion runs each benchmark once
/// as a smoke test, without `--bench`: a small input keeps that quick.
const SMOKE_TEST_IMAGES: usize = 1_000;
const SPREAD_SECONDS: i64 = 60 * 24 * 3600;

/// Priority 1–3 select tagged images by prefix or pattern, 4 the untagged ones, 5 all the
/// rest by count.
const FIVE_RULES: &str = r#"{"rules": [
  {"rulePriority": 1, "description": "keep the newest 100 releases",
   "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"],
                 "countType": "imageCountMoreThan", "countNumber": 100},
   "action": {"type": "expire"}},
  {"rulePriority": 2, "description": "production builds for 30 days",
   "selection": {"tagStatus": "tagged", "tagPatternList": ["prod-*-amd64"],
                 "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30},
   "action": {"type": "expire"}},
  {"rulePriority": 3, "description": "dev builds for a week",
   "selection": {"tagStatus": "tagged", "tagPrefixList": ["dev"],
                 "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
   "action": {"type": "expire"}},
  {"rulePriority": 4, "description": "untagged for two weeks",
   "selection": {"tagStatus": "untagged",
                 "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
   "action": {"type": "expire"}},
  {"rulePriority": 5, "description": "at most 200,000 of anything else",
   "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 200000},
   "action": {"type": "expire"}}
]}"#;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap()
}

/// `count` distinct images pushed over the 60 days before `now()`, 30% tagged (release,
/// production and dev tags).
fn images(count: usize) -> Vec<Image> {
    let now = now();
    (0..count)
        .map(|i| {
            // A bijection of i onto u64 (odd multiplier), so digests are distinct and unordered.
            let mixed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let digest = format!("sha256:{mixed:016x}{:048x}", i);
            let age = (mixed % SPREAD_SECONDS as u64) as i64;
            let tags = match i % 10 {
                0 => vec![format!("release-{i}")],
                1 => vec![format!("prod-{i}-amd64")],
                2 => vec![format!("dev-{i}")],
                _ => Vec::new(),
            };
            Image::plain(&digest, tags, now - chrono::Duration::seconds(age))
        })
        .collect()
}

fn planner(c: &mut Criterion) {
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let count = if benchmarking {
        IMAGES
    } else {
        SMOKE_TEST_IMAGES
    };
    let images = images(count);
    let untagged = Policy::untagged(Some(14), None).expect("the default policy");
    let five_rules = Policy::from_json(FIVE_RULES).expect("a valid five-rule policy");
    let manifests = Manifests::new();
    let in_use: BTreeMap<Digest, String> = BTreeMap::new();

    let mut group = c.benchmark_group("planner");
    group.throughput(Throughput::Elements(count as u64));
    for (name, policy) in [("untagged", &untagged), ("five_rules", &five_rules)] {
        group.bench_function(format!("plan_{name}"), |b| {
            b.iter_batched(
                || images.clone(),
                |images| black_box(plan(images, policy, now())),
                BatchSize::LargeInput,
            )
        });
        group.bench_function(format!("decide_{name}"), |b| {
            b.iter_batched(
                || images.clone(),
                |images| black_box(decide(images, &manifests, &in_use, policy, now())),
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    targets = planner
}
criterion_main!(benches);
