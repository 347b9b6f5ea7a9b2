//! candle integration: `to_qtensor`, `to_candle`, the `gguf_file::Content`
//! bridge and whole-model loading, checked against candle's own GGUF
//! loading on files written here with candle's own quantizers.
#![cfg(feature = "candle")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QStorage, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use ggufmap::candle::{FallbackReason, LoadAs, LoadOptions, LoadedTensor};
use ggufmap::format::ByteOrder;
use ggufmap::{DequantOptions, Error, GgmlType, Gguf, GgufWriter, MetaValue, Parallelism};
use half::{bf16, f16};

/// Every type candle can hold quantized, with the dims (ne0 first) of its
/// test tensor: several rows, some 3-D, so that shape order matters.
const CANDLE_TYPES: &[(GgmlType, &[u64])] = &[
    (GgmlType::F32, &[64, 3]),
    (GgmlType::F16, &[32, 2, 3]),
    (GgmlType::BF16, &[96]),
    (GgmlType::Q4_0, &[64, 5]),
    (GgmlType::Q4_1, &[96, 2]),
    (GgmlType::Q5_0, &[32, 3, 2]),
    (GgmlType::Q5_1, &[64, 4]),
    (GgmlType::Q8_0, &[128, 3]),
    (GgmlType::Q8_1, &[64, 2]),
    (GgmlType::Q2_K, &[256, 3]),
    (GgmlType::Q3_K, &[512, 2]),
    (GgmlType::Q4_K, &[256, 2, 2]),
    (GgmlType::Q5_K, &[256, 3]),
    (GgmlType::Q6_K, &[512, 2]),
    (GgmlType::Q8_K, &[256, 2]),
];

/// Types candle's own GGUF reader cannot turn into a QTensor (its
/// `qtensor_from_ggml` stops at Q6_K), though candle has them.
const CANDLE_READER_LACKS: &[GgmlType] = &[GgmlType::Q8_1, GgmlType::Q8_K];

/// Deterministic weight-like values (xorshift, roughly normal, with a few
/// outliers as real weights have).
fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|i| {
            let gauss = (0..4).map(|_| next()).sum::<f32>() - 2.0;
            if i % 97 == 0 {
                gauss * 8.0
            } else {
                gauss * 0.05
            }
        })
        .collect()
}

fn n_elements(dims: &[u64]) -> usize {
    dims.iter().product::<u64>() as usize
}

fn shape_of(dims: &[u64]) -> Vec<usize> {
    dims.iter().rev().map(|&d| d as usize).collect()
}

/// The file bytes of a tensor of `dtype` with `dims` holding `values`,
/// quantized by candle.
fn encode(dtype: GgmlType, dims: &[u64], values: &[f32]) -> Vec<u8> {
    match dtype {
        GgmlType::F32 => bytemuck::cast_slice(values).to_vec(),
        GgmlType::F16 => values
            .iter()
            .flat_map(|&v| f16::from_f32(v).to_le_bytes())
            .collect(),
        GgmlType::BF16 => values
            .iter()
            .flat_map(|&v| bf16::from_f32(v).to_le_bytes())
            .collect(),
        _ => {
            let qtype = dtype.candle_qtype().expect("a candle type");
            let tensor = Tensor::from_slice(values, shape_of(dims), &Device::Cpu).unwrap();
            QTensor::quantize(&tensor, qtype)
                .unwrap()
                .data()
                .unwrap()
                .into_owned()
        }
    }
}

fn tensor_name(dtype: GgmlType) -> String {
    format!("blk.0.{}.weight", dtype.name().to_lowercase())
}

/// Metadata of every value type, with the oddities candle's reader
/// normalises: a string with trailing NULs, one that is not UTF-8, nested
/// and empty arrays.
fn add_metadata(writer: &mut GgufWriter<'_>) {
    let entries: Vec<(&str, MetaValue)> = vec![
        ("general.architecture", "llama".into()),
        ("general.name", MetaValue::String(b"tiny\0\0".to_vec())),
        ("general.bytes", MetaValue::String(b"caf\xe9".to_vec())),
        ("llama.context_length", 2048u32.into()),
        ("llama.rope.freq_base", 10000.0f32.into()),
        ("test.u8", 7u8.into()),
        ("test.i8", (-7i8).into()),
        ("test.u16", 700u16.into()),
        ("test.i16", (-700i16).into()),
        ("test.i32", (-70_000i32).into()),
        ("test.u64", u64::MAX.into()),
        ("test.i64", i64::MIN.into()),
        ("test.f64", std::f64::consts::PI.into()),
        ("test.bool", true.into()),
        (
            "tokenizer.ggml.tokens",
            MetaValue::strings(["<unk>", "<s>", "</s>", "▁the", "日本"]),
        ),
        (
            "tokenizer.ggml.scores",
            vec![0.0f32, -1.0, -2.0, -3.5, -4.25].into(),
        ),
        ("tokenizer.ggml.token_type", vec![2i32, 3, 3, 1, 1].into()),
        ("test.empty", Vec::<u32>::new().into()),
        (
            "test.nested",
            MetaValue::Array(
                ggufmap::MetaArray::new(
                    ggufmap::format::ValueType::Array,
                    vec![vec![1u16, 2].into(), vec![3u16].into()],
                )
                .unwrap(),
            ),
        ),
    ];
    for (key, value) in entries {
        writer.add_metadata(key, value).unwrap();
    }
}

/// A model with one tensor of every candle type (values seeded by position).
fn candle_model() -> Vec<u8> {
    let mut writer = GgufWriter::new();
    add_candle_tensors(&mut writer);
    writer.to_bytes().unwrap()
}

