//! The store: MooDB as a deterministic state machine. It owns the key space, the LSNs, the
//! durability gate (which replies may leave), transactions and WATCH, and the checkpoint
//! triggers. It does no I/O and knows no actor framework: time is passed in, the records it
//! decides on are taken out with [`Store::take_records`] and appended by the caller, and the
//! caller reports back what became durable ([`Store::on_durable`]) or failed
//! ([`Store::on_storage_failure`]). The server's store-owner actor, the in-process bench and
//! the tests all drive this same type.
//!
//! A reply batch is addressed with a tag `T` chosen by the caller (the actor uses the
//! session's address, the bench a client number) and comes back in a [`Release`].
//!
//! **Invariant (acknowledged ⇒ durable, nothing from the future):** a batch's replies are
//! released only once every LSN they depend on is released; see [`gate`].
//!
//! **Invariant (transactions are atomic and isolated):** EXEC runs its queued commands inside
//! one [`Store::execute`] call, so no other request interleaves, and their writes become one
//! `Record::Txn` with one LSN (none when they wrote nothing): the log holds all of them or
//! none. Every applied record is shown to [`Transactions::touch`] so WATCH sees every change.

pub mod checkpoint;
pub mod clients;
pub mod gate;
pub mod host;
mod messages;
pub mod replica;
pub mod spill;
pub mod stats;

use std::collections::VecDeque;
use std::path::PathBuf;

use bytes::Bytes;

use crate::backend::{BackendStatus, CheckpointReport, LogEntry, SyncPolicy};
use crate::command::config::{self, PubSubLimits};
use crate::command::databases::{self, DbCommand};
use crate::command::diagnostics::{self, LatencyCommand, SlowLogCommand};
use crate::command::info::{render_info, InfoFigures};
use crate::command::server::{ClientCommand, ShutdownMode};
use crate::command::table;
use crate::command::txn::{Emptying, SessionId, Transactions};
use crate::command::{self, Access, Command, Context, ReplyError, ServerCommand, TxnCommand};
use crate::error::StorageError;
use crate::fast_map::FastMap;
use crate::keyspace::Databases;
use crate::pubsub::{KeyEvent, NotifyFlags, PubSub};
use crate::record::{Lsn, Record};
use crate::resp::{Frame, Limits, Protocol};

pub use checkpoint::CheckpointConfig;
pub use gate::Release;
pub use replica::{Replica, Replication};

use checkpoint::Checkpoints;
use clients::{Clients, Peer, SessionControl};
use gate::{DurabilityGate, Waiting};
use host::SharedHost;
pub use spill::{MaxmemoryPolicy, MemorySettings, COMPACT_BELOW_PERCENT};
use stats::{LatencyMonitor, SlowLog, Stats};

/// What the store needs to know about the server it runs in.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub sync: SyncPolicy,
    pub checkpoint: CheckpointConfig,
    pub limits: Limits,
    /// Number of databases (SELECT 0 to `databases - 1`).
    pub databases: usize,
    pub backend: String,
    pub data_dir: PathBuf,
    pub port: u16,
    /// The server's process id, for INFO (the store itself asks the OS nothing).
    pub process_id: u32,
    /// The recovery report, for INFO.
    pub recovery: String,
    /// Keyspace notifications (`notify-keyspace-events`; CONFIG SET changes it).
    pub notify_keyspace_events: NotifyFlags,
    /// The output limit of clients with subscriptions (the sessions apply it).
    pub pubsub: PubSubLimits,
    /// The password clients must AUTH with (the sessions check it; CONFIG GET shows it).
    pub requirepass: Option<String>,
    /// Commands taking at least this many µs go to the slow log (negative: none; 0: all).
    pub slowlog_log_slower_than: i64,
    /// Entries the slow log keeps.
    pub slowlog_max_len: u64,
    /// Latency events of at least this many ms are recorded (0: none).
    pub latency_monitor_threshold: u64,
    /// The monotonic clock, the process's figures and the configuration file.
    pub host: SharedHost,
    /// `maxmemory`, its policy and the value store spilled values go to (`store/spill.rs`).
    pub memory: MemorySettings,
}

/// Redis's defaults for what MooDB's configuration adds to the store's settings.
pub const SLOWLOG_LOG_SLOWER_THAN: i64 = 10_000;
pub const SLOWLOG_MAX_LEN: u64 = 128;

impl Default for StoreSettings {
    /// Defaults everywhere (Redis's where Redis has one) and a [`host::FakeHost`] whose clock
    /// stands still: for tests and tools; the server passes its own host.
    fn default() -> Self {
        StoreSettings {
            sync: SyncPolicy::Always,
            checkpoint: CheckpointConfig::default(),
            limits: Limits::default(),
            databases: 16,
            backend: String::new(),
            data_dir: PathBuf::from("moodb-data"),
            port: 6380,
            process_id: 0,
            recovery: String::new(),
            notify_keyspace_events: NotifyFlags::default(),
            pubsub: PubSubLimits::default(),
            requirepass: None,
            slowlog_log_slower_than: SLOWLOG_LOG_SLOWER_THAN,
            slowlog_max_len: SLOWLOG_MAX_LEN,
            latency_monitor_threshold: 0,
            host: host::FakeHost::stepping(0),
            memory: MemorySettings::default(),
        }
    }
}

/// Settings for unit tests: the defaults with a fake clock stepping 1 µs per reading.
#[cfg(test)]
pub(crate) fn test_settings() -> StoreSettings {
    StoreSettings {
        host: host::FakeHost::stepping(1000),
        ..StoreSettings::default()
    }
}

/// A checkpoint to run: every database as of `lsn` (an O(1) clone each).
#[derive(Debug)]
pub struct CheckpointStart {
    /// Records through `lsn` not yet taken: append them before the checkpoint begins, since
    /// the log must hold everything the checkpoint covers.
    pub records: Vec<LogEntry>,
    pub lsn: Lsn,
    pub state: Databases,
}

/// Keys with a TTL looked at per round of [`Store::expire_cycle`] (Redis's
/// `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const EXPIRE_CYCLE_SAMPLE: usize = 20;
/// Most keys one [`Store::expire_cycle`] call deletes.
pub const EXPIRE_CYCLE_BUDGET: usize = 10_000;

