//! A lock-free pool of aligned, reusable buffers for dequantized output.
//!
//! Dequantizing a tensor writes every byte of a fresh output buffer. For a
//! large buffer the first write to each page is a page fault in which the
//! kernel finds and zeroes a page; that costs about as much as the
//! dequantization itself. A buffer that comes back from the pool has its pages
//! resident already, so dequantizing the next tensor of a similar size into it
//! runs at memory speed. That is what [`BufferPool`] is for.
//!
//! # Design
//!
//! - Buffers come in power-of-two **size classes**, from
//!   [`MIN_BUFFER_BYTES`] (4 KiB; smaller requests round up to it) to
//!   [`MAX_BUFFER_BYTES`] (1 TiB). A request is served by the smallest class
//!   that holds it, so a buffer returned after a request of 5,000 bytes serves
//!   a later request of 8,000: buffers are keyed by what they can hold, not by
//!   what was asked for.
//! - Each class is one bounded [`crossbeam_queue::ArrayQueue`]:
//!   [`BufferPool::get`] takes no lock and never blocks: it pops a retained
//!   buffer (a *hit*) or allocates a fresh one (a *miss*).
//! - Every buffer starts on a 64-byte boundary ([`BUFFER_ALIGN`]), so one
//!   buffer can be viewed as `f32`, `half::f16`, `half::bf16`, `u8` or any
//!   other [`bytemuck::Pod`] type with an alignment of at most 64.
//! - A fresh buffer is allocated zeroed with the allocator's natural
//!   alignment and viewed from its first 64-byte boundary. Asking the
//!   allocator for 64-byte alignment instead would be simpler, but Rust's
//!   system allocator serves zeroed memory of alignment above 16 by writing
//!   the zeros itself, which makes every page resident at once; `calloc`
//!   hands out large buffers as fresh zero pages that only become resident
//!   when written, so a buffer larger than its request costs no memory for
//!   the part that is never used.
//! - A [`PooledBuf`] guard gives its buffer back when dropped. It holds a
//!   reference-counted handle to the pool's state, so it may outlive the
//!   [`BufferPool`] it came from and move between threads.
//! - The pool caps the bytes it retains ([`PoolConfig::max_retained_bytes`])
//!   and the buffers per class ([`PoolConfig::max_buffers_per_class`]); a
//!   buffer that would exceed either is freed instead of kept. A buffer's
//!   bytes are reserved against the cap with one atomic read-modify-write
//!   of one byte count before it is queued, so the cap holds under any
//!   interleaving of threads.
//! - Hit, miss, return and drop counters are atomics; see
//!   [`BufferPool::stats`].
//!
//! The pool sits off the hot path (one get per tensor or per work item of
//! a few hundred KiB, each followed by tens of microseconds of decoding),
//! so nothing beyond one queue per class and one byte count is paid for:
//! the README gives the workload figures that decided it, and a test holds
//! get and drop to microseconds when threads outnumber cores.
//!
//! Retained bytes are counted by capacity (the class size), which is an upper
//! bound on what the retained buffers keep resident: a fresh buffer's pages
//! are only backed by memory once written.
//!
//! # Example
//!
//! ```
//! use ggufmap::pool::BufferPool;
//!
//! let pool = BufferPool::global();
//! let mut out = pool.get::<f32>(10_000)?;
//! out.fill(0.5); // contents are unspecified until written: see `get`
//! assert_eq!(out.len(), 10_000);
//! drop(out); // the buffer goes back to the pool
//!
//! let again = pool.get::<f32>(9_000)?; // same size class: served from the pool
//! assert!(again.is_recycled());
//! # Ok::<(), ggufmap::pool::PoolError>(())
//! ```

// Nothing in this module may panic on any request, whatever its size.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use bytemuck::Pod;
use crossbeam_queue::ArrayQueue;

/// Alignment in bytes of the start of every pooled buffer.
pub const BUFFER_ALIGN: usize = 64;

/// Capacity in bytes of the smallest size class; smaller requests get a
/// buffer of this size.
pub const MIN_BUFFER_BYTES: usize = 1 << MIN_CLASS_SHIFT;

/// Capacity in bytes of the largest size class; larger requests fail with
/// [`PoolError::TooLarge`].
pub const MAX_BUFFER_BYTES: u64 = 1 << MAX_CLASS_SHIFT;