/// The metadata and one tensor of every candle type.
fn add_candle_tensors(writer: &mut GgufWriter<'_>) {
    add_metadata(writer);
    for (i, &(dtype, dims)) in CANDLE_TYPES.iter().enumerate() {
        let values = weights(n_elements(dims), i as u64 + 1);
        writer
            .add_tensor(
                tensor_name(dtype),
                dtype,
                dims,
                encode(dtype, dims, &values),
            )
            .unwrap();
    }
}

/// Bytes of `blocks` blocks of `dtype` with valid f16 scales and arbitrary
/// quants, for types candle cannot quantize.
fn raw_blocks(dtype: GgmlType, blocks: usize) -> Vec<u8> {
    let size = dtype.bytes_per_block();
    let mut bytes: Vec<u8> = weights(blocks * size, 99)
        .iter()
        .map(|v| (v.to_bits() >> 7) as u8)
        .collect();
    for block in bytes.chunks_exact_mut(size) {
        match dtype {
            // f16 scale first.
            GgmlType::IQ4_NL | GgmlType::IQ4_XS | GgmlType::Q1_0 | GgmlType::Q2_0 => {
                block[..2].copy_from_slice(&f16::from_f32(0.02).to_le_bytes())
            }
            // f16 scale last.
            GgmlType::TQ2_0 => {
                block[size - 2..].copy_from_slice(&f16::from_f32(0.02).to_le_bytes())
            }
            // E8M0 scale first: 2^-4.
            GgmlType::MXFP4 => block[0] = 123,
            _ => {}
        }
    }
    bytes
}

