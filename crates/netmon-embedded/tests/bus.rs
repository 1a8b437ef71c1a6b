//! MemoryBus: publish returns once subscribers handled the events, queues are bounded and
//! never drop, failures and vanished subscribers reach the publisher.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netmon_core::TenantId;
use netmon_core::events::{Envelope, EventType};
use netmon_core::ports::{BusError, EventBus};
use netmon_embedded::{EventFilter, MemoryBus, spawn_consumer};
use netmon_testkit::suites::fixtures::{at, event, incident_event, probe_completed};
use tokio::sync::Semaphore;

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn events(prefix: &str, n: usize) -> Vec<Envelope> {
    (0..n)
        .map(|i| event(&tenant(), &format!("{prefix}-{i}"), at(i as i64)))
        .collect()
}

/// Lets other tasks run until `cond` holds; fails the test instead of hanging.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let wait = async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for: {what}"));
}

/// Gives spawned tasks many chances to make progress (used before asserting they did not).
async fn settle() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}

type Seen = Arc<Mutex<Vec<String>>>;

/// Records the ids a consumer handled.
fn recorder() -> (
    Seen,
    impl Fn(Arc<Envelope>) -> std::future::Ready<Result<(), String>>,
) {
    let seen = Seen::default();
    let sink = seen.clone();
    let handler = move |e: Arc<Envelope>| {
        sink.lock().expect("lock").push(e.id.clone());
        std::future::ready(Ok(()))
    };
    (seen, handler)
}

fn ids(seen: &Mutex<Vec<String>>) -> BTreeSet<String> {
    seen.lock().expect("lock").iter().cloned().collect()
}

