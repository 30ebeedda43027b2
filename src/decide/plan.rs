//! The decision of what to delete: a pure function of (images, policy, now).
//!
//! No clock, environment or I/O here, so a plan can be previewed, tested and explained exactly
//! as it will be executed. Every image comes back with a reason, expired or kept.
//!
//! ECR's evaluation, which this reproduces: rules apply in priority order, lowest number first.
//! For each rule, `matched` is every image its selection matches, whether or not an earlier rule
//! claimed or expired it (rules "can still identify them as if they haven't been expired"); its
//! limits pick candidates from `matched`; each candidate not claimed by an earlier rule expires
//! by this rule; then every matched image becomes claimed by it. So an image is expired by at
//! most one rule, and never by a rule of lower priority than one whose selection matches it.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};

use super::graph::Unreadable;
use super::policy::{Limit, Policy, Rule, TagStatus, MAX_RULES};
use crate::model::{Digest, Image};

/// Why an image expires or stays. Displays as a short human sentence, e.g.
/// "rule 1: untagged, pushed 30 days ago (limit 14 days)", "rule 2: 5 newer images match (limit 3)",
/// "rule 1 selects it but it is within its limits",
/// "claimed by higher-priority rule 1 (rule 2 would expire it)", "no rule selects it".
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Expired: pushed more than the rule's `sinceImagePushed` days ago.
    PushedTooLongAgo {
        /// The expiring rule's priority.
        rule: u32,
        /// The expiring rule's tag status, for context.
        tag_status: TagStatus,
        /// Whole days since the push, rounded down (so it can equal the limit: expiry needs
        /// strictly more than `limit_days` × 24 hours).
        age_days: i64,
        /// The rule's `countNumber`.
        limit_days: u32,
    },
    /// Expired: beyond the rule's `imageCountMoreThan` newest matching images.
    BeyondCount {
        /// The expiring rule's priority.
        rule: u32,
        /// How many images the rule matched that rank ahead of this one (pushed later, or at the
        /// same time with a smaller digest).
        newer: usize,
        /// The rule's `countNumber`.
        limit: u32,
    },
    /// Kept: its first matching rule did not expire it, and no later rule would have.
    WithinLimits {
        /// The first rule whose selection matches the image.
        rule: u32,
    },
    /// Kept: a lower-priority rule's limits pick it, but a higher-priority rule's selection
    /// matched it first, and ECR never lets a lower rule expire such an image.
    Claimed {
        /// The first rule whose selection matches the image.
        rule: u32,
        /// The first later rule whose limits pick the image.
        would_expire: u32,
    },
    /// Kept: no rule's selection matches the image.
    Unselected,
    /// Kept: an image index that lists it is kept.
    ListedByKept {
        /// The kept index.
        index: Box<KeptParent>,
    },
    /// Expired: every image index that lists it expires.
    ListedByExpired {
        /// One of the indexes.
        index: Box<str>,
        /// How many indexes list it.
        indexes: u32,
    },
    /// Kept: it refers to (signs, describes) an image that is kept.
    SubjectKept {
        /// The kept subject.
        subject: Box<KeptParent>,
    },
    /// Expired: it refers to an image that expires.
    SubjectExpired {
        /// The expiring subject.
        subject: Box<str>,
    },
    /// Kept: an ECS task or service, or a Lambda function, uses it.
    InUse {
        /// Who uses it, e.g. `ECS service prod/api`.
        user: Box<str>,
    },
    /// Kept: an index manifest in the repository could not be read, so which untagged images
    /// are its children is unknown.
    ManifestUnreadable {
        /// The index whose manifest could not be read.
        index: Box<str>,
    },
}

/// A kept image that another follows, for the follower's reason. Boxed in [`Reason`]: every
/// image has a reason, and few follow another.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptParent {
    /// Its digest.
    pub digest: Box<str>,
    /// A tag that keeps it (its own, or of the image that keeps it).
    pub tag: Option<Box<str>>,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::PushedTooLongAgo {
                rule,
                tag_status,
                age_days,
                limit_days,
            } => {
                let limit = plural(u64::from(*limit_days), "day");
                if *age_days > i64::from(*limit_days) {
                    write!(
                        f,
                        "rule {rule}: {tag_status}, pushed {} ago (limit {limit})",
                        plural(age_days.unsigned_abs(), "day")
                    )
                } else {
                    write!(
                        f,
                        "rule {rule}: {tag_status}, pushed just over {limit} ago (limit {limit})"
                    )
                }
            }
            Reason::BeyondCount { rule, newer, limit } => {
                let verb = if *newer == 1 { "matches" } else { "match" };
                write!(
                    f,
                    "rule {rule}: {} {verb} (limit {limit})",
                    plural(*newer as u64, "newer image")
                )
            }
            Reason::WithinLimits { rule } => {
                write!(f, "rule {rule} selects it but it is within its limits")
            }
            Reason::Claimed { rule, would_expire } => write!(
                f,
                "claimed by higher-priority rule {rule} (rule {would_expire} would expire it)"
            ),
            Reason::Unselected => f.write_str("no rule selects it"),
            other => fmt_follower(other, f),
        }
    }
}

/// The reasons of images kept or expired for another image's sake (the graph, in-use
/// protection, an unreadable manifest).
fn fmt_follower(reason: &Reason, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match reason {
        Reason::ListedByKept { index } => {
            let KeptParent { digest, tag } = &**index;
            write!(f, "listed by index {digest}, which is kept{}", via(tag))
        }
        Reason::ListedByExpired { index, indexes } => match indexes {
            1 => write!(f, "listed only by index {index}, which expires"),
            n => write!(
                f,
                "every index that lists it expires ({index} and {} more)",
                n - 1
            ),
        },
        Reason::SubjectKept { subject } => {
            let KeptParent { digest, tag } = &**subject;
            write!(f, "refers to {digest}, which is kept{}", via(tag))
        }
        Reason::SubjectExpired { subject } => {
            write!(f, "refers to {subject}, which expires")
        }
        Reason::InUse { user } => write!(f, "in use by {user}"),
        Reason::ManifestUnreadable { index } => write!(
            f,
            "the manifest of index {index} could not be read, so nothing untagged is \
             deleted in this repository"
        ),
        _ => Ok(()),
    }
}

/// ` (tag v1)` when a tag is known, else ` (untagged)`.
fn via(tag: &Option<Box<str>>) -> String {
    match tag {
        Some(tag) => format!(" (tag {tag})"),
        None => " (untagged)".to_owned(),
    }
}

fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// One image with what the plan does to it and why. The image itself stays in
/// [`Plan::images`], where the listing put it: a decision names it by its place there, so
/// that planning a million images moves small records rather than the images. 32 bytes:
/// what an image follows, which few do, is in [`Plan::follows`].
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Where the image is in [`Plan::images`]. A `u32`: ECR caps a repository's images far
    /// below four billion.
    pub listed: u32,
    /// Why, in a form reports can show as is.
    pub reason: Reason,
    /// Delete order: an expired image is deleted in a later `BatchDeleteImage` call than
    /// every image in a lower wave (an index before its children, a subject before its
    /// referrers). 0 for images that follow nothing.
    pub wave: u32,
}

impl Decision {
    /// A decision on the image at `listed` that follows nothing.
    pub fn new(listed: u32, reason: Reason) -> Self {
        Self {
            listed,
            reason,
            wave: 0,
        }
    }

    /// For expired: the applied rule; for kept: the rule that claimed it (None when no rule
    /// selected it, or when the image follows another). The reason names it.
    pub fn rule_priority(&self) -> Option<u32> {
        match self.reason {
            Reason::PushedTooLongAgo { rule, .. }
            | Reason::BeyondCount { rule, .. }
            | Reason::WithinLimits { rule }
            | Reason::Claimed { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

/// A decision together with its image: what the run and the report read. Derefs to the
/// decision.
#[derive(Debug, Clone, Copy)]
pub struct Decided<'p> {
    /// The image decided on.
    pub image: &'p Image,
    /// What the plan does to it, and why.
    pub decision: &'p Decision,
    /// What it follows: see [`Plan::follows`].
    pub follows: &'p [Digest],
}

impl std::ops::Deref for Decided<'_> {
    type Target = Decision;

    fn deref(&self) -> &Decision {
        self.decision
    }
}

/// What to delete and what to keep. Each list is sorted by (wave, pushed_at ascending,
/// digest ascending), so equal inputs give equal decisions whatever their order, and
/// expired images come in delete order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Every image of the repository, in the order the listing gave them.
    pub images: Vec<Image>,
    /// Images to delete, in delete order.
    pub expired: Vec<Decision>,
    /// Images to leave alone.
    pub kept: Vec<Decision>,
    /// Index manifests that could not be read: nothing untagged expires while any exists.
    pub unreadable: Vec<Unreadable>,
    /// By an expired image's place in [`Plan::images`], the digests it follows (the indexes
    /// that list it, the subject it refers to): it is only deleted once each of these that
    /// expired is gone. Beside the decisions, not in each: few images follow another.
    pub follows: BTreeMap<u32, Vec<Digest>>,
}

impl Plan {
    /// The image `decision` (one of this plan's) is about.
    pub fn image(&self, decision: &Decision) -> &Image {
        &self.images[decision.listed as usize]
    }

