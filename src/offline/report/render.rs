//! The scorecard as a self-contained HTML page (inline CSS and SVG charts, prints well), as CSV
//! (one row per partner and month, for finance) and as JSON (for BI tools).

use std::fmt::Write as _;

use serde::Serialize;

use super::stats::{Estimate, Position};
use super::{Audience, BadCase, Count, Csat, Figures, PartnerCard, Scorecard, TierResult};
use crate::assess::ReasonKind;
use crate::survey::email::escape_html as esc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Html,
    Csv,
    Json,
}

pub fn render(card: &Scorecard, format: Format) -> Result<String, RenderError> {
    Ok(match format {
        Format::Html => html(card),
        Format::Csv => csv(card)?,
        Format::Json => serde_json::to_string_pretty(card)? + "\n",
    })
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("writing CSV: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("writing CSV: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
}

const NOT_ENOUGH: &str = "not enough data";

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|x| format!("{x:.digits$}")).unwrap_or_default()
}

/// One row per partner and month, then the partner's period (`month` = `period`): the figures
/// the tier rests on. Every cell that a spreadsheet would take for a formula (it begins with
/// `=`, `+`, `-`, `@`, a tab or a carriage return) is written with a leading `'`, as OWASP
/// advises against CSV injection: partner names come from organizations and ticket fields.
pub fn csv(card: &Scorecard) -> Result<String, RenderError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "partner",
        "month",
        "cases",
        "escalations",
        "escalation_rate",
        "late_escalations",
        "good",
        "bad",
        "in_review",
        "good_ratio",
        "good_ratio_low",
        "good_ratio_high",
        "target",
        "against_target",
        "missing_handoff",
        "kb_resolvable",
        "prechecked",
        "fixed_before_sending",
        "sent_despite_check",
        "abandoned_after_article",
        "surveys_sent",
        "surveys_answered",
        "response_rate",
        "csat",
        "csat_escalated",
        "csat_not_escalated",
        "support_csat",
        "ces",
        "period_tier",
        "tier_label",
        "tier_uncertain",
        "tier_not_enough_data",
    ])?;
    for p in &card.partners {
        let tier = p.tier.as_ref();
        let rows = p
            .months
            .iter()
            .map(|m| (m.month.as_str(), &m.figures))
            .chain([("period", &p.period)]);
        for (month, f) in rows {
            let s = &f.surveys;
            let mean = |c: Option<Estimate>| opt(c.map(|e| e.value), 2);
            let row = [
                p.partner.clone(),
                month.to_string(),
                f.cases.to_string(),
                f.escalations.to_string(),
                opt(f.escalation_rate, 4),
                f.late.to_string(),
                f.good.to_string(),
                f.bad.to_string(),
                f.in_review.to_string(),
                opt(f.good_ratio.map(|e| e.value), 4),
                opt(f.good_ratio.map(|e| e.low), 4),
                opt(f.good_ratio.map(|e| e.high), 4),
                format!("{:.4}", f.target),
                match f.against_target {
                    Some(p) => position(p).to_string(),
                    None => NOT_ENOUGH.to_string(),
                },
                f.bad_reasons.missing_handoff.to_string(),
                f.bad_reasons.kb_resolvable.to_string(),
                f.prechecks.checked.to_string(),
                f.prechecks.fixed_before_sending.to_string(),
                f.prechecks.sent_despite_check.to_string(),
                f.prechecks.abandoned_after_article.to_string(),
                s.all.sent.to_string(),
                s.all.answered.to_string(),
                opt(s.all.response_rate.map(|e| e.value), 4),
                mean(s.all.mean),
                mean(s.escalated.mean),
                mean(s.not_escalated.mean),
                mean(s.support_csat),
                mean(s.ces),
                tier.and_then(|t| t.reached.clone()).unwrap_or_default(),
                tier.and_then(|t| t.label.clone()).unwrap_or_default(),
                tier.map(|t| t.uncertain.to_string()).unwrap_or_default(),
                tier.map(|t| t.not_enough_data.to_string())
                    .unwrap_or_default(),
            ];
            w.write_record(row.map(inert))?;
        }
    }
    Ok(String::from_utf8(
        w.into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))?,
    )?)
}