/// Tensors candle cannot keep quantized: an IQ4_NL and an MXFP4 weight, an
/// I32 and an I8 table, an F64 tensor and an F32 scalar.
fn add_other_tensors(writer: &mut GgufWriter<'_>) {
    writer
        .add_tensor(
            "blk.0.iq4_nl.weight",
            GgmlType::IQ4_NL,
            &[64, 3],
            raw_blocks(GgmlType::IQ4_NL, 6),
        )
        .unwrap();
    writer
        .add_tensor(
            "blk.0.mxfp4.weight",
            GgmlType::MXFP4,
            &[32, 2],
            raw_blocks(GgmlType::MXFP4, 2),
        )
        .unwrap();
    let ints: Vec<u8> = [5i32, -3, 70_000, i32::MIN, 0, 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    writer
        .add_tensor("ids", GgmlType::I32, &[3, 2], ints)
        .unwrap();
    let bytes: Vec<u8> = [-128i8, 0, 127, 5].iter().map(|&v| v as u8).collect();
    writer
        .add_tensor("small_ids", GgmlType::I8, &[4], bytes)
        .unwrap();
    let doubles: Vec<u8> = [1.0f64, -2.5, 1e300]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    writer
        .add_tensor("doubles", GgmlType::F64, &[3], doubles)
        .unwrap();
    writer
        .add_tensor("scale", GgmlType::F32, &[], 0.5f32.to_le_bytes().to_vec())
        .unwrap();
}

/// Every candle type plus the tensors candle cannot keep quantized.
fn mixed_model() -> Vec<u8> {
    let mut writer = GgufWriter::new();
    add_candle_tensors(&mut writer);
    add_other_tensors(&mut writer);
    writer.to_bytes().unwrap()
}

fn write_temp(bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn bits_f32(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn bits_of<T: bytemuck::Pod>(values: &[T]) -> Vec<u8> {
    bytemuck::cast_slice(values).to_vec()
}

#[test]
fn qtensors_dequantize_exactly_as_candles_own_loading() {
    let bytes = candle_model();
    let (_dir, path) = write_temp(&bytes);
    let mapped = Gguf::open(&path).unwrap();
    let in_memory = Gguf::from_bytes(&bytes).unwrap();
    let mut file = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut file).unwrap();
    for (i, &(dtype, dims)) in CANDLE_TYPES.iter().enumerate() {
        let name = tensor_name(dtype);
        let values = weights(n_elements(dims), i as u64 + 1);
        // The blocks candle's quantizer made, as candle holds them.
        let original = match dtype.candle_qtype().unwrap() {
            GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => None,
            qtype => Some(
                QTensor::quantize(
                    &Tensor::from_slice(&values, shape_of(dims), &Device::Cpu).unwrap(),
                    qtype,
                )
                .unwrap(),
            ),
        };
        for file in [&mapped, &in_memory] {
            let ours = file
                .tensor(&name)
                .unwrap()
                .to_qtensor(&Device::Cpu)
                .unwrap();
            assert_eq!(ours.dtype(), dtype.candle_qtype().unwrap(), "{name}");
            assert_eq!(ours.shape().dims(), shape_of(dims).as_slice(), "{name}");
            let ours = bits_f32(&ours.dequantize(&Device::Cpu).unwrap());
            if !CANDLE_READER_LACKS.contains(&dtype) {
                let theirs = content
                    .tensor(&mut file.reader(), &name, &Device::Cpu)
                    .unwrap();
                assert_eq!(
                    ours,
                    bits_f32(&theirs.dequantize(&Device::Cpu).unwrap()),
                    "{name} vs candle's reader"
                );
            } else {
                let err = content
                    .tensor(&mut file.reader(), &name, &Device::Cpu)
                    .unwrap_err();
                assert!(err.to_string().contains("not supported"), "{name}: {err}");
            }
            if let Some(original) = &original {
                assert_eq!(
                    ours,
                    bits_f32(&original.dequantize(&Device::Cpu).unwrap()),
                    "{name} vs quantizer's blocks"
                );
            }
        }
    }
}

#[test]
fn our_dequantizers_agree_with_candles() {
    let bytes = candle_model();
    let file = Gguf::from_bytes(&bytes).unwrap();
    for &(dtype, _) in CANDLE_TYPES {
        let view = file.tensor(&tensor_name(dtype)).unwrap();
        let candle = bits_f32(
            &view
                .to_qtensor(&Device::Cpu)
                .unwrap()
                .dequantize(&Device::Cpu)
                .unwrap(),
        );
        let ours: Vec<u32> = view
            .dequantize_to_vec::<f32>(&DequantOptions::default())
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(ours, candle, "{dtype}");
    }
}

#[test]
fn to_candle_is_to_vec_with_candles_shape() {
    let bytes = mixed_model();
    let file = Gguf::from_bytes(&bytes).unwrap();
    for view in file.tensors() {
        let t = view
            .to_candle(&Device::Cpu, DType::F32, &DequantOptions::default())
            .unwrap();
        assert_eq!(
            (t.dims(), t.dtype()),
            (view.shape().as_slice(), DType::F32),
            "{}",
            view.name()
        );
        assert_eq!(
            bits_of(&t.flatten_all().unwrap().to_vec1::<f32>().unwrap()),
            bits_of(
                &view
                    .dequantize_to_vec::<f32>(&DequantOptions::default())
                    .unwrap()
            )
        );
        let t = view
            .to_candle(&Device::Cpu, DType::F16, &DequantOptions::default())
            .unwrap();
        assert_eq!(
            (t.dims(), t.dtype()),
            (view.shape().as_slice(), DType::F16),
            "{}",
            view.name()
        );
        assert_eq!(
            bits_of(&t.flatten_all().unwrap().to_vec1::<f16>().unwrap()),
            bits_of(
                &view
                    .dequantize_to_vec::<f16>(&DequantOptions::default())
                    .unwrap()
            )
        );
        let t = view
            .to_candle(
                &Device::Cpu,
                DType::BF16,
                &DequantOptions::new().parallelism(Parallelism::Sequential),
            )
            .unwrap();
        assert_eq!(
            (t.dims(), t.dtype()),
            (view.shape().as_slice(), DType::BF16),
            "{}",
            view.name()
        );
        assert_eq!(
            bits_of(&t.flatten_all().unwrap().to_vec1::<bf16>().unwrap()),
            bits_of(
                &view
                    .dequantize_to_vec::<bf16>(&DequantOptions::default())
                    .unwrap()
            )
        );
    }
}

#[test]
fn to_candle_keeps_plain_values_exact() {
    let bytes = mixed_model();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let ids = file.tensor("ids").unwrap();
    assert_eq!(GgmlType::I32.candle_dtype(), Some(DType::I32));
    let t = ids
        .to_candle(&Device::Cpu, DType::I32, &DequantOptions::default())
        .unwrap();
    assert_eq!(
        t.to_vec2::<i32>().unwrap(),
        vec![vec![5, -3, 70_000], vec![i32::MIN, 0, 1]]
    );
    let t = ids
        .to_candle(&Device::Cpu, DType::I64, &DequantOptions::default())
        .unwrap();
    assert_eq!(
        t.to_vec2::<i64>().unwrap(),
        vec![vec![5, -3, 70_000], vec![i32::MIN as i64, 0, 1]]
    );
    let small = file.tensor("small_ids").unwrap();
    assert_eq!(
        small
            .to_candle(&Device::Cpu, DType::I16, &DequantOptions::default())
            .unwrap()
            .to_vec1::<i16>()
            .unwrap(),
        vec![-128, 0, 127, 5]
    );
    let doubles = file.tensor("doubles").unwrap();
    assert_eq!(
        doubles
            .to_candle(&Device::Cpu, DType::F64, &DequantOptions::default())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap(),
        vec![1.0, -2.5, 1e300]
    );
    let scale = file
        .tensor("scale")
        .unwrap()
        .to_candle(&Device::Cpu, DType::F32, &DequantOptions::default())
        .unwrap();
    assert_eq!(
        (scale.dims(), scale.to_scalar::<f32>().unwrap()),
        (&[][..], 0.5)
    );

    // Narrowing, or integers asked of floats: typed errors naming the tensor.
    for (name, dtype) in [
        ("ids", DType::I16),
        ("ids", DType::U32),
        ("blk.0.q4_0.weight", DType::I64),
        ("doubles", DType::I64),
    ] {
        match file
            .tensor(name)
            .unwrap()
            .to_candle(&Device::Cpu, dtype, &DequantOptions::default())
        {
            Err(Error::CandleUnsupported { tensor, target, .. }) => {
                assert_eq!((tensor.as_str(), target), (name, dtype.as_str()))
            }
            other => panic!("{name} as {dtype:?}: {other:?}"),
        }
    }
}

#[test]
fn unsupported_types_give_typed_errors() {
    let bytes = mixed_model();
    let file = Gguf::from_bytes(&bytes).unwrap();
    for (name, dtype) in [
        ("blk.0.iq4_nl.weight", GgmlType::IQ4_NL),
        ("blk.0.mxfp4.weight", GgmlType::MXFP4),
        ("ids", GgmlType::I32),
        ("doubles", GgmlType::F64),
    ] {
        let err = file
            .tensor(name)
            .unwrap()
            .to_qtensor(&Device::Cpu)
            .unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(&err, Error::CandleUnsupported { tensor, dtype: d, .. } if tensor == name && *d == dtype),
            "{err:?}"
        );
        assert!(
            message.contains(name)
                && message.contains(dtype.name())
                && message.contains("dequantize"),
            "{message}"
        );
    }
    // candle's QTensor cannot be a scalar: candle's error, naming the tensor.
    let err = file
        .tensor("scale")
        .unwrap()
        .to_qtensor(&Device::Cpu)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Candle { tensor, .. } if tensor == "scale"),
        "{err:?}"
    );
    // The bridge cannot describe them to candle either.
    let err = file.to_candle_content().unwrap_err();
    assert!(
        matches!(&err, Error::CandleUnsupported { tensor, .. } if tensor == "blk.0.iq4_nl.weight"),
        "{err:?}"
    );
}

