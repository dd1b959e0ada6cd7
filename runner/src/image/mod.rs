//! The initramfs a run boots: the guest agent as `/init`, the workload programs and the kernel
//! modules the run needs, as a gzip-compressed cpio newc archive.
//!
//! Images are reproducible (fixed entry order, mtime 0) and cached by the sha256 of the
//! uncompressed archive (`images/<digest>.cpio.gz`). The run spec is not in the image: the
//! agent asks for it on the channel once it is up, so every run of the same programs and
//! modules on a kernel shares one image, and one snapshot of it booted ([`crate::vm::snapshot`]).
//! [`build_image`] is the stage's entry; [`cpio`] writes the archive.

pub mod cpio;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rsslab_wire::workload::{WORKLOAD_NAMES, is_go_workload_name};
use rsslab_wire::{BIN_DIR, MODULES_DIR, Millis, RunSpec};
use sha2::{Digest, Sha256};

use self::cpio::CpioWriter;
use crate::elf;
use crate::files::write_atomic_with;
use crate::scenario::guest_files::{EntryKind, GuestEntry, program_host, resolve_guest_files};
use crate::supply::cache::Cache;
use crate::supply::gobuild::GoBuild;
use crate::supply::kernel::KernelFiles;
use crate::supply::modules::resolve_modules;

/// Environment variable with the directory holding the guest binaries.
pub const GUEST_BIN_DIR_ENV: &str = "RSSLAB_GUEST_BIN_DIR";
/// File name of the guest agent (PID 1).
pub const AGENT_NAME: &str = "rsslab-agent";
/// File name of the multi-call workload program.
pub const WORKLOAD_NAME: &str = "rsslab-workload";

/// Modules a run with a scratch disk needs, besides its file system (built-ins are skipped).
const DISK_MODULES: &[&str] = &["virtio_pci", "virtio_blk"];
/// Directories every image has.
const DIRS: &[(&str, u32)] = &[
    ("/dev", 0o755),
    ("/proc", 0o555),
    ("/sys", 0o555),
    ("/tmp", 0o1777),
    ("/run", 0o755),
    ("/scratch", 0o755),
    ("/bin", 0o755),
    ("/rsslab", 0o755),
    ("/rsslab/modules", 0o755),
];

/// The static guest programs that go into every image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestBinaries {
    /// The agent, `/init` in the guest.
    pub agent: PathBuf,
    /// The multi-call workload program, `/bin/rsslab-workload`.
    pub workload: PathBuf,
    /// Built Go programs by build; an image holds the ones its spec's processes run.
    pub go_programs: BTreeMap<GoBuild, PathBuf>,
}

/// What QEMU boots for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// The kernel (`-kernel`).
    pub kernel: PathBuf,
    /// The initramfs (`-initrd`), `images/<digest>.cpio.gz` in the cache.
    pub initrd: PathBuf,
    /// sha256 of the uncompressed cpio archive.
    pub digest: String,
    /// The spec the agent is sent (with `modules` filled in: the image holds those files).
    pub spec: RunSpec,
}

/// Finds the guest binaries: in `$RSSLAB_GUEST_BIN_DIR`, else in
/// `<target dir>/x86_64-unknown-linux-gnu/guest/` (target dir: `$CARGO_TARGET_DIR` or the
/// workspace's `target/`), and checks that each is a statically linked x86-64 ELF program.
pub fn locate_guest_binaries() -> Result<GuestBinaries> {
    let dir = guest_bin_dir();
    let agent = dir.join(AGENT_NAME);
    let workload = dir.join(WORKLOAD_NAME);
    for path in [&agent, &workload] {
        check_guest_binary(path)?;
    }
    Ok(GuestBinaries {
        agent,
        workload,
        go_programs: Default::default(),
    })
}

fn guest_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(GUEST_BIN_DIR_ENV).filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target"),
    };
    target.join("x86_64-unknown-linux-gnu").join("guest")
}

