//! The host files a user program brings into the guest: what `files` names (a directory
//! copied whole), the program itself, and for every dynamically linked ELF program among them
//! its interpreter and shared libraries ([`crate::elf`]), at the paths the guest's loader
//! opens.
//!
//! `rsslab check` resolves them to refuse what is missing and what cannot fit the guest; the
//! image stage resolves them again (the host may have changed since) and copies them.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::elf::{LoaderSearch, ProgramKind, library_closure, needs_loader_cache, program_kind};

/// The loader's cache: copied along when a library lives where only the cache finds it.
const LOADER_CACHE: &str = "/etc/ld.so.cache";

/// What one guest path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file: read from `host`, with these permission bits.
    File {
        size: u64,
        mode: u32,
    },
    Dir,
    /// A symbolic link inside a copied directory, kept as a link.
    Symlink {
        target: String,
    },
}

/// One path of the guest's file system and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestEntry {
    /// Absolute path in the guest.
    pub guest: String,
    /// The host file it is read from.
    pub host: PathBuf,
    pub kind: EntryKind,
}

/// Every path a process brings, sorted by guest path, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestFiles {
    pub entries: Vec<GuestEntry>,
}

impl GuestFiles {
    /// The bytes of every regular file: what the guest holds in memory for them (the
    /// initramfs is unpacked into RAM).
    pub fn bytes(&self) -> u64 {
        self.entries
            .iter()
            .map(|entry| match entry.kind {
                EntryKind::File { size, .. } => size,
                _ => 0,
            })
            .sum()
    }
}

/// Resolves `files` (guest path -> absolute host path) and `program` (its guest path and
/// the host file it is read from, when no `files` entry provides it), with the libraries of
/// every dynamically linked ELF program among them.
pub fn resolve_guest_files(
    files: &BTreeMap<String, String>,
    program: Option<(&str, &Path)>,
) -> Result<GuestFiles> {
    let mut entries: BTreeMap<String, GuestEntry> = BTreeMap::new();
    for (guest, host) in files {
        for entry in walk(guest, Path::new(host))? {
            entries.entry(entry.guest.clone()).or_insert(entry);
        }
    }
    if let Some((guest, host)) = program
        && !entries.contains_key(guest)
    {
        let entry = file_entry(guest, host)?;
        entries.insert(entry.guest.clone(), entry);
    }
    let search = LoaderSearch::host();
    let programs: Vec<(String, PathBuf)> = entries
        .values()
        .filter(|entry| is_program(entry, program.map(|(guest, _)| guest)))
        .map(|entry| (entry.guest.clone(), entry.host.clone()))
        .collect();
    for (guest, host) in programs {
        let is_dynamic = !matches!(program_kind(&host), Ok(ProgramKind::StaticElf) | Err(_));
        if !is_dynamic {
            continue;
        }
        let libraries = library_closure(&host, &search)
            .with_context(|| format!("the libraries of {guest} (from {})", host.display()))?;
        if needs_loader_cache(&libraries, &search) {
            let cache = Path::new(LOADER_CACHE);
            entries
                .entry(LOADER_CACHE.to_owned())
                .or_insert(file_entry(LOADER_CACHE, cache)?);
        }
        for library in libraries {
            let guest = library.guest.to_string_lossy().into_owned();
            if let std::collections::btree_map::Entry::Vacant(slot) = entries.entry(guest) {
                let entry = file_entry(slot.key(), &library.host)?;
                slot.insert(entry);
            }
        }
    }
    Ok(GuestFiles {
        entries: entries.into_values().collect(),
    })
}

/// The program to run, or an executable file among the copied ones.
fn is_program(entry: &GuestEntry, program: Option<&str>) -> bool {
    match entry.kind {
        EntryKind::File { mode, .. } => program == Some(&entry.guest) || mode & 0o111 != 0,
        _ => false,
    }
}

/// One `files` entry: a file, or a directory and everything in it (symbolic links inside
/// it stay links; the entry itself is followed).
fn walk(guest: &str, host: &Path) -> Result<Vec<GuestEntry>> {
    let metadata = fs::metadata(host).with_context(|| format!("reading {}", host.display()))?;
    if !metadata.is_dir() {
        return Ok(vec![file_entry(guest, host)?]);
    }
    let mut entries = vec![GuestEntry {
        guest: guest.to_owned(),
        host: host.to_owned(),
        kind: EntryKind::Dir,
    }];
    let mut children: Vec<_> = fs::read_dir(host)
        .with_context(|| format!("reading {}", host.display()))?
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", host.display()))?;
    children.sort_by_key(|child| child.file_name());
    for child in children {
        let name = child.file_name().to_string_lossy().into_owned();
        let child_guest = format!("{}/{name}", guest.trim_end_matches('/'));
        let path = child.path();
        let kind = child.file_type()?;
        if kind.is_symlink() {
            let target = fs::read_link(&path)
                .with_context(|| format!("reading the link {}", path.display()))?;
            entries.push(GuestEntry {
                guest: child_guest,
                host: path,
                kind: EntryKind::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
            });
        } else if kind.is_dir() || kind.is_file() {
            entries.extend(walk(&child_guest, &path)?);
        }
        // Sockets, fifos and devices are not copied.
    }
    Ok(entries)
}

