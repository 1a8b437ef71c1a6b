//! The Lambda Runtime API emulator against a real lambda_runtime binary
//! (`examples/echo_lambda.rs`), built with the cargo running these tests.
//!
//! Why an example built from the test: `CARGO_BIN_EXE_*` exists only for `[[bin]]` targets, and
//! a bin behind `required-features` is not built by a plain `cargo test --workspace` (nor by
//! `cargo test --test runtime_api`), while an unconditional bin would make lambda_runtime a
//! normal dependency of the test kit. `cargo_build` runs `cargo build --example` (a no-op when
//! fresh, so the binary always matches the source) and reads the path from cargo's JSON output,
//! which works under `cargo test`, nextest and any `CARGO_TARGET_DIR`.

use std::path::PathBuf;
use std::time::Duration;

use netmon_lambda_testkit::cargo_build::cargo_build;
use netmon_lambda_testkit::runtime_api::{Invocation, MAX_RESPONSE_BYTES, Phase, RuntimeApi};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(10);

fn echo_lambda() -> PathBuf {
    // --workspace: the same feature set as `cargo test --workspace`, which already built the
    // example, so under CI this is a no-op instead of a second build of tokio and everything on it.
    cargo_build(&["--workspace", "--example", "echo_lambda"])
}

#[tokio::test]
async fn response_round_trip_with_the_invocation_context() {
    let api = RuntimeApi::start().await;
    let event = json!({"context": true, "nested": {"list": [1, 2, 3]}, "text": "héllo"});
    let invoked = api
        .invoke_binary(
            &echo_lambda(),
            &[
                ("AWS_LAMBDA_FUNCTION_NAME", "netmon-echo"),
                ("AWS_REGION", "eu-west-1"),
            ],
            event.clone(),
            TIMEOUT,
        )
        .await;
    let body = invoked.response();
    assert_eq!(body["event"], event, "{invoked}");

    // What lambda_runtime read from the /next headers and the environment.
    let context = &body["context"];
    assert_eq!(context["request_id"], invoked.request_id.as_str());
    assert_eq!(
        context["invoked_function_arn"],
        "arn:aws:lambda:eu-west-1:123456789012:function:netmon-echo"
    );
    assert_eq!(context["function_name"], "netmon-echo");
    assert_eq!(context["memory_mb"], 128);
    assert_eq!(context["version"], "$LATEST");
    let trace = context["xray_trace_id"].as_str().expect("trace id");
    assert!(trace.starts_with("Root=1-"), "{trace}");
    assert_eq!(context["trace_env"], trace, "runtime sets _X_AMZN_TRACE_ID");
    let deadline_ms = context["deadline_ms"].as_u64().expect("deadline");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        deadline_ms > now_ms && deadline_ms <= now_ms + TIMEOUT.as_millis() as u64,
        "deadline {deadline_ms} should be within the timeout from now {now_ms}"
    );

    let init = invoked.init_time.expect("the function reached /next");
    assert!(init < TIMEOUT, "{init:?}");
    assert!(invoked.duration.is_some());
    eprintln!(
        "echo_lambda (debug build): init {init:?}, invocation {:?}",
        invoked.duration.unwrap()
    );
}

#[tokio::test]
async fn warm_process_serves_several_invocations() {
    let api = RuntimeApi::start().await;
    let mut function = api.spawn(&echo_lambda(), &[]).expect("spawn echo_lambda");
    let first = function.invoke(json!({"context": true}), TIMEOUT).await;
    let second = function.invoke(json!({"context": true}), TIMEOUT).await;
    let plain = function.invoke(json!(["just", "echo"]), TIMEOUT).await;
    assert_eq!(plain.response(), &json!(["just", "echo"]), "{plain}");

    let (first, second) = (&first.response()["context"], &second.response()["context"]);
    assert_eq!(first["pid"], second["pid"], "one process, kept warm");
    assert_eq!(first["pid"], function.pid().expect("running"));
    assert_ne!(first["request_id"], second["request_id"]);
    let init = function.init_time().expect("init measured");
    assert_eq!(plain.init_time, Some(init), "init is measured once");
    function.kill().await;
}

#[tokio::test]
async fn handler_error_is_posted_to_the_error_endpoint() {
    let api = RuntimeApi::start().await;
    let invoked = api
        .invoke_binary(&echo_lambda(), &[], json!({"fail": true}), TIMEOUT)
        .await;
    match &invoked.invocation {
        Invocation::Error {
            error_type,
            message,
            function_error_type,
        } => {
            assert_eq!(error_type, "EchoFailed", "{invoked}");
            assert!(message.starts_with("asked to fail"), "{invoked}");
            assert_eq!(function_error_type.as_deref(), Some("unhandled"));
        }
        _ => panic!("expected an invocation error, got {invoked}"),
    }
}

