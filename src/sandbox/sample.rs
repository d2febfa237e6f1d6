//! The sample account: what a vendor's Zendesk holds after two quarters with escalation-gate,
//! the same for the same seed and "today".
//!
//! The partners of [`super::catalog::PARTNERS`] (organizations, two agents each), end
//! customers, the Help Center of [`super::catalog::ARTICLES`], and a few hundred tickets created
//! over the two full calendar quarters before today: partners' cases, escalated or solved by the
//! partner, and a few direct customers' cases. Partners differ in how complete their hand-offs are and how
//! often they escalate a case a published article answers.
//!
//! Everything the service would have written is written by the service's own code: a judged
//! escalation carries the tags of [`TagsFile::for_verdict`] and the internal note of
//! [`note::render`] for a verdict whose hand-off part is the connector's own rules on the
//! ticket as [`map_ticket`] reads it (the knowledge-base part is drawn: which article and how
//! sure), plus the survey's pending mark; a person's review carries the reviewer macro's tags
//! and note; the blind survey's outcome carries its tags, and an answer its fields, tags and note
//! ([`SurveyTags::answer_tags`], [`answer_note`]). The audits show when each case was escalated,
//! for `backfill`. Some escalations carry no verdict (their webhook was lost), for `backfill`
//! and the sweep.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::{Value, json};

use super::catalog::{ARTICLES, CASES, COMMENTS, CUSTOMERS, PARTNERS, SLOPPY};
use super::connector::{ESCALATED_TAG, field_id};
use crate::assess::kb::{KbFindings, KbMatch};
use crate::assess::{Flags, Outcome, Reason, Verdict, note};
use crate::config::ValidConnector;
use crate::helpdesk::registry::ValidHelpdesk;
use crate::helpdesk::tags::TagsFile;
use crate::helpdesk::zendesk::config::ValidZendesk;
use crate::helpdesk::zendesk::install::{SURVEY_REQUESTED_TAG, review_note};
use crate::helpdesk::zendesk::records::{OVERTURN, REVIEWED_BAD, REVIEWED_GOOD};
use crate::helpdesk::zendesk::sandbox::{FakeZendesk, Handle};
use crate::helpdesk::zendesk::ticket::map_ticket;
use crate::kb::Article;
use crate::survey::config::{SurveySettings, SurveyTags};
use crate::survey::{About, Answer, answer_id, answer_note};

/// Tickets in the sample.
pub const TICKETS: u64 = 480;
/// The first ticket id (ids grow with time, as Zendesk's do).
const FIRST_TICKET: u64 = 1001;
/// The ids of partners' agents, end customers and the vendor's reviewer.
const FIRST_AGENT: u64 = 361_000_000_001;
const FIRST_CUSTOMER: u64 = 362_000_000_001;
const REVIEWER: u64 = 363_000_000_001;
/// Help Center section of every article.
const SECTION: u64 = 360_000_200_001;

/// The increment of the splitmix64 sequence.
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64: small, fast and the same on every platform and crate version.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A splitmix64 sequence.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn draw(&mut self) -> u64 {
        let z = mix(self.0);
        self.0 = self.0.wrapping_add(GAMMA);
        z
    }

    /// 0 to `n - 1`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.draw() % n.max(1) as u64) as usize
    }

    /// In [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.draw() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// In [low, high).
    fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// An index drawn by `weights`.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut x = self.draw() % total.max(1);
        for (i, w) in weights.iter().enumerate() {
            if x < u64::from(*w) {
                return i;
            }
            x -= u64::from(*w);
        }
        weights.len() - 1
    }
}

/// The two full calendar quarters before the one `today` is in: their first and last day.
pub fn period(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    let quarter_month = (today.month0() / 3) * 3 + 1;
    let this_quarter = NaiveDate::from_ymd_opt(today.year(), quarter_month, 1).unwrap_or(today);
    let first = this_quarter - chrono::Months::new(6);
    (first, this_quarter - chrono::Days::new(1))
}

