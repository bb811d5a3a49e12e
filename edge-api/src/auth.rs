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
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(claims) = self.remembered(token, now) {
            return Ok(claims);
        }
        let claims = self.verify_in_full(token)?;
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

/// Whether `jsonwebtoken` would still accept a token with these claims at
/// `now` (it refuses once `exp < now - leeway`).
fn still_valid(claims: &Claims, now: u64) -> bool {
    u64::try_from(claims.exp).is_ok_and(|exp| now <= exp.saturating_add(LEEWAY_SECS))
}

/// An authenticated caller (any role).
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

/// An authenticated admin.
#[derive(Debug, Clone)]
pub struct Admin(pub Claims);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("send Authorization: Bearer <token>".into()))?;
        let value = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the Authorization header is malformed".into()))?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::Unauthorized("the Authorization scheme must be Bearer".into())
            })?;
        state.verifier.verify(token.trim()).map(Caller)
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

/// An authenticated caller whose token may also come as `?access_token=`
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
            return Caller::from_request_parts(parts, state)
                .await
                .map(|Caller(c)| StreamCaller(c));
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
        state.verifier.verify(&token).map(StreamCaller)
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

        let at = |t: i64| u64::try_from(t).expect("positive");
        let leeway = i64::try_from(LEEWAY_SECS).expect("a small leeway");
        assert!(verifier.remembered(&good, at(exp + leeway)).is_some());
        assert!(verifier.remembered(&good, at(exp + leeway + 1)).is_none());
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
