//! The in-process target: the server's own pipeline without the network. One writer thread
//! runs the core's [`Store`] (the state machine the server's store owner runs) and its
//! [`GroupCommit`] (the commit path the server's WAL writer runs); each client thread sends one
//! operation at a time over a channel, as a RESP request would arrive, and waits for its reply.
//!
//! The writer blocks for the first request, then drains everything else already queued (a
//! tick). Each request is executed by the store as one batch of its client's session
//! (`GET k`, `SET k v`, or `MULTI`, `SET`s, `EXEC` for a transaction), which parses it with the
//! command table, applies it, gives each write an LSN and holds its reply; then the tick's
//! records are appended as one group (one `Backend::append`, one sync under `always`) and the
//! replies the store releases go out. So reads wait exactly as in the server: only for a
//! not-yet-durable write to a key they read.

use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use moodb_backends::BackendOptions;
use moodb_core::group_commit::{CommitStats, GroupCommit};
use moodb_core::resp::{Frame, Limits};
use moodb_core::store::{CheckpointConfig, Release, Store, StoreSettings};
use moodb_core::{Backend, Databases, LogEntry, Lsn, Record, StorageError, SyncPolicy};

use super::runner::{self, RunResult};
use super::workload::{self, Op, Workload};
use super::{BenchError, Client};

/// Records per `append` when filling the key space before a run.
pub const FILL_GROUP: u64 = 1000;

/// A backend opened and recovered, with its state, ready to be filled or run.
pub struct Target {
    pub name: String,
    pub backend: Box<dyn Backend>,
    pub state: Databases,
    pub last_lsn: Lsn,
    /// The sync policy the backend was opened with (for INFO-like settings of the store).
    pub sync: SyncPolicy,
    pub dir: std::path::PathBuf,
}

/// The outcome of one in-process run.
#[derive(Debug)]
pub struct InProcessResult {
    pub run: RunResult,
    /// What the writer thread's commit path did: groups appended and records in them.
    pub writer: CommitStats,
    /// Syncs the backend counted during the run.
    pub fsyncs: u64,
    /// Time the backend spent in those syncs.
    pub fsync_time: Duration,
}

fn storage(backend: &str) -> impl Fn(StorageError) -> BenchError + '_ {
    move |source| BenchError::Storage {
        backend: backend.to_string(),
        source,
    }
}

impl Target {
    /// Opens backend `name` in `dir` and recovers it.
    pub fn open(name: &str, dir: &Path, options: &BackendOptions) -> Result<Self, BenchError> {
        let mut backend = moodb_backends::open(name, dir, options).map_err(storage(name))?;
        let recovered = backend.recover().map_err(storage(name))?;
        Ok(Target {
            name: name.to_string(),
            backend,
            state: recovered.state,
            last_lsn: recovered.last_lsn,
            sync: options.sync,
            dir: dir.to_path_buf(),
        })
    }

    /// Sets keys `0..keys` to values of `value_size` bytes, `FILL_GROUP` records per append,
    /// then syncs.
    pub fn fill(&mut self, keys: u64, value_size: usize) -> Result<(), BenchError> {
        let value = workload::value(value_size, 0);
        let mut entries = Vec::with_capacity(FILL_GROUP as usize);
        let mut next = 0;
        while next < keys {
            entries.clear();
            for n in next..keys.min(next + FILL_GROUP) {
                self.last_lsn += 1;
                let record = Record::Set {
                    key: workload::key(n),
                    value: value.clone(),
                    expires_at_ms: None,
                };
                self.state.apply(&record);
                entries.push(LogEntry {
                    lsn: self.last_lsn,
                    record,
                });
            }
            next += FILL_GROUP;
            self.backend.append(&entries).map_err(storage(&self.name))?;
        }
        self.backend.sync().map_err(storage(&self.name))
    }

    /// Runs `workload` through a writer thread that owns the backend; gives the backend back.
    pub fn run(
        self,
        workload: &Workload,
        label: &str,
    ) -> Result<(Self, InProcessResult), BenchError> {
        let before = self.backend.status();
        let (requests, inbox) = channel::<Request>();
        let mut reply_to = Vec::with_capacity(workload.clients);
        let mut clients: Vec<Box<dyn Client>> = Vec::with_capacity(workload.clients);
        for id in 0..workload.clients {
            let (tx, rx) = channel();
            reply_to.push(tx);
            clients.push(Box::new(ChannelClient {
                id,
                requests: requests.clone(),
                replies: rx,
            }));
        }
        drop(requests);
        let name = self.name.clone();
        let writer = thread::Builder::new()
            .name(format!("bench-writer-{name}"))
            .spawn(move || writer_loop(self, &inbox, &reply_to))
            .map_err(|source| BenchError::Io {
                context: "start the bench writer thread".into(),
                source,
            })?;
        let run = runner::run(clients, workload, label);
        // The clients are gone once `run` returns, so the writer's inbox closes and it ends.
        let (target, writer_stats) = writer
            .join()
            .map_err(|_| BenchError::WriterGone(format!("the {name} writer thread panicked")))?;
        let run = run?;
        let after = target.backend.status();
        Ok((
            target,
            InProcessResult {
                run,
                writer: writer_stats,
                fsyncs: after.fsyncs.saturating_sub(before.fsyncs),
                fsync_time: after.fsync_total.saturating_sub(before.fsync_total),
            },
        ))
    }
}

