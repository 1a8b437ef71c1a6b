//! `/v1/targets`: CRUD, history, and "check now".

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use netmon_core::events::{Event, TargetChanged, TargetDeleted};
use netmon_core::history::{Granularity, HistoryBucket};
use netmon_core::incident::CheckState;
use netmon_core::jobs::ProbeJob;
use netmon_core::ports::{Expect, PageRequest, StoreError};
use netmon_core::result::ProbeResult;
use netmon_core::rpc::RpcOutcome;
use netmon_core::target::{CheckSpec, Target, TargetSpec};
use netmon_core::{TargetId, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::body::JsonBody;
use super::extract::{Params, PathParam};
use super::problem::Problem;
use super::{if_match, inputs, page_limit, publish_change, redact};
use crate::auth::Principal;
use crate::http::Operation;
use crate::http::{Access, ApiContext, Ctx, Route, Verb, route};
use crate::rpc::CheckReply;
use netmon_core::ports::RpcError;

pub(super) fn routes() -> Vec<Route> {
    let id = |op: Operation| op.path_param("id", "target id");
    vec![
        route(
            Verb::Get,
            "/v1/targets",
            Access::Key,
            Operation::new("listTargets", "List targets (paged by id)", "targets")
                .query("limit", json!({"type": "integer", "minimum": 1, "maximum": 500}), "page size, default 100")
                .query("after", json!({"type": "string"}), "the `next` of the previous page")
                .query("tag", json!({"type": "string"}), "only targets with every one of these comma-separated tags")
                .ok(200, "One page of targets", "TargetPage"),
            list_targets,
        ),
        route(
            Verb::Post,
            "/v1/targets",
            Access::Key,
            Operation::new("createTarget", "Create a target", "targets")
                .body("TargetSpec")
                .ok(201, "Created", "Target")
                .error(409, "A target with this id exists"),
            create_target,
        ),
        route(
            Verb::Get,
            "/v1/targets/{id}",
            Access::Key,
            id(Operation::new("getTarget", "A target and its check state", "targets"))
                .ok(200, "The target", "TargetView")
                .error(404, "No such target"),
            get_target,
        ),
        route(
            Verb::Put,
            "/v1/targets/{id}",
            Access::Key,
            id(Operation::new("putTarget", "Create or replace a target", "targets"))
                .header("If-Match", json!({"type": "string"}), "the version being replaced")
                .body("TargetSpec")
                .ok(200, "Replaced (or unchanged)", "Target")
                .ok(201, "Created", "Target")
                .error(409, "Version conflict")
                .error(412, "If-Match given but the target does not exist"),
            put_target,
        ),
        route(
            Verb::Delete,
            "/v1/targets/{id}",
            Access::Key,
            id(Operation::new("deleteTarget", "Delete a target", "targets"))
                .empty(204, "Deleted")
                .error(404, "No such target"),
            delete_target,
        ),
        route(
            Verb::Get,
            "/v1/targets/{id}/history",
            Access::Key,
            id(Operation::new("targetHistory", "Uptime and latency percentiles", "targets"))
                .describe("Uptime over the last 24 hours, 7 days and 30 days (whole UTC hours and days, the current one included) and latency p50/p95 of successful probes per hour and per day.")
                .ok(200, "History", "History")
                .error(404, "No such target"),
            history,
        ),
        route(
            Verb::Post,
            "/v1/targets/{id}/check",
            Access::Key,
            id(Operation::new("checkTarget", "Probe a target now", "targets"))
                .describe("Sends a probe job over the event bus and waits for its result (the target's timeout plus 5 s, capped by the server). The result is also applied to the target's state like any other probe.")
                .ok(200, "The probe result", "CheckNow")
                .error(404, "No such target")
                .error(409, "Heartbeat targets are checked by their pings")
                .error(429, "Too many checks of this tenant are waiting")
                .error(502, "The prober could not run the job")
                .error(504, "No result within the wait; the job is cancelled in netmon up, may still run in the cloud"),
            check_now,
        ),
    ]
}

pub(crate) fn parse_target_id(raw: &str) -> Result<TargetId, Problem> {
    TargetId::parse(raw).map_err(|_| Problem::not_found(format!("no target {raw:?}")))
}

fn no_target(id: &TargetId) -> Problem {
    Problem::not_found(format!("no target {:?}", id.as_str()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Serialize)]
struct TargetPage {
    items: Vec<Target>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// Store pages read per request while filtering by tag, so one request stays bounded.
const MAX_SCAN_PAGES: usize = 20;

async fn list_targets(
    ctx: Ctx,
    p: Principal,
    Params(q): Params<ListQuery>,
) -> Result<axum::Json<TargetPage>, Problem> {
    let limit = page_limit(q.limit, 100)?;
    let tags: Vec<&str> = q
        .tag
        .as_deref()
        .map(|t| {
            t.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let mut items = Vec::new();
    let mut cursor = q.after;
    for _ in 0..MAX_SCAN_PAGES {
        let page = ctx
            .targets
            .list_targets(
                &p.tenant,
                PageRequest {
                    limit,
                    after: cursor.clone(),
                },
            )
            .await?;
        let mut stopped_at = None;
        for t in page.items {
            let id = t.id().to_string();
            if tags.iter().all(|tag| t.spec.tags.iter().any(|x| x == tag)) {
                items.push(t);
            }
            if items.len() == limit as usize {
                stopped_at = Some(id);
                break;
            }
        }
        cursor = match stopped_at {
            // Full: more may follow only if the store had more.
            Some(id) => {
                return Ok(axum::Json(TargetPage {
                    items: shown(&p, items),
                    next: Some(id),
                }));
            }
            None => page.next,
        };
        if cursor.is_none() {
            break;
        }
    }
    Ok(axum::Json(TargetPage {
        items: shown(&p, items),
        next: cursor,
    }))
}

fn shown(p: &Principal, items: Vec<Target>) -> Vec<Target> {
    items.into_iter().map(|t| redact::target(p, t)).collect()
}

/// Channels a target names must exist in its tenant.
async fn check_channels(
    ctx: &ApiContext,
    tenant: &TenantId,
    spec: &TargetSpec,
) -> Result<(), Problem> {
    if spec.channels.is_empty() {
        return Ok(());
    }
    let known = ctx.channels.list_channels(tenant).await?;
    if let Some((i, missing)) = spec
        .channels
        .iter()
        .enumerate()
        .find(|(_, c)| !known.iter().any(|k| &k.spec.id == *c))
    {
        return Err(Problem::invalid_field(
            format!("channels[{i}]"),
            format!("no channel {:?}", missing.as_str()),
        ));
    }
    Ok(())
}

/// A token must name one target only (the cloud store refuses clashes as a conflict too).
async fn check_token_unused(
    ctx: &ApiContext,
    tenant: &TenantId,
    spec: &TargetSpec,
) -> Result<(), Problem> {
    if let CheckSpec::Heartbeat(hb) = &spec.check
        && let Some(token) = &hb.token
        && let Some(other) = ctx.targets.find_by_heartbeat_token(token).await?
        && (other.tenant != *tenant || other.id() != &spec.id)
    {
        return Err(Problem::conflict(
            "this heartbeat token is already used by another target; choose another or leave it out to have one generated",
        ));
    }
    Ok(())
}

fn store_conflict(e: StoreError, on_conflict: &str) -> Problem {
    match e {
        StoreError::Conflict(_) => Problem::conflict(on_conflict.to_owned()),
        other => other.into(),
    }
}

async fn create_target(
    ctx: Ctx,
    p: Principal,
    JsonBody(mut spec): JsonBody<TargetSpec>,
) -> Result<Response, Problem> {
    inputs::target(&spec)?;
    check_channels(&ctx, &p.tenant, &spec).await?;
    spec.ensure_heartbeat_token(None);
    check_token_unused(&ctx, &p.tenant, &spec).await?;
    let now = ctx.clock.now();
    let target = Target {
        tenant: p.tenant.clone(),
        spec,
        version: 0,
        created_at: now,
        updated_at: now,
    };
    let stored = ctx
        .targets
        .put_target(target, Expect::Absent)
        .await
        .map_err(|e| {
            store_conflict(
                e,
                "a target with this id already exists; use PUT to change it",
            )
        })?;
    publish_change(
        &ctx,
        &p.tenant,
        Event::TargetCreated(TargetChanged::new(&stored)),
    )
    .await;
    let location = format!("/v1/targets/{}", stored.id());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(stored),
    )
        .into_response())
}

#[derive(Serialize)]
struct TargetView {
    #[serde(flatten)]
    target: Target,
    state: Option<CheckState>,
}

async fn get_target(ctx: Ctx, p: Principal, PathParam(id): PathParam) -> Result<Response, Problem> {
    let id = parse_target_id(&id)?;
    let Some(target) = ctx.targets.get_target(&p.tenant, &id).await? else {
        return Err(no_target(&id));
    };
    let state = ctx
        .states
        .load_state(&p.tenant, &id)
        .await?
        .map(|v| v.value);
    Ok(axum::Json(TargetView {
        target: redact::target(&p, target),
        state,
    })
    .into_response())
}

async fn put_target(
    ctx: Ctx,
    p: Principal,
    PathParam(id): PathParam,
    headers: HeaderMap,
    JsonBody(mut spec): JsonBody<TargetSpec>,
) -> Result<Response, Problem> {
    let id = parse_target_id(&id)?;
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
    inputs::target(&spec)?;
    check_channels(&ctx, &p.tenant, &spec).await?;
    let existing = ctx.targets.get_target(&p.tenant, &id).await?;
    spec.ensure_heartbeat_token(existing.as_ref().map(|t| &t.spec));
    check_token_unused(&ctx, &p.tenant, &spec).await?;
    let now = ctx.clock.now();
    let (expect, created_at) = match &existing {
        Some(t) => (Expect::Version(if_match.unwrap_or(t.version)), t.created_at),
        None if if_match.is_some() => {
            return Err(Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "If-Match given but the target does not exist",
            ));
        }
        None => (Expect::Absent, now),
    };
    if let Some(t) = &existing
        && t.spec == spec
        && if_match.is_none_or(|v| v == t.version)
    {
        return Ok(axum::Json(t.clone()).into_response());
    }
    let stored = ctx
        .targets
        .put_target(
            Target {
                tenant: p.tenant.clone(),
                spec,
                version: 0,
                created_at,
                updated_at: now,
            },
            expect,
        )
        .await
        .map_err(|e| {
            store_conflict(
                e,
                "the target was changed by someone else (or If-Match is not its version); fetch it again and retry",
            )
        })?;
    let change = TargetChanged::new(&stored);
    let is_new = existing.is_none();
    publish_change(
        &ctx,
        &p.tenant,
        if is_new {
            Event::TargetCreated(change)
        } else {
            Event::TargetUpdated(change)
        },
    )
    .await;
    let status = if is_new {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(stored)).into_response())
}

/// Pauses or resumes a target (its `enabled`), as a PUT of the changed spec would: one
/// conditional write on the version read, and a `target.updated` event. The dashboard's.
pub(crate) async fn set_enabled(
    ctx: &ApiContext,
    p: &Principal,
    id: &TargetId,
    enabled: bool,
) -> Result<Target, Problem> {
    if !p.role.can_write() {
        return Err(Problem::forbidden("a read-only key can only read"));
    }
    let Some(target) = ctx.targets.get_target(&p.tenant, id).await? else {
        return Err(no_target(id));
    };
    if target.spec.enabled == enabled {
        return Ok(target);
    }
    let version = target.version;
    let mut changed = target;
    changed.spec.enabled = enabled;
    changed.updated_at = ctx.clock.now();
    let stored = ctx
        .targets
        .put_target(changed, Expect::Version(version))
        .await
        .map_err(|e| store_conflict(e, "the target was changed meanwhile; try again"))?;
    publish_change(
        ctx,
        &p.tenant,
        Event::TargetUpdated(TargetChanged::new(&stored)),
    )
    .await;
    Ok(stored)
}

async fn delete_target(
    ctx: Ctx,
    p: Principal,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let id = parse_target_id(&id)?;
    if !ctx.targets.delete_target(&p.tenant, &id).await? {
        return Err(no_target(&id));
    }
    publish_change(
        &ctx,
        &p.tenant,
        Event::TargetDeleted(TargetDeleted { target_id: id }),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Uptime {
    pub probes: u64,
    pub up: u64,
    pub percent: Option<f64>,
}

impl Uptime {
    fn of<'a>(buckets: impl IntoIterator<Item = &'a HistoryBucket>) -> Self {
        let (probes, up) = buckets.into_iter().fold((0u64, 0u64), |(p, u), b| {
            (p + u64::from(b.probes), u + u64::from(b.up))
        });
        Self {
            probes,
            up,
            percent: (probes > 0).then(|| round2(up as f64 * 100.0 / probes as f64)),
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[derive(Serialize)]
struct BucketStats {
    start: DateTime<Utc>,
    probes: u32,
    up: u32,
    uptime_percent: Option<f64>,
    p50_ms: Option<f64>,
    p95_ms: Option<f64>,
}

impl From<&HistoryBucket> for BucketStats {
    fn from(b: &HistoryBucket) -> Self {
        Self {
            start: b.start,
            probes: b.probes,
            up: b.up,
            uptime_percent: b.uptime().map(|u| round2(u * 100.0)),
            p50_ms: b.p50_ms().map(round2),
            p95_ms: b.p95_ms().map(round2),
        }
    }
}

async fn history(ctx: Ctx, p: Principal, PathParam(id): PathParam) -> Result<Response, Problem> {
    let id = parse_target_id(&id)?;
    if ctx.targets.get_target(&p.tenant, &id).await?.is_none() {
        return Err(no_target(&id));
    }
    let now = ctx.clock.now();
    let hour_end = Granularity::Hour.floor(now) + chrono::Duration::hours(1);
    let day_end = Granularity::Day.floor(now) + chrono::Duration::days(1);
    let hourly = ctx
        .history
        .buckets(
            &p.tenant,
            &id,
            hour_end - chrono::Duration::hours(24),
            hour_end,
            Granularity::Hour,
        )
        .await?;
    let daily = ctx
        .history
        .buckets(
            &p.tenant,
            &id,
            day_end - chrono::Duration::days(30),
            day_end,
            Granularity::Day,
        )
        .await?;
    let week_start = day_end - chrono::Duration::days(7);
    Ok(axum::Json(json!({
        "target": id,
        "uptime": {
            "24h": Uptime::of(&hourly),
            "7d": Uptime::of(daily.iter().filter(|b| b.start >= week_start)),
            "30d": Uptime::of(&daily),
        },
        "hourly": hourly.iter().map(BucketStats::from).collect::<Vec<_>>(),
        "daily": daily.iter().map(BucketStats::from).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// Margin on top of the target's own timeout for scheduling, publishing and the reply.
const CHECK_MARGIN: Duration = Duration::from_secs(5);

async fn check_now(ctx: Ctx, p: Principal, PathParam(id): PathParam) -> Result<Response, Problem> {
    let id = parse_target_id(&id)?;
    let (correlation_id, result) = check_target(&ctx, &p.tenant, &id).await?;
    Ok(axum::Json(json!({ "correlation_id": correlation_id, "result": result })).into_response())
}

/// "Check now" of one target of `tenant`: its correlation id and result. Also the dashboard's.
pub(crate) async fn check_target(
    ctx: &ApiContext,
    tenant: &TenantId,
    id: &TargetId,
) -> Result<(String, ProbeResult), Problem> {
    let Some(target) = ctx.targets.get_target(tenant, id).await? else {
        return Err(no_target(id));
    };
    if matches!(target.spec.check, CheckSpec::Heartbeat(_)) {
        return Err(Problem::conflict(
            "heartbeat targets are checked by their pings, not probed; ping /ping/{token} instead",
        ));
    }
    // Held until the reply (or the client going away drops this handler).
    let _slot = ctx.checks.take(tenant).ok_or_else(|| {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "at most {} checks of a tenant may wait at once; retry when one has answered",
                ctx.checks.max()
            ),
        )
    })?;
    let wait = (target.spec.timeout.as_duration() + CHECK_MARGIN).min(ctx.check_timeout);
    let job = ProbeJob {
        job_id: uuid::Uuid::now_v7().to_string(),
        tenant: tenant.clone(),
        scheduled_for: ctx.clock.now(),
        targets: vec![target.spec.clone()],
        correlation_id: None,
        group_level: None,
        group_size: None,
    };
    let reply = ctx.rpc.call(job, wait).await.map_err(|e| match e {
        RpcError::Timeout(_) => Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "no probe result within {}: {e}. In netmon up the job is cancelled; in the cloud it may still run and update the target's state.",
                netmon_core::duration::format_duration(wait)
            ),
        ),
        RpcError::Send(why) => {
            tracing::warn!(%why, "check-now job not sent");
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the probe job could not be queued; retry shortly")
        }
        RpcError::Store(e) => e.into(),
    })?;
    let body = match reply.outcome {
        RpcOutcome::Success { body } => body,
        RpcOutcome::Failure { message } => {
            return Err(Problem::new(
                StatusCode::BAD_GATEWAY,
                format!("the probe could not run: {message}"),
            ));
        }
    };
    let result = serde_json::from_value::<CheckReply>(body)
        .ok()
        .and_then(|r| r.results.into_iter().find(|r| &r.target == id))
        .ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_GATEWAY,
                "the prober answered without a result for this target",
            )
        })?;
    Ok((reply.correlation_id, result))
}
