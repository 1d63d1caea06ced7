//! Bit-level writer and reader, most significant bit first.

#[derive(Debug, Clone, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    /// Bits still free in the last byte (0 when it is full or absent).
    free: u8,
}

impl BitWriter {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }

    pub(crate) fn shrink(&mut self) {
        self.buf.shrink_to_fit();
    }

    #[inline]
    pub(crate) fn bit(&mut self, b: bool) {
        self.bits(u64::from(b), 1);
    }

    /// Writes the low `n` bits of `v` (n ≤ 64).
    #[inline]
    pub(crate) fn bits(&mut self, v: u64, mut n: u8) {
        while n > 0 {
            if self.free == 0 {
                if self.buf.len() == self.buf.capacity() {
                    // Grow by an eighth, not by doubling: the head holds one
                    // open chunk per series, and doubling left up to half
                    // of each unused (~500 bytes a series).
                    self.buf.reserve_exact((self.buf.len() / 8).max(32));
                }
                self.buf.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            let shift = n - take;
            let chunk = ((v >> shift) & ((1u64 << take) - 1)) as u8;
            let last = self.buf.len() - 1;
            self.buf[last] |= chunk << (self.free - take);
            self.free -= take;
            n -= take;
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct BitReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        BitReader { buf, pos: 0 }
    }

    #[inline]
    pub(crate) fn bit(&mut self) -> Option<bool> {
        Some(self.bits(1)? == 1)
    }

    /// Steps over `n` bits; `None` (and nothing stepped over) past the end.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        let to = self.pos.checked_add(n)?;
        if to > self.buf.len().saturating_mul(8) {
            return None;
        }
        self.pos = to;
        Some(())
    }

    /// Reads `n` bits (n ≤ 64); `None` past the end.
    #[inline]
    pub(crate) fn bits(&mut self, mut n: u8) -> Option<u64> {
        let mut v = 0u64;
        while n > 0 {
            let byte = *self.buf.get(self.pos / 8)?;
            let used = (self.pos % 8) as u8;
            let avail = 8 - used;
            let take = n.min(avail);
            let chunk = (byte >> (avail - take)) & (((1u16 << take) - 1) as u8);
            v = if take == 64 {
                u64::from(chunk)
            } else {
                (v << take) | u64::from(chunk)
            };
            self.pos += take as usize;
            n -= take;
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(items in proptest::collection::vec((any::<u64>(), 1u8..=64), 0..100)) {
            let mut w = BitWriter::default();
            for (v, n) in &items { w.bits(*v, *n); }
            let bytes = w.into_bytes();
            let mut r = BitReader::new(&bytes);
            for (v, n) in &items {
                let mask = if *n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(r.bits(*n), Some(v & mask));
            }
        }
    }
}