/// candle's `Value` has no `PartialEq`; its `Debug` form shows type and value.
fn debug_map<V: std::fmt::Debug>(map: &HashMap<String, V>) -> Vec<(String, String)> {
    let mut entries: Vec<_> = map
        .iter()
        .map(|(k, v)| (k.clone(), format!("{v:?}")))
        .collect();
    entries.sort();
    entries
}

fn assert_same_content(ours: &gguf_file::Content, theirs: &gguf_file::Content) {
    assert_eq!(ours.magic, theirs.magic);
    assert_eq!(ours.tensor_data_offset, theirs.tensor_data_offset);
    assert_eq!(debug_map(&ours.metadata), debug_map(&theirs.metadata));
    assert_eq!(
        debug_map(&ours.tensor_infos),
        debug_map(&theirs.tensor_infos)
    );
}

#[test]
fn content_bridge_equals_candles_reader() {
    for alignment in [32, 64, 1] {
        let mut writer = GgufWriter::new();
        writer.set_alignment(alignment).unwrap();
        add_metadata(&mut writer);
        let mut values = Vec::new();
        for (i, &(dtype, dims)) in CANDLE_TYPES.iter().enumerate() {
            values.push(weights(n_elements(dims), i as u64 + 1));
            writer
                .add_tensor(
                    tensor_name(dtype),
                    dtype,
                    dims,
                    encode(dtype, dims, &values[i]),
                )
                .unwrap();
        }
        let bytes = writer.to_bytes().unwrap();
        let file = Gguf::from_bytes(&bytes).unwrap();
        let ours = file.to_candle_content().unwrap();
        let theirs = gguf_file::Content::read(&mut std::io::Cursor::new(&bytes)).unwrap();
        assert_same_content(&ours, &theirs);
        assert_eq!(ours.metadata["general.name"].to_string().unwrap(), "tiny");
        assert_eq!(
            ours.metadata["general.bytes"].to_string().unwrap(),
            "caf\u{fffd}"
        );

        // candle code reads tensors through the bridge unchanged.
        for &(dtype, _) in CANDLE_TYPES
            .iter()
            .filter(|(d, _)| !CANDLE_READER_LACKS.contains(d))
        {
            let name = tensor_name(dtype);
            let through_bridge = ours
                .tensor(&mut file.reader(), &name, &Device::Cpu)
                .unwrap();
            let ours_direct = file
                .tensor(&name)
                .unwrap()
                .to_qtensor(&Device::Cpu)
                .unwrap();
            assert_eq!(through_bridge.shape(), ours_direct.shape());
            assert_eq!(
                bits_f32(&through_bridge.dequantize(&Device::Cpu).unwrap()),
                bits_f32(&ours_direct.dequantize(&Device::Cpu).unwrap()),
                "{name} at alignment {alignment}"
            );
        }
    }
}

#[test]
fn misaligned_and_big_endian_data_convert() {
    // Alignment 1: tensor data at odd addresses, which candle itself would
    // reinterpret in place (and assert on).
    let mut writer = GgufWriter::new();
    writer.set_alignment(1).unwrap();
    writer
        .add_tensor("odd", GgmlType::I8, &[3], vec![1u8, 2, 3])
        .unwrap();
    let mut expected = Vec::new();
    for (i, &(dtype, dims)) in CANDLE_TYPES.iter().enumerate() {
        let values = weights(n_elements(dims), i as u64 + 1);
        writer
            .add_tensor(
                tensor_name(dtype),
                dtype,
                dims,
                encode(dtype, dims, &values),
            )
            .unwrap();
        expected.push(values);
    }
    let bytes = writer.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let aligned = candle_model();
    let aligned = Gguf::from_bytes(&aligned).unwrap();
    for &(dtype, _) in CANDLE_TYPES {
        let name = tensor_name(dtype);
        let q = file
            .tensor(&name)
            .unwrap()
            .to_qtensor(&Device::Cpu)
            .unwrap();
        let reference = aligned
            .tensor(&name)
            .unwrap()
            .to_qtensor(&Device::Cpu)
            .unwrap();
        assert_eq!(
            bits_f32(&q.dequantize(&Device::Cpu).unwrap()),
            bits_f32(&reference.dequantize(&Device::Cpu).unwrap()),
            "{name}"
        );
    }
    let model = file.load_candle(&Device::Cpu, LoadAs::Quantized).unwrap();
    assert_eq!(model.report.tensors, CANDLE_TYPES.len() + 1);

    // Big-endian: plain tensors are byte-swapped; quantized blocks cannot be.
    let values = [1.5f32, -2.0, 3.25, 0.0];
    let mut writer = GgufWriter::new();
    writer.set_byte_order(ByteOrder::Big);
    writer
        .add_tensor(
            "plain",
            GgmlType::F32,
            &[4],
            values
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect::<Vec<u8>>(),
        )
        .unwrap();
    writer
        .add_tensor("blocks", GgmlType::Q8_0, &[32], vec![0u8; 34])
        .unwrap();
    let bytes = writer.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let plain = file.tensor("plain").unwrap();
    assert_eq!(
        plain
            .to_qtensor(&Device::Cpu)
            .unwrap()
            .dequantize(&Device::Cpu)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        values
    );
    assert_eq!(
        plain
            .to_candle(&Device::Cpu, DType::F32, &DequantOptions::default())
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
        values
    );
    let err = file
        .tensor("blocks")
        .unwrap()
        .to_qtensor(&Device::Cpu)
        .unwrap_err();
    assert!(
        matches!(&err, Error::ByteOrder { tensor } if tensor == "blocks"),
        "{err:?}"
    );
    assert!(matches!(
        file.to_candle_content(),
        Err(Error::ByteOrder { .. })
    ));
}

