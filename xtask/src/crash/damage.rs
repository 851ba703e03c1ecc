//! File damage injected between the kill and the restart: a torn write (the log cut at a random
//! offset) or a flipped bit, in the newest log file of the data directory.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use rand::Rng;

use super::server::Target;
use super::CrashError;

/// Which damage to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Damage {
    None,
    /// Cut the newest log at a random offset (a torn write).
    Truncate,
    /// Flip one random bit of the newest log (half the time in its last quarter).
    Bitflip,
    /// Self-test only: cut the log's tail without telling the checker, which simulates a
    /// server that acknowledged writes it never wrote.
    #[value(hide = true)]
    SilentTruncate,
}

/// What was done.
#[derive(Debug, Clone)]
pub struct Done {
    pub file: PathBuf,
    pub offset: u64,
    pub description: String,
}

/// The log files of `dir`: for moodb's paper backend the segments `log-<20 digits>` (not the
/// `.damaged`/`.discarded` copies a salvage leaves), for its sled backend sled's one data file
/// `sled/db`, for redis the incremental AOF files.
fn log_files(target: Target, backend: &str, dir: &Path) -> Result<Vec<PathBuf>, CrashError> {
    let dir = match (target, backend) {
        (Target::Moodb, "sled") => dir.join("sled"),
        (Target::Moodb, _) => dir.to_path_buf(),
        (Target::Redis, _) => dir.join("appendonlydir"),
    };
    let mut files = Vec::new();
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(files);
    };
    for entry in entries {
        let entry = entry.map_err(CrashError::io("list the data directory"))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_log = match (target, backend) {
            (Target::Moodb, "sled") => name == "db",
            (Target::Moodb, _) => name
                .strip_prefix("log-")
                .is_some_and(|d| d.len() == 20 && d.bytes().all(|b| b.is_ascii_digit())),
            (Target::Redis, _) => name.ends_with(".incr.aof"),
        };
        if is_log && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    Ok(files)
}

/// The newest log file: for moodb the highest-numbered segment (the names sort by first LSN);
/// for redis by modification time, then name.
pub fn newest_log(
    target: Target,
    backend: &str,
    dir: &Path,
) -> Result<Option<PathBuf>, CrashError> {
    let files = log_files(target, backend, dir)?;
    if target == Target::Moodb {
        return Ok(files.into_iter().max());
    }
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for f in files {
        let mtime = fs::metadata(&f)
            .and_then(|m| m.modified())
            .map_err(CrashError::io("stat a log file"))?;
        if best.as_ref().is_none_or(|(t, p)| (mtime, &f) > (*t, p)) {
            best = Some((mtime, f));
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// Damages the newest log of `dir`; `None` if there is no log with data in it.
pub fn inject(
    kind: Damage,
    target: Target,
    backend: &str,
    dir: &Path,
    rng: &mut impl Rng,
) -> Result<Option<Done>, CrashError> {
    if kind == Damage::None {
        return Ok(None);
    }
    let Some(file) = newest_log(target, backend, dir)? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    fs::File::open(&file)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(CrashError::io("read the log to damage"))?;
    // A preallocated log ends in zeros: damage only the part that holds data.
    let used = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1) as u64;
    if used == 0 {
        return Ok(None);
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .map_err(CrashError::io("open the log to damage"))?;
    let done = match kind {
        Damage::Truncate | Damage::SilentTruncate => {
            let offset = if kind == Damage::SilentTruncate {
                // Cut within the last quarter, where the latest acknowledged writes are.
                rng.gen_range(used - used / 4..used)
            } else {
                rng.gen_range(0..used)
            };
            f.set_len(offset)
                .map_err(CrashError::io("truncate the log"))?;
            Done {
                description: format!("cut {} at byte {offset} (of {used})", file.display()),
                file,
                offset,
            }
        }
        Damage::Bitflip => {
            // Half the time in the last quarter, where the records that still hold the
            // latest value of their key are; otherwise anywhere.
            let offset = if rng.gen_bool(0.5) {
                rng.gen_range(used - used / 4..used)
            } else {
                rng.gen_range(0..used)
            };
            let bit = rng.gen_range(0..8u8);
            let byte = bytes[offset as usize] ^ (1 << bit);
            f.seek(SeekFrom::Start(offset))
                .and_then(|_| f.write_all(&[byte]))
                .map_err(CrashError::io("flip a bit in the log"))?;
            Done {
                description: format!(
                    "flipped bit {bit} of byte {offset} (of {used}) in {}",
                    file.display()
                ),
                file,
                offset,
            }
        }
        Damage::None => return Ok(None),
    };
    f.sync_all()
        .map_err(CrashError::io("sync the damaged log"))?;
    Ok(Some(done))
}
