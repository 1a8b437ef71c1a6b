//! The alerter Lambda, fed by alerter-in: applies probe results to check state, writing state,
//! incident and outbox event in one transaction (`netmon_aws::functions::AlerterFunction`).

use netmon_aws::clients::{self, Clients};
use netmon_aws::env::Env;
use netmon_aws::functions::{AlerterConfig, AlerterFunction};
use netmon_aws::lambda::{self, InitError};
use netmon_aws::resources::{ENV_INCIDENTS_TOPIC_ARN, ENV_STATE_TABLE};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    lambda::init_tracing();
    let env = Env::process();
    let config = AlerterConfig {
        state_table: env.required(ENV_STATE_TABLE)?,
        incidents_topic_arn: env.required(ENV_INCIDENTS_TOPIC_ARN)?,
    };
    let clients = Clients::new(&clients::for_lambda(&env)?);
    lambda::serve_sqs(AlerterFunction::new(&clients, config)).await
}
