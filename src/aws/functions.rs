//! The read-only slice of Lambda that tells which images functions run, as a trait, and its
//! `aws-sdk-lambda` implementation. (The module is not called `lambda`: that is the handler.)
//!
//! [`lambda_image_uses`] walks every container-image function and the versions to protect,
//! so that the janitor never deletes an image a function version runs. It is written against
//! [`Functions`] so that it can be tested without the SDK; the adapter ([`LambdaClient`]) is
//! tested with `aws-smithy-mocks`. Any failed call is an error, so that the caller can fail
//! closed.

use std::collections::BTreeSet;
use std::future::Future;

use aws_config::retry::RetryConfig;
use aws_config::SdkConfig;
use aws_sdk_lambda::types::{AliasConfiguration, PackageType};
use futures::stream::{self, StreamExt, TryStreamExt};

use super::{AwsError, MAX_ATTEMPTS};
use crate::model::ImageUse;

/// Lambda returns at most 50 functions, versions or aliases per page.
pub const PAGE_SIZE: i32 = 50;
/// The qualifier of a function's unpublished, editable version.
pub const LATEST: &str = "$LATEST";

/// Which versions of a function to protect (`PROTECT_LAMBDA_VERSIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LambdaVersions {
    /// `$LATEST` and every published version: any of them may be invoked.
    All,
    /// `$LATEST` and the versions aliases route to, weighted routing included.
    Aliased,
}

/// The image a function version runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionImage {
    /// `Code.ImageUri` (as deployed, by tag or digest), else `Code.ResolvedImageUri`.
    pub reference: String,
    /// The digest of `Code.ResolvedImageUri`, when Lambda gave one.
    pub digest: Option<String>,
}

/// The Lambda operations that tell which images are in use; all read-only.
pub trait Functions: Sync {
    /// The names of every function packaged as a container image (all pages).
    fn image_functions(&self) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// The function's versions: `$LATEST` and every published version (all pages).
    fn versions(
        &self,
        function: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// The versions the function's aliases route to: each alias's version and the versions
    /// of its weighted routing (all pages).
    fn aliased_versions(
        &self,
        function: &str,
    ) -> impl Future<Output = Result<Vec<String>, AwsError>> + Send;

    /// The image of one version of the function; None if Lambda names none.
    fn image(
        &self,
        function: &str,
        qualifier: &str,
    ) -> impl Future<Output = Result<Option<FunctionImage>, AwsError>> + Send;
}

/// [`Functions`] over `aws-sdk-lambda`.
#[derive(Debug, Clone)]
pub struct LambdaClient {
    client: aws_sdk_lambda::Client,
}

impl LambdaClient {
    /// Wraps a configured client (tests pass a mocked one).
    pub fn new(client: aws_sdk_lambda::Client) -> Self {
        Self { client }
    }

    /// The SDK client, for the cursor's tag calls ([`super::cursor`]).
    pub(super) fn sdk(&self) -> &aws_sdk_lambda::Client {
        &self.client
    }

    /// A client from a shared AWS configuration (one per region), retrying throttling and
    /// 5xx with the SDK's standard backoff, like the ECR client.
    pub fn from_shared(shared: &SdkConfig) -> Self {
        let config = aws_sdk_lambda::config::Builder::from(shared)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .build();
        Self::new(aws_sdk_lambda::Client::from_conf(config))
    }
}

/// The alias's version, then the versions its weighted routing sends traffic to.
fn alias_versions(alias: AliasConfiguration) -> impl Iterator<Item = String> {
    let weighted = alias
        .routing_config
        .and_then(|r| r.additional_version_weights)
        .unwrap_or_default();
    alias
        .function_version
        .into_iter()
        .chain(weighted.into_keys())
}

impl Functions for LambdaClient {
    async fn image_functions(&self) -> Result<Vec<String>, AwsError> {
        let mut pages = self
            .client
            .list_functions()
            .max_items(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListFunctions", e))?;
            out.extend(
                page.functions
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|f| f.package_type == Some(PackageType::Image))
                    .filter_map(|f| f.function_name.or(f.function_arn)),
            );
        }
        Ok(out)
    }

