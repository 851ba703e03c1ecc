//! Every file operation of the paper engine goes through the small [`Fs`] trait, so the same
//! engine runs on real files ([`StdFs`]) and on a simulated disk ([`SimFs`]) that keeps written
//! and synced bytes apart and can produce the image a power cut would leave, or fail the k-th
//! operation with EIO, ENOSPC or a crash. The crash and fault tests are built on [`SimFs`].

use crate::sync::{Arc, Mutex, MutexGuard};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// An open file, positioned writes only (the engine keeps its own offsets).
pub trait FsFile: Send + fmt::Debug {
    /// Writes all of `buf` at byte `offset`, growing the file if needed.
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes the data (and the size, if it changed) durable: `fdatasync`.
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes data and all metadata durable: `fsync`.
    fn sync_all(&mut self) -> io::Result<()>;
    /// Truncates or extends (with zeros) the file to `len` bytes.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Reserves blocks so that the file is at least `len` bytes long; new bytes read as zeros.
    fn allocate(&mut self, len: u64) -> io::Result<()>;
}

/// An open file for positioned reads, shareable between threads (value segments: a read of
/// one value while another thread syncs or appends).
pub trait FsRead: Send + Sync + fmt::Debug {
    /// Fills `buf` from byte `offset`; `UnexpectedEof` if the file ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// The file's current length.
    fn size(&self) -> io::Result<u64>;
}

/// The file-system operations the paper engine uses. Paths are absolute or relative to the
/// process; directories are flat (the engine keeps all its files in one directory).
pub trait Fs: Send + Sync + fmt::Debug {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names (not paths) of the files in `dir`.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The bytes of a file up to its last non-zero one (the rest is its zero tail) into `buf`,
    /// replacing what it held and reusing its allocation; returns the file's length. Recovery
    /// reads every log segment through one buffer, so its pages are mapped once, and a
    /// segment's preallocated zeros are neither copied nor touched.
    fn read_into(&self, path: &Path, buf: &mut Vec<u8>) -> io::Result<u64> {
        *buf = self.read(path)?;
        let len = buf.len() as u64;
        buf.truncate(super::log::nonzero_end(buf));
        Ok(len)
    }
    /// The whole content of a file to read once from start to end (a checkpoint at
    /// recovery): a real file is mapped, so its bytes are neither copied nor, when the file is
    /// not in the page cache, waited for as a whole: the kernel reads ahead while the caller
    /// decodes.
    fn map(&self, path: &Path) -> io::Result<FileBytes> {
        self.read(path).map(FileBytes::Owned)
    }
    /// Creates `path` (truncating it if it exists) for writing.
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Creates `path` for writes around the page cache that return once durable (`O_DIRECT |
    /// O_DSYNC`); each write must be a whole number of `DIRECT_BLOCK`s from a buffer aligned
    /// to one, at an offset aligned to one (`checkpoint_file`). `None` where the file system
    /// takes no direct writes. A simulated disk takes any write, as `create` does.
    fn create_direct(&self, path: &Path) -> io::Result<Option<Box<dyn FsFile>>> {
        self.create(path).map(Some)
    }
    /// Opens an existing file for writing, keeping its content.
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FsFile>>;
    /// Opens an existing file for positioned reads.
    fn open_read(&self, path: &Path) -> io::Result<std::sync::Arc<dyn FsRead>>;
    /// Atomically replaces `to` with `from`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove(&self, path: &Path) -> io::Result<()>;
    /// Makes the directory entries of `dir` (creates, renames, removes) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// A file's bytes from [`Fs::map`]: mapped, or read into memory.
#[derive(Debug)]
pub enum FileBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(map) => map,
            FileBytes::Owned(bytes) => bytes,
        }
    }
}

/// `path` mapped read-only, with the kernel told it will be read in order once (readahead
/// ahead of the reader, pages dropped behind it). An empty file, which cannot be mapped, is
/// an empty buffer.
#[allow(unsafe_code)] // one read-only mapping; see the SAFETY note
fn map_file(path: &Path) -> io::Result<FileBytes> {
    let file = File::open(path)?;
    if file.metadata()?.len() == 0 {
        return Ok(FileBytes::Owned(Vec::new()));
    }
    // SAFETY: the mapping is read-only, and the files it maps (checkpoints) are never written
    // or cut after they are renamed into place: the server removes them only once a newer
    // one is durable, never while recovery reads them. Another process changing the data
    // directory under a running server is outside what MooDB supports (it would corrupt the
    // data whatever the read); cutting a mapped file would end this one with SIGBUS.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    // Advice only: a kernel that ignores it reads on demand.
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(FileBytes::Mapped(map))
}

