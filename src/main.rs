use std::io::IsTerminal;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use clap::{Parser, Subcommand};

use escalation_gate::admin::{self, ConnectorsDir, env, print_errors, runtime};
use escalation_gate::assess::kb::KbSettings;
use escalation_gate::assess::note;
use escalation_gate::backfill;
use escalation_gate::calibrate;
use escalation_gate::config::{self, ValidConnector};
use escalation_gate::connector::{self, Connector};
use escalation_gate::eval;
use escalation_gate::helpdesk::{Period, SearchTerms};
use escalation_gate::judge_pool::{self, JudgePool};
use escalation_gate::kb::local::LocalIndex;
use escalation_gate::report;
use escalation_gate::report::articles::Articles;
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
        /// The saved ticket: a JSON file as the helpdesk's API returns it (see above).
        file: PathBuf,
        #[command(flatten)]
        dir: ConnectorsDir,
        /// When the ticket was escalated: RFC 3339 (2024-05-01T09:30:00Z), YYYY-MM-DDTHH:MM in
        /// UTC, or a day YYYY-MM-DD (its start, UTC); default: what the ticket says (its last
        /// update).
        #[arg(long, value_parser = escalation_gate::cli::parse_instant)]
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
        /// The review bound (default: the connector default): a best article between it and the
        /// threshold sends the case to a person.
        #[arg(long, default_value_t = escalation_gate::assess::kb::rescore::DEFAULT_REVIEW_BOUND)]
        review_bound: f64,
        /// Also judge the near-miss set: each case that names identifiers (error codes, message
        /// ids, ...) against an article naming others of the same family, its answers taken out.
        #[arg(long)]
        near_misses: bool,
        /// Also judge the tried-fix set: each resolvable case with a sentence added that says
        /// its answer's resolution steps were done and the problem persists.
        #[arg(long)]
        tried_fix: bool,
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
        #[command(flatten)]
        index: IndexDir,
    },
    /// The partner scorecard: read every ticket of a period back from the helpdesk and write,
    /// per partner and month, the escalation rate, the good-escalation ratio with its 95 % Wilson
    /// interval against the contract target, bad escalations by reason, the blind CSAT and CES,
    /// the tier reached, and the knowledge view.
    ///
    /// Contract terms (target, minimum samples, tiers) come from the connector's `[report]`
    /// table. Zendesk is read with Export Search Results, Salesforce with SOQL; rate limits are
    /// waited out.
    Report {
        #[command(flatten)]
        args: ReportArgs,
        #[command(flatten)]
        dir: ConnectorsDir,
    },
    /// Agreement between the judge and the reviewers, and the threshold and review bound that
    /// keep precision of "bad" at the target on the connector's own reviewed cases.
    ///
    /// Reads every ticket created in the period back from the helpdesk (Zendesk Export Search
    /// Results, Salesforce SOQL; rate limits are waited out) and prints: the review rate, the
    /// precision of the judge's "bad" overall and by reason (the share of its reviewed bad
    /// verdicts a person kept bad) with a 95 % Wilson interval, the overturn reasons, and the
    /// `[knowledge_base]` lines to paste. The proposal rests on reviewed cases whose verdict
    /// records the judge's confidence (Zendesk tag `escalation_kb_conf_NN`; Salesforce `conf=`
    /// in `[helpdesk.verdict_fields] detail`); below `--min-reviewed` of them it says the sample
    /// is too small to move the connector's values.
    Calibrate {
        #[command(flatten)]
        args: CalibrateArgs,
        #[command(flatten)]
        dir: ConnectorsDir,
    },
    /// Judge a past period's escalations, each as of its own escalation time, for a baseline
    /// before a partner contract starts: a dry run (the default) prints the verdicts as JSON
    /// lines and writes nothing; `--write` writes them to the tickets as the webhook would.
    ///
    /// Escalated tickets are found through the helpdesk (Zendesk Export Search Results with the
    /// connector's escalation rule or --query; Salesforce Cases with `IsEscalated`), paged, by
    /// creation in the period. The escalation time comes from each ticket's history (Zendesk
    /// audits, Salesforce CaseHistory); articles published after it never count. A ticket that
    /// already carries a verdict is never written again: after an interruption, run the same
    /// command again to finish. Rate limits are waited out.
    Backfill {
        #[command(flatten)]
        period: PeriodArgs,
        /// Write the verdicts to the tickets (tags or fields and the note, as the webhook does).
        #[arg(long, conflicts_with = "dry_run")]
        write: bool,
        /// Judge and print only; nothing is written to a ticket. The default.
        #[arg(long)]
        dry_run: bool,
        /// Zendesk search terms that find escalated tickets (e.g. `tags:partner_escalation`),
        /// instead of the connector's `[sweep] query` or its escalation trigger's tags.
        #[arg(long)]
        query: Option<String>,
        #[command(flatten)]
        index: IndexDir,
        /// Write the JSON lines to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        dir: ConnectorsDir,
    },
    /// Load every connector file and report each problem as file: key: what is wrong.
    Validate {
        #[command(flatten)]
        dir: ConnectorsDir,
    },
    /// Set a helpdesk up for a connector: Salesforce metadata to deploy, or Zendesk through its API.
    Install {
        #[command(subcommand)]
        helpdesk: admin::InstallTarget,
    },
    /// Remove what `install` set up in a helpdesk for a connector.
    Uninstall {
        #[command(subcommand)]
        helpdesk: admin::UninstallTarget,
    },
    /// A sample Zendesk account on this machine, with a mail catcher: every command tried
    /// without a helpdesk account.
    ///
    /// Starts on 127.0.0.1 the fake Zendesk the integration tests run against, seeded with
    /// partners, a few hundred tickets over the last two full quarters, a Help Center, reviews
    /// and survey answers; writes a connector folder pointing at it; prints the commands to try.
    /// New escalations arrive while it runs. Ctrl-C stops it.
    Sandbox(escalation_gate::sandbox::Args),
    /// Sign a JSON body as the connector's helpdesk signs its calls and POST it (try the demo
    /// with it).
    Send {
        /// The body to send, e.g. connectors/demo/samples/good.json.
        file: PathBuf,
        /// The connector whose helpdesk's signature the call carries (with the first of its
        /// signing secrets).
        #[arg(long, default_value = "demo")]
        connector: String,
        #[command(flatten)]
        dir: ConnectorsDir,
        /// Where to send it (default: http://127.0.0.1:8080/hooks/CONNECTOR).
        #[arg(long)]
        url: Option<String>,
        /// Print the service's whole JSON answer (the assessment with every signal) instead of
        /// the verdict and its note.
        #[arg(long)]
        json: bool,
    },
}

