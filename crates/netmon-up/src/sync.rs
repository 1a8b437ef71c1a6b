//! Loading the config into the store at start-up, and the first admin key of a fresh store.

use chrono::{DateTime, Utc};
use netmon_core::TenantId;
use netmon_core::apikey::Role;
use netmon_core::channel::{Channel, ChannelSpec};
use netmon_core::ports::{ApiKeyStore, ChannelStore, Expect, StoreError, TargetStore};
use netmon_core::target::Target;
use netmon_embedded::SqliteStore;
use tracing::info;

use crate::config::Config;

/// Creates an admin key for `tenant` if the store has no active admin key (a fresh store, or
/// every admin key revoked). The secret is returned to be shown once, never logged.
pub async fn ensure_admin_key(
    store: &dyn ApiKeyStore,
    tenant: &TenantId,
    now: DateTime<Utc>,
) -> Result<Option<netmon_app::auth::NewKey>, StoreError> {
    let keys = store.list_keys(None).await?;
    if keys.iter().any(|k| k.role == Role::Admin && k.is_active()) {
        return Ok(None);
    }
    let key = netmon_app::auth::create(
        store,
        tenant.clone(),
        Role::Admin,
        "local admin (netmon up)",
        now,
    )
    .await?;
    info!(key = %key.record.id, tenant = %tenant, "created the first admin API key");
    Ok(Some(key))
}

/// Writes the config's channels and targets into the store: creates what is new, updates what
/// changed, leaves identical ones alone (no version bump on restart). Targets created through
/// the API are kept.
pub async fn apply_config(
    store: &SqliteStore,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tenant = &config.tenant;
    let existing_channels = store.list_channels(tenant).await?;
    for spec in &config.channels {
        let current = existing_channels.iter().find(|c| c.spec.id == spec.id);
        upsert_channel(store, tenant, spec, current, now).await?;
    }
    for spec in &config.targets {
        let current = store.get_target(tenant, &spec.id).await?;
        let mut spec = spec.clone();
        // A heartbeat in the config without a token keeps the one generated on first start.
        spec.ensure_heartbeat_token(current.as_ref().map(|t| &t.spec));
        match current {
            Some(t) if t.spec == spec => {}
            Some(t) => {
                store
                    .put_target(
                        Target {
                            tenant: tenant.clone(),
                            spec,
                            version: t.version,
                            created_at: t.created_at,
                            updated_at: now,
                        },
                        Expect::Version(t.version),
                    )
                    .await?;
            }
            None => {
                store
                    .put_target(
                        Target {
                            tenant: tenant.clone(),
                            spec,
                            version: 0,
                            created_at: now,
                            updated_at: now,
                        },
                        Expect::Absent,
                    )
                    .await?;
            }
        }
    }
    Ok(())
}

async fn upsert_channel(
    store: &SqliteStore,
    tenant: &TenantId,
    spec: &ChannelSpec,
    current: Option<&Channel>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (expect, created_at) = match current {
        Some(c) if c.spec == *spec => return Ok(()),
        Some(c) => (Expect::Version(c.version), c.created_at),
        None => (Expect::Absent, now),
    };
    store
        .put_channel(
            Channel {
                tenant: tenant.clone(),
                spec: spec.clone(),
                version: 0,
                created_at,
                updated_at: now,
            },
            expect,
        )
        .await?;
    Ok(())
}
