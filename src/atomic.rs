//! [`AtomicFile`]: output written beside its target and renamed into place
//! only once complete, so a failed or interrupted write never leaves a
//! truncated file, never removes what was there before, and never rewrites
//! a file that some process has mapped.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Temporary files made by this process so far: with the process id, a
/// name no other writer picks.
static TEMPORARIES: AtomicU32 = AtomicU32::new(0);

/// A file being written to a temporary name beside its target.
///
/// [`AtomicFile::commit`] flushes it, syncs it to disk and renames it over
/// the target; dropping it uncommitted removes the temporary file and leaves
/// the target as it was. A process that has the old target mapped keeps
/// reading the old contents: the rename gives the path a new file rather
/// than rewriting the old one.
///
/// A target that exists and is not a regular file (`/dev/null`, a FIFO, a
/// terminal) is written directly, since it cannot be replaced: nothing is
/// created beside it and nothing is removed on failure. A symbolic link is
/// followed, so the file it points to is replaced and the link kept.
///
/// ```
/// use std::io::Write;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("out.bin");
/// let mut out = ggufmap::AtomicFile::create(&path)?;
/// out.write_all(b"complete")?;
/// out.commit()?;
/// assert_eq!(std::fs::read(&path)?, b"complete");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    writer: BufWriter<File>,
    /// Where the file ends up.
    target: PathBuf,
    /// The temporary file, or `None` when writing the target directly.
    temporary: Option<PathBuf>,
    /// Whether [`AtomicFile::commit`] syncs the data before the rename.
    durable: bool,
}

impl AtomicFile {
    /// Starts writing a file that will replace `path` on commit.
    ///
    /// # Errors
    /// The operating system's error if the temporary file cannot be made
    /// in `path`'s directory (or a special target cannot be opened), or
    /// `InvalidInput` if `path` is a directory.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let target = resolve_links(path)?;
        match fs::metadata(&target) {
            Ok(meta) if meta.is_dir() => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a directory", path.display()),
            )),
            Ok(meta) if !meta.is_file() => {
                let file = fs::OpenOptions::new().write(true).open(&target)?;
                Ok(Self::new(file, target, None))
            }
            Ok(meta) => Self::beside(target, Some(meta.permissions())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::beside(target, None),
            Err(e) => Err(e),
        }
    }

    /// [`AtomicFile::create`], refusing a target that is one of `inputs`
    /// (the same file through any path, hard link or symbolic link) before
    /// anything is written: replacing an input while it is read would
    /// destroy it.
    ///
    /// # Errors
    /// `InvalidInput` naming both paths when the target is an input, and
    /// those of [`AtomicFile::create`].
    pub fn create_apart_from(path: impl AsRef<Path>, inputs: &[&Path]) -> io::Result<Self> {
        let path = path.as_ref();
        for input in inputs {
            if same_file(path, input)? {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "output {} is the input file {}",
                        path.display(),
                        input.display()
                    ),
                ));
            }
        }
        Self::create(path)
    }

    fn new(file: File, target: PathBuf, temporary: Option<PathBuf>) -> Self {
        AtomicFile {
            writer: BufWriter::with_capacity(1 << 20, file),
            target,
            temporary,
            durable: true,
        }
    }

    /// A new temporary file in `target`'s directory, with the permissions
    /// of the file it will replace where there is one.
    fn beside(target: PathBuf, permissions: Option<fs::Permissions>) -> io::Result<Self> {
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} names no file", target.display()),
            )
        })?;
        let mut temporary_name = std::ffi::OsString::from(".");
        temporary_name.push(name);
        temporary_name.push(format!(
            ".{}.{}.tmp",
            std::process::id(),
            TEMPORARIES.fetch_add(1, Ordering::Relaxed)
        ));
        let temporary = target.with_file_name(temporary_name);
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temporary)?;
        if let Some(permissions) = permissions {
            // Best effort: a file system without permissions still works.
            let _ = file.set_permissions(permissions);
        }
        Ok(Self::new(file, target, Some(temporary)))
    }

    /// The path the file is committed to (symbolic links resolved).
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Whether [`AtomicFile::commit`] syncs the file to disk before renaming
    /// it (the default, `true`). Without the sync, commit costs what a
    /// plain copy costs, and readers still never see a partial file; but a
    /// power loss or crash of the system soon after may leave the target
    /// empty or incomplete on file systems that do not order the rename
    /// after the data.
    ///
    /// ```
    /// use std::io::Write;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("scratch.bin");
    /// let mut out = ggufmap::AtomicFile::create(&path)?.durable(false);
    /// out.write_all(b"scratch data")?;
    /// out.commit()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[must_use]
    pub fn durable(mut self, yes: bool) -> Self {
        self.durable = yes;
        self
    }

    /// Finishes the file: flushes, syncs (unless not
    /// [`durable`](AtomicFile::durable)) and renames it over the target.
    ///
    /// # Errors
    /// The operating system's error; the target is then left as it was and
    /// the temporary file removed.
    pub fn commit(mut self) -> io::Result<()> {
        self.writer.flush()?;
        let Some(temporary) = self.temporary.take() else {
            return Ok(());
        };
        let synced = if self.durable {
            self.writer.get_ref().sync_all()
        } else {
            Ok(())
        };
        let renamed = synced.and_then(|()| fs::rename(&temporary, &self.target));
        if renamed.is_err() {
            // Best effort: the error worth reporting is the one above.
            let _ = fs::remove_file(&temporary);
        }
        renamed
    }
}

