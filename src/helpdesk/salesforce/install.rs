//! `escalation-gate install salesforce`: a Metadata API source folder that sets an org up for
//! one connector, with the field names and picklist values of its `[helpdesk.verdict_fields]`
//! and `[helpdesk.survey_fields]` (the defaults of `connectors/examples/salesforce.toml` where
//! it names none), and the Lightning components with their Apex class, which call the check
//! before escalating through the Named Credential `Escalation_Gate`.

use super::config::DEFAULT_API_VERSION as API_VERSION;
use super::config::{InstallNames, SurveyCaseFields, VerdictFields};
use crate::helpdesk::records::OVERTURNS;

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
            &picklist(
                &OVERTURNS
                    .iter()
                    .zip(&OVERTURNS.map(|o| o.label()))
                    .map(|(o, label)| (o.reason, label.as_str()))
                    .collect::<Vec<_>>(),
            ),
        ),
    ]
}

/// What the check before escalating said on a Case a partner submitted through the Experience
/// Cloud component.
fn precheck_field(vf: &VerdictFields) -> Field {
    Field::new(
        or_default(&vf.precheck, "Escalation_Precheck__c"),
        "Escalation Precheck",
        "Set by the escalation-gate precheck component when a partner submits the Case: what the check before escalating said (good, bad or review). escalation-gate reads it ([helpdesk.verdict_fields] precheck).",
        &picklist(&[("good", "Good"), ("bad", "Bad"), ("review", "Review")]),
    )
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

/// The files, as (path in the folder, content), for the connector's `names`. With `survey`,
/// also the blind survey's fields, its `solved` outbound message and the flow that sends it a
/// day after a Case is closed.
pub fn metadata(
    connector: &str,
    url: &str,
    survey: bool,
    names: &InstallNames,
) -> Vec<(String, String)> {
    let (vf, sf) = (&names.verdict_fields, &names.survey_fields);
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
    let precheck = [precheck_field(vf)];
    let surveyed = if survey {
        survey_fields(sf)
    } else {
        Vec::new()
    };
    let fields: Vec<&Field> = verdict
        .iter()
        .chain(&review)
        .chain(&precheck)
        .chain(&surveyed)
        .collect();
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
        "{XML}\n<Package xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n{}{}{}{}{}{}{}{}{}{}    <version>{API_VERSION}</version>\n</Package>\n",
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
            vec![
                "Escalation_Gate".into(),
                "Escalation_Gate_Reviewer".into(),
                "Escalation_Gate_User".into()
            ]
        ),
        members("QuickAction", vec![format!("Case.{REVIEW_ACTION}")]),
        members("RemoteSiteSetting", vec!["Escalation_Gate".into()]),
        members("ApexClass", CLASSES.map(String::from).to_vec()),
        members(
            "LightningComponentBundle",
            BUNDLES.map(String::from).to_vec()
        ),
        members("NamedCredential", vec![CREDENTIAL.into()]),
        members("ExternalCredential", vec![CREDENTIAL.into()]),
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
    let permissions: String = fields.iter().map(|f| field_permission(f, true)).collect();
    files.push(permission_set(
        "Escalation_Gate",
        "Escalation Gate",
        "For escalation-gate's integration user: reads and writes the fields it owns on Case.",
        &permissions,
    ));
    files.push(reviewer_permissions(&verdict, &precheck, &review));
    files.push(user_permissions(&precheck[0]));
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
    files.extend(credential(url));
    files.extend(components(
        connector,
        names,
        &verdict,
        &review,
        &precheck[0],
    ));
    files
}

/// The Named Credential and the External Credential the Apex class calls the service through.
const CREDENTIAL: &str = "Escalation_Gate";
/// The External Credential's principal, whose parameter `secret` an admin sets in Setup.
const PRINCIPAL: &str = "Precheck";
/// The Apex class and its test.
const CLASSES: [&str; 2] = ["EscalationGate", "EscalationGateTest"];
/// The Lightning components: the connector's config module, the shared texts, the answer of
/// the check, the Case page component and the Experience Cloud form.
const BUNDLES: [&str; 5] = [
    "escalationGateConfig",
    "escalationGateText",
    "escalationGateAnswer",
    "escalationGateVerdict",
    "escalationGatePrecheck",
];

