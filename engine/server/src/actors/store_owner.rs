//! The store owner: the actor around the core's [`Store`]. It hands each session's batch to
//! the store, sends the records of a tick to the WAL writer as one `Append` (scheduled with
//! `ctx.notify`, so it runs after the mailbox has drained), passes back what became durable
//! or failed, and sends the replies the store releases. Once a second (or at the checkpoint
//! interval) and after every commit it asks the store whether a checkpoint is due; every
//! 100 ms it runs the store's active expiry cycle and sends its DELETE records like a tick.
//!
//! In cluster mode ([`cluster`]) the records go to the raft proposer instead, commits come
//! back through the raft state machine, and a follower forwards its sessions' batches.
//!
//! Everything the store decides (LSNs, which replies may leave, transactions, checkpoint
//! triggers) lives in [`Store`]; this file is plumbing.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use moodb_core::backend::BackendStatus;
use moodb_core::command::txn::SessionId;
use moodb_core::fast_map::FastMap;
use moodb_core::keyspace::Databases;
use moodb_core::record::Lsn;
use moodb_core::store::clients::SessionControl;
use moodb_core::store::{Release, Store, StoreSettings};
use tokio::sync::Notify;

use super::session::SessionConfig;
use super::ticker;
use super::{
    Append, Appended, Batch, CheckpointDone, Control, Replies, SessionClosed, SessionNamed,
    SessionOpened, SetSync, Shutdown, ShutdownError, StartCheckpoint, SyncNow, WalWriter,
};
use crate::auth::Password;
use crate::live::LiveConfig;

pub mod cluster;
mod proposals;

use cluster::ClusterLink;

/// Where a batch's replies go: the session and the batch's number in its stream.
pub struct ReplyTo {
    seq: u64,
    session: Arc<Recipient<Replies>>,
}

/// The actor owning the [`Store`]; see the module documentation.
pub struct StoreOwner {
    store: Store<ReplyTo>,
    checkpoint_interval_ms: u64,
    wal: Option<Addr<WalWriter>>,
    flush_scheduled: bool,
    /// Empty; keeps its capacity for the next release.
    released: Vec<Release<ReplyTo>>,
    /// Each session's address and the number of its last batch executed, for Pub/Sub
    /// messages (written after that batch's replies).
    sessions: FastMap<SessionId, (Arc<Recipient<Replies>>, u64)>,
    /// Each open session's control address (CLIENT KILL, MONITOR).
    controls: FastMap<SessionId, Recipient<Control>>,
    /// Told once SHUTDOWN may proceed (the listener loop then syncs the log and exits).
    exit: Option<Arc<Notify>>,
    exiting: bool,
    /// The deadline (Unix ms) the WAIT timer is set for, if one is.
    wait_timer: Option<u64>,
    /// Where CONFIG SET's changes for the sessions and the listener go.
    live: Option<Arc<LiveConfig>>,
    /// Cluster mode: the raft side (`None`: a single node, which pays nothing for it).
    cluster: Option<ClusterLink>,
    /// This actor's own address (set when it starts), for the forwarders it creates.
    own_addr: Option<Addr<StoreOwner>>,
}

impl StoreOwner {
    /// A store owner holding `state`, whose last record has LSN `last_lsn`. Give it its WAL
    /// writer with [`StoreOwner::set_wal`] before sending it batches (see `server.rs`).
    pub fn new(
        state: Databases,
        last_lsn: Lsn,
        status: BackendStatus,
        settings: StoreSettings,
    ) -> Self {
        StoreOwner {
            checkpoint_interval_ms: settings.checkpoint.interval_ms,
            store: Store::new(state, last_lsn, status, settings, now_ms()),
            wal: None,
            flush_scheduled: false,
            released: Vec::new(),
            sessions: FastMap::default(),
            controls: FastMap::default(),
            exit: None,
            exiting: false,
            wait_timer: None,
            live: None,
            cluster: None,
            own_addr: None,
        }
    }

    /// A store owner in cluster mode: its store starts empty and is filled by the committed
    /// entries raft applies (and snapshots it installs); `link` is its raft side.
    pub fn new_cluster(settings: StoreSettings, link: ClusterLink) -> Self {
        let databases = settings.databases;
        let mut owner = StoreOwner::new(
            Databases::new(databases),
            0,
            BackendStatus::default(),
            settings,
        );
        owner.cluster = Some(link);
        owner
    }

    /// Where SHUTDOWN tells the server to stop.
    pub fn set_exit(&mut self, exit: Arc<Notify>) {
        self.exit = Some(exit);
    }

