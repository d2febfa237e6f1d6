//! A connector at run time: its helpdesk, its knowledge base and its policy, and the one path
//! every escalation takes through them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tracing::Instrument;

use crate::assess::kb::query::kb_query;
use crate::assess::{Outcome, Policy, Verdict, assess, note};
use crate::config::contracts::Contracts;
use crate::config::precheck::PrecheckSettings;
use crate::config::{ConnectorId, SweepSettings, ValidConnector};
use crate::escalation::Escalation;
use crate::helpdesk::{Helpdesk, HelpdeskError, TicketRef, Written};
use crate::kb::KbBackend;
use crate::kb::http::HttpKb;
use crate::kb::local::LocalIndex;
use crate::kb::local::lifecycle::{LocalKb, Status};
use crate::kb::mirror::Mirror;
use crate::kb::{KbError, KnowledgeBase};
use crate::metrics as m;
use crate::runtime::judge_pool::{JudgePool, PoolError};
use crate::survey::Survey;

pub struct Connector {
    pub id: ConnectorId,
    pub helpdesk: Helpdesk,
    pub kb: Kb,
    pub policy: Arc<Policy>,
    pub max_candidates: usize,
    /// The blind survey, when the connector has a `[survey]` table.
    pub survey: Option<Arc<Survey>>,
    /// The sweep for escalations whose webhook never arrived, when it has a `[sweep]` table.
    pub sweep: Option<SweepSettings>,
    /// The contract terms `report` measures partners against (`[report]`).
    pub contracts: Contracts,
    /// The threads that search the embedded index and re-score candidates.
    pub judges: Arc<JudgePool>,
    /// The check of a draft escalation before it is sent, when it has a `[precheck]` table.
    pub precheck: Option<PrecheckSettings>,
}

/// A connector's knowledge base at run time.
pub enum Kb {
    /// The embedded index, searched on the judge's threads.
    Local(Arc<LocalKb>),
    /// A search API (the helpdesk's, or any JSON one), awaited on the async side.
    Remote(Arc<dyn KnowledgeBase>),
    /// A mirror of the helpdesk's own knowledge base, searched as the embedded index is; until
    /// its first sync completes, the helpdesk's own search (when it has one) serves.
    Mirror {
        mirror: Arc<Mirror>,
        fallback: Option<Arc<dyn KnowledgeBase>>,
    },
}

/// What connectors share at run time: where embedded indexes are kept and the judge's threads.
#[derive(Clone)]
pub struct Runtime {
    /// Each local knowledge base's index is kept in `{index_dir}/{connector}/` and reused while
    /// its articles do not change; `None` builds it in memory at every start.
    pub index_dir: Option<PathBuf>,
    pub judges: Arc<JudgePool>,
}

impl Default for Runtime {
    /// Indexes in memory, and the shared judge pool.
    fn default() -> Runtime {
        Runtime {
            index_dir: None,
            judges: JudgePool::shared(),
        }
    }
}

/// The outcome for one ticket of a delivery.
#[derive(Debug)]
pub struct TicketOutcome {
    pub ticket: String,
    pub result: Result<Processed, ProcessError>,
}

/// What [`Connector::process`] did with a ticket.
#[derive(Debug, Clone)]
pub struct Processed {
    pub outcome: Outcome,
    pub written: Written,
    pub verdict: Option<Verdict>,
    /// The internal note of the verdict (as written, or as it would be with `write_back = "log"`).
    pub note: Option<String>,
    /// The escalation as read from the ticket (under the ticket's lock).
    pub escalation: Escalation,
}

/// Why [`Connector::process`] could not finish a ticket.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Helpdesk(#[from] HelpdeskError),
    #[error(transparent)]
    Kb(#[from] KbError),
    #[error(transparent)]
    Judge(#[from] PoolError),
}

impl ProcessError {
    /// Whether the helpdesk should deliver again later.
    pub fn retryable(&self) -> bool {
        match self {
            ProcessError::Helpdesk(e) => e.retryable(),
            ProcessError::Kb(_) | ProcessError::Judge(_) => true,
        }
    }

    /// Whether the delivery is answered as done although the ticket is not (see
    /// [`HelpdeskError::deferred`]).
    pub fn deferred(&self) -> bool {
        matches!(self, ProcessError::Helpdesk(e) if e.deferred())
    }

    /// The `reason` label of a retried delivery (see [`crate::http::UpstreamError::reason`];
    /// `kb`: the knowledge base).
    pub fn reason(&self) -> &'static str {
        match self {
            ProcessError::Helpdesk(e) => e.reason(),
            ProcessError::Kb(_) => "kb",
            ProcessError::Judge(PoolError::Busy) => "busy",
            ProcessError::Judge(PoolError::Failed) => "failed",
        }
    }

    pub fn retry_after_secs(&self) -> u64 {
        match self {
            ProcessError::Helpdesk(HelpdeskError::Upstream(e)) => {
                e.retry_after().map_or(60, |d| d.as_secs().max(1))
            }
            // A full queue drains in well under a second.
            ProcessError::Judge(PoolError::Busy) => 5,
            _ => 60,
        }
    }
}

