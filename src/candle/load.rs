//! Whole-model loading: [`Gguf::load_candle`], what it is asked
//! ([`LoadAs`], [`LoadOptions`]) and what it reports ([`LoadReport`]).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Shape, Tensor};

use crate::dtype::GgmlType;
use crate::error::{Error, Result};
use crate::model::Gguf;
use crate::parallel::Parallelism;
use crate::tensor::{DequantOptions, TensorSource, TensorView};

/// Quantized tensors larger than this are loaded one at a time, largest
/// first, so that at most one whole-tensor staging buffer of that size is
/// alive at once; smaller ones load in parallel (their staging buffers in
/// flight total at most this size times the thread count).
const SEQUENTIAL_STAGING_BYTES: u64 = 1024 * 1024;

/// How [`Gguf::load_candle`] loads each tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LoadAs {
    /// Keep tensors as stored, as [`QTensor`]s (F32, F16 and BF16 tensors
    /// included, as candle's own GGUF loading does). Tensors candle cannot
    /// hold quantized fall back, and the report lists them: block types
    /// candle lacks to dense F16, plain F64 and integer tensors to their
    /// exact dense type ([`GgmlType::candle_dtype`]).
    Quantized,
    /// Every tensor dequantized to a dense F16 [`Tensor`].
    F16,
    /// Every tensor dequantized to a dense BF16 [`Tensor`].
    BF16,
    /// Every tensor dequantized to a dense F32 [`Tensor`].
    F32,
}

impl LoadAs {
    /// Every choice, in the order of the command line's help.
    pub const ALL: [LoadAs; 4] = [LoadAs::Quantized, LoadAs::F16, LoadAs::BF16, LoadAs::F32];

    /// `"quantized"`, `"f16"`, `"bf16"` or `"f32"`.
    pub const fn name(self) -> &'static str {
        match self {
            LoadAs::Quantized => "quantized",
            LoadAs::F16 => "f16",
            LoadAs::BF16 => "bf16",
            LoadAs::F32 => "f32",
        }
    }

    /// The dense element type, `None` for [`LoadAs::Quantized`].
    pub const fn dtype(self) -> Option<DType> {
        match self {
            LoadAs::Quantized => None,
            LoadAs::F16 => Some(DType::F16),
            LoadAs::BF16 => Some(DType::BF16),
            LoadAs::F32 => Some(DType::F32),
        }
    }
}

impl fmt::Display for LoadAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LoadAs {
    type Err = Error;

    /// Parses [`LoadAs::name`], case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        LoadAs::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| Error::UnknownLoadAs { name: s.to_owned() })
    }
}

/// Options of [`Gguf::load_candle_with`].
#[derive(Clone, Debug)]
pub struct LoadOptions {
    load_as: LoadAs,
    dequant: DequantOptions,
    through_mapping: bool,
    copy_quantized: bool,
    progress: Option<Progress>,
}

/// A callback told the file bytes of each tensor once it is loaded.
#[derive(Clone)]
struct Progress(std::sync::Arc<dyn Fn(u64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress(..)")
    }
}

impl LoadOptions {
    /// Load as `load_as`, on rayon's global pool, reading a mapped file
    /// with positioned reads (see [`LoadOptions::read_through_mapping`]).
    pub fn new(load_as: LoadAs) -> Self {
        LoadOptions {
            load_as,
            dequant: DequantOptions::default(),
            through_mapping: false,
            copy_quantized: false,
            progress: None,
        }
    }

    /// Calls `progress` with the bytes a tensor occupies in the file each
    /// time one is loaded (from whichever thread loaded it): a progress bar
    /// over [`Gguf::tensor_bytes`] for a long load.
    ///
    /// ```
    /// # use std::sync::atomic::{AtomicU64, Ordering};
    /// # use std::sync::Arc;
    /// use ggufmap::candle::{LoadAs, LoadOptions};
    /// # let gguf = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
    /// let done = Arc::new(AtomicU64::new(0));
    /// let counter = Arc::clone(&done);
    /// let options = LoadOptions::new(LoadAs::F16)
    ///     .on_progress(move |bytes| { counter.fetch_add(bytes, Ordering::Relaxed); });
    /// gguf.load_candle_with(&candle_core::Device::Cpu, &options)?;
    /// assert_eq!(done.load(Ordering::Relaxed), gguf.tensor_bytes());
    /// # Ok::<(), ggufmap::Error>(())
    /// ```
    pub fn on_progress(mut self, progress: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.progress = Some(Progress(std::sync::Arc::new(progress)));
        self
    }

