//! Brakes on runaway deletes: a plan that would delete too large a share of a repository's
//! tagged images (a wrong pattern, a policy meant for another repository) is not carried out.

use std::collections::BTreeMap;
use std::fmt;

use super::plan::Plan;

/// A plan the tagged-delete brake holds back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedBrake {
    /// Tagged images the plan would delete.
    pub expiring: usize,
    /// Tagged images in the repository.
    pub tagged: usize,
    /// `MAX_TAGGED_DELETE_PERCENT`.
    pub limit: u32,
    /// The rule that would expire the most of them, the one to look at.
    pub rule: Option<u32>,
}

impl fmt::Display for TaggedBrake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let share = self.expiring * 100 / self.tagged.max(1);
        write!(
            f,
            "the plan would delete {} of {} tagged images ({share}%), more than \
             MAX_TAGGED_DELETE_PERCENT={}",
            self.expiring, self.tagged, self.limit
        )?;
        match self.rule {
            Some(rule) => write!(f, "; rule {rule} expires most of them")?,
            None => write!(f, "; they follow images that expire")?,
        }
        write!(f, "; nothing deleted in this repository")
    }
}

/// The brake, when `plan` deletes more than `limit` percent of the repository's tagged
/// images. Untagged images do not count.
pub fn tagged_brake(plan: &Plan, limit: Option<u32>) -> Option<TaggedBrake> {
    let limit = limit?;
    let tagged = |d: &&super::plan::Decision| !plan.image(d).tags.is_empty();
    let expiring: Vec<_> = plan.expired.iter().filter(tagged).collect();
    let total = expiring.len() + plan.kept.iter().filter(tagged).count();
    if expiring.is_empty() || expiring.len() * 100 <= total * limit as usize {
        return None;
    }
    let mut by_rule: BTreeMap<Option<u32>, usize> = BTreeMap::new();
    for d in &expiring {
        *by_rule.entry(d.rule_priority()).or_default() += 1;
    }
    let rule = by_rule
        .iter()
        .max_by_key(|(rule, n)| (**n, std::cmp::Reverse(**rule)))
        .and_then(|(rule, _)| *rule);
    Some(TaggedBrake {
        expiring: expiring.len(),
        tagged: total,
        limit,
        rule,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::plan::{Decision, Reason};
    use crate::model::Image;
    use crate::testing::now;

    /// A decision on a new image of `plan`, named `name`: by `rule` when there is one, else
    /// as the follower of an expiring index.
    fn decision(plan: &mut Plan, name: &str, tagged: bool, rule: Option<u32>) -> Decision {
        let tags = if tagged {
            vec![format!("t-{name}")]
        } else {
            vec![]
        };
        plan.images.push(Image::plain(name, tags, now()));
        let listed = plan.images.len() as u32 - 1;
        let reason = match rule {
            Some(rule) => Reason::WithinLimits { rule },
            None => Reason::ListedByExpired {
                index: "sha256:index".into(),
                indexes: 1,
            },
        };
        Decision::new(listed, reason)
    }

    fn plan(expired: &[(bool, Option<u32>)], kept_tagged: usize, kept_untagged: usize) -> Plan {
        let mut plan = Plan::default();
        for (i, (tagged, rule)) in expired.iter().enumerate() {
            let decision = decision(&mut plan, &format!("e{i}"), *tagged, *rule);
            plan.expired.push(decision);
        }
        for i in 0..kept_tagged + kept_untagged {
            let decision = decision(&mut plan, &format!("k{i}"), i < kept_tagged, Some(1));
            plan.kept.push(decision);
        }
        plan
    }

    #[test]
    fn trips_only_above_the_share_of_tagged_images() {
        let half = plan(&[(true, Some(1)), (true, Some(2))], 2, 0);
        assert_eq!(
            tagged_brake(&half, Some(50)),
            None,
            "exactly 50% is allowed"
        );
        let over = plan(&[(true, Some(2)), (true, Some(2)), (true, Some(1))], 2, 0);
        let brake = tagged_brake(&over, Some(50)).expect("60% > 50%");
        assert_eq!((brake.expiring, brake.tagged, brake.rule), (3, 5, Some(2)));
        assert_eq!(
            brake.to_string(),
            "the plan would delete 3 of 5 tagged images (60%), more than \
             MAX_TAGGED_DELETE_PERCENT=50; rule 2 expires most of them; nothing deleted in \
             this repository"
        );
        assert_eq!(tagged_brake(&over, None), None, "off");
        let untagged = plan(&[(false, Some(1)), (false, Some(1))], 0, 0);
        assert_eq!(
            tagged_brake(&untagged, Some(0)),
            None,
            "untagged images never count"
        );
        let zero = plan(&[(true, Some(1))], 100, 5);
        assert!(
            tagged_brake(&zero, Some(0)).is_some(),
            "0%: any tagged deletion trips"
        );
    }
}
