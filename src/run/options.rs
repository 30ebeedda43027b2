//! What one invocation asks for on top of the configuration, and the one rule that governs
//! it: overrides can only make a run safer.
//!
//! An invocation may carry overrides, as a plain JSON object or in an EventBridge event's
//! `detail`: `{"dryRun": true, "repositories": ["a", "b/c"]}`. [`RunOptions`] can only be
//! built through [`RunOptions::resolve`], which refuses anything less safe than the
//! configuration before any AWS call.

use std::collections::BTreeSet;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::decide::scope::Shard;

/// The most shards one sweep may be split into.
pub const MAX_SHARDS: u32 = 1000;

/// The overrides an invocation may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overrides {
    /// `true` forces a dry run; `false` cannot turn a configured dry run off.
    dry_run: Option<bool>,
    /// Sweep only these repositories.
    repositories: Option<Vec<String>>,
    /// Sweep only the repositories of this shard (Step Functions runs one invocation each).
    shard: Option<Shard>,
    /// Answer with the totals alone (a Step Functions state holds at most 256 KB); the logs,
    /// the event and the metrics are unchanged.
    totals_only: Option<bool>,
}

/// An invocation payload the janitor will not act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid invocation input, nothing was done: {0}")]
pub struct InputError(pub String);

impl Overrides {
    /// Reads overrides from a payload: null, a plain object, or an EventBridge event
    /// (recognised by its `detail-type`) whose `detail` holds them.
    pub fn from_event(payload: &Value) -> Result<Self, InputError> {
        match payload {
            Value::Null => Ok(Self::default()),
            Value::Object(map) if map.contains_key("detail-type") => {
                let mut event = payload.clone();
                // EventBridge Scheduler's default notification may carry `detail` as JSON text.
                if let Some(Value::String(text)) = event.get("detail") {
                    let detail = serde_json::from_str(text)
                        .map_err(|e| InputError(format!("EventBridge event detail: {e}")))?;
                    event["detail"] = detail;
                }
                serde_json::from_value::<EventBridgeEvent<Option<Overrides>>>(event)
                    .map(|event| event.detail.unwrap_or_default())
                    .map_err(|e| InputError(format!("EventBridge event: {e}")))
            }
            Value::Object(_) => {
                serde_json::from_value(payload.clone()).map_err(|e| InputError(e.to_string()))
            }
            other => Err(InputError(format!(
                "expected a JSON object (overrides or an EventBridge event), got {other}"
            ))),
        }
    }

    /// The same overrides with a dry run forced on (the CLI's `--dry-run`).
    pub fn with_dry_run(self) -> Self {
        Self {
            dry_run: Some(true),
            ..self
        }
    }
}

/// A run's options, resolved against the configuration. Private fields: the only way to get
/// one is [`RunOptions::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    dry_run: bool,
    repositories: Option<BTreeSet<String>>,
    shard: Option<Shard>,
    totals_only: bool,
    safety_stop: Option<String>,
}

impl RunOptions {
    /// Applies `overrides` to the configured `DRY_RUN`, refusing any that would make the run
    /// less safe than configured.
    pub fn resolve(configured_dry_run: bool, overrides: Overrides) -> Result<Self, InputError> {
        if overrides.dry_run == Some(false) && configured_dry_run {
            return Err(InputError(
                "dryRun: false cannot turn off DRY_RUN=true; overrides can only make a run \
                 safer (change the DRY_RUN variable instead)"
                    .into(),
            ));
        }
        let repositories = match overrides.repositories {
            None => None,
            Some(names) if names.is_empty() => {
                return Err(InputError(
                    "repositories is empty; name at least one repository or leave it out".into(),
                ))
            }
            Some(names) if names.iter().any(|n| n.trim().is_empty()) => {
                return Err(InputError("repositories has an empty name".into()))
            }
            Some(names) => Some(names.into_iter().collect()),
        };
        if let Some(shard) = overrides.shard {
            if shard.count == 0 || shard.count > MAX_SHARDS || shard.index >= shard.count {
                return Err(InputError(format!(
                    "shard {{\"index\": {}, \"count\": {}}} is not accepted; expected \
                     0 ≤ index < count ≤ {MAX_SHARDS}",
                    shard.index, shard.count
                )));
            }
        }
        Ok(Self {
            dry_run: configured_dry_run || overrides.dry_run == Some(true),
            repositories,
            shard: overrides.shard,
            totals_only: overrides.totals_only == Some(true),
            safety_stop: None,
        })
    }

    /// Stops this run from deleting anything, for a reason the report gives (the in-use
    /// lookup failed). Like an override, it can only make the run safer.
    pub fn stop_deleting(&mut self, why: String) {
        self.safety_stop.get_or_insert(why);
    }

    /// Whether this run deletes anything: the one place that decides it.
    pub fn deletes(&self) -> bool {
        !self.dry_run && self.safety_stop.is_none()
    }

