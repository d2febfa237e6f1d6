//! The sandbox's mail catcher: a small SMTP server (RFC 5321) on loopback that accepts every
//! message and keeps it in memory for the sandbox's pages, so the blind survey's e-mail can be
//! read without a mail account.
//!
//! Commands: `EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`, `DATA` (ended by a line holding one dot;
//! a line that starts with a dot loses that dot, RFC 5321 4.5.2), `RSET`, `NOOP`, `VRFY` (252),
//! `QUIT`; others answer 502. Out of sequence: 503; bad arguments: 501. No TLS and no AUTH: it
//! listens on loopback only, and a connector reaches it with `tls = "none"`. At most
//! [`MAX_MESSAGES`] are kept (the oldest go first), each at most [`MAX_MESSAGE_BYTES`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader,
};
use tokio::net::{TcpListener, TcpStream};

/// Messages kept; the oldest is dropped for a new one.
pub const MAX_MESSAGES: usize = 500;
/// The largest message accepted (the `SIZE` extension says so).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;
/// Recipients of one message.
const MAX_RECIPIENTS: usize = 100;
/// The longest command line (RFC 5321 4.5.3.1.4 says 512 octets; extensions make it longer).
const MAX_COMMAND_LINE: usize = 4096;
/// The longest line of message text taken (RFC 5321 says 1000 octets; a catcher is lenient).
const MAX_TEXT_LINE: usize = 64 * 1024;
/// A client silent this long is disconnected (RFC 5321 4.5.3.2.7: 5 minutes).
const IDLE: Duration = Duration::from_secs(300);
/// Sessions served at once.
const MAX_SESSIONS: usize = 32;
/// The name the server greets with.
const DOMAIN: &str = "sandbox.escalation-gate.localhost";

/// One message as it arrived.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: u64,
    pub received_at: DateTime<Utc>,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent after `DATA` (dots unstuffed), headers and body.
    pub raw: Vec<u8>,
}

/// The messages received, newest last.
#[derive(Default)]
pub struct Mailbox {
    messages: Mutex<VecDeque<Message>>,
    next_id: AtomicU64,
}

impl Mailbox {
    /// Every message kept, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().iter().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Message> {
        self.lock().iter().find(|m| m.id == id).cloned()
    }

    fn keep(&self, mail_from: String, rcpt_to: Vec<String>, raw: Vec<u8>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let mut messages = self.lock();
        if messages.len() >= MAX_MESSAGES {
            messages.pop_front();
        }
        messages.push_back(Message {
            id,
            received_at: Utc::now(),
            mail_from,
            rcpt_to,
            raw,
        });
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        self.messages
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Accepts SMTP sessions on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, mailbox: Arc<Mailbox>) {
    let sessions = Arc::new(tokio::sync::Semaphore::new(MAX_SESSIONS));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = sessions.clone().acquire_owned().await else {
            return;
        };
        let mailbox = mailbox.clone();
        tokio::spawn(async move {
            if let Err(e) = session(stream, &mailbox).await {
                tracing::debug!(error = %e, "Mail catcher session ended");
            }
            drop(permit);
        });
    }
}

/// Where a session is in the mail transaction.
#[derive(Default)]
struct Transaction {
    greeted: bool,
    from: Option<String>,
    to: Vec<String>,
}

