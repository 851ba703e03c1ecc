//! Value segment compaction on the simulated disk: a power cut at every file operation of a
//! history of spills, compactions (live values copied to the current segment, entries
//! repointed, the old segment retired) and checkpoints (which delete retired segments they no
//! longer point into) recovers a state whose every value, inline or read through its pointer,
//! is the one the log acknowledged.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use crate::common::*;
use moodb_backends::paper::fs::{Fault, FaultKind, FaultOp, SimFs};
use moodb_backends::paper::values::{segment_name, PaperValues};
use moodb_backends::BackendOptions;
use moodb_core::value_store::{SharedValueStore, ValueStore};
use moodb_core::{Backend, Databases, Lsn, Record};
use std::sync::Arc;

/// The state as a client sees it: every pointer replaced by the value it names in `values`.
fn resolve(state: &Databases, values: &dyn ValueStore) -> Result<Databases, String> {
    let mut out = Databases::default();
    for (db, key, v) in state.entries() {
        let data = match v.spilled {
            Some(ptr) => values.get(ptr).map_err(|e| e.to_string())?,
            None => v.bytes(),
        };
        let ks = out.db_mut(db);
        ks.put(key, &data, v.expires_at_ms);
    }
    Ok(out)
}

fn value(round: usize, key: usize) -> String {
    format!("round {round} key {key} ").repeat(6)
}

/// What the history has done so far (kept across its failure at the power cut).
struct Run {
    backend: moodb_backends::paper::PaperBackend,
    values: SharedValueStore,
    /// The store's state: inline values and pointers.
    state: Databases,
    /// The expected logical states by LSN.
    model: Model,
    /// The last LSN whose append returned (synced: the default policy syncs every group).
    acked: Lsn,
}

impl Run {
    fn write(&mut self, round: usize, keys: std::ops::Range<usize>) -> Result<(), String> {
        let records: Vec<Record> = keys
            .map(|k| set(&format!("k{k}"), &value(round, k)))
            .collect();
        let entries = self.model.entries(&records);
        self.backend.append(&entries).map_err(|e| e.to_string())?;
        self.acked = self.model.last_lsn();
        for r in &records {
            self.state.apply(r);
        }
        Ok(())
    }

    /// Spills every inline value, as the store's spill step does.
    fn spill_all(&mut self) -> Result<(), String> {
        let inline: Vec<(Vec<u8>, Vec<u8>)> = self
            .state
            .entries()
            .filter(|(_, _, v)| v.spilled.is_none())
            .map(|(_, k, v)| (k.to_vec(), v.data.to_vec()))
            .collect();
        for (k, v) in inline {
            let ptr = self.values.put(&v).map_err(|e| e.to_string())?;
            assert!(self.state.db_mut(0).spill(&k, ptr));
        }
        Ok(())
    }

    /// Copies the live values of `segment` to the current segment, repoints them, retires it.
    fn compact(&mut self, segment: u32) -> Result<(), String> {
        let live: Vec<(Vec<u8>, moodb_core::value_store::ValuePtr)> = self
            .state
            .entries()
            .filter_map(|(_, k, v)| v.spilled.map(|p| (k.to_vec(), p)))
            .filter(|(_, p)| p.segment == segment)
            .collect();
        for (k, from) in live {
            let bytes = self.values.get(from).map_err(|e| e.to_string())?;
            let to = self.values.put(&bytes).map_err(|e| e.to_string())?;
            assert!(self.state.db_mut(0).repoint(&k, from, to));
        }
        assert!(!self.state.db0().segment_figures().contains_key(&segment));
        self.values.retire(segment);
        Ok(())
    }

    fn checkpoint(&mut self) -> Result<(), String> {
        let job = self
            .backend
            .begin_checkpoint(self.model.last_lsn())
            .map_err(|e| e.to_string())?
            .ok_or("no job")?;
        job.write(self.state.clone()).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The part of the history the power cut falls into: two rounds of overwrite, roll,
    /// compaction and checkpoint.
    fn history(&mut self) -> Result<(), String> {
        for round in 1..=2u32 {
            let r = round as usize;
            self.write(r, 0..6)?;
            self.spill_all()?;
            self.values.roll();
            self.compact(round - 1)?;
            self.write(r + 10, 6..7)?;
            self.checkpoint()?;
        }
        Ok(())
    }
}

/// Keys spilled to segment 0 and a first checkpoint pointing there, outside the cut.
fn setup(fs: &SimFs) -> Run {
    let mut backend = open_sim(fs, &BackendOptions::default());
    backend.recover().unwrap();
    let values = backend.value_store().unwrap();
    let mut run = Run {
        backend,
        values,
        state: Databases::default(),
        model: Model::default(),
        acked: 0,
    };
    run.write(0, 0..8).unwrap();
    run.spill_all().unwrap();
    run.checkpoint().unwrap();
    run
}

#[test]
fn a_power_cut_at_any_step_of_compactions_and_checkpoints_recovers_every_value() {
    let mut k = 0u64;
    loop {
        let fs = SimFs::new();
        let mut run = setup(&fs);
        fs.inject(Fault {
            op: FaultOp::Any,
            nth: k,
            kind: FaultKind::Crash,
        });
        let finished = run.history().is_ok();
        assert_eq!(finished, !fs.crashed(), "only the cut fails an operation");
        for seed in 0..8 {
            let image = fs.crash_image(seed);
            let mut backend = open_sim(&image, &BackendOptions::default());
            let recovered = backend
                .recover()
                .unwrap_or_else(|e| panic!("cut at {k}, seed {seed}: {e}"));
            let at = recovered.last_lsn;
            assert!(
                at >= run.acked && at <= run.model.last_lsn(),
                "cut at {k}, seed {seed}: recovered lsn {at}, acknowledged {}",
                run.acked
            );
            let values = PaperValues::open_with_fs(Arc::new(image.clone()), &dir()).unwrap();
            let seen = resolve(&recovered.state, &values)
                .unwrap_or_else(|e| panic!("cut at {k}, seed {seed}: {e}"));
            assert_eq!(&seen, run.model.state(at), "cut at {k}, seed {seed}");
        }
        if finished {
            assert!(k > 20, "the history takes many steps ({k})");
            // Segments 0 and 1 were retired and a checkpoint not pointing there is durable.
            for n in 0..2 {
                assert!(
                    fs.file(&dir().join(segment_name(n))).is_none(),
                    "segment {n} kept"
                );
            }
            assert!(fs.file(&dir().join(segment_name(2))).is_some());
            break;
        }
        k += 1;
    }
}

/// A retired segment that the checkpoint being written still points into (its state was
/// taken before the compaction) stays; the next checkpoint deletes it.
#[test]
fn a_checkpoint_of_a_state_from_before_the_compaction_keeps_the_segment() {
    let fs = SimFs::new();
    let mut run = setup(&fs);
    let before = run.state.clone();
    run.values.roll();
    run.compact(0).unwrap();
    let job = run
        .backend
        .begin_checkpoint(run.model.last_lsn())
        .unwrap()
        .unwrap();
    job.write(before.clone()).unwrap();
    assert!(fs.file(&dir().join(segment_name(0))).is_some());
    run.checkpoint().unwrap();
    assert!(fs.file(&dir().join(segment_name(0))).is_none());
    let image = fs.crash_image(0);
    let recovered = open_sim(&image, &BackendOptions::default())
        .recover()
        .unwrap();
    let values = PaperValues::open_with_fs(Arc::new(image), &dir()).unwrap();
    assert_eq!(
        &resolve(&recovered.state, &values).unwrap(),
        run.model.current()
    );
}
