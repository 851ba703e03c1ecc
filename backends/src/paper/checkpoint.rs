//! The checkpoint file format: a header, the key space in checksummed blocks, and a footer with
//! a whole-file checksum. [`CheckpointWriter`] writes it block by block; [`CheckpointReader`] reads and
//! verifies it, for recovery and for `moodb snapshot inspect`. FORMAT.md draws the bytes.
//!
//! Header (48 bytes, integers little-endian):
//!
//! | offset | size | field                                      |
//! |--------|------|--------------------------------------------|
//! | 0      | 8    | magic `MOODBCKP`                           |
//! | 8      | 4    | format version (3; 1 and 2 are read too)   |
//! | 12     | 4    | reserved, 0                                |
//! | 16     | 8    | LSN: the state is the one after this record |
//! | 24     | 8    | key count                                  |
//! | 32     | 8    | created at, Unix milliseconds              |
//! | 40     | 4    | reserved, 0                                |
//! | 44     | 4    | CRC32C of bytes 0..44                      |
//!
//! Then blocks, each: u32 body length (> 0), u32 entry count, u16 database, u16 reserved (0),
//! u32 CRC32C of the database and reserved bytes then the body, body; every entry of a block
//! is in the block's database. Version 1's blocks have no database field (12-byte header,
//! CRC of the body alone) and hold database 0. An entry: u32 key length, key, u32 value length, value, u64 expiry in Unix ms (0 = none).
//! Version 3 (issue 15) adds spilled values: a value length with its top bit set
//! ([`POINTER_FLAG`]) is `0x8000_0014` and the 20 bytes after it are a pointer into a value
//! segment (u32 segment, u64 offset, u32 length, u32 CRC32C; `paper/values.rs`), not the value.
//! Versions 1 and 2 never set the bit (values are at most 512 MB).
//! Footer (24 bytes): u32 0 (end marker), u32 0, u64 key count again, u32 CRC32C of every byte
//! before the footer, 4 bytes `CEND`.

use std::io;
use std::sync::mpsc;

use bytes::Bytes;
use moodb_core::value_store::ValuePtr;
use moodb_core::{Databases, Lsn, PreparedEntry, Value, ValueRef};

use super::log::{u32_at, u64_at};

pub const CHECKPOINT_MAGIC: &[u8; 8] = b"MOODBCKP";
/// The version this build writes: 2 gave each block a database, 3 pointers to spilled values.
pub const CHECKPOINT_VERSION: u32 = 3;
/// Version 2: databases, no pointers; still read, and written only for tests.
pub const CHECKPOINT_VERSION_2: u32 = 2;
/// The top bit of a version 3 value length: the entry holds a [`ValuePtr`], not the value.
pub const POINTER_FLAG: u32 = 0x8000_0000;
/// The first version: database 0 only; still read, and written only for tests.
pub const CHECKPOINT_VERSION_1: u32 = 1;
pub const CHECKPOINT_HEADER_LEN: usize = 48;
/// A block header's length in version 2.
pub const BLOCK_HEADER_LEN: usize = 16;
/// A block header's length in version 1.
pub const BLOCK_HEADER_LEN_V1: usize = 12;
pub const FOOTER_LEN: usize = 24;
pub const FOOTER_MAGIC: &[u8; 4] = b"CEND";
/// Entries are grouped into blocks of about this many bytes.
pub const BLOCK_TARGET: usize = 64 * 1024;

/// The header of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointHeader {
    pub version: u32,
    pub lsn: Lsn,
    pub key_count: u64,
    pub created_unix_ms: u64,
}

/// Why a checkpoint cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("byte offset {offset}: {reason}")]
pub struct CheckpointError {
    pub offset: u64,
    pub reason: String,
}