/// Articles found gone in one judgement before the judge stops asking (and judges without them).
const MAX_GONE_PER_JUDGEMENT: usize = 3;

/// Connectors by id, as `/hooks/{id}` routes to them.
pub type Connectors = Arc<HashMap<ConnectorId, Arc<Connector>>>;

impl Connector {
    /// [`Connector::build_with`] the default [`Runtime`]: an embedded index is built in memory.
    pub fn build(valid: ValidConnector) -> anyhow::Result<Connector> {
        Connector::build_with(valid, &Runtime::default())
    }

    /// Builds clients and starts the embedded index: opened from its folder when the articles
    /// have not changed, otherwise built on a thread of its own (reads the article folder; no
    /// network). [`Connector::can_judge`] says when it is ready.
    pub fn build_with(valid: ValidConnector, runtime: &Runtime) -> anyhow::Result<Connector> {
        let id = valid.id.clone();
        let helpdesk = valid
            .helpdesk
            .build(&id, valid.survey.as_ref().map(|s| &s.fields))
            .with_context(|| format!("connector {id}: building the HTTP client"))?;
        // The connector's folder of the persisted index (or mirror), when indexes persist.
        let folder = runtime.index_dir.as_ref().map(|d| d.join(id.as_str()));
        let kb = match &valid.kb_backend {
            KbBackend::Local(dir) => Kb::Local(
                LocalKb::start(&id, dir, folder.as_deref())
                    .with_context(|| format!("connector {id}: building the knowledge base"))?,
            ),
            KbBackend::Http(settings) => Kb::Remote(Arc::new(
                HttpKb::new((**settings).clone())
                    .with_context(|| format!("connector {id}: building the HTTP client"))?,
            )),
            KbBackend::Helpdesk => {
                Kb::Remote(helpdesk.knowledge_base.clone().with_context(|| {
                    format!("connector {id}: its helpdesk has no knowledge base API configured")
                })?)
            }
            KbBackend::Mirror(settings) => {
                let source = helpdesk.kb_source.clone().with_context(|| {
                    format!(
                        "connector {id}: its helpdesk ({}) has no knowledge base API configured to mirror",
                        helpdesk.kind
                    )
                })?;
                Kb::Mirror {
                    mirror: Mirror::open(&id, source, folder.as_deref(), settings.clone()),
                    fallback: helpdesk.knowledge_base.clone(),
                }
            }
        };
        warm_up_judge();
        let survey = match valid.survey {
            None => None,
            Some(settings) => {
                let desk = helpdesk.survey_desk.clone().with_context(|| {
                    format!(
                        "connector {id}: its helpdesk ({}) does not support the survey",
                        helpdesk.kind
                    )
                })?;
                Some(Arc::new(Survey::build(&id, settings, desk).with_context(
                    || format!("connector {id}: building the survey"),
                )?))
            }
        };
        let named = valid
            .metric_partners
            .iter()
            .chain(survey.iter().flat_map(|s| &s.settings.rules.partners))
            .chain(
                valid
                    .policy
                    .handoff
                    .overrides
                    .iter()
                    .filter_map(|o| match &o.scope {
                        crate::assess::handoff::Scope::Partner(p) => Some(p),
                        crate::assess::handoff::Scope::Product(_) => None,
                    }),
            );
        m::name_partners(&id, named.map(String::as_str));
        Ok(Connector {
            id,
            helpdesk,
            kb,
            policy: Arc::new(valid.policy),
            max_candidates: valid.max_candidates,
            survey,
            sweep: valid.sweep,
            contracts: valid.contracts,
            judges: Arc::clone(&runtime.judges),
            precheck: valid.precheck,
        })
    }

    /// The embedded knowledge base's state; `None` for a search API (it is asked per case).
    pub fn kb_status(&self) -> Option<Status> {
        match &self.kb {
            Kb::Local(kb) => Some(kb.status()),
            Kb::Remote(_) | Kb::Mirror { .. } => None,
        }
    }

    /// The mirror's state, for a connector that mirrors its helpdesk's knowledge base.
    pub fn mirror(&self) -> Option<&Arc<Mirror>> {
        match &self.kb {
            Kb::Mirror { mirror, .. } => Some(mirror),
            Kb::Local(_) | Kb::Remote(_) => None,
        }
    }

