//! The storage engine's WAL record types (layouts in `docs/format.md`).
//! Series ids are those of the head that was current when the record was
//! written. Every head starts its ids at 0, and a head's segments can
//! outlive it (a flush that did not finish), so each head begins with an
//! `EPOCH` record: ids before and after one are unrelated.

use sextant_index::put_uvarint;

use crate::codec::cursor::Cursor;
use crate::codec::records::decode_frame;
use crate::codec::{HistogramSample, Sample, histogram, unzigzag, zigzag};
use crate::exemplar::Exemplar;
use crate::labels::Labels;
use crate::model::{LogRecord, Span};

/// New head series: `(id, labels)*`.
pub const SERIES: u8 = 1;
/// Samples: `count, (id, Δt, f64)*`.
pub const SAMPLES: u8 = 2;
/// Exemplars: `(id, t, f64, trace, span, labels)*`.
pub const EXEMPLARS: u8 = 3;

/// Log records: one column frame (`codec::records`).
pub const LOGS: u8 = 4;
/// Spans: one column frame (`codec::records`).
pub const SPANS: u8 = 5;
/// A new head starts: series ids after it are its own. Empty payload.
pub const EPOCH: u8 = 6;
/// Native-histogram samples: `count, (id, len, histogram chunk of one
/// sample)*` (`codec::histogram`).
pub const HISTOGRAMS: u8 = 7;

/// A decoded record.
#[derive(Debug, PartialEq)]
pub enum WalRecord {
    /// Series created in the head.
    Series(Vec<(u32, Labels)>),
    /// Samples by head series id.
    Samples(Vec<(u32, Sample)>),
    /// Native-histogram samples by head series id.
    Histograms(Vec<(u32, HistogramSample)>),
    /// Exemplars by head series id.
    Exemplars(Vec<(u32, Exemplar)>),
    /// Log records.
    Logs(Vec<LogRecord>),
    /// Spans.
    Spans(Vec<Span>),
    /// A new head's id space begins.
    Epoch,
}

pub(crate) fn encode_series(out: &mut Vec<u8>, id: u32, labels: &Labels) {
    put_uvarint(out, u64::from(id));
    put_uvarint(out, labels.as_bytes().len() as u64);
    out.extend_from_slice(labels.as_bytes());
}

/// Encodes samples; timestamps are deltas from the previous sample.
pub(crate) fn encode_samples(out: &mut Vec<u8>, samples: &[(u32, Sample)]) {
    put_uvarint(out, samples.len() as u64);
    let mut prev = 0i64;
    for (id, s) in samples {
        put_uvarint(out, u64::from(*id));
        put_uvarint(out, zigzag(s.t.wrapping_sub(prev)));
        out.extend_from_slice(&s.v.to_bits().to_le_bytes());
        prev = s.t;
    }
}

/// Encodes histogram samples, each as a histogram chunk of one sample,
/// into records of at most `max_len` bytes (a sample bigger than that gets
/// a record of its own, which the WAL then refuses with its own error).
pub(crate) fn histogram_records(
    samples: &[(u32, HistogramSample)],
    max_len: usize,
) -> Vec<Vec<u8>> {
    fn finish(n: usize, body: &[u8]) -> Vec<u8> {
        let mut rec = Vec::with_capacity(body.len() + 10);
        put_uvarint(&mut rec, n as u64);
        rec.extend_from_slice(body);
        rec
    }
    let (mut out, mut body, mut n) = (Vec::new(), Vec::new(), 0);
    let (mut chunk, mut entry) = (Vec::new(), Vec::new());
    for (id, s) in samples {
        chunk.clear();
        histogram::encode(std::slice::from_ref(s), &mut chunk);
        entry.clear();
        put_uvarint(&mut entry, u64::from(*id));
        put_uvarint(&mut entry, chunk.len() as u64);
        entry.extend_from_slice(&chunk);
        if n > 0 && body.len() + entry.len() + 10 > max_len {
            out.push(finish(n, &body));
            body.clear();
            n = 0;
        }
        body.extend_from_slice(&entry);
        n += 1;
    }
    if n > 0 {
        out.push(finish(n, &body));
    }
    out
}

pub(crate) fn encode_exemplar(out: &mut Vec<u8>, id: u32, e: &Exemplar) {
    put_uvarint(out, u64::from(id));
    put_uvarint(out, zigzag(e.t));
    out.extend_from_slice(&e.value.to_bits().to_le_bytes());
    out.extend_from_slice(&e.trace_id);
    out.extend_from_slice(&e.span_id);
    put_uvarint(out, e.labels.as_bytes().len() as u64);
    out.extend_from_slice(e.labels.as_bytes());
}

