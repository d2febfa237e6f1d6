//! What the sample account is made of: the vendor's partners and their agents, end customers,
//! the Help Center (the demo knowledge base of `connectors/demo/articles` and a few more
//! articles), and the cases partners escalate. Names and addresses are invented
//! (`.example` domains).

/// A partner: its organization, its agents (who escalate) and how it works.
pub struct Partner {
    pub name: &'static str,
    pub org_id: u64,
    pub domain: &'static str,
    pub agents: [&'static str; 2],
    /// Its share of the cases (weights).
    pub share: u32,
    /// The chance that an escalation's hand-off fields meet the rules.
    pub handoff: f64,
    /// The chance that it escalates a case a published article answers (instead of solving it).
    pub escalates_answered: f64,
    /// Added to every survey score of its customers (its support's quality).
    pub csat_shift: i32,
}

pub const PARTNERS: [Partner; 4] = [
    Partner {
        name: "Acme IT Services",
        org_id: 360_000_100_001,
        domain: "acme-it.example",
        agents: ["Priya Nair", "Tom Becker"],
        share: 36,
        handoff: 0.94,
        escalates_answered: 0.22,
        csat_shift: 1,
    },
    Partner {
        name: "Northwind Support",
        org_id: 360_000_100_002,
        domain: "northwind.example",
        agents: ["Jordan Lee", "Sam Okafor"],
        share: 30,
        handoff: 0.82,
        escalates_answered: 0.45,
        csat_shift: 0,
    },
    Partner {
        name: "Contoso Partners",
        org_id: 360_000_100_003,
        domain: "contoso-partners.example",
        agents: ["Alex Moreau", "Kim Larsen"],
        share: 27,
        handoff: 0.62,
        escalates_answered: 0.75,
        csat_shift: -1,
    },
    Partner {
        name: "Fabrikam Helpdesk",
        org_id: 360_000_100_004,
        domain: "fabrikam-helpdesk.example",
        agents: ["Rui Costa", "Ana Silva"],
        share: 7,
        handoff: 0.8,
        escalates_answered: 0.4,
        csat_shift: 0,
    },
];

/// End customers: name, company domain, locale.
pub const CUSTOMERS: [(&str, &str, &str); 24] = [
    ("Dana Reyes", "bluebird-bakery.example", "en-US"),
    ("Maria Santos", "santos-logistics.example", "en-US"),
    ("Lukas Weber", "weber-metallbau.example", "de"),
    ("Aisha Khan", "khan-dental.example", "en-GB"),
    ("Chen Wei", "lotus-trading.example", "en-US"),
    ("Olivia Brown", "brown-architects.example", "en-GB"),
    ("Mateo Garcia", "garcia-foods.example", "en-US"),
    ("Sofia Rossi", "rossi-design.example", "en-US"),
    ("Noah Fischer", "fischer-it.example", "de"),
    ("Emma Dubois", "dubois-conseil.example", "en-US"),
    ("Liam Murphy", "murphy-builders.example", "en-GB"),
    ("Yuki Tanaka", "tanaka-imports.example", "en-US"),
    ("Hannah Schulz", "schulz-praxis.example", "de"),
    ("Omar Haddad", "haddad-motors.example", "en-US"),
    ("Grace Kim", "kim-florists.example", "en-US"),
    ("Ethan Walker", "walker-law.example", "en-US"),
    ("Zoe Martin", "martin-yoga.example", "en-GB"),
    ("Ivan Petrov", "petrov-shipping.example", "en-US"),
    ("Leila Haddadi", "haddadi-travel.example", "en-US"),
    ("Ben Carter", "carter-garage.example", "en-US"),
    ("Nina Kowalski", "kowalski-print.example", "en-US"),
    ("Paul Meyer", "meyer-elektro.example", "de"),
    ("Ruth Adeyemi", "adeyemi-pharmacy.example", "en-GB"),
    ("Felix Wagner", "wagner-hotel.example", "de"),
];

/// The Help Center: article id and its Markdown with front matter (as `kb/local` reads it).
pub const ARTICLES: [(u64, &str); 11] = [
    (
        360_001_001,
        include_str!("../../connectors/demo/articles/calendar-sync-e1234.md"),
    ),
    (
        360_001_002,
        include_str!("../../connectors/demo/articles/calendar-sync-e1234-de.md"),
    ),
    (
        360_001_003,
        include_str!("../../connectors/demo/articles/invoice-pdf-fonts.md"),
    ),
    (
        360_001_004,
        include_str!("../../connectors/demo/articles/bank-feed-delay.md"),
    ),
    (
        360_001_005,
        include_str!("../../connectors/demo/articles/sso-saml-clock.md"),
    ),
    (
        360_001_006,
        include_str!("../../connectors/demo/articles/multi-currency-draft.md"),
    ),
    (
        360_002_001,
        include_str!("help_center/payroll-tax-table-p402.md"),
    ),
    (
        360_002_002,
        include_str!("help_center/invoice-reminders-twice.md"),
    ),
    (
        360_002_003,
        include_str!("help_center/bank-csv-import-b117.md"),
    ),
    (
        360_002_004,
        include_str!("help_center/invoice-export-lx5521.md"),
    ),
    (
        360_002_005,
        include_str!("help_center/two-factor-time-zone.md"),
    ),
];

/// A case partners escalate: what they write, and the article that answers it, if any.
pub struct Case {
    pub product: &'static str,
    pub subject: &'static str,
    pub description: &'static str,
    /// Steps to reproduce as a careful partner writes them (over 40 characters).
    pub steps: &'static str,
    pub environment: &'static str,
    /// The Help Center article that answers the case.
    pub answered_by: Option<u64>,
}

pub const CASES: [Case; 16] = [
    Case {
        product: "Ledgerly Calendar",
        subject: "Calendar sync stops with error E1234 after a password change",
        description: "Calendar sync stopped this morning for one user; the sync log shows error \
            E1234 authorization expired. The user changed the mailbox password yesterday.",
        steps: "Open Settings > Integrations > Calendar; the status shows error E1234 after each sync.",
        environment: "Ledgerly cloud, Microsoft 365 mailbox",
        answered_by: Some(360_001_001),
    },
    Case {
        product: "Ledgerly Invoicing",
        subject: "Invoice PDF shows empty boxes instead of accented characters",
        description: "Invoices exported as PDF show empty boxes where the customer's name has \
            accented characters (é, ü). The invoice template uses the default font.",
        steps: "Create an invoice for a customer named Müller, export it as PDF, open the file.",
        environment: "Ledgerly cloud, Chrome 126 on Windows 11",
        answered_by: Some(360_001_003),
    },
    Case {
        product: "Ledgerly Banking",
        subject: "Bank feed transactions arrive one day late",
        description: "Transactions booked yesterday evening do not appear in the bank feed until \
            the next day. The customer expects them right away.",
        steps: "Book a transfer after 18:00, open Banking > Feed, the transaction is missing.",
        environment: "Ledgerly cloud, Nordbank aggregator",
        answered_by: Some(360_001_004),
    },
    Case {
        product: "Ledgerly Platform",
        subject: "SAML single sign-on fails with assertion not yet valid (S401)",
        description: "Single sign-on fails for every user; the login page says assertion not yet \
            valid, error S401. The identity provider runs on the customer's own server.",
        steps: "Open the login page, choose Sign in with SSO, the IdP redirects back with error S401.",
        environment: "Ledgerly cloud, ADFS 2019 on premises",
        answered_by: Some(360_001_005),
    },
    Case {
        product: "Ledgerly Payroll",
        subject: "Payroll run stops with error P-402 tax table out of date",
        description: "The monthly payroll run stops at the calculation step with error P-402 tax \
            table out of date. Nothing changed in the payroll settings this month.",
        steps: "Open Payroll > Runs, start the run for this month, it stops at calculation with P-402.",
        environment: "Ledgerly cloud, payroll for 45 employees",
        answered_by: Some(360_002_001),
    },
    Case {
        product: "Ledgerly Invoicing",
        subject: "Payment reminders are sent twice to customers",
        description: "Since the reminder schedule was changed last week, customers receive every \
            payment reminder twice.",
        steps: "Edit the reminder schedule, wait for the next reminder run, check the sent mails.",
        environment: "Ledgerly cloud, reminders by e-mail",
        answered_by: Some(360_002_002),
    },
    Case {
        product: "Ledgerly Banking",
        subject: "Bank statement CSV import fails with error B-117 unreadable date",
        description: "Importing the bank's CSV statement fails with error B-117 unreadable date. \
            The bank exports dates like 31.05.2026.",
        steps: "Open Banking > Import, choose the bank's CSV statement, import stops with B-117.",
        environment: "Ledgerly cloud, CSV from Sparbank",
        answered_by: Some(360_002_003),
    },
    Case {
        product: "Ledgerly Invoicing",
        subject: "Export to PDF stops at 80% with error LX-5521",
        description: "Exporting a large invoice to PDF stops at 80% with error LX-5521. The \
            invoice has about 600 lines; smaller invoices export fine. Version 4.2.1.",
        steps: "Open the invoice with 600 lines, click Export > PDF, the export stops at 80%.",
        environment: "Ledgerly desktop 4.2.1 on Windows 11",
        answered_by: Some(360_002_004),
    },
    Case {
        product: "Ledgerly Platform",
        subject: "Two-factor codes rejected as expired after travel",
        description: "The user's two-factor codes are all rejected with code expired since she \
            came back from a trip abroad; her phone clock was set by hand.",
        steps: "Sign in with password, enter the code from the authenticator app, it says expired.",
        environment: "Ledgerly cloud, Google Authenticator on Android 14",
        answered_by: Some(360_002_005),
    },
    Case {
        product: "Ledgerly Payroll",
        subject: "Payslip rounding differs for overtime hours",
        description: "Overtime pay on the payslip differs by one cent from the timesheet total \
            for employees with more than 10 overtime hours.",
        steps: "Enter 12.5 overtime hours on a timesheet, run payroll, compare payslip and timesheet.",
        environment: "Ledgerly cloud, payroll for 120 employees",
        answered_by: None,
    },
    Case {
        product: "Ledgerly Invoicing",
        subject: "Recurring invoice skips February for monthly plans",
        description: "A recurring invoice set to the 30th of each month was not created in \
            February; the next invoice came on 30 March.",
        steps: "Create a recurring invoice on the 30th, monthly, and look at the February run.",
        environment: "Ledgerly cloud, recurring invoices module",
        answered_by: None,
    },
    Case {
        product: "Ledgerly Calendar",
        subject: "Calendar events appear twice after moving to a shared mailbox",
        description: "After the customer moved the team calendar to a shared mailbox, every event \
            shows twice in Ledgerly's calendar view.",
        steps: "Connect the shared mailbox calendar, open Calendar > Week, each event is listed twice.",
        environment: "Ledgerly cloud, Exchange Online shared mailbox",
        answered_by: None,
    },
    Case {
        product: "Ledgerly Banking",
        subject: "Bank rules ignore the amount filter for refunds",
        description: "A bank rule with the filter amount below 0 does not match refunds; they \
            stay unmatched in the feed.",
        steps: "Create a bank rule with amount < 0, import a statement with a refund, it is not matched.",
        environment: "Ledgerly cloud, bank rules",
        answered_by: None,
    },
    Case {
        product: "Ledgerly Payroll",
        subject: "Payroll journal export drops cost centres",
        description: "The payroll journal exported to the ledger has no cost centres although \
            every employee has one.",
        steps: "Run payroll, export the journal to the ledger, open the journal lines: no cost centre.",
        environment: "Ledgerly cloud, ledger integration",
        answered_by: None,
    },
    Case {
        product: "Ledgerly Invoicing",
        subject: "Invoice numbers restart after changing the fiscal year start",
        description: "After the fiscal year start moved from January to April, new invoices start \
            again at number 1 and clash with last year's.",
        steps: "Change the fiscal year start in Settings > Company, create an invoice, see its number.",
        environment: "Ledgerly cloud, invoice numbering by fiscal year",
        answered_by: None,
    },
    Case {
        product: "Ledgerly Platform",
        subject: "Audit log export times out for one year",
        description: "Exporting the audit log for the last twelve months times out after a \
            minute; six months work.",
        steps: "Open Settings > Audit log, choose the last 12 months, click Export CSV, wait.",
        environment: "Ledgerly cloud, 40 users",
        answered_by: None,
    },
];

/// What partners write when they are in a hurry, one broken hand-off field each: (field,
/// value). The sandbox connector's rules refuse each.
pub const SLOPPY: [(&str, &str); 4] = [
    ("steps_to_reproduce", "See ticket."),
    ("environment", ""),
    ("severity", "asap"),
    ("version", "latest"),
];

/// Comments customers leave with a rating (the partner edition shows those about support).
pub const COMMENTS: [&str; 8] = [
    "Quick and friendly, thank you.",
    "It took three days and two reminders.",
    "The agent knew the product well.",
    "Solved, but I had to explain everything twice.",
    "Great help, the invoice export works again.",
    "The fix was easy once someone looked at it.",
    "Slow answers. Call me back on +44 20 7946 0958 next time.",
    "The product should not need a workaround for this.",
];