    /// Tells the progress callback, if any, that `source`'s tensor is loaded.
    fn report_loaded(&self, source: &TensorSource<'_>) {
        if let Some(Progress(progress)) = &self.progress {
            progress(source.view().info().n_bytes());
        }
    }

    /// Where the work runs and where staging buffers come from, as for
    /// dequantizing one tensor.
    pub fn dequant_options(mut self, options: DequantOptions) -> Self {
        self.dequant = options;
        self
    }

    /// Where the work runs (`Parallelism::Sequential` for the calling
    /// thread alone): [`LoadOptions::dequant_options`] with this
    /// parallelism.
    pub fn parallelism(mut self, parallelism: Parallelism) -> Self {
        self.dequant = self.dequant.parallelism(parallelism);
        self
    }

    /// Copy tensors kept quantized into memory of their own, even where
    /// they could be read in place (in the mapping, or in the file's bytes
    /// read into memory).
    ///
    /// By default, on the CPU, a tensor kept quantized from a mapped file
    /// is a [`QTensor`] over its blocks in the mapping
    /// ([`TensorView::to_qtensor`]): loading copies nothing and makes
    /// nothing resident; pages are read in when a tensor is first used, as
    /// file-backed memory the kernel can reclaim and read again, shared
    /// with every process mapping the same file. The tensors keep the
    /// mapping alive after the [`Gguf`] is dropped, and the mapping
    /// contract on [`Gguf`] applies to them ([`crate::OpenOptions::populate`]
    /// reads every page at open instead of on first use). Copy when the
    /// file may change
    /// while the model is in use, or to have every weight in anonymous
    /// memory up front (what candle's own loading does). A copy is read
    /// from the file straight into the buffer its tensor keeps.
    pub fn copy_quantized(mut self, yes: bool) -> Self {
        self.copy_quantized = yes;
        self
    }

    /// Read tensor data through the mapping even when the file can be read
    /// directly.
    ///
    /// By default a mapped file is read with positioned reads (`pread`)
    /// through the handle the mapping was made from (so the very file that
    /// was mapped, whatever its path names now), wherever data is copied
    /// (dequantized tensors, [`LoadOptions::copy_quantized`]): reading it
    /// this way keeps the mapping's pages out of the process's resident
    /// set, so loading needs no more memory than its result. Through the mapping, every page of
    /// tensor data also becomes resident (file-backed) while the [`Gguf`]
    /// lives. Files read into memory and borrowed bytes are always used in
    /// place.
    pub fn read_through_mapping(mut self, yes: bool) -> Self {
        self.through_mapping = yes;
        self
    }
}

/// One tensor loaded by [`Gguf::load_candle`].
#[derive(Debug)]
pub enum LoadedTensor {
    /// Kept quantized (or as stored, for F32, F16 and BF16 tensors).
    Quantized(QTensor),
    /// A dense tensor.
    Dense(Tensor),
}

impl LoadedTensor {
    /// The shape, outermost first.
    pub fn shape(&self) -> &Shape {
        match self {
            LoadedTensor::Quantized(q) => q.shape(),
            LoadedTensor::Dense(t) => t.shape(),
        }
    }

    /// candle's quantized type, for a [`LoadedTensor::Quantized`].
    pub fn qtype(&self) -> Option<GgmlDType> {
        match self {
            LoadedTensor::Quantized(q) => Some(q.dtype()),
            LoadedTensor::Dense(_) => None,
        }
    }

    /// The element type, for a [`LoadedTensor::Dense`].
    pub fn dtype(&self) -> Option<DType> {
        match self {
            LoadedTensor::Quantized(_) => None,
            LoadedTensor::Dense(t) => Some(t.dtype()),
        }
    }

