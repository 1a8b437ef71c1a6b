//! A few seeds under `cargo test` (./scripts/test runs 200 with scripts/simulate), and the
//! promise that makes a failing seed worth printing: running it again replays it exactly.

#[test]
fn a_seed_replays_exactly() {
    let first = netmon_sim::run_seed_traced(7, false);
    let again = netmon_sim::run_seed_traced(7, true);
    assert!(first.deliveries > 0, "the run notified someone");
    assert_eq!(
        (
            first.invocations,
            first.deliveries,
            first.digest,
            &first.violations
        ),
        (
            again.invocations,
            again.deliveries,
            again.digest,
            &again.violations
        ),
        "tracing or rerunning changed the run"
    );
}

#[test]
fn ten_seeds_hold_every_invariant() {
    let failed: Vec<String> = (1000..1010)
        .map(netmon_sim::run_seed)
        .filter(|r| !r.violations.is_empty())
        .map(|r| r.describe())
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