/// The whole content of `path`, without copying its zero tail: the buffer comes zeroed from
/// the allocator (fresh pages the kernel maps only when touched), the tail is checked for zeros
/// through one reused piece ([`content_end`]), and only the bytes before it are read into the
/// buffer. A log segment is mostly its preallocated zero tail: reading an empty 64 MiB segment
/// whole cost more than the rest of its recovery.
fn read_skipping_zero_tail(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let Ok(size) = usize::try_from(len) else {
        return Err(too_large());
    };
    let mut bytes = vec![0u8; size];
    let end = content_end(&file, len)?;
    file.read_exact_at(&mut bytes[..end as usize], 0)?;
    Ok(bytes)
}

/// [`Fs::read_into`] for real files: only the bytes up to the last non-zero one are read.
fn read_content_into(path: &Path, buf: &mut Vec<u8>) -> io::Result<u64> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let end = content_end(&file, len)?;
    // Room for the whole file: recovery adds back up to a record's worth of the zero tail
    // (`read_segment`), and a buffer grown for it would be copied whole into a fresh
    // allocation (a fifth of a 1M-key replay went to that copy and its page faults). A buffer
    // too small is given back first, for the same reason: growing it copies what it held.
    let room = usize::try_from(len).map_err(|_| too_large())?;
    buf.clear();
    if buf.capacity() < room {
        *buf = Vec::new();
        buf.try_reserve_exact(room).map_err(|_| too_large())?;
    }
    let read = (&file).take(end).read_to_end(buf)?;
    if read as u64 != end {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{} shrank while it was read", path.display()),
        ));
    }
    Ok(len)
}

/// The offset after the last non-zero byte of `file` (`len` bytes long), found from the end
/// through one reused 1 MiB piece.
fn content_end(file: &File, len: u64) -> io::Result<u64> {
    const PIECE: u64 = 1 << 20;
    let mut piece = vec![0u8; PIECE.min(len) as usize];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(PIECE);
        let part = &mut piece[..(end - start) as usize];
        file.read_exact_at(part, start)?;
        let p = super::log::nonzero_end(part);
        if p > 0 {
            return Ok(start + p as u64);
        }
        end = start;
    }
    Ok(0)
}

fn too_large() -> io::Error {
    io::Error::new(io::ErrorKind::OutOfMemory, "file larger than memory")
}

/// Real files through `std::fs`, with `fdatasync` and `fallocate`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdFs;

#[derive(Debug)]
struct StdFile(File);

impl FsFile for StdFile {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn allocate(&mut self, len: u64) -> io::Result<()> {
        let current = self.0.metadata()?.len();
        if len <= current {
            return Ok(());
        }
        match rustix::fs::fallocate(
            &self.0,
            rustix::fs::FallocateFlags::empty(),
            current,
            len - current,
        ) {
            Ok(()) => Ok(()),
            // File systems without fallocate: extending the size still gives a zero tail.
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {
                self.0.set_len(len)
            }
            Err(e) => Err(io::Error::from(e)),
        }
    }
}

#[derive(Debug)]
struct StdReader(File);

impl FsRead for StdReader {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}

impl Fs for StdFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                if let Some(name) = entry.file_name().to_str() {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        read_skipping_zero_tail(path)
    }
    fn read_into(&self, path: &Path, buf: &mut Vec<u8>) -> io::Result<u64> {
        read_content_into(path, buf)
    }
    fn map(&self, path: &Path) -> io::Result<FileBytes> {
        map_file(path)
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(StdFile(file)))
    }
    fn create_direct(&self, path: &Path) -> io::Result<Option<Box<dyn FsFile>>> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = rustix::fs::OFlags::DIRECT | rustix::fs::OFlags::DSYNC;
        match OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(direct.bits() as i32)
            .open(path)
        {
            Ok(file) => Ok(Some(Box::new(StdFile(file)))),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        Ok(Box::new(StdFile(file)))
    }
    fn open_read(&self, path: &Path) -> io::Result<std::sync::Arc<dyn FsRead>> {
        Ok(std::sync::Arc::new(StdReader(File::open(path)?)))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// Which operations a [`Fault`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultOp {
    /// Every mutating operation: create, write, sync, set_len, allocate, rename, remove, sync_dir.
    Any,
    /// `write_all_at` and `allocate`.
    Write,
    /// `sync_data`, `sync_all` and `sync_dir`.
    Sync,
}

