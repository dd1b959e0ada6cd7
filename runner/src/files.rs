//! Files written whole: into a temporary file beside the target, synced, then renamed over it,
//! so that a reader never sees half a file and an interrupted writer leaves none. The cache
//! (downloads, kernels, images) and a lab's output directory (records, results, reports) both
//! write this way.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Creates `path` atomically: `fill` writes into a temporary file in the same directory, which
/// is synced and renamed to `path` only if `fill` succeeds; on error nothing is left behind.
/// The file is private to its owner (the cache's files).
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut fs::File) -> Result<()>,
) -> Result<()> {
    let dir = parent_dir(path)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    fill(temp.as_file_mut())?;
    temp.as_file_mut()
        .sync_all()
        .with_context(|| format!("writing {}", temp.path().display()))?;
    temp.persist(path)
        .map_err(|error| error.error)
        .with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Writes `contents` to `path` atomically (see [`write_atomic_with`]), readable by everyone
/// like any file the user writes: a lab's outputs are for sharing.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| {
        file.write_all(contents)
            .with_context(|| format!("writing {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(fs::Permissions::from_mode(0o644))
                .with_context(|| format!("setting permissions of {}", path.display()))?;
        }
        Ok(())
    })
}

/// The directory `path` is in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> Result<&Path> {
    match path.parent() {
        Some(dir) if dir.as_os_str().is_empty() => Ok(Path::new(".")),
        Some(dir) => Ok(dir),
        None => anyhow::bail!("{} has no parent directory", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_a_failed_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/file");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");

        let other = dir.path().join("sub/other");
        let result = write_atomic_with(&other, |file| {
            file.write_all(b"half")?;
            Err(anyhow::anyhow!("interrupted"))
        });
        assert!(result.is_err());
        assert!(!other.exists());
        let names: Vec<_> = fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["file"]);
    }
}
