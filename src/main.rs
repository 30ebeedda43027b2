//! The Lambda binary (`bootstrap`): validate the configuration at cold start, then serve.

use ecr_janitor::handler::Janitor;
use lambda_runtime::{service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let janitor = Janitor::from_env().await?;
    lambda_runtime::run(service_fn(|event| janitor.invoke(event))).await
}
