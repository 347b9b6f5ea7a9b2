//! [`ModelReader`]: the files of a model as one `Read + Seek` stream, the
//! parts one after another, for code that reads tensors by offset (candle's
//! `gguf_file::Content::tensor`).

use std::io::{Read, Seek, SeekFrom};

use crate::model::Gguf;

/// The bytes of every part of a [`Gguf`], concatenated in part order, as a
/// `Read + Seek` stream; made by [`Gguf::reader`].
///
/// Reads go through the storage the model was opened with: a mapped file
/// is read by position through its handle (so its pages do not become
/// resident), bytes in memory are copied, a stream is read.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom};
/// # let model = ggufmap::Gguf::open(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/sample.gguf"))?;
/// let t = model.tensor("output_norm.weight")?;
/// let mut reader = model.reader();
/// reader.seek(SeekFrom::Start(t.byte_range().start))?;
/// let mut first = [0u8; 4];
/// reader.read_exact(&mut first)?;
/// assert_eq!(f32::from_le_bytes(first), t.as_slice::<f32>()?[0]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ModelReader<'a> {
    model: &'a Gguf<'a>,
    pos: u64,
    len: u64,
}

impl<'a> ModelReader<'a> {
    pub(crate) fn new(model: &'a Gguf<'a>) -> Self {
        ModelReader {
            model,
            pos: 0,
            len: model.file_size(),
        }
    }
}

impl Gguf<'_> {
    /// The model's files as one `Read + Seek` stream (see [`ModelReader`]).
    pub fn reader(&self) -> ModelReader<'_> {
        ModelReader::new(self)
    }

    /// Where each part starts in [`Gguf::reader`]'s stream, in part order.
    pub fn part_starts(&self) -> impl Iterator<Item = u64> + '_ {
        self.part_sizes().scan(0u64, |start, len| {
            let this = *start;
            *start = start.saturating_add(len);
            Some(this)
        })
    }
}

impl Read for ModelReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut start = 0u64;
        for (storage, len) in self.model.part_storages() {
            let end = start.saturating_add(len);
            if self.pos < end {
                let within = self.pos - start;
                let n = buf
                    .len()
                    .min(usize::try_from(end - self.pos).unwrap_or(usize::MAX));
                let out = &mut buf[..n];
                storage.read_at(within, out)?;
                self.pos += n as u64;
                return Ok(n);
            }
            start = end;
        }
        Ok(0)
    }
}

impl Seek for ModelReader<'_> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        })?;
        Ok(self.pos)
    }
}
