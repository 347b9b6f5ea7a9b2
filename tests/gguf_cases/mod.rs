//! Shared by `malformed.rs` and `alloc_bound.rs`: a byte-level GGUF encoder
//! that can write any field wrong, the table of hand-made malformed files,
//! a writer-made valid sample file, and a walk that uses everything a parsed
//! file exposes.
//!
//! Offsets in the table are computed while the bytes are built (`Enc::pos`),
//! so each case states the exact byte its error must name.

#![allow(dead_code)]

use ggufmap::format::{parse, ByteOrder, Index, Value, ValueType};
use ggufmap::{Error, GgmlType, Gguf, GgufWriter, MetaArray, MetaValue};

// Value type ids, as written on the wire.
pub const T_U8: u32 = 0;
pub const T_U32: u32 = 4;
pub const T_I32: u32 = 5;
pub const T_BOOL: u32 = 7;
pub const T_STRING: u32 = 8;
pub const T_ARRAY: u32 = 9;
pub const T_U64: u32 = 10;

// Tensor type ids.
pub const F32: u32 = 0;
pub const Q4_0: u32 = 2;
pub const F64: u32 = 28;
pub const Q4_K: u32 = 12;

/// Size of the fixed header: magic, version, tensor count, metadata count.
pub const HEADER: u64 = 24;

/// A GGUF byte builder that writes exactly what it is told.
pub struct Enc {
    pub buf: Vec<u8>,
    pub order: ByteOrder,
}

impl Enc {
    pub fn le() -> Self {
        Enc {
            buf: Vec::new(),
            order: ByteOrder::Little,
        }
    }

    pub fn be() -> Self {
        Enc {
            buf: Vec::new(),
            order: ByteOrder::Big,
        }
    }

