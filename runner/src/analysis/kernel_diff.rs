//! What changed between two kernel packages, for the end of a bisect: the config options that
//! differ ([`config_diff`]) and the Debian changelog entries between the two versions
//! ([`changelog_between`]), memory-management and cgroup items first in both.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use crate::catalogue::versions::compare_debian_versions;

/// Config options whose name says they shape memory behaviour (matched as substrings).
const MEMORY_OPTIONS: &[&str] = &[
    "MEMCG",
    "LRU_GEN",
    "TRANSPARENT_HUGEPAGE",
    "THP",
    "HUGETLB",
    "SWAP",
    "ZSWAP",
    "ZRAM",
    "KSM",
    "COMPACTION",
    "MIGRATION",
    "CGROUP",
    "PSI",
    "OOM",
    "SLUB",
    "SLAB",
    "SHMEM",
    "DAMON",
    "PAGE_",
    "MM_",
    "NUMA",
    "HIGHMEM",
    "ZSMALLOC",
    "MGLRU",
    "VM_EVENT",
    "USERFAULTFD",
];

/// Words of a changelog line that say it is about memory management or cgroups.
const MEMORY_WORDS: &[&str] = &[
    "mm/",
    "mm:",
    "memcg",
    "memcontrol",
    "cgroup",
    "vmscan",
    "oom",
    "thp",
    "huge",
    "swap",
    "lru",
    "madvise",
    "madv_",
    "page cache",
    "pagecache",
    "filemap",
    "folio",
    "slab",
    "slub",
    "shmem",
    "zswap",
    "zram",
    "writeback",
    "readahead",
    "mglru",
    "psi",
    "ksm",
    "compaction",
    "mmap",
    "vmalloc",
    "reclaim",
    "memory",
];

/// One option that differs: its value before and after (`None`: not set).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChange {
    pub option: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The option is one of [`MEMORY_OPTIONS`].
    pub memory: bool,
}

/// The options that differ between two `.config` texts: memory-related first, then by name.
pub fn config_diff(before: &str, after: &str) -> Vec<ConfigChange> {
    let (before, after) = (config_values(before), config_values(after));
    let mut options: Vec<&String> = before.keys().chain(after.keys()).collect();
    options.sort();
    options.dedup();
    let mut changes: Vec<ConfigChange> = options
        .into_iter()
        .filter(|option| before.get(*option) != after.get(*option))
        .map(|option| ConfigChange {
            option: option.clone(),
            before: before.get(option).cloned(),
            after: after.get(option).cloned(),
            memory: MEMORY_OPTIONS.iter().any(|word| option.contains(word)),
        })
        .collect();
    changes.sort_by_key(|change| !change.memory);
    changes
}

/// `CONFIG_X=v` lines as X -> v (`# CONFIG_X is not set` is absent).
fn config_values(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| {
            let (name, value) = line.strip_prefix("CONFIG_")?.split_once('=')?;
            Some((name.to_owned(), value.to_owned()))
        })
        .collect()
}

/// One entry of a Debian changelog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangelogEntry {
    /// The version of the `linux` source it describes (a `linux-signed-*` entry's `6.12.57+1`
    /// is `6.12.57-1`).
    pub version: String,
    /// Its items (`- mm: fix ...`), memory-management and cgroup ones first.
    pub items: Vec<String>,
    /// How many of `items` come first because they are about memory.
    pub memory_items: usize,
}

/// The entries of `changelog` after version `good` up to and including `bad`, newest first.
pub fn changelog_between(changelog: &str, good: &str, bad: &str) -> Vec<ChangelogEntry> {
    let mut entries: Vec<ChangelogEntry> = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    let finish = |entry: Option<(String, Vec<String>)>, entries: &mut Vec<ChangelogEntry>| {
        let Some((version, items)) = entry else {
            return;
        };
        let after_good =
            compare_debian_versions(without_backport(&version), without_backport(good))
                == Ordering::Greater;
        let up_to_bad = compare_debian_versions(without_backport(&version), without_backport(bad))
            != Ordering::Greater;
        if after_good && up_to_bad && !items.is_empty() {
            let (mut memory, other): (Vec<String>, Vec<String>) =
                items.into_iter().partition(|item| is_memory_item(item));
            let memory_items = memory.len();
            memory.extend(other);
            entries.push(ChangelogEntry {
                version,
                items: memory,
                memory_items,
            });
        }
    };
    for line in changelog.lines() {
        if let Some(version) = entry_version(line) {
            finish(current.take(), &mut entries);
            current = Some((version, Vec::new()));
        } else if let Some((_, items)) = current.as_mut() {
            let item = line.trim();
            if let Some(text) = item.strip_prefix("- ").or_else(|| item.strip_prefix("* ")) {
                items.push(text.to_owned());
            } else if !item.is_empty()
                && !item.starts_with("-- ")
                && let Some(last) = items.last_mut()
            {
                last.push(' ');
                last.push_str(item);
            }
        }
    }
    finish(current.take(), &mut entries);
    entries
}

