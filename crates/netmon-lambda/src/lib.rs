//! The Lambda host: what turns netmon-app's services into AWS Lambda functions. The Runtime
//! API glue and JSON logs ([`runtime`]), the SQS batch driver with partial batch failures
//! ([`batch`]), typed configuration from the environment ([`env`]), the deployment policy in
//! one file ([`policy`]: SSRF settings, shard size, concurrency), its own CloudWatch metrics
//! ([`metrics`]), and one module per function
//! ([`functions`]). `functions/<name>/src/main.rs` only reads its config, builds the clients
//! and serves.
//!
//! May depend on: `netmon-core`, `netmon-app`, and the adapters `netmon-aws` and
//! `netmon-probe`. Never on `netmon-embedded` or a test kit.

pub mod batch;
pub mod env;
pub mod error;
pub mod functions;
pub mod metrics;
pub mod policy;
pub mod runtime;
pub mod sdk;
