//! escalation-gate: judges partner escalations (hand-off fields and knowledge base) and writes
//! the verdict back to the helpdesk.

pub mod assess;
pub mod config;
pub mod connector;
pub mod escalation;
pub mod eval;
pub mod helpdesk;
pub mod http;
pub mod judge_pool;
pub mod kb;
pub mod metrics;
pub mod server;
pub mod survey;
pub mod sweep;
pub mod telemetry;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use connector::{Connector, Connectors};
use server::ServerSettings;

/// Serves the connectors on `listener` until `shutdown` resolves, then finishes the requests
/// under way.
pub async fn run(
    connectors: Vec<Connector>,
    settings: ServerSettings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let by_id: Connectors = Arc::new(
        connectors
            .into_iter()
            .map(|c| (c.id.clone(), Arc::new(c)))
            .collect::<HashMap<_, _>>(),
    );
    tracing::info!(
        address = %listener.local_addr()?,
        connectors = ?by_id.keys().collect::<Vec<_>>(),
        "Listening"
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let sweeps = sweep::spawn(&by_id, stopped.clone());
    let served = axum::serve(listener, server::router(by_id, settings))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop.send(true);
        })
        .await;
    for s in sweeps {
        let _ = s.await;
    }
    served
}
