//! The read-only slice of ECS that tells which images run, as a trait, and its `aws-sdk-ecs`
//! implementation.
//!
//! [`ecs_image_uses`] walks every cluster: the tasks running or being started, and the task
//! definitions of every service's deployments, so that the janitor never deletes an image a
//! task runs or a service may start again. It is written against [`Ecs`] so that it can be
//! tested without the SDK; the adapter ([`EcsClient`]) is tested with `aws-smithy-mocks`.
//! A task or service that vanished between listing and describing is skipped; any failed
//! call is an error, so that the caller can fail closed.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_ecs::types::{DesiredStatus, Failure};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::{AwsError, MAX_ATTEMPTS};
use crate::model::ImageUse;

/// ECS's page size limit for ListClusters, ListTasks and ListServices.
pub const PAGE_SIZE: i32 = 100;
/// ECS's limit of tasks per DescribeTasks call.
pub const DESCRIBE_TASKS_LIMIT: usize = 100;
/// ECS's limit of services per DescribeServices call.
pub const DESCRIBE_SERVICES_LIMIT: usize = 10;
/// ECS's failure reason for a task or service that no longer exists.
pub const MISSING: &str = "MISSING";

/// A task or service ECS could not describe, as ECS reported it: data, not an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcsFailure {
    /// The task's or service's ARN.
    pub arn: Option<String>,
    /// ECS's reason, e.g. [`MISSING`].
    pub reason: Option<String>,
    /// ECS's explanation, when it gave one.
    pub detail: Option<String>,
}

/// What one Describe call found, and what it could not describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described<T> {
    /// The items ECS described.
    pub found: Vec<T>,
    /// Per-item failures.
    pub failures: Vec<EcsFailure>,
}

/// A running (or starting) task: which images its containers run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// The task's ARN; its last segment is the task id the report shows.
    pub arn: String,
    /// One entry per container.
    pub containers: Vec<ContainerImage>,
}

/// The image one container of a task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// The image reference from the task definition (empty if ECS gave none).
    pub image: String,
    /// The digest ECS resolved the reference to, once the container started pulling.
    pub digest: Option<String>,
}

/// A service: which task definitions its tasks run or may be started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service's name, for the report.
    pub name: String,
    /// The task definition ARNs of its deployments, task sets and current definition, each once.
    pub task_definitions: Vec<String>,
}

/// The ECS operations that tell which images are in use; all read-only.
pub trait Ecs: Sync {
    /// Every cluster's ARN (all pages).
    fn clusters(&self) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// The ARNs of the cluster's tasks whose desired status is RUNNING (all pages): running
    /// tasks and tasks being started (ECS never sets a desired status of PENDING).
    fn running_tasks(
        &self,
        cluster: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// Describes up to [`DESCRIBE_TASKS_LIMIT`] tasks of the cluster in one call.
    fn describe_tasks(
        &self,
        cluster: &str,
        tasks: &[String],
    ) -> impl Future<Output = Result<Described<Task>, AwsError>> + Send;

    /// The ARNs of the cluster's services (all pages).
    fn services(&self, cluster: &str)
        -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// Describes up to [`DESCRIBE_SERVICES_LIMIT`] services of the cluster in one call.
    fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> impl Future<Output = Result<Described<Service>, AwsError>> + Send;

    /// The image references of a task definition's containers.
    fn container_images(
        &self,
        task_definition: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;
}

/// [`Ecs`] over `aws-sdk-ecs`.
#[derive(Debug, Clone)]
pub struct EcsClient {
    client: aws_sdk_ecs::Client,
}

impl EcsClient {
    /// Wraps a configured client (tests pass a mocked one).
    pub fn new(client: aws_sdk_ecs::Client) -> Self {
        Self { client }
    }

    /// A client from a shared AWS configuration (one per region), retrying throttling and
    /// 5xx with the SDK's standard backoff, like the ECR client.
    pub fn from_shared(shared: &SdkConfig) -> Self {
        let config = aws_sdk_ecs::config::Builder::from(shared)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .build();
        Self::new(aws_sdk_ecs::Client::from_conf(config))
    }
}

fn to_failures(failures: Option<Vec<Failure>>) -> Vec<EcsFailure> {
    failures
        .unwrap_or_default()
        .into_iter()
        .map(|f| EcsFailure {
            arn: f.arn,
            reason: f.reason,
            detail: f.detail,
        })
        .collect()
}

/// Maps ECS's task to its container images. A container without an image reference still
/// protects its digest; one with neither has nothing to protect.
fn to_task(task: aws_sdk_ecs::types::Task) -> Task {
    let containers = task
        .containers
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.image.is_some() || c.image_digest.is_some())
        .map(|c| ContainerImage {
            image: c.image.unwrap_or_default(),
            digest: c.image_digest,
        })
        .collect();
    Task {
        arn: task.task_arn.unwrap_or_default(),
        containers,
    }
}

/// Maps ECS's service to every task definition its tasks may run: the current one, each
/// deployment's (rolling updates, including the one being replaced) and each task set's
/// (CodeDeploy and external deployments).
fn to_service(service: aws_sdk_ecs::types::Service) -> Service {
    let deployments = service.deployments.unwrap_or_default();
    let task_sets = service.task_sets.unwrap_or_default();
    let task_definitions: BTreeSet<String> = service
        .task_definition
        .into_iter()
        .chain(deployments.into_iter().filter_map(|d| d.task_definition))
        .chain(task_sets.into_iter().filter_map(|t| t.task_definition))
        .collect();
    Service {
        name: service
            .service_name
            .or(service.service_arn)
            .unwrap_or_default(),
        task_definitions: task_definitions.into_iter().collect(),
    }
}

impl Ecs for EcsClient {
    async fn clusters(&self) -> Result<Vec<String>, AwsError> {
        let mut pages = self
            .client
            .list_clusters()
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListClusters", e))?;
            out.extend(page.cluster_arns.unwrap_or_default());
        }
        Ok(out)
    }

