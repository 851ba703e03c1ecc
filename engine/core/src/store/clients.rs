//! The client registry: what the store knows of each connection (CLIENT INFO / LIST / KILL /
//! SETNAME / SETINFO / REPLY / NO-EVICT / NO-TOUCH, MONITOR). The session hands in the
//! connection's addresses and descriptor when it opens ([`Peer`]); the store records the rest
//! as requests run (last command and when, the protocol, the name, the flags). Figures the
//! store does not have are rendered as documented zeros (see [`ClientRow`]).
//!
//! Also a request's full command name for `cmd=` (`client|info`, from the command table's
//! subcommand rows) and whether MONITOR shows it (not administrative commands).

use bytes::Bytes;

use super::Store;
use crate::command::server::ClientCommand;
use crate::command::table::{self, Flags, Named};
use crate::command::txn::SessionId;
use crate::command::ReplyError;
use crate::fast_map::FastMap;
use crate::resp::{Frame, Protocol};

/// A connection's addresses, as the session sees them when it opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The client's `ip:port`.
    pub addr: String,
    /// The server's `ip:port` the client connected to.
    pub laddr: String,
    /// The socket's file descriptor (-1 when unknown, as Redis prints for fake clients).
    pub fd: i64,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            addr: String::new(),
            laddr: String::new(),
            fd: -1,
        }
    }
}

/// What the caller does to a session because of a command (taken with
/// [`Store::take_controls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionControl {
    /// CLIENT KILL: close it now (the store has forgotten it).
    Close,
    /// CLIENT KILL by the session itself: close it once the reply of the batch is written.
    CloseAfterReply,
    /// MONITOR: it now receives every command; bound its output as a Pub/Sub client's.
    Monitor,
}

/// `CLIENT REPLY ON | OFF | SKIP`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Skip the reply of the next command, then on.
    SkipNext,
    /// Skipping the reply of the command executing now.
    Skip,
}

/// The last command a connection sent: a command of the table, or one of a container's
/// subcommands (`client|info`); `None` prints `NULL` (no command yet, or an unknown one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LastCmd {
    #[default]
    None,
    Cmd(&'static str),
    Sub(&'static str, &'static str),
}

impl std::fmt::Display for LastCmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LastCmd::None => f.write_str("NULL"),
            LastCmd::Cmd(name) => f.write_str(name),
            LastCmd::Sub(name, sub) => write!(f, "{name}|{sub}"),
        }
    }
}

/// The command `request` names, as Redis 7.0 records it (`lastcmd`), and whether it is
/// administrative. A container with a known subcommand is that subcommand; an unknown
/// command or subcommand is `None`.
pub fn command_of(request: &[Bytes]) -> (LastCmd, bool) {
    named_command(table::resolve(request), request.len())
}

/// [`command_of`] for a request of `argc` words already resolved to `named`.
pub fn named_command(named: Option<Named>, argc: usize) -> (LastCmd, bool) {
    let Some(Named { spec, sub }) = named else {
        return (LastCmd::None, false);
    };
    let admin = spec.is(Flags::ADMIN);
    if spec.subcommands.is_empty() || argc < 2 {
        return (LastCmd::Cmd(spec.name), admin);
    }
    match sub.and_then(|s| s.name.split_once('|').map(|(_, name)| (s, name))) {
        Some((s, name)) => (LastCmd::Sub(spec.name, name), admin || s.is(Flags::ADMIN)),
        None => (LastCmd::None, false),
    }
}

/// One connection's state.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub peer: Peer,
    /// CLIENT SETNAME / HELLO ... SETNAME.
    pub name: Option<Bytes>,
    /// CLIENT SETINFO LIB-NAME / LIB-VER.
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    /// When it connected and when it last sent a command (Unix ms).
    pub created_ms: u64,
    pub last_ms: u64,
    pub last_cmd: LastCmd,
    /// The protocol of its last batch.
    pub resp: Protocol,
    pub no_evict: bool,
    pub no_touch: bool,
    /// READONLY on a cluster node (`r`), until READWRITE or RESET.
    pub read_only: bool,
    pub reply: ReplyMode,
    /// Sent MONITOR.
    pub monitor: bool,
    /// Bytes of the arguments of the commands queued in its MULTI, plus 8 per argument
    /// (Redis's `multi-mem`).
    pub multi_mem: u64,
    /// The requests queued in its MULTI, shown to monitors at EXEC as Redis does.
    pub queued: Vec<Vec<Bytes>>,
}

