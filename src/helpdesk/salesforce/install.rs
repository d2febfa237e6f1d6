//! `escalation-gate install salesforce`: a Metadata API source folder that sets an org up for
//! one connector, with the field names and picklist values of its `[helpdesk.verdict_fields]`
//! and `[helpdesk.survey_fields]` (the defaults of `connectors/examples/salesforce.toml` where
//! it names none).

use super::config::DEFAULT_API_VERSION as API_VERSION;
use super::config::{SurveyCaseFields, VerdictFields};

const XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// A custom Case field: API name, label, description and its type's elements.
struct Field {
    name: String,
    label: &'static str,
    description: &'static str,
    shape: String,
}

impl Field {
    fn new(name: &str, label: &'static str, description: &'static str, shape: &str) -> Field {
        Field {
            name: name.to_string(),
            label,
            description,
            shape: shape.to_string(),
        }
    }
}

/// A restricted picklist's elements, history tracked: `(value, label)` pairs.
fn picklist(values: &[(&str, &str)]) -> String {
    let values: String = values
        .iter()
        .map(|(v, l)| {
            format!(
                "\n            <value><fullName>{v}</fullName><default>false</default><label>{l}</label></value>"
            )
        })
        .collect();
    format!(
        r#"<type>Picklist</type>
    <valueSet>
        <restricted>true</restricted>
        <valueSetDefinition>
            <sorted>false</sorted>{values}
        </valueSetDefinition>
    </valueSet>
    <trackHistory>true</trackHistory>"#
    )
}

/// `name`, or the default's when the connector leaves it empty (a field it does not write yet).
fn or_default<'a>(name: &'a str, default: &'a str) -> &'a str {
    if name.is_empty() { default } else { name }
}

/// The verdict fields the service writes.
fn verdict_fields(vf: &VerdictFields) -> Vec<Field> {
    let d = VerdictFields::default();
    vec![
        Field::new(
            &vf.verdict,
            "Escalation Quality",
            "Written by escalation-gate: was the partner's escalation good or bad, or does a person decide (Review).",
            &picklist(&[
                (&vf.good, &vf.good),
                (&vf.bad, &vf.bad),
                (&vf.review, &vf.review),
            ]),
        ),
        Field::new(
            or_default(&vf.reason, &d.reason),
            "Escalation Quality Reason",
            "Written by escalation-gate: the reasons and flags of the verdict.",
            "<type>Text</type>\n    <length>255</length>",
        ),
        Field::new(
            or_default(&vf.detail, "Escalation_Quality_Detail__c"),
            "Escalation Quality Detail",
            "Written by escalation-gate when [helpdesk.verdict_fields] detail names it: the hand-off fields missing and the article that answers the case (reports read it).",
            "<type>Text</type>\n    <length>255</length>",
        ),
    ]
}

/// The fields a reviewer sets: the final decision and, for an overturn, its reason.
fn review_fields(vf: &VerdictFields) -> Vec<Field> {
    let d = VerdictFields::default();
    vec![
        Field::new(
            or_default(&vf.reviewed, &d.reviewed),
            "Escalation Reviewed Quality",
            "Set by a reviewer: the final decision on the escalation (Good or Bad); where set, it is the verdict that counts. Reports and calibration read it.",
            &picklist(&[(&vf.good, &vf.good), (&vf.bad, &vf.bad)]),
        ),
        Field::new(
            or_default(&vf.overturn, "Escalation_Overturn_Reason__c"),
            "Escalation Overturn Reason",
            "Set by a reviewer who overturns the verdict: why the judge was wrong. Calibration reads it ([helpdesk.verdict_fields] overturn).",
            &picklist(&[
                (
                    "kb_not_applicable",
                    "Good: the article does not answer the case",
                ),
                ("handoff_complete", "Good: the hand-off was complete"),
                ("kb_resolvable", "Bad: an article answers the case"),
                ("missing_handoff", "Bad: the hand-off is incomplete"),
            ]),
        ),
    ]
}

