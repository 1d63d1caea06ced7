//! A fault-injecting [`Vfs`] for tests: fails or tears the Nth write, or
//! fails the Nth fsync, counted across all files it opened.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::fs::{FileWrite, Mapped, StdFs, Vfs};

/// Which operation fails. Counts are 1-based and cover every file the
/// [`FaultFs`] opened; `None` never fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    /// The Nth `write_all` fails without writing anything.
    pub fail_write: Option<u64>,
    /// The Nth `write_all` writes only its first `keep` bytes, then fails:
    /// a torn write, as a power cut in the middle of a write leaves it.
    pub tear_write: Option<(u64, usize)>,
    /// The Nth `sync` (files) or `sync_dir` fails.
    pub fail_sync: Option<u64>,
}

#[derive(Debug, Default)]
struct Counters {
    writes: AtomicU64,
    syncs: AtomicU64,
    fired: AtomicU64,
}

/// Wraps the real file system and injects the faults of a [`FaultPlan`].
/// Reads are never faulted, so tests can check that reads keep working after
/// a failed write.
#[derive(Debug, Clone, Default)]
pub struct FaultFs {
    plan: Arc<Mutex<FaultPlan>>,
    counters: Arc<Counters>,
}

impl FaultFs {
    /// A file system that fails as `plan` says.
    pub fn new(plan: FaultPlan) -> Self {
        FaultFs {
            plan: Arc::new(Mutex::new(plan)),
            counters: Arc::default(),
        }
    }

    /// Replaces the plan and restarts the counts.
    pub fn set_plan(&self, plan: FaultPlan) {
        *self.plan.lock() = plan;
        self.counters.writes.store(0, Ordering::SeqCst);
        self.counters.syncs.store(0, Ordering::SeqCst);
    }

    /// How many faults fired so far.
    pub fn faults_fired(&self) -> u64 {
        self.counters.fired.load(Ordering::SeqCst)
    }

    /// Write calls seen since the plan was set.
    pub fn writes_seen(&self) -> u64 {
        self.counters.writes.load(Ordering::SeqCst)
    }

    /// Sync calls seen since the plan was set.
    pub fn syncs_seen(&self) -> u64 {
        self.counters.syncs.load(Ordering::SeqCst)
    }

    fn check_sync(&self) -> io::Result<()> {
        let n = self.counters.syncs.fetch_add(1, Ordering::SeqCst) + 1;
        if self.plan.lock().fail_sync == Some(n) {
            self.counters.fired.fetch_add(1, Ordering::SeqCst);
            return Err(injected("fsync"));
        }
        Ok(())
    }

    fn wrap(&self, inner: Box<dyn FileWrite>) -> Box<dyn FileWrite> {
        Box::new(FaultFile {
            inner,
            fs: self.clone(),
        })
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

struct FaultFile {
    inner: Box<dyn FileWrite>,
    fs: FaultFs,
}

impl FileWrite for FaultFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        let n = self.fs.counters.writes.fetch_add(1, Ordering::SeqCst) + 1;
        let plan = *self.fs.plan.lock();
        if plan.fail_write == Some(n) {
            self.fs.counters.fired.fetch_add(1, Ordering::SeqCst);
            return Err(injected("write"));
        }
        if let Some((at, keep)) = plan.tear_write
            && at == n
        {
            self.fs.counters.fired.fetch_add(1, Ordering::SeqCst);
            self.inner.write_all(&buf[..keep.min(buf.len())])?;
            return Err(injected("torn write"));
        }
        self.inner.write_all(buf)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.fs.check_sync()?;
        self.inner.sync()
    }
}

impl Vfs for FaultFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(self.wrap(StdFs.create(path)?))
    }
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        Ok(self.wrap(StdFs.open_append(path)?))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check_sync()?;
        StdFs.sync_dir(dir)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        StdFs.read(path)
    }
    fn map(&self, path: &Path) -> io::Result<Mapped> {
        StdFs.map(path)
    }
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        StdFs.truncate(path, len)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        StdFs.list(dir)
    }
}
