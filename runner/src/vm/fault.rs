//! The fault hook, a testing aid: `RSSLAB_FAULT` makes chosen runs' guests fail on purpose, so
//! the fault tests (`runner/tests/faults.rs`) can check what a lab does with a real kernel
//! panic, a crashed agent, a broken channel or a hung guest.
//!
//! `RSSLAB_FAULT="[<run>:]<kind>@<time>[;...]"`: `<run>` is a run id (its directory without
//! `runs/`, `<scenario>/<kernel>[/<variant>]`); without one the fault hits every run. `<kind>`
//! is one of [`FaultKind`] (`panic`, `agent-crash`, `garbage`, `cut`, `hang`), `<time>` a
//! duration after the run started (`1s`, `500ms`). The runner appends `rsslab.fault=<kind>@<ms>`
//! to that run's kernel command line (every boot of it) and says so in the run's record; the
//! agent does the rest ([`rsslab_wire::fault`]). A malformed value is bad input.

use std::str::FromStr;

use rsslab_wire::Millis;
use rsslab_wire::fault::{Fault, FaultKind};

/// The environment variable.
pub const FAULT_ENV: &str = "RSSLAB_FAULT";

/// The faults asked for, in order; the first whose run matches applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    entries: Vec<(Option<String>, Fault)>,
}

/// `RSSLAB_FAULT` does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{FAULT_ENV}={value:?}: {why} (write [<run>:]<kind>@<time>, e.g. \"demo/6.1:panic@2s\")")]
pub struct FaultError {
    value: String,
    why: String,
}

impl Faults {
    /// The faults `RSSLAB_FAULT` asks for (none when it is unset or empty).
    pub fn from_env() -> Result<Faults, FaultError> {
        match std::env::var(FAULT_ENV) {
            Ok(value) => Faults::parse(&value),
            Err(_) => Ok(Faults::default()),
        }
    }

    /// Parses a value of `RSSLAB_FAULT`.
    pub fn parse(value: &str) -> Result<Faults, FaultError> {
        let error = |why: String| FaultError {
            value: value.to_owned(),
            why,
        };
        let mut entries = Vec::new();
        for entry in value.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (run, fault) = match entry.rsplit_once(':') {
                Some((run, fault)) => (Some(run.trim().to_owned()), fault.trim()),
                None => (None, entry),
            };
            let (kind, at) = fault
                .split_once('@')
                .ok_or_else(|| error(format!("`{fault}` has no @<time>")))?;
            let kind = FaultKind::from_name(kind).ok_or_else(|| {
                let known: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                error(format!(
                    "unknown fault `{kind}` (known: {})",
                    known.join(", ")
                ))
            })?;
            let at = Millis::from_str(at).map_err(|why| error(why.to_string()))?;
            entries.push((run, Fault { kind, at }));
        }
        Ok(Faults { entries })
    }

    /// The fault for the run `run_id` (`<scenario>/<kernel>[/<variant>]`), if any.
    pub fn for_run(&self, run_id: &str) -> Option<Fault> {
        self.entries
            .iter()
            .find(|(run, _)| run.as_deref().is_none_or(|run| run == run_id))
            .map(|(_, fault)| *fault)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_pick_their_runs() {
        let faults = Faults::parse("demo/6.1/case=a:panic@2s; demo/6.1/case=b:hang@500ms").unwrap();
        assert_eq!(
            faults.for_run("demo/6.1/case=a"),
            Some(Fault {
                kind: FaultKind::Panic,
                at: Millis(2000)
            })
        );
        assert_eq!(
            faults.for_run("demo/6.1/case=b").map(|f| f.kind),
            Some(FaultKind::Hang)
        );
        assert_eq!(faults.for_run("demo/6.1/case=c"), None);
        let everywhere = Faults::parse("garbage@1s").unwrap();
        assert_eq!(
            everywhere.for_run("any/5.10").map(|f| f.kind),
            Some(FaultKind::Garbage)
        );
        assert!(Faults::parse("").unwrap().is_empty());
    }

    #[test]
    fn a_malformed_value_says_what_to_write() {
        for (value, says) in [
            ("melt@1s", "unknown fault `melt`"),
            ("panic", "has no @<time>"),
            ("demo/6.1:panic@soon", "`soon`"),
        ] {
            let message = Faults::parse(value).unwrap_err().to_string();
            assert!(
                message.contains(says) && message.contains("RSSLAB_FAULT"),
                "{message}"
            );
        }
    }
}
