//! The tensors cases of the table (see the parent module).

use super::*;

/// Tensor names.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn tensor_names(cases: &mut Vec<Case>) {
    let name64 = [b'n'; 64];
    let (bytes, at) = one_tensor(&name64, &[4], F32, 16);
    case!(cases, "tensor name of 64 bytes", bytes,
        Err(Error::NameTooLong { len: 64, max: 63, offset }) if *offset == at.info);
    let (bytes, _) = one_tensor(&name64[..63], &[4], F32, 16);
    case!(cases, "tensor name of 63 bytes (valid)", bytes,
        Ok(idx) if idx.tensors().len() == 1);
    let (bytes, at) = one_tensor(b"w\xc3\x28", &[4], F32, 16);
    case!(cases, "non-UTF-8 tensor name", bytes,
        Err(Error::InvalidUtf8 { what: "tensor name", offset }) if *offset == at.info + 8);
    let mut e = Enc::le();
    e.header(3, 1, 0).u64(1 << 20).raw(b"w").zeros(30);
    case!(cases, "tensor name length beyond the file", e.finish(),
        Err(Error::CountTooLarge { what: "tensor name", count, offset: 24, max: 31 }) if *count == 1 << 20);
    let mut e = Enc::le();
    e.header(3, 2, 0).tensor(b"w", &[8], F32, 0);
    let second = e.pos();
    e.tensor(b"w", &[8], F32, 32).pad(32).zeros(64);
    case!(cases, "duplicate tensor names", e.finish(),
        Err(Error::DuplicateTensor { tensor, offset }) if tensor == "w" && *offset == second);
}

/// Dims.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn dims(cases: &mut Vec<Case>) {
    let (bytes, at) = one_tensor(b"w", &[1, 1, 1, 1, 1], F32, 4);
    case!(cases, "n_dims 5", bytes,
        Err(Error::TooManyDims { tensor, n_dims: 5, offset }) if tensor == "w" && *offset == at.n_dims);
    let mut e = Enc::le();
    e.header(3, 1, 0).str(b"w").u32(u32::MAX).zeros(64);
    case!(
        cases,
        "n_dims u32::MAX",
        e.finish(),
        Err(Error::TooManyDims {
            n_dims: u32::MAX,
            offset: 33,
            ..
        })
    );
    let (bytes, at) = one_tensor(b"w", &[4, 1 << 63], F32, 16);
    case!(cases, "dim 1 > i64::MAX", bytes,
        Err(Error::InvalidDim { tensor, axis: 1, value, offset })
            if tensor == "w" && *value == 1 << 63 && *offset == at.dims + 8);
    let (bytes, at) = one_tensor(b"w", &[u64::MAX], F32, 16);
    case!(cases, "dim 0 = u64::MAX", bytes,
        Err(Error::InvalidDim { axis: 0, value: u64::MAX, offset, .. }) if *offset == at.dims);
    let (bytes, at) = one_tensor(b"w", &[1 << 32, 1 << 32, 2], F32, 16);
    case!(cases, "element count overflows u64 (2^32 x 2^32 x 2)", bytes,
        Err(Error::SizeOverflow { tensor, what: "element count", offset })
            if tensor == "w" && *offset == at.info);
    let (bytes, at) = one_tensor(b"w", &[1 << 32, 1 << 31], I8_ID, 16);
    case!(cases, "element count 2^63 exceeds i64::MAX", bytes,
        Err(Error::SizeOverflow { what: "element count", offset, .. }) if *offset == at.info);
    // ggml's rule: every running product counts, even before a zero dim.
    let (bytes, at) = one_tensor(b"z", &[1 << 32, 1 << 31, 0], F32, 0);
    case!(cases, "running product 2^63 before a zero dim", bytes,
        Err(Error::SizeOverflow { tensor, what: "element count", offset })
            if tensor == "z" && *offset == at.info);
    // Q4_0: ne0 a multiple of 32 just under 2^63, times 2 rows. llama.cpp's
    // overflow checks let such a tensor through; the element count alone
    // overflows i64 here, and the byte size (ne0 / 32 * 18 * 2) would too.
    let ne0 = (1u64 << 63) - 32 * 3;
    let (bytes, at) = one_tensor(b"q", &[ne0, 2], Q4_0, 18);
    case!(cases, "Q4_0 byte size wraps (ne0 ~ 2^63, 2 rows)", bytes,
        Err(Error::SizeOverflow { offset, .. }) if *offset == at.info);
    // F32 / F64 with an element count that fits i64 but a byte size that
    // does not fit u64.
    let (bytes, at) = one_tensor(b"w", &[1 << 62], F32, 16);
    case!(cases, "F32 byte size 2^64 overflows", bytes,
        Err(Error::SizeOverflow { what: "byte size", offset, .. }) if *offset == at.info);
    let (bytes, at) = one_tensor(b"w", &[1 << 61, 3], F64, 16);
    case!(cases, "F64 byte size overflows", bytes,
        Err(Error::SizeOverflow { what: "byte size", offset, .. }) if *offset == at.info);
    // F32 with 2^62 - 1 elements: 2^64 - 4 bytes, whose padding to 32 wraps to
    // 0 in ggml's GGML_PAD. It cannot lie inside the file.
    let (bytes, _) = one_tensor(b"w", &[(1 << 62) - 1], F32, 16);
    case!(cases, "F32 whose padded size wraps to 0", bytes,
        Err(Error::TensorOutOfBounds { tensor, end: u64::MAX, .. }) if tensor == "w");
}

