//! [`Gguf`]: an opened file (a read-only mapping or bytes in memory) and its
//! validated index.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{Advice, Mmap, MmapOptions};

use crate::error::{Error, Result};
use crate::format::{self, ByteOrder, Index, Metadata};
use crate::tensor::TensorView;

/// A parsed GGUF file.
///
/// Opening maps (or reads) the file and validates its whole header; tensor
/// data is not touched until a tensor is used. Everything borrowed from a
/// `Gguf` (metadata strings, arrays, tensor bytes) points into the mapping:
/// nothing is copied per metadata entry, array element or tensor.
///
/// # The mapping contract
/// [`Gguf::open`] maps the file read-only. Like every memory map, this is
/// sound only while no other process truncates or rewrites the file: if the
/// file shrinks while mapped, touching the lost pages raises `SIGBUS` and
/// ends the process; if it is rewritten in place, views change under you.
/// Replacing the file by rename (what downloaders and `cp` to a temporary
/// name then `mv` do) is safe: the mapping keeps the old contents. For files
/// on storage that can change underneath (network file systems, files other
/// programs write), open with [`OpenOptions::in_memory`] or use
/// [`Gguf::read`], which copy the file into memory first.
#[derive(Debug)]
pub struct Gguf<'data> {
    storage: Storage<'data>,
    index: Index,
    path: Option<PathBuf>,
}

#[derive(Debug)]
enum Storage<'data> {
    /// Bytes this `Gguf` owns: a mapping or the file read into memory.
    Shared(SharedBytes),
    Borrowed(&'data [u8]),
}

/// Bytes a [`Gguf`] owns and shares with whatever reads them after it is
/// gone (candle storage over a tensor's blocks): a mapping, or a file read
/// into memory. Cloning shares them.
#[derive(Clone, Debug)]
pub(crate) enum SharedBytes {
    /// A read-only mapping of the file, and the handle it was made from:
    /// what reads the same file by position uses this handle, so it reads
    /// the very file mapped.
    Mapped { map: Arc<Mmap>, file: Arc<File> },
    /// The file's bytes, read into 64-byte-aligned memory.
    Owned(Arc<AlignedBytes>),
}

impl SharedBytes {
    /// All the bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            SharedBytes::Mapped { map, .. } => map.as_ref(),
            SharedBytes::Owned(bytes) => bytes.as_slice(),
        }
    }
}

/// How [`Gguf::open_with`] brings a file into memory.
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    populate: bool,
    advice: Option<Advice>,
    in_memory: bool,
}

impl OpenOptions {
    /// The defaults: a lazy read-only mapping, no advice.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prefault the whole mapping at open (Linux `MAP_POPULATE`): slower to
    /// open, no page faults later.
    pub fn populate(mut self, yes: bool) -> Self {
        self.populate = yes;
        self
    }

    /// Pass this `madvise` hint for the mapping (e.g. `Advice::Sequential`
    /// before a one-pass conversion, `Advice::WillNeed` to read ahead).
    pub fn advise(mut self, advice: Advice) -> Self {
        self.advice = Some(advice);
        self
    }

    /// Read the file into memory instead of mapping it: for storage that
    /// may change while the file is in use.
    pub fn in_memory(mut self, yes: bool) -> Self {
        self.in_memory = yes;
        self
    }
}

