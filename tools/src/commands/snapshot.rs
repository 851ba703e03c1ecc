//! `moodb snapshot inspect`: prints a checkpoint's header, whether every checksum and count
//! holds, key and value size statistics, and optionally its keys; at damage, where it is and
//! what is wrong. Parsing is `moodb_backends::paper::checkpoint`'s. A raft snapshot
//! (`raftsnap-<index>`, cluster mode) is a raft header before a checkpoint: its last log id,
//! membership and snapshot id are shown first (`moodb_backends::paper::raft_log`).

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use moodb_backends::paper::checkpoint::{CheckpointReader, CHECKPOINT_MAGIC};
use moodb_backends::paper::raft_log::{parse_snapshot_header, SNAPSHOT_MAGIC, SNAPSHOT_PREFIX};
use moodb_backends::paper::FileKind;
use moodb_core::Lsn;
use serde::Serialize;

use crate::inspect::escape::Shown;
use crate::inspect::stats::SizeStats;
use crate::inspect::{self, plural, time, InspectError};

/// Reads checkpoints (snapshots of the whole state).
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    Inspect(InspectArgs),
}

/// Prints a checkpoint's header (format version, LSN, key count, creation time), whether every
/// checksum and count holds, and key and value size statistics; at damage, where and what.
#[derive(Debug, Args)]
#[command(after_help = inspect::EXIT_CODES_HELP)]
pub struct InspectArgs {
    /// A checkpoint (`checkpoint-<lsn>`) or a raft snapshot (`raftsnap-<index>`), or a data
    /// directory: then its newest (current) checkpoint, or in cluster mode its raft snapshot.
    path: PathBuf,

    /// Also list every key, in file order, with its value size and expiry.
    #[arg(long)]
    keys: bool,

