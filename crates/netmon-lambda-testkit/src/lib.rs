//! Test-only Lambda emulation, linked by no function: the local event-source runner that feeds
//! the functions from an emulator's queues with Lambda's semantics ([`runner`]), AWS call
//! counting ([`metrics`]), SDK clients for the emulator ([`emulator_clients`]), a Lambda
//! Runtime API emulator that runs the real function binaries ([`runtime_api`]) and the cargo
//! build those tests need ([`cargo_build`]).
//!
//! May depend on: everything below the hosts it tests (`netmon-lambda`, `netmon-aws`,
//! `netmon-core`, `netmon-testkit`).

pub mod billing;
pub mod cargo_build;
pub mod faults;
pub mod metrics;
pub mod runner;
pub mod runtime_api;

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// SDK configuration for an emulator at `endpoint`, with dummy static credentials.
pub async fn emulator_clients(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "netmon-emulator",
        ))
        .load()
        .await
}
