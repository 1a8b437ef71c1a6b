//! The api Lambda behind API Gateway (HTTP API, payload format 2.0): the router `netmon up`
//! serves, over the DynamoDB stores and the SNS bus (`netmon_aws::functions::api_router`).

use netmon_aws::clients::{self, Clients};
use netmon_aws::env::Env;
use netmon_aws::functions::{ApiConfig, api_router};
use netmon_aws::lambda::{self, InitError};
use netmon_aws::resources::{
    ENV_ALLOW_LINK_LOCAL, ENV_ALLOW_PRIVATE, ENV_HISTORY_TABLE, ENV_PROBE_JOBS_QUEUE_URL,
    ENV_PROBE_RESULTS_TOPIC_ARN, ENV_STATE_TABLE, ENV_TARGET_CHANGES_TOPIC_ARN,
};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    lambda::init_tracing();
    let env = Env::process();
    let config = ApiConfig {
        state_table: env.required(ENV_STATE_TABLE)?,
        history_table: env.required(ENV_HISTORY_TABLE)?,
        probe_jobs_queue_url: env.required(ENV_PROBE_JOBS_QUEUE_URL)?,
        probe_results_topic_arn: env.required(ENV_PROBE_RESULTS_TOPIC_ARN)?,
        target_changes_topic_arn: env.required(ENV_TARGET_CHANGES_TOPIC_ARN)?,
        allow_private: env.flag(ENV_ALLOW_PRIVATE, false)?,
        allow_link_local: env.flag(ENV_ALLOW_LINK_LOCAL, false)?,
    };
    let clients = Clients::new(&clients::for_lambda(&env)?);
    lambda_http::run(api_router(&clients, config)?)
        .await
        .map_err(|e| InitError::new(format!("Lambda runtime: {e}")))
}
