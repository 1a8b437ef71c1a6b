//! The domain handlers. Each takes its inputs as events or jobs and talks only to ports, so the
//! same code runs in a Lambda and in `netmon up`.

pub mod alerter;
pub mod notifier;
pub mod prober;
pub mod recorder;
pub mod relay;
pub mod scheduler;
