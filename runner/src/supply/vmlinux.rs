//! The uncompressed kernel (`vmlinux`) inside a Debian bzImage, so QEMU can enter it directly
//! through its PVH entry point.
//!
//! A bzImage is a real-mode setup stub plus a compressed payload that a decompressor in the
//! guest unpacks before the kernel runs. Under TCG that decompression, emulated instruction by
//! instruction, is a large share of a boot (the payload is 50+ MiB unpacked); QEMU can instead
//! load an ELF `vmlinux` that carries the Xen PVH note (`CONFIG_PVH=y`, as in all Debian cloud
//! kernels) and jump to its 32-bit entry, skipping the stub and the decompressor. The kernel
//! that runs is the same code either way (only KASLR, which the decompressor does, is gone).
//!
//! [`extract_vmlinux`] reads the payload's place from the boot protocol header (`payload_offset`
//! and `payload_length`, protocol 2.08+), unpacks it (LZ4 legacy frames, zstd, gzip or xz: what
//! Debian's kernels use) and checks that the result is an x86-64 ELF with a PVH entry note;
//! anything else is an error, and the caller keeps booting the bzImage.

use std::io::Read;

use anyhow::{Context, Result, bail, ensure};

/// The boot protocol header's magic (`HdrS`) and where it sits.
const HEADER_MAGIC: &[u8] = b"HdrS";
const HEADER_MAGIC_AT: usize = 0x202;
const SETUP_SECTS_AT: usize = 0x1f1;
const VERSION_AT: usize = 0x206;
const PAYLOAD_OFFSET_AT: usize = 0x248;
const PAYLOAD_LENGTH_AT: usize = 0x24c;
/// Legacy LZ4 frames (`lz4 -l`, what the kernel's `unlz4` reads): magic, then blocks that each
/// unpack to at most 8 MiB, each after its little-endian compressed length.
const LZ4_LEGACY_MAGIC: [u8; 4] = [0x02, 0x21, 0x4c, 0x18];
const LZ4_LEGACY_BLOCK: usize = 8 << 20;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const XZ_MAGIC: [u8; 6] = [0xfd, b'7', b'z', b'X', b'Z', 0x00];
/// `XEN_ELFNOTE_PHYS32_ENTRY`: the 32-bit PVH entry point QEMU jumps to.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// The ELF `vmlinux` inside `bzimage`, checked to have a PVH entry point.
pub fn extract_vmlinux(bzimage: &[u8]) -> Result<Vec<u8>> {
    let payload = payload(bzimage)?;
    // The payload ends with the unpacked size (4 bytes, little endian), for the decompressor.
    ensure!(payload.len() > 8, "the payload is too short");
    let (compressed, size) = payload.split_at(payload.len() - 4);
    let size = u32::from_le_bytes(size.try_into().expect("4 bytes")) as usize;
    let elf = if compressed.starts_with(&LZ4_LEGACY_MAGIC) {
        unpack_lz4_legacy(compressed, size)?
    } else if compressed.starts_with(&ZSTD_MAGIC) {
        read_all(
            ruzstd::decoding::StreamingDecoder::new(compressed).context("zstd header")?,
            size,
        )?
    } else if compressed.starts_with(&GZIP_MAGIC) {
        read_all(flate2::read::GzDecoder::new(compressed), size)?
    } else if compressed.starts_with(&XZ_MAGIC) {
        read_all(liblzma::read::XzDecoder::new(compressed), size)?
    } else {
        bail!(
            "unknown payload compression (magic {:02x?})",
            &compressed[..4.min(compressed.len())]
        );
    };
    ensure!(
        elf.len() == size,
        "the payload unpacked to {} bytes, the image says {size}",
        elf.len()
    );
    ensure!(
        has_pvh_entry(&elf)?,
        "the kernel has no PVH entry note (CONFIG_PVH is not set)"
    );
    Ok(elf)
}

