//! Images in use are never deleted: which images of a repository ECS tasks and services and
//! Lambda functions use, from the image references they name.
//!
//! Only references to this account's ECR registries count, matched by region, repository
//! and digest. A reference by tag protects the image that holds the tag now; one by digest
//! protects that image, whatever its tags. An index that is protected keeps its children by
//! the graph rule ([`super::graph`]).

use std::collections::BTreeMap;

use crate::model::{Digest, Image, ImageUse};

/// Where an ECR image reference points:
/// `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>[:<tag>][@<digest>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrReference {
    /// The registry's account.
    pub account: String,
    /// The registry's region.
    pub region: String,
    /// The repository name.
    pub repository: String,
    /// The tag, when the reference names one.
    pub tag: Option<String>,
}

/// Parses an ECR image reference; None for anything else (Docker Hub, ECR Public, …).
pub fn parse_reference(reference: &str) -> Option<EcrReference> {
    let (host, path) = reference.split_once('/')?;
    let mut labels = host.split('.');
    let account = labels.next()?;
    let (dkr, ecr, region) = (labels.next()?, labels.next()?, labels.next()?);
    let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if !valid_account || dkr != "dkr" || ecr != "ecr" || labels.next() != Some("amazonaws") {
        return None;
    }
    let path = path.split_once('@').map_or(path, |(p, _)| p);
    // A tag follows the last `:` of the last path segment (a repository name has no `:`).
    let last = path.rsplit('/').next().unwrap_or(path);
    let (repository, tag) = match last.rsplit_once(':') {
        Some((_, tag)) => (&path[..path.len() - tag.len() - 1], Some(tag.to_owned())),
        None => (path, None),
    };
    Some(EcrReference {
        account: account.to_owned(),
        region: region.to_owned(),
        repository: repository.to_owned(),
        tag,
    })
}

/// The account and region of a repository ARN
/// (`arn:<partition>:ecr:<region>:<account>:repository/<name>`).
pub fn arn_location(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':');
    let (_arn, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account) = (parts.next()?, parts.next()?);
    (service == "ecr").then_some((account, region))
}

/// (account, region, repository): where a use points.
type Location = (String, String, String);

/// One use: the tag it names, the digest it resolved to, and who uses it.
#[derive(Debug, Clone)]
struct Use {
    tag: Option<String>,
    digest: Option<String>,
    user: String,
}

/// Every image use found by one run's lookup, by the repository it points into.
#[derive(Debug, Clone, Default)]
pub struct InUse {
    uses: BTreeMap<Location, Vec<Use>>,
    count: usize,
}

impl InUse {
    /// Indexes the uses that point into ECR; others cannot be ours and are left out.
    pub fn new(uses: &[ImageUse]) -> Self {
        let mut in_use = Self::default();
        for u in uses {
            let Some(r) = parse_reference(&u.reference) else {
                continue;
            };
            let key = (r.account, r.region, r.repository);
            let entry = Use {
                tag: r.tag,
                digest: u.digest.clone(),
                user: u.user.clone(),
            };
            in_use.uses.entry(key).or_default().push(entry);
            in_use.count += 1;
        }
        in_use
    }

