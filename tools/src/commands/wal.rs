//! `moodb wal dump`: prints the records of a log segment (or of every segment of a data
//! directory, in LSN order), where the valid records end, and at damage where it is, what is
//! wrong and what recovery will do about it. Parsing is `moodb_backends::paper::log`'s.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use moodb_backends::paper::files::LOG_PREFIX;
use moodb_backends::paper::log::{LogEnd, LogScanner, LOG_HEADER_LEN, LOG_MAGIC};
use moodb_backends::paper::FileKind;
use moodb_core::{Lsn, Record};
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

/// Prints every record of a log segment (offset, LSN, group, kind, key, value), a summary, and
/// where and how the segment is damaged: a torn tail (recovery cuts it) or mid-log corruption
/// (recovery refuses to start).
#[derive(Debug, Args)]
#[command(after_help = inspect::EXIT_CODES_HELP)]
pub struct DumpArgs {
    /// A log segment (`log-<lsn>`), or a data directory: then every segment in it, in LSN order.
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
    /// Files in the directory that recovery does not read (`*.damaged`, `*.discarded`).
    not_dumped: Vec<String>,
    summary: Summary,
}

#[derive(Debug, Serialize)]
struct Summary {
    segments: usize,
    records: u64,
    /// Bytes taken by the valid records, headers included.
    record_bytes: u64,
    first_lsn: Option<Lsn>,
    last_lsn: Option<Lsn>,
    damaged: bool,
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
        not_dumped: Vec::new(),
        summary: Summary {
            segments: 0,
            records: 0,
            record_bytes: 0,
            first_lsn: None,
            last_lsn: None,
            damaged: false,
        },
    };
    let paths: Vec<PathBuf> = if args.path.is_dir() {
        let files = inspect::list_dir(&args.path)?;
        if files.logs.is_empty() {
            return Err(InspectError::NothingInDir {
                what: "log segment",
                pattern: FileKind::Log(1).name(),
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
            .collect();
        files.logs.into_iter().map(|(_, p)| p).collect()
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
        writeln!(
            out,
            "data directory {dir}: {} in LSN order",
            plural(dump.segments.len() as u64, "log segment", "log segments")
        )?;
        for name in &dump.not_dumped {
            writeln!(
                out,
                "not dumped: {name} (not read by recovery; pass its path to dump it)"
            )?;
        }
        writeln!(out)?;
    }
    for segment in &dump.segments {
        render_segment(segment, out)?;
        writeln!(out)?;
    }
    let s = &dump.summary;
    let lsns = match (s.first_lsn, s.last_lsn) {
        (Some(first), Some(last)) => format!("lsn {first}..{last}"),
        _ => "no lsn".to_string(),
    };
    writeln!(
        out,
        "summary: {}, {}, {} of records, {lsns}, {}",
        plural(s.segments as u64, "segment", "segments"),
        plural(s.records, "record", "records"),
        plural(s.record_bytes, "byte", "bytes"),
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
    match &segment.end {
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
            if *newest_segment {
                writeln!(
                    out,
                    "  torn tail: no valid record of another group follows ({} up to the last \
                     non-zero byte). Recovery cuts the segment at offset {offset}; under \
                     sync=always no acknowledged write is lost.",
                    plural(*damaged_bytes, "damaged byte", "damaged bytes")
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
            writeln!(
                out,
                "  mid-log corruption: {} follow, the first at offset {next_valid_offset}, so \
                 this is not a torn write. Recovery refuses to start; salvage keeps only the \
                 records before offset {offset}.",
                plural(*valid_records_after, "valid record", "valid records")
            )?;
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
