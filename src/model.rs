//! [`Gguf`]: a model of one or more parts (a file, or the files of a split
//! model), each a mapping, bytes in memory or a stream, with its validated
//! index; one metadata view and one tensor table over all of them.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::file::{check_regular, map_error, map_read_only, open_no_block};
use crate::format::{self, ByteOrder, Index, Metadata};
use crate::part::Part;
use crate::pool::PooledBuf;
use crate::quant::Output;
use crate::split::{self, SplitKeys};
use crate::storage::{AlignedBytes, ReadError, ReadSeek, SharedBytes, Storage, Stream};
use crate::tensor::{DequantOptions, TensorView};

/// Bytes of a stream's header read first; doubled until the header parses.
const FIRST_HEADER_READ: u64 = 1 << 20;

/// The most header bytes [`Gguf::from_reader`] reads into memory: metadata
/// and tensor infos of the largest models take a few tens of MiB.
pub const MAX_STREAMED_HEADER_BYTES: u64 = 1 << 30;

/// A GGUF model: one file, or every part of a split model, opened as one.
///
/// ```
/// use ggufmap::{DequantOptions, GgmlType, Gguf, GgufWriter};
///
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("tiny.gguf");
/// let mut writer = GgufWriter::new();
/// writer.add_metadata("general.architecture", "llama")?;
/// writer.add_tensor("w", GgmlType::F32, &[4, 2], bytemuck::cast_slice(&[0.5f32; 8]))?;
/// writer.write_file(&path)?;
///
/// let model = Gguf::open(&path)?; // mapped; the first part of a split model opens them all
/// assert_eq!(model.metadata().get_str("general.architecture")?, "llama");
/// for t in model.tensors() {
///     assert_eq!((t.name(), t.shape()), ("w", vec![2, 4]));
/// }
/// let w = model.tensor("w")?;
/// assert_eq!(w.as_slice::<f32>()?, &[0.5; 8]); // borrowed from the mapping
/// let values = w.dequantize::<half::f16>(&DequantOptions::default())?; // pooled
/// assert_eq!(values[0], half::f16::from_f32(0.5));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// Opening maps (or reads) each file and validates its whole header; tensor
/// data is not touched until a tensor is used. Everything borrowed from a
/// `Gguf` (metadata strings, arrays, tensor bytes) points into the mapping:
/// nothing is copied per metadata entry, array element or tensor.
///
/// # Split models
/// [`Gguf::open`] on the first part of a model split as llama.cpp's
/// `gguf-split` writes it (`<prefix>-00001-of-00003.gguf`) opens every part
/// and checks that they belong together (see [`crate::split`]); the model's
/// metadata is the first part's, and its tensors are those of every part,
/// the parts in order. [`Gguf::open_split`] takes the paths explicitly.
///
/// # The mapping contract
/// [`Gguf::open`] maps the file read-only. Like every memory map, this is
/// sound only while no other process truncates or rewrites the file: if the
/// file shrinks while mapped, touching the lost pages raises `SIGBUS` and
/// ends the process; if it is rewritten in place, views change under you.
/// Replacing the file by rename (what downloaders and `cp` to a temporary
/// name then `mv` do) is safe: the mapping keeps the old contents. For files
/// on storage that can change underneath (network file systems, files other
/// programs write), stream them ([`OpenOptions::streamed`],
/// [`Gguf::from_reader`]: the header in memory, tensor data read on demand)
/// or read them into memory ([`OpenOptions::in_memory`], [`Gguf::read`]).
#[derive(Debug)]
pub struct Gguf<'data> {
    /// At least one.
    parts: Vec<Part<'data>>,
    /// (part, position in the part) of every tensor sorted by name, for a
    /// model of several parts; empty for one part, whose index has its own.
    by_name: Vec<(u32, u32)>,
}

