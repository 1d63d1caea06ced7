//! Behaviour of the write-ahead log on a real directory, including damage
//! written at chosen offsets and faults injected through `FaultFs`.

use std::path::Path;
use std::sync::Arc;

use sextant_wal::{
    Durability, Error, FaultFs, FaultPlan, Options, StdFs, Vfs, Wal, list_segments, segment_path,
};

/// Records as replayed: (type, payload).
type Replayed = Vec<(u8, Vec<u8>)>;

fn opts(segment_size: u64) -> Options {
    Options {
        segment_size,
        durability: Durability::Always,
    }
}

fn open(dir: &Path, o: Options) -> (Wal, Replayed) {
    try_open(dir, Arc::new(StdFs), o).unwrap()
}

fn try_open(dir: &Path, vfs: Arc<dyn Vfs>, o: Options) -> sextant_wal::Result<(Wal, Replayed)> {
    let mut got = Vec::new();
    let (wal, _) = Wal::open(dir, vfs, o, 0, |r| {
        got.push((r.typ, r.payload.to_vec()));
        Ok(())
    })?;
    Ok((wal, got))
}

fn payload(i: u32) -> Vec<u8> {
    let mut p = i.to_le_bytes().to_vec();
    p.resize(10 + (i as usize * 7) % 90, i as u8);
    p
}

fn write_n(wal: &Wal, range: std::ops::Range<u32>) {
    for i in range {
        wal.append(&[(1 + (i % 3) as u8, &payload(i))]).unwrap();
    }
}

fn expected(range: std::ops::Range<u32>) -> Replayed {
    range.map(|i| (1 + (i % 3) as u8, payload(i))).collect()
}

#[test]
fn replay_returns_every_record_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, got) = open(dir.path(), opts(1024));
    assert!(got.is_empty());
    write_n(&wal, 0..200);
    drop(wal);
    assert!(list_segments(&StdFs, dir.path()).unwrap().len() > 5);
    let (wal, got) = open(dir.path(), opts(1024));
    assert_eq!(got, expected(0..200));
    write_n(&wal, 200..250);
    drop(wal);
    let (_, got) = open(dir.path(), opts(1024));
    assert_eq!(got, expected(0..250));
}

#[test]
fn torn_tail_is_cut_and_earlier_records_survive() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), opts(1 << 20));
    write_n(&wal, 0..20);
    drop(wal);
    let seg = segment_path(dir.path(), 1);
    let full = std::fs::read(&seg).unwrap();
    // Every possible tear inside the last record leaves the first 19.
    let last_len = 12 + payload(19).len();
    for cut in 1..last_len {
        std::fs::write(&seg, &full[..full.len() - cut]).unwrap();
        let (wal, got) = open(dir.path(), opts(1 << 20));
        assert_eq!(got, expected(0..19), "cut {cut}");
        drop(wal);
        assert_eq!(
            std::fs::metadata(&seg).unwrap().len() as usize,
            full.len() - last_len
        );
    }
}

#[test]
fn garbage_tail_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), opts(1 << 20));
    write_n(&wal, 0..5);
    drop(wal);
    let seg = segment_path(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0u8; 100]);
    std::fs::write(&seg, &bytes).unwrap();
    let (wal, got) = open(dir.path(), opts(1 << 20));
    assert_eq!(got, expected(0..5));
    write_n(&wal, 5..8);
    drop(wal);
    assert_eq!(open(dir.path(), opts(1 << 20)).1, expected(0..8));
}