/// What of a client the registry does not hold, gathered by the store for a CLIENT line.
#[derive(Debug, Clone, Default)]
pub struct ClientRow {
    pub db: u16,
    pub sub: usize,
    pub psub: usize,
    /// Commands queued in MULTI (`None`: not in MULTI).
    pub multi: Option<usize>,
    /// A watched key changed (`d`).
    pub dirty_cas: bool,
    /// Bytes of the arguments of the command executing, for the client executing it.
    pub argv_mem: u64,
}

impl Client {
    /// Its flags, as Redis 7 prints them (`N` for none).
    pub fn flags(&self, row: &ClientRow) -> String {
        let mut f = String::new();
        if self.monitor {
            f.push('O');
        }
        if row.sub + row.psub > 0 {
            f.push('P');
        }
        if row.multi.is_some() {
            f.push('x');
        }
        if row.dirty_cas {
            f.push('d');
        }
        if self.read_only {
            f.push('r');
        }
        if self.no_evict {
            f.push('e');
        }
        if self.no_touch {
            f.push('T');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }

    /// Whether it is a Pub/Sub client (CLIENT LIST / KILL TYPE): it has subscriptions.
    pub fn is_pubsub(row: &ClientRow) -> bool {
        row.sub + row.psub > 0
    }

    /// Its CLIENT INFO / LIST line (no newline): Redis 7.0's fields in its order, then 7.2's
    /// `lib-name` and `lib-ver`. The buffer figures (`qbuf`, `qbuf-free`, `rbs`, `rbp`, `obl`,
    /// `oll`, `omem`, `tot-mem`) are 0: the store does not see the session's buffers.
    pub fn line(&self, id: SessionId, row: &ClientRow, now_ms: u64) -> String {
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let multi = row.multi.map_or(-1, |n| n as i64);
        format!(
            "id={id} addr={addr} laddr={laddr} fd={fd} name={name} age={age} idle={idle} \
             flags={flags} db={db} sub={sub} psub={psub} ssub=0 multi={multi} qbuf=0 \
             qbuf-free=0 argv-mem={argv} multi-mem={mmem} rbs=0 rbp=0 obl=0 oll=0 omem=0 \
             tot-mem=0 events=r cmd={cmd} user=default redir=-1 resp={resp} \
             lib-name={lib_name} lib-ver={lib_ver}",
            addr = self.peer.addr,
            laddr = self.peer.laddr,
            fd = self.peer.fd,
            name = text(&self.name),
            age = now_ms.saturating_sub(self.created_ms) / 1000,
            idle = now_ms.saturating_sub(self.last_ms) / 1000,
            flags = self.flags(row),
            db = row.db,
            sub = row.sub,
            psub = row.psub,
            argv = row.argv_mem,
            mmem = if row.multi.is_some() {
                self.multi_mem
            } else {
                0
            },
            cmd = self.last_cmd,
            resp = self.resp.version(),
            lib_name = text(&self.lib_name),
            lib_ver = text(&self.lib_ver),
        )
    }
}

/// `CLIENT LIST TYPE` / `CLIENT KILL TYPE`: Redis's client classes. Only `normal` and
/// `pubsub` clients exist here; `master` and `replica` match none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Normal,
    Replica,
    PubSub,
    Master,
}

impl ClientType {
    /// Redis's `getClientTypeByName`.
    pub fn parse(name: &[u8]) -> Option<ClientType> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_slice() {
            b"normal" => ClientType::Normal,
            b"slave" | b"replica" => ClientType::Replica,
            b"pubsub" => ClientType::PubSub,
            b"master" => ClientType::Master,
            _ => return None,
        })
    }

    /// Whether a client with `row` is of this type.
    pub fn matches(self, row: &ClientRow) -> bool {
        match self {
            ClientType::Normal => !Client::is_pubsub(row),
            ClientType::PubSub => Client::is_pubsub(row),
            ClientType::Replica | ClientType::Master => false,
        }
    }
}

/// The filters of `CLIENT KILL`'s new form (the old form `ip:port` is `addr` with
/// `skipme: false` and `old_form`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KillFilter {
    pub id: Option<u64>,
    pub addr: Option<Bytes>,
    pub laddr: Option<Bytes>,
    pub kind: Option<ClientType>,
    pub skipme: bool,
    /// `CLIENT KILL ip:port`: replies `+OK` or `No such client` instead of a count.
    pub old_form: bool,
}

