//! `sandbox`: a sample Zendesk account and a mail catcher on this machine, a connector folder
//! pointing at them, and the commands to try (the sample account itself: `crate::sandbox`, which
//! `report --sandbox` also starts).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};

use super::args::{parse_day, runtime};
use crate::sandbox::{self, DEFAULT_SEED, Options};

#[derive(clap::Args)]
pub struct Args {
    /// Port of the sample Zendesk and the sandbox's pages, on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,
    /// Port of the mail catcher (SMTP), on 127.0.0.1 (0: a free one).
    #[arg(long, default_value_t = 2525)]
    pub smtp_port: u16,
    /// The connector folder to write: `sandbox.toml` and `sandbox.env`. Files the sandbox did not
    /// write are never overwritten, and the folder must hold no other connector file.
    #[arg(long, default_value = "sandbox")]
    pub dir: PathBuf,
    /// Where `serve` will listen, on loopback: the webhook `install zendesk` creates calls it,
    /// and the survey's links point at it.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub serve_url: String,
    /// A new escalation arrives this often, in seconds (0: only from the sandbox page's button).
    #[arg(long, default_value_t = 60)]
    pub every_secs: u64,
    /// The sample's "today" (YYYY-MM-DD): its tickets fill the two calendar quarters before this
    /// day's quarter. Default: today.
    #[arg(long, value_parser = parse_day)]
    pub today: Option<NaiveDate>,
    /// The seed the sample account is generated from.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

/// Runs the sandbox until Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    crate::telemetry::init_quiet();
    runtime()?.block_on(sandbox::run(Options {
        port: args.port,
        smtp_port: args.smtp_port,
        dir: args.dir,
        serve_url: args.serve_url,
        every_secs: args.every_secs,
        today: args.today.unwrap_or_else(|| Utc::now().date_naive()),
        seed: args.seed,
    }))
}