/// What happens at the faulting operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The operation fails with EIO and changes nothing; later operations work.
    Eio,
    /// The operation fails with ENOSPC and changes nothing; later operations work.
    Enospc,
    /// Power cut: this and every later operation fail and change nothing. Take the disk image
    /// with [`SimFs::crash_image`].
    Crash,
}

/// A failure injected into the `nth` (0-based, counted from injection) operation of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub op: FaultOp,
    pub nth: u64,
    pub kind: FaultKind,
}

#[derive(Debug, Clone, Default)]
struct Inode {
    current: Vec<u8>,
    synced: Vec<u8>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link(PathBuf, usize),
    Unlink(PathBuf),
    Rename(PathBuf, PathBuf),
}

fn apply_dir_op(names: &mut BTreeMap<PathBuf, usize>, op: &DirOp) {
    match op {
        DirOp::Link(path, inode) => {
            names.insert(path.clone(), *inode);
        }
        DirOp::Unlink(path) => {
            names.remove(path);
        }
        DirOp::Rename(from, to) => {
            if let Some(inode) = names.remove(from) {
                names.insert(to.clone(), inode);
            }
        }
    }
}

#[derive(Debug, Default)]
struct SimState {
    inodes: Vec<Inode>,
    names: BTreeMap<PathBuf, usize>,
    durable_names: BTreeMap<PathBuf, usize>,
    /// Directory operations not yet made durable by `sync_dir`, in order.
    pending: Vec<DirOp>,
    dirs: BTreeSet<PathBuf>,
    ops: u64,
    counted: u64,
    fault: Option<Fault>,
    crashed: bool,
}

impl SimState {
    /// Counts one mutating operation of `kind` and decides whether it fails.
    fn check(&mut self, kind: FaultOp) -> io::Result<()> {
        if self.crashed {
            return Err(io::Error::other("simulated power cut: the disk is gone"));
        }
        self.ops += 1;
        let Some(fault) = self.fault else {
            return Ok(());
        };
        if fault.op != FaultOp::Any && fault.op != kind {
            return Ok(());
        }
        let n = self.counted;
        self.counted += 1;
        if n != fault.nth {
            return Ok(());
        }
        match fault.kind {
            FaultKind::Eio => Err(io::Error::from_raw_os_error(5)),
            FaultKind::Enospc => Err(io::Error::from_raw_os_error(28)),
            FaultKind::Crash => {
                self.crashed = true;
                Err(io::Error::other("simulated power cut"))
            }
        }
    }

    fn inode(&self, path: &Path) -> io::Result<usize> {
        self.names
            .get(path)
            .copied()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{path:?}")))
    }
}

/// A simulated disk in memory. Clones share the same disk.
///
/// Each file keeps the bytes written and the bytes synced; each directory the entries as the
/// program sees them and as they are durable. [`SimFs::crash_image`] builds the disk a power cut
/// would leave: synced state kept, unsynced writes dropped, torn at a byte, or kept page by page
/// in any order, and a prefix (possibly empty) of the unsynced directory operations applied.
#[derive(Debug, Clone, Default)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
}

/// Page size used for the simulated reordering of unsynced writes.
pub const SIM_PAGE: usize = 4096;

/// A small deterministic generator (xorshift64*) so crash images depend only on the seed.
#[derive(Debug, Clone)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        SimRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

impl SimFs {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic while holding the lock only happens in a failing test; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes the `fault.nth` operation of kind `fault.op` (counted from now) fail.
    pub fn inject(&self, fault: Fault) {
        let mut s = self.lock();
        s.fault = Some(fault);
        s.counted = 0;
    }

    /// Removes any injected fault (a crash already happened stays).
    pub fn clear_fault(&self) {
        self.lock().fault = None;
    }

    /// Number of mutating operations done so far.
    pub fn op_count(&self) -> u64 {
        self.lock().ops
    }

    /// Whether an injected crash has happened.
    pub fn crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Puts a file on the disk, durable, as if written and synced long ago (for tests).
    pub fn put_file(&self, path: &Path, bytes: &[u8]) {
        let mut s = self.lock();
        let id = s.inodes.len();
        s.inodes.push(Inode {
            current: bytes.to_vec(),
            synced: bytes.to_vec(),
        });
        s.names.insert(path.to_path_buf(), id);
        s.durable_names.insert(path.to_path_buf(), id);
        if let Some(parent) = path.parent() {
            s.dirs.insert(parent.to_path_buf());
        }
    }

