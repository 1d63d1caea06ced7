//! The storage engine's WAL record types (layouts in `docs/format.md`).
//! Series ids are those of the head that was current when the record was
//! written. Every head starts its ids at 0, and a head's segments can
//! outlive it (a flush that did not finish), so each head begins with an
//! `EPOCH` record: ids before and after one are unrelated.

use sextant_index::put_uvarint;

use crate::codec::cursor::Cursor;
use crate::codec::records::decode_frame;
use crate::codec::{Sample, unzigzag, zigzag};
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

/// A decoded record.
#[derive(Debug, PartialEq)]
pub enum WalRecord {
    /// Series created in the head.
    Series(Vec<(u32, Labels)>),
    /// Samples by head series id.
    Samples(Vec<(u32, Sample)>),
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
        fn garbage_never_panics(typ in 1u8..7, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(typ, &bytes);
        }
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
