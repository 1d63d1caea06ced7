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

/// The slots a table of `slots` slots holding `entries` must grow to
/// before `more` are added, or `None` when it has room.
pub(super) fn grown(entries: usize, more: usize, slots: usize) -> Option<usize> {
    let need = (entries + more) * 10 / MAX_LOAD_TENTHS + 1;
    (need > slots).then(|| need.next_power_of_two())
}
