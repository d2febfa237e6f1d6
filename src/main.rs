use std::io::IsTerminal;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use escalation_gate::assess::note;
use escalation_gate::config::{self, ConfigError, ValidConnector};
use escalation_gate::connector::{self, Connector};
use escalation_gate::eval;
use escalation_gate::helpdesk::zendesk::webhook;
use escalation_gate::judge_pool::{self, JudgePool};
use escalation_gate::server::ServerSettings;
use escalation_gate::telemetry::{self, LogFormat};

/// Judges partner escalations and writes the verdict back to the helpdesk.
///
/// Each file `*.toml` in the connectors folder is one connector, served at
/// `POST /hooks/{file name}`. Secrets in connector files are `${ENV_VAR}` references.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhooks, /healthz and /metrics.
    Serve {
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
        /// Log format (filter with RUST_LOG, e.g. `info,escalation_gate=debug`).
        #[arg(long, env = "EG_LOG_FORMAT", value_enum, default_value = "text")]
        log_format: LogFormat,
        #[command(flatten)]
        index: IndexDir,
        /// Threads that search embedded indexes and judge (default: one per core).
        #[arg(long, env = "EG_JUDGE_THREADS")]
        judge_threads: Option<NonZeroUsize>,
        /// Judgements that may wait for a judge thread; a webhook that finds the queue full is
        /// answered 503 with Retry-After (default: 32 per judge thread).
        #[arg(long, env = "EG_JUDGE_QUEUE")]
        judge_queue: Option<usize>,
    },
    /// Judge one saved ticket offline and print the verdict as JSON. Writes nothing.
    ///
    /// FILE is the ticket as the helpdesk's API returns it (Zendesk:
    /// `GET /api/v2/tickets/{id}.json?include=users,organizations`). The knowledge base is the
    /// connector's own (searched read-only).
    Check {
        /// The connector whose rules and knowledge base judge the ticket.
        #[arg(long)]
        connector: String,
        file: PathBuf,
        #[command(flatten)]
        dir: ConnectorsDir,
        /// When the ticket was escalated (RFC 3339); default: the ticket's `updated_at`.
        #[arg(long)]
        escalated_at: Option<DateTime<Utc>>,
        #[command(flatten)]
        index: IndexDir,
    },
    /// Measure the knowledge-base judgement on labelled cases, through the service's own path.
    ///
    /// Builds the embedded index from ARTICLES (JSON lines `{id, title, body, locale}`), judges
    /// every case of CASES (JSON lines `{id, text, label, article_ids, split}`) and prints the
    /// search's P@1 and MRR and the judge's precision/recall figures.
    Eval {
        /// The knowledge base, as JSON lines.
        #[arg(long)]
        articles: PathBuf,
        /// The labelled cases, as JSON lines.
        #[arg(long)]
        cases: PathBuf,
        /// Only the cases of this split (default: all).
        #[arg(long, value_enum)]
        split: Option<eval::Split>,
        /// Article ids (one a line) to remove from the knowledge base; a case whose every
        /// answer is withheld counts as not resolvable.
        #[arg(long)]
        withhold: Option<PathBuf>,
        /// Also write the figures to this file as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
        /// The judge's threshold (default: the connector default).
        #[arg(long, default_value_t = escalation_gate::assess::kb::rescore::DEFAULT_THRESHOLD)]
        threshold: f64,
    },
    /// Run a connector's `[sweep]` once now and print what it did as JSON: the escalated
    /// tickets without a verdict it found, and how many it judged (and wrote back).
    ///
    /// `serve` sweeps on its own every `every_minutes`; this is for a first catch-up after
    /// installing, or a scheduler of your own.
    Sweep {
        /// The connector to sweep.
        #[arg(long)]
        connector: String,
        #[command(flatten)]
        dir: ConnectorsDir,
        #[command(flatten)]
        index: IndexDir,
    },
    /// Load every connector file and report each problem as file: key: what is wrong.
    Validate {
        #[command(flatten)]
        dir: ConnectorsDir,
    },
    /// Print (or write to a folder) what an admin deploys into a helpdesk for a connector.
    Install {
        #[command(subcommand)]
        helpdesk: InstallTarget,
    },
    /// Sign a JSON body as a Zendesk webhook does and POST it (try the demo with it).
    Send {
        /// The body to send, e.g. connectors/demo/samples/good.json.
        file: PathBuf,
        /// Where to send it.
        #[arg(long, default_value = "http://127.0.0.1:8080/hooks/demo")]
        url: String,
        /// Environment variable that holds the signing secret.
        #[arg(long, default_value = "DEMO_SIGNING_SECRET")]
        secret_env: String,
    },
}

