//! The AWS boundaries, one narrow trait per service with its SDK implementation.
//!
//! Each adapter pages through listings, respects the service's batch limits, and turns
//! per-item failures into data; only a call that failed after the SDK's retries is an
//! [`AwsError`].

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

pub mod cursor;
pub mod ecr;
pub mod ecs;
pub mod eventbridge;
pub mod functions;

/// SDK attempts per call: enough to ride out throttling with the SDK's backoff.
pub const MAX_ATTEMPTS: u32 = 10;

/// The shared AWS configuration of the standard environment (credentials,
/// `AWS_ENDPOINT_URL`, and `AWS_REGION` unless `region` names another), retrying throttling
/// and 5xx with the SDK's standard backoff.
pub async fn shared_config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS));
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    loader.load().await
}

/// A call to AWS that failed after the SDK's retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} failed: {message}")]
pub struct AwsError {
    /// The operation, e.g. `DescribeImages`.
    pub operation: &'static str,
    /// The service's error code, when it gave one (e.g. `AccessDeniedException`).
    pub code: Option<String>,
    /// Everything the SDK knows about the failure.
    pub message: String,
}

impl AwsError {
    /// From an SDK error of `operation`, keeping the service's code.
    pub(crate) fn from_sdk<E>(operation: &'static str, err: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        // A service error says what it is in its code and message; anything else (a timeout,
        // no connection) only in its whole context.
        let message = match (err.code(), err.message()) {
            (Some(code), Some(text)) => format!("{code}: {text}"),
            _ => DisplayErrorContext(&err).to_string(),
        };
        Self {
            operation,
            code: err.code().map(str::to_owned),
            message,
        }
    }
}
