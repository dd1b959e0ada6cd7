//! Which files a host program needs in the guest; and the few ELF facts other stages read
//! ([`elf_machine`] and [`has_interpreter`] for the static guest binaries, [`section`] for a
//! kernel module's `.modinfo`).
//!
//! A user's program from the host has to run in the guest unchanged. The guest root is an
//! initramfs with nothing in it but what we put there, so a dynamically linked ELF needs its
//! interpreter (`PT_INTERP`) and the closure of its shared libraries (`DT_NEEDED`), each at the
//! path where the guest's loader will open it. This module finds them on the host the way glibc's
//! `ld.so` (2.36, x86-64 Debian) would, by reading the ELF files with goblin and never running
//! anything.
//!
//! For a `DT_NEEDED` name of an object, the first rule that applies wins:
//! - an object already loaded under that name, or whose `DT_SONAME` it is, is reused;
//! - a name with a `/` is a path: absolute is used as is; relative would depend on the cwd
//!   (the guest's is `/`), so it is refused;
//! - otherwise these directories are searched in order: the `DT_RPATH` of the object and of the
//!   chain of objects that loaded it, up to the program (only when the object has no
//!   `DT_RUNPATH`; an object's `DT_RPATH` is ignored when it also has `DT_RUNPATH`); the object's
//!   own `DT_RUNPATH` (never inherited); then, unless the object has `DF_1_NODEFLIB`, the
//!   `/etc/ld.so.conf` directories (which the real loader reaches through `/etc/ld.so.cache`) and
//!   the built-in directories.
//!
//! Search paths expand `$ORIGIN` to the directory of the object as the loader opened it (for the
//! program: its canonical directory, as `/proc/self/exe` gives, so a program with `$ORIGIN`
//! paths belongs at its canonical host path in the guest), `$LIB` to
//! `lib/x86_64-linux-gnu` (what Debian's loader uses: see `LD_DEBUG=libs`), and `$PLATFORM` to
//! `x86_64` (the kernel's baseline; glibc reports `haswell` on CPUs that have its features, so a
//! `$PLATFORM` path may differ in the guest). Empty or relative search entries depend on the cwd
//! and are skipped. A candidate that is an ELF of another class or machine (a 32-bit library of
//! the same name) is skipped as the loader does; one that is not an ELF at all is an error, as
//! it is for the loader. Libraries are visited breadth-first, each once.
//!
//! Guest paths are `<dir>/<name>` as searched, lexically normalized, never canonicalized: the
//! guest gets a regular file at `/lib/x86_64-linux-gnu/libc.so.6` even where `/lib` is a symlink
//! on the host. One library is one guest path per name it is asked for, like the loader's name
//! and soname matching; a file reached again under a name that resolves to another path gets
//! that path too (the guest needs it there) but is not walked again.
//!
//! Left out, by design:
//! - the `glibc-hwcaps/x86-64-v*` and legacy hwcap subdirectories (`tls/`, `haswell/`, ...): Debian
//!   always ships the baseline library in the directory itself;
//! - `LD_LIBRARY_PATH` and `LD_PRELOAD` (the guest's environment is ours);
//! - libraries opened with `dlopen()` (NSS modules, gconv, plugins): they are not in
//!   `DT_NEEDED`, so users list them in the scenario's `files` key.
//!
//! The guest has no `/etc/ld.so.cache`, so its loader searches only RPATH/RUNPATH and the
//! built-in directories. A library found through an `ld.so.conf` directory that is not built in
//! (`/usr/local/lib`, say) is then not found in the guest. [`needs_loader_cache`] says when that
//! is the case, so the caller copies the host's `/etc/ld.so.cache` along; entries in it for
//! files the guest lacks are harmless, as the loader falls back to the built-in directories.
//!
//! A script (`#!`) runs its interpreter, so its closure is the interpreter file itself plus the
//! interpreter's closure, recursively (up to the kernel's nesting limit). `#!/usr/bin/env NAME`
//! also brings `NAME` found through [`ENV_PATH`], which the guest's `PATH` must match.

use anyhow::{Context, Result, anyhow, bail};
use goblin::elf::Elf;
use goblin::elf::dynamic::DF_1_NODEFLIB;
use goblin::elf::header::{EI_CLASS, ELFCLASS64, ELFMAG, EM_X86_64, ET_DYN, ET_EXEC, SELFMAG};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Component, Path, PathBuf};

/// Linux reads at most this many bytes of a `#!` line (`BINPRM_BUF_SIZE`).
const SHEBANG_MAX: u64 = 256;
/// Nested `#!` interpreters Linux allows.
const MAX_SCRIPT_DEPTH: usize = 4;
/// `$LIB` of Debian's x86-64 loader.
const DST_LIB: &str = "lib/x86_64-linux-gnu";
/// `$PLATFORM` as the kernel's `AT_PLATFORM` gives it.
const DST_PLATFORM: &str = "x86_64";
/// The built-in directories of Debian 12's loader (`ld.so --help`); no `/lib64` there.
const DEFAULT_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib",
    "/usr/lib",
];
/// Where `#!/usr/bin/env NAME` looks for `NAME`.
pub const ENV_PATH: &[&str] = &["/usr/local/bin", "/usr/bin", "/bin"];

/// What a program file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgramKind {
    /// `#!` line: the interpreter path and its optional argument, as written.
    Script {
        interpreter: String,
        argument: Option<String>,
    },
    /// An ELF executable without PT_INTERP.
    StaticElf,
    /// An ELF executable with PT_INTERP (the interpreter path as written in the file).
    DynamicElf { interpreter: String },
}

/// One file the guest needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GuestFile {
    /// Absolute path in the guest: the path the loader opens, not canonicalized.
    pub guest: PathBuf,
    /// The host file to read (symlinks are followed when reading).
    pub host: PathBuf,
}

/// Where the loader looks, read from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoaderSearch {
    /// Directories from /etc/ld.so.conf (and its `include` globs, recursively), in order.
    pub conf_dirs: Vec<PathBuf>,
    /// The built-in trusted directories, searched after the conf dirs.
    pub default_dirs: Vec<PathBuf>,
    /// The root to which all absolute paths above and in the ELF files are relative.
    pub root: PathBuf,
}

