//! Test support shared by every crate's tests: the behavioural suites every store adapter must
//! pass, an in-memory store that passes them (with fault injection and call counts, for
//! service tests and the simulation), the event contract validator, a manual clock, local HTTP
//! servers (a target, a webhook receiver, a scriptable notification provider, an SMTP server) and the local AWS
//! emulator (moto). Not linked into any shipped binary (only ever a dev-dependency).
//!
//! May depend on: `netmon-core` only, so any crate's tests can use it.

pub mod clock;
pub mod contracts;
pub mod doubles;
pub mod emulator;
pub mod memory;
pub mod providers;
pub mod servers;
pub mod smtp;
pub mod suites;
