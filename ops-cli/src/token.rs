//! `bazaar token`: a bearer token for the local shop, signed with the JWT
//! secret `bazaar up` generated.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use contracts::auth::{self, Claims, Role, MAX_SUBJECT_BYTES};
use jsonwebtoken::{encode, EncodingKey, Header};

use crate::duration::parse_duration;
use crate::exit;
use crate::secrets::Secrets;
use platform::config::Secret;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  bazaar token --customer alice\n  \
    curl -H \"Authorization: Bearer $(bazaar token --customer alice)\" http://127.0.0.1:8080/api/v1/basket\n  \
    BAZAAR_JWT_SECRET=... bazaar token --customer ops --admin   # a shop `bazaar up` did not start (compose)")]
pub struct TokenArgs {
    /// The customer id the token speaks for (its `sub` claim)
    #[arg(long, value_name = "NAME")]
    customer: String,
    /// Make it an admin token (catalog and stock writes) instead of a customer one
    #[arg(long)]
    admin: bool,
    /// How long the token is valid, e.g. 90s, 15m, 24h, 7d
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    ttl: Duration,
    /// The data directory of the shop (where `bazaar up` keeps secrets.json)
    #[arg(long, env = "BAZAAR_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// The secret the edge verifies tokens with, instead of <data-dir>/secrets.json
    /// (for a shop `bazaar up` did not start; prefer the environment variable:
    /// a flag shows in `ps`)
    #[arg(
        long,
        env = "BAZAAR_JWT_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    jwt_secret: Option<Secret>,
}

pub fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    if args.ttl < Duration::from_secs(1) {
        return Err(crate::exit::usage(
            "--ttl must be at least 1s: a token's expiry is in whole seconds",
        ));
    }
    if !auth::subject_is_valid(&args.customer) {
        return Err(exit::usage(format!(
            "--customer must be 1 to {MAX_SUBJECT_BYTES} bytes and not blank \
             (the edge refuses any other subject)"
        )));
    }
    let secret = match args.jwt_secret {
        Some(secret) => secret.expose().to_owned(),
        None => match Secrets::load(&args.data_dir)? {
            Some(secrets) => secrets.jwt_secret,
            None => {
                return Err(exit::usage(format!(
                    "{} has no secrets.json: run `bazaar up` first, pass --data-dir, or give \
                     the edge's secret as BAZAAR_JWT_SECRET (--jwt-secret)",
                    args.data_dir.display()
                )))
            }
        },
    };
    if secret.is_empty() {
        return Err(exit::usage("the JWT secret is empty"));
    }
    let role = if args.admin {
        Role::Admin
    } else {
        Role::Customer
    };
    outln!("{}", mint(&secret, &args.customer, role, args.ttl)?);
    Ok(ExitCode::SUCCESS)
}

/// An HS256 JWT signed with the UTF-8 bytes of `secret`.
pub fn mint(secret: &str, sub: &str, role: Role, ttl: Duration) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let ttl = i64::try_from(ttl.as_secs()).context("the ttl is too long")?;
    let claims = Claims {
        sub: sub.to_owned(),
        role,
        exp: now.saturating_add(ttl),
        iat: Some(now),
        nbf: None,
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("cannot sign the token")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, DecodingKey, Validation};

    #[test]
    fn a_minted_token_carries_the_claims_and_verifies_with_the_secret() {
        let token = mint(
            "s3cret-s3cret-s3cret-s3cret-s3cret",
            "alice",
            Role::Admin,
            Duration::from_secs(60),
        )
        .expect("minted");

        let key = DecodingKey::from_secret(b"s3cret-s3cret-s3cret-s3cret-s3cret");
        let claims = decode::<Claims>(&token, &key, &Validation::default())
            .expect("valid")
            .claims;

        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.role, Role::Admin);
        assert!(claims.exp - claims.iat.unwrap_or_default() == 60);
    }
}
