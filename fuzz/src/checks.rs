//! What each fuzz target checks on one input: the decoders of the log record, the log file, the
//! checkpoint file, and whole paper recovery over a directory image. Shared by the cargo-fuzz
//! targets (fuzz/fuzz_targets/) and by the stable-toolchain corpus replay test
//! (backends/tests/it/fuzz_corpus.rs includes this file by path), so it depends only on the
//! workspace crates, `bytes` and `crc32c`.
//!
//! Every check must not panic and must not allocate more than a small multiple of its input.
//! Beyond "no panic", each states what a correct decoder guarantees (a decoded record encodes
//! back to the same bytes, offsets are contiguous, verify and load agree, a recovered directory
//! recovers again to the same state and accepts an append).
//!
//! Random bytes almost never carry valid CRC32Cs, so the first byte of an input is a mode: its
//! bits say whether to repair the header, record, block or footer checksums (and magic) of the
//! rest before decoding, which lets the fuzzer reach the code behind each checksum.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use moodb_backends::paper::checkpoint::{
    encode_checkpoint, CheckpointReader, BLOCK_HEADER_LEN, CHECKPOINT_HEADER_LEN, CHECKPOINT_MAGIC,
    CHECKPOINT_VERSION, FOOTER_LEN, FOOTER_MAGIC,
};
use moodb_backends::paper::fs::SimFs;
use moodb_backends::paper::log::{
    encode_record, LogEnd, LogHeader, LogScanner, LOG_HEADER_LEN, LOG_VERSION, RECORD_HEADER_LEN,
};
use moodb_backends::paper::{FileKind, PaperBackend, PaperTuning, SpareMode};
use moodb_backends::BackendOptions;
use moodb_core::resp::encode::encode_request;
use moodb_core::resp::{decode_frame, decode_request, encode, Frame, Limits, Protocol, Request};
use moodb_core::{Backend, Databases, LogEntry, Lsn, Record, StorageError};

/// Fuzz target names, each the name of a corpus folder fuzz/corpus/<name>.
pub const TARGETS: &[&str] = &[
    "record_decode",
    "log_scan",
    "checkpoint",
    "paper_recover",
    "resp_request",
    "resp_frame",
];

/// Runs the check of `target` on `data`; panics on a finding.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "record_decode" => record_decode(data),
        "log_scan" => log_scan(data),
        "checkpoint" => checkpoint(data),
        "paper_recover" => paper_recover(data),
        "resp_request" => resp_request(data),
        "resp_frame" => resp_frame(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut le = [0u8; 4];
    le.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(le)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut le = [0u8; 8];
    le.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(le)
}

/// `Record::decode` of arbitrary bytes: an error or a record that encodes back to them.
pub fn record_decode(data: &[u8]) {
    if let Ok(record) = Record::decode(data) {
        assert_eq!(record.encoded_len(), data.len());
        assert_eq!(
            record.to_bytes(),
            data,
            "decode then encode changed the payload"
        );
    }
}

/// Mode bits of the `log_scan` input (first byte).
pub mod log_mode {
    /// Replace the first 32 bytes by a valid header (first LSN from those bytes' 16..24).
    pub const FIX_HEADER: u8 = 1;
    /// Recompute the CRC of every record frame whose length fits.
    pub const FIX_RECORDS: u8 = 2;
    /// Take the header's first LSN from the low 6 bits of byte 16 only (small LSNs).
    pub const SMALL_LSN: u8 = 4;
}