/// A cell a spreadsheet will not run: one that begins with a formula character gets a leading
/// `'` (OWASP, "CSV Injection").
fn inert(cell: String) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell
    }
}

fn position(p: Position) -> &'static str {
    match p {
        Position::Above => "above",
        Position::Below => "below",
        Position::Straddles => "straddles",
    }
}

fn pct(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// A share with its interval, in percent.
fn interval_pct(e: Estimate) -> String {
    format!(
        "{} <span class=\"ci\">({}–{})</span>",
        pct(e.value),
        pct(e.low),
        pct(e.high)
    )
}

fn ratio_text(e: Option<Estimate>) -> String {
    match e {
        Some(e) => interval_pct(e),
        None => format!("<span class=\"nodata\">{NOT_ENOUGH}</span>"),
    }
}

fn mean_text(e: Option<Estimate>) -> String {
    match e {
        Some(e) => format!(
            "{:.2} <span class=\"ci\">({:.2}–{:.2})</span>",
            e.value, e.low, e.high
        ),
        None => format!("<span class=\"nodata\">{NOT_ENOUGH}</span>"),
    }
}

fn csat_cells(c: &Csat) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
        c.sent,
        c.answered,
        c.response_rate
            .map(interval_pct)
            .unwrap_or_else(|| "–".into()),
        mean_text(c.mean)
    )
}