struct Request {
    client: usize,
    op: Op,
}

enum Reply {
    Done,
    Failed(String),
}

/// A client thread's handle: sends a request, waits for the reply.
struct ChannelClient {
    id: usize,
    requests: Sender<Request>,
    replies: Receiver<Reply>,
}

impl Client for ChannelClient {
    fn execute(&mut self, op: &Op) -> Result<(), BenchError> {
        let gone = || BenchError::WriterGone("its channel closed".into());
        self.requests
            .send(Request {
                client: self.id,
                op: op.clone(),
            })
            .map_err(|_| gone())?;
        match self.replies.recv().map_err(|_| gone())? {
            Reply::Done => Ok(()),
            Reply::Failed(message) => Err(BenchError::WriterGone(message)),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The RESP request (or, for a transaction, the pipelined requests) a client sends for `op`.
fn requests(op: Op) -> Vec<Vec<Bytes>> {
    match op {
        Op::Get(key) => vec![vec![Bytes::from_static(b"GET"), key]],
        Op::Set(key, value) => vec![vec![Bytes::from_static(b"SET"), key, value]],
        Op::Txn(sets) => {
            let mut batch = Vec::with_capacity(sets.len() + 2);
            batch.push(vec![Bytes::from_static(b"MULTI")]);
            for (key, value) in sets {
                batch.push(vec![Bytes::from_static(b"SET"), key, value]);
            }
            batch.push(vec![Bytes::from_static(b"EXEC")]);
            batch
        }
    }
}

/// The reply a client gets for a released batch: an error reply fails the run.
fn reply(release: &Release<usize>) -> Reply {
    match release.frames.iter().find_map(|f| match f {
        Frame::Error(e) => Some(e.clone()),
        _ => None,
    }) {
        Some(e) => Reply::Failed(format!("-{e}")),
        None => Reply::Done,
    }
}

/// The writer thread: execute a tick's requests on the store, commit its records as one
/// group, send the released replies. Ends when every client has gone.
fn writer_loop(
    target: Target,
    inbox: &Receiver<Request>,
    reply_to: &[Sender<Reply>],
) -> (Target, CommitStats) {
    let Target {
        name,
        backend,
        state,
        last_lsn,
        sync,
        dir,
    } = target;
    let settings = StoreSettings {
        notify_keyspace_events: Default::default(),
        sync,
        // The bench measures the write path; checkpoints have their own bench (recovery).
        checkpoint: CheckpointConfig {
            log_bytes: 0,
            interval_ms: 0,
            write_rate: 0,
        },
        limits: Limits::default(),
        databases: 16,
        backend: name.clone(),
        data_dir: dir.clone(),
        port: 0,
        process_id: std::process::id(),
        recovery: String::new(),
        // The server's clock, so the bench pays for timing each command as the server does.
        host: std::sync::Arc::new(moodb_server::host::ServerHost::new(None)),
        ..StoreSettings::default()
    };
    let status = backend.status();
    let mut store: Store<usize> = Store::new(state, last_lsn, status, settings, now_ms());
    let mut log = GroupCommit::new(backend);
    let mut tick = Vec::new();
    let mut released = Vec::new();
    while let Ok(first) = inbox.recv() {
        tick.push(first);
        tick.extend(inbox.try_iter());
        let now = now_ms();
        for Request { client, op } in tick.drain(..) {
            let session = client as u64;
            if let Some(release) = store.execute(session, &requests(op), client, now) {
                released.push(release);
            }
        }
        match log.commit(&store.take_records()) {
            Some(Ok(lsn)) => store.on_durable(lsn, log.status(), &mut released),
            Some(Err(err)) => store.on_storage_failure(err, log.status(), &mut released),
            None => {}
        }
        for release in released.drain(..) {
            let _ = reply_to[release.to].send(reply(&release));
        }
    }
    let stats = log.stats();
    let (state, last_lsn) = store.into_state();
    let target = Target {
        name,
        backend: log.into_backend(),
        state,
        last_lsn,
        sync,
        dir,
    };
    (target, stats)
}
