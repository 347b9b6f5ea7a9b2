//! The one way tensor bytes reach the engine: [`TensorSource`] borrows them
//! from the part's storage where they are in memory, or reads each work
//! item's byte range into a pooled buffer (a stream, or a mapped file read
//! by position so that its pages do not become resident). Every decoder
//! above it (whole tensors, chunks, candle's dense and copied loading, the
//! command line's `verify` and `bench`) drives it through
//! [`crate::parallel`].

use std::ops::{Deref, DerefMut, Range};

use crate::dequant::dequantize_parallel;
use crate::error::{Error, Result};
use crate::parallel::{blocks_per_chunk, Parallelism, COPY_CHUNK_BYTES};
use crate::pool::{BufferPool, PooledBuf};
use crate::quant::{self, Output};
use crate::tensor::TensorView;

/// A tensor's bytes, as the engine reads them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TensorSource<'a> {
    view: TensorView<'a>,
    /// The bytes, where they are borrowed rather than read.
    borrowed: Option<&'a [u8]>,
}

/// Bytes a [`TensorSource`] handed out: borrowed, or read into a buffer.
pub(crate) enum SourceBytes<'a> {
    Borrowed(&'a [u8]),
    Read(Staging<u8>),
}

impl Deref for SourceBytes<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            SourceBytes::Borrowed(bytes) => bytes,
            SourceBytes::Read(buf) => buf,
        }
    }
}

impl<'a> TensorSource<'a> {
    /// Borrows the bytes where they are in memory, except that with
    /// `read_mapped` a mapped file is read by position (on Unix): what a
    /// one-pass load wants, so that its pages never become resident.
    pub(crate) fn new(view: TensorView<'a>, read_mapped: bool) -> Self {
        let read = view.storage().reads_tensors(read_mapped);
        let borrowed = if read { None } else { view.bytes().ok() };
        TensorSource { view, borrowed }
    }

    /// The tensor.
    pub(crate) fn view(&self) -> TensorView<'a> {
        self.view
    }

    /// True when bytes are read rather than borrowed.
    pub(crate) fn reads(&self) -> bool {
        self.borrowed.is_none()
    }

    /// The tensor's bytes, where they are borrowed.
    #[cfg_attr(not(feature = "candle"), allow(dead_code))]
    pub(crate) fn borrowed(&self) -> Option<&'a [u8]> {
        self.borrowed
    }

    /// Bytes `range` of the tensor's data (inside it): borrowed, or read
    /// into a buffer from the pool.
    fn get(&self, range: Range<usize>) -> Result<SourceBytes<'a>> {
        if let Some(bytes) = self.borrowed {
            let len = range.len();
            return bytes
                .get(range)
                .map(SourceBytes::Borrowed)
                .ok_or(Error::LengthMismatch {
                    tensor: None,
                    what: "tensor data",
                    expected: len,
                    found: 0,
                });
        }
        let mut buf = Staging::new(range.len());
        self.view.read_at(range.start as u64, &mut buf)?;
        Ok(SourceBytes::Read(buf))
    }

    /// Whole blocks in the tensor.
    pub(crate) fn total_blocks(&self) -> usize {
        let n_bytes = usize::try_from(self.view.info().n_bytes()).unwrap_or(usize::MAX);
        n_bytes / self.view.dtype().bytes_per_block()
    }

    fn check_output(&self, out_len: usize) -> Result<()> {
        let expected = self.view.elements_in_memory()?;
        if out_len != expected {
            return Err(Error::LengthMismatch {
                tensor: Some(self.view.name().to_owned()),
                what: "dequantization output",
                expected,
                found: out_len,
            });
        }
        Ok(())
    }

    /// Dequantizes the whole tensor into `out` on the threads of
    /// `parallelism`.
    pub(crate) fn dequantize_into<O: Output>(
        &self,
        out: &mut [O],
        parallelism: &Parallelism,
    ) -> Result<()> {
        self.decode_all(out, parallelism)
            .map_err(|e| e.in_tensor(self.view.name()))
    }

    fn decode_all<O: Output>(&self, out: &mut [O], parallelism: &Parallelism) -> Result<()> {
        let view = &self.view;
        let (dtype, order) = (view.dtype(), view.byte_order());
        if let Some(bytes) = self.borrowed {
            return dequantize_parallel(dtype, bytes, order, out, parallelism);
        }
        self.check_output(out.len())?;
        let blocks = blocks_per_chunk(dtype, std::mem::size_of::<O>(), true);
        let (block_bytes, block_elems) = (dtype.bytes_per_block(), dtype.elements_per_block());
        parallelism.try_for_each_chunk(out, blocks * block_elems, |i, out| {
            let start = i * blocks * block_bytes;
            let bytes = self.get(start..start + out.len() / block_elems * block_bytes)?;
            quant::dequantize_bytes(dtype, &bytes, order, out)
        })
    }

    /// Decodes blocks `first..first + count` into `out` (exactly their
    /// elements), on the threads of `parallelism`; their bytes are read
    /// first, in one piece, where they are not borrowed.
    pub(crate) fn decode_blocks<O: Output>(
        &self,
        first: usize,
        count: usize,
        out: &mut [O],
        parallelism: &Parallelism,
    ) -> Result<()> {
        let dtype = self.view.dtype();
        let block_bytes = dtype.bytes_per_block();
        let bytes = self.get(first * block_bytes..(first + count) * block_bytes)?;
        dequantize_parallel(dtype, &bytes, self.view.byte_order(), out, parallelism)
            .map_err(|e| e.in_tensor(self.view.name()))
    }

    /// Decodes the tensor in work items of whole blocks on the threads of
    /// `parallelism`, handing each item's values to `f` with the index of
    /// their first element, while they are still in cache. Memory: one
    /// item's input and output per thread.
    pub(crate) fn for_each_chunk<O: Output>(
        &self,
        parallelism: &Parallelism,
        f: impl Fn(usize, &[O]) -> Result<()> + Sync + Send,
    ) -> Result<()> {
        let dtype = self.view.dtype();
        let per_item = blocks_per_chunk(dtype, std::mem::size_of::<O>(), self.reads());
        let total = self.total_blocks();
        let block_elems = dtype.elements_per_block();
        parallelism.try_for_each_index(total.div_ceil(per_item), |item| {
            let first = item * per_item;
            let count = per_item.min(total - first);
            let mut values = Staging::new(count * block_elems);
            // `decode_blocks` names the tensor in its errors; `f`'s are the
            // caller's own.
            self.decode_blocks(first, count, &mut values, &Parallelism::Sequential)?;
            f(first * block_elems, &values)
        })
    }

    /// Copies the raw bytes into `out` (exactly their length), reading in
    /// parallel work items where they are read.
    #[cfg_attr(not(feature = "candle"), allow(dead_code))]
    pub(crate) fn copy_into(&self, out: &mut [u8], parallelism: &Parallelism) -> Result<()> {
        let expected = self.view.n_bytes()?;
        if out.len() != expected {
            return Err(Error::LengthMismatch {
                tensor: Some(self.view.name().to_owned()),
                what: "tensor data",
                expected,
                found: out.len(),
            });
        }
        match self.borrowed {
            Some(bytes) => {
                out.copy_from_slice(bytes);
                Ok(())
            }
            None => parallelism.try_for_each_chunk(out, COPY_CHUNK_BYTES, |i, out| {
                self.view.read_at((i * COPY_CHUNK_BYTES) as u64, out)
            }),
        }
    }
}

