//! Record framing. A frame is a 12-byte header followed by the payload:
//!
//! ```text
//! 0      4     5      6           8             12
//! | len  | type | 0x00 | len_check | payload_crc | payload (len bytes) |
//!   u32le   u8    u8      u16le        u32le
//! ```
//!
//! `len_check` is the low half of the masked CRC32C of bytes 0..6, so a torn
//! or overwritten length is detected before it is used. `payload_crc` is the
//! masked CRC32C of the type byte and the payload. CRCs are masked (rotated
//! and offset) so that runs of zero bytes never verify.

/// Bytes of a frame header.
pub const FRAME_HEADER_LEN: usize = 12;
/// The largest payload a frame may carry; larger lengths are corruption.
pub const MAX_RECORD_LEN: usize = 16 << 20;

const MASK_DELTA: u32 = 0xa282_ead8;

/// Masks a CRC32C (rotate, add a constant) so that runs of zero bytes never
/// verify. Every checksum Sextant stores is masked this way.
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(MASK_DELTA)
}

/// The masked CRC32C of the concatenation of `parts`.
pub fn masked_crc(parts: &[&[u8]]) -> u32 {
    mask_crc(parts.iter().fold(0, |crc, p| crc32c::crc32c_append(crc, p)))
}

fn len_check(head: &[u8]) -> u16 {
    (masked_crc(&[head]) & 0xffff) as u16
}

/// Appends one frame to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, typ: u8, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_RECORD_LEN);
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.push(typ);
    out.push(0);
    let check = len_check(&out[start..start + 6]);
    out.extend_from_slice(&check.to_le_bytes());
    out.extend_from_slice(&masked_crc(&[&[typ], payload]).to_le_bytes());
    out.extend_from_slice(payload);
}

/// What [`decode`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded<'a> {
    /// A verified record; `next` is the offset after it.
    Record {
        typ: u8,
        payload: &'a [u8],
        next: usize,
    },
    /// The offset is exactly the end of the data.
    End,
    /// The bytes at the offset are not a valid frame.
    Bad(&'static str),
}

/// Decodes the frame at `pos` of `buf`.
pub(crate) fn decode(buf: &[u8], pos: usize) -> Decoded<'_> {
    let Some(rest) = buf.get(pos..) else {
        return Decoded::Bad("offset past the end");
    };
    if rest.is_empty() {
        return Decoded::End;
    }
    let Some(head) = rest.get(..FRAME_HEADER_LEN) else {
        return Decoded::Bad("truncated frame header");
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let typ = head[4];
    let check = u16::from_le_bytes([head[6], head[7]]);
    if head[5] != 0 || check != len_check(&head[..6]) {
        return Decoded::Bad("frame header check failed");
    }
    if len > MAX_RECORD_LEN || typ == 0 {
        return Decoded::Bad("frame header out of range");
    }
    let Some(payload) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
        return Decoded::Bad("truncated payload");
    };
    let crc = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if crc != masked_crc(&[&[typ], payload]) {
        return Decoded::Bad("payload checksum mismatch");
    }
    Decoded::Record {
        typ,
        payload,
        next: pos + FRAME_HEADER_LEN + len,
    }
}

/// Whether any valid frame starts after `pos`: tells a torn tail (nothing
/// valid follows the damage) from corruption in the middle of the log.
pub(crate) fn valid_frame_after(buf: &[u8], pos: usize) -> bool {
    (pos + 1..buf.len().saturating_sub(FRAME_HEADER_LEN - 1))
        .any(|p| matches!(decode(buf, p), Decoded::Record { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn zeros_never_verify() {
        assert_eq!(
            decode(&[0u8; 64], 0),
            Decoded::Bad("frame header check failed")
        );
    }

    proptest! {
        #[test]
        fn round_trip(typ in 1u8.., payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..8)) {
            let mut buf = Vec::new();
            for p in &payloads { encode(&mut buf, typ, p); }
            let mut pos = 0;
            for p in &payloads {
                match decode(&buf, pos) {
                    Decoded::Record { typ: t, payload, next } => {
                        prop_assert_eq!(t, typ);
                        prop_assert_eq!(payload, &p[..]);
                        pos = next;
                    }
                    other => prop_assert!(false, "{:?}", other),
                }
            }
            prop_assert_eq!(decode(&buf, pos), Decoded::End);
        }

        #[test]
        fn any_single_bit_flip_is_detected(payload in proptest::collection::vec(any::<u8>(), 1..200), bit in 0usize..1600) {
            let mut buf = Vec::new();
            encode(&mut buf, 3, &payload);
            let bit = bit % (buf.len() * 8);
            buf[bit / 8] ^= 1 << (bit % 8);
            let intact = matches!(decode(&buf, 0), Decoded::Record { payload: p, .. } if p == &payload[..]);
            prop_assert!(!intact);
        }

        #[test]
        fn every_truncation_is_detected(payload in proptest::collection::vec(any::<u8>(), 0..200), cut in 1usize..212) {
            let mut buf = Vec::new();
            encode(&mut buf, 7, &payload);
            let cut = cut.min(buf.len() - 1).max(1);
            prop_assert!(matches!(decode(&buf[..cut], 0), Decoded::Bad(_)));
        }
    }
}
