//! The raft log of the paper engine ([`PaperRaftLog`], the core's [`RaftLog`]): segments of
//! records that carry their raft log id, the vote and the purge point in small files replaced
//! atomically, and [`PaperSnapshotCodec`], raft snapshots in the checkpoint format.
//! FORMAT.md draws the bytes; ARCHITECTURE.md says why this is a segment kind of its own.
//!
//! Files (in the raft log's directory):
//!
//! | name | what |
//! |---|---|
//! | `raftlog-<first_index:020>` | a segment: entries with index ≥ `first_index` |
//! | `raft-vote` | the vote last saved (written to `.tmp`, fsynced, renamed, directory fsynced) |
//! | `raft-purged` | the log id of the last purged entry (same switch) |
//! | `raftsnap-<index:020>` | a raft snapshot: a raft header, then a checkpoint ([`PaperSnapshotFiles`]) |
//! | `raftlog-spare` | zeros, made ahead of need to become the next segment (see [`super::spare`]) |
//!
//! As the single-node log does, the raft log moves to a pre-zeroed spare segment when one is
//! ready (the active one filled, or it was not a spare: the first one, or one reopened or cut
//! by a truncate), so that an append's fdatasync overwrites zeros within the file's size and
//! changes no metadata (on this machine kind about 110 µs instead of 185 µs per sync; every
//! committed write waits for one on the leader and one on a follower).
//!
//! Segment header (32 bytes): magic `MOODBRFT`, u32 version (1), u32 0, u64 first index,
//! u32 0, u32 CRC32C of bytes 0..28. Record (44-byte header, then the payload):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | frame length: header + payload (≥ 44) |
//! | 4 | 4 | CRC32C of bytes 0..4 and 8.. (the whole frame but this field) |
//! | 8 | 8 | index (the LSN) |
//! | 16 | 8 | term of the leader that proposed it |
//! | 24 | 8 | node id of that leader |
//! | 32 | 8 | index of the first record of the `append` (group) that wrote it |
//! | 40 | 1 | kind: 0 blank, 1 record (`Record::encode`), 2 membership (opaque bytes) |
//! | 41 | 3 | 0 |
//! | 44 | n | payload |
//!
//! Small file (`raft-vote`, `raft-purged`): magic `MOODBRSF`, u32 version (1), u32 payload
//! length, payload, u32 CRC32C of everything before it. `raft-purged`'s payload is term, node,
//! index (three u64).
//!
//! Recovery reads every segment; a damaged last segment whose damage is followed by nothing
//! valid, or only by records of the same unfinished group, is a torn tail and is cut; any
//! other damage refuses to open, naming file and offset. Entries up to the purge point that a
//! power cut left behind are ignored and their segments removed by the next purge. That
//! judgement is [`scan_segment`]'s, which `moodb wal dump` also uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use moodb_core::error::IoContext;
use moodb_core::replicated::{
    RaftLog, RaftLogId, RaftLogState, RaftPayload, RaftRecord, SnapshotCodec, SnapshotFiles,
    StoredRaftSnapshot,
};
use moodb_core::{Databases, Lsn, Record, StorageError};

use super::checkpoint::{encode_checkpoint, CheckpointReader};
use super::fs::{Fs, FsFile};
use super::log::{u32_at, u64_at};
use super::spare::{SpareMode, Spares};

pub const RAFT_LOG_MAGIC: &[u8; 8] = b"MOODBRFT";
pub const RAFT_LOG_VERSION: u32 = 1;
pub const RAFT_SEGMENT_PREFIX: &str = "raftlog-";
pub const RAFT_HEADER_LEN: usize = 32;
pub const RAFT_RECORD_HEADER_LEN: usize = 44;
pub const SMALL_FILE_MAGIC: &[u8; 8] = b"MOODBRSF";
pub const VOTE_NAME: &str = "raft-vote";
pub const PURGED_NAME: &str = "raft-purged";
pub const RAFT_SPARE_NAME: &str = "raftlog-spare";
/// A segment is closed and a new one started once it holds this many bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
const MAX_FRAME: usize = 1 << 30;

const KIND_BLANK: u8 = 0;
const KIND_RECORD: u8 = 1;
const KIND_MEMBERSHIP: u8 = 2;

/// The name of the segment whose first index is `first`.
pub fn segment_name(first: Lsn) -> String {
    format!("{RAFT_SEGMENT_PREFIX}{first:020}")
}

