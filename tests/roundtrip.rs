//! Writer -> reader round trips (proptest): every value type, nested arrays,
//! unicode keys, non-UTF-8 strings, tensors of plain and quantized types,
//! alignments 1/32/64, both byte orders, and the three ways to open a file;
//! plus the typed getters, alignment and byte-order errors of the accessors.

use std::borrow::Cow;
use std::collections::BTreeMap;

use ggufmap::format::{ArrayView, ByteOrder, Value, ValueType};
use ggufmap::{
    DequantOptions, Element, Error, GgmlType, Gguf, GgufWriter, MetaArray, MetaValue, WriteRefusal,
};
use half::{bf16, f16};
use proptest::prelude::*;
use proptest::sample::select;

const ALL_VALUE_TYPES: [ValueType; 13] = [
    ValueType::U8,
    ValueType::I8,
    ValueType::U16,
    ValueType::I16,
    ValueType::U32,
    ValueType::I32,
    ValueType::F32,
    ValueType::Bool,
    ValueType::String,
    ValueType::Array,
    ValueType::U64,
    ValueType::I64,
    ValueType::F64,
];

/// Deepest array made: an array at depth 3 holds no arrays.
const MAX_DEPTH: u32 = 3;

fn string_bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        "\\PC{0,12}".prop_map(String::into_bytes),
        // Arbitrary bytes: mostly not UTF-8.
        prop::collection::vec(any::<u8>(), 0..12),
    ]
    .boxed()
}

/// A float from any bit pattern (NaNs with payloads included).
fn f32_bits() -> impl Strategy<Value = f32> {
    prop_oneof![any::<u32>().prop_map(f32::from_bits), any::<f32>()]
}

fn f64_bits() -> impl Strategy<Value = f64> {
    prop_oneof![any::<u64>().prop_map(f64::from_bits), any::<f64>()]
}

/// A value of type `t`; `depth` is the depth an array made here would have.
fn value_of(t: ValueType, depth: u32) -> BoxedStrategy<MetaValue> {
    match t {
        ValueType::U8 => any::<u8>().prop_map(MetaValue::U8).boxed(),
        ValueType::I8 => any::<i8>().prop_map(MetaValue::I8).boxed(),
        ValueType::U16 => any::<u16>().prop_map(MetaValue::U16).boxed(),
        ValueType::I16 => any::<i16>().prop_map(MetaValue::I16).boxed(),
        ValueType::U32 => any::<u32>().prop_map(MetaValue::U32).boxed(),
        ValueType::I32 => any::<i32>().prop_map(MetaValue::I32).boxed(),
        ValueType::F32 => f32_bits().prop_map(MetaValue::F32).boxed(),
        ValueType::Bool => any::<bool>().prop_map(MetaValue::Bool).boxed(),
        ValueType::String => string_bytes().prop_map(MetaValue::String).boxed(),
        ValueType::U64 => any::<u64>().prop_map(MetaValue::U64).boxed(),
        ValueType::I64 => any::<i64>().prop_map(MetaValue::I64).boxed(),
        ValueType::F64 => f64_bits().prop_map(MetaValue::F64).boxed(),
        ValueType::Array => array_of_depth(depth),
        other => panic!("no strategy for {other}"),
    }
}

fn array_of_depth(depth: u32) -> BoxedStrategy<MetaValue> {
    let elem_types: Vec<ValueType> = ALL_VALUE_TYPES
        .iter()
        .copied()
        .filter(|&t| t != ValueType::Array || depth < MAX_DEPTH)
        .collect();
    select(elem_types)
        .prop_flat_map(move |elem| {
            prop::collection::vec(value_of(elem, depth + 1), 0..6)
                .prop_map(move |items| MetaValue::Array(MetaArray::new(elem, items).unwrap()))
        })
        .boxed()
}

fn any_value() -> BoxedStrategy<MetaValue> {
    select(ALL_VALUE_TYPES.to_vec())
        .prop_flat_map(|t| value_of(t, 1))
        .boxed()
}

