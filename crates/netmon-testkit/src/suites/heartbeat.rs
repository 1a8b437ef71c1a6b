//! `HeartbeatStore`: the newest ping per target survives restarts and late arrivals.

use std::future::Future;

use netmon_core::ports::{HeartbeatStore, PingKind, PingRecord};

use super::fixtures::{at, ping, tenant};

pub async fn run_all<S, F, Fut>(new_store: F)
where
    S: HeartbeatStore,
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
{
    keeps_the_latest_ping_per_target(&new_store().await).await;
}

pub async fn keeps_the_latest_ping_per_target<S: HeartbeatStore + ?Sized>(store: &S) {
    let (a, b) = (tenant("hb"), tenant("hb"));
    store
        .record_ping(&ping(&a, "cron", at(10), PingKind::Start))
        .await
        .expect("ping");
    store
        .record_ping(&ping(&a, "cron", at(30), PingKind::Success))
        .await
        .expect("ping");
    // A slower request carrying an older ping must not move the latest back.
    store
        .record_ping(&ping(&a, "cron", at(20), PingKind::Fail))
        .await
        .expect("ping");
    store
        .record_ping(&ping(&a, "backup", at(5), PingKind::Fail))
        .await
        .expect("ping");
    store
        .record_ping(&ping(&b, "cron", at(40), PingKind::Start))
        .await
        .expect("ping");

    let mut mine: Vec<PingRecord> = store
        .last_pings()
        .await
        .expect("last pings")
        .into_iter()
        .filter(|p| p.tenant == a)
        .collect();
    mine.sort_by(|l, r| l.target.cmp(&r.target));
    assert_eq!(
        mine,
        vec![
            ping(&a, "backup", at(5), PingKind::Fail),
            ping(&a, "cron", at(30), PingKind::Success),
        ]
    );
}