    /// `decisions` (a list of this plan's), each with its image.
    pub fn with_images<'p>(
        &'p self,
        decisions: &'p [Decision],
    ) -> impl Iterator<Item = Decided<'p>> + Clone {
        decisions.iter().map(|decision| Decided {
            image: self.image(decision),
            decision,
            follows: self
                .follows
                .get(&decision.listed)
                .map_or(&[], Vec::as_slice),
        })
    }

    /// Lets the kept decisions and their images go, keeping the expired ones (renumbered):
    /// a live run reports only what it deletes, and a repository's images are its largest
    /// allocation.
    pub fn drop_kept(&mut self) {
        self.kept = Vec::new();
        // The expired images' new places: their order in the listing, among themselves.
        let mut renumbered: Vec<Option<u32>> = vec![None; self.images.len()];
        for decision in &self.expired {
            renumbered[decision.listed as usize] = Some(0);
        }
        for (new, place) in (0..).zip(renumbered.iter_mut().flatten()) {
            *place = new;
        }
        let images = std::mem::take(&mut self.images)
            .into_iter()
            .zip(&renumbered);
        self.images = images
            .filter_map(|(image, new)| new.map(|_| image))
            .collect();
        for decision in &mut self.expired {
            if let Some(new) = renumbered[decision.listed as usize] {
                decision.listed = new;
            }
        }
        let follows = std::mem::take(&mut self.follows).into_iter();
        self.follows = follows
            .filter_map(|(listed, parents)| Some((renumbered[listed as usize]?, parents)))
            .collect();
    }

    /// Puts both lists in the plan's order.
    pub(crate) fn sort(&mut self) {
        let images = &self.images;
        let place = |d: &Decision| (d.wave, &images[d.listed as usize]);
        for list in [&mut self.expired, &mut self.kept] {
            list.sort_by(|a, b| {
                let ((wave_a, a), (wave_b, b)) = (place(a), place(b));
                wave_a.cmp(&wave_b).then_with(|| oldest_first(a, b))
            });
        }
    }
}

/// An image's place in the plan's order, packed into one integer so that a million sort
/// quickly: its push instant above its place in the listing. The images never move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Key(u128);

impl Key {
    fn new(pushed: DateTime<Utc>, listed: u32) -> Self {
        Key::of(instant(pushed), listed)
    }

    /// The key of an image pushed at `pushed` (an [`instant`]).
    fn of(pushed: u128, listed: u32) -> Self {
        Key(pushed << 32 | u128::from(listed))
    }

    /// The push instant, as [`instant`] gives it.
    fn pushed(self) -> u128 {
        self.0 >> 32
    }

    /// Where the image is in the listing.
    fn listed(self) -> u32 {
        self.0 as u32
    }

    /// The push instant in milliseconds since the epoch; None unless it is a whole
    /// millisecond.
    fn whole_millis(self) -> Option<i64> {
        let (_, nanos) = split(self.pushed());
        nanos.is_multiple_of(1_000_000).then(|| self.millis())
    }

    /// The push instant in whole milliseconds since the epoch, finer digits dropped.
    fn millis(self) -> i64 {
        let (secs, nanos) = split(self.pushed());
        secs * 1000 + i64::from(nanos / 1_000_000)
    }

    /// Whole days from the push to `now` (an [`instant`]), rounded toward zero as
    /// `TimeDelta::num_days` rounds. In integers: a million expired images each need it, and
    /// rebuilding their `DateTime`s took a fifth of the plan. In `i64`: once the seconds
    /// and the nanoseconds carry the same sign, the nanoseconds (under one second) cannot
    /// change the whole days, and an `i128` division was a library call per image.
    fn age_days(self, now: u128) -> i64 {
        let parts = |at: u128| {
            let (secs, nanos) = split(at);
            (secs, i64::from(nanos))
        };
        let ((now_secs, now_nanos), (secs, nanos)) = (parts(now), parts(self.pushed()));
        // chrono's instants lie within ±2^44 seconds of the epoch: no overflow.
        let mut secs = now_secs - secs;
        let nanos = now_nanos - nanos;
        if secs > 0 && nanos < 0 {
            secs -= 1;
        } else if secs < 0 && nanos > 0 {
            secs += 1;
        }
        secs / SECONDS_PER_DAY
    }
}

const SECONDS_PER_DAY: i64 = 24 * 3600;

/// `at` as an integer in the order of instants: seconds (sign bit flipped, so that the
/// order of the unsigned number is that of the signed) above nanoseconds.
fn instant(at: DateTime<Utc>) -> u128 {
    joined(at.timestamp(), at.timestamp_subsec_nanos())
}

/// The [`instant`] of `secs` and `nanos` since the epoch.
fn joined(secs: i64, nanos: u32) -> u128 {
    u128::from(secs as u64 ^ 1 << 63) << 32 | u128::from(nanos)
}

/// An [`instant`]'s seconds and nanoseconds since the epoch.
fn split(at: u128) -> (i64, u32) {
    (((at >> 32) as u64 ^ 1 << 63) as i64, at as u32)
}

/// Sorts keys into the plan's order: by push instant, then by digest.
fn sort_keys(keys: &mut [Key], images: &[Image]) {
    if !sort_narrow(keys) {
        keys.sort_unstable();
    }
    let digest = |key: &Key| &images[key.listed() as usize].digest;
    for same_instant in keys.chunk_by_mut(|a, b| a.pushed() == b.pushed()) {
        if same_instant.len() > 1 {
            same_instant.sort_unstable_by(|a, b| digest(a).cmp(digest(b)));
        }
    }
}

/// Sorts `keys` as they sort, but as 8-byte integers, when they fit: half the bytes to move,
/// and the sort was a quarter of the plan. They fit when every push instant is a whole
/// millisecond (ECR's precision: the adapter rounds to it) and the milliseconds from the
/// earliest push, above the bits of the largest place, fit 64 bits. That numbering keeps
/// the keys' order, since a key's push instant is its whole milliseconds. False, with
/// `keys` untouched, when they do not fit.
fn sort_narrow(keys: &mut [Key]) -> bool {
    let Some(narrow) = Narrow::of(keys) else {
        return false;
    };
    let mut packed: Vec<u64> = keys.iter().map(|&key| narrow.pack(key)).collect();
    packed.sort_unstable();
    for (key, packed) in keys.iter_mut().zip(packed) {
        *key = narrow.unpack(packed);
    }
    true
}

/// How [`sort_narrow`] numbers keys: milliseconds since the earliest push, above the place.
struct Narrow {
    earliest_ms: i64,
    place_bits: u32,
}

impl Narrow {
    /// The numbering for `keys`; None when a push instant is not a whole millisecond or the
    /// numbers would not fit 64 bits (and for no keys).
    fn of(keys: &[Key]) -> Option<Narrow> {
        let last_place = keys.iter().map(|key| key.listed()).max()?;
        let place_bits = u32::BITS - last_place.leading_zeros();
        let (mut earliest_ms, mut latest_ms) = (i64::MAX, i64::MIN);
        for key in keys {
            let ms = key.whole_millis()?;
            earliest_ms = earliest_ms.min(ms);
            latest_ms = latest_ms.max(ms);
        }
        // chrono's instants lie within ±2^53 milliseconds of the epoch: no overflow.
        let span = (latest_ms - earliest_ms) as u64;
        let fits = span.checked_shr(u64::BITS - place_bits).unwrap_or(0) == 0;
        fits.then_some(Narrow {
            earliest_ms,
            place_bits,
        })
    }

