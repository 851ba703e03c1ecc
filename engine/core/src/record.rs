//! Write records: what one log record holds (a set, an update, a delete, a flush, or a whole
//! transaction of those) and its byte encoding, shared by the paper log and by tools.
//!
//! Payload layout (all integers little-endian):
//!
//! | tag | name   | fields after the tag                                               |
//! |-----|--------|--------------------------------------------------------------------|
//! | 1   | Set    | u32 key len, key, u32 value len, value, u64 expires-at ms (0 = none) |
//! | 2   | Update | u32 key len, key, u32 value len, value                              |
//! | 3   | Delete | u32 key len, key                                                    |
//! | 4   | Clear  | (nothing)                                                           |
//! | 5   | Txn    | u32 count, then `count` records, none of them a Txn                 |
//! | 6   | InDb   | u16 db (never 0), then one Set, Update, Delete or Clear record       |
//! | 7   | SwapDb | u16 a, u16 b                                                        |
//! | 8   | ClearAll | (nothing)                                                         |
//!
//! A record without the InDb wrapper is in database 0: every record of log format version 1
//! is, and database 0's records are as small as they were (tags 6 to 8 appear from version 2).

use bytes::Bytes;

/// Log sequence number: position of a record in the history of all writes, starting at 1.
pub type Lsn = u64;

/// One durable change to the key space. A transaction is one record, so it is applied (and
/// recovered) whole or not at all.
///
/// `B` holds the keys and values: `Bytes` everywhere a record is kept or sent, `&[u8]` for a
/// [`RecordRef`] borrowed from a log file being replayed ([`Record::decode_borrowed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record<B = Bytes> {
    /// Set `key` to `value`, replacing any value and expiry it had.
    Set {
        key: B,
        value: B,
        /// Absolute expiry time in Unix milliseconds, if any.
        expires_at_ms: Option<u64>,
    },
    /// Set `key` to `value` only if it exists (its expiry is cleared, like SET XX).
    Update { key: B, value: B },
    /// Remove `key` if it exists.
    Delete { key: B },
    /// Remove every key (FLUSHDB).
    Clear,
    /// Several records applied as one unit.
    Txn(Vec<Record<B>>),
    /// `record` (a Set, Update, Delete or Clear) applies to database `db`, never 0: a record
    /// without this wrapper is in database 0. Build it with [`Record::in_db`].
    InDb { db: u16, record: Box<Record<B>> },
    /// Swap the contents of two databases (SWAPDB).
    SwapDb { a: u16, b: u16 },
    /// Remove every key of every database (FLUSHALL).
    ClearAll,
}

/// A record whose keys and values are slices of the bytes it was decoded from.
pub type RecordRef<'a> = Record<&'a [u8]>;

const TAG_SET: u8 = 1;
const TAG_UPDATE: u8 = 2;
const TAG_DELETE: u8 = 3;
const TAG_CLEAR: u8 = 4;
const TAG_TXN: u8 = 5;
const TAG_IN_DB: u8 = 6;
const TAG_SWAP_DB: u8 = 7;
const TAG_CLEAR_ALL: u8 = 8;

/// Why a payload could not be decoded as a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordDecodeError {
    #[error("record payload ends after {at} of {len} bytes while reading {what}")]
    Truncated {
        what: &'static str,
        at: usize,
        len: usize,
    },
    #[error("unknown record tag {tag} at payload byte {at}")]
    UnknownTag { tag: u8, at: usize },
    #[error("a transaction may not contain another transaction (payload byte {at})")]
    NestedTxn { at: usize },
    #[error("database {db} record wraps a {kind} record (payload byte {at})")]
    BadInDb {
        db: u16,
        kind: &'static str,
        at: usize,
    },
    #[error("{extra} unexpected bytes after the record")]
    TrailingBytes { extra: usize },
}

impl<B> Record<B> {
    /// Short name of the record kind, as tools print it.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Set { .. } => "set",
            Record::Update { .. } => "update",
            Record::Delete { .. } => "delete",
            Record::Clear => "clear",
            Record::Txn(_) => "txn",
            Record::InDb { record, .. } => record.kind(),
            Record::SwapDb { .. } => "swapdb",
            Record::ClearAll => "clearall",
        }
    }
}