    /// Whether an escalation could be judged now: an embedded index serves, or a mirror (or,
    /// until its first sync, the helpdesk's own search).
    pub fn can_judge(&self) -> bool {
        match &self.kb {
            Kb::Local(kb) => kb.index().is_some(),
            Kb::Remote(_) => true,
            Kb::Mirror { mirror, fallback } => fallback.is_some() || mirror.index().is_some(),
        }
    }

    /// Waits until the connector can judge; the error when its index could not be built. A
    /// mirror that never completed a sync runs one first; when that fails, the helpdesk's own
    /// search serves (if it has one).
    pub async fn ready(&self) -> anyhow::Result<()> {
        match &self.kb {
            Kb::Local(kb) => kb.ready().await.map_err(|e| {
                anyhow::anyhow!(
                    "connector {}: the knowledge base has no index: {e}",
                    self.id
                )
            })?,
            Kb::Mirror { mirror, fallback } => {
                if let Some(Err(e)) = mirror.ensure().await {
                    if fallback.is_none() {
                        anyhow::bail!("connector {}: the knowledge-base mirror: {e}", self.id);
                    }
                    tracing::warn!(connector = %self.id, error = %e, "The knowledge-base mirror has no first copy; the helpdesk's own search serves");
                }
            }
            Kb::Remote(_) => {}
        }
        Ok(())
    }

    /// Searches the knowledge base and judges the escalation. The search of the embedded index
    /// and the judgement run on the judge's threads, never on the async workers.
    pub async fn judge(&self, esc: &Escalation) -> Result<Verdict, ProcessError> {
        match &self.kb {
            Kb::Local(kb) => {
                let index = kb.index().ok_or_else(|| {
                    KbError::Unavailable("the knowledge-base index is still being built".into())
                })?;
                self.judge_in(index, esc, HashSet::new()).await
            }
            Kb::Remote(kb) => self.judge_remote(kb.as_ref(), esc).await,
            Kb::Mirror { mirror, fallback } => match (mirror.index(), fallback) {
                (Some(index), _) => self.judge_mirrored(mirror, index, esc).await,
                (None, Some(remote)) => {
                    m::kb_mirror_fallback(&self.id);
                    let mut verdict = self.judge_remote(remote.as_ref(), esc).await?;
                    verdict.kb.mirror_fallback = Some(
                        match mirror.status(chrono::Utc::now()).error {
                            Some(_) => "its last sync failed before completing a first copy",
                            None => "its first sync has not completed yet",
                        }
                        .to_string(),
                    );
                    Ok(verdict)
                }
                (None, None) => Err(KbError::Unavailable(
                    "the knowledge-base mirror has not completed a first sync".into(),
                )
                .into()),
            },
        }
    }

    /// Judges with the mirror, as of the escalation. For an escalation after the last sync, an
    /// article that would make it bad is confirmed public with the helpdesk first (where its
    /// passes of changes do not list removals), and the escalation judged again without it when
    /// it is gone. An earlier escalation (`backfill`) is judged on the mirror as it stood: what
    /// was withdrawn since still counts for it.
    async fn judge_mirrored(
        &self,
        mirror: &Mirror,
        index: Arc<LocalIndex>,
        esc: &Escalation,
    ) -> Result<Verdict, ProcessError> {
        if mirror.last_sync().is_some_and(|t| esc.escalated_at < t) {
            return self.judge_in(index, esc, HashSet::new()).await;
        }
        let mut gone = mirror.gone();
        for _ in 0..MAX_GONE_PER_JUDGEMENT {
            let verdict = self.judge_in(Arc::clone(&index), esc, gone.clone()).await?;
            match &verdict.kb.resolvable_by {
                Some(m) if !mirror.confirm(&m.article_id).await => {
                    gone.insert(m.article_id.clone());
                }
                _ => return Ok(verdict),
            }
        }
        self.judge_in(index, esc, gone).await
    }

    /// Searches an embedded index and judges, on the judge's threads; the `gone` articles are
    /// no candidates.
    async fn judge_in(
        &self,
        index: Arc<LocalIndex>,
        esc: &Escalation,
        gone: HashSet<String>,
    ) -> Result<Verdict, ProcessError> {
        let esc = esc.clone();
        let policy = Arc::clone(&self.policy);
        let limit = self.max_candidates;
        let judged = self
            .judges
            .run(move || {
                let (query, locale) = kb_query(&esc, &policy.kb.default_locale);
                let mut candidates = index.search_at(
                    &query,
                    Some(&locale),
                    limit + gone.len(),
                    Some(esc.escalated_at),
                )?;
                candidates.retain(|a| !gone.contains(a.id));
                candidates.truncate(limit);
                Ok::<_, KbError>(assess(&esc, &policy, &candidates))
            })
            .await?;
        Ok(judged?)
    }

