//! `moodb wal dump`: prints the records of a log segment (or of every segment of a data
//! directory, in LSN order), where the valid records end, and at damage where it is, what is
//! wrong and what recovery will do about it. Single-node `log-*` segments are parsed by
//! `moodb_backends::paper::log`; a cluster node's raft log (`raftlog-*` segments, `raft-vote`,
//! `raft-purged`) by `moodb_backends::paper::raft_log`, which recovery uses too.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use moodb_backends::paper::files::LOG_PREFIX;
use moodb_backends::paper::fs::StdFs;
use moodb_backends::paper::log::{LogEnd, LogScanner, LOG_HEADER_LEN, LOG_MAGIC};
use moodb_backends::paper::raft_log::{
    self, RaftSegmentEnd, PURGED_NAME, RAFT_HEADER_LEN, RAFT_LOG_MAGIC, RAFT_LOG_VERSION,
    RAFT_SEGMENT_PREFIX, RAFT_SPARE_NAME, VOTE_NAME,
};
use moodb_backends::paper::FileKind;
use moodb_core::replicated::{RaftLogId, RaftPayload};
use moodb_core::{Lsn, Record, StorageError};
use serde::Serialize;

use crate::inspect::escape::Shown;
use crate::inspect::{self, plural, time, InspectError};

/// Reads write-ahead log segments.
#[derive(Debug, Args)]
pub struct WalArgs {
    #[command(subcommand)]
    command: WalCommand,
}

#[derive(Debug, Subcommand)]
enum WalCommand {
    Dump(DumpArgs),
}

/// Prints every record of a log segment (offset, LSN, group, kind, key, value; in a raft log
/// segment each entry's index, term, leader node and group), a summary, and where and how the
/// segment is damaged: a torn tail (recovery cuts it) or mid-log corruption (recovery refuses to
/// start).
#[derive(Debug, Args)]
#[command(after_help = inspect::EXIT_CODES_HELP)]
pub struct DumpArgs {
    /// A log segment (`log-<lsn>`, or a cluster node's `raftlog-<index>`), or a data directory:
    /// then every segment in it, in LSN (index) order, and the raft vote and purge point.
    path: PathBuf,

