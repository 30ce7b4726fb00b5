//! Process exit codes (DESIGN section 9), after sysexits.h.

/// Done.
pub const OK: u8 = 0;
/// Anything else went wrong.
pub const FAILURE: u8 = 1;
/// The command line is wrong.
pub const USAGE: u8 = 64;
/// Temporary: try again later (for example, the rank is already running).
pub const TEMPORARY: u8 = 75;
/// The configuration (settings or registry) is wrong.
pub const CONFIG: u8 = 78;