/// The first index a segment's name (`raftlog-<first_index:020>`) says, if it is one.
pub fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix(RAFT_SEGMENT_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn segment_header(first: Lsn) -> [u8; RAFT_HEADER_LEN] {
    let mut out = [0u8; RAFT_HEADER_LEN];
    out[0..8].copy_from_slice(RAFT_LOG_MAGIC);
    out[8..12].copy_from_slice(&RAFT_LOG_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&first.to_le_bytes());
    let crc = crc32c::crc32c(&out[0..28]);
    out[28..32].copy_from_slice(&crc.to_le_bytes());
    out
}

fn check_segment_header(bytes: &[u8], first: Option<Lsn>) -> Result<(), String> {
    if bytes.len() < RAFT_HEADER_LEN {
        return Err(format!(
            "file is {} bytes, shorter than the {RAFT_HEADER_LEN}-byte raft log header",
            bytes.len()
        ));
    }
    if &bytes[0..8] != RAFT_LOG_MAGIC {
        return Err("bad magic: not a MooDB raft log segment".into());
    }
    if u32_at(bytes, 28) != crc32c::crc32c(&bytes[0..28]) {
        return Err("raft log header checksum mismatch".into());
    }
    let version = u32_at(bytes, 8);
    if version != RAFT_LOG_VERSION {
        return Err(format!(
            "raft log format version {version}, this build reads version {RAFT_LOG_VERSION}"
        ));
    }
    if let Some(first) = first.filter(|f| u64_at(bytes, 16) != *f) {
        return Err(format!(
            "header says first index {}, the name says {first}",
            u64_at(bytes, 16)
        ));
    }
    Ok(())
}

/// Appends the frame of `record`, written by the group whose first index is `group_first`.
pub fn encode_raft_record(out: &mut Vec<u8>, record: &RaftRecord, group_first: Lsn) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RAFT_RECORD_HEADER_LEN]);
    let kind = match &record.payload {
        RaftPayload::Blank => KIND_BLANK,
        RaftPayload::Record(r) => {
            r.encode(out);
            KIND_RECORD
        }
        RaftPayload::Membership(m) => {
            out.extend_from_slice(m);
            KIND_MEMBERSHIP
        }
    };
    let len = (out.len() - start) as u32;
    let frame = &mut out[start..];
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    frame[8..16].copy_from_slice(&record.id.index.to_le_bytes());
    frame[16..24].copy_from_slice(&record.id.term.to_le_bytes());
    frame[24..32].copy_from_slice(&record.id.node.to_le_bytes());
    frame[32..40].copy_from_slice(&group_first.to_le_bytes());
    frame[40] = kind;
    let crc = frame_crc(frame);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn frame_crc(frame: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&frame[0..4]), &frame[8..])
}

/// A frame parsed at an offset: the record, its group's first index and its length.
struct Parsed {
    record: RaftRecord,
    group_first: Lsn,
    len: usize,
}

fn parse_frame(bytes: &[u8]) -> Result<Parsed, String> {
    if bytes.len() < RAFT_RECORD_HEADER_LEN {
        return Err(format!(
            "incomplete record header ({} of {RAFT_RECORD_HEADER_LEN} bytes)",
            bytes.len()
        ));
    }
    let len = u32_at(bytes, 0) as usize;
    if !(RAFT_RECORD_HEADER_LEN..=MAX_FRAME).contains(&len) {
        return Err(format!("invalid record length {len}"));
    }
    if bytes.len() < len {
        return Err(format!(
            "incomplete record: length {len} but {} bytes left",
            bytes.len()
        ));
    }
    let frame = &bytes[..len];
    if u32_at(frame, 4) != frame_crc(frame) {
        return Err("record checksum mismatch".into());
    }
    let id = RaftLogId {
        index: u64_at(frame, 8),
        term: u64_at(frame, 16),
        node: u64_at(frame, 24),
    };
    let body = &frame[RAFT_RECORD_HEADER_LEN..];
    let payload = match frame[40] {
        KIND_BLANK if body.is_empty() => RaftPayload::Blank,
        KIND_RECORD => RaftPayload::Record(
            Record::decode(body)
                .map_err(|e| format!("record index {} has a bad payload: {e}", id.index))?,
        ),
        KIND_MEMBERSHIP => RaftPayload::Membership(body.to_vec()),
        kind => return Err(format!("record index {} has unknown kind {kind}", id.index)),
    };
    Ok(Parsed {
        record: RaftRecord { id, payload },
        group_first: u64_at(frame, 32),
        len,
    })
}

/// Writes `payload` as the small file `name` in `dir`: `.tmp`, fsync, rename, directory fsync,
/// so a power cut leaves the old content or the new one.
fn write_small_file(
    fs: &dyn Fs,
    dir: &Path,
    name: &str,
    payload: &[u8],
) -> Result<(), StorageError> {
    let mut bytes = Vec::with_capacity(payload.len() + 20);
    bytes.extend_from_slice(SMALL_FILE_MAGIC);
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(payload);
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let mut file = fs
        .create(&tmp)
        .context(|| format!("create {}", tmp.display()))?;
    file.write_all_at(&bytes, 0)
        .context(|| format!("write {}", tmp.display()))?;
    file.sync_all()
        .context(|| format!("fsync {}", tmp.display()))?;
    drop(file);
    fs.rename(&tmp, &path)
        .context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    fs.sync_dir(dir)
        .context(|| format!("fsync directory {}", dir.display()))
}

/// Reads the small file `name` (`raft-vote`, `raft-purged`), if it exists: its payload, or
/// [`StorageError::Corrupt`] with the offset of the damage.
pub fn read_small_file(
    fs: &dyn Fs,
    dir: &Path,
    name: &str,
) -> Result<Option<Vec<u8>>, StorageError> {
    let path = dir.join(name);
    let bytes = match fs.read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(format!("read {}", path.display()), e)),
    };
    let corrupt = |offset: u64, reason: &str| StorageError::Corrupt {
        file: path.clone(),
        offset,
        reason: reason.into(),
    };
    if bytes.len() < 20 || &bytes[0..8] != SMALL_FILE_MAGIC {
        return Err(corrupt(0, "not a MooDB raft state file"));
    }
    let len = u32_at(&bytes, 12) as usize;
    if bytes.len() != 20 + len {
        return Err(corrupt(12, "length does not match the file size"));
    }
    if u32_at(&bytes, 16 + len) != crc32c::crc32c(&bytes[..16 + len]) {
        return Err(corrupt((16 + len) as u64, "checksum mismatch"));
    }
    Ok(Some(bytes[16..16 + len].to_vec()))
}