    /// Show keys and values whole (by default they are cut after 64 bytes).
    #[arg(long)]
    full: bool,

    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Everything the dump found; printed as text or serialized as JSON.
#[derive(Debug, Serialize)]
struct Dump {
    /// The data directory, when PATH was one.
    directory: Option<String>,
    segments: Vec<Segment>,
    /// A cluster node's raft log segments (`raftlog-*`), in index order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    raft_segments: Vec<RaftSegment>,
    /// The raft vote (`raft-vote`), when the directory holds one.
    #[serde(skip_serializing_if = "Option::is_none")]
    raft_vote: Option<RaftStateFile>,
    /// The raft log's purge point (`raft-purged`), when the directory holds one.
    #[serde(skip_serializing_if = "Option::is_none")]
    raft_purged: Option<RaftStateFile>,
    /// Files in the directory that recovery does not read (`*.damaged`, `*.discarded`,
    /// `raftlog-spare`).
    not_dumped: Vec<String>,
    summary: Summary,
}

/// A raft log segment (cluster mode).
#[derive(Debug, Serialize)]
struct RaftSegment {
    file: String,
    file_bytes: u64,
    format_version: Option<u32>,
    first_index: Option<Lsn>,
    records: Vec<RaftRecordView>,
    end: End,
}

/// One raft log entry.
#[derive(Debug, Serialize)]
struct RaftRecordView {
    offset: u64,
    len: u64,
    index: Lsn,
    term: u64,
    /// The node id of the leader that proposed it.
    node: u64,
    /// The index of the first entry of the append (group) that wrote it.
    group: Lsn,
    /// Always `ok`: a record whose checksum fails is reported as damage instead.
    checksum: &'static str,
    /// `blank`, `record` or `membership`.
    kind: &'static str,
    /// At or below the purge point: recovery ignores it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    purged: bool,
    /// A `record` entry's record, as a single-node dump shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<Op>,
    /// A `membership` entry's bytes: openraft's membership as JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    membership: Option<String>,
}

/// `raft-vote` or `raft-purged`: what it holds, or where it is damaged.
#[derive(Debug, Serialize)]
struct RaftStateFile {
    file: String,
    /// The vote as openraft saved it (JSON text).
    #[serde(skip_serializing_if = "Option::is_none")]
    vote: Option<String>,
    /// The log id of the last purged entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_purged: Option<LogIdView>,
    /// Why the file cannot be used (recovery refuses to open the raft log).
    #[serde(skip_serializing_if = "Option::is_none")]
    damage: Option<FileDamage>,
}

#[derive(Debug, Serialize)]
struct LogIdView {
    index: Lsn,
    term: u64,
    node: u64,
}

#[derive(Debug, Serialize)]
struct FileDamage {
    offset: u64,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Summary {
    segments: usize,
    records: u64,
    /// Bytes taken by the valid records, headers included.
    record_bytes: u64,
    first_lsn: Option<Lsn>,
    last_lsn: Option<Lsn>,
    /// The raft log's figures, when raft segments were dumped.
    #[serde(skip_serializing_if = "Option::is_none")]
    raft: Option<RaftSummary>,
    damaged: bool,
}

#[derive(Debug, Default, Serialize)]
struct RaftSummary {
    segments: usize,
    entries: u64,
    /// Bytes taken by the valid entries, headers included.
    entry_bytes: u64,
    first_index: Option<Lsn>,
    last_index: Option<Lsn>,
}

#[derive(Debug, Serialize)]
struct Segment {
    file: String,
    file_bytes: u64,
    format_version: Option<u32>,
    first_lsn: Option<Lsn>,
    records: Vec<RecordView>,
    end: End,
}

#[derive(Debug, Serialize)]
struct RecordView {
    offset: u64,
    len: u64,
    lsn: Lsn,
    group_index: u32,
    /// Always `ok`: a record whose checksum fails is reported as damage instead.
    checksum: &'static str,
    #[serde(flatten)]
    op: Op,
}

/// A decoded record payload.
#[derive(Debug, Serialize)]
struct Op {
    kind: &'static str,
    /// The database a keyed record (or a clear) is in, when it is not 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    db: Option<u16>,
    /// The two databases a swapdb swaps.
    #[serde(skip_serializing_if = "Option::is_none")]
    swap: Option<[u16; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<Shown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<Shown>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at_ms: Option<u64>,
    /// The records of a transaction.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    records: Vec<Op>,
}

impl Op {
    fn new(record: &Record, full: bool) -> Op {
        let mut op = Op {
            kind: record.kind(),
            db: None,
            swap: None,
            key: None,
            value: None,
            expires_at_ms: None,
            records: Vec::new(),
        };
        match record {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => {
                op.key = Some(Shown::new(key, full));
                op.value = Some(Shown::new(value, full));
                op.expires_at_ms = *expires_at_ms;
            }
            Record::Update { key, value } => {
                op.key = Some(Shown::new(key, full));
                op.value = Some(Shown::new(value, full));
            }
            Record::Delete { key } => op.key = Some(Shown::new(key, full)),
            Record::Clear | Record::ClearAll => {}
            Record::Txn(inner) => op.records = inner.iter().map(|r| Op::new(r, full)).collect(),
            Record::SwapDb { a, b } => op.swap = Some([*a, *b]),
            Record::InDb { db, record } => {
                op = Op::new(record, full);
                op.db = Some(*db);
            }
        }
        op
    }
}

/// How a segment ends.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum End {
    /// Only zeros (preallocated space) after the last record.
    Clean {
        valid_end: u64,
        zero_bytes_after: u64,
    },
    /// Damage with nothing valid after it but records of the same unfinished group.
    TornTail {
        offset: u64,
        reason: String,
        damaged_bytes: u64,
        /// Only a torn tail of the newest segment is a crash artefact recovery cuts.
        newest_segment: bool,
    },
    /// Damage followed by valid records of other groups.
    MidLogDamage {
        offset: u64,
        reason: String,
        next_valid_offset: u64,
        valid_records_after: u64,
    },
    /// A valid raft record whose index does not follow the one before it.
    OutOfOrder { offset: u64, reason: String },
    /// The file header cannot be used: no record was read.
    BadHeader {
        offset: u64,
        reason: String,
        interrupted_creation: bool,
    },
}

impl End {
    fn is_damage(&self) -> bool {
        !matches!(self, End::Clean { .. })
    }
}

/// Runs `moodb wal <command>`.
pub fn run(args: WalArgs) -> Result<ExitCode, Box<dyn Error>> {
    match args.command {
        WalCommand::Dump(args) => dump(args),
    }
}

fn dump(args: DumpArgs) -> Result<ExitCode, Box<dyn Error>> {
    let mut dump = Dump {
        directory: None,
        segments: Vec::new(),
        raft_segments: Vec::new(),
        raft_vote: None,
        raft_purged: None,
        not_dumped: Vec::new(),
        summary: Summary {
            segments: 0,
            records: 0,
            record_bytes: 0,
            first_lsn: None,
            last_lsn: None,
            raft: None,
            damaged: false,
        },
    };
    let mut raft_paths: Vec<PathBuf> = Vec::new();
    let mut purged: Option<Lsn> = None;
    let paths: Vec<PathBuf> = if args.path.is_dir() {
        let files = inspect::list_dir(&args.path)?;
        let raft = list_raft_dir(&args.path)?;
        if files.logs.is_empty() && raft.segments.is_empty() {
            return Err(InspectError::NothingInDir {
                what: "log segment",
                pattern: format!(
                    "{} or {}",
                    FileKind::Log(1).name(),
                    raft_log::segment_name(1)
                ),
                path: args.path,
            }
            .into());
        }
        dump.directory = Some(args.path.display().to_string());
        dump.not_dumped = files
            .others
            .iter()
            .filter(|p| inspect::file_label(p).starts_with(LOG_PREFIX))
            .map(|p| inspect::file_label(p))
            .chain(raft.others)
            .collect();
        dump.raft_vote = read_vote(&args.path)?;
        dump.raft_purged = read_purged(&args.path)?;
        purged = dump
            .raft_purged
            .as_ref()
            .and_then(|p| p.last_purged.as_ref())
            .map(|p| p.index);
        raft_paths = raft.segments.into_iter().map(|(_, p)| p).collect();
        files.logs.into_iter().map(|(_, p)| p).collect()
    } else if inspect::file_label(&args.path) == RAFT_SPARE_NAME {
        dump.not_dumped.push(RAFT_SPARE_NAME.to_string());
        Vec::new()
    } else if is_raft_segment(&args.path) {
        raft_paths.push(args.path.clone());
        Vec::new()
    } else {
        vec![args.path.clone()]
    };
    for (i, path) in paths.iter().enumerate() {
        let segment = read_segment(path, i + 1 == paths.len(), args.full)?;
        let s = &mut dump.summary;
        s.segments += 1;
        s.records += segment.records.len() as u64;
        s.record_bytes += segment.records.iter().map(|r| r.len).sum::<u64>();
        s.first_lsn = s.first_lsn.or(segment.records.first().map(|r| r.lsn));
        s.last_lsn = segment.records.last().map(|r| r.lsn).or(s.last_lsn);
        s.damaged |= segment.end.is_damage();
        dump.segments.push(segment);
    }
    let mut prev_last: Option<Lsn> = None;
    for (i, path) in raft_paths.iter().enumerate() {
        let newest = i + 1 == raft_paths.len();
        let segment = read_raft_segment(path, newest, prev_last, purged, args.full)?;
        prev_last = segment.records.last().map(|r| r.index).or(prev_last);
        let s = dump.summary.raft.get_or_insert_with(RaftSummary::default);
        s.segments += 1;
        s.entries += segment.records.len() as u64;
        s.entry_bytes += segment.records.iter().map(|r| r.len).sum::<u64>();
        s.first_index = s.first_index.or(segment.records.first().map(|r| r.index));
        s.last_index = prev_last;
        dump.summary.damaged |= segment.end.is_damage();
        dump.raft_segments.push(segment);
    }
    dump.summary.damaged |= [&dump.raft_vote, &dump.raft_purged]
        .iter()
        .any(|f| f.as_ref().is_some_and(|f| f.damage.is_some()));
    inspect::print_with(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &dump)?;
            writeln!(out)?;
        } else {
            render(&dump, out)?;
        }
        Ok(())
    })?;
    Ok(if dump.summary.damaged {
        inspect::damage_exit()
    } else {
        ExitCode::SUCCESS
    })
}

