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
//! 3. [`plan::plan`]: per image, expired or kept, with a [`plan::Reason`] each, exactly as
//!    ECR's lifecycle-policy rules would decide.
//!
//! [`policy`] parses and validates ECR lifecycle-policy documents with ECR's own rules.

pub mod plan;
pub mod policy;
pub mod scope;
