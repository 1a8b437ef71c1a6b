//! `netmon import gatus FILE` and `netmon import uptime-kuma kuma.db`: convert another monitor's
//! configuration into a `netmon apply -f` file. Whatever cannot be carried over exactly is
//! reported by name with the reason (never dropped silently); exit 0 when everything converted,
//! 1 when something was reported, 2 when the input is not what it should be (then nothing is
//! written).

mod emit;
mod gatus;
mod kuma;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use netmon_core::channel::ChannelSpec;
use netmon_core::target::{TargetSpec, is_valid_tag};

use crate::client::CliError;
use crate::exit;

#[derive(Subcommand, Debug)]
pub enum ImportCmd {
    /// Convert a Gatus config file (endpoints, external endpoints, alerting) into a netmon file.
    Gatus {
        /// Gatus's config.yaml. Environment variables in it are expanded as Gatus does.
        file: PathBuf,
        /// Where to write the netmon file (standard output when absent).
        #[arg(long = "out", short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Convert an Uptime Kuma database (1.23 or 2.x, opened read-only) into a netmon file.
    UptimeKuma {
        /// Kuma's kuma.db (in its data directory).
        db: PathBuf,
        /// Where to write the netmon file (standard output when absent).
        #[arg(long = "out", short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// What an importer produced: resources in the order they were found, and the report.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    /// What the input was found to be (`Uptime Kuma 1.23 …`), when worth saying.
    pub read_as: Option<String>,
    pub channels: Vec<ChannelSpec>,
    pub targets: Vec<TargetSpec>,
    pub report: Report,
}

/// One line of the report: what (`endpoint "core_api"`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Note {
    pub subject: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Not carried over, or carried over with another meaning: exit code 1.
    pub skipped: Vec<Note>,
    /// Settings that change neither what is checked nor who is told (dashboards, servers).
    pub ignored: Vec<Note>,
}

impl Report {
    pub fn skip(&mut self, subject: impl Into<String>, reason: impl Into<String>) {
        self.skipped.push(Note {
            subject: subject.into(),
            reason: reason.into(),
        });
    }

    pub fn ignore(&mut self, subject: impl Into<String>, reason: impl Into<String>) {
        self.ignored.push(Note {
            subject: subject.into(),
            reason: reason.into(),
        });
    }

    /// Report lines, one per reason, naming every subject it applies to, in the order found.
    fn lines(notes: &[Note]) -> Vec<String> {
        let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
        for n in notes {
            match reasons.iter_mut().find(|(r, _)| *r == n.reason) {
                Some((_, subjects)) => {
                    if !subjects.contains(&n.subject.as_str()) {
                        subjects.push(&n.subject);
                    }
                }
                None => reasons.push((&n.reason, vec![&n.subject])),
            }
        }
        reasons
            .into_iter()
            .map(|(reason, subjects)| format!("{}: {reason}", subjects.join(", ")))
            .collect()
    }

    pub fn skipped_lines(&self) -> Vec<String> {
        Self::lines(&self.skipped)
    }

