//! `netmon`: run the monitor in one process, or probe once.

mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
}

#[derive(Parser)]
#[command(name = "netmon", version, about = "Network and uptime monitor")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run scheduler, prober, alerter, notifier, recorder and the API in this process.
    Up {
        /// The YAML config file (see README "Config reference").
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Override `listen` from the config (e.g. 127.0.0.1:0 for any free port).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Probe one URL now and print what happened.
    Check(check::CheckArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    exit::OK
                }
                _ => exit::USAGE,
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("netmon: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Up { config, listen } => up(config, listen).await,
            Command::Check(args) => check::run(args).await,
        }
    });
    ExitCode::from(code)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NETMON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

async fn up(config_path: PathBuf, listen: Option<std::net::SocketAddr>) -> u8 {
    init_tracing();
    let mut config = match netmon_app::config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("netmon: config error: {e}");
            return exit::USAGE;
        }
    };
    if let Some(addr) = listen {
        config.listen = addr;
    }
    // Handlers go in before the ready line, so a signal sent right after it is not lost.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("netmon: cannot install signal handlers: {e}");
            return exit::FAILED;
        }
    };
    let targets = config.targets.len();
    let running =
        match netmon_app::embedded::start(netmon_app::embedded::Options::new(config)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("netmon: {e}");
                return exit::FAILED;
            }
        };
    eprintln!(
        "netmon up: {targets} target(s) from {}, API on http://{} — Ctrl-C to stop",
        config_path.display(),
        running.api_addr()
    );
    signals.wait().await;
    eprintln!("netmon: stopping…");
    running.stop().await;
    eprintln!("netmon: stopped");
    exit::OK
}

/// SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd).
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
