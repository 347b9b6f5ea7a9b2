//! The `candle` target: files whose tensors candle can hold, loaded as
//! candle `QTensor`s and `Tensor`s from every kind of storage, then used.
//!
//! It drives the crate's second `unsafe` block (`cast_blocks` in
//! `src/candle/blocks.rs`, which views tensor bytes as candle's block
//! structs): `TensorView::to_qtensor` and `Gguf::load_candle_with` (every
//! `LoadAs`, `copy_quantized` on and off, sequential or on rayon, read
//! through the mapping or not) over a file mapped from a temporary file
//! (`Gguf::open`), read into memory from it (`OpenOptions::in_memory`),
//! read from a stream (`Gguf::read`), borrowed at an address 1 to 63
//! bytes past an aligned one (`Gguf::from_bytes`) and streamed
//! (`Gguf::from_reader`).
//!
//! Input: byte 0 chooses the mode.
//!
//! - Even: the rest is `arbitrary` input that builds a small file with
//!   `GgufWriter` (byte order, `general.alignment`, metadata that shifts
//!   the data offset, up to 6 tensors: mostly of candle's types, some of
//!   any type, odd dims, zero-element tensors, tensors shaped for candle's
//!   repacked x86 kernels, arbitrary block bytes), and picks the storage
//!   kinds and the load options.
//! - Odd: byte 1 is a mask of the 8 load variants (bit `2 * i + c`:
//!   `LoadAs::ALL[i]`, `copy_quantized(c == 1)`), byte 2 holds flags (bits
//!   0-5: the misalignment, 0 meaning 1; bit 6: sequential; bit 7: read
//!   through the mapping), and the rest is the file itself, however broken.
//!
//! What is checked: whatever the input, no panic, and every storage kind
//! agrees on whether the file parses. For a file that parses, every tensor
//! goes through `to_qtensor`, which succeeds exactly when candle has its
//! type, the byte order allows it and it has dims; a `QTensor` holds the
//! file's bytes (`data()`, byte swapped for plain types in the other byte
//! order), dequantizes (up to [`MAX_ELEMS`] elements) to what ggufmap's
//! own dequantizer gives, answers `embedding` with the dequantized rows
//! (and an error for a row out of range), and runs a `QMatMul` forward of
//! a ones matrix, F32 (must succeed) and F16 (may fail), and candle's
//! fused GEMV over every rank-2 tensor of its type and width. Each load
//! either succeeds (always, for a generated file in native byte order or
//! with only plain types) and gives every tensor its shape, with a report
//! that adds up, or fails with an error; its tensors are used the same
//! way.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, OnceLock};

use arbitrary::{Result as ArbResult, Unstructured};
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use ggufmap::candle::{LoadAs, LoadOptions, LoadedTensor};
use ggufmap::format::ALIGNMENT_KEY;
use ggufmap::{
    DequantOptions, Error, GgmlType, Gguf, GgufWriter, MetaValue, OpenOptions, Parallelism,
    TensorView,
};
use half::{bf16, f16};

use crate::checks::order;

/// Largest tensor (in elements) that is dequantized, compared and
/// multiplied; larger ones (only zero-element tensors can claim huge dims:
/// data must be in the file) are only checked for shape and bytes.
pub const MAX_ELEMS: usize = 1 << 16;

/// Most rows of the ones matrix a `QMatMul` is run on.
const MAX_MATMUL_ROWS: usize = 4;

/// candle's types, as ggml types: those the type table gives a candle type.
fn candle_types() -> &'static [GgmlType] {
    static TYPES: OnceLock<Vec<GgmlType>> = OnceLock::new();
    TYPES.get_or_init(|| {
        GgmlType::ALL
            .iter()
            .copied()
            .filter(|t| t.candle_qtype().is_some())
            .collect()
    })
}

/// The types candle repacks for its x86 kernels (rank 2, rows a multiple
/// of 16, width a multiple of 256).
const REPACKED_TYPES: [GgmlType; 3] = [GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0];

/// Where the file's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Storage {
    /// `Gguf::open` of a temporary file: a mapping.
    Mapped,
    /// `Gguf::open_with(.., in_memory(true))` of the same file.
    InMemory,
    /// `Gguf::read`: a 64-byte-aligned copy.
    Read,
    /// `Gguf::from_bytes` of a copy `offset` bytes into a larger `Vec`.
    Misaligned,
    /// `Gguf::from_reader`: the header in memory, tensor data read when used.
    Streamed,
}