impl Gguf<'static> {
    /// Maps the file at `path` read-only and parses its header.
    ///
    /// See the mapping contract on [`Gguf`].
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened or mapped, or any parse
    /// error of [`format::parse`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// [`Gguf::open`] with options.
    ///
    /// The path is checked to be a regular file before it is opened, so a
    /// FIFO, socket, device or directory is an error at once rather than a
    /// read that blocks forever.
    ///
    /// # Errors
    /// As [`Gguf::open`], and [`Error::NotAFile`] for anything but a
    /// regular file.
    pub fn open_with(path: impl AsRef<Path>, options: &OpenOptions) -> Result<Self> {
        let path = path.as_ref();
        let io = |source| Error::Io {
            path: path.to_owned(),
            source,
        };
        // `stat` first: it never blocks, where opening a FIFO would.
        check_regular(path, &std::fs::metadata(path).map_err(io)?)?;
        let file = open_no_block(path).map_err(io)?;
        // Again on the handle: the path may have been swapped in between.
        check_regular(path, &file.metadata().map_err(io)?)?;
        let storage = if options.in_memory {
            // Read to its end, however long it has grown since.
            let bytes = AlignedBytes::read_from(&file, u64::MAX).map_err(|e| e.at(path))?;
            Storage::owned(bytes)
        } else {
            let map = map_read_only(&file, options.populate).map_err(|e| map_error(path, e))?;
            if let Some(advice) = options.advice {
                map.advise(advice).map_err(io)?;
            }
            Storage::Shared(SharedBytes::Mapped {
                map: Arc::new(map),
                file: Arc::new(file),
            })
        };
        let mut gguf = Self::from_storage(storage)?;
        gguf.path = Some(path.to_owned());
        Ok(gguf)
    }

    /// Reads a whole GGUF file from `reader` into memory (64-byte aligned)
    /// and parses it: for callers that cannot map files.
    ///
    /// Memory grows with the stream; where the stream is not trusted to end,
    /// use [`Gguf::read_limited`].
    ///
    /// # Errors
    /// [`Error::Stream`] if reading fails or memory for the bytes cannot be
    /// had, or any parse error.
    pub fn read(reader: impl Read) -> Result<Self> {
        Self::read_limited(reader, u64::MAX)
    }

    /// [`Gguf::read`], refusing a stream longer than `max_bytes`: memory
    /// stays within twice `max_bytes` whatever the stream does.
    ///
    /// # Errors
    /// [`Error::StreamTooLong`] once the stream passes `max_bytes`, and
    /// those of [`Gguf::read`].
    pub fn read_limited(reader: impl Read, max_bytes: u64) -> Result<Self> {
        let bytes = AlignedBytes::read_from(reader, max_bytes).map_err(ReadError::into_stream)?;
        Self::from_storage(Storage::owned(bytes))
    }
}

/// Refuses anything but a regular file, naming what it is.
fn check_regular(path: &Path, metadata: &std::fs::Metadata) -> Result<()> {
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
fn open_no_block(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_no_block(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

/// A mapping failure, explained where the OS's words do not help: file
/// systems such as `/proc` and `/sys` cannot be mapped ("No such device").
fn map_error(path: &Path, source: std::io::Error) -> Error {
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
        path: path.to_owned(),
        source,
    }
}

impl<'data> Gguf<'data> {
    /// Parses a GGUF file held in `bytes`, borrowing them.
    ///
    /// Zero-copy typed views need the tensor data suitably aligned in memory;
    /// where it is not, the copying accessors still work.
    ///
    /// # Errors
    /// Any parse error of [`format::parse`].
    pub fn from_bytes(bytes: &'data [u8]) -> Result<Self> {
        Self::from_storage(Storage::Borrowed(bytes))
    }

    fn from_storage(storage: Storage<'data>) -> Result<Self> {
        let index = format::parse(storage.bytes())?;
        Ok(Gguf {
            storage,
            index,
            path: None,
        })
    }

    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.storage.bytes()
    }

    /// The path the file was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// True when the file is memory-mapped (rather than read into memory or
    /// borrowed).
    pub fn is_mapped(&self) -> bool {
        matches!(self.shared(), Some(SharedBytes::Mapped { .. }))
    }

    /// The bytes, where this `Gguf` owns them (mapped or read into memory),
    /// as a handle that keeps them alive after it is gone (candle storage
    /// over a tensor's blocks); `None` for borrowed bytes.
    pub(crate) fn shared(&self) -> Option<&SharedBytes> {
        match &self.storage {
            Storage::Shared(bytes) => Some(bytes),
            Storage::Borrowed(_) => None,
        }
    }

    /// The open file a mapping was made from: positioned reads through it
    /// see the same file as the mapping, however the path changed since.
    #[cfg_attr(not(all(unix, feature = "candle")), allow(dead_code))]
    pub(crate) fn mapped_file(&self) -> Option<&File> {
        match self.shared()? {
            SharedBytes::Mapped { file, .. } => Some(file),
            SharedBytes::Owned(_) => None,
        }
    }

    /// The parsed index (offsets only).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// GGUF version: 2 or 3.
    pub fn version(&self) -> u32 {
        self.index.version()
    }

    /// Byte order of the file's numbers.
    pub fn byte_order(&self) -> ByteOrder {
        self.index.byte_order()
    }

    /// Alignment of tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> u32 {
        self.index.alignment()
    }

    /// Absolute offset of the tensor data section.
    pub fn data_offset(&self) -> usize {
        self.index.data_start()
    }

    /// The metadata.
    pub fn metadata(&self) -> Metadata<'_> {
        self.index.metadata(self.bytes())
    }

    /// Number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.index.tensors().len()
    }

    /// Every tensor, in file order.
    pub fn tensors(&self) -> impl ExactSizeIterator<Item = TensorView<'_>> + '_ {
        let data = self.bytes();
        let order = self.byte_order();
        let shared = self.shared();
        let start = self.data_offset();
        self.index
            .tensors()
            .iter()
            .map(move |info| TensorView::new(data, start, info, order, shared))
    }

    /// The tensor named `name`.
    ///
    /// # Errors
    /// [`Error::TensorNotFound`].
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        let data = self.bytes();
        self.index
            .find_tensor(data, name)
            .and_then(|i| self.index.tensors().get(i))
            .map(|info| {
                let start = self.data_offset();
                TensorView::new(data, start, info, self.byte_order(), self.shared())
            })
            .ok_or_else(|| Error::TensorNotFound {
                name: name.to_owned(),
            })
    }

    /// Total bytes of tensor data.
    pub fn tensor_bytes(&self) -> u64 {
        self.index.tensors().iter().map(|t| t.n_bytes()).sum()
    }
}

