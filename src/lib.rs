//! Open GGUF model files (the llama.cpp format) with no copies and
//! predictable memory.
//!
//! The file is memory-mapped; metadata strings, arrays and plain tensors
//! (F32, F16, BF16, integers) are borrowed from the mapping; every ggml
//! quantized type is dequantized bit-exactly, in parallel, block-aligned
//! chunks, into buffers from a bounded pool. Bad input is a typed
//! [`Error`] naming what is wrong and at which byte, never a panic.
//!
//! This page is a guide, one task per section; every example runs as a test
//! on the small model the repository ships (`examples/sample.gguf`).
//!
//! # Open a model
//!
//! [`Gguf::open`] maps the file and parses its header: it reads no tensor
//! data and allocates nothing per token or per tensor name.
//!
//! ```
//! use ggufmap::Gguf;
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf");
//! let model = Gguf::open(path)?;
//! println!(
//!     "GGUF v{}, {} tensors, {} metadata entries",
//!     model.version(),
//!     model.tensor_count(),
//!     model.metadata().len()
//! );
//! # Ok::<(), ggufmap::Error>(())
//! ```
//!
//! [`Gguf::open_with`] takes [`OpenOptions`]: read the file into memory,
//! stream it, populate or advise the mapping. [`Gguf::from_bytes`] parses
//! bytes you already hold.
//!
//! # Read metadata
//!
//! [`Gguf::metadata`] is a borrowed view ([`format::Metadata`]): typed
//! getters, file-order iteration, arrays walked in place.
//!
//! ```
//! # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
//! let meta = model.metadata();
//! let arch: &str = meta.get_str("general.architecture")?;
//! let layers = meta.get_u32(&format!("{arch}.block_count"))?;
//! let tokens = meta.get_array("tokenizer.ggml.tokens")?;
//! let first: Vec<_> = tokens.strings()?.take(3).map(|t| t.to_string_lossy()).collect();
//! assert_eq!((arch, layers, tokens.len()), ("llama", 1, 384));
//! assert_eq!(first, ["<unk>", "<s>", "</s>"]);
//! for (key, value) in meta.iter() {
//!     println!("{key}: {}", value.value_type());
//! }
//! # Ok::<(), ggufmap::Error>(())
//! ```
//!
//! # Look at tensors
//!
//! [`Gguf::tensors`] walks the tensor table in file order; a [`TensorView`]
//! gives the name, [`GgmlType`], shape (outermost first, as candle and numpy
//! give it; [`TensorView::dims`] as stored, innermost first) and bytes.
//! Plain tensors are typed slices into the mapping.
//!
//! ```
//! use ggufmap::GgmlType;
//! # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
//! for t in model.tensors() {
//!     println!("{:<28} {:<5} {:?}", t.name(), t.dtype(), t.shape());
//! }
//! let norm = model.tensor("output_norm.weight")?;
//! assert_eq!(norm.dtype(), GgmlType::F32);
//! let weights: &[f32] = norm.as_slice()?; // no copy
//! assert_eq!(weights.len(), 256);
//! # Ok::<(), ggufmap::Error>(())
//! ```
//!
//! # Dequantize
//!
//! One family of methods on [`TensorView`], one options value
//! ([`DequantOptions`]: which pool, how many threads), to `f32`, `f16` or
//! `bf16`:
//!
//! ```
//! use ggufmap::DequantOptions;
//! # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
//! let options = DequantOptions::default();
//! let embedding = model.tensor("token_embd.weight")?; // Q8_0
//! let pooled = embedding.dequantize::<f32>(&options)?; // a pooled buffer
//! let mut mine = vec![0f32; pooled.len()];
//! embedding.dequantize_into(&mut mine, &options)?; // your memory
//! assert_eq!(&mine[..], &pooled[..]);
//! let halves: Vec<half::f16> = embedding.dequantize_to_vec(&options)?;
//! assert_eq!(halves.len(), mine.len());
//! # Ok::<(), ggufmap::Error>(())
//! ```
//!
//! For bounded memory, [`TensorView::dequantize_chunks`] yields the tensor
//! a block-aligned chunk at a time:
//!
//! ```
//! # use ggufmap::DequantOptions;
//! # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
//! let t = model.tensor("blk.0.attn_q.weight")?; // Q4_K, 65,536 values
//! let mut sum = 0f64;
//! for chunk in t.dequantize_chunks::<f32>(4096, &DequantOptions::default()) {
//!     let chunk = chunk?;
//!     assert!(chunk.data.len() <= 4096);
//!     sum += chunk.data.iter().map(|&v| f64::from(v)).sum::<f64>();
//! }
//! # let _ = sum;
//! # Ok::<(), ggufmap::Error>(())
//! ```
//!
//! The kernels are in [`quant`] (one block struct per type, the [`quant::Block`]
//! trait) and the slice-level driver in [`dequant`].
//!
//! # Reuse buffers
//!
//! Dequantized buffers come from a lock-free [`pool::BufferPool`]: a
//! [`pool::PooledBuf`] goes back to its size class when dropped, so a loop
//! over tensors stops allocating after its first round. The global pool
//! keeps at most 512 MiB; make your own with other limits:
//!
//! ```
//! use ggufmap::pool::{BufferPool, PoolConfig};
//! use ggufmap::DequantOptions;
//! # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
//! let pool = BufferPool::new(PoolConfig {
//!     max_retained_bytes: 64 << 20,
//!     ..PoolConfig::default()
//! });
//! let options = DequantOptions::new().pool(pool.clone());
//! for _ in 0..2 {
//!     for t in model.tensors() {
//!         let values = t.dequantize::<f32>(&options)?;
//!         # let _ = values;
//!     }
//! }
//! assert!(pool.stats().hits > 0, "the second round reused the first's buffers");
//! # Ok::<(), ggufmap::Error>(())
//! ```
//!
//! # Measure memory
//!
//! [`memory::usage`] gives the process's real resident and peak figures
//! (file-backed pages, such as the mapped model, apart from anonymous
//! ones); `None` fields where the platform has no figure, never a made-up
//! zero. [`memory::reset_peak`] starts a new peak where the OS allows.
//!
//! ```
//! if let Some(usage) = ggufmap::memory::usage() {
//!     println!("resident {:?}, peak {:?}", usage.resident, usage.peak_resident);
//! }
//! ```
//!
//! # Load into candle
//!
//! With the `candle` feature: one tensor ([`TensorView::to_candle`],
//! [`TensorView::to_qtensor`]) or the whole model
//! ([`Gguf::load_candle`], kept quantized over the mapping, or dequantized
//! to `f16`/`bf16`/`f32`), and [`Gguf::to_candle_content`] for code written
//! against candle's own `gguf_file`. See `examples/candle_matmul.rs`.
//!
#![cfg_attr(
    feature = "candle",
    doc = r#"
