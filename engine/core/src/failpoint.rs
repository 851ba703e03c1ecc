//! Failpoints: named places where a test makes MooDB misbehave on purpose: an fsync that fails
//! with EIO, a disk that fills up, a reply sent before its record is written. They are off
//! unless the `MOODB_FAILPOINTS` environment variable names them, so a production server never
//! pays more than one look at an empty table.
//!
//! Syntax: `MOODB_FAILPOINTS="name=action[@N][,name=action[@N]...]"`, where `action` is `eio`,
//! `enospc` or `on`, and `@N` (default 1) makes the point fire from its N-th hit on. Names
//! follow `layer::operation` (`wal::fsync`, `checkpoint::write`); the ones the code checks are
//! the constants below.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The log append's write fails.
pub const WAL_WRITE: &str = "wal::write";
/// The log's fdatasync fails.
pub const WAL_FSYNC: &str = "wal::fsync";
/// The log is never fsynced although the policy says so (a broken build for the power-cut test).
pub const WAL_SKIP_FSYNC: &str = "wal::skip_fsync";
/// The log's fdatasync takes [`FSYNC_SLOW_DELAY`] longer (a slow disk, for the latency
/// monitor's test).
pub const WAL_FSYNC_SLOW: &str = "wal::fsync_slow";
/// How much longer a sync takes under [`WAL_FSYNC_SLOW`].
pub const FSYNC_SLOW_DELAY: std::time::Duration = std::time::Duration::from_millis(20);
/// Writing a checkpoint file fails.
pub const CHECKPOINT_WRITE: &str = "checkpoint::write";
/// Recovery does not check record checksums (a broken build for the crash test).
pub const RECOVERY_SKIP_CHECKSUM: &str = "recovery::skip_checksum";
/// The server replies before the write reaches the log (a broken build for the crash test).
pub const SERVER_ACK_BEFORE_WRITE: &str = "server::ack_before_write";

/// The environment variable that enables failpoints.
pub const ENV: &str = "MOODB_FAILPOINTS";

/// What a failpoint does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Fail with EIO.
    Eio,
    /// Fail with ENOSPC (disk full).
    Enospc,
    /// Take the deliberately wrong branch.
    On,
}

impl Action {
    /// The I/O error this action stands for (`On` is reported as EIO).
    pub fn to_io_error(self, name: &str) -> io::Error {
        let kind = match self {
            Action::Enospc => io::ErrorKind::StorageFull,
            Action::Eio | Action::On => io::ErrorKind::Other,
        };
        let errno = match self {
            Action::Enospc => "ENOSPC, no space left on device",
            Action::Eio | Action::On => "EIO, input/output error",
        };
        io::Error::new(kind, format!("{errno} (injected by failpoint {name})"))
    }
}

struct Point {
    action: Action,
    from_hit: u64,
    hits: AtomicU64,
}

fn table() -> &'static HashMap<String, Point> {
    static TABLE: OnceLock<HashMap<String, Point>> = OnceLock::new();
    TABLE.get_or_init(|| match std::env::var(ENV) {
        Ok(spec) => parse(&spec).unwrap_or_else(|err| {
            // A test that asks for a failpoint and gets none would pass for the wrong reason.
            eprintln!("moodb: {ENV}: {err}; ignoring it");
            HashMap::new()
        }),
        Err(_) => HashMap::new(),
    })
}

fn parse(spec: &str) -> Result<HashMap<String, Point>, String> {
    let mut points = HashMap::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not name=action"))?;
        let (action, from_hit) = match rest.split_once('@') {
            Some((a, n)) => (
                a,
                n.parse::<u64>()
                    .map_err(|_| format!("{item:?}: @{n} is not a hit count"))?,
            ),
            None => (rest, 1),
        };
        let action = match action {
            "eio" => Action::Eio,
            "enospc" => Action::Enospc,
            "on" => Action::On,
            other => {
                return Err(format!(
                    "{item:?}: unknown action {other:?} (eio, enospc, on)"
                ))
            }
        };
        points.insert(
            name.to_string(),
            Point {
                action,
                from_hit: from_hit.max(1),
                hits: AtomicU64::new(0),
            },
        );
    }
    Ok(points)
}

/// Counts a hit of failpoint `name` and returns its action if it fires now.
pub fn hit(name: &str) -> Option<Action> {
    let table = table();
    if table.is_empty() {
        return None;
    }
    let point = table.get(name)?;
    let n = point.hits.fetch_add(1, Ordering::Relaxed) + 1;
    (n >= point.from_hit).then_some(point.action)
}

/// `Err` with the injected I/O error if failpoint `name` fires now, for use before a real call:
/// `failpoint::io(failpoint::WAL_FSYNC)?; file.sync_data()?;`
pub fn io(name: &str) -> io::Result<()> {
    match hit(name) {
        Some(action) => Err(action.to_io_error(name)),
        None => Ok(()),
    }
}

/// Whether the deliberately broken behaviour `name` is switched on.
pub fn enabled(name: &str) -> bool {
    hit(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions_and_hit_counts() {
        let points = parse("wal::fsync=eio@3, checkpoint::write=enospc,server::x=on").unwrap();
        assert_eq!(points["wal::fsync"].action, Action::Eio);
        assert_eq!(points["wal::fsync"].from_hit, 3);
        assert_eq!(points["checkpoint::write"].action, Action::Enospc);
        assert_eq!(points["server::x"].from_hit, 1);
    }

    #[test]
    fn rejects_malformed_specs() {
        assert!(parse("wal::fsync").is_err());
        assert!(parse("wal::fsync=explode").is_err());
        assert!(parse("wal::fsync=eio@x").is_err());
    }

    #[test]
    fn unset_points_never_fire() {
        // The test process has no MOODB_FAILPOINTS, so nothing fires.
        assert_eq!(hit(WAL_FSYNC), None);
        assert!(io(WAL_WRITE).is_ok());
    }
}
