//! Recovery of the paper engine: find the newest checkpoint, load it, replay the log segments
//! that follow it, cut a torn tail, refuse (or, with salvage, cut) mid-log damage, remove
//! leftovers of interrupted checkpoints, and open the last segment for appending.

use std::path::{Path, PathBuf};
use std::time::Instant;

use moodb_core::error::IoContext;
use moodb_core::{Keyspace, Lsn, Recovered, RecoveryReport, StorageError};

use super::checkpoint::CheckpointReader;
use super::files::{FileKind, DAMAGED_SUFFIX, DISCARDED_SUFFIX};
use super::fs::Fs;
use super::log::{LogEnd, LogHeader, LogScanner, LOG_HEADER_LEN};
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

pub(crate) fn recover(
    fs: &dyn Fs,
    dir: &Path,
    options: &BackendOptions,
    tuning: PaperTuning,
) -> Result<Outcome, StorageError> {
    let start = Instant::now();
    let names = fs
        .list_dir(dir)
        .context(|| format!("list data directory {}", dir.display()))?;
    let mut logs: Vec<Lsn> = Vec::new();
    let mut checkpoints: Vec<Lsn> = Vec::new();
    let mut leftovers: Vec<PathBuf> = Vec::new();
    for name in &names {
        match FileKind::parse(name) {
            Some(FileKind::Log(first)) => logs.push(first),
            Some(FileKind::Checkpoint(lsn)) => checkpoints.push(lsn),
            Some(FileKind::CheckpointTmp(_)) => leftovers.push(dir.join(name)),
            Some(FileKind::LogDamaged(_) | FileKind::LogDiscarded(_)) | None => {}
        }
    }
    logs.sort_unstable();
    checkpoints.sort_unstable();

    let mut report = RecoveryReport::default();
    let mut state = Keyspace::new();
    let mut checkpoint_lsn: Lsn = 0;
    let mut checkpoint_created_ms = 0;
    if let Some(&c) = checkpoints.last() {
        let path = dir.join(FileKind::Checkpoint(c).name());
        let bytes = fs
            .read(&path)
            .context(|| format!("read checkpoint {}", path.display()))?;
        let reader =
            CheckpointReader::new(&bytes).map_err(|e| corrupt(&path, e.offset, e.reason))?;
        let header = reader.header();
        if c == Lsn::MAX {
            return Err(corrupt(
                &path,
                16,
                "checkpoint lsn 2^64-1 leaves no room for another record",
            ));
        }
        if header.lsn != c {
            return Err(corrupt(
                &path,
                16,
                format!("header says lsn {} but the file name says {c}", header.lsn),
            ));
        }
        state = reader
            .load()
            .map_err(|e| corrupt(&path, e.offset, e.reason))?;
        checkpoint_lsn = c;
        checkpoint_created_ms = header.created_unix_ms;
        report.checkpoint = Some((path, c));
        report.checkpoint_keys = state.len() as u64;
        leftovers.extend(
            checkpoints[..checkpoints.len() - 1]
                .iter()
                .map(|l| dir.join(FileKind::Checkpoint(*l).name())),
        );
    }

    // The segments that may hold records after the checkpoint: from the last one starting at
    // or below checkpoint + 1.
    let first_needed = logs.iter().rposition(|first| *first <= checkpoint_lsn + 1);
    let needed: Vec<Lsn> = match first_needed {
        Some(i) => {
            leftovers.extend(logs[..i].iter().map(|f| dir.join(FileKind::Log(*f).name())));
            logs[i..].to_vec()
        }
        None => {
            if let Some(first) = logs.first() {
                return Err(corrupt(
                    &dir.join(FileKind::Log(*first).name()),
                    0,
                    format!(
                        "the oldest log segment starts at lsn {first} but the checkpoint covers \
                         only up to lsn {checkpoint_lsn}: records in between are missing"
                    ),
                ));
            }
            Vec::new()
        }
    };

    let mut last_lsn = checkpoint_lsn;
    let mut active: Option<ActiveLog> = None;
    for (i, first) in needed.iter().enumerate() {
        let path = dir.join(FileKind::Log(*first).name());
        if *first > last_lsn.saturating_add(1) {
            // Each segment starts right after the last record before it: a gap means lost
            // records, and appending into this segment would write LSNs below its first.
            let why = format!(
                "log segment starts at lsn {first} but the records before it end at lsn \
                 {last_lsn}: records in between are missing"
            );
            salvage_or_fail(options, &path, 0, why.clone(), &mut report)?;
            for later in &needed[i..] {
                let from = dir.join(FileKind::Log(*later).name());
                let to = dir.join(FileKind::LogDiscarded(*later).name());
                fs.rename(&from, &to)
                    .context(|| format!("rename {} aside", from.display()))?;
            }
            report.salvaged = Some(format!(
                "{}: {why}; it and later segments are kept as *{DISCARDED_SUFFIX}",
                path.display()
            ));
            break;
        }
        let is_last = i + 1 == needed.len();
        let bytes = fs
            .read(&path)
            .context(|| format!("read log {}", path.display()))?;
        let header = match LogHeader::decode(&bytes) {
            Ok(h) => h,
            Err(reason) => {
                let empty = bytes.len() <= LOG_HEADER_LEN
                    || bytes[LOG_HEADER_LEN..].iter().all(|b| *b == 0);
                if is_last && empty {
                    // Interrupted creation of a new segment: it holds no record.
                    report.bytes_truncated +=
                        bytes.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1) as u64;
                    fs.remove(&path)
                        .context(|| format!("remove torn new log {}", path.display()))?;
                    break;
                }
                return Err(corrupt(&path, 0, reason));
            }
        };
        if header.first_lsn != *first {
            return Err(corrupt(
                &path,
                16,
                format!(
                    "header says first lsn {} but the file name says {first}",
                    header.first_lsn
                ),
            ));
        }
        let mut scanner = LogScanner::new(&bytes).map_err(|r| corrupt(&path, 0, r))?;
        for rec in scanner.by_ref() {
            if rec.lsn <= checkpoint_lsn {
                continue;
            }
            if rec.lsn <= last_lsn {
                return Err(corrupt(
                    &path,
                    rec.offset,
                    format!("record lsn {} does not follow lsn {last_lsn}", rec.lsn),
                ));
            }
            if rec.lsn == Lsn::MAX {
                return Err(corrupt(
                    &path,
                    rec.offset,
                    "record lsn 2^64-1 leaves no room for another record",
                ));
            }
            state.apply_owned(rec.record);
            last_lsn = rec.lsn;
            report.records_replayed += 1;
            report.log_bytes_replayed += rec.len;
        }
        let end = scanner.finish();
        let cut = match &end {
            LogEnd::Clean { .. } => None,
            LogEnd::TornTail {
                offset,
                damaged_bytes,
                ..
            } if is_last => {
                report.bytes_truncated += damaged_bytes;
                Some(*offset)
            }
            LogEnd::TornTail { offset, reason, .. } => {
                let why = format!(
                    "{reason} at the end of a log segment that is not the last one (it was \
                     synced before the next one began)"
                );
                salvage_or_fail(options, &path, *offset, why, &mut report)?;
                Some(*offset)
            }
            LogEnd::MidLogDamage {
                offset,
                reason,
                next_valid_offset,
                valid_records_after,
            } => {
                let why = format!(
                    "{reason}, followed by {valid_records_after} valid records from byte offset \
                     {next_valid_offset}"
                );
                salvage_or_fail(options, &path, *offset, why, &mut report)?;
                Some(*offset)
            }
        };
        let torn_tail = is_last && matches!(end, LogEnd::TornTail { .. });
        let salvaging = cut.is_some() && !torn_tail;
        if salvaging {
            // Keep the damaged file for inspection, then cut it and set later segments aside.
            let copy = dir.join(FileKind::LogDamaged(*first).name());
            let mut f = fs
                .create(&copy)
                .context(|| format!("create {}", copy.display()))?;
            f.write_all_at(&bytes, 0)
                .context(|| format!("write {}", copy.display()))?;
            f.sync_all()
                .context(|| format!("fsync {}", copy.display()))?;
            for later in &needed[i + 1..] {
                let from = dir.join(FileKind::Log(*later).name());
                let to = dir.join(FileKind::LogDiscarded(*later).name());
                fs.rename(&from, &to)
                    .context(|| format!("rename {} aside", from.display()))?;
            }
        }
        if is_last || salvaging {
            let mut file = fs
                .open_write(&path)
                .context(|| format!("open log {}", path.display()))?;
            let valid_end = end.valid_end();
            let mut allocated = bytes.len() as u64;
            if let Some(offset) = cut {
                file.set_len(offset)
                    .context(|| format!("truncate {} to {offset} bytes", path.display()))?;
                allocated = offset;
            }
            file.sync_all()
                .context(|| format!("fsync log {}", path.display()))?;
            active = Some(ActiveLog {
                file,
                path,
                first_lsn: *first,
                len: valid_end,
                allocated,
                synced_len: valid_end,
            });
            break;
        }
    }

    for path in &leftovers {
        fs.remove(path)
            .context(|| format!("remove superseded {}", path.display()))?;
    }
    let log = match active {
        Some(log) => {
            fs.sync_dir(dir)
                .context(|| format!("fsync directory {}", dir.display()))?;
            log
        }
        // create_log_file syncs the directory.
        None => create_log_file(fs, dir, last_lsn + 1, tuning.prealloc_bytes)?,
    };
    report.elapsed = start.elapsed();
    Ok(Outcome {
        recovered: Recovered {
            state,
            last_lsn,
            report,
        },
        log,
        checkpoint_created_ms,
    })
}

/// Mid-log damage: an error naming file and offset, or with salvage a note in the report.
fn salvage_or_fail(
    options: &BackendOptions,
    path: &Path,
    offset: u64,
    reason: String,
    report: &mut RecoveryReport,
) -> Result<(), StorageError> {
    if !options.salvage {
        return Err(corrupt(path, offset, reason));
    }
    report.salvaged = Some(format!(
        "{}: discarded everything from byte offset {offset} ({reason}); the original is kept \
         as {}{DAMAGED_SUFFIX} and later segments as *{DISCARDED_SUFFIX}",
        path.display(),
        path.file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned())
    ));
    Ok(())
}
