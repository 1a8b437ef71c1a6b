//! Cloud adapters for netmon's ports, and what a Lambda needs around the handlers.

pub mod batch;
pub mod clients;
pub mod dynamo;
pub mod env;
pub mod functions;
pub mod lambda;
pub mod metrics;
pub mod resources;
pub mod runner;
pub mod sns;
pub mod sqs;