#[tokio::test]
async fn publish_waits_for_queue_space_and_loses_nothing() {
    let bus = MemoryBus::new();
    let mut sub = bus.subscribe("slow", EventFilter::All, 1);
    let sent = events("bp", 5);
    let publisher = tokio::spawn({
        let (bus, sent) = (bus.clone(), sent.clone());
        async move { bus.publish(sent).await }
    });

    until("first event queued", || sub.queued() == 1).await;
    settle().await;
    assert_eq!(
        sub.queued(),
        1,
        "capacity 1: the rest wait in publish, not in memory"
    );
    assert!(
        !publisher.is_finished(),
        "publish returns only when handled"
    );

    let mut got = Vec::new();
    while got.len() < sent.len() {
        let d = tokio::time::timeout(Duration::from_secs(10), sub.recv())
            .await
            .expect("an event went missing")
            .expect("delivery");
        got.push(d.envelope().clone());
        if got.len() < sent.len() {
            settle().await;
            assert!(!publisher.is_finished(), "not all handled yet");
        }
        d.ack(Ok(()));
    }
    publisher
        .await
        .expect("join")
        .expect("publish ok once all acked");
    assert_eq!(got, sent, "every event, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_throttles_publisher_and_handles_all() {
    let bus = MemoryBus::new();
    let gate = Arc::new(Semaphore::new(0));
    let handled = Arc::new(AtomicUsize::new(0));
    let consumer = spawn_consumer(bus.subscribe("slow", EventFilter::All, 1), 1, {
        let (gate, handled) = (gate.clone(), handled.clone());
        move |_e: Arc<Envelope>| {
            let (gate, handled) = (gate.clone(), handled.clone());
            async move {
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
                handled.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        }
    });
    let publisher = tokio::spawn({
        let bus = bus.clone();
        async move { bus.publish(events("slow", 20)).await }
    });
    settle().await;
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    assert!(!publisher.is_finished(), "blocked behind the slow handler");

    gate.add_permits(20);
    publisher.await.expect("join").expect("publish");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        20,
        "N published = N handled"
    );
    bus.shutdown();
    consumer.await.expect("consumer ends after shutdown");
}

#[tokio::test]
async fn filters_route_events() {
    let bus = MemoryBus::new();
    let (incidents, h1) = recorder();
    let (probes, h2) = recorder();
    let (everything, h3) = recorder();
    let (targets, h4) = recorder();
    let c1 = spawn_consumer(
        bus.subscribe(
            "incidents",
            EventFilter::Matching(EventType::is_incident),
            4,
        ),
        2,
        h1,
    );
    let c2 = spawn_consumer(bus.subscribe("probes", EventType::ProbeCompleted, 4), 2, h2);
    let c3 = spawn_consumer(bus.subscribe("all", EventFilter::All, 4), 2, h3);
    let c4 = spawn_consumer(
        bus.subscribe(
            "targets",
            [EventType::TargetCreated, EventType::TargetDeleted],
            4,
        ),
        2,
        h4,
    );

    let t = tenant();
    bus.publish(vec![
        incident_event(&t, "inc-1", at(0)),
        probe_completed(&t, "probe-1", at(1)),
        event(&t, "deleted-1", at(2)),
        incident_event(&t, "inc-2", at(3)),
    ])
    .await
    .expect("publish");

    let set = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(ids(&incidents), set(&["inc-1", "inc-2"]));
    assert_eq!(ids(&probes), set(&["probe-1"]));
    assert_eq!(ids(&targets), set(&["deleted-1"]));
    assert_eq!(
        ids(&everything),
        set(&["inc-1", "inc-2", "probe-1", "deleted-1"])
    );
    bus.shutdown();
    for c in [c1, c2, c3, c4] {
        c.await.expect("consumer ends");
    }
}

#[tokio::test]
async fn handler_failure_reaches_the_publisher() {
    let bus = MemoryBus::new();
    let (others, h) = recorder();
    let _ok = spawn_consumer(bus.subscribe("other", EventFilter::All, 4), 1, h);
    let _picky = spawn_consumer(
        bus.subscribe("picky", EventFilter::All, 4),
        2,
        |e: Arc<Envelope>| async move {
            if e.id.starts_with("bad") {
                Err("webhook returned 500".to_owned())
            } else {
                Ok(())
            }
        },
    );
    let t = tenant();
    let err = bus
        .publish(vec![event(&t, "good-1", at(0)), event(&t, "bad-1", at(1))])
        .await
        .expect_err("one handler failed");
    match err {
        BusError::Handler(reason) => {
            assert!(
                reason.contains("picky") && reason.contains("bad-1"),
                "{reason}"
            );
            assert!(reason.contains("webhook returned 500"), "{reason}");
            assert!(!reason.contains("good-1"), "{reason}");
        }
        other => panic!("expected Handler, got {other:?}"),
    }
    assert_eq!(
        ids(&others).len(),
        2,
        "other subscribers still handled both"
    );
    bus.publish(vec![event(&t, "good-2", at(2))])
        .await
        .expect("later events are unaffected");
}

#[tokio::test]
async fn panicking_handler_is_a_failure_not_a_hang() {
    let bus = MemoryBus::new();
    let _c = spawn_consumer(
        bus.subscribe("buggy", EventFilter::All, 4),
        1,
        |e: Arc<Envelope>| async move {
            if e.id == "boom" {
                panic!("bug in handler");
            }
            Ok(())
        },
    );
    let err = bus
        .publish(vec![event(&tenant(), "boom", at(0))])
        .await
        .expect_err("panic reported");
    assert!(
        matches!(&err, BusError::Handler(r) if r.contains("panicked")),
        "{err:?}"
    );
    bus.publish(vec![event(&tenant(), "fine", at(1))])
        .await
        .expect("consumer survives a panicking handler");
}

#[tokio::test]
async fn gone_subscriber_is_closed() {
    let bus = MemoryBus::new();
    let sub = bus.subscribe("gone", EventType::TargetDeleted, 4);
    drop(sub);
    let err = bus
        .publish(vec![event(&tenant(), "e1", at(0))])
        .await
        .expect_err("subscriber dropped");
    assert!(matches!(err, BusError::Closed), "{err:?}");
    // Events it would not have received are unaffected; unwanted events are fine.
    bus.publish(vec![probe_completed(&tenant(), "p1", at(0))])
        .await
        .expect("no subscriber wants it: nothing to do");

    // A delivery dropped without an ack also means the subscriber went away.
    let mut sub = bus.subscribe("drops", EventType::ProbeCompleted, 4);
    let dropper = tokio::spawn(async move {
        let d = sub.recv().await.expect("delivery");
        drop(d);
    });
    let err = bus
        .publish(vec![probe_completed(&tenant(), "p2", at(1))])
        .await
        .expect_err("dropped unacked");
    assert!(matches!(err, BusError::Closed), "{err:?}");
    dropper.await.expect("join");
}

#[tokio::test]
async fn shutdown_drains_consumers_and_refuses_publish() {
    let bus = MemoryBus::new();
    let (seen, h) = recorder();
    let consumer = spawn_consumer(bus.subscribe("c", EventFilter::All, 8), 2, h);
    bus.publish(events("sd", 3)).await.expect("publish");
    bus.shutdown();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .expect("consumer stops after shutdown")
        .expect("join");
    assert_eq!(ids(&seen).len(), 3);
    let err = bus
        .publish(events("late", 1))
        .await
        .expect_err("after shutdown");
    assert!(matches!(err, BusError::Closed), "{err:?}");
    let mut late = bus.subscribe("late", EventFilter::All, 1);
    assert!(late.recv().await.is_none(), "no deliveries after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_publishers_all_delivered_once() {
    let bus = MemoryBus::new();
    let (seen, h) = recorder();
    let consumer = spawn_consumer(bus.subscribe("c", EventFilter::All, 2), 4, h);
    let mut publishers = Vec::new();
    for p in 0..8 {
        let bus = bus.clone();
        publishers.push(tokio::spawn(async move {
            for batch in 0..10 {
                bus.publish(events(&format!("p{p}-b{batch}"), 5))
                    .await
                    .expect("publish");
            }
        }));
    }
    for p in publishers {
        p.await.expect("publisher");
    }
    let all = seen.lock().expect("lock").clone();
    assert_eq!(all.len(), 400, "8 publishers x 10 batches x 5 events");
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), 400, "each once");
    bus.shutdown();
    consumer.await.expect("consumer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumer_concurrency_is_bounded() {
    let bus = MemoryBus::new();
    let gate = Arc::new(Semaphore::new(0));
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let consumer = spawn_consumer(bus.subscribe("c", EventFilter::All, 16), 3, {
        let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
        move |_e: Arc<Envelope>| {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                gate.acquire().await.map_err(|e| e.to_string())?.forget();
                running.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
        }
    });
    let publisher = tokio::spawn({
        let bus = bus.clone();
        async move { bus.publish(events("cc", 12)).await }
    });
    until("three handlers running", || {
        running.load(Ordering::SeqCst) == 3
    })
    .await;
    settle().await;
    assert_eq!(
        running.load(Ordering::SeqCst),
        3,
        "no fourth handler starts"
    );
    gate.add_permits(12);
    publisher.await.expect("join").expect("publish");
    assert_eq!(peak.load(Ordering::SeqCst), 3);
    bus.shutdown();
    consumer.await.expect("consumer");
}
