//! The store's messages: Pub/Sub deliveries and keyspace notifications. A message may leave
//! only once every write applied before it is durable (as a reply), so it is held with that
//! LSN (`held_pushes`) and released in order by [`Store::on_durable`]; inside EXEC messages
//! wait until the transaction's record is logged; a message for the session whose command is
//! running goes into its own replies, before that command's reply, as Redis does. Also the
//! RESP2 subscribed-mode check.

use bytes::Bytes;

use super::Store;
use crate::command::pubsub::{allowed_when_subscribed, key_events, PubSubCommand};
use crate::command::txn::SessionId;
use crate::command::{self, ReplyError};
use crate::pubsub::{notify, KeyEvent, NotifyFlags};
use crate::record::{Lsn, Record};
use crate::resp::Frame;

impl<T> Store<T> {
    /// Moves the held messages whose LSN is released to those that may leave.
    pub(super) fn release_pushes(&mut self) {
        let released = self.gate.released_lsn();
        while let Some((lsn, _, _)) = self.held_pushes.front() {
            if *lsn > released {
                break;
            }
            if let Some((_, to, frame)) = self.held_pushes.pop_front() {
                self.pushes.push((to, frame));
            }
        }
    }

    /// The messages that may leave now, each with the session it goes to, in order.
    pub fn take_pushes(&mut self) -> Vec<(SessionId, Frame)> {
        std::mem::take(&mut self.pushes)
    }

    /// Whether messages wait in [`Store::take_pushes`].
    pub fn has_pushes(&self) -> bool {
        !self.pushes.is_empty()
    }

    /// The LSN a message published now follows: the last write (so a subscriber never hears
    /// of a write before it is durable, and messages keep their order), or nothing after a
    /// storage failure, when no later write will be released.
    pub(super) fn push_dependency(&self) -> Lsn {
        if self.storage_error.is_some() {
            self.gate.released_lsn()
        } else {
            self.last_lsn
        }
    }

    /// Sends `out` (published now): the executing session's into its replies, the others'
    /// held until [`Store::push_dependency`] is released.
    pub(super) fn deliver(&mut self, out: Vec<(SessionId, Frame)>) {
        if self.deferring {
            self.deferred.extend(out);
            return;
        }
        let dep = self.push_dependency();
        let now = dep <= self.gate.released_lsn() && self.held_pushes.is_empty();
        for (to, frame) in out {
            if to == self.executing {
                self.own_pushes.push(frame);
                self.own_wait = self.own_wait.max(dep);
            } else if now {
                self.pushes.push((to, frame));
            } else {
                self.held_pushes.push_back((dep, to, frame));
            }
        }
    }

    /// Publishes the keyspace notifications gathered in `events` (after their write is
    /// logged, so they follow its LSN).
    pub(super) fn publish_events(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let mut out = Vec::new();
        for (db, event) in std::mem::take(&mut self.events) {
            notify(
                &self.pubsub,
                self.settings.notify_keyspace_events,
                u32::from(db),
                &event,
                &mut out,
            );
        }
        self.deliver(out);
    }

    /// Whether keyspace notifications would reach anyone now.
    pub(super) fn notifying(&self) -> bool {
        self.settings.notify_keyspace_events.any() && !self.pubsub.is_empty()
    }

    /// `expired` notifications for `deletes` (expired keys of database `db` deleted).
    pub(super) fn note_expired(&mut self, db: u16, deletes: &[Record]) {
        if !self.notifying() {
            return;
        }
        for d in deletes {
            let d = match d {
                Record::InDb { record, .. } => record,
                d => d,
            };
            if let Record::Delete { key } = d {
                self.note_expired_key(db, key);
            }
        }
    }

    /// The `expired` notification of `key` in database `db` (the caller checks
    /// [`Store::notifying`]).
    pub(super) fn note_expired_key(&mut self, db: u16, key: &Bytes) {
        let event = KeyEvent {
            class: NotifyFlags::EXPIRED,
            event: "expired",
            key: key.clone(),
        };
        self.events.push((db, event));
    }

