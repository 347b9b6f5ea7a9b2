//! Opening a model-shaped header: ggufmap against candle-core's
//! `gguf_file::Content::read`, on the same bytes in memory.
//!
//! The file holds a 262,144-token vocabulary (tokens, scores, token types)
//! and ~250 tensor infos with tiny data: the cost of opening is the index,
//! not the tensor bytes. A counting global allocator measures the peak heap
//! allocated while each loader opens the file; the last line printed is a
//! summary with the time ratio and both peaks.
//!
//! Run: `cargo bench --features candle --bench open`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::io::Cursor;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use ggufmap::{GgmlType, Gguf, GgufWriter, MetaValue};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::Relaxed) + bytes;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only
// observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak heap bytes above the level when `f` started, while `f` runs (its
/// result is dropped inside the measurement).
fn peak_during<R>(f: impl FnOnce() -> R) -> usize {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    drop(black_box(f()));
    PEAK.load(Ordering::SeqCst) - base
}

const N_TOKENS: usize = 262_144;
const N_LAYERS: usize = 27;

/// A llama-shaped header: 262,144 tokens, scores and token types, the usual
/// hyperparameters, and 9 tensors per layer plus 3 (246 tensors).
fn model_bytes() -> Vec<u8> {
    let tokens: Vec<String> = (0..N_TOKENS)
        .map(|i| match i {
            0 => "<unk>".to_owned(),
            1 => "<s>".to_owned(),
            2 => "</s>".to_owned(),
            3..=258 => format!("<0x{:02X}>", i - 3),
            _ => format!("▁token{i}"),
        })
        .collect();
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("general.name", "bench model").unwrap();
    w.add_metadata("general.file_type", 15u32).unwrap();
    w.add_metadata("llama.context_length", 8192u32).unwrap();
    w.add_metadata("llama.embedding_length", 4096u32).unwrap();
    w.add_metadata("llama.block_count", N_LAYERS as u32)
        .unwrap();
    w.add_metadata("llama.feed_forward_length", 14336u32)
        .unwrap();
    w.add_metadata("llama.attention.head_count", 32u32).unwrap();
    w.add_metadata("llama.attention.head_count_kv", 8u32)
        .unwrap();
    w.add_metadata("llama.rope.freq_base", 500_000f32).unwrap();
    w.add_metadata("llama.attention.layer_norm_rms_epsilon", 1e-5f32)
        .unwrap();
    w.add_metadata("tokenizer.ggml.model", "llama").unwrap();
    w.add_metadata("tokenizer.ggml.tokens", MetaValue::strings(&tokens))
        .unwrap();
    let scores: Vec<f32> = (0..N_TOKENS).map(|i| -(i as f32)).collect();
    w.add_metadata("tokenizer.ggml.scores", scores).unwrap();
    let types: Vec<i32> = (0..N_TOKENS)
        .map(|i| if (3..259).contains(&i) { 6 } else { 1 })
        .collect();
    w.add_metadata("tokenizer.ggml.token_type", types).unwrap();
    w.add_metadata("tokenizer.ggml.bos_token_id", 1u32).unwrap();
    w.add_metadata("tokenizer.ggml.eos_token_id", 2u32).unwrap();
    w.add_metadata("tokenizer.ggml.add_bos_token", true)
        .unwrap();

    let tensor =
        |dtype: GgmlType, dims: &[u64]| vec![0x11u8; dtype.tensor_bytes(dims).unwrap() as usize];
    let q4k = [256u64, 2];
    let q6k = [256u64, 2];
    w.add_tensor(
        "token_embd.weight",
        GgmlType::Q8_0,
        &[64, 8],
        tensor(GgmlType::Q8_0, &[64, 8]),
    )
    .unwrap();
    for layer in 0..N_LAYERS {
        let name = |t: &str| format!("blk.{layer}.{t}.weight");
        w.add_tensor(
            name("attn_norm"),
            GgmlType::F32,
            &[64],
            tensor(GgmlType::F32, &[64]),
        )
        .unwrap();
        for t in [
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_gate",
            "ffn_up",
        ] {
            w.add_tensor(name(t), GgmlType::Q4_K, &q4k, tensor(GgmlType::Q4_K, &q4k))
                .unwrap();
        }
        w.add_tensor(
            name("ffn_down"),
            GgmlType::Q6_K,
            &q6k,
            tensor(GgmlType::Q6_K, &q6k),
        )
        .unwrap();
        w.add_tensor(
            name("ffn_norm"),
            GgmlType::F32,
            &[64],
            tensor(GgmlType::F32, &[64]),
        )
        .unwrap();
    }
    w.add_tensor(
        "output_norm.weight",
        GgmlType::F32,
        &[64],
        tensor(GgmlType::F32, &[64]),
    )
    .unwrap();
    w.add_tensor(
        "output.weight",
        GgmlType::Q6_K,
        &q6k,
        tensor(GgmlType::Q6_K, &q6k),
    )
    .unwrap();
    w.to_bytes().unwrap()
}

