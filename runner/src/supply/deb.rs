//! Unpacking Debian packages in Rust, without dpkg: a `.deb` is an `ar` archive whose
//! `data.tar.{xz,gz}` member holds the files. Only the files are unpacked; maintainer scripts
//! (`control.tar.*`) are not run.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Unpacks the files of the `.deb` at `deb` under `dest` (created if missing).
///
/// Regular files, directories, symlinks and hard links are unpacked with their permissions
/// (not ownership); device nodes and FIFOs are skipped, as are paths that would leave `dest`.
pub fn unpack_deb(deb: &Path, dest: &Path) -> Result<()> {
    let file = File::open(deb).with_context(|| format!("opening {}", deb.display()))?;
    let mut archive = ar::Archive::new(BufReader::new(file));
    while let Some(entry) = archive.next_entry() {
        let entry = entry
            .with_context(|| format!("{}: not a Debian package (ar archive)", deb.display()))?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches('/')
            .to_owned();
        let Some(compression) = name.strip_prefix("data.tar") else {
            continue;
        };
        let tar = decompressor(compression, entry)
            .with_context(|| format!("{}: member {name}", deb.display()))?;
        return unpack_tar(tar, dest).with_context(|| {
            format!(
                "unpacking {} member {name} into {}",
                deb.display(),
                dest.display()
            )
        });
    }
    bail!(
        "{}: no data.tar member (not a Debian binary package?)",
        deb.display()
    )
}

/// A reader that decompresses a `data.tar<suffix>` member.
fn decompressor<'a>(suffix: &str, member: impl Read + 'a) -> Result<Box<dyn Read + 'a>> {
    Ok(match suffix {
        ".xz" => Box::new(liblzma::read::XzDecoder::new_multi_decoder(member)),
        ".gz" => Box::new(flate2::read::MultiGzDecoder::new(member)),
        "" => Box::new(member),
        other => bail!("unsupported compression data.tar{other} (supported: .xz, .gz, none)"),
    })
}

