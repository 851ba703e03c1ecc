//! Value segments: the append-only files spilled values live in (issue 15), and
//! [`PaperValues`], the paper backend's [`ValueStore`]. FORMAT.md draws the bytes.
//!
//! A segment `values-<n:010>` starts with a 16-byte header, then holds records back to back:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `MOODBVAL` |
//! | 8 | 4 | format version (1), little endian |
//! | 12 | 4 | reserved, 0 |
//!
//! | size | record field |
//! |---|---|
//! | 4 | value length, little endian |
//! | 4 | CRC32C of the value's bytes |
//! | length | the value |
//!
//! A [`ValuePtr`] names a record: segment number, offset of its record header, length, CRC. A
//! read is one positioned read of header and value; the header must agree with the pointer and
//! the bytes with the CRC, or the read fails naming file and offset (never a wrong value).
//!
//! Durability: values are written without a sync, since the log still holds each full value
//! until the next checkpoint; [`ValueStore::sync`] (called by a checkpoint before it writes
//! pointers) fdatasyncs every segment written since the last sync and the directory. Each run
//! appends to a new segment (one past the highest found), so a torn tail left by a crash is
//! never written after, and segments roll at [`SEGMENT_BYTES`] (or when the store asks,
//! [`ValueStore::roll`], so a mostly stale current segment can be compacted).
//!
//! Compaction (the store decides, `engine/core/src/store/spill.rs`): the store copies a
//! mostly stale segment's live values to the current one and repoints its entries, then
//! [`ValueStore::retire`]s the segment; [`PaperValues::remove_retired`], called by the
//! checkpoint job once its new checkpoint is renamed into place and the directory synced,
//! deletes the retired segments that checkpoint does not point into. Every file operation goes
//! through the [`Fs`] trait, so the power-cut tests run it on `SimFs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use moodb_core::value_store::{SegmentInfo, ValueError, ValuePtr, ValueStore, ValueStoreStats};

use super::fs::{Fs, FsFile, FsRead, StdFs};

pub const VALUES_MAGIC: &[u8; 8] = b"MOODBVAL";
pub const VALUES_VERSION: u32 = 1;
pub const VALUES_HEADER_LEN: u64 = 16;
pub const VALUE_RECORD_HEADER_LEN: u64 = 8;
/// A segment takes no new value once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 64 << 20;
/// The prefix of a value segment's name.
pub const VALUES_PREFIX: &str = "values-";

/// The file name of segment `n`.
pub fn segment_name(n: u32) -> String {
    format!("{VALUES_PREFIX}{n:010}")
}

/// The segment number a file name carries, if it is a value segment's.
pub fn parse_segment_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(VALUES_PREFIX)?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// The header of a segment.
pub fn encode_header() -> [u8; VALUES_HEADER_LEN as usize] {
    let mut h = [0u8; VALUES_HEADER_LEN as usize];
    h[0..8].copy_from_slice(VALUES_MAGIC);
    h[8..12].copy_from_slice(&VALUES_VERSION.to_le_bytes());
    h
}

/// One value's record: length, CRC32C, bytes.
pub fn encode_record(value: &[u8], out: &mut Vec<u8>) -> Result<u32, ValueError> {
    let len = u32::try_from(value.len()).map_err(|_| ValueError::TooLarge {
        len: value.len() as u64,
    })?;
    let crc = crc32c::crc32c(value);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(value);
    Ok(crc)
}

/// What [`check_segment`] found in a segment file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentCheck {
    pub values: u64,
    pub value_bytes: u64,
    /// Bytes after the last whole record (a torn tail from a crash; never pointed to by a
    /// checkpoint, since a checkpoint syncs before it writes pointers).
    pub torn_bytes: u64,
}

