//! Signals as a stream of requests: SIGTERM/SIGINT ask to stop, SIGHUP to reload.

use futures::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Stop { signal: &'static str },
    Reload,
}

pub struct SignalRequests {
    signals: Signals,
}

impl SignalRequests {
    /// Installs the handlers. Must run inside the tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        Ok(SignalRequests {
            signals: Signals::new([SIGTERM, SIGINT, SIGHUP])?,
        })
    }

    /// The next request; `None` only if the handlers were closed.
    pub async fn next(&mut self) -> Option<Request> {
        loop {
            match self.signals.next().await? {
                SIGTERM => return Some(Request::Stop { signal: "SIGTERM" }),
                SIGINT => return Some(Request::Stop { signal: "SIGINT" }),
                SIGHUP => return Some(Request::Reload),
                _ => continue,
            }
        }
    }
}
