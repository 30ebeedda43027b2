//! The narrow slice of EventBridge the janitor needs, as a trait, and its
//! `aws-sdk-eventbridge` implementation.
//!
//! The janitor announces each run with one event; [`Events`] puts exactly one entry. PutEvents
//! answers HTTP 200 even when it refused the entry, so the adapter reads `FailedEntryCount` and
//! the entry's `ErrorCode` and returns a refusal as data ([`PutOutcome::Failed`]); only a call
//! that failed after the SDK's retries (throttling, 5xx, access denied) is an [`AwsError`].

use std::future::Future;

use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::AwsError;

/// The `source` of every event the janitor puts, for rules to match on.
pub const SOURCE: &str = "ecr-janitor";

/// What EventBridge did with one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// EventBridge accepted the event.
    Published,
    /// EventBridge refused the entry (e.g. `InternalFailure`, `ThrottlingException`,
    /// `MalformedDetail`); it is not retried.
    Failed {
        /// The entry's `ErrorCode`.
        code: String,
        /// The entry's `ErrorMessage`.
        message: String,
    },
}

/// The EventBridge operation the janitor uses.
pub trait Events: Sync {
    /// Puts one event from [`SOURCE`] with `detail_type` and `detail` (a JSON object as text)
    /// on `bus`, an event bus name or ARN.
    fn put_event(
        &self,
        bus: &str,
        detail_type: &str,
        detail: &str,
    ) -> impl Future<Output = Result<PutOutcome, AwsError>> + Send;
}

/// [`Events`] over `aws-sdk-eventbridge`.
#[derive(Debug, Clone)]
pub struct EventBridgeEvents {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeEvents {
    /// Wraps a configured client (tests pass a mocked one).
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        Self { client }
    }

    /// A client sharing the configuration (region, credentials, retries) of the other adapters.
    pub fn from_conf(config: &SdkConfig) -> Self {
        Self::new(aws_sdk_eventbridge::Client::new(config))
    }
}

impl Events for EventBridgeEvents {
    async fn put_event(
        &self,
        bus: &str,
        detail_type: &str,
        detail: &str,
    ) -> Result<PutOutcome, AwsError> {
        let entry = PutEventsRequestEntry::builder()
            .source(SOURCE)
            .detail_type(detail_type)
            .detail(detail)
            .event_bus_name(bus)
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("PutEvents", e))?;
        let refused = out.entries().iter().find(|e| e.error_code().is_some());
        Ok(match refused {
            Some(entry) => PutOutcome::Failed {
                code: entry.error_code().unwrap_or_default().to_owned(),
                message: entry.error_message().unwrap_or_default().to_owned(),
            },
            // A failure count without a failed entry to name it: still a failure.
            None if out.failed_entry_count() > 0 => PutOutcome::Failed {
                code: "Unknown".to_owned(),
                message: format!("{} entries failed", out.failed_entry_count()),
            },
            None => PutOutcome::Published,
        })
    }
}
