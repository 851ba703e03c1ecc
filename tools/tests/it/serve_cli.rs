//! `moodb serve --help` as a golden file: the flags, `--ready-file` among them, and what the
//! server prints and writes once ready.

use std::process::Command;

#[test]
fn serve_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_moodb"))
        .args(["serve", "--help"])
        .output()
        .expect("run moodb serve --help");
    assert!(out.status.success(), "{out:?}");
    insta::assert_snapshot!(String::from_utf8_lossy(&out.stdout));
}