/// Every connection the store knows, by id (ids grow with connection order, so sorting by id
/// lists them as Redis does, oldest first).
#[derive(Debug, Default)]
pub struct Clients {
    clients: FastMap<SessionId, Client>,
    /// Sessions that sent MONITOR, in id order.
    monitors: Vec<SessionId>,
    /// Sessions killed, whose connection has not reported closing yet: later batches from
    /// them are dropped.
    killed: Vec<SessionId>,
    /// Some client ever sent CLIENT REPLY (a cheap test before looking its mode up).
    reply_modes: bool,
}

impl Clients {
    /// A connection opened at `now_ms`.
    pub fn open(&mut self, id: SessionId, peer: Peer, now_ms: u64) {
        self.clients.insert(
            id,
            Client {
                peer,
                created_ms: now_ms,
                last_ms: now_ms,
                ..Client::default()
            },
        );
    }

    /// A connection closed (or was killed): forgets it; whether it was known.
    pub fn close(&mut self, id: SessionId) -> bool {
        self.monitors.retain(|m| *m != id);
        self.clients.remove(&id).is_some()
    }

    /// The connection reported closing after a kill.
    pub fn closed_after_kill(&mut self, id: SessionId) -> bool {
        let before = self.killed.len();
        self.killed.retain(|k| *k != id);
        before != self.killed.len()
    }

    /// Marks `id` killed (its later batches are dropped).
    pub fn mark_killed(&mut self, id: SessionId) {
        self.killed.push(id);
    }

    /// Whether `id` was killed and has not closed yet.
    pub fn is_killed(&self, id: SessionId) -> bool {
        !self.killed.is_empty() && self.killed.contains(&id)
    }

    pub fn get(&self, id: SessionId) -> Option<&Client> {
        self.clients.get(&id)
    }

    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut Client> {
        self.clients.get_mut(&id)
    }

    /// Every known id, oldest connection first.
    pub fn ids(&self) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self.clients.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// How many connections are known.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// `id` sent MONITOR.
    pub fn start_monitor(&mut self, id: SessionId) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.monitor = true;
        }
        if !self.monitors.contains(&id) {
            self.monitors.push(id);
        }
    }

    /// `id` is no monitor any more (RESET).
    pub fn stop_monitor(&mut self, id: SessionId) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.monitor = false;
        }
        self.monitors.retain(|m| *m != id);
    }

    /// The sessions in MONITOR mode.
    pub fn monitors(&self) -> &[SessionId] {
        &self.monitors
    }

    /// Notes that `id` is executing a request of `argc` words naming `named` at `now_ms`,
    /// speaking `resp`; returns the command it names and whether that is administrative
    /// ([`command_of`]).
    pub fn touch(
        &mut self,
        id: SessionId,
        named: Option<Named>,
        argc: usize,
        resp: Protocol,
        now_ms: u64,
    ) -> (LastCmd, bool) {
        let cmd = named_command(named, argc);
        if let Some(c) = self.clients.get_mut(&id) {
            c.last_cmd = cmd.0;
            c.last_ms = now_ms;
            c.resp = resp;
            if c.reply == ReplyMode::SkipNext {
                c.reply = ReplyMode::Skip;
            }
        }
        cmd
    }

    /// Notes that some client changed its REPLY mode (until then no reply is looked up).
    pub fn reply_mode_used(&mut self) {
        self.reply_modes = true;
    }

    /// Whether the reply to the command `id` just executed is dropped (CLIENT REPLY OFF, or
    /// the command after CLIENT REPLY SKIP); ends a SKIP.
    pub fn drops_reply(&mut self, id: SessionId) -> bool {
        if !self.reply_modes {
            return false;
        }
        match self.clients.get_mut(&id) {
            Some(c) => match c.reply {
                ReplyMode::On => false,
                ReplyMode::Off | ReplyMode::SkipNext => true,
                ReplyMode::Skip => {
                    c.reply = ReplyMode::On;
                    true
                }
            },
            None => false,
        }
    }
}

impl<T> Store<T> {
    /// What CLIENT LIST shows of `id` beyond the registry.
    fn client_row(&self, id: SessionId) -> ClientRow {
        let (sub, psub) = self.pubsub.counts(id);
        let dirty_cas = self.txns.is_dirty(id);
        ClientRow {
            db: self.selected_db(id),
            sub,
            psub,
            // Redis stops queueing (and counting) once a watched key changed: EXEC fails.
            multi: self.txns.queued(id).map(|n| if dirty_cas { 0 } else { n }),
            dirty_cas,
            argv_mem: if id == self.executing {
                self.argv_len
            } else {
                0
            },
        }
    }

