//! The image graph of one repository: which images follow another instead of the policy.
//!
//! Two links make an image follow another:
//! - **child**: an image index (multi-arch image, buildx output) lists it: a platform
//!   manifest, an attestation manifest, or a nested index;
//! - **referrer**: it describes another image (a cosign or notation signature, an SBOM),
//!   either by OCI 1.1 `subjectManifestDigest` or by a legacy cosign tag
//!   `sha256-<hex>.sig|.att|.sbom`.
//!
//! [`follow`] then decides each follower from the images it follows, transitively: a
//! follower is kept when anything it follows is kept, and expires (in a later delete wave)
//! when everything it follows expires. A referrer whose subject is not in the repository
//! follows nothing: the policy decides it, as ECR would.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Deserialize;

use super::plan::{Decision, KeptParent, Plan, Reason};
use crate::model::{Digest, Image, DOCKER_MANIFEST_LIST, OCI_IMAGE_INDEX};

/// `imageManifestMediaType`s of image indexes, whose children must be read.
pub const INDEX_MEDIA_TYPES: [&str; 2] = [OCI_IMAGE_INDEX, DOCKER_MANIFEST_LIST];

/// Index digest → its manifest's text, or why it could not be read.
pub type Manifests = HashMap<String, Result<String, String>>;

/// Whether the image is an image index.
pub fn is_index(image: &Image) -> bool {
    image
        .manifest_media_type
        .as_deref()
        .is_some_and(|t| INDEX_MEDIA_TYPES.contains(&t))
}

/// An index whose children are unknown: the repository fails closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The index's digest.
    pub index: String,
    /// Why its manifest could not be used.
    pub why: String,
}

#[derive(Deserialize)]
struct IndexManifest {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
}

/// The digests an index manifest lists.
pub fn children(manifest: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<IndexManifest>(manifest)
        .map(|index| index.manifests.into_iter().map(|d| d.digest).collect())
        .map_err(|e| format!("not an image index manifest: {e}"))
}

/// The subject a legacy cosign tag (`sha256-<64 hex>.sig|.att|.sbom`) names.
fn legacy_subject(tag: &str) -> Option<Digest> {
    let (hex, kind) = tag.strip_prefix("sha256-")?.split_once('.')?;
    let is_hex = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hex && matches!(kind, "sig" | "att" | "sbom"))
        .then(|| Digest::from(format!("sha256:{hex}")))
}

/// The images a referrer describes (its `subjectManifestDigest` and the subjects its legacy
/// cosign tags name), other than itself; None for an image that describes nothing.
fn subjects(image: &Image) -> Option<Vec<Digest>> {
    if image.subject.is_none() && image.tags.is_empty() {
        return None;
    }
    let legacy = image.tags.iter().filter_map(|t| legacy_subject(t));
    let own = image.subject.iter().map(|s| Digest::clone(s));
    let mut subjects: Vec<Digest> = own.chain(legacy).collect();
    subjects.sort();
    subjects.dedup();
    subjects.retain(|s| *s != image.digest);
    (!subjects.is_empty()).then_some(subjects)
}

/// How an image follows another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Child,
    Referrer,
}

/// What each image follows, and the indexes whose children are unknown.
struct Graph {
    /// Digest → (link, followed digest), in a stable order.
    parents: HashMap<Digest, Vec<(Link, Digest)>>,
    unreadable: Vec<Unreadable>,
}

