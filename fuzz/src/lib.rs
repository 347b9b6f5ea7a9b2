//! The fuzz targets' code; each `fuzz_targets/<name>.rs` is one call into
//! this crate.
//!
//! - `open`: arbitrary bytes through `Gguf::from_bytes` and `Gguf::read`,
//!   then everything of a file that parses is used ([`checks`]).
//! - `dequantize`: a ggml type and block bytes, dequantized to f32, f16 and
//!   bf16 directly, from misaligned memory, on one thread and several, and
//!   through a `TensorView` of a one-tensor file ([`dequantize`]).
//! - `roundtrip`: metadata and tensors through `GgufWriter` then the reader;
//!   what comes back must equal what went in ([`roundtrip`]).
//! - `split`: several parts written to a temporary directory and opened as
//!   one model with `Gguf::open`, mapped, read or streamed ([`split`]).
//! - `candle`: files of candle's types, generated or as given, loaded as
//!   candle `QTensor`s and `Tensor`s from every kind of storage (mapped, in
//!   memory, read, borrowed misaligned) and used: dequantized, embedded,
//!   multiplied ([`candle()`], in `candle.rs`).
//!
//! Every target runs under [`CappedAlloc`], which aborts on a single
//! allocation of [`MAX_ALLOC_BYTES`] or more: with inputs of at most 64 KiB,
//! only an allocation sized by an untrusted count gets there, and without a
//! sanitizer libFuzzer's own `-malloc_limit_mb` sees no allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use arbitrary::{Result as ArbResult, Unstructured};
use ggufmap::format::{ValueType, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAX_ARRAY_DEPTH};
use ggufmap::split::{part_file_name, SPLIT_COUNT_KEY, SPLIT_NO_KEY, SPLIT_TENSORS_COUNT_KEY};
use ggufmap::{Error, GgmlType, Gguf, GgufWriter, MetaArray, MetaValue, OpenOptions};

#[path = "../../tests/fuzz_checks/mod.rs"]
pub mod checks;

pub use checks::dequantize;
use checks::{model_hangs_together, order, same_meta};

mod candle;
mod raw;

/// The `candle` target (see `candle.rs`): byte 0 even, a file built with
/// `GgufWriter` from `arbitrary` input; odd, the file as given. Its
/// tensors go through `TensorView::to_qtensor` and `Gguf::load_candle_with`
/// from every kind of storage, and whatever loads is used.
pub fn candle(data: &[u8]) {
    candle::run(data);
}

/// The largest single allocation the targets allow themselves.
pub const MAX_ALLOC_BYTES: usize = 64 << 20;

/// The system allocator, aborting the process (which libFuzzer reports as
/// a crash and saves the input for) on any allocation of
/// [`MAX_ALLOC_BYTES`] or more.
pub struct CappedAlloc;

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is an abort before allocating.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn check_size(size: usize) {
    if size >= MAX_ALLOC_BYTES {
        // No allocation from here on: a fixed message, then abort.
        let _ = std::io::stderr()
            .write_all(b"==ggufmap-fuzz== allocation of 64 MiB or more: aborting\n");
        std::process::abort();
    }
}

#[global_allocator]
static ALLOCATOR: CappedAlloc = CappedAlloc;

/// Set to true while a fix of the writer is pending for its one finding
/// so far that needed it (dims whose running product overflows i64 when a
/// later dim is 0: the writer accepted them until 65248e8, the reader, like
/// ggml's gguf.cpp, rejects them): the roundtrip target then tolerates
/// exactly that case.
pub const KNOWN_WRITER_GAPS: bool = false;

/// Deepest nesting the roundtrip target generates: one past what the
/// reader accepts, to see what the writer does with it.
const MAX_GENERATED_DEPTH: usize = MAX_ARRAY_DEPTH + 1;

/// A metadata value; `depth` is the number of arrays around it.
fn meta_value(u: &mut Unstructured<'_>, depth: usize, deepest: &mut usize) -> ArbResult<MetaValue> {
    if depth == 0 && u.ratio(1, 32)? {
        // Right at the nesting limit: a chain of arrays one short of it, at
        // it, or one past it.
        let levels = u.int_in_range(MAX_ARRAY_DEPTH - 1..=MAX_ARRAY_DEPTH + 1)?;
        let mut value = value_of_type(u, ValueType::U8, 0, deepest)?;
        for _ in 0..levels {
            let et = value.value_type();
            value =
                MetaValue::Array(MetaArray::new(et, vec![value]).expect("one item of its type"));
        }
        *deepest = (*deepest).max(levels);
        return Ok(value);
    }
    let id = u.int_in_range(0..=12u32)?;
    let vt = ValueType::from_id(id).unwrap_or(ValueType::U8);
    value_of_type(u, vt, depth, deepest)
}

