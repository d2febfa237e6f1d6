//! escalation-gate: judges partner escalations (hand-off fields and knowledge base) and writes
//! the verdict back to the helpdesk.
//!
//! Where things are: [`cli`] has one file per command; [`runtime`] the service's moving parts
//! (the connector's path, the judge's threads, the accept loop, the sweep) and [`server`] its
//! HTTP routes, both started by [`run`]; [`offline`] the engines of `report`, `calibrate`,
//! `backfill` and `eval`. Below them: [`config`] (connector files), [`helpdesk`] (one folder
//! per helpdesk, behind small roles), [`survey`], [`kb`] (article search), [`assess`] (the
//! judgement, pure), [`http`] (the outbound client) and [`checks`] (value checks); the leaves
//! [`escalation`], [`metrics`], [`telemetry`] and [`ticket_lock`]. No module imports one that
//! imports it back, file by file (`tests/api/module_graph.rs`).

pub mod assess;
pub mod checks;
pub mod cli;
pub mod config;
pub mod escalation;
pub mod helpdesk;
pub mod http;
pub mod kb;
pub mod metrics;
pub mod offline;
pub mod runtime;
pub mod sandbox;
pub mod server;
pub mod survey;
pub mod telemetry;
pub mod ticket_lock;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::runtime::connector::{Connector, Connectors};
use crate::runtime::{mirror, serve, sweep};
use crate::server::ServerSettings;

/// Serves the connectors on `listener` until `shutdown` resolves, then finishes the requests
/// under way. `/metrics` is not served (see [`run_with_metrics`]).
pub async fn run(
    connectors: Vec<Connector>,
    settings: ServerSettings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with_metrics(connectors, settings, listener, None, shutdown).await
}

/// [`run`], and `GET /metrics` on `metrics` when given: its own address, so the webhooks'
/// public port never shows partner names and counts.
pub async fn run_with_metrics(
    connectors: Vec<Connector>,
    settings: ServerSettings,
    listener: TcpListener,
    metrics: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    metrics::handle();
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
    let mirrors = mirror::spawn(&by_id, stopped.clone());
    // What each helpdesk must hold for the verdict writes, read once at start for the log and
    // `/healthz` (a refused write says so again).
    for c in by_id.values() {
        let c = Arc::clone(c);
        tokio::spawn(async move {
            if let Err(e) = c.helpdesk.tickets.preflight().await {
                tracing::warn!(connector = %c.id, error = %e, "Could not read the helpdesk's configuration at start");
            }
        });
    }
    let metrics_served = match metrics {
        Some(l) => {
            tracing::info!(address = %l.local_addr()?, "Serving /metrics");
            let limits = serve::Limits {
                max_connections: METRICS_CONNECTIONS,
                ..serve::Limits::from(&settings)
            };
            Some(tokio::spawn(serve::serve(
                l,
                server::metrics_router(),
                None,
                limits,
                stopped.clone(),
            )))
        }
        None => {
            tracing::info!("Not serving /metrics: no metrics listen address given");
            None
        }
    };
    let stop_on = tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let served = serve::serve(
        listener,
        server::router(Arc::clone(&by_id), settings),
        Some(server::overflow_router(by_id, settings)),
        serve::Limits::from(&settings),
        stopped,
    )
    .await;
    stop_on.abort();
    if let Some(m) = metrics_served {
        m.await.map_err(std::io::Error::other)??;
    }
    for s in sweeps.into_iter().chain(mirrors) {
        let _ = s.await;
    }
    served
}

/// Connections the metrics listener takes at once (a scraper needs one or two).
const METRICS_CONNECTIONS: usize = 16;