/// The quick action on Case a reviewer records a decision with.
const REVIEW_ACTION: &str = "Review_Escalation";

/// The blind survey's fields: its state on the Case, and the answer for the ticket sink.
fn survey_fields(sf: &SurveyCaseFields) -> Vec<Field> {
    vec![
        Field::new(
            &sf.status,
            "Blind Survey Status",
            "Written by escalation-gate: csat_blind_pending, _sending, _sent, _skipped_(reason) or _answered.",
            "<type>Text</type>\n    <length>255</length>",
        ),
        Field::new(
            &sf.sent_at,
            "Blind Survey Sent At",
            "Written by escalation-gate: when the blind survey went out (the throttle searches it).",
            "<type>DateTime</type>",
        ),
        Field::new(
            "Blind_CSAT__c",
            "Blind CSAT",
            "Written by escalation-gate: the end customer's satisfaction, 1 to 5.",
            "<type>Number</type>\n    <precision>1</precision>\n    <scale>0</scale>",
        ),
        Field::new(
            "Blind_CES__c",
            "Blind CES",
            "Written by escalation-gate: the end customer's effort score, 1 to 5.",
            "<type>Number</type>\n    <precision>1</precision>\n    <scale>0</scale>",
        ),
        Field::new(
            "Blind_CSAT_About__c",
            "Blind CSAT About",
            "Written by escalation-gate: what the answer was about (product or support).",
            "<type>Text</type>\n    <length>20</length>",
        ),
    ]
}

