//! Dequantizing a tensor: whole into caller memory or a pooled buffer,
//! streamed in chunks of whole blocks ([`DequantChunks`]), or chunk by
//! chunk in parallel into a callback; every path reads through
//! [`TensorSource`], so each works on mapped, in-memory and streamed
//! models alike.

use std::marker::PhantomData;

use crate::error::{Error, Result};
use crate::parallel::Parallelism;
use crate::pool::{BufferPool, PooledBuf};
use crate::quant::Output;
use crate::tensor::{TensorSource, TensorView};

impl<'a> TensorView<'a> {
    /// Dequantizes (or converts) the whole tensor into `out`, in parallel on
    /// rayon's global pool (with the `parallel` feature). `out` must hold
    /// exactly [`TensorView::n_elements`] values.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`](crate::Error::LengthMismatch) for a wrong
    /// `out` length; [`Error::Unsupported`](crate::Error::Unsupported) for
    /// quantized data in the other byte order;
    /// [`Error::TensorRead`](crate::Error::TensorRead) if reading a stream
    /// fails.
    pub fn dequantize_into<O: Output>(&self, out: &mut [O]) -> Result<()> {
        self.dequantize_into_with(out, &Parallelism::default())
    }

    /// [`TensorView::dequantize_into`] on the threads of `parallelism`
    /// (`Parallelism::Sequential` for the calling thread alone).
    ///
    /// # Errors
    /// As [`TensorView::dequantize_into`].
    pub fn dequantize_into_with<O: Output>(
        &self,
        out: &mut [O],
        parallelism: &Parallelism,
    ) -> Result<()> {
        TensorSource::new(*self, false).dequantize_into(out, parallelism)
    }

    /// Dequantizes (or converts) the whole tensor into a new `Vec`.
    ///
    /// # Performance
    /// A fresh allocation's pages are faulted in as they are written, which
    /// can cost more than the dequantization itself; to decode many tensors,
    /// prefer pooled buffers or [`TensorView::dequantize_into`].
    ///
    /// # Errors
    /// As [`TensorView::dequantize_into`].
    pub fn to_vec<O: Output>(&self) -> Result<Vec<O>> {
        let mut out = vec![O::default(); self.len()?];
        self.dequantize_into(&mut out)?;
        Ok(out)
    }

    /// Dequantizes (or converts) the whole tensor to f32 into a buffer from
    /// the process-wide pool, in parallel; the buffer goes back to the pool
    /// when dropped.
    ///
    /// # Performance
    /// A recycled buffer's pages are already resident, so decoding tensor
    /// after tensor runs at the kernels' speed instead of at the speed the
    /// kernel can fault in fresh pages.
    ///
    /// # Errors
    /// As [`TensorView::dequantize_into`], or [`Error::Pool`](crate::Error::Pool).
    pub fn dequantize(&self) -> Result<PooledBuf<f32>> {
        self.dequantize_with(BufferPool::global(), &Parallelism::default())
    }

    /// [`TensorView::dequantize`] into any output type, from `pool`, on the
    /// threads of `parallelism`.
    ///
    /// # Errors
    /// As [`TensorView::dequantize`].
    pub fn dequantize_with<O: Output>(
        &self,
        pool: &BufferPool,
        parallelism: &Parallelism,
    ) -> Result<PooledBuf<O>> {
        let mut buf = pool
            .get::<O>(self.len()?)
            .map_err(|e| Error::from(e).in_tensor(self.name()))?;
        self.dequantize_into_with(&mut buf, parallelism)?;
        Ok(buf)
    }

    /// Decodes the tensor in work items of whole blocks on the threads of
    /// `parallelism`, handing each item's values to `f`, with the index of
    /// their first element (file order), while they are still in cache;
    /// items arrive in no set order. Memory stays at one small item per
    /// thread whatever the tensor's size: what a pass over every value
    /// (a checksum, a NaN count) wants.
    ///
    /// # Errors
    /// The first error of a decode or of `f`; as
    /// [`TensorView::dequantize_into`] otherwise.
    pub fn dequantize_each_chunk<O: Output>(
        &self,
        parallelism: &Parallelism,
        f: impl Fn(usize, &[O]) -> Result<()> + Sync + Send,
    ) -> Result<()> {
        TensorSource::new(*self, false).for_each_chunk(parallelism, f)
    }

    /// Streams the tensor as chunks of whole blocks, each at most
    /// `max_bytes` of `O` (or one block, if a block is larger), decoded in
    /// parallel into pooled buffers: memory stays bounded by the chunks the
    /// caller holds at once.
    pub fn dequantize_chunks<O: Output>(&self, max_bytes: usize) -> DequantChunks<'a, O> {
        let block_elems = self.dtype().elements_per_block();
        let blocks = (max_bytes / std::mem::size_of::<O>() / block_elems).max(1);
        DequantChunks {
            source: TensorSource::new(*self, false),
            block_elems,
            next_block: 0,
            blocks_per_chunk: blocks,
            pool: BufferPool::global(),
            parallelism: Parallelism::default(),
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
    pool: &'static BufferPool,
    parallelism: Parallelism,
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
    /// Decodes on the threads of `parallelism` instead of the default.
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    fn decode(&self, first_block: usize, blocks: usize) -> Result<DequantChunk<O>> {
        let mut data = self
            .pool
            .get::<O>(blocks * self.block_elems)
            .map_err(|e| Error::from(e).in_tensor(self.source.view().name()))?;
        self.source
            .decode_blocks(first_block, blocks, &mut data, &self.parallelism)?;
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