    /// Bytes of memory the tensor's data takes (host or device).
    pub fn size_in_bytes(&self) -> usize {
        match self {
            LoadedTensor::Quantized(q) => q.storage_size_in_bytes(),
            LoadedTensor::Dense(t) => t.elem_count().saturating_mul(t.dtype().size_in_bytes()),
        }
    }

    /// The [`QTensor`], if kept quantized.
    pub fn as_qtensor(&self) -> Option<&QTensor> {
        match self {
            LoadedTensor::Quantized(q) => Some(q),
            LoadedTensor::Dense(_) => None,
        }
    }

    /// The dense [`Tensor`], if dense.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            LoadedTensor::Quantized(_) => None,
            LoadedTensor::Dense(t) => Some(t),
        }
    }
}

/// Why [`LoadAs`] was not followed for a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FallbackReason {
    /// [`LoadAs::Quantized`]: candle has no quantized type for the tensor's
    /// type; it was dequantized to F16.
    NoCandleQuantizedType,
    /// [`LoadAs::Quantized`]: an F64 or integer tensor, which a [`QTensor`]
    /// cannot hold; it was loaded dense in the type that holds it exactly.
    PlainType,
    /// [`LoadAs::Quantized`]: a 0-dimensional (scalar) tensor, which a
    /// [`QTensor`] cannot be; it was loaded dense in its own type.
    Scalar,
    /// A float [`LoadAs`]: an integer tensor, kept in the integer type that
    /// holds it exactly rather than rounded to floats.
    IntegerKept,
}

impl FallbackReason {
    /// A short explanation, lowercase.
    pub const fn description(self) -> &'static str {
        match self {
            FallbackReason::NoCandleQuantizedType => "candle has no quantized type for it",
            FallbackReason::PlainType => "a plain type a quantized tensor cannot hold",
            FallbackReason::Scalar => "a scalar, which a quantized tensor cannot be",
            FallbackReason::IntegerKept => "integers are kept exact",
        }
    }
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

/// A tensor [`Gguf::load_candle`] loaded otherwise than asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    /// The tensor.
    pub tensor: String,
    /// Its type in the file.
    pub dtype: GgmlType,
    /// The dense element type it was loaded as.
    pub loaded_as: DType,
    /// Why.
    pub reason: FallbackReason,
}

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} ({}) loaded as {}: {}",
            self.tensor,
            self.dtype,
            self.loaded_as.as_str(),
            self.reason
        )
    }
}

/// What [`Gguf::load_candle`] did.
#[derive(Clone, Debug)]
pub struct LoadReport {
    /// What was asked.
    pub load_as: LoadAs,
    /// Tensors loaded (all of the file's).
    pub tensors: usize,
    /// Of these, kept as [`QTensor`]s.
    pub quantized: usize,
    /// Of these, dense [`Tensor`]s.
    pub dense: usize,
    /// Of the quantized, those reading their blocks in place (in the
    /// mapping, or in the file's bytes read into memory), not copied (see [`LoadOptions::copy_quantized`]).
    pub mapped: usize,
    /// Bytes of tensor data in the file.
    pub file_bytes: u64,
    /// Bytes the loaded tensors take (host or device memory, or the
    /// mapping for [`LoadReport::mapped`] tensors).
    pub loaded_bytes: u64,
    /// Tensors not loaded as asked, and why, in file order.
    pub fallbacks: Vec<Fallback>,
    /// True when tensor data was read (with positioned reads from a mapped
    /// file, or from a stream) rather than through the mapping or bytes in
    /// memory (see [`LoadOptions::read_through_mapping`]).
    pub read_from_file: bool,
    /// Threads the work was spread over.
    pub threads: usize,
    /// Wall time of the whole load.
    pub elapsed: Duration,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loaded {} tensors as {} ({} quantized{}, {} dense): {} file bytes -> {} bytes in {:.3?}",
            self.tensors,
            self.load_as,
            self.quantized,
            match self.mapped {
                0 => String::new(),
                n => format!(" ({n} read in place)"),
            },
            self.dense,
            self.file_bytes,
            self.loaded_bytes,
            self.elapsed
        )?;
        for fallback in &self.fallbacks {
            write!(f, "\n  fallback: {fallback}")?;
        }
        Ok(())
    }
}

