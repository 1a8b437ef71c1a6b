//! API keys: `nmk_<id>_<secret>`, stored as the id plus a SHA-256 of the secret.
//!
//! The secret is 64 hex digits from the OS random generator (two v4 UUIDs: 244 random bits), so
//! a fast hash is enough: there is nothing to brute-force that a slow hash would protect. The
//! stored hash is compared in constant time.

use chrono::{DateTime, Utc};
use netmon_core::TenantId;
use netmon_core::apikey::{ApiKey, ID_LEN, KEY_PREFIX, Role, split_key};
use netmon_core::ports::{ApiKeyStore, StoreError};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Who is calling: taken from the key, never from the URL or the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub tenant: TenantId,
    pub role: Role,
}

impl Principal {
    pub(crate) fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A key just created: the record to store and the full key text, shown once.
pub struct NewKey {
    pub record: ApiKey,
    pub secret: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn generate(tenant: TenantId, role: Role, name: &str, now: DateTime<Utc>) -> NewKey {
    // The first 12 hex digits of a v4 UUID are all random (the version digit is the 13th).
    let id = uuid::Uuid::new_v4().simple().to_string()[..ID_LEN].to_owned();
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    NewKey {
        record: ApiKey {
            id: id.clone(),
            tenant,
            role,
            name: name.to_owned(),
            secret_hash: hash_secret(&secret),
            created_at: now,
            revoked_at: None,
        },
        secret: format!("{KEY_PREFIX}{id}_{secret}"),
    }
}

/// Creates and stores a key, retrying the (48-bit) id on the rare clash.
pub async fn create(
    store: &dyn ApiKeyStore,
    tenant: TenantId,
    role: Role,
    name: &str,
    now: DateTime<Utc>,
) -> Result<NewKey, StoreError> {
    let mut last = None;
    for _ in 0..3 {
        let key = generate(tenant.clone(), role, name, now);
        match store.create_key(&key.record).await {
            Ok(()) => return Ok(key),
            Err(StoreError::Conflict(why)) => last = Some(why),
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict(last.unwrap_or_default()))
}

/// Names are shown in listings and logs: 1-100 printable characters.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.trim().is_empty()
        || name.chars().count() > 100
        || !netmon_core::ids::is_printable_text(name)
    {
        return Err("must be 1 to 100 printable characters and not blank");
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("this route needs an API key: send `Authorization: Bearer nmk_…`")]
    Missing,
    #[error("the Authorization header is not `Bearer nmk_<id>_<secret>`")]
    Malformed,
    /// Unknown id or wrong secret: the same answer, so ids cannot be probed.
    #[error("the API key is not valid")]
    Invalid,
    #[error("the API key was revoked")]
    Revoked,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a presented key (the part after `Bearer `).
pub async fn authenticate(
    store: &dyn ApiKeyStore,
    presented: &str,
) -> Result<Principal, AuthError> {
    let (id, secret) = split_key(presented).ok_or(AuthError::Malformed)?;
    let key = store.get_key(id).await?.ok_or(AuthError::Invalid)?;
    let matches: bool = hash_secret(secret)
        .as_bytes()
        .ct_eq(key.secret_hash.as_bytes())
        .into();
    if !matches {
        return Err(AuthError::Invalid);
    }
    if !key.is_active() {
        return Err(AuthError::Revoked);
    }
    Ok(Principal {
        key_id: key.id,
        tenant: key.tenant,
        role: key.role,
    })
}

/// The key in an `Authorization` header value, `None` if it is not a bearer token at all.
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header() {
        assert_eq!(bearer("Bearer nmk_x"), Some("nmk_x"));
        assert_eq!(bearer("bearer  nmk_x "), Some("nmk_x"));
        assert_eq!(bearer("Basic dXNlcg=="), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("nmk_x"), None);
    }
}
