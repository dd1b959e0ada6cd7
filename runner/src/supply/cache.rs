//! The content-keyed cache under the user's cache directory (`~/.cache/rsslab`, or
//! `$RSSLAB_CACHE_DIR`): downloaded packages by sha256, unpacked kernels by the sha256s of
//! their packages, initramfs images by the digest of their contents.
//!
//! Nothing ever appears under a final name half-written: files are written to a temporary
//! file in the same directory and renamed into place ([`crate::files::write_atomic_with`]), directories are
//! filled under a temporary name and renamed when complete. A warm lab therefore fetches and
//! builds nothing, and an interrupted one leaves at most stray `.tmp*` entries behind.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use crate::files::parent_dir;

/// Environment variable that moves the cache.
pub const CACHE_DIR_ENV: &str = "RSSLAB_CACHE_DIR";

/// Subdirectory of downloaded files, named `<sha256>-<file name>`.
const DOWNLOADS: &str = "downloads";
/// Subdirectory of unpacked kernels, one directory per package set.
const KERNELS: &str = "kernels";
/// Subdirectory of initramfs images, named `<digest>.cpio.gz`.
const IMAGES: &str = "images";

/// The cache's root directory and the layout beneath it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// `$RSSLAB_CACHE_DIR`, else `<user cache dir>/rsslab` (`~/.cache/rsslab` on Linux).
    pub fn default_location() -> Result<Cache> {
        if let Some(dir) = std::env::var_os(CACHE_DIR_ENV).filter(|dir| !dir.is_empty()) {
            return Ok(Cache::at(PathBuf::from(dir)));
        }
        let base = dirs::cache_dir().ok_or_else(|| {
            anyhow!("no user cache directory (set HOME or XDG_CACHE_HOME, or {CACHE_DIR_ENV})")
        })?;
        Ok(Cache::at(base.join("rsslab")))
    }

    /// A cache rooted at `root` (created on first write).
    pub fn at(root: PathBuf) -> Cache {
        Cache { root }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `root/<name>`, created if missing. For other parts of the lab that cache by content.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root.join(name);
        fs::create_dir_all(&dir)
            .with_context(|| format!("creating cache directory {}", dir.display()))?;
        Ok(dir)
    }

    /// Directory of downloaded packages (created if missing).
    pub fn downloads_dir(&self) -> Result<PathBuf> {
        self.subdir(DOWNLOADS)
    }

    /// Where the download with this sha256 lives: `downloads/<sha256>-<file_name>`.
    pub fn download_path(&self, sha256: &str, file_name: &str) -> PathBuf {
        self.root
            .join(DOWNLOADS)
            .join(format!("{sha256}-{file_name}"))
    }

    /// Directory of unpacked kernels (created if missing).
    pub fn kernels_dir(&self) -> Result<PathBuf> {
        self.subdir(KERNELS)
    }

    /// Directory of initramfs images (created if missing).
    pub fn images_dir(&self) -> Result<PathBuf> {
        self.subdir(IMAGES)
    }

    /// Where the initramfs with this digest lives: `images/<digest>.cpio.gz`.
    pub fn image_path(&self, digest: &str) -> PathBuf {
        self.root.join(IMAGES).join(format!("{digest}.cpio.gz"))
    }
}

/// A temporary directory beside `final_dir`, to fill and then hand to [`publish_dir`].
pub fn temp_dir_beside(final_dir: &Path) -> Result<tempfile::TempDir> {
    let dir = parent_dir(final_dir)?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(dir)
        .with_context(|| format!("creating a temporary directory in {}", dir.display()))
}

/// Renames a filled temporary directory to `final_dir`. If another process published the same
/// content first, its copy is kept and ours is removed.
pub fn publish_dir(temp: tempfile::TempDir, final_dir: &Path) -> Result<()> {
    let temp_path = temp.keep();
    match fs::rename(&temp_path, final_dir) {
        Ok(()) => Ok(()),
        Err(_) if final_dir.is_dir() => {
            fs::remove_dir_all(&temp_path).ok();
            Ok(())
        }
        Err(error) => {
            fs::remove_dir_all(&temp_path).ok();
            Err(error).with_context(|| {
                format!(
                    "renaming {} to {}",
                    temp_path.display(),
                    final_dir.display()
                )
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_keyed_by_content() {
        let cache = Cache::at(PathBuf::from("/c"));
        assert_eq!(
            cache.download_path("ab", "x.deb"),
            Path::new("/c/downloads/ab-x.deb")
        );
        assert_eq!(cache.image_path("cd"), Path::new("/c/images/cd.cpio.gz"));
        assert_eq!(cache.root(), Path::new("/c"));
    }

    #[test]
    fn publishing_a_directory_twice_keeps_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("k");
        for content in ["first", "second"] {
            let temp = temp_dir_beside(&target).unwrap();
            fs::write(temp.path().join("f"), content).unwrap();
            publish_dir(temp, &target).unwrap();
        }
        assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