/// Decodes a record of the storage engine. Bad bytes give an error message,
/// never a panic, and allocations stay proportional to the input.
pub fn decode(typ: u8, payload: &[u8]) -> Result<WalRecord, String> {
    let mut c = Cursor::new(payload);
    match typ {
        SERIES => {
            let mut out = Vec::new();
            while !c.done() {
                out.push((c.id()?, c.labels()?));
            }
            Ok(WalRecord::Series(out))
        }
        SAMPLES => {
            let n = c.uvarint()?;
            // Each sample takes at least 10 bytes.
            if n > payload.len() as u64 / 10 {
                return Err("sample count exceeds record size".into());
            }
            let mut out = Vec::with_capacity(n as usize);
            let mut t = 0i64;
            for _ in 0..n {
                let id = c.id()?;
                t = t.wrapping_add(unzigzag(c.uvarint()?));
                out.push((id, Sample::new(t, c.f64()?)));
            }
            if !c.done() {
                return Err("trailing bytes in samples record".into());
            }
            Ok(WalRecord::Samples(out))
        }
        HISTOGRAMS => {
            let n = c.uvarint()?;
            // Each sample takes at least 3 bytes.
            if n > payload.len() as u64 / 3 {
                return Err("histogram count exceeds record size".into());
            }
            let mut out = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let id = c.id()?;
                let chunk = c.blob()?;
                let mut one = histogram::decode(chunk).map_err(|e| e.to_string())?;
                match (one.pop(), one.is_empty()) {
                    (Some(s), true) => out.push((id, s)),
                    _ => return Err("histogram entry without exactly one sample".into()),
                }
            }
            if !c.done() {
                return Err("trailing bytes in histograms record".into());
            }
            Ok(WalRecord::Histograms(out))
        }
        EXEMPLARS => {
            let mut out = Vec::new();
            while !c.done() {
                let id = c.id()?;
                let t = unzigzag(c.uvarint()?);
                let value = c.f64()?;
                let trace_id = c.array()?;
                let span_id = c.array()?;
                let labels = c.labels()?;
                out.push((
                    id,
                    Exemplar {
                        t,
                        value,
                        trace_id,
                        span_id,
                        labels,
                    },
                ));
            }
            Ok(WalRecord::Exemplars(out))
        }
        LOGS => Ok(WalRecord::Logs(decode_frame(payload)?)),
        SPANS => Ok(WalRecord::Spans(decode_frame(payload)?)),
        EPOCH if payload.is_empty() => Ok(WalRecord::Epoch),
        EPOCH => Err("epoch record with a payload".into()),
        other => Err(format!("unknown record type {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn samples_round_trip(s in proptest::collection::vec((any::<u32>(), any::<i64>(), any::<u64>()), 0..100)) {
            let s: Vec<(u32, Sample)> = s.into_iter().map(|(id, t, v)| (id, Sample::new(t, f64::from_bits(v)))).collect();
            let mut buf = Vec::new();
            encode_samples(&mut buf, &s);
            prop_assert_eq!(decode(SAMPLES, &buf), Ok(WalRecord::Samples(s)));
        }

        #[test]
        fn garbage_never_panics(typ in 1u8..8, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(typ, &bytes);
        }
    }

    #[test]
    fn histograms_round_trip_and_split_at_the_record_limit() {
        let h = sextant_histogram::parse_notation("{{schema:1 sum:5 count:4 buckets:[1 2 1]}}")
            .unwrap();
        let s: Vec<(u32, HistogramSample)> = (0..50)
            .map(|i| (i, HistogramSample::new(i64::from(i) * 15_000, h.clone())))
            .collect();
        let recs = histogram_records(&s, 200);
        assert!(recs.len() > 1 && recs.iter().all(|r| r.len() <= 200));
        let mut back = Vec::new();
        for r in &recs {
            match decode(HISTOGRAMS, r) {
                Ok(WalRecord::Histograms(v)) => back.extend(v),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(back, s);
    }

    #[test]
    fn series_and_exemplars_round_trip() {
        let l = Labels::new([("__name__", "x"), ("a", "b")]).unwrap();
        let mut buf = Vec::new();
        encode_series(&mut buf, 7, &l);
        assert_eq!(
            decode(SERIES, &buf),
            Ok(WalRecord::Series(vec![(7, l.clone())]))
        );
        let e = Exemplar {
            t: -3,
            value: 1.5,
            trace_id: [1; 16],
            span_id: [2; 8],
            labels: l,
        };
        let mut buf = Vec::new();
        encode_exemplar(&mut buf, 9, &e);
        assert_eq!(
            decode(EXEMPLARS, &buf),
            Ok(WalRecord::Exemplars(vec![(9, e)]))
        );
    }
}
