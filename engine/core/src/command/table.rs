//! The command table: one [`CommandSpec`] row per command, the only place a command is
//! described. It drives
//! - parsing: [`lookup`] finds the row by name (case-insensitive, no allocation: the name is
//!   lower-cased into one `u128` and looked up in a hash table built at compile time, which
//!   also rejects duplicate names), the arity is checked from the row, then the row's parser
//!   runs (see [`super::parse`]). Measured in release, min of 20 × 100k (2026, loaded 2-core
//!   VM): `lookup` 5–8 ns; a whole parse of GET 19 ns (22 with the old `match` on upper-cased
//!   bytes), SET 41 (47), PING 17 (38: no lower-cased `String` any more);
//! - `is_write` (storage refuses writes after a failure) and MULTI queueing (`NOT_QUEUED`,
//!   `NO_MULTI`; see [`super::txn::Transactions::admit`]);
//! - the pre-auth check (`NO_AUTH`) and the commands the session answers itself (`session`);
//! - COMMAND, COMMAND COUNT / LIST / INFO / DOCS, rendered below in Redis 7's RESP2 shapes.
//!
//! **Adding a command** is one function and one row: write `parse_<name>(spec, rest)` in its
//! family file (`strings`, `keys`, `server`, `txn`; `rest` is every argument after the name,
//! already checked against the row's arity), and add the row to [`TABLE`]. A data command's
//! parser returns a [`super::DataOp`] for its family's apply function (one arm in
//! `DataCommand::apply`); a server command's parser may answer at once with
//! `ServerCommand::Reply`. Nothing else lists commands.
//!
//! COMMAND and COMMAND INFO print Redis 7.0's ten-field entries (name, arity, flags, first,
//! last, step, ACL categories, tips, key specs, subcommands), equal to redis-server 7.0.15's
//! for every command both have (`tests/tests/it/command_table_redis.rs`). Departures, all
//! deliberate: a container lists only the subcommands MooDB has, in table order (Redis: all,
//! in hash order), and CLIENT SETINFO / NO-TOUCH are described as in Redis 7.2; the flag
//! MooDB uses itself (`NOT_QUEUED`) is not printed; there are no argument docs; MooDB's own
//! commands (UPDATE, CAS, DELETE) give MooDB's version as "since".

use bytes::Bytes;

use super::{
    config, databases, diagnostics, keys, pubsub, replication, server, strings, txn, Command,
    ReplyError,
};
use crate::resp::Frame;

/// Parses the arguments after the command name (their number already fits `spec.arity`).
pub type Parser = fn(spec: &'static CommandSpec, rest: &[Bytes]) -> Result<Command, Frame>;

/// A set of command flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(u32);

impl Flags {
    // Redis' words, printed by COMMAND in this order.
    /// May change the key space (refused after a storage failure).
    pub const WRITE: Flags = Flags(1);
    /// Only reads the key space.
    pub const READONLY: Flags = Flags(1 << 1);
    pub const DENYOOM: Flags = Flags(1 << 2);
    pub const ADMIN: Flags = Flags(1 << 3);
    pub const NOSCRIPT: Flags = Flags(1 << 4);
    pub const LOADING: Flags = Flags(1 << 5);
    pub const STALE: Flags = Flags(1 << 6);
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 7);
    pub const FAST: Flags = Flags(1 << 8);
    pub const PUBSUB: Flags = Flags(1 << 9);
    pub const NO_ASYNC_LOADING: Flags = Flags(1 << 10);
    pub const ALLOW_BUSY: Flags = Flags(1 << 11);
    /// May be sent before AUTH (Redis's `no_auth`).
    pub const NO_AUTH: Flags = Flags(1 << 16);
    /// Refused inside MULTI (SAVE: its reply waits for a checkpoint; Redis's `no_multi`).
    pub const NO_MULTI: Flags = Flags(1 << 18);
    // MooDB's own, not printed.
    /// Runs at once even inside MULTI instead of being queued (MULTI, EXEC, DISCARD, WATCH).
    pub const NOT_QUEUED: Flags = Flags(1 << 17);

    /// The printed flags with their Redis words, in Redis 7.0's order
    /// (`addReplyCommandFlags`).
    const WORDS: [(Flags, &'static str); 14] = [
        (Flags::WRITE, "write"),
        (Flags::READONLY, "readonly"),
        (Flags::DENYOOM, "denyoom"),
        (Flags::ADMIN, "admin"),
        (Flags::PUBSUB, "pubsub"),
        (Flags::NOSCRIPT, "noscript"),
        (Flags::LOADING, "loading"),
        (Flags::STALE, "stale"),
        (Flags::SKIP_SLOWLOG, "skip_slowlog"),
        (Flags::FAST, "fast"),
        (Flags::NO_AUTH, "no_auth"),
        (Flags::NO_ASYNC_LOADING, "no_async_loading"),
        (Flags::NO_MULTI, "no_multi"),
        (Flags::ALLOW_BUSY, "allow_busy"),
    ];

    /// The union of `flags`.
    pub const fn of(flags: &[Flags]) -> Flags {
        let mut bits = 0;
        let mut i = 0;
        while i < flags.len() {
            bits |= flags[i].0;
            i += 1;
        }
        Flags(bits)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The Redis words of the printed flags.
    pub fn words(self) -> impl Iterator<Item = &'static str> {
        Flags::WORDS
            .into_iter()
            .filter(move |(f, _)| self.contains(*f))
            .map(|(_, w)| w)
    }
}

/// A command the session answers itself, never sending it to the store owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCommand {
    /// Reply `+OK` after every earlier reply, then close.
    Quit,
    /// `AUTH [user] password`.
    Auth,
    /// `HELLO [protover [AUTH user pass] [SETNAME name]]`: the connection's protocol, before
    /// and after authentication.
    Hello,
    /// `RESET`: the session resets the protocol (RESP2) and authentication, then sends it to
    /// the store, which resets the rest (MULTI, WATCH, subscriptions, database, name, ...).
    Reset,
}

/// One key spec of COMMAND INFO: a key at `index`, then up to `lastkey` (relative: 0 is
/// that one key, negative from the end) every `keystep`.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub notes: &'static str,
    pub flags: &'static [&'static str],
    pub index: i64,
    pub lastkey: i64,
    pub keystep: i64,
}

impl KeySpec {
    const fn one(index: i64, flags: &'static [&'static str]) -> KeySpec {
        KeySpec {
            notes: "",
            flags,
            index,
            lastkey: 0,
            keystep: 1,
        }
    }

    const fn notes(mut self, notes: &'static str) -> KeySpec {
        self.notes = notes;
        self
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Lower case, as COMMAND prints it.
    pub name: &'static str,
    /// Number of words including the name; negative: at least that many.
    pub arity: i64,
    pub flags: Flags,
    /// Position of the first key, of the last (negative: from the end), and the step.
    pub first_key: i64,
    pub last_key: i64,
    pub key_step: i64,
    /// The key-spec flags COMMAND INFO prints (`RO`, `RW`, `access`, ...).
    pub key_flags: &'static [&'static str],
    /// ACL categories COMMAND INFO prints (`@read`, `@string`, ...).
    pub acl: &'static [&'static str],
    /// Command tips COMMAND INFO prints (`nondeterministic_output`, ...).
    pub tips: &'static [&'static str],
    /// Key specs, when they are not the one range spec `keys` describes (several keys with
    /// different flags, or notes).
    pub key_specs: &'static [KeySpec],
    /// A container's subcommands (CLIENT INFO, CONFIG GET, ...): their own rows, named
    /// `container|sub`, printed as COMMAND INFO's last field and naming the command in
    /// CLIENT LIST's `cmd=`. Parsing stays the container's parser's.
    pub subcommands: &'static [CommandSpec],
    /// Answered by the session, not the store owner.
    pub session: Option<SessionCommand>,
    pub parse: Parser,
    /// COMMAND DOCS group: `string`, `generic`, `server`, `connection`, `transactions`.
    pub group: &'static str,
    /// The Redis version whose behaviour it matches (MooDB's version for its own commands).
    pub since: &'static str,
    pub complexity: &'static str,
    /// One line.
    pub summary: &'static str,
}