    pub fn ignored_lines(&self) -> Vec<String> {
        Self::lines(&self.ignored)
    }
}

/// Runs an import: converts, writes the file (or standard output), prints the report on
/// standard error, and returns the exit code.
pub fn run(cmd: ImportCmd) -> Result<u8, CliError> {
    let (converted, source, output, what) = match cmd {
        ImportCmd::Gatus { file, out } => {
            let text = std::fs::read(&file)
                .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
            let text = String::from_utf8(text).map_err(|_| {
                CliError::Usage(format!(
                    "{} is not a Gatus config: it is not UTF-8 text",
                    file.display()
                ))
            })?;
            let env = |name: &str| std::env::var(name).ok();
            let converted = gatus::convert(&text, &file.display().to_string(), &env)?;
            (converted, file, out, "Gatus config")
        }
        ImportCmd::UptimeKuma { db, out } => {
            let converted = kuma::convert(&db)?;
            (converted, db, out, "Uptime Kuma database")
        }
    };
    let read_as = converted
        .read_as
        .as_ref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let header = format!(
        "netmon channels and targets imported from the {what} {}{read_as}\n\
         by `netmon import`. Check with `netmon apply -f FILE --dry-run`, then apply.",
        source.display()
    );
    let yaml = emit::to_yaml(&converted, &header).map_err(CliError::Failed)?;
    match &output {
        Some(path) => write_atomically(path, &yaml)?,
        None => print!("{yaml}"),
    }
    print_summary(&converted, output.as_deref());
    Ok(if converted.report.skipped.is_empty() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn print_summary(c: &Converted, output: Option<&Path>) {
    let dest = output.map_or_else(|| "standard output".to_owned(), |p| p.display().to_string());
    if let Some(r) = &c.read_as {
        eprintln!("netmon import: read {r}");
    }
    eprintln!(
        "netmon import: {} target(s) and {} channel(s) written to {dest}",
        c.targets.len(),
        c.channels.len()
    );
    let skipped = c.report.skipped_lines();
    if !skipped.is_empty() {
        eprintln!("Not carried over, or carried over differently (exit code 1):");
        for line in &skipped {
            eprintln!("  - {line}");
        }
    }
    let ignored = c.report.ignored_lines();
    if !ignored.is_empty() {
        eprintln!("Ignored (they change neither what is checked nor who is told):");
        for line in &ignored {
            eprintln!("  - {line}");
        }
    }
}

/// The whole file or nothing: a temporary file beside it, renamed over it.
fn write_atomically(path: &Path, text: &str) -> Result<(), CliError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "monitors.yaml".to_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let fail =
        |e: std::io::Error| CliError::Failed(format!("cannot write {}: {e}", path.display()));
    // The file holds the imported secrets (headers, webhook URLs): readable by its owner only.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&tmp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

/// Hands out netmon ids (1-64 of `A-Za-z0-9._-`, starting with a letter or digit) made from
/// names, unique within one import: `-2`, `-3`… on clashes.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    used: HashSet<String>,
}

impl Ids {
    pub fn make(&mut self, wanted: &str, fallback: &str) -> String {
        let mut base = id_chars(wanted);
        if base.is_empty() {
            base = id_chars(fallback);
        }
        if base.is_empty() {
            base = "imported".to_owned();
        }
        let mut id = base.clone();
        let mut n = 1;
        while self.used.contains(&id) {
            n += 1;
            let suffix = format!("-{n}");
            let keep: String = base.chars().take(64 - suffix.len()).collect();
            id = format!("{}{suffix}", keep.trim_end_matches('-'));
        }
        self.used.insert(id.clone());
        id
    }
}

/// Letters, digits, `.`, `_` and `-` of `s` (others become `-`), without leading or repeated
/// separators, at most 64 characters.
fn id_chars(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_start_matches(['-', '.', '_']);
    let out: String = out.chars().take(64).collect();
    out.trim_end_matches('-').to_owned()
}

/// A netmon tag from a name such as a Gatus group or a Kuma tag: invalid characters become
/// `-`; `None` when nothing usable is left.
pub(crate) fn tag(s: &str) -> Option<String> {
    let t: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let t = t.trim_matches('-').to_owned();
    is_valid_tag(&t).then_some(t)
}

/// Id of the log channel given to targets that had no alert: netmon notifies every channel
/// for a target that names none, Gatus and Kuma nobody.
pub(crate) const NO_ALERTS: &str = "no-alerts";

/// Why an imported heartbeat token was left out: netmon takes only tokens that are hard to guess.
pub(crate) const TOKEN_REPLACED: &str = "the token is not 16 to 128 characters of letters, digits, \
     - and _: netmon generates one (see `netmon targets show`); point the job at the new /ping URL";

pub(crate) fn no_alerts_channel() -> ChannelSpec {
    ChannelSpec::new(
        netmon_core::ChannelId::parse(NO_ALERTS).expect("a valid id"),
        "Targets that had no alerts (their events are only logged)",
        netmon_core::channel::ChannelKind::Log(Default::default()),
    )
}

pub(crate) fn human(d: std::time::Duration) -> String {
    netmon_core::duration::format_duration(d)
}

/// `d` within netmon's range for `what`; a change is reported.
pub(crate) fn clamp(
    report: &mut Report,
    subject: &str,
    what: &str,
    d: std::time::Duration,
    min: std::time::Duration,
    max: std::time::Duration,
) -> std::time::Duration {
    let clamped = d.clamp(min, max);
    if clamped != d {
        report.skip(
            subject.to_owned(),
            format!(
                "{what} {} is outside netmon's range ({} to {}): {} is used",
                human(d),
                human(min),
                human(max),
                human(clamped)
            ),
        );
    }
    clamped
}

/// `"name"` for report subjects.
pub(crate) fn quoted(kind: &str, name: &str) -> String {
    format!("{kind} {name:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_and_unique() {
        let mut ids = Ids::default();
        let table = [
            ("core_frontend", "x", "core_frontend"),
            ("core_frontend", "x", "core_frontend-2"),
            ("core_frontend", "x", "core_frontend-3"),
            ("  Web site / API  ", "x", "Web-site-API"),
            ("_name", "x", "name"),
            ("ünïcødé", "x", "n-c-d"),
            ("日本", "fallback 1", "fallback-1"),
            ("", "", "imported"),
        ];
        for (wanted, fallback, want) in table {
            let id = ids.make(wanted, fallback);
            assert_eq!(id, want, "{wanted:?}");
            assert!(netmon_core::ids::validate_id(&id).is_ok(), "{id}");
        }
        let long = "a".repeat(80);
        let first = ids.make(&long, "x");
        let second = ids.make(&long, "x");
        assert_eq!(first.len(), 64);
        assert_eq!(second, format!("{}-2", "a".repeat(62)));
    }

    #[test]
    fn tags_are_valid_or_absent() {
        assert_eq!(tag("Core Services").as_deref(), Some("Core-Services"));
        assert_eq!(tag("env:prod").as_deref(), Some("env:prod"));
        assert_eq!(tag("  ").as_deref(), None);
        assert_eq!(tag("日本").as_deref(), None);
        assert_eq!(tag(&"x".repeat(100)).map(|t| t.len()), Some(64));
    }

    #[test]
    fn report_groups_subjects_by_reason() {
        let mut r = Report::default();
        r.skip("endpoint \"a\"", "no slack channel");
        r.skip("endpoint \"b\"", "ssh is not supported");
        r.skip("endpoint \"c\"", "no slack channel");
        r.skip("endpoint \"a\"", "no slack channel");
        assert_eq!(
            r.skipped_lines(),
            [
                "endpoint \"a\", endpoint \"c\": no slack channel",
                "endpoint \"b\": ssh is not supported"
            ]
        );
    }
}
