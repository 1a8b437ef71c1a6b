//! `/v1/incidents` (open and recent), `/v1/notifications` (what became of each notification) and
//! `/v1/overview` (every target's status at a glance).

use std::collections::HashMap;

use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use netmon_core::incident::CheckState;
use netmon_core::maintenance::MaintenanceWindow;
use netmon_core::maintenance::{in_maintenance, in_maintenance_tagged};
use netmon_core::notification::NotificationOutcome;
use netmon_core::ports::PageRequest;
use netmon_core::ports::{StateFlags, StatusCounts, StoreError};
use netmon_core::target::Target;
use netmon_core::{TargetId, TenantId};
use serde::Deserialize;
use serde_json::json;

use super::extract::Params;
use super::page_limit;
use super::problem::Problem;
use crate::auth::Principal;
use crate::http::Operation;
use crate::http::{Access, ApiContext, Ctx, Route, Verb, route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Verb::Get,
            "/v1/incidents",
            Access::Key,
            Operation::new(
                "listIncidents",
                "Open incidents first, then recent ones",
                "incidents",
            )
            .query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 500}),
                "at most this many, default 50",
            )
            .query(
                "status",
                json!({"enum": ["open", "resolved", "all"]}),
                "default all",
            )
            .ok(
                200,
                "Incidents, newest first within open and resolved",
                "IncidentList",
            ),
            list_incidents,
        ),
        route(
            Verb::Get,
            "/v1/notifications",
            Access::Key,
            Operation::new(
                "listNotifications",
                "What became of each notification: delivered, retrying (why, and when next) or failed",
                "incidents",
            )
            .query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 500}),
                "at most this many, default 50",
            )
            .query(
                "incident",
                json!({"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"}),
                "only this incident's",
            )
            .query(
                "outcome",
                json!({"enum": ["delivered", "retrying", "failed"]}),
                "only these",
            )
            .ok(
                200,
                "One record per incident event and channel, the latest attempt first",
                "NotificationList",
            ),
            list_notifications,
        ),
        route(
            Verb::Get,
            "/v1/overview",
            Access::Key,
            Operation::new(
                "overview",
                "Every target's status and the open incidents",
                "incidents",
            )
            .query(
                "limit",
                json!({"type": "integer", "minimum": 1, "maximum": 500}),
                "target lines per page, default 500 (counts always cover the tenant)",
            )
            .query("after", json!({"type": "string"}), "the `next` of the previous page")
            .ok(200, "Counts over the tenant and one line per target of this page", "Overview"),
            overview,
        ),
    ]
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Which {
    Open,
    Resolved,
    All,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    status: Option<Which>,
}

async fn list_incidents(
    ctx: Ctx,
    p: Principal,
    Params(q): Params<IncidentQuery>,
) -> Result<Response, Problem> {
    let limit = page_limit(q.limit, 50)?;
    let which = q.status.unwrap_or(Which::All);
    // Open ones come first, so `open` needs no more than `limit`; `resolved` reads past the
    // open ones (a tenant has few open at once).
    let read = if which == Which::Resolved {
        limit.saturating_add(500)
    } else {
        limit
    };
    let items: Vec<_> = ctx
        .states
        .list_incidents(&p.tenant, read)
        .await?
        .into_iter()
        .filter(|i| match which {
            Which::Open => i.resolved_at.is_none(),
            Which::Resolved => i.resolved_at.is_some(),
            Which::All => true,
        })
        .take(limit as usize)
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    incident: Option<String>,
    #[serde(default)]
    outcome: Option<NotificationOutcome>,
}

/// Records read when filtering by outcome: failed ones may sit behind many delivered ones.
const OUTCOME_FILTER_READ: usize = 2_000;