/// The compressed payload, located by the boot protocol header.
fn payload(bzimage: &[u8]) -> Result<&[u8]> {
    ensure!(
        bzimage.get(HEADER_MAGIC_AT..HEADER_MAGIC_AT + 4) == Some(HEADER_MAGIC),
        "not a bzImage (no HdrS boot protocol header)"
    );
    let u16_at = |at: usize| u16::from_le_bytes([bzimage[at], bzimage[at + 1]]);
    let u32_at = |at: usize| -> Result<u32> {
        let bytes = bzimage.get(at..at + 4).context("truncated header")?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    };
    let version = u16_at(VERSION_AT);
    ensure!(
        version >= 0x208,
        "boot protocol {}.{:02} has no payload fields (2.08+ needed)",
        version >> 8,
        version & 0xff
    );
    let setup_sects = match bzimage[SETUP_SECTS_AT] {
        0 => 4,
        n => n as usize,
    };
    let start = (setup_sects + 1) * 512 + u32_at(PAYLOAD_OFFSET_AT)? as usize;
    let length = u32_at(PAYLOAD_LENGTH_AT)? as usize;
    bzimage
        .get(start..start + length)
        .context("the payload lies outside the file")
}

fn read_all(mut reader: impl Read, size: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size);
    reader
        .read_to_end(&mut out)
        .context("unpacking the payload")?;
    Ok(out)
}

/// Legacy LZ4 frames: the magic, then `[length][block]...`; a repeated magic starts another
/// frame of the same kind.
fn unpack_lz4_legacy(data: &[u8], size: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size);
    let mut rest = &data[4..];
    while rest.len() >= 4 {
        let (head, tail) = rest.split_at(4);
        if head == LZ4_LEGACY_MAGIC {
            rest = tail;
            continue;
        }
        let length = u32::from_le_bytes(head.try_into().expect("4 bytes")) as usize;
        let block = tail
            .get(..length)
            .context("an LZ4 block runs past the payload")?;
        out.extend(
            lz4_flex::block::decompress(block, LZ4_LEGACY_BLOCK)
                .context("unpacking an LZ4 block")?,
        );
        rest = &tail[length..];
    }
    Ok(out)
}

