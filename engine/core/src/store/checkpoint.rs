//! When to checkpoint, and the SAVE replies that wait for one: the log has grown to
//! `log_bytes`, `interval_ms` has passed since the last checkpoint with writes since, or a
//! client asked (SAVE, BGSAVE). One checkpoint runs at a time.

use serde::{Deserialize, Serialize};

use super::gate::Waiting;
use crate::record::Lsn;

/// When the snapshotter takes a checkpoint on its own (SAVE and BGSAVE take one at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Checkpoint when the log has grown to this many bytes (0: never on size).
    pub log_bytes: u64,
    /// Checkpoint when this many ms have passed since the last one and there were writes
    /// (0: never on time).
    pub interval_ms: u64,
    /// Bytes per second a checkpoint is written at, at most (0: as fast as it can): paced,
    /// it leaves the disk and the cores to the requests while it runs, and takes longer.
    pub write_rate: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            log_bytes: 64 * 1024 * 1024,
            interval_ms: 5 * 60 * 1000,
            write_rate: 64 * 1024 * 1024,
        }
    }
}

/// The checkpoint triggers' state.
#[derive(Debug)]
pub(crate) struct Checkpoints<T> {
    /// LSN of the checkpoint being written.
    pub running: Option<Lsn>,
    /// Batches with a SAVE waiting for the running checkpoint.
    pub running_saves: Vec<Waiting<T>>,
    /// Batches with a SAVE waiting for the next checkpoint.
    pub next_saves: Vec<Waiting<T>>,
    pub bgsave_requested: bool,
    /// LSN the last checkpoint covers (started, or recovered).
    pub last_lsn: Option<Lsn>,
    /// Time (Unix ms) the last checkpoint started, or the store started.
    pub last_started_ms: u64,
    pub completed: u64,
    pub failed: u64,
    /// The last checkpoint failed (INFO `rdb_last_bgsave_status:err`).
    pub last_failed: bool,
}

impl<T> Checkpoints<T> {
    pub fn new(last_lsn: Option<Lsn>, now_ms: u64) -> Self {
        Checkpoints {
            running: None,
            running_saves: Vec::new(),
            next_saves: Vec::new(),
            bgsave_requested: false,
            last_lsn,
            last_started_ms: now_ms,
            completed: 0,
            failed: 0,
            last_failed: false,
        }
    }

    /// Whether a checkpoint should start now: none is running, and a client asked or there
    /// were writes since the last one and the log size or the interval says so.
    pub fn due(&self, cfg: &CheckpointConfig, last_lsn: Lsn, log_bytes: u64, now_ms: u64) -> bool {
        if self.running.is_some() {
            return false;
        }
        let new_writes = self.last_lsn.is_none_or(|l| last_lsn > l);
        let by_size = cfg.log_bytes > 0 && log_bytes >= cfg.log_bytes;
        let by_time =
            cfg.interval_ms > 0 && now_ms.saturating_sub(self.last_started_ms) >= cfg.interval_ms;
        let asked = !self.next_saves.is_empty() || self.bgsave_requested;
        asked || (new_writes && (by_size || by_time))
    }

    /// Marks a checkpoint as of `lsn` started at `now_ms`: waiting SAVEs now wait for it.
    pub fn start(&mut self, lsn: Lsn, now_ms: u64) {
        self.running = Some(lsn);
        self.last_started_ms = now_ms;
        self.bgsave_requested = false;
        self.running_saves = std::mem::take(&mut self.next_saves);
    }
}
