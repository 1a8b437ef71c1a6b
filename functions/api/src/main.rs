//! The api Lambda behind API Gateway (HTTP API, payload format 2.0)
//! (`netmon_lambda::functions::api`).

use netmon_aws::clients::Clients;
use netmon_lambda::env::Env;
use netmon_lambda::error::InitError;
use netmon_lambda::functions::api::{ApiConfig, api_router};
use netmon_lambda::{runtime, sdk};

#[tokio::main]
async fn main() -> Result<(), InitError> {
    runtime::init_tracing();
    let env = Env::process();
    let config = ApiConfig::from_env(&env)?;
    let clients = Clients::new(&sdk::for_lambda(&env)?);
    lambda_http::run(api_router(&clients, config)?)
        .await
        .map_err(|e| InitError::new(format!("Lambda runtime: {e}")))
}
