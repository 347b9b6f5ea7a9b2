#![doc = include_str!("../README.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod dtype;
pub mod error;
mod file;
pub mod format;
pub mod quant;
mod tensor;
mod write;

pub use dtype::GgmlType;
pub use error::{Error, Result};
pub use file::{Gguf, OpenOptions};
pub use memmap2::Advice;
pub use tensor::{Element, TensorView};
pub use write::{GgufWriter, MetaArray, MetaValue};