    /// Passes on what the store decided about sessions (`seq`: the batch just executed).
    fn send_controls(&mut self, seq: u64) {
        for (id, control) in self.store.take_controls() {
            let control = match control {
                SessionControl::Close => Control::Close { after_seq: None },
                SessionControl::CloseAfterReply => Control::Close {
                    after_seq: Some(seq),
                },
                SessionControl::Monitor => Control::Monitor,
            };
            if let Some(to) = self.controls.get(&id) {
                to.do_send(control);
            }
        }
    }

    /// After SHUTDOWN (and its checkpoint): tells the server to stop, once. Replies still
    /// held are not sent (SHUTDOWN's own has none).
    fn maybe_exit(&mut self) -> bool {
        if !self.store.shutdown_ready() {
            return false;
        }
        if !self.exiting {
            self.exiting = true;
            eprintln!("moodb: SHUTDOWN received");
            if let Some(exit) = &self.exit {
                exit.notify_one();
            }
        }
        true
    }

    /// Connects the sessions' shared configuration, which CONFIG SET changes.
    pub fn set_live(&mut self, live: Arc<LiveConfig>) {
        self.live = Some(live);
    }

    /// Hands what CONFIG SET changed to those who apply it: the sessions and the listener
    /// (limits, password, Pub/Sub limit), the WAL writer (sync policy). The store applies the
    /// rest itself (checkpoint triggers, notifications, slow log, latency monitor).
    fn apply_settings_change(&mut self) {
        let Some(s) = self.store.take_settings_change() else {
            return;
        };
        if let Some(live) = &self.live {
            live.set(SessionConfig {
                limits: s.limits,
                password: s
                    .requirepass
                    .as_deref()
                    .map(|p| Password::new(p.as_bytes())),
                pubsub: s.pubsub,
            });
        }
        let sync = s.sync;
        self.checkpoint_interval_ms = s.checkpoint.interval_ms;
        self.send_wal(SetSync(sync));
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
        if self.cluster_propose() {
            return;
        }
        if self.store.has_records() {
            let records = self.store.take_records();
            self.send_wal(Append(records));
        }
    }

    /// Runs the store's active expiry cycle and sends its DELETE records at once (unless a
    /// flush is already scheduled, which will take them).
    fn expire_cycle(&mut self) {
        self.store.tick(now_ms());
        self.cluster_watchdog();
        if !self.cluster_may_write() {
            return;
        }
        if self.store.expire_cycle(now_ms()) > 0 && !self.flush_scheduled {
            self.flush_tick();
        }
        self.send_released();
    }

    /// Starts a checkpoint if the store says one is due, after the records it covers.
    fn maybe_checkpoint(&mut self) {
        if self.cluster_checkpoint() {
            return;
        }
        if let Some(start) = self.store.checkpoint_due(now_ms()) {
            if !start.records.is_empty() {
                self.send_wal(Append(start.records));
            }
            self.send_wal(StartCheckpoint {
                lsn: start.lsn,
                state: start.state,
            });
        }
    }

    /// Sends every batch of replies the store released, then the Pub/Sub messages that may
    /// leave, grouped per session in order.
    fn send_released(&mut self) {
        for release in self.released.drain(..) {
            release.to.session.do_send(Replies {
                seq: release.to.seq,
                frames: release.frames,
                push: false,
            });
        }
        if !self.store.has_pushes() {
            return;
        }
        let mut pushes = self.store.take_pushes().into_iter().peekable();
        while let Some((to, frame)) = pushes.next() {
            let mut frames = vec![frame];
            while let Some((_, f)) = pushes.next_if(|(s, _)| *s == to) {
                frames.push(f);
            }
            if let Some((session, seq)) = self.sessions.get(&to) {
                session.do_send(Replies {
                    seq: *seq,
                    frames,
                    push: true,
                });
            }
        }
    }
}

impl StoreOwner {
    /// A batch blocked in WAIT: wake the store at its deadline (WAIT's timeout), which
    /// unblocks it with the count of then. One timer for the earliest deadline.
    fn schedule_wait_timer(&mut self, ctx: &mut Context<Self>) {
        let Some(deadline) = self.store.next_wait_deadline() else {
            return;
        };
        if self.wait_timer.is_some_and(|t| t <= deadline) {
            return;
        }
        self.wait_timer = Some(deadline);
        let delay = Duration::from_millis(deadline.saturating_sub(now_ms()) + 1);
        ctx.run_later(delay, |s, ctx| {
            s.wait_timer = None;
            let mut unblocked = Vec::new();
            s.store.expire_waits(now_ms(), &mut unblocked);
            for release in unblocked {
                if let Some(release) = s.cluster_hold(release) {
                    s.released.push(release);
                }
            }
            s.send_released();
            s.cluster_confirm_reads(ctx);
            s.schedule_wait_timer(ctx);
        });
    }
}

