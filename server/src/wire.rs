//! A minimal protobuf wire-format reader that borrows from the input, for
//! the remote_write hot path (millions of label strings a second must not
//! each become a `String`).

use sextant_index::get_uvarint;

/// One field's payload.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5 (no remote_write field uses it; read to be skipped).
    Fixed32,
}

/// Walks the fields of one message.
pub struct Wire<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Wire<'a> {
    /// A reader over an encoded message.
    pub fn new(buf: &'a [u8]) -> Self {
        Wire { buf, pos: 0 }
    }

    /// Offset of the next field.
    pub fn pos(&self) -> usize {
        self.pos
    }

    fn varint(&mut self) -> Result<u64, String> {
        let at = self.pos;
        get_uvarint(self.buf, &mut self.pos)
            .ok_or_else(|| format!("truncated or over-long varint at byte {at}"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| format!("field of {n} bytes runs past the end at byte {}", self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field number and payload, `None` at the end.
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field =
            u32::try_from(key >> 3).map_err(|_| format!("field number {} too large", key >> 3))?;
        if field == 0 {
            return Err(format!("field number 0 at byte {}", self.pos));
        }
        let v = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().unwrap_or([0; 8]),
            )),
            2 => {
                let n =
                    usize::try_from(self.varint()?).map_err(|_| "length too large".to_string())?;
                Value::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed32
            }
            t => return Err(format!("unsupported wire type {t} (field {field})")),
        };
        Ok(Some((field, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes: fields or an error, never a panic or a read past the end.
        #[test]
        fn arbitrary_input_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut w = Wire::new(&bytes);
            for _ in 0..100 {
                match w.next_field() {
                    Ok(Some((_, Value::Bytes(b)))) => prop_assert!(b.len() <= bytes.len()),
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
