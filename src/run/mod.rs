//! The run: configuration, run options and the AWS adapters tied together under the
//! Lambda deadline, with bounded concurrency.
//!
//! A run first looks up every image in use (ECS, Lambda): if that fails, the run deletes
//! nothing. Then it sweeps the repositories ([`sweep`]), deletes in waves ([`delete`]), and
//! announces the result ([`announce`]: metrics, run event).

use chrono::Utc;
use tokio::time::Instant;

use crate::aws::cursor::CursorStore;
use crate::aws::ecr::{EcrRegistry, Registry};
use crate::aws::ecs::{Ecs, EcsClient};
use crate::aws::eventbridge::{EventBridgeEvents, Events};
use crate::aws::functions::{Functions, LambdaClient};
use crate::aws::{shared_config, AwsError};
use crate::config::{Config, ConfigError};
use crate::decide::protect::InUse;
use crate::model::ImageUse;
use crate::report::{sink, InUseReport, RunReport};

mod announce;
mod bounded;
mod cursor;
pub mod deadline;
mod delete;
mod in_use;
mod options;
mod sweep;

pub use announce::Announcer;
pub use options::{InputError, Overrides, RunOptions};

/// The AWS services a run talks to.
#[derive(Debug)]
pub struct Services<R, E, F> {
    /// ECR: list, read, delete.
    pub registry: R,
    /// ECS: which images tasks and services use.
    pub ecs: E,
    /// Lambda: which images functions use.
    pub functions: F,
}

/// One region's name and services.
#[derive(Debug)]
pub struct Region<R, E, F> {
    /// The region's name, as the report gives it.
    pub name: String,
    /// Its clients.
    pub services: Services<R, E, F>,
}

/// The janitor: configuration validated at cold start, the AWS services of each region it
/// sweeps, where each run's metrics and event go, and where a Lambda run keeps its cursor.
#[derive(Debug)]
pub struct Janitor<R, E, F, V, C> {
    config: Config,
    /// Visible in the crate so that tests can read back what fakes saw.
    pub(crate) regions: Vec<Region<R, E, F>>,
    announcer: Announcer<V>,
    /// The function tags of the home region (the function's own).
    pub(crate) cursor: C,
}

impl Janitor<EcrRegistry, EcsClient, LambdaClient, EventBridgeEvents, LambdaClient> {
    /// Validates the environment first, so a bad configuration makes no AWS client at all.
    /// One set of clients per region of `REGIONS` (by default the function's own region).
    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = Config::from_env()?;
        // The function's own region: swept when REGIONS is empty, and where the run event goes.
        let home = shared_config(None).await;
        let mut configs = Vec::new();
        for name in &config.regions {
            configs.push(shared_config(Some(name)).await);
        }
        if configs.is_empty() {
            configs.push(home.clone());
        }
        let regions = configs
            .iter()
            .map(|shared| Region {
                name: shared.region().map(|r| r.to_string()).unwrap_or_default(),
                services: Services {
                    registry: EcrRegistry::from_shared(shared),
                    ecs: EcsClient::from_shared(shared),
                    functions: LambdaClient::from_shared(shared),
                },
            })
            .collect();
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        let bus = var("EVENT_BUS_NAME")
            .map(|bus| (bus.trim().to_owned(), EventBridgeEvents::from_conf(&home)));
        let announcer = Announcer::new(var("AWS_LAMBDA_FUNCTION_NAME"), bus);
        let cursor = LambdaClient::from_shared(&home);
        Ok(Self::new(config, regions, announcer, cursor))
    }
}

impl<R: Registry, E: Ecs, F: Functions, V: Events, C: CursorStore> Janitor<R, E, F, V, C> {
    /// A janitor over any services (tests use fakes).
    pub fn new(
        config: Config,
        regions: Vec<Region<R, E, F>>,
        announcer: Announcer<V>,
        cursor: C,
    ) -> Self {
        Self {
            config,
            regions,
            announcer,
            cursor,
        }
    }

    /// The run options for an invocation's overrides, refused when less safe than configured.
    pub fn options(&self, overrides: Overrides) -> Result<RunOptions, InputError> {
        RunOptions::resolve(self.config.dry_run, overrides)
    }

    /// One run, ending with a summary log line. Shared by the Lambda and the CLI. A failed
    /// in-use lookup is a safety stop: the run plans and reports, and deletes nothing.
    /// `invoked` is the ARN the Lambda was invoked by, whose tag keeps the cursor; the CLI has
    /// none and starts from the stateless rotation.
    pub async fn run(
        &self,
        options: RunOptions,
        stop_starting_at: Option<Instant>,
        invoked: Option<&str>,
    ) -> Result<RunReport, AwsError> {
        let mut options = options;
        tracing::info!(dry_run = options.dry_run(), "run starting");
        let settings = &self.config.sweep;
        let uses = self.in_use(&mut options).await;
        let (start, cursor_report) = match invoked {
            Some(arn) => {
                let (start, report) = cursor::load(&self.cursor, arn, options.shard()).await;
                (start, Some(report))
            }
            None => (None, None),
        };
        let in_use = InUse::new(&uses);
        let registries: Vec<(&str, &R)> = self
            .regions
            .iter()
            .map(|r| (r.name.as_str(), &r.services.registry))
            .collect();
        let mut report = sweep::run(
            &registries,
            settings,
            &options,
            &in_use,
            Utc::now(),
            stop_starting_at,
            start.as_ref(),
        )
        .await?;
        report.cursor = cursor_report;
        if let Some(arn) = invoked {
            cursor::save(&self.cursor, arn, options.deletes(), &mut report).await;
        }
        report.in_use = InUseReport {
            ecs: settings.in_use.ecs,
            lambda: settings.in_use.lambda,
            references: in_use.len() as u64,
        };
        report.safety_stop = options.safety_stop().map(str::to_owned);
        sink::log_summary(&report);
        report.event_published = self.announcer.announce(&report).await;
        Ok(report)
    }

    /// Every image in use, from every swept region's ECS and Lambda (a service in one region
    /// may run an image from another). A failed lookup stops this run from deleting.
    async fn in_use(&self, options: &mut RunOptions) -> Vec<ImageUse> {
        let settings = &self.config.sweep;
        let mut uses = Vec::new();
        for region in &self.regions {
            let services = &region.services;
            let found = in_use::lookup(
                &services.ecs,
                &services.functions,
                settings.in_use,
                settings.max_concurrency,
            )
            .await;
            match found {
                Ok(found) => uses.extend(found),
                Err(e) => {
                    tracing::error!(region = %region.name, error = %e, "in-use lookup failed; nothing will be deleted");
                    options
                        .stop_deleting(format!("the in-use lookup failed in {}: {e}", region.name));
                }
            }
        }
        uses
    }
}