/// The raft log's files in a data directory.
#[derive(Debug, Default)]
struct RaftDirFiles {
    /// `raftlog-<index>`, by first index.
    segments: Vec<(Lsn, PathBuf)>,
    /// `raftlog-spare` and interrupted saves of the vote or purge point (`*.tmp`).
    others: Vec<String>,
}

fn list_raft_dir(dir: &Path) -> Result<RaftDirFiles, InspectError> {
    let read_err = |source| InspectError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = RaftDirFiles::default();
    for entry in std::fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(first) = raft_log::parse_segment_name(name) {
            files.segments.push((first, entry.path()));
        } else if name.starts_with(RAFT_SEGMENT_PREFIX)
            || name != VOTE_NAME && name.starts_with(VOTE_NAME)
            || name != PURGED_NAME && name.starts_with(PURGED_NAME)
        {
            files.others.push(name.to_string());
        }
    }
    files.segments.sort();
    files.others.sort();
    Ok(files)
}

/// Whether `path` is a raft log segment: by its name, or else by its magic.
fn is_raft_segment(path: &Path) -> bool {
    use std::io::Read;
    if raft_log::parse_segment_name(&inspect::file_label(path)).is_some() {
        return true;
    }
    let mut magic = [0u8; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == RAFT_LOG_MAGIC)
}