    /// Offset of the next byte written.
    pub fn pos(&self) -> u64 {
        self.buf.len() as u64
    }

    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.raw(&[v])
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        match self.order {
            ByteOrder::Little => self.raw(&v.to_le_bytes()),
            ByteOrder::Big => self.raw(&v.to_be_bytes()),
        }
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        match self.order {
            ByteOrder::Little => self.raw(&v.to_le_bytes()),
            ByteOrder::Big => self.raw(&v.to_be_bytes()),
        }
    }

    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.buf.resize(self.buf.len() + n, 0);
        self
    }

    /// Zero bytes up to the next multiple of `alignment`.
    pub fn pad(&mut self, alignment: u64) -> &mut Self {
        let len = self.pos();
        let target = len.div_ceil(alignment) * alignment;
        self.zeros((target - len) as usize)
    }

    /// A GGUF string: u64 length, then the bytes.
    pub fn str(&mut self, s: &[u8]) -> &mut Self {
        self.u64(s.len() as u64).raw(s)
    }

    /// Magic, version and both counts.
    pub fn header(&mut self, version: u32, n_tensors: u64, n_kv: u64) -> &mut Self {
        self.raw(b"GGUF").u32(version).u64(n_tensors).u64(n_kv)
    }

    /// A key and a value type id; the value is written next by the caller.
    pub fn key(&mut self, key: &[u8], value_type: u32) -> &mut Self {
        self.str(key).u32(value_type)
    }

    pub fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.key(key.as_bytes(), T_U32).u32(v)
    }

    pub fn kv_u64(&mut self, key: &str, v: u64) -> &mut Self {
        self.key(key.as_bytes(), T_U64).u64(v)
    }

    pub fn kv_str(&mut self, key: &str, v: &str) -> &mut Self {
        self.key(key.as_bytes(), T_STRING).str(v.as_bytes())
    }

    /// A tensor info: name, n_dims, dims, type id, data offset.
    pub fn tensor(&mut self, name: &[u8], dims: &[u64], type_id: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(type_id).u64(offset)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Offsets inside one tensor info written by [`Enc::tensor`].
pub struct InfoOffsets {
    pub info: u64,
    pub n_dims: u64,
    pub dims: u64,
    pub type_id: u64,
    pub data_offset: u64,
}

/// The offsets of a tensor info with this name and number of dims starting
/// at `info`.
pub fn info_offsets(info: u64, name_len: usize, n_dims: usize) -> InfoOffsets {
    let n_dims_at = info + 8 + name_len as u64;
    let dims = n_dims_at + 4;
    let type_id = dims + 8 * n_dims as u64;
    InfoOffsets {
        info,
        n_dims: n_dims_at,
        dims,
        type_id,
        data_offset: type_id + 4,
    }
}

/// A file with no metadata and one tensor info, then padding and `data_len`
/// bytes of data; returns the bytes and the info's offsets.
pub fn one_tensor(
    name: &[u8],
    dims: &[u64],
    type_id: u32,
    data_len: usize,
) -> (Vec<u8>, InfoOffsets) {
    let mut e = Enc::le();
    e.header(3, 1, 0);
    let at = info_offsets(e.pos(), name.len(), dims.len());
    e.tensor(name, dims, type_id, 0).pad(32).zeros(data_len);
    (e.finish(), at)
}

/// A file whose only metadata entry is `key` of `value_type`, its value
/// written by `value`; returns the bytes and the value's offset.
pub fn one_kv(key: &[u8], value_type: u32, value: impl FnOnce(&mut Enc)) -> (Vec<u8>, u64) {
    let mut e = Enc::le();
    e.header(3, 0, 1).key(key, value_type);
    let at = e.pos();
    value(&mut e);
    (e.finish(), at)
}

/// Arrays nested `depth` deep (depth 1 = a plain array), the innermost
/// holding one u8; returns the bytes and the offset of each level's
/// element-type field (level 1 first).
pub fn nested_arrays(depth: usize) -> (Vec<u8>, Vec<u64>) {
    let mut levels = Vec::new();
    let (bytes, _) = one_kv(b"nested", T_ARRAY, |e| {
        for level in 1..=depth {
            levels.push(e.pos());
            if level < depth {
                e.u32(T_ARRAY).u64(1);
            } else {
                e.u32(T_U8).u64(1).u8(7);
            }
        }
    });
    (bytes, levels)
}

/// What parsing a case's bytes must give.
pub type Check = Box<dyn Fn(&Result<Index, Error>) -> bool>;

/// One hand-made file and what parsing it must give.
pub struct Case {
    pub name: String,
    pub bytes: Vec<u8>,
    pub check: Check,
}

/// Adds a case: `case!(cases, name, bytes, pattern [if guard])`, the pattern
/// matched against `&Result<Index, Error>`.
macro_rules! case {
    ($cases:ident, $name:expr, $bytes:expr, $($pat:tt)+) => {
        $cases.push(Case {
            name: ($name).to_string(),
            bytes: $bytes,
            check: Box::new(move |r: &Result<Index, Error>| matches!(r, $($pat)+)),
        })
    };
}

/// Every hand-made malformed (and borderline valid) file.
// `Ok(_)` patterns in the table read better than `is_ok()`.
#[allow(clippy::redundant_pattern_matching)]
pub fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let empty = || {
        let mut e = Enc::le();
        e.header(3, 0, 0);
        e.finish()
    };

    // ---- magic and version -------------------------------------------------
    let mut bytes = empty();
    bytes[3] = b'G';
    case!(cases, "bad magic GGUG", bytes,
        Err(Error::BadMagic { found }) if found == b"GGUG");
    let mut bytes = empty();
    bytes[..4].copy_from_slice(b"gguf");
    case!(cases, "bad magic lowercase", bytes,
        Err(Error::BadMagic { found }) if found == b"gguf");
    case!(
        cases,
        "magic cut short",
        b"GGU".to_vec(),
        Err(Error::UnexpectedEof {
            what: "magic",
            offset: 0,
            needed: 4,
            available: 3
        })
    );
    case!(
        cases,
        "empty file",
        Vec::new(),
        Err(Error::UnexpectedEof {
            what: "magic",
            offset: 0,
            ..
        })
    );
    for version in [0u32, 1, 4, 0x0100] {
        let mut e = Enc::le();
        e.header(version, 0, 0);
        case!(cases, format!("version {version}"), e.finish(),
            Err(Error::UnsupportedVersion { version: v, .. }) if *v == version);
    }
    for version in [1u32, 4, 0xFFFF] {
        let mut e = Enc::be();
        e.header(version, 0, 0);
        case!(cases, format!("big-endian version {version}"), e.finish(),
            Err(Error::UnsupportedVersion { version: v, .. }) if *v == version);
    }
    // 0x00010000 little-endian has zero low bits: it reads as big-endian 256,
    // and the message gives both readings.
    let mut e = Enc::le();
    e.header(0x0001_0000, 0, 0);
    case!(cases, "version 65536 little-endian", e.finish(),
        Err(e @ Error::UnsupportedVersion { version: 256, raw: [0, 0, 1, 0] })
            if e.to_string().contains("65536 little-endian"));
    let mut e = Enc::be();
    e.header(3, 0, 1).kv_u32("a", 7);
    case!(cases, "big-endian version 3 (valid)", e.finish(),
        Ok(idx) if idx.byte_order() == ByteOrder::Big && idx.version() == 3);
    let mut e = Enc::le();
    e.header(2, 0, 0);
    case!(cases, "version 2 (valid)", e.finish(), Ok(idx) if idx.version() == 2);
    // A big-endian version with little-endian counts: the counts are garbage.
    let mut e = Enc::be();
    e.raw(b"GGUF").u32(3);
    e.order = ByteOrder::Little;
    e.u64(1).u64(0).zeros(64);
    case!(
        cases,
        "big-endian version, little-endian tensor count",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "tensor count",
            count: 0x0100_0000_0000_0000,
            offset: 8,
            ..
        })
    );
    case!(
        cases,
        "version cut short",
        b"GGUF\x03\x00".to_vec(),
        Err(Error::UnexpectedEof {
            what: "version",
            offset: 4,
            needed: 4,
            available: 2
        })
    );

    // ---- counts --------------------------------------------------------------
    let mut e = Enc::le();
    e.header(3, u64::MAX, 0).zeros(100);
    let len = e.pos();
    case!(cases, "tensor count u64::MAX", e.finish(),
        Err(Error::CountTooLarge { what: "tensor count", count: u64::MAX, offset: 8, max })
            if *max == (len - 16) / 24);
    let mut e = Enc::le();
    e.header(3, 1, 0);
    case!(
        cases,
        "tensor count 1 in a bare header",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "tensor count",
            count: 1,
            offset: 8,
            max: 0
        })
    );
    let mut e = Enc::le();
    e.header(3, 0, 1 << 60).zeros(100);
    let len = e.pos();
    case!(cases, "metadata count 2^60", e.finish(),
        Err(Error::CountTooLarge { what: "metadata count", count, offset: 16, max })
            if *count == 1 << 60 && *max == (len - 24) / 13);
    let mut e = Enc::le();
    e.header(3, 0, 2).kv_u32("a", 1);
    case!(
        cases,
        "metadata count one more than the entries",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "metadata count",
            count: 2,
            offset: 16,
            max: 1
        })
    );
    let mut e = Enc::le();
    e.header(3, 0, 2).kv_u32("a", 1).zeros(12);
    let at = HEADER + 17;
    case!(cases, "metadata count one more, filler zeros", e.finish(),
        Err(Error::UnexpectedEof { what: "u8 value", offset, .. }) if *offset == at + 12);
    case!(
        cases,
        "tensor count cut short",
        b"GGUF\x03\x00\x00\x00\x01\x00".to_vec(),
        Err(Error::UnexpectedEof {
            what: "tensor count",
            offset: 8,
            needed: 8,
            available: 2
        })
    );

    // A tensor count the bytes after byte 8 could hold, but not the bytes the
    // metadata leaves: refused by the second check, before any reservation.
    let mut e = Enc::le();
    e.header(3, 5, 1).kv_str("k", &"x".repeat(240)).zeros(30);
    case!(
        cases,
        "tensor count beyond what the metadata leaves",
        e.finish(),
        Err(Error::CountTooLarge {
            what: "tensor count",
            count: 5,
            offset: 8,
            max: 1
        })
    );

    // ---- keys ----------------------------------------------------------------
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

    // ---- value types -----------------------------------------------------------
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

    // ---- arrays ----------------------------------------------------------------
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

    // ---- general.alignment ------------------------------------------------------
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

    // ---- tensor names ------------------------------------------------------------
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

    // ---- dims ----------------------------------------------------------------------
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

    // ---- types -----------------------------------------------------------------------
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

    // ---- layout ----------------------------------------------------------------------
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

    // ---- borderline valid tensors --------------------------------------------------------
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

    // ---- big-endian files -------------------------------------------------------------------
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

    cases
}

