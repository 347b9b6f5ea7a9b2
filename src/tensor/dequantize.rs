//! Dequantizing a tensor: whole into a pooled buffer, or streamed in
//! chunks of whole blocks ([`DequantChunks`]), each decoded in parallel by
//! the driver in [`crate::dequant`].

use std::marker::PhantomData;

use crate::dequant::dequantize_parallel;
use crate::error::Result;
use crate::file::Gguf;
use crate::parallel::Parallelism;
use crate::pool::{BufferPool, PooledBuf};
use crate::quant::Output;
use crate::tensor::TensorView;

impl<'a> TensorView<'a> {
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
        let mut buf = pool.get::<O>(self.len()?)?;
        self.dequantize_into_with(&mut buf, parallelism)?;
        Ok(buf)
    }

    /// Streams the tensor as chunks of whole blocks, each at most
    /// `max_bytes` of `O` (or one block, if a block is larger), decoded in
    /// parallel into pooled buffers: memory stays bounded by the chunks the
    /// caller holds at once.
    pub fn dequantize_chunks<O: Output>(&self, max_bytes: usize) -> DequantChunks<'a, O> {
        let block_elems = self.dtype().elements_per_block();
        let blocks = (max_bytes / std::mem::size_of::<O>() / block_elems).max(1);
        DequantChunks {
            view: *self,
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
    view: TensorView<'a>,
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

impl<'a, O: Output> DequantChunks<'a, O> {
    /// Decodes on the threads of `parallelism` instead of the default.
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    fn decode(&self, first_block: usize, blocks: usize) -> Result<DequantChunk<O>> {
        let dtype = self.view.dtype();
        let (block_bytes, block_elems) = (dtype.bytes_per_block(), dtype.elements_per_block());
        let start = first_block * block_bytes;
        let bytes = self
            .view
            .bytes()
            .get(start..start + blocks * block_bytes)
            .unwrap_or_default();
        let mut data = self.pool.get::<O>(blocks * block_elems)?;
        dequantize_parallel(
            dtype,
            bytes,
            self.view.byte_order(),
            &mut data,
            &self.parallelism,
        )?;
        Ok(DequantChunk {
            first_element: first_block * block_elems,
            data,
        })
    }
}

impl<O: Output> Iterator for DequantChunks<'_, O> {
    type Item = Result<DequantChunk<O>>;

    fn next(&mut self) -> Option<Self::Item> {
        let total = self.view.bytes().len() / self.view.dtype().bytes_per_block();
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

impl Gguf<'_> {
    /// Every tensor with its values dequantized to f32, one tensor at a
    /// time, into buffers from the process-wide pool: dropping each buffer
    /// before taking the next keeps memory to the largest tensor.
    pub fn dequantize_all(
        &self,
    ) -> impl Iterator<Item = (TensorView<'_>, Result<PooledBuf<f32>>)> + '_ {
        self.tensors().map(|t| (t, t.dequantize()))
    }
}
