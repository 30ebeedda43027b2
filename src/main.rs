//! The Lambda binary (`bootstrap`): validate the configuration at cold start, then serve.
//!
//! A bad configuration is printed as its message, one line per variable, and the process
//! exits non-zero before any AWS client exists.

use std::process::ExitCode;

use ecr_janitor::lambda;
use ecr_janitor::run::Janitor;
use lambda_runtime::service_fn;

#[tokio::main]
async fn main() -> ExitCode {
    lambda_runtime::tracing::init_default_subscriber();
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
    lambda_runtime::run(service_fn(|event| lambda::handle(&janitor, event)))
        .await
        .map_err(|e| anyhow::anyhow!(e))
}
