//! Elias–Fano coding of an ascending list of distinct integers below a
//! known bound: about `2 + log2(bound / n)` bits a value, whatever the
//! gaps, and a length that follows from `n` and the bound alone, so a
//! reader steps over a list without reading it.
//!
//! With `n ≥ 1` values below `universe`, `l = floor(log2(universe / n))`.
//! The list is one bit stream, least significant bit first within each
//! byte (an empty list is no bytes):
//!
//! ```text
//! low bits:  value_i mod 2^l, l bits each, i = 0..n
//! high bits: bit (value_i >> l) + i set, over n + ((universe - 1) >> l) bits
//! ```
//!
//! padded with zero bits to a whole byte. A reader refuses padding that is
//! not zero, a count of set high bits other than `n`, values not strictly
//! ascending and values at or past `universe`.

/// Low bits a value of a list of `n` values below `universe`.
fn low_bits(n: u64, universe: u64) -> u32 {
    match universe.checked_div(n) {
        Some(q) if q > 0 => q.ilog2(),
        _ => 0,
    }
}

/// Bits of the high part of such a list.
fn high_bits(n: u64, universe: u64, l: u32) -> u64 {
    if n == 0 {
        return 0;
    }
    n + (universe.saturating_sub(1) >> l)
}

/// Bytes of a list of `n` values below `universe`.
pub(crate) fn len(n: u64, universe: u64) -> usize {
    let l = low_bits(n, universe);
    (n * u64::from(l) + high_bits(n, universe, l)).div_ceil(8) as usize
}

/// Appends the `n` values of `values` (ascending, distinct, below
/// `universe`) to `out`, in one pass over them.
pub(crate) fn put(out: &mut Vec<u8>, n: usize, values: impl Iterator<Item = u32>, universe: u32) {
    let (n, u) = (n as u64, u64::from(universe));
    let l = low_bits(n, u);
    let at = out.len();
    out.resize(at + len(n, u), 0);
    let bits = &mut out[at..];
    let low_mask = (1u64 << l) - 1;
    let high_at = n * u64::from(l);
    for (i, v) in values.enumerate() {
        let i = i as u64;
        // The low bits, at most 32, shifted into place: 5 bytes at most.
        let pos = i * u64::from(l);
        let mut low = (u64::from(v) & low_mask) << (pos % 8);
        let mut byte = (pos / 8) as usize;
        while low != 0 {
            bits[byte] |= low as u8;
            low >>= 8;
            byte += 1;
        }
        let high = high_at + (u64::from(v) >> l) + i;
        bits[(high / 8) as usize] |= 1 << (high % 8);
    }
}

/// The low bits of value `i` of a list with `l` low bits a value.
fn low_of(bytes: &[u8], i: u64, l: u32) -> u64 {
    let pos = i * u64::from(l);
    let at = (pos / 8) as usize;
    let word = (0..5).fold(0u64, |w, k| {
        w | bytes.get(at + k).map_or(0, |&b| u64::from(b) << (8 * k))
    });
    (word >> (pos % 8)) & ((1u64 << l) - 1)
}

/// Reads a list of `n` values below `universe` from `bytes` (exactly
/// [`len`] bytes), giving each to `f` in order. `Err` when the bytes are
/// not a list [`put`] writes.
pub(crate) fn read(bytes: &[u8], n: u64, universe: u64, mut f: impl FnMut(u32)) -> Result<(), ()> {
    if bytes.len() != len(n, universe) {
        return Err(());
    }
    let l = low_bits(n, universe);
    let high_at = n * u64::from(l);
    let end = high_at + high_bits(n, universe, l);
    if bytes
        .last()
        .is_some_and(|&b| !end.is_multiple_of(8) && b >> (end % 8) != 0)
    {
        return Err(());
    }
    let bit = |pos: u64| u64::from(bytes[(pos / 8) as usize] >> (pos % 8) & 1);
    let mut i = 0u64;
    let mut last = None;
    let mut pos = high_at;
    while pos < end {
        // A whole zero byte of the high part at once.
        if pos.is_multiple_of(8) && end - pos >= 8 && bytes[(pos / 8) as usize] == 0 {
            pos += 8;
            continue;
        }
        if bit(pos) == 1 {
            if i == n {
                return Err(());
            }
            let high = pos - high_at - i;
            let low = low_of(bytes, i, l);
            let v = high << l | low;
            if v >= universe || last.is_some_and(|p| v <= p) {
                return Err(());
            }
            last = Some(v);
            f(v as u32);
            i += 1;
        }
        pos += 1;
    }
    if i == n { Ok(()) } else { Err(()) }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn list() -> impl Strategy<Value = (Vec<u32>, u32)> {
        (1u32..200_000).prop_flat_map(|universe| {
            (
                proptest::collection::btree_set(0..universe, 1..300),
                Just(universe),
            )
                .prop_map(|(s, u)| (s.into_iter().collect(), u))
        })
    }

    proptest! {
        #[test]
        fn lists_round_trip((values, universe) in list()) {
            let mut out = vec![7];
            put(&mut out, values.len(), values.iter().copied(), universe);
            prop_assert_eq!(out.len(), 1 + len(values.len() as u64, u64::from(universe)));
            let mut back = Vec::new();
            read(&out[1..], values.len() as u64, u64::from(universe), |v| back.push(v)).unwrap();
            prop_assert_eq!(back, values);
        }

        /// Damaged lists are refused or read as some ascending list below
        /// the bound; never a panic.
        #[test]
        fn damaged_lists_never_panic(
            (values, universe) in list(),
            flip in any::<(usize, u8)>(),
            n_off in -2i64..3,
        ) {
            let mut out = Vec::new();
            put(&mut out, values.len(), values.iter().copied(), universe);
            let at = flip.0 % out.len();
            out[at] ^= flip.1;
            let n = (values.len() as i64 + n_off).max(0) as u64;
            let mut back = Vec::new();
            if read(&out, n, u64::from(universe), |v| back.push(v)).is_ok() {
                prop_assert_eq!(back.len() as u64, n);
                prop_assert!(back.windows(2).all(|w| w[0] < w[1]));
                prop_assert!(back.iter().all(|&v| v < universe));
            }
        }
    }

    /// A list of a few values of a large universe takes a few bytes each.
    #[test]
    fn sparse_lists_are_small() {
        let values: Vec<u32> = (0..100).map(|i| i * 625).collect();
        let mut out = Vec::new();
        put(&mut out, values.len(), values.iter().copied(), 62_500);
        // l = 9: 11 bits a value, and the high part's 122 spare bits.
        assert_eq!(out.len(), (100 * 9 + 100 + (62_499usize >> 9)).div_ceil(8));
    }
}
