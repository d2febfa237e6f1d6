//! Who is asked: pure rules over a case as the helpdesk shows it. Nothing here does I/O, and
//! nothing the partner controls changes the outcome except what the vendor configured.

use serde::Deserialize;

use crate::escalation::UNKNOWN_PARTNER;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseKind {
    /// The partner escalated the case to the vendor.
    Escalated,
    /// The partner handled the case alone.
    NotEscalated,
}

/// The connector's survey rules.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Empty: every named partner.
    pub partners: Vec<String>,
    pub cases: Vec<CaseKind>,
    /// Lower-case; empty: all.
    pub ticket_types: Vec<String>,
    pub throttle_days: u32,
    /// Lower-case domains of every partner.
    pub partner_domains: Vec<String>,
}

/// A person on the case, as the helpdesk's API shows them.
#[derive(Debug, Clone, Default)]
pub struct Person {
    /// The helpdesk's id of the record (where an opt-out is written).
    pub id: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub locale: Option<String>,
    /// An agent of the helpdesk (a partner's or the vendor's), not an end customer.
    pub is_agent: bool,
    pub opted_out: bool,
}

/// A case read for a survey.
#[derive(Debug, Clone)]
pub struct SurveyCase {
    pub ticket_id: String,
    /// The number the customer knows the case by, when it is not the id (Salesforce's
    /// `CaseNumber`).
    pub number: Option<String>,
    /// Whether the helpdesk shows the case as solved now.
    pub solved: bool,
    pub partner: String,
    pub escalated: bool,
    /// Lower-case ticket type, when set.
    pub ticket_type: Option<String>,
    pub tags: Vec<String>,
    pub subject: String,
    pub requester: Person,
    /// The configured end-customer field's value, when set.
    pub end_customer_email: Option<String>,
    /// The helpdesk's version of the ticket, for a conditional write.
    pub version: Option<String>,
}

/// Why a case is not surveyed. The names are metric labels and tag suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not solved (re-opened, or not yet solved): nothing is recorded, a later solve asks again.
    NotSolved,
    NoPartner,
    PartnerNotSurveyed,
    CaseNotSurveyed,
    TypeNotSurveyed,
    /// No usable e-mail address.
    NoRecipient,
    /// The address is in a partner's own domain.
    PartnerDomain,
    /// The requester is an agent (a partner's), and no end-customer field names the customer.
    PartnerAgent,
    OptedOut,
    /// Surveyed within the throttle window.
    Throttled,
    /// The mail server refused the address for good.
    Rejected,
}

impl Skip {
    pub fn name(self) -> &'static str {
        match self {
            Skip::NotSolved => "not_solved",
            Skip::NoPartner => "no_partner",
            Skip::PartnerNotSurveyed => "partner_not_surveyed",
            Skip::CaseNotSurveyed => "case_not_surveyed",
            Skip::TypeNotSurveyed => "type_not_surveyed",
            Skip::NoRecipient => "no_recipient",
            Skip::PartnerDomain => "partner_domain",
            Skip::PartnerAgent => "partner_agent",
            Skip::OptedOut => "opted_out",
            Skip::Throttled => "throttled",
            Skip::Rejected => "rejected",
        }
    }

    /// Whether the ticket records this skip for good (redelivery then does nothing).
    pub fn is_final(self) -> bool {
        !matches!(self, Skip::NotSolved)
    }
}

/// Who is asked, once the case passed the rules that need no lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// The requester is the customer (their record is known).
    Requester,
    /// The address in the end-customer field; its record is looked up by address.
    EndCustomer(String),
}

impl Rules {
    /// Whether cases of this partner and kind are surveyed at all (before any lookup).
    pub fn surveys(&self, partner: &str, escalated: bool) -> bool {
        let kind = if escalated {
            CaseKind::Escalated
        } else {
            CaseKind::NotEscalated
        };
        !partner.trim().is_empty()
            && partner != UNKNOWN_PARTNER
            && (self.partners.is_empty() || self.partners.iter().any(|p| p == partner))
            && self.cases.contains(&kind)
    }