const MIN_CLASS_SHIFT: u32 = 12;
const MAX_CLASS_SHIFT: u32 = 40;
const CLASS_COUNT: usize = (MAX_CLASS_SHIFT - MIN_CLASS_SHIFT + 1) as usize;

/// An `ArrayQueue` allocates all its slots up front; this bounds that cost
/// whatever `max_buffers_per_class` a caller asks for.
const MAX_QUEUE_SLOTS: usize = 1 << 16;

/// Bytes a buffer has beyond its class size, so that a 64-byte boundary
/// falls within its first 64 bytes whatever the allocator's alignment.
const SLACK: usize = BUFFER_ALIGN - 1;

/// A class's buffer: `class_bytes + SLACK` bytes, used from their first
/// 64-byte boundary on (see the module documentation for why).
type Buffer = Box<[u8]>;

/// The class capacity of a buffer made by `allocate`.
fn capacity_of(buf: &[u8]) -> usize {
    buf.len().saturating_sub(SLACK)
}

/// Where the 64-byte-aligned part of `buf` starts.
fn aligned_start(buf: &[u8]) -> usize {
    let misalignment = (buf.as_ptr() as usize) % BUFFER_ALIGN;
    BUFFER_ALIGN.wrapping_sub(misalignment) % BUFFER_ALIGN
}

/// A zeroed buffer of class capacity `capacity`, or `None` if the allocator
/// has no memory for it.
fn allocate(capacity: usize) -> Option<Buffer> {
    // `try_zeroed_slice_box` calls `alloc_zeroed` with the alignment of u8,
    // which the system allocator serves with `calloc`.
    bytemuck::allocation::try_zeroed_slice_box(capacity.checked_add(SLACK)?).ok()
}

/// The size class for a request of `bytes` bytes: its index and its capacity
/// in bytes, or `None` if no class is large enough.
fn class_of(bytes: usize) -> Option<(usize, usize)> {
    let capacity = bytes.max(MIN_BUFFER_BYTES).checked_next_power_of_two()?;
    if u64::try_from(capacity).ok()? > MAX_BUFFER_BYTES {
        return None;
    }
    let shift = capacity.trailing_zeros().checked_sub(MIN_CLASS_SHIFT)?;
    Some((usize::try_from(shift).ok()?, capacity))
}

/// Why a buffer could not be handed out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The request is larger than the largest size class (or its size in
    /// bytes overflows `usize`).
    #[error("a buffer of {len} elements of {elem_bytes} bytes exceeds the largest pooled buffer ({max_bytes} bytes)")]
    TooLarge {
        /// Elements requested.
        len: usize,
        /// Size of one element in bytes.
        elem_bytes: usize,
        /// [`MAX_BUFFER_BYTES`].
        max_bytes: u64,
    },
    /// The allocator could not provide a fresh buffer, even after the pool
    /// freed everything it retained.
    #[error("cannot allocate a buffer of {bytes} bytes")]
    AllocFailed {
        /// Capacity of the buffer that was to be allocated (the size class).
        bytes: usize,
    },
}

/// Limits of a [`BufferPool`].
///
/// Build one with a struct literal or from [`PoolConfig::default`] with the
/// `with_*` methods.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Most bytes (counted by buffer capacity) the pool keeps for reuse; a
    /// returned buffer that would exceed it is freed. 0 turns reuse off.
    pub max_retained_bytes: usize,
    /// Most buffers the pool keeps per size class; a returned buffer that finds
    /// its class full is freed. 0 turns reuse off. Values above 65,536 act as
    /// 65,536, because each class's queue allocates its slots up front.
    pub max_buffers_per_class: usize,
}

impl PoolConfig {
    /// Default for [`PoolConfig::max_retained_bytes`]: 512 MiB.
    pub const DEFAULT_MAX_RETAINED_BYTES: usize = 512 * 1024 * 1024;
    /// Default for [`PoolConfig::max_buffers_per_class`]: 64.
    pub const DEFAULT_MAX_BUFFERS_PER_CLASS: usize = 64;

    /// This configuration with `max_retained_bytes` set.
    #[must_use]
    pub const fn with_max_retained_bytes(mut self, bytes: usize) -> Self {
        self.max_retained_bytes = bytes;
        self
    }

    /// This configuration with `max_buffers_per_class` set.
    #[must_use]
    pub const fn with_max_buffers_per_class(mut self, buffers: usize) -> Self {
        self.max_buffers_per_class = buffers;
        self
    }
}