    /// How many uses point into ECR.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no use points into ECR.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The images of one repository in use: digest → its users (`ECS service prod/api,
    /// Lambda function worker:3`), each named once.
    pub fn protected(
        &self,
        account: &str,
        region: &str,
        repository: &str,
        images: &[Image],
    ) -> BTreeMap<Digest, String> {
        let key = (account.to_owned(), region.to_owned(), repository.to_owned());
        let mut users: BTreeMap<Digest, Vec<&str>> = BTreeMap::new();
        for Use { tag, digest, user } in self.uses.get(&key).into_iter().flatten() {
            let holder = match (digest, tag) {
                (Some(digest), _) => images.iter().find(|i| i.digest == *digest),
                (None, Some(tag)) => images.iter().find(|i| i.tags.contains(tag)),
                (None, None) => None,
            };
            if let Some(image) = holder {
                let names = users.entry(image.digest.clone()).or_default();
                if !names.contains(&user.as_str()) {
                    names.push(user);
                }
            }
        }
        users
            .into_iter()
            .map(|(digest, names)| (digest, names.join(", ")))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::now;

    const REGISTRY: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

    #[test]
    fn references() {
        let ours = |repository: &str, tag: Option<&str>| {
            Some(EcrReference {
                account: "123456789012".into(),
                region: "us-east-1".into(),
                repository: repository.into(),
                tag: tag.map(str::to_owned),
            })
        };
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases = [
            (format!("{REGISTRY}/api:v3"), ours("api", Some("v3"))),
            (
                format!("{REGISTRY}/team/api@{digest}"),
                ours("team/api", None),
            ),
            (
                format!("{REGISTRY}/team/api:v3@{digest}"),
                ours("team/api", Some("v3")),
            ),
            (format!("{REGISTRY}/team/api"), ours("team/api", None)),
            (
                "123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/api:1".into(),
                Some(EcrReference {
                    account: "123456789012".into(),
                    region: "cn-north-1".into(),
                    repository: "api".into(),
                    tag: Some("1".into()),
                }),
            ),
            ("nginx:1.27".into(), None),
            ("public.ecr.aws/docker/library/nginx:1".into(), None),
            ("registry.example.com:5000/team/api:v3".into(), None),
        ];
        for (reference, expected) in cases {
            assert_eq!(parse_reference(&reference), expected, "{reference}");
        }
    }

    #[test]
    fn repository_arns() {
        let arn = "arn:aws:ecr:eu-west-1:123456789012:repository/team/api";
        assert_eq!(arn_location(arn), Some(("123456789012", "eu-west-1")));
        assert_eq!(arn_location("arn:aws:s3:::bucket"), None);
        assert_eq!(arn_location("not an arn"), None);
    }

    #[test]
    fn uses_protect_by_digest_or_by_the_tag_holder_in_their_own_registry_only() {
        let image = |d: &str, tags: &[&str]| {
            Image::plain(d, tags.iter().map(|t| t.to_string()).collect(), now())
        };
        let images = [
            image("sha256:run", &[]),
            image("sha256:latest", &["latest"]),
            image("sha256:idle", &[]),
        ];
        let use_of = |reference: String, digest: Option<&str>, user: &str| ImageUse {
            reference,
            digest: digest.map(str::to_owned),
            user: user.into(),
        };
        let uses = [
            use_of(
                format!("{REGISTRY}/api:old"),
                Some("sha256:run"),
                "ECS task prod/1",
            ),
            use_of(
                format!("{REGISTRY}/api:latest"),
                None,
                "ECS service prod/api",
            ),
            use_of(format!("{REGISTRY}/api:gone"), None, "ECS service prod/old"),
            // The same service twice, and a Lambda version on the same image: named once each.
            use_of(
                format!("{REGISTRY}/api:latest"),
                None,
                "ECS service prod/api",
            ),
            use_of(
                format!("{REGISTRY}/api:1"),
                Some("sha256:latest"),
                "Lambda function f:1",
            ),
            use_of(
                "999999999999.dkr.ecr.us-east-1.amazonaws.com/api:x".into(),
                Some("sha256:idle"),
                "Lambda function other-account:1",
            ),
            use_of(
                format!("{REGISTRY}/web@sha256:idle"),
                Some("sha256:idle"),
                "Lambda function web:$LATEST",
            ),
            use_of("nginx:1".into(), None, "ECS task prod/2"),
        ];
        let in_use = InUse::new(&uses);
        assert_eq!(in_use.len(), 7, "nginx is not in ECR");
        let protected = in_use.protected("123456789012", "us-east-1", "api", &images);
        let expected = BTreeMap::from([
            (
                Digest::from("sha256:latest"),
                "ECS service prod/api, Lambda function f:1".to_owned(),
            ),
            (Digest::from("sha256:run"), "ECS task prod/1".to_owned()),
        ]);
        assert_eq!(protected, expected);
        assert!(in_use
            .protected("123456789012", "eu-west-1", "api", &images)
            .is_empty());
    }
}
