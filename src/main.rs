//! The Lambda binary (`bootstrap`): validate the configuration at cold start, then serve.
//!
//! A bad configuration is printed as its message, one line per variable, and the process
//! exits non-zero before any AWS client exists.
//!
//! Logs follow Lambda's logging controls: `AWS_LAMBDA_LOG_FORMAT=JSON` gives one JSON object
//! per line, and `AWS_LAMBDA_LOG_LEVEL` the level. Each run's metrics and event come from the
//! run itself ([`ecr_janitor::run::Announcer`]).

use std::process::ExitCode;

use ecr_janitor::lambda;
use ecr_janitor::run::Janitor;
use lambda_runtime::service_fn;

// One thread: a 128 MB Lambda has a fraction of a vCPU and the run waits on ECR; the
// multi-threaded runtime would only add code and threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    ecr_janitor::logs::init_lambda();
    match serve().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve() -> anyhow::Result<()> {
    let janitor = Janitor::from_env().await?;
    let janitor = &janitor;
    lambda_runtime::run(service_fn(move |event| lambda::handle(janitor, event)))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
