//! The `aws-sdk-eventbridge` adapter against mocked EventBridge responses: the entry it puts,
//! an entry EventBridge refuses (data, not an error), throttling that succeeds on retry, and
//! access denied (an error, not retried).

use std::time::Duration;

use aws_sdk_eventbridge::config::retry::RetryConfig;
use aws_sdk_eventbridge::operation::put_events::{PutEventsInput, PutEventsOutput};
use aws_sdk_eventbridge::types::PutEventsResultEntry;
use aws_sdk_eventbridge::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use ecr_janitor::aws::eventbridge::{EventBridgeEvents, Events, PutOutcome, SOURCE};
use ecr_janitor::aws::MAX_ATTEMPTS;

const BUS: &str = "arn:aws:events:us-east-1:123456789012:event-bus/ops";
const DETAIL_TYPE: &str = "ECR Janitor Run Completed";
const DETAIL: &str = r#"{"dryRun":true}"#;

fn events(rules: &[&Rule]) -> EventBridgeEvents {
    let client = mock_client!(aws_sdk_eventbridge, RuleMode::MatchAny, rules, |c| c
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5))
        ));
    EventBridgeEvents::new(client)
}

fn accepted() -> PutEventsOutput {
    PutEventsOutput::builder()
        .failed_entry_count(0)
        .entries(PutEventsResultEntry::builder().event_id("e-1").build())
        .build()
}

/// The one entry the janitor sends, exactly as built.
fn is_the_entry(input: &PutEventsInput) -> bool {
    match input.entries() {
        [entry] => {
            entry.source() == Some(SOURCE)
                && entry.detail_type() == Some(DETAIL_TYPE)
                && entry.detail() == Some(DETAIL)
                && entry.event_bus_name() == Some(BUS)
        }
        _ => false,
    }
}

#[tokio::test]
async fn one_entry_is_put_and_reported_published() {
    let put = mock!(Client::put_events)
        .match_requests(is_the_entry)
        .then_output(accepted);
    let outcome = events(&[&put])
        .put_event(BUS, DETAIL_TYPE, DETAIL)
        .await
        .expect("called");
    assert_eq!(outcome, PutOutcome::Published);
    assert_eq!(put.num_calls(), 1);
}

#[tokio::test]
async fn a_refused_entry_is_data_with_its_code() {
    let put = mock!(Client::put_events).then_output(|| {
        PutEventsOutput::builder()
            .failed_entry_count(1)
            .entries(
                PutEventsResultEntry::builder()
                    .error_code("MalformedDetail")
                    .error_message("Detail is malformed.")
                    .build(),
            )
            .build()
    });
    let outcome = events(&[&put])
        .put_event(BUS, DETAIL_TYPE, DETAIL)
        .await
        .expect("the call itself succeeded");
    assert_eq!(
        outcome,
        PutOutcome::Failed {
            code: "MalformedDetail".into(),
            message: "Detail is malformed.".into(),
        }
    );
    assert_eq!(put.num_calls(), 1, "a refused entry is not retried");
}

#[tokio::test]
async fn a_failure_count_without_a_failed_entry_is_still_a_failure() {
    let put = mock!(Client::put_events)
        .then_output(|| PutEventsOutput::builder().failed_entry_count(1).build());
    let outcome = events(&[&put])
        .put_event(BUS, DETAIL_TYPE, DETAIL)
        .await
        .expect("called");
    assert!(
        matches!(&outcome, PutOutcome::Failed { code, .. } if code == "Unknown"),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    let put = mock!(Client::put_events)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into()),
        )
        .times(2)
        .http_status(500, None)
        .output(accepted)
        .build();
    let outcome = events(&[&put])
        .put_event(BUS, DETAIL_TYPE, DETAIL)
        .await
        .expect("retried");
    assert_eq!(outcome, PutOutcome::Published);
    assert_eq!(
        put.num_calls(),
        4,
        "2 throttled + 1 server error + 1 success"
    );
}

#[tokio::test]
async fn access_denied_is_an_error_and_not_retried() {
    let denied = mock!(Client::put_events)
        .sequence()
        .http_status(
            400,
            Some(
                r#"{"__type":"AccessDeniedException","message":"not authorized to perform: events:PutEvents"}"#
                    .into(),
            ),
        )
        .repeatedly()
        .build();
    let err = events(&[&denied])
        .put_event(BUS, DETAIL_TYPE, DETAIL)
        .await
        .expect_err("denied");
    assert_eq!(err.operation, "PutEvents");
    assert_eq!(err.code.as_deref(), Some("AccessDeniedException"));
    assert!(err.to_string().contains("PutEvents failed"), "{err}");
    assert_eq!(denied.num_calls(), 1);
}
