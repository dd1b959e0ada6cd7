//! Kernel modules for the guest, with their dependencies, in load order.
//!
//! Debian's kernel packages carry no `modules.dep` (depmod runs at install time), so
//! dependencies are read from each module's ELF `.modinfo` section (`depends=a,b`). Modules
//! listed in `modules.builtin` are part of the kernel image and skipped (ext4 on every
//! catalogue kernel; virtio_pci from 6.12 on). 6.12+ ships modules xz-compressed; blobs are
//! returned decompressed, ready for `init_module`.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

use crate::supply::kernel::KernelFiles;

/// One module to load in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleBlob {
    /// Normalised module name (`virtio_blk`).
    pub name: String,
    /// File name inside the image (`virtio_blk.ko`, always uncompressed).
    pub file_name: String,
    /// The uncompressed ELF object.
    pub data: Vec<u8>,
}

/// Resolves `wanted` modules and their dependencies on this kernel: dependencies first, each
/// once, built-in modules skipped. Names may use `-` or `_`.
pub fn resolve_modules(files: &KernelFiles, wanted: &[&str]) -> Result<Vec<ModuleBlob>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let dir = &files.modules_dir;
    let builtin = read_builtin(dir)?;
    let index = index_module_files(&dir.join("kernel"))?;
    let mut load = |name: &str| -> Result<Option<ModuleBlob>> {
        if builtin.contains(name) || (files.assume_builtin && !index.contains_key(name)) {
            return Ok(None);
        }
        let path = index.get(name).ok_or_else(|| {
            anyhow!(
                "kernel {}: module {name} is neither under {} nor in modules.builtin",
                files.release,
                dir.join("kernel").display()
            )
        })?;
        read_module(path, name).map(Some)
    };
    order_modules(wanted, &mut load)
        .with_context(|| format!("resolving modules {wanted:?} for kernel {}", files.release))
}

/// Module names normalise `-` to `_` (as modprobe does).
pub fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

/// The module name of a file name: `virtio-blk.ko.xz` -> `virtio_blk`; `None` if not a module.
fn module_name_of(file_name: &str) -> Option<String> {
    [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
        .iter()
        .find_map(|suffix| file_name.strip_suffix(suffix))
        .map(normalise)
}

/// Names of built-in modules from `modules.builtin` (empty if the file is missing).
fn read_builtin(modules_dir: &Path) -> Result<HashSet<String>> {
    let path = modules_dir.join("modules.builtin");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            tracing::warn!(
                "{} is missing: assuming no built-in modules",
                path.display()
            );
            return Ok(HashSet::new());
        }
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter_map(|line| module_name_of(line.trim().rsplit('/').next()?))
        .collect())
}

/// Every module file under `kernel_dir`, by normalised name.
fn index_module_files(kernel_dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let mut index = BTreeMap::new();
    let mut pending = vec![kernel_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                pending.push(path);
            } else if let Some(name) = entry.file_name().to_str().and_then(module_name_of) {
                index.insert(name, path);
            }
        }
    }
    Ok(index)
}

/// Reads (and decompresses) a module file.
fn read_module(path: &Path, name: &str) -> Result<ModuleBlob> {
    let raw = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let data = if file_name.ends_with(".ko.xz") {
        let mut data = Vec::with_capacity(raw.len() * 3);
        liblzma::read::XzDecoder::new_multi_decoder(raw.as_slice())
            .read_to_end(&mut data)
            .with_context(|| format!("decompressing {}", path.display()))?;
        data
    } else if file_name.ends_with(".ko.gz") {
        let mut data = Vec::with_capacity(raw.len() * 3);
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut data)
            .with_context(|| format!("decompressing {}", path.display()))?;
        data
    } else if file_name.ends_with(".ko.zst") {
        bail!(
            "{}: zstd-compressed modules are not supported (no catalogue kernel uses them)",
            path.display()
        );
    } else {
        raw
    };
    Ok(ModuleBlob {
        name: name.to_owned(),
        file_name: format!("{name}.ko"),
        data,
    })
}

/// Orders `wanted` and their dependencies (read from each blob's `.modinfo`) so that every
/// module follows its dependencies. `load` returns `None` for a built-in module.
fn order_modules(
    wanted: &[&str],
    load: &mut dyn FnMut(&str) -> Result<Option<ModuleBlob>>,
) -> Result<Vec<ModuleBlob>> {
    let mut ordered = Vec::new();
    let mut done = HashSet::new();
    let mut visiting = Vec::new();
    for name in wanted {
        visit(
            &normalise(name),
            load,
            &mut ordered,
            &mut done,
            &mut visiting,
        )?;
    }
    Ok(ordered)
}