/// Reads a whole segment and checks every record's checksum (`moodb snapshot inspect` and
/// tests); a record whose CRC does not match is an error naming the file and offset.
pub fn check_segment(file: &str, bytes: &[u8]) -> Result<SegmentCheck, ValueError> {
    let header = encode_header();
    if bytes.len() < header.len() || bytes[..8] != header[..8] {
        return Err(ValueError::Io {
            file: file.into(),
            offset: 0,
            message: "not a MooDB value segment (bad magic)".into(),
        });
    }
    if bytes[8..16] != header[8..16] {
        return Err(ValueError::Io {
            file: file.into(),
            offset: 8,
            message: format!(
                "value segment version {}, this build reads {VALUES_VERSION}",
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]])
            ),
        });
    }
    let mut at = header.len();
    let mut check = SegmentCheck::default();
    while bytes.len() - at >= VALUE_RECORD_HEADER_LEN as usize {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let body = at + VALUE_RECORD_HEADER_LEN as usize;
        let Some(value) = bytes.get(body..body + len as usize) else {
            break;
        };
        if crc32c::crc32c(value) != crc {
            return Err(ValueError::Checksum {
                file: file.into(),
                offset: at as u64,
            });
        }
        check.values += 1;
        check.value_bytes += u64::from(len);
        at = body + len as usize;
    }
    check.torn_bytes = (bytes.len() - at) as u64;
    Ok(check)
}

/// The segment values are appended to.
#[derive(Debug)]
struct Current {
    n: u32,
    file: Box<dyn FsFile>,
    len: u64,
}

/// What the store knows of one segment.
#[derive(Debug, Clone, Copy, Default)]
struct Seg {
    /// The file's size (header included).
    len: u64,
    retired: bool,
}

#[derive(Debug, Default)]
struct Inner {
    /// Read handles, opened when first needed.
    readers: HashMap<u32, Arc<dyn FsRead>>,
    segs: BTreeMap<u32, Seg>,
    current: Option<Current>,
    next: u32,
    /// Segments written since the last sync.
    unsynced: BTreeSet<u32>,
    dir_unsynced: bool,
    /// Segments deleted since start.
    removed: u64,
    buf: Vec<u8>,
}

/// The paper backend's value store over the segments of a data directory; see the module
/// documentation.
#[derive(Debug)]
pub struct PaperValues {
    fs: Arc<dyn Fs>,
    dir: PathBuf,
    inner: Mutex<Inner>,
}

fn io_err(file: &str, offset: u64, e: &io::Error) -> ValueError {
    ValueError::Io {
        file: file.into(),
        offset,
        message: e.to_string(),
    }
}

impl PaperValues {
    /// The value segments of `dir` (which exists), on real files: new values go to a new
    /// segment.
    pub fn open(dir: &Path) -> Result<PaperValues, ValueError> {
        Self::open_with_fs(Arc::new(StdFs), dir)
    }

