//! What `moodb wal dump` and `moodb snapshot inspect` share: reading a file read-only, finding
//! the files of a data directory, the typed errors, the exit codes, and the rendering helpers
//! (byte escaping, dates, size statistics).

pub mod escape;
pub mod stats;
pub mod time;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use moodb_backends::paper::files::{CHECKPOINT_PREFIX, LOG_PREFIX};
use moodb_backends::paper::FileKind;
use moodb_core::Lsn;

/// The exit codes of the inspection commands, as their `--help` states them.
pub const EXIT_CODES_HELP: &str = "Exit status:
  0  no damage found
  1  the file could not be opened or read, or is not a MooDB file of this kind
  2  damage found (torn tail, corruption, bad header); the output says where and what

The file is opened read-only and never modified.";

/// Exit status 2: the file was read and is damaged.
pub fn damage_exit() -> ExitCode {
    ExitCode::from(2)
}

/// Why a file could not be inspected at all (exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "not a MooDB {what}: bad magic {found} at the start of {} (expected \"{expected}\")",
        path.display()
    )]
    BadMagic {
        what: &'static str,
        path: PathBuf,
        found: String,
        expected: &'static str,
    },
    #[error("no {what} in data directory {} (names look like {pattern})", path.display())]
    NothingInDir {
        what: &'static str,
        pattern: String,
        path: PathBuf,
    },
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
}

impl From<serde_json::Error> for InspectError {
    fn from(err: serde_json::Error) -> Self {
        InspectError::Output(err.into())
    }
}

/// Writes the report with `write` to stdout; a closed pipe (`| head`) ends the output quietly.
pub fn print_with(
    write: impl FnOnce(&mut dyn io::Write) -> Result<(), InspectError>,
) -> Result<(), InspectError> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let result = write(&mut out).and_then(|()| io::Write::flush(&mut out).map_err(Into::into));
    match result {
        Err(InspectError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Reads a whole file; `File::open` opens it read-only.
pub fn read_file(path: &Path) -> Result<Vec<u8>, InspectError> {
    fs::read(path).map_err(|source| InspectError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Fails with [`InspectError::BadMagic`] unless `bytes` start with `magic`. A file with a MooDB
/// name (`log-<lsn>`, `checkpoint-<lsn>`) holding only zeros passes: it is an interrupted
/// creation, which the caller reports as damage.
pub fn check_magic(
    what: &'static str,
    path: &Path,
    bytes: &[u8],
    magic: &'static [u8; 8],
) -> Result<(), InspectError> {
    // The `.damaged` and `.discarded` copies are never an interrupted creation.
    let named = !matches!(
        lsn_in_name(path),
        None | Some(FileKind::LogDamaged(_) | FileKind::LogDiscarded(_))
    );
    let interrupted = named && bytes.iter().all(|b| *b == 0);
    if bytes.starts_with(magic) || interrupted {
        return Ok(());
    }
    let head = &bytes[..bytes.len().min(magic.len())];
    Err(InspectError::BadMagic {
        what,
        path: path.to_path_buf(),
        found: if head.is_empty() {
            "(the file is empty)".to_string()
        } else {
            format!("\"{}\"", escape::escape(head))
        },
        expected: std::str::from_utf8(magic).unwrap_or("?"),
    })
}

/// The files of a paper data directory, by kind, sorted by LSN.
#[derive(Debug, Default)]
pub struct DirFiles {
    pub logs: Vec<(Lsn, PathBuf)>,
    pub checkpoints: Vec<(Lsn, PathBuf)>,
    /// `log-*` and `checkpoint-*` files that are not current (`.damaged`, `.discarded`, `.tmp`).
    pub others: Vec<PathBuf>,
}

/// Lists `dir` as recovery would see it.
pub fn list_dir(dir: &Path) -> Result<DirFiles, InspectError> {
    let read_err = |source| InspectError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files = DirFiles::default();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = entry.path();
        match FileKind::parse(name) {
            Some(FileKind::Log(lsn)) => files.logs.push((lsn, path)),
            Some(FileKind::Checkpoint(lsn)) => files.checkpoints.push((lsn, path)),
            Some(
                FileKind::CheckpointTmp(_) | FileKind::LogDamaged(_) | FileKind::LogDiscarded(_),
            ) => files.others.push(path),
            None if name.starts_with(LOG_PREFIX) || name.starts_with(CHECKPOINT_PREFIX) => {
                files.others.push(path)
            }
            None => {}
        }
    }
    files.logs.sort();
    files.checkpoints.sort();
    files.others.sort();
    Ok(files)
}

/// What a file's name says it is (`log-<lsn>`, `checkpoint-<lsn>`, ...), if it is ours.
pub fn lsn_in_name(path: &Path) -> Option<FileKind> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(FileKind::parse)
}

/// Name shown for a file: its last path component.
pub fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// `1 record`, `2 records`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
