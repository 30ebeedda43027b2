//! Test support shared by the unit tests: one configuration builder, an in-memory registry
//! that records its calls, and fake ECS/Lambda.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::aws::cursor::CursorStore;
use crate::aws::ecr::{DeleteOutcome, ManifestRead, Recheck, Registry, BATCH_LIMIT};
use crate::aws::ecs::{ContainerImage, Described, Ecs, Service, Task};
use crate::aws::eventbridge::{Events, PutOutcome};
use crate::aws::functions::{FunctionImage, Functions};
use crate::aws::AwsError;
use crate::config::{Config, ConfigError};
use crate::model::{Image, ImageFailure, Repository};
use crate::run::{Announcer, Janitor, Region, Services};

/// Environment variables of one case.
pub type Vars<'a> = &'a [(&'a str, &'a str)];

/// The configuration these variables give.
pub fn load(vars: Vars) -> Result<Config, ConfigError> {
    Config::from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
}

/// The configuration these variables give, which must be valid.
pub fn config(vars: Vars) -> Config {
    load(vars).unwrap_or_else(|e| panic!("{vars:?}: {e}"))
}

/// The tests' "now": 2026-11-30T12:00:00Z.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
        .single()
        .expect("valid time")
}

/// `n` images `days_old` days old (each a second older than the last), untagged unless
/// `tag` is given (then `<tag><i>`), digests `sha256:<prefix><i:04>`.
pub fn images(prefix: &str, n: usize, days_old: i64, tag: Option<&str>) -> Vec<Image> {
    (0..n)
        .map(|i| Image {
            digest: format!("sha256:{prefix}{i:04}").into(),
            tags: tag.map(|t| vec![format!("{t}{i}")]).unwrap_or_default(),
            pushed_at: now()
                - chrono::Duration::days(days_old)
                - chrono::Duration::seconds(i as i64),
            size_bytes: Some(1000),
            manifest_media_type: None,
            subject: None,
        })
        .collect()
}

/// An in-memory registry that records its calls.
#[derive(Default)]
pub struct FakeRegistry {
    /// Repository name → its images.
    pub images: Vec<(String, Vec<Image>)>,
    /// Repository name → its ARN, where a test needs a real one (default `arn:<name>`).
    pub arns: Vec<(String, String)>,
    /// Repository name → its resource tags.
    pub tags: Vec<(String, Vec<(String, String)>)>,
    /// Repositories whose listing fails with AccessDenied.
    pub broken: HashSet<String>,
    /// Digest → the per-image failure code BatchDeleteImage answers for it.
    pub delete_failures: Vec<(String, String)>,
    /// How long each listing takes (tokio time).
    pub delay: Duration,
    /// Index digest → its manifest text, or why BatchGetImage could not return it.
    pub manifests: Vec<ManifestRead>,
    /// Digest → the tags a re-check finds (as if tagged after the listing).
    pub retagged: Vec<(String, Vec<String>)>,
    /// How long each re-check and each delete takes (tokio time).
    pub call_delay: Duration,
    /// Digest → how much longer a re-check that asks for it takes.
    pub slow_rechecks: Vec<(String, Duration)>,
    /// Digests whose BatchDeleteImage call fails as a whole (AccessDenied).
    pub refused: HashSet<String>,
    /// Every call, as `images <repo> <listing>`, `tags <arn>`, `delete <repo> <n>`.
    pub calls: Mutex<Vec<String>>,
    /// Every digest deleted.
    pub deleted: Mutex<Vec<String>>,
    /// Each successful re-check and BatchDeleteImage call: its digests, and when it started
    /// and answered.
    pub recheck_spans: Mutex<Vec<CallSpan>>,
    /// See `recheck_spans`.
    pub delete_spans: Mutex<Vec<CallSpan>>,
    /// Calls in flight, and the order of call starts and answers.
    pub meter: Meter,
}

/// The fake's counters of calls in flight (now, and the most at once so far) and of call
/// starts and answers (ticks: the order in which things happened).
#[derive(Default)]
pub struct Meter {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    tick: AtomicUsize,
}

