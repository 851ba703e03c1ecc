//! The store owner: the one actor that holds the key space. It applies requests in arrival
//! order, gives each write its LSN, queues the records for the WAL writer (one `Append` per
//! tick), and holds every reply until the writes it depends on are durable. It also decides
//! when to checkpoint (log size, interval, SAVE/BGSAVE).
//!
//! **Invariant (nothing from the future):** a reply leaves only when every LSN it depends on
//! is released — synced under `always`, appended under `every`/`never`. A write depends on its
//! own LSN; a read depends on the last unreleased write to each key it read (or to any key,
//! for DBSIZE/KEYS/SCAN), so a reader cannot see a value that a crash could still lose.
//!
//! **Invariant (transactions are atomic and isolated):** EXEC runs its queued commands inside
//! one handler call, so no other request interleaves, and their writes become one
//! `Record::Txn` with one LSN (none when they wrote nothing): the log holds all of them or
//! none. Every applied record is shown to [`Transactions::touch`] so WATCH sees every change.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::Bytes;

use super::{
    Append, Appended, Batch, CheckpointDone, Replies, SessionClosed, SessionEvent, Shutdown,
    StartCheckpoint, SyncNow, WalWriter,
};
use crate::config::CheckpointConfig;
use moodb_core::backend::{BackendStatus, LogEntry, SyncPolicy};
use moodb_core::command::server::{render_config_get, render_info, InfoFigures};
use moodb_core::command::txn::{SessionId, Transactions};
use moodb_core::command::{self, Access, Command, ServerCommand, TxnCommand};
use moodb_core::keyspace::Keyspace;
use moodb_core::record::{Lsn, Record};
use moodb_core::resp::{Frame, Limits};

/// What the store owner needs to know about the server it runs in.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub sync: SyncPolicy,
    pub checkpoint: CheckpointConfig,
    pub limits: Limits,
    pub backend: String,
    pub data_dir: PathBuf,
    pub port: u16,
    /// The recovery report, for INFO.
    pub recovery: String,
}

/// A batch of replies waiting for its writes to become durable.
struct Waiting {
    seq: u64,
    reply_to: Recipient<Replies>,
    frames: Vec<Frame>,
    wait_lsn: Lsn,
    /// Positions of SAVE replies, which wait for the next checkpoint to finish.
    saves: Vec<usize>,
}

#[derive(Default)]
struct Checkpointing {
    /// LSN of the checkpoint being written.
    running: Option<Lsn>,
    /// Batches with a SAVE waiting for the running checkpoint.
    running_saves: Vec<Waiting>,
    /// Batches with a SAVE waiting for the next checkpoint.
    next_saves: Vec<Waiting>,
    bgsave_requested: bool,
    last_lsn: Option<Lsn>,
    last_started: Option<Instant>,
    completed: u64,
    failed: u64,
}

#[derive(Default)]
struct Stats {
    connected: u64,
    connections: u64,
    commands: u64,
    writes: u64,
}

/// Owner of the key space; see the module documentation.
pub struct StoreOwner {
    keyspace: Keyspace,
    settings: StoreSettings,
    wal: Option<Addr<WalWriter>>,
    started: Instant,
    /// LSN of the last write applied.
    last_lsn: Lsn,
    /// Writes through this LSN may be acknowledged.
    released_lsn: Lsn,
    /// Records of this tick, not yet sent to the WAL writer.
    tick: Vec<LogEntry>,
    flush_scheduled: bool,
    /// Last unreleased write to each key, and the same in LSN order for cleaning up.
    unreleased: HashMap<Bytes, Lsn>,
    unreleased_order: VecDeque<(Lsn, Bytes)>,
    /// LSN of the last FLUSHDB, which every read depends on until it is released.
    clear_lsn: Lsn,
    waiting: Vec<Waiting>,
    /// Empty; keeps its capacity for the next [`StoreOwner::release`].
    spare_waiting: Vec<Waiting>,
    storage_error: Option<String>,
    status: BackendStatus,
    checkpoint: Checkpointing,
    stats: Stats,
    /// Every session's MULTI queue and WATCHed keys.
    txns: Transactions,
}

