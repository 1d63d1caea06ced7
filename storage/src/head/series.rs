//! One series of the head: sealed Gorilla chunks, the open chunk, an
//! out-of-order overlay and the exemplars since the last flush.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use parking_lot::Mutex;

use crate::codec::{HistogramSample, Sample, Timed, gorilla, histogram};
use crate::exemplar::Exemplar;
use crate::labels::Labels;

/// Samples per head chunk before it is sealed and its spare capacity freed.
const CHUNK_SAMPLES: u32 = 240;

#[derive(Debug)]
struct Sealed {
    bytes: Box<[u8]>,
    count: u32,
    min_t: i64,
    max_t: i64,
}

#[derive(Debug, Default)]
struct Data {
    sealed: Vec<Sealed>,
    open: gorilla::Encoder,
    open_min_t: i64,
    /// Samples at or before the newest in-order sample, sorted by time with
    /// unique timestamps; they win over chunk samples at the same time
    /// (last write wins).
    overlay: Vec<Sample>,
    exemplars: Vec<Exemplar>,
    /// Native-histogram samples, kept apart from the floats: a series may
    /// switch between the two (Prometheus allows it), and readers merge
    /// them by time.
    hist: Option<Box<HistData>>,
}

/// A series' histogram samples in the head: sealed runs in the chunk
/// codec, the newest run as values, and an out-of-order overlay.
#[derive(Debug, Default)]
struct HistData {
    sealed: Vec<SealedHist>,
    open: Vec<HistogramSample>,
    overlay: Vec<HistogramSample>,
    max_t: Option<i64>,
}

#[derive(Debug)]
struct SealedHist {
    bytes: Box<[u8]>,
    min_t: i64,
    max_t: i64,
}

/// Histogram samples per sealed head run: a run is decoded whole on every
/// read of it, so it stays short.
const HIST_CHUNK_SAMPLES: usize = 120;

impl HistData {
    fn append(&mut self, s: HistogramSample) {
        if self.max_t.is_none_or(|m| s.t > m) {
            if self.open.len() >= HIST_CHUNK_SAMPLES {
                let mut bytes = Vec::new();
                histogram::encode(&self.open, &mut bytes);
                self.sealed.push(SealedHist {
                    bytes: bytes.into_boxed_slice(),
                    min_t: self.open[0].t,
                    max_t: self.open[self.open.len() - 1].t,
                });
                self.open.clear();
            }
            self.max_t = Some(s.t);
            self.open.push(s);
        } else {
            match self.overlay.binary_search_by_key(&s.t, |o| o.t) {
                Ok(i) => self.overlay[i] = s,
                Err(i) => self.overlay.insert(i, s),
            }
        }
    }

    fn samples(&self, start: i64, end: i64) -> Vec<HistogramSample> {
        let within = |s: &HistogramSample| s.t >= start && s.t <= end;
        let mut out = Vec::new();
        for c in self
            .sealed
            .iter()
            .filter(|c| c.max_t >= start && c.min_t <= end)
        {
            // Head runs were encoded by this process: they always decode.
            out.extend(
                histogram::decode(&c.bytes)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(within),
            );
        }
        out.extend(self.open.iter().filter(|s| within(s)).cloned());
        let overlay: Vec<HistogramSample> =
            self.overlay.iter().filter(|s| within(s)).cloned().collect();
        if overlay.is_empty() {
            return out;
        }
        merge_overlay(out, overlay)
    }

    fn footprint(&self) -> (u64, usize) {
        let sealed: usize = self.sealed.iter().map(|c| c.bytes.len()).sum();
        let live = self.open.len() + self.overlay.len();
        let live_bytes: usize = self
            .open
            .iter()
            .chain(&self.overlay)
            .map(|s| {
                std::mem::size_of::<sextant_histogram::Histogram>()
                    + 12 * (s.h.positive.len() + s.h.negative.len())
                    + 8 * s.h.custom_values.len()
            })
            .sum();
        let runs = self.sealed.len() * HIST_CHUNK_SAMPLES;
        ((runs + live) as u64, sealed + live_bytes)
    }
}