impl LoaderSearch {
    /// The host's: root `/`, /etc/ld.so.conf parsed.
    pub fn host() -> LoaderSearch {
        LoaderSearch::under(Path::new("/"))
    }

    /// Same, under another root: parses `<root>/etc/ld.so.conf` if any (an unreadable file
    /// counts as empty, as for ldconfig).
    pub fn under(root: &Path) -> LoaderSearch {
        let mut search = LoaderSearch {
            conf_dirs: Vec::new(),
            default_dirs: DEFAULT_DIRS.iter().map(PathBuf::from).collect(),
            root: root.to_path_buf(),
        };
        let mut dirs = Vec::new();
        search.parse_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
        for dir in dirs {
            if !search.conf_dirs.contains(&dir) {
                search.conf_dirs.push(dir);
            }
        }
        search
    }

    /// The host file behind a guest path.
    fn host_path(&self, guest: &Path) -> PathBuf {
        self.root.join(guest.strip_prefix("/").unwrap_or(guest))
    }

    /// One ld.so.conf file, as ldconfig reads it: `#` starts a comment; `include` takes
    /// glob patterns, relative ones to the including file's directory; `hwcap` lines are ignored.
    fn parse_conf(&self, conf: &Path, dirs: &mut Vec<PathBuf>, depth: usize) {
        let Ok(text) = fs::read_to_string(self.host_path(conf)) else {
            return;
        };
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut words = line.split([' ', '\t']).filter(|w| !w.is_empty());
            match words.next() {
                None => {}
                Some("include") if depth < 16 => {
                    for pattern in words {
                        let pattern = conf.parent().unwrap_or(Path::new("/")).join(pattern);
                        for file in self.glob(&pattern) {
                            self.parse_conf(&file, dirs, depth + 1);
                        }
                    }
                }
                Some("include") => {}
                Some(word) if word.eq_ignore_ascii_case("hwcap") => {}
                Some(_) => {
                    let dir = normalize(Path::new(line));
                    if dir.is_absolute() {
                        dirs.push(dir);
                    }
                }
            }
        }
    }

    /// Guest paths matching a pattern with `*` or `?` in its last component, sorted as
    /// glob(3) sorts them (ld.so.conf uses `dir/*.conf`).
    fn glob(&self, pattern: &Path) -> Vec<PathBuf> {
        let (Some(dir), Some(last)) = (pattern.parent(), pattern.file_name()) else {
            return Vec::new();
        };
        let last = last.to_string_lossy();
        if !last.contains(['*', '?']) {
            return vec![pattern.to_path_buf()];
        }
        let Ok(entries) = fs::read_dir(self.host_path(dir)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.') && wildcard_match(last.as_bytes(), n.as_bytes()))
            .collect();
        names.sort();
        names.into_iter().map(|n| dir.join(n)).collect()
    }
}

/// `*` and `?` matching of a whole name.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            wildcard_match(&pattern[1..], name)
                || (!name.is_empty() && wildcard_match(pattern, &name[1..]))
        }
        (Some(p), Some(n)) if *p == b'?' || p == n => wildcard_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Resolves `.` and `..` without looking at the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// Reads the start of `path` and says what it is. Errors: unreadable (names the path and the OS
/// error), not an ELF and no `#!`, an ELF that is not x86-64 or not 64-bit, an ELF that is not
/// executable (ET_EXEC, or ET_DYN with PT_INTERP or an entry point).
pub fn program_kind(path: &Path) -> Result<ProgramKind> {
    Ok(inspect(path, &read_program(path)?)?.0)
}

/// The first bytes of a file, or all of it when it is an ELF.
fn read_program(path: &Path) -> Result<Vec<u8>> {
    let mut file = fs::File::open(path).map_err(|e| io_error("open", path, e))?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(SHEBANG_MAX)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("read", path, e))?;
    if bytes.starts_with(ELFMAG) {
        file.read_to_end(&mut bytes)
            .map_err(|e| io_error("read", path, e))?;
    }
    Ok(bytes)
}

/// The kind of a program, with its ELF information when it is an ELF.
fn inspect(path: &Path, bytes: &[u8]) -> Result<(ProgramKind, Option<ElfInfo>)> {
    if let Some(line) = bytes.strip_prefix(b"#!") {
        let kind =
            parse_shebang(line).with_context(|| format!("bad #! line in {}", path.display()))?;
        return Ok((kind, None));
    }
    if !bytes.starts_with(ELFMAG) {
        bail!(
            "{}: neither an ELF program nor a script with #!",
            path.display()
        );
    }
    let info = ElfInfo::parse(path, bytes)?
        .ok_or_else(|| anyhow!("{}: not a 64-bit x86-64 ELF", path.display()))?;
    let kind = match (info.e_type, &info.interpreter) {
        (ET_EXEC | ET_DYN, Some(interpreter)) => ProgramKind::DynamicElf {
            interpreter: interpreter.clone(),
        },
        (ET_EXEC, None) => ProgramKind::StaticElf,
        (ET_DYN, None) if info.entry != 0 => ProgramKind::StaticElf,
        (ET_DYN, None) => bail!(
            "{}: a shared library (no interpreter, no entry point), not a program",
            path.display()
        ),
        (other, _) => bail!(
            "{}: ELF type {} is not an executable",
            path.display(),
            goblin::elf::header::et_to_str(other)
        ),
    };
    Ok((kind, Some(info)))
}

/// The `#!` line as Linux splits it: interpreter up to the first blank, the rest (trimmed)
/// is one argument.
fn parse_shebang(line: &[u8]) -> Result<ProgramKind> {
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).context("the #! line is not UTF-8")?;
    let line = line.trim_matches([' ', '\t']);
    let (interpreter, argument) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], Some(line[i..].trim_matches([' ', '\t']))),
        None => (line, None),
    };
    if interpreter.is_empty() {
        bail!("no interpreter after #!");
    }
    Ok(ProgramKind::Script {
        interpreter: interpreter.to_string(),
        argument: argument.map(str::to_string),
    })
}

/// What the search needs from one ELF file.
struct ElfInfo {
    e_type: u16,
    entry: u64,
    interpreter: Option<String>,
    soname: Option<String>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    nodeflib: bool,
}