impl CommandSpec {
    const fn new(name: &'static str, arity: i64, flags: &[Flags], parse: Parser) -> Self {
        CommandSpec {
            name,
            arity,
            flags: Flags::of(flags),
            first_key: 0,
            last_key: 0,
            key_step: 0,
            key_flags: &[],
            acl: &[],
            tips: &[],
            key_specs: &[],
            subcommands: &[],
            session: None,
            parse,
            group: "",
            since: "",
            complexity: "",
            summary: "",
        }
    }

    const fn keys(
        mut self,
        first: i64,
        last: i64,
        step: i64,
        flags: &'static [&'static str],
    ) -> Self {
        self.first_key = first;
        self.last_key = last;
        self.key_step = step;
        self.key_flags = flags;
        self
    }

    const fn acl(mut self, acl: &'static [&'static str]) -> Self {
        self.acl = acl;
        self
    }

    const fn tips(mut self, tips: &'static [&'static str]) -> Self {
        self.tips = tips;
        self
    }

    const fn specs(mut self, specs: &'static [KeySpec]) -> Self {
        self.key_specs = specs;
        self
    }

    const fn subs(mut self, subs: &'static [CommandSpec]) -> Self {
        self.subcommands = subs;
        self
    }

    const fn session(mut self, which: SessionCommand) -> Self {
        self.session = Some(which);
        self
    }

    const fn doc(
        mut self,
        group: &'static str,
        since: &'static str,
        complexity: &'static str,
        summary: &'static str,
    ) -> Self {
        self.group = group;
        self.since = since;
        self.complexity = complexity;
        self.summary = summary;
        self
    }

    /// Whether a request of `argc` words (the name included) has the right number.
    pub fn arity_fits(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    pub fn is(&self, flags: Flags) -> bool {
        self.flags.contains(flags)
    }
}

use Flags as F;
use SessionCommand as S;

/// A subcommand's row: parsed by its container's parser, so `parse` is the container's.
const fn sub(name: &'static str, arity: i64, flags: &[Flags], parse: Parser) -> CommandSpec {
    CommandSpec::new(name, arity, flags, parse)
}

const CONN_FLAGS: &[Flags] = &[F::NOSCRIPT, F::LOADING, F::STALE];
const CONN_ADMIN_FLAGS: &[Flags] = &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE];
const CONN_ACL: &[&str] = &["@slow", "@connection"];
const CONN_ADMIN_ACL: &[&str] = &["@admin", "@slow", "@dangerous", "@connection"];

/// CLIENT's subcommands MooDB has, as Redis 7.0 describes them (SETINFO and NO-TOUCH as 7.2).
const CLIENT_SUBS: &[CommandSpec] = &[
    sub("client|getname", 2, CONN_FLAGS, server::parse_client).acl(CONN_ACL),
    sub("client|id", 2, CONN_FLAGS, server::parse_client).acl(CONN_ACL),
    sub("client|info", 2, CONN_FLAGS, server::parse_client)
        .acl(CONN_ACL)
        .tips(&["nondeterministic_output"]),
    sub("client|kill", -3, CONN_ADMIN_FLAGS, server::parse_client).acl(CONN_ADMIN_ACL),
    sub("client|list", -2, CONN_ADMIN_FLAGS, server::parse_client)
        .acl(CONN_ADMIN_ACL)
        .tips(&["nondeterministic_output"]),
    sub("client|no-evict", 3, CONN_ADMIN_FLAGS, server::parse_client).acl(CONN_ADMIN_ACL),
    sub("client|no-touch", 3, CONN_FLAGS, server::parse_client).acl(CONN_ACL),
    sub("client|reply", 3, CONN_FLAGS, server::parse_client).acl(CONN_ACL),
    sub("client|setinfo", 4, CONN_FLAGS, server::parse_client).acl(CONN_ACL),
    sub("client|setname", 3, CONN_FLAGS, server::parse_client).acl(CONN_ACL),
];

const COMMAND_FLAGS: &[Flags] = &[F::LOADING, F::STALE];

/// COMMAND's subcommands.
const COMMAND_SUBS: &[CommandSpec] = &[
    sub("command|count", 2, COMMAND_FLAGS, server::parse_command).acl(CONN_ACL),
    sub("command|docs", -2, COMMAND_FLAGS, server::parse_command)
        .acl(CONN_ACL)
        .tips(&["nondeterministic_output_order"]),
    sub("command|info", -2, COMMAND_FLAGS, server::parse_command)
        .acl(CONN_ACL)
        .tips(&["nondeterministic_output_order"]),
    sub("command|list", -2, COMMAND_FLAGS, server::parse_command)
        .acl(CONN_ACL)
        .tips(&["nondeterministic_output_order"]),
];

const ADMIN_ACL: &[&str] = &["@admin", "@slow", "@dangerous"];

/// SLOWLOG's subcommands, as Redis 7.0 describes them.
const SLOWLOG_SUBS: &[CommandSpec] = &[
    sub("slowlog|get", -2, ADMIN_FLAGS, diagnostics::parse_slowlog)
        .acl(ADMIN_ACL)
        .tips(&["request_policy:all_nodes", "nondeterministic_output"]),
    sub(
        "slowlog|help",
        2,
        &[F::LOADING, F::STALE],
        diagnostics::parse_slowlog,
    )
    .acl(&["@slow"]),
    sub("slowlog|len", 2, ADMIN_FLAGS, diagnostics::parse_slowlog)
        .acl(ADMIN_ACL)
        .tips(&[
            "request_policy:all_nodes",
            "response_policy:agg_sum",
            "nondeterministic_output",
        ]),
    sub("slowlog|reset", 2, ADMIN_FLAGS, diagnostics::parse_slowlog)
        .acl(ADMIN_ACL)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
];

/// LATENCY's subcommands (not GRAPH nor HISTOGRAM), as Redis 7.0 describes them.
const LATENCY_SUBS: &[CommandSpec] = &[
    latency_sub("latency|doctor", 2),
    sub(
        "latency|help",
        2,
        &[F::LOADING, F::STALE],
        diagnostics::parse_latency,
    )
    .acl(&["@slow"]),
    latency_sub("latency|history", 3),
    latency_sub("latency|latest", 2),
    sub(
        "latency|reset",
        -2,
        CONN_ADMIN_FLAGS,
        diagnostics::parse_latency,
    )
    .acl(ADMIN_ACL)
    .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
];

/// A LATENCY subcommand that reports (nondeterministic, answered per node).
const fn latency_sub(name: &'static str, arity: i64) -> CommandSpec {
    sub(name, arity, CONN_ADMIN_FLAGS, diagnostics::parse_latency)
        .acl(ADMIN_ACL)
        .tips(&[
            "nondeterministic_output",
            "request_policy:all_nodes",
            "response_policy:special",
        ])
}