/// How a mapped model will be read, for [`OpenOptions::advise`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Advice {
    /// In order, once (a conversion, `verify`): read ahead, drop behind.
    Sequential,
    /// In no order (inference touching weights as layers need them).
    Random,
    /// Soon, all of it: start reading it in now.
    WillNeed,
}

impl Advice {
    /// Gives the hint for `map` where the OS takes it.
    fn apply(self, map: &memmap2::Mmap) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            let advice = match self {
                Advice::Sequential => memmap2::Advice::Sequential,
                Advice::Random => memmap2::Advice::Random,
                Advice::WillNeed => memmap2::Advice::WillNeed,
            };
            map.advise(advice)
        }
        #[cfg(not(unix))]
        {
            let _ = (self, map);
            Ok(())
        }
    }
}

/// How [`Gguf::open_with`] brings a file into memory.
///
/// ```
/// use ggufmap::{Advice, Gguf, OpenOptions};
/// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf");
/// // Mapped, with the kernel told the data will be read front to back.
/// let mapped = Gguf::open_with(path, &OpenOptions::new().advise(Advice::Sequential))?;
/// assert!(mapped.is_mapped());
/// // Read into memory: nothing depends on the file afterwards.
/// let owned = Gguf::open_with(path, &OpenOptions::new().in_memory(true))?;
/// assert!(!owned.is_mapped() && owned.as_bytes().is_some());
/// // Streamed: the header in memory, tensor data read when used.
/// let streamed = Gguf::open_with(path, &OpenOptions::new().streamed(true))?;
/// assert!(streamed.is_streamed());
/// # Ok::<(), ggufmap::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct OpenOptions {
    populate: bool,
    advice: Option<Advice>,
    in_memory: bool,
    streamed: bool,
    single_file: bool,
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

    /// Pass this hint about how the mapping will be read to the OS
    /// (`madvise` on Unix; elsewhere it is not given).
    pub fn advise(mut self, advice: Advice) -> Self {
        self.advice = Some(advice);
        self
    }

    /// Read the file into memory instead of mapping it: for storage that
    /// may change while the file is in use, when memory for the whole file
    /// is there.
    pub fn in_memory(mut self, yes: bool) -> Self {
        self.in_memory = yes;
        self
    }

    /// Open this file alone, even where its split keys say it is the first
    /// part of a split model; a later part then opens too (its split keys
    /// are ordinary metadata). By default [`Gguf::open_with`] opens every
    /// part of a split model and refuses a part other than the first.
    pub fn single_file(mut self, yes: bool) -> Self {
        self.single_file = yes;
        self
    }

    /// Stream the file instead of mapping it: read its header into memory
    /// and each tensor's bytes when used, in bounded chunks (as
    /// [`Gguf::from_reader`] does with the file). For storage where a
    /// mapping is unsafe and the file is too large to read into memory.
    /// Typed views that would borrow ([`TensorView::as_slice`]) are then
    /// [`Error::NotInMemory`]; everything that copies or dequantizes works.
    pub fn streamed(mut self, yes: bool) -> Self {
        self.streamed = yes;
        self
    }
}

