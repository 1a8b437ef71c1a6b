//! `/v1/channels`: CRUD and a test send. Answers never carry a credential: each one is
//! replaced by a marker with a fingerprint ([`channel_view`]).

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use netmon_core::channel::{Channel, ChannelSpec};
use netmon_core::events::{ChannelTest, Envelope, Event};
use netmon_core::ports::{Expect, PageRequest, StoreError};
use netmon_core::{ChannelId, TenantId};
use serde_json::json;

use super::body::JsonBody;
use super::extract::PathParam;
use super::problem::Problem;
use super::{if_match, inputs, redact};
use crate::auth::Principal;
use crate::channels::channel_view;
use crate::http::Operation;
use crate::http::{Access, ApiContext, Ctx, Route, Verb, route};

pub(super) fn routes() -> Vec<Route> {
    let id = |op: Operation| op.path_param("id", "channel id");
    vec![
        route(
            Verb::Get,
            "/v1/channels",
            Access::Key,
            Operation::new("listChannels", "List channels", "channels")
                .ok(200, "Every channel of the tenant", "ChannelList"),
            list_channels,
        ),
        route(
            Verb::Post,
            "/v1/channels",
            Access::Key,
            Operation::new("createChannel", "Create a channel", "channels")
                .body("ChannelSpec")
                .ok(201, "Created", "Channel")
                .error(409, "A channel with this id exists"),
            create_channel,
        ),
        route(
            Verb::Get,
            "/v1/channels/{id}",
            Access::Key,
            id(Operation::new("getChannel", "A channel", "channels"))
                .ok(200, "The channel", "Channel")
                .error(404, "No such channel"),
            get_channel,
        ),
        route(
            Verb::Put,
            "/v1/channels/{id}",
            Access::Key,
            id(Operation::new("putChannel", "Create or replace a channel", "channels"))
                .header("If-Match", json!({"type": "string"}), "the version being replaced")
                .body("ChannelSpec")
                .ok(200, "Replaced (or unchanged)", "Channel")
                .ok(201, "Created", "Channel")
                .error(409, "Version conflict")
                .error(412, "If-Match given but the channel does not exist"),
            put_channel,
        ),
        route(
            Verb::Delete,
            "/v1/channels/{id}",
            Access::Key,
            id(Operation::new("deleteChannel", "Delete a channel", "channels"))
                .empty(204, "Deleted")
                .error(404, "No such channel")
                .error(409, "Targets still name the channel"),
            delete_channel,
        ),
        route(
            Verb::Post,
            "/v1/channels/{id}/test",
            Access::Key,
            id(Operation::new("testChannel", "Send a test notification", "channels"))
                .describe("Delivers a `channel.test` event to the channel now and reports whether it was accepted. A channel that refuses it is reported in the body, not as an error of this request.")
                .ok(200, "What the channel did", "ChannelTest")
                .error(404, "No such channel"),
            test_channel,
        ),
    ]
}

fn parse_channel_id(raw: &str) -> Result<ChannelId, Problem> {
    ChannelId::parse(raw).map_err(|_| Problem::not_found(format!("no channel {raw:?}")))
}

async fn find(
    ctx: &ApiContext,
    tenant: &TenantId,
    id: &ChannelId,
) -> Result<Option<Channel>, Problem> {
    Ok(ctx
        .channels
        .list_channels(tenant)
        .await?
        .into_iter()
        .find(|c| &c.spec.id == id))
}

fn no_channel(id: &ChannelId) -> Problem {
    Problem::not_found(format!("no channel {:?}", id.as_str()))
}

async fn list_channels(ctx: Ctx, p: Principal) -> Result<Response, Problem> {
    let items: Vec<_> = ctx
        .channels
        .list_channels(&p.tenant)
        .await?
        .iter()
        .map(channel_view)
        .collect();
    Ok(axum::Json(redact::channels(&p, json!({ "items": items }))).into_response())
}

async fn create_channel(
    ctx: Ctx,
    p: Principal,
    JsonBody(spec): JsonBody<ChannelSpec>,
) -> Result<Response, Problem> {
    inputs::name("name", &spec.name)?;
    let now = ctx.clock.now();
    let id = spec.id.clone();
    let stored = ctx
        .channels
        .put_channel(
            Channel {
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
            StoreError::Conflict(_) => {
                Problem::conflict("a channel with this id already exists; use PUT to change it")
            }
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/v1/channels/{id}"))],
        axum::Json(channel_view(&stored)),
    )
        .into_response())
}

