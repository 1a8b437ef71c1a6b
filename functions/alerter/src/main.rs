//! The alerter Lambda, fed by alerter-in (`netmon_lambda::functions::alerter`).

use netmon_aws::clients::Clients;
use netmon_lambda::env::Env;
use netmon_lambda::error::InitError;
use netmon_lambda::functions::alerter::{AlerterConfig, alerter};
use netmon_lambda::{runtime, sdk};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    runtime::init_tracing();
    let env = Env::process();
    let config = AlerterConfig::from_env(&env)?;
    let clients = Clients::new(&sdk::for_lambda(&env)?);
    runtime::serve_sqs(alerter(&clients, config)).await
}
