//! `/v1/keys`: API keys. A tenant key manages its own tenant's keys except admin keys; an admin
//! key manages every tenant's and may create and revoke admin keys; a read-only key lists. The
//! secret is in the create response only.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use netmon_core::TenantId;
use netmon_core::apikey::{ApiKey, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::body::JsonBody;
use super::extract::{Params, PathParam};
use super::problem::Problem;
use crate::auth::{self, Principal};
use crate::http::Operation;
use crate::http::{Access, Ctx, Route, Verb, route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Verb::Get,
            "/v1/keys",
            Access::Key,
            Operation::new("listKeys", "List API keys", "keys")
                .describe("A tenant key sees its tenant's keys; an admin key sees every tenant's (or one, with `tenant`). Revoked keys are listed too.")
                .query("tenant", json!({"type": "string"}), "admin keys only: just this tenant")
                .ok(200, "Keys, oldest first (never their secrets)", "KeyList")
                .error(403, "`tenant` needs an admin key"),
            list_keys,
        ),
        route(
            Verb::Post,
            "/v1/keys",
            Access::Key,
            Operation::new("createKey", "Create an API key", "keys")
                .body("KeyCreate")
                .ok(201, "Created; `key` is the secret, shown only here", "KeyCreated")
                .error(403, "Admin keys and other tenants' keys need an admin key"),
            create_key,
        ),
        route(
            Verb::Delete,
            "/v1/keys/{id}",
            Access::Key,
            Operation::new("revokeKey", "Revoke an API key", "keys")
                .path_param("id", "the key's id (the 12 hex digits after nmk_)")
                .ok(200, "Revoked (revoking again keeps the first time)", "Key")
                .error(403, "Revoking an admin key needs an admin key")
                .error(404, "No such key in the caller's reach"),
            revoke_key,
        ),
    ]
}

/// A key as listed: never its hash, never its secret.
#[derive(Serialize)]
pub(crate) struct KeyView {
    id: String,
    tenant: TenantId,
    role: Role,
    name: String,
    created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
    active: bool,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            active: k.is_active(),
            id: k.id,
            tenant: k.tenant,
            role: k.role,
            name: k.name,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    tenant: Option<TenantId>,
}

async fn list_keys(
    ctx: Ctx,
    p: Principal,
    Params(q): Params<ListQuery>,
) -> Result<Response, Problem> {
    let scope = match (p.is_admin(), q.tenant) {
        (true, t) => t,
        (false, None) => Some(p.tenant.clone()),
        (false, Some(t)) if t == p.tenant => Some(t),
        (false, Some(_)) => {
            return Err(Problem::forbidden(
                "listing another tenant's keys needs an admin key",
            ));
        }
    };
    let items: Vec<KeyView> = ctx
        .keys
        .list_keys(scope.as_ref())
        .await?
        .into_iter()
        .map(KeyView::from)
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyCreate {
    name: String,
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    tenant: Option<TenantId>,
}

async fn create_key(
    ctx: Ctx,
    p: Principal,
    JsonBody(req): JsonBody<KeyCreate>,
) -> Result<Response, Problem> {
    auth::check_name(&req.name).map_err(|why| Problem::invalid_field("name", why))?;
    let role = req.role.unwrap_or(Role::Tenant);
    let tenant = req.tenant.unwrap_or_else(|| p.tenant.clone());
    if !p.is_admin() {
        if role == Role::Admin {
            return Err(Problem::forbidden(
                "creating an admin key needs an admin key",
            ));
        }
        if tenant != p.tenant {
            return Err(Problem::forbidden(
                "creating a key for another tenant needs an admin key",
            ));
        }
    }
    let created = auth::create(ctx.keys.as_ref(), tenant, role, &req.name, ctx.clock.now()).await?;
    tracing::info!(key = %created.record.id, tenant = %created.record.tenant, role = role.as_str(), by = %p.key_id, "API key created");
    let mut body = serde_json::to_value(KeyView::from(created.record.clone())).map_err(|_| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the key could not be encoded",
        )
    })?;
    body["key"] = json!(created.secret);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/keys/{}", created.record.id))],
        axum::Json(body),
    )
        .into_response())
}

async fn revoke_key(ctx: Ctx, p: Principal, PathParam(id): PathParam) -> Result<Response, Problem> {
    let not_found = || Problem::not_found(format!("no API key {id:?}"));
    let key = ctx.keys.get_key(&id).await?.ok_or_else(not_found)?;
    // Another tenant's key is "not found" for a tenant key, so key ids do not leak.
    if !p.is_admin() && key.tenant != p.tenant {
        return Err(not_found());
    }
    // Otherwise a tenant key could lock its tenant's administrators out (the first admin key
    // included).
    if key.role == Role::Admin && !p.is_admin() {
        return Err(Problem::forbidden(
            "revoking an admin key needs an admin key",
        ));
    }
    let revoked = ctx
        .keys
        .revoke_key(&id, ctx.clock.now())
        .await?
        .ok_or_else(not_found)?;
    tracing::info!(key = %id, by = %p.key_id, "API key revoked");
    Ok(axum::Json(KeyView::from(revoked)).into_response())
}
