//! `paper`: the log + checkpoint engine of Birrell, Jones and Wobber (SOSP '87).
//!
//! Files, all in one directory, named by [`files::FileKind`] (FORMAT.md has the bytes):
//! - `log-<first_lsn:020>`: a log segment holding records with LSN ≥ `first_lsn`, preallocated
//!   in big chunks so an fdatasync overwrites allocated blocks; its zero tail is a clean end.
//! - `checkpoint-<lsn:020>`: the whole state after record `lsn`.
//! - `checkpoint-<lsn:020>.tmp`: a checkpoint being written; recovery removes it.
//! - `log-<first_lsn:020>.damaged` and `.discarded`: what salvage keeps for inspection.
//! - `log-spare`: zeros, made ahead of need to become the next segment ([`spare`]).
//!
//! Protocol. `append` encodes all its entries into one buffer, writes it with one write and,
//! under `sync = always`, one fdatasync (group commit); first, if the active segment is full or
//! was not a spare and a spare is ready, it moves on to the spare. `begin_checkpoint(lsn)` syncs
//! the log, starts `log-<lsn+1>` (the spare if ready; header synced, directory synced) and
//! returns a job; the job writes
//! the temporary checkpoint, fsyncs it, renames it into place, fsyncs the directory, and only
//! then deletes the older checkpoints and the segments that start at or below `lsn`.
//! Recovery takes the newest checkpoint `C`, replays every segment that may hold records
//! above `C` in LSN order (skipping records ≤ `C`), so a crash at any step of the switch gives
//! the same state: before the rename the old checkpoint and both segments are there; after it
//! the new checkpoint and the new segment.
//!
//! Failures. A failed write or sync poisons the backend: every later append gets
//! [`StorageError::Poisoned`]; an fsync is never retried. A failed checkpoint job leaves the
//! previous checkpoint and the log untouched.
//!
//! Failpoints (`MOODB_FAILPOINTS`, see `moodb_core::failpoint`): `wal::write` fails the
//! log append's write, `wal::fsync` its fdatasync, `wal::skip_fsync` skips the fdatasync
//! (a broken build for the power-cut test), `checkpoint::write` every write of a checkpoint
//! file.

pub mod checkpoint;
mod checkpoint_file;
pub mod files;
pub mod fs;
pub mod log;
pub mod raft_log;
mod recovery;
mod segment_reader;
pub mod spare;
pub mod values;

#[cfg(all(test, feature = "loom"))]
mod loom_tests;

pub use files::FileKind;
pub use spare::SpareMode;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moodb_core::error::IoContext;
use moodb_core::failpoint;
use moodb_core::{
    AppendReport, Backend, BackendStatus, CheckpointJob, CheckpointReport, Databases, LogEntry,
    Lsn, Recovered, StorageError, SyncPolicy,
};

use crate::BackendOptions;
use fs::{Fs, FsFile, StdFs};
use log::LogHeader;
use spare::Spares;

/// Tuning of the paper engine that is not part of the common options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaperTuning {
    /// The log file is grown (fallocate) this many bytes at a time; a spare segment has this
    /// size.
    pub prealloc_bytes: u64,
    /// Whether and how pre-zeroed spare segments are made (see [`spare`]).
    pub spare: SpareMode,
}

impl Default for PaperTuning {
    fn default() -> Self {
        PaperTuning {
            prealloc_bytes: 64 << 20,
            spare: SpareMode::Background,
        }
    }
}

/// The segment being appended to.
#[derive(Debug)]
struct ActiveLog {
    file: Box<dyn FsFile>,
    path: PathBuf,
    first_lsn: Lsn,
    /// Offset where the next record goes (the end of the valid records).
    len: u64,
    /// Bytes the file is allocated to.
    allocated: u64,
    /// Offset up to which the data is synced.
    synced_len: u64,
    /// Whether the file was a spare: zeros written and synced up to `allocated`, so a sync of
    /// an append below it changes no metadata.
    zeroed: bool,
}

/// Capacity of the group buffer kept after an append: a group of up to 1 MiB of records
/// reuses it; a larger one allocates and gives the excess back at the next append.
const KEEP_BUF_BYTES: usize = 1 << 20;

