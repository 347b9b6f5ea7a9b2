//! The checks of the `open` and `dequantize` fuzz targets, as named
//! properties: each function is one property, named for what it asserts.
//!
//! [`open_bytes`] parses its input every way (borrowed, read into memory,
//! streamed: they agree on whether and how it fails) and, when it parses,
//! checks:
//! - [`streamed_equals_in_memory`]: a streamed model gives the same bytes
//!   and values;
//! - [`model_hangs_together`]: header, tensor layout and lookups agree;
//! - [`metadata_walks_and_lookups_agree`], with
//!   [`typed_getters_agree_with_the_value`]: every value and array element
//!   walked, every key found, every getter consistent;
//! - [`tensor_views_agree`], with [`plain_views_agree`],
//!   [`every_dequantization_path_agrees`] and
//!   [`a_bounded_prefix_dequantizes`]: shapes, sizes, typed views and every
//!   way of dequantizing give the same bits.
//!
//! [`dequantize`] decodes block bytes every way there is and asserts that
//! all ways agree.
//!
//! This file lives in ggufmap's `tests/` (so the packaged crate's tests
//! have it) and is compiled into `tests/fuzz_regressions.rs` and, through
//! `#[path]`, into the fuzz crate, so plain `cargo test` replays the
//! committed regressions through exactly these checks. It uses only
//! ggufmap's public API, `half` and `bytemuck`.

use std::sync::OnceLock;

use ggufmap::dequant::{dequantize_parallel, CHUNK_OUTPUT_BYTES};
use ggufmap::format::{
    ArrayView, ByteOrder, Value, ValueType, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAX_DIMS,
};
use ggufmap::quant::{dequantize_bytes, Output};
use ggufmap::{
    DequantOptions, Error, GgmlType, Gguf, GgufWriter, MetaValue, Parallelism, TensorView,
};
use half::{bf16, f16};

/// Largest tensor (in elements) dequantized whole, through every output
/// type and parallelism; larger tensors get a prefix of this many elements
/// (rounded down to whole blocks).
pub const MAX_DEQUANT_ELEMS: u64 = 1 << 16;

/// Array elements also fetched by index ([`ArrayView::get`] is O(index) for
/// strings, so not all of them).
const MAX_INDEXED: u64 = 32;

/// The `open` target: parses `data` borrowed, copied into memory and
/// streamed from a reader, and checks everything of a file that parses.
pub fn open_bytes(data: &[u8]) {
    let borrowed = Gguf::from_bytes(data);
    // The 64-byte-aligned copy and the stream must parse the same way.
    let copied = Gguf::read(data);
    let streamed = Gguf::from_reader(std::io::Cursor::new(data.to_vec()));
    for (how, other) in [("read", &copied), ("from_reader", &streamed)] {
        match (&borrowed, other) {
            (Ok(_), Ok(_)) => {}
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{how}"),
            _ => panic!(
                "from_bytes and {how} disagree: {:?} vs {:?}",
                borrowed.as_ref().err(),
                other.as_ref().err()
            ),
        }
    }
    if let Ok(g) = &borrowed {
        model_hangs_together(g);
    }
    if let Ok(g) = &copied {
        model_hangs_together(g);
    }
    if let (Ok(g), Ok(s)) = (&borrowed, &streamed) {
        model_hangs_together(s);
        streamed_equals_in_memory(g, s);
    }
}

