//! The six functions: netmon-app's services wired to the DynamoDB stores, the SNS bus and the
//! SQS job queue, one module each. Each `functions/<name>/src/main.rs` reads its config from
//! the environment (`*Config::from_env`), builds the SDK clients once and serves one of these;
//! a local event-source runner and the tests build the same functions from a provisioned
//! emulator. Batch concurrency and other deployment settings are in [`crate::policy`].

pub mod alerter;
pub mod api;
pub mod notifier;
pub mod prober;
pub mod recorder;
pub mod scheduler;