/// Bytes as text when they are printable UTF-8 (openraft's JSON), else escaped and quoted.
fn text_of(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
        _ => format!("\"{}\"", crate::inspect::escape::escape(bytes)),
    }
}

/// A state file that fails its checks is damage to report; any other error ends the dump.
fn state_file<T>(
    dir: &Path,
    name: &str,
    read: Result<Option<T>, StorageError>,
    show: impl FnOnce(&mut RaftStateFile, T),
) -> Result<Option<RaftStateFile>, StorageError> {
    let mut file = RaftStateFile {
        file: dir.join(name).display().to_string(),
        vote: None,
        last_purged: None,
        damage: None,
    };
    match read {
        Ok(None) => return Ok(None),
        Ok(Some(value)) => show(&mut file, value),
        Err(StorageError::Corrupt { offset, reason, .. }) => {
            file.damage = Some(FileDamage { offset, reason })
        }
        Err(e) => return Err(e),
    }
    Ok(Some(file))
}

/// `raft-vote` in `dir`, if there is one.
fn read_vote(dir: &Path) -> Result<Option<RaftStateFile>, StorageError> {
    let read = raft_log::read_small_file(&StdFs, dir, VOTE_NAME);
    state_file(dir, VOTE_NAME, read, |f, vote| {
        f.vote = Some(text_of(&vote))
    })
}

/// `raft-purged` in `dir`, if there is one.
fn read_purged(dir: &Path) -> Result<Option<RaftStateFile>, StorageError> {
    let read = raft_log::read_purged(&StdFs, dir);
    state_file(dir, PURGED_NAME, read, |f, id: RaftLogId| {
        f.last_purged = Some(LogIdView {
            index: id.index,
            term: id.term,
            node: id.node,
        })
    })
}