fn bad(offset: usize, reason: impl Into<String>) -> CheckpointError {
    CheckpointError {
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Writes a checkpoint block by block into a sink (a file), keeping one block in memory.
pub struct CheckpointWriter<W: FnMut(&[u8]) -> io::Result<()>> {
    sink: W,
    version: u32,
    file_crc: u32,
    block: Vec<u8>,
    /// The database of the entries in `block`.
    block_db: u16,
    count: u32,
    added: u64,
    key_count: u64,
    written: u64,
}

impl<W: FnMut(&[u8]) -> io::Result<()>> CheckpointWriter<W> {
    /// Starts a checkpoint of exactly `key_count` entries as of `lsn`; writes the header.
    pub fn new(sink: W, lsn: Lsn, created_unix_ms: u64, key_count: u64) -> io::Result<Self> {
        Self::with_version(sink, CHECKPOINT_VERSION, lsn, created_unix_ms, key_count)
    }

    /// The same in format `version` (1 or 2): version 1 is kept so that tests can write the
    /// files an older build wrote; it holds database 0 only.
    pub fn with_version(
        sink: W,
        version: u32,
        lsn: Lsn,
        created_unix_ms: u64,
        key_count: u64,
    ) -> io::Result<Self> {
        if !(CHECKPOINT_VERSION_1..=CHECKPOINT_VERSION).contains(&version) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no checkpoint format version {version}"),
            ));
        }
        let mut header = Vec::with_capacity(CHECKPOINT_HEADER_LEN);
        header.extend_from_slice(CHECKPOINT_MAGIC);
        header.extend_from_slice(&version.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&lsn.to_le_bytes());
        header.extend_from_slice(&key_count.to_le_bytes());
        header.extend_from_slice(&created_unix_ms.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        let crc = crc32c::crc32c(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        let mut writer = CheckpointWriter {
            sink,
            version,
            file_crc: 0,
            block: Vec::with_capacity(BLOCK_TARGET + 1024),
            block_db: 0,
            count: 0,
            added: 0,
            key_count,
            written: 0,
        };
        writer.emit(&header)?;
        Ok(writer)
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file_crc = crc32c::crc32c_append(self.file_crc, bytes);
        self.written += bytes.len() as u64;
        (self.sink)(bytes)
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let mut head = [0u8; BLOCK_HEADER_LEN];
        head[0..4].copy_from_slice(&(self.block.len() as u32).to_le_bytes());
        head[4..8].copy_from_slice(&self.count.to_le_bytes());
        let head_len = if self.version == CHECKPOINT_VERSION_1 {
            head[8..12].copy_from_slice(&crc32c::crc32c(&self.block).to_le_bytes());
            BLOCK_HEADER_LEN_V1
        } else {
            head[8..10].copy_from_slice(&self.block_db.to_le_bytes());
            let crc = crc32c::crc32c_append(crc32c::crc32c(&head[8..12]), &self.block);
            head[12..16].copy_from_slice(&crc.to_le_bytes());
            BLOCK_HEADER_LEN
        };
        self.emit(&head[..head_len])?;
        let block = std::mem::take(&mut self.block);
        let result = self.emit(&block);
        self.block = block;
        self.block.clear();
        self.count = 0;
        result
    }

    /// Adds one entry of database `db` (entries of one database are best added together: a
    /// change of database ends the block).
    pub fn add(&mut self, db: u16, key: &[u8], value: impl EntryValue) -> io::Result<()> {
        if db != self.block_db {
            if self.version == CHECKPOINT_VERSION_1 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("checkpoint format version 1 holds database 0 only, not {db}"),
                ));
            }
            self.flush_block()?;
            self.block_db = db;
        }
        let b = &mut self.block;
        b.extend_from_slice(&(key.len() as u32).to_le_bytes());
        b.extend_from_slice(key);
        match value.spilled() {
            Some(ptr) if self.version >= CHECKPOINT_VERSION => {
                b.extend_from_slice(&(POINTER_FLAG | ValuePtr::ENCODED_LEN as u32).to_le_bytes());
                b.extend_from_slice(&ptr.encode());
            }
            Some(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "checkpoint format version {} holds no pointers",
                        self.version
                    ),
                ))
            }
            None => {
                let data = value.data();
                b.extend_from_slice(&(data.len() as u32).to_le_bytes());
                b.extend_from_slice(data);
            }
        }
        b.extend_from_slice(&value.expires_at_ms().unwrap_or(0).to_le_bytes());
        self.count += 1;
        self.added += 1;
        if self.block.len() >= BLOCK_TARGET {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Writes the last block and the footer; returns the file size.
    pub fn finish(mut self) -> io::Result<u64> {
        if self.added != self.key_count {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "checkpoint announced {} keys but {} were added",
                    self.key_count, self.added
                ),
            ));
        }
        self.flush_block()?;
        let mut footer = [0u8; FOOTER_LEN];
        footer[8..16].copy_from_slice(&self.key_count.to_le_bytes());
        footer[16..20].copy_from_slice(&self.file_crc.to_le_bytes());
        footer[20..24].copy_from_slice(FOOTER_MAGIC);
        self.written += FOOTER_LEN as u64;
        (self.sink)(&footer)?;
        Ok(self.written)
    }
}