/// Repairs a log file image as `mode` says (see [`log_mode`]); `lsn` overrides the header's
/// first LSN when given.
pub fn fix_log(file: &mut Vec<u8>, mode: u8, lsn: Option<Lsn>) {
    if mode & log_mode::FIX_HEADER != 0 {
        if file.len() < LOG_HEADER_LEN {
            file.resize(LOG_HEADER_LEN, 0);
        }
        let first_lsn = match lsn {
            Some(l) => l,
            None if mode & log_mode::SMALL_LSN != 0 => u64::from(file[16] & 63),
            None => u64_at(file, 16),
        };
        let header = LogHeader {
            version: LOG_VERSION,
            first_lsn,
        };
        file[..LOG_HEADER_LEN].copy_from_slice(&header.encode());
    }
    if mode & log_mode::FIX_RECORDS != 0 {
        let mut at = LOG_HEADER_LEN;
        while at + RECORD_HEADER_LEN <= file.len() {
            let len = u32_at(file, at) as usize;
            let end = at + RECORD_HEADER_LEN + len;
            if len == 0 || end > file.len() {
                break;
            }
            let crc = crc32c::crc32c(&file[at..at + 4]);
            let crc = crc32c::crc32c_append(crc, &file[at + 8..end]);
            file[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
            at = end;
        }
    }
}

/// `LogScanner` over an arbitrary (optionally repaired) log image: records at contiguous
/// offsets with increasing LSNs, each re-encoding to its bytes, and an end that matches.
pub fn log_scan(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let _ = LogHeader::decode(rest);
    let mut file = rest.to_vec();
    fix_log(&mut file, mode, None);
    check_log(&file);
}

fn check_log(file: &[u8]) {
    let Ok(mut scanner) = LogScanner::new(file) else {
        return;
    };
    let header = scanner.header();
    let mut at = LOG_HEADER_LEN as u64;
    let mut last: Option<Lsn> = None;
    let mut frame = Vec::new();
    for r in scanner.by_ref() {
        assert_eq!(r.offset, at, "records are not contiguous");
        match last {
            Some(l) => assert!(r.lsn > l, "lsn {} after {l}", r.lsn),
            None => assert!(r.lsn >= header.first_lsn, "lsn below the header's first"),
        }
        frame.clear();
        encode_record(&mut frame, r.lsn, r.group_index, &r.record);
        assert_eq!(frame.len() as u64, r.len);
        assert_eq!(
            &frame[..],
            &file[r.offset as usize..(r.offset + r.len) as usize],
            "a scanned record does not encode back to its bytes"
        );
        at += r.len;
        last = Some(r.lsn);
    }
    let end = scanner.finish();
    assert_eq!(end.valid_end(), at, "the end is not after the last record");
    let len = file.len() as u64;
    match end {
        LogEnd::Clean { .. } => assert!(
            file[at as usize..].iter().all(|b| *b == 0),
            "clean end before non-zero bytes"
        ),
        LogEnd::TornTail { damaged_bytes, .. } => assert!(at + damaged_bytes <= len),
        LogEnd::MidLogDamage {
            next_valid_offset,
            valid_records_after,
            ..
        } => {
            assert!(next_valid_offset > at && next_valid_offset < len);
            assert!(valid_records_after >= 1);
        }
    }
}

/// Mode bits of the `checkpoint` input (first byte).
pub mod checkpoint_mode {
    /// Write magic, version and CRC into the header (padding the file to header + footer).
    pub const FIX_HEADER: u8 = 1;
    /// Recompute the CRC of every block whose length fits.
    pub const FIX_BLOCKS: u8 = 2;
    /// Write a footer that matches: end marker, the header's key count, file CRC, `CEND`.
    pub const FIX_FOOTER: u8 = 4;
    /// Set the header's key count to the number of entries the blocks announce.
    pub const FIX_COUNT: u8 = 8;
}

/// Repairs a checkpoint image as `mode` says (see [`checkpoint_mode`]); `lsn` overrides the
/// header's LSN when given.
pub fn fix_checkpoint(file: &mut Vec<u8>, mode: u8, lsn: Option<Lsn>) {
    use checkpoint_mode::*;
    if mode & (FIX_HEADER | FIX_BLOCKS | FIX_FOOTER | FIX_COUNT) == 0 {
        return;
    }
    if file.len() < CHECKPOINT_HEADER_LEN + FOOTER_LEN {
        file.resize(CHECKPOINT_HEADER_LEN + FOOTER_LEN, 0);
    }
    let footer = file.len() - FOOTER_LEN;
    let mut announced = 0u64;
    let mut at = CHECKPOINT_HEADER_LEN;
    while at + BLOCK_HEADER_LEN <= footer {
        let len = u32_at(file, at) as usize;
        let body = at + BLOCK_HEADER_LEN;
        if len == 0 || body + len > footer {
            break;
        }
        announced += u64::from(u32_at(file, at + 4));
        if mode & FIX_BLOCKS != 0 {
            let crc = crc32c::crc32c(&file[body..body + len]);
            file[at + 8..at + 12].copy_from_slice(&crc.to_le_bytes());
        }
        at = body + len;
    }
    if mode & FIX_HEADER != 0 {
        file[0..8].copy_from_slice(CHECKPOINT_MAGIC);
        file[8..12].copy_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        if let Some(lsn) = lsn {
            file[16..24].copy_from_slice(&lsn.to_le_bytes());
        }
    }
    if mode & FIX_COUNT != 0 {
        file[24..32].copy_from_slice(&announced.to_le_bytes());
    }
    if mode & (FIX_HEADER | FIX_COUNT) != 0 {
        let crc = crc32c::crc32c(&file[0..44]);
        file[44..48].copy_from_slice(&crc.to_le_bytes());
    }
    if mode & FIX_FOOTER != 0 {
        let key_count = u64_at(file, 24);
        file[footer..footer + 8].fill(0);
        file[footer + 8..footer + 16].copy_from_slice(&key_count.to_le_bytes());
        let crc = crc32c::crc32c(&file[..footer]);
        file[footer + 16..footer + 20].copy_from_slice(&crc.to_le_bytes());
        file[footer + 20..].copy_from_slice(FOOTER_MAGIC);
    }
}

/// `CheckpointReader` over an arbitrary (optionally repaired) checkpoint image: `entries`
/// stops at its first error, `verify` and `load` agree, and a loaded checkpoint holds the
/// entries (last one wins) and survives a write and a second load.
pub fn checkpoint(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut file = rest.to_vec();
    fix_checkpoint(&mut file, mode, None);
    check_checkpoint(&file);
}

fn check_checkpoint(file: &[u8]) {
    let Ok(reader) = CheckpointReader::new(file) else {
        return;
    };
    let header = reader.header();
    let entries: Vec<_> = reader.entries().collect();
    // Each entry takes at least 16 bytes: the iterator cannot yield more than the file holds.
    assert!(entries.len() <= file.len() / 16 + 1);
    if let Some(i) = entries.iter().position(Result::is_err) {
        assert_eq!(i + 1, entries.len(), "entries went on after an error");
    }
    let verify = reader.verify();
    let load = reader.load();
    match (verify, load) {
        (Ok(n), Ok(state)) => {
            assert_eq!(n, header.key_count);
            assert_eq!(n, entries.len() as u64);
            let expected: Databases = entries.into_iter().map(|e| e.expect("verified")).collect();
            assert_eq!(state, expected, "load differs from the entries");
            let again = encode_checkpoint(
                header.lsn,
                header.created_unix_ms,
                state.len() as u64,
                state.entries(),
            )
            .expect("encoding into memory");
            let reread = CheckpointReader::new(&again)
                .and_then(|r| r.load())
                .expect("a checkpoint just written loads");
            assert_eq!(reread, state);
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "verify and load report different damage"),
        (v, l) => panic!("verify {v:?} but load {:?}", l.map(|s| s.len())),
    }
}

/// A cursor over the fuzz input for the structured `paper_recover` target.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    fn lsn(&mut self) -> Option<Lsn> {
        let b = self.byte()?;
        let low = u64::from(b & 63);
        Some(match b >> 6 {
            0 | 1 => low,
            2 => u64::MAX - low,
            _ => {
                let mut le = [0u8; 8];
                let bytes = self.take(8);
                le[..bytes.len()].copy_from_slice(bytes);
                u64::from_le_bytes(le)
            }
        })
    }
}

