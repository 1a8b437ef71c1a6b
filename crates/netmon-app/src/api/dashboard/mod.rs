//! The operator's dashboard at `/`: server-rendered pages over the same reads and actions as the
//! JSON API (`api::tenant_overview`, `api::check_target`, `api::set_enabled`,
//! `api::send_test`, the stores' ports), behind a sign-in with an API key.
//!
//! - Sign-in turns a key into a signed session cookie (`http::session`: why signed rather than
//!   stored). The cookie is `HttpOnly`, `SameSite=Strict`, `Secure` when the request came over
//!   https (`X-Forwarded-Proto`, or a `public_url` starting with `https`), and holds neither the
//!   key nor its hash. A page without a valid session redirects to the sign-in page.
//! - Every POST checks the session's CSRF token and, when the browser says where the form came
//!   from (`Origin`, `Sec-Fetch-Site`, `Referer`), that it came from this site.
//! - Pages load one stylesheet and one small script from this server; the Content-Security-Policy
//!   allows nothing else (no inline script, no inline style, nothing external).
//! - Live updates: `live` is a Server-Sent Events stream where the host feeds one
//!   (`ApiContext::live`, `netmon up`); everywhere the script reads `live.json`, which answers
//!   `304` while nothing changed (`ETag`), after each event or every 15 s where there is no
//!   stream.
//!
//! Links are relative (`{root}targets/x`), so the pages also work under a path prefix such as an
//! API Gateway stage.

mod pages;

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use netmon_core::apikey::ApiKey;
use netmon_core::ports::StoreError;
use netmon_core::{ChannelId, TargetId};
use sha2::{Digest, Sha256};
use tracing::warn;

use crate::auth::{self, AuthError, Principal};
use crate::http::live::Refused;
use crate::http::session::{COOKIE, Claims, SESSION_TTL, tokens_match};
use crate::http::{Access, ApiContext, CloseConnection, Operation, Route, Verb, route};

const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const CSS: &str = concat!(
    include_str!("../../status/status.css"),
    include_str!("dashboard.css")
);
const JS: &str = include_str!("dashboard.js");
/// Form bodies are small: a key or a CSRF token.
const MAX_FORM: usize = 4096;

type St = State<Arc<ApiContext>>;