impl StoreOwner {
    /// A store owner holding `state`, whose last record has LSN `last_lsn`. Give it its WAL
    /// writer with [`StoreOwner::set_wal`] before sending it batches (see `server.rs`).
    pub fn new(
        state: Keyspace,
        last_lsn: Lsn,
        status: BackendStatus,
        settings: StoreSettings,
    ) -> Self {
        StoreOwner {
            keyspace: state,
            settings,
            wal: None,
            started: Instant::now(),
            last_lsn,
            released_lsn: last_lsn,
            tick: Vec::new(),
            flush_scheduled: false,
            unreleased: HashMap::new(),
            unreleased_order: VecDeque::new(),
            clear_lsn: 0,
            waiting: Vec::new(),
            spare_waiting: Vec::new(),
            storage_error: None,
            checkpoint: Checkpointing {
                last_lsn: status.last_checkpoint_lsn,
                ..Default::default()
            },
            status,
            stats: Stats::default(),
            txns: Transactions::new(),
        }
    }

    /// Connects the WAL writer (created after the store owner, since each holds the other's
    /// address).
    pub fn set_wal(&mut self, wal: Addr<WalWriter>) {
        self.wal = Some(wal);
    }

    fn send_wal<M>(&self, msg: M)
    where
        M: Message + Send + 'static,
        M::Result: Send,
        WalWriter: Handler<M>,
    {
        if let Some(wal) = &self.wal {
            wal.do_send(msg);
        }
    }

    /// Sends the records of this tick to the WAL writer.
    fn flush_tick(&mut self) {
        self.flush_scheduled = false;
        if !self.tick.is_empty() {
            let entries = std::mem::take(&mut self.tick);
            self.send_wal(Append(entries));
        }
    }

    /// The LSN a reply touching `access` must wait for (0: none).
    fn read_dependency(&self, access: &Access) -> Lsn {
        let clear = if self.clear_lsn > self.released_lsn {
            self.clear_lsn
        } else {
            0
        };
        match access {
            Access::All => self.last_lsn,
            Access::Keys(keys) => keys
                .iter()
                .filter_map(|k| self.unreleased.get(k).copied())
                .fold(clear, Lsn::max),
        }
    }

    fn note_unreleased(&mut self, lsn: Lsn, record: &Record) {
        match record {
            Record::Set { key, .. } | Record::Update { key, .. } | Record::Delete { key } => {
                self.unreleased.insert(key.clone(), lsn);
                self.unreleased_order.push_back((lsn, key.clone()));
            }
            Record::Clear => self.clear_lsn = lsn,
            Record::Txn(ops) => ops.iter().for_each(|op| self.note_unreleased(lsn, op)),
        }
    }

    /// Gives `record` the next LSN and queues it for the WAL writer; returns the LSN.
    fn log(&mut self, record: Record) -> Lsn {
        self.stats.writes += 1;
        self.last_lsn += 1;
        let lsn = self.last_lsn;
        self.note_unreleased(lsn, &record);
        self.txns.touch(&record);
        self.tick.push(LogEntry { lsn, record });
        lsn
    }