/// A streamed model gives the tensors of the same file in memory: the
/// same bytes, and the same values where they decode.
fn streamed_equals_in_memory(in_memory: &Gguf<'_>, streamed: &Gguf<'_>) {
    assert!(streamed.is_streamed());
    assert_eq!(streamed.as_bytes(), None);
    for (a, b) in in_memory.tensors().zip(streamed.tensors()) {
        assert_eq!(a.name(), b.name());
        assert_eq!(a.byte_range(), b.byte_range());
        assert!(matches!(b.bytes(), Err(Error::NotInMemory { .. })));
        let bytes = b.read_bytes().expect("a streamed tensor reads");
        assert_eq!(a.bytes().ok(), Some(&bytes[..]));
        if a.n_elements() <= MAX_DEQUANT_ELEMS {
            let from_memory = a.dequantize_to_vec::<f32>(&DequantOptions::default());
            let from_stream = b.dequantize_to_vec::<f32>(&DequantOptions::default());
            match (from_memory, from_stream) {
                (Ok(x), Ok(y)) => assert_eq!(bits32(&x), bits32(&y), "{:?}", a.name()),
                (Err(x), Err(y)) => assert_eq!(x.to_string(), y.to_string()),
                (x, y) => panic!("{:?}: in memory {x:?}, streamed {y:?}", a.name()),
            }
        }
    }
}

/// Uses everything of a parsed file.
pub fn model_hangs_together(g: &Gguf<'_>) {
    let len = g.file_size();
    assert!(matches!(g.version(), 2 | 3));
    assert!(g.alignment().is_power_of_two());
    assert!(g.data_start() as u64 <= len);
    let _ = (g.byte_order(), g.path(), g.is_mapped(), g.is_streamed());
    assert_eq!(g.part_count(), 1);
    if let Some(bytes) = g.as_bytes() {
        assert_eq!(bytes.len() as u64, len);
    }

    metadata_walks_and_lookups_agree(g);

    // Tensors: views agree with lookups; data is packed in order inside the file.
    assert_eq!(g.tensors().count(), g.tensor_count());
    let mut previous_end = g.data_start() as u64;
    let mut total = 0u64;
    for t in g.tensors() {
        tensor_views_agree(&t);
        let range = t.byte_range();
        assert!(
            range.start >= previous_end,
            "tensor {:?} overlaps the previous one",
            t.name()
        );
        assert!(range.end <= len);
        assert_eq!(
            (range.start - g.data_start() as u64) % u64::from(g.alignment()),
            0
        );
        previous_end = range.end;
        total += t.info().n_bytes();
        let found = g
            .tensor(t.name())
            .expect("a listed tensor is found by name");
        assert_eq!(found.byte_range(), range);
        assert_eq!(found.dtype(), t.dtype());
    }
    assert_eq!(total, g.tensor_bytes());
    // Tensor names are shorter than 64 bytes: this one is never there.
    let absent = "\u{0}".repeat(ggufmap::format::MAX_TENSOR_NAME_LEN);
    assert!(matches!(
        g.tensor(&absent),
        Err(Error::TensorNotFound { .. })
    ));
}

fn metadata_walks_and_lookups_agree(g: &Gguf<'_>) {
    let md = g.metadata();
    assert_eq!(md.iter().len(), md.len());
    assert_eq!(md.is_empty(), md.iter().next().is_none());
    let mut seen = 0usize;
    for (key, value) in md.iter() {
        seen += 1;
        assert!(md.contains(key));
        let entry = md.entry(key).expect("an iterated key has an entry");
        assert_eq!(entry.value_type(), value.value_type());
        assert!(entry.offset() < entry.value_offset());
        assert!(entry.value_offset() <= g.file_size());
        let got = md.get(key).expect("an iterated key has a value");
        assert!(
            same_value(&got, &value),
            "get({key:?}) differs from iteration"
        );
        typed_getters_agree_with_the_value(g, key, &value);
        walk_value(
            &value,
            0,
            usize::try_from(g.file_size()).unwrap_or(usize::MAX),
        );
        let owned = MetaValue::from_value(&value);
        assert!(
            same_meta(&owned, &value),
            "MetaValue::from_value differs for {key:?}"
        );
        copies_write_back_alike(key, &owned, &value);
    }
    assert_eq!(seen, md.len());
    // Longer than any key: never there.
    let absent: String = md.iter().map(|(k, _)| k).chain(["\u{0}"]).collect();
    assert!(md.get(&absent).is_none());
    assert!(matches!(
        md.get_u32(&absent),
        Err(Error::KeyNotFound { .. })
    ));

    match md.get(ALIGNMENT_KEY) {
        Some(Value::U32(a)) => assert_eq!(a, g.alignment()),
        Some(other) => panic!(
            "file with a {} general.alignment parsed",
            other.value_type()
        ),
        None => assert_eq!(g.alignment(), DEFAULT_ALIGNMENT),
    }
}

