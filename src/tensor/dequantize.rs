//! Dequantizing a tensor, one family of methods sharing one
//! [`DequantOptions`]: whole into a pooled buffer, caller memory or a new
//! `Vec`, streamed in chunks of whole blocks ([`DequantChunks`]), or chunk
//! by chunk in parallel into a callback. Every path reads through
//! [`TensorSource`], so each works on mapped, in-memory and streamed
//! models alike.

use std::marker::PhantomData;

use crate::error::{Error, Result};
use crate::parallel::Parallelism;
use crate::pool::{BufferPool, PooledBuf};
use crate::quant::Output;
use crate::tensor::{TensorSource, TensorView};

/// How to dequantize: where output buffers come from and on which threads
/// the work runs. One value serves every method of the
/// [`TensorView::dequantize`] family; `DequantOptions::default()` takes the
/// process-wide pool and rayon's global thread pool.
///
/// ```
/// use ggufmap::{DequantOptions, Parallelism};
/// use ggufmap::pool::{BufferPool, PoolConfig};
///
/// let quiet = DequantOptions::new().parallelism(Parallelism::Sequential);
/// let own = DequantOptions::new().pool(BufferPool::new(PoolConfig::default()));
/// # let _ = (quiet, own);
/// ```
#[derive(Clone, Debug, Default)]
pub struct DequantOptions {
    pool: Option<BufferPool>,
    parallelism: Parallelism,
}

