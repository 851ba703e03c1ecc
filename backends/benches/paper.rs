//! Benchmark of the paper backend on real files, printed as a table: durable appends per second
//! (one record per append, and groups of 64), compared with the raw fdatasync rate of the same
//! disk measured in the same run, and recovery throughput of a 1,000,000-key log and of a
//! 1,000,000-key checkpoint, and the in-memory key space alone: time to insert the keys and
//! resident bytes per key (16-byte keys, 100-byte values), read from /proc/self/status.
//!
//! Run: `cargo bench -p moodb-backends --bench paper`. The files go to `$MOODB_BENCH_DIR` or
//! the system temporary directory; `MOODB_BENCH_KEYS` changes the key count (default 1000000).

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moodb_backends::paper::PaperBackend;
use moodb_backends::BackendOptions;
use moodb_core::{Backend, Keyspace, LogEntry, Record, StorageError, SyncPolicy, Value};

const SYNC_ROUNDS: u64 = 2000;
const GROUP: u64 = 64;
const GROUP_ROUNDS: u64 = 500;

#[derive(Debug, thiserror::Error)]
enum BenchError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn record(i: u64) -> Record {
    Record::Set {
        key: Bytes::from(format!("key:{i:010}")),
        value: Bytes::from(vec![b'x'; 100]),
        expires_at_ms: None,
    }
}

/// Resident set size of this process in bytes (Linux `VmRSS`), or 0 when it cannot be read.
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Inserts `keys` keys (16 bytes) with 100-byte values into an empty key space, one by one as
/// the store owner does; returns the time and the resident bytes the filled key space adds.
/// Runs first, before anything else has grown the heap, so the RSS difference is the map's.
fn keyspace_fill(keys: u64) -> (Duration, f64, Keyspace) {
    let payload = [b'x'; 100];
    let before = resident_bytes();
    let start = Instant::now();
    let mut ks = Keyspace::new();
    for i in 0..keys {
        let key = format!("key:{i:012}");
        ks.insert(
            Bytes::copy_from_slice(key.as_bytes()),
            Value::new(Bytes::copy_from_slice(&payload)),
        );
    }
    let took = start.elapsed();
    let grown = resident_bytes().saturating_sub(before);
    (took, grown as f64 / keys.max(1) as f64, ks)
}

/// Lookups of `ks`'s keys in a scattered order: mean ns per GET (hash, probe, compare).
fn keyspace_lookups(ks: &Keyspace, keys: u64) -> f64 {
    let probes: Vec<Vec<u8>> = (0..keys.min(1_000_000))
        .map(|i| format!("key:{:012}", (i * 7_919) % keys).into_bytes())
        .collect();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut found = 0usize;
        for key in &probes {
            found += ks.get(key).map_or(0, |v| v.data.len());
        }
        let ns = start.elapsed().as_nanos() as f64 / probes.len().max(1) as f64;
        assert_eq!(found, probes.len() * 100);
        best = best.min(ns);
    }
    best
}

/// What handing a GET's value to a reply costs, per key, for `ks`'s first 100,000 keys:
/// `ValueRef::bytes` (a copy up to `SHARE_ABOVE` bytes, else a `Bytes` sharing the entry;
/// sharing cost 150–200 ns against 11 ns for a copy of 100 B when it was always shared)
/// against a plain copy of the value.
fn reply_handles(ks: &Keyspace) -> (f64, f64) {
    let keys: Vec<Vec<u8>> = (0..100_000u64)
        .map(|i| format!("key:{i:012}").into_bytes())
        .collect();
    let values: Vec<_> = keys.iter().filter_map(|k| ks.get(k)).collect();
    let time = |f: &dyn Fn() -> usize| {
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            assert_eq!(f(), values.len() * 100);
            best = best.min(start.elapsed().as_nanos() as f64 / values.len().max(1) as f64);
        }
        best
    };
    let shared = time(&|| values.iter().map(|v| v.bytes().len()).sum());
    let copied = time(&|| {
        values
            .iter()
            .map(|v| Bytes::copy_from_slice(v.data).len())
            .sum()
    });
    (shared, copied)
}

/// What a checkpoint costs the store owner: the clone, then overwriting every key once while
/// the snapshot is held (each first write into a shared part copies it). Returns the clone
/// time, the mean write, the 99.9th percentile and slowest single write, and the time to walk
/// the snapshot.
fn keyspace_snapshot(
    ks: &mut Keyspace,
    keys: u64,
) -> (Duration, Duration, Duration, Duration, Duration) {
    let start = Instant::now();
    let snapshot = ks.clone();
    let clone = start.elapsed();
    let payload = [b'y'; 100];
    let mut each = Vec::with_capacity(keys as usize);
    let all = Instant::now();
    for i in 0..keys {
        let key = format!("key:{:012}", (i * 7_919) % keys);
        let one = Instant::now();
        ks.insert(
            Bytes::copy_from_slice(key.as_bytes()),
            Value::new(Bytes::copy_from_slice(&payload)),
        );
        each.push(one.elapsed());
    }
    let writes = all.elapsed() / keys.max(1) as u32;
    each.sort_unstable();
    let p999 = each
        .get(each.len() * 999 / 1000)
        .copied()
        .unwrap_or_default();
    let slowest = each.last().copied().unwrap_or_default();
    let start = Instant::now();
    let walked: usize = snapshot.iter().map(|(k, v)| k.len() + v.data.len()).sum();
    let walk = start.elapsed();
    assert_eq!(walked as u64, keys * 116);
    (clone, writes, p999, slowest, walk)
}