/// A value copied from a file (arrays kept as the file encoded them)
/// written in either byte order reads back as the same value.
fn copies_write_back_alike(key: &str, owned: &MetaValue, value: &Value<'_>) {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let mut writer = GgufWriter::new();
        writer.set_byte_order(order);
        // The writer may refuse what the parser accepts (its own keys).
        if writer.add_metadata(key, owned.clone()).is_err() {
            return;
        }
        let Ok(bytes) = writer.to_bytes() else {
            return;
        };
        let again = Gguf::from_bytes(&bytes).expect("the writer's file parses");
        let read = again.metadata().get(key).expect("the written key");
        assert!(same_value(&read, value), "{key:?} written {order:?}");
    }
}

/// Every typed getter on `key`: exactly the one of the value's type
/// succeeds, with the value.
fn typed_getters_agree_with_the_value(g: &Gguf<'_>, key: &str, value: &Value<'_>) {
    let md = g.metadata();
    let vt = value.value_type();
    macro_rules! getter {
        ($($fn:ident => $variant:ident),*) => {$(
            match md.$fn(key) {
                Ok(v) => {
                    assert_eq!(vt, ValueType::$variant, "{} succeeded on a {}", stringify!($fn), vt);
                    assert!(same_value(&Value::$variant(v), value));
                }
                Err(Error::WrongValueType { found, .. }) => {
                    assert_ne!(vt, ValueType::$variant);
                    assert_eq!(found, vt);
                }
                Err(e) => panic!("{} on {key:?}: unexpected error {e}", stringify!($fn)),
            }
        )*};
    }
    getter!(get_u8 => U8, get_i8 => I8, get_u16 => U16, get_i16 => I16, get_u32 => U32, get_i32 => I32,
        get_u64 => U64, get_i64 => I64, get_f32 => F32, get_f64 => F64, get_bool => Bool,
        get_string => String, get_array => Array);
    match md.get_str(key) {
        Ok(s) => assert_eq!(Some(s.as_bytes()), value.as_string().map(|s| s.as_bytes())),
        Err(Error::InvalidUtf8 { offset, .. }) => {
            let s = value.as_string().expect("InvalidUtf8 only for strings");
            assert_eq!(offset, s.offset());
            assert!(std::str::from_utf8(s.as_bytes()).is_err());
        }
        Err(Error::WrongValueType { .. }) => assert_ne!(vt, ValueType::String),
        Err(e) => panic!("get_str on {key:?}: unexpected error {e}"),
    }
    match md.get_uint(key) {
        Ok(v) => assert_eq!(Some(v), value.to_u64()),
        Err(Error::WrongValueType { .. }) => assert_eq!(value.to_u64(), None),
        Err(e) => panic!("get_uint on {key:?}: unexpected error {e}"),
    }
}