/// The purge point saved in `raft-purged` in `dir`, if there is one.
pub fn read_purged(fs: &dyn Fs, dir: &Path) -> Result<Option<RaftLogId>, StorageError> {
    match read_small_file(fs, dir, PURGED_NAME)? {
        None => Ok(None),
        Some(b) if b.len() == 24 => Ok(Some(RaftLogId {
            term: u64_at(&b, 0),
            node: u64_at(&b, 8),
            index: u64_at(&b, 16),
        })),
        Some(_) => Err(StorageError::Corrupt {
            file: dir.join(PURGED_NAME),
            offset: 16,
            reason: "the purged log id is not 24 bytes".into(),
        }),
    }
}

fn encode_log_id(id: &RaftLogId) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&id.term.to_le_bytes());
    out.extend_from_slice(&id.node.to_le_bytes());
    out.extend_from_slice(&id.index.to_le_bytes());
    out
}

/// One segment: its first index (its name) and the offset where the next record goes.
#[derive(Debug)]
struct Segment {
    end: u64,
}

/// An entry held in memory, with the segment and offset of its frame.
#[derive(Debug, Clone)]
struct Held {
    record: RaftRecord,
    segment: Lsn,
    offset: u64,
}

/// What opening the raft log found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RaftLogRecovery {
    pub entries: u64,
    /// Bytes of a torn tail cut off the last segment.
    pub bytes_truncated: u64,
}

/// The paper engine's raft log. Every entry not purged is also held in memory (the log is
/// purged at each snapshot), so reads never touch the disk.
#[derive(Debug)]
pub struct PaperRaftLog {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    segment_bytes: u64,
    segments: BTreeMap<Lsn, Segment>,
    /// The last segment, open for appending.
    active: Option<(Lsn, Box<dyn FsFile>)>,
    /// How far the active segment holds zeros written and synced ahead (it was a spare): an
    /// append ending there changes no metadata. 0 when it was not a spare.
    zeroed: u64,
    spares: Spares,
    entries: BTreeMap<Lsn, Held>,
    last_purged: Option<RaftLogId>,
    vote: Option<Vec<u8>>,
    failed: Option<StorageError>,
    recovery: RaftLogRecovery,
}

impl PaperRaftLog {
    /// Opens (creating if needed) the raft log in `dir`, recovering what is there.
    pub fn open(fs: Box<dyn Fs>, dir: &Path) -> Result<Self, StorageError> {
        Self::open_tuned(fs, dir, DEFAULT_SEGMENT_BYTES, SpareMode::Background)
    }

    /// [`PaperRaftLog::open`] with segments closed after `segment_bytes` (tests use small
    /// ones) and no spare segments (so that a simulated disk sees only the log's operations).
    pub fn open_with(
        fs: Box<dyn Fs>,
        dir: &Path,
        segment_bytes: u64,
    ) -> Result<Self, StorageError> {
        Self::open_tuned(fs, dir, segment_bytes, SpareMode::Off)
    }

    /// [`PaperRaftLog::open_with`], with spare segments made as `spare` says.
    pub fn open_tuned(
        fs: Box<dyn Fs>,
        dir: &Path,
        segment_bytes: u64,
        spare: SpareMode,
    ) -> Result<Self, StorageError> {
        fs.create_dir_all(dir)
            .context(|| format!("create directory {}", dir.display()))?;
        let fs: Arc<dyn Fs> = Arc::from(fs);
        let segment_bytes = segment_bytes.max(RAFT_HEADER_LEN as u64 + 1);
        let spares = Spares::named(spare, fs.clone(), &dir.join(RAFT_SPARE_NAME), segment_bytes);
        let mut log = PaperRaftLog {
            fs,
            dir: dir.to_path_buf(),
            segment_bytes,
            segments: BTreeMap::new(),
            active: None,
            zeroed: 0,
            spares,
            entries: BTreeMap::new(),
            last_purged: None,
            vote: None,
            failed: None,
            recovery: RaftLogRecovery::default(),
        };
        log.vote = read_small_file(&*log.fs, dir, VOTE_NAME)?;
        log.last_purged = read_purged(&*log.fs, dir)?;
        log.load_segments()?;
        Ok(log)
    }

    /// What opening found.
    pub fn recovery(&self) -> &RaftLogRecovery {
        &self.recovery
    }

