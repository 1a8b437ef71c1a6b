//! `/ping/{token}` (Healthchecks-style heartbeats): GET, POST or HEAD; `/start` and `/fail`.
//! Public: the token is the secret.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use netmon_core::events::{Envelope, Event, ProbeBatch};
use netmon_core::ports::{PingKind, PingRecord};
use tracing::warn;

use super::extract::PathParam;
use super::problem::Problem;
use crate::http::Operation;
use crate::http::{Access, Ctx, Route, Verb, route};
use crate::services::scheduler::{PUSH_LOCATION, ping_result};

pub(super) fn routes() -> Vec<Route> {
    let mut out = Vec::new();
    let kinds: [(&'static str, &'static str, &'static str, PingKind); 3] = [
        (
            "/ping/{token}",
            "ping",
            "The job succeeded",
            PingKind::Success,
        ),
        (
            "/ping/{token}/start",
            "pingStart",
            "The job started (does not count as success)",
            PingKind::Start,
        ),
        (
            "/ping/{token}/fail",
            "pingFail",
            "The job failed: the target goes down at once",
            PingKind::Fail,
        ),
    ];
    for (path, id, summary, kind) in kinds {
        for verb in [Verb::Get, Verb::Post, Verb::Head] {
            let op_id = match (id, verb) {
                ("ping", Verb::Get) => "pingGet",
                ("ping", Verb::Post) => "pingPost",
                ("ping", _) => "pingHead",
                ("pingStart", Verb::Get) => "pingStartGet",
                ("pingStart", Verb::Post) => "pingStartPost",
                ("pingStart", _) => "pingStartHead",
                (_, Verb::Get) => "pingFailGet",
                (_, Verb::Post) => "pingFailPost",
                _ => "pingFailHead",
            };
            let doc = Operation::new(op_id, summary, "heartbeats")
                .path_param("token", "the heartbeat target's secret token")
                .ok_text("Recorded")
                .error(404, "Unknown token (or the target is disabled)")
                .error(503, "Recorded but not yet processed; retry");
            out.push(match kind {
                PingKind::Success => route(verb, path, Access::Public, doc, ping_success),
                PingKind::Start => route(verb, path, Access::Public, doc, ping_start),
                PingKind::Fail => route(verb, path, Access::Public, doc, ping_fail),
            });
        }
    }
    out
}

async fn ping_success(ctx: Ctx, token: PathParam) -> Result<Response, Problem> {
    ping(ctx, token, PingKind::Success).await
}
async fn ping_start(ctx: Ctx, token: PathParam) -> Result<Response, Problem> {
    ping(ctx, token, PingKind::Start).await
}
async fn ping_fail(ctx: Ctx, token: PathParam) -> Result<Response, Problem> {
    ping(ctx, token, PingKind::Fail).await
}

async fn ping(ctx: Ctx, PathParam(token): PathParam, kind: PingKind) -> Result<Response, Problem> {
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
    // A lost publish is not a lost ping: the next scheduler tick republishes recent pings.
    let Some(result) = ping_result(&target.tenant, target.id(), now, kind) else {
        return Ok((StatusCode::OK, "OK\n").into_response());
    };
    let env = Envelope::new(
        Event::ProbeCompleted(ProbeBatch {
            job_id: format!("ping:{}", uuid::Uuid::now_v7()),
            location: PUSH_LOCATION.to_owned(),
            results: vec![result],
            group_level: None,
            group_size: None,
            targets: Vec::new(),
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