/// Decodes every part of `value`, recursively, checking the conversions.
fn walk_value(value: &Value<'_>, depth: usize, file_len: usize) {
    if let Some(u) = value.to_u64() {
        if let Ok(i) = i64::try_from(u) {
            assert_eq!(value.to_i64(), Some(i));
        }
    }
    if let Some(i) = value.to_i64() {
        if let Ok(u) = u64::try_from(i) {
            assert_eq!(value.to_u64(), Some(u));
        }
    }
    let is_number = !matches!(value, Value::String(_) | Value::Array(_) | Value::Bool(_));
    assert_eq!(value.to_f64().is_some(), is_number);
    match value {
        Value::String(s) => {
            assert_eq!(s.len(), s.as_bytes().len());
            assert_eq!(s.is_empty(), s.as_bytes().is_empty());
            assert!(s.offset() + s.len() as u64 <= file_len as u64);
            let lossy = s.to_string_lossy();
            match s.as_str() {
                Ok(text) => assert_eq!(text, lossy),
                Err(Error::InvalidUtf8 { offset, .. }) => assert_eq!(offset, s.offset()),
                Err(e) => panic!("as_str: unexpected error {e}"),
            }
            let _ = format!("{s:?}");
        }
        Value::Array(a) => walk_array(a, depth + 1, file_len),
        _ => {}
    }
    assert_eq!(
        value.as_string().is_some(),
        value.value_type() == ValueType::String
    );
    assert_eq!(
        value.as_array().is_some(),
        value.value_type() == ValueType::Array
    );
}

fn walk_array(a: &ArrayView<'_>, depth: usize, file_len: usize) {
    assert!(
        depth <= ggufmap::format::MAX_ARRAY_DEPTH,
        "array nested {depth} deep parsed"
    );
    let n = a.len();
    let et = a.element_type();
    assert_eq!(a.is_empty(), n == 0);
    assert!(a.offset() + a.raw_bytes().len() as u64 <= file_len as u64);
    if let Some(size) = et.fixed_size() {
        assert_eq!(a.raw_bytes().len() as u64, n * size as u64);
    }
    let iter = a.iter();
    assert_eq!(iter.len() as u64, n);
    let mut count = 0u64;
    let mut last = None;
    for (i, element) in iter.enumerate() {
        assert_eq!(element.value_type(), et);
        walk_value(&element, depth, file_len);
        if (i as u64) < MAX_INDEXED {
            let by_index = a.get(i as u64).expect("element in range");
            assert!(
                same_value(&by_index, &element),
                "get({i}) differs from iteration"
            );
        }
        count += 1;
        last = Some(element);
    }
    assert_eq!(count, n, "a validated array ended early");
    assert!(a.get(n).is_none());
    if let (Some(last), Some(index)) = (last, n.checked_sub(1)) {
        if index >= MAX_INDEXED {
            assert!(same_value(&a.get(index).expect("last element"), &last));
        }
    }
    match a.strings() {
        Ok(strings) => {
            assert_eq!(et, ValueType::String);
            assert_eq!(strings.len() as u64, n);
            assert_eq!(strings.count() as u64, n);
        }
        Err(Error::WrongValueType { .. }) => assert_ne!(et, ValueType::String),
        Err(e) => panic!("strings(): unexpected error {e}"),
    }
    let _ = format!("{a:?}");
}

/// Uses one tensor view.
pub fn tensor_views_agree(t: &TensorView<'_>) {
    let dims = t.dims();
    assert!(dims.len() <= MAX_DIMS);
    let shape: Vec<usize> = dims.iter().rev().map(|&d| d as usize).collect();
    assert_eq!(t.shape(), shape);
    let product = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    assert_eq!(product, Some(t.n_elements()));
    let dtype = t.dtype();
    let bytes = t.read_bytes().expect("a tensor's bytes read");
    assert_eq!(dtype.tensor_bytes(dims), Some(bytes.len() as u64));
    assert_eq!(t.info().n_bytes(), bytes.len() as u64);
    assert_eq!(
        t.byte_range().end - t.byte_range().start,
        bytes.len() as u64
    );
    assert_eq!(t.info().dtype(), dtype);
    assert_eq!(t.info().dims(), dims);
    assert_eq!(t.is_empty(), t.n_elements() == 0);
    assert_eq!(t.n_elements() % dtype.elements_per_block() as u64, 0);

    match dtype {
        GgmlType::F32 => plain_views_agree::<f32>(t),
        GgmlType::F16 => plain_views_agree::<f16>(t),
        GgmlType::BF16 => plain_views_agree::<bf16>(t),
        GgmlType::F64 => plain_views_agree::<f64>(t),
        GgmlType::I8 => plain_views_agree::<i8>(t),
        GgmlType::I16 => plain_views_agree::<i16>(t),
        GgmlType::I32 => plain_views_agree::<i32>(t),
        GgmlType::I64 => plain_views_agree::<i64>(t),
        _ => {
            assert!(matches!(
                t.as_slice::<f32>(),
                Err(Error::DtypeMismatch { .. })
            ));
            assert!(matches!(
                t.read_slice::<f32>(),
                Err(Error::DtypeMismatch { .. })
            ));
        }
    }

    if t.n_elements() <= MAX_DEQUANT_ELEMS {
        every_dequantization_path_agrees(t);
    } else {
        a_bounded_prefix_dequantizes(t);
    }
}

