//! SDK configuration, built once per cold start and shared by every client.

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The service clients, built once per cold start. Cloning is cheap (the SDK clients are
/// `Arc`s inside).
#[derive(Debug, Clone)]
pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sns: aws_sdk_sns::Client,
    pub sqs: aws_sdk_sqs::Client,
    /// Email channels on AWS (the notifier and the API's test sends).
    pub ses: aws_sdk_sesv2::Client,
}

impl Clients {
    /// Clients without call counting.
    pub fn new(sdk: &SdkConfig) -> Self {
        Self::builder(sdk).build()
    }

    pub fn builder(sdk: &SdkConfig) -> ClientsBuilder<'_> {
        ClientsBuilder {
            sdk,
            interceptors: Vec::new(),
        }
    }
}

pub struct ClientsBuilder<'a> {
    sdk: &'a SdkConfig,
    interceptors: Vec<SharedInterceptor>,
}

impl ClientsBuilder<'_> {
    /// Runs `interceptor` on every call of the three clients, after those added before it
    /// (tests count calls and inject faults this way; interceptors live in each client's
    /// config, so all three get it).
    pub fn interceptor(mut self, interceptor: Option<SharedInterceptor>) -> Self {
        self.interceptors.extend(interceptor);
        self
    }

    pub fn build(self) -> Clients {
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(self.sdk);
        let mut sns = aws_sdk_sns::config::Builder::from(self.sdk);
        let mut sqs = aws_sdk_sqs::config::Builder::from(self.sdk);
        let mut ses = aws_sdk_sesv2::config::Builder::from(self.sdk);
        for interceptor in self.interceptors {
            dynamodb = dynamodb.interceptor(interceptor.clone());
            sns = sns.interceptor(interceptor.clone());
            sqs = sqs.interceptor(interceptor.clone());
            ses = ses.interceptor(interceptor);
        }
        Clients {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            sns: aws_sdk_sns::Client::from_conf(sns.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
            ses: aws_sdk_sesv2::Client::from_conf(ses.build()),
        }
    }
}

/// What the caller should do about a failed SDK call (after the SDK's own retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkFailure {
    /// Throttling, 5xx, timeouts, connection failures: retry later.
    Transient,
    /// The request (or a batch of it) exceeded a service size limit.
    TooLarge,
    /// Anything else (validation, missing resource, access denied): retrying the same request
    /// will not help until someone changes the request or the deployment.
    Other,
}

/// Error codes that mean "slow down" across DynamoDB, SNS and SQS.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "Throttled",
    "RequestThrottled",
    "RequestThrottledException",
    "AWS.SimpleQueueService.RequestThrottled",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "BandwidthLimitExceeded",
    "SlowDown",
    "PriorRequestNotComplete",
    "TransactionInProgressException",
    "KMSThrottling",
    "KMSThrottlingException",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
];

const TOO_LARGE_CODES: &[&str] = &[
    "BatchRequestTooLong",
    "AWS.SimpleQueueService.BatchRequestTooLong",
    "RequestEntityTooLarge",
];

/// Classifies an SDK error and describes it (code, message and source chain) for logs and
/// error values.
pub fn classify_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> (SdkFailure, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let kind = match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SdkFailure::Transient
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let code = err.code().unwrap_or_default();
            if TOO_LARGE_CODES.contains(&code) || status == 413 {
                SdkFailure::TooLarge
            } else if status >= 500 || status == 429 || THROTTLING_CODES.contains(&code) {
                SdkFailure::Transient
            } else {
                SdkFailure::Other
            }
        }
        _ => SdkFailure::Other,
    };
    (kind, DisplayErrorContext(err).to_string())
}

/// A failed publish or send as the event bus reports it: too large is final, the rest retryable.
pub(crate) fn bus_error<E>(
    what: &str,
    err: &SdkError<E, HttpResponse>,
) -> netmon_core::ports::BusError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (kind, msg) = classify_sdk_error(err);
    match kind {
        SdkFailure::TooLarge => netmon_core::ports::BusError::TooLarge(format!("{what}: {msg}")),
        SdkFailure::Transient | SdkFailure::Other => {
            netmon_core::ports::BusError::Unavailable(format!("{what}: {msg}"))
        }
    }
}