impl Default for PoolConfig {
    /// 512 MiB retained at most, 64 buffers per class.
    fn default() -> Self {
        PoolConfig {
            max_retained_bytes: Self::DEFAULT_MAX_RETAINED_BYTES,
            max_buffers_per_class: Self::DEFAULT_MAX_BUFFERS_PER_CLASS,
        }
    }
}

/// A snapshot of a pool's counters.
///
/// Each field is read atomically, but not all at the same instant: while
/// other threads use the pool, the fields may disagree by the operations in
/// flight. Once every [`PooledBuf`] has been dropped,
/// `hits + misses == returns + dropped`. The counters wrap after `usize::MAX`
/// operations (only reachable on 32-bit targets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Requests served by a retained buffer.
    pub hits: u64,
    /// Requests served by a fresh allocation.
    pub misses: u64,
    /// Buffers given back and kept for reuse.
    pub returns: u64,
    /// Buffers given back and freed, because their class was full or keeping
    /// them would have exceeded [`PoolConfig::max_retained_bytes`].
    pub dropped: u64,
    /// Bytes (by capacity) the pool retains now; never above
    /// [`PoolConfig::max_retained_bytes`].
    pub retained_bytes: usize,
    /// Highest [`PoolStats::retained_bytes`] seen (counting buffers about
    /// to be queued); never above [`PoolConfig::max_retained_bytes`].
    pub peak_retained_bytes: usize,
    /// Buffers the pool retains now.
    pub retained_buffers: usize,
}

impl PoolStats {
    /// Requests served: `hits + misses`.
    #[must_use]
    pub fn gets(&self) -> u64 {
        self.hits.wrapping_add(self.misses)
    }
}

/// What [`BufferPool::clear`] freed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cleared {
    /// Buffers freed.
    pub buffers: usize,
    /// Their capacity in bytes.
    pub bytes: usize,
}

/// The state every handle and guard of one pool shares.
struct Shared {
    config: PoolConfig,
    /// The queue of each size class, made on the first return to that
    /// class so an unused class costs no slots.
    classes: [OnceLock<ArrayQueue<Buffer>>; CLASS_COUNT],
    /// Queue slots per class, worked out once (it takes a division).
    slots: [usize; CLASS_COUNT],
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    hits: AtomicUsize,
    misses: AtomicUsize,
    returns: AtomicUsize,
    dropped: AtomicUsize,
    /// Bytes (by capacity) of the buffers queued, or about to be: a
    /// buffer's bytes are reserved before it is pushed and released after
    /// it is popped, so this never exceeds the cap.
    retained: AtomicUsize,
    peak: AtomicUsize,
}

// Relaxed ordering throughout: the counters are statistics, and the cap only
// needs each read-modify-write of `retained` to be atomic, which every
// ordering guarantees. The buffers themselves are handed between threads by
// the queues, which synchronize their contents.
const ORDER: Ordering = Ordering::Relaxed;

/// Queue slots for the class of index `class` under `config`: no more than
/// the cap could ever let it hold.
fn slots(config: &PoolConfig, class: usize) -> usize {
    let fit = u32::try_from(class)
        .ok()
        .and_then(|class| class.checked_add(MIN_CLASS_SHIFT))
        .and_then(|shift| config.max_retained_bytes.checked_shr(shift))
        .unwrap_or(0);
    config.max_buffers_per_class.min(fit).min(MAX_QUEUE_SLOTS)
}

impl Shared {
    fn new(config: PoolConfig) -> Self {
        Shared {
            config,
            classes: std::array::from_fn(|_| OnceLock::new()),
            slots: std::array::from_fn(|class| slots(&config, class)),
            counters: Counters::default(),
        }
    }

    /// Keeps `buf` for reuse if the class and the byte cap have room, frees
    /// it otherwise.
    fn give_back(&self, class: usize, buf: Buffer) {
        let counters = &self.counters;
        let bytes = capacity_of(&buf);
        let slots = self.slots.get(class).copied().unwrap_or(0);
        let Some(queue) = self.classes.get(class).filter(|_| slots > 0) else {
            counters.dropped.fetch_add(1, ORDER);
            return;
        };
        // Reserve first, push second: a racing thread sees the reservation
        // and cannot take the same headroom.
        if !self.reserve(bytes) {
            counters.dropped.fetch_add(1, ORDER);
            return;
        }
        if queue
            .get_or_init(|| ArrayQueue::new(slots))
            .push(buf)
            .is_err()
        {
            counters.retained.fetch_sub(bytes, ORDER);
            counters.dropped.fetch_add(1, ORDER);
        } else {
            counters.returns.fetch_add(1, ORDER);
        }
    }

