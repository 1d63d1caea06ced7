//! A [`Vfs`] that can cut the power, for deterministic crash simulation.
//!
//! It writes through to the real file system and remembers what the
//! engine made durable: a file's bytes as of its last `sync`, and per
//! directory the entries created, renamed and removed since its last
//! `sync_dir`. [`CrashFs::crash`] then puts the disk back to a state a
//! power cut could leave: each directory keeps a random prefix of its
//! unsynced entry changes (journaled metadata lands in order) and each
//! file its durable bytes plus a random prefix of what was written after
//! (some unsynced pages may have reached the disk). Removed entries are
//! parked in a trash folder until their directory is synced, so a crash
//! can bring them back.
//!
//! [`CrashFs::die_after`] makes the Nth mutating call from now fail, and
//! every call after it, as in a process killed at that step: the engine
//! sees errors, the test drops it and calls `crash`.
//!
//! Files written behind the seam (Tantivy's own) are left as they are.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::fs::{FileWrite, Mapped, StdFs, Vfs};

/// An entry change not yet made durable by a `sync_dir` of its directory.
#[derive(Debug)]
enum DirOp {
    Created(PathBuf),
    Renamed { from: PathBuf, to: PathBuf },
    Removed { path: PathBuf, parked: PathBuf },
}

#[derive(Debug)]
struct State {
    rng: u64,
    /// Durable bytes of every file created through the seam, by path.
    durable: HashMap<PathBuf, Vec<u8>>,
    /// Unsynced entry changes per directory, oldest first.
    pending: HashMap<PathBuf, Vec<DirOp>>,
    /// Mutating calls left before every call fails.
    left: Option<u64>,
    trash: PathBuf,
    parked: u64,
}

impl State {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic from the seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn step(&mut self) -> io::Result<()> {
        match &mut self.left {
            Some(0) => Err(io::Error::other("simulated crash: the process is gone")),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn note(&mut self, path: &Path, op: DirOp) {
        let dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
        self.pending.entry(dir).or_default().push(op);
    }

    /// Moves the durable records of everything under `from` to `to`.
    fn rekey(&mut self, from: &Path, to: &Path) {
        let moved: Vec<PathBuf> = self
            .durable
            .keys()
            .filter(|p| p.starts_with(from))
            .cloned()
            .collect();
        for p in moved {
            if let Some(bytes) = self.durable.remove(&p) {
                let rest = p.strip_prefix(from).unwrap_or(Path::new(""));
                self.durable.insert(to.join(rest), bytes);
            }
        }
    }
}

/// The crash-simulating file system (see the module documentation).
#[derive(Debug, Clone)]
pub struct CrashFs {
    st: Arc<Mutex<State>>,
}

impl CrashFs {
    /// A file system whose random choices follow `seed`; removed entries
    /// are parked under `trash` (a folder on the same file system as the
    /// data) until their directory is synced.
    pub fn new(seed: u64, trash: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(trash)?;
        Ok(CrashFs {
            st: Arc::new(Mutex::new(State {
                rng: seed | 1,
                durable: HashMap::new(),
                pending: HashMap::new(),
                left: None,
                trash: trash.to_path_buf(),
                parked: 0,
            })),
        })
    }

    /// The `n`th mutating call from now (1-based) and all later ones fail.
    pub fn die_after(&self, n: u64) {
        self.st.lock().left = Some(n.saturating_sub(1));
    }

    /// Whether the simulated process has died.
    pub fn dead(&self) -> bool {
        self.st.lock().left == Some(0)
    }

    /// Cuts the power: the disk becomes what it could be after a crash now
    /// (the engine using it must have been dropped). Calls work again.
    pub fn crash(&self) -> io::Result<()> {
        let mut st = self.st.lock();
        let mut dirs: Vec<PathBuf> = st.pending.keys().cloned().collect();
        // Deepest first: a directory's own changes are undone before the
        // change that created or moved it.
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            let ops = st.pending.remove(&dir).unwrap_or_default();
            let keep = st.below(ops.len() + 1);
            for op in ops.into_iter().skip(keep).rev() {
                match op {
                    DirOp::Created(p) => {
                        remove_any(&p)?;
                        st.durable.retain(|d, _| !d.starts_with(&p));
                    }
                    DirOp::Renamed { from, to } => {
                        if to.exists() {
                            remove_any(&from)?;
                            std::fs::rename(&to, &from)?;
                            st.rekey(&to, &from);
                        }
                    }
                    DirOp::Removed { path, parked } => {
                        remove_any(&path)?;
                        std::fs::rename(&parked, &path)?;
                        st.rekey(&parked, &path);
                    }
                }
            }
        }
        let files: Vec<PathBuf> = st.durable.keys().cloned().collect();
        for p in files {
            let Ok(now) = std::fs::read(&p) else { continue };
            let durable = st.durable[&p].clone();
            let kept = if now.starts_with(&durable) {
                let extra = st.below(now.len() - durable.len() + 1);
                now[..durable.len() + extra].to_vec()
            } else {
                durable
            };
            if kept != now {
                std::fs::write(&p, &kept)?;
            }
            // What survived the power cut is on the disk for good.
            st.durable.insert(p, kept);
        }
        st.left = None;
        Ok(())
    }