#[test]
fn corruption_before_the_tail_names_segment_and_offset_and_repair_truncates() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), opts(1 << 20));
    write_n(&wal, 0..10);
    drop(wal);
    let seg = segment_path(dir.path(), 1);
    let mut bytes = std::fs::read(&seg).unwrap();
    // Flip a payload byte of the 4th record.
    let off: usize = 16 + (0..3).map(|i| 12 + payload(i).len()).sum::<usize>();
    bytes[off + 14] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();

    let err = try_open(dir.path(), Arc::new(StdFs), opts(1 << 20)).unwrap_err();
    match &err {
        Error::Corrupt {
            segment, offset, ..
        } => {
            assert_eq!((*segment, *offset), (1, off as u64));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("sextant repair"));

    // Repair drops the damaged record only: every intact one after it
    // is kept (issue 19: a mid-file flip cost 40,000 of 60,000 records).
    let report = Wal::repair(dir.path(), &StdFs, &|_, _| true).unwrap();
    assert_eq!(report.segments.len(), 1, "{report:?}");
    let r = &report.segments[0];
    assert_eq!((r.segment, r.kept, r.first_bad), (1, 9, Some(off as u64)));
    assert_eq!(r.dropped_bytes, 12 + payload(3).len() as u64);
    let want: Vec<_> = expected(0..10)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 3)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(open(dir.path(), opts(1 << 20)).1, want);
    assert!(
        Wal::repair(dir.path(), &StdFs, &|_, _| true)
            .unwrap()
            .segments
            .is_empty(),
        "intact now"
    );
}

#[test]
fn corrupt_earlier_segment_is_an_error_even_if_later_ones_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), opts(512));
    write_n(&wal, 0..60);
    drop(wal);
    let seg = segment_path(dir.path(), 2);
    let mut bytes = std::fs::read(&seg).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    let err = try_open(dir.path(), Arc::new(StdFs), opts(512)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { segment: 2, .. }), "{err}");
    // A missing middle segment is corruption too.
    let dir2 = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir2.path(), opts(512));
    write_n(&wal, 0..60);
    drop(wal);
    std::fs::remove_file(segment_path(dir2.path(), 2)).unwrap();
    let err = try_open(dir2.path(), Arc::new(StdFs), opts(512)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                segment: 2,
                offset: 0,
                ..
            }
        ),
        "{err}"
    );
    // Repair keeps everything that verifies: the missing segment comes
    // back empty, segment 3's damaged header is rewritten, and every
    // record of the segments after them replays.
    let mut bytes = std::fs::read(segment_path(dir2.path(), 3)).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(segment_path(dir2.path(), 3), &bytes).unwrap();
    let seg2 = segment_2_records();
    let report = Wal::repair(dir2.path(), &StdFs, &|_, _| true).unwrap();
    assert_eq!(
        report
            .segments
            .iter()
            .map(|s| (s.segment, s.recreated))
            .collect::<Vec<_>>(),
        [(2, true), (3, true)]
    );
    let (_, got) = open(dir2.path(), opts(512));
    let want: Vec<_> = expected(0..60)
        .into_iter()
        .filter(|r| !seg2.contains(r))
        .collect();
    assert!(!seg2.is_empty());
    assert_eq!(got, want, "only segment 2's records are gone");
}

/// The records segment 2 of a 60-record log in 512-byte segments holds.
fn segment_2_records() -> Replayed {
    let tmp = tempfile::tempdir().unwrap();
    let (wal, _) = open(tmp.path(), opts(512));
    write_n(&wal, 0..60);
    drop(wal);
    let bytes = std::fs::read(segment_path(tmp.path(), 2)).unwrap();
    let tail = tempfile::tempdir().unwrap();
    std::fs::write(segment_path(tail.path(), 2), &bytes).unwrap();
    open(tail.path(), opts(512)).1
}

