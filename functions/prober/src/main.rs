//! The prober Lambda, fed by probe-jobs (`netmon_lambda::functions::prober`).

use netmon_aws::clients::Clients;
use netmon_lambda::env::Env;
use netmon_lambda::error::InitError;
use netmon_lambda::functions::prober::{ProberConfig, prober};
use netmon_lambda::{runtime, sdk};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    runtime::init_tracing();
    let env = Env::process();
    let config = ProberConfig::from_env(&env)?;
    let clients = Clients::new(&sdk::for_lambda(&env)?);
    runtime::serve_sqs(prober(&clients, config)?).await
}