/// A CLUSTER subcommand clients probe, as Redis 7.0 describes it.
const fn cluster_sub(name: &'static str, tips: &'static [&'static str]) -> CommandSpec {
    sub(name, 2, &[F::STALE], server::parse_cluster)
        .acl(&["@slow"])
        .tips(tips)
}

const NONDETERMINISTIC: &[&str] = &["nondeterministic_output"];

/// CLUSTER's subcommands MooDB lists (those clients probe); every one answers that cluster
/// support is disabled.
const CLUSTER_SUBS: &[CommandSpec] = &[
    cluster_sub("cluster|info", NONDETERMINISTIC),
    cluster_sub("cluster|myid", &[]),
    cluster_sub("cluster|nodes", NONDETERMINISTIC),
    cluster_sub("cluster|shards", NONDETERMINISTIC),
    cluster_sub("cluster|slots", NONDETERMINISTIC),
];

/// Flags of an administrative subcommand that scripts may run.
const ADMIN_FLAGS: &[Flags] = &[F::ADMIN, F::LOADING, F::STALE];

/// CONFIG's subcommands.
const CONFIG_SUBS: &[CommandSpec] = &[
    sub("config|get", -3, CONN_ADMIN_FLAGS, config::parse_config).acl(ADMIN_ACL),
    sub(
        "config|resetstat",
        2,
        CONN_ADMIN_FLAGS,
        config::parse_config,
    )
    .acl(ADMIN_ACL),
    sub("config|rewrite", 2, CONN_ADMIN_FLAGS, config::parse_config).acl(ADMIN_ACL),
    sub("config|set", -4, CONN_ADMIN_FLAGS, config::parse_config)
        .acl(ADMIN_ACL)
        .tips(&["request_policy:all_nodes", "response_policy:all_succeeded"]),
];

/// An OBJECT subcommand: reads the key at position 2.
const fn object_sub(name: &'static str) -> CommandSpec {
    sub(name, 3, &[F::READONLY], keys::parse_object)
        .keys(2, 2, 1, &["RO"])
        .acl(&["@keyspace", "@read", "@slow"])
        .tips(&["nondeterministic_output"])
}

/// OBJECT's subcommands.
const OBJECT_SUBS: &[CommandSpec] = &[
    object_sub("object|encoding"),
    object_sub("object|freq"),
    object_sub("object|idletime"),
    object_sub("object|refcount"),
];

const PUBSUB_FLAGS: &[Flags] = &[F::PUBSUB, F::LOADING, F::STALE];

/// PUBSUB's subcommands.
const PUBSUB_SUBS: &[CommandSpec] = &[
    sub("pubsub|channels", -2, PUBSUB_FLAGS, pubsub::parse_pubsub).acl(&["@pubsub", "@slow"]),
    sub("pubsub|numpat", 2, PUBSUB_FLAGS, pubsub::parse_pubsub).acl(&["@pubsub", "@slow"]),
    sub("pubsub|numsub", -2, PUBSUB_FLAGS, pubsub::parse_pubsub).acl(&["@pubsub", "@slow"]),
];

const ROWS: &[CommandSpec] = &[
    // strings
    CommandSpec::new("get", 2, &[F::READONLY, F::FAST], strings::parse_get)
        .keys(1, 1, 1, &["RO", "access"])
        .acl(&["@read", "@string", "@fast"])
        .doc("string", "1.0.0", "O(1)", "Get the value of a key"),
    CommandSpec::new("set", -3, &[F::WRITE, F::DENYOOM], strings::parse_set)
        .keys(1, 1, 1, &["RW", "access", "update", "variable_flags"])
        .acl(&["@write", "@string", "@slow"])
        .specs(&[KeySpec::one(1, &["RW", "access", "update", "variable_flags"])
        .notes("RW and ACCESS due to the optional `GET` argument")])
    .doc("string", "1.0.0", "O(1)", "Set the string value of a key"),
    CommandSpec::new("update", 3, &[F::WRITE, F::DENYOOM], strings::parse_update)
        .keys(1, 1, 1, &["RW", "update"])
        .acl(&["@write", "@string", "@slow"])
        .doc(
            "string",
            "0.1.0",
            "O(1)",
            "Set the value of a key only if it exists (MooDB; SET key value XX)",
        ),
    CommandSpec::new(
        "cas",
        4,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_cas,
    )
    .keys(1, 1, 1, &["RW", "access", "update"])
    .acl(&["@write", "@string", "@fast"])
    .doc(
        "string",
        "0.1.0",
        "O(1)",
        "Set a key to a new value only if it holds the expected one (MooDB)",
    ),
    CommandSpec::new(
        "append",
        3,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_append,
    )
    .keys(1, 1, 1, &["RW", "insert"])
    .acl(&["@write", "@string", "@fast"])
    .doc("string", "2.0.0", "O(1)", "Append a value to a key"),
    CommandSpec::new("strlen", 2, &[F::READONLY, F::FAST], strings::parse_strlen)
        .keys(1, 1, 1, &["RO"])
        .acl(&["@read", "@string", "@fast"])
        .doc(
            "string",
            "2.2.0",
            "O(1)",
            "Get the length of the value stored in a key",
        ),
    CommandSpec::new(
        "incr",
        2,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_incr,
    )
    .keys(1, 1, 1, &["RW", "access", "update"])
    .acl(&["@write", "@string", "@fast"])
    .doc(
        "string",
        "1.0.0",
        "O(1)",
        "Increment the integer value of a key by one",
    ),
    CommandSpec::new(
        "decr",
        2,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_decr,
    )
    .keys(1, 1, 1, &["RW", "access", "update"])
    .acl(&["@write", "@string", "@fast"])
    .doc(
        "string",
        "1.0.0",
        "O(1)",
        "Decrement the integer value of a key by one",
    ),
    CommandSpec::new(
        "incrby",
        3,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_incrby,
    )
    .keys(1, 1, 1, &["RW", "access", "update"])
    .acl(&["@write", "@string", "@fast"])
    .doc(
        "string",
        "1.0.0",
        "O(1)",
        "Increment the integer value of a key by the given amount",
    ),
    CommandSpec::new(
        "decrby",
        3,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_decrby,
    )
    .keys(1, 1, 1, &["RW", "access", "update"])
    .acl(&["@write", "@string", "@fast"])
    .doc(
        "string",
        "1.0.0",
        "O(1)",
        "Decrement the integer value of a key by the given number",
    ),
    CommandSpec::new("mget", -2, &[F::READONLY, F::FAST], strings::parse_mget)
        .keys(1, -1, 1, &["RO", "access"])
        .acl(&["@read", "@string", "@fast"])
        .tips(&["request_policy:multi_shard"])
    .doc(
            "string",
            "1.0.0",
            "O(N) where N is the number of keys to retrieve.",
            "Get the values of all the given keys",
        ),
    CommandSpec::new("mset", -3, &[F::WRITE, F::DENYOOM], strings::parse_mset)
        .keys(1, -1, 2, &["OW", "update"])
        .acl(&["@write", "@string", "@slow"])
        .tips(&["request_policy:multi_shard", "response_policy:all_succeeded"])
    .doc(
            "string",
            "1.0.1",
            "O(N) where N is the number of keys to set.",
            "Set multiple keys to multiple values",
        ),
    CommandSpec::new("msetnx", -3, &[F::WRITE, F::DENYOOM], strings::parse_msetnx)
        .keys(1, -1, 2, &["OW", "insert"])
        .acl(&["@write", "@string", "@slow"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_min"])
    .doc(
            "string",
            "1.0.1",
            "O(N) where N is the number of keys to set.",
            "Set multiple keys to multiple values, only if none of the keys exist",
        ),
    CommandSpec::new(
        "getset",
        3,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_getset,
    )
    .keys(1, 1, 1, &["RW", "access", "update"])
    .acl(&["@write", "@string", "@fast"])
    .doc(
        "string",
        "1.0.0",
        "O(1)",
        "Set the string value of a key and return its old value",
    ),
    CommandSpec::new(
        "setnx",
        3,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_setnx,
    )
    .keys(1, 1, 1, &["OW", "insert"])
    .acl(&["@write", "@string", "@fast"])
    .doc(
        "string",
        "1.0.0",
        "O(1)",
        "Set the value of a key, only if the key does not exist",
    ),
    CommandSpec::new("setex", 4, &[F::WRITE, F::DENYOOM], strings::parse_setex)
        .keys(1, 1, 1, &["OW", "update"])
        .acl(&["@write", "@string", "@slow"])
        .doc(
            "string",
            "2.0.0",
            "O(1)",
            "Set the value and expiration of a key",
        ),
    CommandSpec::new("psetex", 4, &[F::WRITE, F::DENYOOM], strings::parse_psetex)
        .keys(1, 1, 1, &["OW", "update"])
        .acl(&["@write", "@string", "@slow"])
        .doc(
            "string",
            "2.6.0",
            "O(1)",
            "Set the value and expiration in milliseconds of a key",
        ),
    CommandSpec::new("getdel", 2, &[F::WRITE, F::FAST], strings::parse_getdel)
        .keys(1, 1, 1, &["RW", "access", "delete"])
        .acl(&["@write", "@string", "@fast"])
        .doc(
            "string",
            "6.2.0",
            "O(1)",
            "Get the value of a key and delete the key",
        ),
    CommandSpec::new("getex", -2, &[F::WRITE, F::FAST], strings::parse_getex)
        .keys(1, 1, 1, &["RW", "access", "update"])
        .acl(&["@write", "@string", "@fast"])
        .specs(&[KeySpec::one(1, &["RW", "access", "update"])
        .notes("RW and UPDATE because it changes the TTL")])
    .doc(
            "string",
            "6.2.0",
            "O(1)",
            "Get the value of a key and optionally set its expiration",
        ),
    CommandSpec::new("getrange", 4, &[F::READONLY], strings::parse_getrange)
        .keys(1, 1, 1, &["RO", "access"])
        .acl(&["@read", "@string", "@slow"])
        .doc(
            "string",
            "2.4.0",
            "O(N) where N is the length of the returned string.",
            "Get a substring of the string stored at a key",
        ),
    CommandSpec::new("substr", 4, &[F::READONLY], strings::parse_getrange)
        .keys(1, 1, 1, &["RO", "access"])
        .acl(&["@read", "@string", "@slow"])
        .doc(
            "string",
            "1.0.0",
            "O(N) where N is the length of the returned string.",
            "Get a substring of the string stored at a key",
        ),
    CommandSpec::new(
        "setrange",
        4,
        &[F::WRITE, F::DENYOOM],
        strings::parse_setrange,
    )
    .keys(1, 1, 1, &["RW", "update"])
    .acl(&["@write", "@string", "@slow"])
    .doc(
        "string",
        "2.2.0",
        "O(1), not counting the time taken to copy the new string in place.",
        "Overwrite part of a string at key starting at the specified offset",
    ),
    CommandSpec::new(
        "incrbyfloat",
        3,
        &[F::WRITE, F::DENYOOM, F::FAST],
        strings::parse_incrbyfloat,
    )
    .keys(1, 1, 1, &["RW", "access", "update"])
    .acl(&["@write", "@string", "@fast"])
    .doc(
        "string",
        "2.6.0",
        "O(1)",
        "Increment the float value of a key by the given amount",
    ),
    CommandSpec::new("lcs", -3, &[F::READONLY], strings::parse_lcs)
        .keys(1, 2, 1, &["RO", "access"])
        .acl(&["@read", "@string", "@slow"])
        .doc(
            "string",
            "7.0.0",
            "O(N*M) where N and M are the lengths of s1 and s2, respectively",
            "Find longest common substring",
        ),
    // keys
    CommandSpec::new("del", -2, &[F::WRITE], keys::parse_del)
        .keys(1, -1, 1, &["RM", "delete"])
        .acl(&["@keyspace", "@write", "@slow"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
    .doc(
            "generic",
            "1.0.0",
            "O(N) where N is the number of keys that will be removed.",
            "Delete a key",
        ),
    CommandSpec::new("delete", -2, &[F::WRITE], keys::parse_del)
        .keys(1, -1, 1, &["RM", "delete"])
        .acl(&["@keyspace", "@write", "@slow"])
        .doc(
            "generic",
            "0.1.0",
            "O(N) where N is the number of keys that will be removed.",
            "Delete a key (MooDB: the same as DEL)",
        ),
    CommandSpec::new("unlink", -2, &[F::WRITE, F::FAST], keys::parse_del)
        .keys(1, -1, 1, &["RM", "delete"])
        .acl(&["@keyspace", "@write", "@fast"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
    .doc("generic", "4.0.0", "O(1) for each key removed regardless of its size.", "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking."),
    CommandSpec::new("touch", -2, &[F::READONLY, F::FAST], keys::parse_touch)
        .keys(1, -1, 1, &["RO"])
        .acl(&["@keyspace", "@read", "@fast"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
    .doc("generic", "3.2.1", "O(N) where N is the number of keys that will be touched.", "Alters the last access time of a key(s). Returns the number of existing keys specified."),
    CommandSpec::new("expire", -3, &[F::WRITE, F::FAST], keys::parse_expire)
        .keys(1, 1, 1, &["RW", "update"])
        .acl(&["@keyspace", "@write", "@fast"])
        .doc("generic", "1.0.0", "O(1)", "Set a key's time to live in seconds"),
    CommandSpec::new("pexpire", -3, &[F::WRITE, F::FAST], keys::parse_pexpire)
        .keys(1, 1, 1, &["RW", "update"])
        .acl(&["@keyspace", "@write", "@fast"])
        .doc("generic", "2.6.0", "O(1)", "Set a key's time to live in milliseconds"),
    CommandSpec::new("expireat", -3, &[F::WRITE, F::FAST], keys::parse_expireat)
        .keys(1, 1, 1, &["RW", "update"])
        .acl(&["@keyspace", "@write", "@fast"])
        .doc("generic", "1.2.0", "O(1)", "Set the expiration for a key as a UNIX timestamp"),
    CommandSpec::new("pexpireat", -3, &[F::WRITE, F::FAST], keys::parse_pexpireat)
        .keys(1, 1, 1, &["RW", "update"])
        .acl(&["@keyspace", "@write", "@fast"])
        .doc("generic", "2.6.0", "O(1)", "Set the expiration for a key as a UNIX timestamp specified in milliseconds"),
    CommandSpec::new("ttl", 2, &[F::READONLY, F::FAST], keys::parse_ttl)
        .keys(1, 1, 1, &["RO", "access"])
        .acl(&["@keyspace", "@read", "@fast"])
        .tips(&["nondeterministic_output"])
    .doc("generic", "1.0.0", "O(1)", "Get the time to live for a key in seconds"),
    CommandSpec::new("pttl", 2, &[F::READONLY, F::FAST], keys::parse_pttl)
        .keys(1, 1, 1, &["RO", "access"])
        .acl(&["@keyspace", "@read", "@fast"])
        .tips(&["nondeterministic_output"])
    .doc("generic", "2.6.0", "O(1)", "Get the time to live for a key in milliseconds"),
    CommandSpec::new("expiretime", 2, &[F::READONLY, F::FAST], keys::parse_expiretime)
        .keys(1, 1, 1, &["RO", "access"])
        .acl(&["@keyspace", "@read", "@fast"])
        .doc("generic", "7.0.0", "O(1)", "Get the expiration Unix timestamp for a key"),
    CommandSpec::new("pexpiretime", 2, &[F::READONLY, F::FAST], keys::parse_pexpiretime)
        .keys(1, 1, 1, &["RO", "access"])
        .acl(&["@keyspace", "@read", "@fast"])
        .doc("generic", "7.0.0", "O(1)", "Get the expiration Unix timestamp for a key in milliseconds"),
    CommandSpec::new("persist", 2, &[F::WRITE, F::FAST], keys::parse_persist)
        .keys(1, 1, 1, &["RW", "update"])
        .acl(&["@keyspace", "@write", "@fast"])
        .doc("generic", "2.2.0", "O(1)", "Remove the expiration from a key"),
    CommandSpec::new("type", 2, &[F::READONLY, F::FAST], keys::parse_type)
        .keys(1, 1, 1, &["RO"])
        .acl(&["@keyspace", "@read", "@fast"])
        .doc("generic", "1.0.0", "O(1)", "Determine the type stored at key"),
    CommandSpec::new("move", 3, &[F::WRITE, F::FAST], databases::parse_move)
        .keys(1, 1, 1, &["RW", "access", "update"])
        .acl(&["@keyspace", "@write", "@fast"])
        .doc("generic", "1.0.0", "O(1)", "Move a key to another database"),
    CommandSpec::new("swapdb", 3, &[F::WRITE, F::FAST], databases::parse_swapdb)
        .acl(&["@keyspace", "@write", "@fast", "@dangerous"])
        .doc("server", "4.0.0", "O(N) where N is the count of clients watching or blocking on keys from both databases.", "Swaps two Redis databases"),
    CommandSpec::new("rename", 3, &[F::WRITE], keys::parse_rename)
        .keys(1, 2, 1, &["RW", "access", "delete"])
        .acl(&["@keyspace", "@write", "@slow"])
        .specs(&[
        KeySpec::one(1, &["RW", "access", "delete"]),
        KeySpec::one(2, &["OW", "update"]),
    ])
    .doc("generic", "1.0.0", "O(1)", "Rename a key"),
    CommandSpec::new("renamenx", 3, &[F::WRITE, F::FAST], keys::parse_renamenx)
        .keys(1, 2, 1, &["RW", "access", "delete"])
        .acl(&["@keyspace", "@write", "@fast"])
        .specs(&[
        KeySpec::one(1, &["RW", "access", "delete"]),
        KeySpec::one(2, &["OW", "insert"]),
    ])
    .doc("generic", "1.0.0", "O(1)", "Rename a key, only if the new key does not exist"),
    CommandSpec::new("copy", -3, &[F::WRITE, F::DENYOOM], keys::parse_copy)
        .keys(1, 2, 1, &["RO", "access"])
        .acl(&["@keyspace", "@write", "@slow"])
        .specs(&[
        KeySpec::one(1, &["RO", "access"]),
        KeySpec::one(2, &["OW", "update"]),
    ])
    .doc("generic", "6.2.0", "O(N) worst case for collections, where N is the number of nested items. O(1) for string values.", "Copy a key"),
    CommandSpec::new("randomkey", 1, &[F::READONLY], keys::parse_randomkey)
        .acl(&["@keyspace", "@read", "@slow"])
        .tips(&["request_policy:all_shards", "nondeterministic_output"])
    .doc("generic", "1.0.0", "O(N) (MooDB: a pass over the key space)", "Return a random key from the keyspace"),
    CommandSpec::new("object", -2, &[], keys::parse_object)
        .acl(&["@slow"])
        .subs(OBJECT_SUBS)
    .doc("generic", "2.2.3", "Depends on subcommand.", "A container for object introspection commands"),
    CommandSpec::new("exists", -2, &[F::READONLY, F::FAST], keys::parse_exists)
        .keys(1, -1, 1, &["RO"])
        .acl(&["@keyspace", "@read", "@fast"])
        .tips(&["request_policy:multi_shard", "response_policy:agg_sum"])
    .doc(
            "generic",
            "1.0.0",
            "O(N) where N is the number of keys to check.",
            "Determine if a key exists",
        ),
    CommandSpec::new("keys", 2, &[F::READONLY], keys::parse_keys)
        .acl(&["@keyspace", "@read", "@slow", "@dangerous"])
        .tips(&["request_policy:all_shards", "nondeterministic_output_order"])
    .doc(
            "generic",
            "1.0.0",
            "O(N) with N being the number of keys in the database",
            "Find all keys matching the given pattern",
        ),
    CommandSpec::new("scan", -2, &[F::READONLY], keys::parse_scan)
        .acl(&["@keyspace", "@read", "@slow"])
        .tips(&["nondeterministic_output", "request_policy:special"])
    .doc(
            "generic",
            "2.8.0",
            "O(N) over the key space for every call",
            "Incrementally iterate the keys space",
        ),
    CommandSpec::new("dbsize", 1, &[F::READONLY, F::FAST], keys::parse_dbsize)
        .acl(&["@keyspace", "@read", "@fast"])
        .tips(&["request_policy:all_shards", "response_policy:agg_sum"])
    .doc(
            "server",
            "1.0.0",
            "O(1)",
            "Return the number of keys in the selected database",
        ),
    CommandSpec::new("flushdb", -1, &[F::WRITE], keys::parse_flushdb)
        .acl(&["@keyspace", "@write", "@slow", "@dangerous"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
    .doc(
            "server",
            "1.0.0",
            "O(N) where N is the number of keys in the selected database",
            "Remove all keys from the current database",
        ),
    CommandSpec::new("flushall", -1, &[F::WRITE], databases::parse_flushall)
        .acl(&["@keyspace", "@write", "@slow", "@dangerous"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
    .doc(
            "server",
            "1.0.0",
            "O(N) where N is the total number of keys in all databases",
            "Remove all keys from all databases",
        ),
    // server
    CommandSpec::new("ping", -1, &[F::FAST], server::parse_ping)
        .acl(&["@fast", "@connection"])
        .tips(&["request_policy:all_shards", "response_policy:all_succeeded"])
    .doc("connection", "1.0.0", "O(1)", "Ping the server"),
    // pub/sub
    CommandSpec::new(
        "subscribe",
        -2,
        &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE],
        pubsub::parse_subscribe,
    )
    .acl(&["@pubsub", "@slow"])
    .doc(
        "pubsub",
        "2.0.0",
        "O(N) where N is the number of channels to subscribe to.",
        "Listen for messages published to the given channels",
    ),
    CommandSpec::new(
        "unsubscribe",
        -1,
        &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE],
        pubsub::parse_unsubscribe,
    )
    .acl(&["@pubsub", "@slow"])
    .doc(
        "pubsub",
        "2.0.0",
        "O(N) where N is the number of clients already subscribed to a channel.",
        "Stop listening for messages posted to the given channels",
    ),
    CommandSpec::new(
        "psubscribe",
        -2,
        &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE],
        pubsub::parse_psubscribe,
    )
    .acl(&["@pubsub", "@slow"])
    .doc(
        "pubsub",
        "2.0.0",
        "O(N) where N is the number of patterns the client is already subscribed to.",
        "Listen for messages published to channels matching the given patterns",
    ),
    CommandSpec::new(
        "punsubscribe",
        -1,
        &[F::PUBSUB, F::NOSCRIPT, F::LOADING, F::STALE],
        pubsub::parse_punsubscribe,
    )
    .acl(&["@pubsub", "@slow"])
    .doc(
        "pubsub",
        "2.0.0",
        "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).",
        "Stop listening for messages posted to channels matching the given patterns",
    ),
    CommandSpec::new(
        "publish",
        3,
        &[F::PUBSUB, F::LOADING, F::STALE, F::FAST],
        pubsub::parse_publish,
    )
    .acl(&["@pubsub", "@fast"])
    .doc(
        "pubsub",
        "2.0.0",
        "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
        "Post a message to a channel",
    ),
    CommandSpec::new("pubsub", -2, &[], pubsub::parse_pubsub)
        .acl(&["@slow"])
        .subs(PUBSUB_SUBS)
    .doc(
            "pubsub",
            "2.8.0",
            "Depends on subcommand.",
            "A container for Pub/Sub commands (CHANNELS, NUMSUB, NUMPAT)",
        ),
    CommandSpec::new("echo", 2, &[F::LOADING, F::STALE, F::FAST], server::parse_echo)
        .acl(&["@fast", "@connection"])
        .doc("connection", "1.0.0", "O(1)", "Echo the given string"),
    CommandSpec::new("info", -1, &[F::LOADING, F::STALE], server::parse_info)
        .acl(&["@slow", "@dangerous"])
        .tips(&["nondeterministic_output", "request_policy:all_shards", "response_policy:special"])
    .doc(
            "server",
            "1.0.0",
            "O(1)",
            "Get information and statistics about the server",
        ),
    CommandSpec::new(
        "config",
        -2,
        &[],
        config::parse_config,
    )
    .acl(&["@slow"])
    .subs(CONFIG_SUBS)
    .doc(
        "server",
        "2.0.0",
        "Depends on subcommand.",
        "A container for server configuration commands",
    ),
    CommandSpec::new("slowlog", -2, &[], diagnostics::parse_slowlog)
        .acl(&["@slow"])
        .subs(SLOWLOG_SUBS)
        .doc(
            "server",
            "2.2.12",
            "Depends on subcommand.",
            "A container for slow log commands",
        ),
    CommandSpec::new("latency", -2, &[], diagnostics::parse_latency)
        .acl(&["@slow"])
        .subs(LATENCY_SUBS)
        .doc(
            "server",
            "2.8.13",
            "Depends on subcommand.",
            "A container for latency diagnostics commands",
        ),
    CommandSpec::new("wait", 3, &[F::NOSCRIPT], replication::parse_wait)
        .acl(&["@slow", "@connection"])
        .tips(&["request_policy:all_shards", "response_policy:agg_min"])
        .doc(
            "generic",
            "3.0.0",
            "O(1)",
            "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
        ),
    CommandSpec::new("waitaof", 4, &[F::NOSCRIPT], diagnostics::parse_waitaof)
        .acl(&["@slow", "@connection"])
        .doc(
            "generic",
            "7.2.0",
            "O(1)",
            "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas.",
        ),
    CommandSpec::new(
        "command",
        -1,
        &[F::LOADING, F::STALE],
        server::parse_command,
    )
    .acl(&["@slow", "@connection"])
    .tips(&["nondeterministic_output_order"])
    .subs(COMMAND_SUBS)
    .doc(
        "server",
        "2.8.13",
        "O(N) where N is the total number of commands",
        "Get array of command details",
    ),
    CommandSpec::new("client", -2, &[], server::parse_client)
        .acl(&["@slow"])
        .subs(CLIENT_SUBS)
    .doc(
            "connection",
            "2.4.0",
            "Depends on subcommand.",
            "A container for client connection commands",
        ),
    CommandSpec::new(
        "select",
        2,
        &[F::LOADING, F::STALE, F::FAST],
        databases::parse_select,
    )
    .acl(&["@fast", "@connection"])
    .doc(
        "connection",
        "1.0.0",
        "O(1)",
        "Change the selected database for the current connection",
    ),
    CommandSpec::new(
        "save",
        1,
        &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING, F::NO_MULTI],
        server::parse_save,
    )
    .acl(&["@admin", "@slow", "@dangerous"])
    .doc(
        "server",
        "1.0.0",
        "O(N) where N is the total number of keys",
        "Synchronously save the dataset to disk",
    ),
    CommandSpec::new("bgsave", -1, &[F::ADMIN, F::NOSCRIPT, F::NO_ASYNC_LOADING], server::parse_bgsave)
        .acl(&["@admin", "@slow", "@dangerous"])
        .doc(
            "server",
            "1.0.0",
            "O(1)",
            "Asynchronously save the dataset to disk",
        ),
    CommandSpec::new("lastsave", 1, &[F::LOADING, F::STALE, F::FAST], server::parse_lastsave)
        .acl(&["@admin", "@fast", "@dangerous"])
        .tips(&["nondeterministic_output"])
    .doc(
            "server",
            "1.0.0",
            "O(1)",
            "Get the UNIX time stamp of the last successful save to disk",
        ),
    CommandSpec::new("time", 1, &[F::LOADING, F::STALE, F::FAST], server::parse_time)
        .acl(&["@fast"])
        .tips(&["nondeterministic_output"])
    .doc("server", "2.6.0", "O(1)", "Return the current server time"),
    CommandSpec::new("role", 1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST], server::parse_role)
        .acl(&["@admin", "@fast", "@dangerous"])
        .doc(
            "server",
            "2.8.12",
            "O(1)",
            "Return the role of the instance in the context of replication",
        ),
    CommandSpec::new("readonly", 1, &[F::LOADING, F::STALE, F::FAST], server::parse_readonly)
        .acl(&["@fast", "@connection"])
        .doc(
            "cluster",
            "3.0.0",
            "O(1)",
            "Enables read queries for a connection to a cluster replica node",
        ),
    CommandSpec::new("readwrite", 1, &[F::LOADING, F::STALE, F::FAST], server::parse_readwrite)
        .acl(&["@fast", "@connection"])
        .doc(
            "cluster",
            "3.0.0",
            "O(1)",
            "Disables read queries for a connection to a cluster replica node",
        ),
    CommandSpec::new("cluster", -2, &[], server::parse_cluster)
        .acl(&["@slow"])
        .subs(CLUSTER_SUBS)
        .doc(
            "cluster",
            "3.0.0",
            "Depends on subcommand.",
            "A container for cluster commands",
        ),
    CommandSpec::new(
        "raft",
        -2,
        &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE, F::NO_MULTI],
        server::parse_raft,
    )
    .acl(&["@admin", "@slow", "@dangerous"])
    .doc(
        "server",
        "0.1.0",
        "O(N) where N is the number of nodes",
        "MooDB cluster mode: STATUS (leader, term, commit index, each node's log and lag), ADD-NODE id raft-addr client-addr, REMOVE-NODE id",
    ),
    CommandSpec::new(
        "monitor",
        1,
        &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE],
        server::parse_monitor,
    )
    .acl(&["@admin", "@slow", "@dangerous"])
    .doc(
        "server",
        "1.0.0",
        "",
        "Listen for all requests received by the server in real time",
    ),
    CommandSpec::new(
        "shutdown",
        -1,
        &[F::ADMIN, F::NOSCRIPT, F::LOADING, F::STALE, F::NO_MULTI, F::ALLOW_BUSY],
        server::parse_shutdown,
    )
    .acl(&["@admin", "@slow", "@dangerous"])
    .doc(
        "server",
        "1.0.0",
        "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
        "Synchronously save the dataset to disk and then shut down the server",
    ),
    CommandSpec::new(
        "reset",
        1,
        &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::NO_AUTH, F::ALLOW_BUSY, F::NOT_QUEUED],
        server::parse_reset,
    )
    .acl(&["@fast", "@connection"])
    .session(S::Reset)
    .doc("connection", "6.2.0", "O(1)", "Reset the connection"),
    CommandSpec::new("quit", -1, &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::NO_AUTH, F::ALLOW_BUSY], server::parse_quit)
        .acl(&["@fast", "@connection"])
        .session(S::Quit)
        .doc("connection", "1.0.0", "O(1)", "Close the connection"),
    // transactions
    CommandSpec::new(
        "multi",
        1,
        &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::ALLOW_BUSY, F::NOT_QUEUED],
        txn::parse_multi,
    )
    .acl(&["@fast", "@transaction"])
    .doc(
        "transactions",
        "1.2.0",
        "O(1)",
        "Mark the start of a transaction block",
    ),
    CommandSpec::new(
        "exec",
        1,
        &[
            F::NOSCRIPT,
            F::LOADING,
            F::STALE,
            F::SKIP_SLOWLOG,
            F::NOT_QUEUED,
        ],
        txn::parse_exec,
    )
    .acl(&["@slow", "@transaction"])
    .doc(
        "transactions",
        "1.2.0",
        "Depends on commands in the transaction",
        "Execute all commands issued after MULTI",
    ),
    CommandSpec::new(
        "discard",
        1,
        &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::ALLOW_BUSY, F::NOT_QUEUED],
        txn::parse_discard,
    )
    .acl(&["@fast", "@transaction"])
    .doc(
        "transactions",
        "2.0.0",
        "O(N), when N is the number of queued commands",
        "Discard all commands issued after MULTI",
    ),
    CommandSpec::new(
        "watch",
        -2,
        &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::ALLOW_BUSY, F::NOT_QUEUED],
        txn::parse_watch,
    )
    .keys(1, -1, 1, &["RO"])
    .acl(&["@fast", "@transaction"])
    .doc(
        "transactions",
        "2.2.0",
        "O(1) for every key.",
        "Watch the given keys to determine execution of the MULTI/EXEC block",
    ),
    CommandSpec::new(
        "unwatch",
        1,
        &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::ALLOW_BUSY],
        txn::parse_unwatch,
    )
    .acl(&["@fast", "@transaction"])
    .doc(
        "transactions",
        "2.2.0",
        "O(1)",
        "Forget about all watched keys",
    ),
    // connection (answered by the session)
    CommandSpec::new(
        "auth",
        -2,
        &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::NO_AUTH, F::ALLOW_BUSY],
        server::parse_auth,
    )
    .acl(&["@fast", "@connection"])
    .session(S::Auth)
    .doc("connection", "1.0.0", "O(1)", "Authenticate to the server"),
    CommandSpec::new(
        "hello",
        -1,
        &[F::NOSCRIPT, F::LOADING, F::STALE, F::FAST, F::NO_AUTH, F::ALLOW_BUSY],
        server::parse_hello,
    )
    .acl(&["@fast", "@connection"])
    .session(S::Hello)
    .doc("connection", "6.0.0", "O(1)", "Handshake with Redis"),
];