pub fn routes() -> Vec<Route> {
    let page = |id, summary| {
        Operation::new(id, summary, "dashboard")
            .content(200, "The page", "text/html")
            .empty(303, "No session: to the sign-in page")
            .content(503, "The store is unavailable", "text/html")
    };
    let action = |id, summary| {
        Operation::new(id, summary, "dashboard")
            .describe("A form post of the dashboard: needs the session cookie and its CSRF token.")
            .content(200, "The page with the outcome", "text/html")
            .empty(303, "Done, or no session: to the page to show")
            .content(
                403,
                "No or a wrong CSRF token, another site's form, or a read-only key",
                "text/html",
            )
            .content(404, "No such target or channel", "text/html")
            .content(503, "The store is unavailable", "text/html")
    };
    vec![
        route(
            Verb::Get,
            "/",
            Access::Public,
            page(
                "dashboard",
                "The dashboard: every target of the signed-in tenant (HTML)",
            )
            .query(
                "status",
                serde_json::json!({"type": "string"}),
                "only this status",
            )
            .query(
                "tag",
                serde_json::json!({"type": "string"}),
                "only targets with this tag",
            )
            .query(
                "q",
                serde_json::json!({"type": "string"}),
                "text in the id or name",
            ),
            overview,
        ),
        route(
            Verb::Get,
            "/signin",
            Access::Public,
            Operation::new("signinPage", "The dashboard's sign-in page", "dashboard")
                .query(
                    "once",
                    serde_json::json!({"type": "string"}),
                    "a one-time sign-in token printed by `netmon up`",
                )
                .content(200, "The sign-in form", "text/html")
                .empty(303, "Signed in with a one-time token, or already signed in")
                .content(401, "A one-time token used already or expired", "text/html")
                .content(503, "The key could not be checked", "text/html"),
            signin_page,
        ),
        route(
            Verb::Post,
            "/signin",
            Access::Public,
            Operation::new(
                "signin",
                "Sign in to the dashboard with an API key (form post)",
                "dashboard",
            )
            .empty(303, "Signed in: a session cookie is set")
            .content(401, "Wrong or revoked key", "text/html")
            .content(403, "Another site's form", "text/html")
            .content(503, "The key could not be checked", "text/html"),
            signin,
        ),
        route(
            Verb::Post,
            "/signout",
            Access::Public,
            action("signout", "Sign out"),
            signout,
        ),
        route(
            Verb::Get,
            "/targets/{id}",
            Access::Public,
            page(
                "dashboardTarget",
                "One target: state, results, history, incidents (HTML)",
            )
            .path_param("id", "target id")
            .content(404, "No such target", "text/html"),
            target_page,
        ),
        route(
            Verb::Post,
            "/targets/{id}/check",
            Access::Public,
            action("dashboardCheck", "Check a target now").path_param("id", "target id"),
            check_now,
        ),
        route(
            Verb::Post,
            "/targets/{id}/pause",
            Access::Public,
            action("dashboardPause", "Pause a target").path_param("id", "target id"),
            pause,
        ),
        route(
            Verb::Post,
            "/targets/{id}/resume",
            Access::Public,
            action("dashboardResume", "Resume a target").path_param("id", "target id"),
            resume,
        ),
        route(
            Verb::Get,
            "/incidents",
            Access::Public,
            page("dashboardIncidents", "Open and recent incidents (HTML)"),
            incidents_page,
        ),
        route(
            Verb::Get,
            "/maintenance",
            Access::Public,
            page("dashboardMaintenance", "Maintenance windows (HTML)"),
            maintenance_page,
        ),
        route(
            Verb::Get,
            "/channels",
            Access::Public,
            page("dashboardChannels", "Notification channels (HTML)"),
            channels_page,
        ),
        route(
            Verb::Post,
            "/channels/{id}/test",
            Access::Public,
            action("dashboardChannelTest", "Send a test notification")
                .path_param("id", "channel id"),
            channel_test,
        ),
        route(
            Verb::Get,
            "/live",
            Access::Public,
            Operation::new(
                "dashboardLive",
                "Server-Sent Events: which targets changed",
                "dashboard",
            )
            .content(200, "An event stream", "text/event-stream")
            .empty(204, "No stream here: poll `live.json`")
            .empty(401, "No session")
            .empty(503, "Too many live connections"),
            live,
        ),
        route(
            Verb::Get,
            "/live.json",
            Access::Public,
            Operation::new(
                "dashboardState",
                "Every target's status, for the dashboard's script",
                "dashboard",
            )
            .content(200, "Counts and one entry per target", "application/json")
            .empty(304, "Unchanged since the ETag sent in If-None-Match")
            .empty(401, "No session")
            .empty(503, "The store is unavailable"),
            live_json,
        ),
        route(
            Verb::Get,
            "/dash.css",
            Access::Public,
            Operation::new("dashboardCss", "The dashboard's stylesheet", "dashboard")
                .content(200, "CSS", "text/css"),
            || async { asset("text/css; charset=utf-8", CSS) },
        ),
        route(
            Verb::Get,
            "/dash.js",
            Access::Public,
            Operation::new("dashboardJs", "The dashboard's script", "dashboard").content(
                200,
                "JavaScript",
                "text/javascript",
            ),
            || async { asset("text/javascript; charset=utf-8", JS) },
        ),
    ]
}

/// A short content hash, so asset URLs change when their content does and may be cached long.
fn version(content: &str) -> String {
    hex::encode(&Sha256::digest(content.as_bytes())[..6])
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    r
}

/// `../` per path segment below the first, so relative links resolve from any page.
fn root_of(path: &str) -> String {
    "../".repeat(path.matches('/').count().saturating_sub(1))
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn unavailable(root: &str, e: &StoreError) -> Response {
    warn!(error = %e, "dashboard page not rendered");
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            root,
            "Temporarily unavailable",
            "The data could not be read just now. Please try again in a minute.",
        ),
    )
}