/// What was seeded, for the sandbox's guide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub partners: Vec<String>,
    pub tickets: u64,
    /// Escalations that carry a verdict.
    pub judged: u64,
    /// Escalations whose webhook was lost: no verdict yet.
    pub unjudged: u64,
    pub reviewed: u64,
    pub answered: u64,
    pub articles: usize,
}

/// Why the sample cannot be made for a connector.
#[derive(Debug, thiserror::Error)]
#[error("the sample account needs the sandbox's Zendesk connector with a [survey] table: {0}")]
pub struct SampleError(String);

/// What the sample reads of the connector it is written for.
struct Writer<'a> {
    connector: &'a str,
    zendesk: &'a ValidZendesk,
    valid: &'a ValidConnector,
    survey: &'a SurveySettings,
    /// The API user: the author of what the service writes.
    api_user: u64,
}

/// Seeds `zd` with the sample account for `connector` (the sandbox's, pointing at `zd`).
pub fn seed(
    zd: &FakeZendesk,
    connector: &ValidConnector,
    seed: u64,
    today: NaiveDate,
) -> Result<Summary, SampleError> {
    let ValidHelpdesk::Zendesk(zendesk) = &connector.helpdesk else {
        return Err(SampleError("it is not a Zendesk connector".into()));
    };
    let survey = connector
        .survey
        .as_ref()
        .ok_or_else(|| SampleError("it has no [survey] table".into()))?;
    let w = Writer {
        connector: &connector.id,
        zendesk,
        valid: connector,
        survey,
        api_user: zd.agent_id(),
    };
    directory(zd);
    let articles = help_center(zd)?;
    let (first_day, last_day) = period(today);
    let start = first_day.and_time(NaiveTime::MIN).and_utc();
    let span = (last_day + chrono::Days::new(1))
        .and_time(NaiveTime::MIN)
        .and_utc()
        - start;
    let today = today.and_time(NaiveTime::MIN).and_utc();
    let mut rng = Rng::new(seed);
    let mut summary = Summary {
        first_day,
        last_day,
        partners: PARTNERS.iter().map(|p| p.name.to_string()).collect(),
        tickets: TICKETS,
        judged: 0,
        unjudged: 0,
        reviewed: 0,
        answered: 0,
        articles: articles.len(),
    };
    let step = span.num_minutes() / TICKETS as i64;
    for i in 0..TICKETS {
        let created = start + Duration::minutes(i as i64 * step + rng.below(step as usize) as i64);
        let ticket = w.ticket(
            FIRST_TICKET + i,
            created,
            today,
            &articles,
            &mut rng,
            &mut summary,
        )?;
        zd.put_ticket(ticket);
    }
    Ok(summary)
}

/// Organizations, partners' agents and end customers.
fn directory(zd: &FakeZendesk) {
    for (p, partner) in PARTNERS.iter().enumerate() {
        zd.put_organization(json!({
            "id": partner.org_id,
            "name": partner.name,
            "domain_names": [partner.domain],
            "tags": ["partner"],
        }));
        for (a, name) in partner.agents.iter().enumerate() {
            zd.put_user(json!({
                "id": agent_id(p, a),
                "name": name,
                "email": address(name, partner.domain),
                "organization_id": partner.org_id,
                "role": "end-user",
                "tags": ["partner_agent"],
            }));
        }
    }
    zd.put_user(json!({
        "id": REVIEWER,
        "name": "Mia Jensen",
        "email": "mia.jensen@ledgerly.example",
        "role": "agent",
    }));
    for (c, (name, domain, locale)) in CUSTOMERS.iter().enumerate() {
        zd.put_user(json!({
            "id": FIRST_CUSTOMER + c as u64,
            "name": name,
            "email": address(name, domain),
            "locale": locale,
            "role": "end-user",
        }));
    }
}

