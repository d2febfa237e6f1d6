//! A connector at run time: its helpdesk, its knowledge base and its policy, and the one path
//! every escalation takes through them.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use tracing::Instrument;

use crate::assess::kb::rescore::clean_query;
use crate::assess::{Policy, Verdict, assess, note};
use crate::config::{KbBackend, SweepSettings, ValidConnector};
use crate::escalation::Escalation;
use crate::helpdesk::{Helpdesk, ProcessError, Processed, TicketRef, Written};
use crate::kb::http::HttpKb;
use crate::kb::local::LocalIndex;
use crate::kb::{KbError, KnowledgeBase};
use crate::metrics as m;
use crate::survey::Survey;

pub struct Connector {
    pub id: String,
    pub helpdesk: Arc<dyn Helpdesk>,
    pub kb: Arc<dyn KnowledgeBase>,
    pub policy: Policy,
    pub max_candidates: usize,
    /// The blind survey, when the connector has a `[survey]` table.
    pub survey: Option<Arc<Survey>>,
    /// The sweep for escalations whose webhook never arrived, when it has a `[sweep]` table.
    pub sweep: Option<SweepSettings>,
    /// The contract terms `report` measures partners against (`[report]`).
    pub contracts: crate::report::contracts::Contracts,
}

/// Connectors by id, as `/hooks/{id}` routes to them.
pub type Connectors = Arc<HashMap<String, Arc<Connector>>>;

/// The query and the locale an escalation's knowledge base is searched with: the cleaned case
/// text, and the requester's locale or the connector's default. `eval` searches with the same.
pub fn kb_query(esc: &Escalation, default_locale: &str) -> (String, String) {
    let locale = esc
        .requester
        .locale
        .clone()
        .unwrap_or_else(|| default_locale.to_string());
    (clean_query(&esc.case_text()), locale)
}

impl Connector {
    /// Builds clients and the embedded index (reads the article folder; no network).
    pub fn build(valid: ValidConnector) -> anyhow::Result<Connector> {
        let id = valid.id.clone();
        let helpdesk = valid
            .helpdesk
            .build(&id)
            .with_context(|| format!("connector {id}: building the HTTP client"))?;
        let kb: Arc<dyn KnowledgeBase> = match &valid.kb_backend {
            KbBackend::Local(dir) => Arc::new(
                LocalIndex::from_dir(dir)
                    .with_context(|| format!("connector {id}: building the knowledge base"))?,
            ),
            KbBackend::Http(settings) => Arc::new(
                HttpKb::new((**settings).clone())
                    .with_context(|| format!("connector {id}: building the HTTP client"))?,
            ),
            KbBackend::Helpdesk => helpdesk.knowledge_base().with_context(|| {
                format!("connector {id}: its helpdesk has no knowledge base API configured")
            })?,
        };
        let survey = match valid.survey {
            None => None,
            Some(settings) => {
                let desk = helpdesk.survey_desk(&settings.fields).with_context(|| {
                    format!(
                        "connector {id}: its helpdesk ({}) does not support the survey",
                        helpdesk.kind()
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
            policy: valid.policy,
            max_candidates: valid.max_candidates,
            survey,
            sweep: valid.sweep,
            contracts: valid.contracts,
        })
    }

    /// Searches the knowledge base and judges the escalation.
    pub async fn judge(&self, esc: &Escalation) -> Result<Verdict, KbError> {
        let (query, locale) = kb_query(esc, &self.policy.kb.default_locale);
        let candidates = self
            .kb
            .search(&query, Some(&locale), self.max_candidates)
            .await?;
        Ok(assess(esc, &self.policy, &candidates))
    }

    /// Reads, judges and writes back one ticket. Nothing is written twice: a ticket that already
    /// carries a verdict is left as it is.
    pub async fn process(&self, ticket: &TicketRef) -> Result<Processed, ProcessError> {
        let span =
            tracing::info_span!("ticket", ticket = %ticket.id, partner = tracing::field::Empty);
        async {
            let _turn = crate::ticket_lock::lock(&self.id, &ticket.id).await;
            let mut loaded = self.helpdesk.load(ticket).await?;
            loaded.escalation.escalated_at_unknown = ticket.escalated_at_unknown;
            tracing::Span::current().record("partner", loaded.escalation.partner.as_str());
            if let Some(outcome) = loaded.judged.clone() {
                tracing::info!(verdict = %outcome, "Ticket already carries a verdict; nothing written");
                return Ok(Processed {
                    outcome,
                    written: Written::Already,
                    verdict: None,
                });
            }
            let verdict = self.judge(&loaded.escalation).await?;
            let text = note::render(&loaded.escalation, &verdict);
            let pending = self
                .survey
                .as_ref()
                .and_then(|s| s.pending_mark(&loaded.escalation.partner));
            let written = self
                .helpdesk
                .write_back(&loaded, &verdict, &text, pending)
                .await?;
            if written != Written::Already {
                m::verdict(&self.id, &loaded.escalation.partner, &verdict);
            }
            tracing::info!(
                verdict = verdict.outcome.as_str(),
                reasons = ?verdict.reasons.iter().map(|r| r.name()).collect::<Vec<_>>(),
                written = ?written,
                "Escalation judged"
            );
            Ok(Processed {
                outcome: verdict.outcome.as_str().to_string(),
                written,
                verdict: Some(verdict),
            })
        }
        .instrument(span)
        .await
    }
}