impl Gguf<'static> {
    /// Opens the model at `path`: maps the file read-only and parses its
    /// header; for the first part of a split model, every part.
    ///
    /// See the mapping contract on [`Gguf`].
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened or mapped, any parse
    /// error of [`format::parse`], and for a split model the errors of
    /// [`Gguf::open_split`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, &OpenOptions::default())
    }

    /// [`Gguf::open`] with options, applied to every part.
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
        let first = open_part(path, options)?;
        if options.single_file {
            return Self::single(first);
        }
        let keys = SplitKeys::of_first(&first.metadata(), path)?;
        let others = keys.later_paths(path)?;
        Self::assemble(first, &keys, others, options)
    }

    /// Opens a split model from the paths of all its parts, in order: what
    /// [`Gguf::open`] does for parts named as `gguf-split` names them, for
    /// parts named otherwise.
    ///
    /// ```
    /// use ggufmap::{Gguf, OpenOptions};
    /// # let model = Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
    /// # let dir = tempfile::tempdir()?;
    /// let written = model.write_split(dir.path().join("m"), 6)?;
    /// // Renamed as another tool might name them.
    /// let mut paths = Vec::new();
    /// for (i, path) in written.iter().enumerate() {
    ///     let renamed = dir.path().join(format!("part{i}.bin"));
    ///     std::fs::rename(path, &renamed)?;
    ///     paths.push(renamed);
    /// }
    /// let split = Gguf::open_split(&paths, &OpenOptions::new())?;
    /// assert_eq!(split.tensor_count(), model.tensor_count());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Gguf::open`] for the first part; [`Error::SplitNoParts`] for no
    /// paths; [`Error::SplitPartMissing`] for a part that does not exist;
    /// [`Error::SplitPart`] for any other error opening a later part;
    /// [`Error::SplitKeyMissing`], [`Error::SplitKeyType`],
    /// [`Error::SplitKeyValue`] for split keys that are absent, of the
    /// wrong type or out of range; [`Error::SplitMismatch`] for a part
    /// whose split keys say it belongs elsewhere or to another model, or
    /// for a number of paths other than the parts' `split.count`;
    /// [`Error::SplitDuplicateTensor`] for a tensor in two parts;
    /// [`Error::SplitTensorCount`] when the parts hold another number of
    /// tensors than `split.tensors.count` says.
    pub fn open_split<P: AsRef<Path>>(
        paths: impl IntoIterator<Item = P>,
        options: &OpenOptions,
    ) -> Result<Self> {
        let mut paths = paths.into_iter().map(|p| p.as_ref().to_owned());
        let first_path = paths.next().ok_or(Error::SplitNoParts)?;
        let first = open_part(&first_path, options)?;
        let keys = SplitKeys::of_first(&first.metadata(), &first_path)?;
        let others: Vec<PathBuf> = paths.collect();
        keys.check_path_count(&first_path, others.len() + 1)?;
        Self::assemble(first, &keys, others, options)
    }

    /// The first part and the paths of the others, opened and checked
    /// against the first part's split keys.
    fn assemble(
        first: Part<'static>,
        keys: &SplitKeys,
        others: Vec<PathBuf>,
        options: &OpenOptions,
    ) -> Result<Self> {
        let first_path = first.path.clone().unwrap_or_default();
        let mut parts = Vec::with_capacity(others.len() + 1);
        parts.push(first);
        for (no, path) in (1u16..).zip(others) {
            let part = open_part(&path, options).map_err(|e| keys.part_error(&path, no, e))?;
            keys.check_part(&path, no, &part.metadata())?;
            parts.push(part);
        }
        let by_name = if parts.len() > 1 {
            split::index_by_name(&parts)?
        } else {
            Vec::new()
        };
        let gguf = Gguf { parts, by_name };
        keys.check_tensor_count(&first_path, gguf.tensor_count())?;
        Ok(gguf)
    }

    /// Reads a whole GGUF file from `reader` into memory (64-byte aligned)
    /// and parses it: for callers that cannot map files.
    ///
    /// Memory grows with the stream; where the stream is not trusted to end,
    /// use [`Gguf::read_limited`]; to keep tensor data out of memory, use
    /// [`Gguf::from_reader`].
    ///
    /// # Errors
    /// [`Error::Io`] if reading fails or memory for the bytes cannot be
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
        let bytes = AlignedBytes::read_from(reader, max_bytes).map_err(stream_error)?;
        Self::single(Part::parse(Storage::owned(bytes))?)
    }

    /// Opens a GGUF file from a `Read + Seek` source without reading it
    /// whole: reads its header (metadata and tensor infos) into memory,
    /// then each tensor's bytes when used, in bounded chunks into pooled
    /// buffers. For storage where a mapping is unsafe (network file
    /// systems, files other programs rewrite) or impossible (a socket
    /// behind a buffer, an archive member).
    ///
    /// Memory is the header plus the chunks in flight. Typed views that
    /// would borrow ([`TensorView::as_slice`], [`TensorView::blocks`]) are
    /// [`Error::NotInMemory`]; [`TensorView::read_bytes`],
    /// [`TensorView::read_slice`], dequantization and candle loading work as
    /// on a mapping. Reads from several threads take turns on the reader.
    ///
    /// ```
    /// use ggufmap::{DequantOptions, Gguf};
    /// # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf");
    /// // Any `Read + Seek`: here a cursor over bytes from elsewhere.
    /// let bytes = std::fs::read(path)?;
    /// let model = Gguf::from_reader(std::io::Cursor::new(bytes))?;
    /// let values = model
    ///     .tensor("token_embd.weight")?
    ///     .dequantize_to_vec::<f32>(&DequantOptions::default())?;
    /// assert_eq!(values.len(), 384 * 256);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if seeking or reading the header fails; any parse
    /// error of [`format::parse`] (the header is read in growing prefixes,
    /// at most [`MAX_STREAMED_HEADER_BYTES`]). A read that fails later is
    /// [`Error::TensorRead`], naming the tensor and the byte offset.
    pub fn from_reader(reader: impl Read + Seek + Send + 'static) -> Result<Self> {
        Self::single(streamed(Box::new(reader))?)
    }

    fn single(part: Part<'static>) -> Result<Self> {
        Ok(Gguf {
            parts: vec![part],
            by_name: Vec::new(),
        })
    }
}