```
use candle_core::quantized::QMatMul;
use candle_core::{DType, Device, Module, Tensor};
use ggufmap::candle::{LoadAs, LoadedTensor};
# let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
let mut loaded = model.load_candle(&Device::Cpu, LoadAs::Quantized)?;
let Some(LoadedTensor::Quantized(q)) = loaded.remove("blk.0.attn_q.weight") else {
    panic!("Q4_K is kept quantized");
};
let matmul = QMatMul::from_qtensor(q)?; // over the mapping: no copy
let x = Tensor::ones((1, 256), DType::F32, &Device::Cpu)?;
let y = x.apply(&matmul)?;
assert_eq!(y.dims(), &[1, 256]);
# Ok::<(), Box<dyn std::error::Error>>(())
```
"#
)]
//!
//! # Split models
//!
//! A model split by llama.cpp's `gguf-split` (or gguf-py) opens as one model
//! from its first part, `name-00001-of-00003.gguf`: one metadata view, one
//! tensor table, every method. [`Gguf::open_split`] takes parts named
//! otherwise; [`Gguf::write_split`] writes such parts; [`split`] has the
//! keys and file names.
//!
//! ```
//! use ggufmap::Gguf;
//! # let model = Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
//! # let dir = tempfile::tempdir()?;
//! let parts = model.write_split(dir.path().join("sample"), 5)?; // 5 tensors a part
//! assert!(parts[0].ends_with("sample-00001-of-00003.gguf"));
//! let again = Gguf::open(&parts[0])?;
//! assert_eq!(again.part_count(), 3);
//! assert_eq!(again.tensor_count(), model.tensor_count());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Stream instead of mapping
//!
//! Where a mapping is unsafe (a network file system, a file another program
//! may truncate: see the mapping contract below) or impossible,
//! [`OpenOptions::streamed`] or [`Gguf::from_reader`] (any `Read + Seek`)
//! read the header into memory and each tensor's bytes when used, in bounded
//! chunks into pooled buffers. Borrowing views ([`TensorView::bytes`],
//! [`TensorView::as_slice`]) are [`Error::NotInMemory`] then; everything
//! that reads or dequantizes works.
//!
//! ```
//! use ggufmap::{DequantOptions, Gguf, OpenOptions};
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf");
//! let model = Gguf::open_with(path, &OpenOptions::new().streamed(true))?;
//! let t = model.tensor("output_norm.weight")?;
//! assert!(t.as_slice::<f32>().is_err()); // nothing to borrow from
//! let values = t.read_slice::<f32>()?; // read from the file
//! let decoded = t.dequantize_to_vec::<f32>(&DequantOptions::default())?;
//! assert_eq!(&values[..], &decoded[..]);
//! # Ok::<(), ggufmap::Error>(())
//! ```
//!
//! # Write a model
//!
//! [`GgufWriter`] writes metadata and tensors, streaming tensor data from a
//! callback if you wish ([`GgufWriter::declare_tensor`]); files are written
//! atomically ([`AtomicFile`]).
//!
//! ```
//! use ggufmap::{GgmlType, Gguf, GgufWriter};
//! let mut writer = GgufWriter::new();
//! writer.add_metadata("general.architecture", "demo")?;
//! writer.add_tensor("w", GgmlType::F32, &[2], bytemuck::cast_slice(&[1f32, 2.0]).to_vec())?;
//! let bytes = writer.to_bytes()?;
//! let model = Gguf::from_bytes(&bytes)?;
//! assert_eq!(model.tensor("w")?.as_slice::<f32>()?, &[1.0, 2.0]);
//! # Ok::<(), ggufmap::Error>(())
//! ```
//!
//! # The mapping contract
//!
//! A mapped file must not be truncated or rewritten in place while mapped:
//! on Unix, touching pages a truncation removed raises `SIGBUS`. Replacing a
//! file by rename is safe (the mapping keeps the old bytes). On Windows a
//! mapped file cannot be truncated or deleted at all, so that failure cannot
//! happen there, and [`OpenOptions::advise`] does nothing. When in doubt,
//! stream ([`OpenOptions::streamed`]) or read into memory
//! ([`OpenOptions::in_memory`]).
//!
//! # Features
//!
//! - `parallel` (default): decoding on rayon's threads; without it every
//!   operation runs on the calling thread.
//! - `simd` (default): on x86-64 CPUs with AVX2, every legacy and
//!   k-quant type, IQ4_NL, IQ4_XS, the ternary and FP4 types, Q1_0, Q2_0,
//!   F16, BF16 and I64 decode through AVX2 kernels chosen at run time
//!   (`pulp`'s safe CPU-feature tokens); the IQ1/IQ2/IQ3 grid types and
//!   the other plain conversions keep their portable kernels, as do other
//!   CPUs and builds without the feature. Both give the same bits.
//!   `GGUFMAP_SIMD=off` in the environment selects the portable kernels
//!   at run time.
//! - `candle`: conversion to candle-core tensors ([`candle`]).
//! - `cli`: the `ggufmap` command line (not needed by library users).
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod atomic;
#[cfg(feature = "candle")]
#[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
pub mod candle;
pub mod dequant;
mod dtype;
mod error;
mod file;
pub mod format;
pub mod memory;
mod model;
mod parallel;
mod part;
pub mod pool;
pub mod quant;
mod reader;
pub mod split;
mod storage;
mod tensor;
mod write;
mod write_split;

pub use atomic::AtomicFile;
pub use dtype::GgmlType;
pub use error::{Error, Result, WriteRefusal};
pub use model::{Advice, Gguf, OpenOptions, Tensors, MAX_STREAMED_HEADER_BYTES};
pub use parallel::Parallelism;
pub use reader::ModelReader;
pub use tensor::{DequantChunk, DequantChunks, DequantOptions, Element, TensorView};
pub use write::{GgufWriter, MetaArray, MetaValue};

/// The README's examples, run as tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