    /// Show keys whole (by default they are cut after 64 bytes).
    #[arg(long)]
    full: bool,

    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// Everything the inspection found; printed as text or serialized as JSON.
#[derive(Debug, Serialize)]
struct Report {
    file: String,
    /// Set when PATH was a data directory: why this file was chosen.
    chosen_from: Option<String>,
    file_bytes: u64,
    /// A raft snapshot's raft header (cluster mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    raft: Option<RaftView>,
    header: Option<Header>,
    /// `ok` when every checksum and count holds, else `damaged`.
    verdict: &'static str,
    damage: Option<Damage>,
    /// Entries read (all of them, or those before the damage).
    entries_read: u64,
    keys_with_expiry: u64,
    /// Entries whose value is in a value segment (format 3), and those values' bytes.
    #[serde(skip_serializing_if = "is_zero")]
    spilled_keys: u64,
    #[serde(skip_serializing_if = "is_zero")]
    spilled_bytes: u64,
    /// Each database holding entries, in database order.
    databases: Vec<DbCount>,
    key_bytes: Option<SizeStats>,
    value_bytes: Option<SizeStats>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keys: Option<Vec<KeyView>>,
    /// When PATH is a data directory: each value segment, every value's checksum checked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    value_segments: Vec<SegmentView>,
}

/// One value segment (`values-<n>`) as `check_segment` found it.
#[derive(Debug, Serialize)]
pub(crate) struct SegmentView {
    pub(crate) file: String,
    pub(crate) bytes: u64,
    pub(crate) values: u64,
    pub(crate) value_bytes: u64,
    /// Bytes after the last whole value (a crash's torn tail; no pointer names them).
    pub(crate) torn_bytes: u64,
    /// The first damaged value, naming the offset.
    pub(crate) damage: Option<String>,
    /// The values this checkpoint points to in the segment, and their bytes.
    pub(crate) live_values: u64,
    pub(crate) live_bytes: u64,
    /// Percent of the segment's record bytes that no pointer of the checkpoint names
    /// (compaction rewrites a segment once this passes 100 − `maxmemory-compact-below`).
    pub(crate) stale_percent: f64,
}

/// Every value segment of `dir`, in number order, each value's CRC32C checked (shared with
/// `moodb segment inspect`).
pub(crate) fn check_value_segments(dir: &std::path::Path) -> Vec<SegmentView> {
    use moodb_backends::paper::values::{check_segment, parse_segment_name};
    let mut names: Vec<(u32, String)> = std::fs::read_dir(dir)
        .map(|list| {
            list.filter_map(Result::ok)
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    parse_segment_name(&name).map(|n| (n, name))
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(|(_, name)| {
            let bytes = std::fs::read(dir.join(&name));
            let (len, check) = match &bytes {
                Ok(b) => (
                    b.len() as u64,
                    check_segment(&name, b).map_err(|e| e.to_string()),
                ),
                Err(e) => (0, Err(format!("{name}: {e}"))),
            };
            let found = check.as_ref().ok().copied().unwrap_or_default();
            SegmentView {
                file: name,
                bytes: len,
                values: found.values,
                value_bytes: found.value_bytes,
                torn_bytes: found.torn_bytes,
                damage: check.err(),
                live_values: 0,
                live_bytes: 0,
                stale_percent: 0.0,
            }
        })
        .collect()
}

/// A raft snapshot's header: the last log id it includes and its meta (membership).
#[derive(Debug, Serialize)]
struct RaftView {
    last_term: Option<u64>,
    last_node: Option<u64>,
    last_index: Option<u64>,
    /// The voter sets of the membership (two during a change) and every member's address.
    voters: serde_json::Value,
    nodes: serde_json::Value,
    /// The log id of the membership entry.
    membership_log_index: Option<u64>,
    snapshot_id: String,
    /// Where the checkpoint starts in the file (damage offsets below count from there).
    checkpoint_offset: u64,
}

/// The raft header of `bytes`, if it is a raft snapshot, and the checkpoint after it.
fn split_raft(bytes: &[u8]) -> Result<(Option<RaftView>, &[u8]), Damage> {
    if !bytes.starts_with(SNAPSHOT_MAGIC) {
        return Ok((None, bytes));
    }
    let (last, meta, at) =
        parse_snapshot_header(bytes).map_err(|(offset, reason)| Damage { offset, reason })?;
    let meta: serde_json::Value = serde_json::from_slice(meta).map_err(|e| Damage {
        offset: 48,
        reason: format!("the raft meta is not JSON: {e}"),
    })?;
    let membership = &meta["last_membership"];
    Ok((
        Some(RaftView {
            last_term: last.map(|l| l.term),
            last_node: last.map(|l| l.node),
            last_index: last.map(|l| l.index),
            voters: membership["membership"]["configs"].clone(),
            nodes: membership["membership"]["nodes"].clone(),
            membership_log_index: membership["log_id"]["index"].as_u64(),
            snapshot_id: meta["snapshot_id"].as_str().unwrap_or_default().to_string(),
            checkpoint_offset: at as u64,
        }),
        &bytes[at..],
    ))
}

/// The newest raft snapshot in `dir`, if any.
fn newest_raft_snapshot(dir: &std::path::Path) -> Option<(usize, PathBuf)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_prefix(SNAPSHOT_PREFIX)
                .is_some_and(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    names.sort();
    let n = names.len();
    names.pop().map(|newest| (n, dir.join(newest)))
}

#[derive(Debug, Serialize)]
struct Header {
    format_version: u32,
    lsn: Lsn,
    key_count: u64,
    created_unix_ms: u64,
    created_at: String,
}

#[derive(Debug, Serialize)]
struct Damage {
    offset: u64,
    reason: String,
}

#[derive(Debug, Serialize)]
struct KeyView {
    /// The key's database (SELECT index).
    db: u16,
    key: Shown,
    value_len: usize,
    expires_at_ms: Option<u64>,
    /// Where a spilled value is: `values-<n> @ offset, crc 0x...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pointer: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The entries of one database.
#[derive(Debug, Serialize)]
struct DbCount {
    db: u16,
    keys: u64,
    keys_with_expiry: u64,
}

/// Runs `moodb snapshot <command>`.
pub fn run(args: SnapshotArgs) -> Result<ExitCode, Box<dyn Error>> {
    match args.command {
        SnapshotCommand::Inspect(args) => inspect_checkpoint(args),
    }
}

fn inspect_checkpoint(args: InspectArgs) -> Result<ExitCode, Box<dyn Error>> {
    let (path, chosen_from) = if args.path.is_dir() {
        let files = inspect::list_dir(&args.path)?;
        let n = files.checkpoints.len();
        if n == 0 {
            if let Some((n, newest)) = newest_raft_snapshot(&args.path) {
                let why = format!(
                    "the newest of {} in {}",
                    plural(n as u64, "raft snapshot", "raft snapshots"),
                    args.path.display()
                );
                return inspect_file(args, newest, Some(why));
            }
        }
        let Some((_, newest)) = files.checkpoints.into_iter().last() else {
            return Err(InspectError::NothingInDir {
                what: "checkpoint",
                pattern: FileKind::Checkpoint(1).name(),
                path: args.path,
            }
            .into());
        };
        let why = format!(
            "the newest of {} in {}",
            plural(n as u64, "checkpoint", "checkpoints"),
            args.path.display()
        );
        (newest, Some(why))
    } else {
        (args.path.clone(), None)
    };
    inspect_file(args, path, chosen_from)
}

fn inspect_file(
    args: InspectArgs,
    path: PathBuf,
    chosen_from: Option<String>,
) -> Result<ExitCode, Box<dyn Error>> {
    let file_bytes = inspect::read_file(&path)?;
    let (raft, bytes, raft_damage) = match split_raft(&file_bytes) {
        Ok((raft, bytes)) => (raft, bytes, None),
        Err(d) => (None, &file_bytes[..0], Some(d)),
    };
    if raft_damage.is_none() {
        inspect::check_magic("checkpoint", &path, bytes, CHECKPOINT_MAGIC)?;
    }
    let mut report = Report {
        file: path.display().to_string(),
        chosen_from,
        file_bytes: file_bytes.len() as u64,
        raft,
        header: None,
        verdict: "damaged",
        damage: None,
        entries_read: 0,
        keys_with_expiry: 0,
        spilled_keys: 0,
        spilled_bytes: 0,
        databases: Vec::new(),
        key_bytes: None,
        value_bytes: None,
        keys: args.keys.then(Vec::new),
        value_segments: if args.path.is_dir() {
            check_value_segments(&args.path)
        } else {
            Vec::new()
        },
    };
    match CheckpointReader::new(bytes) {
        _ if raft_damage.is_some() => report.damage = raft_damage,
        Err(e) => {
            report.damage = Some(Damage {
                offset: e.offset,
                reason: e.reason,
            })
        }
        Ok(reader) => read_entries(&reader, &path, &args, &mut report),
    }
    inspect::print_with(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        } else {
            render(&report, out)?;
        }
        Ok(())
    })?;
    let segment_damage = report.value_segments.iter().any(|s| s.damage.is_some());
    Ok(if report.damage.is_some() || segment_damage {
        inspect::damage_exit()
    } else {
        ExitCode::SUCCESS
    })
}

/// Fills the header, verdict, statistics and keys of `report` from a checkpoint whose header
/// checks.
fn read_entries(
    reader: &CheckpointReader<'_>,
    path: &std::path::Path,
    args: &InspectArgs,
    report: &mut Report,
) {
    let h = reader.header();
    report.header = Some(Header {
        format_version: h.version,
        lsn: h.lsn,
        key_count: h.key_count,
        created_unix_ms: h.created_unix_ms,
        created_at: time::utc(h.created_unix_ms),
    });
    report.damage = match (inspect::lsn_in_name(path), reader.verify()) {
        (_, Err(e)) => Some(Damage {
            offset: e.offset,
            reason: e.reason,
        }),
        (Some(FileKind::Checkpoint(named)), Ok(_)) if named != h.lsn => Some(Damage {
            offset: 16,
            reason: format!("header says lsn {} but the file name says {named}", h.lsn),
        }),
        (_, Ok(_)) => match &report.raft {
            Some(r) if r.last_index.unwrap_or(0) != h.lsn => Some(Damage {
                offset: 16,
                reason: format!(
                    "the checkpoint says lsn {} but the raft header says index {}",
                    h.lsn,
                    r.last_index.unwrap_or(0)
                ),
            }),
            _ => None,
        },
    };
    if report.damage.is_none() {
        report.verdict = "ok";
    }
    let (mut key_sizes, mut value_sizes) = (Vec::new(), Vec::new());
    let mut per_db = std::collections::BTreeMap::<u16, DbCount>::new();
    for (db, key, value, ptr) in reader.entries_with_pointers().map_while(Result::ok) {
        let value_len = ptr.map_or(value.data.len(), |p| p.len as usize);
        if let Some(p) = ptr {
            report.spilled_keys += 1;
            report.spilled_bytes += u64::from(p.len);
        }
        let count = per_db.entry(db).or_insert(DbCount {
            db,
            keys: 0,
            keys_with_expiry: 0,
        });
        count.keys += 1;
        count.keys_with_expiry += u64::from(value.expires_at_ms.is_some());
        key_sizes.push(key.len() as u64);
        value_sizes.push(value_len as u64);
        report.keys_with_expiry += u64::from(value.expires_at_ms.is_some());
        if let Some(keys) = report.keys.as_mut() {
            keys.push(KeyView {
                db,
                key: Shown::new(&key, args.full),
                value_len,
                expires_at_ms: value.expires_at_ms,
                pointer: ptr.map(|p| {
                    format!(
                        "{} @ {}, crc 0x{:08x}",
                        moodb_backends::paper::values::segment_name(p.segment),
                        p.offset,
                        p.crc
                    )
                }),
            });
        }
    }
    let mut live = std::collections::BTreeMap::<String, (u64, u64)>::new();
    for (_, _, _, ptr) in reader.entries_with_pointers().map_while(Result::ok) {
        if let Some(p) = ptr {
            let e = live
                .entry(moodb_backends::paper::values::segment_name(p.segment))
                .or_default();
            e.0 += 1;
            e.1 += u64::from(p.len);
        }
    }
    for seg in &mut report.value_segments {
        let (values, bytes) = live.get(&seg.file).copied().unwrap_or_default();
        seg.live_values = values;
        seg.live_bytes = bytes;
        seg.stale_percent = stale_percent(seg.bytes, values, bytes);
    }
    report.entries_read = key_sizes.len() as u64;
    report.databases = per_db.into_values().collect();
    report.key_bytes = SizeStats::of(key_sizes);
    report.value_bytes = SizeStats::of(value_sizes);
}

/// The share of a segment of `file_bytes` that `values` live values of `bytes` leave stale.
fn stale_percent(file_bytes: u64, values: u64, bytes: u64) -> f64 {
    use moodb_backends::paper::values::{VALUES_HEADER_LEN, VALUE_RECORD_HEADER_LEN};
    let records = file_bytes.saturating_sub(VALUES_HEADER_LEN);
    if records == 0 {
        return 0.0;
    }
    let live = bytes + values * VALUE_RECORD_HEADER_LEN;
    100.0 * records.saturating_sub(live) as f64 / records as f64
}

/// The text output.
fn render(report: &Report, out: &mut dyn Write) -> Result<(), InspectError> {
    let name = inspect::file_label(std::path::Path::new(&report.file));
    write!(
        out,
        "{name}: {}",
        plural(report.file_bytes, "byte", "bytes")
    )?;
    match &report.chosen_from {
        Some(why) => writeln!(out, ", {why}")?,
        None => writeln!(out)?,
    }
    if let Some(r) = &report.raft {
        match (r.last_term, r.last_node, r.last_index) {
            (Some(t), Some(n), Some(i)) => writeln!(
                out,
                "  raft last log   index {i}, term {t}, leader node {n}"
            )?,
            _ => writeln!(out, "  raft last log   none")?,
        }
        writeln!(
            out,
            "  raft membership voters {} (entry {}), nodes {}",
            r.voters,
            r.membership_log_index
                .map_or("none".to_string(), |i| i.to_string()),
            r.nodes
        )?;
        writeln!(out, "  raft snapshot   id {}", r.snapshot_id)?;
        writeln!(
            out,
            "  checkpoint      at offset {} of the file:",
            r.checkpoint_offset
        )?;
    }
    if let Some(h) = &report.header {
        writeln!(out, "  format version  {}", h.format_version)?;
        writeln!(out, "  lsn             {}", h.lsn)?;
        writeln!(out, "  key count       {}", h.key_count)?;
        writeln!(
            out,
            "  created at      {} (unix ms {})",
            h.created_at, h.created_unix_ms
        )?;
    }
    match &report.damage {
        None => writeln!(out, "  verdict         ok: every checksum and count holds")?,
        Some(d) => {
            writeln!(out, "  verdict         DAMAGED")?;
            writeln!(out, "DAMAGE at offset {}: {}", d.offset, d.reason)?;
            writeln!(
                out,
                "  recovery refuses to load this checkpoint (it was fsynced before it was \
                 renamed into place, so this is not a crash artefact); figures below cover the \
                 {} read before the damage.",
                plural(report.entries_read, "entry", "entries")
            )?;
        }
    }
    writeln!(out, "  expiring keys   {}", report.keys_with_expiry)?;
    if report.spilled_keys > 0 {
        writeln!(
            out,
            "  spilled keys    {} ({} in value segments)",
            report.spilled_keys,
            plural(report.spilled_bytes, "byte", "bytes")
        )?;
    }
    for d in &report.databases {
        writeln!(
            out,
            "  db{:<13} {} ({} expiring)",
            d.db,
            plural(d.keys, "key", "keys"),
            d.keys_with_expiry
        )?;
    }
    if let (Some(k), Some(v)) = (&report.key_bytes, &report.value_bytes) {
        writeln!(
            out,
            "  {:<14}{:>10}{:>12}{:>10}{:>10}{:>10}",
            "", "min", "mean", "p50", "p99", "max"
        )?;
        for (what, s) in [("key bytes", k), ("value bytes", v)] {
            writeln!(
                out,
                "  {what:<14}{:>10}{:>12.1}{:>10}{:>10}{:>10}",
                s.min, s.mean, s.p50, s.p99, s.max
            )?;
        }
    }
    for seg in &report.value_segments {
        write!(
            out,
            "  value segment   {}: {}, {} ({})",
            seg.file,
            plural(seg.bytes, "byte", "bytes"),
            plural(seg.values, "value", "values"),
            plural(seg.value_bytes, "byte", "bytes")
        )?;
        if seg.torn_bytes > 0 {
            write!(
                out,
                ", {} of torn tail",
                plural(seg.torn_bytes, "byte", "bytes")
            )?;
        }
        match &seg.damage {
            None => writeln!(out, ", every checksum holds")?,
            Some(d) => writeln!(out, ", DAMAGED: {d}")?,
        }
        if report.header.is_some() {
            writeln!(
                out,
                "                  the checkpoint points to {} ({}) here: {:.1}% stale",
                plural(seg.live_values, "value", "values"),
                plural(seg.live_bytes, "byte", "bytes"),
                seg.stale_percent
            )?;
        }
    }
    if let Some(keys) = &report.keys {
        writeln!(out, "keys, in file order:")?;
        for k in keys {
            if k.db != 0 {
                write!(out, "  db{}", k.db)?;
            }
            write!(
                out,
                "  {}  value {}",
                k.key,
                plural(k.value_len as u64, "byte", "bytes")
            )?;
            if let Some(p) = &k.pointer {
                write!(out, " in {p}")?;
            }
            match k.expires_at_ms {
                Some(ms) => writeln!(out, ", expires {}", time::utc(ms))?,
                None => writeln!(out)?,
            }
        }
    }
    Ok(())
}
