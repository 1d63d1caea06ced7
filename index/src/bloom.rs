//! A Bloom filter over byte keys, so a lookup by trace id skips every block
//! that cannot hold the trace without touching its tables.
//!
//! Layout: `k u8 | words u32le | word u64le * words`; bit i of the filter
//! is bit `i % 64` of word `i / 64`. Probes use double hashing of a 64-bit
//! FNV-1a hash (finalised with SplitMix64), fixed here because it is part
//! of the on-disk format.

use crate::error::{Error, Result};

/// Bits per key: with 7 probes, about 1% false positives.
const BITS_PER_KEY: usize = 10;
const PROBES: u8 = 7;

/// A Bloom filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bloom {
    k: u8,
    words: Vec<u64>,
}

pub(crate) fn hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The `k` bit positions of `key` in a filter of `nbits` bits.
pub(crate) fn positions(key: &[u8], k: u8, nbits: u64) -> impl Iterator<Item = u64> {
    hash_positions(hash(key), k, nbits)
}

/// [`positions`] of a key whose [`hash`] is `h`: probe `i` is bit
/// `(h1 + i·h2) mod 2⁶⁴ mod nbits` ([`direct_positions`]). Each probe
/// steps from the last by `h2 mod nbits`, less `2⁶⁴ mod nbits` when the
/// 64-bit sum wraps: three divisions a key instead of one a probe, which
/// were a third of building a block's page signatures (15 probes a
/// singleton term). `nbits` must be below 2⁶³; 0 is taken as 1.
pub(crate) fn hash_positions(h: u64, k: u8, nbits: u64) -> impl Iterator<Item = u64> {
    let n = nbits.max(1);
    let (mut x, h2) = (h, h.rotate_left(32) | 1);
    let (step, wrap) = (h2 % n, (u64::MAX % n + 1) % n);
    let mut r = x % n;
    (0..k).map(move |_| {
        let bit = r;
        let (next, wrapped) = x.overflowing_add(h2);
        x = next;
        r += step;
        if r >= n {
            r -= n;
        }
        if wrapped {
            r = if r >= wrap { r - wrap } else { r + n - wrap };
        }
        bit
    })
}

/// The probe positions as the format states them, one division a probe.
#[cfg(test)]
fn direct_positions(h: u64, k: u8, nbits: u64) -> impl Iterator<Item = u64> {
    let (h1, h2) = (h, h.rotate_left(32) | 1);
    (0..u64::from(k)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % nbits)
}

impl Bloom {
    /// A filter sized for `keys` keys, holding them.
    pub fn build<'a>(keys: impl ExactSizeIterator<Item = &'a [u8]>) -> Bloom {
        let bits = (keys.len() * BITS_PER_KEY).max(64);
        let mut b = Bloom {
            k: PROBES,
            words: vec![0; bits.div_ceil(64)],
        };
        let nbits = b.words.len() as u64 * 64;
        for key in keys {
            for bit in positions(key, b.k, nbits) {
                b.words[(bit / 64) as usize] |= 1 << (bit % 64);
            }
        }
        b
    }

    /// False when `key` was certainly not added.
    pub fn may_contain(&self, key: &[u8]) -> bool {
        let nbits = self.words.len() as u64 * 64;
        positions(key, self.k, nbits)
            .all(|bit| self.words[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// Appends the serialised filter.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.k);
        out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// Parses a filter at the start of `buf`; returns it and the bytes used.
    pub fn decode(buf: &[u8]) -> Result<(Bloom, usize)> {
        let bad = Error::Corrupt("bloom filter");
        let (&k, rest) = buf.split_first().ok_or(Error::Corrupt("bloom filter"))?;
        let n = rest
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(Error::Corrupt("bloom filter"))? as usize;
        let body = rest.get(4..4 + n.checked_mul(8).ok_or(Error::Corrupt("bloom"))?);
        let body = body.ok_or(Error::Corrupt("bloom filter truncated"))?;
        if n == 0 || k == 0 || k > 30 {
            return Err(bad);
        }
        let words = body
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok((Bloom { k, words }, 5 + n * 8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Stepped probes land where the format's formula puts them, for
        /// filters of every size (the page signatures' are multiples of 64
        /// bits; a filter's words times 64).
        #[test]
        fn stepped_probes_are_the_stated_ones(
            h in proptest::prelude::any::<u64>(),
            k in 0u8..=30,
            nbits in proptest::prop_oneof![1u64..200, 1u64..1 << 40, (1u64 << 62)..(1 << 63)],
        ) {
            let got: Vec<u64> = hash_positions(h, k, nbits).collect();
            let want: Vec<u64> = direct_positions(h, k, nbits).collect();
            proptest::prop_assert_eq!(got, want);
            // A filter of no bits (which readers refuse) is not a panic.
            proptest::prop_assert!(hash_positions(h, k, 0).all(|b| b == 0));
        }
    }

    #[test]
    fn no_false_negatives_few_false_positives() {
        let keys: Vec<[u8; 16]> = (0u128..10_000).map(|i| (i * 7919).to_le_bytes()).collect();
        let b = Bloom::build(keys.iter().map(|k| &k[..]));
        assert!(keys.iter().all(|k| b.may_contain(k)));
        let fp = (1_000_000u128..1_010_000)
            .filter(|i| b.may_contain(&i.to_le_bytes()))
            .count();
        assert!(fp < 300, "{fp} false positives in 10k");
        let mut buf = vec![];
        b.encode(&mut buf);
        assert_eq!(Bloom::decode(&buf).unwrap(), (b, buf.len()));
        assert!(Bloom::decode(&buf[..buf.len() - 1]).is_err());
    }
}