#[derive(Subcommand)]
enum InstallTarget {
    /// Salesforce metadata: the custom Case fields, a permission set for the integration user,
    /// the outbound message and the flow that sends it when a Case is escalated, the remote site,
    /// and a package.xml (deploy with `sf project deploy start --manifest package.xml`).
    Salesforce {
        /// The connector (its file name without .toml).
        #[arg(long)]
        connector: String,
        /// Where escalation-gate is reachable from Salesforce.
        #[arg(long, default_value = "https://escalation-gate.example.com")]
        url: String,
        /// Also the blind survey: its Case fields, a `solved` outbound message and a flow that
        /// sends it a day after a Case is closed.
        #[arg(long)]
        survey: bool,
        /// Write the files into this folder instead of printing them.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct IndexDir {
    /// Folder where each embedded knowledge base keeps its index (`{folder}/{connector}/`), to
    /// reuse it at the next start while the articles do not change. Default:
    /// `$XDG_CACHE_HOME/escalation-gate/index` or `$HOME/.cache/escalation-gate/index`. When
    /// it cannot be written, the index is built in memory.
    #[arg(long, env = "EG_INDEX_DIR")]
    index_dir: Option<PathBuf>,
    /// Keep embedded indexes in memory only: built again at every start.
    #[arg(long, env = "EG_INDEX_IN_MEMORY", conflicts_with = "index_dir")]
    index_in_memory: bool,
}

impl IndexDir {
    fn folder(&self) -> Option<PathBuf> {
        if self.index_in_memory {
            return None;
        }
        self.index_dir.clone().or_else(|| {
            env("XDG_CACHE_HOME")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| Path::new(&h).join(".cache")))
                .map(|cache| cache.join("escalation-gate").join("index"))
        })
    }

    fn runtime(&self) -> connector::Runtime {
        connector::Runtime {
            index_dir: self.folder(),
            ..connector::Runtime::default()
        }
    }
}