impl AtomicFile {
    /// Appends `len` bytes of `file` from `offset`, through the kernel
    /// where the operating system offers a copy between files
    /// (`copy_file_range` on Linux, which also shares blocks where the file
    /// system can), else through a bounded buffer. Moves `file`'s cursor.
    /// Returns the bytes copied: fewer than `len` only where `file` ends
    /// first.
    ///
    /// # Errors
    /// The operating system's error reading `file` or writing the output.
    pub fn copy_from(&mut self, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        // `BufWriter<File>` and `Take<&File>` are what std's copy
        // specialises: it flushes the buffer, then copies in the kernel.
        io::copy(&mut file.take(len), &mut self.writer)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let Some(temporary) = self.temporary.take() {
            // Best effort: nothing can report an error from a drop.
            let _ = fs::remove_file(temporary);
        }
    }
}

/// `path` with symbolic links followed to the file they name, so that the
/// rename replaces that file and keeps the link; `path` itself when it is
/// not a link or does not exist yet.
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => match fs::canonicalize(path) {
            Ok(resolved) => Ok(resolved),
            // A dangling link: write where it points.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let link = fs::read_link(path)?;
                Ok(path.parent().map_or(link.clone(), |dir| dir.join(link)))
            }
            Err(e) => Err(e),
        },
        Ok(_) => Ok(path.to_owned()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path.to_owned()),
        Err(e) => Err(e),
    }
}

/// True when `a` and `b` name one file (the same device and inode on Unix,
/// so hard links and symbolic links are seen through); false when either
/// does not exist. Errors when a path exists but cannot be examined.
pub(crate) fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    Ok(match (identity(a)?, identity(b)?) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    })
}

/// What names a file whatever the path to it, or `None` when nothing is
/// at `path`.
#[cfg(unix)]
fn identity(path: &Path) -> io::Result<Option<(u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    match fs::metadata(path) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn identity(path: &Path) -> io::Result<Option<PathBuf>> {
    match fs::canonicalize(path) {
        Ok(resolved) => Ok(Some(resolved)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_files_leave_the_target_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        fs::write(&path, b"before").unwrap();
        let mut out = AtomicFile::create(&path).unwrap();
        out.write_all(b"after, but never committed").unwrap();
        drop(out);
        assert_eq!(fs::read(&path).unwrap(), b"before");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary left behind"
        );
    }

    #[test]
    fn commit_replaces_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        fs::write(&real, b"old").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&real, &link).unwrap();
        #[cfg(not(unix))]
        fs::copy(&real, &link).unwrap();
        let mut out = AtomicFile::create(&link).unwrap();
        out.write_all(b"new").unwrap();
        out.commit().unwrap();
        #[cfg(unix)]
        {
            assert!(fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(fs::read(&real).unwrap(), b"new");
        }
        assert_eq!(fs::read(&link).unwrap(), b"new");
    }

    #[cfg(unix)]
    #[test]
    fn hard_links_are_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"x").unwrap();
        fs::hard_link(&a, &b).unwrap();
        assert!(same_file(&a, &b).unwrap());
        assert!(!same_file(&a, &dir.path().join("missing")).unwrap());
        let c = dir.path().join("c");
        fs::write(&c, b"x").unwrap();
        assert!(!same_file(&a, &c).unwrap());
    }

    #[cfg(unix)]
    #[test]
    fn special_files_are_written_in_place() {
        let mut out = AtomicFile::create("/dev/null").unwrap();
        out.write_all(b"discarded").unwrap();
        out.commit().unwrap();
        assert!(Path::new("/dev/null").exists());
        assert!(AtomicFile::create(std::env::temp_dir()).is_err());
    }
}
