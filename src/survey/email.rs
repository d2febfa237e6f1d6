//! The survey e-mail: wording (English built in, overridable per connector and locale),
//! rendering with every ticket value escaped, and sending over SMTP with lettre.

use std::collections::BTreeMap;
use std::path::Path;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The placeholders a template may use.
pub const PLACEHOLDERS: &[&str] = &[
    "company",
    "customer_name",
    "ticket_id",
    "subject",
    "link_1",
    "link_2",
    "link_3",
    "link_4",
    "link_5",
    "unsubscribe_url",
];
/// Placeholders the plain-text and HTML bodies must use.
const REQUIRED: &[&str] = &[
    "link_1",
    "link_2",
    "link_3",
    "link_4",
    "link_5",
    "unsubscribe_url",
];

pub const BUILTIN_SUBJECT: &str = "How did we do with your case #{{ticket_id}}?";

pub const BUILTIN_TEXT: &str = "\
Hello {{customer_name}},

your support case #{{ticket_id}} (\"{{subject}}\") was solved recently.
{{company}} asks every customer the same short question, whoever helped them:

How satisfied are you with the support you received?
One click answers it:

  1 - Very dissatisfied   {{link_1}}
  2 - Dissatisfied        {{link_2}}
  3 - Neutral             {{link_3}}
  4 - Satisfied           {{link_4}}
  5 - Very satisfied      {{link_5}}

Your answer goes to {{company}} only. We ask at most once a month.

Thank you,
{{company}}

Do not want these questions? Unsubscribe: {{unsubscribe_url}}
";

pub const BUILTIN_HTML: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>How did we do?</title></head>
<body style="font-family: Arial, sans-serif; color: #222; max-width: 560px; margin: 0 auto; padding: 16px;">
<p>Hello {{customer_name}},</p>
<p>your support case #{{ticket_id}} (&ldquo;{{subject}}&rdquo;) was solved recently.
{{company}} asks every customer the same short question, whoever helped them:</p>
<p><strong>How satisfied are you with the support you received?</strong><br>One click answers it:</p>
<table role="presentation" cellpadding="0" cellspacing="0"><tr>
<td style="padding: 4px;"><a href="{{link_1}}" style="display: inline-block; padding: 10px 14px; border: 1px solid #888; border-radius: 4px; color: #222; text-decoration: none;">1 &ndash; Very dissatisfied</a></td>
<td style="padding: 4px;"><a href="{{link_2}}" style="display: inline-block; padding: 10px 14px; border: 1px solid #888; border-radius: 4px; color: #222; text-decoration: none;">2 &ndash; Dissatisfied</a></td>
<td style="padding: 4px;"><a href="{{link_3}}" style="display: inline-block; padding: 10px 14px; border: 1px solid #888; border-radius: 4px; color: #222; text-decoration: none;">3 &ndash; Neutral</a></td>
<td style="padding: 4px;"><a href="{{link_4}}" style="display: inline-block; padding: 10px 14px; border: 1px solid #888; border-radius: 4px; color: #222; text-decoration: none;">4 &ndash; Satisfied</a></td>
<td style="padding: 4px;"><a href="{{link_5}}" style="display: inline-block; padding: 10px 14px; border: 1px solid #888; border-radius: 4px; color: #222; text-decoration: none;">5 &ndash; Very satisfied</a></td>
</tr></table>
<p>Your answer goes to {{company}} only. We ask at most once a month.</p>
<p>Thank you,<br>{{company}}</p>
<p style="font-size: 12px; color: #666;">Do not want these questions? <a href="{{unsubscribe_url}}">Unsubscribe</a>.</p>
</body>
</html>
"#;

/// One locale's wording.
#[derive(Debug, Clone)]
pub struct Wording {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Wording by lower-case locale (`en`, `de-ch`, ...); `en` is always there.
#[derive(Debug, Clone)]
pub struct Templates(BTreeMap<String, Wording>);

impl Templates {
    pub fn builtin() -> Templates {
        Templates(BTreeMap::from([(
            "en".to_string(),
            Wording {
                subject: BUILTIN_SUBJECT.into(),
                text: BUILTIN_TEXT.into(),
                html: BUILTIN_HTML.into(),
            },
        )]))
    }