/// The files, as (path in the folder, content), for the connector's field names `vf` and `sf`.
/// With `survey`, also the blind survey's fields, its `solved` outbound message and the flow
/// that sends it a day after a Case is closed.
pub fn metadata(
    connector: &str,
    url: &str,
    survey: bool,
    vf: &VerdictFields,
    sf: &SurveyCaseFields,
) -> Vec<(String, String)> {
    let url = url.trim_end_matches('/');
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "escalation-gate.example.com".into());
    let name: String = connector
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let endpoint = format!("{url}/hooks/{connector}?token=REPLACE_WITH_SF_ENDPOINT_TOKEN");
    let verdict = verdict_fields(vf);
    let review = review_fields(vf);
    let surveyed = if survey {
        survey_fields(sf)
    } else {
        Vec::new()
    };
    let fields: Vec<&Field> = verdict.iter().chain(&review).chain(&surveyed).collect();
    let mut messages = vec![outbound_message(
        &format!("Escalation_Gate_{name}"),
        &format!("Sends escalated Cases to escalation-gate (connector {connector})."),
        &endpoint,
        &format!("Escalation Gate {connector}"),
    )];
    let mut flows = vec![flow(
        &format!("Escalation_Gate_{name}_Notify"),
        &format!("Escalation Gate {connector}: notify on escalation"),
        "IsEscalated",
        &format!("Case.Escalation_Gate_{name}"),
        None,
    )];
    if survey {
        messages.push(outbound_message(
            &format!("Escalation_Gate_{name}_Solved"),
            &format!("Tells escalation-gate (connector {connector}) that a Case was solved, for the blind survey."),
            &format!("{endpoint}&amp;event=solved"),
            &format!("Escalation Gate {connector} solved"),
        ));
        flows.push(flow(
            &format!("Escalation_Gate_{name}_Survey"),
            &format!("Escalation Gate {connector}: blind survey a day after closing"),
            "IsClosed",
            &format!("Case.Escalation_Gate_{name}_Solved"),
            Some("ClosedDate"),
        ));
    }
    let members = |kind: &str, names: Vec<String>| {
        let m: String = names
            .iter()
            .map(|n| format!("<members>{n}</members>"))
            .collect();
        format!("    <types>{m}<name>{kind}</name></types>\n")
    };
    let package = format!(
        "{XML}\n<Package xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n{}{}{}{}{}{}    <version>{API_VERSION}</version>\n</Package>\n",
        members(
            "CustomField",
            fields.iter().map(|f| format!("Case.{}", f.name)).collect()
        ),
        members(
            "WorkflowOutboundMessage",
            messages.iter().map(|(n, _)| format!("Case.{n}")).collect()
        ),
        members("Flow", flows.iter().map(|(n, _)| n.clone()).collect()),
        members(
            "PermissionSet",
            vec!["Escalation_Gate".into(), "Escalation_Gate_Reviewer".into()]
        ),
        members("QuickAction", vec![format!("Case.{REVIEW_ACTION}")]),
        members("RemoteSiteSetting", vec!["Escalation_Gate".into()]),
    );
    let mut files = vec![("package.xml".to_string(), package)];
    for f in &fields {
        files.push((
            format!("objects/Case/fields/{}.field-meta.xml", f.name),
            format!(
                "{XML}\n<CustomField xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <fullName>{}</fullName>\n    <label>{}</label>\n    <description>{}</description>\n    {}\n</CustomField>\n",
                f.name, f.label, f.description, f.shape
            ),
        ));
    }
    let permissions: String = fields
        .iter()
        .map(|f| {
            format!(
                "    <fieldPermissions><editable>true</editable><field>Case.{}</field><readable>true</readable></fieldPermissions>\n",
                f.name
            )
        })
        .collect();
    files.push((
        "permissionsets/Escalation_Gate.permissionset-meta.xml".into(),
        format!(
            "{XML}\n<PermissionSet xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <label>Escalation Gate</label>\n    <description>For escalation-gate's integration user: reads and writes the fields it owns on Case.</description>\n{permissions}</PermissionSet>\n"
        ),
    ));
    files.push(reviewer_permissions(&verdict, &review));
    files.push(review_action(&review));
    let outbound: String = messages.iter().map(|(_, xml)| xml.as_str()).collect();
    files.push((
        "workflows/Case.workflow-meta.xml".into(),
        format!(
            "{XML}\n<Workflow xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n{outbound}</Workflow>\n"
        ),
    ));
    for (flow_name, xml) in flows {
        files.push((format!("flows/{flow_name}.flow-meta.xml"), xml));
    }
    files.push((
        "remoteSiteSettings/Escalation_Gate.remoteSite-meta.xml".into(),
        format!(
            r#"{XML}
<RemoteSiteSetting xmlns="http://soap.sforce.com/2006/04/metadata">
    <description>escalation-gate, for the signed JSON path (Flow HTTP Callout or Apex).</description>
    <disableProtocolSecurity>false</disableProtocolSecurity>
    <isActive>true</isActive>
    <url>https://{host}</url>
</RemoteSiteSetting>
"#
        ),
    ));
    files
}

/// The reviewers' permission set: read the verdict, edit the decision and its reason.
fn reviewer_permissions(verdict: &[Field], review: &[Field]) -> (String, String) {
    let field = |f: &Field, edit: bool| {
        format!(
            "    <fieldPermissions><editable>{edit}</editable><field>Case.{}</field><readable>true</readable></fieldPermissions>\n",
            f.name
        )
    };
    let permissions: String = verdict
        .iter()
        .map(|f| field(f, false))
        .chain(review.iter().map(|f| field(f, true)))
        .collect();
    (
        "permissionsets/Escalation_Gate_Reviewer.permissionset-meta.xml".into(),
        format!(
            "{XML}\n<PermissionSet xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <label>Escalation Gate Reviewer</label>\n    <description>For the people who confirm or overturn escalation-gate's verdicts: reads the verdict, sets the decision and the overturn reason.</description>\n{permissions}</PermissionSet>\n"
        ),
    )
}