fn visit(
    name: &str,
    load: &mut dyn FnMut(&str) -> Result<Option<ModuleBlob>>,
    ordered: &mut Vec<ModuleBlob>,
    done: &mut HashSet<String>,
    visiting: &mut Vec<String>,
) -> Result<()> {
    if done.contains(name) {
        return Ok(());
    }
    if visiting.iter().any(|seen| seen == name) {
        bail!(
            "circular module dependency: {} -> {name}",
            visiting.join(" -> ")
        );
    }
    let Some(blob) = load(name)? else {
        done.insert(name.to_owned());
        return Ok(());
    };
    let depends =
        modinfo_depends(&blob.data).with_context(|| format!("module {name}: reading .modinfo"))?;
    visiting.push(name.to_owned());
    for dependency in depends {
        visit(&dependency, load, ordered, done, visiting)
            .with_context(|| format!("dependency of {name}"))?;
    }
    visiting.pop();
    done.insert(name.to_owned());
    ordered.push(blob);
    Ok(())
}

/// The `depends=` list of a module's `.modinfo` (normalised names; empty if none).
pub fn modinfo_depends(module: &[u8]) -> Result<Vec<String>> {
    let modinfo =
        crate::elf::section(module, ".modinfo")?.ok_or_else(|| anyhow!("no .modinfo section"))?;
    Ok(parse_modinfo(modinfo)
        .into_iter()
        .filter(|(key, _)| key == "depends")
        .flat_map(|(_, value)| {
            value
                .split(',')
                .filter(|d| !d.is_empty())
                .map(normalise)
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Splits a `.modinfo` section into its NUL-separated `key=value` strings.
pub fn parse_modinfo(section: &[u8]) -> Vec<(String, String)> {
    section
        .split(|&byte| byte == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let text = String::from_utf8_lossy(entry);
            let (key, value) = text.split_once('=')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 relocatable object with a `.modinfo` section, like a kernel module.
    pub(crate) fn synthetic_module(name: &str, depends: &[&str]) -> Vec<u8> {
        let modinfo = format!(
            "license=GPL\0depends={}\0name={name}\0vermagic=test\0",
            depends.join(",")
        );
        elf_with_sections(&[(".modinfo", modinfo.as_bytes()), (".text", b"\xc3")], &[])
    }

    /// An ELF64 file with the given sections and program header types.
    pub(crate) fn elf_with_sections(
        sections: &[(&str, &[u8])],
        program_headers: &[u32],
    ) -> Vec<u8> {
        let mut names = vec![0u8];
        let mut name_offsets = Vec::new();
        for (name, _) in sections.iter().copied().chain([(".shstrtab", &b""[..])]) {
            name_offsets.push(names.len() as u32);
            names.extend_from_slice(name.as_bytes());
            names.push(0);
        }
        let mut file = vec![0u8; 64];
        file[..4].copy_from_slice(b"\x7fELF");
        file[4] = 2; // 64-bit
        file[5] = 1; // little-endian
        file[6] = 1;
        file[0x12..0x14].copy_from_slice(&goblin::elf::header::EM_X86_64.to_le_bytes());
        let phoff = file.len();
        for kind in program_headers {
            let mut header = [0u8; 56];
            header[..4].copy_from_slice(&kind.to_le_bytes());
            file.extend_from_slice(&header);
        }
        let mut placed = Vec::new();
        for (_, data) in sections
            .iter()
            .copied()
            .chain([(".shstrtab", names.as_slice())])
        {
            placed.push((file.len(), data.len()));
            file.extend_from_slice(data);
        }
        let shoff = file.len();
        file.extend_from_slice(&[0u8; 64]); // the null section
        for (index, (offset, size)) in placed.iter().enumerate() {
            let mut header = [0u8; 64];
            header[..4].copy_from_slice(&name_offsets[index].to_le_bytes());
            header[4..8].copy_from_slice(&1u32.to_le_bytes()); // SHT_PROGBITS
            header[24..32].copy_from_slice(&(*offset as u64).to_le_bytes());
            header[32..40].copy_from_slice(&(*size as u64).to_le_bytes());
            file.extend_from_slice(&header);
        }
        file[0x20..0x28].copy_from_slice(&(phoff as u64).to_le_bytes());
        file[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        file[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        file[0x38..0x3a].copy_from_slice(&(program_headers.len() as u16).to_le_bytes());
        file[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        file[0x3c..0x3e].copy_from_slice(&(placed.len() as u16 + 1).to_le_bytes());
        file[0x3e..0x40].copy_from_slice(&(placed.len() as u16).to_le_bytes());
        file
    }

    /// A modules directory with `(relative path, module name, depends)` modules and built-ins.
    pub(crate) fn fake_modules_dir(
        root: &Path,
        modules: &[(&str, &str, &[&str])],
        builtin: &[&str],
    ) -> KernelFiles {
        let modules_dir = root.join("lib/modules/1.0-test");
        for (relative, name, depends) in modules {
            let path = modules_dir.join("kernel").join(relative);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let data = synthetic_module(name, depends);
            if relative.ends_with(".xz") {
                let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
                std::io::Write::write_all(&mut encoder, &data).unwrap();
                fs::write(&path, encoder.finish().unwrap()).unwrap();
            } else {
                fs::write(&path, data).unwrap();
            }
        }
        fs::create_dir_all(&modules_dir).unwrap();
        let builtin: String = builtin.iter().map(|path| format!("{path}\n")).collect();
        fs::write(modules_dir.join("modules.builtin"), builtin).unwrap();
        KernelFiles {
            vmlinuz: root.join("vmlinuz"),
            vmlinux: None,
            modules_dir,
            release: "1.0-test".into(),
            config: None,
            assume_builtin: false,
        }
    }

    #[test]
    fn parses_modinfo_strings() {
        let section = b"license=GPL\0depends=virtio,virtio_ring\0\0\0name=virtio_blk\0odd\0";
        let parsed = parse_modinfo(section);
        assert_eq!(
            parsed[1],
            ("depends".to_owned(), "virtio,virtio_ring".to_owned())
        );
        assert_eq!(parsed.len(), 3);
        let module = synthetic_module("virtio_blk", &["virtio", "virtio-ring"]);
        assert_eq!(modinfo_depends(&module).unwrap(), ["virtio", "virtio_ring"]);
        assert!(
            modinfo_depends(&synthetic_module("virtio", &[]))
                .unwrap()
                .is_empty()
        );
        assert!(modinfo_depends(b"not elf").is_err());
    }

    #[test]
    fn finds_program_interpreters() {
        assert!(crate::elf::has_interpreter(&elf_with_sections(&[], &[6, 3, 1])).unwrap());
        assert!(!crate::elf::has_interpreter(&elf_with_sections(&[], &[6, 1, 2])).unwrap());
        assert!(crate::elf::has_interpreter(b"\x7fELF\x01\x01").is_err());
        assert!(
            crate::elf::section(&elf_with_sections(&[(".a", b"x")], &[]), ".b")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn orders_dependencies_first_without_duplicates_and_skips_builtins() {
        let root = tempfile::tempdir().unwrap();
        let files = fake_modules_dir(
            root.path(),
            &[
                ("drivers/virtio/virtio.ko", "virtio", &[]),
                ("drivers/virtio/virtio_ring.ko.xz", "virtio_ring", &[]),
                (
                    "drivers/virtio/virtio_pci.ko",
                    "virtio_pci",
                    &["virtio_ring", "virtio"],
                ),
                (
                    "drivers/block/virtio_blk.ko.xz",
                    "virtio_blk",
                    &["virtio", "virtio_ring", "crc32"],
                ),
                ("lib/crc32.ko", "crc32", &[]),
            ],
            &["kernel/fs/ext4/ext4.ko", "kernel/lib/crc32.ko"],
        );
        let blobs = resolve_modules(&files, &["virtio-pci", "virtio_blk", "ext4"]).unwrap();
        let names: Vec<_> = blobs.iter().map(|b| b.file_name.as_str()).collect();
        assert_eq!(
            names,
            [
                "virtio_ring.ko",
                "virtio.ko",
                "virtio_pci.ko",
                "virtio_blk.ko"
            ]
        );
        assert_eq!(
            blobs[0].data,
            synthetic_module("virtio_ring", &[]),
            "decompressed"
        );
        assert!(resolve_modules(&files, &[]).unwrap().is_empty());

        let error = format!("{:#}", resolve_modules(&files, &["nope"]).unwrap_err());
        assert!(error.contains("module nope is neither under"), "{error}");
    }

    #[test]
    fn detects_dependency_cycles() {
        let blobs: BTreeMap<&str, Vec<u8>> = [
            ("a", synthetic_module("a", &["b"])),
            ("b", synthetic_module("b", &["a"])),
        ]
        .into();
        let mut load = |name: &str| -> Result<Option<ModuleBlob>> {
            Ok(Some(ModuleBlob {
                name: name.into(),
                file_name: format!("{name}.ko"),
                data: blobs[name].clone(),
            }))
        };
        let error = format!("{:#}", order_modules(&["a"], &mut load).unwrap_err());
        assert!(
            error.contains("circular module dependency: a -> b -> a"),
            "{error}"
        );
    }
}