    fn client_line(&self, id: SessionId, now_ms: u64, out: &mut String) {
        if let Some(c) = self.clients.get(id) {
            out.push_str(&c.line(id, &self.client_row(id), now_ms));
            out.push('\n');
        }
    }

    /// The CLIENT subcommands answered from the registry (SETNAME, GETNAME and ID are
    /// answered in `server_command`).
    pub(super) fn client_command(
        &mut self,
        session: SessionId,
        cmd: ClientCommand,
        now_ms: u64,
    ) -> Frame {
        match cmd {
            ClientCommand::Info => {
                let mut out = String::new();
                self.client_line(session, now_ms, &mut out);
                Frame::verbatim_text(out)
            }
            ClientCommand::List { kind, ids } => {
                let mut out = String::new();
                let ids: Vec<SessionId> = match ids {
                    Some(ids) => ids
                        .into_iter()
                        .filter_map(|id| u64::try_from(id).ok())
                        .collect(),
                    None => self.clients.ids(),
                };
                for id in ids {
                    if kind.is_none_or(|k| k.matches(&self.client_row(id))) {
                        self.client_line(id, now_ms, &mut out);
                    }
                }
                Frame::verbatim_text(out)
            }
            ClientCommand::SetInfo { lib_ver, value } => {
                if let Some(c) = self.clients.get_mut(session) {
                    let value = (!value.is_empty()).then_some(value);
                    if lib_ver {
                        c.lib_ver = value;
                    } else {
                        c.lib_name = value;
                    }
                }
                Frame::ok()
            }
            ClientCommand::Kill(filter) => self.kill(session, &filter),
            ClientCommand::Reply(mode) => {
                self.clients.reply_mode_used();
                if let Some(c) = self.clients.get_mut(session) {
                    c.reply = match (mode, c.reply) {
                        // SKIP while OFF stays OFF, as in Redis.
                        (ReplyMode::SkipNext, ReplyMode::Off) => ReplyMode::Off,
                        (mode, _) => mode,
                    };
                }
                Frame::ok()
            }
            ClientCommand::NoEvict(on) => {
                if let Some(c) = self.clients.get_mut(session) {
                    c.no_evict = on;
                }
                Frame::ok()
            }
            ClientCommand::NoTouch(on) => {
                if let Some(c) = self.clients.get_mut(session) {
                    c.no_touch = on;
                }
                Frame::ok()
            }
            // Answered by `server_command`.
            ClientCommand::SetName(_) | ClientCommand::GetName | ClientCommand::Id => Frame::Null,
        }
    }

    /// CLIENT KILL: every matching connection is forgotten at once (as Redis frees it) and
    /// handed to the caller to close ([`Store::take_kills`]); the killing session itself is
    /// closed after its reply.
    fn kill(&mut self, session: SessionId, filter: &KillFilter) -> Frame {
        let text = |b: &Option<Bytes>, s: &str| b.as_ref().is_none_or(|b| b[..] == *s.as_bytes());
        let mut killed = 0;
        for id in self.clients.ids() {
            let Some(c) = self.clients.get(id) else {
                continue;
            };
            if !text(&filter.addr, &c.peer.addr)
                || !text(&filter.laddr, &c.peer.laddr)
                || filter.id.is_some_and(|want| want != id)
                || filter
                    .kind
                    .is_some_and(|k| !k.matches(&self.client_row(id)))
                || (filter.skipme && id == session)
            {
                continue;
            }
            killed += 1;
            if id == session {
                self.controls.push((id, SessionControl::CloseAfterReply));
            } else {
                self.txns.session_closed(id);
                self.selected.remove(&id);
                self.pubsub.session_closed(id);
                self.clients.close(id);
                self.clients.mark_killed(id);
                self.controls.push((id, SessionControl::Close));
            }
        }
        match (filter.old_form, killed) {
            (true, 0) => ReplyError::NoSuchClient.into(),
            (true, _) => Frame::ok(),
            (false, n) => Frame::Integer(n),
        }
    }