    fn load_segments(&mut self) -> Result<(), StorageError> {
        let names = self
            .fs
            .list_dir(&self.dir)
            .context(|| format!("list {}", self.dir.display()))?;
        for name in &names {
            // A spare holds no record; one left by a crash is made again when wanted.
            if name == RAFT_SPARE_NAME
                || name.ends_with(".tmp")
                    && (name.starts_with(VOTE_NAME) || name.starts_with(PURGED_NAME))
            {
                let path = self.dir.join(name);
                self.fs
                    .remove(&path)
                    .context(|| format!("remove {}", path.display()))?;
            }
        }
        let firsts: Vec<Lsn> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
        let purged = self.last_purged.map(|p| p.index);
        let mut last_index: Option<Lsn> = None;
        for (i, first) in firsts.iter().copied().enumerate() {
            let is_last = i + 1 == firsts.len();
            let path = self.dir.join(segment_name(first));
            let bytes = self
                .fs
                .read(&path)
                .context(|| format!("read {}", path.display()))?;
            let corrupt = |offset: usize, reason: String| StorageError::Corrupt {
                file: path.clone(),
                offset: offset as u64,
                reason,
            };
            let scan = match scan_segment(&bytes, Some(first), last_index) {
                Ok(scan) => scan,
                Err(reason) => {
                    if is_last && bytes.len() <= RAFT_HEADER_LEN {
                        // Created but its header never reached the disk (a segment gets records
                        // only after its header is synced): an empty segment.
                        self.rewrite_header(first)?;
                        self.segments.insert(
                            first,
                            Segment {
                                end: RAFT_HEADER_LEN as u64,
                            },
                        );
                        continue;
                    }
                    return Err(corrupt(0, reason));
                }
            };
            for r in scan.records {
                let index = r.record.id.index;
                last_index = Some(index);
                if purged.is_none_or(|p| index > p) {
                    self.entries.insert(
                        index,
                        Held {
                            record: r.record,
                            segment: first,
                            offset: r.offset,
                        },
                    );
                }
            }
            let end = match scan.end {
                RaftSegmentEnd::Clean { valid_end } => valid_end,
                RaftSegmentEnd::TornTail {
                    offset,
                    damaged_bytes,
                    ..
                } if is_last => {
                    self.recovery.bytes_truncated = damaged_bytes;
                    let mut file = self
                        .fs
                        .open_write(&path)
                        .context(|| format!("open {}", path.display()))?;
                    file.set_len(offset)
                        .context(|| format!("truncate {}", path.display()))?;
                    file.sync_all()
                        .context(|| format!("fsync {}", path.display()))?;
                    offset
                }
                RaftSegmentEnd::TornTail { offset, reason, .. }
                | RaftSegmentEnd::MidLogDamage { offset, reason, .. }
                | RaftSegmentEnd::OutOfOrder { offset, reason } => {
                    return Err(corrupt(offset as usize, reason))
                }
            };
            self.segments.insert(first, Segment { end });
        }
        self.recovery.entries = self.entries.len() as u64;
        if let Some((&first, _)) = self.segments.iter().next_back() {
            let path = self.dir.join(segment_name(first));
            let file = self
                .fs
                .open_write(&path)
                .context(|| format!("open {}", path.display()))?;
            self.active = Some((first, file));
        }
        Ok(())
    }

    fn rewrite_header(&mut self, first: Lsn) -> Result<(), StorageError> {
        let path = self.dir.join(segment_name(first));
        let mut file = self
            .fs
            .create(&path)
            .context(|| format!("create {}", path.display()))?;
        file.write_all_at(&segment_header(first), 0)
            .context(|| format!("write {}", path.display()))?;
        file.sync_all()
            .context(|| format!("fsync {}", path.display()))
    }

    /// Starts the segment `first` and makes it the active one. Segments from `first` on hold
    /// no entry by now (an append truncates first); they go, so names keep index order.
    fn start_segment(&mut self, first: Lsn) -> Result<(), StorageError> {
        // Below the purge point (openraft's storage suite does it) nothing held is left at
        // all, so every segment is stale.
        let below_purge = self.last_purged.is_some_and(|p| first <= p.index);
        let from = if below_purge { 0 } else { first };
        let stale: Vec<Lsn> = self.segments.range(from..).map(|(f, _)| *f).rev().collect();
        for seg in stale {
            let path = self.dir.join(segment_name(seg));
            self.fs
                .remove(&path)
                .context(|| format!("remove {}", path.display()))?;
            self.segments.remove(&seg);
        }
        let path = self.dir.join(segment_name(first));
        let (file, zeroed) = match self.adopt_spare(first)? {
            Some(file) => (file, self.spares.segment_len()),
            None => {
                self.rewrite_header(first)?;
                self.fs
                    .sync_dir(&self.dir)
                    .context(|| format!("fsync directory {}", self.dir.display()))?;
                let file = self
                    .fs
                    .open_write(&path)
                    .context(|| format!("open {}", path.display()))?;
                (file, 0)
            }
        };
        self.zeroed = zeroed;
        self.segments.insert(
            first,
            Segment {
                end: RAFT_HEADER_LEN as u64,
            },
        );
        self.active = Some((first, file));
        Ok(())
    }

    /// The ready spare as segment `first` ([`Spares::adopt`]). `None` when no spare is ready or
    /// it could not be prepared before the rename (the caller creates the segment instead).
    fn adopt_spare(&mut self, first: Lsn) -> Result<Option<Box<dyn FsFile>>, StorageError> {
        let Some(file) = self.spares.take() else {
            return Ok(None);
        };
        let path = self.dir.join(segment_name(first));
        self.spares.adopt(file, &segment_header(first), &path)
    }