impl Storage<'_> {
    /// Bytes read into memory, owned.
    fn owned(bytes: AlignedBytes) -> Self {
        Storage::Shared(SharedBytes::Owned(Arc::new(bytes)))
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Shared(bytes) => bytes.bytes(),
            Storage::Borrowed(bytes) => bytes,
        }
    }
}

/// Maps `file` read-only.
#[allow(unsafe_code)]
fn map_read_only(file: &File, populate: bool) -> std::io::Result<Mmap> {
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

/// Bytes in a 64-byte-aligned buffer, so that tensor data at aligned file
/// offsets is aligned in memory too.
#[derive(Debug)]
pub(crate) struct AlignedBytes {
    chunks: Vec<Align64>,
    len: usize,
}

#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Align64([u8; 64]);

/// Why reading a stream into memory stopped.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    TooLong(u64),
}

impl ReadError {
    fn into_stream(self) -> Error {
        match self {
            ReadError::Io(e) => Error::Stream(e),
            ReadError::TooLong(limit) => Error::StreamTooLong { limit },
        }
    }

    fn at(self, path: &Path) -> Error {
        match self {
            ReadError::Io(source) => Error::Io {
                path: path.to_owned(),
                source,
            },
            ReadError::TooLong(limit) => Error::StreamTooLong { limit },
        }
    }
}

impl AlignedBytes {
    /// Reads `reader` to its end, growing by doubling (memory stays within
    /// twice the input), refusing more than `limit` bytes. Growth asks the
    /// allocator with `try_reserve`, so running out of memory is an error,
    /// not an abort.
    fn read_from(mut reader: impl Read, limit: u64) -> Result<Self, ReadError> {
        let mut chunks: Vec<Align64> = Vec::new();
        let mut len = 0usize;
        loop {
            if len == chunks.len() * 64 {
                let grown = (chunks.len() * 2).max(1024);
                chunks
                    .try_reserve_exact(grown - chunks.len())
                    .map_err(|e| {
                        ReadError::Io(std::io::Error::new(std::io::ErrorKind::OutOfMemory, e))
                    })?;
                chunks.resize(grown, Align64([0; 64]));
            }
            let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut chunks);
            match reader.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
            if len as u64 > limit {
                return Err(ReadError::TooLong(limit));
            }
        }
        chunks.truncate(len.div_ceil(64));
        chunks.shrink_to_fit();
        Ok(AlignedBytes { chunks, len })
    }

    fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.chunks)[..self.len]
    }
}