/// Every tensor of a file, loaded by [`Gguf::load_candle`].
#[derive(Debug)]
pub struct LoadedModel {
    /// The tensors, by name.
    pub tensors: HashMap<String, LoadedTensor>,
    /// What was done.
    pub report: LoadReport,
}

impl LoadedModel {
    /// The tensor named `name`.
    pub fn get(&self, name: &str) -> Option<&LoadedTensor> {
        self.tensors.get(name)
    }

    /// The tensor named `name`, if it was kept quantized.
    pub fn qtensor(&self, name: &str) -> Option<&QTensor> {
        self.get(name).and_then(LoadedTensor::as_qtensor)
    }

    /// The tensor named `name`, if it is dense.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.get(name).and_then(LoadedTensor::as_tensor)
    }

    /// Takes the tensor named `name` out of the model.
    pub fn remove(&mut self, name: &str) -> Option<LoadedTensor> {
        self.tensors.remove(name)
    }
}

/// How one tensor is loaded.
#[derive(Clone, Copy, Debug)]
enum Plan {
    /// A QTensor over the blocks in place.
    Mapped,
    /// A QTensor with a copy of the blocks.
    Quantized(GgmlDType),
    Dense(DType, Option<FallbackReason>),
}

fn plan(view: &TensorView<'_>, options: &LoadOptions, device: &Device) -> Plan {
    match plan_type(view, options.load_as) {
        Plan::Quantized(qtype)
            if !options.copy_quantized && view.mapped_storage(qtype, device).is_some() =>
        {
            Plan::Mapped
        }
        plan => plan,
    }
}

