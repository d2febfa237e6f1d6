//! `send`: signs a JSON body as the connector's helpdesk signs its calls and POSTs it (to try
//! a connector out, e.g. the demo), then prints the service's answer.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;

use super::args::{ConnectorsDir, load_one, runtime};
use crate::config::ConnectorId;

#[derive(clap::Args)]
pub struct Args {
    /// The body to send, e.g. connectors/demo/samples/good.json.
    file: PathBuf,
    /// The connector whose helpdesk's signature the call carries (with the first of its
    /// signing secrets).
    #[arg(long, default_value = "demo")]
    connector: ConnectorId,
    #[command(flatten)]
    dir: ConnectorsDir,
    /// Where to send it (default: http://127.0.0.1:8080/hooks/CONNECTOR).
    #[arg(long)]
    url: Option<String>,
    /// Print the service's whole JSON answer (the assessment with every signal) instead of
    /// the verdict and its note.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (name, file) = (&args.connector, &args.file);
    let valid = load_one(&args.dir.connectors, name)?;
    let helpdesk = valid
        .helpdesk
        .build(name, None)
        .context("building the HTTP client")?;
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let headers = helpdesk
        .inbound
        .sign(&body, Utc::now())
        .map_err(|e| anyhow::anyhow!("connector `{name}` cannot sign a call: {e}"))?;
    let url = args
        .url
        .unwrap_or_else(|| format!("http://127.0.0.1:8080/hooks/{name}"));
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
            Some(v) if args.json => println!("{}", serde_json::to_string_pretty(&v)?),
            Some(v) => match answer_summary(&v) {
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

/// The service's answer to a delivery, for a person: per ticket the verdict, its reasons and
/// flags, what was written, and the note; an error's code and detail. `None` when the answer
/// has neither shape (print it as it came).
fn answer_summary(answer: &serde_json::Value) -> Option<String> {
    use std::fmt::Write as _;
    if let Some(error) = answer.get("error").and_then(|e| e.as_str()) {
        let detail = answer.get("detail").and_then(|d| d.as_str()).unwrap_or("");
        return Some(format!("error: {error}: {detail}"));
    }
    let results = answer.get("results")?.as_array()?;
    let mut out = String::new();
    for r in results {
        let text = |key: &str| r.get(key).and_then(|v| v.as_str()).unwrap_or("?");
        let reasons: Vec<&str> = r
            .pointer("/assessment/reasons")
            .and_then(|v| v.as_array())
            .into_iter()
            .flatten()
            .filter_map(|reason| reason.get("reason").and_then(|v| v.as_str()))
            .collect();
        let flags: Vec<&str> = r
            .pointer("/assessment/flags")
            .and_then(|v| v.as_object())
            .into_iter()
            .flatten()
            .filter(|(_, on)| on.as_bool() == Some(true))
            .map(|(name, _)| name.as_str())
            .collect();
        let _ = write!(
            out,
            "Ticket {}: {}",
            text("ticket"),
            text("verdict").to_uppercase()
        );
        if !reasons.is_empty() {
            let _ = write!(out, " ({})", reasons.join(", "));
        }
        if !flags.is_empty() {
            let _ = write!(out, ", flagged {}", flags.join(", "));
        }
        let written = match text("written") {
            "now" => "written to the ticket",
            "already" => "the ticket already had a verdict, nothing written",
            "logged" => "logged by the service, not written (write_back = \"log\")",
            other => other,
        };
        let _ = writeln!(out, "; {written}");
        if let Some(note) = r.get("note").and_then(|n| n.as_str()) {
            let _ = writeln!(out, "\n{note}");
        }
    }
    Some(out.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_summed_up_with_its_note() {
        let answer = serde_json::json!({"results": [{
            "ticket": "1002", "verdict": "bad", "written": "logged",
            "assessment": {"outcome": "bad", "flags": {"late": true, "kb_gap": false},
                "reasons": [{"reason": "kb_resolvable", "article": {"signals": [["cov_w", 0.4]]}}]},
            "note": "escalation-gate verdict: BAD escalation (kb_resolvable)"
        }]});
        let text = answer_summary(&answer).unwrap();
        assert_eq!(
            text,
            "Ticket 1002: BAD (kb_resolvable), flagged late; logged by the service, not written \
             (write_back = \"log\")\n\nescalation-gate verdict: BAD escalation (kb_resolvable)"
        );
        assert!(!text.contains("cov_w"));
        let refused = serde_json::json!({"error": "bad_signature", "detail": "no secret matches"});
        assert_eq!(
            answer_summary(&refused).unwrap(),
            "error: bad_signature: no secret matches"
        );
        assert_eq!(answer_summary(&serde_json::json!([1, 2])), None);
    }
}
