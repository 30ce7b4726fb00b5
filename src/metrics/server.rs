//! The scrape endpoint: `GET /metrics` on the rank's own address, nothing else.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Metrics, MetricsError};

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Binds `addr` and serves `GET /metrics` until `stop` is cancelled. Binding happens before
/// this returns, so a taken port is an error at start-up, not a log line later; the bound
/// address is returned (the port chosen when `addr` has port 0). The task ends once `stop`
/// is cancelled and the scrapes in progress have been answered.
pub async fn serve(
    addr: SocketAddr,
    metrics: Metrics,
    stop: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), MetricsError> {
    let rank = metrics.rank();
    let bind_error = |source| MetricsError::Bind { addr, rank, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::warn!(%bound, error = %e, "the metrics endpoint stopped");
        }
    });
    tracing::debug!(%bound, "serving metrics");
    Ok((bound, task))
}

async fn scrape(State(metrics): State<Metrics>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], metrics.render())
}