async fn session(stream: TcpStream, mailbox: &Mailbox) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    reply(
        &mut write,
        &format!("220 {DOMAIN} ESMTP escalation-gate sandbox mail catcher"),
    )
    .await?;
    let mut t = Transaction::default();
    loop {
        let line = match tokio::time::timeout(IDLE, read_line(&mut read, MAX_COMMAND_LINE)).await {
            Err(_) => {
                return reply(&mut write, "421 4.4.2 Idle too long, closing").await;
            }
            Ok(Ok(Line::End)) => return Ok(()),
            Ok(Ok(Line::TooLong)) => {
                reply(&mut write, "500 5.5.2 Line too long").await?;
                continue;
            }
            Ok(Ok(Line::Text(line))) => line,
            Ok(Err(e)) => return Err(e),
        };
        let line = String::from_utf8_lossy(&line).trim_end().to_string();
        let (verb, arg) = line
            .split_once(' ')
            .map_or((line.as_str(), ""), |(v, a)| (v, a.trim()));
        let answer = match verb.to_ascii_uppercase().as_str() {
            "EHLO" | "HELO" if arg.is_empty() => "501 5.5.4 Give your domain".to_string(),
            "EHLO" => {
                t = Transaction {
                    greeted: true,
                    ..Transaction::default()
                };
                format!("250-{DOMAIN} greets {arg}\r\n250-8BITMIME\r\n250 SIZE {MAX_MESSAGE_BYTES}")
            }
            "HELO" => {
                t = Transaction {
                    greeted: true,
                    ..Transaction::default()
                };
                format!("250 {DOMAIN}")
            }
            "MAIL" if !t.greeted => "503 5.5.1 Send EHLO or HELO first".into(),
            "MAIL" if t.from.is_some() => {
                "503 5.5.1 A transaction is under way (RSET first)".into()
            }
            "MAIL" => match path(arg, "FROM:") {
                Some((_, params)) if too_big(params) => {
                    format!("552 5.3.4 Messages are limited to {MAX_MESSAGE_BYTES} bytes")
                }
                Some((from, _)) => {
                    t.from = Some(from);
                    "250 2.1.0 OK".into()
                }
                None => "501 5.5.4 Syntax: MAIL FROM:<address>".into(),
            },
            "RCPT" if t.from.is_none() => "503 5.5.1 Send MAIL first".into(),
            "RCPT" if t.to.len() >= MAX_RECIPIENTS => "452 4.5.3 Too many recipients".into(),
            "RCPT" => match path(arg, "TO:") {
                Some((to, _)) if !to.is_empty() => {
                    t.to.push(to);
                    "250 2.1.5 OK".into()
                }
                _ => "501 5.5.4 Syntax: RCPT TO:<address>".into(),
            },
            "DATA" if !arg.is_empty() => "501 5.5.4 DATA takes no argument".into(),
            "DATA" if t.to.is_empty() => "503 5.5.1 Send RCPT first".into(),
            "DATA" => {
                reply(&mut write, "354 End data with <CR><LF>.<CR><LF>").await?;
                let answer = match read_data(&mut read).await? {
                    Some(raw) => {
                        let id = mailbox.keep(
                            t.from.take().unwrap_or_default(),
                            std::mem::take(&mut t.to),
                            raw,
                        );
                        format!("250 2.0.0 OK: kept as message {id}")
                    }
                    None => format!("552 5.3.4 Messages are limited to {MAX_MESSAGE_BYTES} bytes"),
                };
                t.from = None;
                t.to.clear();
                answer
            }
            "RSET" => {
                t.from = None;
                t.to.clear();
                "250 2.0.0 OK".into()
            }
            "NOOP" => "250 2.0.0 OK".into(),
            "VRFY" => "252 2.1.5 Cannot VRFY, but every message is kept".into(),
            "QUIT" => {
                return reply(&mut write, "221 2.0.0 Bye").await;
            }
            "" => "500 5.5.2 Empty command".into(),
            _ => "502 5.5.1 Command not implemented".into(),
        };
        reply(&mut write, &answer).await?;
    }
}

async fn reply(write: &mut (impl AsyncWrite + Unpin), text: &str) -> std::io::Result<()> {
    write.write_all(text.as_bytes()).await?;
    write.write_all(b"\r\n").await?;
    write.flush().await
}

enum Line {
    Text(Vec<u8>),
    TooLong,
    End,
}

/// One line without its line ending (CRLF, or a bare LF); a longer one is read to its end and
/// reported too long.
async fn read_line(read: &mut (impl AsyncBufRead + Unpin), max: usize) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let n = (&mut *read)
        .take(max as u64 + 2)
        .read_until(b'\n', &mut line)
        .await?;
    if n == 0 {
        return Ok(Line::End);
    }
    if line.last() != Some(&b'\n') {
        // Past the limit: skip the rest of the line.
        let mut rest = Vec::new();
        read.read_until(b'\n', &mut rest).await?;
        return Ok(Line::TooLong);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Line::Text(line))
}

/// The message text after `DATA`, dots unstuffed, lines joined with CRLF; `None` when it was
/// larger than [`MAX_MESSAGE_BYTES`] (read to its end all the same).
async fn read_data(read: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut raw = Vec::new();
    let mut too_big = false;
    loop {
        let line = match tokio::time::timeout(IDLE, read_line(read, MAX_TEXT_LINE)).await {
            Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
            Ok(line) => line?,
        };
        let line = match line {
            Line::End => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Line::TooLong => {
                too_big = true;
                continue;
            }
            Line::Text(line) => line,
        };
        if line == b"." {
            return Ok((!too_big).then_some(raw));
        }
        let line = line.strip_prefix(b".").unwrap_or(&line);
        if raw.len() + line.len() + 2 > MAX_MESSAGE_BYTES {
            too_big = true;
        }
        if !too_big {
            raw.extend_from_slice(line);
            raw.extend_from_slice(b"\r\n");
        }
    }
}

/// `<address>` after `keyword` (e.g. `FROM:`), and the parameters after it.
fn path<'a>(arg: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some((inner[..end].to_string(), inner[end + 1..].trim()))
}

/// Whether a `SIZE=` parameter announces more than [`MAX_MESSAGE_BYTES`].
fn too_big(params: &str) -> bool {
    params.split_whitespace().any(|p| {
        p.get(..5).is_some_and(|k| k.eq_ignore_ascii_case("SIZE="))
            && p[5..].parse::<usize>().is_ok_and(|n| n > MAX_MESSAGE_BYTES)
    })
}