    async fn versions(&self, function: &str) -> Result<Vec<String>, AwsError> {
        let mut pages = self
            .client
            .list_versions_by_function()
            .function_name(function)
            .max_items(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListVersionsByFunction", e))?;
            out.extend(
                page.versions
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|v| v.version),
            );
        }
        Ok(out)
    }

    async fn aliased_versions(&self, function: &str) -> Result<Vec<String>, AwsError> {
        let mut pages = self
            .client
            .list_aliases()
            .function_name(function)
            .max_items(PAGE_SIZE)
            .into_paginator()
            .send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListAliases", e))?;
            out.extend(
                page.aliases
                    .unwrap_or_default()
                    .into_iter()
                    .flat_map(alias_versions),
            );
        }
        Ok(out)
    }

    async fn image(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<FunctionImage>, AwsError> {
        let out = self
            .client
            .get_function()
            .function_name(function)
            .qualifier(qualifier)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetFunction", e))?;
        let Some(code) = out.code else {
            return Ok(None);
        };
        let digest = code
            .resolved_image_uri
            .as_deref()
            .and_then(ImageUse::pinned_digest)
            .map(str::to_owned);
        Ok(code
            .image_uri
            .or(code.resolved_image_uri)
            .map(|reference| FunctionImage { reference, digest }))
    }
}

/// The versions of `function` to protect.
async fn qualifiers<F: Functions>(
    functions: &F,
    function: &str,
    versions: LambdaVersions,
) -> Result<BTreeSet<String>, AwsError> {
    Ok(match versions {
        LambdaVersions::All => functions.versions(function).await?.into_iter().collect(),
        LambdaVersions::Aliased => {
            let mut aliased: BTreeSet<String> = functions
                .aliased_versions(function)
                .await?
                .into_iter()
                .collect();
            aliased.insert(LATEST.to_owned());
            aliased
        }
    })
}