/// Scans one raft log segment as opening the raft log does; `prev_last` is the last index of
/// the segments before it, `purged` the purge point.
fn read_raft_segment(
    path: &Path,
    newest: bool,
    prev_last: Option<Lsn>,
    purged: Option<Lsn>,
    full: bool,
) -> Result<RaftSegment, InspectError> {
    let bytes = inspect::read_file(path)?;
    // Only zeros: a segment whose header never reached the disk, reported below.
    if !bytes.iter().all(|b| *b == 0) {
        inspect::check_magic("raft log segment", path, &bytes, RAFT_LOG_MAGIC)?;
    }
    let mut segment = RaftSegment {
        file: path.display().to_string(),
        file_bytes: bytes.len() as u64,
        format_version: None,
        first_index: None,
        records: Vec::new(),
        end: End::Clean {
            valid_end: 0,
            zero_bytes_after: 0,
        },
    };
    let named = raft_log::parse_segment_name(&inspect::file_label(path));
    let scan = match raft_log::scan_segment(&bytes, named, prev_last) {
        Ok(scan) => scan,
        Err(reason) => {
            // As recovery sees it: no longer than a header, the newest is an empty segment.
            let interrupted = bytes.len() <= RAFT_HEADER_LEN;
            let reason = if interrupted {
                format!(
                    "{reason}; no longer than a header: an interrupted creation of the segment \
                     (recovery writes its header again if it is the newest)"
                )
            } else {
                reason
            };
            segment.end = End::BadHeader {
                offset: 0,
                reason,
                interrupted_creation: interrupted,
            };
            return Ok(segment);
        }
    };
    segment.format_version = Some(RAFT_LOG_VERSION);
    segment.first_index = Some(scan.first_index);
    for rec in scan.records {
        let id = rec.record.id;
        let (kind, record, membership) = match &rec.record.payload {
            RaftPayload::Blank => ("blank", None, None),
            RaftPayload::Record(r) => ("record", Some(Op::new(r, full)), None),
            RaftPayload::Membership(m) => ("membership", None, Some(text_of(m))),
        };
        segment.records.push(RaftRecordView {
            offset: rec.offset,
            len: rec.len,
            index: id.index,
            term: id.term,
            node: id.node,
            group: rec.group_first,
            checksum: "ok",
            kind,
            purged: purged.is_some_and(|p| id.index <= p),
            record,
            membership,
        });
    }
    segment.end = match scan.end {
        RaftSegmentEnd::Clean { valid_end } => End::Clean {
            valid_end,
            zero_bytes_after: segment.file_bytes.saturating_sub(valid_end),
        },
        RaftSegmentEnd::TornTail {
            offset,
            damaged_bytes,
            reason,
        } => End::TornTail {
            offset,
            reason,
            damaged_bytes,
            newest_segment: newest,
        },
        RaftSegmentEnd::MidLogDamage {
            offset,
            reason,
            next_valid_offset,
            valid_records_after,
        } => End::MidLogDamage {
            offset,
            reason,
            next_valid_offset,
            valid_records_after,
        },
        RaftSegmentEnd::OutOfOrder { offset, reason } => End::OutOfOrder { offset, reason },
    };
    Ok(segment)
}