fn candle_read(bytes: &[u8]) -> candle_core::quantized::gguf_file::Content {
    candle_core::quantized::gguf_file::Content::read(&mut Cursor::new(bytes)).unwrap()
}

/// Opens with ggufmap and touches every token as `&str`: what a tokenizer
/// does once, and the work candle's reader does up front.
fn ggufmap_open_and_walk_vocab(bytes: &[u8]) -> usize {
    let file = Gguf::from_bytes(bytes).unwrap();
    let tokens = file.metadata().get_array("tokenizer.ggml.tokens").unwrap();
    tokens.strs().unwrap().map(|s| s.map_or(0, str::len)).sum()
}

/// Median wall time of `runs` calls.
fn median_time<R>(runs: usize, mut f: impl FnMut() -> R) -> Duration {
    let mut times: Vec<Duration> = (0..runs).map(|_| time_once(&mut f)).collect();
    times.sort_unstable();
    times[runs / 2]
}

fn time_once<R>(f: &mut impl FnMut() -> R) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

/// Writes a buffer larger than the last-level cache, so the next call
/// finds neither the file nor its own data structures in cache.
fn evict_caches(buffer: &mut [u8]) {
    for (i, line) in buffer.chunks_mut(64).enumerate() {
        line[0] = i as u8;
    }
    black_box(&*buffer);
}

/// Median times of `a` and `b` when each call starts with cold caches, the
/// two alternating, so load that drifts during the run (other builds on a
/// shared machine) hits both alike; and the median of per-round ratios b / a.
fn cold_times<R, S>(
    rounds: usize,
    mut a: impl FnMut() -> R,
    mut b: impl FnMut() -> S,
) -> (Duration, Duration, f64) {
    let mut buffer = vec![0u8; 256 << 20];
    let mut ta = Vec::new();
    let mut tb = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..rounds {
        evict_caches(&mut buffer);
        let x = time_once(&mut a);
        evict_caches(&mut buffer);
        let y = time_once(&mut b);
        ratios.push(y.as_secs_f64() / x.as_secs_f64());
        ta.push(x);
        tb.push(y);
    }
    ta.sort_unstable();
    tb.sort_unstable();
    ratios.sort_unstable_by(f64::total_cmp);
    (ta[rounds / 2], tb[rounds / 2], ratios[rounds / 2])
}

