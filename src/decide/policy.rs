//! ECR lifecycle-policy rules: parsing, validation and tag selection.
//!
//! The janitor applies the same documents ECR accepts, with ECR's own validation, so a policy
//! can be moved between ECR and the janitor unchanged. Constructs ECR defines but the janitor
//! does not act on (archive storage, pull- and transition-based counts) are rejected rather than
//! silently ignored, so a document never means less here than it does in ECR.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// ECR's limit on the length of a lifecycle policy document, in characters.
const MAX_DOCUMENT_CHARS: usize = 30_720;
/// ECR's limit on the number of rules in one lifecycle policy. The planner keeps each
/// image's matches in one 64-bit word.
pub(crate) const MAX_RULES: usize = 50;
/// ECR's limit on `*` wildcards in one `tagPatternList` entry.
const MAX_WILDCARDS: usize = 4;

/// Which images a rule considers, by whether they carry tags (ECR's `tagStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagStatus {
    /// Images with at least one tag (further narrowed by a [`TagFilter`]).
    Tagged,
    /// Images with no tags.
    Untagged,
    /// Every image.
    Any,
}

impl fmt::Display for TagStatus {
    /// ECR's own keyword, so reasons read like the policy document.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TagStatus::Tagged => "tagged",
            TagStatus::Untagged => "untagged",
            TagStatus::Any => "any",
        })
    }
}

/// How a tagged rule narrows its images: every entry must match at least one of the image's tags.
#[derive(Debug, Clone, PartialEq)]
pub enum TagFilter {
    /// ECR's `tagPrefixList`.
    Prefixes(Vec<String>),
    /// ECR's `tagPatternList`.
    Patterns(Vec<TagPattern>),
}

/// One `tagPatternList` entry: `*` matches any run of characters (including none), every other
/// character matches only itself, and the pattern must match the whole tag.
#[derive(Clone)]
pub struct TagPattern {
    text: String,
    /// The text between the stars (an empty piece where two stars meet or at an end).
    pieces: Vec<String>,
}

impl TagPattern {
    /// Compiles a pattern, enforcing ECR's limits. The error is the bare problem; the caller
    /// names the rule it belongs to.
    pub(crate) fn new(text: &str) -> Result<TagPattern, String> {
        if text.is_empty() {
            return Err(
                "selection.tagPatternList contains an empty string; ECR accepts only non-empty patterns"
                    .to_string(),
            );
        }
        let wildcards = text.matches('*').count();
        if wildcards > MAX_WILDCARDS {
            return Err(format!(
                "selection.tagPatternList entry {text:?} has {wildcards} `*` wildcards; ECR accepts at most {MAX_WILDCARDS} per pattern"
            ));
        }
        Ok(TagPattern {
            text: text.to_string(),
            pieces: text.split('*').map(str::to_owned).collect(),
        })
    }

    /// Whether this pattern matches the whole of `tag`: the first piece starts it, the last
    /// ends it, and the pieces between occur in order. Taking each middle piece where it
    /// first occurs is enough: any later match leaves less room for the rest.
    pub fn matches(&self, tag: &str) -> bool {
        let Some((first, rest)) = self.pieces.split_first() else {
            return false;
        };
        let Some(mut unmatched) = tag.strip_prefix(first.as_str()) else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return unmatched.is_empty();
        };
        for piece in middle {
            match unmatched.find(piece.as_str()) {
                Some(at) => unmatched = &unmatched[at + piece.len()..],
                None => return false,
            }
        }
        unmatched.ends_with(last.as_str())
    }
}

impl fmt::Debug for TagPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TagPattern").field(&self.text).finish()
    }
}

/// Two patterns are equal when their text is: the pieces are a pure function of the text.
impl PartialEq for TagPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

/// Which images a rule applies to (ECR's `selection`, minus the limit).
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Tagged, untagged or any.
    pub tag_status: TagStatus,
    /// For tagged rules, the prefixes or patterns every selected image must carry.
    pub tag_filter: Option<TagFilter>,
}

impl Selection {
    /// Whether an image with these tags is selected: its tag status fits and every filter
    /// entry matches at least one of its tags (AND across the list, as ECR does).
    pub fn matches(&self, tags: &[String]) -> bool {
        let status_fits = match self.tag_status {
            TagStatus::Tagged => !tags.is_empty(),
            TagStatus::Untagged => tags.is_empty(),
            TagStatus::Any => true,
        };
        status_fits
            && match &self.tag_filter {
                None => true,
                Some(TagFilter::Prefixes(prefixes)) => prefixes
                    .iter()
                    .all(|prefix| tags.iter().any(|tag| tag.starts_with(prefix.as_str()))),
                Some(TagFilter::Patterns(patterns)) => patterns
                    .iter()
                    .all(|pattern| tags.iter().any(|tag| pattern.matches(tag))),
            }
    }
}

/// When a selected image becomes a candidate for expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// `imageCountMoreThan`: all but the N most recently pushed selected images.
    CountMoreThan(u32),
    /// `sinceImagePushed` in days: images pushed strictly more than N × 24 hours before `now`.
    SincePushedDays(u32),
}

/// One rule. A rule parsed from an ECR document has exactly one limit; the env-var shorthand
/// (UNTAGGED_MAX_AGE_DAYS + UNTAGGED_MAX_COUNT) makes one untagged rule whose image expires when
/// ANY of its limits says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Lower numbers apply first.
    pub priority: u32,
    /// Which images the rule considers (and claims from lower-priority rules).
    pub selection: Selection,
    /// An image is a candidate when any of these says so.
    pub limits: Vec<Limit>,
}

/// A validated lifecycle policy: what [`crate::decide::plan::plan`] applies to a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Sorted by priority ascending, priorities unique.
    rules: Vec<Rule>,
}