/// Where the account's Help Center shows its articles to people: a host of its own, as a brand's
/// Help Center has, so the links a scorecard gives do not change with the API's port.
const HELP_CENTER: &str = "https://help.sandbox.example";

/// An article's `html_url`: the Help Center's host, the locale, the id and the title's slug.
fn article_url(id: u64, title: &str, locale: &str) -> String {
    let slug: Vec<String> = title
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    format!("{HELP_CENTER}/hc/{locale}/articles/{id}-{}", slug.join("-"))
}

fn agent_id(partner: usize, agent: usize) -> u64 {
    FIRST_AGENT + (partner * 10 + agent) as u64
}

/// `first.last@domain`.
pub fn address(name: &str, domain: &str) -> String {
    format!("{}@{domain}", name.to_ascii_lowercase().replace(' ', "."))
}

/// The Help Center articles as the judge reads them (plain text bodies), seeded as Zendesk
/// holds them (HTML bodies).
fn help_center(zd: &FakeZendesk) -> Result<Vec<(u64, Article)>, SampleError> {
    let mut out = Vec::new();
    for (id, markdown) in ARTICLES {
        let a = crate::kb::local::parse_markdown(markdown)
            .map_err(|e| SampleError(format!("article {id}: {e}")))?;
        let published = a
            .published_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        let html: String = a
            .body
            .split("\n\n")
            .map(|p| {
                format!(
                    "<p>{}</p>",
                    crate::survey::email::escape_html(&p.replace('\n', " "))
                )
            })
            .collect();
        zd.put_article(json!({
            "id": id,
            "html_url": article_url(id, &a.title, &a.locale),
            "title": a.title,
            "body": html,
            "locale": a.locale,
            "draft": a.draft,
            "section_id": SECTION,
            "created_at": published,
            "updated_at": published,
        }));
        out.push((id, a));
    }
    Ok(out)
}

/// What the knowledge base gave the judge for one escalation.
enum Kb {
    /// An article at or above the threshold: the case was resolvable.
    Resolvable(u64, f64),
    /// An article between the review bound and the threshold: a person decides.
    Review(u64, f64),
    /// The closest article stayed below the review bound (`None`: no candidate at all).
    Below(Option<u64>, f64),
}

