//! Where a part's bytes live, and the one way everything above reads them:
//! [`Storage::get`] borrows a byte range where the bytes are in memory,
//! [`Storage::read_at`] copies one into a caller's buffer from wherever
//! they are (the mapping's file by positioned reads, memory, or a
//! `Read + Seek` stream).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use memmap2::Mmap;

/// A part's bytes.
pub(crate) enum Storage<'data> {
    /// Bytes the model owns: a mapping or the file read into memory.
    Shared(SharedBytes),
    /// Bytes the caller lent ([`crate::Gguf::from_bytes`]).
    Borrowed(&'data [u8]),
    /// A stream: its header in memory, tensor data read on demand.
    Streamed(Stream),
}

/// Bytes a [`crate::Gguf`] owns and shares with whatever reads them after
/// it is gone (candle storage over a tensor's blocks): a mapping, or a file
/// read into memory. Cloning shares them.
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

/// What a stream source must be: positioned by `Seek`, shared between
/// threads behind a lock.
pub(crate) trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// A streamed source: the header read into memory at open, tensor data
/// read on demand.
pub(crate) struct Stream {
    header: AlignedBytes,
    len: u64,
    source: StreamSource,
}

/// Where a stream's tensor data is read from.
enum StreamSource {
    /// A file, read by position: threads read at once, with no lock.
    #[cfg(unix)]
    File(File),
    /// Any `Read + Seek`, under a lock (reads are short; decoding, which
    /// is not, runs outside it).
    Reader(Mutex<Box<dyn ReadSeek>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("header_bytes", &self.header.len())
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// A stream over `reader`, whose first bytes are `header`.
    pub(crate) fn new(header: AlignedBytes, len: u64, reader: Box<dyn ReadSeek>) -> Self {
        Stream {
            header,
            len,
            source: StreamSource::Reader(Mutex::new(reader)),
        }
    }

    /// A stream over a file, read by position.
    #[cfg(unix)]
    pub(crate) fn of_file(header: AlignedBytes, len: u64, file: File) -> Self {
        Stream {
            header,
            len,
            source: StreamSource::File(file),
        }
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        match &self.source {
            #[cfg(unix)]
            StreamSource::File(file) => {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(out, offset)
            }
            StreamSource::Reader(reader) => {
                // A reader that panicked mid-read left no invariant of ours
                // broken: the next read seeks first.
                let mut reader = reader.lock().unwrap_or_else(PoisonError::into_inner);
                reader.seek(SeekFrom::Start(offset))?;
                reader.read_exact(out)
            }
        }
    }
}

impl std::fmt::Debug for Storage<'_> {
    /// The kind and the length: printing a model's bytes helps no one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Storage::Shared(SharedBytes::Mapped { .. }) => "Mapped",
            Storage::Shared(SharedBytes::Owned(_)) => "InMemory",
            Storage::Borrowed(_) => "Borrowed",
            Storage::Streamed(_) => "Streamed",
        };
        f.debug_struct(kind).field("len", &self.len()).finish()
    }
}

