//! The recorder Lambda, invoked by its schedule; drains recorder-in itself
//! (`netmon_lambda::functions::recorder`).

use netmon_aws::clients::Clients;
use netmon_lambda::env::Env;
use netmon_lambda::error::InitError;
use netmon_lambda::functions::recorder::{RecorderConfig, recorder};
use netmon_lambda::{runtime, sdk};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    runtime::init_tracing();
    let env = Env::process();
    let config = RecorderConfig::from_env(&env)?;
    let clients = Clients::new(&sdk::for_lambda(&env)?);
    recorder(&clients, config).serve().await
}