/// Unpacks a tar stream under `dest`, skipping device nodes and FIFOs.
fn unpack_tar(reader: impl Read, dest: &Path) -> Result<()> {
    std::fs::create_dir_all(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let kind = entry.header().entry_type();
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            continue;
        }
        let path = entry.path()?.into_owned();
        let unpacked = entry
            .unpack_in(dest)
            .with_context(|| format!("unpacking {}", path.display()))?;
        if !unpacked {
            tracing::warn!(
                "skipped {}: it would land outside {}",
                path.display(),
                dest.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs;
    use std::io::Write;

    use super::*;

    /// What goes into a test package's data.tar.
    pub(crate) enum TarItem<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8], u32),
        Symlink(&'a str, &'a str),
        CharDevice(&'a str),
    }

    /// A data.tar with `./`-prefixed paths as dpkg-deb writes them.
    pub(crate) fn data_tar(items: &[TarItem]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for item in items {
            let mut header = tar::Header::new_gnu();
            header.set_mtime(1_700_000_000);
            let (path, data): (&str, &[u8]) = match item {
                TarItem::Dir(path) => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(0o755);
                    (path, b"")
                }
                TarItem::File(path, data, mode) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    (path, data)
                }
                TarItem::Symlink(path, target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_link_name(target).unwrap();
                    header.set_mode(0o777);
                    (path, b"")
                }
                TarItem::CharDevice(path) => {
                    header.set_entry_type(tar::EntryType::Char);
                    header.set_device_major(1).unwrap();
                    header.set_device_minor(3).unwrap();
                    header.set_mode(0o666);
                    (path, b"")
                }
            };
            header.set_size(data.len() as u64);
            builder
                .append_data(&mut header, format!("./{path}"), data)
                .unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// A .deb (`debian-binary`, `control.tar.xz`, `data.tar.<compression>`) around `data_tar`.
    pub(crate) fn deb_bytes(data_tar: &[u8], compression: &str) -> Vec<u8> {
        let data = match compression {
            "xz" => {
                let mut encoder = liblzma::write::XzEncoder::new(Vec::new(), 1);
                encoder.write_all(data_tar).unwrap();
                encoder.finish().unwrap()
            }
            "gz" => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                encoder.write_all(data_tar).unwrap();
                encoder.finish().unwrap()
            }
            _ => data_tar.to_vec(),
        };
        let data_name = if compression.is_empty() {
            "data.tar".to_owned()
        } else {
            format!("data.tar.{compression}")
        };
        let mut control = liblzma::write::XzEncoder::new(Vec::new(), 1);
        control.write_all(&data_tar_of_control()).unwrap();
        let control = control.finish().unwrap();
        let mut builder = ar::Builder::new(Vec::new());
        for (name, content) in [
            ("debian-binary", b"2.0\n".to_vec()),
            ("control.tar.xz", control),
            (data_name.as_str(), data),
        ] {
            let header = ar::Header::new(name.as_bytes().to_vec(), content.len() as u64);
            builder.append(&header, content.as_slice()).unwrap();
        }
        builder.into_inner().unwrap()
    }

    /// Writes a .deb of `data_tar` as `<archive>/<pool>/<name>_1_amd64.deb` and returns its
    /// catalogue entry (version 1, size and sha256 of the file).
    pub(crate) fn publish_deb(
        archive: &std::path::Path,
        pool: &str,
        name: &str,
        data_tar: &[u8],
    ) -> crate::catalogue::KernelPackage {
        use sha2::{Digest, Sha256};
        let deb = deb_bytes(data_tar, "xz");
        let filename = format!("{pool}/{name}_1_amd64.deb");
        let path = archive.join(&filename);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &deb).unwrap();
        crate::catalogue::KernelPackage {
            name: name.into(),
            version: "1".into(),
            filename,
            size: deb.len() as u64,
            sha256: hex::encode(Sha256::digest(&deb)),
        }
    }

    fn data_tar_of_control() -> Vec<u8> {
        data_tar(&[TarItem::File("control", b"Package: test\n", 0o644)])
    }

    #[test]
    fn unpacks_files_dirs_and_symlinks_and_skips_devices() {
        use std::os::unix::fs::PermissionsExt;
        let tar = data_tar(&[
            TarItem::Dir("boot"),
            TarItem::File("boot/vmlinuz-1.0", b"kernel", 0o644),
            TarItem::Dir("bin"),
            TarItem::File("bin/tool", b"#!/bin/sh\n", 0o755),
            TarItem::Symlink("vmlinuz", "boot/vmlinuz-1.0"),
            TarItem::CharDevice("null"),
        ]);
        for compression in ["xz", "gz", ""] {
            let dir = tempfile::tempdir().unwrap();
            let deb = dir.path().join("test.deb");
            fs::write(&deb, deb_bytes(&tar, compression)).unwrap();
            let dest = dir.path().join("out");
            unpack_deb(&deb, &dest).unwrap();
            assert_eq!(fs::read(dest.join("boot/vmlinuz-1.0")).unwrap(), b"kernel");
            assert_eq!(
                fs::read_link(dest.join("vmlinuz")).unwrap(),
                Path::new("boot/vmlinuz-1.0")
            );
            assert_eq!(fs::read(dest.join("vmlinuz")).unwrap(), b"kernel");
            let mode = fs::metadata(dest.join("bin/tool"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755);
            assert!(!dest.join("null").exists());
            assert!(
                !dest.join("control").exists(),
                "control.tar is not unpacked"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_a_deb() {
        let dir = tempfile::tempdir().unwrap();
        let not_ar = dir.path().join("x.deb");
        fs::write(&not_ar, b"hello").unwrap();
        let error = format!(
            "{:#}",
            unpack_deb(&not_ar, &dir.path().join("o")).unwrap_err()
        );
        assert!(error.contains("x.deb"), "{error}");

        let mut builder = ar::Builder::new(Vec::new());
        builder
            .append(
                &ar::Header::new(b"debian-binary".to_vec(), 4),
                &b"2.0\n"[..],
            )
            .unwrap();
        builder
            .append(&ar::Header::new(b"data.tar.bz2".to_vec(), 1), &b"x"[..])
            .unwrap();
        fs::write(&not_ar, builder.into_inner().unwrap()).unwrap();
        let error = format!(
            "{:#}",
            unpack_deb(&not_ar, &dir.path().join("o")).unwrap_err()
        );
        assert!(
            error.contains("unsupported compression data.tar.bz2"),
            "{error}"
        );
    }
}