const RECOVER_DIR: &str = "/db";

/// The directory image a `paper_recover` input describes, and whether to salvage.
///
/// Input: a flags byte (bit 0: salvage), then up to 8 files, each: a kind byte (low 2 bits:
/// log, checkpoint, checkpoint `.tmp`, other name), an LSN (one byte: 0..=63 below 128,
/// `u64::MAX - (b & 63)` below 192, else 8 more bytes), a repair byte (low 4 bits: the
/// checkpoint modes, bits 4-5: the log modes), a u16 LE length, and that many bytes of content.
pub fn recovery_image(data: &[u8]) -> (Vec<(PathBuf, Vec<u8>)>, bool) {
    let mut input = Input(data);
    let salvage = input.byte().is_some_and(|b| b & 1 != 0);
    let mut files = Vec::new();
    while files.len() < 8 {
        let (Some(kind), Some(lsn), Some(repair)) = (input.byte(), input.lsn(), input.byte())
        else {
            break;
        };
        let len = input.take(2);
        let len = match len {
            [lo, hi] => usize::from(u16::from_le_bytes([*lo, *hi])),
            [lo] => usize::from(*lo),
            _ => 0,
        };
        let mut content = input.take(len).to_vec();
        let name = match kind & 3 {
            0 => {
                let mode = (log_mode::FIX_HEADER * ((repair >> 4) & 1))
                    | (log_mode::FIX_RECORDS * ((repair >> 5) & 1));
                fix_log(&mut content, mode, Some(lsn));
                FileKind::Log(lsn).name()
            }
            1 => {
                fix_checkpoint(&mut content, repair & 15, Some(lsn));
                FileKind::Checkpoint(lsn).name()
            }
            2 => FileKind::CheckpointTmp(lsn).name(),
            _ => FileKind::LogDamaged(lsn).name(),
        };
        files.push((Path::new(RECOVER_DIR).join(name), content));
    }
    (files, salvage)
}

