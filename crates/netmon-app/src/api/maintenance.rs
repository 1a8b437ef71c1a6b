//! `/v1/maintenance`: maintenance windows. While one covers a target, its state is still
//! tracked but no incident opens and no reminder is sent.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use netmon_core::WindowId;
use netmon_core::maintenance::{MaintenanceSpec, MaintenanceWindow};
use netmon_core::ports::{Expect, StoreError};
use serde::Serialize;
use serde_json::json;

use super::body::JsonBody;
use super::extract::PathParam;
use super::problem::Problem;
use super::{if_match, inputs};
use crate::auth::Principal;
use crate::http::Operation;
use crate::http::{Access, Ctx, Route, Verb, route};

pub(super) fn routes() -> Vec<Route> {
    let id = |op: Operation| op.path_param("id", "window id");
    vec![
        route(
            Verb::Get,
            "/v1/maintenance",
            Access::Key,
            Operation::new("listMaintenance", "List maintenance windows", "maintenance").ok(
                200,
                "Every window of the tenant, past ones included",
                "MaintenanceList",
            ),
            list_windows,
        ),
        route(
            Verb::Post,
            "/v1/maintenance",
            Access::Key,
            Operation::new(
                "createMaintenance",
                "Create a maintenance window",
                "maintenance",
            )
            .body("MaintenanceSpec")
            .ok(201, "Created", "MaintenanceWindow")
            .error(409, "A window with this id exists"),
            create_window,
        ),
        route(
            Verb::Get,
            "/v1/maintenance/{id}",
            Access::Key,
            id(Operation::new(
                "getMaintenance",
                "A maintenance window",
                "maintenance",
            ))
            .ok(200, "The window", "MaintenanceWindow")
            .error(404, "No such window"),
            get_window,
        ),
        route(
            Verb::Put,
            "/v1/maintenance/{id}",
            Access::Key,
            id(Operation::new(
                "putMaintenance",
                "Create or replace a maintenance window",
                "maintenance",
            ))
            .header(
                "If-Match",
                json!({"type": "string"}),
                "the version being replaced",
            )
            .body("MaintenanceSpec")
            .ok(200, "Replaced (or unchanged)", "MaintenanceWindow")
            .ok(201, "Created", "MaintenanceWindow")
            .error(409, "Version conflict")
            .error(412, "If-Match given but the window does not exist"),
            put_window,
        ),
        route(
            Verb::Delete,
            "/v1/maintenance/{id}",
            Access::Key,
            id(Operation::new(
                "deleteMaintenance",
                "Delete a maintenance window",
                "maintenance",
            ))
            .empty(204, "Deleted")
            .error(404, "No such window"),
            delete_window,
        ),
    ]
}

#[derive(Serialize)]
struct WindowView {
    #[serde(flatten)]
    window: MaintenanceWindow,
    active: bool,
}

fn view(window: MaintenanceWindow, now: chrono::DateTime<chrono::Utc>) -> WindowView {
    let active = window.spec.is_active(now);
    WindowView { window, active }
}

fn parse_window_id(raw: &str) -> Result<WindowId, Problem> {
    WindowId::parse(raw).map_err(|_| Problem::not_found(format!("no maintenance window {raw:?}")))
}

fn no_window(id: &WindowId) -> Problem {
    Problem::not_found(format!("no maintenance window {:?}", id.as_str()))
}

async fn list_windows(ctx: Ctx, p: Principal) -> Result<Response, Problem> {
    let now = ctx.clock.now();
    let items: Vec<WindowView> = ctx
        .maintenance
        .list_windows(&p.tenant)
        .await?
        .into_iter()
        .map(|w| view(w, now))
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

async fn create_window(
    ctx: Ctx,
    p: Principal,
    JsonBody(spec): JsonBody<MaintenanceSpec>,
) -> Result<Response, Problem> {
    inputs::name("name", &spec.name)?;
    let now = ctx.clock.now();
    let id = spec.id.clone();
    let stored = ctx
        .maintenance
        .put_window(
            MaintenanceWindow {
                tenant: p.tenant.clone(),
                spec,
                version: 0,
                created_at: now,
                updated_at: now,
            },
            Expect::Absent,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => Problem::conflict(
                "a maintenance window with this id already exists; use PUT to change it",
            ),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/maintenance/{id}"))],
        axum::Json(view(stored, now)),
    )
        .into_response())
}

async fn get_window(ctx: Ctx, p: Principal, PathParam(id): PathParam) -> Result<Response, Problem> {
    let id = parse_window_id(&id)?;
    let w = ctx
        .maintenance
        .get_window(&p.tenant, &id)
        .await?
        .ok_or_else(|| no_window(&id))?;
    Ok(axum::Json(view(w, ctx.clock.now())).into_response())
}

async fn put_window(
    ctx: Ctx,
    p: Principal,
    PathParam(id): PathParam,
    headers: HeaderMap,
    JsonBody(spec): JsonBody<MaintenanceSpec>,
) -> Result<Response, Problem> {
    inputs::name("name", &spec.name)?;
    let id = parse_window_id(&id)?;
    if spec.id != id {
        return Err(Problem::invalid_field(
            "id",
            format!(
                "body id {:?} does not match the URL id {:?}",
                spec.id.as_str(),
                id.as_str()
            ),
        ));
    }
    let if_match = if_match(&headers)?;
    let now = ctx.clock.now();
    let existing = ctx.maintenance.get_window(&p.tenant, &id).await?;
    let (expect, created_at) = match &existing {
        Some(w) if w.spec == spec && if_match.is_none_or(|v| v == w.version) => {
            return Ok(axum::Json(view(w.clone(), now)).into_response());
        }
        Some(w) => (Expect::Version(if_match.unwrap_or(w.version)), w.created_at),
        None if if_match.is_some() => {
            return Err(Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "If-Match given but the maintenance window does not exist",
            ));
        }
        None => (Expect::Absent, now),
    };
    let stored = ctx
        .maintenance
        .put_window(
            MaintenanceWindow {
                tenant: p.tenant.clone(),
                spec,
                version: 0,
                created_at,
                updated_at: now,
            },
            expect,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => Problem::conflict(
                "the window was changed by someone else (or If-Match is not its version); fetch it again and retry",
            ),
            other => other.into(),
        })?;
    let status = if existing.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(view(stored, now))).into_response())
}

async fn delete_window(
    ctx: Ctx,
    p: Principal,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let id = parse_window_id(&id)?;
    if !ctx.maintenance.delete_window(&p.tenant, &id).await? {
        return Err(no_window(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