/// A guest binary must exist and be a static x86-64 ELF program (the initramfs has no libc).
fn check_guest_binary(path: &Path) -> Result<()> {
    if !path.is_file() {
        bail!(
            "guest binary {} is missing: run `just guest` to build the guest agent and workloads \
             (or set {GUEST_BIN_DIR_ENV} to the directory that holds {AGENT_NAME} and {WORKLOAD_NAME})",
            path.display()
        );
    }
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let machine =
        elf::elf_machine(&data).with_context(|| format!("guest binary {}", path.display()))?;
    if machine != goblin::elf::header::EM_X86_64 {
        bail!(
            "guest binary {} is not an x86-64 program (ELF machine {machine})",
            path.display()
        );
    }
    if elf::has_interpreter(&data).with_context(|| format!("guest binary {}", path.display()))? {
        bail!(
            "guest binary {} is dynamically linked (it has a PT_INTERP program header), but the \
             guest has no libc: build it statically with `just guest`",
            path.display()
        );
    }
    Ok(())
}

/// A spec with no processes (the KVM probe's).
pub fn empty_spec(run_id: &str) -> RunSpec {
    RunSpec {
        run_id: run_id.to_owned(),
        sample_every: Millis(100),
        duration: Millis(0),
        until: None,
        sysctl: BTreeMap::new(),
        sysfs: BTreeMap::new(),
        cgroup: None,
        node: None,
        modules: Vec::new(),
        disk: None,
        processes: Vec::new(),
    }
}

/// Builds (or reuses from the cache) the initramfs for `spec` on `kernel`.
///
/// Modules: with a scratch disk, `virtio_pci`, `virtio_blk` and the disk's file system, plus
/// any module names already in `spec.modules`; all resolved with their dependencies (built-ins
/// skipped) and written to `/rsslab/modules/`, their file names in load order replacing
/// `spec.modules` in the returned [`Image::spec`].
pub fn build_image(
    cache: &Cache,
    kernel: &KernelFiles,
    spec: &RunSpec,
    bins: &GuestBinaries,
) -> Result<Image> {
    let mut spec = spec.clone();
    let wanted = wanted_modules(&spec);
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let modules = resolve_modules(kernel, &wanted)?;
    spec.modules = modules
        .iter()
        .map(|module| module.file_name.clone())
        .collect();

    let agent =
        fs::read(&bins.agent).with_context(|| format!("reading {}", bins.agent.display()))?;
    let workload =
        fs::read(&bins.workload).with_context(|| format!("reading {}", bins.workload.display()))?;
    let go_programs = go_programs_of(&spec, bins)?;
    let user_files = user_files_of(&spec, bins)?;
    let mount = spec.disk.as_ref().map(|disk| disk.mount.as_str());
    let contents = ImageContents {
        agent: &agent,
        workload: &workload,
        go_programs: &go_programs,
        user_files: &user_files,
        mount,
        modules: &modules,
    };
    let cpio = write_cpio(&contents).context("writing the initramfs")?;

    let digest = hex::encode(Sha256::digest(&cpio));
    let initrd = cache.image_path(&digest);
    if !initrd.is_file() {
        cache.images_dir()?;
        write_atomic_with(&initrd, |file| {
            let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            encoder.write_all(&cpio)?;
            encoder.finish()?;
            Ok(())
        })
        .with_context(|| format!("writing {}", initrd.display()))?;
    }
    Ok(Image {
        kernel: kernel.boot_image().to_owned(),
        initrd,
        digest,
        spec,
    })
}

/// The built-in Go workloads `spec`'s processes run (static programs in `/bin`), read from
/// `bins.go_programs`, sorted by path.
fn go_programs_of(spec: &RunSpec, bins: &GuestBinaries) -> Result<Vec<(String, Vec<u8>)>> {
    let mut programs: BTreeMap<String, &Path> = BTreeMap::new();
    for process in &spec.processes {
        let Some(build) = GoBuild::of(process).filter(|build| !build.user) else {
            continue;
        };
        let host = bins.go_programs.get(&build).with_context(|| {
            format!(
                "the Go program {} was not built (no toolchain prepared for it)",
                process.program()
            )
        })?;
        programs.insert(process.program(), host);
    }
    programs
        .into_iter()
        .map(|(path, host)| {
            check_guest_binary(host)?;
            let data = fs::read(host).with_context(|| format!("reading {}", host.display()))?;
            Ok((path, data))
        })
        .collect()
}