    /// Reads `{locale}.subject.txt`, `{locale}.txt` and `{locale}.html` from `dir`, over the
    /// built-in English. Every locale needs all three files; the bodies must use every link.
    pub fn load(dir: &Path) -> Result<Templates, String> {
        let mut out = Templates::builtin();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| format!("cannot read the folder `{}`: {e}", dir.display()))?;
        let mut locales: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter_map(|n| n.strip_suffix(".html").map(str::to_string))
            .collect();
        locales.sort();
        if locales.is_empty() {
            return Err(format!(
                "`{}` has no `{{locale}}.html` template",
                dir.display()
            ));
        }
        for locale in locales {
            let read = |suffix: &str| {
                let path = dir.join(format!("{locale}{suffix}"));
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
            };
            let w = Wording {
                subject: read(".subject.txt")?.trim().to_string(),
                text: read(".txt")?,
                html: read(".html")?,
            };
            for (what, t, required) in [
                ("subject", &w.subject, &[][..]),
                ("txt", &w.text, REQUIRED),
                ("html", &w.html, REQUIRED),
            ] {
                check(t, required).map_err(|e| format!("{locale}.{what}: {e}"))?;
            }
            out.0.insert(locale.to_ascii_lowercase(), w);
        }
        Ok(out)
    }

    /// The wording for `locale` (`de-ch` → `de-ch`, then `de`, then `en`).
    pub fn for_locale(&self, locale: Option<&str>) -> &Wording {
        let l = crate::escalation::locale_of(locale.unwrap_or("en"));
        let lang = l.split('-').next().unwrap_or("en").to_string();
        self.0
            .get(&l)
            .or_else(|| self.0.get(&lang))
            .unwrap_or_else(|| &self.0["en"])
    }
}

fn check(template: &str, required: &[&str]) -> Result<(), String> {
    let used = placeholders(template);
    if let Some(unknown) = used.iter().find(|p| !PLACEHOLDERS.contains(&p.as_str())) {
        return Err(format!(
            "unknown placeholder {{{{{unknown}}}}} (known: {})",
            PLACEHOLDERS.join(", ")
        ));
    }
    if let Some(missing) = required.iter().find(|r| !used.iter().any(|u| u == *r)) {
        return Err(format!("the placeholder {{{{{missing}}}}} is missing"));
    }
    Ok(())
}

fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Fills `{{name}}` placeholders in one pass (a value that itself reads `{{link_1}}` stays
/// text). With `html`, every value is escaped.
pub fn render(template: &str, values: &BTreeMap<&str, String>, html: bool) -> String {
    fill(template, |name| {
        values
            .get(name)
            .map(|v| if html { escape_html(v) } else { v.clone() })
    })
}

/// Replaces each `{{name}}` of `template` (name trimmed) with `value(name)` in one pass; a
/// placeholder `value` knows nothing of (`None`) stays as written.
pub fn fill(template: &str, value: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        match value(after[..end].trim()) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Ticket text as a one-line value: no control characters, at most `max` characters.
pub fn one_line(s: &str, max: usize) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    if trimmed.chars().count() > max {
        let mut t: String = trimmed.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        trimmed
    }
}

/// A rendered survey message.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub fn render_all(w: &Wording, values: &BTreeMap<&str, String>) -> Rendered {
    Rendered {
        subject: one_line(&render(&w.subject, values, false), 200),
        text: render(&w.text, values, false),
        html: render(&w.html, values, true),
    }
}

/// A header with a fixed name, e.g. `List-Unsubscribe: <https://...>` (RFC 2369),
/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058) or `Auto-Submitted:
/// auto-generated` (RFC 3834: no auto-replies to the survey).
fn raw_header(name: &'static str, value: String) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value)
}

/// Why a message did not go out.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The server refused the recipient or message for good (5xx): trying again will not help.
    #[error("the mail server refused the message: {0}")]
    Permanent(String),
    /// The server is down, slow or answered 4xx: try again later.
    #[error("the mail server is unavailable: {0}")]
    Transient(String),
}

/// The SMTP side of one connector.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    pub from: Mailbox,
    reply_to: Option<Mailbox>,
    pub templates: Templates,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from).finish()
    }
}

impl Mailer {
    /// Builds the transport; no connection is made until the first message.
    /// With `starttls` the session must switch to TLS before anything else (credentials
    /// included) is sent; with `tls` it is TLS from the first byte. The server's certificate is
    /// checked against the public roots plus the connector's `ca_file`.
    pub fn new(s: EmailSettings) -> Result<Mailer, lettre::transport::smtp::Error> {
        let parameters = || {
            let mut parameters = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                parameters = parameters.add_root_certificate(Certificate::from_pem(pem)?);
            }
            parameters.build_rustls()
        };
        let tls = match s.tls {
            TlsMode::Starttls => Tls::Required(parameters()?),
            TlsMode::Tls => Tls::Wrapper(parameters()?),
            TlsMode::None => Tls::None,
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
            .tls(tls)
            .port(s.port)
            .timeout(Some(s.timeout));
        if let Some((user, password)) = &s.credentials {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                password.expose_secret().to_string(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            from: s.from,
            reply_to: s.reply_to,
            templates: s.templates,
        })
    }

