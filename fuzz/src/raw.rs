//! A GGUF encoder that checks nothing: it writes whatever it is given, as
//! the format lays it out. The `roundtrip` target's differential oracle
//! encodes what it hands the writer with it too, and asserts that the
//! writer accepts exactly what the reader accepts.

use ggufmap::format::{ByteOrder, ALIGNMENT_KEY, DEFAULT_ALIGNMENT, MAGIC};
use ggufmap::{GgmlType, MetaValue};

/// One tensor as given: its bytes laid out by their own length.
pub struct RawTensor<'a> {
    pub name: &'a str,
    pub dtype: GgmlType,
    pub dims: &'a [u64],
    pub data: &'a [u8],
}

struct Enc {
    out: Vec<u8>,
    order: ByteOrder,
}

impl Enc {
    fn bytes_of(&mut self, le: &[u8], be: &[u8]) {
        self.out
            .extend_from_slice(if self.order == ByteOrder::Little {
                le
            } else {
                be
            });
    }

    fn u32(&mut self, v: u32) {
        self.bytes_of(&v.to_le_bytes(), &v.to_be_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.bytes_of(&v.to_le_bytes(), &v.to_be_bytes());
    }

    fn string(&mut self, s: &[u8]) {
        self.u64(s.len() as u64);
        self.out.extend_from_slice(s);
    }

    fn value(&mut self, v: &MetaValue) {
        match v {
            MetaValue::U8(x) => self.out.push(*x),
            MetaValue::I8(x) => self.out.push(*x as u8),
            MetaValue::U16(x) => self.bytes_of(&x.to_le_bytes(), &x.to_be_bytes()),
            MetaValue::I16(x) => self.bytes_of(&x.to_le_bytes(), &x.to_be_bytes()),
            MetaValue::U32(x) => self.u32(*x),
            MetaValue::I32(x) => self.bytes_of(&x.to_le_bytes(), &x.to_be_bytes()),
            MetaValue::F32(x) => self.bytes_of(&x.to_le_bytes(), &x.to_be_bytes()),
            MetaValue::Bool(x) => self.out.push(u8::from(*x)),
            MetaValue::String(s) => self.string(s),
            MetaValue::Array(a) => {
                self.u32(a.element_type().id());
                self.u64(a.items().len() as u64);
                for item in a.items() {
                    self.value(item);
                }
            }
            MetaValue::U64(x) => self.u64(*x),
            MetaValue::I64(x) => self.bytes_of(&x.to_le_bytes(), &x.to_be_bytes()),
            MetaValue::F64(x) => self.bytes_of(&x.to_le_bytes(), &x.to_be_bytes()),
        }
    }

    fn pad(&mut self, alignment: u32) {
        while self.out.len() % alignment as usize != 0 {
            self.out.push(0);
        }
    }
}

/// The file `GgufWriter` would write for these, checks left out: the
/// alignment entry first when `alignment` is not the default, then the
/// metadata, the tensor infos (each tensor at the running offset of the
/// bytes before it, padded), the data.
pub fn encode(
    order: ByteOrder,
    alignment: u32,
    metadata: &[(&str, &MetaValue)],
    tensors: &[RawTensor<'_>],
) -> Vec<u8> {
    let mut e = Enc {
        out: MAGIC.to_vec(),
        order,
    };
    e.u32(3);
    e.u64(tensors.len() as u64);
    let alignment_entry = (alignment != DEFAULT_ALIGNMENT).then_some(MetaValue::U32(alignment));
    e.u64((metadata.len() + usize::from(alignment_entry.is_some())) as u64);
    let entries = alignment_entry
        .iter()
        .map(|v| (ALIGNMENT_KEY, v))
        .chain(metadata.iter().copied());
    for (key, value) in entries {
        e.string(key.as_bytes());
        e.u32(value.value_type().id());
        e.value(value);
    }
    let mut offset = 0u64;
    for t in tensors {
        e.string(t.name.as_bytes());
        e.u32(t.dims.len() as u32);
        for &d in t.dims {
            e.u64(d);
        }
        e.u32(t.dtype.id());
        e.u64(offset);
        let end = offset + t.data.len() as u64;
        offset = end.div_ceil(u64::from(alignment)) * u64::from(alignment);
    }
    if !tensors.is_empty() {
        e.pad(alignment);
    }
    for (i, t) in tensors.iter().enumerate() {
        e.out.extend_from_slice(t.data);
        if i + 1 < tensors.len() {
            e.pad(alignment);
        }
    }
    e.out
}