/// The paper backend. Open with [`PaperBackend::open`], then call [`Backend::recover`].
#[derive(Debug)]
pub struct PaperBackend {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    options: BackendOptions,
    tuning: PaperTuning,
    log: Option<ActiveLog>,
    spares: Spares,
    /// Log bytes in the segments before the active one, since the last checkpoint began.
    earlier_log_bytes: u64,
    /// The first failed write or sync; every later write is refused with it.
    poisoned: Option<StorageError>,
    last_lsn: Lsn,
    durable_lsn: Lsn,
    last_sync: Instant,
    /// The group being encoded; kept between appends up to [`KEEP_BUF_BYTES`] of capacity.
    buf: Vec<u8>,
    fsyncs: u64,
    fsync_total: Duration,
    fsync_max: Duration,
    last_checkpoint: Option<(Lsn, u64)>,
    /// The value segments spilled values go to (issue 15).
    values: Option<Arc<values::PaperValues>>,
}

pub(crate) fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl PaperBackend {
    /// Opens the engine on real files in `dir` (created if missing).
    pub fn open(dir: &Path, options: &BackendOptions) -> Result<Self, StorageError> {
        Self::open_with(Arc::new(StdFs), dir, options, PaperTuning::default())
    }

    /// Opens the engine on any file system (tests use [`fs::SimFs`]).
    pub fn open_with_fs(
        fs: Arc<dyn Fs>,
        dir: &Path,
        options: &BackendOptions,
    ) -> Result<Self, StorageError> {
        Self::open_with(fs, dir, options, PaperTuning::default())
    }

    /// Opens the engine with explicit tuning.
    pub fn open_with(
        fs: Arc<dyn Fs>,
        dir: &Path,
        options: &BackendOptions,
        tuning: PaperTuning,
    ) -> Result<Self, StorageError> {
        fs.create_dir_all(dir)
            .context(|| format!("create data directory {}", dir.display()))?;
        let spares = Spares::new(tuning.spare, fs.clone(), dir, tuning.prealloc_bytes);
        let values = values::PaperValues::open_with_fs(fs.clone(), dir)
            .map_err(|e| StorageError::io("open value segments", std::io::Error::other(e)))?;
        Ok(PaperBackend {
            fs,
            dir: dir.to_path_buf(),
            options: options.clone(),
            tuning,
            log: None,
            spares,
            earlier_log_bytes: 0,
            poisoned: None,
            last_lsn: 0,
            durable_lsn: 0,
            last_sync: Instant::now(),
            buf: Vec::new(),
            fsyncs: 0,
            fsync_total: Duration::ZERO,
            fsync_max: Duration::ZERO,
            last_checkpoint: None,
            values: Some(Arc::new(values)),
        })
    }

    fn check_writable(&self) -> Result<(), StorageError> {
        if let Some(first) = &self.poisoned {
            return Err(StorageError::poisoned(first));
        }
        if self.log.is_none() {
            return Err(StorageError::InvalidInput(
                "the paper backend must recover before it appends".into(),
            ));
        }
        Ok(())
    }

    /// Records the failure and returns the error: no further writes are accepted.
    fn poison(&mut self, err: StorageError) -> StorageError {
        if self.poisoned.is_none() {
            self.poisoned = Some(err.clone());
        }
        err
    }

    /// fdatasync of the active log, timed and counted.
    fn sync_log(&mut self) -> Result<(), StorageError> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        if log.synced_len == log.len && self.durable_lsn == self.last_lsn {
            return Ok(());
        }
        let start = Instant::now();
        if failpoint::enabled(failpoint::WAL_FSYNC_SLOW) {
            std::thread::sleep(failpoint::FSYNC_SLOW_DELAY);
        }
        let result = if failpoint::enabled(failpoint::WAL_SKIP_FSYNC) {
            // A deliberately broken build: claims durability it does not have.
            Ok(())
        } else {
            failpoint::io(failpoint::WAL_FSYNC)
                .and_then(|()| log.file.sync_data())
                .context(|| format!("fdatasync {}", log.path.display()))
        };
        let took = start.elapsed();
        self.fsyncs += 1;
        self.fsync_total += took;
        self.fsync_max = self.fsync_max.max(took);
        self.last_sync = Instant::now();
        match result {
            Ok(()) => {
                log.synced_len = log.len;
                self.durable_lsn = self.last_lsn;
                Ok(())
            }
            Err(e) => Err(self.poison(e)),
        }
    }

    /// Starts the new, empty, durable log segment `log-<first_lsn>`: the spare if one is ready,
    /// else a file created and preallocated now.
    fn start_segment(&mut self, first_lsn: Lsn) -> Result<ActiveLog, StorageError> {
        if let Some(spare) = self.spares.take() {
            if let Some(log) = self.adopt_spare(spare, first_lsn)? {
                return Ok(log);
            }
        }
        create_log_file(&*self.fs, &self.dir, first_lsn, self.tuning.prealloc_bytes)
    }

    /// Makes the spare `log-<first_lsn>` ([`Spares::adopt`]). `None` if the spare could not be
    /// used before the rename (the caller creates a segment instead).
    fn adopt_spare(
        &mut self,
        file: Box<dyn FsFile>,
        first_lsn: Lsn,
    ) -> Result<Option<ActiveLog>, StorageError> {
        let path = self.dir.join(FileKind::Log(first_lsn).name());
        let header = LogHeader {
            version: log::LOG_VERSION,
            first_lsn,
        };
        let Some(file) = self.spares.adopt(file, &header.encode(), &path)? else {
            return Ok(None);
        };
        Ok(Some(ActiveLog {
            file,
            path,
            first_lsn,
            len: log::LOG_HEADER_LEN as u64,
            allocated: self.spares.segment_len().max(log::LOG_HEADER_LEN as u64),
            synced_len: log::LOG_HEADER_LEN as u64,
            zeroed: true,
        }))
    }

    /// The log bytes after which a segment wants a spare to follow it.
    fn spare_after(&self) -> u64 {
        (self.tuning.prealloc_bytes / 8).min(1 << 20)
    }

    /// Before appending `n` bytes: moves on to a ready spare, as segment `log-<first_lsn>`, if
    /// the active segment is full or was not pre-zeroed, syncing what the old segment still
    /// holds unsynced (its records stay where they are: recovery replays every segment in
    /// order).
    fn roll_to_spare(&mut self, first_lsn: Lsn, n: u64) -> Result<(), StorageError> {
        let after = self.spare_after();
        let Some(log) = self.log.as_ref() else {
            return Ok(());
        };
        let full = log.len + n > log.allocated;
        if !(full || (!log.zeroed && log.len >= after)) {
            return Ok(());
        }
        let Some(spare) = self.spares.take() else {
            return Ok(());
        };
        self.sync_log()?;
        let next = match self.adopt_spare(spare, first_lsn) {
            Ok(Some(next)) => next,
            Ok(None) => return Ok(()),
            Err(e) => return Err(self.poison(e)),
        };
        if let Some(old) = self.log.replace(next) {
            self.earlier_log_bytes += old.len;
        }
        Ok(())
    }
}