/// Opens one file as `options` say, refusing anything but a regular file.
fn open_part(path: &Path, options: &OpenOptions) -> Result<Part<'static>> {
    let io = |source| Error::Io {
        path: Some(path.to_owned()),
        source,
    };
    // `stat` first: it never blocks, where opening a FIFO would.
    check_regular(path, &std::fs::metadata(path).map_err(io)?)?;
    let file = open_no_block(path).map_err(io)?;
    // Again on the handle: the path may have been swapped in between.
    check_regular(path, &file.metadata().map_err(io)?)?;
    if options.streamed {
        let mut part = streamed_file(file).map_err(|e| at_path(e, path))?;
        part.path = Some(path.to_owned());
        return Ok(part);
    }
    let storage = if options.in_memory {
        // Read to its end, however long it has grown since.
        let bytes =
            AlignedBytes::read_from(&file, u64::MAX).map_err(|e| at_path(stream_error(e), path))?;
        Storage::owned(bytes)
    } else {
        let map = map_read_only(&file, options.populate).map_err(|e| map_error(path, e))?;
        if let Some(advice) = options.advice {
            advice.apply(&map).map_err(io)?;
        }
        Storage::Shared(SharedBytes::Mapped {
            map: Arc::new(map),
            file: Arc::new(file),
        })
    };
    let mut part = Part::parse(storage)?;
    part.path = Some(path.to_owned());
    Ok(part)
}

/// A stream error while reading a file, as the file's error.
fn at_path(e: Error, path: &Path) -> Error {
    match e {
        Error::Io { path: None, source } => Error::Io {
            path: Some(path.to_owned()),
            source,
        },
        other => other,
    }
}

fn stream_error(e: ReadError) -> Error {
    match e {
        ReadError::Io(e) => Error::stream(e),
        ReadError::TooLong(limit) => Error::StreamTooLong { limit },
    }
}

/// A file streamed: read by position where the platform allows, so that
/// threads read at once.
fn streamed_file(file: std::fs::File) -> Result<Part<'static>> {
    #[cfg(unix)]
    {
        let (header, len, index) = read_header(&mut &file)?;
        Ok(Part {
            storage: Storage::Streamed(Stream::of_file(header, len, file)),
            index,
            path: None,
        })
    }
    #[cfg(not(unix))]
    streamed(Box::new(file))
}

