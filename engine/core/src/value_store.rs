//! What the store asks of a home for values that do not fit in memory (issue 15): the
//! [`ValueStore`] trait, the [`ValuePtr`] a spilled entry keeps instead of its bytes, and the
//! typed [`ValueError`]. The core does no I/O itself: the paper backend implements the trait
//! over append-only value segments (`backends/src/paper/values.rs`) and the server hands it to
//! the store in its settings, as it hands the [`crate::store::host::Host`]; tests use
//! [`MemValueStore`].
//!
//! Durability: a value put here needs no sync of its own, since the log still holds the full
//! value until the next checkpoint; a checkpoint that writes pointers calls
//! [`ValueStore::sync`] first, so every pointer it holds names bytes on stable storage.
//!
//! Compaction (`store/spill.rs`): the store reads the segments' sizes ([`ValueStore::segments`]),
//! compares them with the live bytes its key space points to, copies the live values of a
//! mostly stale segment to the current one, and [`ValueStore::retire`]s a segment once nothing
//! in its state points there. Retiring deletes nothing: the paper backend's checkpoint job
//! deletes a retired segment after a checkpoint that does not reference it is durable.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Where a spilled value lives: segment number, the byte offset of its record in that
/// segment, the value's length and its CRC32C. 20 bytes in a packed entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValuePtr {
    pub segment: u32,
    pub offset: u64,
    pub len: u32,
    pub crc: u32,
}

impl ValuePtr {
    /// Bytes of a pointer in an entry or a checkpoint.
    pub const ENCODED_LEN: usize = 20;

    /// segment, offset, length, crc; little endian.
    pub fn encode(&self) -> [u8; Self::ENCODED_LEN] {
        let mut out = [0u8; Self::ENCODED_LEN];
        out[0..4].copy_from_slice(&self.segment.to_le_bytes());
        out[4..12].copy_from_slice(&self.offset.to_le_bytes());
        out[12..16].copy_from_slice(&self.len.to_le_bytes());
        out[16..20].copy_from_slice(&self.crc.to_le_bytes());
        out
    }

    /// The pointer [`ValuePtr::encode`] wrote, if `b` holds at least its 20 bytes.
    pub fn decode(b: &[u8]) -> Option<ValuePtr> {
        let u32_at = |i: usize| b.get(i..i + 4)?.try_into().ok().map(u32::from_le_bytes);
        let offset = b.get(4..12)?.try_into().ok().map(u64::from_le_bytes)?;
        Some(ValuePtr {
            segment: u32_at(0)?,
            offset,
            len: u32_at(12)?,
            crc: u32_at(16)?,
        })
    }
}

/// Why a value could not be stored or read back; every variant names the file and offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{file} at offset {offset}: {message}")]
    Io {
        file: String,
        offset: u64,
        message: String,
    },
    /// The bytes read do not match the pointer's checksum or length: never served.
    #[error("{file} at offset {offset}: checksum mismatch (value damaged)")]
    Checksum { file: String, offset: u64 },
    /// The segment ends before the value does.
    #[error("{file} at offset {offset}: the segment ends inside the value")]
    Truncated { file: String, offset: u64 },
    /// A value larger than a segment record can hold (4 GiB).
    #[error("a value of {len} bytes is too large for a value segment")]
    TooLarge { len: u64 },
}

/// Figures of a value store, for INFO.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValueStoreStats {
    pub segments: u64,
    /// Bytes in every segment (headers and records).
    pub bytes: u64,
}

/// One segment of a value store (compaction's figures, INFO, `moodb snapshot inspect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub segment: u32,
    /// Bytes of records in it (its size less the header): live and stale values together.
    pub bytes: u64,
    /// New values go here: never compacted or retired.
    pub current: bool,
    /// Nothing in the store's state points here any more; it goes after the next checkpoint.
    pub retired: bool,
}

/// A home for spilled values; see the module documentation. Shared between the store (put,
/// get) and a checkpoint job on another thread (sync), hence `&self` and `Send + Sync`.
pub trait ValueStore: Send + Sync + Debug {
    /// Appends `value` and says where it is. Not synced (see the module documentation).
    fn put(&self, value: &[u8]) -> Result<ValuePtr, ValueError>;
    /// The value `ptr` names, read with one positioned read and checked against its CRC32C.
    fn get(&self, ptr: ValuePtr) -> Result<Bytes, ValueError>;
    /// Makes every value put so far durable (a checkpoint calls it before it writes pointers).
    fn sync(&self) -> Result<(), ValueError>;
    fn stats(&self) -> ValueStoreStats;
    /// Every segment, in number order.
    fn segments(&self) -> Vec<SegmentInfo>;
    /// Says that the store's state no longer points into `segment` and never will again (it is
    /// not current, and only the current segment takes values).
    fn retire(&self, segment: u32);
    /// Ends the current segment: the next put starts a new one (so a current segment that went
    /// mostly stale can be compacted).
    fn roll(&self);
}