/// What each tensor of the mixed model must load as.
fn expected_load(
    name: &str,
    load_as: LoadAs,
) -> (Option<GgmlDType>, Option<DType>, Option<FallbackReason>) {
    let dtype = match name {
        "blk.0.iq4_nl.weight" => GgmlType::IQ4_NL,
        "blk.0.mxfp4.weight" => GgmlType::MXFP4,
        "ids" => GgmlType::I32,
        "small_ids" => GgmlType::I8,
        "doubles" => GgmlType::F64,
        "scale" => GgmlType::F32,
        _ => CANDLE_TYPES
            .iter()
            .map(|(d, _)| *d)
            .find(|d| tensor_name(*d) == name)
            .unwrap(),
    };
    match (load_as.dtype(), name) {
        (Some(_), "ids") => (None, Some(DType::I32), Some(FallbackReason::IntegerKept)),
        (Some(_), "small_ids") => (None, Some(DType::I16), Some(FallbackReason::IntegerKept)),
        (Some(target), _) => (None, Some(target), None),
        (None, "scale") => (None, Some(DType::F32), Some(FallbackReason::Scalar)),
        (None, "ids") => (None, Some(DType::I32), Some(FallbackReason::PlainType)),
        (None, "small_ids") => (None, Some(DType::I16), Some(FallbackReason::PlainType)),
        (None, "doubles") => (None, Some(DType::F64), Some(FallbackReason::PlainType)),
        (None, _) => match dtype.candle_qtype() {
            Some(q) => (Some(q), None, None),
            None => (
                None,
                Some(DType::F16),
                Some(FallbackReason::NoCandleQuantizedType),
            ),
        },
    }
}

fn check_model(file: &Gguf<'_>, options: &LoadOptions, load_as: LoadAs, from_file: bool) {
    let model = file.load_candle_with(&Device::Cpu, options).unwrap();
    let report = &model.report;
    assert_eq!(report.load_as, load_as);
    assert_eq!(report.tensors, file.tensor_count());
    assert_eq!(model.tensors.len(), file.tensor_count());
    assert_eq!(report.quantized + report.dense, report.tensors);
    assert_eq!(report.file_bytes, file.tensor_bytes());
    assert_eq!(report.read_from_file, from_file);
    assert_eq!(
        report.loaded_bytes,
        model
            .tensors
            .values()
            .map(|t| t.size_in_bytes() as u64)
            .sum::<u64>()
    );
    let mut fallbacks = Vec::new();
    for view in file.tensors() {
        let name = view.name();
        let loaded = model.get(name).unwrap_or_else(|| panic!("{name} missing"));
        let (qtype, dtype, reason) = expected_load(name, load_as);
        assert_eq!(
            (loaded.qtype(), loaded.dtype()),
            (qtype, dtype),
            "{name} as {load_as}"
        );
        assert_eq!(loaded.shape().dims(), view.shape().as_slice(), "{name}");
        if let Some(reason) = reason {
            fallbacks.push((name.to_owned(), reason));
        }
        // Same values as the single-tensor conversions.
        match loaded {
            LoadedTensor::Quantized(q) => {
                let direct = view.to_qtensor(&Device::Cpu).unwrap();
                assert_eq!(q.data().unwrap(), direct.data().unwrap(), "{name}");
            }
            LoadedTensor::Dense(t) => {
                let direct = view
                    .to_candle(&Device::Cpu, t.dtype(), &DequantOptions::default())
                    .unwrap();
                let (a, b) = (t.flatten_all().unwrap(), direct.flatten_all().unwrap());
                let eq = match t.dtype() {
                    DType::F16 => {
                        bits_of(&a.to_vec1::<f16>().unwrap())
                            == bits_of(&b.to_vec1::<f16>().unwrap())
                    }
                    DType::BF16 => {
                        bits_of(&a.to_vec1::<bf16>().unwrap())
                            == bits_of(&b.to_vec1::<bf16>().unwrap())
                    }
                    DType::F32 => {
                        bits_of(&a.to_vec1::<f32>().unwrap())
                            == bits_of(&b.to_vec1::<f32>().unwrap())
                    }
                    DType::F64 => a.to_vec1::<f64>().unwrap() == b.to_vec1::<f64>().unwrap(),
                    DType::I16 => a.to_vec1::<i16>().unwrap() == b.to_vec1::<i16>().unwrap(),
                    DType::I32 => a.to_vec1::<i32>().unwrap() == b.to_vec1::<i32>().unwrap(),
                    other => panic!("{name}: unexpected {other:?}"),
                };
                assert!(eq, "{name} as {load_as}");
            }
        }
    }
    let reported: Vec<_> = report
        .fallbacks
        .iter()
        .map(|f| (f.tensor.clone(), f.reason))
        .collect();
    assert_eq!(reported, fallbacks, "{load_as}: fallbacks in file order");
    for fallback in &report.fallbacks {
        let loaded = model.get(&fallback.tensor).unwrap();
        assert_eq!(loaded.dtype(), Some(fallback.loaded_as));
        assert_eq!(
            fallback.dtype,
            file.tensor(&fallback.tensor).unwrap().dtype()
        );
    }
    let text = report.to_string();
    assert!(
        text.contains(&format!("loaded {} tensors as {load_as}", report.tensors)),
        "{text}"
    );
}