    /// The keyspace notifications of `op`, which logged `record`, in database `db`.
    pub(super) fn note_events(&mut self, db: u16, op: &command::DataOp, record: &Record) {
        let mut events = Vec::new();
        key_events(op, record, &mut events);
        self.events.extend(events.into_iter().map(|e| (db, e)));
    }

    /// A Pub/Sub command of `session`. SUBSCRIBE and the rest answer one confirmation per
    /// channel: all but the last go out as messages to the session before its reply.
    pub(super) fn pubsub_command(&mut self, session: SessionId, cmd: PubSubCommand) -> Frame {
        let ps = &mut self.pubsub;
        let mut confirmations = match cmd {
            PubSubCommand::Subscribe(names) => ps.subscribe(session, &names),
            PubSubCommand::Unsubscribe(names) => ps.unsubscribe(session, &names),
            PubSubCommand::PSubscribe(names) => ps.psubscribe(session, &names),
            PubSubCommand::PUnsubscribe(names) => ps.punsubscribe(session, &names),
            PubSubCommand::Publish { channel, message } => {
                let mut out = Vec::new();
                ps.publish(&channel, &message, &mut out);
                let receivers = out.len() as i64;
                self.deliver(out);
                return Frame::Integer(receivers);
            }
            PubSubCommand::Channels(pattern) => {
                return Frame::Array(
                    ps.channels(pattern.as_deref())
                        .into_iter()
                        .map(Frame::Bulk)
                        .collect(),
                )
            }
            PubSubCommand::NumSub(channels) => {
                let mut items = Vec::with_capacity(channels.len() * 2);
                for c in channels {
                    items.push(Frame::Integer(ps.numsub(&c) as i64));
                    items.insert(items.len() - 1, Frame::Bulk(c));
                }
                return Frame::Array(items);
            }
            PubSubCommand::NumPat => return Frame::Integer(ps.numpat() as i64),
        };
        let last = confirmations.pop().unwrap_or(Frame::Null);
        self.own_pushes.append(&mut confirmations);
        last
    }
}

/// A Pub/Sub message (`message`, `pmessage`).
pub(super) fn is_message(f: &Frame) -> bool {
    matches!(f, Frame::Push(items) if matches!(items.first(), Some(Frame::Bulk(k)) if &k[..] == b"message" || &k[..] == b"pmessage"))
}

/// A subscription confirmation (`subscribe`, `unsubscribe`, ...).
pub(super) fn is_confirmation(f: &Frame) -> bool {
    matches!(f, Frame::Push(_)) && !is_message(f)
}

/// The refusal of `request` from a RESP2 session in subscribed mode, or `None` if it is
/// allowed: unknown commands and wrong arities get their usual errors first, as in Redis.
pub(super) fn subscribed_mode(request: &[Bytes]) -> Option<Frame> {
    let (name, rest) = request.split_first()?;
    let spec = command::table::lookup(name)?;
    if !spec.arity_fits(request.len()) {
        return None;
    }
    match spec.name {
        "ping" => Some(match rest {
            [] => Frame::Array(vec![Frame::bulk("pong"), Frame::bulk("")]),
            [msg] => Frame::Array(vec![Frame::bulk("pong"), Frame::Bulk(msg.clone())]),
            _ => return None,
        }),
        name if allowed_when_subscribed(name) => None,
        name => {
            let name = match rest.first() {
                Some(sub) if is_container(name) => {
                    format!(
                        "{name}|{}",
                        String::from_utf8_lossy(sub).to_ascii_lowercase()
                    )
                }
                _ => name.to_string(),
            };
            Some(ReplyError::SubscribedMode { name }.into())
        }
    }
}

/// Commands with subcommands, which Redis names `container|sub`.
pub(super) fn is_container(name: &str) -> bool {
    matches!(name, "config" | "client" | "command" | "object" | "pubsub")
}