#[tokio::test]
async fn handler_panic_is_reported_and_the_process_keeps_serving() {
    let api = RuntimeApi::start().await;
    let mut function = api.spawn(&echo_lambda(), &[]).expect("spawn echo_lambda");
    let panicked = function.invoke(json!({"panic": true}), TIMEOUT).await;
    match &panicked.invocation {
        Invocation::Error { message, .. } => {
            assert!(message.contains("asked to panic"), "{panicked}")
        }
        _ => panic!("expected an invocation error, got {panicked}"),
    }
    let after = function.invoke(json!({"ok": 1}), TIMEOUT).await;
    assert_eq!(after.response(), &json!({"ok": 1}), "{after}");
    function.kill().await;
}

#[tokio::test]
async fn init_failure_exit_is_reported_with_stderr() {
    let api = RuntimeApi::start().await;
    let invoked = api
        .invoke_binary(&echo_lambda(), &[("ECHO_INIT", "exit")], json!({}), TIMEOUT)
        .await;
    match &invoked.invocation {
        Invocation::Exited { status, phase } => {
            assert_eq!(*phase, Phase::Init, "{invoked}");
            assert_eq!(status.code(), Some(1), "{invoked}");
        }
        _ => panic!("expected an early exit, got {invoked}"),
    }
    assert!(
        invoked.stderr.contains("ECHO_INIT=exit, refusing to start"),
        "{invoked}"
    );
    assert_eq!(invoked.init_time, None);
    // The report names the phase and carries the stderr.
    let report = invoked.to_string();
    assert!(report.contains("exited during Init"), "{report}");
    assert!(report.contains("refusing to start"), "{report}");
}

#[tokio::test]
async fn init_error_endpoint_is_reported() {
    let api = RuntimeApi::start().await;
    let invoked = api
        .invoke_binary(
            &echo_lambda(),
            &[
                ("ECHO_INIT", "snapstart-fail"),
                ("AWS_LAMBDA_INITIALIZATION_TYPE", "snap-start"),
            ],
            json!({}),
            TIMEOUT,
        )
        .await;
    match &invoked.invocation {
        Invocation::InitError {
            message,
            function_error_type,
            ..
        } => {
            assert!(message.contains("before_snapshot failed"), "{invoked}");
            assert_eq!(function_error_type.as_deref(), Some("Runtime.InitError"));
        }
        _ => panic!("expected an init error, got {invoked}"),
    }
}

#[tokio::test]
async fn slow_handler_times_out_and_is_killed() {
    let api = RuntimeApi::start().await;
    let timeout = Duration::from_millis(300);
    let mut function = api.spawn(&echo_lambda(), &[]).expect("spawn echo_lambda");
    // Warm it first so the timeout below is the handler's, not init's.
    function.invoke(json!("warm"), TIMEOUT).await.response();
    let invoked = function.invoke(json!({"sleep_ms": 60_000}), timeout).await;
    assert_eq!(
        invoked.invocation,
        Invocation::Timeout {
            phase: Phase::Invoke,
            after: timeout
        },
        "{invoked}"
    );
    // Killed: the next invocation reports the dead process at once.
    let after = function.invoke(json!({}), TIMEOUT).await;
    assert!(
        matches!(after.invocation, Invocation::Exited { .. }),
        "{after}"
    );
}

#[tokio::test]
async fn hanging_init_times_out() {
    let api = RuntimeApi::start().await;
    let timeout = Duration::from_millis(500);
    let invoked = api
        .invoke_binary(&echo_lambda(), &[("ECHO_INIT", "hang")], json!({}), timeout)
        .await;
    assert_eq!(
        invoked.invocation,
        Invocation::Timeout {
            phase: Phase::Init,
            after: timeout
        },
        "{invoked}"
    );
}

#[tokio::test]
async fn oversized_response_fails_like_lambda() {
    let api = RuntimeApi::start().await;
    let invoked = api
        .invoke_binary(
            &echo_lambda(),
            &[],
            json!({"bytes": MAX_RESPONSE_BYTES}),
            TIMEOUT,
        )
        .await;
    match &invoked.invocation {
        Invocation::Error { error_type, .. } => {
            assert_eq!(error_type, "Function.ResponseSizeTooLarge", "{invoked}")
        }
        _ => panic!("expected a size error, got {invoked}"),
    }
}

#[tokio::test]
async fn missing_binary_is_a_clear_error() {
    let api = RuntimeApi::start().await;
    let err = match api.spawn(std::path::Path::new("/nonexistent/bootstrap"), &[]) {
        Ok(_) => panic!("spawned a missing binary"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("/nonexistent/bootstrap"), "{err}");
}

#[tokio::test]
async fn relative_binary_path_works() {
    let api = RuntimeApi::start().await;
    let absolute = echo_lambda();
    let cwd = std::env::current_dir().unwrap();
    // A path relative to the test's working directory, however deep that is.
    let up = cwd.components().skip(1).map(|_| "..").collect::<PathBuf>();
    let relative = up.join(absolute.strip_prefix("/").unwrap());
    assert!(relative.is_relative());
    let invoked = api
        .invoke_binary(&relative, &[], json!({"rel": true}), TIMEOUT)
        .await;
    assert_eq!(invoked.response(), &json!({"rel": true}), "{invoked}");
}