/// A message read for a person: its main headers (encoded words decoded) and its first plain
/// text and HTML parts (transfer encodings decoded, line breaks as `\n`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub subject: String,
    pub from: String,
    pub to: String,
    pub date: String,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl Message {
    pub fn parsed(&self) -> Parsed {
        let (headers, body) = split_headers(&self.raw);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| decode_words(v))
                .unwrap_or_default()
        };
        let mut parsed = Parsed {
            subject: header("Subject"),
            from: header("From"),
            to: header("To"),
            date: header("Date"),
            ..Parsed::default()
        };
        collect_parts(&headers, body, &mut parsed, 0);
        parsed
    }
}

/// Headers (unfolded) and the body after the first empty line.
fn split_headers(raw: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let text_end = find(raw, b"\r\n\r\n")
        .map(|i| (i, i + 4))
        .or_else(|| find(raw, b"\n\n").map(|i| (i, i + 2)))
        .unwrap_or((raw.len(), raw.len()));
    let head = String::from_utf8_lossy(&raw[..text_end.0]);
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    (headers, &raw[text_end.1..])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A header's main value and its parameters (`text/plain; charset=utf-8`).
fn value_and_params(value: &str) -> (String, Vec<(String, String)>) {
    let mut parts = value.split(';');
    let main = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_string(),
            ))
        })
        .collect();
    (main, params)
}

/// Walks a MIME part: keeps the first `text/plain` and `text/html` leaves.
fn collect_parts(headers: &[(String, String)], body: &[u8], out: &mut Parsed, depth: usize) {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let (kind, params) = value_and_params(header("Content-Type").unwrap_or("text/plain"));
    if kind.starts_with("multipart/") {
        let Some(boundary) = params.iter().find(|(k, _)| k == "boundary").map(|(_, v)| v) else {
            return;
        };
        if depth > 8 {
            return;
        }
        for part in multipart(body, boundary) {
            let (h, b) = split_headers(part);
            collect_parts(&h, b, out, depth + 1);
        }
        return;
    }
    let encoding = header("Content-Transfer-Encoding")
        .unwrap_or("7bit")
        .trim()
        .to_ascii_lowercase();
    let decoded = match encoding.as_str() {
        "base64" => {
            let compact: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .collect();
            BASE64.decode(compact).unwrap_or_default()
        }
        "quoted-printable" => quoted_printable(body),
        _ => body.to_vec(),
    };
    let text = String::from_utf8_lossy(&decoded).replace("\r\n", "\n");
    match kind.as_str() {
        "text/plain" if out.text.is_none() => out.text = Some(text),
        "text/html" if out.html.is_none() => out.html = Some(text),
        _ => {}
    }
}

/// The parts between `--boundary` lines, up to the closing `--boundary--`.
fn multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<&'a [u8]> {
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut start: Option<usize> = None;
    let mut at = 0;
    while at < body.len() {
        let end = body[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(body.len(), |p| at + p + 1);
        let line = String::from_utf8_lossy(&body[at..end]);
        let line = line.trim_end();
        if line == delimiter || line == format!("{delimiter}--") {
            if let Some(s) = start {
                // The line break before the delimiter belongs to the delimiter.
                let mut e = at;
                if e > s && body[e - 1] == b'\n' {
                    e -= 1;
                }
                if e > s && body[e - 1] == b'\r' {
                    e -= 1;
                }
                parts.push(&body[s..e]);
            }
            if line.ends_with("--") && line != delimiter {
                break;
            }
            start = Some(end);
        }
        at = end;
    }
    parts
}

/// Quoted-printable (RFC 2045 6.7): `=XX` octets and soft line breaks (`=` at a line's end).
fn quoted_printable(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let hex = |b: u8| (b as char).to_digit(16);
    while i < body.len() {
        match body[i] {
            b'=' if body.get(i + 1) == Some(&b'\r') && body.get(i + 2) == Some(&b'\n') => i += 3,
            b'=' if body.get(i + 1) == Some(&b'\n') => i += 2,
            b'=' => match (
                body.get(i + 1).and_then(|b| hex(*b)),
                body.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                }
                _ => {
                    out.push(b'=');
                    i += 1;
                }
            },
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// A header value with its RFC 2047 encoded words (`=?utf-8?B?...?=`, `=?utf-8?Q?...?=`)
/// decoded; white space between two encoded words is dropped, as the RFC says.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut after_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        match encoded_word(&rest[start..]) {
            Some((text, consumed)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &rest[start + consumed..];
                after_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The encoded word `s` starts with, decoded, and how many bytes of `s` it took.
fn encoded_word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (_charset, tail) = inner.split_once('?')?;
    let (encoding, tail) = tail.split_once('?')?;
    let end = tail.find("?=")?;
    let text = &tail[..end];
    let bytes = match encoding.to_ascii_uppercase().as_str() {
        "B" => BASE64.decode(text).ok()?,
        "Q" => quoted_printable(text.replace('_', " ").as_bytes()),
        _ => return None,
    };
    let consumed = s.len() - tail[end + 2..].len();
    Some((String::from_utf8_lossy(&bytes).into_owned(), consumed))
}

#[cfg(test)]
mod tests;
