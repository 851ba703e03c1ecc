//! Periodic messages to an actor, from a task of their own.
//!
//! A timer run inside an actor's context (`ctx.run_interval`) is polled every time the actor
//! wakes, for whatever message woke it: for a session or the store owner, once per request
//! (about 120 instructions per timer and wake-up, callgrind). A ticker sleeps in its own task
//! and wakes the actor only when it fires.

use std::time::Duration;

use actix::dev::ToEnvelope;
use actix::prelude::*;
use tokio::time::{interval_at, Instant, MissedTickBehavior};

/// Sends `make()` to `addr` every `period` (the first after one period), until the actor
/// stops.
pub fn every<A, M>(addr: &Addr<A>, period: Duration, make: impl Fn() -> M + 'static)
where
    A: Actor + Handler<M>,
    A::Context: ToEnvelope<A, M>,
    M: Message + Send + 'static,
    M::Result: Send,
{
    let weak = addr.downgrade();
    actix::spawn(async move {
        let mut ticks = interval_at(Instant::now() + period, period);
        // A late tick is not made up for: the next one comes a period after it.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match weak.upgrade() {
                Some(addr) if addr.connected() => addr.do_send(make()),
                _ => return,
            }
        }
    });
}