/// Scans one segment file.
fn read_segment(path: &Path, newest: bool, full: bool) -> Result<Segment, InspectError> {
    let bytes = inspect::read_file(path)?;
    inspect::check_magic("log segment", path, &bytes, LOG_MAGIC)?;
    let mut segment = Segment {
        file: path.display().to_string(),
        file_bytes: bytes.len() as u64,
        format_version: None,
        first_lsn: None,
        records: Vec::new(),
        end: End::Clean {
            valid_end: 0,
            zero_bytes_after: 0,
        },
    };
    let mut scanner = match LogScanner::new(&bytes) {
        Ok(scanner) => scanner,
        Err(reason) => {
            // As recovery sees it: a header that fails with no byte after it but zeros.
            let interrupted =
                bytes.len() <= LOG_HEADER_LEN || bytes[LOG_HEADER_LEN..].iter().all(|b| *b == 0);
            let reason = if interrupted {
                format!(
                    "{reason}; no other byte than zeros: an interrupted creation of the segment \
                     (recovery removes it if it is the newest)"
                )
            } else {
                reason
            };
            segment.end = End::BadHeader {
                offset: 0,
                reason,
                interrupted_creation: interrupted,
            };
            return Ok(segment);
        }
    };
    let header = scanner.header();
    segment.format_version = Some(header.version);
    segment.first_lsn = Some(header.first_lsn);
    if let Some(FileKind::Log(named)) = inspect::lsn_in_name(path) {
        if named != header.first_lsn {
            segment.end = End::BadHeader {
                offset: 16,
                reason: format!(
                    "header says first lsn {} but the file name says {named}",
                    header.first_lsn
                ),
                interrupted_creation: false,
            };
            return Ok(segment);
        }
    }
    for rec in scanner.by_ref() {
        segment.records.push(RecordView {
            offset: rec.offset,
            len: rec.len,
            lsn: rec.lsn,
            group_index: rec.group_index,
            checksum: "ok",
            op: Op::new(&rec.record, full),
        });
    }
    segment.end = match scanner.finish() {
        LogEnd::Clean { valid_end } => End::Clean {
            valid_end,
            zero_bytes_after: segment.file_bytes.saturating_sub(valid_end),
        },
        LogEnd::TornTail {
            offset,
            damaged_bytes,
            reason,
        } => End::TornTail {
            offset,
            reason,
            damaged_bytes,
            newest_segment: newest,
        },
        LogEnd::MidLogDamage {
            offset,
            reason,
            next_valid_offset,
            valid_records_after,
        } => End::MidLogDamage {
            offset,
            reason,
            next_valid_offset,
            valid_records_after,
        },
    };
    Ok(segment)
}

/// The text output.
fn render(dump: &Dump, out: &mut dyn Write) -> Result<(), InspectError> {
    if let Some(dir) = &dump.directory {
        let mut what = Vec::new();
        if !dump.segments.is_empty() || dump.raft_segments.is_empty() {
            what.push(format!(
                "{} in LSN order",
                plural(dump.segments.len() as u64, "log segment", "log segments")
            ));
        }
        if !dump.raft_segments.is_empty() {
            what.push(format!(
                "{} in index order",
                plural(
                    dump.raft_segments.len() as u64,
                    "raft log segment",
                    "raft log segments"
                )
            ));
        }
        writeln!(out, "data directory {dir}: {}", what.join(", "))?;
    }
    for name in &dump.not_dumped {
        let why = if name == RAFT_SPARE_NAME {
            "a spare segment of zeros made ahead of need: it holds no record; recovery removes it"
        } else if name.ends_with(".tmp") {
            "an interrupted save: recovery removes it"
        } else {
            "not read by recovery; pass its path to dump it"
        };
        writeln!(out, "not dumped: {name} ({why})")?;
    }
    if let Some(vote) = &dump.raft_vote {
        match (&vote.vote, &vote.damage) {
            (_, Some(d)) => writeln!(
                out,
                "raft vote ({VOTE_NAME}): DAMAGE at offset {}: {}; recovery refuses to open the \
                 raft log",
                d.offset, d.reason
            )?,
            (Some(v), None) => writeln!(out, "raft vote ({VOTE_NAME}): {v}")?,
            (None, None) => {}
        }
    }
    if let Some(purged) = &dump.raft_purged {
        match (&purged.last_purged, &purged.damage) {
            (_, Some(d)) => writeln!(
                out,
                "raft purge point ({PURGED_NAME}): DAMAGE at offset {}: {}; recovery refuses to \
                 open the raft log",
                d.offset, d.reason
            )?,
            (Some(p), None) => writeln!(
                out,
                "raft purge point ({PURGED_NAME}): index {}, term {}, leader node {}; entries \
                 at or below it are ignored by recovery",
                p.index, p.term, p.node
            )?,
            (None, None) => {}
        }
    }
    if dump.directory.is_some() || !dump.not_dumped.is_empty() {
        writeln!(out)?;
    }
    for segment in &dump.segments {
        render_segment(segment, out)?;
        writeln!(out)?;
    }
    for segment in &dump.raft_segments {
        render_raft_segment(segment, out)?;
        writeln!(out)?;
    }
    let s = &dump.summary;
    let mut parts = Vec::new();
    if s.segments > 0 || s.raft.is_none() {
        let lsns = match (s.first_lsn, s.last_lsn) {
            (Some(first), Some(last)) => format!("lsn {first}..{last}"),
            _ => "no lsn".to_string(),
        };
        parts.push(format!(
            "{}, {}, {} of records, {lsns}",
            plural(s.segments as u64, "segment", "segments"),
            plural(s.records, "record", "records"),
            plural(s.record_bytes, "byte", "bytes"),
        ));
    }
    if let Some(r) = &s.raft {
        let indexes = match (r.first_index, r.last_index) {
            (Some(first), Some(last)) => format!("index {first}..{last}"),
            _ => "no index".to_string(),
        };
        parts.push(format!(
            "{}, {}, {} of entries, {indexes}",
            plural(r.segments as u64, "raft segment", "raft segments"),
            plural(r.entries, "entry", "entries"),
            plural(r.entry_bytes, "byte", "bytes"),
        ));
    }
    writeln!(
        out,
        "summary: {}, {}",
        parts.join("; "),
        if s.damaged { "DAMAGE FOUND" } else { "clean" }
    )?;
    Ok(())
}

