//! Pub/Sub: the broker of subscriptions (channel → subscribers, pattern → subscribers) and
//! keyspace notifications' flags. Pure: it knows sessions only by [`SessionId`]; publishing
//! computes the `(subscriber, frame)` pairs, and the store decides when they may leave (after
//! the writes they follow are durable) and the server delivers them.
//!
//! Every message is a [`Frame::Push`] (`message`, `pmessage`, `subscribe`, ...); the encoder
//! writes it as a RESP2 array for RESP2 clients, as Redis 7 does.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use crate::command::glob;
use crate::command::txn::SessionId;
use crate::resp::Frame;

/// One session's subscriptions.
#[derive(Debug, Default, Clone)]
struct Subscriptions {
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
}

impl Subscriptions {
    fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }
}

/// The broker; see the module documentation.
#[derive(Debug, Default, Clone)]
pub struct PubSub {
    /// Subscribers of each channel, in the order they subscribed (as Redis delivers).
    channels: HashMap<Bytes, Vec<SessionId>>,
    /// Subscribers of each pattern, in the order they subscribed; patterns in name order.
    patterns: BTreeMap<Bytes, Vec<SessionId>>,
    sessions: HashMap<SessionId, Subscriptions>,
}

/// `subscribe` / `unsubscribe` / `psubscribe` / `punsubscribe` confirmations.
fn confirmation(kind: &'static str, name: Option<Bytes>, count: usize) -> Frame {
    Frame::Push(vec![
        Frame::bulk(kind),
        name.map_or(Frame::Null, Frame::Bulk),
        Frame::Integer(count as i64),
    ])
}

/// A session's channel or pattern subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel,
    Pattern,
}

impl PubSub {
    pub fn new() -> Self {
        PubSub::default()
    }

    /// How many channels and patterns `session` is subscribed to.
    pub fn subscriptions(&self, session: SessionId) -> usize {
        self.sessions.get(&session).map_or(0, Subscriptions::count)
    }

    /// How many channels and how many patterns `session` is subscribed to (CLIENT LIST's
    /// `sub` and `psub`).
    pub fn counts(&self, session: SessionId) -> (usize, usize) {
        self.sessions
            .get(&session)
            .map_or((0, 0), |s| (s.channels.len(), s.patterns.len()))
    }

    /// `SUBSCRIBE channel ...`: one confirmation per channel.
    pub fn subscribe(&mut self, session: SessionId, channels: &[Bytes]) -> Vec<Frame> {
        self.add(session, channels, Kind::Channel)
    }

    /// `PSUBSCRIBE pattern ...`: one confirmation per pattern.
    pub fn psubscribe(&mut self, session: SessionId, patterns: &[Bytes]) -> Vec<Frame> {
        self.add(session, patterns, Kind::Pattern)
    }

    /// `UNSUBSCRIBE [channel ...]`: every channel when none is named; one confirmation per
    /// channel (one with a nil channel when there was none).
    pub fn unsubscribe(&mut self, session: SessionId, channels: &[Bytes]) -> Vec<Frame> {
        self.remove(session, channels, Kind::Channel)
    }

    /// `PUNSUBSCRIBE [pattern ...]`, like [`PubSub::unsubscribe`].
    pub fn punsubscribe(&mut self, session: SessionId, patterns: &[Bytes]) -> Vec<Frame> {
        self.remove(session, patterns, Kind::Pattern)
    }

