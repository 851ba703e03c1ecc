//! Recovery of the paper engine: find the newest checkpoint, load it, replay the log segments
//! that follow it, cut a torn tail, refuse (or, with salvage, cut) mid-log damage, remove
//! leftovers of interrupted checkpoints, and open the last segment for appending.
//!
//! [`recover`] runs the phases in order, each a function below:
//! 1. [`list_data_dir`]: which logs and checkpoints there are, and the leftovers to remove;
//! 2. [`load_checkpoint`]: the newest checkpoint's key space;
//! 3. [`plan_segments`]: the segments that may hold records after it;
//! 4. [`Replay::segments`], per segment: read (one ahead, on the reader thread of
//!    [`segment_reader`], which also checks the checksums), [`check_segment_header`],
//!    [`Replay::apply_segment`] to its end, and [`end_of_segment`] to decide what that end
//!    means;
//! 5. salvage, when enabled and needed: [`Replay::salvage_gap`], [`keep_damaged_copy`],
//!    [`set_aside`];
//! 6. [`open_segment`] (the last replayed segment, cut if need be), then [`open_active_log`]
//!    removes the leftovers and syncs the directory, or creates a new segment.
//!
//! The directory changes only once the checkpoint and every segment before the one changed
//! have been read and checked; superseded files are removed last.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

use moodb_core::error::IoContext;
use moodb_core::{Databases, Lsn, Recovered, RecoveryReport, StorageError};

use super::checkpoint::CheckpointReader;
use super::files::{FileKind, DAMAGED_SUFFIX, DISCARDED_SUFFIX, SPARE_NAME};
use super::fs::Fs;
use super::log::{self, LogEnd, LogHeader, LogScanner, LOG_HEADER_LEN, LOG_VERSION};
use super::segment_reader::{self, Segments};
use super::{create_log_file, ActiveLog, PaperTuning};
use crate::BackendOptions;

pub(crate) struct Outcome {
    pub recovered: Recovered,
    pub log: ActiveLog,
    pub checkpoint_created_ms: u64,
}

fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

/// Recovers the data directory `dir`: the state it holds and the segment to append to.
pub(crate) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    options: &BackendOptions,
    tuning: PaperTuning,
) -> Result<Outcome, StorageError> {
    let start = Instant::now();
    let listing = list_data_dir(fs, dir)?;
    let (mut replay, checkpoint_created_ms) = match listing.newest_checkpoint {
        Some(lsn) => {
            let checkpoint = load_checkpoint(fs, dir, lsn)?;
            let created_ms = checkpoint.created_unix_ms;
            (Replay::from_checkpoint(checkpoint), created_ms)
        }
        None => (Replay::default(), 0),
    };
    let plan = plan_segments(dir, &listing.logs, replay.checkpoint_lsn)?;
    let active = replay.segments(fs, dir, options, &plan.needed)?;
    let leftovers: Vec<&PathBuf> = listing.leftovers.iter().chain(&plan.superseded).collect();
    let log = open_active_log(fs, dir, active, &leftovers, replay.last_lsn, tuning)?;
    replay.report.elapsed = start.elapsed();
    Ok(Outcome {
        recovered: Recovered {
            state: replay.state,
            last_lsn: replay.last_lsn,
            report: replay.report,
        },
        log,
        checkpoint_created_ms,
    })
}

/// The files of the data directory that recovery reads or removes.
#[derive(Debug, Default)]
struct Listing {
    /// The first LSN of each log segment, ascending.
    logs: Vec<Lsn>,
    /// The LSN of the newest checkpoint.
    newest_checkpoint: Option<Lsn>,
    /// To remove once recovery is done: the checkpoints whose writing was interrupted (in
    /// listing order), then the older checkpoints.
    leftovers: Vec<PathBuf>,
}

