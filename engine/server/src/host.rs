//! The server's [`Host`] for the store: the monotonic clock (`Instant`), the process's figures
//! read from `/proc` (resident memory from `/proc/self/status`, CPU time from
//! `/proc/self/stat`: the same accounting `getrusage` reports, in clock ticks of 10 ms) and
//! CONFIG REWRITE of the RON file the server was started with (written to a temporary file,
//! synced, renamed over the old one, then the directory synced).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use moodb_core::store::host::{Host, Resources};
use moodb_core::store::StoreSettings;

use crate::config::Config;

/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat` (fixed at 100 by the
/// kernel's ABI on every architecture MooDB builds for).
const CLOCK_TICKS_PER_SECOND: u64 = 100;

/// See the module documentation.
#[derive(Debug)]
pub struct ServerHost {
    started: Instant,
    /// The configuration file and what was loaded from it (flags applied), or `None`.
    config_file: Option<(PathBuf, Config)>,
}

impl ServerHost {
    /// A host for a server started from `config_file` (the file's path and the configuration
    /// it runs with), or without one.
    pub fn new(config_file: Option<(PathBuf, Config)>) -> ServerHost {
        ServerHost {
            started: Instant::now(),
            config_file,
        }
    }
}

impl Host for ServerHost {
    fn monotonic_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn resources(&self) -> Resources {
        let mut r = Resources {
            rss_bytes: read_rss(),
            ..Resources::default()
        };
        if let Some([user, sys, cuser, csys]) = read_cpu_ticks() {
            let us = |ticks: u64| ticks * (1_000_000 / CLOCK_TICKS_PER_SECOND);
            r.cpu_user_us = us(user);
            r.cpu_sys_us = us(sys);
            r.cpu_user_children_us = us(cuser);
            r.cpu_sys_children_us = us(csys);
        }
        r
    }

    fn rewrite_config(&self, settings: &StoreSettings) -> Result<(), String> {
        let Some((path, base)) = &self.config_file else {
            return Err("The server is running without a config file".into());
        };
        let config = base.with_settings(settings);
        config
            .validate()
            .map_err(|e| format!("Rewriting config file: {e}"))?;
        let text = config
            .to_ron()
            .map_err(|e| format!("Rewriting config file: {e}"))?;
        write_atomically(path, text.as_bytes()).map_err(|e| format!("Rewriting config file: {e}"))
    }
}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn read_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// utime, stime, cutime, cstime of `/proc/self/stat` (fields 14–17), in clock ticks.
fn read_cpu_ticks() -> Option<[u64; 4]> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state): field n is at index n - 3.
    let f = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some([f(14)?, f(15)?, f(16)?, f(17)?])
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one: a
/// temporary file beside it, synced, renamed over it, then the directory synced.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_come_from_proc() {
        let r = ServerHost::new(None).resources();
        assert!(r.rss_bytes.is_some_and(|b| b > 1 << 20), "{r:?}");
        // Burn a little CPU so the user time is at least a tick.
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 60 {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        assert!(x != 1);
        let r = ServerHost::new(None).resources();
        assert!(r.cpu_user_us + r.cpu_sys_us >= 10_000, "{r:?}");
    }

    #[test]
    fn rewrite_without_a_file_is_redis_s_error() {
        let host = ServerHost::new(None);
        assert_eq!(
            host.rewrite_config(&StoreSettings::default()),
            Err("The server is running without a config file".into())
        );
    }

    #[test]
    fn rewrite_replaces_the_file_with_a_loadable_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moodb.ron");
        std::fs::write(&path, "(backend: \"paper\")").unwrap();
        let base = Config::load(&path).unwrap();
        let host = ServerHost::new(Some((path.clone(), base)));
        let mut settings = StoreSettings {
            slowlog_max_len: 5,
            requirepass: Some("pw".into()),
            ..StoreSettings::default()
        };
        settings.limits.max_clients = 77;
        host.rewrite_config(&settings).unwrap();
        let again = Config::load(&path).unwrap();
        assert_eq!(again.limits.max_clients, 77);
        assert_eq!(again.slowlog_max_len, 5);
        assert_eq!(again.requirepass.as_deref(), Some("pw"));
        assert!(!dir.path().join(".moodb.ron.tmp").exists());
    }
}