/// Asserts a value read back equals the one written (floats by bits,
/// strings by bytes), exercising `ArrayView::get` on every element.
fn assert_same(written: &MetaValue, read: &Value<'_>) {
    match (written, read) {
        (MetaValue::U8(a), Value::U8(b)) => assert_eq!(a, b),
        (MetaValue::I8(a), Value::I8(b)) => assert_eq!(a, b),
        (MetaValue::U16(a), Value::U16(b)) => assert_eq!(a, b),
        (MetaValue::I16(a), Value::I16(b)) => assert_eq!(a, b),
        (MetaValue::U32(a), Value::U32(b)) => assert_eq!(a, b),
        (MetaValue::I32(a), Value::I32(b)) => assert_eq!(a, b),
        (MetaValue::U64(a), Value::U64(b)) => assert_eq!(a, b),
        (MetaValue::I64(a), Value::I64(b)) => assert_eq!(a, b),
        (MetaValue::Bool(a), Value::Bool(b)) => assert_eq!(a, b),
        (MetaValue::F32(a), Value::F32(b)) => assert_eq!(a.to_bits(), b.to_bits()),
        (MetaValue::F64(a), Value::F64(b)) => assert_eq!(a.to_bits(), b.to_bits()),
        (MetaValue::String(a), Value::String(b)) => {
            assert_eq!(a.as_slice(), b.as_bytes());
            assert_eq!(a.len(), b.len());
            match std::str::from_utf8(a) {
                Ok(s) => assert_eq!(b.as_str().unwrap(), s),
                Err(_) => {
                    let offset = b.offset();
                    assert!(
                        matches!(b.as_str(), Err(Error::InvalidUtf8 { offset: o, .. }) if o == offset)
                    );
                }
            }
        }
        (MetaValue::Array(a), Value::Array(b)) => assert_same_array(a, b),
        (w, r) => panic!("wrote {w:?}, read {r:?}"),
    }
}

fn assert_same_array(written: &MetaArray, read: &ArrayView<'_>) {
    assert_eq!(written.element_type(), read.element_type());
    assert_eq!(written.items().len() as u64, read.len());
    assert_eq!(read.iter().len(), written.items().len());
    for (i, (w, r)) in written.items().iter().zip(read.iter()).enumerate() {
        assert_same(w, &r);
        assert_same(w, &read.get(i as u64).expect("get in range"));
    }
    assert!(read.get(read.len()).is_none());
    assert!(read.get(u64::MAX).is_none());
    if read.element_type() == ValueType::String {
        let strings: Vec<_> = read.strings().unwrap().collect();
        assert_eq!(strings.len(), written.items().len());
    } else {
        assert!(matches!(
            read.strings(),
            Err(Error::WrongValueType {
                expected: "array of string",
                ..
            })
        ));
    }
}

const PLAIN: [GgmlType; 8] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::F64,
    GgmlType::I8,
    GgmlType::I16,
    GgmlType::I32,
    GgmlType::I64,
];

const QUANTIZED: [GgmlType; 8] = [
    GgmlType::Q4_0,
    GgmlType::Q8_0,
    GgmlType::Q4_K,
    GgmlType::Q6_K,
    GgmlType::IQ4_NL,
    GgmlType::IQ2_XXS,
    GgmlType::TQ1_0,
    GgmlType::MXFP4,
];