    /// `key`'s number; `of` checked that its push instant is a whole millisecond.
    fn pack(&self, key: Key) -> u64 {
        ((key.millis() - self.earliest_ms) as u64) << self.place_bits | u64::from(key.listed())
    }

    /// The key numbered `packed`.
    fn unpack(&self, packed: u64) -> Key {
        let ms = self.earliest_ms + (packed >> self.place_bits) as i64;
        let listed = (packed & ((1 << self.place_bits) - 1)) as u32;
        let at = joined(ms.div_euclid(1000), ms.rem_euclid(1000) as u32 * 1_000_000);
        Key::of(at, listed)
    }
}

/// Where an image stands after the rules applied so far (rules by priority).
#[derive(Clone, Copy)]
enum State {
    /// No rule's selection has matched it.
    Unselected,
    /// Rule `by` matched it first and its limits left it; `would_expire` is the first later
    /// rule whose limits picked it, which ECR never lets expire it.
    Claimed { by: u32, would_expire: Option<u32> },
    /// Rule `by` matched it first and expired it, for `pick`.
    Expired { by: u32, pick: Pick },
}

impl State {
    /// The state after rule `by`, whose selection matches the image: an unclaimed image its
    /// limits pick expires by it (`picked`); one they leave is claimed by it; a claimed one
    /// they pick notes that the rule would expire it.
    fn then(self, by: u32, picked: Option<Pick>) -> State {
        match (self, picked) {
            (State::Unselected, Some(pick)) => State::Expired { by, pick },
            (State::Unselected, None) => State::Claimed {
                by,
                would_expire: None,
            },
            (
                State::Claimed {
                    by: first,
                    would_expire: None,
                },
                Some(_),
            ) => State::Claimed {
                by: first,
                would_expire: Some(by),
            },
            (decided, _) => decided,
        }
    }
}

/// Why a rule's limits picked an image: the policy's two reasons, without the graph's that a
/// [`Reason`] also carries.
#[derive(Debug, Clone, Copy)]
enum Pick {
    /// `sinceImagePushed`: see [`Reason::PushedTooLongAgo`].
    Age {
        tag_status: TagStatus,
        limit_days: u32,
    },
    /// `imageCountMoreThan`: see [`Reason::BeyondCount`].
    Count { newer: u32, limit: u32 },
}

impl Pick {
    /// The reason to report for an image `rule` picked; `age_days` gives the whole days
    /// since its push.
    fn reason(self, rule: u32, age_days: impl FnOnce() -> i64) -> Reason {
        match self {
            Pick::Age {
                tag_status,
                limit_days,
            } => Reason::PushedTooLongAgo {
                rule,
                tag_status,
                age_days: age_days(),
                limit_days,
            },
            Pick::Count { newer, limit } => Reason::BeyondCount {
                rule,
                newer: newer as usize,
                limit,
            },
        }
    }
}

/// Decides, for every image, whether `policy` expires it at time `now`, and why.
///
/// `sinceImagePushed N` picks images pushed strictly more than N × 24 hours before `now`.
/// `imageCountMoreThan N` ranks matched images newest first (ties: smaller digest first) and
/// picks all after the first N. A rule with several limits (the untagged shorthand) picks the
/// union; when both pick an image, the reason given is the age limit's.
/// Image digests are expected to be unique.
pub fn plan(images: Vec<Image>, policy: &Policy, now: DateTime<Utc>) -> Plan {
    plan_alone(images, &[], policy, now)
}

/// [`plan`] for the images that stand on their own: those at the places in the listing
/// `followers` names (ascending) are left undecided, for the image graph to decide.
pub(crate) fn plan_alone(
    images: Vec<Image>,
    followers: &[u32],
    policy: &Policy,
    now: DateTime<Utc>,
) -> Plan {
    let rules = policy.rules();
    let (mut keys, matches) = keys_and_matches(&images, followers, rules);
    sort_keys(&mut keys, &images);
    let matches = matches.in_order_of(&keys);
    let (expired, kept) = apply_rules(rules, &keys, &matches, now);
    Plan {
        images,
        expired,
        kept,
        unreadable: Vec::new(),
        follows: BTreeMap::new(),
    }
}

/// Which rules' selections match each image, one bit per rule, computed in a single pass
/// over the images (by their places in the listing), then put in the plan's order for the
/// rule pass ([`Matches::in_order_of`]). Bytes rather than words: with up to 8 rules, the
/// bits of a million images fit in a cache.
struct Matches {
    /// Bytes per image: one per 8 rules.
    width: usize,
    bits: Vec<u8>,
    /// For each rule, how many of the images that stand alone it matches.
    counts: Vec<u32>,
}

impl Matches {
    /// The same bits, for the images of `keys` in that order: the rule pass then reads them
    /// one after the other. Gathered in a loop of nothing else, the reads at random places
    /// overlap; the rule pass waited on each (a seventh of the plan, per million images).
    fn in_order_of(self, keys: &[Key]) -> Matches {
        let width = self.width;
        let mut bits = Vec::with_capacity(keys.len() * width);
        for key in keys {
            let at = key.listed() as usize * width;
            // Byte by byte: `extend_from_slice` called memcpy for every image.
            for &byte in &self.bits[at..at + width] {
                bits.push(byte);
            }
        }
        Matches {
            width,
            bits,
            counts: self.counts,
        }
    }

    /// The rules (places in the policy, so in priority order) whose selections match the
    /// image at `at` (in the order the bits are in): the set bits of one word, lowest first.
    fn rules_of(&self, at: usize) -> impl Iterator<Item = usize> {
        let bytes = &self.bits[at * self.width..(at + 1) * self.width];
        let mut rest = bytes
            .iter()
            .rev()
            .fold(0u64, |word, &byte| word << 8 | u64::from(byte));
        std::iter::from_fn(move || {
            (rest != 0).then(|| {
                let rule = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                rule
            })
        })
    }
}

// An image's match bits fit one word: a policy has at most `MAX_RULES` rules.
const _: () = assert!(MAX_RULES <= 64);

/// The keys of the images that stand alone (all but the `followers`, places in the listing,
/// ascending), in listing order, and which rules match each image (by its place).
fn keys_and_matches(images: &[Image], followers: &[u32], rules: &[Rule]) -> (Vec<Key>, Matches) {
    let width = rules.len().div_ceil(8);
    let mut bits = vec![0u8; images.len() * width];
    let mut counts = vec![0u32; rules.len()];
    let mut keys = Vec::with_capacity(images.len());
    let mut followers = followers.iter().peekable();
    for (listed, image) in images.iter().enumerate() {
        if followers.next_if_eq(&&(listed as u32)).is_some() {
            continue;
        }
        keys.push(Key::new(image.pushed_at, listed as u32));
        for (r, rule) in rules.iter().enumerate() {
            if rule.selection.matches(&image.tags) {
                bits[listed * width + r / 8] |= 1 << (r % 8);
                counts[r] += 1;
            }
        }
    }
    let matches = Matches {
        width,
        bits,
        counts,
    };
    (keys, matches)
}

/// Applies every rule to the images of `keys` (in the plan's order; `matches` in the same
/// order) and files each as expired or kept, in that order, with its reason.
///
/// One pass, a group of equal push instants at a time. A count rule ranks its matched images
/// newest first, ties by smaller digest first; an image's rank (how many matched images come
/// before it) is the rule's matches in later groups plus those ahead of it in its own group,
/// which is in digest order. `later` counts down the matches not yet passed.
fn apply_rules(
    rules: &[Rule],
    keys: &[Key],
    matches: &Matches,
    now: DateTime<Utc>,
) -> (Vec<Decision>, Vec<Decision>) {
    let cutoffs: Vec<Vec<Option<u128>>> = rules.iter().map(|rule| cutoffs(rule, now)).collect();
    let now_at = instant(now);
    let mut later = matches.counts.clone();
    let mut newer = vec![0u32; rules.len()];
    // Most images are kept: that list gets room for all, and gives back what it did not
    // use at the end.
    let (mut expired, mut kept) = (Vec::new(), Vec::with_capacity(keys.len()));
    let mut start = 0;
    for group in keys.chunk_by(|a, b| a.pushed() == b.pushed()) {
        let places = start..start + group.len();
        start = places.end;
        // Each rule that matches in the group ranks its first match there after all its
        // matches in later groups: the last write of `newer[r]` comes after the group's last
        // decrement of `later[r]`. Only those rules are read below.
        for at in places.clone() {
            for r in matches.rules_of(at) {
                later[r] -= 1;
                newer[r] = later[r];
            }
        }
        for (&key, at) in group.iter().zip(places) {
            let mut state = State::Unselected;
            for r in matches.rules_of(at) {
                let rule = &rules[r];
                state = state.then(
                    rule.priority,
                    pick(rule, &cutoffs[r], key.pushed(), newer[r]),
                );
                newer[r] += 1;
            }
            let decision = decision(key, state, now_at);
            match state {
                State::Expired { .. } => expired.push(decision),
                _ => kept.push(decision),
            }
        }
    }
    kept.shrink_to_fit();
    (expired, kept)
}