/// Creates `log-<first_lsn>` with its header and first preallocated chunk, syncs the file and
/// the directory so records written to it are durable once the file is synced.
fn create_log_file(
    fs: &dyn Fs,
    dir: &Path,
    first_lsn: Lsn,
    prealloc: u64,
) -> Result<ActiveLog, StorageError> {
    let path = dir.join(FileKind::Log(first_lsn).name());
    let what = |op: &str| format!("{op} new log {}", path.display());
    let mut file = fs.create(&path).context(|| what("create"))?;
    let header = LogHeader {
        version: log::LOG_VERSION,
        first_lsn,
    };
    file.write_all_at(&header.encode(), 0)
        .context(|| what("write header of"))?;
    let allocated = prealloc.max(log::LOG_HEADER_LEN as u64);
    file.allocate(allocated).context(|| what("preallocate"))?;
    file.sync_all().context(|| what("fsync"))?;
    fs.sync_dir(dir)
        .context(|| format!("fsync directory {}", dir.display()))?;
    Ok(ActiveLog {
        file,
        path,
        first_lsn,
        len: log::LOG_HEADER_LEN as u64,
        allocated,
        synced_len: log::LOG_HEADER_LEN as u64,
        zeroed: false,
    })
}

impl Backend for PaperBackend {
    fn name(&self) -> &'static str {
        "paper"
    }

    fn recover(&mut self) -> Result<Recovered, StorageError> {
        if self.log.is_some() {
            return Err(StorageError::InvalidInput(
                "recover may be called only once".into(),
            ));
        }
        let outcome = recovery::recover(&*self.fs, &self.dir, &self.options, self.tuning)?;
        self.last_lsn = outcome.recovered.last_lsn;
        self.durable_lsn = outcome.recovered.last_lsn;
        self.last_checkpoint = outcome
            .recovered
            .report
            .checkpoint
            .as_ref()
            .map(|(_, lsn)| (*lsn, outcome.checkpoint_created_ms));
        self.log = Some(outcome.log);
        Ok(outcome.recovered)
    }

    fn append(&mut self, entries: &[LogEntry]) -> Result<AppendReport, StorageError> {
        self.check_writable()?;
        if entries.is_empty() {
            return Ok(AppendReport::default());
        }
        let mut prev = self.last_lsn;
        self.buf.clear();
        if self.buf.capacity() > KEEP_BUF_BYTES {
            // A burst's large group does not pin its buffer for the life of the process.
            self.buf.shrink_to(KEEP_BUF_BYTES);
        }
        for (i, entry) in entries.iter().enumerate() {
            if entry.lsn <= prev {
                return Err(StorageError::InvalidInput(format!(
                    "append of lsn {} after lsn {prev}: LSNs must increase",
                    entry.lsn
                )));
            }
            if entry.lsn == Lsn::MAX {
                // Recovery refuses it: no record could follow it.
                return Err(StorageError::InvalidInput(
                    "append of lsn 2^64-1: the last lsn is reserved".into(),
                ));
            }
            let index = u32::try_from(i).map_err(|_| {
                StorageError::InvalidInput("more than 2^32 records in one append".into())
            })?;
            let before = self.buf.len();
            log::encode_record(&mut self.buf, entry.lsn, index, &entry.record);
            if self.buf.len() - before - log::RECORD_HEADER_LEN > log::MAX_PAYLOAD {
                return Err(StorageError::InvalidInput(format!(
                    "record lsn {} is larger than the {} byte limit",
                    entry.lsn,
                    log::MAX_PAYLOAD
                )));
            }
            prev = entry.lsn;
        }
        let n = self.buf.len() as u64;
        // The next segment starts right after the last record (recovery takes a higher first
        // LSN for a gap), even if this group's first LSN skips some.
        self.roll_to_spare(self.last_lsn.saturating_add(1), n)?;
        let chunk = self.tuning.prealloc_bytes.max(1);
        let spare_after = self.spare_after();
        let Some(log) = self.log.as_mut() else {
            return Err(StorageError::InvalidInput("no active log".into()));
        };
        let mut result = Ok(());
        if log.len + n > log.allocated {
            let want = (log.len + n).div_ceil(chunk) * chunk;
            result = log
                .file
                .allocate(want)
                .context(|| format!("preallocate {} to {want} bytes", log.path.display()));
            if result.is_ok() {
                log.allocated = want;
                // The new extents are unwritten: a spare is worth moving to.
                log.zeroed = false;
            }
        }
        if result.is_ok() {
            result = failpoint::io(failpoint::WAL_WRITE)
                .and_then(|()| log.file.write_all_at(&self.buf, log.len))
                .context(|| format!("write {n} bytes to {}", log.path.display()));
        }
        if let Err(e) = result {
            return Err(self.poison(e));
        }
        log.len += n;
        if log.len >= spare_after {
            self.spares.request();
        }
        self.last_lsn = prev;
        let synced = match self.options.sync {
            SyncPolicy::Always => true,
            SyncPolicy::Every(period) => self.last_sync.elapsed() >= period,
            SyncPolicy::Never => false,
        };
        if synced {
            self.sync_log()?;
        }
        Ok(AppendReport { bytes: n, synced })
    }

    fn sync(&mut self) -> Result<(), StorageError> {
        self.check_writable()?;
        self.sync_log()
    }

    fn begin_checkpoint(
        &mut self,
        lsn: Lsn,
    ) -> Result<Option<Box<dyn CheckpointJob>>, StorageError> {
        self.check_writable()?;
        if lsn != self.last_lsn {
            return Err(StorageError::InvalidInput(format!(
                "checkpoint as of lsn {lsn}, but the last appended lsn is {}",
                self.last_lsn
            )));
        }
        self.sync_log()?;
        let needs_new_log = self.log.as_ref().is_some_and(|l| l.first_lsn != lsn + 1);
        if needs_new_log {
            match self.start_segment(lsn + 1) {
                Ok(log) => {
                    self.log = Some(log);
                    self.earlier_log_bytes = 0;
                }
                Err(e) => return Err(self.poison(e)),
            }
        }
        Ok(Some(Box::new(PaperCheckpointJob {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
            lsn,
            values: self.values.clone(),
            write_rate: self.options.checkpoint_write_rate,
        })))
    }

    fn checkpoint_finished(&mut self, report: &CheckpointReport) {
        let newer = self
            .last_checkpoint
            .is_none_or(|(lsn, _)| report.lsn >= lsn);
        if newer {
            self.last_checkpoint = Some((report.lsn, now_unix_ms()));
        }
    }

    fn set_sync_policy(&mut self, policy: SyncPolicy) {
        self.options.sync = policy;
    }

    fn value_store(&self) -> Option<moodb_core::value_store::SharedValueStore> {
        self.values
            .clone()
            .map(|v| v as moodb_core::value_store::SharedValueStore)
    }

    fn status(&self) -> BackendStatus {
        BackendStatus {
            name: "paper",
            log_bytes: self.earlier_log_bytes + self.log.as_ref().map_or(0, |l| l.len),
            last_checkpoint_lsn: self.last_checkpoint.map(|(lsn, _)| lsn),
            last_checkpoint_unix_ms: self.last_checkpoint.map(|(_, ms)| ms),
            fsyncs: self.fsyncs,
            fsync_total: self.fsync_total,
            fsync_max: self.fsync_max,
            durable_lsn: self.durable_lsn,
        }
    }
}

