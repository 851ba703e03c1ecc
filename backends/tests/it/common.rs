//! Helpers shared by the paper backend's tests: opening on a simulated disk, a model of the
//! expected state after each LSN, and proptest strategies for records.
#![allow(clippy::unwrap_used, dead_code)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use moodb_backends::paper::fs::SimFs;
use moodb_backends::paper::{PaperBackend, PaperTuning, SpareMode};
use moodb_backends::BackendOptions;
use moodb_core::{Backend, Databases, LogEntry, Lsn, Record};
use proptest::prelude::*;

pub const DIR: &str = "/db";

pub fn dir() -> PathBuf {
    PathBuf::from(DIR)
}

/// Small preallocation chunks so simulated files stay small but still have a zero tail; no
/// spare segments, so a history without checkpoints stays in one segment.
pub fn tuning() -> PaperTuning {
    PaperTuning {
        prealloc_bytes: 512,
        spare: SpareMode::Off,
    }
}

/// As [`tuning`], with spare segments made inline: histories roll from segment to segment
/// (every 512 bytes), deterministically.
pub fn rolling_tuning() -> PaperTuning {
    PaperTuning {
        spare: SpareMode::Inline,
        ..tuning()
    }
}

pub fn open_sim(fs: &SimFs, options: &BackendOptions) -> PaperBackend {
    open_sim_with(fs, options, tuning())
}

pub fn open_sim_with(fs: &SimFs, options: &BackendOptions, tuning: PaperTuning) -> PaperBackend {
    PaperBackend::open_with(Arc::new(fs.clone()), Path::new(DIR), options, tuning).unwrap()
}

pub fn salvage() -> BackendOptions {
    BackendOptions {
        salvage: true,
        ..BackendOptions::default()
    }
}

pub fn set(k: &str, v: &str) -> Record {
    Record::Set {
        key: Bytes::copy_from_slice(k.as_bytes()),
        value: Bytes::copy_from_slice(v.as_bytes()),
        expires_at_ms: None,
    }
}

/// Expected states: `states[lsn]` is the key space after record `lsn` (index 0: empty).
#[derive(Debug, Clone)]
pub struct Model {
    pub states: Vec<Databases>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            states: vec![Databases::default()],
        }
    }
}

impl Model {
    pub fn last_lsn(&self) -> Lsn {
        (self.states.len() - 1) as Lsn
    }

    /// Turns records into entries with the next LSNs and applies them to the model.
    pub fn entries(&mut self, records: &[Record]) -> Vec<LogEntry> {
        records
            .iter()
            .map(|r| {
                let mut s = self.states[self.states.len() - 1].clone();
                s.apply(r);
                self.states.push(s);
                LogEntry {
                    lsn: self.last_lsn(),
                    record: r.clone(),
                }
            })
            .collect()
    }

    pub fn state(&self, lsn: Lsn) -> &Databases {
        &self.states[lsn as usize]
    }

    pub fn current(&self) -> &Databases {
        &self.states[self.states.len() - 1]
    }
}

/// Appends `groups`, one `append` call per group.
pub fn append_groups(backend: &mut dyn Backend, model: &mut Model, groups: &[Vec<Record>]) {
    for g in groups {
        let entries = model.entries(g);
        backend.append(&entries).unwrap();
    }
}

fn bytes_from(set: &'static [&'static str]) -> impl Strategy<Value = Bytes> {
    proptest::sample::select(set).prop_map(|s| Bytes::copy_from_slice(s.as_bytes()))
}

/// One operation on a small key set, so that updates and deletes hit existing keys.
pub fn op() -> impl Strategy<Value = Record> {
    let key = || bytes_from(&["a", "b", "c", "dd", "eee"]);
    let value = || proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from);
    prop_oneof![
        4 => (key(), value(), proptest::option::of(1u64..1_000_000)).prop_map(|(k, v, e)| {
            Record::Set { key: k, value: v, expires_at_ms: e }
        }),
        1 => (key(), value()).prop_map(|(k, v)| Record::Update { key: k, value: v }),
        1 => key().prop_map(|k| Record::Delete { key: k }),
        1 => Just(Record::Clear),
    ]
}

/// A record: an operation, or a transaction of a few.
pub fn record() -> impl Strategy<Value = Record> {
    prop_oneof![
        4 => op(),
        1 => proptest::collection::vec(op(), 1..4).prop_map(Record::Txn),
    ]
}

/// Groups of records, one `append` each.
pub fn groups(max_groups: usize) -> impl Strategy<Value = Vec<Vec<Record>>> {
    proptest::collection::vec(proptest::collection::vec(record(), 1..4), 1..max_groups)
}
