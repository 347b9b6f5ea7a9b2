//! The parallel dequantization driver: output split into chunks of whole
//! blocks, each chunk decoded by the single-threaded kernels on rayon.

use crate::dtype::GgmlType;
use crate::error::{Error, Result};
use crate::format::ByteOrder;
use crate::quant::{self, Output};

/// Output bytes per parallel work item. Big enough that rayon's per-task
/// cost vanishes next to the kernel (a 64 KiB chunk is 64 Q4_K blocks,
/// about 10 µs of work), small enough to balance a tensor of a few MiB over
/// 16 threads and to stay in L2 while written.
pub const CHUNK_OUTPUT_BYTES: usize = 64 * 1024;

/// Where dequantization runs.
#[derive(Clone, Debug, Default)]
pub enum Parallelism {
    /// On the calling thread only.
    Sequential,
    /// On rayon's global thread pool.
    #[cfg(feature = "parallel")]
    #[default]
    Global,
    /// On a rayon thread pool the caller built.
    #[cfg(feature = "parallel")]
    Pool(std::sync::Arc<rayon::ThreadPool>),
}

#[cfg(not(feature = "parallel"))]
impl Default for Parallelism {
    fn default() -> Self {
        Parallelism::Sequential
    }
}

impl Parallelism {
    /// `threads` threads: 0 for rayon's global pool (one thread per core),
    /// 1 for the calling thread, more for a dedicated pool.
    ///
    /// # Errors
    /// [`Error::ThreadPool`] if the pool cannot be built.
    pub fn threads(threads: usize) -> Result<Self> {
        match threads {
            1 => Ok(Parallelism::Sequential),
            #[cfg(feature = "parallel")]
            0 => Ok(Parallelism::Global),
            #[cfg(feature = "parallel")]
            n => rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(|i| format!("ggufmap-dequant-{i}"))
                .build()
                .map(|pool| Parallelism::Pool(std::sync::Arc::new(pool)))
                .map_err(|e| Error::ThreadPool { reason: e.to_string() }),
            #[cfg(not(feature = "parallel"))]
            _ => Ok(Parallelism::Sequential),
        }
    }

    /// Number of threads work is spread over.
    pub fn current_num_threads(&self) -> usize {
        match self {
            Parallelism::Sequential => 1,
            #[cfg(feature = "parallel")]
            Parallelism::Global => rayon::current_num_threads(),
            #[cfg(feature = "parallel")]
            Parallelism::Pool(pool) => pool.current_num_threads(),
        }
    }
}

/// Dequantizes `bytes` (whole blocks of `dtype`) into `out`, spreading
/// chunks of whole blocks over the threads of `parallelism`. The result is
/// bit-identical to the single-threaded kernels.
///
/// # Errors
/// [`Error::LengthMismatch`] when the lengths do not match;
/// [`Error::Unsupported`] as [`quant::dequantize_bytes`].
pub fn dequantize_parallel<O: Output>(
    dtype: GgmlType,
    bytes: &[u8],
    order: ByteOrder,
    out: &mut [O],
    parallelism: &Parallelism,
) -> Result<()> {
    let block_bytes = dtype.bytes_per_block();
    let block_elems = dtype.elements_per_block();
    let blocks = bytes.len() / block_bytes;
    let expected = blocks.saturating_mul(block_elems);
    if bytes.len() % block_bytes != 0 || out.len() != expected {
        return Err(Error::LengthMismatch { what: "dequantization output", expected, found: out.len() });
    }
    let blocks_per_chunk = (CHUNK_OUTPUT_BYTES / std::mem::size_of::<O>() / block_elems).max(1);
    let in_chunk = blocks_per_chunk * block_bytes;
    let out_chunk = blocks_per_chunk * block_elems;
    match parallelism {
        Parallelism::Sequential => quant::dequantize_bytes(dtype, bytes, order, out),
        #[cfg(feature = "parallel")]
        Parallelism::Global => run_chunks(dtype, bytes, order, out, in_chunk, out_chunk),
        #[cfg(feature = "parallel")]
        Parallelism::Pool(pool) => pool.install(|| run_chunks(dtype, bytes, order, out, in_chunk, out_chunk)),
    }
}

#[cfg(feature = "parallel")]
fn run_chunks<O: Output>(
    dtype: GgmlType,
    bytes: &[u8],
    order: ByteOrder,
    out: &mut [O],
    in_chunk: usize,
    out_chunk: usize,
) -> Result<()> {
    use rayon::prelude::*;
    if out.len() <= out_chunk {
        return quant::dequantize_bytes(dtype, bytes, order, out);
    }
    bytes
        .par_chunks(in_chunk)
        .zip(out.par_chunks_mut(out_chunk))
        .try_for_each(|(bytes, out)| quant::dequantize_bytes(dtype, bytes, order, out))
}