#[derive(clap::Args)]
struct ConnectorsDir {
    /// Folder of connector files.
    #[arg(
        long = "connectors",
        env = "EG_CONNECTORS",
        default_value = "connectors"
    )]
    connectors: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            listen,
            dir,
            max_body_bytes,
            request_timeout_secs,
            log_format,
            index,
            judge_threads,
            judge_queue,
        } => {
            telemetry::init(log_format);
            let threads = judge_threads.unwrap_or_else(judge_pool::default_threads);
            let queue = judge_queue.unwrap_or(threads.get() * judge_pool::DEFAULT_QUEUE_PER_THREAD);
            JudgePool::new(threads, queue)
                .context("starting the judge threads")
                .and_then(|judges| {
                    serve(
                        listen,
                        &dir.connectors,
                        ServerSettings {
                            max_body_bytes,
                            request_timeout: Duration::from_secs(request_timeout_secs),
                        },
                        &connector::Runtime {
                            judges,
                            ..index.runtime()
                        },
                    )
                })
        }
        Command::Check {
            connector,
            file,
            dir,
            escalated_at,
            index,
        } => check(&dir.connectors, &connector, &file, escalated_at, &index),
        Command::Validate { dir } => validate(&dir.connectors),
        Command::Sweep {
            connector,
            dir,
            index,
        } => sweep(&dir.connectors, &connector, &index),
        Command::Eval {
            articles,
            cases,
            split,
            withhold,
            json,
            threshold,
        } => run_eval(
            &articles,
            &cases,
            withhold.as_deref(),
            json.as_deref(),
            eval::Options {
                split,
                threshold,
                ..eval::Options::default()
            },
        ),
        Command::Send {
            file,
            url,
            secret_env,
        } => send(&file, &url, &secret_env),
        Command::Install {
            helpdesk:
                InstallTarget::Salesforce {
                    connector,
                    url,
                    survey,
                    out,
                },
        } => install_salesforce(&connector, &url, survey, out.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load(dir: &Path) -> anyhow::Result<Vec<ValidConnector>> {
    config::load_dir(dir, &env).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} problem(s) in the connector files", errors.len())
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn serve(
    listen: SocketAddr,
    dir: &Path,
    settings: ServerSettings,
    runtime_settings: &connector::Runtime,
) -> anyhow::Result<ExitCode> {
    let connectors = load(dir)?
        .into_iter()
        .map(|c| Connector::build_with(c, runtime_settings))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        escalation_gate::run(connectors, settings, listener, shutdown_signal()).await?;
        tracing::info!("Stopped");
        Ok(ExitCode::SUCCESS)
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

fn validate(dir: &Path) -> anyhow::Result<ExitCode> {
    match config::load_dir(dir, &env) {
        Ok(connectors) => {
            for c in &connectors {
                println!("{}: ok (connector `{}`)", c.file.display(), c.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            print_errors(&errors);
            Ok(ExitCode::FAILURE)
        }
    }
}

fn print_errors(errors: &[ConfigError]) {
    for e in errors {
        println!("{e}");
    }
    println!("{} problem(s)", errors.len());
}

/// Loads and builds one connector of `dir` by name.
fn one_connector(dir: &Path, name: &str, index: &IndexDir) -> anyhow::Result<Connector> {
    let path = dir.join(format!("{name}.toml"));
    if !path.is_file() {
        bail!("no connector `{name}`: {} does not exist", path.display());
    }
    let valid = config::load_file(&path, &env).map_err(|errors| {
        print_errors(&errors);
        anyhow::anyhow!("connector `{name}` is not valid")
    })?;
    Connector::build_with(valid, &index.runtime())
}

fn sweep(dir: &Path, name: &str, index: &IndexDir) -> anyhow::Result<ExitCode> {
    let connector = one_connector(dir, name, index)?;
    let report = runtime()?
        .block_on(async {
            connector.ready().await?;
            anyhow::Ok(escalation_gate::sweep::sweep_once(&connector, Utc::now(), &|| false).await)
        })?
        .with_context(|| format!("connector `{name}` has no [sweep] table"))??;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn check(
    dir: &Path,
    name: &str,
    file: &Path,
    escalated_at: Option<DateTime<Utc>>,
    index: &IndexDir,
) -> anyhow::Result<ExitCode> {
    let connector = one_connector(dir, name, index)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let snapshot: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let escalated_at = match escalated_at {
        Some(t) => t,
        None => snapshot["ticket"]["updated_at"]
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .context("the ticket has no `updated_at`; pass --escalated-at")?,
    };
    let esc = connector
        .helpdesk
        .escalation_from_snapshot(&snapshot, escalated_at)?;
    let verdict = runtime()?.block_on(async {
        connector.ready().await?;
        anyhow::Ok(connector.judge(&esc).await?)
    })?;
    let out = serde_json::json!({
        "connector": esc.connector,
        "ticket": esc.ticket_id,
        "partner": esc.partner,
        "verdict": verdict,
        "note": note::render(&esc, &verdict),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

fn run_eval(
    articles: &Path,
    cases: &Path,
    withhold: Option<&Path>,
    json: Option<&Path>,
    options: eval::Options,
) -> anyhow::Result<ExitCode> {
    if !(options.threshold > 0.0 && options.threshold <= 1.0) {
        bail!(
            "--threshold must be above 0 and at most 1, found {}",
            options.threshold
        );
    }
    let data = eval::load(articles, cases, withhold)?;
    let total = data
        .cases
        .iter()
        .filter(|c| options.split.is_none_or(|s| s == c.split))
        .count();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = eval::evaluate(&data, &options, || bar.inc(1))?;
    bar.finish_and_clear();
    print!("{report}");
    if let Some(out) = json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(out, text + "\n").with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn send(file: &Path, url: &str, secret_env: &str) -> anyhow::Result<ExitCode> {
    let secret = env(secret_env)
        .with_context(|| format!("environment variable `{secret_env}` is not set"))?;
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let timestamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let signature = webhook::sign(&secret, &timestamp, &body);
    runtime()?.block_on(async {
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header(webhook::TIMESTAMP, &timestamp)
            .header(webhook::SIGNATURE, &signature)
            .body(body)
            .send()
            .await
            .with_context(|| format!("sending to {url}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        println!("HTTP {status}");
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => println!("{}", serde_json::to_string_pretty(&v)?),
            Err(_) => println!("{text}"),
        }
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// The Salesforce metadata for one connector, as (path, content) pairs of a Metadata API
/// source folder.
fn install_salesforce(
    connector: &str,
    url: &str,
    survey: bool,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    if connector.is_empty()
        || !connector
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("`{connector}` is not a connector id: letters, digits, - and _ only");
    }
    let files = escalation_gate::helpdesk::salesforce::install::metadata(connector, url, survey);
    match out {
        Some(dir) => {
            for (path, content) in &files {
                let full = dir.join(path);
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)
                        .with_context(|| format!("creating {}", parent.display()))?;
                }
                std::fs::write(&full, content)
                    .with_context(|| format!("writing {}", full.display()))?;
                println!("wrote {}", full.display());
            }
            println!(
                "Replace REPLACE_WITH_SF_ENDPOINT_TOKEN and REPLACE_WITH_INTEGRATION_USERNAME, then deploy: \
                 sf project deploy start --manifest {}\n\
                 and assign the permission set to the integration user: \
                 sf org assign permset --name Escalation_Gate --on-behalf-of <integration username>",
                dir.join("package.xml").display()
            );
        }
        None => {
            for (path, content) in &files {
                println!("==> {path} <==\n{content}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
