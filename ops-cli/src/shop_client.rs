//! A REST client for a running shop, shared by `bazaar seed` and `bazaar
//! load`: it finds the edge (from `--url`, else the `up.json` that `bazaar
//! up` writes), mints tokens with the shop's JWT secret (from
//! `--jwt-secret`, else `secrets.json`), and turns problem+json answers into
//! errors that say what the shop said.

mod error;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use contracts::auth::Role;
use platform::config::Secret;
use reqwest::header::RETRY_AFTER;
use reqwest::{Method, Response, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::exit;
use crate::secrets::Secrets;
pub use error::CallError;

/// How long one plain request may take. The edge answers within 30 s or
/// with a 503 of its own, so this only cuts off a shop that hangs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(35);
/// Attempts of a request that is safe to repeat (see [`ShopClient::send`]).
const ATTEMPTS: u32 = 4;
/// Times a request the edge turns away with 429 is asked again, each after
/// the answer's `Retry-After` (at most [`MAX_THROTTLE_WAIT`]), before the
/// 429 becomes the request's answer.
const THROTTLED_ATTEMPTS: u32 = 30;
const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(10);

/// Where the shop is and how to get tokens for it.
#[derive(Debug, Clone, clap::Args)]
pub struct ShopArgs {
    /// The shop's data directory: up.json says where its edge listens,
    /// secrets.json holds its JWT secret, seed.json lists the seeded catalog
    #[arg(long, env = "BAZAAR_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// The edge's base URL, instead of the one in <data-dir>/up.json
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The secret the edge verifies tokens with, instead of <data-dir>/secrets.json
    /// (prefer the environment variable: a flag shows in `ps`)
    #[arg(
        long,
        env = "BAZAAR_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub jwt_secret: Option<Secret>,
}

/// The part of `up.json` this client needs; the rest is `bazaar up`'s.
#[derive(Deserialize)]
struct UpJson {
    http_url: String,
}

pub struct ShopClient {
    base: String,
    http: reqwest::Client,
    secret: Secret,
    data_dir: PathBuf,
    /// Answers of 429 waited out so far.
    throttled: AtomicU64,
}

impl ShopClient {
    /// Finds the shop and checks that it answers.
    pub async fn connect(args: &ShopArgs) -> anyhow::Result<ShopClient> {
        let base = match &args.url {
            Some(url) => url.clone(),
            None => up_url(&args.data_dir)?,
        };
        let base = parse_base(&base)?;
        let secret = match &args.jwt_secret {
            Some(secret) => secret.clone(),
            None => Secrets::load(&args.data_dir)?
                .map(|s| Secret::new(s.jwt_secret))
                .ok_or_else(|| {
                    exit::usage(format!(
                        "no JWT secret: {} has no secrets.json; pass the shop's --data-dir, \
                         or --jwt-secret (BAZAAR_JWT_SECRET)",
                        args.data_dir.display()
                    ))
                })?,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(512)
            .build()
            .context("cannot build the HTTP client")?;
        let client = ShopClient {
            base,
            http,
            secret,
            data_dir: args.data_dir.clone(),
            throttled: AtomicU64::new(0),
        };
        client.check_alive().await?;
        Ok(client)
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// How many 429 answers (over the edge's rate limit) this client has
    /// waited out and asked again.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::Relaxed)
    }

    /// A bearer token for `sub`, valid for `ttl`.
    pub fn token(&self, sub: &str, role: Role, ttl: Duration) -> anyhow::Result<String> {
        crate::token::mint(self.secret.expose(), sub, role, ttl)
    }

    /// A shop that does not answer is unreachable (exit code 3).
    async fn check_alive(&self) -> anyhow::Result<()> {
        let url = format!("{}/healthz", self.base);
        let answer = self
            .http
            .get(&url)
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        match answer {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(exit::unreachable(format!(
                "the shop at {} is not healthy: GET /healthz answered {}",
                self.base,
                response.status()
            ))),
            Err(e) => Err(exit::unreachable(format!(
                "no shop answers at {}: is `bazaar up` still running? ({})",
                self.base,
                innermost(&e)
            ))),
        }
    }

    /// Sends one request and decodes a 2xx JSON answer. A 429 (over the
    /// edge's rate limit) is waited out and asked again, any request alike:
    /// the edge turned it away before doing anything with it. A request with
    /// an idempotency key, or a PUT or GET, is also repeated (same key) when
    /// the connection fails or the shop answers 503, a few times with
    /// back-off: the key makes the repeat return the first outcome.
    pub async fn send<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        request: Request<'_, B>,
    ) -> Result<T, CallError> {
        let repeatable = request.idempotency_key.is_some()
            || request.method == Method::PUT
            || request.method == Method::GET;
        let mut pause = Duration::from_millis(200);
        let mut attempt = 1;
        let mut throttled = 0;
        // Bounded: ATTEMPTS failures, THROTTLED_ATTEMPTS 429s.
        loop {
            let error = match self.send_once(&request).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if self.wait_if_throttled(&error, &mut throttled).await {
                continue;
            }
            if repeatable && error.is_transient() && attempt < ATTEMPTS {
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
                continue;
            }
            return Err(error);
        }
    }

    /// Waits out a 429 and says to ask again, unless `error` is no 429 or
    /// the request has been turned away [`THROTTLED_ATTEMPTS`] times.
    async fn wait_if_throttled(&self, error: &CallError, throttled: &mut u32) -> bool {
        let Some(wait) = error.throttled_for() else {
            return false;
        };
        if *throttled >= THROTTLED_ATTEMPTS {
            return false;
        }
        *throttled += 1;
        self.throttled.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(wait.min(MAX_THROTTLE_WAIT)).await;
        true
    }

    async fn send_once<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        request: &Request<'_, B>,
    ) -> Result<T, CallError> {
        let mut builder = self
            .http
            .request(request.method.clone(), self.url(request.path))
            .bearer_auth(request.token)
            .timeout(REQUEST_TIMEOUT);
        if let Some(key) = request.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(body) = request.body {
            builder = builder.json(body);
        }
        let response = builder.send().await.map_err(CallError::Transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(problem(response).await);
        }
        let bytes = response.bytes().await.map_err(CallError::Transport)?;
        serde_json::from_slice(&bytes).map_err(|e| CallError::Decode {
            status: status.as_u16(),
            message: e.to_string(),
        })
    }

    /// A streaming GET (server-sent events): the response, once it is 2xx.
    /// A 429 is waited out and asked again, as in [`ShopClient::send`].
    pub async fn open_stream(&self, path: &str, token: &str) -> Result<Response, CallError> {
        let mut throttled = 0;
        // Bounded: THROTTLED_ATTEMPTS 429s.
        loop {
            let response = self
                .http
                .get(self.url(path))
                .bearer_auth(token)
                .header("Accept", "text/event-stream")
                .send()
                .await
                .map_err(CallError::Transport)?;
            if response.status().is_success() {
                return Ok(response);
            }
            let error = problem(response).await;
            if !self.wait_if_throttled(&error, &mut throttled).await {
                return Err(error);
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// One request to the shop.
pub struct Request<'a, B: ?Sized> {
    pub method: Method,
    /// From the base URL on, e.g. `/api/v1/products`.
    pub path: &'a str,
    pub token: &'a str,
    pub body: Option<&'a B>,
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Request<'a, ()> {
    pub fn get(path: &'a str, token: &'a str) -> Self {
        Request {
            method: Method::GET,
            path,
            token,
            body: None,
            idempotency_key: None,
        }
    }
}

/// The innermost cause says why, e.g. "Connection refused (os error 111)".
/// The error an answer that is not 2xx stands for.
async fn problem(response: Response) -> CallError {
    let status = response.status();
    let retry_after_s = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match response.bytes().await {
        Ok(bytes) => CallError::from_problem(status, retry_after_s, &bytes),
        Err(e) => CallError::Transport(e),
    }
}

fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    // Bounded by the length of the cause chain.
    while let Some(source) = last.source() {
        last = source;
    }
    last.to_string()
}

fn up_url(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("up.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(exit::usage(format!(
                "no shop found at {} (up.json missing): start one with `bazaar up` or pass --url",
                data_dir.display()
            )))
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let up: UpJson = serde_json::from_str(&text).map_err(|e| {
        exit::usage(format!(
            "{} is not an up.json this bazaar understands: {e}",
            path.display()
        ))
    })?;
    Ok(up.http_url)
}

/// `http://host:port` without a trailing slash; anything else is refused.
fn parse_base(raw: &str) -> anyhow::Result<String> {
    let url = Url::parse(raw.trim()).map_err(|e| {
        exit::usage(format!(
            "{raw:?} is not a URL like http://127.0.0.1:8080: {e}"
        ))
    })?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(exit::usage(format!("{raw:?} is not an http:// URL")));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_loses_its_trailing_slash_and_must_be_http() {
        assert_eq!(
            parse_base("http://127.0.0.1:8080/").ok().as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert!(parse_base("nats://127.0.0.1:4222").is_err());
        assert!(parse_base("not a url").is_err());
    }

    #[test]
    fn a_missing_up_json_is_a_usage_error_that_says_how_to_start_a_shop() {
        let dir = tempfile::tempdir().expect("temp dir");

        let error = up_url(dir.path()).expect_err("no up.json");

        assert!(matches!(
            error.downcast_ref::<exit::Failure>(),
            Some(exit::Failure::Usage(_))
        ));
        assert!(error
            .to_string()
            .contains("(up.json missing): start one with `bazaar up` or pass --url"));
    }
}
