//! Speed and memory of the knowledge-base judgement on an embedded index of 10,000 generated
//! articles: index build time, latency per escalation (search + filter + re-score, the path of
//! `Connector::judge` and `eval`), and peak resident memory.
//!
//! Run: `cargo bench --bench kb_judge` (a plain binary, `harness = false`, so the peak RSS it
//! reports is the judge's, not a bench framework's). Optional: `EG_BENCH_ARTICLES`,
//! `EG_BENCH_ESCALATIONS`. The articles are generated from a fixed seed: English words drawn with
//! Zipf-like frequencies from the judge's own word list, plus product names and error codes, so
//! every run judges the same texts.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use escalation_gate::assess::kb::rescore::{DEFAULT_REVIEW_BOUND, DEFAULT_THRESHOLD};
use escalation_gate::assess::kb::{self, KbSettings};
use escalation_gate::config::{DEFAULT_GAP_BELOW, DEFAULT_LOCALE, DEFAULT_MAX_CANDIDATES};
use escalation_gate::connector::kb_query;
use escalation_gate::eval::{Case, Label, Split, escalation};
use escalation_gate::kb::Article;
use escalation_gate::kb::local::LocalIndex;

const WORDS: &str = include_str!("../src/assess/kb/wordfreq_en.txt");

/// splitmix64: small, fast and the same on every platform and crate version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

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

fn vm(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The CPU time this process has used (user + system), from `/proc/self/stat` (clock ticks of
/// 1/100 s): unlike the latency, it does not grow when other processes share the cores.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let n_articles = env_usize("EG_BENCH_ARTICLES", 10_000);
    let n_escalations = env_usize("EG_BENCH_ESCALATIONS", 2_000);
    let mut rng = Rng(0x5EED_0003);
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
    let rss_before = vm("VmRSS:");

    let start = Instant::now();
    let index = LocalIndex::build(articles).expect("index builds");
    let build = start.elapsed();
    let rss_built = vm("VmRSS:");

    let settings = KbSettings {
        threshold: DEFAULT_THRESHOLD,
        review_bound: DEFAULT_REVIEW_BOUND,
        gap_below: DEFAULT_GAP_BELOW,
        default_locale: DEFAULT_LOCALE.into(),
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
            .search_sync(&query, Some(&locale), DEFAULT_MAX_CANDIDATES)
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
    let all = Instant::now();
    let cpu_before = cpu_time();
    for esc in &escalations {
        let (findings, searched, total) = black_box(judge(esc));
        times.push(total);
        search_times.push(searched);
        rescore_times.push(total - searched);
        resolvable += usize::from(findings.resolvable_by.is_some());
    }
    let total = all.elapsed();
    let cpu = cpu_time()
        .zip(cpu_before)
        .map(|(after, before)| (after - before) / times.len() as u32);
    times.sort();
    search_times.sort();
    rescore_times.sort();
    let mean = total / times.len() as u32;

    println!("knowledge-base judge bench");
    println!(
        "articles                {n_articles} generated ({:.1} MB of text), {} topics",
        bytes as f64 / 1e6,
        topics.len()
    );
    println!("index build             {:.2} s", build.as_secs_f64());
    println!(
        "escalations judged      {} (top {DEFAULT_MAX_CANDIDATES} candidates, threshold {DEFAULT_THRESHOLD}; {resolvable} judged kb_resolvable)",
        times.len()
    );
    println!(
        "latency per escalation  median {:.2} ms, p99 {:.2} ms, mean {:.2} ms, max {:.2} ms",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(mean),
        ms(*times.last().unwrap())
    );
    println!(
        "cpu time per escalation mean {} (user + system; other processes do not add to it)",
        cpu.map_or_else(|| "n/a".into(), |c| format!("{:.2} ms", ms(c)))
    );
    for (label, t) in [
        ("  of which search", &search_times),
        ("  of which re-score", &rescore_times),
    ] {
        println!(
            "{label:24}median {:.2} ms, p99 {:.2} ms",
            ms(percentile(t, 0.5)),
            ms(percentile(t, 0.99))
        );
    }
    println!(
        "resident memory         {} before the index, {} after building it, peak (VmHWM) {}",
        mib(rss_before),
        mib(rss_built),
        mib(vm("VmHWM:"))
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
