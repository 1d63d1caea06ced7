//! Series identity: a set of label pairs sorted by name, stored as one
//! compact byte string so a head series costs one allocation for its labels
//! and hashing/equality are plain byte operations.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use sextant_index::{get_uvarint, put_uvarint};

use crate::error::{Error, Result};

/// The metric name label.
pub const METRIC_NAME: &str = "__name__";

/// A label set. Invariants: names non-empty and unique, pairs sorted by name,
/// no empty values (Prometheus treats an empty value as an absent label).
///
/// Encoding: for each pair `uvarint(len) name uvarint(len) value`; the same
/// bytes appear in WAL series records and block series tables.
#[derive(Clone, Eq)]
pub struct Labels(Arc<[u8]>);

impl PartialEq for Labels {
    /// Shared sets (the server's label cache hands the head the very `Arc`
    /// its map holds) compare by pointer. `Arc<[u8]>`'s own `==` compares
    /// the bytes even then (std's pointer shortcut needs a sized `T`): that
    /// was 12% of remote_write ingest CPU, in the head's series lookup.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0[..] == other.0[..]
    }
}

impl std::hash::Hash for Labels {
    /// The bytes, as `==` compares them.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0[..].hash(state);
    }
}

impl Labels {
    /// Builds a label set from pairs in any order; empty values are dropped.
    pub fn new<N: AsRef<str>, V: AsRef<str>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Labels> {
        let mut v: Vec<(N, V)> = pairs
            .into_iter()
            .filter(|(_, v)| !v.as_ref().is_empty())
            .collect();
        v.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut out = Vec::with_capacity(
            v.iter()
                .map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 2)
                .sum(),
        );
        for (i, (n, val)) in v.iter().enumerate() {
            let n = n.as_ref();
            if n.is_empty() {
                return Err(Error::InvalidLabels("empty label name".into()));
            }
            if i > 0 && v[i - 1].0.as_ref() == n {
                return Err(Error::InvalidLabels(format!("duplicate label name {n:?}")));
            }
            put_str(&mut out, n);
            put_str(&mut out, val.as_ref());
        }
        Ok(Labels(out.into()))
    }

    /// The empty label set.
    pub fn empty() -> Labels {
        Labels(Arc::from(&[][..]))
    }

    /// Parses the encoded form, checking every invariant (for bytes read
    /// from disk or the WAL).
    pub fn decode(bytes: &[u8]) -> Result<Labels> {
        let mut pos = 0;
        let mut prev: Option<&str> = None;
        while pos < bytes.len() {
            let n = take_str(bytes, &mut pos).ok_or_else(|| corrupt("label name"))?;
            let v = take_str(bytes, &mut pos).ok_or_else(|| corrupt("label value"))?;
            if n.is_empty() || v.is_empty() || prev.is_some_and(|p| p >= n) {
                return Err(corrupt("label order"));
            }
            prev = Some(n);
        }
        Ok(Labels(bytes.into()))
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The pairs in name order.
    pub fn iter(&self) -> LabelsIter<'_> {
        LabelsIter {
            buf: &self.0,
            pos: 0,
        }
    }

    /// The pairs as bytes, without re-checking UTF-8 (checked when the set
    /// was built). For hot paths that only need lengths, byte equality or
    /// byte order, which is the same as `str` order.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let buf: &[u8] = &self.0;
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= buf.len() {
                return None;
            }
            let n = take_bytes(buf, &mut pos)?;
            let v = take_bytes(buf, &mut pos)?;
            Some((n, v))
        })
    }

    /// Value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        // Pairs are sorted by name: compare bytes, stop once past it, and
        // convert only the value returned (grouping calls this per series).
        for (n, v) in self.iter_bytes() {
            match n.cmp(name.as_bytes()) {
                Ordering::Less => {}
                Ordering::Equal => return std::str::from_utf8(v).ok(),
                Ordering::Greater => return None,
            }
        }
        None
    }

    /// The pairs whose name `keep` accepts. A subset of a sorted, valid set
    /// is sorted and valid: the kept pairs' encoded bytes are copied as they
    /// are, in one pass with one allocation (no UTF-8 checks, no sort), for
    /// the per-series label edits of query evaluation.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) -> Labels {
        let buf: &[u8] = &self.0;
        let mut out = Vec::with_capacity(buf.len());
        let mut pos = 0;
        while pos < buf.len() {
            let start = pos;
            let (Some(name), Some(_)) = (take_bytes(buf, &mut pos), take_bytes(buf, &mut pos))
            else {
                break;
            };
            // Names were checked when the set was built; a name `keep`
            // cannot see is kept out.
            if std::str::from_utf8(name).is_ok_and(&mut keep) {
                out.extend_from_slice(&buf[start..pos]);
            }
        }
        if out.len() == buf.len() {
            return self.clone();
        }
        Labels(out.into())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn corrupt(what: &str) -> Error {
    Error::corrupt("", format!("bad label set encoding ({what})"))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn take_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(get_uvarint(buf, pos)?).ok()?;
    let end = pos.checked_add(len)?;
    let b = buf.get(*pos..end)?;
    *pos = end;
    Some(b)
}

