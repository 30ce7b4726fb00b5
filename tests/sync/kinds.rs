//! Per-kind details: all-day items, daylight-saving changes, to-dos without times.

use super::*;
