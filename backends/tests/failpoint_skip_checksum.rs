//! The `recovery::skip_checksum` failpoint: a deliberately broken build whose log scanner
//! accepts records whose checksum does not match, which the crash test's self-test must catch.
//! Its own test binary, because failpoints are read once per process from `MOODB_FAILPOINTS`.

use bytes::Bytes;
use moodb_backends::paper::log::{encode_record, LogEnd, LogHeader, LogScanner, LOG_VERSION};
use moodb_core::{failpoint, Record};

fn set(key: &str, value: &str) -> Record {
    Record::Set {
        key: Bytes::copy_from_slice(key.as_bytes()),
        value: Bytes::copy_from_slice(value.as_bytes()),
        expires_at_ms: None,
    }
}

#[test]
fn skip_checksum_serves_a_flipped_value() {
    let mut log = LogHeader {
        version: LOG_VERSION,
        first_lsn: 1,
    }
    .encode()
    .to_vec();
    encode_record(&mut log, 1, 0, &set("k", "good-value"));
    encode_record(&mut log, 2, 0, &set("k2", "second"));
    let at = log.windows(10).position(|w| w == b"good-value").unwrap();
    log[at] ^= 0x01; // 'g' becomes 'f'

    // The real build refuses this log (mid-log damage at offset 32: paper_torn.rs and
    // paper_backend.rs test that); the broken one serves the damaged record as if it were what
    // was written. The failpoint table is read once, so this is set before the first scan.
    std::env::set_var(failpoint::ENV, "recovery::skip_checksum=on");
    let mut scanner = LogScanner::new(&log).unwrap();
    let records: Vec<_> = scanner.by_ref().map(|r| r.record).collect();
    assert_eq!(records, vec![set("k", "food-value"), set("k2", "second")]);
    assert!(matches!(scanner.finish(), LogEnd::Clean { .. }));
}