const STORAGES: [Storage; 5] = [
    Storage::Mapped,
    Storage::InMemory,
    Storage::Read,
    Storage::Misaligned,
    Storage::Streamed,
];

/// One call of `load_candle_with`.
#[derive(Clone, Copy, Debug)]
struct Load {
    load_as: LoadAs,
    copy: bool,
    sequential: bool,
    through_mapping: bool,
}

impl Load {
    fn options(&self) -> LoadOptions {
        let par = if self.sequential {
            Parallelism::Sequential
        } else {
            Parallelism::default()
        };
        LoadOptions::new(self.load_as)
            .copy_quantized(self.copy)
            .parallelism(par)
            .read_through_mapping(self.through_mapping)
    }
}

/// What one input asks for besides the file.
#[derive(Debug)]
struct Plan {
    storages: Vec<Storage>,
    /// Bytes past a 64-aligned address, 1..=63, for [`Storage::Misaligned`].
    offset: usize,
    /// Also map with `populate(true)`.
    populate: bool,
    loads: Vec<Load>,
    /// Rows of the ones matrix of the matmuls.
    rows: usize,
    /// Whether the file was built here (and is valid): then loads that
    /// can succeed must.
    generated: bool,
}

/// The `candle` target.
pub fn run(data: &[u8]) {
    static ONE_THREAD: Once = Once::new();
    ONE_THREAD.call_once(|| {
        // candle's kernels on the calling thread, unless told otherwise:
        // its barrier pool spin-waits for its workers, which on a machine
        // of 2 cores shared with other work made inputs 3-6 times slower.
        // Set before candle first reads it, while no other thread of ours
        // reads the environment.
        if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
            std::env::set_var("CANDLE_NUM_THREADS", "1");
        }
    });
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let built = if mode & 1 == 0 {
        generated(&mut Unstructured::new(rest)).ok()
    } else {
        raw(rest)
    };
    if let Some((file, plan)) = built {
        check_file(&file, &plan);
    }
}

/// Odd mode: [load mask, flags, file...].
fn raw(rest: &[u8]) -> Option<(Vec<u8>, Plan)> {
    let [mask, flags, file @ ..] = rest else {
        return None;
    };
    let loads = (0..8)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| Load {
            load_as: LoadAs::ALL[bit / 2],
            copy: bit % 2 == 1,
            sequential: flags & 0x40 != 0,
            through_mapping: flags & 0x80 != 0,
        })
        .collect();
    let plan = Plan {
        storages: STORAGES.to_vec(),
        offset: usize::from(flags & 63).max(1),
        populate: false,
        loads,
        rows: 1 + usize::from(mask >> 6),
        generated: false,
    };
    Some((file.to_vec(), plan))
}

/// Even mode: a file built with the writer, and a plan.
fn generated(u: &mut Unstructured<'_>) -> ArbResult<(Vec<u8>, Plan)> {
    let storage_mask: u8 = u.arbitrary()?;
    let storages: Vec<Storage> = STORAGES
        .iter()
        .enumerate()
        .filter(|(i, _)| storage_mask & 0xF == 0 || storage_mask & (1 << i) != 0)
        .map(|(_, s)| *s)
        .collect();
    let offset = u.int_in_range(1..=63usize)?;
    let populate = storage_mask & 0x10 != 0;
    let mut loads = Vec::new();
    for _ in 0..u.int_in_range(0..=3u8)? {
        loads.push(Load {
            load_as: *u.choose(&LoadAs::ALL)?,
            copy: u.arbitrary()?,
            sequential: u.arbitrary()?,
            through_mapping: u.ratio(1, 4)?,
        });
    }
    let rows = u.int_in_range(1..=MAX_MATMUL_ROWS)?;

    let mut w = GgufWriter::new();
    w.set_byte_order(order(u.ratio(1, 4)?));
    let alignment = match u.int_in_range(0..=15u8)? {
        // Tensor data 1, 2, 4, ... 256 bytes aligned in the file, or the
        // default of 32.
        a @ 0..=8 => 1u32 << a,
        9 => u.int_in_range(1..=512u32)?, // refused unless a power of two
        _ => 32,
    };
    if w.set_alignment(alignment).is_err() {
        assert!(!alignment.is_power_of_two(), "set_alignment({alignment})");
    }
    // Metadata of arbitrary length moves the data section, and so the
    // addresses of the tensors when the alignment is small.
    for i in 0..u.int_in_range(0..=2u8)? {
        let len = u.int_in_range(0..=70usize)?;
        let value = MetaValue::String(vec![b'x'; len]);
        w.add_metadata(format!("fuzz.pad{i}"), value)
            .expect("distinct keys");
    }
    if u.ratio(1, 16)? {
        // The alignment key again: the writer owns it and refuses it.
        assert!(w.add_metadata(ALIGNMENT_KEY, MetaValue::U32(64)).is_err());
    }

    for i in 0..u.int_in_range(0..=6u8)? {
        let (dtype, dims) = tensor_shape(u)?;
        let Some(n_bytes) = dtype
            .tensor_bytes(&dims)
            .and_then(|n| usize::try_from(n).ok())
        else {
            continue;
        };
        if n_bytes > 64 * 1024 {
            continue;
        }
        // Up to 512 arbitrary bytes, repeated over the tensor; none: zeros.
        let fill_len = u.int_in_range(0..=n_bytes.min(512))?;
        let fill = u.bytes(fill_len.min(u.len()))?;
        let data: Vec<u8> = if fill.is_empty() {
            vec![0u8; n_bytes]
        } else {
            fill.iter().copied().cycle().take(n_bytes).collect()
        };
        // Dims the reader would reject are refused here too: skip them.
        let _ = w.add_tensor(format!("t{i}"), dtype, &dims, data);
    }
    let file = w.to_bytes().expect("a small file");
    let plan = Plan {
        storages,
        offset,
        populate,
        loads,
        rows,
        generated: true,
    };
    Ok((file, plan))
}

