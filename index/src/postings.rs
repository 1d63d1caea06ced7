//! Label postings: for each (label name, value), the ids of the series that
//! carry it, as roaring bitmaps.

use std::collections::BTreeMap;

use parking_lot::RwLock;
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;

use crate::error::{Error, Result};
use crate::matcher::{MatchOp, Matcher};
use crate::varint::{get_uvarint, put_uvarint};

/// Read access to a postings index, live or immutable.
pub trait Postings {
    /// Every series id.
    fn all(&self) -> RoaringBitmap;
    /// Series with `name="value"`.
    fn get(&self, name: &str, value: &str) -> Option<RoaringBitmap>;
    /// Calls `f` with each value of `name` and its series.
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str, &RoaringBitmap));
    /// All label names, sorted.
    fn label_names(&self) -> Vec<String>;
}

/// The series matching all `matchers` (an empty list matches everything).
/// Restricting matchers are applied first, then those that also accept the
/// empty value subtract the series whose value they reject.
pub fn select<P: Postings + ?Sized>(p: &P, matchers: &[Matcher]) -> RoaringBitmap {
    let (positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
        matchers.iter().partition(|m| !m.matches_empty());
    let mut result: Option<RoaringBitmap> = None;
    for m in positive {
        let set = if m.op == MatchOp::Equal {
            p.get(&m.name, &m.value).unwrap_or_default()
        } else {
            let mut acc = RoaringBitmap::new();
            p.for_each_value(&m.name, &mut |v, b| {
                if m.matches(v) {
                    acc |= b;
                }
            });
            acc
        };
        let next = match result {
            Some(r) => r & set,
            None => set,
        };
        if next.is_empty() {
            return next;
        }
        result = Some(next);
    }
    let mut result = result.unwrap_or_else(|| p.all());
    for m in negative {
        p.for_each_value(&m.name, &mut |v, b| {
            if !m.matches(v) {
                result -= b;
            }
        });
    }
    result
}

#[derive(Default)]
struct MemInner {
    map: FxHashMap<Box<str>, FxHashMap<Box<str>, RoaringBitmap>>,
    all: RoaringBitmap,
}

/// Postings of the mutable head; series are added as they are created.
#[derive(Default)]
pub struct MemPostings {
    inner: RwLock<MemInner>,
}

impl std::fmt::Debug for MemPostings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemPostings({} series)", self.inner.read().all.len())
    }
}

impl MemPostings {
    /// Records that series `id` carries `labels`.
    pub fn add<'a>(&self, id: u32, labels: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let mut g = self.inner.write();
        g.all.insert(id);
        for (n, v) in labels {
            let values = match g.map.get_mut(n) {
                Some(values) => values,
                None => g.map.entry(n.into()).or_default(),
            };
            match values.get_mut(v) {
                Some(b) => {
                    b.insert(id);
                }
                None => {
                    values.insert(v.into(), RoaringBitmap::from_iter([id]));
                }
            }
        }
    }

    /// Bytes held by the bitmaps (for head memory accounting).
    pub fn bitmap_bytes(&self) -> usize {
        let g = self.inner.read();
        g.map
            .values()
            .flat_map(|vs| vs.values())
            .map(|b| b.serialized_size())
            .sum()
    }
}

impl Postings for MemPostings {
    fn all(&self) -> RoaringBitmap {
        self.inner.read().all.clone()
    }
    fn get(&self, name: &str, value: &str) -> Option<RoaringBitmap> {
        self.inner.read().map.get(name)?.get(value).cloned()
    }
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str, &RoaringBitmap)) {
        if let Some(values) = self.inner.read().map.get(name) {
            for (v, b) in values {
                f(v, b);
            }
        }
    }
    fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .read()
            .map
            .keys()
            .map(|k| k.to_string())
            .collect();
        names.sort_unstable();
        names
    }
}

/// The postings of one immutable block, whose series ids are `0..series`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct BlockPostings {
    series: u32,
    map: BTreeMap<String, Vec<(String, RoaringBitmap)>>,
}

