//! The segmented hash table behind a key space: extendible hashing over small open-addressing
//! tables, copy-on-write by segment so a snapshot is a pointer copy.
//!
//! A key's 64-bit hash (foldhash, seeded per process from address-space randomization; as with
//! `imbl`'s `RandomState` before, iteration order differs between runs, the state never) picks
//! a segment from its bits 56 down (the directory's top `depth` bits of `hash << 7`), and the
//! segment, a `hashbrown::HashTable` of 8-byte [`Entry`] pointers, probes with the low bits and
//! the top 7 (its control bytes): a lookup is one hash and one short probe. A segment holds at
//! most [`SEGMENT_MAX`] entries; a full one splits in two by its next hash bit (extendible
//! hashing, as in Dragonfly's dashtable), doubling the directory when it is as deep as the
//! segment. No write rehashes or copies more than one segment.
//!
//! Snapshots: the directory and every segment sit behind `Arc`s. A clone copies one pointer;
//! the next write copies the directory (4 bytes per slot, a pointer per segment), and the first write into a segment
//! still shared with a snapshot copies that segment alone (its control bytes and pointers, and
//! a count bump per entry), like Dragonfly's per-bucket versions. Segments never merge back:
//! deleting keys leaves their segments in place, as Redis leaves a dict at its size until a
//! resize cycle.

use std::sync::Arc;

use hashbrown::hash_table::Entry as Slot;
use hashbrown::HashTable;

use super::entry::Entry;

/// Buckets per full-size segment; a segment splits when it reaches [`SEGMENT_MAX`] entries,
/// `hashbrown`'s capacity for this many buckets (7/8), so a segment never grows in place
/// past it. 1,024 buckets: the first write into a segment shared with a snapshot copies it
/// (measured: the 99.9th percentile of writes while a snapshot is held, 8–13 µs on a quiet
/// machine, up to ~56 µs on a loaded one), and 1M keys
/// take ~1,500 segments (a 2,048-slot directory).
const SEGMENT_BUCKETS: usize = 1024;
pub const SEGMENT_MAX: usize = SEGMENT_BUCKETS / 8 * 7;

/// The deepest a segment splits: 2^24 directory slots (64 MiB), room for billions of keys.
/// Keys whose hashes agree on all 24 segment bits (only with a broken or attacked hash) stay in
/// one segment that grows past [`SEGMENT_MAX`] like any `hashbrown` table: slower, never an
/// endless split or a directory that eats memory.
const MAX_DEPTH: u32 = 24;

#[derive(Default)]
struct Segment {
    /// How many leading hash bits all of this segment's keys share.
    depth: u32,
    map: HashTable<Entry>,
}

impl Segment {
    /// Starts loading every entry into the cache, before a walk that touches each: the walk
    /// then meets them in the cache instead of waiting for one miss after another (at most
    /// `SEGMENT_MAX` entries of two cache lines: 115 KB, within the L2 cache).
    fn prefetch_entries(&self) {
        self.map.iter().for_each(Entry::prefetch);
    }
}

impl Clone for Segment {
    /// The copy a write makes of a segment a snapshot shares. Each entry's count is bumped
    /// by a locked instruction, which waits for that entry's cache miss before the next may
    /// start: the entries are fetched together first.
    fn clone(&self) -> Segment {
        self.prefetch_entries();
        Segment {
            depth: self.depth,
            map: self.map.clone(),
        }
    }
}

/// The segments, and `2^depth` directory slots naming them (a segment of depth `d` fills
/// `2^(depth - d)` consecutive slots). Slots hold indexes, not pointers, so a segment's
/// reference count says whether a snapshot shares it, not how many slots name it.
#[derive(Clone)]
struct Directory {
    slots: Vec<u32>,
    segments: Vec<Arc<Segment>>,
}

/// One segment of a table taken apart by [`Table::into_segments`], held until dropped.
pub struct SegmentEntries(Arc<Segment>);

impl SegmentEntries {
    /// The segment's entries.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.0.prefetch_entries();
        self.0.map.iter()
    }
}

/// The table: the directory behind an `Arc`, the key count and the hasher.
#[derive(Clone)]
pub struct Table {
    dir: Arc<Directory>,
    depth: u32,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            dir: Arc::new(Directory {
                slots: vec![0],
                segments: vec![Arc::new(Segment::default())],
            }),
            depth: 0,
            len: 0,
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// The hash bits that choose a segment, highest first: bits 56 down, clear of the low bits
/// and the top seven that `hashbrown` uses inside a segment.
fn segment_bits(hash: u64) -> u64 {
    hash << 7
}

impl Table {
    pub fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, key: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(key)
    }

    /// The directory slot of `hash`.
    fn slot(&self, hash: u64) -> usize {
        if self.depth == 0 {
            0
        } else {
            (segment_bits(hash) >> (64 - self.depth)) as usize
        }
    }

