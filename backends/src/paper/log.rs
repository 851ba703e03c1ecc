//! The log file format: its header, the framing of one record, and [`LogScanner`], the reader
//! used by recovery and by `moodb wal dump`. FORMAT.md at the repository root draws the bytes.
//!
//! File header (32 bytes, integers little-endian):
//!
//! | offset | size | field                                        |
//! |--------|------|----------------------------------------------|
//! | 0      | 8    | magic `MOODBLOG`                             |
//! | 8      | 4    | format version (2; 1 is read too)            |
//! | 12     | 4    | reserved, 0                                  |
//! | 16     | 8    | first LSN this file may hold                 |
//! | 24     | 4    | reserved, 0                                  |
//! | 28     | 4    | CRC32C of bytes 0..28                        |
//!
//! Record (20-byte header, then the payload):
//!
//! | offset | size | field                                                         |
//! |--------|------|---------------------------------------------------------------|
//! | 0      | 4    | payload length `n` (> 0)                                      |
//! | 4      | 4    | CRC32C of bytes 0..4, 8..20 and the payload                   |
//! | 8      | 8    | LSN                                                           |
//! | 16     | 4    | index of this record in the `append` call that wrote it (group) |
//! | 20     | n    | payload: `Record::encode`                                     |
//!
//! A length of 0 followed only by zero bytes is the end of the log: the log is preallocated, so
//! its tail reads as zeros.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use moodb_core::record::RecordRef;
use moodb_core::{failpoint, Lsn, Record};

pub const LOG_MAGIC: &[u8; 8] = b"MOODBLOG";
/// The version this build writes. Version 2 added records that name a database (record tags 6
/// to 8: `InDb`, `SwapDb`, `ClearAll`); a version 1 segment holds database 0's records only,
/// with the same encoding, so it is read by the same decoder.
pub const LOG_VERSION: u32 = 2;
/// The oldest version this build reads.
pub const LOG_OLDEST_VERSION: u32 = 1;
pub const LOG_HEADER_LEN: usize = 32;
pub const RECORD_HEADER_LEN: usize = 20;
/// Largest payload accepted (records are bounded far below by the server's request limits).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// The header of a log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHeader {
    pub version: u32,
    pub first_lsn: Lsn,
}

impl LogHeader {
    pub fn encode(&self) -> [u8; LOG_HEADER_LEN] {
        let mut out = [0u8; LOG_HEADER_LEN];
        out[0..8].copy_from_slice(LOG_MAGIC);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[16..24].copy_from_slice(&self.first_lsn.to_le_bytes());
        let crc = crc32c::crc32c(&out[0..28]);
        out[28..32].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses a header, or says why it is not one.
    pub fn decode(bytes: &[u8]) -> Result<LogHeader, String> {
        if bytes.len() < LOG_HEADER_LEN {
            return Err(format!(
                "file is {} bytes, shorter than the {LOG_HEADER_LEN}-byte log header",
                bytes.len()
            ));
        }
        if &bytes[0..8] != LOG_MAGIC {
            return Err("bad magic: not a MooDB log file".into());
        }
        let crc = u32_at(bytes, 28);
        if crc != crc32c::crc32c(&bytes[0..28]) {
            return Err("log header checksum mismatch".into());
        }
        let version = u32_at(bytes, 8);
        if !(LOG_OLDEST_VERSION..=LOG_VERSION).contains(&version) {
            return Err(format!(
                "log format version {version}, this build reads versions {LOG_OLDEST_VERSION} to {LOG_VERSION}"
            ));
        }
        Ok(LogHeader {
            version,
            first_lsn: u64_at(bytes, 16),
        })
    }
}

pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut le = [0u8; 4];
    le.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(le)
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut le = [0u8; 8];
    le.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(le)
}

/// Appends the framing and payload of one record to `out`.
pub fn encode_record(out: &mut Vec<u8>, lsn: Lsn, group_index: u32, record: &Record) {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER_LEN]);
    record.encode(out);
    let len = (out.len() - start - RECORD_HEADER_LEN) as u32;
    let frame = &mut out[start..];
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    frame[8..16].copy_from_slice(&lsn.to_le_bytes());
    frame[16..20].copy_from_slice(&group_index.to_le_bytes());
    let crc = record_crc(frame);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// CRC32C over a record frame (header and payload) without its CRC field.
fn record_crc(frame: &[u8]) -> u32 {
    let crc = crc32c::crc32c(&frame[0..4]);
    crc32c::crc32c_append(crc, &frame[8..])
}

