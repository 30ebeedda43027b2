//! A cursor over environment variables that reads typed values and collects every problem,
//! so that one error names every bad variable.

use super::Problem;

/// Reads variables through a lookup; records a [`Problem`] for each bad one and carries on
/// with a fallback, so later variables are still checked.
pub(super) struct Env<L> {
    lookup: L,
    problems: Vec<Problem>,
}

impl<L: Fn(&str) -> Option<String>> Env<L> {
    pub(super) fn new(lookup: L) -> Self {
        Self {
            lookup,
            problems: Vec::new(),
        }
    }

    /// The variable's trimmed text; empty counts as unset (SAM passes empty parameters).
    pub(super) fn text(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Records a problem with `variable`.
    pub(super) fn problem(&mut self, variable: &'static str, message: impl Into<String>) {
        self.problems.push(Problem {
            variable,
            message: message.into(),
        });
    }

    /// `parse(text)` when the variable is set, `default` when unset, and `fallback` (with a
    /// problem recorded) when `parse` refuses it.
    pub(super) fn parse<T>(
        &mut self,
        variable: &'static str,
        default: T,
        fallback: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.text(variable) {
            None => default,
            Some(text) => parse(&text).unwrap_or_else(|message| {
                self.problem(variable, message);
                fallback
            }),
        }
    }

    /// A `true`/`false` variable.
    pub(super) fn bool(&mut self, variable: &'static str, default: bool) -> bool {
        self.parse(variable, default, default, |v| {
            crate::decide::scope::parse_bool(v)
                .ok_or_else(|| format!("{v:?} is not accepted; expected true or false"))
        })
    }

    /// Whether a problem has been recorded for `variable`.
    pub(super) fn has_problem(&self, variable: &str) -> bool {
        self.problems.iter().any(|p| p.variable == variable)
    }

    /// Every problem recorded, in the order found.
    pub(super) fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}
