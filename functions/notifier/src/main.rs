//! The notifier Lambda, fed by notifier-in (`netmon_lambda::functions::notifier`).

use netmon_aws::clients::Clients;
use netmon_lambda::env::Env;
use netmon_lambda::error::InitError;
use netmon_lambda::functions::notifier::{NotifierConfig, notifier};
use netmon_lambda::{runtime, sdk};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    runtime::init_tracing();
    let env = Env::process();
    let config = NotifierConfig::from_env(&env)?;
    let clients = Clients::new(&sdk::for_lambda(&env)?);
    runtime::serve_sqs(notifier(&clients, config)?).await
}
