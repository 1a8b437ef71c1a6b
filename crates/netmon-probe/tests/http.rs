mod common;

use std::time::{Duration, Instant};

use common::*;
use netmon_core::observation::ErrorKind;
use netmon_core::target::CheckSpec;
use netmon_probe::{ProbeConfig, StaticResolver};

#[tokio::test]
async fn http_200_is_observed_with_timings_headers_and_body() {
    let server = serve(|_| Reply::Send {
        status: 200,
        headers: vec![("X-Probe-Test".into(), "yes".into())],
        body: b"hello world".to_vec(),
    })
    .await;
    let prober = prober(ProbeConfig::new(true, false));
    let obs = prober
        .observe(&CheckSpec::Http(http_check(&server.url("/health"))), T)
        .await;

    assert_eq!(obs.error, None);
    assert_eq!(obs.status, Some(200));
    assert!(obs.connected);
    assert_eq!(obs.ip, Some(ip("127.0.0.1")));
    assert_eq!(obs.body.as_deref(), Some("hello world"));
    assert!(
        obs.headers
            .iter()
            .any(|(k, v)| k == "x-probe-test" && v == "yes"),
        "{:?}",
        obs.headers
    );
    let t = obs.timings;
    assert_eq!(t.dns_ms, None, "an IP literal needs no resolution");
    assert_eq!(t.tls_ms, None, "plain http has no TLS phase");
    let connect = t.connect_ms.expect("connect_ms");
    let first_byte = t.first_byte_ms.expect("first_byte_ms");
    assert!(connect >= 0.0 && first_byte >= 0.0);
    assert!(t.total_ms >= connect + first_byte, "{t:?}");

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method, "GET");
    assert_eq!(reqs[0].path, "/health");
    assert_eq!(
        reqs[0].header("host"),
        Some(server.addr.to_string().as_str())
    );
    assert!(reqs[0].header("user-agent").unwrap().starts_with("netmon/"));
}

#[tokio::test]
async fn sends_method_headers_and_body_and_resolves_names_once() {
    let server = serve(|_| ok("created")).await;
    let resolver = StaticResolver::new().with("svc.test", [ip("127.0.0.1")]);
    let prober = prober_with(ProbeConfig::new(true, false), resolver);
    let mut check = http_check(&format!(
        "http://svc.test:{}/items?x=1#frag",
        server.addr.port()
    ));
    check.method = "POST".into();
    check.body = Some(r#"{"a":1}"#.into());
    check
        .headers
        .insert("Authorization".into(), "Bearer s3cret".into());
    check
        .headers
        .insert("User-Agent".into(), "custom-agent".into());
    let obs = prober.observe(&CheckSpec::Http(check), T).await;

    assert_eq!(obs.error, None);
    assert!(obs.timings.dns_ms.is_some(), "a hostname is resolved");
    let req = &server.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/items?x=1", "fragment is not sent");
    assert_eq!(
        req.header("host"),
        Some(format!("svc.test:{}", server.addr.port()).as_str())
    );
    assert_eq!(req.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(req.header("user-agent"), Some("custom-agent"));
    assert_eq!(req.body, br#"{"a":1}"#);
}

#[tokio::test]
async fn http_500_is_observed_without_a_probe_error() {
    let server = serve(|_| status(500)).await;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(http_check(&server.url("/"))), T)
        .await;
    assert_eq!(obs.status, Some(500));
    assert_eq!(
        obs.error, None,
        "an HTTP error status is for conditions to judge"
    );
    assert_eq!(obs.body.as_deref(), Some("status 500"));
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_within_the_timeout() {
    let server = serve(|_| Reply::Hang).await;
    let timeout = Duration::from_millis(400);
    let started = Instant::now();
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(http_check(&server.url("/slow"))), timeout)
        .await;
    let elapsed = started.elapsed();

    let e = obs.error.expect("timeout error");
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert_eq!(
        e.message,
        "timed out after 400ms waiting for response headers"
    );
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_millis(500),
        "{elapsed:?}"
    );
    // What was measured before the timeout is kept.
    assert!(obs.connected);
    assert!(obs.timings.connect_ms.is_some());
    assert_eq!(obs.timings.first_byte_ms, None);
    assert!(obs.timings.total_ms >= 400.0);
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let port = closed_port().await;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(
            &CheckSpec::Http(http_check(&format!("http://127.0.0.1:{port}/"))),
            T,
        )
        .await;
    let e = obs.error.expect("error");
    assert_eq!(e.kind, ErrorKind::Connect);
    assert!(
        e.message.contains(&format!("127.0.0.1:{port}")),
        "{}",
        e.message
    );
    assert!(!obs.connected);
    assert_eq!(obs.status, None);
}

#[tokio::test]
async fn unresolvable_name_is_a_dns_error() {
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(http_check("http://nowhere.test/")), T)
        .await;
    let e = obs.error.expect("error");
    assert_eq!(e.kind, ErrorKind::Dns);
    assert!(e.message.contains("nowhere.test"), "{}", e.message);
}

#[tokio::test]
async fn garbage_instead_of_http_is_a_protocol_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
        }
    });
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(http_check(&format!("http://{addr}/"))), T)
        .await;
    assert_eq!(obs.error.expect("error").kind, ErrorKind::Protocol);
    assert!(obs.connected);
}

#[tokio::test]
async fn follows_a_redirect_chain_to_the_final_response() {
    let server = serve(|req| match req.path.as_str() {
        "/a" => redirect(301, "/b"),
        "/b" => redirect(302, "c?from=b"),
        "/c?from=b" => redirect(307, "/final"),
        "/final" => ok("arrived"),
        _ => status(404),
    })
    .await;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(http_check(&server.url("/a"))), T)
        .await;
    assert_eq!(obs.error, None);
    assert_eq!(obs.status, Some(200));
    assert_eq!(obs.body.as_deref(), Some("arrived"));
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/a", "/b", "/c?from=b", "/final"]);
}

