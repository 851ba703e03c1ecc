//! The in-memory key space: binary-safe keys mapped to values with an optional expiry. It is a
//! persistent map, so a clone is O(1) and the snapshotter can write a consistent view while the
//! store owner goes on applying writes.

use bytes::Bytes;

use crate::record::Record;

/// A stored value and its absolute expiry time, if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub data: Bytes,
    /// Unix time in milliseconds after which the key no longer exists.
    pub expires_at_ms: Option<u64>,
}

impl Value {
    /// A value that never expires.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Value {
            data: data.into(),
            expires_at_ms: None,
        }
    }

    /// Whether the value has expired at `now_ms` (Unix milliseconds).
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}

/// The whole state of the database. Applying a record is deterministic and ignores the clock,
/// so replaying the same log gives the same map; expiry is applied by readers through
/// [`Keyspace::get_live`] and by the store owner when it removes expired keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keyspace {
    map: imbl::HashMap<Bytes, Value>,
}

impl Keyspace {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys held, expired ones not yet removed included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value of `key`, whether or not it has expired.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.map.get(key)
    }

    /// The value of `key` if it exists and has not expired at `now_ms`.
    pub fn get_live(&self, key: &[u8], now_ms: u64) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_expired(now_ms))
    }

    /// Inserts or replaces `key` (used by recovery to load a checkpoint, and by tests).
    pub fn insert(&mut self, key: Bytes, value: Value) {
        self.map.insert(key, value);
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.map.remove(key)
    }

    /// Every key and value, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Value)> {
        self.map.iter()
    }

    /// Applies one record. Replaying the records of a history in LSN order rebuilds the state
    /// that history produced.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => {
                self.map.insert(
                    key.clone(),
                    Value {
                        data: value.clone(),
                        expires_at_ms: *expires_at_ms,
                    },
                );
            }
            Record::Update { key, value } => {
                if let Some(old) = self.map.get_mut(key) {
                    *old = Value::new(value.clone());
                }
            }
            Record::Delete { key } => {
                self.map.remove(key);
            }
            Record::Clear => self.map.clear(),
            Record::Txn(ops) => ops.iter().for_each(|op| self.apply(op)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn update_applies_only_to_existing_keys() {
        let mut ks = Keyspace::new();
        ks.apply(&Record::Update {
            key: b("a"),
            value: b("1"),
        });
        assert!(ks.get(b"a").is_none());
        ks.apply(&Record::Set {
            key: b("a"),
            value: b("1"),
            expires_at_ms: Some(5),
        });
        ks.apply(&Record::Update {
            key: b("a"),
            value: b("2"),
        });
        assert_eq!(ks.get(b"a"), Some(&Value::new(b("2"))));
    }

    #[test]
    fn transaction_applies_all_its_records() {
        let mut ks = Keyspace::new();
        ks.apply(&Record::Txn(vec![
            Record::Set {
                key: b("a"),
                value: b("1"),
                expires_at_ms: None,
            },
            Record::Set {
                key: b("b"),
                value: b("2"),
                expires_at_ms: None,
            },
            Record::Delete { key: b("a") },
        ]));
        assert_eq!(ks.len(), 1);
        assert_eq!(ks.get(b"b"), Some(&Value::new(b("2"))));
    }

    #[test]
    fn expired_values_are_hidden_from_live_reads() {
        let mut ks = Keyspace::new();
        ks.apply(&Record::Set {
            key: b("a"),
            value: b("1"),
            expires_at_ms: Some(100),
        });
        assert!(ks.get_live(b"a", 99).is_some());
        assert!(ks.get_live(b"a", 100).is_none());
        assert!(ks.get(b"a").is_some());
    }
}