/// The signed-in caller of a dashboard request.
pub(crate) struct Signed {
    pub principal: Principal,
    pub key_name: String,
    pub csrf: String,
    claims: Claims,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session of the request: `Ok(None)` without a valid one (no cookie, a forged or expired
/// one, a revoked or replaced key).
async fn session(ctx: &ApiContext, headers: &HeaderMap) -> Result<Option<Signed>, StoreError> {
    let Some(claims) = cookie(headers, COOKIE).and_then(Claims::parse) else {
        return Ok(None);
    };
    let Some(key) = ctx.keys.get_key(&claims.key_id).await? else {
        return Ok(None);
    };
    let now = ctx.clock.now();
    if !key.is_active() || !ctx.sessions.verify(&claims, &key, now) {
        return Ok(None);
    }
    Ok(Some(Signed {
        csrf: ctx.sessions.csrf(&claims, &key),
        key_name: key.name.clone(),
        principal: Principal {
            key_id: key.id,
            tenant: key.tenant,
            role: key.role,
        },
        claims,
    }))
}

/// The session, or the response to send instead (to the sign-in page; 503 when the key store
/// is down).
async fn signed_in(ctx: &ApiContext, headers: &HeaderMap, root: &str) -> Result<Signed, Response> {
    match session(ctx, headers).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(see_other(&format!("{root}signin"))),
        Err(e) => Err(unavailable(root, &e)),
    }
}

fn host_of_url(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?', '#']).next().unwrap_or(rest))
}

/// Whether a form post came from this site, as far as the browser says: `Origin`, else
/// `Sec-Fetch-Site`, else `Referer`. A client that sends none of them is not a browser acting
/// for someone else, and still needs the CSRF token.
fn same_origin(ctx: &ApiContext, headers: &HeaderMap) -> bool {
    let get = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let host = get(header::HOST);
    let ours = |h: &str| {
        host.is_some_and(|ours| ours.eq_ignore_ascii_case(h))
            || ctx
                .public_url
                .as_deref()
                .and_then(host_of_url)
                .is_some_and(|p| p.eq_ignore_ascii_case(h))
    };
    if let Some(origin) = get(header::ORIGIN) {
        return host_of_url(origin).is_some_and(ours);
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    if let Some(referer) = get(header::REFERER) {
        return host_of_url(referer).is_some_and(ours);
    }
    true
}

fn is_https(ctx: &ApiContext, headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
    forwarded
        || ctx
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

fn session_cookie(ctx: &ApiContext, headers: &HeaderMap, value: &str, max_age: i64) -> HeaderValue {
    let secure = if is_https(ctx, headers) {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("netmon_session=; Path=/; Max-Age=0"))
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn forbidden(root: &str, why: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::message(root, "Not allowed", why),
    )
}

/// A state-changing form post: a session, a form from this site, and its CSRF token.
async fn post_guard(
    ctx: &ApiContext,
    headers: &HeaderMap,
    root: &str,
    body: &[u8],
) -> Result<Signed, Response> {
    let s = signed_in(ctx, headers, root).await?;
    if body.len() > MAX_FORM {
        return Err(forbidden(root, "The form is too large."));
    }
    if !same_origin(ctx, headers) {
        return Err(forbidden(root, "This form was sent from another site."));
    }
    let f = form(body);
    let token_ok = field(&f, "csrf").is_some_and(|t| tokens_match(&s.csrf, t));
    if !token_ok {
        return Err(forbidden(
            root,
            "This form has expired. Go back, reload the page and try again.",
        ));
    }
    Ok(s)
}

/// A form post that changes one resource: [`change_guard`], then the resource's id from the
/// path (404, naming `what`, when it is not a valid id).
async fn change_guard_for<T, E>(
    ctx: &ApiContext,
    headers: &HeaderMap,
    root: &str,
    body: &[u8],
    id: &str,
    what: &str,
    parse: fn(&str) -> Result<T, E>,
) -> Result<(Signed, T), Response> {
    let s = change_guard(ctx, headers, root, body).await?;
    let parsed = parse(id).map_err(|_| not_found(root, what))?;
    Ok((s, parsed))
}

/// A form post that changes something: [`post_guard`], and a key that may write.
async fn change_guard(
    ctx: &ApiContext,
    headers: &HeaderMap,
    root: &str,
    body: &[u8],
) -> Result<Signed, Response> {
    let s = post_guard(ctx, headers, root, body).await?;
    if !s.principal.role.can_write() {
        return Err(forbidden(root, "A read-only key can only look."));
    }
    Ok(s)
}

fn not_found(root: &str, what: &str) -> Response {
    html(
        StatusCode::NOT_FOUND,
        pages::message(root, "Not found", &format!("There is no such {what}.")),
    )
}

async fn signin_page(
    State(ctx): St,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let root = root_of(uri.path());
    let once = q
        .as_deref()
        .map(|q| form(q.as_bytes()))
        .and_then(|f| field(&f, "once").map(str::to_owned));
    if let Some(token) = once {
        let now = ctx.clock.now();
        let key = match ctx.sessions.redeem(&token, now) {
            Some(id) => match ctx.keys.get_key(&id).await {
                Ok(k) => k.filter(ApiKey::is_active),
                Err(e) => return unavailable(&root, &e),
            },
            None => None,
        };
        let next = f_next(q.as_deref());
        return match key {
            Some(key) => signed_in_response(&ctx, &headers, &root, &key, &next),
            None => html(
                StatusCode::UNAUTHORIZED,
                pages::signin(
                    &root,
                    Some(
                        "This sign-in link was used already or has expired. Sign in with an API key.",
                    ),
                ),
            ),
        };
    }
    if let Ok(Some(_)) = session(&ctx, &headers).await {
        return see_other(&format!("{root}./"));
    }
    html(StatusCode::OK, pages::signin(&root, None))
}

/// Where a one-time link leads after signing in (`&next=targets/api`): a relative path of
/// plain characters below the dashboard, never another site; the overview otherwise.
fn f_next(query: Option<&str>) -> String {
    let f = query.map(|q| form(q.as_bytes())).unwrap_or_default();
    field(&f, "next")
        .filter(|n| {
            !n.is_empty()
                && !n.starts_with('/')
                && !n.contains("//")
                && !n.split('/').any(|seg| seg == "..")
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._/-".contains(&b))
        })
        .unwrap_or("./")
        .to_owned()
}

fn signed_in_response(
    ctx: &ApiContext,
    headers: &HeaderMap,
    root: &str,
    key: &ApiKey,
    next: &str,
) -> Response {
    if !ctx.sessions.enabled() {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::signin(
                root,
                Some(
                    "Dashboard sign-in is off in this deployment: it has no session secret \
                     (NETMON_SESSION_SECRET). The API works with the key as a bearer token.",
                ),
            ),
        );
    }
    let value = ctx.sessions.issue(key, ctx.clock.now());
    let mut r = see_other(&format!("{root}{next}"));
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(ctx, headers, &value, SESSION_TTL.num_seconds()),
    );
    r
}

async fn signin(State(ctx): St, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let root = root_of(uri.path());
    if !same_origin(&ctx, &headers) || body.len() > MAX_FORM {
        return forbidden(&root, "This form was sent from another site.");
    }
    let f = form(&body);
    let presented = field(&f, "key").unwrap_or("").trim();
    match auth::authenticate(ctx.keys.as_ref(), presented).await {
        Ok(p) => match ctx.keys.get_key(&p.key_id).await {
            Ok(Some(key)) => signed_in_response(&ctx, &headers, &root, &key, "./"),
            Ok(None) => html(
                StatusCode::UNAUTHORIZED,
                pages::signin(&root, Some("The API key is not valid.")),
            ),
            Err(e) => unavailable(&root, &e),
        },
        Err(AuthError::Store(e)) => unavailable(&root, &e),
        Err(AuthError::Revoked) => html(
            StatusCode::UNAUTHORIZED,
            pages::signin(&root, Some("This API key was revoked.")),
        ),
        Err(_) => html(
            StatusCode::UNAUTHORIZED,
            pages::signin(&root, Some("The API key is not valid.")),
        ),
    }
}

async fn signout(State(ctx): St, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let root = root_of(uri.path());
    let s = match post_guard(&ctx, &headers, &root, &body).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    ctx.sessions.sign_out(&s.claims, ctx.clock.now());
    let mut r = see_other(&format!("{root}signin"));
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(&ctx, &headers, "", 0));
    r
}