/// Sleeps until `written` bytes are due at `rate` bytes per second since `start` (0: no
/// pace): `BackendOptions::checkpoint_write_rate`, 64 MiB/s in the server by default, as
/// PostgreSQL spreads a checkpoint's writes over time. With 1M keys (a 130 MB checkpoint, 2 s
/// at that pace) under redis-benchmark SET -c 50 and a BGSAVE every 0.5 s, against
/// checkpoints at full speed (about 0.5 s each) in the same runs: p99 5.8 and 6.2 ms against
/// 7.7 and 13.1 ms, 40k and 36k SETs/s against 29k and 21k (128 MiB/s: 6.8 and 10.0 ms, 31k
/// and 24k). The price: the log grows for longer before the checkpoint lets it go.
fn pace(written: u64, start: Instant, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = std::time::Duration::from_secs_f64(written as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(start.elapsed()) {
        std::thread::sleep(wait);
    }
}

/// How much of a superseded file one truncation frees ([`remove_in_steps`]).
const REMOVE_STEP: u64 = 4 << 20;

/// Removes a superseded file (an older checkpoint, a log segment the new checkpoint covers) by
/// cutting it `REMOVE_STEP` bytes at a time from its end, then unlinking what is left. Freeing
/// a 130 MB checkpoint's extents with one unlink took 19–46 ms and held a concurrent log
/// fdatasync for 23 ms (`perf trace` of the server under SET -c 50 with a BGSAVE every
/// 0.5 s); RocksDB's `DeleteScheduler` truncates in chunks for the same reason. Only files no
/// recovery reads are removed this way: a crash part-way leaves a shorter superseded file,
/// which recovery removes as it would the whole one.
fn remove_in_steps(fs: &dyn Fs, path: &Path) -> std::io::Result<()> {
    let mut len = fs.open_read(path)?.size()?;
    if len > REMOVE_STEP {
        let mut file = fs.open_write(path)?;
        while len > REMOVE_STEP {
            len -= REMOVE_STEP;
            file.set_len(len)?;
        }
    }
    fs.remove(path)
}

/// Writes one checkpoint and makes it current; see the module doc for the steps.
#[derive(Debug)]
pub struct PaperCheckpointJob {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    lsn: Lsn,
    values: Option<Arc<values::PaperValues>>,
    /// Bytes per second at most (0: unpaced).
    write_rate: u64,
}

impl PaperCheckpointJob {
    fn run(&self, state: Databases, start: Instant) -> Result<CheckpointReport, StorageError> {
        let fs = &*self.fs;
        let keys = state.len() as u64;
        // The value segments the checkpoint points into, gathered before the walk releases
        // the state: the ones retired and not among them are removed at the end.
        let referenced: Option<std::collections::BTreeSet<u32>> = self.values.as_ref().map(|_| {
            state
                .iter()
                .flat_map(|(_, ks)| ks.segment_figures().keys().copied())
                .collect()
        });
        // Pointers may be written only to values on stable storage.
        if state.iter().any(|(_, ks)| ks.memory().spilled_keys > 0) {
            use moodb_core::value_store::ValueStore;
            let values = self.values.as_ref().ok_or_else(|| {
                StorageError::InvalidInput("spilled values but no value segments".into())
            })?;
            values
                .sync()
                .map_err(|e| StorageError::io("fsync value segments", std::io::Error::other(e)))?;
        }
        let tmp = self.dir.join(FileKind::CheckpointTmp(self.lsn).name());
        let path = self.dir.join(FileKind::Checkpoint(self.lsn).name());
        let what = |op: &str| format!("{op} checkpoint {}", tmp.display());
        let mut file =
            checkpoint_file::CheckpointFile::create(fs, &tmp).context(|| what("create"))?;
        let sink = |buf: &[u8]| {
            failpoint::io(failpoint::CHECKPOINT_WRITE)?;
            file.write(buf)?;
            pace(file.written(), start, self.write_rate);
            Ok(())
        };
        let mut writer = checkpoint::CheckpointWriter::new(sink, self.lsn, now_unix_ms(), keys)
            .context(|| what("write"))?;
        // Part by part, each released once written (see `Databases::into_parts`).
        for (db, part) in state.into_parts() {
            for (key, value) in part.iter() {
                writer.add(db, key, value).context(|| what("write"))?;
            }
        }
        let bytes = writer.finish().context(|| what("write"))?;
        file.finish().context(|| what("fsync"))?;
        fs.rename(&tmp, &path)
            .context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        fs.sync_dir(&self.dir)
            .context(|| format!("fsync directory {}", self.dir.display()))?;
        // The switch is durable: everything it supersedes may go.
        let names = fs
            .list_dir(&self.dir)
            .context(|| format!("list {}", self.dir.display()))?;
        for old in names {
            let superseded = match FileKind::parse(&old) {
                Some(FileKind::Checkpoint(l)) => l < self.lsn,
                Some(FileKind::Log(first)) => first <= self.lsn,
                _ => false,
            };
            if superseded {
                let p = self.dir.join(&old);
                match remove_in_steps(fs, &p) {
                    // Another checkpoint removed it first: it is gone either way.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    other => other.context(|| format!("remove superseded {}", p.display()))?,
                }
            }
        }
        fs.sync_dir(&self.dir)
            .context(|| format!("fsync directory {}", self.dir.display()))?;
        // Value segments last, once the older checkpoints' removal is durable: a retired
        // segment this checkpoint does not point into is referenced by no durable state.
        if let (Some(values), Some(referenced)) = (&self.values, &referenced) {
            let removed = values
                .remove_retired(referenced)
                .map_err(|e| StorageError::io("remove value segments", std::io::Error::other(e)))?;
            if removed > 0 {
                fs.sync_dir(&self.dir)
                    .context(|| format!("fsync directory {}", self.dir.display()))?;
            }
        }
        Ok(CheckpointReport {
            lsn: self.lsn,
            keys,
            bytes,
            path: Some(path),
            elapsed: start.elapsed(),
        })
    }
}

impl CheckpointJob for PaperCheckpointJob {
    fn write(self: Box<Self>, state: Databases) -> Result<CheckpointReport, StorageError> {
        let start = Instant::now();
        let result = self.run(state, start);
        if result.is_err() {
            // Best effort: a leftover temporary file is also removed by recovery.
            let tmp = self.dir.join(FileKind::CheckpointTmp(self.lsn).name());
            let _ = self.fs.remove(&tmp);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::fs::{Fs, StdFs};
    use super::*;

    #[test]
    fn a_paced_checkpoint_waits_for_its_bytes_to_be_due() {
        let start = Instant::now();
        // 2 MiB at 20 MiB/s are due 100 ms after the start.
        pace(2 << 20, start, 20 << 20);
        assert!(start.elapsed() >= std::time::Duration::from_millis(100));
    }

    #[test]
    fn a_superseded_file_is_removed_in_steps_whatever_its_size() {
        let tmp = tempfile::tempdir().expect("temp dir");
        for len in [0, 1, REMOVE_STEP, REMOVE_STEP + 1, 3 * REMOVE_STEP + 5] {
            let path = tmp.path().join(format!("checkpoint-{len}"));
            let mut file = StdFs.create(&path).expect("create");
            file.write_all_at(&[7], len.saturating_sub(1))
                .expect("write");
            file.set_len(len).expect("size");
            drop(file);
            remove_in_steps(&StdFs, &path).expect("removed");
            assert!(!path.exists(), "{len}-byte file left behind");
        }
        let missing = remove_in_steps(&StdFs, &tmp.path().join("missing"));
        assert_eq!(
            missing.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::NotFound)
        );
    }
}
