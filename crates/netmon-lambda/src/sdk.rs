//! SDK configuration for a function: exactly what Lambda provides, read once at init.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::SharedCredentialsProvider;

use crate::env::{Env, EnvError};

/// `AWS_REGION`, the role's credentials in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
/// `AWS_SESSION_TOKEN`, and `AWS_ENDPOINT_URL` when set (LocalStack, moto). aws-config's default
/// chains (profiles, SSO, STS web identity and assume-role, IMDS, ECS) are never used in Lambda;
/// leaving them out keeps their code, STS client included, out of every function's binary.
pub fn for_lambda(env: &Env) -> Result<SdkConfig, EnvError> {
    let region = env.required("AWS_REGION")?;
    let mut sdk = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ));
    if let Some(url) = env.optional("AWS_ENDPOINT_URL")? {
        sdk = sdk.endpoint_url(url);
    }
    Ok(sdk.build())
}
