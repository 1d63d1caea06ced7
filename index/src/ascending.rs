//! A short ascending list of numbers with its first value inline. Most
//! term page lists in a block, term row lists in the head and trace row
//! lists have a single value: then no vector is allocated.

/// Ascending `u32`s, each once, the first inline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ascending {
    first: u32,
    more: Vec<u32>,
}

impl Ascending {
    /// The list of `v`.
    pub const fn new(v: u32) -> Self {
        Ascending {
            first: v,
            more: Vec::new(),
        }
    }

    /// The list of values already sorted and unique; `None` when empty.
    pub fn from_sorted(mut values: Vec<u32>) -> Option<Self> {
        let first = *values.first()?;
        values.remove(0);
        Some(Ascending {
            first,
            more: values,
        })
    }

    /// Appends `v` (not below the last); a repeat of the last is ignored.
    /// Returns whether it was added.
    pub fn push(&mut self, v: u32) -> bool {
        let added = self.last() != v;
        if added {
            self.more.push(v);
        }
        added
    }

    /// The first value.
    pub fn first(&self) -> u32 {
        self.first
    }

    /// The last value.
    pub fn last(&self) -> u32 {
        self.more.last().copied().unwrap_or(self.first)
    }

    /// True when the list holds one value.
    pub fn is_single(&self) -> bool {
        self.more.is_empty()
    }

    /// Values held (never 0).
    pub fn len(&self) -> usize {
        self.more.len() + 1
    }

    /// False: a list holds at least one value.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The values after the first, on the heap (for a caller that
    /// prefetches them).
    pub fn spilled(&self) -> &[u32] {
        &self.more
    }

    /// The values, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(self.first).chain(self.more.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_of_the_last_are_one_value() {
        let mut a = Ascending::new(3);
        assert!(!a.push(3));
        assert!(a.push(5));
        assert!(!a.push(5));
        assert!(a.push(9));
        assert_eq!(a.iter().collect::<Vec<_>>(), [3, 5, 9]);
        assert_eq!((a.first(), a.last(), a.len()), (3, 9, 3));
        assert_eq!(a.spilled(), [5, 9]);
        assert_eq!(Ascending::from_sorted(vec![3, 5, 9]), Some(a));
        assert!(Ascending::from_sorted(vec![7]).unwrap().is_single());
        assert_eq!(Ascending::from_sorted(Vec::new()), None);
    }
}