impl Graph {
    fn new(images: &[Image], manifests: &Manifests) -> Self {
        let mut parents: HashMap<Digest, Vec<(Link, Digest)>> = HashMap::new();
        let mut unreadable = Vec::new();
        // One pass: the images are a repository's largest allocation.
        let (mut indexes, mut referrers) = (Vec::new(), Vec::new());
        for image in images {
            if is_index(image) {
                indexes.push(image);
            }
            if let Some(subjects) = subjects(image) {
                referrers.push((&image.digest, subjects));
            }
        }
        // Links are only made to images present: most repositories have none to make.
        let present: HashSet<&Digest> = match indexes.is_empty() && referrers.is_empty() {
            true => HashSet::new(),
            false => images.iter().map(|i| &i.digest).collect(),
        };
        for index in indexes {
            let listed = match manifests.get(&index.digest.to_string()) {
                Some(Ok(text)) => children(text),
                Some(Err(why)) => Err(why.clone()),
                None => Err("its manifest was not read".to_owned()),
            };
            match listed {
                Ok(listed) => {
                    let listed = listed.into_iter().map(Digest::from);
                    for child in listed.filter(|c| present.contains(c)) {
                        parents
                            .entry(child)
                            .or_default()
                            .push((Link::Child, index.digest.clone()));
                    }
                }
                Err(why) => unreadable.push(Unreadable {
                    index: index.digest.to_string(),
                    why,
                }),
            }
        }
        // A referrer whose subject is absent follows nothing: the policy decides it like any
        // other image. Its subject may live in another repository (cosign's
        // COSIGN_REPOSITORY), or have been pushed during the listing and missed by it.
        for (digest, subjects) in referrers {
            for subject in subjects.into_iter().filter(|s| present.contains(s)) {
                let entry = parents.entry(digest.clone()).or_default();
                entry.push((Link::Referrer, subject));
            }
        }
        Self {
            parents,
            unreadable,
        }
    }

    /// Followers have a parent; a follower with tags of its own (other than legacy cosign
    /// tags) also stands on its own before the policy.
    fn stands_alone(&self, image: &Image) -> bool {
        self.parents.is_empty()
            || !self.parents.contains_key(&image.digest)
            || image.tags.iter().any(|t| legacy_subject(t).is_none())
    }
}

/// The outcome of one image while the followers are resolved.
#[derive(Debug, Clone)]
enum Status {
    /// Kept; with a tag that keeps it, for the reasons of its followers.
    Kept(Option<Box<str>>),
    /// Expires in this delete wave.
    Expired(u32),
}

/// An image not settled yet: decided by the policy (it stands alone), or not at all (it
/// follows; by its place in the listing).
enum Pending {
    Decided(Decision),
    Follower(u32),
}

impl Pending {
    fn listed(&self) -> u32 {
        match self {
            Pending::Decided(d) => d.listed,
            Pending::Follower(listed) => *listed,
        }
    }
}

/// Decides every image that takes part in the graph, parents first, each once; images
/// that take no part are settled as they come. Decisions move from `pending` into the plan,
/// which holds the images.
struct Resolver<'a> {
    graph: &'a Graph,
    protected: &'a BTreeMap<Digest, String>,
    pending: HashMap<Digest, Pending>,
    status: HashMap<Digest, Status>,
    plan: Plan,
}

