//! The block chunk codec (format in `docs/format.md`, "chunk encoding").
//!
//! ```text
//! uvarint count | zigzag t0 | zigzag Δt1 | zigzag ΔΔt… | tag u8 | values
//! ```
//!
//! Value encodings, picked per chunk:
//! * `CONST`: one f64 (all values bit-identical);
//! * `DEC_DELTA` / `DEC_DOD`: every value equals `m / 10^d` for integers `m`
//!   with |m| ≤ 2^53 and one scale `d` ≤ 15, checked bit for bit; the `m`
//!   are coded as zigzag varint deltas (gauges) or deltas of deltas (steady
//!   counters), whichever is shorter;
//! * `XOR_PLANES`: each value XOR the previous one, stored as byte planes
//!   (all most-significant bytes first, …), all-zero planes omitted: for
//!   full-precision values and NaN/±Inf/−0.0. Unlike a Gorilla bit stream,
//!   the planes leave zstd the repetition to find (sign, exponent and top
//!   mantissa bytes rarely change); measured in `docs/decisions.md`.

use sextant_index::{get_uvarint, put_uvarint};

use super::{Sample, unzigzag, zigzag};

const CONST: u8 = 0;
const DEC_DELTA: u8 = 1;
const DEC_DOD: u8 = 2;
const XOR_PLANES: u8 = 3;

