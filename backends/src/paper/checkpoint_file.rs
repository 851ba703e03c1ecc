//! How a checkpoint's bytes reach the disk. Where the file system allows it, around the page
//! cache: a staging buffer aligned to the disk's blocks, written a chunk at a time to a file
//! opened for direct, synchronous writes ([`Fs::create_direct`]: `O_DIRECT | O_DSYNC`). Each
//! write returns once its chunk is on the disk, so the disk never holds more than one chunk
//! of the checkpoint queued ahead of a log fdatasync. Through the page cache, the kernel's
//! write-back queues megabytes at a time however often the file is synced, and the log's
//! fdatasync waits behind them. Elsewhere (a file system that refuses O_DIRECT when the file
//! is opened or at its first write), the bytes go through the page cache, synced every
//! [`SYNC_EVERY`].
//!
//! Measured with a probe on this machine kind (a thread appending 4 KiB and fdatasyncing in a
//! loop while another writes 256 MiB at 300 MB/s; ms of the loop's fdatasync): quiet p99 0.27–
//! 0.31; buffered, synced every 8 MiB 2.91, every 1 MiB 0.71; direct and synchronous in 64 KiB
//! chunks 0.40, 256 KiB 0.47 (bench/results-2026-12-04.md). 256 KiB it is: each write costs
//! the virtual disk a notification, and in 64 KiB chunks a 1M-key checkpoint took 1.8× the
//! CPU (523 against 293 ms).

use super::fs::{Fs, FsFile};
use std::io;
use std::path::Path;

/// The alignment of a direct write's buffer, offset and length: the largest logical block
/// size of the disks this runs on.
pub const DIRECT_BLOCK: usize = 4096;

/// The bytes of one direct write.
pub const DIRECT_CHUNK: usize = 256 << 10;

/// A checkpoint written through the page cache is fdatasynced every this many bytes, so that
/// the disk never has much of it queued ahead of a log sync. With one fsync at the end, a
/// 1M-key checkpoint (130 MB) held a concurrent log fdatasync for 43 ms (strace). Measured
/// with 1M keys and a BGSAVE every 0.5 s under redis-benchmark SET -c 50: slowest SET 39–52 ms
/// with one fsync, 20–22 ms syncing every 1 MiB, 18–29 ms every 8 MiB; p99 3.2–4.3 ms,
/// 4.0–4.8, 4.6–5.3, and throughput 5–15% lower with the syncs (bench/results-2026-12-01.md).
pub const SYNC_EVERY: u64 = 8 << 20;

/// A checkpoint file being written; [`CheckpointFile::finish`] makes it durable.
#[derive(Debug)]
pub enum CheckpointFile {
    Direct(DirectWriter),
    Buffered {
        file: Box<dyn FsFile>,
        written: u64,
        unsynced: u64,
    },
}

impl CheckpointFile {
    /// Creates `path` (truncating it), direct where the file system allows it.
    pub fn create(fs: &dyn Fs, path: &Path) -> io::Result<Self> {
        match fs.create_direct(path)? {
            Some(file) => Self::direct_or_buffered(fs, path, file),
            None => Ok(Self::buffered(fs.create(path)?)),
        }
    }

    /// Direct, unless the file system, having opened the file for direct writes, refuses one
    /// (EINVAL: no O_DIRECT writes there, or not at this alignment); through the page cache
    /// then. One block of zeros written at the start asks it; the first chunk overwrites it.
    fn direct_or_buffered(fs: &dyn Fs, path: &Path, file: Box<dyn FsFile>) -> io::Result<Self> {
        let mut direct = DirectWriter::new(file);
        match direct.write_probe() {
            Ok(()) => Ok(CheckpointFile::Direct(direct)),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                Ok(Self::buffered(fs.create(path)?))
            }
            Err(e) => Err(e),
        }
    }

    /// Through the page cache.
    fn buffered(file: Box<dyn FsFile>) -> Self {
        CheckpointFile::Buffered {
            file,
            written: 0,
            unsynced: 0,
        }
    }

    /// Appends `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            CheckpointFile::Direct(w) => w.write(bytes),
            CheckpointFile::Buffered {
                file,
                written,
                unsynced,
            } => {
                file.write_all_at(bytes, *written)?;
                *written += bytes.len() as u64;
                *unsynced += bytes.len() as u64;
                if *unsynced >= SYNC_EVERY {
                    *unsynced = 0;
                    file.sync_data()?;
                }
                Ok(())
            }
        }
    }

    /// The bytes handed to the file system so far (the pace of the checkpoint counts these).
    pub fn written(&self) -> u64 {
        match self {
            CheckpointFile::Direct(w) => w.offset,
            CheckpointFile::Buffered { written, .. } => *written,
        }
    }

    /// Writes what is left and makes the file, its data and its length, durable (fsync).
    pub fn finish(self) -> io::Result<()> {
        match self {
            CheckpointFile::Direct(w) => w.finish(),
            CheckpointFile::Buffered { mut file, .. } => file.sync_all(),
        }
    }
}

