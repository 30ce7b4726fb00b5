//! The Microsoft Graph client against the sandbox's Graph emulator (in-process): tokens,
//! limits and back-off, delta rounds with stamps, writes that are never made twice, `$batch`
//! and the idle poll; and the shape of its requests against the documented samples
//! (wiremock).

#[path = "../common/mod.rs"]
mod common;

mod behaviour;
mod conflicts;
mod harness;
mod poll_batch;
mod shapes;
mod sync;

pub use harness::*;
