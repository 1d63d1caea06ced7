//! LEB128 unsigned varints, the integer encoding of every Sextant record body.

/// Appends `v` as an unsigned LEB128 varint.
#[inline]
pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads an unsigned varint at `*pos`, advancing it. `None` on truncated or
/// over-long input, so decoders of untrusted bytes cannot be made to loop.
#[inline]
pub fn get_uvarint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(vs in proptest::collection::vec(any::<u64>(), 0..50)) {
            let mut buf = Vec::new();
            for v in &vs { put_uvarint(&mut buf, *v); }
            let mut pos = 0;
            for v in &vs { prop_assert_eq!(get_uvarint(&buf, &mut pos), Some(*v)); }
            prop_assert_eq!(pos, buf.len());
        }
    }

    #[test]
    fn overlong_is_rejected() {
        assert_eq!(get_uvarint(&[0xff; 11], &mut 0), None);
    }
}