#[test]
fn load_candle_loads_every_tensor_as_asked() {
    let bytes = mixed_model();
    let (_dir, path) = write_temp(&bytes);
    let mapped = Gguf::open(&path).unwrap();
    let in_memory = Gguf::from_bytes(&bytes).unwrap();
    for load_as in LoadAs::ALL {
        check_model(&mapped, &LoadOptions::new(load_as), load_as, true);
        check_model(
            &mapped,
            &LoadOptions::new(load_as).read_through_mapping(true),
            load_as,
            false,
        );
        check_model(
            &mapped,
            &LoadOptions::new(load_as).parallelism(Parallelism::Sequential),
            load_as,
            true,
        );
        check_model(
            &mapped,
            &LoadOptions::new(load_as).parallelism(Parallelism::threads(3).unwrap()),
            load_as,
            true,
        );
        check_model(&in_memory, &LoadOptions::new(load_as), load_as, false);
        // The short form.
        let model = mapped.load_candle(&Device::Cpu, load_as).unwrap();
        assert_eq!(model.report.tensors, mapped.tensor_count());
    }
    let model = mapped.load_candle(&Device::Cpu, LoadAs::Quantized).unwrap();
    assert_eq!(model.report.quantized, CANDLE_TYPES.len());
    assert_eq!(model.report.fallbacks.len(), 6);
}

#[test]
fn load_reads_the_mapped_file_after_its_path_was_replaced() {
    let bytes = candle_model();
    let (dir, path) = write_temp(&bytes);
    let mapped = Gguf::open(&path).unwrap();
    let expected = mapped
        .load_candle_with(
            &Device::Cpu,
            &LoadOptions::new(LoadAs::F32).read_through_mapping(true),
        )
        .unwrap();
    // Replaced by rename, as downloaders do: the mapping keeps the old file.
    let other = mixed_model();
    let tmp = dir.path().join("new.gguf");
    std::fs::write(&tmp, &other).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    // Positioned reads go through the handle the mapping was made from: the
    // old file, not whatever the path names now.
    let model = mapped.load_candle(&Device::Cpu, LoadAs::F32).unwrap();
    assert!(model.report.read_from_file);
    for (name, tensor) in &expected.tensors {
        let a = tensor
            .as_tensor()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        let b = model
            .tensor(name)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(bits_of(&a), bits_of(&b), "{name}");
    }
}

#[test]
fn load_errors_name_the_tensor() {
    // Quantized blocks in a big-endian file: neither candle nor our
    // dequantizers take them, whatever the LoadAs.
    let mut writer = GgufWriter::new();
    writer.set_byte_order(ByteOrder::Big);
    writer
        .add_tensor("fine", GgmlType::F32, &[4], vec![0u8; 16])
        .unwrap();
    writer
        .add_tensor(
            "blk.3.ffn_up.weight",
            GgmlType::Q4_K,
            &[256],
            vec![0u8; 144],
        )
        .unwrap();
    let bytes = writer.to_bytes().unwrap();
    let (_dir, path) = write_temp(&bytes);
    let mapped = Gguf::open(&path).unwrap();
    let in_memory = Gguf::from_bytes(&bytes).unwrap();
    for file in [&mapped, &in_memory] {
        let err = file
            .load_candle(&Device::Cpu, LoadAs::Quantized)
            .unwrap_err();
        assert!(
            matches!(&err, Error::ByteOrder { tensor } if tensor == "blk.3.ffn_up.weight"),
            "{err:?}"
        );
        for load_as in [LoadAs::F16, LoadAs::BF16, LoadAs::F32] {
            let err = file.load_candle(&Device::Cpu, load_as).unwrap_err();
            // The dequantizer's error, naming the tensor: no wrapper.
            assert!(
                matches!(
                    &err,
                    Error::Unsupported {
                        tensor: Some(tensor),
                        dtype: GgmlType::Q4_K,
                        ..
                    } if tensor == "blk.3.ffn_up.weight"
                ),
                "{load_as}: {err:?}"
            );
            assert!(err.to_string().contains("blk.3.ffn_up.weight"));
        }
    }
    // A scalar in a file read as candle reads it: candle's error, named.
    let mut writer = GgufWriter::new();
    writer
        .add_tensor("scale", GgmlType::F16, &[], vec![0u8; 2])
        .unwrap();
    let bytes = writer.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let content = file.to_candle_content().unwrap();
    assert!(content
        .tensor(&mut file.reader(), "scale", &Device::Cpu)
        .is_err());
    let model = file.load_candle(&Device::Cpu, LoadAs::Quantized).unwrap();
    assert_eq!(model.report.fallbacks[0].reason, FallbackReason::Scalar);
}

/// The real model of the issue, when present: every tensor's QTensor equals
/// candle's own loading, and every LoadAs loads every tensor.
fn gemma_path() -> Option<PathBuf> {
    let path = std::env::var_os("GGUFMAP_GEMMA")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
            Some(cache.join("ggufmap/gemma-3-270m-q4_k_m.gguf"))
        })?;
    path.exists().then_some(path)
}