/// Lists `dir` and sorts its files by kind; every other name (`.damaged`, `.discarded`, files
/// that are not ours) is ignored.
fn list_data_dir(fs: &dyn Fs, dir: &Path) -> Result<Listing, StorageError> {
    let names = fs
        .list_dir(dir)
        .context(|| format!("list data directory {}", dir.display()))?;
    let mut listing = Listing::default();
    let mut checkpoints = Vec::new();
    for name in &names {
        if name == SPARE_NAME {
            // A spare holds no record, and may be incomplete: made afresh when wanted.
            listing.leftovers.push(dir.join(name));
            continue;
        }
        match FileKind::parse(name) {
            Some(FileKind::Log(first)) => listing.logs.push(first),
            Some(FileKind::Checkpoint(lsn)) => checkpoints.push(lsn),
            Some(FileKind::CheckpointTmp(_)) => listing.leftovers.push(dir.join(name)),
            Some(FileKind::LogDamaged(_) | FileKind::LogDiscarded(_)) | None => {}
        }
    }
    listing.logs.sort_unstable();
    checkpoints.sort_unstable();
    if let Some((&newest, older)) = checkpoints.split_last() {
        listing.newest_checkpoint = Some(newest);
        let path = |lsn: &Lsn| dir.join(FileKind::Checkpoint(*lsn).name());
        listing.leftovers.extend(older.iter().map(path));
    }
    Ok(listing)
}

/// A checkpoint read and checked.
struct LoadedCheckpoint {
    path: PathBuf,
    lsn: Lsn,
    created_unix_ms: u64,
    state: Databases,
}

/// Reads `checkpoint-<lsn>` in `dir` and builds its key space; fails with
/// [`StorageError::Corrupt`] if the file is damaged, its header disagrees with its name, or
/// its LSN leaves no room for a record after it.
fn load_checkpoint(fs: &dyn Fs, dir: &Path, lsn: Lsn) -> Result<LoadedCheckpoint, StorageError> {
    let path = dir.join(FileKind::Checkpoint(lsn).name());
    let bytes = fs
        .map(&path)
        .context(|| format!("read checkpoint {}", path.display()))?;
    let reader = CheckpointReader::new(&bytes).map_err(|e| corrupt(&path, e.offset, e.reason))?;
    let header = reader.header();
    if lsn == Lsn::MAX {
        return Err(corrupt(
            &path,
            16,
            "checkpoint lsn 2^64-1 leaves no room for another record",
        ));
    }
    if header.lsn != lsn {
        return Err(corrupt(
            &path,
            16,
            format!(
                "header says lsn {} but the file name says {lsn}",
                header.lsn
            ),
        ));
    }
    let state = reader
        .load()
        .map_err(|e| corrupt(&path, e.offset, e.reason))?;
    Ok(LoadedCheckpoint {
        path,
        lsn,
        created_unix_ms: header.created_unix_ms,
        state,
    })
}

/// Which segments recovery replays and which it removes.
#[derive(Debug)]
struct SegmentPlan {
    /// First LSNs of the segments that may hold records after the checkpoint, ascending.
    needed: Vec<Lsn>,
    /// Segments whose records the checkpoint already holds, to remove.
    superseded: Vec<PathBuf>,
}

/// Takes the segments from the last one starting at or below `checkpoint_lsn + 1` (`logs` is
/// ascending); the ones before it are superseded. Fails if every segment starts above that
/// LSN: the records between the checkpoint and the oldest segment are lost.
fn plan_segments(
    dir: &Path,
    logs: &[Lsn],
    checkpoint_lsn: Lsn,
) -> Result<SegmentPlan, StorageError> {
    let segment = |first: Lsn| dir.join(FileKind::Log(first).name());
    match logs.iter().rposition(|first| *first <= checkpoint_lsn + 1) {
        Some(i) => Ok(SegmentPlan {
            needed: logs[i..].to_vec(),
            superseded: logs[..i].iter().map(|f| segment(*f)).collect(),
        }),
        None => match logs.first() {
            Some(&first) => Err(corrupt(
                &segment(first),
                0,
                format!(
                    "the oldest log segment starts at lsn {first} but the checkpoint covers \
                     only up to lsn {checkpoint_lsn}: records in between are missing"
                ),
            )),
            None => Ok(SegmentPlan {
                needed: Vec::new(),
                superseded: Vec::new(),
            }),
        },
    }
}

