//! The metadata cases of the table (see the parent module).

use super::*;

/// Keys.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn keys(cases: &mut Vec<Case>) {
    let mut e = Enc::le();
    e.header(3, 0, 1).u64(1000).raw(b"short key");
    let len = e.pos();
    case!(cases, "key length beyond the file", e.finish(),
        Err(Error::CountTooLarge { what: "metadata key", count: 1000, offset: 24, max })
            if *max == len - 32);
    let mut e = Enc::le();
    e.header(3, 0, 1).u64(u64::MAX).zeros(20);
    case!(
        cases,
        "key length u64::MAX",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "metadata key",
            count: u64::MAX,
            offset: 24,
            max: 20
        })
    );
    let (bytes, _) = one_kv(b"bad\xff\xfekey", T_U32, |e| {
        e.u32(1);
    });
    case!(
        cases,
        "non-UTF-8 key",
        bytes,
        Err(Error::InvalidUtf8 {
            what: "metadata key",
            offset: 32
        })
    );
    let (bytes, _) = one_kv(b"", T_U32, |e| {
        e.u32(1);
    });
    case!(cases, "empty key (valid)", bytes, Ok(_));
    let mut e = Enc::le();
    e.header(3, 0, 2).kv_u32("k", 1);
    let second = e.pos();
    e.kv_u32("k", 2);
    case!(cases, "duplicate key", e.finish(),
        Err(Error::DuplicateKey { key, offset }) if key == "k" && *offset == second);
    let mut e = Enc::le();
    e.header(3, 0, 3).kv_u32("b", 1).kv_str("a", "x");
    let third = e.pos();
    e.kv_u64("b", 2);
    case!(cases, "duplicate key, not adjacent, other type", e.finish(),
        Err(Error::DuplicateKey { key, offset }) if key == "b" && *offset == third);
}

/// Value types.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn value_types(cases: &mut Vec<Case>) {
    for id in [13u32, 0x100, u32::MAX] {
        let (bytes, value_at) = one_kv(b"a", id, |e| {
            e.u32(0);
        });
        case!(cases, format!("unknown value type {id}"), bytes,
            Err(Error::UnknownValueType { found, offset }) if *found == id && *offset == value_at - 4);
    }
    let (bytes, at) = one_kv(b"a", T_STRING, |e| {
        e.u64(1 << 40).raw(b"abc");
    });
    case!(cases, "string value length beyond the file", bytes,
        Err(Error::CountTooLarge { what: "string length", count, offset, max: 3 })
            if *count == 1 << 40 && *offset == at);
    let (bytes, at) = one_kv(b"a", T_STRING, |e| {
        e.u64(4).raw(b"abc");
    });
    case!(cases, "string value one byte short", bytes,
        Err(Error::CountTooLarge { what: "string length", count: 4, offset, max: 3 }) if *offset == at);
    let (bytes, at) = one_kv(b"a", T_STRING, |e| {
        e.str(b"\xff\xfe not utf-8");
    });
    case!(cases, "non-UTF-8 string value (valid: checked on access)", bytes, Ok(_) if at > 0);
    let (bytes, at) = one_kv(b"a", T_BOOL, |e| {
        e.u8(2);
    });
    case!(cases, "bool value 2", bytes,
        Err(Error::InvalidBool { found: 2, offset }) if *offset == at);
    let (bytes, at) = one_kv(b"a", T_BOOL, |e| {
        e.u8(0xFF);
    });
    case!(cases, "bool value 255", bytes,
        Err(Error::InvalidBool { found: 255, offset }) if *offset == at);
    let (bytes, at) = one_kv(b"a", T_U64, |e| {
        e.raw(&[1, 2, 3]);
    });
    case!(cases, "u64 value cut short", bytes,
        Err(Error::UnexpectedEof { what: "u64 value", offset, needed: 8, available: 3 }) if *offset == at);
}

