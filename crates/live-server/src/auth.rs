//! Identities: seller and viewer bearer tokens, stored as SHA-256 hashes. Tokens are
//! 256-bit random values, so a fast hash is enough; the lookup is by hash, and the
//! stored hash is compared again in constant time.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A random URL-safe token of 256 bits, with a prefix that names its kind.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub const SELLER_TOKEN_PREFIX: &str = "fzs_";
pub const VIEWER_TOKEN_PREFIX: &str = "fzv_";
pub const STREAM_KEY_PREFIX: &str = "fzk_";

/// The signed-in seller.
#[derive(Clone, Debug)]
pub struct Seller {
    pub id: String,
    pub name: String,
}

/// A seller if the request carries a valid token; anonymous otherwise. A token that
/// is present but wrong is still refused, so a client learns its token is bad.
#[derive(Clone, Debug)]
pub struct MaybeSeller(pub Option<Seller>);

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("the Authorization header is not valid text"))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be `Bearer <token>`",
        )),
    }
}

async fn seller_for(state: &AppState, token: &str) -> Result<Seller, ApiError> {
    let hash = hash_secret(token);
    let row: Option<(String, String, String)> =
        sqlx::query_as("select id, name, token_hash from sellers where token_hash = $1")
            .bind(&hash)
            .fetch_optional(&state.db.pool)
            .await?;
    match row {
        Some((id, name, stored)) if same_secret(&stored, &hash) => Ok(Seller { id, name }),
        _ => Err(ApiError::unauthorized(
            "this seller token is not valid; ask for a new one",
        )),
    }
}

impl FromRequestParts<AppState> for Seller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts)? {
            Some(token) => seller_for(state, token).await,
            None => Err(ApiError::unauthorized(
                "sign in as a seller: send `Authorization: Bearer <token>`",
            )),
        }
    }
}

impl FromRequestParts<AppState> for MaybeSeller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(parts)? {
            // A viewer's token on a public read is not an error: it is just not a seller.
            Some(token) if token.starts_with(VIEWER_TOKEN_PREFIX) => Ok(Self(None)),
            Some(token) => Ok(Self(Some(seller_for(state, token).await?))),
            None => Ok(Self(None)),
        }
    }
}

/// The signed-in viewer (an anonymous device identity from `POST /api/viewers`).
#[derive(Clone, Debug)]
pub struct Viewer {
    pub id: String,
    pub display_name: String,
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer(parts)? else {
            return Err(ApiError::unauthorized(
                "sign in as a viewer: POST /api/viewers, then send `Authorization: Bearer <token>`",
            ));
        };
        let hash = hash_secret(token);
        let row: Option<(String, String, String)> = sqlx::query_as(
            "select id, display_name, token_hash from viewers where token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(&state.db.pool)
        .await?;
        match row {
            Some((id, display_name, stored)) if same_secret(&stored, &hash) => {
                Ok(Self { id, display_name })
            }
            _ => Err(ApiError::unauthorized(
                "this viewer token is not valid; POST /api/viewers for a new one",
            )),
        }
    }
}

/// Mints a seller and returns its token (shown once; only its hash is stored).
pub async fn create_seller(db: &crate::db::Db, name: &str) -> anyhow::Result<(String, String)> {
    let name = live_core::validate::seller_name(name)?;
    let id = crate::db::new_id();
    let token = random_token(SELLER_TOKEN_PREFIX);
    sqlx::query("insert into sellers (id, name, token_hash, created_at) values ($1, $2, $3, $4)")
        .bind(&id)
        .bind(&name)
        .bind(hash_secret(&token))
        .bind(chrono::Utc::now().timestamp_millis())
        .execute(&db.pool)
        .await?;
    Ok((id, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_prefixed() {
        let a = random_token(SELLER_TOKEN_PREFIX);
        let b = random_token(SELLER_TOKEN_PREFIX);
        assert!(a.starts_with("fzs_") && a.len() == 4 + 43);
        assert_ne!(a, b);
    }

    #[test]
    fn hashes_are_stable_hex() {
        assert_eq!(hash_secret("abc").len(), 64);
        assert_eq!(hash_secret("abc"), hash_secret("abc"));
        assert!(same_secret(&hash_secret("x"), &hash_secret("x")));
        assert!(!same_secret(&hash_secret("x"), &hash_secret("y")));
    }
}