/// Mean time of a `size`-byte pwrite + fdatasync at increasing offsets of a file prepared by
/// `prep`.
fn raw_fdatasync(dir: &Path, name: &str, prep: Prep, size: usize) -> io::Result<Duration> {
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    let span = size as u64 * SYNC_ROUNDS + 4096;
    match prep {
        Prep::Empty => {}
        Prep::Fallocate => {
            rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, span)?;
        }
        Prep::ZeroFilled => {
            file.write_all_at(&vec![0u8; span as usize], 0)?;
        }
    }
    file.sync_all()?;
    let buf = vec![7u8; size];
    let start = Instant::now();
    for i in 0..SYNC_ROUNDS {
        file.write_all_at(&buf, i * size as u64)?;
        file.sync_data()?;
    }
    let took = start.elapsed() / SYNC_ROUNDS as u32;
    std::fs::remove_file(&path)?;
    Ok(took)
}

#[derive(Clone, Copy)]
enum Prep {
    Empty,
    Fallocate,
    ZeroFilled,
}

fn open(dir: &Path, sync: SyncPolicy) -> Result<PaperBackend, StorageError> {
    PaperBackend::open(
        dir,
        &BackendOptions {
            sync,
            ..BackendOptions::default()
        },
    )
}

/// Mean time of one durable append of `group` records.
fn appends(dir: &Path, group: u64, rounds: u64) -> Result<Duration, BenchError> {
    let mut backend = open(dir, SyncPolicy::Always)?;
    backend.recover()?;
    // Records are built before the clock starts: only the backend is timed.
    let batches: Vec<Vec<LogEntry>> = (0..rounds)
        .map(|r| {
            (0..group)
                .map(|i| {
                    let lsn = r * group + i + 1;
                    LogEntry {
                        lsn,
                        record: record(lsn),
                    }
                })
                .collect()
        })
        .collect();
    let start = Instant::now();
    for batch in &batches {
        backend.append(batch)?;
    }
    Ok(start.elapsed() / rounds as u32)
}

/// Runs this bench again as a child process that recovers `dir` and prints the figures.
fn recover_in_child(dir: &Path, what: &str) -> Result<(), BenchError> {
    let status = std::process::Command::new(std::env::current_exe()?)
        .env(RECOVER_ENV, dir)
        .env("MOODB_BENCH_RECOVER_WHAT", what)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("recovery child process failed: {status}")).into());
    }
    Ok(())
}

/// The child's work: recover `dir` and print time, throughput and resident bytes per key.
fn recover_here(dir: &Path) -> Result<(), BenchError> {
    let what = std::env::var("MOODB_BENCH_RECOVER_WHAT").unwrap_or_default();
    let before = resident_bytes();
    let mut backend = open(dir, SyncPolicy::Always)?;
    let start = Instant::now();
    let recovered = backend.recover()?;
    let took = start.elapsed();
    let keys = recovered.state.len();
    let report = &recovered.report;
    let mb = (report.log_bytes_replayed as f64) / 1e6;
    println!(
        "recovery from {what} (fresh process): {keys} keys in {:.3} s = {:.0} keys/s \
         ({} records, {mb:.1} MB of log replayed); resident after: {:.0} B/key",
        took.as_secs_f64(),
        keys as f64 / took.as_secs_f64(),
        report.records_replayed,
        resident_bytes().saturating_sub(before) as f64 / keys.max(1) as f64
    );
    Ok(())
}

const RECOVER_ENV: &str = "MOODB_BENCH_RECOVER_DIR";