/// One call of the fake: which digests, started and answered when (in ticks of a counter
/// of call starts and answers, so that the order of events is exact).
#[derive(Debug, Clone, PartialEq)]
pub struct CallSpan {
    /// The digests asked for.
    pub digests: Vec<String>,
    /// Tick at which the call started.
    pub started: usize,
    /// Tick at which it answered.
    pub answered: usize,
}

/// A call of the fake being answered; counted in flight until dropped.
struct InFlight<'a>(&'a FakeRegistry);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.meter.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FakeRegistry {
    /// A registry with these repositories and images.
    pub fn with(images: Vec<(&str, Vec<Image>)>) -> Self {
        Self {
            images: images.into_iter().map(|(n, i)| (n.to_owned(), i)).collect(),
            ..Self::default()
        }
    }

    fn log(&self, call: String) {
        self.calls.lock().expect("lock").push(call);
    }

    /// The calls made so far that start with `prefix`, e.g. `images`, `delete`, `tags`.
    pub fn calls(&self, prefix: &str) -> Vec<String> {
        let calls = self.calls.lock().expect("lock");
        calls
            .iter()
            .filter(|c| c.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Every digest deleted so far.
    pub fn deleted(&self) -> Vec<String> {
        self.deleted.lock().expect("lock").clone()
    }

    /// The most calls that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.meter.max_in_flight.load(Ordering::SeqCst)
    }

    /// The BatchDeleteImage call that deleted `digest` (panics when none did).
    pub fn delete_span(&self, digest: &str) -> CallSpan {
        let spans = self.delete_spans.lock().expect("lock");
        let span = spans.iter().find(|s| s.digests.iter().any(|d| d == digest));
        span.cloned()
            .unwrap_or_else(|| panic!("{digest} was never deleted"))
    }

    fn next_tick(&self) -> usize {
        self.meter.tick.fetch_add(1, Ordering::SeqCst)
    }

    fn enter(&self) -> InFlight<'_> {
        let now = self.meter.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.meter.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(self)
    }
}

impl Registry for FakeRegistry {
    async fn repositories(&self) -> Result<Vec<Repository>, AwsError> {
        Ok(self
            .images
            .iter()
            .map(|(name, _)| Repository {
                name: name.clone(),
                arn: self
                    .arns
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or_else(|| format!("arn:{name}"), |(_, arn)| arn.clone()),
            })
            .collect())
    }

    async fn images(&self, repo: &str) -> Result<Vec<Image>, AwsError> {
        self.log(format!("images {repo}"));
        let _call = self.enter();
        tokio::time::sleep(self.delay).await;
        if self.broken.contains(repo) {
            return Err(AwsError {
                operation: "DescribeImages",
                code: Some("AccessDeniedException".into()),
                message: "denied".into(),
            });
        }
        let deleted = self.deleted();
        let all = self.images.iter().find(|(n, _)| n == repo);
        let images = all.map(|(_, images)| images.as_slice()).unwrap_or_default();
        Ok(images
            .iter()
            .filter(|i| !deleted.contains(&i.digest.to_string()))
            .cloned()
            .collect())
    }

    async fn manifests(
        &self,
        repo: &str,
        digests: &[String],
    ) -> Result<Vec<ManifestRead>, AwsError> {
        self.log(format!("manifests {repo} {}", digests.len()));
        let _call = self.enter();
        let found = self.manifests.iter().filter(|(d, _)| digests.contains(d));
        Ok(found.cloned().collect())
    }

    async fn recheck(&self, repo: &str, digests: &[String]) -> Result<Recheck, AwsError> {
        self.log(format!("recheck {repo} {}", digests.len()));
        assert!(digests.len() <= BATCH_LIMIT);
        let _call = self.enter();
        let started = self.next_tick();
        let slow = self
            .slow_rechecks
            .iter()
            .filter(|(d, _)| digests.contains(d));
        let extra: Duration = slow.map(|(_, extra)| *extra).sum();
        tokio::time::sleep(self.call_delay + extra).await;
        let deleted = self.deleted();
        let images = self.images.iter().find(|(n, _)| n == repo);
        let images = images.map(|(_, i)| i.as_slice()).unwrap_or_default();
        let mut recheck = Recheck::default();
        for digest in digests {
            match images.iter().find(|i| &i.digest == digest) {
                Some(image) if !deleted.contains(digest) => {
                    let mut image = image.clone();
                    if let Some((_, tags)) = self.retagged.iter().find(|(d, _)| d == digest) {
                        image.tags = tags.clone();
                    }
                    recheck.present.push(image);
                }
                _ => recheck.gone.push(digest.clone()),
            }
        }
        self.recheck_spans.lock().expect("lock").push(CallSpan {
            digests: digests.to_vec(),
            started,
            answered: self.next_tick(),
        });
        Ok(recheck)
    }