    fn add(&mut self, session: SessionId, names: &[Bytes], kind: Kind) -> Vec<Frame> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let subs = self.sessions.entry(session).or_default();
            let (mine, word) = match kind {
                Kind::Channel => (&mut subs.channels, "subscribe"),
                Kind::Pattern => (&mut subs.patterns, "psubscribe"),
            };
            if mine.insert(name.clone()) {
                match kind {
                    Kind::Channel => self.channels.entry(name.clone()).or_default(),
                    Kind::Pattern => self.patterns.entry(name.clone()).or_default(),
                }
                .push(session);
            }
            out.push(confirmation(word, Some(name.clone()), subs.count()));
        }
        out
    }

    fn remove(&mut self, session: SessionId, names: &[Bytes], kind: Kind) -> Vec<Frame> {
        let word = match kind {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
        };
        let names: Vec<Bytes> = if names.is_empty() {
            self.sessions
                .get(&session)
                .map(|s| match kind {
                    Kind::Channel => s.channels.iter().cloned().collect(),
                    Kind::Pattern => s.patterns.iter().cloned().collect(),
                })
                .unwrap_or_default()
        } else {
            names.to_vec()
        };
        if names.is_empty() {
            return vec![confirmation(word, None, self.subscriptions(session))];
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let removed = self.sessions.get_mut(&session).is_some_and(|s| match kind {
                Kind::Channel => s.channels.remove(&name),
                Kind::Pattern => s.patterns.remove(&name),
            });
            if removed {
                match kind {
                    Kind::Channel => forget(&mut self.channels, &name, session),
                    Kind::Pattern => forget_ordered(&mut self.patterns, &name, session),
                }
            }
            let count = self.subscriptions(session);
            if count == 0 {
                self.sessions.remove(&session);
            }
            out.push(confirmation(word, Some(name), count));
        }
        out
    }

    /// A session ended: drop its subscriptions.
    pub fn session_closed(&mut self, session: SessionId) {
        if let Some(subs) = self.sessions.remove(&session) {
            for name in &subs.channels {
                forget(&mut self.channels, name, session);
            }
            for name in &subs.patterns {
                forget_ordered(&mut self.patterns, name, session);
            }
        }
    }

    /// Whether anyone would receive a message on some channel (cheap check before building
    /// keyspace notifications).
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// `PUBLISH channel message`: the frames to deliver, subscribers of the channel first
    /// (in subscription order), then those of each matching pattern.
    pub fn publish(&self, channel: &Bytes, message: &Bytes, out: &mut Vec<(SessionId, Frame)>) {
        if let Some(subs) = self.channels.get(channel) {
            let frame = Frame::Push(vec![
                Frame::bulk("message"),
                Frame::Bulk(channel.clone()),
                Frame::Bulk(message.clone()),
            ]);
            out.extend(subs.iter().map(|&s| (s, frame.clone())));
        }
        for (pattern, subs) in &self.patterns {
            if glob::matches(pattern, channel) {
                let frame = Frame::Push(vec![
                    Frame::bulk("pmessage"),
                    Frame::Bulk(pattern.clone()),
                    Frame::Bulk(channel.clone()),
                    Frame::Bulk(message.clone()),
                ]);
                out.extend(subs.iter().map(|&s| (s, frame.clone())));
            }
        }
    }

    /// `PUBSUB CHANNELS [pattern]`: channels with at least one subscriber, sorted.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let mut names: Vec<Bytes> = self
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c)))
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// How many channels have a subscriber (INFO's `pubsub_channels`).
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// `PUBSUB NUMSUB`: the number of subscribers of `channel`.
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.channels.get(channel).map_or(0, Vec::len)
    }

    /// `PUBSUB NUMPAT`: the number of patterns with a subscriber (Redis 7 counts patterns).
    pub fn numpat(&self) -> usize {
        self.patterns.len()
    }
}

fn forget(map: &mut HashMap<Bytes, Vec<SessionId>>, name: &Bytes, session: SessionId) {
    if let Some(subs) = map.get_mut(name) {
        subs.retain(|&s| s != session);
        if subs.is_empty() {
            map.remove(name);
        }
    }
}

fn forget_ordered(map: &mut BTreeMap<Bytes, Vec<SessionId>>, name: &Bytes, session: SessionId) {
    if let Some(subs) = map.get_mut(name) {
        subs.retain(|&s| s != session);
        if subs.is_empty() {
            map.remove(name);
        }
    }
}

/// Keyspace notification classes and targets (`notify-keyspace-events`), as Redis's bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotifyFlags(u32);

