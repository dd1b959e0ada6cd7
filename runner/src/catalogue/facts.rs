//! A kernel's facts read from its build configuration (`boot/config-<release>`, or
//! `usr/lib/modules/<release>/config` with the split packages of 7.x), for the kernels the
//! catalogue does not pin, and to check the facts `vm-images/kernels.toml` writes:
//!
//! | fact                              | from                                                      |
//! |-----------------------------------|-----------------------------------------------------------|
//! | `madv_free`                       | the version: Linux >= 4.5                                 |
//! | `cgroup_v1_memory`                | `CONFIG_MEMCG=y`, and `CONFIG_MEMCG_V1=y` from 6.11 on    |
//! | `mglru`                           | `CONFIG_LRU_GEN=y`                                        |
//! | `mglru_default`                   | `CONFIG_LRU_GEN_ENABLED=y`                                |
//! | `overcommit_heuristic_total_only` | the version: Linux >= 5.2                                 |
//!
//! `CONFIG_MEMCG_V1` appeared in 6.11; before, the v1 memory controller comes with every
//! `CONFIG_MEMCG` kernel. Debian's configs say so: 5.10 and 6.1 have no `CONFIG_MEMCG_V1` line,
//! 6.12 and 7.2 have `# CONFIG_MEMCG_V1 is not set`.

use crate::catalogue::KernelFacts;

/// The first kernel with `CONFIG_MEMCG_V1` (the v1 memory controller made optional).
const MEMCG_V1_OPTIONAL_SINCE: (u32, u32) = (6, 11);

/// The facts of a kernel with this `config` text (a `.config`) and `upstream_version` (its
/// release or version, `6.12.107+deb13-cloud-amd64`, `6.1.0-50-cloud-amd64` or `6.12.107`:
/// only the leading `major.minor` counts). When the version does not read as one, the config's
/// own header (`# Linux/x86 6.12.107 Kernel Configuration`) gives it; without either, the
/// facts that need a version are false, except that a config without a `CONFIG_MEMCG_V1` line
/// is taken to be from before 6.11.
pub fn facts_from_config(config: &str, upstream_version: &str) -> KernelFacts {
    let version = major_minor(upstream_version).or_else(|| config_header_version(config));
    let at_least = |since: (u32, u32)| version.is_some_and(|version| version >= since);
    let memcg_v1_option = config_value(config, "CONFIG_MEMCG_V1");
    let memcg_v1 = match version {
        // No such option before 6.11: the controller is part of CONFIG_MEMCG.
        Some(version) if version < MEMCG_V1_OPTIONAL_SINCE => true,
        Some(_) => memcg_v1_option.as_deref() == Some("y"),
        None => memcg_v1_option.is_none_or(|value| value == "y"),
    };
    KernelFacts {
        madv_free: at_least((4, 5)),
        cgroup_v1_memory: is_yes(config, "CONFIG_MEMCG") && memcg_v1,
        mglru: is_yes(config, "CONFIG_LRU_GEN"),
        mglru_default: is_yes(config, "CONFIG_LRU_GEN_ENABLED"),
        overcommit_heuristic_total_only: at_least((5, 2)),
    }
}

/// Whether `option` is built in (`=y`).
fn is_yes(config: &str, option: &str) -> bool {
    config_value(config, option).as_deref() == Some("y")
}

/// The value of `option` in a `.config`: `Some("y")`, `Some("m")`, `Some("\"text\"")`, `Some("n")`
/// for `# CONFIG_X is not set`, `None` when the config does not mention it.
fn config_value(config: &str, option: &str) -> Option<String> {
    config.lines().find_map(|line| {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim();
            return (rest.strip_prefix(option)? == " is not set").then(|| "n".to_owned());
        }
        let value = line.strip_prefix(option)?.strip_prefix('=')?;
        Some(value.trim().to_owned())
    })
}