/// The state machine; see the module documentation.
#[derive(Debug)]
pub struct Store<T> {
    dbs: Databases,
    /// Each session's selected database, when it is not 0 (as the transaction state is kept
    /// per session): database-0-only clients cost one lookup in an empty map.
    selected: FastMap<SessionId, u16>,
    /// What the store knows of each connection (name, addresses, last command, flags).
    clients: Clients,
    /// The clock of the batch executing (Unix µs), for TIME and MONITOR.
    now_us: u64,
    /// Bytes of the arguments of the request executing (`argv-mem`).
    argv_len: u64,
    /// The reply of the request executing is not sent (SHUTDOWN's).
    no_reply: bool,
    /// SHUTDOWN asked for; `shutdown_ready` once the caller may exit (after its checkpoint
    /// when it saves).
    shutdown: Option<ShutdownMode>,
    shutdown_in_checkpoint: bool,
    shutdown_ready: bool,
    /// What the caller is to do to sessions (CLIENT KILL, MONITOR): [`Store::take_controls`].
    controls: Vec<(SessionId, SessionControl)>,
    settings: StoreSettings,
    started_ms: u64,
    /// LSN of the last write applied.
    last_lsn: Lsn,
    /// Records decided on and not yet taken by the caller to be logged, in LSN order.
    records: Vec<LogEntry>,
    /// A SAVE arrived since the last [`Store::checkpoint_due`].
    save_asked: bool,
    gate: DurabilityGate<T>,
    /// Set once the storage failed: writes are refused with it from then on.
    storage_error: Option<StorageError>,
    status: BackendStatus,
    checkpoints: Checkpoints<T>,
    stats: Stats,
    slowlog: SlowLog,
    latency: LatencyMonitor,
    /// CONFIG SET changed the settings since [`Store::take_settings_change`].
    settings_changed: bool,
    /// The last time passed in (execute, tick), for events reported without one (fsyncs).
    now_ms: u64,
    used_memory_peak: u64,
    /// The backend's fsync figures already looked at for the latency monitor.
    fsyncs_seen: (u64, std::time::Duration),
    /// This run's id (INFO `run_id`, `master_replid`): 40 hex digits drawn at start.
    run_id: String,
    /// Every session's MULTI queue and WATCHed keys.
    txns: Transactions,
    /// Values moved to disk past `maxmemory` (`store/spill.rs`).
    spiller: spill::Spiller,
    /// Channel and pattern subscriptions.
    pubsub: PubSub,
    /// Messages for other sessions than the one executing, waiting for the LSN they follow
    /// to be released (a keyspace notification leaves only once its write is durable), in
    /// the order they were published.
    held_pushes: VecDeque<(Lsn, SessionId, Frame)>,
    /// Messages that may leave now, for the caller to deliver ([`Store::take_pushes`]).
    pushes: Vec<(SessionId, Frame)>,
    /// The session whose request is executing, and the messages for it, which go into its
    /// batch's replies before the reply of the request (Redis writes them into its output
    /// buffer at once, before the command's reply).
    executing: SessionId,
    own_pushes: Vec<Frame>,
    /// The LSN the messages in `own_pushes` follow (their batch waits for it; subscription
    /// confirmations follow nothing).
    own_wait: Lsn,
    /// Inside EXEC: messages wait in `deferred` until the transaction's record is logged, so
    /// none leaves before the transaction's writes are durable.
    deferring: bool,
    deferred: Vec<(SessionId, Frame)>,
    /// Keyspace notifications of the request executing, each with its database.
    events: Vec<(u16, KeyEvent)>,
    /// State of the generator behind [`Context::random`] (splitmix64), seeded from the start
    /// time: a run given the same times draws the same numbers.
    rng: u64,
    /// Cluster mode: what ROLE and INFO replication say ([`Store::set_replication`]).
    replication: Option<Replication>,
    /// WAIT (each session's last write, the replicas' progress, blocked batches) and
    /// SENTINEL's view (`store/replica.rs`).
    waits: replica::Waits<T>,
}

impl<T> Store<T> {
    /// A store holding `state`, whose last record (durable) has LSN `last_lsn`, started at
    /// `now_ms` (Unix milliseconds). It holds `settings.databases` databases (more if `state`
    /// has keys past them: the caller refuses that at start-up).
    pub fn new(
        state: impl Into<Databases>,
        last_lsn: Lsn,
        status: BackendStatus,
        settings: StoreSettings,
        now_ms: u64,
    ) -> Self {
        let mut dbs = state.into();
        dbs.grow_to(settings.databases);
        let fsyncs_seen = (status.fsyncs, status.fsync_total);
        let run_id = run_id(now_ms, settings.process_id);
        let may_hold_spilled = dbs.iter().any(|(_, ks)| ks.memory().spilled_keys > 0);
        Store {
            dbs,
            selected: FastMap::default(),
            clients: Clients::default(),
            now_us: now_ms * 1000,
            argv_len: 0,
            no_reply: false,
            shutdown: None,
            shutdown_in_checkpoint: false,
            shutdown_ready: false,
            controls: Vec::new(),
            settings,
            started_ms: now_ms,
            last_lsn,
            records: Vec::new(),
            save_asked: false,
            gate: DurabilityGate::new(last_lsn),
            storage_error: None,
            checkpoints: Checkpoints::new(status.last_checkpoint_lsn, now_ms),
            status,
            stats: Stats::default(),
            slowlog: SlowLog::default(),
            latency: LatencyMonitor::default(),
            settings_changed: false,
            now_ms,
            used_memory_peak: 0,
            fsyncs_seen,
            run_id,
            txns: Transactions::new(),
            spiller: spill::Spiller::new(may_hold_spilled),
            pubsub: PubSub::new(),
            held_pushes: VecDeque::new(),
            pushes: Vec::new(),
            executing: 0,
            own_pushes: Vec::new(),
            own_wait: 0,
            deferring: false,
            deferred: Vec::new(),
            events: Vec::new(),
            rng: now_ms,
            replication: None,
            waits: replica::Waits::default(),
        }
    }

    /// The context a data command runs in at `now_ms`, with a fresh random number.
    fn context(&mut self, now_ms: u64) -> Context {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Context {
            now_ms,
            max_bulk_len: self.settings.limits.max_bulk_len,
            random: z ^ (z >> 31),
        }
    }