/// What recovery has built so far: the key space, the LSNs, and the report.
#[derive(Debug, Default)]
struct Replay {
    state: Databases,
    /// The LSN the checkpoint covers (0 without one): records up to it are skipped.
    checkpoint_lsn: Lsn,
    /// The last LSN in `state`.
    last_lsn: Lsn,
    report: RecoveryReport,
}

impl Replay {
    /// Starts from a loaded checkpoint.
    fn from_checkpoint(checkpoint: LoadedCheckpoint) -> Self {
        let report = RecoveryReport {
            checkpoint_keys: checkpoint.state.len() as u64,
            checkpoint: Some((checkpoint.path, checkpoint.lsn)),
            ..RecoveryReport::default()
        };
        Replay {
            state: checkpoint.state,
            checkpoint_lsn: checkpoint.lsn,
            last_lsn: checkpoint.lsn,
            report,
        }
    }

    /// Replays the planned segments (`needed`, ascending first LSNs) in order, up to the end of
    /// the last one or to damage that salvage cuts there. Returns the segment to append to, or
    /// `None` when a new one must be created after `last_lsn` (no segment, a torn new last
    /// segment, or a gap before a segment that salvage set aside).
    fn segments(
        &mut self,
        fs: &dyn Fs,
        dir: &Path,
        options: &BackendOptions,
        needed: &[Lsn],
    ) -> Result<Option<ActiveLog>, StorageError> {
        if needed.is_empty() {
            return Ok(None);
        }
        let paths: Vec<PathBuf> = needed
            .iter()
            .map(|first| dir.join(FileKind::Log(*first).name()))
            .collect();
        let reserve = self.state.is_empty();
        segment_reader::with_reader(fs, paths.clone(), reserve, |segments, last_count| {
            if let Some(last_count) = last_count {
                self.reserve_for_log(fs, &paths, needed, last_count);
            }
            let active = self.replay_segments(fs, dir, options, needed, segments)?;
            if last_count.is_some() {
                self.state.db_mut(0).shrink_to_fit();
            }
            Ok(active)
        })
    }

    /// Sizes the empty key space for the records of the segments, an upper bound on the keys
    /// they leave: every record replayed into a growing table would move each key a time or
    /// two as segments split, a cache miss each, a fifth of a replay's time. Each segment but
    /// the last holds the LSNs up to the next one's first (no more records than its length
    /// allows, should a name be wrong); the last holds `last_count`.
    fn reserve_for_log(&mut self, fs: &dyn Fs, paths: &[PathBuf], needed: &[Lsn], last: u64) {
        const SMALLEST_RECORD: u64 = log::RECORD_HEADER_LEN as u64 + 1;
        let mut records = last;
        for (pair, path) in needed.windows(2).zip(paths) {
            let by_lsn = pair[1].saturating_sub(pair[0]);
            let by_size = fs
                .open_read(path)
                .and_then(|file| file.size())
                .map_or(by_lsn, |len| len / SMALLEST_RECORD);
            records = records.saturating_add(by_lsn.min(by_size));
        }
        self.state
            .db_mut(0)
            .reserve(usize::try_from(records).unwrap_or(usize::MAX));
    }

