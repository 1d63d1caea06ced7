//! The native-histogram chunk codec: a run of `(t, histogram)` samples of
//! one series (format in `docs/format.md`, "histogram chunk encoding").
//!
//! ```text
//! uvarint count | per sample: zigzag t (t0, Δt1, ΔΔt…) | flags u8 |
//!   [layout when it changed] | counts | zigzag-free XOR of the sum
//! ```
//!
//! A histogram's layout (schema, zero threshold, custom bounds, bucket
//! spans) rarely changes between scrapes, so it is written only when it
//! does; the counts then line up position by position with the previous
//! sample's. Whole counts (what clients send) are written as zigzag varint
//! deltas from those positions, which for a counter are the observations
//! since the last scrape: a byte or two per bucket. Other counts are XORed
//! with the previous bits.

use sextant_histogram::{CounterReset, Histogram, Span};
use sextant_index::{get_uvarint, put_uvarint};

use super::{HistogramSample, unzigzag, zigzag};

/// Flag: a layout follows.
const LAYOUT: u8 = 1;
/// Flag: counts are whole numbers, coded as deltas.
const WHOLE: u8 = 1 << 3;
/// Largest whole count coded as an integer (2^53).
const MAX_WHOLE: f64 = 9_007_199_254_740_992.0;

/// Why a histogram chunk did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("histogram chunk does not decode: {0}")]
pub struct DecodeError(&'static str);

fn hint_bits(h: CounterReset) -> u8 {
    (match h {
        CounterReset::Unknown => 0,
        CounterReset::Reset => 1,
        CounterReset::NotReset => 2,
        CounterReset::Gauge => 3,
    }) << 1
}

fn hint_of(flags: u8) -> CounterReset {
    match (flags >> 1) & 3 {
        0 => CounterReset::Unknown,
        1 => CounterReset::Reset,
        2 => CounterReset::NotReset,
        _ => CounterReset::Gauge,
    }
}

/// Every count of `h` in layout order: count, zero count, positive and
/// negative buckets.
fn counts(h: &Histogram) -> impl Iterator<Item = f64> + '_ {
    [h.count, h.zero_count]
        .into_iter()
        .chain(h.positive.iter().map(|b| b.1))
        .chain(h.negative.iter().map(|b| b.1))
}

fn same_layout(a: &Histogram, b: &Histogram) -> bool {
    a.schema == b.schema
        && a.zero_threshold.to_bits() == b.zero_threshold.to_bits()
        && a.custom_values.len() == b.custom_values.len()
        && a.custom_values
            .iter()
            .zip(&b.custom_values)
            .all(|(x, y)| x.to_bits() == y.to_bits())
        && a.positive.len() == b.positive.len()
        && a.negative.len() == b.negative.len()
        && a.positive.iter().zip(&b.positive).all(|(x, y)| x.0 == y.0)
        && a.negative.iter().zip(&b.negative).all(|(x, y)| x.0 == y.0)
}

fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

fn put_spans(out: &mut Vec<u8>, buckets: &[(i32, f64)]) {
    let (spans, _) = Histogram::spans(buckets);
    put_uvarint(out, spans.len() as u64);
    for s in spans {
        put_uvarint(out, zigzag(i64::from(s.offset)));
        put_uvarint(out, u64::from(s.length));
    }
}