/// A record read from a log, with where it is: its own copy (`R` = [`Record`], what the
/// iterator yields) or borrowed from the file's bytes ([`LogScanner::next_borrowed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRecord<R = Record> {
    /// Byte offset of the record's header in the file.
    pub offset: u64,
    /// Bytes the record takes, header included.
    pub len: u64,
    pub lsn: Lsn,
    /// Index of the record in the `append` call (group) that wrote it.
    pub group_index: u32,
    pub record: R,
}

impl<R> ScannedRecord<R> {
    /// LSN of the first record of the group this record belongs to.
    pub fn group_first_lsn(&self) -> Lsn {
        self.lsn.saturating_sub(u64::from(self.group_index))
    }
}

/// How a log file ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// Every byte after the last record is zero (or there is none).
    Clean { valid_end: u64 },
    /// Damage at `offset` with nothing valid after it, or only records of the same unfinished
    /// group (a power cut can persist the pages of one unsynced write in any order): recovery
    /// cuts the file at `offset`. `damaged_bytes` counts up to the last non-zero byte.
    TornTail {
        offset: u64,
        damaged_bytes: u64,
        reason: String,
    },
    /// Damage at `offset` followed by valid records of other groups: not a power cut.
    MidLogDamage {
        offset: u64,
        reason: String,
        next_valid_offset: u64,
        valid_records_after: u64,
    },
}

impl LogEnd {
    /// Offset where the valid records end.
    pub fn valid_end(&self) -> u64 {
        match self {
            LogEnd::Clean { valid_end } => *valid_end,
            LogEnd::TornTail { offset, .. } | LogEnd::MidLogDamage { offset, .. } => *offset,
        }
    }
}

/// Reads a whole log file record by record.
///
/// ```no_run
/// # use moodb_backends::paper::log::LogScanner;
/// let bytes = std::fs::read("data/log-00000000000000000001").unwrap();
/// let mut scanner = LogScanner::new(&bytes).unwrap();
/// for record in scanner.by_ref() {
///     println!("{} lsn {} {}", record.offset, record.lsn, record.record.kind());
/// }
/// println!("{:?}", scanner.end());
/// ```
///
/// The iterator yields the valid records in order and stops at the first damage; then
/// [`LogScanner::end`] says whether the file ended cleanly, with a torn tail, or with damage
/// followed by valid records.
#[derive(Debug)]
pub struct LogScanner<'a> {
    bytes: &'a [u8],
    header: LogHeader,
    at: usize,
    last_lsn: Option<Lsn>,
    end: Option<LogEnd>,
    /// Offset after the last non-zero byte: from here on the file is its zero tail. Computed
    /// once, so that probing every offset after damage stays linear.
    nonzero_end: usize,
    /// How far another thread has checked the record chain's checksums
    /// ([`check_chain`]), and the last value read of it.
    checked: Option<&'a AtomicUsize>,
    checked_seen: Cell<usize>,
}

/// The chain of record headers of a log file, each one's length leading to the next, from
/// the first record to a zero or impossible length, checking nothing else: how many records
/// (about: never more than one per [`RECORD_HEADER_LEN`] bytes) and the offset where the last
/// one ends, which may lie past `bytes` when they leave out a zero tail (a record may end in
/// zero bytes). Recovery sizes the key space with the count before the replay checks every
/// record, and gives the bytes back the zeros the last record needs.
pub(crate) fn record_chain(bytes: &[u8]) -> (u64, usize) {
    chain_hops(bytes).fold((0, LOG_HEADER_LEN), |(n, _), (at, len)| (n + 1, at + len))
}

/// The hops of the record chain: each record's offset and length (header included), from the
/// first record for as long as a header fits in `bytes` and its length is possible (not 0, not
/// above [`MAX_PAYLOAD`]). The last one may run past `bytes`.
fn chain_hops(bytes: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut at = LOG_HEADER_LEN;
    std::iter::from_fn(move || {
        let len = (at + RECORD_HEADER_LEN <= bytes.len()).then(|| u32_at(bytes, at) as usize)?;
        if len == 0 || len > MAX_PAYLOAD {
            return None;
        }
        let hop = (at, RECORD_HEADER_LEN + len);
        at += hop.1;
        Some(hop)
    })
}

