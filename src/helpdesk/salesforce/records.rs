//! Reading the record back: every Case of a period through SOQL, page by page with
//! `nextRecordsUrl`, mapped to [`CaseRecord`]s from its fields.
//!
//! What a judged Case carries (`[helpdesk.verdict_fields]`): the verdict (`good`, `bad` or
//! `review` value), the reasons and flags (`missing_handoff, kb_resolvable, late, kb_gap`), the
//! detail (`missing=steps,version; kb_article=kb-1001; conf=0.87`, the last the judge's confidence
//! in its best counted article, floored to the percent), a person's decision in `reviewed` and,
//! when the org has the field, the reason of an overturn in `overturn`.
//! The survey's state is its status field, its answer the ticket sink's fields.

use chrono::Utc;
use serde_json::Value;

use super::api::{SalesforceApi, next_records_url};
use super::case::{map_case, prechecked};
use super::config::{PartnerSource, ValidSalesforce};
use crate::assess::{Outcome, ReasonKind, Verdict};
use crate::helpdesk::HelpdeskError;
use crate::helpdesk::records::{
    CaseRecord, Period, RecordSink, details, patiently, recorded_confidence, survey_record,
};
use crate::survey::config::SurveyFields;

/// A Text field holds at most 255 characters.
const DETAIL_MAX_CHARS: usize = 255;
const MISSING: &str = "missing=";
const KB_ARTICLE: &str = "kb_article=";
const CONF: &str = "conf=";

/// The detail field's value: the failed hand-off fields, the article that answers the case and
/// the judge's confidence (kept first when the field's 255 characters do not hold everything).
pub fn detail_text(v: &Verdict) -> String {
    let (fields, articles) = details(v);
    let conf = recorded_confidence(v).map(|p| format!("{CONF}{:.2}", f64::from(p) / 100.0));
    let mut parts = Vec::new();
    if !fields.is_empty() {
        parts.push(format!("{MISSING}{}", fields.join(",")));
    }
    if !articles.is_empty() {
        parts.push(format!("{KB_ARTICLE}{}", articles.join(",")));
    }
    let room = DETAIL_MAX_CHARS - conf.as_ref().map_or(0, |c| c.len() + 2);
    let mut text: String = parts.join("; ").chars().take(room).collect();
    if let Some(conf) = conf {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(&conf);
    }
    text
}

/// The confidence a detail value records (`conf=0.87`).
fn parse_conf(text: &str) -> Option<f64> {
    text.split(';')
        .find_map(|part| part.trim().strip_prefix(CONF))
        .and_then(|c| c.trim().parse::<f64>().ok())
        .filter(|c| (0.0..=1.0).contains(c))
}

