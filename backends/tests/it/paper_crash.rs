//! Crashes and faults on the simulated disk: a power cut between every step of the checkpoint
//! switch, 10,000 seeded power cuts at random points of random histories, and EIO/ENOSPC
//! injected into writes, syncs and checkpoints.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common::*;
use bytes::Bytes;
use moodb_backends::paper::files::TMP_SUFFIX;
use moodb_backends::paper::fs::Fs;
use moodb_backends::paper::fs::{Fault, FaultKind, FaultOp, SimFs, SimRng};
use moodb_backends::paper::PaperBackend;
use moodb_backends::paper::{FileKind, PaperTuning};
use moodb_backends::BackendOptions;
use moodb_core::{Backend, CheckpointJob, Lsn, Record, StorageError};

fn recover_image(image: &SimFs) -> moodb_core::Recovered {
    open_sim(image, &BackendOptions::default())
        .recover()
        .unwrap_or_else(|e| panic!("recovery of a crash image failed: {e}"))
}

/// Runs `steps` fs operations into a checkpoint switch, then cuts the power; with and without
/// a spare segment to become the switch's new segment.
#[test]
fn a_crash_between_any_two_steps_of_the_checkpoint_switch_recovers_the_same_state() {
    checkpoint_switch_crashes(tuning());
    checkpoint_switch_crashes(rolling_tuning());
}

fn checkpoint_switch_crashes(tuning: PaperTuning) {
    let groups: Vec<Vec<Record>> = (0..6)
        .map(|i| vec![set(&format!("k{i}"), "v"), set("shared", &i.to_string())])
        .collect();
    let mut k = 0u64;
    loop {
        let fs = SimFs::new();
        let mut backend = open_sim_with(&fs, &BackendOptions::default(), tuning);
        backend.recover().unwrap();
        let mut model = Model::default();
        append_groups(&mut backend, &mut model, &groups[..3]);
        // A first checkpoint, so the switch also has an old checkpoint to supersede.
        let job = backend.begin_checkpoint(model.last_lsn()).unwrap().unwrap();
        job.write(model.current().clone()).unwrap();
        append_groups(&mut backend, &mut model, &groups[3..]);
        let lsn = model.last_lsn();

        fs.inject(Fault {
            op: FaultOp::Any,
            nth: k,
            kind: FaultKind::Crash,
        });
        let finished = backend
            .begin_checkpoint(lsn)
            .and_then(|job| job.map(|j| j.write(model.current().clone())).transpose())
            .is_ok();
        assert_eq!(
            finished,
            !fs.crashed(),
            "an operation failed only through the crash"
        );
        for seed in 0..8 {
            let image = fs.crash_image(seed);
            let recovered = recover_image(&image);
            assert_eq!(recovered.last_lsn, lsn, "crash after step {k}, seed {seed}");
            assert_eq!(
                &recovered.state,
                model.current(),
                "crash after step {k}, seed {seed}"
            );
            if finished {
                assert_eq!(recovered.report.checkpoint.as_ref().map(|c| c.1), Some(lsn));
            }
            // Recovery itself is idempotent: a second crash right after it changes nothing.
            let again = recover_image(&image.crash_image(seed + 1));
            assert_eq!(&again.state, model.current());
        }
        if finished {
            assert!(k >= 8, "the switch takes several steps ({k})");
            break;
        }
        k += 1;
    }
}

/// A deterministic small history driven by `rng`.
fn random_record(rng: &mut SimRng, n: u64) -> Record {
    let key = |rng: &mut SimRng| Bytes::from(format!("k{}", rng.below(6)));
    let one = |rng: &mut SimRng| match rng.below(8) {
        0 => Record::Delete { key: key(rng) },
        1 => Record::Update {
            key: key(rng),
            value: Bytes::from(format!("u{n}")),
        },
        2 if rng.below(4) == 0 => Record::Clear,
        _ => Record::Set {
            key: key(rng),
            value: Bytes::from(vec![b'v'; rng.below(2500) as usize]),
            expires_at_ms: (rng.below(3) == 0).then_some(n + 1),
        },
    };
    if rng.below(4) == 0 {
        Record::Txn((0..1 + rng.below(3)).map(|_| one(rng)).collect())
    } else {
        one(rng)
    }
}

