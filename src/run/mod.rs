//! The run: configuration, run options and the AWS adapters tied together under the
//! Lambda deadline, with bounded concurrency.

use chrono::Utc;
use tokio::time::Instant;

use crate::aws::ecr::{EcrRegistry, Registry};
use crate::aws::AwsError;
use crate::config::{Config, ConfigError};
use crate::report::{sink, RunReport};

pub mod deadline;
mod delete;
mod options;
mod sweep;

pub use options::{InputError, Overrides, RunOptions};

/// The janitor: configuration validated at cold start, and a registry.
#[derive(Debug)]
pub struct Janitor<R> {
    config: Config,
    /// Visible in the crate so that tests can read back what a fake registry saw.
    pub(crate) registry: R,
}

impl Janitor<EcrRegistry> {
    /// Validates the environment first, so a bad configuration makes no AWS client at all.
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        Ok(Self::new(config, EcrRegistry::from_env().await))
    }
}

impl<R: Registry> Janitor<R> {
    /// A janitor over any registry (tests use fakes).
    pub fn new(config: Config, registry: R) -> Self {
        Self { config, registry }
    }

    /// The run options for an invocation's overrides, refused when less safe than configured.
    pub fn options(&self, overrides: Overrides) -> Result<RunOptions, InputError> {
        RunOptions::resolve(self.config.dry_run, overrides)
    }

    /// One sweep, ending with a summary log line. Shared by the Lambda and the CLI.
    pub async fn run(
        &self,
        options: &RunOptions,
        stop_starting_at: Option<Instant>,
    ) -> Result<RunReport, AwsError> {
        tracing::info!(dry_run = !options.deletes(), "run starting");
        let report = sweep::run(
            &self.registry,
            &self.config.sweep,
            options,
            Utc::now(),
            stop_starting_at,
        )
        .await?;
        sink::log_summary(&report);
        Ok(report)
    }
}
