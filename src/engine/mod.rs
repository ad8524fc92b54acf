//! The engine: a worker thread that owns the burn device, the problem and the chains.
//!
//! Data flows one way: the caller (window or test) sends [`Command`]s down a channel; the
//! worker publishes [`Snapshot`]s into a single latest-wins slot, at most ~30 per second.
//! Nobody waits on anybody: the worker checks for commands between steps (so cancelling is
//! prompt) and the caller only ever takes the newest snapshot, never a queue.

mod snapshot;
mod worker;

pub use snapshot::{RunInputs, Snapshot, Status, TracePoint, UncertaintyFrame};
pub use worker::{Command, Engine, FAILPOINT_SEED, Wake};