/// What one seed exercised, so the test can show its cases are not all trivial.
#[derive(Debug, Default)]
struct Coverage {
    crashed: u64,
    unacked_survived: u64,
    unacked_lost: u64,
    from_checkpoint: u64,
    torn_tail: u64,
    /// Histories (without a checkpoint) that moved on to a spare segment.
    rolled: u64,
}

/// One seed: random appends, syncs and checkpoints, a power cut at a random operation, then
/// recovery must hold every acknowledged record, a prefix of the history, nothing partial.
/// Odd seeds make spare segments, so their histories also roll from segment to segment.
fn power_cut(seed: u64, cov: &mut Coverage) {
    let mut rng = SimRng::new(seed);
    let fs = SimFs::new();
    let tuning = if seed % 2 == 1 {
        rolling_tuning()
    } else {
        tuning()
    };
    let mut backend = open_sim_with(&fs, &BackendOptions::default(), tuning);
    let mut checkpoints = 0;
    backend.recover().unwrap();
    fs.inject(Fault {
        op: FaultOp::Any,
        nth: rng.below(40),
        kind: FaultKind::Crash,
    });
    let mut model = Model::default();
    let mut acked: Lsn = 0;
    let mut pending: Option<(Box<dyn CheckpointJob>, Lsn)> = None;
    for _ in 0..12 {
        match rng.below(10) {
            0 | 1 if pending.is_none() => match backend.begin_checkpoint(model.last_lsn()) {
                Ok(job) => {
                    checkpoints += 1;
                    pending = job.map(|j| (j, model.last_lsn()));
                }
                Err(_) => break,
            },
            2 if pending.is_some() => {
                if let Some((job, lsn)) = pending.take() {
                    let _ = job.write(model.state(lsn).clone());
                }
            }
            3 => {
                let _ = backend.sync();
            }
            _ => {
                let records: Vec<Record> = (0..1 + rng.below(4))
                    .map(|_| random_record(&mut rng, model.last_lsn()))
                    .collect();
                let entries = model.entries(&records);
                match backend.append(&entries) {
                    Ok(_) => acked = model.last_lsn(),
                    Err(_) => {
                        // Refused from now on; the records may or may not be on disk.
                        assert!(matches!(
                            backend.append(&model.entries(&[set("x", "y")])),
                            Err(StorageError::Poisoned(_))
                        ));
                        break;
                    }
                }
            }
        }
    }
    let attempted = model.last_lsn();
    let segments = fs
        .list_dir(&dir())
        .unwrap()
        .iter()
        .filter(|name| matches!(FileKind::parse(name), Some(FileKind::Log(_))))
        .count();
    let image = fs.crash_image(seed.wrapping_add(1));
    let recovered = open_sim_with(&image, &BackendOptions::default(), tuning)
        .recover()
        .unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"));
    let got = recovered.last_lsn;
    assert!(
        got >= acked,
        "seed {seed}: lost acknowledged lsn {acked} (recovered {got})"
    );
    assert!(
        got <= attempted,
        "seed {seed}: lsn {got} from the future ({attempted})"
    );
    assert_eq!(
        &recovered.state,
        model.state(got),
        "seed {seed}: not the state after lsn {got}"
    );
    cov.crashed += u64::from(fs.crashed());
    cov.unacked_survived += u64::from(got > acked);
    cov.unacked_lost += u64::from(got < attempted);
    cov.from_checkpoint += u64::from(recovered.report.checkpoint.is_some());
    cov.torn_tail += u64::from(recovered.report.bytes_truncated > 0);
    cov.rolled += u64::from(checkpoints == 0 && segments > 1);
}