impl Writer<'_> {
    fn tags(&self) -> &TagsFile {
        &self.zendesk.tags
    }

    fn survey_tags(&self) -> &SurveyTags {
        &self.survey.fields.tags
    }

    /// One generated ticket, with everything the service, the reviewers and the survey wrote.
    fn ticket(
        &self,
        id: u64,
        created: DateTime<Utc>,
        today: DateTime<Utc>,
        articles: &[(u64, Article)],
        rng: &mut Rng,
        summary: &mut Summary,
    ) -> Result<Value, SampleError> {
        let direct = rng.chance(0.05);
        let p = rng.weighted(&PARTNERS.map(|p| p.share));
        let partner = &PARTNERS[p];
        let case = &CASES[rng.below(CASES.len())];
        let customer = rng.below(CUSTOMERS.len());
        let (c_name, c_domain, _) = CUSTOMERS[customer];
        let answered_then = case.answered_by.and_then(|a| {
            let published = articles.iter().find(|(i, _)| *i == a)?.1.published_at?;
            (published < created).then_some(a)
        });
        let escalated = !direct
            && match answered_then {
                Some(_) => rng.chance(partner.escalates_answered),
                None => rng.chance(0.85),
            };
        let mut fields = vec![
            ("steps_to_reproduce", case.steps.to_string()),
            ("environment", case.environment.to_string()),
            (
                "severity",
                ["low", "normal", "normal", "high"][rng.below(4)].to_string(),
            ),
            ("product", case.product.to_string()),
            (
                "version",
                format!("4.{}.{}", 1 + rng.below(2), rng.below(4)),
            ),
        ];
        if escalated && !rng.chance(partner.handoff) {
            let (field, value) = SLOPPY[rng.below(SLOPPY.len())];
            if let Some(f) = fields.iter_mut().find(|(n, _)| *n == field) {
                f.1 = value.to_string();
            }
        }
        let (requester, organization) = if direct {
            (FIRST_CUSTOMER + customer as u64, Value::Null)
        } else {
            fields.push(("end_customer_email", address(c_name, c_domain)));
            (agent_id(p, rng.below(2)), json!(partner.org_id))
        };
        let escalated_at = created
            + match rng.below(10) {
                0..7 => Duration::minutes(30 + rng.below(23 * 60) as i64),
                7..9 => Duration::hours(24 + rng.below(24) as i64),
                _ => Duration::hours(50 + rng.below(70) as i64),
            };
        let handled_from = if escalated { escalated_at } else { created };
        let solved_at = handled_from + Duration::hours(6 + rng.below(96) as i64);
        let mut t = json!({
            "id": id,
            "subject": case.subject,
            "description": case.description,
            "type": if rng.chance(0.2) { "question" } else { "incident" },
            "priority": "normal",
            "status": "closed",
            "tags": [],
            "requester_id": requester,
            "submitter_id": requester,
            "organization_id": organization,
            "created_at": stamp(created),
            "via": {"channel": "web"},
            "custom_fields": fields.iter().map(|(name, value)| {
                json!({"id": field_id(name), "value": value})
            }).collect::<Vec<_>>(),
        });
        let mut tags: Vec<String> = Vec::new();
        let mut comments = vec![comment(case.description, requester, created, true)];
        let mut audits = vec![audit(created, &[], &[("status", json!("new"))])];
        let mut last = created;
        if escalated {
            tags.push(ESCALATED_TAG.into());
            audits.push(audit(escalated_at, &tags, &[]));
            last = escalated_at;
            if rng.chance(0.06) {
                // The webhook was lost: no verdict; the case is still with the vendor.
                summary.unjudged += 1;
                t["status"] = json!(if rng.chance(0.5) { "open" } else { "hold" });
                return Ok(self.finish(t, tags, comments, audits, last));
            }
            summary.judged += 1;
            let judged_at = escalated_at + Duration::minutes(1);
            let kb = self.draw_kb(case.answered_by, answered_then, rng);
            t["tags"] = json!(tags);
            let (verdict, esc) = self.verdict(&t, partner.name, escalated_at, articles, &kb)?;
            tags.extend(self.tags().for_verdict(&verdict));
            if self.survey.rules.surveys(partner.name, true) {
                tags.push(self.survey_tags().pending.clone());
            }
            comments.push(comment(
                &note::render(&esc, &verdict),
                self.api_user,
                judged_at,
                false,
            ));
            audits.push(audit(judged_at, &tags, &[]));
            last = judged_at;
            if let Some((decision, overturn)) = review(&verdict, &kb, rng) {
                summary.reviewed += 1;
                let reviewed_at = judged_at + Duration::hours(4 + rng.below(60) as i64);
                self.reviewed(&mut tags, decision, overturn);
                let text = review_note(decision == Outcome::Good, overturn).unwrap_or_default();
                comments.push(comment(text, REVIEWER, reviewed_at, false));
                audits.push(audit(reviewed_at, &tags, &[]));
                last = last.max(reviewed_at);
            }
        }
        let solved_at = solved_at.max(last + Duration::hours(1));
        audits.push(audit(solved_at, &tags, &[("status", json!("solved"))]));
        last = solved_at;
        if !direct && self.survey.rules.surveys(partner.name, escalated) {
            let asked_at = solved_at + Duration::hours(24);
            tags.push(SURVEY_REQUESTED_TAG.into());
            let st = self.survey_tags().clone();
            match rng.below(100) {
                0..8 => {
                    tags.push(st.skipped.clone());
                    tags.push(format!("{}_throttled", st.skipped));
                }
                8..11 => {
                    tags.push(st.skipped.clone());
                    tags.push(format!("{}_opted_out", st.skipped));
                }
                _ => {
                    tags.push(st.sent.clone());
                    if rng.chance(0.38) {
                        summary.answered += 1;
                        let answered_at = asked_at + Duration::hours(2 + rng.below(40) as i64);
                        let answer = self.answer(partner.csat_shift, rng);
                        let answer_id = answer_id(self.connector, &id.to_string(), &answer);
                        let (add, remove) = st.answer_tags(&answer, &answer_id, &tags);
                        tags.retain(|t| !remove.contains(t));
                        tags.extend(add);
                        self.record_answer(&mut t, &answer);
                        comments.push(comment(
                            &answer_note(&answer, &answer_id),
                            self.api_user,
                            answered_at,
                            false,
                        ));
                        last = answered_at;
                    }
                }
            }
            audits.push(audit(asked_at, &tags, &[]));
            last = last.max(asked_at);
        }
        let closed_at = last + Duration::days(4);
        if closed_at > today {
            t["status"] = json!("solved");
        } else {
            audits.push(audit(closed_at, &tags, &[("status", json!("closed"))]));
            last = closed_at;
        }
        Ok(self.finish(t, tags, comments, audits, last))
    }

    fn finish(
        &self,
        mut t: Value,
        tags: Vec<String>,
        comments: Vec<Value>,
        audits: Vec<Value>,
        last: DateTime<Utc>,
    ) -> Value {
        t["tags"] = json!(tags);
        t["comments"] = json!(comments);
        t["audits"] = json!(audits);
        t["updated_at"] = json!(stamp(last));
        t
    }

    /// Which article the knowledge base gave the judge, and how sure it was: `answers` is the
    /// article that answers the case, `published` the same when it was published before the
    /// escalation.
    fn draw_kb(&self, answers: Option<u64>, published: Option<u64>, rng: &mut Rng) -> Kb {
        let kb = &self.valid.policy.kb;
        match (answers, published) {
            // Three in four above the threshold; the rest in the upper part of the review band.
            (_, Some(a)) if rng.chance(0.75) => Kb::Resolvable(a, rng.between(kb.threshold, 0.995)),
            (_, Some(a)) => {
                let low = kb.review_bound + 0.7 * (kb.threshold - kb.review_bound);
                Kb::Review(a, rng.between(low, kb.threshold))
            }
            // Answered only by an article published later: it is excluded, another came closest.
            _ => {
                let conf = rng.between(0.02, kb.review_bound + 0.04);
                let closest = ARTICLES[rng.below(ARTICLES.len())].0;
                if conf >= kb.review_bound {
                    Kb::Review(closest, conf)
                } else {
                    Kb::Below(Some(closest).filter(|_| conf > 0.05), conf)
                }
            }
        }
    }

    /// The verdict the service would have reached on ticket `t` (its hand-off checked by the
    /// connector's rules, its knowledge-base part `kb`), with the escalation it judged.
    fn verdict(
        &self,
        t: &Value,
        partner: &str,
        escalated_at: DateTime<Utc>,
        articles: &[(u64, Article)],
        kb: &Kb,
    ) -> Result<(Verdict, crate::escalation::Escalation), SampleError> {
        let org = PARTNERS
            .iter()
            .find(|p| p.name == partner)
            .map(|p| p.org_id);
        let snapshot = json!({
            "ticket": t,
            "organizations": [{"id": org, "name": partner}],
        });
        let esc = map_ticket(self.connector, self.zendesk, &snapshot, escalated_at)
            .map_err(|e| SampleError(format!("ticket {}: {e}", t["id"])))?;
        let policy = &self.valid.policy;
        let found = |id: u64, confidence: f64| -> Result<KbMatch, SampleError> {
            let (_, a) = articles
                .iter()
                .find(|(i, _)| *i == id)
                .ok_or_else(|| SampleError(format!("no Help Center article {id}")))?;
            Ok(KbMatch {
                article_id: id.to_string(),
                title: a.title.clone(),
                url: article_url(id, &a.title, &a.locale),
                passage: a.body.split("\n\n").next().unwrap_or_default().to_string(),
                confidence,
                signals: Vec::new(),
            })
        };
        let (resolvable_by, review, best_other) = match kb {
            Kb::Resolvable(a, c) => (Some(found(*a, *c)?), None, None),
            Kb::Review(a, c) => (None, Some(found(*a, *c)?), Some(found(*a, *c)?)),
            Kb::Below(a, c) => (None, None, a.map(|a| found(a, *c)).transpose()?),
        };
        let mut reasons = Vec::new();
        let failures = policy.handoff.check(&esc);
        if !failures.is_empty() {
            reasons.push(Reason::MissingHandoff { failures });
        }
        if let Some(article) = &resolvable_by {
            reasons.push(Reason::KbResolvable {
                article: article.clone(),
            });
        }
        let outcome = if !reasons.is_empty() {
            Outcome::Bad
        } else if review.is_some() {
            Outcome::Review
        } else {
            Outcome::Good
        };
        let best = best_other.as_ref().map_or(0.0, |m| m.confidence);
        let verdict = Verdict {
            outcome,
            reasons,
            flags: Flags {
                late: esc.escalated_at - esc.opened_at > policy.late_after,
                kb_gap: outcome == Outcome::Good && best < policy.kb.gap_below,
            },
            hours_to_escalation: (esc.escalated_at - esc.opened_at).num_hours(),
            kb: KbFindings {
                resolvable_by,
                review,
                best_other,
                tried: Vec::new(),
                related: Vec::new(),
                excluded: Vec::new(),
                threshold: policy.kb.threshold,
                review_bound: policy.kb.review_bound,
                calibration: None,
                mirror_fallback: None,
            },
        };
        Ok((verdict, esc))
    }

    /// The tags a reviewer macro sets: the decision, and the overturn reason.
    fn reviewed(&self, tags: &mut Vec<String>, decision: Outcome, overturn: Option<&str>) {
        let p = &self.tags().reason_prefix;
        tags.push(match decision {
            Outcome::Bad => format!("{p}{REVIEWED_BAD}"),
            _ => format!("{p}{REVIEWED_GOOD}"),
        });
        tags.extend(overturn.map(|o| format!("{p}{OVERTURN}{o}")));
    }

    /// A customer's answer: scores around the partner's level, what it is about, a comment
    /// now and then.
    fn answer(&self, shift: i32, rng: &mut Rng) -> Answer {
        let base = [3, 4, 4, 5, 5, 2, 4, 3][rng.below(8)];
        let csat = (base + shift).clamp(1, 5) as u8;
        Answer {
            csat,
            ces: Some((i32::from(csat) + 1 + rng.below(2) as i32).clamp(1, 7) as u8),
            about: [
                Some(About::Support),
                Some(About::Support),
                Some(About::Product),
                Some(About::Both),
                None,
            ][rng.below(5)],
            comment: rng
                .chance(0.4)
                .then(|| COMMENTS[rng.below(COMMENTS.len())].to_string()),
        }
    }

    /// The answer in the ticket sink's fields, as the survey writes it.
    fn record_answer(&self, t: &mut Value, a: &Answer) {
        let f = &self.survey.fields;
        let values = [
            (&f.csat, json!(a.csat)),
            (&f.ces, json!(a.ces)),
            (&f.about, json!(a.about.map(|x| x.as_str()))),
            (&f.comment, json!(a.comment)),
        ];
        let Some(custom) = t["custom_fields"].as_array_mut() else {
            return;
        };
        for (name, value) in values {
            if let Some(name) = name {
                custom.push(json!({"id": field_id(name), "value": value}));
            }
        }
    }
}