    /// Executes one request of `session`; returns its reply and the LSN it waits for. `save`
    /// is set for SAVE, whose reply waits for the next checkpoint.
    fn execute(
        &mut self,
        session: SessionId,
        request: &[Bytes],
        now_ms: u64,
        save: &mut bool,
    ) -> (Frame, Lsn) {
        self.stats.commands += 1;
        // Inside MULTI: queued, run now or refused, as the command table says.
        let parsed = self.txns.admit(session, request, command::parse(request));
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(reply) => return (reply, 0),
        };
        match cmd {
            Command::Data(cmd) => {
                if cmd.is_write() {
                    if let Some(err) = &self.storage_error {
                        return (storage_refuses(err), 0);
                    }
                }
                let applied = cmd.apply(&mut self.keyspace, now_ms);
                let wait = match applied.record {
                    // The newest LSN: it covers whatever the write read, no lookup needed.
                    Some(record) => self.log(record),
                    None => self.read_dependency(&applied.access),
                };
                if wait > self.released_lsn {
                    if let Some(err) = &self.storage_error {
                        return (storage_refuses(err), 0);
                    }
                }
                (applied.reply, wait)
            }
            Command::Server(cmd) => (self.server_command(cmd, save), 0),
            Command::Txn(cmd) => self.transaction_command(session, cmd, now_ms),
        }
    }

    fn transaction_command(
        &mut self,
        session: SessionId,
        cmd: TxnCommand,
        now_ms: u64,
    ) -> (Frame, Lsn) {
        match cmd {
            TxnCommand::Multi => (self.txns.multi(session), 0),
            TxnCommand::Discard => (self.txns.discard(session), 0),
            TxnCommand::Watch(keys) => (self.txns.watch(session, keys, &self.keyspace, now_ms), 0),
            TxnCommand::Unwatch => (self.txns.unwatch(session), 0),
            TxnCommand::Exec => match self.txns.exec(session, &self.keyspace, now_ms) {
                Ok(commands) => self.exec(commands, now_ms),
                Err(reply) => (reply, 0),
            },
        }
    }

    /// Runs the commands of a transaction as one unit: one `Record::Txn` of all their writes
    /// (nothing when they wrote nothing); a command's runtime error is its own reply only.
    fn exec(&mut self, commands: Vec<Command>, now_ms: u64) -> (Frame, Lsn) {
        let writes = commands
            .iter()
            .any(|c| matches!(c, Command::Data(d) if d.is_write()));
        if writes {
            if let Some(err) = &self.storage_error {
                return (storage_refuses(err), 0);
            }
        }
        let mut replies = Vec::with_capacity(commands.len());
        let mut ops = Vec::new();
        let mut wait = 0;
        for cmd in commands {
            let reply = match cmd {
                Command::Data(cmd) => {
                    let applied = cmd.apply(&mut self.keyspace, now_ms);
                    wait = wait.max(self.read_dependency(&applied.access));
                    match applied.record {
                        Some(Record::Txn(inner)) => ops.extend(inner),
                        Some(record) => ops.push(record),
                        None => {}
                    }
                    applied.reply
                }
                // SAVE is refused while queueing; BGSAVE and the rest answer at once.
                Command::Server(cmd) => self.server_command(cmd, &mut false),
                // Only UNWATCH is queued; EXEC drops the watches anyway.
                Command::Txn(_) => Frame::ok(),
            };
            replies.push(reply);
        }
        if !ops.is_empty() {
            wait = self.log(Record::Txn(ops));
        }
        if wait > self.released_lsn {
            if let Some(err) = &self.storage_error {
                return (storage_refuses(err), 0);
            }
        }
        (Frame::Array(replies), wait)
    }

    fn server_command(&mut self, cmd: ServerCommand, save: &mut bool) -> Frame {
        match cmd {
            ServerCommand::Reply(frame) => frame,
            ServerCommand::Info(sections) => render_info(&self.info_figures(), &sections),
            ServerCommand::ConfigGet(patterns) => {
                render_config_get(&self.config_params(), &patterns)
            }
            ServerCommand::Save => {
                *save = true;
                Frame::ok()
            }
            ServerCommand::BgSave => {
                self.checkpoint.bgsave_requested = true;
                Frame::Simple("Background saving started".into())
            }
            ServerCommand::LastSave => Frame::Integer(
                self.status
                    .last_checkpoint_unix_ms
                    .map_or(0, |ms| (ms / 1000) as i64),
            ),
        }
    }

    fn config_params(&self) -> Vec<(&'static str, String)> {
        let s = &self.settings;
        let fsync = match s.sync {
            SyncPolicy::Always => "always",
            SyncPolicy::Every(_) => "everysec",
            SyncPolicy::Never => "no",
        };
        vec![
            ("save", String::new()),
            ("appendonly", "yes".into()),
            ("appendfsync", fsync.into()),
            ("port", s.port.to_string()),
            ("databases", "1".into()),
            ("dir", s.data_dir.display().to_string()),
            ("maxmemory", "0".into()),
            ("proto-max-bulk-len", s.limits.max_bulk_len.to_string()),
            ("moodb-backend", s.backend.clone()),
            ("moodb-sync", s.sync.to_string()),
            (
                "moodb-checkpoint-log-bytes",
                s.checkpoint.log_bytes.to_string(),
            ),
            (
                "moodb-checkpoint-interval-ms",
                s.checkpoint.interval_ms.to_string(),
            ),
        ]
    }

    fn info_figures(&self) -> InfoFigures {
        let st = &self.status;
        InfoFigures {
            tcp_port: self.settings.port,
            uptime_s: self.started.elapsed().as_secs(),
            backend: self.settings.backend.clone(),
            sync: self.settings.sync.to_string(),
            data_dir: self.settings.data_dir.display().to_string(),
            keys: self.keyspace.len() as u64,
            last_lsn: self.last_lsn,
            durable_lsn: st.durable_lsn,
            log_bytes: st.log_bytes,
            last_checkpoint_lsn: st.last_checkpoint_lsn,
            last_checkpoint_unix_ms: st.last_checkpoint_unix_ms,
            checkpoint_in_progress: self.checkpoint.running.is_some(),
            checkpoints_completed: self.checkpoint.completed,
            checkpoints_failed: self.checkpoint.failed,
            fsyncs: st.fsyncs,
            fsync_total_us: st.fsync_total.as_micros() as u64,
            fsync_max_us: st.fsync_max.as_micros() as u64,
            storage_error: self.storage_error.clone(),
            connected_clients: self.stats.connected,
            total_connections: self.stats.connections,
            total_commands: self.stats.commands,
            total_writes: self.stats.writes,
            recovery: self.settings.recovery.clone(),
        }
    }

    /// Sends every waiting batch whose writes are now released.
    fn release(&mut self) {
        let released = self.released_lsn;
        if released >= self.last_lsn {
            // Everything is released (the usual case after a group commit): drop the tracking
            // wholesale instead of one hash lookup and removal per key.
            self.unreleased.clear();
            self.unreleased_order.clear();
        }
        while let Some((lsn, _)) = self.unreleased_order.front() {
            if *lsn > released {
                break;
            }
            if let Some((lsn, key)) = self.unreleased_order.pop_front() {
                if let Entry::Occupied(e) = self.unreleased.entry(key) {
                    if *e.get() == lsn {
                        e.remove();
                    }
                }
            }
        }
        // One pass, keeping order, instead of a `Vec::remove` (a shift) per released batch.
        let mut still = std::mem::take(&mut self.spare_waiting);
        for w in self.waiting.drain(..) {
            if w.wait_lsn <= released {
                w.reply_to.do_send(Replies {
                    seq: w.seq,
                    frames: w.frames,
                });
            } else {
                still.push(w);
            }
        }
        self.spare_waiting = std::mem::replace(&mut self.waiting, still);
    }

    /// Starts a checkpoint if one is due and none is running.
    fn maybe_checkpoint(&mut self) {
        let c = &self.checkpoint;
        if c.running.is_some() || self.storage_error.is_some() {
            return;
        }
        let cfg = &self.settings.checkpoint;
        let new_writes = c.last_lsn.is_none_or(|l| self.last_lsn > l);
        let by_size = cfg.log_bytes > 0 && self.status.log_bytes >= cfg.log_bytes;
        let by_time = cfg.interval_ms > 0
            && c.last_started.unwrap_or(self.started).elapsed()
                >= Duration::from_millis(cfg.interval_ms);
        let asked = !c.next_saves.is_empty() || c.bgsave_requested;
        if !(asked || (new_writes && (by_size || by_time))) {
            return;
        }
        self.flush_tick();
        let lsn = self.last_lsn;
        let c = &mut self.checkpoint;
        c.running = Some(lsn);
        c.last_started = Some(Instant::now());
        c.bgsave_requested = false;
        c.running_saves = std::mem::take(&mut c.next_saves);
        self.send_wal(StartCheckpoint {
            lsn,
            state: self.keyspace.clone(),
        });
    }
}