    /// Reserves `bytes` against the cap for a buffer about to be queued.
    fn reserve(&self, bytes: usize) -> bool {
        let cap = self.config.max_retained_bytes;
        let counters = &self.counters;
        let reserved = counters.retained.fetch_update(ORDER, ORDER, |held| {
            held.checked_add(bytes).filter(|&total| total <= cap)
        });
        let Ok(before) = reserved else { return false };
        counters.peak.fetch_max(before.saturating_add(bytes), ORDER);
        true
    }

    /// A retained buffer of class `class`, if any.
    fn pop(&self, class: usize) -> Option<Buffer> {
        let buf = self.classes.get(class)?.get()?.pop()?;
        self.counters.retained.fetch_sub(capacity_of(&buf), ORDER);
        Some(buf)
    }

    fn clear(&self) -> Cleared {
        let mut cleared = Cleared::default();
        for queue in self.classes.iter().filter_map(OnceLock::get) {
            // At most one queue's worth, so that threads returning buffers as
            // fast as we free them cannot keep us here.
            for _ in 0..queue.capacity() {
                let Some(buf) = queue.pop() else { break };
                let bytes = capacity_of(&buf);
                drop(buf);
                self.counters.retained.fetch_sub(bytes, ORDER);
                cleared.buffers = cleared.buffers.saturating_add(1);
                cleared.bytes = cleared.bytes.saturating_add(bytes);
            }
        }
        cleared
    }
}

/// A pool of 64-byte-aligned buffers in power-of-two size classes.
///
/// Cloning a `BufferPool` gives another handle to the same pool. Use
/// [`BufferPool::global`] for the process-wide pool or [`BufferPool::new`]
/// for one with its own limits. See the [module documentation](self) for the
/// design.
#[derive(Clone)]
pub struct BufferPool {
    shared: Arc<Shared>,
}

impl BufferPool {
    /// A new, empty pool with the given limits.
    #[must_use]
    pub fn new(config: PoolConfig) -> Self {
        BufferPool {
            shared: Arc::new(Shared::new(config)),
        }
    }

