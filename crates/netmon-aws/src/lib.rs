//! Cloud adapters for netmon's ports, and what a Lambda needs around the handlers.

pub mod clients;
pub mod resources;