/// Appends the encoding of `samples` (in time order) to `out`.
pub fn encode(samples: &[HistogramSample], out: &mut Vec<u8>) {
    put_uvarint(out, samples.len() as u64);
    let (mut prev_t, mut prev_d) = (0i64, 0i64);
    let mut prev: Option<&Histogram> = None;
    for (i, HistogramSample { t, h }) in samples.iter().enumerate() {
        let x = match i {
            0 => *t,
            1 => t.wrapping_sub(prev_t),
            _ => t.wrapping_sub(prev_t).wrapping_sub(prev_d),
        };
        if i > 0 {
            prev_d = t.wrapping_sub(prev_t);
        }
        prev_t = *t;
        put_uvarint(out, zigzag(x));
        let base = prev.filter(|p| same_layout(p, h));
        let whole = counts(h).all(|c| c.fract() == 0.0 && c.abs() <= MAX_WHOLE)
            && base.is_none_or(|p| counts(p).all(|c| c.fract() == 0.0 && c.abs() <= MAX_WHOLE));
        let flags = hint_bits(h.hint)
            | if base.is_none() { LAYOUT } else { 0 }
            | if whole { WHOLE } else { 0 };
        out.push(flags);
        if base.is_none() {
            put_uvarint(out, zigzag(i64::from(h.schema)));
            put_f64(out, h.zero_threshold);
            put_uvarint(out, h.custom_values.len() as u64);
            for v in &h.custom_values {
                put_f64(out, *v);
            }
            put_spans(out, &h.positive);
            put_spans(out, &h.negative);
        }
        let before: Vec<f64> = match base {
            Some(p) => counts(p).collect(),
            None => vec![0.0; 2 + h.positive.len() + h.negative.len()],
        };
        for (c, b) in counts(h).zip(before) {
            if whole {
                put_uvarint(out, zigzag((c as i64).wrapping_sub(b as i64)));
            } else {
                put_uvarint(out, c.to_bits() ^ b.to_bits());
            }
        }
        let prev_sum = prev.map_or(0, |p| p.sum.to_bits());
        put_uvarint(out, h.sum.to_bits() ^ prev_sum);
        prev = Some(&**h);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        get_uvarint(self.buf, &mut self.pos).ok_or(DecodeError("truncated varint"))
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(DecodeError("truncated flags"))?;
        self.pos += 1;
        Ok(b)
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let b = self
            .buf
            .get(self.pos..self.pos + 8)
            .ok_or(DecodeError("truncated float"))?;
        self.pos += 8;
        Ok(f64::from_bits(u64::from_le_bytes(
            b.try_into().map_err(|_| DecodeError("truncated float"))?,
        )))
    }

    /// A length no larger than the bytes left could hold (each item takes
    /// at least `min_bytes`), so a corrupt length never allocates much.
    fn len(&mut self, min_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.uvarint()?;
        let left = (self.buf.len() - self.pos) / min_bytes.max(1);
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= left)
            .ok_or(DecodeError("length beyond the chunk"))
    }

    /// Bucket indexes from spans (each bucket needs a count byte later).
    fn spans(&mut self) -> Result<Vec<i32>, DecodeError> {
        let n = self.len(2)?;
        let mut spans = Vec::with_capacity(n);
        let mut total = 0usize;
        for _ in 0..n {
            let offset = i32::try_from(unzigzag(self.uvarint()?))
                .map_err(|_| DecodeError("span offset out of range"))?;
            let length =
                u32::try_from(self.uvarint()?).map_err(|_| DecodeError("span too long"))?;
            total = total.saturating_add(length as usize);
            if total > self.buf.len() - self.pos {
                return Err(DecodeError("more buckets than the chunk holds"));
            }
            spans.push(Span { offset, length });
        }
        let zeros = vec![0.0; total];
        let buckets = Histogram::buckets_from_spans(&spans, &zeros)
            .map_err(|_| DecodeError("bucket spans out of range"))?;
        Ok(buckets.into_iter().map(|b| b.0).collect())
    }
}