    /// The rules that need nothing but the case: state, partner, kind, and who the recipient is.
    pub fn check(&self, case: &SurveyCase) -> Result<Recipient, Skip> {
        if !case.solved {
            return Err(Skip::NotSolved);
        }
        if case.partner.trim().is_empty() || case.partner == UNKNOWN_PARTNER {
            return Err(Skip::NoPartner);
        }
        if !self.partners.is_empty() && !self.partners.iter().any(|p| p == &case.partner) {
            return Err(Skip::PartnerNotSurveyed);
        }
        let kind = if case.escalated {
            CaseKind::Escalated
        } else {
            CaseKind::NotEscalated
        };
        if !self.cases.contains(&kind) {
            return Err(Skip::CaseNotSurveyed);
        }
        if !self.ticket_types.is_empty()
            && !case
                .ticket_type
                .as_ref()
                .is_some_and(|t| self.ticket_types.contains(t))
        {
            return Err(Skip::TypeNotSurveyed);
        }
        if let Some(email) = case
            .end_customer_email
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            if !is_address(email) {
                return Err(Skip::NoRecipient);
            }
            if self.is_partner_address(email) {
                return Err(Skip::PartnerDomain);
            }
            return Ok(Recipient::EndCustomer(email.to_ascii_lowercase()));
        }
        let Some(email) = case.requester.email.as_deref().filter(|e| is_address(e)) else {
            return Err(Skip::NoRecipient);
        };
        if self.is_partner_address(email) {
            return Err(if case.escalated {
                Skip::PartnerAgent
            } else {
                Skip::PartnerDomain
            });
        }
        if case.requester.is_agent {
            return Err(Skip::PartnerAgent);
        }
        Ok(Recipient::Requester)
    }

    /// Whether the address is in a partner's domain or a sub-domain of one.
    pub fn is_partner_address(&self, email: &str) -> bool {
        let Some((_, domain)) = email.trim().rsplit_once('@') else {
            return false;
        };
        let domain = domain.to_ascii_lowercase();
        self.partner_domains
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
    }
}

fn is_address(email: &str) -> bool {
    email.parse::<lettre::Address>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            partners: vec!["Acme IT".into()],
            cases: vec![CaseKind::Escalated, CaseKind::NotEscalated],
            ticket_types: vec![],
            throttle_days: 30,
            partner_domains: vec!["acme-it.example".into()],
        }
    }

    fn case() -> SurveyCase {
        SurveyCase {
            ticket_id: "1".into(),
            number: None,
            solved: true,
            partner: "Acme IT".into(),
            escalated: true,
            ticket_type: Some("incident".into()),
            tags: vec![],
            subject: "x".into(),
            requester: Person {
                id: Some("9".into()),
                email: Some("dana@customer.example".into()),
                ..Person::default()
            },
            end_customer_email: None,
            version: None,
        }
    }

    #[test]
    fn each_rule() {
        let r = rules();
        assert_eq!(r.check(&case()), Ok(Recipient::Requester));
        let with = |f: fn(&mut SurveyCase)| {
            let mut c = case();
            f(&mut c);
            r.check(&c)
        };
        assert_eq!(with(|c| c.solved = false), Err(Skip::NotSolved));
        assert_eq!(with(|c| c.partner = "unknown".into()), Err(Skip::NoPartner));
        assert_eq!(
            with(|c| c.partner = "Other".into()),
            Err(Skip::PartnerNotSurveyed)
        );
        assert_eq!(with(|c| c.requester.email = None), Err(Skip::NoRecipient));
        assert_eq!(
            with(|c| c.requester.email = Some("agent@acme-it.example".into())),
            Err(Skip::PartnerAgent)
        );
        assert_eq!(
            with(|c| {
                c.escalated = false;
                c.requester.email = Some("agent@eu.ACME-IT.example".into())
            }),
            Err(Skip::PartnerDomain)
        );
        assert_eq!(
            with(|c| c.requester.is_agent = true),
            Err(Skip::PartnerAgent)
        );
        assert_eq!(
            with(|c| {
                c.requester.email = Some("agent@acme-it.example".into());
                c.end_customer_email = Some(" Lee@Customer.example ".into());
            }),
            Ok(Recipient::EndCustomer("lee@customer.example".into()))
        );
        assert_eq!(
            with(|c| c.end_customer_email = Some("boss@acme-it.example".into())),
            Err(Skip::PartnerDomain)
        );
        assert_eq!(
            with(|c| c.end_customer_email = Some("not an address".into())),
            Err(Skip::NoRecipient)
        );
        // A look-alike domain is not the partner's.
        assert_eq!(
            with(|c| c.requester.email = Some("x@notacme-it.example".into())),
            Ok(Recipient::Requester)
        );
        let mut only_escalated = rules();
        only_escalated.cases = vec![CaseKind::Escalated];
        let mut c = case();
        c.escalated = false;
        assert_eq!(only_escalated.check(&c), Err(Skip::CaseNotSurveyed));
        let mut typed = rules();
        typed.ticket_types = vec!["question".into()];
        assert_eq!(typed.check(&case()), Err(Skip::TypeNotSurveyed));
        let mut all = rules();
        all.partners.clear();
        let mut c = case();
        c.partner = "Other".into();
        assert_eq!(all.check(&c), Ok(Recipient::Requester));
    }
}