/// The Case quick action a reviewer records a decision with: one picklist, plus the overturn
/// reason when the decision goes against the judge.
fn review_action(review: &[Field]) -> (String, String) {
    let items: String = review
        .iter()
        .zip(["Required", "Edit"])
        .map(|(f, behaviour)| {
            format!(
                "            <quickActionLayoutItems>\n                <emptySpace>false</emptySpace>\n                <field>{}</field>\n                <uiBehavior>{behaviour}</uiBehavior>\n            </quickActionLayoutItems>\n",
                f.name
            )
        })
        .collect();
    (
        format!("quickActions/Case.{REVIEW_ACTION}.quickAction-meta.xml"),
        format!(
            "{XML}\n<QuickAction xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <label>Review escalation</label>\n    <description>Confirm or overturn escalation-gate's verdict on this Case.</description>\n    <optionsCreateFeedItem>true</optionsCreateFeedItem>\n    <quickActionLayout>\n        <layoutSectionStyle>TwoColumnsLeftToRight</layoutSectionStyle>\n        <quickActionLayoutColumns>\n{items}        </quickActionLayoutColumns>\n        <quickActionLayoutColumns/>\n    </quickActionLayout>\n    <type>Update</type>\n</QuickAction>\n"
        ),
    )
}

/// An outbound message on Case with the fields the connector reads (`Id`, `LastModifiedDate`).
fn outbound_message(
    full_name: &str,
    description: &str,
    endpoint: &str,
    label: &str,
) -> (String, String) {
    (
        full_name.to_string(),
        format!(
            r#"    <outboundMessages>
        <fullName>{full_name}</fullName>
        <apiVersion>{API_VERSION}</apiVersion>
        <description>{description}</description>
        <endpointUrl>{endpoint}</endpointUrl>
        <fields>Id</fields>
        <fields>LastModifiedDate</fields>
        <includeSessionId>false</includeSessionId>
        <integrationUser>REPLACE_WITH_INTEGRATION_USERNAME</integrationUser>
        <name>{label}</name>
        <protected>false</protected>
        <useDeadLetterQueue>false</useDeadLetterQueue>
    </outboundMessages>
"#
        ),
    )
}