/// The samples of a chunk.
pub fn decode(buf: &[u8]) -> Result<Vec<HistogramSample>, DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let n = r.len(4)?;
    let mut out: Vec<HistogramSample> = Vec::with_capacity(n);
    let (mut t, mut d) = (0i64, 0i64);
    for i in 0..n {
        let x = unzigzag(r.uvarint()?);
        match i {
            0 => t = x,
            1 => {
                d = x;
                t = t.wrapping_add(d);
            }
            _ => {
                d = d.wrapping_add(x);
                t = t.wrapping_add(d);
            }
        }
        let flags = r.byte()?;
        let prev = out.last().map(|s| &*s.h);
        let mut h = if flags & LAYOUT != 0 {
            let schema = i32::try_from(unzigzag(r.uvarint()?))
                .map_err(|_| DecodeError("schema out of range"))?;
            let zero_threshold = r.f64()?;
            let n_custom = r.len(8)?;
            let mut custom_values = Vec::with_capacity(n_custom);
            for _ in 0..n_custom {
                custom_values.push(r.f64()?);
            }
            let positive = r.spans()?.into_iter().map(|i| (i, 0.0)).collect();
            let negative = r.spans()?.into_iter().map(|i| (i, 0.0)).collect();
            Histogram {
                schema,
                zero_threshold,
                custom_values,
                positive,
                negative,
                ..Histogram::default()
            }
        } else {
            let p = prev.ok_or(DecodeError("the first sample has no layout"))?;
            Histogram {
                schema: p.schema,
                zero_threshold: p.zero_threshold,
                custom_values: p.custom_values.clone(),
                positive: p.positive.clone(),
                negative: p.negative.clone(),
                ..Histogram::default()
            }
        };
        h.hint = hint_of(flags);
        let before: Vec<f64> = match prev.filter(|_| flags & LAYOUT == 0) {
            Some(p) => counts(p).collect(),
            None => vec![0.0; 2 + h.positive.len() + h.negative.len()],
        };
        let mut now = Vec::with_capacity(before.len());
        for b in before {
            let x = r.uvarint()?;
            now.push(if flags & WHOLE != 0 {
                (b as i64).wrapping_add(unzigzag(x)) as f64
            } else {
                f64::from_bits(b.to_bits() ^ x)
            });
        }
        h.count = now[0];
        h.zero_count = now[1];
        let np = h.positive.len();
        for (b, c) in h.positive.iter_mut().zip(&now[2..2 + np]) {
            b.1 = *c;
        }
        for (b, c) in h.negative.iter_mut().zip(&now[2 + np..]) {
            b.1 = *c;
        }
        let prev_sum = prev.map_or(0, |p| p.sum.to_bits());
        h.sum = f64::from_bits(r.uvarint()? ^ prev_sum);
        // Only valid histograms are stored: anything else is damage (and
        // could not be encoded again).
        h.validate()
            .map_err(|_| DecodeError("a histogram that does not validate"))?;
        out.push(HistogramSample::new(t, h));
    }
    if r.pos != buf.len() {
        return Err(DecodeError("trailing bytes"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit-for-bit equality (NaN sums and counts included).
    fn same(a: &[HistogramSample], b: &[HistogramSample]) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    fn histogram() -> impl Strategy<Value = Histogram> {
        (
            prop_oneof![
                (-4i32..=8).boxed(),
                Just(sextant_histogram::CUSTOM_BUCKETS_SCHEMA).boxed()
            ],
            prop::collection::btree_map(-30i32..30, 0u32..5000, 0..10),
            prop::collection::btree_map(-30i32..30, 0u32..5000, 0..4),
            any::<bool>(),
            prop::sample::select(vec![0.0, 1e-128, 0.5]),
            any::<f64>(),
            0u8..4,
        )
            .prop_map(|(schema, pos, neg, whole, zt, sum, hint)| {
                let c = |x: u32| {
                    if whole {
                        f64::from(x)
                    } else {
                        f64::from(x) / 3.0
                    }
                };
                // Valid histograms only: those are what is stored (the
                // decoder refuses the rest as damage).
                let custom = schema == sextant_histogram::CUSTOM_BUCKETS_SCHEMA;
                let positive: Vec<(i32, f64)> = pos
                    .into_iter()
                    .filter(|(i, _)| !custom || (0..=3).contains(i))
                    .map(|(i, x)| (i, c(x)))
                    .collect();
                let negative: Vec<(i32, f64)> = if custom {
                    Vec::new()
                } else {
                    neg.into_iter().map(|(i, x)| (i, c(x))).collect()
                };
                let zero_count = if custom { 0.0 } else { 1.0 };
                let count = positive.iter().chain(&negative).map(|b| b.1).sum::<f64>() + zero_count;
                Histogram {
                    hint: hint_of(hint << 1),
                    schema,
                    zero_threshold: if custom { 0.0 } else { zt },
                    zero_count,
                    count,
                    sum,
                    custom_values: if custom {
                        vec![0.1, 1.0, 10.0]
                    } else {
                        Vec::new()
                    },
                    positive,
                    negative,
                }
            })
    }

    proptest! {
        #[test]
        fn any_histograms_round_trip(
            hs in prop::collection::vec(histogram(), 0..20),
            ts in prop::collection::vec(any::<i64>(), 20),
        ) {
            let mut ts = ts;
            ts.sort_unstable();
            let samples: Vec<HistogramSample> =
                ts.into_iter().zip(hs).map(|(t, h)| HistogramSample::new(t, h)).collect();
            let mut buf = Vec::new();
            encode(&samples, &mut buf);
            prop_assert!(same(&decode(&buf).unwrap(), &samples));
        }

        #[test]
        fn garbage_is_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }

    /// Found by fuzzing: a chunk whose histogram has a bucket at index
    /// `i32::MAX` decoded, then overflowed when encoded again. Such a
    /// histogram is invalid: the decoder refuses it.
    #[test]
    fn a_bucket_index_beyond_any_bound_is_refused() {
        let bytes = include_bytes!("../../tests/data/histogram-chunk-index-overflow.bin");
        if let Ok(samples) = decode(bytes) {
            let mut again = Vec::new();
            encode(&samples, &mut again);
            assert!(same(&decode(&again).unwrap(), &samples));
        }
    }

    /// A counter histogram scraped every 15 s: its layout is written once,
    /// then each bucket costs the byte of its increment.
    #[test]
    fn a_steady_counter_costs_about_a_byte_per_bucket() {
        let mut h = Histogram {
            schema: 3,
            zero_threshold: 1e-128,
            positive: (0..20).map(|i| (i, 0.0)).collect(),
            ..Histogram::default()
        };
        let mut samples = Vec::new();
        for k in 0..120i64 {
            for (j, b) in h.positive.iter_mut().enumerate() {
                b.1 += ((k as usize * 7 + j * 13) % 40) as f64;
            }
            h.count = h.positive.iter().map(|b| b.1).sum();
            h.sum += 12.5 * (k % 5) as f64;
            samples.push(HistogramSample::new(
                1_700_000_000_000 + k * 15_000,
                h.clone(),
            ));
        }
        let mut buf = Vec::new();
        encode(&samples, &mut buf);
        let per_sample = buf.len() as f64 / samples.len() as f64;
        assert!(same(&decode(&buf).unwrap(), &samples));
        println!("steady 20-bucket counter: {per_sample:.1} bytes per sample");
        assert!(per_sample < 40.0, "{per_sample} bytes per 20-bucket sample");
    }
}