/// `(major, minor)` from the start of `text`: `6.12.107+deb13` -> (6, 12), `5.10.0-32` -> (5, 10).
fn major_minor(text: &str) -> Option<(u32, u32)> {
    let (major, rest) = text.trim().split_once('.')?;
    let minor: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The version in a config's header comment, `# Linux/x86 6.12.107 Kernel Configuration`.
fn config_header_version(config: &str) -> Option<(u32, u32)> {
    config
        .lines()
        .take(10)
        .filter_map(|line| line.strip_prefix('#'))
        .find(|line| line.contains("Kernel Configuration"))
        .and_then(|line| line.split_whitespace().find_map(major_minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOOKWORM: &str = "\
#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.176 Kernel Configuration
#
CONFIG_CGROUPS=y
CONFIG_MEMCG=y
CONFIG_MEMCG_KMEM=y
CONFIG_LRU_GEN=y
# CONFIG_LRU_GEN_ENABLED is not set
";

    const TRIXIE: &str = "\
# Linux/x86 6.12.107 Kernel Configuration
CONFIG_CGROUPS=y
CONFIG_MEMCG=y
# CONFIG_MEMCG_V1 is not set
CONFIG_LRU_GEN=y
CONFIG_LRU_GEN_ENABLED=y
CONFIG_LRU_GEN_STATS=y
";

    #[test]
    fn reads_yes_not_set_and_absent_options() {
        assert_eq!(config_value(TRIXIE, "CONFIG_MEMCG").as_deref(), Some("y"));
        assert_eq!(
            config_value(TRIXIE, "CONFIG_MEMCG_V1").as_deref(),
            Some("n")
        );
        assert_eq!(config_value(TRIXIE, "CONFIG_MEMCG_KMEM"), None);
        assert_eq!(config_value(TRIXIE, "CONFIG_LRU_GEN").as_deref(), Some("y"));
        assert_eq!(
            config_value("CONFIG_LOCALVERSION=\"-x\"\n", "CONFIG_LOCALVERSION").as_deref(),
            Some("\"-x\"")
        );
        // A prefix of another option is not that option.
        assert_eq!(
            config_value("CONFIG_LRU_GEN_STATS=y\n", "CONFIG_LRU_GEN"),
            None
        );
        assert_eq!(
            config_value("# CONFIG_LRU_GEN_STATS is not set\n", "CONFIG_LRU_GEN"),
            None
        );
    }

    #[test]
    fn versions_read_from_releases_and_headers() {
        assert_eq!(major_minor("6.12.107+deb13-cloud-amd64"), Some((6, 12)));
        assert_eq!(major_minor("6.1.0-50-cloud-amd64"), Some((6, 1)));
        assert_eq!(major_minor("5.10.223-1"), Some((5, 10)));
        assert_eq!(major_minor("7.2"), Some((7, 2)));
        assert_eq!(major_minor("custom"), None);
        assert_eq!(major_minor("6"), None);
        assert_eq!(config_header_version(TRIXIE), Some((6, 12)));
        assert_eq!(config_header_version(BOOKWORM), Some((6, 1)));
        assert_eq!(config_header_version("CONFIG_MEMCG=y\n"), None);
    }

    #[test]
    fn bookworm_has_v1_memory_and_mglru_off_at_boot() {
        let facts = facts_from_config(BOOKWORM, "6.1.0-50-cloud-amd64");
        assert_eq!(
            facts,
            KernelFacts {
                madv_free: true,
                cgroup_v1_memory: true,
                mglru: true,
                mglru_default: false,
                overcommit_heuristic_total_only: true,
            }
        );
    }

    #[test]
    fn trixie_has_no_v1_memory_and_mglru_on_at_boot() {
        let facts = facts_from_config(TRIXIE, "6.12.107+deb13-cloud-amd64");
        assert!(!facts.cgroup_v1_memory);
        assert!(facts.mglru && facts.mglru_default);
        let with_v1 = TRIXIE.replace("# CONFIG_MEMCG_V1 is not set", "CONFIG_MEMCG_V1=y");
        assert!(facts_from_config(&with_v1, "6.12.107").cgroup_v1_memory);
    }

    #[test]
    fn no_memcg_no_v1_memory_whatever_the_version() {
        let config = "# CONFIG_MEMCG is not set\n";
        assert!(!facts_from_config(config, "5.10.0-32-cloud-amd64").cgroup_v1_memory);
        assert!(!facts_from_config(config, "6.12.1").cgroup_v1_memory);
        assert!(!facts_from_config("CONFIG_MEMCG=m\n", "6.1.0").cgroup_v1_memory);
    }

    #[test]
    fn the_version_decides_madv_free_overcommit_and_v1_before_6_11() {
        let memcg = "CONFIG_MEMCG=y\n";
        let old = facts_from_config(memcg, "4.4.0-21-generic");
        assert!(!old.madv_free && !old.overcommit_heuristic_total_only);
        assert!(old.cgroup_v1_memory);
        let between = facts_from_config(memcg, "4.19.0-27-cloud-amd64");
        assert!(between.madv_free && !between.overcommit_heuristic_total_only);
        let later = facts_from_config(memcg, "5.2.0");
        assert!(later.madv_free && later.overcommit_heuristic_total_only);
        // From 6.11 the v1 controller needs CONFIG_MEMCG_V1, even when the line is missing.
        assert!(facts_from_config(memcg, "6.10.14").cgroup_v1_memory);
        assert!(!facts_from_config(memcg, "6.11.0").cgroup_v1_memory);
        assert!(!facts_from_config(memcg, "6.11.0").mglru);
    }

    #[test]
    fn without_a_version_in_the_name_the_header_gives_it() {
        assert_eq!(
            facts_from_config(TRIXIE, "my-kernel"),
            facts_from_config(TRIXIE, "6.12.107")
        );
        let bare = "CONFIG_MEMCG=y\nCONFIG_LRU_GEN=y\n";
        let facts = facts_from_config(bare, "my-kernel");
        assert!(!facts.madv_free && !facts.overcommit_heuristic_total_only);
        assert!(
            facts.cgroup_v1_memory,
            "no CONFIG_MEMCG_V1 line: before 6.11"
        );
        assert!(
            !facts_from_config(&format!("{bare}# CONFIG_MEMCG_V1 is not set\n"), "x")
                .cgroup_v1_memory
        );
    }
}
