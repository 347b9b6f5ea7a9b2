//! Opening a file: refusing what is not a regular file without blocking,
//! and mapping it read-only (the crate's one `unsafe` outside candle).

use std::fs::File;
use std::path::Path;

use memmap2::{Mmap, MmapOptions};

use crate::error::{Error, Result};

/// Refuses anything but a regular file, naming what it is.
pub(crate) fn check_regular(path: &Path, metadata: &std::fs::Metadata) -> Result<()> {
    let file_type = metadata.file_type();
    if file_type.is_file() {
        return Ok(());
    }
    let kind = if file_type.is_dir() {
        "a directory"
    } else {
        special_file_kind(&file_type)
    };
    Err(Error::NotAFile {
        path: path.to_owned(),
        kind,
    })
}

#[cfg(unix)]
fn special_file_kind(file_type: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Opens `path` for reading without blocking: were it swapped for a FIFO
/// after the check, the open returns at once and the second check refuses it.
#[cfg(unix)]
pub(crate) fn open_no_block(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
pub(crate) fn open_no_block(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// A mapping failure, explained where the OS's words do not help: file
/// systems such as `/proc` and `/sys` cannot be mapped ("No such device").
pub(crate) fn map_error(path: &Path, source: std::io::Error) -> Error {
    #[cfg(unix)]
    let source = if source.raw_os_error() == Some(libc::ENODEV) {
        std::io::Error::new(
            source.kind(),
            "its file system does not support memory mapping (a /proc or /sys file?)",
        )
    } else {
        source
    };
    Error::Io {
        path: Some(path.to_owned()),
        source,
    }
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
pub(crate) fn map_read_only(file: &File, populate: bool) -> std::io::Result<Mmap> {
    let mut options = MmapOptions::new();
    if populate {
        options.populate();
    }
    // SAFETY: `Mmap` hands out `&[u8]` over the file's pages, which is sound
    // only while the file's contents do not change under the mapping. The
    // mapping is read-only and private to this process; what no code here
    // can rule out is another process truncating or rewriting the file. That
    // contract is documented on `Gguf` and in the README (truncation raises
    // SIGBUS; replacement by rename is safe; `OpenOptions::in_memory` is the
    // alternative for storage that can change).
    unsafe { options.map(file) }
}