/// Types.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn types(cases: &mut Vec<Case>) {
    for id in [43u32, 99, 1000, u32::MAX] {
        let (bytes, at) = one_tensor(b"w", &[32], id, 64);
        case!(cases, format!("unknown tensor type {id}"), bytes,
            Err(Error::UnknownType { tensor: Some(tensor), id: i, offset: Some(offset), removed: false })
                if tensor == "w" && *i == id && *offset == at.type_id);
    }
    for id in [4u32, 5, 31, 32, 33, 36, 37, 38] {
        let (bytes, at) = one_tensor(b"w", &[32], id, 64);
        case!(cases, format!("removed tensor type {id}"), bytes,
            Err(Error::UnknownType { tensor: Some(tensor), id: i, offset: Some(offset), removed: true })
                if tensor == "w" && *i == id && *offset == at.type_id);
    }
    let (bytes, at) = one_tensor(b"w", &[33], Q4_0, 64);
    case!(cases, "Q4_0 ne0 = 33", bytes,
        Err(Error::RowNotBlockAligned { tensor, dtype: GgmlType::Q4_0, ne0: 33, block: 32, offset })
            if tensor == "w" && *offset == at.info);
    let (bytes, at) = one_tensor(b"w", &[32, 8], Q4_K, 256);
    case!(cases, "Q4_K ne0 = 32", bytes,
        Err(Error::RowNotBlockAligned { dtype: GgmlType::Q4_K, ne0: 32, block: 256, offset, .. })
            if *offset == at.info);
}

/// Layout.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn layout(cases: &mut Vec<Case>) {
    let mut e = Enc::le();
    e.header(3, 1, 0);
    let at = info_offsets(e.pos(), 1, 1);
    e.tensor(b"w", &[4], F32, 16).pad(32).zeros(64);
    case!(cases, "misaligned data offset", e.finish(),
        Err(Error::DataOffsetNotAligned { tensor, data_offset: 16, alignment: 32, offset })
            if tensor == "w" && *offset == at.data_offset);
    let mut e = Enc::le();
    e.header(3, 2, 0).tensor(b"a", &[8], F32, 0);
    let at = info_offsets(e.pos(), 1, 1);
    e.tensor(b"b", &[8], F32, 0).pad(32).zeros(64);
    case!(cases, "second tensor overlaps the first", e.finish(),
        Err(Error::TensorOffsetMismatch { tensor, data_offset: 0, expected: 32, offset })
            if tensor == "b" && *offset == at.data_offset);
    let mut e = Enc::le();
    e.header(3, 2, 0).tensor(b"a", &[8], F32, 0);
    let at = info_offsets(e.pos(), 1, 1);
    e.tensor(b"b", &[8], F32, 64).pad(32).zeros(128);
    case!(cases, "gap between tensors", e.finish(),
        Err(Error::TensorOffsetMismatch { data_offset: 64, expected: 32, offset, .. })
            if *offset == at.data_offset);
    let mut e = Enc::le();
    e.header(3, 1, 0);
    let at = info_offsets(e.pos(), 1, 1);
    e.tensor(b"a", &[8], F32, 32).pad(32).zeros(64);
    case!(cases, "first tensor not at offset 0", e.finish(),
        Err(Error::TensorOffsetMismatch { data_offset: 32, expected: 0, offset, .. })
            if *offset == at.data_offset);
    // Two tensors in index order whose offsets are swapped: b before a.
    let mut e = Enc::le();
    e.header(3, 2, 0)
        .tensor(b"a", &[8], F32, 32)
        .tensor(b"b", &[8], F32, 0)
        .pad(32)
        .zeros(64);
    case!(
        cases,
        "tensors out of index order",
        e.finish(),
        Err(Error::TensorOffsetMismatch {
            data_offset: 32,
            expected: 0,
            ..
        })
    );
    let mut e = Enc::le();
    e.header(3, 1, 0).tensor(b"w", &[8], F32, 0).pad(32);
    let start = e.pos();
    e.zeros(31);
    let len = e.pos();
    case!(cases, "tensor bytes past the end (1 byte short)", e.finish(),
        Err(Error::TensorOutOfBounds { tensor, start: s, end, len: l })
            if tensor == "w" && *s == start && *end == start + 32 && *l == len);
    let mut e = Enc::le();
    e.header(3, 2, 0)
        .tensor(b"a", &[8], F32, 0)
        .tensor(b"b", &[1 << 40], F32, 32)
        .pad(32)
        .zeros(32);
    case!(cases, "second tensor far past the end", e.finish(),
        Err(Error::TensorOutOfBounds { tensor, .. }) if tensor == "b");
    let mut e = Enc::le();
    e.header(3, 1, 0).tensor(b"w", &[1], F32, 0);
    let end = e.pos();
    assert_ne!(end % 32, 0);
    e.zeros(4);
    case!(cases, "data section padding beyond the end", e.finish(),
        Err(Error::UnexpectedEof { what: "padding before tensor data", offset, .. }) if *offset == end);
    let mut e = Enc::le();
    e.header(3, 1, 0).tensor(b"w", &[0], F32, 0);
    case!(
        cases,
        "zero-byte tensor, file ends before the padding",
        e.finish(),
        Err(Error::UnexpectedEof {
            what: "padding before tensor data",
            ..
        })
    );
    let mut e = Enc::le();
    e.header(3, 1, 0).tensor(b"w", &[8], F32, 0);
    let info_end = e.pos();
    e.pad(32).zeros(32);
    case!(cases, "exact padding and data (valid)", e.finish(),
        Ok(idx) if idx.data_start() as u64 == info_end.div_ceil(32) * 32);
    let mut e = Enc::le();
    e.header(3, 0, 1).kv_u32("a", 1);
    let end = e.pos();
    e.raw(b"trailing bytes that are nobody's");
    case!(cases, "zero tensors, trailing bytes (valid)", e.finish(),
        Ok(idx) if idx.tensors().is_empty() && idx.data_start() as u64 == end);
}