    fn check(&self) -> Result<(), StorageError> {
        match &self.failed {
            Some(e) => Err(StorageError::poisoned(e)),
            None => Ok(()),
        }
    }

    /// Runs a mutation; a failure poisons the log.
    fn guarded(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<(), StorageError>,
    ) -> Result<(), StorageError> {
        self.check()?;
        let out = f(self);
        if let Err(e) = &out {
            self.failed = Some(e.clone());
        }
        out
    }

    fn do_append(&mut self, records: &[RaftRecord]) -> Result<(), StorageError> {
        let Some(first) = records.first().map(|r| r.id.index) else {
            return Ok(());
        };
        for pair in records.windows(2) {
            if pair[1].id.index != pair[0].id.index + 1 {
                return Err(StorageError::InvalidInput(format!(
                    "raft log append: index {} after {}",
                    pair[1].id.index, pair[0].id.index
                )));
            }
        }
        // Entries at or after `first` are replaced (openraft truncates before it appends, but
        // an append over held entries means the same).
        if self.entries.range(first..).next().is_some() {
            self.do_truncate(first)?;
        }
        // A new segment when there is none, when the active one is full, or when the indexes
        // jump (after a purge past the end), so a segment's records are consecutive.
        let follows_active = match self.active.as_ref() {
            None => false,
            Some((seg, _)) => {
                let seg_last = self.entries.range(*seg..).next_back().map(|(i, _)| *i);
                match seg_last {
                    Some(l) => first == l + 1,
                    None => first == *seg,
                }
            }
        };
        let end = self
            .active
            .as_ref()
            .and_then(|(seg, _)| self.segments.get(seg))
            .map(|s| s.end);
        let full = end.is_some_and(|e| e >= self.segment_bytes);
        // Not a spare (or past its zeros) while one is ready: move on to it.
        let unzeroed = end.is_some_and(|e| e >= self.zeroed) && self.spares.ready();
        if !follows_active || full || unzeroed {
            self.start_segment(first)?;
        }
        let Some((seg, file)) = self.active.as_mut() else {
            return Err(StorageError::InvalidInput(
                "raft log has no active segment".into(),
            ));
        };
        let seg = *seg;
        let start = self
            .segments
            .get(&seg)
            .map_or(RAFT_HEADER_LEN as u64, |s| s.end);
        let mut buf = Vec::new();
        let mut offsets = Vec::with_capacity(records.len());
        for r in records {
            offsets.push(start + buf.len() as u64);
            encode_raft_record(&mut buf, r, first);
        }
        let path = self.dir.join(segment_name(seg));
        moodb_core::failpoint::io(moodb_core::failpoint::WAL_WRITE)
            .context(|| format!("write {}", path.display()))?;
        file.write_all_at(&buf, start)
            .context(|| format!("write {}", path.display()))?;
        moodb_core::failpoint::io(moodb_core::failpoint::WAL_FSYNC)
            .context(|| format!("fdatasync {}", path.display()))?;
        file.sync_data()
            .context(|| format!("fdatasync {}", path.display()))?;
        let end = start + buf.len() as u64;
        if let Some(s) = self.segments.get_mut(&seg) {
            s.end = end;
        }
        // The next segment's zeros are made while this one fills (at once when it is not a
        // spare), so they are ready when it is full.
        if end >= self.zeroed || end >= self.segment_bytes / 8 {
            self.spares.request();
        }
        for (r, offset) in records.iter().zip(offsets) {
            self.entries.insert(
                r.id.index,
                Held {
                    record: r.clone(),
                    segment: seg,
                    offset,
                },
            );
        }
        Ok(())
    }

    fn do_truncate(&mut self, from: Lsn) -> Result<(), StorageError> {
        let Some(held) = self.entries.get(&from).cloned() else {
            // Nothing held at or after `from` but maybe later entries.
            let later: Vec<Lsn> = self.entries.range(from..).map(|(i, _)| *i).collect();
            if later.is_empty() {
                return Ok(());
            }
            return self.do_truncate(later[0]);
        };
        // Newest segments first, so a power cut midway leaves a log without holes.
        let later: Vec<Lsn> = self
            .segments
            .range(held.segment + 1..)
            .map(|(f, _)| *f)
            .rev()
            .collect();
        for seg in later {
            let path = self.dir.join(segment_name(seg));
            self.fs
                .remove(&path)
                .context(|| format!("remove {}", path.display()))?;
            self.segments.remove(&seg);
        }
        self.fs
            .sync_dir(&self.dir)
            .context(|| format!("fsync directory {}", self.dir.display()))?;
        let path = self.dir.join(segment_name(held.segment));
        let mut file = self
            .fs
            .open_write(&path)
            .context(|| format!("open {}", path.display()))?;
        file.set_len(held.offset)
            .context(|| format!("truncate {}", path.display()))?;
        file.sync_all()
            .context(|| format!("fsync {}", path.display()))?;
        if let Some(s) = self.segments.get_mut(&held.segment) {
            s.end = held.offset;
        }
        self.active = Some((held.segment, file));
        // Cut short: appends grow the file again.
        self.zeroed = 0;
        self.entries.split_off(&from);
        Ok(())
    }