/// Every image a container-image function runs, for the `versions` to protect. Sorted, each
/// use once. At most `concurrency` calls are in flight; any failed call is an error.
pub async fn lambda_image_uses<F: Functions>(
    functions: &F,
    versions: LambdaVersions,
    concurrency: usize,
) -> Result<Vec<ImageUse>, AwsError> {
    let concurrency = concurrency.max(1);
    let names = functions.image_functions().await?;
    let qualified: Vec<(&String, BTreeSet<String>)> = stream::iter(&names)
        .map(|name| async move {
            Ok::<_, AwsError>((name, qualifiers(functions, name, versions).await?))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let pairs = qualified
        .iter()
        .flat_map(|(name, qualifiers)| qualifiers.iter().map(move |q| (name.as_str(), q.as_str())));
    let uses: Vec<Option<ImageUse>> = stream::iter(pairs)
        .map(|(name, qualifier)| async move {
            let image = functions.image(name, qualifier).await?;
            Ok::<_, AwsError>(image.map(|i| {
                ImageUse::new(
                    i.reference,
                    i.digest,
                    format!("Lambda function {name}:{qualifier}"),
                )
            }))
        })
        .buffer_unordered(concurrency)
        .try_collect()
        .await?;
    let mut uses: Vec<ImageUse> = uses.into_iter().flatten().collect();
    uses.sort();
    uses.dedup();
    Ok(uses)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    const REPO: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com/team";

    /// An in-memory Lambda: per function its published versions, aliased versions and the
    /// image of each version; the call that fails; and a record of the calls.
    #[derive(Default)]
    struct FakeFunctions {
        functions: Vec<&'static str>,
        versions: HashMap<&'static str, Vec<&'static str>>,
        aliased: HashMap<&'static str, Vec<&'static str>>,
        images: HashMap<(&'static str, &'static str), FunctionImage>,
        failing_call: Option<&'static str>,
        calls: Mutex<Vec<String>>,
    }

    impl FakeFunctions {
        fn call(&self, operation: &'static str, target: String) -> Result<(), AwsError> {
            self.calls.lock().expect("calls").push(target);
            match self.failing_call {
                Some(failing) if failing == operation => Err(AwsError {
                    operation,
                    code: Some("AccessDeniedException".into()),
                    message: "denied".into(),
                }),
                _ => Ok(()),
            }
        }

        fn calls(&self) -> Vec<String> {
            let mut calls = self.calls.lock().expect("calls").clone();
            calls.sort();
            calls
        }

        fn listed(map: &HashMap<&str, Vec<&str>>, function: &str) -> Vec<String> {
            map.get(function)
                .into_iter()
                .flatten()
                .map(|v| (*v).to_owned())
                .collect()
        }
    }

    impl Functions for FakeFunctions {
        async fn image_functions(&self) -> Result<Vec<String>, AwsError> {
            self.call("ListFunctions", "ListFunctions".into())?;
            Ok(self.functions.iter().map(|f| (*f).to_owned()).collect())
        }

        async fn versions(&self, function: &str) -> Result<Vec<String>, AwsError> {
            self.call("ListVersionsByFunction", format!("versions {function}"))?;
            Ok(Self::listed(&self.versions, function))
        }

        async fn aliased_versions(&self, function: &str) -> Result<Vec<String>, AwsError> {
            self.call("ListAliases", format!("aliases {function}"))?;
            Ok(Self::listed(&self.aliased, function))
        }

        async fn image(
            &self,
            function: &str,
            qualifier: &str,
        ) -> Result<Option<FunctionImage>, AwsError> {
            self.call("GetFunction", format!("get {function}:{qualifier}"))?;
            Ok(self
                .images
                .iter()
                .find(|((f, q), _)| *f == function && *q == qualifier)
                .map(|(_, image)| image.clone()))
        }
    }

    fn image(reference: &str, digest: Option<&str>) -> FunctionImage {
        FunctionImage {
            reference: reference.to_owned(),
            digest: digest.map(str::to_owned),
        }
    }

    /// `worker` has versions 1–3 (aliases on 2, and on 3 by weight) and an image per
    /// version; `api` has no alias and no published version, and $LATEST pinned by digest.
    fn world() -> FakeFunctions {
        let worker = format!("{REPO}/worker");
        FakeFunctions {
            functions: vec!["worker", "api"],
            versions: HashMap::from([
                ("worker", vec![LATEST, "1", "2", "3"]),
                ("api", vec![LATEST]),
            ]),
            aliased: HashMap::from([("worker", vec!["2", "3", "2"])]),
            images: HashMap::from([
                (
                    ("worker", LATEST),
                    image(&format!("{worker}:v4"), Some("sha256:4")),
                ),
                (
                    ("worker", "1"),
                    image(&format!("{worker}:v1"), Some("sha256:1")),
                ),
                (("worker", "2"), image(&format!("{worker}:v2"), None)),
                (
                    ("worker", "3"),
                    image(&format!("{worker}:v3"), Some("sha256:3")),
                ),
                (
                    ("api", LATEST),
                    image(&format!("{REPO}/api@sha256:a"), None),
                ),
            ]),
            ..FakeFunctions::default()
        }
    }

    fn users(uses: &[ImageUse]) -> Vec<(&str, Option<&str>)> {
        uses.iter()
            .map(|u| (u.user.as_str(), u.digest.as_deref()))
            .collect()
    }

    #[tokio::test]
    async fn all_versions_of_every_function_are_uses() {
        let functions = world();
        let uses = lambda_image_uses(&functions, LambdaVersions::All, 2)
            .await
            .expect("walked");
        let mut seen = users(&uses);
        seen.sort();
        assert_eq!(
            seen,
            [
                ("Lambda function api:$LATEST", Some("sha256:a")),
                ("Lambda function worker:$LATEST", Some("sha256:4")),
                ("Lambda function worker:1", Some("sha256:1")),
                ("Lambda function worker:2", None),
                ("Lambda function worker:3", Some("sha256:3")),
            ]
        );
        assert_eq!(uses[0].reference, format!("{REPO}/api@sha256:a"));
        assert!(
            !functions.calls().iter().any(|c| c.starts_with("aliases")),
            "all versions need no alias"
        );
    }

    #[tokio::test]
    async fn aliased_protects_latest_and_alias_versions_only() {
        let functions = world();
        let uses = lambda_image_uses(&functions, LambdaVersions::Aliased, 2)
            .await
            .expect("walked");
        let mut seen = users(&uses);
        seen.sort();
        assert_eq!(
            seen,
            [
                ("Lambda function api:$LATEST", Some("sha256:a")),
                ("Lambda function worker:$LATEST", Some("sha256:4")),
                ("Lambda function worker:2", None),
                ("Lambda function worker:3", Some("sha256:3")),
            ]
        );
        assert_eq!(
            functions.calls(),
            [
                "ListFunctions",
                "aliases api",
                "aliases worker",
                "get api:$LATEST",
                "get worker:$LATEST",
                "get worker:2",
                "get worker:3",
            ],
            "no version listing, and each version read once"
        );
    }

    #[tokio::test]
    async fn a_version_without_an_image_is_not_a_use() {
        let mut functions = world();
        functions.images.remove(&("api", LATEST));
        let uses = lambda_image_uses(&functions, LambdaVersions::Aliased, 1)
            .await
            .expect("walked");
        assert!(uses.iter().all(|u| !u.user.contains("api")), "{uses:?}");
        assert_eq!(uses.len(), 3);
    }

    #[tokio::test]
    async fn any_failed_call_is_an_error() {
        for (operation, versions) in [
            ("ListFunctions", LambdaVersions::All),
            ("ListVersionsByFunction", LambdaVersions::All),
            ("ListAliases", LambdaVersions::Aliased),
            ("GetFunction", LambdaVersions::Aliased),
        ] {
            let functions = FakeFunctions {
                failing_call: Some(operation),
                ..world()
            };
            let err = lambda_image_uses(&functions, versions, 2)
                .await
                .expect_err(operation);
            assert_eq!(err.operation, operation);
        }
    }
}