/// A connector and the days of the tickets it reads back.
#[derive(clap::Args)]
struct PeriodArgs {
    /// The connector whose helpdesk holds the record.
    #[arg(long)]
    connector: String,
    /// First day of the period (YYYY-MM-DD, UTC), by ticket creation.
    #[arg(long, value_parser = escalation_gate::cli::parse_day)]
    from: NaiveDate,
    /// Last day of the period, included (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = escalation_gate::cli::parse_day)]
    to: NaiveDate,
}

impl PeriodArgs {
    /// The tickets created from `from` to `to`, both days included (UTC).
    fn period(&self) -> anyhow::Result<Period> {
        let (from, to) = (self.from, self.to);
        if to < from {
            bail!("--to ({to}) is before --from ({from})");
        }
        Ok(Period {
            from: from.and_time(NaiveTime::MIN).and_utc(),
            to: (to + chrono::Days::new(1))
                .and_time(NaiveTime::MIN)
                .and_utc(),
        })
    }
}

#[derive(clap::Args)]
struct ReportArgs {
    #[command(flatten)]
    period: Option<PeriodArgs>,
    /// The scorecard of the sandbox's sample account instead (`escalation-gate sandbox`): it is
    /// started in this process on free ports and read for its two quarters; no helpdesk account,
    /// no connector file.
    #[arg(long, conflicts_with_all = ["PeriodArgs", "from_jsonl"])]
    sandbox: bool,
    /// With --sandbox: the sample account as it stands on this day (YYYY-MM-DD), for output that
    /// is the same at every run. Default: today.
    #[arg(long, requires = "sandbox", value_parser = escalation_gate::cli::parse_day)]
    sandbox_today: Option<NaiveDate>,
    /// Only this partner (as the connector names it); required with `--audience partner`.
    #[arg(long)]
    partner: Option<String>,
    /// `vendor`: every partner side by side and the knowledge view; `partner`: the edition a
    /// partner is shown (its own figures, bad escalations and comments only).
    #[arg(long, value_enum, default_value = "vendor")]
    audience: report::Audience,
    #[arg(long, value_enum, default_value = "html")]
    format: report::render::Format,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Compute the scorecard from a `backfill` dry run's JSON lines (its `--out` file) instead
    /// of reading the tickets: escalations only (every case counts as escalated) and no survey.
    #[arg(long, value_name = "FILE")]
    from_jsonl: Option<PathBuf>,
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
struct CalibrateArgs {
    #[command(flatten)]
    period: PeriodArgs,
    /// The precision of "bad" the proposed threshold keeps, between 0.5 and 1.
    #[arg(long, default_value_t = 0.90)]
    target: f64,
    /// The fewest reviewed cases with a recorded confidence that may move the connector's values.
    #[arg(long, default_value_t = 30)]
    min_reviewed: u64,
    #[arg(long, value_enum, default_value = "text")]
    format: CalibrateFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum CalibrateFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve {
            listen,
            dir,
            max_body_bytes,
            request_timeout_secs,
            header_read_timeout_secs,
            body_read_timeout_secs,
            max_connections,
            metrics_listen,
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
                        metrics_listen,
                        &dir.connectors,
                        ServerSettings {
                            max_body_bytes,
                            request_timeout: Duration::from_secs(request_timeout_secs),
                            header_read_timeout: Duration::from_secs(header_read_timeout_secs),
                            body_read_timeout: Duration::from_secs(body_read_timeout_secs),
                            max_connections,
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
        } => {
            telemetry::init_quiet();
            check(&dir.connectors, &connector, &file, escalated_at, &index)
        }
        Command::Backfill {
            period,
            write,
            dry_run: _,
            query,
            index,
            out,
            dir,
        } => {
            telemetry::init_quiet();
            run_backfill(&dir.connectors, &period, &index, write, query, out)
        }
        Command::Validate { dir } => validate(&dir.connectors),
        Command::Report { args, dir } => {
            telemetry::init_quiet();
            run_report(&dir.connectors, &args)
        }
        Command::Calibrate { args, dir } => {
            telemetry::init_quiet();
            run_calibrate(&dir.connectors, &args)
        }
        Command::Sweep {
            connector,
            dir,
            index,
        } => {
            telemetry::init_quiet();
            sweep(&dir.connectors, &connector, &index)
        }
        Command::Eval {
            articles,
            cases,
            split,
            withhold,
            json,
            threshold,
            review_bound,
            near_misses,
            tried_fix,
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
                tried_fix,
                small_kbs: small_kbs.map(|size| (usize::from(size), seed)),
                features,
            },
        ),
        Command::Send {
            file,
            connector,
            dir,
            url,
            json,
        } => send(&dir.connectors, &connector, &file, url.as_deref(), json),
        Command::Sandbox(args) => escalation_gate::sandbox::run(args),
        Command::Install { helpdesk } => admin::install(helpdesk),
        Command::Uninstall { helpdesk } => admin::uninstall(helpdesk),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", escalation_gate::cli::error_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn load(dir: &Path) -> anyhow::Result<Vec<ValidConnector>> {
    config::load_dir(dir, &env).map_err(|errors| {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::anyhow!("{} problem(s) in the connector files", errors.len())
    })
}

fn serve(
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    dir: &Path,
    settings: ServerSettings,
    runtime_settings: &connector::Runtime,
) -> anyhow::Result<ExitCode> {
    let connectors = load(dir)?
        .into_iter()
        .map(|c| Connector::build_with(c, runtime_settings))
        .collect::<anyhow::Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))
        };
        let listener = bind(listen).await?;
        let metrics = match metrics_listen {
            Some(addr) => Some(bind(addr).await?),
            None => None,
        };
        escalation_gate::run_with_metrics(
            connectors,
            settings,
            listener,
            metrics,
            shutdown_signal(),
        )
        .await?;
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

