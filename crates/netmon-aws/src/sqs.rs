//! sqs (being written)