    /// The process-wide pool, with [`PoolConfig::default`] limits, made on
    /// first use.
    #[must_use]
    pub fn global() -> &'static BufferPool {
        static GLOBAL: OnceLock<BufferPool> = OnceLock::new();
        GLOBAL.get_or_init(BufferPool::default)
    }

    /// This pool's limits.
    #[must_use]
    pub fn config(&self) -> PoolConfig {
        self.shared.config
    }

    /// Capacity in bytes of the buffer that serves a request of `bytes`
    /// bytes (its size class), or `None` if the request is too large.
    #[must_use]
    pub fn class_capacity(bytes: usize) -> Option<usize> {
        class_of(bytes).map(|(_, capacity)| capacity)
    }

    /// A buffer of exactly `len` elements of `T`.
    ///
    /// Takes no lock and never blocks: it takes a retained buffer of the
    /// request's size class or allocates a fresh one.
    ///
    /// **The contents are unspecified**: a retained buffer holds whatever its
    /// last user wrote, possibly as another type (any bit pattern is a valid
    /// `T`, since `T: Pod`). Write every element before reading, or use
    /// [`BufferPool::get_zeroed`].
    ///
    /// `len == 0` gives an empty buffer without touching the pool or its
    /// counters. `T` must have a non-zero size and an alignment of at most
    /// [`BUFFER_ALIGN`]; anything else is a compile-time error.
    ///
    /// # Errors
    ///
    /// [`PoolError::TooLarge`] if `len * size_of::<T>()` overflows or exceeds
    /// [`MAX_BUFFER_BYTES`]; [`PoolError::AllocFailed`] if a fresh buffer
    /// cannot be allocated even after freeing every retained buffer.
    ///
    /// # Performance
    ///
    /// A hit costs a queue pop and a few atomic operations, and its pages are
    /// resident already. A miss allocates zeroed memory: for large classes
    /// that is a fresh mapping whose pages fault in on first write.
    pub fn get<T: Pod>(&self, len: usize) -> Result<PooledBuf<T>, PoolError> {
        self.take(len)
    }

    /// Like [`BufferPool::get`], with every element zero.
    ///
    /// A fresh buffer is zero already (and its untouched pages stay
    /// unbacked); only a recycled one is cleared, and only its first
    /// `len * size_of::<T>()` bytes.
    ///
    /// # Errors
    ///
    /// As [`BufferPool::get`].
    pub fn get_zeroed<T: Pod>(&self, len: usize) -> Result<PooledBuf<T>, PoolError> {
        let mut buf = self.take::<T>(len)?;
        if buf.recycled {
            buf.as_bytes_mut().fill(0);
        }
        Ok(buf)
    }

    fn take<T: Pod>(&self, len: usize) -> Result<PooledBuf<T>, PoolError> {
        // The views cast the buffer's bytes to `T`: that needs the buffer's
        // alignment to suffice, and a zero-sized `T` has no byte length.
        const {
            assert!(
                align_of::<T>() <= BUFFER_ALIGN && size_of::<T>() > 0,
                "PooledBuf element types need a non-zero size and an alignment of at most 64"
            );
        }
        let too_large = || PoolError::TooLarge {
            len,
            elem_bytes: size_of::<T>(),
            max_bytes: MAX_BUFFER_BYTES,
        };
        let bytes = len.checked_mul(size_of::<T>()).ok_or_else(too_large)?;
        if bytes == 0 {
            return Ok(self.guard(Buffer::default(), 0, 0, 0, false));
        }
        let (class, capacity) = class_of(bytes).ok_or_else(too_large)?;
        let counters = &self.shared.counters;
        if let Some(buf) = self.shared.pop(class) {
            counters.hits.fetch_add(1, ORDER);
            return Ok(self.guard(buf, class, len, bytes, true));
        }
        // Zeroed allocation rather than writing zeros: the allocator maps
        // large buffers fresh from the kernel, already zero and not yet
        // resident, so nothing is touched that the caller does not touch.
        let buf = match allocate(capacity) {
            Some(buf) => buf,
            None => {
                // Memory the pool holds may be what the allocator lacks.
                self.clear();
                allocate(capacity).ok_or(PoolError::AllocFailed { bytes: capacity })?
            }
        };
        counters.misses.fetch_add(1, ORDER);
        Ok(self.guard(buf, class, len, bytes, false))
    }

    fn guard<T: Pod>(
        &self,
        buf: Buffer,
        class: usize,
        len: usize,
        bytes: usize,
        recycled: bool,
    ) -> PooledBuf<T> {
        PooledBuf {
            start: aligned_start(&buf),
            buf,
            class,
            len,
            bytes,
            recycled,
            shared: Arc::clone(&self.shared),
            _elem: PhantomData,
        }
    }

    /// The pool's counters now.
    #[must_use]
    pub fn stats(&self) -> PoolStats {
        let c = &self.shared.counters;
        let count = |counter: &AtomicUsize| counter.load(ORDER) as u64;
        let retained_buffers = self
            .shared
            .classes
            .iter()
            .filter_map(OnceLock::get)
            .map(ArrayQueue::len)
            .fold(0, usize::saturating_add);
        PoolStats {
            hits: count(&c.hits),
            misses: count(&c.misses),
            returns: count(&c.returns),
            dropped: count(&c.dropped),
            retained_bytes: c.retained.load(ORDER),
            peak_retained_bytes: c.peak.load(ORDER),
            retained_buffers,
        }
    }

    /// Frees every buffer the pool retains and says how many and how large
    /// they were. Buffers in use are unaffected and return to the pool as
    /// usual when dropped.
    pub fn clear(&self) -> Cleared {
        self.shared.clear()
    }
}

