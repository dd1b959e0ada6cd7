//! The kernel's facts as the guest probed them, checked against the ones the run relied on
//! (written in the catalogue, or derived from the kernel's config).
//!
//! The guest's hello reads the kernel's boot defaults before the run's set-up ([`Hello`]'s
//! `features`): `madv_free` (an `madvise(MADV_FREE)` on a written anonymous page),
//! `cgroup_v1_memory` (a mount of the v1 memory controller), `mglru` (the value of
//! `/sys/kernel/mm/lru_gen/enabled`, or `absent`). [`probed_facts`] reads the facts from them,
//! [`fact_mismatches`] says where they differ from the written ones, and
//! [`record_fact_mismatches`] does both for a record, for its `fact_mismatches`.
//!
//! `overcommit_heuristic_total_only` is not probed: telling the two heuristics apart takes an
//! allocation between free and total memory, too fragile to make in every hello.

use std::collections::BTreeMap;
use std::fmt;

use rsslab_wire::Hello;
use serde::{Deserialize, Serialize};

use crate::catalogue::KernelFacts;
use crate::records::RunRecord;

/// The facts the guest could tell; `None` where it could not (`unknown`, or an agent that
/// does not report the feature).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbedFacts {
    /// `madvise(MADV_FREE)` returned 0 (false: EINVAL).
    pub madv_free: Option<bool>,
    /// The cgroup v1 memory controller mounted.
    pub cgroup_v1_memory: Option<bool>,
    /// `/sys/kernel/mm/lru_gen/enabled` exists.
    pub mglru: Option<bool>,
    /// ... and its main switch (bit 0) was on at boot.
    pub mglru_default: Option<bool>,
    /// What the guest read from `lru_gen/enabled` (`0x0007`, `absent`), for the details.
    pub lru_gen_enabled: Option<String>,
}

/// A fact the run relied on that the guest found otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactMismatch {
    /// The fact, as [`KernelFacts`] names it (`mglru_default`).
    pub fact: String,
    /// What the catalogue (or the kernel's config) says.
    pub written: bool,
    /// What the guest found.
    pub probed: bool,
    /// What the guest read, in words (`the guest read lru_gen/enabled = 0x0007`).
    pub detail: String,
}

impl fmt::Display for FactMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "catalogue says {} = {}, {}",
            self.fact, self.written, self.detail
        )
    }
}

fn yes_no(value: Option<&String>) -> Option<bool> {
    match value.map(String::as_str) {
        Some("yes") => Some(true),
        Some("no") => Some(false),
        _ => None,
    }
}