/// Bytes gathered into an aligned chunk and written whole at aligned offsets, as direct I/O
/// requires; the last chunk is padded with zeros to a whole block, and the file then cut to
/// the bytes appended.
#[derive(Debug)]
pub struct DirectWriter {
    file: Box<dyn FsFile>,
    /// `DIRECT_CHUNK + DIRECT_BLOCK` bytes, holding an aligned chunk from `start`.
    buf: Vec<u8>,
    start: usize,
    /// The bytes of the chunk filled so far.
    filled: usize,
    /// The file offset the chunk goes to: the bytes written before it.
    offset: u64,
}

impl DirectWriter {
    fn new(file: Box<dyn FsFile>) -> Self {
        let buf = vec![0u8; DIRECT_CHUNK + DIRECT_BLOCK];
        let start = buf.as_ptr().align_offset(DIRECT_BLOCK);
        DirectWriter {
            file,
            buf,
            start,
            filled: 0,
            offset: 0,
        }
    }

    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = (DIRECT_CHUNK - self.filled).min(bytes.len());
            let at = self.start + self.filled;
            self.buf[at..at + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == DIRECT_CHUNK {
                self.write_chunk(DIRECT_CHUNK)?;
            }
        }
        Ok(())
    }

    /// Writes one block of zeros at the start of the file (the buffer is all zeros yet).
    fn write_probe(&mut self) -> io::Result<()> {
        self.file
            .write_all_at(&self.buf[self.start..self.start + DIRECT_BLOCK], 0)
    }

    /// Writes the first `len` bytes of the chunk (a whole number of blocks) and starts the
    /// next one.
    fn write_chunk(&mut self, len: usize) -> io::Result<()> {
        self.file
            .write_all_at(&self.buf[self.start..self.start + len], self.offset)?;
        self.offset += len as u64;
        self.filled = 0;
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        let len = self.offset + self.filled as u64;
        if self.filled > 0 {
            let padded = self.filled.next_multiple_of(DIRECT_BLOCK);
            self.buf[self.start + self.filled..self.start + padded].fill(0);
            self.write_chunk(padded)?;
        }
        // Cut to the bytes appended: past the last block's padding, or the probe's block.
        self.file.set_len(len)?;
        self.file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fs::StdFs;
    use super::*;

    /// A file opened for direct writes that then refuses every write, as some file systems do.
    #[derive(Debug)]
    struct RefusesWrites;

    impl FsFile for RefusesWrites {
        fn write_all_at(&mut self, _: &[u8], _: u64) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::InvalidInput))
        }
        fn sync_data(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn sync_all(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn set_len(&mut self, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn allocate(&mut self, _: u64) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_refused_direct_write_falls_back_to_the_page_cache() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let path = tmp.path().join("checkpoint");
        let mut file = CheckpointFile::direct_or_buffered(&StdFs, &path, Box::new(RefusesWrites))
            .expect("falls back");
        assert!(matches!(file, CheckpointFile::Buffered { .. }));
        file.write(b"checkpoint bytes").expect("write");
        file.finish().expect("finish");
        assert_eq!(std::fs::read(&path).expect("read"), b"checkpoint bytes");
    }

    /// Whatever the sizes of the pieces, the file holds exactly the bytes appended: through
    /// direct writes where the temp directory's file system allows them, and through the page
    /// cache (past a sync every `SYNC_EVERY`).
    #[test]
    fn a_checkpoint_file_holds_exactly_the_bytes_appended() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let sizes = [
            0,
            1,
            DIRECT_BLOCK,
            DIRECT_CHUNK - 1,
            DIRECT_CHUNK,
            3 * DIRECT_CHUNK + 7,
        ];
        let buffered_sizes = [0, 5, SYNC_EVERY as usize + 4097];
        let kinds = sizes
            .iter()
            .map(|&n| (n, false))
            .chain(buffered_sizes.iter().map(|&n| (n, true)));
        for (total, buffered) in kinds {
            let path = tmp.path().join(format!("checkpoint-{total}-{buffered}"));
            let bytes: Vec<u8> = (0..total).map(|i| (i * 7 % 251) as u8).collect();
            let mut file = if buffered {
                CheckpointFile::buffered(StdFs.create(&path).expect("create"))
            } else {
                CheckpointFile::create(&StdFs, &path).expect("create")
            };
            for piece in bytes.chunks(DIRECT_BLOCK / 3 + 1) {
                file.write(piece).expect("write");
            }
            file.finish().expect("finish");
            assert_eq!(std::fs::read(&path).expect("read"), bytes, "{total} bytes");
        }
    }
}