/// What a checkpoint entry's value is written from: the key space's [`ValueRef`] or an owned
/// [`Value`].
pub trait EntryValue {
    fn data(&self) -> &[u8];
    fn expires_at_ms(&self) -> Option<u64>;
    /// Where the value is when it is spilled (`data` is not used then).
    fn spilled(&self) -> Option<ValuePtr> {
        None
    }
}

impl EntryValue for ValueRef<'_> {
    fn data(&self) -> &[u8] {
        self.data
    }
    fn spilled(&self) -> Option<ValuePtr> {
        self.spilled
    }
    fn expires_at_ms(&self) -> Option<u64> {
        self.expires_at_ms
    }
}

impl EntryValue for &Value {
    fn data(&self) -> &[u8] {
        &self.data
    }
    fn expires_at_ms(&self) -> Option<u64> {
        self.expires_at_ms
    }
}

/// Writes a whole checkpoint of `entries` (database, key, value; exactly `key_count` of them)
/// into a buffer.
pub fn encode_checkpoint<K: AsRef<[u8]>, V: EntryValue>(
    lsn: Lsn,
    created_unix_ms: u64,
    key_count: u64,
    entries: impl Iterator<Item = (u16, K, V)>,
) -> io::Result<Vec<u8>> {
    encode_checkpoint_version(CHECKPOINT_VERSION, lsn, created_unix_ms, key_count, entries)
}

/// [`encode_checkpoint`] in format `version` (tests write version 1 files with it).
pub fn encode_checkpoint_version<K: AsRef<[u8]>, V: EntryValue>(
    version: u32,
    lsn: Lsn,
    created_unix_ms: u64,
    key_count: u64,
    entries: impl Iterator<Item = (u16, K, V)>,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let sink = |b: &[u8]| {
        out.extend_from_slice(b);
        Ok(())
    };
    let mut writer =
        CheckpointWriter::with_version(sink, version, lsn, created_unix_ms, key_count)?;
    for (db, key, value) in entries {
        writer.add(db, key.as_ref(), value)?;
    }
    writer.finish()?;
    Ok(out)
}

/// Reads a checkpoint held in memory. [`CheckpointReader::new`] checks the header;
/// [`CheckpointReader::entries`] walks the blocks; [`CheckpointReader::load`] verifies every
/// checksum and count and builds the key space, or says where the file is damaged (a damaged
/// checkpoint is never half-loaded).
#[derive(Debug)]
pub struct CheckpointReader<'a> {
    bytes: &'a [u8],
    header: CheckpointHeader,
}

