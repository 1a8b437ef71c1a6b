//! `netmon dlq`: a dead-letter queue is a parking lot, not a bin. Messages land there after
//! their queue's receive limit (a bug fixed since, a receiver down past the notifier's 26 hours);
//! `redrive` moves them back to their queue once the cause is fixed. Consumers are idempotent,
//! so a message moved twice (a crash between send and delete) does no harm.

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, SendMessageBatchRequestEntry};
use clap::Subcommand;

use crate::client::CliError;
use crate::exit;

#[derive(Subcommand)]
pub enum DlqCmd {
    /// How many messages wait in a queue (visible and in flight).
    Count {
        /// The queue's URL (stack outputs name each dead-letter queue).
        #[arg(long, value_name = "URL")]
        queue: String,
    },
    /// Move every message of a dead-letter queue back to the queue it came from.
    Redrive {
        /// The dead-letter queue's URL.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The URL of the queue to move them to (the one whose redrive policy names `--from`).
        #[arg(long, value_name = "URL")]
        to: String,
        /// Move at most this many.
        #[arg(long, value_name = "N")]
        max: Option<u64>,
    },
}

fn failed(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::Failed(format!("{what}: {e}"))
}

pub async fn run(cmd: DlqCmd) -> Result<u8, CliError> {
    // aws-config's default chains, with `AWS_ENDPOINT_URL` when set.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    if sdk.region().is_none() {
        return Err(CliError::Usage(
            "netmon dlq needs an AWS region: set AWS_REGION (or a profile with one)".into(),
        ));
    }
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    match cmd {
        DlqCmd::Count { queue } => {
            let (visible, in_flight) = depth(&sqs, &queue).await?;
            println!("{visible} waiting, {in_flight} in flight");
            Ok(exit::OK)
        }
        DlqCmd::Redrive { from, to, max } => {
            if from == to {
                return Err(CliError::Usage(
                    "--from and --to name the same queue".into(),
                ));
            }
            let moved = redrive(&sqs, &from, &to, max.unwrap_or(u64::MAX)).await?;
            eprintln!("moved {moved} message(s) to {to}");
            Ok(exit::OK)
        }
    }
}

async fn depth(sqs: &aws_sdk_sqs::Client, queue: &str) -> Result<(u64, u64), CliError> {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| {
            failed(
                "GetQueueAttributes",
                aws_sdk_sqs::error::DisplayErrorContext(e),
            )
        })?;
    let get = |name: A| {
        out.attributes()
            .and_then(|a| a.get(&name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((
        get(A::ApproximateNumberOfMessages),
        get(A::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// Receive up to ten, send them to `to`, delete what was sent; until the queue gives nothing
/// twice in a row or `max` moved. Progress on stderr every hundred.
async fn redrive(
    sqs: &aws_sdk_sqs::Client,
    from: &str,
    to: &str,
    max: u64,
) -> Result<u64, CliError> {
    let mut moved = 0u64;
    let mut empty = 0;
    while moved < max && empty < 2 {
        let want = i32::try_from((max - moved).min(10)).unwrap_or(10);
        let got = sqs
            .receive_message()
            .queue_url(from)
            .max_number_of_messages(want)
            .wait_time_seconds(1)
            // Long enough to send and delete; a crash leaves them to reappear, not lost.
            .visibility_timeout(60)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| failed("ReceiveMessage", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        let mut entries = Vec::new();
        for (i, m) in messages.iter().enumerate() {
            let entry = SendMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .message_body(m.body().unwrap_or_default())
                .set_message_attributes(m.message_attributes.clone())
                .build()
                .map_err(|e| failed("SendMessageBatch entry", e))?;
            entries.push(entry);
        }
        let sent = sqs
            .send_message_batch()
            .queue_url(to)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                failed(
                    "SendMessageBatch",
                    aws_sdk_sqs::error::DisplayErrorContext(e),
                )
            })?;
        let mut delete = Vec::new();
        for ok in sent.successful() {
            let Some(m) = ok.id().parse::<usize>().ok().and_then(|i| messages.get(i)) else {
                continue;
            };
            if let Some(handle) = m.receipt_handle() {
                delete.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(ok.id())
                        .receipt_handle(handle)
                        .build()
                        .map_err(|e| failed("DeleteMessageBatch entry", e))?,
                );
            }
        }
        if let Some(f) = sent.failed().first() {
            // The unsent stay in the dead-letter queue; say why and stop.
            return Err(CliError::Failed(format!(
                "moved {moved}; sending to {to} failed ({}: {})",
                f.code(),
                f.message().unwrap_or("no message")
            )));
        }
        let n = u64::try_from(delete.len()).unwrap_or(0);
        if !delete.is_empty() {
            sqs.delete_message_batch()
                .queue_url(from)
                .set_entries(Some(delete))
                .send()
                .await
                .map_err(|e| {
                    failed(
                        "DeleteMessageBatch (the messages were sent; they may be moved again)",
                        aws_sdk_sqs::error::DisplayErrorContext(e),
                    )
                })?;
        }
        let before = moved;
        moved += n;
        if before / 100 != moved / 100 {
            eprintln!("moved {moved}…");
        }
    }
    Ok(moved)
}
