//! netmon's application layer: handlers over ports, config, and single-process wiring.

pub mod api;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod embedded;
pub mod error;
pub mod render;
pub mod schedule;
pub mod services;
pub mod status;