fn chrome<'a>(ctx: &ApiContext, s: &'a Signed, root: &'a str) -> pages::Chrome<'a> {
    pages::Chrome {
        root,
        tenant: s.principal.tenant.as_str(),
        key_name: &s.key_name,
        csrf: &s.csrf,
        writable: s.principal.role.can_write(),
        live: if ctx.live.is_some() { "sse" } else { "poll" },
        css: version(CSS),
        js: version(JS),
    }
}

async fn overview(State(ctx): St, uri: Uri, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let root = root_of(uri.path());
    let s = match signed_in(&ctx, &headers, &root).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = q.as_deref().map(|q| form(q.as_bytes())).unwrap_or_default();
    let filter = pages::Filter {
        status: field(&f, "status").unwrap_or("").to_owned(),
        tag: field(&f, "tag").unwrap_or("").to_owned(),
        text: field(&f, "q").unwrap_or("").to_owned(),
    };
    match pages::load_overview(&ctx, &s.principal, &filter).await {
        Ok(view) => html(
            StatusCode::OK,
            pages::overview(&chrome(&ctx, &s, &root), &view, &filter),
        ),
        Err(e) => unavailable(&root, &e),
    }
}

async fn target_page(
    State(ctx): St,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let root = root_of(uri.path());
    let s = match signed_in(&ctx, &headers, &root).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    render_target(&ctx, &s, &root, &id, None).await
}