/// Checks the checksums along the record chain of a log file (`bytes`), from the first record
/// to the first that is not whole or does not match, storing in `progress` the offset where
/// the records checked so far end (every 64 KiB of them, and at the end). A
/// [`LogScanner::with_checked`] on the same bytes skips the checksums of the records before
/// that offset: recovery checks a segment's records on one thread while another applies them.
pub(crate) fn check_chain(bytes: &[u8], progress: &AtomicUsize) -> usize {
    const PUBLISH_EVERY: usize = 64 << 10;
    let mut at = LOG_HEADER_LEN;
    let mut published = at;
    for (start, len) in chain_hops(bytes) {
        match bytes.get(start..start + len) {
            Some(frame) if u32_at(frame, 4) == record_crc(frame) => at = start + len,
            _ => break,
        }
        if at - published >= PUBLISH_EVERY {
            progress.store(at, Ordering::Release);
            published = at;
        }
    }
    progress.store(at, Ordering::Release);
    at
}

/// Offset after the last non-zero byte of `bytes` (0 if every byte is zero). A segment is
/// mostly its preallocated zero tail, so this looks at 64 bytes at a time (an OR the compiler
/// vectorises) and only the last non-zero block byte by byte: a byte-at-a-time scan took
/// ~100 ms of an empty 64 MiB segment's recovery.
pub(crate) fn nonzero_end(bytes: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let last_nonzero = |block: &[u8]| block.iter().rposition(|b| *b != 0);
    let whole = bytes.len() - bytes.len() % BLOCK;
    if let Some(p) = last_nonzero(&bytes[whole..]) {
        return whole + p + 1;
    }
    let mut end = whole;
    while end > 0 {
        let block = &bytes[end - BLOCK..end];
        if block.iter().fold(0u8, |acc, b| acc | b) != 0 {
            return end - BLOCK + last_nonzero(block).map_or(0, |p| p + 1);
        }
        end -= BLOCK;
    }
    0
}

/// Why bytes at an offset are not a valid record.
enum Bad {
    /// Only zeros from here on: the clean end.
    CleanEnd,
    Damage(String),
}

impl<'a> LogScanner<'a> {
    /// Checks the header; `Err` says why it is not a log file of this version.
    pub fn new(bytes: &'a [u8]) -> Result<Self, String> {
        let header = LogHeader::decode(bytes)?;
        Ok(LogScanner {
            bytes,
            header,
            at: LOG_HEADER_LEN,
            last_lsn: None,
            end: None,
            nonzero_end: nonzero_end(bytes),
            checked: None,
            checked_seen: Cell::new(0),
        })
    }

    /// As [`LogScanner::new`], trusting the checksums of the records that [`check_chain`],
    /// running on `bytes` elsewhere, has stored in `checked` as checked; the others it checks
    /// itself.
    pub(crate) fn with_checked(bytes: &'a [u8], checked: &'a AtomicUsize) -> Result<Self, String> {
        let mut scanner = LogScanner::new(bytes)?;
        scanner.checked = Some(checked);
        Ok(scanner)
    }

    /// Whether the chain's checksums are known good up to `end`.
    fn checked_up_to(&self, end: usize) -> bool {
        if end <= self.checked_seen.get() {
            return true;
        }
        let Some(checked) = self.checked else {
            return false;
        };
        self.checked_seen.set(checked.load(Ordering::Acquire));
        end <= self.checked_seen.get()
    }

    pub fn header(&self) -> LogHeader {
        self.header
    }

    /// How the file ends; `None` until the iterator has returned `None`.
    pub fn end(&self) -> Option<&LogEnd> {
        self.end.as_ref()
    }

    /// Runs the scan to its end and returns how the file ends.
    pub fn finish(&mut self) -> LogEnd {
        for _ in self.by_ref() {}
        self.end.clone().unwrap_or(LogEnd::Clean {
            valid_end: self.at as u64,
        })
    }