    /// [`Replay::segments`] after the key space is sized, the segments coming from the reader.
    fn replay_segments(
        &mut self,
        fs: &dyn Fs,
        dir: &Path,
        options: &BackendOptions,
        needed: &[Lsn],
        segments: &mut Segments<'_>,
    ) -> Result<Option<ActiveLog>, StorageError> {
        for (i, &first) in needed.iter().enumerate() {
            let path = dir.join(FileKind::Log(first).name());
            let later = &needed[i + 1..];
            if first > self.last_lsn.saturating_add(1) {
                self.salvage_gap(fs, dir, options, &needed[i..])?;
                return Ok(None);
            }
            let is_last = later.is_empty();
            // Dropped at the end of this turn, before the next is asked for: its buffer goes
            // back to the reader.
            let segment = segments
                .next()
                .context(|| format!("read log {}", path.display()))?;
            let file_len = segment.file_len;
            if !check_segment_header(fs, &path, first, is_last, &mut self.report, &segment.bytes)? {
                return Ok(None);
            }
            let mut end = self.apply_segment(&path, &segment.bytes, &segment.checked)?;
            let mut whole = None;
            if !matches!(end, LogEnd::Clean { .. }) && (segment.bytes.len() as u64) < file_len {
                // Damage. The records before it are the same with or without the zero tail,
                // but a valid record after it may end in zero bytes: what follows the damage
                // is judged with every byte of the file in place.
                let mut bytes = segment.bytes.to_vec();
                bytes.resize(usize::try_from(file_len).unwrap_or(usize::MAX), 0);
                end = LogScanner::new(&bytes)
                    .map_err(|r| corrupt(&path, 0, r))?
                    .finish();
                whole = Some(bytes);
            }
            let bytes = whole.as_deref().unwrap_or(&segment.bytes);
            let tail = end_of_segment(options, &path, &end, is_last, &mut self.report)?;
            if let Tail::Salvage(_) = tail {
                // Keep the damaged file for inspection, then cut it and set later segments aside.
                keep_damaged_copy(fs, dir, first, bytes)?;
                set_aside(fs, dir, later)?;
            }
            if is_last || matches!(tail, Tail::Salvage(_)) {
                let old_format = LogHeader::decode(bytes).is_ok_and(|h| h.version < LOG_VERSION);
                if old_format && first > self.last_lsn {
                    // An older version's segment without a record: replaced by a new one.
                    fs.remove(&path)
                        .context(|| format!("remove empty old-format log {}", path.display()))?;
                    return Ok(None);
                }
                let active = open_segment(fs, path, first, file_len, &end, tail)?;
                if old_format {
                    // Records of this version never go into an older version's segment: it is
                    // cut and synced as it is, and appends go to a new segment.
                    return Ok(None);
                }
                return Ok(Some(active));
            }
        }
        Ok(None)
    }

    /// Salvage of a gap before the segment `from[0]`: each segment starts right after the last
    /// record before it, so a gap means lost records, and appending into that segment would
    /// write LSNs below its first. Fails unless salvage is enabled; with it, sets that segment
    /// and the later ones (`from`) aside and notes it in the report.
    fn salvage_gap(
        &mut self,
        fs: &dyn Fs,
        dir: &Path,
        options: &BackendOptions,
        from: &[Lsn],
    ) -> Result<(), StorageError> {
        let Some(&first) = from.first() else {
            return Ok(());
        };
        let path = dir.join(FileKind::Log(first).name());
        let why = format!(
            "log segment starts at lsn {first} but the records before it end at lsn {}: \
             records in between are missing",
            self.last_lsn
        );
        require_salvage(options, &path, 0, why.clone())?;
        set_aside(fs, dir, from)?;
        self.report.salvaged = Some(format!(
            "{}: {why}; it and later segments are kept as *{DISCARDED_SUFFIX}",
            path.display()
        ));
        Ok(())
    }

    /// Applies the records of one segment (`bytes`, header already checked) that follow the
    /// checkpoint, and returns how the scan ended. Fails if LSNs do not increase or a record
    /// has the last LSN, 2^64-1.
    fn apply_segment(
        &mut self,
        path: &Path,
        bytes: &[u8],
        checked: &AtomicUsize,
    ) -> Result<LogEnd, StorageError> {
        let mut scanner =
            LogScanner::with_checked(bytes, checked).map_err(|r| corrupt(path, 0, r))?;
        while let Some(rec) = scanner.next_borrowed() {
            if rec.lsn <= self.checkpoint_lsn {
                continue;
            }
            if rec.lsn <= self.last_lsn {
                return Err(corrupt(
                    path,
                    rec.offset,
                    format!(
                        "record lsn {} does not follow lsn {}",
                        rec.lsn, self.last_lsn
                    ),
                ));
            }
            if rec.lsn == Lsn::MAX {
                return Err(corrupt(
                    path,
                    rec.offset,
                    "record lsn 2^64-1 leaves no room for another record",
                ));
            }
            self.state.apply_borrowed(&rec.record);
            self.last_lsn = rec.lsn;
            self.report.records_replayed += 1;
            self.report.log_bytes_replayed += rec.len;
        }
        Ok(scanner.finish())
    }
}

