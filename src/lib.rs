//! ecr-janitor: expires Amazon ECR images by ECR lifecycle-policy rules, from a scheduled Lambda.
//!
//! Pure core, thin I/O shell: [`plan::plan`] decides what expires from (images, policy, now)
//! alone; [`registry`] talks to ECR; [`sweep`] runs repositories under the Lambda deadline;
//! [`report`] is what a run tells ops; [`handler`] is the Lambda entry point.

pub mod config;
pub mod describe_images;
pub mod handler;
pub mod plan;
pub mod policy;
pub mod registry;
pub mod report;
pub mod sweep;