/// The failed fields and articles a detail value names.
fn parse_detail(text: &str) -> (Vec<String>, Vec<String>) {
    let list = |rest: &str| -> Vec<String> {
        rest.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let mut fields = Vec::new();
    let mut articles = Vec::new();
    for part in text.split(';').map(str::trim) {
        if let Some(rest) = part.strip_prefix(MISSING) {
            fields = list(rest);
        } else if let Some(rest) = part.strip_prefix(KB_ARTICLE) {
            articles = list(rest);
        }
    }
    (fields, articles)
}

/// The Case fields a record is read from.
fn select(cfg: &ValidSalesforce, survey: Option<&SurveyFields>) -> Vec<String> {
    let vf = &cfg.verdict_fields;
    let mut f: Vec<String> = ["Id", "Subject", "CreatedDate", "IsEscalated"]
        .map(str::to_string)
        .to_vec();
    if cfg.partner == PartnerSource::Account {
        f.push("Account.Name".into());
    }
    f.extend(cfg.mapping.fields.keys().cloned());
    f.push(vf.verdict.clone());
    f.extend(
        [
            &vf.reason,
            &vf.detail,
            &vf.reviewed,
            &vf.overturn,
            &vf.precheck,
        ]
        .into_iter()
        .filter(|n| !n.is_empty())
        .cloned(),
    );
    if survey.is_some() {
        f.push(cfg.survey_fields.status.clone());
    }
    let mut seen = std::collections::HashSet::new();
    f.retain(|x| seen.insert(x.clone()));
    f
}

/// Streams every Case created in `period` into `sink`.
pub async fn read(
    connector: &str,
    cfg: &ValidSalesforce,
    api: &SalesforceApi,
    period: &Period,
    survey: Option<&SurveyFields>,
    sink: &mut (dyn RecordSink + Send),
) -> Result<(), HelpdeskError> {
    let (from, to) = period.rfc3339();
    let soql = format!(
        "SELECT {} FROM Case WHERE CreatedDate >= {from} AND CreatedDate < {to} ORDER BY CreatedDate, Id",
        select(cfg, survey).join(", "),
    );
    let mut page = patiently(|| api.query_page("query_records", &soql)).await?;
    if let Some(total) = page.get("totalSize").and_then(Value::as_u64) {
        sink.total(total);
    }
    loop {
        let Some(Value::Array(cases)) = page.get_mut("records").map(Value::take) else {
            return Err(HelpdeskError::Unusable(
                "query_records: the answer has no `records` array".into(),
            ));
        };
        for case in &cases {
            match record(connector, cfg, case, survey) {
                Ok(r) => sink.record(r),
                Err(e) => tracing::warn!(error = %e, "Case skipped: it cannot be read back"),
            }
        }
        let Some(next) = next_records_url(&page) else {
            return Ok(());
        };
        page = patiently(|| api.query_more("query_records", &next)).await?;
    }
}

/// One Case, as the query returns it, as a record.
pub fn record(
    connector: &str,
    cfg: &ValidSalesforce,
    case: &Value,
    survey: Option<&SurveyFields>,
) -> Result<CaseRecord, HelpdeskError> {
    let esc = map_case(connector, cfg, case, Utc::now())?;
    let vf = &cfg.verdict_fields;
    let text = |name: &str| {
        (!name.is_empty())
            .then(|| case.get(name).and_then(Value::as_str))
            .flatten()
            .unwrap_or("")
    };
    let verdict = match text(&vf.verdict) {
        "" => None,
        v if v == vf.good => Some(Outcome::Good),
        v if v == vf.bad => Some(Outcome::Bad),
        v if v == vf.review => Some(Outcome::Review),
        _ => None,
    };
    let reviewed = match text(&vf.reviewed) {
        v if !v.is_empty() && v == vf.good => Some(Outcome::Good),
        v if !v.is_empty() && v == vf.bad => Some(Outcome::Bad),
        _ => None,
    };
    let named: Vec<&str> = text(&vf.reason).split(',').map(str::trim).collect();
    let (missing_fields, kb_articles) = parse_detail(text(&vf.detail));
    let status = survey
        .map(|_| text(&cfg.survey_fields.status))
        .unwrap_or("");
    Ok(CaseRecord {
        prechecked: prechecked(vf, case),
        // The Experience Cloud form records a check only on the Case it creates, so no Case
        // stands for a draft abandoned after an article was shown: the one figure that reads
        // whether a case was closed.
        solved: false,
        ticket_id: esc.ticket_id.clone(),
        partner: esc.partner.clone(),
        product: esc.product.clone(),
        subject: esc.subject.clone(),
        opened_at: esc.opened_at,
        escalated: case.get("IsEscalated") == Some(&Value::Bool(true))
            || verdict.is_some()
            || reviewed.is_some(),
        verdict,
        reviewed,
        overturn: Some(text(&vf.overturn))
            .filter(|o| !o.is_empty())
            .map(crate::helpdesk::tags::tag_safe),
        reasons: ReasonKind::ALL
            .into_iter()
            .filter(|r| named.contains(&r.as_str()))
            .collect(),
        late: named.contains(&"late"),
        kb_gap: named.contains(&"kb_gap"),
        missing_fields,
        kb_articles,
        kb_confidence: parse_conf(text(&vf.detail)),
        survey: survey
            .map(|f| survey_record(f, &[status], &esc.handoff))
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(outcome: crate::assess::Outcome, confidence: f64) -> Verdict {
        let m = crate::assess::kb::KbMatch {
            article_id: "kb-1001".into(),
            title: "Calendar sync".into(),
            url: "https://kb.example/kb-1001".into(),
            passage: String::new(),
            confidence,
            signals: vec![],
        };
        let mut kb = crate::assess::kb::KbFindings::default();
        match outcome {
            Outcome::Bad => kb.resolvable_by = Some(m),
            Outcome::Review => kb.review = Some(m),
            Outcome::Good => kb.best_other = Some(m),
        }
        Verdict {
            outcome,
            reasons: match outcome {
                Outcome::Bad => vec![crate::assess::Reason::KbResolvable {
                    article: kb.resolvable_by.clone().unwrap(),
                }],
                _ => vec![],
            },
            flags: Default::default(),
            hours_to_escalation: 0,
            kb,
        }
    }

    #[test]
    fn the_detail_records_the_confidence_floored_to_the_percent() {
        assert_eq!(
            detail_text(&verdict(Outcome::Bad, 0.9731)),
            "kb_article=kb-1001; conf=0.97"
        );
        assert_eq!(detail_text(&verdict(Outcome::Review, 0.5)), "conf=0.50");
        // A good case below the review bound records its closest article too.
        assert_eq!(detail_text(&verdict(Outcome::Good, 0.0799)), "conf=0.07");
        for (outcome, c) in [(Outcome::Bad, 0.9731), (Outcome::Good, 0.29)] {
            let text = detail_text(&verdict(outcome, c));
            let back = parse_conf(&text).unwrap();
            assert!(back <= c && c < back + 0.01, "{c} -> {text}");
        }
    }

    #[test]
    fn details_read_back_as_written() {
        assert_eq!(
            parse_detail("missing=steps,version; kb_article=kb-1001"),
            (
                vec!["steps".to_string(), "version".to_string()],
                vec!["kb-1001".to_string()]
            )
        );
        assert_eq!(parse_detail(""), (vec![], vec![]));
        assert_eq!(
            parse_conf("missing=steps; kb_article=kb-1001; conf=0.87"),
            Some(0.87)
        );
        assert_eq!(parse_conf("conf=0.05"), Some(0.05));
        assert_eq!(parse_conf("kb_article=kb-1001"), None);
        assert_eq!(parse_conf("conf=7"), None);
    }
}
