//! Sizing and home slots of the head's open-addressed tables (term
//! postings, trace rows): arrays of a power of two slots, probed
//! linearly, at most [`MAX_LOAD_TENTHS`] tenths full.

/// Slots are at most this many tenths full.
pub(super) const MAX_LOAD_TENTHS: usize = 7;

/// Slots of an empty table.
pub(super) const FIRST_SLOTS: usize = 16;

/// Where a table of some number of slots places a hash: in the slot its
/// top bits name, after multiplying by 2⁶⁴/φ (Fibonacci hashing: every
/// bit of the hash counts).
#[derive(Clone, Copy)]
pub(super) struct Homes {
    /// `64 - log2(slots)`.
    shift: u32,
}

impl Homes {
    pub(super) fn of(slots: usize) -> Homes {
        Homes {
            shift: 64 - slots.trailing_zeros(),
        }
    }

    pub(super) fn home(self, hash: u64) -> usize {
        (hash.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }
}

/// Grows `table` (and its `homes`) when `entries + more` entries would
/// fill it past the load limit, placing each entry again by the hash
/// `hash_of` gives its slot (`None`: an empty slot), so that nothing
/// beyond the slots is read.
pub(super) fn reserve<S: Clone>(
    table: &mut Vec<S>,
    homes: &mut Homes,
    (entries, more): (usize, usize),
    vacant: S,
    hash_of: impl Fn(&S) -> Option<u64>,
) {
    let need = (entries + more) * 10 / MAX_LOAD_TENTHS + 1;
    if need <= table.len() {
        return;
    }
    let size = need.next_power_of_two();
    let old = std::mem::replace(table, vec![vacant; size]);
    *homes = Homes::of(size);
    for s in old {
        if let Some(hash) = hash_of(&s) {
            let i = probe(homes.home(hash), size, |i| hash_of(&table[i]).is_none());
            table[i] = s;
        }
    }
}

/// The first slot from `home` on, wrapping round the table's `slots`, at
/// which `stop` holds: the load limit keeps an empty one ahead.
pub(super) fn probe(home: usize, slots: usize, stop: impl Fn(usize) -> bool) -> usize {
    let mut i = home;
    while !stop(i) {
        i = (i + 1) & (slots - 1);
    }
    i
}