/// Why a policy document was refused. The text names each offending rule and says what ECR
/// accepts, so it can be shown to whoever wrote the policy as is.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The document as a whole is unusable (too long, not JSON, no usable `rules` list), so no
    /// rule was checked.
    #[error("invalid lifecycle policy: {0}")]
    Document(String),
    /// One or more rules are invalid; every problem found in the document is listed.
    #[error("invalid lifecycle policy:\n  - {}", .0.join("\n  - "))]
    Rules(Vec<String>),
}

impl Policy {
    /// Parse and validate an ECR lifecycle policy document verbatim.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let raw_rules = parse_document(text)?;
        let mut errors = Vec::new();
        let priorities: Vec<Option<u32>> = raw_rules.iter().map(raw_priority).collect();
        let labels = rule_labels(&priorities, &mut errors);

        let mut rules = Vec::new();
        // (label, priority, tag status) of every rule whose priority and tag status parsed, for
        // the checks that span rules.
        let mut statuses: Vec<(&str, u32, TagStatus)> = Vec::new();
        for (raw, label) in raw_rules.into_iter().zip(&labels) {
            let mut problems = Vec::new();
            let checked = check_rule(raw, &mut problems);
            errors.extend(problems.into_iter().map(|p| format!("{label}: {p}")));
            if let (Some(priority), Some(status)) = (checked.priority, checked.tag_status) {
                statuses.push((label, priority, status));
            }
            rules.extend(checked.rule);
        }
        let highest = priorities.iter().flatten().max().copied();
        check_across_rules(&statuses, highest, &mut errors);

        if !errors.is_empty() {
            return Err(PolicyError::Rules(errors));
        }
        rules.sort_by_key(|rule| rule.priority);
        Ok(Policy { rules })
    }

    /// The env-var shorthand: one `untagged` rule, priority 1. None when both are None.
    ///
    /// The configuration never passes zero (`UNTAGGED_MAX_AGE_DAYS=0` means "no age limit" and
    /// `UNTAGGED_MAX_COUNT=0` is refused), so every limit here is one ECR would accept too.
    pub fn untagged(max_age_days: Option<u32>, max_count: Option<u32>) -> Option<Policy> {
        let limits: Vec<Limit> = max_age_days
            .map(Limit::SincePushedDays)
            .into_iter()
            .chain(max_count.map(Limit::CountMoreThan))
            .collect();
        if limits.is_empty() {
            return None;
        }
        Some(Policy {
            rules: vec![Rule {
                priority: 1,
                selection: Selection {
                    tag_status: TagStatus::Untagged,
                    tag_filter: None,
                },
                limits,
            }],
        })
    }

    /// The rules, lowest priority number (applied first) first.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

/// The document's raw rules, once its size, JSON and `rules` list are acceptable.
fn parse_document(text: &str) -> Result<Vec<Value>, PolicyError> {
    let chars = text.chars().count();
    if chars > MAX_DOCUMENT_CHARS {
        return Err(PolicyError::Document(format!(
            "the document is {chars} characters long; ECR accepts at most {MAX_DOCUMENT_CHARS}"
        )));
    }
    let document: RawDocument = serde_json::from_str(text).map_err(|e| {
        PolicyError::Document(format!(
            "{e}; ECR accepts a JSON object whose only field is a `rules` list"
        ))
    })?;
    match document.rules {
        None => Err(PolicyError::Document(format!(
            "`rules` is missing; ECR requires a list of 1 to {MAX_RULES} rules"
        ))),
        Some(rules) if rules.is_empty() => Err(PolicyError::Document(format!(
            "`rules` is empty; ECR requires 1 to {MAX_RULES} rules"
        ))),
        Some(rules) if rules.len() > MAX_RULES => Err(PolicyError::Document(format!(
            "`rules` has {} entries; ECR accepts at most {MAX_RULES}",
            rules.len()
        ))),
        Some(rules) => Ok(rules),
    }
}

/// How errors name each rule (`rule 3`, or `rule 3 (rules[1])` when the priority is shared,
/// or `rules[1]` without a valid priority); pushes an error per shared priority.
fn rule_labels(priorities: &[Option<u32>], errors: &mut Vec<String>) -> Vec<String> {
    let mut indices_by_priority: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (index, priority) in priorities.iter().enumerate() {
        if let Some(priority) = priority {
            indices_by_priority
                .entry(*priority)
                .or_default()
                .push(index);
        }
    }
    for (priority, indices) in &indices_by_priority {
        if indices.len() > 1 {
            let at: Vec<String> = indices.iter().map(|i| format!("rules[{i}]")).collect();
            errors.push(format!(
                "rulePriority {priority} is used by {}; ECR requires every rulePriority to be unique",
                at.join(" and ")
            ));
        }
    }
    priorities
        .iter()
        .enumerate()
        .map(|(index, priority)| match priority {
            Some(p) if indices_by_priority.get(p).is_some_and(|at| at.len() > 1) => {
                format!("rule {p} (rules[{index}])")
            }
            Some(p) => format!("rule {p}"),
            None => format!("rules[{index}]"),
        })
        .collect()
}

/// The top level of a lifecycle policy document. Rules stay raw JSON so each is checked, and
/// named in errors, on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a lifecycle policy object")]
struct RawDocument {
    rules: Option<Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a lifecycle policy rule object"
)]
struct RawRule {
    /// Kept as JSON so that a wrong type gets ECR's wording, not serde's.
    rule_priority: Option<Value>,
    /// Free text: ECR requires a string, and nothing reads it.
    #[serde(rename = "description")]
    _description: Option<String>,
    selection: Option<Value>,
    action: Option<Value>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a selection object"
)]
struct RawSelection {
    tag_status: Option<String>,
    tag_prefix_list: Option<Vec<String>>,
    tag_pattern_list: Option<Vec<String>>,
    storage_class: Option<Value>,
    count_type: Option<String>,
    count_unit: Option<String>,
    count_number: Option<Value>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "an action object"
)]
struct RawAction {
    #[serde(rename = "type")]
    kind: Option<String>,
    target_storage_class: Option<Value>,
}

