//! Torn writes and bit flips: a log built from random operations is cut at every byte offset
//! (every record boundary and every point inside a record) and has single bits flipped; the
//! recovered state must be the model state after the last complete record, or recovery must
//! fail loudly naming the file and offset of mid-log damage. Never anything else.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use crate::common::*;
use moodb_backends::paper::fs::SimFs;
use moodb_backends::paper::log::{LogScanner, ScannedRecord, LOG_HEADER_LEN};
use moodb_backends::paper::FileKind;
use moodb_backends::BackendOptions;
use moodb_core::{Backend, Databases, Lsn, Recovered, StorageError};
use proptest::prelude::*;

fn log_path() -> PathBuf {
    dir().join(FileKind::Log(1).name())
}

/// Builds a log from `groups` and returns its bytes, its records and the model.
fn build(groups: &[Vec<moodb_core::Record>]) -> (Vec<u8>, Vec<ScannedRecord>, Model) {
    let fs = SimFs::new();
    let mut backend = open_sim(&fs, &BackendOptions::default());
    backend.recover().unwrap();
    let mut model = Model::default();
    append_groups(&mut backend, &mut model, groups);
    let bytes = fs.file(&log_path()).unwrap();
    let records: Vec<ScannedRecord> = LogScanner::new(&bytes).unwrap().collect();
    assert_eq!(records.len() as Lsn, model.last_lsn());
    (bytes, records, model)
}

fn recover_bytes(bytes: &[u8], options: &BackendOptions) -> Result<Recovered, StorageError> {
    let fs = SimFs::new();
    fs.put_file(&log_path(), bytes);
    let mut backend = open_sim(&fs, options);
    let recovered = backend.recover()?;
    // The recovered backend must accept appends after the cut and find them again.
    let mut state = recovered.state.clone();
    let next = recovered.last_lsn + 1;
    let extra = set("after-recovery", "x");
    backend
        .append(&[moodb_core::LogEntry {
            lsn: next,
            record: extra.clone(),
        }])
        .unwrap();
    state.apply(&extra);
    let mut again = open_sim(&fs, options);
    let second = again.recover().unwrap();
    assert_eq!(
        second.state, state,
        "appends after recovery survive a reopen"
    );
    assert_eq!(second.last_lsn, next);
    Ok(recovered)
}

fn assert_state(got: &Databases, want: &Databases, what: &str) {
    assert_eq!(got, want, "{what}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_cut_at_any_byte_recovers_the_last_complete_record(groups in groups(6)) {
        let (bytes, records, model) = build(&groups);
        let end = records.last().map_or(LOG_HEADER_LEN as u64, |r| r.offset + r.len);
        for cut in 0..=end as usize {
            let recovered = recover_bytes(&bytes[..cut], &BackendOptions::default())
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            let complete = records.iter().filter(|r| r.offset + r.len <= cut as u64).count() as Lsn;
            assert_state(&recovered.state, model.state(complete), &format!("cut at {cut}"));
            prop_assert_eq!(recovered.last_lsn, complete);
            let torn = cut as u64 != end && !records.iter().any(|r| r.offset == cut as u64);
            if torn && cut >= LOG_HEADER_LEN {
                prop_assert!(recovered.report.bytes_truncated > 0, "cut at {} reports the torn tail", cut);
            }
            prop_assert!(recovered.report.salvaged.is_none());
        }
    }

    #[test]
    fn a_bit_flip_recovers_a_prefix_or_fails_loudly(
        groups in groups(6),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 24),
    ) {
        let (bytes, records, model) = build(&groups);
        let last_group_first = records.last().map_or(1, |r| r.group_first_lsn());
        for (index, bit) in flips {
            let at = index.index(bytes.len());
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << bit;
            let hit = records.iter().find(|r| r.offset <= at as u64 && (at as u64) < r.offset + r.len);
            let strict = recover_bytes(&damaged, &BackendOptions::default());
            let salvaged = recover_bytes(&damaged, &salvage());
            match hit {
                _ if at < LOG_HEADER_LEN => {
                    match strict {
                        Err(StorageError::Corrupt { offset: 0, .. }) => {}
                        other => panic!("flip in header at {at}: {other:?}"),
                    }
                }
                None => {
                    // The zero tail: the garbage is cut as a torn tail, nothing is lost.
                    let r = strict.unwrap();
                    assert_state(&r.state, model.current(), &format!("flip in tail at {at}"));
                    prop_assert!(r.report.bytes_truncated > 0);
                }
                Some(rec) if rec.lsn >= last_group_first => {
                    // Inside the last group: a torn tail, cut at the damaged record.
                    let r = strict.unwrap_or_else(|e| panic!("flip at {at} in last group: {e}"));
                    assert_state(&r.state, model.state(rec.lsn - 1), &format!("flip at {at}"));
                    prop_assert!(r.report.salvaged.is_none());
                }
                Some(rec) => {
                    match strict {
                        Err(StorageError::Corrupt { file, offset, .. }) => {
                            prop_assert_eq!(file, log_path());
                            prop_assert_eq!(offset, rec.offset);
                        }
                        other => panic!("flip at {at} in lsn {} must fail: {other:?}", rec.lsn),
                    }
                    let r = salvaged.unwrap();
                    assert_state(&r.state, model.state(rec.lsn - 1), &format!("salvage of flip at {at}"));
                    prop_assert!(r.report.salvaged.is_some());
                }
            }
        }
    }
}

/// A power cut may persist the pages of one unsynced write in any order: a hole inside the
/// last group with that group's records after it is a torn tail, not mid-log damage.
#[test]
fn a_hole_inside_the_last_group_is_a_torn_tail() {
    let big = |k: &str| set(k, &"v".repeat(5000));
    let groups = vec![vec![set("a", "1")], vec![big("b"), big("c"), big("d")]];
    let (bytes, records, model) = build(&groups);
    let mut holed = bytes.clone();
    let c = &records[2];
    holed[c.offset as usize..(c.offset + 4096) as usize].fill(0);
    let r = recover_bytes(&holed, &BackendOptions::default()).unwrap();
    assert_eq!(r.last_lsn, 2);
    assert_state(&r.state, model.state(2), "hole in the last group");
    assert!(r.report.bytes_truncated > 0);
    assert!(r.report.salvaged.is_none());
    // The same hole in a group followed by another group is damage, not a power cut.
    let (bytes, records, _) = build(&[groups[1].clone(), vec![set("e", "5")]]);
    let mut holed = bytes.clone();
    let b = &records[1];
    holed[b.offset as usize..(b.offset + 4096) as usize].fill(0);
    match recover_bytes(&holed, &BackendOptions::default()) {
        Err(StorageError::Corrupt { offset, .. }) => assert_eq!(offset, b.offset),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}
