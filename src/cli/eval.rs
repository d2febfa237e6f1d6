//! `eval`: measures the knowledge-base judgement on labelled cases, through the service's own
//! path, and prints the figures (or writes the re-score's fitting data).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::assess::kb::rescore::DEFAULT_REVIEW_BOUND;
use crate::assess::kb::weights_file::{WeightsFile, judge_settings};
use crate::kb::local::LocalIndex;
use crate::offline::{eval, fit};

#[derive(clap::Args)]
pub struct Args {
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
    /// The judge's threshold (default: the calibration file's, else the connector default).
    #[arg(long)]
    threshold: Option<f64>,
    /// The review bound (default: the calibration file's, else the connector default): a best
    /// article between it and the threshold sends the case to a person.
    #[arg(long)]
    review_bound: Option<f64>,
    /// Judge with a vendor's calibration weights file (`calibrate --fit`, `--fit-calibration`).
    #[arg(long, value_name = "FILE")]
    calibration: Option<PathBuf>,
    /// Take the evaluated cases as a vendor's reviews (each case's best article, decided bad
    /// when it answers the case), refit the calibration on them and write the weights file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["calibration", "features"])]
    fit_calibration: Option<PathBuf>,
    /// Also judge the near-miss set: each case that names identifiers (error codes, message
    /// ids, ...) against an article naming others of the same family, its answers taken out.
    #[arg(long)]
    near_misses: bool,
    /// Also judge the tried-fix set: each resolvable case with a sentence added that says
    /// its answer's resolution steps were done and the problem persists.
    #[arg(long)]
    tried_fix: bool,
    /// Also judge every case against generated knowledge bases of this many articles (one
    /// without its answer, one with it), drawn from ARTICLES with `--seed`; several sizes
    /// separated by commas (`8,12,20`) give one line each.
    #[arg(long, value_name = "SIZE", value_delimiter = ',',
          value_parser = clap::value_parser!(u16).range(1..=100))]
    small_kbs: Vec<u16>,
    /// The seed of `--small-kbs`.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the re-score's features of every case's candidate sets to this file (JSON
    /// lines) for `tools/fit_rescore.py`, instead of evaluating.
    #[arg(long, value_name = "FILE")]
    features: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let vendor = match &args.calibration {
        Some(path) => {
            Some(WeightsFile::read(path, &path.display().to_string()).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let (threshold, review_bound, calibration) =
        judge_settings(vendor, args.threshold, args.review_bound, |_| {
            DEFAULT_REVIEW_BOUND
        });
    let options = eval::Options {
        split: args.split,
        threshold,
        review_bound,
        calibration,
        ..eval::Options::default()
    };
    let small_kbs: Vec<usize> = args.small_kbs.iter().copied().map(usize::from).collect();
    for (flag, v) in [
        ("--threshold", options.threshold),
        ("--review-bound", options.review_bound),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            bail!("{flag} must be above 0 and at most 1, found {v}");
        }
    }
    let data = eval::load(&args.articles, &args.cases, args.withhold.as_deref())?;
    let index = LocalIndex::build(eval::kept_articles(&data)).map_err(eval::EvalError::from)?;
    if let Some(path) = &args.features {
        let file =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(file);
        eval::fitting_sets(&data, &index, &options, (&small_kbs, args.seed), |set| {
            serde_json::to_writer(&mut w, &set)?;
            w.write_all(b"\n")
        })?;
        w.flush()
            .with_context(|| format!("writing {}", path.display()))?;
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
    if let Some(path) = &args.fit_calibration {
        let (samples, skipped) = fit::reviews(&report);
        let file = fit::fit_file(
            &samples,
            &fit::FitOptions::default(),
            fit::Provenance {
                source: format!("eval:{}", args.cases.display()),
                from: None,
                to: None,
                skipped,
            },
        )?;
        std::fs::write(path, file.to_text())
            .with_context(|| format!("writing {}", path.display()))?;
        print!("{}", fit::render_text(&file));
        println!("wrote {}", path.display());
    }
    let near = if args.near_misses {
        Some(eval::near_misses(&data, &index, &options)?)
    } else {
        None
    };
    let tried = if args.tried_fix {
        Some(eval::tried_fix(&data, &index, &options)?)
    } else {
        None
    };
    let small = small_kbs
        .iter()
        .map(|&size| eval::small_kbs(&data, &report, &options, size, args.seed))
        .collect::<Result<Vec<_>, _>>()?;
    for n in near.iter().flatten() {
        print!("{n}");
    }
    if let Some(t) = &tried {
        print!("{t}");
    }
    for s in &small {
        print!("{s}");
    }
    if let Some(out) = &args.json {
        let mut value = serde_json::to_value(&report)?;
        value["near_misses"] = serde_json::to_value(&near)?;
        value["tried_fix"] = serde_json::to_value(&tried)?;
        value["small_kbs"] = serde_json::to_value(&small)?;
        let text = serde_json::to_string_pretty(&value)?;
        std::fs::write(out, text + "\n").with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}