/// Borderline valid tensors.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn borderline_valid_tensors(cases: &mut Vec<Case>) {
    let mut e = Enc::le();
    e.header(3, 3, 0)
        .tensor(b"a", &[0, 4], F32, 0)
        .tensor(b"b", &[4, 0], F32, 0)
        .tensor(b"c", &[0], Q4_0, 0)
        .pad(32);
    case!(cases, "zero-sized dims (valid, 0 bytes)", e.finish(),
        Ok(idx) if idx.tensors().iter().all(|t| t.n_bytes() == 0 && t.n_elements() == 0));
    let (bytes, _) = one_tensor(b"s", &[], F32, 4);
    case!(cases, "n_dims 0: F32 scalar (valid)", bytes,
        Ok(idx) if idx.tensors()[0].n_elements() == 1 && idx.tensors()[0].n_bytes() == 4);
    let (bytes, at) = one_tensor(b"s", &[], Q4_0, 18);
    case!(cases, "n_dims 0: Q4_0 scalar", bytes,
        Err(Error::RowNotBlockAligned { dtype: GgmlType::Q4_0, ne0: 1, block: 32, offset, .. })
            if *offset == at.info);
    let mut e = Enc::le();
    e.header(3, 1, 1)
        .kv_u32("general.alignment", 1)
        .tensor(b"w", &[3], F32, 0)
        .zeros(12);
    case!(cases, "alignment 1, no padding (valid)", e.finish(),
        Ok(idx) if idx.alignment() == 1 && idx.tensors()[0].n_bytes() == 12);
    let mut e = Enc::le();
    e.header(3, 2, 1)
        .kv_u32("general.alignment", 64)
        .tensor(b"a", &[4], F32, 0);
    let at = info_offsets(e.pos(), 1, 1);
    e.tensor(b"b", &[4], F32, 32).pad(64).zeros(128);
    case!(cases, "alignment 64: offset 32 is misaligned", e.finish(),
        Err(Error::DataOffsetNotAligned { data_offset: 32, alignment: 64, offset, .. })
            if *offset == at.data_offset);
}

/// Big-endian files.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn big_endian_files(cases: &mut Vec<Case>) {
    let mut e = Enc::be();
    e.header(3, 1, 0)
        .tensor(b"w", &[8], F32, 0)
        .pad(32)
        .zeros(32);
    case!(cases, "big-endian tensor (valid)", e.finish(),
        Ok(idx) if idx.byte_order() == ByteOrder::Big && idx.tensors()[0].n_bytes() == 32);
    let mut e = Enc::be();
    e.header(3, 0, 1);
    let at = e.pos() + 8 + 1;
    e.key(b"a", T_BOOL).u8(2);
    case!(cases, "big-endian bool 2", e.finish(),
        Err(Error::InvalidBool { found: 2, offset }) if *offset == at + 4);
    let mut e = Enc::be();
    e.header(3, 0, 1).key(b"general.alignment", T_U32);
    let at = e.pos();
    e.u32(48);
    case!(cases, "big-endian alignment 48", e.finish(),
        Err(Error::InvalidAlignment { value: 48, offset }) if *offset == at);
}