/// Every command, in the order COMMAND lists them.
pub static TABLE: &[CommandSpec] = ROWS;

/// The longest command name (names are checked against it at compile time).
const MAX_NAME: usize = 15;

/// A name of at most [`MAX_NAME`] bytes packed into one number (bytes in order, zero padded,
/// the length in the last byte), so finding a row costs a few integer comparisons.
const fn pack(name: &[u8]) -> u128 {
    let mut bytes = [0u8; 16];
    let mut i = 0;
    while i < name.len() {
        bytes[i] = name[i];
        i += 1;
    }
    bytes[15] = name.len() as u8;
    u128::from_le_bytes(bytes)
}

/// Slots of the name hash table (a power of two, a few times the number of rows).
const SLOTS: usize = 256;
const EMPTY: u8 = u8::MAX;

/// The slot a packed name hashes to (multiplicative hashing of both halves).
const fn slot(packed: u128) -> usize {
    let folded = (packed as u64) ^ ((packed >> 64) as u64).rotate_left(29);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOTS.trailing_zeros())) as usize
}

/// Open-addressing hash table of row positions by packed name, built at compile time; the
/// build fails on a duplicate name, an upper-case one or one longer than [`MAX_NAME`].
const INDEX: [u8; SLOTS] = build_index();

const fn build_index() -> [u8; SLOTS] {
    assert!(
        ROWS.len() < SLOTS / 2,
        "keep the hash table at most half full"
    );
    let mut index = [EMPTY; SLOTS];
    let mut i = 0;
    while i < ROWS.len() {
        let name = ROWS[i].name.as_bytes();
        assert!(
            !name.is_empty() && name.len() <= MAX_NAME,
            "a command name is empty or too long"
        );
        let mut c = 0;
        while c < name.len() {
            assert!(
                !name[c].is_ascii_uppercase(),
                "command names are lower case"
            );
            c += 1;
        }
        let packed = pack(name);
        let mut at = slot(packed);
        while index[at] != EMPTY {
            assert!(
                pack(ROWS[index[at] as usize].name.as_bytes()) != packed,
                "two rows have the same command name"
            );
            at = (at + 1) % SLOTS;
        }
        index[at] = i as u8;
        i += 1;
    }
    index
}

