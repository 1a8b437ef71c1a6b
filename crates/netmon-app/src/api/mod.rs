//! The HTTP API. One router, served by `netmon up` and by the `api` Lambda.

pub mod body;
pub mod problem;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use netmon_core::events::{Envelope, Event, ProbeBatch, TargetChanged, TargetDeleted};
use netmon_core::ports::{
    Clock, EventBus, Expect, HeartbeatStore, HistoryStore, PageRequest, PingKind, PingRecord,
    StateStore, TargetStore,
};
use netmon_core::result::{ErrorKind, Outcome, PhaseTimings, ProbeError, ProbeResult};
use netmon_core::target::{CheckSpec, Target, TargetSpec};
use netmon_core::{TargetId, TenantId};
use serde::{Deserialize, Serialize};
use tracing::warn;

use self::body::{JsonBody, MAX_BODY};
use self::problem::Problem;
use crate::services::scheduler::PUSH_LOCATION;

pub struct ApiContext {
    pub targets: Arc<dyn TargetStore>,
    pub states: Arc<dyn StateStore>,
    pub heartbeats: Arc<dyn HeartbeatStore>,
    pub bus: Arc<dyn EventBus>,
    pub clock: Arc<dyn Clock>,
    /// Single-tenant mode (embedded): every request acts for this tenant.
    pub tenant: TenantId,
    /// Uptime and latency for the status page and badges.
    pub history: Arc<dyn HistoryStore>,
}

type Ctx = State<Arc<ApiContext>>;

pub fn router(ctx: Arc<ApiContext>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/targets", get(list_targets).post(create_target))
        .route(
            "/v1/targets/{id}",
            get(get_target).put(put_target).delete(delete_target),
        )
        .route("/v1/incidents", get(list_incidents))
        .route(
            "/ping/{token}",
            get(ping_success).post(ping_success).head(ping_success),
        )
        .route(
            "/ping/{token}/start",
            get(ping_start).post(ping_start).head(ping_start),
        )
        .route(
            "/ping/{token}/fail",
            get(ping_fail).post(ping_fail).head(ping_fail),
        )
        .merge(crate::status::routes())
        .fallback(|| async { Problem::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(ctx)
}

fn parse_target_id(raw: &str) -> Result<TargetId, Problem> {
    TargetId::parse(raw).map_err(|_| Problem::not_found(format!("no target {raw:?}")))
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

async fn list_targets(
    State(ctx): Ctx,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<TargetPage>, Problem> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field("limit", "use 1 to 500"));
    }
    let page = ctx
        .targets
        .list_targets(
            &ctx.tenant,
            PageRequest {
                limit,
                after: q.after,
            },
        )
        .await?;
    let items = match &q.tag {
        Some(tag) => page
            .items
            .into_iter()
            .filter(|t| t.spec.tags.iter().any(|x| x == tag))
            .collect(),
        None => page.items,
    };
    Ok(axum::Json(TargetPage {
        items,
        next: page.next,
    }))
}

/// Heartbeat targets without a token get a random one; it is the secret in `/ping/{token}`.
fn ensure_token(spec: &mut TargetSpec, previous: Option<&Target>) {
    if let CheckSpec::Heartbeat(hb) = &mut spec.check
        && hb.token.is_none()
    {
        let kept = previous.and_then(|p| match &p.spec.check {
            CheckSpec::Heartbeat(old) => old.token.clone(),
            _ => None,
        });
        hb.token = Some(kept.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()));
    }
}

async fn publish_change(ctx: &ApiContext, event: Event) {
    let env = Envelope::new(event, ctx.tenant.clone(), "api", ctx.clock.now());
    // The write already succeeded; schedulers also reload periodically, so a lost change event
    // delays a schedule update but loses nothing.
    if let Err(e) = ctx.bus.publish(vec![env]).await {
        warn!(error = %e, "target change event not published");
    }
}

async fn create_target(
    State(ctx): Ctx,
    JsonBody(mut spec): JsonBody<TargetSpec>,
) -> Result<Response, Problem> {
    ensure_token(&mut spec, None);
    let now = ctx.clock.now();
    let target = Target {
        tenant: ctx.tenant.clone(),
        spec,
        version: 0,
        created_at: now,
        updated_at: now,
    };
    let stored = ctx
        .targets
        .put_target(target, Expect::Absent)
        .await
        .map_err(|e| match e {
            netmon_core::ports::StoreError::Conflict(_) => {
                Problem::conflict("a target with this id already exists; use PUT to change it")
            }
            other => other.into(),
        })?;
    publish_change(&ctx, Event::TargetCreated(TargetChanged::new(&stored))).await;
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
    state: Option<netmon_core::incident::CheckState>,
}