const STYLE: &str = r#"
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2329; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { font-size: 1.02rem; margin: 1.2rem 0 .4rem; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #e3e7eb; padding: .28rem .45rem; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; } th { background: #f4f6f8; font-weight: 600; }
td:not(:first-child):not(.text), td.nw { white-space: nowrap; } th.text, td.text { text-align: left; }
.ci { color: #59636e; font-size: .85em; } .nodata { color: #8a6d00; font-style: italic; }
.meta { color: #59636e; } .tier { font-weight: 600; } .uncertain { color: #8a6d00; }
.note { color: #59636e; font-size: .9em; margin: .2rem 0; }
svg.chart { width: 100%; height: auto; max-width: 44rem; display: block; margin: .5rem 0 1rem; }
svg text { font: 11px system-ui, sans-serif; fill: #1d2329; }
ul.plain { padding-left: 1.2rem; margin: .3rem 0; }
section.partner, figure { break-inside: avoid; page-break-inside: avoid; }
@media print { body { margin: 0; max-width: none; font-size: 11pt; } h2 { break-before: auto; break-after: avoid; }
  section.partner { break-before: page; } a { color: inherit; text-decoration: none; } }
"#;

pub fn html(card: &Scorecard) -> String {
    let mut h = String::new();
    let partner_edition = card.audience == Audience::Partner;
    let title = if partner_edition {
        format!(
            "Escalation scorecard: {} ({})",
            card.partners
                .first()
                .map(|p| p.partner.as_str())
                .unwrap_or(""),
            card.name
        )
    } else {
        format!("Partner scorecard: {}", card.name)
    };
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body>\n<h1>{}</h1>\n<p class=\"meta\">Tickets created from {} to {} (UTC, both days included), {} read. Good-escalation ratio with its 95 % Wilson interval; below {} judged escalations it is shown as “{NOT_ENOUGH}”, and CSAT and CES below {} answers.</p>\n",
        esc(&title),
        esc(&title),
        card.from.format("%Y-%m-%d"),
        card.last_day.format("%Y-%m-%d"),
        card.tickets,
        card.contracts.min_escalations,
        card.contracts.min_answers,
    );
    if card.baseline {
        h.push_str("<p class=\"note baseline\">A baseline: the judge's verdicts on past escalations (a <code>backfill</code> dry run), each as of its own escalation time. No survey was sent for these cases and no person reviewed them yet: there are no survey figures, and every verdict is the judge's.</p>\n");
    }
    if !partner_edition {
        overview(&mut h, card);
    }
    for p in &card.partners {
        partner_section(&mut h, p, card);
    }
    if let Some(k) = &card.knowledge {
        h.push_str("<section class=\"knowledge\"><h2>Knowledge view</h2>\n<h3>Articles partners most often missed</h3>\n");
        articles_table(&mut h, &k.missed_articles, card);
        h.push_str("<h3>Enablement list per partner</h3>\n");
        if k.enablement.is_empty() {
            h.push_str(
                "<p class=\"note\">No escalation was answered by an existing article.</p>\n",
            );
        }
        for e in &k.enablement {
            let _ = write!(h, "<p><b>{}</b>: ", esc(&e.partner));
            let list: Vec<String> = e
                .articles
                .iter()
                .map(|a| format!("{} ({}×)", article(card, &a.name), a.count))
                .collect();
            let _ = writeln!(h, "{}</p>", list.join(", "));
        }
        h.push_str("<h3>Knowledge gaps: write an article about this</h3>\n<p class=\"note\">Good escalations flagged <code>kb_gap</code> (no article answered them), by product, with the terms that set their subjects apart.</p>\n<table><tr><th>product</th><th>escalations</th><th class=\"text\">distinctive terms</th></tr>\n");
        for g in &k.gaps {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
                esc(&g.product),
                g.escalations,
                esc(&g.terms.join(", "))
            );
        }
        h.push_str("</table></section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// An article as the HTML names it: its title linked to it, with its id, when the knowledge
/// base showed it; else its id.
fn article(card: &Scorecard, id: &str) -> String {
    match card.articles.get(id) {
        Some(a) if a.url.is_empty() => {
            format!("{} <span class=\"ci\">({})</span>", esc(&a.title), esc(id))
        }
        Some(a) => format!(
            "<a href=\"{}\">{}</a> <span class=\"ci\">({})</span>",
            esc(&a.url),
            esc(&a.title),
            esc(id)
        ),
        None => esc(id),
    }
}

/// A hand-off field or reason code in words: `steps_to_reproduce` → `steps to reproduce`.
fn words(code: &str) -> String {
    code.replace('_', " ")
}

/// A reason of a bad escalation, as a partner reads it.
fn reason_words(r: ReasonKind) -> &'static str {
    match r {
        ReasonKind::MissingHandoff => "hand-off fields missing",
        ReasonKind::KbResolvable => "an existing article answers it",
    }
}

fn overview(h: &mut String, card: &Scorecard) {
    h.push_str("<h2>All partners</h2>\n<table><tr><th>partner</th><th>cases</th><th>escalations</th><th>rate</th><th>good</th><th>bad</th><th>in review</th><th>good ratio</th><th>target</th><th>support CSAT</th><th>tier</th></tr>\n");
    for p in &card.partners {
        let f = &p.period;
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"text\">{}</td></tr>",
            esc(&p.partner),
            f.cases,
            f.escalations,
            f.escalation_rate.map(pct).unwrap_or_else(|| "–".into()),
            f.good,
            f.bad,
            f.in_review,
            ratio_text(f.good_ratio),
            pct(f.target),
            mean_text(f.surveys.support_csat),
            tier_short(p.tier.as_ref()),
        );
    }
    h.push_str("</table>\n");
    if let Some(n) = card.without_partner.filter(|n| *n > 0) {
        let _ = writeln!(
            h,
            "<p class=\"note\">{n} ticket(s) name no partner and are in no partner's figures.</p>"
        );
    }
    h.push_str("<figure><figcaption>Good-escalation ratio per partner over the period, with its 95 % interval; the mark on each row is the partner's target.</figcaption>\n");
    partners_chart(h, &card.partners);
    h.push_str("</figure>\n");
}

fn tier_short(t: Option<&TierResult>) -> String {
    match t {
        None => "–".into(),
        Some(t) => {
            let name = match (&t.reached, &t.label) {
                (Some(n), Some(l)) if !l.is_empty() => format!("{} ({})", esc(n), esc(l)),
                (Some(n), _) => esc(n),
                (None, _) => "none".into(),
            };
            if t.not_enough_data {
                format!("{name} <span class=\"nodata\">({NOT_ENOUGH})</span>")
            } else if t.uncertain {
                format!("<span class=\"uncertain\">{name} (uncertain)</span>")
            } else {
                name
            }
        }
    }
}

/// A two-column table of names (already HTML) and how often each came up.
fn counts_table(h: &mut String, what: &str, list: &[(String, u64)]) {
    if list.is_empty() {
        h.push_str("<p class=\"note\">None.</p>\n");
        return;
    }
    let _ = writeln!(h, "<table><tr><th>{what}</th><th>times</th></tr>");
    for (name, count) in list {
        let _ = writeln!(h, "<tr><td>{name}</td><td>{count}</td></tr>");
    }
    h.push_str("</table>\n");
}

fn articles_table(h: &mut String, list: &[Count], card: &Scorecard) {
    let named: Vec<(String, u64)> = list
        .iter()
        .map(|c| (article(card, &c.name), c.count))
        .collect();
    counts_table(h, "article", &named);
}

fn partner_section(h: &mut String, p: &PartnerCard, card: &Scorecard) {
    let f = &p.period;
    let _ = writeln!(h, "<section class=\"partner\"><h2>{}</h2>", esc(&p.partner));
    let _ = writeln!(
        h,
        "<p>{} partner cases, {} escalations ({}); <b>{}</b> good and <b>{}</b> bad, {} in review. Good-escalation ratio: <b>{}</b> against the target {}{}.</p>",
        f.cases,
        f.escalations,
        f.escalation_rate
            .map(|r| format!("{} of cases", pct(r)))
            .unwrap_or_else(|| "no cases".into()),
        f.good,
        f.bad,
        f.in_review,
        ratio_text(f.good_ratio),
        pct(f.target),
        match f.against_target {
            Some(Position::Above) => ": met, the whole interval is above it",
            Some(Position::Below) => ": missed, the whole interval is below it",
            Some(Position::Straddles) => ": the interval straddles it, the sample cannot tell",
            None => "",
        }
    );
    if f.reviewed > 0 {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} verdict(s) decided by a person ({} overturned); a person's decision is the one counted.</p>",
            f.reviewed, f.overturned
        );
    }
    if let Some(t) = &p.tier {
        let _ = write!(h, "<p class=\"tier\">Tier: {}</p>", tier_short(Some(t)));
        if let Some(next) = &t.next
            && !t.missed_by.is_empty()
        {
            let _ = write!(
                h,
                "<p class=\"note\">Missed {} by: {}.</p>",
                esc(next),
                esc(&t.missed_by.join("; "))
            );
        }
        for n in &t.notes {
            let _ = write!(h, "<p class=\"note uncertain\">{}</p>", esc(n));
        }
        h.push('\n');
    }
    months_chart(h, p, card.contracts.min_escalations);
    h.push_str("<h3>Per month</h3>\n<table><tr><th>month</th><th>cases</th><th>escalations</th><th>late</th><th>good</th><th>bad</th><th>in review</th><th>good ratio</th><th>missing hand-off</th><th>KB-resolvable</th><th>CSAT</th></tr>\n");
    for m in &p.months {
        let g = &m.figures;
        let _ = writeln!(
            h,
            "<tr><td class=\"nw\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.month),
            g.cases,
            g.escalations,
            g.late,
            g.good,
            g.bad,
            g.in_review,
            ratio_text(g.good_ratio),
            g.bad_reasons.missing_handoff,
            g.bad_reasons.kb_resolvable,
            mean_text(g.surveys.all.mean),
        );
    }
    h.push_str("</table>\n");
    let _ = writeln!(
        h,
        "<p>Escalations flagged late (escalated long after the case was opened, good or bad alike): <b>{}</b>.</p>",
        f.late
    );
    if f.prechecks.checked > 0 {
        let _ = writeln!(
            h,
            "<p>Checked before escalating: <b>{}</b> escalations; of those the check found bad, <b>{}</b> were fixed before sending and <b>{}</b> sent as they were.</p>",
            f.prechecks.checked, f.prechecks.fixed_before_sending, f.prechecks.sent_despite_check
        );
    }
    if f.prechecks.abandoned_after_article > 0 {
        let _ = writeln!(
            h,
            "<p>Drafts abandoned after the check showed an article (solved without escalating): <b>{}</b>.</p>",
            f.prechecks.abandoned_after_article
        );
    }
    reasons(h, f, card);
    surveys(h, f);
    if let Some(bad) = &p.bad_escalations {
        bad_table(h, bad, card);
    }
    if let Some(comments) = &p.comments {
        h.push_str("<h3>What customers said about support</h3>\n");
        if comments.is_empty() {
            h.push_str("<p class=\"note\">No comments in this period.</p>\n");
        } else {
            h.push_str("<ul class=\"plain comments\">\n");
            for c in comments {
                let _ = writeln!(h, "<li>“{}”</li>", esc(c));
            }
            h.push_str("</ul>\n");
        }
    } else if card.audience == Audience::Vendor && !card.baseline && !card.comments_read {
        h.push_str("<p class=\"note\">Customers' comments are not read: the survey maps no <code>comment_field</code> (a text field in <code>[survey.sink]</code>), so the partner edition shows none.</p>\n");
    }
    h.push_str("</section>\n");
}

/// The partner edition's bad escalations, each with why in words, the fields missing and the
/// article that answers it.
fn bad_table(h: &mut String, bad: &[BadCase], card: &Scorecard) {
    h.push_str("<h3>Bad escalations</h3>\n");
    if bad.is_empty() {
        h.push_str("<p class=\"note\">None in this period.</p>\n");
        return;
    }
    h.push_str("<table class=\"bad-escalations\"><tr><th>ticket</th><th>opened</th><th class=\"text\">why</th><th class=\"text\">fields missing</th><th class=\"text\">article that answers it</th></tr>\n");
    for b in bad {
        let mut why: Vec<String> = b
            .reasons
            .iter()
            .map(|r| reason_words(*r).to_string())
            .collect();
        if b.reviewed {
            why.push("decided by a reviewer".into());
        }
        if b.late {
            why.push("escalated late".into());
        }
        let fields: Vec<String> = b.missing_fields.iter().map(|f| words(f)).collect();
        let articles: Vec<String> = b.articles.iter().map(|a| article(card, a)).collect();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"nw\">{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td><td class=\"text\">{}</td></tr>",
            esc(&b.ticket),
            esc(&b.opened),
            esc(&why.join("; ")),
            esc(&fields.join(", ")),
            articles.join(", ")
        );
    }
    h.push_str("</table>\n");
}

fn reasons(h: &mut String, f: &Figures, card: &Scorecard) {
    let r = &f.bad_reasons;
    let _ = writeln!(
        h,
        "<h3>Bad escalations by reason</h3>\n<p>Missing hand-off fields: <b>{}</b>; answered by an existing article: <b>{}</b>. A bad verdict a person gave counts under the reason the person recorded, if any.</p>",
        r.missing_handoff, r.kb_resolvable
    );
    h.push_str("<h3>Hand-off fields missing</h3>\n");
    let fields: Vec<(String, u64)> = r
        .missing_fields
        .iter()
        .map(|c| (esc(&words(&c.name)), c.count))
        .collect();
    counts_table(h, "field", &fields);
    h.push_str("<h3>Articles that answered bad escalations</h3>\n");
    articles_table(h, &r.articles, card);
}

fn surveys(h: &mut String, f: &Figures) {
    let s = &f.surveys;
    h.push_str("<h3>Blind CSAT</h3>\n<table><tr><th>cases</th><th>surveys sent</th><th>answered</th><th>response rate</th><th>mean CSAT (1–5)</th></tr>\n");
    for (name, c) in [
        ("all partner cases", &s.all),
        ("escalated", &s.escalated),
        ("not escalated", &s.not_escalated),
    ] {
        let _ = writeln!(h, "<tr><td>{name}</td>{}</tr>", csat_cells(c));
    }
    let _ = writeln!(
        h,
        "</table>\n<p>Support CSAT (ratings not about the product, {} answers): <b>{}</b>. Customer effort (1–7, {} answers): {}. Ratings about the product: {}, about support: {}, both: {}, unsaid: {}.</p>",
        s.support_answers,
        mean_text(s.support_csat),
        s.ces_answers,
        mean_text(s.ces),
        s.about.product,
        s.about.support,
        s.about.both,
        s.about.unsaid
    );
}

/// Plot geometry shared by the charts.
const W: f64 = 640.0;

fn partners_chart(h: &mut String, partners: &[PartnerCard]) {
    let row = 26.0;
    let left = 170.0;
    let right = W - 20.0;
    let top = 10.0;
    let height = top + row * partners.len() as f64 + 30.0;
    let x = |v: f64| left + v * (right - left);
    let _ = writeln!(
        h,
        "<svg class=\"chart\" id=\"chart-partners\" viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"Good-escalation ratio per partner\">"
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = writeln!(
            h,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{top}\" y2=\"{1:.1}\" stroke=\"#e3e7eb\"/><text x=\"{0:.1}\" y=\"{2:.1}\" text-anchor=\"middle\">{3:.0} %</text>",
            x(tick),
            height - 25.0,
            height - 10.0,
            tick * 100.0
        );
    }
    for (i, p) in partners.iter().enumerate() {
        let y = top + row * i as f64;
        let mid = y + row / 2.0;
        let name: String = p.partner.chars().take(24).collect();
        let _ = writeln!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            mid + 4.0,
            esc(&name)
        );
        match p.period.good_ratio {
            Some(e) => {
                let colour = match e.against(p.period.target) {
                    Position::Above => "#2f8a4c",
                    Position::Below => "#c0392b",
                    Position::Straddles => "#c58f00",
                };
                let _ = writeln!(
                    h,
                    "<rect class=\"bar\" x=\"{left}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" opacity=\"0.8\"><title>{}: {}</title></rect>",
                    y + 5.0,
                    x(e.value) - left,
                    row - 10.0,
                    esc(&p.partner),
                    pct(e.value)
                );
                whisker_h(h, x(e.low), x(e.high), mid);
            }
            None => {
                let _ = writeln!(
                    h,
                    "<text x=\"{:.1}\" y=\"{:.1}\" class=\"nodata\" fill=\"#8a6d00\">{NOT_ENOUGH}</text>",
                    left + 4.0,
                    mid + 4.0
                );
            }
        }
        let _ = writeln!(
            h,
            "<line class=\"target-mark\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"#1d2329\" stroke-width=\"2\"/>",
            x(p.period.target),
            y + 2.0,
            y + row - 2.0
        );
    }
    h.push_str("</svg>\n");
}