/// A series in the head.
#[derive(Debug)]
pub(crate) struct MemSeries {
    pub(crate) id: u32,
    pub(crate) labels: Labels,
    /// Newest timestamp, readable without the lock for the window check.
    max_t: AtomicI64,
    /// Whether a `SERIES` record for this series is in the WAL. A series
    /// is created in the head before its record is appended, so until this
    /// is set every writer that logs samples of it logs the series record
    /// too: replay then meets a series record before any sample of it,
    /// whichever writer's append lands first.
    logged: AtomicBool,
    data: Mutex<Data>,
}

impl MemSeries {
    pub(crate) fn new(id: u32, labels: Labels) -> Self {
        MemSeries {
            id,
            labels,
            max_t: AtomicI64::new(i64::MIN),
            logged: AtomicBool::new(false),
            data: Mutex::default(),
        }
    }

    /// Whether the series' `SERIES` record is known to be in the WAL.
    pub(crate) fn is_logged(&self) -> bool {
        self.logged.load(Ordering::Acquire)
    }

    /// Records that a `SERIES` record for it was appended to the WAL.
    pub(crate) fn set_logged(&self) {
        self.logged.store(true, Ordering::Release);
    }

    /// Newest timestamp seen (`i64::MIN` when empty).
    pub(crate) fn max_t(&self) -> i64 {
        self.max_t.load(Ordering::Acquire)
    }

    /// Appends samples in any order. Never rejects: the out-of-order window
    /// is checked before the samples are logged, so replay and live writes
    /// apply the same records the same way.
    pub(crate) fn append(&self, samples: impl IntoIterator<Item = Sample>) {
        let mut d = self.data.lock();
        let mut max_t = self.max_t.load(Ordering::Relaxed);
        for s in samples {
            if s.t > max_t || (d.open.count() == 0 && d.sealed.is_empty()) {
                if d.open.count() >= CHUNK_SAMPLES {
                    seal(&mut d, max_t);
                }
                if d.open.count() == 0 {
                    d.open_min_t = s.t;
                }
                d.open.append(s);
                max_t = s.t;
            } else {
                match d.overlay.binary_search_by_key(&s.t, |o| o.t) {
                    Ok(i) => d.overlay[i] = s,
                    Err(i) => d.overlay.insert(i, s),
                }
            }
        }
        self.max_t.store(max_t, Ordering::Release);
    }

    /// Starts loading the series itself: its labels, the data's lock and
    /// the open chunk's header span its first two cache lines.
    pub(crate) fn prefetch(&self) {
        let p = std::ptr::from_ref(self).cast::<u8>();
        crate::prefetch(p);
        crate::prefetch(p.wrapping_add(64));
    }

    /// Starts loading the end of the open chunk, where the next append
    /// writes (a batch calls this a few series ahead). Skipped when the
    /// series is busy: it is only a hint.
    pub(crate) fn prefetch_open_chunk(&self) {
        if let Some(d) = self.data.try_lock() {
            let b = d.open.bytes();
            crate::prefetch(b.as_ptr().wrapping_add(b.len().saturating_sub(1)));
        }
    }

    /// Appends native-histogram samples in any order (see [`Self::append`]).
    pub(crate) fn append_histograms(&self, samples: impl IntoIterator<Item = HistogramSample>) {
        let mut d = self.data.lock();
        let hist = d.hist.get_or_insert_with(Box::default);
        let mut newest = i64::MIN;
        for s in samples {
            newest = newest.max(s.t);
            hist.append(s);
        }
        self.max_t.fetch_max(newest, Ordering::AcqRel);
    }

    /// Histogram samples with `start <= t <= end`, in time order, one per
    /// timestamp.
    pub(crate) fn histograms(&self, start: i64, end: i64) -> Vec<HistogramSample> {
        let d = self.data.lock();
        d.hist
            .as_ref()
            .map_or_else(Vec::new, |h| h.samples(start, end))
    }

    pub(crate) fn add_exemplars(&self, ex: impl IntoIterator<Item = Exemplar>) {
        self.data.lock().exemplars.extend(ex);
    }