fn value_of_type(
    u: &mut Unstructured<'_>,
    vt: ValueType,
    depth: usize,
    deepest: &mut usize,
) -> ArbResult<MetaValue> {
    Ok(match vt {
        ValueType::U8 => MetaValue::U8(u.arbitrary()?),
        ValueType::I8 => MetaValue::I8(u.arbitrary()?),
        ValueType::U16 => MetaValue::U16(u.arbitrary()?),
        ValueType::I16 => MetaValue::I16(u.arbitrary()?),
        ValueType::U32 => MetaValue::U32(u.arbitrary()?),
        ValueType::I32 => MetaValue::I32(u.arbitrary()?),
        ValueType::F32 => MetaValue::F32(u.arbitrary()?),
        ValueType::Bool => MetaValue::Bool(u.arbitrary()?),
        ValueType::U64 => MetaValue::U64(u.arbitrary()?),
        ValueType::I64 => MetaValue::I64(u.arbitrary()?),
        ValueType::F64 => MetaValue::F64(u.arbitrary()?),
        ValueType::String => {
            let len = u.int_in_range(0..=40usize)?;
            MetaValue::String(u.bytes(len)?.to_vec())
        }
        _ => {
            let depth = depth + 1;
            *deepest = (*deepest).max(depth);
            let id = u.int_in_range(0..=12u32)?;
            let mut et = ValueType::from_id(id).unwrap_or(ValueType::U8);
            if et == ValueType::Array && depth >= MAX_GENERATED_DEPTH {
                et = ValueType::U8;
            }
            let len = u.int_in_range(0..=if et == ValueType::Array { 3usize } else { 24 })?;
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                items.push(value_of_type(u, et, depth, deepest)?);
            }
            MetaValue::Array(MetaArray::new(et, items).expect("items of the element type"))
        }
    })
}

/// The keys a roundtrip input can pick besides arbitrary ones.
const KEYS: &[&str] = &[
    "general.architecture",
    "general.name",
    ALIGNMENT_KEY,
    "tokenizer.ggml.tokens",
    "",
];

/// The `roundtrip` target: metadata and tensors through the writer, then
/// the reader; the writer must reject exactly the invalid additions, and
/// the file must read back equal.
pub fn roundtrip(data: &[u8]) {
    let _ = roundtrip_inner(&mut Unstructured::new(data));
}