/// The value of `lru_gen/enabled`: a bit mask the kernel prints in hex (`0x0007`); `y`/`n`
/// and decimal are read too.
fn lru_gen_caps(text: &str) -> Option<u32> {
    let text = text.trim();
    match text {
        "y" | "Y" => return Some(1),
        "n" | "N" => return Some(0),
        _ => {}
    }
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The facts in a hello's `features`.
pub fn probed_facts(features: &BTreeMap<String, String>) -> ProbedFacts {
    let lru_gen = features.get("mglru").map(|value| value.trim().to_owned());
    let (mglru, mglru_default) = match lru_gen.as_deref() {
        None | Some("unknown") => (None, None),
        Some("absent") => (Some(false), Some(false)),
        Some(value) => (Some(true), lru_gen_caps(value).map(|caps| caps & 1 != 0)),
    };
    ProbedFacts {
        madv_free: yes_no(features.get("madv_free")),
        cgroup_v1_memory: yes_no(features.get("cgroup_v1_memory")),
        mglru,
        mglru_default,
        lru_gen_enabled: lru_gen.filter(|value| value != "unknown"),
    }
}

/// Every fact of `written` that the guest found otherwise, in [`KernelFacts`] order.
pub fn fact_mismatches(written: &KernelFacts, probed: &ProbedFacts) -> Vec<FactMismatch> {
    let lru_gen = match probed.lru_gen_enabled.as_deref() {
        Some("absent") | None => "the guest found no /sys/kernel/mm/lru_gen/enabled".to_owned(),
        Some(value) => format!("the guest read lru_gen/enabled = {value}"),
    };
    let madv_free = |probed: bool| {
        if probed {
            "the guest's madvise(MADV_FREE) returned 0".to_owned()
        } else {
            "the guest's madvise(MADV_FREE) failed with EINVAL".to_owned()
        }
    };
    let v1_memory = |probed: bool| {
        if probed {
            "the guest mounted the cgroup v1 memory controller".to_owned()
        } else {
            "the guest could not mount the cgroup v1 memory controller".to_owned()
        }
    };
    let checks = [
        (
            "madv_free",
            written.madv_free,
            probed.madv_free,
            madv_free(probed.madv_free == Some(true)),
        ),
        (
            "cgroup_v1_memory",
            written.cgroup_v1_memory,
            probed.cgroup_v1_memory,
            v1_memory(probed.cgroup_v1_memory == Some(true)),
        ),
        ("mglru", written.mglru, probed.mglru, lru_gen.clone()),
        (
            "mglru_default",
            written.mglru_default,
            probed.mglru_default,
            lru_gen,
        ),
    ];
    checks
        .into_iter()
        .filter_map(|(fact, written, probed, detail)| {
            let probed = probed?;
            (probed != written).then(|| FactMismatch {
                fact: fact.to_owned(),
                written,
                probed,
                detail,
            })
        })
        .collect()
}

/// The mismatches of a run: its hello's probes against its `kernel_facts`; none without
/// either (a guest that never said hello, a kernel whose facts nothing wrote).
pub fn hello_fact_mismatches(
    hello: Option<&Hello>,
    facts: Option<&KernelFacts>,
) -> Vec<FactMismatch> {
    match (hello, facts) {
        (Some(hello), Some(facts)) => fact_mismatches(facts, &probed_facts(&hello.features)),
        _ => Vec::new(),
    }
}

/// [`hello_fact_mismatches`] of a record, for its `fact_mismatches` (filled once the channel
/// is collected).
pub fn record_fact_mismatches(record: &RunRecord) -> Vec<FactMismatch> {
    hello_fact_mismatches(record.hello.as_ref(), record.kernel_facts.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    const TRIXIE: KernelFacts = KernelFacts {
        madv_free: true,
        cgroup_v1_memory: false,
        mglru: true,
        mglru_default: true,
        overcommit_heuristic_total_only: true,
    };

    #[test]
    fn reads_lru_gen_values() {
        assert_eq!(lru_gen_caps("0x0007\n"), Some(7));
        assert_eq!(lru_gen_caps("0x0000"), Some(0));
        assert_eq!(lru_gen_caps("0x0003"), Some(3));
        assert_eq!(lru_gen_caps("y"), Some(1));
        assert_eq!(lru_gen_caps("5"), Some(5));
        assert_eq!(lru_gen_caps("on"), None);
    }

    #[test]
    fn probed_facts_from_a_trixie_hello() {
        let probed = probed_facts(&features(&[
            ("cgroup_v1_memory", "no"),
            ("madv_free", "yes"),
            ("mglru", "0x0007"),
            ("thp", "always"),
            ("thp_defrag", "madvise"),
        ]));
        assert_eq!(
            probed,
            ProbedFacts {
                madv_free: Some(true),
                cgroup_v1_memory: Some(false),
                mglru: Some(true),
                mglru_default: Some(true),
                lru_gen_enabled: Some("0x0007".into()),
            }
        );
        assert!(fact_mismatches(&TRIXIE, &probed).is_empty());
    }

    #[test]
    fn unknown_and_missing_features_tell_nothing() {
        let probed = probed_facts(&features(&[
            ("cgroup_v1_memory", "unknown"),
            ("mglru", "unknown"),
        ]));
        assert_eq!(probed, ProbedFacts::default());
        let wrong = KernelFacts {
            madv_free: false,
            ..TRIXIE
        };
        assert!(fact_mismatches(&wrong, &probed).is_empty());
        let odd = probed_facts(&features(&[("mglru", "on")]));
        assert_eq!((odd.mglru, odd.mglru_default), (Some(true), None));
    }

    #[test]
    fn no_lru_gen_file_is_no_mglru_at_all() {
        let probed = probed_facts(&features(&[("mglru", "absent")]));
        assert_eq!(
            (probed.mglru, probed.mglru_default),
            (Some(false), Some(false))
        );
        let mismatches = fact_mismatches(&TRIXIE, &probed);
        let text: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "catalogue says mglru = true, the guest found no /sys/kernel/mm/lru_gen/enabled",
                "catalogue says mglru_default = true, the guest found no /sys/kernel/mm/lru_gen/enabled",
            ]
        );
    }

    #[test]
    fn every_differing_fact_is_named_with_what_the_guest_read() {
        let written = KernelFacts {
            madv_free: false,
            cgroup_v1_memory: true,
            mglru: true,
            mglru_default: false,
            overcommit_heuristic_total_only: false,
        };
        let probed = probed_facts(&features(&[
            ("cgroup_v1_memory", "no"),
            ("madv_free", "yes"),
            ("mglru", "0x0007"),
        ]));
        let mismatches = fact_mismatches(&written, &probed);
        let text: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "catalogue says madv_free = false, the guest's madvise(MADV_FREE) returned 0",
                "catalogue says cgroup_v1_memory = true, the guest could not mount the cgroup v1 memory controller",
                "catalogue says mglru_default = false, the guest read lru_gen/enabled = 0x0007",
            ]
        );
        assert_eq!(
            mismatches[2],
            FactMismatch {
                fact: "mglru_default".into(),
                written: false,
                probed: true,
                detail: "the guest read lru_gen/enabled = 0x0007".into(),
            }
        );
        let einval = probed_facts(&features(&[
            ("madv_free", "no"),
            ("cgroup_v1_memory", "yes"),
        ]));
        let text: Vec<String> = fact_mismatches(&TRIXIE, &einval)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                "catalogue says madv_free = true, the guest's madvise(MADV_FREE) failed with EINVAL",
                "catalogue says cgroup_v1_memory = false, the guest mounted the cgroup v1 memory controller",
            ]
        );
    }

    #[test]
    fn a_record_needs_a_hello_and_facts() {
        let mut run = crate::records::testing::fake_run("demo", "6.12", "free");
        run.record.kernel_facts = None;
        assert!(record_fact_mismatches(&run.record).is_empty());
        run.record.kernel_facts = Some(KernelFacts {
            mglru_default: false,
            ..TRIXIE
        });
        let hello = run.record.hello.as_mut().unwrap();
        hello.features.insert("mglru".into(), "0x0007".into());
        let mismatches = record_fact_mismatches(&run.record);
        assert_eq!(mismatches.len(), 1, "{mismatches:?}");
        assert_eq!(mismatches[0].fact, "mglru_default");
        run.record.hello = None;
        assert!(record_fact_mismatches(&run.record).is_empty());
    }
}