    /// RESET's part in the store: out of MULTI, no watches, no subscriptions (without
    /// confirmations, as Redis), database 0, no name, replies on, no monitor, not READONLY.
    pub(super) fn reset(&mut self, session: SessionId) -> Frame {
        self.txns.session_closed(session);
        self.pubsub.session_closed(session);
        self.select(session, 0);
        self.clients.stop_monitor(session);
        if let Some(c) = self.clients.get_mut(session) {
            c.name = None;
            c.reply = ReplyMode::On;
            c.read_only = false;
            c.multi_mem = 0;
            c.queued.clear();
        }
        Frame::Simple("RESET".into())
    }

    /// After `request` of `session` ran with `reply`: MULTI's figures, and the MONITOR
    /// lines, as Redis shows them: every command that ran except administrative ones; not
    /// unknown ones or those refused for their arity; a queued command when EXEC runs it.
    pub(super) fn after_request(
        &mut self,
        session: SessionId,
        request: &[Bytes],
        named: Option<Named>,
        command: (LastCmd, bool),
        reply: &Frame,
    ) {
        let monitoring = !self.clients.monitors().is_empty();
        if matches!(reply, Frame::Simple(s) if s == "QUEUED") {
            let mem = self.argv_len + 8 * request.len() as u64;
            let dirty = self.txns.is_dirty(session);
            if let Some(c) = self.clients.get_mut(session).filter(|_| !dirty) {
                c.multi_mem += mem;
                // (Shared buffers: a copy costs a reference count per argument.)
                c.queued.push(request.to_vec());
            }
            return;
        }
        let (cmd, admin) = command;
        let name = match cmd {
            LastCmd::None => return,
            LastCmd::Cmd(name) | LastCmd::Sub(name, _) => name,
        };
        let queued = if matches!(name, "multi" | "exec" | "discard") {
            self.clients.get_mut(session).map(|c| {
                c.multi_mem = 0;
                std::mem::take(&mut c.queued)
            })
        } else {
            None
        };
        if !monitoring {
            return;
        }
        if let Some(requests) = queued.filter(|_| name == "exec") {
            for r in requests {
                if !command_of(&r).1 {
                    self.feed_monitors(session, &r);
                }
            }
        }
        let fits = named.is_some_and(|n| n.spec.arity_fits(request.len()));
        if fits && !admin {
            self.feed_monitors(session, request);
        }
    }

    fn feed_monitors(&mut self, session: SessionId, request: &[Bytes]) {
        let addr = self
            .clients
            .get(session)
            .map(|c| c.peer.addr.clone())
            .unwrap_or_default();
        let line = monitor_line(self.now_us, self.selected_db(session), &addr, request);
        let out = self
            .clients
            .monitors()
            .iter()
            .map(|m| (*m, Frame::Simple(line.clone().into())))
            .collect();
        self.deliver(out);
    }
}

/// MONITOR's line for `request` run by a client at `addr` in database `db` at `now_us`
/// (Unix µs), as Redis's `replicationFeedMonitors` writes it: `1700000000.123456 [0
/// 127.0.0.1:5555] "SET" "k" "v"`, each argument quoted as `sdscatrepr` does.
pub fn monitor_line(now_us: u64, db: u16, addr: &str, request: &[Bytes]) -> String {
    let mut out = format!(
        "{}.{:06} [{db} {addr}]",
        now_us / 1_000_000,
        now_us % 1_000_000
    );
    for arg in request {
        out.push(' ');
        repr(arg, &mut out);
    }
    out
}