    async fn repository_tags(&self, arn: &str) -> Result<Vec<(String, String)>, AwsError> {
        self.log(format!("tags {arn}"));
        let _call = self.enter();
        let name = arn.trim_start_matches("arn:");
        let tags = self.tags.iter().find(|(n, _)| n == name);
        Ok(tags.map(|(_, t)| t.clone()).unwrap_or_default())
    }

    async fn delete_images(
        &self,
        repo: &str,
        digests: &[String],
    ) -> Result<DeleteOutcome, AwsError> {
        self.log(format!("delete {repo} {}", digests.len()));
        assert!(digests.len() <= BATCH_LIMIT);
        let _call = self.enter();
        // A refusal answers at once, before any other call of the same instant.
        if digests.iter().any(|d| self.refused.contains(d)) {
            return Err(AwsError {
                operation: "BatchDeleteImage",
                code: Some("AccessDeniedException".into()),
                message: "refused".into(),
            });
        }
        let started = self.next_tick();
        tokio::time::sleep(self.call_delay).await;
        let mut outcome = DeleteOutcome::default();
        for d in digests {
            match self.delete_failures.iter().find(|(f, _)| f == d) {
                Some((_, code)) => outcome.failures.push(ImageFailure {
                    image_digest: Some(d.clone()),
                    failure_code: code.clone(),
                    failure_reason: "fake".into(),
                }),
                None => outcome.deleted.push(d.clone()),
            }
        }
        self.deleted
            .lock()
            .expect("lock")
            .extend(outcome.deleted.clone());
        self.delete_spans.lock().expect("lock").push(CallSpan {
            digests: digests.to_vec(),
            started,
            answered: self.next_tick(),
        });
        Ok(outcome)
    }
}

/// ECS and Lambda as a run sees them: one cluster `prod` whose running tasks use `tasks`
/// (image reference, resolved digest), no image functions; or, with `denied`, an ECS that
/// refuses to be listed.
#[derive(Default)]
pub struct FakeCompute {
    /// (image reference, digest) of each running task's one container.
    pub tasks: Vec<(String, Option<String>)>,
    /// ListClusters fails with AccessDenied.
    pub denied: bool,
}

impl Ecs for FakeCompute {
    async fn clusters(&self) -> Result<Vec<String>, AwsError> {
        if self.denied {
            return Err(AwsError {
                operation: "ListClusters",
                code: Some("AccessDeniedException".into()),
                message: "not authorized to perform: ecs:ListClusters".into(),
            });
        }
        Ok(vec!["prod".into()])
    }

    async fn running_tasks(&self, _cluster: &str) -> Result<Vec<String>, AwsError> {
        Ok((0..self.tasks.len()).map(|i| format!("task-{i}")).collect())
    }

    async fn describe_tasks(
        &self,
        _cluster: &str,
        tasks: &[String],
    ) -> Result<Described<Task>, AwsError> {
        let found = tasks
            .iter()
            .filter_map(|arn| {
                let i: usize = arn.strip_prefix("task-")?.parse().ok()?;
                let (image, digest) = self.tasks.get(i)?.clone();
                Some(Task {
                    arn: arn.clone(),
                    containers: vec![ContainerImage { image, digest }],
                })
            })
            .collect();
        Ok(Described {
            found,
            failures: Vec::new(),
        })
    }

    async fn services(&self, _cluster: &str) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }

    async fn describe_services(
        &self,
        _cluster: &str,
        _services: &[String],
    ) -> Result<Described<Service>, AwsError> {
        Ok(Described {
            found: Vec::new(),
            failures: Vec::new(),
        })
    }

    async fn container_images(&self, _task_definition: &str) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }
}

