//! [`SqsDrain`]: a queue a scheduled function empties itself, without an event source mapping
//! (the recorder's recorder-in, `resources::DRAINS`). Receives up to ten messages a call and
//! deletes the ones the caller finished with `DeleteMessageBatch`. A message never deleted
//! reappears after the queue's visibility timeout with a higher receive count, and the queue's
//! redrive policy moves it to its dead-letter queue after `maxReceiveCount` receives, as with
//! an event source.

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use futures::stream::{self, StreamExt};

use crate::clients::classify_sdk_error;
use crate::sqs::MAX_BATCH_ENTRIES;

/// One received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub message_id: String,
    /// What deletes it (valid until its visibility timeout ends).
    pub receipt_handle: String,
    /// `None`: SQS sent no body (never for netmon's messages).
    pub body: Option<String>,
    /// `ApproximateReceiveCount`: 1 on the first receive.
    pub receive_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    #[error("SQS ReceiveMessage on {queue}: {reason}")]
    Receive { queue: String, reason: String },
    #[error("SQS DeleteMessageBatch on {queue}: {reason}")]
    Delete { queue: String, reason: String },
}

/// `DeleteMessageBatch` requests in flight at once.
const DELETES_IN_FLIGHT: usize = 4;

pub struct SqsDrain {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl SqsDrain {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    /// Up to `max` (at most 10) messages, waiting up to `wait_secs` for the first. Messages
    /// without an id or receipt handle cannot be deleted and are left to the redrive policy.
    pub async fn receive(&self, max: usize, wait_secs: u32) -> Result<Vec<Received>, DrainError> {
        let max = i32::try_from(max.clamp(1, MAX_BATCH_ENTRIES)).unwrap_or(10);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(i32::try_from(wait_secs.min(20)).unwrap_or(20))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| DrainError::Receive {
                queue: self.queue_url.clone(),
                reason: classify_sdk_error(&e).1,
            })?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                let receive_count = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1);
                Some(Received {
                    message_id: m.message_id?,
                    receipt_handle: m.receipt_handle?,
                    body: m.body,
                    receive_count,
                })
            })
            .collect())
    }

    /// Deletes the messages of these receipt handles, ten a request, a few requests at once.
    /// Returns how many SQS confirmed; the others (named in the error or refused) reappear
    /// later, which costs a rewrite of the same results, never a loss.
    pub async fn delete(&self, receipts: &[&str]) -> Result<usize, DrainError> {
        let answers: Vec<Result<(usize, Vec<String>), DrainError>> =
            stream::iter(receipts.chunks(MAX_BATCH_ENTRIES))
                .map(|chunk| self.delete_batch(chunk))
                .buffer_unordered(DELETES_IN_FLIGHT)
                .collect()
                .await;
        let (mut deleted, mut refused) = (0, Vec::new());
        for answer in answers {
            let (n, codes) = answer?;
            deleted += n;
            refused.extend(codes);
        }
        if refused.is_empty() {
            return Ok(deleted);
        }
        Err(DrainError::Delete {
            queue: self.queue_url.clone(),
            reason: format!(
                "{} of {} entries refused ({}); {deleted} deleted",
                refused.len(),
                receipts.len(),
                refused.join(", ")
            ),
        })
    }

    /// One `DeleteMessageBatch`: how many it deleted, and the error codes of those refused.
    async fn delete_batch(&self, chunk: &[&str]) -> Result<(usize, Vec<String>), DrainError> {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, r)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("d{i}"))
                    .receipt_handle(*r)
                    .build()
                    .map_err(|e| DrainError::Delete {
                        queue: self.queue_url.clone(),
                        reason: format!("building an entry: {e}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| DrainError::Delete {
                queue: self.queue_url.clone(),
                reason: classify_sdk_error(&e).1,
            })?;
        Ok((
            out.successful().len(),
            out.failed().iter().map(|f| f.code().to_owned()).collect(),
        ))
    }
}
