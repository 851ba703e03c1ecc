//! The store's statistics, as Redis 7 keeps them: the counters of INFO stats, per-command
//! figures (INFO commandstats: calls, µs, rejected and failed calls), error replies by kind
//! (INFO errorstats), the ops-per-second sampler, the slow log (SLOWLOG) and the latency
//! monitor (LATENCY). Durations come from the [`super::host::Host`]'s monotonic clock, times
//! from the clock the caller passes in, so everything here is deterministic under a fake host.
//! CONFIG RESETSTAT clears what Redis clears ([`Stats::reset`]).

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::command::table::CommandSpec;
use crate::fast_map::FastMap;
use crate::keyspace::Databases;

/// Most arguments a slow-log entry keeps (Redis's `SLOWLOG_ENTRY_MAX_ARGC`).
pub const SLOWLOG_MAX_ARGC: usize = 32;
/// Most bytes of one argument a slow-log entry keeps (Redis's `SLOWLOG_ENTRY_MAX_STRING`).
pub const SLOWLOG_MAX_STRING: usize = 128;
/// Samples a latency event keeps (Redis's `LATENCY_TS_LEN`).
pub const LATENCY_HISTORY_LEN: usize = 160;
/// Distinct error kinds counted (Redis's `ERROR_STATS_NUMBER`); past it, new kinds go uncounted.
pub const ERROR_KINDS_MAX: usize = 128;
/// Samples averaged by `instantaneous_ops_per_sec` (Redis's `STATS_METRIC_SAMPLES`).
const OPS_SAMPLES: usize = 16;

/// Bytes per entry besides its key and value, for [`estimate_memory`]: the packed entry's
/// header and its allocation's rounding (~10 B for a 16 B key and a 100 B value under
/// mimalloc, ~28 B under glibc) and the table's share of buckets, control bytes and directory
/// (9–19 B, as the segments fill), rounded up: the server's resident memory also holds its
/// buffers (155 B/key resident for 1M such keys, `bench/footprint.sh`).
pub const ENTRY_OVERHEAD: u64 = 47;
/// Bytes per key with a TTL in the expiry index (ARCHITECTURE.md, "Expiry").
pub const TTL_OVERHEAD: u64 = 60;
/// INFO's `used_memory`: an estimate of the key space's heap, per database the bytes its
/// entries hold (keys, expiries, inline values, pointers of spilled ones; counted by the key
/// space as it changes) + [`ENTRY_OVERHEAD`] per key + [`TTL_OVERHEAD`] per key with a TTL.
/// Costs a few additions per database, so `maxmemory` can be checked before every write.
pub fn estimate_memory(dbs: &Databases) -> u64 {
    dbs.iter()
        .filter(|(_, ks)| !ks.is_empty())
        .map(|(_, ks)| {
            ks.memory().entry_bytes
                + ks.len() as u64 * ENTRY_OVERHEAD
                + ks.volatile_len() as u64 * TTL_OVERHEAD
        })
        .sum()
}

/// One command's figures (INFO commandstats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommandStat {
    pub calls: u64,
    pub usec: u64,
    /// Refused before running (wrong arity, refused in this state).
    pub rejected: u64,
    /// Ran and answered an error.
    pub failed: u64,
}

/// The counters; see the module documentation.
#[derive(Debug, Default)]
pub struct Stats {
    pub connected: u64,
    pub connections: u64,
    /// Commands run (`total_commands_processed`: not those refused as unknown).
    pub commands: u64,
    pub writes: u64,
    pub expired: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    /// Error replies of every kind (`total_error_replies`).
    pub error_replies: u64,
    /// Commands refused before running, unknown ones included.
    pub rejected_calls: u64,
    /// Per command, keyed by its row of the command table (the row's address: hashing the
    /// name cost ~130 instructions a request), with the row's name (`get`, `config|get`);
    /// INFO sorts them by name ([`Stats::commands_by_name`]).
    commands_by_row: FastMap<usize, (&'static str, CommandStat)>,
    /// Error replies by their first word (`ERR`, `WRONGTYPE`).
    pub errors_by_kind: BTreeMap<Box<str>, u64>,
    ops: OpsSampler,
}

impl Stats {
    /// Counts an error reply whose text is `text` (`ERR unknown command ...`).
    pub fn note_error(&mut self, text: &str) {
        self.error_replies += 1;
        let kind = text.split(' ').next().unwrap_or(text);
        if let Some(n) = self.errors_by_kind.get_mut(kind) {
            *n += 1;
        } else if self.errors_by_kind.len() < ERROR_KINDS_MAX {
            self.errors_by_kind.insert(kind.into(), 1);
        }
    }

