//! The `aws-sdk-lambda` adapter against mocked Lambda responses: pagination, the image
//! functions and versions it reads, ResolvedImageUri against ImageUri, throttling that
//! succeeds on retry, and errors that do not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::operation::get_function::GetFunctionOutput;
use aws_sdk_lambda::operation::list_aliases::ListAliasesOutput;
use aws_sdk_lambda::operation::list_functions::ListFunctionsOutput;
use aws_sdk_lambda::operation::list_tags::ListTagsOutput;
use aws_sdk_lambda::operation::list_versions_by_function::ListVersionsByFunctionOutput;
use aws_sdk_lambda::operation::tag_resource::TagResourceOutput;
use aws_sdk_lambda::types::{
    AliasConfiguration, AliasRoutingConfiguration, FunctionCodeLocation, FunctionConfiguration,
    PackageType,
};
use aws_sdk_lambda::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use ecr_janitor::aws::cursor::CursorStore;
use ecr_janitor::aws::functions::{
    lambda_image_uses, FunctionImage, Functions, LambdaClient, LambdaVersions,
};
use ecr_janitor::aws::MAX_ATTEMPTS;

const THROTTLED: &str = r#"{"__type":"TooManyRequestsException","message":"Rate exceeded"}"#;
const DENIED: &str = r#"{"__type":"AccessDeniedException","message":"not authorized"}"#;
const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/worker";

fn lambda(rules: &[&Rule]) -> LambdaClient {
    let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, rules, |c| c
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5))
        ));
    LambdaClient::new(client)
}

fn function(name: &str, package: PackageType) -> FunctionConfiguration {
    FunctionConfiguration::builder()
        .function_name(name)
        .package_type(package)
        .build()
}

fn version(v: &str) -> FunctionConfiguration {
    FunctionConfiguration::builder().version(v).build()
}

fn code(image_uri: Option<&str>, resolved: Option<&str>) -> GetFunctionOutput {
    GetFunctionOutput::builder()
        .code(
            FunctionCodeLocation::builder()
                .repository_type("ECR")
                .set_image_uri(image_uri.map(String::from))
                .set_resolved_image_uri(resolved.map(String::from))
                .build(),
        )
        .build()
}