/// Checks the header of segment `log-<first>` at `path` (its `bytes`, as the reader gives them:
/// [`segment_reader::SegmentBytes::bytes`]) and the first LSN it names. `false` if it is the
/// last segment and its creation was interrupted (the header is torn and only zeros follow): it
/// holds no record, so it is removed and its non-zero bytes are counted as truncated.
fn check_segment_header(
    fs: &dyn Fs,
    path: &Path,
    first: Lsn,
    is_last: bool,
    report: &mut RecoveryReport,
    bytes: &[u8],
) -> Result<bool, StorageError> {
    let header = match LogHeader::decode(bytes) {
        Ok(h) => h,
        Err(reason) => {
            let empty =
                bytes.len() <= LOG_HEADER_LEN || bytes[LOG_HEADER_LEN..].iter().all(|b| *b == 0);
            if is_last && empty {
                // Interrupted creation of a new segment: it holds no record.
                report.bytes_truncated +=
                    bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1) as u64;
                fs.remove(path)
                    .context(|| format!("remove torn new log {}", path.display()))?;
                return Ok(false);
            }
            return Err(corrupt(path, 0, reason));
        }
    };
    if header.first_lsn != first {
        return Err(corrupt(
            path,
            16,
            format!(
                "header says first lsn {} but the file name says {first}",
                header.first_lsn
            ),
        ));
    }
    Ok(true)
}

/// What recovery does with the end of a replayed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tail {
    /// It ended cleanly: keep it whole.
    Clean,
    /// A torn tail of the last segment (a write the crash interrupted): cut it at the offset.
    Torn(u64),
    /// Damage that only salvage passes: cut at the offset, keep the original as `.damaged`,
    /// set later segments aside.
    Salvage(u64),
}

impl Tail {
    /// The offset to cut the segment at, if any.
    fn cut(self) -> Option<u64> {
        match self {
            Tail::Clean => None,
            Tail::Torn(offset) | Tail::Salvage(offset) => Some(offset),
        }
    }
}

/// Decides what to do with the way a segment ended: a clean end is kept, a torn tail of the
/// last segment is cut (counted in the report), and anything else — a torn tail of an earlier
/// segment, which was synced before the next began, or mid-log damage — fails unless salvage
/// is enabled, which notes it in the report.
fn end_of_segment(
    options: &BackendOptions,
    path: &Path,
    end: &LogEnd,
    is_last: bool,
    report: &mut RecoveryReport,
) -> Result<Tail, StorageError> {
    let (offset, why) = match end {
        LogEnd::Clean { .. } => return Ok(Tail::Clean),
        LogEnd::TornTail {
            offset,
            damaged_bytes,
            ..
        } if is_last => {
            report.bytes_truncated += damaged_bytes;
            return Ok(Tail::Torn(*offset));
        }
        LogEnd::TornTail { offset, reason, .. } => (
            *offset,
            format!(
                "{reason} at the end of a log segment that is not the last one (it was \
                 synced before the next one began)"
            ),
        ),
        LogEnd::MidLogDamage {
            offset,
            reason,
            next_valid_offset,
            valid_records_after,
        } => (
            *offset,
            format!(
                "{reason}, followed by {valid_records_after} valid records from byte offset \
                 {next_valid_offset}"
            ),
        ),
    };
    require_salvage(options, path, offset, why.clone())?;
    report.salvaged = Some(salvage_note(path, offset, &why));
    Ok(Tail::Salvage(offset))
}