/// What checking one rule yielded: the rule when it is entirely valid, and whatever parts
/// parsed, for the checks that span rules.
struct CheckedRule {
    priority: Option<u32>,
    tag_status: Option<TagStatus>,
    rule: Option<Rule>,
}

/// The rule's priority when it is present and valid; the problem is reported by [`check_rule`].
fn raw_priority(raw: &Value) -> Option<u32> {
    raw.get("rulePriority").and_then(positive_u32)
}

/// A JSON integer in `1..=u32::MAX`, as ECR requires of `rulePriority` and `countNumber`.
fn positive_u32(value: &Value) -> Option<u32> {
    value
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n >= 1)
}

/// Deserializes one nested object, prefixing serde's complaint with where it was.
fn parse<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("{what}: {e}"))
}

/// A rule's `rulePriority`, when present and valid.
fn check_priority(value: Option<Value>, problems: &mut Vec<String>) -> Option<u32> {
    let Some(value) = value else {
        problems.push(
            "rulePriority is missing; ECR requires a unique integer of at least 1".to_string(),
        );
        return None;
    };
    let priority = positive_u32(&value);
    if priority.is_none() {
        problems.push(format!(
            "rulePriority {value} is not valid; ECR accepts an integer of at least 1"
        ));
    }
    priority
}

/// Checks one rule, pushing every problem found (without the rule's name) to `problems`.
fn check_rule(raw: Value, problems: &mut Vec<String>) -> CheckedRule {
    let mut checked = CheckedRule {
        priority: None,
        tag_status: None,
        rule: None,
    };
    let raw: RawRule = match serde_json::from_value(raw) {
        Ok(raw) => raw,
        Err(e) => {
            problems.push(e.to_string());
            return checked;
        }
    };
    let before = problems.len();

    checked.priority = check_priority(raw.rule_priority, problems);
    let selection = match raw.selection {
        None => {
            problems.push(
                "selection is missing; ECR requires a selection with tagStatus, countType and countNumber"
                    .to_string(),
            );
            None
        }
        Some(value) => match parse::<RawSelection>(value, "selection") {
            Ok(selection) => {
                let (tag_status, checked_selection) = check_selection(selection, problems);
                checked.tag_status = tag_status;
                checked_selection
            }
            Err(problem) => {
                problems.push(problem);
                None
            }
        },
    };

    match raw.action {
        None => problems.push(
            "action is missing; ECR requires an action, and ecr-janitor supports only {\"type\": \"expire\"}"
                .to_string(),
        ),
        Some(value) => match parse::<RawAction>(value, "action") {
            Ok(action) => check_action(action, problems),
            Err(problem) => problems.push(problem),
        },
    }

    if let (Some(priority), Some((selection, limit))) = (checked.priority, selection) {
        if problems.len() == before {
            checked.rule = Some(Rule {
                priority,
                selection,
                limits: vec![limit],
            });
        }
    }
    checked
}

/// Checks a rule's selection; returns its tag status when that parsed, and the selection and
/// limit when everything did.
fn check_selection(
    raw: RawSelection,
    problems: &mut Vec<String>,
) -> (Option<TagStatus>, Option<(Selection, Limit)>) {
    let before = problems.len();

    let tag_status = match raw.tag_status.as_deref() {
        Some("tagged") => Some(TagStatus::Tagged),
        Some("untagged") => Some(TagStatus::Untagged),
        Some("any") => Some(TagStatus::Any),
        None => {
            problems.push(
                "selection.tagStatus is missing; ECR accepts tagged, untagged or any".to_string(),
            );
            None
        }
        Some(other) => {
            problems.push(format!(
                "selection.tagStatus {other:?} is not valid; ECR accepts tagged, untagged or any"
            ));
            None
        }
    };

    let tag_filter = match tag_status {
        Some(TagStatus::Tagged) => {
            check_tag_lists(raw.tag_prefix_list, raw.tag_pattern_list, problems)
        }
        Some(status) => {
            if raw.tag_prefix_list.is_some() || raw.tag_pattern_list.is_some() {
                problems.push(format!(
                    "selection.tagStatus {status} must not have a tagPrefixList or tagPatternList; ECR accepts them only with tagStatus tagged"
                ));
            }
            None
        }
        None => None,
    };

    if raw.storage_class.is_some() {
        problems.push(
            "selection.storageClass is not supported by ecr-janitor, which only expires images in standard storage; remove it"
                .to_string(),
        );
    }

    let limit = check_count(raw.count_type, raw.count_unit, raw.count_number, problems);

    match (tag_status, limit) {
        (Some(tag_status), Some(limit)) if problems.len() == before => (
            Some(tag_status),
            Some((
                Selection {
                    tag_status,
                    tag_filter,
                },
                limit,
            )),
        ),
        _ => (tag_status, None),
    }
}