/// Loads and builds one connector of `dir` by name.
fn one_connector(dir: &Path, name: &str, index: &IndexDir) -> anyhow::Result<Connector> {
    Connector::build_with(load_one(dir, name)?, &index.runtime())
}

/// Reads through the helpdesk of connector `name` only: `report` and `calibrate` judge nothing,
/// so its knowledge base is never built. `read` gets the records' source and the judge's
/// settings.
fn read_records<T>(
    dir: &Path,
    name: &str,
    read: impl FnOnce(report::Source<'_>, &KbSettings) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let valid = load_one(dir, name)?;
    let survey = valid.survey.as_ref().map(|s| &s.fields);
    let helpdesk = valid
        .helpdesk
        .build(name, survey)
        .context("building the HTTP client")?;
    let source = report::Source {
        connector: &valid.id,
        tickets: helpdesk.tickets.as_ref(),
        survey,
        contracts: &valid.contracts,
        articles: Articles::of(&valid.kb_backend, helpdesk.knowledge_base.as_deref()),
    };
    read(source, &valid.policy.kb)
}

/// The connector file `{dir}/{name}.toml`, validated; the error lists its problems.
fn load_one(dir: &Path, name: &str) -> anyhow::Result<ValidConnector> {
    let path = dir.join(format!("{name}.toml"));
    if !path.is_file() {
        bail!("no connector `{name}`: {} does not exist", path.display());
    }
    config::load_file(&path, &env).map_err(|errors| {
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("connector `{name}` is not valid:\n{}", problems.join("\n"))
    })
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

fn run_calibrate(dir: &Path, args: &CalibrateArgs) -> anyhow::Result<ExitCode> {
    if !(0.5..=1.0).contains(&args.target) {
        bail!("--target {} is not between 0.5 and 1", args.target);
    }
    let options = calibrate::Options {
        period: args.period.period()?,
        target: args.target,
        min_reviewed: args.min_reviewed,
    };
    let name = &args.period.connector;
    let calibration = read_records(dir, name, |source, kb| {
        runtime()?
            .block_on(calibrate::calibrate(source, kb, &options))
            .with_context(|| format!("reading the tickets of connector `{name}`"))
    })?;
    match args.format {
        CalibrateFormat::Text => print!("{}", calibrate::render_text(&calibration)),
        CalibrateFormat::Json => println!("{}", serde_json::to_string_pretty(&calibration)?),
    }
    Ok(ExitCode::SUCCESS)
}

fn run_report(dir: &Path, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let sandbox_today = args
        .sandbox_today
        .unwrap_or_else(|| Utc::now().date_naive());
    let options = report::Options {
        period: match &args.period {
            Some(p) => p.period()?,
            None => escalation_gate::sandbox::report_period(sandbox_today),
        },
        partner: args.partner.clone(),
        audience: args.audience,
    };
    if let Some(p) = &options.partner
        && p.trim().is_empty()
    {
        bail!("--partner is empty");
    }
    if options.audience == report::Audience::Partner && options.partner.is_none() {
        bail!("--audience partner needs --partner NAME: a partner's edition shows one partner");
    }
    let bar = terminal_bar("{spinner} {human_pos} tickets read ({per_sec}, {elapsed})");
    let Some(PeriodArgs {
        connector: name,
        from,
        to,
    }) = &args.period
    else {
        let card = runtime()?
            .block_on(escalation_gate::sandbox::scorecard(
                sandbox_today,
                &options,
                &bar,
            ))
            .context("reading the sandbox's sample account")?;
        bar.finish_and_clear();
        return write_report(&card, args);
    };
    let card = read_records(dir, name, |source, _| match &args.from_jsonl {
        Some(path) => {
            let file =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            backfill::scorecard(
                source.connector,
                source.contracts,
                &options,
                std::io::BufReader::new(file),
                bar.clone(),
            )
            .with_context(|| format!("reading {}", path.display()))
        }
        None => runtime()?
            .block_on(report::build(source, &options, &bar))
            .with_context(|| format!("reading the tickets of connector `{name}`")),
    })?;
    bar.finish_and_clear();
    if card.tickets == 0 {
        let period = format!("from {from} to {to} (UTC)");
        let what = match (&options.partner, &args.from_jsonl) {
            (Some(p), _) => format!("no case of partner `{p}` {period}"),
            (None, Some(path)) => format!("{} holds no escalation opened {period}", path.display()),
            (None, None) => format!("connector `{name}` has no ticket created {period}"),
        };
        bail!("nothing to report: {what}; no scorecard written");
    }
    write_report(&card, args)
}

/// Renders the scorecard in the asked format to `--out` or standard output.
fn write_report(card: &report::Scorecard, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let text = report::render::render(card, args.format)?;
    match &args.out {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress line with `template` on a terminal; hidden otherwise.
fn terminal_bar(template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template(template).expect("static template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Shows a bar on a terminal and writes each line as it comes.
struct BackfillProgress {
    bar: indicatif::ProgressBar,
    out: Box<dyn std::io::Write>,
}

impl backfill::Progress for BackfillProgress {
    fn found(&mut self, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_position(0);
    }

    fn done(&mut self, line: Option<&backfill::Line>) -> std::io::Result<()> {
        self.bar.inc(1);
        if let Some(line) = line {
            serde_json::to_writer(&mut self.out, line)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

fn run_backfill(
    dir: &Path,
    args: &PeriodArgs,
    index: &IndexDir,
    write: bool,
    query: Option<String>,
    out: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let (name, period) = (&args.connector, args.period()?);
    if query.as_deref().is_some_and(|q| q.trim().is_empty()) {
        bail!("--query is empty");
    }
    let connector = one_connector(dir, name, index)?;
    if query.is_some()
        && let SearchTerms::Refused { how } = connector.helpdesk.search_terms
    {
        bail!("--query is not taken: {how}");
    }
    let options = backfill::Options {
        period,
        query,
        mode: if write {
            backfill::Mode::Write
        } else {
            backfill::Mode::DryRun
        },
    };
    let sink: Box<dyn std::io::Write> = match &out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let bar = terminal_bar("{spinner} {pos}/{len} escalations judged ({per_sec}, eta {eta})");
    let mut progress = BackfillProgress {
        bar: bar.clone(),
        out: sink,
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = runtime()?;
    let summary = runtime.block_on(async {
        let flag = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        });
        let stopping = || stop.load(std::sync::atomic::Ordering::SeqCst);
        backfill::run(&connector, &options, &mut progress, &stopping).await
    });
    bar.finish_and_clear();
    progress.out.flush()?;
    let summary = summary.with_context(|| format!("backfilling connector `{name}`"))?;
    let mode = if write {
        "written"
    } else {
        "dry run, nothing written"
    };
    eprintln!("backfill ({mode}): {summary}");
    if let Some(path) = &out {
        eprintln!("wrote {}", path.display());
    }
    Ok(if summary.failed == 0 && !summary.stopped {
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
    let esc = connector
        .helpdesk
        .tickets
        .escalation_from_snapshot(&snapshot, escalated_at)
        .with_context(|| format!("judging {} (give --escalated-at when the ticket does not say when it was escalated)", file.display()))?;
    let (verdict, admin_fixes) = runtime()?.block_on(async {
        connector.ready().await?;
        let verdict = connector.judge(&esc).await?;
        // What the helpdesk takes for a verdict (a Salesforce picklist without `Review`, ...):
        // the verdict above could not be written until an admin fixes it.
        let fixes = connector
            .helpdesk
            .tickets
            .preflight()
            .await
            .unwrap_or_else(|e| {
                eprintln!("warning: could not read which verdict values the helpdesk takes: {e}");
                Vec::new()
            });
        anyhow::Ok((verdict, fixes))
    })?;
    for fix in &admin_fixes {
        eprintln!("warning: {fix}");
    }
    let out = serde_json::json!({
        "connector": esc.connector,
        "ticket": esc.ticket_id,
        "partner": esc.partner,
        "verdict": verdict,
        "note": note::render(&esc, &verdict),
        "admin_fixes": admin_fixes,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

/// What `eval` measures besides the report.
struct EvalExtras {
    near_misses: bool,
    tried_fix: bool,
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
    let index = LocalIndex::build(eval::kept_articles(&data)).map_err(eval::EvalError::from)?;
    if let Some(path) = &extras.features {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        eval::fitting_sets(&data, &index, &options, extras.small_kbs, |set| {
            serde_json::to_writer(&mut w, &set)?;
            std::io::Write::write_all(&mut w, b"\n")
        })?;
        std::io::Write::flush(&mut w).with_context(|| format!("writing {}", path.display()))?;
        return Ok(ExitCode::SUCCESS);
    }
    let total = eval::split_cases(&data, &options).count();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(total as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = eval::evaluate(&data, &index, &options, || bar.inc(1))?;
    bar.finish_and_clear();
    print!("{report}");
    let near = if extras.near_misses {
        Some(eval::near_misses(&data, &index, &options)?)
    } else {
        None
    };
    let tried = if extras.tried_fix {
        Some(eval::tried_fix(&data, &index, &options)?)
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
    if let Some(t) = &tried {
        print!("{t}");
    }
    if let Some(s) = &small {
        print!("{s}");
    }
    if let Some(out) = json {
        let mut value = serde_json::to_value(&report)?;
        value["near_misses"] = serde_json::to_value(&near)?;
        value["tried_fix"] = serde_json::to_value(&tried)?;
        value["small_kbs"] = serde_json::to_value(&small)?;
        let text = serde_json::to_string_pretty(&value)?;
        std::fs::write(out, text + "\n").with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn send(
    dir: &Path,
    name: &str,
    file: &Path,
    url: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let valid = load_one(dir, name)?;
    let helpdesk = valid
        .helpdesk
        .build(name, None)
        .context("building the HTTP client")?;
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let headers = helpdesk
        .inbound
        .sign(&body, Utc::now())
        .map_err(|e| anyhow::anyhow!("connector `{name}` cannot sign a call: {e}"))?;
    let url = url.map_or_else(
        || format!("http://127.0.0.1:8080/hooks/{name}"),
        str::to_string,
    );
    let url = url.as_str();
    runtime()?.block_on(async {
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .headers(
                headers
                    .iter()
                    .map(|(k, v)| Ok((k.parse()?, v.parse()?)))
                    .collect::<anyhow::Result<reqwest::header::HeaderMap>>()?,
            )
            .body(body)
            .send()
            .await
            .with_context(|| format!("sending to {url}"))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        println!("HTTP {status}");
        let answer = serde_json::from_str::<serde_json::Value>(&text).ok();
        match answer {
            Some(v) if json => println!("{}", serde_json::to_string_pretty(&v)?),
            Some(v) => match escalation_gate::cli::answer_summary(&v) {
                Some(summary) => println!("{summary}"),
                None => println!("{}", serde_json::to_string_pretty(&v)?),
            },
            None => println!("{text}"),
        }
        Ok(if status.is_success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
