//! The helpdesks escalation-gate serves: one line each. A line names the helpdesk's `type` in a
//! connector file (the variant, in snake case) and its `[helpdesk]` table's type, which
//! implements [`HelpdeskFile`]. Nothing else in the crate lists the helpdesks.

use serde::Deserialize;

use super::{Helpdesk, HelpdeskFile, SearchTerms, ValidHelpdeskFile};
use crate::checks::Problem;
use crate::kb::KbBackend;
use crate::survey::config::SurveyFields;

macro_rules! helpdesks {
    ($($variant:ident => $file:ty,)+) => {
        /// The `[helpdesk]` table, by its `type`. Built once at start-up: variant sizes do not
        /// matter.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum HelpdeskConfig {
            $($variant($file),)+
        }

        /// A validated `[helpdesk]` table: nothing built, no network touched.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug)]
        pub enum ValidHelpdesk {
            $($variant(<$file as HelpdeskFile>::Valid),)+
        }

        impl HelpdeskConfig {
            /// Validates the table (see [`HelpdeskFile::validate`]).
            pub fn validate(
                self,
                kb: &KbBackend,
                known_fields: &mut Vec<String>,
                problems: &mut Vec<Problem>,
            ) -> Option<ValidHelpdesk> {
                match self {
                    $(HelpdeskConfig::$variant(c) => HelpdeskFile::validate(
                        c,
                        kb,
                        known_fields,
                        problems,
                    )
                    .map(ValidHelpdesk::$variant),)+
                }
            }
        }

        impl ValidHelpdesk {
            fn table(&self) -> &dyn ValidHelpdeskFile {
                match self {
                    $(ValidHelpdesk::$variant(c) => c,)+
                }
            }

            /// See [`ValidHelpdeskFile::with_survey`].
            pub fn with_survey(&mut self, fields: &SurveyFields, problems: &mut Vec<Problem>) {
                match self {
                    $(ValidHelpdesk::$variant(c) => {
                        ValidHelpdeskFile::with_survey(c, fields, problems)
                    })+
                }
            }

            /// Builds the helpdesk's roles (see [`ValidHelpdeskFile::build`]).
            pub fn build(
                self,
                connector: &str,
                survey: Option<&SurveyFields>,
            ) -> Result<Helpdesk, reqwest::Error> {
                match self {
                    $(ValidHelpdesk::$variant(c) => ValidHelpdeskFile::build(c, connector, survey),)+
                }
            }
        }
    };
}

helpdesks! {
    Zendesk => super::zendesk::config::ZendeskConfig,
    Salesforce => super::salesforce::config::SalesforceConfig,
    Freshdesk => super::freshdesk::config::FreshdeskConfig,
}

impl crate::checks::typed::Tagged for HelpdeskConfig {
    const TAG: &'static str = "type";
}

impl ValidHelpdesk {
    /// See [`ValidHelpdeskFile::has_api`].
    pub fn has_api(&self) -> bool {
        self.table().has_api()
    }

    /// See [`ValidHelpdeskFile::search_terms`].
    pub fn search_terms(&self) -> SearchTerms {
        self.table().search_terms()
    }

    /// See [`ValidHelpdeskFile::reads_back`].
    pub fn reads_back(&self) -> Result<(), &'static str> {
        self.table().reads_back()
    }

    /// Whether this helpdesk can be swept with `query`: it needs its API, and the search terms
    /// when its tickets role takes them (refused when it does not).
    pub fn can_sweep(&self, query: Option<&str>) -> Result<(), Problem> {
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        if !self.has_api() {
            return Err(Problem::new(
                "sweep",
                "the sweep reads the helpdesk's API: configure its URL and [helpdesk.auth]",
            ));
        }
        match (self.search_terms(), query) {
            (SearchTerms::Taken { helpdesk, example }, None) => Err(Problem::new(
                "sweep.query",
                format!(
                    "give the {helpdesk} search terms that find escalated tickets, e.g. `{example}`"
                ),
            )),
            (SearchTerms::Refused { how }, Some(_)) => Err(Problem::new(
                "sweep.query",
                format!("{how}; remove `query`"),
            )),
            _ => Ok(()),
        }
    }
}
