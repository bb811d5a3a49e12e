//! Per-caller rate limiting: a token bucket per verified JWT `sub` (per
//! client IP for requests without a valid token), as axum middleware that
//! answers 429 problem+json with `Retry-After`.
//!
//! Admin tokens are not limited: they are the operators' (and `bazaar
//! seed`'s) and create catalogs at whatever pace the shop takes. The health
//! routes are merged outside this middleware and never limited.
//!
//! Memory is bounded: buckets that have refilled completely carry no
//! information and are swept, and the map never holds more than
//! `max_keys` buckets (past that, arbitrary buckets are dropped; a dropped
//! bucket starts full again, which at worst grants that caller one more
//! burst).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use contracts::auth::Role;

use crate::auth::Verifier;
use crate::problem::ApiError;
use crate::state::AppState;

/// Most buckets kept at once.
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// Paths that are never limited (probes and scrapes), should they ever be
/// routed through this middleware.
const EXEMPT: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Whom a bucket belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A verified token's subject (customer id).
    Subject(String),
    /// The peer address of a request without a valid token.
    Ip(IpAddr),
    /// A request whose peer address is unknown.
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The limiter's settings: `per_s` tokens a second, up to `burst`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_s: u32,
    pub burst: u32,
    pub max_keys: usize,
}

impl Limits {
    /// Whether these limits limit anything (0 disables).
    pub fn enabled(&self) -> bool {
        self.per_s > 0 && self.burst > 0 && self.max_keys > 0
    }
}

/// Token buckets keyed by caller.
#[derive(Debug)]
pub struct RateLimiter {
    limits: Limits,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    buckets: HashMap<Key, Bucket>,
    last_sweep: Option<Instant>,
}

impl RateLimiter {
    pub fn new(limits: Limits) -> Self {
        RateLimiter {
            limits,
            inner: Mutex::new(Inner {
                buckets: HashMap::new(),
                last_sweep: None,
            }),
        }
    }

    /// How many buckets are held.
    pub fn len(&self) -> usize {
        self.lock().buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind, which
        // are still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one token for `key` at `now`; on refusal, how long until the
    /// next token.
    pub fn check(&self, key: Key, now: Instant) -> Result<(), Duration> {
        if !self.limits.enabled() {
            return Ok(());
        }
        let rate = f64::from(self.limits.per_s);
        let burst = f64::from(self.limits.burst);
        let mut inner = self.lock();
        if !inner.buckets.contains_key(&key) && inner.buckets.len() >= self.limits.max_keys {
            self.make_room(&mut inner, now);
        }
        let bucket = inner.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Sweeps full buckets (at most once a second), then, if the map is
    /// still at its cap, drops a tenth of it.
    fn make_room(&self, inner: &mut Inner, now: Instant) {
        let rate = f64::from(self.limits.per_s);
        let burst = f64::from(self.limits.burst);
        let may_sweep = inner
            .last_sweep
            .is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1));
        if may_sweep {
            inner.last_sweep = Some(now);
            inner.buckets.retain(|_, b| {
                let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
                b.tokens + elapsed * rate < burst
            });
        }
        if inner.buckets.len() >= self.limits.max_keys {
            let drop = (self.limits.max_keys / 10).max(1);
            let victims: Vec<Key> = inner.buckets.keys().take(drop).cloned().collect();
            for key in victims {
                inner.buckets.remove(&key);
            }
        }
    }
}

/// The middleware: limits every request but the exempt ones and admins'.
pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.rate_limiter.limits.enabled() || EXEMPT.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let key = match key_of(&state.verifier, &request) {
        Some(key) => key,
        None => return next.run(request).await,
    };
    match state.rate_limiter.check(key, Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            metrics::counter!("bazaar_http_rate_limited_total").increment(1);
            // Whole seconds, rounded up: `Retry-After` has no fractions.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::TooManyRequests {
                retry_after_secs: secs.max(1),
            }
            .into_response()
        }
    }
}