#[test]
fn failed_fsync_poisons_until_reopen_and_reopen_keeps_acknowledged_records() {
    for plan in [
        FaultPlan {
            fail_sync: Some(3),
            ..Default::default()
        },
        FaultPlan {
            fail_write: Some(4),
            ..Default::default()
        },
        FaultPlan {
            tear_write: Some((4, 7)),
            ..Default::default()
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new(FaultPlan::default());
        let (wal, _) = try_open(dir.path(), Arc::new(fs.clone()), opts(1 << 20)).unwrap();
        fs.set_plan(plan);
        let mut acked = 0;
        for i in 0..10u32 {
            match wal.append(&[(1 + (i % 3) as u8, &payload(i))]) {
                Ok(()) => acked += 1,
                Err(e) => {
                    assert!(
                        !matches!(e, Error::Poisoned(_)),
                        "first error is the I/O error: {e}"
                    );
                    break;
                }
            }
        }
        assert_eq!(fs.faults_fired(), 1, "{plan:?}");
        let err = wal.append(&[(1, b"x")]).unwrap_err();
        assert!(matches!(err, Error::Poisoned(_)), "{err}");
        assert!(err.to_string().contains("reopen"));
        drop(wal);
        let (_, got) = open(dir.path(), opts(1 << 20));
        // Acknowledged records are all there; the failed one may or may not be.
        assert!(
            got.len() == acked || got.len() == acked + 1,
            "{plan:?}: {} vs {acked}",
            got.len()
        );
        assert_eq!(got[..acked], expected(0..acked as u32)[..]);
    }
}

#[test]
fn concurrent_writers_share_fsyncs_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(FaultPlan::default());
    let (wal, _) = try_open(dir.path(), Arc::new(fs.clone()), opts(64 << 10)).unwrap();
    fs.set_plan(FaultPlan::default());
    let wal = Arc::new(wal);
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..250u32 {
                    let mut p = vec![t];
                    p.extend_from_slice(&i.to_le_bytes());
                    wal.append(&[(1, &p)]).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        fs.syncs_seen() <= 1000 + 64,
        "at most one fsync per append (+ rotations)"
    );
    drop(wal);
    let (_, got) = open(dir.path(), opts(64 << 10));
    assert_eq!(got.len(), 1000);
    for t in 0..4u8 {
        let seq: Vec<u32> = got
            .iter()
            .filter(|(_, p)| p[0] == t)
            .map(|(_, p)| u32::from_le_bytes([p[1], p[2], p[3], p[4]]))
            .collect();
        assert_eq!(seq, (0..250).collect::<Vec<_>>(), "writer {t} in order");
    }
}

#[test]
fn rotate_and_checkpoint_remove_covered_segments() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), opts(1 << 20));
    write_n(&wal, 0..10);
    let next = wal.rotate().unwrap();
    assert_eq!(next, 2);
    write_n(&wal, 10..15);
    assert_eq!(wal.remove_segments_before(next).unwrap(), 1);
    drop(wal);
    assert_eq!(list_segments(&StdFs, dir.path()).unwrap(), vec![2]);
    assert_eq!(open(dir.path(), opts(1 << 20)).1, expected(10..15));
    // Opening with `first` past a segment deletes it instead of replaying it.
    let mut n = 0;
    let (wal, _) = Wal::open(dir.path(), Arc::new(StdFs), opts(1 << 20), 3, |_| {
        n += 1;
        Ok(())
    })
    .unwrap();
    assert_eq!(n, 0);
    write_n(&wal, 0..1);
    drop(wal);
    assert_eq!(list_segments(&StdFs, dir.path()).unwrap(), vec![3]);
}

#[test]
fn oversized_record_is_refused_without_poisoning() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), opts(4096));
    let err = wal.append(&[(1, &vec![0u8; 5000])]).unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err}");
    wal.append(&[(1, b"ok")]).unwrap();
}

#[test]
fn interval_and_never_modes_acknowledge_after_the_os_write() {
    for durability in [
        Durability::Never,
        Durability::Interval(std::time::Duration::from_millis(5)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = Options {
            segment_size: 1 << 20,
            durability,
        };
        let (wal, _) = open(dir.path(), o.clone());
        write_n(&wal, 0..50);
        // Not closed: a process crash now keeps what the OS has.
        let (_, got) = open(dir.path(), o);
        assert_eq!(got, expected(0..50));
        drop(wal);
    }
}
