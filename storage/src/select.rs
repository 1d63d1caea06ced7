//! The read path: a consistent snapshot of blocks and heads, series matched
//! through each source's postings, merged by labels, samples merged by time
//! with the most recent write winning on equal timestamps.

use std::collections::BTreeSet;
use std::sync::Arc;

use sextant_index::Matcher;

use crate::block::{Block, FrameCursor};
use crate::codec::{HistogramSample, Sample, Timed};
use crate::db::Db;
use crate::error::Result;
use crate::exemplar::Exemplar;
use crate::head::{Head, MemSeries};
use crate::labels::Labels;

/// A series and its samples in the selected range.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The series.
    pub labels: Labels,
    /// Its samples, ascending and unique by timestamp.
    pub samples: Vec<Sample>,
    /// Its native-histogram samples, ascending and unique by timestamp.
    pub histograms: Vec<HistogramSample>,
}

/// Where a series' data comes from; ordered oldest write first.
#[derive(Clone)]
enum Source {
    Block { block: usize, idx: u32 },
    Head(Arc<MemSeries>),
}

/// The sources of the data at one moment: later sources win.
pub(crate) struct Snapshot {
    pub(crate) blocks: Arc<Vec<Arc<Block>>>,
    pub(crate) heads: Vec<Arc<Head>>,
}