/// A tensor's type and dims (ne0 first).
fn tensor_shape(u: &mut Unstructured<'_>) -> ArbResult<(GgmlType, Vec<u64>)> {
    Ok(match u.int_in_range(0..=15u8)? {
        // Shaped for candle's repacked kernels: 16 or 32 rows of 256 or
        // 512.
        0 | 1 => {
            let dtype = *u.choose(&REPACKED_TYPES)?;
            let k = 256 * u.int_in_range(1..=2u64)?;
            let n = 16 * u.int_in_range(1..=2u64)?;
            (dtype, vec![k, n])
        }
        // Zero elements, with a dim that would be huge if allocated.
        2 => {
            let dtype = *u.choose(candle_types())?;
            let big = u64::from(u.arbitrary::<u32>()?) << u.int_in_range(0..=30u32)?;
            let epb = dtype.elements_per_block() as u64;
            let dims = match u.int_in_range(0..=2u8)? {
                0 => vec![0, big],
                1 => vec![epb, big, 0],
                _ => vec![epb * u.int_in_range(1..=3u64)?, 0, big, 2],
            };
            (dtype, dims)
        }
        // Any type, candle's or not (fallbacks, integer and F64 tensors).
        3 => {
            let dtype = *u.choose(GgmlType::ALL)?;
            (dtype, small_dims(u, dtype)?)
        }
        _ => {
            let dtype = *u.choose(candle_types())?;
            (dtype, small_dims(u, dtype)?)
        }
    })
}

/// 0 to 4 dims (at least 1 for a block type): the first 0 to 4 blocks (0
/// to 9 elements of a plain type), the others 0 to 3.
fn small_dims(u: &mut Unstructured<'_>, dtype: GgmlType) -> ArbResult<Vec<u64>> {
    let min_dims = usize::from(!dtype.is_plain());
    let n_dims = u.int_in_range(min_dims..=4)?;
    let mut dims = Vec::with_capacity(n_dims);
    for axis in 0..n_dims {
        dims.push(if axis > 0 {
            u64::from(u.int_in_range(0..=3u8)?)
        } else if dtype.is_plain() {
            u64::from(u.int_in_range(0..=9u8)?)
        } else {
            u64::from(u.int_in_range(0..=4u8)?) * dtype.elements_per_block() as u64
        });
    }
    Ok(dims)
}

/// One process-wide temporary directory, one file per input.
fn scratch_file() -> PathBuf {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let root = ROOT.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("ggufmap-fuzz-candle")
            .tempdir()
            .expect("tmpdir")
    });
    root.path()
        .join(format!("{}.gguf", NEXT.fetch_add(1, Ordering::Relaxed)))
}

/// What a tensor holds, computed once from a parse of the file.
struct Reference {
    /// ggufmap's own f32 dequantization, where it is small and succeeds.
    values: Option<Vec<f32>>,
}

