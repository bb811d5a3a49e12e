//! Bearer-token authentication: HS256 JWTs only (the algorithm is pinned,
//! `exp` required, `nbf` honoured, 5 s of clock skew tolerated).
//!
//! A token that verified is remembered (its exact text, bounded) with its
//! claims until it expires, so a client's next requests skip the base64,
//! HMAC and JSON work; anything else is verified in full.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use contracts::auth::{Claims, Role};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::problem::ApiError;
use crate::state::AppState;

/// Allowed clock skew between token issuer and the edge: a token is
/// refused from 5 s after its `exp` (README, "Tokens").
const LEEWAY_SECS: u64 = 5;

/// Verified tokens remembered at most.
const REMEMBERED: usize = 4096;

pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
    /// Tokens that verified, with their claims (valid until `exp` + leeway).
    verified: Mutex<HashMap<String, Claims>>,
}

impl Verifier {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Verifier {
            key: DecodingKey::from_secret(secret),
            validation,
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// The claims of a valid token; a token seen valid before is not
    /// checked again until it expires (its `nbf`, once passed, stays so).
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let now = now_ms();
        if let Some(claims) = self.remembered(token, now) {
            return Ok(claims);
        }
        let claims = self.verify_in_full(token)?;
        // `jsonwebtoken` counts whole seconds, so it accepts a token up to
        // a second past `exp` + leeway; the edge refuses it from then on.
        if !still_valid(&claims, now) {
            return Err(ApiError::Unauthorized("the token has expired".into()));
        }
        self.remember(token, &claims, now);
        Ok(claims)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Claims>> {
        // A panic while holding the lock leaves whole entries behind.
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remembered(&self, token: &str, now: u64) -> Option<Claims> {
        let mut verified = self.lock();
        let claims = verified.get(token)?;
        if still_valid(claims, now) {
            return Some(claims.clone());
        }
        verified.remove(token);
        None
    }

    fn remember(&self, token: &str, claims: &Claims, now: u64) {
        let mut verified = self.lock();
        if verified.len() >= REMEMBERED {
            verified.retain(|_, c| still_valid(c, now));
            if verified.len() >= REMEMBERED {
                verified.clear();
            }
        }
        verified.insert(token.to_owned(), claims.clone());
    }

    fn verify_in_full(&self, token: &str) -> Result<Claims, ApiError> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind::*;
                let detail = match e.kind() {
                    ExpiredSignature => "the token has expired",
                    ImmatureSignature => "the token is not valid yet",
                    InvalidAlgorithm => "the token must be signed with HS256",
                    InvalidSignature => "the token's signature is invalid",
                    _ => "the token is malformed",
                };
                ApiError::Unauthorized(detail.into())
            })
            .and_then(|claims| {
                if !contracts::auth::subject_is_valid(&claims.sub) {
                    Err(ApiError::Unauthorized(
                        "the token's subject is invalid".into(),
                    ))
                } else {
                    Ok(claims)
                }
            })
    }
}

/// Milliseconds since the epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Whether a token with these claims is still accepted at `now_ms`: until
/// `exp` + leeway, to the millisecond.
fn still_valid(claims: &Claims, now_ms: u64) -> bool {
    u64::try_from(claims.exp)
        .is_ok_and(|exp| now_ms <= exp.saturating_add(LEEWAY_SECS).saturating_mul(1000))
}

/// How much longer a token with these claims is accepted (zero once it
/// is not): what a long-lived answer, such as an event stream, may last.
pub fn time_left(claims: &Claims) -> std::time::Duration {
    let end_ms = u64::try_from(claims.exp)
        .unwrap_or(0)
        .saturating_add(LEEWAY_SECS)
        .saturating_mul(1000);
    std::time::Duration::from_millis(end_ms.saturating_sub(now_ms()))
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in
/// any case, RFC 9110 §11.1).
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthorized("the Authorization header is malformed".into()))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => Ok(token.trim()),
        _ => Err(ApiError::Unauthorized(
            "the Authorization scheme must be Bearer".into(),
        )),
    }
}

/// A customer's token: baskets and orders are a customer's own (DESIGN §7).
fn customer(claims: Claims) -> Result<Claims, ApiError> {
    match claims.role {
        Role::Customer => Ok(claims),
        Role::Admin => Err(ApiError::Forbidden(
            "baskets and orders need a customer token (`bazaar token --customer NAME`); \
             an admin token is for catalog and stock writes"
                .into(),
        )),
    }
}

/// An authenticated caller (any role).
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