/// The type `view` loads as.
fn plan_type(view: &TensorView<'_>, load_as: LoadAs) -> Plan {
    let dtype = view.dtype();
    let exact = dtype.candle_dtype();
    match load_as.dtype() {
        Some(target) => match exact {
            Some(int) if int.is_int() => Plan::Dense(int, Some(FallbackReason::IntegerKept)),
            _ => Plan::Dense(target, None),
        },
        None => match (dtype.candle_qtype(), exact) {
            (Some(_), Some(own)) if view.dims().is_empty() => {
                Plan::Dense(own, Some(FallbackReason::Scalar))
            }
            (Some(qtype), _) => Plan::Quantized(qtype),
            (None, Some(own)) => Plan::Dense(own, Some(FallbackReason::PlainType)),
            (None, None) => Plan::Dense(DType::F16, Some(FallbackReason::NoCandleQuantizedType)),
        },
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "candle")))]
impl Gguf<'_> {
    /// Loads every tensor into candle on `device`, as `load_as` says, in
    /// parallel on rayon's global pool.
    ///
    /// Tensors load largest first; [`LoadAs::Quantized`] keeps what candle
    /// can hold quantized and loads the rest dense, listing each in
    /// [`LoadReport::fallbacks`]. Nothing is loaded half: the first error
    /// stops the load and is returned, naming its tensor.
    ///
    /// # Errors
    /// The first tensor's error: [`Error::Candle`] (a shape candle cannot
    /// take, a device error), [`Error::ByteOrder`] (quantized blocks of a
    /// big-endian file kept quantized), or a
    /// read or dequantization error.
    ///
    /// # Performance
    /// Quantized on the CPU from a mapped file, nothing is read (see
    /// [`LoadOptions::copy_quantized`]). Otherwise, see
    /// [`LoadOptions::read_through_mapping`]: from a mapped file, peak
    /// memory is the result plus small staging buffers.
    pub fn load_candle(&self, device: &Device, load_as: LoadAs) -> Result<LoadedModel> {
        self.load_candle_with(device, &LoadOptions::new(load_as))
    }

    /// [`Gguf::load_candle`] with options.
    ///
    /// # Errors
    /// As [`Gguf::load_candle`].
    pub fn load_candle_with(&self, device: &Device, options: &LoadOptions) -> Result<LoadedModel> {
        let start = Instant::now();
        let dequant = &options.dequant;
        let par = dequant.threads();
        let mut work: Vec<(TensorSource<'_>, Plan)> = self
            .tensors()
            .map(|t| {
                let source = TensorSource::new(t, !options.through_mapping);
                (source, plan(&t, options, device))
            })
            .collect();
        work.sort_by_key(|(s, _)| std::cmp::Reverse(s.view().info().n_bytes()));
        // Whole-tensor staging buffers (quantized tensors read from the
        // file) are bounded: large ones one at a time, then the rest.
        let one_at_a_time = |(s, p): &(TensorSource<'_>, Plan)| {
            s.reads()
                && matches!(p, Plan::Quantized(_))
                && s.view().info().n_bytes() > SEQUENTIAL_STAGING_BYTES
        };
        let split = work
            .iter()
            .position(|w| !one_at_a_time(w))
            .unwrap_or(work.len());
        let (large, rest) = work.split_at(split);
        let mut loaded = Vec::with_capacity(work.len());
        for (source, plan) in large {
            loaded.push(load_one(source, *plan, device, dequant)?);
            options.report_loaded(source);
        }
        loaded.extend(par.try_map(rest, |(source, plan)| {
            let tensor = load_one(source, *plan, device, dequant)?;
            options.report_loaded(source);
            Ok(tensor)
        })?);

        let mut tensors = HashMap::with_capacity(loaded.len());
        let mut report = LoadReport {
            load_as: options.load_as,
            tensors: loaded.len(),
            quantized: 0,
            dense: 0,
            mapped: 0,
            file_bytes: self.tensor_bytes(),
            loaded_bytes: 0,
            fallbacks: Vec::new(),
            read_from_file: self.reads_tensors(!options.through_mapping),
            threads: par.current_num_threads(),
            elapsed: Duration::ZERO,
        };
        for ((source, plan), tensor) in work.iter().zip(loaded) {
            let view = source.view();
            match tensor {
                LoadedTensor::Quantized(_) => report.quantized += 1,
                LoadedTensor::Dense(_) => report.dense += 1,
            }
            report.loaded_bytes += tensor.size_in_bytes() as u64;
            if let Plan::Mapped = plan {
                report.mapped += 1;
            }
            if let Plan::Dense(loaded_as, Some(reason)) = plan {
                report.fallbacks.push(Fallback {
                    tensor: view.name().to_owned(),
                    dtype: view.dtype(),
                    loaded_as: *loaded_as,
                    reason: *reason,
                });
            }
            tensors.insert(view.name().to_owned(), tensor);
        }
        let order: HashMap<&str, usize> = self
            .tensors()
            .enumerate()
            .map(|(i, t)| (t.name(), i))
            .collect();
        report
            .fallbacks
            .sort_by_key(|f| order.get(f.tensor.as_str()).copied());
        report.elapsed = start.elapsed();
        Ok(LoadedModel { tensors, report })
    }
}

/// Loads one tensor as `plan` says, reading through `source`.
fn load_one(
    source: &TensorSource<'_>,
    plan: Plan,
    device: &Device,
    options: &DequantOptions,
) -> Result<LoadedTensor> {
    let view = source.view();
    match plan {
        Plan::Mapped => view.to_qtensor(device).map(LoadedTensor::Quantized),
        Plan::Quantized(qtype) => {
            view.require_qtype()?;
            view.copied_qtensor(source, qtype, device, options.threads())
                .map(LoadedTensor::Quantized)
        }
        Plan::Dense(dtype, _) => view
            .candle_from(source, device, dtype, options)
            .map(LoadedTensor::Dense),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_as_names_round_trip() {
        for load_as in LoadAs::ALL {
            assert_eq!(load_as.name().parse::<LoadAs>().unwrap(), load_as);
            assert_eq!(
                load_as
                    .to_string()
                    .to_uppercase()
                    .parse::<LoadAs>()
                    .unwrap(),
                load_as
            );
        }
        assert!(matches!(
            "q4".parse::<LoadAs>(),
            Err(Error::UnknownLoadAs { .. })
        ));
    }
}