#[derive(Clone, Debug)]
struct TensorSpec {
    dtype: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

fn tensor_spec() -> impl Strategy<Value = TensorSpec> {
    let dtypes: Vec<GgmlType> = PLAIN.iter().chain(QUANTIZED.iter()).copied().collect();
    (
        select(dtypes),
        0usize..=4,
        0u64..4,
        prop::collection::vec(1u64..4, 3),
    )
        .prop_flat_map(|(dtype, n_dims, blocks, rest)| {
            let mut dims = Vec::new();
            if n_dims > 0 {
                dims.push(blocks * dtype.elements_per_block() as u64);
                dims.extend(rest.iter().take(n_dims - 1));
            }
            if n_dims == 0 && !dtype.is_plain() {
                // A quantized scalar is not whole blocks: make it one row.
                dims.push(dtype.elements_per_block() as u64);
            }
            let len = dtype.tensor_bytes(&dims).unwrap() as usize;
            prop::collection::vec(any::<u8>(), len).prop_map(move |data| TensorSpec {
                dtype,
                dims: dims.clone(),
                data,
            })
        })
}

#[derive(Clone, Debug)]
struct FileSpec {
    metadata: BTreeMap<String, MetaValue>,
    tensors: Vec<TensorSpec>,
    alignment: u32,
    order: ByteOrder,
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    (
        prop::collection::btree_map("\\PC{0,16}", any_value(), 0..10),
        prop::collection::vec(tensor_spec(), 0..6),
        select(vec![1u32, 32, 64]),
        select(vec![ByteOrder::Little, ByteOrder::Big]),
    )
        .prop_map(|(mut metadata, tensors, alignment, order)| {
            metadata.remove("general.alignment");
            FileSpec {
                metadata,
                tensors,
                alignment,
                order,
            }
        })
}

fn write(spec: &FileSpec) -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set_alignment(spec.alignment).unwrap();
    w.set_byte_order(spec.order);
    for (key, value) in &spec.metadata {
        w.add_metadata(key.clone(), value.clone()).unwrap();
    }
    for (i, t) in spec.tensors.iter().enumerate() {
        w.add_tensor(format!("tensor.{i}"), t.dtype, &t.dims, t.data.clone())
            .unwrap();
    }
    w.to_bytes().unwrap()
}

/// The element values of `data` (in `order`) as native-order bytes.
fn native_bytes(data: &[u8], size: usize, order: ByteOrder) -> Vec<u8> {
    let mut out = data.to_vec();
    if !order.is_native() {
        out.chunks_exact_mut(size).for_each(<[u8]>::reverse);
    }
    out
}

fn check_plain<T: Element>(file: &Gguf<'_>, name: &str, data: &[u8]) {
    let view = file.tensor(name).unwrap();
    let size = std::mem::size_of::<T>();
    let expected = native_bytes(data, size, file.byte_order());
    let cow: Cow<'_, [T]> = view.read_slice::<T>().unwrap();
    assert_eq!(
        bytemuck::cast_slice::<T, u8>(&cow),
        expected.as_slice(),
        "{name}"
    );
    match view.as_slice::<T>() {
        Ok(slice) => {
            assert!(file.byte_order().is_native() || size == 1);
            assert_eq!(bytemuck::cast_slice::<T, u8>(slice), expected.as_slice());
            assert!(matches!(cow, Cow::Borrowed(_)));
        }
        Err(Error::ByteOrder { tensor }) => {
            assert!(!file.byte_order().is_native() && size > 1);
            assert_eq!(tensor, name);
        }
        Err(Error::UnalignedInMemory {
            tensor,
            required,
            offset,
        }) => {
            assert_eq!(tensor, name);
            assert_eq!(required, std::mem::align_of::<T>());
            assert_eq!(offset, view.byte_range().start);
            assert_ne!(view.bytes().unwrap().as_ptr() as usize % required, 0);
        }
        Err(Error::NotInMemory { tensor }) => {
            assert!(file.is_streamed());
            assert_eq!(tensor, name);
        }
        Err(e) => panic!("{name}: {e}"),
    }
}