struct Expected {
    name: String,
    dtype: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

fn roundtrip_inner(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let order = order(u.arbitrary()?);
    let mut w = GgufWriter::new();
    w.set_byte_order(order);
    let align_byte: u8 = u.arbitrary()?;
    let alignment = if align_byte < 240 {
        1u32 << (align_byte % 10)
    } else {
        u.arbitrary()?
    };
    let set = w.set_alignment(alignment);
    assert_eq!(
        set.is_ok(),
        alignment.is_power_of_two(),
        "set_alignment({alignment})"
    );
    let alignment = if alignment.is_power_of_two() && alignment <= 512 {
        alignment
    } else if alignment.is_power_of_two() {
        // A huge alignment is legal but pads to gigabytes: keep it small.
        w.set_alignment(DEFAULT_ALIGNMENT).expect("32");
        DEFAULT_ALIGNMENT
    } else {
        DEFAULT_ALIGNMENT
    };

    let mut metadata: Vec<(String, MetaValue)> = Vec::new();
    // Whether the writer accepted something the reader rejects (see
    // KNOWN_WRITER_GAPS).
    let mut wrote_element_overflow = false;
    for _ in 0..u.int_in_range(0..=12u8)? {
        let key: String = if u.ratio(1, 6)? {
            u.choose(KEYS)?.to_string()
        } else if u.ratio(1, 8)? && !metadata.is_empty() {
            u.choose(&metadata)?.0.clone()
        } else {
            u.arbitrary()?
        };
        let mut deepest = 0;
        let value = meta_value(u, 0, &mut deepest)?;
        let added = w.add_metadata(key.clone(), value.clone());
        if key == ALIGNMENT_KEY {
            // An API rule, not the format's: the alignment is set with
            // `set_alignment`.
            assert!(added.is_err(), "add_metadata({ALIGNMENT_KEY:?}) accepted");
        } else {
            // Differential: the writer accepts exactly what the reader
            // accepts, the same entries encoded without checks.
            let mut with = metadata.clone();
            with.push((key.clone(), value.clone()));
            let reader = reader_verdict(order, alignment, &with, &[]);
            assert_eq!(
                added.is_ok(),
                reader.is_ok(),
                "add_metadata({key:?}, nested {deepest} deep): writer {:?}, reader {:?}",
                added.err(),
                reader.err()
            );
        }
        if added.is_ok() {
            metadata.push((key, value));
        }
    }

    let mut tensors: Vec<Expected> = Vec::new();
    for _ in 0..u.int_in_range(0..=6u8)? {
        let name: String = if u.ratio(1, 8)? && !tensors.is_empty() {
            u.choose(&tensors)?.name.clone()
        } else if u.ratio(1, 16)? {
            "x".repeat(u.int_in_range(60..=70usize)?)
        } else {
            u.arbitrary()?
        };
        let dtype = *u.choose(GgmlType::ALL)?;
        let (dims, data) = if u.ratio(1, 8)? {
            // Anything: the writer must say no, or write what reads back.
            let dims: Vec<u64> = (0..u.int_in_range(0..=5usize)?)
                .map(|_| u.arbitrary())
                .collect::<ArbResult<_>>()?;
            let len = u.int_in_range(0..=300usize)?;
            (dims, u.bytes(len)?.to_vec())
        } else {
            let n_dims = u.int_in_range(0..=4usize)?;
            let mut dims = Vec::with_capacity(n_dims);
            for axis in 0..n_dims {
                let d = u64::from(u.int_in_range(0..=3u8)?);
                dims.push(if axis == 0 {
                    d * dtype.elements_per_block() as u64
                } else {
                    d
                });
            }
            if n_dims == 0 && !dtype.is_plain() {
                dims.push(dtype.elements_per_block() as u64);
            }
            let n_bytes = dtype.tensor_bytes(&dims).expect("small dims") as usize;
            let fill_len = u.int_in_range(0..=32usize)?;
            let fill = u.bytes(fill_len)?;
            let data = if fill.is_empty() {
                vec![0u8; n_bytes]
            } else {
                fill.iter().copied().cycle().take(n_bytes).collect()
            };
            (dims, data)
        };
        // The reader's (and ggml's) rule: the running product of the dims
        // fits an i64, even when a later dim is 0.
        let elements_fit = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .is_some_and(|n| i64::try_from(n).is_ok());
        let added = w.add_tensor(name.clone(), dtype, &dims, data.clone());
        let candidate = Expected {
            name,
            dtype,
            dims,
            data,
        };
        let call = || {
            format!(
                "add_tensor({:?}, {}, {:?}, {} bytes)",
                candidate.name,
                candidate.dtype,
                candidate.dims,
                candidate.data.len()
            )
        };
        let declared = candidate.dtype.tensor_bytes(&candidate.dims);
        if matches!(declared, Some(n) if n != candidate.data.len() as u64) {
            // An API rule, not the format's: the bytes given must be the
            // ones dims and type make.
            assert!(added.is_err(), "{} accepted", call());
        } else {
            // Differential: the writer accepts exactly what the reader
            // accepts, the same tensors encoded without checks.
            let mut with: Vec<&Expected> = tensors.iter().collect();
            with.push(&candidate);
            let reader = reader_verdict(order, alignment, &metadata, &with);
            let tolerated = KNOWN_WRITER_GAPS && !elements_fit && added.is_ok();
            assert!(
                added.is_ok() == reader.is_ok() || tolerated,
                "{}: writer {:?}, reader {:?}",
                call(),
                added.as_ref().err(),
                reader.err()
            );
        }
        wrote_element_overflow |= added.is_ok() && !elements_fit;
        if added.is_ok() {
            tensors.push(candidate);
        }
    }

    let bytes = w.to_bytes().expect("a small file");
    let mut streamed = Vec::new();
    w.write_to(&mut streamed).expect("writing to a Vec");
    assert_eq!(streamed, bytes);

    let g = match Gguf::from_bytes(&bytes) {
        Ok(g) => g,
        Err(Error::SizeOverflow {
            what: "element count",
            ..
        }) if KNOWN_WRITER_GAPS && wrote_element_overflow => return Ok(()),
        Err(e) => panic!("the writer's file does not parse: {e}"),
    };
    assert_eq!(g.version(), 3);
    assert_eq!(g.byte_order(), order);
    assert_eq!(g.alignment(), alignment);

    let md = g.metadata();
    let alignment_entry = (alignment != DEFAULT_ALIGNMENT)
        .then(|| (ALIGNMENT_KEY.to_owned(), MetaValue::U32(alignment)));
    let expected: Vec<&(String, MetaValue)> =
        alignment_entry.iter().chain(metadata.iter()).collect();
    assert_eq!(md.len(), expected.len());
    for ((key, value), (want_key, want)) in md.iter().zip(expected) {
        assert_eq!(key, want_key);
        assert!(
            same_meta(want, &value),
            "{key:?}: wrote {want:?}, read {value:?}"
        );
        assert_eq!(
            MetaValue::from_value(&value).value_type(),
            want.value_type()
        );
    }

    assert_eq!(g.tensor_count(), tensors.len());
    for (t, want) in g.tensors().zip(&tensors) {
        assert_eq!(t.name(), want.name);
        assert_eq!(t.dtype(), want.dtype);
        assert_eq!(t.dims(), &want.dims[..]);
        assert_eq!(t.bytes().ok(), Some(&want.data[..]));
    }
    model_hangs_together(&g);
    Ok(())
}

/// The reader's verdict on `metadata` and `tensors` encoded without checks
/// ([`raw::encode`]).
fn reader_verdict(
    order: ggufmap::format::ByteOrder,
    alignment: u32,
    metadata: &[(String, MetaValue)],
    tensors: &[&Expected],
) -> Result<(), Error> {
    let metadata: Vec<(&str, &MetaValue)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<raw::RawTensor<'_>> = tensors
        .iter()
        .map(|t| raw::RawTensor {
            name: &t.name,
            dtype: t.dtype,
            dims: &t.dims,
            data: &t.data,
        })
        .collect();
    let bytes = raw::encode(order, alignment, &metadata, &tensors);
    Gguf::from_bytes(&bytes).map(drop)
}

/// A fresh directory for one split input, under one temporary directory
/// per process.
fn scratch_dir() -> PathBuf {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let root = ROOT.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("ggufmap-fuzz-split")
            .tempdir()
            .expect("tmpdir")
    });
    let dir = root
        .path()
        .join(NEXT.fetch_add(1, Ordering::Relaxed).to_string());
    std::fs::create_dir(&dir).expect("scratch dir");
    dir
}

