//! The in-use lookup: once per run, before any deletion, every image ECS and Lambda use.

use futures::future::try_join;

use crate::aws::ecs::{ecs_image_uses, Ecs};
use crate::aws::functions::{lambda_image_uses, Functions};
use crate::aws::AwsError;
use crate::config::InUseLookup;
use crate::model::ImageUse;

/// Every image use the configured lookups find, or the first failure: the caller then
/// deletes nothing.
pub(super) async fn lookup<E: Ecs, F: Functions>(
    ecs: &E,
    functions: &F,
    settings: InUseLookup,
    concurrency: usize,
) -> Result<Vec<ImageUse>, AwsError> {
    let ecs_uses = async {
        match settings.ecs {
            true => ecs_image_uses(ecs, concurrency).await,
            false => Ok(Vec::new()),
        }
    };
    let lambda_uses = async {
        match settings.lambda {
            true => lambda_image_uses(functions, settings.lambda_versions, concurrency).await,
            false => Ok(Vec::new()),
        }
    };
    let (mut uses, lambda) = try_join(ecs_uses, lambda_uses).await?;
    uses.extend(lambda);
    Ok(uses)
}