const MAX_SCALE: usize = 15;
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
const POW10: [f64; MAX_SCALE + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

/// Why a chunk did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chunk does not decode: {0}")]
pub struct DecodeError(&'static str);

/// Appends the encoding of `samples` (non-empty, in time order) to `out`.
pub fn encode(samples: &[Sample], out: &mut Vec<u8>) {
    put_uvarint(out, samples.len() as u64);
    let (mut prev_t, mut prev_d) = (0i64, 0i64);
    for (i, s) in samples.iter().enumerate() {
        let x = match i {
            0 => s.t,
            1 => s.t.wrapping_sub(prev_t),
            _ => s.t.wrapping_sub(prev_t).wrapping_sub(prev_d),
        };
        if i > 0 {
            prev_d = s.t.wrapping_sub(prev_t);
        }
        prev_t = s.t;
        put_uvarint(out, zigzag(x));
    }
    encode_values(samples, out);
}

fn encode_values(samples: &[Sample], out: &mut Vec<u8>) {
    let first = samples.first().map_or(0, |s| s.v.to_bits());
    if samples.iter().all(|s| s.v.to_bits() == first) {
        out.push(CONST);
        out.extend_from_slice(&first.to_le_bytes());
        return;
    }
    if let Some((scale, ints)) = decimals(samples) {
        let deltas = differences(&ints, 1);
        let dods = differences(&ints, 2);
        let (tag, seq) = if varint_len(&dods) < varint_len(&deltas) {
            (DEC_DOD, dods)
        } else {
            (DEC_DELTA, deltas)
        };
        out.push(tag);
        out.push(scale as u8);
        for x in seq {
            put_uvarint(out, zigzag(x));
        }
        return;
    }
    out.push(XOR_PLANES);
    let mut prev = 0u64;
    let xors: Vec<u64> = samples
        .iter()
        .map(|s| {
            let b = s.v.to_bits();
            let x = b ^ prev;
            prev = b;
            x
        })
        .collect();
    let mask = (0..8u8)
        .filter(|k| xors.iter().any(|x| (x >> (8 * k)) & 0xff != 0))
        .fold(0u8, |m, k| m | (1 << k));
    out.push(mask);
    for k in (0..8).rev().filter(|k| mask & (1 << k) != 0) {
        out.extend(xors.iter().map(|x| (x >> (8 * k)) as u8));
    }
}

/// The smallest decimal scale at which `v` is an exact short integer.
fn scale_of(v: f64) -> Option<usize> {
    if !v.is_finite() || v.to_bits() == (-0.0f64).to_bits() {
        return None;
    }
    (0..=MAX_SCALE).find(|&d| {
        let m = (v * POW10[d]).round();
        m.abs() <= MAX_EXACT && m / POW10[d] == v
    })
}

/// Scale and scaled integers, if every value round-trips exactly.
fn decimals(samples: &[Sample]) -> Option<(usize, Vec<i64>)> {
    let mut scale = 0;
    for s in samples {
        scale = scale.max(scale_of(s.v)?);
    }
    let p = POW10[scale];
    samples
        .iter()
        .map(|s| {
            let m = (s.v * p).round();
            (m.abs() <= MAX_EXACT && m / p == s.v).then_some(m as i64)
        })
        .collect::<Option<Vec<i64>>>()
        .map(|ints| (scale, ints))
}

/// First value, then `order` levels of differences (1 = deltas, 2 = dods).
fn differences(ints: &[i64], order: usize) -> Vec<i64> {
    let mut out = ints.to_vec();
    for _ in 0..order {
        for i in (1..out.len()).rev() {
            out[i] = out[i].wrapping_sub(out[i - 1]);
        }
    }
    // Higher orders keep the lower-order heads: [m0, Δ1, ΔΔ2, ...].
    if order == 2 && ints.len() > 1 {
        out[1] = ints[1].wrapping_sub(ints[0]);
    }
    out
}

fn varint_len(xs: &[i64]) -> usize {
    xs.iter()
        .map(|&x| (64 - zigzag(x).leading_zeros() as usize).div_ceil(7).max(1))
        .sum()
}

/// Decodes one chunk. Never panics and never allocates more than the input
/// can describe (every sample costs at least one byte of input).
pub fn decode(buf: &[u8]) -> Result<Vec<Sample>, DecodeError> {
    let mut out = Vec::new();
    decode_range(buf, i64::MIN, i64::MAX, &mut out)?;
    Ok(out)
}

/// Appends the samples of one chunk with `start <= t <= end` to `out`.
///
/// Queries want a few minutes of a chunk that holds hours: only those
/// samples are stored and converted, and values after the window are not
/// read at all (timestamps must be, to find it). Timestamps must rise
/// strictly, as the encoder writes them. The bytes after the window are
/// not checked (frames carry a checksum); a whole-chunk read checks all.
pub fn decode_range(
    buf: &[u8],
    start: i64,
    end: i64,
    out: &mut Vec<Sample>,
) -> Result<(), DecodeError> {
    TIMES.with_borrow_mut(|times| decode_with(buf, start, end, out, times))
}

thread_local! {
    /// Scratch for a chunk's timestamps, reused across chunks.
    static TIMES: std::cell::RefCell<Vec<i64>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn decode_with(
    buf: &[u8],
    start: i64,
    end: i64,
    out: &mut Vec<Sample>,
    times: &mut Vec<i64>,
) -> Result<(), DecodeError> {
    let mut pos = 0;
    let n = varint(buf, &mut pos, "count")?;
    if n == 0 || n > buf.len() as u64 {
        return Err(DecodeError("count out of range"));
    }
    let n = n as usize;
    times.clear();
    times.reserve(n);
    let mut t = unzigzag(varint(buf, &mut pos, "timestamp")?);
    times.push(t);
    let mut d = 0i64;
    for i in 1..n {
        let x = unzigzag(varint(buf, &mut pos, "timestamp")?);
        d = if i == 1 { x } else { d.wrapping_add(x) };
        t = t.wrapping_add(d);
        times.push(t);
    }
    if !times.windows(2).all(|w| w[0] < w[1]) {
        return Err(DecodeError("timestamps not increasing"));
    }
    // Samples lo..hi of the chunk are in the window.
    let lo = times.partition_point(|&t| t < start);
    let hi = times.partition_point(|&t| t <= end);
    if lo >= hi {
        return Ok(());
    }
    let base = out.len();
    out.extend(times[lo..hi].iter().map(|&t| Sample::new(t, 0.0)));
    let window = &mut out[base..];
    let tag = *buf.get(pos).ok_or(DecodeError("value tag"))?;
    pos += 1;
    match tag {
        CONST => {
            let b: [u8; 8] = buf
                .get(pos..pos + 8)
                .and_then(|b| b.try_into().ok())
                .ok_or(DecodeError("constant"))?;
            let v = f64::from_le_bytes(b);
            window.iter_mut().for_each(|s| s.v = v);
            pos += 8;
        }
        DEC_DELTA | DEC_DOD => {
            let scale = *buf.get(pos).ok_or(DecodeError("scale"))? as usize;
            let p = *POW10.get(scale).ok_or(DecodeError("scale out of range"))?;
            pos += 1;
            let mut ints = Ints {
                m: unzigzag(varint(buf, &mut pos, "value")?),
                dm: 0,
                dod: tag == DEC_DOD,
            };
            for i in 1..lo {
                ints.step(buf, &mut pos, i)?;
            }
            // Division, not a multiply by 1/p: that is what round-trips
            // bit for bit.
            for (i, s) in (lo..hi).zip(window.iter_mut()) {
                if i > 0 {
                    ints.step(buf, &mut pos, i)?;
                }
                s.v = ints.m as f64 / p;
            }
            if hi < n {
                return Ok(());
            }
        }
        XOR_PLANES => {
            let mask = *buf.get(pos).ok_or(DecodeError("plane mask"))?;
            pos += 1;
            let mut xors = vec![0u64; hi];
            for k in (0..8).rev().filter(|k| mask & (1 << k) != 0) {
                let plane = buf.get(pos..pos + n).ok_or(DecodeError("value plane"))?;
                for (x, b) in xors.iter_mut().zip(&plane[..hi]) {
                    *x |= u64::from(*b) << (8 * k);
                }
                pos += n;
            }
            let prefix = xors[..lo].iter().fold(0u64, |p, x| p ^ x);
            let mut prev = prefix;
            for (s, x) in window.iter_mut().zip(&xors[lo..]) {
                prev ^= x;
                s.v = f64::from_bits(prev);
            }
        }
        _ => return Err(DecodeError("unknown value encoding")),
    }
    if pos != buf.len() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(())
}

/// The running integer of a decimal value column.
struct Ints {
    m: i64,
    dm: i64,
    dod: bool,
}

impl Ints {
    /// Reads the difference that leads to value `i` (`i >= 1`).
    #[inline(always)]
    fn step(&mut self, buf: &[u8], pos: &mut usize, i: usize) -> Result<(), DecodeError> {
        let x = unzigzag(varint(buf, pos, "value")?);
        self.dm = if self.dod && i > 1 {
            self.dm.wrapping_add(x)
        } else {
            x
        };
        self.m = self.m.wrapping_add(self.dm);
        Ok(())
    }
}

/// A varint, with the one-byte case (most timestamps and values) inline.
#[inline(always)]
fn varint(buf: &[u8], pos: &mut usize, what: &'static str) -> Result<u64, DecodeError> {
    match buf.get(*pos) {
        Some(&b) if b < 0x80 => {
            *pos += 1;
            Ok(u64::from(b))
        }
        _ => get_uvarint(buf, pos).ok_or(DecodeError(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rt(samples: &[Sample]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode(samples, &mut buf);
        assert_eq!(decode(&buf).as_deref(), Ok(samples), "{samples:?}");
        buf
    }

    fn at(vals: &[f64]) -> Vec<Sample> {
        vals.iter()
            .enumerate()
            .map(|(i, v)| Sample::new(1_700_000_000_000 + 15_000 * i as i64, *v))
            .collect()
    }

    #[test]
    fn picks_each_encoding() {
        let tag = |b: &[u8], n: usize| b[b.len() - n];
        let c = rt(&at(&[5.0, 5.0, 5.0]));
        assert_eq!(tag(&c, 9), CONST);
        let gauge = rt(&at(&[0.25, 0.5, 0.125, 3.0, 2.75]));
        assert!(gauge.contains(&DEC_DELTA));
        let counter = rt(&at(&(0..50)
            .map(|i| 100.0 + 7.0 * i as f64)
            .collect::<Vec<_>>()));
        assert!(
            counter.len() < 50 + 2 + 60,
            "steady counter is about a byte per timestamp: {}",
            counter.len()
        );
        rt(&at(&[0.1 + 0.2, std::f64::consts::PI, 1e300]));
    }

    #[test]
    fn special_values_round_trip() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        rt(&at(&[1.0, stale, 2.0]));
        rt(&at(&[f64::NAN, f64::INFINITY, f64::NEG_INFINITY]));
        rt(&at(&[-0.0, 0.0, 1.5]));
        rt(&at(&[9.0e15, -9.0e15, 1.0]));
        rt(&at(&[1.0, 0.0, 2.0, 0.0])); // counter resets
        rt(&[
            Sample::new(i64::MIN, 1.0),
            Sample::new(-1, 2.0),
            Sample::new(i64::MAX, 3.0),
        ]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let buf = rt(&at(&[1.5, 2.5, 3.25, 99.0]));
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).is_err());
        }
        assert!(decode(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
        assert!(decode(&[1, 0, 1, 99]).is_err());
        assert_eq!(
            decode(&[2, 4, 0, CONST, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError("timestamps not increasing"))
        );
    }

    fn value() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<u64>().prop_map(f64::from_bits),
            (-1_000_000i64..1_000_000, 0u32..6).prop_map(|(m, d)| m as f64 / 10f64.powi(d as i32)),
            Just(f64::NAN),
            Just(f64::from_bits(0x7ff0_0000_0000_0002)),
            Just(f64::INFINITY),
            Just(-0.0),
        ]
    }

    proptest! {
        #[test]
        fn any_samples(ts in proptest::collection::btree_set(any::<i64>(), 1..300), vs in proptest::collection::vec(value(), 300)) {
            let s: Vec<Sample> = ts.iter().zip(&vs).map(|(t, v)| Sample::new(*t, *v)).collect();
            rt(&s);
        }

        #[test]
        fn a_window_is_the_filtered_chunk(ts in proptest::collection::btree_set(-1000i64..1000, 1..300), vs in proptest::collection::vec(value(), 300), a in -1100i64..1100, len in 0i64..2200) {
            let s: Vec<Sample> = ts.iter().zip(&vs).map(|(t, v)| Sample::new(*t, *v)).collect();
            let buf = rt(&s);
            let mut got = vec![Sample::new(7, 7.0)];
            decode_range(&buf, a, a + len, &mut got).unwrap();
            let want: Vec<Sample> = std::iter::once(Sample::new(7, 7.0))
                .chain(s.iter().copied().filter(|x| x.t >= a && x.t <= a + len))
                .collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn counters_with_resets(start in -1_000_000_000_000i64..2_000_000_000_000, step in 1i64..120_000, incs in proptest::collection::vec(0u32..1000, 1..400), reset_every in 2usize..100, scale in 0u32..4) {
            let mut v = 0f64;
            let s: Vec<Sample> = incs.iter().enumerate().map(|(i, inc)| {
                v = if i % reset_every == 0 { 0.0 } else { v + f64::from(*inc) / 10f64.powi(scale as i32) };
                Sample::new(start + step * i as i64, v)
            }).collect();
            rt(&s);
        }
    }
}
