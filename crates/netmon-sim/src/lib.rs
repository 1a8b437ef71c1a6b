//! A deterministic simulation of the cloud pipeline as deployed, to test what netmon promises
//! under at-least-once delivery: every outage at or above its threshold gives exactly one
//! "opened" and one "resolved" per channel, opened first; nothing below the threshold pages; a
//! missed heartbeat always does; nothing is lost while a receiver is down for hours; no state
//! moves backwards.
//!
//! It runs the handlers the Lambdas run (built with the `*_over` constructors of
//! `netmon_lambda::functions`, driven through the same SQS batch driver and the api's router)
//! over `netmon_testkit::memory::MemoryStore` and a `ManualClock`, wired as `infra/contract.json`
//! wires them: SQS queues with their visibility timeouts, receive counts and dead-letter
//! queues, SNS subscriptions with their filters, event sources with their batch sizes,
//! windows and concurrency, and EventBridge's minute schedule with Lambda's asynchronous
//! retries. Faults come from one seed: duplicate, late, missing and failed ticks, and spells
//! in which the scheduler cannot read its targets (the outbox must still be swept); SQS and SNS
//! duplicates, reordering and send failures; Lambda invocation errors; DynamoDB throttling
//! (the store's fault hook, `Before`); lost answers of writes (`After`); and crashes at any
//! store call (the store's gate never returns), so a message is redelivered after work landed.
//! Receivers go down for hours, answer slowly, throttle with `Retry-After`, or refuse with a
//! 4xx. See `scenario` for the ground truth and `check` for the invariants (and `world`, for
//! those checked as the run goes: no state moves backwards, no event waits in the outbox).
//!
//! Written on the ports rather than with madsim or turmoil: nothing here does real IO (the
//! ports are the seams; those crates simulate sockets and tasks, which netmon's handlers never
//! see here), the whole run is one thread polling the invocations of each instant in a
//! seeded order with a no-op waker, and one SplitMix64 generator seeded by the run's seed
//! decides everything, so a seed replays exactly. Test-only: no function binary links it.

mod check;
mod contract;
mod net;
mod rng;
mod scenario;
mod world;

use chrono::DateTime;

/// What one seed's run found.
#[derive(Debug, Clone)]
pub struct SeedReport {
    pub seed: u64,
    pub violations: Vec<String>,
    /// The trace lines relevant to the violations (empty when there are none).
    pub trace: Vec<String>,
    pub invocations: u64,
    pub deliveries: usize,
    /// A digest of every delivery attempt (when, where, what, accepted): equal digests for
    /// equal seeds show the run is deterministic.
    pub digest: u64,
}

impl SeedReport {
    /// The violations with the seed and a short trace, for people.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for v in &self.violations {
            out.push_str(&format!("seed {}: VIOLATION: {v}\n", self.seed));
        }
        if !self.trace.is_empty() {
            out.push_str(&format!(
                "seed {}: trace (rerun: scripts/simulate --from {} --seeds 1):\n",
                self.seed, self.seed
            ));
            for line in &self.trace {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }
}

/// Longest trace printed with a violation.
const TRACE_LINES: usize = 40;

/// Runs one seed on its own current-thread runtime.
/// A seed that finds a violation runs again with a trace (the same run, deterministic).
pub fn run_seed(seed: u64) -> SeedReport {
    let report = run_seed_traced(seed, false);
    if report.violations.is_empty() {
        return report;
    }
    run_seed_traced(seed, true)
}

/// Runs one seed, keeping a trace or not (a trace costs more than the run).
pub fn run_seed_traced(seed: u64, tracing: bool) -> SeedReport {
    // Timers are enabled for the budgets handlers put on their own steps (the scheduler's
    // sweep): on wall time, which a seed (well under a second) never comes near, so they never
    // fire and the run stays a function of the seed.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap_or_else(|e| panic!("a current-thread runtime: {e}"));
    runtime.block_on(run(seed, tracing))
}

async fn run(seed: u64, tracing: bool) -> SeedReport {
    let mut rng = rng::Rng::new(seed);
    // 2026-11-28T10:00:00Z, on a minute.
    let start = DateTime::from_timestamp(1_795_860_000, 0).unwrap_or_default();
    let scenario = scenario::Scenario::generate(&mut rng, start);
    let mut world = world::World::new(scenario, rng);
    net::lock(&world.net).tracing = tracing;
    world.run().await;
    let (states, pending) = world.leftovers().await;
    let mut found = std::mem::take(&mut world.violations);
    found.extend(check::check(&world, &states, pending));
    let net = net::lock(&world.net);
    let mut tags: Vec<&str> = found
        .iter()
        .flat_map(|(_, t)| t.iter().map(String::as_str))
        .collect();
    tags.push("*");
    // SIM_TRACE=all prints the whole trace of the tags concerned, faults included.
    let everything = std::env::var("SIM_TRACE").is_ok_and(|v| v == "all");
    let trace: Vec<String> = if found.is_empty() {
        Vec::new()
    } else {
        let relevant: Vec<String> = net
            .trace
            .iter()
            .filter(|l| {
                tags.contains(&l.tag.as_str())
                    && (l.tag != "*" || l.text.contains("renamed") || everything)
            })
            .map(|l| format!("{} [{}] {}", l.at.format("%H:%M:%S%.3f"), l.tag, l.text))
            .collect();
        let keep = if everything {
            relevant.len()
        } else {
            TRACE_LINES
        };
        relevant[relevant.len().saturating_sub(keep)..].to_vec()
    };
    SeedReport {
        seed,
        violations: found.into_iter().map(|(v, _)| v).collect(),
        trace,
        invocations: world.invocations,
        deliveries: net.attempts.len(),
        digest: net.attempts.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, a| {
            let line = format!(
                "{}|{}|{}|{}|{}",
                a.at.timestamp_millis(),
                a.channel,
                a.event_id,
                a.kind,
                a.accepted
            );
            netmon_core::schedule::stable_hash(&[&h.to_string(), &line])
        }),
    }
}

/// The ground truth `seed` draws, for people (`examples/scenario.rs`).
pub fn debug_scenario(seed: u64) -> String {
    let mut rng = rng::Rng::new(seed);
    let start = DateTime::from_timestamp(1_795_860_000, 0).unwrap_or_default();
    format!("{:#?}", scenario::Scenario::generate(&mut rng, start))
}