fn check_file(file: &Gguf<'_>, spec: &FileSpec) {
    assert_eq!(file.version(), 3);
    assert_eq!(file.byte_order(), spec.order);
    assert_eq!(file.alignment(), spec.alignment);
    let metadata = file.metadata();
    let has_alignment_key = spec.alignment != 32;
    assert_eq!(
        metadata.len(),
        spec.metadata.len() + usize::from(has_alignment_key)
    );
    if has_alignment_key {
        assert_eq!(
            metadata.get_u32("general.alignment").unwrap(),
            spec.alignment
        );
    } else {
        assert!(!metadata.contains("general.alignment"));
    }
    for (key, value) in &spec.metadata {
        let read = metadata
            .get(key)
            .unwrap_or_else(|| panic!("key {key:?} missing"));
        assert_same(value, &read);
        assert_eq!(
            metadata.entry(key).unwrap().value_type(),
            value.value_type()
        );
    }
    // Iteration is in file order: the alignment entry first, then the keys in
    // the order they were added.
    let keys: Vec<&str> = metadata
        .iter()
        .map(|(k, _)| k)
        .filter(|k| *k != "general.alignment")
        .collect();
    let expected: Vec<&str> = spec.metadata.keys().map(String::as_str).collect();
    assert_eq!(keys, expected);

    assert_eq!(file.tensor_count(), spec.tensors.len());
    for (i, (view, t)) in file.tensors().zip(&spec.tensors).enumerate() {
        let name = format!("tensor.{i}");
        assert_eq!(view.name(), name);
        assert_eq!(view.dtype(), t.dtype);
        assert_eq!(view.dims(), t.dims.as_slice());
        assert_eq!(&view.read_bytes().unwrap()[..], t.data.as_slice());
        assert_eq!(view.info().data_offset() % u64::from(spec.alignment), 0);
        assert_eq!(
            view.byte_range().start - file.data_start() as u64,
            view.info().data_offset()
        );
        assert_eq!(file.tensor(&name).unwrap().byte_range(), view.byte_range());
        match t.dtype {
            GgmlType::F32 => check_plain::<f32>(file, &name, &t.data),
            GgmlType::F16 => check_plain::<f16>(file, &name, &t.data),
            GgmlType::BF16 => check_plain::<bf16>(file, &name, &t.data),
            GgmlType::F64 => check_plain::<f64>(file, &name, &t.data),
            GgmlType::I8 => check_plain::<i8>(file, &name, &t.data),
            GgmlType::I16 => check_plain::<i16>(file, &name, &t.data),
            GgmlType::I32 => check_plain::<i32>(file, &name, &t.data),
            GgmlType::I64 => check_plain::<i64>(file, &name, &t.data),
            _ => {}
        }
    }
    assert!(
        matches!(file.tensor("no such tensor"), Err(Error::TensorNotFound { name }) if name == "no such tensor")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn writer_reader_round_trip(spec in file_spec()) {
        let bytes = write(&spec);
        let borrowed = Gguf::from_bytes(&bytes).unwrap();
        check_file(&borrowed, &spec);

        let read = Gguf::read(std::io::Cursor::new(&bytes)).unwrap();
        check_file(&read, &spec);
        assert_eq!(read.as_bytes(), Some(bytes.as_slice()));

        let streamed = Gguf::from_reader(std::io::Cursor::new(bytes.clone())).unwrap();
        assert!(streamed.is_streamed());
        check_file(&streamed, &spec);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roundtrip.gguf");
        std::fs::write(&path, &bytes).unwrap();
        let opened = Gguf::open(&path).unwrap();
        assert!(opened.is_mapped() || bytes.is_empty());
        assert_eq!(opened.path(), Some(path.as_path()));
        check_file(&opened, &spec);
        assert_eq!(opened.data_start(), borrowed.data_start());

        // Re-encoding what was read gives the same bytes.
        let mut again = GgufWriter::new();
        again.set_alignment(read.alignment()).unwrap();
        again.set_byte_order(read.byte_order());
        for (key, value) in read.metadata().iter() {
            if key != "general.alignment" {
                again.add_metadata(key, MetaValue::from_value(&value)).unwrap();
            }
        }
        for t in read.tensors() {
            again.add_tensor(t.name(), t.dtype(), t.dims(), t.bytes().unwrap()).unwrap();
        }
        prop_assert_eq!(again.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn every_single_value_round_trips(value in any_value(), big_endian in any::<bool>()) {
        let mut w = GgufWriter::new();
        w.set_byte_order(if big_endian { ByteOrder::Big } else { ByteOrder::Little });
        w.add_metadata("v", value.clone()).unwrap();
        let bytes = w.to_bytes().unwrap();
        let file = Gguf::from_bytes(&bytes).unwrap();
        assert_same(&value, &file.metadata().get("v").unwrap());
    }
}

#[test]
fn big_endian_f32_tensor_is_byte_swapped_by_to_cow() {
    let values = [
        1.0f32,
        -2.5,
        f32::MIN_POSITIVE,
        1e30,
        f32::from_bits(0x7FC0_1234),
    ];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
    let halves = [f16::from_f32(0.5), f16::from_f32(-3.0)];
    let half_data: Vec<u8> = halves.iter().flat_map(|v| v.to_be_bytes()).collect();
    let ints = [i64::MIN, 1, -1];
    let int_data: Vec<u8> = ints.iter().flat_map(|v| v.to_be_bytes()).collect();
    let mut w = GgufWriter::new();
    w.set_byte_order(ByteOrder::Big);
    w.add_metadata("answer", 42u32).unwrap();
    w.add_metadata("list", vec![1.5f64, -2.0]).unwrap();
    w.add_tensor("w", GgmlType::F32, &[5], data).unwrap();
    w.add_tensor("h", GgmlType::F16, &[2], half_data).unwrap();
    w.add_tensor("i", GgmlType::I64, &[3], int_data).unwrap();
    w.add_tensor("b", GgmlType::I8, &[3], vec![1u8, 0x80, 0x7F])
        .unwrap();
    let bytes = w.to_bytes().unwrap();
    assert_eq!(&bytes[4..8], &[0, 0, 0, 3], "version is written big-endian");

    let file = Gguf::read(bytes.as_slice()).unwrap();
    assert_eq!(file.byte_order(), ByteOrder::Big);
    assert_eq!(file.metadata().get_u32("answer").unwrap(), 42);
    let list: Vec<f64> = file
        .metadata()
        .get_array("list")
        .unwrap()
        .iter()
        .map(|v| v.to_f64().unwrap())
        .collect();
    assert_eq!(list, [1.5, -2.0]);

    let w = file.tensor("w").unwrap();
    assert!(matches!(w.as_slice::<f32>(), Err(Error::ByteOrder { tensor }) if tensor == "w"));
    let cow = w.read_slice::<f32>().unwrap();
    assert!(matches!(cow, Cow::Owned(_)));
    let bits: Vec<u32> = cow.iter().map(|v| v.to_bits()).collect();
    assert_eq!(bits, values.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    let h = file.tensor("h").unwrap();
    assert!(matches!(h.as_slice::<f16>(), Err(Error::ByteOrder { .. })));
    assert_eq!(&*h.read_slice::<f16>().unwrap(), &halves);
    assert_eq!(
        &*file.tensor("i").unwrap().read_slice::<i64>().unwrap(),
        &ints
    );
    // One-byte elements have no byte order: viewed in place.
    assert_eq!(
        file.tensor("b").unwrap().as_slice::<i8>().unwrap(),
        &[1, -128, 127]
    );
}

#[test]
fn misaligned_data_with_alignment_1_falls_back_to_a_copy() {
    let values = [1.0f32, 2.0, 3.0];
    let mut misaligned = 0;
    // Pad a key's value so the tensor data starts at every offset mod 4.
    for pad in 0..4 {
        let mut w = GgufWriter::new();
        w.set_alignment(1).unwrap();
        w.add_metadata("pad", "x".repeat(pad)).unwrap();
        w.add_tensor(
            "w",
            GgmlType::F32,
            &[3],
            bytemuck::cast_slice(&values).to_vec(),
        )
        .unwrap();
        let bytes = w.to_bytes().unwrap();
        // `read` copies into 64-byte-aligned memory: address parity is offset parity.
        let file = Gguf::read(bytes.as_slice()).unwrap();
        assert_eq!(file.alignment(), 1);
        assert_eq!(file.metadata().get_u32("general.alignment").unwrap(), 1);
        let t = file.tensor("w").unwrap();
        let start = t.byte_range().start;
        assert_eq!(
            start,
            file.data_start() as u64,
            "no padding with alignment 1"
        );
        if start % 4 == 0 {
            assert_eq!(t.as_slice::<f32>().unwrap(), &values);
            continue;
        }
        assert!(matches!(
            t.as_slice::<f32>(),
            Err(Error::UnalignedInMemory { tensor, required: 4, offset }) if tensor == "w" && offset == start
        ));
        let cow = t.read_slice::<f32>().unwrap();
        assert!(matches!(cow, Cow::Owned(_)));
        assert_eq!(&*cow, &values);
        assert_eq!(
            &*t.dequantize_to_vec::<f32>(&DequantOptions::default())
                .unwrap(),
            &values
        );
        misaligned += 1;
    }
    assert_eq!(misaligned, 3);
}

#[test]
fn alignment_appears_in_metadata_only_when_not_32() {
    for alignment in [1u32, 2, 16, 32, 64, 4096] {
        let mut w = GgufWriter::new();
        w.set_alignment(alignment).unwrap();
        w.add_tensor("a", GgmlType::F32, &[3], vec![0u8; 12])
            .unwrap();
        w.add_tensor("b", GgmlType::F32, &[1], vec![0u8; 4])
            .unwrap();
        let bytes = w.to_bytes().unwrap();
        let file = Gguf::from_bytes(&bytes).unwrap();
        assert_eq!(file.alignment(), alignment);
        assert_eq!(
            file.metadata().contains("general.alignment"),
            alignment != 32
        );
        assert_eq!(file.data_start() % alignment as usize, 0);
        let b = file.tensor("b").unwrap();
        assert_eq!(
            b.info().data_offset(),
            12u64.div_ceil(u64::from(alignment)) * u64::from(alignment)
        );
    }
    let mut w = GgufWriter::new();
    let not_power = |r| {
        matches!(
            r,
            Err(Error::Write {
                reason: WriteRefusal::AlignmentNotPowerOfTwo,
                ..
            })
        )
    };
    assert!(not_power(w.set_alignment(48).map(drop)));
    assert!(not_power(w.set_alignment(0).map(drop)));
    assert!(matches!(
        w.add_metadata("general.alignment", 64u32),
        Err(Error::Write {
            reason: WriteRefusal::AlignmentKey,
            ..
        })
    ));
}

fn getter_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("u8", 8u8).unwrap();
    w.add_metadata("u16", 16u16).unwrap();
    w.add_metadata("u32", 32u32).unwrap();
    w.add_metadata("u64", u64::MAX).unwrap();
    w.add_metadata("i8", 8i8).unwrap();
    w.add_metadata("i16.neg", -16i16).unwrap();
    w.add_metadata("i32.neg", -32i32).unwrap();
    w.add_metadata("i64", 64i64).unwrap();
    w.add_metadata("f32", 0.5f32).unwrap();
    w.add_metadata("f64", 0.25f64).unwrap();
    w.add_metadata("bool", false).unwrap();
    w.add_metadata("str", "héllo").unwrap();
    w.add_metadata("bytes", MetaValue::String(vec![0xC3, 0x28]))
        .unwrap();
    w.add_metadata("ints", vec![10u32, 20, 30, 40]).unwrap();
    w.add_metadata("words", MetaValue::strings(["", "ā", "bb", "ccc"]))
        .unwrap();
    let nested = MetaArray::new(
        ValueType::Array,
        vec![
            MetaValue::from(vec![1i16, 2]),
            MetaValue::strings(["x"]),
            MetaValue::from(Vec::<u8>::new()),
        ],
    )
    .unwrap();
    w.add_metadata("nested", nested).unwrap();
    w.add_metadata("", "empty key").unwrap();
    w.add_metadata("ключ.🙂", true).unwrap();
    w.to_bytes().unwrap()
}

#[test]
fn typed_getters_and_their_errors() {
    let bytes = getter_file();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let m = file.metadata();
    assert_eq!(m.get_u8("u8").unwrap(), 8);
    assert_eq!(m.get_u16("u16").unwrap(), 16);
    assert_eq!(m.get_u32("u32").unwrap(), 32);
    assert_eq!(m.get_u64("u64").unwrap(), u64::MAX);
    assert_eq!(m.get_i8("i8").unwrap(), 8);
    assert_eq!(m.get_i16("i16.neg").unwrap(), -16);
    assert_eq!(m.get_i32("i32.neg").unwrap(), -32);
    assert_eq!(m.get_i64("i64").unwrap(), 64);
    assert_eq!(m.get_f32("f32").unwrap(), 0.5);
    assert_eq!(m.get_f64("f64").unwrap(), 0.25);
    assert!(!m.get_bool("bool").unwrap());
    assert_eq!(m.get_str("str").unwrap(), "héllo");
    assert_eq!(m.get_str("").unwrap(), "empty key");
    assert!(m.get_bool("ключ.🙂").unwrap());

    assert!(matches!(m.get_u32("missing"), Err(Error::KeyNotFound { key }) if key == "missing"));
    assert!(matches!(
        m.get_str("missing"),
        Err(Error::KeyNotFound { .. })
    ));
    assert!(matches!(
        m.get_u32("str"),
        Err(Error::WrongValueType { key, expected: "u32", found: ValueType::String }) if key == "str"
    ));
    assert!(matches!(
        m.get_u64("u32"),
        Err(Error::WrongValueType { key, expected: "u64", found: ValueType::U32 }) if key == "u32"
    ));
    assert!(matches!(
        m.get_str("ints"),
        Err(Error::WrongValueType {
            expected: "string",
            found: ValueType::Array,
            ..
        })
    ));
    assert!(matches!(
        m.get_array("f64"),
        Err(Error::WrongValueType {
            expected: "array",
            found: ValueType::F64,
            ..
        })
    ));
    let e = m.get_f32("f64").unwrap_err();
    assert_eq!(
        e.to_string(),
        "metadata key \"f64\" has type f64, expected f32"
    );

    let raw = m.get_string("bytes").unwrap();
    assert_eq!(raw.as_bytes(), &[0xC3, 0x28]);
    assert_eq!(raw.to_string_lossy(), "\u{FFFD}(");
    let at = raw.offset();
    assert!(matches!(m.get_str("bytes"), Err(Error::InvalidUtf8 { offset, .. }) if offset == at));
    assert_eq!(&bytes[at as usize..at as usize + 2], &[0xC3, 0x28]);
}

#[test]
fn get_uint_widens_every_integer_width() {
    let bytes = getter_file();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let m = file.metadata();
    assert_eq!(m.get_uint("u8").unwrap(), 8);
    assert_eq!(m.get_uint("u16").unwrap(), 16);
    assert_eq!(m.get_uint("u32").unwrap(), 32);
    assert_eq!(m.get_uint("u64").unwrap(), u64::MAX);
    assert_eq!(m.get_uint("i8").unwrap(), 8);
    assert_eq!(m.get_uint("i64").unwrap(), 64);
    for (key, found) in [
        ("i16.neg", ValueType::I16),
        ("i32.neg", ValueType::I32),
        ("f32", ValueType::F32),
        ("str", ValueType::String),
        ("bool", ValueType::Bool),
    ] {
        assert!(
            matches!(m.get_uint(key), Err(Error::WrongValueType { key: k, expected: "non-negative integer", found: f }) if k == key && f == found),
            "{key}"
        );
    }
    assert!(matches!(
        m.get_uint("missing"),
        Err(Error::KeyNotFound { .. })
    ));
}

#[test]
fn array_view_get_for_fixed_and_variable_size_elements() {
    let bytes = getter_file();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let m = file.metadata();

    let ints = m.get_array("ints").unwrap();
    assert_eq!(ints.element_type(), ValueType::U32);
    assert_eq!(ints.len(), 4);
    assert_eq!(ints.raw_bytes().len(), 16);
    assert_eq!(ints.get(0), Some(Value::U32(10)));
    assert_eq!(ints.get(3), Some(Value::U32(40)));
    assert_eq!(ints.get(4), None);
    assert_eq!(ints.get(u64::MAX), None);

    let words = m.get_array("words").unwrap();
    assert_eq!(words.element_type(), ValueType::String);
    let expected = ["", "ā", "bb", "ccc"];
    for (i, w) in expected.iter().enumerate() {
        let got = words.get(i as u64).unwrap().as_string().unwrap();
        assert_eq!(got.as_str().unwrap(), *w);
        assert_eq!(got, *w);
    }
    assert_eq!(words.get(4), None);
    let collected: Vec<&str> = words
        .strings()
        .unwrap()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(collected, expected);
    assert_eq!(words.strings().unwrap().len(), 4);

    let nested = m.get_array("nested").unwrap();
    assert_eq!(nested.element_type(), ValueType::Array);
    assert_eq!(nested.len(), 3);
    let first = nested.get(0).unwrap().as_array().unwrap();
    assert_eq!(first.element_type(), ValueType::I16);
    assert_eq!(first.get(1), Some(Value::I16(2)));
    let second = nested.get(1).unwrap().as_array().unwrap();
    assert_eq!(second.get(0).unwrap().as_string().unwrap(), "x");
    let third = nested.get(2).unwrap().as_array().unwrap();
    assert!(third.is_empty());
    assert_eq!(third.element_type(), ValueType::U8);
    assert_eq!(nested.get(3), None);
}

#[test]
fn typed_view_of_the_wrong_dtype_is_an_error() {
    let mut w = GgufWriter::new();
    w.add_tensor("w", GgmlType::F32, &[2], vec![0u8; 8])
        .unwrap();
    let bytes = w.to_bytes().unwrap();
    let file = Gguf::read(bytes.as_slice()).unwrap();
    let t = file.tensor("w").unwrap();
    assert!(matches!(
        t.as_slice::<f16>(),
        Err(Error::DtypeMismatch { tensor, expected: GgmlType::F16, found: GgmlType::F32 }) if tensor == "w"
    ));
    assert!(matches!(
        t.read_slice::<i32>(),
        Err(Error::DtypeMismatch { .. })
    ));
    assert_eq!(t.as_slice::<f32>().unwrap(), &[0.0, 0.0]);
}

#[test]
fn empty_strings_arrays_and_files_round_trip() {
    let mut w = GgufWriter::new();
    w.add_metadata("empty.string", "").unwrap();
    w.add_metadata("empty.strings", MetaValue::strings(Vec::<String>::new()))
        .unwrap();
    w.add_metadata("empty.array", MetaValue::from(Vec::<f64>::new()))
        .unwrap();
    let bytes = w.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    assert_eq!(file.metadata().get_str("empty.string").unwrap(), "");
    assert!(file
        .metadata()
        .get_array("empty.strings")
        .unwrap()
        .is_empty());
    assert_eq!(
        file.metadata()
            .get_array("empty.array")
            .unwrap()
            .element_type(),
        ValueType::F64
    );
    assert_eq!(file.tensor_count(), 0);
    assert_eq!(file.data_start(), bytes.len());

    let bytes = GgufWriter::new().to_bytes().unwrap();
    assert_eq!(bytes.len(), 24);
    let file = Gguf::from_bytes(&bytes).unwrap();
    assert!(file.metadata().is_empty());
    assert_eq!(file.tensor_bytes(), 0);
}

/// `levels` arrays nested in each other, the innermost holding one u8.
fn nested(levels: usize) -> MetaValue {
    let mut value = MetaValue::from(vec![7u8]);
    for _ in 1..levels {
        value = MetaValue::Array(MetaArray::new(ValueType::Array, vec![value]).unwrap());
    }
    value
}

/// The writer must not produce a file its own reader rejects: 8 levels of
/// arrays round-trip, 9 are refused when written.
#[test]
fn writer_refuses_arrays_nested_deeper_than_the_reader_accepts() {
    let mut w = GgufWriter::new();
    w.add_metadata("deep", nested(ggufmap::format::MAX_ARRAY_DEPTH))
        .unwrap();
    let bytes = w.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let mut value = file.metadata().get("deep").unwrap();
    for _ in 0..ggufmap::format::MAX_ARRAY_DEPTH {
        value = value.as_array().unwrap().get(0).unwrap();
    }
    assert_eq!(value, Value::U8(7));

    let mut w = GgufWriter::new();
    let written = w
        .add_metadata("deep", nested(ggufmap::format::MAX_ARRAY_DEPTH + 1))
        .map(|_| ())
        .and_then(|()| w.to_bytes());
    let read_back = written
        .as_ref()
        .ok()
        .map(|bytes| Gguf::from_bytes(bytes).map(|_| ()));
    assert!(
        matches!(
            written,
            Err(Error::Write {
                reason: WriteRefusal::NestedTooDeep,
                ..
            })
        ),
        "the writer wrote a file with 9 nested arrays; reading it back gives {read_back:?}"
    );
}

/// Found by the `roundtrip` fuzz target: a dim above i64::MAX hidden by a
/// zero dim (0 elements, 0 bytes) must be refused, as the reader refuses it.
#[test]
fn writer_refuses_a_dim_above_i64_max_even_in_an_empty_tensor() {
    let mut w = ggufmap::GgufWriter::new();
    let added = w.add_tensor(
        "t",
        ggufmap::GgmlType::I8,
        &[18_412_552_038_891_554_559, 0, 0],
        Vec::new(),
    );
    assert!(matches!(
        added,
        Err(ggufmap::Error::Write {
            reason: WriteRefusal::BadDims,
            ..
        })
    ));
}