impl Resolver<'_> {
    fn resolve(&mut self, digest: &Digest) -> Status {
        if let Some(status) = self.status.get(digest) {
            return status.clone();
        }
        // A guard first: a cycle (impossible between content-addressed manifests) keeps.
        self.status.insert(digest.clone(), Status::Kept(None));
        let parents = self.graph.parents.get(digest).cloned().unwrap_or_default();
        let mut kept_by = None;
        let mut wave = None;
        // Every parent is in the repository (the graph links nothing else), so each is
        // pending or resolved (one that was neither would resolve as kept).
        for (link, parent) in &parents {
            match self.resolve(parent) {
                Status::Kept(tag) => {
                    kept_by.get_or_insert((*link, parent.clone(), tag));
                }
                Status::Expired(w) => wave = Some(wave.unwrap_or(0).max(w + 1)),
            }
        }
        let status = match self.pending.remove(digest) {
            Some(pending) => self.settle(pending, &parents, kept_by, wave.unwrap_or(0)),
            None => Status::Kept(None),
        };
        self.status.insert(digest.clone(), status.clone());
        status
    }

    /// Decides one image once what it follows is resolved, and files it in the plan.
    fn settle(
        &mut self,
        pending: Pending,
        parents: &[(Link, Digest)],
        kept_by: Option<(Link, Digest, Option<Box<str>>)>,
        wave: u32,
    ) -> Status {
        let image = &self.plan.images[pending.listed() as usize];
        let own_tag = image.tags.first().map(|t| Box::from(t.as_str()));
        let user = self.protected.get(&image.digest).map(|u| u.as_str().into());
        let untagged = image.tags.is_empty();
        let held = self
            .graph
            .unreadable
            .first()
            .map(|u| u.index.as_str().into());
        let (decision, status) = match (pending, user, kept_by) {
            (Pending::Decided(d), _, _) if !expires(&d.reason) => (d, Status::Kept(own_tag)),
            (p, Some(user), _) => (keep(p, Reason::InUse { user }), Status::Kept(own_tag)),
            (p, None, Some((link, parent, tag))) => {
                let parent = Box::new(KeptParent {
                    digest: parent.to_string().into(),
                    tag: tag.clone(),
                });
                let reason = match link {
                    Link::Child => Reason::ListedByKept { index: parent },
                    Link::Referrer => Reason::SubjectKept { subject: parent },
                };
                (keep(p, reason), Status::Kept(tag.or(own_tag)))
            }
            (p, None, None) if held.is_some() && untagged => {
                let index = held.unwrap_or_default();
                let reason = Reason::ManifestUnreadable { index };
                (keep(p, reason), Status::Kept(None))
            }
            (p, None, None) => {
                let mut decision = match p {
                    Pending::Decided(d) => d,
                    Pending::Follower(listed) => Decision::new(listed, follower_expiry(parents)),
                };
                decision.wave = wave;
                if !parents.is_empty() {
                    let parents = parents.iter().map(|(_, p)| p.clone()).collect();
                    self.plan.follows.insert(decision.listed, parents);
                }
                (decision, Status::Expired(wave))
            }
        };
        match status {
            Status::Kept(_) => self.plan.kept.push(decision),
            Status::Expired(_) => self.plan.expired.push(decision),
        }
        status
    }
}

/// A kept decision on a pending image, for `reason`.
fn keep(pending: Pending, reason: Reason) -> Decision {
    Decision::new(pending.listed(), reason)
}

/// Whether a policy decision expires the image (the policy's own reasons only).
fn expires(reason: &Reason) -> bool {
    matches!(
        reason,
        Reason::PushedTooLongAgo { .. } | Reason::BeyondCount { .. }
    )
}

/// Why a follower whose parents all expire expires too.
fn follower_expiry(parents: &[(Link, Digest)]) -> Reason {
    let indexes: Vec<&Digest> = parents
        .iter()
        .filter(|(link, _)| *link == Link::Child)
        .map(|(_, p)| p)
        .collect();
    if let Some(first) = indexes.first() {
        return Reason::ListedByExpired {
            index: first.to_string().into(),
            indexes: indexes.len() as u32,
        };
    }
    // A follower has a parent: it is in the graph for that.
    let subject = parents.first().map(|(_, s)| s.to_string());
    Reason::SubjectExpired {
        subject: subject.unwrap_or_default().into(),
    }
}

/// Decides one repository: the policy decides the images that stand alone, an image in use
/// (`protected`: digest → who uses it) is kept whatever the policy says, then each image
/// that follows others (index children, referrers) follows them. With an unreadable index
/// manifest, no untagged image expires. `decide_alone` plans all images but the followers,
/// whose places in the listing (ascending) it is given.
pub fn follow(
    images: Vec<Image>,
    manifests: &Manifests,
    protected: &BTreeMap<Digest, String>,
    decide_alone: impl FnOnce(Vec<Image>, &[u32]) -> Plan,
) -> Plan {
    let graph = Graph::new(&images, manifests);
    let followers = graph.followers(&images);
    let places: Vec<u32> = followers.iter().map(|&(_, listed)| listed).collect();
    let mut by_policy = decide_alone(images, &places);
    let (mut pending, changed) = graph.take_changed(&mut by_policy, protected);
    let mut resolver = Resolver {
        graph: &graph,
        protected,
        pending: HashMap::new(),
        status: HashMap::new(),
        plan: by_policy,
    };
    // An expired decision the graph keeps (in use, or held by an unreadable index) moves to
    // the kept list and out of its order.
    let mut reordered = false;
    for decision in changed {
        let status = resolver.settle(Pending::Decided(decision), &[], None, 0);
        reordered |= matches!(status, Status::Kept(_));
    }
    pending.extend(
        followers
            .into_iter()
            .map(|(digest, listed)| (digest, Pending::Follower(listed))),
    );
    let linked: Vec<Digest> = pending.keys().cloned().collect();
    resolver.pending = pending;
    for digest in &linked {
        resolver.resolve(digest);
    }
    let mut plan = resolver.plan;
    // The policy's decisions come sorted; only images the graph moved or decided need placing.
    if reordered || !linked.is_empty() {
        plan.sort();
    }
    plan.unreadable = graph.unreadable;
    plan
}

