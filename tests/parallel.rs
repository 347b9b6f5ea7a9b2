//! The parallel driver gives the same bits as the single-threaded kernels,
//! for every type, and streaming a model keeps memory bounded.

mod common;

use common::pseudo_random_bytes;
use ggufmap::dequant::{dequantize_parallel, CHUNK_OUTPUT_BYTES};
use ggufmap::format::ByteOrder;
use ggufmap::quant::{dequantize_bytes, Output};
use ggufmap::{DequantOptions, GgmlType, Gguf, GgufWriter, Parallelism};
use half::{bf16, f16};

/// Block count that is not a multiple of the driver's chunk size.
fn awkward_block_count(dtype: GgmlType, out_elem_bytes: usize) -> usize {
    let per_chunk = (CHUNK_OUTPUT_BYTES / out_elem_bytes / dtype.elements_per_block()).max(1);
    2 * per_chunk + 7
}

fn same_bits_as_sequential<O: Output + PartialEq + std::fmt::Debug>(
    dtype: GgmlType,
    parallelism: &Parallelism,
) {
    let blocks = awkward_block_count(dtype, std::mem::size_of::<O>());
    let bytes = pseudo_random_bytes(blocks * dtype.bytes_per_block(), u64::from(dtype.id()) + 1);
    let n = blocks * dtype.elements_per_block();
    let mut sequential = vec![O::default(); n];
    dequantize_bytes(dtype, &bytes, ByteOrder::Little, &mut sequential).unwrap();
    let mut parallel = vec![O::default(); n];
    dequantize_parallel(dtype, &bytes, ByteOrder::Little, &mut parallel, parallelism).unwrap();
    let seq_bits: &[u8] = bytemuck::cast_slice(&sequential);
    let par_bits: &[u8] = bytemuck::cast_slice(&parallel);
    assert!(
        seq_bits == par_bits,
        "{dtype} into {}: parallel output differs",
        O::NAME
    );
}

#[test]
fn parallel_output_equals_sequential_for_every_type() {
    let pools = [
        Parallelism::threads(4).unwrap(),
        Parallelism::threads(0).unwrap(),
    ];
    for &dtype in GgmlType::ALL {
        for parallelism in &pools {
            same_bits_as_sequential::<f32>(dtype, parallelism);
            same_bits_as_sequential::<f16>(dtype, parallelism);
            same_bits_as_sequential::<bf16>(dtype, parallelism);
        }
    }
}

#[test]
fn wrong_output_length_is_an_error() {
    let bytes = vec![0u8; 3 * 34];
    let mut out = vec![0f32; 95];
    let err = dequantize_parallel(
        GgmlType::Q8_0,
        &bytes,
        ByteOrder::Little,
        &mut out,
        &Parallelism::default(),
    );
    assert!(matches!(
        err,
        Err(ggufmap::Error::LengthMismatch {
            expected: 96,
            found: 95,
            ..
        })
    ));
    let err = dequantize_parallel(
        GgmlType::Q8_0,
        &bytes[..100],
        ByteOrder::Little,
        &mut out,
        &Parallelism::default(),
    );
    assert!(matches!(err, Err(ggufmap::Error::LengthMismatch { .. })));
}

fn q8_0_blocks(blocks: usize, seed: u64) -> Vec<u8> {
    let mut bytes = pseudo_random_bytes(blocks * 34, seed);
    for block in bytes.chunks_exact_mut(34) {
        block[..2].copy_from_slice(&f16::from_f32(0.01).to_le_bytes());
    }
    bytes
}

