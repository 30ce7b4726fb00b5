//! Connectors: the only code that does HTTP. Each service (Microsoft Graph, SuperOffice) is
//! reached through a client that authenticates, respects the `limits`, retries what is safe
//! to retry and answers in the neutral [`model`]: the engine never sees HTTP or JSON.

pub mod graph;
pub mod http;
pub mod model;

use std::fmt;
use std::time::Duration;

/// The services crmsync talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Graph,
    SuperOffice,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Graph => "Microsoft Graph",
            Service::SuperOffice => "SuperOffice",
        })
    }
}

/// What went wrong, classed by what the caller should do about it (DESIGN section 8).
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Worth trying again later: a 5xx, a timeout, a broken connection, throttling that
    /// outlasted the retries.
    #[error("{service}: temporary failure ({what}); will retry")]
    Transient {
        service: Service,
        what: String,
        retry_after: Option<Duration>,
    },
    /// One item cannot be read or written; it is quarantined, the others go on.
    #[error("{service}: item {item}: {what}")]
    Item {
        service: Service,
        item: String,
        what: String,
    },
    /// This user cannot be synced until something changes (mailbox gone, consent withdrawn,
    /// associate retired); the other users go on.
    #[error("{service}: {what}")]
    User { service: Service, what: String },
    /// Nothing can be done with this service (credentials refused, tenant not running).
    #[error("{service}: {what}")]
    Service { service: Service, what: String },
    /// The item changed on the service after it was read (HTTP 412): a conflict for the engine.
    #[error("{service}: item {item} was changed by someone else meanwhile")]
    Conflict { service: Service, item: String },
    /// The change cursor is no longer valid; a full round is needed (Graph 410 /
    /// `syncStateNotFound` / `resyncRequired`).
    #[error("{service}: the change cursor expired; a full resynchronisation is needed")]
    ResyncNeeded { service: Service },
}
