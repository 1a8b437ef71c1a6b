//! The notifier Lambda, fed by notifier-in: delivers each incident event to each channel once
//! (`netmon_aws::functions::NotifierFunction`).

use netmon_aws::clients::{self, Clients};
use netmon_aws::env::Env;
use netmon_aws::functions::{NotifierConfig, NotifierFunction};
use netmon_aws::lambda::{self, InitError};
use netmon_aws::resources::{ENV_ALLOW_LINK_LOCAL, ENV_ALLOW_PRIVATE, ENV_STATE_TABLE};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    lambda::init_tracing();
    let env = Env::process();
    let config = NotifierConfig {
        state_table: env.required(ENV_STATE_TABLE)?,
        allow_private: env.flag(ENV_ALLOW_PRIVATE, false)?,
        allow_link_local: env.flag(ENV_ALLOW_LINK_LOCAL, false)?,
    };
    let clients = Clients::new(&clients::for_lambda(&env)?);
    lambda::serve_sqs(NotifierFunction::new(&clients, config)?).await
}
