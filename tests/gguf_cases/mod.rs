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

/// A file with a header and nothing else.
fn empty() -> Vec<u8> {
    let mut e = Enc::le();
    e.header(3, 0, 0);
    e.finish()
}

mod header;
mod metadata;
mod tensors;

/// Every hand-made malformed (and borderline valid) file, section by
/// section.
pub fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    header::magic_and_version(&mut cases);
    header::counts(&mut cases);
    metadata::keys(&mut cases);
    metadata::value_types(&mut cases);
    metadata::arrays(&mut cases);
    metadata::general_alignment(&mut cases);
    tensors::tensor_names(&mut cases);
    tensors::dims(&mut cases);
    tensors::types(&mut cases);
    tensors::layout(&mut cases);
    tensors::borderline_valid_tensors(&mut cases);
    tensors::big_endian_files(&mut cases);
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
