//! Prints the ground truth a seed draws (targets, outages, pings, receivers, fault rates):
//! `cargo run -p netmon-sim --example scenario -- 42`.

fn main() {
    let Some(seed) = std::env::args().nth(1).and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: scenario SEED");
        std::process::exit(2);
    };
    println!("{}", netmon_sim::debug_scenario(seed));
}