/// Whether `elf` is an x86-64 ELF64 with a `Xen` note of type PHYS32_ENTRY in a PT_NOTE
/// segment.
pub(crate) fn has_pvh_entry(elf: &[u8]) -> Result<bool> {
    ensure!(
        elf.get(..4) == Some(b"\x7fELF") && elf.get(4) == Some(&2),
        "the payload is not an ELF64 file"
    );
    let u16_at = |at: usize| -> Result<u16> {
        Ok(u16::from_le_bytes(
            elf.get(at..at + 2).context("truncated ELF")?.try_into()?,
        ))
    };
    let u32_at = |at: usize| -> Result<u32> {
        Ok(u32::from_le_bytes(
            elf.get(at..at + 4).context("truncated ELF")?.try_into()?,
        ))
    };
    let u64_at = |at: usize| -> Result<u64> {
        Ok(u64::from_le_bytes(
            elf.get(at..at + 8).context("truncated ELF")?.try_into()?,
        ))
    };
    ensure!(u16_at(18)? == 62, "the ELF is not x86-64");
    let (phoff, phentsize, phnum) = (u64_at(32)? as usize, u16_at(54)? as usize, u16_at(56)?);
    for index in 0..phnum as usize {
        let header = phoff + index * phentsize;
        if u32_at(header)? != 4 {
            continue; // not PT_NOTE
        }
        let (offset, size) = (u64_at(header + 8)? as usize, u64_at(header + 32)? as usize);
        let mut at = offset;
        while at + 12 <= offset + size {
            let (namesz, descsz, kind) = (u32_at(at)?, u32_at(at + 4)?, u32_at(at + 8)?);
            let name = elf
                .get(at + 12..at + 12 + namesz as usize)
                .context("truncated note")?;
            if name == b"Xen\0" && kind == XEN_ELFNOTE_PHYS32_ENTRY {
                return Ok(true);
            }
            at += 12 + (namesz as usize).div_ceil(4) * 4 + (descsz as usize).div_ceil(4) * 4;
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 x86-64 file with one PT_NOTE segment holding `note_name` and `kind`.
    fn elf_with_note(note_name: &[u8], kind: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 64 + 56];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[18..20].copy_from_slice(&62u16.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // phoff
        elf[54..56].copy_from_slice(&56u16.to_le_bytes()); // phentsize
        elf[56..58].copy_from_slice(&1u16.to_le_bytes()); // phnum
        let mut note = Vec::new();
        note.extend((note_name.len() as u32).to_le_bytes());
        note.extend(4u32.to_le_bytes());
        note.extend(kind.to_le_bytes());
        note.extend(note_name);
        note.resize(note.len().div_ceil(4) * 4, 0);
        note.extend(0x100_0000u32.to_le_bytes());
        let offset = elf.len() as u64;
        let ph = 64;
        elf[ph..ph + 4].copy_from_slice(&4u32.to_le_bytes()); // PT_NOTE
        elf[ph + 8..ph + 16].copy_from_slice(&offset.to_le_bytes());
        elf[ph + 32..ph + 40].copy_from_slice(&(note.len() as u64).to_le_bytes());
        elf.extend(note);
        elf
    }

    /// A bzImage-shaped file: a 2-sector setup with the header fields, then `payload`.
    fn bzimage(payload: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 3 * 512];
        image[SETUP_SECTS_AT] = 2;
        image[HEADER_MAGIC_AT..HEADER_MAGIC_AT + 4].copy_from_slice(HEADER_MAGIC);
        image[VERSION_AT..VERSION_AT + 2].copy_from_slice(&0x20fu16.to_le_bytes());
        image[PAYLOAD_OFFSET_AT..PAYLOAD_OFFSET_AT + 4].copy_from_slice(&16u32.to_le_bytes());
        image[PAYLOAD_LENGTH_AT..PAYLOAD_LENGTH_AT + 4]
            .copy_from_slice(&(payload.len() as u32).to_le_bytes());
        image.extend(vec![0xee; 16]);
        image.extend(payload);
        image.extend(vec![0xee; 100]);
        image
    }

    fn with_size(mut compressed: Vec<u8>, elf: &[u8]) -> Vec<u8> {
        compressed.extend((elf.len() as u32).to_le_bytes());
        compressed
    }

    #[test]
    fn unpacks_gzip_xz_and_lz4_legacy_payloads() {
        use std::io::Write;
        let elf = elf_with_note(b"Xen\0", XEN_ELFNOTE_PHYS32_ENTRY);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&elf).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            extract_vmlinux(&bzimage(&with_size(gz, &elf))).unwrap(),
            elf
        );

        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&elf).unwrap();
        let xz = xz.finish().unwrap();
        assert_eq!(
            extract_vmlinux(&bzimage(&with_size(xz, &elf))).unwrap(),
            elf
        );

        let block = lz4_flex::block::compress(&elf);
        let mut lz4 = LZ4_LEGACY_MAGIC.to_vec();
        lz4.extend((block.len() as u32).to_le_bytes());
        lz4.extend(block);
        assert_eq!(
            extract_vmlinux(&bzimage(&with_size(lz4, &elf))).unwrap(),
            elf
        );
    }

    #[test]
    fn refuses_what_it_cannot_boot_directly() {
        use std::io::Write;
        let no_pvh = elf_with_note(b"GNU\0", 3);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&no_pvh).unwrap();
        let error = extract_vmlinux(&bzimage(&with_size(gz.finish().unwrap(), &no_pvh)))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no PVH entry note"), "{error}");
        let error = extract_vmlinux(b"not a kernel").unwrap_err().to_string();
        assert!(error.contains("not a bzImage"), "{error}");
        let error = extract_vmlinux(&bzimage(b"\x00\x01\x02\x03 unknown payload"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown payload compression"), "{error}");
    }
}