impl DequantOptions {
    /// The defaults: the process-wide pool, rayon's global thread pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Take output buffers from `pool` instead of [`BufferPool::global`].
    pub fn pool(mut self, pool: BufferPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Run on the threads of `parallelism` (`Parallelism::Sequential` for
    /// the calling thread alone).
    pub fn parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// The pool buffers come from.
    pub(crate) fn buffer_pool(&self) -> &BufferPool {
        self.pool.as_ref().unwrap_or_else(|| BufferPool::global())
    }

    /// Where the work runs.
    pub(crate) fn threads(&self) -> &Parallelism {
        &self.parallelism
    }
}

impl<'a> TensorView<'a> {
    /// Dequantizes (or converts) the whole tensor into a buffer from the
    /// options' pool, in parallel; the buffer goes back to the pool when
    /// dropped. `O` is `f32`, `half::f16` or `half::bf16`.
    ///
    /// ```
    /// # use ggufmap::{DequantOptions, GgmlType, Gguf, GgufWriter};
    /// # let mut writer = GgufWriter::new();
    /// # writer.add_tensor("w", GgmlType::F16, &[4], bytemuck::cast_slice(&[half::f16::ONE; 4]))?;
    /// # let bytes = writer.to_bytes()?;
    /// let model = Gguf::from_bytes(&bytes)?;
    /// let values = model.tensor("w")?.dequantize::<f32>(&DequantOptions::default())?;
    /// assert_eq!(&values[..], &[1.0; 4]);
    /// # Ok::<(), ggufmap::Error>(())
    /// ```
    ///
    /// # Performance
    /// A recycled buffer's pages are already resident, so decoding tensor
    /// after tensor runs at the kernels' speed instead of at the speed the
    /// kernel can fault in fresh pages.
    ///
    /// # Errors
    /// As [`TensorView::dequantize_into`], or [`Error::Pool`] naming the
    /// tensor.
    pub fn dequantize<O: Output>(&self, options: &DequantOptions) -> Result<PooledBuf<O>> {
        let mut buf = options
            .buffer_pool()
            .get::<O>(self.elements_in_memory()?)
            .map_err(|e| Error::from(e).in_tensor(self.name()))?;
        self.dequantize_into(&mut buf, options)?;
        Ok(buf)
    }

    /// Dequantizes (or converts) the whole tensor into `out`, which must
    /// hold exactly [`TensorView::n_elements`] values, on the options'
    /// threads (the pool is not used).
    ///
    /// The vector kernels store 32 bytes at a time: an `out` on a 32-byte
    /// boundary (as the pool's buffers are) is written fastest; a `Vec`'s
    /// 16-byte alignment costs about 8% where the output streams to memory.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] for a wrong `out` length;
    /// [`Error::Unsupported`] for quantized data in the other byte order;
    /// [`Error::TensorRead`] if reading a stream fails. Each names the
    /// tensor.
    pub fn dequantize_into<O: Output>(
        &self,
        out: &mut [O],
        options: &DequantOptions,
    ) -> Result<()> {
        TensorSource::new(*self, false).dequantize_into(out, options.threads())
    }

    /// Dequantizes (or converts) the whole tensor into a new `Vec`.
    ///
    /// # Performance
    /// A fresh allocation's pages are faulted in as they are written, which
    /// can cost more than the dequantization itself; to decode many tensors,
    /// prefer [`TensorView::dequantize`] (pooled buffers).
    ///
    /// # Errors
    /// As [`TensorView::dequantize_into`].
    pub fn dequantize_to_vec<O: Output>(&self, options: &DequantOptions) -> Result<Vec<O>> {
        let mut out = vec![O::default(); self.elements_in_memory()?];
        self.dequantize_into(&mut out, options)?;
        Ok(out)
    }

    /// Decodes the tensor in work items of whole blocks on the options'
    /// threads, handing each item's values to `f`, with the index of their
    /// first element (file order), while they are still in cache; items
    /// arrive in no set order. Memory stays at one small item per thread
    /// whatever the tensor's size: what a pass over every value (a
    /// checksum, a NaN count) wants.
    ///
    /// # Errors
    /// The first error of a decode (as [`TensorView::dequantize_into`]) or
    /// of `f`.
    pub fn dequantize_each_chunk<O: Output>(
        &self,
        options: &DequantOptions,
        f: impl Fn(usize, &[O]) -> Result<()> + Sync + Send,
    ) -> Result<()> {
        TensorSource::new(*self, false).for_each_chunk(options.threads(), f)
    }

    /// Streams the tensor as chunks of whole blocks, each at most
    /// `max_bytes` of `O` (or one block, if a block is larger), decoded on
    /// the options' threads into buffers from its pool: memory stays
    /// bounded by the chunks the caller holds at once.
    pub fn dequantize_chunks<O: Output>(
        &self,
        max_bytes: usize,
        options: &DequantOptions,
    ) -> DequantChunks<'a, O> {
        let block_elems = self.dtype().elements_per_block();
        let blocks = (max_bytes / std::mem::size_of::<O>() / block_elems).max(1);
        DequantChunks {
            source: TensorSource::new(*self, false),
            block_elems,
            next_block: 0,
            blocks_per_chunk: blocks,
            options: options.clone(),
            _out: PhantomData,
        }
    }
}

/// Iterator of [`TensorView::dequantize_chunks`].
#[derive(Debug)]
pub struct DequantChunks<'a, O> {
    source: TensorSource<'a>,
    block_elems: usize,
    next_block: usize,
    blocks_per_chunk: usize,
    options: DequantOptions,
    _out: PhantomData<fn() -> O>,
}

/// One chunk of a streamed tensor: its values and where they start.
#[derive(Debug)]
pub struct DequantChunk<O: Output> {
    /// Index of the first element of the chunk in the tensor (file order).
    pub first_element: usize,
    /// The values.
    pub data: PooledBuf<O>,
}

impl<O: Output> DequantChunks<'_, O> {
    fn decode(&self, first_block: usize, blocks: usize) -> Result<DequantChunk<O>> {
        let mut data = self
            .options
            .buffer_pool()
            .get::<O>(blocks * self.block_elems)
            .map_err(|e| Error::from(e).in_tensor(self.source.view().name()))?;
        self.source
            .decode_blocks(first_block, blocks, &mut data, self.options.threads())?;
        Ok(DequantChunk {
            first_element: first_block * self.block_elems,
            data,
        })
    }
}

impl<O: Output> Iterator for DequantChunks<'_, O> {
    type Item = Result<DequantChunk<O>>;

    fn next(&mut self) -> Option<Self::Item> {
        let total = self.source.total_blocks();
        let blocks = total
            .checked_sub(self.next_block)?
            .min(self.blocks_per_chunk);
        if blocks == 0 {
            return None;
        }
        let chunk = self.decode(self.next_block, blocks);
        self.next_block += blocks;
        if chunk.is_err() {
            // One error ends the stream.
            self.next_block = total;
        }
        Some(chunk)
    }
}