const I8_ID: u32 = 24;

/// A writer-made file (~2 KB): metadata of every type, a string array,
/// nested arrays, and 3 tensors.
pub fn sample_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", "llama").unwrap();
    w.add_metadata("general.name", "sample ✓").unwrap();
    w.add_metadata("test.u8", 200u8).unwrap();
    w.add_metadata("test.i8", -100i8).unwrap();
    w.add_metadata("test.u16", 60000u16).unwrap();
    w.add_metadata("test.i16", -30000i16).unwrap();
    w.add_metadata("test.u32", 4_000_000_000u32).unwrap();
    w.add_metadata("test.i32", -2_000_000_000i32).unwrap();
    w.add_metadata("test.f32", 1.5f32).unwrap();
    w.add_metadata("test.bool", true).unwrap();
    w.add_metadata("test.u64", u64::MAX - 1).unwrap();
    w.add_metadata("test.i64", i64::MIN + 1).unwrap();
    w.add_metadata("test.f64", -2.25f64).unwrap();
    let tokens: Vec<String> = (0..64).map(|i| format!("▁tok{i}")).collect();
    w.add_metadata("tokenizer.ggml.tokens", MetaValue::strings(&tokens))
        .unwrap();
    w.add_metadata(
        "tokenizer.ggml.scores",
        (0..64).map(|i| i as f32 * 0.5).collect::<Vec<_>>(),
    )
    .unwrap();
    w.add_metadata("test.bools", vec![true, false, true])
        .unwrap();
    let inner = |v: Vec<i32>| MetaValue::from(v);
    let nested = MetaArray::new(
        ValueType::Array,
        vec![inner(vec![1, 2]), inner(vec![]), inner(vec![3])],
    )
    .unwrap();
    w.add_metadata("test.nested", nested).unwrap();
    let q8: Vec<u8> = (0..4 * 34).map(|i| i as u8).collect();
    w.add_tensor("token_embd.weight", GgmlType::Q8_0, &[32, 4], q8)
        .unwrap();
    let norm: Vec<f32> = (0..16).map(|i| i as f32).collect();
    w.add_tensor(
        "blk.0.attn_norm.weight",
        GgmlType::F32,
        &[16],
        bytemuck::cast_slice(&norm).to_vec(),
    )
    .unwrap();
    let half: Vec<u8> = (0..64).map(|i| (i * 7) as u8).collect();
    w.add_tensor("output.weight", GgmlType::F16, &[8, 4], half)
        .unwrap();
    w.to_bytes().unwrap()
}

