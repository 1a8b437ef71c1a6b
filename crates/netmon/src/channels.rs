//! `netmon channels ls` and `netmon channels test ID`: list the tenant's channels (credentials
//! show as markers, as the API returns them) and send one a test notification, a sample incident
//! rendered exactly as real ones are, reporting what the provider answered.

use clap::Subcommand;
use serde_json::Value;

use crate::client::{CliError, Client, encode};
use crate::commands::Output;
use crate::exit;

#[derive(Subcommand)]
pub enum ChannelsCmd {
    /// Every channel: id, kind, events, default.
    Ls,
    /// Send a test notification now (exit 1 if the channel refused it).
    Test {
        /// The channel id.
        id: String,
    },
}

/// The wire key that names the kind (`slack`, `pagerduty`…).
fn kind_of(spec: &Value) -> String {
    const NOT_KINDS: [&str; 4] = ["id", "name", "events", "default"];
    spec.as_object()
        .and_then(|o| o.keys().find(|k| !NOT_KINDS.contains(&k.as_str())).cloned())
        .unwrap_or_else(|| "?".to_owned())
}

pub async fn run(client: &Client, out: Output, cmd: ChannelsCmd) -> Result<u8, CliError> {
    match cmd {
        ChannelsCmd::Ls => {
            let r = client.get("/v1/channels").await?;
            if out == Output::Json {
                crate::commands::print_json(&r);
                return Ok(exit::OK);
            }
            let items = r["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no channels");
                return Ok(exit::OK);
            }
            for c in &items {
                let spec = &c["spec"];
                let events = spec["events"].as_array().map_or_else(
                    || "all events".to_owned(),
                    |e| {
                        e.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(",")
                    },
                );
                let default = if spec["default"] == true {
                    "  default"
                } else {
                    ""
                };
                println!(
                    "{}  {}  {events}{default}",
                    spec["id"].as_str().unwrap_or("?"),
                    kind_of(spec)
                );
            }
            Ok(exit::OK)
        }
        ChannelsCmd::Test { id } => {
            let r = client
                .call(
                    reqwest::Method::POST,
                    &format!("/v1/channels/{}/test", encode(&id)),
                    None,
                )
                .await?;
            let delivered = r["delivered"] == true;
            if out == Output::Json {
                crate::commands::print_json(&r);
            } else if delivered {
                println!("channel {id}: test notification accepted");
            } else {
                println!(
                    "channel {id}: not delivered: {}",
                    r["error"].as_str().unwrap_or("no reason given")
                );
            }
            Ok(if delivered { exit::OK } else { exit::FAILED })
        }
    }
}