    /// The same on any file system (the power-cut tests use `SimFs`).
    pub fn open_with_fs(fs: Arc<dyn Fs>, dir: &Path) -> Result<PaperValues, ValueError> {
        let names = fs
            .list_dir(dir)
            .map_err(|e| io_err(&dir.display().to_string(), 0, &e))?;
        let mut inner = Inner::default();
        for name in names {
            if let Some(n) = parse_segment_name(&name) {
                inner.next = inner.next.max(n + 1);
                let len = fs
                    .open_read(&dir.join(&name))
                    .and_then(|r| r.size())
                    .map_err(|e| io_err(&name, 0, &e))?;
                inner.segs.insert(
                    n,
                    Seg {
                        len,
                        retired: false,
                    },
                );
            }
        }
        Ok(PaperValues {
            fs,
            dir: dir.to_path_buf(),
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new current segment with its header written.
    fn start_segment(&self, inner: &mut Inner) -> Result<(), ValueError> {
        let n = inner.next;
        let name = segment_name(n);
        // Numbers are never reused: a failed create still moves on.
        inner.next = n + 1;
        let mut file = self
            .fs
            .create(&self.dir.join(&name))
            .map_err(|e| io_err(&name, 0, &e))?;
        inner.dir_unsynced = true;
        inner.segs.insert(n, Seg::default());
        inner.unsynced.insert(n);
        file.write_all_at(&encode_header(), 0)
            .map_err(|e| io_err(&name, 0, &e))?;
        inner.segs.insert(
            n,
            Seg {
                len: VALUES_HEADER_LEN,
                retired: false,
            },
        );
        inner.current = Some(Current {
            n,
            file,
            len: VALUES_HEADER_LEN,
        });
        Ok(())
    }

    /// The read handle of segment `n`, opened when first needed.
    fn reader(&self, n: u32) -> Result<Arc<dyn FsRead>, ValueError> {
        if let Some(r) = self.lock().readers.get(&n) {
            return Ok(r.clone());
        }
        let name = segment_name(n);
        let reader = self
            .fs
            .open_read(&self.dir.join(&name))
            .map_err(|e| io_err(&name, 0, &e))?;
        self.lock().readers.insert(n, reader.clone());
        Ok(reader)
    }

    /// Deletes every retired segment that `referenced` (the segments a checkpoint just made
    /// durable points into) does not name; returns how many went. The caller syncs the
    /// directory. Called by the checkpoint job after its rename is durable: see spill.rs's
    /// module documentation for why this is the one safe moment.
    pub fn remove_retired(&self, referenced: &BTreeSet<u32>) -> Result<u64, ValueError> {
        let doomed: Vec<u32> = {
            let inner = self.lock();
            let current = inner.current.as_ref().map(|c| c.n);
            inner
                .segs
                .iter()
                .filter(|(n, s)| s.retired && !referenced.contains(n) && Some(**n) != current)
                .map(|(n, _)| *n)
                .collect()
        };
        let mut removed = 0;
        for n in doomed {
            let name = segment_name(n);
            match self.fs.remove(&self.dir.join(&name)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(io_err(&name, 0, &e));
                }
                _ => {}
            }
            let mut inner = self.lock();
            inner.segs.remove(&n);
            inner.readers.remove(&n);
            inner.unsynced.remove(&n);
            inner.removed += 1;
            removed += 1;
        }
        Ok(removed)
    }

    /// Segments deleted since start.
    pub fn removed(&self) -> u64 {
        self.lock().removed
    }
}

impl ValueStore for PaperValues {
    fn put(&self, value: &[u8]) -> Result<ValuePtr, ValueError> {
        let mut inner = self.lock();
        let full = inner
            .current
            .as_ref()
            .is_none_or(|c| c.len >= SEGMENT_BYTES);
        if full {
            self.start_segment(&mut inner)?;
        }
        let mut buf = std::mem::take(&mut inner.buf);
        buf.clear();
        let crc = encode_record(value, &mut buf)?;
        let Some(current) = inner.current.as_mut() else {
            return Err(ValueError::Io {
                file: self.dir.display().to_string(),
                offset: 0,
                message: "no value segment open".into(),
            });
        };
        let (n, offset) = (current.n, current.len);
        let result = current.file.write_all_at(&buf, offset);
        if let Err(e) = result {
            // The segment may hold part of the record: later values go to a new one.
            inner.current = None;
            return Err(io_err(&segment_name(n), offset, &e));
        }
        current.len += buf.len() as u64;
        let len = current.len;
        if let Some(seg) = inner.segs.get_mut(&n) {
            seg.len = len;
        }
        inner.unsynced.insert(n);
        inner.buf = buf;
        Ok(ValuePtr {
            segment: n,
            offset,
            len: value.len() as u32,
            crc,
        })
    }

    fn get(&self, ptr: ValuePtr) -> Result<Bytes, ValueError> {
        let file = self.reader(ptr.segment)?;
        let name = || segment_name(ptr.segment);
        let mut buf = vec![0u8; VALUE_RECORD_HEADER_LEN as usize + ptr.len as usize];
        file.read_exact_at(&mut buf, ptr.offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                ValueError::Truncated {
                    file: name(),
                    offset: ptr.offset,
                }
            } else {
                io_err(&name(), ptr.offset, &e)
            }
        })?;
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let value = &buf[VALUE_RECORD_HEADER_LEN as usize..];
        if len != ptr.len || crc != ptr.crc || crc32c::crc32c(value) != ptr.crc {
            return Err(ValueError::Checksum {
                file: name(),
                offset: ptr.offset,
            });
        }
        let mut bytes = Bytes::from(buf);
        Ok(bytes.split_off(VALUE_RECORD_HEADER_LEN as usize))
    }

