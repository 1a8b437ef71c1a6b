//! netmon's application layer: the services (scheduler, prober, alerter, outbox relay,
//! notifier, recorder) and the HTTP layer (API, status pages, badges, the operator's dashboard), written against the ports
//! of `netmon-core` only.
//!
//! May depend on: `netmon-core`. Never on an adapter crate (`netmon-probe`, `netmon-embedded`,
//! `netmon-aws`) or a host: the hosts (`netmon-up`, `netmon-lambda`) pick the adapters and wire
//! them in.

// The OpenAPI schemas are one large `json!` literal.
#![recursion_limit = "256"]

mod answer;
pub mod api;
pub mod auth;
pub mod channels;
pub mod clock;
pub mod delivery;
pub mod error;
pub mod http;
pub mod render;
pub mod rpc;
pub mod services;
pub mod status;
