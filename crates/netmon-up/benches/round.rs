//! One scheduling round over N local HTTP targets through the whole embedded pipeline
//! (scheduler → prober → alerter + recorder → SQLite). Reports probes per second, CPU seconds
//! and peak RSS of this process. The HTTP targets are served by a child process so their CPU and
//! memory are not counted.
//!
//!   ./scripts/bench            (or: cargo bench -p netmon-app --bench round -- --targets 1000)

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netmon_app::delivery::MemorySink;
use netmon_up::Options;
use netmon_up::config;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// (user + system CPU seconds, peak RSS in MiB) of this process, from /proc.
fn usage() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = 100.0; // sysconf(_SC_CLK_TCK) on Linux
    let utime: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    ((utime + stime) / ticks, hwm_kib / 1024.0)
}

async fn serve() {
    let server = netmon_testkit::servers::TargetServer::start().await;
    println!("{}", server.addr);
    let _ = std::io::stdout().flush();
    std::future::pending::<()>().await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if std::env::args().any(|a| a == "--serve") {
        rt.block_on(serve());
        return;
    }
    let targets = arg("--targets", 1000);
    let concurrency = arg("--concurrency", 64);

    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .arg("--serve")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn target server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("server address");
    let addr = line.trim().to_owned();

    let dir = std::env::temp_dir().join(format!("netmon-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut yaml = format!(
        "location: bench\nlisten: 127.0.0.1:0\nstore: {}\nprobe: {{concurrency: {concurrency}}}\ntargets:\n",
        dir.join("bench.db").display()
    );
    for i in 0..targets {
        yaml.push_str(&format!(
            "  - id: t{i}\n    http: {{url: 'http://{addr}/t/{i}'}}\n    conditions: ['[STATUS] == 200', '[BODY].status == UP']\n"
        ));
    }
    let cfg = config::parse(&yaml, "bench.yaml", &dir).expect("bench config");

    let (cpu0, _) = usage();
    let started = Instant::now();
    let jobs = targets.div_ceil(50) as u64;
    let report = rt.block_on(async move {
        let mut opts = Options::new(cfg);
        opts.log_sink = Arc::new(MemorySink::default());
        // Start-up probes every target once: that is the round we measure.
        let running = netmon_up::start(opts).await.expect("pipeline starts");
        running
            .wait_jobs(jobs, Duration::from_secs(300))
            .await
            .expect("round completes");
        let elapsed = started.elapsed();
        running.stop().await;
        elapsed
    });
    let (cpu1, rss) = usage();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let secs = report.as_secs_f64();
    println!("targets:          {targets} (concurrency {concurrency}, 50 per job)");
    println!("round wall time:  {secs:.3} s  (start-up, probe, alert, record in SQLite)");
    println!("probes/second:    {:.0}", targets as f64 / secs);
    println!(
        "CPU seconds:      {:.2} (user+system, this process)",
        cpu1 - cpu0
    );
    println!("peak RSS:         {rss:.1} MiB");
}
