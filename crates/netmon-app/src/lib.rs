//! netmon's application layer: handlers over ports, config, and single-process wiring.

// The OpenAPI schemas are one large `json!` literal.
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod embedded;
pub mod error;
pub mod render;
pub mod rpc;
pub mod schedule;
pub mod services;
pub mod status;