    /// The figures of the command of table row `row`, created on first use.
    pub fn command(&mut self, row: &'static CommandSpec) -> &mut CommandStat {
        let (_, stat) = self
            .commands_by_row
            .entry(std::ptr::from_ref(row) as usize)
            .or_insert_with(|| (row.name, CommandStat::default()));
        stat
    }

    /// Every command run so far and its figures, sorted by name.
    pub fn commands_by_name(&self) -> Vec<(&'static str, CommandStat)> {
        let mut commands: Vec<_> = self.commands_by_row.values().copied().collect();
        commands.sort_unstable_by_key(|(name, _)| *name);
        commands
    }

    /// Takes an ops-per-second sample at `now_ms` (the caller: every 100 ms, as Redis's cron).
    pub fn sample(&mut self, now_ms: u64) {
        self.ops.sample(now_ms, self.commands);
    }

    /// `instantaneous_ops_per_sec`: the average of the last samples.
    pub fn ops_per_sec(&self) -> u64 {
        self.ops.average()
    }

    /// CONFIG RESETSTAT: every counter but the connected clients and the key space's state.
    pub fn reset(&mut self) {
        *self = Stats {
            connected: self.connected,
            ..Stats::default()
        };
    }
}

/// Redis's `trackInstantaneousMetric`: ops per second between samples, averaged.
#[derive(Debug, Default)]
struct OpsSampler {
    last: Option<(u64, u64)>,
    samples: [u64; OPS_SAMPLES],
    next: usize,
}

impl OpsSampler {
    fn sample(&mut self, now_ms: u64, ops: u64) {
        if let Some((at, before)) = self.last {
            let ms = now_ms.saturating_sub(at);
            if ms == 0 {
                return;
            }
            self.samples[self.next] = ops.saturating_sub(before) * 1000 / ms;
            self.next = (self.next + 1) % OPS_SAMPLES;
        }
        self.last = Some((now_ms, ops));
    }

    fn average(&self) -> u64 {
        self.samples.iter().sum::<u64>() / OPS_SAMPLES as u64
    }
}

/// One slow-log entry, as SLOWLOG GET shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowEntry {
    pub id: u64,
    pub unix_s: u64,
    pub micros: u64,
    /// The arguments, cut as Redis cuts them ([`SlowLog::args`]).
    pub args: Vec<Bytes>,
    pub addr: Bytes,
    pub name: Bytes,
}

/// The slow log: the newest entries first, at most `max_len`.
#[derive(Debug, Default)]
pub struct SlowLog {
    entries: VecDeque<SlowEntry>,
    next_id: u64,
}

impl SlowLog {
    /// Logs a command that took `micros` if `threshold_us` says so (negative: never; 0:
    /// always), keeping at most `max_len` entries.
    #[allow(clippy::too_many_arguments)]
    pub fn note(
        &mut self,
        threshold_us: i64,
        max_len: u64,
        micros: u64,
        unix_s: u64,
        request: &[Bytes],
        addr: Bytes,
        name: Bytes,
    ) {
        if !SlowLog::logs(threshold_us, micros) {
            return;
        }
        self.entries.push_front(SlowEntry {
            id: self.next_id,
            unix_s,
            micros,
            args: SlowLog::args(request),
            addr,
            name,
        });
        self.next_id += 1;
        self.trim(max_len);
    }

    /// Whether a command that took `micros` is logged under `threshold_us` (negative: never;
    /// 0: always). Asked before the entry's parts are gathered, so a fast command costs nothing.
    pub fn logs(threshold_us: i64, micros: u64) -> bool {
        threshold_us >= 0 && micros >= threshold_us as u64
    }

    /// Keeps the newest `max_len` entries.
    pub fn trim(&mut self, max_len: u64) {
        self.entries
            .truncate(usize::try_from(max_len).unwrap_or(usize::MAX));
    }