fn render_segment(segment: &Segment, out: &mut dyn Write) -> Result<(), InspectError> {
    let name = inspect::file_label(Path::new(&segment.file));
    match (segment.format_version, segment.first_lsn) {
        (Some(version), Some(first)) => writeln!(
            out,
            "{name}: format {version}, first lsn {first}, {}",
            plural(segment.file_bytes, "byte", "bytes")
        )?,
        _ => writeln!(
            out,
            "{name}: {}",
            plural(segment.file_bytes, "byte", "bytes")
        )?,
    }
    if !segment.records.is_empty() {
        writeln!(
            out,
            "{:>10} {:>10} {:>5}  {:<3}  record",
            "offset", "lsn", "group", "crc"
        )?;
    }
    for rec in &segment.records {
        let prefix = format!(
            "{:>10} {:>10} {:>5}  {:<3}  ",
            rec.offset, rec.lsn, rec.group_index, rec.checksum
        );
        render_op(&rec.op, &prefix, out)?;
        let indent = " ".repeat(prefix.len() + 2);
        for inner in &rec.op.records {
            render_op(inner, &indent, out)?;
        }
    }
    render_end(&segment.end, false, out)
}

fn render_raft_segment(segment: &RaftSegment, out: &mut dyn Write) -> Result<(), InspectError> {
    let name = inspect::file_label(Path::new(&segment.file));
    match (segment.format_version, segment.first_index) {
        (Some(version), Some(first)) => writeln!(
            out,
            "{name}: raft log format {version}, first index {first}, {}",
            plural(segment.file_bytes, "byte", "bytes")
        )?,
        _ => writeln!(
            out,
            "{name}: raft log, {}",
            plural(segment.file_bytes, "byte", "bytes")
        )?,
    }
    if !segment.records.is_empty() {
        writeln!(
            out,
            "{:>10} {:>10} {:>6} {:>5} {:>10}  {:<3}  entry",
            "offset", "index", "term", "node", "group", "crc"
        )?;
    }
    for rec in &segment.records {
        let mut prefix = format!(
            "{:>10} {:>10} {:>6} {:>5} {:>10}  {:<3}  ",
            rec.offset, rec.index, rec.term, rec.node, rec.group, rec.checksum
        );
        if rec.purged {
            prefix.push_str("(purged) ");
        }
        match (&rec.record, &rec.membership) {
            (Some(op), _) => {
                render_op(op, &prefix, out)?;
                let indent = " ".repeat(prefix.len() + 2);
                for inner in &op.records {
                    render_op(inner, &indent, out)?;
                }
            }
            (None, Some(m)) => writeln!(out, "{prefix}membership {m}")?,
            (None, None) => writeln!(out, "{prefix}{}", rec.kind)?,
        }
    }
    render_end(&segment.end, true, out)
}

