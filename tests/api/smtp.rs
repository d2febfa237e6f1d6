//! A real SMTP server on loopback: `tests/smtp_sink.py` (Python aiosmtpd), started per test.
//! Each received message is read back as JSON with its headers and decoded text and HTML parts.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

pub struct SmtpServer {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub rcpt_tos: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub text: String,
    pub html: String,
    pub raw: String,
    /// The message came over TLS (STARTTLS or TLS from the first byte).
    pub tls: bool,
    /// The user that authenticated, if the server asked for AUTH.
    pub auth_user: Option<String>,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every `http://` link in the HTML part (`href="..."`, HTML entities decoded).
    pub fn html_links(&self) -> Vec<String> {
        self.html
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .map(|s| s.replace("&amp;", "&"))
            .collect()
    }

    /// The URL of the `List-Unsubscribe` header (without its angle brackets).
    pub fn unsubscribe_url(&self) -> String {
        self.header("List-Unsubscribe")
            .expect("a List-Unsubscribe header")
            .trim_matches(['<', '>'])
            .to_string()
    }

    /// Every `http://` link in the plain-text part.
    pub fn text_links(&self) -> Vec<String> {
        self.text
            .split_whitespace()
            .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(str::to_string)
            .collect()
    }
}

impl SmtpServer {
    /// Starts the server; panics with a hint when Python or aiosmtpd is missing (`scripts/test`
    /// installs it).
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(&[])
    }

    /// Starts the server with options of `tests/smtp_sink.py` (`--starttls`, `--tls`, `--auth`).
    pub fn start_with(options: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .args(options)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/test installs aiosmtpd)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!(
                "the SMTP server did not start (is aiosmtpd installed? run scripts/test): {line:?}"
            )
        });
        SmtpServer { port, child, dir }
    }

    /// Messages received so far, in order.
    pub fn messages(&self) -> Vec<Mail> {
        let mut paths: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|p| {
                let v: Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                Mail {
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r.as_str().unwrap().to_string())
                        .collect(),
                    headers: v["headers"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|h| (h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()))
                        .collect(),
                    text: s("text"),
                    html: s("html"),
                    raw: s("raw"),
                    tls: v["tls"].as_bool().unwrap_or(false),
                    auth_user: v["auth_user"].as_str().map(str::to_string),
                }
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        // Closing stdin stops it; kill the child we started in case it hangs.
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