/// Redis's `sdscatrepr`: a double-quoted string, escaped as [`crate::repr::escape_into`] does.
fn repr(bytes: &[u8], out: &mut String) {
    out.push('"');
    crate::repr::escape_into(bytes, out);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::test_support::req;

    fn peer() -> Peer {
        Peer {
            addr: "127.0.0.1:5555".into(),
            laddr: "127.0.0.1:6379".into(),
            fd: 9,
        }
    }

    #[test]
    fn a_line_has_redis_7s_fields_in_order() {
        let mut clients = Clients::default();
        clients.open(4, peer(), 10_000);
        let info = req(&["client", "info"]);
        clients.touch(
            4,
            table::resolve(&info),
            info.len(),
            Protocol::Resp3,
            12_500,
        );
        let c = clients.get(4).unwrap();
        let row = ClientRow {
            argv_mem: 10,
            ..ClientRow::default()
        };
        assert_eq!(
            c.line(4, &row, 14_000),
            "id=4 addr=127.0.0.1:5555 laddr=127.0.0.1:6379 fd=9 name= age=4 idle=1 flags=N \
             db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=10 multi-mem=0 \
             rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd=client|info user=default \
             redir=-1 resp=3 lib-name= lib-ver="
        );
    }

    #[test]
    fn flags_follow_redis_order() {
        let mut c = Client {
            monitor: true,
            no_evict: true,
            ..Client::default()
        };
        let row = ClientRow {
            sub: 1,
            multi: Some(2),
            dirty_cas: true,
            ..ClientRow::default()
        };
        assert_eq!(c.flags(&row), "OPxde");
        c.read_only = true;
        assert_eq!(c.flags(&row), "OPxdre");
        c.monitor = false;
        c.no_evict = false;
        c.read_only = false;
        assert_eq!(c.flags(&ClientRow::default()), "N");
        c.no_touch = true;
        assert_eq!(c.flags(&ClientRow::default()), "T");
    }

    #[test]
    fn the_last_command_is_its_full_name() {
        let name = |w: &[&str]| command_of(&req(w)).0.to_string();
        assert_eq!(name(&["GET", "k"]), "get");
        assert_eq!(name(&["Client", "INFO"]), "client|info");
        assert_eq!(name(&["client"]), "client");
        assert_eq!(name(&["client", "frob"]), "NULL");
        assert_eq!(name(&["frob"]), "NULL");
        assert!(command_of(&req(&["client", "list"])).1);
        assert!(command_of(&req(&["config", "get", "x"])).1);
        assert!(!command_of(&req(&["client", "info"])).1);
        assert!(!command_of(&req(&["set", "k", "v"])).1);
    }

    #[test]
    fn reply_off_and_skip_drop_replies() {
        let mut clients = Clients::default();
        clients.open(1, peer(), 0);
        let set = req(&["set", "k", "v"]);
        clients.reply_mode_used();
        clients.get_mut(1).unwrap().reply = ReplyMode::SkipNext;
        clients.touch(1, table::resolve(&set), set.len(), Protocol::Resp2, 0);
        assert!(clients.drops_reply(1));
        clients.touch(1, table::resolve(&set), set.len(), Protocol::Resp2, 0);
        assert!(!clients.drops_reply(1));
        clients.get_mut(1).unwrap().reply = ReplyMode::Off;
        clients.touch(1, table::resolve(&set), set.len(), Protocol::Resp2, 0);
        assert!(clients.drops_reply(1));
        // An unknown session (golden scripts, the bench) always gets its replies.
        assert!(!clients.drops_reply(2));
    }

    #[test]
    fn ids_list_oldest_first_and_kills_are_remembered() {
        let mut clients = Clients::default();
        for id in [7, 3, 5] {
            clients.open(id, peer(), 0);
        }
        assert_eq!(clients.ids(), vec![3, 5, 7]);
        clients.start_monitor(5);
        assert_eq!(clients.monitors(), &[5]);
        assert!(clients.close(5));
        clients.mark_killed(5);
        assert!(clients.monitors().is_empty());
        assert!(clients.is_killed(5));
        assert!(clients.closed_after_kill(5));
        assert!(!clients.is_killed(5));
        assert!(!clients.close(5));
    }

    #[test]
    fn monitor_lines_quote_as_sdscatrepr() {
        let line = monitor_line(
            1_700_000_000_000_123,
            2,
            "127.0.0.1:5555",
            &[
                Bytes::from_static(b"SET"),
                Bytes::from_static(b"a \"b\"\\\n\r\t\x07\x08"),
                Bytes::from_static(b"\x00\xff"),
            ],
        );
        assert_eq!(
            line,
            r#"1700000000.000123 [2 127.0.0.1:5555] "SET" "a \"b\"\\\n\r\t\a\b" "\x00\xff""#
        );
    }

    #[test]
    fn client_types_parse_as_redis_names_them() {
        assert_eq!(ClientType::parse(b"Normal"), Some(ClientType::Normal));
        assert_eq!(ClientType::parse(b"slave"), Some(ClientType::Replica));
        assert_eq!(ClientType::parse(b"replica"), Some(ClientType::Replica));
        assert_eq!(ClientType::parse(b"foo"), None);
        let sub = ClientRow {
            psub: 1,
            ..ClientRow::default()
        };
        assert!(ClientType::PubSub.matches(&sub));
        assert!(!ClientType::Normal.matches(&sub));
        assert!(!ClientType::Master.matches(&ClientRow::default()));
    }
}
