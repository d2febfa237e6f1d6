//! `escalation-gate sandbox`: the whole product offline. A sample Zendesk account on loopback
//! (the fake Zendesk the integration tests run against, [`crate::helpdesk::zendesk::sandbox`],
//! seeded by [`sample`]), a mail catcher ([`mail`]), pages to watch and drive them ([`pages`]),
//! and a connector folder pointing at them ([`connector`]), so that every command can be tried
//! without a helpdesk account: `install zendesk`, `serve`, `backfill`, `report`, `calibrate`
//! and the blind survey's e-mail and page.

pub mod catalog;
pub mod connector;
pub mod mail;
pub mod pages;
pub mod sample;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use tokio::net::TcpListener;

use self::connector::{Addresses, CONNECTOR, Planned, Secrets};
use self::mail::Mailbox;
use self::pages::Pages;
use self::sample::{Arrivals, Summary};
use crate::config::ValidConnector;
use crate::helpdesk::records::Period;
use crate::helpdesk::zendesk::sandbox::FakeZendesk;
use crate::offline::report::{self, Scorecard};

/// The sample account's seed when none is given.
pub const DEFAULT_SEED: u64 = 19;

/// What `escalation-gate sandbox` runs (its command-line arguments: `crate::cli::sandbox`).
pub struct Options {
    /// Port of the sample Zendesk and the sandbox's pages, on 127.0.0.1 (0: a free one).
    pub port: u16,
    /// Port of the mail catcher (SMTP), on 127.0.0.1 (0: a free one).
    pub smtp_port: u16,
    /// The connector folder to write.
    pub dir: PathBuf,
    /// Where `serve` will listen, on loopback.
    pub serve_url: String,
    /// A new escalation arrives this often, in seconds (0: only from the page's button).
    pub every_secs: u64,
    /// The sample's "today".
    pub today: NaiveDate,
    /// The seed the sample account is generated from.
    pub seed: u64,
}

/// The sample account running in this process.
pub struct Sandbox {
    pub zendesk: FakeZendesk,
    pub mailbox: Arc<Mailbox>,
    /// `sandbox.toml`, and the connector it is.
    pub toml: String,
    pub connector: ValidConnector,
    pub summary: Summary,
    pub smtp_port: u16,
    /// The values of `sandbox.env`.
    pub secrets: Secrets,
    /// What the pages show of the guide, once it is printed.
    guide: Arc<OnceLock<String>>,
    arrivals: Arc<Mutex<Arrivals>>,
    /// The mail catcher, stopped with the sandbox.
    _smtp: AbortOnDrop,
}

/// A task stopped when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Sandbox {
    /// Starts the sample Zendesk and its pages on `http` and the mail catcher on `smtp`, and
    /// seeds the account as of `today`. Writes no file.
    pub async fn start(
        http: TcpListener,
        smtp: TcpListener,
        serve_url: &str,
        secrets: Secrets,
        seed: u64,
        today: NaiveDate,
    ) -> anyhow::Result<Sandbox> {
        let smtp_port = smtp.local_addr()?.port();
        let mailbox = Arc::new(Mailbox::default());
        let arrivals = Arc::new(Mutex::new(Arrivals::new(seed)));
        let guide = Arc::new(OnceLock::new());
        let zendesk = FakeZendesk::start_with(http, |handle| {
            pages::router(Pages {
                zendesk: handle,
                mailbox: mailbox.clone(),
                arrivals: arrivals.clone(),
                guide: guide.clone(),
            })
        })
        .context("starting the sample Zendesk")?;
        let secrets = Secrets {
            token: zendesk.api_token().1.to_string(),
            ..secrets
        };
        let toml = connector::connector_toml(&Addresses {
            zendesk: zendesk.url(),
            agent_email: zendesk.api_token().0.to_string(),
            smtp_port,
            serve_url: serve_url.to_string(),
        });
        let connector = crate::config::parse(CONNECTOR, &toml, Path::new("."), &|v| secrets.var(v))
            .map_err(|problems| {
                anyhow::anyhow!(
                    "the sandbox's connector is not valid: {}",
                    crate::checks::Problem::joined(&problems)
                )
            })?;
        zendesk.admin(|a| a.hand_out_signing_secret(&secrets.webhook_secret));
        zendesk.handle().deliver_webhooks(true);
        let summary = sample::seed(&zendesk, &connector, seed, today)?;
        let catcher = AbortOnDrop(tokio::spawn(mail::serve(smtp, mailbox.clone())));
        Ok(Sandbox {
            zendesk,
            mailbox,
            toml,
            connector,
            summary,
            smtp_port,
            secrets,
            guide,
            arrivals,
            _smtp: catcher,
        })
    }

    /// A new escalation arrives (as from the sandbox page's button). Returns its id.
    pub fn arrive(&self) -> u64 {
        pages::arrive(&self.arrivals, &self.zendesk.handle())
    }

    /// The two quarters of the sample, as the report reads them.
    pub fn period(&self) -> Period {
        Period::days(self.summary.first_day, self.summary.last_day)
    }
}

