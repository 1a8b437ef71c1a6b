//! The prober Lambda, fed by probe-jobs: probes each job's targets and publishes one
//! `probe.completed` per job (`netmon_aws::functions::ProberFunction`).

use netmon_aws::clients::{self, Clients};
use netmon_aws::env::Env;
use netmon_aws::functions::{ProberConfig, ProberFunction};
use netmon_aws::lambda::{self, InitError};
use netmon_aws::resources::{
    ENV_ALLOW_LINK_LOCAL, ENV_ALLOW_PRIVATE, ENV_LOCATION, ENV_PROBE_RESULTS_TOPIC_ARN,
};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    lambda::init_tracing();
    let env = Env::process();
    let location = match env.optional(ENV_LOCATION)? {
        Some(location) => location,
        None => env.required("AWS_REGION")?,
    };
    let config = ProberConfig {
        probe_results_topic_arn: env.required(ENV_PROBE_RESULTS_TOPIC_ARN)?,
        location,
        allow_private: env.flag(ENV_ALLOW_PRIVATE, false)?,
        allow_link_local: env.flag(ENV_ALLOW_LINK_LOCAL, false)?,
    };
    let clients = Clients::new(&clients::for_lambda(&env)?);
    lambda::serve_sqs(ProberFunction::new(&clients, config)?).await
}