/// The sources of the Apex class and the components, as kept in this folder: the connector's
/// name, the API version and whether the partner is the Case's Account go in for
/// `__EG_CONNECTOR__`, `__EG_API_VERSION__` and `__EG_PARTNER_FROM_ACCOUNT__`.
const SOURCES: [(&str, &str); 15] = [
    (
        "classes/EscalationGate.cls",
        include_str!("apex/EscalationGate.cls"),
    ),
    (
        "classes/EscalationGate.cls-meta.xml",
        include_str!("apex/EscalationGate.cls-meta.xml"),
    ),
    (
        "classes/EscalationGateTest.cls",
        include_str!("apex/EscalationGateTest.cls"),
    ),
    (
        "classes/EscalationGateTest.cls-meta.xml",
        include_str!("apex/EscalationGateTest.cls-meta.xml"),
    ),
    (
        "lwc/escalationGateText/escalationGateText.js",
        include_str!("lwc/escalationGateText/escalationGateText.js"),
    ),
    (
        "lwc/escalationGateText/escalationGateText.js-meta.xml",
        include_str!("lwc/escalationGateText/escalationGateText.js-meta.xml"),
    ),
    (
        "lwc/escalationGateAnswer/escalationGateAnswer.js",
        include_str!("lwc/escalationGateAnswer/escalationGateAnswer.js"),
    ),
    (
        "lwc/escalationGateAnswer/escalationGateAnswer.html",
        include_str!("lwc/escalationGateAnswer/escalationGateAnswer.html"),
    ),
    (
        "lwc/escalationGateAnswer/escalationGateAnswer.js-meta.xml",
        include_str!("lwc/escalationGateAnswer/escalationGateAnswer.js-meta.xml"),
    ),
    (
        "lwc/escalationGateVerdict/escalationGateVerdict.js",
        include_str!("lwc/escalationGateVerdict/escalationGateVerdict.js"),
    ),
    (
        "lwc/escalationGateVerdict/escalationGateVerdict.html",
        include_str!("lwc/escalationGateVerdict/escalationGateVerdict.html"),
    ),
    (
        "lwc/escalationGateVerdict/escalationGateVerdict.js-meta.xml",
        include_str!("lwc/escalationGateVerdict/escalationGateVerdict.js-meta.xml"),
    ),
    (
        "lwc/escalationGatePrecheck/escalationGatePrecheck.js",
        include_str!("lwc/escalationGatePrecheck/escalationGatePrecheck.js"),
    ),
    (
        "lwc/escalationGatePrecheck/escalationGatePrecheck.html",
        include_str!("lwc/escalationGatePrecheck/escalationGatePrecheck.html"),
    ),
    (
        "lwc/escalationGatePrecheck/escalationGatePrecheck.js-meta.xml",
        include_str!("lwc/escalationGatePrecheck/escalationGatePrecheck.js-meta.xml"),
    ),
];

/// The Apex class and the components for `connector`, with the config module that names its
/// fields, picklist values, overturn reasons and hand-off fields for the components.
fn components(
    connector: &str,
    names: &InstallNames,
    verdict: &[Field],
    review: &[Field],
    precheck: &Field,
) -> Vec<(String, String)> {
    let vf = &names.verdict_fields;
    let config = serde_json::json!({
        "connector": connector,
        "fields": {
            "verdict": verdict[0].name,
            "reason": verdict[1].name,
            "detail": verdict[2].name,
            "reviewed": review[0].name,
            "overturn": review[1].name,
            "precheck": precheck.name,
        },
        "values": {"good": vf.good, "bad": vf.bad, "review": vf.review},
        "overturnReasons": OVERTURNS
            .map(|o| serde_json::json!({"value": o.reason, "label": o.label(), "to": o.to()})),
        "handoff": names.handoff.iter().map(|(field, name)| {
            serde_json::json!({"field": field, "name": name, "label": label_of(name)})
        }).collect::<Vec<_>>(),
    });
    let mut files: Vec<(String, String)> = SOURCES
        .iter()
        .map(|(path, text)| {
            (
                path.to_string(),
                text.replace("__EG_CONNECTOR__", connector)
                    .replace("__EG_API_VERSION__", API_VERSION)
                    .replace(
                        "__EG_PARTNER_FROM_ACCOUNT__",
                        if names.partner_from_account {
                            "true"
                        } else {
                            "false"
                        },
                    ),
            )
        })
        .collect();
    files.push((
        "lwc/escalationGateConfig/escalationGateConfig.js".into(),
        format!(
            "// The connector {connector}'s names for escalation-gate's components, written by `escalation-gate install salesforce`.\nexport default {};\n",
            serde_json::to_string_pretty(&config).unwrap_or_default()
        ),
    ));
    files.push((
        "lwc/escalationGateConfig/escalationGateConfig.js-meta.xml".into(),
        format!(
            "{XML}\n<LightningComponentBundle xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <apiVersion>{API_VERSION}</apiVersion>\n    <isExposed>false</isExposed>\n</LightningComponentBundle>\n"
        ),
    ));
    files
}

