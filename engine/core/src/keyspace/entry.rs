//! The packed entry: one reference-counted allocation holding a key, its value and its expiry.
//!
//! An [`Entry`] is a thin pointer (8 bytes) to a [`ThinBytes`]: a 4-byte count and a 4-byte
//! length, then the slice laid out as
//!
//! | bytes | field |
//! |---|---|
//! | 1 | tag: bit 0 = an expiry follows; bits 1–2 = where the value lives (0 = inline, 1 = on disk) |
//! | 1–5 | key length, LEB128 |
//! | 0 or 8 | expiry, Unix ms, little endian (when bit 0 is set) |
//! | key length | key bytes |
//! | the rest | the value: its bytes when inline; a 20-byte [`ValuePtr`] when on disk |
//!
//! A 16-byte key with a 100-byte value is one 126-byte allocation (mimalloc's 128-byte class),
//! against 32 + 112 + 96 bytes in three allocations before. A value kept on disk (issue 15,
//! kind 1) holds (segment, offset, length, crc) in the place of the bytes: a spilled key costs
//! its key + 22–36 bytes of entry + the malloc chunk and table share, whatever the value's size.
//! Everything here is safe code: the slice is built in one copy and read by offsets (the one
//! unsafe part, the allocation, is `thin_bytes.rs`).

use super::thin_bytes::ThinBytes;
use crate::value_store::ValuePtr;

/// Tag bit: an 8-byte expiry follows the key length.
const HAS_EXPIRY: u8 = 1;
/// Tag bits 1–2: where the value lives. Only inline values exist today.
const KIND_SHIFT: u8 = 1;
const KIND_MASK: u8 = 0b11 << KIND_SHIFT;
const KIND_INLINE: u8 = 0;
const KIND_ON_DISK: u8 = 1;

/// Where an entry's value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    /// The value's bytes, inside the entry.
    Inline(&'a [u8]),
    /// The value is in a value segment; the entry holds where.
    OnDisk(ValuePtr),
}

/// One key with its value and expiry in a single shared allocation. Cloning it bumps a count;
/// the bytes never change after it is built (a write replaces the entry).
#[derive(Clone)]
pub struct Entry(ThinBytes);

/// The decoded prefix of an entry's slice.
struct Layout {
    expires_at_ms: Option<u64>,
    key_start: usize,
    key_end: usize,
    kind: u8,
}

impl Entry {
    /// An entry holding copies of `key` and `value`.
    pub fn new(key: &[u8], value: &[u8], expires_at_ms: Option<u64>) -> Entry {
        Self::build(KIND_INLINE, key, value, expires_at_ms)
    }

    /// An entry holding a copy of `key` and the pointer to its value on disk.
    pub fn spilled(key: &[u8], ptr: ValuePtr, expires_at_ms: Option<u64>) -> Entry {
        Self::build(KIND_ON_DISK, key, &ptr.encode(), expires_at_ms)
    }