/// A person's decision on a verdict, drawn from what is true of the case: an article the judge
/// was not very sure of answers the case less often. `None`: not reviewed.
fn review(v: &Verdict, kb: &Kb, rng: &mut Rng) -> Option<(Outcome, Option<&'static str>)> {
    let handoff = v
        .reasons
        .iter()
        .any(|r| matches!(r, Reason::MissingHandoff { .. }));
    let (looked_at, truly_bad) = match (v.outcome, kb) {
        (Outcome::Review, Kb::Review(_, c)) => (0.85, *c > 0.5 && rng.chance(0.55)),
        (Outcome::Review, _) => (0.85, rng.chance(0.1)),
        (Outcome::Bad, _) if handoff => (0.25, rng.chance(0.92)),
        (Outcome::Bad, Kb::Resolvable(_, c)) => {
            (0.5, rng.chance(if *c >= 0.97 { 0.95 } else { 0.6 }))
        }
        _ => (0.12, rng.chance(0.06)),
    };
    if !rng.chance(looked_at) {
        return None;
    }
    let decision = if truly_bad {
        Outcome::Bad
    } else {
        Outcome::Good
    };
    let overturn = match (v.outcome, decision) {
        (Outcome::Bad, Outcome::Good) if handoff => Some("handoff_complete"),
        (Outcome::Bad, Outcome::Good) => Some("kb_not_applicable"),
        (Outcome::Good, Outcome::Bad) => Some("kb_resolvable"),
        _ => None,
    };
    Some((decision, overturn))
}