#[tokio::test]
async fn see_other_turns_a_post_into_a_get_without_body_but_307_keeps_it() {
    let server = serve(|req| match req.path.as_str() {
        "/form" => redirect(303, "/done"),
        "/keep" => redirect(307, "/done"),
        _ => ok("done"),
    })
    .await;
    let prober = prober(ProbeConfig::new(true, false));
    for (path, method, body) in [("/form", "GET", &b""[..]), ("/keep", "POST", b"payload")] {
        let mut check = http_check(&server.url(path));
        check.method = "POST".into();
        check.body = Some("payload".into());
        let obs = prober.observe(&CheckSpec::Http(check), T).await;
        assert_eq!(obs.status, Some(200));
        let last = server.requests().pop().unwrap();
        assert_eq!(last.path, "/done");
        assert_eq!(last.method, method, "after {path}");
        assert_eq!(last.body, body, "after {path}");
    }
}

#[tokio::test]
async fn a_redirect_loop_is_a_redirect_error() {
    let server = serve(|req| match req.path.as_str() {
        "/ping" => redirect(302, "/pong"),
        _ => redirect(302, "/ping"),
    })
    .await;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(http_check(&server.url("/ping"))), T)
        .await;
    let e = obs.error.expect("error");
    assert_eq!(e.kind, ErrorKind::Redirect);
    assert!(e.message.contains("redirect loop"), "{}", e.message);
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn too_many_redirects_is_a_redirect_error() {
    let server = serve(|req| {
        let n: u32 = req.path.trim_start_matches("/r/").parse().unwrap_or(0);
        redirect(302, &format!("/r/{}", n + 1))
    })
    .await;
    let mut check = http_check(&server.url("/r/0"));
    check.max_redirects = 2;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(check), T)
        .await;
    let e = obs.error.expect("error");
    assert_eq!(e.kind, ErrorKind::Redirect);
    assert!(
        e.message.contains("stopped after 2 redirect"),
        "{}",
        e.message
    );
    assert_eq!(server.hits(), 3, "the original request and two redirects");
    assert_eq!(obs.status, Some(302));
}

#[tokio::test]
async fn redirects_are_not_followed_when_disabled() {
    let server = serve(|_| redirect(302, "/elsewhere")).await;
    let mut check = http_check(&server.url("/"));
    check.follow_redirects = false;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(check), T)
        .await;
    assert_eq!(obs.error, None);
    assert_eq!(obs.status, Some(302));
    assert!(
        obs.headers
            .iter()
            .any(|(k, v)| k == "location" && v == "/elsewhere")
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn redirect_to_another_scheme_is_refused() {
    let server = serve(|_| redirect(302, "ftp://files.example/x")).await;
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(http_check(&server.url("/"))), T)
        .await;
    let e = obs.error.expect("error");
    assert_eq!(e.kind, ErrorKind::Redirect);
    assert!(e.message.contains("ftp"), "{}", e.message);
}

/// A redirect to another origin (here another port) carries none of the headers the user set
/// (any of them may be a credential: `X-Api-Key`, a signed token) and not the body.
#[tokio::test]
async fn user_headers_and_body_are_not_forwarded_to_another_origin() {
    let other = serve(|_| ok("other")).await;
    let target = format!("http://127.0.0.1:{}/landing", other.addr.port());
    let first = serve(move |_| redirect(307, &target)).await;
    let mut check = http_check(&first.url("/"));
    check.method = "POST".into();
    check.body = Some("password=body-s3cret".into());
    check
        .headers
        .insert("Authorization".into(), "Bearer s3cret".into());
    check.headers.insert("X-Api-Key".into(), "k3y".into());
    check.headers.insert("Accept".into(), "text/plain".into());
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(check), T)
        .await;
    assert_eq!(obs.body.as_deref(), Some("other"));
    let sent = &first.requests()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer s3cret"));
    assert_eq!(sent.header("x-api-key"), Some("k3y"));
    assert_eq!(sent.body, b"password=body-s3cret");
    let moved = &other.requests()[0];
    assert_eq!(moved.method, "POST", "307 repeats the method");
    for name in ["authorization", "x-api-key", "accept"] {
        assert_eq!(moved.header(name), None, "{name} was forwarded");
    }
    assert!(moved.body.is_empty(), "the body was forwarded");
    assert_eq!(
        moved.header("host"),
        Some(format!("127.0.0.1:{}", other.addr.port()).as_str())
    );
}

#[tokio::test]
async fn body_is_truncated_at_max_body_bytes_without_error() {
    let big = "x".repeat(200_000);
    let server = serve(move |_| ok(&big)).await;
    let config = ProbeConfig {
        max_body_bytes: 1000,
        ..ProbeConfig::new(true, false)
    };
    let obs = prober(config)
        .observe(&CheckSpec::Http(http_check(&server.url("/big"))), T)
        .await;
    assert_eq!(obs.error, None);
    assert_eq!(obs.status, Some(200));
    assert_eq!(obs.body.map(|b| b.len()), Some(1000));
}

#[tokio::test]
async fn head_requests_have_no_body() {
    let server = serve(|_| ok("ignored for HEAD")).await;
    let mut check = http_check(&server.url("/"));
    check.method = "HEAD".into();
    let obs = prober(ProbeConfig::new(true, false))
        .observe(&CheckSpec::Http(check), T)
        .await;
    assert_eq!(obs.error, None);
    assert_eq!(obs.status, Some(200));
    assert_eq!(obs.body.as_deref(), Some(""));
    assert_eq!(server.requests()[0].method, "HEAD");
}
