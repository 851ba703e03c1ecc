//! Recovery's second thread: it reads the log segments to replay, in order and one ahead, and
//! checks their records' checksums while the replay applies them.
//!
//! A replay is read, checksum and apply, one after the other on one core; on the 1M-key log of
//! `bench/footprint.sh`, reading and checksums took about a third of it. Here a reader thread
//! reads segment k+1 while segment k is applied, and runs [`check_chain`] over each segment it
//! hands over, publishing how far it got. The replay's scanner trusts the checksums before that
//! point and checks the others itself, so it never waits for the reader, and what it decides
//! (where the log ends, what is damaged) is what one thread alone decides.
//!
//! At most two segment buffers exist: the one being applied and the one read ahead. A buffer
//! comes back to the reader when the replay drops its [`SegmentBytes`], and is read into again
//! (its pages stay mapped).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;

use super::fs::Fs;
use super::log::{self, check_chain, LOG_HEADER_LEN};

/// One segment as recovery replays it.
#[derive(Debug)]
pub(crate) struct SegmentBytes {
    /// The bytes up to the last non-zero one ([`Fs::read_into`]), and the zeros that complete
    /// the header and the last record of the chain (a record may end in zero bytes: every SET
    /// without an expiry does); what follows in the file is zeros.
    pub bytes: Arc<Vec<u8>>,
    /// The file's length.
    pub file_len: u64,
    /// Where the records whose checksums the reader has checked end, so far.
    pub checked: Arc<AtomicUsize>,
    back: Sender<Arc<Vec<u8>>>,
}

impl Drop for SegmentBytes {
    fn drop(&mut self) {
        // The reader may have stopped; then the buffer is simply freed.
        let _ = self.back.send(std::mem::take(&mut self.bytes));
    }
}

/// What the reader sends, in order.
enum Sent {
    /// The records in the chain of the last segment (first, when asked for).
    LastCount(u64),
    Segment(io::Result<SegmentBytes>),
}

/// The replay's end of the reader.
pub(crate) struct Segments<'a> {
    source: Source<'a>,
}

enum Source<'a> {
    /// The reader thread.
    Reader(Receiver<Sent>),
    /// No reader thread (it could not be started, or the loom models run, whose simulated
    /// disk only loom's threads may touch): each segment is read when asked for, and its
    /// checksums are left to the scanner.
    Inline {
        fs: &'a dyn Fs,
        paths: std::vec::IntoIter<PathBuf>,
        back: Sender<Arc<Vec<u8>>>,
        returned: Receiver<Arc<Vec<u8>>>,
    },
}

impl Segments<'_> {
    /// The next segment, in the order given; `Err` if it could not be read, or if the reader
    /// stopped before it.
    pub fn next(&mut self) -> io::Result<SegmentBytes> {
        match &mut self.source {
            Source::Reader(from_reader) => match from_reader.recv() {
                Ok(Sent::Segment(read)) => read,
                Ok(Sent::LastCount(_)) | Err(_) => Err(io::Error::other(
                    "recovery's reader thread stopped before this segment",
                )),
            },
            Source::Inline {
                fs,
                paths,
                back,
                returned,
            } => {
                let path = paths
                    .next()
                    .ok_or_else(|| io::Error::other("no segment left to read"))?;
                let mut buf = returned
                    .try_recv()
                    .ok()
                    .and_then(|bytes| Arc::try_unwrap(bytes).ok())
                    .unwrap_or_default();
                let file_len = read_segment_bytes(*fs, &path, &mut buf)?;
                Ok(SegmentBytes {
                    bytes: Arc::new(buf),
                    file_len,
                    checked: Arc::new(AtomicUsize::new(0)),
                    back: back.clone(),
                })
            }
        }
    }
}