#[test]
fn chunks_and_pooled_buffers_equal_the_whole_tensor() {
    let blocks = awkward_block_count(GgmlType::Q4_K, 4);
    let data = pseudo_random_bytes(blocks * 144, 7);
    let mut writer = GgufWriter::new();
    writer
        .add_tensor("q", GgmlType::Q4_K, &[256, blocks as u64], &data)
        .unwrap();
    let bytes = writer.to_bytes().unwrap();
    let file = Gguf::from_bytes(&bytes).unwrap();
    let view = file.tensor("q").unwrap();
    let whole = view
        .dequantize_to_vec::<f32>(&DequantOptions::default())
        .unwrap();
    let pooled = view.dequantize::<f32>(&DequantOptions::default()).unwrap();
    assert!(bytemuck::cast_slice::<f32, u32>(&whole) == bytemuck::cast_slice::<f32, u32>(&pooled));

    let mut streamed = Vec::new();
    for chunk in view.dequantize_chunks::<f32>(10_000, &DequantOptions::default()) {
        let chunk = chunk.unwrap();
        assert_eq!(chunk.first_element, streamed.len());
        assert!(chunk.data.len() * 4 <= 10_000);
        streamed.extend_from_slice(&chunk.data);
    }
    assert!(
        bytemuck::cast_slice::<f32, u32>(&whole) == bytemuck::cast_slice::<f32, u32>(&streamed)
    );
}

#[test]
fn streaming_a_model_keeps_anonymous_memory_bounded() {
    let Some(before) = ggufmap::memory::usage().and_then(|u| u.resident_anon) else {
        eprintln!("no memory figures on this platform; skipping");
        return;
    };
    // 8 tensors of 16 MiB of Q8_0 each: a 128 MiB model whose f32 values
    // would take 482 MiB all at once, but 60 MiB one tensor at a time.
    let blocks = 16 * 1024 * 1024 / 34;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.gguf");
    {
        let mut writer = GgufWriter::new();
        let data = q8_0_blocks(blocks, 3);
        for i in 0..8 {
            writer
                .add_tensor(
                    format!("t{i}"),
                    GgmlType::Q8_0,
                    &[32, blocks as u64],
                    data.as_slice(),
                )
                .unwrap();
        }
        writer.write_file(&path).unwrap();
    }
    let model = Gguf::open(&path).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() >= 100 << 20);
    let largest_f32 = (blocks * 32 * 4) as u64;
    let mut peak = 0;
    let mut tensors = 0;
    for (view, values) in model.dequantize_all::<f32>(&DequantOptions::default()) {
        let values = values.unwrap();
        assert_eq!(values.len() as u64, view.n_elements());
        assert_eq!(
            values[0],
            f16::from_f32(0.01).to_f32() * f32::from(i8::from_le_bytes([view.bytes().unwrap()[2]]))
        );
        let now = ggufmap::memory::usage().unwrap().resident_anon.unwrap();
        peak = peak.max(now.saturating_sub(before));
        tensors += 1;
    }
    assert_eq!(tensors, 8);
    // One tensor's output plus slack for the test's own buffers and the
    // thread pool, far below the 482 MiB of holding every tensor.
    assert!(
        peak <= largest_f32 + (48 << 20),
        "anonymous memory grew by {} MiB",
        peak >> 20
    );
}

/// The shared generator's valid blocks (normal scales where each block
/// says they are) decode to finite values, in parallel as alone.
#[test]
fn valid_blocks_decode_to_finite_values() {
    let mut rng = common::Rng(7);
    for &dtype in GgmlType::ALL {
        let blocks = awkward_block_count(dtype, 4);
        let bytes = common::valid_blocks(dtype, blocks, &mut rng);
        let n = blocks * dtype.elements_per_block();
        let mut out = vec![0f32; n];
        dequantize_parallel(
            dtype,
            &bytes,
            ByteOrder::Little,
            &mut out,
            &Parallelism::default(),
        )
        .unwrap();
        if !matches!(
            dtype,
            GgmlType::I8 | GgmlType::I16 | GgmlType::I32 | GgmlType::I64
        ) {
            assert!(
                out.iter().all(|v| v.is_finite()),
                "{dtype}: a non-finite value"
            );
        }
    }
}
