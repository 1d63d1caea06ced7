//! WAL replay of damaged logs. Mode 0 writes the input as a segment body
//! (after a valid header); mode 1 appends the input as well-framed records
//! through the real log, then tears the segment at a fuzzed offset. Either
//! way open must return records or a clean error, and every replayed record
//! goes through the storage engine's record decoder.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sextant_storage::walrec;
use sextant_wal::{Durability, Options, StdFs, Wal, segment_path};

fn opts() -> Options {
    Options { segment_size: 1 << 20, durability: Durability::Never }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let dir = tempdir();
    let seg = segment_path(&dir, 1);
    if mode % 2 == 0 {
        let mut bytes = b"SXWAL\0".to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(rest);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&seg, &bytes).unwrap();
    } else {
        let (wal, _) = Wal::open(&dir, Arc::new(StdFs), opts(), 0, |_| Ok(())).unwrap();
        for rec in rest.split(|b| *b == 0xff) {
            if let Some((&typ, payload)) = rec.split_first() {
                let _ = wal.append(&[(typ % 4 + 1, payload)]);
            }
        }
        drop(wal);
        let len = std::fs::metadata(&seg).unwrap().len();
        let cut = u64::from(mode) * 7919 % (len + 1);
        std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(cut).unwrap();
    }
    let res = Wal::open(&dir, Arc::new(StdFs), opts(), 0, |r| {
        let _ = walrec::decode(r.typ, r.payload);
        Ok(())
    });
    drop(res);
    std::fs::remove_dir_all(&dir).unwrap();
});

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("sextant-fuzz-wal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}