    /// Parses the record at `at`, requiring its LSN to be above `min_lsn`. `on_chain`: `at` is
    /// where the record chain leads (not a probe after damage), so a checksum
    /// [`check_chain`] checked is not checked again.
    fn parse_at(
        &self,
        at: usize,
        min_lsn: Lsn,
        on_chain: bool,
    ) -> Result<ScannedRecord<RecordRef<'a>>, Bad> {
        let rest = &self.bytes[at..];
        let zero_tail = at >= self.nonzero_end;
        if (rest.len() < RECORD_HEADER_LEN || u32_at(rest, 0) == 0) && zero_tail {
            return Err(Bad::CleanEnd);
        }
        if rest.len() < RECORD_HEADER_LEN {
            return Err(Bad::Damage(format!(
                "incomplete record header ({} of {RECORD_HEADER_LEN} bytes)",
                rest.len()
            )));
        }
        let len = u32_at(rest, 0) as usize;
        if len == 0 || len > MAX_PAYLOAD {
            return Err(Bad::Damage(format!("invalid record length {len}")));
        }
        if rest.len() - RECORD_HEADER_LEN < len {
            return Err(Bad::Damage(format!(
                "incomplete record: length {len} but {} bytes left",
                rest.len() - RECORD_HEADER_LEN
            )));
        }
        let frame = &rest[..RECORD_HEADER_LEN + len];
        let checked = on_chain && self.checked_up_to(at + frame.len());
        if !checked
            && u32_at(frame, 4) != record_crc(frame)
            && !failpoint::enabled(failpoint::RECOVERY_SKIP_CHECKSUM)
        {
            return Err(Bad::Damage("record checksum mismatch".into()));
        }
        let lsn = u64_at(frame, 8);
        if lsn < min_lsn {
            return Err(Bad::Damage(format!(
                "record lsn {lsn} out of order (expected at least {min_lsn})"
            )));
        }
        let payload = &self.bytes[at + RECORD_HEADER_LEN..at + RECORD_HEADER_LEN + len];
        let record = Record::decode_borrowed(payload)
            .map_err(|e| Bad::Damage(format!("record lsn {lsn} has a bad payload: {e}")))?;
        Ok(ScannedRecord {
            offset: at as u64,
            len: frame.len() as u64,
            lsn,
            group_index: u32_at(frame, 16),
            record,
        })
    }

    /// Classifies damage found at `at`: looks for valid records after it.
    fn classify(&self, at: usize, reason: String) -> LogEnd {
        let last_good = self
            .last_lsn
            .unwrap_or(self.header.first_lsn.saturating_sub(1));
        let mut after: Vec<(u64, Lsn, Lsn)> = Vec::new(); // offset, lsn, group first lsn
        let mut probe = at + 1;
        while probe + RECORD_HEADER_LEN <= self.bytes.len() {
            match self.parse_at(probe, 0, false) {
                Ok(r) => {
                    after.push((r.offset, r.lsn, r.group_first_lsn()));
                    probe += r.len as usize;
                }
                Err(Bad::CleanEnd) => break,
                Err(Bad::Damage(_)) => probe += 1,
            }
        }
        let same_unfinished_group = after.first().is_some_and(|(_, _, g)| {
            *g <= last_good.saturating_add(1)
                && after.iter().all(|(_, lsn, g2)| g2 == g && *lsn > last_good)
        });
        if after.is_empty() || same_unfinished_group {
            LogEnd::TornTail {
                offset: at as u64,
                damaged_bytes: self.nonzero_end.saturating_sub(at) as u64,
                reason,
            }
        } else {
            LogEnd::MidLogDamage {
                offset: at as u64,
                reason,
                next_valid_offset: after[0].0,
                valid_records_after: after.len() as u64,
            }
        }
    }
}

impl<'a> LogScanner<'a> {
    /// The next valid record, its keys and values borrowed from the file's bytes (recovery's
    /// replay: the key space copies what it keeps); `None` at the end or at damage, as the
    /// iterator.
    pub fn next_borrowed(&mut self) -> Option<ScannedRecord<RecordRef<'a>>> {
        if self.end.is_some() {
            return None;
        }
        let parsed = match self.last_lsn {
            None => self.parse_at(self.at, self.header.first_lsn, true),
            Some(l) => match l.checked_add(1) {
                Some(min_lsn) => self.parse_at(self.at, min_lsn, true),
                // Nothing can follow lsn 2^64-1: a record after it is out of order.
                None => self.parse_at(self.at, l, true).and_then(|r| {
                    Err(Bad::Damage(format!(
                        "record lsn {} out of order (nothing can follow lsn {l})",
                        r.lsn
                    )))
                }),
            },
        };
        match parsed {
            Ok(r) => {
                self.at += r.len as usize;
                self.last_lsn = Some(r.lsn);
                Some(r)
            }
            Err(Bad::CleanEnd) => {
                self.end = Some(LogEnd::Clean {
                    valid_end: self.at as u64,
                });
                None
            }
            Err(Bad::Damage(reason)) => {
                self.end = Some(self.classify(self.at, reason));
                None
            }
        }
    }
}

