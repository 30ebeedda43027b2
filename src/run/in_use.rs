//! The in-use lookup: once per run, before any deletion, every image ECS and Lambda use.

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
    // One after the other, so that no more than `concurrency` calls are ever in flight.
    let mut uses = Vec::new();
    if settings.ecs {
        uses.extend(ecs_image_uses(ecs, concurrency).await?);
    }
    if settings.lambda {
        uses.extend(lambda_image_uses(functions, settings.lambda_versions, concurrency).await?);
    }
    Ok(uses)
}
