//! Analysis: the raw records of a lab turned into verdicts, with no file but their own written
//! and nothing drawn.
//!
//! - [`expectations`]: each run's `[[expect]]` evaluated on its samples and events;
//! - [`account`]: the kernel's account (pressure, reclaim, `memory.events`) as increases and
//!   rates derived from its cumulative counters;
//! - [`findings`]: what differs between a scenario's variants and kernels, by how much, and
//!   whether an expectation says so (the report's and summary's first section);
//! - [`kubelet`]: whose each value the kubelet's rules wrote is (node, QoS level, pod, container);
//! - [`pods`]: a run's pods as results.json lists them (QoS, the kubelet's values, peaks);
//! - [`results`]: `results.json`, one summary per run (outcomes, peaks, evaluated
//!   expectations), the contract CI jobs and scripts read;
//! - [`diff`]: a lab against a baseline (outcomes, expectations that flipped, key numbers that
//!   moved beyond run-to-run noise, by [`diff::stats`]), giving a [`comparison::Comparison`]
//!   kept in `comparison.json`;
//! - [`kernel_diff`]: what changed between two kernel packages (config options, changelog
//!   entries), for the end of a bisect.
//!
//! Entries: [`results::build_results`] and [`diff::compare`].

pub mod account;
pub mod comparison;
pub mod diff;
pub mod expectations;
pub mod findings;
pub mod kernel_diff;
pub mod kubelet;
pub mod pods;
pub mod results;