impl Default for BufferPool {
    /// A pool with [`PoolConfig::default`] limits.
    fn default() -> Self {
        BufferPool::new(PoolConfig::default())
    }
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// A buffer of `len` elements of `T` lent by a [`BufferPool`]; dereferences
/// to `[T]` and goes back to its pool when dropped.
///
/// The guard keeps the pool's state alive, so it may outlive the
/// [`BufferPool`] handle it came from, and it is `Send` and `Sync` when `T`
/// is. The data starts on a [`BUFFER_ALIGN`]-byte boundary.
pub struct PooledBuf<T: Pod> {
    /// Empty only for a zero-length request (and after drop took it).
    buf: Buffer,
    /// Offset of the first 64-byte boundary in `buf`: the data starts here.
    start: usize,
    class: usize,
    len: usize,
    /// `len * size_of::<T>()`, checked when the guard was made.
    bytes: usize,
    recycled: bool,
    shared: Arc<Shared>,
    _elem: PhantomData<T>,
}

impl<T: Pod> PooledBuf<T> {
    /// The elements as bytes (`len * size_of::<T>()` of them).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        // Never short: the buffer holds its class size after `start`, and the
        // class at least `bytes`.
        let end = self.start.saturating_add(self.bytes);
        self.buf.get(self.start..end).unwrap_or_default()
    }

    /// The elements as mutable bytes.
    #[must_use]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        let end = self.start.saturating_add(self.bytes);
        self.buf.get_mut(self.start..end).unwrap_or_default()
    }

    /// Capacity in bytes of the underlying buffer (its size class; 0 for an
    /// empty request). What the pool counts when the buffer is retained.
    #[must_use]
    pub fn capacity_bytes(&self) -> usize {
        capacity_of(&self.buf)
    }

    /// Whether the buffer was taken from the pool (a hit) rather than freshly
    /// allocated. A recycled buffer's pages are resident and it may hold
    /// stale data; a fresh one is zeroed.
    #[must_use]
    pub fn is_recycled(&self) -> bool {
        self.recycled
    }
}

impl<T: Pod> Deref for PooledBuf<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // An empty buffer's dangling pointer need not be aligned for `T`.
        if self.bytes == 0 {
            return &[];
        }
        // Cannot panic: the bytes start on a 64-byte boundary, `T`'s alignment
        // is at most 64 (checked at compile time in `take`), and their length
        // is `len * size_of::<T>()`.
        bytemuck::cast_slice(self.as_bytes())
    }
}

impl<T: Pod> DerefMut for PooledBuf<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        if self.bytes == 0 {
            return &mut [];
        }
        // Cannot panic, as in `deref`.
        bytemuck::cast_slice_mut(self.as_bytes_mut())
    }
}

impl<T: Pod> AsRef<[T]> for PooledBuf<T> {
    fn as_ref(&self) -> &[T] {
        self
    }
}

impl<T: Pod> AsMut<[T]> for PooledBuf<T> {
    fn as_mut(&mut self) -> &mut [T] {
        self
    }
}

impl<T: Pod> fmt::Debug for PooledBuf<T> {
    /// Sizes only: printing a multi-gigabyte buffer helps no one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledBuf")
            .field("len", &self.len)
            .field("capacity_bytes", &self.capacity_bytes())
            .field("recycled", &self.recycled)
            .finish()
    }
}

impl<T: Pod> Drop for PooledBuf<T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if !buf.is_empty() {
            self.shared.give_back(self.class, buf);
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_powers_of_two() {
        assert_eq!(class_of(0), Some((0, 4096)));
        assert_eq!(class_of(1), Some((0, 4096)));
        assert_eq!(class_of(4096), Some((0, 4096)));
        assert_eq!(class_of(4097), Some((1, 8192)));
        assert_eq!(class_of(1 << 20), Some((8, 1 << 20)));
        assert_eq!(class_of((1 << 20) + 1), Some((9, 2 << 20)));
    }

    #[cfg(target_pointer_width = "64")]
    #[test]
    fn classes_stop_at_one_tebibyte() {
        assert_eq!(class_of(1 << 40), Some((CLASS_COUNT - 1, 1 << 40)));
        assert_eq!(class_of((1 << 40) + 1), None);
        assert_eq!(class_of(usize::MAX), None);
    }

    #[test]
    fn too_large_requests_are_errors() {
        let pool = BufferPool::new(PoolConfig::default());
        assert!(matches!(
            pool.get::<f32>(usize::MAX),
            Err(PoolError::TooLarge { elem_bytes: 4, .. })
        ));
        assert_eq!(pool.stats().gets(), 0);
    }