fn whisker_h(h: &mut String, x1: f64, x2: f64, y: f64) {
    let _ = writeln!(
        h,
        "<path class=\"whisker\" d=\"M{x1:.1} {y:.1}H{x2:.1}M{x1:.1} {:.1}V{:.1}M{x2:.1} {:.1}V{:.1}\" stroke=\"#1d2329\" fill=\"none\"/>",
        y - 5.0,
        y + 5.0,
        y - 5.0,
        y + 5.0
    );
}

/// The good ratio per month against the target band; when no month reaches the minimum sample
/// (a small partner), the period's own point instead, and the caption says why.
fn months_chart(h: &mut String, p: &PartnerCard, min: u64) {
    let target = p.period.target;
    let by_month = p.months.iter().any(|m| m.figures.good_ratio.is_some());
    let points: Vec<(&str, &Figures)> = if by_month {
        p.months
            .iter()
            .map(|m| (m.month.as_str(), &m.figures))
            .collect()
    } else {
        vec![("period", &p.period)]
    };
    if by_month {
        let _ = writeln!(
            h,
            "<figure><figcaption>Good-escalation ratio per month with its 95 % interval; the band is the target ({}) and above.</figcaption>",
            pct(target)
        );
    } else {
        let _ = writeln!(
            h,
            "<figure><figcaption>Good-escalation ratio over the whole period with its 95 % interval; the band is the target ({}) and above. The months are not shown: each has fewer than {min} judged escalations.</figcaption>",
            pct(target)
        );
    }
    let (left, right, top, bottom) = (44.0, W - 16.0, 12.0, 190.0);
    let height = 220.0;
    let n = points.len().max(1) as f64;
    let step = (right - left) / n;
    let y = |v: f64| bottom - v * (bottom - top);
    let _ = writeln!(
        h,
        "<svg class=\"chart chart-months\" viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"Good-escalation ratio per month\">"
    );
    let (width, line) = (right - left, y(target));
    let _ = writeln!(
        h,
        "<rect class=\"target-band\" x=\"{left}\" y=\"{top}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"#2f8a4c\" opacity=\"0.12\"/><line class=\"target\" x1=\"{left}\" x2=\"{right}\" y1=\"{line:.1}\" y2=\"{line:.1}\" stroke=\"#2f8a4c\" stroke-dasharray=\"5 3\"/>",
        line - top,
    );
    for tick in [0.0, 0.25, 0.5, 0.75, 1.0] {
        let _ = writeln!(
            h,
            "<line x1=\"{left}\" x2=\"{right}\" y1=\"{0:.1}\" y2=\"{0:.1}\" stroke=\"#e3e7eb\"/><text x=\"{1:.1}\" y=\"{2:.1}\" text-anchor=\"end\">{3:.0} %</text>",
            y(tick),
            left - 6.0,
            y(tick) + 4.0,
            tick * 100.0
        );
    }
    for (i, (label, f)) in points.iter().enumerate() {
        let cx = left + step * (i as f64 + 0.5);
        let _ = writeln!(
            h,
            "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 16.0,
            esc(label)
        );
        match f.good_ratio {
            Some(e) => {
                let _ = writeln!(
                    h,
                    "<path class=\"whisker\" d=\"M{cx:.1} {0:.1}V{1:.1}M{2:.1} {0:.1}H{3:.1}M{2:.1} {1:.1}H{3:.1}\" stroke=\"#1d2329\" fill=\"none\"/><circle class=\"point\" cx=\"{cx:.1}\" cy=\"{4:.1}\" r=\"4.5\" fill=\"#1f5fa8\"><title>{5}: {6} ({7}–{8})</title></circle>",
                    y(e.low),
                    y(e.high),
                    cx - 5.0,
                    cx + 5.0,
                    y(e.value),
                    esc(label),
                    pct(e.value),
                    pct(e.low),
                    pct(e.high)
                );
            }
            None => {
                let judged = f.good + f.bad;
                let _ = writeln!(
                    h,
                    "<text x=\"{cx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#8a6d00\">n={judged}&lt;{min}</text>",
                    bottom - 6.0
                );
            }
        }
    }
    h.push_str("</svg>\n</figure>\n");
}
