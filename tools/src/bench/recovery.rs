//! The recovery benchmark: fill N keys through a backend (in groups), checkpoint where the
//! backend has checkpoints, close it, then time opening it again and recovering the state.

use std::fs;
use std::path::Path;
use std::time::Instant;

use moodb_backends::BackendOptions;
use moodb_core::RecoveryReport;

use super::inprocess::Target;
use super::report::RecoveryRow;
use super::BenchError;

/// Fills `keys` keys of `value_size` bytes into backend `name` in `dir` (which should be
/// empty), checkpoints if `checkpoint` and the backend supports it, reopens and recovers.
/// Returns the figures and the backend's own account of its recovery.
pub fn run(
    name: &str,
    dir: &Path,
    options: &BackendOptions,
    keys: u64,
    value_size: usize,
    checkpoint: bool,
) -> Result<(RecoveryRow, RecoveryReport), BenchError> {
    let storage = |source| BenchError::Storage {
        backend: name.to_string(),
        source,
    };
    let started = Instant::now();
    let mut target = Target::open(name, dir, options)?;
    target.fill(keys, value_size)?;
    let mut checkpointed = false;
    if checkpoint {
        if let Some(job) = target
            .backend
            .begin_checkpoint(target.last_lsn)
            .map_err(storage)?
        {
            let report = job.write(target.state.clone()).map_err(storage)?;
            target.backend.checkpoint_finished(&report);
            checkpointed = true;
        }
    }
    let fill = started.elapsed();
    let expected_lsn = target.last_lsn;
    drop(target);
    let disk_bytes = dir_size(dir)?;

    let started = Instant::now();
    let mut backend = moodb_backends::open(name, dir, options).map_err(storage)?;
    let recovered = backend.recover().map_err(storage)?;
    let recover = started.elapsed();
    if recovered.state.len() as u64 != keys || recovered.last_lsn != expected_lsn {
        return Err(BenchError::Usage(format!(
            "backend {name} recovered {} keys at LSN {} after writing {keys} keys up to LSN \
             {expected_lsn}: recovery lost data",
            recovered.state.len(),
            recovered.last_lsn
        )));
    }
    let row = RecoveryRow {
        backend: name.to_string(),
        keys,
        value_size,
        fill,
        checkpointed,
        disk_bytes,
        recover,
    };
    Ok((row, recovered.report))
}

/// Total length of the files under `dir` (apparent size: preallocated space counts).
pub fn dir_size(dir: &Path) -> Result<u64, BenchError> {
    let io = |source| BenchError::Io {
        context: format!("measure the size of {dir:?}"),
        source,
    };
    let mut total = 0;
    for entry in fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let meta = entry.metadata().map_err(io)?;
        total += if meta.is_dir() {
            dir_size(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