    #[test]
    fn slots_never_exceed_what_the_cap_can_hold() {
        let config = PoolConfig {
            max_retained_bytes: 20_000,
            max_buffers_per_class: 64,
        };
        assert_eq!(slots(&config, 0), 4);
        assert_eq!(slots(&config, 2), 1);
        assert_eq!(slots(&config, 3), 0);
        assert_eq!(slots(&config, CLASS_COUNT - 1), 0);
        let config = PoolConfig {
            max_retained_bytes: usize::MAX,
            max_buffers_per_class: usize::MAX,
        };
        assert_eq!(slots(&config, 0), MAX_QUEUE_SLOTS);
        assert_eq!(slots(&config, 500), 0);
    }

    #[test]
    fn buffers_start_on_a_boundary_whatever_the_allocation() {
        for capacity in [4096, 8192, 1 << 20] {
            let buf = allocate(capacity).unwrap();
            assert_eq!(capacity_of(&buf), capacity);
            let start = aligned_start(&buf);
            assert!(start < BUFFER_ALIGN);
            assert_eq!((buf.as_ptr() as usize + start) % BUFFER_ALIGN, 0);
            assert!(buf.len() - start >= capacity);
        }
    }

    #[test]
    fn views_are_aligned_and_exact() {
        let pool = BufferPool::new(PoolConfig::default());
        let mut buf = pool.get::<half::bf16>(3).unwrap();
        assert_eq!(buf.len(), 3);
        assert_eq!(buf.as_bytes().len(), 6);
        assert_eq!(buf.as_ptr() as usize % BUFFER_ALIGN, 0);
        assert_eq!(buf.capacity_bytes(), MIN_BUFFER_BYTES);
        buf[2] = half::bf16::ONE;
        assert_eq!(buf.as_bytes()[4..], half::bf16::ONE.to_le_bytes());
    }

    #[test]
    fn empty_requests_touch_nothing() {
        let pool = BufferPool::new(PoolConfig::default());
        let buf = pool.get::<f32>(0).unwrap();
        assert!(buf.is_empty());
        assert_eq!(buf.capacity_bytes(), 0);
        drop(buf);
        let stats = pool.stats();
        assert_eq!((stats.gets(), stats.returns, stats.dropped), (0, 0, 0));
    }

    #[test]
    fn get_zeroed_clears_stale_data() {
        let pool = BufferPool::new(PoolConfig::default());
        let mut buf = pool.get::<u32>(100).unwrap();
        buf.fill(u32::MAX);
        drop(buf);
        let buf = pool.get_zeroed::<u32>(100).unwrap();
        assert!(buf.is_recycled());
        assert!(buf.iter().all(|&x| x == 0));
    }

    #[test]
    fn disabled_pool_frees_everything() {
        let pool = BufferPool::new(PoolConfig::default().with_max_buffers_per_class(0));
        drop(pool.get::<u8>(10).unwrap());
        drop(pool.get::<u8>(10).unwrap());
        let stats = pool.stats();
        assert_eq!((stats.hits, stats.misses), (0, 2));
        assert_eq!((stats.returns, stats.dropped), (0, 2));
        assert_eq!(stats.retained_bytes, 0);
    }

    #[test]
    fn retained_bytes_count_queued_buffers_and_their_peak() {
        let pool = BufferPool::new(PoolConfig::default().with_max_retained_bytes(16 * 1024));
        let (a, b) = (pool.get::<u8>(10).unwrap(), pool.get::<u8>(5_000).unwrap());
        assert_eq!(pool.stats().retained_bytes, 0);
        drop(a);
        drop(b);
        let stats = pool.stats();
        assert_eq!(
            (stats.retained_bytes, stats.peak_retained_bytes),
            (12_288, 12_288)
        );
        // A hit releases its bytes; the peak stays.
        let again = pool.get::<u8>(5_000).unwrap();
        let stats = pool.stats();
        assert_eq!(
            (stats.retained_bytes, stats.peak_retained_bytes),
            (4_096, 12_288)
        );
        // Past the cap a buffer is freed, not kept.
        let big = pool.get::<u8>(16_000).unwrap();
        drop(again);
        drop(big);
        let stats = pool.stats();
        assert_eq!((stats.retained_bytes, stats.dropped), (12_288, 1));
        assert_eq!(pool.clear().bytes, 12_288);
        assert_eq!(pool.stats().retained_bytes, 0);
    }

    #[test]
    fn guards_are_send_and_sync() {
        fn check<S: Send + Sync>() {}
        check::<PooledBuf<f32>>();
        check::<BufferPool>();
    }
}