impl Graph {
    /// The images that follow others, by digest and place in the listing (ascending).
    fn followers(&self, images: &[Image]) -> Vec<(Digest, u32)> {
        if self.parents.is_empty() {
            return Vec::new();
        }
        let listed = images.iter().zip(0u32..);
        listed
            .filter(|(image, _)| !self.stands_alone(image))
            .map(|(image, at)| (image.digest.clone(), at))
            .collect()
    }

    /// Takes out of the policy's plan the decisions the graph may change: those of linked
    /// images (a parent or a follower), to resolve, and expired ones that are in use or held
    /// by an unreadable index (untagged), to settle. The rest stay where they are, in order.
    fn take_changed(
        &self,
        plan: &mut Plan,
        protected: &BTreeMap<Digest, String>,
    ) -> (HashMap<Digest, Pending>, Vec<Decision>) {
        let held = !self.unreadable.is_empty();
        if self.parents.is_empty() && protected.is_empty() && !held {
            return (HashMap::new(), Vec::new());
        }
        let linked: BTreeSet<&Digest> = self
            .parents
            .iter()
            .flat_map(|(child, parents)| {
                std::iter::once(child).chain(parents.iter().map(|(_, p)| p))
            })
            .collect();
        let images = &plan.images;
        let image = |d: &Decision| &images[d.listed as usize];
        let is_linked = |d: &Decision| linked.contains(&image(d).digest);
        let kept = plan.kept.extract_if(.., |d| is_linked(d));
        let expired = plan.expired.extract_if(.., |d| {
            is_linked(d)
                || protected.contains_key(&image(d).digest)
                || (held && image(d).tags.is_empty())
        });
        let (linked_decisions, changed): (Vec<Decision>, Vec<Decision>) =
            kept.chain(expired).partition(is_linked);
        let pending = linked_decisions
            .into_iter()
            .map(|d| (image(&d).digest.clone(), Pending::Decided(d)))
            .collect();
        (pending, changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::decide;
    use crate::decide::policy::Policy;
    use crate::testing::now;
    use chrono::TimeDelta;
    use proptest::prelude::*;
    use serde_json::json;

    const OCI_INDEX: &str = INDEX_MEDIA_TYPES[0];

    fn digest(name: &str) -> String {
        format!("sha256:{name}")
    }

    fn image(name: &str, tags: &[&str], days: i64) -> Image {
        let tags = tags.iter().map(|t| t.to_string()).collect();
        Image::plain(&digest(name), tags, now() - TimeDelta::days(days))
    }

    fn index(name: &str, tags: &[&str], days: i64) -> Image {
        Image {
            manifest_media_type: Some(OCI_INDEX.into()),
            ..image(name, tags, days)
        }
    }

    fn referrer(name: &str, subject: &str, days: i64) -> Image {
        Image {
            subject: Some(Box::new(digest(subject).into())),
            ..image(name, &[], days)
        }
    }

    fn manifest(children: &[&str]) -> Result<String, String> {
        let manifests: Vec<_> = children
            .iter()
            .map(|c| json!({"digest": digest(c)}))
            .collect();
        Ok(json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).to_string())
    }

    fn manifests(entries: &[(&str, Result<String, String>)]) -> Manifests {
        entries
            .iter()
            .map(|(d, m)| (digest(d), m.clone()))
            .collect()
    }

    /// Untagged images older than 14 days expire; tagged images are kept, except `old-*`
    /// tags, which expire after 30 days.
    fn policy() -> Policy {
        Policy::from_json(
            &json!({"rules": [
                {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["old-"],
                 "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 30},
                 "action": {"type": "expire"}},
                {"rulePriority": 2, "selection": {"tagStatus": "untagged",
                 "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14},
                 "action": {"type": "expire"}}
            ]})
            .to_string(),
        )
        .expect("valid policy")
    }

    /// Expired names in delete order with their waves, and kept names with their reasons.
    type Outcome = (Vec<(String, u32)>, Vec<(String, String)>);

    fn run(images: Vec<Image>, m: &Manifests) -> Outcome {
        let plan = decide(images, m, &BTreeMap::new(), &policy(), now());
        let name = |d: &Decision| {
            plan.image(d)
                .digest
                .to_string()
                .trim_start_matches("sha256:")
                .to_owned()
        };
        (
            plan.expired.iter().map(|d| (name(d), d.wave)).collect(),
            plan.kept
                .iter()
                .map(|d| (name(d), d.reason.to_string()))
                .collect(),
        )
    }

    fn names<T>(list: &[(String, T)]) -> Vec<&str> {
        list.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn children_of_a_kept_index_are_kept_whatever_their_age() {
        let images = vec![
            index("idx", &["v1"], 60),
            image("amd64", &[], 60),
            image("arm64", &[], 60),
            image("att", &[], 60),
        ];
        let m = manifests(&[("idx", manifest(&["amd64", "arm64", "att"]))]);
        let (expired, kept) = run(images, &m);
        assert!(expired.is_empty(), "{expired:?}");
        let reasons: Vec<&str> = kept.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(
            reasons
                .iter()
                .filter(|r| r.contains("listed by index sha256:idx, which is kept (tag v1)"))
                .count(),
            3,
            "{kept:?}"
        );
    }

    #[test]
    fn children_of_an_expired_index_expire_after_it() {
        let images = vec![
            index("idx", &["old-1"], 60),
            image("amd64", &[], 1),
            image("att", &[], 1),
        ];
        let m = manifests(&[("idx", manifest(&["amd64", "att"]))]);
        let (expired, kept) = run(images, &m);
        assert_eq!(
            expired,
            [("idx".into(), 0), ("amd64".into(), 1), ("att".into(), 1)]
        );
        assert!(kept.is_empty());
    }

    #[test]
    fn a_child_shared_with_a_kept_index_is_kept() {
        let images = vec![
            index("old", &["old-1"], 60),
            index("new", &["v2"], 60),
            image("shared", &[], 60),
            image("only-old", &[], 60),
        ];
        let m = manifests(&[
            ("old", manifest(&["shared", "only-old"])),
            ("new", manifest(&["shared"])),
        ]);
        let (expired, kept) = run(images, &m);
        assert_eq!(names(&expired), ["old", "only-old"]);
        assert!(names(&kept).contains(&"shared"));
    }

    #[test]
    fn nested_indexes_and_referrers_of_children_follow_transitively() {
        let images = vec![
            index("top", &["v1"], 60),
            index("nested", &[], 60),
            image("leaf", &[], 60),
            referrer("leaf-sig", "leaf", 60),
            index("gone-top", &["old-1"], 60),
            index("gone-nested", &[], 60),
            image("gone-leaf", &[], 60),
            referrer("gone-sig", "gone-leaf", 60),
        ];
        let m = manifests(&[
            ("top", manifest(&["nested"])),
            ("nested", manifest(&["leaf"])),
            ("gone-top", manifest(&["gone-nested"])),
            ("gone-nested", manifest(&["gone-leaf"])),
        ]);
        let (expired, kept) = run(images, &m);
        assert_eq!(
            expired,
            [
                ("gone-top".into(), 0),
                ("gone-nested".into(), 1),
                ("gone-leaf".into(), 2),
                ("gone-sig".into(), 3)
            ]
        );
        let reason = |n: &str| kept.iter().find(|(k, _)| k == n).map(|(_, r)| r.clone());
        assert_eq!(
            reason("leaf-sig").as_deref(),
            Some("refers to sha256:leaf, which is kept (tag v1)")
        );
    }

    #[test]
    fn referrers_follow_their_subject() {
        let images = vec![
            image("kept", &["v1"], 60),
            referrer("kept-sig", "kept", 60),
            image("old", &[], 60),
            referrer("old-sbom", "old", 1),
        ];
        let (expired, kept) = run(images, &Manifests::new());
        assert_eq!(expired, [("old".into(), 0), ("old-sbom".into(), 1)]);
        assert_eq!(names(&kept), ["kept", "kept-sig"]);
    }

    /// The subject of a referrer that is not in the repository may be in another one
    /// (cosign's COSIGN_REPOSITORY), or pushed while the repository was being listed: the
    /// policy decides the referrer, as it decides any image.
    #[test]
    fn a_referrer_whose_subject_is_absent_is_decided_by_the_policy() {
        let elsewhere = "c".repeat(64);
        let images = vec![
            referrer("fresh", "absent", 1),
            referrer("stale", "absent", 20),
            image("sig", &[&format!("sha256-{elsewhere}.sig")], 60),
            image("old-sig", &[&format!("old-sha256-{elsewhere}.sig")], 60),
        ];
        let (expired, kept) = run(images, &Manifests::new());
        assert_eq!(expired, [("old-sig".into(), 0), ("stale".into(), 0)]);
        assert_eq!(
            kept,
            [
                ("sig".into(), "no rule selects it".into()),
                (
                    "fresh".into(),
                    "rule 2 selects it but it is within its limits".into()
                )
            ]
        );
    }

    #[test]
    fn legacy_cosign_tags_follow_their_image() {
        let hex = "a".repeat(64);
        let subject = image(&hex, &["v1"], 60);
        let old_hex = "b".repeat(64);
        let old = image(&old_hex, &[], 60);
        let sig = image("sig", &[&format!("sha256-{hex}.sig")], 60);
        let old_att = image("att", &[&format!("sha256-{old_hex}.att")], 1);
        let (expired, kept) = run(vec![subject, old, sig, old_att], &Manifests::new());
        assert_eq!(expired, [(old_hex.clone(), 0), ("att".into(), 1)]);
        assert!(names(&kept).contains(&"sig"), "{kept:?}");
    }

    #[test]
    fn followers_are_not_counted_by_count_rules() {
        let policy = Policy::untagged(None, Some(1)).expect("policy");
        // The children are the newest untagged images: counted, they would push loose-new
        // beyond the limit.
        let images = vec![
            index("idx", &["v1"], 0),
            image("amd64", &[], 0),
            image("arm64", &[], 0),
            image("loose-new", &[], 1),
            image("loose-old", &[], 2),
        ];
        let m = manifests(&[("idx", manifest(&["amd64", "arm64"]))]);
        let plan = decide(images, &m, &BTreeMap::new(), &policy, now());
        let expired: Vec<String> = plan
            .expired
            .iter()
            .map(|d| plan.image(d).digest.to_string())
            .collect();
        assert_eq!(
            expired,
            ["sha256:loose-old"],
            "only loose untagged images count"
        );
    }

    #[test]
    fn an_unreadable_manifest_keeps_every_untagged_image() {
        let images = vec![
            index("idx", &["v1"], 60),
            image("loose", &[], 60),
            image("old-tagged", &["old-1"], 60),
            index("garbled", &["v2"], 60),
        ];
        let m = manifests(&[
            ("idx", Err("KmsError".into())),
            ("garbled", Ok("{not json".into())),
        ]);
        let plan = decide(images, &m, &BTreeMap::new(), &policy(), now());
        let expired: Vec<String> = plan
            .expired
            .iter()
            .map(|d| plan.image(d).digest.to_string())
            .collect();
        assert_eq!(expired, ["sha256:old-tagged"], "tagged images still expire");
        let loose = plan
            .kept
            .iter()
            .find(|d| plan.image(d).digest == "sha256:loose")
            .expect("kept");
        assert!(matches!(loose.reason, Reason::ManifestUnreadable { .. }));
        let unreadable: Vec<&str> = plan.unreadable.iter().map(|u| u.index.as_str()).collect();
        assert_eq!(unreadable, ["sha256:idx", "sha256:garbled"]);
    }

    #[test]
    fn legacy_tags_need_a_full_digest_and_a_known_kind() {
        let hex = "0123456789abcdef".repeat(4);
        let cases = [
            (format!("sha256-{hex}.sig"), Some(format!("sha256:{hex}"))),
            (format!("sha256-{hex}.sbom"), Some(format!("sha256:{hex}"))),
            (format!("sha256-{hex}.txt"), None),
            ("sha256-abc.sig".to_owned(), None),
            ("v1.sig".to_owned(), None),
        ];
        for (tag, subject) in cases {
            assert_eq!(
                legacy_subject(&tag).map(|d| d.to_string()),
                subject,
                "{tag}"
            );
        }
    }

    /// A random repository: images 0..n with random ages and tags, some indexes listing
    /// random later images, some referrers of random images (present or not).
    fn repository() -> impl Strategy<Value = (Vec<Image>, Manifests)> {
        let node = (
            0i64..60,
            0u8..4,
            0u8..6,
            proptest::collection::vec(0usize..12, 0..4),
        );
        proptest::collection::vec(node, 1..12).prop_map(|nodes| {
            let n = nodes.len();
            let mut images = Vec::new();
            let mut m = Manifests::new();
            for (i, (days, tag, kind, links)) in nodes.into_iter().enumerate() {
                let tags: Vec<String> = match tag {
                    0 => vec![format!("v{i}")],
                    1 => vec![format!("old-{i}")],
                    _ => vec![],
                };
                let mut img = Image::plain(
                    &format!("sha256:{i:02}"),
                    tags,
                    now() - TimeDelta::days(days),
                );
                match kind {
                    0 | 1 => {
                        img.manifest_media_type = Some(OCI_INDEX.into());
                        let kids: Vec<String> = links
                            .iter()
                            .filter(|&&l| l > i && l < n)
                            .map(|l| format!("{l:02}"))
                            .collect();
                        let kids: Vec<&str> = kids.iter().map(String::as_str).collect();
                        m.insert(img.digest.to_string(), manifest(&kids));
                    }
                    2 => {
                        img.subject = links
                            .first()
                            .map(|l| Box::new(digest(&format!("{l:02}")).into()))
                    }
                    _ => {}
                }
                images.push(img);
            }
            (images, m)
        })
    }

    proptest! {
        #[test]
        fn no_follower_of_a_kept_image_expires_and_parents_go_first((images, m) in repository()) {
            let plan = decide(images.clone(), &m, &BTreeMap::new(), &policy(), now());
            let expired: HashMap<String, u32> =
                plan.expired.iter().map(|d| (plan.image(d).digest.to_string(), d.wave)).collect();
            let present: BTreeSet<String> = images.iter().map(|i| i.digest.to_string()).collect();
            prop_assert_eq!(plan.expired.len() + plan.kept.len(), images.len());
            for (index, manifest) in &m {
                let kids = children(manifest.as_ref().expect("readable")).expect("parses");
                for kid in kids.iter().filter(|k| present.contains(k.as_str())) {
                    if let Some(kid_wave) = expired.get(kid.as_str()) {
                        let index_wave = expired.get(index.as_str());
                        prop_assert!(index_wave.is_some(), "{} expires but its index {} is kept", kid, index);
                        prop_assert!(index_wave.is_some_and(|w| w < kid_wave), "{} not after {}", kid, index);
                    }
                }
            }
            for image in &images {
                // A manifest cannot name itself as subject; the graph ignores such a link.
                let own = image.digest.to_string();
                let subject = image.subject.as_ref().map(|s| s.to_string());
                let real = |s: &String| present.contains(s) && *s != own;
                let Some(subject) = subject.filter(real) else { continue };
                if let Some(wave) = expired.get(&own) {
                    let subject_wave = expired.get(&subject);
                    prop_assert!(subject_wave.is_some_and(|w| w < wave), "referrer {} of kept or later {}", image.digest, subject);
                }
            }
            let waves: Vec<u32> = plan.expired.iter().map(|d| d.wave).collect();
            prop_assert!(waves.windows(2).all(|w| w[0] <= w[1]), "delete order by wave: {:?}", waves);
        }
    }
}
