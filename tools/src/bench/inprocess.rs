//! The in-process target: the server's data path without the network. One writer thread owns
//! the `Box<dyn Backend>` and the `Keyspace` (as the server's store owner does); each client
//! thread sends one operation at a time over a channel and waits for its reply.
//!
//! The writer blocks for the first request, then drains everything else already queued (a
//! group). It applies the group to the key space in arrival order, giving each write an LSN,
//! appends all the group's records with one `Backend::append` (group commit: with N clients a
//! group holds up to N writes and costs one sync), and then replies. Reads are served by the
//! writer from its key space too, in arrival order, so they cost the same thread hop as in the
//! server; a read replies at once unless its key was written earlier in the same group, in
//! which case it waits for that group's append (a read never sees a write that is not yet
//! durable under `sync = always`). A transaction (workload `txn`) is one `Record::Txn`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use moodb_backends::BackendOptions;
use moodb_core::{Backend, Keyspace, LogEntry, Lsn, Record, StorageError};

use super::runner::{self, RunResult};
use super::workload::{self, Op, Workload};
use super::{BenchError, Client};

/// Records per `append` when filling the key space before a run.
pub const FILL_GROUP: u64 = 1000;

/// A backend opened and recovered, with its state, ready to be filled or run.
pub struct Target {
    pub name: String,
    pub backend: Box<dyn Backend>,
    pub state: Keyspace,
    pub last_lsn: Lsn,
}

/// What the writer thread did during a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    /// `append` calls (groups containing at least one write).
    pub appends: u64,
    /// Records appended.
    pub records: u64,
}

/// The outcome of one in-process run.
#[derive(Debug)]
pub struct InProcessResult {
    pub run: RunResult,
    pub writer: WriterStats,
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

/// The writer thread: group, apply, append once, reply. Ends when every client has gone.
fn writer_loop(
    mut target: Target,
    inbox: &Receiver<Request>,
    reply_to: &[Sender<Reply>],
) -> (Target, WriterStats) {
    let mut stats = WriterStats::default();
    let mut group = Vec::new();
    let mut entries = Vec::new();
    let mut waiting = Vec::new();
    let mut written: HashSet<Bytes> = HashSet::new();
    while let Ok(first) = inbox.recv() {
        group.push(first);
        group.extend(inbox.try_iter());
        let now = now_ms();
        for Request { client, op } in group.drain(..) {
            match op {
                Op::Get(key) => {
                    let found = target.state.get_live(&key, now).is_some();
                    std::hint::black_box(found);
                    if written.contains(&key) {
                        waiting.push(client);
                    } else {
                        let _ = reply_to[client].send(Reply::Done);
                    }
                }
                Op::Set(key, value) => {
                    target.last_lsn += 1;
                    let record = Record::Set {
                        key: key.clone(),
                        value,
                        expires_at_ms: None,
                    };
                    target.state.apply(&record);
                    written.insert(key);
                    entries.push(LogEntry {
                        lsn: target.last_lsn,
                        record,
                    });
                    waiting.push(client);
                }
                Op::Txn(sets) => {
                    target.last_lsn += 1;
                    let ops = sets
                        .into_iter()
                        .map(|(key, value)| {
                            written.insert(key.clone());
                            Record::Set {
                                key,
                                value,
                                expires_at_ms: None,
                            }
                        })
                        .collect();
                    let record = Record::Txn(ops);
                    target.state.apply(&record);
                    entries.push(LogEntry {
                        lsn: target.last_lsn,
                        record,
                    });
                    waiting.push(client);
                }
            }
        }
        let reply = if entries.is_empty() {
            Reply::Done
        } else {
            stats.appends += 1;
            stats.records += entries.len() as u64;
            match target.backend.append(&entries) {
                Ok(_) => Reply::Done,
                Err(err) => Reply::Failed(format!("backend {}: {err}", target.name)),
            }
        };
        for client in waiting.drain(..) {
            let reply = match &reply {
                Reply::Done => Reply::Done,
                Reply::Failed(message) => Reply::Failed(message.clone()),
            };
            let _ = reply_to[client].send(reply);
        }
        entries.clear();
        written.clear();
    }
    (target, stats)
}
