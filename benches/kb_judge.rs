//! The judge at vendor scale, in one run: a knowledge base of generated articles (50,000 by
//! default) as a folder of Markdown files, served by the release binary against a fake Zendesk
//! on loopback (the integration tests' own). It measures:
//!
//! - the first start (the index is built and persisted), then start to ready (`/healthz` 200)
//!   with the persisted index unchanged, three times, and the service's idle resident memory;
//! - the judge alone (search of the persisted index + filter + re-score, the path of
//!   `Connector::judge` and `eval`) at concurrency 1, in this process, on the same index;
//! - webhooks end to end at concurrency 1 (ticket read, judgement, write-back);
//! - the check before escalating (`POST /precheck/{connector}`, a draft with the bench's shared
//!   secret) at concurrency 1: the same search and judgement, nothing read or written;
//! - with the judge's threads saturated (16 webhooks in flight): `/healthz` latency from a
//!   client thread of its own, and the service's upstream latency metric against the fake
//!   helpdesk's answer time as a client thread of its own sees it at the same moments.
//!
//! Run: `cargo bench --bench kb_judge`. Optional: `EG_BENCH_ARTICLES` (50000),
//! `EG_BENCH_ESCALATIONS` (2000, judged in process), `EG_BENCH_SATURATION_SECS` (10),
//! `EG_BENCH_IN_FLIGHT` (16). The articles and cases come from a fixed seed: English words drawn
//! with Zipf-like frequencies from the judge's own word list, plus product names and error codes,
//! so every run judges the same texts.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chrono::{TimeZone, Utc};
use escalation_gate::assess::kb::query::kb_query;
use escalation_gate::assess::kb::rescore::{DEFAULT_REVIEW_BOUND, DEFAULT_THRESHOLD};
use escalation_gate::assess::kb::{self, KbSettings};
use escalation_gate::assess::kb::{DEFAULT_GAP_BELOW, DEFAULT_LOCALE, DEFAULT_MAX_CANDIDATES};
use escalation_gate::helpdesk::zendesk::sandbox::FakeZendesk;
use escalation_gate::helpdesk::zendesk::webhook;
use escalation_gate::kb::Article;
use escalation_gate::kb::local::LocalIndex;
use escalation_gate::offline::eval::{Case, Label, Split, escalation};
use escalation_gate::sandbox::sample::Rng;
use serde_json::{Value, json};

mod common;
#[path = "common/connector.rs"]
mod connector;
use common::SECRET;
#[path = "common/memory.rs"]
mod memory;
use memory::{mib, vm};

const WORDS: &str = include_str!("../src/assess/kb/wordfreq_en.txt");

struct Corpus {
    words: Vec<&'static str>,
    products: Vec<String>,
}

impl Corpus {
    fn new(rng: &mut Rng) -> Corpus {
        let words: Vec<&'static str> = WORDS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').next())
            .filter(|w| w.len() >= 2 && w.bytes().all(|b| b.is_ascii_alphabetic()))
            .collect();
        let cap = |w: &str| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        };
        let products = (0..300)
            .map(|_| {
                let a = words[1000 + rng.below(8000)];
                let b = words[1000 + rng.below(8000)];
                format!("{}{}", cap(a), cap(b))
            })
            .collect();
        Corpus { words, products }
    }

    /// A common word: rank drawn log-uniformly (about Zipf's law).
    fn common(&self, rng: &mut Rng) -> &'static str {
        let r = (self.words.len() as f64).powf(rng.unit()) as usize;
        self.words[r.saturating_sub(1).min(self.words.len() - 1)]
    }

    /// A topical word: mid-frequency, what makes one article unlike another.
    fn topical(&self, rng: &mut Rng) -> &'static str {
        self.words[2000 + rng.below(self.words.len() - 2000)]
    }
}

struct Topic {
    product: String,
    version: String,
    code: String,
    words: Vec<&'static str>,
}

fn topic(c: &Corpus, rng: &mut Rng) -> Topic {
    const PREFIX: [&str; 6] = ["SQL", "MQRC", "ERR", "CWSIA", "PI", "KB"];
    Topic {
        product: c.products[rng.below(c.products.len())].clone(),
        version: format!("{}.{}.{}", 1 + rng.below(9), rng.below(5), rng.below(10)),
        code: format!(
            "{}{:05}",
            PREFIX[rng.below(PREFIX.len())],
            rng.below(100_000)
        ),
        words: (0..25).map(|_| c.topical(rng)).collect(),
    }
}

