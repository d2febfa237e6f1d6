//! The shared outbound HTTP client: timeouts, bounded retries with backoff that honour
//! `Retry-After` on 429 and 503, and a metric for every call.

pub mod standard_webhooks;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::checks::{Problem, within};
use crate::metrics as m;

pub const USER_AGENT: &str = concat!("escalation-gate/", env!("CARGO_PKG_VERSION"));

/// How patient one upstream call is.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    /// Per attempt.
    pub timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The most time spent waiting between attempts, in total: a `Retry-After` beyond it ends
    /// the call at once, so the caller can answer its own client in time.
    pub max_wait: Duration,
    /// First backoff; doubles each retry, give or take a quarter (jitter).
    pub backoff: Duration,
}

impl RetrySettings {
    pub const DEFAULT_TIMEOUT_SECS: u64 = 5;
    pub const DEFAULT_MAX_RETRIES: u32 = 3;
    pub const DEFAULT_MAX_WAIT_SECS: u64 = 4;

    /// From a connector file's `http` table; problems are reported under `key`.
    pub fn from_file(
        timeout_secs: Option<u64>,
        max_retries: Option<u32>,
        max_wait_secs: Option<u64>,
        key: &str,
        problems: &mut Vec<Problem>,
    ) -> RetrySettings {
        let timeout = timeout_secs.unwrap_or(Self::DEFAULT_TIMEOUT_SECS);
        let retries = max_retries.unwrap_or(Self::DEFAULT_MAX_RETRIES);
        let wait = max_wait_secs.unwrap_or(Self::DEFAULT_MAX_WAIT_SECS);
        within(format!("{key}.timeout_secs"), timeout, 1..=120, problems);
        within(format!("{key}.max_retries"), retries, 0..=10, problems);
        within(
            format!("{key}.max_retry_wait_secs"),
            wait,
            0..=300,
            problems,
        );
        RetrySettings {
            timeout: Duration::from_secs(timeout),
            max_retries: retries,
            max_wait: Duration::from_secs(wait),
            backoff: Duration::from_millis(200),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Could not get an answer within the retry budget: the caller should ask its own client to
    /// come back later. `last` names the host and the cause of the last attempt.
    #[error("{call}: unavailable after {attempts} attempts ({last})")]
    Unavailable {
        call: &'static str,
        attempts: u32,
        last: String,
        /// What the upstream asked for, when it said.
        retry_after: Option<Duration>,
    },
    /// A refusal (4xx other than 429). It is not a fact about the delivery: credentials and
    /// permissions can be fixed by an admin, so the delivery is still retried.
    #[error("{call}: {host} answered HTTP {status}: {detail}")]
    Rejected {
        call: &'static str,
        /// Host (and port) that answered.
        host: String,
        status: StatusCode,
        detail: String,
    },
    #[error("{call}: unexpected answer: {detail}")]
    Invalid { call: &'static str, detail: String },
    /// The host has not answered once yet and cannot be reached (its name does not resolve, or
    /// it refuses the connection): a wrong or unreachable address, not a passing fault.
    #[error("{call}: cannot reach {host}: {cause}")]
    Unreachable {
        call: &'static str,
        host: String,
        cause: String,
    },
}

impl UpstreamError {
    /// How long the caller's client should wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            UpstreamError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The `reason` label of a retried delivery: `unavailable` (no answer within the budget:
    /// 5xx, 429, timeouts, connection failures; an unreachable host), `refused` (a 4xx such as
    /// 401, 403 or 422), `invalid` (an answer that could not be read).
    pub fn reason(&self) -> &'static str {
        match self {
            UpstreamError::Unavailable { .. } | UpstreamError::Unreachable { .. } => "unavailable",
            UpstreamError::Rejected { .. } => "refused",
            UpstreamError::Invalid { .. } => "invalid",
        }
    }
}

/// `host` or `host:port` of a URL, for error messages (never its path or query).
pub fn host_of(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => "?".to_string(),
    }
}

const DNS_FAILED: &str = "DNS lookup failed";
const REFUSED: &str = "connection refused";

/// What went wrong with a request that got no HTTP answer: DNS, refused, reset, TLS, timeout.
pub fn transport_cause(e: &reqwest::Error) -> String {
    let (kind, innermost) = transport_failure(e);
    cause_text(kind, innermost)
}

/// `kind: innermost`, or `kind` alone when they are the same.
fn cause_text(kind: &str, innermost: String) -> String {
    if innermost == kind {
        innermost
    } else {
        format!("{kind}: {innermost}")
    }
}

/// The kind of a transport failure (one of a few fixed phrases) and its innermost cause.
fn transport_failure(e: &reqwest::Error) -> (&'static str, String) {
    let mut innermost = e.to_string();
    let mut kind = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            kind = kind.or(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Some(REFUSED),
                std::io::ErrorKind::ConnectionReset => Some("connection reset"),
                std::io::ErrorKind::ConnectionAborted => Some("connection aborted"),
                std::io::ErrorKind::TimedOut => Some("timeout"),
                _ => None,
            });
        }
        if text.contains("dns error") || text.contains("failed to lookup address") {
            kind = kind.or(Some(DNS_FAILED));
        }
        if text.contains("certificate") || text.contains("tls") || text.contains("TLS") {
            kind = kind.or(Some("TLS handshake failed"));
        }
        innermost = text;
        source = s.source();
    }
    let kind = if e.is_timeout() {
        "timeout"
    } else if let Some(k) = kind {
        k
    } else if e.is_connect() {
        "connection failed"
    } else {
        "connection closed"
    };
    (kind, innermost)
}