impl Storage<'_> {
    /// Bytes read into memory, owned.
    pub(crate) fn owned(bytes: AlignedBytes) -> Self {
        Storage::Shared(SharedBytes::Owned(Arc::new(bytes)))
    }

    /// The bytes the header was parsed from: the whole file where it is in
    /// memory, the header alone for a stream. Metadata and tensor names
    /// point into these.
    pub(crate) fn header(&self) -> &[u8] {
        match self {
            Storage::Shared(bytes) => bytes.bytes(),
            Storage::Borrowed(bytes) => bytes,
            Storage::Streamed(stream) => stream.header.as_slice(),
        }
    }

    /// Length of the whole file in bytes.
    pub(crate) fn len(&self) -> u64 {
        match self {
            Storage::Streamed(stream) => stream.len,
            _ => self.header().len() as u64,
        }
    }

    /// The bytes at `range`, where they are in memory; `None` for a stream
    /// (or a range outside the bytes, which the index rules out).
    pub(crate) fn get(&self, range: Range<u64>) -> Option<&[u8]> {
        match self {
            Storage::Streamed(_) => None,
            _ => {
                let start = usize::try_from(range.start).ok()?;
                let end = usize::try_from(range.end).ok()?;
                self.header().get(start..end)
            }
        }
    }

    /// The owned bytes, where there are any (mapped or read into memory).
    pub(crate) fn shared(&self) -> Option<&SharedBytes> {
        match self {
            Storage::Shared(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// True for a mapping.
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(self.shared(), Some(SharedBytes::Mapped { .. }))
    }

    /// True where tensor bytes can only be read, not borrowed.
    pub(crate) fn is_streamed(&self) -> bool {
        matches!(self, Storage::Streamed(_))
    }

    /// True where the engine reads tensor bytes rather than borrowing
    /// them: a stream always; with `read_mapped`, a mapped file on Unix
    /// (read by position, so that its pages never become resident).
    pub(crate) fn reads_tensors(&self, read_mapped: bool) -> bool {
        self.is_streamed() || (read_mapped && cfg!(unix) && self.is_mapped())
    }

    /// Copies the file's bytes from `offset` into `out`. A mapped file is
    /// read by position through the handle it was mapped from (`pread` on
    /// Unix), so the mapping's pages do not become resident; bytes in
    /// memory are copied; a stream seeks and reads.
    ///
    /// # Errors
    /// The source's error; a read past the end is `UnexpectedEof`.
    pub(crate) fn read_at(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        match self {
            #[cfg(unix)]
            Storage::Shared(SharedBytes::Mapped { file, .. }) => {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(out, offset)
            }
            Storage::Streamed(stream) => stream.read_at(offset, out),
            _ => {
                let len = out.len() as u64;
                let src = offset
                    .checked_add(len)
                    .and_then(|end| self.get(offset..end))
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "range past the end of the bytes",
                        )
                    })?;
                out.copy_from_slice(src);
                Ok(())
            }
        }
    }
}

/// Bytes in a 64-byte-aligned buffer, so that tensor data at aligned file
/// offsets is aligned in memory too.
pub(crate) struct AlignedBytes {
    chunks: Vec<Align64>,
    len: usize,
}

#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C, align(64))]
struct Align64([u8; 64]);

impl std::fmt::Debug for AlignedBytes {
    /// The length only: printing a model's bytes helps no one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBytes")
            .field("len", &self.len)
            .finish()
    }
}

/// Why reading a stream into memory stopped.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(std::io::Error),
    TooLong(u64),
}

impl AlignedBytes {
    /// No bytes.
    pub(crate) fn empty() -> Self {
        AlignedBytes {
            chunks: Vec::new(),
            len: 0,
        }
    }

    /// Reads `reader` to its end, growing by doubling (memory stays within
    /// twice the input), refusing more than `limit` bytes. Growth asks the
    /// allocator with `try_reserve`, so running out of memory is an error,
    /// not an abort.
    pub(crate) fn read_from(reader: impl Read, limit: u64) -> Result<Self, ReadError> {
        let mut bytes = AlignedBytes::empty();
        bytes.read_more(reader, limit, u64::MAX)?;
        Ok(bytes)
    }

    /// Appends from `reader` until it ends or `until` bytes are held in
    /// all, refusing to hold more than `limit`; returns the bytes added.
    pub(crate) fn read_more(
        &mut self,
        mut reader: impl Read,
        limit: u64,
        until: u64,
    ) -> Result<usize, ReadError> {
        let before = self.len;
        while (self.len as u64) < until {
            if self.len == self.chunks.len() * 64 {
                let grown = (self.chunks.len() * 2).max(1024);
                self.chunks
                    .try_reserve_exact(grown - self.chunks.len())
                    .map_err(|e| {
                        ReadError::Io(std::io::Error::new(std::io::ErrorKind::OutOfMemory, e))
                    })?;
                self.chunks.resize(grown, Align64([0; 64]));
            }
            let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut self.chunks);
            let room = buf.len().min(usize::try_from(until).unwrap_or(usize::MAX));
            match reader.read(&mut buf[self.len..room]) {
                Ok(0) => break,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
            if self.len as u64 > limit {
                return Err(ReadError::TooLong(limit));
            }
        }
        self.chunks.truncate(self.len.div_ceil(64));
        self.chunks.shrink_to_fit();
        Ok(self.len - before)
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.chunks)[..self.len]
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