/// A shared [`ValueStore`].
pub type SharedValueStore = Arc<dyn ValueStore>;

/// A value store in memory, for tests and tools: deterministic, one "segment" per 1 MiB of
/// records (an 8-byte header and the value, as in a segment file), a CRC32C-free checksum (the length and an FNV-1a hash) that still catches damage;
/// [`MemValueStore::damage`] flips a byte of a stored value.
#[derive(Debug, Default)]
pub struct MemValueStore {
    values: Mutex<Vec<u8>>,
    /// Retired segments (their bytes stay: this store never frees).
    retired: Mutex<std::collections::BTreeSet<u32>>,
}

impl MemValueStore {
    pub fn shared() -> Arc<MemValueStore> {
        Arc::new(MemValueStore::default())
    }

    /// Flips the first byte of the value `ptr` names.
    pub fn damage(&self, ptr: ValuePtr) {
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let at = (u64::from(ptr.segment) << 20) + ptr.offset + 8;
        if let Some(b) = values.get_mut(at as usize) {
            *b ^= 0xff;
        }
    }

    fn file(segment: u32) -> String {
        format!("mem-values-{segment}")
    }
}

/// FNV-1a over `bytes`, folded to 32 bits.
fn fnv(bytes: &[u8]) -> u32 {
    let h = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h ^ (h >> 32)) as u32
}

impl ValueStore for MemValueStore {
    fn put(&self, value: &[u8]) -> Result<ValuePtr, ValueError> {
        let len = u32::try_from(value.len()).map_err(|_| ValueError::TooLarge {
            len: value.len() as u64,
        })?;
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let at = values.len() as u64;
        let crc = fnv(value);
        // A record as a segment holds one: length, checksum, bytes.
        values.extend_from_slice(&len.to_le_bytes());
        values.extend_from_slice(&crc.to_le_bytes());
        values.extend_from_slice(value);
        Ok(ValuePtr {
            segment: (at >> 20) as u32,
            offset: at & ((1 << 20) - 1),
            len,
            crc,
        })
    }

    fn get(&self, ptr: ValuePtr) -> Result<Bytes, ValueError> {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let at = ((u64::from(ptr.segment) << 20) + ptr.offset) as usize + 8;
        let bytes = values
            .get(at..at + ptr.len as usize)
            .ok_or_else(|| ValueError::Truncated {
                file: Self::file(ptr.segment),
                offset: ptr.offset,
            })?;
        if fnv(bytes) != ptr.crc {
            return Err(ValueError::Checksum {
                file: Self::file(ptr.segment),
                offset: ptr.offset,
            });
        }
        Ok(Bytes::copy_from_slice(bytes))
    }

    fn sync(&self) -> Result<(), ValueError> {
        Ok(())
    }

    fn stats(&self) -> ValueStoreStats {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        ValueStoreStats {
            segments: (values.len() as u64).div_ceil(1 << 20),
            bytes: values.len() as u64,
        }
    }

    fn segments(&self) -> Vec<SegmentInfo> {
        let len = self.values.lock().unwrap_or_else(|e| e.into_inner()).len() as u64;
        let retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        let count = len.div_ceil(1 << 20);
        (0..count)
            .map(|n| SegmentInfo {
                segment: n as u32,
                bytes: (len - (n << 20)).min(1 << 20),
                current: n + 1 == count,
                retired: retired.contains(&(n as u32)),
            })
            .collect()
    }

    fn retire(&self, segment: u32) {
        self.retired
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(segment);
    }

    fn roll(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_round_trip_and_damage_is_refused() {
        let store = MemValueStore::default();
        let a = store.put(b"hello").expect("put");
        let b = store.put(&[7u8; 3000]).expect("put");
        assert_eq!(ValuePtr::decode(&b.encode()), Some(b));
        assert_eq!(ValuePtr::decode(&b.encode()[..19]), None);
        assert_eq!(store.get(a).expect("get"), &b"hello"[..]);
        assert_eq!(store.get(b).expect("get"), &[7u8; 3000][..]);
        store.damage(a);
        assert_eq!(
            store.get(a),
            Err(ValueError::Checksum {
                file: "mem-values-0".into(),
                offset: 0
            })
        );
        assert_eq!(
            store.stats(),
            ValueStoreStats {
                segments: 1,
                bytes: 3021
            }
        );
    }
}