#[tokio::test]
async fn image_functions_are_read_across_pages_of_50() {
    let first = mock!(Client::list_functions)
        .match_requests(|r| r.marker().is_none() && r.max_items() == Some(50))
        .then_output(|| {
            ListFunctionsOutput::builder()
                .functions(function("worker", PackageType::Image))
                .functions(function("zipped", PackageType::Zip))
                .next_marker("page-2")
                .build()
        });
    let second = mock!(Client::list_functions)
        .match_requests(|r| r.marker() == Some("page-2") && r.max_items() == Some(50))
        .then_output(|| {
            ListFunctionsOutput::builder()
                .functions(function("api", PackageType::Image))
                .functions(
                    FunctionConfiguration::builder()
                        .function_name("old")
                        .build(),
                )
                .build()
        });
    let names = lambda(&[&first, &second])
        .image_functions()
        .await
        .expect("listed");
    assert_eq!(names, ["worker", "api"], "only container-image functions");
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn versions_are_read_across_pages() {
    let first = mock!(Client::list_versions_by_function)
        .match_requests(|r| {
            r.function_name() == Some("worker") && r.marker().is_none() && r.max_items() == Some(50)
        })
        .then_output(|| {
            ListVersionsByFunctionOutput::builder()
                .versions(version("$LATEST"))
                .versions(version("1"))
                .next_marker("more")
                .build()
        });
    let second = mock!(Client::list_versions_by_function)
        .match_requests(|r| r.function_name() == Some("worker") && r.marker() == Some("more"))
        .then_output(|| {
            ListVersionsByFunctionOutput::builder()
                .versions(version("2"))
                .build()
        });
    let versions = lambda(&[&first, &second])
        .versions("worker")
        .await
        .expect("listed");
    assert_eq!(versions, ["$LATEST", "1", "2"]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

fn alias(version: &str, weighted: Option<&str>) -> AliasConfiguration {
    let routing = weighted.map(|w| {
        AliasRoutingConfiguration::builder()
            .additional_version_weights(w, 0.1)
            .build()
    });
    AliasConfiguration::builder()
        .function_version(version)
        .set_routing_config(routing)
        .build()
}

#[tokio::test]
async fn aliased_versions_include_weighted_routing_across_pages() {
    let first = mock!(Client::list_aliases)
        .match_requests(|r| {
            r.function_name() == Some("worker") && r.marker().is_none() && r.max_items() == Some(50)
        })
        .then_output(|| {
            ListAliasesOutput::builder()
                .aliases(alias("3", Some("4")))
                .next_marker("more")
                .build()
        });
    let second = mock!(Client::list_aliases)
        .match_requests(|r| r.marker() == Some("more"))
        .then_output(|| {
            ListAliasesOutput::builder()
                .aliases(alias("2", None))
                .build()
        });
    let versions = lambda(&[&first, &second])
        .aliased_versions("worker")
        .await
        .expect("listed");
    assert_eq!(versions, ["3", "4", "2"]);
}

#[tokio::test]
async fn the_image_is_resolved_by_digest_else_as_deployed() {
    let tagged = format!("{REPO}:v3");
    let pinned = format!("{REPO}@sha256:p");
    let resolved = format!("{REPO}@sha256:r");
    let (t, r) = (tagged.clone(), resolved.clone());
    let both = mock!(Client::get_function)
        .match_requests(|r| r.qualifier() == Some("1"))
        .then_output(move || code(Some(&t), Some(&r)));
    let t = tagged.clone();
    let tag_only = mock!(Client::get_function)
        .match_requests(|r| r.qualifier() == Some("2"))
        .then_output(move || code(Some(&t), None));
    let p = pinned.clone();
    let pinned_only = mock!(Client::get_function)
        .match_requests(|r| r.qualifier() == Some("3"))
        .then_output(move || code(Some(&p), None));
    let r = resolved.clone();
    let resolved_only = mock!(Client::get_function)
        .match_requests(|r| r.qualifier() == Some("4"))
        .then_output(move || code(None, Some(&r)));
    let no_code = mock!(Client::get_function)
        .match_requests(|r| r.qualifier() == Some("5"))
        .then_output(|| GetFunctionOutput::builder().build());
    let client = lambda(&[&both, &tag_only, &pinned_only, &resolved_only, &no_code]);
    let image = |reference: &str, digest: Option<&str>| {
        Some(FunctionImage {
            reference: reference.into(),
            digest: digest.map(String::from),
        })
    };
    let mut seen = Vec::new();
    for qualifier in ["1", "2", "3", "4", "5"] {
        seen.push(client.image("worker", qualifier).await.expect("read"));
    }
    assert_eq!(
        seen,
        [
            image(&tagged, Some("sha256:r")),
            image(&tagged, None),
            image(&pinned, None),
            image(&resolved, Some("sha256:r")),
            None,
        ]
    );
}

/// `worker`: versions $LATEST and 1–4, alias `live` on 3 sending some traffic to 4; GetFunction
/// answers `<REPO>:v<qualifier>` resolved to `sha256:<qualifier>`, recording qualifiers.
fn worker_rules(qualifiers: Arc<Mutex<Vec<String>>>) -> [Rule; 4] {
    [
        mock!(Client::list_functions).then_output(|| {
            ListFunctionsOutput::builder()
                .functions(function("worker", PackageType::Image))
                .build()
        }),
        mock!(Client::list_versions_by_function).then_output(|| {
            let versions = ["$LATEST", "1", "2", "3", "4"].map(version);
            ListVersionsByFunctionOutput::builder()
                .set_versions(Some(versions.to_vec()))
                .build()
        }),
        mock!(Client::list_aliases).then_output(|| {
            ListAliasesOutput::builder()
                .aliases(alias("3", Some("4")))
                .build()
        }),
        mock!(Client::get_function).then_compute_output(move |r| {
            let q = r.qualifier().unwrap_or_default();
            qualifiers.lock().expect("qualifiers").push(q.to_owned());
            code(
                Some(&format!("{REPO}:v{q}")),
                Some(&format!("{REPO}@sha256:{q}")),
            )
        }),
    ]
}

#[tokio::test]
async fn aliased_reads_latest_alias_and_weighted_versions_only() {
    let qualifiers = Arc::new(Mutex::new(Vec::new()));
    let [functions, versions, aliases, get] = worker_rules(qualifiers.clone());
    let client = lambda(&[&functions, &versions, &aliases, &get]);
    let uses = lambda_image_uses(&client, LambdaVersions::Aliased, 2)
        .await
        .expect("walked");
    let users: Vec<_> = uses.iter().map(|u| u.user.as_str()).collect();
    assert_eq!(
        users,
        [
            "Lambda function worker:$LATEST",
            "Lambda function worker:3",
            "Lambda function worker:4",
        ]
    );
    assert_eq!(uses[1].digest.as_deref(), Some("sha256:3"));
    assert_eq!(uses[1].reference, format!("{REPO}:v3"));
    let mut read = qualifiers.lock().expect("qualifiers").clone();
    read.sort();
    assert_eq!(read, ["$LATEST", "3", "4"]);
    assert_eq!(versions.num_calls(), 0, "aliased mode lists no versions");
}

#[tokio::test]
async fn all_reads_every_version() {
    let qualifiers = Arc::new(Mutex::new(Vec::new()));
    let [functions, versions, aliases, get] = worker_rules(qualifiers.clone());
    let client = lambda(&[&functions, &versions, &aliases, &get]);
    let uses = lambda_image_uses(&client, LambdaVersions::All, 2)
        .await
        .expect("walked");
    let digests: Vec<_> = uses.iter().filter_map(|u| u.digest.as_deref()).collect();
    assert_eq!(
        digests,
        [
            "sha256:$LATEST",
            "sha256:1",
            "sha256:2",
            "sha256:3",
            "sha256:4"
        ]
    );
    assert_eq!(get.num_calls(), 5);
    assert_eq!(aliases.num_calls(), 0, "all versions need no alias");
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    let list = mock!(Client::list_functions)
        .sequence()
        .http_status(429, Some(THROTTLED.into()))
        .times(3)
        .http_status(503, None)
        .output(|| {
            ListFunctionsOutput::builder()
                .functions(function("worker", PackageType::Image))
                .build()
        })
        .build();
    let get = mock!(Client::get_function)
        .sequence()
        .http_status(429, Some(THROTTLED.into()))
        .times(2)
        .output(|| code(Some(&format!("{REPO}:v1")), None))
        .build();
    let client = lambda(&[&list, &get]);
    assert_eq!(client.image_functions().await.expect("retried"), ["worker"]);
    assert_eq!(
        list.num_calls(),
        5,
        "3 throttled + 1 server error + 1 success"
    );
    let image = client.image("worker", "1").await.expect("retried");
    assert_eq!(image.map(|i| i.reference), Some(format!("{REPO}:v1")));
    assert_eq!(get.num_calls(), 3);
}

#[tokio::test]
async fn access_denied_is_an_error_with_its_code_and_not_retried() {
    let qualifiers = Arc::new(Mutex::new(Vec::new()));
    let [functions, versions, _, _] = worker_rules(qualifiers);
    let denied = mock!(Client::get_function)
        .sequence()
        .http_status(403, Some(DENIED.into()))
        .repeatedly()
        .build();
    let client = lambda(&[&functions, &versions, &denied]);
    let err = lambda_image_uses(&client, LambdaVersions::All, 1)
        .await
        .expect_err("denied");
    assert_eq!(err.operation, "GetFunction");
    assert_eq!(err.code.as_deref(), Some("AccessDeniedException"));
    assert_eq!(denied.num_calls(), 1, "the walk stops at the first failure");
}

const JANITOR: &str = "arn:aws:lambda:us-east-1:123456789012:function:janitor";

#[tokio::test]
async fn the_cursor_is_one_tag_of_the_function_read_with_list_tags() {
    let tags = mock!(Client::list_tags)
        .match_requests(|r| r.resource() == Some(JANITOR))
        .sequence()
        .output(|| {
            ListTagsOutput::builder()
                .tags("team", "platform")
                .tags("ecr-janitor:cursor", "us-east-1:api/orders")
                .build()
        })
        .output(|| ListTagsOutput::builder().tags("team", "platform").build())
        .output(|| ListTagsOutput::builder().build())
        .build();
    let client = lambda(&[&tags]);
    let load = || client.load(JANITOR, "ecr-janitor:cursor");
    assert_eq!(
        load().await.expect("read"),
        Some("us-east-1:api/orders".into())
    );
    assert_eq!(load().await.expect("read"), None, "other tags only");
    assert_eq!(load().await.expect("read"), None, "no tags at all");
    assert_eq!(tags.num_calls(), 3);
}

#[tokio::test]
async fn saving_the_cursor_tags_the_function_with_that_one_tag() {
    let tag = mock!(Client::tag_resource)
        .match_requests(|r| {
            let expected = HashMap::from([(
                "ecr-janitor:cursor:3/8".to_owned(),
                "eu-west-1:b".to_owned(),
            )]);
            r.resource() == Some(JANITOR) && r.tags() == Some(&expected)
        })
        .then_output(|| TagResourceOutput::builder().build());
    let client = lambda(&[&tag]);
    client
        .save(JANITOR, "ecr-janitor:cursor:3/8", "eu-west-1:b")
        .await
        .expect("saved");
    assert_eq!(tag.num_calls(), 1);
}

#[tokio::test]
async fn cursor_calls_retry_throttling_and_report_access_denied_by_operation() {
    let tags = mock!(Client::list_tags)
        .sequence()
        .http_status(429, Some(THROTTLED.into()))
        .times(2)
        .output(|| ListTagsOutput::builder().build())
        .build();
    let denied = mock!(Client::tag_resource)
        .sequence()
        .http_status(403, Some(DENIED.into()))
        .repeatedly()
        .build();
    let client = lambda(&[&tags, &denied]);
    assert_eq!(client.load(JANITOR, "k").await.expect("retried"), None);
    assert_eq!(tags.num_calls(), 3);
    let err = client.save(JANITOR, "k", "v").await.expect_err("denied");
    assert_eq!(err.operation, "TagResource");
    assert_eq!(err.code.as_deref(), Some("AccessDeniedException"));
    assert_eq!(denied.num_calls(), 1, "not retried");
}
