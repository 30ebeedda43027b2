//! The `aws-sdk-ecr` adapter against mocked ECR responses: pagination, per-image failures,
//! throttling that succeeds on retry, and errors that do not.

use std::time::Duration;

use aws_sdk_ecr::config::retry::RetryConfig;
use aws_sdk_ecr::operation::batch_delete_image::BatchDeleteImageOutput;
use aws_sdk_ecr::operation::batch_get_image::BatchGetImageOutput;
use aws_sdk_ecr::operation::describe_images::DescribeImagesOutput;
use aws_sdk_ecr::operation::describe_repositories::DescribeRepositoriesOutput;
use aws_sdk_ecr::primitives::DateTime;
use aws_sdk_ecr::types::{
    Image, ImageDetail, ImageFailure, ImageFailureCode, ImageIdentifier,
    Repository as EcrRepository,
};
use aws_sdk_ecr::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use ecr_janitor::aws::ecr::{EcrRegistry, Registry};
use ecr_janitor::aws::MAX_ATTEMPTS;

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

fn registry(rules: &[&Rule]) -> EcrRegistry {
    let client = mock_client!(aws_sdk_ecr, RuleMode::MatchAny, rules, |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(5))
    ));
    EcrRegistry::new(client)
}

fn repo(name: &str) -> EcrRepository {
    EcrRepository::builder()
        .repository_name(name)
        .repository_arn(format!(
            "arn:aws:ecr:us-east-1:123456789012:repository/{name}"
        ))
        .build()
}

fn image(digest: &str, pushed_secs: i64) -> ImageDetail {
    ImageDetail::builder()
        .image_digest(digest)
        .image_pushed_at(DateTime::from_secs(pushed_secs))
        .image_size_in_bytes(42)
        .build()
}