struct PlannedPart {
    no: Option<MetaValue>,
    count: Option<MetaValue>,
    tensors_count: Option<MetaValue>,
    tensors: Vec<(String, GgmlType, Vec<u8>)>,
}

/// What the split target does to an otherwise valid set of parts.
#[derive(Debug)]
enum Mutation {
    None,
    DropKey(usize, usize),
    RetypeKey(usize, usize),
    SetKey(usize, usize, i64),
    RemoveFile(usize),
    DuplicateTensor(usize, usize),
    FlipByte(usize, usize, u8),
    RenameFirst,
}

/// The `split` target: 1 to 4 parts as gguf-split writes them, perhaps
/// with one thing wrong, opened as one model. A valid set must open and
/// show every tensor; a wrong one must fail with an error (never a panic),
/// and whatever opens must hang together.
pub fn split(data: &[u8]) {
    let _ = split_inner(&mut Unstructured::new(data));
}

fn split_inner(u: &mut Unstructured<'_>) -> ArbResult<()> {
    let count = u.int_in_range(1..=4u16)?;
    // Mapped, read into memory, or streamed.
    let storage: u8 = u.int_in_range(0..=2)?;
    let mut parts = Vec::new();
    let mut next_name = 0u32;
    for _ in 0..count {
        let mut tensors = Vec::new();
        for _ in 0..u.int_in_range(0..=3u8)? {
            let (dtype, len) = if u.arbitrary()? {
                (GgmlType::F32, 4 * u.int_in_range(0..=4usize)?)
            } else {
                (GgmlType::Q8_0, 34)
            };
            tensors.push((format!("t{next_name}"), dtype, u.bytes(len)?.to_vec()));
            next_name += 1;
        }
        parts.push(PlannedPart {
            no: None,
            count: None,
            tensors_count: None,
            tensors,
        });
    }
    let total: usize = parts.iter().map(|p| p.tensors.len()).sum();
    let with_keys = count > 1 || u.arbitrary()?;
    if with_keys {
        for (i, p) in parts.iter_mut().enumerate() {
            p.no = Some(MetaValue::U16(i as u16));
            p.count = Some(MetaValue::U16(count));
            p.tensors_count = Some(MetaValue::I32(total as i32));
        }
    }

    let n = usize::from(count);
    let mutation = match u.int_in_range(0..=11u8)? {
        0..=4 => Mutation::None,
        5 => Mutation::DropKey(u.choose_index(n)?, u.choose_index(3)?),
        6 => Mutation::RetypeKey(u.choose_index(n)?, u.choose_index(3)?),
        7 => Mutation::SetKey(
            u.choose_index(n)?,
            u.choose_index(3)?,
            u.int_in_range(-2..=6i64)?,
        ),
        8 => Mutation::RemoveFile(u.choose_index(n)?),
        9 => Mutation::DuplicateTensor(u.choose_index(n)?, u.choose_index(n)?),
        10 => Mutation::FlipByte(
            u.choose_index(n)?,
            u.arbitrary::<u16>()?.into(),
            u.int_in_range(1..=255u8)?,
        ),
        _ => Mutation::RenameFirst,
    };
    match mutation {
        Mutation::DropKey(p, k) => *slot(&mut parts[p], k) = None,
        Mutation::RetypeKey(p, k) => {
            let s = slot(&mut parts[p], k);
            *s = match s.take() {
                Some(MetaValue::U16(v)) => Some(MetaValue::U32(v.into())),
                Some(MetaValue::I32(v)) => Some(MetaValue::I64(v.into())),
                _ => Some(MetaValue::string("0")),
            };
        }
        Mutation::SetKey(p, k, v) => {
            *slot(&mut parts[p], k) = Some(if k == 2 {
                MetaValue::I32(v as i32)
            } else {
                MetaValue::U16(v as u16)
            });
        }
        Mutation::DuplicateTensor(from, to) => {
            if let Some(name) = parts[from].tensors.first().map(|t| t.0.clone()) {
                if let Some(t) = parts[to].tensors.last_mut() {
                    t.0 = name;
                }
            }
        }
        _ => {}
    }

    let dir = scratch_dir();
    let first = write_parts(&dir, &parts, &mutation, count);
    let options = OpenOptions::new()
        .in_memory(storage == 1)
        .streamed(storage == 2);
    let result = Gguf::open_with(&first, &options);
    match (&mutation, &result) {
        (Mutation::None, Ok(model)) => check_valid_split(model, &parts),
        (Mutation::None, Err(e)) => {
            panic!("a valid split model of {count} parts does not open: {e}")
        }
        (_, Ok(model)) => check_split(model),
        (Mutation::FlipByte(..), Err(_)) => {}
        (_, Err(e)) => assert!(is_split_error(e), "{mutation:?}: unexpected error {e}"),
    }
    drop(result);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn slot(p: &mut PlannedPart, k: usize) -> &mut Option<MetaValue> {
    match k {
        0 => &mut p.no,
        1 => &mut p.count,
        _ => &mut p.tensors_count,
    }
}

fn write_parts(dir: &Path, parts: &[PlannedPart], mutation: &Mutation, count: u16) -> PathBuf {
    let mut first = PathBuf::new();
    for (i, p) in parts.iter().enumerate() {
        let mut w = GgufWriter::new();
        if i == 0 {
            w.add_metadata("general.architecture", "fuzz").expect("key");
        }
        for (key, value) in [
            (SPLIT_NO_KEY, &p.no),
            (SPLIT_COUNT_KEY, &p.count),
            (SPLIT_TENSORS_COUNT_KEY, &p.tensors_count),
        ] {
            if let Some(v) = value {
                w.add_metadata(key, v.clone()).expect("split key");
            }
        }
        for (name, dtype, data) in &p.tensors {
            let elems = data.len() / dtype.bytes_per_block() * dtype.elements_per_block();
            if w.add_tensor(name.clone(), *dtype, &[elems as u64], &data[..])
                .is_err()
            {
                // A duplicate within one part: leave it out.
            }
        }
        let mut bytes = w.to_bytes().expect("a small part");
        if let Mutation::FlipByte(p, pos, xor) = *mutation {
            if p == i && !bytes.is_empty() {
                let pos = pos % bytes.len();
                bytes[pos] ^= xor;
            }
        }
        let path = dir.join(part_file_name("m", i as u16, count));
        let skip = matches!(*mutation, Mutation::RemoveFile(p) if p == i);
        if !skip {
            std::fs::write(&path, &bytes).expect("write part");
        }
        if i == 0 {
            first = path;
        }
    }
    if matches!(mutation, Mutation::RenameFirst) {
        let renamed = dir.join("m.gguf");
        let _ = std::fs::rename(&first, &renamed);
        first = renamed;
    }
    first
}

fn is_split_error(e: &Error) -> bool {
    matches!(
        e,
        Error::SplitName { .. }
            | Error::SplitPartMissing { .. }
            | Error::SplitPart { .. }
            | Error::SplitKeyMissing { .. }
            | Error::SplitKeyType { .. }
            | Error::SplitKeyValue { .. }
            | Error::SplitMismatch { .. }
            | Error::SplitDuplicateTensor { .. }
            | Error::SplitTensorCount { .. }
            | Error::Io { .. }
    )
}

/// What holds for any model that opens.
fn check_split(model: &Gguf<'_>) {
    let count = model.part_count();
    let paths: Vec<PathBuf> = model
        .part_paths()
        .map(|p| p.expect("parts opened from files have paths").to_owned())
        .collect();
    assert_eq!(paths.len(), count);
    let alone = OpenOptions::new().single_file(true);
    let parts: Vec<Gguf<'static>> = paths
        .iter()
        .map(|p| Gguf::open_with(p, &alone).expect("a part of a model opens alone"))
        .collect();
    let total: usize = parts.iter().map(Gguf::tensor_count).sum();
    assert_eq!(model.tensor_count(), total);
    let md = model.metadata();
    if let Ok(expected) = md.get_i32(SPLIT_TENSORS_COUNT_KEY) {
        assert_eq!(Ok(total), usize::try_from(expected));
    }
    if count > 1 {
        assert_eq!(md.get_u16(SPLIT_COUNT_KEY).ok(), Some(count as u16));
        for (i, part) in parts.iter().enumerate() {
            assert_eq!(
                part.metadata().get_u16(SPLIT_NO_KEY).ok(),
                Some(i as u16),
                "part {i} out of place"
            );
            assert_eq!(
                part.metadata().get_u16(SPLIT_COUNT_KEY).ok(),
                Some(count as u16)
            );
        }
    }
    let mut seen = 0;
    for t in model.tensors() {
        let found = model.tensor(t.name()).expect("a listed tensor is found");
        assert_eq!(found.part(), t.part(), "{} found in another part", t.name());
        assert_eq!(found.byte_range(), t.byte_range());
        let in_part = parts[t.part()]
            .tensor(t.name())
            .expect("a tensor is in the part that holds it");
        assert_eq!(in_part.byte_range(), t.byte_range());
        assert_eq!(
            in_part.read_bytes().expect("the part's bytes read"),
            t.read_bytes().expect("the model's bytes read")
        );
        seen += 1;
    }
    assert_eq!(seen, total);
    for part in &parts {
        model_hangs_together(part);
    }
}

fn check_valid_split(model: &Gguf<'_>, parts: &[PlannedPart]) {
    check_split(model);
    assert_eq!(model.part_count(), parts.len());
    assert_eq!(
        model.metadata().get_str("general.architecture").ok(),
        Some("fuzz")
    );
    let mut listed = model.tensors();
    for (i, p) in parts.iter().enumerate() {
        for (name, dtype, data) in &p.tensors {
            let t = model.tensor(name).expect("a written tensor");
            assert_eq!(t.dtype(), *dtype);
            assert_eq!(t.read_bytes().expect("a written tensor reads"), &data[..]);
            assert_eq!(t.part(), i);
            assert_eq!(
                listed.next().map(|t| t.name().to_owned()).as_deref(),
                Some(name.as_str())
            );
        }
    }
    assert!(listed.next().is_none());
}