    /// Samples with `start <= t <= end`, in time order, one per timestamp.
    pub(crate) fn samples(&self, start: i64, end: i64) -> Vec<Sample> {
        let d = self.data.lock();
        let mut out = Vec::new();
        for c in d
            .sealed
            .iter()
            .filter(|c| c.max_t >= start && c.min_t <= end)
        {
            // Head chunks were written by this process: they always decode.
            out.extend(
                gorilla::decode(&c.bytes, c.count)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| s.t >= start && s.t <= end),
            );
        }
        if d.open.count() > 0 && d.open_min_t <= end {
            out.extend(
                gorilla::decode(d.open.bytes(), d.open.count())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|s| s.t >= start && s.t <= end),
            );
        }
        let overlay: Vec<Sample> = d
            .overlay
            .iter()
            .filter(|s| s.t >= start && s.t <= end)
            .copied()
            .collect();
        if overlay.is_empty() {
            return out;
        }
        merge_overlay(out, overlay)
    }

    pub(crate) fn exemplars(&self, start: i64, end: i64) -> Vec<Exemplar> {
        let d = self.data.lock();
        let mut ex: Vec<Exemplar> = d
            .exemplars
            .iter()
            .filter(|e| e.t >= start && e.t <= end)
            .cloned()
            .collect();
        ex.sort_by_key(|e| e.t);
        ex
    }

    /// (samples, heap bytes) for memory accounting.
    pub(crate) fn footprint(&self) -> (u64, usize) {
        let d = self.data.lock();
        let samples = d.sealed.iter().map(|c| u64::from(c.count)).sum::<u64>()
            + u64::from(d.open.count())
            + d.overlay.len() as u64;
        let bytes = d.sealed.iter().map(|c| c.bytes.len()).sum::<usize>()
            + d.sealed.capacity() * std::mem::size_of::<Sealed>()
            + d.open.heap_bytes()
            + d.overlay.capacity() * std::mem::size_of::<Sample>()
            + d.exemplars.capacity() * std::mem::size_of::<Exemplar>()
            + self.labels.as_bytes().len();
        let (hs, hb) = d.hist.as_ref().map_or((0, 0), |h| h.footprint());
        (samples + hs, bytes + hb)
    }
}

fn seal(d: &mut Data, max_t: i64) {
    let mut open = std::mem::take(&mut d.open);
    open.shrink();
    let count = open.count();
    d.sealed.push(Sealed {
        bytes: open.into_bytes().into_boxed_slice(),
        count,
        min_t: d.open_min_t,
        max_t,
    });
}

/// Merges sorted in-order samples with the sorted overlay; on equal
/// timestamps the overlay (the later write) wins.
fn merge_overlay<S: Timed>(base: Vec<S>, overlay: Vec<S>) -> Vec<S> {
    let mut out = Vec::with_capacity(base.len() + overlay.len());
    let mut o = overlay.into_iter().peekable();
    for s in base {
        while let Some(x) = o.next_if(|x| x.t() < s.t()) {
            out.push(x);
        }
        match o.next_if(|x| x.t() == s.t()) {
            Some(x) => out.push(x),
            None => out.push(s),
        }
    }
    out.extend(o);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t: i64, v: f64) -> Sample {
        Sample::new(t, v)
    }

    #[test]
    fn out_of_order_and_duplicates_last_write_wins() {
        let m = MemSeries::new(0, Labels::empty());
        m.append([s(10, 1.0), s(20, 2.0), s(30, 3.0)]);
        m.append([
            s(15, 1.5),
            s(20, 20.0),
            s(5, 0.5),
            s(30, 30.0),
            s(40, 4.0),
            s(15, 15.0),
        ]);
        assert_eq!(
            m.samples(i64::MIN, i64::MAX),
            vec![
                s(5, 0.5),
                s(10, 1.0),
                s(15, 15.0),
                s(20, 20.0),
                s(30, 30.0),
                s(40, 4.0)
            ]
        );
        assert_eq!(
            m.samples(11, 30),
            vec![s(15, 15.0), s(20, 20.0), s(30, 30.0)]
        );
        assert_eq!(m.max_t(), 40);
    }

    #[test]
    fn many_chunks() {
        let m = MemSeries::new(0, Labels::empty());
        m.append((0..1000).map(|i| s(i * 15, i as f64)));
        let got = m.samples(150, 14_985);
        assert_eq!(got.len(), 990);
        assert_eq!(got[0], s(150, 10.0));
        assert_eq!(m.footprint().0, 1000);
    }
}