/// Damage that only salvage passes: without it, the error naming file, offset and reason.
fn require_salvage(
    options: &BackendOptions,
    path: &Path,
    offset: u64,
    reason: String,
) -> Result<(), StorageError> {
    if options.salvage {
        Ok(())
    } else {
        Err(corrupt(path, offset, reason))
    }
}

/// The report's note on a segment that salvage cut at `offset`.
fn salvage_note(path: &Path, offset: u64, reason: &str) -> String {
    let name = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    format!(
        "{}: discarded everything from byte offset {offset} ({reason}); the original is kept \
         as {name}{DAMAGED_SUFFIX} and later segments as *{DISCARDED_SUFFIX}",
        path.display(),
    )
}

/// Salvage: writes `bytes`, the uncut segment `log-<first>`, to `log-<first>.damaged` and
/// syncs it, before the segment is cut.
fn keep_damaged_copy(
    fs: &dyn Fs,
    dir: &Path,
    first: Lsn,
    bytes: &[u8],
) -> Result<(), StorageError> {
    let copy = dir.join(FileKind::LogDamaged(first).name());
    let mut f = fs
        .create(&copy)
        .context(|| format!("create {}", copy.display()))?;
    f.write_all_at(bytes, 0)
        .context(|| format!("write {}", copy.display()))?;
    f.sync_all()
        .context(|| format!("fsync {}", copy.display()))?;
    Ok(())
}

/// Salvage: renames each segment `log-<first>` in `segments` to `log-<first>.discarded`, so
/// recovery no longer reads it.
fn set_aside(fs: &dyn Fs, dir: &Path, segments: &[Lsn]) -> Result<(), StorageError> {
    for &first in segments {
        let from = dir.join(FileKind::Log(first).name());
        let to = dir.join(FileKind::LogDiscarded(first).name());
        fs.rename(&from, &to)
            .context(|| format!("rename {} aside", from.display()))?;
    }
    Ok(())
}

/// Opens segment `log-<first>` (`file_len` bytes, ending as `end`) for appending after its
/// last valid record: cut at the offset `tail` names, if any, and synced.
fn open_segment(
    fs: &dyn Fs,
    path: PathBuf,
    first: Lsn,
    file_len: u64,
    end: &LogEnd,
    tail: Tail,
) -> Result<ActiveLog, StorageError> {
    let mut file = fs
        .open_write(&path)
        .context(|| format!("open log {}", path.display()))?;
    let valid_end = end.valid_end();
    let mut allocated = file_len;
    if let Some(offset) = tail.cut() {
        file.set_len(offset)
            .context(|| format!("truncate {} to {offset} bytes", path.display()))?;
        allocated = offset;
    }
    file.sync_all()
        .context(|| format!("fsync log {}", path.display()))?;
    Ok(ActiveLog {
        file,
        path,
        first_lsn: first,
        len: valid_end,
        allocated,
        synced_len: valid_end,
        zeroed: false,
    })
}

/// Last phase: removes the `leftovers` (superseded files), then makes the log to append to
/// durable: the replayed segment `active` (the directory synced for the removals and for
/// salvage's renames), or, if there is none, a new segment after `last_lsn`.
fn open_active_log(
    fs: &dyn Fs,
    dir: &Path,
    active: Option<ActiveLog>,
    leftovers: &[&PathBuf],
    last_lsn: Lsn,
    tuning: PaperTuning,
) -> Result<ActiveLog, StorageError> {
    for path in leftovers {
        fs.remove(path)
            .context(|| format!("remove superseded {}", path.display()))?;
    }
    match active {
        Some(log) => {
            fs.sync_dir(dir)
                .context(|| format!("fsync directory {}", dir.display()))?;
            Ok(log)
        }
        // create_log_file syncs the directory.
        None => create_log_file(fs, dir, last_lsn + 1, tuning.prealloc_bytes),
    }
}