    fn sync(&self) -> Result<(), ValueError> {
        let (segments, dir) = {
            let mut inner = self.lock();
            (
                std::mem::take(&mut inner.unsynced),
                std::mem::take(&mut inner.dir_unsynced),
            )
        };
        // A handle of its own per segment, so appends and reads go on during the fdatasync.
        let synced = segments.iter().try_for_each(|&n| {
            let name = segment_name(n);
            self.fs
                .open_write(&self.dir.join(&name))
                .and_then(|mut f| f.sync_data())
                .map_err(|e| io_err(&name, 0, &e))
        });
        let synced = synced.and_then(|()| {
            if dir {
                self.fs
                    .sync_dir(&self.dir)
                    .map_err(|e| io_err(&self.dir.display().to_string(), 0, &e))
            } else {
                Ok(())
            }
        });
        if synced.is_err() {
            // Kept for the next sync to try again: a failed sync is never forgotten.
            let mut inner = self.lock();
            inner.unsynced.extend(segments);
            inner.dir_unsynced |= dir;
        }
        synced
    }

    fn stats(&self) -> ValueStoreStats {
        let inner = self.lock();
        ValueStoreStats {
            segments: inner.segs.len() as u64,
            bytes: inner.segs.values().map(|s| s.len).sum(),
        }
    }

    fn segments(&self) -> Vec<SegmentInfo> {
        let inner = self.lock();
        let current = inner.current.as_ref().map(|c| c.n);
        inner
            .segs
            .iter()
            .map(|(&n, s)| SegmentInfo {
                segment: n,
                bytes: s.len.saturating_sub(VALUES_HEADER_LEN),
                current: Some(n) == current,
                retired: s.retired,
            })
            .collect()
    }

    fn retire(&self, segment: u32) {
        let mut inner = self.lock();
        if inner.current.as_ref().is_some_and(|c| c.n == segment) {
            return;
        }
        if let Some(s) = inner.segs.get_mut(&segment) {
            s.retired = true;
        }
    }

    fn roll(&self) {
        self.lock().current = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test: a failed unwrap is a failed test

    use super::*;

    #[test]
    fn values_read_back_across_restarts_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let values = PaperValues::open(dir.path()).unwrap();
        let a = values.put(b"first value").unwrap();
        let b = values.put(&[9u8; 10_000]).unwrap();
        assert_eq!((a.segment, a.offset), (0, VALUES_HEADER_LEN));
        assert_eq!(b.offset, VALUES_HEADER_LEN + 8 + 11);
        values.sync().unwrap();
        assert_eq!(values.get(a).unwrap(), &b"first value"[..]);
        drop(values);
        // A new run appends to a new segment and still reads the old one.
        let values = PaperValues::open(dir.path()).unwrap();
        let c = values.put(b"second run").unwrap();
        assert_eq!(c.segment, 1);
        assert_eq!(values.get(b).unwrap(), &[9u8; 10_000][..]);
        assert_eq!(values.get(c).unwrap(), &b"second run"[..]);
        let path = dir.path().join(segment_name(0));
        let mut bytes = std::fs::read(&path).unwrap();
        let check = check_segment("values-0000000000", &bytes).unwrap();
        assert_eq!((check.values, check.value_bytes), (2, 10_011));
        bytes[(b.offset + 8 + 5000) as usize] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let values = PaperValues::open(dir.path()).unwrap();
        let err = values.get(b).unwrap_err();
        assert_eq!(
            err,
            ValueError::Checksum {
                file: "values-0000000000".into(),
                offset: b.offset
            }
        );
        assert_eq!(
            err.to_string(),
            "values-0000000000 at offset 35: checksum mismatch (value damaged)"
        );
        assert!(check_segment("values-0000000000", &bytes).is_err());
        let past = ValuePtr {
            offset: 1 << 20,
            ..a
        };
        assert!(matches!(
            values.get(past),
            Err(ValueError::Truncated { .. })
        ));
        assert_eq!(parse_segment_name("values-0000000007"), Some(7));
        assert_eq!(parse_segment_name("values-7"), None);
    }
}