/// The decision on the image of `key`, from its state after every rule.
/// `now` is an [`instant`].
fn decision(key: Key, state: State, now: u128) -> Decision {
    let reason = match state {
        State::Expired { by, pick } => pick.reason(by, || key.age_days(now)),
        State::Claimed {
            by,
            would_expire: Some(would_expire),
        } => Reason::Claimed {
            rule: by,
            would_expire,
        },
        State::Claimed {
            by,
            would_expire: None,
        } => Reason::WithinLimits { rule: by },
        State::Unselected => Reason::Unselected,
    };
    Decision::new(key.listed(), reason)
}

/// The plan's output order, and the canonical order everything is computed in.
fn oldest_first(a: &Image, b: &Image) -> Ordering {
    a.pushed_at
        .cmp(&b.pushed_at)
        .then_with(|| a.digest.cmp(&b.digest))
}

/// For each of `rule`'s limits, the instant before which `sinceImagePushed N` picks an image
/// (now less N days); None for a count limit.
fn cutoffs(rule: &Rule, now: DateTime<Utc>) -> Vec<Option<u128>> {
    rule.limits
        .iter()
        .map(|limit| match *limit {
            Limit::SincePushedDays(days) => Some(instant(now - TimeDelta::days(i64::from(days)))),
            Limit::CountMoreThan(_) => None,
        })
        .collect()
}