/// Each row's packed name, for the comparison after hashing.
const PACKED: [u128; ROWS.len()] = {
    let mut packed = [0u128; ROWS.len()];
    let mut i = 0;
    while i < ROWS.len() {
        packed[i] = pack(ROWS[i].name.as_bytes());
        i += 1;
    }
    packed
};

/// Bit `n` is set when some command answered by the session has an `n`-byte name: lets the
/// session skip the lookup for most requests.
const SESSION_NAME_LENGTHS: u32 = {
    let mut mask = 0u32;
    let mut i = 0;
    while i < ROWS.len() {
        if ROWS[i].session.is_some() {
            mask |= 1 << ROWS[i].name.len();
        }
        i += 1;
    }
    mask
};

/// The rows a request names: its command's, and for a container whose second word is a
/// subcommand MooDB has, that subcommand's own row (`config|get`). Found once per request and
/// shared by the statistics, the client registry and MONITOR.
#[derive(Debug, Clone, Copy)]
pub struct Named {
    pub spec: &'static CommandSpec,
    pub sub: Option<&'static CommandSpec>,
}

impl Named {
    /// The row that describes the request: the subcommand's if there is one.
    pub fn row(&self) -> &'static CommandSpec {
        self.sub.unwrap_or(self.spec)
    }
}