/// `n` words, a share `topical` of them from the topic, in sentences.
fn prose(c: &Corpus, t: &Topic, rng: &mut Rng, n: usize, topical: f64) -> String {
    let mut out = String::with_capacity(n * 7);
    for i in 0..n {
        let w = if rng.unit() < topical {
            t.words[rng.below(t.words.len())]
        } else {
            c.common(rng)
        };
        out.push_str(w);
        out.push(if i % 14 == 13 { '.' } else { ' ' });
        if i % 60 == 59 {
            out.push('\n');
        }
    }
    out
}

fn article(c: &Corpus, t: &Topic, rng: &mut Rng, id: usize) -> Article {
    let title_words: Vec<&str> = (0..5).map(|_| t.words[rng.below(t.words.len())]).collect();
    let body = format!(
        "{} {} {}\n{}\nError {} is reported.\n{}",
        t.product,
        t.version,
        prose(c, t, rng, 20, 0.3),
        prose(c, t, rng, 180, 0.25),
        t.code,
        prose(c, t, rng, 150, 0.25),
    );
    Article {
        withdrawn_at: None,
        id: format!("gen-{id:05}"),
        title: format!("{} {}: {}", t.product, t.version, title_words.join(" ")),
        body,
        url: format!("https://kb.invalid/gen-{id:05}"),
        locale: "en-us".into(),
        published_at: Some(Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap()),
        draft: false,
    }
}

fn case_text(c: &Corpus, t: &Topic, rng: &mut Rng) -> String {
    let subject: Vec<&str> = (0..4).map(|_| t.words[rng.below(t.words.len())]).collect();
    let (long, short) = (40 + rng.below(60), 10 + rng.below(40));
    format!(
        "{} {} {}\n\nHi team,\n{}\nWe get {} on {}.\n{}\nThanks in advance\nRegards,\nA partner",
        t.product,
        subject.join(" "),
        t.version,
        prose(c, t, rng, long, 0.3),
        t.code,
        t.product,
        prose(c, t, rng, short, 0.1),
    )
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `p50 …, p99 …, max … (n)` of a set of durations.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} samples)",
        ms(percentile(times, 0.5)),
        ms(percentile(times, 0.99)),
        ms(times.last().copied().unwrap_or_default()),
        times.len()
    )
}

fn mean(times: &[Duration]) -> Duration {
    times.iter().sum::<Duration>() / times.len().max(1) as u32
}

const CONNECTOR: &str = "bench";
const ORG_ID: u64 = 501;
const REQUESTER_ID: u64 = 9001;

/// The article as a Markdown file with front matter, as a knowledge team writes it.
fn markdown(a: &Article) -> String {
    format!(
        "---\nid: {}\ntitle: {}\nurl: {}\nlocale: {}\npublished: 2000-01-01\n---\n{}\n",
        a.id, a.title, a.url, a.locale, a.body
    )
}

/// The service binary serving the bench's connectors folder.
struct Service {
    child: Child,
    base: String,
    /// The address `/metrics` is served on (its own listener).
    metrics: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Service {
    /// Starts it and waits until `/healthz` answers 200; the time from the start to then.
    async fn start(folder: &Path, token: &str, client: &reqwest::Client) -> (Service, Duration) {
        let (port, metrics_port) = (free_port(), free_port());
        let started = Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_escalation-gate"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--metrics-listen", &format!("127.0.0.1:{metrics_port}")])
            .arg("--connectors")
            .arg(folder.join("connectors"))
            .arg("--index-dir")
            .arg(folder.join("index"))
            .env("RUST_LOG", "warn,tower_http=off")
            .env("BENCH_SIGNING_SECRET", SECRET)
            .env("BENCH_ZENDESK_TOKEN", token)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the service starts");
        let mut service = Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
            metrics: format!("http://127.0.0.1:{metrics_port}"),
        };
        loop {
            if let Ok(Some(exit)) = service.child.try_wait() {
                panic!("the service stopped: {exit}");
            }
            if let Ok(resp) = client.get(format!("{}/healthz", service.base)).send().await
                && resp.status() == 200
            {
                return (service, started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn health(&self, client: &reqwest::Client) -> Value {
        client
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("health answers")
            .json()
            .await
            .expect("health is JSON")
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The upstream duration histogram's (sum, count) per call, from `/metrics`.
async fn upstream_seconds(client: &reqwest::Client, base: &str) -> BTreeMap<String, (f64, f64)> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .expect("metrics answer")
        .text()
        .await
        .unwrap_or_default();
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("escalation_gate_upstream_request_duration_seconds_")
        else {
            continue;
        };
        let (kind, rest) = rest.split_once('{').unwrap_or(("", ""));
        let call = rest
            .split("call=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap_or("")
            .to_string();
        let value: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let entry = out.entry(call).or_default();
        match kind {
            "sum" => entry.0 += value,
            "count" => entry.1 += value,
            _ => {}
        }
    }
    out
}

/// GETs `url` every `every` from a thread and a runtime of its own until `stop`, timing each.
fn probe(
    url: String,
    auth: Option<String>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Duration>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("probe runtime");
        rt.block_on(async {
            let client = reqwest::Client::new();
            let mut times = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut req = client.get(&url);
                if let Some(a) = &auth {
                    req = req.header("authorization", a);
                }
                let started = Instant::now();
                let resp = req.send().await.expect("probe answered");
                let _ = resp.bytes().await;
                times.push(started.elapsed());
                tokio::time::sleep(every).await;
            }
            times
        })
    })
}

