//! The load: several concurrent clients doing SET, UPDATE, DEL, INCR, GET and MULTI/EXEC on a
//! small keyspace, every request recorded (invoke time, answer or none) in a shared
//! [`Recorder`]. Values are self-describing, so a phantom or a partial transaction is visible
//! from the data alone.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moodb_tests::linearizability::client::{ClientError, Conn, Dialect, RecordingClient, Reply};
use moodb_tests::linearizability::{Op, Output, Recorder};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Length every value is padded to (so most log bytes are value bytes).
const VALUE_LEN: usize = 64;

/// The shape of the load.
#[derive(Debug, Clone)]
pub struct Load {
    pub clients: u64,
    pub keys: usize,
    pub counters: usize,
    pub transactions: bool,
    pub dialect: Dialect,
    pub iteration: u64,
}

impl Load {
    pub fn key(i: usize) -> Vec<u8> {
        format!("k{i}").into_bytes()
    }
    pub fn counter(i: usize) -> Vec<u8> {
        format!("n{i}").into_bytes()
    }
    /// Every key the load touches.
    pub fn all_keys(&self) -> Vec<Vec<u8>> {
        (0..self.keys)
            .map(Self::key)
            .chain((0..self.counters).map(Self::counter))
            .collect()
    }
}

/// True for the INCR counters (verified as counters, not as values).
pub fn is_counter(key: &[u8]) -> bool {
    key.first() == Some(&b'n')
}

/// A value naming who wrote it: `i<iteration>.c<client>.s<seq>[.t<txn>/<size>].xxxx…`.
pub fn make_value(iteration: u64, client: u64, seq: u64, txn: Option<(&str, usize)>) -> Vec<u8> {
    let mut v = format!("i{iteration}.c{client}.s{seq}");
    if let Some((id, size)) = txn {
        v.push_str(&format!(".t{id}/{size}"));
    }
    v.push('.');
    while v.len() < VALUE_LEN {
        v.push('x');
    }
    v.into_bytes()
}

/// The transaction tag (`<txn id>`, size) of a value, if it was written by a transaction.
pub fn txn_of(value: &[u8]) -> Option<(String, usize)> {
    let text = std::str::from_utf8(value).ok()?;
    let tag = text.split('.').find_map(|p| p.strip_prefix('t'))?;
    let (id, size) = tag.split_once('/')?;
    Some((id.to_string(), size.parse().ok()?))
}

/// What one client saw.
#[derive(Debug, Default)]
pub struct ClientOutcome {
    pub ops: u64,
    /// A reply that made no sense (not a connection failure): a bug of the server.
    pub protocol_error: Option<String>,
}

/// Checks whether the server accepts MULTI (then DISCARDs).
pub fn probe_transactions(addr: SocketAddr) -> bool {
    let Ok(mut conn) = Conn::connect(addr, Duration::from_secs(5)) else {
        return false;
    };
    let ok = matches!(conn.command(&[b"MULTI"]), Ok(Reply::Simple(s)) if s == "OK");
    if ok {
        let _ = conn.command(&[b"DISCARD"]);
    }
    ok
}

/// Runs one client until `stop`, the connection fails, or `until`.
pub fn run_client(
    load: &Load,
    id: u64,
    addr: SocketAddr,
    recorder: Recorder,
    seed: u64,
    stop: Arc<AtomicBool>,
    until: Instant,
) -> ClientOutcome {
    run_client_on(load, id, &[addr], false, recorder, seed, stop, until)
}

/// Whether a failed request left its operation in doubt the way a failover does: the
/// connection broke, or a cluster answered `-TRYAGAIN` (may or may not have been applied).
fn in_doubt(err: &ClientError) -> bool {
    match err {
        ClientError::Io(_) => true,
        ClientError::Unexpected {
            reply: Reply::Error(e),
            ..
        } => e.starts_with("TRYAGAIN"),
        _ => false,
    }
}

