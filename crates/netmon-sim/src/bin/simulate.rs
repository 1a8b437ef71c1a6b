//! `simulate [--seeds N] [--from S] [--threads T]`: runs seeds S..S+N of the pipeline
//! simulation, prints each violation with its seed and trace, and ends with
//! `N seeds, V violations`; exits non-zero if any seed found one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

fn main() {
    let mut seeds = 200u64;
    let mut from = 0u64;
    let mut threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(2);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().and_then(|v| v.parse::<u64>().ok());
        match (arg.as_str(), value) {
            ("--seeds", Some(v)) => seeds = v,
            ("--from", Some(v)) => from = v,
            ("--threads", Some(v)) => threads = usize::try_from(v).unwrap_or(1).max(1),
            _ => {
                eprintln!("usage: simulate [--seeds N] [--from S] [--threads T]");
                std::process::exit(2);
            }
        }
    }
    let next = AtomicU64::new(from);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let seed = next.fetch_add(1, Ordering::SeqCst);
                    if seed >= from + seeds {
                        break;
                    }
                    let report = netmon_sim::run_seed(seed);
                    if !report.violations.is_empty() {
                        print!("{}", report.describe());
                    }
                    reports
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(report);
                }
            });
        }
    });
    let reports = reports.into_inner().unwrap_or_else(|p| p.into_inner());
    let violations: usize = reports.iter().map(|r| r.violations.len()).sum();
    let failing: Vec<u64> = {
        let mut f: Vec<u64> = reports
            .iter()
            .filter(|r| !r.violations.is_empty())
            .map(|r| r.seed)
            .collect();
        f.sort_unstable();
        f
    };
    if !failing.is_empty() {
        println!("failing seeds: {failing:?}");
    }
    println!("{seeds} seeds, {violations} violations");
    if violations > 0 {
        std::process::exit(1);
    }
}
