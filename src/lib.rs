//! ecr-janitor: expires Amazon ECR images by ECR lifecycle-policy rules, from a scheduled Lambda.
//!
//! A pure core with a thin I/O shell. The layout, in the order a run goes through it:
//!
//! - [`config`]: environment variables → a validated [`config::Config`], every bad variable
//!   named at once, at cold start.
//! - [`run`]: the [`run::Janitor`]. An invocation's overrides resolve into
//!   [`run::RunOptions`] (only ever safer than the configuration); the run lists the
//!   repositories, and sweeps them with bounded concurrency under the Lambda deadline.
//! - [`decide`]: **what gets deleted, and why**. Pure: which repositories are in scope,
//!   which policy applies, and per image expired or kept with a reason. No clock, SDK or
//!   environment inside.
//! - [`aws`]: one narrow trait per AWS service and its SDK implementation (ECR, ECS, Lambda,
//!   EventBridge).
//! - [`model`]: the repositories and images the adapters produce and the core decides on.
//! - [`report`]: the one typed result of a run, and its sinks (response, logs).
//! - [`lambda`]: the Lambda handler, and [`logs`] its logging setup; `src/main.rs` and the
//!   CLI only wire things together.
//! - [`describe_images`]: the CLI's offline input (`aws ecr describe-images` output).

pub mod aws;
pub mod config;
pub mod decide;
pub mod describe_images;
pub mod lambda;
pub mod logs;
pub mod model;
pub mod report;
pub mod run;

#[cfg(test)]
mod testing;