impl Record {
    /// `record` as a record of database `db`: unchanged for database 0 (and for the records
    /// that name their databases themselves), wrapped in `InDb` otherwise (each record of a
    /// Txn wrapped on its own).
    pub fn in_db(db: u16, record: Record) -> Record {
        if db == 0 {
            return record;
        }
        match record {
            Record::Txn(ops) => {
                Record::Txn(ops.into_iter().map(|r| Record::in_db(db, r)).collect())
            }
            r @ (Record::InDb { .. } | Record::SwapDb { .. } | Record::ClearAll) => r,
            r => Record::InDb {
                db,
                record: Box::new(r),
            },
        }
    }

    /// The database a keyed record (or Clear) applies to, and the record without its
    /// wrapper.
    pub fn db_and_inner(&self) -> (u16, &Record) {
        match self {
            Record::InDb { db, record } => (*db, record),
            r => (0, r),
        }
    }

    /// Number of bytes `encode` appends.
    pub fn encoded_len(&self) -> usize {
        match self {
            Record::Set { key, value, .. } => 1 + 4 + key.len() + 4 + value.len() + 8,
            Record::Update { key, value } => 1 + 4 + key.len() + 4 + value.len(),
            Record::Delete { key } => 1 + 4 + key.len(),
            Record::Clear => 1,
            Record::Txn(ops) => 1 + 4 + ops.iter().map(Record::encoded_len).sum::<usize>(),
            Record::InDb { record, .. } => 1 + 2 + record.encoded_len(),
            Record::SwapDb { .. } => 1 + 2 + 2,
            Record::ClearAll => 1,
        }
    }

    /// Appends the payload encoding of this record to `out`.
    ///
    /// Keys and values longer than `u32::MAX` bytes cannot be encoded; the server's request
    /// limits keep them far below that, and this function truncates nothing: it panics in debug
    /// builds only.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => {
                out.push(TAG_SET);
                put_bytes(out, key);
                put_bytes(out, value);
                out.extend_from_slice(&expires_at_ms.unwrap_or(0).to_le_bytes());
            }
            Record::Update { key, value } => {
                out.push(TAG_UPDATE);
                put_bytes(out, key);
                put_bytes(out, value);
            }
            Record::Delete { key } => {
                out.push(TAG_DELETE);
                put_bytes(out, key);
            }
            Record::Clear => out.push(TAG_CLEAR),
            Record::Txn(ops) => {
                out.push(TAG_TXN);
                out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
                for op in ops {
                    op.encode(out);
                }
            }
            Record::InDb { db, record } => {
                out.push(TAG_IN_DB);
                out.extend_from_slice(&db.to_le_bytes());
                record.encode(out);
            }
            Record::SwapDb { a, b } => {
                out.push(TAG_SWAP_DB);
                out.extend_from_slice(&a.to_le_bytes());
                out.extend_from_slice(&b.to_le_bytes());
            }
            Record::ClearAll => out.push(TAG_CLEAR_ALL),
        }
    }

    /// The payload encoding of this record as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }

    /// Decodes one record that must span the whole of `payload`; its keys and values are
    /// copies.
    pub fn decode(payload: &[u8]) -> Result<Record, RecordDecodeError> {
        decode_as(payload)
    }

    /// [`Record::decode`] whose keys and values are slices of `payload`, not copies:
    /// recovery's replay, where the key space copies what it keeps.
    pub fn decode_borrowed(payload: &[u8]) -> Result<RecordRef<'_>, RecordDecodeError> {
        decode_as(payload)
    }
}

