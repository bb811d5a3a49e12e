//! Bearer-token authentication: HS256 JWTs only (the algorithm is pinned,
//! `exp` required, `nbf` honoured, 30 s of clock skew tolerated).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use contracts::auth::{Claims, Role};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::problem::ApiError;
use crate::state::AppState;

/// Allowed clock skew between token issuer and the edge.
const LEEWAY_SECS: u64 = 30;

#[derive(Clone)]
pub struct Verifier {
    key: DecodingKey,
    validation: Validation,
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
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
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
                if claims.sub.trim().is_empty() || claims.sub.len() > 128 {
                    Err(ApiError::Unauthorized(
                        "the token's subject is invalid".into(),
                    ))
                } else {
                    Ok(claims)
                }
            })
    }
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
        let token = parts
            .uri
            .query()
            .unwrap_or_default()
            .split('&')
            .find_map(|pair| pair.strip_prefix("access_token="))
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "send Authorization: Bearer <token> or ?access_token=".into(),
                )
            })?;
        state.verifier.verify(token).map(StreamCaller)
    }
}
