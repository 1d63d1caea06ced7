//! The file-system seam: every byte the WAL and the block writer put on disk
//! passes through [`Vfs`], so a test can replace the disk with one that fails.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A file opened for appending. Dropping it does not sync.
pub trait FileWrite: Send {
    /// Appends all of `buf` at the end of the file.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes everything written so far durable (`fdatasync`).
    fn sync(&mut self) -> io::Result<()>;
}

/// Read-only bytes of a whole file: a memory map for real files, an owned
/// buffer for empty files (which cannot be mapped).
pub enum Mapped {
    /// A read-only memory map.
    Map(memmap2::Mmap),
    /// Bytes held in memory.
    Owned(Vec<u8>),
}

impl Deref for Mapped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Mapped::Map(m) => m,
            Mapped::Owned(v) => v,
        }
    }
}

impl Mapped {
    /// Drops the mapping's resident pages from the process: they stay in
    /// the page cache and fault back in when read. For a file whose
    /// metadata was just walked through the mapping (which maps the
    /// kernel's large folios around every byte touched) but whose bulk is
    /// read later, and only in parts.
    pub fn release_pages(&self) {
        if let Mapped::Map(m) = self {
            // SAFETY: the mapping is read-only and file-backed (an `Mmap`,
            // never `MmapMut`), so MADV_DONTNEED discards no data: the next
            // read refaults the same bytes from the file. No reference into
            // the mapping is invalidated; its contents do not change.
            #[allow(unsafe_code)]
            let _ = unsafe { m.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

impl fmt::Debug for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mapped({} bytes)", self.len())
    }
}

/// The operations the storage engine needs from a file system. Kept small on
/// purpose: everything durable is built from create/append/fsync/rename/
/// fsync-dir, and everything read from read/mmap.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates (or truncates) `path` for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>>;
    /// Opens an existing file for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>>;
    /// Atomically renames `from` to `to` (files or directories).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, deletions) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Reads a whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Maps a whole file read-only.
    fn map(&self, path: &Path) -> io::Result<Mapped>;
    /// Shortens a file to `len` bytes and syncs it.
    fn truncate(&self, path: &Path, len: u64) -> io::Result<()>;
    /// Creates a directory and its parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Lists the entries of a directory (full paths, unsorted).
    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

struct StdFile(File);

impl FileWrite for StdFile {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Vfs for StdFs {
    fn create(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(StdFile(f)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn FileWrite>> {
        let f = OpenOptions::new().append(true).open(path)?;
        Ok(Box::new(StdFile(f)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn map(&self, path: &Path) -> io::Result<Mapped> {
        let f = File::open(path)?;
        if f.metadata()?.len() == 0 {
            return Ok(Mapped::Owned(Vec::new()));
        }
        // Safety of the mapping rests on the engine's rule that finished
        // files are never modified in place: blocks are immutable and only
        // ever replaced by rename, so the mapped bytes cannot change.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::Mmap::map(&f)? };
        Ok(Mapped::Map(map))
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(len)?;
        f.sync_all()
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        fs::read_dir(dir)?.map(|e| e.map(|e| e.path())).collect()
    }
}

/// Creates `dir` and its missing parents so that they survive a power
/// cut: each new entry is made durable by an fsync of the directory that
/// holds it. (A directory created without that can vanish after a crash,
/// with every file written into it.)
pub fn create_dir_durable(vfs: &dyn Vfs, dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(p) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(p);
        at = p.parent();
    }
    vfs.create_dir_all(dir)?;
    for p in missing.iter().rev() {
        match p.parent().filter(|q| !q.as_os_str().is_empty()) {
            Some(parent) => vfs.sync_dir(parent)?,
            None => vfs.sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}

/// Replaces the file at `path` with `bytes` so that a crash leaves either
/// the old file or the new one, whole: write a temporary file beside it,
/// fsync it, rename it over `path`, fsync the directory.
pub fn replace_file_durable(vfs: &dyn Vfs, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = vfs.create(&tmp)?;
    f.write_all(bytes)?;
    f.sync()?;
    drop(f);
    vfs.rename(&tmp, path)?;
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => vfs.sync_dir(dir),
        None => vfs.sync_dir(Path::new(".")),
    }
}