/// Sends a signed escalation webhook for `ticket`; its status and the time to the answer.
async fn deliver(client: &reqwest::Client, base: &str, ticket: u64) -> (u16, Duration) {
    let body = format!(r#"{{"ticket_id": "{ticket}", "event": "escalated"}}"#);
    let stamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let signature = webhook::sign(SECRET, &stamp, body.as_bytes());
    let started = Instant::now();
    let resp = client
        .post(format!("{base}/hooks/{CONNECTOR}"))
        .header("content-type", "application/json")
        .header(webhook::TIMESTAMP, stamp)
        .header(webhook::SIGNATURE, signature)
        .body(body)
        .send()
        .await
        .expect("the service answers");
    let status = resp.status().as_u16();
    let _ = resp.bytes().await;
    (status, started.elapsed())
}

fn main() {
    let n_articles = env_usize("EG_BENCH_ARTICLES", 50_000);
    let n_escalations = env_usize("EG_BENCH_ESCALATIONS", 2_000);
    let saturation = Duration::from_secs(env_usize("EG_BENCH_SATURATION_SECS", 10) as u64);
    let in_flight = env_usize("EG_BENCH_IN_FLIGHT", 16);
    let mut rng = Rng::new(0x5EED_0003);
    let corpus = Corpus::new(&mut rng);
    let topics: Vec<Topic> = (0..n_articles / 4)
        .map(|_| topic(&corpus, &mut rng))
        .collect();
    // Four articles a topic: near misses for each other, as in a real knowledge base.
    let articles: Vec<Article> = (0..n_articles)
        .map(|i| article(&corpus, &topics[i % topics.len()], &mut rng, i))
        .collect();
    let texts: Vec<String> = (0..n_escalations)
        .map(|_| {
            let t = &topics[rng.below(topics.len())];
            case_text(&corpus, t, &mut rng)
        })
        .collect();
    let bytes: usize = articles.iter().map(|a| a.title.len() + a.body.len()).sum();

    let folder = tempfile::tempdir().expect("a temporary folder");
    let article_dir = folder
        .path()
        .join("connectors")
        .join(CONNECTOR)
        .join("articles");
    std::fs::create_dir_all(&article_dir).expect("article folder");
    for a in &articles {
        std::fs::write(article_dir.join(format!("{}.md", a.id)), markdown(a))
            .expect("article written");
    }
    drop(articles);

    println!(
        "knowledge-base judge bench (release binary, {} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "articles                {n_articles} generated Markdown files ({:.1} MB of text), {} topics",
        bytes as f64 / 1e6,
        topics.len()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let client = reqwest::Client::new();
        let zendesk = FakeZendesk::start().await;
        zendesk.put_organization(json!({"id": ORG_ID, "name": "Acme IT Services"}));
        zendesk.put_user(json!({
            "id": REQUESTER_ID, "name": "Dana Reyes", "email": "dana@customer.example",
            "locale": "en-US", "organization_id": ORG_ID
        }));
        let next_ticket = Arc::new(AtomicU64::new(1));
        let tickets = 40_000u64;
        for id in 1..=tickets {
            let text = &texts[(id as usize) % texts.len()];
            let subject = text.lines().next().unwrap_or("").to_string();
            zendesk.put_ticket(json!({
                "id": id, "subject": subject, "description": text, "status": "open",
                "tags": ["partner_escalation"], "requester_id": REQUESTER_ID,
                "organization_id": ORG_ID, "created_at": "2024-05-02T08:00:00Z",
                "updated_at": "2024-05-02T09:00:00Z", "custom_fields": [],
            }));
        }
        std::fs::write(
            folder.path().join("connectors").join(format!("{CONNECTOR}.toml")),
            connector::zendesk_connector(
                &zendesk,
                &format!(
                    "backend = \"local\"\npath = \"{CONNECTOR}/articles\"\n\n[precheck]\nsecrets = [\"${{BENCH_SIGNING_SECRET}}\"]\nper_client_per_minute = 10000"
                ),
            ),
        )
        .expect("connector file");

        let (service, first) = Service::start(folder.path(), zendesk.api_token().1, &client).await;
        let status = service.health(&client).await;
        let kb = &status["knowledge_bases"][CONNECTOR];
        assert_eq!(kb["index"], "built", "{status}");
        println!("first start             {:.2} s to ready (index built and persisted)", first.as_secs_f64());
        service.stop();

        let mut starts = Vec::new();
        let mut rss = Vec::new();
        let mut service = None;
        for run in 0..3 {
            let (s, took) = Service::start(folder.path(), zendesk.api_token().1, &client).await;
            let status = s.health(&client).await;
            assert_eq!(status["knowledge_bases"][CONNECTOR]["index"], "reused", "{status}");
            starts.push(took);
            tokio::time::sleep(Duration::from_secs(1)).await;
            let pid = s.child.id().to_string();
            rss.push((vm(&pid, "VmRSS:"), vm(&pid, "VmHWM:")));
            if run == 2 {
                service = Some(s);
            } else {
                s.stop();
            }
        }
        let service = service.expect("the last start runs on");
        println!(
            "start to ready          {} (persisted index unchanged; three starts)",
            starts.iter().map(|d| format!("{:.3} s", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
        );
        println!(
            "idle resident memory    {} (VmRSS 1 s after ready; peak VmHWM {})",
            rss.iter().map(|(r, _)| mib(*r, 1)).collect::<Vec<_>>().join(", "),
            rss.iter().map(|(_, h)| mib(*h, 1)).collect::<Vec<_>>().join(", ")
        );

        judge_in_process(folder.path(), &texts);

        // Webhooks one at a time: ticket read, judgement, write-back.
        let mut one = Vec::new();
        for _ in 0..300 {
            let id = next_ticket.fetch_add(1, Ordering::Relaxed);
            let (status, took) = deliver(&client, &service.base, id).await;
            assert_eq!(status, 200);
            one.push(took);
        }
        println!("webhook, concurrency 1  {}", summary(&mut one));

        // The check before escalating, one draft at a time: the same judgement, nothing written.
        let mut checks = Vec::new();
        for text in texts.iter().take(300) {
            let subject = text.lines().next().unwrap_or("");
            let started = Instant::now();
            let resp = client
                .post(format!("{}/precheck/{CONNECTOR}", service.base))
                .bearer_auth(SECRET)
                .json(&json!({"subject": subject, "description": text}))
                .send()
                .await
                .expect("precheck answers");
            assert_eq!(resp.status(), 200);
            let _ = resp.bytes().await;
            checks.push(started.elapsed());
        }
        println!("precheck, concurrency 1 {}", summary(&mut checks));

        let stop = Arc::new(AtomicBool::new(false));
        let health = probe(format!("{}/healthz", service.base), None, Duration::from_millis(10), Arc::clone(&stop));
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::Relaxed);
        let mut idle_health = health.join().expect("probe");
        println!("/healthz, idle          {}", summary(&mut idle_health));

        // Saturated: `in_flight` webhooks at all times, probes on threads of their own.
        let (email, token) = zendesk.api_token();
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{email}/token:{token}"))
        );
        let before = upstream_seconds(&client, &service.metrics).await;
        let stop = Arc::new(AtomicBool::new(false));
        let health = probe(format!("{}/healthz", service.base), None, Duration::from_millis(10), Arc::clone(&stop));
        let upstream = probe(
            format!("{}/api/v2/tickets/1.json?include=users,organizations", zendesk.url()),
            Some(auth),
            Duration::from_millis(10),
            Arc::clone(&stop),
        );
        let until = Instant::now() + saturation;
        let senders: Vec<_> = (0..in_flight)
            .map(|_| {
                let (client, base, next) = (client.clone(), service.base.clone(), Arc::clone(&next_ticket));
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    while Instant::now() < until {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        if id > tickets {
                            break;
                        }
                        out.push(deliver(&client, &base, id).await);
                    }
                    out
                })
            })
            .collect();
        let mut answers = Vec::new();
        for s in senders {
            answers.extend(s.await.expect("sender"));
        }
        stop.store(true, Ordering::Relaxed);
        let mut busy_health = health.join().expect("probe");
        let upstream_seen = upstream.join().expect("probe");
        let after = upstream_seconds(&client, &service.metrics).await;
        let ok: Vec<Duration> = answers.iter().filter(|(s, _)| *s == 200).map(|(_, d)| *d).collect();
        let refused = answers.iter().filter(|(s, _)| *s == 503).count();
        println!(
            "saturated               {in_flight} webhooks in flight for {} s: {} judged ({:.0}/s), {refused} answered 503 busy",
            saturation.as_secs(),
            ok.len(),
            ok.len() as f64 / saturation.as_secs_f64()
        );
        println!("  webhook               {}", summary(&mut ok.clone()));
        println!("  /healthz              {}", summary(&mut busy_health));
        println!(
            "  helpdesk answer       mean {:.3} ms (GET ticket from a client thread of its own, {} samples)",
            ms(mean(&upstream_seen)),
            upstream_seen.len()
        );
        for (call, (sum, count)) in &after {
            let (sum0, count0) = before.get(call).copied().unwrap_or_default();
            let n = count - count0;
            if n > 0.0 {
                println!(
                    "  upstream metric       {call}: mean {:.3} ms over {n} calls",
                    (sum - sum0) / n * 1000.0
                );
            }
        }
        service.stop();
    });
}