/// Walks a value, recursing into arrays (also through `get`); returns the
/// number of values seen.
pub fn walk_value(value: &Value<'_>) -> u64 {
    match value {
        Value::Array(array) => {
            let mut seen = 1;
            let mut count = 0u64;
            for item in array.iter() {
                assert_eq!(item.value_type(), array.element_type());
                seen += walk_value(&item);
                count += 1;
            }
            assert_eq!(count, array.len());
            if !array.is_empty() {
                assert!(array.get(0).is_some());
                assert!(array.get(array.len() - 1).is_some());
            }
            assert!(array.get(array.len()).is_none());
            seen
        }
        Value::String(s) => {
            let _ = s.as_str();
            let _ = s.to_string_lossy();
            1
        }
        other => {
            let _ = (other.to_u64(), other.to_i64(), other.to_f64());
            1
        }
    }
}

/// Uses everything a successfully opened file exposes: every metadata value
/// (arrays recursively), every key lookup, every tensor's bytes and lookup
/// by name. Panics if a tensor's bytes are not inside the file.
pub fn use_everything(file: &Gguf<'_>) {
    let len = file.file_size();
    let metadata = file.metadata();
    for (key, value) in metadata.iter() {
        walk_value(&value);
        let again = metadata.get(key).expect("every key can be looked up");
        assert_eq!(again.value_type(), value.value_type());
        let _ = metadata.get_uint(key);
        let _ = metadata.get_str(key);
    }
    assert!(file.data_start() as u64 <= len);
    for t in file.tensors() {
        let range = t.byte_range();
        assert!(
            range.start <= range.end && range.end <= len,
            "tensor {} outside the file",
            t.name()
        );
        assert!(range.start >= file.data_start() as u64);
        let bytes = t.read_bytes().expect("a tensor's bytes read");
        assert_eq!(bytes.len() as u64, t.info().n_bytes());
        assert_eq!(bytes.len() as u64, range.end - range.start);
        let found = file
            .tensor(t.name())
            .expect("every tensor can be found by name");
        assert_eq!(found.byte_range(), range);
        let _ = t.shape();
    }
}

/// `parse` and `Gguf::from_bytes` agree; on success everything is used.
pub fn open_and_use(bytes: &[u8]) -> Result<(), Error> {
    let parsed = parse(bytes);
    let file = Gguf::from_bytes(bytes);
    match (&parsed, &file) {
        (Ok(_), Ok(file)) => use_everything(file),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!(
            "parse and Gguf::from_bytes disagree: {parsed:?} vs {:?}",
            file.as_ref().err()
        ),
    }
    parsed.map(|_| ())
}