fn plain_views_agree<T: ggufmap::Element + PartialEq + std::fmt::Debug>(t: &TensorView<'_>) {
    let n = t.n_elements() as usize;
    let cow = t
        .read_slice::<T>()
        .expect("to_cow of the tensor's own type");
    assert_eq!(cow.len(), n);
    match t.as_slice::<T>() {
        Ok(slice) => {
            assert_eq!(slice.len(), n);
            // Single bytes have no byte order.
            assert!(t.byte_order().is_native() || std::mem::size_of::<T>() == 1);
            assert_eq!(
                bytemuck::cast_slice::<T, u8>(slice),
                bytemuck::cast_slice::<T, u8>(&cow)
            );
        }
        Err(Error::UnalignedInMemory { required, .. }) => {
            assert_eq!(required, std::mem::align_of::<T>())
        }
        Err(Error::ByteOrder { .. }) => assert!(!t.byte_order().is_native()),
        Err(Error::NotInMemory { .. }) => assert!(t.bytes().is_err()),
        Err(e) => panic!("as_slice of {:?}: unexpected error {e}", t.name()),
    }
    // Another plain type is a dtype mismatch.
    if T::DTYPE != GgmlType::I8 {
        assert!(matches!(
            t.as_slice::<i8>(),
            Err(Error::DtypeMismatch { .. })
        ));
    } else {
        assert!(matches!(
            t.as_slice::<f32>(),
            Err(Error::DtypeMismatch { .. })
        ));
    }
}

/// True for the errors dequantizing a parsed tensor may give: a type with
/// no dequantizer, quantized data in the other byte order.
fn allowed_dequant_error(e: &Error) -> bool {
    matches!(e, Error::Unsupported { .. })
}