impl TensorSource<'_> {
    /// Writes the raw bytes to `out`, reading them in chunks of
    /// [`COPY_CHUNK_BYTES`] where they are read.
    pub(crate) fn write_to(&self, out: &mut dyn std::io::Write) -> Result<()> {
        if let Some(bytes) = self.borrowed {
            return out.write_all(bytes).map_err(Error::stream);
        }
        let len = self.view.info().n_bytes();
        let mut buf =
            Staging::<u8>::new(COPY_CHUNK_BYTES.min(usize::try_from(len).unwrap_or(usize::MAX)));
        let mut offset = 0u64;
        while offset < len {
            let n = usize::try_from(len - offset).map_or(buf.len(), |left| left.min(buf.len()));
            let chunk = &mut buf[..n];
            self.view.read_at(offset, chunk)?;
            out.write_all(chunk).map_err(Error::stream)?;
            offset += n as u64;
        }
        Ok(())
    }
}

/// A buffer of `len` elements from [`BufferPool::global`]; a plain `Vec`
/// where the pool cannot serve the request (it is an optimisation, never a
/// reason to fail).
#[derive(Debug)]
pub(crate) enum Staging<T: bytemuck::Pod> {
    Pooled(PooledBuf<T>),
    Owned(Vec<T>),
}

impl<T: bytemuck::Pod> Staging<T> {
    pub(crate) fn new(len: usize) -> Self {
        Self::from_pool(BufferPool::global(), len)
    }

    /// A buffer from `pool`, or a `Vec` where it cannot serve the request.
    #[cfg_attr(not(feature = "candle"), allow(dead_code))]
    pub(crate) fn from_pool(pool: &BufferPool, len: usize) -> Self {
        match pool.get::<T>(len) {
            Ok(buf) => Staging::Pooled(buf),
            Err(_) => Staging::Owned(vec![T::zeroed(); len]),
        }
    }
}

impl<T: bytemuck::Pod> Deref for Staging<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        match self {
            Staging::Pooled(buf) => buf,
            Staging::Owned(buf) => buf,
        }
    }
}

impl<T: bytemuck::Pod> DerefMut for Staging<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            Staging::Pooled(buf) => buf,
            Staging::Owned(buf) => buf,
        }
    }
}
