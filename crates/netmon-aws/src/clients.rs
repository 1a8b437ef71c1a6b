//! SDK configuration, built once per cold start and shared by every client.

use aws_config::{BehaviorVersion, Region, SdkConfig};

/// From the Lambda environment: role credentials, `AWS_REGION`, and `AWS_ENDPOINT_URL` /
/// `AWS_ENDPOINT_URL_<SERVICE>` when set (LocalStack, moto), all read by aws-config itself.
pub async fn from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

/// An emulator at `endpoint` with dummy static credentials. Used by tests and `netmon dev`,
/// where setting process environment variables is not an option.
pub async fn for_endpoint(endpoint: &str, region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test",
            "test",
            None,
            None,
            "netmon-emulator",
        ))
        .load()
        .await
}
