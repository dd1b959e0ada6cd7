//! A writer for cpio "newc" archives (`070701`), the format of Linux initramfs images.
//!
//! Each entry is a 110-byte ASCII header (magic and 13 eight-digit hex fields), the path with a
//! terminating NUL, padding to a multiple of 4, then the data padded to a multiple of 4. The
//! archive ends with an entry called `TRAILER!!!`. Entries get inode numbers from 1 up, owner
//! root and mtime 0, so the same input always gives the same bytes.
//!
//! The kernel's unpacker does not create missing parent directories, so the writer insists
//! that a directory is added before anything inside it.

use std::collections::HashSet;
use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;
/// Permission bits a caller may set (including setuid/setgid/sticky).
const PERMISSIONS: u32 = 0o7777;
/// Name of the last entry.
const TRAILER: &str = "TRAILER!!!";

/// Writes a cpio newc archive to `W`.
#[derive(Debug)]
pub struct CpioWriter<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
    paths: HashSet<String>,
}

/// One header's fields.
struct Header<'a> {
    name: &'a str,
    mode: u32,
    nlink: u32,
    size: u32,
    rdev: (u32, u32),
}

impl<W: Write> CpioWriter<W> {
    /// A writer that writes to `out`.
    pub fn new(out: W) -> Self {
        CpioWriter {
            out,
            next_ino: 1,
            written: 0,
            paths: HashSet::new(),
        }
    }

    /// A directory (`mode` holds the permission bits, e.g. `0o755`).
    pub fn dir(&mut self, path: &str, mode: u32) -> io::Result<()> {
        self.entry(path, S_IFDIR | (mode & PERMISSIONS), 2, b"", (0, 0))
    }

    /// A regular file with `data`.
    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | (mode & PERMISSIONS), 1, data, (0, 0))
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        if target.is_empty() {
            return Err(invalid(format!("symlink {path}: empty target")));
        }
        self.entry(path, S_IFLNK | 0o777, 1, target.as_bytes(), (0, 0))
    }

    /// A character device node (`/dev/console` is 5:1).
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | (mode & PERMISSIONS), 1, b"", (major, minor))
    }

    /// Writes the trailer and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_entry(
            &Header {
                name: TRAILER,
                mode: 0,
                nlink: 1,
                size: 0,
                rdev: (0, 0),
            },
            0,
            b"",
        )?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        data: &[u8],
        rdev: (u32, u32),
    ) -> io::Result<()> {
        let name = archive_path(path)?;
        if let Some((parent, _)) = name.rsplit_once('/')
            && !self.paths.contains(parent)
        {
            return Err(invalid(format!("{name}: add its directory {parent} first")));
        }
        if !self.paths.insert(name.clone()) {
            return Err(invalid(format!("{name}: already in the archive")));
        }
        let size =
            u32::try_from(data.len()).map_err(|_| invalid(format!("{name}: larger than 4 GiB")))?;
        let ino = self.next_ino;
        self.next_ino += 1;
        self.write_entry(
            &Header {
                name: &name,
                mode,
                nlink,
                size,
                rdev,
            },
            ino,
            data,
        )
    }

    fn write_entry(&mut self, header: &Header, ino: u32, data: &[u8]) -> io::Result<()> {
        let name_size = header.name.len() + 1;
        let fields = [
            ino,
            header.mode,
            0, // uid
            0, // gid
            header.nlink,
            0, // mtime
            header.size,
            0, // devmajor
            0, // devminor
            header.rdev.0,
            header.rdev.1,
            u32::try_from(name_size).map_err(|_| invalid("name too long".into()))?,
            0, // check
        ];
        let mut head = String::with_capacity(110);
        head.push_str("070701");
        for field in fields {
            head.push_str(&format!("{field:08X}"));
        }
        self.put(head.as_bytes())?;
        self.put(header.name.as_bytes())?;
        self.put(b"\0")?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Pads with NULs to the next multiple of 4 bytes from the start of the archive.
    fn pad(&mut self) -> io::Result<()> {
        let padding = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..padding])
    }
}

