//! The `aws-sdk-ecs` adapter against mocked ECS responses: pagination, batch limits,
//! per-item failures, throttling that succeeds on retry, and errors that do not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::config::retry::RetryConfig;
use aws_sdk_ecs::operation::describe_services::DescribeServicesOutput;
use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::describe_tasks::DescribeTasksOutput;
use aws_sdk_ecs::operation::list_clusters::ListClustersOutput;
use aws_sdk_ecs::operation::list_services::ListServicesOutput;
use aws_sdk_ecs::operation::list_tasks::ListTasksOutput;
use aws_sdk_ecs::types::{
    Container, ContainerDefinition, Deployment, DesiredStatus, Failure, Service, Task,
    TaskDefinition, TaskSet,
};
use aws_sdk_ecs::Client;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use ecr_janitor::aws::ecs::{ecs_image_uses, ContainerImage, Ecs, EcsClient, EcsFailure};
use ecr_janitor::aws::MAX_ATTEMPTS;
use ecr_janitor::model::ImageUse;

const THROTTLED: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
const CLUSTER: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
const IMAGE: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/api:v3";

fn ecs(rules: &[&Rule]) -> EcsClient {
    let client = mock_client!(aws_sdk_ecs, RuleMode::MatchAny, rules, |c| c.retry_config(
        RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(5))
    ));
    EcsClient::new(client)
}

fn task_arn(id: &str) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}")
}

/// A task running IMAGE, resolved to `sha256:<id>`.
fn task(arn: &str) -> Task {
    Task::builder()
        .task_arn(arn)
        .containers(
            Container::builder()
                .image(IMAGE)
                .image_digest(format!("sha256:{}", arn.rsplit('/').next().unwrap_or(arn)))
                .build(),
        )
        .build()
}

/// Request sizes seen by a mock, smallest first.
#[derive(Clone, Default)]
struct Sizes(Arc<Mutex<Vec<usize>>>);

impl Sizes {
    fn record(&self, size: usize) {
        self.0.lock().expect("sizes").push(size);
    }

    fn sorted(&self) -> Vec<usize> {
        let mut sizes = self.0.lock().expect("sizes").clone();
        sizes.sort_unstable();
        sizes
    }
}