#[test]
#[ignore = "needs Gemma 3 270M Q4_K_M (scripts/fetch_gemma.sh or $GGUFMAP_GEMMA)"]
fn gemma_matches_candles_own_loading() {
    let Some(path) = gemma_path() else {
        eprintln!("skipped: no Gemma file (run scripts/fetch_gemma.sh or set GGUFMAP_GEMMA)");
        return;
    };
    let file = Gguf::open(&path).unwrap();
    let mut reader = std::fs::File::open(&path).unwrap();
    let content = gguf_file::Content::read(&mut reader).unwrap();
    assert_same_content(&file.to_candle_content().unwrap(), &content);
    let model = file.load_candle(&Device::Cpu, LoadAs::Quantized).unwrap();
    assert!(model.report.fallbacks.is_empty(), "{}", model.report);
    for view in file.tensors() {
        let name = view.name();
        let theirs = content.tensor(&mut reader, name, &Device::Cpu).unwrap();
        let ours = model.qtensor(name).unwrap();
        assert_eq!(
            (ours.dtype(), ours.shape()),
            (theirs.dtype(), theirs.shape()),
            "{name}"
        );
        assert_eq!(
            bits_f32(&ours.dequantize(&Device::Cpu).unwrap()),
            bits_f32(&theirs.dequantize(&Device::Cpu).unwrap()),
            "{name}"
        );
        // And our own dequantizer agrees with candle's on real data.
        let direct: Vec<u32> = view
            .dequantize_to_vec::<f32>(&DequantOptions::default())
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(
            direct,
            bits_f32(&theirs.dequantize(&Device::Cpu).unwrap()),
            "{name}: our dequantizer"
        );
        // candle's matmul kernels read the mapped blocks as their own.
        if let [_, k] = *theirs.shape().dims() {
            let x = Tensor::from_vec(weights(2 * k, 3), (2, k), &Device::Cpu).unwrap();
            let mapped = QMatMul::from_qtensor(view.to_qtensor(&Device::Cpu).unwrap()).unwrap();
            let theirs = QMatMul::from_qtensor(theirs).unwrap();
            assert_eq!(
                bits_f32(&mapped.forward(&x).unwrap()),
                bits_f32(&theirs.forward(&x).unwrap()),
                "{name}: matmul"
            );
        }
    }
    assert_eq!(model.report.mapped, file.tensor_count());
    drop(model);
    for load_as in [LoadAs::F16, LoadAs::BF16, LoadAs::F32] {
        let model = file.load_candle(&Device::Cpu, load_as).unwrap();
        assert_eq!(model.report.tensors, file.tensor_count());
        for view in file.tensors() {
            let t = model.tensor(view.name()).unwrap();
            assert_eq!(
                (t.dims(), Some(t.dtype())),
                (view.shape().as_slice(), load_as.dtype()),
                "{}",
                view.name()
            );
        }
        eprintln!("{}", model.report);
    }
}

/// `f(qtensor)` for a QTensor over the mapping and one with candle's own
/// copy of the same blocks: equal bits, or errors both.
fn same_result(
    name: &str,
    what: &str,
    mapped: &QTensor,
    copied: &QTensor,
    f: impl Fn(&QTensor) -> candle_core::Result<Tensor>,
) {
    let bits = |q: &QTensor| f(q).map(|t| bits_f32(&t.to_dtype(DType::F32).unwrap()));
    match (bits(mapped), bits(copied)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{name}: {what}"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("{name}: {what}: {:?} vs {:?}", a.err(), b.err()),
    }
}

/// candle's own CPU storage (its `Vec` of blocks) for the bytes of `name`
/// in `bytes`, built by candle's `QStorage::from_data`.
fn candles_own_qtensor(file: &Gguf<'_>, name: &str) -> QTensor {
    let view = file.tensor(name).unwrap();
    let bytes = view.bytes().unwrap();
    let mut aligned = vec![0u64; bytes.len().div_ceil(8)];
    let raw: &mut [u8] = bytemuck::cast_slice_mut(&mut aligned);
    raw[..bytes.len()].copy_from_slice(bytes);
    let storage = QStorage::from_data(
        std::borrow::Cow::Borrowed(&raw[..bytes.len()]),
        &Device::Cpu,
        view.dtype().candle_qtype().unwrap(),
    )
    .unwrap();
    QTensor::new(storage, view.shape()).unwrap()
}

