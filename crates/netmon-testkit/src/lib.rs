//! Test support shared by every crate's tests. Not linked into any shipped binary.

pub mod clock;
pub mod contracts;
pub mod emulator;
pub mod memory;
pub mod runtime_api;
pub mod servers;
pub mod suites;
