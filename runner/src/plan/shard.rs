//! `--shard I/N`: one machine's slice of a plan, so a lab runs across N CI runners and
//! `rsslab merge` joins their raw records.
//!
//! [`shard_plan`] is pure and depends on the plan alone, so every machine that plans the same
//! scenarios with the same flags cuts the same slices, and every run is in exactly one of
//! them. Runs are dealt like cards: ordered by kernel (as versions), then in plan order, run
//! number `k` of that order goes to shard `k % N + 1`. Each shard so gets a share of every
//! kernel (their boot times differ a lot under TCG) and of every scenario, differing from any
//! other shard by at most one run per kernel. Within a shard, runs keep plan order.

use std::fmt;
use std::str::FromStr;

use crate::catalogue::versions::compare_kernels;
use crate::plan::Plan;

/// Shard `index` of `count` (1-based), as `--shard I/N` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Why a `--shard` value is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error(
        "`{0}` is not I/N: write the shard's number, a slash and the number of shards, e.g. 2/4"
    )]
    Syntax(String),
    #[error("`{0}`: both numbers must be at least 1 (shards count from 1, e.g. 1/4)")]
    Zero(String),
    #[error("`{value}`: there are only {count} shards, so the shard number must be 1 to {count}")]
    TooLarge { value: String, count: usize },
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(value: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(value.to_owned());
        let (index, count) = value.split_once('/').ok_or_else(syntax)?;
        let parse = |n: &str| n.trim().parse::<usize>().map_err(|_| syntax());
        let (index, count) = (parse(index)?, parse(count)?);
        if index == 0 || count == 0 {
            return Err(ShardError::Zero(value.to_owned()));
        }
        if index > count {
            return Err(ShardError::TooLarge {
                value: value.to_owned(),
                count,
            });
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The runs of `plan` that belong to `shard`, in plan order.
pub fn shard_plan(plan: Plan, shard: Shard) -> Plan {
    let mut order: Vec<usize> = (0..plan.runs.len()).collect();
    // Stable: within a kernel, plan order.
    order.sort_by(|&a, &b| compare_kernels(&plan.runs[a].kernel, &plan.runs[b].kernel));
    let mut mine: Vec<usize> = order
        .into_iter()
        .enumerate()
        .filter(|(dealt, _)| dealt % shard.count == shard.index - 1)
        .map(|(_, run)| run)
        .collect();
    mine.sort_unstable();
    let mut runs: Vec<Option<_>> = plan.runs.into_iter().map(Some).collect();
    Plan {
        runs: mine
            .into_iter()
            .map(|index| runs[index].take().expect("each run is dealt once"))
            .collect(),
        warnings: plan.warnings,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    use super::*;
    use crate::plan::{PlanFilter, plan};
    use crate::scenario::parse_scenario;

    fn kernels() -> Vec<String> {
        ["5.10", "6.1", "6.12", "7.2"].map(String::from).to_vec()
    }

    /// Three scenarios: 4 kernels x 4 variants, 4 kernels, 2 kernels x 3 variants.
    fn lab() -> Plan {
        let scenario = |id: &str, extra: &str| {
            let source = format!(
                "[scenario]\nid = \"{id}\"\ntitle = \"t\"\n[sample]\nduration = \"10s\"\n\
                 [[process]]\nname = \"service\"\nworkload = \"heap-churn\"\n\
                 args = {{ heap = \"64MiB\" }}\n{extra}"
            );
            parse_scenario(Path::new("s.toml"), &source, &kernels())
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let scenarios = [
            scenario(
                "matrix",
                "[matrix]\n\"process.service.args.release\" = [\"free\", \"dontneed\"]\n\
                 'sysctl.\"vm.overcommit_memory\"' = [0, 1]\n",
            ),
            scenario("plain", ""),
            scenario(
                "two",
                "[vm]\nkernels = [\"6.1\", \"7.2\"]\n[matrix]\n\
                 'sysctl.\"vm.overcommit_memory\"' = [0, 1, 2]\n",
            ),
        ];
        plan(&scenarios, &PlanFilter::default())
    }

    fn dirs(plan: &Plan) -> Vec<String> {
        plan.runs.iter().map(|run| run.dir.clone()).collect()
    }

    #[test]
    fn every_run_is_in_exactly_one_shard_in_plan_order() {
        let full = lab();
        assert_eq!(full.runs.len(), 16 + 4 + 6);
        let position: BTreeMap<String, usize> = dirs(&full)
            .into_iter()
            .enumerate()
            .map(|(i, dir)| (dir, i))
            .collect();
        for count in 1..=7 {
            let mut seen = Vec::new();
            for index in 1..=count {
                let shard = shard_plan(full.clone(), Shard { index, count });
                let order: Vec<usize> = dirs(&shard).iter().map(|d| position[d]).collect();
                assert!(
                    order.windows(2).all(|w| w[0] < w[1]),
                    "plan order: {order:?}"
                );
                let size = shard.runs.len();
                let fair = full.runs.len() / count;
                assert!(
                    size == fair || size == fair + 1,
                    "{index}/{count}: {size} runs"
                );
                seen.extend(dirs(&shard));
            }
            seen.sort();
            let mut all = dirs(&full);
            all.sort();
            assert_eq!(seen, all, "{count} shards");
        }
        assert_eq!(shard_plan(full.clone(), Shard { index: 1, count: 1 }), full);
    }

    #[test]
    fn each_shard_gets_its_share_of_every_kernel() {
        let full = lab();
        let per_kernel = |plan: &Plan| {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for run in &plan.runs {
                *counts.entry(run.kernel.clone()).or_default() += 1;
            }
            counts
        };
        let total = per_kernel(&full);
        for count in [2, 3, 4] {
            let shards: Vec<_> = (1..=count)
                .map(|index| per_kernel(&shard_plan(full.clone(), Shard { index, count })))
                .collect();
            for (kernel, &n) in &total {
                let shares: BTreeSet<usize> = shards
                    .iter()
                    .map(|shard| shard.get(kernel).copied().unwrap_or(0))
                    .collect();
                let (low, high) = (*shares.first().unwrap(), *shares.last().unwrap());
                assert!(
                    high - low <= 1,
                    "kernel {kernel} ({n} runs) over {count}: {shares:?}"
                );
                assert!(low >= n / count, "kernel {kernel}: {shares:?}");
            }
        }
    }

    #[test]
    fn the_same_plan_gives_the_same_slices() {
        let shard = Shard { index: 3, count: 4 };
        assert_eq!(
            dirs(&shard_plan(lab(), shard)),
            dirs(&shard_plan(lab(), shard))
        );
    }

    #[test]
    fn a_shard_parses_from_i_slash_n_and_bad_values_say_what_to_write() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!("1/1".parse::<Shard>().unwrap().to_string(), "1/1");
        for (value, wanted) in [
            ("2", "is not I/N"),
            ("a/4", "is not I/N"),
            ("2/-4", "is not I/N"),
            ("0/4", "at least 1"),
            ("1/0", "at least 1"),
            ("5/4", "1 to 4"),
        ] {
            let error = value.parse::<Shard>().unwrap_err().to_string();
            assert!(
                error.contains(wanted) && error.contains(value),
                "{value}: {error}"
            );
        }
    }
}
