//! Fuzzing rsslab's two parsers of untrusted input, and the properties they must keep.
//!
//! - Scenario files ([`scenario`]): `parse_scenario` on any text either yields a scenario that
//!   plans, or diagnostics that each name the file, a line and column inside it, a problem and
//!   a fix. [`mutate`] turns fuzzer bytes into near-valid scenarios: the built-in ones with
//!   lines deleted, duplicated or cut, values replaced by values of other types or absurd
//!   sizes, keys renamed, tables and expectations added.
//! - The guest channel ([`channel`]): `Collector::line` on any lines (messages, messages cut
//!   mid-way, garbage, huge numbers, deep JSON) never panics, records a protocol error for
//!   every line that is not a message, and stays usable.
//!
//! The same checks run twice: as property tests in the normal test suite (`tests/`, a second or
//! so each, with arbtest) and as libFuzzer targets for long runs (`fuzz_targets/`, README,
//! "Fuzzing"). A check that fails panics with what broke.

pub mod channel;
pub mod mutate;
pub mod scenario;