fn open(fs: &SimFs, salvage: bool) -> PaperBackend {
    let options = BackendOptions {
        salvage,
        ..BackendOptions::default()
    };
    let tuning = PaperTuning {
        prealloc_bytes: 512,
        spare: SpareMode::Off,
    };
    PaperBackend::open_with(
        Arc::new(fs.clone()),
        Path::new(RECOVER_DIR),
        &options,
        tuning,
    )
    .expect("opening on the simulated disk")
}

/// Full paper recovery over an arbitrary directory image (see [`recovery_image`]): an error or
/// a state that recovers again, unchanged, without salvage, and that accepts an append which
/// the next recovery sees.
pub fn paper_recover(data: &[u8]) {
    let (files, salvage) = recovery_image(data);
    let fs = SimFs::new();
    for (path, content) in &files {
        fs.put_file(path, content);
    }
    let Ok(first) = open(&fs, salvage).recover() else {
        return;
    };
    let mut backend = open(&fs, false);
    let second = backend
        .recover()
        .unwrap_or_else(|e| panic!("a recovered directory fails to recover again: {e}"));
    assert_eq!(second.last_lsn, first.last_lsn);
    assert_eq!(
        second.state, first.state,
        "a second recovery changed the state"
    );
    let lsn = first
        .last_lsn
        .checked_add(1)
        .expect("recovery never returns lsn 2^64-1");
    let record = Record::Set {
        key: Bytes::from_static(b"fuzz"),
        value: Bytes::from_static(b"appended"),
        expires_at_ms: None,
    };
    let appended = backend.append(&[LogEntry {
        lsn,
        record: record.clone(),
    }]);
    if lsn == Lsn::MAX {
        assert!(
            matches!(appended, Err(StorageError::InvalidInput(_))),
            "append of lsn 2^64-1 must be refused"
        );
        return;
    }
    appended.unwrap_or_else(|e| panic!("append after recovery failed: {e}"));
    drop(backend);
    let third = open(&fs, false)
        .recover()
        .unwrap_or_else(|e| panic!("recovery after an append failed: {e}"));
    assert_eq!(third.last_lsn, lsn);
    let mut expected = first.state;
    expected.apply(&record);
    assert_eq!(
        third.state, expected,
        "the appended record is not recovered"
    );
}

/// The limits a `resp_request` input asks for with its first byte: the server's defaults, or
/// small ones (so the fuzzer reaches every limit), or no bulk limit at all (a declared length
/// must still allocate nothing before its bytes arrive).
pub fn resp_limits(mode: u8) -> Limits {
    match mode % 3 {
        0 => Limits::default(),
        1 => Limits {
            max_bulk_len: 64,
            max_args: 8,
            max_inline_len: 32,
            max_query_buffer: 256,
            ..Limits::default()
        },
        _ => Limits {
            max_bulk_len: usize::MAX,
            ..Limits::default()
        },
    }
}

/// Decodes every request in `input` fed in chunks of `chunk` bytes (0: all at once), checking
/// each step; returns the requests and whether decoding ended with an error.
fn requests_in(input: &[u8], chunk: usize, limits: &Limits) -> (Vec<Request>, bool) {
    let chunk = if chunk == 0 {
        input.len().max(1)
    } else {
        chunk
    };
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut out = Vec::new();
    loop {
        let before = buf.clone();
        let capacity = buf.capacity();
        match decode_request(&mut buf, limits) {
            Ok(Some(request)) => {
                let used = before.len() - buf.len();
                assert!(used > 0, "a request consumed no bytes");
                assert_eq!(&before[used..], &buf[..], "decoding changed the rest");
                assert!(request.len() <= limits.max_args, "more args than the limit");
                for arg in &request {
                    assert!(arg.len() <= limits.max_bulk_len, "bulk over the limit");
                }
                out.push(request);
            }
            Ok(None) => {
                assert_eq!(buf, before, "an incomplete request consumed bytes");
                assert!(
                    buf.capacity() <= capacity,
                    "an incomplete request reserved memory"
                );
                if fed == input.len() {
                    return (out, false);
                }
                let next = (fed + chunk).min(input.len());
                buf.extend_from_slice(&input[fed..next]);
                fed = next;
            }
            Err(_) => return (out, true),
        }
    }
}