#[tokio::test]
async fn clusters_are_read_across_pages_of_100() {
    let first = mock!(Client::list_clusters)
        .match_requests(|r| r.next_token().is_none() && r.max_results() == Some(100))
        .then_output(|| {
            ListClustersOutput::builder()
                .cluster_arns("arn:a")
                .next_token("page-2")
                .build()
        });
    let second = mock!(Client::list_clusters)
        .match_requests(|r| r.next_token() == Some("page-2") && r.max_results() == Some(100))
        .then_output(|| ListClustersOutput::builder().cluster_arns("arn:b").build());
    let clusters = ecs(&[&first, &second]).clusters().await.expect("listed");
    assert_eq!(clusters, ["arn:a", "arn:b"]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn running_tasks_are_read_across_pages() {
    let running = |r: &aws_sdk_ecs::operation::list_tasks::ListTasksInput| {
        r.cluster() == Some(CLUSTER)
            && r.desired_status() == Some(&DesiredStatus::Running)
            && r.max_results() == Some(100)
    };
    let first = mock!(Client::list_tasks)
        .match_requests(move |r| running(r) && r.next_token().is_none())
        .then_output(|| {
            ListTasksOutput::builder()
                .task_arns("t1")
                .task_arns("t2")
                .next_token("more")
                .build()
        });
    let second = mock!(Client::list_tasks)
        .match_requests(move |r| running(r) && r.next_token() == Some("more"))
        .then_output(|| ListTasksOutput::builder().task_arns("t3").build());
    let tasks = ecs(&[&first, &second])
        .running_tasks(CLUSTER)
        .await
        .expect("listed");
    assert_eq!(tasks, ["t1", "t2", "t3"]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn services_are_read_across_pages() {
    let first = mock!(Client::list_services)
        .match_requests(|r| {
            r.cluster() == Some(CLUSTER) && r.max_results() == Some(100) && r.next_token().is_none()
        })
        .then_output(|| {
            ListServicesOutput::builder()
                .service_arns("s1")
                .next_token("more")
                .build()
        });
    let second = mock!(Client::list_services)
        .match_requests(|r| r.cluster() == Some(CLUSTER) && r.next_token() == Some("more"))
        .then_output(|| ListServicesOutput::builder().service_arns("s2").build());
    let services = ecs(&[&first, &second])
        .services(CLUSTER)
        .await
        .expect("listed");
    assert_eq!(services, ["s1", "s2"]);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

#[tokio::test]
async fn per_task_failures_are_data() {
    let describe = mock!(Client::describe_tasks)
        .match_requests(|r| r.cluster() == Some(CLUSTER) && r.tasks().len() == 2)
        .then_output(|| {
            DescribeTasksOutput::builder()
                .tasks(task(&task_arn("live")))
                .failures(
                    Failure::builder()
                        .arn(task_arn("gone"))
                        .reason("MISSING")
                        .build(),
                )
                .build()
        });
    let described = ecs(&[&describe])
        .describe_tasks(CLUSTER, &[task_arn("live"), task_arn("gone")])
        .await
        .expect("described");
    assert_eq!(described.found.len(), 1);
    assert_eq!(
        described.found[0].containers,
        [ContainerImage {
            image: IMAGE.into(),
            digest: Some("sha256:live".into())
        }]
    );
    assert_eq!(
        described.failures,
        [EcsFailure {
            arn: Some(task_arn("gone")),
            reason: Some("MISSING".into()),
            detail: None
        }]
    );
}

#[tokio::test]
async fn a_service_deploys_its_current_deployments_and_task_sets_definitions() {
    let describe = mock!(Client::describe_services).then_output(|| {
        let deployment = |d: &str| Deployment::builder().task_definition(d).build();
        DescribeServicesOutput::builder()
            .services(
                Service::builder()
                    .service_name("api")
                    .task_definition("td/api:3")
                    .deployments(deployment("td/api:3"))
                    .deployments(deployment("td/api:2"))
                    .task_sets(TaskSet::builder().task_definition("td/api:1").build())
                    .build(),
            )
            .build()
    });
    let described = ecs(&[&describe])
        .describe_services(CLUSTER, &["api".into()])
        .await
        .expect("described");
    assert_eq!(described.found[0].name, "api");
    assert_eq!(
        described.found[0].task_definitions,
        ["td/api:1", "td/api:2", "td/api:3"]
    );
    assert!(described.failures.is_empty());
}

/// ListTasks in pages of 100 (250 tasks) and 25 services sharing one task definition.
fn listing_rules() -> [Rule; 4] {
    let page = |from: usize, to: usize| (from..to).map(|i| task_arn(&format!("t{i}"))).collect();
    [
        mock!(Client::list_clusters)
            .then_output(|| ListClustersOutput::builder().cluster_arns(CLUSTER).build()),
        mock!(Client::list_tasks).then_compute_output(move |r| {
            let (arns, next) = match r.next_token() {
                None => (page(0, 100), Some("100")),
                Some("100") => (page(100, 200), Some("200")),
                _ => (page(200, 250), None),
            };
            ListTasksOutput::builder()
                .set_task_arns(Some(arns))
                .set_next_token(next.map(String::from))
                .build()
        }),
        mock!(Client::list_services).then_output(|| {
            let arns = (0..25).map(|i| format!("s{i}")).collect();
            ListServicesOutput::builder()
                .set_service_arns(Some(arns))
                .build()
        }),
        mock!(Client::describe_task_definition).then_output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .container_definitions(ContainerDefinition::builder().image(IMAGE).build())
                        .build(),
                )
                .build()
        }),
    ]
}

#[tokio::test]
async fn describe_calls_are_batched_at_100_tasks_and_10_services() {
    let task_sizes = Sizes::default();
    let service_sizes = Sizes::default();
    let recorded = task_sizes.clone();
    let describe_tasks = mock!(Client::describe_tasks).then_compute_output(move |r| {
        recorded.record(r.tasks().len());
        let tasks = r.tasks().iter().map(|arn| task(arn)).collect();
        DescribeTasksOutput::builder()
            .set_tasks(Some(tasks))
            .build()
    });
    let recorded = service_sizes.clone();
    let describe_services = mock!(Client::describe_services).then_compute_output(move |r| {
        recorded.record(r.services().len());
        let services = r.services().iter().map(|name| {
            Service::builder()
                .service_name(name)
                .task_definition("td/api:1")
                .build()
        });
        DescribeServicesOutput::builder()
            .set_services(Some(services.collect()))
            .build()
    });
    let [clusters, list_tasks, list_services, definition] = listing_rules();
    let client = ecs(&[
        &clusters,
        &list_tasks,
        &list_services,
        &definition,
        &describe_tasks,
        &describe_services,
    ]);
    let uses = ecs_image_uses(&client, 4).await.expect("walked");
    assert_eq!(list_tasks.num_calls(), 3);
    assert_eq!(task_sizes.sorted(), [50, 100, 100]);
    assert_eq!(service_sizes.sorted(), [5, 10, 10]);
    assert_eq!(
        definition.num_calls(),
        1,
        "one task definition, described once"
    );
    assert_eq!(uses.len(), 250 + 25);
    assert_eq!(
        uses[0],
        ImageUse {
            reference: IMAGE.into(),
            digest: None,
            user: "ECS service prod/s0".into()
        }
    );
}

#[tokio::test]
async fn a_task_that_vanished_is_skipped_by_the_walk() {
    let describe_tasks = mock!(Client::describe_tasks).then_compute_output(|r| {
        let (live, gone): (Vec<&String>, Vec<&String>) =
            r.tasks().iter().partition(|arn| !arn.ends_with("t7"));
        let failures = gone
            .into_iter()
            .map(|arn| Failure::builder().arn(arn).reason("MISSING").build());
        DescribeTasksOutput::builder()
            .set_tasks(Some(live.into_iter().map(|arn| task(arn)).collect()))
            .set_failures(Some(failures.collect()))
            .build()
    });
    let describe_services = mock!(Client::describe_services).then_compute_output(|r| {
        let failures = r
            .services()
            .iter()
            .map(|arn| Failure::builder().arn(arn).reason("MISSING").build());
        DescribeServicesOutput::builder()
            .set_failures(Some(failures.collect()))
            .build()
    });
    let [clusters, list_tasks, list_services, definition] = listing_rules();
    let client = ecs(&[
        &clusters,
        &list_tasks,
        &list_services,
        &definition,
        &describe_tasks,
        &describe_services,
    ]);
    let uses = ecs_image_uses(&client, 2).await.expect("walked");
    assert_eq!(uses.len(), 249, "t7 and the services vanished");
    assert!(!uses.iter().any(|u| u.user == "ECS task prod/t7"));
    assert_eq!(definition.num_calls(), 0);
}

#[tokio::test]
async fn throttling_is_retried_until_it_succeeds() {
    let list = mock!(Client::list_tasks)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(3)
        .http_status(503, None)
        .output(|| ListTasksOutput::builder().task_arns("t1").build())
        .build();
    let definition = mock!(Client::describe_task_definition)
        .sequence()
        .http_status(400, Some(THROTTLED.into()))
        .times(2)
        .output(|| {
            DescribeTaskDefinitionOutput::builder()
                .task_definition(
                    TaskDefinition::builder()
                        .container_definitions(ContainerDefinition::builder().image(IMAGE).build())
                        .build(),
                )
                .build()
        })
        .build();
    let client = ecs(&[&list, &definition]);
    let tasks = client.running_tasks(CLUSTER).await.expect("retried");
    assert_eq!(tasks, ["t1"]);
    assert_eq!(
        list.num_calls(),
        5,
        "3 throttled + 1 server error + 1 success"
    );
    let images = client.container_images("td/api:1").await.expect("retried");
    assert_eq!(images, [IMAGE]);
    assert_eq!(definition.num_calls(), 3);
}

#[tokio::test]
async fn access_denied_is_an_error_with_its_code_and_not_retried() {
    let denied = mock!(Client::list_clusters)
        .sequence()
        .http_status(
            400,
            Some(r#"{"__type":"AccessDeniedException","message":"not authorized"}"#.into()),
        )
        .repeatedly()
        .build();
    let err = ecs_image_uses(&ecs(&[&denied]), 2)
        .await
        .expect_err("denied");
    assert_eq!(err.operation, "ListClusters");
    assert_eq!(err.code.as_deref(), Some("AccessDeniedException"));
    assert_eq!(denied.num_calls(), 1);
}
