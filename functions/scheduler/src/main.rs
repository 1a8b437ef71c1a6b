//! The scheduler Lambda, invoked by the `rate(1 minute)` schedule
//! (`netmon_lambda::functions::scheduler`).

use netmon_aws::clients::Clients;
use netmon_lambda::env::Env;
use netmon_lambda::error::InitError;
use netmon_lambda::functions::scheduler::{SchedulerConfig, SchedulerFunction};
use netmon_lambda::{runtime, sdk};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    runtime::init_tracing();
    let env = Env::process();
    let config = SchedulerConfig::from_env(&env)?;
    let clients = Clients::new(&sdk::for_lambda(&env)?);
    SchedulerFunction::new(&clients, config).serve().await
}