/// [`run_client`] against the first of `addrs`; with `failover` (a cluster), a request left
/// in doubt (connection lost, `-TRYAGAIN`) stays pending in the history and the client goes
/// on over a new connection to the next address that answers, until `stop` or `until`.
#[allow(clippy::too_many_arguments)]
pub fn run_client_on(
    load: &Load,
    id: u64,
    addrs: &[SocketAddr],
    failover: bool,
    recorder: Recorder,
    seed: u64,
    stop: Arc<AtomicBool>,
    until: Instant,
) -> ClientOutcome {
    let mut out = ClientOutcome::default();
    let mut rng = StdRng::seed_from_u64(seed);
    let Some(&first) = addrs.first() else {
        return out;
    };
    let Ok(conn) = Conn::connect(first, Duration::from_secs(5)) else {
        return out;
    };
    let mut client = RecordingClient::new(conn, id, load.dialect, recorder.clone());
    let mut next_addr = 1usize;
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
        seq += 1;
        out.ops += 1;
        let roll = rng.gen_range(0..100);
        let result = if roll < 15 && load.counters > 0 {
            let key = Load::counter(rng.gen_range(0..load.counters));
            let op = if roll < 11 { Op::Incr } else { Op::Get };
            client.run(&key, op).map(drop)
        } else if roll < 27 && load.transactions && load.keys >= 2 {
            run_transaction(load, &mut client, &recorder, &mut rng, seq)
        } else {
            let key = Load::key(rng.gen_range(0..load.keys));
            let value = make_value(load.iteration, id, seq, None);
            let op = match roll {
                0..=49 => Op::Set(value),
                50..=64 => Op::Update(value),
                65..=74 => Op::Del,
                _ => Op::Get,
            };
            client.run(&key, op).map(drop)
        };
        match result {
            Ok(()) => {}
            Err(err) if failover && in_doubt(&err) => {
                // A new connection (the old one may hold replies not read), to the next node
                // that accepts one.
                let reconnected = loop {
                    if stop.load(Ordering::Relaxed) || Instant::now() >= until {
                        break None;
                    }
                    let addr = addrs[next_addr % addrs.len()];
                    next_addr += 1;
                    match Conn::connect(addr, Duration::from_secs(5)) {
                        Ok(conn) => break Some(conn),
                        Err(_) => std::thread::sleep(Duration::from_millis(20)),
                    }
                };
                match reconnected {
                    Some(conn) => {
                        client = RecordingClient::new(conn, id, load.dialect, recorder.clone())
                    }
                    None => break,
                }
            }
            Err(ClientError::Io(_)) => break,
            Err(other) => {
                out.protocol_error = Some(other.to_string());
                break;
            }
        }
    }
    out
}

fn run_transaction(
    load: &Load,
    client: &mut RecordingClient,
    recorder: &Recorder,
    rng: &mut StdRng,
    seq: u64,
) -> Result<(), ClientError> {
    let size = rng.gen_range(2..=load.keys.min(4));
    let mut keys: Vec<usize> = (0..load.keys).collect();
    keys.shuffle(rng);
    keys.truncate(size);
    let txn_id = format!("{}-{}-{seq}", load.iteration, client.id);
    let writes: Vec<(Vec<u8>, Vec<u8>)> = keys
        .iter()
        .map(|&k| {
            (
                Load::key(k),
                make_value(load.iteration, client.id, seq, Some((&txn_id, size))),
            )
        })
        .collect();
    let ids: Vec<_> = writes
        .iter()
        .map(|(k, v)| recorder.invoke(client.id, k, Op::Set(v.clone())))
        .collect();
    client.conn.send(&[b"MULTI"])?;
    for (k, v) in &writes {
        client.conn.send(&[b"SET", k, v])?;
    }
    client.conn.send(&[b"EXEC"])?;
    let unexpected = |reply: Reply| ClientError::Unexpected {
        command: "MULTI/SET…/EXEC".into(),
        reply,
    };
    for _ in 0..=writes.len() {
        match client.conn.read_reply()? {
            Reply::Simple(s) if s == "OK" || s == "QUEUED" => {}
            other => return Err(unexpected(other)),
        }
    }
    match client.conn.read_reply()? {
        Reply::Array(Some(items))
            if items.len() == writes.len()
                && items
                    .iter()
                    .all(|r| matches!(r, Reply::Simple(s) if s == "OK")) =>
        {
            for id in ids {
                recorder.complete(id, Output::Ok);
            }
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::{make_value, txn_of};

    #[test]
    fn values_describe_their_transaction() {
        let v = make_value(3, 1, 17, Some(("3-1-17", 3)));
        assert_eq!(v.len(), 64);
        assert_eq!(txn_of(&v), Some(("3-1-17".to_string(), 3)));
        assert_eq!(txn_of(&make_value(3, 1, 18, None)), None);
    }
}