/// How often the active expiry cycle runs (Redis: `hz 10`).
const EXPIRE_INTERVAL_MS: u64 = 100;

/// Runs the flush after the mailbox has drained.
#[derive(Message)]
#[rtype(result = "()")]
struct FlushTick;

impl Actor for StoreOwner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.own_addr = Some(ctx.address());
        let interval = match self.checkpoint_interval_ms {
            0 => 1000,
            ms => ms.clamp(10, 1000),
        };
        ticker::every(&ctx.address(), Duration::from_millis(interval), || {
            Periodic::Checkpoint
        });
        ticker::every(
            &ctx.address(),
            Duration::from_millis(EXPIRE_INTERVAL_MS),
            || Periodic::Expire,
        );
    }
}

/// The store owner's periodic work, from its tickers.
#[derive(Message)]
#[rtype(result = "()")]
enum Periodic {
    /// Is a checkpoint due (once a second, or at the checkpoint interval)?
    Checkpoint,
    /// The active expiry cycle's turn.
    Expire,
}

impl Handler<Periodic> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: Periodic, _: &mut Context<Self>) {
        match msg {
            Periodic::Checkpoint => self.maybe_checkpoint(),
            Periodic::Expire => self.expire_cycle(),
        }
    }
}

impl Handler<Batch> for StoreOwner {
    type Result = ();

    fn handle(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        if let Some(batch) = self.cluster_admits(batch) {
            self.execute_batch(batch, ctx);
        }
    }
}

impl StoreOwner {
    /// Executes one session batch on the store and sends what it released.
    fn execute_batch(&mut self, batch: Batch, ctx: &mut Context<Self>) {
        match self.sessions.get_mut(&batch.session) {
            Some(entry) => entry.1 = batch.seq,
            None => {
                self.sessions
                    .insert(batch.session, (batch.reply_to.clone(), batch.seq));
            }
        }
        let to = ReplyTo {
            seq: batch.seq,
            session: batch.reply_to,
        };
        if let Some(release) =
            self.store
                .execute_in(batch.session, batch.proto, &batch.requests, to, now_us())
        {
            if let Some(release) = self.cluster_hold(release) {
                self.released.push(release);
            }
        }
        self.send_released();
        self.cluster_confirm_reads(ctx);
        self.schedule_wait_timer(ctx);
        self.apply_settings_change();
        self.send_controls(batch.seq);
        self.maybe_exit();
        if self.store.wants_flush() && !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.notify(FlushTick);
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
        match msg.result {
            Ok(lsn) => {
                self.store.on_durable(lsn, msg.status, &mut self.released);
                self.send_released();
                self.maybe_checkpoint();
            }
            Err(err) => {
                self.store
                    .on_storage_failure(err, msg.status, &mut self.released);
                self.send_released();
            }
        }
    }
}

impl Handler<CheckpointDone> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: CheckpointDone, _: &mut Context<Self>) {
        if let Err(err) = &msg.result {
            eprintln!("moodb: checkpoint failed: {err}");
        }
        self.store
            .on_checkpoint_done(msg.result, msg.status, &mut self.released);
        if self.maybe_exit() {
            self.released.clear();
            return;
        }
        self.send_released();
        self.maybe_checkpoint();
    }
}

impl Handler<SessionOpened> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: SessionOpened, _: &mut Context<Self>) {
        self.store.session_opened(msg.session, msg.peer, now_ms());
        self.controls.insert(msg.session, msg.control);
    }
}

impl Handler<SessionNamed> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: SessionNamed, _: &mut Context<Self>) {
        self.store.set_client_name(msg.session, msg.name);
    }
}

impl Handler<SessionClosed> for StoreOwner {
    type Result = ();

    fn handle(&mut self, msg: SessionClosed, _: &mut Context<Self>) {
        self.store.session_closed(msg.0);
        self.cluster_session_closed(msg.0);
        self.sessions.remove(&msg.0);
        self.controls.remove(&msg.0);
    }
}

impl Handler<Shutdown> for StoreOwner {
    type Result = ResponseFuture<Result<(), ShutdownError>>;

    fn handle(&mut self, _: Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.flush_tick();
        let wal = self.wal.clone();
        Box::pin(async move {
            match wal {
                Some(wal) => Ok(wal.send(SyncNow).await??),
                None => Ok(()),
            }
        })
    }
}

/// Wall-clock time in Unix milliseconds (expiry is absolute).
pub fn now_ms() -> u64 {
    now_us() / 1000
}

/// Wall-clock time in Unix microseconds (TIME, MONITOR).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