#[tokio::test]
async fn repositories_are_read_across_pages_of_1000() {
    let first = mock!(Client::describe_repositories)
        .match_requests(|r| r.next_token().is_none() && r.max_results() == Some(1000))
        .then_output(|| {
            DescribeRepositoriesOutput::builder()
                .repositories(repo("a"))
                .repositories(repo("b"))
                .next_token("page-2")
                .build()
        });
    let second = mock!(Client::describe_repositories)
        .match_requests(|r| r.next_token() == Some("page-2") && r.max_results() == Some(1000))
        .then_output(|| {
            DescribeRepositoriesOutput::builder()
                .repositories(repo("c/d"))
                .build()
        });
    let repos = registry(&[&first, &second])
        .repositories()
        .await
        .expect("listed");
    let names: Vec<_> = repos.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c/d"]);
    assert!(repos[2].arn.ends_with("repository/c/d"));
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn every_image_is_read_across_pages_of_1000() {
    let untagged = |r: &aws_sdk_ecr::operation::describe_images::DescribeImagesInput| {
        r.filter().is_none()
            && r.image_ids().is_empty()
            && r.max_results() == Some(1000)
            && r.repository_name() == Some("web")
    };
    let first = mock!(Client::describe_images)
        .match_requests(move |r| untagged(r) && r.next_token().is_none())
        .then_output(|| {
            DescribeImagesOutput::builder()
                .image_details(image("sha256:a", 1_700_000_000))
                .image_details(ImageDetail::builder().image_tags("no-digest").build())
                .next_token("next")
                .build()
        });
    let second = mock!(Client::describe_images)
        .match_requests(move |r| untagged(r) && r.next_token() == Some("next"))
        .then_output(|| {
            DescribeImagesOutput::builder()
                .image_details(
                    ImageDetail::builder()
                        .image_digest("sha256:b")
                        .image_pushed_at(DateTime::from_secs_f64(1_700_000_100.318))
                        .build(),
                )
                .build()
        });
    let images = registry(&[&first, &second])
        .images("web")
        .await
        .expect("listed");
    let digests: Vec<String> = images.iter().map(|i| i.digest.to_string()).collect();
    assert_eq!(
        digests,
        ["sha256:a", "sha256:b"],
        "an image without a digest is left out"
    );
    assert_eq!(
        images[1].pushed_at.to_rfc3339(),
        "2023-11-14T22:15:00.318+00:00",
        "fractional epoch seconds are kept to the millisecond"
    );
    assert_eq!(images[0].size_bytes, Some(42));
}

#[tokio::test]
async fn media_types_and_subject_are_carried() {
    let all = mock!(Client::describe_images)
        .match_requests(|r| r.filter().is_none())
        .then_output(|| {
            DescribeImagesOutput::builder()
                .image_details(
                    ImageDetail::builder()
                        .image_digest("sha256:t")
                        .image_tags("v1")
                        .image_manifest_media_type("application/vnd.oci.image.manifest.v1+json")
                        .artifact_media_type("application/vnd.dev.cosign.artifact.sig.v1+json")
                        .subject_manifest_digest("sha256:s")
                        .build(),
                )
                .build()
        });
    let images = registry(&[&all]).images("web").await.expect("listed");
    assert_eq!(images[0].tags, ["v1"]);
    assert_eq!(
        images[0]
            .subject
            .as_deref()
            .map(|s| s.to_string())
            .as_deref(),
        Some("sha256:s")
    );
    assert_eq!(
        images[0].manifest_media_type.as_deref(),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(
        images[0].pushed_at,
        chrono::DateTime::<chrono::Utc>::MAX_UTC,
        "unknown push time is newest"
    );
}

#[tokio::test]
async fn per_image_delete_failures_are_data() {
    let delete = mock!(Client::batch_delete_image)
        .match_requests(|r| r.image_ids().len() == 3 && r.repository_name() == Some("web"))
        .then_output(|| {
            BatchDeleteImageOutput::builder()
                .image_ids(ImageIdentifier::builder().image_digest("sha256:a").build())
                .failures(
                    ImageFailure::builder()
                        .image_id(ImageIdentifier::builder().image_digest("sha256:b").build())
                        .failure_code(ImageFailureCode::ImageReferencedByManifestList)
                        .failure_reason("Requested image referenced by manifest list")
                        .build(),
                )
                .failures(
                    ImageFailure::builder()
                        .image_id(ImageIdentifier::builder().image_digest("sha256:c").build())
                        .failure_code(ImageFailureCode::ImageNotFound)
                        .failure_reason("Requested image not found")
                        .build(),
                )
                .build()
        });
    let digests: Vec<String> = ["sha256:a", "sha256:b", "sha256:c"]
        .map(String::from)
        .to_vec();
    let outcome = registry(&[&delete])
        .delete_images("web", &digests)
        .await
        .expect("called");
    assert_eq!(outcome.deleted, ["sha256:a"]);
    let codes: Vec<_> = outcome
        .failures
        .iter()
        .map(|f| (f.image_digest.as_deref(), f.failure_code.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            (Some("sha256:b"), "ImageReferencedByManifestList"),
            (Some("sha256:c"), "ImageNotFound")
        ]
    );
}

#[tokio::test]
async fn deletions_are_what_the_response_lists_once_per_digest() {
    // A tagged image comes back once per tag; a requested image the response neither lists
    // nor fails was not deleted.
    let delete = mock!(Client::batch_delete_image).then_output(|| {
        let id = |tag: &str| {
            ImageIdentifier::builder()
                .image_digest("sha256:a")
                .image_tag(tag)
                .build()
        };
        BatchDeleteImageOutput::builder()
            .image_ids(id("v1"))
            .image_ids(id("latest"))
            .build()
    });
    let digests: Vec<String> = ["sha256:a", "sha256:b"].map(String::from).to_vec();
    let outcome = registry(&[&delete])
        .delete_images("web", &digests)
        .await
        .expect("called");
    assert_eq!(outcome.deleted, ["sha256:a"]);
    assert!(outcome.failures.is_empty());
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    let describe = mock!(Client::describe_images)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(3)
        .http_status(503, None)
        .output(|| {
            DescribeImagesOutput::builder()
                .image_details(image("sha256:a", 1))
                .build()
        })
        .build();
    let delete = mock!(Client::batch_delete_image)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .output(|| {
            BatchDeleteImageOutput::builder()
                .image_ids(ImageIdentifier::builder().image_digest("sha256:a").build())
                .build()
        })
        .build();
    let registry = registry(&[&describe, &delete]);
    let images = registry.images("web").await.expect("retried");
    assert_eq!(images.len(), 1);
    assert_eq!(
        describe.num_calls(),
        5,
        "3 throttled + 1 server error + 1 success"
    );
    let outcome = registry
        .delete_images("web", &["sha256:a".into()])
        .await
        .expect("retried");
    assert_eq!(outcome.deleted, ["sha256:a"]);
    assert_eq!(delete.num_calls(), 3);
}

#[tokio::test]
async fn throttling_beyond_the_retry_budget_is_an_error() {
    let describe = mock!(Client::describe_repositories)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .repeatedly()
        .build();
    let err = registry(&[&describe])
        .repositories()
        .await
        .expect_err("gives up");
    assert_eq!(err.operation, "DescribeRepositories");
    assert_eq!(err.code.as_deref(), Some("ThrottlingException"));
    assert_eq!(describe.num_calls(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn access_denied_is_not_retried() {
    let denied = mock!(Client::describe_images)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"AccessDeniedException","message":"not authorized"}"#.into()),
        )
        .repeatedly()
        .build();
    let err = registry(&[&denied])
        .images("web")
        .await
        .expect_err("denied");
    assert_eq!(err.code.as_deref(), Some("AccessDeniedException"));
    assert!(err.to_string().contains("DescribeImages failed"), "{err}");
    assert_eq!(denied.num_calls(), 1);
}

#[tokio::test]
async fn manifests_are_read_100_per_call_and_failures_are_data() {
    let digests: Vec<String> = (0..150).map(|i| format!("sha256:{i:03}")).collect();
    let get = mock!(Client::batch_get_image)
        .match_requests(|r| {
            r.accepted_media_types()
                .contains(&"application/vnd.oci.image.index.v1+json".to_owned())
        })
        .sequence()
        .output(|| {
            let mut out = BatchGetImageOutput::builder().images(
                Image::builder()
                    .image_id(
                        ImageIdentifier::builder()
                            .image_digest("sha256:000")
                            .build(),
                    )
                    .image_manifest(r#"{"manifests":[]}"#)
                    .build(),
            );
            out = out.failures(
                ImageFailure::builder()
                    .image_id(
                        ImageIdentifier::builder()
                            .image_digest("sha256:001")
                            .build(),
                    )
                    .failure_code(ImageFailureCode::KmsError)
                    .failure_reason("key disabled")
                    .build(),
            );
            out.build()
        })
        .output(|| BatchGetImageOutput::builder().build())
        .build();
    let read = registry(&[&get])
        .manifests("web", &digests)
        .await
        .expect("read");
    assert_eq!(get.num_calls(), 2, "150 ids: two calls");
    assert_eq!(read.len(), 2);
    assert_eq!(
        read[0],
        ("sha256:000".into(), Ok(r#"{"manifests":[]}"#.into()))
    );
    let why = read[1].1.clone().expect_err("failure");
    assert!(
        why.contains("KmsError") && why.contains("key disabled"),
        "{why}"
    );
}

const NOT_FOUND: &str = r#"{"__type":"ImageNotFoundException","message":"The image with imageId {imageDigest:'sha256:b', imageTag:'null'} does not exist within the repository with name 'web' in the registry with id '123456789012'"}"#;

#[tokio::test]
async fn a_recheck_drops_an_image_that_is_gone_and_rereads_the_rest() {
    let describe = mock!(Client::describe_images)
        .sequence()
        .http_status(400, Some(NOT_FOUND.into()))
        .output(|| {
            DescribeImagesOutput::builder()
                .image_details(image("sha256:a", 1))
                .image_details(image("sha256:c", 1))
                .build()
        })
        .build();
    let digests: Vec<String> = ["sha256:a", "sha256:b", "sha256:c"]
        .map(String::from)
        .to_vec();
    let recheck = registry(&[&describe])
        .recheck("web", &digests)
        .await
        .expect("rechecked");
    assert_eq!(recheck.gone, ["sha256:b"]);
    let present: Vec<String> = recheck
        .present
        .iter()
        .map(|i| i.digest.to_string())
        .collect();
    assert_eq!(present, ["sha256:a", "sha256:c"]);
    assert_eq!(describe.num_calls(), 2);
}

#[tokio::test]
async fn a_recheck_that_cannot_tell_which_image_is_gone_fails_closed() {
    let describe = mock!(Client::describe_images)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"ImageNotFoundException","message":"gone"}"#.into()),
        )
        .build();
    let err = registry(&[&describe])
        .recheck("web", &["sha256:a".into()])
        .await
        .expect_err("unknown id");
    assert_eq!(err.code.as_deref(), Some("ImageNotFoundException"));
}
