//! The snapshotter: writes checkpoints on a thread of its own (a `SyncArbiter`), from an O(1)
//! clone of the key space, while the store owner goes on applying writes.

use actix::prelude::*;

use super::{CheckpointWritten, WriteCheckpoint};

/// Runs checkpoint jobs one at a time.
#[derive(Debug, Default)]
pub struct Snapshotter;

impl Actor for Snapshotter {
    type Context = SyncContext<Self>;
}

impl Handler<WriteCheckpoint> for Snapshotter {
    type Result = ();

    fn handle(&mut self, msg: WriteCheckpoint, _: &mut SyncContext<Self>) {
        let result = msg.job.write(&msg.state);
        msg.reply_to.do_send(CheckpointWritten(result));
    }
}