fn storage_refuses(err: &str) -> Frame {
    command::ReplyError::StorageRefuses {
        cause: err.to_string(),
    }
    .into()
}

/// Runs the flush after the mailbox has drained.
#[derive(Message)]
#[rtype(result = "()")]
struct FlushTick;

impl Actor for StoreOwner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let interval = match self.settings.checkpoint.interval_ms {
            0 => 1000,
            ms => ms.clamp(10, 1000),
        };
        ctx.run_interval(Duration::from_millis(interval), |s, _| s.maybe_checkpoint());
    }
}

impl Handler<Batch> for StoreOwner {
    type Result = ();

    fn handle(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        let now_ms = now_ms();
        let mut frames = Vec::with_capacity(batch.requests.len());
        let mut wait_lsn = 0;
        let mut saves = Vec::new();
        for request in &batch.requests {
            let mut save = false;
            let (reply, wait) = self.execute(batch.session, request, now_ms, &mut save);
            if save {
                saves.push(frames.len());
            }
            frames.push(reply);
            wait_lsn = wait_lsn.max(wait);
        }
        if !self.tick.is_empty() && !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.notify(FlushTick);
        }
        let waiting = Waiting {
            seq: batch.seq,
            reply_to: batch.reply_to,
            frames,
            wait_lsn,
            saves,
        };
        if !waiting.saves.is_empty() {
            self.checkpoint.next_saves.push(waiting);
            if !self.flush_scheduled {
                self.flush_scheduled = true;
                ctx.notify(FlushTick);
            }
        } else if wait_lsn <= self.released_lsn {
            waiting.reply_to.do_send(Replies {
                seq: waiting.seq,
                frames: waiting.frames,
            });
        } else {
            self.waiting.push(waiting);
        }
    }
}

