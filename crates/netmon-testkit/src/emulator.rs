//! The local AWS emulator (moto server) for tests: started on demand through
//! `scripts/emulator`, and provisioned through the same resource script LocalStack runs
//! (`localstack/init/ready.d/netmon-resources.sh`, which builds what `infra/contract.json`
//! declares), so tests exercise the real topology.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/netmon-testkit sits two levels below the repository root")
        .to_path_buf()
}

#[derive(Debug, Clone)]
pub struct Emulator {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub region: String,
}

/// Starts moto (once per machine; reused across test processes) and returns where it listens.
pub fn start() -> &'static Emulator {
    static EMULATOR: OnceLock<Emulator> = OnceLock::new();
    EMULATOR.get_or_init(|| {
        let out = Command::new(repo_root().join("scripts/emulator"))
            .arg("start")
            .output()
            .expect("run scripts/emulator start");
        assert!(
            out.status.success(),
            "scripts/emulator start failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let vars = parse_env(&String::from_utf8_lossy(&out.stdout));
        Emulator {
            endpoint: vars
                .get("AWS_ENDPOINT_URL")
                .cloned()
                .expect("scripts/emulator printed AWS_ENDPOINT_URL"),
            region: vars
                .get("AWS_REGION")
                .cloned()
                .unwrap_or_else(|| "us-east-1".into()),
        }
    })
}

/// Resource names, URLs and ARNs emitted by the resource script (`NETMON_STATE_TABLE`, …).
#[derive(Debug, Clone)]
pub struct Resources {
    pub prefix: String,
    pub vars: BTreeMap<String, String>,
}

impl Resources {
    pub fn get(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("resource script did not emit {key}: {:?}", self.vars))
    }
}

/// A short, unique, lowercase prefix for one test's resources.
pub fn unique_prefix(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tag: String = tag
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect::<String>()
        .to_lowercase();
    format!(
        "t{}{n}{:x}-{tag}",
        std::process::id() % 100_000,
        nanos % 0xffff
    )
}

/// Creates a fresh set of queues, topics and tables named `<prefix>-…` on the emulator.
/// `visibility_timeout_s` replaces every queue's visibility timeout so redelivery tests run
/// in seconds.
pub fn provision(prefix: &str, visibility_timeout_s: u32) -> Resources {
    run_resource_script(prefix, Some(visibility_timeout_s))
}

/// Like [`provision`], with every setting as deployed (visibility timeouts from the contract).
pub fn provision_as_deployed(prefix: &str) -> Resources {
    run_resource_script(prefix, None)
}

fn run_resource_script(prefix: &str, visibility_timeout_s: Option<u32>) -> Resources {
    let emulator = start();
    let env_file = std::env::temp_dir().join(format!("netmon-resources-{prefix}.env"));
    let mut script = Command::new(repo_root().join("localstack/init/ready.d/netmon-resources.sh"));
    script
        .arg("--env-file")
        .arg(&env_file)
        .env("AWS_ENDPOINT_URL", &emulator.endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", &emulator.region)
        .env("NETMON_PREFIX", prefix)
        .env_remove("NETMON_VISIBILITY_TIMEOUT");
    if let Some(seconds) = visibility_timeout_s {
        script.env("NETMON_VISIBILITY_TIMEOUT", seconds.to_string());
    }
    let out = script.output().expect("run the resource script");
    assert!(
        out.status.success(),
        "resource script failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&env_file).expect("resource env file");
    let _ = std::fs::remove_file(&env_file);
    Resources {
        prefix: prefix.to_owned(),
        vars: parse_env(&text),
    }
}

/// Resources provisioned once per emulator instance for `tag` and shared by every test process
/// that asks (store suites isolate by unique tenant ids, so they can share tables).
pub fn shared(tag: &str) -> Resources {
    static CACHE: OnceLock<std::sync::Mutex<BTreeMap<String, Resources>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(r) = cache.get(tag) {
        return r.clone();
    }
    let emulator = start();
    let port = emulator
        .endpoint
        .rsplit(':')
        .next()
        .unwrap_or("0")
        .to_owned();
    let dir = repo_root().join(".emulator");
    let marker = dir.join(format!("shared-{tag}-{port}.env"));
    // One process provisions; the others wait on the lock and read its output.
    let lock = std::fs::File::create(dir.join(format!("shared-{tag}.lock"))).expect("lock file");
    lock.lock().expect("lock shared resources");
    let resources = match std::fs::read_to_string(&marker) {
        Ok(text) => Resources {
            prefix: format!("shared-{tag}"),
            vars: parse_env(&text),
        },
        Err(_) => {
            let r = provision(&format!("shared-{tag}"), 2);
            let text: String = r.vars.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            std::fs::write(&marker, text).expect("write shared marker");
            r
        }
    };
    let _ = lock.unlock();
    cache.insert(tag.to_owned(), resources.clone());
    resources
}

/// Async wrapper: provisioning shells out, which must not block a runtime worker.
pub async fn provision_async(prefix: String, visibility_timeout_s: u32) -> Resources {
    tokio::task::spawn_blocking(move || provision(&prefix, visibility_timeout_s))
        .await
        .expect("provisioning task")
}

pub async fn provision_as_deployed_async(prefix: String) -> Resources {
    tokio::task::spawn_blocking(move || provision_as_deployed(&prefix))
        .await
        .expect("provisioning task")
}

pub async fn shared_async(tag: &'static str) -> Resources {
    tokio::task::spawn_blocking(move || shared(tag))
        .await
        .expect("provisioning task")
}

fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("export ").unwrap_or(l.trim());
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}