/// What the user programs of `spec` bring (`exec` and `go-source`: their files, the program,
/// its libraries), every guest path once.
fn user_files_of(spec: &RunSpec, bins: &GuestBinaries) -> Result<Vec<GuestEntry>> {
    let mut entries: BTreeMap<String, GuestEntry> = BTreeMap::new();
    for process in &spec.processes {
        let Some(io) = process.workload.program_io() else {
            continue;
        };
        let guest = process.program();
        let host = match GoBuild::of(process) {
            Some(build) => bins.go_programs.get(&build).cloned().with_context(|| {
                format!("the Go program {guest} of {} was not built", process.name)
            })?,
            None => program_host(io.files, &guest),
        };
        let files = resolve_guest_files(io.files, Some((&guest, &host)))
            .with_context(|| format!("the files of process {}", process.name))?;
        for entry in files.entries {
            entries.entry(entry.guest.clone()).or_insert(entry);
        }
    }
    Ok(entries.into_values().collect())
}

/// Module names the run needs, without duplicates, in order.
fn wanted_modules(spec: &RunSpec) -> Vec<String> {
    let mut wanted: Vec<String> = Vec::new();
    if let Some(disk) = &spec.disk {
        wanted.extend(DISK_MODULES.iter().map(|name| (*name).to_owned()));
        wanted.push(disk.fstype.clone());
    }
    for module in &spec.modules {
        let name = module.strip_suffix(".ko").unwrap_or(module);
        wanted.push(name.to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    wanted.retain(|name| seen.insert(crate::supply::modules::normalise(name)));
    wanted
}

/// Everything that goes into one image.
struct ImageContents<'a> {
    agent: &'a [u8],
    workload: &'a [u8],
    /// Go programs: guest path, contents.
    go_programs: &'a [(String, Vec<u8>)],
    /// What user programs bring, read from the host as the archive is written.
    user_files: &'a [GuestEntry],
    mount: Option<&'a str>,
    modules: &'a [crate::supply::modules::ModuleBlob],
}

/// The uncompressed cpio archive, entries in a fixed order.
fn write_cpio(contents: &ImageContents) -> Result<Vec<u8>> {
    let mut cpio = CpioWriter::new(Vec::new());
    let mut dirs: Vec<String> = Vec::new();
    for (dir, mode) in DIRS {
        cpio.dir(dir, *mode)?;
        dirs.push((*dir).to_owned());
    }
    if let Some(mount) = contents.mount {
        add_missing_dirs(&mut cpio, &mut dirs, mount)?;
    }
    cpio.char_device("/dev/console", 0o600, 5, 1)?;
    cpio.file("/init", 0o755, contents.agent)?;
    cpio.file(
        &format!("{BIN_DIR}/{WORKLOAD_NAME}"),
        0o755,
        contents.workload,
    )?;
    for name in WORKLOAD_NAMES {
        if !is_go_workload_name(name) {
            cpio.symlink(&format!("{BIN_DIR}/{name}"), WORKLOAD_NAME)?;
        }
    }
    for (path, data) in contents.go_programs {
        cpio.file(path, 0o755, data)?;
    }
    for entry in contents.user_files {
        if let Some((parent, _)) = entry.guest.rsplit_once('/') {
            add_missing_dirs(&mut cpio, &mut dirs, parent)?;
        }
        match &entry.kind {
            EntryKind::Dir => add_missing_dirs(&mut cpio, &mut dirs, &entry.guest)?,
            EntryKind::Symlink { target } => cpio.symlink(&entry.guest, target)?,
            EntryKind::File { mode, .. } => {
                let data = fs::read(&entry.host)
                    .with_context(|| format!("reading {}", entry.host.display()))?;
                cpio.file(&entry.guest, *mode, &data)?;
            }
        }
    }
    for module in contents.modules {
        cpio.file(
            &format!("{MODULES_DIR}/{}", module.file_name),
            0o644,
            &module.data,
        )?;
    }
    Ok(cpio.finish()?)
}

/// Adds `path` and its missing ancestors as directories.
fn add_missing_dirs(
    cpio: &mut CpioWriter<Vec<u8>>,
    dirs: &mut Vec<String>,
    path: &str,
) -> Result<()> {
    let mut current = String::new();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        current.push('/');
        current.push_str(part);
        if !dirs.contains(&current) {
            cpio.dir(&current, 0o755)?;
            dirs.push(current.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use rsslab_wire::{DiskMount, Millis};

    use super::*;
    use crate::image::cpio::tests::read_cpio;
    use crate::supply::modules::tests::{elf_with_sections, fake_modules_dir};

    fn spec(disk: bool) -> RunSpec {
        RunSpec {
            run_id: "demo/1.0".into(),
            sample_every: Millis(250),
            duration: Millis::secs(10),
            until: None,
            sysctl: BTreeMap::new(),
            sysfs: BTreeMap::new(),
            cgroup: None,
            node: None,
            modules: vec![],
            disk: disk.then(|| DiskMount {
                device: "/dev/vda".into(),
                mount: "/scratch".into(),
                fstype: "ext4".into(),
            }),
            processes: vec![],
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        cache: Cache,
        kernel: KernelFiles,
        bins: GuestBinaries,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let kernel = fake_modules_dir(
            dir.path(),
            &[
                ("drivers/virtio/virtio.ko.xz", "virtio", &[]),
                ("drivers/virtio/virtio_ring.ko.xz", "virtio_ring", &[]),
                (
                    "drivers/virtio/virtio_pci.ko.xz",
                    "virtio_pci",
                    &["virtio_ring", "virtio"],
                ),
                (
                    "drivers/block/virtio_blk.ko.xz",
                    "virtio_blk",
                    &["virtio", "virtio_ring"],
                ),
            ],
            &["kernel/fs/ext4/ext4.ko"],
        );
        let bins = GuestBinaries {
            agent: dir.path().join("agent"),
            workload: dir.path().join("workload"),
            go_programs: Default::default(),
        };
        fs::write(&bins.agent, b"agent binary").unwrap();
        fs::write(&bins.workload, b"workload binary").unwrap();
        let cache = Cache::at(dir.path().join("cache"));
        Fixture {
            _dir: dir,
            cache,
            kernel,
            bins,
        }
    }

    fn entries_of(image: &Image) -> Vec<crate::image::cpio::tests::Entry> {
        let mut cpio = Vec::new();
        flate2::read::GzDecoder::new(fs::File::open(&image.initrd).unwrap())
            .read_to_end(&mut cpio)
            .unwrap();
        assert_eq!(hex::encode(Sha256::digest(&cpio)), image.digest);
        read_cpio(&cpio)
    }

    #[test]
    fn an_image_without_disk_has_the_agent_and_workloads_and_no_spec() {
        let f = fixture();
        let image = build_image(&f.cache, &f.kernel, &spec(false), &f.bins).unwrap();
        assert!(image.spec.modules.is_empty());
        assert_eq!(image.kernel, f.kernel.boot_image());
        assert_eq!(image.initrd, f.cache.image_path(&image.digest));
        let entries = entries_of(&image);
        let by_name: BTreeMap<&str, &crate::image::cpio::tests::Entry> =
            entries.iter().map(|e| (e.name.as_str(), e)).collect();
        for dir in [
            "dev",
            "proc",
            "sys",
            "tmp",
            "run",
            "scratch",
            "bin",
            "rsslab",
            "rsslab/modules",
        ] {
            assert_eq!(by_name[dir].mode & 0o170000, 0o040000, "{dir}");
        }
        assert_eq!(
            (by_name["dev/console"].mode, by_name["dev/console"].rdev),
            (0o020600, (5, 1))
        );
        assert_eq!(
            (by_name["init"].mode, by_name["init"].data.as_slice()),
            (0o100755, &b"agent binary"[..])
        );
        assert_eq!(by_name["bin/rsslab-workload"].data, b"workload binary");
        for name in WORKLOAD_NAMES
            .iter()
            .filter(|name| !is_go_workload_name(name))
        {
            let link = by_name[format!("bin/{name}").as_str()];
            assert_eq!(
                (link.mode, link.data.as_slice()),
                (0o120777, &b"rsslab-workload"[..])
            );
        }
        assert!(
            !entries.iter().any(|e| e.name.ends_with(".json")),
            "the spec goes over the channel"
        );
        // Runs that differ only in what the spec says share the image.
        let mut other_run = spec(false);
        other_run.run_id = "another-run".into();
        other_run.duration = Millis(other_run.duration.0 + 5000);
        let shared = build_image(&f.cache, &f.kernel, &other_run, &f.bins).unwrap();
        assert_eq!(shared.digest, image.digest);
        assert_eq!(shared.spec, other_run);
        assert!(
            !entries
                .iter()
                .any(|e| e.name.starts_with("rsslab/modules/"))
        );
    }

    #[test]
    fn a_disk_brings_its_modules_in_load_order_and_images_are_cached_by_digest() {
        let f = fixture();
        let image = build_image(&f.cache, &f.kernel, &spec(true), &f.bins).unwrap();
        assert_eq!(
            image.spec.modules,
            [
                "virtio_ring.ko",
                "virtio.ko",
                "virtio_pci.ko",
                "virtio_blk.ko"
            ]
        );
        let entries = entries_of(&image);
        let modules: Vec<_> = entries
            .iter()
            .filter_map(|e| e.name.strip_prefix("rsslab/modules/"))
            .collect();
        assert_eq!(
            modules,
            [
                "virtio_ring.ko",
                "virtio.ko",
                "virtio_pci.ko",
                "virtio_blk.ko"
            ]
        );
        let blk = entries
            .iter()
            .find(|e| e.name == "rsslab/modules/virtio_blk.ko")
            .unwrap();
        assert_eq!(&blk.data[..4], b"\x7fELF", "modules are decompressed");

        // Same input: same digest, and the cached file is reused (not rewritten).
        let modified = fs::metadata(&image.initrd).unwrap().modified().unwrap();
        let again = build_image(&f.cache, &f.kernel, &image.spec, &f.bins).unwrap();
        assert_eq!(again, image);
        assert_eq!(
            fs::metadata(&again.initrd).unwrap().modified().unwrap(),
            modified
        );
        let other = build_image(&f.cache, &f.kernel, &spec(false), &f.bins).unwrap();
        assert_ne!(other.digest, image.digest);
    }

    #[test]
    fn guest_binaries_must_be_static_x86_64_programs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rsslab-agent");
        let error = format!("{:#}", check_guest_binary(&path).unwrap_err());
        assert!(error.contains("just guest"), "{error}");
        fs::write(&path, elf_with_sections(&[], &[1, 3])).unwrap();
        let error = format!("{:#}", check_guest_binary(&path).unwrap_err());
        assert!(error.contains("dynamically linked"), "{error}");
        fs::write(&path, elf_with_sections(&[], &[1, 2])).unwrap();
        check_guest_binary(&path).unwrap();
        fs::write(&path, b"#!/bin/sh\n").unwrap();
        let error = format!("{:#}", check_guest_binary(&path).unwrap_err());
        assert!(error.contains("not an ELF file"), "{error}");
    }

    #[test]
    fn wanted_modules_follow_the_disk_and_the_spec() {
        assert!(wanted_modules(&spec(false)).is_empty());
        let mut with_disk = spec(true);
        with_disk.modules = vec!["virtio_blk.ko".into(), "loop".into()];
        assert_eq!(
            wanted_modules(&with_disk),
            ["virtio_pci", "virtio_blk", "ext4", "loop"]
        );
    }
}
