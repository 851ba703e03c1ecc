//! The names of the files in a paper data directory: [`FileKind`], its parser and its printer,
//! the one place that knows them.
//!
//! | name | what |
//! |---|---|
//! | `log-<first_lsn:020>` | a log segment holding records with LSN ≥ `first_lsn` |
//! | `checkpoint-<lsn:020>` | the whole state after record `lsn` |
//! | `checkpoint-<lsn:020>.tmp` | a checkpoint being written; recovery removes it |
//! | `log-<first_lsn:020>.damaged` | the original of a segment salvage cut, kept for inspection |
//! | `log-<first_lsn:020>.discarded` | a segment salvage set aside because it came after damage |
//! | `log-spare` | a segment of zeros made ahead of need (`spare.rs`); recovery removes it |
//! | `raftlog-<index:020>`, `raft-vote`, `raft-purged` | the raft log of a cluster node (`raft_log.rs`); not single-node recovery's |
//! | `raftlog-spare` | the raft log's spare segment (`raft_log.rs`, `spare.rs`); the raft log removes a leftover one |
//!
//! An LSN is written as exactly 20 decimal digits (`u64::MAX` has 20), so the names of one kind
//! sort by LSN, and [`FileKind::parse`] accepts nothing else. Recovery reads only logs and
//! checkpoints; it ignores `.damaged` and `.discarded` files and any name that does not parse.

use moodb_core::Lsn;

/// The prefix of a log segment's name (and of its `.damaged` and `.discarded` copies).
pub const LOG_PREFIX: &str = "log-";
/// The prefix of a checkpoint's name (and of its `.tmp` while it is written).
pub const CHECKPOINT_PREFIX: &str = "checkpoint-";
/// The name of the spare segment: zeros, no header yet, no record (not a [`FileKind`]: it
/// carries no LSN).
pub const SPARE_NAME: &str = "log-spare";
/// The suffix of a checkpoint being written.
pub const TMP_SUFFIX: &str = ".tmp";
/// The suffix of the original of a segment that salvage cut.
pub const DAMAGED_SUFFIX: &str = ".damaged";
/// The suffix of a segment that salvage set aside.
pub const DISCARDED_SUFFIX: &str = ".discarded";

/// What a file in the data directory is, with the LSN its name carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `log-<first_lsn>`: a log segment.
    Log(Lsn),
    /// `checkpoint-<lsn>`: a checkpoint.
    Checkpoint(Lsn),
    /// `checkpoint-<lsn>.tmp`: a checkpoint being written.
    CheckpointTmp(Lsn),
    /// `log-<first_lsn>.damaged`: the uncut original of a salvaged segment.
    LogDamaged(Lsn),
    /// `log-<first_lsn>.discarded`: a segment salvage set aside.
    LogDiscarded(Lsn),
}

impl FileKind {
    /// Every kind, as a constructor from its LSN ([`FileKind::parse`] tries them in turn).
    pub const ALL: [fn(Lsn) -> FileKind; 5] = [
        FileKind::Log,
        FileKind::Checkpoint,
        FileKind::CheckpointTmp,
        FileKind::LogDamaged,
        FileKind::LogDiscarded,
    ];

    /// Parses a file name (no directory): `Some` only for one of the names in the module doc,
    /// with exactly 20 digits that fit a `u64`.
    pub fn parse(name: &str) -> Option<FileKind> {
        Self::ALL.iter().find_map(|make| {
            let (prefix, suffix) = make(0).affixes();
            let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            parse_lsn(digits).map(make)
        })
    }

    /// The file name (no directory); [`FileKind::parse`] reads it back.
    pub fn name(self) -> String {
        let (prefix, suffix) = self.affixes();
        format!("{prefix}{:020}{suffix}", self.lsn())
    }

    /// The LSN the name carries.
    pub fn lsn(self) -> Lsn {
        match self {
            FileKind::Log(lsn)
            | FileKind::Checkpoint(lsn)
            | FileKind::CheckpointTmp(lsn)
            | FileKind::LogDamaged(lsn)
            | FileKind::LogDiscarded(lsn) => lsn,
        }
    }

    /// What comes before and after the 20 digits.
    fn affixes(self) -> (&'static str, &'static str) {
        match self {
            FileKind::Log(_) => (LOG_PREFIX, ""),
            FileKind::Checkpoint(_) => (CHECKPOINT_PREFIX, ""),
            FileKind::CheckpointTmp(_) => (CHECKPOINT_PREFIX, TMP_SUFFIX),
            FileKind::LogDamaged(_) => (LOG_PREFIX, DAMAGED_SUFFIX),
            FileKind::LogDiscarded(_) => (LOG_PREFIX, DISCARDED_SUFFIX),
        }
    }
}

/// Exactly 20 ASCII digits that fit a `u64`.
fn parse_lsn(digits: &str) -> Option<Lsn> {
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_pinned() {
        let names: Vec<String> = FileKind::ALL.iter().map(|make| make(42).name()).collect();
        assert_eq!(
            names,
            [
                "log-00000000000000000042",
                "checkpoint-00000000000000000042",
                "checkpoint-00000000000000000042.tmp",
                "log-00000000000000000042.damaged",
                "log-00000000000000000042.discarded",
            ]
        );
    }

    #[test]
    fn every_kind_reads_back_at_the_extreme_lsns() {
        for make in FileKind::ALL {
            for lsn in [0, 1, 12_345, Lsn::MAX] {
                let kind = make(lsn);
                assert_eq!(FileKind::parse(&kind.name()), Some(kind), "{kind:?}");
                assert_eq!(kind.lsn(), lsn);
            }
        }
        assert_eq!(
            FileKind::parse("log-18446744073709551615"),
            Some(FileKind::Log(Lsn::MAX))
        );
    }

    #[test]
    fn anything_else_is_not_ours() {
        for name in [
            "",
            "log-",
            "checkpoint-",
            "log-1",
            "log-0000000000000000001",   // 19 digits
            "log-000000000000000000001", // 21 digits
            "log-18446744073709551616",  // 2^64
            "log-0000000000000000000a",
            "log-+0000000000000000001",
            "log-00000000000000000001.tmp",
            "checkpoint-00000000000000000001.damaged",
            "checkpoint-00000000000000000001.discarded",
            "log-00000000000000000001.damaged.damaged",
            "log-00000000000000000001x",
            "xlog-00000000000000000001",
            "LOG-00000000000000000001",
            "checkpoint-00000000000000000001.tmp.tmp",
            "sled",
        ] {
            assert_eq!(FileKind::parse(name), None, "{name:?}");
        }
    }
}