    /// The databases and the LSN of the last write applied, giving up the store.
    pub fn into_state(self) -> (Databases, Lsn) {
        (self.dbs, self.last_lsn)
    }

    /// The database `session` has selected.
    pub fn selected_db(&self, session: SessionId) -> u16 {
        if self.selected.is_empty() {
            return 0;
        }
        self.selected.get(&session).copied().unwrap_or(0)
    }

    fn select(&mut self, session: SessionId, db: u16) {
        if db == 0 {
            self.selected.remove(&session);
        } else {
            self.selected.insert(session, db);
        }
    }

    /// LSN of the last write applied.
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }

    /// Executes the requests of one batch of `session` in order, at `now_ms`. Returns the
    /// replies when they may leave now; otherwise the store holds them, and a later
    /// [`Store::on_durable`] (or [`Store::on_checkpoint_done`], for SAVE) releases them.
    pub fn execute<R: AsRef<[Bytes]>>(
        &mut self,
        session: SessionId,
        requests: &[R],
        to: T,
        now_ms: u64,
    ) -> Option<Release<T>> {
        self.execute_in(session, Protocol::Resp2, requests, to, now_ms * 1000)
    }

    /// [`Store::execute`] for a session speaking `proto` (a RESP2 session that has
    /// subscriptions may send only the subscription commands, PING, QUIT and RESET), at
    /// `now_us` (Unix µs: TIME and MONITOR show it). Messages for the session itself go into
    /// its replies; those for others are taken with [`Store::take_pushes`].
    pub fn execute_in<R: AsRef<[Bytes]>>(
        &mut self,
        session: SessionId,
        proto: Protocol,
        requests: &[R],
        to: T,
        now_us: u64,
    ) -> Option<Release<T>> {
        let now_ms = now_us / 1000;
        if self.clients.is_killed(session) {
            // CLIENT KILL closed it: what it sent after that is not run (nor answered).
            return None;
        }
        if self.clients.get(session).is_none() {
            // A caller that does not report connections (golden scripts, the bench).
            self.clients.open(session, Peer::default(), now_ms);
        }
        self.now_us = now_us;
        let mut frames = Vec::with_capacity(requests.len());
        let mut wait_lsn = 0;
        let mut saves = Vec::new();
        let mut wait_slots = Vec::new();
        let mut wait_deadline: Option<u64> = None;
        self.executing = session;
        for request in requests {
            let request = request.as_ref();
            let mut save = false;
            let named = table::resolve(request);
            let command = self
                .clients
                .touch(session, named, request.len(), proto, now_ms);
            self.argv_len = request.iter().map(|a| a.len() as u64).sum();
            let lsn_before = self.last_lsn;
            let (reply, wait) = self.execute_one(session, proto, request, named, now_ms, &mut save);
            if self.last_lsn > lsn_before {
                self.waits.note_write(session, self.last_lsn);
            }
            self.after_request(session, request, named, command, &reply);
            frames.append(&mut self.own_pushes);
            let wait = wait.max(std::mem::take(&mut self.own_wait));
            let dropped = self.clients.drops_reply(session) || std::mem::take(&mut self.no_reply);
            if let Some((numreplicas, target, deadline)) = self.waits.pending.take() {
                wait_slots.push(replica::WaitSlot {
                    at: frames.len(),
                    numreplicas,
                    target,
                });
                if deadline > 0 {
                    wait_deadline = Some(wait_deadline.map_or(deadline, |d| d.min(deadline)));
                }
            }
            if save {
                saves.push(frames.len());
                frames.push(reply);
            } else if !dropped {
                frames.push(reply);
            }
            wait_lsn = wait_lsn.max(wait);
        }
        self.spill_step(spill::BATCH_BUDGET);
        let waiting = Waiting {
            to,
            frames,
            wait_lsn,
            saves,
        };
        if !wait_slots.is_empty() && waiting.saves.is_empty() {
            // Without a deadline only when every WAIT of the batch waits for ever.
            self.block_in_wait(session, waiting, wait_slots, wait_deadline);
            None
        } else if !waiting.saves.is_empty() {
            self.save_asked = true;
            self.checkpoints.next_saves.push(waiting);
            None
        } else if wait_lsn <= self.gate.released_lsn() {
            Some(waiting.release())
        } else {
            self.gate.hold(waiting);
            None
        }
    }

    /// Whether the caller has work to do for the store before it sleeps: records to log, or a
    /// SAVE asking for a checkpoint.
    pub fn wants_flush(&self) -> bool {
        !self.records.is_empty() || self.save_asked
    }

    /// Whether records wait to be taken and logged.
    pub fn has_records(&self) -> bool {
        !self.records.is_empty()
    }

    /// The records decided on since the last call, in LSN order, for the caller to append.
    pub fn take_records(&mut self) -> Vec<LogEntry> {
        std::mem::take(&mut self.records)
    }

    /// Records through `lsn` are durable (synced under `always`; appended under the other
    /// policies): moves every batch that may now leave into `out`.
    pub fn on_durable(&mut self, lsn: Lsn, status: BackendStatus, out: &mut Vec<Release<T>>) {
        self.note_fsyncs(&status);
        self.status = status;
        self.gate.release(lsn, self.last_lsn, out);
        self.release_pushes();
    }

    /// The storage failed: nothing unreleased may be acknowledged, nor anything that read it.
    /// Every waiting batch is answered with the failure; writes are refused from now on,
    /// reads of durable data go on.
    pub fn on_storage_failure(
        &mut self,
        err: StorageError,
        status: BackendStatus,
        out: &mut Vec<Release<T>>,
    ) {
        self.status = status;
        self.refuse_waiting(&storage_refuses(&err), out);
        if self.storage_error.is_none() {
            self.storage_error = Some(err);
        }
    }

    /// Answers every batch still waiting (for a write that will never be durable or
    /// committed, or a read of one), and every SAVE, with `refusal`; drops the held messages
    /// and the records not yet taken. Subscription confirmations stand; messages after lost
    /// writes never leave.
    fn refuse_waiting(&mut self, refusal: &Frame, out: &mut Vec<Release<T>>) {
        let c = &mut self.checkpoints;
        let saves = c.running_saves.drain(..).chain(c.next_saves.drain(..));
        let blocked = self.waits.take_blocked();
        for w in self.gate.take_all().chain(saves).chain(blocked) {
            let frames = w
                .frames
                .into_iter()
                .filter(|f| !messages::is_message(f))
                .map(|f| {
                    if messages::is_confirmation(&f) {
                        f
                    } else {
                        refusal.clone()
                    }
                })
                .collect();
            out.push(Release { frames, to: w.to });
        }
        self.held_pushes.clear();
        self.records.clear();
    }

    /// A checkpoint to start now, if one is due (log size, interval, SAVE/BGSAVE) and none is
    /// running. It carries the records not yet taken, which the caller appends first.
    pub fn checkpoint_due(&mut self, now_ms: u64) -> Option<CheckpointStart> {
        self.save_asked = false;
        if self.storage_error.is_some()
            || !self.checkpoints.due(
                &self.settings.checkpoint,
                self.last_lsn,
                self.status.log_bytes,
                now_ms,
            )
        {
            return None;
        }
        let lsn = self.last_lsn;
        self.checkpoints.start(lsn, now_ms);
        // A SHUTDOWN waiting for a checkpoint is among the saves this one answers.
        self.shutdown_in_checkpoint |= self.shutdown.is_some_and(|m| m.save);
        Some(CheckpointStart {
            records: self.take_records(),
            lsn,
            state: self.dbs.clone(),
        })
    }

    /// The running checkpoint finished (or failed): SAVE replies waiting for it are released
    /// into `out` (with the failure, if it failed) once their writes are durable.
    pub fn on_checkpoint_done(
        &mut self,
        result: Result<CheckpointReport, StorageError>,
        status: BackendStatus,
        out: &mut Vec<Release<T>>,
    ) {
        self.status = status;
        let lsn = self.checkpoints.running.take();
        if std::mem::take(&mut self.shutdown_in_checkpoint) {
            // SHUTDOWN goes on after its checkpoint (or despite a failed one with FORCE);
            // after a failure without FORCE it is called off and answers the failure.
            if result.is_ok() || self.shutdown.is_some_and(|m| m.force) {
                self.shutdown_ready = true;
            } else {
                self.shutdown = None;
            }
        }
        let c = &mut self.checkpoints;
        let failure = match result {
            Ok(report) => {
                c.completed += 1;
                c.last_failed = false;
                c.last_lsn = Some(report.lsn);
                None
            }
            Err(err) => {
                c.failed += 1;
                c.last_failed = true;
                c.last_lsn = lsn.or(c.last_lsn);
                Some(Frame::from(ReplyError::CheckpointFailed {
                    cause: err.to_string(),
                }))
            }
        };
        for mut w in std::mem::take(&mut c.running_saves) {
            if let Some(failure) = &failure {
                for &i in &w.saves {
                    w.frames[i] = failure.clone();
                }
            }
            self.gate.hold(w);
        }
        self.gate.release(0, self.last_lsn, out);
    }

    /// A client connected at `now_ms`, from `peer`.
    pub fn session_opened(&mut self, session: SessionId, peer: Peer, now_ms: u64) {
        self.stats.connected += 1;
        self.stats.connections += 1;
        self.clients.open(session, peer, now_ms);
    }

    /// What to do to sessions since the last call: close those CLIENT KILL closed (the
    /// killing session itself after its reply), bound the output of new monitors.
    pub fn take_controls(&mut self) -> Vec<(SessionId, SessionControl)> {
        std::mem::take(&mut self.controls)
    }

    /// SHUTDOWN was executed and its checkpoint (if it saves) is done: the caller syncs the
    /// log and exits.
    pub fn shutdown_ready(&self) -> bool {
        self.shutdown_ready
    }

    /// How many connections the store knows (for INFO clients).
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// A client's connection closed: forget its transaction and watches.
    pub fn session_closed(&mut self, session: SessionId) {
        self.stats.connected = self.stats.connected.saturating_sub(1);
        self.txns.session_closed(session);
        self.spiller.forget(session);
        self.selected.remove(&session);
        self.waits.session_closed(session);
        self.pubsub.session_closed(session);
        if !self.clients.closed_after_kill(session) {
            self.clients.close(session);
        }
    }

    /// Gives `record` the next LSN and queues it to be logged; returns the LSN.
    fn log(&mut self, record: Record) -> Lsn {
        self.stats.writes += 1;
        self.last_lsn += 1;
        let lsn = self.last_lsn;
        self.gate.note_write(lsn, &record);
        self.txns.touch(&record);
        self.note_written(0, &record);
        self.records.push(LogEntry { lsn, record });
        lsn
    }

    /// Lazy expiry: deletes the keys a command touched (`access`) that have expired at
    /// `now_ms` but are still held, and returns their DELETE records (already applied) for
    /// the caller to log. After a storage failure nothing can be logged, so nothing is
    /// deleted; nor on a follower (a READONLY session's reads), which writes nothing of its
    /// own: the leader's DELETE comes as a committed record. Readers go on hiding expired
    /// keys, as on a Redis replica.
    fn expire_accessed(&mut self, db: u16, access: &Access, now_ms: u64) -> Vec<Record> {
        let keys = access.keys();
        if keys.is_empty() {
            return Vec::new();
        }
        let follower = matches!(self.replication, Some(Replication::Follower { .. }));
        let ks = self.dbs.db_mut(db);
        if self.storage_error.is_some() || follower || !ks.has_expired(now_ms) {
            return Vec::new();
        }
        let mut deletes = Vec::new();
        for key in keys {
            if ks.get(key).is_some_and(|v| v.is_expired(now_ms)) {
                let delete = Record::Delete { key: key.clone() };
                ks.apply(&delete);
                deletes.push(Record::in_db(db, delete));
            }
        }
        self.stats.expired += deletes.len() as u64;
        deletes
    }

    /// Active expiry, for the caller to run periodically (the server: every 100 ms): deletes
    /// expired keys, each with one logged DELETE record, and returns how many. Redis samples
    /// 20 keys with a TTL at random and goes on while more than a quarter of a sample had
    /// expired; the key space keeps its TTL keys ordered by expiry time, so the sample here is
    /// the 20 soonest to expire (every expired key comes before any live one) and the loop
    /// stops at the first sample with a quarter or less expired. The budget per call is a
    /// number of keys, not a time, so the store stays deterministic: at most
    /// [`EXPIRE_CYCLE_BUDGET`] keys (a few ms of work), the rest at the next call. Take the
    /// records with [`Store::take_records`] as after [`Store::execute`].
    pub fn expire_cycle(&mut self, now_ms: u64) -> usize {
        if self.storage_error.is_some() {
            return 0;
        }
        let mut expired = 0;
        for db in 0..self.dbs.count() as u16 {
            while expired < EXPIRE_CYCLE_BUDGET {
                let ks = self.dbs.db_mut(db);
                if !ks.has_expired(now_ms) {
                    break;
                }
                let keys = ks.expired_keys(now_ms, EXPIRE_CYCLE_SAMPLE);
                let notifying = self.notifying();
                for key in &keys {
                    let delete = Record::Delete { key: key.clone() };
                    self.dbs.db_mut(db).apply(&delete);
                    self.log(Record::in_db(db, delete));
                    if notifying {
                        self.note_expired_key(db, key);
                    }
                    self.executing = 0;
                    self.publish_events();
                }
                expired += keys.len();
                if keys.len() * 4 <= EXPIRE_CYCLE_SAMPLE {
                    break;
                }
            }
        }
        self.stats.expired += expired as u64;
        expired
    }

    /// The refusal for a write (or a read of lost writes) after the storage failed.
    fn refusal(&self) -> Option<Frame> {
        self.storage_error.as_ref().map(storage_refuses)
    }

    /// Executes one request of `session`; returns its reply and the LSN it waits for. `save`
    /// is set for SAVE, whose reply waits for the next checkpoint.
    fn execute_one(
        &mut self,
        session: SessionId,
        proto: Protocol,
        request: &[Bytes],
        named: Option<table::Named>,
        now_ms: u64,
        save: &mut bool,
    ) -> (Frame, Lsn) {
        self.now_ms = now_ms;
        let start = self.settings.host.monotonic_ns();
        let (reply, wait) = match self.before_request(session, request, named) {
            Ok(()) => {
                let spec = named.map(|n| n.spec);
                self.execute_request(session, proto, request, spec, now_ms, save)
            }
            Err(refusal) => (refusal, 0),
        };
        let micros = self.settings.host.monotonic_ns().saturating_sub(start) / 1000;
        self.account(session, request, named, &reply, micros, now_ms);
        (reply, wait)
    }

    /// Logs a slow request in the slow log (CONFIG SET's secrets redacted, as in Redis).
    fn note_slow(
        &mut self,
        session: SessionId,
        request: &[Bytes],
        name: &str,
        micros: u64,
        now_ms: u64,
    ) {
        let s = &self.settings;
        let mut args: Vec<Bytes>;
        let request = if name == "config" && request.len() > 3 {
            // CONFIG SET's secrets stay out of the log, as in Redis.
            args = request.to_vec();
            for i in (2..args.len().saturating_sub(1)).step_by(2) {
                if config::is_secret(&args[i]) {
                    args[i + 1] = Bytes::from_static(b"(redacted)");
                }
            }
            &args[..]
        } else {
            request
        };
        let client = self.clients.get(session);
        self.slowlog.note(
            s.slowlog_log_slower_than,
            s.slowlog_max_len,
            micros,
            now_ms / 1000,
            request,
            client
                .map(|c| Bytes::from(c.peer.addr.clone()))
                .unwrap_or_default(),
            client.and_then(|c| c.name.clone()).unwrap_or_default(),
        );
    }

    /// Counts one executed request as Redis does: `total_commands_processed`, its command's
    /// calls, µs and failed or rejected calls (rejected: unknown, wrong arity), the error
    /// reply's kind; then the slow log and the `command` / `fast-command` latency events.
    /// Commands queued by MULTI are counted when EXEC runs (as EXEC).
    fn account(
        &mut self,
        session: SessionId,
        request: &[Bytes],
        named: Option<table::Named>,
        reply: &Frame,
        micros: u64,
        now_ms: u64,
    ) {
        let error = match reply {
            Frame::Error(text) => Some(text.as_str()),
            Frame::Simple(s) if s == "QUEUED" => return,
            _ => None,
        };
        if let Some(text) = error {
            self.stats.note_error(text);
        }
        if request.is_empty() {
            return;
        }
        let Some(named) = named else {
            self.stats.rejected_calls += 1;
            return;
        };
        // A known subcommand is counted under its own row (`config|get`), as in Redis 7,
        // and its own arity says whether it was rejected.
        let (spec, row) = (named.spec, named.row());
        let rejected = !row.arity_fits(request.len());
        let stat = self.stats.command(row);
        if rejected {
            stat.rejected += 1;
            self.stats.rejected_calls += 1;
            return;
        }
        stat.calls += 1;
        stat.usec += micros;
        if error.is_some() {
            stat.failed += 1;
        }
        self.stats.commands += 1;
        if !spec.is(table::Flags::SKIP_SLOWLOG) {
            if SlowLog::logs(self.settings.slowlog_log_slower_than, micros) {
                self.note_slow(session, request, spec.name, micros, now_ms);
            }
            let s = &self.settings;
            let event = if spec.is(table::Flags::FAST) {
                "fast-command"
            } else {
                "command"
            };
            self.latency.note(
                s.latency_monitor_threshold,
                event,
                micros / 1000,
                now_ms / 1000,
            );
        }
    }

    /// Executes one request; see [`Store::execute_one`].
    fn execute_request(
        &mut self,
        session: SessionId,
        proto: Protocol,
        request: &[Bytes],
        spec: Option<&'static table::CommandSpec>,
        now_ms: u64,
        save: &mut bool,
    ) -> (Frame, Lsn) {
        // (`is_empty` first: no hash lookup per request while nobody subscribes.)
        if proto == Protocol::Resp2
            && !self.pubsub.is_empty()
            && self.pubsub.subscriptions(session) > 0
        {
            if let Some(refusal) = messages::subscribed_mode(request) {
                return (refusal, 0);
            }
        }
        if spec.is_none() {
            if let Some(reply) = self.sentinel_command(request) {
                return (reply, 0);
            }
        }
        // Inside MULTI: queued, run now or refused, as the command table says.
        let parsed = self
            .txns
            .admit(session, request, spec, command::parse_as(spec, request));
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(reply) => return (reply, 0),
        };
        match cmd {
            Command::Data(cmd) => {
                if cmd.is_write() {
                    if let Some(refusal) = self.refusal() {
                        return (refusal, 0);
                    }
                }
                let db = self.selected_db(session);
                if let Some(what) = Emptying::of_data(&cmd.op, db) {
                    self.txns.emptying(what, &self.dbs, now_ms);
                }
                let ctx = self.context(now_ms);
                let op = self.notifying().then(|| cmd.op.clone());
                let reads = !cmd.is_write();
                let applied = cmd.apply_in(self.dbs.db_mut(db), &ctx);
                if reads {
                    self.note_lookups(db, &applied.access, now_ms);
                }
                let mut wait = match applied.record {
                    // The newest LSN: it covers whatever the write read, no lookup needed.
                    Some(record) => {
                        if let Some(op) = &op {
                            self.note_events(db, op, &record);
                        }
                        self.log(Record::in_db(db, record))
                    }
                    None => self
                        .gate
                        .read_dependency(db, &applied.access, self.last_lsn),
                };
                let deletes = self.expire_accessed(db, &applied.access, now_ms);
                self.note_expired(db, &deletes);
                for delete in deletes {
                    wait = self.log(delete);
                }
                self.publish_events();
                if wait > self.gate.released_lsn() {
                    if let Some(refusal) = self.refusal() {
                        return (refusal, 0);
                    }
                }
                (applied.reply, wait)
            }
            Command::Server(ServerCommand::PubSub(cmd)) => (self.pubsub_command(session, cmd), 0),
            Command::Server(ServerCommand::WaitAof { numlocal, .. }) => self.waitaof(numlocal),
            Command::Server(ServerCommand::Wait {
                numreplicas,
                timeout_ms,
            }) => (
                self.wait_command(session, numreplicas, timeout_ms, now_ms, false),
                0,
            ),
            Command::Server(cmd) => (self.server_command(session, cmd, now_ms, save), 0),
            Command::Txn(cmd) => self.transaction_command(session, cmd, now_ms),
            Command::Db(cmd) => {
                if cmd.is_write() {
                    if let Some(refusal) = self.refusal() {
                        return (refusal, 0);
                    }
                }
                let mut db = self.selected_db(session);
                let applied = self.db_command(cmd, &mut db, now_ms);
                self.select(session, db);
                let wait = match applied.record {
                    Some(record) => self.log(record),
                    None => self.reads_dependency(&applied.reads),
                };
                self.publish_events();
                if wait > self.gate.released_lsn() {
                    if let Some(refusal) = self.refusal() {
                        return (refusal, 0);
                    }
                }
                (applied.reply, wait)
            }
        }
    }

    /// Runs `cmd` from database `*db`; notes its keyspace events (published by the caller).
    fn db_command(&mut self, cmd: DbCommand, db: &mut u16, now_ms: u64) -> databases::DbApplied {
        if let Some(what) = Emptying::of_db(&cmd, self.settings.databases) {
            self.txns.emptying(what, &self.dbs, now_ms);
        }
        let events = self
            .notifying()
            .then(|| command::pubsub::db_key_events(&cmd, *db));
        let applied = databases::apply(cmd, &mut self.dbs, db, self.settings.databases, now_ms);
        if let (Some(events), Some(_)) = (events, &applied.record) {
            self.events.extend(events);
        }
        applied
    }

    /// The LSN a reply that read these (database, key)s waits for.
    fn reads_dependency(&self, reads: &[(u16, Bytes)]) -> Lsn {
        reads
            .iter()
            .map(|(db, key)| {
                self.gate
                    .read_dependency(*db, &Access::Key(key.clone()), self.last_lsn)
            })
            .max()
            .unwrap_or(0)
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
            TxnCommand::Watch(keys) => {
                let db = self.selected_db(session);
                let reply = self
                    .txns
                    .watch(session, db, keys, self.dbs.db_mut(db), now_ms);
                (reply, 0)
            }
            TxnCommand::Unwatch => (self.txns.unwatch(session), 0),
            TxnCommand::Exec => match self.txns.exec(session, &self.dbs, now_ms) {
                Ok(commands) => self.exec(session, commands, now_ms),
                Err(reply) => (reply, 0),
            },
        }
    }

    /// Runs the commands of a transaction as one unit: one `Record::Txn` of all their writes
    /// (nothing when they wrote nothing); a command's runtime error is its own reply only.
    /// SELECT among them changes the session's database from there on, as in Redis.
    fn exec(&mut self, session: SessionId, commands: Vec<Command>, now_ms: u64) -> (Frame, Lsn) {
        let writes = commands.iter().any(|c| match c {
            Command::Data(d) => d.is_write(),
            Command::Db(d) => d.is_write(),
            _ => false,
        });
        if writes {
            if let Some(refusal) = self.refusal() {
                return (refusal, 0);
            }
        }
        let mut replies = Vec::with_capacity(commands.len());
        let mut ops = Vec::new();
        self.deferring = true;
        let mut wait = 0;
        let mut db = self.selected_db(session);
        for cmd in commands {
            let reply = match cmd {
                Command::Data(cmd) => {
                    if let Some(what) = Emptying::of_data(&cmd.op, db) {
                        self.txns.emptying(what, &self.dbs, now_ms);
                    }
                    let ctx = self.context(now_ms);
                    let op = self.notifying().then(|| cmd.op.clone());
                    let applied = cmd.apply_in(self.dbs.db_mut(db), &ctx);
                    wait = wait.max(
                        self.gate
                            .read_dependency(db, &applied.access, self.last_lsn),
                    );
                    if let (Some(op), Some(record)) = (&op, &applied.record) {
                        self.note_events(db, op, record);
                    }
                    match applied.record.map(|r| Record::in_db(db, r)) {
                        Some(Record::Txn(inner)) => ops.extend(inner),
                        Some(record) => ops.push(record),
                        None => {}
                    }
                    let deletes = self.expire_accessed(db, &applied.access, now_ms);
                    self.note_expired(db, &deletes);
                    ops.extend(deletes);
                    applied.reply
                }
                Command::Db(cmd) => {
                    let applied = self.db_command(cmd, &mut db, now_ms);
                    wait = wait.max(self.reads_dependency(&applied.reads));
                    match applied.record {
                        Some(Record::Txn(inner)) => ops.extend(inner),
                        Some(record) => ops.push(record),
                        None => {}
                    }
                    applied.reply
                }
                Command::Server(ServerCommand::PubSub(cmd)) => {
                    // Messages are published after the transaction's record, like its
                    // notifications; SUBSCRIBE's confirmations go in its slot.
                    let reply = self.pubsub_command(self.executing, cmd);
                    let mut frames = std::mem::take(&mut self.own_pushes);
                    if frames.is_empty() {
                        reply
                    } else {
                        frames.push(reply);
                        Frame::Array(frames)
                    }
                }
                Command::Server(ServerCommand::WaitAof { numlocal, .. }) => {
                    let (reply, lsn) = self.waitaof(numlocal);
                    wait = wait.max(lsn);
                    reply
                }
                // Inside EXEC WAIT never blocks (Redis): the count of now.
                Command::Server(ServerCommand::Wait { numreplicas, .. }) => {
                    self.wait_command(session, numreplicas, 0, now_ms, true)
                }
                // SAVE is refused while queueing; BGSAVE and the rest answer at once.
                Command::Server(cmd) => self.server_command(session, cmd, now_ms, &mut false),
                // Only UNWATCH is queued; EXEC drops the watches anyway.
                Command::Txn(_) => Frame::ok(),
            };
            replies.push(reply);
        }
        self.select(session, db);
        if !ops.is_empty() {
            wait = self.log(Record::Txn(ops));
        }
        self.deferring = false;
        let deferred = std::mem::take(&mut self.deferred);
        self.deliver(deferred);
        self.publish_events();
        if wait > self.gate.released_lsn() {
            if let Some(refusal) = self.refusal() {
                return (refusal, 0);
            }
        }
        (Frame::Array(replies), wait)
    }

    /// Names connection `session` (`name` empty: no name), as CLIENT SETNAME does; the
    /// session calls it for HELLO ... SETNAME.
    pub fn set_client_name(&mut self, session: SessionId, name: Bytes) {
        if self.clients.get(session).is_none() {
            self.clients
                .open(session, Peer::default(), self.now_us / 1000);
        }
        if let Some(c) = self.clients.get_mut(session) {
            c.name = (!name.is_empty()).then_some(name);
        }
    }

    fn server_command(
        &mut self,
        session: SessionId,
        cmd: ServerCommand,
        now_ms: u64,
        save: &mut bool,
    ) -> Frame {
        match cmd {
            ServerCommand::Reply(frame) => frame,
            ServerCommand::Client(ClientCommand::SetName(name)) => {
                self.set_client_name(session, name);
                Frame::ok()
            }
            ServerCommand::Client(ClientCommand::GetName) => self
                .clients
                .get(session)
                .and_then(|c| c.name.clone())
                .map_or(Frame::Null, Frame::Bulk),
            ServerCommand::Client(ClientCommand::Id) => {
                Frame::Integer(i64::try_from(session).unwrap_or(i64::MAX))
            }
            ServerCommand::Client(cmd) => self.client_command(session, cmd, now_ms),
            ServerCommand::Time => Frame::Array(vec![
                Frame::bulk((self.now_us / 1_000_000).to_string()),
                Frame::bulk((self.now_us % 1_000_000).to_string()),
            ]),
            ServerCommand::Reset => self.reset(session),
            ServerCommand::Role => self.role(),
            ServerCommand::ReadOnly(on) => match self.replication {
                None => ReplyError::ClusterDisabled.into(),
                Some(_) => {
                    if let Some(c) = self.clients.get_mut(session) {
                        c.read_only = on;
                    }
                    Frame::ok()
                }
            },
            ServerCommand::Monitor => {
                self.clients.start_monitor(session);
                self.controls.push((session, SessionControl::Monitor));
                Frame::ok()
            }
            ServerCommand::Shutdown(mode) => {
                self.shutdown = Some(mode);
                if mode.save && self.storage_error.is_none() {
                    // Waits for a checkpoint, as SAVE does; the caller exits after it.
                    *save = true;
                } else {
                    self.shutdown_ready = true;
                    self.no_reply = true;
                }
                Frame::ok()
            }
            ServerCommand::Info(sections) => render_info(&self.info_figures(now_ms), &sections),
            ServerCommand::ConfigGet(patterns) => config::config_get(&self.settings, &patterns),
            ServerCommand::ConfigRewrite => match self.settings.host.rewrite_config(&self.settings)
            {
                Ok(()) => Frame::ok(),
                Err(reason) => ReplyError::ConfigRewrite { reason }.into(),
            },
            ServerCommand::ConfigResetStat => {
                self.stats.reset();
                Frame::ok()
            }
            ServerCommand::SlowLog(cmd) => match cmd {
                SlowLogCommand::Get(count) => diagnostics::render_slowlog(&self.slowlog, count),
                SlowLogCommand::Len => Frame::Integer(self.slowlog.len() as i64),
                SlowLogCommand::Reset => {
                    self.slowlog.reset();
                    Frame::ok()
                }
            },
            ServerCommand::Latency(cmd) => match cmd {
                LatencyCommand::Latest => diagnostics::render_latest(&self.latency),
                LatencyCommand::History(event) => {
                    diagnostics::render_history(&self.latency, &event)
                }
                LatencyCommand::Reset(events) => Frame::Integer(self.latency.reset(&events) as i64),
                LatencyCommand::Doctor => diagnostics::render_doctor(
                    &self.latency,
                    self.settings.latency_monitor_threshold,
                ),
            },
            // Answered in `execute_request` (it may wait).
            ServerCommand::WaitAof { .. } | ServerCommand::Wait { .. } => Frame::Null,
            ServerCommand::Save => {
                *save = true;
                Frame::ok()
            }
            ServerCommand::BgSave => {
                self.checkpoints.bgsave_requested = true;
                Frame::Simple("Background saving started".into())
            }
            ServerCommand::ConfigSet(pairs) => match config::config_set(&self.settings, &pairs) {
                Ok(next) => {
                    self.slowlog.trim(next.slowlog_max_len);
                    self.settings = next;
                    self.settings_changed = true;
                    Frame::ok()
                }
                Err(err) => err.into(),
            },
            // Answered in `execute_one` (it needs the session).
            ServerCommand::PubSub(_) => Frame::Null,
            ServerCommand::LastSave => Frame::Integer(
                self.status
                    .last_checkpoint_unix_ms
                    .map_or(0, |ms| (ms / 1000) as i64),
            ),
        }
    }

    /// WAITAOF: under `always` every acknowledged write is synced, so the reply waits for
    /// the last write applied and then says `[1, 0]` truthfully; under `every:<ms>` it says
    /// whether that write is synced now (no waiting); under `never` (Redis: appendonly no)
    /// numlocal is refused. There are no replicas: the second figure is 0 and the call never
    /// blocks for them.
    fn waitaof(&self, numlocal: u8) -> (Frame, Lsn) {
        let reply = |local: i64| Frame::Array(vec![Frame::Integer(local), Frame::Integer(0)]);
        match self.settings.sync {
            SyncPolicy::Always => (reply(1), self.last_lsn),
            SyncPolicy::Every(_) => (
                reply(i64::from(self.status.durable_lsn >= self.last_lsn)),
                0,
            ),
            SyncPolicy::Never if numlocal > 0 => (ReplyError::WaitAofNoAof.into(), 0),
            SyncPolicy::Never => (reply(0), 0),
        }
    }

    /// Keyspace hits and misses of a read command: each key it read, live or not.
    fn note_lookups(&mut self, db: u16, access: &Access, now_ms: u64) {
        let keys = access.keys();
        if !keys.is_empty() {
            let ks = self.dbs.db_mut(db);
            let hits = keys
                .iter()
                .filter(|k| ks.get_live(k, now_ms).is_some())
                .count() as u64;
            self.stats.keyspace_hits += hits;
            self.stats.keyspace_misses += keys.len() as u64 - hits;
        }
    }

    /// The settings after a CONFIG SET changed them (once per change), for the caller to
    /// hand on to what applies them outside the store (sessions, listener, WAL writer).
    pub fn take_settings_change(&mut self) -> Option<&StoreSettings> {
        std::mem::take(&mut self.settings_changed).then_some(&self.settings)
    }

    /// The store's settings as they are now.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// The caller's periodic tick (the server: every 100 ms, with the active expiry): the
    /// ops-per-second sample and the memory peak.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        self.stats.sample(now_ms);
        self.spill_step(spill::TICK_BUDGET);
        self.compact_step(spill::TICK_BUDGET);
        self.used_memory_peak = self.used_memory_peak.max(self.used_memory());
    }

    /// Notes the fsyncs the backend did since the last look as `aof-fsync-always` latency
    /// events (under `always`; the average of the new ones, exact for one sync per group).
    fn note_fsyncs(&mut self, status: &BackendStatus) {
        let (count, total) = self.fsyncs_seen;
        self.fsyncs_seen = (status.fsyncs, status.fsync_total);
        let new = status.fsyncs.saturating_sub(count);
        if new == 0 || self.settings.sync != SyncPolicy::Always {
            return;
        }
        let ms = status.fsync_total.saturating_sub(total).as_millis() as u64 / new;
        self.latency.note(
            self.settings.latency_monitor_threshold,
            "aof-fsync-always",
            ms,
            self.now_ms / 1000,
        );
    }

    fn info_figures(&self, now_ms: u64) -> InfoFigures {
        let st = &self.status;
        let c = &self.checkpoints;
        let s = &self.settings;
        let used_memory = self.used_memory();
        InfoFigures {
            process_id: s.process_id,
            run_id: self.run_id.clone(),
            tcp_port: s.port,
            now_ms,
            uptime_s: now_ms.saturating_sub(self.started_ms) / 1000,
            backend: s.backend.clone(),
            sync: s.sync.to_string(),
            aof_enabled: s.sync != SyncPolicy::Never,
            data_dir: s.data_dir.display().to_string(),
            recovery: s.recovery.clone(),
            connected_clients: self.stats.connected,
            maxclients: s.limits.max_clients,
            used_memory,
            used_memory_peak: self.used_memory_peak.max(used_memory),
            maxmemory: s.memory.maxmemory,
            maxmemory_policy: s.memory.effective_policy().name(),
            spill: self.spill_info(),
            resources: s.host.resources(),
            keys: self.dbs.len() as u64,
            expires: self
                .dbs
                .iter()
                .map(|(_, ks)| ks.volatile_len() as u64)
                .sum(),
            keyspace: self
                .dbs
                .iter()
                .filter(|(_, ks)| !ks.is_empty())
                .map(|(db, ks)| (db, ks.len() as u64, ks.volatile_len() as u64))
                .collect(),
            expired_keys: self.stats.expired,
            last_lsn: self.last_lsn,
            replication: self.replication.clone(),
            durable_lsn: st.durable_lsn,
            log_bytes: st.log_bytes,
            last_checkpoint_lsn: st.last_checkpoint_lsn,
            last_checkpoint_unix_ms: st.last_checkpoint_unix_ms,
            checkpoint_in_progress: c.running.is_some(),
            checkpoints_completed: c.completed,
            checkpoints_failed: c.failed,
            last_checkpoint_failed: c.last_failed,
            fsyncs: st.fsyncs,
            fsync_total_us: st.fsync_total.as_micros() as u64,
            fsync_max_us: st.fsync_max.as_micros() as u64,
            storage_error: self.storage_error.as_ref().map(ToString::to_string),
            total_connections: self.stats.connections,
            total_commands: self.stats.commands,
            ops_per_sec: self.stats.ops_per_sec(),
            keyspace_hits: self.stats.keyspace_hits,
            keyspace_misses: self.stats.keyspace_misses,
            pubsub_channels: self.pubsub.channel_count() as u64,
            pubsub_patterns: self.pubsub.numpat() as u64,
            total_error_replies: self.stats.error_replies,
            rejected_calls: self.stats.rejected_calls,
            total_writes: self.stats.writes,
            commands: self
                .stats
                .commands_by_name()
                .into_iter()
                .map(|(name, stat)| (name.to_string(), stat))
                .collect(),
            errors: self
                .stats
                .errors_by_kind
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        }
    }
}

/// 40 hex digits from the start time and the process id (splitmix64): different for each
/// run, as Redis's random run id.
fn run_id(now_ms: u64, pid: u32) -> String {
    let mut x = now_ms ^ (u64::from(pid) << 32);
    let mut out = String::with_capacity(40);
    while out.len() < 40 {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    out.truncate(40);
    out
}

/// The reply to a write after the storage failed.
fn storage_refuses(err: &StorageError) -> Frame {
    ReplyError::StorageRefuses {
        cause: err.to_string(),
    }
    .into()
}
