//! What the commands share: the connectors folder and the index folder they take, a period of
//! days, parsers for the days and instants they take (with errors that say which forms are
//! accepted), loading one connector or every one, the environment, the async runtime and the
//! progress line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::assess::kb::KbSettings;
use crate::config::{self, ConfigError, ConnectorId, ValidConnector};
use crate::helpdesk::records::Period;
use crate::offline::report::{self, articles::Articles};
use crate::runtime::connector::{self, Connector};

/// The `--connectors` folder argument every command that reads connector files takes.
#[derive(clap::Args)]
pub struct ConnectorsDir {
    /// Folder of connector files.
    #[arg(
        long = "connectors",
        env = "EG_CONNECTORS",
        default_value = "connectors"
    )]
    pub connectors: PathBuf,
}

#[derive(clap::Args)]
pub struct IndexDir {
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

    /// What the connectors built with this folder share (the shared judge pool).
    pub fn runtime(&self) -> connector::Runtime {
        connector::Runtime {
            index_dir: self.folder(),
            ..connector::Runtime::default()
        }
    }
}

/// A connector and the days of the tickets it reads back.
#[derive(clap::Args)]
pub struct PeriodArgs {
    /// The connector whose helpdesk holds the record.
    #[arg(long)]
    pub connector: ConnectorId,
    /// First day of the period (YYYY-MM-DD, UTC), by ticket creation.
    #[arg(long, value_parser = parse_day)]
    pub from: NaiveDate,
    /// Last day of the period, included (YYYY-MM-DD, UTC).
    #[arg(long, value_parser = parse_day)]
    pub to: NaiveDate,
}

impl PeriodArgs {
    /// The tickets created from `from` to `to`, both days included (UTC).
    pub fn period(&self) -> anyhow::Result<Period> {
        let (from, to) = (self.from, self.to);
        if to < from {
            bail!("--to ({to}) is before --from ({from})");
        }
        Ok(Period::days(from, to))
    }
}

/// A variable of the process environment (what `${VAR}` in a connector file reads).
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Prints a connector file's problems, one a line, and how many there are.
pub fn print_errors(errors: &[ConfigError]) {
    for e in errors {
        println!("{e}");
    }
    println!("{} problem(s)", errors.len());
}

/// The async runtime a command runs its calls on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The connector file `{dir}/{name}.toml`, validated; the error lists its problems.
pub fn load_one(dir: &Path, name: &ConnectorId) -> anyhow::Result<ValidConnector> {
    let path = dir.join(format!("{name}.toml"));
    if !path.is_file() {
        bail!("no connector `{name}`: {} does not exist", path.display());
    }
    config::load_file(&path, &env).map_err(|errors| {
        let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("connector `{name}` is not valid:\n{}", problems.join("\n"))
    })
}

/// Loads and builds one connector of `dir` by name.
pub fn one_connector(
    dir: &Path,
    name: &ConnectorId,
    index: &IndexDir,
) -> anyhow::Result<Connector> {
    Connector::build_with(load_one(dir, name)?, &index.runtime())
}

/// [`load_one`] for `command`, which reads a whole period back (`report`, `calibrate`,
/// `backfill`): a connector whose helpdesk cannot is refused before anything is built or read.
pub fn load_recorded(
    dir: &Path,
    name: &ConnectorId,
    command: &str,
) -> anyhow::Result<ValidConnector> {
    let valid = load_one(dir, name)?;
    if let Err(why) = valid.helpdesk.reads_back() {
        bail!("`{command}` reads a whole period back, and connector `{name}` cannot: {why}");
    }
    Ok(valid)
}