/// Why `rule`'s limits pick an image pushed at `pushed`, ranked `newer`-th among the
/// matched images newest first; None when they leave it. `cutoffs` has, for each age
/// limit, now less its days.
fn pick(rule: &Rule, cutoffs: &[Option<u128>], pushed: u128, newer: u32) -> Option<Pick> {
    let (mut by_age, mut by_count) = (None, None);
    for (limit, cutoff) in rule.limits.iter().zip(cutoffs) {
        match *limit {
            Limit::SincePushedDays(days) => {
                // Compared as instants: most images are not picked, and need no age.
                if cutoff.is_some_and(|cutoff| pushed < cutoff) {
                    by_age = Some(Pick::Age {
                        tag_status: rule.selection.tag_status,
                        limit_days: days,
                    });
                }
            }
            Limit::CountMoreThan(n) => {
                if newer >= n && by_count.is_none() {
                    by_count = Some(Pick::Count { newer, limit: n });
                }
            }
        }
    }
    by_age.or(by_count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 30, 12, 0, 0).unwrap()
    }

    /// An image called `name` (digest `sha256:<name>`) pushed `ago` before [`now`].
    fn image_at(name: &str, tags: &[&str], ago: TimeDelta) -> Image {
        Image {
            digest: format!("sha256:{name}").into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            pushed_at: now() - ago,
            size_bytes: Some(1_000),
            manifest_media_type: None,
            subject: None,
        }
    }

    fn image(name: &str, tags: &[&str], days_ago: i64) -> Image {
        image_at(name, tags, TimeDelta::days(days_ago))
    }

    fn policy(rules: Vec<Value>) -> Policy {
        Policy::from_json(&json!({ "rules": rules }).to_string()).unwrap()
    }

    fn rule(priority: u32, selection: Value) -> Value {
        json!({ "rulePriority": priority, "description": format!("Rule {priority}"),
                "selection": selection, "action": { "type": "expire" } })
    }

    fn prefixes_count(prefixes: &[&str], n: u32) -> Value {
        json!({ "tagStatus": "tagged", "tagPrefixList": prefixes,
                "countType": "imageCountMoreThan", "countNumber": n })
    }

    fn patterns_count(patterns: &[&str], n: u32) -> Value {
        json!({ "tagStatus": "tagged", "tagPatternList": patterns,
                "countType": "imageCountMoreThan", "countNumber": n })
    }

    fn status_count(status: &str, n: u32) -> Value {
        json!({ "tagStatus": status, "countType": "imageCountMoreThan", "countNumber": n })
    }

    fn status_age(status: &str, days: u32) -> Value {
        json!({ "tagStatus": status, "countType": "sinceImagePushed",
                "countUnit": "days", "countNumber": days })
    }

    /// Image names (digest without `sha256:`), in plan order.
    fn names<'p>(plan: &'p Plan, decisions: &'p [Decision]) -> Vec<&'p str> {
        plan.with_images(decisions)
            .map(|d| match &d.image.digest {
                crate::model::Digest::Other(text) => text.trim_start_matches("sha256:"),
                sha256 => panic!("the tests name their digests: {sha256}"),
            })
            .collect()
    }

    /// The plan's two lists with each decision's image in place of its place in the
    /// listing: what must not depend on the listing order.
    fn resolved(plan: &Plan) -> [Vec<(&Image, Option<u32>, &Reason)>; 2] {
        [&plan.expired, &plan.kept].map(|list| {
            plan.with_images(list)
                .map(|d| (d.image, d.decision.rule_priority(), &d.decision.reason))
                .collect()
        })
    }

    fn expired_names(plan: &Plan) -> Vec<&str> {
        names(plan, &plan.expired)
    }

    fn decision<'a>(plan: &'a Plan, name: &str) -> &'a Decision {
        let digest = format!("sha256:{name}");
        plan.expired
            .iter()
            .chain(&plan.kept)
            .find(|d| plan.image(d).digest == digest)
            .unwrap()
    }

    #[test]
    fn dropping_the_kept_images_leaves_each_expired_decision_its_own_image() {
        let policy = policy(vec![rule(1, status_count("any", 2))]);
        let images = vec![
            image("d", &[], 1),
            image("a", &["v1"], 9),
            image("c", &[], 2),
            image("b", &[], 5),
            image("e", &["v2"], 0),
        ];
        let mut plan = plan(images, &policy, now());
        assert_eq!(expired_names(&plan), ["a", "b", "c"]);
        plan.drop_kept();
        assert_eq!(expired_names(&plan), ["a", "b", "c"]);
        assert!(plan.kept.is_empty());
        let names: Vec<String> = plan.images.iter().map(|i| i.digest.to_string()).collect();
        assert_eq!(
            names,
            ["sha256:a", "sha256:c", "sha256:b"],
            "listing order, kept gone"
        );
    }

    #[test]
    fn dropping_the_kept_images_keeps_what_each_expired_image_follows() {
        let images = vec![
            image("kept", &["v1"], 1),
            image("subject", &[], 30),
            image("signature", &[], 30),
        ];
        let mut plan = Plan {
            images,
            ..Plan::default()
        };
        plan.kept.push(Decision::new(0, Reason::Unselected));
        plan.expired.push(Decision::new(1, Reason::Unselected));
        let subject = Digest::from("sha256:subject");
        let mut signature = Decision::new(
            2,
            Reason::SubjectExpired {
                subject: subject.to_string().into(),
            },
        );
        signature.wave = 1;
        plan.expired.push(signature);
        plan.follows.insert(2, vec![subject.clone()]);

        plan.drop_kept();
        assert_eq!(expired_names(&plan), ["subject", "signature"]);
        let follows: Vec<&[Digest]> = plan.with_images(&plan.expired).map(|d| d.follows).collect();
        assert_eq!(follows, [&[][..], &[subject][..]]);
    }

    #[test]
    fn decisions_stay_small() {
        // A million images make a million decisions: a byte here is a megabyte there.
        assert_eq!(std::mem::size_of::<Reason>(), 24);
        assert_eq!(std::mem::size_of::<Decision>(), 32);
    }

    // ---- Every worked example of "Examples of lifecycle policies in Amazon ECR". ----

    #[test]
    fn docs_filtering_on_image_age() {
        // The page gives the policy only; the repository here is ours.
        let policy = policy(vec![json!({
            "rulePriority": 1, "description": "Expire images older than 14 days",
            "selection": { "tagStatus": "tagged", "tagPatternList": ["prod*"],
                           "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14 },
            "action": { "type": "expire" }
        })]);
        let images = vec![
            image("old-prod", &["prod-1"], 20),
            image("new-prod", &["prod-2"], 10),
            image("old-beta", &["beta-1"], 30),
            image("old-untagged", &[], 30),
        ];
        let plan = plan(images, &policy, now());
        assert_eq!(expired_names(&plan), ["old-prod"]);
        assert_eq!(
            names(&plan, &plan.kept),
            ["old-beta", "old-untagged", "new-prod"]
        );
    }

    #[test]
    fn rules_past_the_eighth_match_and_rank_as_the_first_eight_do() {
        // Ten rules: an image's matches take two bytes, and rules 9 and 10 decide here.
        let age = |prefix: &str| {
            json!({ "tagStatus": "tagged", "tagPrefixList": [prefix],
                    "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 1000 })
        };
        let mut rules: Vec<Value> = (1..=8)
            .map(|p| rule(p, age(if p == 2 { "x-b" } else { "p" })))
            .collect();
        rules.push(rule(9, prefixes_count(&["x"], 1)));
        rules.push(rule(10, status_age("untagged", 1)));
        let hours = |h| TimeDelta::hours(h);
        let images = vec![
            image_at("new", &["x-new"], hours(1)),
            image_at("both", &["x-b1"], hours(2)),
            image_at("old", &["x-old"], hours(3)),
            image_at("loose", &[], hours(72)),
            image_at("fresh", &[], hours(1)),
            image_at("p", &["p-1"], hours(5)),
        ];
        let plan = plan(images, &policy(rules), now());
        let reason = |name| decision(&plan, name).reason.clone();
        assert_eq!(reason("new"), Reason::WithinLimits { rule: 9 });
        let claimed = Reason::Claimed {
            rule: 2,
            would_expire: 9,
        };
        assert_eq!(reason("both"), claimed);
        let beyond = Reason::BeyondCount {
            rule: 9,
            newer: 2,
            limit: 1,
        };
        assert_eq!(reason("old"), beyond);
        let aged = Reason::PushedTooLongAgo {
            rule: 10,
            tag_status: TagStatus::Untagged,
            age_days: 3,
            limit_days: 1,
        };
        assert_eq!(reason("loose"), aged);
        assert_eq!(reason("fresh"), Reason::WithinLimits { rule: 10 });
        assert_eq!(reason("p"), Reason::WithinLimits { rule: 1 });
        assert_eq!(expired_names(&plan), ["loose", "old"]);
    }

    #[test]
    fn docs_filtering_on_image_count() {
        let policy = policy(vec![json!({
            "rulePriority": 1, "description": "Keep only one untagged image, expire all others",
            "selection": { "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1 },
            "action": { "type": "expire" }
        })]);
        let images = vec![
            image("a", &[], 3),
            image("b", &[], 2),
            image("c", &[], 1),
            image("tagged", &["v1"], 5),
        ];
        let plan = plan(images, &policy, now());
        assert_eq!(expired_names(&plan), ["a", "b"]);
        assert_eq!(names(&plan, &plan.kept), ["tagged", "c"]);
    }

    fn multiple_rules_repository() -> Vec<Image> {
        vec![
            image("A", &["beta-1", "prod-1"], 10),
            image("B", &["beta-2", "prod-2"], 9),
            image("C", &["beta-3"], 8),
        ]
    }

    #[test]
    fn docs_filtering_on_multiple_rules_example_a() {
        // Rule 2 would expire A and B, but both were seen by rule 1.
        for (prod, beta) in [
            (prefixes_count(&["prod"], 1), prefixes_count(&["beta"], 1)),
            (patterns_count(&["prod*"], 1), patterns_count(&["beta*"], 1)),
        ] {
            let policy = policy(vec![rule(1, prod), rule(2, beta)]);
            let plan = plan(multiple_rules_repository(), &policy, now());
            assert_eq!(expired_names(&plan), ["A"]);
            assert_eq!(
                decision(&plan, "B").reason,
                Reason::Claimed {
                    rule: 1,
                    would_expire: 2
                }
            );
            assert_eq!(
                decision(&plan, "C").reason,
                Reason::WithinLimits { rule: 2 }
            );
        }
    }

    #[test]
    fn docs_filtering_on_multiple_rules_example_b() {
        // Rule 1 (beta) sees all three and marks A and B; rule 2 (prod) sees only images rule 1
        // already saw. The page's result: "Images A and B are expired".
        for (beta, prod) in [
            (prefixes_count(&["beta"], 1), prefixes_count(&["prod"], 1)),
            (patterns_count(&["beta*"], 1), patterns_count(&["prod*"], 1)),
        ] {
            let policy = policy(vec![rule(1, beta), rule(2, prod)]);
            let plan = plan(multiple_rules_repository(), &policy, now());
            assert_eq!(expired_names(&plan), ["A", "B"]);
            assert_eq!(names(&plan, &plan.kept), ["C"]);
            assert!(plan.expired.iter().all(|d| d.rule_priority() == Some(1)));
        }
    }

    #[test]
    fn docs_filtering_on_multiple_tags_in_a_single_rule_example_a() {
        let images = vec![
            image("A", &["alpha-1"], 12),
            image("B", &["beta-1"], 11),
            image("C", &["alpha-2", "beta-2"], 10),
            image("D", &["alpha-3"], 4),
            image("E", &["beta-3"], 3),
            image("F", &["alpha-4", "beta-4"], 2),
        ];
        for list in [
            json!({ "tagPrefixList": ["alpha", "beta"] }),
            json!({ "tagPatternList": ["alpha*", "beta*"] }),
        ] {
            let mut selection = status_age("tagged", 5);
            if let (Some(selection), Some(list)) = (selection.as_object_mut(), list.as_object()) {
                selection.extend(list.clone());
            }
            let plan = plan(images.clone(), &policy(vec![rule(1, selection)]), now());
            assert_eq!(expired_names(&plan), ["C"]);
            assert_eq!(
                decision(&plan, "F").reason,
                Reason::WithinLimits { rule: 1 }
            );
            assert_eq!(decision(&plan, "A").reason, Reason::Unselected);
        }
    }

    #[test]
    fn docs_filtering_on_multiple_tags_in_a_single_rule_example_b() {
        let images = vec![
            image("A", &["alpha-1", "beta-1", "gamma-1"], 10),
            image("B", &["alpha-2", "beta-2"], 9),
            image("C", &["alpha-3", "beta-3", "gamma-2"], 8),
        ];
        for selection in [
            prefixes_count(&["alpha", "beta"], 1),
            patterns_count(&["alpha*", "beta*"], 1),
        ] {
            let plan = plan(images.clone(), &policy(vec![rule(1, selection)]), now());
            assert_eq!(expired_names(&plan), ["A", "B"]);
        }
    }

    #[test]
    fn docs_filtering_on_all_images_example_a() {
        let images = vec![
            image("A", &["alpha-1"], 4),
            image("B", &["beta-1"], 3),
            image("C", &[], 2),
            image("D", &["alpha-2"], 1),
        ];
        let plan = plan(
            images,
            &policy(vec![rule(1, status_count("any", 1))]),
            now(),
        );
        assert_eq!(expired_names(&plan), ["A", "B", "C"]);
        assert_eq!(names(&plan, &plan.kept), ["D"]);
    }

    #[test]
    fn docs_filtering_on_all_images_example_b() {
        // The page has D and E both "pushed 1 day ago" and rule 3 keeping E as the newest, so E
        // is pushed a little later here; E is also not older than rule 2's one day.
        let images = vec![
            image("A", &["alpha-1", "beta-1"], 4),
            image("B", &[], 3),
            image("C", &["alpha-2"], 2),
            image("D", &["git hash"], 1),
            image_at("E", &[], TimeDelta::days(1) - TimeDelta::minutes(5)),
        ];
        for alpha in [
            prefixes_count(&["alpha"], 1),
            patterns_count(&["alpha*"], 1),
        ] {
            let policy = policy(vec![
                rule(1, alpha),
                rule(2, status_age("untagged", 1)),
                rule(3, status_count("any", 1)),
            ]);
            let plan = plan(images.clone(), &policy, now());
            assert_eq!(expired_names(&plan), ["A", "B", "D"]);
            let by_rule: Vec<Option<u32>> =
                plan.expired.iter().map(|d| d.rule_priority()).collect();
            assert_eq!(by_rule, [Some(1), Some(2), Some(3)]);
            assert_eq!(names(&plan, &plan.kept), ["C", "E"]);
            // Rule 3 would expire C, but rule 1 claimed it; E is rule 3's newest image.
            assert_eq!(
                decision(&plan, "C").reason,
                Reason::Claimed {
                    rule: 1,
                    would_expire: 3
                }
            );
            assert_eq!(
                decision(&plan, "E").reason,
                Reason::WithinLimits { rule: 2 }
            );
        }
    }

    // ---- Semantics ----

    #[test]
    fn age_limit_needs_strictly_more_than_n_days() {
        let policy = policy(vec![rule(1, status_age("untagged", 14))]);
        // (age, expired)
        let cases = [
            (TimeDelta::days(14) - TimeDelta::seconds(1), false),
            (TimeDelta::days(14), false),
            (TimeDelta::days(14) + TimeDelta::seconds(1), true),
            (TimeDelta::days(400), true),
            (-TimeDelta::hours(1), false), // pushed "in the future": clock skew
        ];
        for (age, expired) in cases {
            let plan = plan(vec![image_at("x", &[], age)], &policy, now());
            assert_eq!(plan.expired.len() == 1, expired, "age {age}");
        }
    }

    #[test]
    fn count_limit_keeps_the_newest_n_with_ties_broken_by_digest() {
        let policy = policy(vec![rule(1, status_count("untagged", 2))]);
        let images = vec![
            image("a", &[], 5),
            image("d", &[], 1),
            image("c", &[], 1),
            image("b", &[], 1),
        ];
        let plan = plan(images, &policy, now());
        // Newest first: b, c, d (same push time, by digest), then a. Keep b and c.
        assert_eq!(expired_names(&plan), ["a", "d"]);
        assert_eq!(
            decision(&plan, "d").reason,
            Reason::BeyondCount {
                rule: 1,
                newer: 2,
                limit: 2
            }
        );
        assert_eq!(
            decision(&plan, "a").reason,
            Reason::BeyondCount {
                rule: 1,
                newer: 3,
                limit: 2
            }
        );
        assert_eq!(names(&plan, &plan.kept), ["b", "c"]);
    }

    #[test]
    fn lower_rules_count_images_claimed_by_higher_rules() {
        // Rule 1 keeps every prod image; rule 2 (keep 2 tagged) still counts them, so the
        // non-prod images beyond the 2 newest tagged expire even though prod images are newer.
        let policy = policy(vec![
            rule(1, prefixes_count(&["prod"], 100)),
            rule(2, prefixes_count(&["v"], 2)),
        ]);
        let images = vec![
            image("old-v", &["v1"], 5),
            image("mid-v", &["v2"], 4),
            image("prod-a", &["v3", "prod-a"], 2),
            image("prod-b", &["v4", "prod-b"], 1),
        ];
        let plan = plan(images, &policy, now());
        assert_eq!(expired_names(&plan), ["old-v", "mid-v"]);
        assert_eq!(
            decision(&plan, "old-v").reason,
            Reason::BeyondCount {
                rule: 2,
                newer: 3,
                limit: 2
            }
        );
        assert_eq!(
            decision(&plan, "prod-a").reason,
            Reason::WithinLimits { rule: 1 }
        );
    }

    #[test]
    fn a_rule_claims_what_it_matches_whether_or_not_it_expires_it() {
        // (rules, image tags, expected rule_priority, expected reason)
        let cases = [
            (
                vec![
                    rule(1, prefixes_count(&["prod"], 5)),
                    rule(2, status_age("any", 1)),
                ],
                vec!["prod-1"],
                Some(1),
                Reason::Claimed {
                    rule: 1,
                    would_expire: 2,
                },
            ),
            (
                vec![
                    rule(1, prefixes_count(&["prod"], 5)),
                    rule(2, status_age("any", 1)),
                ],
                vec!["beta-1"],
                Some(2),
                Reason::PushedTooLongAgo {
                    rule: 2,
                    tag_status: TagStatus::Any,
                    age_days: 10,
                    limit_days: 1,
                },
            ),
            (
                vec![
                    rule(1, prefixes_count(&["prod"], 5)),
                    rule(2, status_age("any", 30)),
                ],
                vec!["prod-1"],
                Some(1),
                Reason::WithinLimits { rule: 1 },
            ),
            (
                vec![
                    rule(1, status_age("untagged", 1)),
                    rule(2, status_count("any", 1)),
                ],
                vec!["beta-1"],
                Some(2),
                Reason::WithinLimits { rule: 2 },
            ),
            (
                vec![rule(1, status_age("untagged", 1))],
                vec!["beta-1"],
                None,
                Reason::Unselected,
            ),
            (
                vec![
                    rule(1, patterns_count(&["prod*"], 1)),
                    rule(2, patterns_count(&["*-1"], 1)),
                ],
                vec!["beta-1"],
                Some(2),
                Reason::WithinLimits { rule: 2 },
            ),
        ];
        for (rules, tags, rule_priority, reason) in cases {
            let policy = policy(rules);
            let plan = plan(vec![image("x", &tags, 10)], &policy, now());
            let decision = decision(&plan, "x");
            assert_eq!(
                (decision.rule_priority(), &decision.reason),
                (rule_priority, &reason),
                "{tags:?} under {policy:?}"
            );
        }
    }

    #[test]
    fn an_expired_image_names_the_first_lower_rule_that_would_expire_it_when_claimed() {
        let policy = policy(vec![
            rule(1, prefixes_count(&["prod"], 5)),
            rule(2, prefixes_count(&["p"], 1)),
            rule(3, status_count("any", 1)),
        ]);
        let images = vec![image("old", &["prod-1"], 3), image("new", &["prod-2"], 1)];
        let plan = plan(images, &policy, now());
        assert!(plan.expired.is_empty());
        assert_eq!(
            decision(&plan, "old").reason,
            Reason::Claimed {
                rule: 1,
                would_expire: 2
            }
        );
    }

    #[test]
    fn untagged_shorthand_expires_by_either_limit() {
        let images = || {
            vec![
                image("u1", &[], 30),
                image("u2", &[], 20),
                image("u3", &[], 10),
                image("u4", &[], 5),
                image("u5", &[], 1),
                image("tagged", &["v1"], 100),
            ]
        };
        // (age, count, expired)
        let cases = [
            (Some(14), None, vec!["u1", "u2"]),
            (None, Some(3), vec!["u1", "u2"]),
            (None, Some(2), vec!["u1", "u2", "u3"]),
            (Some(7), Some(4), vec!["u1", "u2", "u3"]),
            (Some(25), Some(3), vec!["u1", "u2"]),
            (Some(0), None, vec!["u1", "u2", "u3", "u4", "u5"]),
            (None, Some(0), vec!["u1", "u2", "u3", "u4", "u5"]),
        ];
        for (age, count, expired) in cases {
            let policy = Policy::untagged(age, count).unwrap();
            let plan = plan(images(), &policy, now());
            assert_eq!(expired_names(&plan), expired, "age {age:?} count {count:?}");
            assert_eq!(decision(&plan, "tagged").reason, Reason::Unselected);
        }
    }

    #[test]
    fn shorthand_prefers_the_age_reason_when_both_limits_apply() {
        let policy = Policy::untagged(Some(7), Some(1)).unwrap();
        let images = vec![
            image("old", &[], 30),
            image("mid", &[], 3),
            image("new", &[], 1),
        ];
        let plan = plan(images, &policy, now());
        assert_eq!(
            decision(&plan, "old").reason,
            Reason::PushedTooLongAgo {
                rule: 1,
                tag_status: TagStatus::Untagged,
                age_days: 30,
                limit_days: 7
            }
        );
        assert_eq!(
            decision(&plan, "mid").reason,
            Reason::BeyondCount {
                rule: 1,
                newer: 1,
                limit: 1
            }
        );
        assert_eq!(
            decision(&plan, "new").reason,
            Reason::WithinLimits { rule: 1 }
        );
    }

    #[test]
    fn output_is_sorted_by_push_time_then_digest() {
        let policy = policy(vec![rule(1, status_count("any", 2))]);
        let images = vec![
            image("z", &[], 1),
            image("b", &["v"], 9),
            image("a", &[], 9),
            image("y", &["v"], 1),
            image("m", &[], 5),
        ];
        let plan = plan(images, &policy, now());
        assert_eq!(expired_names(&plan), ["a", "b", "m"]);
        assert_eq!(names(&plan, &plan.kept), ["y", "z"]);
    }

    #[test]
    fn no_images_give_an_empty_plan() {
        let policy = Policy::untagged(Some(1), None).unwrap();
        assert_eq!(plan(vec![], &policy, now()), Plan::default());
    }

    #[test]
    fn reasons_read_as_sentences() {
        let cases = [
            (
                Reason::PushedTooLongAgo {
                    rule: 1,
                    tag_status: TagStatus::Untagged,
                    age_days: 30,
                    limit_days: 14,
                },
                "rule 1: untagged, pushed 30 days ago (limit 14 days)",
            ),
            (
                Reason::PushedTooLongAgo {
                    rule: 4,
                    tag_status: TagStatus::Tagged,
                    age_days: 2,
                    limit_days: 1,
                },
                "rule 4: tagged, pushed 2 days ago (limit 1 day)",
            ),
            (
                Reason::PushedTooLongAgo {
                    rule: 1,
                    tag_status: TagStatus::Any,
                    age_days: 14,
                    limit_days: 14,
                },
                "rule 1: any, pushed just over 14 days ago (limit 14 days)",
            ),
            (
                Reason::BeyondCount {
                    rule: 2,
                    newer: 5,
                    limit: 3,
                },
                "rule 2: 5 newer images match (limit 3)",
            ),
            (
                Reason::BeyondCount {
                    rule: 2,
                    newer: 1,
                    limit: 1,
                },
                "rule 2: 1 newer image matches (limit 1)",
            ),
            (
                Reason::WithinLimits { rule: 1 },
                "rule 1 selects it but it is within its limits",
            ),
            (
                Reason::Claimed {
                    rule: 1,
                    would_expire: 2,
                },
                "claimed by higher-priority rule 1 (rule 2 would expire it)",
            ),
            (Reason::Unselected, "no rule selects it"),
        ];
        for (reason, text) in cases {
            assert_eq!(reason.to_string(), text);
        }
    }

    #[test]
    fn keys_sort_as_8_bytes_only_when_they_fit() {
        let at = |secs: i64, nanos: u32, listed: u32| {
            Key::new(DateTime::from_timestamp(secs, nanos).unwrap(), listed)
        };
        let day = 24 * 3600;
        // 32 bits of place leave 32 bits of milliseconds: 49.7 days.
        let cases = [
            (
                "whole milliseconds",
                vec![at(day, 7_000_000, 2), at(0, 0, 1)],
                true,
            ),
            ("one key", vec![at(-day, 0, 0)], true),
            ("no keys", vec![], false),
            (
                "a sub-millisecond push",
                vec![at(day, 7_000_001, 2), at(0, 0, 1)],
                false,
            ),
            (
                "no push time",
                vec![Key::new(DateTime::<Utc>::MAX_UTC, 1), at(0, 0, 0)],
                false,
            ),
            (
                "49 days, 32 bits of place",
                vec![at(49 * day, 0, u32::MAX), at(0, 0, 0)],
                true,
            ),
            (
                "50 days, 32 bits of place",
                vec![at(50 * day, 0, u32::MAX), at(0, 0, 0)],
                false,
            ),
            (
                "50 days, 31 bits of place",
                vec![at(50 * day, 0, 1 << 30), at(0, 0, 0)],
                true,
            ),
        ];
        for (case, keys, fits) in cases {
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            let mut narrow = keys.clone();
            assert_eq!(sort_narrow(&mut narrow), fits, "{case}");
            assert_eq!(narrow, if fits { sorted } else { keys }, "{case}");
        }
    }

    #[test]
    fn age_in_days_at_the_edges_of_a_day() {
        let day = 24 * 3600;
        // (pushed seconds, nanos; now seconds, nanos; whole days)
        let cases = [
            (0, 500_000_000, day, 0, 0),
            (0, 500_000_000, day, 500_000_000, 1),
            (0, 0, day - 1, 999_999_999, 0),
            (-day, 1, 0, 0, 0),
            (-day, 0, 0, 0, 1),
            (day, 0, 0, 1, 0),
            (day, 1, 0, 0, -1),
            (1_700_000_000, 250, 1_700_000_000 + 30 * day, 249, 29),
        ];
        for (pushed, pushed_nanos, now, now_nanos, days) in cases {
            let pushed_at = DateTime::from_timestamp(pushed, pushed_nanos).unwrap();
            let now = DateTime::from_timestamp(now, now_nanos).unwrap();
            assert_eq!(
                (now - pushed_at).num_days(),
                days,
                "chrono, {pushed_at} to {now}"
            );
            let age = Key::new(pushed_at, 0).age_days(instant(now));
            assert_eq!(age, days, "{pushed_at} to {now}");
        }
    }

    #[test]
    fn an_image_just_past_the_age_limit_says_so() {
        let policy = policy(vec![rule(1, status_age("untagged", 14))]);
        let age = TimeDelta::days(14) + TimeDelta::hours(3);
        let plan = plan(vec![image_at("x", &[], age)], &policy, now());
        assert_eq!(
            decision(&plan, "x").reason.to_string(),
            "rule 1: untagged, pushed just over 14 days ago (limit 14 days)"
        );
    }

    // ---- Properties over random repositories and policies ----

    const TAGS: [&str; 6] = ["prod-1", "prod-2", "beta-1", "beta-2", "v1", "latest"];
    const PREFIXES: [&str; 5] = ["prod", "beta", "v", "prod-1", "l"];
    const PATTERNS: [&str; 7] = ["prod*", "*-1", "beta-?", "*", "v1", "*t*", "p*d-*"];

    fn images_strategy() -> impl Strategy<Value = Vec<Image>> {
        // Push times on a 6-hour grid over 40 days, so ties and age boundaries both happen.
        let spec = (
            prop::collection::btree_set(prop::sample::select(&TAGS[..]), 0..3),
            0i64..160,
        );
        // A quarter of the repositories have push times off the millisecond, which the
        // keys' 16-byte sort orders (ECR's are whole milliseconds, for the 8-byte sort).
        let specs = prop::collection::vec(spec, 0..16);
        (specs, prop::bool::weighted(0.25)).prop_map(|(specs, sub_millisecond)| {
            specs
                .into_iter()
                .enumerate()
                .map(|(i, (tags, quarter_days))| Image {
                    // Unique, and not in push order.
                    digest: format!("sha256:{:02}-{i}", (i * 37) % 17).into(),
                    tags: tags.into_iter().map(str::to_string).collect(),
                    pushed_at: now() - TimeDelta::hours(quarter_days * 6)
                        + TimeDelta::nanoseconds(if sub_millisecond { i as i64 % 3 } else { 0 }),
                    size_bytes: None,
                    manifest_media_type: None,
                    subject: None,
                })
                .collect()
        })
    }

    fn limit_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            (1u32..5).prop_map(|n| json!({ "countType": "imageCountMoreThan", "countNumber": n })),
            (1u32..30).prop_map(|n| json!({
                "countType": "sinceImagePushed", "countUnit": "days", "countNumber": n
            })),
        ]
    }

    fn tagged_selection_strategy() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::collection::btree_set(prop::sample::select(&PREFIXES[..]), 1..3)
                .prop_map(|list| json!({ "tagStatus": "tagged", "tagPrefixList": list })),
            prop::collection::btree_set(prop::sample::select(&PATTERNS[..]), 1..3)
                .prop_map(|list| json!({ "tagStatus": "tagged", "tagPatternList": list })),
        ]
    }

    fn with_limit(selection: Value, limit: Value) -> Value {
        let mut selection = selection;
        if let (Some(selection), Some(limit)) = (selection.as_object_mut(), limit.as_object()) {
            selection.extend(limit.clone());
        }
        selection
    }

    /// Random valid documents: some tagged rules, at most one untagged rule anywhere among them,
    /// at most one any rule (last), priorities increasing with random gaps; or the shorthand.
    fn policy_strategy() -> impl Strategy<Value = Policy> {
        let tagged = prop::collection::vec((tagged_selection_strategy(), limit_strategy()), 0..4);
        let untagged = prop::option::of((0usize..4, limit_strategy()));
        let any = prop::option::of(limit_strategy());
        let gaps = prop::collection::vec(1u32..4, 6);
        let document = (tagged, untagged, any, gaps).prop_filter_map(
            "a policy needs a rule",
            |(tagged, untagged, any, gaps)| {
                let mut selections: Vec<Value> = tagged
                    .into_iter()
                    .map(|(selection, limit)| with_limit(selection, limit))
                    .collect();
                if let Some((at, limit)) = untagged {
                    let at = at.min(selections.len());
                    selections.insert(at, with_limit(json!({ "tagStatus": "untagged" }), limit));
                }
                if let Some(limit) = any {
                    selections.push(with_limit(json!({ "tagStatus": "any" }), limit));
                }
                let mut priority = 0;
                let rules: Vec<Value> = selections
                    .into_iter()
                    .zip(gaps)
                    .map(|(selection, gap)| {
                        priority += gap;
                        rule(priority, selection)
                    })
                    .collect();
                (!rules.is_empty()).then(|| json!({ "rules": rules }).to_string())
            },
        );
        let shorthand = (prop::option::of(0u32..30), prop::option::of(0u32..5))
            .prop_filter_map("the shorthand needs a limit", |(age, count)| {
                Policy::untagged(age, count)
            });
        prop_oneof![
            4 => document.prop_map(|text| match Policy::from_json(&text) {
                Ok(policy) => policy,
                Err(e) => panic!("generated an invalid policy {text}: {e}"),
            }),
            1 => shorthand,
        ]
    }

    fn inputs() -> impl Strategy<Value = (Vec<Image>, Vec<Image>, Policy)> {
        images_strategy()
            .prop_flat_map(|images| (Just(images.clone()), Just(images).prop_shuffle()))
            .prop_flat_map(|(images, shuffled)| (Just(images), Just(shuffled), policy_strategy()))
    }

    /// ECR's evaluation as the module documentation states it, rule by rule with a sort per
    /// rule: the oracle for the one-pass planner. Each image's digest with its reason.
    fn by_the_book(images: &[Image], policy: &Policy) -> BTreeMap<String, Reason> {
        let mut reasons: BTreeMap<String, Reason> = images
            .iter()
            .map(|image| (image.digest.to_string(), Reason::Unselected))
            .collect();
        for rule in policy.rules() {
            let mut matched: Vec<&Image> = images
                .iter()
                .filter(|i| rule.selection.matches(&i.tags))
                .collect();
            matched.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at).then(a.digest.cmp(&b.digest)));
            for (newer, image) in matched.into_iter().enumerate() {
                let age = now() - image.pushed_at;
                let by_age = rule.limits.iter().find_map(|limit| match *limit {
                    Limit::SincePushedDays(days) if age > TimeDelta::days(days.into()) => {
                        Some(Reason::PushedTooLongAgo {
                            rule: rule.priority,
                            tag_status: rule.selection.tag_status,
                            age_days: age.num_days(),
                            limit_days: days,
                        })
                    }
                    _ => None,
                });
                let by_count = rule.limits.iter().find_map(|limit| match *limit {
                    Limit::CountMoreThan(n) if newer >= n as usize => Some(Reason::BeyondCount {
                        rule: rule.priority,
                        newer,
                        limit: n,
                    }),
                    _ => None,
                });
                let reason = reasons
                    .entry(image.digest.to_string())
                    .or_insert(Reason::Unselected);
                *reason = match (reason.clone(), by_age.or(by_count)) {
                    (Reason::Unselected, Some(picked)) => picked,
                    (Reason::Unselected, None) => Reason::WithinLimits {
                        rule: rule.priority,
                    },
                    (Reason::WithinLimits { rule: first }, Some(_)) => Reason::Claimed {
                        rule: first,
                        would_expire: rule.priority,
                    },
                    (decided, _) => decided,
                };
            }
        }
        reasons
    }

    proptest! {
        #[test]
        fn expired_images_match_no_higher_priority_rule((images, _shuffled, policy) in inputs()) {
            let plan = plan(images, &policy, now());
            for decision in &plan.expired {
                let Some(by) = decision.rule_priority() else {
                    panic!("expired without a rule: {decision:?}");
                };
                for higher in policy.rules().iter().filter(|r| r.priority < by) {
                    prop_assert!(
                        !higher.selection.matches(&plan.image(decision).tags),
                        "{decision:?} matches higher rule {higher:?}"
                    );
                }
            }
        }

        #[test]
        fn count_rules_expire_at_most_the_excess((images, _shuffled, policy) in inputs()) {
            let plan = plan(images.clone(), &policy, now());
            for rule in policy.rules() {
                let [Limit::CountMoreThan(n)] = rule.limits[..] else { continue };
                let matched = images.iter().filter(|i| rule.selection.matches(&i.tags)).count();
                let expired = plan
                    .expired
                    .iter()
                    .filter(|d| d.rule_priority() == Some(rule.priority))
                    .count();
                prop_assert!(expired <= matched.saturating_sub(n as usize));
            }
        }

        #[test]
        fn keys_sort_the_same_in_8_bytes(
            pushes in prop::collection::vec((-1_000_000i64..1_000_000, 0u32..3), 0..40),
            spread in prop::sample::select(vec![1i64, 1000, 3_000_000, 1 << 32]),
            place_stride in prop::sample::select(vec![1u32, 3, 1 << 26]),
        ) {
            // Milliseconds (sometimes with a nanosecond more), ties and spans of every size.
            let keys: Vec<Key> = pushes
                .iter()
                .enumerate()
                .map(|(i, &(ms, nanos))| {
                    let at = DateTime::from_timestamp_millis(ms * spread).unwrap()
                        + TimeDelta::nanoseconds(i64::from(nanos / 2));
                    Key::new(at, i as u32 * place_stride)
                })
                .collect();
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            let mut narrow = keys.clone();
            let fitted = sort_narrow(&mut narrow);
            prop_assert_eq!(narrow, if fitted { sorted } else { keys });
        }

        #[test]
        fn age_in_days_is_chronos(
            pushed in -4_000_000_000i64..4_000_000_000,
            pushed_nanos in 0u32..1_000_000_000,
            later in -400_000i64..40_000_000,
            now_nanos in 0u32..1_000_000_000,
        ) {
            let pushed_at = DateTime::from_timestamp(pushed, pushed_nanos).unwrap();
            let now = DateTime::from_timestamp(pushed + later, now_nanos).unwrap();
            let key = Key::new(pushed_at, 7);
            prop_assert_eq!(key.age_days(instant(now)), (now - pushed_at).num_days());
        }

        #[test]
        fn agrees_with_ecrs_rules_read_directly((images, _shuffled, policy) in inputs()) {
            let book = by_the_book(&images, &policy);
            let plan = plan(images, &policy, now());
            for (list, expiring) in [(&plan.expired, true), (&plan.kept, false)] {
                for decision in list {
                    let digest = plan.image(decision).digest.to_string();
                    let expected = &book[&digest];
                    prop_assert_eq!(&decision.reason, expected, "{}", digest);
                    let expires = matches!(
                        expected,
                        Reason::PushedTooLongAgo { .. } | Reason::BeyondCount { .. }
                    );
                    prop_assert_eq!(expires, expiring, "{}", digest);
                }
            }
        }

        #[test]
        fn input_order_does_not_matter((images, shuffled, policy) in inputs()) {
            let (a, b) = (plan(images, &policy, now()), plan(shuffled, &policy, now()));
            prop_assert_eq!(resolved(&a), resolved(&b));
        }

        #[test]
        fn every_image_is_decided_exactly_once_in_order((images, _shuffled, policy) in inputs()) {
            let plan = plan(images.clone(), &policy, now());
            let mut decided: Vec<&Image> =
                plan.expired.iter().chain(&plan.kept).map(|d| plan.image(d)).collect();
            let mut given: Vec<&Image> = images.iter().collect();
            decided.sort_by(|a, b| oldest_first(a, b));
            given.sort_by(|a, b| oldest_first(a, b));
            prop_assert_eq!(decided, given);
            for list in [&plan.expired, &plan.kept] {
                prop_assert!(list
                    .windows(2)
                    .all(|w| oldest_first(plan.image(&w[0]), plan.image(&w[1])) == Ordering::Less));
            }
        }
    }
}
