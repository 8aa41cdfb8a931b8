//! The HTTP server for probes and metrics: `/healthz` (the process serves), `/readyz` (the
//! watch caches have synced, or this replica is a standby waiting on the Lease), `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;
use crate::{Error, Result};

/// What the handlers read.
#[derive(Clone)]
pub struct Probes {
    /// Set once the replica can serve its role.
    pub ready: Arc<AtomicBool>,
    /// The metrics to encode.
    pub metrics: Arc<Metrics>,
}

/// The router with the three endpoints.
pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

async fn readyz(State(p): State<Probes>) -> impl IntoResponse {
    if p.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced")
    }
}

async fn metrics(State(p): State<Probes>) -> impl IntoResponse {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], p.metrics.encode())
}

/// Serves `router` on `addr` until `shutdown` resolves.
///
/// # Errors
/// [`Error::Serve`] when the address cannot be bound or serving fails.
pub async fn serve(
    addr: &str,
    probes: Probes,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Serve {
            addr: addr.into(),
            source,
        })?;
    if let Ok(local) = listener.local_addr() {
        tracing::info!(addr = %local, "Serving probes and metrics");
    }
    axum::serve(listener, router(probes))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|source| Error::Serve {
            addr: addr.into(),
            source,
        })
}