async fn list_notifications(
    ctx: Ctx,
    p: Principal,
    Params(q): Params<NotificationQuery>,
) -> Result<Response, Problem> {
    let limit = page_limit(q.limit, 50)? as usize;
    if let Some(incident) = &q.incident {
        let valid = (1..=128).contains(&incident.len())
            && incident
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        if !valid {
            return Err(Problem::invalid_field(
                "incident",
                "an incident id: 1 to 128 of A-Z a-z 0-9 . _ : -",
            ));
        }
    }
    let read = if q.outcome.is_some() {
        OUTCOME_FILTER_READ
    } else {
        limit
    };
    let items: Vec<_> = ctx
        .notifications
        .notifications(&p.tenant, q.incident.as_deref(), read)
        .await?
        .into_iter()
        .filter(|r| q.outcome.is_none_or(|o| r.outcome == o))
        .take(limit)
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

/// Every target of a tenant with its state and the maintenance windows, read as the overview
/// reads them; the dashboard's pages start from this too.
pub(crate) struct TenantOverview {
    /// The first [`OVERVIEW_PAGES`] pages of targets.
    pub targets: Vec<Target>,
    pub states: HashMap<TargetId, CheckState>,
    pub windows: Vec<MaintenanceWindow>,
    pub now: DateTime<Utc>,
}

/// Store pages of targets the dashboard reads at most (500 each), so one page stays a few MB.
const OVERVIEW_PAGES: usize = 40;

pub(crate) async fn tenant_overview(
    ctx: &ApiContext,
    tenant: &TenantId,
) -> Result<TenantOverview, StoreError> {
    let mut targets = Vec::new();
    let mut after = None;
    for _ in 0..OVERVIEW_PAGES {
        let page = ctx
            .targets
            .list_targets(tenant, PageRequest { limit: 500, after })
            .await?;
        targets.extend(page.items);
        after = page.next;
        if after.is_none() {
            break;
        }
    }
    let states = ctx
        .states
        .list_states(tenant)
        .await?
        .into_iter()
        .map(|(id, v)| (id, v.value))
        .collect();
    let windows = ctx.maintenance.list_windows(tenant).await?;
    Ok(TenantOverview {
        targets,
        states,
        windows,
        now: ctx.clock.now(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverviewQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    after: Option<String>,
}

/// Targets counted at most by a store that decodes each target to count it (the default
/// `TargetStore::target_flags`); a bigger tenant is told so (`truncated`). The embedded store
/// counts from columns and has no such bound.
const OVERVIEW_TARGETS: usize = 20_000;

/// Counts from each target's flags and state flags: the first [`OVERVIEW_TARGETS`] targets of a
/// store that decodes targets to count them (`truncated` past them), every target otherwise.
async fn count_from_flags(
    ctx: &ApiContext,
    tenant: &TenantId,
    windows: &[MaintenanceWindow],
    any_active: bool,
    now: DateTime<Utc>,
) -> Result<(StatusCounts, usize, bool), StoreError> {
    let (flags, truncated) = ctx
        .targets
        .target_flags(tenant, OVERVIEW_TARGETS, any_active)
        .await?;
    let states: HashMap<TargetId, StateFlags> =
        ctx.states.state_flags(tenant).await?.into_iter().collect();
    let (mut counts, mut maint) = (StatusCounts::default(), 0);
    for f in &flags {
        let state = states.get(&f.id);
        counts.add(
            f.enabled,
            state.map(|s| s.status).unwrap_or_default(),
            state.is_some_and(|s| s.incident_open),
            1,
        );
        maint += usize::from(any_active && in_maintenance_tagged(windows, &f.id, &f.tags, now));
    }
    Ok((counts, maint, truncated))
}

/// How many of the tenant's targets the active windows cover, from a store that counts by
/// columns (so reading every target's flags is cheap).
async fn count_covered(
    ctx: &ApiContext,
    tenant: &TenantId,
    windows: &[MaintenanceWindow],
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let (flags, _) = ctx.targets.target_flags(tenant, usize::MAX, true).await?;
    Ok(flags
        .iter()
        .filter(|f| in_maintenance_tagged(windows, &f.id, &f.tags, now))
        .count())
}

/// Counts over the whole tenant, by the store itself where it can (the embedded store: two
/// ordered scans over narrow indexes) and else from each target's flags; lines for one page of
/// targets, with `next`.
async fn overview(
    ctx: Ctx,
    p: Principal,
    Params(q): Params<OverviewQuery>,
) -> Result<Response, Problem> {
    let limit = page_limit(q.limit, 500)?;
    let now = ctx.clock.now();
    let windows = ctx.maintenance.list_windows(&p.tenant).await?;
    let any_active = windows.iter().any(|w| w.spec.is_active(now));
    let (counts, maint, truncated) = match ctx.targets.status_counts(&p.tenant).await? {
        // The store counts itself, from columns; which targets active windows cover needs each
        // target's id and tags, read from the same columns, all of them.
        Some(counts) => {
            let maint = match any_active {
                true => count_covered(&ctx, &p.tenant, &windows, now).await?,
                false => 0,
            };
            (counts, maint, false)
        }
        None => count_from_flags(&ctx, &p.tenant, &windows, any_active, now).await?,
    };
    let page = ctx
        .targets
        .list_targets(
            &p.tenant,
            PageRequest {
                limit,
                after: q.after,
            },
        )
        .await?;
    let ids: Vec<TargetId> = page.items.iter().map(|t| t.id().clone()).collect();
    let page_states: HashMap<TargetId, CheckState> = ctx
        .states
        .load_states(&p.tenant, &ids)
        .await?
        .into_iter()
        .map(|(id, v)| (id, v.value))
        .collect();
    let lines: Vec<_> = page
        .items
        .iter()
        .map(|t| {
            let state = page_states.get(t.id());
            let mut line = json!({
                "id": t.id(),
                "name": t.spec.name,
                "check": t.spec.check.to_string(),
                "status": state.map(|s| s.status).unwrap_or_default(),
                "enabled": t.spec.enabled,
                "in_maintenance": in_maintenance(&windows, &t.spec, now),
            });
            if let Some(since) = state.and_then(|s| s.status_since) {
                line["since"] = json!(since);
            }
            if let Some(incident) = state.and_then(|s| s.incident.as_ref()) {
                line["incident_id"] = json!(incident.id);
            }
            line
        })
        .collect();
    let mut body = json!({
        "counts": {
            "total": counts.total,
            "up": counts.up,
            "down": counts.down,
            "unknown": counts.unknown,
            "disabled": counts.disabled,
            "in_maintenance": maint,
        },
        "open_incidents": counts.open_incidents,
        "targets": lines,
        "truncated": truncated,
    });
    if let Some(next) = page.next {
        body["next"] = json!(next);
    }
    Ok(axum::Json(body).into_response())
}