/// The bucket of a request, or `None` for an admin (not limited).
fn key_of(verifier: &Verifier, request: &Request) -> Option<Key> {
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .or_else(|| {
            request
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|pair| pair.strip_prefix("access_token="))
        });
    if let Some(claims) = token.and_then(|t| verifier.verify(t).ok()) {
        return match claims.role {
            Role::Admin => None,
            _ => Some(Key::Subject(claims.sub)),
        };
    }
    Some(
        request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(Key::Unknown, |ConnectInfo(addr)| Key::Ip(addr.ip())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_s: u32, burst: u32, max_keys: usize) -> RateLimiter {
        RateLimiter::new(Limits {
            per_s,
            burst,
            max_keys,
        })
    }

    fn sub(s: &str) -> Key {
        Key::Subject(s.to_owned())
    }

    #[test]
    fn a_burst_is_allowed_then_refused_with_the_wait_for_the_next_token() {
        let rl = limiter(5, 3, 100);
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(rl.check(sub("a"), t), Ok(()));
        }
        let wait = rl
            .check(sub("a"), t)
            .expect_err("the fourth is over the burst");
        assert!(
            wait > Duration::from_millis(150) && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
    }

    #[test]
    fn tokens_come_back_at_the_rate_and_never_beyond_the_burst() {
        let rl = limiter(10, 2, 100);
        let t = Instant::now();
        assert!(rl.check(sub("a"), t).is_ok());
        assert!(rl.check(sub("a"), t).is_ok());
        assert!(rl.check(sub("a"), t).is_err());
        assert!(rl.check(sub("a"), t + Duration::from_millis(100)).is_ok());
        assert!(rl.check(sub("a"), t + Duration::from_millis(100)).is_err());
        // A long pause refills to the burst, not beyond.
        let later = t + Duration::from_secs(60);
        assert!(rl.check(sub("a"), later).is_ok());
        assert!(rl.check(sub("a"), later).is_ok());
        assert!(rl.check(sub("a"), later).is_err());
    }

    #[test]
    fn one_callers_burst_leaves_another_unaffected() {
        let rl = limiter(1, 2, 100);
        let t = Instant::now();
        assert!(rl.check(sub("a"), t).is_ok());
        assert!(rl.check(sub("a"), t).is_ok());
        assert!(rl.check(sub("a"), t).is_err());
        assert!(rl.check(sub("b"), t).is_ok());
        assert!(rl.check(Key::Ip(IpAddr::from([127, 0, 0, 1])), t).is_ok());
    }

    #[test]
    fn zero_disables_the_limit() {
        for rl in [limiter(0, 10, 100), limiter(10, 0, 100)] {
            let t = Instant::now();
            for _ in 0..1000 {
                assert!(rl.check(sub("a"), t).is_ok());
            }
            assert!(rl.is_empty());
        }
    }

    #[test]
    fn the_map_never_grows_past_its_cap() {
        let rl = limiter(1, 1000, 50);
        let t = Instant::now();
        for n in 0..10_000 {
            let _ = rl.check(sub(&n.to_string()), t);
            assert!(rl.len() <= 50, "{} buckets", rl.len());
        }
    }

    #[test]
    fn idle_buckets_are_swept_before_busy_ones() {
        let rl = limiter(10, 5, 3);
        let t = Instant::now();
        for _ in 0..5 {
            assert!(rl.check(sub("busy"), t).is_ok());
        }
        assert!(rl.check(sub("idle-1"), t).is_ok());
        assert!(rl.check(sub("idle-2"), t).is_ok());
        // 350 ms on, the busy bucket is drained again; 100 ms after that
        // the idle ones have refilled (and are swept), the busy one has not.
        let later = t + Duration::from_millis(350);
        for _ in 0..5 {
            let _ = rl.check(sub("busy"), later);
        }
        let much_later = later + Duration::from_millis(100);
        assert!(rl.check(sub("new"), much_later).is_ok());
        assert!(rl.len() <= 3);
        // The busy bucket survived: it is still nearly empty.
        assert!(rl.check(sub("busy"), much_later).is_ok());
        assert!(rl.check(sub("busy"), much_later).is_err());
    }
}