    /// Redis's cut: at most 32 arguments (the last saying `... (N more arguments)`), each at
    /// most 128 bytes (then `... (N more bytes)`).
    pub fn args(request: &[Bytes]) -> Vec<Bytes> {
        let keep = if request.len() > SLOWLOG_MAX_ARGC {
            SLOWLOG_MAX_ARGC - 1
        } else {
            request.len()
        };
        let mut args: Vec<Bytes> = request[..keep]
            .iter()
            .map(|a| {
                if a.len() > SLOWLOG_MAX_STRING {
                    let mut cut = a[..SLOWLOG_MAX_STRING].to_vec();
                    cut.extend_from_slice(
                        format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_STRING).as_bytes(),
                    );
                    Bytes::from(cut)
                } else {
                    a.clone()
                }
            })
            .collect();
        if keep < request.len() {
            args.push(Bytes::from(format!(
                "... ({} more arguments)",
                request.len() - keep
            )));
        }
        args
    }

    /// The newest `count` entries (all for `None`).
    pub fn newest(&self, count: Option<usize>) -> impl Iterator<Item = &SlowEntry> {
        self.entries.iter().take(count.unwrap_or(usize::MAX))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// SLOWLOG RESET (the ids go on).
    pub fn reset(&mut self) {
        self.entries.clear();
    }
}

/// One latency event's samples: `(unix_s, ms)`, oldest first, one per second at most (the
/// largest of that second), and the largest ever.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LatencyEvent {
    pub samples: VecDeque<(u64, u64)>,
    pub max_ms: u64,
}

/// The latency monitor (LATENCY): events by name.
#[derive(Debug, Default)]
pub struct LatencyMonitor {
    pub events: BTreeMap<&'static str, LatencyEvent>,
}

impl LatencyMonitor {
    /// Notes that `event` took `ms` at `unix_s`, if `threshold_ms` is set (not 0) and `ms`
    /// reaches it (Redis's `latencyAddSampleIfNeeded`).
    pub fn note(&mut self, threshold_ms: u64, event: &'static str, ms: u64, unix_s: u64) {
        if threshold_ms == 0 || ms < threshold_ms {
            return;
        }
        let e = self.events.entry(event).or_default();
        e.max_ms = e.max_ms.max(ms);
        match e.samples.back_mut() {
            Some((at, worst)) if *at == unix_s => *worst = (*worst).max(ms),
            _ => {
                if e.samples.len() == LATENCY_HISTORY_LEN {
                    e.samples.pop_front();
                }
                e.samples.push_back((unix_s, ms));
            }
        }
    }

