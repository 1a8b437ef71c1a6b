//! API keys: `nmk_<id>_<secret>`. The id is the lookup key and is not secret; only a hash of the
//! secret is stored. Hashing and verification live with the API (`netmon_app::auth`); this module
//! holds the stored record and the key format.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::TenantId;

pub const KEY_PREFIX: &str = "nmk_";
/// Hex characters in the lookup id (48 bits: collisions are refused at create, never silent).
pub const ID_LEN: usize = 12;
/// Hex characters in the secret (256 bits).
pub(crate) const SECRET_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything a tenant key may do, for its own tenant, plus managing keys of every tenant.
    Admin,
    /// The resources of its own tenant, and that tenant's keys other than admin keys.
    Tenant,
    /// Reads its own tenant's resources with every secret redacted (header values, bodies,
    /// heartbeat tokens, channel credentials); changes nothing.
    ReadOnly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Tenant => "tenant",
            Role::ReadOnly => "read_only",
        }
    }

    /// Whether the key may change anything (and see secrets).
    pub fn can_write(self) -> bool {
        self != Role::ReadOnly
    }
}

/// A stored key. `secret_hash` is the hex SHA-256 of the secret part; the secret itself is shown
/// once, when the key is created, and never stored.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub tenant: TenantId,
    pub role: Role,
    pub name: String,
    pub secret_hash: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

// The hash is not the secret, but it has no business in logs either.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("tenant", &self.tenant)
            .field("role", &self.role)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

impl ApiKey {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn is_valid_key_id(id: &str) -> bool {
    is_lower_hex(id, ID_LEN)
}

/// Splits a presented key into (id, secret); `None` unless it has exactly the key format.
pub fn split_key(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (is_valid_key_id(id) && is_lower_hex(secret, SECRET_LEN)).then_some((id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_format() {
        let id = "0123456789ab";
        let secret = "f".repeat(64);
        let key = format!("nmk_{id}_{secret}");
        assert_eq!(split_key(&key), Some((id, secret.as_str())));
        for bad in [
            "".to_owned(),
            format!("nmk_{id}"),
            format!("nmk_{id}_{}", "f".repeat(63)),
            format!("nmk_{}_{secret}", "A".repeat(12)),
            format!("xyz_{id}_{secret}"),
            format!("nmk_{id}_{secret}_"),
        ] {
            assert_eq!(split_key(&bad), None, "{bad}");
        }
    }

    #[test]
    fn roles_serialize_as_their_names() {
        for role in [Role::Admin, Role::Tenant, Role::ReadOnly] {
            let json = serde_json::to_string(&role).unwrap();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).unwrap(), role);
        }
    }

    #[test]
    fn debug_leaves_out_the_hash() {
        let k = ApiKey {
            id: "0123456789ab".into(),
            tenant: TenantId::default_tenant(),
            role: Role::Admin,
            name: "ci".into(),
            secret_hash: "deadbeefcafe".into(),
            created_at: DateTime::UNIX_EPOCH,
            revoked_at: None,
        };
        assert!(!format!("{k:?}").contains("deadbeef"));
    }
}