    fn mutate(&self) -> io::Result<parking_lot::MutexGuard<'_, State>> {
        let mut st = self.st.lock();
        st.step()?;
        Ok(st)
    }
}

fn remove_any(p: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
        Ok(_) => std::fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

struct CrashFile {
    inner: Box<dyn FileWrite>,
    path: PathBuf,
    fs: CrashFs,
}

impl FileWrite for CrashFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let mut st = self.fs.mutate()?;
        // A process killed mid-write leaves part of it.
        if st.left == Some(0) {
            let keep = st.below(buf.len() + 1);
            drop(st);
            self.inner.write_all(&buf[..keep])?;
            return Err(io::Error::other("simulated crash in a write"));
        }
        drop(st);
        self.inner.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        let mut st = self.fs.mutate()?;
        self.inner.sync()?;
        let bytes = std::fs::read(&self.path)?;
        st.durable.insert(self.path.clone(), bytes);
        Ok(())
    }
}

impl Vfs for CrashFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let mut st = self.mutate()?;
        let existed = path.exists();
        let f = StdFs.create(path)?;
        if !existed {
            st.note(path, DirOp::Created(path.to_path_buf()));
        }
        // Truncated: nothing of it is durable until its first sync.
        st.durable.insert(path.to_path_buf(), Vec::new());
        Ok(Box::new(CrashFile {
            inner: f,
            path: path.to_path_buf(),
            fs: self.clone(),
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let mut st = self.mutate()?;
        let f = StdFs.open_append(path)?;
        if !st.durable.contains_key(path) {
            // Opened from an earlier run: what is there now is durable.
            st.durable.insert(path.to_path_buf(), std::fs::read(path)?);
        }
        Ok(Box::new(CrashFile {
            inner: f,
            path: path.to_path_buf(),
            fs: self.clone(),
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.mutate()?;
        if to.exists() {
            // Replacing an entry: park the old one so a crash can restore it.
            let parked = park(&mut st, to)?;
            st.note(
                to,
                DirOp::Removed {
                    path: to.to_path_buf(),
                    parked,
                },
            );
        }
        StdFs.rename(from, to)?;
        st.rekey(from, to);
        st.note(
            to,
            DirOp::Renamed {
                from: from.to_path_buf(),
                to: to.to_path_buf(),
            },
        );
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.mutate()?;
        StdFs.sync_dir(dir)?;
        for op in st.pending.remove(dir).unwrap_or_default() {
            if let DirOp::Removed { parked, .. } = op {
                remove_any(&parked)?;
                st.durable.retain(|d, _| !d.starts_with(&parked));
            }
        }
        Ok(())
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        StdFs.read(path)
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        // Owned bytes: `crash` rewrites files in place, which must never
        // change what a mapping shows.
        Ok(Mapped::Owned(StdFs.read(path)?))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut st = self.mutate()?;
        StdFs.truncate(path, len)?;
        // StdFs::truncate syncs the file.
        st.durable.insert(path.to_path_buf(), std::fs::read(path)?);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut st = self.mutate()?;
        let mut missing = Vec::new();
        let mut at = Some(path);
        while let Some(p) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
            missing.push(p.to_path_buf());
            at = p.parent();
        }
        StdFs.create_dir_all(path)?;
        for p in missing.into_iter().rev() {
            st.note(&p, DirOp::Created(p.clone()));
        }
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.mutate()?;
        let parked = park(&mut st, path)?;
        st.note(
            path,
            DirOp::Removed {
                path: path.to_path_buf(),
                parked,
            },
        );
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.remove_file(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        StdFs.list(dir)
    }
}

/// Moves `path` into the trash, keeping its durable records with it.
fn park(st: &mut State, path: &Path) -> io::Result<PathBuf> {
    st.parked += 1;
    let parked = st.trash.join(st.parked.to_string());
    std::fs::rename(path, &parked)?;
    st.rekey(path, &parked);
    Ok(parked)
}
