//! `FastMap`: the hash map of the per-request paths (sessions by id, the durability gate's
//! unreleased keys). foldhash, seeded per process, instead of std's SipHash: one lookup costs
//! about a third of the instructions (measured with callgrind on `moodb serve`), and the
//! key space's table already trusts the same hash with client-chosen keys.

use std::collections::HashMap;

/// A `HashMap` with foldhash's fast, randomly seeded hasher. Build it with `default()`.
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
