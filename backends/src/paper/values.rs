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
//! never written after, and segments roll at [`SEGMENT_BYTES`]. Segments are never deleted
//! yet: compaction of stale bytes (values replaced, deleted or read back) is still to come.
//! Plain `std::fs` (positioned reads are not in the `Fs` trait): the backend opens value
//! segments only on real files.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use moodb_core::value_store::{ValueError, ValuePtr, ValueStore, ValueStoreStats};

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
    file: Arc<File>,
    len: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Open handles of the segments read from (and the current one).
    files: HashMap<u32, Arc<File>>,
    current: Option<Current>,
    next: u32,
    /// Segments written since the last sync.
    unsynced: Vec<Arc<File>>,
    dir_unsynced: bool,
    stats: ValueStoreStats,
    buf: Vec<u8>,
}

/// The paper backend's value store over the segments of a data directory; see the module
/// documentation.
#[derive(Debug)]
pub struct PaperValues {
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
    /// The value segments of `dir` (which exists): new values go to a new segment.
    pub fn open(dir: &Path) -> Result<PaperValues, ValueError> {
        let list = std::fs::read_dir(dir).map_err(|e| io_err(&dir.display().to_string(), 0, &e))?;
        let mut inner = Inner::default();
        for entry in list {
            let entry = entry.map_err(|e| io_err(&dir.display().to_string(), 0, &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(n) = parse_segment_name(&name) {
                inner.next = inner.next.max(n + 1);
                inner.stats.segments += 1;
                inner.stats.bytes += entry.metadata().map_or(0, |m| m.len());
            }
        }
        Ok(PaperValues {
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
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.dir.join(&name))
            .map_err(|e| io_err(&name, 0, &e))?;
        file.write_all_at(&encode_header(), 0)
            .map_err(|e| io_err(&name, 0, &e))?;
        let file = Arc::new(file);
        inner.next = n + 1;
        inner.files.insert(n, file.clone());
        inner.unsynced.push(file.clone());
        inner.dir_unsynced = true;
        inner.stats.segments += 1;
        inner.stats.bytes += VALUES_HEADER_LEN;
        inner.current = Some(Current {
            n,
            file,
            len: VALUES_HEADER_LEN,
        });
        Ok(())
    }

    /// The handle of segment `n`, opened for reading when first needed.
    fn file(&self, n: u32) -> Result<Arc<File>, ValueError> {
        let mut inner = self.lock();
        if let Some(f) = inner.files.get(&n) {
            return Ok(f.clone());
        }
        let name = segment_name(n);
        let file = Arc::new(File::open(self.dir.join(&name)).map_err(|e| io_err(&name, 0, &e))?);
        inner.files.insert(n, file.clone());
        Ok(file)
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
        let file = current.file.clone();
        inner.stats.bytes += buf.len() as u64;
        if !inner.unsynced.iter().any(|f| Arc::ptr_eq(f, &file)) {
            inner.unsynced.push(file);
        }
        inner.buf = buf;
        Ok(ValuePtr {
            segment: n,
            offset,
            len: value.len() as u32,
            crc,
        })
    }

    fn get(&self, ptr: ValuePtr) -> Result<Bytes, ValueError> {
        let file = self.file(ptr.segment)?;
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
        let (files, dir) = {
            let mut inner = self.lock();
            (
                std::mem::take(&mut inner.unsynced),
                std::mem::take(&mut inner.dir_unsynced),
            )
        };
        for f in &files {
            if let Err(e) = f.sync_data() {
                // Kept for the next sync to try again: a failed sync is never forgotten.
                let mut inner = self.lock();
                inner.unsynced.extend(files.iter().cloned());
                inner.dir_unsynced |= dir;
                return Err(io_err(&self.dir.display().to_string(), 0, &e));
            }
        }
        if dir {
            let synced = File::open(&self.dir).and_then(|d| d.sync_all());
            if let Err(e) = synced {
                self.lock().dir_unsynced = true;
                return Err(io_err(&self.dir.display().to_string(), 0, &e));
            }
        }
        Ok(())
    }

    fn stats(&self) -> ValueStoreStats {
        self.lock().stats
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
