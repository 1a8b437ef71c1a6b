//! Shared by the CLI test files: the built binary, and `netmon up` as a child process.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

pub fn netmon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_netmon"))
}

/// A fresh directory under the system's temporary one, unique to this run.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "netmon-cli-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `netmon up` as a child process on port 0 with a fresh store: its API address and the admin
/// key it printed on first start. Stopped with SIGINT on drop.
pub struct Up {
    pub child: std::process::Child,
    pub api: String,
    pub key: String,
    pub dir: std::path::PathBuf,
}

impl Up {
    pub fn start(name: &str, targets_yaml: &str) -> Self {
        let dir = scratch(&format!("up-{name}"));
        let config = dir.join("netmon.yaml");
        std::fs::write(
            &config,
            format!(
                "listen: 127.0.0.1:0\nstore: {}\ntargets:{}\n{targets_yaml}",
                dir.join("n.db").display(),
                if targets_yaml.is_empty() { " []" } else { "" }
            ),
        )
        .unwrap();
        let mut child = netmon()
            .args(["up", "--config"])
            .arg(&config)
            .env("NETMON_LOG", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut api = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            // The key goes to stdout alone, never to stderr where the logs go.
            assert!(!line.contains("nmk_"), "the admin key on stderr: {line}");
            if let Some(rest) = line.split("API on ").nth(1) {
                api = rest.split_whitespace().next().map(str::to_owned);
                break;
            }
        }
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let key = out
            .next()
            .and_then(Result::ok)
            .filter(|l| l.starts_with("nmk_"));
        // Keep draining both pipes so the child never blocks on a full one.
        std::thread::spawn(move || for _ in lines {});
        std::thread::spawn(move || for _ in out {});
        Up {
            child,
            api: api.expect("ready line with the API address"),
            key: key.expect("the first start prints an admin key"),
            dir,
        }
    }

    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_with_key(Some(&self.key), args)
    }

    pub fn run_with_key(&self, key: Option<&str>, args: &[&str]) -> (i32, String, String) {
        let mut cmd = netmon();
        cmd.args(args)
            .env("NETMON_API", &self.api)
            .env_remove("NETMON_API_KEY");
        if let Some(k) = key {
            cmd.env("NETMON_API_KEY", k);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