fn take_str<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    std::str::from_utf8(take_bytes(buf, pos)?).ok()
}

/// Iterator over the pairs of a [`Labels`].
pub struct LabelsIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for LabelsIter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        // The bytes were validated when the Labels was built.
        let n = take_str(self.buf, &mut self.pos)?;
        let v = take_str(self.buf, &mut self.pos)?;
        Some((n, v))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> Ordering {
        self.iter_bytes().cmp(other.iter_bytes())
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Labels {
    /// Prometheus notation: `name{a="b", c="d"}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for (n, v) in self.iter().filter(|(n, _)| *n != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{n}={v:?}")?;
        }
        f.write_str("}")
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_unique_and_empty_values_dropped() {
        let l = Labels::new([("b", "2"), ("__name__", "m"), ("a", "1"), ("e", "")]).unwrap();
        let pairs: Vec<_> = l.iter().collect();
        assert_eq!(pairs, vec![("__name__", "m"), ("a", "1"), ("b", "2")]);
        assert_eq!(l.to_string(), r#"m{a="1", b="2"}"#);
        assert_eq!(Labels::decode(l.as_bytes()).unwrap(), l);
        assert!(Labels::new([("a", "1"), ("a", "2")]).is_err());
        assert!(Labels::new([("", "1")]).is_err());
    }

    proptest::proptest! {
        /// `retain` (a byte copy of the kept pairs) builds the same set as
        /// `new` over the kept pairs.
        #[test]
        fn retain_agrees_with_new(
            pairs in proptest::collection::btree_map("[a-z_]{1,4}", "\\PC{1,4}", 0..8),
            drop in proptest::collection::vec("[a-z_]{1,4}", 0..4),
        ) {
            let l = Labels::new(pairs.iter()).unwrap();
            let keep = |n: &str| !drop.iter().any(|d| d == n);
            let want = Labels::new(l.iter().filter(|(n, _)| keep(n))).unwrap();
            proptest::prop_assert_eq!(l.retain(keep), want);
        }

        /// `get` (a sorted byte scan) agrees with a plain search of the pairs.
        #[test]
        fn get_agrees_with_a_linear_search(
            pairs in proptest::collection::btree_map("[a-z_]{1,4}", "\\PC{1,4}", 0..8),
            probe in "[a-z_]{1,4}",
        ) {
            let l = Labels::new(pairs.iter()).unwrap();
            for name in pairs.keys().chain([&probe]) {
                let want = l.iter().find(|(n, _)| n == name).map(|(_, v)| v);
                proptest::prop_assert_eq!(l.get(name), want);
            }
        }
    }

    #[test]
    fn order_is_pairwise() {
        let a = Labels::new([("a", "x")]).unwrap();
        let b = Labels::new([("a", "x"), ("b", "y")]).unwrap();
        let c = Labels::new([("aa", "x")]).unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn decode_rejects_garbage() {
        for bad in [
            &[1u8, b'a'][..],
            &[1, b'a', 0],
            &[1, b'b', 1, b'1', 1, b'a', 1, b'1'],
            &[0xff],
        ] {
            assert!(Labels::decode(bad).is_err(), "{bad:?}");
        }
    }
}