/// Reads through the helpdesk of connector `name` only, for `command` (see [`load_recorded`]):
/// `report` and `calibrate` judge nothing, so its knowledge base is never built. `read` gets
/// the records' source and the judge's settings.
pub fn read_records<T>(
    dir: &Path,
    name: &ConnectorId,
    command: &str,
    read: impl FnOnce(report::Source<'_>, &KbSettings) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let valid = load_recorded(dir, name, command)?;
    let survey = valid.survey.as_ref().map(|s| &s.fields);
    let helpdesk = valid
        .helpdesk
        .build(name, survey)
        .context("building the HTTP client")?;
    let source = report::Source {
        connector: &valid.id,
        record: helpdesk.record.as_deref().with_context(|| {
            format!(
                "connector `{name}`: its helpdesk ({}) built no record role",
                helpdesk.kind
            )
        })?,
        survey,
        contracts: &valid.contracts,
        articles: Articles::of(&valid.kb_backend, helpdesk.knowledge_base.as_deref()),
    };
    read(source, &valid.policy.kb)
}

/// A progress line with `template` on a terminal; hidden otherwise.
pub fn terminal_bar(template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(indicatif::ProgressStyle::with_template(template).expect("static template"));
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The forms a day is written in.
const DAY_FORMS: &str = "write a day as YYYY-MM-DD (e.g. 2024-05-31), in UTC";

/// The forms an instant is written in.
const INSTANT_FORMS: &str = "write RFC 3339 (e.g. 2024-05-01T09:30:00Z or \
     2024-05-01T11:30:00+02:00), YYYY-MM-DDTHH:MM in UTC, or a day YYYY-MM-DD (its start, UTC)";

/// A day given as `YYYY-MM-DD` (clap value parser).
pub fn parse_day(s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| match numbers(s) {
        Some((year, month, _)) if (1..=12).contains(&month) => format!(
            "`{s}` is not a day of the calendar: {} has {} days",
            month_name(year, month),
            days_in_month(year, month)
        ),
        Some((_, month, _)) => {
            format!("`{s}` is not a day of the calendar: there is no month {month}")
        }
        None => format!("`{s}` is not a day: {DAY_FORMS}"),
    })
}

/// An instant: RFC 3339, `YYYY-MM-DDTHH:MM[:SS]` in UTC, or a day (its start, UTC) (clap value
/// parser).
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for form in [
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, form) {
            return Ok(t.and_utc());
        }
    }
    let forms = || format!("`{s}` is not an instant: {INSTANT_FORMS}");
    // Begins with a day of numbers: a day alone is its start; a day not of the calendar says so.
    match s
        .get(..10)
        .filter(|day| numbers(day).is_some())
        .map(parse_day)
    {
        Some(Ok(day)) if s.len() == 10 => Ok(day.and_time(NaiveTime::MIN).and_utc()),
        Some(Err(not_a_day)) => Err(not_a_day),
        _ => Err(forms()),
    }
}

/// The numbers of a `YYYY-MM-DD` whose parts are numbers, whatever their range.
fn numbers(s: &str) -> Option<(i32, u32, u32)> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    match (first, next) {
        (Some(a), Some(b)) => u32::try_from((b - a).num_days()).unwrap_or(31),
        _ => 31,
    }
}

fn month_name(year: i32, month: u32) -> String {
    NaiveDate::from_ymd_opt(year, month, 1).map_or_else(
        || format!("month {month} of {year}"),
        |d| d.format("%B %Y").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_read_and_bad_ones_say_the_accepted_form() {
        assert_eq!(
            parse_day("2024-02-29").unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        let e = parse_day("2024-02-30").unwrap_err();
        assert_eq!(
            e,
            "`2024-02-30` is not a day of the calendar: February 2024 has 29 days"
        );
        assert!(parse_day("2023-13-01").unwrap_err().contains("no month 13"));
        for bad in ["01/01/2024", "2024/01/01", "yesterday", ""] {
            let e = parse_day(bad).unwrap_err();
            assert!(e.contains("YYYY-MM-DD (e.g. 2024-05-31)"), "{bad}: {e}");
        }
    }

    #[test]
    fn instants_take_rfc_3339_a_minute_or_a_day() {
        let at = |s: &str| parse_instant(s).unwrap().to_rfc3339();
        assert_eq!(at("2024-05-01"), "2024-05-01T00:00:00+00:00");
        assert_eq!(at("2024-05-01T09:30"), "2024-05-01T09:30:00+00:00");
        assert_eq!(at("2024-05-01T11:30:00+02:00"), "2024-05-01T09:30:00+00:00");
        assert_eq!(at("2024-05-01T09:30:15Z"), "2024-05-01T09:30:15+00:00");
        assert!(
            parse_instant("2024-02-30")
                .unwrap_err()
                .contains("February 2024 has 29 days")
        );
        for bad in ["05/01/2024", "2024-05-01T25:00", "noon"] {
            let e = parse_instant(bad).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
    }
}