/// The period `report --sandbox` reads: the sample's two quarters as of `today`.
pub fn report_period(today: NaiveDate) -> Period {
    let (first, last) = sample::period(today);
    Period::days(first, last)
}

/// Loopback on `port` (0: a free one).
async fn bind(port: u16, what: &str, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("listening on 127.0.0.1:{port} for {what}: give another port with {flag} (0: a free one)"))
}

/// The scorecard of the sample account as it stands on `today`, read back as `report` reads a
/// helpdesk: the account runs in this process on free ports for the time it takes.
pub async fn scorecard(
    today: NaiveDate,
    options: &report::Options,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Scorecard> {
    let http = bind(0, "the sample Zendesk", "--port").await?;
    let smtp = bind(0, "the mail catcher", "--smtp-port").await?;
    let Sandbox {
        connector, zendesk, ..
    } = Sandbox::start(
        http,
        smtp,
        "http://127.0.0.1:8080",
        Secrets::generate(),
        DEFAULT_SEED,
        today,
    )
    .await?;
    let survey = connector.survey.as_ref().map(|s| &s.fields);
    let helpdesk = connector
        .helpdesk
        .build(CONNECTOR, survey)
        .context("building the HTTP client")?;
    let source = report::Source {
        connector: CONNECTOR,
        record: helpdesk
            .record
            .as_deref()
            .context("the sandbox's Zendesk connector reads no period back")?,
        survey,
        contracts: &connector.contracts,
        articles: report::articles::Articles::of(
            &connector.kb_backend,
            helpdesk.knowledge_base.as_deref(),
        ),
    };
    let card = report::build(source, options, progress).await?;
    drop(zendesk);
    Ok(card)
}

/// Runs `escalation-gate sandbox` until Ctrl-C.
pub async fn run(args: Options) -> anyhow::Result<ExitCode> {
    crate::helpdesk::zendesk::install::endpoint(&args.serve_url, CONNECTOR)
        .map_err(|e| anyhow::anyhow!(e.replace("--url", "--serve-url")))?;
    let listen = serve_listen(&args.serve_url)?;
    let today = args.today;
    let env_path = args.dir.join(format!("{CONNECTOR}.env"));
    let toml_path = args.dir.join(format!("{CONNECTOR}.toml"));
    connector::check_folder(
        &args.dir,
        &[
            Planned {
                path: toml_path.clone(),
                text: String::new(),
            },
            Planned {
                path: env_path.clone(),
                text: String::new(),
            },
        ],
    )
    .map_err(anyhow::Error::msg)?;
    let http = bind(args.port, "the sample Zendesk", "--port").await?;
    let smtp = bind(args.smtp_port, "the mail catcher", "--smtp-port").await?;
    let secrets = std::fs::read_to_string(&env_path)
        .ok()
        .and_then(|text| Secrets::from_env_file(&text))
        .unwrap_or_else(Secrets::generate);
    let sandbox = Sandbox::start(http, smtp, &args.serve_url, secrets, args.seed, today).await?;
    connector::write_folder(
        &args.dir,
        &[
            Planned {
                path: toml_path.clone(),
                text: sandbox.toml.clone(),
            },
            Planned {
                path: env_path.clone(),
                text: sandbox.secrets.env_file(),
            },
        ],
    )
    .map_err(anyhow::Error::msg)?;
    let text = guide(&Guide {
        program: program(),
        dir: &args.dir,
        zendesk: &sandbox.zendesk.url(),
        smtp_port: sandbox.smtp_port,
        serve_url: &args.serve_url,
        listen: &listen,
        summary: &sandbox.summary,
        every_secs: args.every_secs,
    });
    print!("{text}");
    std::io::Write::flush(&mut std::io::stdout())?;
    let _ = sandbox.guide.set(text);
    let arrivals = (args.every_secs > 0).then(|| {
        let every = Duration::from_secs(args.every_secs);
        let sandbox = &sandbox;
        async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let id = sandbox.arrive();
                tracing::info!(ticket = id, "New escalation in the sandbox");
            }
        }
    });
    match arrivals {
        Some(arriving) => {
            tokio::select! {
                _ = stopped() => {}
                _ = arriving => {}
            }
        }
        None => stopped().await,
    }
    eprintln!(
        "Stopped: the sample account is gone; {} keeps the connector files.",
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C, or a termination signal.
async fn stopped() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// `host:port` for `serve --listen`, from the serve URL, which must be on loopback: the
/// sample account calls no other address.
fn serve_listen(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("--serve-url `{url}`"))?;
    match (parsed.host_str(), parsed.port_or_known_default()) {
        (Some(host), Some(port)) if crate::checks::is_loopback_host(host) => {
            Ok(format!("{host}:{port}"))
        }
        _ => bail!(
            "--serve-url `{url}` must name a host on loopback and a port, e.g. \
             http://127.0.0.1:8080: the sample account calls no other address"
        ),
    }
}

