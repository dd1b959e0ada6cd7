//! The real catalogue kernels: fetched from the host's Debian archive (network on a cold
//! cache; the user's cache, so only once), unpacked, checked against their catalogue facts, and
//! the scratch-disk modules resolved in load order.
//!
//! On a machine without the archive, `cargo nextest run --profile offline` leaves them out.

use std::collections::BTreeMap;
use std::fs;
use std::time::Instant;

use rsslab::catalogue::facts::facts_from_config;
use rsslab::catalogue::{Kernel, default_catalogue_path, load_catalogue};
use rsslab::image::{GuestBinaries, build_image};
use rsslab::supply::cache::Cache;
use rsslab::supply::kernel::{KernelFiles, prepare_kernel};
use rsslab::supply::modules::{modinfo_depends, resolve_modules};
use rsslab_wire::{DiskMount, Millis, RunSpec};

fn prepare(id: &str) -> (Kernel, KernelFiles) {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let catalogue = load_catalogue(&default_catalogue_path()).unwrap();
    let kernel = catalogue.get(id).unwrap().clone();
    let cache = Cache::default_location().unwrap();
    let base_url = rsslab::supply::fetch::archive_base_url().unwrap();
    let started = Instant::now();
    let files = prepare_kernel(&cache, &base_url, &kernel).unwrap();
    eprintln!(
        "prepare_kernel({id}) took {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    assert_eq!(prepare_kernel(&cache, &base_url, &kernel).unwrap(), files);
    eprintln!(
        "warm prepare_kernel({id}) took {:.3}s",
        started.elapsed().as_secs_f64()
    );
    (kernel, files)
}

/// `CONFIG_X` values of the kernel's config (`y`, `m`, or absent).
fn config(files: &KernelFiles) -> BTreeMap<String, String> {
    let path = files
        .config
        .as_ref()
        .expect("every catalogue kernel ships its config");
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

fn check_kernel(id: &str, expected_disk_modules: &[&str]) {
    let (kernel, files) = prepare(id);
    assert_eq!(files.release, kernel.release);
    let image = fs::read(&files.vmlinuz).unwrap();
    assert_eq!(
        &image[0x202..0x206],
        b"HdrS",
        "{} is a bzImage",
        files.vmlinuz.display()
    );
    // Its payload unpacks to the ELF kernel with a PVH entry, which is what QEMU boots.
    let vmlinux = files
        .vmlinux
        .as_ref()
        .unwrap_or_else(|| panic!("{id}: no PVH vmlinux extracted from the bzImage"));
    let elf = fs::read(vmlinux).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "{id}");
    assert!(
        elf.len() > 2 * image.len(),
        "{id}: the vmlinux ({} bytes) is the unpacked payload of the {}-byte bzImage",
        elf.len(),
        image.len()
    );
    assert_eq!(files.boot_image(), vmlinux.as_path());

    // The catalogue's facts agree with the kernel's config.
    let config = config(&files);
    let set = |key: &str| config.get(key).is_some_and(|value| value == "y");
    let facts = kernel.facts;
    assert_eq!(facts.mglru, set("CONFIG_LRU_GEN"), "{id}: mglru");
    assert_eq!(
        facts.mglru_default,
        set("CONFIG_LRU_GEN_ENABLED"),
        "{id}: mglru_default"
    );
    let v1 = set("CONFIG_MEMCG")
        && (set("CONFIG_MEMCG_V1") || !config_mentions(&files, "CONFIG_MEMCG_V1"));
    assert_eq!(facts.cgroup_v1_memory, v1, "{id}: cgroup_v1_memory");
    assert!(
        set("CONFIG_ADVISE_SYSCALLS") && facts.madv_free,
        "{id}: madv_free"
    );
    // And every fact `vm-images/kernels.toml` writes is the one its config gives.
    let text = fs::read_to_string(files.config.as_ref().unwrap()).unwrap();
    assert_eq!(
        facts_from_config(&text, &kernel.release),
        kernel.facts,
        "{id}: the facts of its config (left) differ from the catalogue's (right)"
    );

    // The scratch disk's modules, dependencies first; built-ins (ext4, ...) skipped.
    let modules = resolve_modules(&files, &["virtio_pci", "virtio_blk", "ext4"]).unwrap();
    let names: Vec<&str> = modules.iter().map(|m| m.file_name.as_str()).collect();
    eprintln!("{id}: disk modules {names:?}");
    assert_eq!(names, expected_disk_modules, "{id}");
    for (index, module) in modules.iter().enumerate() {
        assert_eq!(
            &module.data[..4],
            b"\x7fELF",
            "{} is decompressed",
            module.name
        );
        for dependency in modinfo_depends(&module.data).unwrap() {
            let at = modules
                .iter()
                .position(|m| m.name == dependency)
                .expect("dependency resolved");
            assert!(
                at < index,
                "{id}: {dependency} must load before {}",
                module.name
            );
        }
    }

    // And the same through the image builder (fake guest binaries suffice here).
    let dir = tempfile::tempdir().unwrap();
    let bins = GuestBinaries {
        agent: dir.path().join("agent"),
        workload: dir.path().join("workload"),
        go_programs: Default::default(),
    };
    fs::write(&bins.agent, b"agent").unwrap();
    fs::write(&bins.workload, b"workload").unwrap();
    let spec = RunSpec {
        run_id: format!("image-test/{id}"),
        sample_every: Millis(250),
        duration: Millis::secs(1),
        until: None,
        sysctl: BTreeMap::new(),
        sysfs: BTreeMap::new(),
        cgroup: None,
        node: None,
        modules: vec![],
        disk: Some(DiskMount {
            device: "/dev/vda".into(),
            mount: "/scratch".into(),
            fstype: "ext4".into(),
        }),
        processes: vec![],
    };
    let built = build_image(&Cache::at(dir.path().join("cache")), &files, &spec, &bins).unwrap();
    assert_eq!(built.spec.modules, expected_disk_modules);
    assert_eq!(built.kernel, files.boot_image());
}

fn config_mentions(files: &KernelFiles, key: &str) -> bool {
    fs::read_to_string(files.config.as_ref().unwrap())
        .unwrap()
        .contains(key)
}

#[test]
fn kernel_5_10() {
    check_kernel(
        "5.10",
        &[
            "virtio_ring.ko",
            "virtio.ko",
            "virtio_pci.ko",
            "virtio_blk.ko",
        ],
    );
}

#[test]
fn kernel_6_1() {
    check_kernel(
        "6.1",
        &[
            "virtio_ring.ko",
            "virtio_pci_modern_dev.ko",
            "virtio_pci_legacy_dev.ko",
            "virtio.ko",
            "virtio_pci.ko",
            "virtio_blk.ko",
        ],
    );
}

#[test]
fn kernel_6_12() {
    check_kernel("6.12", &["virtio_blk.ko"]);
}

#[test]
fn kernel_7_2() {
    check_kernel("7.2", &["virtio_blk.ko"]);
}