/// A tagged rule needs exactly one non-empty list, without empty entries.
fn check_tag_lists(
    prefixes: Option<Vec<String>>,
    patterns: Option<Vec<String>>,
    problems: &mut Vec<String>,
) -> Option<TagFilter> {
    match (prefixes, patterns) {
        (Some(_), Some(_)) => {
            problems.push(
                "selection has both tagPrefixList and tagPatternList; ECR accepts only one of them"
                    .to_string(),
            );
            None
        }
        (None, None) => {
            problems.push(
                "selection.tagStatus tagged requires a non-empty tagPrefixList or tagPatternList"
                    .to_string(),
            );
            None
        }
        (Some(prefixes), None) => {
            if prefixes.is_empty() {
                problems.push(
                    "selection.tagPrefixList is empty; ECR requires at least one prefix"
                        .to_string(),
                );
                None
            } else if prefixes.iter().any(String::is_empty) {
                problems.push(
                    "selection.tagPrefixList contains an empty string; ECR accepts only non-empty prefixes"
                        .to_string(),
                );
                None
            } else {
                Some(TagFilter::Prefixes(prefixes))
            }
        }
        (None, Some(patterns)) => {
            if patterns.is_empty() {
                problems.push(
                    "selection.tagPatternList is empty; ECR requires at least one pattern"
                        .to_string(),
                );
                return None;
            }
            let before = problems.len();
            let compiled: Vec<TagPattern> = patterns
                .iter()
                .filter_map(|text| TagPattern::new(text).map_err(|p| problems.push(p)).ok())
                .collect();
            (problems.len() == before).then_some(TagFilter::Patterns(compiled))
        }
    }
}

fn check_count(
    count_type: Option<String>,
    count_unit: Option<String>,
    count_number: Option<Value>,
    problems: &mut Vec<String>,
) -> Option<Limit> {
    let number = check_count_number(count_number, problems);
    let make = check_count_type(count_type, count_unit, problems)?;
    number.map(make)
}

/// `countNumber`: a positive integer.
fn check_count_number(value: Option<Value>, problems: &mut Vec<String>) -> Option<u32> {
    let Some(value) = value else {
        problems
            .push("selection.countNumber is missing; ECR requires a positive integer".to_string());
        return None;
    };
    let number = positive_u32(&value);
    if number.is_none() {
        problems.push(format!(
            "selection.countNumber {value} is not valid; ECR accepts a positive integer (0 is not allowed)"
        ));
    }
    number
}

/// `countType` with its `countUnit`: which limit the number makes.
fn check_count_type(
    count_type: Option<String>,
    count_unit: Option<String>,
    problems: &mut Vec<String>,
) -> Option<fn(u32) -> Limit> {
    match count_type.as_deref() {
        Some("imageCountMoreThan") => {
            if let Some(unit) = count_unit {
                problems.push(format!(
                    "selection.countUnit {unit:?} must be omitted with countType imageCountMoreThan; ECR accepts countUnit only with time-based count types"
                ));
            }
            Some(Limit::CountMoreThan)
        }
        Some("sinceImagePushed") => {
            match count_unit.as_deref() {
                Some("days") => {}
                None => problems.push(
                    "selection.countUnit is missing; ECR requires countUnit days with countType sinceImagePushed"
                        .to_string(),
                ),
                Some(other) => problems.push(format!(
                    "selection.countUnit {other:?} is not valid; ECR accepts only days"
                )),
            }
            Some(Limit::SincePushedDays)
        }
        Some(unsupported @ ("sinceImagePulled" | "sinceImageTransitioned")) => {
            problems.push(format!(
                "selection.countType {unsupported} is not supported by ecr-janitor; it accepts imageCountMoreThan or sinceImagePushed"
            ));
            None
        }
        None => {
            problems.push(
                "selection.countType is missing; ECR requires one, and ecr-janitor accepts imageCountMoreThan or sinceImagePushed"
                    .to_string(),
            );
            None
        }
        Some(other) => {
            problems.push(format!(
                "selection.countType {other:?} is not valid; ecr-janitor accepts imageCountMoreThan or sinceImagePushed"
            ));
            None
        }
    }
}

fn check_action(action: RawAction, problems: &mut Vec<String>) {
    match action.kind.as_deref() {
        Some("expire") => {}
        Some("transition") => problems.push(
            "action.type transition is not supported by ecr-janitor, which only expires images; use expire"
                .to_string(),
        ),
        None => problems.push(
            "action.type is missing; ECR requires one, and ecr-janitor supports only expire"
                .to_string(),
        ),
        Some(other) => problems.push(format!(
            "action.type {other:?} is not valid; ecr-janitor supports only expire"
        )),
    }
    if action.target_storage_class.is_some() {
        problems.push(
            "action.targetStorageClass is not supported by ecr-janitor, which only expires images; remove it"
                .to_string(),
        );
    }
}

