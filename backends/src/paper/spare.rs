//! Spare segments: a log segment written full of zeros and synced ahead of need, so that the
//! fdatasync of an append into it changes no file metadata.
//!
//! An fdatasync after a write into fallocated (unwritten) extents must also commit the extents'
//! conversion to written ones through the file system's journal; after a write over blocks that
//! already hold zeros on disk, and within the file's size, it flushes the data alone. DESIGN.md's
//! figures for this machine kind: a 4 KiB write + fdatasync costs 147–185 µs appending or into
//! fallocated extents and 94–133 µs overwriting a pre-zeroed file.
//!
//! So the engine keeps at most one spare, `log-spare`: [`Spares::request`] has it written (by a
//! thread of its own in [`SpareMode::Background`], at once in [`SpareMode::Inline`], which the
//! simulated-disk tests use to stay deterministic), and [`Spares::take`] hands it over once it
//! is complete and synced. The backend makes it the next segment (header written and synced,
//! renamed to `log-<first_lsn>`, directory synced) at a checkpoint, when the active segment is
//! full, and as soon as it is ready while the active segment is not pre-zeroed (the segment
//! created or reopened at start). A spare holds no record: a crash at any point leaves either
//! the spare (recovery removes it) or a valid empty segment.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use moodb_core::error::IoContext;
use moodb_core::StorageError;

use super::files::SPARE_NAME;
use super::fs::{Fs, FsFile};

/// Zeros are written in pieces of this size, each synced, so that the disk's other writer (the
/// log's fdatasync) never waits behind one long flush.
const ZERO_PIECE: usize = 1 << 20;

/// How much nicer than the server the thread writing a spare is.
const SPARE_NICE: i32 = 10;

/// How spare segments are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpareMode {
    /// No spares: every segment is created and preallocated with fallocate.
    Off,
    /// The spare is written when requested, on the caller's thread (deterministic tests).
    Inline,
    /// The spare is written by a thread of its own.
    Background,
}

/// What there is of the spare.
enum State {
    None,
    /// Being written by a thread; its result arrives here.
    Making(Receiver<Result<Box<dyn FsFile>, StorageError>>),
    Ready(Box<dyn FsFile>),
}

/// The spare segment of one data directory.
pub(crate) struct Spares {
    mode: SpareMode,
    fs: Arc<dyn Fs>,
    path: PathBuf,
    len: u64,
    state: State,
}

impl fmt::Debug for Spares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::None => "none",
            State::Making(_) => "making",
            State::Ready(_) => "ready",
        };
        f.debug_struct("Spares")
            .field("mode", &self.mode)
            .field("path", &self.path)
            .field("len", &self.len)
            .field("state", &state)
            .finish()
    }
}

impl Spares {
    /// The log's spares of `len` bytes in `dir` (`log-spare`).
    pub fn new(mode: SpareMode, fs: Arc<dyn Fs>, dir: &Path, len: u64) -> Self {
        Self::named(mode, fs, &dir.join(SPARE_NAME), len)
    }

    /// Spares of `len` bytes at `path` (the raft log's are `raftlog-spare`).
    pub fn named(mode: SpareMode, fs: Arc<dyn Fs>, path: &Path, len: u64) -> Self {
        Spares {
            mode,
            fs,
            path: path.to_path_buf(),
            len,
            state: State::None,
        }
    }

    /// Has a spare made unless one is ready or being made. A spare that cannot be made (a full
    /// disk) is no error: the next segment is then created as without spares.
    pub fn request(&mut self) {
        if !matches!(self.state, State::None) {
            return;
        }
        match self.mode {
            SpareMode::Off => {}
            SpareMode::Inline => {
                if let Ok(file) = make(&*self.fs, &self.path, self.len) {
                    self.state = State::Ready(file);
                }
            }
            SpareMode::Background => {
                let (tx, rx) = mpsc::sync_channel(1);
                let (fs, path, len) = (self.fs.clone(), self.path.clone(), self.len);
                let spawned = std::thread::Builder::new()
                    .name("moodb-spare".into())
                    .spawn(move || {
                        moodb_core::cpus::enter_helper_thread();
                        // Zeros can wait for requests: this thread alone gets nicer (Linux
                        // nice values are per thread); a refusal changes nothing else.
                        let _ = rustix::process::nice(SPARE_NICE);
                        // The backend may be gone by now: then nobody wants the spare.
                        let _ = tx.send(make(&*fs, &path, len));
                    });
                if spawned.is_ok() {
                    self.state = State::Making(rx);
                }
            }
        }
    }

    /// Whether a spare is complete (and may be taken).
    pub fn ready(&mut self) -> bool {
        if let State::Making(rx) = &self.state {
            self.state = match rx.try_recv() {
                Ok(Ok(file)) => State::Ready(file),
                Ok(Err(_)) | Err(TryRecvError::Disconnected) => State::None,
                Err(TryRecvError::Empty) => return false,
            };
        }
        matches!(self.state, State::Ready(_))
    }

    /// The spare, if it is complete: zero-filled to its length and synced, size included.
    pub fn take(&mut self) -> Option<Box<dyn FsFile>> {
        if !self.ready() {
            return None;
        }
        match std::mem::replace(&mut self.state, State::None) {
            State::Ready(file) => Some(file),
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Makes `file`, a spare taken from here, the segment at `path`: `header` written over its
    /// zeros and synced, renamed, directory synced. `None` if it could not be prepared before
    /// the rename (the caller creates a segment instead); an error if the rename may not be
    /// durable.
    pub fn adopt(
        &self,
        mut file: Box<dyn FsFile>,
        header: &[u8],
        path: &Path,
    ) -> Result<Option<Box<dyn FsFile>>, StorageError> {
        let prepared = file
            .write_all_at(header, 0)
            .and_then(|()| file.sync_data())
            .and_then(|()| self.fs.rename(&self.path, path));
        if prepared.is_err() {
            return Ok(None);
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        self.fs
            .sync_dir(dir)
            .context(|| format!("fsync directory {}", dir.display()))?;
        Ok(Some(file))
    }

    /// The length of every spare.
    pub fn segment_len(&self) -> u64 {
        self.len
    }
}

/// Writes `path` full of zeros to `len` bytes and syncs it (data, then size and all).
fn make(fs: &dyn Fs, path: &Path, len: u64) -> Result<Box<dyn FsFile>, StorageError> {
    let what = |op: &str| format!("{op} spare segment {}", path.display());
    let mut file = fs.create(path).context(|| what("create"))?;
    let zeros = vec![0u8; ZERO_PIECE.min(len as usize)];
    let mut at = 0u64;
    while at < len {
        let n = zeros.len().min((len - at) as usize);
        file.write_all_at(&zeros[..n], at)
            .context(|| what("write zeros into"))?;
        at += n as u64;
        file.sync_data().context(|| what("fdatasync"))?;
    }
    file.sync_all().context(|| what("fsync"))?;
    Ok(file)
}