    /// Whether this is a dry run (configured or asked for), as the report says.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    /// Why a run that is not a dry run deletes nothing, if it does not.
    pub fn safety_stop(&self) -> Option<&str> {
        self.safety_stop.as_deref()
    }

    /// The repositories an invocation narrowed the run to, if it did.
    pub fn repositories(&self) -> Option<&BTreeSet<String>> {
        self.repositories.as_ref()
    }

    /// The shard an invocation narrowed the run to, if it did.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// Whether the invocation asked for the totals alone in its response.
    pub fn totals_only(&self) -> bool {
        self.totals_only
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resolve(payload: &Value, configured_dry_run: bool) -> Result<RunOptions, InputError> {
        Overrides::from_event(payload).and_then(|o| RunOptions::resolve(configured_dry_run, o))
    }

    fn names(list: &[&str]) -> Option<BTreeSet<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    const SCHEDULED: &str = include_str!("../../events/scheduled.json");

    #[test]
    fn payloads_that_are_accepted() {
        let scheduled: Value = serde_json::from_str(SCHEDULED).expect("events/scheduled.json");
        let mut in_detail = scheduled.clone();
        in_detail["detail"] = json!({"dryRun": true, "repositories": ["a", "b/c"]});
        let mut as_text = scheduled.clone();
        as_text["detail"] = json!("{}");
        let cases = [
            (Value::Null, false, None),
            (json!({}), false, None),
            (scheduled, false, None),
            (json!({"dryRun": true}), true, None),
            (json!({"dryRun": false}), false, None),
            (
                json!({"repositories": ["b/c", "a"]}),
                false,
                names(&["a", "b/c"]),
            ),
            (in_detail, true, names(&["a", "b/c"])),
            (as_text, false, None),
        ];
        for (payload, dry_run, repositories) in cases {
            let options = resolve(&payload, false).unwrap_or_else(|e| panic!("{payload}: {e}"));
            assert_eq!(
                (options.deletes(), options.repositories().cloned()),
                (!dry_run, repositories),
                "{payload}"
            );
        }
    }

    #[test]
    fn payloads_that_are_refused_say_why() {
        let scheduled: Value = serde_json::from_str(SCHEDULED).expect("events/scheduled.json");
        let mut unknown_in_detail = scheduled.clone();
        unknown_in_detail["detail"] = json!({"force": true});
        let mut bad_text = scheduled.clone();
        bad_text["detail"] = json!("{not json");
        let cases = [
            (json!({"dryrun": true}), false, "unknown field `dryrun`"),
            (json!({"dryRun": "yes"}), false, "invalid type"),
            (json!({"repositories": "a"}), false, "invalid type"),
            (json!({"repositories": []}), false, "repositories is empty"),
            (json!({"repositories": [""]}), false, "an empty name"),
            (json!(["a"]), false, "expected a JSON object"),
            (json!("run"), false, "expected a JSON object"),
            (unknown_in_detail, false, "unknown field `force`"),
            (
                bad_text,
                false,
                "EventBridge event detail: key must be a string",
            ),
            (
                json!({"dryRun": false}),
                true,
                "cannot turn off DRY_RUN=true",
            ),
        ];
        for (payload, configured_dry_run, why) in cases {
            match resolve(&payload, configured_dry_run) {
                Ok(options) => panic!("{payload} should be refused, got {options:?}"),
                Err(e) => assert!(e.to_string().contains(why), "{payload}: {e}"),
            }
        }
    }

    #[test]
    fn a_configured_dry_run_stays_on_and_the_cli_flag_forces_one() {
        let narrow = Overrides::from_event(&json!({"repositories": ["a"]})).expect("valid");
        let options = RunOptions::resolve(true, narrow.clone()).expect("valid");
        assert!(!options.deletes());
        let forced = RunOptions::resolve(false, narrow.with_dry_run()).expect("valid");
        assert!(!forced.deletes());
        assert_eq!(forced.repositories(), names(&["a"]).as_ref());
    }

    #[test]
    fn a_shard_narrows_the_run() {
        let payload = json!({"shard": {"index": 2, "count": 5}, "totalsOnly": true});
        let options = resolve(&payload, false).expect("valid");
        assert_eq!(options.shard(), Some(Shard { index: 2, count: 5 }));
        assert!(options.deletes() && options.totals_only());
        assert!(!resolve(&json!({}), false).expect("valid").totals_only());
    }

    #[test]
    fn a_safety_stop_turns_deletion_off_and_is_kept() {
        let mut options = RunOptions::resolve(false, Overrides::default()).expect("valid");
        assert!(options.deletes());
        options.stop_deleting("ECS lookup failed".into());
        options.stop_deleting("second reason".into());
        assert!(!options.deletes() && !options.dry_run());
        assert_eq!(options.safety_stop(), Some("ECS lookup failed"));
    }
}
