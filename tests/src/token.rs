//! Bearer tokens the edge accepts, minted the way `bazaar token` does.

use std::time::Duration;

use contracts::auth::{Claims, Role};
use jsonwebtoken::{encode, EncodingKey, Header};

/// An HS256 JWT for `sub` with `role`, valid for `ttl`, signed with the
/// UTF-8 bytes of `secret` (the value of `BAZAAR_JWT_SECRET`).
pub fn mint_token(secret: &str, sub: &str, role: Role, ttl: Duration) -> String {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        exp: now.saturating_add(ttl),
        iat: Some(now),
        nbf: None,
    };
    match encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    ) {
        Ok(token) => token,
        Err(e) => panic!("cannot sign a token: {e}"),
    }
}

/// An HS256 JWT for `sub` with `role` that expired `ago` before now (and
/// was issued an hour before that), signed like [`mint_token`].
pub fn mint_expired_token(secret: &str, sub: &str, role: Role, ago: Duration) -> String {
    let now = chrono::Utc::now().timestamp();
    let ago = i64::try_from(ago.as_secs()).unwrap_or(i64::MAX / 2);
    let exp = now.saturating_sub(ago);
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        exp,
        iat: Some(exp.saturating_sub(3600)),
        nbf: None,
    };
    match encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    ) {
        Ok(token) => token,
        Err(e) => panic!("cannot sign a token: {e}"),
    }
}