/// `decode_request` over arbitrary bytes under the limits the first byte picks: no panic,
/// progress on every request, nothing consumed or reserved while incomplete, every limit
/// respected, the same requests whether the bytes arrive at once or in chunks (of the size
/// the second byte gives), and each request re-encodes to one that decodes back the same.
pub fn resp_request(data: &[u8]) {
    let [mode, chunk, input @ ..] = data else {
        return;
    };
    let limits = resp_limits(*mode);
    let (whole, whole_err) = requests_in(input, 0, &limits);
    let (chunked, chunked_err) = requests_in(input, usize::from(*chunk), &limits);
    assert_eq!(whole, chunked, "chunked input decodes differently");
    assert_eq!(whole_err, chunked_err, "chunked input fails differently");
    for request in whole.iter().filter(|r| !r.is_empty()) {
        let mut again = BytesMut::new();
        encode_request(request, &mut again);
        let decoded = decode_request(&mut again, &Limits::default())
            .expect("an encoded request decodes")
            .expect("an encoded request is complete");
        assert_eq!(&decoded, request, "request does not survive re-encoding");
        assert!(again.is_empty());
    }
}

/// `frame` as the encoder writes it: a line break in a simple string or error becomes a space.
fn one_line(frame: &Frame) -> Frame {
    let flat = |s: &str| s.replace(['\r', '\n'], " ");
    let all = |items: &[Frame]| items.iter().map(one_line).collect();
    match frame {
        Frame::Simple(s) => Frame::Simple(flat(s).into()),
        Frame::Error(s) => Frame::Error(flat(s)),
        Frame::Array(items) => Frame::Array(all(items)),
        Frame::Set(items) => Frame::Set(all(items)),
        Frame::Push(items) => Frame::Push(all(items)),
        Frame::Map(pairs) => Frame::Map(
            pairs
                .iter()
                .map(|(k, v)| (one_line(k), one_line(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `decode_frame` (the client side) over arbitrary bytes, RESP2 or RESP3: no panic, a frame
/// uses at least one byte and no more than given, and it re-encodes in both protocols to bytes
/// that decode to the same frame (up to the line breaks the encoder turns into spaces): in
/// RESP3 to the frame itself, in RESP2 to its RESP2 form (`Frame::to_resp2`: a map flat, a
/// double a bulk string, ...). RESP3 has one nil, so a RESP2 `*-1` comes back as `_`'s `Null`.
pub fn resp_frame(data: &[u8]) {
    let Ok(Some((frame, used))) = decode_frame(data) else {
        return;
    };
    assert!(used > 0 && used <= data.len(), "frame used {used} bytes");
    for proto in [Protocol::Resp2, Protocol::Resp3] {
        let mut again = BytesMut::new();
        encode(&frame, proto, &mut again);
        let (decoded, used_again) = decode_frame(&again)
            .expect("an encoded frame decodes")
            .expect("an encoded frame is complete");
        let want = match proto {
            Protocol::Resp2 => one_line(&frame.to_resp2()),
            Protocol::Resp3 => nulls_as_one(&one_line(&frame)),
        };
        assert_eq!(
            decoded, want,
            "frame does not survive re-encoding in {proto:?}"
        );
        assert_eq!(used_again, again.len());
    }
}

/// `frame` with every `NullArray` as `Null`: RESP3 writes both nils as `_`.
fn nulls_as_one(frame: &Frame) -> Frame {
    let all = |items: &[Frame]| items.iter().map(nulls_as_one).collect();
    match frame {
        Frame::NullArray => Frame::Null,
        Frame::Array(items) => Frame::Array(all(items)),
        Frame::Set(items) => Frame::Set(all(items)),
        Frame::Push(items) => Frame::Push(all(items)),
        Frame::Map(pairs) => Frame::Map(
            pairs
                .iter()
                .map(|(k, v)| (nulls_as_one(k), nulls_as_one(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}