/// What `request` names ([`Named`]); `None` for an unknown command.
pub fn resolve(request: &[Bytes]) -> Option<Named> {
    let (name, rest) = request.split_first()?;
    let spec = lookup(name)?;
    let sub = match rest.first() {
        Some(word) if !spec.subcommands.is_empty() => spec.subcommands.iter().find(|s| {
            s.name
                .split_once('|')
                .is_some_and(|(_, n)| n.as_bytes().eq_ignore_ascii_case(word))
        }),
        _ => None,
    };
    Some(Named { spec, sub })
}

/// The row for command `name`, matched case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    if name.len() > MAX_NAME {
        return None;
    }
    // `pack`, lower-casing on the way.
    let mut key = (name.len() as u128) << 120;
    for (i, b) in name.iter().enumerate() {
        key |= u128::from(b.to_ascii_lowercase()) << (8 * i);
    }
    let mut at = slot(key);
    loop {
        let row = *INDEX.get(at)? as usize;
        if PACKED.get(row)? == &key {
            return TABLE.get(row);
        }
        at = (at + 1) % SLOTS;
    }
}

/// The session command `name` names, if any; cheap for every other name.
pub fn session_command(name: &[u8]) -> Option<SessionCommand> {
    if name.len() >= 32 || SESSION_NAME_LENGTHS & (1 << name.len()) == 0 {
        return None;
    }
    lookup(name).and_then(|spec| spec.session)
}

