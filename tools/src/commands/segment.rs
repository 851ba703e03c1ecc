//! `moodb segment inspect`: reads value segments (`values-<n>`, spilled values), checks every
//! value's CRC32C and prints, per segment, its size, values and torn tail; at a damaged value,
//! the file and offset, with exit status 2. Parsing is `moodb_backends::paper::values`'s; how
//! much of each segment a checkpoint still points to is `moodb snapshot inspect`'s business.

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use moodb_backends::paper::values::{check_segment, VALUES_MAGIC};
use serde::Serialize;

use super::snapshot::{check_value_segments, SegmentView};
use crate::inspect::{self, plural, InspectError};

/// Reads value segments (`segment inspect`).
#[derive(Debug, Args)]
pub struct SegmentArgs {
    #[command(subcommand)]
    command: SegmentCommand,
}

#[derive(Debug, Subcommand)]
enum SegmentCommand {
    Inspect(InspectArgs),
}

/// Checks every value's CRC32C in a value segment, or in every segment of a data directory;
/// prints each segment's size, values and torn tail, and the file and offset of a damaged
/// value.
#[derive(Debug, Args)]
#[command(after_help = inspect::EXIT_CODES_HELP)]
pub struct InspectArgs {
    /// A value segment (`values-<n>`), or a data directory: then each of its segments.
    path: PathBuf,

    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// What the inspection found.
#[derive(Debug, Serialize)]
struct Report {
    segments: Vec<Segment>,
    /// `ok` when every value's checksum holds, else `damaged`.
    verdict: &'static str,
}

#[derive(Debug, Serialize)]
struct Segment {
    file: String,
    bytes: u64,
    values: u64,
    value_bytes: u64,
    torn_bytes: u64,
    /// The first damaged value: file and offset, and what is wrong.
    damage: Option<String>,
}

impl From<SegmentView> for Segment {
    fn from(s: SegmentView) -> Self {
        Segment {
            file: s.file,
            bytes: s.bytes,
            values: s.values,
            value_bytes: s.value_bytes,
            torn_bytes: s.torn_bytes,
            damage: s.damage,
        }
    }
}

pub fn run(args: SegmentArgs) -> Result<ExitCode, Box<dyn Error>> {
    match args.command {
        SegmentCommand::Inspect(args) => inspect_segments(args),
    }
}

fn inspect_segments(args: InspectArgs) -> Result<ExitCode, Box<dyn Error>> {
    let segments: Vec<Segment> = if args.path.is_dir() {
        let found = check_value_segments(&args.path);
        if found.is_empty() {
            return Err(InspectError::NothingInDir {
                what: "value segment",
                pattern: moodb_backends::paper::values::segment_name(0),
                path: args.path,
            }
            .into());
        }
        found.into_iter().map(Segment::from).collect()
    } else {
        let bytes = inspect::read_file(&args.path)?;
        inspect::check_magic("value segment", &args.path, &bytes, VALUES_MAGIC)?;
        let file = inspect::file_label(&args.path);
        let check = check_segment(&file, &bytes).map_err(|e| e.to_string());
        let found = check.as_ref().ok().copied().unwrap_or_default();
        vec![Segment {
            file,
            bytes: bytes.len() as u64,
            values: found.values,
            value_bytes: found.value_bytes,
            torn_bytes: found.torn_bytes,
            damage: check.err(),
        }]
    };
    let damaged = segments.iter().any(|s| s.damage.is_some());
    let report = Report {
        segments,
        verdict: if damaged { "damaged" } else { "ok" },
    };
    inspect::print_with(|out| {
        if args.json {
            serde_json::to_writer_pretty(&mut *out, &report)?;
            writeln!(out)?;
        } else {
            render(&report, out)?;
        }
        Ok(())
    })?;
    Ok(if damaged {
        inspect::damage_exit()
    } else {
        ExitCode::SUCCESS
    })
}

fn render(report: &Report, out: &mut dyn Write) -> Result<(), InspectError> {
    for seg in &report.segments {
        if let Some(d) = &seg.damage {
            // The count stops at the damage: only the size is known.
            writeln!(out, "{}: {}", seg.file, plural(seg.bytes, "byte", "bytes"))?;
            writeln!(out, "DAMAGED: {d}")?;
            continue;
        }
        write!(
            out,
            "{}: {}, {} ({})",
            seg.file,
            plural(seg.bytes, "byte", "bytes"),
            plural(seg.values, "value", "values"),
            plural(seg.value_bytes, "byte", "bytes")
        )?;
        if seg.torn_bytes > 0 {
            write!(
                out,
                ", {} of torn tail (no checkpoint points there)",
                plural(seg.torn_bytes, "byte", "bytes")
            )?;
        }
        writeln!(out, ": every checksum holds")?;
    }
    writeln!(
        out,
        "verdict: {}",
        if report.verdict == "ok" {
            "ok, every value's checksum holds"
        } else {
            "DAMAGED (a read of that value is refused with this file and offset)"
        }
    )?;
    Ok(())
}