impl<'a> CheckpointReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Result<Self, CheckpointError> {
        if bytes.len() < CHECKPOINT_HEADER_LEN + FOOTER_LEN {
            return Err(bad(
                0,
                format!(
                    "file is {} bytes, too short for a checkpoint header and footer",
                    bytes.len()
                ),
            ));
        }
        if &bytes[0..8] != CHECKPOINT_MAGIC {
            return Err(bad(0, "bad magic: not a MooDB checkpoint"));
        }
        if u32_at(bytes, 44) != crc32c::crc32c(&bytes[0..44]) {
            return Err(bad(44, "checkpoint header checksum mismatch"));
        }
        let version = u32_at(bytes, 8);
        if !(CHECKPOINT_VERSION_1..=CHECKPOINT_VERSION).contains(&version) {
            return Err(bad(
                8,
                format!("checkpoint format version {version}, this build reads versions {CHECKPOINT_VERSION_1} to {CHECKPOINT_VERSION}"),
            ));
        }
        Ok(CheckpointReader {
            bytes,
            header: CheckpointHeader {
                version,
                lsn: u64_at(bytes, 16),
                key_count: u64_at(bytes, 24),
                created_unix_ms: u64_at(bytes, 32),
            },
        })
    }

    pub fn header(&self) -> CheckpointHeader {
        self.header
    }

    /// Every entry in file order with the pointer of a spilled value (whose `Value` has no
    /// bytes then); stops after the first error.
    pub fn entries_with_pointers(
        &self,
    ) -> impl Iterator<Item = Result<(u16, Bytes, Value, Option<ValuePtr>), CheckpointError>> + 'a
    {
        let mut entries = self.entries();
        std::iter::from_fn(move || {
            if entries.done {
                return None;
            }
            match entries.step_raw() {
                Ok(Some((db, key, raw, expires_at_ms))) => {
                    let (data, ptr) = match raw {
                        RawValue::Inline(d) => (Bytes::copy_from_slice(d), None),
                        RawValue::Pointer(p) => (Bytes::new(), Some(p)),
                    };
                    let value = Value {
                        data,
                        expires_at_ms,
                    };
                    Some(Ok((db, Bytes::copy_from_slice(key), value, ptr)))
                }
                Ok(None) => {
                    entries.done = true;
                    None
                }
                Err(e) => {
                    entries.done = true;
                    Some(Err(e))
                }
            }
        })
    }

    /// Every entry in file order (a spilled value's `Value` has no bytes: see
    /// [`CheckpointReader::entries_with_pointers`]); stops after the first error.
    pub fn entries(&self) -> CheckpointEntries<'a> {
        CheckpointEntries {
            bytes: self.bytes,
            v1: self.header.version == CHECKPOINT_VERSION_1,
            pointers: self.header.version >= CHECKPOINT_VERSION,
            db: 0,
            at: CHECKPOINT_HEADER_LEN,
            block_end: CHECKPOINT_HEADER_LEN,
            block_left: 0,
            seen: 0,
            done: false,
        }
    }

    /// Verifies the whole file and builds the databases it holds, on two threads: this one
    /// checks the blocks and builds each entry (an allocation and a copy) while a second one
    /// puts them into the key space, [`LOAD_BATCH`] at a time (the table and the index of
    /// expiries are then the second thread's allocations). The entries are allocated here,
    /// on the thread that goes on to own them: built on a thread that then ended, they were
    /// freed by the event loop's writes into pages nobody allocated from again (resident
    /// memory after 200k SETs over 1M recovered keys: 163 MB, against 151). One thread where a
    /// second cannot be started.
    pub fn load(&self) -> Result<Databases, CheckpointError> {
        let (batches, received) = mpsc::sync_channel(LOAD_BATCHES_AHEAD);
        std::thread::scope(|scope| {
            let builder = std::thread::Builder::new()
                .name("moodb-recovery".into())
                .spawn_scoped(scope, move || {
                    moodb_core::cpus::enter_helper_thread();
                    self.put_entries(received)
                });
            let Ok(builder) = builder else {
                return self.load_on_this_thread();
            };
            let sent = self.send_entries(&batches);
            drop(batches);
            let state = builder
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            sent?;
            self.verify_footer()?;
            Ok(state)
        })
    }

    /// Sends the file's entries, built, in batches; stops at the first error, at the end, or
    /// when the receiver is gone (its thread panicked: `load` passes the panic on).
    fn send_entries(&self, batches: &mpsc::SyncSender<LoadBatch>) -> Result<(), CheckpointError> {
        let mut entries = self.entries();
        let mut batch = Vec::with_capacity(LOAD_BATCH);
        while let Some((db, key, value, expires_at_ms)) = entries.step_raw()? {
            batch.push((db, prepare(key, value, expires_at_ms)));
            if batch.len() == LOAD_BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(LOAD_BATCH));
                if batches.send(full).is_err() {
                    return Ok(());
                }
            }
        }
        let _ = batches.send(batch);
        Ok(())
    }

    /// Puts the built entries into fresh databases as they come, until the sender is done.
    fn put_entries(&self, batches: mpsc::Receiver<LoadBatch>) -> Databases {
        let mut loading = Loading::new(self);
        for batch in batches {
            for (db, entry) in batch {
                loading.db(db).put_prepared(entry);
            }
        }
        loading.state
    }

    fn load_on_this_thread(&self) -> Result<Databases, CheckpointError> {
        let mut loading = Loading::new(self);
        let mut entries = self.entries();
        while let Some((db, key, value, expires_at_ms)) = entries.step_raw()? {
            loading
                .db(db)
                .put_prepared(prepare(key, value, expires_at_ms));
        }
        loading.finish()
    }

    /// Verifies every checksum and count without building anything; returns the key count.
    pub fn verify(&self) -> Result<u64, CheckpointError> {
        let mut n = 0u64;
        for entry in self.entries() {
            entry?;
            n += 1;
        }
        self.verify_footer()?;
        Ok(n)
    }

    fn verify_footer(&self) -> Result<(), CheckpointError> {
        let b = self.bytes;
        let f = b.len() - FOOTER_LEN;
        if &b[f + 20..] != FOOTER_MAGIC || u32_at(b, f) != 0 || u32_at(b, f + 4) != 0 {
            return Err(bad(f, "checkpoint footer missing: the file is incomplete"));
        }
        if u64_at(b, f + 8) != self.header.key_count {
            return Err(bad(f + 8, "footer key count differs from the header's"));
        }
        if u32_at(b, f + 16) != crc32c::crc32c(&b[..f]) {
            return Err(bad(f + 16, "checkpoint file checksum mismatch"));
        }
        Ok(())
    }
}