/// Flags, ACL categories, key-spec flags: a set of simple strings, as Redis 7 answers them
/// (an array in RESP2).
fn words(words: &[&'static str]) -> Frame {
    Frame::Set(words.iter().map(|w| Frame::Simple((*w).into())).collect())
}

/// A map with bulk-string keys (flat in RESP2).
fn map(pairs: Vec<(&str, Frame)>) -> Frame {
    Frame::map(pairs)
}

/// The first six fields of a command's entry: name, arity, flags, first key, last key, step.
fn command_entry(spec: &CommandSpec) -> Frame {
    Frame::Array(vec![
        Frame::bulk(spec.name),
        Frame::Integer(spec.arity),
        Frame::Set(
            spec.flags
                .words()
                .map(|w| Frame::Simple(w.into()))
                .collect(),
        ),
        Frame::Integer(spec.first_key),
        Frame::Integer(spec.last_key),
        Frame::Integer(spec.key_step),
    ])
}

/// COMMAND's and COMMAND INFO's entry, Redis 7's ten fields: name, arity, flags, first key,
/// last key, step, ACL categories, tips, key specs and subcommands (each its own entry). In
/// RESP3 Redis 7.0 sends flags, categories, tips and key specs as sets, and the subcommands
/// as an array (an empty set when there are none).
pub fn info_entry(spec: &CommandSpec) -> Frame {
    let Frame::Array(mut fields) = command_entry(spec) else {
        return Frame::Null;
    };
    fields.push(words(spec.acl));
    // Tips are bulk strings (flags and categories simple ones).
    fields.push(Frame::Set(spec.tips.iter().map(Frame::bulk).collect()));
    fields.push(Frame::Set(key_specs(spec)));
    // Redis 7.0 sends no subcommands as an empty set, but subcommands as an array.
    if spec.subcommands.is_empty() {
        fields.push(Frame::Set(Vec::new()));
    } else {
        fields.push(Frame::Array(
            spec.subcommands.iter().map(info_entry).collect(),
        ));
    }
    Frame::Array(fields)
}

/// The key specs of a command: its own list, or for keys at fixed positions one range spec,
/// as Redis gives.
fn key_specs(spec: &CommandSpec) -> Vec<Frame> {
    if !spec.key_specs.is_empty() {
        return spec.key_specs.iter().map(key_spec).collect();
    }
    if spec.first_key == 0 {
        return Vec::new();
    }
    // Redis counts `lastkey` from the first key when positive, from the end when negative.
    let last = if spec.last_key >= 0 {
        spec.last_key - spec.first_key
    } else {
        spec.last_key
    };
    vec![key_spec(&KeySpec {
        notes: "",
        flags: spec.key_flags,
        index: spec.first_key,
        lastkey: last,
        keystep: spec.key_step,
    })]
}

fn key_spec(k: &KeySpec) -> Frame {
    let mut fields = Vec::with_capacity(4);
    if !k.notes.is_empty() {
        fields.push(("notes", Frame::bulk(k.notes)));
    }
    fields.push(("flags", words(k.flags)));
    fields.push((
        "begin_search",
        map(vec![
            ("type", Frame::bulk("index")),
            ("spec", map(vec![("index", Frame::Integer(k.index))])),
        ]),
    ));
    fields.push((
        "find_keys",
        map(vec![
            ("type", Frame::bulk("range")),
            (
                "spec",
                map(vec![
                    ("lastkey", Frame::Integer(k.lastkey)),
                    ("keystep", Frame::Integer(k.keystep)),
                    ("limit", Frame::Integer(0)),
                ]),
            ),
        ]),
    ));
    map(fields)
}

/// COMMAND DOCS' value for one command: summary, since, group, complexity.
pub fn docs_entry(spec: &CommandSpec) -> Frame {
    map(vec![
        ("summary", Frame::bulk(spec.summary)),
        ("since", Frame::bulk(spec.since)),
        ("group", Frame::bulk(spec.group)),
        ("complexity", Frame::bulk(spec.complexity)),
    ])
}

/// COMMAND's subcommands; `rest` is every argument after `COMMAND`.
pub fn render_command(rest: &[Bytes]) -> Result<Frame, Frame> {
    let Some((sub, names)) = rest.split_first() else {
        return Ok(Frame::Array(TABLE.iter().map(info_entry).collect()));
    };
    Ok(match sub.to_ascii_uppercase().as_slice() {
        b"COUNT" => Frame::Integer(TABLE.len() as i64),
        b"LIST" => Frame::Array(TABLE.iter().map(|c| Frame::bulk(c.name)).collect()),
        // No names: every command, as Redis 7 does. An unknown name: nil.
        b"INFO" if names.is_empty() => Frame::Array(TABLE.iter().map(info_entry).collect()),
        b"INFO" => Frame::Array(
            names
                .iter()
                .map(|n| lookup(n).map_or(Frame::Null, info_entry))
                .collect(),
        ),
        // A map of name to docs (flat in RESP2); unknown names are left out.
        b"DOCS" => {
            let specs: Vec<&CommandSpec> = if names.is_empty() {
                TABLE.iter().collect()
            } else {
                names.iter().filter_map(|n| lookup(n)).collect()
            };
            Frame::map(specs.into_iter().map(|spec| (spec.name, docs_entry(spec))))
        }
        _ => return Err(ReplyError::unknown_subcommand("COMMAND", sub).into()),
    })
}

#[cfg(test)]
mod tests {
    use super::super::{parse, test_support::req};
    use super::*;

    #[test]
    fn names_are_unique_sorted_and_found_in_any_case() {
        let mut names: Vec<&str> = TABLE.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len(), "duplicate names");
        for spec in TABLE {
            assert_eq!(
                lookup(spec.name.as_bytes()).map(|s| s.name),
                Some(spec.name)
            );
            let upper = spec.name.to_ascii_uppercase();
            assert_eq!(lookup(upper.as_bytes()).map(|s| s.name), Some(spec.name));
        }
        assert!(lookup(b"frob").is_none());
        assert!(lookup(b"get\0").is_none() && lookup(b"ge").is_none());
        assert!(lookup(b"flushall-and-more").is_none());
        assert!(lookup(b"").is_none());
        assert!(lookup(b"a-name-longer-than-any-command").is_none());
    }

    /// The smallest well-formed argument list for a row (its parser may still refuse the
    /// values, but never for their number).
    fn args_for(spec: &CommandSpec, argc: usize) -> Vec<Bytes> {
        let mut words = vec![spec.name.to_string()];
        // Numbers fit every numeric argument (INCRBY, SCAN, SELECT).
        words.extend((1..argc).map(|_| "0".to_string()));
        req(&words.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn is_arity_error(reply: &Result<Command, Frame>, name: &str) -> bool {
        let want = format!("ERR wrong number of arguments for '{name}' command");
        matches!(reply, Err(Frame::Error(e)) if *e == want)
    }

    #[test]
    fn every_rows_arity_is_enforced() {
        for spec in TABLE {
            let min = spec.arity.unsigned_abs() as usize;
            // One word short (but never an empty request) is refused.
            if min > 1 {
                let reply = parse(&args_for(spec, min - 1));
                assert!(
                    is_arity_error(&reply, spec.name),
                    "{}: {reply:?}",
                    spec.name
                );
            }
            // The exact count passes the arity check.
            let reply = parse(&args_for(spec, min));
            assert!(
                !is_arity_error(&reply, spec.name),
                "{}: {reply:?}",
                spec.name
            );
            // One more: refused for a fixed arity, allowed for "at least".
            let reply = parse(&args_for(spec, min + 1));
            if spec.arity >= 0 {
                assert!(
                    is_arity_error(&reply, spec.name),
                    "{}: {reply:?}",
                    spec.name
                );
            }
        }
    }

    #[test]
    fn command_count_and_list_follow_the_table() {
        assert_eq!(
            render_command(&req(&["count"])),
            Ok(Frame::Integer(TABLE.len() as i64))
        );
        let Ok(Frame::Array(list)) = render_command(&req(&["LIST"])) else {
            panic!()
        };
        assert_eq!(list.len(), TABLE.len());
        let Ok(Frame::Array(all)) = render_command(&[]) else {
            panic!()
        };
        assert_eq!(all.len(), TABLE.len());
        assert!(all
            .iter()
            .all(|e| matches!(e, Frame::Array(f) if f.len() == 10)));
    }

    #[test]
    fn command_info_has_redis_7s_shape() {
        let Ok(Frame::Array(entries)) = render_command(&req(&["INFO", "GET", "nosuch", "mset"]))
        else {
            panic!()
        };
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1], Frame::Null);
        let Frame::Array(get) = &entries[0] else {
            panic!()
        };
        assert_eq!(get.len(), 10);
        assert_eq!(get[0], Frame::bulk("get"));
        assert_eq!(get[1], Frame::Integer(2));
        assert_eq!(get[2], words(&["readonly", "fast"]));
        assert_eq!(
            &get[3..6],
            &[Frame::Integer(1), Frame::Integer(1), Frame::Integer(1)]
        );
        assert_eq!(get[6], words(&["@read", "@string", "@fast"]));
        assert_eq!(get[7], Frame::Set(vec![]));
        assert_eq!(get[9], Frame::Set(vec![]));
        // One key spec: flags, begin_search (index 1), find_keys (range 0, step 1).
        let key_spec = map(vec![
            ("flags", words(&["RO", "access"])),
            (
                "begin_search",
                map(vec![
                    ("type", Frame::bulk("index")),
                    ("spec", map(vec![("index", Frame::Integer(1))])),
                ]),
            ),
            (
                "find_keys",
                map(vec![
                    ("type", Frame::bulk("range")),
                    (
                        "spec",
                        map(vec![
                            ("lastkey", Frame::Integer(0)),
                            ("keystep", Frame::Integer(1)),
                            ("limit", Frame::Integer(0)),
                        ]),
                    ),
                ]),
            ),
        ]);
        assert_eq!(get[8], Frame::Set(vec![key_spec]));
        let Frame::Array(mset) = &entries[2] else {
            panic!()
        };
        assert_eq!(mset[0], Frame::bulk("mset"));
        let Frame::Set(specs) = &mset[8] else {
            panic!()
        };
        let Frame::Map(spec) = &specs[0] else {
            panic!()
        };
        assert_eq!(
            spec[2].1,
            map(vec![
                ("type", Frame::bulk("range")),
                (
                    "spec",
                    map(vec![
                        ("lastkey", Frame::Integer(-1)),
                        ("keystep", Frame::Integer(2)),
                        ("limit", Frame::Integer(0)),
                    ]),
                ),
            ])
        );
        let Ok(Frame::Array(all)) = render_command(&req(&["info"])) else {
            panic!()
        };
        assert_eq!(all.len(), TABLE.len());
    }

    #[test]
    fn command_docs_is_a_map_of_names_to_docs() {
        let Ok(docs) = render_command(&req(&["DOCS", "get", "nosuch"])) else {
            panic!()
        };
        assert_eq!(
            docs,
            map(vec![(
                "get",
                map(vec![
                    ("summary", Frame::bulk("Get the value of a key")),
                    ("since", Frame::bulk("1.0.0")),
                    ("group", Frame::bulk("string")),
                    ("complexity", Frame::bulk("O(1)")),
                ])
            )])
        );
        let Ok(Frame::Map(all)) = render_command(&req(&["docs"])) else {
            panic!()
        };
        assert_eq!(all.len(), TABLE.len());
        assert!(TABLE
            .iter()
            .all(|c| !c.summary.is_empty() && !c.since.is_empty()));
    }

    #[test]
    fn flags_say_who_answers_and_what_may_run_before_auth() {
        let spec = |n: &str| lookup(n.as_bytes()).map(|s| (s.is(Flags::NO_AUTH), s.session));
        // Before AUTH: only AUTH, HELLO (which may carry AUTH), QUIT and RESET.
        assert_eq!(spec("auth"), Some((true, Some(SessionCommand::Auth))));
        assert_eq!(spec("QUIT"), Some((true, Some(SessionCommand::Quit))));
        assert_eq!(spec("hello"), Some((true, Some(SessionCommand::Hello))));
        assert_eq!(spec("GET"), Some((false, None)));
        assert_eq!(spec("CONFIG"), Some((false, None)));
        let before_auth: Vec<&str> = TABLE
            .iter()
            .filter(|c| c.is(Flags::NO_AUTH))
            .map(|c| c.name)
            .collect();
        assert_eq!(before_auth, ["reset", "quit", "auth", "hello"]);
        assert_eq!(session_command(b"RESET"), Some(SessionCommand::Reset));
        assert_eq!(session_command(b"Quit"), Some(SessionCommand::Quit));
        assert_eq!(session_command(b"GET"), None);
        assert_eq!(session_command(b"INCR"), None);
    }

    #[test]
    fn the_write_flag_is_what_is_write_reports() {
        for spec in TABLE {
            assert!(
                !(spec.is(Flags::WRITE) && spec.is(Flags::READONLY)),
                "{}",
                spec.name
            );
        }
        let Ok(Command::Data(set)) = parse(&req(&["set", "k", "v"])) else {
            panic!()
        };
        assert!(set.is_write());
        let Ok(Command::Data(get)) = parse(&req(&["get", "k"])) else {
            panic!()
        };
        assert!(!get.is_write());
    }
}
