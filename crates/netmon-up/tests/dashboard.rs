//! The operator's dashboard over real HTTP: the API router on port 0 over an isolated SQLite
//! store and a manual clock. Sign-in, sessions, CSRF, tenancy and escaping.

mod common;

use std::sync::Arc;

use common::temp_store;
use netmon_app::api::router;
use netmon_app::auth;
use netmon_app::http::ApiContext;
use netmon_core::apikey::Role;
use netmon_core::events::IncidentCause;
use netmon_core::incident::{LocationState, OpenIncident, Status};
use netmon_core::notification::{NotificationOutcome, NotificationRecord};
use netmon_core::ports::{
    ApiKeyStore, ChannelStore, Clock, Expect, MaintenanceStore, NotificationLog, StateStore,
    TargetStore,
};
use netmon_core::{ChannelId, TargetId, TenantId};
use netmon_embedded::{MemoryBus, SqliteStore};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::suites::fixtures;
use reqwest::header;

const HOSTILE: &str = "Web <b>&amp;</b>\"'<script>alert(1)</script>";

struct App {
    base: String,
    store: Arc<SqliteStore>,
    clock: Arc<ManualClock>,
    ctx: Arc<ApiContext>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for App {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn app(name: &str) -> App {
    let store = Arc::new(
        SqliteStore::open(temp_store(name))
            .await
            .expect("store opens"),
    );
    let clock = Arc::new(ManualClock::at_fixed_start());
    let ctx = ApiContext::builder(
        store.clone(),
        store.clone(),
        Arc::new(MemoryBus::new()),
        clock.clone(),
        TenantId::default_tenant(),
    )
    .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let r = router(ctx.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, r).await;
    });
    App {
        base,
        store,
        clock,
        ctx,
        server,
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn encode(form: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn key(app: &App, tenant: &TenantId, role: Role) -> (String, String) {
    let k = auth::create(
        app.store.as_ref(),
        tenant.clone(),
        role,
        "ops <laptop>",
        app.clock.now(),
    )
    .await
    .expect("key");
    (k.record.id, k.secret)
}

async fn stored(app: &App, tenant: &TenantId, id: &str) -> netmon_core::target::Target {
    app.store
        .get_target(tenant, &TargetId::parse(id).expect("id"))
        .await
        .expect("read")
        .expect("exists")
}

/// Signs in with `key`: the session cookie (`name=value`) and the sign-in response.
async fn sign_in(app: &App, key: &str) -> (Option<String>, reqwest::Response) {
    let resp = client()
        .post(format!("{}/signin", app.base))
        .header(header::ORIGIN, &app.base)
        .header(header::CONTENT_TYPE, FORM)
        .body(encode(&[("key", key)]))
        .send()
        .await
        .expect("sign-in sent");
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    (cookie, resp)
}

struct Page {
    status: u16,
    location: String,
    csp: String,
    body: String,
}

async fn get(app: &App, path: &str, cookie: Option<&str>) -> Page {
    let mut req = client().get(format!("{}{path}", app.base));
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    page(req.send().await.expect("sent")).await
}

async fn page(resp: reqwest::Response) -> Page {
    let h = |n: header::HeaderName| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (location, csp) = (h(header::LOCATION), h(header::CONTENT_SECURITY_POLICY));
    let status = resp.status().as_u16();
    Page {
        status,
        location,
        csp,
        body: resp.text().await.expect("body"),
    }
}

async fn post(
    app: &App,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> Page {
    let mut req = client()
        .post(format!("{}{path}", app.base))
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, FORM)
        .body(encode(form));
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    page(req.send().await.expect("sent")).await
}

/// The CSRF token in a page's forms.
fn csrf(body: &str) -> String {
    let at = body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a token")
        + 19;
    body[at..].split('"').next().expect("token").to_owned()
}

fn parse(doc: &str) -> roxmltree::Document<'_> {
    let opts = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    roxmltree::Document::parse_with_options(doc, opts)
        .unwrap_or_else(|e| panic!("not well-formed XML: {e}\n{doc}"))
}

#[tokio::test]
async fn sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session() {
    let app = app("dash-signin").await;
    let tenant = TenantId::default_tenant();
    let (_, secret) = key(&app, &tenant, Role::Admin).await;

    let anonymous = get(&app, "/", None).await;
    assert_eq!(anonymous.status, 303, "no page without a session");
    assert_eq!(anonymous.location, "signin");
    let deep = get(&app, "/targets/api", None).await;
    assert_eq!((deep.status, deep.location.as_str()), (303, "../signin"));
    let form = get(&app, "/signin", None).await;
    assert_eq!(form.status, 200);
    assert!(
        form.csp.contains("script-src 'self'") && !form.csp.contains("unsafe"),
        "{}",
        form.csp
    );

    let (cookie, resp) = sign_in(&app, &secret).await;
    assert_eq!(resp.status().as_u16(), 303);
    let set = resp.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain http: {set}");
    let cookie = cookie.expect("a session cookie");
    let (_, key_secret) = secret.rsplit_once('_').expect("key shape");
    assert!(!cookie.contains(key_secret), "the key is not in the cookie");

    let home = get(&app, "/", Some(&cookie)).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(
        !home.body.contains(key_secret),
        "the key is not in the page"
    );
    parse(&home.body);

    // Over https (a proxy in front), the cookie is Secure.
    let https = client()
        .post(format!("{}/signin", app.base))
        .header(header::ORIGIN, &app.base)
        .header("x-forwarded-proto", "https")
        .header(header::CONTENT_TYPE, FORM)
        .body(encode(&[("key", secret.as_str())]))
        .send()
        .await
        .expect("sent");
    assert!(
        https.headers()[header::SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("; Secure")
    );

    let token = csrf(&home.body);
    let out = post(
        &app,
        "/signout",
        &cookie,
        &[("csrf", &token)],
        Some(&app.base),
    )
    .await;
    assert_eq!((out.status, out.location.as_str()), (303, "signin"));
    let after = get(&app, "/", Some(&cookie)).await;
    assert_eq!(after.status, 303, "the signed-out cookie no longer works");
}

#[tokio::test]
async fn wrong_and_revoked_keys_do_not_sign_in_and_revocation_ends_sessions() {
    let app = app("dash-keys").await;
    let tenant = TenantId::default_tenant();
    let (id, secret) = key(&app, &tenant, Role::Admin).await;

    for wrong in ["", "nmk_nope", &format!("{secret}x")] {
        let (cookie, resp) = sign_in(&app, wrong).await;
        assert_eq!(resp.status().as_u16(), 401, "{wrong:?}");
        assert!(cookie.is_none());
        assert!(resp.text().await.expect("body").contains("not valid"));
    }

    let (cookie, _) = sign_in(&app, &secret).await;
    let cookie = cookie.expect("signed in");
    assert_eq!(get(&app, "/", Some(&cookie)).await.status, 200);
    app.store
        .revoke_key(&id, app.clock.now())
        .await
        .expect("revoked");
    assert_eq!(
        get(&app, "/", Some(&cookie)).await.status,
        303,
        "a revoked key's session ends"
    );
    let (again, resp) = sign_in(&app, &secret).await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(again.is_none());
    assert!(resp.text().await.expect("body").contains("revoked"));

    // A forged cookie (right shape, wrong MAC) is no session.
    let last = if cookie.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &cookie[..cookie.len() - 1]);
    assert_eq!(get(&app, "/", Some(&forged)).await.status, 303);
}

#[tokio::test]
async fn one_time_links_sign_in_once() {
    let app = app("dash-once").await;
    let tenant = TenantId::default_tenant();
    let (id, _) = key(&app, &tenant, Role::Admin).await;
    let token = app.ctx.sessions.one_time_token(&id, app.clock.now());
    let first = client()
        .get(format!("{}/signin?once={token}", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(first.status().as_u16(), 303);
    assert!(first.headers().contains_key(header::SET_COOKIE));
    let second = client()
        .get(format!("{}/signin?once={token}", app.base))
        .send()
        .await
        .expect("sent");
    assert_eq!(second.status().as_u16(), 401, "used up");
    assert!(!second.headers().contains_key(header::SET_COOKIE));
}

#[tokio::test]
async fn a_tenant_key_sees_only_its_tenant() {
    let app = app("dash-tenancy").await;
    let (a, b) = (
        TenantId::parse("acme").expect("id"),
        TenantId::parse("globex").expect("id"),
    );
    for (t, id, name) in [(&a, "shop", "Acme shop"), (&b, "mail", "Globex mail")] {
        app.store
            .put_target(fixtures::target(t, id, name), Expect::Absent)
            .await
            .expect("target");
    }
    app.store
        .put_channel(
            fixtures::channel(&b, "globex-hook", "Globex hook"),
            Expect::Absent,
        )
        .await
        .expect("channel");
    let (_, secret) = key(&app, &a, Role::Tenant).await;
    let cookie = sign_in(&app, &secret).await.0.expect("signed in");
    let home = get(&app, "/", Some(&cookie)).await;
    assert!(home.body.contains("Acme shop"));
    assert!(!home.body.contains("Globex"), "another tenant's target");
    assert_eq!(get(&app, "/targets/mail", Some(&cookie)).await.status, 404);
    assert!(
        !get(&app, "/channels", Some(&cookie))
            .await
            .body
            .contains("Globex")
    );
    let live = client()
        .get(format!("{}/live.json", app.base))
        .header(header::COOKIE, &cookie)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("body");
    assert!(
        live.contains("\"shop\"") && !live.contains("mail"),
        "{live}"
    );
    let token = csrf(&home.body);
    let pause = post(
        &app,
        "/targets/mail/pause",
        &cookie,
        &[("csrf", &token)],
        Some(&app.base),
    )
    .await;
    assert_eq!(
        pause.status, 404,
        "another tenant's target cannot be paused"
    );
    let mail = stored(&app, &b, "mail").await;
    assert!(mail.spec.enabled);
}

#[tokio::test]
async fn every_state_changing_form_needs_its_token_and_this_site() {
    let app = app("dash-csrf").await;
    let tenant = TenantId::default_tenant();
    app.store
        .put_target(fixtures::target(&tenant, "api", "API"), Expect::Absent)
        .await
        .expect("target");
    app.store
        .put_channel(fixtures::channel(&tenant, "hook", "Hook"), Expect::Absent)
        .await
        .expect("channel");
    let (_, secret) = key(&app, &tenant, Role::Admin).await;
    let cookie = sign_in(&app, &secret).await.0.expect("signed in");
    let token = csrf(&get(&app, "/", Some(&cookie)).await.body);
    // Another session's token does not fit this one.
    let other = sign_in(&app, &secret).await.0.expect("second session");
    let other_token = csrf(&get(&app, "/", Some(&other)).await.body);
    assert_ne!(token, other_token);

    for path in [
        "/targets/api/check",
        "/targets/api/pause",
        "/targets/api/resume",
        "/channels/hook/test",
        "/signout",
    ] {
        for (form, origin, why) in [
            (vec![], Some(app.base.as_str()), "no token"),
            (
                vec![("csrf", "0123")],
                Some(app.base.as_str()),
                "a wrong token",
            ),
            (
                vec![("csrf", other_token.as_str())],
                Some(app.base.as_str()),
                "another session's token",
            ),
            (
                vec![("csrf", token.as_str())],
                Some("https://evil.example"),
                "another site",
            ),
            (
                vec![("csrf", token.as_str())],
                Some("null"),
                "an opaque origin",
            ),
        ] {
            let got = post(&app, path, &cookie, &form, origin).await;
            assert_eq!(got.status, 403, "{path} with {why}: {}", got.body);
        }
    }
    // Nothing changed, and the session still works.
    let api = stored(&app, &tenant, "api").await;
    assert!(api.spec.enabled);
    assert_eq!(get(&app, "/", Some(&cookie)).await.status, 200);
    // The right token from this site works.
    let paused = post(
        &app,
        "/targets/api/pause",
        &cookie,
        &[("csrf", &token)],
        Some(&app.base),
    )
    .await;
    assert_eq!(
        (paused.status, paused.location.as_str()),
        (303, "../../targets/api")
    );
    let api = stored(&app, &tenant, "api").await;
    assert!(!api.spec.enabled, "paused");
    assert_eq!(api.version, 2, "one write");
    // A sign-in form from another site is refused too (login CSRF).
    let evil = client()
        .post(format!("{}/signin", app.base))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::CONTENT_TYPE, FORM)
        .body(encode(&[("key", secret.as_str())]))
        .send()
        .await
        .expect("sent");
    assert_eq!(evil.status().as_u16(), 403);
    assert!(!evil.headers().contains_key(header::SET_COOKIE));
}

#[tokio::test]
async fn a_read_only_key_looks_but_does_not_change() {
    let app = app("dash-readonly").await;
    let tenant = TenantId::default_tenant();
    let mut t = fixtures::target(&tenant, "api", "API");
    t.spec = serde_json::from_value(serde_json::json!({
        "id": "api",
        "name": "API",
        "http": {"url": "https://ops:hunter2@example.com/health?token=s3cret"}
    }))
    .expect("spec");
    app.store
        .put_target(t, Expect::Absent)
        .await
        .expect("target");
    let (_, secret) = key(&app, &tenant, Role::ReadOnly).await;
    let cookie = sign_in(&app, &secret).await.0.expect("signed in");
    let target = get(&app, "/targets/api", Some(&cookie)).await;
    assert_eq!(target.status, 200);
    assert!(
        !target.body.contains("/pause"),
        "no pause form for a read-only key"
    );
    for page in [&target.body, &get(&app, "/", Some(&cookie)).await.body] {
        assert!(
            !page.contains("hunter2") && !page.contains("s3cret"),
            "URL credentials are redacted for a read-only key, as in the API"
        );
    }
    let token = csrf(&target.body);
    let got = post(
        &app,
        "/targets/api/pause",
        &cookie,
        &[("csrf", &token)],
        Some(&app.base),
    )
    .await;
    assert_eq!(got.status, 403);
}

#[tokio::test]
async fn every_page_escapes_hostile_names() {
    let app = app("dash-escape").await;
    let tenant = TenantId::default_tenant();
    let now = app.clock.now();
    // Tags are restricted to a safe alphabet, so only names, texts and queries can be hostile.
    let t = fixtures::target(&tenant, "web", HOSTILE);
    app.store
        .put_target(t, Expect::Absent)
        .await
        .expect("target");
    let mut ch = fixtures::channel(&tenant, "hook", HOSTILE);
    ch.spec.name = HOSTILE.to_owned();
    app.store
        .put_channel(ch, Expect::Absent)
        .await
        .expect("channel");
    let mut w = fixtures::window(
        &tenant,
        "w1",
        now - chrono::Duration::minutes(5),
        now + chrono::Duration::hours(1),
        &["web"],
    );
    w.spec.name = HOSTILE.to_owned();
    app.store
        .put_window(w, Expect::Absent)
        .await
        .expect("window");
    let cause = IncidentCause {
        location: HOSTILE.to_owned(),
        failing_since: now,
        status_code: Some(500),
        error: Some(netmon_core::observation::ProbeError::new(
            netmon_core::observation::ErrorKind::Connect,
            HOSTILE,
        )),
        failed_conditions: Vec::new(),
    };
    let mut state = fixtures::state(Status::Down, now - chrono::Duration::minutes(3));
    state.locations.insert(
        HOSTILE.to_owned(),
        LocationState {
            down: true,
            consecutive_failures: 3,
            consecutive_successes: 0,
            failing_since: Some(now - chrono::Duration::minutes(4)),
            watermark: now,
        },
    );
    state.incident = Some(OpenIncident {
        id: "inc-1".into(),
        opened_at: now - chrono::Duration::minutes(3),
        cause: cause.clone(),
        last_notified_at: now,
        reminders_sent: 0,
    });
    let mut record = fixtures::incident(
        &tenant,
        "web",
        "inc-1",
        now - chrono::Duration::minutes(3),
        None,
    );
    record.target_name = HOSTILE.to_owned();
    record.cause = cause;
    app.store
        .commit_state(
            &tenant,
            &TargetId::parse("web").expect("id"),
            Expect::Absent,
            &state,
            &[record],
            &[],
        )
        .await
        .expect("state");
    app.store
        .record_attempt(
            &tenant,
            &NotificationRecord {
                incident_id: "inc-1".into(),
                event_id: "ev-1".into(),
                event_type: "incident.opened".into(),
                target_id: TargetId::parse("web").expect("id"),
                channel_id: ChannelId::parse("hook").expect("id"),
                outcome: NotificationOutcome::Retrying,
                reason: Some(HOSTILE.to_owned()),
                next_attempt_at: Some(now + chrono::Duration::minutes(1)),
                attempts: 1,
                first_attempt_at: now,
                last_attempt_at: now,
            },
        )
        .await
        .expect("notification");
    let (_, secret) = key(&app, &tenant, Role::Admin).await;
    let cookie = sign_in(&app, &secret).await.0.expect("signed in");
    let q: String = url::form_urlencoded::byte_serialize(HOSTILE.as_bytes()).collect();
    for path in [
        "/".to_owned(),
        format!("/?q={q}&tag={q}&status={q}"),
        "/targets/web".to_owned(),
        "/incidents".to_owned(),
        "/maintenance".to_owned(),
        "/channels".to_owned(),
    ] {
        let p = get(&app, &path, Some(&cookie)).await;
        assert_eq!(p.status, 200, "{path}");
        assert!(!p.body.contains("<script>alert"), "{path} prints markup");
        assert!(!p.body.contains("<b>&amp;"), "{path} prints markup");
        let doc = parse(&p.body);
        let text: String = doc
            .descendants()
            .filter(|n| n.is_text() || n.is_element())
            .flat_map(|n| {
                let mut v: Vec<String> = n.attributes().map(|a| a.value().to_owned()).collect();
                v.extend(n.text().map(str::to_owned));
                v
            })
            .collect();
        assert!(text.contains(HOSTILE), "{path} shows the name as text");
        assert!(
            doc.descendants()
                .filter(|n| n.has_tag_name("script"))
                .all(|s| s.attribute("src").is_some()),
            "{path}: no inline script"
        );
    }
    // The sign-in page escapes too (nothing stored reaches it, but the message does).
    parse(&get(&app, "/signin", None).await.body);
}

/// The forms against the whole pipeline of `netmon up`: "check now" goes through the prober and
/// shows its result, "send test" reaches the channel, pause and resume change the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forms_act_through_the_running_pipeline() {
    let mut h = common::Harness::new(
        "dash-actions",
        "  - id: api\n    name: Example API\n    http: {url: '{target}'}\n    conditions: ['[STATUS] == 200']\n",
    )
    .await;
    h.start().await;
    let base = format!("http://{}", h.running().api_addr());
    let key = h
        .running()
        .initial_admin_key()
        .expect("first start prints a key")
        .to_owned();
    let signed = client()
        .post(format!("{base}/signin"))
        .header(header::ORIGIN, &base)
        .header(header::CONTENT_TYPE, FORM)
        .body(encode(&[("key", key.as_str())]))
        .send()
        .await
        .expect("sign-in");
    let cookie = signed.headers()[header::SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("cookie")
        .to_owned();
    let send = |path: &str, token: &str| {
        client()
            .post(format!("{base}{path}"))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, &base)
            .header(header::CONTENT_TYPE, FORM)
            .body(encode(&[("csrf", token)]))
            .send()
    };
    let target_page = page(
        client()
            .get(format!("{base}/targets/api"))
            .header(header::COOKIE, &cookie)
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(target_page.status, 200);
    let token = csrf(&target_page.body);

    let checked = page(send("/targets/api/check", &token).await.expect("sent")).await;
    assert_eq!(checked.status, 200, "{}", checked.body);
    assert!(
        checked.body.contains("Checked now from test: up, HTTP 200"),
        "{}",
        checked.body
    );
    assert!(checked.body.contains("pass [STATUS] == 200 (actual: 200)"));

    let tested = page(send("/channels/console/test", &token).await.expect("sent")).await;
    assert_eq!(tested.status, 200);
    assert!(
        tested
            .body
            .contains("Test notification delivered to console."),
        "{}",
        tested.body
    );
    assert!(
        h.log.lines().iter().any(|l| l.contains("TEST")),
        "{:?}",
        h.log.lines()
    );

    let paused = page(send("/targets/api/pause", &token).await.expect("sent")).await;
    assert_eq!(paused.status, 303);
    let store = h.running().store();
    let tenant = TenantId::default_tenant();
    let id = TargetId::parse("api").expect("id");
    let t = store
        .get_target(&tenant, &id)
        .await
        .expect("read")
        .expect("exists");
    assert!(!t.spec.enabled);
    let resumed = page(send("/targets/api/resume", &token).await.expect("sent")).await;
    assert_eq!(resumed.status, 303);
    let t = store
        .get_target(&tenant, &id)
        .await
        .expect("read")
        .expect("exists");
    assert!(t.spec.enabled);
    h.stop().await;
}
