//! The scheduler Lambda, invoked by the `rate(1 minute)` schedule: plans the minute's probe jobs
//! onto probe-jobs, turns missed heartbeats into failed results and sweeps the outbox
//! (`netmon_aws::functions::SchedulerFunction`).

use netmon_aws::clients::{self, Clients};
use netmon_aws::env::Env;
use netmon_aws::functions::{SchedulerConfig, SchedulerFunction};
use netmon_aws::lambda::{self, InitError};
use netmon_aws::resources::{
    ENV_INCIDENTS_TOPIC_ARN, ENV_PROBE_JOBS_QUEUE_URL, ENV_PROBE_RESULTS_TOPIC_ARN, ENV_STATE_TABLE,
};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    lambda::init_tracing();
    let env = Env::process();
    let config = SchedulerConfig {
        state_table: env.required(ENV_STATE_TABLE)?,
        probe_jobs_queue_url: env.required(ENV_PROBE_JOBS_QUEUE_URL)?,
        probe_results_topic_arn: env.required(ENV_PROBE_RESULTS_TOPIC_ARN)?,
        incidents_topic_arn: env.required(ENV_INCIDENTS_TOPIC_ARN)?,
    };
    let clients = Clients::new(&clients::for_lambda(&env)?);
    lambda::serve_schedule(SchedulerFunction::new(&clients, config)).await
}