/// Our storages (blocks in the mapping, a copy of our own) against
/// candle's: the same bytes, and every computation candle runs on them
/// gives the same bits.
#[test]
fn our_qtensor_storage_computes_as_candles_own() {
    let bytes = candle_model();
    let (_dir, path) = write_temp(&bytes);
    let mapped_file = Gguf::open(&path).unwrap();
    let model = mapped_file
        .load_candle(&Device::Cpu, LoadAs::Quantized)
        .unwrap();
    assert_eq!(model.report.mapped, CANDLE_TYPES.len(), "{}", model.report);
    let copied_model = mapped_file
        .load_candle_with(
            &Device::Cpu,
            &LoadOptions::new(LoadAs::Quantized).copy_quantized(true),
        )
        .unwrap();
    assert_eq!(copied_model.report.mapped, 0);
    assert_eq!(copied_model.report.quantized, CANDLE_TYPES.len());
    let single = |file: &Gguf<'_>| -> Vec<QTensor> {
        CANDLE_TYPES
            .iter()
            .map(|&(dtype, _)| {
                let view = file.tensor(&tensor_name(dtype)).unwrap();
                view.to_qtensor(&Device::Cpu).unwrap()
            })
            .collect()
    };
    let mapped_single = single(&mapped_file);
    // The tensors keep the mapping alive.
    drop(mapped_file);
    let in_memory = Gguf::from_bytes(&bytes).unwrap();
    let copied_single = single(&in_memory);
    let owned = CANDLE_TYPES
        .iter()
        .zip(mapped_single.into_iter().zip(copied_single));
    for (&(dtype, dims), (mapped_single, copied_single)) in owned {
        let name = tensor_name(dtype);
        let theirs = candles_own_qtensor(&in_memory, &name);
        let range = in_memory.tensor(&name).unwrap().byte_range();
        let file_range = range.start as usize..range.end as usize;
        let ours = [
            ("mapped", model.qtensor(&name).unwrap()),
            ("copied", copied_model.qtensor(&name).unwrap()),
            ("mapped, single", &mapped_single),
            ("copied, single", &copied_single),
        ];
        let (k, rows) = (dims[0] as usize, dims.get(1).copied().unwrap_or(1) as usize);
        let ids = Tensor::new(&[0u32, rows as u32 - 1, 1], &Device::Cpu).unwrap();
        let out_of_range = Tensor::new(&[rows as u32], &Device::Cpu).unwrap();
        for (how, ours) in ours {
            let what = format!("{name} ({how})");
            // The bytes are the file's.
            assert_eq!(&*ours.data().unwrap(), &bytes[file_range.clone()], "{what}");
            assert_eq!(ours.storage_size_in_bytes(), theirs.storage_size_in_bytes());
            same_result(&what, "dequantize", ours, &theirs, |q| {
                q.dequantize(&Device::Cpu)
            });
            same_result(&what, "dequantize_f16", ours, &theirs, |q| {
                q.dequantize_f16(&Device::Cpu)
            });
            if dims.len() == 2 {
                same_result(&what, "embedding", ours, &theirs, |q| q.embedding(&ids));
                assert!(ours.embedding(&out_of_range).is_err(), "{what}");
            }
        }
        // candle's matmul kernels on our blocks. (candle's Q4_1, Q5_0 and
        // Q5_1 dot products assert an even block count per row in debug
        // builds, for its own storage too: such rows are skipped.)
        let odd_rows = (k / dtype.elements_per_block()) % 2 != 0;
        let needs_even = [GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1].contains(&dtype);
        if dims.len() != 2 || (odd_rows && needs_even) {
            continue;
        }
        let x = Tensor::from_vec(weights(3 * k, 7), (3, k), &Device::Cpu).unwrap();
        let theirs = QMatMul::from_qtensor(theirs).unwrap();
        for (how, ours) in [("mapped", mapped_single), ("copied", copied_single)] {
            let ours = QMatMul::from_qtensor(ours).unwrap();
            for input in [DType::F32, DType::F16] {
                let x = x.to_dtype(input).unwrap();
                match (ours.forward(&x), theirs.forward(&x)) {
                    (Ok(a), Ok(b)) => assert_eq!(
                        bits_f32(&a.to_dtype(DType::F32).unwrap()),
                        bits_f32(&b.to_dtype(DType::F32).unwrap()),
                        "{name} ({how}): matmul {input:?}"
                    ),
                    // candle has f16 kernels for some types only.
                    (Err(_), Err(_)) if input == DType::F16 => {}
                    (a, b) => panic!(
                        "{name} ({how}): matmul {input:?}: {:?} vs {:?}",
                        a.err(),
                        b.err()
                    ),
                }
            }
        }
    }
    // From memory that is not a mapping, always copies.
    let model = in_memory
        .load_candle(&Device::Cpu, LoadAs::Quantized)
        .unwrap();
    assert_eq!(model.report.mapped, 0);
}

/// A file read into memory (`OpenOptions::in_memory`, `Gguf::read`) lends
/// its blocks to QTensors as a mapping does: nothing copied, and the
/// tensors keep the bytes alive after the `Gguf` is gone.
#[test]
fn files_read_into_memory_lend_their_blocks_to_qtensors() {
    let bytes = candle_model();
    let (_dir, path) = write_temp(&bytes);
    let borrowed = Gguf::from_bytes(&bytes).unwrap();
    let files = [
        Gguf::open_with(&path, &ggufmap::OpenOptions::new().in_memory(true)).unwrap(),
        Gguf::read(bytes.as_slice()).unwrap(),
    ];
    for file in files {
        assert!(!file.is_mapped());
        let model = file.load_candle(&Device::Cpu, LoadAs::Quantized).unwrap();
        assert_eq!(model.report.mapped, CANDLE_TYPES.len(), "{}", model.report);
        let singles: Vec<QTensor> = CANDLE_TYPES
            .iter()
            .map(|&(dtype, _)| {
                let view = file.tensor(&tensor_name(dtype)).unwrap();
                view.to_qtensor(&Device::Cpu).unwrap()
            })
            .collect();
        drop(file);
        for (&(dtype, _), single) in CANDLE_TYPES.iter().zip(&singles) {
            let name = tensor_name(dtype);
            let view = borrowed.tensor(&name).unwrap();
            let reference = view.to_qtensor(&Device::Cpu).unwrap();
            for ours in [model.qtensor(&name).unwrap(), single] {
                assert_eq!(&*ours.data().unwrap(), view.bytes().unwrap(), "{name}");
                same_result(&name, "dequantize", ours, &reference, |q| {
                    q.dequantize(&Device::Cpu)
                });
            }
        }
    }
}

#[test]
fn a_shape_candle_cannot_count_is_an_error_not_a_panic() {
    // ggml counts from ne0 (64, 0, 0, 0: no element); candle multiplies the
    // other way round, 2^46 * 2^20 first, and would overflow.
    let mut writer = GgufWriter::new();
    writer
        .add_tensor("t", GgmlType::Q8_0, &[64, 0, 1 << 20, 1 << 46], Vec::new())
        .unwrap();
    let bytes = writer.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let t = file.tensor("t").unwrap();
    assert_eq!(t.n_elements(), 0);
    let shape_refused = |e: &Error| {
        matches!(
            e,
            Error::CandleUnsupported {
                target: "candle shape",
                ..
            }
        )
    };
    assert!(shape_refused(&t.to_qtensor(&Device::Cpu).unwrap_err()));
    assert!(shape_refused(
        &t.to_candle(&Device::Cpu, DType::F32, &DequantOptions::default())
            .unwrap_err()
    ));
    assert!(shape_refused(&file.to_candle_content().unwrap_err()));
    for load_as in LoadAs::ALL {
        let err = file.load_candle(&Device::Cpu, load_as).unwrap_err();
        assert!(shape_refused(&err), "{load_as}: {err:?}");
    }
}