fn main() {
    let bytes = model_bytes();

    // Same answers before timing anything.
    let file = Gguf::from_bytes(&bytes).unwrap();
    let content = candle_read(&bytes);
    assert_eq!(file.tensor_count(), content.tensor_infos.len());
    assert_eq!(file.metadata().len(), content.metadata.len());
    assert_eq!(file.data_start() as u64, content.tensor_data_offset);
    let n_tensors = file.tensor_count();
    drop((file, content));

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut group = c.benchmark_group(format!(
            "open_{}k_vocab_{n_tensors}_tensors",
            N_TOKENS / 1024
        ));
        group.bench_function("ggufmap::format::parse", |b| {
            b.iter(|| ggufmap::format::parse(black_box(&bytes)).unwrap())
        });
        group.bench_function("ggufmap::Gguf::from_bytes", |b| {
            b.iter(|| Gguf::from_bytes(black_box(&bytes)).unwrap())
        });
        group.bench_function("ggufmap open + walk vocab as &str", |b| {
            b.iter(|| ggufmap_open_and_walk_vocab(black_box(&bytes)))
        });
        group.bench_function("candle gguf_file::Content::read", |b| {
            b.iter(|| candle_read(black_box(&bytes)))
        });
        group.finish();
    }
    c.final_summary();

    // Side-by-side figures for the summary line (same process, same bytes).
    // Warm: each loader called repeatedly, file and allocator state hot.
    let ours = median_time(31, || Gguf::from_bytes(&bytes).unwrap());
    let ours_walk = median_time(31, || ggufmap_open_and_walk_vocab(&bytes));
    let theirs = median_time(11, || candle_read(&bytes));
    // Cold: caches evicted before every call, the loaders alternating. This
    // is what opening a model once looks like.
    let (cold_ours, cold_theirs, cold_ratio) = cold_times(
        15,
        || Gguf::from_bytes(&bytes).unwrap(),
        || candle_read(&bytes),
    );
    // The floor for any loader that must look at every token length: one
    // read per cache line of the file, from cold caches.
    let touch = || bytes.iter().step_by(64).fold(0u8, |acc, &b| acc ^ b);
    let (cold_touch, _, _) = cold_times(15, touch, || ());
    let our_peak = peak_during(|| Gguf::from_bytes(&bytes).unwrap());
    let walk_peak = peak_during(|| ggufmap_open_and_walk_vocab(&bytes));
    let their_peak = peak_during(|| candle_read(&bytes));
    let file = Gguf::from_bytes(&bytes).unwrap();
    let get_array = median_time(31, || {
        file.metadata()
            .get_array("tokenizer.ggml.tokens")
            .unwrap()
            .len()
    });
    println!(
        "file: {} bytes, {N_TOKENS} tokens, {n_tensors} tensors; Metadata::get_array(tokens) alone: {:.1} us",
        bytes.len(),
        get_array.as_secs_f64() * 1e6
    );
    // The floor for walking the vocabulary: one pass over its bytes
    // (lengths and text), summed so the compiler cannot skip it.
    let tokens = file.metadata().get_array("tokenizer.ggml.tokens").unwrap();
    let region = tokens.raw_bytes();
    let region_len = region.len();
    let scan = median_time(31, || {
        black_box(region)
            .iter()
            .fold(0u64, |acc, &b| acc.wrapping_add(u64::from(b)))
    });
    let walk = ours_walk.saturating_sub(ours);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "warm: ggufmap open {:.3} ms, open + walk vocab as &str {:.3} ms, candle {:.3} ms",
        ms(ours),
        ms(ours_walk),
        ms(theirs)
    );
    println!(
        "vocabulary walk alone (open + walk less open): {:.3} ms for {N_TOKENS} tokens; \
         a plain byte scan of the same {region_len} bytes: {:.3} ms ({:.1}x the scan)",
        ms(walk),
        ms(scan),
        walk.as_secs_f64() / scan.as_secs_f64()
    );
    println!(
        "cold: ggufmap open {:.3} ms, candle {:.3} ms, median per-round ratio {cold_ratio:.1}x; \
         reading one byte per cache line of the file takes {:.3} ms",
        ms(cold_ours),
        ms(cold_theirs),
        ms(cold_touch)
    );
    println!(
        "summary: Gguf::from_bytes vs candle Content::read: {:.1}x faster warm, {cold_ratio:.1}x cold \
         (open + walk vocab as &str: {:.1}x warm); peak heap during open: ggufmap {our_peak} B ({:.1} KiB), \
         candle {their_peak} B ({:.1} MiB); ggufmap open + walk vocab {walk_peak} B",
        theirs.as_secs_f64() / ours.as_secs_f64(),
        theirs.as_secs_f64() / ours_walk.as_secs_f64(),
        our_peak as f64 / 1024.0,
        their_peak as f64 / (1024.0 * 1024.0),
    );
}