async fn get_target(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = parse_target_id(&id)?;
    let Some(target) = ctx.targets.get_target(&ctx.tenant, &id).await? else {
        return Err(Problem::not_found(format!("no target {:?}", id.as_str())));
    };
    let state = ctx
        .states
        .load_state(&ctx.tenant, &id)
        .await?
        .map(|v| v.value);
    Ok(axum::Json(TargetView { target, state }).into_response())
}

async fn put_target(
    State(ctx): Ctx,
    Path(id): Path<String>,
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
    let if_match = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(|s| s.trim_matches('"'))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    Problem::invalid_field("If-Match", "must be the target's version number")
                })?,
        ),
    };
    let existing = ctx.targets.get_target(&ctx.tenant, &id).await?;
    ensure_token(&mut spec, existing.as_ref());
    let now = ctx.clock.now();
    let (expect, created_at, is_new) = match &existing {
        Some(t) => (
            Expect::Version(if_match.unwrap_or(t.version)),
            t.created_at,
            false,
        ),
        None if if_match.is_some() => {
            return Err(Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "If-Match given but the target does not exist",
            ));
        }
        None => (Expect::Absent, now, true),
    };
    if let Some(t) = &existing
        && t.spec == spec
    {
        return Ok(axum::Json(t.clone()).into_response());
    }
    let stored = ctx
        .targets
        .put_target(
            Target {
                tenant: ctx.tenant.clone(),
                spec,
                version: 0,
                created_at,
                updated_at: now,
            },
            expect,
        )
        .await?;
    let change = TargetChanged::new(&stored);
    publish_change(
        &ctx,
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

async fn delete_target(State(ctx): Ctx, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = parse_target_id(&id)?;
    if !ctx.targets.delete_target(&ctx.tenant, &id).await? {
        return Err(Problem::not_found(format!("no target {:?}", id.as_str())));
    }
    publish_change(&ctx, Event::TargetDeleted(TargetDeleted { target_id: id })).await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentQuery {
    #[serde(default)]
    limit: Option<u32>,
}

async fn list_incidents(
    State(ctx): Ctx,
    Query(q): Query<IncidentQuery>,
) -> Result<Response, Problem> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(Problem::invalid_field("limit", "use 1 to 500"));
    }
    let items = ctx.states.list_incidents(&ctx.tenant, limit).await?;
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

async fn ping_success(ctx: Ctx, token: Path<String>) -> Result<Response, Problem> {
    ping(ctx, token, PingKind::Success).await
}
async fn ping_start(ctx: Ctx, token: Path<String>) -> Result<Response, Problem> {
    ping(ctx, token, PingKind::Start).await
}
async fn ping_fail(ctx: Ctx, token: Path<String>) -> Result<Response, Problem> {
    ping(ctx, token, PingKind::Fail).await
}

async fn ping(
    State(ctx): Ctx,
    Path(token): Path<String>,
    kind: PingKind,
) -> Result<Response, Problem> {
    let target = ctx
        .targets
        .find_by_heartbeat_token(&token)
        .await?
        .filter(|t| t.spec.enabled)
        .ok_or_else(|| Problem::not_found("unknown ping token"))?;
    let now = ctx.clock.now();
    ctx.heartbeats
        .record_ping(&PingRecord {
            tenant: target.tenant.clone(),
            target: target.id().clone(),
            at: now,
            kind,
        })
        .await?;
    let outcome = match kind {
        PingKind::Start => return Ok((StatusCode::OK, "OK\n").into_response()),
        PingKind::Success => Outcome::Up,
        PingKind::Fail => Outcome::Down,
    };
    let result = ProbeResult {
        tenant: target.tenant.clone(),
        target: target.id().clone(),
        location: PUSH_LOCATION.to_owned(),
        started_at: now,
        duration_ms: 0.0,
        timings: PhaseTimings::default(),
        outcome,
        status_code: None,
        ip: None,
        certificate_expires_at: None,
        conditions: Vec::new(),
        error: (kind == PingKind::Fail)
            .then(|| ProbeError::new(ErrorKind::Reported, "the job reported failure")),
    };
    let env = Envelope::new(
        Event::ProbeCompleted(ProbeBatch {
            job_id: format!("ping:{}", uuid::Uuid::now_v7()),
            location: PUSH_LOCATION.to_owned(),
            results: vec![result],
        }),
        target.tenant.clone(),
        "api",
        now,
    );
    ctx.bus.publish(vec![env]).await.map_err(|e| {
        warn!(error = %e, "ping result not published");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ping recorded but not yet processed; retry",
        )
    })?;
    Ok((StatusCode::OK, "OK\n").into_response())
}