    /// Asks a search API for candidates, then judges on the judge's threads.
    async fn judge_remote(
        &self,
        kb: &dyn KnowledgeBase,
        esc: &Escalation,
    ) -> Result<Verdict, ProcessError> {
        let esc = esc.clone();
        let policy = Arc::clone(&self.policy);
        let (query, locale) = kb_query(&esc, &policy.kb.default_locale);
        let candidates = kb
            .search(&query, Some(&locale), self.max_candidates)
            .await?;
        Ok(self
            .judges
            .run(move || assess(&esc, &policy, &candidates))
            .await?)
    }

    /// Reads, judges and writes back one ticket. Nothing is written twice: a ticket that already
    /// carries a verdict is left as it is.
    pub async fn process(&self, ticket: &TicketRef) -> Result<Processed, ProcessError> {
        let span =
            tracing::info_span!("ticket", ticket = %ticket.id, partner = tracing::field::Empty);
        async {
            let _turn = crate::ticket_lock::lock(&self.id, &ticket.id).await;
            let mut loaded = self.helpdesk.tickets.load(ticket).await?;
            loaded.escalation.escalated_at_unknown = ticket.escalated_at_unknown;
            tracing::Span::current().record("partner", loaded.escalation.partner.as_str());
            if let Some(outcome) = loaded.judged {
                tracing::info!(
                    verdict = outcome.as_str(),
                    "Ticket already carries a verdict; nothing written"
                );
                return Ok(Processed {
                    outcome,
                    written: Written::Already,
                    verdict: None,
                    note: None,
                    escalation: loaded.escalation,
                });
            }
            let verdict = self.judge(&loaded.escalation).await?;
            let text = note::render_prechecked(
                &loaded.escalation,
                &verdict,
                loaded.prechecked.map(|p| p.said),
            );
            let pending = self
                .survey
                .as_ref()
                .and_then(|s| s.pending_mark(&loaded.escalation.partner));
            let written = self
                .helpdesk
                .tickets
                .write_back(&loaded, &verdict, &text, pending)
                .await
                .map_err(|e| match e {
                    // Without a verdict on it, the ticket is the sweep's again.
                    HelpdeskError::NeedsAdmin { fix, .. } => HelpdeskError::NeedsAdmin {
                        fix,
                        swept: self.sweep.is_some(),
                    },
                    e => e,
                })?;
            if written != Written::Already {
                let reasons: Vec<&str> = verdict.reasons.iter().map(|r| r.name()).collect();
                let articles: Vec<&str> = verdict
                    .reasons
                    .iter()
                    .filter_map(|r| match r {
                        crate::assess::Reason::KbResolvable { article } => {
                            Some(article.article_id.as_str())
                        }
                        crate::assess::Reason::MissingHandoff { .. } => None,
                    })
                    .collect();
                let flags: Vec<&str> = verdict.flags.names().collect();
                m::verdict(
                    &self.id,
                    &loaded.escalation.partner,
                    verdict.outcome.as_str(),
                    &reasons,
                    &articles,
                    &flags,
                );
                if let Some(checked) = loaded.prechecked {
                    m::prechecked_escalation(
                        &self.id,
                        &loaded.escalation.partner,
                        checked.said.as_str(),
                        verdict.outcome.as_str(),
                    );
                }
            }
            tracing::info!(
                verdict = verdict.outcome.as_str(),
                reasons = ?verdict.reasons.iter().map(|r| r.name()).collect::<Vec<_>>(),
                written = ?written,
                "Escalation judged"
            );
            Ok(Processed {
                outcome: verdict.outcome,
                written,
                verdict: Some(verdict),
                note: Some(text),
                escalation: loaded.escalation,
            })
        }
        .instrument(span)
        .await
    }
}

/// Runs the judge once on a made-up case, so its compiled-in word list and expressions are
/// ready before the first webhook instead of costing it their set-up.
fn warm_up_judge() {
    static WARM: std::sync::Once = std::sync::Once::new();
    WARM.call_once(|| {
        let article = crate::kb::Article { withdrawn_at: None,
            id: "warm-up".into(),
            title: "Sync stops with error E1234".into(),
            body: "Calendar sync stops after a password change. Reconnect the account.".into(),
            url: String::new(),
            locale: "en".into(),
            published_at: Some(chrono::DateTime::UNIX_EPOCH),
            draft: false,
        };
        let esc = Escalation::from_text(
            "warm-up",
            "warm-up",
            "Calendar sync error E1234\nHi team,\nsync stops since the password change.\n> quoted\nThanks",
            chrono::DateTime::UNIX_EPOCH,
        );
        let settings = crate::assess::kb::KbSettings {
            threshold: 1.0,
            review_bound: 1.0,
            gap_below: 0.0,
            default_locale: "en".into(),
            calibration: crate::assess::kb::rescore::Calibration::global(),
        };
        let _ = crate::assess::kb::judge(&esc, &[article], &settings);
    });
}