    /// The index of the segment that holds `hash`.
    fn segment_of(&self, hash: u64) -> usize {
        self.dir.slots[self.slot(hash)] as usize
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        let hash = self.hash(key);
        self.dir.segments[self.segment_of(hash)]
            .map
            .find(hash, |e| e.key() == key)
    }

    /// Inserts `entry`, returning the entry it replaced under the same key.
    pub fn insert(&mut self, entry: Entry) -> Option<Entry> {
        let hash = self.hash(entry.key());
        loop {
            let slot = self.slot(hash);
            let index = self.dir.slots[slot] as usize;
            let segment = &self.dir.segments[index];
            if segment.map.len() >= SEGMENT_MAX
                && segment.depth < MAX_DEPTH
                && segment.map.find(hash, |e| e.key() == entry.key()).is_none()
            {
                self.split(slot);
                continue;
            }
            let hasher = &self.hasher;
            let segment = Arc::make_mut(&mut Arc::make_mut(&mut self.dir).segments[index]);
            let rehash = |e: &Entry| {
                use std::hash::BuildHasher;
                hasher.hash_one(e.key())
            };
            return match segment.map.entry(hash, |e| e.key() == entry.key(), rehash) {
                Slot::Occupied(mut old) => Some(std::mem::replace(old.get_mut(), entry)),
                Slot::Vacant(vacant) => {
                    vacant.insert(entry);
                    self.len += 1;
                    None
                }
            };
        }
    }