/// A stream's part: its header read into memory, its tensor data read
/// from `reader` when used.
fn streamed(mut reader: Box<dyn ReadSeek>) -> Result<Part<'static>> {
    let (header, len, index) = read_header(&mut reader)?;
    Ok(Part {
        storage: Storage::Streamed(Stream::new(header, len, reader)),
        index,
        path: None,
    })
}

/// A stream's length, and its header read in doubling prefixes until it
/// parses (or fails for a reason more bytes cannot mend, or the prefix is
/// the whole stream or the limit), with its index.
fn read_header(mut reader: impl Read + Seek) -> Result<(AlignedBytes, u64, Index)> {
    let len = reader.seek(SeekFrom::End(0)).map_err(Error::stream)?;
    reader.seek(SeekFrom::Start(0)).map_err(Error::stream)?;
    let most = len.min(MAX_STREAMED_HEADER_BYTES);
    let mut header = AlignedBytes::empty();
    let mut want = FIRST_HEADER_READ.min(most);
    loop {
        let held = header.len() as u64;
        let added = header
            .read_more(&mut reader, most, want)
            .map_err(stream_error)?;
        // The stream ended before `want`: more bytes will not come.
        let ended = held + (added as u64) < want;
        match format::parse_header(header.as_slice(), len) {
            Ok(index) => return Ok((header, len, index)),
            Err(e) if ended || want >= most || !more_bytes_may_help(&e) => return Err(e),
            Err(_) => want = want.saturating_mul(2).min(most),
        }
    }
}

