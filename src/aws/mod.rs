//! The AWS boundaries, one narrow trait per service with its SDK implementation.
//!
//! Each adapter pages through listings, respects the service's batch limits, and turns
//! per-item failures into data; only a call that failed after the SDK's retries is an
//! [`AwsError`].

use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

pub mod ecr;
pub mod eventbridge;

/// SDK attempts per call: enough to ride out throttling with the SDK's backoff.
pub const MAX_ATTEMPTS: u32 = 10;

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
        Self {
            operation,
            code: err.code().map(str::to_owned),
            message: DisplayErrorContext(&err).to_string(),
        }
    }
}