impl RecordRef<'_> {
    /// The same record holding copies of its keys and values.
    pub fn to_owned_record(&self) -> Record {
        let copy = |b: &[u8]| Bytes::copy_from_slice(b);
        match self {
            Record::Set {
                key,
                value,
                expires_at_ms,
            } => Record::Set {
                key: copy(key),
                value: copy(value),
                expires_at_ms: *expires_at_ms,
            },
            Record::Update { key, value } => Record::Update {
                key: copy(key),
                value: copy(value),
            },
            Record::Delete { key } => Record::Delete { key: copy(key) },
            Record::Clear => Record::Clear,
            Record::Txn(ops) => Record::Txn(ops.iter().map(RecordRef::to_owned_record).collect()),
            Record::InDb { db, record } => Record::InDb {
                db: *db,
                record: Box::new(record.to_owned_record()),
            },
            Record::SwapDb { a, b } => Record::SwapDb { a: *a, b: *b },
            Record::ClearAll => Record::ClearAll,
        }
    }
}

/// Decodes one record that must span the whole of `payload`, its fields held as `B`.
fn decode_as<'a, B: Field<'a>>(payload: &'a [u8]) -> Result<Record<B>, RecordDecodeError> {
    let mut reader = Reader {
        buf: payload,
        at: 0,
    };
    let record = reader.record(true)?;
    if reader.at != payload.len() {
        return Err(RecordDecodeError::TrailingBytes {
            extra: payload.len() - reader.at,
        });
    }
    Ok(record)
}

/// How a decoded key or value is held: a slice of the payload, or a copy of its own.
trait Field<'a> {
    fn field(bytes: &'a [u8]) -> Self;
}

impl<'a> Field<'a> for &'a [u8] {
    fn field(bytes: &'a [u8]) -> Self {
        bytes
    }
}