/// A hand-off name as a form label: `steps_to_reproduce` → `Steps to reproduce`.
fn label_of(name: &str) -> String {
    let words = name.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The Named Credential `Escalation_Gate` (the service's URL) and its External Credential, which
/// sends the principal's `secret` as `Authorization: Bearer`. The secret is not in the metadata:
/// an admin enters it in Setup.
fn credential(url: &str) -> [(String, String); 2] {
    [
        (
            format!("namedCredentials/{CREDENTIAL}.namedCredential-meta.xml"),
            format!(
                r#"{XML}
<NamedCredential xmlns="http://soap.sforce.com/2006/04/metadata">
    <allowMergeFieldsInBody>false</allowMergeFieldsInBody>
    <allowMergeFieldsInHeader>true</allowMergeFieldsInHeader>
    <calloutStatus>Enabled</calloutStatus>
    <description>escalation-gate, for the check before escalating (Apex class EscalationGate).</description>
    <generateAuthorizationHeader>false</generateAuthorizationHeader>
    <label>Escalation Gate</label>
    <namedCredentialParameters>
        <parameterName>Url</parameterName>
        <parameterType>Url</parameterType>
        <parameterValue>{url}</parameterValue>
    </namedCredentialParameters>
    <namedCredentialParameters>
        <externalCredential>{CREDENTIAL}</externalCredential>
        <parameterName>ExternalCredential</parameterName>
        <parameterType>Authentication</parameterType>
    </namedCredentialParameters>
    <namedCredentialType>SecuredEndpoint</namedCredentialType>
</NamedCredential>
"#
            ),
        ),
        (
            format!("externalCredentials/{CREDENTIAL}.externalCredential-meta.xml"),
            format!(
                r#"{XML}
<ExternalCredential xmlns="http://soap.sforce.com/2006/04/metadata">
    <authenticationProtocol>Custom</authenticationProtocol>
    <description>The precheck secret escalation-gate expects: enter it as the authentication parameter `secret` of the principal {PRINCIPAL} (Setup, Named Credentials, External Credentials).</description>
    <externalCredentialParameters>
        <parameterGroup>DefaultGroup</parameterGroup>
        <parameterName>Authorization</parameterName>
        <parameterType>AuthHeader</parameterType>
        <parameterValue>Bearer {{!$Credential.{CREDENTIAL}.secret}}</parameterValue>
        <sequenceNumber>1</sequenceNumber>
    </externalCredentialParameters>
    <externalCredentialParameters>
        <parameterGroup>{PRINCIPAL}</parameterGroup>
        <parameterName>{PRINCIPAL}</parameterName>
        <parameterType>NamedPrincipal</parameterType>
        <sequenceNumber>1</sequenceNumber>
    </externalCredentialParameters>
    <label>Escalation Gate</label>
</ExternalCredential>
"#
            ),
        ),
    ]
}

/// What every person who runs the components needs: the Apex class, and the External
/// Credential's principal (without which the callout has no secret).
fn callout_permissions() -> String {
    format!(
        "    <classAccesses><apexClass>{}</apexClass><enabled>true</enabled></classAccesses>\n    <externalCredentialPrincipalAccesses><enabled>true</enabled><externalCredentialPrincipal>{CREDENTIAL}-{PRINCIPAL}</externalCredentialPrincipal></externalCredentialPrincipalAccesses>\n",
        CLASSES[0]
    )
}

/// A Case field permission line.
fn field_permission(f: &Field, edit: bool) -> String {
    format!(
        "    <fieldPermissions><editable>{edit}</editable><field>Case.{}</field><readable>true</readable></fieldPermissions>\n",
        f.name
    )
}

/// A permission set's file.
fn permission_set(name: &str, label: &str, description: &str, body: &str) -> (String, String) {
    (
        format!("permissionsets/{name}.permissionset-meta.xml"),
        format!(
            "{XML}\n<PermissionSet xmlns=\"http://soap.sforce.com/2006/04/metadata\">\n    <label>{label}</label>\n    <description>{description}</description>\n{body}</PermissionSet>\n"
        ),
    )
}

/// The partners' permission set, for the Experience Cloud users who escalate through the form:
/// the callout, and the precheck field the form sets on the Case it creates. Apart from the
/// reviewers' set, so partners never get to edit a decision.
fn user_permissions(precheck: &Field) -> (String, String) {
    permission_set(
        "Escalation_Gate_User",
        "Escalation Gate User",
        "For partners who escalate through the Experience Cloud form: runs the check before escalating and records what it said on the Case they create.",
        &format!(
            "{}{}",
            callout_permissions(),
            field_permission(precheck, true)
        ),
    )
}

/// The reviewers' permission set: read the verdict, edit the decision and its reason.
fn reviewer_permissions(
    verdict: &[Field],
    precheck: &[Field],
    review: &[Field],
) -> (String, String) {
    let fields: String = verdict
        .iter()
        .chain(precheck)
        .map(|f| field_permission(f, false))
        .chain(review.iter().map(|f| field_permission(f, true)))
        .collect();
    permission_set(
        "Escalation_Gate_Reviewer",
        "Escalation Gate Reviewer",
        "For the people who confirm or overturn escalation-gate's verdicts: reads the verdict, sets the decision and the overturn reason, and runs the Case page component.",
        &format!("{}{fields}", callout_permissions()),
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

    /// The names of a connector file that names `vf` and `sf`, with two hand-off fields.
    fn names(vf: VerdictFields, sf: SurveyCaseFields) -> InstallNames {
        InstallNames {
            verdict_fields: vf,
            survey_fields: sf,
            handoff: vec![
                ("Steps_To_Reproduce__c".into(), "steps_to_reproduce".into()),
                ("Environment__c".into(), "environment".into()),
            ],
            partner_from_account: true,
        }
    }

    /// The files for the default field names.
    fn files(connector: &str, url: &str, survey: bool) -> Vec<(String, String)> {
        metadata(
            connector,
            url,
            survey,
            &names(VerdictFields::default(), SurveyCaseFields::default()),
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
            .chain([precheck_field(&vf)])
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
        // Every XML file is well-formed.
        for (path, xml) in files.iter().filter(|(p, _)| p.ends_with(".xml")) {
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
        let files = metadata(
            "acme-sf",
            "https://gate.example.org",
            true,
            &InstallNames {
                partner_from_account: false,
                ..names(vf, sf)
            },
        );
        assert!(
            get(&files, "classes/EscalationGate.cls").contains("PARTNER_FROM_ACCOUNT = false;")
        );
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
        let config = config_module(&files);
        assert_eq!(config["fields"]["verdict"], "Partner_Verdict__c");
        assert_eq!(config["fields"]["reviewed"], "Partner_Decision__c");
        assert_eq!(config["fields"]["precheck"], "Escalation_Precheck__c");
        assert_eq!(
            config["values"],
            serde_json::json!({"good": "Solid", "bad": "Weak", "review": "Needs_Look"})
        );
    }

    /// The connector's config module, as JSON.
    fn config_module(files: &[(String, String)]) -> serde_json::Value {
        let module = get(files, "lwc/escalationGateConfig/escalationGateConfig.js");
        let json = module
            .split_once("export default ")
            .and_then(|(_, rest)| rest.trim_end().strip_suffix(';'))
            .unwrap_or_else(|| panic!("{module}"));
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn the_components_call_the_connector_through_the_named_credential_which_holds_no_secret() {
        let files = files("acme-sf", "https://gate.example.org/", false);
        let class = get(&files, "classes/EscalationGate.cls");
        assert!(class.contains("'callout:Escalation_Gate/precheck/acme-sf'"));
        assert!(class.contains("PARTNER_FROM_ACCOUNT = true;"));
        assert!(class.contains("@AuraEnabled"));
        assert!(get(&files, "classes/EscalationGateTest.cls").contains("HttpCalloutMock"));
        for (path, text) in &files {
            assert!(!text.contains("__EG_"), "{path} keeps a placeholder");
        }
        let package = get(&files, "package.xml");
        assert!(package.contains(
            "<members>EscalationGate</members><members>EscalationGateTest</members><name>ApexClass</name>"
        ));
        for bundle in BUNDLES {
            assert!(package.contains(&format!("<members>{bundle}</members>")));
            get(&files, &format!("lwc/{bundle}/{bundle}.js"));
            assert!(
                get(&files, &format!("lwc/{bundle}/{bundle}.js-meta.xml"))
                    .contains(&format!("<apiVersion>{API_VERSION}</apiVersion>"))
            );
        }
        for path in files
            .iter()
            .map(|(p, _)| p)
            .filter(|p| p.starts_with("lwc/"))
        {
            assert!(
                BUNDLES
                    .iter()
                    .any(|b| path.starts_with(&format!("lwc/{b}/"))),
                "{path}"
            );
        }
        assert!(package.contains("<members>Escalation_Gate</members><name>NamedCredential</name>"));
        assert!(
            package.contains("<members>Escalation_Gate</members><name>ExternalCredential</name>")
        );
        assert!(package.contains("<members>Escalation_Gate_User</members>"));
        let named = get(
            &files,
            "namedCredentials/Escalation_Gate.namedCredential-meta.xml",
        );
        assert!(named.contains("<parameterValue>https://gate.example.org</parameterValue>"));
        assert!(named.contains("<namedCredentialType>SecuredEndpoint</namedCredentialType>"));
        assert!(named.contains("<externalCredential>Escalation_Gate</externalCredential>"));
        let external = get(
            &files,
            "externalCredentials/Escalation_Gate.externalCredential-meta.xml",
        );
        assert!(external.contains(
            "<parameterName>Authorization</parameterName>\n        <parameterType>AuthHeader</parameterType>\n        <parameterValue>Bearer {!$Credential.Escalation_Gate.secret}</parameterValue>"
        ));
        assert!(external.contains("<parameterType>NamedPrincipal</parameterType>"));
        let grants = "<classAccesses><apexClass>EscalationGate</apexClass><enabled>true</enabled></classAccesses>";
        let principal =
            "<externalCredentialPrincipal>Escalation_Gate-Precheck</externalCredentialPrincipal>";
        for set in ["Escalation_Gate_Reviewer", "Escalation_Gate_User"] {
            let xml = get(
                &files,
                &format!("permissionsets/{set}.permissionset-meta.xml"),
            );
            assert!(xml.contains(grants), "{set}");
            assert!(xml.contains(principal), "{set}");
        }
        let user = get(
            &files,
            "permissionsets/Escalation_Gate_User.permissionset-meta.xml",
        );
        assert!(
            user.contains("<editable>true</editable><field>Case.Escalation_Precheck__c</field>")
        );
        assert!(!user.contains("Escalation_Reviewed_Quality__c"));
        let reviewer = get(
            &files,
            "permissionsets/Escalation_Gate_Reviewer.permissionset-meta.xml",
        );
        assert!(
            reviewer
                .contains("<editable>false</editable><field>Case.Escalation_Precheck__c</field>")
        );
        let precheck = get(
            &files,
            "objects/Case/fields/Escalation_Precheck__c.field-meta.xml",
        );
        for value in ["good", "bad", "review"] {
            assert!(precheck.contains(&format!("<fullName>{value}</fullName>")));
        }
        assert!(package.contains("<members>Case.Escalation_Precheck__c</members>"));
    }

    #[test]
    fn the_config_module_names_the_fields_the_reasons_and_the_hand_off_fields() {
        let config = config_module(&files("acme-sf", "https://gate.example.org", false));
        assert_eq!(config["connector"], "acme-sf");
        assert_eq!(
            config["fields"],
            serde_json::json!({
                "verdict": "Escalation_Quality__c",
                "reason": "Escalation_Quality_Reason__c",
                "detail": "Escalation_Quality_Detail__c",
                "reviewed": "Escalation_Reviewed_Quality__c",
                "overturn": "Escalation_Overturn_Reason__c",
                "precheck": "Escalation_Precheck__c",
            })
        );
        let reasons: Vec<&str> = config["overturnReasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["value"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, crate::helpdesk::records::OVERTURN_REASONS);
        assert_eq!(config["overturnReasons"][0]["to"], "good");
        assert_eq!(config["overturnReasons"][3]["to"], "bad");
        assert_eq!(
            config["handoff"],
            serde_json::json!([
                {"field": "Steps_To_Reproduce__c", "name": "steps_to_reproduce", "label": "Steps to reproduce"},
                {"field": "Environment__c", "name": "environment", "label": "Environment"},
            ])
        );
    }
}