/// The source version of a changelog entry's first line (`linux (6.12.57-1) trixie; ...`).
fn entry_version(line: &str) -> Option<String> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let (source, rest) = line.split_once(" (")?;
    let (version, _) = rest.split_once(')')?;
    if !source.starts_with("linux") || source.contains(' ') {
        return None;
    }
    if source.starts_with("linux-signed") {
        // linux-signed-amd64 (6.12.57+1) signs linux 6.12.57-1.
        let (upstream, revision) = version.split_once('+')?;
        return Some(format!("{upstream}-{revision}"));
    }
    Some(version.to_owned())
}

/// A version without its backport suffix (`6.16.3-1~bpo13+1` -> `6.16.3-1`): a backport is
/// a rebuild of the source version its changelog lists, which must not count as newer.
fn without_backport(version: &str) -> &str {
    version
        .split_once("~bpo")
        .map_or(version, |(source, _)| source)
}

fn is_memory_item(item: &str) -> bool {
    let lower = item.to_lowercase();
    MEMORY_WORDS.iter().any(|word| lower.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_changes_put_memory_options_first() {
        let before =
            "CONFIG_A=y\nCONFIG_LRU_GEN_ENABLED=y\n# CONFIG_MEMCG_V1 is not set\nCONFIG_Z=m\n";
        let after = "CONFIG_A=y\nCONFIG_MEMCG_V1=y\nCONFIG_Z=y\nCONFIG_B=y\n";
        let changes = config_diff(before, after);
        let names: Vec<&str> = changes
            .iter()
            .map(|change| change.option.as_str())
            .collect();
        assert_eq!(names, ["LRU_GEN_ENABLED", "MEMCG_V1", "B", "Z"]);
        assert_eq!(changes[0].before.as_deref(), Some("y"));
        assert_eq!(changes[0].after, None);
        assert_eq!(changes[3].before.as_deref(), Some("m"));
        assert!(changes[1].memory && !changes[2].memory);
    }

    const CHANGELOG: &str = "\
linux-signed-amd64 (6.12.60+1) trixie; urgency=high

  * Sign kernel from linux 6.12.60-1

  * New upstream stable update:
    - net: fix a thing
    - mm/vmscan: do not reclaim
      twice
 -- Maintainer <m@example>  Mon, 01 Dec 2026 00:00:00 +0000

linux (6.12.58-1) trixie; urgency=medium

  * New upstream stable update:
    - memcg: account something
    - drm: other

 -- Maintainer <m@example>  Mon, 01 Nov 2026 00:00:00 +0000

linux (6.12.57-1) trixie; urgency=medium

  * Something in the good version
";

    #[test]
    fn changelog_entries_between_two_versions_memory_first() {
        let entries = changelog_between(CHANGELOG, "6.12.57-1", "6.12.60-1");
        let versions: Vec<&str> = entries.iter().map(|entry| entry.version.as_str()).collect();
        assert_eq!(versions, ["6.12.60-1", "6.12.58-1"]);
        assert_eq!(entries[0].items[0], "mm/vmscan: do not reclaim twice");
        assert_eq!(entries[0].memory_items, 1);
        assert_eq!(
            entries[1].items,
            [
                "memcg: account something",
                "New upstream stable update:",
                "drm: other"
            ]
        );
        assert!(changelog_between(CHANGELOG, "6.12.58-1", "6.12.58-1").is_empty());
        assert_eq!(
            changelog_between(CHANGELOG, "6.12.57-1", "6.12.58-1").len(),
            1
        );
    }
}