fn every_dequantization_path_agrees(t: &TensorView<'_>) {
    let f32s = match t.dequantize_to_vec::<f32>(&DequantOptions::default()) {
        Ok(v) => v,
        Err(e) => {
            assert!(
                allowed_dequant_error(&e),
                "to_vec::<f32> of {:?}: {e}",
                t.name()
            );
            assert!(
                t.dequantize_to_vec::<f16>(&DequantOptions::default())
                    .is_err()
                    && t.dequantize_to_vec::<bf16>(&DequantOptions::default())
                        .is_err()
            );
            assert!(t
                .dequantize_to_vec::<f32>(&DequantOptions::default())
                .is_err());
            assert!(t.dequantize::<f32>(&DequantOptions::default()).is_err());
            let mut chunks = t.dequantize_chunks::<f32>(1024, &DequantOptions::default());
            if !t.is_empty() {
                assert!(matches!(chunks.next(), Some(Err(_))));
            }
            assert!(chunks.next().is_none(), "a stream goes on after an error");
            return;
        }
    };
    assert_eq!(f32s.len() as u64, t.n_elements());
    let cow = t
        .dequantize_to_vec::<f32>(&DequantOptions::default())
        .expect("to_f32_cow after to_vec");
    assert_eq!(bits32(&cow), bits32(&f32s));

    // Pooled, and streamed in chunks of about a third of the tensor.
    let pooled = t
        .dequantize::<f32>(&DequantOptions::default())
        .expect("pooled after to_vec");
    assert_eq!(bits32(&pooled), bits32(&f32s));
    let chunk_bytes = (f32s.len() / 3).max(1) * 2;
    let mut streamed: Vec<f16> = Vec::with_capacity(f32s.len());
    for chunk in t.dequantize_chunks::<f16>(chunk_bytes, &DequantOptions::default()) {
        let chunk = chunk.expect("a chunk after to_vec");
        assert_eq!(chunk.first_element, streamed.len());
        assert!(!chunk.data.is_empty());
        streamed.extend_from_slice(&chunk.data);
    }
    assert_eq!(
        bits16(&streamed),
        bits16(&from_f32::<f16>(&f32s)),
        "streamed chunks differ"
    );

    let mut sequential = vec![0f32; f32s.len()];
    t.dequantize_into(
        &mut sequential,
        &DequantOptions::new().parallelism(Parallelism::Sequential),
    )
    .expect("sequential after parallel");
    assert_eq!(
        bits32(&sequential),
        bits32(&f32s),
        "sequential and parallel results differ"
    );

    let f16s = t
        .dequantize_to_vec::<f16>(&DequantOptions::default())
        .expect("to_vec::<f16> after f32");
    assert_eq!(
        bits16(&f16s),
        bits16(&from_f32::<f16>(&f32s)),
        "f16 output is not the f32 output rounded"
    );
    let bf16s = t
        .dequantize_to_vec::<bf16>(&DequantOptions::default())
        .expect("to_vec::<bf16> after f32");
    assert_eq!(
        bits16(&bf16s),
        bits16(&from_f32::<bf16>(&f32s)),
        "bf16 output is not the f32 output rounded"
    );

    // A wrong output length is an error, not a panic.
    let mut longer = vec![0f32; f32s.len() + 1];
    assert!(matches!(
        t.dequantize_into(&mut longer, &DequantOptions::default()),
        Err(Error::LengthMismatch { .. })
    ));
}

fn a_bounded_prefix_dequantizes(t: &TensorView<'_>) {
    let dtype = t.dtype();
    let elems = dtype.elements_per_block();
    let blocks = (MAX_DEQUANT_ELEMS as usize / elems).max(1);
    let all = t.read_bytes().expect("a tensor's bytes read");
    let bytes = &all[..blocks * dtype.bytes_per_block()];
    let mut out = vec![0f32; blocks * elems];
    if let Err(e) = dequantize_bytes(dtype, bytes, t.byte_order(), &mut out) {
        assert!(allowed_dequant_error(&e), "prefix of {:?}: {e}", t.name());
        return;
    }
    let mut parallel = vec![0f32; out.len()];
    dequantize_parallel(
        dtype,
        bytes,
        t.byte_order(),
        &mut parallel,
        &Parallelism::default(),
    )
    .expect("parallel prefix after sequential");
    assert_eq!(bits32(&parallel), bits32(&out));
}

/// A rayon pool of two threads, built once.
fn two_threads() -> &'static Parallelism {
    static POOL: OnceLock<Parallelism> = OnceLock::new();
    POOL.get_or_init(|| Parallelism::threads(2).unwrap_or(Parallelism::Sequential))
}

/// Most blocks of a `dequantize` input used.
const MAX_BLOCKS: usize = 4096;

