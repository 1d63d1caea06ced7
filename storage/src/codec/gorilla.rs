//! Gorilla compression (Pelkonen et al., VLDB 2015): the first timestamp and
//! value raw, then timestamps as delta-of-delta in prefix-coded classes and
//! values as XOR with the previous value, reusing the previous window of
//! meaningful bits when it fits. Arithmetic wraps, so any i64 sequence
//! round-trips.

use super::Sample;
use super::bits::{BitReader, BitWriter};

/// XOR state for a stream of floats.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XorState {
    prev: u64,
    leading: u8,
    trailing: u8,
}

const NO_WINDOW: u8 = 0xff;

impl Default for XorState {
    fn default() -> Self {
        XorState {
            prev: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }
}

impl XorState {
    pub(crate) fn encode(&mut self, w: &mut BitWriter, v: f64) {
        let bits = v.to_bits();
        let xor = bits ^ self.prev;
        self.prev = bits;
        if xor == 0 {
            w.bit(false);
            return;
        }
        w.bit(true);
        let lead = (xor.leading_zeros() as u8).min(31);
        let trail = xor.trailing_zeros() as u8;
        if self.leading != NO_WINDOW && lead >= self.leading && trail >= self.trailing {
            w.bit(false);
            w.bits(xor >> self.trailing, 64 - self.leading - self.trailing);
        } else {
            w.bit(true);
            let sig = 64 - lead - trail;
            w.bits(u64::from(lead), 5);
            w.bits(u64::from(sig & 63), 6);
            w.bits(xor >> trail, sig);
            self.leading = lead;
            self.trailing = trail;
        }
    }

    pub(crate) fn decode(&mut self, r: &mut BitReader<'_>) -> Option<f64> {
        if r.bit()? {
            if r.bit()? {
                let lead = r.bits(5)? as u8;
                let mut sig = r.bits(6)? as u8;
                if sig == 0 {
                    sig = 64;
                }
                if lead + sig > 64 {
                    return None;
                }
                self.leading = lead;
                self.trailing = 64 - lead - sig;
            } else if self.leading == NO_WINDOW {
                return None;
            }
            let sig = 64 - self.leading - self.trailing;
            let x = r.bits(sig)?;
            self.prev ^= x << self.trailing;
        }
        Some(f64::from_bits(self.prev))
    }
}

/// Appends samples to a Gorilla bit stream. The head keeps one per series.
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    w: BitWriter,
    count: u32,
    t: i64,
    delta: i64,
    x: XorState,
}

impl Encoder {
    /// Appends a sample. Timestamps should ascend for good compression but
    /// any order round-trips.
    pub fn append(&mut self, s: Sample) {
        if self.count == 0 {
            self.w.bits(s.t as u64, 64);
            self.x.encode(&mut self.w, s.v);
        } else {
            let delta = s.t.wrapping_sub(self.t);
            put_dod(&mut self.w, delta.wrapping_sub(self.delta));
            self.delta = delta;
            self.x.encode(&mut self.w, s.v);
        }
        self.t = s.t;
        self.count += 1;
    }

    /// Samples appended.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The encoded stream so far.
    pub fn bytes(&self) -> &[u8] {
        self.w.bytes()
    }

    /// Heap bytes held (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.w.heap_bytes()
    }

    /// Releases spare capacity (when the stream is sealed).
    pub fn shrink(&mut self) {
        self.w.shrink();
    }

    /// The encoded stream.
    pub fn into_bytes(self) -> Vec<u8> {
        self.w.into_bytes()
    }
}

// (prefix bits, prefix length, payload bits) of the delta-of-delta classes.
const CLASSES: [(u64, u8, u8); 3] = [(0b10, 2, 14), (0b110, 3, 17), (0b1110, 4, 20)];

fn put_dod(w: &mut BitWriter, dod: i64) {
    if dod == 0 {
        w.bit(false);
        return;
    }
    for (prefix, plen, n) in CLASSES {
        let half = 1i64 << (n - 1);
        if -half < dod && dod <= half {
            w.bits(prefix, plen);
            w.bits(dod as u64, n);
            return;
        }
    }
    w.bits(0b1111, 4);
    w.bits(dod as u64, 64);
}

/// Decodes `count` samples of a stream written by [`Encoder`]; `None` if the
/// bytes end early or are malformed.
pub fn decode(bytes: &[u8], count: u32) -> Option<Vec<Sample>> {
    let mut out = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut r = BitReader::new(bytes);
    let mut x = XorState::default();
    let (mut t, mut delta) = (0i64, 0i64);
    for i in 0..count {
        if i == 0 {
            t = r.bits(64)? as i64;
        } else {
            delta = delta.wrapping_add(read_dod(&mut r)?);
            t = t.wrapping_add(delta);
        }
        out.push(Sample::new(t, x.decode(&mut r)?));
    }
    Some(out)
}

fn read_dod(r: &mut BitReader<'_>) -> Option<i64> {
    if !r.bit()? {
        return Some(0);
    }
    for (_, _, n) in CLASSES {
        if !r.bit()? {
            let raw = r.bits(n)?;
            let half = 1u64 << (n - 1);
            let v = if raw > half {
                raw as i64 - (1i64 << n)
            } else {
                raw as i64
            };
            return Some(v);
        }
    }
    Some(r.bits(64)? as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(samples: &[Sample]) {
        let mut e = Encoder::default();
        for s in samples {
            e.append(*s);
        }
        let got = decode(e.bytes(), e.count()).expect("decodes");
        assert_eq!(got, samples);
    }

    #[test]
    fn special_values() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let vals = [
            0.0,
            -0.0,
            f64::NAN,
            stale,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MAX,
            f64::MIN_POSITIVE,
            1.0,
            1.0,
        ];
        let s: Vec<Sample> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| Sample::new(i as i64 * 15_000, *v))
            .collect();
        round_trip(&s);
    }

    #[test]
    fn extreme_timestamps() {
        round_trip(&[
            Sample::new(i64::MIN, 1.0),
            Sample::new(i64::MAX, 2.0),
            Sample::new(0, 3.0),
            Sample::new(-5, 4.0),
        ]);
    }

    #[test]
    fn truncated_stream_is_none() {
        let mut e = Encoder::default();
        for i in 0..100 {
            e.append(Sample::new(i * 1000 + (i % 7), i as f64 * 1.5));
        }
        let b = e.bytes();
        assert!(decode(&b[..b.len() / 2], e.count()).is_none());
    }

    proptest! {
        #[test]
        fn arbitrary_samples(ts in proptest::collection::vec(any::<i64>(), 0..200), vs in proptest::collection::vec(any::<u64>(), 200)) {
            let s: Vec<Sample> = ts.iter().zip(&vs).map(|(t, v)| Sample::new(*t, f64::from_bits(*v))).collect();
            round_trip(&s);
        }

        #[test]
        fn regular_series(start in any::<i64>(), step in 1i64..100_000, jitter in 0i64..50, n in 1usize..500, base in -1e9f64..1e9, inc in 0f64..100.0) {
            let s: Vec<Sample> = (0..n).map(|i| {
                let t = start.wrapping_add(step * i as i64 + (i as i64 * 7919) % (jitter + 1));
                Sample::new(t, base + inc * i as f64)
            }).collect();
            round_trip(&s);
        }
    }
}
