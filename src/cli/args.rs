//! What the command-line commands share: parsers for the days and instants they take, with
//! errors that say which forms are accepted, and the one-line form of an error chain.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

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

/// An error and its causes on one line, `outer: cause: cause`, leaving out a cause whose text
/// the line already holds (an error that prints its source as part of its own message).
pub fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// The service's answer to a delivery, for a person: per ticket the verdict, its reasons and
/// flags, what was written, and the note; an error's code and detail. `None` when the answer
/// has neither shape (print it as it came).
pub fn answer_summary(answer: &serde_json::Value) -> Option<String> {
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

    #[test]
    fn a_cause_already_in_the_message_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("data.jsonl: cannot read: {source}")]
        struct Read {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Read {
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "No such file"),
        })
        .context("loading the cases");
        assert_eq!(
            error_line(&e),
            "loading the cases: data.jsonl: cannot read: No such file"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_line(&plain), "outer: inner");
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