impl ElfInfo {
    /// `None` for an ELF of another class or machine; an error for anything else that is
    /// not a valid ELF.
    fn parse(path: &Path, bytes: &[u8]) -> Result<Option<ElfInfo>> {
        let bad = |e| anyhow!("{}: invalid ELF file: {e}", path.display());
        if bytes.len() < SELFMAG || &bytes[..SELFMAG] != ELFMAG {
            bail!("{}: invalid ELF header", path.display());
        }
        let header = Elf::parse_header(bytes).map_err(bad)?;
        if header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_machine != EM_X86_64 {
            return Ok(None);
        }
        let elf = Elf::parse(bytes).map_err(bad)?;
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        let runpath: Vec<String> = strings(&elf.runpaths);
        Ok(Some(ElfInfo {
            e_type: elf.header.e_type,
            entry: elf.entry,
            interpreter: elf.interpreter.map(str::to_string),
            soname: elf.soname.map(str::to_string),
            needed: strings(&elf.libraries),
            // DT_RPATH is ignored when DT_RUNPATH is present.
            rpath: strings(if runpath.is_empty() { &elf.rpaths } else { &[] }),
            runpath,
            nodeflib: elf
                .dynamic
                .as_ref()
                .is_some_and(|d| d.info.flags_1 & DF_1_NODEFLIB != 0),
        }))
    }
}

/// The interpreter and every shared library `program` (a host path) needs, transitively, for
/// a guest whose root is the host's layout. Static programs give an empty list; scripts give
/// their interpreter and its closure. Sorted by guest path, no duplicates, without the program.
pub fn library_closure(program: &Path, search: &LoaderSearch) -> Result<Vec<GuestFile>> {
    let mut files = BTreeSet::new();
    program_closure(program, search, &mut files, 0)?;
    Ok(files.into_iter().collect())
}

fn program_closure(
    program: &Path,
    search: &LoaderSearch,
    files: &mut BTreeSet<GuestFile>,
    depth: usize,
) -> Result<()> {
    let (kind, info) = inspect(program, &read_program(program)?)?;
    let (interpreter, argument) = match (kind, info) {
        (
            ProgramKind::Script {
                interpreter,
                argument,
            },
            _,
        ) => (interpreter, argument),
        (ProgramKind::DynamicElf { .. }, Some(info)) => {
            let (objects, names, inodes) = Default::default();
            let loader = Loader {
                search,
                files,
                objects,
                names,
                inodes,
            };
            return loader.run(program, info);
        }
        _ => return Ok(()), // static
    };
    if depth == MAX_SCRIPT_DEPTH {
        bail!("{}: too many nested #! interpreters", program.display());
    }
    for guest in script_programs(program, &interpreter, argument.as_deref(), search)? {
        let host = search.host_path(&guest);
        program_closure(&host, search, files, depth + 1)
            .with_context(|| format!("#! interpreter of {}", program.display()))?;
        files.insert(GuestFile { guest, host });
    }
    Ok(())
}

/// The programs a script's `#!` line runs: the interpreter, and for `env NAME` also `NAME`.
fn script_programs(
    script: &Path,
    interpreter: &str,
    argument: Option<&str>,
    search: &LoaderSearch,
) -> Result<Vec<PathBuf>> {
    let interpreter = absolute(interpreter, script, "#! interpreter")?;
    let env_target = argument
        .filter(|_| interpreter.file_name().is_some_and(|n| n == "env"))
        .map(|a| a.strip_prefix("-S").unwrap_or(a).trim_start())
        .and_then(|a| a.split([' ', '\t']).next())
        .filter(|name| !name.is_empty() && !name.starts_with('-') && !name.contains('='));
    let mut programs = vec![interpreter];
    if let Some(name) = env_target {
        let found = ENV_PATH
            .iter()
            .map(|dir| Path::new(dir).join(name))
            .find(|guest| search.host_path(guest).is_file())
            .ok_or_else(|| {
                let path = ENV_PATH.join(":");
                anyhow!(
                    "{}: `{name}` of #!{} is not in {path}",
                    script.display(),
                    programs[0].display()
                )
            })?;
        programs.push(found);
    }
    Ok(programs)
}

/// A path written in a file, normalized; relative ones would depend on the cwd (`/` in the guest).
fn absolute(path: &str, owner: &Path, what: &str) -> Result<PathBuf> {
    let normalized = normalize(Path::new(path));
    if !normalized.is_absolute() {
        bail!(
            "{}: the {what} {path} is relative to the current directory, which is / in the \
             guest; use an absolute path",
            owner.display()
        );
    }
    Ok(normalized)
}

/// A loaded object, as the loader's link map keeps it.
struct Object {
    guest: PathBuf,
    rpath: Vec<PathBuf>,
    runpath: Vec<PathBuf>,
    nodeflib: bool,
    /// The object whose DT_NEEDED loaded this one (`l_loader`).
    loader: Option<usize>,
}

/// One simulated start of a dynamic program.
struct Loader<'a> {
    search: &'a LoaderSearch,
    files: &'a mut BTreeSet<GuestFile>,
    objects: Vec<Object>,
    /// Names an object answers to: requested names, sonames, guest paths.
    names: HashMap<String, usize>,
    /// Canonical host files already loaded (the loader's inode check).
    inodes: HashMap<PathBuf, usize>,
}