impl NotifyFlags {
    pub const KEYSPACE: NotifyFlags = NotifyFlags(1);
    pub const KEYEVENT: NotifyFlags = NotifyFlags(1 << 1);
    pub const GENERIC: NotifyFlags = NotifyFlags(1 << 2);
    pub const STRING: NotifyFlags = NotifyFlags(1 << 3);
    pub const LIST: NotifyFlags = NotifyFlags(1 << 4);
    pub const SET: NotifyFlags = NotifyFlags(1 << 5);
    pub const HASH: NotifyFlags = NotifyFlags(1 << 6);
    pub const ZSET: NotifyFlags = NotifyFlags(1 << 7);
    pub const EXPIRED: NotifyFlags = NotifyFlags(1 << 8);
    pub const EVICTED: NotifyFlags = NotifyFlags(1 << 9);
    pub const STREAM: NotifyFlags = NotifyFlags(1 << 10);
    pub const KEY_MISS: NotifyFlags = NotifyFlags(1 << 11);
    pub const MODULE: NotifyFlags = NotifyFlags(1 << 12);
    pub const NEW: NotifyFlags = NotifyFlags(1 << 13);
    /// `A`: every class but key-miss and new.
    const ALL: u32 = (1 << 2)
        | (1 << 3)
        | (1 << 4)
        | (1 << 5)
        | (1 << 6)
        | (1 << 7)
        | (1 << 8)
        | (1 << 9)
        | (1 << 10)
        | (1 << 12);

    const CLASSES: [(char, NotifyFlags); 14] = [
        ('g', NotifyFlags::GENERIC),
        ('$', NotifyFlags::STRING),
        ('l', NotifyFlags::LIST),
        ('s', NotifyFlags::SET),
        ('h', NotifyFlags::HASH),
        ('z', NotifyFlags::ZSET),
        ('x', NotifyFlags::EXPIRED),
        ('e', NotifyFlags::EVICTED),
        ('t', NotifyFlags::STREAM),
        ('d', NotifyFlags::MODULE),
        ('n', NotifyFlags::NEW),
        ('K', NotifyFlags::KEYSPACE),
        ('E', NotifyFlags::KEYEVENT),
        ('m', NotifyFlags::KEY_MISS),
    ];

    /// Parses Redis's flag string (`KEA`, `Ex`, ...); `None` for an unknown character.
    pub fn parse(text: &[u8]) -> Option<NotifyFlags> {
        let mut bits = 0;
        for &c in text {
            if c == b'A' {
                bits |= Self::ALL;
                continue;
            }
            let (_, flag) = Self::CLASSES
                .iter()
                .find(|(ch, _)| *ch as u32 == c as u32)?;
            bits |= flag.0;
        }
        Some(NotifyFlags(bits))
    }

    /// Whether `class` notifications go anywhere (the class is on, and K or E).
    pub fn wants(self, class: NotifyFlags) -> bool {
        self.0 & class.0 != 0 && self.0 & (Self::KEYSPACE.0 | Self::KEYEVENT.0) != 0
    }

    pub fn has(self, flag: NotifyFlags) -> bool {
        self.0 & flag.0 != 0
    }

    /// Whether any notification goes anywhere.
    pub fn any(self) -> bool {
        self.0 & !(Self::KEYSPACE.0 | Self::KEYEVENT.0) != 0
            && self.0 & (Self::KEYSPACE.0 | Self::KEYEVENT.0) != 0
    }
}

impl std::fmt::Display for NotifyFlags {
    /// As CONFIG GET prints it (Redis's `keyspaceEventsFlagsToString`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        if self.0 & Self::ALL == Self::ALL {
            s.push('A');
        }
        for (c, flag) in Self::CLASSES {
            let in_all = flag.0 & Self::ALL != 0;
            let all = self.0 & Self::ALL == Self::ALL;
            if self.has(flag) && !(in_all && all) {
                s.push(c);
            }
        }
        f.write_str(&s)
    }
}

/// One keyspace notification: `event` happened to `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    pub class: NotifyFlags,
    pub event: &'static str,
    pub key: Bytes,
}