/// The `dequantize` target. Input: byte 0 picks the type (an index into
/// `GgmlType::ALL`), byte 1 holds flags (bit 0: big-endian; bits 1 and 5
/// both set: repeat the blocks until the output spans several parallel
/// chunks; bits 2-4: a misalignment of 1 to 8 bytes for the copy), the
/// rest is block bytes (cut to whole blocks).
pub fn dequantize(data: &[u8]) {
    let [type_byte, flags, rest @ ..] = data else {
        return;
    };
    let dtype = GgmlType::ALL[usize::from(*type_byte) % GgmlType::ALL.len()];
    let order = order(flags & 1 != 0);
    let block_bytes = dtype.bytes_per_block();
    let block_elems = dtype.elements_per_block();
    let n_blocks = (rest.len() / block_bytes).min(MAX_BLOCKS);
    let mut bytes = rest[..n_blocks * block_bytes].to_vec();
    if flags & 0x22 == 0x22 && n_blocks > 0 {
        // Two chunks of f16 output (the larger chunk in elements), three of
        // f32, the last one partial.
        let want_elems = CHUNK_OUTPUT_BYTES / 2 + 1;
        let want_blocks = want_elems.div_ceil(block_elems);
        bytes = bytes
            .iter()
            .copied()
            .cycle()
            .take(want_blocks * block_bytes)
            .collect();
    }
    let n = bytes.len() / block_bytes * block_elems;

    let mut f32s = vec![0f32; n];
    let supported = match dequantize_bytes(dtype, &bytes, order, &mut f32s) {
        Ok(()) => true,
        Err(Error::Unsupported { .. }) => false,
        Err(e) => panic!("{dtype} ({n} elements): {e}"),
    };
    if !supported {
        assert!(!dtype.is_plain(), "plain type {dtype} unsupported");
    }

    let mut f16s = vec![f16::ZERO; n];
    let mut bf16s = vec![bf16::ZERO; n];
    assert_eq!(
        dequantize_bytes(dtype, &bytes, order, &mut f16s).is_ok(),
        supported
    );
    assert_eq!(
        dequantize_bytes(dtype, &bytes, order, &mut bf16s).is_ok(),
        supported
    );
    if supported {
        assert_eq!(
            bits16(&f16s),
            bits16(&from_f32::<f16>(&f32s)),
            "{dtype}: f16 is not f32 rounded"
        );
        assert_eq!(
            bits16(&bf16s),
            bits16(&from_f32::<bf16>(&f32s)),
            "{dtype}: bf16 is not f32 rounded"
        );
    }

    // From misaligned memory: the same values.
    let shift = 1 + usize::from((flags >> 2) & 7);
    let mut shifted = vec![0u8; bytes.len() + shift];
    shifted[shift..].copy_from_slice(&bytes);
    let mut from_shifted = vec![0f32; n];
    let r = dequantize_bytes(dtype, &shifted[shift..], order, &mut from_shifted);
    assert_eq!(r.is_ok(), supported);
    if supported {
        assert_eq!(
            bits32(&from_shifted),
            bits32(&f32s),
            "{dtype}: misaligned input decodes differently"
        );
    }

    // On one thread, the global pool and a pool of two: the same values.
    for parallelism in [
        &Parallelism::Sequential,
        &Parallelism::default(),
        two_threads(),
    ] {
        let mut out = vec![0f32; n];
        let r = dequantize_parallel(dtype, &bytes, order, &mut out, parallelism);
        assert_eq!(r.is_ok(), supported, "{dtype} on {parallelism:?}: {r:?}");
        if supported {
            assert_eq!(
                bits32(&out),
                bits32(&f32s),
                "{dtype}: {parallelism:?} differs from the kernel"
            );
        }
        let mut halves = vec![f16::ZERO; n];
        if dequantize_parallel(dtype, &bytes, order, &mut halves, parallelism).is_ok() {
            assert_eq!(bits16(&halves), bits16(&f16s));
        }
    }

    // Wrong lengths are errors (an unsupported type may say so first).
    let wrong_length = |r: ggufmap::Result<()>| match r {
        Err(Error::LengthMismatch { .. }) => true,
        Err(Error::Unsupported { .. }) => !supported,
        _ => false,
    };
    let mut longer = vec![0f32; n + 1];
    assert!(wrong_length(dequantize_bytes(
        dtype,
        &bytes,
        order,
        &mut longer
    )));
    assert!(wrong_length(dequantize_parallel(
        dtype,
        &bytes,
        order,
        &mut longer,
        two_threads()
    )));
    if block_bytes > 1 {
        let mut ragged = bytes.clone();
        ragged.push(0);
        let mut out = vec![0f32; n];
        assert!(wrong_length(dequantize_bytes(
            dtype, &ragged, order, &mut out
        )));
        assert!(wrong_length(dequantize_parallel(
            dtype,
            &ragged,
            order,
            &mut out,
            two_threads()
        )));
    }

    // Through a TensorView of a one-tensor file.
    let mut writer = GgufWriter::new();
    writer.set_byte_order(order);
    writer
        .add_tensor("t", dtype, &[n as u64], &bytes[..])
        .expect("whole blocks are a valid tensor");
    let file = writer.to_bytes().expect("a one-tensor file");
    let g = Gguf::from_bytes(&file).expect("the writer's file parses");
    let t = g.tensor("t").expect("the tensor");
    assert_eq!(t.bytes().ok(), Some(&bytes[..]));
    match t.dequantize_to_vec::<f32>(&DequantOptions::default()) {
        Ok(v) => {
            assert!(supported);
            assert_eq!(
                bits32(&v),
                bits32(&f32s),
                "{dtype}: TensorView differs from the kernel"
            );
        }
        Err(e) => assert!(
            !supported && matches!(e, Error::Unsupported { .. }),
            "{dtype}: {e}"
        ),
    }
    let mut out = vec![0f32; n];
    assert_eq!(
        t.dequantize_into(
            &mut out,
            &DequantOptions::new().parallelism(two_threads().clone())
        )
        .is_ok(),
        supported
    );
    if n as u64 <= MAX_DEQUANT_ELEMS {
        model_hangs_together(&g);
    }
}