/// Says whether a 4xx answer other than 429 is still worth another attempt, from its status and
/// body (e.g. Salesforce's 403 with the error code `REQUEST_LIMIT_EXCEEDED`).
pub type RetryWhen = fn(StatusCode, &[u8]) -> bool;

/// The most of a 4xx body read to classify it; error bodies are small.
const CLASSIFY_BODY_BYTES: usize = 64 * 1024;

/// One upstream service (a helpdesk instance): a client with its settings and metric labels.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: reqwest::Client,
    service: &'static str,
    settings: RetrySettings,
    retry_when: Option<RetryWhen>,
    /// Some HTTP answer came back (shared by the clones): from then on a failed DNS lookup or
    /// a refused connection is a passing fault, retried; before, it is a wrong address.
    answered: Arc<AtomicBool>,
}

impl Upstream {
    pub fn new(service: &'static str, settings: RetrySettings) -> Result<Upstream, reqwest::Error> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()?;
        Ok(Upstream {
            client,
            service,
            settings,
            retry_when: None,
            answered: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Also retries the 4xx answers `f` picks (429 and 5xx are always retried).
    pub fn with_retry_when(mut self, f: RetryWhen) -> Upstream {
        self.retry_when = Some(f);
        self
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends the request `build` makes, retrying 429, 5xx, transport errors and the 4xx answers
    /// the upstream's `retry_when` picks, with short growing waits within the budget (a 429 or
    /// 503 with `Retry-After` waits what it says, when the budget allows). Any other status is
    /// returned for the caller to judge. A host that has never answered and whose name does not
    /// resolve or that refuses the connection is [`UpstreamError::Unreachable`] at once.
    pub async fn send(
        &self,
        call: &'static str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, UpstreamError> {
        self.send_read(call, build, |resp| async move { Ok(resp) })
            .await
    }

    /// [`Self::send`] for a request that changes nothing (a page of a paged read): `read` turns
    /// the answer into its value, and an answer it cannot read ([`UpstreamError::Invalid`]: a
    /// body that breaks off, an HTML page in place of JSON) is asked for again as a 5xx is,
    /// within the same budget.
    pub async fn send_read<T, Fut>(
        &self,
        call: &'static str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
        read: impl Fn(Response) -> Fut,
    ) -> Result<T, UpstreamError>
    where
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let mut waited = Duration::ZERO;
        let mut attempt = 0;
        loop {
            attempt += 1;
            // Built before the clock starts: the duration is the wait for the upstream alone.
            let request = build(&self.client);
            let started = Instant::now();
            let result = request.send().await;
            let elapsed = started.elapsed().as_secs_f64();
            let (last, asked) = match result {
                Ok(resp) => {
                    self.answered.store(true, Ordering::Relaxed);
                    let host = host_of(resp.url());
                    let status = resp.status();
                    m::upstream_call(self.service, call, status.as_str(), elapsed);
                    let asked = match status {
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                            retry_after(&resp, Utc::now())
                        }
                        _ => None,
                    };
                    match self.final_answer(status, resp).await {
                        Some(resp) => match read(resp).await {
                            Err(UpstreamError::Invalid { detail, .. }) => (detail, None),
                            other => return other,
                        },
                        None => match asked {
                            Some(wait) => (
                                format!(
                                    "{host} answered HTTP {status}, Retry-After {} s",
                                    whole_secs(wait)
                                ),
                                asked,
                            ),
                            None => (format!("{host} answered HTTP {status}"), None),
                        },
                    }
                }
                Err(e) => {
                    let kind = if e.is_timeout() { "timeout" } else { "error" };
                    m::upstream_call(self.service, call, kind, elapsed);
                    let host = e.url().map_or_else(|| "?".to_string(), host_of);
                    let (failure, innermost) = transport_failure(&e);
                    let cause = without_url(&cause_text(failure, innermost), &e);
                    if (failure == DNS_FAILED || failure == REFUSED)
                        && !self.answered.load(Ordering::Relaxed)
                    {
                        tracing::warn!(service = self.service, call, host = %host, cause = %cause, "Upstream cannot be reached");
                        return Err(UpstreamError::Unreachable { call, host, cause });
                    }
                    (format!("{host}: {cause}"), None)
                }
            };
            let wait = asked.unwrap_or_else(|| self.backoff(attempt));
            if attempt > self.settings.max_retries || waited + wait > self.settings.max_wait {
                tracing::warn!(
                    service = self.service,
                    call,
                    attempts = attempt,
                    last = %last,
                    "Upstream call gave up"
                );
                return Err(UpstreamError::Unavailable {
                    call,
                    attempts: attempt,
                    last,
                    retry_after: asked,
                });
            }
            tracing::info!(
                service = self.service,
                call,
                attempt,
                wait_ms = wait.as_millis() as u64,
                last = %last,
                "Upstream call will be retried"
            );
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }

    /// `resp` when its status is the caller's to judge; `None` when it is to be retried (429,
    /// 5xx, and the 4xx answers `retry_when` picks).
    async fn final_answer(&self, status: StatusCode, resp: Response) -> Option<Response> {
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return None;
        }
        match self.retry_when {
            Some(f) if status.is_client_error() => {
                let (resp, body) = buffered(resp).await;
                (!body.is_some_and(|b| f(status, &b))).then_some(resp)
            }
            _ => Some(resp),
        }
    }

    /// The wait before retry `attempt` + 1 after a failure that named none: the first backoff
    /// doubled each time, 75 % to 125 % of it so that many clients do not retry in step.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.settings.backoff * 2u32.saturating_pow(attempt - 1);
        base.mul_f64(rand::random_range(0.75..=1.25))
    }

    /// Sends the request once, with no retry: for a write whose lost answer may still have been
    /// applied (a create), which the caller reads back before sending it again. A failure is
    /// [`UpstreamError::Unavailable`] as with [`Self::send`].
    pub async fn send_once(
        &self,
        call: &'static str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, UpstreamError> {
        let once = Upstream {
            settings: RetrySettings {
                max_retries: 0,
                ..self.settings
            },
            ..self.clone()
        };
        once.send(call, build).await
    }
}

/// `d` in whole seconds, rounded up.
pub fn whole_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Reads a response's body (up to a bound) and gives back an equivalent response with it, and
/// the bytes when they could be read.
async fn buffered(resp: Response) -> (Response, Option<bytes::Bytes>) {
    let status = resp.status();
    let version = resp.version();
    let headers = resp.headers().clone();
    let too_big = resp
        .content_length()
        .is_some_and(|n| n > CLASSIFY_BODY_BYTES as u64);
    if too_big {
        return (resp, None);
    }
    let body = resp.bytes().await.ok();
    let mut rebuilt = reqwest::Response::from(
        axum::http::Response::builder()
            .status(status)
            .version(version)
            .body(body.clone().unwrap_or_default())
            .expect("status and version come from a valid response"),
    );
    *rebuilt.headers_mut() = headers;
    (rebuilt, body)
}

/// `text` without the request's URL (it may carry a query with customer text).
fn without_url(text: &str, e: &reqwest::Error) -> String {
    match e.url() {
        Some(url) => text.replace(url.as_str(), "<url>"),
        None => text.to_string(),
    }
}

/// `base` with `path` appended to its own path (a base may sit below a prefix such as
/// `https://host/zendesk`).
pub fn join_path(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    let prefix = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("{prefix}{path}"));
    url
}