async fn render_target(
    ctx: &ApiContext,
    s: &Signed,
    root: &str,
    id: &str,
    notice: Option<pages::Notice>,
) -> Response {
    let Ok(id) = TargetId::parse(id) else {
        return not_found(root, "target");
    };
    match pages::load_target(ctx, &s.principal, &id).await {
        Ok(Some(view)) => html(
            StatusCode::OK,
            pages::target(&chrome(ctx, s, root), &view, notice.as_ref()),
        ),
        Ok(None) => not_found(root, "target"),
        Err(e) => unavailable(root, &e),
    }
}

async fn check_now(
    State(ctx): St,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let root = root_of(uri.path());
    let (s, target) =
        match change_guard_for(&ctx, &headers, &root, &body, &id, "target", |i: &str| {
            TargetId::parse(i)
        })
        .await
        {
            Ok(guarded) => guarded,
            Err(r) => return r,
        };
    let notice = match crate::api::check_target(&ctx, &s.principal.tenant, &target).await {
        Ok((_, result)) => pages::Notice::checked(&result),
        Err(p) if p.status == 404 => {
            return not_found(&root, "target");
        }
        Err(p) => pages::Notice::failed(&format!("The check did not run: {}", p.detail)),
    };
    render_target(&ctx, &s, &root, &id, Some(notice)).await
}

async fn set_enabled(
    ctx: &ApiContext,
    uri: &Uri,
    headers: &HeaderMap,
    id: &str,
    body: &[u8],
    enabled: bool,
) -> Response {
    let root = root_of(uri.path());
    let (s, target) = match change_guard_for(ctx, headers, &root, body, id, "target", |i: &str| {
        TargetId::parse(i)
    })
    .await
    {
        Ok(guarded) => guarded,
        Err(r) => return r,
    };
    match crate::api::set_enabled(ctx, &s.principal, &target, enabled).await {
        // `{root}` is the site root; the target page is `targets/{id}` below it.
        Ok(_) => see_other(&format!("{root}targets/{}", target.as_str())),
        Err(p) if p.status == 404 => not_found(&root, "target"),
        Err(p) => {
            let notice = pages::Notice::failed(&p.detail);
            render_target(ctx, &s, &root, id, Some(notice)).await
        }
    }
}

async fn pause(
    State(ctx): St,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    set_enabled(&ctx, &uri, &headers, &id, &body, false).await
}

async fn resume(
    State(ctx): St,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    set_enabled(&ctx, &uri, &headers, &id, &body, true).await
}

async fn incidents_page(State(ctx): St, uri: Uri, headers: HeaderMap) -> Response {
    let root = root_of(uri.path());
    let s = match signed_in(&ctx, &headers, &root).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match pages::load_incidents(&ctx, &s.principal.tenant).await {
        Ok(view) => html(
            StatusCode::OK,
            pages::incidents(&chrome(&ctx, &s, &root), &view),
        ),
        Err(e) => unavailable(&root, &e),
    }
}