/// At most one `untagged` rule; at most one `any` rule, and it must have the highest priority
/// (`highest`, over every rule whose priority is valid).
fn check_across_rules(
    statuses: &[(&str, u32, TagStatus)],
    highest: Option<u32>,
    errors: &mut Vec<String>,
) {
    let untagged: Vec<&str> = statuses
        .iter()
        .filter(|(_, _, status)| *status == TagStatus::Untagged)
        .map(|(label, _, _)| *label)
        .collect();
    if untagged.len() > 1 {
        errors.push(format!(
            "{} all have tagStatus untagged; ECR allows only one rule to select untagged images",
            untagged.join(", ")
        ));
    }
    let any: Vec<(&str, u32)> = statuses
        .iter()
        .filter(|(_, _, status)| *status == TagStatus::Any)
        .map(|(label, priority, _)| (*label, *priority))
        .collect();
    if any.len() > 1 {
        let labels: Vec<&str> = any.iter().map(|(label, _)| *label).collect();
        errors.push(format!(
            "{} all have tagStatus any; ECR allows only one such rule, with the highest rulePriority",
            labels.join(", ")
        ));
    }
    if let Some(highest) = highest {
        for (label, priority) in &any {
            if *priority < highest {
                errors.push(format!(
                    "{label}: tagStatus any requires the highest rulePriority in the policy, but {highest} is higher; ECR evaluates the any rule last"
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A document with the given rules.
    fn doc(rules: Vec<Value>) -> String {
        json!({ "rules": rules }).to_string()
    }

    /// A valid rule with the given priority and selection.
    fn rule(priority: u32, selection: Value) -> Value {
        json!({
            "rulePriority": priority,
            "selection": selection,
            "action": { "type": "expire" }
        })
    }

    fn untagged_count(n: u32) -> Value {
        json!({ "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": n })
    }

    fn tagged_prefix_age(prefix: &str, days: u32) -> Value {
        json!({
            "tagStatus": "tagged", "tagPrefixList": [prefix],
            "countType": "sinceImagePushed", "countUnit": "days", "countNumber": days
        })
    }

    fn any_count(n: u32) -> Value {
        json!({ "tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": n })
    }

    fn error_of(text: &str) -> String {
        match Policy::from_json(text) {
            Ok(policy) => panic!("expected an error, parsed {policy:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn tags(tags: &[&str]) -> Vec<String> {
        tags.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn parses_a_document_into_rules_sorted_by_priority() {
        let policy = Policy::from_json(&doc(vec![
            rule(
                20,
                json!({
                    "tagStatus": "tagged", "tagPatternList": ["prod*", "*-rc"],
                    "countType": "imageCountMoreThan", "countNumber": 3
                }),
            ),
            json!({
                "rulePriority": 5,
                "description": "old untagged",
                "selection": {
                    "tagStatus": "untagged", "countType": "sinceImagePushed",
                    "countUnit": "days", "countNumber": 14
                },
                "action": { "type": "expire" }
            }),
            rule(7, tagged_prefix_age("beta", 30)),
            rule(99, any_count(100)),
        ]))
        .unwrap();

        let rules = policy.rules();
        assert_eq!(
            rules.iter().map(|r| r.priority).collect::<Vec<_>>(),
            [5, 7, 20, 99]
        );
        assert_eq!(
            rules[0],
            Rule {
                priority: 5,
                selection: Selection {
                    tag_status: TagStatus::Untagged,
                    tag_filter: None
                },
                limits: vec![Limit::SincePushedDays(14)],
            }
        );
        assert_eq!(
            rules[1].selection.tag_filter,
            Some(TagFilter::Prefixes(vec!["beta".to_string()]))
        );
        let patterns = ["prod*", "*-rc"].map(|p| TagPattern::new(p).unwrap());
        assert_eq!(
            rules[2].selection.tag_filter,
            Some(TagFilter::Patterns(patterns.to_vec()))
        );
        assert_eq!(rules[2].limits, [Limit::CountMoreThan(3)]);
        assert_eq!(rules[3].selection.tag_status, TagStatus::Any);
    }

    #[test]
    fn untagged_shorthand() {
        assert_eq!(Policy::untagged(None, None), None);
        let cases = [
            (Some(14), None, vec![Limit::SincePushedDays(14)]),
            (None, Some(5), vec![Limit::CountMoreThan(5)]),
            (
                Some(14),
                Some(5),
                vec![Limit::SincePushedDays(14), Limit::CountMoreThan(5)],
            ),
        ];
        for (age, count, limits) in cases {
            let policy = Policy::untagged(age, count).unwrap();
            let [rule] = policy.rules() else {
                panic!("expected one rule, got {policy:?}");
            };
            assert_eq!(rule.priority, 1);
            assert_eq!(
                rule.selection,
                Selection {
                    tag_status: TagStatus::Untagged,
                    tag_filter: None
                }
            );
            assert_eq!(rule.limits, limits);
        }
    }

    #[test]
    fn tag_patterns_treat_only_star_as_special() {
        // (pattern, tag, matches)
        let cases = [
            ("prod*", "prod", true),
            ("prod*", "prod-1", true),
            ("prod*", "preprod-1", false),
            ("*prod", "preprod", true),
            ("*prod", "prod-1", false),
            ("*-rc*", "v1-rc2", true),
            ("*", "anything.at-all_1", true),
            ("v1", "v1", true),
            ("v1", "v10", false),
            ("v1", "xv1", false),
            ("p*d-*", "prod-1", true),
            ("p*d-*", "prod", false),
            ("a**b", "ab", true),
            ("a**b", "axxb", true),
            ("*a*b*c*d", "xaxbxcxd", true),
            ("*a*b*c*d", "abdc", false),
            ("v1.0", "v1.0", true),
            ("v1.0", "v1x0", false),
            ("v?", "v?", true),
            ("v?", "v1", false),
            ("[ab]", "[ab]", true),
            ("[ab]", "a", false),
            ("{a,b}", "{a,b}", true),
            ("{a,b}", "a", false),
            ("a\\*", "a\\xyz", true),
            ("a\\*", "a*", false),
            ("a/*", "a/b/c", true),
            ("!x", "!x", true),
            ("PROD*", "prod-1", false),
        ];
        for (pattern, tag, expected) in cases {
            let compiled = TagPattern::new(pattern).unwrap();
            assert_eq!(compiled.matches(tag), expected, "{pattern:?} vs {tag:?}");
        }
    }

    /// What a pattern means, by its definition: `*` matches any run of characters, anything
    /// else only itself, over the whole tag.
    fn star_glob(pattern: &[u8], tag: &[u8]) -> bool {
        match pattern.split_first() {
            None => tag.is_empty(),
            Some((b'*', rest)) => (0..=tag.len()).any(|at| star_glob(rest, &tag[at..])),
            Some((c, rest)) => tag.first() == Some(c) && star_glob(rest, &tag[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn tag_patterns_match_as_defined(pattern in "[ab*]{1,7}", tag in "[ab]{0,9}") {
            proptest::prop_assume!(pattern.matches('*').count() <= MAX_WILDCARDS);
            let compiled = TagPattern::new(&pattern).unwrap();
            let defined = star_glob(pattern.as_bytes(), tag.as_bytes());
            proptest::prop_assert_eq!(compiled.matches(&tag), defined, "{} vs {}", pattern, tag);
        }
    }

    #[test]
    fn tag_patterns_accept_at_most_four_stars() {
        // ECR's own examples: the first two are valid, the last is not.
        for pattern in ["*test*1*2*3", "test*1*2*3*", "****"] {
            assert!(TagPattern::new(pattern).is_ok(), "{pattern}");
        }
        for pattern in ["test*1*2*3*4*5*6", "*****"] {
            let error = TagPattern::new(pattern).unwrap_err();
            assert!(error.contains("at most 4"), "{error}");
        }
    }

    #[test]
    fn selection_matching() {
        let prefixes = |list: &[&str]| Selection {
            tag_status: TagStatus::Tagged,
            tag_filter: Some(TagFilter::Prefixes(tags(list))),
        };
        let patterns = |list: &[&str]| Selection {
            tag_status: TagStatus::Tagged,
            tag_filter: Some(TagFilter::Patterns(
                list.iter().map(|p| TagPattern::new(p).unwrap()).collect(),
            )),
        };
        let status = |tag_status| Selection {
            tag_status,
            tag_filter: None,
        };
        // (selection, image tags, selected)
        let cases = [
            (status(TagStatus::Untagged), vec![], true),
            (status(TagStatus::Untagged), tags(&["v1"]), false),
            (status(TagStatus::Any), vec![], true),
            (status(TagStatus::Any), tags(&["v1"]), true),
            (status(TagStatus::Tagged), vec![], false),
            (status(TagStatus::Tagged), tags(&["v1"]), true),
            (prefixes(&["prod"]), tags(&["prod-1"]), true),
            (prefixes(&["prod"]), tags(&["beta-1", "prod-1"]), true),
            (prefixes(&["prod"]), tags(&["preprod"]), false),
            (prefixes(&["prod"]), vec![], false),
            // Every prefix must match some tag (AND), not necessarily the same tag.
            (
                prefixes(&["alpha", "beta"]),
                tags(&["alpha-1", "beta-1"]),
                true,
            ),
            (prefixes(&["alpha", "beta"]), tags(&["alpha-1"]), false),
            (prefixes(&["alpha", "beta"]), tags(&["alphabeta"]), false),
            (prefixes(&["alpha", "alp"]), tags(&["alpha-1"]), true),
            (patterns(&["prod*"]), tags(&["prod-1", "x"]), true),
            (patterns(&["prod*"]), tags(&["x"]), false),
            (
                patterns(&["alpha*", "beta*"]),
                tags(&["alpha-1", "beta-1"]),
                true,
            ),
            (patterns(&["alpha*", "beta*"]), tags(&["beta-1"]), false),
            (patterns(&["v1"]), tags(&["v1", "v10"]), true),
            (patterns(&["v1"]), tags(&["v10"]), false),
            (patterns(&["*"]), vec![], false),
        ];
        for (selection, image_tags, expected) in cases {
            assert_eq!(
                selection.matches(&image_tags),
                expected,
                "{selection:?} vs {image_tags:?}"
            );
        }
    }

    #[test]
    fn displays_use_ecr_vocabulary() {
        assert_eq!(TagStatus::Tagged.to_string(), "tagged");
        assert_eq!(TagStatus::Untagged.to_string(), "untagged");
        assert_eq!(TagStatus::Any.to_string(), "any");
    }

    #[test]
    fn rejects_documents_ecr_rejects() {
        let selection_with = |extra: Value| {
            let mut selection = untagged_count(1);
            if let (Some(selection), Some(extra)) = (selection.as_object_mut(), extra.as_object()) {
                for (key, value) in extra {
                    if value.is_null() {
                        selection.remove(key);
                    } else {
                        selection.insert(key.clone(), value.clone());
                    }
                }
            }
            doc(vec![rule(1, selection)])
        };
        let tagged_with = |lists: Value| {
            let mut selection = json!({
                "tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1
            });
            if let (Some(selection), Some(lists)) = (selection.as_object_mut(), lists.as_object()) {
                selection.extend(lists.clone());
            }
            doc(vec![rule(3, selection)])
        };
        let action = |action: Value| {
            doc(vec![json!({
                "rulePriority": 1, "selection": untagged_count(1), "action": action
            })])
        };

        // (what, document, fragments the message must contain)
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            (
                "too long",
                format!("{}{}", " ".repeat(30_720), doc(vec![rule(1, untagged_count(1))])),
                vec!["characters long", "at most 30720"],
            ),
            ("not JSON", "{rules: [".to_string(), vec!["ECR accepts a JSON object"]),
            ("not an object", "[]".to_string(), vec!["ECR accepts a JSON object"]),
            (
                "unknown top-level field",
                json!({ "rules": [rule(1, untagged_count(1))], "version": 1 }).to_string(),
                vec!["unknown field `version`", "`rules`"],
            ),
            ("rules missing", "{}".to_string(), vec!["`rules` is missing"]),
            ("rules null", r#"{"rules": null}"#.to_string(), vec!["`rules` is missing"]),
            ("rules empty", doc(vec![]), vec!["`rules` is empty", "1 to 50"]),
            (
                "too many rules",
                doc((1..=51).map(|p| rule(p, tagged_prefix_age(&format!("t{p}-"), 1))).collect()),
                vec!["51 entries", "at most 50"],
            ),
            (
                "rule not an object",
                doc(vec![json!("expire everything")]),
                vec!["rules[0]: ", "a lifecycle policy rule object"],
            ),
            (
                "unknown rule field",
                doc(vec![json!({
                    "rulePriority": 1, "selection": untagged_count(1),
                    "action": { "type": "expire" }, "enabled": true
                })]),
                vec!["rule 1: unknown field `enabled`", "`rulePriority`"],
            ),
            (
                "rulePriority missing",
                doc(vec![
                    rule(1, tagged_prefix_age("v", 1)),
                    json!({ "selection": untagged_count(1), "action": { "type": "expire" } }),
                ]),
                vec!["rules[1]: rulePriority is missing", "integer of at least 1"],
            ),
            (
                "rulePriority zero",
                doc(vec![rule(0, untagged_count(1))]),
                vec!["rules[0]: rulePriority 0 is not valid", "integer of at least 1"],
            ),
            (
                "rulePriority negative",
                doc(vec![json!({
                    "rulePriority": -1, "selection": untagged_count(1), "action": { "type": "expire" }
                })]),
                vec!["rules[0]: rulePriority -1 is not valid"],
            ),
            (
                "rulePriority string",
                doc(vec![json!({
                    "rulePriority": "1", "selection": untagged_count(1), "action": { "type": "expire" }
                })]),
                vec!["rules[0]: rulePriority \"1\" is not valid"],
            ),
            (
                "rulePriority fraction",
                doc(vec![json!({
                    "rulePriority": 1.5, "selection": untagged_count(1), "action": { "type": "expire" }
                })]),
                vec!["rules[0]: rulePriority 1.5 is not valid"],
            ),
            (
                "rulePriority duplicated",
                doc(vec![
                    rule(2, tagged_prefix_age("a", 1)),
                    rule(2, tagged_prefix_age("b", 1)),
                ]),
                vec!["rulePriority 2 is used by rules[0] and rules[1]", "unique"],
            ),
            (
                "selection missing",
                doc(vec![json!({ "rulePriority": 4, "action": { "type": "expire" } })]),
                vec!["rule 4: selection is missing"],
            ),
            (
                "selection unknown field",
                selection_with(json!({ "tagPrefix": "x" })),
                vec!["rule 1: selection: unknown field `tagPrefix`", "`tagPrefixList`"],
            ),
            (
                "tagStatus missing",
                selection_with(json!({ "tagStatus": null })),
                vec!["rule 1: selection.tagStatus is missing", "tagged, untagged or any"],
            ),
            (
                "tagStatus invalid",
                selection_with(json!({ "tagStatus": "Untagged" })),
                vec!["rule 1: selection.tagStatus \"Untagged\" is not valid", "tagged, untagged or any"],
            ),
            (
                "tagged without a list",
                tagged_with(json!({})),
                vec!["rule 3: selection.tagStatus tagged requires a non-empty tagPrefixList or tagPatternList"],
            ),
            (
                "tagged with both lists",
                tagged_with(json!({ "tagPrefixList": ["a"], "tagPatternList": ["a*"] })),
                vec!["rule 3: selection has both tagPrefixList and tagPatternList", "only one"],
            ),
            (
                "empty tagPrefixList",
                tagged_with(json!({ "tagPrefixList": [] })),
                vec!["rule 3: selection.tagPrefixList is empty"],
            ),
            (
                "empty tagPatternList",
                tagged_with(json!({ "tagPatternList": [] })),
                vec!["rule 3: selection.tagPatternList is empty"],
            ),
            (
                "empty prefix",
                tagged_with(json!({ "tagPrefixList": ["prod", ""] })),
                vec!["rule 3: selection.tagPrefixList contains an empty string"],
            ),
            (
                "empty pattern",
                tagged_with(json!({ "tagPatternList": ["", "prod*"] })),
                vec!["rule 3: selection.tagPatternList contains an empty string"],
            ),
            (
                "too many wildcards",
                tagged_with(json!({ "tagPatternList": ["test*1*2*3*4*5*6"] })),
                vec!["rule 3: selection.tagPatternList entry \"test*1*2*3*4*5*6\" has 6", "at most 4"],
            ),
            (
                "untagged with a prefix list",
                selection_with(json!({ "tagPrefixList": ["v"] })),
                vec!["rule 1: selection.tagStatus untagged must not have a tagPrefixList or tagPatternList"],
            ),
            (
                "untagged with an empty pattern list",
                selection_with(json!({ "tagPatternList": [] })),
                vec!["rule 1: selection.tagStatus untagged must not have"],
            ),
            (
                "any with a pattern list",
                doc(vec![rule(1, json!({
                    "tagStatus": "any", "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan", "countNumber": 1
                }))]),
                vec!["rule 1: selection.tagStatus any must not have"],
            ),
            (
                "storageClass",
                selection_with(json!({ "storageClass": "standard" })),
                vec!["rule 1: selection.storageClass is not supported by ecr-janitor"],
            ),
            (
                "countType missing",
                selection_with(json!({ "countType": null })),
                vec!["rule 1: selection.countType is missing", "imageCountMoreThan or sinceImagePushed"],
            ),
            (
                "countType invalid",
                selection_with(json!({ "countType": "imageCountLessThan" })),
                vec!["rule 1: selection.countType \"imageCountLessThan\" is not valid"],
            ),
            (
                "countType sinceImagePulled",
                selection_with(json!({
                    "countType": "sinceImagePulled", "countUnit": "days", "countNumber": 90
                })),
                vec!["rule 1: selection.countType sinceImagePulled is not supported by ecr-janitor"],
            ),
            (
                "countType sinceImageTransitioned",
                selection_with(json!({
                    "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 90
                })),
                vec!["rule 1: selection.countType sinceImageTransitioned is not supported by ecr-janitor"],
            ),
            (
                "countUnit with imageCountMoreThan",
                selection_with(json!({ "countUnit": "days" })),
                vec!["rule 1: selection.countUnit \"days\" must be omitted with countType imageCountMoreThan"],
            ),
            (
                "countUnit missing for sinceImagePushed",
                selection_with(json!({ "countType": "sinceImagePushed" })),
                vec!["rule 1: selection.countUnit is missing", "days"],
            ),
            (
                "countUnit not days",
                selection_with(json!({ "countType": "sinceImagePushed", "countUnit": "hours" })),
                vec!["rule 1: selection.countUnit \"hours\" is not valid", "only days"],
            ),
            (
                "countNumber missing",
                selection_with(json!({ "countNumber": null })),
                vec!["rule 1: selection.countNumber is missing", "positive integer"],
            ),
            (
                "countNumber zero",
                selection_with(json!({ "countNumber": 0 })),
                vec!["rule 1: selection.countNumber 0 is not valid", "positive integer"],
            ),
            (
                "countNumber string",
                selection_with(json!({ "countNumber": "5" })),
                vec!["rule 1: selection.countNumber \"5\" is not valid"],
            ),
            (
                "countNumber too large",
                selection_with(json!({ "countNumber": 4_294_967_296_u64 })),
                vec!["rule 1: selection.countNumber 4294967296 is not valid"],
            ),
            (
                "action missing",
                doc(vec![json!({ "rulePriority": 1, "selection": untagged_count(1) })]),
                vec!["rule 1: action is missing", "expire"],
            ),
            (
                "action type missing",
                action(json!({})),
                vec!["rule 1: action.type is missing", "only expire"],
            ),
            (
                "action transition",
                action(json!({ "type": "transition" })),
                vec!["rule 1: action.type transition is not supported by ecr-janitor"],
            ),
            (
                "action type invalid",
                action(json!({ "type": "delete" })),
                vec!["rule 1: action.type \"delete\" is not valid", "only expire"],
            ),
            (
                "targetStorageClass",
                action(json!({ "type": "expire", "targetStorageClass": "archive" })),
                vec!["rule 1: action.targetStorageClass is not supported by ecr-janitor"],
            ),
            (
                "action unknown field",
                action(json!({ "type": "expire", "when": "now" })),
                vec!["rule 1: action: unknown field `when`"],
            ),
            (
                "two untagged rules",
                doc(vec![rule(1, untagged_count(1)), rule(3, untagged_count(5))]),
                vec!["rule 1, rule 3 all have tagStatus untagged", "only one rule to select untagged"],
            ),
            (
                "two any rules",
                doc(vec![rule(1, any_count(1)), rule(3, any_count(5))]),
                vec!["rule 1, rule 3 all have tagStatus any", "only one"],
            ),
            (
                "any rule not last",
                doc(vec![rule(1, any_count(1)), rule(2, untagged_count(5))]),
                vec!["rule 1: tagStatus any requires the highest rulePriority", "2 is higher"],
            ),
            (
                "any rule not last, the later rule being invalid",
                doc(vec![rule(1, any_count(1)), rule(2, json!({ "tagStatus": "tagged" }))]),
                vec!["rule 1: tagStatus any requires the highest rulePriority"],
            ),
        ];
        for (what, text, fragments) in cases {
            let error = error_of(&text);
            for fragment in fragments {
                assert!(
                    error.contains(fragment),
                    "{what}: {error:?} should contain {fragment:?}"
                );
            }
        }
    }

    #[test]
    fn document_length_counts_characters_not_bytes() {
        let description = "é".repeat(30_000);
        let text = doc(vec![json!({
            "rulePriority": 1, "description": description,
            "selection": untagged_count(1), "action": { "type": "expire" }
        })]);
        assert!(text.len() > 30_720 && text.chars().count() <= 30_720);
        assert!(Policy::from_json(&text).is_ok());
    }

    #[test]
    fn reports_every_problem_in_the_document_at_once() {
        let text = doc(vec![
            json!({
                "rulePriority": 1,
                "selection": { "tagStatus": "tagged", "countType": "sinceImagePulled", "countNumber": 0 },
                "action": { "type": "transition", "targetStorageClass": "archive" }
            }),
            json!({ "selection": untagged_count(1), "action": { "type": "expire" } }),
            rule(3, untagged_count(1)),
        ]);
        let Err(PolicyError::Rules(problems)) = Policy::from_json(&text) else {
            panic!("expected rule problems");
        };
        assert_eq!(
            problems,
            [
                "rule 1: selection.tagStatus tagged requires a non-empty tagPrefixList or tagPatternList",
                "rule 1: selection.countNumber 0 is not valid; ECR accepts a positive integer (0 is not allowed)",
                "rule 1: selection.countType sinceImagePulled is not supported by ecr-janitor; it accepts imageCountMoreThan or sinceImagePushed",
                "rule 1: action.type transition is not supported by ecr-janitor, which only expires images; use expire",
                "rule 1: action.targetStorageClass is not supported by ecr-janitor, which only expires images; remove it",
                "rules[1]: rulePriority is missing; ECR requires a unique integer of at least 1",
            ]
        );
    }

    #[test]
    fn duplicate_priorities_name_rules_by_index_too() {
        let text = doc(vec![
            rule(2, tagged_prefix_age("a", 1)),
            rule(
                2,
                json!({ "tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1 }),
            ),
        ]);
        let error = error_of(&text);
        assert!(
            error.contains("rule 2 (rules[1]): selection.tagStatus tagged requires"),
            "{error}"
        );
    }

    #[test]
    fn rejects_the_archive_examples_from_the_ecr_docs() {
        let pulled = doc(vec![json!({
            "rulePriority": 1,
            "description": "Archive images not pulled in 90 days",
            "selection": {
                "tagStatus": "any", "countType": "sinceImagePulled",
                "countUnit": "days", "countNumber": 90
            },
            "action": { "type": "transition", "targetStorageClass": "archive" }
        })]);
        let transitioned = doc(vec![json!({
            "rulePriority": 1,
            "description": "Expire images archived for more than 365 days",
            "selection": {
                "tagStatus": "any", "storageClass": "archive",
                "countType": "sinceImageTransitioned", "countUnit": "days", "countNumber": 365
            },
            "action": { "type": "expire" }
        })]);
        for text in [pulled, transitioned] {
            let error = error_of(&text);
            assert!(error.contains("not supported by ecr-janitor"), "{error}");
        }
    }
}