    /// The current (not necessarily durable) content of a file, if it exists.
    pub fn file(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        s.names.get(path).map(|id| s.inodes[*id].current.clone())
    }

    /// The disk a power cut at this moment would leave, chosen by `seed`, as a new `SimFs`
    /// where everything is durable. Seed 0 drops every unsynced change.
    pub fn crash_image(&self, seed: u64) -> SimFs {
        let s = self.lock();
        let mut rng = SimRng::new(seed);
        let mut names = s.durable_names.clone();
        if seed != 0 && !s.pending.is_empty() {
            let keep = rng.below(s.pending.len() as u64 + 1) as usize;
            for op in &s.pending[..keep] {
                apply_dir_op(&mut names, op);
            }
        }
        let mut out = SimState {
            dirs: s.dirs.clone(),
            ..SimState::default()
        };
        for (path, id) in names {
            let inode = &s.inodes[id];
            let data = if seed == 0 {
                inode.synced.clone()
            } else {
                crash_bytes(inode, &mut rng)
            };
            let new_id = out.inodes.len();
            out.inodes.push(Inode {
                current: data.clone(),
                synced: data,
            });
            out.names.insert(path.clone(), new_id);
            out.durable_names.insert(path, new_id);
        }
        SimFs {
            state: Arc::new(Mutex::new(out)),
        }
    }
}

/// What a power cut leaves of one file's unsynced changes.
fn crash_bytes(inode: &Inode, rng: &mut SimRng) -> Vec<u8> {
    let (old, new) = (&inode.synced, &inode.current);
    if old == new {
        return old.clone();
    }
    let len = if rng.below(2) == 0 {
        old.len()
    } else {
        new.len()
    };
    let byte = |src: &Vec<u8>, i: usize| src.get(i).copied().unwrap_or(0);
    let mut out = vec![0u8; len];
    match rng.below(4) {
        0 => (0..len).for_each(|i| out[i] = byte(old, i)),
        1 => (0..len).for_each(|i| out[i] = byte(new, i)),
        2 => {
            // Torn at a byte: new bytes before the cut, old ones after.
            let cut = rng.below(len as u64 + 1) as usize;
            (0..len).for_each(|i| out[i] = if i < cut { byte(new, i) } else { byte(old, i) });
        }
        _ => {
            // Page by page, in any order.
            for page in (0..len).step_by(SIM_PAGE) {
                let src = if rng.below(2) == 0 { old } else { new };
                for (i, b) in out.iter_mut().enumerate().skip(page).take(SIM_PAGE) {
                    *b = byte(src, i);
                }
            }
        }
    }
    out
}

#[derive(Debug)]
struct SimFile {
    fs: SimFs,
    inode: usize,
}

impl SimFile {
    fn with<T>(&self, kind: FaultOp, f: impl FnOnce(&mut Inode) -> T) -> io::Result<T> {
        let mut s = self.fs.lock();
        s.check(kind)?;
        Ok(f(&mut s.inodes[self.inode]))
    }
}

impl FsFile for SimFile {
    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.with(FaultOp::Write, |inode| {
            let start = offset as usize;
            let end = start + buf.len();
            if inode.current.len() < end {
                inode.current.resize(end, 0);
            }
            inode.current[start..end].copy_from_slice(buf);
        })
    }
    fn sync_data(&mut self) -> io::Result<()> {
        self.with(FaultOp::Sync, |inode| inode.synced = inode.current.clone())
    }
    fn sync_all(&mut self) -> io::Result<()> {
        self.sync_data()
    }
    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.with(FaultOp::Any, |inode| inode.current.resize(len as usize, 0))
    }
    fn allocate(&mut self, len: u64) -> io::Result<()> {
        self.with(FaultOp::Write, |inode| {
            if inode.current.len() < len as usize {
                inode.current.resize(len as usize, 0);
            }
        })
    }
}

/// A read handle on a simulated file: reads what has been written (synced or not), as a
/// real file's page cache gives it back.
#[derive(Debug)]
struct SimReader {
    fs: SimFs,
    inode: usize,
}

impl FsRead for SimReader {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let s = self.fs.lock();
        let data = &s.inodes[self.inode].current;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        match data.get(start..).and_then(|d| d.get(..buf.len())) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "simulated read past the end",
            )),
        }
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.fs.lock().inodes[self.inode].current.len() as u64)
    }
}

