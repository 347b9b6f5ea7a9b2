#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod atomic;
#[cfg(feature = "candle")]
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