/// An authenticated customer (an admin token gets 403).
#[derive(Debug, Clone)]
pub struct Customer(pub Claims);

impl FromRequestParts<AppState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(claims) = Caller::from_request_parts(parts, state).await?;
        customer(claims).map(Customer)
    }
}

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct Admin(pub Claims);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        state.verifier.verify(bearer(parts)?).map(Caller)
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Caller(claims) = Caller::from_request_parts(parts, state).await?;
        if claims.role != Role::Admin {
            return Err(ApiError::Forbidden("this needs an admin token".into()));
        }
        Ok(Admin(claims))
    }
}

/// An authenticated customer whose token may also come as `?access_token=`
/// (for server-sent events: browsers' EventSource cannot send headers).
#[derive(Debug, Clone)]
pub struct StreamCaller(pub Claims);

impl FromRequestParts<AppState> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Customer::from_request_parts(parts, state)
                .await
                .map(|Customer(c)| StreamCaller(c));
        }
        // Percent-decoded, as any query parameter (`%2E` is a `.`).
        #[derive(serde::Deserialize)]
        struct AccessToken {
            access_token: Option<String>,
        }
        let token = axum::extract::Query::<AccessToken>::try_from_uri(&parts.uri)
            .ok()
            .and_then(|q| q.0.access_token)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "send Authorization: Bearer <token> or ?access_token=".into(),
                )
            })?;
        state
            .verifier
            .verify(&token)
            .and_then(customer)
            .map(StreamCaller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};

    const SECRET: &[u8] = b"a test secret of at least 32 bytes!!";

    fn token(sub: &str, exp: i64) -> String {
        let claims = Claims {
            sub: sub.into(),
            role: Role::Customer,
            exp,
            iat: None,
            nbf: None,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .expect("encoding a test token")
    }

    fn now() -> i64 {
        i64::try_from(jsonwebtoken::get_current_timestamp()).expect("a sane clock")
    }

    #[test]
    fn a_verified_token_is_remembered_until_it_expires() {
        let verifier = Verifier::new(SECRET);
        let exp = now() + 60;
        let good = token("c1", exp);

        assert_eq!(
            verifier.verify(&good).map(|c| c.sub).ok(),
            Some("c1".into())
        );

        // Refused from exp + leeway, to the millisecond.
        let at_ms = |t: i64| u64::try_from(t).expect("positive");
        let end = (exp + i64::try_from(LEEWAY_SECS).expect("a small leeway")) * 1000;
        assert!(verifier.remembered(&good, at_ms(end)).is_some());
        assert!(verifier.remembered(&good, at_ms(end + 1)).is_none());
    }

    #[test]
    fn a_token_past_its_exp_and_leeway_is_refused_within_the_second() {
        let verifier = Verifier::new(SECRET);
        // Mid-second, so the whole seconds jsonwebtoken counts say exactly
        // exp + leeway (which it accepts) while 0.2-0.7 s more have passed.
        for _ in 0..40 {
            if (200..700).contains(&(now_ms() % 1000)) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let exp = now() - i64::try_from(LEEWAY_SECS).expect("a small leeway");
        match verifier.verify(&token("c1", exp)) {
            Err(ApiError::Unauthorized(detail)) => assert!(detail.contains("expired"), "{detail}"),
            other => panic!("a token {LEEWAY_SECS}.2-0.7 s past exp was not refused: {other:?}"),
        }
    }

    #[test]
    fn the_bearer_scheme_is_matched_in_any_case() {
        for (value, token) in [
            ("Bearer abc", Some("abc")),
            ("BEARER abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearerabc", None),
        ] {
            let request = axum::http::Request::builder()
                .header(header::AUTHORIZATION, value)
                .body(())
                .expect("a request");
            let (parts, ()) = request.into_parts();
            assert_eq!(bearer(&parts).ok(), token, "{value}");
        }
    }

    #[test]
    fn a_token_that_differs_from_a_remembered_one_is_verified_in_full() {
        let verifier = Verifier::new(SECRET);
        let good = token("c1", now() + 60);
        assert!(verifier.verify(&good).is_ok());

        let mut forged = good.clone();
        forged.pop();
        forged.push(if good.ends_with('A') { 'B' } else { 'A' });

        assert!(verifier.verify(&forged).is_err());
    }

    #[test]
    fn remembered_tokens_are_bounded() {
        let verifier = Verifier::new(SECRET);
        for i in 0..REMEMBERED + 10 {
            assert!(verifier
                .verify(&token(&format!("c{i}"), now() + 60))
                .is_ok());
        }
        assert!(verifier.lock().len() <= REMEMBERED);
    }
}
