use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use escalation_gate::assess::note;
use escalation_gate::config::{self, ConfigError, ValidConnector};
use escalation_gate::connector::Connector;
use escalation_gate::eval;
use escalation_gate::helpdesk::zendesk::webhook;
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
        /// The review bound (default: the connector default): a best article between it and the
        /// threshold sends the case to a person.
        #[arg(long, default_value_t = escalation_gate::assess::kb::rescore::DEFAULT_REVIEW_BOUND)]
        review_bound: f64,
        /// Also judge the near-miss set: each case that names identifiers (error codes, message
        /// ids, ...) against an article naming others of the same family, its answers taken out.
        #[arg(long)]
        near_misses: bool,
        /// Also judge every case against generated knowledge bases of this many articles (one
        /// without its answer, one with it), drawn from ARTICLES with `--seed`.
        #[arg(long, value_name = "SIZE", value_parser = clap::value_parser!(u16).range(1..=100))]
        small_kbs: Option<u16>,
        /// The seed of `--small-kbs`.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the re-score's features of every case's candidate sets to this file (JSON
        /// lines) for `tools/fit_rescore.py`, instead of evaluating.
        #[arg(long, value_name = "FILE")]
        features: Option<PathBuf>,
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
        } => {
            telemetry::init(log_format);
            serve(
                listen,
                &dir.connectors,
                ServerSettings {
                    max_body_bytes,
                    request_timeout: Duration::from_secs(request_timeout_secs),
                },
            )
        }
        Command::Check {
            connector,
            file,
            dir,
            escalated_at,
        } => check(&dir.connectors, &connector, &file, escalated_at),
        Command::Validate { dir } => validate(&dir.connectors),
        Command::Sweep { connector, dir } => sweep(&dir.connectors, &connector),
        Command::Eval {
            articles,
            cases,
            split,
            withhold,
            json,
            threshold,
            review_bound,
            near_misses,
            small_kbs,
            seed,
            features,
        } => run_eval(
            &articles,
            &cases,
            withhold.as_deref(),
            json.as_deref(),
            eval::Options {
                split,
                threshold,
                review_bound,
                ..eval::Options::default()
            },
            EvalExtras {
                near_misses,
                small_kbs: small_kbs.map(|size| (usize::from(size), seed)),
                features,
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

fn serve(listen: SocketAddr, dir: &Path, settings: ServerSettings) -> anyhow::Result<ExitCode> {
    let connectors = load(dir)?
        .into_iter()
        .map(Connector::build)
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
fn one_connector(dir: &Path, name: &str) -> anyhow::Result<Connector> {
    let path = dir.join(format!("{name}.toml"));
    if !path.is_file() {
        bail!("no connector `{name}`: {} does not exist", path.display());
    }
    let valid = config::load_file(&path, &env).map_err(|errors| {
        print_errors(&errors);
        anyhow::anyhow!("connector `{name}` is not valid")
    })?;
    Connector::build(valid)
}

fn sweep(dir: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let connector = one_connector(dir, name)?;
    let report = runtime()?
        .block_on(escalation_gate::sweep::sweep_once(
            &connector,
            Utc::now(),
            &|| false,
        ))
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
) -> anyhow::Result<ExitCode> {
    let connector = one_connector(dir, name)?;
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
    let verdict = runtime()?.block_on(connector.judge(&esc))?;
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

/// What `eval` measures besides the report.
struct EvalExtras {
    near_misses: bool,
    /// Size and seed of the generated small knowledge bases.
    small_kbs: Option<(usize, u64)>,
    /// Where to write the fitting data instead.
    features: Option<PathBuf>,
}

fn run_eval(
    articles: &Path,
    cases: &Path,
    withhold: Option<&Path>,
    json: Option<&Path>,
    options: eval::Options,
    extras: EvalExtras,
) -> anyhow::Result<ExitCode> {
    for (flag, v) in [
        ("--threshold", options.threshold),
        ("--review-bound", options.review_bound),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            bail!("{flag} must be above 0 and at most 1, found {v}");
        }
    }
    let data = eval::load(articles, cases, withhold)?;
    if let Some(path) = &extras.features {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        eval::fitting_sets(&data, &options, extras.small_kbs, |set| {
            serde_json::to_writer(&mut w, &set)?;
            std::io::Write::write_all(&mut w, b"\n")
        })?;
        std::io::Write::flush(&mut w).with_context(|| format!("writing {}", path.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
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
    let near = if extras.near_misses {
        Some(eval::near_misses(&data, &options)?)
    } else {
        None
    };
    let small = match extras.small_kbs {
        Some((size, seed)) => Some(eval::small_kbs(&data, &options, size, seed)?),
        None => None,
    };
    for n in near.iter().flatten() {
        print!("{n}");
    }
    if let Some(s) = &small {
        print!("{s}");
    }
    if let Some(out) = json {
        let mut value = serde_json::to_value(&report)?;
        value["near_misses"] = serde_json::to_value(&near)?;
        value["small_kbs"] = serde_json::to_value(&small)?;
        let text = serde_json::to_string_pretty(&value)?;
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