impl BlockPostings {
    /// Builds postings for series `0..n`, given in id order.
    pub fn build<'a, I, L>(series: I) -> Self
    where
        I: IntoIterator<Item = L>,
        L: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut tmp: BTreeMap<String, BTreeMap<String, RoaringBitmap>> = BTreeMap::new();
        let mut n = 0u32;
        for labels in series {
            for (name, value) in labels {
                tmp.entry(name.to_string())
                    .or_default()
                    .entry(value.to_string())
                    .or_default()
                    .insert(n);
            }
            n += 1;
        }
        let map = tmp
            .into_iter()
            .map(|(k, vs)| (k, vs.into_iter().collect()))
            .collect();
        BlockPostings { series: n, map }
    }

    /// Serialised form (see `docs/format.md`, block file `postings`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_uvarint(&mut out, u64::from(self.series));
        put_uvarint(&mut out, self.map.len() as u64);
        for (name, values) in &self.map {
            put_bytes(&mut out, name.as_bytes());
            put_uvarint(&mut out, values.len() as u64);
            for (value, bitmap) in values {
                put_bytes(&mut out, value.as_bytes());
                put_uvarint(&mut out, bitmap.serialized_size() as u64);
                // Writing into a Vec cannot fail.
                let _ = bitmap.serialize_into(&mut out);
            }
        }
        out
    }

    /// Parses [`BlockPostings::encode`]'s output; never panics on bad input.
    pub fn decode(buf: &[u8]) -> Result<Self> {
        let mut pos = 0;
        let series =
            u32::try_from(uvarint(buf, &mut pos)?).map_err(|_| Error::Corrupt("series count"))?;
        let names = uvarint(buf, &mut pos)?;
        let mut map = BTreeMap::new();
        for _ in 0..names {
            let name = string(buf, &mut pos)?;
            let n = uvarint(buf, &mut pos)?;
            let mut values = Vec::new();
            for _ in 0..n {
                let value = string(buf, &mut pos)?;
                let bytes = bytes(buf, &mut pos)?;
                let bitmap =
                    RoaringBitmap::deserialize_from(bytes).map_err(|_| Error::Corrupt("bitmap"))?;
                if bitmap.max().is_some_and(|m| m >= series) {
                    return Err(Error::Corrupt("series id out of range"));
                }
                values.push((value, bitmap));
            }
            if !values.windows(2).all(|w| w[0].0 < w[1].0) {
                return Err(Error::Corrupt("values not sorted"));
            }
            map.insert(name, values);
        }
        if pos != buf.len() {
            return Err(Error::Corrupt("trailing bytes"));
        }
        Ok(BlockPostings { series, map })
    }

    /// Values of `name`, sorted.
    pub fn label_values(&self, name: &str) -> impl Iterator<Item = &str> {
        self.map
            .get(name)
            .into_iter()
            .flat_map(|vs| vs.iter().map(|(v, _)| v.as_str()))
    }
}

impl Postings for BlockPostings {
    fn all(&self) -> RoaringBitmap {
        let mut b = RoaringBitmap::new();
        b.insert_range(0..self.series);
        b
    }
    fn get(&self, name: &str, value: &str) -> Option<RoaringBitmap> {
        let values = self.map.get(name)?;
        let i = values
            .binary_search_by(|(v, _)| v.as_str().cmp(value))
            .ok()?;
        Some(values[i].1.clone())
    }
    fn for_each_value(&self, name: &str, f: &mut dyn FnMut(&str, &RoaringBitmap)) {
        for (v, b) in self.map.get(name).into_iter().flatten() {
            f(v, b);
        }
    }
    fn label_names(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn uvarint(buf: &[u8], pos: &mut usize) -> Result<u64> {
    get_uvarint(buf, pos).ok_or(Error::Corrupt("truncated varint"))
}

fn bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Result<&'a [u8]> {
    let len = usize::try_from(uvarint(buf, pos)?).map_err(|_| Error::Corrupt("length"))?;
    let end = pos.checked_add(len).ok_or(Error::Corrupt("length"))?;
    let b = buf
        .get(*pos..end)
        .ok_or(Error::Corrupt("truncated bytes"))?;
    *pos = end;
    Ok(b)
}

fn string(buf: &[u8], pos: &mut usize) -> Result<String> {
    let b = bytes(buf, pos)?;
    String::from_utf8(b.to_vec()).map_err(|_| Error::Corrupt("invalid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Vec<(&'static str, &'static str)>> {
        vec![
            vec![("__name__", "up"), ("job", "a")],
            vec![("__name__", "up"), ("job", "b"), ("env", "prod")],
            vec![("__name__", "down"), ("job", "a")],
        ]
    }

    fn ids(b: RoaringBitmap) -> Vec<u32> {
        b.iter().collect()
    }

    #[test]
    fn matchers_follow_prometheus_semantics() {
        let block = BlockPostings::build(sample());
        let mem = MemPostings::default();
        for (i, s) in sample().into_iter().enumerate() {
            mem.add(i as u32, s);
        }
        let m = |op, n: &str, v: &str| Matcher::new(op, n, v).unwrap();
        let cases: Vec<(Vec<Matcher>, Vec<u32>)> = vec![
            (vec![m(MatchOp::Equal, "__name__", "up")], vec![0, 1]),
            (vec![m(MatchOp::Equal, "env", "")], vec![0, 2]),
            (vec![m(MatchOp::NotEqual, "env", "prod")], vec![0, 2]),
            (
                vec![
                    m(MatchOp::Regex, "job", "a|b"),
                    m(MatchOp::NotEqual, "__name__", "up"),
                ],
                vec![2],
            ),
            (vec![m(MatchOp::NotRegex, "job", "a")], vec![1]),
            (vec![m(MatchOp::Regex, "env", ".*")], vec![0, 1, 2]),
            (vec![m(MatchOp::Equal, "nope", "x")], vec![]),
            (vec![], vec![0, 1, 2]),
        ];
        for (ms, want) in cases {
            assert_eq!(ids(select(&block, &ms)), want, "block {ms:?}");
            assert_eq!(ids(select(&mem, &ms)), want, "mem {ms:?}");
        }
    }

    #[test]
    fn encode_decode_round_trip_and_rejects_garbage() {
        let block = BlockPostings::build(sample());
        let bytes = block.encode();
        assert_eq!(BlockPostings::decode(&bytes).unwrap(), block);
        for cut in 0..bytes.len() {
            assert!(BlockPostings::decode(&bytes[..cut]).is_err());
        }
    }
}
