//! The CLI: the Lambda's sweep run locally, and the offline planner.
//!
//! Exit codes: 0 the run completed (per-image failures are in the report), 2 configuration or
//! input errors (nothing was done), 1 any other failure.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use ecr_janitor::config::{Config, DEFAULT_MAX_TAGGED_DELETE_PERCENT};
use ecr_janitor::decide::brakes::tagged_brake;
use ecr_janitor::decide::plan::plan;
use ecr_janitor::decide::policy::Policy;
use ecr_janitor::describe_images;
use ecr_janitor::report::PlanReport;
use ecr_janitor::run::{deadline, Janitor, Overrides};
use tokio::time::Instant;

#[derive(Parser)]
#[command(version, about = "Expire Amazon ECR images by lifecycle-policy rules")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One run with the Lambda's code path and environment variables; prints the report.
    Sweep {
        /// Delete nothing, whatever DRY_RUN says.
        #[arg(long)]
        dry_run: bool,
        /// A Lambda event file whose overrides apply (e.g. events/single-repository.json).
        #[arg(long, value_name = "FILE")]
        event: Option<PathBuf>,
        /// Output format: the whole report as JSON, or a table per repository.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
        /// Behave like a Lambda invocation with this many seconds left: stop starting
        /// repositories as the Lambda would, and list the rest in `notVisited`.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=86_400))]
        deadline_seconds: Option<u64>,
    },
    /// Offline: which images of an `aws ecr describe-images` output expire, and why.
    Plan {
        /// The JSON printed by `aws ecr describe-images`.
        #[arg(long, value_name = "FILE")]
        images: PathBuf,
        /// An ECR lifecycle policy document (default: the policy from the environment).
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Evaluate as of this time (RFC 3339; default: now).
        #[arg(long, value_name = "RFC3339")]
        now: Option<DateTime<Utc>>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Table,
}

/// A failure that maps to an exit code.
enum Failure {
    /// Bad configuration or input: exit 2.
    Usage(anyhow::Error),
    /// Anything else: exit 1.
    Run(anyhow::Error),
}

fn usage(e: impl Into<anyhow::Error>) -> Failure {
    Failure::Usage(e.into())
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .map_err(Failure::Usage)
}

/// When to stop starting repositories, for `--deadline-seconds`: as a Lambda invocation
/// with that much time left would.
fn stop_starting_at(deadline_seconds: Option<u64>) -> Option<Instant> {
    let now = SystemTime::now();
    let deadline = now + Duration::from_secs(deadline_seconds?);
    deadline::stop_starting_at(deadline, now, Instant::now())
}

async fn sweep(
    dry_run: bool,
    event: Option<PathBuf>,
    format: Format,
    deadline_seconds: Option<u64>,
) -> Result<bool, Failure> {
    let stop = stop_starting_at(deadline_seconds);
    let payload = match event {
        None => serde_json::Value::Null,
        Some(path) => serde_json::from_str(&read(&path)?)
            .with_context(|| format!("{} is not JSON", path.display()))
            .map_err(Failure::Usage)?,
    };
    let janitor = Janitor::from_env().await.map_err(usage)?;
    let mut overrides = Overrides::from_event(&payload).map_err(usage)?;
    if dry_run {
        overrides = overrides.with_dry_run();
    }
    let options = janitor.options(overrides).map_err(usage)?;
    let report = janitor
        .run(options, stop, None)
        .await
        .map_err(|e| Failure::Run(e.into()))?;
    match format {
        Format::Json => print_json(&report).map_err(Failure::Run)?,
        Format::Table => print!("{}", report.to_table()),
    }
    if let Some(why) = &report.safety_stop {
        eprintln!("error: safety stop, nothing was deleted: {why}");
    }
    Ok(report.totals.repository_errors == 0 && report.safety_stop.is_none())
}

fn plan_images(
    images: &Path,
    policy: Option<PathBuf>,
    now: Option<DateTime<Utc>>,
    format: Format,
) -> Result<(), Failure> {
    // The brake as configured when the environment is valid; its default otherwise (a
    // policy file may be planned without any janitor configuration).
    let config = Config::from_env();
    let brake_percent = config
        .as_ref()
        .map_or(Some(DEFAULT_MAX_TAGGED_DELETE_PERCENT), |c| {
            c.sweep.brakes.max_tagged_delete_percent
        });
    let policy = match policy {
        Some(path) => Policy::from_json(&read(&path)?)
            .with_context(|| format!("policy {}", path.display()))
            .map_err(Failure::Usage)?,
        None => config.map_err(usage)?.sweep.policies.default,
    };
    let images = describe_images::parse(&read(images)?)
        .with_context(|| format!("images {}", images.display()))
        .map_err(Failure::Usage)?;
    let plan = plan(images, &policy, now.unwrap_or_else(Utc::now));
    let mut report = PlanReport::from(&plan);
    if let Some(brake) = tagged_brake(&plan, brake_percent) {
        report
            .notes
            .push(format!("a sweep would hold this repository back: {brake}"));
    }
    match format {
        Format::Json => print_json(&report).map_err(Failure::Run)?,
        Format::Table => print!("{}", report.to_table()),
    }
    Ok(())
}

/// Writes `value` as pretty JSON to stdout as it serializes: a report of 100,000 images is
/// never held twice, once as a value and once as text.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

// One thread, as in the deployed function: a sweep waits on ECR, and a single allocator
// arena keeps the peak memory of a large repository down.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Sweep {
            dry_run,
            event,
            format,
            deadline_seconds,
        } => sweep(dry_run, event, format, deadline_seconds).await,
        Command::Plan {
            images,
            policy,
            now,
            format,
        } => plan_images(&images, policy, now, format).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("error: some repositories could not be swept; see the report");
            ExitCode::from(1)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
        Err(Failure::Run(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