impl Snapshot {
    /// Every source with series matching `matchers` and data overlapping
    /// `[start, end]`, grouped by labels in label order.
    fn matching(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<(Labels, Vec<Source>)> {
        let mut found: Vec<(Labels, usize, Source)> = Vec::new();
        // Rank orders writes: blocks by sequence, then heads oldest first.
        let mut order: Vec<usize> = (0..self.blocks.len()).collect();
        order.sort_by_key(|&i| self.blocks[i].meta().seq);
        for (rank, &bi) in order.iter().enumerate() {
            let b = &self.blocks[bi];
            if !b.overlaps(start, end) {
                continue;
            }
            for idx in b.select(matchers) {
                found.push((
                    b.labels(idx).clone(),
                    rank,
                    Source::Block { block: bi, idx },
                ));
            }
        }
        for (hi, h) in self.heads.iter().enumerate() {
            if !h
                .time_range()
                .is_some_and(|(lo, hi_t)| lo <= end && hi_t >= start)
            {
                continue;
            }
            for s in h.select(matchers) {
                found.push((s.labels.clone(), order.len() + hi, Source::Head(s)));
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut out: Vec<(Labels, Vec<Source>)> = Vec::new();
        for (labels, _, src) in found {
            match out.last_mut() {
                Some((l, v)) if *l == labels => v.push(src),
                _ => out.push((labels, vec![src])),
            }
        }
        out
    }
}

/// Series matching a selection, produced one at a time: memory holds the
/// matched label sets and one series' samples, not the data scanned.
pub struct SeriesSet {
    snap: Snapshot,
    groups: std::vec::IntoIter<(Labels, Vec<Source>)>,
    caches: Vec<FrameCursor>,
    start: i64,
    end: i64,
}

impl Iterator for SeriesSet {
    type Item = Result<Series>;

    fn next(&mut self) -> Option<Self::Item> {
        for (labels, sources) in self.groups.by_ref() {
            let mut parts = Vec::with_capacity(sources.len());
            let mut hparts = Vec::with_capacity(sources.len());
            for src in &sources {
                let (start, end) = (self.start, self.end);
                match src {
                    Source::Block { block, idx } => {
                        let (b, cache) = (&self.snap.blocks[*block], &mut self.caches[*block]);
                        match (
                            b.samples(*idx, start, end, cache),
                            b.histograms(*idx, start, end, cache),
                        ) {
                            (Ok(p), Ok(h)) => {
                                parts.push(p);
                                hparts.push(h);
                            }
                            (Err(e), _) | (_, Err(e)) => return Some(Err(e)),
                        }
                    }
                    Source::Head(s) => {
                        parts.push(s.samples(start, end));
                        hparts.push(s.histograms(start, end));
                    }
                }
            }
            let samples = merge_samples(parts);
            let histograms = merge_samples(hparts);
            if !samples.is_empty() || !histograms.is_empty() {
                return Some(Ok(Series {
                    labels,
                    samples,
                    histograms,
                }));
            }
        }
        None
    }
}

/// Merges per-source sample runs (each sorted, ordered oldest write first)
/// into one run, unique by timestamp, the latest write winning.
pub(crate) fn merge_samples<S: Timed + Clone>(mut parts: Vec<Vec<S>>) -> Vec<S> {
    parts.retain(|p| !p.is_empty());
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_default();
    }
    let mut by_start: Vec<&Vec<S>> = parts.iter().collect();
    by_start.sort_by_key(|p| p[0].t());
    if by_start
        .windows(2)
        .all(|w| w[0][w[0].len() - 1].t() < w[1][0].t())
    {
        return by_start.into_iter().flatten().cloned().collect();
    }
    let mut all: Vec<S> = parts.into_iter().flatten().collect();
    // Stable: equal timestamps keep source order, so the last is newest.
    all.sort_by_key(Timed::t);
    let mut out: Vec<S> = Vec::with_capacity(all.len());
    for s in all {
        match out.last_mut() {
            Some(last) if last.t() == s.t() => *last = s,
            _ => out.push(s),
        }
    }
    out
}

impl Db {
    pub(crate) fn snapshot(&self) -> Snapshot {
        let inner = &self.inner;
        // Take heads before blocks: a flush that completes in between then
        // shows its data twice (deduplicated), never zero times.
        let head = Arc::clone(&inner.head.read());
        let mut heads: Vec<Arc<Head>> = inner
            .frozen
            .read()
            .iter()
            .map(|(h, _)| Arc::clone(h))
            .collect();
        heads.push(head);
        let blocks = Arc::clone(&inner.blocks.read());
        Snapshot { blocks, heads }
    }

    /// Series matching all `matchers` with samples in `[start, end]` (ms,
    /// inclusive), in label order, streamed one series at a time.
    pub fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<SeriesSet> {
        let snap = self.snapshot();
        let groups = snap.matching(matchers, start, end);
        let caches = (0..snap.blocks.len())
            .map(|_| FrameCursor::new(&self.inner.frames))
            .collect();
        Ok(SeriesSet {
            groups: groups.into_iter(),
            caches,
            snap,
            start,
            end,
        })
    }

    /// Label sets of series matching `matchers` whose data overlaps
    /// `[start, end]`, without reading samples (as Prometheus' series API).
    pub fn series(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<Labels>> {
        Ok(self
            .snapshot()
            .matching(matchers, start, end)
            .into_iter()
            .map(|(l, _)| l)
            .collect())
    }

    /// Label names of matching series (all series if `matchers` is empty).
    pub fn label_names(&self, matchers: &[Matcher], start: i64, end: i64) -> Result<Vec<String>> {
        let snap = self.snapshot();
        let mut names = BTreeSet::new();
        if matchers.is_empty() {
            for b in snap.blocks.iter().filter(|b| b.overlaps(start, end)) {
                names.extend(b.label_names());
            }
            for h in &snap.heads {
                names.extend(h.label_names());
            }
        } else {
            for (l, _) in snap.matching(matchers, start, end) {
                names.extend(l.iter().map(|(n, _)| n.to_string()));
            }
        }
        Ok(names.into_iter().collect())
    }

    /// Values of label `name` among matching series, sorted.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<String>> {
        let snap = self.snapshot();
        let mut values = BTreeSet::new();
        if matchers.is_empty() {
            for b in snap.blocks.iter().filter(|b| b.overlaps(start, end)) {
                values.extend(b.label_values(name));
            }
            for h in &snap.heads {
                values.extend(h.label_values(name));
            }
        } else {
            for (l, _) in snap.matching(matchers, start, end) {
                values.extend(l.get(name).map(str::to_string));
            }
        }
        Ok(values.into_iter().collect())
    }

    /// Exemplars of matching series in `[start, end]`, per series, by time.
    pub fn exemplars(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<(Labels, Vec<Exemplar>)>> {
        let snap = self.snapshot();
        let mut out = Vec::new();
        for (labels, sources) in snap.matching(matchers, start, end) {
            let mut ex: Vec<Exemplar> = Vec::new();
            for src in sources {
                match src {
                    Source::Block { block, idx } => {
                        ex.extend(snap.blocks[block].exemplars(idx, start, end))
                    }
                    Source::Head(s) => ex.extend(s.exemplars(start, end)),
                }
            }
            ex.sort_by(|a, b| {
                a.t.cmp(&b.t)
                    .then(a.trace_id.cmp(&b.trace_id))
                    .then(a.span_id.cmp(&b.span_id))
            });
            ex.dedup_by(|a, b| {
                a.t == b.t
                    && a.trace_id == b.trace_id
                    && a.span_id == b.span_id
                    && a.value.to_bits() == b.value.to_bits()
            });
            if !ex.is_empty() {
                out.push((labels, ex));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &[(i64, f64)]) -> Vec<Sample> {
        v.iter().map(|(t, x)| Sample::new(*t, *x)).collect()
    }

    #[test]
    fn later_sources_win_and_each_timestamp_appears_once() {
        let a = run(&[(1, 1.0), (2, 1.0), (3, 1.0)]);
        let b = run(&[(2, 2.0), (4, 2.0)]);
        let c = run(&[(3, 3.0)]);
        assert_eq!(
            merge_samples(vec![a, b, c]),
            run(&[(1, 1.0), (2, 2.0), (3, 3.0), (4, 2.0)])
        );
        let x = run(&[(5, 1.0)]);
        let y = run(&[(1, 2.0)]);
        assert_eq!(merge_samples(vec![x, y]), run(&[(1, 2.0), (5, 1.0)]));
    }
}
