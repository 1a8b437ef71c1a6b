//! Cloud adapters for netmon's ports: the DynamoDB stores ([`dynamo`]), the SNS event bus
//! ([`sns`]), the SQS job queue ([`sqs`]), the drained queue of a scheduled function ([`sqs_drain`]), the SES mailer ([`ses`]), the SDK clients they share ([`clients`]) and the
//! resource contract ([`resources`]), written once and rendered to `infra/contract.json`,
//! from which infra/ and the moto/LocalStack resource script are built and checked.
//!
//! May depend on: `netmon-core` only. The Lambda host (`netmon-lambda`) wires these adapters to
//! the services; test-only code (the event-source runner, call counting) is in
//! `netmon-lambda-testkit`.

pub mod clients;
pub mod dynamo;
pub mod resources;
pub mod ses;
pub mod sns;
pub mod sqs;
pub mod sqs_drain;