/// Entries built per message from the recovering thread to the one that puts them in.
const LOAD_BATCH: usize = 4096;
/// Batches the recovering thread may build ahead of the other.
const LOAD_BATCHES_AHEAD: usize = 4;

type LoadBatch = Vec<(u16, PreparedEntry)>;

fn prepare(key: &[u8], value: RawValue<'_>, expires_at_ms: Option<u64>) -> PreparedEntry {
    match value {
        RawValue::Inline(value) => PreparedEntry::inline(key, value, expires_at_ms),
        RawValue::Pointer(ptr) => PreparedEntry::spilled(key, ptr, expires_at_ms),
    }
}

/// The databases a checkpoint's entries go into, and the footer checked at the end.
struct Loading<'r, 'a> {
    reader: &'r CheckpointReader<'a>,
    state: Databases,
    sized: bool,
}

impl<'r, 'a> Loading<'r, 'a> {
    fn new(reader: &'r CheckpointReader<'a>) -> Self {
        Loading {
            reader,
            state: Databases::default(),
            sized: false,
        }
    }

    /// Database `db`. The first database met is sized for every key of the file (usually
    /// the only one), trusting the header's count no further than the entries the file can
    /// hold (16 bytes each at the least: the lengths and the expiry).
    fn db(&mut self, db: u16) -> &mut moodb_core::Keyspace {
        let ks = self.state.db_mut(db);
        if !self.sized {
            let r = self.reader;
            ks.reserve(r.header.key_count.min(r.bytes.len() as u64 / 16) as usize);
            self.sized = true;
        }
        ks
    }

    fn finish(self) -> Result<Databases, CheckpointError> {
        self.reader.verify_footer()?;
        Ok(self.state)
    }
}

/// An entry's value as the file holds it.
#[derive(Debug, Clone, Copy)]
enum RawValue<'a> {
    Inline(&'a [u8]),
    Pointer(ValuePtr),
}

/// Iterator over the entries of a checkpoint, checking each block's checksum before using it.
#[derive(Debug)]
pub struct CheckpointEntries<'a> {
    bytes: &'a [u8],
    /// A version 1 file: 12-byte block headers, every entry in database 0.
    v1: bool,
    /// A version 3 file: a value may be a pointer.
    pointers: bool,
    /// The current block's database.
    db: u16,
    at: usize,
    block_end: usize,
    block_left: u32,
    seen: u64,
    done: bool,
}

