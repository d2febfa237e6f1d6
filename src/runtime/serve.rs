//! The accept loop: HTTP/1 connections with a header-read time limit (which also closes idle
//! keep-alive connections), at most `max_connections` at once plus a small reserve for health
//! checks, and a graceful shutdown that lets the requests under way finish.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// The connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// How long accepting pauses after an accept error (e.g. too many open files).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Connections accepted beyond `max_connections` for the reserve router, one request each.
const RESERVE_CONNECTIONS: usize = 16;

/// Serves `router` on `listener` until `stop` turns true, then waits for the connections under
/// way to finish their requests. With `reserve`, a client that finds all `max_connections`
/// taken is still accepted, up to [`RESERVE_CONNECTIONS`] more, and served by `reserve` for
/// one request (health checks answer while webhooks hold every connection); beyond those,
/// clients wait in the kernel's listen queue.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    reserve: Option<Router>,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let ordinary = Arc::new(Semaphore::new(max));
    let spare = if reserve.is_some() {
        RESERVE_CONNECTIONS
    } else {
        0
    };
    let reserved = Arc::new(Semaphore::new(spare));
    loop {
        // A slot first (one of `max_connections`, else one of the reserve's): beyond every
        // slot, clients wait in the kernel's listen queue.
        let (slot, in_reserve) = tokio::select! {
            biased;
            () = stopped(&mut stop) => break,
            slot = Arc::clone(&ordinary).acquire_owned() => (slot, false),
            slot = Arc::clone(&reserved).acquire_owned() => (slot, true),
        };
        let slot: OwnedSemaphorePermit = slot.expect("the semaphore is never closed");
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(error = %e, "Accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        // An ordinary slot that freed up while waiting for the client is taken over the reserve.
        let (slot, in_reserve) =
            if in_reserve && let Ok(freed) = Arc::clone(&ordinary).try_acquire_owned() {
                (freed, false)
            } else {
                (slot, in_reserve)
            };
        let (service, keep_alive) = match &reserve {
            Some(reserve) if in_reserve => (reserve.clone(), false),
            _ => (router.clone(), true),
        };
        let _ = stream.set_nodelay(true);
        // The client's address, for handlers that take `ConnectInfo` (the precheck's rate
        // limit of public callers).
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            service,
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req
            },
        ));
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(keep_alive);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "Connection ended with an error");
            }
        });
    }
    drop(listener);
    // Every slot back: every connection has finished.
    let _all = ordinary
        .acquire_many(max as u32)
        .await
        .expect("the semaphore is never closed");
    let _reserve = reserved
        .acquire_many(spare as u32)
        .await
        .expect("the semaphore is never closed");
    Ok(())
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}