/// How this program was started (the commands of the guide start it the same way).
fn program() -> String {
    std::env::args()
        .next()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "escalation-gate".into())
}

/// A word for a POSIX shell: as it is when it is plain, else in single quotes.
fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What the guide names.
struct Guide<'a> {
    program: String,
    dir: &'a Path,
    zendesk: &'a str,
    smtp_port: u16,
    serve_url: &'a str,
    listen: &'a str,
    summary: &'a Summary,
    every_secs: u64,
}

/// What the sandbox prints: where everything is, and the commands to try, each as it runs.
fn guide(g: &Guide<'_>) -> String {
    let s = g.summary;
    let dir = shell_word(&g.dir.display().to_string());
    let in_dir = |name: &str| g.dir.join(name).display().to_string();
    let command = |words: &[&str]| {
        let mut line = shell_word(&g.program);
        for w in words {
            line.push(' ');
            line.push_str(&shell_word(w));
        }
        line.push_str(&format!(" --connectors {dir}"));
        line
    };
    let (from, to) = (s.first_day.to_string(), s.last_day.to_string());
    let over_period = |name: &str, extra: &[&str]| {
        let mut words = vec![name, "--connector", CONNECTOR, "--from", &from, "--to", &to];
        words.extend(extra);
        command(&words)
    };
    let partner = s.partners.get(1).cloned().unwrap_or_default();
    let (backfill_out, card, partner_card) = (
        in_dir("backfill.jsonl"),
        in_dir("scorecard.html"),
        in_dir(&format!(
            "scorecard-{}.html",
            partner.to_lowercase().replace(' ', "-")
        )),
    );
    let arrivals = if g.every_secs > 0 {
        format!("one every {} s, and ", g.every_secs)
    } else {
        String::new()
    };
    format!(
        "escalation-gate sandbox: a sample Zendesk account on this machine, no account needed.\n\n\
         Sandbox page    {z}/sandbox (the Zendesk API at {z})\n\
         Sample account  {partners} partners, {tickets} tickets created {from} to {to}, \
         {articles} Help Center articles;\n                \
         {judged} escalations judged, {unjudged} without a verdict (their webhook was lost), \
         {reviewed} reviewed, {answered} survey answers\n\
         Mail catcher    SMTP 127.0.0.1:{smtp}; messages at {z}/sandbox/mail\n\
         Connector       {toml} (connector `{CONNECTOR}`), its secrets in {env}\n\n\
         In another terminal, load the connector's secrets (in every terminal you use), then try\n\
         the commands in order:\n\n\
         . {env}\n\n\
         # Set Zendesk up: the webhook, the escalation trigger, the survey automation and the\n\
         # reviewer macros (a second run changes nothing)\n\
         {install}\n\n\
         # Judge escalations as they arrive ({arrivals}\"New escalation\" on the sandbox page)\n\
         {serve}\n\n\
         # The two quarters' escalations judged again, each as of its escalation time (a dry\n\
         # run: nothing written; the lines go to the file, the summary to the terminal)\n\
         {backfill}\n\n\
         # The partner scorecard: the vendor's edition, and the one a partner is shown\n\
         {report}\n{partner_report}\n\n\
         # Agreement between the judge and the reviewers, and the threshold they support\n\
         {calibrate}\n\n\
         # The blind survey: once serve has judged an escalation, press \"Solve\" next to it on\n\
         # the sandbox page. The survey automation then calls serve, which sends the e-mail to\n\
         # the mail catcher ({z}/sandbox/mail); its links open the survey page on serve\n\
         # ({serve_url}).\n\n\
         Ctrl-C stops the sandbox.\n",
        z = g.zendesk,
        partners = s.partners.len(),
        tickets = s.tickets,
        articles = s.articles,
        judged = s.judged,
        unjudged = s.unjudged,
        reviewed = s.reviewed,
        answered = s.answered,
        smtp = g.smtp_port,
        toml = shell_word(&in_dir(&format!("{CONNECTOR}.toml"))),
        env = shell_word(&in_dir(&format!("{CONNECTOR}.env"))),
        serve_url = g.serve_url,
        install = command(&[
            "install",
            "zendesk",
            "--connector",
            CONNECTOR,
            "--url",
            g.serve_url
        ]),
        serve = command(&["serve", "--listen", g.listen]),
        backfill = over_period("backfill", &["--out", &backfill_out]),
        report = over_period("report", &["--out", &card]),
        partner_report = over_period(
            "report",
            &[
                "--audience",
                "partner",
                "--partner",
                &partner,
                "--out",
                &partner_card
            ]
        ),
        calibrate = over_period("calibrate", &[]),
    )
}