impl Functions for FakeCompute {
    async fn image_functions(&self) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }

    async fn versions(&self, _function: &str) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }

    async fn aliased_versions(&self, _function: &str) -> Result<Vec<String>, AwsError> {
        Ok(Vec::new())
    }

    async fn image(
        &self,
        _function: &str,
        _qualifier: &str,
    ) -> Result<Option<FunctionImage>, AwsError> {
        Ok(None)
    }
}

/// EventBridge that records each event put, or refuses each.
#[derive(Default)]
pub struct FakeEvents {
    /// (bus, detail-type, detail) of each event put.
    pub put: Mutex<Vec<(String, String, String)>>,
    /// Refuse every entry (as a `FailedEntryCount` of 1).
    pub refuse: bool,
}

impl Events for FakeEvents {
    async fn put_event(
        &self,
        bus: &str,
        detail_type: &str,
        detail: &str,
    ) -> Result<PutOutcome, AwsError> {
        if self.refuse {
            return Ok(PutOutcome::Failed {
                code: "InternalFailure".into(),
                message: "refused".into(),
            });
        }
        let entry = (bus.to_owned(), detail_type.to_owned(), detail.to_owned());
        self.put.lock().expect("lock").push(entry);
        Ok(PutOutcome::Published)
    }
}

/// Function tags in memory, keyed by (function ARN, tag key); either call may be made to
/// fail.
#[derive(Default)]
pub struct FakeCursor {
    /// (function, key) → value.
    pub tags: Mutex<Vec<((String, String), String)>>,
    /// ListTags fails with AccessDenied.
    pub load_denied: bool,
    /// TagResource fails with AccessDenied.
    pub save_denied: bool,
    /// Every call, as `load <function> <key>` or `save <function> <key>=<value>`.
    pub calls: Mutex<Vec<String>>,
}

impl FakeCursor {
    /// The value of tag `key` on `function`, as saved.
    pub fn value(&self, function: &str, key: &str) -> Option<String> {
        let tags = self.tags.lock().expect("lock");
        let found = tags.iter().find(|((f, k), _)| f == function && k == key);
        found.map(|(_, v)| v.clone())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }

    fn denied(operation: &'static str) -> AwsError {
        AwsError {
            operation,
            code: Some("AccessDeniedException".into()),
            message: format!("not authorized to perform: lambda:{operation}"),
        }
    }
}

impl CursorStore for FakeCursor {
    async fn load(&self, function: &str, key: &str) -> Result<Option<String>, AwsError> {
        let call = format!("load {function} {key}");
        self.calls.lock().expect("lock").push(call);
        if self.load_denied {
            return Err(Self::denied("ListTags"));
        }
        Ok(self.value(function, key))
    }

    async fn save(&self, function: &str, key: &str, value: &str) -> Result<(), AwsError> {
        let call = format!("save {function} {key}={value}");
        self.calls.lock().expect("lock").push(call);
        if self.save_denied {
            return Err(Self::denied("TagResource"));
        }
        let mut tags = self.tags.lock().expect("lock");
        tags.retain(|((f, k), _)| !(f == function && k == key));
        tags.push(((function.to_owned(), key.to_owned()), value.to_owned()));
        Ok(())
    }
}

/// A janitor over a fake registry and fake ECS/Lambda, with events to `bus` when given.
pub fn janitor_with_events(
    vars: Vars,
    registry: FakeRegistry,
    compute: FakeCompute,
    events: Option<FakeEvents>,
) -> Janitor<FakeRegistry, FakeCompute, FakeCompute, FakeEvents, FakeCursor> {
    let compute_too = FakeCompute {
        tasks: Vec::new(),
        denied: false,
    };
    let services = Services {
        registry,
        ecs: compute,
        functions: compute_too,
    };
    let region = Region {
        name: "us-east-1".into(),
        services,
    };
    let bus = events.map(|e| ("janitor-bus".to_owned(), e));
    let announcer = Announcer::new(None, bus);
    Janitor::new(config(vars), vec![region], announcer, FakeCursor::default())
}

/// A janitor over a fake registry and fake ECS/Lambda, with no event bus.
pub fn janitor(
    vars: Vars,
    registry: FakeRegistry,
    compute: FakeCompute,
) -> Janitor<FakeRegistry, FakeCompute, FakeCompute, FakeEvents, FakeCursor> {
    janitor_with_events(vars, registry, compute, None)
}