/// Runs `replay` with a reader thread that reads `paths` in order. With `count_last`, the
/// reader first counts the records in the chain of the last one, and `replay` gets the count
/// (an upper bound on the keys that segment leaves). The reader stops when `replay` returns,
/// whether or not it took every segment. Without a thread, the segments are read inline.
pub(crate) fn with_reader<T>(
    fs: &dyn Fs,
    paths: Vec<PathBuf>,
    count_last: bool,
    replay: impl FnOnce(&mut Segments<'_>, Option<u64>) -> T,
) -> T {
    if cfg!(feature = "loom") {
        return inline(fs, paths, count_last, replay);
    }
    std::thread::scope(|scope| {
        // One segment may wait in the channel while the replay applies another.
        let (to_replay, from_reader) = mpsc::sync_channel(1);
        let (back, returned) = mpsc::channel();
        let for_reader = paths.clone();
        let spawned = std::thread::Builder::new()
            .name("moodb-recovery-read".into())
            .spawn_scoped(scope, move || {
                moodb_core::cpus::enter_helper_thread();
                read_ahead(fs, &for_reader, count_last, &to_replay, &back, &returned);
            });
        if spawned.is_err() {
            return inline(fs, paths, count_last, replay);
        }
        let last_count = if count_last {
            match from_reader.recv() {
                Ok(Sent::LastCount(n)) => Some(n),
                _ => None,
            }
        } else {
            None
        };
        let mut segments = Segments {
            source: Source::Reader(from_reader),
        };
        replay(&mut segments, last_count)
        // `segments` drops here: the reader's next send fails and it stops.
    })
}

/// [`with_reader`] without the thread.
fn inline<T>(
    fs: &dyn Fs,
    paths: Vec<PathBuf>,
    count_last: bool,
    replay: impl FnOnce(&mut Segments<'_>, Option<u64>) -> T,
) -> T {
    let last_count = count_last.then(|| {
        let mut buf = Vec::new();
        paths.last().map_or(0, |last| {
            read_segment_bytes(fs, last, &mut buf).map_or(0, |_| log::record_chain(&buf).0)
        })
    });
    let (back, returned) = mpsc::channel();
    let mut segments = Segments {
        source: Source::Inline {
            fs,
            paths: paths.into_iter(),
            back,
            returned,
        },
    };
    replay(&mut segments, last_count)
}

/// The reader thread: every segment of `paths` in order, each checked after it is sent.
fn read_ahead(
    fs: &dyn Fs,
    paths: &[PathBuf],
    count_last: bool,
    to_replay: &SyncSender<Sent>,
    back: &Sender<Arc<Vec<u8>>>,
    returned: &Receiver<Arc<Vec<u8>>>,
) {
    const BUFFERS: usize = 2;
    let mut spare: Option<Vec<u8>> = None;
    if count_last {
        let Some(last) = paths.last() else {
            return;
        };
        let mut buf = Vec::new();
        let count = match read_segment_bytes(fs, last, &mut buf) {
            Ok(_) => log::record_chain(&buf).0,
            Err(_) => 0, // the error comes with the segment's own read
        };
        if to_replay.send(Sent::LastCount(count)).is_err() {
            return;
        }
        spare = Some(buf);
    }
    let mut made = usize::from(spare.is_some());
    for path in paths {
        let mut buf = match spare.take() {
            Some(buf) => buf,
            None if made < BUFFERS => {
                made += 1;
                Vec::new()
            }
            None => match returned.recv() {
                // The replay dropped its segment, so the reader's own reference is the only
                // one left once its check is done: no copy.
                Ok(bytes) => Arc::try_unwrap(bytes).unwrap_or_default(),
                Err(_) => return,
            },
        };
        let read = read_segment_bytes(fs, path, &mut buf);
        let failed = read.is_err();
        let segment = read.map(|file_len| SegmentBytes {
            bytes: Arc::new(buf),
            file_len,
            checked: Arc::new(AtomicUsize::new(0)),
            back: back.clone(),
        });
        let to_check = segment
            .as_ref()
            .ok()
            .map(|s| (Arc::clone(&s.bytes), Arc::clone(&s.checked)));
        if to_replay.send(Sent::Segment(segment)).is_err() || failed {
            return;
        }
        if let Some((bytes, checked)) = to_check {
            check_chain(&bytes, &checked);
        }
    }
}

/// Reads segment `path` into `buf` as [`SegmentBytes::bytes`] holds it; returns the file's
/// length.
fn read_segment_bytes(fs: &dyn Fs, path: &Path, buf: &mut Vec<u8>) -> io::Result<u64> {
    let file_len = fs.read_into(path, buf)?;
    let len = |n: usize| n.min(usize::try_from(file_len).unwrap_or(usize::MAX));
    if buf.len() < len(LOG_HEADER_LEN) {
        buf.resize(len(LOG_HEADER_LEN), 0);
    }
    let chain_end = len(log::record_chain(buf).1);
    if buf.len() < chain_end {
        buf.resize(chain_end, 0);
    }
    Ok(file_len)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::Ordering;
    use std::sync::mpsc;
    use std::time::Duration;

    use super::with_reader;
    use crate::paper::fs::{Fs, SimFs};
    use crate::paper::log::{encode_record, LogHeader, LOG_VERSION};
    use moodb_core::Record;

    /// Writes segments of `records` one-record groups each, with LSNs following on; returns
    /// their paths and bytes.
    fn segments(fs: &SimFs, counts: &[u64]) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = Path::new("/d");
        fs.create_dir_all(dir).unwrap();
        let mut lsn = 1;
        let mut out = Vec::new();
        for (i, &n) in counts.iter().enumerate() {
            let mut bytes = LogHeader {
                version: LOG_VERSION,
                first_lsn: lsn,
            }
            .encode()
            .to_vec();
            for _ in 0..n {
                let record = Record::Set {
                    key: format!("k{lsn}").into(),
                    value: vec![b'v'; 30].into(),
                    expires_at_ms: None,
                };
                encode_record(&mut bytes, lsn, 0, &record);
                lsn += 1;
            }
            let path = dir.join(format!("log-{i}"));
            fs.create(&path).unwrap().write_all_at(&bytes, 0).unwrap();
            out.push((path, bytes));
        }
        out
    }

    /// Runs `f` on another thread and fails the test if it takes over 10 s (a reader that
    /// never stops would hang the test instead).
    fn within_10s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || done.send(f()));
        result
            .recv_timeout(Duration::from_secs(10))
            .expect("the reader did not stop")
    }

    #[test]
    fn every_segment_comes_in_order_checked_and_the_last_one_counted() {
        within_10s(|| {
            let fs = SimFs::new();
            let written = segments(&fs, &[5, 0, 40, 7]);
            let paths: Vec<PathBuf> = written.iter().map(|(p, _)| p.clone()).collect();
            with_reader(&fs, paths, true, |segments, last_count| {
                assert_eq!(last_count, Some(7));
                for (path, bytes) in &written {
                    let segment = segments.next().unwrap();
                    assert_eq!(segment.bytes.as_slice(), bytes.as_slice(), "{path:?}");
                    assert_eq!(segment.file_len, bytes.len() as u64);
                    // The check of a segment may still run: it ends at the chain's end.
                    let checked = || segment.checked.load(Ordering::Acquire);
                    while checked() < bytes.len() {
                        std::thread::yield_now();
                    }
                    assert_eq!(checked(), bytes.len());
                }
                assert!(segments.next().is_err(), "no segment after the last");
            });
        });
    }

    #[test]
    fn without_a_thread_the_segments_are_read_inline_alike() {
        let fs = SimFs::new();
        let written = segments(&fs, &[4, 9]);
        let paths: Vec<PathBuf> = written.iter().map(|(p, _)| p.clone()).collect();
        super::inline(&fs, paths, true, |segments, last_count| {
            assert_eq!(last_count, Some(9));
            for (path, bytes) in &written {
                let segment = segments.next().unwrap();
                assert_eq!(segment.bytes.as_slice(), bytes.as_slice(), "{path:?}");
                assert_eq!(
                    segment.checked.load(Ordering::Acquire),
                    0,
                    "left to the scanner"
                );
            }
            assert!(segments.next().is_err());
        });
    }

    #[test]
    fn the_reader_stops_when_the_replay_stops_early_and_reports_a_missing_segment() {
        within_10s(|| {
            let fs = SimFs::new();
            let mut paths: Vec<PathBuf> = segments(&fs, &[3, 3, 3, 3, 3])
                .into_iter()
                .map(|(p, _)| p)
                .collect();
            // Taking one segment of five: the reader, blocked on a buffer, must still stop.
            with_reader(&fs, paths.clone(), false, |segments, last_count| {
                assert_eq!(last_count, None);
                drop(segments.next().unwrap());
            });
            paths.insert(1, PathBuf::from("/d/missing"));
            with_reader(&fs, paths, false, |segments, _| {
                assert!(segments.next().is_ok());
                assert!(segments.next().is_err(), "the missing one");
                assert!(segments.next().is_err(), "nothing after a failed read");
            });
        });
    }
}
