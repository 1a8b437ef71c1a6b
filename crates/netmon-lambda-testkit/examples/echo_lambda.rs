//! A tiny Lambda function for the Runtime API emulator's tests (`tests/runtime_api.rs`).
//! It is wired like netmon's functions (config from env checked at init, then
//! `lambda_runtime::run(service_fn(..))`), so the emulator is exercised by the real client.
//!
//! The handler returns its input unchanged, except:
//! - `{"fail": true}`: returns an `EchoError`, reported to `/error` as `errorType` `EchoFailed`;
//! - `{"panic": true}`: panics (the runtime catches it and reports it to `/error`);
//! - `{"sleep_ms": N}`: waits N ms first;
//! - `{"context": true}`: returns `{"event": <input>, "context": {..}}` with what the runtime
//!   read from the `/next` headers and the environment;
//! - `{"bytes": N}`: returns a string of N bytes.
//!
//! `ECHO_INIT` selects an init failure: `exit` (main returns an error before the first `/next`),
//! `hang` (never reaches `/next`), `snapstart-fail` (with `AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`
//! a SnapStart hook fails, which lambda_runtime reports to `/init/error`).

use std::sync::Arc;

use lambda_runtime::{
    BoxFuture, Diagnostic, Error, LambdaEvent, Runtime, SnapStartResource, service_fn,
};
use serde_json::{Value, json};

#[derive(Debug)]
struct EchoError(String);

impl std::fmt::Display for EchoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

// A stable errorType instead of the Rust type name (what netmon's functions do, design §3).
impl From<EchoError> for Diagnostic {
    fn from(error: EchoError) -> Self {
        Diagnostic {
            error_type: "EchoFailed".into(),
            error_message: error.0,
        }
    }
}

async fn echo(event: LambdaEvent<Value>) -> Result<Value, EchoError> {
    let (payload, context) = event.into_parts();
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
    if payload.get("fail") == Some(&Value::Bool(true)) {
        return Err(EchoError(format!("asked to fail: {payload}")));
    }
    if payload.get("panic") == Some(&Value::Bool(true)) {
        panic!("asked to panic");
    }
    if let Some(n) = payload.get("bytes").and_then(Value::as_u64) {
        return Ok(Value::String("x".repeat(n as usize)));
    }
    if payload.get("context") == Some(&Value::Bool(true)) {
        return Ok(json!({
            "event": payload,
            "context": {
                "request_id": context.request_id,
                "deadline_ms": context.deadline,
                "invoked_function_arn": context.invoked_function_arn,
                "xray_trace_id": context.xray_trace_id,
                "function_name": context.env_config.function_name,
                "memory_mb": context.env_config.memory,
                "version": context.env_config.version,
                "trace_env": std::env::var("_X_AMZN_TRACE_ID").ok(),
                "pid": std::process::id(),
            },
        }));
    }
    Ok(payload)
}

struct FailingSnapshotHook;

impl SnapStartResource for FailingSnapshotHook {
    fn before_snapshot(&self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Err("echo_lambda: before_snapshot failed on purpose".into()) })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let runtime = Runtime::new(service_fn(echo));
    match std::env::var("ECHO_INIT").as_deref() {
        Err(_) => runtime.run().await,
        Ok("exit") => Err("echo_lambda: ECHO_INIT=exit, refusing to start".into()),
        Ok("hang") => std::future::pending().await,
        Ok("snapstart-fail") => {
            runtime
                .register_snapstart_resource(Arc::new(FailingSnapshotHook))
                .run()
                .await
        }
        Ok(other) => Err(format!("echo_lambda: unknown ECHO_INIT={other:?}").into()),
    }
}
