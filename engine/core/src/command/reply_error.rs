//! Every error reply the server sends, as one enum: the texts live here and nowhere else, and
//! where Redis 7 has the same error they are its texts byte for byte (checked against
//! redis-server 7.0.15; the tests crate's `command_table_redis` compares them live). A
//! variant's `Display` is the reply without the leading `-`: its first word is the error
//! kind (`ERR`, `NOAUTH`, `EXECABORT`, ...). `Frame::from(err)` makes the reply.

use bytes::Bytes;

use crate::resp::Frame;

/// An error reply. MooDB's own errors (storage, CONFIG SET) say what to do about them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// The number of arguments does not fit the command (`name` as COMMAND lists it, or
    /// `container|sub` for a subcommand).
    #[error("ERR wrong number of arguments for '{name}' command")]
    WrongArity { name: &'static str },
    /// Build with [`ReplyError::unknown_command`], which quotes the arguments as Redis does.
    #[error("ERR unknown command '{name}', with args beginning with: {args}")]
    UnknownCommand { name: String, args: String },
    /// `command` in upper case (`CONFIG`), `sub` as the client sent it.
    #[error("ERR unknown subcommand '{sub}'. Try {command} HELP.")]
    UnknownSubcommand { command: &'static str, sub: String },
    /// A known subcommand with the wrong number of arguments (`sub` as the client sent it).
    #[error(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {command} HELP."
    )]
    SubcommandArity { command: &'static str, sub: String },
    /// A RESP2 client in subscribed mode sent another command (`name` as COMMAND lists it,
    /// `container|sub` for a subcommand).
    #[error("ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context")]
    SubscribedMode { name: String },
    /// CONFIG SET of a parameter MooDB does not have (or cannot change while running).
    #[error("ERR Unknown option or number of arguments for CONFIG SET - '{name}'")]
    ConfigSetUnknown { name: String },
    /// CONFIG SET with a bad value.
    #[error("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")]
    ConfigSetFailed { name: String, reason: String },
    /// CONFIG REWRITE could not write the file (Redis's text for a server without one is
    /// `The server is running without a config file`).
    #[error("ERR {reason}")]
    ConfigRewrite { reason: String },
    /// SLOWLOG GET with a count that is not an integer of at least -1.
    #[error("ERR count should be greater than or equal to -1")]
    SlowLogCount,
    /// WAITAOF's numlocal is not 0 or 1.
    #[error("ERR value is out of range, value must between 0 and 1")]
    WaitAofRange,
    #[error("ERR value is out of range, must be positive")]
    MustBePositive,
    #[error("ERR timeout is not an integer or out of range")]
    TimeoutNotInteger,
    #[error("ERR timeout is negative")]
    TimeoutNegative,
    /// WAITAOF with numlocal under `sync never` (Redis: appendonly disabled).
    #[error("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.")]
    WaitAofNoAof,
    #[error("ERR syntax error")]
    Syntax,
    /// SENTINEL about a master name other than the cluster's (Sentinel's text).
    #[error("ERR No such master with that name")]
    NoSuchMaster,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// INCR / INCRBY / DECR past the range of i64.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// DECRBY with i64::MIN, whose negation does not fit.
    #[error("ERR decrement would overflow")]
    DecrementOverflow,
    #[error("ERR invalid expire time in '{command}' command")]
    InvalidExpire { command: &'static str },
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    #[error("ERR offset is out of range")]
    OffsetOutOfRange,
    /// SETRANGE / APPEND past the bulk limit (`limits.max_bulk_len`).
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    #[error("ERR If you want both the length and indexes, please just use IDX.")]
    LcsLenAndIdx,
    #[error("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len")]
    LcsTooLarge,
    /// A number that must fit a C `int` (COPY's DB).
    #[error("ERR value is out of range, value must between -2147483648 and 2147483647")]
    IntOutOfRange,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR source and destination objects are the same")]
    SameObject,
    /// EXPIRE's unknown option, as the client spelled it.
    #[error("ERR Unsupported option {option}")]
    UnsupportedOption { option: String },
    #[error("ERR NX and XX, GT or LT options at the same time are not compatible")]
    ExpireNxAndOthers,
    #[error("ERR GT and LT options at the same time are not compatible")]
    ExpireGtAndLt,
    /// OBJECT FREQ under the default (non-LFU) policy: MooDB has no other.
    #[error(
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please \
         note that when switching between policies at runtime LRU and LFU data will take some \
         time to adjust."
    )]
    NoLfuPolicy,
    #[error("ERR invalid cursor")]
    InvalidCursor,
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("ERR invalid first DB index")]
    InvalidFirstDbIndex,
    #[error("ERR invalid second DB index")]
    InvalidSecondDbIndex,
    #[error("NOAUTH Authentication required.")]
    NoAuth,
    /// HELLO without AUTH from a client that has not authenticated.
    #[error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
         HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
         the RESP protocol version at the same time"
    )]
    HelloNoAuth,
    /// HELLO's `protover` is not a number.
    #[error("ERR Protocol version is not an integer or out of range")]
    HelloBadVersion,
    /// HELLO's `protover` is a number, but not 2 or 3.
    #[error("NOPROTO unsupported protocol version")]
    NoProto,
    /// A HELLO option that is not `AUTH user pass` or `SETNAME name` (as sent).
    #[error("ERR Syntax error in HELLO option '{option}'")]
    HelloSyntax { option: String },
    /// SETNAME with a space, a line break or another character outside `!`..`~`.
    #[error("ERR Client names cannot contain spaces, newlines or special characters.")]
    BadClientName,
    #[error("ERR Invalid client ID")]
    InvalidClientId,
    #[error("ERR client-id should be greater than 0")]
    ClientIdRange,
    #[error("ERR Unknown client type '{name}'")]
    UnknownClientType { name: String },
    #[error("ERR No such user '{name}'")]
    NoSuchUser { name: String },
    /// A write that may grow memory, past `maxmemory` under `noeviction` (Redis 7's text), or
    /// under `spill` with nothing left to move to disk.
    #[error("OOM command not allowed when used memory > 'maxmemory'.")]
    Oom,
    /// Under `spill`: the keys, expiries and pointers alone pass `maxmemory`.
    #[error(
        "OOM command not allowed when used memory > 'maxmemory': {used} bytes of keys, \
         expiries and pointers with every value of 64 bytes or more on disk, maxmemory \
         {max}; raise maxmemory or delete keys"
    )]
    OomKeys { used: u64, max: u64 },
    /// A spilled value could not be read back (`reason` names the file and offset): the
    /// command does not run, and a damaged value is never served.
    #[error("ERR the value of '{key}' cannot be read: {reason}")]
    ValueUnreadable { key: String, reason: String },
    #[error("ERR No such client")]
    NoSuchClient,
    /// CLIENT SETINFO (Redis 7.2) with an attribute other than LIB-NAME / LIB-VER.
    #[error("ERR Unrecognized option '{attr}'")]
    SetInfoOption { attr: String },
    #[error("ERR {attr} cannot contain spaces, newlines or special characters.")]
    SetInfoChars { attr: String },
    #[error("ERR No shutdown in progress.")]
    NoShutdown,
    #[error("WRONGPASS invalid username-password pair or user is disabled.")]
    WrongPass,
    /// AUTH sent to a server without `requirepass`.
    #[error(
        "ERR AUTH <password> called without any password configured for the default user. \
         Are you sure your configuration is correct?"
    )]
    AuthNotConfigured,
    #[error("EXECABORT Transaction discarded because of previous errors.")]
    ExecAbort,
    /// EXEC itself refused (a wrong number of arguments): `reason` is that error's text
    /// without its `ERR ` kind. The transaction, if any, is discarded and the watches dropped.
    #[error("EXECABORT Transaction discarded because of: {reason}")]
    ExecAbortBecause { reason: String },
    #[error("ERR EXEC without MULTI")]
    ExecWithoutMulti,
    #[error("ERR MULTI calls can not be nested")]
    NestedMulti,
    #[error("ERR DISCARD without MULTI")]
    DiscardWithoutMulti,
    #[error("ERR WATCH inside MULTI is not allowed")]
    WatchInsideMulti,
    /// A command flagged `NO_MULTI` (SAVE) sent after MULTI.
    #[error("ERR Command not allowed inside a transaction")]
    NotAllowedInMulti,
    /// A write after the log failed to append or sync (`cause` names the operation and file).
    #[error(
        "ERR storage refuses writes after a failure ({cause}); reads of what was durable go \
         on. Fix the cause (disk full? failing disk?) and restart the server: no acknowledged \
         write is lost"
    )]
    StorageRefuses { cause: String },
    /// Cluster mode: this node led when it applied the write (or a read of it), and lost the
    /// leadership before a majority committed it.
    #[error("TRYAGAIN leadership changed before this write was committed; it may or may not have been applied: read it back before retrying")]
    LeadershipChanged,
    /// Cluster mode: a read's reply waits until a majority confirms this node still leads
    /// (ReadIndex); it could not.
    #[error("TRYAGAIN this node could not confirm it still leads ({cause}); retry on the leader")]
    LeadershipUnconfirmed { cause: String },
    /// Cluster mode: no leader was known within the wait (an election is under way, or too
    /// few nodes are up to hold one).
    #[error("TRYAGAIN no leader elected yet (election in progress, or fewer than a majority of nodes up); retry shortly")]
    NoLeader,
    /// Cluster mode: the follower could not relay the request to the leader (or the leader's
    /// reply back); a write in it may or may not have been applied.
    #[error("TRYAGAIN lost the connection to the leader at {addr} ({cause}); a write in this request may or may not have been applied: read it back before retrying")]
    LeaderUnreachable { addr: String, cause: String },
    /// Redis Cluster's `CLUSTER`: MooDB is no Redis Cluster (its own cluster mode answers
    /// `RAFT`); the reply of a redis-server without `cluster-enabled`.
    #[error("ERR This instance has cluster support disabled")]
    ClusterDisabled,
    /// `RAFT` (MooDB's cluster administration) on a single node, or pipelined with other
    /// commands (a node in cluster mode answers it only when it comes alone).
    #[error("ERR RAFT is answered only by a node in cluster mode (moodb serve --peers ...), sent on its own (not pipelined with other commands)")]
    RaftUnavailable,
    /// `RAFT ADD-NODE` / `REMOVE-NODE` that openraft refused or that failed midway.
    #[error("ERR RAFT {sub} failed: {cause}")]
    RaftFailed { sub: &'static str, cause: String },
    /// The checkpoint a SAVE waited for failed; the log and the previous checkpoint remain.
    #[error("ERR checkpoint failed: {cause}")]
    CheckpointFailed { cause: String },
    /// The request was not RESP; the connection is closed after this reply.
    #[error("ERR Protocol error: {0}")]
    Protocol(String),
    #[error("ERR max number of clients reached")]
    MaxClients,
    /// A request with no words (the codec drops them; only a direct caller can send one).
    #[error("ERR empty command")]
    EmptyCommand,
    /// A command the session answers (AUTH) reached the store owner.
    #[error("ERR '{name}' is answered by the connection, not the store")]
    SessionOnly { name: &'static str },
    /// The store owner queued a command for a session that is not in MULTI (a bug).
    #[error("ERR internal: queueing outside MULTI")]
    QueueOutsideMulti,
}

impl ReplyError {
    /// `ERR unknown command 'NAME', with args beginning with: 'a' 'b' `, as Redis 7 builds
    /// it: the name as sent (at most 128 bytes), then the arguments, each quoted and followed
    /// by a space, until the list reaches 128 bytes (the last one cut to fit).
    pub fn unknown_command(name: &[u8], rest: &[Bytes]) -> ReplyError {
        const MAX: usize = 128;
        let name = c_string(name);
        let name = String::from_utf8_lossy(&name[..name.len().min(MAX)]).into_owned();
        let mut args = Vec::new();
        for arg in rest {
            if args.len() >= MAX {
                break;
            }
            let room = MAX - args.len();
            let arg = c_string(arg);
            args.push(b'\'');
            args.extend_from_slice(&arg[..arg.len().min(room)]);
            args.extend_from_slice(b"' ");
        }
        ReplyError::UnknownCommand {
            name,
            args: String::from_utf8_lossy(&args).into_owned(),
        }
    }

    /// `ERR unknown subcommand 'sub'. Try COMMAND HELP.`, the subcommand cut to 128 bytes.
    pub fn unknown_subcommand(command: &'static str, sub: &[u8]) -> ReplyError {
        ReplyError::UnknownSubcommand {
            command,
            sub: String::from_utf8_lossy(&c_string(sub)[..c_string(sub).len().min(128)])
                .into_owned(),
        }
    }
}

/// `bytes` up to its first NUL: Redis quotes arguments with `%.*s`, which stops there.
fn c_string(bytes: &[u8]) -> &[u8] {
    bytes.split(|&b| b == 0).next().unwrap_or(bytes)
}

impl ReplyError {
    /// Whether `reply`, a parser's error for a command whose own arity fits, is one Redis
    /// gives when the command is queued after MULTI (and which aborts EXEC): an unknown
    /// subcommand, or a subcommand's wrong number of arguments (`'container|sub'`). Any other
    /// error (syntax, a bad number, MSET's odd count) is the command's reply inside EXEC.
    pub fn refuses_queueing(reply: &Frame) -> bool {
        let Frame::Error(text) = reply else {
            return false;
        };
        // `SubcommandArity`'s "unknown subcommand or ..." is a runtime error in Redis.
        let subcommand_arity = text
            .strip_prefix("ERR wrong number of arguments for '")
            .is_some_and(|rest| {
                rest.split('\'')
                    .next()
                    .is_some_and(|name| name.contains('|'))
            });
        subcommand_arity || text.starts_with("ERR unknown subcommand '")
    }
}

impl From<ReplyError> for Frame {
    fn from(err: ReplyError) -> Frame {
        Frame::Error(err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::test_support::req;

    #[test]
    fn texts_are_redis_7s() {
        let text = |e: ReplyError| e.to_string();
        assert_eq!(
            text(ReplyError::WrongArity { name: "get" }),
            "ERR wrong number of arguments for 'get' command"
        );
        assert_eq!(
            text(ReplyError::unknown_command(b"FROB", &req(&["a", "b"]))),
            "ERR unknown command 'FROB', with args beginning with: 'a' 'b' "
        );
        assert_eq!(
            text(ReplyError::unknown_command(b"fr\0x", &req(&["k\0x", "b"]))),
            "ERR unknown command 'fr', with args beginning with: 'k' 'b' "
        );
        assert_eq!(
            text(ReplyError::unknown_command(b"frob", &[])),
            "ERR unknown command 'frob', with args beginning with: "
        );
        assert_eq!(
            text(ReplyError::unknown_subcommand("CONFIG", b"Foo")),
            "ERR unknown subcommand 'Foo'. Try CONFIG HELP."
        );
        assert_eq!(
            Frame::from(ReplyError::ExecAbort),
            Frame::Error("EXECABORT Transaction discarded because of previous errors.".into())
        );
    }

    #[test]
    fn only_unknown_names_and_arity_refuse_queueing() {
        let refuses = |e: ReplyError| ReplyError::refuses_queueing(&e.into());
        assert!(refuses(ReplyError::WrongArity {
            name: "pubsub|numpat"
        }));
        assert!(!refuses(ReplyError::WrongArity { name: "msetnx" }));
        assert!(refuses(ReplyError::unknown_subcommand("OBJECT", b"x")));
        assert!(!refuses(ReplyError::Syntax));
        assert!(!refuses(ReplyError::NotInteger));
        assert!(!refuses(ReplyError::SubcommandArity {
            command: "OBJECT",
            sub: "x".into()
        }));
        assert!(!ReplyError::refuses_queueing(&Frame::ok()));
    }

    #[test]
    fn unknown_command_quotes_at_most_128_bytes_of_arguments() {
        let long = "x".repeat(200);
        let ReplyError::UnknownCommand { args, .. } =
            ReplyError::unknown_command(b"f", &req(&["ab", &long, "never"]))
        else {
            panic!()
        };
        // 'ab' and a space (5 bytes), then 123 bytes of the long one.
        assert_eq!(args, format!("'ab' '{}' ", "x".repeat(123)));
    }
}
