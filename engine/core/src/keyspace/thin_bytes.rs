//! [`ThinBytes`]: an immutable, reference-counted byte slice behind one 8-byte pointer, with
//! an 8-byte header (a 4-byte count and a 4-byte length) in front of the bytes: the storage of
//! a packed entry (`entry.rs`).
//!
//! **Decision — an own allocation instead of `triomphe::ThinArc`.** `ThinArc<(), u8>` puts 16
//! bytes in front of the slice (a `usize` count and a `usize` length). With size classes of
//! 16 bytes and more around 128 (mimalloc, jemalloc: 128, 160, ...), a 16-byte key with a
//! 100-byte value (118 bytes of slice) needs 134 bytes and lands in the 160-byte class; with 8
//! bytes of header it needs 126 and fits the 128-byte one: 32 bytes less per key
//! (bench/results-2026-12-01.md, fourth session). A slice of 4 GiB or more (a value grown by
//! APPEND past a raised `proto-max-bulk-len`) keeps `u32::MAX` in the length field and its
//! length in the 8 bytes after the header.
//!
//! The count follows `std::sync::Arc`'s orderings (a relaxed increment, a release decrement,
//! an acquire fence before the free); a count past `i32::MAX` aborts, as `Arc` does. This
//! (with [`ThinBytes::prefetch`], a cache hint) is the only unsafe code of the key space; the
//! tests below run every length boundary, and clones dropped on other threads.

#![allow(unsafe_code)] // the one allocation of the key space and its prefetch; see the module doc

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU32, Ordering};

#[repr(C)]
struct Header {
    count: AtomicU32,
    /// The slice's length, or [`LONG`]: the length is the `u64` after the header.
    len: u32,
}

const HEADER: usize = std::mem::size_of::<Header>();
const LONG: u32 = u32::MAX;
const ALIGN: usize = 8;
const MAX_COUNT: u32 = i32::MAX as u32;

/// One shared, immutable byte slice; cloning bumps the count, the last drop frees it.
pub struct ThinBytes {
    ptr: NonNull<Header>,
}

// SAFETY: the bytes are never written after `from_parts` returns, and the count is atomic, so
// handles may move to and be used from any thread (as `Arc<[u8]>`).
unsafe impl Send for ThinBytes {}
// SAFETY: as above: shared access only reads.
unsafe impl Sync for ThinBytes {}

/// Where the bytes start and how big the allocation is, for a slice of `len` bytes.
fn shape(len: usize) -> (usize, Layout) {
    let data_at = if len >= LONG as usize {
        HEADER + 8
    } else {
        HEADER
    };
    let size = data_at
        .checked_add(len)
        .expect("a slice shorter than isize::MAX");
    let layout = Layout::from_size_align(size, ALIGN).expect("a slice shorter than isize::MAX");
    (data_at, layout)
}

impl ThinBytes {
    /// The concatenation of `parts`, in one allocation.
    pub fn from_parts(parts: &[&[u8]]) -> ThinBytes {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let (data_at, layout) = shape(len);
        // SAFETY: `layout` has a non-zero size (at least the header).
        let raw = unsafe { alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<Header>()) else {
            handle_alloc_error(layout)
        };
        // SAFETY: `raw` is valid for `layout.size()` bytes, aligned to 8: the header at 0, the
        // long length (when there is one) at 8, then exactly `len` bytes copied from `parts`,
        // which cannot overlap a fresh allocation.
        unsafe {
            let short = u32::try_from(len).ok().filter(|&l| l != LONG);
            ptr.as_ptr().write(Header {
                count: AtomicU32::new(1),
                len: short.unwrap_or(LONG),
            });
            if short.is_none() {
                raw.add(HEADER).cast::<u64>().write(len as u64);
            }
            let mut at = raw.add(data_at);
            for part in parts {
                std::ptr::copy_nonoverlapping(part.as_ptr(), at, part.len());
                at = at.add(part.len());
            }
        }
        ThinBytes { ptr }
    }

    fn header(&self) -> &Header {
        // SAFETY: the header lives as long as any handle.
        unsafe { self.ptr.as_ref() }
    }

    fn len(&self) -> usize {
        match self.header().len {
            LONG => {
                // SAFETY: a long slice's allocation has its length at offset 8, written at build.
                let len = unsafe {
                    self.ptr
                        .as_ptr()
                        .cast::<u8>()
                        .add(HEADER)
                        .cast::<u64>()
                        .read()
                };
                len as usize
            }
            len => len as usize,
        }
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        let len = self.len();
        let (data_at, _) = shape(len);
        // SAFETY: `len` initialised bytes start at `data_at` and live as long as `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>().add(data_at), len) }
    }

    /// Asks the CPU to start loading the allocation's first two cache lines (the count, the
    /// length and the first 120 bytes), for a walk that reads many handles in turn: they lie
    /// apart in memory, and each read would wait for its own miss. A hint only: a prefetch
    /// reads no value into the program and cannot fault.
    #[inline]
    pub fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            let at = self.ptr.as_ptr().cast::<i8>();
            // SAFETY: prefetching dereferences nothing, and faults on no address (the second
            // line may lie past a short allocation: `wrapping_add` makes no claim on it); SSE
            // is part of every x86_64 CPU.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(at);
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(64));
            }
        }
    }

    /// Whether both handles share one allocation.
    #[cfg(test)]
    pub fn ptr_eq(&self, other: &ThinBytes) -> bool {
        self.ptr == other.ptr
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> ThinBytes {
        // Relaxed, as `Arc::clone`: a new handle is made from one the caller already holds.
        if self.header().count.fetch_add(1, Ordering::Relaxed) > MAX_COUNT {
            std::process::abort();
        }
        ThinBytes { ptr: self.ptr }
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        if self.header().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other handle's uses happen before this free (`Arc::drop`'s reasoning).
        fence(Ordering::Acquire);
        let (_, layout) = shape(self.len());
        // SAFETY: this was the last handle; the allocation was made with this very layout.
        unsafe { dealloc(self.ptr.as_ptr().cast::<u8>(), layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_read_back_whole_across_lengths() {
        for len in [0usize, 1, 7, 8, 118, 4096, 100_000] {
            let a: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let b = b"tail";
            let t = ThinBytes::from_parts(&[&a, &[], b]);
            assert_eq!(&t.as_slice()[..len], &a[..]);
            assert_eq!(&t.as_slice()[len..], b);
            let c = t.clone();
            assert!(c.ptr_eq(&t));
            drop(t);
            assert_eq!(c.as_slice().len(), len + 4);
        }
    }

    #[test]
    fn the_header_is_eight_bytes_and_the_handle_one_pointer() {
        assert_eq!(HEADER, 8);
        assert_eq!(std::mem::size_of::<ThinBytes>(), 8);
        assert_eq!(std::mem::size_of::<Option<ThinBytes>>(), 8);
        assert_eq!(shape(118).1.size(), 126);
        assert_eq!(shape(LONG as usize).0, 16);
    }

    #[test]
    fn clones_dropped_on_other_threads_free_once() {
        let t = ThinBytes::from_parts(&[b"shared by threads"]);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = t.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let d = c.clone();
                        assert_eq!(d.as_slice(), b"shared by threads");
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("a reader thread");
        }
        assert_eq!(t.header().count.load(Ordering::Relaxed), 1);
    }
}
