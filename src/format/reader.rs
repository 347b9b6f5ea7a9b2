//! A bounds-checked cursor over untrusted bytes.

use crate::error::{Error, Result};

/// Byte order of the numbers in a GGUF file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Little-endian: what every mainstream writer produces.
    Little,
    /// Big-endian: written for s390x and similar machines.
    Big,
}

impl ByteOrder {
    /// The byte order of this machine.
    pub const NATIVE: ByteOrder = if cfg!(target_endian = "big") {
        ByteOrder::Big
    } else {
        ByteOrder::Little
    };

    /// True when values in this order can be viewed in place on this machine.
    pub const fn is_native(self) -> bool {
        matches!(
            (self, ByteOrder::NATIVE),
            (ByteOrder::Little, ByteOrder::Little) | (ByteOrder::Big, ByteOrder::Big)
        )
    }
}

/// A primitive number read from the wire in either byte order.
pub(crate) trait WireNum: Sized + Copy {
    /// Its encoded size.
    const SIZE: usize;
    /// Decodes exactly `Self::SIZE` bytes; `None` when the slice is shorter.
    fn decode(bytes: &[u8], order: ByteOrder) -> Option<Self>;
}

macro_rules! wire_num {
    ($($t:ty),*) => {$(
        impl WireNum for $t {
            const SIZE: usize = std::mem::size_of::<$t>();
            #[inline]
            fn decode(bytes: &[u8], order: ByteOrder) -> Option<Self> {
                let raw: [u8; std::mem::size_of::<$t>()] = bytes.get(..Self::SIZE)?.try_into().ok()?;
                Some(match order {
                    ByteOrder::Little => <$t>::from_le_bytes(raw),
                    ByteOrder::Big => <$t>::from_be_bytes(raw),
                })
            }
        }
    )*};
}
wire_num!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);

/// A cursor over the whole file's bytes; positions are absolute offsets, so
/// errors can name them.
#[derive(Clone, Debug)]
pub(crate) struct Reader<'data> {
    data: &'data [u8],
    pos: usize,
    order: ByteOrder,
}

impl<'data> Reader<'data> {
    /// A cursor at `pos` in `data`.
    pub(crate) fn new(data: &'data [u8], pos: usize, order: ByteOrder) -> Self {
        Reader { data, pos, order }
    }

    /// The current absolute offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// All the bytes the cursor runs over.
    pub(crate) fn data(&self) -> &'data [u8] {
        self.data
    }

    /// The byte order numbers are read in.
    pub(crate) fn order(&self) -> ByteOrder {
        self.order
    }

    /// Bytes left after the cursor.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// Takes the next `len` bytes.
    pub(crate) fn bytes(&mut self, len: u64, what: &'static str) -> Result<&'data [u8]> {
        let available = self.remaining();
        let eof = || Error::UnexpectedEof {
            what,
            offset: self.pos as u64,
            needed: len,
            available: available as u64,
        };
        let len_usize = usize::try_from(len).map_err(|_| eof())?;
        let end = self.pos.checked_add(len_usize).ok_or_else(eof)?;
        let slice = self.data.get(self.pos..end).ok_or_else(eof)?;
        self.pos = end;
        Ok(slice)
    }

    /// Reads one number.
    pub(crate) fn num<T: WireNum>(&mut self, what: &'static str) -> Result<T> {
        let order = self.order;
        let bytes = self.bytes(T::SIZE as u64, what)?;
        T::decode(bytes, order).ok_or(Error::UnexpectedEof {
            what,
            offset: self.pos as u64,
            needed: T::SIZE as u64,
            available: 0,
        })
    }

    /// Reads a count and checks that `count * min_item_bytes` bytes remain,
    /// so nothing sized by the count is ever allocated or looped over in
    /// vain.
    pub(crate) fn count(&mut self, what: &'static str, min_item_bytes: u64) -> Result<u64> {
        let offset = self.pos as u64;
        let count: u64 = self.num(what)?;
        let max = (self.remaining() as u64)
            .checked_div(min_item_bytes)
            .unwrap_or(u64::MAX);
        if count > max {
            return Err(Error::CountTooLarge {
                what,
                count,
                offset,
                max,
            });
        }
        Ok(count)
    }

    /// Skips `count` length-prefixed strings. The hot loop of opening a
    /// file with a large vocabulary, so it only reads and bounds-checks
    /// lengths.
    pub(crate) fn skip_strings(&mut self, count: u64) -> Result<()> {
        for _ in 0..count {
            let len = self
                .data
                .get(self.pos..)
                .and_then(|rest| u64::decode(rest, self.order))
                .and_then(|len| usize::try_from(len).ok());
            let end = len
                .and_then(|len| self.pos.checked_add(8)?.checked_add(len))
                .filter(|&end| end <= self.data.len());
            match end {
                Some(end) => self.pos = end,
                // Let the general path produce the precise error.
                None => {
                    self.string("string length")?;
                }
            }
        }
        Ok(())
    }

    /// The next length-prefixed string's bytes and their offset, or `None`
    /// (cursor unmoved) where it does not fit: the fast path of walking a
    /// validated string array, with no error to build.
    pub(crate) fn next_string(&mut self) -> Option<(&'data [u8], u64)> {
        let start = self.pos.checked_add(8)?;
        let len = u64::decode(self.data.get(self.pos..start)?, self.order)?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        let bytes = self.data.get(start..end)?;
        self.pos = end;
        Some((bytes, start as u64))
    }

    /// Reads a length-prefixed string's bytes.
    pub(crate) fn string(&mut self, what: &'static str) -> Result<&'data [u8]> {
        let len = self.count(what, 1)?;
        self.bytes(len, what)
    }
}
