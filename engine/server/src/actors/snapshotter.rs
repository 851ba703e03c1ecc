//! The snapshotter: writes checkpoints on a thread of its own (a `SyncArbiter`), from an O(1)
//! clone of the key space, while the store owner goes on applying writes. Its thread runs at a
//! lower priority (nice +10): on a machine with few cores the checkpoint writer then waits for
//! the event loop rather than the event loop for it.

use actix::prelude::*;

use super::{CheckpointWritten, WriteCheckpoint};

/// Runs checkpoint jobs one at a time.
#[derive(Debug, Default)]
pub struct Snapshotter;

/// How much nicer than the server the snapshotter's thread is.
const SNAPSHOTTER_NICE: i32 = 10;

impl Actor for Snapshotter {
    type Context = SyncContext<Self>;

    fn started(&mut self, _: &mut SyncContext<Self>) {
        // On Linux the nice value is per thread: this lowers the snapshotter's thread alone. A
        // refusal (a sandbox without the syscall) only leaves the priority as it was.
        let _ = rustix::process::nice(SNAPSHOTTER_NICE);
        // Started from the event loop: off its CPU when it is pinned, since the pinned loop
        // cannot move away from a checkpoint running beside it.
        moodb_core::cpus::enter_background_thread();
    }
}

impl Handler<WriteCheckpoint> for Snapshotter {
    type Result = ();

    fn handle(&mut self, msg: WriteCheckpoint, _: &mut SyncContext<Self>) {
        let result = msg.job.write(msg.state);
        msg.reply_to.do_send(CheckpointWritten(result));
    }
}
