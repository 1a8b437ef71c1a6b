//! DynamoDB adapters for the store ports. Key design: docs/dynamodb.md.

pub mod history;
pub mod state;