fn main() -> Result<(), BenchError> {
    if let Some(dir) = std::env::var_os(RECOVER_ENV) {
        return recover_here(Path::new(&dir));
    }
    let base = std::env::var_os("MOODB_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let keys: u64 = std::env::var("MOODB_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let (took, per_key, ks) = keyspace_fill(keys);
    println!(
        "keyspace: insert {} keys (16 B key, 100 B value) one by one in {:.3} s = {:.0} keys/s; \
         resident {per_key:.0} B/key (aim ≤ 170)",
        ks.len(),
        took.as_secs_f64(),
        ks.len() as f64 / took.as_secs_f64()
    );
    let mut ks = ks;
    println!(
        "keyspace: lookup (GET) {:.0} ns/op, best of 3 passes over the keys",
        keyspace_lookups(&ks, keys)
    );
    let (shared, copied) = reply_handles(&ks);
    println!(
        "keyspace: a GET's reply value: ValueRef::bytes {shared:.0} ns, a plain copy {copied:.0} ns"
    );
    let (clone, write, p999, slowest, walk) = keyspace_snapshot(&mut ks, keys);
    println!(
        "keyspace: snapshot clone {:.1} µs; then every key overwritten once: {:.0} ns/write, \
         p99.9 {:.1} µs, slowest {:.3} ms; snapshot walk {:.3} s",
        clone.as_secs_f64() * 1e6,
        write.as_secs_f64() * 1e9,
        p999.as_secs_f64() * 1e6,
        slowest.as_secs_f64() * 1e3,
        walk.as_secs_f64()
    );
    let start = Instant::now();
    drop(ks);
    println!("keyspace: drop in {:.3} s", start.elapsed().as_secs_f64());

    let tmp = tempfile::tempdir_in(&base)?;
    let dir = tmp.path();
    println!("paper backend bench in {}", dir.display());
    println!("{:<58} {:>14} {:>12}", "measure", "value", "mean");

    let raw_empty = raw_fdatasync(dir, "raw-empty", Prep::Empty, 100)?;
    let raw_falloc = raw_fdatasync(dir, "raw-falloc", Prep::Fallocate, 100)?;
    let raw_zero = raw_fdatasync(dir, "raw-zero", Prep::ZeroFilled, 100)?;
    // The bytes of one group of 64 records (64 × 151).
    let raw_group = raw_fdatasync(dir, "raw-group", Prep::Fallocate, 64 * 151)?;
    let row = |what: &str, per_s: f64, unit: &str, mean: Duration| {
        println!(
            "{what:<58} {:>10.0} {unit:<3} {:>9.1} µs",
            per_s,
            mean.as_secs_f64() * 1e6
        );
    };
    for (what, d) in [
        (
            "raw pwrite 100 B + fdatasync, appending (growing file)",
            raw_empty,
        ),
        ("raw pwrite 100 B + fdatasync, fallocated file", raw_falloc),
        ("raw pwrite 100 B + fdatasync, zero-filled file", raw_zero),
        ("raw pwrite 9664 B + fdatasync, fallocated file", raw_group),
    ] {
        row(what, 1.0 / d.as_secs_f64(), "/s", d);
    }

    let one = appends(&dir.join("one"), 1, SYNC_ROUNDS)?;
    row(
        "paper append, sync=always, 1 record/append",
        1.0 / one.as_secs_f64(),
        "/s",
        one,
    );
    let group = appends(&dir.join("group"), GROUP, GROUP_ROUNDS)?;
    row(
        "paper append, sync=always, 64 records/append (appends)",
        1.0 / group.as_secs_f64(),
        "/s",
        group,
    );
    row(
        "  same, records per second",
        GROUP as f64 / group.as_secs_f64(),
        "/s",
        group,
    );
    let reference = raw_falloc;
    println!(
        "group of 64 / one raw 100 B fdatasync (fallocated) = {:.2} (aim ≤ 1.5); \
         group of 64 / raw fdatasync of the same 9664 B = {:.2}; one record / raw = {:.2}",
        group.as_secs_f64() / reference.as_secs_f64(),
        group.as_secs_f64() / raw_group.as_secs_f64(),
        one.as_secs_f64() / reference.as_secs_f64()
    );

    // Recovery of `keys` keys: from the log, then from a checkpoint.
    let rdir = dir.join("recovery");
    let mut backend = open(&rdir, SyncPolicy::Never)?;
    backend.recover()?;
    let mut batch = Vec::with_capacity(1000);
    let mut lsn = 0;
    while lsn < keys {
        batch.clear();
        for _ in 0..1000.min(keys - lsn) {
            lsn += 1;
            batch.push(LogEntry {
                lsn,
                record: record(lsn),
            });
        }
        backend.append(&batch)?;
    }
    backend.sync()?;
    drop(backend);
    let start = Instant::now();
    let bytes = std::fs::read(rdir.join(moodb_backends::paper::FileKind::Log(1).name()))?;
    let read = start.elapsed();
    let mut scanner =
        moodb_backends::paper::log::LogScanner::new(&bytes).map_err(io::Error::other)?;
    let scanned = scanner.by_ref().count();
    println!(
        "  log read {:.3} s, read + scan (CRC + decode, no apply) {:.3} s for {scanned} records",
        read.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    drop(bytes);
    // Each recovery runs in a fresh process, as at a server's start: in this one the heap is
    // fragmented by the maps built and freed above, which slows glibc's malloc (by ~2x here).
    recover_in_child(&rdir, "log")?;
    let mut backend = open(&rdir, SyncPolicy::Always)?;
    let recovered = backend.recover()?;
    let job = backend.begin_checkpoint(recovered.last_lsn)?;
    let start = Instant::now();
    if let Some(job) = job {
        let report = job.write(recovered.state.clone())?;
        println!(
            "checkpoint write: {} keys, {:.1} MB in {:.3} s ({:.0} B/key)",
            report.keys,
            report.bytes as f64 / 1e6,
            start.elapsed().as_secs_f64(),
            report.bytes as f64 / report.keys.max(1) as f64
        );
    }
    drop(recovered);
    drop(backend);
    recover_in_child(&rdir, "checkpoint")?;
    Ok(())
}