fn check_file(file: &[u8], plan: &Plan) {
    let reference = Gguf::from_bytes(file);
    let refs: Vec<Reference> = match &reference {
        Ok(g) => g
            .tensors()
            .map(|t| Reference {
                values: (usize::try_from(t.n_elements()).is_ok_and(|n| n <= MAX_ELEMS))
                    .then(|| t.dequantize_to_vec::<f32>(&DequantOptions::default()).ok())
                    .flatten(),
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let parses = reference.is_ok();
    // Only plain tensors can be used in the other byte order.
    let usable_order = reference.as_ref().is_ok_and(|g| {
        (g.byte_order().is_native() || g.tensors().all(|t| t.dtype().is_plain()))
            && g.tensors().all(|t| candle_can_count(&t))
    });

    let path = scratch_file();
    let need_file = plan
        .storages
        .iter()
        .any(|s| matches!(s, Storage::Mapped | Storage::InMemory));
    if need_file {
        std::fs::write(&path, file).expect("write the scratch file");
    }
    for &storage in &plan.storages {
        let mut backing: Vec<u8> = Vec::new();
        let g = match storage {
            Storage::Mapped => Gguf::open_with(&path, &OpenOptions::new().populate(plan.populate)),
            Storage::InMemory => Gguf::open_with(&path, &OpenOptions::new().in_memory(true)),
            Storage::Read => Gguf::read(file),
            Storage::Streamed => Gguf::from_reader(std::io::Cursor::new(file.to_vec())),
            Storage::Misaligned => {
                backing = vec![0u8; file.len() + 128];
                let start = (64 - backing.as_ptr() as usize % 64) % 64 + plan.offset;
                backing[start..start + file.len()].copy_from_slice(file);
                Gguf::from_bytes(&backing[start..start + file.len()])
            }
        };
        assert_eq!(
            g.is_ok(),
            parses,
            "{storage:?} parses differently: {:?} vs {:?}",
            g.as_ref().err(),
            reference.as_ref().err()
        );
        if let Ok(g) = &g {
            assert_eq!(g.is_mapped(), storage == Storage::Mapped);
            check_storage(g, storage, &refs, plan, usable_order);
        }
        drop(g);
        drop(backing);
    }
    if need_file {
        let _ = std::fs::remove_file(&path);
    }
}

fn check_storage(g: &Gguf<'_>, storage: Storage, refs: &[Reference], plan: &Plan, usable: bool) {
    let device = Device::Cpu;
    let mut qtensors: Vec<Arc<QTensor>> = Vec::new();
    for (i, t) in g.tensors().enumerate() {
        match (t.dtype().candle_qtype(), t.to_qtensor(&device)) {
            (None, Err(Error::CandleUnsupported { .. })) => {}
            (
                Some(_),
                Err(Error::CandleUnsupported {
                    target: "candle shape",
                    ..
                }),
            ) if !candle_can_count(&t) => {}
            (None, result) => panic!("{}: to_qtensor of {}: {:?}", t.name(), t.dtype(), result),
            (Some(_), Err(Error::ByteOrder { .. }))
                if !t.byte_order().is_native() && !t.dtype().is_plain() => {}
            (Some(_), Err(Error::Candle { .. })) if t.dims().is_empty() => {}
            (Some(qtype), Ok(q)) => {
                assert!(!t.dims().is_empty(), "{}: a scalar QTensor", t.name());
                assert!(t.byte_order().is_native() || t.dtype().is_plain());
                assert_eq!(q.dtype(), qtype);
                qtensors.push(check_qtensor(q, &t, &refs[i], plan.rows));
            }
            (Some(_), Err(e)) => panic!("{storage:?} {}: to_qtensor failed: {e}", t.name()),
        }
    }
    fused_gemv(&qtensors, plan.rows);
    drop(qtensors);

    for load in &plan.loads {
        let result = g.load_candle_with(&device, &load.options());
        let mut model = match result {
            Ok(model) => model,
            Err(e) => {
                assert!(
                    !(plan.generated && usable),
                    "{storage:?} {load:?}: a valid file does not load: {e}"
                );
                continue;
            }
        };
        let report = &model.report;
        assert_eq!(report.load_as, load.load_as);
        assert_eq!(report.tensors, g.tensor_count());
        assert_eq!(report.quantized + report.dense, report.tensors);
        assert!(report.mapped <= report.quantized);
        // A file the `Gguf` owns (mapped, or read into 64-byte-aligned
        // memory) lends its blocks; borrowed bytes never do.
        if matches!(storage, Storage::Misaligned | Storage::Streamed) || load.copy {
            assert_eq!(report.mapped, 0, "{storage:?} {load:?}: {report}");
        } else if g.byte_order().is_native() && g.alignment().is_multiple_of(4) {
            // Every block type of candle's is at most 4-byte aligned: in
            // such memory with such a file alignment, every QTensor reads
            // its blocks in place.
            assert_eq!(
                report.mapped, report.quantized,
                "{storage:?} {load:?}: {report}"
            );
        }
        assert_eq!(
            report.read_from_file,
            (storage == Storage::Mapped && !load.through_mapping) || storage == Storage::Streamed,
            "{storage:?} {load:?}"
        );
        if load.load_as != LoadAs::Quantized {
            assert_eq!(report.quantized, 0);
        }
        for (i, t) in g.tensors().enumerate() {
            // Taken out, so that the matmuls own their QTensors. (Two
            // tensors of one name: the reader refuses them.)
            let loaded = model.remove(t.name()).expect("every tensor is loaded");
            assert_eq!(loaded.shape().dims(), t.shape().as_slice(), "{}", t.name());
            match loaded {
                LoadedTensor::Quantized(q) => {
                    assert_eq!(Some(q.dtype()), t.dtype().candle_qtype());
                    drop(check_qtensor(q, &t, &refs[i], plan.rows));
                }
                LoadedTensor::Dense(d) => check_dense(&d, &t, &refs[i], load.load_as),
            }
        }
        assert!(model.tensors.is_empty());
    }
}

/// The bytes a QTensor of `t` holds: the file's, byte swapped for a plain
/// type in the other byte order.
fn expected_bytes(t: &TensorView<'_>) -> Vec<u8> {
    let mut bytes = t
        .read_bytes()
        .expect("the tensor's bytes read")
        .into_owned();
    let size = t.dtype().bytes_per_block();
    if !t.byte_order().is_native() && size > 1 {
        bytes.chunks_exact_mut(size).for_each(<[u8]>::reverse);
    }
    bytes
}

/// Equal values, any NaN equal to any other; `what` and `how` name them
/// in the message.
fn same_f32(what: &str, how: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: {how}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan()),
            "{what}: {how}: element {i}: {x:?} vs {y:?}"
        );
    }
}

