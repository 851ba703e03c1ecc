//! Runs a workload: one thread per client, each executing its own stream of operations one at
//! a time and recording every latency in an HDR histogram, with a progress bar on stderr
//! (hidden when stderr is not a terminal).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};

use super::workload::{Limit, OpStream, Workload};
use super::{BenchError, Client};

/// Highest latency the histograms track (longer ones are clamped to it).
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// Clients publish their progress every this many operations.
const PROGRESS_EVERY: u64 = 64;

/// What one run measured.
#[derive(Debug)]
pub struct RunResult {
    pub ops: u64,
    /// From the start of the run until the last client finished.
    pub elapsed: Duration,
    /// Latency of every operation, in nanoseconds.
    pub latency: Histogram<u64>,
}

impl RunResult {
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A latency histogram in nanoseconds with three significant figures.
pub fn new_histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
        .map_err(|err| BenchError::Usage(format!("cannot create latency histogram: {err}")))
}

/// Runs `workload` with one thread per client in `clients`; `label` prefixes the progress bar.
pub fn run(
    clients: Vec<Box<dyn Client>>,
    workload: &Workload,
    label: &str,
) -> Result<RunResult, BenchError> {
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let progress = progress_bar(workload.limit, label);
    let started = Instant::now();
    let deadline = match workload.limit {
        Limit::Duration(d) => Some(started + d),
        Limit::Ops(_) => None,
    };
    let results = thread::scope(|scope| {
        let (done, failed) = (&done, &failed);
        let handles: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(index, mut client)| {
                scope.spawn(move || {
                    let quota = workload.limit.ops_for_client(index, workload.clients);
                    let result = client_loop(
                        client.as_mut(),
                        OpStream::new(workload, index),
                        quota,
                        deadline,
                        done,
                        failed,
                    );
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    result.map(|hist| (hist, Instant::now()))
                })
            })
            .collect();
        while !handles.iter().all(|h| h.is_finished()) {
            thread::sleep(Duration::from_millis(100));
            match workload.limit {
                Limit::Ops(_) => progress.set_position(done.load(Ordering::Relaxed)),
                Limit::Duration(_) => {
                    progress.set_position(started.elapsed().as_millis() as u64);
                    progress.set_message(format!("{label} {} ops", done.load(Ordering::Relaxed)));
                }
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(BenchError::WriterGone("a client thread panicked".into()))
                })
            })
            .collect::<Vec<_>>()
    });
    progress.finish_and_clear();
    let mut latency = new_histogram()?;
    let mut finished = started;
    for result in results {
        let (hist, end) = result?;
        latency
            .add(&hist)
            .map_err(|err| BenchError::Usage(format!("cannot merge latency histograms: {err}")))?;
        finished = finished.max(end);
    }
    Ok(RunResult {
        ops: latency.len(),
        elapsed: finished - started,
        latency,
    })
}

fn client_loop(
    client: &mut dyn Client,
    mut ops: OpStream,
    quota: Option<u64>,
    deadline: Option<Instant>,
    done: &AtomicU64,
    failed: &AtomicBool,
) -> Result<Histogram<u64>, BenchError> {
    let mut hist = new_histogram()?;
    let mut count = 0u64;
    loop {
        if quota.is_some_and(|q| count >= q)
            || deadline.is_some_and(|d| Instant::now() >= d)
            || failed.load(Ordering::Relaxed)
        {
            break;
        }
        let op = ops.next_op();
        let started = Instant::now();
        client.execute(&op)?;
        hist.saturating_record(started.elapsed().as_nanos() as u64);
        count += 1;
        if count.is_multiple_of(PROGRESS_EVERY) {
            done.fetch_add(PROGRESS_EVERY, Ordering::Relaxed);
        }
    }
    done.fetch_add(count % PROGRESS_EVERY, Ordering::Relaxed);
    Ok(hist)
}

fn progress_bar(limit: Limit, label: &str) -> ProgressBar {
    let (len, template) = match limit {
        Limit::Ops(n) => (
            n,
            "{msg} [{bar:40}] {pos}/{len} ops ({per_sec}, {eta} left)",
        ),
        Limit::Duration(d) => (d.as_millis() as u64, "{msg} [{bar:40}] {elapsed}"),
    };
    let progress = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        progress.set_style(style.progress_chars("=> "));
    }
    progress.set_message(label.to_string());
    progress
}