    /// Removes `key`'s entry. A missing key copies nothing, even from a shared segment.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let hash = self.hash(key);
        let index = self.segment_of(hash);
        self.dir.segments[index]
            .map
            .find(hash, |e| e.key() == key)?;
        let segment = Arc::make_mut(&mut Arc::make_mut(&mut self.dir).segments[index]);
        let (entry, _) = segment
            .map
            .find_entry(hash, |e| e.key() == key)
            .ok()?
            .remove();
        self.len -= 1;
        Some(entry)
    }

    pub fn clear(&mut self) {
        let hasher = self.hasher.clone();
        *self = Table {
            hasher,
            ..Table::default()
        };
    }

    /// Sizes an empty table for about `keys` keys at once (recovery, from a checkpoint's key
    /// count): as many segments as the splits would make, so the load moves no entry twice.
    /// A table that holds keys already is left as it is.
    pub fn reserve(&mut self, keys: usize) {
        if self.len != 0 || self.depth != 0 {
            return;
        }
        // A power of two of segments, each half to fully loaded on average: no more buckets
        // per key than splits leave (aiming at 3/4 doubled the table at 200,000 keys, +12 B
        // per key), and only a segment loaded above the mean by chance splits during the load.
        let segments = keys.div_ceil(SEGMENT_MAX).max(1);
        let depth = segments.next_power_of_two().trailing_zeros().min(MAX_DEPTH);
        if depth == 0 {
            return;
        }
        let count = 1usize << depth;
        self.dir = Arc::new(Directory {
            slots: (0..count as u32).collect(),
            segments: (0..count)
                .map(|_| {
                    Arc::new(Segment {
                        depth,
                        map: HashTable::with_capacity(SEGMENT_MAX),
                    })
                })
                .collect(),
        });
        self.depth = depth;
    }

    /// Rebuilds a table [`Table::reserve`]d for far more keys than it holds (recovery sizes
    /// the table for a log's records, which may overwrite few keys many times) at the size
    /// its keys need: every segment fewer than half full on average means at least a level of
    /// the directory too deep. Moves each entry once; a table that fits is left as it is.
    pub fn shrink_to_fit(&mut self) {
        let needed = self.len.div_ceil(SEGMENT_MAX).max(1).next_power_of_two();
        if self.dir.segments.len() <= 2 * needed {
            return;
        }
        let mut fitted = Table {
            hasher: self.hasher.clone(),
            ..Table::default()
        };
        fitted.reserve(self.len);
        let old = std::mem::take(self);
        match Arc::try_unwrap(old.dir) {
            Ok(dir) => dir
                .segments
                .into_iter()
                .flat_map(|s| Arc::unwrap_or_clone(s).map)
                .for_each(|e| {
                    fitted.insert(e);
                }),
            Err(shared) => shared
                .segments
                .iter()
                .flat_map(|s| s.map.iter())
                .for_each(|e| {
                    fitted.insert(e.clone());
                }),
        }
        *self = fitted;
    }

    /// Splits the segment at directory slot `slot` by its next hash bit: the low half takes
    /// its index, the high half a new one.
    fn split(&mut self, slot: usize) {
        let index = self.dir.slots[slot] as usize;
        let mut slot = slot;
        let dir = Arc::make_mut(&mut self.dir);
        // Taken out of the directory: when no snapshot shares it, its entries move to the
        // halves without a count touched; a shared one is copied (the snapshot keeps it).
        let old = std::mem::replace(
            &mut dir.segments[index],
            Arc::new(Segment {
                depth: 0,
                map: HashTable::new(),
            }),
        );
        if old.depth == self.depth {
            dir.slots = dir.slots.iter().flat_map(|&s| [s, s]).collect();
            self.depth += 1;
            slot *= 2;
        }
        let depth = old.depth + 1;
        let mut halves = [
            Segment {
                depth,
                map: HashTable::with_capacity(SEGMENT_MAX),
            },
            Segment {
                depth,
                map: HashTable::with_capacity(SEGMENT_MAX),
            },
        ];
        let hasher = &self.hasher;
        let rehash = |e: &Entry| {
            use std::hash::BuildHasher;
            hasher.hash_one(e.key())
        };
        let old_depth = old.depth;
        let mut place = |entry: Entry| {
            let hash = rehash(&entry);
            let half = ((segment_bits(hash) >> (63 - old_depth)) & 1) as usize;
            halves[half].map.insert_unique(hash, entry, rehash);
        };
        match Arc::try_unwrap(old) {
            Ok(owned) => owned.map.into_iter().for_each(&mut place),
            Err(shared) => {
                shared.prefetch_entries();
                shared.map.iter().cloned().for_each(&mut place)
            }
        }
        // The old segment filled 2^(depth - old.depth) slots from `start`; the upper half of
        // them now names the new segment.
        let span = 1usize << (self.depth - depth + 1);
        let start = slot & !(span - 1);
        let [low, high] = halves.map(Arc::new);
        let high_index = dir.segments.len() as u32;
        dir.segments[index] = low;
        dir.segments.push(high);
        for s in &mut dir.slots[start + span / 2..start + span] {
            *s = high_index;
        }
    }

    /// Every entry once, segment by segment.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.dir.segments.iter().flat_map(|s| s.map.iter())
    }

    /// The table taken apart segment by segment (a checkpoint's walk over its snapshot). Each
    /// segment is released when its [`SegmentEntries`] is dropped: a copy the live table made
    /// of it meanwhile is then the only one, and a segment the live table has not written yet
    /// is no longer shared, so its next write copies nothing.
    pub fn into_segments(self) -> impl Iterator<Item = SegmentEntries> {
        Arc::unwrap_or_clone(self.dir)
            .segments
            .into_iter()
            .map(SegmentEntries)
    }

    /// Number of segments: [`Table::segment`]'s indexes run below it. A walk by segment index
    /// meets every entry present for its whole length at least once: a split keeps the low
    /// half at its index and appends the high half.
    pub fn segment_count(&self) -> usize {
        self.dir.segments.len()
    }

    /// The entries of segment `index` (none past the end).
    pub fn segment(&self, index: usize) -> impl Iterator<Item = &Entry> {
        self.dir
            .segments
            .get(index)
            .into_iter()
            .flat_map(|s| s.map.iter())
    }

    /// Whether both tables are the same allocation (a clone not written to since).
    pub fn ptr_eq(&self, other: &Table) -> bool {
        Arc::ptr_eq(&self.dir, &other.dir)
    }

    /// Segments and directory slots, for tests and figures.
    #[cfg(test)]
    fn shape(&self) -> (usize, usize) {
        (self.dir.segments.len(), self.dir.slots.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32) -> Entry {
        Entry::new(format!("key:{i}").as_bytes(), &i.to_le_bytes(), None)
    }

    #[test]
    fn splits_keep_every_key_findable_and_segments_bounded() {
        let mut t = Table::default();
        let n = 20_000u32;
        for i in 0..n {
            assert!(t.insert(entry(i)).is_none());
        }
        assert_eq!(t.len(), n as usize);
        let (segments, slots) = t.shape();
        assert!(segments >= n as usize / SEGMENT_MAX, "{segments} segments");
        assert!(slots >= segments && slots.is_power_of_two());
        assert!(t.dir.segments.iter().all(|s| s.map.len() <= SEGMENT_MAX));
        assert_eq!(t.iter().count(), n as usize);
        for i in 0..n {
            let e = t.get(format!("key:{i}").as_bytes()).expect("present");
            assert_eq!(e.inline_value(), &i.to_le_bytes());
        }
        assert!(t.get(b"key:absent").is_none());
        // Replacing returns the old entry and keeps the count.
        let old = t
            .insert(Entry::new(b"key:7", b"new", None))
            .expect("replaced");
        assert_eq!(old.inline_value(), &7u32.to_le_bytes());
        assert_eq!(t.len(), n as usize);
        for i in (0..n).step_by(2) {
            assert!(t.remove(format!("key:{i}").as_bytes()).is_some());
        }
        assert!(t.remove(b"key:0").is_none());
        assert_eq!(
            (t.len(), t.iter().count()),
            (n as usize / 2, n as usize / 2)
        );
        t.clear();
        assert_eq!((t.len(), t.iter().count(), t.shape()), (0, 0, (1, 1)));
    }

    #[test]
    fn a_reserved_table_takes_its_keys_without_splitting() {
        let mut t = Table::default();
        t.reserve(20_000);
        let shape = t.shape();
        assert!(
            shape.0 >= 20_000 / SEGMENT_MAX && shape.0 == shape.1,
            "{shape:?}"
        );
        for i in 0..20_000 {
            t.insert(entry(i));
        }
        assert_eq!(t.shape(), shape);
        assert_eq!(t.iter().count(), 20_000);
        assert!((0..20_000).all(|i| t.get(format!("key:{i}").as_bytes()).is_some()));
        // More keys than reserved split as usual; reserving a filled table does nothing.
        for i in 20_000..60_000 {
            t.insert(entry(i));
        }
        t.reserve(1_000_000);
        assert!(t.shape().0 > shape.0);
        assert_eq!(t.len(), 60_000);
        assert!((0..60_000).all(|i| t.get(format!("key:{i}").as_bytes()).is_some()));
    }

    #[test]
    fn a_table_reserved_for_far_more_keys_shrinks_to_fit_them() {
        let mut t = Table::default();
        t.reserve(SEGMENT_MAX * 64);
        assert_eq!(t.shape().0, 64);
        for i in 0..(SEGMENT_MAX * 3) as u32 {
            t.insert(entry(i));
        }
        t.shrink_to_fit();
        let (segments, _) = t.shape();
        assert!(segments <= 8, "{segments} segments for {} keys", t.len());
        assert_eq!(t.len(), SEGMENT_MAX * 3);
        for i in 0..(SEGMENT_MAX * 3) as u32 {
            assert!(t.get(entry(i).key()).is_some(), "key {i} lost");
        }
        // A table that fits its keys is left as it is.
        let before = t.shape();
        t.shrink_to_fit();
        assert_eq!(t.shape(), before);
    }

    #[test]
    fn a_clone_shares_segments_until_one_is_written() {
        let mut t = Table::default();
        for i in 0..5_000 {
            t.insert(entry(i));
        }
        let snapshot = t.clone();
        assert!(t.ptr_eq(&snapshot));
        t.insert(Entry::new(b"key:1", b"changed", None));
        t.remove(b"key:2");
        t.remove(b"not there");
        assert!(!t.ptr_eq(&snapshot));
        let copied = t
            .dir
            .segments
            .iter()
            .zip(snapshot.dir.segments.iter())
            .filter(|(a, b)| !Arc::ptr_eq(a, b))
            .count();
        // At most the two written segments were copied.
        assert!(copied <= 2, "{copied} of {}", t.dir.segments.len());
        assert_eq!(
            snapshot.get(b"key:1").map(Entry::inline_value),
            Some(&1u32.to_le_bytes()[..])
        );
        assert!(snapshot.get(b"key:2").is_some());
        assert_eq!(snapshot.len(), 5_000);
        assert_eq!(
            t.get(b"key:1").map(Entry::inline_value),
            Some(&b"changed"[..])
        );
        // Splits after the snapshot leave it whole.
        for i in 5_000..20_000 {
            t.insert(entry(i));
        }
        assert_eq!((snapshot.iter().count(), t.len()), (5_000, 19_999));
    }

    #[test]
    fn a_snapshot_taken_apart_releases_each_segment_as_it_goes() {
        let mut t = Table::default();
        for i in 0..5_000 {
            t.insert(entry(i));
        }
        let snapshot = t.clone();
        t.insert(Entry::new(b"key:1", b"changed", None));
        let shared = |t: &Table| {
            t.dir
                .segments
                .iter()
                .filter(|s| Arc::strong_count(s) > 1)
                .count()
        };
        let segments = t.dir.segments.len();
        assert_eq!(
            shared(&t),
            segments - 1,
            "all but the written segment shared"
        );
        let mut seen = std::collections::BTreeMap::new();
        let mut still_shared = shared(&t);
        for part in snapshot.into_segments() {
            seen.extend(
                part.iter()
                    .map(|e| (e.key().to_vec(), e.inline_value().to_vec())),
            );
            drop(part);
            // A segment walked is the live table's alone again: the count only falls.
            assert!(shared(&t) <= still_shared);
            still_shared = shared(&t);
        }
        assert_eq!(shared(&t), 0);
        // The walk saw the snapshot's keys, each once, and not the write after it.
        assert_eq!(seen.len(), 5_000);
        assert_eq!(seen[&b"key:1"[..]], 1u32.to_le_bytes());
        assert_eq!(
            t.get(b"key:1").map(Entry::inline_value),
            Some(&b"changed"[..])
        );
    }
}