/// A record-triggered flow on Case that sends `action` (an outbound message) when `when`
/// becomes true: at once, or on a scheduled path a day after the `later` date field.
fn flow(
    name: &str,
    label: &str,
    when: &str,
    action: &str,
    later: Option<&str>,
) -> (String, String) {
    let go = "<connector><targetReference>Send_to_escalation_gate</targetReference></connector>";
    let path = match later {
        None => go.to_string(),
        Some(field) => format!(
            r#"<scheduledPaths>
            <name>A_day_after_{field}</name>
            <label>A day after {field}</label>
            {go}
            <offsetNumber>1</offsetNumber>
            <offsetUnit>Days</offsetUnit>
            <timeSource>RecordField</timeSource>
            <timeSourceField>{field}</timeSourceField>
        </scheduledPaths>"#
        ),
    };
    (
        name.to_string(),
        format!(
            r#"{XML}
<Flow xmlns="http://soap.sforce.com/2006/04/metadata">
    <apiVersion>{API_VERSION}</apiVersion>
    <label>{label}</label>
    <processType>AutoLaunchedFlow</processType>
    <status>Active</status>
    <actionCalls>
        <name>Send_to_escalation_gate</name>
        <label>Send to escalation-gate</label>
        <locationX>176</locationX>
        <locationY>323</locationY>
        <actionName>{action}</actionName>
        <actionType>outboundMessage</actionType>
        <inputParameters><name>recordId</name><value><elementReference>$Record.Id</elementReference></value></inputParameters>
    </actionCalls>
    <start>
        <locationX>50</locationX>
        <locationY>0</locationY>
        <object>Case</object>
        <recordTriggerType>CreateAndUpdate</recordTriggerType>
        <triggerType>RecordAfterSave</triggerType>
        <doesRequireRecordChangedToMeetCriteria>true</doesRequireRecordChangedToMeetCriteria>
        <filterLogic>and</filterLogic>
        <filters><field>{when}</field><operator>EqualTo</operator><value><booleanValue>true</booleanValue></value></filters>
        {path}
    </start>
</Flow>
"#
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files for the default field names.
    fn files(connector: &str, url: &str, survey: bool) -> Vec<(String, String)> {
        metadata(
            connector,
            url,
            survey,
            &VerdictFields::default(),
            &SurveyCaseFields::default(),
        )
    }

    fn get<'a>(files: &'a [(String, String)], path: &str) -> &'a str {
        &files
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("no {path}"))
            .1
    }

    #[test]
    fn the_metadata_names_the_connector_endpoint() {
        let files = files("acme-sf", "https://gate.example.org/", false);
        assert!(
            get(&files, "workflows/Case.workflow-meta.xml")
                .contains("<endpointUrl>https://gate.example.org/hooks/acme-sf?token=")
        );
        assert!(
            get(
                &files,
                "remoteSiteSettings/Escalation_Gate.remoteSite-meta.xml"
            )
            .contains("<url>https://gate.example.org</url>")
        );
        let notify = get(&files, "flows/Escalation_Gate_acme_sf_Notify.flow-meta.xml");
        assert!(notify.contains("<actionName>Case.Escalation_Gate_acme_sf</actionName>"));
        assert!(notify.contains("<field>IsEscalated</field>"));
        assert!(!notify.contains("scheduledPaths"));
        let package = get(&files, "package.xml");
        assert!(package.contains("<members>Case.Escalation_Quality__c</members>"));
        assert!(!package.contains("Blind_Survey_Status__c"));
        assert!(!files.iter().any(|(p, _)| p.contains("Survey")));
    }

    #[test]
    fn with_the_survey_every_file_is_in_the_manifest_and_the_user_may_write_every_field() {
        let files = files("acme-sf", "https://gate.example.org", true);
        let package = get(&files, "package.xml");
        let permissions = get(
            &files,
            "permissionsets/Escalation_Gate.permissionset-meta.xml",
        );
        let vf = VerdictFields::default();
        for f in verdict_fields(&vf)
            .into_iter()
            .chain(review_fields(&vf))
            .chain(survey_fields(&SurveyCaseFields::default()))
        {
            assert!(
                get(
                    &files,
                    &format!("objects/Case/fields/{}.field-meta.xml", f.name)
                )
                .contains(&f.name)
            );
            assert!(package.contains(&format!("<members>Case.{}</members>", f.name)));
            assert!(permissions.contains(&format!(
                "<editable>true</editable><field>Case.{}</field>",
                f.name
            )));
        }
        let workflow = get(&files, "workflows/Case.workflow-meta.xml");
        assert_eq!(workflow.matches("<outboundMessages>").count(), 2);
        assert!(
            workflow
                .contains("/hooks/acme-sf?token=REPLACE_WITH_SF_ENDPOINT_TOKEN&amp;event=solved")
        );
        assert!(package.contains("<members>Case.Escalation_Gate_acme_sf_Solved</members>"));
        let survey = get(&files, "flows/Escalation_Gate_acme_sf_Survey.flow-meta.xml");
        assert!(survey.contains("<field>IsClosed</field>"));
        assert!(survey.contains("<timeSourceField>ClosedDate</timeSourceField>"));
        assert!(survey.contains("<actionName>Case.Escalation_Gate_acme_sf_Solved</actionName>"));
        assert!(package.contains("<members>Escalation_Gate_acme_sf_Survey</members>"));
        // Every file is well-formed XML.
        for (path, xml) in &files {
            let mut reader = quick_xml::Reader::from_str(xml);
            loop {
                match reader.read_event() {
                    Ok(quick_xml::events::Event::Eof) => break,
                    Ok(_) => {}
                    Err(e) => panic!("{path}: {e}"),
                }
            }
        }
    }

    #[test]
    fn reviewers_get_the_decision_picklists_a_quick_action_and_their_own_permission_set() {
        let files = files("acme-sf", "https://gate.example.org", false);
        let package = get(&files, "package.xml");
        let defaults = VerdictFields::default();
        let review = review_fields(&defaults);
        assert_eq!(review[0].name, defaults.reviewed);
        let reviewed = get(
            &files,
            "objects/Case/fields/Escalation_Reviewed_Quality__c.field-meta.xml",
        );
        for value in [&defaults.good, &defaults.bad] {
            assert!(reviewed.contains(&format!("<fullName>{value}</fullName>")));
        }
        let overturn = get(
            &files,
            "objects/Case/fields/Escalation_Overturn_Reason__c.field-meta.xml",
        );
        assert_eq!(
            overturn.matches("<value>").count(),
            crate::helpdesk::records::OVERTURN_REASONS.len()
        );
        for reason in crate::helpdesk::records::OVERTURN_REASONS {
            assert!(overturn.contains(&format!("<fullName>{reason}</fullName>")));
        }
        let reviewer = get(
            &files,
            "permissionsets/Escalation_Gate_Reviewer.permissionset-meta.xml",
        );
        let integration = get(
            &files,
            "permissionsets/Escalation_Gate.permissionset-meta.xml",
        );
        for f in &review {
            assert!(package.contains(&format!("<members>Case.{}</members>", f.name)));
            assert!(reviewer.contains(&format!(
                "<editable>true</editable><field>Case.{}</field>",
                f.name
            )));
            assert!(integration.contains(&format!("<field>Case.{}</field>", f.name)));
        }
        assert!(
            reviewer
                .contains("<editable>false</editable><field>Case.Escalation_Quality__c</field>")
        );
        let action = get(
            &files,
            "quickActions/Case.Review_Escalation.quickAction-meta.xml",
        );
        assert!(action.contains("<type>Update</type>"));
        assert!(action.contains("<field>Escalation_Reviewed_Quality__c</field>"));
        assert!(
            package.contains("<members>Case.Review_Escalation</members><name>QuickAction</name>")
        );
        assert!(package.contains("<members>Escalation_Gate_Reviewer</members>"));
    }

    #[test]
    fn the_connector_names_the_fields_and_the_picklist_values() {
        let vf = VerdictFields {
            verdict: "Partner_Verdict__c".into(),
            good: "Solid".into(),
            bad: "Weak".into(),
            review: "Needs_Look".into(),
            reviewed: "Partner_Decision__c".into(),
            ..VerdictFields::default()
        };
        let sf = SurveyCaseFields {
            status: "Csat_State__c".into(),
            sent_at: "Csat_Sent__c".into(),
        };
        let files = metadata("acme-sf", "https://gate.example.org", true, &vf, &sf);
        let verdict = get(
            &files,
            "objects/Case/fields/Partner_Verdict__c.field-meta.xml",
        );
        for value in ["Solid", "Weak", "Needs_Look"] {
            assert!(verdict.contains(&format!("<fullName>{value}</fullName>")));
        }
        assert!(!verdict.contains("<fullName>Good</fullName>"));
        let decision = get(
            &files,
            "objects/Case/fields/Partner_Decision__c.field-meta.xml",
        );
        assert!(decision.contains("<fullName>Solid</fullName>"));
        let package = get(&files, "package.xml");
        for name in [
            "Partner_Verdict__c",
            "Partner_Decision__c",
            "Csat_State__c",
            "Csat_Sent__c",
        ] {
            assert!(package.contains(&format!("<members>Case.{name}</members>")));
        }
        assert!(!package.contains("Escalation_Quality__c<"));
        assert!(!package.contains("Blind_Survey_Status__c"));
        let action = get(
            &files,
            "quickActions/Case.Review_Escalation.quickAction-meta.xml",
        );
        assert!(action.contains("<field>Partner_Decision__c</field>"));
    }
}