/// Publishes `event` as Redis's `notifyKeyspaceEvent` does: on `__keyspace@<db>__:<key>`
/// (message: the event) and `__keyevent@<db>__:<event>` (message: the key), as `flags` say.
pub fn notify(
    pubsub: &PubSub,
    flags: NotifyFlags,
    db: u32,
    event: &KeyEvent,
    out: &mut Vec<(SessionId, Frame)>,
) {
    if !flags.wants(event.class) {
        return;
    }
    if flags.has(NotifyFlags::KEYSPACE) {
        let mut channel = format!("__keyspace@{db}__:").into_bytes();
        channel.extend_from_slice(&event.key);
        pubsub.publish(
            &Bytes::from(channel),
            &Bytes::from_static(event.event.as_bytes()),
            out,
        );
    }
    if flags.has(NotifyFlags::KEYEVENT) {
        let channel = Bytes::from(format!("__keyevent@{db}__:{}", event.event));
        pubsub.publish(&channel, &event.key, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn push(words: &[&str]) -> Frame {
        Frame::Push(words.iter().map(|w| Frame::bulk(*w)).collect())
    }

    #[test]
    fn subscribe_publish_unsubscribe() {
        let mut ps = PubSub::new();
        assert_eq!(
            ps.subscribe(1, &[b("a"), b("b"), b("a")]),
            vec![
                confirmation("subscribe", Some(b("a")), 1),
                confirmation("subscribe", Some(b("b")), 2),
                confirmation("subscribe", Some(b("a")), 2),
            ]
        );
        ps.subscribe(2, &[b("a")]);
        ps.psubscribe(2, &[b("a*")]);
        let mut out = Vec::new();
        ps.publish(&b("a"), &b("hi"), &mut out);
        assert_eq!(
            out,
            vec![
                (1, push(&["message", "a", "hi"])),
                (2, push(&["message", "a", "hi"])),
                (2, push(&["pmessage", "a*", "a", "hi"])),
            ]
        );
        assert_eq!(ps.channels(None), vec![b("a"), b("b")]);
        assert_eq!(ps.channels(Some(b"b*")), vec![b("b")]);
        assert_eq!((ps.numsub(b"a"), ps.numsub(b"zz"), ps.numpat()), (2, 0, 1));
        assert_eq!(
            ps.unsubscribe(1, &[]),
            vec![
                confirmation("unsubscribe", Some(b("a")), 1),
                confirmation("unsubscribe", Some(b("b")), 0),
            ]
        );
        assert_eq!(
            ps.unsubscribe(1, &[]),
            vec![confirmation("unsubscribe", None, 0)]
        );
        assert_eq!(ps.subscriptions(1), 0);
        ps.session_closed(2);
        assert!(ps.is_empty());
        assert_eq!((ps.numsub(b"a"), ps.numpat()), (0, 0));
        out.clear();
        ps.publish(&b("a"), &b("hi"), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn notify_flags_parse_and_print_as_redis() {
        let f = |s: &str| NotifyFlags::parse(s.as_bytes()).map(|f| f.to_string());
        assert_eq!(f("KEA").as_deref(), Some("AKE"));
        assert_eq!(f("Kg$x").as_deref(), Some("g$xK"));
        assert_eq!(f("").as_deref(), Some(""));
        assert_eq!(f("xyz"), None);
        let kea = NotifyFlags::parse(b"KEA").unwrap_or_default();
        assert!(kea.wants(NotifyFlags::STRING) && kea.any());
        let no_target = NotifyFlags::parse(b"A").unwrap_or_default();
        assert!(!no_target.wants(NotifyFlags::STRING) && !no_target.any());
    }

    #[test]
    fn keyspace_and_keyevent_channels() {
        let mut ps = PubSub::new();
        ps.psubscribe(1, &[b("__key*__:*")]);
        let mut out = Vec::new();
        let flags = NotifyFlags::parse(b"KE$").unwrap_or_default();
        let ev = KeyEvent {
            class: NotifyFlags::STRING,
            event: "set",
            key: b("k"),
        };
        notify(&ps, flags, 0, &ev, &mut out);
        assert_eq!(
            out,
            vec![
                (
                    1,
                    push(&["pmessage", "__key*__:*", "__keyspace@0__:k", "set"])
                ),
                (
                    1,
                    push(&["pmessage", "__key*__:*", "__keyevent@0__:set", "k"])
                ),
            ]
        );
        out.clear();
        let generic = KeyEvent {
            class: NotifyFlags::GENERIC,
            ..ev
        };
        notify(&ps, flags, 0, &generic, &mut out);
        assert!(out.is_empty());
    }
}