async fn get_channel(
    ctx: Ctx,
    p: Principal,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let id = parse_channel_id(&id)?;
    let channel = find(&ctx, &p.tenant, &id)
        .await?
        .ok_or_else(|| no_channel(&id))?;
    Ok(axum::Json(redact::channels(&p, channel_view(&channel))).into_response())
}

async fn put_channel(
    ctx: Ctx,
    p: Principal,
    PathParam(id): PathParam,
    headers: HeaderMap,
    JsonBody(spec): JsonBody<ChannelSpec>,
) -> Result<Response, Problem> {
    inputs::name("name", &spec.name)?;
    let id = parse_channel_id(&id)?;
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
    let existing = find(&ctx, &p.tenant, &id).await?;
    let now = ctx.clock.now();
    let (expect, created_at) = match &existing {
        Some(c) if c.spec == spec && if_match.is_none_or(|v| v == c.version) => {
            return Ok(axum::Json(channel_view(c)).into_response());
        }
        Some(c) => (Expect::Version(if_match.unwrap_or(c.version)), c.created_at),
        None if if_match.is_some() => {
            return Err(Problem::new(
                StatusCode::PRECONDITION_FAILED,
                "If-Match given but the channel does not exist",
            ));
        }
        None => (Expect::Absent, now),
    };
    let stored = ctx
        .channels
        .put_channel(
            Channel {
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
                "the channel was changed by someone else (or If-Match is not its version); fetch it again and retry",
            ),
            other => other.into(),
        })?;
    let status = if existing.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(channel_view(&stored))).into_response())
}

/// Targets of the tenant that name `id`, by id (at most a few, for the message).
async fn users_of(
    ctx: &ApiContext,
    tenant: &TenantId,
    id: &ChannelId,
) -> Result<Vec<String>, Problem> {
    let mut users = Vec::new();
    let mut after = None;
    loop {
        let page = ctx
            .targets
            .list_targets(tenant, PageRequest { limit: 500, after })
            .await?;
        users.extend(
            page.items
                .iter()
                .filter(|t| t.spec.channels.contains(id))
                .map(|t| t.id().to_string()),
        );
        after = page.next;
        if after.is_none() {
            return Ok(users);
        }
    }
}

async fn delete_channel(
    ctx: Ctx,
    p: Principal,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let id = parse_channel_id(&id)?;
    let users = users_of(&ctx, &p.tenant, &id).await?;
    if !users.is_empty() {
        return Err(Problem::conflict(format!(
            "targets still name this channel: {}; change them first",
            users.join(", ")
        )));
    }
    if !ctx.channels.delete_channel(&p.tenant, id.as_str()).await? {
        return Err(no_channel(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn test_channel(
    ctx: Ctx,
    p: Principal,
    PathParam(id): PathParam,
) -> Result<Response, Problem> {
    let id = parse_channel_id(&id)?;
    Ok(match send_test(&ctx, &p.tenant, &id).await? {
        Ok(()) => axum::Json(json!({ "delivered": true })),
        Err(error) => axum::Json(json!({ "delivered": false, "error": error })),
    }
    .into_response())
}

/// Sends a test notification to one channel of `tenant`: whether it was delivered, or why not.
/// Also the dashboard's "send test".
pub(crate) async fn send_test(
    ctx: &ApiContext,
    tenant: &TenantId,
    id: &ChannelId,
) -> Result<Result<(), String>, Problem> {
    let channel = find(ctx, tenant, id).await?.ok_or_else(|| no_channel(id))?;
    let env = Envelope::new(
        Event::ChannelTest(ChannelTest {
            channel_id: id.clone(),
            message: format!(
                "Test notification from netmon for channel {:?}",
                id.as_str()
            ),
        }),
        tenant.clone(),
        "api",
        ctx.clock.now(),
    );
    Ok(ctx
        .delivery
        .deliver(&channel.spec, &env)
        .await
        .map_err(|e| e.to_string()))
}
