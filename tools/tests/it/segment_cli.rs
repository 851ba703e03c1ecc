//! `moodb segment inspect` end to end, and the per-segment figures of `moodb snapshot
//! inspect`, over value segments written by the paper backend's `PaperValues` and a
//! checkpoint pointing into them: golden help and text output, JSON read back, a damaged value
//! named by file and offset with exit status 2.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

use moodb_backends::paper::checkpoint::encode_checkpoint;
use moodb_backends::paper::values::{segment_name, PaperValues};
use moodb_backends::paper::FileKind;
use moodb_core::value_store::{ValuePtr, ValueStore};
use moodb_core::Databases;

fn moodb(args: &[&str], path: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moodb"))
        .args(args)
        .arg(path)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    (
        out.status.code().unwrap(),
        stdout.replace(path.to_str().unwrap(), "[PATH]"),
    )
}

/// Segment 0 with five values and segment 1 with two (two runs of the value store), and a
/// checkpoint that points to two values of segment 0 and one of segment 1.
fn data_dir() -> (tempfile::TempDir, Vec<ValuePtr>) {
    let dir = tempfile::tempdir().unwrap();
    let mut ptrs = Vec::new();
    for run in 0..2 {
        let values = PaperValues::open(dir.path()).unwrap();
        for i in 0..(5 - 3 * run) {
            ptrs.push(values.put(&vec![b'a' + i as u8; 100 * (i + 1)]).unwrap());
        }
        values.sync().unwrap();
    }
    let mut state = Databases::default();
    for (key, ptr) in [("one", ptrs[0]), ("four", ptrs[3]), ("six", ptrs[5])] {
        state.db_mut(0).put_spilled(key.as_bytes(), ptr, None);
    }
    state.db_mut(0).put(b"inline", b"small", None);
    let bytes = encode_checkpoint(9, 1_700_000_000_123, 4, state.entries()).unwrap();
    std::fs::write(dir.path().join(FileKind::Checkpoint(9).name()), bytes).unwrap();
    (dir, ptrs)
}

#[test]
fn segment_inspect_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_moodb"))
        .args(["segment", "inspect", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(
        "segment_inspect_help",
        String::from_utf8(out.stdout).unwrap()
    );
}

#[test]
fn segment_inspect_of_a_data_directory_and_of_one_file() {
    let (dir, _) = data_dir();
    let (code, text) = moodb(&["segment", "inspect"], dir.path());
    assert_eq!(code, 0, "{text}");
    insta::assert_snapshot!("segment_inspect_of_a_data_directory", text);
    let (code, text) = moodb(&["segment", "inspect"], &dir.path().join(segment_name(1)));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.starts_with("values-0000000001: 332 bytes, 2 values (300 bytes): every checksum"),
        "{text}"
    );
    // Not a value segment: exit status 1.
    let (code, _) = moodb(
        &["segment", "inspect"],
        &dir.path().join(FileKind::Checkpoint(9).name()),
    );
    assert_eq!(code, 1);
}

#[test]
fn snapshot_inspect_shows_what_the_checkpoint_points_to_per_segment() {
    let (dir, _) = data_dir();
    let (code, text) = moodb(&["snapshot", "inspect"], dir.path());
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("value segment") || l.contains("points to"))
        .collect();
    insta::assert_snapshot!("snapshot_inspect_segment_figures", lines.join("\n"));
    let (_, json) = moodb(&["snapshot", "inspect", "--json"], dir.path());
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let seg0 = &json["value_segments"][0];
    assert_eq!(seg0["live_values"], 2);
    assert_eq!(seg0["live_bytes"], 500);
    // 5 records of 100..500 bytes + 8 each = 1540; live 500 + 16 = 516.
    let stale = seg0["stale_percent"].as_f64().unwrap();
    assert!((stale - 100.0 * 1024.0 / 1540.0).abs() < 0.01, "{stale}");
}

#[test]
fn a_damaged_value_is_named_by_file_and_offset_with_exit_status_2() {
    let (dir, ptrs) = data_dir();
    let path = dir.path().join(segment_name(0));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(ptrs[2].offset + 8 + 150) as usize] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let (code, text) = moodb(&["segment", "inspect"], dir.path());
    assert_eq!(code, 2, "{text}");
    insta::assert_snapshot!("segment_inspect_of_a_damaged_segment", text);
    let (code, json) = moodb(&["segment", "inspect", "--json"], &path);
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["verdict"], "damaged");
    assert_eq!(
        json["segments"][0]["damage"],
        format!(
            "values-0000000000 at offset {}: checksum mismatch (value damaged)",
            ptrs[2].offset
        )
    );
    // The files are left as they were.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}