/// A regular file, readable (its first byte is read, so a file without read permission is
/// refused now rather than when the image is written).
fn file_entry(guest: &str, host: &Path) -> Result<GuestEntry> {
    let metadata = fs::metadata(host).with_context(|| format!("reading {}", host.display()))?;
    if !metadata.is_file() {
        bail!("{} is not a regular file", host.display());
    }
    fs::File::open(host).with_context(|| format!("opening {}", host.display()))?;
    Ok(GuestEntry {
        guest: guest.to_owned(),
        host: host.to_owned(),
        kind: EntryKind::File {
            size: metadata.len(),
            mode: metadata.permissions().mode() & 0o7777,
        },
    })
}

/// Where an `exec` program is read from: what `files` provides at its guest path, else the
/// same path on the host.
pub fn program_host(files: &BTreeMap<String, String>, guest: &str) -> PathBuf {
    provided_by(files, guest).unwrap_or_else(|| PathBuf::from(guest))
}

/// The host file that provides guest path `guest` through `files`: the entry itself, or a
/// path inside a directory entry. `None` when no entry covers it.
pub fn provided_by(files: &BTreeMap<String, String>, guest: &str) -> Option<PathBuf> {
    files.iter().find_map(|(at, host)| {
        let at = at.trim_end_matches('/');
        if guest == at {
            Some(PathBuf::from(host))
        } else {
            guest
                .strip_prefix(at)
                .and_then(|rest| rest.strip_prefix('/'))
                .map(|rest| Path::new(host).join(rest))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_copied_whole_with_its_links() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        fs::create_dir_all(app.join("conf")).unwrap();
        fs::write(app.join("conf/a.toml"), "a = 1\n").unwrap();
        fs::write(app.join("data.bin"), vec![0u8; 1000]).unwrap();
        std::os::unix::fs::symlink("conf/a.toml", app.join("current.toml")).unwrap();
        let files = BTreeMap::from([("/opt/app".to_owned(), app.to_string_lossy().into_owned())]);
        let resolved = resolve_guest_files(&files, None).unwrap();
        let guests: Vec<(&str, &EntryKind)> = resolved
            .entries
            .iter()
            .map(|entry| (entry.guest.as_str(), &entry.kind))
            .collect();
        assert_eq!(
            guests,
            [
                ("/opt/app", &EntryKind::Dir),
                ("/opt/app/conf", &EntryKind::Dir),
                (
                    "/opt/app/conf/a.toml",
                    &EntryKind::File {
                        size: 6,
                        mode: 0o644
                    }
                ),
                (
                    "/opt/app/current.toml",
                    &EntryKind::Symlink {
                        target: "conf/a.toml".into()
                    }
                ),
                (
                    "/opt/app/data.bin",
                    &EntryKind::File {
                        size: 1000,
                        mode: 0o644
                    }
                ),
            ]
        );
        assert_eq!(resolved.bytes(), 1006);
    }

    #[test]
    fn a_host_program_brings_its_loader_and_libraries() {
        let ls = Path::new("/usr/bin/ls");
        let resolved = resolve_guest_files(&BTreeMap::new(), Some(("/usr/bin/ls", ls))).unwrap();
        let guests: Vec<&str> = resolved.entries.iter().map(|e| e.guest.as_str()).collect();
        assert!(guests.contains(&"/usr/bin/ls"), "{guests:?}");
        assert!(
            guests.contains(&"/lib64/ld-linux-x86-64.so.2"),
            "{guests:?}"
        );
        assert!(
            guests.iter().any(|guest| guest.ends_with("/libc.so.6")),
            "{guests:?}"
        );
        assert!(resolved.bytes() > 1 << 20, "libc alone is over 1 MiB");
    }

    #[test]
    fn what_files_provides() {
        let files = BTreeMap::from([
            ("/opt/app/".to_owned(), "/home/me/build".to_owned()),
            ("/etc/app.toml".to_owned(), "/home/me/app.toml".to_owned()),
        ]);
        assert_eq!(
            provided_by(&files, "/opt/app/bin/server"),
            Some(PathBuf::from("/home/me/build/bin/server"))
        );
        assert_eq!(
            provided_by(&files, "/etc/app.toml"),
            Some(PathBuf::from("/home/me/app.toml"))
        );
        assert_eq!(provided_by(&files, "/opt/application"), None);
        assert_eq!(provided_by(&files, "/usr/bin/ls"), None);
    }

    #[test]
    fn a_missing_or_unreadable_file_is_refused() {
        let files = BTreeMap::from([("/x".to_owned(), "/nonexistent/x".to_owned())]);
        let error = format!("{:#}", resolve_guest_files(&files, None).unwrap_err());
        assert!(error.contains("/nonexistent/x"), "{error}");
    }
}