fn to_f32s(t: &Tensor) -> Vec<f32> {
    t.to_dtype(DType::F32)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .expect("a small dense tensor reads back")
}

/// True when candle can count the elements of `t`'s shape: the product of
/// its dims taken outermost first fits a `usize`.
fn candle_can_count(t: &TensorView<'_>) -> bool {
    t.shape()
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .is_some()
}

/// Uses `q`, a QTensor of `t`; returns it for the fused GEMV.
fn check_qtensor(q: QTensor, t: &TensorView<'_>, r: &Reference, rows: usize) -> Arc<QTensor> {
    let name = t.name();
    assert_eq!(q.shape().dims(), t.shape().as_slice(), "{name}");
    assert_eq!(
        q.storage_size_in_bytes() as u64,
        t.info().n_bytes(),
        "{name}"
    );
    let data = q.data().expect("CPU data");
    assert!(*data == *expected_bytes(t), "{name}: QTensor bytes differ");
    drop(data);

    // Our own count: candle's would overflow on shapes it cannot take,
    // which `to_qtensor` refuses.
    assert!(candle_can_count(t), "{name}: a QTensor candle cannot count");
    let n = q.shape().elem_count();
    let q = Arc::new(q);
    if n > MAX_ELEMS {
        return q;
    }
    let dense = q.dequantize(&Device::Cpu).expect("dequantize");
    assert_eq!(dense.dims(), q.shape().dims());
    let values = to_f32s(&dense);
    if let Some(reference) = &r.values {
        same_f32(name, "candle vs ggufmap", &values, reference);
    }
    let half = q.dequantize_f16(&Device::Cpu).expect("dequantize_f16");
    assert_eq!(half.dims(), q.shape().dims());
    if n == 0 {
        return q;
    }

    let Ok((n_rows, k)) = q.shape().dims2() else {
        return q;
    };
    // Embedding: rows 0 and the last, as dequantized; one past: an error.
    let ids = Tensor::new(&[0u32, (n_rows - 1) as u32], &Device::Cpu).expect("ids");
    let rows_out = q.embedding(&ids).expect("embedding");
    assert_eq!(rows_out.dims(), &[2, k]);
    let got = to_f32s(&rows_out);
    let want: Vec<f32> = values[..k]
        .iter()
        .chain(&values[(n_rows - 1) * k..])
        .copied()
        .collect();
    same_f32(name, "embedding", &got, &want);
    if let Ok(past) = u32::try_from(n_rows) {
        let ids = Tensor::new(&[past], &Device::Cpu).expect("ids");
        assert!(q.embedding(&ids).is_err(), "{name}: row {past} of {n_rows}");
    }

    // candle's Q4_1, Q5_0 and Q5_1 dot products assert an even number of
    // blocks per row (debug builds, for its own storage too).
    let needs_even = matches!(
        q.dtype(),
        GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
    );
    if needs_even && !(k / q.dtype().block_size()).is_multiple_of(2) {
        return q;
    }
    // On this QTensor's own storage (the blocks in the mapping, or
    // ggufmap's copy), through candle's kernels, repacked ones included.
    let mm = QMatMul::from_arc(Arc::clone(&q)).expect("QMatMul");
    let ms: &[usize] = if rows == 1 { &[1] } else { &[1, rows] };
    for &m in ms {
        let x = Tensor::ones((m, k), DType::F32, &Device::Cpu).expect("ones");
        let y = mm.forward(&x).expect("matmul");
        assert_eq!(y.dims(), &[m, n_rows], "{name}: matmul");
        let _ = to_f32s(&y);
        if m == 1 {
            // candle has F16 kernels for some types only: may fail.
            let x16 = x.to_dtype(DType::F16).expect("f16");
            if let Ok(y) = mm.forward(&x16) {
                assert_eq!(y.dims(), &[m, n_rows], "{name}: f16 matmul");
            }
        }
    }
    q
}