/// Arrays.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn arrays(cases: &mut Vec<Case>) {
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_U32).u64(1 << 40).u32(1).u32(2);
    });
    case!(cases, "u32 array length beyond the file", bytes,
        Err(Error::CountTooLarge { what: "array length", count, offset, max: 2 })
            if *count == 1 << 40 && *offset == at + 4);
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_STRING).u64(3).str(b"abcdefghijklmnop");
    });
    case!(cases, "string array two elements short", bytes,
        Err(Error::UnexpectedEof { what: "string length", offset, needed: 8, available: 0 })
            if *offset == at + 12 + 24);
    // The last string of the last value cut short by 1 to 8 bytes: the fast
    // string skip must not step past the end (it once could by 8 bytes and
    // silently drop the string).
    for short in 1..=8u64 {
        let (mut bytes, at) = one_kv(b"a", T_ARRAY, |e| {
            e.u32(T_STRING).u64(2).str(b"ab").str(b"0123456789abcdef");
        });
        bytes.truncate(bytes.len() - short as usize);
        let last = at + 12 + 10;
        case!(cases, format!("last string of an array {short} bytes short"), bytes,
            Err(Error::CountTooLarge { what: "string length", count: 16, offset, max })
                if *offset == last && *max == 16 - short);
    }
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_STRING).u64(3).str(b"x").str(b"y");
    });
    case!(cases, "string array count beyond what the bytes can hold", bytes,
        Err(Error::CountTooLarge { what: "array length", count: 3, offset, max: 2 }) if *offset == at + 4);
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_STRING).u64(u64::MAX).zeros(80);
    });
    case!(cases, "string array length u64::MAX", bytes,
        Err(Error::CountTooLarge { what: "array length", count: u64::MAX, offset, max: 10 })
            if *offset == at + 4);
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_ARRAY).u64(1 << 50).zeros(120);
    });
    case!(cases, "array-of-arrays length beyond the file", bytes,
        Err(Error::CountTooLarge { what: "array length", offset, max: 10, .. }) if *offset == at + 4);
    for id in [13u32, u32::MAX] {
        let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
            e.u32(id).u64(1).u32(0);
        });
        case!(cases, format!("array of unknown element type {id}"), bytes,
            Err(Error::UnknownValueType { found, offset }) if *found == id && *offset == at);
    }
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_BOOL).u64(3).raw(&[1, 0, 2]);
    });
    case!(cases, "bool 2 inside an array", bytes,
        Err(Error::InvalidBool { found: 2, offset }) if *offset == at + 12 + 2);
    let (bytes, _) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_BOOL).u64(0);
    });
    case!(cases, "empty bool array (valid)", bytes, Ok(_));
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_ARRAY)
            .u64(2)
            .u32(T_BOOL)
            .u64(1)
            .u8(1)
            .u32(T_BOOL)
            .u64(1)
            .u8(3);
    });
    case!(cases, "bool 3 inside a nested array", bytes,
        Err(Error::InvalidBool { found: 3, offset }) if *offset == at + 12 + 13 + 12);
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        e.u32(T_ARRAY).u64(1).u32(13).u64(0);
    });
    case!(cases, "nested array of unknown element type", bytes,
        Err(Error::UnknownValueType { found: 13, offset }) if *offset == at + 12);
    let (bytes, levels) = nested_arrays(9);
    let ninth = levels[8];
    case!(cases, "arrays nested 9 deep", bytes,
        Err(Error::NestingTooDeep { offset, max: 8 }) if *offset == ninth);
    let (bytes, _) = nested_arrays(8);
    case!(cases, "arrays nested 8 deep (valid)", bytes, Ok(_));
    // Nine levels where the innermost array is empty: still too deep, as the
    // ninth array header is read.
    let (bytes, at) = one_kv(b"a", T_ARRAY, |e| {
        for _ in 0..8 {
            e.u32(T_ARRAY).u64(1);
        }
        e.u32(T_U8).u64(0);
    });
    case!(cases, "arrays nested 9 deep, innermost empty", bytes,
        Err(Error::NestingTooDeep { offset, max: 8 }) if *offset == at + 8 * 12);
}

/// General.alignment.
#[allow(clippy::redundant_pattern_matching)]
pub(super) fn general_alignment(cases: &mut Vec<Case>) {
    let align_file = |value_type: u32, value: &dyn Fn(&mut Enc)| {
        let mut e = Enc::le();
        e.header(3, 0, 1).key(b"general.alignment", value_type);
        let at = e.pos();
        value(&mut e);
        (e.finish(), at)
    };
    let (bytes, at) = align_file(T_U64, &|e| {
        e.u64(32);
    });
    case!(cases, "general.alignment as u64", bytes,
        Err(Error::AlignmentType { found: ValueType::U64, offset }) if *offset == at);
    let (bytes, at) = align_file(T_STRING, &|e| {
        e.str(b"32");
    });
    case!(cases, "general.alignment as string", bytes,
        Err(Error::AlignmentType { found: ValueType::String, offset }) if *offset == at);
    let (bytes, at) = align_file(T_I32, &|e| {
        e.u32(32);
    });
    case!(cases, "general.alignment as i32", bytes,
        Err(Error::AlignmentType { found: ValueType::I32, offset }) if *offset == at);
    let (bytes, at) = align_file(T_ARRAY, &|e| {
        e.u32(T_U32).u64(1).u32(32);
    });
    case!(cases, "general.alignment as array of u32", bytes,
        Err(Error::AlignmentType { found: ValueType::Array, offset }) if *offset == at);
    for value in [0u32, 3, 48, u32::MAX] {
        let (bytes, at) = align_file(T_U32, &|e| {
            e.u32(value);
        });
        case!(cases, format!("general.alignment {value}"), bytes,
            Err(Error::InvalidAlignment { value: v, offset }) if *v == value && *offset == at);
    }
    for alignment in [1u32, 8, 64, 1 << 31] {
        let (bytes, _) = align_file(T_U32, &|e| {
            e.u32(alignment);
        });
        case!(cases, format!("general.alignment {alignment}, no tensors (valid)"), bytes,
            Ok(idx) if idx.alignment() == alignment);
    }
    let mut e = Enc::le();
    e.header(3, 1, 1)
        .kv_u32("general.alignment", 1 << 31)
        .tensor(b"t", &[0], F32, 0);
    let end = e.pos();
    e.zeros(64);
    case!(cases, "general.alignment 2^31: padding past the end", e.finish(),
        Err(Error::UnexpectedEof { what: "padding before tensor data", offset, .. }) if *offset == end);
}