impl Loader<'_> {
    fn run(mut self, program: &Path, info: ElfInfo) -> Result<()> {
        // $ORIGIN of the program is its canonical directory, as the guest sees it.
        let canonical = fs::canonicalize(program).map_err(|e| io_error("resolve", program, e))?;
        let root = fs::canonicalize(&self.search.root).unwrap_or(self.search.root.clone());
        let guest = match canonical.strip_prefix(&root) {
            Ok(rest) => Path::new("/").join(rest),
            Err(_) => canonical,
        };
        let main = self.add(guest, &info, None);
        // The kernel maps the interpreter first; its soname answers libc's DT_NEEDED of it.
        let interpreter = info.interpreter.as_deref().unwrap_or_default();
        absolute(interpreter, program, "PT_INTERP interpreter")?;
        self.resolve(main, interpreter)?;
        let mut queue = VecDeque::from([(main, info.needed)]);
        while let Some((object, needed)) = queue.pop_front() {
            for name in needed {
                queue.extend(self.resolve(object, &name)?);
            }
        }
        Ok(())
    }

    /// Adds an object to the link map, with the names it answers to.
    fn add(&mut self, guest: PathBuf, info: &ElfInfo, loader: Option<usize>) -> usize {
        let origin = dir_of(&guest);
        let dirs = |list: &[String]| -> Vec<PathBuf> {
            list.iter()
                .flat_map(|s| s.split(':'))
                .map(|entry| normalize(Path::new(&expand_dst(entry, &origin))))
                .filter(|dir| dir.is_absolute())
                .collect()
        };
        let index = self.objects.len();
        self.names
            .insert(guest.to_string_lossy().into_owned(), index);
        if let Some(soname) = &info.soname {
            self.names.entry(soname.clone()).or_insert(index);
        }
        self.objects.push(Object {
            rpath: dirs(&info.rpath),
            runpath: dirs(&info.runpath),
            nodeflib: info.nodeflib,
            loader,
            guest,
        });
        index
    }

    /// Finds one DT_NEEDED entry of `object`; returns the object to walk when it is new.
    fn resolve(&mut self, object: usize, name: &str) -> Result<Option<(usize, Vec<String>)>> {
        let needer = self.objects[object].guest.clone();
        let mut name = expand_dst(name, &dir_of(&needer));
        let path = match name.contains('/') {
            true => Some(absolute(&name, &needer, "needed library")?),
            false => None,
        };
        if let Some(path) = &path {
            name = path.to_string_lossy().into_owned();
        }
        if self.names.contains_key(&name) {
            return Ok(None);
        }
        let candidates = match path {
            Some(path) => vec![path],
            None => self
                .search_dirs(object)
                .iter()
                .map(|dir| dir.join(&name))
                .collect(),
        };
        let mut skipped = Vec::new();
        for guest in &candidates {
            let host = self.search.host_path(guest);
            let Some(info) = read_elf(&host)? else {
                if host.exists() {
                    skipped.push(guest.display().to_string());
                }
                continue;
            };
            let canonical = fs::canonicalize(&host).map_err(|e| io_error("resolve", &host, e))?;
            self.files.insert(GuestFile {
                guest: guest.clone(),
                host,
            });
            if let Some(&seen) = self.inodes.get(&canonical) {
                self.names
                    .insert(guest.to_string_lossy().into_owned(), seen);
                self.names.insert(name, seen);
                return Ok(None);
            }
            let index = self.add(guest.clone(), &info, Some(object));
            self.inodes.insert(canonical, index);
            self.names.entry(name).or_insert(index);
            return Ok(Some((index, info.needed)));
        }
        let tried: Vec<String> = candidates.iter().map(|c| c.display().to_string()).collect();
        let skipped = match skipped.is_empty() {
            true => String::new(),
            false => format!(" (skipped, not 64-bit x86-64: {})", skipped.join(", ")),
        };
        bail!(
            "{name}, needed by {}, not found: tried {}{skipped}; add it to the scenario's \
             `files` key",
            needer.display(),
            tried.join(", "),
        )
    }

    /// The directories searched for a plain name needed by `object`, in order, once each.
    fn search_dirs(&self, object: usize) -> Vec<PathBuf> {
        let this = &self.objects[object];
        let mut dirs: Vec<&PathBuf> = Vec::new();
        if this.runpath.is_empty() {
            let mut at = Some(object);
            while let Some(index) = at {
                dirs.extend(&self.objects[index].rpath);
                at = self.objects[index].loader;
            }
        }
        dirs.extend(&this.runpath);
        if !this.nodeflib {
            dirs.extend(
                self.search
                    .conf_dirs
                    .iter()
                    .chain(&self.search.default_dirs),
            );
        }
        let mut unique: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            if !unique.contains(dir) {
                unique.push(dir.clone());
            }
        }
        unique
    }
}

/// An I/O error that names the path and the OS error in one message.
fn io_error(what: &str, path: &Path, error: std::io::Error) -> anyhow::Error {
    anyhow!("cannot {what} {}: {error}", path.display())
}

/// The directory of a guest path, for `$ORIGIN`.
fn dir_of(path: &Path) -> String {
    path.parent()
        .unwrap_or(Path::new("/"))
        .to_string_lossy()
        .into_owned()
}

/// A candidate file: `None` when it is missing or an ELF of another class or machine.
fn read_elf(host: &Path) -> Result<Option<ElfInfo>> {
    match fs::read(host) {
        Ok(bytes) => ElfInfo::parse(host, &bytes),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(None),
        Err(e) => Err(io_error("read", host, e)),
    }
}

/// Expands `$ORIGIN`, `$LIB` and `$PLATFORM` (also as `${...}`); other `$` text stays.
fn expand_dst(text: &str, origin: &str) -> String {
    let (mut out, mut rest) = (String::new(), text);
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let (name, len) = match rest.strip_prefix('{') {
            Some(braced) => braced
                .find('}')
                .map_or(("", 0), |end| (&braced[..end], end + 2)),
            None => {
                let end = rest
                    .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .unwrap_or(rest.len());
                (&rest[..end], end)
            }
        };
        let known = [
            ("ORIGIN", origin),
            ("LIB", DST_LIB),
            ("PLATFORM", DST_PLATFORM),
        ];
        match known.iter().find(|(known, _)| *known == name) {
            Some((_, value)) => {
                out.push_str(value);
                rest = &rest[len..];
            }
            None => out.push('$'),
        }
    }
    out.push_str(rest);
    out
}

/// A 64-bit little-endian ELF's header, and the context to read the rest of it with.
fn elf64_header(data: &[u8]) -> Result<(goblin::elf::Header, goblin::container::Ctx)> {
    if !data.starts_with(ELFMAG) {
        bail!("not an ELF file");
    }
    if data.get(EI_CLASS) != Some(&ELFCLASS64)
        || data.get(goblin::elf::header::EI_DATA) != Some(&goblin::elf::header::ELFDATA2LSB)
    {
        bail!("not a 64-bit little-endian ELF file");
    }
    let header = Elf::parse_header(data).map_err(|e| anyhow!("truncated ELF header: {e}"))?;
    let ctx = goblin::container::Ctx::new(
        goblin::container::Container::Big,
        goblin::container::Endian::Little,
    );
    Ok((header, ctx))
}