    /// LATENCY RESET: the named events (all if none); how many there were.
    pub fn reset(&mut self, names: &[Bytes]) -> usize {
        if names.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        let before = self.events.len();
        self.events.retain(|name, _| {
            !names
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name.as_bytes()))
        });
        before - self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::table::lookup;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn slow_log_cuts_as_redis_does() {
        let many: Vec<Bytes> = (0..40).map(|i| b(&i.to_string())).collect();
        let args = SlowLog::args(&many);
        assert_eq!(args.len(), 32);
        assert_eq!(args[30], b("30"));
        assert_eq!(args[31], b("... (9 more arguments)"));
        let long = SlowLog::args(&[b(&"x".repeat(200))]);
        assert_eq!(
            long[0],
            b(&format!("{}... (72 more bytes)", "x".repeat(128)))
        );
        let exact: Vec<Bytes> = (0..32).map(|i| b(&i.to_string())).collect();
        assert_eq!(SlowLog::args(&exact), exact);
    }

    #[test]
    fn slow_log_follows_its_threshold_and_length() {
        let mut log = SlowLog::default();
        let req = [b("get"), b("k")];
        log.note(-1, 10, 1_000_000, 1, &req, b("a"), b(""));
        assert!(log.is_empty());
        log.note(100, 10, 99, 1, &req, b("a"), b(""));
        assert!(log.is_empty());
        for i in 0..5 {
            log.note(0, 3, i, 1, &req, b("a"), b(""));
        }
        let ids: Vec<u64> = log.newest(None).map(|e| e.id).collect();
        assert_eq!(ids, vec![4, 3, 2]);
        assert_eq!(log.newest(Some(1)).count(), 1);
        log.reset();
        log.note(0, 3, 0, 1, &req, b("a"), b(""));
        assert_eq!(log.newest(None).next().map(|e| e.id), Some(5));
    }

    #[test]
    fn latency_keeps_the_worst_per_second_and_bounded_history() {
        let mut m = LatencyMonitor::default();
        m.note(0, "command", 500, 1);
        assert!(m.events.is_empty(), "threshold 0 is off");
        m.note(10, "command", 9, 1);
        assert!(m.events.is_empty());
        m.note(10, "command", 20, 1);
        m.note(10, "command", 15, 1);
        m.note(10, "command", 12, 2);
        let e = &m.events["command"];
        assert_eq!(e.samples, VecDeque::from(vec![(1, 20), (2, 12)]));
        assert_eq!(e.max_ms, 20);
        for s in 0..500 {
            m.note(1, "aof-fsync-always", 3, 10 + s);
        }
        assert_eq!(
            m.events["aof-fsync-always"].samples.len(),
            LATENCY_HISTORY_LEN
        );
        assert_eq!(m.reset(&[b("COMMAND")]), 1);
        assert_eq!(m.reset(&[]), 1);
    }

    #[test]
    fn errors_are_counted_by_kind_and_stats_reset() {
        let mut s = Stats::default();
        s.note_error("ERR unknown command 'x'");
        s.note_error("WRONGTYPE Operation against a key");
        s.note_error("ERR syntax error");
        assert_eq!(s.error_replies, 3);
        assert_eq!(s.errors_by_kind.get("ERR"), Some(&2));
        let (get, set) = (lookup(b"get").unwrap(), lookup(b"SET").unwrap());
        s.command(get).calls += 2;
        s.command(set).calls += 1;
        s.command(get).calls += 1;
        let calls = |s: &Stats| -> Vec<(&str, u64)> {
            s.commands_by_name()
                .into_iter()
                .map(|(name, stat)| (name, stat.calls))
                .collect()
        };
        assert_eq!(calls(&s), [("get", 3), ("set", 1)]);
        s.connected = 4;
        s.reset();
        assert_eq!(s.error_replies, 0);
        assert!(calls(&s).is_empty() && s.errors_by_kind.is_empty());
        assert_eq!(s.connected, 4);
    }

    #[test]
    fn ops_per_second_averages_the_samples() {
        let mut s = Stats::default();
        s.sample(0);
        for i in 1..=OPS_SAMPLES as u64 {
            s.commands += 100;
            s.sample(i * 100);
        }
        assert_eq!(s.ops_per_sec(), 1000);
    }
}

#[cfg(test)]
mod store_tests {
    use bytes::Bytes;

    use crate::backend::BackendStatus;
    use crate::keyspace::Keyspace;
    use crate::resp::Frame;
    use crate::store::{host::FakeHost, Store, StoreSettings};

    fn req(words: &[&str]) -> Vec<Bytes> {
        words
            .iter()
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn run(store: &mut Store<()>, words: &[&str]) -> Frame {
        let release = store
            .execute(1, &[req(words)], (), 2_000_000)
            .expect("no write");
        release.frames.into_iter().next().expect("one reply")
    }

    #[test]
    fn a_slow_command_is_timed_by_the_host_clock_logged_and_a_latency_event() {
        // Every reading of the clock is 12 ms after the last: each command takes 12 ms.
        let settings = StoreSettings {
            host: FakeHost::stepping(12_000_000),
            latency_monitor_threshold: 10,
            ..StoreSettings::default()
        };
        let mut store: Store<()> = Store::new(
            Keyspace::new(),
            0,
            BackendStatus::default(),
            settings,
            1_000_000,
        );
        run(&mut store, &["GET", "k"]);
        run(&mut store, &["KEYS", "*"]);
        let latest = run(&mut store, &["LATENCY", "LATEST"]);
        let event = |name: &str| {
            Frame::Array(vec![
                Frame::bulk(name),
                Frame::Integer(2000),
                Frame::Integer(12),
                Frame::Integer(12),
            ])
        };
        assert_eq!(
            latest,
            Frame::Array(vec![event("command"), event("fast-command")])
        );
        // GET, KEYS and LATENCY LATEST each took 12 ms ≥ 10 ms.
        assert_eq!(run(&mut store, &["SLOWLOG", "LEN"]), Frame::Integer(3));
        let Frame::Verbatim { text, .. } = run(&mut store, &["INFO", "commandstats"]) else {
            panic!()
        };
        let text = String::from_utf8_lossy(&text).into_owned();
        assert!(
            text.contains("cmdstat_get:calls=1,usec=12000,usec_per_call=12000.00,"),
            "{text}"
        );
    }
}