    fn do_purge(&mut self, upto: RaftLogId) -> Result<(), StorageError> {
        if self.last_purged.is_some_and(|p| p.index >= upto.index) {
            return Ok(());
        }
        // The purge point first: entries at or below it are then ignored whatever is left.
        write_small_file(&*self.fs, &self.dir, PURGED_NAME, &encode_log_id(&upto))?;
        self.last_purged = Some(upto);
        let keep = self.entries.split_off(&(upto.index.saturating_add(1)));
        self.entries = keep;
        // A segment goes when the next one starts at or below the first entry kept; the
        // active one stays (its purged entries are ignored).
        let firsts: Vec<Lsn> = self.segments.keys().copied().collect();
        let mut removed = false;
        for pair in firsts.windows(2) {
            if pair[1] <= upto.index.saturating_add(1) {
                let path = self.dir.join(segment_name(pair[0]));
                self.fs
                    .remove(&path)
                    .context(|| format!("remove {}", path.display()))?;
                self.segments.remove(&pair[0]);
                removed = true;
            }
        }
        if removed {
            self.fs
                .sync_dir(&self.dir)
                .context(|| format!("fsync directory {}", self.dir.display()))?;
        }
        Ok(())
    }

    /// The names of the segments held, oldest first (for tests and tools).
    pub fn segment_names(&self) -> Vec<String> {
        self.segments.keys().map(|f| segment_name(*f)).collect()
    }
}

/// A record read from a segment by [`scan_segment`], with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRaftRecord {
    /// Byte offset of the frame in the file.
    pub offset: u64,
    /// Bytes the frame takes, header included.
    pub len: u64,
    /// Index of the first record of the append (group) that wrote it.
    pub group_first: Lsn,
    pub record: RaftRecord,
}

/// How a segment's records end, as opening the raft log judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaftSegmentEnd {
    /// The end of the file, or only zeros after the last record (a zero tail).
    Clean { valid_end: u64 },
    /// Damage at `offset` followed by nothing valid, or only by records of the same unfinished
    /// group: cut there in the last segment, refused in any other. `damaged_bytes` counts up
    /// to the last non-zero byte.
    TornTail {
        offset: u64,
        damaged_bytes: u64,
        reason: String,
    },
    /// Damage at `offset` followed by valid records of other groups: refused.
    MidLogDamage {
        offset: u64,
        reason: String,
        next_valid_offset: u64,
        valid_records_after: u64,
    },
    /// A valid record at `offset` whose index does not follow the one before it: refused.
    OutOfOrder { offset: u64, reason: String },
}

/// What [`scan_segment`] read: the valid records in order, then how they end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftSegmentScan {
    /// The first index the header says.
    pub first_index: Lsn,
    pub records: Vec<ScannedRaftRecord>,
    pub end: RaftSegmentEnd,
}

/// Reads the segment `bytes` as opening the raft log does: the header (against the first index
/// of the segment's name, if given; `Err` says why it is unusable), then each record up to the
/// zero tail or the first damage. `prev_last` is the last index of the segments before this
/// one: a record at or below it is out of order. Recovery and `moodb wal dump` both use it.
pub fn scan_segment(
    bytes: &[u8],
    first: Option<Lsn>,
    prev_last: Option<Lsn>,
) -> Result<RaftSegmentScan, String> {
    check_segment_header(bytes, first)?;
    let first = u64_at(bytes, 16);
    let nonzero_end = super::log::nonzero_end(bytes);
    let mut records: Vec<ScannedRaftRecord> = Vec::new();
    let mut at = RAFT_HEADER_LEN;
    let end = loop {
        if at >= bytes.len() || at >= nonzero_end {
            break RaftSegmentEnd::Clean {
                valid_end: at as u64,
            };
        }
        let last_in_segment = records.last().map(|r| r.record.id.index);
        match parse_frame(&bytes[at..]) {
            Ok(p) => {
                let index = p.record.id.index;
                let in_order = match last_in_segment {
                    Some(l) => index == l + 1,
                    None => index >= first,
                };
                let last_index = last_in_segment.or(prev_last);
                if !in_order || last_index.is_some_and(|l| index <= l) {
                    break RaftSegmentEnd::OutOfOrder {
                        offset: at as u64,
                        reason: format!(
                            "record index {index} out of order (after {last_index:?}, in the \
                             segment from {first})"
                        ),
                    };
                }
                records.push(ScannedRaftRecord {
                    offset: at as u64,
                    len: p.len as u64,
                    group_first: p.group_first,
                    record: p.record,
                });
                at += p.len;
            }
            Err(reason) => {
                let after = valid_after(bytes, at, nonzero_end);
                let next = last_in_segment.map_or(first, |l| l + 1);
                break if only_same_group(&after, next) {
                    RaftSegmentEnd::TornTail {
                        offset: at as u64,
                        damaged_bytes: (nonzero_end - at) as u64,
                        reason,
                    }
                } else {
                    RaftSegmentEnd::MidLogDamage {
                        offset: at as u64,
                        reason,
                        next_valid_offset: after.first().map_or(0, |a| a.0 as u64),
                        valid_records_after: after.len() as u64,
                    }
                };
            }
        }
    };
    Ok(RaftSegmentScan {
        first_index: first,
        records,
        end,
    })
}