/// A successful answer's JSON body; a body that is not JSON is [`UpstreamError::Invalid`],
/// naming the host that answered but not the URL (its query may carry a customer's address).
pub async fn read_json(
    call: &'static str,
    resp: Response,
) -> Result<serde_json::Value, UpstreamError> {
    let host = host_of(resp.url());
    resp.json().await.map_err(|e| UpstreamError::Invalid {
        call,
        detail: format!(
            "{host} answered a body that is not JSON: {}",
            e.without_url()
        ),
    })
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(resp: &Response, now: DateTime<Utc>) -> Option<Duration> {
    let value = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    parse_retry_after(value, now)
}

pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// A loopback server that answers every request with `status` and `Retry-After: 60`, and
    /// counts the requests.
    async fn always(status: StatusCode) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = Arc::clone(&count);
        let app = axum::Router::new().fallback(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            async move { (status, [(reqwest::header::RETRY_AFTER, "60")]) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, count)
    }

    fn upstream() -> Upstream {
        let settings = RetrySettings {
            timeout: Duration::from_secs(5),
            max_retries: 2,
            max_wait: Duration::from_secs(1),
            backoff: Duration::from_millis(10),
        };
        Upstream::new("test", settings).unwrap()
    }

    #[tokio::test]
    async fn only_429_and_503_have_their_retry_after_waited_out() {
        // A 500 is retried with short waits whatever its `Retry-After` says, and the failure
        // asks no one to wait.
        let (url, count) = always(StatusCode::INTERNAL_SERVER_ERROR).await;
        let err = upstream().send("probe", |c| c.get(&url)).await.unwrap_err();
        assert!(
            matches!(
                err,
                UpstreamError::Unavailable {
                    attempts: 3,
                    retry_after: None,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(count.load(Ordering::SeqCst), 3);
        // A 503's `Retry-After` beyond the budget ends the call at once and is passed on.
        let (url, count) = always(StatusCode::SERVICE_UNAVAILABLE).await;
        let err = upstream().send("probe", |c| c.get(&url)).await.unwrap_err();
        assert_eq!(err.retry_after(), Some(Duration::from_secs(60)), "{err:?}");
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