/// `src` converted the way [`Output::from_f32_slice`] documents it.
pub fn from_f32<O: Output>(src: &[f32]) -> Vec<O> {
    let mut out = vec![O::default(); src.len()];
    O::from_f32_slice(src, &mut out);
    out
}

/// The bits of f32 values, so NaNs compare too.
pub fn bits32(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// The bits of 16-bit values.
pub fn bits16<T: bytemuck::Pod>(v: &[T]) -> Vec<u16> {
    bytemuck::cast_slice::<T, u8>(v)
        .chunks_exact(2)
        .map(|b| u16::from_ne_bytes([b[0], b[1]]))
        .collect()
}

/// Two values equal bit for bit (floats by their bits, so NaN equals NaN).
pub fn same_value(a: &Value<'_>, b: &Value<'_>) -> bool {
    a.identical(b)
}

/// An owned value equals a borrowed one bit for bit.
pub fn same_meta(m: &MetaValue, v: &Value<'_>) -> bool {
    match (m, v) {
        (MetaValue::U8(x), Value::U8(y)) => x == y,
        (MetaValue::I8(x), Value::I8(y)) => x == y,
        (MetaValue::U16(x), Value::U16(y)) => x == y,
        (MetaValue::I16(x), Value::I16(y)) => x == y,
        (MetaValue::U32(x), Value::U32(y)) => x == y,
        (MetaValue::I32(x), Value::I32(y)) => x == y,
        (MetaValue::U64(x), Value::U64(y)) => x == y,
        (MetaValue::I64(x), Value::I64(y)) => x == y,
        (MetaValue::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (MetaValue::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        (MetaValue::Bool(x), Value::Bool(y)) => x == y,
        (MetaValue::String(x), Value::String(y)) => x[..] == *y.as_bytes(),
        (MetaValue::Array(x), Value::Array(y)) => {
            x.element_type() == y.element_type()
                && x.items().len() as u64 == y.len()
                && x.items()
                    .iter()
                    .zip(y.iter())
                    .all(|(p, q)| same_meta(p, &q))
        }
        _ => false,
    }
}

/// The byte order of a file, from a flag.
pub fn order(big_endian: bool) -> ByteOrder {
    if big_endian {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    }
}
