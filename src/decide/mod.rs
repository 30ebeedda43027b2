//! What gets deleted, and why: every decision the janitor makes, and nothing else.
//!
//! No clock, SDK, environment or I/O in this folder: each function takes what it decides on
//! (repositories, their tags, images, the policy, `now`) and returns a value that says what
//! to do and why. The run ([`crate::run`]) fetches the inputs and carries the decisions out.
//!
//! The pipeline, in the order a run applies it:
//! 1. [`scope::select`]: which repositories are in scope (include/exclude globs, the
//!    repositories an invocation named).
//! 2. [`scope::Policies::verdict`]: per repository, from its resource tags, sweep it (with
//!    which [`policy::Policy`]), skip it, or refuse it.
//! 3. [`decide`]: per image, expired or kept, with a [`plan::Reason`] each:
//!    - [`plan::plan`] applies the policy, exactly as ECR's lifecycle-policy rules would, to
//!      the images that stand alone;
//!    - [`protect`]: an image that ECS or Lambda uses is kept, whatever the policy says;
//!    - [`graph::follow`] decides the images that follow others (children of image indexes,
//!      signatures and SBOMs of their subjects) from what they follow, and orders deletions
//!      so that an index goes before its children and a subject before its referrers. An
//!      unreadable index manifest keeps every untagged image of the repository.
//!
//! 4. [`brakes::tagged_brake`]: a plan that would delete too large a share of a repository's
//!    tagged images is not carried out; [`scope::start_from`] starts a run where the last
//!    one stopped (the cursor; [`scope::rotate`] without one), so none waits forever behind
//!    a deadline or the deletion brake.
//!
//! [`policy`] parses and validates ECR lifecycle-policy documents with ECR's own rules.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::model::{Digest, Image};

pub mod brakes;
pub mod graph;
pub mod plan;
pub mod policy;
pub mod protect;
pub mod scope;

/// Decides one repository: what expires, what stays, why, and in which order to delete.
/// `in_use` maps the digests ECS and Lambda use to who uses them.
pub fn decide(
    images: Vec<Image>,
    manifests: &graph::Manifests,
    in_use: &BTreeMap<Digest, String>,
    policy: &policy::Policy,
    now: DateTime<Utc>,
) -> plan::Plan {
    graph::follow(images, manifests, in_use, |images, followers| {
        plan::plan_alone(images, followers, policy, now)
    })
}
