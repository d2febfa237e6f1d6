//! `serve`: the webhooks, `/healthz` and `/metrics`, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::args::{ConnectorsDir, IndexDir, env, runtime};
use crate::config::{self, ValidConnector};
use crate::runtime::connector::{self, Connector};
use crate::runtime::judge_pool::{self, JudgePool};
use crate::server::ServerSettings;
use crate::telemetry::LogFormat;

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "EG_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    dir: ConnectorsDir,
    /// Largest webhook body accepted; larger ones get 413.
    #[arg(long, env = "EG_MAX_BODY_BYTES", default_value_t = ServerSettings::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Longest time a webhook waits for its answer before it is told to deliver again.
    #[arg(long, env = "EG_REQUEST_TIMEOUT_SECS", default_value_t = ServerSettings::default().request_timeout.as_secs())]
    request_timeout_secs: u64,
    /// Longest time a client may take to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "EG_HEADER_READ_TIMEOUT_SECS", default_value_t = ServerSettings::default().header_read_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    header_read_timeout_secs: u64,
    /// Longest time a client may take to send a request's whole body; slower ones get 408.
    #[arg(long, env = "EG_BODY_READ_TIMEOUT_SECS", default_value_t = ServerSettings::default().body_read_timeout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
    body_read_timeout_secs: u64,
    /// Most client connections open at once (keep it well below the open-file limit);
    /// further clients wait in the listen queue.
    #[arg(long, env = "EG_MAX_CONNECTIONS", default_value_t = ServerSettings::default().max_connections, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    max_connections: usize,
    /// Serve `GET /metrics` on this address (e.g. `127.0.0.1:9091`, or `[::]:9091` on Fly's
    /// private network). Without it, metrics are not served: never on the webhook port.
    #[arg(long, env = "EG_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Log format (filter with RUST_LOG, e.g. `info,escalation_gate=debug`).
    #[arg(long, env = "EG_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    #[command(flatten)]
    index: IndexDir,
    /// Threads that search embedded indexes and judge (default: one per core).
    #[arg(long, env = "EG_JUDGE_THREADS")]
    judge_threads: Option<NonZeroUsize>,
    /// Judgements that may wait for a judge thread; a webhook that finds the queue full is
    /// answered 503 with Retry-After (default: 32 per judge thread).
    #[arg(long, env = "EG_JUDGE_QUEUE")]
    judge_queue: Option<usize>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let threads = args
        .judge_threads
        .unwrap_or_else(judge_pool::default_threads);
    let queue = args
        .judge_queue
        .unwrap_or(threads.get() * judge_pool::DEFAULT_QUEUE_PER_THREAD);
    let judges = JudgePool::new(threads, queue).context("starting the judge threads")?;
    let settings = ServerSettings {
        max_body_bytes: args.max_body_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        body_read_timeout: Duration::from_secs(args.body_read_timeout_secs),
        max_connections: args.max_connections,
    };
    let runtime_settings = connector::Runtime {
        judges,
        ..args.index.runtime()
    };
    let connectors = load(&args.dir.connectors)?
        .into_iter()
        .map(|c| Connector::build_with(c, &runtime_settings))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))
        };
        let listener = bind(args.listen).await?;
        let metrics = match args.metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        crate::run_with_metrics(connectors, settings, listener, metrics, shutdown_signal()).await?;
        tracing::info!("Stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Every connector of `dir`; the problems of every file go to standard error.
fn load(dir: &Path) -> anyhow::Result<Vec<ValidConnector>> {
    config::load_dir(dir, &env).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} problem(s) in the connector files", errors.len())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("Shutting down: finishing requests under way");
}