    fn build(kind: u8, key: &[u8], value: &[u8], expires_at_ms: Option<u64>) -> Entry {
        let mut prefix = [0u8; 1 + 5 + 8];
        prefix[0] = kind << KIND_SHIFT;
        let mut n = 1;
        let mut len = key.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                prefix[n] = byte;
                n += 1;
                break;
            }
            prefix[n] = byte | 0x80;
            n += 1;
        }
        if let Some(at) = expires_at_ms {
            prefix[0] |= HAS_EXPIRY;
            prefix[n..n + 8].copy_from_slice(&at.to_le_bytes());
            n += 8;
        }
        Entry(ThinBytes::from_parts(&[&prefix[..n], key, value]))
    }

    fn bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    fn layout(&self) -> Layout {
        let b = self.bytes();
        let tag = b[0];
        // Keys under 128 bytes (nearly all) have a one-byte length.
        let (len, mut i) = if b[1] & 0x80 == 0 {
            (usize::from(b[1]), 2)
        } else {
            let mut len = 0usize;
            let mut shift = 0;
            let mut i = 1;
            loop {
                let byte = b[i];
                i += 1;
                len |= usize::from(byte & 0x7f) << shift;
                if byte & 0x80 == 0 {
                    break (len, i);
                }
                shift += 7;
            }
        };
        let expires_at_ms = if tag & HAS_EXPIRY != 0 {
            let at = b
                .get(i..i + 8)
                .and_then(|s| <[u8; 8]>::try_from(s).ok())
                .map(u64::from_le_bytes);
            i += 8;
            at
        } else {
            None
        };
        Layout {
            expires_at_ms,
            key_start: i,
            key_end: i + len,
            kind: (tag & KIND_MASK) >> KIND_SHIFT,
        }
    }

    pub fn key(&self) -> &[u8] {
        let b = self.bytes();
        // The hash table compares keys on every probe: a key under 128 bytes (one length
        // byte) is found without decoding the rest of the layout.
        if b[1] & 0x80 == 0 {
            let start = if b[0] & HAS_EXPIRY != 0 { 10 } else { 2 };
            return &b[start..start + usize::from(b[1])];
        }
        let l = self.layout();
        &b[l.key_start..l.key_end]
    }

    /// Where the value lives (the tag's kind bits), without decoding the layout.
    fn kind(&self) -> u8 {
        (self.bytes()[0] & KIND_MASK) >> KIND_SHIFT
    }

    /// The key, where the value lives, and the expiry, decoded once.
    pub fn parts(&self) -> (&[u8], Stored<'_>, Option<u64>) {
        let l = self.layout();
        let b = self.bytes();
        let rest = &b[l.key_end..];
        let stored = match (l.kind, ValuePtr::decode(rest)) {
            (KIND_ON_DISK, Some(ptr)) => Stored::OnDisk(ptr),
            _ => Stored::Inline(rest),
        };
        (&b[l.key_start..l.key_end], stored, l.expires_at_ms)
    }

    /// The value's bytes when it is inline; empty when it is on disk.
    pub fn inline_value(&self) -> &[u8] {
        match self.parts().1 {
            Stored::Inline(bytes) => bytes,
            Stored::OnDisk(_) => &[],
        }
    }

    /// Where the value lives, when it is on disk.
    pub fn spilled_ptr(&self) -> Option<ValuePtr> {
        if self.kind() != KIND_ON_DISK {
            return None;
        }
        match self.parts().1 {
            Stored::OnDisk(ptr) => Some(ptr),
            Stored::Inline(_) => None,
        }
    }

    /// Bytes of the entry's slice (what the allocation holds besides its 8-byte header).
    pub fn heap_len(&self) -> usize {
        self.bytes().len()
    }

    pub fn expires_at_ms(&self) -> Option<u64> {
        if self.bytes()[0] & HAS_EXPIRY == 0 {
            return None;
        }
        self.layout().expires_at_ms
    }

    /// Starts loading the entry into the cache ([`ThinBytes::prefetch`]).
    #[inline]
    pub fn prefetch(&self) {
        self.0.prefetch()
    }

    /// Whether both handles point at the same allocation.
    #[cfg(test)]
    pub fn ptr_eq(&self, other: &Entry) -> bool {
        self.0.ptr_eq(&other.0)
    }
}

/// An entry seen as its value's bytes: the owner behind a `Bytes` handed to a reply, so a GET
/// neither copies the value nor allocates more than the `Bytes` header.
pub struct ValueOwner(pub Entry);

impl AsRef<[u8]> for ValueOwner {
    fn as_ref(&self) -> &[u8] {
        self.0.inline_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reads_back_across_length_boundaries() {
        for key_len in [0usize, 1, 127, 128, 200, 16_383, 16_384, 70_000] {
            for value_len in [0usize, 1, 100, 256, 5000] {
                for at in [None, Some(0), Some(u64::MAX), Some(1_700_000_000_000)] {
                    let key: Vec<u8> = (0..key_len).map(|i| i as u8).collect();
                    let value: Vec<u8> = (0..value_len).map(|i| (i * 7) as u8).collect();
                    let e = Entry::new(&key, &value, at);
                    assert_eq!(e.key(), &key[..]);
                    assert_eq!(e.inline_value(), &value[..]);
                    assert_eq!(e.expires_at_ms(), at);
                    assert_eq!(e.parts(), (&key[..], Stored::Inline(&value[..]), at));
                    let copy = e.clone();
                    assert!(copy.ptr_eq(&e));
                    assert!(!Entry::new(&key, &value, at).ptr_eq(&e));
                }
            }
        }
    }

    #[test]
    fn a_spilled_entry_keeps_key_expiry_and_pointer() {
        let ptr = ValuePtr {
            segment: 3,
            offset: 1 << 40,
            len: 70_000,
            crc: 0xdead_beef,
        };
        for at in [None, Some(42)] {
            let e = Entry::spilled(b"some key", ptr, at);
            assert_eq!(e.parts(), (&b"some key"[..], Stored::OnDisk(ptr), at));
            assert_eq!((e.spilled_ptr(), e.inline_value()), (Some(ptr), &[][..]));
            assert_eq!(
                e.heap_len(),
                1 + 1 + 8 + if at.is_some() { 8 } else { 0 } + 20
            );
        }
        assert_eq!(Entry::new(b"k", b"v", None).spilled_ptr(), None);
    }

    #[test]
    fn a_small_entry_is_one_allocation_of_its_bytes_plus_eight() {
        let e = Entry::new(&[b'k'; 16], &[b'v'; 100], None);
        assert_eq!(e.bytes().len(), 1 + 1 + 16 + 100);
        assert_eq!(std::mem::size_of::<Entry>(), 8);
        assert_eq!(std::mem::size_of::<Option<Entry>>(), 8);
    }

    #[test]
    fn a_value_owner_lends_the_value_bytes() {
        let e = Entry::new(b"key", b"value", Some(9));
        let bytes = bytes::Bytes::from_owner(ValueOwner(e.clone()));
        assert_eq!(&bytes[..], b"value");
        drop(e);
        assert_eq!(&bytes[..], b"value");
    }
}