    /// Sends one survey message. `message_id` is stable per ticket (a resend is recognisable).
    pub async fn send(
        &self,
        to: Mailbox,
        rendered: &Rendered,
        unsubscribe_url: &str,
        message_id: &str,
    ) -> Result<(), MailError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(rendered.subject.clone())
            .message_id(Some(message_id.to_string()))
            .raw_header(raw_header(
                "List-Unsubscribe",
                format!("<{unsubscribe_url}>"),
            ))
            .raw_header(raw_header(
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".into(),
            ))
            .raw_header(raw_header("Auto-Submitted", "auto-generated".into()));
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let message = builder
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(rendered.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(rendered.html.clone()),
                    ),
            )
            .map_err(|e| MailError::Permanent(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Permanent(e.to_string())),
            Err(e) => Err(MailError::Transient(e.to_string())),
        }
    }
}

#[derive(Debug)]
pub struct EmailSettings {
    pub from: lettre::message::Mailbox,
    pub reply_to: Option<lettre::message::Mailbox>,
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Extra trusted root certificates (PEM, checked to hold at least one).
    pub ca_pem: Option<Vec<u8>>,
    pub credentials: Option<(String, SecretString)>,
    pub timeout: std::time::Duration,
    pub templates: Templates,
}

#[derive(Debug, Default, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TlsMode {
    #[default]
    Starttls,
    Tls,
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(subject: &str) -> BTreeMap<&'static str, String> {
        let mut v = BTreeMap::from([
            ("company", "Ledgerly".to_string()),
            ("customer_name", "Dana <b>".to_string()),
            ("ticket_id", "42".to_string()),
            ("subject", subject.to_string()),
            ("unsubscribe_url", "https://g.example/u?t=a&b".to_string()),
        ]);
        for (i, k) in ["link_1", "link_2", "link_3", "link_4", "link_5"]
            .iter()
            .enumerate()
        {
            v.insert(k, format!("https://g.example/r?t=x{i}&s={}", i + 1));
        }
        v
    }

    #[test]
    fn hostile_ticket_text_is_escaped_and_never_expanded() {
        let hostile = "<script>alert(1)</script> \"quoted\" & {{link_1}} '\r\nBcc: x@evil.example";
        let r = render_all(&Templates::builtin().0["en"], &values(hostile));
        assert!(!r.html.contains("<script>"), "{}", r.html);
        assert!(r.html.contains(
            "&lt;script&gt;alert(1)&lt;/script&gt; &quot;quoted&quot; &amp; {{link_1}} &#39;"
        ));
        assert!(r.html.contains("Dana &lt;b&gt;"));
        assert!(
            r.html
                .contains(r#"href="https://g.example/r?t=x0&amp;s=1""#)
        );
        // The placeholder inside the value stays text in the plain part too.
        assert!(r.text.contains("& {{link_1}}"));
        assert!(!r.subject.contains('\n') && !r.subject.contains('\r'));
        assert_eq!(r.subject, "How did we do with your case #42?");
    }

    #[test]
    fn templates_are_checked_and_chosen_by_locale() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("de.subject.txt"), "Fall {{ticket_id}}").unwrap();
        std::fs::write(
            dir.path().join("de.txt"),
            "{{link_1}} {{link_2}} {{link_3}} {{link_4}} {{link_5}} {{unsubscribe_url}}",
        )
        .unwrap();
        std::fs::write(dir.path().join("de.html"), "{{link_1}} {{oops}}").unwrap();
        let err = Templates::load(dir.path()).unwrap_err();
        assert!(err.contains("unknown placeholder {{oops}}"), "{err}");
        std::fs::write(dir.path().join("de.html"), "{{link_1}} {{company}}").unwrap();
        let err = Templates::load(dir.path()).unwrap_err();
        assert!(err.contains("{{link_2}} is missing"), "{err}");
        std::fs::write(
            dir.path().join("de.html"),
            "<p>{{subject}}</p> {{link_1}} {{link_2}} {{link_3}} {{link_4}} {{link_5}} {{unsubscribe_url}}",
        )
        .unwrap();
        let t = Templates::load(dir.path()).unwrap();
        assert_eq!(t.for_locale(Some("de-CH")).subject, "Fall {{ticket_id}}");
        assert_eq!(t.for_locale(Some("fr")).subject, BUILTIN_SUBJECT);
        assert_eq!(t.for_locale(None).subject, BUILTIN_SUBJECT);
        let r = render_all(t.for_locale(Some("de")), &values("<i>x</i>"));
        assert!(r.html.starts_with("<p>&lt;i&gt;x&lt;/i&gt;</p>"));
    }
}
