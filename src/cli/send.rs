//! `send`: signs a JSON body as the connector's helpdesk signs its calls and POSTs it (to try
//! a connector out, e.g. the demo), then prints the service's answer. A saved ticket is sent as
//! if it were escalated now: its times move so its last update is now.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};

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
    /// Send the file's times as they are. Without it, a JSON body's `ticket` has its
    /// `…_at` times moved by one amount so that its `updated_at` is now (as a helpdesk
    /// would send it when escalated now): the spacing of the times, and with it the
    /// `late` flag, stays as the file has it.
    #[arg(long)]
    keep_times: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (name, file) = (&args.connector, &args.file);
    let valid = load_one(&args.dir.connectors, name)?;
    let helpdesk = valid
        .helpdesk
        .build(name, None)
        .context("building the HTTP client")?;
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let now = Utc::now();
    let body = if args.keep_times {
        body
    } else {
        escalated_now(body, now)
    };
    let headers = helpdesk
        .inbound
        .sign(&body, now)
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

/// `body` with its `ticket`'s times (RFC 3339 strings under keys ending in `_at`) moved so
/// that `ticket.updated_at` is `now`; any other body, as it is.
fn escalated_now(body: Vec<u8>, now: DateTime<Utc>) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return body;
    };
    let Some(ticket) = value.get_mut("ticket").and_then(|t| t.as_object_mut()) else {
        return body;
    };
    let time = |v: &serde_json::Value| {
        v.as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let Some(updated) = ticket.get("updated_at").and_then(time) else {
        return body;
    };
    let shift = now - updated;
    for (key, v) in ticket.iter_mut() {
        if let Some(t) = key.ends_with("_at").then(|| time(v)).flatten() {
            *v = serde_json::Value::String(
                (t + shift).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            );
        }
    }
    serde_json::to_vec_pretty(&value).unwrap_or(body)
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
    fn a_ticket_is_sent_as_if_escalated_now_with_its_spacing_kept() {
        let now = DateTime::parse_from_rfc3339("2026-12-08T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let body = br#"{"ticket": {"id": 1, "created_at": "2024-05-01T07:00:00Z",
            "updated_at": "2024-05-04T10:00:00Z", "due_at": null, "subject": "2024-05-01T07:00:00Z"}}"#;
        let sent: serde_json::Value =
            serde_json::from_slice(&escalated_now(body.to_vec(), now)).unwrap();
        assert_eq!(sent["ticket"]["updated_at"], "2026-12-08T10:00:00Z");
        assert_eq!(sent["ticket"]["created_at"], "2026-12-05T07:00:00Z");
        assert_eq!(sent["ticket"]["due_at"], serde_json::Value::Null);
        assert_eq!(sent["ticket"]["subject"], "2024-05-01T07:00:00Z");
        for other in [&b"<xml/>"[..], br#"{"ticket": {"id": 1}}"#, br#"{"id": 1}"#] {
            assert_eq!(escalated_now(other.to_vec(), now), other);
        }
    }

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
