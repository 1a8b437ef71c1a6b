//! `NotificationLog`: one record per event and channel, counting attempts and keeping the first
//! attempt's time; listings are per tenant, latest attempt first.

use std::future::Future;

use netmon_core::ids::ChannelId;
use netmon_core::notification::{NotificationOutcome, NotificationRecord};
use netmon_core::ports::NotificationLog;

use super::fixtures::{at, target_id, tenant, unique};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: NotificationLog,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    attempts_are_counted_and_the_first_kept(&new_store().await).await;
    listings_are_per_tenant_and_incident_latest_first(&new_store().await).await;
}

fn attempt(incident: &str, event: &str, channel: &str, secs: i64) -> NotificationRecord {
    NotificationRecord {
        incident_id: incident.to_owned(),
        event_id: event.to_owned(),
        event_type: "incident.opened".to_owned(),
        target_id: target_id("api"),
        channel_id: ChannelId::parse(channel).expect("fixture channel id"),
        outcome: NotificationOutcome::Retrying,
        reason: Some("HTTP 503".to_owned()),
        next_attempt_at: Some(at(secs + 30)),
        attempts: 1,
        first_attempt_at: at(secs),
        last_attempt_at: at(secs),
    }
}

pub async fn attempts_are_counted_and_the_first_kept<S: NotificationLog + ?Sized>(store: &S) {
    let t = tenant("notify");
    let (incident, event) = (unique("inc"), unique("evt"));
    store
        .record_attempt(&t, &attempt(&incident, &event, "slack", 0))
        .await
        .expect("first attempt");
    store
        .record_attempt(&t, &attempt(&incident, &event, "slack", 40))
        .await
        .expect("second attempt");
    let delivered = NotificationRecord {
        outcome: NotificationOutcome::Delivered,
        reason: None,
        next_attempt_at: None,
        ..attempt(&incident, &event, "slack", 100)
    };
    store
        .record_attempt(&t, &delivered)
        .await
        .expect("third attempt");
    let records = store
        .notifications(&t, Some(&incident), 10)
        .await
        .expect("list");
    assert_eq!(
        records,
        [NotificationRecord {
            attempts: 3,
            first_attempt_at: at(0),
            ..delivered
        }],
        "one record per event and channel: its latest outcome, three attempts, the first time"
    );
}

pub async fn listings_are_per_tenant_and_incident_latest_first<S: NotificationLog + ?Sized>(
    store: &S,
) {
    let (t, other) = (tenant("notify"), tenant("notify-other"));
    let (a, b) = (unique("inc-a"), unique("inc-b"));
    let event = unique("evt");
    for (incident, channel, secs) in [(&a, "slack", 10), (&a, "pager", 30), (&b, "slack", 20)] {
        store
            .record_attempt(&t, &attempt(incident, &event, channel, secs))
            .await
            .expect("record");
    }
    store
        .record_attempt(&other, &attempt(&a, &event, "slack", 50))
        .await
        .expect("record for another tenant");

    let all = store.notifications(&t, None, 10).await.expect("list all");
    let seen: Vec<_> = all
        .iter()
        .map(|r| (r.incident_id.as_str(), r.channel_id.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (a.as_str(), "pager"),
            (b.as_str(), "slack"),
            (a.as_str(), "slack")
        ],
        "the tenant's records only, latest attempt first"
    );
    let of_a = store.notifications(&t, Some(&a), 10).await.expect("list a");
    assert_eq!(of_a.len(), 2, "one incident's records");
    assert!(of_a.iter().all(|r| r.incident_id == a));
    let first = store.notifications(&t, None, 1).await.expect("limit");
    assert_eq!(first.len(), 1, "at most the limit");
    assert_eq!(first[0].channel_id.as_str(), "pager");
    assert!(
        store
            .notifications(&tenant("notify-none"), None, 10)
            .await
            .expect("empty tenant")
            .is_empty()
    );
}