/// How a segment ends; `raft` for a raft log segment (no salvage; the node does not start).
fn render_end(end: &End, raft: bool, out: &mut dyn Write) -> Result<(), InspectError> {
    let refused = "Recovery refuses to open the raft log, naming this file and offset.";
    match end {
        End::Clean {
            valid_end,
            zero_bytes_after,
        } if raft => {
            if *zero_bytes_after == 0 {
                writeln!(out, "end: clean at offset {valid_end}, the end of the file")?
            } else {
                writeln!(
                    out,
                    "end: clean at offset {valid_end}, then {} of zeros (pre-zeroed, not yet \
                     written)",
                    plural(*zero_bytes_after, "byte", "bytes")
                )?
            }
        }
        End::Clean {
            valid_end,
            zero_bytes_after,
        } => writeln!(
            out,
            "end: clean at offset {valid_end}, then {} of zeros (preallocated)",
            plural(*zero_bytes_after, "byte", "bytes")
        )?,
        End::TornTail {
            offset,
            reason,
            damaged_bytes,
            newest_segment,
        } => {
            writeln!(out, "DAMAGE at offset {offset}: {reason}")?;
            let damaged = plural(*damaged_bytes, "damaged byte", "damaged bytes");
            if *newest_segment && raft {
                writeln!(
                    out,
                    "  torn tail: no valid record of another group follows ({damaged} up to the \
                     last non-zero byte). Recovery cuts the segment at offset {offset}; that \
                     append was never synced, so this node never acknowledged it."
                )?;
            } else if *newest_segment {
                writeln!(
                    out,
                    "  torn tail: no valid record of another group follows ({damaged} up to the \
                     last non-zero byte). Recovery cuts the segment at offset {offset}; under \
                     sync=always no acknowledged write is lost."
                )?;
            } else if raft {
                writeln!(
                    out,
                    "  mid-log corruption: a torn tail in a segment that is not the newest (it \
                     was synced before the next one began). {refused}"
                )?;
            } else {
                writeln!(
                    out,
                    "  mid-log corruption: a torn tail in a segment that is not the newest (it \
                     was synced before the next one began). Recovery refuses to start; salvage \
                     keeps the records before offset {offset} and sets later segments aside."
                )?;
            }
        }
        End::MidLogDamage {
            offset,
            reason,
            next_valid_offset,
            valid_records_after,
        } => {
            writeln!(out, "DAMAGE at offset {offset}: {reason}")?;
            let after = format!(
                "  mid-log corruption: {}, the first at offset {next_valid_offset}, so this is \
                 not a torn write.",
                plural(
                    *valid_records_after,
                    "valid record follows",
                    "valid records follow"
                )
            );
            if raft {
                writeln!(out, "{after} {refused}")?;
            } else {
                writeln!(
                    out,
                    "{after} Recovery refuses to start; salvage keeps only the records before \
                     offset {offset}."
                )?;
            }
        }
        End::OutOfOrder { offset, reason } => {
            writeln!(out, "DAMAGE at offset {offset}: {reason}")?;
            writeln!(out, "  {refused}")?;
        }
        End::BadHeader { offset, reason, .. } => {
            writeln!(out, "DAMAGE at offset {offset} (file header): {reason}")?;
        }
    }
    Ok(())
}

/// One line for a record: `set "k" "v" (expires …)`, `db3 delete "k"` in a database other
/// than 0, `swapdb 0 3`.
fn render_op(op: &Op, prefix: &str, out: &mut dyn Write) -> Result<(), InspectError> {
    write!(out, "{prefix}")?;
    if let Some(db) = op.db {
        write!(out, "db{db} ")?;
    }
    write!(out, "{}", op.kind)?;
    if let Some([a, b]) = op.swap {
        write!(out, " {a} {b}")?;
    }
    if let Some(key) = &op.key {
        write!(out, " {key}")?;
    }
    if let Some(value) = &op.value {
        write!(out, " {value}")?;
    }
    if let Some(ms) = op.expires_at_ms {
        write!(out, " (expires {})", time::utc(ms))?;
    }
    if !op.records.is_empty() {
        write!(
            out,
            " ({})",
            plural(op.records.len() as u64, "record", "records")
        )?;
    }
    writeln!(out)?;
    Ok(())
}