impl Field<'_> for Bytes {
    fn field(bytes: &[u8]) -> Self {
        Bytes::copy_from_slice(bytes)
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    debug_assert!(
        u32::try_from(bytes.len()).is_ok(),
        "field longer than u32::MAX"
    );
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordDecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(RecordDecodeError::Truncated {
                what,
                at: self.at,
                len: self.buf.len(),
            })?;
        let slice = &self.buf[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, RecordDecodeError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, RecordDecodeError> {
        let mut le = [0u8; 2];
        le.copy_from_slice(self.take(2, what)?);
        Ok(u16::from_le_bytes(le))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, RecordDecodeError> {
        let mut le = [0u8; 4];
        le.copy_from_slice(self.take(4, what)?);
        Ok(u32::from_le_bytes(le))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, RecordDecodeError> {
        let mut le = [0u8; 8];
        le.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(le))
    }

    fn bytes<B: Field<'a>>(&mut self, what: &'static str) -> Result<B, RecordDecodeError> {
        let len = self.u32(what)? as usize;
        Ok(B::field(self.take(len, what)?))
    }

    fn record<B: Field<'a>>(&mut self, allow_txn: bool) -> Result<Record<B>, RecordDecodeError> {
        let at = self.at;
        match self.u8("tag")? {
            TAG_SET => {
                let key = self.bytes("key")?;
                let value = self.bytes("value")?;
                let expires = self.u64("expiry")?;
                Ok(Record::Set {
                    key,
                    value,
                    expires_at_ms: (expires != 0).then_some(expires),
                })
            }
            TAG_UPDATE => {
                let key = self.bytes("key")?;
                let value = self.bytes("value")?;
                Ok(Record::Update { key, value })
            }
            TAG_DELETE => Ok(Record::Delete {
                key: self.bytes("key")?,
            }),
            TAG_CLEAR => Ok(Record::Clear),
            TAG_TXN if allow_txn => {
                let count = self.u32("transaction length")? as usize;
                // Every record takes at least one byte: a count larger than what is left is
                // damage, and must not drive an allocation.
                let left = self.buf.len() - self.at;
                if count > left {
                    return Err(RecordDecodeError::Truncated {
                        what: "transaction records",
                        at: self.at,
                        len: self.buf.len(),
                    });
                }
                // Capacity grows with what really decodes, not with what the count claims.
                let mut ops = Vec::with_capacity(count.min(1024));
                for _ in 0..count {
                    ops.push(self.record(false)?);
                }
                Ok(Record::Txn(ops))
            }
            TAG_TXN => Err(RecordDecodeError::NestedTxn { at }),
            TAG_IN_DB => {
                let db = self.u16("database")?;
                let inner_at = self.at;
                let record = self.record(false)?;
                match record {
                    Record::Set { .. }
                    | Record::Update { .. }
                    | Record::Delete { .. }
                    | Record::Clear
                        if db != 0 =>
                    {
                        Ok(Record::InDb {
                            db,
                            record: Box::new(record),
                        })
                    }
                    other => Err(RecordDecodeError::BadInDb {
                        db,
                        kind: if db == 0 { "database 0" } else { other.kind() },
                        at: inner_at,
                    }),
                }
            }
            TAG_SWAP_DB => {
                let a = self.u16("database")?;
                let b = self.u16("database")?;
                Ok(Record::SwapDb { a, b })
            }
            TAG_CLEAR_ALL => Ok(Record::ClearAll),
            tag => Err(RecordDecodeError::UnknownTag { tag, at }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn op() -> impl Strategy<Value = Record> {
        let bytes = || proptest::collection::vec(any::<u8>(), 0..16).prop_map(Bytes::from);
        prop_oneof![
            (bytes(), bytes(), proptest::option::of(1u64..u64::MAX)).prop_map(|(k, v, e)| {
                Record::Set {
                    key: k,
                    value: v,
                    expires_at_ms: e,
                }
            }),
            (bytes(), bytes()).prop_map(|(k, v)| Record::Update { key: k, value: v }),
            bytes().prop_map(|k| Record::Delete { key: k }),
            Just(Record::Clear),
            Just(Record::ClearAll),
            (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Record::SwapDb { a, b }),
        ]
    }

    fn op_in_db() -> impl Strategy<Value = Record> {
        (0u16..4, op()).prop_map(|(db, r)| Record::in_db(db, r))
    }

    fn record() -> impl Strategy<Value = Record> {
        prop_oneof![
            op_in_db(),
            proptest::collection::vec(op_in_db(), 0..5).prop_map(Record::Txn)
        ]
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(r in record()) {
            let bytes = r.to_bytes();
            prop_assert_eq!(bytes.len(), r.encoded_len());
            let borrowed = Record::decode_borrowed(&bytes).map(|b| b.to_owned_record());
            prop_assert_eq!(borrowed, Ok(r.clone()));
            prop_assert_eq!(Record::decode(&bytes), Ok(r));
        }

        #[test]
        fn decode_of_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Record::decode(&bytes);
        }

        #[test]
        fn every_strict_prefix_fails_to_decode(r in record()) {
            let bytes = r.to_bytes();
            for cut in 0..bytes.len() {
                prop_assert!(Record::decode(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn database_0_records_are_unwrapped_and_others_take_three_bytes_more() {
        let set = Record::Set {
            key: Bytes::from_static(b"k"),
            value: Bytes::from_static(b"v"),
            expires_at_ms: None,
        };
        assert_eq!(Record::in_db(0, set.clone()), set);
        let in3 = Record::in_db(3, set.clone());
        assert_eq!(in3.encoded_len(), set.encoded_len() + 3);
        assert_eq!(in3.db_and_inner(), (3, &set));
        assert_eq!(&in3.to_bytes()[..3], &[TAG_IN_DB, 3, 0]);
        // A wrapper naming database 0, or wrapping a transaction, is damage.
        let mut zero = vec![TAG_IN_DB, 0, 0];
        set.encode(&mut zero);
        assert!(matches!(
            Record::decode(&zero),
            Err(RecordDecodeError::BadInDb { db: 0, .. })
        ));
        assert!(Record::decode(&[TAG_IN_DB, 1, 0, TAG_TXN, 0, 0, 0, 0]).is_err());
        assert!(Record::decode(&[TAG_IN_DB, 1, 0, TAG_CLEAR_ALL]).is_err());
    }

    #[test]
    fn nested_transactions_are_rejected() {
        let mut bytes = vec![TAG_TXN, 1, 0, 0, 0, TAG_TXN, 0, 0, 0, 0];
        assert_eq!(
            Record::decode(&bytes),
            Err(RecordDecodeError::NestedTxn { at: 5 })
        );
        bytes.truncate(5);
        assert!(Record::decode(&bytes).is_err());
    }
}