/// A comment as the fake seeds it.
fn comment(body: &str, author: u64, at: DateTime<Utc>, public: bool) -> Value {
    json!({"body": body, "author_id": author, "created_at": stamp(at), "public": public})
}

/// An audit at `at` that sets the ticket's tags to `tags` and the given fields.
fn audit(at: DateTime<Utc>, tags: &[String], fields: &[(&str, Value)]) -> Value {
    let mut events = vec![json!({"type": "Change", "field_name": "tags", "value": tags})];
    events.extend(
        fields
            .iter()
            .map(|(k, v)| json!({"type": "Change", "field_name": k, "value": v})),
    );
    json!({"created_at": stamp(at), "events": events})
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// New escalations as partners hand them over while the sandbox runs.
pub struct Arrivals {
    rng: Rng,
}

impl Arrivals {
    pub fn new(seed: u64) -> Arrivals {
        Arrivals {
            rng: Rng::new(mix(seed)),
        }
    }

    /// A partner's agent hands a case over now: the ticket is created on `zendesk` (its
    /// triggers run). Returns its id.
    pub fn arrive(&mut self, zendesk: &Handle) -> u64 {
        zendesk.submit(self.escalation())
    }

    /// The next escalation, as [`Handle::submit`] takes it.
    fn escalation(&mut self) -> Value {
        let rng = &mut self.rng;
        let p = rng.weighted(&PARTNERS.map(|p| p.share));
        let partner = &PARTNERS[p];
        let case = &CASES[rng.below(CASES.len())];
        let (name, domain, _) = CUSTOMERS[rng.below(CUSTOMERS.len())];
        let mut fields = [
            ("steps_to_reproduce", case.steps.to_string()),
            ("environment", case.environment.to_string()),
            ("severity", "normal".to_string()),
            ("product", case.product.to_string()),
            ("version", "4.2.1".to_string()),
            ("end_customer_email", address(name, domain)),
        ];
        if !rng.chance(partner.handoff) {
            let (field, value) = SLOPPY[rng.below(SLOPPY.len())];
            if let Some(f) = fields.iter_mut().find(|(n, _)| *n == field) {
                f.1 = value.to_string();
            }
        }
        let agent = agent_id(p, rng.below(2));
        json!({
            "subject": case.subject,
            "description": case.description,
            "type": "incident",
            "priority": "normal",
            "status": "open",
            "tags": [ESCALATED_TAG],
            "requester_id": agent,
            "submitter_id": agent,
            "organization_id": partner.org_id,
            "via": {"channel": "web"},
            "custom_fields": fields.iter().map(|(name, value)| {
                json!({"id": field_id(name), "value": value})
            }).collect::<Vec<_>>(),
        })
    }
}
