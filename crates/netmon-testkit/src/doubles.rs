//! Small stand-ins for ports that a test does not look at: a bus that drops what it is given,
//! and a probe engine that finds every target up and counts its probes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use netmon_core::events::Envelope;
use netmon_core::observation::Observation;
use netmon_core::ports::{BusError, EventBus, ProbeEngine};
use netmon_core::target::CheckSpec;

/// Accepts every publish and keeps nothing.
pub struct NoBus;

#[async_trait]
impl EventBus for NoBus {
    async fn publish(&self, _: Vec<Envelope>) -> Result<(), BusError> {
        Ok(())
    }
}

/// Answers every probe with a connected 200 and counts the probes.
#[derive(Default)]
pub struct CountingEngine(AtomicUsize);

impl CountingEngine {
    pub fn probes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ProbeEngine for CountingEngine {
    async fn observe(&self, _: &CheckSpec, _: Duration) -> Observation {
        self.0.fetch_add(1, Ordering::SeqCst);
        Observation {
            connected: true,
            status: Some(200),
            ..Observation::default()
        }
    }
}