impl Handler<FlushTick> for StoreOwner {
    type Result = ();

    fn handle(&mut self, _: FlushTick, _: &mut Context<Self>) {
        self.flush_tick();
        self.maybe_checkpoint();
    }
}

impl Handler<Appended> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: Appended, _: &mut Context<Self>) {
        self.status = msg.status;
        match msg.result {
            Ok(lsn) => {
                self.released_lsn = self.released_lsn.max(lsn);
                self.release();
                self.maybe_checkpoint();
            }
            Err(err) => {
                // Nothing unreleased may be acknowledged, nor anything that read it.
                let c = &mut self.checkpoint;
                let saves = c.running_saves.drain(..).chain(c.next_saves.drain(..));
                let waiting: Vec<Waiting> = self.waiting.drain(..).chain(saves).collect();
                for w in waiting {
                    let frames = vec![storage_refuses(&err); w.frames.len()];
                    w.reply_to.do_send(Replies { seq: w.seq, frames });
                }
                self.storage_error = Some(err);
            }
        }
    }
}

impl Handler<CheckpointDone> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: CheckpointDone, _: &mut Context<Self>) {
        self.status = msg.status;
        let c = &mut self.checkpoint;
        let lsn = c.running.take();
        let err = match msg.result {
            Ok(report) => {
                c.completed += 1;
                c.last_lsn = Some(report.lsn);
                None
            }
            Err(err) => {
                c.failed += 1;
                c.last_lsn = lsn.or(c.last_lsn);
                eprintln!("moodb: checkpoint failed: {err}");
                Some(err)
            }
        };
        for mut w in std::mem::take(&mut c.running_saves) {
            if let Some(err) = &err {
                for &i in &w.saves {
                    w.frames[i] = Frame::err(format!("checkpoint failed: {err}"));
                }
            }
            self.waiting.push(w);
        }
        self.release();
        self.maybe_checkpoint();
    }
}

impl Handler<SessionEvent> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: SessionEvent, _: &mut Context<Self>) {
        if msg.0 {
            self.stats.connected += 1;
            self.stats.connections += 1;
        } else {
            self.stats.connected = self.stats.connected.saturating_sub(1);
        }
    }
}

impl Handler<SessionClosed> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: SessionClosed, _: &mut Context<Self>) {
        self.txns.session_closed(msg.0);
    }
}

impl Handler<Shutdown> for StoreOwner {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.flush_tick();
        let wal = self.wal.clone();
        Box::pin(async move {
            match wal {
                Some(wal) => wal
                    .send(SyncNow)
                    .await
                    .map_err(|e| format!("WAL writer gone: {e}"))?,
                None => Ok(()),
            }
        })
    }
}

/// Wall-clock time in Unix milliseconds (expiry is absolute).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
