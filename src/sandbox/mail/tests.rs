use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::*;
use crate::survey::email::{EmailSettings, TlsMode};
use crate::survey::email::{Mailer, Rendered, Templates};

async fn catcher() -> (u16, Arc<Mailbox>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mailbox = Arc::new(Mailbox::default());
    tokio::spawn(serve(listener, mailbox.clone()));
    (port, mailbox)
}

/// A client speaking SMTP line by line.
struct Client {
    read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(port: u16) -> (Client, String) {
        let (read, write) = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap()
            .into_split();
        let mut c = Client {
            read: BufReader::new(read),
            write,
        };
        let greeting = c.answer().await;
        (c, greeting)
    }

    /// One reply, its lines joined by `|`.
    async fn answer(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            self.read.read_line(&mut line).await.unwrap();
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return lines.join("|");
            }
        }
    }

    async fn send(&mut self, text: &str) -> String {
        self.write.write_all(text.as_bytes()).await.unwrap();
        self.write.write_all(b"\r\n").await.unwrap();
        self.answer().await
    }
}

fn code(answer: &str) -> &str {
    &answer[..3]
}

#[tokio::test]
async fn the_dialogue_follows_rfc_5321_and_dots_are_unstuffed() {
    let (port, mailbox) = catcher().await;
    let (mut c, greeting) = Client::connect(port).await;
    assert_eq!(code(&greeting), "220");
    assert_eq!(code(&c.send("MAIL FROM:<a@vendor.example>").await), "503");
    assert_eq!(code(&c.send("HELO").await), "501");
    let ehlo = c.send("EHLO client.example").await;
    assert!(ehlo.starts_with("250-") && ehlo.contains("SIZE"), "{ehlo}");
    assert_eq!(code(&c.send("RCPT TO:<b@customer.example>").await), "503");
    assert_eq!(code(&c.send("DATA").await), "503");
    assert_eq!(code(&c.send("MAIL FROM:a@vendor.example").await), "501");
    assert_eq!(code(&c.send("MAIL FROM:<a@vendor.example>").await), "250");
    assert_eq!(code(&c.send("RSET").await), "250");
    assert_eq!(
        code(&c.send("RCPT TO:<b@customer.example>").await),
        "503",
        "RSET ends the transaction"
    );
    assert_eq!(
        code(
            &c.send("MAIL FROM:<a@vendor.example> SIZE=99999999999")
                .await
        ),
        "552"
    );
    assert_eq!(
        code(&c.send("MAIL FROM:<a@vendor.example> SIZE=100").await),
        "250"
    );
    assert_eq!(code(&c.send("RCPT TO:<b@customer.example>").await), "250");
    assert_eq!(code(&c.send("NOOP").await), "250");
    assert_eq!(code(&c.send("VRFY b").await), "252");
    assert_eq!(code(&c.send("STARTTLS").await), "502");
    assert_eq!(code(&c.send("DATA").await), "354");
    let kept = c
        .send("Subject: dots\r\n\r\n..a line that starts with a dot\r\nplain\r\n.")
        .await;
    assert_eq!(code(&kept), "250");
    assert_eq!(
        code(&c.send("DATA").await),
        "503",
        "a new transaction needs MAIL"
    );
    assert_eq!(code(&c.send("QUIT").await), "221");
    let messages = mailbox.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.mail_from, "a@vendor.example");
    assert_eq!(m.rcpt_to, ["b@customer.example"]);
    assert_eq!(
        String::from_utf8_lossy(&m.raw),
        "Subject: dots\r\n\r\n.a line that starts with a dot\r\nplain\r\n"
    );
    assert_eq!(m.parsed().subject, "dots");
    assert_eq!(
        m.parsed().text.as_deref(),
        Some(".a line that starts with a dot\nplain\n")
    );
}

#[tokio::test]
async fn the_surveys_mailer_delivers_to_it_in_plain_smtp() {
    let (port, mailbox) = catcher().await;
    let mailer = Mailer::new(EmailSettings {
        from: "Ledgerly Support <survey@ledgerly.example>"
            .parse()
            .unwrap(),
        reply_to: None,
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        ca_pem: None,
        credentials: None,
        timeout: std::time::Duration::from_secs(5),
        templates: Templates::builtin(),
    })
    .unwrap();
    let long = "é ".repeat(200);
    let rendered = Rendered {
        subject: "Wie war unser Support? Café ✓ #42".into(),
        text: format!("Hello Dana,\nplease rate: http://127.0.0.1:8080/survey/s/r?t=abc\n{long}\n"),
        html: format!(
            "<p>Hello Dana, <a href=\"http://127.0.0.1:8080/survey/s/r?t=abc&amp;x=1\">rate</a></p><p>{long}</p>"
        ),
    };
    mailer
        .send(
            "Dana Reyes <dana@customer.example>".parse().unwrap(),
            &rendered,
            "http://127.0.0.1:8080/survey/s/unsubscribe?t=abc",
            "<csat.test.42@ledgerly.example>",
        )
        .await
        .unwrap();
    let messages = mailbox.messages();
    assert_eq!(messages.len(), 1);
    let p = messages[0].parsed();
    assert_eq!(p.subject, "Wie war unser Support? Café ✓ #42");
    assert!(p.from.contains("survey@ledgerly.example"), "{}", p.from);
    assert!(p.to.contains("dana@customer.example"), "{}", p.to);
    assert_eq!(
        p.text.as_deref().map(str::trim_end),
        Some(rendered.text.trim_end())
    );
    assert_eq!(
        p.html.as_deref().map(str::trim_end),
        Some(rendered.html.trim_end())
    );
    assert_eq!(messages[0].rcpt_to, ["dana@customer.example"]);
}

#[test]
fn parts_headers_and_encodings_are_decoded() {
    let raw = "Subject: =?utf-8?Q?Caf=C3=A9?= =?utf-8?B?IOKckw==?= done\r\n\
        Content-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n\r\n\
        preamble\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 soft=\r\nbreak\r\n\
        --b1\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        PHA+aGk8L3A+\r\n--b1--\r\nepilogue\r\n";
    let m = Message {
        id: 1,
        received_at: Utc::now(),
        mail_from: String::new(),
        rcpt_to: Vec::new(),
        raw: raw.as_bytes().to_vec(),
    };
    let p = m.parsed();
    assert_eq!(p.subject, "Café ✓ done");
    assert_eq!(p.text.as_deref(), Some("Café softbreak"));
    assert_eq!(p.html.as_deref(), Some("<p>hi</p>"));
    assert_eq!(decode_words("=?x?Z?bad?= plain"), "=?x?Z?bad?= plain");
}