/// The machine (`e_machine`) of a 64-bit little-endian ELF file; an error for anything else.
pub fn elf_machine(data: &[u8]) -> Result<u16> {
    Ok(elf64_header(data)?.0.e_machine)
}

/// Whether an ELF file has a `PT_INTERP` program header (is dynamically linked).
pub fn has_interpreter(data: &[u8]) -> Result<bool> {
    let (header, ctx) = elf64_header(data)?;
    let headers = goblin::elf::ProgramHeader::parse(
        data,
        header.e_phoff as usize,
        header.e_phnum as usize,
        ctx,
    )
    .map_err(|e| anyhow!("truncated or malformed ELF program headers: {e}"))?;
    Ok(headers
        .iter()
        .any(|ph| ph.p_type == goblin::elf::program_header::PT_INTERP))
}

/// The contents of the section called `name` of an ELF file (a kernel module's `.modinfo`),
/// if it has one. Only the section table is read, not symbols or relocations.
pub fn section<'a>(data: &'a [u8], name: &str) -> Result<Option<&'a [u8]>> {
    let (header, ctx) = elf64_header(data)?;
    let malformed =
        |e: &dyn std::fmt::Display| anyhow!("truncated or malformed ELF section table: {e}");
    let sections = goblin::elf::SectionHeader::parse(
        data,
        header.e_shoff as usize,
        header.e_shnum as usize,
        ctx,
    )
    .map_err(|e| malformed(&e))?;
    let contents = |section: &goblin::elf::SectionHeader| {
        section
            .file_range()
            .and_then(|range| data.get(range))
            .ok_or_else(|| malformed(&"a section lies outside the file"))
    };
    let names = sections
        .get(header.e_shstrndx as usize)
        .ok_or_else(|| malformed(&"no section name table"))?;
    let names = contents(names)?;
    for section in &sections {
        let section_name = names
            .get(section.sh_name..)
            .and_then(|rest| rest.split(|&b| b == 0).next());
        if section_name == Some(name.as_bytes()) {
            return contents(section).map(Some);
        }
    }
    Ok(None)
}