/// The path as stored: relative (`/init` -> `init`), without `.`/`..` or empty components.
fn archive_path(path: &str) -> io::Result<String> {
    let trimmed = path.trim_start_matches('/').trim_end_matches('/');
    let bad = trimmed.is_empty()
        || trimmed == TRAILER
        || trimmed.contains('\0')
        || trimmed
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(invalid(format!("{path:?} is not a valid archive path")));
    }
    Ok(trimmed.to_owned())
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One entry as read back by [`read_cpio`].
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Entry {
        pub ino: u32,
        pub mode: u32,
        pub nlink: u32,
        pub mtime: u32,
        pub rdev: (u32, u32),
        pub name: String,
        pub data: Vec<u8>,
    }

    /// A minimal newc reader: every entry up to and excluding the trailer. Panics on bad input,
    /// including missing padding or a missing trailer.
    pub(crate) fn read_cpio(bytes: &[u8]) -> Vec<Entry> {
        let mut entries = Vec::new();
        let mut at = 0;
        loop {
            assert_eq!(at % 4, 0, "entries start 4-byte aligned");
            let head = std::str::from_utf8(&bytes[at..at + 110]).unwrap();
            assert_eq!(&head[..6], "070701", "magic at {at}");
            let field = |i: usize| u32::from_str_radix(&head[6 + 8 * i..14 + 8 * i], 16).unwrap();
            let name_size = field(11) as usize;
            let name_start = at + 110;
            assert_eq!(bytes[name_start + name_size - 1], 0, "name ends with NUL");
            let name = std::str::from_utf8(&bytes[name_start..name_start + name_size - 1])
                .unwrap()
                .to_owned();
            let data_start = (name_start + name_size).next_multiple_of(4);
            assert!(
                bytes[name_start + name_size..data_start]
                    .iter()
                    .all(|&b| b == 0)
            );
            let size = field(6) as usize;
            let data = bytes[data_start..data_start + size].to_vec();
            at = (data_start + size).next_multiple_of(4);
            if name == TRAILER {
                assert_eq!(at, bytes.len(), "nothing after the trailer");
                return entries;
            }
            entries.push(Entry {
                ino: field(0),
                mode: field(1),
                nlink: field(4),
                mtime: field(5),
                rdev: (field(9), field(10)),
                name,
                data,
            });
        }
    }

    #[test]
    fn header_layout_and_padding_are_exact() {
        let mut writer = CpioWriter::new(Vec::new());
        writer.file("/ab", 0o644, b"hello").unwrap();
        let bytes = writer.finish().unwrap();
        let expected_head = concat!(
            "070701", "00000001", "000081A4", "00000000", "00000000", "00000001", "00000000",
            "00000005", "00000000", "00000000", "00000000", "00000000", "00000003", "00000000"
        );
        assert_eq!(&bytes[..110], expected_head.as_bytes());
        // 110 + "ab\0" = 113 -> padded to 116; data 5 -> padded to 124.
        assert_eq!(&bytes[110..116], b"ab\0\0\0\0");
        assert_eq!(&bytes[116..124], b"hello\0\0\0");
        // Trailer: ino 0, mode 0, nlink 1, name "TRAILER!!!\0" (11) -> 121 -> 124.
        let trailer = &bytes[124..];
        assert_eq!(&trailer[..14], b"07070100000000");
        assert_eq!(&trailer[110..121], b"TRAILER!!!\0");
        assert_eq!(trailer.len(), 124);
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn round_trips_every_kind_of_entry() {
        let mut writer = CpioWriter::new(Vec::new());
        writer.dir("/dev", 0o755).unwrap();
        writer.char_device("/dev/console", 0o600, 5, 1).unwrap();
        writer.dir("bin", 0o755).unwrap();
        writer.file("/bin/tool", 0o755, &[7u8; 4097]).unwrap();
        writer.symlink("/bin/alias", "tool").unwrap();
        writer.file("/empty", 0o644, b"").unwrap();
        let entries = read_cpio(&writer.finish().unwrap());
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "bin",
                "bin/tool",
                "bin/alias",
                "empty"
            ]
        );
        let inos: Vec<_> = entries.iter().map(|e| e.ino).collect();
        assert_eq!(inos, [1, 2, 3, 4, 5, 6]);
        assert!(entries.iter().all(|e| e.mtime == 0));
        assert_eq!(entries[0].mode, 0o040755);
        assert_eq!(entries[0].nlink, 2);
        assert_eq!((entries[1].mode, entries[1].rdev), (0o020600, (5, 1)));
        assert_eq!(entries[3].data, vec![7u8; 4097]);
        assert_eq!(
            (entries[4].mode, entries[4].data.as_slice()),
            (0o120777, &b"tool"[..])
        );
        assert!(entries[5].data.is_empty());
    }

    #[test]
    fn the_same_input_gives_the_same_bytes() {
        let build = || {
            let mut writer = CpioWriter::new(Vec::new());
            writer.dir("a", 0o755).unwrap();
            writer.file("a/b", 0o600, b"x").unwrap();
            writer.finish().unwrap()
        };
        assert_eq!(build(), build());
    }

    #[test]
    fn rejects_bad_paths_duplicates_and_orphans() {
        let mut writer = CpioWriter::new(Vec::new());
        for bad in ["", "/", "a/../b", "a//b", "TRAILER!!!"] {
            assert!(writer.file(bad, 0o644, b"").is_err(), "{bad:?}");
        }
        let error = writer
            .file("/missing/file", 0o644, b"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("add its directory missing first"), "{error}");
        writer.dir("/d", 0o755).unwrap();
        assert!(
            writer
                .dir("d/", 0o755)
                .unwrap_err()
                .to_string()
                .contains("already")
        );
        assert!(writer.symlink("d/l", "").is_err());
    }
}
