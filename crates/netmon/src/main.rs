//! `netmon`: run the monitor in one process, probe once, or drive the HTTP API.

mod apply;
mod channels;
mod check;
mod client;
mod commands;
mod dlq;
mod import;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// glibc's allocator spent about a sixth of `netmon up`'s steady-state CPU in perf (consolidating
/// its free lists whenever a kilobyte-sized block was asked for); the round bench declares the
/// same allocator, so its figures are this binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes shared by every command.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
}

#[derive(Parser)]
#[command(name = "netmon", version, about = "Network and uptime monitor")]
struct Cli {
    /// The API to talk to. The key is read from NETMON_API_KEY.
    #[arg(
        long,
        global = true,
        env = "NETMON_API",
        default_value = "http://127.0.0.1:8080",
        value_name = "URL"
    )]
    api: String,
    /// How results are printed.
    #[arg(long, global = true, value_enum, default_value_t = commands::Output::Table)]
    output: commands::Output,
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
    /// Probe a URL from here, or (given a target id) have the API probe that target now.
    Check(check::CheckArgs),
    /// List, add, remove and show targets.
    #[command(subcommand)]
    Targets(commands::TargetsCmd),
    /// Config as code: make the API's channels and targets match a file.
    Apply {
        /// YAML with `channels:` and `targets:` in the config file's shapes.
        #[arg(long, short = 'f', value_name = "FILE")]
        file: PathBuf,
        /// Also delete channels and targets the file does not name.
        #[arg(long)]
        prune: bool,
        /// Print the plan and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Incidents.
    #[command(subcommand)]
    Incidents(commands::IncidentsCmd),
    /// Notification channels: list them, send one a test.
    #[command(subcommand)]
    Channels(channels::ChannelsCmd),
    /// Every target's status and the open incidents (exit 1 if any target is down).
    Status,
    /// API keys.
    #[command(subcommand)]
    Keys(commands::KeysCmd),
    /// Convert a Gatus config or an Uptime Kuma database into a file for `netmon apply -f`
    /// (exit 0: all converted, 1: something reported as not carried over, 2: bad input).
    #[command(subcommand)]
    Import(import::ImportCmd),
    /// Dead-letter queues of a cloud deployment: count, and move messages back once the cause
    /// is fixed (AWS credentials and region from the environment).
    #[command(subcommand)]
    Dlq(dlq::DlqCmd),
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
        let Cli {
            api,
            output,
            command,
        } = cli;
        let client = || {
            let key = std::env::var("NETMON_API_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty());
            client::Client::new(&api, key, std::time::Duration::from_secs(90))
        };
        let result = match command {
            Command::Up { config, listen } => return up(config, listen).await,
            Command::Check(mut args) if args.url.contains("://") => {
                args.json |= output == commands::Output::Json;
                return check::run(args).await;
            }
            Command::Check(args) => match args.url_only_options() {
                Some(option) => Err(client::CliError::Usage(format!(
                    "{option} applies to URL checks only; {:?} is a target id (a URL has ://)",
                    args.url
                ))),
                None => match client() {
                    Ok(c) => {
                        let output = if args.json {
                            commands::Output::Json
                        } else {
                            output
                        };
                        commands::check_now(&c, output, &args.url).await
                    }
                    Err(e) => Err(e),
                },
            },
            Command::Targets(cmd) => match client() {
                Ok(c) => commands::targets(&c, output, cmd).await,
                Err(e) => Err(e),
            },
            Command::Apply {
                file,
                prune,
                dry_run,
            } => match client() {
                Ok(c) => commands::apply_file(&c, output, file, prune, dry_run).await,
                Err(e) => Err(e),
            },
            Command::Incidents(cmd) => match client() {
                Ok(c) => commands::incidents(&c, output, cmd).await,
                Err(e) => Err(e),
            },
            Command::Channels(cmd) => match client() {
                Ok(c) => channels::run(&c, output, cmd).await,
                Err(e) => Err(e),
            },
            Command::Status => match client() {
                Ok(c) => commands::status(&c, output).await,
                Err(e) => Err(e),
            },
            Command::Keys(cmd) => commands::keys(client, output, cmd).await,
            Command::Dlq(cmd) => dlq::run(cmd).await,
            // Reading files and SQLite: blocking work, off the async workers.
            Command::Import(cmd) => tokio::task::spawn_blocking(move || import::run(cmd))
                .await
                .unwrap_or_else(|e| Err(client::CliError::Failed(format!("import failed: {e}")))),
        };
        match result {
            Ok(code) => code,
            Err(e) => {
                eprintln!("netmon: {}", e.message());
                e.code()
            }
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
    let mut config = match netmon_up::config::load(&config_path) {
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
    let tenant = config.tenant.clone();
    let running = match netmon_up::start(netmon_up::Options::new(config)).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("netmon: {e}");
            return exit::FAILED;
        }
    };
    if let Some(key) = running.initial_admin_key() {
        // Shown once, alone on stdout: never on stderr with the logs (which are often kept),
        // never shown again.
        eprintln!(
            "netmon up: created the first admin API key; it is printed on stdout, shown only \
             now (another one: `netmon keys create --store FILE`)"
        );
        println!("{key}");
    }
    eprintln!(
        "netmon up: {targets} target(s) from {}, API on http://{} — Ctrl-C to stop",
        config_path.display(),
        running.api_addr()
    );
    let base = running.base_url();
    eprintln!("netmon up: dashboard   {base}");
    eprintln!("netmon up: status page {base}status/{tenant} (targets marked public: true)");
    if let Some(link) = running.sign_in_link().await {
        // A credential for 15 minutes and one use: on stdout like the key, not with the logs.
        eprintln!("netmon up: a one-time dashboard sign-in link (15 min, one use) is on stdout");
        println!("{link}");
    }
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
