//! Shared by the record decoding targets.

use sextant_storage::codec::records::{Columnar, Layout, decode_frame, encode_frame};

/// Decodes `data` as a frame of `T`; whatever decodes must re-encode, in
/// either layout, to a frame that decodes to the same rows.
pub fn round_trip<T: Columnar + std::fmt::Debug>(data: &[u8]) {
    if let Ok(rows) = decode_frame::<T>(data) {
        for layout in [Layout::Plain, Layout::Packed] {
            let mut again = Vec::new();
            encode_frame::<T, T>(&rows, layout, &mut again);
            let back = decode_frame::<T>(&again).expect("re-encoded frame decodes");
            // Debug output compares doubles bit for bit (NaN included).
            assert_eq!(format!("{rows:?}"), format!("{back:?}"), "{layout:?}");
        }
    }
}
