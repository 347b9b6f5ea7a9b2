//! The one place that runs work on several threads: [`Parallelism`] says
//! where, its drivers (chunks of a mutable slice, a map over items, a loop
//! over indices) run on rayon when the `parallel` feature is on, on the
//! calling thread otherwise, and [`blocks_per_chunk`] is the one policy
//! that cuts a tensor into work items. Nothing else in the crate names
//! rayon or the feature.

use crate::dtype::GgmlType;
use crate::error::Result;

/// Output bytes per parallel work item decoded from bytes in memory. Big
/// enough that rayon's per-task cost vanishes next to the kernel (a 64 KiB
/// chunk is 64 Q4_K blocks, about 10 µs of work), small enough to balance
/// a tensor of a few MiB over 16 threads and to stay in L2 while written.
pub const CHUNK_OUTPUT_BYTES: usize = 64 * 1024;

/// Output bytes per work item whose input is read first (a positioned read
/// or a stream read per item): larger, so the read's fixed cost stays small
/// next to the decoding.
pub(crate) const READ_CHUNK_OUTPUT_BYTES: usize = 256 * 1024;

/// Bytes per work item (or per read) when raw bytes are copied whole.
pub(crate) const COPY_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// Whole blocks of `dtype` per work item, for output elements of
/// `out_size` bytes, read first (`reads`) or decoded in place; at least one.
pub(crate) fn blocks_per_chunk(dtype: GgmlType, out_size: usize, reads: bool) -> usize {
    let bytes = if reads {
        READ_CHUNK_OUTPUT_BYTES
    } else {
        CHUNK_OUTPUT_BYTES
    };
    (bytes / out_size.max(1) / dtype.elements_per_block()).max(1)
}

/// Where dequantization runs.
#[derive(Clone, Debug, Default)]
pub enum Parallelism {
    /// On the calling thread only.
    #[cfg_attr(not(feature = "parallel"), default)]
    Sequential,
    /// On rayon's global thread pool.
    #[cfg(feature = "parallel")]
    #[default]
    Global,
    /// On a rayon thread pool the caller built.
    #[cfg(feature = "parallel")]
    Pool(std::sync::Arc<rayon::ThreadPool>),
}

impl Parallelism {
    /// `threads` threads: 0 for rayon's global pool (one thread per core),
    /// 1 for the calling thread, more for a dedicated pool.
    ///
    /// # Errors
    /// [`Error::ThreadPool`](crate::Error::ThreadPool) if the pool cannot be built.
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
                .map_err(|e| crate::error::Error::ThreadPool {
                    reason: e.to_string(),
                }),
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

impl Parallelism {
    /// Runs `f(index, chunk)` over `data` cut into chunks of `chunk`
    /// elements (the last may be shorter), on these threads; stops at the
    /// first error. A slice of one chunk or less runs on the calling thread.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub(crate) fn try_for_each_chunk<T: Send>(
        &self,
        data: &mut [T],
        chunk: usize,
        f: impl Fn(usize, &mut [T]) -> Result<()> + Sync + Send,
    ) -> Result<()> {
        let chunk = chunk.max(1);
        if data.len() <= chunk {
            return f(0, data);
        }
        match self {
            Parallelism::Sequential => data
                .chunks_mut(chunk)
                .enumerate()
                .try_for_each(|(i, c)| f(i, c)),
            #[cfg(feature = "parallel")]
            Parallelism::Global => rayon_chunks(data, chunk, f),
            #[cfg(feature = "parallel")]
            Parallelism::Pool(pool) => pool.install(|| rayon_chunks(data, chunk, f)),
        }
    }