impl Iterator for LogScanner<'_> {
    type Item = ScannedRecord;

    fn next(&mut self) -> Option<ScannedRecord> {
        let r = self.next_borrowed()?;
        Some(ScannedRecord {
            offset: r.offset,
            len: r.len,
            lsn: r.lsn,
            group_index: r.group_index,
            record: r.record.to_owned_record(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{
        check_chain, encode_record, nonzero_end, LogEnd, LogHeader, LogScanner, LOG_VERSION,
    };
    use moodb_core::Record;

    /// A segment of `n` one-record groups (LSN 1..=n) and the offset of each record.
    fn segment(n: u64) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = LogHeader {
            version: LOG_VERSION,
            first_lsn: 1,
        }
        .encode()
        .to_vec();
        let mut offsets = Vec::new();
        for lsn in 1..=n {
            offsets.push(bytes.len());
            let record = Record::Set {
                key: format!("key{lsn}").into(),
                value: vec![b'v'; 40].into(),
                expires_at_ms: None,
            };
            encode_record(&mut bytes, lsn, 0, &record);
        }
        (bytes, offsets)
    }

    /// The records a scanner yields (offset, LSN) and how it ends.
    fn scan(mut scanner: LogScanner<'_>) -> (Vec<(u64, u64)>, LogEnd) {
        let mut seen = Vec::new();
        while let Some(r) = scanner.next_borrowed() {
            seen.push((r.offset, r.lsn));
        }
        (seen, scanner.finish())
    }

    #[test]
    fn a_scanner_trusting_a_checked_chain_ends_as_one_checking_every_record() {
        let (clean, offsets) = segment(50);
        let mut mid_log = clean.clone();
        mid_log[offsets[20] + 60] ^= 0xff; // a byte of record 21's value: later groups are valid
        let mut torn = clean.clone();
        torn.truncate(offsets[49] + 7);
        for (name, bytes) in [("clean", &clean), ("mid-log", &mid_log), ("torn", &torn)] {
            let checked = AtomicUsize::new(0);
            let end = check_chain(bytes, &checked);
            assert_eq!(end, checked.load(Ordering::Acquire), "{name}");
            let alone = scan(LogScanner::new(bytes).unwrap());
            let trusting = scan(LogScanner::with_checked(bytes, &checked).unwrap());
            assert_eq!(trusting, alone, "{name}");
            assert_eq!(
                end as u64,
                alone.1.valid_end(),
                "{name}: checked up to the damage"
            );
        }
        assert!(matches!(
            scan(LogScanner::new(&mid_log).unwrap()).1,
            LogEnd::MidLogDamage { .. }
        ));
    }

    #[test]
    fn a_scanner_checks_what_the_chain_check_has_not_reached() {
        let (mut bytes, offsets) = segment(10);
        bytes[offsets[6] + 60] ^= 0xff; // a byte of the value: only the checksum tells
                                        // Checked only up to record 3: record 7's damage is found by the scanner itself.
        let checked = AtomicUsize::new(offsets[3]);
        let (seen, end) = scan(LogScanner::with_checked(&bytes, &checked).unwrap());
        assert_eq!(seen.len(), 6);
        assert_eq!(end.valid_end(), offsets[6] as u64);
        // And what the check vouched for is not checked again (a wrong vouch is believed).
        let vouched = AtomicUsize::new(bytes.len());
        let (seen, end) = scan(LogScanner::with_checked(&bytes, &vouched).unwrap());
        assert_eq!(seen.len(), 10);
        assert!(matches!(end, LogEnd::Clean { .. }));
    }

    #[test]
    fn nonzero_end_agrees_with_a_byte_by_byte_scan() {
        let naive = |b: &[u8]| b.iter().rposition(|x| *x != 0).map_or(0, |p| p + 1);
        for len in [0, 1, 63, 64, 65, 127, 128, 129, 1000, 4096] {
            let zeros = vec![0u8; len];
            assert_eq!(nonzero_end(&zeros), 0, "len {len}");
            for at in [0, 1, 62, 63, 64, 65, 100, 999, 4095] {
                if at >= len {
                    continue;
                }
                for fill in [0..=at, at..=at] {
                    let mut bytes = zeros.clone();
                    bytes[fill.clone()].iter_mut().for_each(|b| *b = 0x5a);
                    assert_eq!(nonzero_end(&bytes), naive(&bytes), "len {len} at {fill:?}");
                }
            }
        }
    }
}