impl Fs for SimFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.lock().dirs.insert(dir.to_path_buf());
        Ok(())
    }
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let s = self.lock();
        if !s.dirs.contains(dir) {
            return Err(io::Error::new(io::ErrorKind::NotFound, format!("{dir:?}")));
        }
        Ok(s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
            .collect())
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let s = self.lock();
        let id = s.inode(path)?;
        Ok(s.inodes[id].current.clone())
    }
    fn create(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.lock();
        s.check(FaultOp::Any)?;
        let id = s.inodes.len();
        s.inodes.push(Inode::default());
        s.names.insert(path.to_path_buf(), id);
        s.pending.push(DirOp::Link(path.to_path_buf(), id));
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode: id,
        }))
    }
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn FsFile>> {
        let s = self.lock();
        let id = s.inode(path)?;
        Ok(Box::new(SimFile {
            fs: self.clone(),
            inode: id,
        }))
    }
    fn open_read(&self, path: &Path) -> io::Result<std::sync::Arc<dyn FsRead>> {
        let s = self.lock();
        if s.crashed {
            return Err(io::Error::other("simulated power cut: the disk is gone"));
        }
        let id = s.inode(path)?;
        Ok(std::sync::Arc::new(SimReader {
            fs: self.clone(),
            inode: id,
        }))
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.check(FaultOp::Any)?;
        let id = s.inode(from)?;
        s.names.remove(from);
        s.names.insert(to.to_path_buf(), id);
        s.pending
            .push(DirOp::Rename(from.to_path_buf(), to.to_path_buf()));
        Ok(())
    }
    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.check(FaultOp::Any)?;
        s.inode(path)?;
        s.names.remove(path);
        s.pending.push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }
    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        // The engine keeps all its files in one directory: syncing it makes every pending
        // directory operation durable.
        let mut s = self.lock();
        s.check(FaultOp::Sync)?;
        let pending = std::mem::take(&mut s.pending);
        for op in &pending {
            apply_dir_op(&mut s.durable_names, op);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapped_file_reads_as_its_bytes_an_empty_one_too() {
        let tmp = tempfile::tempdir().expect("temp dir");
        for len in [0usize, 1, 4096, 100_003] {
            let path = tmp.path().join(format!("f{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
            std::fs::write(&path, &bytes).expect("write");
            assert_eq!(&*StdFs.map(&path).expect("map"), &bytes[..], "{len} bytes");
        }
        assert!(StdFs.map(&tmp.path().join("missing")).is_err());
    }

    #[test]
    fn unsynced_data_and_entries_vanish_in_a_clean_crash() {
        let fs = SimFs::new();
        let dir = Path::new("/d");
        fs.create_dir_all(dir).unwrap();
        let a = dir.join("a");
        let mut f = fs.create(&a).unwrap();
        f.write_all_at(b"hello", 0).unwrap();
        f.sync_data().unwrap();
        let img = fs.crash_image(0);
        assert!(img.file(&a).is_none(), "create was not dir-synced");
        fs.sync_dir(dir).unwrap();
        f.write_all_at(b" world", 5).unwrap();
        let img = fs.crash_image(0);
        assert_eq!(img.file(&a).unwrap(), b"hello");
        fs.rename(&a, &dir.join("b")).unwrap();
        let img = fs.crash_image(0);
        assert!(img.file(&dir.join("b")).is_none());
        assert_eq!(fs.file(&dir.join("b")).unwrap(), b"hello world");
    }

    #[test]
    fn faults_fail_the_chosen_operation_and_crash_freezes_the_disk() {
        let fs = SimFs::new();
        let dir = Path::new("/d");
        fs.create_dir_all(dir).unwrap();
        let mut f = fs.create(&dir.join("a")).unwrap();
        fs.inject(Fault {
            op: FaultOp::Sync,
            nth: 1,
            kind: FaultKind::Eio,
        });
        f.sync_data().unwrap();
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(5));
        f.sync_data().unwrap();
        fs.inject(Fault {
            op: FaultOp::Any,
            nth: 0,
            kind: FaultKind::Crash,
        });
        assert!(f.write_all_at(b"x", 0).is_err());
        assert!(f.sync_data().is_err());
        assert!(fs.crashed());
        assert_eq!(fs.file(&dir.join("a")).unwrap(), b"");
    }
}