    /// Runs `f(i)` for every `i` in `0..n` on these threads, in no set
    /// order; stops at the first error.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub(crate) fn try_for_each_index(
        &self,
        n: usize,
        f: impl Fn(usize) -> Result<()> + Sync + Send,
    ) -> Result<()> {
        if n <= 1 {
            return (0..n).try_for_each(f);
        }
        match self {
            Parallelism::Sequential => (0..n).try_for_each(f),
            #[cfg(feature = "parallel")]
            Parallelism::Global => rayon_indices(n, f),
            #[cfg(feature = "parallel")]
            Parallelism::Pool(pool) => pool.install(|| rayon_indices(n, f)),
        }
    }

    /// Maps `f` over `items` on these threads, keeping their order; stops
    /// at the first error.
    ///
    /// # Errors
    /// The first error `f` returns.
    #[cfg_attr(not(feature = "candle"), allow(dead_code))]
    pub(crate) fn try_map<I: Sync, R: Send>(
        &self,
        items: &[I],
        f: impl Fn(&I) -> Result<R> + Sync + Send,
    ) -> Result<Vec<R>> {
        match self {
            Parallelism::Sequential => items.iter().map(f).collect(),
            #[cfg(feature = "parallel")]
            Parallelism::Global => rayon_map(items, f),
            #[cfg(feature = "parallel")]
            Parallelism::Pool(pool) => pool.install(|| rayon_map(items, f)),
        }
    }
}

#[cfg(feature = "parallel")]
fn rayon_chunks<T: Send>(
    data: &mut [T],
    chunk: usize,
    f: impl Fn(usize, &mut [T]) -> Result<()> + Sync + Send,
) -> Result<()> {
    use rayon::prelude::*;
    data.par_chunks_mut(chunk)
        .enumerate()
        .try_for_each(|(i, c)| f(i, c))
}

#[cfg(feature = "parallel")]
fn rayon_indices(n: usize, f: impl Fn(usize) -> Result<()> + Sync + Send) -> Result<()> {
    use rayon::prelude::*;
    (0..n).into_par_iter().try_for_each(f)
}

#[cfg(feature = "parallel")]
fn rayon_map<I: Sync, R: Send>(
    items: &[I],
    f: impl Fn(&I) -> Result<R> + Sync + Send,
) -> Result<Vec<R>> {
    use rayon::prelude::*;
    items.par_iter().map(f).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn each(par: &Parallelism) {
        let mut data: Vec<u32> = vec![0; 1000];
        par.try_for_each_chunk(&mut data, 64, |i, c| {
            c.iter_mut().for_each(|v| *v = i as u32);
            Ok(())
        })
        .unwrap();
        assert!(data.iter().enumerate().all(|(j, &v)| v as usize == j / 64));
        let failed = par.try_for_each_chunk(&mut data, 64, |i, _| {
            if i == 7 {
                Err(Error::ThreadPool {
                    reason: "seventh".into(),
                })
            } else {
                Ok(())
            }
        });
        assert!(matches!(failed, Err(Error::ThreadPool { .. })));
        let items: Vec<u32> = (0..100).collect();
        let doubled = par.try_map(&items, |&v| Ok(v * 2)).unwrap();
        assert_eq!(doubled, (0..100).map(|v| v * 2).collect::<Vec<_>>());
        let seen: Vec<std::sync::atomic::AtomicU32> =
            (0..100).map(|_| Default::default()).collect();
        par.try_for_each_index(seen.len(), |i| {
            seen[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
        assert!(seen
            .iter()
            .all(|s| s.load(std::sync::atomic::Ordering::Relaxed) == 1));
        let failed = par.try_for_each_index(100, |i| {
            if i == 42 {
                Err(Error::ThreadPool {
                    reason: "forty-second".into(),
                })
            } else {
                Ok(())
            }
        });
        assert!(matches!(failed, Err(Error::ThreadPool { .. })));
    }

    #[test]
    fn every_parallelism_visits_every_chunk_in_place_and_in_order() {
        each(&Parallelism::Sequential);
        each(&Parallelism::default());
        each(&Parallelism::threads(3).unwrap());
    }
}