#[test]
fn ten_thousand_seeded_power_cuts_lose_nothing_acknowledged() {
    let mut cov = Coverage::default();
    for seed in 0..10_000 {
        power_cut(seed, &mut cov);
    }
    eprintln!("{cov:?}");
    // Every kind of outcome happened many times: the seeds are not all trivial.
    for (what, n) in [
        ("crashed mid-history", cov.crashed),
        ("kept an unacknowledged append", cov.unacked_survived),
        ("lost an unacknowledged append", cov.unacked_lost),
        ("recovered from a checkpoint", cov.from_checkpoint),
        ("cut a torn tail", cov.torn_tail),
        ("rolled to a spare segment", cov.rolled),
    ] {
        assert!(n >= 100, "only {n} of 10000 seeds {what}: {cov:?}");
    }
}

fn setup(fs: &SimFs) -> (PaperBackend, Model) {
    let mut backend = open_sim(fs, &BackendOptions::default());
    backend.recover().unwrap();
    let mut model = Model::default();
    append_groups(
        &mut backend,
        &mut model,
        &[vec![set("a", "1")], vec![set("b", "2"), set("c", "3")]],
    );
    (backend, model)
}

#[test]
fn a_failed_write_or_sync_poisons_the_backend_and_loses_nothing_acknowledged() {
    for (op, kind) in [
        (FaultOp::Write, FaultKind::Eio),
        (FaultOp::Write, FaultKind::Enospc),
        (FaultOp::Sync, FaultKind::Eio),
    ] {
        let fs = SimFs::new();
        let (mut backend, mut model) = setup(&fs);
        let acked = model.last_lsn();
        fs.inject(Fault { op, nth: 0, kind });
        let failed = backend.append(&model.entries(&[set("d", "4")]));
        assert!(
            matches!(failed, Err(StorageError::Io { .. })),
            "{op:?} {kind:?}: {failed:?}"
        );
        let next = backend.append(&model.entries(&[set("e", "5")]));
        assert!(matches!(next, Err(StorageError::Poisoned(_))), "{next:?}");
        assert!(matches!(backend.sync(), Err(StorageError::Poisoned(_))));
        assert!(matches!(
            backend.begin_checkpoint(model.last_lsn()),
            Err(StorageError::Poisoned(_))
        ));
        assert!(backend.status().durable_lsn == acked);
        for seed in 0..4 {
            let recovered = recover_image(&fs.crash_image(seed));
            assert!(recovered.last_lsn >= acked && recovered.last_lsn <= acked + 1);
            assert_eq!(&recovered.state, model.state(recovered.last_lsn));
        }
    }
}

#[test]
fn a_full_disk_during_a_checkpoint_keeps_the_previous_checkpoint_and_log() {
    let mut k = 0;
    loop {
        let fs = SimFs::new();
        let (mut backend, mut model) = setup(&fs);
        let first = model.last_lsn();
        backend
            .begin_checkpoint(first)
            .unwrap()
            .unwrap()
            .write(model.current().clone())
            .unwrap();
        append_groups(&mut backend, &mut model, &[vec![set("z", "26")]]);
        let lsn = model.last_lsn();
        let job = backend.begin_checkpoint(lsn).unwrap().unwrap();
        fs.inject(Fault {
            op: FaultOp::Any,
            nth: k,
            kind: FaultKind::Enospc,
        });
        let result = job.write(model.current().clone());
        fs.clear_fault();
        // The backend is not poisoned by a failed checkpoint: appends go on.
        append_groups(&mut backend, &mut model, &[vec![set("after", "fail")]]);
        for image in [fs.crash_image(0), fs.crash_image(k + 7), fs.clone()] {
            let recovered = recover_image(&image);
            assert_eq!(&recovered.state, model.current(), "ENOSPC at step {k}");
            let cp = recovered.report.checkpoint.as_ref().map(|c| c.1);
            assert!(cp == Some(first) || cp == Some(lsn), "{cp:?}");
        }
        let names = {
            let image = fs.crash_image(0);
            open_sim(&image, &BackendOptions::default())
                .recover()
                .unwrap();
            moodb_backends::paper::fs::Fs::list_dir(&image, &dir()).unwrap()
        };
        assert!(
            names.iter().all(|n| !n.ends_with(TMP_SUFFIX)),
            "recovery removes temporaries: {names:?}"
        );
        if result.is_ok() {
            break;
        }
        k += 1;
    }
    assert!(k >= 4, "ENOSPC was injected into every step ({k})");
}
