//! OAuth 2.0 access tokens for the REST API: client credentials (through the `oauth2` crate) or
//! the JWT bearer grant (an RS256 assertion), from `{my_domain}/services/oauth2/token`. One token
//! is cached per connector behind a lock, replaced before it gets old and once when Salesforce
//! answers 401 `INVALID_SESSION_ID`. Every token call goes through the shared `Upstream` (its
//! retries and metrics); no token or key ever reaches a log.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, HttpRequest, HttpResponse, TokenResponse, TokenUrl,
};
use reqwest::Url;
use ring::rand::SystemRandom;
use ring::signature::RSA_PKCS1_SHA256;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::config::{Auth, SigningKey};
use crate::http::{Upstream, UpstreamError};

pub const TOKEN_PATH: &str = "/services/oauth2/token";
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long a JWT assertion is valid (Salesforce allows at most 3 minutes).
const ASSERTION_SECS: i64 = 180;
/// A token this close to its age limit is replaced before use.
const EARLY: Duration = Duration::from_secs(60);

struct Cached {
    token: SecretString,
    fetched: Instant,
    lifetime: Duration,
}

pub struct Tokens {
    upstream: Upstream,
    token_url: Url,
    auth: Auth,
    max_age: Duration,
    cache: Mutex<Option<Cached>>,
}

impl Tokens {
    pub fn new(upstream: Upstream, base: &Url, auth: Auth, max_age: Duration) -> Tokens {
        let token_url = crate::http::join_path(base, TOKEN_PATH);
        Tokens {
            upstream,
            token_url,
            auth,
            max_age,
            cache: Mutex::new(None),
        }
    }

    /// A token young enough to use; fetched (once, for all waiting callers) when needed.
    pub async fn get(&self) -> Result<SecretString, UpstreamError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && c.fetched.elapsed() + EARLY < c.lifetime
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        *cache = Some(Cached {
            token: token.clone(),
            fetched: Instant::now(),
            lifetime: lifetime.min(self.max_age),
        });
        Ok(token)
    }

    /// Forgets `stale` (Salesforce said it is no longer valid); a newer token stays.
    pub async fn invalidate(&self, stale: &SecretString) {
        let mut cache = self.cache.lock().await;
        if cache
            .as_ref()
            .is_some_and(|c| c.token.expose_secret() == stale.expose_secret())
        {
            *cache = None;
        }
    }

    async fn fetch(&self) -> Result<(SecretString, Duration), UpstreamError> {
        let got = match &self.auth {
            Auth::ClientCredentials {
                client_id,
                client_secret,
            } => self.client_credentials(client_id, client_secret).await,
            Auth::JwtBearer {
                client_id,
                username,
                key,
                audience,
            } => self.jwt_bearer(client_id, username, key, audience).await,
        };
        match &got {
            Ok(_) => tracing::info!(service = self.upstream.service(), "Fetched an access token"),
            Err(e) => {
                tracing::warn!(service = self.upstream.service(), error = %e, "Could not fetch an access token")
            }
        }
        got
    }

    async fn client_credentials(
        &self,
        client_id: &str,
        secret: &SecretString,
    ) -> Result<(SecretString, Duration), UpstreamError> {
        let client = BasicClient::new(ClientId::new(client_id.to_string()))
            .set_client_secret(ClientSecret::new(secret.expose_secret().to_string()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::from_url(self.token_url.clone()));
        let upstream = self.upstream.clone();
        let http = move |req: HttpRequest| {
            let upstream = upstream.clone();
            async move { through(&upstream, req).await }
        };
        match client
            .exchange_client_credentials()
            .request_async(&http)
            .await
        {
            Ok(t) => Ok((
                SecretString::from(t.access_token().secret().to_string()),
                t.expires_in().unwrap_or(self.max_age),
            )),
            Err(oauth2::RequestTokenError::Request(e)) => Err(e),
            Err(oauth2::RequestTokenError::ServerResponse(e)) => Err(UpstreamError::Rejected {
                call: "oauth_token",
                host: crate::http::host_of(&self.token_url),
                status: reqwest::StatusCode::BAD_REQUEST,
                detail: e.error().to_string(),
            }),
            Err(e) => Err(UpstreamError::Invalid {
                call: "oauth_token",
                detail: e.to_string(),
            }),
        }
    }

    async fn jwt_bearer(
        &self,
        client_id: &str,
        username: &str,
        key: &SigningKey,
        audience: &str,
    ) -> Result<(SecretString, Duration), UpstreamError> {
        let assertion = assertion(key, client_id, username, audience, chrono::Utc::now()).map_err(
            |detail| UpstreamError::Invalid {
                call: "oauth_token",
                detail,
            },
        )?;
        let form = [
            ("grant_type", JWT_BEARER),
            ("assertion", assertion.as_str()),
        ];
        let resp = self
            .upstream
            .send("oauth_token", |c| {
                c.post(self.token_url.clone()).form(&form)
            })
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(UpstreamError::Rejected {
                call: "oauth_token",
                host: crate::http::host_of(&self.token_url),
                status,
                detail: body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no error code")
                    .to_string(),
            });
        }
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| UpstreamError::Invalid {
                call: "oauth_token",
                detail: "no `access_token` in the answer".into(),
            })?;
        Ok((SecretString::from(token.to_string()), self.max_age))
    }
}

/// Sends one request `oauth2` built through the shared client (retries, metrics).
async fn through(upstream: &Upstream, req: HttpRequest) -> Result<HttpResponse, UpstreamError> {
    let (parts, body) = req.into_parts();
    let url = Url::parse(&parts.uri.to_string()).map_err(|e| UpstreamError::Invalid {
        call: "oauth_token",
        detail: e.to_string(),
    })?;
    let resp = upstream
        .send("oauth_token", |c| {
            c.request(parts.method.clone(), url.clone())
                .headers(parts.headers.clone())
                .body(body.clone())
        })
        .await?;
    let mut out = oauth2::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let bytes = resp.bytes().await.map_err(|e| UpstreamError::Invalid {
        call: "oauth_token",
        detail: format!("reading the answer: {}", e.without_url()),
    })?;
    out.body(bytes.to_vec())
        .map_err(|e| UpstreamError::Invalid {
            call: "oauth_token",
            detail: e.to_string(),
        })
}

/// The signed JWT bearer assertion: `{"alg":"RS256"}` header, claims iss = client id,
/// sub = username, aud = login host, exp = now + 3 minutes.
pub fn assertion(
    key: &SigningKey,
    client_id: &str,
    username: &str,
    audience: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, String> {
    let header = B64URL.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = B64URL.encode(
        json!({
            "iss": client_id,
            "sub": username,
            "aud": audience,
            "exp": now.timestamp() + ASSERTION_SECS,
        })
        .to_string(),
    );
    let signing_input = format!("{header}.{claims}");
    let mut sig = vec![0; key.0.public().modulus_len()];
    key.0
        .sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut sig,
        )
        .map_err(|_| "signing the JWT assertion failed".to_string())?;
    Ok(format!("{signing_input}.{}", B64URL.encode(sig)))
}
