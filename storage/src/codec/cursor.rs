//! A bounds-checked reader over encoded bytes: every decoder of untrusted
//! input (WAL records, block files) reads through it, so bad bytes give an
//! error message and never a panic.

use sextant_index::get_uvarint;

use crate::labels::Labels;

/// Reads encoded bytes with every length and count checked.
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }
    pub(crate) fn uvarint(&mut self) -> Result<u64, String> {
        get_uvarint(self.buf, &mut self.pos).ok_or_else(|| "truncated varint".to_string())
    }
    /// A count of items that each take at least one byte, so it cannot
    /// exceed the bytes left (bounds allocations by the input size).
    pub(crate) fn count(&mut self) -> Result<usize, String> {
        let n = self.uvarint()?;
        if n > self.remaining() as u64 {
            return Err(format!(
                "count {n} exceeds the {} bytes left",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }
    pub(crate) fn id(&mut self) -> Result<u32, String> {
        u32::try_from(self.uvarint()?).map_err(|_| "series id out of range".to_string())
    }
    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let b = self.buf.get(self.pos..end).ok_or("truncated record")?;
        self.pos = end;
        Ok(b)
    }
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let b = self.bytes(N)?;
        b.try_into().map_err(|_| "truncated record".to_string())
    }
    /// The next byte, not consumed.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        Ok(self.array::<1>()?[0])
    }
    pub(crate) fn f64(&mut self) -> Result<f64, String> {
        Ok(f64::from_bits(u64::from_le_bytes(self.array()?)))
    }
    /// Length-prefixed bytes.
    pub(crate) fn blob(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.uvarint()?).map_err(|_| "length")?;
        self.bytes(n)
    }
    /// Length-prefixed UTF-8.
    pub(crate) fn str(&mut self) -> Result<String, String> {
        let b = self.blob()?;
        String::from_utf8(b.to_vec()).map_err(|_| "invalid UTF-8 in string".to_string())
    }
    pub(crate) fn labels(&mut self) -> Result<Labels, String> {
        Labels::decode(self.blob()?).map_err(|e| e.to_string())
    }
    /// The bytes not yet read.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }
    pub(crate) fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}
