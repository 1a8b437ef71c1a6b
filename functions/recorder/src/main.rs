//! The recorder Lambda, fed by recorder-in: stores probe history blocks and hourly rollups
//! (`netmon_aws::functions::RecorderFunction`).

use netmon_aws::clients::{self, Clients};
use netmon_aws::env::Env;
use netmon_aws::functions::{RecorderConfig, RecorderFunction};
use netmon_aws::lambda::{self, InitError};
use netmon_aws::resources::ENV_HISTORY_TABLE;

#[tokio::main]
async fn main() -> Result<(), InitError> {
    lambda::init_tracing();
    let env = Env::process();
    let config = RecorderConfig {
        history_table: env.required(ENV_HISTORY_TABLE)?,
    };
    let clients = Clients::new(&clients::for_lambda(&env)?);
    lambda::serve_sqs(RecorderFunction::new(&clients, config)).await
}