/// True for the errors a header cut short gives.
fn more_bytes_may_help(e: &Error) -> bool {
    matches!(e, Error::UnexpectedEof { .. } | Error::CountTooLarge { .. })
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
        Ok(Gguf {
            parts: vec![Part::parse(Storage::Borrowed(bytes))?],
            by_name: Vec::new(),
        })
    }

    fn first(&self) -> &Part<'data> {
        // A `Gguf` is made with at least one part.
        &self.parts[0]
    }

    /// Number of files the model is stored in (1 unless split).
    pub fn part_count(&self) -> usize {
        self.parts.len()
    }

    /// The path each part was opened from, in order (`None` for bytes and
    /// streams).
    pub fn part_paths(&self) -> impl ExactSizeIterator<Item = Option<&Path>> + '_ {
        self.parts.iter().map(|p| p.path.as_deref())
    }

    /// The path the model (its first part) was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.first().path.as_deref()
    }

    /// True when every part is memory-mapped (rather than read into
    /// memory, borrowed or streamed).
    pub fn is_mapped(&self) -> bool {
        self.parts.iter().all(|p| p.storage.is_mapped())
    }

    /// True when tensor data is read from a stream on demand
    /// ([`Gguf::from_reader`], [`OpenOptions::streamed`]).
    pub fn is_streamed(&self) -> bool {
        self.parts.iter().any(|p| p.storage.is_streamed())
    }

    /// The whole file's bytes, for a model of one part held in memory
    /// (mapped, read or borrowed); `None` for a split model or a stream.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [part] if !part.storage.is_streamed() => Some(part.storage.header()),
            _ => None,
        }
    }

    /// Size in bytes of the files, all parts together.
    pub fn file_size(&self) -> u64 {
        self.part_sizes().sum()
    }

    /// Size in bytes of each part's file, in order.
    pub fn part_sizes(&self) -> impl ExactSizeIterator<Item = u64> + '_ {
        self.parts.iter().map(|p| p.storage.len())
    }

    /// True where the engine reads tensor bytes of some part rather than
    /// borrowing them (see `Storage::reads_tensors`).
    #[cfg_attr(not(feature = "candle"), allow(dead_code))]
    pub(crate) fn reads_tensors(&self, read_mapped: bool) -> bool {
        self.parts
            .iter()
            .any(|p| p.storage.reads_tensors(read_mapped))
    }

    /// Each part's storage with its length, in order.
    pub(crate) fn part_storages(&self) -> impl Iterator<Item = (&Storage<'data>, u64)> + '_ {
        self.parts.iter().map(|p| (&p.storage, p.storage.len()))
    }

    /// GGUF version of the first part: 2 or 3.
    pub fn version(&self) -> u32 {
        self.first().index.version()
    }

    /// Byte order of the first part's numbers (each tensor knows its own:
    /// [`TensorView::byte_order`]).
    pub fn byte_order(&self) -> ByteOrder {
        self.first().index.byte_order()
    }

    /// Alignment of the first part's tensor data (`general.alignment`,
    /// default 32).
    pub fn alignment(&self) -> u32 {
        self.first().index.alignment()
    }

    /// Where the first part's tensor data section starts, in bytes from
    /// the start of its file (each tensor's [`TensorInfo::data_offset`]
    /// counts from here).
    ///
    /// [`TensorInfo::data_offset`]: crate::format::TensorInfo::data_offset
    pub fn data_start(&self) -> usize {
        self.first().index.data_start()
    }

    /// The model's metadata: the first part's (split keys included).
    pub fn metadata(&self) -> Metadata<'_> {
        self.first().metadata()
    }

    /// Number of tensors, in all parts.
    pub fn tensor_count(&self) -> usize {
        self.parts.iter().map(|p| p.index.tensors().len()).sum()
    }

    /// Every tensor: the parts in order, each part's in file order.
    pub fn tensors(&self) -> Tensors<'_> {
        Tensors {
            parts: &self.parts,
            part: 0,
            next: 0,
            remaining: self.tensor_count(),
        }
    }

    /// The tensor named `name`, from whichever part holds it.
    ///
    /// # Errors
    /// [`Error::TensorNotFound`].
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>> {
        self.find(name).ok_or_else(|| Error::TensorNotFound {
            name: name.to_owned(),
        })
    }

    fn find(&self, name: &str) -> Option<TensorView<'_>> {
        if let [part] = self.parts.as_slice() {
            let i = part.index.find_tensor(part.storage.header(), name)?;
            return part.view(0, i);
        }
        let pos = self
            .by_name
            .binary_search_by(|&(p, i)| self.name_at(p, i).cmp(name))
            .ok()?;
        let &(p, i) = self.by_name.get(pos)?;
        self.parts.get(p as usize)?.view(p as usize, i as usize)
    }

    fn name_at(&self, part: u32, i: u32) -> &str {
        self.parts
            .get(part as usize)
            .map_or("", |p| p.tensor_name(i as usize))
    }

    /// Total bytes of tensor data, all parts together.
    pub fn tensor_bytes(&self) -> u64 {
        self.tensors().map(|t| t.info().n_bytes()).sum()
    }

    /// Every tensor with its values dequantized ([`TensorView::dequantize`]),
    /// one tensor at a time, into buffers from the options' pool: dropping
    /// each buffer before taking the next keeps memory to the largest
    /// tensor.
    pub fn dequantize_all<'g, O: Output>(
        &'g self,
        options: &'g DequantOptions,
    ) -> impl Iterator<Item = (TensorView<'g>, Result<PooledBuf<O>>)> + 'g {
        self.tensors().map(move |t| (t, t.dequantize(options)))
    }
}

/// Iterator of [`Gguf::tensors`]: every tensor, the parts in order.
#[derive(Clone, Debug)]
pub struct Tensors<'a> {
    parts: &'a [Part<'a>],
    part: usize,
    /// Position in the current part.
    next: usize,
    remaining: usize,
}

impl<'a> Iterator for Tensors<'a> {
    type Item = TensorView<'a>;

    fn next(&mut self) -> Option<TensorView<'a>> {
        loop {
            let part = self.parts.get(self.part)?;
            if let Some(info) = part.index.tensors().get(self.next) {
                self.next += 1;
                self.remaining = self.remaining.saturating_sub(1);
                return Some(part.view_of(self.part, info));
            }
            self.part += 1;
            self.next = 0;
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Tensors<'_> {}

impl std::iter::FusedIterator for Tensors<'_> {}