/// The valid frames after damage at `at`, probing byte by byte up to the zero tail (a frame
/// starting before it may end in zeros): (offset, group, index).
fn valid_after(bytes: &[u8], at: usize, nonzero_end: usize) -> Vec<(usize, Lsn, Lsn)> {
    let mut probe = at + 1;
    let mut found = Vec::new();
    while probe < nonzero_end && probe + RAFT_RECORD_HEADER_LEN <= bytes.len() {
        match parse_frame(&bytes[probe..]) {
            Ok(p) => {
                found.push((probe, p.group_first, p.record.id.index));
                probe += p.len;
            }
            Err(_) => probe += 1,
        }
    }
    found
}

/// Whether nothing valid follows the damage, or only records of the group that the damaged
/// record, expected at index `next`, belongs to (one started at or before it): a torn tail of
/// one unfinished append. The damaged record may be the segment's first.
fn only_same_group(after: &[(usize, Lsn, Lsn)], next: Lsn) -> bool {
    let Some((_, g, _)) = after.first().copied() else {
        return true;
    };
    g <= next
        && after
            .iter()
            .all(|(_, g2, index)| *g2 == g && *index >= next)
}

impl RaftLog for PaperRaftLog {
    fn state(&self) -> RaftLogState {
        let last = self
            .entries
            .values()
            .next_back()
            .map(|h| h.record.id)
            .or(self.last_purged);
        RaftLogState {
            last_purged: self.last_purged,
            last,
        }
    }

    fn entries(&self, from: Lsn, until: Lsn) -> Vec<RaftRecord> {
        if from >= until {
            return Vec::new();
        }
        self.entries
            .range(from..until)
            .map(|(_, h)| h.record.clone())
            .collect()
    }

    fn append(&mut self, records: &[RaftRecord]) -> Result<(), StorageError> {
        self.guarded(|log| log.do_append(records))
    }

    fn truncate(&mut self, from: Lsn) -> Result<(), StorageError> {
        self.guarded(|log| log.do_truncate(from))
    }

    fn purge(&mut self, upto: RaftLogId) -> Result<(), StorageError> {
        self.guarded(|log| log.do_purge(upto))
    }

    fn vote(&self) -> Option<Vec<u8>> {
        self.vote.clone()
    }

    fn save_vote(&mut self, vote: &[u8]) -> Result<(), StorageError> {
        self.guarded(|log| {
            write_small_file(&*log.fs, &log.dir, VOTE_NAME, vote)?;
            log.vote = Some(vote.to_vec());
            Ok(())
        })
    }

    fn snapshot_files(&self) -> Box<dyn SnapshotFiles> {
        Box::new(PaperSnapshotFiles {
            fs: self.fs.clone(),
            dir: self.dir.clone(),
        })
    }
}

pub const SNAPSHOT_MAGIC: &[u8; 8] = b"MOODBRSN";
pub const SNAPSHOT_VERSION: u32 = 1;
pub const SNAPSHOT_PREFIX: &str = "raftsnap-";
pub const SNAPSHOT_HEADER_LEN: usize = 48;
/// The largest meta a snapshot header may announce (a membership of a few nodes is < 1 KiB).
const MAX_SNAPSHOT_META: usize = 16 << 20;

/// The file name of the raft snapshot whose last index is `index`.
pub fn snapshot_name(index: Lsn) -> String {
    format!("{SNAPSHOT_PREFIX}{index:020}")
}

fn parse_snapshot_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_prefix(SNAPSHOT_PREFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The raft header of a snapshot file (48 bytes, then the meta, then the checkpoint):
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `MOODBRSN` |
/// | 8 | 4 | version (1) |
/// | 12 | 4 | flags: 1 = a last log id is set |
/// | 16 | 8 | term of the last included entry |
/// | 24 | 8 | node id of its leader |
/// | 32 | 8 | index of the last included entry (= the checkpoint's LSN) |
/// | 40 | 4 | meta length `m` |
/// | 44 | 4 | CRC32C of bytes 0..44 and the meta |
/// | 48 | m | meta (the replication layer's JSON: membership, snapshot id) |
/// | 48+m | … | the checkpoint, in the checkpoint format with its own checksums |
pub fn encode_snapshot_header(last: Option<RaftLogId>, meta: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + meta.len());
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&u32::from(last.is_some()).to_le_bytes());
    let id = last.unwrap_or_default();
    out.extend_from_slice(&id.term.to_le_bytes());
    out.extend_from_slice(&id.node.to_le_bytes());
    out.extend_from_slice(&id.index.to_le_bytes());
    out.extend_from_slice(&(meta.len() as u32).to_le_bytes());
    let mut crc = crc32c::crc32c(&out);
    crc = crc32c::crc32c_append(crc, meta);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(meta);
    out
}