impl<'a> CheckpointEntries<'a> {
    fn field(&mut self, n: usize, what: &str) -> Result<&'a [u8], CheckpointError> {
        if self.block_end - self.at < n {
            return Err(bad(
                self.at,
                format!("{what} runs past the end of its block"),
            ));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn step(&mut self) -> Result<Option<(u16, Bytes, Value)>, CheckpointError> {
        Ok(self.step_raw()?.map(|(db, key, raw, expires_at_ms)| {
            let data = match raw {
                RawValue::Inline(d) => Bytes::copy_from_slice(d),
                RawValue::Pointer(_) => Bytes::new(),
            };
            (
                db,
                Bytes::copy_from_slice(key),
                Value {
                    data,
                    expires_at_ms,
                },
            )
        }))
    }

    /// The next entry as slices of the file: database, key, value, expiry.
    #[allow(clippy::type_complexity)]
    fn step_raw(
        &mut self,
    ) -> Result<Option<(u16, &'a [u8], RawValue<'a>, Option<u64>)>, CheckpointError> {
        let footer = self.bytes.len() - FOOTER_LEN;
        while self.block_left == 0 {
            if self.at != self.block_end {
                return Err(bad(self.at, "block holds bytes after its last entry"));
            }
            if self.at == footer {
                let expected = u64_at(self.bytes, 24);
                if self.seen != expected {
                    return Err(bad(
                        self.at,
                        format!(
                            "checkpoint holds {} entries, header says {expected}",
                            self.seen
                        ),
                    ));
                }
                return Ok(None);
            }
            let head_len = if self.v1 {
                BLOCK_HEADER_LEN_V1
            } else {
                BLOCK_HEADER_LEN
            };
            if footer - self.at < head_len {
                return Err(bad(self.at, "incomplete block header"));
            }
            let len = u32_at(self.bytes, self.at) as usize;
            let count = u32_at(self.bytes, self.at + 4);
            let body = self.at + head_len;
            if len == 0 || count == 0 || footer - body < len {
                return Err(bad(
                    self.at,
                    format!("invalid block: length {len}, {count} entries"),
                ));
            }
            let crc = u32_at(self.bytes, body - 4);
            let computed = if self.v1 {
                crc32c::crc32c(&self.bytes[body..body + len])
            } else {
                let db_field = &self.bytes[self.at + 8..self.at + 12];
                crc32c::crc32c_append(crc32c::crc32c(db_field), &self.bytes[body..body + len])
            };
            if crc != computed {
                return Err(bad(self.at, "block checksum mismatch"));
            }
            if !self.v1 {
                if u16::from_le_bytes([self.bytes[self.at + 10], self.bytes[self.at + 11]]) != 0 {
                    return Err(bad(self.at + 10, "block reserved bytes are not zero"));
                }
                self.db = u16::from_le_bytes([self.bytes[self.at + 8], self.bytes[self.at + 9]]);
            }
            self.at = body;
            self.block_end = body + len;
            self.block_left = count;
        }
        let klen = u32_at(self.field(4, "key length")?, 0) as usize;
        let key = self.field(klen, "key")?;
        let at = self.at;
        let vlen = u32_at(self.field(4, "value length")?, 0);
        let data = if self.pointers && vlen & POINTER_FLAG != 0 {
            let raw = self.field((vlen & !POINTER_FLAG) as usize, "pointer")?;
            match ValuePtr::decode(raw) {
                Some(ptr) if raw.len() == ValuePtr::ENCODED_LEN => RawValue::Pointer(ptr),
                _ => return Err(bad(at, "invalid value pointer")),
            }
        } else {
            RawValue::Inline(self.field(vlen as usize, "value")?)
        };
        let exp = u64_at(self.field(8, "expiry")?, 0);
        self.block_left -= 1;
        self.seen += 1;
        Ok(Some((self.db, key, data, (exp != 0).then_some(exp))))
    }
}

impl Iterator for CheckpointEntries<'_> {
    type Item = Result<(u16, Bytes, Value), CheckpointError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two-thread load and the one-thread one (where no thread can start) build the same
    /// databases, across many batches and more than one database, and both refuse a damaged
    /// block.
    #[test]
    fn both_loads_build_the_same_databases_and_refuse_the_same_damage() {
        let n = 3 * LOAD_BATCH as u64 + 17;
        let entries: Vec<(u16, Vec<u8>, Value)> = (0..n)
            .map(|i| {
                let db = (i % 3) as u16;
                let value = Value::new(format!("value-{i}").into_bytes());
                (db, format!("key-{i}").into_bytes(), value)
            })
            .collect();
        let bytes =
            encode_checkpoint(7, 0, n, entries.iter().map(|(d, k, v)| (*d, k, v))).expect("encode");
        let reader = CheckpointReader::new(&bytes).expect("a valid checkpoint");
        let sorted = |state: &Databases| {
            let mut all: Vec<(u16, Vec<u8>, Vec<u8>)> = state
                .entries()
                .map(|(db, k, v)| (db, k.to_vec(), v.to_value().data.to_vec()))
                .collect();
            all.sort();
            all
        };
        let two = sorted(&reader.load().expect("two threads"));
        let one = sorted(&reader.load_on_this_thread().expect("one thread"));
        assert_eq!(two.len() as u64, n);
        assert_eq!(two, one);

        let mut damaged = bytes.clone();
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0x40;
        let reader = CheckpointReader::new(&damaged).expect("the header is intact");
        let (two, one) = (reader.load(), reader.load_on_this_thread());
        assert!(two.is_err() && one.is_err(), "{two:?} / {one:?}");
        assert_eq!(two.err().map(|e| e.offset), one.err().map(|e| e.offset));
    }
}