/// candle's fused GEMV over every small rank-2 QTensor of one type and
/// width (the first that candle repacks, else the first).
fn fused_gemv(qtensors: &[Arc<QTensor>], rows: usize) {
    let small: Vec<&QTensor> = qtensors
        .iter()
        .map(|q| &**q)
        .filter(|q| {
            let n = q.shape().elem_count();
            q.rank() == 2 && n > 0 && n <= MAX_ELEMS
        })
        .collect();
    // A type candle repacks, if there is one.
    let repacked = |q: &QTensor| {
        REPACKED_TYPES
            .iter()
            .any(|t| t.candle_qtype() == Some(q.dtype()))
    };
    let Some(first) = small.iter().find(|q| repacked(q)).or(small.first()) else {
        return;
    };
    let (dtype, k) = (first.dtype(), first.shape().dims()[1]);
    if matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
        && !(k / dtype.block_size()).is_multiple_of(2)
    {
        return;
    }
    let same: Vec<&QTensor> = small
        .into_iter()
        .filter(|q| q.dtype() == dtype && q.shape().dims()[1] == k)
        .collect();
    let ms: &[usize] = if rows == 1 { &[1] } else { &[1, rows] };
    for &m in ms {
        let x = Tensor::ones((m, k), DType::F32, &Device::Cpu).expect("ones");
        if let Some(outs) = QTensor::gemv_fused_shared_lhs(&same, &x).expect("fused gemv") {
            assert_eq!(outs.len(), same.len());
            for (out, q) in outs.iter().zip(&same) {
                assert_eq!(out.dims(), &[m, q.shape().dims()[0]]);
            }
        }
    }
}

fn check_dense(d: &Tensor, t: &TensorView<'_>, r: &Reference, load_as: LoadAs) {
    let name = t.name();
    let n = d.elem_count();
    if n > MAX_ELEMS {
        return;
    }
    let values = to_f32s(d);
    assert_eq!(values.len(), n);
    match (load_as.dtype(), d.dtype()) {
        (Some(DType::F32), DType::F32) => {
            if let Some(reference) = &r.values {
                same_f32(name, "dense f32", &values, reference);
            }
        }
        (Some(DType::F16), DType::F16) | (None, DType::F16) => {
            if let Ok(direct) = t.dequantize_to_vec::<f16>(&DequantOptions::default()) {
                let want: Vec<f32> = direct.iter().map(|v| v.to_f32()).collect();
                same_f32(name, "dense f16", &values, &want);
            }
        }
        (Some(DType::BF16), DType::BF16) => {
            if let Ok(direct) = t.dequantize_to_vec::<bf16>(&DequantOptions::default()) {
                let want: Vec<f32> = direct.iter().map(|v| v.to_f32()).collect();
                same_f32(name, "dense bf16", &values, &want);
            }
        }
        (Some(_), dtype) => {
            // A float load keeps integers exact.
            assert!(dtype.is_int(), "{name}: loaded as {dtype:?}");
        }
        (None, _) => {}
    }
}