/// The judge alone, one escalation at a time, on the index the service persisted.
fn judge_in_process(folder: &Path, texts: &[String]) {
    let generations: Vec<PathBuf> = std::fs::read_dir(folder.join("index").join(CONNECTOR))
        .expect("index folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(generations.len(), 1, "{generations:?}");
    let index = LocalIndex::open(&generations[0]).expect("the persisted index opens");
    let settings = KbSettings {
        threshold: DEFAULT_THRESHOLD,
        review_bound: DEFAULT_REVIEW_BOUND,
        gap_below: DEFAULT_GAP_BELOW,
        default_locale: DEFAULT_LOCALE.into(),
        calibration: escalation_gate::assess::kb::rescore::Calibration::global(),
    };
    let escalations: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            escalation(&Case {
                id: format!("esc-{i}"),
                text: text.clone(),
                label: Label::NotResolvable,
                article_ids: Vec::new(),
                split: Split::Test,
                line: i + 1,
            })
        })
        .collect();
    // The path of `Connector::judge`, timed in two parts: the search, then filter + re-score.
    let judge = |esc| {
        let start = Instant::now();
        let (query, locale) = kb_query(esc, &settings.default_locale);
        let candidates = index
            .search(&query, Some(&locale), DEFAULT_MAX_CANDIDATES)
            .expect("search");
        let searched = start.elapsed();
        let findings = kb::judge(esc, &candidates, &settings);
        (findings, searched, start.elapsed())
    };
    for esc in escalations.iter().take(50) {
        black_box(judge(esc));
    }
    let mut times = Vec::with_capacity(escalations.len());
    let mut search_times = Vec::with_capacity(escalations.len());
    let mut rescore_times = Vec::with_capacity(escalations.len());
    let mut resolvable = 0;
    for esc in &escalations {
        let (findings, searched, total) = black_box(judge(esc));
        times.push(total);
        search_times.push(searched);
        rescore_times.push(total - searched);
        resolvable += usize::from(findings.resolvable_by.is_some());
    }
    println!(
        "judge, concurrency 1    {} escalations (top {DEFAULT_MAX_CANDIDATES} candidates, threshold {DEFAULT_THRESHOLD}; {resolvable} judged kb_resolvable), mean {:.2} ms",
        times.len(),
        ms(mean(&times)),
    );
    println!("  per escalation        {}", summary(&mut times));
    println!("  of which search       {}", summary(&mut search_times));
    println!("  of which re-score     {}", summary(&mut rescore_times));
}
