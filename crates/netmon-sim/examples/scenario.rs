fn main() {
    println!(
        "{}",
        netmon_sim::debug_scenario(std::env::args().nth(1).unwrap().parse().unwrap())
    );
}
