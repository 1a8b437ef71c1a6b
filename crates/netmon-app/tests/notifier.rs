//! The notifier's delivery guarantees, with the faults that would break them: a "resolved"
//! that arrives before its "opened", receivers that refuse for good, throttle with
//! `Retry-After`, stay down for hours, and redeliveries of the same event (SQS at least once).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use netmon_app::services::notifier::{GIVE_UP_AFTER, Notifier};
use netmon_core::channel::{Channel, ChannelKind, ChannelSpec, LogChannel};
use netmon_core::events::{
    Envelope, Event, IncidentCause, IncidentOpened, IncidentResolved, Subject,
};
use netmon_core::incident::IncidentEvent;
use netmon_core::notification::NotificationOutcome;
use netmon_core::ports::{ChannelStore, Clock, Deliver, DeliveryError, Expect, NotificationLog};
use netmon_core::{ChannelId, TargetId, TenantId};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::memory::{Fault, MemoryStore, Op};

/// A receiver whose answers the test scripts; records every event id it was sent, in order.
#[derive(Default)]
struct Receiver {
    sent: Mutex<Vec<String>>,
    answer: Mutex<Option<DeliveryError>>,
}

impl Receiver {
    fn answer(&self, a: Option<DeliveryError>) {
        *self.answer.lock().unwrap() = a;
    }
    fn attempts(&self) -> Vec<String> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Deliver for Receiver {
    async fn deliver(&self, _: &ChannelSpec, env: &Envelope) -> Result<(), DeliveryError> {
        self.sent.lock().unwrap().push(env.id.clone());
        match self.answer.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

struct Setup {
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    receiver: Arc<Receiver>,
    notifier: Notifier,
}

async fn setup() -> Setup {
    let clock = Arc::new(ManualClock::at_fixed_start());
    let store = Arc::new(MemoryStore::with_clock(clock.clone()));
    let now = clock.now();
    store
        .put_channel(
            Channel {
                tenant: TenantId::default_tenant(),
                spec: ChannelSpec::new(
                    ChannelId::parse("ops").unwrap(),
                    "ops",
                    ChannelKind::Log(LogChannel {}),
                ),
                version: 0,
                created_at: now,
                updated_at: now,
            },
            Expect::Absent,
        )
        .await
        .unwrap();
    let receiver = Arc::new(Receiver::default());
    let notifier = Notifier::new(
        store.clone(),
        store.clone(),
        store.clone(),
        receiver.clone(),
        clock.clone(),
    )
    .with_notification_log(store.clone());
    Setup {
        clock,
        store,
        receiver,
        notifier,
    }
}

fn subject() -> Subject {
    Subject {
        target_id: TargetId::parse("api").unwrap(),
        target_name: "API".into(),
        check: "GET https://api.example/".into(),
    }
}

fn cause(at: DateTime<Utc>) -> IncidentCause {
    IncidentCause {
        location: "eu".into(),
        failing_since: at,
        status_code: Some(503),
        error: None,
        failed_conditions: Vec::new(),
    }
}

fn envelope(event: IncidentEvent, time: DateTime<Utc>) -> Envelope {
    let tenant = TenantId::default_tenant();
    let id = event.envelope_id(&tenant);
    let payload = match event {
        IncidentEvent::Opened(e) => Event::IncidentOpened(e),
        IncidentEvent::Resolved(e) => Event::IncidentResolved(e),
        IncidentEvent::Reminder(e) => Event::IncidentReminder(e),
    };
    Envelope::with_id(id, payload, tenant, "alerter", time)
}

/// The opened and resolved events of one incident, as the alerter emits them.
fn incident(opened_at: DateTime<Utc>) -> (Envelope, Envelope) {
    let resolved_at = opened_at + chrono::Duration::minutes(5);
    let opened = envelope(
        IncidentEvent::Opened(IncidentOpened {
            incident_id: "api-1".into(),
            subject: subject(),
            opened_at,
            cause: cause(opened_at),
        }),
        opened_at,
    );
    let resolved = envelope(
        IncidentEvent::Resolved(IncidentResolved {
            incident_id: "api-1".into(),
            subject: subject(),
            opened_at,
            resolved_at,
            duration_s: 300,
            cause: Some(cause(opened_at)),
        }),
        resolved_at,
    );
    (opened, resolved)
}

#[tokio::test]
async fn resolved_arriving_first_is_sent_after_its_opened_and_each_goes_out_once() {
    let s = setup().await;
    let (opened, resolved) = incident(s.clock.now());
    s.clock.advance(Duration::from_secs(300));
    // SNS/SQS reordered them: resolved first.
    s.notifier.handle(&resolved).await.unwrap();
    s.notifier.handle(&opened).await.unwrap();
    // And each redelivered.
    s.notifier.handle(&resolved).await.unwrap();
    s.notifier.handle(&opened).await.unwrap();
    assert_eq!(
        s.receiver.attempts(),
        [opened.id.clone(), resolved.id.clone()]
    );
}

#[tokio::test]
async fn resolved_waits_while_its_opened_is_being_retried() {
    let s = setup().await;
    let (opened, resolved) = incident(s.clock.now());
    s.receiver
        .answer(Some(DeliveryError::retryable("receiver down")));
    assert!(s.notifier.handle(&opened).await.is_err());
    s.receiver.answer(None);
    // The receiver is back, but the opened event waits for its backoff: so does resolved.
    assert!(s.notifier.handle(&resolved).await.is_err());
    assert_eq!(s.receiver.attempts(), std::slice::from_ref(&opened.id));
    s.clock.advance(Duration::from_secs(60));
    s.notifier.handle(&resolved).await.unwrap();
    assert_eq!(
        s.receiver.attempts(),
        [opened.id.clone(), opened.id.clone(), resolved.id.clone()]
    );
}

#[tokio::test]
async fn a_final_refusal_is_not_retried() {
    let s = setup().await;
    let (opened, _) = incident(s.clock.now());
    s.receiver.answer(Some(DeliveryError::Final {
        reason: "receiver answered HTTP 400".into(),
    }));
    let report = s.notifier.handle(&opened).await.unwrap();
    assert_eq!(report.failed, 1);
    for _ in 0..3 {
        s.clock.advance(Duration::from_secs(600));
        s.notifier.handle(&opened).await.unwrap();
    }
    assert_eq!(s.receiver.attempts().len(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let s = setup().await;
    let (opened, _) = incident(s.clock.now());
    s.receiver.answer(Some(DeliveryError::Retryable {
        reason: "receiver answered HTTP 429".into(),
        retry_after: Some(Duration::from_secs(600)),
    }));
    assert!(s.notifier.handle(&opened).await.is_err());
    s.receiver.answer(None);
    // Redelivered by the queue every minute: nothing is sent before the receiver's ten minutes.
    for _ in 0..9 {
        s.clock.advance(Duration::from_secs(60));
        assert!(s.notifier.handle(&opened).await.is_err());
    }
    assert_eq!(s.receiver.attempts().len(), 1);
    s.clock.advance(Duration::from_secs(61));
    s.notifier.handle(&opened).await.unwrap();
    assert_eq!(s.receiver.attempts().len(), 2);
}

/// A receiver down for six hours still gets the notification once it is back, and the backoff
/// keeps the attempts in the meantime few (the queue redelivers every six minutes).
#[tokio::test]
async fn a_receiver_down_for_six_hours_gets_the_notification_when_back() {
    let s = setup().await;
    let (opened, _) = incident(s.clock.now());
    s.receiver
        .answer(Some(DeliveryError::retryable("connection refused")));
    let start = s.clock.now();
    while s.clock.now() - start < chrono::Duration::hours(6) {
        assert!(s.notifier.handle(&opened).await.is_err());
        s.clock.advance(Duration::from_secs(360));
    }
    let attempts_while_down = s.receiver.attempts().len();
    assert!(
        (10..=30).contains(&attempts_while_down),
        "{attempts_while_down} attempts in six hours"
    );
    s.receiver.answer(None);
    let mut redeliveries = 0;
    while s.notifier.handle(&opened).await.is_err() {
        s.clock.advance(Duration::from_secs(360));
        redeliveries += 1;
        assert!(
            redeliveries <= 10,
            "not delivered within an hour of recovery"
        );
    }
    s.notifier.handle(&opened).await.unwrap();
    assert_eq!(s.receiver.attempts().len(), attempts_while_down + 1);
}

#[tokio::test]
async fn a_receiver_down_past_the_limit_is_given_up_on_loudly() {
    let s = setup().await;
    let (opened, _) = incident(s.clock.now());
    s.receiver
        .answer(Some(DeliveryError::retryable("connection refused")));
    let start = s.clock.now();
    let mut given_up = false;
    while s.clock.now() - start < GIVE_UP_AFTER + chrono::Duration::hours(1) {
        if let Ok(report) = s.notifier.handle(&opened).await {
            assert_eq!(report.failed, 1);
            given_up = true;
            break;
        }
        s.clock.advance(Duration::from_secs(360));
    }
    assert!(given_up);
    assert!(s.clock.now() - start >= GIVE_UP_AFTER);
    let attempts = s.receiver.attempts().len();
    s.clock.advance(Duration::from_secs(3600));
    s.notifier.handle(&opened).await.unwrap();
    assert_eq!(s.receiver.attempts().len(), attempts);
}

/// What the API shows of each notification: retrying with the reason and the next attempt,
/// then delivered after three attempts; a final refusal as failed with the reason.
#[tokio::test]
async fn every_attempt_is_recorded_for_the_api() {
    let s = setup().await;
    let tenant = TenantId::default_tenant();
    let (opened, resolved) = incident(s.clock.now());
    let start = s.clock.now();
    s.receiver.answer(Some(DeliveryError::Retryable {
        reason: "receiver answered HTTP 503".into(),
        retry_after: None,
    }));
    assert!(s.notifier.handle(&opened).await.is_err());
    let records = s
        .store
        .notifications(&tenant, Some("api-1"), 10)
        .await
        .unwrap();
    assert_eq!(records.len(), 1);
    let retrying = &records[0];
    assert_eq!(retrying.outcome, NotificationOutcome::Retrying);
    assert_eq!(
        retrying.reason.as_deref(),
        Some("receiver answered HTTP 503")
    );
    assert!(retrying.next_attempt_at.is_some_and(|next| next > start));
    assert_eq!(
        (retrying.event_id.as_str(), retrying.channel_id.as_str()),
        (opened.id.as_str(), "ops")
    );

    s.clock.advance(Duration::from_secs(60));
    assert!(s.notifier.handle(&opened).await.is_err());
    s.receiver.answer(None);
    s.clock.advance(Duration::from_secs(120));
    s.notifier.handle(&opened).await.unwrap();
    let delivered = &s
        .store
        .notifications(&tenant, Some("api-1"), 10)
        .await
        .unwrap()[0];
    assert_eq!(delivered.outcome, NotificationOutcome::Delivered);
    assert_eq!((delivered.attempts, delivered.reason.as_deref()), (3, None));
    assert_eq!(delivered.first_attempt_at, start);
    assert_eq!(delivered.last_attempt_at, s.clock.now());

    s.receiver.answer(Some(DeliveryError::Final {
        reason: "receiver answered HTTP 404".into(),
    }));
    s.clock.advance(Duration::from_secs(1));
    s.notifier.handle(&resolved).await.unwrap();
    let records = s.store.notifications(&tenant, None, 10).await.unwrap();
    assert_eq!(records.len(), 2, "one record per event and channel");
    assert_eq!(records[0].event_id, resolved.id, "the latest attempt first");
    assert_eq!(records[0].outcome, NotificationOutcome::Failed);
    assert_eq!(
        records[0].reason.as_deref(),
        Some("receiver answered HTTP 404")
    );
}

/// The notification record is for people reading the API: one that cannot be written costs
/// that visibility, never a delivery, and a redelivery does not send again.
#[tokio::test]
async fn a_notification_record_that_cannot_be_written_never_blocks_or_repeats_a_delivery() {
    let s = setup().await;
    s.store.set_fault_hook(|call| {
        if call.op == Op::RecordAttempt {
            Fault::Before
        } else {
            Fault::None
        }
    });
    let (opened, resolved) = incident(s.clock.now());
    s.notifier.handle(&opened).await.unwrap();
    s.clock.advance(Duration::from_secs(300));
    s.notifier.handle(&resolved).await.unwrap();
    s.notifier.handle(&opened).await.unwrap();
    s.notifier.handle(&resolved).await.unwrap();
    assert_eq!(
        s.receiver.attempts(),
        [opened.id.clone(), resolved.id.clone()]
    );
    assert_eq!(
        s.store.calls(Op::RecordAttempt),
        2,
        "each delivery tried its record"
    );
}