/// A snapshot file's raft header: the last log id, the meta and where the checkpoint starts;
/// `Err((offset, reason))` at damage.
#[allow(clippy::type_complexity)]
pub fn parse_snapshot_header(
    bytes: &[u8],
) -> Result<(Option<RaftLogId>, &[u8], usize), (u64, String)> {
    if bytes.len() < SNAPSHOT_HEADER_LEN || &bytes[0..8] != SNAPSHOT_MAGIC {
        return Err((0, "not a MooDB raft snapshot (magic MOODBRSN)".into()));
    }
    let version = u32_at(bytes, 8);
    if version != SNAPSHOT_VERSION {
        return Err((
            8,
            format!("raft snapshot version {version}, this build reads 1"),
        ));
    }
    let m = u32_at(bytes, 40) as usize;
    if m > MAX_SNAPSHOT_META || bytes.len() < SNAPSHOT_HEADER_LEN + m {
        return Err((40, format!("meta length {m} runs past the file")));
    }
    let mut crc = crc32c::crc32c(&bytes[..44]);
    crc = crc32c::crc32c_append(crc, &bytes[SNAPSHOT_HEADER_LEN..SNAPSHOT_HEADER_LEN + m]);
    if crc != u32_at(bytes, 44) {
        return Err((44, "raft header checksum mismatch".into()));
    }
    let last = (u32_at(bytes, 12) & 1 == 1).then(|| RaftLogId {
        term: u64_at(bytes, 16),
        node: u64_at(bytes, 24),
        index: u64_at(bytes, 32),
    });
    Ok((
        last,
        &bytes[SNAPSHOT_HEADER_LEN..SNAPSHOT_HEADER_LEN + m],
        SNAPSHOT_HEADER_LEN + m,
    ))
}

/// Raft snapshots as `raftsnap-<index>` files next to the raft log.
#[derive(Debug, Clone)]
pub struct PaperSnapshotFiles {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
}

impl PaperSnapshotFiles {
    /// The snapshot files in `dir`, by index (for tests and tools).
    pub fn names(fs: &dyn Fs, dir: &Path) -> Result<Vec<(Lsn, String)>, StorageError> {
        let mut names: Vec<(Lsn, String)> = fs
            .list_dir(dir)
            .context(|| format!("list {}", dir.display()))?
            .into_iter()
            .filter_map(|n| parse_snapshot_name(&n).map(|i| (i, n)))
            .collect();
        names.sort();
        Ok(names)
    }
}

impl SnapshotFiles for PaperSnapshotFiles {
    fn save(&self, snapshot: &StoredRaftSnapshot) -> Result<(), StorageError> {
        let index = snapshot.last.map_or(0, |l| l.index);
        let name = snapshot_name(index);
        let path = self.dir.join(&name);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let header = encode_snapshot_header(snapshot.last, &snapshot.meta);
        let mut file = self
            .fs
            .create(&tmp)
            .context(|| format!("create {}", tmp.display()))?;
        file.write_all_at(&header, 0)
            .context(|| format!("write {}", tmp.display()))?;
        file.write_all_at(&snapshot.checkpoint, header.len() as u64)
            .context(|| format!("write {}", tmp.display()))?;
        file.sync_all()
            .context(|| format!("fsync {}", tmp.display()))?;
        drop(file);
        self.fs
            .rename(&tmp, &path)
            .context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
        self.fs
            .sync_dir(&self.dir)
            .context(|| format!("fsync directory {}", self.dir.display()))?;
        // Only once the new one is current: the older ones and leftover temporaries.
        for n in self
            .fs
            .list_dir(&self.dir)
            .context(|| format!("list {}", self.dir.display()))?
        {
            let old = parse_snapshot_name(&n).is_some_and(|i| i < index)
                || (n.starts_with(SNAPSHOT_PREFIX) && n.ends_with(".tmp"));
            if old {
                let p = self.dir.join(&n);
                self.fs
                    .remove(&p)
                    .context(|| format!("remove {}", p.display()))?;
            }
        }
        Ok(())
    }

    fn newest(&self) -> Result<Option<StoredRaftSnapshot>, StorageError> {
        let names = Self::names(&*self.fs, &self.dir)?;
        let Some((_, name)) = names.last() else {
            return Ok(None);
        };
        let path = self.dir.join(name);
        let bytes = self
            .fs
            .read(&path)
            .context(|| format!("read {}", path.display()))?;
        let (last, meta, at) =
            parse_snapshot_header(&bytes).map_err(|(offset, reason)| StorageError::Corrupt {
                file: path.clone(),
                offset,
                reason,
            })?;
        Ok(Some(StoredRaftSnapshot {
            last,
            meta: meta.to_vec(),
            checkpoint: bytes[at..].to_vec(),
        }))
    }
}

/// Raft snapshots in the checkpoint format: its LSN is the snapshot's last applied index.
#[derive(Debug, Default, Clone, Copy)]
pub struct PaperSnapshotCodec;

impl SnapshotCodec for PaperSnapshotCodec {
    fn encode(
        &self,
        state: &Databases,
        last_index: Lsn,
        created_unix_ms: u64,
    ) -> Result<Vec<u8>, StorageError> {
        encode_checkpoint(
            last_index,
            created_unix_ms,
            state.len() as u64,
            state.entries(),
        )
        .context(|| "encode a raft snapshot".to_string())
    }

    fn decode(&self, bytes: &[u8]) -> Result<(Databases, Lsn), StorageError> {
        let corrupt = |e: super::checkpoint::CheckpointError| StorageError::Corrupt {
            file: PathBuf::from("<raft snapshot>"),
            offset: e.offset,
            reason: e.reason,
        };
        let reader = CheckpointReader::new(bytes).map_err(corrupt)?;
        let state = reader.load().map_err(corrupt)?;
        Ok((state, reader.header().lsn))
    }
}
