//! Where the process's threads run: the server may keep its event loop on one CPU
//! ([`pin_event_loop`]); the helper threads (the sync thread, the spare-segment zeroer, the
//! recovery readers, tokio's blocking threads) stay free to run on every CPU the process may
//! use ([`enter_helper_thread`]: a thread started from the pinned loop would otherwise inherit
//! its pin); the snapshotter, long CPU-bound work, runs off the loop's CPU
//! ([`enter_background_thread`]).
//!
//! Why (bench/results-2026-12-06.md): on a 2-CPU machine the scheduler kept the event loop and
//! a local client (redis-benchmark) on one CPU, each woken by the other, while the other CPU
//! idled 30–45% of the time; with the loop held on the last CPU, durable SET -P1 -c 50 ran
//! 1.04–1.28× as fast (1.20× over five rounds). Helpers kept off the loop's CPU lost to helpers left free (SET -P16
//! 0.80× against 0.92× unpinned): the sync thread then competed with the client. The
//! snapshotter off the loop's CPU against free: checkpointing p99 2.01/1.74/2.40 ms against
//! 2.42/1.86/2.56, slowest SET 3.8–5.0 ms against 3.7–31.8.

use std::io;
use std::sync::OnceLock;

use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// The CPUs helper threads run on (every CPU the process could use when the loop was pinned),
/// once the event loop is pinned.
static HELPER_CPUS: OnceLock<Vec<usize>> = OnceLock::new();

/// The CPU the event loop is pinned to, once it is.
static EVENT_LOOP_CPU: OnceLock<usize> = OnceLock::new();

/// The CPUs the calling thread may run on, in increasing order.
pub fn allowed() -> io::Result<Vec<usize>> {
    let set = sched_getaffinity(None)?;
    Ok((0..CpuSet::MAX_CPU).filter(|&c| set.is_set(c)).collect())
}

fn set_of(cpus: &[usize]) -> CpuSet {
    let mut set = CpuSet::new();
    for &c in cpus {
        set.set(c);
    }
    set
}

/// Pins the calling thread (the event loop) to `cpu`; helper threads started from it later
/// go back to every CPU it could use before. Errors if `cpu` is not one the thread may use,
/// or if the kernel refuses; then nothing changed.
pub fn pin_event_loop(cpu: usize) -> io::Result<()> {
    let allowed = allowed()?;
    if !allowed.contains(&cpu) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("CPU {cpu} is not one this process may run on ({allowed:?})"),
        ));
    }
    sched_setaffinity(None, &set_of(&[cpu]))?;
    // Set once: a second pin (another server in the same process, as in tests) keeps the
    // first one's helpers.
    let _ = HELPER_CPUS.set(allowed);
    let _ = EVENT_LOOP_CPU.set(cpu);
    Ok(())
}

/// Frees the calling thread, a helper, from the event loop's pin (which a thread started from
/// the loop inherits). Best effort: a refusal leaves the thread where it was, which is
/// correct, only slower.
pub fn enter_helper_thread() {
    if let Some(helpers) = HELPER_CPUS.get() {
        let _ = sched_setaffinity(None, &set_of(helpers));
    }
}

/// Moves the calling thread, one doing long background work (the snapshotter writing a
/// checkpoint), off the event loop's CPU when the loop is pinned and another CPU is left: the
/// pinned loop cannot move away from it. Best effort, as [`enter_helper_thread`].
pub fn enter_background_thread() {
    let (Some(helpers), Some(event_loop)) = (HELPER_CPUS.get(), EVENT_LOOP_CPU.get()) else {
        return;
    };
    let others: Vec<usize> = helpers
        .iter()
        .copied()
        .filter(|c| c != event_loop)
        .collect();
    if !others.is_empty() {
        let _ = sched_setaffinity(None, &set_of(&others));
    }
}

/// The CPUs helper threads run on, if the event loop is pinned.
pub fn helper_cpus() -> Option<&'static [usize]> {
    HELPER_CPUS.get().map(Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calling_thread_may_run_somewhere() {
        let cpus = allowed().expect("sched_getaffinity");
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_cpu_the_process_may_not_use_is_refused() {
        let err = pin_event_loop(CpuSet::MAX_CPU - 1).expect_err("not allowed");
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    /// On a thread of its own (the pin stays with the thread): the loop's thread runs on the
    /// chosen CPU only, a helper thread started from it on every CPU the loop could use, a
    /// background thread on every one but the loop's.
    #[test]
    fn a_helper_started_from_the_pinned_loop_is_free_of_its_pin() {
        let cpus = allowed().expect("sched_getaffinity");
        let Some(&last) = cpus.last() else { return };
        if cpus.len() < 2 {
            return;
        }
        std::thread::spawn(move || {
            pin_event_loop(last).expect("pin");
            assert_eq!(allowed().expect("affinity"), vec![last]);
            let helper = std::thread::spawn(|| {
                enter_helper_thread();
                allowed().expect("affinity")
            })
            .join()
            .expect("helper");
            assert_eq!(helper, cpus);
            assert_eq!(Some(helper.as_slice()), helper_cpus());
            let background = std::thread::spawn(|| {
                enter_background_thread();
                allowed().expect("affinity")
            })
            .join()
            .expect("background");
            let others: Vec<usize> = cpus.iter().copied().filter(|&c| c != last).collect();
            assert_eq!(background, others);
        })
        .join()
        .expect("loop thread");
    }
}