async fn maintenance_page(State(ctx): St, uri: Uri, headers: HeaderMap) -> Response {
    let root = root_of(uri.path());
    let s = match signed_in(&ctx, &headers, &root).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match ctx.maintenance.list_windows(&s.principal.tenant).await {
        Ok(windows) => html(
            StatusCode::OK,
            pages::maintenance(&chrome(&ctx, &s, &root), &windows, ctx.clock.now()),
        ),
        Err(e) => unavailable(&root, &e),
    }
}

async fn render_channels(
    ctx: &ApiContext,
    s: &Signed,
    root: &str,
    notice: Option<pages::Notice>,
) -> Response {
    match ctx.channels.list_channels(&s.principal.tenant).await {
        Ok(channels) => html(
            StatusCode::OK,
            pages::channels(&chrome(ctx, s, root), &channels, notice.as_ref()),
        ),
        Err(e) => unavailable(root, &e),
    }
}

async fn channels_page(State(ctx): St, uri: Uri, headers: HeaderMap) -> Response {
    let root = root_of(uri.path());
    match signed_in(&ctx, &headers, &root).await {
        Ok(s) => render_channels(&ctx, &s, &root, None).await,
        Err(r) => r,
    }
}

async fn channel_test(
    State(ctx): St,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let root = root_of(uri.path());
    let (s, channel) =
        match change_guard_for(&ctx, &headers, &root, &body, &id, "channel", |i: &str| {
            ChannelId::parse(i)
        })
        .await
        {
            Ok(guarded) => guarded,
            Err(r) => return r,
        };
    let notice = match crate::api::send_test(&ctx, &s.principal.tenant, &channel).await {
        Ok(Ok(())) => pages::Notice::ok(&format!(
            "Test notification delivered to {}.",
            channel.as_str()
        )),
        Ok(Err(why)) => pages::Notice::failed(&format!(
            "Test notification to {} not delivered: {why}",
            channel.as_str()
        )),
        Err(p) if p.status == 404 => return not_found(&root, "channel"),
        Err(p) => pages::Notice::failed(&p.detail),
    };
    render_channels(&ctx, &s, &root, Some(notice)).await
}

async fn live(
    State(ctx): St,
    headers: HeaderMap,
    close: Option<axum::Extension<CloseConnection>>,
) -> Response {
    let s = match session(&ctx, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    // Only a host that can cut a connection streams: elsewhere a stuck client would hold it.
    let (Some(hub), Some(axum::Extension(close))) = (ctx.live.clone(), close) else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let opened = match hub.open(&s.principal.tenant, last, Some(close)) {
        Ok(o) => o,
        Err(Refused::Full) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let heartbeat = hub.heartbeat();
    let mut r = Body::from_stream(crate::http::live::stream(opened, heartbeat)).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}

async fn live_json(State(ctx): St, headers: HeaderMap) -> Response {
    let s = match session(&ctx, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let body = match pages::load_live(&ctx, &s.principal.tenant).await {
        Ok(b) => b,
        Err(e) => {
            warn!(error = %e, "live.json not read");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let etag = format!("\"{}\"", version(&body));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut r = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        body.into_response()
    };
    let h = r.headers_mut();
    if !matches {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_are_relative_to_the_page() {
        assert_eq!(root_of("/"), "");
        assert_eq!(root_of("/incidents"), "");
        assert_eq!(root_of("/targets/api"), "../");
        assert_eq!(root_of("/targets/api/check"), "../../");
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; netmon_session=v1.x; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("v1.x"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn one_time_links_lead_only_below_the_dashboard() {
        assert_eq!(f_next(Some("once=x&next=targets/api")), "targets/api");
        for bad in [
            "//evil.example",
            "/x",
            "https://evil.example",
            "../x",
            "a/../../x",
            "a b",
            "",
        ] {
            let q: String = url::form_urlencoded::byte_serialize(bad.as_bytes()).collect();
            assert_eq!(f_next(Some(&format!("next={q}"))), "./", "{bad}");
        }
        assert_eq!(f_next(None), "./");
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            host_of_url("https://mon.example.com/x?y"),
            Some("mon.example.com")
        );
        assert_eq!(host_of_url("http://127.0.0.1:8080"), Some("127.0.0.1:8080"));
        assert_eq!(host_of_url("null"), None);
    }
}
