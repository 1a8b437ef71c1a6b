//! Property-based fuzzing of what the queues deliver: SQS events (the Lambda's input) and the
//! record bodies in them, decoded as event envelopes and probe-job messages. Refused with a reason,
//! never a panic, and a reason stays short (it is logged). Bounded here (`PROPTEST_CASES`,
//! default 256); `scripts/fuzz` runs longer.

use aws_lambda_events::event::sqs::SqsEvent;
use netmon_core::events::Envelope;
use netmon_core::jobs::ProbeJob;
use netmon_lambda::batch::Decode;
use proptest::prelude::*;

/// The SQS-fed functions' samples (the recorder's is a scheduled event; the bodies it drains
/// are the alerter's).
const EVENTS: [&str; 3] = [
    include_str!("../../../events/lambda/alerter.json"),
    include_str!("../../../events/lambda/notifier.json"),
    include_str!("../../../events/lambda/prober.json"),
];

fn mutate(base: &str, edits: Vec<(prop::sample::Index, u8, u8)>) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    for (at, byte, how) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = at.index(bytes.len());
        match how {
            0 => bytes[i] = byte,
            1 => {
                bytes.remove(i);
            }
            _ => bytes.insert(i, byte),
        }
    }
    bytes
}

fn decode_both(body: &str) -> Result<(), TestCaseError> {
    for reason in [
        Envelope::decode(body).err(),
        Vec::<ProbeJob>::decode(body).err(),
    ]
    .into_iter()
    .flatten()
    {
        prop_assert!(reason.chars().count() < 400, "{reason}");
    }
    Ok(())
}

proptest! {
    #[test]
    fn sqs_events_decode_without_panic(
        which in 0usize..EVENTS.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
    ) {
        let bytes = mutate(EVENTS[which], edits);
        if let Ok(event) = serde_json::from_slice::<SqsEvent>(&bytes) {
            for record in event.records {
                if let Some(body) = record.body {
                    decode_both(&body)?;
                }
            }
        }
    }

    /// Record bodies: a sample's body with bytes changed, and any text at all.
    #[test]
    fn record_bodies_decode_without_panic(
        which in 0usize..EVENTS.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..8),
        text in any::<String>(),
    ) {
        let event: SqsEvent = serde_json::from_str(EVENTS[which]).expect("sample parses");
        let body = event.records[0].body.clone().unwrap_or_default();
        let mutated = String::from_utf8_lossy(&mutate(&body, edits)).into_owned();
        decode_both(&mutated)?;
        decode_both(&text)?;
    }
}