/// Whether the guest needs the host's `/etc/ld.so.cache`: some file lives in an ld.so.conf
/// directory that is not built into the loader. Conservative: such a directory may also have
/// been reached through an RPATH, where the cache is harmless.
pub fn needs_loader_cache(files: &[GuestFile], search: &LoaderSearch) -> bool {
    files.iter().any(|file| {
        file.guest.parent().is_some_and(|dir| {
            search.conf_dirs.iter().any(|d| d == dir)
                && !search.default_dirs.iter().any(|d| d == dir)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn write(path: &Path, text: impl AsRef<[u8]>) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    /// Runs cc in `dir`, making the directory of its `-o` file first.
    fn cc(dir: &Path, args: &[&str]) {
        if let Some(at) = args.iter().position(|a| *a == "-o") {
            fs::create_dir_all(dir.join(args[at + 1]).parent().unwrap()).unwrap();
        }
        let out = Command::new("cc")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run cc");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "cc {args:?}: {stderr}");
    }

    /// A temp dir by its canonical path, so guest paths under it are what the loader sees.
    fn tempdir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().canonicalize().unwrap();
        (dir, path)
    }

    /// The header of a 32-bit i386 shared library, and nothing else.
    fn elf32_header() -> Vec<u8> {
        let mut h = vec![0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        h.extend([3u16, 3].iter().flat_map(|v| v.to_le_bytes())); // ET_DYN, EM_386
        h.extend(1u32.to_le_bytes()); // e_version
        h.extend([0u8; 16]); // e_entry, e_phoff, e_shoff, e_flags
        h.extend(
            [52u16, 32, 0, 40, 0, 0]
                .iter()
                .flat_map(|v| v.to_le_bytes()),
        );
        assert_eq!(h.len(), 52);
        h
    }

    fn guests(files: &[GuestFile]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.guest.display().to_string())
            .collect()
    }

    fn file_names(files: &[GuestFile]) -> BTreeSet<String> {
        let names = files
            .iter()
            .map(|f| f.guest.file_name().unwrap().to_string_lossy());
        names.map(|n| n.into_owned()).collect()
    }

    /// ldd's lines: (name as needed, resolved path or "not found"), without the vDSO.
    fn ldd(program: &Path) -> Vec<(String, String)> {
        let out = Command::new("ldd").arg(program).output().expect("run ldd");
        assert!(out.status.success(), "ldd {}", program.display());
        let text = String::from_utf8(out.stdout).unwrap();
        let lines = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with("linux-vdso"));
        lines
            .map(|line| {
                let (name, rest) = line.split_once(" => ").unwrap_or(("", line));
                let path = rest.split(" (").next().unwrap().to_string();
                let name = match name {
                    "" => Path::new(&path)
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .into(),
                    name => name.to_string(),
                };
                (name, path)
            })
            .collect()
    }

    /// The closure has ldd's sonames and, canonicalized, ldd's files.
    fn assert_matches_ldd(program: &Path, files: &[GuestFile]) {
        let lines = ldd(program);
        let names: BTreeSet<String> = lines.iter().map(|(n, _)| n.clone()).collect();
        assert_eq!(file_names(files), names, "sonames of {}", program.display());
        assert_eq!(
            files.len(),
            lines.len(),
            "one guest path per library: {files:?}"
        );
        let canonical = |p: &Path| fs::canonicalize(p).unwrap();
        let ours: BTreeSet<PathBuf> = files.iter().map(|f| canonical(&f.host)).collect();
        let theirs: BTreeSet<PathBuf> =
            lines.iter().map(|(_, p)| canonical(Path::new(p))).collect();
        assert_eq!(ours, theirs, "files of {}", program.display());
    }

    fn ldd_not_found(program: &Path) -> Vec<String> {
        let lines = ldd(program).into_iter().filter(|(_, p)| p == "not found");
        lines.map(|(n, _)| n).collect()
    }

    fn error(result: Result<impl std::fmt::Debug>) -> String {
        format!("{:#}", result.expect_err("expected an error"))
    }

    #[test]
    fn ls_closure_is_what_ldd_finds() {
        let search = LoaderSearch::host();
        let files = library_closure(Path::new("/bin/ls"), &search).unwrap();
        let guests = guests(&files);
        assert!(
            guests.contains(&"/lib64/ld-linux-x86-64.so.2".into()),
            "{guests:?}"
        );
        assert!(
            guests.iter().any(|g| g == "/lib/x86_64-linux-gnu/libc.so.6"
                || g == "/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "{guests:?}"
        );
        let names = file_names(&files);
        assert!(names.contains("libselinux.so.1") && names.contains("libpcre2-8.so.0"));
        assert_matches_ldd(Path::new("/bin/ls"), &files);
        assert!(files.iter().all(|f| f.host == f.guest));
        assert!(files.windows(2).all(|w| w[0].guest < w[1].guest));
        assert!(!needs_loader_cache(&files, &search));
        let kind = program_kind(Path::new("/bin/ls")).unwrap();
        let interpreter = "/lib64/ld-linux-x86-64.so.2".to_string();
        assert_eq!(kind, ProgramKind::DynamicElf { interpreter });
    }

    #[test]
    fn host_programs_match_ldd() {
        let programs = [
            "/usr/bin/python3",
            "/usr/bin/gcc",
            "/usr/bin/qemu-system-x86_64",
            "/usr/bin/ssh",
            "/bin/sh",
        ];
        let present: Vec<&Path> = programs
            .iter()
            .map(Path::new)
            .filter(|p| p.exists())
            .collect();
        assert!(
            present.len() >= 2,
            "too few host programs to compare: {present:?}"
        );
        for program in present {
            let files = library_closure(program, &LoaderSearch::host()).unwrap();
            assert_matches_ldd(program, &files);
        }
    }

    #[test]
    fn host_search_is_debian_s() {
        let search = LoaderSearch::host();
        assert_eq!(search.root, Path::new("/"));
        assert_eq!(search.default_dirs[0], Path::new("/lib/x86_64-linux-gnu"));
        let conf = Path::new("/etc/ld.so.conf.d/x86_64-linux-gnu.conf");
        if conf.exists() {
            assert!(
                search
                    .conf_dirs
                    .contains(&"/usr/lib/x86_64-linux-gnu".into())
            );
        }
    }

    #[test]
    fn static_programs_need_nothing() {
        let (_keep, tmp) = tempdir();
        write(&tmp.join("main.c"), "int main(void) { return 0; }\n");
        cc(&tmp, &["-static", "-o", "static", "main.c"]);
        cc(&tmp, &["-static-pie", "-o", "static-pie", "main.c"]);
        for name in ["static", "static-pie"] {
            let program = tmp.join(name);
            assert_eq!(
                program_kind(&program).unwrap(),
                ProgramKind::StaticElf,
                "{name}"
            );
            assert_eq!(
                library_closure(&program, &LoaderSearch::host()).unwrap(),
                []
            );
        }
    }

    #[test]
    fn origin_in_rpath_and_in_runpath() {
        let (_keep, tmp) = tempdir();
        write(&tmp.join("demo.c"), "int demo(void) { return 42; }\n");
        write(
            &tmp.join("main.c"),
            "int demo(void);\nint main(void) { return demo(); }\n",
        );
        cc(
            &tmp,
            &["-shared", "-fPIC", "-o", "lib/libdemo.so", "demo.c"],
        );
        for (tags, runpath) in [("--disable-new-dtags", false), ("--enable-new-dtags", true)] {
            let flag = format!("-Wl,{tags}");
            cc(
                &tmp,
                &[
                    "-o",
                    "prog",
                    "main.c",
                    "-Llib",
                    "-ldemo",
                    "-Wl,-rpath,$ORIGIN/lib",
                    &flag,
                ],
            );
            let program = tmp.join("prog");
            let bytes = fs::read(&program).unwrap();
            let info = ElfInfo::parse(&program, &bytes).unwrap().unwrap();
            assert_eq!(!info.runpath.is_empty(), runpath, "{tags}");
            assert_eq!(info.rpath.is_empty(), runpath, "{tags}");

            let files = library_closure(&program, &LoaderSearch::host()).unwrap();
            let lib = tmp.join("lib/libdemo.so");
            assert!(
                files.contains(&GuestFile {
                    guest: lib.clone(),
                    host: lib
                }),
                "{tags}"
            );
            assert!(file_names(&files).contains("libc.so.6"));
            assert_matches_ldd(&program, &files);
            assert_eq!(Command::new(&program).status().unwrap().code(), Some(42));
        }

        // DF_1_NODEFLIB (which ld will not set on a program, so it is patched in) keeps the
        // program's own dependencies out of the system directories.
        let program = tmp.join("prog");
        set_nodeflib(&program);
        assert_eq!(ldd_not_found(&program), ["libc.so.6"]);
        let message = error(library_closure(&program, &LoaderSearch::host()));
        assert!(message.starts_with("libc.so.6, needed by"), "{message}");
        assert!(
            !message.contains("/usr/lib/x86_64-linux-gnu/libc.so.6"),
            "{message}"
        );
    }

    /// Sets DF_1_NODEFLIB in the DT_FLAGS_1 entry of a program's dynamic section.
    fn set_nodeflib(program: &Path) {
        let mut bytes = fs::read(program).unwrap();
        let elf = Elf::parse(&bytes).unwrap();
        let dynamic = elf.program_headers.iter().find(|h| h.p_type == 2).unwrap(); // PT_DYNAMIC
        let entries = (dynamic.p_offset..dynamic.p_offset + dynamic.p_filesz).step_by(16);
        let word = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
        let flags_1 = entries
            .map(|at| at as usize)
            .find(|&at| word(&bytes, at) == goblin::elf::dynamic::DT_FLAGS_1)
            .expect("a PIE has DT_FLAGS_1");
        let value = word(&bytes, flags_1 + 8) | DF_1_NODEFLIB;
        bytes[flags_1 + 8..flags_1 + 16].copy_from_slice(&value.to_le_bytes());
        fs::write(program, bytes).unwrap();
    }

    #[test]
    fn rpath_of_loaders_applies_only_without_runpath() {
        let (_keep, tmp) = tempdir();
        write(&tmp.join("dep.c"), "int dep(void) { return 1; }\n");
        write(
            &tmp.join("mid.c"),
            "int dep(void);\nint mid(void) { return dep() + 1; }\n",
        );
        write(
            &tmp.join("main.c"),
            "int mid(void);\nint main(void) { return mid(); }\n",
        );
        cc(&tmp, &["-shared", "-fPIC", "-o", "deps/libdep.so", "dep.c"]);
        // libmid needs libdep and says nowhere where it is ...
        let mid = ["-shared", "-fPIC", "mid.c", "-Ldeps", "-ldep"];
        cc(&tmp, &[&mid[..], &["-o", "lib/libmid.so"]].concat());
        // ... or has a RUNPATH of its own that does not have it.
        let own = [
            "-o",
            "lib2/libmid.so",
            "-Wl,--enable-new-dtags",
            "-Wl,-rpath,/nowhere",
        ];
        cc(&tmp, &[&mid[..], &own].concat());
        let build = |name: &str, libdir: &str, tags: &str| {
            let rpath = format!("-Wl,-rpath,$ORIGIN/{libdir}:$ORIGIN/deps");
            let (link, tags) = (format!("-L{libdir}"), format!("-Wl,{tags}"));
            let args = [
                "-o",
                name,
                "main.c",
                &link,
                "-lmid",
                "-Wl,-rpath-link,deps",
                &rpath,
                &tags,
            ];
            cc(&tmp, &args);
            tmp.join(name)
        };

        // The program's RPATH serves libmid's dependency.
        let program = build("inherits", "lib", "--disable-new-dtags");
        let files = library_closure(&program, &LoaderSearch::host()).unwrap();
        assert!(guests(&files).contains(&tmp.join("deps/libdep.so").display().to_string()));
        assert_matches_ldd(&program, &files);

        // A RUNPATH is not inherited; libmid's own RUNPATH disables the loaders' RPATH.
        for program in [
            build("runpath", "lib", "--enable-new-dtags"),
            build("own-runpath", "lib2", "--disable-new-dtags"),
        ] {
            assert_eq!(
                ldd_not_found(&program),
                ["libdep.so"],
                "{}",
                program.display()
            );
            let message = error(library_closure(&program, &LoaderSearch::host()));
            assert!(message.contains("libdep.so, needed by"), "{message}");
            assert!(message.contains("/libmid.so"), "{message}");
            assert!(!message.contains("deps/libdep.so"), "{message}");
        }
    }

    #[test]
    fn fake_root_follows_ld_so_conf_and_skips_other_classes() {
        let (_keep, root) = tempdir();
        let conf = "# test\ninclude /etc/ld.so.conf.d/*.conf\n/opt/z/\n\n";
        write(&root.join("etc/ld.so.conf"), conf);
        let conf_d = root.join("etc/ld.so.conf.d");
        // Written out of order: the glob sorts.
        write(&conf_d.join("30-c.conf"), "/opt/c\n");
        write(&conf_d.join("20-b.conf"), "/opt/b\n");
        write(&conf_d.join("40-d.conf"), "/opt/d\n/opt/a\n");
        write(
            &conf_d.join("10-a.conf"),
            "/opt/a # first\ninclude sub/*.conf\nhwcap 0 x\n",
        );
        write(&conf_d.join("sub/x.conf"), "\t/opt/a2\n");
        write(&conf_d.join("README"), "/opt/never\n");
        let search = LoaderSearch::under(&root);
        let expected = ["/opt/a", "/opt/a2", "/opt/b", "/opt/c", "/opt/d", "/opt/z"];
        let expected = expected.map(PathBuf::from);
        assert_eq!(search.conf_dirs, expected);

        // An earlier directory holds a 32-bit library of the name; the loader skips it.
        write(&root.join("opt/a/libfake.so.1"), elf32_header());
        let message = error(program_kind(&root.join("opt/a/libfake.so.1")));
        assert!(message.contains("not a 64-bit x86-64 ELF"), "{message}");
        write(&root.join("fake.c"), "int fake(void) { return 3; }\n");
        write(
            &root.join("main.c"),
            "int fake(void);\nint main(void) { return fake(); }\n",
        );
        let soname = "-Wl,-soname,libfake.so.1";
        cc(
            &root,
            &[
                "-shared",
                "-fPIC",
                "-o",
                "opt/b/libfake.so.1",
                soname,
                "fake.c",
            ],
        );
        cc(&root, &["-o", "bin/prog", "main.c", "opt/b/libfake.so.1"]);
        let ld_so = root.join("lib64/ld-linux-x86-64.so.2");
        fs::create_dir_all(ld_so.parent().unwrap()).unwrap();
        fs::copy("/lib64/ld-linux-x86-64.so.2", &ld_so).unwrap();
        let libc = root.join("usr/lib/x86_64-linux-gnu/libc.so.6");
        fs::create_dir_all(libc.parent().unwrap()).unwrap();
        fs::copy("/lib/x86_64-linux-gnu/libc.so.6", &libc).unwrap();

        let program = root.join("bin/prog");
        let files = library_closure(&program, &search).unwrap();
        let expected = [
            "/lib64/ld-linux-x86-64.so.2",
            "/opt/b/libfake.so.1",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ];
        assert_eq!(guests(&files), expected);
        assert!(files.iter().all(|f| f.host == search.host_path(&f.guest)));
        assert!(needs_loader_cache(&files, &search));

        // Without the 64-bit one, the error says what was skipped.
        fs::remove_file(root.join("opt/b/libfake.so.1")).unwrap();
        let message = error(library_closure(&program, &search));
        assert!(
            message.contains("libfake.so.1, needed by /bin/prog, not found"),
            "{message}"
        );
        assert!(
            message.contains("skipped, not 64-bit x86-64: /opt/a/libfake.so.1"),
            "{message}"
        );
        // A file of the name that is no ELF at all stops the loader.
        write(&root.join("opt/a2/libfake.so.1"), "INPUT(-lfake)\n");
        let message = error(library_closure(&program, &search));
        assert!(
            message.contains("opt/a2/libfake.so.1: invalid ELF header"),
            "{message}"
        );
    }

    #[test]
    fn missing_library_is_named_with_its_needer() {
        let (_keep, tmp) = tempdir();
        write(&tmp.join("gone.c"), "int gone(void) { return 0; }\n");
        write(
            &tmp.join("main.c"),
            "int gone(void);\nint main(void) { return gone(); }\n",
        );
        cc(
            &tmp,
            &["-shared", "-fPIC", "-o", "lib/libgone.so", "gone.c"],
        );
        cc(
            &tmp,
            &[
                "-o",
                "prog",
                "main.c",
                "-Llib",
                "-lgone",
                "-Wl,-rpath,$ORIGIN/lib",
            ],
        );
        fs::remove_file(tmp.join("lib/libgone.so")).unwrap();
        let program = tmp.join("prog");
        let message = error(library_closure(&program, &LoaderSearch::host()));
        let needer = format!("libgone.so, needed by {}, not found", program.display());
        assert!(message.contains(&needer), "{message}");
        assert!(message.contains(&tmp.join("lib/libgone.so").display().to_string()));
        assert!(
            message.contains("/usr/lib/x86_64-linux-gnu/libgone.so"),
            "{message}"
        );
        assert!(message.contains("`files`"), "{message}");
    }

    #[test]
    fn scripts_bring_their_interpreters() {
        let (_keep, tmp) = tempdir();
        let script = tmp.join("script.sh");
        write(&script, "#!/bin/sh -e\necho hi\n");
        let kind = ProgramKind::Script {
            interpreter: "/bin/sh".into(),
            argument: Some("-e".into()),
        };
        assert_eq!(program_kind(&script).unwrap(), kind);
        let search = LoaderSearch::host();
        let mut expected = library_closure(Path::new("/bin/sh"), &search).unwrap();
        assert!(file_names(&expected).contains("libc.so.6"));
        let sh = PathBuf::from("/bin/sh");
        expected.push(GuestFile {
            guest: sh.clone(),
            host: sh,
        });
        expected.sort();
        assert_eq!(library_closure(&script, &search).unwrap(), expected);

        // A script may be the interpreter of another one.
        let nested = tmp.join("nested");
        write(&nested, format!("#!{}\n", script.display()));
        let files = library_closure(&nested, &search).unwrap();
        assert!(files.iter().any(|f| f.guest == script));
        assert!(expected.iter().all(|f| files.contains(f)));

        if Path::new("/usr/bin/python3").exists() {
            let env = tmp.join("env.py");
            write(&env, "#!/usr/bin/env python3\nprint(1)\n");
            let names = file_names(&library_closure(&env, &search).unwrap());
            for name in ["env", "python3", "libexpat.so.1", "libc.so.6"] {
                assert!(names.contains(name), "{name} missing: {names:?}");
            }
        }

        write(&tmp.join("relative"), "#!sh\n");
        let message = error(library_closure(&tmp.join("relative"), &search));
        assert!(
            message.contains("relative to the current directory"),
            "{message}"
        );
    }

    #[test]
    fn shebang_lines_split_as_linux_does() {
        let script = |interpreter: &str, argument: Option<&str>| ProgramKind::Script {
            interpreter: interpreter.into(),
            argument: argument.map(Into::into),
        };
        let parse = |line: &str| parse_shebang(line.as_bytes()).unwrap();
        assert_eq!(
            parse("  /usr/bin/awk \t-f  x  \nrest"),
            script("/usr/bin/awk", Some("-f  x"))
        );
        assert_eq!(parse("/bin/sh\n"), script("/bin/sh", None));
        assert_eq!(parse("/bin/sh"), script("/bin/sh", None));
        assert!(parse_shebang(b"  \n/bin/sh").is_err());
    }

    #[test]
    fn non_programs_are_refused_clearly() {
        let (_keep, tmp) = tempdir();
        write(&tmp.join("text"), "echo hi\n");
        write(&tmp.join("empty"), "");
        for name in ["text", "empty"] {
            let message = error(program_kind(&tmp.join(name)));
            assert!(
                message.contains("neither an ELF program nor a script with #!"),
                "{message}"
            );
            assert!(message.contains(name), "{message}");
        }
        let missing = tmp.join("missing");
        let message = error(program_kind(&missing));
        assert!(
            message.contains(&missing.display().to_string()),
            "{message}"
        );
        assert!(message.contains("No such file"), "{message}");

        write(&tmp.join("a.c"), "int a(void) { return 0; }\n");
        cc(&tmp, &["-c", "-o", "a.o", "a.c"]);
        cc(&tmp, &["-shared", "-o", "liba.so", "a.o"]);
        assert!(error(program_kind(&tmp.join("a.o"))).contains("is not an executable"));
        assert!(error(program_kind(&tmp.join("liba.so"))).contains("a shared library"));
        write(&tmp.join("elf32"), elf32_header());
        assert!(error(program_kind(&tmp.join("elf32"))).contains("not a 64-bit x86-64"));
        // libc.so.6 can run as a program: it has an interpreter.
        let libc = Path::new("/lib/x86_64-linux-gnu/libc.so.6");
        assert!(matches!(
            program_kind(libc),
            Ok(ProgramKind::DynamicElf { .. })
        ));
    }

    #[test]
    fn dynamic_string_tokens_expand_as_glibc_s() {
        let text = "$ORIGIN/../lib:${ORIGIN}/x:/$LIB:/p/$PLATFORM:$ORIGINX:$:${LIB";
        let expanded = "/o/../lib:/o/x:/lib/x86_64-linux-gnu:/p/x86_64:$ORIGINX:$:${LIB";
        assert_eq!(expand_dst(text, "/o"), expanded);
        assert_eq!(normalize(Path::new("/o/./a/../lib/")), Path::new("/o/lib"));
        assert!(wildcard_match(b"*.conf", b"libc.conf") && !wildcard_match(b"*.conf", b"x.con"));
        assert!(wildcard_match(b"a?c*", b"abc") && !wildcard_match(b"a?c", b"ac"));
    }
}