    async fn running_tasks(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        let mut pages = self
            .client
            .list_tasks()
            .cluster(cluster)
            .desired_status(DesiredStatus::Running)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListTasks", e))?;
            out.extend(page.task_arns.unwrap_or_default());
        }
        Ok(out)
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        tasks: &[String],
    ) -> Result<Described<Task>, AwsError> {
        debug_assert!(tasks.len() <= DESCRIBE_TASKS_LIMIT);
        let out = self
            .client
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(tasks.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeTasks", e))?;
        Ok(Described {
            found: out
                .tasks
                .unwrap_or_default()
                .into_iter()
                .map(to_task)
                .collect(),
            failures: to_failures(out.failures),
        })
    }

    async fn services(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
        let mut pages = self
            .client
            .list_services()
            .cluster(cluster)
            .max_results(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListServices", e))?;
            out.extend(page.service_arns.unwrap_or_default());
        }
        Ok(out)
    }

    async fn describe_services(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<Described<Service>, AwsError> {
        debug_assert!(services.len() <= DESCRIBE_SERVICES_LIMIT);
        let out = self
            .client
            .describe_services()
            .cluster(cluster)
            .set_services(Some(services.to_vec()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeServices", e))?;
        Ok(Described {
            found: out
                .services
                .unwrap_or_default()
                .into_iter()
                .map(to_service)
                .collect(),
            failures: to_failures(out.failures),
        })
    }

    async fn container_images(&self, task_definition: &str) -> Result<Vec<String>, AwsError> {
        let out = self
            .client
            .describe_task_definition()
            .task_definition(task_definition)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeTaskDefinition", e))?;
        Ok(out
            .task_definition
            .and_then(|d| d.container_definitions)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|c| c.image)
            .collect())
    }
}

/// One cluster's listings.
struct Listed<'c> {
    cluster: &'c str,
    tasks: Vec<String>,
    services: Vec<String>,
}

/// The last segment of an ECS ARN: a cluster's name, a task's id.
fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// Skips what vanished between listing and describing; any other per-item failure leaves an
/// unknown image in use, so it is an error.
fn check_failures(operation: &'static str, failures: &[EcsFailure]) -> Result<(), AwsError> {
    match failures
        .iter()
        .find(|f| f.reason.as_deref() != Some(MISSING))
    {
        None => Ok(()),
        Some(f) => Err(AwsError {
            operation,
            code: f.reason.clone(),
            message: format!(
                "{} could not be described: {} {}",
                f.arn.as_deref().unwrap_or("an item"),
                f.reason.as_deref().unwrap_or("no reason given"),
                f.detail.as_deref().unwrap_or_default()
            ),
        }),
    }
}

/// Every image that ECS runs or may start, in every cluster: running and starting tasks'
/// containers, and the containers of every task definition a service deploys. Sorted, each
/// use once. At most `concurrency` calls are in flight; any failed call is an error.
pub async fn ecs_image_uses<E: Ecs>(
    ecs: &E,
    concurrency: usize,
) -> Result<Vec<ImageUse>, AwsError> {
    let concurrency = concurrency.max(1);
    let clusters = ecs.clusters().await?;
    let listed: Vec<Listed> = stream::iter(&clusters)
        .map(|cluster| async move {
            let tasks = ecs.running_tasks(cluster).await?;
            let services = ecs.services(cluster).await?;
            Ok::<_, AwsError>(Listed {
                cluster,
                tasks,
                services,
            })
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut uses = task_uses(ecs, &listed, concurrency).await?;
    uses.extend(service_uses(ecs, &listed, concurrency).await?);
    uses.sort();
    uses.dedup();
    Ok(uses)
}

/// The images of every listed task, described in batches.
async fn task_uses<E: Ecs>(
    ecs: &E,
    listed: &[Listed<'_>],
    concurrency: usize,
) -> Result<Vec<ImageUse>, AwsError> {
    let batches = listed.iter().flat_map(|l| {
        l.tasks
            .chunks(DESCRIBE_TASKS_LIMIT)
            .map(move |batch| (l.cluster, batch))
    });
    let uses: Vec<Vec<ImageUse>> = stream::iter(batches)
        .map(|(cluster, batch)| async move {
            let described = ecs.describe_tasks(cluster, batch).await?;
            check_failures("DescribeTasks", &described.failures)?;
            let cluster_name = last_segment(cluster);
            Ok::<_, AwsError>(
                described
                    .found
                    .into_iter()
                    .flat_map(|task| {
                        let user = format!("ECS task {cluster_name}/{}", last_segment(&task.arn));
                        task.containers
                            .into_iter()
                            .map(move |c| ImageUse::new(c.image, c.digest, user.clone()))
                    })
                    .collect(),
            )
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(uses.concat())
}

/// The images of every listed service's task definitions, each task definition described
/// once per run however many services deploy it.
async fn service_uses<E: Ecs>(
    ecs: &E,
    listed: &[Listed<'_>],
    concurrency: usize,
) -> Result<Vec<ImageUse>, AwsError> {
    let deployed = deployed_task_definitions(ecs, listed, concurrency).await?;
    let definitions: BTreeSet<&str> = deployed.iter().map(|(_, d)| d.as_str()).collect();
    let images: HashMap<&str, Vec<String>> = stream::iter(definitions)
        .map(|definition| async move {
            Ok::<_, AwsError>((definition, ecs.container_images(definition).await?))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(deployed
        .iter()
        .flat_map(|(user, definition)| {
            images
                .get(definition.as_str())
                .into_iter()
                .flatten()
                .map(|image| ImageUse::new(image.clone(), None, user.clone()))
        })
        .collect())
}

/// (user, task definition ARN) for every listed service, described in batches.
async fn deployed_task_definitions<E: Ecs>(
    ecs: &E,
    listed: &[Listed<'_>],
    concurrency: usize,
) -> Result<Vec<(String, String)>, AwsError> {
    let batches = listed.iter().flat_map(|l| {
        l.services
            .chunks(DESCRIBE_SERVICES_LIMIT)
            .map(move |batch| (l.cluster, batch))
    });
    let deployed: Vec<Vec<(String, String)>> = stream::iter(batches)
        .map(|(cluster, batch)| async move {
            let described = ecs.describe_services(cluster, batch).await?;
            check_failures("DescribeServices", &described.failures)?;
            let cluster_name = last_segment(cluster);
            Ok::<_, AwsError>(
                described
                    .found
                    .into_iter()
                    .flat_map(|service| {
                        let user = format!("ECS service {cluster_name}/{}", service.name);
                        service
                            .task_definitions
                            .into_iter()
                            .map(move |d| (user.clone(), d))
                    })
                    .collect(),
            )
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    Ok(deployed.concat())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    use super::*;

    const PROD: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/prod";
    const DEV: &str = "arn:aws:ecs:us-east-1:123456789012:cluster/dev";
    const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team";

    /// An in-memory ECS: every listed item, what describing some of them fails with, the call
    /// that fails, and a record of the calls (operation, batch size) and of calls in flight.
    #[derive(Default)]
    struct FakeEcs {
        clusters: Vec<String>,
        tasks: Vec<(String, Task)>,
        services: Vec<(String, Service)>,
        item_failures: HashMap<String, &'static str>,
        definitions: HashMap<String, Vec<String>>,
        failing_call: Option<&'static str>,
        calls: Mutex<Vec<(&'static str, usize)>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
    }

    impl FakeEcs {
        async fn call(&self, operation: &'static str, size: usize) -> Result<(), AwsError> {
            self.calls.lock().expect("calls").push((operation, size));
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::task::yield_now().await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            match self.failing_call {
                Some(failing) if failing == operation => Err(AwsError {
                    operation,
                    code: Some("AccessDeniedException".into()),
                    message: "denied".into(),
                }),
                _ => Ok(()),
            }
        }

        /// Batch sizes of `operation`'s calls, smallest first.
        fn sizes(&self, operation: &str) -> Vec<usize> {
            let calls = self.calls.lock().expect("calls");
            let mut sizes: Vec<usize> = calls
                .iter()
                .filter(|(op, _)| *op == operation)
                .map(|(_, size)| *size)
                .collect();
            sizes.sort_unstable();
            sizes
        }

        fn describe<T: Clone>(
            &self,
            items: &[(String, T)],
            arn: impl Fn(&T) -> &str,
            cluster: &str,
            wanted: &[String],
        ) -> Described<T> {
            let failures = wanted
                .iter()
                .filter_map(|w| {
                    self.item_failures.get(w).map(|reason| EcsFailure {
                        arn: Some(w.clone()),
                        reason: Some((*reason).to_owned()),
                        detail: None,
                    })
                })
                .collect();
            let found = items
                .iter()
                .filter(|(c, item)| c == cluster && wanted.iter().any(|w| w == arn(item)))
                .filter(|(_, item)| !self.item_failures.contains_key(arn(item)))
                .map(|(_, item)| item.clone())
                .collect();
            Described { found, failures }
        }
    }

    impl Ecs for FakeEcs {
        async fn clusters(&self) -> Result<Vec<String>, AwsError> {
            self.call("ListClusters", 0).await?;
            Ok(self.clusters.clone())
        }

        async fn running_tasks(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
            self.call("ListTasks", 0).await?;
            let tasks = self.tasks.iter().filter(|(c, _)| c == cluster);
            Ok(tasks.map(|(_, t)| t.arn.clone()).collect())
        }

        async fn describe_tasks(
            &self,
            cluster: &str,
            tasks: &[String],
        ) -> Result<Described<Task>, AwsError> {
            self.call("DescribeTasks", tasks.len()).await?;
            Ok(self.describe(&self.tasks, |t| &t.arn, cluster, tasks))
        }

        async fn services(&self, cluster: &str) -> Result<Vec<String>, AwsError> {
            self.call("ListServices", 0).await?;
            let services = self.services.iter().filter(|(c, _)| c == cluster);
            Ok(services.map(|(_, s)| s.name.clone()).collect())
        }

        async fn describe_services(
            &self,
            cluster: &str,
            services: &[String],
        ) -> Result<Described<Service>, AwsError> {
            self.call("DescribeServices", services.len()).await?;
            Ok(self.describe(&self.services, |s| &s.name, cluster, services))
        }

        async fn container_images(&self, task_definition: &str) -> Result<Vec<String>, AwsError> {
            self.call("DescribeTaskDefinition", 0).await?;
            Ok(self
                .definitions
                .get(task_definition)
                .cloned()
                .unwrap_or_default())
        }
    }

    fn task(id: &str, containers: &[(&str, Option<&str>)]) -> Task {
        Task {
            arn: format!("arn:aws:ecs:us-east-1:123456789012:task/prod/{id}"),
            containers: containers
                .iter()
                .map(|(image, digest)| ContainerImage {
                    image: (*image).to_owned(),
                    digest: digest.map(str::to_owned),
                })
                .collect(),
        }
    }

    fn service(name: &str, task_definitions: &[&str]) -> Service {
        Service {
            name: name.to_owned(),
            task_definitions: task_definitions.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn use_of(reference: &str, digest: Option<&str>, user: &str) -> ImageUse {
        ImageUse {
            reference: reference.to_owned(),
            digest: digest.map(str::to_owned),
            user: user.to_owned(),
        }
    }

    /// Two clusters: a running task (one container resolved, one pinned by digest), a task
    /// that vanished, and three services over three task definitions, one shared.
    fn world() -> FakeEcs {
        let vanished = task("gone", &[("x:y", None)]);
        FakeEcs {
            clusters: vec![PROD.into(), DEV.into()],
            tasks: vec![
                (
                    PROD.into(),
                    task(
                        "0123abcd",
                        &[
                            (&format!("{REPO}/api:v3"), Some("sha256:a")),
                            (&format!("{REPO}/proxy@sha256:p"), None),
                        ],
                    ),
                ),
                (PROD.into(), vanished.clone()),
            ],
            services: vec![
                (PROD.into(), service("api", &["td/api:1", "td/api:2"])),
                (PROD.into(), service("worker", &["td/api:2"])),
                (DEV.into(), service("web", &["td/web:1"])),
            ],
            item_failures: HashMap::from([(vanished.arn, MISSING)]),
            definitions: HashMap::from([
                ("td/api:1".into(), vec![format!("{REPO}/api:v2")]),
                ("td/api:2".into(), vec![format!("{REPO}/api:v3")]),
                ("td/web:1".into(), vec![format!("{REPO}/web@sha256:w")]),
            ]),
            ..FakeEcs::default()
        }
    }

    #[tokio::test]
    async fn every_task_and_service_of_every_cluster_is_a_use() {
        let ecs = world();
        let uses = ecs_image_uses(&ecs, 4).await.expect("walked");
        let api = format!("{REPO}/api");
        assert_eq!(
            uses,
            [
                use_of(&format!("{api}:v2"), None, "ECS service prod/api"),
                use_of(&format!("{api}:v3"), None, "ECS service prod/api"),
                use_of(&format!("{api}:v3"), None, "ECS service prod/worker"),
                use_of(
                    &format!("{api}:v3"),
                    Some("sha256:a"),
                    "ECS task prod/0123abcd"
                ),
                use_of(
                    &format!("{REPO}/proxy@sha256:p"),
                    Some("sha256:p"),
                    "ECS task prod/0123abcd"
                ),
                use_of(
                    &format!("{REPO}/web@sha256:w"),
                    Some("sha256:w"),
                    "ECS service dev/web"
                ),
            ]
        );
        assert_eq!(
            ecs.sizes("DescribeTaskDefinition").len(),
            3,
            "td/api:2 is described once for both services"
        );
    }

    #[tokio::test]
    async fn describe_calls_are_batched_at_the_limits() {
        let tasks = (0..250).map(|i| (PROD.to_owned(), task(&format!("t{i}"), &[("img:1", None)])));
        let services = (0..25).map(|i| (PROD.to_owned(), service(&format!("s{i}"), &["td/one:1"])));
        let ecs = FakeEcs {
            clusters: vec![PROD.into()],
            tasks: tasks.collect(),
            services: services.collect(),
            definitions: HashMap::from([("td/one:1".into(), vec!["img:1".into()])]),
            ..FakeEcs::default()
        };
        let uses = ecs_image_uses(&ecs, 3).await.expect("walked");
        assert_eq!(ecs.sizes("DescribeTasks"), [50, 100, 100]);
        assert_eq!(ecs.sizes("DescribeServices"), [5, 10, 10]);
        assert_eq!(ecs.sizes("DescribeTaskDefinition").len(), 1);
        assert_eq!(uses.len(), 250 + 25, "one use per task and per service");
    }

    #[tokio::test]
    async fn any_failed_call_is_an_error() {
        for operation in [
            "ListClusters",
            "ListTasks",
            "DescribeTasks",
            "ListServices",
            "DescribeServices",
            "DescribeTaskDefinition",
        ] {
            let ecs = FakeEcs {
                failing_call: Some(operation),
                ..world()
            };
            let err = ecs_image_uses(&ecs, 2).await.expect_err(operation);
            assert_eq!(err.operation, operation);
        }
    }

    #[tokio::test]
    async fn an_item_that_failed_other_than_missing_is_an_error() {
        let mut tasks = world();
        tasks.item_failures = HashMap::from([(tasks.tasks[0].1.arn.clone(), "INTERNAL")]);
        let err = ecs_image_uses(&tasks, 2).await.expect_err("unknown task");
        assert_eq!(
            (err.operation, err.code.as_deref()),
            ("DescribeTasks", Some("INTERNAL"))
        );

        let mut services = world();
        services.item_failures = HashMap::from([("web".to_owned(), "INTERNAL")]);
        let err = ecs_image_uses(&services, 2)
            .await
            .expect_err("unknown service");
        assert_eq!(err.operation, "DescribeServices");
    }

    #[tokio::test]
    async fn calls_in_flight_stay_within_the_bound() {
        let clusters: Vec<String> = (0..8).map(|i| format!("{PROD}{i}")).collect();
        let ecs = FakeEcs {
            clusters: clusters.clone(),
            ..FakeEcs::default()
        };
        ecs_image_uses(&ecs, 3).await.expect("walked");
        assert_eq!(ecs.max_in_flight.load(Ordering::SeqCst), 3);
        assert_eq!(ecs.sizes("ListTasks").len(), 8);

        let one_at_a_time = FakeEcs {
            clusters,
            ..FakeEcs::default()
        };
        ecs_image_uses(&one_at_a_time, 0).await.expect("0 means 1");
        assert_eq!(one_at_a_time.max_in_flight.load(Ordering::SeqCst), 1);
    }
}
